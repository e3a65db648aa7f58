/* SPDX-License-Identifier: BSD-3-Clause */
/* The client library (include/vfio-dext/client.h) over the transport seam. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/transport.h"
#include "platform/platform.h"

/* A memory type mapped into this process. */
struct mapping {
    void *addr;
    uint64_t size;
    bool owned; /* we mmapped it (else it is the in-process dext's pointer) */
};

struct vdx_conn {
    const struct vdx_transport_ops *ops;
    void *t;
    pthread_mutex_t lock; /* one call in flight; guards everything below */
    bool broken;
    struct mapping maps[DEXT_MEM_TYPE_COUNT];
};

struct vdx_notify {
    struct vdx_conn *conn;
    int fd; /* the wait end; the dext holds the signal end */
};

const char *vdx_status_str(dext_status st)
{
    static _Thread_local char buf[80];

    snprintf(buf, sizeof(buf), "%s (0x%08x)", dext_status_str(st), st);
    return buf;
}

/* ---- endpoints -------------------------------------------------------------- */

const char *vdx_default_runtime_dir(char *buf, size_t len)
{
    const char *env = getenv("VFIO_DEXT_RUNTIME_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");

    if (env && *env) {
        snprintf(buf, len, "%s", env);
    } else if (xdg && *xdg) {
        snprintf(buf, len, "%s/vfio-dext", xdg);
    } else if (geteuid() == 0) {
        snprintf(buf, len, "/run/vfio-dext");
    } else {
        snprintf(buf, len, "/tmp/vfio-dext-%u", (unsigned)geteuid());
    }
    return buf;
}

static dext_status endpoint_new(const struct vdx_transport_ops *ops, void *priv,
                                const char *kind, const char *where,
                                struct vdx_endpoint **out)
{
    struct vdx_endpoint *ep = calloc(1, sizeof(*ep));

    if (!ep) {
        return DEXT_E_NO_SPACE;
    }
    ep->ops = ops;
    ep->priv = priv;
    snprintf(ep->name, sizeof(ep->name), "%s:%s", kind, where);
    *out = ep;
    return DEXT_OK;
}

dext_status vdx_endpoint_parse(const char *uri, struct vdx_endpoint **out)
{
    char dir[4096];
    void *priv;
    dext_status st;

    if (!uri || !out) {
        return DEXT_E_BAD_ARGUMENT;
    }
    if (strcmp(uri, "unix") == 0) {
        vdx_default_runtime_dir(dir, sizeof(dir));
    } else if (strncmp(uri, "unix:", 5) == 0 && uri[5] != '\0' &&
               strlen(uri + 5) < sizeof(dir)) {
        snprintf(dir, sizeof(dir), "%s", uri + 5);
    } else {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = vdx_unix_endpoint_new(dir, &priv);
    if (st != DEXT_OK) {
        return st;
    }
    st = endpoint_new(&vdx_transport_unix, priv, "unix", dir, out);
    if (st != DEXT_OK) {
        vdx_transport_unix.ep_free(priv);
    }
    return st;
}

dext_status vdx_endpoint_local(struct dext *d, struct vdx_endpoint **out)
{
    char where[32];

    if (!d || !out) {
        return DEXT_E_BAD_ARGUMENT;
    }
    snprintf(where, sizeof(where), "%p", (void *)d);
    return endpoint_new(&vdx_transport_local, d, "local", where, out);
}

const char *vdx_endpoint_name(const struct vdx_endpoint *ep)
{
    return ep ? ep->name : "";
}

void vdx_endpoint_free(struct vdx_endpoint *ep)
{
    if (!ep) {
        return;
    }
    ep->ops->ep_free(ep->priv);
    free(ep);
}

dext_status vdx_list_devices(struct vdx_endpoint *ep, struct vdx_device_desc **devs,
                             size_t *n)
{
    if (!ep || !devs || !n) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return ep->ops->list(ep->priv, devs, n);
}

dext_status vdx_dext_status(struct vdx_endpoint *ep, char **json)
{
    if (!ep || !json) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return ep->ops->status(ep->priv, json);
}

static bool desc_matches(const struct vdx_device_desc *d, uint16_t dom, uint8_t bus,
                         uint8_t slot, uint8_t fn)
{
    return d->domain == dom && d->bus == bus && d->slot == slot && d->fn == fn;
}

static dext_status find_device(struct vdx_endpoint *ep, const char *bdf, unsigned *index)
{
    struct vdx_device_desc *devs = NULL;
    uint16_t dom = 0;
    uint8_t bus, slot, fn;
    size_t n = 0;
    dext_status st;

    if (vdx_parse_bdf(bdf, &dom, &bus, &slot, &fn) < 0) {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = ep->ops->list(ep->priv, &devs, &n);
    if (st != DEXT_OK) {
        return st;
    }
    st = DEXT_E_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        if (desc_matches(&devs[i], dom, bus, slot, fn)) {
            *index = (unsigned)i;
            st = DEXT_OK;
            break;
        }
    }
    free(devs);
    return st;
}

dext_status vdx_connect(struct vdx_endpoint *ep, const char *bdf, struct vdx_conn **out)
{
    struct vdx_conn *conn;
    unsigned index = 0;
    dext_status st;

    if (!ep || !bdf || !out) {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = find_device(ep, bdf, &index);
    if (st != DEXT_OK) {
        return st;
    }
    conn = calloc(1, sizeof(*conn));
    if (!conn) {
        return DEXT_E_NO_SPACE;
    }
    st = ep->ops->open(ep->priv, index, &conn->t);
    if (st != DEXT_OK) {
        free(conn);
        return st;
    }
    conn->ops = ep->ops;
    pthread_mutex_init(&conn->lock, NULL);
    *out = conn;
    return DEXT_OK;
}

static void unmap_type(struct vdx_conn *conn, uint32_t type)
{
    struct mapping *m = &conn->maps[type];

    if (m->addr && m->owned) {
        vdx_shm_unmap(m->addr, m->size);
    }
    *m = (struct mapping){0};
}

void vdx_disconnect(struct vdx_conn *conn)
{
    if (!conn) {
        return;
    }
    for (uint32_t t = 0; t < DEXT_MEM_TYPE_COUNT; t++) {
        unmap_type(conn, t);
    }
    conn->ops->close(conn->t);
    pthread_mutex_destroy(&conn->lock);
    free(conn);
}

/* ---- calls ---------------------------------------------------------------- */

static dext_status settle(struct vdx_conn *conn, dext_status st)
{
    if (st == DEXT_E_NOT_ATTACHED) {
        conn->broken = true;
    }
    return st;
}

/* A selector call; caller holds conn->lock. */
static dext_status call_locked(struct vdx_conn *conn, uint32_t sel, const uint64_t *in,
                               uint32_t nin, uint64_t *out, uint32_t *nout)
{
    uint32_t none = 0;

    if (!nout) {
        nout = &none;
    }
    return conn->broken ? DEXT_E_NOT_ATTACHED
                        : settle(conn, conn->ops->call(conn->t, sel, in, nin, out, nout));
}

dext_status vdx_call(struct vdx_conn *conn, uint32_t sel, const uint64_t *in, uint32_t nin,
                     uint64_t *out, uint32_t *nout)
{
    dext_status st;

    if (!conn) {
        return DEXT_E_BAD_ARGUMENT;
    }
    pthread_mutex_lock(&conn->lock);
    st = call_locked(conn, sel, in, nin, out, nout);
    pthread_mutex_unlock(&conn->lock);
    return st;
}

/* A call with a fixed number of outputs, zeroing those not returned. */
static dext_status call_n(struct vdx_conn *conn, uint32_t sel, const uint64_t *in,
                          uint32_t nin, uint64_t *out, uint32_t nout)
{
    uint32_t got = nout;
    dext_status st = vdx_call(conn, sel, in, nin, out, &got);

    for (uint32_t i = got; i < nout; i++) {
        out[i] = 0;
    }
    return st;
}

dext_status vdx_get_identity(struct vdx_conn *conn, struct vdx_device_desc *id)
{
    uint64_t out[6];
    dext_status st = call_n(conn, DEXT_SEL_GET_IDENTITY, NULL, 0, out, 6);

    if (st == DEXT_OK && id) {
        *id = (struct vdx_device_desc){.bus = (uint8_t)out[0], .slot = (uint8_t)out[1],
                                       .fn = (uint8_t)out[2], .vendor = (uint16_t)out[3],
                                       .device = (uint16_t)out[4],
                                       .class_code = (uint32_t)out[5]};
    }
    return st;
}

dext_status vdx_claim(struct vdx_conn *conn)
{
    return vdx_call(conn, DEXT_SEL_CLAIM, NULL, 0, NULL, NULL);
}

dext_status vdx_terminate(struct vdx_conn *conn)
{
    return vdx_call(conn, DEXT_SEL_TERMINATE, NULL, 0, NULL, NULL);
}

/* Map memory type `type` (once per connection); caller holds conn->lock. */
static dext_status map_type_locked(struct vdx_conn *conn, uint32_t type, struct mapping *res,
                                   bool *wc)
{
    struct dext_mem mem;
    struct mapping *m = &conn->maps[type];
    dext_status st = DEXT_OK;

    if (m->addr) {
        goto out_done;
    }
    st = conn->broken ? DEXT_E_NOT_ATTACHED
                      : settle(conn, conn->ops->copy_memory(conn->t, type, &mem));
    if (st != DEXT_OK) {
        return st;
    }
    if (mem.ptr) {
        *m = (struct mapping){mem.ptr, mem.size, false};
    } else {
        void *p = vdx_shm_map(mem.fd, mem.fd_offset, mem.size);

        *m = (struct mapping){p, mem.size, true};
        st = p ? DEXT_OK : DEXT_E_NO_SPACE;
    }
    if (mem.fd >= 0) {
        close(mem.fd);
    }
    if (wc) {
        *wc = mem.wc;
    }
out_done:
    *res = *m;
    return st;
}

static dext_status map_type(struct vdx_conn *conn, uint32_t type, struct mapping *res,
                            bool *wc)
{
    dext_status st;

    pthread_mutex_lock(&conn->lock);
    st = map_type_locked(conn, type, res, wc);
    pthread_mutex_unlock(&conn->lock);
    return st;
}

static dext_status unmap_checked(struct vdx_conn *conn, uint32_t type, void *addr)
{
    dext_status st = DEXT_OK;

    pthread_mutex_lock(&conn->lock);
    if (!addr || conn->maps[type].addr != addr) {
        st = DEXT_E_BAD_ARGUMENT;
    } else {
        unmap_type(conn, type);
    }
    pthread_mutex_unlock(&conn->lock);
    return st;
}

dext_status vdx_allocate_dma_buffer(struct vdx_conn *conn, uint64_t size, uint64_t align,
                                    uint64_t *bus_addr, uint64_t *bus_len, void **addr,
                                    uint64_t *mapped_size)
{
    uint64_t in[2] = {size, align}, out[6] = {0};
    uint32_t nout = 6;
    struct mapping m;
    dext_status st;

    if (!conn || !addr) {
        return DEXT_E_BAD_ARGUMENT;
    }
    /* One critical section: another thread's buffer cannot slip in between. */
    pthread_mutex_lock(&conn->lock);
    unmap_type(conn, DEXT_MEM_DMA_BUFFER); /* selector 3 replaces the old buffer */
    st = call_locked(conn, DEXT_SEL_ALLOCATE_DMA_BUFFER, in, 2, out, &nout);
    if (st == DEXT_OK) {
        st = map_type_locked(conn, DEXT_MEM_DMA_BUFFER, &m, NULL);
    }
    pthread_mutex_unlock(&conn->lock);
    if (st != DEXT_OK) {
        return st;
    }
    *addr = m.addr;
    if (bus_addr) {
        *bus_addr = out[3];
    }
    if (bus_len) {
        *bus_len = out[4];
    }
    if (mapped_size) {
        *mapped_size = m.size;
    }
    return DEXT_OK;
}

dext_status vdx_free_dma_buffer(struct vdx_conn *conn, void *addr)
{
    dext_status st = DEXT_OK;

    if (!conn) {
        return DEXT_E_BAD_ARGUMENT;
    }
    pthread_mutex_lock(&conn->lock);
    if (!addr || conn->maps[DEXT_MEM_DMA_BUFFER].addr != addr) {
        st = DEXT_E_BAD_ARGUMENT;
    } else {
        unmap_type(conn, DEXT_MEM_DMA_BUFFER);
        st = call_locked(conn, DEXT_SEL_FREE_DMA_BUFFER, NULL, 0, NULL, NULL);
    }
    pthread_mutex_unlock(&conn->lock);
    return st;
}

/* ---- DMA regions ---------------------------------------------------------------- */

/* Memory from vdx_shm_alloc, so any transport can be handed its fd. This
 * table is process-wide by nature: it describes this process's memory. */
struct shm_block {
    void *va;
    size_t size;
    int fd;
    struct shm_block *next;
};

static struct {
    pthread_mutex_t lock;
    struct shm_block *head;
} shm_blocks = {PTHREAD_MUTEX_INITIALIZER, NULL};

dext_status vdx_shm_alloc(size_t size, void **va)
{
    struct shm_block *b;
    int fd;

    if (!va || size == 0) {
        return DEXT_E_BAD_ARGUMENT;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        return DEXT_E_NO_SPACE;
    }
    fd = vdx_shm_create("vfio-dext-client", size);
    b->va = fd >= 0 ? vdx_shm_map(fd, 0, size) : NULL;
    if (!b->va) {
        if (fd >= 0) {
            close(fd);
        }
        free(b);
        return DEXT_E_NO_SPACE;
    }
    b->size = size;
    b->fd = fd;
    pthread_mutex_lock(&shm_blocks.lock);
    b->next = shm_blocks.head;
    shm_blocks.head = b;
    pthread_mutex_unlock(&shm_blocks.lock);
    *va = b->va;
    return DEXT_OK;
}

void vdx_shm_free(void *va)
{
    struct shm_block *b = NULL;

    pthread_mutex_lock(&shm_blocks.lock);
    for (struct shm_block **p = &shm_blocks.head; *p; p = &(*p)->next) {
        if ((*p)->va == va) {
            b = *p;
            *p = b->next;
            break;
        }
    }
    pthread_mutex_unlock(&shm_blocks.lock);
    if (b) {
        vdx_shm_unmap(b->va, b->size);
        close(b->fd);
        free(b);
    }
}

/* The shm block holding [va, va + size): its fd and offset. */
static bool shm_lookup(void *va, uint64_t size, int *fd, uint64_t *off)
{
    bool found = false;

    pthread_mutex_lock(&shm_blocks.lock);
    for (struct shm_block *b = shm_blocks.head; b; b = b->next) {
        uintptr_t s = (uintptr_t)b->va, p = (uintptr_t)va;

        if (p >= s && p - s < b->size && size <= b->size - (p - s)) {
            *fd = b->fd;
            *off = p - s;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&shm_blocks.lock);
    return found;
}

static dext_status register_src(struct vdx_conn *conn, uint64_t iova,
                                const struct dext_dma_src *src, uint64_t size,
                                uint64_t *bus, uint64_t *len)
{
    uint64_t b = 0, l = 0;
    dext_status st;

    pthread_mutex_lock(&conn->lock);
    st = conn->broken ? DEXT_E_NOT_ATTACHED
                      : settle(conn, conn->ops->register_dma(conn->t, iova, src, size, &b, &l));
    pthread_mutex_unlock(&conn->lock);
    if (bus) {
        *bus = b;
    }
    if (len) {
        *len = l;
    }
    return st;
}

dext_status vdx_register_dma(struct vdx_conn *conn, uint64_t iova, void *client_va,
                             uint64_t size, uint64_t *out_bus_addr, uint64_t *out_bus_len)
{
    struct dext_dma_src src = {.va = client_va, .fd = -1};

    if (!conn || !client_va) {
        return DEXT_E_BAD_ARGUMENT;
    }
    if (conn->ops != &vdx_transport_local &&
        !shm_lookup(client_va, size, &src.fd, &src.fd_offset)) {
        return DEXT_E_UNSUPPORTED; /* the dext cannot reach this memory */
    }
    return register_src(conn, iova, &src, size, out_bus_addr, out_bus_len);
}

dext_status vdx_register_dma_fd(struct vdx_conn *conn, uint64_t iova, int fd,
                                uint64_t fd_offset, uint64_t size, uint64_t *out_bus_addr,
                                uint64_t *out_bus_len)
{
    struct dext_dma_src src = {.fd = fd, .fd_offset = fd_offset};

    if (!conn || fd < 0) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return register_src(conn, iova, &src, size, out_bus_addr, out_bus_len);
}

dext_status vdx_unregister_dma(struct vdx_conn *conn, uint64_t iova)
{
    return vdx_call(conn, DEXT_SEL_UNREGISTER_DMA_REGION, &iova, 1, NULL, NULL);
}

dext_status vdx_probe_dma(struct vdx_conn *conn, uint64_t iova, uint64_t offset,
                          uint64_t *out_word)
{
    uint64_t in[2] = {iova, offset};

    if (!out_word) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return call_n(conn, DEXT_SEL_PROBE_DMA_REGION, in, 2, out_word, 1);
}

/* ---- config space and BARs --------------------------------------------------- */

dext_status vdx_config_read(struct vdx_conn *conn, uint32_t offset, unsigned width,
                            uint32_t *out_value)
{
    uint64_t in[2] = {offset, width}, out = 0;
    dext_status st;

    if (!out_value) {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = call_n(conn, DEXT_SEL_CONFIG_READ, in, 2, &out, 1);
    *out_value = (uint32_t)out;
    return st;
}

dext_status vdx_config_write(struct vdx_conn *conn, uint32_t offset, unsigned width,
                             uint32_t value)
{
    uint64_t in[3] = {offset, width, value};

    return vdx_call(conn, DEXT_SEL_CONFIG_WRITE, in, 3, NULL, NULL);
}

dext_status vdx_config_read_block(struct vdx_conn *conn, uint32_t offset, void *buf,
                                  size_t len)
{
    uint8_t *p = buf;

    if (!buf) {
        return DEXT_E_BAD_ARGUMENT;
    }
    while (len > 0) {
        unsigned width = len >= 4 ? 4 : 1;
        uint32_t v;
        dext_status st = vdx_config_read(conn, offset, width, &v);

        if (st != DEXT_OK) {
            return st;
        }
        for (unsigned i = 0; i < width; i++) {
            p[i] = (uint8_t)(v >> (8 * i)); /* little-endian, as config space is */
        }
        p += width;
        offset += width;
        len -= width;
    }
    return DEXT_OK;
}

dext_status vdx_get_bar_info(struct vdx_conn *conn, unsigned bar, uint32_t *out_mem_idx,
                             uint64_t *out_size, uint8_t *out_type)
{
    uint64_t in = bar, out[3];
    dext_status st = call_n(conn, DEXT_SEL_GET_BAR_INFO, &in, 1, out, 3);

    if (st == DEXT_OK) {
        if (out_mem_idx) {
            *out_mem_idx = (uint32_t)out[0];
        }
        if (out_size) {
            *out_size = out[1];
        }
        if (out_type) {
            *out_type = (uint8_t)out[2];
        }
    }
    return st;
}

dext_status vdx_map_bar(struct vdx_conn *conn, unsigned bar, void **out_addr,
                        uint64_t *out_size, uint8_t *out_type, bool *out_wc)
{
    struct mapping m;
    uint8_t type = 0;
    bool wc = false;
    dext_status st;

    if (!conn || !out_addr || !out_size || bar >= DEXT_NUM_BARS) {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = vdx_get_bar_info(conn, bar, NULL, NULL, &type);
    if (st == DEXT_OK) {
        st = map_type(conn, DEXT_MEM_BAR(bar), &m, &wc);
    }
    if (st != DEXT_OK) {
        return st;
    }
    *out_addr = m.addr;
    *out_size = m.size;
    if (out_type) {
        *out_type = type;
    }
    if (out_wc) {
        *out_wc = (type & DEXT_BAR_TYPE_PREFETCH) != 0;
    }
    return DEXT_OK;
}

dext_status vdx_unmap_bar(struct vdx_conn *conn, unsigned bar, void *addr)
{
    if (!conn || bar >= DEXT_NUM_BARS) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return unmap_checked(conn, DEXT_MEM_BAR(bar), addr);
}

/* The transport's memory object for type `type`, not mapped here. */
static dext_status copy_memory(struct vdx_conn *conn, uint32_t type, struct dext_mem *mem)
{
    dext_status st;

    pthread_mutex_lock(&conn->lock);
    st = conn->broken ? DEXT_E_NOT_ATTACHED
                      : settle(conn, conn->ops->copy_memory(conn->t, type, mem));
    pthread_mutex_unlock(&conn->lock);
    return st;
}

dext_status vdx_bar_fd(struct vdx_conn *conn, unsigned bar, int *out_fd,
                       uint64_t *out_offset, uint64_t *out_size)
{
    struct dext_mem mem = {.fd = -1};
    dext_status st;

    if (out_fd) {
        *out_fd = -1;
    }
    if (!conn || !out_fd || bar >= DEXT_NUM_BARS) {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = copy_memory(conn, DEXT_MEM_BAR(bar), &mem);
    if (st != DEXT_OK) {
        return st;
    }
    if (mem.fd < 0) {
        return DEXT_E_UNSUPPORTED; /* a pointer in this process only */
    }
    if (mem.size == 0) {
        close(mem.fd);
        return DEXT_E_IO_ERROR;
    }
    *out_fd = mem.fd;
    if (out_offset) {
        *out_offset = mem.fd_offset;
    }
    if (out_size) {
        *out_size = mem.size;
    }
    return DEXT_OK;
}

dext_status vdx_mmio_read(struct vdx_conn *conn, uint32_t mem_idx, uint64_t offset,
                          unsigned width, uint64_t *out_value)
{
    uint64_t in[3] = {mem_idx, offset, width};

    if (!out_value) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return call_n(conn, DEXT_SEL_MMIO_READ, in, 3, out_value, 1);
}

dext_status vdx_mmio_write(struct vdx_conn *conn, uint32_t mem_idx, uint64_t offset,
                           unsigned width, uint64_t value)
{
    uint64_t in[4] = {mem_idx, offset, width, value};

    return vdx_call(conn, DEXT_SEL_MMIO_WRITE, in, 4, NULL, NULL);
}

/* ---- interrupts --------------------------------------------------------------- */

dext_status vdx_setup_interrupts(struct vdx_conn *conn, uint32_t *out_num_vectors)
{
    uint64_t out = 0;
    dext_status st = call_n(conn, DEXT_SEL_SETUP_INTERRUPTS, NULL, 0, &out, 1);

    if (st == DEXT_OK && out_num_vectors) {
        *out_num_vectors = (uint32_t)out;
    }
    return st;
}

dext_status vdx_set_irq_mask(struct vdx_conn *conn, const uint64_t mask[DEXT_IRQ_WORDS])
{
    if (!mask) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return vdx_call(conn, DEXT_SEL_SET_IRQ_MASK, mask, DEXT_IRQ_WORDS, NULL, NULL);
}

dext_status vdx_read_pending_irqs(struct vdx_conn *conn, uint64_t pending[DEXT_IRQ_WORDS])
{
    if (!pending) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return call_n(conn, DEXT_SEL_CHECK_INTERRUPT, NULL, 0, pending, DEXT_IRQ_WORDS);
}

dext_status vdx_map_irq_page(struct vdx_conn *conn, struct dext_irq_page **out_page)
{
    struct mapping m;
    dext_status st;

    if (!conn || !out_page) {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = map_type(conn, DEXT_MEM_IRQ_STATE, &m, NULL);
    if (st == DEXT_OK) {
        *out_page = m.addr;
    }
    return st;
}

static dext_status notify_attach(struct vdx_conn *conn, int fd)
{
    dext_status st;

    pthread_mutex_lock(&conn->lock);
    st = conn->broken ? DEXT_E_NOT_ATTACHED
                      : settle(conn, conn->ops->notify_attach(conn->t, fd));
    pthread_mutex_unlock(&conn->lock);
    return st;
}

dext_status vdx_notify_create(struct vdx_conn *conn, struct vdx_notify **out)
{
    struct vdx_notify *n;
    int signal_fd;
    dext_status st;

    if (!conn || !out) {
        return DEXT_E_BAD_ARGUMENT;
    }
    n = calloc(1, sizeof(*n));
    if (!n) {
        return DEXT_E_NO_SPACE;
    }
    n->conn = conn;
    if (vdx_event_create(&n->fd, &signal_fd) < 0) {
        free(n);
        return DEXT_E_NO_SPACE;
    }
    st = notify_attach(conn, signal_fd);
    close(signal_fd); /* the transport keeps its own reference */
    if (st == DEXT_OK) {
        st = vdx_notify_rearm(n);
        if (st != DEXT_OK) {
            notify_attach(conn, -1);
        }
    }
    if (st != DEXT_OK) {
        close(n->fd);
        free(n);
        return st;
    }
    *out = n;
    return DEXT_OK;
}

int vdx_notify_fd(const struct vdx_notify *n)
{
    return n ? n->fd : -1;
}

bool vdx_notify_ack(struct vdx_notify *n)
{
    return n && vdx_event_drain(n->fd) > 0;
}

dext_status vdx_notify_rearm(struct vdx_notify *n)
{
    if (!n) {
        return DEXT_E_BAD_ARGUMENT;
    }
    return vdx_call(n->conn, DEXT_SEL_WAIT_INTERRUPT, NULL, 0, NULL, NULL);
}

void vdx_notify_destroy(struct vdx_notify *n)
{
    if (!n) {
        return;
    }
    notify_attach(n->conn, -1);
    close(n->fd);
    free(n);
}

dext_status vdx_reset_device(struct vdx_conn *conn, uint32_t *out_method)
{
    uint64_t out = 0;
    dext_status st = call_n(conn, DEXT_SEL_RESET_DEVICE, NULL, 0, &out, 1);

    if (st == DEXT_OK && out_method) {
        *out_method = (uint32_t)out;
    }
    return st;
}
