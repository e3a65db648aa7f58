/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim:nvme — a simulated NVMe controller on simpci (see nvme.h and
 * docs/nvme.md).
 *
 * Processing model: synchronous. A doorbell write (mmio_write) processes
 * the submission queue up to the new tail in the caller's thread, under the
 * dext's device lock: fetch each entry through the IOMMU (host->dma_rw),
 * run it, post the completion with the current phase tag, and at the end of
 * the write raise the MSI-X vector of every completion queue that received
 * entries and has interrupts enabled. Work per doorbell is bounded by the
 * queue size. A full completion queue stalls its submission queues until
 * the host moves the CQ head. Asynchronous Event Requests are the only
 * commands held: they complete when an event happens.
 *
 * Doorbell Buffer Config (OACS bit 8) lets the host publish I/O queue tails
 * and heads in a shadow page and ring a register only when the controller's
 * EventIdx asks for it. With no thread of its own the controller asks for
 * every submission (EventIdx = the tail it processed, then a second look at
 * the shadow closes the race with a host that saw the old EventIdx) and for
 * no completion (EventIdx = the CQ tail; the head is read from the shadow
 * when the CQ looks full; an SQ stalled on a full CQ arms it, see cq_arm()).
 * Each trapped register write is a vfio-user socket message; under Linux's
 * driver this takes them from 1.73 to about 0.8 per I/O.
 *
 * Data path: the PRPs of a command are mapped to segments and bus-contiguous
 * neighbours merged, so one host->dma_rw moves each contiguous run. Reads
 * from a RAM store go straight from the store to host memory (one copy);
 * Writes of one run go straight from host memory into the store; everything
 * else (file store, Writes over several runs, admin data) goes through
 * bounce buffers allocated at creation. Nothing is allocated on the I/O
 * path, and host memory is touched only through host->dma_rw. A transfer
 * the IOMMU refuses completes its command with Data Transfer Error (a Write
 * then stores nothing); a queue entry the controller cannot fetch or post
 * sets CSTS.CFS, as hardware does.
 *
 * Threading: every entry point runs under the dext's device lock; the
 * device starts no thread.
 */
#include "devices/nvme.h"
#include "devices/simpci.h"

#include "common/le.h"
#include "common/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NV_NAME "sim:nvme"
#define NV_NQ   (NVME_SIM_MAX_QUEUES + 1u) /* queue slots, admin included */

#define NV_MPS (NVME_SIM_PAGE_SHIFT - NVME_MPS_BASE_SHIFT)
#define NV_CAP                                                                             \
    (NVME_SET64(NVME_SIM_MQES, CAP_MQES) | NVME_CAP_CQR |                                  \
     NVME_SET64(NVME_SIM_TO, CAP_TO) | NVME_SET64(NVME_SIM_DSTRD, CAP_DSTRD) |             \
     NVME_SET64(NVME_CAP_CSS_NVM, CAP_CSS) | NVME_SET64(NV_MPS, CAP_MPSMIN) |              \
     NVME_SET64(NV_MPS, CAP_MPSMAX))
#define NV_VS         NVME_VS(1, 4, 0)
#define NV_MAX_EVENTS 8u
#define NV_ERRLOG_LEN (NVME_SIM_ELPE + 1u)
#define NV_AEC_MASK   0xffu /* SMART critical warnings; no notices (OAES = 0) */
#define NV_NO_QUEUE   0xffffu

/* Doorbell Buffer Config (Base §5.8): a queue's slot in the shadow doorbell
 * and EventIdx pages is where its doorbell register is, relative to DBS. */
#define NV_DBBUF_SLOT(qid, is_cq)                                                          \
    ((2u * (qid) + ((is_cq) ? 1u : 0u)) * NVME_DB_STRIDE(NVME_SIM_DSTRD))
#define NV_DBBUF_SPAN    NV_DBBUF_SLOT(NV_NQ, false) /* bytes used in each page */
#define NV_SHADOW_PASSES 64u /* looks at a shadow SQ tail per doorbell */

/* The CC fields implemented (Base §3.1.3.5): EN, CSS, MPS, AMS, SHN, IOSQES,
 * IOCQES; the others read 0. */
#define NV_CC_SHN_BITS NVME_SET(NVME_CC_SHN_MASK, CC_SHN)
#define NV_CC_WRITABLE                                                                     \
    (NVME_CC_EN | NVME_SET(NVME_CC_CSS_MASK, CC_CSS) |                                     \
     NVME_SET(NVME_CC_MPS_MASK, CC_MPS) | NVME_SET(NVME_CC_AMS_MASK, CC_AMS) |             \
     NV_CC_SHN_BITS | NVME_SET(NVME_CC_IOSQES_MASK, CC_IOSQES) |                           \
     NVME_SET(NVME_CC_IOCQES_MASK, CC_IOCQES))
#define NV_CSTS_SHST_BITS NVME_SET(NVME_CSTS_SHST_MASK, CSTS_SHST)
#define NV_AQA_WRITABLE                                                                    \
    (NVME_SET(NVME_AQA_ASQS_MASK, AQA_ASQS) | NVME_SET(NVME_AQA_ACQS_MASK, AQA_ACQS))
_Static_assert(NV_CC_WRITABLE == 0x00fffff1u, "CC bits 23:0 but 3:1");
_Static_assert(NV_AQA_WRITABLE == 0x0fff0fffu, "AQA: ASQS 11:0, ACQS 27:16");

/* ---- State ---------------------------------------------------------------------- */

struct nv_sq {
    uint64_t base;
    uint32_t size, head, tail;
    uint16_t cqid;
    bool live;
    bool stalled; /* stopped on a full CQ; resumed by that CQ's head doorbell */
};

struct nv_cq {
    uint64_t base;
    uint32_t size, head, tail;
    uint16_t iv;
    uint16_t nsq; /* submission queues bound to it */
    bool live;
    bool ien;
    bool phase; /* phase tag of the next entry posted */
    bool armed; /* doorbell buffer: EventIdx = head, the next head update rings */
};

/* Feature values (Base §5.27.1); reset to the defaults on controller reset. */
struct nv_feat {
    uint32_t arbitration;
    uint32_t power_mgmt;
    uint16_t temp_over, temp_under;
    uint32_t error_recovery;
    bool wce;
    uint16_t nsqa, ncqa; /* I/O queues allocated, 1's based */
    uint32_t irq_coalesce;
    bool irq_cd[NV_NQ]; /* coalescing disable, per vector */
    uint32_t write_atomic;
    uint32_t aec;
};

struct nv_event {
    uint8_t type, info, lid;
};

struct nv_aer {
    uint16_t cids[NVME_SIM_AERL + 1u]; /* outstanding requests, oldest first */
    unsigned n;
    struct nv_event q[NV_MAX_EVENTS]; /* events waiting for a request */
    unsigned nq;
    uint8_t masked; /* event types reported whose log page was not read yet */
};

/* Totals since creation (the counters op and the SMART log). */
struct nv_stats {
    uint64_t admin_cmds, io_cmds;
    uint64_t reads, writes, compares, flushes, write_zeroes, dsm_deallocates;
    uint64_t bytes_read, bytes_written;
    uint64_t units_read, units_written; /* 512-byte units, for SMART */
    uint64_t dma_errors, invalid_cmds, store_errors, compare_failures;
    uint64_t cfs_events, doorbell_errors, aer_completed, events_dropped;
    uint64_t resets, resets_flr, resets_hot, shutdowns;
    uint64_t interrupts_raised;
    uint64_t doorbell_writes, dbbuf_configs, shadow_reads, sq_parked;
};

struct nvme_dev {
    struct simpci *pci;
    struct vdx_dev_host host; /* zeroed when none was given */
    char bdf[16];
    char serial[21];
    uint8_t nguid[16];
    unsigned nq;   /* I/O queue pairs supported */
    unsigned nvec; /* MSI-X vectors: nq + 1 */
    struct nvme_store *store;
    uint64_t size; /* bytes */
    uint64_t nsze; /* LBAs */
    bool vwc;      /* a volatile write cache is present (file store) */

    struct {
        uint32_t cc, csts, aqa, intms;
        uint64_t asq, acq;
    } r;
    struct nv_sq sq[NV_NQ];
    struct nv_cq cq[NV_NQ];
    struct nv_feat feat, feat_default;
    struct nv_aer aer;
    struct {
        uint64_t dbs, eis; /* shadow doorbell and EventIdx pages (bus addresses) */
        bool on;           /* configured since the last controller reset */
    } dbbuf;
    uint64_t irq_pending[2]; /* CQs that received entries since the last flush */
    uint8_t crit_warn;       /* SMART critical warning */

    struct nvme_error_log errlog[NV_ERRLOG_LEN]; /* ring, errlog_next is the oldest */
    unsigned errlog_next;
    uint64_t error_count;

    struct nv_stats st;
    uint8_t *buf;  /* NVME_SIM_MAX_XFER: data bounce */
    uint8_t *aux;  /* NVME_SIM_MAX_XFER: compare data, log pages */
    uint64_t *prp; /* one page of PRP list entries */
    struct nvme_seg segs[NVME_SIM_MAX_SEGS];
    struct vdx_ratelimit rl;
};

_Static_assert(NV_NQ <= 128, "irq_pending holds 128 queue ids");
_Static_assert(NV_DBBUF_SPAN <= NVME_SIM_PAGE_SIZE,
               "Base §5.8: every queue's doorbell fits in one memory page");

static const struct nvme_ns_limits *ns_limits(const struct nvme_dev *n,
                                              struct nvme_ns_limits *lim)
{
    *lim = (struct nvme_ns_limits){1, n->nsze, NVME_SIM_LBA_SHIFT, NVME_SIM_MAX_XFER};
    return lim;
}

/* ---- DMA ---------------------------------------------------------------------------- */

static int dma(struct nvme_dev *n, uint64_t bus, void *buf, size_t len,
               enum vdx_dma_dir dir)
{
    if (!n->host.dma_rw) {
        return -ENODEV;
    }
    if (len && bus > UINT64_MAX - (len - 1)) {
        return -EFAULT; /* wraps the bus address space */
    }
    return n->host.dma_rw(n->host.ctx, bus, buf, len, dir) ? -EFAULT : 0;
}

static int prp_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    return dma(ctx, addr, buf, len, VDX_DMA_TO_DEVICE);
}

/* Map the command's PRPs for `len` bytes into n->segs[0..*nruns), runs of
 * bus-contiguous pages merged. A PRP list the IOMMU refuses is a Data
 * Transfer Error (counted). */
static uint16_t data_map(struct nvme_dev *n, const struct nvme_cmd *c, uint64_t len,
                         unsigned *nruns)
{
    uint16_t st = nvme_prp_map(c->prp1, c->prp2, len, prp_read, n, n->prp,
                               NVME_SIM_PAGE_SIZE / sizeof(uint64_t), n->segs,
                               NVME_SIM_MAX_SEGS, nruns);

    if (st == NVME_SC_SUCCESS) {
        *nruns = nvme_seg_merge(n->segs, *nruns);
    } else if (st == NVME_SC_DATA_XFER_ERROR) {
        n->st.dma_errors++;
    }
    return st;
}

/* Move the mapped data between buf and host memory, one DMA per run. A run
 * the IOMMU refuses moves nothing (dma_rw is all or nothing) and ends the
 * transfer with Data Transfer Error (counted); the runs before it moved. */
static uint16_t data_move(struct nvme_dev *n, unsigned nruns, void *buf,
                          enum vdx_dma_dir dir)
{
    uint8_t *p = buf;

    for (unsigned i = 0; i < nruns; i++) {
        if (dma(n, n->segs[i].addr, p, n->segs[i].len, dir)) {
            n->st.dma_errors++;
            return NVME_SC_DATA_XFER_ERROR;
        }
        p += n->segs[i].len;
    }
    return NVME_SC_SUCCESS;
}

/* Move `len` bytes between buf and the command's PRPs. */
static uint16_t xfer(struct nvme_dev *n, const struct nvme_cmd *c, void *buf, uint64_t len,
                     enum vdx_dma_dir dir)
{
    unsigned nruns = 0;
    uint16_t st = data_map(n, c, len, &nruns);

    return st ? st : data_move(n, nruns, buf, dir);
}

/* ---- Errors, events, interrupts ---------------------------------------------------- */

static bool nv_ready(const struct nvme_dev *n)
{
    return (n->r.csts & (NVME_CSTS_RDY | NVME_CSTS_CFS | NV_CSTS_SHST_BITS)) ==
           NVME_CSTS_RDY;
}

/* The controller cannot reach its own queues: Controller Fatal Status. */
static void nv_fatal(struct nvme_dev *n, const char *what, uint16_t qid)
{
    if (!(n->r.csts & NVME_CSTS_CFS)) {
        n->st.cfs_events++;
    }
    n->r.csts |= NVME_CSTS_CFS;
    vdx_log_ratelimited(&n->rl, VDX_LOG_WARN,
                        "%s: " NV_NAME ": cannot %s queue %u through the IOMMU: "
                        "controller fatal status set",
                        n->bdf, what, qid);
}

static void errlog_add(struct nvme_dev *n, uint16_t sqid, uint16_t cid, uint16_t status,
                       uint32_t nsid, uint64_t lba)
{
    struct nvme_error_log *e = &n->errlog[n->errlog_next];

    memset(e, 0, sizeof(*e));
    e->error_count = ++n->error_count;
    e->sqid = sqid;
    e->cid = cid;
    e->status = (uint16_t)NVME_SET(status, CQE_SF); /* as in a CQE, phase 0 */
    e->param_loc = 0xffffu;
    e->lba = lba;
    e->nsid = nsid;
    n->errlog_next = (n->errlog_next + 1) % NV_ERRLOG_LEN;
}

/* ---- Doorbell buffer (Base §5.8) --------------------------------------------------- */

/* With a doorbell buffer configured, the host writes each I/O queue's tail or
 * head into its shadow slot first and rings the register only when the value
 * passes the EventIdx the controller left in the same slot of the EventIdx
 * page. The controller takes the values from the shadow page (a doorbell
 * write is a prompt to look; its value may be older than the shadow). The
 * admin queue keeps its register doorbells, as Linux uses it. */
static bool dbbuf_used(const struct nvme_dev *n, uint16_t qid)
{
    return n->dbbuf.on && qid != 0;
}

static int dbbuf_rw(struct nvme_dev *n, uint64_t page, uint16_t qid, bool is_cq,
                    uint32_t *val, enum vdx_dma_dir dir)
{
    uint8_t b[4];

    put_le32(b, *val);
    if (dma(n, page + NV_DBBUF_SLOT(qid, is_cq), b, sizeof(b), dir)) {
        return -EFAULT;
    }
    *val = get_le32(b);
    return 0;
}

/* Publish an EventIdx. A page the IOMMU refuses is Controller Fatal Status,
 * as for the queues themselves. */
static int ei_put(struct nvme_dev *n, uint16_t qid, bool is_cq, uint32_t val)
{
    if (dbbuf_rw(n, n->dbbuf.eis, qid, is_cq, &val, VDX_DMA_FROM_DEVICE)) {
        nv_fatal(n, "write the EventIdx of", qid);
        return -EFAULT;
    }
    return 0;
}

static int shadow_get(struct nvme_dev *n, uint16_t qid, bool is_cq, uint32_t *val)
{
    *val = 0;
    n->st.shadow_reads++;
    if (dbbuf_rw(n, n->dbbuf.dbs, qid, is_cq, val, VDX_DMA_TO_DEVICE)) {
        nv_fatal(n, "read the shadow doorbell of", qid);
        return -EFAULT;
    }
    return 0;
}

/* After posting to `cq`: the EventIdx is its tail, which the host's head can
 * reach but not pass, so consuming entries rings no doorbell. An armed CQ
 * (an SQ waits on it, cq_arm()) keeps EventIdx = head until it rings. */
static void cq_publish_ei(struct nvme_dev *n, uint16_t cqid)
{
    const struct nv_cq *cq = &n->cq[cqid];

    if (!cq->armed) {
        ei_put(n, cqid, true, cq->tail);
    }
}

static bool cq_full(const struct nv_cq *cq)
{
    return (cq->tail + 1) % cq->size == cq->head;
}

/* Write one completion entry. Returns 0, or -EFAULT after setting CFS. */
static int cq_post(struct nvme_dev *n, uint16_t cqid, struct nvme_cpl *cpl)
{
    struct nv_cq *cq = &n->cq[cqid];
    uint8_t raw[NVME_CQE_SIZE];

    if (cpl->status != NVME_SC_SUCCESS) {
        cpl->status |= NVME_SF_DNR;
    }
    nvme_cpl_encode(cpl, cq->phase, raw, sizeof(raw));
    if (dma(n, cq->base + (uint64_t)cq->tail * NVME_CQE_SIZE, raw, sizeof(raw),
            VDX_DMA_FROM_DEVICE)) {
        nv_fatal(n, "post to completion", cqid);
        return -EFAULT;
    }
    cq->tail = (cq->tail + 1) % cq->size;
    if (cq->tail == 0) {
        cq->phase = !cq->phase;
    }
    n->irq_pending[cqid / 64] |= 1ull << (cqid % 64);
    return 0;
}

/* Raise the vector of every CQ that received entries (MSI-X: INTMS/INTMC do
 * not apply, Base §3.1.3.3). */
static void irq_flush(struct nvme_dev *n)
{
    for (unsigned w = 0; w < 2; w++) {
        uint64_t bits = n->irq_pending[w];

        n->irq_pending[w] = 0;
        while (bits) {
            unsigned q = w * 64 + (unsigned)__builtin_ctzll(bits);

            bits &= bits - 1;
            if (q < NV_NQ && n->cq[q].live && dbbuf_used(n, (uint16_t)q)) {
                cq_publish_ei(n, (uint16_t)q); /* before the host looks */
            }
            if (q < NV_NQ && n->cq[q].live && n->cq[q].ien) {
                n->st.interrupts_raised++;
                simpci_raise(n->pci, n->cq[q].iv);
            }
        }
    }
}

static int event_pick(const struct nvme_dev *n)
{
    for (unsigned i = 0; i < n->aer.nq; i++) {
        if (!(n->aer.masked & (1u << n->aer.q[i].type))) {
            return (int)i;
        }
    }
    return -1;
}

/* Complete outstanding Asynchronous Event Requests with queued events whose
 * type is not masked, while the admin CQ has room. */
static void aer_deliver(struct nvme_dev *n)
{
    while (nv_ready(n) && n->aer.n > 0 && !cq_full(&n->cq[0])) {
        int i = event_pick(n);
        struct nvme_cpl cpl = {0};
        struct nv_event ev;

        if (i < 0) {
            return;
        }
        ev = n->aer.q[i];
        memmove(&n->aer.q[i], &n->aer.q[i + 1], (n->aer.nq - (unsigned)i - 1) * sizeof(ev));
        n->aer.nq--;
        n->aer.masked |= (uint8_t)(1u << ev.type);
        cpl.dw0 = NVME_AER_DW0(ev.type, ev.info, ev.lid);
        cpl.sqhd = (uint16_t)n->sq[0].head;
        cpl.cid = n->aer.cids[0];
        memmove(&n->aer.cids[0], &n->aer.cids[1], (n->aer.n - 1) * sizeof(uint16_t));
        n->aer.n--;
        if (cq_post(n, 0, &cpl)) {
            return;
        }
        n->st.aer_completed++;
    }
}

/* Queue an event; it is delivered by aer_deliver(), after the completion of
 * the command that caused it, if any. */
static void event_add(struct nvme_dev *n, uint8_t type, uint8_t info, uint8_t lid)
{
    for (unsigned i = 0; i < n->aer.nq; i++) {
        if (n->aer.q[i].type == type && n->aer.q[i].info == info) {
            return; /* already queued */
        }
    }
    if (n->aer.nq == NV_MAX_EVENTS) {
        n->st.events_dropped++;
        return;
    }
    n->aer.q[n->aer.nq++] = (struct nv_event){type, info, lid};
}

static void doorbell_error(struct nvme_dev *n, uint8_t info, uint16_t qid, uint32_t val)
{
    n->st.doorbell_errors++;
    errlog_add(n, NV_NO_QUEUE, NV_NO_QUEUE, 0, 0, 0);
    vdx_log_ratelimited(&n->rl, VDX_LOG_DEBUG, "%s: " NV_NAME ": %s (queue %u, value %u)",
                        n->bdf,
                        info == NVME_AER_INFO_INVALID_DB ? "write to an invalid doorbell"
                                                         : "invalid doorbell value",
                        qid, val);
    event_add(n, NVME_AER_TYPE_ERROR, info, NVME_LOG_ERROR);
    aer_deliver(n);
}

/* SMART temperature warning from the thresholds (Base §5.27.1.4). */
static void temp_check(struct nvme_dev *n)
{
    bool warn =
        NVME_SIM_TEMP_K >= n->feat.temp_over || NVME_SIM_TEMP_K <= n->feat.temp_under;

    if (!warn) {
        n->crit_warn &= (uint8_t)~NVME_SMART_CRIT_TEMPERATURE;
        return;
    }
    if (n->crit_warn & NVME_SMART_CRIT_TEMPERATURE) {
        return;
    }
    n->crit_warn |= NVME_SMART_CRIT_TEMPERATURE;
    if (n->feat.aec & NVME_SMART_CRIT_TEMPERATURE) {
        event_add(n, NVME_AER_TYPE_SMART, NVME_AER_INFO_TEMP, NVME_LOG_SMART);
    }
}

/* Take an I/O SQ's tail from its shadow doorbell. False when it cannot be
 * read (CFS) or is out of range (an invalid doorbell value, as a register
 * write would be). */
static bool sq_shadow_tail(struct nvme_dev *n, uint16_t qid)
{
    uint32_t v;

    if (shadow_get(n, qid, false, &v)) {
        return false;
    }
    if (v >= n->sq[qid].size) {
        doorbell_error(n, NVME_AER_INFO_INVALID_DB_VALUE, qid, v);
        return false;
    }
    n->sq[qid].tail = v;
    return true;
}

/* Take an I/O CQ's head from its shadow doorbell; a head outside the
 * entries posted is an invalid doorbell value and changes nothing. */
static void cq_shadow_head(struct nvme_dev *n, uint16_t cqid)
{
    struct nv_cq *cq = &n->cq[cqid];
    uint32_t v;

    if (shadow_get(n, cqid, true, &v)) {
        return;
    }
    if (!nvme_cq_head_valid(cq->size, cq->head, cq->tail, v)) {
        doorbell_error(n, NVME_AER_INFO_INVALID_DB_VALUE, cqid, v);
        return;
    }
    cq->head = v;
}

/* Make the host's next head update of a doorbell-buffer CQ ring, for an SQ
 * that waits on it. The host moves the head in its shadow only, so read it
 * there first; then, when the CQ is full (`full`) or at least holds entries
 * the host has not consumed (else no head update is bound to come), set
 * EventIdx = the head just read from the shadow, then look again. If the head
 * did not move, the host's next update sees that EventIdx (its shadow store
 * precedes its EventIdx load, our EventIdx store precedes our second load)
 * and rings: armed, true. False when the host moved its head meanwhile, or
 * had already: the caller has room, or a host consuming, to go on with. Only
 * fresh heads are ever written over an armed EventIdx, so an arm holds until
 * its ring arrives (cq_head_write disarms). */
static bool cq_arm(struct nvme_dev *n, uint16_t cqid, bool full)
{
    struct nv_cq *cq = &n->cq[cqid];
    uint32_t head;

    cq_shadow_head(n, cqid);
    if (full ? !cq_full(cq) : cq->head == cq->tail) {
        return false;
    }
    head = cq->head;
    if (ei_put(n, cqid, true, head)) {
        return true; /* CFS: nothing runs until a reset */
    }
    atomic_thread_fence(memory_order_seq_cst); /* EventIdx store before the shadow load */
    cq_shadow_head(n, cqid);
    cq->armed = cq->head == head;
    return cq->armed;
}

/* Put a queue's value in both pages: at configuration its current tail or
 * head; at creation 0, whatever an earlier queue left there. */
static uint16_t dbbuf_slots_put(struct nvme_dev *n, uint16_t qid, bool is_cq, uint32_t val)
{
    uint32_t ei = val;

    if (!dbbuf_used(n, qid)) {
        return NVME_SC_SUCCESS;
    }
    if (dbbuf_rw(n, n->dbbuf.dbs, qid, is_cq, &val, VDX_DMA_FROM_DEVICE) ||
        dbbuf_rw(n, n->dbbuf.eis, qid, is_cq, &ei, VDX_DMA_FROM_DEVICE)) {
        n->st.dma_errors++;
        return NVME_SC_DATA_XFER_ERROR;
    }
    return NVME_SC_SUCCESS;
}

/* Doorbell Buffer Config: PRP1 the shadow doorbell page, PRP2 the EventIdx
 * page, each page aligned (Base §5.8). Queues that exist already get their
 * current values in both pages; replaces an earlier configuration. */
static uint16_t adm_dbbuf_config(struct nvme_dev *n, const struct nvme_cmd *c,
                                 uint32_t *dw0, bool *post)
{
    uint8_t probe[NV_DBBUF_SPAN];

    (void)dw0;
    (void)post;
    if ((c->prp1 | c->prp2) & (NVME_SIM_PAGE_SIZE - 1u)) {
        return NVME_SC_INVALID_FIELD;
    }
    if (dma(n, c->prp1, probe, sizeof(probe), VDX_DMA_TO_DEVICE) ||
        dma(n, c->prp2, probe, sizeof(probe), VDX_DMA_TO_DEVICE)) {
        n->st.dma_errors++;
        return NVME_SC_DATA_XFER_ERROR; /* keeps an earlier configuration */
    }
    n->dbbuf.dbs = c->prp1;
    n->dbbuf.eis = c->prp2;
    n->dbbuf.on = true;
    n->st.dbbuf_configs++;
    for (uint16_t q = 1; q <= n->nq; q++) {
        uint16_t st = n->sq[q].live ? dbbuf_slots_put(n, q, false, n->sq[q].tail) : 0;

        if (!st && n->cq[q].live) {
            st = dbbuf_slots_put(n, q, true, n->cq[q].head);
        }
        if (st) {
            n->dbbuf.on = false; /* pages readable, not writable */
            return st;
        }
    }
    return NVME_SC_SUCCESS;
}

/* ---- Controller state ------------------------------------------------------------ */

static void feat_defaults(struct nvme_dev *n)
{
    struct nv_feat *f = &n->feat_default;

    memset(f, 0, sizeof(*f));
    f->arbitration = 0x7u; /* Arbitration Burst: no limit */
    f->temp_over = NVME_SIM_WCTEMP_K;
    f->temp_under = 0;
    f->wce = n->vwc;
    f->nsqa = (uint16_t)n->nq;
    f->ncqa = (uint16_t)n->nq;
    f->irq_cd[0] = true; /* the admin queue is never coalesced */
}

/* Drop every queue, held command and pending event (controller reset). */
static void drop_state(struct nvme_dev *n)
{
    memset(n->sq, 0, sizeof(n->sq));
    memset(n->cq, 0, sizeof(n->cq));
    memset(&n->aer, 0, sizeof(n->aer));
    memset(n->irq_pending, 0, sizeof(n->irq_pending));
    memset(&n->dbbuf, 0, sizeof(n->dbbuf)); /* not retained across a reset (Base §5.8) */
    n->feat = n->feat_default;
    n->crit_warn &= (uint8_t)~NVME_SMART_CRIT_TEMPERATURE;
    n->r.intms = 0;
}

/* CC.EN 1 -> 0 (Base §3.7.2): AQA, ASQ, ACQ and CC are kept. */
static void ctrl_reset(struct nvme_dev *n)
{
    drop_state(n);
    n->r.csts = NVME_GET(n->r.cc, CC_SHN) ? (n->r.csts & NV_CSTS_SHST_BITS) : 0;
    n->st.resets++;
}

/* CC.EN 0 -> 1 (Base §3.5.1): bad configuration -> CFS, RDY stays 0. */
static void ctrl_enable(struct nvme_dev *n)
{
    uint32_t asqs = NVME_GET(n->r.aqa, AQA_ASQS) + 1,
             acqs = NVME_GET(n->r.aqa, AQA_ACQS) + 1;

    if (!nvme_cc_valid(n->r.cc, NV_CAP, n->r.aqa, n->r.asq, n->r.acq)) {
        n->r.csts = NVME_CSTS_CFS;
        n->st.cfs_events++;
        vdx_log_ratelimited(&n->rl, VDX_LOG_WARN,
                            "%s: " NV_NAME ": enabled with an invalid configuration "
                            "(CC 0x%x, AQA 0x%x): controller fatal status set",
                            n->bdf, n->r.cc, n->r.aqa);
        return;
    }
    n->sq[0] = (struct nv_sq){.base = n->r.asq, .size = asqs, .live = true};
    n->cq[0] = (struct nv_cq){
        .base = n->r.acq, .size = acqs, .nsq = 1, .live = true, .ien = true, .phase = true};
    n->r.csts = NVME_CSTS_RDY;
    temp_check(n);
}

/* CC.SHN written (Base §3.6): make everything durable, then report done. */
static void ctrl_shutdown(struct nvme_dev *n)
{
    int rc = nvme_store_sync(n->store);

    if (rc) {
        n->st.store_errors++;
        vdx_log(VDX_LOG_ERR, "%s: " NV_NAME ": flush at shutdown failed: %s", n->bdf,
                strerror(-rc));
    }
    n->r.csts =
        (n->r.csts & ~NV_CSTS_SHST_BITS) | NVME_SET(NVME_CSTS_SHST_COMPLETE, CSTS_SHST);
    n->st.shutdowns++;
}

static void cc_write(struct nvme_dev *n, uint32_t val)
{
    uint32_t old = n->r.cc;
    bool was_en = old & NVME_CC_EN, en = val & NVME_CC_EN;
    const uint32_t live_bits = NVME_CC_EN | NV_CC_SHN_BITS;

    /* While enabled only EN and SHN may change. */
    n->r.cc =
        (was_en && en) ? (old & ~live_bits) | (val & live_bits) : val & NV_CC_WRITABLE;
    if (NVME_GET(n->r.cc, CC_SHN) && !NVME_GET(old, CC_SHN)) {
        ctrl_shutdown(n);
    }
    if (was_en && !en) {
        ctrl_reset(n);
    } else if (!was_en && en) {
        ctrl_enable(n);
    }
}

/* Power-on state: FLR, hot reset, last client gone. Logs and totals stay. */
static void power_on_reset(struct nvme_dev *n)
{
    drop_state(n);
    memset(&n->r, 0, sizeof(n->r));
    n->crit_warn = 0;
    simpci_reset(n->pci);
}

/* ---- Registers ------------------------------------------------------------------- */

static uint32_t reg_read32(const struct nvme_dev *n, uint32_t off)
{
    switch (off) {
    case NVME_REG_CAP:
        return (uint32_t)NV_CAP;
    case NVME_REG_CAP + 4:
        return (uint32_t)(NV_CAP >> 32);
    case NVME_REG_VS:
        return NV_VS;
    case NVME_REG_INTMS:
    case NVME_REG_INTMC:
        return n->r.intms;
    case NVME_REG_CC:
        return n->r.cc;
    case NVME_REG_CSTS:
        return n->r.csts;
    case NVME_REG_AQA:
        return n->r.aqa;
    case NVME_REG_ASQ:
    case NVME_REG_ASQ + 4:
        return (uint32_t)(n->r.asq >> (8 * (off - NVME_REG_ASQ)));
    case NVME_REG_ACQ:
    case NVME_REG_ACQ + 4:
        return (uint32_t)(n->r.acq >> (8 * (off - NVME_REG_ACQ)));
    default:
        return 0; /* reserved, unimplemented (CMB, PMR, ...) and doorbells */
    }
}

/* Set the 32-bit half at `off` (0 or 4) of a 64-bit queue base register. */
static void set_half(uint64_t *reg, uint32_t off, uint32_t val)
{
    uint64_t v = off ? ((*reg & 0xffffffffull) | ((uint64_t)val << 32))
                     : ((*reg & ~0xffffffffull) | val);

    *reg = v & NVME_AQ_BASE_MASK;
}

static void reg_write32(struct nvme_dev *n, uint32_t off, uint32_t val)
{
    bool en = n->r.cc & NVME_CC_EN; /* admin queue registers are fixed while enabled */

    switch (off) {
    case NVME_REG_INTMS:
        n->r.intms |= val;
        break;
    case NVME_REG_INTMC:
        n->r.intms &= ~val;
        break;
    case NVME_REG_CC:
        cc_write(n, val);
        break;
    case NVME_REG_AQA:
        n->r.aqa = en ? n->r.aqa : (val & NV_AQA_WRITABLE);
        break;
    case NVME_REG_ASQ:
    case NVME_REG_ASQ + 4:
        if (!en) {
            set_half(&n->r.asq, off - NVME_REG_ASQ, val);
        }
        break;
    case NVME_REG_ACQ:
    case NVME_REG_ACQ + 4:
        if (!en) {
            set_half(&n->r.acq, off - NVME_REG_ACQ, val);
        }
        break;
    default:
        break; /* read-only or reserved */
    }
}

/* ---- Command dispatch ------------------------------------------------------------- */

static uint16_t admin_exec(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                           bool *post);
static uint16_t io_exec(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0);

static void count_status(struct nvme_dev *n, uint16_t qid, const struct nvme_cmd *c,
                         uint16_t st)
{
    if (st == NVME_SC_SUCCESS) {
        return;
    }
    if (st == NVME_SC_DATA_XFER_ERROR || NVME_GET(st, SF_SCT) == NVME_SCT_MEDIA) {
        if (st != NVME_SC_COMPARE_FAILURE) {
            errlog_add(n, qid, c->cid, st | NVME_SF_DNR, c->nsid, 0);
        }
        return;
    }
    if (st != NVME_SC_INTERNAL) {
        n->st.invalid_cmds++;
    }
    vdx_log_ratelimited(&n->rl, VDX_LOG_DEBUG,
                        "%s: " NV_NAME ": queue %u opcode 0x%02x cid %u: status 0x%03x",
                        n->bdf, qid, c->opc, c->cid, st);
}

/* Fetch, run and complete the command at the head of `qid`. Returns 0, or
 * -EFAULT when the queue is unreachable (CFS set). */
static int run_one(struct nvme_dev *n, uint16_t qid)
{
    struct nv_sq *sq = &n->sq[qid];
    uint8_t raw[NVME_SQE_SIZE];
    struct nvme_cpl cpl = {0};
    struct nvme_cmd c;
    bool post = true;

    if (dma(n, sq->base + (uint64_t)sq->head * NVME_SQE_SIZE, raw, sizeof(raw),
            VDX_DMA_TO_DEVICE)) {
        nv_fatal(n, "fetch from submission", qid);
        return -EFAULT;
    }
    sq->head = (sq->head + 1) % sq->size;
    nvme_cmd_decode(raw, sizeof(raw), &c);
    cpl.status = qid == 0 ? admin_exec(n, &c, &cpl.dw0, &post) : io_exec(n, &c, &cpl.dw0);
    count_status(n, qid, &c, cpl.status);
    if (!post) {
        return 0; /* an Asynchronous Event Request, held */
    }
    cpl.sqhd = (uint16_t)sq->head;
    cpl.sqid = qid;
    cpl.cid = c.cid;
    return cq_post(n, sq->cqid, &cpl);
}

/* Process `qid` up to its tail, at most one queue's worth of entries. */
static void process_sq(struct nvme_dev *n, uint16_t qid)
{
    struct nv_sq *sq = &n->sq[qid];

    sq->stalled = false;
    for (uint32_t budget = sq->size; budget > 0 && sq->live && sq->head != sq->tail;
         budget--) {
        if (!nv_ready(n)) {
            return;
        }
        if (cq_full(&n->cq[sq->cqid]) &&
            (!dbbuf_used(n, sq->cqid) || cq_arm(n, sq->cqid, true))) {
            sq->stalled = true; /* resumed by the head doorbell */
            return;
        }
        if (run_one(n, qid)) {
            return;
        }
        if (qid == 0) {
            aer_deliver(n);
        }
    }
}

static bool queue_exists(const struct nvme_dev *n, uint16_t qid, bool is_cq)
{
    return qid <= n->nq && (is_cq ? n->cq[qid].live : n->sq[qid].live);
}

/* Park an SQ whose host keeps submitting: stalled, with its CQ armed, so the
 * head update that consumes the completions outstanding rings and resumes it.
 * Only when that update must come: completions outstanding and the arm held;
 * false otherwise (the host is consuming as fast: the caller goes on). */
static bool sq_park(struct nvme_dev *n, uint16_t qid)
{
    struct nv_sq *sq = &n->sq[qid];

    if (!dbbuf_used(n, sq->cqid) || !cq_arm(n, sq->cqid, false)) {
        return false;
    }
    sq->stalled = true;
    n->st.sq_parked++;
    vdx_log_ratelimited(&n->rl, VDX_LOG_DEBUG,
                        "%s: " NV_NAME ": queue %u kept submitting for %u passes: "
                        "parked until its next completion head update",
                        n->bdf, qid, NV_SHADOW_PASSES);
    return true;
}

/* Run an I/O SQ of a doorbell buffer: process up to the shadow tail, leave
 * EventIdx = that tail so the next submission rings, then look at the shadow
 * again for a submission made before the host saw the new EventIdx (it did
 * not ring). A host still submitting after NV_SHADOW_PASSES passes is parked
 * (sq_park) if it can be, else served on: it only stays here by submitting
 * and consuming without pause, i.e. by keeping the device busy with work. */
static void sq_run_shadow(struct nvme_dev *n, uint16_t qid)
{
    struct nv_sq *sq = &n->sq[qid];

    if (!sq_shadow_tail(n, qid)) {
        return;
    }
    for (unsigned pass = 1;; pass++) {
        uint32_t done;

        process_sq(n, qid);
        if (!sq->live || !nv_ready(n) || sq->stalled || sq->head != sq->tail) {
            return;
        }
        done = sq->tail;
        if (ei_put(n, qid, false, done)) {
            return;
        }
        atomic_thread_fence(memory_order_seq_cst); /* EventIdx store before the load */
        if (!sq_shadow_tail(n, qid) || sq->tail == done) {
            return;
        }
        if (pass >= NV_SHADOW_PASSES && sq_park(n, qid)) {
            return;
        }
    }
}

static void sq_tail_write(struct nvme_dev *n, uint16_t qid, uint32_t val)
{
    if (!queue_exists(n, qid, false)) {
        doorbell_error(n, NVME_AER_INFO_INVALID_DB, qid, val);
        return;
    }
    if (val >= n->sq[qid].size) {
        doorbell_error(n, NVME_AER_INFO_INVALID_DB_VALUE, qid, val);
        return;
    }
    if (dbbuf_used(n, qid)) {
        sq_run_shadow(n, qid);
        return;
    }
    n->sq[qid].tail = val;
    process_sq(n, qid);
}

static void cq_head_write(struct nvme_dev *n, uint16_t qid, uint32_t val)
{
    struct nv_cq *cq = &n->cq[qid < NV_NQ ? qid : 0];

    if (!queue_exists(n, qid, true)) {
        doorbell_error(n, NVME_AER_INFO_INVALID_DB, qid, val);
        return;
    }
    if (dbbuf_used(n, qid)) {
        if (val >= cq->size) {
            doorbell_error(n, NVME_AER_INFO_INVALID_DB_VALUE, qid, val);
            return;
        }
        cq_shadow_head(n, qid); /* the register value may be older */
        cq->armed = false;      /* the ring it asked for; a stalled SQ arms again */
    } else if (!nvme_cq_head_valid(cq->size, cq->head, cq->tail, val)) {
        doorbell_error(n, NVME_AER_INFO_INVALID_DB_VALUE, qid, val);
        return;
    } else {
        cq->head = val;
    }
    if (qid == 0) {
        aer_deliver(n);
    }
    for (uint16_t q = 0; q <= n->nq; q++) {
        if (!n->sq[q].live || !n->sq[q].stalled || n->sq[q].cqid != qid) {
            continue;
        }
        if (dbbuf_used(n, q)) {
            sq_run_shadow(n, q); /* it may have moved its tail without ringing */
        } else {
            process_sq(n, q);
        }
    }
}

static void doorbell_write(struct nvme_dev *n, uint64_t off, uint32_t val)
{
    uint16_t qid;
    bool is_cq;

    if (!nv_ready(n) || nvme_db_decode(off, &qid, &is_cq)) {
        return; /* a controller that is not ready ignores doorbells */
    }
    n->st.doorbell_writes++;
    if (is_cq) {
        cq_head_write(n, qid, val);
    } else {
        sq_tail_write(n, qid, val);
    }
}

/* ---- Identify ---------------------------------------------------------------------- */

static void build_id_ctrl(const struct nvme_dev *n, struct nvme_id_ctrl *id)
{
    memset(id, 0, sizeof(*id));
    id->vid = NVME_SIM_VENDOR_ID;
    id->ssvid = NVME_SIM_VENDOR_ID;
    nvme_put_ascii(id->sn, sizeof(id->sn), n->serial);
    nvme_put_ascii(id->mn, sizeof(id->mn), NVME_SIM_MODEL);
    nvme_put_ascii(id->fr, sizeof(id->fr), NVME_SIM_FIRMWARE);
    id->mdts = NVME_SIM_MDTS;
    id->cntlid = 1;
    id->ver = NV_VS;
    id->cntrltype = NVME_CNTRLTYPE_IO;
    id->acl = NVME_SIM_ACL;
    id->aerl = NVME_SIM_AERL;
    id->frmw = NVME_FRMW_SLOT1_RO | NVME_SET(1, FRMW_NSLOTS);
    id->lpa = NVME_LPA_SMART_PER_NS | NVME_LPA_EXT_DATA;
    id->elpe = NVME_SIM_ELPE;
    id->wctemp = NVME_SIM_WCTEMP_K;
    id->cctemp = NVME_SIM_CCTEMP_K;
    nvme_put_u128(id->tnvmcap, n->size);
    id->sqes = NVME_SET(NVME_SQES_LOG2, QES_MAX) | NVME_SET(NVME_SQES_LOG2, QES_MIN);
    id->cqes = NVME_SET(NVME_CQES_LOG2, QES_MAX) | NVME_SET(NVME_CQES_LOG2, QES_MIN);
    id->nn = 1;
    id->oacs = NVME_OACS_DBBUF;
    id->oncs = NVME_ONCS_COMPARE | NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES;
    id->vwc = n->vwc ? NVME_VWC_PRESENT | NVME_SET(NVME_VWC_FLUSH_NSID_ALL, VWC_FLUSH) : 0;
    snprintf(id->subnqn, sizeof(id->subnqn), "nqn.2024-01.io.vfio-dext:sim-nvme:%s",
             n->serial);
    id->psd[0].mp = 2500; /* 25 W */
}

static void build_id_ns(const struct nvme_dev *n, struct nvme_id_ns *id)
{
    memset(id, 0, sizeof(*id));
    id->nsze = n->nsze;
    id->ncap = n->nsze;
    id->nuse = n->nsze;
    id->nlbaf = 0; /* one format */
    id->flbas = 0;
    /* Deallocated blocks read as zeroes only where deallocating zeroes them. */
    id->dlfeat =
        nvme_store_cheap_zero(n->store) ? NVME_DLFEAT_READ_ZEROES | NVME_DLFEAT_WZ_DEAC : 0;
    nvme_put_u128(id->nvmcap, n->size);
    memcpy(id->nguid, n->nguid, sizeof(id->nguid));
    id->lbaf[0] = NVME_SET(NVME_SIM_LBA_SHIFT, LBAF_LBADS);
}

static size_t put_desc(uint8_t *p, uint8_t type, const void *id, uint8_t len)
{
    p[0] = type;
    p[1] = len;
    memcpy(p + 4, id, len);
    return 4u + len;
}

static void build_ns_descs(const struct nvme_dev *n, uint8_t *buf)
{
    const uint8_t csi = NVME_CSI_NVM;
    size_t pos = 0;

    memset(buf, 0, NVME_IDENTIFY_SIZE);
    pos += put_desc(buf + pos, NVME_NIDT_NGUID, n->nguid, sizeof(n->nguid));
    put_desc(buf + pos, NVME_NIDT_CSI, &csi, 1);
}

/* Active namespace list: NSIDs greater than `nsid` (Base §5.17.2.2). */
static uint16_t build_ns_list(uint32_t nsid, uint8_t *buf)
{
    const uint32_t one = 1;

    if (nsid >= 0xfffffffeu) {
        return NVME_SC_INVALID_NS;
    }
    memset(buf, 0, NVME_IDENTIFY_SIZE);
    if (nsid < 1) {
        memcpy(buf, &one, sizeof(one));
    }
    return NVME_SC_SUCCESS;
}

static uint16_t identify_build(struct nvme_dev *n, const struct nvme_cmd *c)
{
    uint8_t cns = (uint8_t)NVME_GET(c->cdw10, IDENTIFY_CNS);
    uint8_t csi = (uint8_t)NVME_GET(c->cdw11, IDENTIFY_CSI);

    memset(n->buf, 0, NVME_IDENTIFY_SIZE);
    switch (cns) {
    case NVME_CNS_NS:
    case NVME_CNS_NS_DESC:
    case NVME_CNS_CS_NS:
        if (cns == NVME_CNS_CS_NS && csi != NVME_CSI_NVM) {
            return NVME_SC_INVALID_FIELD;
        }
        if (c->nsid != 1) {
            return NVME_SC_INVALID_NS;
        }
        if (cns == NVME_CNS_NS) {
            build_id_ns(n, (struct nvme_id_ns *)n->buf);
        } else if (cns == NVME_CNS_NS_DESC) {
            build_ns_descs(n, n->buf);
        }
        return NVME_SC_SUCCESS; /* CNS 05h: no NVM-specific fields in use */
    case NVME_CNS_CTRL:
        build_id_ctrl(n, (struct nvme_id_ctrl *)n->buf);
        return NVME_SC_SUCCESS;
    case NVME_CNS_CS_CTRL: /* NVM CS §4.1.5.2: every limit "not reported" */
        return csi == NVME_CSI_NVM ? NVME_SC_SUCCESS : NVME_SC_INVALID_FIELD;
    case NVME_CNS_NS_ACTIVE:
    case NVME_CNS_CS_NS_ACTIVE:
        if (cns == NVME_CNS_CS_NS_ACTIVE && csi != NVME_CSI_NVM) {
            return NVME_SC_INVALID_FIELD;
        }
        return build_ns_list(c->nsid, n->buf);
    default:
        return NVME_SC_INVALID_FIELD;
    }
}

static uint16_t adm_identify(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                             bool *post)
{
    uint16_t st = identify_build(n, c);

    (void)dw0;
    (void)post;
    return st ? st : xfer(n, c, n->buf, NVME_IDENTIFY_SIZE, VDX_DMA_FROM_DEVICE);
}

/* ---- Queue management ------------------------------------------------------------- */

static struct nvme_queue_limits queue_limits(const struct nvme_dev *n, uint16_t max_qid)
{
    return (struct nvme_queue_limits){max_qid, NVME_SIM_MQES, n->nvec, NVME_SIM_PAGE_SIZE};
}

static uint16_t adm_create_cq(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                              bool *post)
{
    struct nvme_queue_limits l = queue_limits(n, n->feat.ncqa);
    struct nvme_create_q q;
    uint16_t st = nvme_create_cq_parse(c, &l, &q);

    (void)dw0;
    (void)post;
    if (st) {
        return st;
    }
    if (n->cq[q.qid].live) {
        return NVME_SC_INVALID_QID;
    }
    st = dbbuf_slots_put(n, q.qid, true, 0);
    if (st) {
        return st;
    }
    n->cq[q.qid] = (struct nv_cq){.base = q.base,
                                  .size = q.size,
                                  .iv = q.iv,
                                  .live = true,
                                  .ien = q.ien,
                                  .phase = true};
    return NVME_SC_SUCCESS;
}

static uint16_t adm_create_sq(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                              bool *post)
{
    struct nvme_queue_limits l = queue_limits(n, n->feat.nsqa);
    struct nvme_create_q q;
    uint16_t st = nvme_create_sq_parse(c, &l, &q);

    (void)dw0;
    (void)post;
    if (st) {
        return st;
    }
    if (n->sq[q.qid].live) {
        return NVME_SC_INVALID_QID;
    }
    if (!queue_exists(n, q.cqid, true)) {
        return NVME_SC_CQ_INVALID;
    }
    st = dbbuf_slots_put(n, q.qid, false, 0);
    if (st) {
        return st;
    }
    n->sq[q.qid] =
        (struct nv_sq){.base = q.base, .size = q.size, .cqid = q.cqid, .live = true};
    n->cq[q.cqid].nsq++;
    return NVME_SC_SUCCESS;
}

static uint16_t adm_delete_sq(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                              bool *post)
{
    uint16_t qid = (uint16_t)NVME_GET(c->cdw10, QUEUE_QID);

    (void)dw0;
    (void)post;
    if (qid == 0 || !queue_exists(n, qid, false)) {
        return NVME_SC_INVALID_QID;
    }
    n->cq[n->sq[qid].cqid].nsq--;
    memset(&n->sq[qid], 0, sizeof(n->sq[qid]));
    return NVME_SC_SUCCESS;
}

static uint16_t adm_delete_cq(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                              bool *post)
{
    uint16_t qid = (uint16_t)NVME_GET(c->cdw10, QUEUE_QID);

    (void)dw0;
    (void)post;
    if (qid == 0 || !queue_exists(n, qid, true)) {
        return NVME_SC_INVALID_QID;
    }
    if (n->cq[qid].nsq) {
        return NVME_SC_INVALID_QUEUE_DELETION;
    }
    memset(&n->cq[qid], 0, sizeof(n->cq[qid]));
    n->irq_pending[qid / 64] &= ~(1ull << (qid % 64));
    return NVME_SC_SUCCESS;
}

/* ---- Log pages ---------------------------------------------------------------------- */

static void put_le16_bytes(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static size_t build_smart(const struct nvme_dev *n, uint8_t *out)
{
    struct nvme_smart_log *s = (struct nvme_smart_log *)out;

    memset(s, 0, sizeof(*s));
    s->critical_warning = n->crit_warn;
    put_le16_bytes(s->temperature, NVME_SIM_TEMP_K);
    s->avail_spare = 100;
    s->spare_thresh = 10;
    nvme_put_u128(s->data_units_read, nvme_data_units(n->st.units_read));
    nvme_put_u128(s->data_units_written, nvme_data_units(n->st.units_written));
    nvme_put_u128(s->host_reads, n->st.reads + n->st.compares);
    nvme_put_u128(s->host_writes, n->st.writes);
    nvme_put_u128(s->power_cycles, 1);
    nvme_put_u128(s->media_errors, n->st.store_errors);
    nvme_put_u128(s->num_err_log_entries, n->error_count);
    return sizeof(*s);
}

/* Newest entry first; unused entries are zero (Base §5.16.1.2). */
static size_t build_errlog(const struct nvme_dev *n, uint8_t *out)
{
    struct nvme_error_log *e = (struct nvme_error_log *)out;
    uint64_t used = n->error_count < NV_ERRLOG_LEN ? n->error_count : NV_ERRLOG_LEN;

    memset(e, 0, NV_ERRLOG_LEN * sizeof(*e));
    for (unsigned i = 0; i < used; i++) {
        unsigned at = (n->errlog_next + NV_ERRLOG_LEN - 1 - i) % NV_ERRLOG_LEN;

        e[i] = n->errlog[at];
    }
    return NV_ERRLOG_LEN * sizeof(*e);
}

static size_t build_fw_slot(uint8_t *out)
{
    struct nvme_fw_slot_log *f = (struct nvme_fw_slot_log *)out;

    memset(f, 0, sizeof(*f));
    f->afi = 0x01; /* slot 1 active */
    nvme_put_ascii(f->frs[0], sizeof(f->frs[0]), NVME_SIM_FIRMWARE);
    return sizeof(*f);
}

/* Build log `lid` into n->aux; returns its size, 0 with *st set on error. */
static size_t build_log(struct nvme_dev *n, const struct nvme_cmd *c, uint8_t lid,
                        uint16_t *st)
{
    switch (lid) {
    case NVME_LOG_ERROR:
        return build_errlog(n, n->aux);
    case NVME_LOG_SMART:
        if (c->nsid != 0 && c->nsid != 1 && c->nsid != NVME_NSID_ALL) {
            *st = NVME_SC_INVALID_NS;
            return 0;
        }
        return build_smart(n, n->aux);
    case NVME_LOG_FW_SLOT:
        return build_fw_slot(n->aux);
    default:
        *st = NVME_SC_INVALID_LOG_PAGE;
        return 0;
    }
}

/* Reading a log clears the event type it reports, unless RAE (Base §5.2). */
static void log_read_done(struct nvme_dev *n, uint8_t lid)
{
    if (lid == NVME_LOG_ERROR) {
        n->aer.masked &= (uint8_t) ~(1u << NVME_AER_TYPE_ERROR);
    } else if (lid == NVME_LOG_SMART) {
        n->aer.masked &= (uint8_t) ~(1u << NVME_AER_TYPE_SMART);
    }
}

static uint16_t adm_get_log(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                            bool *post)
{
    struct nvme_get_log g;
    uint16_t st = nvme_get_log_parse(c, NVME_SIM_MAX_XFER, &g);
    size_t size;

    (void)dw0;
    (void)post;
    if (st) {
        return st;
    }
    size = build_log(n, c, g.lid, &st);
    if (st) {
        return st;
    }
    if (g.offset >= size) {
        return NVME_SC_INVALID_FIELD;
    }
    memset(n->buf, 0, g.len);
    memcpy(n->buf, n->aux + g.offset, g.len < size - g.offset ? g.len : size - g.offset);
    st = xfer(n, c, n->buf, g.len, VDX_DMA_FROM_DEVICE);
    if (!st && !g.rae) {
        log_read_done(n, g.lid);
    }
    return st;
}

/* ---- Features ----------------------------------------------------------------------- */

struct feat_def {
    uint8_t fid;
    uint8_t caps; /* NVME_FEAT_CAP_* */
};

static const struct feat_def feat_defs[] = {
    {NVME_FEAT_ARBITRATION, NVME_FEAT_CAP_CHANGE},
    {NVME_FEAT_POWER_MGMT, NVME_FEAT_CAP_CHANGE},
    {NVME_FEAT_TEMP_THRESH, NVME_FEAT_CAP_CHANGE},
    {NVME_FEAT_ERROR_RECOVERY, NVME_FEAT_CAP_CHANGE | NVME_FEAT_CAP_NS},
    {NVME_FEAT_VOLATILE_WC, NVME_FEAT_CAP_CHANGE},
    {NVME_FEAT_NUM_QUEUES, NVME_FEAT_CAP_CHANGE},
    {NVME_FEAT_IRQ_COALESCE, NVME_FEAT_CAP_CHANGE},
    {NVME_FEAT_IRQ_CONFIG, NVME_FEAT_CAP_CHANGE},
    {NVME_FEAT_WRITE_ATOMIC, NVME_FEAT_CAP_CHANGE},
    {NVME_FEAT_ASYNC_EVENT, NVME_FEAT_CAP_CHANGE},
};

static const struct feat_def *feat_find(const struct nvme_dev *n, uint8_t fid)
{
    if (fid == NVME_FEAT_VOLATILE_WC && !n->vwc) {
        return NULL; /* no volatile write cache: the feature does not exist */
    }
    for (size_t i = 0; i < sizeof(feat_defs) / sizeof(feat_defs[0]); i++) {
        if (feat_defs[i].fid == fid) {
            return &feat_defs[i];
        }
    }
    return NULL;
}

/* Temperature Threshold CDW11: TMPTH 15:0, TMPSEL 19:16 (composite 0h or all
 * Fh: the only sensor), THSEL 21:20 (0 over, 1 under). */
static uint16_t temp_sel(uint32_t cdw11, bool *under)
{
    uint32_t tmpsel = NVME_GET(cdw11, FEAT_TMPSEL), thsel = NVME_GET(cdw11, FEAT_THSEL);

    if ((tmpsel != 0 && tmpsel != NVME_FEAT_TMPSEL_MASK) || thsel > NVME_THSEL_UNDER) {
        return NVME_SC_INVALID_FIELD;
    }
    *under = thsel == NVME_THSEL_UNDER;
    return NVME_SC_SUCCESS;
}

static uint16_t feat_value(const struct nvme_dev *n, const struct nv_feat *f,
                           const struct nvme_cmd *c, uint8_t fid, uint32_t *dw0)
{
    uint32_t iv = NVME_GET(c->cdw11, FEAT_IV);
    bool under = false;
    uint16_t st;

    switch (fid) {
    case NVME_FEAT_ARBITRATION:
        *dw0 = f->arbitration;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_POWER_MGMT:
        *dw0 = f->power_mgmt;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_TEMP_THRESH:
        st = temp_sel(c->cdw11, &under);
        *dw0 = (under ? f->temp_under : f->temp_over) | (c->cdw11 & 0x3f0000u);
        return st;
    case NVME_FEAT_ERROR_RECOVERY:
        *dw0 = f->error_recovery;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_VOLATILE_WC:
        *dw0 = f->wce ? 1u : 0u;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_NUM_QUEUES:
        *dw0 = NVME_SET(f->ncqa - 1, FEAT_NQ_CQ) | NVME_SET(f->nsqa - 1, FEAT_NQ_SQ);
        return NVME_SC_SUCCESS;
    case NVME_FEAT_IRQ_COALESCE:
        *dw0 = f->irq_coalesce;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_IRQ_CONFIG:
        if (iv >= n->nvec) {
            return NVME_SC_INVALID_FIELD;
        }
        *dw0 = iv | (f->irq_cd[iv] ? NVME_FEAT_IV_CD : 0u);
        return NVME_SC_SUCCESS;
    case NVME_FEAT_WRITE_ATOMIC:
        *dw0 = f->write_atomic;
        return NVME_SC_SUCCESS;
    default: /* NVME_FEAT_ASYNC_EVENT */
        *dw0 = f->aec;
        return NVME_SC_SUCCESS;
    }
}

/* NSID rules (Base §5.27): a namespace-specific feature takes an active NSID
 * or FFFFFFFFh; any other takes 0 or FFFFFFFFh. */
static uint16_t feat_nsid(const struct feat_def *d, uint32_t nsid, bool strict)
{
    if (nsid == NVME_NSID_ALL) {
        return NVME_SC_SUCCESS;
    }
    if (d->caps & NVME_FEAT_CAP_NS) {
        return nsid == 1 ? NVME_SC_SUCCESS : NVME_SC_INVALID_NS;
    }
    if (nsid == 0 || !strict) {
        return NVME_SC_SUCCESS;
    }
    return nsid == 1 ? NVME_SC_FEAT_NOT_NS_SPECIFIC : NVME_SC_INVALID_NS;
}

static uint16_t adm_get_features(struct nvme_dev *n, const struct nvme_cmd *c,
                                 uint32_t *dw0, bool *post)
{
    uint8_t fid = (uint8_t)NVME_GET(c->cdw10, FEAT_FID);
    unsigned sel = NVME_GET(c->cdw10, FEAT_SEL);
    const struct feat_def *d = feat_find(n, fid);
    uint16_t st;

    (void)post;
    if (!d || sel > NVME_SEL_SUPPORTED) {
        return NVME_SC_INVALID_FIELD;
    }
    st = feat_nsid(d, c->nsid, false);
    if (st) {
        return st;
    }
    if (sel == NVME_SEL_SUPPORTED) {
        *dw0 = d->caps;
        return NVME_SC_SUCCESS;
    }
    /* Not saveable: the saved value is the default. */
    return feat_value(n, sel == NVME_SEL_CURRENT ? &n->feat : &n->feat_default, c, fid,
                      dw0);
}

static uint16_t set_num_queues(struct nvme_dev *n, uint32_t cdw11, uint32_t *dw0)
{
    uint32_t nsqr = NVME_GET(cdw11, FEAT_NQ_SQ), ncqr = NVME_GET(cdw11, FEAT_NQ_CQ);

    if (nsqr == NVME_FEAT_NQ_SQ_MASK || ncqr == NVME_FEAT_NQ_CQ_MASK) { /* 65536 */
        return NVME_SC_INVALID_FIELD;
    }
    for (unsigned q = 1; q <= n->nq; q++) {
        if (n->sq[q].live || n->cq[q].live) {
            return NVME_SC_CMD_SEQ_ERROR; /* only before I/O queues exist */
        }
    }
    n->feat.nsqa = (uint16_t)(nsqr + 1 < n->nq ? nsqr + 1 : n->nq);
    n->feat.ncqa = (uint16_t)(ncqr + 1 < n->nq ? ncqr + 1 : n->nq);
    *dw0 = NVME_SET(n->feat.ncqa - 1, FEAT_NQ_CQ) | NVME_SET(n->feat.nsqa - 1, FEAT_NQ_SQ);
    return NVME_SC_SUCCESS;
}

static uint16_t set_temp(struct nvme_dev *n, uint32_t cdw11)
{
    bool under = false;
    uint16_t st = temp_sel(cdw11, &under);

    if (st) {
        return st;
    }
    if (under) {
        n->feat.temp_under = (uint16_t)NVME_GET(cdw11, FEAT_TMPTH);
    } else {
        n->feat.temp_over = (uint16_t)NVME_GET(cdw11, FEAT_TMPTH);
    }
    temp_check(n);
    return NVME_SC_SUCCESS;
}

static uint16_t set_wce(struct nvme_dev *n, uint32_t cdw11)
{
    bool wce = cdw11 & 1u;

    if (n->feat.wce && !wce && nvme_store_sync(n->store)) {
        n->st.store_errors++;
        return NVME_SC_INTERNAL; /* the cache could not be written back */
    }
    n->feat.wce = wce;
    return NVME_SC_SUCCESS;
}

static uint16_t set_irq_config(struct nvme_dev *n, uint32_t cdw11)
{
    uint32_t iv = NVME_GET(cdw11, FEAT_IV);

    if (iv >= n->nvec) {
        return NVME_SC_INVALID_FIELD;
    }
    n->feat.irq_cd[iv] = (cdw11 & NVME_FEAT_IV_CD) != 0;
    return NVME_SC_SUCCESS;
}

static uint16_t feat_set(struct nvme_dev *n, uint8_t fid, uint32_t cdw11, uint32_t *dw0)
{
    switch (fid) {
    case NVME_FEAT_ARBITRATION:
        n->feat.arbitration = cdw11 & 0xffffff07u;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_POWER_MGMT: /* PS 4:0 (NPSS = 0), WH 7:5 */
        if ((cdw11 & 0x1fu) != 0 || ((cdw11 >> 5) & 0x7u) > 2) {
            return NVME_SC_INVALID_FIELD;
        }
        n->feat.power_mgmt = cdw11 & 0xffu;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_TEMP_THRESH:
        return set_temp(n, cdw11);
    case NVME_FEAT_ERROR_RECOVERY: /* TLER 15:0; DULBE (bit 16) unsupported */
        if (cdw11 & 0x10000u) {
            return NVME_SC_INVALID_FIELD;
        }
        n->feat.error_recovery = cdw11 & 0xffffu;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_VOLATILE_WC:
        return set_wce(n, cdw11);
    case NVME_FEAT_NUM_QUEUES:
        return set_num_queues(n, cdw11, dw0);
    case NVME_FEAT_IRQ_COALESCE:
        n->feat.irq_coalesce = cdw11 & 0xffffu;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_IRQ_CONFIG:
        return set_irq_config(n, cdw11);
    case NVME_FEAT_WRITE_ATOMIC:
        n->feat.write_atomic = cdw11 & 1u;
        return NVME_SC_SUCCESS;
    default: /* NVME_FEAT_ASYNC_EVENT */
        n->feat.aec = cdw11 & NV_AEC_MASK;
        return NVME_SC_SUCCESS;
    }
}

static uint16_t adm_set_features(struct nvme_dev *n, const struct nvme_cmd *c,
                                 uint32_t *dw0, bool *post)
{
    uint8_t fid = (uint8_t)NVME_GET(c->cdw10, FEAT_FID);
    const struct feat_def *d = feat_find(n, fid);
    uint16_t st;

    (void)post;
    if (c->cdw10 & NVME_FEAT_SV) {
        return NVME_SC_FEAT_NOT_SAVEABLE;
    }
    if (!d) {
        return NVME_SC_INVALID_FIELD;
    }
    st = feat_nsid(d, c->nsid, true);
    return st ? st : feat_set(n, fid, c->cdw11, dw0);
}

/* ---- Other admin commands ---------------------------------------------------------- */

static uint16_t adm_abort(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                          bool *post)
{
    (void)n;
    (void)c;
    (void)post;
    *dw0 = 1; /* not aborted: every command completes before the next is fetched */
    return NVME_SC_SUCCESS;
}

static uint16_t adm_aer(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                        bool *post)
{
    (void)dw0;
    if (n->aer.n == NVME_SIM_AERL + 1u) {
        return NVME_SC_AER_LIMIT;
    }
    n->aer.cids[n->aer.n++] = c->cid;
    *post = false;
    return NVME_SC_SUCCESS;
}

typedef uint16_t (*admin_fn)(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                             bool *post);

static const struct {
    uint8_t opc;
    admin_fn fn;
} admin_cmds[] = {
    {NVME_ADM_DELETE_SQ, adm_delete_sq},
    {NVME_ADM_CREATE_SQ, adm_create_sq},
    {NVME_ADM_GET_LOG_PAGE, adm_get_log},
    {NVME_ADM_DELETE_CQ, adm_delete_cq},
    {NVME_ADM_CREATE_CQ, adm_create_cq},
    {NVME_ADM_IDENTIFY, adm_identify},
    {NVME_ADM_ABORT, adm_abort},
    {NVME_ADM_SET_FEATURES, adm_set_features},
    {NVME_ADM_GET_FEATURES, adm_get_features},
    {NVME_ADM_ASYNC_EVENT, adm_aer},
    {NVME_ADM_DBBUF_CONFIG, adm_dbbuf_config},
};

static bool aer_cid_in_use(const struct nvme_dev *n, uint16_t cid)
{
    for (unsigned i = 0; i < n->aer.n; i++) {
        if (n->aer.cids[i] == cid) {
            return true;
        }
    }
    return false;
}

static uint16_t admin_exec(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0,
                           bool *post)
{
    n->st.admin_cmds++;
    for (size_t i = 0; i < sizeof(admin_cmds) / sizeof(admin_cmds[0]); i++) {
        uint16_t st;

        if (admin_cmds[i].opc != c->opc) {
            continue;
        }
        st = nvme_cmd_check_common(c);
        if (!st && aer_cid_in_use(n, c->cid)) {
            st = NVME_SC_CID_CONFLICT; /* the CID of a held AER */
        }
        return st ? st : admin_cmds[i].fn(n, c, dw0, post);
    }
    return NVME_SC_INVALID_OPCODE;
}

/* ---- I/O commands ------------------------------------------------------------------- */

static uint16_t store_failed(struct nvme_dev *n, const char *what, int rc, uint16_t st)
{
    n->st.store_errors++;
    vdx_log_ratelimited(&n->rl, VDX_LOG_ERR, "%s: " NV_NAME ": backing store %s failed: %s",
                        n->bdf, what, strerror(-rc));
    return st;
}

/* After a write: make it durable when asked (FUA) or when no cache is on. */
static uint16_t write_through(struct nvme_dev *n, bool fua)
{
    int rc;

    if (!n->vwc || (!fua && n->feat.wce)) {
        return NVME_SC_SUCCESS;
    }
    rc = nvme_store_sync(n->store);
    return rc ? store_failed(n, "sync", rc, NVME_SC_WRITE_FAULT) : NVME_SC_SUCCESS;
}

/* The medium's bytes [off, off + len): the RAM store itself, or the file's
 * bytes read into `bounce`. NULL after a store error (counted, *st set). */
static const uint8_t *medium_read(struct nvme_dev *n, uint64_t off, uint64_t len,
                                  uint8_t *bounce, uint16_t *st)
{
    const uint8_t *p = nvme_store_ptr(n->store, off, len);
    int rc;

    if (p) {
        return p;
    }
    rc = nvme_store_read(n->store, off, bounce, len);
    if (rc) {
        *st = store_failed(n, "read", rc, NVME_SC_UNRECOVERED_READ);
        return NULL;
    }
    return bounce;
}

/*
 * Write the mapped data of a Write to the medium at off. One run into a RAM
 * store is copied straight from host memory into the store: one DMA, which
 * the IOMMU makes all or nothing. Otherwise the data goes through the bounce
 * buffer first, so that a Data Transfer Error on any run leaves the medium
 * untouched too. NVMe promises nothing about the blocks of a failed Write
 * (a real device may have written part of them); this device promises more:
 * a failed Write stores nothing (docs/nvme.md).
 */
static uint16_t medium_write(struct nvme_dev *n, uint64_t off, uint64_t len, unsigned nruns)
{
    uint8_t *p = nvme_store_ptr(n->store, off, len);
    uint16_t st;
    int rc;

    if (p && nruns == 1) {
        return data_move(n, 1, p, VDX_DMA_TO_DEVICE);
    }
    st = data_move(n, nruns, n->buf, VDX_DMA_TO_DEVICE);
    if (st) {
        return st; /* nothing reached the medium */
    }
    rc = nvme_store_write(n->store, off, n->buf, len);
    return rc ? store_failed(n, "write", rc, NVME_SC_WRITE_FAULT) : NVME_SC_SUCCESS;
}

static uint16_t io_read(struct nvme_dev *n, const struct nvme_cmd *c)
{
    struct nvme_ns_limits lim;
    struct nvme_rw rw;
    uint16_t st = nvme_rw_parse(c, ns_limits(n, &lim), true, &rw);
    const uint8_t *data;

    if (st) {
        return st;
    }
    data = medium_read(n, rw.slba << NVME_SIM_LBA_SHIFT, rw.bytes, n->buf, &st);
    if (!data) {
        return st;
    }
    /* dma_rw only reads buf for VDX_DMA_FROM_DEVICE */
    st = xfer(n, c, (void *)(uintptr_t)data, rw.bytes, VDX_DMA_FROM_DEVICE);
    if (!st) {
        n->st.reads++;
        n->st.bytes_read += rw.bytes;
        n->st.units_read += rw.bytes / 512;
    }
    return st;
}

static uint16_t io_write(struct nvme_dev *n, const struct nvme_cmd *c)
{
    struct nvme_ns_limits lim;
    struct nvme_rw rw;
    uint16_t st = nvme_rw_parse(c, ns_limits(n, &lim), true, &rw);
    unsigned nruns = 0;

    st = st ? st : data_map(n, c, rw.bytes, &nruns);
    st = st ? st : medium_write(n, rw.slba << NVME_SIM_LBA_SHIFT, rw.bytes, nruns);
    if (st) {
        return st;
    }
    st = write_through(n, rw.fua);
    if (!st) {
        n->st.writes++;
        n->st.bytes_written += rw.bytes;
        n->st.units_written += rw.bytes / 512;
    }
    return st;
}

static uint16_t io_compare(struct nvme_dev *n, const struct nvme_cmd *c)
{
    struct nvme_ns_limits lim;
    struct nvme_rw rw;
    uint16_t st = nvme_rw_parse(c, ns_limits(n, &lim), true, &rw);
    const uint8_t *data;

    if (st) {
        return st;
    }
    data = medium_read(n, rw.slba << NVME_SIM_LBA_SHIFT, rw.bytes, n->aux, &st);
    if (!data) {
        return st;
    }
    st = xfer(n, c, n->buf, rw.bytes, VDX_DMA_TO_DEVICE);
    if (st) {
        return st;
    }
    n->st.compares++;
    n->st.units_read += rw.bytes / 512;
    if (memcmp(n->buf, data, rw.bytes) != 0) {
        n->st.compare_failures++;
        return NVME_SC_COMPARE_FAILURE;
    }
    return NVME_SC_SUCCESS;
}

static uint16_t io_write_zeroes(struct nvme_dev *n, const struct nvme_cmd *c)
{
    struct nvme_ns_limits lim;
    struct nvme_rw rw;
    uint16_t st = nvme_rw_parse(c, ns_limits(n, &lim), false, &rw);
    int rc;

    if (st) {
        return st;
    }
    rc = nvme_store_zero(n->store, rw.slba << NVME_SIM_LBA_SHIFT, rw.bytes);
    if (rc) {
        return store_failed(n, "zero", rc, NVME_SC_WRITE_FAULT);
    }
    n->st.write_zeroes++;
    return write_through(n, rw.fua);
}

static uint16_t dsm_deallocate(struct nvme_dev *n, unsigned nr, size_t len)
{
    if (!nvme_store_cheap_zero(n->store)) {
        return NVME_SC_SUCCESS; /* advisory: the spec lets us deallocate none */
    }
    for (unsigned i = 0; i < nr; i++) {
        uint64_t slba;
        uint32_t nlb;
        int rc;

        if (nvme_dsm_range(n->buf, len, i, &slba, &nlb) || nlb == 0) {
            continue;
        }
        rc = nvme_store_zero(n->store, slba << NVME_SIM_LBA_SHIFT,
                             (uint64_t)nlb << NVME_SIM_LBA_SHIFT);
        if (rc) {
            return store_failed(n, "deallocate", rc, NVME_SC_INTERNAL);
        }
    }
    return write_through(n, false);
}

static uint16_t io_dsm(struct nvme_dev *n, const struct nvme_cmd *c)
{
    struct nvme_ns_limits lim;
    unsigned nr = 0;
    size_t len = 0;
    bool ad = false;
    uint16_t st = nvme_dsm_parse(c, ns_limits(n, &lim), &nr, &len, &ad);

    if (!st) {
        st = xfer(n, c, n->buf, len, VDX_DMA_TO_DEVICE);
    }
    if (!st) {
        st = nvme_dsm_check(n->buf, len, nr, n->nsze);
    }
    if (st || !ad) {
        return st; /* without AD the attributes are hints: nothing to do */
    }
    n->st.dsm_deallocates++;
    return dsm_deallocate(n, nr, len);
}

static uint16_t io_flush(struct nvme_dev *n, const struct nvme_cmd *c)
{
    struct nvme_ns_limits lim;
    uint16_t st = nvme_flush_check(c, ns_limits(n, &lim));
    int rc;

    if (st) {
        return st;
    }
    n->st.flushes++;
    rc = nvme_store_sync(n->store);
    return rc ? store_failed(n, "flush", rc, NVME_SC_WRITE_FAULT) : NVME_SC_SUCCESS;
}

static uint16_t io_exec(struct nvme_dev *n, const struct nvme_cmd *c, uint32_t *dw0)
{
    (void)dw0;
    n->st.io_cmds++;
    switch (c->opc) {
    case NVME_IO_FLUSH:
        return io_flush(n, c);
    case NVME_IO_WRITE:
        return io_write(n, c);
    case NVME_IO_READ:
        return io_read(n, c);
    case NVME_IO_COMPARE:
        return io_compare(n, c);
    case NVME_IO_WRITE_ZEROES:
        return io_write_zeroes(n, c);
    case NVME_IO_DSM:
        return io_dsm(n, c);
    default:
        return NVME_SC_INVALID_OPCODE;
    }
}

/* ---- Ops ------------------------------------------------------------------------------
 */

static int nv_config_read(void *dev, uint32_t offset, unsigned width, uint32_t *val)
{
    return simpci_config_read(((struct nvme_dev *)dev)->pci, offset, width, val);
}

static int nv_config_write(void *dev, uint32_t offset, unsigned width, uint32_t val)
{
    return simpci_config_write(((struct nvme_dev *)dev)->pci, offset, width, val);
}

static int nv_bar_info(void *dev, unsigned bar, struct vdx_bar_info *info)
{
    return simpci_bar_info(((struct nvme_dev *)dev)->pci, bar, info);
}

static bool access_ok(unsigned bar, uint64_t off, unsigned width)
{
    return bar == 0 && (width == 1 || width == 2 || width == 4 || width == 8) &&
           off < NVME_SIM_BAR0_SIZE && width <= NVME_SIM_BAR0_SIZE - off;
}

static uint64_t bar0_read(const struct nvme_dev *n, uint64_t off, unsigned width)
{
    uint32_t base = (uint32_t)off & ~3u;
    uint64_t v;

    if (off >= NVME_REG_DBS) {
        return 0; /* doorbells are write-only; the rest is reserved */
    }
    v = reg_read32(n, base);
    if (width == 8) {
        return v | ((uint64_t)reg_read32(n, base + 4) << 32);
    }
    v >>= 8 * (off - base);
    return width == 4 ? v : v & ((1ull << (8 * width)) - 1);
}

static int nv_mmio_read(void *dev, unsigned bar, uint64_t off, unsigned width,
                        uint64_t *val)
{
    struct nvme_dev *n = dev;

    if (!val || !access_ok(bar, off, width)) {
        return -EINVAL;
    }
    if (!simpci_msix_read(n->pci, 0, off, width, val)) {
        *val = bar0_read(n, off, width);
    }
    return 0;
}

/* A dword write; an 8-byte access is two, low first. Narrower writes to
 * registers are not defined by the specification and are ignored. */
static void bar0_write32(struct nvme_dev *n, uint64_t off, uint32_t val)
{
    if (off < NVME_REG_DBS) {
        reg_write32(n, (uint32_t)off, val);
    } else if (off < NVME_SIM_MSIX_TABLE_OFF) {
        doorbell_write(n, off, val);
    }
}

static int nv_mmio_write(void *dev, unsigned bar, uint64_t off, unsigned width,
                         uint64_t val)
{
    struct nvme_dev *n = dev;

    if (!access_ok(bar, off, width)) {
        return -EINVAL;
    }
    if (simpci_msix_write(n->pci, 0, off, width, val)) {
        return 0;
    }
    if (width >= 4 && (off & 3u) == 0) {
        bar0_write32(n, off, (uint32_t)val);
        if (width == 8) {
            bar0_write32(n, off + 4, (uint32_t)(val >> 32));
        }
    }
    irq_flush(n);
    return 0;
}

static int nv_irq_configure(void *dev, unsigned requested, unsigned *granted)
{
    return simpci_irq_configure(((struct nvme_dev *)dev)->pci, requested, granted);
}

static void nv_irq_release(void *dev)
{
    simpci_irq_release(((struct nvme_dev *)dev)->pci);
}

/* simpci's FLR callback: PCIe Device Control bit 15 was written. */
static void nv_flr(void *opaque)
{
    struct nvme_dev *n = opaque;

    power_on_reset(n);
    n->st.resets++;
    n->st.resets_flr++;
}

static int nv_reset(void *dev, enum dext_reset_method method)
{
    struct nvme_dev *n = dev;

    switch (method) {
    case DEXT_RESET_FUNCTION:
        nv_flr(n);
        return 0;
    case DEXT_RESET_HOT:
        power_on_reset(n);
        n->st.resets++;
        n->st.resets_hot++;
        return 0;
    default:
        return -ENOTSUP;
    }
}

/* The last client left: make its writes durable and stop the controller,
 * as a host OS resets a function it releases. */
static void nv_close(void *dev)
{
    struct nvme_dev *n = dev;

    if (nvme_store_sync(n->store)) {
        n->st.store_errors++;
    }
    power_on_reset(n);
}

#define NV_STAT(f)                                                                         \
    {                                                                                      \
#f, offsetof(struct nv_stats, f)                                                   \
    }

/* The counters op's names, in order, then simpci's interrupt statistics. */
static const struct {
    const char *name;
    size_t off;
} nv_stat_names[] = {
    NV_STAT(admin_cmds),      NV_STAT(io_cmds),           NV_STAT(reads),
    NV_STAT(writes),          NV_STAT(compares),          NV_STAT(compare_failures),
    NV_STAT(flushes),         NV_STAT(write_zeroes),      NV_STAT(dsm_deallocates),
    NV_STAT(bytes_read),      NV_STAT(bytes_written),     NV_STAT(dma_errors),
    NV_STAT(invalid_cmds),    NV_STAT(store_errors),      NV_STAT(cfs_events),
    NV_STAT(doorbell_errors), NV_STAT(aer_completed),     NV_STAT(events_dropped),
    NV_STAT(resets),          NV_STAT(resets_flr),        NV_STAT(resets_hot),
    NV_STAT(shutdowns),       NV_STAT(interrupts_raised), NV_STAT(doorbell_writes),
    NV_STAT(dbbuf_configs),   NV_STAT(shadow_reads),      NV_STAT(sq_parked),
};
#define NV_NSTATS (sizeof(nv_stat_names) / sizeof(nv_stat_names[0]))

static size_t nv_counters(void *dev, const char **names, uint64_t *values, size_t max)
{
    const struct nvme_dev *n = dev;
    struct simpci_stats ps;
    size_t i = 0;

    simpci_get_stats(n->pci, &ps);
    const char *const irq_names[] = {"irqs_delivered", "irqs_pended", "irqs_dropped"};
    const uint64_t irq_values[] = {ps.delivered, ps.pended, ps.dropped};

    for (; i < max && i < NV_NSTATS; i++) {
        names[i] = nv_stat_names[i].name;
        memcpy(&values[i], (const char *)&n->st + nv_stat_names[i].off, sizeof(uint64_t));
    }
    for (size_t k = 0; i < max && k < 3; i++, k++) {
        names[i] = irq_names[k];
        values[i] = irq_values[k];
    }
    return i;
}

static void nv_destroy(void *dev)
{
    struct nvme_dev *n = dev;

    if (!n) {
        return;
    }
    simpci_destroy(n->pci);
    nvme_store_close(n->store);
    free(n->prp);
    free(n->aux);
    free(n->buf);
    free(n);
}

static const struct vdx_dev_ops nv_ops = {
    .kind = NV_NAME,
    .config_read = nv_config_read,
    .config_write = nv_config_write,
    .bar_info = nv_bar_info,
    .mmio_read = nv_mmio_read,
    .mmio_write = nv_mmio_write,
    .irq_configure = nv_irq_configure,
    .irq_release = nv_irq_release,
    .reset = nv_reset,
    .close = nv_close,
    .counters = nv_counters,
    .destroy = nv_destroy,
};

/* ---- Creation -------------------------------------------------------------------------
 */

struct nv_opts {
    uint64_t size; /* 0: not given */
    const char *file;
    unsigned queues;
};

static int parse_size_opt(const char *s, uint64_t *size, char *err, size_t errlen)
{
    uint64_t v;

    if (simpci_parse_size(s, &v) || v < NVME_SIM_MIN_SIZE || v > NVME_SIM_MAX_SIZE ||
        v % NVME_SIM_LBA_SIZE != 0) {
        simpci_set_err(err, errlen,
                       NV_NAME ": size=%s: expected a multiple of 512 bytes from 1M to "
                               "64T (bytes, or with suffix K, M or G)",
                       s);
        return -EINVAL;
    }
    *size = v;
    return 0;
}

static int parse_queues_opt(const char *s, unsigned *queues, char *err, size_t errlen)
{
    uint64_t v;

    if (simpci_parse_u64(s, &v) || v < 1 || v > NVME_SIM_MAX_QUEUES) {
        simpci_set_err(err, errlen, NV_NAME ": queues=%s: expected a number from 1 to %u",
                       s, NVME_SIM_MAX_QUEUES);
        return -EINVAL;
    }
    *queues = (unsigned)v;
    return 0;
}

static int parse_opts(const struct simpci_kind_args *a, struct nv_opts *o, char *err,
                      size_t errlen)
{
    *o = (struct nv_opts){0, NULL, NVME_SIM_DEFAULT_QUEUES};
    for (size_t i = 0; i < a->nkv; i++) {
        const struct simpci_kv *kv = &a->kv[i];
        int rc = 0;

        if (strcmp(kv->key, "size") == 0) {
            rc = parse_size_opt(kv->val, &o->size, err, errlen);
        } else if (strcmp(kv->key, "file") == 0) {
            o->file = kv->val;
        } else if (strcmp(kv->key, "queues") == 0) {
            rc = parse_queues_opt(kv->val, &o->queues, err, errlen);
        } else {
            simpci_set_err(err, errlen,
                           NV_NAME ": unknown option '%s' (valid: size, file, queues)",
                           kv->key);
            rc = -EINVAL;
        }
        if (rc) {
            return rc;
        }
    }
    return 0;
}

/* Without size=, an existing file gives the size (rounded down to 512). */
static int resolve_size(struct nv_opts *o, char *err, size_t errlen)
{
    uint64_t fsz = 0;
    int rc;

    if (o->size) {
        return 0;
    }
    if (o->file && (rc = nvme_store_file_size(o->file, &fsz)) != 0) {
        simpci_set_err(err, errlen, NV_NAME ": file=%s: %s", o->file, strerror(-rc));
        return rc;
    }
    fsz -= fsz % NVME_SIM_LBA_SIZE;
    if (fsz < NVME_SIM_MIN_SIZE || fsz > NVME_SIM_MAX_SIZE) {
        simpci_set_err(err, errlen,
                       NV_NAME ": size= is required (for example size=1G), unless file= "
                               "names an existing file of 1M to 64T");
        return -EINVAL;
    }
    o->size = fsz;
    return 0;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (; s && *s; s++) {
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    }
    return h;
}

/* A namespace GUID unique per BDF and backing file: the IDs, the BDF, and a
 * hash of the file name. */
static void make_nguid(struct nvme_dev *n, const char *file)
{
    uint64_t h = fnv1a(file ? file : "ram");
    uint16_t dom = 0;
    uint8_t bus = 0, slot = 0, fn = 0;

    (void)vdx_parse_bdf(n->bdf, &dom, &bus, &slot, &fn);
    n->nguid[0] = 0x7e;
    n->nguid[1] = 0x57;
    n->nguid[2] = 0x4e;
    n->nguid[3] = 0x56;
    n->nguid[4] = (uint8_t)(dom >> 8);
    n->nguid[5] = (uint8_t)dom;
    n->nguid[6] = bus;
    n->nguid[7] = (uint8_t)((slot << 3) | fn);
    for (unsigned i = 0; i < 8; i++) {
        n->nguid[8 + i] = (uint8_t)(h >> (8 * i));
    }
}

static int build_config(struct nvme_dev *n)
{
    const struct simpci_msix_layout msix = {
        .nvec = n->nvec,
        .table_bir = 0,
        .table_off = NVME_SIM_MSIX_TABLE_OFF,
        .pba_bir = 0,
        .pba_off = NVME_SIM_MSIX_PBA_OFF,
    };
    int rc = simpci_set_bar(n->pci, 0, NVME_SIM_BAR0_SIZE, DEXT_BAR_TYPE_M64);

    if (!rc) {
        rc = simpci_add_pm(n->pci, NVME_SIM_CAP_PM);
    }
    if (!rc) {
        rc = simpci_add_msix(n->pci, NVME_SIM_CAP_MSIX, &msix);
    }
    if (!rc) {
        rc = simpci_add_pcie(n->pci, NVME_SIM_CAP_PCIE, true);
    }
    return rc;
}

static int create_pci(struct nvme_dev *n, const struct vdx_dev_host *host)
{
    const struct simpci_id id = {
        .vendor = NVME_SIM_VENDOR_ID,
        .device = NVME_SIM_DEVICE_ID,
        .subsys_vendor = NVME_SIM_VENDOR_ID,
        .subsys_device = NVME_SIM_DEVICE_ID,
        .class_code = NVME_PCI_CLASS_CODE,
        .revision = NVME_SIM_REVISION,
    };
    int rc = simpci_create(&id, host, nv_flr, n, &n->pci);

    if (rc) {
        return rc;
    }
    rc = build_config(n);
    if (rc) {
        simpci_destroy(n->pci);
        n->pci = NULL;
    }
    return rc;
}

static int alloc_buffers(struct nvme_dev *n)
{
    /* Page aligned: copies between them and the (page-aligned) store and DMA
     * pages are then aligned too; a malloc'd buffer 16 bytes past a page
     * boundary made each 4 KiB copy about 20 times slower. */
    n->buf = aligned_alloc(NVME_SIM_PAGE_SIZE, NVME_SIM_MAX_XFER);
    n->aux = aligned_alloc(NVME_SIM_PAGE_SIZE, NVME_SIM_MAX_XFER);
    n->prp = aligned_alloc(NVME_SIM_PAGE_SIZE, NVME_SIM_PAGE_SIZE);
    if (!n->buf || !n->aux || !n->prp) {
        free(n->prp);
        free(n->aux);
        free(n->buf);
        return -ENOMEM;
    }
    return 0;
}

static void init_identity(struct nvme_dev *n, const struct simpci_kind_args *a,
                          const struct nv_opts *o)
{
    snprintf(n->bdf, sizeof(n->bdf), "%s", a->bdf ? a->bdf : "0000:00:01.0");
    snprintf(n->serial, sizeof(n->serial), "VDX%s", n->bdf);
    n->nq = o->queues;
    n->nvec = o->queues + 1;
    n->size = o->size;
    n->nsze = o->size >> NVME_SIM_LBA_SHIFT;
    make_nguid(n, o->file);
    if (a->host) {
        n->host = *a->host;
    }
}

static int nv_create(const struct simpci_kind_args *a, void **dev, char *err, size_t errlen)
{
    char why[200] = "";
    struct nv_opts o;
    struct nvme_dev *n;
    int rc = parse_opts(a, &o, err, errlen);

    rc = rc ? rc : resolve_size(&o, err, errlen);
    if (rc) {
        return rc;
    }
    n = calloc(1, sizeof(*n));
    if (!n) {
        rc = -ENOMEM;
        goto out;
    }
    init_identity(n, a, &o);
    rc = alloc_buffers(n);
    if (rc) {
        goto out_free;
    }
    rc = nvme_store_open(o.file, o.size, &n->store, why, sizeof(why));
    if (rc) {
        simpci_set_err(err, errlen, NV_NAME ": backing store: %s", why);
        goto out_buffers;
    }
    n->vwc = nvme_store_has_volatile_cache(n->store);
    feat_defaults(n);
    rc = create_pci(n, a->host);
    if (rc) {
        goto out_store;
    }
    power_on_reset(n);
    *dev = n;
    return 0;

out_store:
    nvme_store_close(n->store);
out_buffers:
    free(n->prp);
    free(n->aux);
    free(n->buf);
out_free:
    free(n);
out:
    if (!why[0]) {
        simpci_set_err(err, errlen, NV_NAME ": cannot create the device: %s",
                       strerror(-rc));
    }
    return rc;
}

static const char *const nv_keys[] = {"size", "file", "queues", NULL};

const struct simpci_kind simpci_kind_nvme = {
    .name = NV_NAME,
    .keys = nv_keys,
    .ops = &nv_ops,
    .create = nv_create,
};
