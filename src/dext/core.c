/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dext core: devices, user clients and the 18 selectors with the seed's
 * semantics (seed-system.md §2), plus the improvements documented in
 * docs/contract.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dext/core_priv.h"
#include "platform/platform.h"

/* ---- status words ---------------------------------------------------------- */

dext_status dext_status_from_errno(int neg_errno)
{
    switch (neg_errno) {
    case 0:
        return DEXT_OK;
    case -EINVAL:
    case -ERANGE:
        return DEXT_E_BAD_ARGUMENT;
    case -ENOTSUP:
    case -EPERM:
    case -ENOSYS:
        return DEXT_E_UNSUPPORTED;
    case -ENOENT:
        return DEXT_E_NOT_FOUND;
    case -EEXIST:
    case -EBUSY:
        return DEXT_E_STILL_OPEN;
    case -ENOSPC:
    case -ENOMEM:
        return DEXT_E_NO_SPACE;
    case -EAGAIN:
        return DEXT_E_NOT_READY;
    case -ENODEV:
    case -ENOTCONN:
        return DEXT_E_NOT_ATTACHED;
    default:
        return DEXT_E_IO_ERROR;
    }
}

const char *dext_status_str(dext_status st)
{
    switch (st) {
    case DEXT_OK:
        return "success";
    case DEXT_E_BAD_ARGUMENT:
        return "bad argument";
    case DEXT_E_UNSUPPORTED:
        return "unsupported";
    case DEXT_E_IO_ERROR:
        return "I/O error";
    case DEXT_E_NOT_OPEN:
        return "not open (device not claimed)";
    case DEXT_E_NOT_ALIGNED:
        return "not aligned";
    case DEXT_E_STILL_OPEN:
        return "still open (already exists)";
    case DEXT_E_NOT_READY:
        return "not ready";
    case DEXT_E_NOT_ATTACHED:
        return "not attached";
    case DEXT_E_NO_SPACE:
        return "no space";
    case DEXT_E_OVERRUN:
        return "overrun";
    case DEXT_E_NOT_FOUND:
        return "not found";
    default:
        return "unknown status";
    }
}

/* ---- the dext and its devices ------------------------------------------- */

void dext_opts_default(struct dext_opts *opts)
{
    opts->iommu = DEXT_IOMMU_IDENTITY;
    opts->dart_base = 0x800000000ull; /* 32 GiB: visibly unlike small GPAs */
    opts->dart_aperture = DEXT_DMA_CHUNK_SIZE;
    opts->dart_max_mappings = DEXT_DMA_MAX_REGIONS;
}

int dext_create(const struct dext_opts *opts, struct dext **out)
{
    struct dext *d = calloc(1, sizeof(*d));

    if (!d) {
        return -ENOMEM;
    }
    if (opts) {
        d->opts = *opts;
    } else {
        dext_opts_default(&d->opts);
    }
    pthread_mutex_init(&d->lock, NULL);
    *out = d;
    return 0;
}

static void dev_destroy(struct dext_dev *dev);
static void peer_budget_give(struct dext_dev *dev, struct dext_uc *uc, uint64_t len);

void dext_destroy(struct dext *d)
{
    if (!d) {
        return;
    }
    for (unsigned i = 0; i < d->ndevs; i++) {
        dev_destroy(d->devs[i]);
    }
    free(d->devs);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

unsigned dext_device_count(const struct dext *d)
{
    return d->ndevs;
}

struct dext_dev *dext_device(struct dext *d, unsigned i)
{
    return i < d->ndevs ? d->devs[i] : NULL;
}

void dext_dev_identity(const struct dext_dev *dev, struct dext_identity *id)
{
    *id = dev->id;
}

bool dext_dev_claimed(struct dext_dev *dev)
{
    bool claimed;

    pthread_mutex_lock(&dev->lock);
    claimed = dev->claim_refs > 0 && !dev->terminated;
    pthread_mutex_unlock(&dev->lock);
    return claimed;
}

/* Host interface handed to the device: DMA through our IOMMU, interrupts. */
static int host_dma_rw(void *ctx, uint64_t bus, void *buf, size_t len, enum vdx_dma_dir dir)
{
    struct dext_dev *dev = ctx;
    int ret = iommu_rw(dev->iommu, bus, buf, len, dir);

    if (ret == -EFAULT) {
        vdx_log_ratelimited(&dev->rl, VDX_LOG_WARN,
                            "%s: IOMMU fault: device %s 0x%zx bytes at bus 0x%" PRIx64
                            " (not mapped)",
                            dev->bdf, dir == VDX_DMA_TO_DEVICE ? "read" : "wrote", len, bus);
    }
    return ret;
}

static void host_irq_raise(void *ctx, unsigned vector)
{
    struct dext_dev *dev = ctx;

    pthread_mutex_lock(&dev->irq_lock);
    if (dev->irq) {
        irq_raise(dev->irq, vector);
    } else {
        __atomic_add_fetch(&dev->c.irqs_unconfigured, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&dev->irq_lock);
}

static int read_identity(struct dext_dev *dev)
{
    const struct vdx_dev_ops *ops = dev->vd.ops;
    uint32_t ids = 0, rev_class = 0;
    int ret;

    ret = ops->config_read(dev->vd.dev, 0x00, 4, &ids);
    if (ret == 0) {
        ret = ops->config_read(dev->vd.dev, 0x08, 4, &rev_class);
    }
    dev->id.domain = dev->vd.domain;
    dev->id.bus = dev->vd.bus;
    dev->id.slot = dev->vd.slot;
    dev->id.fn = dev->vd.fn;
    dev->id.vendor = (uint16_t)(ids & 0xffff);
    dev->id.device = (uint16_t)(ids >> 16);
    dev->id.class_code = rev_class >> 8;
    snprintf(dev->bdf, sizeof(dev->bdf), "%04x:%02x:%02x.%x", dev->id.domain, dev->id.bus,
             dev->id.slot, dev->id.fn);
    return ret;
}

/* "iommu=identity|dart" inside a SPEC overrides the dext's default. */
static int spec_iommu(const char *spec, enum dext_iommu_mode def, enum dext_iommu_mode *mode)
{
    const char *p = strstr(spec, ",iommu=");

    *mode = def;
    if (!p) {
        return 0;
    }
    p += strlen(",iommu=");
    if (strncmp(p, "identity", 8) == 0 && (p[8] == ',' || p[8] == '\0')) {
        *mode = DEXT_IOMMU_IDENTITY;
    } else if (strncmp(p, "dart", 4) == 0 && (p[4] == ',' || p[4] == '\0')) {
        *mode = DEXT_IOMMU_DART;
    } else {
        return -EINVAL;
    }
    return 0;
}

static int make_iommu(struct dext_dev *dev, const struct dext_opts *o)
{
    struct iommu_config cfg = {.mode = dev->mode};

    if (dev->mode == DEXT_IOMMU_DART) {
        cfg.aperture_base = o->dart_base;
        cfg.aperture_size = o->dart_aperture;
        cfg.max_mappings = o->dart_max_mappings;
    } else {
        /* Only the DMA buffer (selector 3) is placed by the dext here. */
        cfg.aperture_base = 0xf000000000000000ull;
        cfg.aperture_size = DEXT_DMA_BUFFER_MAX * 4;
    }
    return iommu_create(&cfg, &dev->iommu);
}

static bool bdf_taken(struct dext *d, const struct dext_dev *dev)
{
    for (unsigned i = 0; i < d->ndevs; i++) {
        const struct dext_identity *o = &d->devs[i]->id;

        if (o->domain == dev->id.domain && o->bus == dev->id.bus &&
            o->slot == dev->id.slot && o->fn == dev->id.fn) {
            return true;
        }
    }
    return false;
}

static int publish_device(struct dext *d, struct dext_dev *dev, char *err, size_t errlen)
{
    struct dext_dev **n;
    int ret = 0;

    pthread_mutex_lock(&d->lock);
    if (bdf_taken(d, dev)) {
        snprintf(err, errlen, "a device with BDF %s already exists", dev->bdf);
        ret = -EEXIST;
        goto out_unlock;
    }
    n = realloc(d->devs, (d->ndevs + 1) * sizeof(*n));
    if (!n) {
        ret = -ENOMEM;
        goto out_unlock;
    }
    d->devs = n;
    dev->index = d->ndevs;
    d->devs[d->ndevs++] = dev;
out_unlock:
    pthread_mutex_unlock(&d->lock);
    return ret;
}

int dext_add_device(struct dext *d, const char *spec, char *err, size_t errlen)
{
    struct dext_dev *dev = calloc(1, sizeof(*dev));
    char dummy[8];
    int ret;

    if (!err) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (!dev) {
        return -ENOMEM;
    }
    dev->dext = d;
    pthread_mutex_init(&dev->lock, NULL);
    pthread_mutex_init(&dev->irq_lock, NULL);
    dev->host = (struct vdx_dev_host){dev, host_dma_rw, host_irq_raise};
    ret = spec_iommu(spec, d->opts.iommu, &dev->mode);
    if (ret < 0) {
        snprintf(err, errlen, "bad iommu= in '%s' (valid: identity, dart)", spec);
        goto out_free;
    }
    ret = make_iommu(dev, &d->opts);
    if (ret < 0) {
        snprintf(err, errlen, "cannot set up the IOMMU (%s)", strerror(-ret));
        goto out_free;
    }
    ret = vdx_device_create(spec, &dev->host, &dev->vd, err, errlen);
    if (ret < 0) {
        goto out_iommu;
    }
    ret = read_identity(dev);
    if (ret < 0) {
        snprintf(err, errlen, "%s: cannot read its identity (%s)", spec, strerror(-ret));
        goto out_device;
    }
    ret = publish_device(d, dev, err, errlen);
    if (ret < 0) {
        goto out_device;
    }
    vdx_log(VDX_LOG_INFO, "%s: %s %04x:%04x class %06x, iommu %s", dev->bdf,
            dev->vd.ops->kind, dev->id.vendor, dev->id.device, dev->id.class_code,
            dev->mode == DEXT_IOMMU_DART ? "dart" : "identity");
    return 0;

out_device:
    dev->vd.ops->destroy(dev->vd.dev);
out_iommu:
    iommu_destroy(dev->iommu);
out_free:
    pthread_mutex_destroy(&dev->irq_lock);
    pthread_mutex_destroy(&dev->lock);
    free(dev);
    return ret;
}

/* ---- user clients ----------------------------------------------------------- */

struct dext_uc *dext_uc_open(struct dext_dev *dev, dext_notify_fn notify, void *opaque)
{
    struct dext_uc *uc = calloc(1, sizeof(*uc));

    if (!uc) {
        return NULL;
    }
    uc->dev = dev;
    uc->notify = notify;
    uc->opaque = opaque;
    pthread_mutex_lock(&dev->lock);
    uc->id = ++dev->next_uc_id;
    uc->next = dev->clients;
    dev->clients = uc;
    dev->nclients++;
    pthread_mutex_unlock(&dev->lock);
    return uc;
}

void dext_uc_allow_local_va(struct dext_uc *uc)
{
    uc->allow_local_va = true;
}

void dext_uc_set_sink(struct dext_uc *uc, bool attached)
{
    pthread_mutex_lock(&uc->dev->lock);
    uc->sink = attached;
    pthread_mutex_unlock(&uc->dev->lock);
}

struct dext_dev *dext_uc_device(struct dext_uc *uc)
{
    return uc->dev;
}

/* Which IRQ state receives the device's raises; NULL stops delivery. */
static void set_irq(struct dext_dev *dev, struct dext_irq *irq, struct dext_uc *owner)
{
    pthread_mutex_lock(&dev->irq_lock);
    dev->irq = irq;
    dev->irq_owner = owner;
    pthread_mutex_unlock(&dev->irq_lock);
}

static void release_interrupts(struct dext_dev *dev)
{
    struct dext_irq *irq = dev->irq;

    if (!irq) {
        return;
    }
    set_irq(dev, NULL, NULL);
    dev->c.irqs_raised += irq->raised;
    dev->c.irqs_delivered += irq->delivered;
    dev->c.irqs_latched += irq->latched_count;
    dev->c.irqs_ignored += irq->ignored;
    if (dev->vd.ops->irq_release) {
        dev->vd.ops->irq_release(dev->vd.dev);
    }
    irq_destroy(irq);
}

static void region_release(struct dext_region *r, void *ctx)
{
    struct dext_uc *uc = ctx;
    struct dext_dev *dev = uc->dev;

    for (unsigned i = 0; i < r->nchunks; i++) {
        if (iommu_unmap(dev->iommu, r->bus[i]) < 0) {
            vdx_log(VDX_LOG_ERR, "%s: region 0x%" PRIx64 " chunk %u was not mapped",
                    dev->bdf, r->key, i);
        }
    }
    if (r->map_base) {
        vdx_shm_unmap(r->map_base, r->map_len);
        peer_budget_give(dev, uc, r->map_len);
    }
    dev->c.dma_regions_live--;
    dev->c.dma_bytes_live -= r->size;
    free(r);
}

static void dmabuf_release(struct dext_dev *dev, struct dma_buffer *b)
{
    if (!b) {
        return;
    }
    iommu_unmap(dev->iommu, b->bus);
    vdx_shm_unmap(b->ptr, b->map_len);
    close(b->fd);
    free(b);
}

static void release_claim(struct dext_uc *uc)
{
    struct dext_dev *dev = uc->dev;

    if (!uc->claimed) {
        return;
    }
    uc->claimed = false;
    if (--dev->claim_refs == 0 && dev->vd.ops->close) {
        dev->vd.ops->close(dev->vd.dev);
    }
}

static void unlink_client(struct dext_uc *uc)
{
    struct dext_dev *dev = uc->dev;

    for (struct dext_uc **p = &dev->clients; *p; p = &(*p)->next) {
        if (*p == uc) {
            *p = uc->next;
            dev->nclients--;
            return;
        }
    }
}

void dext_uc_close(struct dext_uc *uc)
{
    struct dext_dev *dev;

    if (!uc) {
        return;
    }
    dev = uc->dev;
    pthread_mutex_lock(&dev->lock);
    if (dev->irq_owner == uc) {
        release_interrupts(dev);
    }
    regions_clear(&uc->regions, region_release, uc);
    dmabuf_release(dev, uc->dmabuf);
    uc->dmabuf = NULL;
    release_claim(uc);
    unlink_client(uc);
    pthread_mutex_unlock(&dev->lock);
    free(uc);
}

static void dev_destroy(struct dext_dev *dev)
{
    while (dev->clients) {
        dext_uc_close(dev->clients);
    }
    dev->vd.ops->destroy(dev->vd.dev);
    iommu_destroy(dev->iommu);
    pthread_mutex_destroy(&dev->irq_lock);
    pthread_mutex_destroy(&dev->lock);
    free(dev);
}

/* ---- selectors ---------------------------------------------------------------
 * Each runs with dev->lock held; `room` is the output capacity (already
 * checked against the minimum), the return value the status, *nout the count
 * written.
 */

typedef dext_status (*sel_fn)(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                              uint32_t room, uint32_t *nout);

static dext_status sel_get_identity(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                                    uint32_t room, uint32_t *nout)
{
    const struct dext_identity *id = &uc->dev->id;

    (void)in;
    (void)room;
    out[0] = id->bus;
    out[1] = id->slot;
    out[2] = id->fn;
    out[3] = id->vendor;
    out[4] = id->device;
    out[5] = id->class_code;
    *nout = 6;
    return DEXT_OK;
}

/* First claim: open the device and enable memory space and bus mastering. */
/* Set Memory Space and Bus Master in COMMAND if either is clear. */
static int enable_decoding(struct dext_dev *dev)
{
    const struct vdx_dev_ops *ops = dev->vd.ops;
    uint32_t cmd = 0;
    int ret = ops->config_read(dev->vd.dev, 0x04, 2, &cmd);

    if (ret == 0 && (cmd & 0x6) != 0x6) {
        ret = ops->config_write(dev->vd.dev, 0x04, 2, cmd | 0x6);
    }
    return ret;
}

static dext_status open_device(struct dext_dev *dev)
{
    const struct vdx_dev_ops *ops = dev->vd.ops;
    int ret = ops->open ? ops->open(dev->vd.dev) : 0;

    if (ret < 0) {
        return dext_status_from_errno(ret);
    }
    ret = enable_decoding(dev);
    if (ret < 0 && ops->close) {
        ops->close(dev->vd.dev);
    }
    return dext_status_from_errno(ret);
}

static dext_status sel_claim(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                             uint32_t room, uint32_t *nout)
{
    struct dext_dev *dev = uc->dev;

    (void)in;
    (void)out;
    (void)room;
    *nout = 0;
    if (uc->claimed) {
        return DEXT_OK;
    }
    if (dev->claim_refs == 0) {
        dext_status st = open_device(dev);

        if (st != DEXT_OK) {
            return st;
        }
    }
    dev->claim_refs++;
    uc->claimed = true;
    vdx_log(VDX_LOG_INFO, "%s: client %" PRIu64 " claimed (%u claim%s)", dev->bdf, uc->id,
            dev->claim_refs, dev->claim_refs == 1 ? "" : "s");
    return DEXT_OK;
}

static dext_status sel_terminate(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                                 uint32_t room, uint32_t *nout)
{
    (void)in;
    (void)out;
    (void)room;
    *nout = 0;
    uc->dev->terminated = true;
    vdx_log(VDX_LOG_WARN, "%s: terminated by client %" PRIu64, uc->dev->bdf, uc->id);
    return DEXT_OK;
}

static bool is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static uint64_t page_round(uint64_t v)
{
    uint64_t ps = vdx_page_size();

    return (v + ps - 1) / ps * ps;
}

static int dmabuf_create(struct dext_dev *dev, uint64_t size, uint64_t align,
                         struct dma_buffer **out)
{
    struct dma_buffer *b = calloc(1, sizeof(*b));
    int ret;

    if (!b) {
        return -ENOMEM;
    }
    b->size = size;
    b->map_len = page_round(size);
    ret = vdx_shm_create("vfio-dext-dmabuf", b->map_len);
    if (ret < 0) {
        goto out_free;
    }
    b->fd = ret;
    b->ptr = vdx_shm_map(b->fd, 0, b->map_len);
    if (!b->ptr) {
        ret = -errno;
        goto out_close;
    }
    ret = iommu_map_alloc(dev->iommu, b->ptr, size, align, &b->bus);
    if (ret < 0) {
        goto out_unmap;
    }
    *out = b;
    return 0;

out_unmap:
    vdx_shm_unmap(b->ptr, b->map_len);
out_close:
    close(b->fd);
out_free:
    free(b);
    return ret;
}

static dext_status sel_allocate_dma_buffer(struct dext_uc *uc, const uint64_t *in,
                                           uint64_t *out, uint32_t room, uint32_t *nout)
{
    struct dext_dev *dev = uc->dev;
    uint64_t size = in[0], align = in[1] ? in[1] : DEXT_DMA_BUFFER_DEFAULT_ALIGN;
    struct dma_buffer *b = NULL;
    int ret;

    (void)room;
    *nout = 0;
    if (size == 0 || size > DEXT_DMA_BUFFER_MAX || !is_pow2(align) ||
        align > DEXT_DMA_BUFFER_MAX) {
        return DEXT_E_BAD_ARGUMENT;
    }
    dmabuf_release(dev, uc->dmabuf);
    uc->dmabuf = NULL;
    ret = dmabuf_create(dev, size, align, &b);
    if (ret < 0) {
        return dext_status_from_errno(ret);
    }
    uc->dmabuf = b;
    out[0] = size;
    out[1] = 0; /* dmaFlags */
    out[2] = 1; /* segmentCount */
    out[3] = b->bus;
    out[4] = size;
    out[5] = dev->id.class_code; /* the seed's oddity, kept for compatibility */
    *nout = 6;
    return DEXT_OK;
}

static dext_status sel_free_dma_buffer(struct dext_uc *uc, const uint64_t *in,
                                       uint64_t *out, uint32_t room, uint32_t *nout)
{
    (void)in;
    (void)out;
    (void)room;
    *nout = 0;
    dmabuf_release(uc->dev, uc->dmabuf);
    uc->dmabuf = NULL;
    return DEXT_OK;
}

/* Account one mmap of a peer's memory against the client's and the dext's caps. */
static bool peer_budget_take(struct dext_dev *dev, struct dext_uc *uc, uint64_t len)
{
    struct dext *d = dev->dext;
    uint64_t maps = __atomic_add_fetch(&d->peer_maps, 1, __ATOMIC_RELAXED);
    uint64_t bytes = __atomic_add_fetch(&d->peer_bytes, len, __ATOMIC_RELAXED);

    uc->peer_maps++;
    uc->peer_bytes += len;
    if (maps > DEXT_PEER_MAPS_TOTAL || bytes > DEXT_PEER_BYTES_TOTAL ||
        uc->peer_maps > DEXT_PEER_MAPS_PER_CLIENT || uc->peer_bytes > DEXT_PEER_BYTES_PER_CLIENT) {
        peer_budget_give(dev, uc, len);
        return false;
    }
    return true;
}

static void peer_budget_give(struct dext_dev *dev, struct dext_uc *uc, uint64_t len)
{
    __atomic_sub_fetch(&dev->dext->peer_maps, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&dev->dext->peer_bytes, len, __ATOMIC_RELAXED);
    uc->peer_maps--;
    uc->peer_bytes -= len;
}

/* Make the region's memory reachable: the caller's pointer, or our map of its fd. */
static dext_status region_attach_memory(struct dext_uc *uc, struct dext_region *r,
                                        const struct dext_dma_src *src)
{
    struct dext_dev *dev = uc->dev;
    uint64_t ps = vdx_page_size(), base, delta;
    int ret;

    if (src->fd < 0) {
        r->host = src->va;
        return DEXT_OK;
    }
    ret = vdx_shm_check(src->fd, src->fd_offset, r->size);
    if (ret == -EPERM) {
        vdx_log(VDX_LOG_WARN, "%s: DMA memory refused: its fd is not sealed against "
                "shrinking (F_SEAL_SHRINK), a peer could truncate it under the device",
                dev->bdf);
        return DEXT_E_UNSUPPORTED;
    }
    if (ret < 0) {
        return ret == -ERANGE ? DEXT_E_OVERRUN : dext_status_from_errno(ret);
    }
    base = src->fd_offset / ps * ps;
    delta = src->fd_offset - base;
    r->map_len = delta + r->size;
    if (!peer_budget_take(dev, uc, r->map_len)) {
        vdx_log_ratelimited(&dev->rl, VDX_LOG_WARN, "%s: client %" PRIu64 " refused: "
                            "too many or too large mappings of peer memory", dev->bdf, uc->id);
        return DEXT_E_NO_SPACE;
    }
    r->map_base = vdx_shm_map(src->fd, base, r->map_len);
    if (!r->map_base) {
        peer_budget_give(dev, uc, r->map_len);
        return dext_status_from_errno(-errno);
    }
    r->host = (uint8_t *)r->map_base + delta;
    return DEXT_OK;
}

static uint64_t chunk_len(const struct dext_region *r, unsigned i)
{
    uint64_t off = (uint64_t)i * DEXT_DMA_CHUNK_SIZE;

    return r->size - off < DEXT_DMA_CHUNK_SIZE ? r->size - off : DEXT_DMA_CHUNK_SIZE;
}

static int map_chunks(struct dext_dev *dev, struct dext_region *r)
{
    int ret = 0;
    unsigned i;

    for (i = 0; i < r->nchunks && ret == 0; i++) {
        uint8_t *host = r->host + (uint64_t)i * DEXT_DMA_CHUNK_SIZE;

        if (dev->mode == DEXT_IOMMU_IDENTITY) {
            r->bus[i] = r->key + (uint64_t)i * DEXT_DMA_CHUNK_SIZE;
            ret = iommu_map_at(dev->iommu, r->bus[i], host, chunk_len(r, i));
        } else {
            ret = iommu_map_alloc(dev->iommu, host, chunk_len(r, i), 0, &r->bus[i]);
        }
    }
    if (ret < 0) {
        /* Roll back the chunks mapped before the failing one. */
        for (unsigned j = 0; j + 1 < i; j++) {
            iommu_unmap(dev->iommu, r->bus[j]);
        }
    }
    return ret;
}

static dext_status register_checks(struct dext_uc *uc, uint64_t key, uint64_t size,
                                   const struct dext_dma_src *src, uint64_t *nchunks)
{
    if (size == 0 || (src->fd < 0 && !src->va)) {
        return DEXT_E_BAD_ARGUMENT;
    }
    if (size > (uint64_t)DEXT_DMA_MAX_CHUNKS * DEXT_DMA_CHUNK_SIZE ||
        uc->regions.count >= DEXT_DMA_MAX_REGIONS) {
        return DEXT_E_NO_SPACE;
    }
    if (uc->dev->mode == DEXT_IOMMU_IDENTITY && key + size < key) {
        return DEXT_E_BAD_ARGUMENT;
    }
    *nchunks = size / DEXT_DMA_CHUNK_SIZE + (size % DEXT_DMA_CHUNK_SIZE != 0);
    if (regions_find(&uc->regions, key)) {
        vdx_log_ratelimited(&uc->dev->rl, VDX_LOG_WARN,
                            "%s: client %" PRIu64 " registered key 0x%" PRIx64 " twice",
                            uc->dev->bdf, uc->id, key);
        return DEXT_E_STILL_OPEN;
    }
    return DEXT_OK;
}

static void count_region(struct dext_dev *dev, uint64_t size)
{
    struct dev_counters *c = &dev->c;

    c->dma_regions_live++;
    c->dma_bytes_live += size;
    if (c->dma_regions_live > c->dma_regions_peak) {
        c->dma_regions_peak = c->dma_regions_live;
    }
    if (c->dma_bytes_live > c->dma_bytes_peak) {
        c->dma_bytes_peak = c->dma_bytes_live;
    }
}

static dext_status register_region(struct dext_uc *uc, uint64_t key,
                                   const struct dext_dma_src *src, uint64_t size,
                                   uint64_t *bus, uint64_t *bus_len)
{
    struct dext_dev *dev = uc->dev;
    struct dext_region *r;
    uint64_t nchunks;
    dext_status st = register_checks(uc, key, size, src, &nchunks);
    int ret;

    if (st != DEXT_OK) {
        return st;
    }
    r = calloc(1, sizeof(*r) + nchunks * sizeof(r->bus[0]));
    if (!r) {
        return DEXT_E_NO_SPACE;
    }
    r->key = key;
    r->size = size;
    r->nchunks = (unsigned)nchunks;
    st = region_attach_memory(uc, r, src);
    if (st != DEXT_OK) {
        goto out_free;
    }
    ret = map_chunks(dev, r);
    if (ret == 0) {
        ret = regions_insert(&uc->regions, r);
        if (ret < 0) {
            for (unsigned i = 0; i < r->nchunks; i++) {
                iommu_unmap(dev->iommu, r->bus[i]);
            }
        }
    }
    if (ret < 0) {
        st = dext_status_from_errno(ret);
        goto out_unmap;
    }
    count_region(dev, size);
    *bus = r->bus[0];
    *bus_len = chunk_len(r, 0);
    return DEXT_OK;

out_unmap:
    if (r->map_base) {
        vdx_shm_unmap(r->map_base, r->map_len);
        peer_budget_give(dev, uc, r->map_len);
    }
out_free:
    free(r);
    return st;
}

static dext_status sel_register_dma_region(struct dext_uc *uc, const uint64_t *in,
                                           uint64_t *out, uint32_t room, uint32_t *nout)
{
    struct dext_dma_src src = {.va = (void *)(uintptr_t)in[1], .fd = -1};
    dext_status st;

    (void)room;
    *nout = 0;
    if (!uc->allow_local_va) {
        /* A peer's address means nothing here: memory must come as an fd. */
        return DEXT_E_UNSUPPORTED;
    }
    st = register_region(uc, in[0], &src, in[2], &out[1], &out[2]);
    if (st == DEXT_OK) {
        out[0] = 1;
        *nout = 3;
    }
    return st;
}

static dext_status sel_unregister_dma_region(struct dext_uc *uc, const uint64_t *in,
                                             uint64_t *out, uint32_t room, uint32_t *nout)
{
    struct dext_region *r = regions_remove(&uc->regions, in[0]);

    (void)out;
    (void)room;
    *nout = 0;
    if (!r) {
        return DEXT_E_NOT_FOUND;
    }
    region_release(r, uc);
    return DEXT_OK;
}

static dext_status sel_probe_dma_region(struct dext_uc *uc, const uint64_t *in,
                                        uint64_t *out, uint32_t room, uint32_t *nout)
{
    struct dext_region *r = regions_find(&uc->regions, in[0]);
    uint64_t off = in[1];

    (void)room;
    *nout = 0;
    if (!r || off >= r->size) {
        return DEXT_E_NOT_FOUND;
    }
    if (r->size - off < 8) {
        return DEXT_E_OVERRUN;
    }
    memcpy(&out[0], r->host + off, 8);
    *nout = 1;
    return DEXT_OK;
}

static bool width_ok(uint64_t width, bool allow8)
{
    return width == 1 || width == 2 || width == 4 || (allow8 && width == 8);
}

static uint64_t width_mask(uint64_t width)
{
    return width == 8 ? ~0ull : (1ull << (width * 8)) - 1;
}

/* Seed §2.6: 32-bit reads of BAR registers report only the BAR's type bits. */
static bool synthesize_bar(struct dext_dev *dev, uint64_t off, uint64_t width,
                           uint32_t *val)
{
    struct vdx_bar_info bi = {0};

    if (width != 4 || off < 0x10 || off > 0x24 || off % 4 != 0) {
        return false;
    }
    if (dev->vd.ops->bar_info(dev->vd.dev, (unsigned)(off - 0x10) / 4, &bi) < 0 ||
        bi.size == 0) {
        *val = 0;
    } else {
        *val = bi.type;
    }
    return true;
}

static dext_status sel_config_read(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                                   uint32_t room, uint32_t *nout)
{
    struct dext_dev *dev = uc->dev;
    uint64_t off = in[0], width = in[1];
    uint32_t val = UINT32_MAX;
    int ret = 0;

    (void)room;
    *nout = 0;
    if (!width_ok(width, false) || off >= DEXT_CONFIG_SPACE_SIZE ||
        off + width > DEXT_CONFIG_SPACE_SIZE) {
        return DEXT_E_BAD_ARGUMENT;
    }
    dev->c.config_calls++;
    if (!synthesize_bar(dev, off, width, &val)) {
        ret = dev->vd.ops->config_read(dev->vd.dev, (uint32_t)off, (unsigned)width, &val);
    }
    if (ret < 0) {
        return dext_status_from_errno(ret);
    }
    out[0] = val & width_mask(width);
    *nout = 1;
    return DEXT_OK;
}

static bool spans(uint64_t off, uint64_t width, uint64_t lo, uint64_t hi)
{
    return off <= hi && off + width > lo;
}

static void count_config_write(struct dev_counters *c, uint64_t off, uint64_t width)
{
    c->config_writes_command += spans(off, width, 0x04, 0x05);
    c->config_writes_status += spans(off, width, 0x06, 0x07);
    c->config_writes_bar += spans(off, width, 0x10, 0x27);
}

static dext_status sel_config_write(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                                    uint32_t room, uint32_t *nout)
{
    struct dext_dev *dev = uc->dev;
    uint64_t off = in[0], width = in[1], val = in[2];

    (void)out;
    (void)room;
    *nout = 0;
    if (!width_ok(width, false) || off >= DEXT_CONFIG_SPACE_SIZE ||
        off + width > DEXT_CONFIG_SPACE_SIZE || (val & ~width_mask(width)) != 0) {
        return DEXT_E_BAD_ARGUMENT;
    }
    dev->c.config_calls++;
    count_config_write(&dev->c, off, width);
    return dext_status_from_errno(
        dev->vd.ops->config_write(dev->vd.dev, (uint32_t)off, (unsigned)width, (uint32_t)val));
}

static dext_status bar_lookup(struct dext_dev *dev, uint64_t bar, struct vdx_bar_info *bi)
{
    int ret;

    if (bar >= DEXT_NUM_BARS) {
        return DEXT_E_BAD_ARGUMENT;
    }
    ret = dev->vd.ops->bar_info(dev->vd.dev, (unsigned)bar, bi);
    if (ret < 0) {
        return dext_status_from_errno(ret);
    }
    return bi->size ? DEXT_OK : DEXT_E_NOT_FOUND;
}

static dext_status sel_get_bar_info(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                                    uint32_t room, uint32_t *nout)
{
    struct vdx_bar_info bi = {0};
    dext_status st = bar_lookup(uc->dev, in[0], &bi);

    (void)room;
    *nout = 0;
    if (st != DEXT_OK) {
        return st;
    }
    out[0] = in[0]; /* memoryIndex: the BAR index */
    out[1] = bi.size;
    out[2] = bi.type;
    *nout = 3;
    return DEXT_OK;
}

static dext_status mmio_checks(struct dext_dev *dev, uint64_t bar, uint64_t off,
                               uint64_t width)
{
    struct vdx_bar_info bi = {0};
    dext_status st;

    if (!width_ok(width, true)) {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = bar_lookup(dev, bar, &bi);
    if (st != DEXT_OK) {
        return st;
    }
    if (off >= bi.size || bi.size - off < width) {
        return DEXT_E_OVERRUN;
    }
    return off % width ? DEXT_E_NOT_ALIGNED : DEXT_OK;
}

static dext_status sel_mmio_read(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                                 uint32_t room, uint32_t *nout)
{
    struct dext_dev *dev = uc->dev;
    dext_status st = mmio_checks(dev, in[0], in[1], in[2]);
    uint64_t val = UINT64_MAX;
    int ret;

    (void)room;
    *nout = 0;
    if (st != DEXT_OK) {
        return st;
    }
    dev->c.mmio_calls++;
    ret = dev->vd.ops->mmio_read(dev->vd.dev, (unsigned)in[0], in[1], (unsigned)in[2], &val);
    if (ret < 0) {
        return dext_status_from_errno(ret);
    }
    out[0] = val & width_mask(in[2]);
    *nout = 1;
    return DEXT_OK;
}

static dext_status sel_mmio_write(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                                  uint32_t room, uint32_t *nout)
{
    struct dext_dev *dev = uc->dev;
    dext_status st = mmio_checks(dev, in[0], in[1], in[2]);

    (void)out;
    (void)room;
    *nout = 0;
    if (st != DEXT_OK) {
        return st;
    }
    if (in[3] & ~width_mask(in[2])) {
        return DEXT_E_BAD_ARGUMENT;
    }
    dev->c.mmio_calls++;
    return dext_status_from_errno(dev->vd.ops->mmio_write(dev->vd.dev, (unsigned)in[0],
                                                          in[1], (unsigned)in[2], in[3]));
}

/* Capability `id` in the standard list, or 0. Bounded against loops. */
static uint32_t find_cap(struct dext_dev *dev, uint8_t id)
{
    const struct vdx_dev_ops *ops = dev->vd.ops;
    uint32_t status = 0, ptr = 0, hdr = 0;

    if (ops->config_read(dev->vd.dev, 0x06, 2, &status) < 0 || !(status & 0x10) ||
        ops->config_read(dev->vd.dev, 0x34, 1, &ptr) < 0) {
        return 0;
    }
    for (int n = 0; n < 48 && ptr >= 0x40 && ptr < 0x100; n++) {
        ptr &= ~3u;
        if (ops->config_read(dev->vd.dev, ptr, 2, &hdr) < 0) {
            return 0;
        }
        if ((hdr & 0xff) == id) {
            return ptr;
        }
        ptr = hdr >> 8;
    }
    return 0;
}

/* Seed §2.7 step 3: vectors from MSI-X, else MSI, else 1; clamped to 256. */
static unsigned vectors_wanted(struct dext_dev *dev)
{
    uint32_t cap, ctl = 0;
    unsigned n = 1;

    if ((cap = find_cap(dev, 0x11)) != 0) {
        dev->vd.ops->config_read(dev->vd.dev, cap + 2, 2, &ctl);
        n = (ctl & 0x7ff) + 1;
    } else if ((cap = find_cap(dev, 0x05)) != 0) {
        dev->vd.ops->config_read(dev->vd.dev, cap + 2, 2, &ctl);
        n = 1u << ((ctl >> 1) & 7);
    }
    return n == 0 || n > DEXT_MAX_VECTORS ? DEXT_MAX_VECTORS : n;
}

static void uc_notify(void *opaque)
{
    struct dext_uc *uc = opaque;

    if (uc->notify) {
        uc->notify(uc->opaque);
    }
}

static dext_status sel_setup_interrupts(struct dext_uc *uc, const uint64_t *in,
                                        uint64_t *out, uint32_t room, uint32_t *nout)
{
    struct dext_dev *dev = uc->dev;
    unsigned want = vectors_wanted(dev), granted = want;
    struct dext_irq *irq;
    int ret;

    (void)in;
    (void)room;
    *nout = 0;
    if (dev->irq) {
        return DEXT_E_STILL_OPEN;
    }
    ret = irq_create(want, uc_notify, uc, &irq);
    if (ret < 0) {
        return dext_status_from_errno(ret);
    }
    /* Publish before configuring: the device may raise at once. */
    set_irq(dev, irq, uc);
    if (dev->vd.ops->irq_configure) {
        ret = dev->vd.ops->irq_configure(dev->vd.dev, want, &granted);
    }
    if (ret < 0 || granted == 0) {
        if (ret == 0 && dev->vd.ops->irq_release) {
            dev->vd.ops->irq_release(dev->vd.dev);
        }
        set_irq(dev, NULL, NULL);
        irq_destroy(irq);
        return ret < 0 ? dext_status_from_errno(ret) : DEXT_E_NOT_FOUND;
    }
    irq_set_vectors(irq, granted < want ? granted : want);
    out[0] = irq_vectors(irq);
    *nout = 1;
    return DEXT_OK;
}

static dext_status sel_check_interrupt(struct dext_uc *uc, const uint64_t *in,
                                       uint64_t *out, uint32_t room, uint32_t *nout)
{
    (void)in;
    (void)room;
    *nout = 0;
    if (uc->dev->irq_owner != uc) {
        return DEXT_E_NOT_READY;
    }
    irq_check(uc->dev->irq, out);
    *nout = DEXT_IRQ_WORDS;
    return DEXT_OK;
}

static dext_status sel_wait_interrupt(struct dext_uc *uc, const uint64_t *in,
                                      uint64_t *out, uint32_t room, uint32_t *nout)
{
    (void)in;
    (void)out;
    (void)room;
    *nout = 0;
    if (uc->dev->irq_owner != uc) {
        return DEXT_E_NOT_READY;
    }
    if (!uc->notify || !uc->sink) {
        return DEXT_E_BAD_ARGUMENT; /* no completion could be delivered */
    }
    irq_arm(uc->dev->irq);
    return DEXT_OK;
}

static dext_status sel_set_irq_mask(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                                    uint32_t room, uint32_t *nout)
{
    (void)out;
    (void)room;
    *nout = 0;
    if (uc->dev->irq_owner != uc) {
        return DEXT_E_NOT_READY;
    }
    irq_set_mask(uc->dev->irq, in);
    return DEXT_OK;
}

/* After a reset the device lost its interrupt configuration: restore it. */
static void restore_interrupts(struct dext_dev *dev)
{
    unsigned granted = 0;

    if (dev->irq && dev->vd.ops->irq_configure &&
        dev->vd.ops->irq_configure(dev->vd.dev, irq_vectors(dev->irq), &granted) < 0) {
        vdx_log(VDX_LOG_ERR, "%s: interrupts not restored after reset", dev->bdf);
    }
}

static dext_status sel_reset_device(struct dext_uc *uc, const uint64_t *in, uint64_t *out,
                                    uint32_t room, uint32_t *nout)
{
    struct dext_dev *dev = uc->dev;
    uint32_t method = DEXT_RESET_FUNCTION;
    int ret = dev->vd.ops->reset(dev->vd.dev, DEXT_RESET_FUNCTION);

    (void)in;
    *nout = 0;
    if (ret < 0) {
        method = DEXT_RESET_HOT;
        ret = dev->vd.ops->reset(dev->vd.dev, DEXT_RESET_HOT);
    }
    if (ret < 0) {
        dev->c.resets_failed++;
        vdx_log(VDX_LOG_ERR, "%s: reset failed: %s", dev->bdf, strerror(-ret));
        return dext_status_from_errno(ret);
    }
    if (method == DEXT_RESET_FUNCTION) {
        dev->c.resets_function++;
    } else {
        dev->c.resets_hot++;
    }
    dev->c.last_reset_method = method;
    /* A reset clears COMMAND: the claimed device keeps decoding and mastering. */
    if (enable_decoding(dev) < 0) {
        vdx_log(VDX_LOG_ERR, "%s: COMMAND not restored after reset", dev->bdf);
    }
    restore_interrupts(dev);
    if (room >= 1) {
        out[0] = method;
        *nout = 1;
    }
    return DEXT_OK;
}

struct selector {
    sel_fn fn;
    uint8_t min_in, min_out;
    bool needs_claim;
};

#define SEL(name, fn, claim) [DEXT_SEL_##name] = {fn, DEXT_IN_##name, DEXT_OUT_##name, claim}

static const struct selector selectors[DEXT_SEL_COUNT] = {
    SEL(GET_IDENTITY, sel_get_identity, false),
    SEL(CLAIM, sel_claim, false),
    SEL(TERMINATE, sel_terminate, false),
    SEL(ALLOCATE_DMA_BUFFER, sel_allocate_dma_buffer, true),
    SEL(FREE_DMA_BUFFER, sel_free_dma_buffer, false),
    SEL(REGISTER_DMA_REGION, sel_register_dma_region, true),
    SEL(UNREGISTER_DMA_REGION, sel_unregister_dma_region, false),
    SEL(PROBE_DMA_REGION, sel_probe_dma_region, false),
    SEL(CONFIG_READ, sel_config_read, false),
    SEL(CONFIG_WRITE, sel_config_write, false),
    SEL(GET_BAR_INFO, sel_get_bar_info, false),
    SEL(MMIO_READ, sel_mmio_read, false),
    SEL(MMIO_WRITE, sel_mmio_write, false),
    SEL(SETUP_INTERRUPTS, sel_setup_interrupts, true),
    SEL(CHECK_INTERRUPT, sel_check_interrupt, false),
    SEL(WAIT_INTERRUPT, sel_wait_interrupt, false),
    SEL(SET_IRQ_MASK, sel_set_irq_mask, false),
    SEL(RESET_DEVICE, sel_reset_device, true),
};

static dext_status call_checks(struct dext_uc *uc, uint32_t sel, const uint64_t *in,
                               uint32_t nin, const uint64_t *out, const uint32_t *nout)
{
    if (!uc || !nout) {
        return DEXT_E_BAD_ARGUMENT;
    }
    if (sel >= DEXT_SEL_COUNT) {
        return DEXT_E_UNSUPPORTED;
    }
    if (nin < selectors[sel].min_in || *nout < selectors[sel].min_out ||
        (nin && !in) || (*nout && !out) || nin > DEXT_MAX_SCALARS) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return DEXT_OK;
}

dext_status dext_uc_call(struct dext_uc *uc, uint32_t sel, const uint64_t *in, uint32_t nin,
                         uint64_t *out, uint32_t *nout)
{
    dext_status st = call_checks(uc, sel, in, nin, out, nout);
    struct dext_dev *dev;
    uint32_t room;

    if (st != DEXT_OK) {
        if (nout) {
            *nout = 0;
        }
        return st;
    }
    dev = uc->dev;
    room = *nout;
    *nout = 0;
    pthread_mutex_lock(&dev->lock);
    if (dev->terminated) {
        st = DEXT_E_NOT_ATTACHED;
    } else if (selectors[sel].needs_claim && dev->claim_refs == 0) {
        st = DEXT_E_NOT_OPEN;
    } else {
        st = selectors[sel].fn(uc, in, out, room, nout);
    }
    pthread_mutex_unlock(&dev->lock);
    return st;
}

dext_status dext_uc_register_dma(struct dext_uc *uc, uint64_t key,
                                 const struct dext_dma_src *src, uint64_t size,
                                 uint64_t *bus, uint64_t *bus_len)
{
    struct dext_dev *dev;
    uint64_t b = 0, l = 0;
    dext_status st;

    if (!uc || !src || (src->fd < 0 && !uc->allow_local_va)) {
        return !uc || !src ? DEXT_E_BAD_ARGUMENT : DEXT_E_UNSUPPORTED;
    }
    dev = uc->dev;
    pthread_mutex_lock(&dev->lock);
    if (dev->terminated) {
        st = DEXT_E_NOT_ATTACHED;
    } else if (dev->claim_refs == 0) {
        st = DEXT_E_NOT_OPEN;
    } else {
        st = register_region(uc, key, src, size, &b, &l);
    }
    pthread_mutex_unlock(&dev->lock);
    if (bus) {
        *bus = b;
    }
    if (bus_len) {
        *bus_len = l;
    }
    return st;
}

/* ---- memory for mapping (CopyClientMemoryForType) ------------------------- */

static dext_status dup_into(int fd, struct dext_mem *mem)
{
    mem->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return mem->fd < 0 ? dext_status_from_errno(-errno) : DEXT_OK;
}

static dext_status copy_bar(struct dext_dev *dev, unsigned bar, struct dext_mem *mem)
{
    struct vdx_bar_info bi = {0};
    dext_status st = bar_lookup(dev, bar, &bi);
    int ret;

    if (st != DEXT_OK) {
        return st;
    }
    if ((bi.type & DEXT_BAR_TYPE_IO) || !dev->vd.ops->bar_fd) {
        return DEXT_E_UNSUPPORTED;
    }
    ret = dev->vd.ops->bar_fd(dev->vd.dev, bar, &mem->fd, &mem->fd_offset);
    if (ret < 0) {
        mem->fd = -1;
        return dext_status_from_errno(ret);
    }
    mem->size = bi.size;
    mem->wc = (bi.type & DEXT_BAR_TYPE_PREFETCH) != 0;
    return DEXT_OK;
}

static dext_status copy_memory_locked(struct dext_uc *uc, uint32_t type, struct dext_mem *mem)
{
    struct dext_dev *dev = uc->dev;

    if (type == DEXT_MEM_DMA_BUFFER) {
        if (!uc->dmabuf) {
            return DEXT_E_NOT_READY;
        }
        mem->ptr = uc->dmabuf->ptr;
        mem->size = uc->dmabuf->map_len;
        return dup_into(uc->dmabuf->fd, mem);
    }
    if (type >= DEXT_MEM_BAR0 && type <= DEXT_MEM_BAR5) {
        return copy_bar(dev, type - DEXT_MEM_BAR0, mem);
    }
    if (type == DEXT_MEM_IRQ_STATE) {
        if (dev->irq_owner != uc) {
            return DEXT_E_NOT_READY;
        }
        mem->ptr = dev->irq->page;
        mem->size = DEXT_IRQ_PAGE_SIZE;
        return dup_into(dev->irq->fd, mem);
    }
    return DEXT_E_UNSUPPORTED;
}

dext_status dext_uc_copy_memory(struct dext_uc *uc, uint32_t type, struct dext_mem *mem)
{
    dext_status st;

    if (!uc || !mem) {
        return DEXT_E_BAD_ARGUMENT;
    }
    *mem = (struct dext_mem){.fd = -1};
    pthread_mutex_lock(&uc->dev->lock);
    st = uc->dev->terminated ? DEXT_E_NOT_ATTACHED : copy_memory_locked(uc, type, mem);
    pthread_mutex_unlock(&uc->dev->lock);
    return st;
}
