/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * unvme: controller bring-up, reset and shutdown (Base 2.0 §3.5-3.6),
 * register access, errors, and the synchronous NVM command helpers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "unvme/unvme_int.h"

#define DEFAULT_IOVA_BASE (1ull << 30)
#define DEFAULT_MAX_XFER (1u << 20)
#define DEFAULT_DEPTH 64u
#define DEFAULT_ADMIN_DEPTH 32u
#define DEFAULT_TIMEOUT_MS 5000u
#define CLOSE_TIMEOUT_MS 1000u
#define REG_POLL_NS 50000u /* between register polls after the first few */
#define CC_MPS (UNVME_PAGE_SHIFT - NVME_MPS_BASE_SHIFT)
#define CSTS_SHST_BITS NVME_SET(NVME_CSTS_SHST_MASK, CSTS_SHST)

/* ---- Errors, logging, registers -------------------------------------------------- */

int unvme_errno(dext_status st)
{
    switch (st) {
    case DEXT_OK:
        return 0;
    case DEXT_E_NOT_ATTACHED:
        return -ENODEV;
    case DEXT_E_NO_SPACE:
        return -ENOMEM;
    case DEXT_E_BAD_ARGUMENT:
    case DEXT_E_NOT_ALIGNED:
    case DEXT_E_OVERRUN:
        return -EINVAL;
    case DEXT_E_STILL_OPEN:
        return -EBUSY;
    default:
        return -EIO;
    }
}

void unvme_logf(const struct unvme *u, int level, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vdx_log((enum vdx_log_level)level, "unvme %s: %s", u->bdf, msg);
}

static int reg_status(struct unvme *u, dext_status st)
{
    if (st == DEXT_E_NOT_ATTACHED) {
        u->dead = true;
    }
    return unvme_errno(st);
}

int unvme_reg_read32(struct unvme *u, uint32_t off, uint32_t *val)
{
    uint64_t v = 0;
    dext_status st = vdx_mmio_read(u->conn, UNVME_BAR, off, 4, &v);

    *val = (uint32_t)v;
    return reg_status(u, st);
}

int unvme_reg_write32(struct unvme *u, uint32_t off, uint32_t val)
{
    return reg_status(u, vdx_mmio_write(u->conn, UNVME_BAR, off, 4, val));
}

/* 64-bit registers as two dword accesses, low first (Base 2.0 §3.1.3). */
int unvme_reg_write64(struct unvme *u, uint32_t off, uint64_t val)
{
    int rc = unvme_reg_write32(u, off, (uint32_t)val);

    return rc ? rc : unvme_reg_write32(u, off + 4u, (uint32_t)(val >> 32));
}

static int reg_read64(struct unvme *u, uint32_t off, uint64_t *val)
{
    uint32_t lo = 0, hi = 0;
    int rc = unvme_reg_read32(u, off, &lo);

    rc = rc ? rc : unvme_reg_read32(u, off + 4u, &hi);
    *val = (uint64_t)hi << 32 | lo;
    return rc;
}

static void pause_ns(long ns)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};

    nanosleep(&ts, NULL);
}

/*
 * Wait until (CSTS & mask) == want, for the CAP.TO time. With cfs_fatal a
 * fatal status (CFS) fails at once with -EIO; all-ones CSTS means the device
 * is gone.
 */
static int wait_csts(struct unvme *u, uint32_t mask, uint32_t want, bool cfs_fatal,
                     const char *what)
{
    uint64_t deadline = vdx_now_ns() + u->ready_timeout_ms * 1000000u;
    uint32_t csts = 0;

    for (unsigned i = 0;; i++) {
        int rc = unvme_reg_read32(u, NVME_REG_CSTS, &csts);

        if (rc < 0) {
            return rc;
        }
        if (csts == UINT32_MAX) {
            unvme_logf(u, VDX_LOG_ERR, "%s: CSTS reads all ones: device gone", what);
            return -ENODEV;
        }
        if (cfs_fatal && (csts & NVME_CSTS_CFS)) {
            unvme_logf(u, VDX_LOG_ERR, "%s: controller fatal status (CSTS.CFS)", what);
            return -EIO;
        }
        if ((csts & mask) == want) {
            return 0;
        }
        if (vdx_now_ns() >= deadline) {
            unvme_logf(u, VDX_LOG_ERR, "%s: timed out after %llu ms (CSTS 0x%x)", what,
                       (unsigned long long)u->ready_timeout_ms, csts);
            return -ETIMEDOUT;
        }
        if (i >= 16) {
            pause_ns(REG_POLL_NS);
        }
    }
}

/* ---- Controller state ------------------------------------------------------------ */

/* CC.EN = 0 and wait CSTS.RDY = 0 (Base 2.0 §3.5.2). */
static int ctrl_disable(struct unvme *u)
{
    uint32_t cc = 0;
    int rc = unvme_reg_read32(u, NVME_REG_CC, &cc);

    if (rc == 0 && (cc & NVME_CC_EN)) {
        rc = unvme_reg_write32(u, NVME_REG_CC, cc & ~NVME_CC_EN);
    }
    if (rc < 0) {
        return rc;
    }
    /* Disabling is how a fatal status is recovered from: CFS is no failure here. */
    return wait_csts(u, NVME_CSTS_RDY, 0, false, "disable");
}

/* Program the admin queue and CC, set EN and wait RDY (Base 2.0 §3.5.1 steps 3-6). */
static int ctrl_enable(struct unvme *u)
{
    struct unvme_queue *aq = &u->admin;
    uint32_t cc = NVME_CC_EN | NVME_SET(NVME_CC_CSS_NVM, CC_CSS) |
                  NVME_SET(CC_MPS, CC_MPS) | NVME_SET(NVME_CC_AMS_RR, CC_AMS) |
                  NVME_SET(NVME_SQES_LOG2, CC_IOSQES) | NVME_SET(NVME_CQES_LOG2, CC_IOCQES);
    uint32_t aqa = NVME_SET(aq->depth - 1u, AQA_ASQS) | NVME_SET(aq->depth - 1u, AQA_ACQS);
    int rc;

    unvme_queue_reset_rings(aq);
    rc = unvme_reg_write32(u, NVME_REG_AQA, aqa);
    rc = rc ? rc : unvme_reg_write64(u, NVME_REG_ASQ, aq->sq_bus);
    rc = rc ? rc : unvme_reg_write64(u, NVME_REG_ACQ, aq->cq_bus);
    rc = rc ? rc : unvme_reg_write32(u, NVME_REG_CC, cc);
    return rc ? rc : wait_csts(u, NVME_CSTS_RDY, NVME_CSTS_RDY, true, "enable");
}

/* ---- Checks before touching the controller -------------------------------------- */

static int check_identity(struct unvme *u)
{
    struct vdx_device_desc id;
    uint64_t size = 0;
    uint8_t type = 0;
    dext_status st = vdx_get_identity(u->conn, &id);

    if (st == DEXT_OK) {
        snprintf(u->bdf, sizeof(u->bdf), "%04x:%02x:%02x.%x", id.domain, id.bus, id.slot,
                 id.fn);
        st = vdx_get_bar_info(u->conn, 0, NULL, &size, &type);
    }
    if (st != DEXT_OK) {
        return unvme_errno(st);
    }
    u->bar_size = size;
    if (id.class_code != NVME_PCI_CLASS_CODE || !(type & DEXT_BAR_TYPE_MEM64) ||
        size < NVME_REG_DBS + 8u) {
        unvme_logf(u, VDX_LOG_ERR, "not an NVMe controller (class %06x, BAR0 type 0x%x, "
                   "%llu bytes)", id.class_code, type, (unsigned long long)size);
        return -EINVAL;
    }
    return 0;
}

/* CAP: our page size and entry sizes must be supported (Base 2.0 §3.1.3.1). */
static int check_cap(struct unvme *u)
{
    uint64_t cap = 0;
    int rc = reg_read64(u, NVME_REG_CAP, &cap);

    rc = rc ? rc : unvme_reg_read32(u, NVME_REG_VS, &u->info.vs);
    if (rc < 0) {
        return rc;
    }
    u->info.cap = cap;
    u->info.mqes = (uint32_t)NVME_GET(cap, CAP_MQES) + 1u; /* 0's based */
    u->dstrd = (uint32_t)NVME_GET(cap, CAP_DSTRD);
    u->ready_timeout_ms =
        (NVME_GET(cap, CAP_TO) ? NVME_GET(cap, CAP_TO) : 1u) * NVME_CAP_TO_UNIT_MS;
    /* MPSMIN must be our page size: MDTS is in MPSMIN units too. */
    if (NVME_GET(cap, CAP_MPSMIN) != CC_MPS || u->info.mqes < 2 ||
        !(NVME_GET(cap, CAP_CSS) & NVME_CAP_CSS_NVM) || u->dstrd > 4 ||
        NVME_CQ_HEAD_DB(u->opts.io_queues, u->dstrd) + 4u > u->bar_size) {
        unvme_logf(u, VDX_LOG_ERR, "unsupported CAP 0x%016llx (need 4 KiB pages, NVM "
                   "command set, MQES >= 1, doorbells of %u queues inside BAR0)",
                   (unsigned long long)cap, u->opts.io_queues);
        return -EINVAL;
    }
    return 0;
}

/* ---- Opening -------------------------------------------------------------------- */

void unvme_opts_default(struct unvme_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->io_queues = 1;
    opts->queue_depth = DEFAULT_DEPTH;
    opts->admin_depth = DEFAULT_ADMIN_DEPTH;
    opts->max_xfer = DEFAULT_MAX_XFER;
    opts->iova_base = DEFAULT_IOVA_BASE;
    opts->nsid = 1;
    opts->timeout_ms = DEFAULT_TIMEOUT_MS;
    opts->wait = UNVME_WAIT_POLL;
}

static int check_opts(const struct unvme_opts *o)
{
    if (o->io_queues == 0 || o->io_queues > UNVME_MAX_IO_QUEUES || o->queue_depth < 2 ||
        o->queue_depth > 65536u || o->admin_depth < 2 ||
        o->admin_depth > NVME_AQA_MAX_ENTRIES || o->max_xfer < UNVME_PAGE_SIZE ||
        o->nsid == 0 || o->nsid == UINT32_MAX || o->timeout_ms == 0 ||
        (o->iova_base & (UNVME_PAGE_SIZE - 1u)) || o->wait > UNVME_WAIT_NOTIFY) {
        return -EINVAL;
    }
    return 0;
}

/*
 * Interrupts: set up (or, when this client already did, reuse) the vectors,
 * and map the IRQ state page. The notification fd only for UNVME_WAIT_NOTIFY.
 */
static int setup_irqs(struct unvme *u)
{
    uint32_t nvec = 0;
    dext_status st = vdx_setup_interrupts(u->conn, &nvec);

    if (st == DEXT_E_STILL_OPEN) {
        nvec = DEXT_MAX_VECTORS; /* ours from an earlier open, if the page maps */
    } else if (st != DEXT_OK) {
        unvme_logf(u, VDX_LOG_ERR, "cannot set up interrupts: %s", vdx_status_str(st));
        return unvme_errno(st);
    }
    st = vdx_map_irq_page(u->conn, &u->irq_page);
    if (st == DEXT_OK && u->opts.wait == UNVME_WAIT_NOTIFY) {
        st = vdx_notify_create(u->conn, &u->notify);
    }
    if (st != DEXT_OK) {
        unvme_logf(u, VDX_LOG_ERR, "cannot map the interrupt state: %s",
                   vdx_status_str(st));
        return unvme_errno(st);
    }
    u->info.vectors = nvec;
    return 0;
}

/* Bytes per command: min(opts, MDTS, 2 MiB), whole pages, at least one block. */
static int choose_max_xfer(struct unvme *u)
{
    uint64_t x = u->opts.max_xfer;

    if (u->info.mdts) {
        u->info.mdts_bytes =
            u->info.mdts >= 20 ? UINT32_MAX : (uint32_t)UNVME_PAGE_SIZE << u->info.mdts;
        x = x < u->info.mdts_bytes ? x : u->info.mdts_bytes;
    }
    x = x < UNVME_MAX_XFER_CAP ? x : UNVME_MAX_XFER_CAP;
    x &= ~(uint64_t)(UNVME_PAGE_SIZE - 1u);
    if (x < u->info.lba_size) {
        return -EINVAL;
    }
    u->info.max_xfer = (uint32_t)x;
    return 0;
}

static void free_io_queues(struct unvme *u)
{
    for (unsigned i = 0; i < UNVME_MAX_IO_QUEUES; i++) {
        unvme_queue_free(u, &u->io[i]);
    }
}

/* Allocate and create queues 1..n. On error the caller disables the controller. */
static int create_io_queues(struct unvme *u, unsigned n)
{
    unsigned depth = u->opts.queue_depth < u->info.mqes ? u->opts.queue_depth : u->info.mqes;
    int rc;

    u->info.queue_depth = depth;
    for (unsigned i = 0; i < n; i++) {
        rc = unvme_queue_alloc(u, &u->io[i], (uint16_t)(i + 1u), (uint16_t)depth,
                               (uint16_t)(depth - 1u), u->info.max_xfer);
        if (rc == 0) {
            rc = unvme_create_io_queue(u, &u->io[i]);
        }
        if (rc < 0) {
            return rc;
        }
        u->info.io_queues = i + 1u;
    }
    return 0;
}

/* How many queue pairs to ask for: as wanted, one vector each besides the admin's. */
static unsigned queues_wanted(const struct unvme *u)
{
    unsigned by_vec = u->info.vectors > 1 ? u->info.vectors - 1u : 1u;

    return u->opts.io_queues < by_vec ? u->opts.io_queues : by_vec;
}

/* Everything after the controller is enabled (admin_lock held). */
static int init_enabled(struct unvme *u)
{
    unsigned granted = 0;
    int rc = unvme_identify_all(u);

    rc = rc ? rc : choose_max_xfer(u);
    rc = rc ? rc : unvme_set_num_queues(u, queues_wanted(u), &granted);
    if (rc < 0) {
        return rc;
    }
    u->info.queues_granted = granted;
    return create_io_queues(u, queues_wanted(u) < granted ? queues_wanted(u) : granted);
}

static int alloc_admin(struct unvme *u)
{
    unsigned depth = u->opts.admin_depth;
    unsigned slots = depth - 1u < UNVME_ADMIN_SLOTS ? depth - 1u : UNVME_ADMIN_SLOTS;
    uint32_t xfer = u->opts.max_xfer < UNVME_MAX_XFER_CAP ? u->opts.max_xfer
                                                          : UNVME_MAX_XFER_CAP;

    xfer &= ~(UNVME_PAGE_SIZE - 1u);
    u->info.max_xfer = xfer; /* until Identify tells MDTS */
    return unvme_queue_alloc(u, &u->admin, 0, (uint16_t)depth, (uint16_t)slots, xfer);
}

static int open_steps(struct unvme *u)
{
    dext_status st = vdx_claim(u->conn);
    int rc;

    if (st != DEXT_OK) {
        return unvme_errno(st);
    }
    rc = check_identity(u);
    rc = rc ? rc : check_cap(u);
    rc = rc ? rc : ctrl_disable(u);
    rc = rc ? rc : alloc_admin(u);
    if (rc < 0) {
        return rc;
    }
    rc = ctrl_enable(u);
    rc = rc ? rc : setup_irqs(u);
    pthread_mutex_lock(&u->admin_lock);
    rc = rc ? rc : init_enabled(u);
    pthread_mutex_unlock(&u->admin_lock);
    if (rc < 0) {
        ctrl_disable(u); /* deletes every I/O queue; DMA stops */
        free_io_queues(u);
        unvme_queue_free(u, &u->admin);
    }
    return rc;
}

int unvme_open(struct vdx_conn *conn, const struct unvme_opts *opts, struct unvme **out)
{
    struct unvme *u;
    int rc;

    if (!conn || !out) {
        return -EINVAL;
    }
    u = calloc(1, sizeof(*u));
    if (!u) {
        return -ENOMEM;
    }
    u->conn = conn;
    snprintf(u->bdf, sizeof(u->bdf), "?");
    if (opts) {
        u->opts = *opts;
    } else {
        unvme_opts_default(&u->opts);
    }
    rc = check_opts(&u->opts);
    if (rc < 0) {
        goto out_free;
    }
    u->next_key = u->opts.iova_base;
    pthread_mutex_init(&u->admin_lock, NULL);
    rc = open_steps(u);
    if (rc < 0) {
        goto out_destroy;
    }
    u->info.nsid = u->opts.nsid;
    *out = u;
    return 0;

out_destroy:
    vdx_notify_destroy(u->notify);
    pthread_mutex_destroy(&u->admin_lock);
out_free:
    free(u);
    return rc;
}

/* ---- Closing and reset ------------------------------------------------------------- */

/* Normal shutdown (Base 2.0 §3.6.1): CC.SHN = 01b, wait CSTS.SHST = 10b. */
static int ctrl_shutdown(struct unvme *u)
{
    uint32_t cc = 0;
    int rc = unvme_reg_read32(u, NVME_REG_CC, &cc);

    if (rc == 0 && (cc & NVME_CC_EN)) {
        cc &= ~NVME_SET(NVME_CC_SHN_MASK, CC_SHN);
        cc |= NVME_SET(NVME_CC_SHN_NORMAL, CC_SHN);
        rc = unvme_reg_write32(u, NVME_REG_CC, cc);
        rc = rc ? rc
                : wait_csts(u, CSTS_SHST_BITS, NVME_SET(NVME_CSTS_SHST_COMPLETE, CSTS_SHST),
                            true, "shutdown");
    }
    return rc;
}

void unvme_close(struct unvme *u)
{
    if (!u) {
        return;
    }
    pthread_mutex_lock(&u->admin_lock);
    for (unsigned i = u->info.io_queues; i-- > 0 && !u->dead;) {
        unvme_delete_io_queue(u, &u->io[i], CLOSE_TIMEOUT_MS);
    }
    pthread_mutex_unlock(&u->admin_lock);
    if (!u->dead) {
        ctrl_shutdown(u);
    }
    if (!u->dead) {
        ctrl_disable(u); /* after this the controller touches none of our memory */
    }
    free_io_queues(u);
    unvme_queue_free(u, &u->admin);
    vdx_notify_destroy(u->notify);
    pthread_mutex_destroy(&u->admin_lock);
    free(u);
}

/* Re-create the same queues after a reset (admin_lock held). */
static int recreate_io_queues(struct unvme *u)
{
    unsigned granted = 0;
    int rc = unvme_set_num_queues(u, queues_wanted(u), &granted);

    if (rc == 0 && granted < u->info.io_queues) {
        unvme_logf(u, VDX_LOG_ERR, "after reset only %u I/O queues granted, %u needed",
                   granted, u->info.io_queues);
        rc = -EIO;
    }
    for (unsigned i = 0; rc == 0 && i < u->info.io_queues; i++) {
        rc = unvme_create_io_queue(u, &u->io[i]);
    }
    return rc;
}

int unvme_reset_controller(struct unvme *u)
{
    int rc;

    if (!u) {
        return -EINVAL;
    }
    pthread_mutex_lock(&u->admin_lock);
    rc = u->dead ? -ENODEV : ctrl_disable(u);
    if (rc == 0) {
        for (unsigned i = 0; i < u->info.io_queues; i++) {
            unvme_queue_cancel_all(&u->io[i]);
            u->io[i].created = false;
        }
        unvme_queue_cancel_all(&u->admin);
        rc = ctrl_enable(u);
    }
    rc = rc ? rc : recreate_io_queues(u);
    pthread_mutex_unlock(&u->admin_lock);
    return rc;
}

/* ---- Accessors ------------------------------------------------------------------ */

const struct unvme_info *unvme_info(const struct unvme *u)
{
    return u ? &u->info : NULL;
}

uint64_t unvme_dma_span(const struct unvme *u)
{
    return u ? u->next_key - u->opts.iova_base : 0;
}

struct unvme_queue *unvme_queue(struct unvme *u, unsigned i)
{
    return u && i < u->info.io_queues ? &u->io[i] : NULL;
}

uint16_t unvme_queue_id(const struct unvme_queue *q)
{
    return q ? q->qid : 0;
}
