/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The unix transport, client side (client/transport.h): reaches a
 * `vfio-dext dext` daemon over RUNTIME_DIR/dext.sock with the wire format of
 * wire.h. LIST and STATUS use a short connection each; a user client is one
 * connection opened with OPEN.
 *
 * Failure states of a channel: a daemon that is gone (connect refused, EOF,
 * EPIPE, ECONNRESET) gives DEXT_E_NOT_ATTACHED; a malformed reply gives
 * DEXT_E_IO_ERROR (the stream can no longer be trusted). Either way the
 * socket is closed and every later op on the handle returns the same status.
 *
 * The CALL path allocates nothing and costs one sendmsg() and (normally) one
 * recvmsg(). Every descriptor is O_CLOEXEC.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/transport.h"
#include "transport/unix_server.h"
#include "transport/sockutil.h"
#include "transport/wire.h"

#define VUC_RX_FDS 4 /* cmsg room: enough to see (and close) extras */

struct unix_ep {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* One connection to the daemon with its receive buffer. */
struct uchan {
    int fd;
    uint32_t seq;     /* of the last request */
    dext_status dead; /* DEXT_OK while usable */
    uint8_t *rx;
    size_t cap;
    size_t fill;     /* bytes in rx */
    size_t consumed; /* bytes of rx taken by the last reply */
};

/* A user-client handle: the channel and room for its largest reply. */
struct unix_uc {
    struct uchan ch;
    uint8_t buf[VDX_WIRE_MAX_UC_REP_FRAME];
};

/* ---- Channel -------------------------------------------------------------- */

/* Mark the channel unusable: close the socket, remember why. */
static dext_status chan_fail(struct uchan *ch, dext_status st)
{
    vdx_close_fd(&ch->fd);
    ch->dead = st;
    return st;
}

static dext_status errno_status(int err)
{
    switch (err) {
    case ENOENT:
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
        return DEXT_E_NOT_ATTACHED;
    default:
        return DEXT_E_IO_ERROR;
    }
}

static dext_status chan_connect(const struct unix_ep *ep, struct uchan *ch, uint8_t *rx,
                                size_t cap)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int rc;

    *ch = (struct uchan){.fd = -1, .rx = rx, .cap = cap};
    memcpy(addr.sun_path, ep->path, sizeof(addr.sun_path));
    ch->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ch->fd < 0) {
        return chan_fail(ch, DEXT_E_IO_ERROR);
    }
    do {
        rc = connect(ch->fd, (const struct sockaddr *)&addr, sizeof(addr));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EISCONN) {
        return chan_fail(ch, errno_status(errno));
    }
    return DEXT_OK;
}

/* Send one whole frame; fd (when >= 0) travels with its first byte. */
static dext_status chan_send(struct uchan *ch, const void *buf, size_t len, int fd)
{
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    if (fd >= 0) {
        vdx_cmsg_put_fd(&msg, cbuf.b, sizeof(cbuf.b), fd);
    }
    while (iov.iov_len > 0) {
        ssize_t n = sendmsg(ch->fd, &msg, MSG_NOSIGNAL);

        if (n < 0 && errno != EINTR) {
            return chan_fail(ch, errno_status(errno));
        }
        if (n > 0) {
            iov.iov_base = (char *)iov.iov_base + n;
            iov.iov_len -= (size_t)n;
            msg.msg_control = NULL;
            msg.msg_controllen = 0;
        }
    }
    return DEXT_OK;
}

/* Collect the descriptors of one recvmsg(); at most one per reply. */
static dext_status chan_take_fds(struct msghdr *msg, int *fd)
{
    bool bad = (msg->msg_flags & MSG_CTRUNC) != 0;

    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
        size_t n;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int got;

            memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (*fd < 0) {
                *fd = got;
            } else {
                close(got);
                bad = true;
            }
        }
    }
    return bad ? DEXT_E_IO_ERROR : DEXT_OK;
}

/* One recvmsg() appending to rx. */
static dext_status chan_read(struct uchan *ch, int *fd)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * VUC_RX_FDS)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {ch->rx + ch->fill, ch->cap - ch->fill};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cbuf.b,
                         .msg_controllen = sizeof(cbuf.b)};
    ssize_t n;

    do {
        n = recvmsg(ch->fd, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno_status(errno);
    }
    if (chan_take_fds(&msg, fd) != DEXT_OK) {
        return DEXT_E_IO_ERROR;
    }
    if (n == 0) {
        return DEXT_E_NOT_ATTACHED;
    }
    ch->fill += (size_t)n;
    return DEXT_OK;
}

/*
 * Until rx holds one whole frame: returns its length in *frame, or a status.
 * Bytes of a previous reply are dropped first.
 */
static dext_status chan_fill_frame(struct uchan *ch, int *fd, size_t *frame)
{
    struct vdx_wire_hdr hdr;

    memmove(ch->rx, ch->rx + ch->consumed, ch->fill - ch->consumed);
    ch->fill -= ch->consumed;
    ch->consumed = 0;
    for (;;) {
        int rc = vdx_wire_hdr_decode(ch->rx, ch->fill, &hdr);
        dext_status st;

        if (rc < 0 && rc != -ENODATA) {
            return DEXT_E_IO_ERROR;
        }
        if (rc == 0 && VDX_WIRE_HDR_SIZE + (size_t)hdr.len > ch->cap) {
            return DEXT_E_IO_ERROR;
        }
        if (rc == 0 && ch->fill >= VDX_WIRE_HDR_SIZE + (size_t)hdr.len) {
            *frame = VDX_WIRE_HDR_SIZE + hdr.len;
            return DEXT_OK;
        }
        st = chan_read(ch, fd);
        if (st != DEXT_OK) {
            return st;
        }
    }
}

/*
 * Receive the reply to request `op` / ch->seq into *rep (pointers into rx).
 * *fd gets a descriptor that came with it, or -1. On failure the channel is
 * dead and no descriptor is left open.
 */
static dext_status chan_recv(struct uchan *ch, uint16_t op, struct vdx_wire_rep *rep,
                             int *fd)
{
    size_t frame = 0;
    dext_status st;

    *fd = -1;
    st = chan_fill_frame(ch, fd, &frame);
    if (st == DEXT_OK && (vdx_wire_rep_decode(ch->rx, frame, *fd >= 0 ? 1u : 0u, rep) < 0 ||
                          rep->hdr.op != op || rep->hdr.seq != ch->seq)) {
        st = DEXT_E_IO_ERROR;
    }
    if (st != DEXT_OK) {
        vdx_close_fd(fd);
        return chan_fail(ch, st);
    }
    ch->consumed = frame;
    return DEXT_OK;
}

/* Send a request and receive its reply; a user-client channel takes exactly
 * one reply frame per request, nothing more. */
static dext_status chan_rpc(struct uchan *ch, uint16_t op, const void *req, size_t len,
                            int send_fd, struct vdx_wire_rep *rep, int *recv_fd)
{
    dext_status st;

    *recv_fd = -1;
    if (ch->dead != DEXT_OK) {
        return ch->dead;
    }
    st = chan_send(ch, req, len, send_fd);
    if (st != DEXT_OK) {
        return st;
    }
    st = chan_recv(ch, op, rep, recv_fd);
    if (st == DEXT_OK && ch->fill != ch->consumed) {
        vdx_close_fd(recv_fd);
        return chan_fail(ch, DEXT_E_IO_ERROR);
    }
    return st;
}

static uint32_t chan_next_seq(struct uchan *ch)
{
    return ++ch->seq;
}

/* ---- Endpoint level: short connections ------------------------------------ */

/* A short connection with a whole-frame receive buffer. */
static dext_status short_open(const struct unix_ep *ep, struct uchan *ch)
{
    uint8_t *rx = malloc(VDX_WIRE_MAX_FRAME);
    dext_status st;

    if (rx == NULL) {
        return DEXT_E_NO_SPACE;
    }
    st = chan_connect(ep, ch, rx, VDX_WIRE_MAX_FRAME);
    if (st != DEXT_OK) {
        free(rx);
    }
    return st;
}

static void short_close(struct uchan *ch)
{
    vdx_close_fd(&ch->fd);
    free(ch->rx);
}

static dext_status list_copy(const struct vdx_wire_rep *rep, struct vdx_device_desc **devs,
                             size_t *n)
{
    uint32_t count = rep->u.list.count;
    struct vdx_device_desc *v = calloc(count > 0 ? count : 1, sizeof(*v));

    if (v == NULL) {
        return DEXT_E_NO_SPACE;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct vdx_wire_dev_info e;

        vdx_wire_list_entry(rep, i, &e);
        v[i] = (struct vdx_device_desc){e.domain, e.bus,    e.slot,       e.fn,
                                        e.vendor, e.device, e.class_code, e.claimed};
    }
    *devs = v;
    *n = count;
    return DEXT_OK;
}

static dext_status unix_list(void *priv, struct vdx_device_desc **devs, size_t *n)
{
    uint8_t req[VDX_WIRE_HDR_SIZE];
    struct vdx_wire_rep rep;
    struct uchan ch;
    dext_status st;
    int fd;

    if (devs == NULL || n == NULL) {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = short_open(priv, &ch);
    if (st != DEXT_OK) {
        return st;
    }
    vdx_wire_enc_empty_req(req, sizeof(req), VDX_OP_LIST, chan_next_seq(&ch));
    st = chan_rpc(&ch, VDX_OP_LIST, req, sizeof(req), -1, &rep, &fd);
    if (st == DEXT_OK) {
        st = rep.status != DEXT_OK ? rep.status : list_copy(&rep, devs, n);
    }
    short_close(&ch);
    return st;
}

/* Append one STATUS chunk to the growing text. */
static dext_status json_append(char **text, size_t *len, const struct vdx_wire_rep *rep)
{
    char *grown;

    if (*len + rep->u.json.len > VDX_WIRE_STATUS_MAX_TOTAL) {
        return DEXT_E_IO_ERROR;
    }
    grown = realloc(*text, *len + rep->u.json.len + 1);
    if (grown == NULL) {
        return DEXT_E_NO_SPACE;
    }
    memcpy(grown + *len, rep->u.json.text, rep->u.json.len);
    *len += rep->u.json.len;
    grown[*len] = '\0';
    *text = grown;
    return DEXT_OK;
}

/* Receive STATUS chunks until the last one. */
static dext_status status_collect(struct uchan *ch, char **json)
{
    struct vdx_wire_rep rep = {0};
    char *text = NULL;
    size_t len = 0;
    dext_status st;
    int fd;

    do {
        st = chan_recv(ch, VDX_OP_STATUS, &rep, &fd);
        if (st == DEXT_OK) {
            st = rep.status != DEXT_OK ? rep.status : json_append(&text, &len, &rep);
        }
    } while (st == DEXT_OK && (rep.hdr.flags & VDX_WIRE_F_MORE));
    if (st == DEXT_OK && text == NULL) {
        st = json_append(&text, &len, &rep); /* empty text: still a string */
    }
    if (st != DEXT_OK) {
        free(text);
        return st;
    }
    *json = text;
    return DEXT_OK;
}

static dext_status unix_status(void *priv, char **json)
{
    uint8_t req[VDX_WIRE_HDR_SIZE];
    struct uchan ch;
    dext_status st;

    if (json == NULL) {
        return DEXT_E_BAD_ARGUMENT;
    }
    st = short_open(priv, &ch);
    if (st != DEXT_OK) {
        return st;
    }
    vdx_wire_enc_empty_req(req, sizeof(req), VDX_OP_STATUS, chan_next_seq(&ch));
    st = chan_send(&ch, req, sizeof(req), -1);
    if (st == DEXT_OK) {
        st = status_collect(&ch, json);
    }
    short_close(&ch);
    return st;
}

static dext_status unix_open(void *priv, unsigned index, void **out)
{
    uint8_t req[VDX_WIRE_HDR_SIZE + VDX_WIRE_OPEN_REQ_SIZE];
    struct unix_uc *u;
    struct vdx_wire_rep rep;
    dext_status st;
    int fd;

    if (out == NULL) {
        return DEXT_E_BAD_ARGUMENT;
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return DEXT_E_NO_SPACE;
    }
    st = chan_connect(priv, &u->ch, u->buf, sizeof(u->buf));
    if (st != DEXT_OK) {
        goto out_free;
    }
    vdx_wire_enc_open_req(req, sizeof(req), chan_next_seq(&u->ch), index);
    st = chan_rpc(&u->ch, VDX_OP_OPEN, req, sizeof(req), -1, &rep, &fd);
    if (st == DEXT_OK) {
        st = rep.status;
    }
    if (st != DEXT_OK) {
        goto out_close;
    }
    *out = u;
    return DEXT_OK;

out_close:
    vdx_close_fd(&u->ch.fd);
out_free:
    free(u);
    return st;
}

/* ---- User-client level ---------------------------------------------------- */

static dext_status unix_call(void *handle, uint32_t sel, const uint64_t *in, uint32_t nin,
                             uint64_t *out, uint32_t *nout)
{
    uint8_t req[VDX_WIRE_MAX_REQ_FRAME];
    struct unix_uc *u = handle;
    uint32_t room = nout != NULL ? *nout : 0;
    struct vdx_wire_rep rep;
    dext_status st;
    int n, fd;

    if (nin > DEXT_MAX_SCALARS || (nin > 0 && in == NULL) || (room > 0 && out == NULL)) {
        return DEXT_E_BAD_ARGUMENT;
    }
    room = room > DEXT_MAX_SCALARS ? DEXT_MAX_SCALARS : room;
    n = vdx_wire_enc_call_req(req, sizeof(req), chan_next_seq(&u->ch), sel, in, nin, room);
    st = chan_rpc(&u->ch, VDX_OP_CALL, req, (size_t)n, -1, &rep, &fd);
    if (st != DEXT_OK) {
        if (nout != NULL) {
            *nout = 0;
        }
        return st;
    }
    if (rep.u.call.nout > room) {
        return chan_fail(&u->ch, DEXT_E_IO_ERROR);
    }
    if (rep.u.call.nout > 0) {
        memcpy(out, rep.u.call.out, rep.u.call.nout * sizeof(uint64_t));
    }
    if (nout != NULL) {
        *nout = rep.u.call.nout;
    }
    return rep.status;
}

static dext_status unix_register_dma(void *handle, uint64_t key,
                                     const struct dext_dma_src *src, uint64_t size,
                                     uint64_t *bus, uint64_t *bus_len)
{
    uint8_t req[VDX_WIRE_HDR_SIZE + VDX_WIRE_DMA_REQ_SIZE];
    struct unix_uc *u = handle;
    struct vdx_wire_rep rep;
    dext_status st;
    int fd;

    if (src == NULL) {
        return DEXT_E_BAD_ARGUMENT;
    }
    if (src->fd < 0) {
        return DEXT_E_UNSUPPORTED; /* a pointer means nothing to the daemon */
    }
    vdx_wire_enc_dma_req(req, sizeof(req), chan_next_seq(&u->ch), key, src->fd_offset,
                         size);
    st = chan_rpc(&u->ch, VDX_OP_REGISTER_DMA, req, sizeof(req), src->fd, &rep, &fd);
    if (st != DEXT_OK) {
        return st;
    }
    if (bus != NULL) {
        *bus = rep.u.dma.bus;
    }
    if (bus_len != NULL) {
        *bus_len = rep.u.dma.bus_len;
    }
    return rep.status;
}

static dext_status unix_copy_memory(void *handle, uint32_t type, struct dext_mem *mem)
{
    uint8_t req[VDX_WIRE_HDR_SIZE + VDX_WIRE_MEM_REQ_SIZE];
    struct unix_uc *u = handle;
    struct vdx_wire_rep rep;
    dext_status st;
    int fd;

    if (mem == NULL) {
        return DEXT_E_BAD_ARGUMENT;
    }
    *mem = (struct dext_mem){.ptr = NULL, .fd = -1};
    vdx_wire_enc_mem_req(req, sizeof(req), chan_next_seq(&u->ch), type);
    st = chan_rpc(&u->ch, VDX_OP_COPY_MEMORY, req, sizeof(req), -1, &rep, &fd);
    if (st != DEXT_OK) {
        return st;
    }
    if (rep.status != DEXT_OK) {
        return rep.status; /* the decoder checked that no fd came with it */
    }
    if (rep.u.mem.size > SIZE_MAX) {
        vdx_close_fd(&fd);
        return chan_fail(&u->ch, DEXT_E_IO_ERROR);
    }
    *mem = (struct dext_mem){.ptr = NULL,
                             .fd = fd,
                             .fd_offset = rep.u.mem.fd_offset,
                             .size = rep.u.mem.size,
                             .wc = (rep.u.mem.flags & VDX_WIRE_MEM_F_WC) != 0};
    return DEXT_OK;
}

static dext_status unix_notify_attach(void *handle, int event_fd)
{
    uint8_t req[VDX_WIRE_HDR_SIZE];
    struct unix_uc *u = handle;
    struct vdx_wire_rep rep;
    dext_status st;
    int fd;

    vdx_wire_enc_empty_req(req, sizeof(req), VDX_OP_NOTIFY_ATTACH, chan_next_seq(&u->ch));
    st = chan_rpc(&u->ch, VDX_OP_NOTIFY_ATTACH, req, sizeof(req),
                  event_fd >= 0 ? event_fd : -1, &rep, &fd);
    return st != DEXT_OK ? st : rep.status;
}

static void unix_close(void *handle)
{
    struct unix_uc *u = handle;

    if (u == NULL) {
        return;
    }
    vdx_close_fd(&u->ch.fd);
    free(u);
}

static void unix_ep_free(void *priv)
{
    free(priv);
}

dext_status vdx_unix_endpoint_new(const char *dir, void **priv)
{
    struct unix_ep *ep;
    int n;

    if (dir == NULL || priv == NULL || dir[0] == '\0') {
        return DEXT_E_BAD_ARGUMENT;
    }
    ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        return DEXT_E_NO_SPACE;
    }
    n = snprintf(ep->path, sizeof(ep->path), "%s/%s", dir, VDX_UNIX_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof(ep->path)) {
        free(ep);
        return DEXT_E_BAD_ARGUMENT;
    }
    *priv = ep;
    return DEXT_OK;
}

const struct vdx_transport_ops vdx_transport_unix = {
    .name = "unix",
    .list = unix_list,
    .status = unix_status,
    .open = unix_open,
    .call = unix_call,
    .register_dma = unix_register_dma,
    .copy_memory = unix_copy_memory,
    .notify_attach = unix_notify_attach,
    .close = unix_close,
    .ep_free = unix_ep_free,
};
