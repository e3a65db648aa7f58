/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user wire format, server side: the message header, the commands a
 * server receives from QEMU's vfio-user-pci client and the replies it sends.
 * This header is the specification this project implements; it is
 * self-contained (no <linux/vfio.h>: the VFIO constants the protocol reuses
 * are defined below with explicit values, so it builds on macOS too).
 *
 * Spec: QEMU docs/interop/vfio-user.rst ("the spec", section names quoted
 * below); what QEMU's client really sends and accepts:
 * /work/shared/reference/vfio-user.md ("ref §N").
 *
 * Byte order: the spec says host order; every platform we build for is
 * little-endian, and protocol.c reads and writes each field at its offset as
 * little-endian. The structs below document the layouts (checked by static
 * asserts); they are never cast onto a buffer.
 *
 * Message = header (16 bytes) + payload. hdr.size counts the whole message.
 * File descriptors travel as SCM_RIGHTS with the sendmsg() that carries the
 * header.
 *
 * Parsing: every decoder is a pure function over (payload, length[, number
 * of descriptors that came with the message]) that returns 0 or a negative
 * errno, which the server turns into the error reply's errno:
 *   -EINVAL   wrong payload size for the command, argsz too small, unknown or
 *             contradictory flags, zero or wrapping sizes, wrong descriptor
 *             count, malformed capabilities JSON
 *   -E2BIG    a data count above the negotiated max_data_xfer_size, a
 *             capabilities string above VDX_VU_CAPS_JSON_MAX
 *   -ENOTSUP  a defined feature this server does not implement (DMA_UNMAP
 *             dirty bitmap, VERSION with a major other than 0)
 * Decoded pointers (data, bools) point into the caller's buffer.
 *
 * Encoders write one whole reply message (header included) into (buf, cap)
 * and return its length, or -EMSGSIZE when cap is too small, or -EINVAL on
 * arguments no valid reply could carry.
 */
#ifndef VFIO_DEXT_VU_PROTOCOL_H
#define VFIO_DEXT_VU_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Header (spec "Header"; ref §1.2) -------------------------------------- */

#define VDX_VU_HDR_SIZE 16u

struct vdx_vu_hdr {
    uint16_t id;    /* 0x00: chosen by the sender, echoed by the reply; may repeat */
    uint16_t cmd;   /* 0x02: enum vdx_vu_cmd; set in the reply too */
    uint32_t size;  /* 0x04: whole message, header included */
    uint32_t flags; /* 0x08: VDX_VU_F_* */
    uint32_t error; /* 0x0c: positive errno in an ERROR reply; 0 otherwise */
};
_Static_assert(sizeof(struct vdx_vu_hdr) == VDX_VU_HDR_SIZE, "spec Header: 16 bytes");
_Static_assert(offsetof(struct vdx_vu_hdr, id) == 0, "spec Header: Message ID at 0");
_Static_assert(offsetof(struct vdx_vu_hdr, cmd) == 2, "spec Header: Command at 2");
_Static_assert(offsetof(struct vdx_vu_hdr, size) == 4, "spec Header: Message size at 4");
_Static_assert(offsetof(struct vdx_vu_hdr, flags) == 8, "spec Header: Flags at 8");
_Static_assert(offsetof(struct vdx_vu_hdr, error) == 12, "spec Header: Error at 12");

#define VDX_VU_F_TYPE_MASK  0x0000000fu
#define VDX_VU_F_TYPE_CMD   0x0u        /* a command (request) */
#define VDX_VU_F_TYPE_REPLY 0x1u        /* a reply */
#define VDX_VU_F_NO_REPLY   0x00000010u /* command: the sender expects no reply */
#define VDX_VU_F_ERROR      0x00000020u /* reply: failed; `error` holds the errno */
#define VDX_VU_F_KNOWN      (VDX_VU_F_TYPE_MASK | VDX_VU_F_NO_REPLY | VDX_VU_F_ERROR)

/* Commands (spec "Commands"; ref §2). 14 is retired (old DIRTY_PAGES). */
enum vdx_vu_cmd {
    VDX_VU_CMD_VERSION = 1,
    VDX_VU_CMD_DMA_MAP = 2,
    VDX_VU_CMD_DMA_UNMAP = 3,
    VDX_VU_CMD_DEVICE_GET_INFO = 4,
    VDX_VU_CMD_DEVICE_GET_REGION_INFO = 5,
    VDX_VU_CMD_DEVICE_GET_REGION_IO_FDS = 6,
    VDX_VU_CMD_DEVICE_GET_IRQ_INFO = 7,
    VDX_VU_CMD_DEVICE_SET_IRQS = 8,
    VDX_VU_CMD_REGION_READ = 9,
    VDX_VU_CMD_REGION_WRITE = 10,
    VDX_VU_CMD_DMA_READ = 11,
    VDX_VU_CMD_DMA_WRITE = 12,
    VDX_VU_CMD_DEVICE_RESET = 13,
    VDX_VU_CMD_DIRTY_PAGES = 14,
    VDX_VU_CMD_REGION_WRITE_MULTI = 15,
    VDX_VU_CMD_DEVICE_FEATURE = 16,
    VDX_VU_CMD_MIG_DATA_READ = 17,
    VDX_VU_CMD_MIG_DATA_WRITE = 18,
};

/* ---- VFIO constants the protocol reuses (values of <linux/vfio.h>) --------- */

/* struct vfio_device_info flags (DEVICE_GET_INFO). */
#define VDX_VU_DEVICE_F_RESET 0x1u /* VFIO_DEVICE_FLAGS_RESET: DEVICE_RESET works */
#define VDX_VU_DEVICE_F_PCI   0x2u /* VFIO_DEVICE_FLAGS_PCI: QEMU requires it */

/* PCI region indexes (VFIO_PCI_*_REGION_INDEX). */
#define VDX_VU_PCI_BAR0_REGION   0u /* BARs 0..5 are indexes 0..5 */
#define VDX_VU_PCI_BAR5_REGION   5u
#define VDX_VU_PCI_ROM_REGION    6u
#define VDX_VU_PCI_CONFIG_REGION 7u
#define VDX_VU_PCI_VGA_REGION    8u
#define VDX_VU_PCI_NUM_REGIONS   9u

/* PCI IRQ indexes (VFIO_PCI_*_IRQ_INDEX). */
#define VDX_VU_PCI_INTX_IRQ 0u
#define VDX_VU_PCI_MSI_IRQ  1u
#define VDX_VU_PCI_MSIX_IRQ 2u
#define VDX_VU_PCI_ERR_IRQ  3u
#define VDX_VU_PCI_REQ_IRQ  4u
#define VDX_VU_PCI_NUM_IRQS 5u

/* struct vfio_region_info flags. */
#define VDX_VU_REGION_F_READ  0x1u
#define VDX_VU_REGION_F_WRITE 0x2u
#define VDX_VU_REGION_F_MMAP  0x4u
#define VDX_VU_REGION_F_CAPS  0x8u

/* Region info capability ids (VFIO_REGION_INFO_CAP_*). */
#define VDX_VU_REGION_CAP_SPARSE_MMAP   1u
#define VDX_VU_REGION_CAP_TYPE          2u
#define VDX_VU_REGION_CAP_MSIX_MAPPABLE 3u
#define VDX_VU_SPARSE_MMAP_VERSION      1u

/* struct vfio_irq_info flags. */
#define VDX_VU_IRQ_INFO_F_EVENTFD    0x1u
#define VDX_VU_IRQ_INFO_F_MASKABLE   0x2u
#define VDX_VU_IRQ_INFO_F_AUTOMASKED 0x4u
#define VDX_VU_IRQ_INFO_F_NORESIZE   0x8u

/* struct vfio_irq_set flags: one data type and one action, nothing else. */
#define VDX_VU_IRQ_SET_DATA_NONE       0x01u
#define VDX_VU_IRQ_SET_DATA_BOOL       0x02u
#define VDX_VU_IRQ_SET_DATA_EVENTFD    0x04u
#define VDX_VU_IRQ_SET_ACTION_MASK     0x08u
#define VDX_VU_IRQ_SET_ACTION_UNMASK   0x10u
#define VDX_VU_IRQ_SET_ACTION_TRIGGER  0x20u
#define VDX_VU_IRQ_SET_DATA_MASK       0x07u
#define VDX_VU_IRQ_SET_ACTION_MASK_ALL 0x38u

/* DMA_MAP flags (struct vfio_iommu_type1_dma_map). */
#define VDX_VU_DMA_MAP_F_READ  0x1u
#define VDX_VU_DMA_MAP_F_WRITE 0x2u
#define VDX_VU_DMA_MAP_F_KNOWN (VDX_VU_DMA_MAP_F_READ | VDX_VU_DMA_MAP_F_WRITE)

/* DMA_UNMAP flags. */
#define VDX_VU_DMA_UNMAP_F_GET_DIRTY_BITMAP 0x1u /* obsolete; never sent by QEMU */
#define VDX_VU_DMA_UNMAP_F_ALL              0x2u /* address and size must be 0 */
#define VDX_VU_DMA_UNMAP_F_KNOWN                                                           \
    (VDX_VU_DMA_UNMAP_F_GET_DIRTY_BITMAP | VDX_VU_DMA_UNMAP_F_ALL)

/* ---- VERSION (spec "VFIO_USER_VERSION"; ref §1.5) -------------------------- */

#define VDX_VU_MAJOR 0u /* QEMU sends 0.0 and refuses any other major */
#define VDX_VU_MINOR 0u /* QEMU refuses a reply minor above its own (0) */

/* Payload: this, then an optional NUL-terminated JSON capabilities object. */
struct vdx_vu_version {
    uint16_t major; /* 0x00 */
    uint16_t minor; /* 0x02 */
    /* 0x04: char capabilities[] including its NUL */
};
#define VDX_VU_VERSION_SIZE 4u
_Static_assert(sizeof(struct vdx_vu_version) == VDX_VU_VERSION_SIZE,
               "spec VERSION: 4 + JSON");
_Static_assert(offsetof(struct vdx_vu_version, major) == 0, "spec VERSION: major at 0");
_Static_assert(offsetof(struct vdx_vu_version, minor) == 2, "spec VERSION: minor at 2");

/* The longest capabilities string accepted, NUL included. */
#define VDX_VU_CAPS_JSON_MAX 4096u

/* Spec defaults, used for keys the peer leaves out. */
#define VDX_VU_DEF_MAX_MSG_FDS  1u
#define VDX_VU_DEF_MAX_XFER     (1024u * 1024u)
#define VDX_VU_DEF_MAX_DMA_MAPS 65535u
#define VDX_VU_DEF_PGSIZES      4096u
/* QEMU refuses a server max_msg_fds above 16 and max_data_xfer_size above 64 MiB. */
#define VDX_VU_QEMU_MAX_MSG_FDS 16u
#define VDX_VU_QEMU_MAX_XFER    (64u * 1024u * 1024u)

/* Decoded capabilities (keys not understood are ignored). */
struct vdx_vu_caps {
    uint32_t max_msg_fds;        /* fds the sender can receive in one message */
    uint32_t max_data_xfer_size; /* largest region/DMA read/write count, > 0 */
    uint32_t max_dma_maps;       /* simultaneous DMA maps */
    uint64_t pgsizes;            /* OR of supported DMA page sizes, != 0 */
    bool write_multiple;         /* REGION_WRITE_MULTI offered */
    bool twin_socket;            /* twin_socket.supported offered */
};

struct vdx_vu_version_req {
    uint16_t major, minor;
    bool has_json; /* a capabilities string was present */
    struct vdx_vu_caps caps;
};

/* ---- DMA_MAP (spec "VFIO_USER_DMA_MAP"; ref §2.1) -------------------------- */

struct vdx_vu_dma_map {
    uint32_t argsz;  /* 0x00: >= 32 (QEMU: 32) */
    uint32_t flags;  /* 0x04: VDX_VU_DMA_MAP_F_* */
    uint64_t offset; /* 0x08: offset into the attached fd; 0 without one */
    uint64_t iova;   /* 0x10: "address" */
    uint64_t size;   /* 0x18 */
};
#define VDX_VU_DMA_MAP_SIZE 32u
_Static_assert(sizeof(struct vdx_vu_dma_map) == VDX_VU_DMA_MAP_SIZE,
               "spec DMA_MAP: 32 bytes");
_Static_assert(offsetof(struct vdx_vu_dma_map, argsz) == 0x00, "spec DMA_MAP: argsz");
_Static_assert(offsetof(struct vdx_vu_dma_map, flags) == 0x04, "spec DMA_MAP: flags");
_Static_assert(offsetof(struct vdx_vu_dma_map, offset) == 0x08, "spec DMA_MAP: offset");
_Static_assert(offsetof(struct vdx_vu_dma_map, iova) == 0x10, "spec DMA_MAP: address");
_Static_assert(offsetof(struct vdx_vu_dma_map, size) == 0x18, "spec DMA_MAP: size");

/* ---- DMA_UNMAP (spec "VFIO_USER_DMA_UNMAP"; ref §2.2) ---------------------- */

/* Request and reply (the reply echoes it). */
struct vdx_vu_dma_unmap {
    uint32_t argsz; /* 0x00: >= 24 (QEMU: 24) */
    uint32_t flags; /* 0x04: VDX_VU_DMA_UNMAP_F_* */
    uint64_t iova;  /* 0x08: "address" */
    uint64_t size;  /* 0x10 */
};
#define VDX_VU_DMA_UNMAP_SIZE 24u
_Static_assert(sizeof(struct vdx_vu_dma_unmap) == VDX_VU_DMA_UNMAP_SIZE,
               "spec DMA_UNMAP: 24");
_Static_assert(offsetof(struct vdx_vu_dma_unmap, argsz) == 0x00, "spec DMA_UNMAP: argsz");
_Static_assert(offsetof(struct vdx_vu_dma_unmap, flags) == 0x04, "spec DMA_UNMAP: flags");
_Static_assert(offsetof(struct vdx_vu_dma_unmap, iova) == 0x08, "spec DMA_UNMAP: address");
_Static_assert(offsetof(struct vdx_vu_dma_unmap, size) == 0x10, "spec DMA_UNMAP: size");

/* ---- DEVICE_GET_INFO (spec "VFIO_USER_DEVICE_GET_INFO"; ref §2.3) ---------- */

/* Request (other fields 0) and reply. */
struct vdx_vu_device_info {
    uint32_t argsz;       /* 0x00: >= 16 */
    uint32_t flags;       /* 0x04: VDX_VU_DEVICE_F_* */
    uint32_t num_regions; /* 0x08 */
    uint32_t num_irqs;    /* 0x0c */
};
#define VDX_VU_DEVICE_INFO_SIZE 16u
_Static_assert(sizeof(struct vdx_vu_device_info) == VDX_VU_DEVICE_INFO_SIZE,
               "spec GET_INFO");
_Static_assert(offsetof(struct vdx_vu_device_info, argsz) == 0x00, "spec GET_INFO: argsz");
_Static_assert(offsetof(struct vdx_vu_device_info, flags) == 0x04, "spec GET_INFO: flags");
_Static_assert(offsetof(struct vdx_vu_device_info, num_regions) == 0x08,
               "spec: num_regions");
_Static_assert(offsetof(struct vdx_vu_device_info, num_irqs) == 0x0c, "spec: num_irqs");

/* ---- DEVICE_GET_REGION_INFO (spec "VFIO_USER_DEVICE_GET_REGION_INFO"; ref §2.4) */

/* Request (only argsz and index matter) and reply, then the capability chain. */
struct vdx_vu_region_info {
    uint32_t argsz;      /* 0x00: request: reply room; reply: size the full reply needs */
    uint32_t flags;      /* 0x04: VDX_VU_REGION_F_* */
    uint32_t index;      /* 0x08 */
    uint32_t cap_offset; /* 0x0c: first capability, from the start of this struct */
    uint64_t size;       /* 0x10 */
    uint64_t offset;     /* 0x18: mmap offset of the region in the reply's fd */
};
#define VDX_VU_REGION_INFO_SIZE 32u
_Static_assert(sizeof(struct vdx_vu_region_info) == VDX_VU_REGION_INFO_SIZE,
               "spec: 32 bytes");
_Static_assert(offsetof(struct vdx_vu_region_info, argsz) == 0x00,
               "spec REGION_INFO: argsz");
_Static_assert(offsetof(struct vdx_vu_region_info, flags) == 0x04,
               "spec REGION_INFO: flags");
_Static_assert(offsetof(struct vdx_vu_region_info, index) == 0x08,
               "spec REGION_INFO: index");
_Static_assert(offsetof(struct vdx_vu_region_info, cap_offset) == 0x0c, "spec: cap_offset");
_Static_assert(offsetof(struct vdx_vu_region_info, size) == 0x10, "spec REGION_INFO: size");
_Static_assert(offsetof(struct vdx_vu_region_info, offset) == 0x18,
               "spec REGION_INFO: offset");

/* Capability header (struct vfio_info_cap_header). */
struct vdx_vu_cap_hdr {
    uint16_t id;      /* 0x00 */
    uint16_t version; /* 0x02 */
    uint32_t next;    /* 0x04: next capability from the region-info start; 0 = end */
};
#define VDX_VU_CAP_HDR_SIZE 8u
_Static_assert(sizeof(struct vdx_vu_cap_hdr) == VDX_VU_CAP_HDR_SIZE,
               "vfio_info_cap_header");
_Static_assert(offsetof(struct vdx_vu_cap_hdr, id) == 0, "cap id at 0");
_Static_assert(offsetof(struct vdx_vu_cap_hdr, version) == 2, "cap version at 2");
_Static_assert(offsetof(struct vdx_vu_cap_hdr, next) == 4, "cap next at 4");

/* Sparse-mmap capability: the header, then nr_areas areas. */
struct vdx_vu_sparse_mmap_cap {
    struct vdx_vu_cap_hdr hdr; /* 0x00: id 1, version 1 */
    uint32_t nr_areas;         /* 0x08 */
    uint32_t reserved;         /* 0x0c: 0 */
    /* 0x10: struct vdx_vu_sparse_area areas[nr_areas] */
};
#define VDX_VU_SPARSE_CAP_SIZE 16u
_Static_assert(sizeof(struct vdx_vu_sparse_mmap_cap) == VDX_VU_SPARSE_CAP_SIZE,
               "sparse cap");
_Static_assert(offsetof(struct vdx_vu_sparse_mmap_cap, nr_areas) == 0x08, "nr_areas at 8");
_Static_assert(offsetof(struct vdx_vu_sparse_mmap_cap, reserved) == 0x0c, "reserved at 12");

/* One mmappable area, relative to the region (its mmap offset is info.offset + offset). */
struct vdx_vu_sparse_area {
    uint64_t offset; /* 0x00 */
    uint64_t size;   /* 0x08 */
};
#define VDX_VU_SPARSE_AREA_SIZE 16u
_Static_assert(sizeof(struct vdx_vu_sparse_area) == VDX_VU_SPARSE_AREA_SIZE, "sparse area");
_Static_assert(offsetof(struct vdx_vu_sparse_area, offset) == 0, "area offset at 0");
_Static_assert(offsetof(struct vdx_vu_sparse_area, size) == 8, "area size at 8");

#define VDX_VU_MAX_SPARSE_AREAS 16u /* per region; a limit of this implementation */

/* What a region-info reply describes (the encoder's input). */
struct vdx_vu_region_desc {
    uint32_t index;
    uint32_t flags; /* READ / WRITE / MMAP (CAPS is set by the encoder) */
    uint64_t size;
    uint64_t offset;   /* mmap offset in the fd; 0 when not mmappable */
    uint32_t nr_areas; /* 0: no sparse capability */
    const struct vdx_vu_sparse_area *areas;
};

/* ---- DEVICE_GET_IRQ_INFO (spec "VFIO_USER_DEVICE_GET_IRQ_INFO"; ref §2.6) -- */

/* Request and reply. */
struct vdx_vu_irq_info {
    uint32_t argsz; /* 0x00: >= 16 */
    uint32_t flags; /* 0x04: VDX_VU_IRQ_INFO_F_* (reply) */
    uint32_t index; /* 0x08 */
    uint32_t count; /* 0x0c: vectors (reply) */
};
#define VDX_VU_IRQ_INFO_SIZE 16u
_Static_assert(sizeof(struct vdx_vu_irq_info) == VDX_VU_IRQ_INFO_SIZE, "spec IRQ_INFO: 16");
_Static_assert(offsetof(struct vdx_vu_irq_info, argsz) == 0x00, "spec IRQ_INFO: argsz");
_Static_assert(offsetof(struct vdx_vu_irq_info, flags) == 0x04, "spec IRQ_INFO: flags");
_Static_assert(offsetof(struct vdx_vu_irq_info, index) == 0x08, "spec IRQ_INFO: index");
_Static_assert(offsetof(struct vdx_vu_irq_info, count) == 0x0c, "spec IRQ_INFO: count");

/* ---- DEVICE_SET_IRQS (spec "VFIO_USER_DEVICE_SET_IRQS"; ref §2.7) ---------- */

/* Request: this, then `count` u8 booleans with DATA_BOOL; argsz == payload size. */
struct vdx_vu_irq_set {
    uint32_t argsz; /* 0x00: == payload size (QEMU: 20, or 20 + count with BOOL) */
    uint32_t flags; /* 0x04: one VDX_VU_IRQ_SET_DATA_* | one VDX_VU_IRQ_SET_ACTION_* */
    uint32_t index; /* 0x08 */
    uint32_t start; /* 0x0c */
    uint32_t count; /* 0x10 */
};
#define VDX_VU_IRQ_SET_SIZE 20u
_Static_assert(sizeof(struct vdx_vu_irq_set) == VDX_VU_IRQ_SET_SIZE, "spec SET_IRQS: 20");
_Static_assert(offsetof(struct vdx_vu_irq_set, argsz) == 0x00, "spec SET_IRQS: argsz");
_Static_assert(offsetof(struct vdx_vu_irq_set, flags) == 0x04, "spec SET_IRQS: flags");
_Static_assert(offsetof(struct vdx_vu_irq_set, index) == 0x08, "spec SET_IRQS: index");
_Static_assert(offsetof(struct vdx_vu_irq_set, start) == 0x0c, "spec SET_IRQS: start");
_Static_assert(offsetof(struct vdx_vu_irq_set, count) == 0x10, "spec SET_IRQS: count");

/*
 * Decoded SET_IRQS. Rules checked by the decoder:
 *  - exactly one data type and one action, no other flag bit;
 *  - count == 0 only with DATA_NONE | ACTION_TRIGGER and start == 0 ("disable
 *    the whole index");
 *  - start + count does not wrap;
 *  - DATA_BOOL: payload is 20 + count bytes; otherwise exactly 20;
 *  - DATA_EVENTFD: nfds == count (assign fd i to vector start + i) or
 *    nfds == 0 (de-assign the vectors: QEMU's "no fd" runs); other data
 *    types carry no fd.
 * The vector range against the index's count is the server's check.
 */
struct vdx_vu_irq_set_req {
    uint32_t flags, index, start, count;
    uint32_t data;        /* the VDX_VU_IRQ_SET_DATA_* bit */
    uint32_t action;      /* the VDX_VU_IRQ_SET_ACTION_* bit */
    unsigned nfds;        /* descriptors that came with it: 0 or count */
    const uint8_t *bools; /* DATA_BOOL: count bytes in the buffer; else NULL */
};

/* ---- REGION_READ / REGION_WRITE (spec "VFIO_USER_REGION_READ"; ref §2.8) --- */

/* Request (READ: this; WRITE: this + count data bytes) and reply (READ: this +
 * count data bytes; WRITE: this). */
struct vdx_vu_region_rw {
    uint64_t offset; /* 0x00 */
    uint32_t region; /* 0x08 */
    uint32_t count;  /* 0x0c: <= max_data_xfer_size */
    /* 0x10: data */
};
#define VDX_VU_REGION_RW_SIZE 16u
#define VDX_VU_REGION_RW_DATA_OFF                                                          \
    (VDX_VU_HDR_SIZE + VDX_VU_REGION_RW_SIZE) /* in the message */
_Static_assert(sizeof(struct vdx_vu_region_rw) == VDX_VU_REGION_RW_SIZE,
               "spec REGION_RW: 16");
_Static_assert(offsetof(struct vdx_vu_region_rw, offset) == 0x00, "spec REGION_RW: offset");
_Static_assert(offsetof(struct vdx_vu_region_rw, region) == 0x08, "spec REGION_RW: region");
_Static_assert(offsetof(struct vdx_vu_region_rw, count) == 0x0c, "spec REGION_RW: count");
_Static_assert(VDX_VU_REGION_RW_DATA_OFF == 32u, "QEMU: read reply buffer is 32 + count");

struct vdx_vu_region_rw_req {
    uint64_t offset;
    uint32_t region, count;
    const uint8_t *data; /* WRITE: count bytes in the buffer; READ: NULL */
};

/* ---- Decoders (pure) ------------------------------------------------------- */

/*
 * The header from the first 16 bytes of buf. Returns 0, -ENODATA (len < 16)
 * or -EBADMSG (size < 16: the stream cannot be framed). Flags are not checked.
 */
int vdx_vu_hdr_decode(const void *buf, size_t len, struct vdx_vu_hdr *hdr);

/* VERSION payload, capabilities JSON included (defaults for absent keys). */
int vdx_vu_version_decode(const void *p, size_t len, struct vdx_vu_version_req *v);

/*
 * A capabilities JSON text of `len` bytes (no NUL needed) into *caps, which
 * the caller pre-fills with defaults. Strict JSON; the root must be an
 * object; "capabilities", if present, an object; known numeric keys
 * non-negative integers in range; max_data_xfer_size and pgsizes non-zero;
 * "write_multiple" a bool; "migration" and "twin_socket" objects.
 */
int vdx_vu_caps_parse(const char *json, size_t len, struct vdx_vu_caps *caps);

/* nfds: descriptors that came with the message (0 or 1 allowed). */
int vdx_vu_dma_map_decode(const void *p, size_t len, unsigned nfds,
                          struct vdx_vu_dma_map *m);
int vdx_vu_dma_unmap_decode(const void *p, size_t len, struct vdx_vu_dma_unmap *u);
int vdx_vu_device_info_decode(const void *p, size_t len, struct vdx_vu_device_info *req);
int vdx_vu_region_info_decode(const void *p, size_t len, struct vdx_vu_region_info *req);
int vdx_vu_irq_info_decode(const void *p, size_t len, struct vdx_vu_irq_info *req);
int vdx_vu_set_irqs_decode(const void *p, size_t len, unsigned nfds,
                           struct vdx_vu_irq_set_req *req);
/* max_xfer: the negotiated max_data_xfer_size. */
int vdx_vu_region_read_decode(const void *p, size_t len, uint32_t max_xfer,
                              struct vdx_vu_region_rw_req *rw);
int vdx_vu_region_write_decode(const void *p, size_t len, uint32_t max_xfer,
                               struct vdx_vu_region_rw_req *rw);

/* ---- Validators (pure) ----------------------------------------------------- */

/*
 * Client capabilities against the server's limits: the reply's values.
 * max_msg_fds: the server's; max_data_xfer_size, max_dma_maps: the smaller;
 * pgsizes: the common bits. Returns 0, or -EINVAL when no page size is common.
 */
int vdx_vu_caps_negotiate(const struct vdx_vu_caps *client,
                          const struct vdx_vu_caps *server, struct vdx_vu_caps *out);

/*
 * A region description a backend produced: flags only READ/WRITE/MMAP; MMAP
 * requires nothing else (the server sets it when it has an fd); at most
 * VDX_VU_MAX_SPARSE_AREAS areas, only with MMAP, each non-empty, aligned to
 * `page` (a power of two) in offset and size, inside the region, and
 * offset + area offset not wrapping. Returns 0 or -EINVAL.
 */
int vdx_vu_region_desc_check(const struct vdx_vu_region_desc *d, uint64_t page);

/* ---- Encoders -------------------------------------------------------------- */

/* Header only, flags REPLY: DMA_MAP, SET_IRQS, DEVICE_RESET replies. */
int vdx_vu_enc_empty_rep(void *buf, size_t cap, uint16_t id, uint16_t cmd);
/* Header only, flags REPLY | ERROR; err is a positive errno (else -EINVAL). */
int vdx_vu_enc_error_rep(void *buf, size_t cap, uint16_t id, uint16_t cmd, uint32_t err);

/*
 * VERSION reply with the NUL-terminated JSON
 *   {"capabilities":{"max_msg_fds":N,"max_data_xfer_size":N
 *                    [,"max_dma_maps":N][,"pgsizes":N]}}
 * where max_dma_maps and pgsizes appear only when they differ from the spec
 * defaults (QEMU reuses its request buffer, so the reply must stay short).
 */
int vdx_vu_enc_version_rep(void *buf, size_t cap, uint16_t id, uint16_t major,
                           uint16_t minor, const struct vdx_vu_caps *caps);

/* DMA_UNMAP reply: the request's 24 bytes echoed. */
int vdx_vu_enc_dma_unmap_rep(void *buf, size_t cap, uint16_t id,
                             const struct vdx_vu_dma_unmap *u);

/* DEVICE_GET_INFO reply (argsz 16). */
int vdx_vu_enc_device_info_rep(void *buf, size_t cap, uint16_t id, uint32_t flags,
                               uint32_t num_regions, uint32_t num_irqs);

/*
 * DEVICE_GET_REGION_INFO reply for a request with argsz `argsz_in` (>= 32).
 * The reply's argsz is the size the full reply needs (32, or 32 + 16 + 16 *
 * nr_areas with a sparse capability). The payload is min(argsz_in, needed)
 * bytes: when the capability does not fit, the reply is the bare struct
 * without CAPS and with cap_offset 0 (QEMU then asks again with the bigger
 * argsz). *full is set when the whole reply fit: only that reply may carry
 * the region's fd. d must pass vdx_vu_region_desc_check().
 */
int vdx_vu_enc_region_info_rep(void *buf, size_t cap, uint16_t id, uint32_t argsz_in,
                               const struct vdx_vu_region_desc *d, bool *full);

/* DEVICE_GET_IRQ_INFO reply (argsz 16). */
int vdx_vu_enc_irq_info_rep(void *buf, size_t cap, uint16_t id, uint32_t index,
                            uint32_t flags, uint32_t count);

/*
 * REGION_READ reply: header and the 16-byte struct; the caller puts the
 * `count` data bytes at buf + VDX_VU_REGION_RW_DATA_OFF (cap must hold them:
 * -EMSGSIZE otherwise). Returns 32 + count.
 */
int vdx_vu_enc_region_read_rep(void *buf, size_t cap, uint16_t id, uint64_t offset,
                               uint32_t region, uint32_t count);
/* REGION_WRITE reply: header and the 16-byte struct echoed (32 bytes). */
int vdx_vu_enc_region_write_rep(void *buf, size_t cap, uint16_t id, uint64_t offset,
                                uint32_t region, uint32_t count);

/* "VERSION", "DMA_MAP", ... or "unknown". */
const char *vdx_vu_cmd_name(uint16_t cmd);

#endif /* VFIO_DEXT_VU_PROTOCOL_H */
