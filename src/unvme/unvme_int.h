/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * unvme internals shared by its .c files: the controller and queue structs,
 * register access, DMA regions and the queue engine. Not a public header.
 *
 * Memory layout of one queue's DMA region (one vdx_shm_alloc block, one
 * registered region, so bus addresses are base + offset):
 *
 *   [SQ ring][CQ ring][nslots PRP list pages][nslots data buffers]
 *
 * each part page aligned; a data buffer is max_xfer + one page, so
 * max_xfer bytes fit at any page offset.
 */
#ifndef VFIO_DEXT_UNVME_INT_H
#define VFIO_DEXT_UNVME_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "unvme/unvme.h"

#define UNVME_ADMIN_SLOTS 4u
#define UNVME_BAR 0u

/* One shared-memory block registered with the dext for DMA. */
struct unvme_dma {
    void *va;
    uint64_t size;
    uint64_t key;  /* the IOVA key given to vdx_register_dma */
    uint64_t bus;  /* bus address of va */
    bool registered;
};

/* Slot states. A slot is one CID and one data buffer. */
enum unvme_slot_state {
    SLOT_FREE = 0,
    SLOT_HELD,     /* zero-copy buffer owned by the caller, not in flight */
    SLOT_BUSY,     /* command in flight (owned by the controller) */
    SLOT_DONE,     /* completion reaped, kept in `cpl` for unvme_poll */
    SLOT_TIMEDOUT, /* its waiter gave up: drop the completion when it comes */
};

struct unvme_slot {
    uint8_t state;
    bool zc;          /* buffer is the caller's (return to HELD, not FREE) */
    bool copy_out;    /* copy the data to `rbuf` on success */
    bool sync;        /* a synchronous waiter consumes the completion itself */
    uint32_t off;     /* data offset in the slot buffer */
    uint32_t len;
    void *rbuf;
    void *cookie;
    struct unvme_cpl cpl;
};

struct unvme_queue {
    struct unvme *u;
    uint16_t qid;
    uint16_t depth;       /* SQ and CQ entries */
    uint16_t vector;
    uint16_t nslots;      /* depth - 1 at most */
    struct unvme_dma dma;
    struct nvme_sqe *sq;
    struct nvme_cqe *cq;
    uint64_t sq_bus, cq_bus;
    uint64_t *prp;        /* nslots list pages */
    uint64_t prp_bus;
    uint8_t *data;        /* nslots buffers of `stride` bytes */
    uint64_t data_bus;
    uint32_t stride;
    uint32_t sq_db, cq_db; /* doorbell offsets in BAR0 */
    uint16_t sq_tail;     /* next SQE to write */
    uint16_t sq_rung;     /* tail value last written to the doorbell */
    uint16_t cq_head;
    uint8_t phase;        /* expected phase tag */
    bool cq_dirty;        /* CQ head moved since the last doorbell */
    bool created;         /* exists on the controller */
    unsigned inflight;    /* submitted and not yet returned to the caller */
    struct unvme_slot *slots;
    uint16_t *free;       /* stack of free slot indices */
    uint16_t nfree;
    uint16_t *done;       /* FIFO of SLOT_DONE slots (ring of nslots) */
    uint16_t done_head, ndone;
    struct vdx_ratelimit bad_cqe_rl; /* completions naming no command in flight */
};

struct unvme {
    struct vdx_conn *conn;
    struct unvme_opts opts;
    struct unvme_info info;
    char bdf[16];
    uint32_t dstrd;            /* CAP.DSTRD */
    uint64_t bar_size;         /* BAR0 bytes */
    uint64_t ready_timeout_ms; /* CAP.TO */
    uint64_t next_key;         /* next free DMA key */
    struct dext_irq_page *irq_page;
    struct vdx_notify *notify;
    pthread_mutex_t admin_lock;
    struct unvme_queue admin;
    struct unvme_queue io[UNVME_MAX_IO_QUEUES];
    bool dead;                 /* the dext went away */
};

/* ---- unvme.c: registers and errors ---- */

int unvme_errno(dext_status st);
int unvme_reg_read32(struct unvme *u, uint32_t off, uint32_t *val);
int unvme_reg_write32(struct unvme *u, uint32_t off, uint32_t val);
int unvme_reg_write64(struct unvme *u, uint32_t off, uint64_t val);
void unvme_logf(const struct unvme *u, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- unvme_queue.c: queue memory and the command engine ---- */

/* Allocate and register the queue's region; fills the layout. -errno. */
int unvme_queue_alloc(struct unvme *u, struct unvme_queue *q, uint16_t qid, uint16_t depth,
                      uint16_t nslots, uint32_t max_xfer);
/* Unregister and free (the controller must no longer use it). NULL-safe. */
void unvme_queue_free(struct unvme *u, struct unvme_queue *q);
/* Zero the rings and ring state for a fresh (re)creation. */
void unvme_queue_reset_rings(struct unvme_queue *q);
/* Reset: keep reaped completions, cancel the rest (see unvme_reset_controller). */
void unvme_queue_cancel_all(struct unvme_queue *q);

/* Take a free slot for a synchronous command. -EBUSY. */
int unvme_slot_take(struct unvme_queue *q);
/*
 * Queue cmd in slot `s` with data [off, off + len) of the slot buffer
 * (len 0: none). Sets CID and PRPs. The slot must be taken or held.
 */
void unvme_sq_push(struct unvme_queue *q, uint16_t s, const struct nvme_sqe *cmd,
                   uint32_t off, uint32_t len);
/*
 * Synchronous completion of slot s: kick, then reap until s completes or
 * timeout_ms passes (slot marked SLOT_TIMEDOUT, -ETIMEDOUT). On 0 the slot's
 * cpl is filled and the slot is freed (or held, for zero-copy).
 */
int unvme_wait_slot(struct unvme_queue *q, uint16_t s, unsigned timeout_ms,
                    struct unvme_cpl *cpl);
/* Run an admin command synchronously (copy variant); caller holds admin_lock. */
int unvme_admin_locked(struct unvme *u, const struct nvme_sqe *cmd, void *data, size_t len,
                       unsigned timeout_ms, struct unvme_cpl *cpl);
/* Data buffer of slot s. */
static inline uint8_t *unvme_slot_buf(struct unvme_queue *q, uint16_t s)
{
    return q->data + (size_t)s * q->stride;
}

/* ---- unvme_admin.c ---- */

int unvme_create_io_queue(struct unvme *u, struct unvme_queue *q);
int unvme_delete_io_queue(struct unvme *u, struct unvme_queue *q, unsigned timeout_ms);
/* Set Features Number of Queues; *granted = min(NSQA, NCQA) + 1. */
int unvme_set_num_queues(struct unvme *u, unsigned want, unsigned *granted);
/* Identify Controller and the namespace into u->info. */
int unvme_identify_all(struct unvme *u);
/* Parse Identify Controller / Namespace data (4096 bytes) into *info: pure
 * functions over the buffer. -EINVAL when the data is unusable. */
int unvme_parse_id_ctrl(const uint8_t *buf, struct unvme_info *info);
int unvme_parse_id_ns(const uint8_t *buf, struct unvme_info *info);
/* Status of a completion as the public convention wants it. */
int unvme_status_out(const struct unvme_cpl *cpl, uint16_t *status);

#endif /* VFIO_DEXT_UNVME_INT_H */
