/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * unvme: a small user-space NVMe driver over the vfio-dext client library.
 *
 * It drives an NVMe controller (PCI class 01:08:02, registers in BAR0) that a
 * dext owns, through a connection from vdx_connect(): MMIO for registers and
 * doorbells, DMA memory from vdx_shm_alloc() + vdx_register_dma(), interrupts
 * through the dext's IRQ state page or its notification fd. See docs/unvme.md.
 *
 * Objects
 *   struct unvme        one controller: the admin queue, namespace 1, and
 *                       `io_queues` I/O queue pairs created at open.
 *   struct unvme_queue  one I/O queue pair (SQ + CQ with its own MSI-X vector)
 *                       with a private pool of DMA data buffers ("slots"):
 *                       one slot per command that can be in flight, each with
 *                       room for max_xfer bytes at any page offset and its own
 *                       PRP list page. Nothing is allocated on the I/O path.
 *
 * Errors (one convention): functions return 0 (or a count) on success and a
 * negative errno when the driver could not do what was asked:
 *   -EINVAL     bad argument (documented per function)
 *   -ENOMEM     memory or DMA space could not be had (open only)
 *   -EBUSY      every slot of the queue is in use
 *   -ETIMEDOUT  the controller did not answer in time (a register wait or a
 *               command's completion); the command stays owned by the
 *               controller until unvme_reset_controller()
 *   -EIO        the controller reported a fatal status (CSTS.CFS), or a
 *               command completed with an error and the caller gave no
 *               status out-parameter
 *   -ENODEV     the dext or the device went away (every call fails from then on
 *               except unvme_close)
 *   -ECANCELED  (completions only) the command was aborted by a reset
 * The NVMe completion status is a separate out-parameter, so "the command ran
 * and the controller refused it" (status != 0, return 0) is told apart from
 * "the driver failed" (return < 0).
 *
 * Status values: Status Code Type << 8 | Status Code of the completion, the
 * encoding of NVME_STATUS(SCT, SC) and of the NVME_SC_* constants of
 * nvme/nvme_spec.h (Base 2.0 §3.3.3.2, Status Field Definition); 0 is
 * success. DNR is reported separately (unvme_cpl.dnr).
 *
 * Threading: the admin queue is serialised by a mutex, so the admin helpers
 * may be called from any thread. An I/O queue belongs to one thread at a time
 * (no lock on the I/O path); use one queue per thread. unvme_reset_controller()
 * and unvme_close() must not run while another thread uses a queue.
 */
#ifndef VFIO_DEXT_UNVME_H
#define VFIO_DEXT_UNVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvme/nvme_spec.h"
#include "vfio-dext/client.h"

#ifdef __cplusplus
extern "C" {
#endif

struct unvme;
struct unvme_queue;

/* ---- Memory pages ---------------------------------------------------------- */

/* The driver runs the controller with CC.MPS = 0: 4 KiB memory pages, so one
 * PRP list page holds 512 entries. */
#define UNVME_PAGE_SHIFT    NVME_MPS_BASE_SHIFT
#define UNVME_PAGE_SIZE     (1u << UNVME_PAGE_SHIFT)
#define UNVME_PRPS_PER_PAGE (UNVME_PAGE_SIZE / NVME_PRP_ENTRY_SIZE)

/* ---- Opening ---------------------------------------------------------------- */

/* How the synchronous helpers (and unvme_wait) wait for a completion. */
enum unvme_wait_mode {
    UNVME_WAIT_POLL = 0, /* spin on the CQ phase tag (no syscalls) */
    UNVME_WAIT_IRQ,      /* spin on the queue's vector bit in the mapped IRQ
                            state page, then reap (no syscalls) */
    UNVME_WAIT_NOTIFY,   /* sleep in poll(2) on the dext's notification fd;
                            all queues must then be driven from one thread */
};

struct unvme_opts {
    unsigned io_queues;    /* I/O queue pairs wanted (default 1; at most
                              UNVME_MAX_IO_QUEUES); fewer are created when
                              the controller grants fewer */
    unsigned queue_depth;  /* entries per I/O SQ and CQ (default 64, at least
                              2, capped at CAP.MQES + 1); depth - 1 commands
                              can be in flight per queue */
    unsigned admin_depth;  /* admin SQ/CQ entries (default 32, 2..4096) */
    uint32_t max_xfer;     /* cap on bytes per command (default 1 MiB); the
                              driver uses min(this, MDTS, 2 MiB), rounded
                              down to 4 KiB */
    uint64_t iova_base;    /* first DMA key (identity mode: bus address) of
                              the driver's regions; default 1 GiB. The keys
                              used are [iova_base, iova_base + unvme_dma_span) */
    uint32_t nsid;         /* namespace for the I/O helpers (default 1) */
    unsigned timeout_ms;   /* per-command timeout (default 5000) */
    enum unvme_wait_mode wait;
};

#define UNVME_MAX_IO_QUEUES 64u
#define UNVME_MAX_XFER_CAP  (2u << 20)

/* Fill *opts with the defaults above. */
void unvme_opts_default(struct unvme_opts *opts);

/*
 * Bring the controller up (Base 2.0 §3.5.1): claim the device, check it is
 * an NVMe controller with a 64-bit BAR0, disable it (CC.EN = 0, wait
 * CSTS.RDY = 0 for CAP.TO), allocate and register the admin queues, program
 * AQA/ASQ/ACQ and CC (4 KiB pages, 64/16-byte entries, NVM command set),
 * wait CSTS.RDY = 1 (CFS or CAP.TO -> error), set up interrupts, Identify
 * Controller and Namespace `nsid`, Set Features Number of Queues, and create
 * the I/O queue pairs (queue i has qid i + 1, interrupts enabled, MSI-X vector
 * i + 1; the admin CQ uses vector 0).
 *
 * `conn` stays the caller's: it must outlive the driver and must not be used
 * for interrupts by anyone else (the driver owns this client's interrupts).
 * opts may be NULL (defaults).
 *
 * Returns 0 and *out, or -EINVAL (not an NVMe controller, bad opts, MQES or
 * page size unusable, namespace inactive or formatted with metadata),
 * -ENOMEM, -ETIMEDOUT, -EIO (CSTS.CFS, or an admin command failed; the
 * reason is logged with the BDF), -ENODEV. On error nothing is left behind
 * (the controller is left disabled).
 */
int unvme_open(struct vdx_conn *conn, const struct unvme_opts *opts, struct unvme **out);

/*
 * Delete the I/O queues, request a normal shutdown (CC.SHN, wait CSTS.SHST
 * for CAP.TO), disable the controller, unregister and free every DMA region.
 * Best effort against a dead controller; never blocks longer than the
 * timeouts. Outstanding commands are dropped. NULL ok. The connection stays
 * open (the caller's).
 */
void unvme_close(struct unvme *u);

/* What the driver learned at open, and one counter. Strings are
 * NUL-terminated, trailing spaces removed. */
struct unvme_info {
    uint64_t cap;           /* CAP register */
    uint32_t vs;            /* VS register */
    uint16_t vid;           /* PCI vendor id (Identify) */
    char serial[NVME_SN_LEN + 1];
    char model[NVME_MN_LEN + 1];
    char firmware[NVME_FR_LEN + 1];
    uint8_t mdts;           /* Identify MDTS (0: no limit) */
    uint32_t mdts_bytes;    /* 0: no limit */
    uint32_t max_xfer;      /* bytes per command the driver allows */
    uint16_t oncs;          /* optional NVM commands supported */
    bool vwc;               /* a volatile write cache is present */
    uint32_t nn;            /* namespaces */
    uint32_t mqes;          /* CAP.MQES + 1: max entries per queue */
    uint32_t nsid;
    uint64_t nsze;          /* namespace size in logical blocks */
    uint32_t lba_size;      /* bytes */
    unsigned io_queues;     /* created */
    unsigned queues_granted;/* I/O queue pairs the controller allocated */
    unsigned queue_depth;   /* entries per I/O queue */
    unsigned vectors;       /* interrupt vectors the dext set up */
    uint64_t bad_completions; /* CQ entries naming no command in flight (a
                                 controller bug): skipped and logged; read
                                 with __atomic_load_n */
};

const struct unvme_info *unvme_info(const struct unvme *u);

/* Bytes of DMA key space the driver uses from opts.iova_base (after open). */
uint64_t unvme_dma_span(const struct unvme *u);

/* I/O queue i (0 .. info.io_queues - 1), or NULL. */
struct unvme_queue *unvme_queue(struct unvme *u, unsigned i);
uint16_t unvme_queue_id(const struct unvme_queue *q);

/*
 * Controller reset for error recovery (Base 2.0 §3.7.2): disable
 * (CC.EN = 0, wait RDY = 0), reap what the controller had completed, cancel
 * every other outstanding command (each is returned once by unvme_poll /
 * unvme_wait with err = -ECANCELED; timed-out commands are forgotten), then
 * re-enable, re-issue Set Features Number of Queues and re-create the same I/O
 * queues. Queue pointers stay valid; zero-copy buffers held stay held.
 * Returns 0 or -errno as unvme_open. After a failure the driver is unusable
 * until a reset succeeds.
 */
int unvme_reset_controller(struct unvme *u);

/* ---- Admin commands (synchronous, any thread) -------------------------------- */

/*
 * Run a raw admin command. The driver sets CID and, when len > 0, PRP1/PRP2
 * (data in its admin buffer; direction from opcode bits 1:0: 01 host to
 * controller copies `data` in, 10 controller to host copies it out; for 11
 * both). len <= info.max_xfer. *dw0 (may be NULL) gets completion DW0.
 * status: as described at the top (may be NULL: a non-zero status is -EIO).
 * Returns 0, -EINVAL, -ETIMEDOUT, -ENODEV, -EIO.
 */
int unvme_admin(struct unvme *u, const struct nvme_sqe *cmd, void *data, size_t len,
                uint32_t *dw0, uint16_t *status);

/* Identify (CNS, NSID, CNTID) into buf (4096 bytes). */
int unvme_identify(struct unvme *u, uint8_t cns, uint32_t nsid, uint16_t cntid,
                   void *buf, uint16_t *status);

/* Get Log Page `lid` for nsid (0xffffffff: controller) from byte `offset`
 * (a multiple of 4) into buf; len a multiple of 4, 4 .. max_xfer. */
int unvme_get_log_page(struct unvme *u, uint8_t lid, uint32_t nsid, uint64_t offset,
                       void *buf, size_t len, uint16_t *status);

/* Get Features `fid` (SEL = current) with CDW11 = cdw11; *dw0 gets the value. */
int unvme_get_features(struct unvme *u, uint8_t fid, uint32_t cdw11, uint32_t *dw0,
                       uint16_t *status);

/* Set Features `fid` to CDW11 = value (save: SV bit); *dw0 (may be NULL) gets
 * completion DW0. Features with a data buffer: use unvme_admin(). */
int unvme_set_features(struct unvme *u, uint8_t fid, uint32_t value, bool save,
                       uint32_t *dw0, uint16_t *status);

/* ---- Synchronous I/O on one queue --------------------------------------------
 * nlb is in logical blocks (1 .. 65536) of info.lba_size bytes; data
 * transfers must fit in info.max_xfer (split larger ones). buf may have any
 * alignment: the data is placed at the same offset within a 4 KiB page as
 * buf's (rounded down to a dword), so unaligned buffers give a PRP1 with an
 * offset, as a zero-copy driver would. Each waits up to opts.timeout_ms.
 * Returns 0 (see *status), -EINVAL, -EBUSY, -ETIMEDOUT, -ENODEV, -EIO.
 * Completions of other commands found while waiting are kept for unvme_poll.
 */
int unvme_read(struct unvme_queue *q, uint64_t slba, uint32_t nlb, void *buf,
               uint16_t *status);
int unvme_write(struct unvme_queue *q, uint64_t slba, uint32_t nlb, const void *buf,
                uint16_t *status);
int unvme_compare(struct unvme_queue *q, uint64_t slba, uint32_t nlb, const void *buf,
                  uint16_t *status);
int unvme_flush(struct unvme_queue *q, uint16_t *status);
/* deallocate: set DEAC (the blocks may be deallocated; they read as zeroes). */
int unvme_write_zeroes(struct unvme_queue *q, uint64_t slba, uint32_t nlb, bool deallocate,
                       uint16_t *status);
/* Dataset Management, one range, Deallocate attribute. nlb 1 .. 2^32 - 1. */
int unvme_dsm_deallocate(struct unvme_queue *q, uint64_t slba, uint32_t nlb,
                         uint16_t *status);

/*
 * Run a raw I/O command on q synchronously: as unvme_admin (the driver sets
 * CID and the data pointer when len > 0). NSID and everything else are the
 * caller's, so tests can send what the spec calls invalid.
 */
int unvme_io_raw(struct unvme_queue *q, const struct nvme_sqe *cmd, void *data, size_t len,
                 uint32_t *dw0, uint16_t *status);

/* ---- Asynchronous I/O ---------------------------------------------------------
 * Submit queues a command in the SQ; the doorbell is rung by unvme_kick() (or
 * by unvme_poll/unvme_wait), so a batch of commands costs one doorbell write.
 * Completions come back from unvme_poll() in any order with the caller's
 * cookie. The driver keeps no timer: a caller that waits with unvme_wait()
 * gets -ETIMEDOUT and should reset the controller.
 */

/* One completion. */
struct unvme_cpl {
    void *cookie;     /* as given at submission */
    void *buf;        /* zero-copy: the buffer given at submission; else NULL */
    uint32_t dw0;     /* completion DW0 */
    uint16_t status;  /* NVME_STATUS(SCT, SC), an NVME_SC_* value; 0: success */
    bool dnr;         /* Do Not Retry */
    int err;          /* 0: the controller completed it (see status);
                         -ECANCELED: aborted by unvme_reset_controller() */
};

/* Build the SQE of an NVM command (CID and PRPs are the driver's):
 * opcode, nsid, SLBA in CDW10/11 and NLB - 1 in CDW12 (nlb 1 .. 65536). */
void unvme_cmd_rw(struct nvme_sqe *cmd, uint8_t opc, uint32_t nsid, uint64_t slba,
                  uint32_t nlb);

/*
 * Copy variant. `data`/`len` as the synchronous helpers: for commands
 * transferring to the controller the data is copied into the slot now; for
 * reads it is copied to `data` when the completion is reaped, so `data` must
 * stay valid until then. len may be 0 (no data pointer). Returns 0, -EINVAL
 * (len > max_xfer), -EBUSY (no free slot).
 */
int unvme_submit_io(struct unvme_queue *q, const struct nvme_sqe *cmd, void *data,
                    size_t len, void *cookie);

/*
 * Zero-copy variant. unvme_buf_alloc reserves a slot and returns a pointer
 * into its DMA buffer at page offset `page_off` (a multiple of 4 below 4096)
 * with room for max_xfer bytes; the caller fills or reads it in place and may
 * reuse it for any number of commands (one at a time) until unvme_buf_free.
 * unvme_submit_buf sends cmd with the data at [buf, buf + len). Completions
 * carry buf in cpl.buf. Returns 0, -EINVAL (not a held buffer, len too
 * large, or the buffer is already in flight), -EBUSY (no free slot).
 */
int unvme_buf_alloc(struct unvme_queue *q, unsigned page_off, void **buf);
int unvme_submit_buf(struct unvme_queue *q, const struct nvme_sqe *cmd, void *buf,
                     size_t len, void *cookie);
/* Give the slot back (must not be in flight; else -EBUSY). NULL ok. */
int unvme_buf_free(struct unvme_queue *q, void *buf);

/* Ring the SQ tail doorbell if commands were queued since. 0 or -ENODEV. */
int unvme_kick(struct unvme_queue *q);

/*
 * Non-blocking step: kick, then return up to max completions (first those
 * kept by a synchronous wait or a reset, then new CQ entries, found by phase
 * tag) and ring the CQ head doorbell once. Returns the number (>= 0) or
 * -ENODEV.
 */
int unvme_poll(struct unvme_queue *q, struct unvme_cpl *cpls, unsigned max);

/*
 * Poll until at least min (1 .. max) completions were returned, waiting the
 * way opts.wait says. Returns the number found: >= min, or fewer when
 * timeout_ms passed (then -ETIMEDOUT if none at all); -EINVAL, -ENODEV.
 */
int unvme_wait(struct unvme_queue *q, struct unvme_cpl *cpls, unsigned min, unsigned max,
               unsigned timeout_ms);

/* Commands submitted on q and not yet returned by unvme_poll. */
unsigned unvme_inflight(const struct unvme_queue *q);

/* ---- PRP construction (exposed for unit tests) ----------------------------- */

/*
 * Describe the bus-contiguous data [bus, bus + len) with PRPs (Base 2.0
 * §4.1.1): PRP1 = bus (any dword offset); PRP2 = 0 when the data ends in the
 * first page, the second page when it ends there, else `list_bus`, whose page
 * `list` gets one entry per further page. len 1 .. 2 MiB, bus dword aligned,
 * list_bus page aligned. Returns the number of list entries written, or -EINVAL.
 * Pure function.
 */
int unvme_prp_build(uint64_t bus, size_t len, uint64_t *list, uint64_t list_bus,
                    uint64_t *prp1, uint64_t *prp2);

#ifdef __cplusplus
}
#endif

#endif /* VFIO_DEXT_UNVME_H */
