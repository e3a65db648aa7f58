/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of sim:nvme through the device ops seam, driven register by
 * register like a driver, with a dext-less fake host: dma_rw backed by one
 * mapped window of test memory (anything else faults, like an IOMMU without
 * a mapping) and an irq_raise that records vectors.
 *
 * Covered: identity and capabilities, enable/disable/shutdown, Identify,
 * features, queue creation, Read/Write with PRP1, PRP1+PRP2 and PRP lists,
 * Flush, Write Zeroes, Dataset Management, Compare, per-CQ MSI-X vectors,
 * a table of hostile commands with the specification's status codes, bad
 * CC -> CFS, asynchronous events, CQ full, CC.EN toggled with work pending,
 * FLR, a doorbell / queue-content fuzz, a whole-device fuzz (registers,
 * commands, PRPs, queues, resets, config space and MSI-X; NVME_FUZZ_SEED and
 * NVME_FUZZ_STEPS lengthen it), and file backing across destroy and across a
 * killed process.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dext/device.h"
#include "devices/nvme.h"
#include "devices/simpci.h"

/* CC with EN = 0 and SHN = 0 (Base §3.1.3.5). */
#define CC_MAKE(css, mps, ams, iosqes, iocqes)                                             \
    (NVME_SET(css, CC_CSS) | NVME_SET(mps, CC_MPS) | NVME_SET(ams, CC_AMS) |               \
     NVME_SET(iosqes, CC_IOSQES) | NVME_SET(iocqes, CC_IOCQES))

#define MEM_BUS      0x40000000ull
#define MEM_SIZE     (8u * 1024u * 1024u)
#define UNMAPPED_BUS 0x90000000ull
#define PG           4096u
#define AQ_DEPTH     32u
#define IOQ_DEPTH    64u
#define MAX_IRQ      4096u
#define NQ           4u

struct fake_host {
    uint8_t *mem;
    /* Called before and after each device access to [watch, watch_end): a
     * host running concurrently. */
    void (*on_dma)(void *ctx);
    void *on_dma_ctx;
    uint64_t watch, watch_end;
    unsigned faults;
    unsigned nirq;
    unsigned irq[MAX_IRQ];
};

/* The driver's view of one queue pair. */
struct tq {
    uint8_t *sq, *cq;
    uint32_t sq_size, cq_size;
    uint32_t sq_tail, cq_head;
    bool phase;
};

struct fixture {
    struct fake_host fh;
    struct vdx_dev_host host;
    struct vdx_device dev;
    size_t next_page; /* bump allocator over fh.mem */
    struct tq q[NQ + 1];
    uint16_t next_cid;
    char dir[64];
    char path[128];
};

/* ---- Fake host --------------------------------------------------------------------- */

static int fake_dma_rw(void *ctx, uint64_t bus, void *buf, size_t len, enum vdx_dma_dir dir)
{
    struct fake_host *fh = ctx;

    if (bus < MEM_BUS || bus - MEM_BUS > MEM_SIZE || len > MEM_SIZE - (bus - MEM_BUS)) {
        fh->faults++;
        return -EFAULT;
    }
    bool watched = fh->on_dma && bus >= fh->watch && bus < fh->watch_end;

    if (watched) {
        fh->on_dma(fh->on_dma_ctx);
    }
    if (dir == VDX_DMA_TO_DEVICE) {
        memcpy(buf, fh->mem + (bus - MEM_BUS), len);
    } else {
        memcpy(fh->mem + (bus - MEM_BUS), buf, len);
    }
    if (watched) {
        fh->on_dma(fh->on_dma_ctx);
    }
    return 0;
}

static void fake_irq_raise(void *ctx, unsigned vector)
{
    struct fake_host *fh = ctx;

    if (fh->nirq < MAX_IRQ) {
        fh->irq[fh->nirq] = vector;
    }
    fh->nirq++;
}

static void *page_alloc(struct fixture *f, unsigned pages)
{
    void *p = f->fh.mem + f->next_page;

    assert_true(f->next_page + (size_t)pages * PG <= MEM_SIZE);
    memset(p, 0, (size_t)pages * PG);
    f->next_page += (size_t)pages * PG;
    return p;
}

static uint64_t bus_of(const struct fixture *f, const void *p)
{
    return MEM_BUS + (uint64_t)((const uint8_t *)p - f->fh.mem);
}

/* ---- Device access --------------------------------------------------------------- */

static uint64_t rd(struct fixture *f, uint64_t off, unsigned width)
{
    uint64_t v = 0xdeadbeef;

    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 0, off, width, &v), 0);
    return v;
}

static void wr(struct fixture *f, uint64_t off, unsigned width, uint64_t v)
{
    assert_int_equal(f->dev.ops->mmio_write(f->dev.dev, 0, off, width, v), 0);
}

static uint32_t cfg(struct fixture *f, uint32_t off, unsigned width)
{
    uint32_t v = 0xdeadbeef;

    assert_int_equal(f->dev.ops->config_read(f->dev.dev, off, width, &v), 0);
    return v;
}

static uint64_t counter(struct fixture *f, const char *name)
{
    const char *names[64];
    uint64_t values[64];
    size_t n = f->dev.ops->counters(f->dev.dev, names, values, 64);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return values[i];
        }
    }
    fail_msg("no counter %s", name);
    return 0;
}

static void create_dev(struct fixture *f, const char *spec)
{
    char err[256] = "";

    assert_int_equal(vdx_device_create(spec, &f->host, &f->dev, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

static int setup_spec(void **state, const char *spec)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->fh.mem = aligned_alloc(PG, MEM_SIZE);
    assert_non_null(f->fh.mem);
    memset(f->fh.mem, 0, MEM_SIZE);
    f->host = (struct vdx_dev_host){&f->fh, fake_dma_rw, fake_irq_raise};
    if (spec) {
        create_dev(f, spec);
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_spec(state, "sim:nvme,size=16M,queues=4,bdf=0000:05:00.0");
}

static int setup_nodev(void **state)
{
    return setup_spec(state, NULL);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (f->dev.ops) {
        f->dev.ops->destroy(f->dev.dev);
    }
    if (f->path[0]) {
        unlink(f->path);
    }
    if (f->dir[0]) {
        rmdir(f->dir);
    }
    free(f->fh.mem);
    free(f);
    return 0;
}

/* ---- A small driver ------------------------------------------------------------------ */

static const uint32_t CC_GOOD = CC_MAKE(0, 0, 0, 6, 4);

static uint32_t csts(struct fixture *f)
{
    return (uint32_t)rd(f, NVME_REG_CSTS, 4);
}

static void enable_with(struct fixture *f, uint32_t cc)
{
    struct tq *a = &f->q[0];

    memset(f->q, 0, sizeof(f->q));
    a->sq = page_alloc(f, 1);
    a->cq = page_alloc(f, 1);
    a->sq_size = AQ_DEPTH;
    a->cq_size = AQ_DEPTH;
    a->phase = true;
    wr(f, NVME_REG_AQA, 4, (AQ_DEPTH - 1) | ((AQ_DEPTH - 1) << 16));
    wr(f, NVME_REG_ASQ, 8, bus_of(f, a->sq));
    wr(f, NVME_REG_ACQ, 4, (uint32_t)bus_of(f, a->cq)); /* lo_hi_writeq, as Linux */
    wr(f, NVME_REG_ACQ + 4, 4, bus_of(f, a->cq) >> 32);
    wr(f, NVME_REG_CC, 4, cc);
    assert_int_equal(rd(f, NVME_REG_CC, 4), cc); /* read back before EN, as Linux */
    wr(f, NVME_REG_CC, 4, cc | NVME_CC_EN);
}

static void enable(struct fixture *f)
{
    enable_with(f, CC_GOOD);
    assert_int_equal(csts(f), NVME_CSTS_RDY);
}

static void disable(struct fixture *f)
{
    wr(f, NVME_REG_CC, 4, rd(f, NVME_REG_CC, 4) & ~NVME_CC_EN);
    assert_int_equal(csts(f) & NVME_CSTS_RDY, 0);
}

static struct nvme_sqe sqe(uint8_t opc, uint32_t nsid)
{
    struct nvme_sqe s;

    memset(&s, 0, sizeof(s));
    s.cdw0 = opc;
    s.nsid = nsid;
    return s;
}

/* Place an entry at the tail without ringing; returns its CID. */
static uint16_t sq_put(struct fixture *f, unsigned qid, struct nvme_sqe s)
{
    struct tq *q = &f->q[qid];
    uint16_t cid = f->next_cid++;

    s.cdw0 = (s.cdw0 & 0xffffu) | ((uint32_t)cid << 16);
    memcpy(q->sq + (size_t)q->sq_tail * 64, &s, sizeof(s));
    q->sq_tail = (q->sq_tail + 1) % q->sq_size;
    return cid;
}

static void sq_ring(struct fixture *f, unsigned qid)
{
    wr(f, NVME_SQ_TAIL_DB(qid, NVME_SIM_DSTRD), 4, f->q[qid].sq_tail);
}

/* Take the next completion of CQ `qid` if there is one (and ring its head). */
/* Take the next completion of CQ `qid` if there is one, without ringing. */
static bool cq_take(struct fixture *f, unsigned qid, struct nvme_cpl *cpl)
{
    struct tq *q = &f->q[qid];
    bool phase = false;

    assert_int_equal(nvme_cpl_decode(q->cq + (size_t)q->cq_head * 16, 16, cpl, &phase), 0);
    if (phase != q->phase) {
        return false;
    }
    q->cq_head = (q->cq_head + 1) % q->cq_size;
    if (q->cq_head == 0) {
        q->phase = !q->phase;
    }
    return true;
}

static bool cq_reap(struct fixture *f, unsigned qid, struct nvme_cpl *cpl)
{
    if (!cq_take(f, qid, cpl)) {
        return false;
    }
    wr(f, NVME_CQ_HEAD_DB(qid, NVME_SIM_DSTRD), 4, f->q[qid].cq_head);
    return true;
}

static struct nvme_cpl submit(struct fixture *f, unsigned qid, struct nvme_sqe s)
{
    struct nvme_cpl cpl;
    uint16_t cid = sq_put(f, qid, s);

    sq_ring(f, qid);
    assert_true(cq_reap(f, qid, &cpl));
    assert_int_equal(cpl.cid, cid);
    assert_int_equal(cpl.sqid, qid);
    assert_int_equal(cpl.sqhd, f->q[qid].sq_tail);
    return cpl;
}

/* The status without DNR; DNR must be set on every error. */
static unsigned status_of(struct nvme_cpl cpl)
{
    if (cpl.status != 0) {
        assert_true(cpl.status & NVME_SF_DNR);
    }
    return cpl.status & 0x7ffu;
}

static unsigned admin_st(struct fixture *f, struct nvme_sqe s)
{
    return status_of(submit(f, 0, s));
}

static void admin_ok(struct fixture *f, struct nvme_sqe s, uint32_t *dw0)
{
    struct nvme_cpl cpl = submit(f, 0, s);

    assert_int_equal(status_of(cpl), 0);
    if (dw0) {
        *dw0 = cpl.dw0;
    }
}

static struct nvme_sqe identify(uint8_t cns, uint32_t nsid, void *buf, struct fixture *f)
{
    struct nvme_sqe s = sqe(NVME_ADM_IDENTIFY, nsid);

    s.prp1 = bus_of(f, buf);
    s.cdw10 = cns;
    return s;
}

static struct nvme_sqe features(uint8_t opc, uint32_t cdw10, uint32_t cdw11)
{
    struct nvme_sqe s = sqe(opc, 0);

    s.cdw10 = cdw10;
    s.cdw11 = cdw11;
    return s;
}

static struct nvme_sqe create_cq(uint16_t qid, uint32_t size, uint64_t base, uint32_t flags,
                                 uint16_t iv)
{
    struct nvme_sqe s = sqe(NVME_ADM_CREATE_CQ, 0);

    s.prp1 = base;
    s.cdw10 = qid | ((size - 1) << 16);
    s.cdw11 = flags | ((uint32_t)iv << 16);
    return s;
}

static struct nvme_sqe create_sq(uint16_t qid, uint32_t size, uint64_t base, uint16_t cqid)
{
    struct nvme_sqe s = sqe(NVME_ADM_CREATE_SQ, 0);

    s.prp1 = base;
    s.cdw10 = qid | ((size - 1) << 16);
    s.cdw11 = NVME_QUEUE_PC | ((uint32_t)cqid << 16);
    return s;
}

static struct nvme_sqe delete_q(uint8_t opc, uint16_t qid)
{
    struct nvme_sqe s = sqe(opc, 0);

    s.cdw10 = qid;
    return s;
}

/* Create I/O queue pair `qid` with `cq_size`/`sq_size` entries, vector qid. */
static void make_ioq(struct fixture *f, unsigned qid, uint32_t cq_size, uint32_t sq_size)
{
    struct tq *q = &f->q[qid];

    q->cq = page_alloc(f, (cq_size * 16 + PG - 1) / PG);
    q->sq = page_alloc(f, (sq_size * 64 + PG - 1) / PG);
    q->cq_size = cq_size;
    q->sq_size = sq_size;
    q->sq_tail = 0;
    q->cq_head = 0;
    q->phase = true;
    admin_ok(f, create_cq(qid, cq_size, bus_of(f, q->cq), NVME_QUEUE_PC | NVME_CQ_IEN, qid),
             NULL);
    admin_ok(f, create_sq(qid, sq_size, bus_of(f, q->sq), qid), NULL);
}

static void enable_irqs(struct fixture *f)
{
    unsigned granted = 0;

    assert_int_equal(f->dev.ops->irq_configure(f->dev.dev, NQ + 1, &granted), 0);
    assert_int_equal(granted, NQ + 1);
}

/* Enable, allocate 4 queue pairs and create pair 1 and 2. */
static void bring_up(struct fixture *f)
{
    uint32_t dw0 = 0;

    enable_irqs(f);
    enable(f);
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_NUM_QUEUES, 3u | (3u << 16)),
             &dw0);
    assert_int_equal(dw0, 3u | (3u << 16));
    make_ioq(f, 1, IOQ_DEPTH, IOQ_DEPTH);
    make_ioq(f, 2, IOQ_DEPTH, IOQ_DEPTH);
}

static struct nvme_sqe rw(uint8_t opc, uint64_t slba, uint32_t nlb, uint64_t prp1,
                          uint64_t prp2)
{
    struct nvme_sqe s = sqe(opc, 1);

    s.prp1 = prp1;
    s.prp2 = prp2;
    s.cdw10 = (uint32_t)slba;
    s.cdw11 = (uint32_t)(slba >> 32);
    s.cdw12 = nlb - 1;
    return s;
}

static unsigned io_st(struct fixture *f, unsigned qid, struct nvme_sqe s)
{
    return status_of(submit(f, qid, s));
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 31 + seed + (i >> 9));
    }
}

/* ---- Identity
 * ----------------------------------------------------------------------------- */

static void test_identity(void **state)
{
    struct fixture *f = *state;
    struct vdx_bar_info bi;
    uint64_t cap;

    assert_string_equal(f->dev.ops->kind, "sim:nvme");
    assert_int_equal(f->dev.bus, 5);
    assert_int_equal(cfg(f, 0, 2), NVME_SIM_VENDOR_ID);
    assert_int_equal(cfg(f, 2, 2), NVME_SIM_DEVICE_ID);
    assert_int_equal(cfg(f, 8, 4), NVME_SIM_REVISION | (NVME_PCI_CLASS_CODE << 8));
    assert_int_equal(cfg(f, SIMPCI_SUBSYS_VENDOR_ID, 2), NVME_SIM_VENDOR_ID);
    assert_int_equal(cfg(f, SIMPCI_SUBSYS_ID, 2), NVME_SIM_DEVICE_ID);
    assert_int_equal(cfg(f, SIMPCI_CAP_PTR, 1), NVME_SIM_CAP_PM);
    assert_int_equal(cfg(f, NVME_SIM_CAP_PM, 2),
                     SIMPCI_CAP_ID_PM | (NVME_SIM_CAP_MSIX << 8));
    assert_int_equal(cfg(f, NVME_SIM_CAP_MSIX, 2),
                     SIMPCI_CAP_ID_MSIX | (NVME_SIM_CAP_PCIE << 8));
    assert_int_equal(cfg(f, NVME_SIM_CAP_PCIE, 2), SIMPCI_CAP_ID_PCIE);
    assert_true(cfg(f, NVME_SIM_CAP_PCIE + SIMPCI_PCIE_DEVCAP, 4) & SIMPCI_PCIE_DEVCAP_FLR);
    assert_int_equal(cfg(f, NVME_SIM_CAP_MSIX + 2, 2) & 0x7ff, NQ); /* N + 1 vectors */
    assert_int_equal(cfg(f, NVME_SIM_CAP_MSIX + 4, 4), NVME_SIM_MSIX_TABLE_OFF);
    assert_int_equal(cfg(f, NVME_SIM_CAP_MSIX + 8, 4), NVME_SIM_MSIX_PBA_OFF);
    assert_int_equal(f->dev.ops->bar_info(f->dev.dev, 0, &bi), 0);
    assert_int_equal(bi.size, NVME_SIM_BAR0_SIZE);
    assert_int_equal(bi.type, DEXT_BAR_TYPE_M64);
    assert_int_equal(f->dev.ops->bar_info(f->dev.dev, 2, &bi), 0);
    assert_int_equal(bi.size, 0);
    assert_null(f->dev.ops->bar_fd);

    cap = rd(f, NVME_REG_CAP, 8);
    assert_int_equal(NVME_GET(cap, CAP_MQES), NVME_SIM_MQES);
    assert_true(cap & NVME_CAP_CQR);
    assert_int_equal((cap >> 24) & 0xff, NVME_SIM_TO);
    assert_int_equal((cap >> 32) & 0xf, 0); /* DSTRD */
    assert_true(cap & (1ull << 37));        /* CSS bit 0: NVM command set */
    assert_int_equal(NVME_GET(cap, CAP_CSS), NVME_CAP_CSS_NVM);
    assert_int_equal(NVME_GET(cap, CAP_MPSMIN), 0);
    assert_int_equal(NVME_GET(cap, CAP_MPSMAX), 0);
    assert_true(rd(f, NVME_REG_CAP, 4) == (cap & 0xffffffffu));
    assert_true(rd(f, NVME_REG_CAP + 4, 4) == cap >> 32);
    assert_int_equal(rd(f, NVME_REG_CAP, 2), 0x3ff);
    assert_int_equal(rd(f, NVME_REG_VS, 4), 0x00010400);
    assert_int_equal(rd(f, NVME_REG_CC, 4), 0);
    assert_int_equal(csts(f), 0);
    /* Reserved / unimplemented registers and doorbells read 0. */
    assert_int_equal(rd(f, 0x3c, 4), 0);  /* CMBSZ */
    assert_int_equal(rd(f, 0xe00, 4), 0); /* PMRCAP */
    assert_int_equal(rd(f, 0x1000, 4), 0);
    /* Out of BAR, bad width and other BARs are refused. */
    uint64_t v;
    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 0, NVME_SIM_BAR0_SIZE, 4, &v),
                     -EINVAL);
    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 0, 0, 3, &v), -EINVAL);
    assert_int_equal(f->dev.ops->mmio_write(f->dev.dev, 2, 0, 4, 0), -EINVAL);
}

static void test_spec_options(void **state)
{
    struct fixture *f = *state;
    struct vdx_device d;
    char err[256];
    static const char *const bad[] = {
        "sim:nvme",           /* no size */
        "sim:nvme,size=1000", /* not a multiple of 512, too small */
        "sim:nvme,size=1M,queues=0",
        "sim:nvme,size=1M,queues=65",
        "sim:nvme,size=1M,colour=blue",
        "sim:nvme,size=65537G",
        "sim:nvme,size=1M,file=/nonexistent-dir/x",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_not_equal(vdx_device_create(bad[i], &f->host, &d, err, sizeof(err)), 0);
        assert_true(strstr(err, "sim:nvme") != NULL);
    }
    /* 1 GiB of RAM costs nothing until written. */
    assert_int_equal(
        vdx_device_create("sim:nvme,size=1G,queues=64", &f->host, &d, err, sizeof(err)), 0);
    assert_int_equal(cfg(f, 0, 2), NVME_SIM_VENDOR_ID); /* f's device still fine */
    d.ops->destroy(d.dev);
}

/* ---- Enable, Identify, Features
 * -------------------------------------------------------------- */

static void test_enable_identify(void **state)
{
    struct fixture *f = *state;
    struct nvme_id_ctrl *ic = page_alloc(f, 1);
    struct nvme_id_ns *ns = page_alloc(f, 1);
    uint8_t *desc = page_alloc(f, 1);
    uint32_t *list = page_alloc(f, 1);
    char sn[21] = "";

    enable(f);
    assert_int_equal(rd(f, NVME_REG_AQA, 4), (AQ_DEPTH - 1) | ((AQ_DEPTH - 1) << 16));
    assert_true(rd(f, NVME_REG_ASQ, 8) == bus_of(f, f->q[0].sq));
    /* Admin queue registers are fixed while enabled. */
    wr(f, NVME_REG_AQA, 4, 0);
    assert_int_equal(rd(f, NVME_REG_AQA, 4), (AQ_DEPTH - 1) | ((AQ_DEPTH - 1) << 16));

    admin_ok(f, identify(NVME_CNS_CTRL, 0, ic, f), NULL);
    assert_int_equal(ic->vid, NVME_SIM_VENDOR_ID);
    assert_int_equal(ic->ssvid, NVME_SIM_VENDOR_ID);
    memcpy(sn, ic->sn, 20);
    assert_string_equal(sn, "VDX0000:05:00.0     ");
    assert_memory_equal(ic->mn, "vfio-dext sim:nvme  ", 20);
    assert_memory_equal(ic->fr, "0.1     ", 8);
    assert_int_equal(ic->mdts, NVME_SIM_MDTS);
    assert_int_equal(ic->ver, 0x00010400);
    assert_int_equal(ic->sqes, 0x66);
    assert_int_equal(ic->cqes, 0x44);
    assert_int_equal(ic->nn, 1);
    assert_int_equal(ic->oncs, 0x0d);
    assert_int_equal(ic->oacs, NVME_OACS_DBBUF);
    assert_int_equal(ic->vwc, 0); /* RAM: no volatile write cache */
    assert_int_equal(ic->aerl, NVME_SIM_AERL);
    assert_int_equal(ic->elpe, NVME_SIM_ELPE);
    assert_int_equal(ic->sgls, 0);
    assert_true(strncmp(ic->subnqn, "nqn.", 4) == 0);

    admin_ok(f, identify(NVME_CNS_NS, 1, ns, f), NULL);
    assert_true(ns->nsze == 16u * 1024 * 1024 / 512);
    assert_true(ns->ncap == ns->nsze);
    assert_int_equal(ns->nlbaf, 0);
    assert_int_equal(ns->flbas, 0);
    assert_int_equal((ns->lbaf[0] >> 16) & 0xff, 9);
    assert_int_equal(ns->lbaf[1], 0);
    assert_int_equal(ns->dlfeat & 7, 1);

    admin_ok(f, identify(NVME_CNS_NS_ACTIVE, 0, list, f), NULL);
    assert_int_equal(list[0], 1);
    assert_int_equal(list[1], 0);
    admin_ok(f, identify(NVME_CNS_NS_ACTIVE, 1, list, f), NULL);
    assert_int_equal(list[0], 0);

    admin_ok(f, identify(NVME_CNS_NS_DESC, 1, desc, f), NULL);
    assert_int_equal(desc[0], NVME_NIDT_NGUID);
    assert_int_equal(desc[1], 16);
    assert_memory_equal(desc + 4, ns->nguid, 16);
    assert_int_equal(desc[20], NVME_NIDT_CSI);
    assert_int_equal(desc[21], 1);
    assert_int_equal(desc[24], NVME_CSI_NVM);
    assert_int_equal(desc[25], 0);

    memset(list, 0xff, PG);
    admin_ok(f, identify(NVME_CNS_CS_CTRL, 0, list, f), NULL);
    assert_int_equal(list[0], 0);
    assert_true(counter(f, "admin_cmds") >= 6);
}

static void test_features(void **state)
{
    struct fixture *f = *state;
    uint32_t dw0 = 0;

    enable(f);
    /* Number of Queues answers min(requested, supported). */
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_NUM_QUEUES, 0), &dw0);
    assert_int_equal(dw0, (NQ - 1) | ((NQ - 1) << 16));
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_NUM_QUEUES, 63u | (1u << 16)),
             &dw0);
    assert_int_equal(dw0, (NQ - 1) | (1u << 16));
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_NUM_QUEUES, 0), &dw0);
    assert_int_equal(dw0, (NQ - 1) | (1u << 16));
    /* Default and supported-capabilities selects. */
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_NUM_QUEUES | (1u << 8), 0), &dw0);
    assert_int_equal(dw0, (NQ - 1) | ((NQ - 1) << 16));
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_NUM_QUEUES | (3u << 8), 0), &dw0);
    assert_int_equal(dw0, NVME_FEAT_CAP_CHANGE);

    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_ARBITRATION, 0x01020303), NULL);
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_ARBITRATION, 0), &dw0);
    assert_int_equal(dw0, 0x01020303);
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_POWER_MGMT, 0), NULL);
    assert_int_equal(admin_st(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_POWER_MGMT, 1)),
                     NVME_SC_INVALID_FIELD); /* PS 1 > NPSS */
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_TEMP_THRESH, 0), &dw0);
    assert_int_equal(dw0, NVME_SIM_WCTEMP_K);
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_TEMP_THRESH, 350), NULL);
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_TEMP_THRESH, 270 | (1u << 20)),
             NULL);
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_TEMP_THRESH, 0), &dw0);
    assert_int_equal(dw0 & 0xffff, 350);
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_TEMP_THRESH, 1u << 20), &dw0);
    assert_int_equal(dw0 & 0xffff, 270);
    assert_int_equal(admin_st(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_TEMP_THRESH,
                                          300 | (2u << 16))),
                     NVME_SC_INVALID_FIELD); /* sensor 2 does not exist */
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_IRQ_COALESCE, 0x0a05), NULL);
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_IRQ_COALESCE, 0), &dw0);
    assert_int_equal(dw0, 0x0a05);
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_IRQ_CONFIG, 2 | (1u << 16)),
             NULL);
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_IRQ_CONFIG, 2), &dw0);
    assert_int_equal(dw0, 2 | (1u << 16));
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_IRQ_CONFIG, 0), &dw0);
    assert_int_equal(dw0, 1u << 16); /* admin vector: never coalesced */
    assert_int_equal(
        admin_st(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_IRQ_CONFIG, NQ + 1)),
        NVME_SC_INVALID_FIELD);
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_ASYNC_EVENT, 0x2), NULL);
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_ASYNC_EVENT, 0), &dw0);
    assert_int_equal(dw0, 0x2);
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_WRITE_ATOMIC, 1), NULL);
    /* RAM has no volatile write cache: the feature does not exist. */
    assert_int_equal(admin_st(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_VOLATILE_WC, 0)),
                     NVME_SC_INVALID_FIELD);
    assert_int_equal(admin_st(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_VOLATILE_WC, 1)),
                     NVME_SC_INVALID_FIELD);
    /* Saving, unknown features, namespace rules. */
    assert_int_equal(admin_st(f, features(NVME_ADM_SET_FEATURES,
                                          NVME_FEAT_ARBITRATION | NVME_FEAT_SV, 0)),
                     NVME_SC_FEAT_NOT_SAVEABLE);
    assert_int_equal(admin_st(f, features(NVME_ADM_GET_FEATURES, 0x7e, 0)),
                     NVME_SC_INVALID_FIELD);
    assert_int_equal(
        admin_st(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_ARBITRATION | (4u << 8), 0)),
        NVME_SC_INVALID_FIELD);
    struct nvme_sqe s = features(NVME_ADM_SET_FEATURES, NVME_FEAT_ARBITRATION, 0);
    s.nsid = 1;
    assert_int_equal(admin_st(f, s), NVME_SC_FEAT_NOT_NS_SPECIFIC);
    s.nsid = 7;
    assert_int_equal(admin_st(f, s), NVME_SC_INVALID_NS);
    s = features(NVME_ADM_SET_FEATURES, NVME_FEAT_ERROR_RECOVERY, 100);
    assert_int_equal(admin_st(f, s), NVME_SC_INVALID_NS); /* namespace specific */
    s.nsid = 1;
    assert_int_equal(admin_st(f, s), 0);
    s.cdw11 = 1u << 16; /* DULBE unsupported */
    assert_int_equal(admin_st(f, s), NVME_SC_INVALID_FIELD);

    /* Controller reset returns features to their defaults. */
    disable(f);
    enable(f);
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_ARBITRATION, 0), &dw0);
    assert_int_equal(dw0, 7);
}

/* ---- I/O
 * ------------------------------------------------------------------------------------- */

static void test_io_prp(void **state)
{
    struct fixture *f = *state;
    uint8_t *wbuf = page_alloc(f, 2), *rbuf = page_alloc(f, 2);
    uint8_t *pages[33], *list, *rlist;
    unsigned irqs;

    bring_up(f);
    /* PRP1 only: 4 KiB page aligned, then 1 KiB at a dword offset. */
    fill(wbuf, PG, 1);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_WRITE, 0, 8, bus_of(f, wbuf), 0)), 0);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 0, 8, bus_of(f, rbuf), 0)), 0);
    assert_memory_equal(wbuf, rbuf, PG);
    fill(wbuf + 100, 1024, 2);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_WRITE, 64, 2, bus_of(f, wbuf + 100), 0)), 0);
    memset(rbuf, 0, 2 * PG);
    assert_int_equal(io_st(f, 2, rw(NVME_IO_READ, 64, 2, bus_of(f, rbuf + 2052), 0)), 0);
    assert_memory_equal(wbuf + 100, rbuf + 2052, 1024);

    /* PRP1 + PRP2: 8 KiB over two separate pages; 4 KiB crossing a page. */
    uint8_t *a = page_alloc(f, 1), *b = page_alloc(f, 1);
    fill(a, PG, 3);
    fill(b, PG, 4);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_WRITE, 100, 16, bus_of(f, a), bus_of(f, b))),
                     0);
    memset(rbuf, 0, 2 * PG);
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_READ, 100, 8, bus_of(f, rbuf + 3072), bus_of(f, rbuf + PG))),
        0);
    assert_memory_equal(rbuf + 3072, a, 1024);
    assert_memory_equal(rbuf + PG, a + 1024, 3072);

    /* PRP list: 64 KiB with PRP1 at offset 512, data pages scattered. */
    list = page_alloc(f, 1);
    for (int i = 16; i >= 0; i--) {
        pages[i] = page_alloc(f, 1);
        fill(pages[i], PG, 10 + (unsigned)i);
    }
    for (unsigned i = 1; i <= 16; i++) {
        uint64_t e = bus_of(f, pages[i]);
        memcpy(list + (i - 1) * 8, &e, 8);
    }
    assert_int_equal(
        io_st(f, 2,
              rw(NVME_IO_WRITE, 1000, 128, bus_of(f, pages[0] + 512), bus_of(f, list))),
        0);
    uint8_t *big = page_alloc(f, 17);
    rlist = page_alloc(f, 1);
    for (unsigned i = 0; i < 16; i++) {
        uint64_t e = bus_of(f, big + PG + (size_t)i * PG);
        memcpy(rlist + 8 + i * 8, &e, 8); /* list at a qword offset */
    }
    assert_int_equal(
        io_st(f, 2,
              rw(NVME_IO_READ, 1000, 128, bus_of(f, big + 512), bus_of(f, rlist + 8))),
        0);
    assert_memory_equal(big + 512, pages[0] + 512, PG - 512);
    for (unsigned i = 1; i < 16; i++) {
        assert_memory_equal(big + (size_t)i * PG, pages[i], PG);
    }
    assert_memory_equal(big + 16 * (size_t)PG, pages[16], 512);

    /* One vector per CQ: the completions above raised vectors 1 and 2. */
    irqs = f->fh.nirq;
    assert_int_equal(io_st(f, 2, rw(NVME_IO_READ, 0, 1, bus_of(f, rbuf), 0)), 0);
    assert_int_equal(f->fh.nirq, irqs + 1);
    assert_int_equal(f->fh.irq[irqs], 2);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 0, 1, bus_of(f, rbuf), 0)), 0);
    assert_int_equal(f->fh.irq[irqs + 1], 1);
    assert_int_equal(counter(f, "writes"), 4);
    assert_true(counter(f, "bytes_written") == 4096 + 1024 + 8192 + 65536);
    assert_true(counter(f, "interrupts_raised") >= 9);
}

static void test_io_mdts_chain(void **state)
{
    struct fixture *f = *state;
    uint8_t *data = page_alloc(f, 32), *back = page_alloc(f, 32);
    uint8_t *l1 = page_alloc(f, 1), *l2 = page_alloc(f, 1);
    uint64_t e;

    bring_up(f);
    fill(data, 32 * PG, 7);
    /* 128 KiB (MDTS): list starts 2 entries before the end of its page. */
    e = bus_of(f, data + PG);
    memcpy(l1 + 4080, &e, 8);
    e = bus_of(f, l2);
    memcpy(l1 + 4088, &e, 8);
    for (unsigned i = 0; i < 30; i++) {
        e = bus_of(f, data + (size_t)(i + 2) * PG);
        memcpy(l2 + i * 8, &e, 8);
    }
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_WRITE, 4096, 256, bus_of(f, data), bus_of(f, l1 + 4080))),
        0);
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_READ, 4096, 256, bus_of(f, back), bus_of(f, l1 + 4080))),
        0); /* reads back into `data` through the same list */
    for (unsigned i = 0; i < 30; i++) {
        e = bus_of(f, back + (size_t)(i + 2) * PG);
        memcpy(l2 + i * 8, &e, 8);
    }
    e = bus_of(f, back + PG);
    memcpy(l1 + 4080, &e, 8);
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_READ, 4096, 256, bus_of(f, back), bus_of(f, l1 + 4080))), 0);
    assert_memory_equal(back, data, 32 * PG);
    /* One block more than MDTS. */
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_READ, 0, 257, bus_of(f, back), bus_of(f, l1 + 4080))),
        NVME_SC_INVALID_FIELD);
}

static void test_io_commands(void **state)
{
    struct fixture *f = *state;
    uint8_t *w = page_alloc(f, 2), *r = page_alloc(f, 2), *ranges = page_alloc(f, 1);
    uint8_t zero[2 * PG];
    struct nvme_sqe s;
    uint64_t v;

    memset(zero, 0, sizeof(zero));
    bring_up(f);
    fill(w, 2 * PG, 9);
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_WRITE, 200, 16, bus_of(f, w), bus_of(f, w + PG))), 0);
    /* FUA write, Flush (also with NSID FFFFFFFFh). */
    s = rw(NVME_IO_WRITE, 300, 8, bus_of(f, w), 0);
    s.cdw12 |= NVME_RW_FUA;
    assert_int_equal(io_st(f, 1, s), 0);
    assert_int_equal(io_st(f, 1, sqe(NVME_IO_FLUSH, 1)), 0);
    assert_int_equal(io_st(f, 1, sqe(NVME_IO_FLUSH, NVME_NSID_ALL)), 0);
    assert_int_equal(io_st(f, 1, sqe(NVME_IO_FLUSH, 2)), NVME_SC_INVALID_NS);
    assert_int_equal(counter(f, "flushes"), 2);

    /* Compare: match, then a one-byte difference. */
    assert_int_equal(
        io_st(f, 2, rw(NVME_IO_COMPARE, 200, 16, bus_of(f, w), bus_of(f, w + PG))), 0);
    w[5000] ^= 1;
    assert_int_equal(
        io_st(f, 2, rw(NVME_IO_COMPARE, 200, 16, bus_of(f, w), bus_of(f, w + PG))),
        NVME_SC_COMPARE_FAILURE);
    w[5000] ^= 1;

    /* Write Zeroes on 4 blocks in the middle. */
    s = rw(NVME_IO_WRITE_ZEROES, 204, 4, 0, 0);
    assert_int_equal(io_st(f, 1, s), 0);
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_READ, 200, 16, bus_of(f, r), bus_of(f, r + PG))), 0);
    assert_memory_equal(r, w, 4 * 512);
    assert_memory_equal(r + 4 * 512, zero, 4 * 512);
    assert_memory_equal(r + 8 * 512, w + 8 * 512, 8 * 512);

    /* Dataset Management deallocate of two ranges; reads back zeros. */
    assert_int_equal(io_st(f, 1, rw(NVME_IO_WRITE, 8, 16, bus_of(f, w), bus_of(f, w + PG))),
                     0);
    memset(ranges, 0, PG);
    v = 8;
    ranges[4] = 8; /* NLB 8 at SLBA 8 */
    memcpy(ranges + 8, &v, 8);
    v = 200;
    ranges[16 + 4] = 16; /* NLB 16 at SLBA 200 */
    memcpy(ranges + 24, &v, 8);
    s = sqe(NVME_IO_DSM, 1);
    s.prp1 = bus_of(f, ranges);
    s.cdw10 = 1;
    s.cdw11 = NVME_DSM_AD;
    assert_int_equal(io_st(f, 2, s), 0);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 8, 16, bus_of(f, r), bus_of(f, r + PG))),
                     0);
    assert_memory_equal(r, zero, 8 * 512);
    assert_memory_equal(r + 8 * 512, w + 8 * 512, 8 * 512);
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_READ, 200, 16, bus_of(f, r), bus_of(f, r + PG))), 0);
    assert_memory_equal(r, zero, 16 * 512);
    /* A range past the end fails the whole command. */
    v = 32760;
    memcpy(ranges + 24, &v, 8);
    assert_int_equal(io_st(f, 2, s), NVME_SC_LBA_RANGE);
    assert_int_equal(counter(f, "compares"), 2);
    assert_int_equal(counter(f, "compare_failures"), 1);
    assert_int_equal(counter(f, "write_zeroes"), 1);
    assert_int_equal(counter(f, "dsm_deallocates"), 1);
}

/* ---- Hostile commands
 * ------------------------------------------------------------------------ */

struct hostile {
    const char *what;
    unsigned qid;
    struct nvme_sqe s;
    unsigned status;
};

static void run_hostile(struct fixture *f, const struct hostile *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned st = status_of(submit(f, h[i].qid, h[i].s));

        if (st != h[i].status) {
            fail_msg("%s: status 0x%03x, expected 0x%03x", h[i].what, st, h[i].status);
        }
    }
}

static void test_hostile(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = page_alloc(f, 2), *qmem = page_alloc(f, 1), *list = page_alloc(f, 1);
    const uint64_t b = bus_of(f, buf), qb = bus_of(f, qmem);
    uint64_t bad = UNMAPPED_BUS;

    bring_up(f);
    memcpy(list, &bad, 8);
    struct nvme_sqe fuse = rw(NVME_IO_READ, 0, 1, b, 0), sgl = fuse, dtype = fuse;
    struct nvme_sqe nsid0 = fuse, nsid2 = fuse, nsall = fuse;
    struct nvme_sqe wz_big = rw(NVME_IO_WRITE_ZEROES, 32760, 9, 0, 0);
    struct nvme_sqe id_bad = identify(0x42, 0, buf, f), id_ns5 = identify(0, 5, buf, f);
    struct nvme_sqe log_bad = sqe(NVME_ADM_GET_LOG_PAGE, 0), log_off, log_past;
    struct nvme_sqe csi_bad = identify(NVME_CNS_CS_CTRL, 0, buf, f);
    struct nvme_sqe id_unmapped = identify(NVME_CNS_CTRL, 0, buf, f);
    fuse.cdw0 |= 1u << 8;
    sgl.cdw0 |= 1u << 14;
    dtype.cdw12 |= 1u << 20;
    nsid0.nsid = 0;
    nsid2.nsid = 2;
    nsall.nsid = NVME_NSID_ALL;
    csi_bad.cdw11 = 2u << 24;
    id_unmapped.prp1 = UNMAPPED_BUS;
    log_bad.prp1 = b;
    log_bad.cdw10 = 0x7f | (127u << 16);
    log_off = log_bad;
    log_off.cdw10 = NVME_LOG_SMART | (127u << 16);
    log_off.cdw12 = 2;
    log_past = log_off;
    log_past.cdw12 = 512;
    const struct hostile cases[] = {
        {"admin opcode 7Fh", 0, sqe(0x7f, 0), NVME_SC_INVALID_OPCODE},
        {"Format NVM unsupported", 0, sqe(0x80, 1), NVME_SC_INVALID_OPCODE},
        {"I/O opcode 04h (Write Uncorrectable)", 1, sqe(0x04, 1), NVME_SC_INVALID_OPCODE},
        {"I/O opcode FFh", 1, sqe(0xff, 1), NVME_SC_INVALID_OPCODE},
        {"fused", 1, fuse, NVME_SC_INVALID_FIELD},
        {"SGL", 1, sgl, NVME_SC_INVALID_FIELD},
        {"directive", 1, dtype, NVME_SC_INVALID_FIELD},
        {"NSID 0", 1, nsid0, NVME_SC_INVALID_NS},
        {"NSID 2", 1, nsid2, NVME_SC_INVALID_NS},
        {"NSID FFFFFFFFh read", 1, nsall, NVME_SC_INVALID_NS},
        {"LBA past the end", 1, rw(NVME_IO_READ, 32768, 1, b, 0), NVME_SC_LBA_RANGE},
        {"LBA range past the end", 1, rw(NVME_IO_WRITE, 32767, 2, b, 0), NVME_SC_LBA_RANGE},
        {"LBA overflow", 1, rw(NVME_IO_READ, UINT64_MAX, 2, b, 0), NVME_SC_LBA_RANGE},
        {"Write Zeroes past the end", 1, wz_big, NVME_SC_LBA_RANGE},
        {"MDTS exceeded", 1, rw(NVME_IO_READ, 0, 257, b, b + PG), NVME_SC_INVALID_FIELD},
        {"PRP1 not dword aligned", 1, rw(NVME_IO_READ, 0, 1, b + 2, 0),
         NVME_SC_INVALID_PRP_OFFSET},
        {"PRP2 data pointer with offset", 1, rw(NVME_IO_READ, 0, 16, b, b + PG + 8),
         NVME_SC_INVALID_PRP_OFFSET},
        {"PRP list pointer not qword aligned", 1, rw(NVME_IO_READ, 0, 24, b, b + 4),
         NVME_SC_INVALID_PRP_OFFSET},
        {"PRP1 unmapped", 1, rw(NVME_IO_READ, 0, 8, UNMAPPED_BUS, 0),
         NVME_SC_DATA_XFER_ERROR},
        {"PRP1 unmapped write", 1, rw(NVME_IO_WRITE, 0, 8, UNMAPPED_BUS, 0),
         NVME_SC_DATA_XFER_ERROR},
        {"PRP2 unmapped", 1, rw(NVME_IO_READ, 0, 16, b, UNMAPPED_BUS),
         NVME_SC_DATA_XFER_ERROR},
        {"PRP list unmapped", 1, rw(NVME_IO_READ, 0, 24, b, UNMAPPED_BUS),
         NVME_SC_DATA_XFER_ERROR},
        {"PRP list entry unmapped", 1, rw(NVME_IO_READ, 0, 16, b + 512, bus_of(f, list)),
         NVME_SC_DATA_XFER_ERROR},
        {"PRP crossing the top of the bus", 1, rw(NVME_IO_READ, 0, 8, UINT64_MAX - 3, 0),
         NVME_SC_DATA_XFER_ERROR},
        {"create CQ QID 0", 0, create_cq(0, 16, qb, NVME_QUEUE_PC, 0), NVME_SC_INVALID_QID},
        {"create CQ QID in use", 0, create_cq(1, 16, qb, NVME_QUEUE_PC, 0),
         NVME_SC_INVALID_QID},
        {"create CQ QID > allocated", 0, create_cq(NQ + 1, 16, qb, NVME_QUEUE_PC, 0),
         NVME_SC_INVALID_QID},
        {"create CQ QID 65535", 0, create_cq(0xffff, 16, qb, NVME_QUEUE_PC, 0),
         NVME_SC_INVALID_QID},
        {"create CQ too large", 0, create_cq(3, 1025, qb, NVME_QUEUE_PC, 0),
         NVME_SC_INVALID_QUEUE_SIZE},
        {"create CQ of 1 entry", 0, create_cq(3, 1, qb, NVME_QUEUE_PC, 0),
         NVME_SC_INVALID_QUEUE_SIZE},
        {"create CQ not contiguous", 0, create_cq(3, 16, qb, 0, 0), NVME_SC_INVALID_FIELD},
        {"create CQ base offset", 0, create_cq(3, 16, qb + 64, NVME_QUEUE_PC, 0),
         NVME_SC_INVALID_PRP_OFFSET},
        {"create CQ vector out of range", 0,
         create_cq(3, 16, qb, NVME_QUEUE_PC | NVME_CQ_IEN, NQ + 1), NVME_SC_INVALID_VECTOR},
        {"create SQ on CQ 0", 0, create_sq(3, 16, qb, 0), NVME_SC_CQ_INVALID},
        {"create SQ on missing CQ", 0, create_sq(3, 16, qb, 3), NVME_SC_CQ_INVALID},
        {"create SQ QID in use", 0, create_sq(2, 16, qb, 1), NVME_SC_INVALID_QID},
        {"create SQ too large", 0, create_sq(3, 2000, qb, 1), NVME_SC_INVALID_QUEUE_SIZE},
        {"delete CQ with an SQ", 0, delete_q(NVME_ADM_DELETE_CQ, 1),
         NVME_SC_INVALID_QUEUE_DELETION},
        {"delete CQ 0", 0, delete_q(NVME_ADM_DELETE_CQ, 0), NVME_SC_INVALID_QID},
        {"delete missing CQ", 0, delete_q(NVME_ADM_DELETE_CQ, 3), NVME_SC_INVALID_QID},
        {"delete SQ 0", 0, delete_q(NVME_ADM_DELETE_SQ, 0), NVME_SC_INVALID_QID},
        {"delete missing SQ", 0, delete_q(NVME_ADM_DELETE_SQ, 60000), NVME_SC_INVALID_QID},
        {"identify CNS 42h", 0, id_bad, NVME_SC_INVALID_FIELD},
        {"identify NSID 5", 0, id_ns5, NVME_SC_INVALID_NS},
        {"identify CSI 2", 0, csi_bad, NVME_SC_INVALID_FIELD},
        {"identify to unmapped memory", 0, id_unmapped, NVME_SC_DATA_XFER_ERROR},
        {"log page 7Fh", 0, log_bad, NVME_SC_INVALID_LOG_PAGE},
        {"log offset not dword aligned", 0, log_off, NVME_SC_INVALID_FIELD},
        {"log offset past the end", 0, log_past, NVME_SC_INVALID_FIELD},
        {"number of queues after creation", 0,
         features(NVME_ADM_SET_FEATURES, NVME_FEAT_NUM_QUEUES, 0), NVME_SC_CMD_SEQ_ERROR},
        {"number of queues 65536", 0,
         features(NVME_ADM_SET_FEATURES, NVME_FEAT_NUM_QUEUES, 0xffff),
         NVME_SC_INVALID_FIELD},
    };
    uint64_t dma_errors = counter(f, "dma_errors");

    run_hostile(f, cases, sizeof(cases) / sizeof(cases[0]));
    assert_true(counter(f, "dma_errors") == dma_errors + 7);
    assert_true(counter(f, "invalid_cmds") >= 40);
    assert_int_equal(counter(f, "cfs_events"), 0);
    assert_int_equal(csts(f), NVME_CSTS_RDY);

    /* A data transfer error leaves an Error Information entry. */
    struct nvme_sqe log = sqe(NVME_ADM_GET_LOG_PAGE, 0);
    struct nvme_error_log *e = (struct nvme_error_log *)buf;
    log.prp1 = b;
    log.cdw10 = NVME_LOG_ERROR | (15u << 16); /* one entry */
    admin_ok(f, log, NULL);
    assert_true(e->error_count >= 7);
    assert_int_equal(e->status >> 1, NVME_SC_DATA_XFER_ERROR | NVME_SF_DNR);
}

/* Queue deletion and re-creation; an SQ keeps its CQ from being deleted. */
static void test_queue_lifecycle(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = page_alloc(f, 1);

    bring_up(f);
    assert_int_equal(admin_st(f, delete_q(NVME_ADM_DELETE_CQ, 2)),
                     NVME_SC_INVALID_QUEUE_DELETION);
    admin_ok(f, delete_q(NVME_ADM_DELETE_SQ, 2), NULL);
    admin_ok(f, delete_q(NVME_ADM_DELETE_CQ, 2), NULL);
    /* Two SQs on one CQ. */
    f->q[3].sq = page_alloc(f, 1);
    f->q[3].sq_size = 16;
    admin_ok(f, create_sq(3, 16, bus_of(f, f->q[3].sq), 1), NULL);
    assert_int_equal(admin_st(f, delete_q(NVME_ADM_DELETE_CQ, 1)),
                     NVME_SC_INVALID_QUEUE_DELETION);
    /* A command on SQ 3 completes on CQ 1. */
    struct nvme_cpl cpl;
    uint16_t cid = sq_put(f, 3, rw(NVME_IO_READ, 0, 1, bus_of(f, buf), 0));
    sq_ring(f, 3);
    assert_true(cq_reap(f, 1, &cpl));
    assert_int_equal(cpl.cid, cid);
    assert_int_equal(cpl.sqid, 3);
    assert_int_equal(status_of(cpl), 0);
    make_ioq(f, 2, 16, 16);
    assert_int_equal(io_st(f, 2, rw(NVME_IO_READ, 0, 1, bus_of(f, buf), 0)), 0);
}

/* ---- Controller state
 * -------------------------------------------------------------------------- */

static void test_bad_cc(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *what;
        uint32_t cc;
    } bad[] = {
        {"IOSQES 0", CC_MAKE(0, 0, 0, 0, 4)},
        {"IOSQES 7", CC_MAKE(0, 0, 0, 7, 4)},
        {"IOCQES 5", CC_MAKE(0, 0, 0, 6, 5)},
        {"MPS 8K", CC_MAKE(0, 1, 0, 6, 4)},
        {"CSS 1", CC_MAKE(1, 0, 0, 6, 4)},
        {"CSS 6 (not in CAP)", CC_MAKE(6, 0, 0, 6, 4)},
        {"CSS 7 (not in CAP)", CC_MAKE(7, 0, 0, 6, 4)},
        {"AMS WRR", CC_MAKE(0, 0, 1, 6, 4)},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enable_with(f, bad[i].cc);
        if (csts(f) != NVME_CSTS_CFS) {
            fail_msg("%s: CSTS 0x%x", bad[i].what, csts(f));
        }
        /* Doorbells are ignored while not ready. */
        wr(f, NVME_SQ_TAIL_DB(0, NVME_SIM_DSTRD), 4, 1);
        disable(f);
        assert_int_equal(csts(f), 0);
    }
    /* Admin queue sizes of one entry, and an unprogrammed ASQ. */
    wr(f, NVME_REG_AQA, 4, 31u << 16);
    wr(f, NVME_REG_CC, 4, CC_GOOD | NVME_CC_EN);
    assert_int_equal(csts(f), NVME_CSTS_CFS);
    disable(f);
    wr(f, NVME_REG_AQA, 4, 31u);
    wr(f, NVME_REG_CC, 4, CC_GOOD | NVME_CC_EN);
    assert_int_equal(csts(f), NVME_CSTS_CFS);
    disable(f);
    wr(f, NVME_REG_AQA, 4, 31u | (31u << 16));
    wr(f, NVME_REG_ASQ, 8, 0);
    wr(f, NVME_REG_CC, 4, CC_GOOD | NVME_CC_EN);
    assert_int_equal(csts(f), NVME_CSTS_CFS);
    disable(f);
    /* ASQ bits 11:0 are reserved: they read 0. */
    wr(f, NVME_REG_ASQ, 8, 0x12345678);
    assert_true(rd(f, NVME_REG_ASQ, 8) == 0x12345000);
    assert_int_equal(counter(f, "cfs_events"), 11);
    enable(f);
}

static void test_unreachable_queues(void **state)
{
    struct fixture *f = *state;

    /* An admin SQ in unmapped memory: the fetch fails -> CFS. */
    enable(f);
    disable(f);
    wr(f, NVME_REG_ASQ, 8, UNMAPPED_BUS);
    wr(f, NVME_REG_CC, 4, CC_GOOD | NVME_CC_EN);
    assert_int_equal(csts(f), NVME_CSTS_RDY);
    sq_put(f, 0, identify(NVME_CNS_CTRL, 0, page_alloc(f, 1), f));
    sq_ring(f, 0);
    assert_int_equal(csts(f), NVME_CSTS_RDY | NVME_CSTS_CFS);
    assert_int_equal(counter(f, "cfs_events"), 1);
    enable(f); /* enable() clears EN first: the reset clears CFS */
}

static void test_cq_unreachable(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = page_alloc(f, 1);

    bring_up(f);
    f->q[3].sq = page_alloc(f, 1);
    f->q[3].sq_size = 16;
    admin_ok(f, create_cq(3, 16, UNMAPPED_BUS, NVME_QUEUE_PC, 0), NULL);
    admin_ok(f, create_sq(3, 16, bus_of(f, f->q[3].sq), 3), NULL);
    sq_put(f, 3, rw(NVME_IO_READ, 0, 1, bus_of(f, buf), 0));
    sq_ring(f, 3);
    assert_true(csts(f) & NVME_CSTS_CFS);
    assert_int_equal(counter(f, "cfs_events"), 1);
    /* Fatal: nothing else is processed until a reset. */
    sq_put(f, 0, identify(NVME_CNS_CTRL, 0, buf, f));
    sq_ring(f, 0);
    struct nvme_cpl cpl;
    assert_false(cq_reap(f, 0, &cpl));
    disable(f);
    enable(f);
    admin_ok(f, identify(NVME_CNS_CTRL, 0, buf, f), NULL);
}

static void test_shutdown(void **state)
{
    struct fixture *f = *state;

    enable(f);
    wr(f, NVME_REG_CC, 4, CC_GOOD | NVME_CC_EN | (1u << 14));
    assert_int_equal(csts(f), NVME_CSTS_RDY | NVME_SET(NVME_CSTS_SHST_COMPLETE, CSTS_SHST));
    assert_int_equal(counter(f, "shutdowns"), 1);
    /* After shutdown commands are not processed until a reset. */
    sq_put(f, 0, identify(NVME_CNS_CTRL, 0, page_alloc(f, 1), f));
    sq_ring(f, 0);
    struct nvme_cpl cpl;
    assert_false(cq_reap(f, 0, &cpl));
    wr(f, NVME_REG_CC, 4, CC_GOOD);
    assert_int_equal(csts(f), 0);
    enable(f);
    admin_ok(f, identify(NVME_CNS_CTRL, 0, page_alloc(f, 1), f), NULL);
}

/* CC.EN 1 -> 0 with commands queued (a full CQ stalled them): everything is
 * dropped, nothing more is written, and the controller comes back. */
static void test_disable_mid_io(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = page_alloc(f, 1);
    uint8_t snapshot[4 * 16];
    struct nvme_cpl cpl;

    enable_irqs(f);
    enable(f);
    make_ioq(f, 1, 4, 16);
    for (unsigned i = 0; i < 10; i++) {
        sq_put(f, 1, rw(NVME_IO_WRITE, i, 1, bus_of(f, buf), 0));
    }
    sq_ring(f, 1);
    /* 3 of 4 CQ entries usable: 3 completions, 7 commands waiting. */
    assert_int_equal(counter(f, "writes"), 3);
    memcpy(snapshot, f->q[1].cq, sizeof(snapshot));
    disable(f);
    wr(f, NVME_CQ_HEAD_DB(1, NVME_SIM_DSTRD), 4, 3); /* ignored: not ready */
    assert_memory_equal(snapshot, f->q[1].cq, sizeof(snapshot));
    assert_int_equal(counter(f, "writes"), 3);
    assert_int_equal(counter(f, "resets"), 1);
    enable(f);
    assert_int_equal(admin_st(f, delete_q(NVME_ADM_DELETE_SQ, 1)), NVME_SC_INVALID_QID);
    make_ioq(f, 1, 4, 16);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 0, 1, bus_of(f, buf), 0)), 0);
    (void)cpl;
}

/* A full CQ stalls its SQ; the CQ head doorbell resumes it. */
static void test_cq_full(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = page_alloc(f, 1);
    struct nvme_cpl cpl;
    unsigned got = 0;

    enable_irqs(f);
    enable(f);
    make_ioq(f, 1, 4, 16);
    for (unsigned i = 0; i < 12; i++) {
        sq_put(f, 1, rw(NVME_IO_READ, i, 1, bus_of(f, buf), 0));
    }
    sq_ring(f, 1);
    assert_int_equal(counter(f, "reads"), 3);
    while (cq_reap(f, 1, &cpl)) { /* each head doorbell lets more run */
        assert_int_equal(status_of(cpl), 0);
        got++;
        assert_true(got <= 12);
    }
    assert_int_equal(got, 12);
    assert_int_equal(counter(f, "reads"), 12);
}

static void test_flr(void **state)
{
    struct fixture *f = *state;
    const uint32_t devctl = NVME_SIM_CAP_PCIE + SIMPCI_PCIE_DEVCTL;

    bring_up(f);
    assert_true(cfg(f, NVME_SIM_CAP_MSIX + 2, 2) & SIMPCI_MSIX_CTRL_ENABLE);
    assert_int_equal(
        f->dev.ops->config_write(f->dev.dev, devctl, 2, SIMPCI_PCIE_DEVCTL_FLR), 0);
    assert_int_equal(rd(f, NVME_REG_CC, 4), 0);
    assert_int_equal(csts(f), 0);
    assert_int_equal(rd(f, NVME_REG_AQA, 4), 0);
    assert_true(rd(f, NVME_REG_ASQ, 8) == 0);
    assert_false(cfg(f, NVME_SIM_CAP_MSIX + 2, 2) & SIMPCI_MSIX_CTRL_ENABLE);
    assert_int_equal(counter(f, "resets_flr"), 1);
    /* Hot reset through the reset op, then everything works again. */
    assert_int_equal(f->dev.ops->reset(f->dev.dev, DEXT_RESET_HOT), 0);
    assert_int_equal(counter(f, "resets_hot"), 1);
    assert_int_equal(f->dev.ops->reset(f->dev.dev, DEXT_RESET_NONE), -ENOTSUP);
    f->next_page = 0;
    bring_up(f);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 0, 1, bus_of(f, page_alloc(f, 1)), 0)),
                     0);
    assert_int_equal(f->dev.ops->reset(f->dev.dev, DEXT_RESET_FUNCTION), 0);
    assert_int_equal(counter(f, "resets_flr"), 2);
}

/* ---- Interrupts
 * --------------------------------------------------------------------------------- */

static void test_interrupts(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = page_alloc(f, 1);
    unsigned n0;

    bring_up(f);
    /* A CQ without IEN raises nothing. */
    f->q[3].cq = page_alloc(f, 1);
    f->q[3].sq = page_alloc(f, 1);
    f->q[3].cq_size = f->q[3].sq_size = 16;
    f->q[3].phase = true;
    admin_ok(f, create_cq(3, 16, bus_of(f, f->q[3].cq), NVME_QUEUE_PC, 0), NULL);
    admin_ok(f, create_sq(3, 16, bus_of(f, f->q[3].sq), 3), NULL);
    n0 = f->fh.nirq;
    assert_int_equal(io_st(f, 3, rw(NVME_IO_READ, 0, 1, bus_of(f, buf), 0)), 0);
    assert_int_equal(f->fh.nirq, n0);
    /* A masked MSI-X entry latches the vector; unmasking delivers it. */
    const uint64_t ctrl1 = NVME_SIM_MSIX_TABLE_OFF + 16 + SIMPCI_MSIX_ENTRY_CTRL;
    wr(f, ctrl1, 4, SIMPCI_MSIX_ENTRY_MASKED);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 0, 1, bus_of(f, buf), 0)), 0);
    assert_int_equal(f->fh.nirq, n0);
    assert_int_equal(rd(f, NVME_SIM_MSIX_PBA_OFF, 8), 1u << 1);
    wr(f, ctrl1, 4, 0);
    assert_int_equal(f->fh.nirq, n0 + 1);
    assert_int_equal(f->fh.irq[n0], 1);
    /* INTMS/INTMC: stored, no effect under MSI-X. */
    wr(f, NVME_REG_INTMS, 4, 0x6);
    assert_int_equal(rd(f, NVME_REG_INTMS, 4), 0x6);
    wr(f, NVME_REG_INTMC, 4, 0x2);
    assert_int_equal(rd(f, NVME_REG_INTMC, 4), 0x4);
    assert_int_equal(io_st(f, 2, rw(NVME_IO_READ, 0, 1, bus_of(f, buf), 0)), 0);
    assert_int_equal(f->fh.irq[n0 + 1], 2);
}

/* ---- Asynchronous events and logs
 * ------------------------------------------------------------- */

static void test_async_events(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = page_alloc(f, 1);
    struct nvme_sqe log = sqe(NVME_ADM_GET_LOG_PAGE, 0);
    struct nvme_cpl cpl;
    uint16_t aer[4];

    bring_up(f);
    for (unsigned i = 0; i < 4; i++) {
        aer[i] = sq_put(f, 0, sqe(NVME_ADM_ASYNC_EVENT, 0));
    }
    sq_ring(f, 0);
    assert_false(cq_reap(f, 0, &cpl)); /* held */
    assert_int_equal(admin_st(f, sqe(NVME_ADM_ASYNC_EVENT, 0)), NVME_SC_AER_LIMIT);
    /* A command reusing a held AER's CID conflicts. */
    f->next_cid = aer[3];
    assert_int_equal(admin_st(f, sqe(NVME_ADM_ABORT, 0)), NVME_SC_CID_CONFLICT);
    f->next_cid = 100;

    /* Write to the doorbell of a queue that does not exist. */
    wr(f, NVME_SQ_TAIL_DB(9, NVME_SIM_DSTRD), 4, 1);
    assert_true(cq_reap(f, 0, &cpl));
    assert_int_equal(cpl.cid, aer[0]);
    assert_int_equal(status_of(cpl), 0);
    assert_int_equal(cpl.dw0, NVME_AER_DW0(NVME_AER_TYPE_ERROR, NVME_AER_INFO_INVALID_DB,
                                           NVME_LOG_ERROR));
    /* Error events are masked until the Error log is read: a bad value on
     * an existing queue waits. */
    wr(f, NVME_SQ_TAIL_DB(1, NVME_SIM_DSTRD), 4, IOQ_DEPTH);
    assert_false(cq_reap(f, 0, &cpl));
    log.prp1 = bus_of(f, buf);
    log.cdw10 = NVME_LOG_ERROR | NVME_LOG_RAE | (15u << 16);
    admin_ok(f, log, NULL); /* RAE: still masked */
    assert_false(cq_reap(f, 0, &cpl));
    log.cdw10 &= ~NVME_LOG_RAE;
    admin_ok(f, log, NULL);
    assert_true(cq_reap(f, 0, &cpl));
    assert_int_equal(cpl.cid, aer[1]);
    assert_int_equal(cpl.dw0, NVME_AER_DW0(NVME_AER_TYPE_ERROR,
                                           NVME_AER_INFO_INVALID_DB_VALUE, NVME_LOG_ERROR));
    assert_int_equal(counter(f, "doorbell_errors"), 2);
    /* A CQ head that releases entries never posted is invalid too. */
    admin_ok(f, log, NULL);
    wr(f, NVME_CQ_HEAD_DB(1, NVME_SIM_DSTRD), 4, 5);
    assert_true(cq_reap(f, 0, &cpl));
    assert_int_equal(cpl.cid, aer[2]);

    /* SMART temperature: enabled in AEC, threshold below the temperature. */
    admin_ok(
        f,
        features(NVME_ADM_SET_FEATURES, NVME_FEAT_ASYNC_EVENT, NVME_SMART_CRIT_TEMPERATURE),
        NULL);
    struct nvme_cpl set =
        submit(f, 0, features(NVME_ADM_SET_FEATURES, NVME_FEAT_TEMP_THRESH, 300));
    assert_int_equal(status_of(set), 0);
    assert_true(cq_reap(f, 0, &cpl));
    assert_int_equal(cpl.cid, aer[3]);
    assert_int_equal(cpl.dw0,
                     NVME_AER_DW0(NVME_AER_TYPE_SMART, NVME_AER_INFO_TEMP, NVME_LOG_SMART));
    log.cdw10 = NVME_LOG_SMART | (127u << 16);
    log.nsid = NVME_NSID_ALL;
    admin_ok(f, log, NULL);
    assert_int_equal(buf[0] & NVME_SMART_CRIT_TEMPERATURE, NVME_SMART_CRIT_TEMPERATURE);
    assert_int_equal(counter(f, "aer_completed"), 4);
    /* Abort: nothing is ever outstanding but AERs: "not aborted". */
    uint32_t dw0 = 0;
    admin_ok(f, sqe(NVME_ADM_ABORT, 0), &dw0);
    assert_int_equal(dw0 & 1, 1);
}

static void test_logs(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = page_alloc(f, 1), *data = page_alloc(f, 1);
    struct nvme_sqe log = sqe(NVME_ADM_GET_LOG_PAGE, NVME_NSID_ALL);
    struct nvme_smart_log *s = (struct nvme_smart_log *)buf;
    struct nvme_fw_slot_log *fw = (struct nvme_fw_slot_log *)buf;

    bring_up(f);
    for (unsigned i = 0; i < 3; i++) { /* 3 x 8 blocks written, 1 x 8 read */
        assert_int_equal(io_st(f, 1, rw(NVME_IO_WRITE, i * 8, 8, bus_of(f, data), 0)), 0);
    }
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 0, 8, bus_of(f, data), 0)), 0);
    log.prp1 = bus_of(f, buf);
    log.cdw10 = NVME_LOG_SMART | (127u << 16);
    admin_ok(f, log, NULL);
    assert_int_equal(s->critical_warning, 0);
    assert_int_equal(s->temperature[0] | (s->temperature[1] << 8), NVME_SIM_TEMP_K);
    assert_int_equal(s->avail_spare, 100);
    assert_int_equal(s->data_units_written[0], 1); /* 24 units rounded up */
    assert_int_equal(s->data_units_read[0], 1);
    assert_int_equal(s->host_writes[0], 3);
    assert_int_equal(s->host_reads[0], 1);
    /* Offset and length: bytes 64..71 of the log (host reads). */
    memset(buf, 0xee, PG);
    log.cdw10 = NVME_LOG_SMART | (1u << 16);
    log.cdw12 = 64;
    admin_ok(f, log, NULL);
    assert_int_equal(buf[0], 1);
    assert_int_equal(buf[8], 0xee);
    /* Reading past the end of the log returns zeros. */
    log.cdw10 = NVME_LOG_SMART | (1023u << 16);
    log.cdw12 = 0;
    memset(buf, 0xee, PG);
    admin_ok(f, log, NULL);
    assert_int_equal(buf[4000], 0);
    log.nsid = 2;
    assert_int_equal(admin_st(f, log), NVME_SC_INVALID_NS);
    log.nsid = 0;
    log.cdw10 = NVME_LOG_FW_SLOT | (127u << 16);
    admin_ok(f, log, NULL);
    assert_int_equal(fw->afi, 1);
    assert_memory_equal(fw->frs[0], "0.1     ", 8);
}

/* ---- Fuzz
 * ------------------------------------------------------------------------------------ */

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static void randomize(uint64_t *seed, uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)xorshift(seed);
    }
}

/* Plausible-looking entries: a known opcode, mostly NSID 1, small LBAs and
 * lengths, PRPs into the fuzz data pages (which may hold PRP lists). */
static void plausible(uint64_t *seed, uint8_t *e, bool admin, uint64_t data, unsigned pages)
{
    static const uint8_t aops[] = {0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 0x7c};
    static const uint8_t iops[] = {0, 1, 2, 5, 8, 9};
    struct nvme_sqe s;

    randomize(seed, e, 64);
    memcpy(&s, e, sizeof(s));
    s.cdw0 = (s.cdw0 & 0xffff0000u) | (admin ? aops[xorshift(seed) % sizeof(aops)]
                                             : iops[xorshift(seed) % sizeof(iops)]);
    s.nsid = (uint32_t)(xorshift(seed) % 4 ? 1 : xorshift(seed) % 3);
    s.prp1 = data + (xorshift(seed) % ((uint64_t)pages * PG) & ~3ull);
    s.prp2 = data + (xorshift(seed) % pages) * PG + (xorshift(seed) % 4 ? 0 : 8);
    if ((s.cdw0 & 0xffu) == NVME_ADM_DBBUF_CONFIG && xorshift(seed) % 8 == 0) {
        s.prp1 &= ~(uint64_t)(PG - 1); /* sometimes valid: shadow pages in `data` */
    }
    s.cdw10 = (uint32_t)(xorshift(seed) % (admin ? 0x400000 : 40000)) & 0x00ff0fffu;
    if (admin) {
        s.cdw11 =
            (uint32_t)(xorshift(seed) % 64) | ((uint32_t)(xorshift(seed) % 6) << 16) | 1u;
    } else {
        s.cdw11 = xorshift(seed) % 8 ? (uint32_t)xorshift(seed) & NVME_DSM_AD : s.cdw11;
    }
    s.cdw12 &= 0x400000ffu;
    memcpy(e, &s, sizeof(s));
}

static void fuzz_doorbell(struct fixture *f, uint64_t *seed, uint64_t r)
{
    unsigned qid = (unsigned)(r >> 8) % 3;
    bool cq = (r >> 12) & 1;
    uint32_t size = cq ? f->q[qid].cq_size : f->q[qid].sq_size;

    if ((r >> 16) % 4 == 0) { /* anything anywhere in the doorbell page */
        wr(f, NVME_REG_DBS + ((r >> 20) % 1024) * 4, 4,
           (r & 0x100000000ull) ? (uint32_t)xorshift(seed) : (uint32_t)((r >> 40) % 80));
        return;
    }
    wr(f, cq ? NVME_CQ_HEAD_DB(qid, NVME_SIM_DSTRD) : NVME_SQ_TAIL_DB(qid, NVME_SIM_DSTRD),
       4, (uint32_t)((r >> 24) % (size + 2)));
}

/* Random doorbell writes (any queue, any value), random queue contents,
 * plausible commands (Doorbell Buffer Config over random shadow pages too)
 * and random register writes: never a crash or a hang, and afterwards a
 * reset brings a working controller back. */
static void test_doorbell_fuzz(void **state)
{
    struct fixture *f = *state;
    uint64_t seed = 0x243f6a8885a308d3ull;
    uint8_t *data = page_alloc(f, 64);
    const uint64_t dbus = bus_of(f, data);
    const size_t base = f->next_page;

    bring_up(f);
    for (unsigned iter = 0; iter < 100000; iter++) {
        uint64_t r = xorshift(&seed);
        unsigned qid = (unsigned)(r >> 8) % 3;
        uint8_t *slot = f->q[qid].sq + (r >> 16) % f->q[qid].sq_size * 64;

        if (r % 256 == 0) { /* any register, any value (CC.EN, SHN included) */
            wr(f, (r >> 16) % 0x40 & ~3ull, 4, (uint32_t)xorshift(&seed));
        } else if (r % 32 == 1 && csts(f) != NVME_CSTS_RDY) {
            f->next_page = base;
            disable(f);
            bring_up(f);
        } else if (r % 16 < 3) {
            randomize(&seed, slot, 64);
        } else if (r % 16 < 8) {
            plausible(&seed, slot, qid == 0, dbus, 64);
        } else if (r % 16 < 10) {
            randomize(&seed, data + (r >> 20) % 64 * PG, 64); /* PRP lists, DSM ranges */
        } else {
            fuzz_doorbell(f, &seed, r);
        }
    }
    f->next_page = base;
    disable(f);
    bring_up(f);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 0, 1, dbus, 0)), 0);
    assert_true(counter(f, "doorbell_errors") > 0);
    assert_true(counter(f, "io_cmds") > 1000);
    assert_true(counter(f, "dbbuf_configs") > 0); /* shadow doorbells fuzzed too */
}

/* ---- Doorbell buffer ------------------------------------------------------------- */

/* The host side of Doorbell Buffer Config, as Linux's nvme driver does it:
 * write the shadow, then ring the register only if the new value passes the
 * controller's EventIdx. */
struct dbb {
    uint32_t *db, *ei; /* shadow doorbell and EventIdx pages */
    unsigned rings;    /* register doorbell writes made */
};

static bool need_event(uint16_t ei, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - ei - 1) < (uint16_t)(new_idx - old);
}

static void dbb_update(struct fixture *f, struct dbb *b, unsigned qid, bool is_cq,
                       uint32_t val)
{
    unsigned slot = 2 * qid + (is_cq ? 1 : 0);
    uint16_t old = (uint16_t)b->db[slot];

    b->db[slot] = val;
    if (need_event((uint16_t)b->ei[slot], (uint16_t)val, old)) {
        b->rings++;
        wr(f,
           is_cq ? NVME_CQ_HEAD_DB(qid, NVME_SIM_DSTRD)
                 : NVME_SQ_TAIL_DB(qid, NVME_SIM_DSTRD),
           4, val);
    }
}

/* Reap every completion of `qid` (checking status and order), then publish
 * the head once, as an interrupt handler does. Returns the count. */
static unsigned dbb_reap(struct fixture *f, struct dbb *b, unsigned qid, uint16_t *cid)
{
    struct nvme_cpl cpl;
    unsigned got = 0;

    while (cq_take(f, qid, &cpl)) {
        assert_int_equal(status_of(cpl), 0);
        assert_int_equal(cpl.cid, (*cid)++);
        got++;
    }
    if (got) {
        dbb_update(f, b, qid, true, f->q[qid].cq_head);
    }
    return got;
}

static struct nvme_sqe dbbuf_config(uint64_t dbs, uint64_t eis)
{
    struct nvme_sqe s = sqe(NVME_ADM_DBBUF_CONFIG, 0);

    s.prp1 = dbs;
    s.prp2 = eis;
    return s;
}

/* The concurrent host of test_dbbuf: on each device read of the shadow SQ 4
 * tail, one more read command, shadow moved, no doorbell. */
static unsigned race_left;
static struct dbb *race_b;
static uint64_t race_buf; /* the reads' data page */
static bool race_polling; /* also consume every completion (shadow head only) */
static uint16_t *race_cid;
static unsigned *race_got;

static void race_consume(struct fixture *f)
{
    struct nvme_cpl cpl;

    while (cq_take(f, 4, &cpl)) {
        assert_int_equal(cpl.cid, (*race_cid)++);
        (*race_got)++;
    }
    race_b->db[9] = f->q[4].cq_head;
}

static void race_submit(void *ctx)
{
    struct fixture *f = ctx;

    if (race_polling) {
        race_consume(f);
    }
    if (race_left == 0) {
        return;
    }
    race_left--;
    sq_put(f, 4, rw(NVME_IO_READ, race_left, 1, race_buf, 0));
    race_b->db[8] = f->q[4].sq_tail;
}

/* One rung submission on queue 4 while race_submit adds race_left more;
 * reap until every one completed. */
static void race_run(struct fixture *f, struct dbb *b, uint64_t buf, uint16_t *cid,
                     unsigned *got)
{
    *cid = f->next_cid;
    *got = 0;
    race_b = b;
    race_buf = buf;
    race_cid = cid;
    race_got = got;
    f->fh.watch = bus_of(f, b->db) + 8 * 4; /* SQ 4's shadow tail */
    f->fh.watch_end = f->fh.watch + 4;
    f->fh.on_dma = race_submit;
    f->fh.on_dma_ctx = f;
    sq_put(f, 4, rw(NVME_IO_READ, 0, 1, buf, 0));
    dbb_update(f, b, 4, false, f->q[4].sq_tail);
    for (unsigned spins = 0; spins < 1000 && (race_left || *cid != f->next_cid); spins++) {
        *got += dbb_reap(f, b, 4, cid);
    }
    f->fh.on_dma = NULL;
}

/* Doorbell Buffer Config: bad pages refused; existing and new queues get
 * their values; with EventIdx a QD1 stream rings the SQ tail only, never the
 * CQ head; a submission that did not ring is found; a full CQ asks for its
 * head and resumes; bad shadow values are doorbell errors; a controller
 * reset forgets the buffer. */
static void test_dbbuf(void **state)
{
    struct fixture *f = *state;
    uint8_t *data = page_alloc(f, 1);
    struct dbb b = {page_alloc(f, 1), page_alloc(f, 1), 0};
    uint16_t cid;
    unsigned got = 0;

    bring_up(f);
    assert_int_equal(admin_st(f, dbbuf_config(bus_of(f, b.db) + 64, bus_of(f, b.ei))),
                     NVME_SC_INVALID_FIELD);
    assert_int_equal(admin_st(f, dbbuf_config(bus_of(f, b.db), UNMAPPED_BUS)),
                     NVME_SC_DATA_XFER_ERROR);
    /* Queue 1 carries a history: its tail and head are not 0. */
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, i, 1, bus_of(f, data), 0)), 0);
    }
    memset(b.db, 0x5a, PG);
    memset(b.ei, 0x5a, PG);
    admin_ok(f, dbbuf_config(bus_of(f, b.db), bus_of(f, b.ei)), NULL);
    assert_int_equal(b.db[2], 5); /* SQ1 tail */
    assert_int_equal(b.db[3], 5); /* CQ1 head */
    assert_int_equal(b.ei[2], 5);
    assert_int_equal(b.ei[3], 5);
    assert_int_equal(b.db[0], 0x5a5a5a5au); /* the admin queue keeps its registers */

    /* QD1: every submission rings (the device has no thread to poll), no
     * completion does. */
    uint64_t mmio0 = counter(f, "doorbell_writes");
    cid = f->next_cid;
    for (unsigned i = 0; i < 200; i++) {
        sq_put(f, 1, rw(NVME_IO_READ, i, 1, bus_of(f, data), 0));
        dbb_update(f, &b, 1, false, f->q[1].sq_tail);
        assert_int_equal(dbb_reap(f, &b, 1, &cid), 1);
    }
    assert_int_equal(b.rings, 200);
    assert_int_equal(counter(f, "doorbell_writes") - mmio0, 200);
    assert_int_equal(b.ei[3], f->q[1].cq_head); /* the CQ tail: heads do not pass it */

    /* A submission the host did not ring for (it saw an old EventIdx) is run
     * with the next one, and a stale register value is not taken. */
    sq_put(f, 1, rw(NVME_IO_READ, 0, 1, bus_of(f, data), 0));
    b.db[2] = f->q[1].sq_tail;
    sq_put(f, 1, rw(NVME_IO_READ, 1, 1, bus_of(f, data), 0));
    b.db[2] = f->q[1].sq_tail;
    wr(f, NVME_SQ_TAIL_DB(1, NVME_SIM_DSTRD), 4,
       (f->q[1].sq_tail + IOQ_DEPTH - 1) % IOQ_DEPTH);
    assert_int_equal(dbb_reap(f, &b, 1, &cid), 2);

    /* A queue created after the configuration starts at 0 in both pages. */
    b.db[6] = b.db[7] = b.ei[6] = b.ei[7] = 0x5a5a5a5au;
    make_ioq(f, 3, 4, 16);    /* CQ of 4 entries: 3 usable */
    make_ioq(f, 4, 256, 128); /* for the racing host below */
    assert_int_equal(b.db[6], 0);
    assert_int_equal(b.db[7], 0);
    assert_int_equal(b.ei[6], 0);
    assert_int_equal(b.ei[7], 0);

    /* A full CQ: the device stalls, sets EventIdx = head so the next head
     * update rings, and each head update lets more run. */
    cid = f->next_cid;
    for (unsigned i = 0; i < 12; i++) {
        sq_put(f, 3, rw(NVME_IO_READ, i, 1, bus_of(f, data), 0));
    }
    b.rings = 0;
    dbb_update(f, &b, 3, false, f->q[3].sq_tail);
    assert_int_equal(b.rings, 1);
    assert_int_equal(counter(f, "reads"), 5 + 200 + 2 + 3); /* 3 of the 12 ran */
    assert_int_equal(b.ei[7], 0);                           /* asks for the head */
    while (got < 12) {
        unsigned n = dbb_reap(f, &b, 3, &cid);

        assert_true(n > 0);
        got += n;
    }
    assert_int_equal(got, 12);
    assert_true(b.rings > 1); /* the stalls asked for head updates */

    /* A head moved in the shadow only is found when the CQ looks full. */
    cid = f->next_cid;
    b.rings = 0;
    for (unsigned round = 0; round < 6; round++) {
        sq_put(f, 3, rw(NVME_IO_READ, round, 1, bus_of(f, data), 0));
        sq_put(f, 3, rw(NVME_IO_READ, round, 1, bus_of(f, data), 0));
        dbb_update(f, &b, 3, false, f->q[3].sq_tail);
        assert_int_equal(dbb_reap(f, &b, 3, &cid), 2);
    }
    assert_int_equal(b.rings, 6); /* SQ tails only */

    /* Bad shadow values: invalid doorbell values, nothing run, no crash. */
    uint64_t errs = counter(f, "doorbell_errors"), reads = counter(f, "reads");
    b.db[2] = IOQ_DEPTH + 3;
    wr(f, NVME_SQ_TAIL_DB(1, NVME_SIM_DSTRD), 4, 0);
    assert_int_equal(counter(f, "doorbell_errors"), errs + 1);
    b.db[3] = (f->q[1].cq_head + 7) % IOQ_DEPTH; /* past the entries posted */
    wr(f, NVME_CQ_HEAD_DB(1, NVME_SIM_DSTRD), 4, f->q[1].cq_head);
    assert_int_equal(counter(f, "doorbell_errors"), errs + 2);
    assert_int_equal(counter(f, "reads"), reads);
    assert_int_equal(csts(f), NVME_CSTS_RDY);

    /* A host submitting while the device works, without ringing (it sees an
     * old EventIdx): each look at the shadow tail finds one more entry. The
     * device keeps going for a while, then parks the queue and asks for the
     * CQ head; the head update that consumes its completions resumes it. */
    race_left = 10;
    race_run(f, &b, bus_of(f, data), &cid, &got);
    assert_int_equal(got, 11);
    assert_true(counter(f, "sq_parked") == 0);
    race_left = 150;
    race_run(f, &b, bus_of(f, data), &cid, &got);
    assert_int_equal(got, 151);
    assert_true(counter(f, "sq_parked") >= 1);
    assert_int_equal(race_left, 0);
    /* A host that also consumes every completion as it goes (polling, the
     * shadow head only): nothing is outstanding when the device would park,
     * so no head update would ever resume it; it serves on instead. */
    uint64_t parked = counter(f, "sq_parked");
    race_left = 150;
    race_polling = true;
    race_run(f, &b, bus_of(f, data), &cid, &got);
    race_polling = false;
    assert_int_equal(got, 151);
    assert_int_equal(race_left, 0);
    assert_int_equal(counter(f, "sq_parked"), parked);

    /* A controller reset forgets the buffer: registers count again. */
    f->next_page = (size_t)((uint8_t *)b.ei - f->fh.mem) + PG;
    disable(f);
    bring_up(f);
    memset(b.db, 0xff, PG);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 0, 1, bus_of(f, data), 0)), 0);
    assert_true(counter(f, "dbbuf_configs") == 1);
}

/* A host running alongside the device, as a guest's vCPUs do: at every
 * device access to the shadow or EventIdx page it may submit (store the
 * shadow tail), load the EventIdx of an earlier store and decide to ring,
 * or consume completions (store the shadow head) — Linux's store, barrier,
 * load as two separate steps, so the device can act in between. Register
 * writes it owes are made once the device returns, with the value decided
 * (maybe older than the shadow by then). Every interleaving at these points
 * must complete every command: a lost wake-up leaves commands outstanding. */
#define CH_MAX_SQ 2

struct chost {
    struct fixture *f;
    struct dbb *b;
    uint64_t seed;
    uint16_t cqid;
    unsigned nsq;
    uint16_t sqid[CH_MAX_SQ];
    unsigned left, done, out[CH_MAX_SQ];
    bool sq_check[CH_MAX_SQ], cq_check; /* shadow stored, EventIdx not loaded */
    uint16_t sq_old[CH_MAX_SQ], cq_old;
    bool ring_sq[CH_MAX_SQ], ring_cq; /* a register write owed */
    uint32_t ring_sq_val[CH_MAX_SQ], ring_cq_val;
    unsigned hook_steps; /* at most, per device access */
    uint64_t buf;
    bool in_device;
};

static void ch_sq_decide(struct chost *h, unsigned i)
{
    unsigned slot = 2u * h->sqid[i];
    uint16_t now = (uint16_t)h->b->db[slot];

    if (h->sq_check[i] && need_event((uint16_t)h->b->ei[slot], now, h->sq_old[i])) {
        h->ring_sq[i] = true;
        h->ring_sq_val[i] = now;
    }
    h->sq_check[i] = false;
}

static void ch_cq_decide(struct chost *h)
{
    unsigned slot = 2u * h->cqid + 1u;
    uint16_t now = (uint16_t)h->b->db[slot];

    if (h->cq_check && need_event((uint16_t)h->b->ei[slot], now, h->cq_old)) {
        h->ring_cq = true;
        h->ring_cq_val = now;
    }
    h->cq_check = false;
}

static void ch_submit(struct chost *h, unsigned i)
{
    struct fixture *f = h->f;
    uint16_t q = h->sqid[i];
    unsigned k = 1 + (unsigned)(xorshift(&h->seed) % 3);

    ch_sq_decide(h, i); /* one store-load per update, as Linux */
    while (k-- && h->left && h->out[i] < f->q[q].sq_size - 1) {
        sq_put(f, q, rw(NVME_IO_READ, h->left, 1, h->buf, 0));
        h->left--;
        h->out[i]++;
    }
    h->sq_old[i] = (uint16_t)h->b->db[2u * q];
    h->b->db[2u * q] = f->q[q].sq_tail;
    h->sq_check[i] = true;
    if (xorshift(&h->seed) % 2) {
        ch_sq_decide(h, i); /* at once, as Linux mostly is */
    }
}

static void ch_consume(struct chost *h)
{
    struct nvme_cpl cpl;
    unsigned got = 0;

    while (cq_take(h->f, h->cqid, &cpl)) {
        unsigned i = 0;

        assert_int_equal(status_of(cpl), 0);
        while (i < h->nsq && h->sqid[i] != cpl.sqid) {
            i++;
        }
        assert_true(i < h->nsq);
        assert_true(h->out[i] > 0);
        h->out[i]--;
        h->done++;
        got++;
    }
    if (got) {
        ch_cq_decide(h);
        h->cq_old = (uint16_t)h->b->db[2u * h->cqid + 1u];
        h->b->db[2u * h->cqid + 1u] = h->f->q[h->cqid].cq_head;
        h->cq_check = true;
        if (xorshift(&h->seed) % 2) {
            ch_cq_decide(h);
        }
    }
}

static void ch_ring(struct chost *h)
{
    for (unsigned i = 0; i < h->nsq; i++) {
        if (h->ring_sq[i]) {
            h->ring_sq[i] = false;
            wr(h->f, NVME_SQ_TAIL_DB(h->sqid[i], NVME_SIM_DSTRD), 4, h->ring_sq_val[i]);
        }
    }
    if (h->ring_cq) {
        h->ring_cq = false;
        wr(h->f, NVME_CQ_HEAD_DB(h->cqid, NVME_SIM_DSTRD), 4, h->ring_cq_val);
    }
}

static void ch_step(struct chost *h)
{
    unsigned i = (unsigned)(xorshift(&h->seed) % h->nsq);

    switch (xorshift(&h->seed) % 6) {
    case 0:
    case 1:
        ch_submit(h, i);
        break;
    case 2:
        ch_sq_decide(h, i);
        break;
    case 3:
        ch_consume(h);
        break;
    case 4:
        ch_cq_decide(h);
        break;
    default:
        if (!h->in_device) {
            ch_ring(h);
        }
    }
}

static void ch_on_dma(void *ctx)
{
    struct chost *h = ctx;
    unsigned n = (unsigned)(xorshift(&h->seed) % (h->hook_steps + 1));

    if (h->in_device) {
        return; /* no re-entry from our own steps */
    }
    h->in_device = true;
    while (n--) {
        ch_step(h);
    }
    h->in_device = false;
}

/* `total` reads through SQs `sqid[0..nsq)` on CQ `cqid`; every one completes. */
static void ch_run(struct fixture *f, struct dbb *b, uint64_t seed, uint16_t cqid,
                   const uint16_t *sqid, unsigned nsq, unsigned total, unsigned hook_steps)
{
    struct chost h = {
        .f = f, .b = b, .seed = seed, .cqid = cqid, .nsq = nsq, .left = total};
    unsigned long steps = 0;

    h.hook_steps = hook_steps;
    h.buf = bus_of(f, page_alloc(f, 1));
    memcpy(h.sqid, sqid, nsq * sizeof(*sqid));
    f->fh.watch = bus_of(f, b->db);
    f->fh.watch_end = bus_of(f, b->ei) + PG; /* db and ei are neighbours */
    assert_true(f->fh.watch_end - f->fh.watch == 2 * PG);
    f->fh.on_dma = ch_on_dma;
    f->fh.on_dma_ctx = &h;
    while (h.done < total && steps++ < 400ul * total) {
        ch_step(&h);
    }
    f->fh.on_dma = NULL;
    if (h.done != total) {
        print_message("  CQ %u: shadow head %u, EventIdx %u, host head %u; SQ %u: shadow "
                      "tail %u, EventIdx %u, host tail %u, outstanding %u; loads owed sq "
                      "%d cq %d, rings owed sq %d cq %d\n",
                      cqid, b->db[2 * cqid + 1], b->ei[2 * cqid + 1], f->q[cqid].cq_head,
                      sqid[0], b->db[2 * sqid[0]], b->ei[2 * sqid[0]],
                      f->q[sqid[0]].sq_tail, h.out[0], h.sq_check[0], h.cq_check,
                      h.ring_sq[0], h.ring_cq);
        fail_msg("seed %llu: %u of %u completed, %u left to submit (lost wake-up)",
                 (unsigned long long)seed, h.done, total, h.left);
    }
    assert_int_equal(csts(f), NVME_CSTS_RDY);
}

static void ch_queue(struct fixture *f, uint16_t qid, uint16_t cqid, uint32_t size,
                     bool is_cq, bool ien)
{
    struct tq *q = &f->q[qid];

    if (is_cq) {
        q->cq = page_alloc(f, (size * 16 + PG - 1) / PG);
        q->cq_size = size;
        q->cq_head = 0;
        q->phase = true;
        admin_ok(f,
                 create_cq(qid, size, bus_of(f, q->cq),
                           NVME_QUEUE_PC | (ien ? NVME_CQ_IEN : 0), qid),
                 NULL);
    } else {
        q->sq = page_alloc(f, (size * 64 + PG - 1) / PG);
        q->sq_size = size;
        q->sq_tail = 0;
        admin_ok(f, create_sq(qid, size, bus_of(f, q->sq), cqid), NULL);
    }
}

/* The doorbell buffer against a concurrent host, over many interleavings:
 * Linux's shape (one SQ, CQ as deep), a CQ too small (stalls and arms), two
 * SQs sharing a polled CQ, and a host busy enough to be parked. */
static void test_dbbuf_concurrent(void **state)
{
    struct fixture *f = *state;
    struct dbb b;
    const uint16_t one[] = {1}, two[] = {2}, shared[] = {3, 4};
    size_t base;

    bring_up(f);
    b.db = page_alloc(f, 1);
    b.ei = page_alloc(f, 1);
    b.rings = 0;
    admin_ok(f, dbbuf_config(bus_of(f, b.db), bus_of(f, b.ei)), NULL);
    admin_ok(f, delete_q(NVME_ADM_DELETE_SQ, 2), NULL);
    admin_ok(f, delete_q(NVME_ADM_DELETE_CQ, 2), NULL);
    ch_queue(f, 2, 2, 8, true, true);    /* CQ 2: 8 entries */
    ch_queue(f, 2, 2, 64, false, false); /* SQ 2: 64 */
    ch_queue(f, 3, 3, 8, true, false);   /* CQ 3: 8 entries, polled */
    ch_queue(f, 3, 3, 32, false, false);
    ch_queue(f, 4, 3, 32, false, false); /* SQ 4 on CQ 3 too */
    base = f->next_page;
    const char *env = getenv("NVME_CH_SEEDS");
    const uint64_t seeds = env ? strtoull(env, NULL, 0) : 200;
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        f->next_page = base;
        ch_run(f, &b, seed, 1, one, 1, 2000, 1 + seed % 4);
        ch_run(f, &b, seed * 7919, 2, two, 1, 2000, 1 + seed % 4);
        ch_run(f, &b, seed * 104729, 3, shared, 2, 2000, 1 + seed % 6);
    }
    assert_true(counter(f, "doorbell_errors") == 0);
    /* Busy hosts: many steps at each device access keep the shadow tail
     * moving for more than 64 looks. */
    for (uint64_t seed = 1; seed <= 20; seed++) {
        f->next_page = base;
        ch_run(f, &b, seed, 1, one, 1, 3000, 12);
        ch_run(f, &b, seed * 31, 3, shared, 2, 3000, 12);
        ch_run(f, &b, seed * 131, 1, one, 1, 3000, 40);
    }
    assert_true(counter(f, "sq_parked") > 0);
    assert_true(counter(f, "doorbell_errors") == 0);
}

/* ---- Whole-device fuzz ----------------------------------------------------------------
 *
 * A hostile driver: random sequences of register writes (any offset, width and
 * value, CC toggles included), submission entries (valid opcodes with random
 * fields, or garbage), PRPs and PRP lists pointing inside the arena, at queue
 * memory, across the end of the mapped window or nowhere, doorbells, queue
 * creation and deletion in any order, FLR, hot reset, config-space and MSI-X
 * table writes. After every step: CSTS sane, CAP/VS unchanged, interrupt
 * vectors in range; every 512 steps and at the end: after an FLR and a clean
 * re-initialisation the controller answers Identify. ASan/UBSan builds turn
 * any memory error into a failure.
 *
 * NVME_FUZZ_SEED and NVME_FUZZ_STEPS change the seed and the number of steps
 * (default: a fixed seed, 20000 steps).
 */

#define FZ_SQ_PAGE(q)  ((q)*16u)      /* 16 pages: up to 1024 SQEs */
#define FZ_CQ_PAGE(q)  (80u + (q)*4u) /* 4 pages: up to 1024 CQEs */
#define FZ_DATA_PAGE   100u
#define FZ_DATA_PAGES  28u
#define FZ_ARENA_PAGES (FZ_DATA_PAGE + FZ_DATA_PAGES)

struct fz_q {
    uint32_t sq_size, cq_size, sq_tail, cq_head;
    bool sq_live, cq_live, phase;
};

struct fz {
    struct fixture *f;
    uint64_t seed;
    struct fz_q q[NQ + 1];
    uint16_t cid;
    uint64_t cap;
    struct nvme_cpl last_admin; /* the last admin completion reaped */
};

static uint64_t fz_rand(struct fz *z)
{
    return xorshift(&z->seed);
}

static uint64_t fz_below(struct fz *z, uint64_t n)
{
    return n ? fz_rand(z) % n : 0;
}

static uint64_t fz_page_bus(unsigned page)
{
    return MEM_BUS + (uint64_t)page * PG;
}

/* An address a hostile driver might put in a PRP, a PRP list or a queue base. */
static uint64_t fz_addr(struct fz *z)
{
    unsigned k = (unsigned)fz_below(z, 100);

    if (k < 45) { /* a data page, usually page aligned */
        uint64_t a = fz_page_bus(FZ_DATA_PAGE + (unsigned)fz_below(z, FZ_DATA_PAGES));

        return a + (fz_below(z, 4) ? 0 : (fz_below(z, PG) & ~(fz_below(z, 4) ? 3ull : 0)));
    }
    if (k < 65) { /* queue memory */
        return fz_page_bus((unsigned)fz_below(z, FZ_DATA_PAGE)) + (fz_below(z, 8) ? 0 : 8);
    }
    if (k < 75) { /* the last pages of the window: runs that cross its end */
        return MEM_BUS + MEM_SIZE - (fz_below(z, 4) + 1) * PG + (fz_below(z, 2) ? 0 : 2048);
    }
    if (k < 85) {
        static const uint64_t odd[] = {0,
                                       8,
                                       UNMAPPED_BUS,
                                       MEM_BUS - PG,
                                       MEM_BUS + MEM_SIZE,
                                       ~0ull & ~0xfffull,
                                       ~0ull - 7,
                                       1ull << 63};
        return odd[fz_below(z, sizeof(odd) / sizeof(odd[0]))];
    }
    return fz_rand(z) & ~(fz_below(z, 2) ? 0xfffull : 3ull);
}

/* A dword with interesting values more often than uniform ones. */
static uint32_t fz_dword(struct fz *z)
{
    static const uint32_t v[] = {0,          1,           2,          3,          7,
                                 0xff,       0x100,       0xfff,      0xffff,     0x10000,
                                 0x7fffffff, 0x80000000u, 0xfffffffe, 0xffffffffu};

    switch (fz_below(z, 4)) {
    case 0:
        return v[fz_below(z, sizeof(v) / sizeof(v[0]))];
    case 1:
        return (uint32_t)fz_below(z, 64);
    default:
        return (uint32_t)fz_rand(z);
    }
}

/* Fill a data page with PRP-list-like entries. */
static void fz_prp_page(struct fz *z)
{
    unsigned page = FZ_DATA_PAGE + (unsigned)fz_below(z, FZ_DATA_PAGES);
    uint64_t *e = (uint64_t *)(z->f->fh.mem + (size_t)page * PG);
    unsigned from = (unsigned)fz_below(z, PG / 8),
             n = 1 + (unsigned)fz_below(z, PG / 8 - from);

    for (unsigned i = from; i < from + n; i++) {
        switch (fz_below(z, 8)) {
        case 0: /* a list that chains to itself */
            e[i] = fz_page_bus(page);
            break;
        case 1:
            e[i] = fz_rand(z);
            break;
        default:
            e[i] = fz_addr(z);
            break;
        }
    }
}

static void fz_wr(struct fz *z, uint64_t off, unsigned width, uint64_t v)
{
    int rc = z->f->dev.ops->mmio_write(z->f->dev.dev, 0, off, width, v);
    bool ok = (width == 1 || width == 2 || width == 4 || width == 8) &&
              off < NVME_SIM_BAR0_SIZE && width <= NVME_SIM_BAR0_SIZE - off;

    assert_int_equal(rc, ok ? 0 : -EINVAL);
}

static uint64_t fz_rd(struct fz *z, uint64_t off, unsigned width)
{
    uint64_t v = 0;
    int rc = z->f->dev.ops->mmio_read(z->f->dev.dev, 0, off, width, &v);
    bool ok = (width == 1 || width == 2 || width == 4 || width == 8) &&
              off < NVME_SIM_BAR0_SIZE && width <= NVME_SIM_BAR0_SIZE - off;

    assert_int_equal(rc, ok ? 0 : -EINVAL);
    if (ok && width < 8) {
        assert_true(v < (1ull << (8 * width)));
    }
    return v;
}

/* Reap what the controller posted to CQ `q` (at most one queue's worth). */
static void fz_reap(struct fz *z, unsigned q)
{
    struct fz_q *m = &z->q[q];
    const uint8_t *cq = z->f->fh.mem + (size_t)FZ_CQ_PAGE(q) * PG;

    if (!m->cq_live) {
        return;
    }
    for (uint32_t n = 0; n < m->cq_size; n++) {
        struct nvme_cpl cpl;
        bool phase = false;

        assert_int_equal(nvme_cpl_decode(cq + (size_t)m->cq_head * 16, 16, &cpl, &phase),
                         0);
        if (phase != m->phase) {
            break;
        }
        if (q == 0) {
            z->last_admin = cpl;
        }
        m->cq_head = (m->cq_head + 1) % m->cq_size;
        if (m->cq_head == 0) {
            m->phase = !m->phase;
        }
    }
    fz_wr(z, NVME_CQ_HEAD_DB(q, NVME_SIM_DSTRD), 4, m->cq_head);
}

static void fz_reap_all(struct fz *z)
{
    for (unsigned q = 0; q <= NQ; q++) {
        fz_reap(z, q);
    }
}

/* Put an entry at the model's tail of SQ q and ring. */
static void fz_submit(struct fz *z, unsigned q, struct nvme_sqe s)
{
    struct fz_q *m = &z->q[q];
    uint8_t *sq = z->f->fh.mem + (size_t)FZ_SQ_PAGE(q) * PG;

    if (!m->sq_live) {
        return;
    }
    memcpy(sq + (size_t)m->sq_tail * 64, &s, sizeof(s));
    m->sq_tail = (m->sq_tail + 1) % m->sq_size;
    fz_wr(z, NVME_SQ_TAIL_DB(q, NVME_SIM_DSTRD), 4, m->sq_tail);
    fz_reap_all(z);
}

static struct nvme_sqe fz_sqe(struct fz *z, uint8_t opc)
{
    struct nvme_sqe s = sqe(opc, fz_below(z, 4) ? 1 : fz_dword(z));

    s.cdw0 |= (uint32_t)z->cid++ << 16;
    if (fz_below(z, 16) == 0) {
        s.cdw0 |= (uint32_t)(fz_rand(z) & 0xc300u); /* FUSE, PSDT */
    }
    s.prp1 = fz_addr(z);
    s.prp2 = fz_addr(z);
    return s;
}

static struct nvme_sqe fz_admin_sqe(struct fz *z)
{
    static const uint8_t ops[] = {0x00, 0x01, 0x02, 0x04, 0x05,
                                  0x06, 0x08, 0x09, 0x0a, 0x0c};
    uint8_t opc = fz_below(z, 10) ? ops[fz_below(z, sizeof(ops))] : (uint8_t)fz_rand(z);
    struct nvme_sqe s = fz_sqe(z, opc);

    s.cdw10 = fz_dword(z);
    s.cdw11 = fz_dword(z);
    s.cdw12 = fz_dword(z);
    s.cdw13 = fz_below(z, 2) ? 0 : fz_dword(z);
    switch (opc) {
    case NVME_ADM_CREATE_CQ:
    case NVME_ADM_CREATE_SQ:
        s.cdw10 = (uint32_t)fz_below(z, NQ + 2) | (uint32_t)fz_below(z, 1100) << 16;
        s.cdw11 = NVME_QUEUE_PC | (fz_below(z, 2) ? NVME_CQ_IEN : 0) |
                  (uint32_t)fz_below(z, NQ + 3) << 16;
        break;
    case NVME_ADM_DELETE_SQ:
    case NVME_ADM_DELETE_CQ:
        s.cdw10 = (uint32_t)fz_below(z, NQ + 2);
        break;
    case NVME_ADM_GET_LOG_PAGE:
        s.cdw10 = (uint32_t)fz_below(z, 5) | (uint32_t)(fz_rand(z) & 0x8000u) |
                  (uint32_t)(fz_below(z, 2) ? fz_below(z, 1100) : fz_rand(z)) << 16;
        s.cdw11 = fz_below(z, 4) ? 0 : fz_dword(z);
        s.cdw12 = fz_below(z, 2) ? (uint32_t)fz_below(z, 1100) * 4 : fz_dword(z);
        break;
    case NVME_ADM_IDENTIFY:
        s.cdw10 = (uint32_t)fz_below(z, 9);
        s.cdw11 = fz_below(z, 4) ? 0 : fz_dword(z);
        break;
    case NVME_ADM_SET_FEATURES:
    case NVME_ADM_GET_FEATURES:
        s.cdw10 = (uint32_t)fz_below(z, 14) | (uint32_t)fz_below(z, 5) << 8 |
                  (fz_below(z, 8) ? 0 : NVME_FEAT_SV);
        break;
    default:
        break;
    }
    return s;
}

static struct nvme_sqe fz_io_sqe(struct fz *z)
{
    static const uint8_t ops[] = {0x00, 0x01, 0x01, 0x02, 0x02, 0x05, 0x08, 0x09};
    uint8_t opc = fz_below(z, 10) ? ops[fz_below(z, sizeof(ops))] : (uint8_t)fz_rand(z);
    struct nvme_sqe s = fz_sqe(z, opc);
    const uint64_t nsze = (16u << 20) / 512;
    uint64_t slba = fz_below(z, 8) ? fz_below(z, nsze) : nsze - fz_below(z, 300);

    if (fz_below(z, 2)) { /* mostly well formed: data in the arena, sane counts */
        s.prp1 = fz_page_bus(FZ_DATA_PAGE + (unsigned)fz_below(z, FZ_DATA_PAGES)) +
                 (fz_below(z, 4) ? 0 : fz_below(z, PG) & ~3ull);
        s.prp2 = fz_below(z, 2)
                     ? fz_page_bus(FZ_DATA_PAGE + (unsigned)fz_below(z, FZ_DATA_PAGES))
                     : fz_addr(z) & ~7ull;
        s.cdw0 &= ~0xff00u;
    }
    s.cdw10 = fz_below(z, 8) ? (uint32_t)slba : fz_dword(z);
    s.cdw11 = fz_below(z, 8) ? (uint32_t)(slba >> 32) : fz_dword(z);
    s.cdw12 = fz_below(z, 4) ? (uint32_t)fz_below(z, fz_below(z, 2) ? 8 : 300) |
                                   (fz_below(z, 4) ? 0 : NVME_RW_FUA)
                             : fz_dword(z);
    if (opc == NVME_IO_DSM) {
        s.cdw10 = (uint32_t)fz_below(z, 256);
        s.cdw11 = fz_below(z, 2) ? NVME_DSM_AD : fz_dword(z);
    }
    return s;
}

/* Bring the controller up from power-on state (FLR) as a driver does: MSI-X,
 * admin queues, CC. The values are a sane driver's: it must become ready. */
static void fz_init(struct fz *z)
{
    struct fixture *f = z->f;
    unsigned granted = 0;

    assert_int_equal(f->dev.ops->reset(f->dev.dev, DEXT_RESET_FUNCTION), 0);
    memset(f->fh.mem, 0, (size_t)FZ_DATA_PAGE * PG); /* queue memory */
    memset(z->q, 0, sizeof(z->q));
    assert_int_equal(f->dev.ops->irq_configure(f->dev.dev, NQ + 1, &granted), 0);
    z->q[0] = (struct fz_q){.sq_size = AQ_DEPTH,
                            .cq_size = AQ_DEPTH,
                            .sq_live = true,
                            .cq_live = true,
                            .phase = true};
    fz_wr(z, NVME_REG_AQA, 4, (AQ_DEPTH - 1) | ((AQ_DEPTH - 1) << 16));
    fz_wr(z, NVME_REG_ASQ, 8, fz_page_bus(FZ_SQ_PAGE(0)));
    fz_wr(z, NVME_REG_ACQ, 8, fz_page_bus(FZ_CQ_PAGE(0)));
    fz_wr(z, NVME_REG_CC, 4, CC_GOOD);
    fz_wr(z, NVME_REG_CC, 4, CC_GOOD | NVME_CC_EN);
    assert_int_equal(fz_rd(z, NVME_REG_CSTS, 4), NVME_CSTS_RDY);
}

/* Whether admin command s completed successfully (false if it did not
 * complete: the controller stopped). */
static bool fz_created(struct fz *z, struct nvme_sqe s)
{
    return z->last_admin.cid == (uint16_t)(s.cdw0 >> 16) && z->last_admin.status == 0 &&
           (fz_rd(z, NVME_REG_CSTS, 4) & NVME_CSTS_RDY);
}

/* Create I/O queue pair q (CQ q, SQ q on CQ cqid) with random sizes. */
static void fz_create_pair(struct fz *z, unsigned q, unsigned cqid)
{
    uint32_t cqs = 2 + (uint32_t)fz_below(z, 63), sqs = 2 + (uint32_t)fz_below(z, 63);
    struct nvme_sqe s;

    if (fz_below(z, 8) == 0) {
        cqs = 1024;
        sqs = 1024;
    }
    if (!z->q[q].cq_live) {
        s = create_cq((uint16_t)q, cqs, fz_page_bus(FZ_CQ_PAGE(q)),
                      NVME_QUEUE_PC | (fz_below(z, 4) ? NVME_CQ_IEN : 0), (uint16_t)q);
        s.cdw0 |= (uint32_t)z->cid++ << 16;
        memset(z->f->fh.mem + (size_t)FZ_CQ_PAGE(q) * PG, 0, 4 * PG);
        z->q[q].cq_live = true; /* posted to while the command runs */
        z->q[q].cq_size = cqs;
        z->q[q].cq_head = 0;
        z->q[q].phase = true;
        fz_submit(z, 0, s);
        z->q[q].cq_live = fz_created(z, s);
    }
    if (!z->q[q].sq_live && z->q[cqid].cq_live) {
        s = create_sq((uint16_t)q, sqs, fz_page_bus(FZ_SQ_PAGE(q)), (uint16_t)cqid);
        s.cdw0 |= (uint32_t)z->cid++ << 16;
        z->q[q].sq_live = true;
        z->q[q].sq_size = sqs;
        z->q[q].sq_tail = 0;
        fz_submit(z, 0, s);
        z->q[q].sq_live = fz_created(z, s);
    }
}

static void fz_check(struct fz *z)
{
    uint32_t cc = (uint32_t)fz_rd(z, NVME_REG_CC, 4);
    uint32_t st = (uint32_t)fz_rd(z, NVME_REG_CSTS, 4);

    assert_int_equal(st & ~0xfu, 0); /* RDY, CFS, SHST only */
    assert_int_not_equal(NVME_GET(st, CSTS_SHST), 3);
    if (!(cc & NVME_CC_EN)) {
        assert_int_equal(st & NVME_CSTS_RDY, 0);
    }
    assert_true(fz_rd(z, NVME_REG_CAP, 8) == z->cap);
    assert_int_equal(fz_rd(z, NVME_REG_VS, 4), NVME_VS(1, 4, 0));
    assert_int_equal(cc & ~0x00fffff1u, 0);
    for (unsigned i = 0; i < z->f->fh.nirq && i < MAX_IRQ; i++) {
        assert_true(z->f->fh.irq[i] <= NQ);
    }
    z->f->fh.nirq = 0;
}

/* After an FLR and a clean bring-up the controller must answer Identify and
 * move data on a new I/O queue pair. */
static void fz_verify(struct fz *z)
{
    uint8_t *id = z->f->fh.mem + (size_t)FZ_DATA_PAGE * PG;
    uint8_t *cq0 = z->f->fh.mem + (size_t)FZ_CQ_PAGE(0) * PG;
    struct nvme_sqe s = identify(NVME_CNS_CTRL, 0, id, z->f);
    struct nvme_cpl cpl;
    bool phase = false;

    fz_init(z);
    memset(id, 0, PG);
    s.cdw0 |= 0x4242u << 16;
    fz_submit(z, 0, s);
    assert_int_equal(nvme_cpl_decode(cq0, 16, &cpl, &phase), 0);
    assert_true(phase);
    assert_int_equal(cpl.cid, 0x4242);
    assert_int_equal(cpl.status, 0);
    assert_int_equal(((const struct nvme_id_ctrl *)id)->vid, NVME_SIM_VENDOR_ID);
    assert_int_equal(fz_rd(z, NVME_REG_CSTS, 4), NVME_CSTS_RDY);
}

static void fz_step(struct fz *z)
{
    struct fixture *f = z->f;
    unsigned k = (unsigned)fz_below(z, 1000);
    unsigned q = (unsigned)fz_below(z, NQ + 1);

    if ((fz_rd(z, NVME_REG_CSTS, 4) != NVME_CSTS_RDY && fz_below(z, 4) == 0) || k < 10) {
        fz_init(z); /* the driver notices the controller stopped and resets it */
        for (unsigned i = 1; i <= NQ; i++) {
            fz_create_pair(z, i, fz_below(z, 2) ? i : 1);
        }
        return;
    }
    if (k < 300) { /* a plausible command */
        q = fz_below(z, 5) < 2 ? 0 : 1 + (unsigned)fz_below(z, NQ);
        fz_submit(z, q, q == 0 ? fz_admin_sqe(z) : fz_io_sqe(z));
    } else if (k < 350) { /* garbage in the next SQ slot */
        struct nvme_sqe s;

        randomize(&z->seed, (uint8_t *)&s, sizeof(s));
        fz_submit(z, q, s);
    } else if (k < 430) {
        fz_prp_page(z);
    } else if (k < 500) { /* doorbells: known queues near their size, or anywhere */
        uint64_t off = fz_below(z, 2)
                           ? NVME_SQ_TAIL_DB(q, NVME_SIM_DSTRD) + 4 * fz_below(z, 2)
                           : NVME_REG_DBS + fz_below(z, 0x1000);
        fz_wr(z, off, fz_below(z, 4) ? 4 : 1u << fz_below(z, 4),
              fz_below(z, 2) ? fz_below(z, 70) : fz_rand(z));
        fz_reap_all(z);
    } else if (k < 560) { /* registers */
        static const uint32_t regs[] = {NVME_REG_INTMS, NVME_REG_INTMC,   NVME_REG_CC,
                                        NVME_REG_AQA,   NVME_REG_ASQ,     NVME_REG_ASQ + 4,
                                        NVME_REG_ACQ,   NVME_REG_ACQ + 4, NVME_REG_CSTS};
        uint64_t off = fz_below(z, 2) ? regs[fz_below(z, sizeof(regs) / sizeof(regs[0]))]
                                      : fz_below(z, NVME_SIM_BAR0_SIZE + 16);
        uint64_t v = fz_rand(z);

        if (off == NVME_REG_CC && fz_below(z, 2)) {
            v = (fz_rd(z, NVME_REG_CC, 4) ^ (1u << fz_below(z, 16))) & 0xffffffffu;
        }
        fz_wr(z, off, fz_below(z, 3) ? 4 : 1u << fz_below(z, 4), v);
        fz_reap_all(z);
    } else if (k < 600) { /* reads anywhere, any width (some invalid) */
        unsigned w = fz_below(z, 8) ? 1u << fz_below(z, 4) : (unsigned)fz_below(z, 17);

        fz_rd(z, fz_below(z, 4) ? fz_below(z, NVME_SIM_BAR0_SIZE + 16) : fz_rand(z), w);
        fz_wr(z, fz_rand(z), 4, 0); /* out of range: refused */
    } else if (k < 680) {           /* create a pair, on its own CQ or a shared one */
        unsigned qq = 1 + (unsigned)fz_below(z, NQ);

        fz_create_pair(z, qq, fz_below(z, 2) ? qq : 1 + (unsigned)fz_below(z, NQ));
    } else if (k < 720) { /* delete in any order */
        struct nvme_sqe s =
            delete_q(fz_below(z, 2) ? NVME_ADM_DELETE_SQ : NVME_ADM_DELETE_CQ,
                     (uint16_t)fz_below(z, NQ + 2));

        s.cdw0 |= (uint32_t)z->cid++ << 16;
        if (s.cdw10 <= NQ && s.cdw10 > 0 && (s.cdw0 & 0xff) == NVME_ADM_DELETE_SQ) {
            z->q[s.cdw10].sq_live = false; /* a driver stops using it */
        }
        fz_submit(z, 0, s);
    } else if (k < 775) {
        assert_int_equal(f->dev.ops->config_write(f->dev.dev,
                                                  NVME_SIM_CAP_PCIE + SIMPCI_PCIE_DEVCTL, 2,
                                                  SIMPCI_PCIE_DEVCTL_FLR),
                         0);
    } else if (k < 785) {
        assert_int_equal(f->dev.ops->reset(f->dev.dev, fz_below(z, 2)
                                                           ? DEXT_RESET_HOT
                                                           : DEXT_RESET_FUNCTION),
                         0);
    } else if (k < 815) { /* config space: any offset, any width */
        unsigned w = fz_below(z, 8) ? 1u << fz_below(z, 3) : (unsigned)fz_below(z, 9);
        uint32_t off = fz_below(z, 2) ? 0x40 + (uint32_t)fz_below(z, 0x40)
                                      : (uint32_t)fz_below(z, SIMPCI_CFG_SIZE + 8);
        uint32_t v = (uint32_t)fz_rand(z);
        int rc;

        if (off >= NVME_SIM_CAP_PCIE + SIMPCI_PCIE_DEVCTL &&
            off < NVME_SIM_CAP_PCIE + SIMPCI_PCIE_DEVCTL + 2 && fz_below(z, 4)) {
            v &= ~(uint32_t)SIMPCI_PCIE_DEVCTL_FLR; /* FLRs less often */
        }
        rc = f->dev.ops->config_write(f->dev.dev, off, w, v);
        assert_true(rc == 0 || rc == -EINVAL);
    } else if (k < 870) { /* MSI-X table and PBA: any offset, any width */
        uint64_t off = NVME_SIM_MSIX_TABLE_OFF - 8 + fz_below(z, (NQ + 2) * 16 + 16);

        if (fz_below(z, 3) == 0) {
            off = NVME_SIM_MSIX_PBA_OFF - 4 + fz_below(z, 24);
        }
        fz_wr(z, off, 1u << fz_below(z, 4), fz_below(z, 2) ? fz_rand(z) : 0);
    } else { /* interrupts fired or not, reap and move CQ heads */
        if (fz_below(z, 4) == 0 && z->q[q].cq_live) {
            z->q[q].cq_head = (uint32_t)fz_below(z, z->q[q].cq_size + 1);
        }
        fz_reap_all(z);
    }
}

/* Run `steps` fuzz steps (NVME_FUZZ_STEPS overrides) on a 16 MiB namespace. */
static void fz_run(struct fixture *f, unsigned long steps)
{
    struct fz z = {.f = f, .seed = 0x9e3779b97f4a7c15ull};
    const char *env_seed = getenv("NVME_FUZZ_SEED"), *env_steps = getenv("NVME_FUZZ_STEPS");

    steps = env_steps ? strtoul(env_steps, NULL, 0) : steps;
    if (env_seed) {
        z.seed = ((strtoull(env_seed, NULL, 0) + 1) * 0x9e3779b97f4a7c15ull) | 1;
        print_message("nvme fuzz: seed %s, %lu steps\n", env_seed, steps);
    }
    fz_init(&z);
    z.cap = fz_rd(&z, NVME_REG_CAP, 8);
    for (unsigned long i = 0; i < steps; i++) {
        fz_step(&z);
        fz_check(&z);
        if (i % 512 == 511) {
            fz_verify(&z);
        }
    }
    fz_verify(&z);
    if (env_seed) {
        static const char *const names[] = {
            "admin_cmds", "io_cmds",          "reads",         "writes",
            "compares",   "dsm_deallocates",  "dma_errors",    "invalid_cmds",
            "cfs_events", "doorbell_errors",  "aer_completed", "resets",
            "shutdowns",  "interrupts_raised"};

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            print_message("  %s %llu\n", names[i],
                          (unsigned long long)counter(z.f, names[i]));
        }
    }
}

static void test_device_fuzz(void **state)
{
    fz_run(*state, 20000);
}

/* ---- File backing
 * -------------------------------------------------------------------------- */

static void make_path(struct fixture *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/vdx-nvme-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/disk.img", f->dir);
}

static void write_pattern(struct fixture *f, uint64_t slba, unsigned seed, bool flush)
{
    uint8_t *buf = page_alloc(f, 2);

    fill(buf, 2 * PG, seed);
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_WRITE, slba, 16, bus_of(f, buf), bus_of(f, buf + PG))), 0);
    if (flush) {
        assert_int_equal(io_st(f, 1, sqe(NVME_IO_FLUSH, 1)), 0);
    }
}

static void check_pattern(struct fixture *f, uint64_t slba, unsigned seed)
{
    uint8_t *buf = page_alloc(f, 2);
    uint8_t want[2 * PG];

    fill(want, sizeof(want), seed);
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_READ, slba, 16, bus_of(f, buf), bus_of(f, buf + PG))), 0);
    assert_memory_equal(buf, want, sizeof(want));
}

/*
 * PRP pages that are bus-contiguous are moved by one DMA. A run that crosses
 * from mapped into unmapped memory therefore fails as a whole: Data Transfer
 * Error, counted once per command, the mapped part of host memory not
 * written by a Read, and nothing stored by a Write, whether its data is one
 * run (RAM: DMA straight into the store) or several (through the bounce
 * buffer). Run on a RAM and on a file store.
 */
static void check_run_faults(struct fixture *f)
{
    uint8_t *last = f->fh.mem + MEM_SIZE - PG; /* the next bus page is unmapped */
    const uint64_t end = MEM_BUS + MEM_SIZE;
    uint8_t *other = page_alloc(f, 1), *back = page_alloc(f, 1);
    uint8_t sentinel[PG];
    uint64_t errors, writes;

    bring_up(f);
    write_pattern(f, 200, 5, false); /* LBAs 200..215 */
    errors = counter(f, "dma_errors");
    writes = counter(f, "writes");
    memset(last, 0xa5, PG);
    memset(sentinel, 0xa5, PG);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 200, 16, bus_of(f, last), end)),
                     NVME_SC_DATA_XFER_ERROR);
    assert_memory_equal(last, sentinel, PG);
    /* Writes: one run crossing the end, one starting mid-page, two runs. */
    assert_int_equal(io_st(f, 1, rw(NVME_IO_WRITE, 200, 16, bus_of(f, last), end)),
                     NVME_SC_DATA_XFER_ERROR);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_WRITE, 200, 8, bus_of(f, last + 2048), end)),
                     NVME_SC_DATA_XFER_ERROR);
    fill(other, PG, 9);
    assert_int_equal(
        io_st(f, 1, rw(NVME_IO_WRITE, 200, 16, bus_of(f, other), UNMAPPED_BUS)),
        NVME_SC_DATA_XFER_ERROR);
    assert_true(counter(f, "dma_errors") == errors + 4);
    assert_true(counter(f, "writes") == writes);
    check_pattern(f, 200, 5);
    /* A run that ends exactly at the boundary moves. */
    fill(last, PG, 11);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_WRITE, 300, 8, bus_of(f, last), 0)), 0);
    assert_int_equal(io_st(f, 1, rw(NVME_IO_READ, 300, 8, bus_of(f, back), 0)), 0);
    assert_memory_equal(back, last, PG);
    assert_true(counter(f, "dma_errors") == errors + 4);
}

/* The same fuzz on a file store: bounce buffers, pread/pwrite, hole punching,
 * fdatasync. */
static void test_device_fuzz_file(void **state)
{
    struct fixture *f = *state;
    char spec[256];

    make_path(f);
    snprintf(spec, sizeof(spec), "sim:nvme,size=16M,queues=4,file=%s", f->path);
    create_dev(f, spec);
    fz_run(f, 4000);
}

static void test_run_fault_ram(void **state)
{
    check_run_faults(*state);
}

static void test_run_fault_file(void **state)
{
    struct fixture *f = *state;
    char spec[256];

    make_path(f);
    snprintf(spec, sizeof(spec), "sim:nvme,size=2M,file=%s", f->path);
    create_dev(f, spec);
    check_run_faults(f);
}

static void test_file_backing(void **state)
{
    struct fixture *f = *state;
    char spec[256];
    struct nvme_id_ctrl *ic;
    uint32_t dw0 = 9;
    struct stat st;
    struct vdx_device second;
    char err[256] = "";

    make_path(f);
    snprintf(spec, sizeof(spec), "sim:nvme,size=2M,file=%s", f->path);
    create_dev(f, spec);
    /* Sparse: 2 MiB long, nothing allocated yet. */
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, 2 * 1024 * 1024);
    assert_true(st.st_blocks * 512 < 2 * 1024 * 1024);
    /* A second device on the same file is refused. */
    assert_int_equal(vdx_device_create(spec, &f->host, &second, err, sizeof(err)), -EBUSY);
    assert_true(strstr(err, "in use") != NULL);

    bring_up(f);
    ic = page_alloc(f, 1);
    admin_ok(f, identify(NVME_CNS_CTRL, 0, ic, f), NULL);
    assert_int_equal(ic->vwc, 0x07);
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_VOLATILE_WC, 0), &dw0);
    assert_int_equal(dw0, 1);
    write_pattern(f, 0, 1, true);
    write_pattern(f, 4000, 2, false);
    /* Write cache off: writes go through. */
    admin_ok(f, features(NVME_ADM_SET_FEATURES, NVME_FEAT_VOLATILE_WC, 0), NULL);
    admin_ok(f, features(NVME_ADM_GET_FEATURES, NVME_FEAT_VOLATILE_WC, 0), &dw0);
    assert_int_equal(dw0, 0);
    write_pattern(f, 100, 3, false);
    /* Deallocate punches a hole; it reads back as zeros. */
    struct nvme_sqe wz = rw(NVME_IO_WRITE_ZEROES, 2000, 64, 0, 0);
    assert_int_equal(io_st(f, 1, wz), 0);

    f->dev.ops->destroy(f->dev.dev);
    f->dev.ops = NULL;
    /* Recreate on the same file, size taken from the file. */
    snprintf(spec, sizeof(spec), "sim:nvme,file=%s", f->path);
    create_dev(f, spec);
    f->next_page = 0;
    bring_up(f);
    check_pattern(f, 0, 1);
    check_pattern(f, 4000, 2);
    check_pattern(f, 100, 3);
}

/* Regression guard for "acknowledged after a Flush survives the dext being
 * killed": a child process writes and flushes, then dies by SIGKILL without
 * destroying anything; the parent opens the file and reads the data back. */
static void test_file_survives_kill(void **state)
{
    struct fixture *f = *state;
    char spec[256];
    pid_t pid;
    int status = 0;

    make_path(f);
    snprintf(spec, sizeof(spec), "sim:nvme,size=1M,file=%s", f->path);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];

        if (vdx_device_create(spec, &f->host, &f->dev, err, sizeof(err)) != 0) {
            _exit(2);
        }
        bring_up(f);
        write_pattern(f, 10, 42, true);
        write_pattern(f, 300, 43, false); /* acknowledged, not flushed: also kept */
        raise(SIGKILL);
        _exit(3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    create_dev(f, spec);
    bring_up(f);
    check_pattern(f, 10, 42);
    check_pattern(f, 300, 43);
}

/* The last client leaving resets the controller (as a host OS does). */
static void test_close(void **state)
{
    struct fixture *f = *state;

    bring_up(f);
    f->dev.ops->close(f->dev.dev);
    assert_int_equal(rd(f, NVME_REG_CC, 4), 0);
    assert_int_equal(csts(f), 0);
    f->next_page = 0;
    bring_up(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_identify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_prp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_mdts_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cq_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_mid_io, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cq_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dbbuf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dbbuf_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doorbell_fuzz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_fuzz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_fuzz_file, setup_nodev, teardown),
        cmocka_unit_test_setup_teardown(test_file_backing, setup_nodev, teardown),
        cmocka_unit_test_setup_teardown(test_file_survives_kill, setup_nodev, teardown),
        cmocka_unit_test_setup_teardown(test_run_fault_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_fault_file, setup_nodev, teardown),
        cmocka_unit_test_setup_teardown(test_close, setup, teardown),
    };

    return cmocka_run_group_tests_name("nvme", tests, NULL, NULL);
}
