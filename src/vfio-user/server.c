/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user server (server.h): one listener, one client at a time, the
 * wire format of protocol.h, device operations through the backend ops.
 * Linux only (epoll, SO_PEERCRED).
 *
 * Reading: a message is read with recvmsg() calls that never go past its own
 * end (16 header bytes first, then exactly the rest), so every descriptor
 * received belongs to the message being read. A partial message waits in the
 * connection buffer; the next readable event continues it. The buffer holds
 * the largest message the negotiated max_data_xfer_size allows.
 *
 * Writing (slow reader policy): each reply is sendmsg(MSG_NOSIGNAL) on a
 * blocking socket with SO_SNDTIMEO = VUS_SEND_TIMEOUT_MS; a reply not written
 * completely by then drops the client. A reply's descriptor goes with its
 * first byte.
 *
 * The REGION_READ/REGION_WRITE path allocates nothing: the request sits in the
 * receive buffer, the reply is built in the per-connection transmit buffer.
 */
#include "vfio-user/server.h"
#include "transport/sockutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "platform/platform.h" /* vdx_page_size() */

#define VUS_EVENTS          4
#define VUS_MSGS_PER_STEP   64u
#define VUS_SEND_TIMEOUT_MS 1000
#define VUS_BACKLOG         8
/* cmsg room: beyond max_msg_fds, so extras are counted (and closed), not lost. */
#define VUS_RX_FDS            64u
#define VUS_ACCEPT_BACKOFF_MS 100u
#define VUS_MAX_DMA_FILES     4096u
#define VUS_MIN_BUF           8192u
#define VUS_TAG_LISTENER      1u
#define VUS_TAG_CLIENT        2u
#define VUS_NO_FILE           UINT32_MAX

/* The largest VERSION accepted, and the largest control message (SET_IRQS
 * with one boolean per vector): both always fit the buffers. */
#define VUS_VERSION_MAX (VDX_VU_HDR_SIZE + VDX_VU_VERSION_SIZE + VDX_VU_CAPS_JSON_MAX)
#define VUS_CTRL_MAX    (VDX_VU_HDR_SIZE + VDX_VU_IRQ_SET_SIZE + VDX_VU_MAX_IRQ_VECTORS)
_Static_assert(VUS_VERSION_MAX <= VUS_MIN_BUF, "a VERSION fits the smallest buffer");
_Static_assert(VUS_CTRL_MAX <= VUS_MIN_BUF, "a SET_IRQS fits the smallest buffer");
_Static_assert(VUS_RX_FDS >= VDX_VU_QEMU_MAX_MSG_FDS, "room for what we advertise");

/* A backing file of DMA mappings: one descriptor per distinct file. */
struct vus_file {
    dev_t dev;
    ino_t ino;
    int fd; /* -1: free slot */
    uint32_t refs;
};

struct vus_dma {
    struct vdx_vu_be_dma be; /* what the backend saw */
    void *base;              /* mmap() result (aligned down), or NULL */
    size_t len;
    uint32_t file; /* index in conn.files, or VUS_NO_FILE */
};

struct vus_irq {
    uint32_t flags, count;
    int *trigger; /* count eventfds (-1: none) */
    int *unmask;  /* count eventfds (-1: none) */
    bool enabled; /* an eventfd TRIGGER since the last disable */
};

struct vus_conn {
    int fd;
    pid_t pid;
    bool attached; /* ops->attach succeeded: detach owed */
    bool negotiated;
    uint32_t max_xfer;     /* negotiated max_data_xfer_size */
    uint32_t max_msg;      /* largest message accepted now */
    uint32_t buf_size;     /* rx and tx capacity */
    uint64_t pgsize;       /* smallest negotiated DMA page size */
    uint32_t max_dma_maps; /* negotiated */
    uint64_t deadline_ns;  /* VERSION or partial-message deadline; 0: none */
    /* The message being received. */
    struct vdx_vu_hdr hdr;
    uint32_t fill; /* bytes of it in rx */
    uint32_t need; /* VDX_VU_HDR_SIZE until the header is decoded, then hdr.size */
    int rx_fds[VUS_RX_FDS];
    unsigned nfds;
    bool fds_bad; /* truncated or too many: the message is refused */
    uint8_t *rx, *tx;
    /* The device's shape, sampled at accept. */
    struct vdx_vu_be_device dev;
    struct vdx_vu_be_region regions[VDX_VU_MAX_REGIONS]; /* fds not kept */
    struct vus_irq irqs[VDX_VU_MAX_IRQ_INDEXES];
    int *no_fds; /* VDX_VU_MAX_IRQ_VECTORS times -1: "de-assign" for set_irqs */
    /* DMA mappings sorted by iova, never overlapping. */
    struct vus_dma *dma;
    uint32_t ndma, dma_cap;
    struct vus_file *files; /* opts.max_dma_files slots */
    uint32_t nfiles;
};

struct vdx_vu_server {
    const struct vdx_vu_backend_ops *ops;
    void *opaque;
    struct vdx_vu_server_opts opts;
    char name[128];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t sock_dev; /* identity of the socket file we bound, for unlink */
    ino_t sock_ino;
    int listen_fd;
    int epoll_fd;
    bool listening;           /* the listener is in the epoll set */
    uint64_t accept_retry_ns; /* != 0: accepting paused until then */
    uid_t uid;
    struct vus_conn *conn;
    struct vdx_vu_server_stats st;
    struct vdx_ratelimit rl_conn, rl_msg, rl_accept;
};

/* What a command handler produces besides its return value. */
struct vus_reply {
    size_t len;      /* reply bytes in conn.tx when the handler returns 0 */
    int fd;          /* descriptor to send with it, or -1 (borrowed) */
    bool drop;       /* drop the client after replying */
    const char *why; /* for the log when drop */
};

/* ---- Small helpers ------------------------------------------------------------ */

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static uint32_t reply_errno(int rc)
{
    return rc < 0 && rc >= -4095 ? (uint32_t)-rc : (uint32_t)EIO;
}

static uint64_t deadline_after(unsigned ms)
{
    return vdx_now_ns() + (uint64_t)ms * 1000000ull;
}

static int fds_take(struct vus_conn *c, unsigned i)
{
    int fd = c->rx_fds[i];

    c->rx_fds[i] = -1;
    return fd;
}

static void listener_watch(struct vdx_vu_server *srv, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = VUS_TAG_LISTENER};

    if (on == srv->listening) {
        return;
    }
    if (epoll_ctl(srv->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, srv->listen_fd, &ev) ==
        0) {
        srv->listening = on;
    }
}

/* ---- DMA: backing files and mappings ---------------------------------------- */

/* Adopt fd (closed when it duplicates a file we hold). Returns the slot or -errno. */
static int file_get(struct vdx_vu_server *srv, struct vus_conn *c, int fd,
                    const struct stat *st)
{
    uint32_t free_slot = VUS_NO_FILE;

    for (uint32_t i = 0; i < srv->opts.max_dma_files; i++) {
        struct vus_file *f = &c->files[i];

        if (f->fd >= 0 && f->dev == st->st_dev && f->ino == st->st_ino) {
            f->refs++;
            close(fd);
            return (int)i;
        }
        if (f->fd < 0 && free_slot == VUS_NO_FILE) {
            free_slot = i;
        }
    }
    if (free_slot == VUS_NO_FILE) {
        return -ENOSPC;
    }
    c->files[free_slot] = (struct vus_file){st->st_dev, st->st_ino, fd, 1};
    c->nfiles++;
    return (int)free_slot;
}

static void file_put(struct vus_conn *c, uint32_t slot)
{
    struct vus_file *f;

    if (slot == VUS_NO_FILE) {
        return;
    }
    f = &c->files[slot];
    if (--f->refs == 0) {
        close_fd(&f->fd);
        c->nfiles--;
    }
}

/* The file cannot shrink under our mapping. */
static bool file_sealed(int fd)
{
#ifdef F_GET_SEALS
    int seals = fcntl(fd, F_GET_SEALS);

    return seals >= 0 && (seals & F_SEAL_SHRINK);
#else
    (void)fd;
    return false;
#endif
}

/* mmap granule for a file: its block size if that is a larger power of two
 * (hugetlbfs reports the huge page size there), else the page size. */
static size_t map_align(const struct stat *st)
{
    size_t page = vdx_page_size();
    uint64_t blk = (uint64_t)st->st_blksize;

    if (blk > page && (blk & (blk - 1)) == 0 && blk <= (1ull << 30)) {
        return (size_t)blk;
    }
    return page;
}

static int dma_mmap(struct vus_dma *d, int fd, const struct stat *st)
{
    size_t align = map_align(st);
    uint64_t base_off = d->be.fd_offset & ~((uint64_t)align - 1);
    uint64_t delta = d->be.fd_offset - base_off;
    int prot = ((d->be.prot & VDX_VU_DMA_PROT_READ) ? PROT_READ : 0) |
               ((d->be.prot & VDX_VU_DMA_PROT_WRITE) ? PROT_WRITE : 0);
    void *addr;

    if (d->be.size > SIZE_MAX - delta - align) {
        return -ENOMEM;
    }
    d->len = (size_t)((delta + d->be.size + align - 1) & ~((uint64_t)align - 1));
    addr = mmap(NULL, d->len, prot, MAP_SHARED, fd, (off_t)base_off);
    if (addr == MAP_FAILED) {
        return -errno;
    }
    d->base = addr;
    d->be.vaddr = (uint8_t *)addr + delta;
    return 0;
}

/*
 * Map the client's fd for d and adopt it. The file must be a regular file
 * (memfd, hugetlbfs, tmpfs, ...) that covers [offset, offset + size): a
 * mapping past its end would fault on first touch. On success the fd is
 * owned by c->files.
 */
static int dma_attach_memory(struct vdx_vu_server *srv, struct vus_conn *c,
                             struct vus_dma *d, int fd)
{
    struct stat st;
    int rc;

    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || d->be.fd_offset > (uint64_t)st.st_size ||
        d->be.size > (uint64_t)st.st_size - d->be.fd_offset) {
        return -EINVAL;
    }
    rc = dma_mmap(d, fd, &st);
    if (rc < 0) {
        return rc;
    }
    d->be.sealed = file_sealed(fd);
    rc = file_get(srv, c, fd, &st);
    if (rc < 0) {
        munmap(d->base, d->len);
        d->base = NULL;
        return rc;
    }
    d->file = (uint32_t)rc;
    d->be.fd = c->files[d->file].fd;
    return 0;
}

static void dma_detach_memory(struct vus_conn *c, struct vus_dma *d)
{
    if (d->base != NULL) {
        munmap(d->base, d->len);
        d->base = NULL;
    }
    file_put(c, d->file);
    d->file = VUS_NO_FILE;
}

/* First index whose iova is >= iova. */
static uint32_t dma_lower_bound(const struct vus_conn *c, uint64_t iova)
{
    uint32_t lo = 0, hi = c->ndma;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (c->dma[mid].be.iova < iova) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Where [iova, iova + size) goes, or -EEXIST when it overlaps a mapping. */
static int dma_slot(const struct vus_conn *c, uint64_t iova, uint64_t size)
{
    uint32_t pos = dma_lower_bound(c, iova);

    if (pos > 0 && c->dma[pos - 1].be.iova + c->dma[pos - 1].be.size > iova) {
        return -EEXIST;
    }
    if (pos < c->ndma && iova + size > c->dma[pos].be.iova) {
        return -EEXIST;
    }
    return (int)pos;
}

/* Room for one more mapping. */
static int dma_reserve(struct vus_conn *c)
{
    uint32_t cap;
    struct vus_dma *n;

    if (c->ndma < c->dma_cap) {
        return 0;
    }
    cap = c->dma_cap != 0 ? c->dma_cap * 2 : 16;
    if (cap > c->max_dma_maps) {
        cap = c->max_dma_maps;
    }
    n = realloc(c->dma, (size_t)cap * sizeof(*n));
    if (n == NULL) {
        return -ENOMEM;
    }
    c->dma = n;
    c->dma_cap = cap;
    return 0;
}

static void dma_insert(struct vus_conn *c, uint32_t pos, const struct vus_dma *d)
{
    memmove(&c->dma[pos + 1], &c->dma[pos], (size_t)(c->ndma - pos) * sizeof(*d));
    c->dma[pos] = *d;
    c->ndma++;
}

/* The backend lets go (waiting for in-flight DMA), then the memory goes. */
static void dma_release(struct vdx_vu_server *srv, struct vus_conn *c, uint32_t pos)
{
    struct vus_dma *d = &c->dma[pos];

    if (srv->ops->dma_unmap != NULL) {
        srv->ops->dma_unmap(srv->opaque, &d->be);
    }
    dma_detach_memory(c, d);
    memmove(&c->dma[pos], &c->dma[pos + 1], (size_t)(c->ndma - pos - 1) * sizeof(*d));
    c->ndma--;
}

static void dma_release_all(struct vdx_vu_server *srv, struct vus_conn *c)
{
    while (c->ndma > 0) {
        dma_release(srv, c, c->ndma - 1);
    }
}

/* ---- IRQ tables --------------------------------------------------------------- */

static void irq_close_all(struct vus_irq *irq)
{
    for (uint32_t v = 0; v < irq->count; v++) {
        close_fd(&irq->trigger[v]);
        close_fd(&irq->unmask[v]);
    }
    irq->enabled = false;
}

static bool irq_has_fds(const struct vus_irq *irq)
{
    for (uint32_t v = 0; v < irq->count; v++) {
        if (irq->trigger[v] >= 0 || irq->unmask[v] >= 0) {
            return true;
        }
    }
    return false;
}

/* Client gone: the backend disables every index in use, then the fds close. */
static void irq_release_all(struct vdx_vu_server *srv, struct vus_conn *c)
{
    for (uint32_t i = 0; i < c->dev.num_irqs; i++) {
        struct vus_irq *irq = &c->irqs[i];
        struct vdx_vu_be_irq_set off = {.index = i,
                                        .action = VDX_VU_IRQ_SET_ACTION_TRIGGER,
                                        .data = VDX_VU_IRQ_SET_DATA_NONE};

        if (irq->enabled || irq_has_fds(irq)) {
            (void)srv->ops->set_irqs(srv->opaque, &off);
        }
        irq_close_all(irq);
    }
}

/* Install what a successful SET_IRQS says (the backend has accepted it). */
static void irq_apply(struct vus_conn *c, const struct vdx_vu_irq_set_req *req)
{
    struct vus_irq *irq = &c->irqs[req->index];
    int *table;

    if (req->count == 0) {
        irq_close_all(irq);
        return;
    }
    if (req->data != VDX_VU_IRQ_SET_DATA_EVENTFD) {
        return;
    }
    table = req->action == VDX_VU_IRQ_SET_ACTION_TRIGGER ? irq->trigger : irq->unmask;
    for (uint32_t i = 0; i < req->count; i++) {
        close_fd(&table[req->start + i]);
        table[req->start + i] = req->nfds > 0 ? fds_take(c, i) : -1;
    }
    if (req->action == VDX_VU_IRQ_SET_ACTION_TRIGGER) {
        irq->enabled = true;
    }
}

/* ---- Connection: lifetime ------------------------------------------------------ */

static void conn_msg_fds_close(struct vus_conn *c)
{
    for (unsigned i = 0; i < c->nfds; i++) {
        close_fd(&c->rx_fds[i]);
    }
    c->nfds = 0;
    c->fds_bad = false;
}

/* Free memory only (nothing may be held by then). NULL ok. */
static void conn_free(struct vus_conn *c)
{
    if (c == NULL) {
        return;
    }
    for (uint32_t i = 0; i < VDX_VU_MAX_IRQ_INDEXES; i++) {
        free(c->irqs[i].trigger);
        free(c->irqs[i].unmask);
    }
    free(c->no_fds);
    free(c->dma);
    free(c->files);
    free(c->rx);
    free(c->tx);
    free(c);
}

/* Release everything the client held, tell the backend, free. */
static void conn_close(struct vdx_vu_server *srv)
{
    struct vus_conn *c = srv->conn;

    srv->conn = NULL;
    epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close_fd(&c->fd);
    conn_msg_fds_close(c);
    irq_release_all(srv, c);
    dma_release_all(srv, c);
    if (c->attached && srv->ops->detach != NULL) {
        srv->ops->detach(srv->opaque);
    }
    conn_free(c);
    if (srv->accept_retry_ns == 0) {
        listener_watch(srv, true);
    }
}

/* Close the client, logging why: why == NULL is a clean disconnect. */
static void conn_drop(struct vdx_vu_server *srv, int err, const char *why)
{
    pid_t pid = srv->conn->pid;

    if (why == NULL) {
        vdx_log_ratelimited(&srv->rl_conn, VDX_LOG_INFO,
                            "vfio-user %s: client pid %d disconnected", srv->name,
                            (int)pid);
    } else {
        srv->st.dropped++;
        vdx_log_ratelimited(&srv->rl_conn, VDX_LOG_WARN,
                            "vfio-user %s: dropping client pid %d: %s (%s)", srv->name,
                            (int)pid, why, strerror(err < 0 ? -err : EPROTO));
    }
    conn_close(srv);
}

static int conn_alloc(struct vdx_vu_server *srv, struct vus_conn *c)
{
    uint32_t buf = VDX_VU_REGION_RW_DATA_OFF + srv->opts.max_data_xfer_size;

    c->buf_size = buf > VUS_MIN_BUF ? buf : VUS_MIN_BUF;
    c->rx = malloc(c->buf_size);
    c->tx = malloc(c->buf_size);
    c->files = calloc(srv->opts.max_dma_files, sizeof(*c->files));
    c->no_fds = malloc(VDX_VU_MAX_IRQ_VECTORS * sizeof(int));
    if (c->rx == NULL || c->tx == NULL || c->files == NULL || c->no_fds == NULL) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < srv->opts.max_dma_files; i++) {
        c->files[i].fd = -1;
    }
    for (uint32_t i = 0; i < VDX_VU_MAX_IRQ_VECTORS; i++) {
        c->no_fds[i] = -1;
    }
    for (unsigned i = 0; i < VUS_RX_FDS; i++) {
        c->rx_fds[i] = -1;
    }
    return 0;
}

/* A backend region answer as a protocol description; checks it. */
static int region_desc(const struct vdx_vu_be_region *r, uint32_t index,
                       struct vdx_vu_region_desc *d)
{
    if (r->flags & ~(VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE)) {
        return -EINVAL;
    }
    if (r->fd < 0 && r->nr_areas > 0) {
        return -EINVAL;
    }
    *d = (struct vdx_vu_region_desc){
        .index = index,
        .flags = r->flags | (r->fd >= 0 ? VDX_VU_REGION_F_MMAP : 0),
        .size = r->size,
        .offset = r->fd >= 0 ? r->fd_offset : 0,
        .nr_areas = r->nr_areas,
        .areas = r->areas,
    };
    return vdx_vu_region_desc_check(d, vdx_page_size());
}

/* Ask the backend about region `index` and refresh the cache. */
static int region_query(struct vdx_vu_server *srv, struct vus_conn *c, uint32_t index,
                        struct vdx_vu_be_region *r, struct vdx_vu_region_desc *d)
{
    int rc;

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    rc = srv->ops->region_info(srv->opaque, index, r);
    if (rc < 0) {
        return rc;
    }
    if (region_desc(r, index, d) < 0) {
        vdx_log_ratelimited(&srv->rl_msg, VDX_LOG_ERR,
                            "vfio-user %s: backend describes region %u inconsistently "
                            "(flags, fd or sparse areas)",
                            srv->name, index);
        return -EIO;
    }
    c->regions[index] = *r;
    c->regions[index].fd = -1; /* not kept: the backend's */
    return 0;
}

static int irq_sample(struct vdx_vu_server *srv, struct vus_conn *c, uint32_t index)
{
    struct vus_irq *irq = &c->irqs[index];
    struct vdx_vu_be_irq info = {0};
    int rc = srv->ops->irq_info(srv->opaque, index, &info);

    if (rc < 0) {
        return rc;
    }
    if (info.count > VDX_VU_MAX_IRQ_VECTORS) {
        return -ERANGE;
    }
    irq->trigger = malloc((info.count + 1) * sizeof(int));
    irq->unmask = malloc((info.count + 1) * sizeof(int));
    if (irq->trigger == NULL || irq->unmask == NULL) {
        return -ENOMEM; /* conn_free() frees what was allocated */
    }
    irq->flags = info.flags;
    irq->count = info.count;
    for (uint32_t v = 0; v < info.count; v++) {
        irq->trigger[v] = -1;
        irq->unmask[v] = -1;
    }
    return 0;
}

/* The device's shape for this client (struct vdx_vu_backend_ops.device_info). */
static int conn_sample_device(struct vdx_vu_server *srv, struct vus_conn *c)
{
    struct vdx_vu_be_region r;
    struct vdx_vu_region_desc d;
    int rc = srv->ops->device_info(srv->opaque, &c->dev);

    if (rc < 0) {
        return rc;
    }
    if (c->dev.num_regions == 0 || c->dev.num_regions > VDX_VU_MAX_REGIONS ||
        c->dev.num_irqs > VDX_VU_MAX_IRQ_INDEXES) {
        return -ERANGE;
    }
    for (uint32_t i = 0; i < c->dev.num_regions; i++) {
        rc = region_query(srv, c, i, &r, &d);
        if (rc < 0) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < c->dev.num_irqs; i++) {
        rc = irq_sample(srv, c, i);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static int conn_attach(struct vdx_vu_server *srv)
{
    return srv->ops->attach != NULL ? srv->ops->attach(srv->opaque) : 0;
}

static void conn_detach(struct vdx_vu_server *srv)
{
    if (srv->ops->detach != NULL) {
        srv->ops->detach(srv->opaque);
    }
}

static int conn_watch(struct vdx_vu_server *srv, struct vus_conn *c)
{
    struct timeval tv = {VUS_SEND_TIMEOUT_MS / 1000, (VUS_SEND_TIMEOUT_MS % 1000) * 1000};
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = VUS_TAG_CLIENT};

    if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        return -errno;
    }
    return 0;
}

/* Adopt an accepted socket as the client. On failure the socket is closed. */
static int conn_open(struct vdx_vu_server *srv, int fd, pid_t pid)
{
    struct vus_conn *c = calloc(1, sizeof(*c));
    int rc = c != NULL ? 0 : -ENOMEM;

    if (rc < 0) {
        goto out_close;
    }
    c->fd = fd;
    c->pid = pid;
    c->need = VDX_VU_HDR_SIZE;
    c->max_msg = VUS_VERSION_MAX;
    rc = conn_alloc(srv, c);
    if (rc < 0) {
        goto out_free;
    }
    rc = conn_attach(srv);
    if (rc < 0) {
        goto out_free;
    }
    c->attached = true;
    rc = conn_sample_device(srv, c);
    if (rc < 0) {
        goto out_detach;
    }
    rc = conn_watch(srv, c);
    if (rc < 0) {
        goto out_detach;
    }
    c->deadline_ns = deadline_after(srv->opts.stall_timeout_ms);
    srv->conn = c;
    listener_watch(srv, false);
    srv->st.clients++;
    vdx_log(VDX_LOG_INFO, "vfio-user %s: client pid %d connected", srv->name, (int)pid);
    return 0;

out_detach:
    conn_detach(srv); /* no eventfd or DMA mapping can exist yet */
out_free:
    conn_free(c); /* buffers and IRQ tables allocated so far */
out_close:
    close(fd);
    return rc;
}

/* ---- Accepting ---------------------------------------------------------------- */

/* Check and adopt one accepted socket; closes it when refused. */
static void srv_admit(struct vdx_vu_server *srv, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int rc;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        rc = -errno;
        close(fd);
        srv->st.refused++;
        vdx_log_ratelimited(&srv->rl_accept, VDX_LOG_WARN,
                            "vfio-user %s: refusing a client: no peer credentials (%s)",
                            srv->name, strerror(-rc));
        return;
    }
    if (!srv->opts.allow_any_uid && cred.uid != srv->uid) {
        close(fd);
        srv->st.refused++;
        vdx_log_ratelimited(&srv->rl_accept, VDX_LOG_WARN,
                            "vfio-user %s: refusing client pid %d: uid %u is not ours (%u)",
                            srv->name, (int)cred.pid, (unsigned)cred.uid,
                            (unsigned)srv->uid);
        return;
    }
    rc = conn_open(srv, fd, cred.pid);
    if (rc < 0) {
        srv->st.refused++;
        vdx_log_ratelimited(&srv->rl_accept, VDX_LOG_WARN,
                            "vfio-user %s: refusing client pid %d: %s", srv->name,
                            (int)cred.pid, strerror(-rc));
    }
}

static void srv_accept(struct vdx_vu_server *srv)
{
    int fd;

    if (srv->conn != NULL) {
        return; /* one client at a time: the others wait in the backlog */
    }
    fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
        srv_admit(srv, fd);
        return;
    }
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        /* Out of descriptors: stop polling the listener for a while. */
        listener_watch(srv, false);
        srv->accept_retry_ns = deadline_after(VUS_ACCEPT_BACKOFF_MS);
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
        errno != ECONNABORTED) {
        vdx_log_ratelimited(&srv->rl_accept, VDX_LOG_WARN, "vfio-user %s: accept: %s",
                            srv->name, strerror(errno));
    }
}

/* ---- Replies ------------------------------------------------------------------ */

/* Write one whole message (with fd, when >= 0, on its first byte). */
static int conn_send(struct vus_conn *c, const void *buf, size_t len, int fd,
                     const char **why)
{
    return vdx_send_frame(c->fd, buf, len, fd, VUS_SEND_TIMEOUT_MS, why);
}

static int conn_send_error(struct vdx_vu_server *srv, struct vus_conn *c, uint32_t err,
                           const char **why)
{
    uint8_t rep[VDX_VU_HDR_SIZE];

    srv->st.error_replies++;
    vdx_vu_enc_error_rep(rep, sizeof(rep), c->hdr.id, c->hdr.cmd, err);
    return conn_send(c, rep, sizeof(rep), -1, why);
}

/* ---- Commands ----------------------------------------------------------------- */

static int cmd_version(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                       size_t len, struct vus_reply *out)
{
    const struct vdx_vu_caps ours = {
        .max_msg_fds = srv->opts.max_msg_fds,
        .max_data_xfer_size = srv->opts.max_data_xfer_size,
        .max_dma_maps = srv->opts.max_dma_maps,
        .pgsizes = srv->opts.pgsizes,
    };
    struct vdx_vu_version_req v;
    struct vdx_vu_caps neg;
    int rc;

    if (c->negotiated) {
        return -EINVAL; /* once per connection */
    }
    out->drop = true; /* spec: a side that cannot accept the terms closes */
    out->why = "VERSION refused";
    rc = vdx_vu_version_decode(p, len, &v);
    if (rc == 0) {
        rc = vdx_vu_caps_negotiate(&v.caps, &ours, &neg);
    }
    if (rc == 0) {
        rc = vdx_vu_enc_version_rep(c->tx, c->buf_size, c->hdr.id, VDX_VU_MAJOR,
                                    v.minor > VDX_VU_MINOR ? VDX_VU_MINOR : v.minor, &neg);
    }
    if (rc < 0) {
        return rc;
    }
    out->len = (size_t)rc;
    out->drop = false;
    c->negotiated = true;
    c->max_xfer = neg.max_data_xfer_size;
    c->max_msg = VDX_VU_REGION_RW_DATA_OFF + c->max_xfer;
    c->max_msg = c->max_msg > VUS_CTRL_MAX ? c->max_msg : VUS_CTRL_MAX;
    c->pgsize = neg.pgsizes & -neg.pgsizes;
    c->max_dma_maps = neg.max_dma_maps;
    c->deadline_ns = 0;
    return 0;
}

static int cmd_dma_map(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                       size_t len, struct vus_reply *out)
{
    struct vus_dma d = {.file = VUS_NO_FILE};
    struct vdx_vu_dma_map m;
    int rc = vdx_vu_dma_map_decode(p, len, c->nfds, &m);
    int pos;

    if (rc < 0) {
        return rc;
    }
    if ((m.iova | m.size) & (c->pgsize - 1)) {
        return -EINVAL;
    }
    if (c->ndma >= c->max_dma_maps) {
        return -ENOSPC;
    }
    pos = dma_slot(c, m.iova, m.size);
    if (pos < 0) {
        return pos;
    }
    rc = dma_reserve(c);
    if (rc < 0) {
        return rc;
    }
    d.be = (struct vdx_vu_be_dma){m.iova, m.size, m.flags, NULL, -1, m.offset, false};
    if (c->nfds == 1) {
        rc = dma_attach_memory(srv, c, &d, c->rx_fds[0]);
        if (rc < 0) {
            return rc;
        }
        c->rx_fds[0] = -1; /* owned by c->files now */
    }
    rc = srv->ops->dma_map != NULL ? srv->ops->dma_map(srv->opaque, &d.be) : 0;
    if (rc < 0) {
        goto out_memory;
    }
    dma_insert(c, (uint32_t)pos, &d);
    rc = vdx_vu_enc_empty_rep(c->tx, c->buf_size, c->hdr.id, c->hdr.cmd);
    out->len = (size_t)rc;
    return 0;

out_memory:
    dma_detach_memory(c, &d);
    return rc;
}

/* Exact match of an earlier map, or -1. */
static int dma_find(const struct vus_conn *c, uint64_t iova, uint64_t size)
{
    uint32_t pos = dma_lower_bound(c, iova);

    if (pos < c->ndma && c->dma[pos].be.iova == iova && c->dma[pos].be.size == size) {
        return (int)pos;
    }
    return -1;
}

static int cmd_dma_unmap(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                         size_t len, struct vus_reply *out)
{
    struct vdx_vu_dma_unmap u;
    int rc = vdx_vu_dma_unmap_decode(p, len, &u);
    int pos;

    if (rc < 0) {
        return rc;
    }
    if (u.flags & VDX_VU_DMA_UNMAP_F_ALL) {
        dma_release_all(srv, c);
    } else {
        pos = dma_find(c, u.iova, u.size);
        if (pos < 0) {
            return -ENOENT;
        }
        dma_release(srv, c, (uint32_t)pos);
    }
    rc = vdx_vu_enc_dma_unmap_rep(c->tx, c->buf_size, c->hdr.id, &u);
    out->len = (size_t)rc;
    return 0;
}

static int cmd_device_info(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                           size_t len, struct vus_reply *out)
{
    struct vdx_vu_device_info req;
    int rc = vdx_vu_device_info_decode(p, len, &req);

    (void)srv;
    if (rc < 0) {
        return rc;
    }
    rc = vdx_vu_enc_device_info_rep(c->tx, c->buf_size, c->hdr.id, c->dev.flags,
                                    c->dev.num_regions, c->dev.num_irqs);
    out->len = (size_t)rc;
    return 0;
}

static int cmd_region_info(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                           size_t len, struct vus_reply *out)
{
    struct vdx_vu_region_info req;
    struct vdx_vu_be_region r;
    struct vdx_vu_region_desc d;
    bool full;
    int rc = vdx_vu_region_info_decode(p, len, &req);

    if (rc < 0) {
        return rc;
    }
    if (req.index >= c->dev.num_regions) {
        return -EINVAL;
    }
    rc = region_query(srv, c, req.index, &r, &d);
    if (rc < 0) {
        return rc;
    }
    rc = vdx_vu_enc_region_info_rep(c->tx, c->buf_size, c->hdr.id, req.argsz, &d, &full);
    if (rc < 0) {
        return rc;
    }
    out->len = (size_t)rc;
    out->fd = full ? r.fd : -1; /* the fd only with the reply QEMU keeps */
    return 0;
}

static int cmd_irq_info(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                        size_t len, struct vus_reply *out)
{
    struct vdx_vu_irq_info req;
    int rc = vdx_vu_irq_info_decode(p, len, &req);

    (void)srv;
    if (rc < 0) {
        return rc;
    }
    if (req.index >= c->dev.num_irqs) {
        return -EINVAL;
    }
    rc = vdx_vu_enc_irq_info_rep(c->tx, c->buf_size, c->hdr.id, req.index,
                                 c->irqs[req.index].flags, c->irqs[req.index].count);
    out->len = (size_t)rc;
    return 0;
}

/* Index and vector range of a decoded SET_IRQS against the device. */
static int set_irqs_check(const struct vus_conn *c, const struct vdx_vu_irq_set_req *req)
{
    const struct vus_irq *irq;

    if (req->index >= c->dev.num_irqs) {
        return -EINVAL;
    }
    irq = &c->irqs[req->index];
    if (req->count > 0 &&
        (req->start >= irq->count || req->count > irq->count - req->start)) {
        return -EINVAL;
    }
    if (req->data == VDX_VU_IRQ_SET_DATA_EVENTFD &&
        req->action == VDX_VU_IRQ_SET_ACTION_MASK) {
        return -EINVAL; /* no mask eventfds in VFIO */
    }
    return 0;
}

static int cmd_set_irqs(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                        size_t len, struct vus_reply *out)
{
    struct vdx_vu_irq_set_req req;
    struct vdx_vu_be_irq_set set;
    int rc = vdx_vu_set_irqs_decode(p, len, c->nfds, &req);

    if (rc == 0) {
        rc = set_irqs_check(c, &req);
    }
    if (rc < 0) {
        return rc;
    }
    set = (struct vdx_vu_be_irq_set){.index = req.index,
                                     .start = req.start,
                                     .count = req.count,
                                     .action = req.action,
                                     .data = req.data,
                                     .bools = req.bools};
    if (req.data == VDX_VU_IRQ_SET_DATA_EVENTFD) {
        set.fds = req.nfds > 0 ? c->rx_fds : c->no_fds;
    }
    rc = srv->ops->set_irqs(srv->opaque, &set);
    if (rc < 0) {
        return rc;
    }
    irq_apply(c, &req);
    rc = vdx_vu_enc_empty_rep(c->tx, c->buf_size, c->hdr.id, c->hdr.cmd);
    out->len = (size_t)rc;
    return 0;
}

/* A decoded access against the region cache. */
static int region_access_check(const struct vus_conn *c,
                               const struct vdx_vu_region_rw_req *rw, uint32_t need_flag)
{
    const struct vdx_vu_be_region *r;

    if (rw->region >= c->dev.num_regions) {
        return -EINVAL;
    }
    r = &c->regions[rw->region];
    if (!(r->flags & need_flag) || rw->offset > r->size ||
        rw->count > r->size - rw->offset) {
        return -EINVAL;
    }
    return 0;
}

static int cmd_region_read(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                           size_t len, struct vus_reply *out)
{
    struct vdx_vu_region_rw_req rw;
    int rc = vdx_vu_region_read_decode(p, len, c->max_xfer, &rw);

    if (rc == 0) {
        rc = region_access_check(c, &rw, VDX_VU_REGION_F_READ);
    }
    if (rc == 0) {
        rc = srv->ops->region_read(srv->opaque, rw.region, rw.offset,
                                   c->tx + VDX_VU_REGION_RW_DATA_OFF, rw.count);
    }
    if (rc < 0) {
        return rc;
    }
    rc = vdx_vu_enc_region_read_rep(c->tx, c->buf_size, c->hdr.id, rw.offset, rw.region,
                                    rw.count);
    out->len = (size_t)rc;
    return 0;
}

static int cmd_region_write(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                            size_t len, struct vus_reply *out)
{
    struct vdx_vu_region_rw_req rw;
    int rc = vdx_vu_region_write_decode(p, len, c->max_xfer, &rw);

    if (rc == 0) {
        rc = region_access_check(c, &rw, VDX_VU_REGION_F_WRITE);
    }
    if (rc == 0) {
        rc = srv->ops->region_write(srv->opaque, rw.region, rw.offset, rw.data, rw.count);
    }
    if (rc < 0) {
        return rc;
    }
    rc = vdx_vu_enc_region_write_rep(c->tx, c->buf_size, c->hdr.id, rw.offset, rw.region,
                                     rw.count);
    out->len = (size_t)rc;
    return 0;
}

static int cmd_reset(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                     size_t len, struct vus_reply *out)
{
    int rc;

    (void)p;
    if (len != 0) {
        return -EINVAL;
    }
    if (srv->ops->reset == NULL) {
        return -ENOTSUP;
    }
    rc = srv->ops->reset(srv->opaque);
    if (rc < 0) {
        return rc;
    }
    rc = vdx_vu_enc_empty_rep(c->tx, c->buf_size, c->hdr.id, c->hdr.cmd);
    out->len = (size_t)rc;
    return 0;
}

typedef int (*vus_cmd_fn)(struct vdx_vu_server *srv, struct vus_conn *c, const uint8_t *p,
                          size_t len, struct vus_reply *out);

/* The handler of a command, and how many descriptors it may carry. */
static vus_cmd_fn cmd_lookup(const struct vdx_vu_server *srv, uint16_t cmd,
                             unsigned *max_fds)
{
    *max_fds = 0;
    switch (cmd) {
    case VDX_VU_CMD_VERSION:
        return cmd_version;
    case VDX_VU_CMD_DMA_MAP:
        *max_fds = 1;
        return cmd_dma_map;
    case VDX_VU_CMD_DMA_UNMAP:
        return cmd_dma_unmap;
    case VDX_VU_CMD_DEVICE_GET_INFO:
        return cmd_device_info;
    case VDX_VU_CMD_DEVICE_GET_REGION_INFO:
        return cmd_region_info;
    case VDX_VU_CMD_DEVICE_GET_IRQ_INFO:
        return cmd_irq_info;
    case VDX_VU_CMD_DEVICE_SET_IRQS:
        *max_fds = srv->opts.max_msg_fds;
        return cmd_set_irqs;
    case VDX_VU_CMD_REGION_READ:
        return cmd_region_read;
    case VDX_VU_CMD_REGION_WRITE:
        return cmd_region_write;
    case VDX_VU_CMD_DEVICE_RESET:
        return cmd_reset;
    default:
        return NULL;
    }
}

/* Run the command in c->rx: 0 with *out filled, or -errno for an error reply. */
static int conn_dispatch(struct vdx_vu_server *srv, struct vus_conn *c,
                         struct vus_reply *out)
{
    const struct vdx_vu_hdr *h = &c->hdr;
    unsigned max_fds;
    vus_cmd_fn fn = cmd_lookup(srv, h->cmd, &max_fds);

    if ((h->flags & ~VDX_VU_F_KNOWN) || (h->flags & VDX_VU_F_ERROR)) {
        return -EINVAL;
    }
    if (fn == NULL) {
        return h->cmd == VDX_VU_CMD_DEVICE_FEATURE ? -ENOTTY : -ENOTSUP;
    }
    if (c->fds_bad || c->nfds > max_fds) {
        return -EINVAL;
    }
    if (!c->negotiated && h->cmd != VDX_VU_CMD_VERSION) {
        return -EINVAL; /* VERSION comes first */
    }
    return fn(srv, c, c->rx + VDX_VU_HDR_SIZE, h->size - VDX_VU_HDR_SIZE, out);
}

/* Serve the complete message in c->rx. Returns 0, or -errno with *why: drop. */
static int conn_message(struct vdx_vu_server *srv, struct vus_conn *c, const char **why)
{
    struct vus_reply out = {.fd = -1};
    uint32_t type = c->hdr.flags & VDX_VU_F_TYPE_MASK;
    int rc;

    if (type == VDX_VU_F_TYPE_REPLY) {
        srv->st.ignored++; /* we never send requests: nothing is waiting for it */
        return 0;
    }
    srv->st.messages++;
    rc = type == VDX_VU_F_TYPE_CMD ? conn_dispatch(srv, c, &out) : -EINVAL;
    if (rc < 0) {
        vdx_log_ratelimited(&srv->rl_msg, VDX_LOG_INFO,
                            "vfio-user %s: %s (id %u) failed: %s", srv->name,
                            vdx_vu_cmd_name(c->hdr.cmd), c->hdr.id, strerror(-rc));
    }
    if (c->hdr.flags & VDX_VU_F_NO_REPLY) {
        srv->st.posted_errors += rc < 0;
    } else {
        int sent = rc < 0 ? conn_send_error(srv, c, reply_errno(rc), why)
                          : conn_send(c, c->tx, out.len, out.fd, why);

        if (sent < 0) {
            return sent;
        }
    }
    if (out.drop) {
        *why = out.why;
        return rc < 0 ? rc : -EPROTO;
    }
    return 0;
}

/* The header is in: frame the message. Returns 0, or -errno with *why: drop. */
static int conn_header(struct vus_conn *c, const char **why)
{
    int rc = vdx_vu_hdr_decode(c->rx, c->fill, &c->hdr);

    if (rc < 0) {
        *why = "message size below the header size";
        return rc;
    }
    if (c->hdr.size > c->max_msg) {
        *why = c->negotiated ? "message larger than the negotiated maximum"
                             : "message larger than any VERSION";
        return -EMSGSIZE;
    }
    c->need = c->hdr.size;
    return 0;
}

/* Ready for the next message. */
static void conn_message_done(struct vus_conn *c)
{
    conn_msg_fds_close(c);
    c->fill = 0;
    c->need = VDX_VU_HDR_SIZE;
    if (c->negotiated) {
        c->deadline_ns = 0;
    }
}

/* Keep the descriptors of one recvmsg() for the message being read. */
static void conn_take_fds(struct vus_conn *c, struct msghdr *msg)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
        size_t n;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (c->nfds < VUS_RX_FDS) {
                c->rx_fds[c->nfds++] = fd;
            } else {
                close(fd);
                c->fds_bad = true;
            }
        }
    }
    if (msg->msg_flags & MSG_CTRUNC) {
        c->fds_bad = true; /* the kernel dropped some: refuse the message */
    }
}

/* One recvmsg() of at most the rest of the current message. Returns the
 * bytes read (> 0), 0 when nothing is ready, or -errno with *why: drop. */
static ssize_t conn_recv(struct vus_conn *c, const char **why)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * VUS_RX_FDS)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {c->rx + c->fill, c->need - c->fill};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cbuf.b,
                         .msg_controllen = sizeof(cbuf.b)};
    ssize_t n;

    do {
        n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        *why = "receive failed";
        return -errno;
    }
    conn_take_fds(c, &msg);
    if (n == 0) {
        *why = c->fill > 0 || c->nfds > 0 ? "closed in the middle of a message" : NULL;
        return -ECONNRESET;
    }
    return n;
}

/* Read and serve what is ready. Returns 0, or -errno with *why: drop. */
static int conn_read(struct vdx_vu_server *srv, struct vus_conn *c, const char **why)
{
    unsigned served = 0;

    while (served < VUS_MSGS_PER_STEP) {
        ssize_t n = conn_recv(c, why);
        int rc;

        if (n <= 0) {
            return (int)n;
        }
        if (c->fill == 0 && c->negotiated) {
            c->deadline_ns = deadline_after(srv->opts.stall_timeout_ms);
        }
        c->fill += (uint32_t)n;
        if (c->fill == VDX_VU_HDR_SIZE && c->need == VDX_VU_HDR_SIZE) {
            rc = conn_header(c, why);
            if (rc < 0) {
                return rc;
            }
        }
        if (c->fill < c->need) {
            continue;
        }
        rc = conn_message(srv, c, why);
        conn_message_done(c);
        if (rc < 0) {
            return rc;
        }
        served++;
    }
    return 0;
}

static void conn_event(struct vdx_vu_server *srv)
{
    const char *why = NULL;
    int rc = conn_read(srv, srv->conn, &why);

    if (rc < 0) {
        conn_drop(srv, rc, why);
    }
}

/* ---- Server: setup -------------------------------------------------------------- */

/* Bound under a temporary name, then renamed: a client that sees the socket
 * file can connect. */
static int listener_open(struct vdx_vu_server *srv)
{
    char tmp[sizeof(srv->path) + 16];
    int fd, rc;

    rc = vdx_socket_path_free(srv->path, "vfio-user");
    if (rc < 0) {
        return rc;
    }
    snprintf(tmp, sizeof(tmp), "%s.%u", srv->path, (unsigned)getpid());
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -errno;
    }
    rc = vdx_listener_bind(fd, tmp, srv->opts.socket_mode, VUS_BACKLOG);
    if (rc < 0) {
        goto out_close;
    }
    rc = vdx_listener_publish(tmp, srv->path, &srv->sock_dev, &srv->sock_ino);
    if (rc < 0) {
        goto out_unlink;
    }
    srv->listen_fd = fd;
    return 0;

out_unlink:
    unlink(tmp);
out_close:
    vdx_log(VDX_LOG_ERR, "vfio-user: cannot listen on %s: %s", srv->path, strerror(-rc));
    close(fd);
    return rc;
}

void vdx_vu_server_opts_default(struct vdx_vu_server_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->max_data_xfer_size = VDX_VU_DEF_MAX_XFER;
    opts->max_msg_fds = VDX_VU_QEMU_MAX_MSG_FDS;
    opts->max_dma_maps = VDX_VU_DEF_MAX_DMA_MAPS;
    opts->max_dma_files = 64;
    opts->pgsizes = VDX_VU_DEF_PGSIZES;
    opts->stall_timeout_ms = 10000;
    opts->socket_mode = 0600;
}

/* Copy opts, zero fields taking their defaults; -EINVAL when out of range. */
static int opts_normalize(const struct vdx_vu_server_opts *in, struct vdx_vu_server_opts *o)
{
    struct vdx_vu_server_opts def;

    vdx_vu_server_opts_default(&def);
    *o = in != NULL ? *in : def;
    o->max_data_xfer_size =
        o->max_data_xfer_size ? o->max_data_xfer_size : def.max_data_xfer_size;
    o->max_msg_fds = o->max_msg_fds ? o->max_msg_fds : def.max_msg_fds;
    o->max_dma_maps = o->max_dma_maps ? o->max_dma_maps : def.max_dma_maps;
    o->max_dma_files = o->max_dma_files ? o->max_dma_files : def.max_dma_files;
    o->pgsizes = o->pgsizes ? o->pgsizes : def.pgsizes;
    o->stall_timeout_ms = o->stall_timeout_ms ? o->stall_timeout_ms : def.stall_timeout_ms;
    o->socket_mode = o->socket_mode ? o->socket_mode : def.socket_mode;
    if (o->max_data_xfer_size > VDX_VU_QEMU_MAX_XFER ||
        o->max_msg_fds > VDX_VU_QEMU_MAX_MSG_FDS || o->max_dma_files > VUS_MAX_DMA_FILES ||
        (o->pgsizes & (VDX_VU_DEF_PGSIZES - 1)) || (o->socket_mode & ~07777u)) {
        return -EINVAL;
    }
    return 0;
}

static bool ops_complete(const struct vdx_vu_backend_ops *ops)
{
    return ops != NULL && ops->device_info != NULL && ops->region_info != NULL &&
           ops->irq_info != NULL && ops->set_irqs != NULL && ops->region_read != NULL &&
           ops->region_write != NULL;
}

static int server_init(struct vdx_vu_server *srv, const char *path,
                       const struct vdx_vu_server_opts *opts)
{
    int rc = opts_normalize(opts, &srv->opts);

    if (rc < 0) {
        return rc;
    }
    /* Room for the temporary name too: ".PID" (listener_open). */
    if (strlen(path) + 1 + 11 > sizeof(srv->path) || path[0] == '\0') {
        return -ENAMETOOLONG;
    }
    memcpy(srv->path, path, strlen(path) + 1);
    snprintf(srv->name, sizeof(srv->name), "%s",
             srv->opts.name != NULL ? srv->opts.name : path);
    srv->opts.name = NULL; /* not kept: the caller's string */
    srv->listen_fd = -1;
    srv->epoll_fd = -1;
    srv->uid = geteuid();
    return 0;
}

int vdx_vu_server_create_opts(const char *path, const struct vdx_vu_server_opts *opts,
                              const struct vdx_vu_backend_ops *ops, void *opaque,
                              struct vdx_vu_server **out)
{
    struct vdx_vu_server *srv;
    int rc;

    if (path == NULL || !ops_complete(ops) || out == NULL) {
        return -EINVAL;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return -ENOMEM;
    }
    srv->ops = ops;
    srv->opaque = opaque;
    rc = server_init(srv, path, opts);
    if (rc < 0) {
        goto out_free;
    }
    rc = listener_open(srv);
    if (rc < 0) {
        goto out_free;
    }
    srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epoll_fd < 0) {
        rc = -errno;
        goto out_listener;
    }
    listener_watch(srv, true);
    if (!srv->listening) {
        rc = -ENOMEM;
        goto out_epoll;
    }
    vdx_log(VDX_LOG_INFO, "vfio-user %s: listening on %s", srv->name, srv->path);
    *out = srv;
    return 0;

out_epoll:
    close_fd(&srv->epoll_fd);
out_listener:
    close_fd(&srv->listen_fd);
    unlink(srv->path);
out_free:
    free(srv);
    return rc;
}

int vdx_vu_server_create(const char *path, const struct vdx_vu_backend_ops *ops,
                         void *opaque, struct vdx_vu_server **out)
{
    return vdx_vu_server_create_opts(path, NULL, ops, opaque, out);
}

/* ---- Server: running ---------------------------------------------------------- */

int vdx_vu_server_fd(const struct vdx_vu_server *srv)
{
    return srv->epoll_fd;
}

bool vdx_vu_server_connected(const struct vdx_vu_server *srv)
{
    return srv->conn != NULL;
}

/* The nearest pending deadline (0: none). */
static uint64_t next_deadline(const struct vdx_vu_server *srv)
{
    if (srv->conn != NULL) {
        return srv->conn->deadline_ns;
    }
    return srv->accept_retry_ns;
}

/* timeout_ms shortened to the nearest deadline. */
static int step_timeout(const struct vdx_vu_server *srv, int timeout_ms)
{
    uint64_t deadline = next_deadline(srv), now = vdx_now_ns();
    uint64_t ms;

    if (deadline == 0) {
        return timeout_ms;
    }
    ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
    if (timeout_ms >= 0 && (uint64_t)timeout_ms < ms) {
        return timeout_ms;
    }
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static void srv_timers(struct vdx_vu_server *srv)
{
    uint64_t now = vdx_now_ns();

    if (srv->conn != NULL && srv->conn->deadline_ns != 0 && now >= srv->conn->deadline_ns) {
        conn_drop(srv, -ETIMEDOUT,
                  srv->conn->negotiated ? "stalled in the middle of a message"
                                        : "no VERSION in time");
    }
    if (srv->accept_retry_ns != 0 && now >= srv->accept_retry_ns) {
        srv->accept_retry_ns = 0;
        if (srv->conn == NULL) {
            listener_watch(srv, true);
        }
    }
}

int vdx_vu_server_step(struct vdx_vu_server *srv, int timeout_ms)
{
    struct epoll_event ev[VUS_EVENTS];
    int n = epoll_wait(srv->epoll_fd, ev, VUS_EVENTS, step_timeout(srv, timeout_ms));

    if (n < 0) {
        return -errno;
    }
    /* The listener and the client are never in the set together: no event
     * of this array can belong to a connection opened or closed meanwhile. */
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u32 == VUS_TAG_LISTENER) {
            srv_accept(srv);
        } else if (srv->conn != NULL) {
            conn_event(srv);
        }
    }
    srv_timers(srv);
    return n;
}

int vdx_vu_server_irq_fd(const struct vdx_vu_server *srv, uint32_t index, uint32_t vector)
{
    const struct vus_conn *c = srv->conn;

    if (c == NULL || index >= c->dev.num_irqs || vector >= c->irqs[index].count ||
        c->irqs[index].trigger[vector] < 0) {
        return -ENOENT;
    }
    return c->irqs[index].trigger[vector];
}

int vdx_vu_eventfd_signal(int fd)
{
    static const uint64_t one = 1;
    struct pollfd p = {.fd = fd, .events = POLLOUT};

    /* Writable first: the peer owns the file description and may have made
     * it blocking (or sent a pipe); a full one is readable already. */
    if (poll(&p, 1, 0) < 0) {
        return -errno;
    }
    if (!(p.revents & POLLOUT)) {
        return (p.revents & (POLLERR | POLLNVAL)) ? -EBADF : 0;
    }
    for (;;) {
        ssize_t n = write(fd, &one, sizeof(one));

        if (n == (ssize_t)sizeof(one)) {
            return 0;
        }
        if (n >= 0) {
            return -EIO;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

int vdx_vu_server_irq_signal(struct vdx_vu_server *srv, uint32_t index, uint32_t vector)
{
    int fd = vdx_vu_server_irq_fd(srv, index, vector);

    return fd < 0 ? fd : vdx_vu_eventfd_signal(fd);
}

void vdx_vu_server_stats(const struct vdx_vu_server *srv, struct vdx_vu_server_stats *st)
{
    *st = srv->st;
    st->dma_maps = srv->conn != NULL ? srv->conn->ndma : 0;
    st->dma_files = srv->conn != NULL ? srv->conn->nfiles : 0;
}

/* Unlink the socket only if it is still the one we bound. */
static void socket_unlink_ours(const struct vdx_vu_server *srv)
{
    struct stat st;

    if (lstat(srv->path, &st) == 0 && st.st_dev == srv->sock_dev &&
        st.st_ino == srv->sock_ino) {
        unlink(srv->path);
    }
}

void vdx_vu_server_destroy(struct vdx_vu_server *srv)
{
    if (srv == NULL) {
        return;
    }
    if (srv->conn != NULL) {
        conn_close(srv);
    }
    close_fd(&srv->epoll_fd);
    close_fd(&srv->listen_fd);
    socket_unlink_ours(srv);
    free(srv);
}
