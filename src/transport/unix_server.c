/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The unix transport, daemon side (unix_server.h): serves a struct dext over
 * RUNTIME_DIR/dext.sock with the wire format of wire.h. Linux only (epoll,
 * SO_PEERCRED).
 *
 * Reading: every connection has a small buffer for the one request it may
 * have in flight (strict request/reply, wire.h). One recvmsg() per readable
 * event; a partial frame simply waits in its buffer, so a stalled peer never
 * blocks the others. A descriptor received belongs to the frame being read.
 *
 * Writing (slow reader policy): each reply is one sendmsg(MSG_NOSIGNAL) on a
 * blocking socket with SO_SNDTIMEO = VUS_SEND_TIMEOUT_MS; a reply not written
 * completely by then (a wait that times out, or partial writes past that
 * deadline) drops that client. A well-behaved client always waits for its
 * reply, so it never hits this; a peer that stops reading stalls the daemon
 * once, for at most about twice VUS_SEND_TIMEOUT_MS, and is gone.
 *
 * The CALL path allocates nothing: request in the connection buffer, reply
 * on the stack.
 */
#include "transport/unix_server.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "dext/core.h"
#include "platform/platform.h"
#include "transport/sockutil.h"
#include "transport/wire.h"

#define VUS_DEFAULT_MAX_CLIENTS 256u
#define VUS_EVENTS              32
#define VUS_ACCEPTS_PER_STEP    16
#define VUS_BACKLOG             64
#define VUS_SEND_TIMEOUT_MS     1000
#define VUS_CONN_BUF            128u /* one request frame plus room to see excess bytes */
#define VUS_RX_FDS              4    /* cmsg room: enough to count (and close) extras */

_Static_assert(VUS_CONN_BUF > VDX_WIRE_MAX_REQ_FRAME, "a request fits, with room to spare");

struct vus_conn {
    struct vdx_unix_server *srv;
    struct vus_conn *prev, *next;
    int fd;
    pid_t pid;
    uid_t uid;
    struct dext_uc *uc; /* NULL until OPEN */
    int rx_fd;          /* descriptor received with the frame being read, or -1 */
    uint32_t fill;      /* bytes of the frame being read, in buf */
    /*
     * notify_fd is read by the dext's notify callback on any thread and
     * replaced by NOTIFY_ATTACH on the server thread: notify_lock guards it
     * so the server never closes an fd the callback is about to signal.
     */
    pthread_mutex_t notify_lock;
    int notify_fd;
    uint8_t buf[VUS_CONN_BUF];
};

struct vdx_unix_server {
    struct dext *d;
    int listen_fd;
    int epoll_fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t sock_dev; /* identity of the socket file we bound, for unlink */
    ino_t sock_ino;
    uid_t uid;
    bool allow_any_uid;
    uid_t allowed_uids[VDX_UNIX_MAX_ALLOWED_UIDS];
    unsigned n_allowed_uids;
    unsigned max_clients;
    unsigned nclients;
    struct vus_conn *conns;
    struct vdx_ratelimit rl_drop;   /* dropped / disconnected clients */
    struct vdx_ratelimit rl_accept; /* refused or failed accepts */
    uint8_t *scratch;               /* VDX_WIRE_MAX_FRAME: LIST and STATUS replies */
};

/* ---- Connections: lifetime ------------------------------------------------ */

/* "pid 123 (0000:00:01.0)", or "pid 123" before OPEN. */
static const char *conn_label(const struct vus_conn *c, char *buf, size_t len)
{
    struct dext_identity id;

    if (c->uc == NULL) {
        snprintf(buf, len, "pid %d", (int)c->pid);
        return buf;
    }
    dext_dev_identity(dext_uc_device(c->uc), &id);
    snprintf(buf, len, "pid %d (%04x:%02x:%02x.%x)", (int)c->pid, id.domain, id.bus,
             id.slot, id.fn);
    return buf;
}

/* The dext_notify_fn of every connection: any thread, must not block. */
static void conn_notify(void *opaque)
{
    struct vus_conn *c = opaque;

    pthread_mutex_lock(&c->notify_lock);
    if (c->notify_fd >= 0) {
        (void)vdx_event_signal(c->notify_fd);
    }
    pthread_mutex_unlock(&c->notify_lock);
}

/* Swap in a new notify fd (or -1) and close the previous one. */
static void conn_set_notify_fd(struct vus_conn *c, int fd)
{
    int old;

    pthread_mutex_lock(&c->notify_lock);
    old = c->notify_fd;
    c->notify_fd = fd;
    pthread_mutex_unlock(&c->notify_lock);
    vdx_close_fd(&old);
}

static void conn_free(struct vus_conn *c)
{
    struct vdx_unix_server *srv = c->srv;

    epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    /* After dext_uc_close() the core no longer calls conn_notify(). */
    dext_uc_close(c->uc);
    c->uc = NULL;
    conn_set_notify_fd(c, -1);
    vdx_close_fd(&c->rx_fd);
    vdx_close_fd(&c->fd);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    srv->nclients--;
    pthread_mutex_destroy(&c->notify_lock);
    free(c);
}

/* Close a connection, logging why: why == NULL is a clean disconnect. */
static void conn_drop(struct vus_conn *c, int err, const char *why)
{
    char label[64];

    conn_label(c, label, sizeof(label));
    if (why == NULL) {
        vdx_log_ratelimited(&c->srv->rl_drop, VDX_LOG_INFO, "unix: client %s disconnected",
                            label);
    } else {
        vdx_log_ratelimited(&c->srv->rl_drop, VDX_LOG_WARN,
                            "unix: dropping client %s: %s (%s)", label, why,
                            strerror(-err));
    }
    conn_free(c);
}

static int conn_new(struct vdx_unix_server *srv, int fd, const struct ucred *cred)
{
    struct timeval tv = {VUS_SEND_TIMEOUT_MS / 1000, (VUS_SEND_TIMEOUT_MS % 1000) * 1000};
    struct epoll_event ev = {.events = EPOLLIN};
    struct vus_conn *c;
    int rc;

    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        return -errno;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return -ENOMEM;
    }
    rc = -pthread_mutex_init(&c->notify_lock, NULL);
    if (rc < 0) {
        goto out_free;
    }
    c->srv = srv;
    c->fd = fd;
    c->pid = cred->pid;
    c->uid = cred->uid;
    c->rx_fd = -1;
    c->notify_fd = -1;
    ev.data.ptr = c;
    if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        rc = -errno;
        goto out_mutex;
    }
    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->nclients++;
    return 0;

out_mutex:
    pthread_mutex_destroy(&c->notify_lock);
out_free:
    free(c);
    return rc;
}

/* ---- Accepting ------------------------------------------------------------ */

static bool peer_allowed(const struct vdx_unix_server *srv, uid_t uid)
{
    if (srv->allow_any_uid || uid == srv->uid) {
        return true;
    }
    for (unsigned i = 0; i < srv->n_allowed_uids; i++) {
        if (srv->allowed_uids[i] == uid) {
            return true;
        }
    }
    return false;
}

/* Check and adopt one accepted socket; closes it when refused. */
static void srv_admit(struct vdx_unix_server *srv, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int rc;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        vdx_log_ratelimited(&srv->rl_accept, VDX_LOG_WARN,
                            "unix: refusing a client: no peer credentials (%s)",
                            strerror(errno));
        close(fd);
        return;
    }
    if (!peer_allowed(srv, cred.uid)) {
        vdx_log_ratelimited(
            &srv->rl_accept, VDX_LOG_WARN,
            "unix: refusing client pid %d uid %u: not uid %u nor an allowed uid",
            (int)cred.pid, (unsigned)cred.uid, (unsigned)srv->uid);
        close(fd);
        return;
    }
    if (srv->nclients >= srv->max_clients) {
        vdx_log_ratelimited(
            &srv->rl_accept, VDX_LOG_WARN,
            "unix: refusing client pid %d: %u clients already (the maximum)", (int)cred.pid,
            srv->nclients);
        close(fd);
        return;
    }
    rc = conn_new(srv, fd, &cred);
    if (rc < 0) {
        vdx_log_ratelimited(&srv->rl_accept, VDX_LOG_WARN,
                            "unix: refusing client pid %d: %s", (int)cred.pid,
                            strerror(-rc));
        close(fd);
    }
}

static void srv_accept(struct vdx_unix_server *srv)
{
    for (int i = 0; i < VUS_ACCEPTS_PER_STEP; i++) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED) {
                vdx_log_ratelimited(&srv->rl_accept, VDX_LOG_WARN, "unix: accept: %s",
                                    strerror(errno));
            }
            return;
        }
        srv_admit(srv, fd);
    }
}

/* ---- Replies -------------------------------------------------------------- */

/*
 * Write one whole frame (and fd, when >= 0, with its first byte). Returns 0,
 * or -errno with *why set: the caller drops the client.
 */
static int conn_send(struct vus_conn *c, const void *buf, size_t len, int fd,
                     const char **why)
{
    return vdx_send_frame(c->fd, buf, len, fd, VUS_SEND_TIMEOUT_MS, why);
}

/* ---- Requests ------------------------------------------------------------- */

static int send_status_rep(struct vus_conn *c, const struct vdx_wire_req *req,
                           dext_status st, const char **why)
{
    uint8_t rep[VDX_WIRE_HDR_SIZE + VDX_WIRE_STATUS_REP_SIZE];
    int n = vdx_wire_enc_status_rep(rep, sizeof(rep), req->hdr.op, req->hdr.seq, st);

    return conn_send(c, rep, (size_t)n, -1, why);
}

static void dev_info(struct dext_dev *dev, struct vdx_wire_dev_info *out)
{
    struct dext_identity id;

    dext_dev_identity(dev, &id);
    out->domain = id.domain;
    out->bus = id.bus;
    out->slot = id.slot;
    out->fn = id.fn;
    out->vendor = id.vendor;
    out->device = id.device;
    out->class_code = id.class_code;
    out->claimed = dext_dev_claimed(dev);
}

static int op_list(struct vus_conn *c, const struct vdx_wire_req *req, const char **why)
{
    struct dext *d = c->srv->d;
    unsigned count = dext_device_count(d);
    struct vdx_wire_dev_info *devs;
    dext_status st = DEXT_OK;
    unsigned n = 0;
    int len;

    if (count > VDX_WIRE_LIST_MAX) {
        vdx_log(VDX_LOG_WARN, "unix: listing only the first %u of %u devices",
                VDX_WIRE_LIST_MAX, count);
        count = VDX_WIRE_LIST_MAX;
    }
    devs = calloc(count > 0 ? count : 1, sizeof(*devs));
    if (devs == NULL) {
        st = dext_status_from_errno(-ENOMEM);
    }
    for (; devs != NULL && n < count; n++) {
        struct dext_dev *dev = dext_device(d, n);

        if (dev == NULL) {
            break;
        }
        dev_info(dev, &devs[n]);
    }
    len = vdx_wire_enc_list_rep(c->srv->scratch, VDX_WIRE_MAX_FRAME, req->hdr.seq, st, devs,
                                n);
    free(devs);
    return conn_send(c, c->srv->scratch, (size_t)len, -1, why);
}

static int op_open(struct vus_conn *c, const struct vdx_wire_req *req, const char **why)
{
    struct dext_dev *dev = dext_device(c->srv->d, req->u.open.index);
    dext_status st = DEXT_OK;
    char label[64];

    if (c->uc != NULL) {
        *why = "a second OPEN on one connection";
        return -EPROTO;
    }
    if (dev == NULL) {
        st = DEXT_E_NOT_FOUND;
    } else {
        c->uc = dext_uc_open(dev, conn_notify, c);
        st = c->uc != NULL ? DEXT_OK : dext_status_from_errno(-ENOMEM);
    }
    if (c->uc != NULL) {
        vdx_log(VDX_LOG_INFO, "unix: client %s opened",
                conn_label(c, label, sizeof(label)));
    }
    return send_status_rep(c, req, st, why);
}

static int op_call(struct vus_conn *c, const struct vdx_wire_req *req, const char **why)
{
    uint8_t rep[VDX_WIRE_MAX_UC_REP_FRAME];
    uint64_t out[DEXT_MAX_SCALARS] = {0};
    uint32_t room = req->u.call.nout;
    uint32_t nout = room;
    dext_status st;
    int n;

    if (c->uc == NULL) {
        st = DEXT_E_NOT_ATTACHED;
        nout = 0;
    } else {
        st = dext_uc_call(c->uc, req->u.call.sel, req->u.call.in, req->u.call.nin, out,
                          &nout);
    }
    if (nout > room) {
        nout = room;
    }
    n = vdx_wire_enc_call_rep(rep, sizeof(rep), req->hdr.seq, st, out, nout);
    return conn_send(c, rep, (size_t)n, -1, why);
}

static int op_register_dma(struct vus_conn *c, const struct vdx_wire_req *req,
                           const char **why)
{
    uint8_t rep[VDX_WIRE_HDR_SIZE + VDX_WIRE_DMA_REP_SIZE];
    struct dext_dma_src src = {
        .va = NULL, .fd = c->rx_fd, .fd_offset = req->u.dma.fd_offset};
    uint64_t bus = 0, bus_len = 0;
    dext_status st = DEXT_E_NOT_ATTACHED;
    int n;

    if (c->uc != NULL) {
        st = dext_uc_register_dma(c->uc, req->u.dma.key, &src, req->u.dma.size, &bus,
                                  &bus_len);
    }
    vdx_close_fd(&c->rx_fd); /* the core keeps its own dup */
    n = vdx_wire_enc_dma_rep(rep, sizeof(rep), req->hdr.seq, st, bus, bus_len);
    return conn_send(c, rep, (size_t)n, -1, why);
}

/* What a successful copy_memory may hand to a client: an fd and a sane range. */
static dext_status mem_check(const struct dext_mem *mem)
{
    if (mem->fd < 0) {
        return DEXT_E_UNSUPPORTED; /* only a pointer in this process */
    }
    if (mem->size == 0 || mem->fd_offset + mem->size < mem->size) {
        return DEXT_E_IO_ERROR;
    }
    return DEXT_OK;
}

static int op_copy_memory(struct vus_conn *c, const struct vdx_wire_req *req,
                          const char **why)
{
    uint8_t rep[VDX_WIRE_HDR_SIZE + VDX_WIRE_MEM_REP_SIZE];
    struct dext_mem mem = {.ptr = NULL, .fd = -1};
    dext_status st = DEXT_E_NOT_ATTACHED;
    int n, rc;

    if (c->uc != NULL) {
        st = dext_uc_copy_memory(c->uc, req->u.mem.type, &mem);
    }
    if (st == DEXT_OK) {
        st = mem_check(&mem);
    }
    if (st != DEXT_OK) {
        n = vdx_wire_enc_mem_rep(rep, sizeof(rep), req->hdr.seq, st, 0, 0, 0);
        vdx_close_fd(&mem.fd);
        return conn_send(c, rep, (size_t)n, -1, why);
    }
    n = vdx_wire_enc_mem_rep(rep, sizeof(rep), req->hdr.seq, st,
                             mem.wc ? VDX_WIRE_MEM_F_WC : 0, mem.fd_offset, mem.size);
    rc = conn_send(c, rep, (size_t)n, mem.fd, why);
    vdx_close_fd(&mem.fd);
    return rc;
}

static int op_notify_attach(struct vus_conn *c, const struct vdx_wire_req *req,
                            const char **why)
{
    int fd = c->rx_fd;

    c->rx_fd = -1;
    /* Signalling must never block the daemon, whatever the peer does with
     * its end: only a socket (signalled with MSG_DONTWAIT) is accepted. */
    if (fd >= 0 && vdx_event_check_signal_fd(fd) < 0) {
        close(fd);
        return send_status_rep(c, req, DEXT_E_BAD_ARGUMENT, why);
    }
    conn_set_notify_fd(c, fd);
    dext_uc_set_sink(c->uc, fd >= 0);
    return send_status_rep(c, req, DEXT_OK, why);
}

static int send_json_chunks(struct vus_conn *c, uint32_t seq, const char *text, size_t len,
                            const char **why)
{
    size_t off = 0;

    do {
        size_t chunk =
            len - off < VDX_WIRE_JSON_CHUNK_MAX ? len - off : VDX_WIRE_JSON_CHUNK_MAX;
        uint16_t flags = off + chunk < len ? VDX_WIRE_F_MORE : 0;
        int n = vdx_wire_enc_json_rep(c->srv->scratch, VDX_WIRE_MAX_FRAME, seq, DEXT_OK,
                                      flags, text + off, (uint32_t)chunk);
        int rc = conn_send(c, c->srv->scratch, (size_t)n, -1, why);

        if (rc < 0) {
            return rc;
        }
        off += chunk;
    } while (off < len);
    return 0;
}

static int op_status(struct vus_conn *c, const struct vdx_wire_req *req, const char **why)
{
    struct json_object *json = dext_status_json(c->srv->d);
    dext_status st = DEXT_E_NO_SPACE;
    const char *text = NULL;
    size_t len = 0;
    int n, rc;

    if (json != NULL) {
        text = json_object_to_json_string_ext(json, JSON_C_TO_STRING_PLAIN);
        len = text != NULL ? strlen(text) : 0;
    }
    if (text != NULL && len <= VDX_WIRE_STATUS_MAX_TOTAL) {
        rc = send_json_chunks(c, req->hdr.seq, text, len, why);
        json_object_put(json);
        return rc;
    }
    if (text != NULL) {
        vdx_log(VDX_LOG_WARN, "unix: status JSON of %zu bytes exceeds the %u byte limit",
                len, VDX_WIRE_STATUS_MAX_TOTAL);
    }
    json_object_put(json);
    n = vdx_wire_enc_json_rep(c->srv->scratch, VDX_WIRE_MAX_FRAME, req->hdr.seq, st, 0,
                              NULL, 0);
    return conn_send(c, c->srv->scratch, (size_t)n, -1, why);
}

static int conn_dispatch(struct vus_conn *c, const struct vdx_wire_req *req,
                         const char **why)
{
    switch (req->hdr.op) {
    case VDX_OP_LIST:
        return op_list(c, req, why);
    case VDX_OP_OPEN:
        return op_open(c, req, why);
    case VDX_OP_CALL:
        return op_call(c, req, why);
    case VDX_OP_REGISTER_DMA:
        return op_register_dma(c, req, why);
    case VDX_OP_COPY_MEMORY:
        return op_copy_memory(c, req, why);
    case VDX_OP_NOTIFY_ATTACH:
        return op_notify_attach(c, req, why);
    case VDX_OP_STATUS:
        return op_status(c, req, why);
    default:
        *why = "unknown op"; /* vdx_wire_req_decode() let it through: a bug */
        return -EPROTO;
    }
}

/* Serve the frame in c->buf once it is complete. */
static int conn_process(struct vus_conn *c, const char **why)
{
    struct vdx_wire_hdr hdr;
    struct vdx_wire_req req;
    size_t frame;
    int rc = vdx_wire_hdr_decode(c->buf, c->fill, &hdr);

    if (rc == -ENODATA) {
        return 0;
    }
    if (rc < 0 || hdr.len > vdx_wire_req_max_payload(hdr.op)) {
        *why = "bad request header";
        return rc < 0 ? rc : -EMSGSIZE;
    }
    frame = VDX_WIRE_HDR_SIZE + hdr.len;
    if (c->fill < frame) {
        return 0;
    }
    if (c->fill > frame) {
        *why = "bytes beyond its request (one request at a time)";
        return -EPROTO;
    }
    rc = vdx_wire_req_decode(c->buf, frame, c->rx_fd >= 0 ? 1u : 0u, &req);
    if (rc < 0) {
        *why = "malformed request";
        return rc;
    }
    c->fill = 0;
    rc = conn_dispatch(c, &req, why);
    vdx_close_fd(&c->rx_fd);
    return rc;
}

/*
 * Take the descriptors of one recvmsg(): at most one per frame. Closes every
 * descriptor it does not keep. Returns 0 or -errno with *why.
 */
static int conn_take_fds(struct vus_conn *c, struct msghdr *msg, const char **why)
{
    unsigned total = 0;
    int keep = -1;

    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
        size_t n;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++, total++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (keep < 0) {
                keep = fd;
            } else {
                close(fd);
            }
        }
    }
    if ((msg->msg_flags & MSG_CTRUNC) || total > 1 || (total == 1 && c->rx_fd >= 0)) {
        vdx_close_fd(&keep);
        *why = "more than one descriptor with a request";
        return -EBADF;
    }
    if (keep >= 0) {
        c->rx_fd = keep;
    }
    return 0;
}

/* One recvmsg() into the connection buffer, then serve a complete frame. */
static int conn_receive(struct vus_conn *c, uint32_t events, const char **why)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * VUS_RX_FDS)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {c->buf + c->fill, sizeof(c->buf) - c->fill};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cbuf.b,
                         .msg_controllen = sizeof(cbuf.b)};
    ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    int rc;

    if (n < 0) {
        if (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) &&
                               !(events & (EPOLLHUP | EPOLLERR)))) {
            return 0;
        }
        *why = "receive failed";
        return errno == EAGAIN || errno == EWOULDBLOCK ? -ECONNRESET : -errno;
    }
    rc = conn_take_fds(c, &msg, why);
    if (rc < 0) {
        return rc;
    }
    if (n == 0) {
        *why = c->fill > 0 || c->rx_fd >= 0 ? "closed in the middle of a request" : NULL;
        return -ECONNRESET;
    }
    c->fill += (uint32_t)n;
    return conn_process(c, why);
}

static void conn_event(struct vus_conn *c, uint32_t events)
{
    const char *why = NULL;
    int rc = conn_receive(c, events, &why);

    if (rc < 0) {
        conn_drop(c, rc, why);
    }
}

/* ---- Server: setup -------------------------------------------------------- */

static int runtime_dir_check(const char *dir)
{
    struct stat st;

    if (lstat(dir, &st) < 0) {
        vdx_log(VDX_LOG_ERR, "unix: runtime dir %s: %s", dir, strerror(errno));
        return -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        vdx_log(VDX_LOG_ERR,
                "unix: runtime dir %s is not a directory (or is a symlink); "
                "refusing to use it",
                dir);
        return -ENOTDIR;
    }
    if (st.st_uid != geteuid()) {
        vdx_log(VDX_LOG_ERR,
                "unix: runtime dir %s belongs to uid %u, not to us (uid %u); "
                "refusing to use it",
                dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        vdx_log(VDX_LOG_ERR,
                "unix: runtime dir %s has mode %04o: group/others may enter it; "
                "refusing to use it (chmod 0700 it)",
                dir, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* Create the runtime dir 0700, or check an existing one. */
static int runtime_dir_prepare(const char *dir)
{
    if (mkdir(dir, 0700) == 0) {
        if (chmod(dir, 0700) < 0) { /* whatever the umask took away */
            vdx_log(VDX_LOG_ERR, "unix: chmod %s: %s", dir, strerror(errno));
            return -errno;
        }
        return 0;
    }
    if (errno != EEXIST) {
        vdx_log(VDX_LOG_ERR, "unix: cannot create runtime dir %s: %s", dir,
                strerror(errno));
        return -errno;
    }
    return runtime_dir_check(dir);
}

/*
 * The socket appears at its path only once it is 0600 and listening (bound
 * under a temporary name, then renamed): a client that sees the file can
 * connect.
 */
static int listener_open(struct vdx_unix_server *srv)
{
    char tmp[sizeof(srv->path) + 16]; /* fits sun_path: checked in server_init() */
    int fd, rc;

    rc = vdx_socket_path_free(srv->path, "unix");
    if (rc < 0) {
        return rc;
    }
    snprintf(tmp, sizeof(tmp), "%s.%u", srv->path, (unsigned)getpid());
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -errno;
    }
    rc = vdx_listener_bind(fd, tmp, 0600, VUS_BACKLOG);
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
    vdx_log(VDX_LOG_ERR, "unix: cannot listen on %s: %s", srv->path, strerror(-rc));
    close(fd);
    return rc;
}

static int epoll_open(struct vdx_unix_server *srv)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

    srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epoll_fd < 0) {
        return -errno;
    }
    if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->listen_fd, &ev) < 0) {
        int rc = -errno;

        vdx_close_fd(&srv->epoll_fd);
        return rc;
    }
    return 0;
}

static int server_init(struct vdx_unix_server *srv, struct dext *d,
                       const struct vdx_unix_server_opts *opts)
{
    int n = snprintf(srv->path, sizeof(srv->path), "%s/%s", opts->runtime_dir,
                     VDX_UNIX_SOCKET_NAME);

    /* Room for the temporary name too: ".PID" (listener_open). */
    if (n < 0 || (size_t)n + 1 + 10 >= sizeof(srv->path)) {
        vdx_log(VDX_LOG_ERR, "unix: runtime dir %s: path too long for a socket",
                opts->runtime_dir);
        return -ENAMETOOLONG;
    }
    if (opts->n_allowed_uids > VDX_UNIX_MAX_ALLOWED_UIDS) {
        return -EINVAL;
    }
    srv->d = d;
    srv->listen_fd = -1;
    srv->epoll_fd = -1;
    srv->uid = geteuid();
    srv->allow_any_uid = opts->allow_any_uid;
    srv->n_allowed_uids = opts->n_allowed_uids;
    memcpy(srv->allowed_uids, opts->allowed_uids, sizeof(srv->allowed_uids));
    srv->max_clients = opts->max_clients != 0 ? opts->max_clients : VUS_DEFAULT_MAX_CLIENTS;
    return 0;
}

int vdx_unix_server_create(struct dext *d, const struct vdx_unix_server_opts *opts,
                           struct vdx_unix_server **out)
{
    struct vdx_unix_server *srv;
    int rc;

    if (d == NULL || opts == NULL || opts->runtime_dir == NULL || out == NULL) {
        return -EINVAL;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return -ENOMEM;
    }
    rc = server_init(srv, d, opts);
    if (rc < 0) {
        goto out_free;
    }
    srv->scratch = malloc(VDX_WIRE_MAX_FRAME);
    if (srv->scratch == NULL) {
        rc = -ENOMEM;
        goto out_free;
    }
    rc = runtime_dir_prepare(opts->runtime_dir);
    if (rc < 0) {
        goto out_scratch;
    }
    rc = listener_open(srv);
    if (rc < 0) {
        goto out_scratch;
    }
    rc = epoll_open(srv);
    if (rc < 0) {
        goto out_listener;
    }
    vdx_log(VDX_LOG_INFO, "unix: serving %u device(s) on %s", dext_device_count(d),
            srv->path);
    *out = srv;
    return 0;

out_listener:
    vdx_close_fd(&srv->listen_fd);
    unlink(srv->path);
out_scratch:
    free(srv->scratch);
out_free:
    free(srv);
    return rc;
}

/* ---- Server: running ------------------------------------------------------ */

int vdx_unix_server_fd(const struct vdx_unix_server *srv)
{
    return srv->epoll_fd;
}

unsigned vdx_unix_server_clients(const struct vdx_unix_server *srv)
{
    return srv->nclients;
}

int vdx_unix_server_step(struct vdx_unix_server *srv, int timeout_ms)
{
    struct epoll_event ev[VUS_EVENTS];
    int n = epoll_wait(srv->epoll_fd, ev, VUS_EVENTS, timeout_ms);

    if (n < 0) {
        return -errno;
    }
    /* Each fd appears once per epoll_wait(): a connection freed while
     * handling its own event is never seen again in this array. */
    for (int i = 0; i < n; i++) {
        if (ev[i].data.ptr == NULL) {
            srv_accept(srv);
        } else {
            conn_event(ev[i].data.ptr, ev[i].events);
        }
    }
    return n;
}

/* Unlink the socket only if it is still the one we bound. */
static void socket_unlink_ours(const struct vdx_unix_server *srv)
{
    struct stat st;

    if (lstat(srv->path, &st) == 0 && st.st_dev == srv->sock_dev &&
        st.st_ino == srv->sock_ino) {
        unlink(srv->path);
    }
}

void vdx_unix_server_destroy(struct vdx_unix_server *srv)
{
    if (srv == NULL) {
        return;
    }
    while (srv->conns != NULL) {
        conn_free(srv->conns);
    }
    vdx_close_fd(&srv->epoll_fd);
    vdx_close_fd(&srv->listen_fd);
    socket_unlink_ours(srv);
    free(srv->scratch);
    free(srv);
}
