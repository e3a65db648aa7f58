/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The unix transport wire format (wire.h): pure encoders and decoders. No
 * allocation, no I/O, no global state: fuzz targets call these directly.
 */
#include "transport/wire.h"
#include "common/le.h"

#include <errno.h>
#include <string.h>

#define OFF(type, field) __builtin_offsetof(struct type, field)

/* ---- Header ---------------------------------------------------------------- */

int vdx_wire_hdr_decode(const void *buf, size_t len, struct vdx_wire_hdr *hdr)
{
    const uint8_t *p = buf;

    if (len < VDX_WIRE_HDR_SIZE) {
        return -ENODATA;
    }
    hdr->magic = get_le32(p + OFF(vdx_wire_hdr, magic));
    hdr->op = get_le16(p + OFF(vdx_wire_hdr, op));
    hdr->flags = get_le16(p + OFF(vdx_wire_hdr, flags));
    hdr->len = get_le32(p + OFF(vdx_wire_hdr, len));
    hdr->seq = get_le32(p + OFF(vdx_wire_hdr, seq));
    if (hdr->magic != VDX_WIRE_MAGIC) {
        return -EPROTO;
    }
    if (hdr->op < VDX_WIRE_OP_FIRST || hdr->op > VDX_WIRE_OP_LAST) {
        return -EPROTO;
    }
    if (hdr->flags & ~VDX_WIRE_F_KNOWN) {
        return -EPROTO;
    }
    if (hdr->len > VDX_WIRE_MAX_PAYLOAD) {
        return -EMSGSIZE;
    }
    return 0;
}

/* Write a header; the caller has checked that cap holds the whole frame. */
static void hdr_put(uint8_t *p, uint16_t op, uint16_t flags, uint32_t len, uint32_t seq)
{
    put_le32(p + OFF(vdx_wire_hdr, magic), VDX_WIRE_MAGIC);
    put_le16(p + OFF(vdx_wire_hdr, op), op);
    put_le16(p + OFF(vdx_wire_hdr, flags), flags);
    put_le32(p + OFF(vdx_wire_hdr, len), len);
    put_le32(p + OFF(vdx_wire_hdr, seq), seq);
}

/*
 * Decode the header of a buffer that must hold exactly one frame. On success
 * *payload points at the payload (hdr->len bytes).
 */
static int frame_decode(const void *buf, size_t len, struct vdx_wire_hdr *hdr,
                        const uint8_t **payload)
{
    int rc = vdx_wire_hdr_decode(buf, len, hdr);

    if (rc < 0) {
        return rc;
    }
    if (len - VDX_WIRE_HDR_SIZE != hdr->len) {
        return -EBADMSG;
    }
    *payload = (const uint8_t *)buf + VDX_WIRE_HDR_SIZE;
    return 0;
}

/* ---- Requests: decode ------------------------------------------------------ */

uint32_t vdx_wire_req_max_payload(uint16_t op)
{
    switch (op) {
    case VDX_OP_OPEN:
        return VDX_WIRE_OPEN_REQ_SIZE;
    case VDX_OP_CALL:
        return VDX_WIRE_CALL_REQ_SIZE + 8u * DEXT_MAX_SCALARS;
    case VDX_OP_REGISTER_DMA:
        return VDX_WIRE_DMA_REQ_SIZE;
    case VDX_OP_COPY_MEMORY:
        return VDX_WIRE_MEM_REQ_SIZE;
    default:
        return 0;
    }
}

/* Descriptors a request of `op` may carry: [min, max]. */
static void req_fds(uint16_t op, unsigned *min, unsigned *max)
{
    *min = op == VDX_OP_REGISTER_DMA ? 1u : 0u;
    *max = op == VDX_OP_REGISTER_DMA || op == VDX_OP_NOTIFY_ATTACH ? 1u : 0u;
}

static int req_call_decode(const uint8_t *p, uint32_t len, struct vdx_wire_req *req)
{
    if (len < VDX_WIRE_CALL_REQ_SIZE) {
        return -EBADMSG;
    }
    req->u.call.sel = get_le32(p + OFF(vdx_wire_call_req, sel));
    req->u.call.nin = get_le32(p + OFF(vdx_wire_call_req, nin));
    req->u.call.nout = get_le32(p + OFF(vdx_wire_call_req, nout));
    if (req->u.call.nin > DEXT_MAX_SCALARS || req->u.call.nout > DEXT_MAX_SCALARS) {
        return -E2BIG;
    }
    if (get_le32(p + OFF(vdx_wire_call_req, reserved)) != 0 ||
        len != VDX_WIRE_CALL_REQ_SIZE + 8u * req->u.call.nin) {
        return -EBADMSG;
    }
    for (uint32_t i = 0; i < req->u.call.nin; i++) {
        req->u.call.in[i] = get_le64(p + VDX_WIRE_CALL_REQ_SIZE + 8u * i);
    }
    return 0;
}

static int req_open_decode(const uint8_t *p, uint32_t len, struct vdx_wire_req *req)
{
    if (len != VDX_WIRE_OPEN_REQ_SIZE ||
        get_le32(p + OFF(vdx_wire_open_req, reserved)) != 0) {
        return -EBADMSG;
    }
    req->u.open.index = get_le32(p + OFF(vdx_wire_open_req, index));
    return 0;
}

static int req_dma_decode(const uint8_t *p, uint32_t len, struct vdx_wire_req *req)
{
    if (len != VDX_WIRE_DMA_REQ_SIZE) {
        return -EBADMSG;
    }
    req->u.dma.key = get_le64(p + OFF(vdx_wire_dma_req, key));
    req->u.dma.fd_offset = get_le64(p + OFF(vdx_wire_dma_req, fd_offset));
    req->u.dma.size = get_le64(p + OFF(vdx_wire_dma_req, size));
    return 0;
}

static int req_mem_decode(const uint8_t *p, uint32_t len, struct vdx_wire_req *req)
{
    if (len != VDX_WIRE_MEM_REQ_SIZE ||
        get_le32(p + OFF(vdx_wire_mem_req, reserved)) != 0) {
        return -EBADMSG;
    }
    req->u.mem.type = get_le32(p + OFF(vdx_wire_mem_req, type));
    return 0;
}

static int req_payload_decode(const uint8_t *p, uint32_t len, struct vdx_wire_req *req)
{
    switch (req->hdr.op) {
    case VDX_OP_OPEN:
        return req_open_decode(p, len, req);
    case VDX_OP_CALL:
        return req_call_decode(p, len, req);
    case VDX_OP_REGISTER_DMA:
        return req_dma_decode(p, len, req);
    case VDX_OP_COPY_MEMORY:
        return req_mem_decode(p, len, req);
    default: /* LIST, NOTIFY_ATTACH, STATUS */
        return len == 0 ? 0 : -EBADMSG;
    }
}

int vdx_wire_req_decode(const void *buf, size_t len, unsigned nfds,
                        struct vdx_wire_req *req)
{
    const uint8_t *payload;
    unsigned min_fds, max_fds;
    int rc;

    memset(req, 0, sizeof(*req));
    rc = frame_decode(buf, len, &req->hdr, &payload);
    if (rc < 0) {
        return rc;
    }
    if (req->hdr.flags != 0) {
        return -EPROTO;
    }
    if (req->hdr.len > vdx_wire_req_max_payload(req->hdr.op)) {
        return -EMSGSIZE;
    }
    rc = req_payload_decode(payload, req->hdr.len, req);
    if (rc < 0) {
        return rc;
    }
    req_fds(req->hdr.op, &min_fds, &max_fds);
    if (nfds < min_fds || nfds > max_fds) {
        return -EBADF;
    }
    req->nfds = nfds;
    return 0;
}

/* ---- Replies: decode ------------------------------------------------------- */

static int rep_status_decode(const uint8_t *p, uint32_t len, struct vdx_wire_rep *rep)
{
    if (len != VDX_WIRE_STATUS_REP_SIZE ||
        get_le32(p + OFF(vdx_wire_status_rep, reserved)) != 0) {
        return -EBADMSG;
    }
    rep->status = get_le32(p + OFF(vdx_wire_status_rep, status));
    return 0;
}

static int rep_call_decode(const uint8_t *p, uint32_t len, struct vdx_wire_rep *rep)
{
    if (len < VDX_WIRE_CALL_REP_SIZE) {
        return -EBADMSG;
    }
    rep->status = get_le32(p + OFF(vdx_wire_call_rep, status));
    rep->u.call.nout = get_le32(p + OFF(vdx_wire_call_rep, nout));
    if (rep->u.call.nout > DEXT_MAX_SCALARS) {
        return -E2BIG;
    }
    if (len != VDX_WIRE_CALL_REP_SIZE + 8u * rep->u.call.nout) {
        return -EBADMSG;
    }
    for (uint32_t i = 0; i < rep->u.call.nout; i++) {
        rep->u.call.out[i] = get_le64(p + VDX_WIRE_CALL_REP_SIZE + 8u * i);
    }
    return 0;
}

static int rep_dma_decode(const uint8_t *p, uint32_t len, struct vdx_wire_rep *rep)
{
    if (len != VDX_WIRE_DMA_REP_SIZE ||
        get_le32(p + OFF(vdx_wire_dma_rep, reserved)) != 0) {
        return -EBADMSG;
    }
    rep->status = get_le32(p + OFF(vdx_wire_dma_rep, status));
    rep->u.dma.bus = get_le64(p + OFF(vdx_wire_dma_rep, bus));
    rep->u.dma.bus_len = get_le64(p + OFF(vdx_wire_dma_rep, bus_len));
    return 0;
}

static int rep_mem_decode(const uint8_t *p, uint32_t len, struct vdx_wire_rep *rep)
{
    if (len != VDX_WIRE_MEM_REP_SIZE) {
        return -EBADMSG;
    }
    rep->status = get_le32(p + OFF(vdx_wire_mem_rep, status));
    rep->u.mem.flags = get_le32(p + OFF(vdx_wire_mem_rep, flags));
    rep->u.mem.fd_offset = get_le64(p + OFF(vdx_wire_mem_rep, fd_offset));
    rep->u.mem.size = get_le64(p + OFF(vdx_wire_mem_rep, size));
    if (rep->u.mem.flags & ~VDX_WIRE_MEM_F_KNOWN) {
        return -EBADMSG;
    }
    if (rep->status == DEXT_OK &&
        (rep->u.mem.size == 0 ||
         rep->u.mem.fd_offset + rep->u.mem.size < rep->u.mem.size)) {
        return -EBADMSG;
    }
    return 0;
}

static int rep_list_decode(const uint8_t *p, uint32_t len, struct vdx_wire_rep *rep)
{
    if (len < VDX_WIRE_LIST_REP_SIZE) {
        return -EBADMSG;
    }
    rep->status = get_le32(p + OFF(vdx_wire_list_rep, status));
    rep->u.list.count = get_le32(p + OFF(vdx_wire_list_rep, count));
    if (rep->u.list.count > VDX_WIRE_LIST_MAX) {
        return -E2BIG;
    }
    if (len != VDX_WIRE_LIST_REP_SIZE + VDX_WIRE_DEV_SIZE * rep->u.list.count ||
        (rep->status != DEXT_OK && rep->u.list.count != 0)) {
        return -EBADMSG;
    }
    rep->u.list.entries = p + VDX_WIRE_LIST_REP_SIZE;
    for (uint32_t i = 0; i < rep->u.list.count; i++) {
        const uint8_t *e = rep->u.list.entries + VDX_WIRE_DEV_SIZE * i;

        if (get_le16(e + OFF(vdx_wire_dev, reserved)) != 0 ||
            (e[OFF(vdx_wire_dev, flags)] & ~VDX_WIRE_DEV_F_CLAIMED) != 0) {
            return -EBADMSG;
        }
    }
    return 0;
}

static int rep_json_decode(const uint8_t *p, uint32_t len, struct vdx_wire_rep *rep)
{
    if (len < VDX_WIRE_JSON_REP_SIZE) {
        return -EBADMSG;
    }
    rep->status = get_le32(p + OFF(vdx_wire_json_rep, status));
    rep->u.json.len = get_le32(p + OFF(vdx_wire_json_rep, len));
    if (len != VDX_WIRE_JSON_REP_SIZE + (uint64_t)rep->u.json.len) {
        return -EBADMSG;
    }
    if (rep->status != DEXT_OK &&
        (rep->u.json.len != 0 || (rep->hdr.flags & VDX_WIRE_F_MORE))) {
        return -EBADMSG;
    }
    rep->u.json.text = (const char *)p + VDX_WIRE_JSON_REP_SIZE;
    if (memchr(rep->u.json.text, '\0', rep->u.json.len) != NULL) {
        return -EBADMSG;
    }
    return 0;
}

static int rep_payload_decode(const uint8_t *p, uint32_t len, struct vdx_wire_rep *rep)
{
    switch (rep->hdr.op) {
    case VDX_OP_LIST:
        return rep_list_decode(p, len, rep);
    case VDX_OP_CALL:
        return rep_call_decode(p, len, rep);
    case VDX_OP_REGISTER_DMA:
        return rep_dma_decode(p, len, rep);
    case VDX_OP_COPY_MEMORY:
        return rep_mem_decode(p, len, rep);
    case VDX_OP_STATUS:
        return rep_json_decode(p, len, rep);
    default: /* OPEN, NOTIFY_ATTACH */
        return rep_status_decode(p, len, rep);
    }
}

int vdx_wire_rep_decode(const void *buf, size_t len, unsigned nfds,
                        struct vdx_wire_rep *rep)
{
    const uint8_t *payload;
    unsigned want_fds;
    int rc;

    memset(rep, 0, sizeof(*rep));
    rc = frame_decode(buf, len, &rep->hdr, &payload);
    if (rc < 0) {
        return rc;
    }
    if (!(rep->hdr.flags & VDX_WIRE_F_REPLY) ||
        ((rep->hdr.flags & VDX_WIRE_F_MORE) && rep->hdr.op != VDX_OP_STATUS)) {
        return -EPROTO;
    }
    rc = rep_payload_decode(payload, rep->hdr.len, rep);
    if (rc < 0) {
        return rc;
    }
    want_fds = rep->hdr.op == VDX_OP_COPY_MEMORY && rep->status == DEXT_OK ? 1u : 0u;
    if (nfds != want_fds) {
        return -EBADF;
    }
    rep->nfds = nfds;
    return 0;
}

void vdx_wire_list_entry(const struct vdx_wire_rep *rep, uint32_t i,
                         struct vdx_wire_dev_info *out)
{
    const uint8_t *e = rep->u.list.entries + (size_t)VDX_WIRE_DEV_SIZE * i;

    out->domain = get_le16(e + OFF(vdx_wire_dev, domain));
    out->bus = e[OFF(vdx_wire_dev, bus)];
    out->slot = e[OFF(vdx_wire_dev, slot)];
    out->fn = e[OFF(vdx_wire_dev, fn)];
    out->claimed = (e[OFF(vdx_wire_dev, flags)] & VDX_WIRE_DEV_F_CLAIMED) != 0;
    out->vendor = get_le16(e + OFF(vdx_wire_dev, vendor));
    out->device = get_le16(e + OFF(vdx_wire_dev, device));
    out->class_code = get_le32(e + OFF(vdx_wire_dev, class_code)) & 0xffffffu;
}

/* ---- Encoders -------------------------------------------------------------- */

/*
 * Check room for a frame with `len` payload bytes and write its header.
 * Returns the frame length or -EMSGSIZE.
 */
static int frame_begin(void *buf, size_t cap, uint16_t op, uint16_t flags, uint32_t len,
                       uint32_t seq)
{
    if (len > VDX_WIRE_MAX_PAYLOAD || cap < (size_t)VDX_WIRE_HDR_SIZE + len) {
        return -EMSGSIZE;
    }
    hdr_put(buf, op, flags, len, seq);
    return (int)(VDX_WIRE_HDR_SIZE + len);
}

static uint8_t *payload_of(void *buf)
{
    return (uint8_t *)buf + VDX_WIRE_HDR_SIZE;
}

int vdx_wire_enc_empty_req(void *buf, size_t cap, uint16_t op, uint32_t seq)
{
    if (op != VDX_OP_LIST && op != VDX_OP_NOTIFY_ATTACH && op != VDX_OP_STATUS) {
        return -EINVAL;
    }
    return frame_begin(buf, cap, op, 0, 0, seq);
}

int vdx_wire_enc_open_req(void *buf, size_t cap, uint32_t seq, uint32_t index)
{
    int n = frame_begin(buf, cap, VDX_OP_OPEN, 0, VDX_WIRE_OPEN_REQ_SIZE, seq);
    uint8_t *p;

    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le32(p + OFF(vdx_wire_open_req, index), index);
    put_le32(p + OFF(vdx_wire_open_req, reserved), 0);
    return n;
}

int vdx_wire_enc_call_req(void *buf, size_t cap, uint32_t seq, uint32_t sel,
                          const uint64_t *in, uint32_t nin, uint32_t nout)
{
    uint8_t *p;
    int n;

    if (nin > DEXT_MAX_SCALARS || nout > DEXT_MAX_SCALARS) {
        return -E2BIG;
    }
    n = frame_begin(buf, cap, VDX_OP_CALL, 0, VDX_WIRE_CALL_REQ_SIZE + 8u * nin, seq);
    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le32(p + OFF(vdx_wire_call_req, sel), sel);
    put_le32(p + OFF(vdx_wire_call_req, nin), nin);
    put_le32(p + OFF(vdx_wire_call_req, nout), nout);
    put_le32(p + OFF(vdx_wire_call_req, reserved), 0);
    for (uint32_t i = 0; i < nin; i++) {
        put_le64(p + VDX_WIRE_CALL_REQ_SIZE + 8u * i, in[i]);
    }
    return n;
}

int vdx_wire_enc_dma_req(void *buf, size_t cap, uint32_t seq, uint64_t key,
                         uint64_t fd_offset, uint64_t size)
{
    int n = frame_begin(buf, cap, VDX_OP_REGISTER_DMA, 0, VDX_WIRE_DMA_REQ_SIZE, seq);
    uint8_t *p;

    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le64(p + OFF(vdx_wire_dma_req, key), key);
    put_le64(p + OFF(vdx_wire_dma_req, fd_offset), fd_offset);
    put_le64(p + OFF(vdx_wire_dma_req, size), size);
    return n;
}

int vdx_wire_enc_mem_req(void *buf, size_t cap, uint32_t seq, uint32_t type)
{
    int n = frame_begin(buf, cap, VDX_OP_COPY_MEMORY, 0, VDX_WIRE_MEM_REQ_SIZE, seq);
    uint8_t *p;

    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le32(p + OFF(vdx_wire_mem_req, type), type);
    put_le32(p + OFF(vdx_wire_mem_req, reserved), 0);
    return n;
}

int vdx_wire_enc_status_rep(void *buf, size_t cap, uint16_t op, uint32_t seq,
                            uint32_t status)
{
    uint8_t *p;
    int n;

    if (op != VDX_OP_OPEN && op != VDX_OP_NOTIFY_ATTACH) {
        return -EINVAL;
    }
    n = frame_begin(buf, cap, op, VDX_WIRE_F_REPLY, VDX_WIRE_STATUS_REP_SIZE, seq);
    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le32(p + OFF(vdx_wire_status_rep, status), status);
    put_le32(p + OFF(vdx_wire_status_rep, reserved), 0);
    return n;
}

int vdx_wire_enc_call_rep(void *buf, size_t cap, uint32_t seq, uint32_t status,
                          const uint64_t *out, uint32_t nout)
{
    uint8_t *p;
    int n;

    if (nout > DEXT_MAX_SCALARS) {
        return -E2BIG;
    }
    n = frame_begin(buf, cap, VDX_OP_CALL, VDX_WIRE_F_REPLY,
                    VDX_WIRE_CALL_REP_SIZE + 8u * nout, seq);
    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le32(p + OFF(vdx_wire_call_rep, status), status);
    put_le32(p + OFF(vdx_wire_call_rep, nout), nout);
    for (uint32_t i = 0; i < nout; i++) {
        put_le64(p + VDX_WIRE_CALL_REP_SIZE + 8u * i, out[i]);
    }
    return n;
}

int vdx_wire_enc_dma_rep(void *buf, size_t cap, uint32_t seq, uint32_t status, uint64_t bus,
                         uint64_t bus_len)
{
    int n = frame_begin(buf, cap, VDX_OP_REGISTER_DMA, VDX_WIRE_F_REPLY,
                        VDX_WIRE_DMA_REP_SIZE, seq);
    uint8_t *p;

    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le32(p + OFF(vdx_wire_dma_rep, status), status);
    put_le32(p + OFF(vdx_wire_dma_rep, reserved), 0);
    put_le64(p + OFF(vdx_wire_dma_rep, bus), bus);
    put_le64(p + OFF(vdx_wire_dma_rep, bus_len), bus_len);
    return n;
}

int vdx_wire_enc_mem_rep(void *buf, size_t cap, uint32_t seq, uint32_t status,
                         uint32_t flags, uint64_t fd_offset, uint64_t size)
{
    uint8_t *p;
    int n;

    if (flags & ~VDX_WIRE_MEM_F_KNOWN) {
        return -EINVAL;
    }
    n = frame_begin(buf, cap, VDX_OP_COPY_MEMORY, VDX_WIRE_F_REPLY, VDX_WIRE_MEM_REP_SIZE,
                    seq);
    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le32(p + OFF(vdx_wire_mem_rep, status), status);
    put_le32(p + OFF(vdx_wire_mem_rep, flags), flags);
    put_le64(p + OFF(vdx_wire_mem_rep, fd_offset), fd_offset);
    put_le64(p + OFF(vdx_wire_mem_rep, size), size);
    return n;
}

static void list_entry_put(uint8_t *e, const struct vdx_wire_dev_info *dev)
{
    put_le16(e + OFF(vdx_wire_dev, domain), dev->domain);
    e[OFF(vdx_wire_dev, bus)] = dev->bus;
    e[OFF(vdx_wire_dev, slot)] = dev->slot;
    e[OFF(vdx_wire_dev, fn)] = dev->fn;
    e[OFF(vdx_wire_dev, flags)] = dev->claimed ? VDX_WIRE_DEV_F_CLAIMED : 0;
    put_le16(e + OFF(vdx_wire_dev, vendor), dev->vendor);
    put_le16(e + OFF(vdx_wire_dev, device), dev->device);
    put_le16(e + OFF(vdx_wire_dev, reserved), 0);
    put_le32(e + OFF(vdx_wire_dev, class_code), dev->class_code & 0xffffffu);
}

int vdx_wire_enc_list_rep(void *buf, size_t cap, uint32_t seq, uint32_t status,
                          const struct vdx_wire_dev_info *devs, uint32_t count)
{
    uint8_t *p;
    int n;

    if (count > VDX_WIRE_LIST_MAX) {
        return -E2BIG;
    }
    n = frame_begin(buf, cap, VDX_OP_LIST, VDX_WIRE_F_REPLY,
                    VDX_WIRE_LIST_REP_SIZE + VDX_WIRE_DEV_SIZE * count, seq);
    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le32(p + OFF(vdx_wire_list_rep, status), status);
    put_le32(p + OFF(vdx_wire_list_rep, count), count);
    for (uint32_t i = 0; i < count; i++) {
        list_entry_put(p + VDX_WIRE_LIST_REP_SIZE + VDX_WIRE_DEV_SIZE * i, &devs[i]);
    }
    return n;
}

int vdx_wire_enc_json_rep(void *buf, size_t cap, uint32_t seq, uint32_t status,
                          uint16_t flags, const char *text, uint32_t len)
{
    uint8_t *p;
    int n;

    if ((flags & ~VDX_WIRE_F_MORE) != 0) {
        return -EINVAL;
    }
    if (len > VDX_WIRE_JSON_CHUNK_MAX) {
        return -EMSGSIZE;
    }
    n = frame_begin(buf, cap, VDX_OP_STATUS, VDX_WIRE_F_REPLY | flags,
                    VDX_WIRE_JSON_REP_SIZE + len, seq);
    if (n < 0) {
        return n;
    }
    p = payload_of(buf);
    put_le32(p + OFF(vdx_wire_json_rep, status), status);
    put_le32(p + OFF(vdx_wire_json_rep, len), len);
    if (len > 0) {
        memcpy(p + VDX_WIRE_JSON_REP_SIZE, text, len);
    }
    return n;
}
