/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * unvme: queue memory, PRPs and the command engine (submit, doorbells, reap
 * by phase tag, completion delivery, waiting). Nothing here allocates after
 * unvme_queue_alloc(); the hot path is plain memory accesses plus the
 * doorbell MMIO writes.
 *
 * Slot life cycle (struct unvme_slot.state):
 *   FREE -> BUSY (submitted) -> DONE (reaped; in the `done` FIFO unless a
 *   synchronous waiter takes it) -> FREE, or HELD for zero-copy buffers.
 *   BUSY -> TIMEDOUT when a synchronous waiter gives up; its completion, if
 *   it ever comes, only frees the slot.
 * A slot is one CID, so at most nslots (< depth) commands are in flight: the
 * SQ and the CQ can never overflow.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "unvme/unvme_int.h"

#define PAGE_MASK ((uint64_t)UNVME_PAGE_SIZE - 1u)
#define KEY_ALIGN (2ull << 20) /* regions start on 2 MiB key boundaries */
#define SPINS_PER_CLOCK 64u
#define SPINS_BEFORE_YIELD 4096u

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield" ::: "memory")
#else
#define cpu_relax() __asm__ volatile("" ::: "memory")
#endif

static uint64_t round_page(uint64_t n)
{
    return (n + PAGE_MASK) & ~PAGE_MASK;
}

/* ---- PRPs (Base 2.0 §4.1.1) ----------------------------------------------------- */

int unvme_prp_build(uint64_t bus, size_t len, uint64_t *list, uint64_t list_bus,
                    uint64_t *prp1, uint64_t *prp2)
{
    uint64_t first = UNVME_PAGE_SIZE - (bus & PAGE_MASK);
    uint64_t next = (bus & ~PAGE_MASK) + UNVME_PAGE_SIZE;
    uint64_t rest, n;

    if (len == 0 || len > UNVME_MAX_XFER_CAP || (bus & 3u) || (list_bus & PAGE_MASK)) {
        return -EINVAL;
    }
    *prp1 = bus;
    if (len <= first) {
        *prp2 = 0;
        return 0;
    }
    rest = len - first;
    if (rest <= UNVME_PAGE_SIZE) {
        *prp2 = next;
        return 0;
    }
    n = (rest + PAGE_MASK) / UNVME_PAGE_SIZE; /* <= 512: one list page, no chaining */
    for (uint64_t i = 0; i < n; i++) {
        list[i] = next + i * UNVME_PAGE_SIZE;
    }
    *prp2 = list_bus;
    return (int)n;
}

/* ---- Queue memory ---------------------------------------------------------------- */

static void free_host_arrays(struct unvme_queue *q)
{
    free(q->slots);
    free(q->free);
    free(q->done);
    q->slots = NULL;
    q->free = NULL;
    q->done = NULL;
}

static int alloc_host_arrays(struct unvme_queue *q)
{
    q->slots = calloc(q->nslots, sizeof(*q->slots));
    q->free = calloc(q->nslots, sizeof(*q->free));
    q->done = calloc(q->nslots, sizeof(*q->done));
    if (!q->slots || !q->free || !q->done) {
        free_host_arrays(q);
        return -ENOMEM;
    }
    return 0;
}

/* Allocate and register `size` bytes under the next free key. */
static int dma_alloc(struct unvme *u, struct unvme_dma *d, uint64_t size)
{
    uint64_t bus = 0, bus_len = 0;
    dext_status st;

    st = vdx_shm_alloc(size, &d->va);
    if (st != DEXT_OK) {
        return -ENOMEM;
    }
    d->size = size;
    d->key = u->next_key;
    st = vdx_register_dma(u->conn, d->key, d->va, size, &bus, &bus_len);
    if (st != DEXT_OK) {
        unvme_logf(u, VDX_LOG_ERR, "cannot register %llu bytes of DMA memory: %s",
                   (unsigned long long)size, vdx_status_str(st));
        goto out_free;
    }
    if (bus_len < size || (bus & PAGE_MASK)) { /* must be one contiguous, aligned run */
        unvme_logf(u, VDX_LOG_ERR, "DMA region not contiguous or not page aligned");
        vdx_unregister_dma(u->conn, d->key);
        st = DEXT_E_NO_SPACE;
        goto out_free;
    }
    d->bus = bus;
    d->registered = true;
    u->next_key += (size + KEY_ALIGN - 1) & ~(KEY_ALIGN - 1);
    return 0;

out_free:
    vdx_shm_free(d->va);
    d->va = NULL;
    return unvme_errno(st);
}

static void dma_free(struct unvme *u, struct unvme_dma *d)
{
    if (d->registered) {
        vdx_unregister_dma(u->conn, d->key); /* best effort: a dead dext forgot it */
        d->registered = false;
    }
    if (d->va) {
        vdx_shm_free(d->va);
        d->va = NULL;
    }
}

/* Point the queue's parts into its region. */
static void queue_layout(struct unvme_queue *q)
{
    uint64_t sq = round_page((uint64_t)q->depth * sizeof(struct nvme_sqe));
    uint64_t cq = round_page((uint64_t)q->depth * sizeof(struct nvme_cqe));
    uint64_t prp = (uint64_t)q->nslots * UNVME_PAGE_SIZE;
    uint8_t *base = q->dma.va;

    q->sq = (struct nvme_sqe *)base;
    q->sq_bus = q->dma.bus;
    q->cq = (struct nvme_cqe *)(base + sq);
    q->cq_bus = q->dma.bus + sq;
    q->prp = (uint64_t *)(base + sq + cq);
    q->prp_bus = q->dma.bus + sq + cq;
    q->data = base + sq + cq + prp;
    q->data_bus = q->dma.bus + sq + cq + prp;
}

static uint64_t queue_bytes(uint16_t depth, uint16_t nslots, uint32_t stride)
{
    return round_page((uint64_t)depth * sizeof(struct nvme_sqe)) +
           round_page((uint64_t)depth * sizeof(struct nvme_cqe)) +
           (uint64_t)nslots * UNVME_PAGE_SIZE + (uint64_t)nslots * stride;
}

int unvme_queue_alloc(struct unvme *u, struct unvme_queue *q, uint16_t qid, uint16_t depth,
                      uint16_t nslots, uint32_t max_xfer)
{
    int rc;

    memset(q, 0, sizeof(*q));
    q->u = u;
    q->qid = qid;
    q->depth = depth;
    q->vector = qid;
    q->nslots = nslots;
    q->stride = max_xfer + UNVME_PAGE_SIZE;
    q->sq_db = NVME_SQ_TAIL_DB(qid, u->dstrd);
    q->cq_db = NVME_CQ_HEAD_DB(qid, u->dstrd);
    rc = alloc_host_arrays(q);
    if (rc < 0) {
        return rc;
    }
    rc = dma_alloc(u, &q->dma, queue_bytes(depth, nslots, q->stride));
    if (rc < 0) {
        free_host_arrays(q);
        return rc;
    }
    queue_layout(q);
    for (uint16_t i = 0; i < nslots; i++) {
        q->free[i] = (uint16_t)(nslots - 1u - i); /* slot 0 is taken first */
    }
    q->nfree = nslots;
    unvme_queue_reset_rings(q);
    return 0;
}

void unvme_queue_free(struct unvme *u, struct unvme_queue *q)
{
    if (!q || !q->slots) {
        return;
    }
    dma_free(u, &q->dma);
    free_host_arrays(q);
}

void unvme_queue_reset_rings(struct unvme_queue *q)
{
    memset(q->sq, 0, (size_t)q->depth * sizeof(struct nvme_sqe));
    memset(q->cq, 0, (size_t)q->depth * sizeof(struct nvme_cqe));
    q->sq_tail = 0;
    q->sq_rung = 0;
    q->cq_head = 0;
    q->phase = 1; /* a new CQ holds phase 0 entries; the first pass writes 1 */
    q->cq_dirty = false;
}

/* ---- Slots ---------------------------------------------------------------------- */

int unvme_slot_take(struct unvme_queue *q)
{
    uint16_t s;

    if (q->nfree == 0) {
        return -EBUSY;
    }
    s = q->free[--q->nfree];
    memset(&q->slots[s], 0, sizeof(q->slots[s]));
    return s;
}

/* The slot's data goes back to the pool, or to its zero-copy owner. */
static void slot_release(struct unvme_queue *q, uint16_t s)
{
    struct unvme_slot *sl = &q->slots[s];

    if (sl->zc) {
        sl->state = SLOT_HELD;
        return;
    }
    sl->state = SLOT_FREE;
    q->free[q->nfree++] = s;
}

static void done_push(struct unvme_queue *q, uint16_t s)
{
    q->done[(q->done_head + q->ndone) % q->nslots] = s;
    q->ndone++;
}

static uint16_t done_pop(struct unvme_queue *q)
{
    uint16_t s = q->done[q->done_head];

    q->done_head = (uint16_t)((q->done_head + 1u) % q->nslots);
    q->ndone--;
    return s;
}

/* ---- Submission ----------------------------------------------------------------- */

void unvme_sq_push(struct unvme_queue *q, uint16_t s, const struct nvme_sqe *cmd,
                   uint32_t off, uint32_t len)
{
    struct nvme_sqe *e = &q->sq[q->sq_tail];
    uint64_t *list = q->prp + (size_t)s * UNVME_PRPS_PER_PAGE;
    uint64_t list_bus = q->prp_bus + (uint64_t)s * UNVME_PAGE_SIZE;

    *e = *cmd;
    e->cdw0 = (cmd->cdw0 & ~NVME_SET(NVME_SQE_CID_MASK, SQE_CID)) | NVME_SET(s, SQE_CID);
    if (len) {
        /* Checked by the callers: len <= max_xfer, off < 4096 and dword aligned. */
        unvme_prp_build(q->data_bus + (uint64_t)s * q->stride + off, len, list, list_bus,
                        &e->prp1, &e->prp2);
    }
    q->slots[s].state = SLOT_BUSY;
    q->slots[s].off = off;
    q->slots[s].len = len;
    q->sq_tail = (uint16_t)(q->sq_tail + 1u == q->depth ? 0u : q->sq_tail + 1u);
    q->inflight++;
}

int unvme_kick(struct unvme_queue *q)
{
    int rc;

    if (!q || q->sq_tail == q->sq_rung) {
        return 0;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE); /* SQEs before the doorbell */
    rc = unvme_reg_write32(q->u, q->sq_db, q->sq_tail);
    if (rc == 0) {
        q->sq_rung = q->sq_tail;
    }
    return rc;
}

static int cq_ring(struct unvme_queue *q)
{
    if (!q->cq_dirty) {
        return 0;
    }
    q->cq_dirty = false;
    return unvme_reg_write32(q->u, q->cq_db, q->cq_head);
}

/* ---- Reaping -------------------------------------------------------------------- */

static const struct nvme_cqe *cq_peek(const struct unvme_queue *q)
{
    const struct nvme_cqe *e = &q->cq[q->cq_head];
    uint16_t st = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);

    return (st & NVME_CQE_P) == q->phase ? e : NULL;
}

static void cq_advance(struct unvme_queue *q)
{
    if (++q->cq_head == q->depth) {
        q->cq_head = 0;
        q->phase ^= 1u;
    }
    q->cq_dirty = true;
}

static void fill_cpl(struct unvme_queue *q, uint16_t s, const struct nvme_cqe *e)
{
    struct unvme_slot *sl = &q->slots[s];
    uint16_t sf = (uint16_t)NVME_GET(e->status, CQE_SF);

    sl->cpl.cookie = sl->cookie;
    sl->cpl.buf = sl->zc ? unvme_slot_buf(q, s) + sl->off : NULL;
    sl->cpl.dw0 = e->dw0;
    sl->cpl.status = NVME_STATUS(NVME_GET(sf, SF_SCT), NVME_GET(sf, SF_SC));
    sl->cpl.dnr = (sf & NVME_SF_DNR) != 0;
    sl->cpl.err = 0;
}

/* One CQ entry reaped for slot s: record it, or drop it for a timed-out slot. */
static void complete_slot(struct unvme_queue *q, uint16_t s, const struct nvme_cqe *e)
{
    struct unvme_slot *sl = &q->slots[s];

    if (sl->state == SLOT_TIMEDOUT) {
        slot_release(q, s); /* its waiter returned -ETIMEDOUT long ago */
        return;
    }
    fill_cpl(q, s, e);
    if (sl->copy_out && sl->cpl.status == 0) {
        memcpy(sl->rbuf, unvme_slot_buf(q, s) + sl->off, sl->len);
    }
    sl->state = SLOT_DONE;
    if (!sl->sync) {
        done_push(q, s);
    }
}

/*
 * Reap the CQ entries available (at most `max`). Entries naming no command
 * in flight are a controller bug: skipped, counted (info.bad_completions) and
 * logged rate-limited.
 * Returns the number of entries consumed.
 */
static unsigned reap(struct unvme_queue *q, unsigned max)
{
    const struct nvme_cqe *e;
    unsigned n = 0;

    while (n < max && (e = cq_peek(q)) != NULL) {
        uint16_t s = e->cid;

        if (s < q->nslots &&
            (q->slots[s].state == SLOT_BUSY || q->slots[s].state == SLOT_TIMEDOUT)) {
            complete_slot(q, s, e);
        } else {
            __atomic_add_fetch(&q->u->info.bad_completions, 1, __ATOMIC_RELAXED);
            vdx_log_ratelimited(&q->bad_cqe_rl, VDX_LOG_WARN,
                                "unvme %s: queue %u: completion for CID %u not in flight",
                                q->u->bdf, q->qid, s);
        }
        cq_advance(q);
        n++;
    }
    return n;
}

/* ---- Delivery ------------------------------------------------------------------- */

int unvme_poll(struct unvme_queue *q, struct unvme_cpl *cpls, unsigned max)
{
    unsigned n = 0;
    int rc;

    if (!q || (!cpls && max)) {
        return -EINVAL;
    }
    rc = unvme_kick(q);
    if (rc < 0) {
        return rc;
    }
    if (q->ndone < max) {
        reap(q, max - q->ndone);
    }
    while (n < max && q->ndone) {
        uint16_t s = done_pop(q);

        cpls[n++] = q->slots[s].cpl;
        slot_release(q, s);
        q->inflight--;
    }
    rc = cq_ring(q);
    return rc < 0 ? rc : (int)n;
}

unsigned unvme_inflight(const struct unvme_queue *q)
{
    return q ? q->inflight : 0;
}

/* ---- Waiting -------------------------------------------------------------------- */

/* Spin until the CQ has an entry or the deadline passes. */
static int wait_poll(struct unvme_queue *q, uint64_t deadline_ns)
{
    for (unsigned spins = 1;; spins++) {
        if (cq_peek(q)) {
            return 0;
        }
        if (spins % SPINS_PER_CLOCK == 0 && vdx_now_ns() >= deadline_ns) {
            return -ETIMEDOUT;
        }
        if (spins % SPINS_BEFORE_YIELD == 0) {
            sched_yield();
        } else {
            cpu_relax();
        }
    }
}

/* Spin on the queue's vector in the IRQ state page; consume the bit. */
static int wait_irq(struct unvme_queue *q, uint64_t deadline_ns)
{
    uint64_t *word = &q->u->irq_page->pending[q->vector / 64u];
    uint64_t bit = 1ull << (q->vector % 64u);

    for (unsigned spins = 1;; spins++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) & bit) {
            __atomic_fetch_and(word, ~bit, __ATOMIC_ACQ_REL);
            return 0;
        }
        if (spins % SPINS_PER_CLOCK == 0 && vdx_now_ns() >= deadline_ns) {
            return -ETIMEDOUT;
        }
        if (spins % SPINS_BEFORE_YIELD == 0) {
            sched_yield();
        } else {
            cpu_relax();
        }
    }
}

/*
 * Sleep on the notification fd. Drain every pending bit first, then look at
 * the CQ, then re-arm: a completion posted after the look raises a vector
 * after the drain, so the re-armed wait completes (no lost wake-up).
 */
static int wait_notify(struct unvme_queue *q, uint64_t deadline_ns)
{
    struct unvme *u = q->u;
    struct pollfd p = {.fd = vdx_notify_fd(u->notify), .events = POLLIN};
    uint64_t now = vdx_now_ns();
    dext_status st;

    vdx_notify_ack(u->notify);
    for (unsigned w = 0; w < DEXT_IRQ_WORDS; w++) {
        __atomic_exchange_n(&u->irq_page->pending[w], 0, __ATOMIC_SEQ_CST);
    }
    if (cq_peek(q)) {
        return 0;
    }
    if (now >= deadline_ns) {
        return -ETIMEDOUT;
    }
    st = vdx_notify_rearm(u->notify);
    if (st != DEXT_OK) {
        return unvme_errno(st);
    }
    if (poll(&p, 1, (int)((deadline_ns - now + 999999u) / 1000000u)) < 0 && errno != EINTR) {
        return -errno;
    }
    return 0;
}

/* One wait for "something may have completed on q". 0, -ETIMEDOUT, -errno. */
static int wait_step(struct unvme_queue *q, uint64_t deadline_ns)
{
    struct unvme *u = q->u;

    if (u->dead) {
        return -ENODEV;
    }
    if (u->opts.wait == UNVME_WAIT_NOTIFY && u->notify && u->irq_page) {
        return wait_notify(q, deadline_ns);
    }
    if (u->opts.wait == UNVME_WAIT_IRQ && u->irq_page) {
        return wait_irq(q, deadline_ns);
    }
    return wait_poll(q, deadline_ns);
}

static uint64_t deadline_after(unsigned timeout_ms)
{
    return vdx_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

int unvme_wait_slot(struct unvme_queue *q, uint16_t s, unsigned timeout_ms,
                    struct unvme_cpl *cpl)
{
    uint64_t deadline = deadline_after(timeout_ms);
    struct unvme_slot *sl = &q->slots[s];
    int rc;

    sl->sync = true;
    rc = unvme_kick(q);
    while (rc == 0) {
        reap(q, q->depth);
        if (sl->state == SLOT_DONE) {
            *cpl = sl->cpl;
            slot_release(q, s);
            q->inflight--;
            return cq_ring(q);
        }
        rc = cq_ring(q);
        rc = rc ? rc : wait_step(q, deadline);
    }
    sl->state = SLOT_TIMEDOUT; /* the controller still owns it */
    q->inflight--;
    return rc;
}

int unvme_wait(struct unvme_queue *q, struct unvme_cpl *cpls, unsigned min, unsigned max,
               unsigned timeout_ms)
{
    uint64_t deadline = deadline_after(timeout_ms);
    unsigned n = 0;

    if (!q || !cpls || min == 0 || min > max) {
        return -EINVAL;
    }
    for (;;) {
        int rc = unvme_poll(q, cpls + n, max - n);

        if (rc < 0) {
            return rc;
        }
        n += (unsigned)rc;
        if (n >= min) {
            return (int)n;
        }
        rc = wait_step(q, deadline);
        if (rc == -ETIMEDOUT) {
            return n ? (int)n : -ETIMEDOUT;
        }
        if (rc < 0) {
            return rc;
        }
    }
}

/* ---- Reset ---------------------------------------------------------------------- */

void unvme_queue_cancel_all(struct unvme_queue *q)
{
    reap(q, q->depth); /* what the controller finished before it stopped is real */
    for (uint16_t s = 0; s < q->nslots; s++) {
        struct unvme_slot *sl = &q->slots[s];

        if (sl->state == SLOT_TIMEDOUT) {
            slot_release(q, s);
        } else if (sl->state == SLOT_BUSY) {
            sl->cpl = (struct unvme_cpl){.cookie = sl->cookie, .err = -ECANCELED};
            sl->cpl.buf = sl->zc ? unvme_slot_buf(q, s) + sl->off : NULL;
            sl->state = SLOT_DONE;
            done_push(q, s);
        }
    }
    unvme_queue_reset_rings(q);
}

/* ---- Public submission -------------------------------------------------------- */

void unvme_cmd_rw(struct nvme_sqe *cmd, uint8_t opc, uint32_t nsid, uint64_t slba,
                  uint32_t nlb)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->cdw0 = opc;
    cmd->nsid = nsid;
    cmd->cdw10 = (uint32_t)slba;
    cmd->cdw11 = (uint32_t)(slba >> 32);
    cmd->cdw12 = NVME_SET(nlb - 1u, RW_NLB); /* 0's based */
}

/* Offset within a page of a caller's buffer, as a PRP offset (dword aligned). */
static uint32_t page_off_of(const void *p)
{
    return (uint32_t)((uintptr_t)p & PAGE_MASK & ~(uintptr_t)3u);
}

/* Take a slot and stage a copy-variant command in it (not yet queued). */
static int stage_copy(struct unvme_queue *q, uint8_t opc, void *data, size_t len)
{
    unsigned dir = NVME_GET(opc, OPC_XFER);
    uint32_t off = data ? page_off_of(data) : 0;
    int s;

    if (len > q->stride - UNVME_PAGE_SIZE || (len && !data)) {
        return -EINVAL;
    }
    s = unvme_slot_take(q);
    if (s < 0) {
        return s;
    }
    q->slots[s].off = off;
    if (len && (dir & NVME_XFER_HOST_TO_CTRL)) {
        memcpy(unvme_slot_buf(q, (uint16_t)s) + off, data, len);
    }
    if (len && (dir & NVME_XFER_CTRL_TO_HOST)) {
        q->slots[s].copy_out = true;
        q->slots[s].rbuf = data;
    }
    return s;
}

int unvme_submit_io(struct unvme_queue *q, const struct nvme_sqe *cmd, void *data,
                    size_t len, void *cookie)
{
    int s;

    if (!q || !cmd || q->u->dead) {
        return !q || !cmd ? -EINVAL : -ENODEV;
    }
    s = stage_copy(q, (uint8_t)NVME_GET(cmd->cdw0, SQE_OPC), data, len);
    if (s < 0) {
        return s;
    }
    q->slots[s].cookie = cookie;
    unvme_sq_push(q, (uint16_t)s, cmd, q->slots[s].off, (uint32_t)len);
    return 0;
}

/* Run cmd synchronously on q with the copy variant. */
static int run_sync(struct unvme_queue *q, const struct nvme_sqe *cmd, void *data, size_t len,
                    unsigned timeout_ms, struct unvme_cpl *cpl)
{
    int s;

    if (q->u->dead) {
        return -ENODEV;
    }
    s = stage_copy(q, (uint8_t)NVME_GET(cmd->cdw0, SQE_OPC), data, len);
    if (s < 0) {
        return s;
    }
    unvme_sq_push(q, (uint16_t)s, cmd, q->slots[s].off, (uint32_t)len);
    return unvme_wait_slot(q, (uint16_t)s, timeout_ms, cpl);
}

int unvme_io_raw(struct unvme_queue *q, const struct nvme_sqe *cmd, void *data, size_t len,
                 uint32_t *dw0, uint16_t *status)
{
    struct unvme_cpl cpl;
    int rc;

    if (!q || !cmd || q->qid == 0) {
        return -EINVAL;
    }
    rc = run_sync(q, cmd, data, len, q->u->opts.timeout_ms, &cpl);
    if (rc < 0) {
        return rc;
    }
    if (dw0) {
        *dw0 = cpl.dw0;
    }
    return unvme_status_out(&cpl, status);
}

int unvme_admin_locked(struct unvme *u, const struct nvme_sqe *cmd, void *data, size_t len,
                       unsigned timeout_ms, struct unvme_cpl *cpl)
{
    return run_sync(&u->admin, cmd, data, len, timeout_ms, cpl);
}

/* ---- Zero-copy buffers ------------------------------------------------------------ */

int unvme_buf_alloc(struct unvme_queue *q, unsigned page_off, void **buf)
{
    int s;

    if (!q || !buf || page_off >= UNVME_PAGE_SIZE || (page_off & 3u)) {
        return -EINVAL;
    }
    s = unvme_slot_take(q);
    if (s < 0) {
        return s;
    }
    q->slots[s].state = SLOT_HELD;
    q->slots[s].zc = true;
    q->slots[s].off = page_off;
    *buf = unvme_slot_buf(q, (uint16_t)s) + page_off;
    return 0;
}

/* The slot of a zero-copy buffer, or -EINVAL. */
static int buf_slot(const struct unvme_queue *q, const void *buf, uint32_t *off)
{
    uintptr_t base = (uintptr_t)q->data, p = (uintptr_t)buf;
    uint64_t rel, s;

    if (p < base || p - base >= (uint64_t)q->nslots * q->stride) {
        return -EINVAL;
    }
    rel = p - base;
    s = rel / q->stride;
    *off = (uint32_t)(rel % q->stride);
    if (*off >= UNVME_PAGE_SIZE || (*off & 3u) || !q->slots[s].zc) {
        return -EINVAL;
    }
    return (int)s;
}

int unvme_submit_buf(struct unvme_queue *q, const struct nvme_sqe *cmd, void *buf,
                     size_t len, void *cookie)
{
    uint32_t off = 0;
    int s;

    if (!q || !cmd || !buf || len > q->stride - UNVME_PAGE_SIZE) {
        return -EINVAL;
    }
    if (q->u->dead) {
        return -ENODEV;
    }
    s = buf_slot(q, buf, &off);
    if (s < 0 || q->slots[s].state != SLOT_HELD) {
        return -EINVAL;
    }
    q->slots[s].cookie = cookie;
    q->slots[s].sync = false;
    unvme_sq_push(q, (uint16_t)s, cmd, off, (uint32_t)len);
    return 0;
}

int unvme_buf_free(struct unvme_queue *q, void *buf)
{
    uint32_t off = 0;
    int s;

    if (!buf) {
        return 0;
    }
    if (!q) {
        return -EINVAL;
    }
    s = buf_slot(q, buf, &off);
    if (s < 0) {
        return s;
    }
    if (q->slots[s].state != SLOT_HELD) {
        return -EBUSY;
    }
    q->slots[s].zc = false;
    slot_release(q, (uint16_t)s);
    return 0;
}
