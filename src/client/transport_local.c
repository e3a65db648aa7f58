/* SPDX-License-Identifier: BSD-3-Clause */
/* The local transport: direct calls into an in-process struct dext. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "client/transport.h"
#include "platform/platform.h"

struct local_uc {
    struct dext_uc *uc;
    pthread_mutex_t lock; /* guards notify_fd against the dext's callback */
    int notify_fd;
};

static dext_status local_list(void *ep, struct vdx_device_desc **devs, size_t *n)
{
    struct dext *d = ep;
    unsigned count = dext_device_count(d);
    struct vdx_device_desc *v = calloc(count ? count : 1, sizeof(*v));

    if (!v) {
        return DEXT_E_NO_SPACE;
    }
    for (unsigned i = 0; i < count; i++) {
        struct dext_dev *dev = dext_device(d, i);
        struct dext_identity id;

        dext_dev_identity(dev, &id);
        v[i] = (struct vdx_device_desc){id.domain, id.bus, id.slot, id.fn, id.vendor,
                                        id.device, id.class_code, dext_dev_claimed(dev)};
    }
    *devs = v;
    *n = count;
    return DEXT_OK;
}

static dext_status local_status(void *ep, char **json)
{
    struct json_object *o = dext_status_json(ep);

    *json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return *json ? DEXT_OK : DEXT_E_NO_SPACE;
}

/* Called by the dext when an armed wait completes; from any thread. */
static void local_notify(void *opaque)
{
    struct local_uc *l = opaque;

    pthread_mutex_lock(&l->lock);
    if (l->notify_fd >= 0) {
        vdx_event_signal(l->notify_fd);
    }
    pthread_mutex_unlock(&l->lock);
}

static dext_status local_open(void *ep, unsigned index, void **out)
{
    struct dext_dev *dev = dext_device(ep, index);
    struct local_uc *l;

    if (!dev) {
        return DEXT_E_NOT_FOUND;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        return DEXT_E_NO_SPACE;
    }
    pthread_mutex_init(&l->lock, NULL);
    l->notify_fd = -1;
    l->uc = dext_uc_open(dev, local_notify, l);
    if (!l->uc) {
        pthread_mutex_destroy(&l->lock);
        free(l);
        return DEXT_E_NO_SPACE;
    }
    dext_uc_allow_local_va(l->uc);
    *out = l;
    return DEXT_OK;
}

static dext_status local_call(void *uc, uint32_t sel, const uint64_t *in, uint32_t nin,
                              uint64_t *out, uint32_t *nout)
{
    struct local_uc *l = uc;

    return dext_uc_call(l->uc, sel, in, nin, out, nout);
}

static dext_status local_register_dma(void *uc, uint64_t key, const struct dext_dma_src *src,
                                      uint64_t size, uint64_t *bus, uint64_t *bus_len)
{
    struct local_uc *l = uc;

    return dext_uc_register_dma(l->uc, key, src, size, bus, bus_len);
}

/* Both the dext's own pointer (same process: the library uses it instead of
 * mapping) and its descriptor, when it has one (vdx_bar_fd() hands it on;
 * the library closes what it does not keep). */
static dext_status local_copy_memory(void *uc, uint32_t type, struct dext_mem *mem)
{
    struct local_uc *l = uc;

    return dext_uc_copy_memory(l->uc, type, mem);
}

static dext_status local_notify_attach(void *uc, int event_fd)
{
    struct local_uc *l = uc;
    int mine = -1, old;

    if (event_fd >= 0) {
        mine = fcntl(event_fd, F_DUPFD_CLOEXEC, 0);
        if (mine < 0) {
            return DEXT_E_NO_SPACE;
        }
    }
    pthread_mutex_lock(&l->lock);
    old = l->notify_fd;
    l->notify_fd = mine;
    pthread_mutex_unlock(&l->lock);
    dext_uc_set_sink(l->uc, mine >= 0);
    if (old >= 0) {
        close(old);
    }
    return DEXT_OK;
}

static void local_close(void *uc)
{
    struct local_uc *l = uc;

    dext_uc_close(l->uc); /* no callback runs after this returns */
    if (l->notify_fd >= 0) {
        close(l->notify_fd);
    }
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static void local_ep_free(void *ep)
{
    (void)ep; /* the caller owns the dext */
}

const struct vdx_transport_ops vdx_transport_local = {
    .name = "local",
    .list = local_list,
    .status = local_status,
    .open = local_open,
    .call = local_call,
    .register_dma = local_register_dma,
    .copy_memory = local_copy_memory,
    .notify_attach = local_notify_attach,
    .close = local_close,
    .ep_free = local_ep_free,
};
