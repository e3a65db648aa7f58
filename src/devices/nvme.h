/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim:nvme — a simulated NVMe SSD (one PCIe function, one namespace).
 *
 * The NVMe wire format (registers, queue entries, opcodes, status codes,
 * Identify and log structures) is nvme/nvme_spec.h, shared with the unvme
 * driver. This header has three parts of its own:
 *  1. The simulated device's programming model (identity, BAR0 layout,
 *     limits). docs/nvme.md describes the behaviour.
 *  2. Pure command parsers and validators (nvme_cmd.c): functions over
 *     buffers with lengths and no device state, so a fuzzer can call them
 *     directly. They never allocate, never log and never abort.
 *  3. The backing store (nvme_store.c): RAM (sparse anonymous memory) or a
 *     file (sparse, fdatasync on Flush/FUA).
 *
 * Byte order: NVMe is little-endian. Parsers decode byte by byte; the 4 KiB
 * data structures are filled as C structs, which nvme_spec.h allows on
 * little-endian hosts only.
 *
 * Threading: the parsers are reentrant. A struct nvme_store is not
 * thread-safe; its owner (the controller, under the dext's device lock)
 * serialises calls.
 */
#ifndef VFIO_DEXT_NVME_H
#define VFIO_DEXT_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvme/nvme_spec.h"

/* ======================================================================== */
/* 1. The simulated device                                                   */
/* ======================================================================== */

#define NVME_SIM_VENDOR_ID 0x7e57u /* made-up IDs for a simulated device */
#define NVME_SIM_DEVICE_ID 0x4e56u
#define NVME_SIM_REVISION  0x01u
#define NVME_SIM_MODEL     "vfio-dext sim:nvme"
#define NVME_SIM_FIRMWARE  "0.1"

/* Config space capabilities. */
#define NVME_SIM_CAP_PM   0x40u
#define NVME_SIM_CAP_MSIX 0x50u
#define NVME_SIM_CAP_PCIE 0x60u

/* BAR0 (64-bit, non-prefetchable): registers, doorbells, MSI-X table, PBA. */
#define NVME_SIM_BAR0_SIZE      0x4000u
#define NVME_SIM_MSIX_TABLE_OFF 0x2000u
#define NVME_SIM_MSIX_PBA_OFF   0x3000u

#define NVME_SIM_PAGE_SHIFT     12u /* CAP.MPSMIN = CAP.MPSMAX = 0 */
#define NVME_SIM_PAGE_SIZE      (1u << NVME_SIM_PAGE_SHIFT)
#define NVME_SIM_DSTRD          0u /* CAP.DSTRD: 4-byte doorbell stride */
#define NVME_SIM_LBA_SHIFT      9u /* LBAF0: 512-byte blocks */
#define NVME_SIM_LBA_SIZE       (1u << NVME_SIM_LBA_SHIFT)
#define NVME_SIM_MDTS           5u /* 2^5 pages: 128 KiB per command */
#define NVME_SIM_MAX_XFER       (NVME_SIM_PAGE_SIZE << NVME_SIM_MDTS)
#define NVME_SIM_MQES           1023u /* 0's based: 1024 entries */
#define NVME_SIM_TO             2u    /* CAP.TO: 1 s */
#define NVME_SIM_DEFAULT_QUEUES 4u
#define NVME_SIM_MAX_QUEUES     64u /* I/O queue pairs */
#define NVME_SIM_AERL           3u  /* 0's based: 4 outstanding AERs */
#define NVME_SIM_ACL            3u
#define NVME_SIM_ELPE           15u  /* 0's based: 16 error log entries */
#define NVME_SIM_TEMP_K         313u /* composite temperature, 40 C */
#define NVME_SIM_WCTEMP_K       343u
#define NVME_SIM_CCTEMP_K       358u
#define NVME_SIM_MIN_SIZE       (1024u * 1024u)
#define NVME_SIM_MAX_SIZE       (1ull << 46) /* 64 TiB */
#define NVME_SIM_MAX_SEGS       (NVME_SIM_MAX_XFER / NVME_SIM_PAGE_SIZE + 1u)

_Static_assert(NVME_SIM_PAGE_SHIFT == NVME_MPS_BASE_SHIFT + 0u, "CC.MPS = 0: 4 KiB pages");
_Static_assert(NVME_CQ_HEAD_DB(NVME_SIM_MAX_QUEUES, NVME_SIM_DSTRD) + 4u <=
                   NVME_SIM_MSIX_TABLE_OFF,
               "doorbells end before the MSI-X table");
_Static_assert(NVME_SIM_MSIX_TABLE_OFF + (NVME_SIM_MAX_QUEUES + 1u) * 16u <=
                   NVME_SIM_MSIX_PBA_OFF,
               "the MSI-X table ends before the PBA");
_Static_assert(NVME_SIM_MSIX_PBA_OFF + 16u <= NVME_SIM_BAR0_SIZE, "the PBA fits BAR0");
_Static_assert(NVME_SIM_MQES + 1u >= 2u && NVME_SIM_MQES <= NVME_CAP_MQES_MASK,
               "Base §3.1.3.1: CAP.MQES");

/* ======================================================================== */
/* 2. Pure parsers and validators (nvme_cmd.c)                              */
/* ======================================================================== */

/* A submission queue entry decoded to host order. */
struct nvme_cmd {
    uint8_t opc;
    uint8_t fuse;
    uint8_t psdt;
    uint16_t cid;
    uint32_t nsid;
    uint64_t mptr;
    uint64_t prp1;
    uint64_t prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

/* A completion to post, before the phase tag. */
struct nvme_cpl {
    uint32_t dw0;
    uint16_t sqhd;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* an NVME_SC_* value, possibly | NVME_SF_DNR */
};

/* Decode `len` bytes into *cmd. Returns 0, or -EINVAL when len < 64. */
int nvme_cmd_decode(const void *buf, size_t len, struct nvme_cmd *cmd);

/* Encode a completion with phase tag `phase` into 16 bytes at buf. Returns 0,
 * or -EINVAL when len < 16. */
int nvme_cpl_encode(const struct nvme_cpl *cpl, bool phase, void *buf, size_t len);

/* Decode 16 bytes of CQE (for tests and drivers). Returns 0 or -EINVAL. */
int nvme_cpl_decode(const void *buf, size_t len, struct nvme_cpl *cpl, bool *phase);

/* Fields no command of this device uses: FUSE (fused operations are not
 * supported) and PSDT (SGLs are not supported). NVME_SC_INVALID_FIELD or 0. */
uint16_t nvme_cmd_check_common(const struct nvme_cmd *cmd);

/* What a namespace and the controller allow. */
struct nvme_ns_limits {
    uint32_t nn;        /* namespaces: NSIDs 1..nn are valid (all active) */
    uint64_t nsze;      /* LBAs of the namespace (one namespace) */
    uint32_t lba_shift; /* log2 of the LBA size */
    uint32_t max_xfer;  /* MDTS in bytes, 0 = no limit */
};

/* A decoded Read, Write, Compare or Write Zeroes. */
struct nvme_rw {
    uint64_t slba;
    uint32_t nlb;   /* blocks, 1..65536 */
    uint64_t bytes; /* nlb << lba_shift */
    bool fua;
    bool deac; /* Write Zeroes: deallocate */
};

/*
 * Validate a Read/Write/Compare (has_data) or Write Zeroes (!has_data)
 * against the namespace, in the specification's order:
 * Invalid Field (FUSE, PSDT, DTYPE set), Invalid Namespace or Format (NSID
 * not an active namespace), Invalid Field (data transfer beyond MDTS), LBA
 * Out of Range (SLBA + NLB beyond NSZE, overflow included). Returns 0 or
 * that status.
 */
uint16_t nvme_rw_parse(const struct nvme_cmd *cmd, const struct nvme_ns_limits *lim,
                       bool has_data, struct nvme_rw *rw);

/* Flush: NSID must be an active namespace or FFFFFFFFh. */
uint16_t nvme_flush_check(const struct nvme_cmd *cmd, const struct nvme_ns_limits *lim);

/* Dataset Management command fields: number of ranges and the byte length of
 * the range list. Status as nvme_rw_parse (no MDTS: the list is <= 4 KiB). */
uint16_t nvme_dsm_parse(const struct nvme_cmd *cmd, const struct nvme_ns_limits *lim,
                        unsigned *nr, size_t *list_len, bool *deallocate);

/* Decode range i of a Dataset Management range list. Returns 0,
 * -EINVAL (list too short). */
int nvme_dsm_range(const void *list, size_t len, unsigned i, uint64_t *slba, uint32_t *nlb);

/* Check every range of a list against the namespace: LBA Out of Range when
 * SLBA + NLB exceeds NSZE (ranges with NLB 0 are ignored). 0 or status. */
uint16_t nvme_dsm_check(const void *list, size_t len, unsigned nr, uint64_t nsze);

/* One physically contiguous piece of a data buffer. */
struct nvme_seg {
    uint64_t addr;
    uint32_t len;
};

/* Reads `len` bytes of host memory at `addr` (a PRP list). Returns 0 or
 * -EFAULT. */
typedef int (*nvme_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

/*
 * Turn PRP1/PRP2 for a transfer of `len` bytes (1..) into segments, reading
 * PRP lists through `rd` (Base §4.1.1 "Physical Region Page Entry and List",
 * with a NVME_SIM_PAGE_SIZE memory page):
 *  - PRP1 may carry a page offset, which must be dword aligned;
 *  - if the rest fits one page, PRP2 is that page (offset 0);
 *  - else PRP2 points to a PRP list (qword aligned, any offset in its page);
 *    the last entry of a list page points to the next list page (offset 0).
 * `scratch` holds `scratch_entries` (>= 1) list entries for reading lists.
 * Work is bounded by the pages of the transfer, whatever the list holds.
 * Returns 0 with segs[0..*nsegs), NVME_SC_INVALID_PRP_OFFSET,
 * NVME_SC_DATA_XFER_ERROR (rd failed), or NVME_SC_INVALID_FIELD (len 0 or
 * more segments than max_segs).
 */
uint16_t nvme_prp_map(uint64_t prp1, uint64_t prp2, uint64_t len, nvme_read_fn rd,
                      void *ctx, uint64_t *scratch, size_t scratch_entries,
                      struct nvme_seg *segs, unsigned max_segs, unsigned *nsegs);

/*
 * Merge bus-contiguous neighbours of segs[0..n) in place (a segment that ends
 * where the next one starts absorbs it), keeping their order, so one DMA moves
 * each run. A run never wraps past the top of the bus address space, and
 * never grows beyond UINT32_MAX bytes. Returns the new count (<= n).
 */
unsigned nvme_seg_merge(struct nvme_seg *segs, unsigned n);

/* Limits the controller applies to queue creation. */
struct nvme_queue_limits {
    uint16_t max_qid; /* highest I/O queue id allowed (allocated queues) */
    uint32_t mqes;    /* CAP.MQES, 0's based */
    uint32_t nvec;    /* interrupt vectors (MSI-X table size) */
    uint32_t page_size;
};

struct nvme_create_q {
    uint16_t qid;
    uint32_t size; /* entries (not 0's based) */
    uint64_t base;
    bool ien;      /* CQ: interrupts enabled */
    uint16_t iv;   /* CQ: interrupt vector */
    uint16_t cqid; /* SQ: completion queue */
};

/*
 * Create I/O Completion / Submission Queue fields (Base §5.4, §5.5):
 * Invalid Queue Identifier (QID 0 or above max_qid), Invalid Queue Size
 * (QSIZE 0, i.e. one entry, or above MQES), Invalid Field (PC = 0: CAP.CQR
 * requires contiguous queues), Invalid PRP Offset (base not page aligned),
 * Invalid Interrupt Vector (CQ, IEN set, IV >= nvec), Completion Queue
 * Invalid (SQ, CQID 0). Whether the queue ids are in use is the caller's.
 */
uint16_t nvme_create_cq_parse(const struct nvme_cmd *cmd, const struct nvme_queue_limits *l,
                              struct nvme_create_q *q);
uint16_t nvme_create_sq_parse(const struct nvme_cmd *cmd, const struct nvme_queue_limits *l,
                              struct nvme_create_q *q);

struct nvme_get_log {
    uint8_t lid;
    bool rae;        /* retain asynchronous event */
    uint64_t offset; /* bytes */
    uint64_t len;    /* bytes */
};

/* Get Log Page fields (Base §5.16): Invalid Field when the offset is not
 * dword aligned or the length exceeds max_len. */
uint16_t nvme_get_log_parse(const struct nvme_cmd *cmd, uint32_t max_len,
                            struct nvme_get_log *log);

/* Controller enable check (Base §3.5.1 "Controller Initialization"): the CC
 * fields and admin queue registers a controller with capabilities `cap` can
 * run with: CSS the NVM command set (or admin only when CAP.CSS says so),
 * MPS within MPSMIN..MPSMAX, AMS round robin, IOSQES = 6, IOCQES = 4, admin
 * queues of 2..4096 entries, ASQ and ACQ programmed (non-zero, page
 * aligned). Returns true when valid. */
bool nvme_cc_valid(uint32_t cc, uint64_t cap, uint32_t aqa, uint64_t asq, uint64_t acq);

/* Doorbell decode: offset within BAR0 -> queue id and kind. Returns 0, or
 * -EINVAL when off is not a dword doorbell in [DBS, DBS + 4 KiB). */
int nvme_db_decode(uint64_t off, uint16_t *qid, bool *is_cq);

/* A new CQ head is valid if it is inside the queue and does not pass the
 * tail, i.e. it only releases entries the controller posted. */
bool nvme_cq_head_valid(uint32_t size, uint32_t head, uint32_t tail, uint32_t new_head);

/* SMART data units: thousands of 512-byte units, rounded up (Base Figure
 * 207, Data Units Read). */
uint64_t nvme_data_units(uint64_t units_512);

/* Write a 128-bit little-endian counter (lo only) into 16 bytes. */
void nvme_put_u128(uint8_t out[16], uint64_t lo);

/* Copy `s` space padded into an ASCII field of `len` bytes (no NUL). */
void nvme_put_ascii(char *field, size_t len, const char *s);

/* ======================================================================== */
/* 3. Backing store (nvme_store.c)                                           */
/* ======================================================================== */

struct nvme_store;

/*
 * Open a backing store of `size` bytes (a multiple of 512). path NULL: RAM,
 * an anonymous MAP_NORESERVE mapping that costs nothing until written.
 * Otherwise a regular file, created (mode 0600) if absent and extended
 * sparsely to `size` if shorter (never truncated), locked exclusively
 * (flock) so that two devices cannot share it.
 * Returns 0 and *out, or -errno with a message in err: -EINVAL (size),
 * -EBUSY (file locked by another user), -ENOMEM, or the open/ftruncate error.
 */
int nvme_store_open(const char *path, uint64_t size, struct nvme_store **out, char *err,
                    size_t errlen);

/* fdatasync (file) and free everything. Accepts NULL. */
void nvme_store_close(struct nvme_store *s);

/* Size of an existing file, 0 if it does not exist. Returns 0 or -errno. */
int nvme_store_file_size(const char *path, uint64_t *size);

/* Byte I/O within the store; callers checked the range. Returns 0, -EINVAL
 * (outside the store) or -EIO/-ENOSPC/-errno from the file. */
int nvme_store_read(struct nvme_store *s, uint64_t off, void *buf, size_t len);
int nvme_store_write(struct nvme_store *s, uint64_t off, const void *buf, size_t len);

/*
 * The bytes [off, off + len) of a RAM store, for DMA straight between the
 * medium and host memory without a bounce copy; valid until
 * nvme_store_close() (zeroing keeps the mapping). NULL for a file store (use
 * nvme_store_read/write) and for a range outside the store.
 */
uint8_t *nvme_store_ptr(struct nvme_store *s, uint64_t off, uint64_t len);

/* Make [off, off + len) read back as zeros, releasing the space where the
 * store can (hole punching, MADV_DONTNEED). Returns 0 or -errno. */
int nvme_store_zero(struct nvme_store *s, uint64_t off, uint64_t len);

/* Make every completed write durable (fdatasync; RAM: no-op). 0 or -errno. */
int nvme_store_sync(struct nvme_store *s);

/* Whether writes can sit in a volatile cache that nvme_store_sync() empties
 * (the file's page cache). RAM has none: its data is the volatile medium. */
bool nvme_store_has_volatile_cache(const struct nvme_store *s);
/*
 * Whether zeroing costs no writes (RAM, or a file system that punches holes).
 * Without it Dataset Management deallocate is advisory (a no-op): otherwise
 * one command of 256 ranges, each the size of the namespace, would write
 * 256 namespaces of zeros — a guest could stall the device for hours.
 */
bool nvme_store_cheap_zero(const struct nvme_store *s);

/* ======================================================================== */
/* The kind (registered in devices.c)                                        */
/* ======================================================================== */

struct simpci_kind;
extern const struct simpci_kind simpci_kind_nvme;

#endif /* VFIO_DEXT_NVME_H */
