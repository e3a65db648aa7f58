/* SPDX-License-Identifier: BSD-3-Clause */
/* `vfio-dext status`: the dext's devices, claims, clients and counters as JSON. */
#include <stdio.h>

#include "dext/core_priv.h"

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_uint64(v));
}

static const char *mode_name(enum dext_iommu_mode m)
{
    return m == DEXT_IOMMU_DART ? "dart" : "identity";
}

static const char *reset_name(uint32_t m)
{
    return m == DEXT_RESET_FUNCTION ? "function" : m == DEXT_RESET_HOT ? "hot" : "none";
}

static struct json_object *client_json(const struct dext_dev *dev, const struct dext_uc *uc)
{
    struct json_object *o = json_object_new_object();

    add_u64(o, "id", uc->id);
    json_object_object_add(o, "claimed", json_object_new_boolean(uc->claimed));
    add_u64(o, "dma_regions", uc->regions.count);
    json_object_object_add(o, "dma_buffer", json_object_new_boolean(uc->dmabuf != NULL));
    json_object_object_add(o, "interrupts", json_object_new_boolean(dev->irq_owner == uc));
    return o;
}

/* Counters of past interrupt setups plus the live one. */
static void irq_counters(const struct dext_dev *dev, struct json_object *c)
{
    const struct dext_irq *irq = dev->irq;
    uint64_t raised = dev->c.irqs_raised, delivered = dev->c.irqs_delivered;
    uint64_t latched = dev->c.irqs_latched, ignored = dev->c.irqs_ignored;

    if (irq) {
        raised += __atomic_load_n(&irq->raised, __ATOMIC_RELAXED);
        delivered += __atomic_load_n(&irq->delivered, __ATOMIC_RELAXED);
        latched += __atomic_load_n(&irq->latched_count, __ATOMIC_RELAXED);
        ignored += __atomic_load_n(&irq->ignored, __ATOMIC_RELAXED);
    }
    ignored += __atomic_load_n(&dev->c.irqs_unconfigured, __ATOMIC_RELAXED);
    add_u64(c, "irqs_raised", raised);
    add_u64(c, "irqs_delivered", delivered);
    add_u64(c, "irqs_latched", latched);
    add_u64(c, "irqs_ignored", ignored);
}

static struct json_object *counters_json(struct dext_dev *dev)
{
    struct json_object *c = json_object_new_object();
    struct iommu_stats st;

    iommu_get_stats(dev->iommu, &st);
    add_u64(c, "config_calls", dev->c.config_calls);
    add_u64(c, "config_writes_command", dev->c.config_writes_command);
    add_u64(c, "config_writes_status", dev->c.config_writes_status);
    add_u64(c, "config_writes_bar", dev->c.config_writes_bar);
    add_u64(c, "mmio_calls", dev->c.mmio_calls);
    add_u64(c, "dma_regions_live", dev->c.dma_regions_live);
    add_u64(c, "dma_regions_peak", dev->c.dma_regions_peak);
    add_u64(c, "dma_bytes_live", dev->c.dma_bytes_live);
    add_u64(c, "dma_bytes_peak", dev->c.dma_bytes_peak);
    add_u64(c, "iommu_mappings", st.mappings);
    add_u64(c, "iommu_faults", st.faults);
    add_u64(c, "iommu_aperture_bytes", st.aperture_size);
    add_u64(c, "iommu_aperture_used", st.aperture_used);
    if (st.max_mappings) {
        add_u64(c, "iommu_max_mappings", st.max_mappings);
    }
    irq_counters(dev, c);
    add_u64(c, "resets_function", dev->c.resets_function);
    add_u64(c, "resets_hot", dev->c.resets_hot);
    add_u64(c, "resets_failed", dev->c.resets_failed);
    json_object_object_add(c, "last_reset", json_object_new_string(
                                                reset_name(dev->c.last_reset_method)));
    return c;
}

static struct json_object *device_counters_json(struct dext_dev *dev)
{
    struct json_object *o = json_object_new_object();
    const char *names[32];
    uint64_t values[32];
    size_t n = 0;

    if (dev->vd.ops->counters) {
        n = dev->vd.ops->counters(dev->vd.dev, names, values, 32);
    }
    for (size_t i = 0; i < n && i < 32; i++) {
        add_u64(o, names[i], values[i]);
    }
    return o;
}

static struct json_object *device_json(struct dext_dev *dev)
{
    struct json_object *o = json_object_new_object();
    struct json_object *clients = json_object_new_array();
    char hex[16];

    json_object_object_add(o, "bdf", json_object_new_string(dev->bdf));
    json_object_object_add(o, "kind", json_object_new_string(dev->vd.ops->kind));
    snprintf(hex, sizeof(hex), "0x%04x", dev->id.vendor);
    json_object_object_add(o, "vendor", json_object_new_string(hex));
    snprintf(hex, sizeof(hex), "0x%04x", dev->id.device);
    json_object_object_add(o, "device", json_object_new_string(hex));
    snprintf(hex, sizeof(hex), "0x%06x", dev->id.class_code);
    json_object_object_add(o, "class", json_object_new_string(hex));
    json_object_object_add(o, "iommu", json_object_new_string(mode_name(dev->mode)));
    json_object_object_add(o, "claimed", json_object_new_boolean(dev->claim_refs > 0));
    json_object_object_add(o, "terminated", json_object_new_boolean(dev->terminated));
    add_u64(o, "claims", dev->claim_refs);
    add_u64(o, "interrupt_vectors", dev->irq ? irq_vectors(dev->irq) : 0);
    for (const struct dext_uc *uc = dev->clients; uc; uc = uc->next) {
        json_object_array_add(clients, client_json(dev, uc));
    }
    json_object_object_add(o, "clients", clients);
    json_object_object_add(o, "counters", counters_json(dev));
    json_object_object_add(o, "device_counters", device_counters_json(dev));
    return o;
}

struct json_object *dext_status_json(struct dext *d)
{
    struct json_object *root = json_object_new_object();
    struct json_object *devs = json_object_new_array();

    json_object_object_add(root, "iommu", json_object_new_string(mode_name(d->opts.iommu)));
    pthread_mutex_lock(&d->lock);
    for (unsigned i = 0; i < d->ndevs; i++) {
        struct dext_dev *dev = d->devs[i];

        pthread_mutex_lock(&dev->lock);
        json_object_array_add(devs, device_json(dev));
        pthread_mutex_unlock(&dev->lock);
    }
    pthread_mutex_unlock(&d->lock);
    json_object_object_add(root, "devices", devs);
    return root;
}
