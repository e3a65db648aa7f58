/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The unix transport wire format: requests from the client library to a
 * `vfio-dext dext` daemon and the daemon's replies, over a UNIX stream socket
 * with file descriptors as SCM_RIGHTS. This header is the specification.
 *
 * Self-contained: fixed-width fields, explicit values, static asserts on every
 * size and offset. All integers are little-endian on the wire; the structs
 * below document the layout (they are never cast onto a buffer: wire.c reads
 * and writes each field at its offset).
 *
 * Frame = header (16 bytes) + payload (hdr.len bytes, at most
 * VDX_WIRE_MAX_PAYLOAD). A frame is at most VDX_WIRE_MAX_FRAME = 64 KiB.
 *
 * Conversation rules:
 *  - Strict request/reply: a client sends its next request only once the
 *    reply to the previous one has arrived (the daemon drops a connection
 *    that sends bytes beyond the frame it is serving).
 *  - Requests have flags 0. Replies carry VDX_WIRE_F_REPLY, the request's op
 *    and echo its sequence number.
 *  - A frame that carries a file descriptor is sent with ONE sendmsg() whose
 *    SCM_RIGHTS control message holds exactly that one descriptor. At most one
 *    descriptor per frame; ops that take none must carry none.
 *  - One connection is one user client: OPEN binds it to a device (once).
 *    LIST and STATUS work on any connection.
 *  - STATUS replies may be split: every frame but the last has
 *    VDX_WIRE_F_MORE; the client concatenates the text chunks. The whole
 *    JSON text is at most VDX_WIRE_STATUS_MAX_TOTAL bytes (a larger status is
 *    answered DEXT_E_NO_SPACE with no text).
 *
 * Parsing: every decoder is a pure function over (buffer, length, number of
 * descriptors received with it) that returns 0 or a negative errno:
 *   -ENODATA   fewer bytes than a header
 *   -EPROTO    bad magic, unknown op, unknown or wrong-direction flags
 *   -EMSGSIZE  payload length beyond VDX_WIRE_MAX_PAYLOAD (or, for requests,
 *              beyond the largest request of that op)
 *   -EBADMSG   buffer length is not exactly one frame; payload size wrong for
 *              the op; a reserved field is not zero; text with a NUL byte
 *   -E2BIG     a scalar or entry count beyond its maximum (DEXT_MAX_SCALARS,
 *              VDX_WIRE_LIST_MAX)
 *   -EBADF     wrong number of descriptors for the op
 * Encoders write one whole frame into (buf, cap) and return its length, or
 * -EMSGSIZE when cap is too small, -E2BIG / -EINVAL on bad counts or flags.
 */
#ifndef VFIO_DEXT_WIRE_H
#define VFIO_DEXT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfio-dext/dext.h"

/* ---- Header ---------------------------------------------------------------- */

#define VDX_WIRE_MAGIC       0x31584456u /* bytes 'V' 'D' 'X' '1'; the 1 is the version */
#define VDX_WIRE_HDR_SIZE    16u
#define VDX_WIRE_MAX_FRAME   65536u
#define VDX_WIRE_MAX_PAYLOAD (VDX_WIRE_MAX_FRAME - VDX_WIRE_HDR_SIZE)
#define VDX_WIRE_MAX_FDS     1u /* per frame */

struct vdx_wire_hdr {
    uint32_t magic; /* 0x00: VDX_WIRE_MAGIC */
    uint16_t op;    /* 0x04: enum vdx_wire_op */
    uint16_t flags; /* 0x06: VDX_WIRE_F_* */
    uint32_t len;   /* 0x08: payload bytes following the header */
    uint32_t seq;   /* 0x0c: chosen by the client, echoed by the reply */
};
_Static_assert(sizeof(struct vdx_wire_hdr) == VDX_WIRE_HDR_SIZE, "header is 16 bytes");
_Static_assert(__builtin_offsetof(struct vdx_wire_hdr, magic) == 0x00, "magic at 0");
_Static_assert(__builtin_offsetof(struct vdx_wire_hdr, op) == 0x04, "op at 4");
_Static_assert(__builtin_offsetof(struct vdx_wire_hdr, flags) == 0x06, "flags at 6");
_Static_assert(__builtin_offsetof(struct vdx_wire_hdr, len) == 0x08, "len at 8");
_Static_assert(__builtin_offsetof(struct vdx_wire_hdr, seq) == 0x0c, "seq at 12");

enum vdx_wire_op {
    VDX_OP_LIST = 1,          /* -> list reply (+ entries)                    */
    VDX_OP_OPEN = 2,          /* open req -> status reply                     */
    VDX_OP_CALL = 3,          /* call req (+ in[]) -> call reply (+ out[])   */
    VDX_OP_REGISTER_DMA = 4,  /* dma req + 1 fd -> dma reply                  */
    VDX_OP_COPY_MEMORY = 5,   /* mem req -> mem reply (+ 1 fd iff DEXT_OK)    */
    VDX_OP_NOTIFY_ATTACH = 6, /* empty + 0 fd (detach) or 1 fd -> status reply */
    VDX_OP_STATUS = 7,        /* empty -> json reply(s)                       */
};
#define VDX_WIRE_OP_FIRST VDX_OP_LIST
#define VDX_WIRE_OP_LAST  VDX_OP_STATUS

#define VDX_WIRE_F_REPLY 0x0001u /* set on every reply, never on a request */
#define VDX_WIRE_F_MORE  0x0002u /* STATUS reply only: more chunks follow */
#define VDX_WIRE_F_KNOWN (VDX_WIRE_F_REPLY | VDX_WIRE_F_MORE)

/* ---- Request payloads ------------------------------------------------------ */

/* LIST, NOTIFY_ATTACH, STATUS: empty payload. */

struct vdx_wire_open_req {
    uint32_t index;    /* 0x00: device index as LIST reports it */
    uint32_t reserved; /* 0x04: zero */
};
#define VDX_WIRE_OPEN_REQ_SIZE 8u
_Static_assert(sizeof(struct vdx_wire_open_req) == VDX_WIRE_OPEN_REQ_SIZE, "open req");
_Static_assert(__builtin_offsetof(struct vdx_wire_open_req, index) == 0x00, "index");
_Static_assert(__builtin_offsetof(struct vdx_wire_open_req, reserved) == 0x04, "rsvd");

struct vdx_wire_call_req {
    uint32_t sel;      /* 0x00: enum dext_selector */
    uint32_t nin;      /* 0x04: inputs that follow, <= DEXT_MAX_SCALARS */
    uint32_t nout;     /* 0x08: output room, <= DEXT_MAX_SCALARS */
    uint32_t reserved; /* 0x0c: zero */
    /* 0x10: uint64_t in[nin] */
};
#define VDX_WIRE_CALL_REQ_SIZE 16u /* payload = 16 + 8 * nin exactly */
_Static_assert(sizeof(struct vdx_wire_call_req) == VDX_WIRE_CALL_REQ_SIZE, "call req");
_Static_assert(__builtin_offsetof(struct vdx_wire_call_req, sel) == 0x00, "sel");
_Static_assert(__builtin_offsetof(struct vdx_wire_call_req, nin) == 0x04, "nin");
_Static_assert(__builtin_offsetof(struct vdx_wire_call_req, nout) == 0x08, "nout");
_Static_assert(__builtin_offsetof(struct vdx_wire_call_req, reserved) == 0x0c, "rsvd");

struct vdx_wire_dma_req {
    uint64_t key;       /* 0x00: selector 5 key (iova) */
    uint64_t fd_offset; /* 0x08: offset of the memory in the attached fd */
    uint64_t size;      /* 0x10: bytes */
};
#define VDX_WIRE_DMA_REQ_SIZE 24u
_Static_assert(sizeof(struct vdx_wire_dma_req) == VDX_WIRE_DMA_REQ_SIZE, "dma req");
_Static_assert(__builtin_offsetof(struct vdx_wire_dma_req, key) == 0x00, "key");
_Static_assert(__builtin_offsetof(struct vdx_wire_dma_req, fd_offset) == 0x08, "fd_off");
_Static_assert(__builtin_offsetof(struct vdx_wire_dma_req, size) == 0x10, "size");

struct vdx_wire_mem_req {
    uint32_t type;     /* 0x00: enum dext_memory_type */
    uint32_t reserved; /* 0x04: zero */
};
#define VDX_WIRE_MEM_REQ_SIZE 8u
_Static_assert(sizeof(struct vdx_wire_mem_req) == VDX_WIRE_MEM_REQ_SIZE, "mem req");
_Static_assert(__builtin_offsetof(struct vdx_wire_mem_req, type) == 0x00, "type");
_Static_assert(__builtin_offsetof(struct vdx_wire_mem_req, reserved) == 0x04, "rsvd");

/* The largest request frame (a CALL with DEXT_MAX_SCALARS inputs). */
#define VDX_WIRE_MAX_REQ_FRAME                                                             \
    (VDX_WIRE_HDR_SIZE + VDX_WIRE_CALL_REQ_SIZE + 8u * DEXT_MAX_SCALARS)
_Static_assert(VDX_WIRE_MAX_REQ_FRAME == 96u, "largest request: 16 + 16 + 64");

/* ---- Reply payloads -------------------------------------------------------- */

/* OPEN and NOTIFY_ATTACH. */
struct vdx_wire_status_rep {
    uint32_t status;   /* 0x00: dext_status */
    uint32_t reserved; /* 0x04: zero */
};
#define VDX_WIRE_STATUS_REP_SIZE 8u
_Static_assert(sizeof(struct vdx_wire_status_rep) == VDX_WIRE_STATUS_REP_SIZE, "st rep");
_Static_assert(__builtin_offsetof(struct vdx_wire_status_rep, status) == 0x00, "st");
_Static_assert(__builtin_offsetof(struct vdx_wire_status_rep, reserved) == 0x04, "rsvd");

struct vdx_wire_call_rep {
    uint32_t status; /* 0x00: dext_status of the selector */
    uint32_t nout;   /* 0x04: outputs that follow, <= the request's room */
    /* 0x08: uint64_t out[nout] */
};
#define VDX_WIRE_CALL_REP_SIZE 8u /* payload = 8 + 8 * nout exactly */
_Static_assert(sizeof(struct vdx_wire_call_rep) == VDX_WIRE_CALL_REP_SIZE, "call rep");
_Static_assert(__builtin_offsetof(struct vdx_wire_call_rep, status) == 0x00, "st");
_Static_assert(__builtin_offsetof(struct vdx_wire_call_rep, nout) == 0x04, "nout");

struct vdx_wire_dma_rep {
    uint32_t status;   /* 0x00 */
    uint32_t reserved; /* 0x04: zero */
    uint64_t bus;      /* 0x08: first bus address */
    uint64_t bus_len;  /* 0x10: its length */
};
#define VDX_WIRE_DMA_REP_SIZE 24u
_Static_assert(sizeof(struct vdx_wire_dma_rep) == VDX_WIRE_DMA_REP_SIZE, "dma rep");
_Static_assert(__builtin_offsetof(struct vdx_wire_dma_rep, status) == 0x00, "st");
_Static_assert(__builtin_offsetof(struct vdx_wire_dma_rep, reserved) == 0x04, "rsvd");
_Static_assert(__builtin_offsetof(struct vdx_wire_dma_rep, bus) == 0x08, "bus");
_Static_assert(__builtin_offsetof(struct vdx_wire_dma_rep, bus_len) == 0x10, "bus_len");

#define VDX_WIRE_MEM_F_WC    0x1u /* write-combining intent (prefetchable BAR) */
#define VDX_WIRE_MEM_F_KNOWN VDX_WIRE_MEM_F_WC

/* The fd travels with the reply iff status == DEXT_OK (then size > 0). */
struct vdx_wire_mem_rep {
    uint32_t status;    /* 0x00 */
    uint32_t flags;     /* 0x04: VDX_WIRE_MEM_F_* */
    uint64_t fd_offset; /* 0x08: map the fd MAP_SHARED at this offset */
    uint64_t size;      /* 0x10: for this many bytes */
};
#define VDX_WIRE_MEM_REP_SIZE 24u
_Static_assert(sizeof(struct vdx_wire_mem_rep) == VDX_WIRE_MEM_REP_SIZE, "mem rep");
_Static_assert(__builtin_offsetof(struct vdx_wire_mem_rep, status) == 0x00, "st");
_Static_assert(__builtin_offsetof(struct vdx_wire_mem_rep, flags) == 0x04, "flags");
_Static_assert(__builtin_offsetof(struct vdx_wire_mem_rep, fd_offset) == 0x08, "off");
_Static_assert(__builtin_offsetof(struct vdx_wire_mem_rep, size) == 0x10, "size");

/* LIST reply: this, then `count` entries of struct vdx_wire_dev. */
struct vdx_wire_list_rep {
    uint32_t status; /* 0x00; count is 0 unless DEXT_OK */
    uint32_t count;  /* 0x04: <= VDX_WIRE_LIST_MAX */
};
#define VDX_WIRE_LIST_REP_SIZE 8u
_Static_assert(sizeof(struct vdx_wire_list_rep) == VDX_WIRE_LIST_REP_SIZE, "list rep");
_Static_assert(__builtin_offsetof(struct vdx_wire_list_rep, status) == 0x00, "st");
_Static_assert(__builtin_offsetof(struct vdx_wire_list_rep, count) == 0x04, "count");

#define VDX_WIRE_DEV_F_CLAIMED 0x01u

struct vdx_wire_dev {
    uint16_t domain;     /* 0x00 */
    uint8_t bus;         /* 0x02 */
    uint8_t slot;        /* 0x03 */
    uint8_t fn;          /* 0x04 */
    uint8_t flags;       /* 0x05: VDX_WIRE_DEV_F_* */
    uint16_t vendor;     /* 0x06 */
    uint16_t device;     /* 0x08 */
    uint16_t reserved;   /* 0x0a: zero */
    uint32_t class_code; /* 0x0c: 24 bits */
};
#define VDX_WIRE_DEV_SIZE 16u
_Static_assert(sizeof(struct vdx_wire_dev) == VDX_WIRE_DEV_SIZE, "dev entry");
_Static_assert(__builtin_offsetof(struct vdx_wire_dev, domain) == 0x00, "domain");
_Static_assert(__builtin_offsetof(struct vdx_wire_dev, bus) == 0x02, "bus");
_Static_assert(__builtin_offsetof(struct vdx_wire_dev, slot) == 0x03, "slot");
_Static_assert(__builtin_offsetof(struct vdx_wire_dev, fn) == 0x04, "fn");
_Static_assert(__builtin_offsetof(struct vdx_wire_dev, flags) == 0x05, "flags");
_Static_assert(__builtin_offsetof(struct vdx_wire_dev, vendor) == 0x06, "vendor");
_Static_assert(__builtin_offsetof(struct vdx_wire_dev, device) == 0x08, "device");
_Static_assert(__builtin_offsetof(struct vdx_wire_dev, reserved) == 0x0a, "rsvd");
_Static_assert(__builtin_offsetof(struct vdx_wire_dev, class_code) == 0x0c, "class");

#define VDX_WIRE_LIST_MAX                                                                  \
    ((VDX_WIRE_MAX_PAYLOAD - VDX_WIRE_LIST_REP_SIZE) / VDX_WIRE_DEV_SIZE)
_Static_assert(VDX_WIRE_LIST_MAX == 4094u, "devices in one LIST reply");

/* STATUS reply chunk: this, then `len` bytes of JSON text (no NUL). */
struct vdx_wire_json_rep {
    uint32_t status; /* 0x00; len is 0 and MORE clear unless DEXT_OK */
    uint32_t len;    /* 0x04: text bytes in this chunk */
};
#define VDX_WIRE_JSON_REP_SIZE 8u
_Static_assert(sizeof(struct vdx_wire_json_rep) == VDX_WIRE_JSON_REP_SIZE, "json rep");
_Static_assert(__builtin_offsetof(struct vdx_wire_json_rep, status) == 0x00, "st");
_Static_assert(__builtin_offsetof(struct vdx_wire_json_rep, len) == 0x04, "len");

#define VDX_WIRE_JSON_CHUNK_MAX   (VDX_WIRE_MAX_PAYLOAD - VDX_WIRE_JSON_REP_SIZE)
#define VDX_WIRE_STATUS_MAX_TOTAL (4u << 20) /* whole JSON text of one STATUS */

/* The largest reply on a user-client connection (a CALL reply with
 * DEXT_MAX_SCALARS outputs); LIST and STATUS replies may be up to a frame. */
#define VDX_WIRE_MAX_UC_REP_FRAME                                                          \
    (VDX_WIRE_HDR_SIZE + VDX_WIRE_CALL_REP_SIZE + 8u * DEXT_MAX_SCALARS)
_Static_assert(VDX_WIRE_MAX_UC_REP_FRAME == 88u, "largest CALL reply: 16 + 8 + 64");

/* ---- Decoded forms (host byte order) --------------------------------------- */

struct vdx_wire_req {
    struct vdx_wire_hdr hdr;
    unsigned nfds; /* descriptors that came with the frame (0 or 1) */
    union {
        struct {
            uint32_t index;
        } open;
        struct {
            uint32_t sel, nin, nout;
            uint64_t in[DEXT_MAX_SCALARS];
        } call;
        struct {
            uint64_t key, fd_offset, size;
        } dma;
        struct {
            uint32_t type;
        } mem;
    } u;
};

struct vdx_wire_dev_info {
    uint16_t domain;
    uint8_t bus, slot, fn;
    bool claimed;
    uint16_t vendor, device;
    uint32_t class_code;
};

struct vdx_wire_rep {
    struct vdx_wire_hdr hdr;
    unsigned nfds;
    uint32_t status;
    union {
        struct {
            uint32_t nout;
            uint64_t out[DEXT_MAX_SCALARS];
        } call;
        struct {
            uint64_t bus, bus_len;
        } dma;
        struct {
            uint32_t flags;
            uint64_t fd_offset, size;
        } mem;
        struct {
            uint32_t count;
            const uint8_t *entries; /* points into the decoded buffer */
        } list;
        struct {
            uint32_t len;
            const char *text; /* points into the decoded buffer, not NUL-terminated */
        } json;
    } u;
};

/* ---- Decoders (pure) ------------------------------------------------------- */

/*
 * Decode and check a header from the first VDX_WIRE_HDR_SIZE bytes of buf:
 * magic, op, known flags, len <= VDX_WIRE_MAX_PAYLOAD. The direction is not
 * checked here. Returns 0, -ENODATA (len < header), -EPROTO or -EMSGSIZE.
 */
int vdx_wire_hdr_decode(const void *buf, size_t len, struct vdx_wire_hdr *hdr);

/* Largest request payload of `op` (0 for empty requests and unknown ops). */
uint32_t vdx_wire_req_max_payload(uint16_t op);

/*
 * Decode one whole request frame: buf holds exactly header + payload, nfds
 * descriptors came with it. Returns 0 and *req, or -errno as listed above.
 */
int vdx_wire_req_decode(const void *buf, size_t len, unsigned nfds,
                        struct vdx_wire_req *req);

/*
 * Decode one whole reply frame (any op). Pointers in *rep point into buf.
 * Returns 0 and *rep, or -errno as listed above.
 */
int vdx_wire_rep_decode(const void *buf, size_t len, unsigned nfds,
                        struct vdx_wire_rep *rep);

/* Entry i (< rep->u.list.count) of a decoded LIST reply. */
void vdx_wire_list_entry(const struct vdx_wire_rep *rep, uint32_t i,
                         struct vdx_wire_dev_info *out);

/* ---- Encoders -------------------------------------------------------------- */

/* LIST, NOTIFY_ATTACH, STATUS requests (empty payload); -EINVAL for other ops. */
int vdx_wire_enc_empty_req(void *buf, size_t cap, uint16_t op, uint32_t seq);
int vdx_wire_enc_open_req(void *buf, size_t cap, uint32_t seq, uint32_t index);
/* in may be NULL when nin == 0. -E2BIG when nin or nout > DEXT_MAX_SCALARS. */
int vdx_wire_enc_call_req(void *buf, size_t cap, uint32_t seq, uint32_t sel,
                          const uint64_t *in, uint32_t nin, uint32_t nout);
int vdx_wire_enc_dma_req(void *buf, size_t cap, uint32_t seq, uint64_t key,
                         uint64_t fd_offset, uint64_t size);
int vdx_wire_enc_mem_req(void *buf, size_t cap, uint32_t seq, uint32_t type);

/* OPEN or NOTIFY_ATTACH reply; -EINVAL for other ops. */
int vdx_wire_enc_status_rep(void *buf, size_t cap, uint16_t op, uint32_t seq,
                            uint32_t status);
/* out may be NULL when nout == 0. -E2BIG when nout > DEXT_MAX_SCALARS. */
int vdx_wire_enc_call_rep(void *buf, size_t cap, uint32_t seq, uint32_t status,
                          const uint64_t *out, uint32_t nout);
int vdx_wire_enc_dma_rep(void *buf, size_t cap, uint32_t seq, uint32_t status, uint64_t bus,
                         uint64_t bus_len);
int vdx_wire_enc_mem_rep(void *buf, size_t cap, uint32_t seq, uint32_t status,
                         uint32_t flags, uint64_t fd_offset, uint64_t size);
/* LIST reply with `count` entries (-E2BIG beyond VDX_WIRE_LIST_MAX). */
int vdx_wire_enc_list_rep(void *buf, size_t cap, uint32_t seq, uint32_t status,
                          const struct vdx_wire_dev_info *devs, uint32_t count);
/* One STATUS chunk; flags is 0 or VDX_WIRE_F_MORE (-EINVAL otherwise). */
int vdx_wire_enc_json_rep(void *buf, size_t cap, uint32_t seq, uint32_t status,
                          uint16_t flags, const char *text, uint32_t len);

#endif /* VFIO_DEXT_WIRE_H */
