/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The unvme driver against sim:nvme, through the client library: controller
 * bring-up, Identify, several I/O queues, verified random I/O of every size up
 * to MDTS at unaligned buffer offsets (a shadow copy of the disk checks every
 * byte), async QD > 1 with the copy and zero-copy variants, Flush, Write
 * Zeroes, Deallocate, Compare, the spec's error statuses (table driven),
 * interrupts per queue vector, command timeouts, controller reset with
 * commands outstanding, and persistence across a SIGKILLed daemon.
 *
 * Groups: local transport (identity and DART IOMMU) and the unix transport
 * (a daemon in a forked child), plus persistence (unix, file backed).
 * Everything skips, with the reason, while sim:nvme does not exist.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "dext/core.h"
#include "transport/unix_server.h"
#include "unvme/unvme.h"
#include "unvme/unvme_int.h"
#include "vfio-dext/client.h"

#define DISK_BYTES   (64ull << 20)
#define LBA          512u
#define DISK_BLOCKS  (DISK_BYTES / LBA)
#define NVME_SPEC    "sim:nvme,size=64M,queues=4"
#define TESTDEV_SPEC "sim:testdev,bdf=00:02.0"
#define NVME_BDF     "0000:00:01.0"
#define TESTDEV_BDF  "0000:00:02.0"
#define MAX_SPECS    2
#define PAGE         4096u

/* ---- Fixture: a dext in process, or a daemon in a forked child ------------------ */

struct nfx {
    bool unix_transport;
    enum dext_iommu_mode mode;
    const char *specs[MAX_SPECS];
    unsigned nspecs;
    struct dext *dext; /* local */
    pid_t daemon;      /* unix */
    char dir[64];
    char uri[96];
    struct vdx_endpoint *ep;
};

static volatile sig_atomic_t daemon_stop;

static void on_term(int sig)
{
    (void)sig;
    daemon_stop = 1;
}

static struct dext *make_dext(const struct nfx *f, char *err, size_t errlen)
{
    struct dext_opts o;
    struct dext *d = NULL;

    dext_opts_default(&o);
    o.iommu = f->mode;
    if (dext_create(&o, &d) < 0) {
        snprintf(err, errlen, "dext_create failed");
        return NULL;
    }
    for (unsigned i = 0; i < f->nspecs; i++) {
        if (dext_add_device(d, f->specs[i], err, errlen) < 0) {
            dext_destroy(d);
            return NULL;
        }
    }
    return d;
}

static void daemon_main(const struct nfx *f)
{
    struct vdx_unix_server_opts o = {.runtime_dir = f->dir};
    struct vdx_unix_server *srv = NULL;
    char err[256];
    struct dext *d = make_dext(f, err, sizeof(err));

    signal(SIGTERM, on_term);
    if (!d || vdx_unix_server_create(d, &o, &srv) < 0) {
        fprintf(stderr, "nvme test daemon: %s\n", d ? "cannot serve" : err);
        _exit(1);
    }
    while (!daemon_stop) {
        int r = vdx_unix_server_step(srv, 100);

        if (r < 0 && r != -EINTR) {
            _exit(2);
        }
    }
    vdx_unix_server_destroy(srv);
    dext_destroy(d);
    _exit(0);
}

static int wait_for_socket(const char *dir, pid_t child)
{
    char path[128];
    struct stat st;
    int status;

    snprintf(path, sizeof(path), "%s/%s", dir, VDX_UNIX_SOCKET_NAME);
    for (int i = 0; i < 1000; i++) {
        if (stat(path, &st) == 0) {
            return 0;
        }
        if (waitpid(child, &status, WNOHANG) == child) {
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

static int start_daemon(struct nfx *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/vdx-nvme-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    rmdir(f->dir); /* the server creates it 0700 itself */
    fflush(NULL);
    f->daemon = fork();
    if (f->daemon == 0) {
        daemon_main(f);
    }
    if (f->daemon < 0 || wait_for_socket(f->dir, f->daemon) < 0) {
        fprintf(stderr, "nvme test: daemon did not start in %s\n", f->dir);
        f->daemon = -1;
        return -1;
    }
    snprintf(f->uri, sizeof(f->uri), "unix:%s", f->dir);
    return vdx_endpoint_parse(f->uri, &f->ep) == DEXT_OK ? 0 : -1;
}

static int nfx_start(struct nfx *f)
{
    char err[256] = "";

    if (f->unix_transport) {
        return start_daemon(f);
    }
    f->dext = make_dext(f, err, sizeof(err));
    if (!f->dext) {
        fprintf(stderr, "nvme test: %s\n", err);
        return -1;
    }
    return vdx_endpoint_local(f->dext, &f->ep) == DEXT_OK ? 0 : -1;
}

/* Stop; the daemon must have survived everything (unless it was killed). */
static void nfx_stop(struct nfx *f)
{
    int status = 0;

    vdx_endpoint_free(f->ep);
    f->ep = NULL;
    if (f->unix_transport && f->daemon > 0) {
        assert_int_equal(waitpid(f->daemon, &status, WNOHANG), 0);
        kill(f->daemon, SIGTERM);
        waitpid(f->daemon, &status, 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        f->daemon = -1;
    }
    dext_destroy(f->dext);
    f->dext = NULL;
}

/* SIGKILL the daemon (persistence test). */
static void nfx_kill(struct nfx *f)
{
    int status = 0;

    kill(f->daemon, SIGKILL);
    waitpid(f->daemon, &status, 0);
    assert_true(WIFSIGNALED(status));
    f->daemon = -1;
    vdx_endpoint_free(f->ep);
    f->ep = NULL;
}

/* Whether sim:nvme exists in this build (it may land after this test). */
static bool nvme_available(char *why, size_t len)
{
    struct nfx f = {.specs = {NVME_SPEC}, .nspecs = 1};
    struct dext *d = make_dext(&f, why, len);

    dext_destroy(d);
    return d != NULL;
}

/* ---- Group state ------------------------------------------------------------------- */

static struct {
    struct nfx fx;
    bool skip;
    char why[256];
    uint8_t *shadow; /* what the disk holds */
    uint64_t rng;
} g;

/* Per test. */
static struct {
    struct vdx_conn *c;
    struct unvme *u;
} t;

#define NEED_DEVICE()                                                                     \
    do {                                                                                  \
        if (g.skip) {                                                                     \
            fprintf(stderr, "skipped: sim:nvme not available (%s)\n", g.why);           \
            skip();                                                                       \
        }                                                                                 \
    } while (0)

static uint64_t rnd(void)
{
    uint64_t x = g.rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g.rng = x;
    return x;
}

static void fill_random(void *buf, size_t len)
{
    uint8_t *p = buf;

    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = rnd();

        memcpy(p + i, &v, len - i < 8 ? len - i : 8);
    }
}

static void test_opts(struct unvme_opts *o)
{
    unvme_opts_default(o);
    o->io_queues = 4;
    o->queue_depth = 64;
}

static struct unvme *drv_open(const struct unvme_opts *o)
{
    struct unvme_opts d;

    if (!o) {
        test_opts(&d);
        o = &d;
    }
    assert_int_equal(vdx_connect(g.fx.ep, NVME_BDF, &t.c), DEXT_OK);
    assert_int_equal(unvme_open(t.c, o, &t.u), 0);
    return t.u;
}

static void drv_close(void)
{
    unvme_close(t.u);
    vdx_disconnect(t.c);
    t.u = NULL;
    t.c = NULL;
}

static int test_teardown(void **state)
{
    (void)state;
    if (t.u) { /* the controller never completed a command twice or unasked */
        assert_int_equal(__atomic_load_n(&unvme_info(t.u)->bad_completions,
                                         __ATOMIC_RELAXED), 0);
    }
    drv_close();
    return 0;
}

/* Read [slba, slba + nlb) in max_xfer pieces into buf. */
static void read_range(struct unvme_queue *q, uint64_t slba, uint64_t nlb, uint8_t *buf)
{
    uint32_t per = unvme_info(t.u)->max_xfer / LBA;
    uint16_t st = 0xffff;

    while (nlb) {
        uint32_t n = nlb < per ? (uint32_t)nlb : per;

        assert_int_equal(unvme_read(q, slba, n, buf, &st), 0);
        assert_int_equal(st, 0);
        slba += n;
        nlb -= n;
        buf += (size_t)n * LBA;
    }
}

/* The disk must hold what the shadow says in [slba, slba + nlb). */
static void verify_range(struct unvme_queue *q, uint64_t slba, uint64_t nlb)
{
    uint8_t *buf = malloc(nlb * LBA);

    assert_non_null(buf);
    read_range(q, slba, nlb, buf);
    assert_memory_equal(buf, g.shadow + slba * LBA, nlb * LBA);
    free(buf);
}

static int group_start(bool unix_transport, enum dext_iommu_mode mode)
{
    memset(&g, 0, sizeof(g));
    g.rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    vdx_log_set(NULL, NULL, VDX_LOG_ERR); /* the error tests provoke warnings */
    if (!nvme_available(g.why, sizeof(g.why))) {
        g.skip = true;
        return 0;
    }
    g.fx = (struct nfx){.unix_transport = unix_transport, .mode = mode,
                        .specs = {NVME_SPEC, TESTDEV_SPEC}, .nspecs = 2};
    g.shadow = malloc(DISK_BYTES);
    if (!g.shadow || nfx_start(&g.fx) < 0) {
        return -1;
    }
    drv_open(NULL);
    read_range(unvme_queue(t.u, 0), 0, DISK_BLOCKS, g.shadow); /* whatever it holds */
    drv_close();
    return 0;
}

static int start_local_identity(void **state)
{
    (void)state;
    return group_start(false, DEXT_IOMMU_IDENTITY);
}

static int start_local_dart(void **state)
{
    (void)state;
    return group_start(false, DEXT_IOMMU_DART);
}

static int start_unix_identity(void **state)
{
    (void)state;
    return group_start(true, DEXT_IOMMU_IDENTITY);
}

static int group_stop(void **state)
{
    (void)state;
    if (!g.skip) {
        nfx_stop(&g.fx);
    }
    free(g.shadow);
    g.shadow = NULL;
    return 0;
}

static uint32_t reg32(struct vdx_conn *c, uint32_t off)
{
    uint64_t v = 0;

    assert_int_equal(vdx_mmio_read(c, 0, off, 4, &v), DEXT_OK);
    return (uint32_t)v;
}

/* ---- Pure pieces ---------------------------------------------------------------------- */

static void prp_builder(void **state)
{
    static uint64_t list[UNVME_PRPS_PER_PAGE];
    uint64_t p1 = 0, p2 = 0;

    (void)state;
    /* within the first page, with an offset */
    assert_int_equal(unvme_prp_build(0x10000 + 0x200, 0xe00, list, 0x5000, &p1, &p2), 0);
    assert_true(p1 == 0x10200 && p2 == 0);
    /* one byte into the second page: PRP2 is that page */
    assert_int_equal(unvme_prp_build(0x10000 + 0x200, 0xe01, list, 0x5000, &p1, &p2), 0);
    assert_true(p1 == 0x10200 && p2 == 0x11000);
    /* exactly two aligned pages */
    assert_int_equal(unvme_prp_build(0x10000, 0x2000, list, 0x5000, &p1, &p2), 0);
    assert_true(p2 == 0x11000);
    /* three pages: a list with two entries */
    assert_int_equal(unvme_prp_build(0x10000 + 4, 0x2000, list, 0x5000, &p1, &p2), 2);
    assert_true(p1 == 0x10004 && p2 == 0x5000 && list[0] == 0x11000 && list[1] == 0x12000);
    /* 2 MiB at a dword offset: 512 entries, one full list page */
    assert_int_equal(unvme_prp_build(0x200004, 2u << 20, list, 0x5000, &p1, &p2), 512);
    assert_true(list[511] == 0x200000 + 512ull * PAGE);
    /* refused: empty, too large, unaligned data or list */
    assert_int_equal(unvme_prp_build(0x1000, 0, list, 0x5000, &p1, &p2), -EINVAL);
    assert_int_equal(unvme_prp_build(0x1000, (2u << 20) + 1, list, 0x5000, &p1, &p2),
                     -EINVAL);
    assert_int_equal(unvme_prp_build(0x1001, 8, list, 0x5000, &p1, &p2), -EINVAL);
    assert_int_equal(unvme_prp_build(0x1000, 8, list, 0x5008, &p1, &p2), -EINVAL);
}

static void identify_parsers(void **state)
{
    static uint8_t buf[4096];
    struct unvme_info info;

    (void)state;
    memset(buf, 0, sizeof(buf));
    memcpy(buf + offsetof(struct nvme_id_ctrl, mn), "model  ", 7);
    buf[offsetof(struct nvme_id_ctrl, sqes)] = 0x66;
    buf[offsetof(struct nvme_id_ctrl, cqes)] = 0x44;
    buf[offsetof(struct nvme_id_ctrl, mdts)] = 5;
    assert_int_equal(unvme_parse_id_ctrl(buf, &info), 0);
    assert_string_equal(info.model, "model");
    assert_int_equal(info.mdts, 5);
    buf[offsetof(struct nvme_id_ctrl, sqes)] = 0x77; /* requires 128-byte entries */
    assert_int_equal(unvme_parse_id_ctrl(buf, &info), -EINVAL);

    memset(buf, 0, sizeof(buf));
    buf[offsetof(struct nvme_id_ns, nsze)] = 0x10;
    buf[offsetof(struct nvme_id_ns, lbaf) + 2] = 9; /* LBADS 9: 512 bytes */
    assert_int_equal(unvme_parse_id_ns(buf, &info), 0);
    assert_int_equal(info.lba_size, 512);
    assert_int_equal(info.nsze, 16);
    buf[offsetof(struct nvme_id_ns, lbaf)] = 8; /* metadata per block: unsupported */
    assert_int_equal(unvme_parse_id_ns(buf, &info), -EINVAL);
    buf[offsetof(struct nvme_id_ns, lbaf)] = 0;
    buf[offsetof(struct nvme_id_ns, flbas)] = 1; /* format 1 but NLBAF = 0 */
    assert_int_equal(unvme_parse_id_ns(buf, &info), -EINVAL);
}

/* ---- Bring-up and Identify -------------------------------------------------------------- */

static void controller_init(void **state)
{
    const struct unvme_info *i;
    uint32_t cc;

    (void)state;
    NEED_DEVICE();
    i = unvme_info(drv_open(NULL));
    cc = reg32(t.c, NVME_REG_CC);
    assert_true(reg32(t.c, NVME_REG_CSTS) & NVME_CSTS_RDY);
    assert_int_equal(cc & NVME_CC_EN, NVME_CC_EN);
    assert_int_equal((cc >> 4) & 7u, 0);          /* CSS: NVM */
    assert_int_equal((cc >> 7) & 0xfu, 0);        /* MPS: 4 KiB */
    assert_int_equal((cc >> 16) & 0xfu, 6);       /* IOSQES */
    assert_int_equal((cc >> 20) & 0xfu, 4);       /* IOCQES */
    assert_int_equal(reg32(t.c, NVME_REG_AQA),
                     NVME_SET(31, AQA_ASQS) | NVME_SET(31, AQA_ACQS));
    assert_true(i->vs >= 0x10000u);
    assert_true(i->mqes >= 64);
    assert_int_equal(i->io_queues, 4);
    assert_true(i->queues_granted >= 4);
    assert_true(i->vectors >= 5);
    assert_int_equal(i->queue_depth, 64);
    assert_true(i->max_xfer >= PAGE && i->max_xfer % PAGE == 0);
    if (i->mdts_bytes) {
        assert_true(i->max_xfer <= i->mdts_bytes);
    }
    for (unsigned q = 0; q < 4; q++) {
        assert_int_equal(unvme_queue_id(unvme_queue(t.u, q)), q + 1);
    }
    assert_null(unvme_queue(t.u, 4));
}

static void identify(void **state)
{
    static uint8_t buf[4096];
    struct vdx_device_desc id;
    const struct unvme_info *i;
    uint32_t dw0 = 0;
    uint16_t st = 0xffff;

    (void)state;
    NEED_DEVICE();
    i = unvme_info(drv_open(NULL));
    assert_true(strlen(i->model) > 0);
    assert_true(strlen(i->serial) > 0);
    assert_int_equal(i->nsze, DISK_BLOCKS);
    assert_int_equal(i->lba_size, LBA);
    assert_int_equal(i->nsid, 1);
    assert_true(i->nn >= 1);
    /* Identify Controller VID is the PCI vendor id (Base Figure 275). */
    assert_int_equal(vdx_get_identity(t.c, &id), DEXT_OK);
    assert_int_equal(i->vid, id.vendor);
    /* Active namespace list holds NSID 1 (Base §5.17.2.2). */
    assert_int_equal(unvme_identify(t.u, NVME_CNS_NS_ACTIVE, 0, 0, buf, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(buf[0] | buf[1] << 8 | buf[2] << 16 | buf[3] << 24, 1);
    /* Number of Queues reads back what was allocated. */
    assert_int_equal(unvme_get_features(t.u, NVME_FEAT_NUM_QUEUES, 0, &dw0, &st), 0);
    assert_int_equal(st, 0);
    assert_true((dw0 & 0xffffu) + 1u >= 4u && (dw0 >> 16) + 1u >= 4u);
    /* SMART / Health log (512 bytes). */
    assert_int_equal(unvme_get_log_page(t.u, NVME_LOG_SMART, 0xffffffffu, 0, buf, 512, &st),
                     0);
    assert_int_equal(st, 0);
    fprintf(stderr, "  model '%s' serial '%s' fw '%s' mdts %u (%u bytes) vwc %d oncs 0x%x\n",
            i->model, i->serial, i->firmware, i->mdts, i->mdts_bytes, i->vwc, i->oncs);
}

/* Normal shutdown (Base 2.0 §3.6.1): CC.SHN = 01b makes CSTS.SHST reach 10b
 * within CAP.TO; the controller can be disabled and brought up again. */
static void shutdown_handshake(void **state)
{
    uint32_t cc, csts = 0;
    uint64_t deadline;

    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    deadline =
        vdx_now_ns() + (uint64_t)NVME_GET(unvme_info(t.u)->cap, CAP_TO) * 500000000ull;
    cc = reg32(t.c, NVME_REG_CC);
    assert_int_equal(
        vdx_mmio_write(t.c, 0, NVME_REG_CC, 4, cc | NVME_SET(NVME_CC_SHN_NORMAL, CC_SHN)),
        DEXT_OK);
    while (vdx_now_ns() < deadline) {
        csts = reg32(t.c, NVME_REG_CSTS);
        if (NVME_GET(csts, CSTS_SHST) == NVME_CSTS_SHST_COMPLETE) {
            break;
        }
    }
    assert_int_equal(NVME_GET(csts, CSTS_SHST), NVME_CSTS_SHST_COMPLETE);
    assert_int_equal(unvme_reset_controller(t.u), 0); /* EN toggle after shutdown */
    verify_range(unvme_queue(t.u, 0), 0, 16);
}

static void open_errors(void **state)
{
    struct unvme_opts o;
    struct vdx_conn *c = NULL;
    struct unvme *u = NULL;

    (void)state;
    NEED_DEVICE();
    assert_int_equal(vdx_connect(g.fx.ep, TESTDEV_BDF, &c), DEXT_OK);
    assert_int_equal(unvme_open(c, NULL, &u), -EINVAL); /* not an NVMe controller */
    assert_null(u);
    vdx_disconnect(c);
    assert_int_equal(vdx_connect(g.fx.ep, NVME_BDF, &c), DEXT_OK);
    unvme_opts_default(&o);
    o.io_queues = 0;
    assert_int_equal(unvme_open(c, &o, &u), -EINVAL);
    unvme_opts_default(&o);
    o.queue_depth = 1;
    assert_int_equal(unvme_open(c, &o, &u), -EINVAL);
    unvme_opts_default(&o);
    o.nsid = 2; /* inactive namespace */
    assert_int_equal(unvme_open(c, &o, &u), -EINVAL);
    /* the same connection opens fine afterwards: nothing was left behind */
    assert_int_equal(unvme_open(c, NULL, &u), 0);
    unvme_close(u);
    /* and again (interrupts already set up by this client are reused) */
    assert_int_equal(unvme_open(c, NULL, &u), 0);
    unvme_close(u);
    vdx_disconnect(c);
    unvme_close(NULL);
}

/* ---- Verified I/O ----------------------------------------------------------------------- */

/* A buffer offset: mostly dword multiples anywhere in a page, some odd. */
static size_t rnd_off(void)
{
    switch (rnd() % 4) {
    case 0:
        return 0;
    case 1:
        return (rnd() % 4) + 1; /* not even dword aligned: still works */
    default:
        return (rnd() % (PAGE / 4)) * 4;
    }
}

static uint32_t rnd_nlb(uint32_t max_nlb)
{
    switch (rnd() % 5) {
    case 0:
        return 1;
    case 1:
        return max_nlb;
    default:
        return 1 + (uint32_t)(rnd() % max_nlb);
    }
}

struct rw_job {
    struct unvme_queue *q;
    uint64_t first, blocks; /* LBA window this job may touch */
    unsigned ops;
    uint64_t seed;
    int failures;
};

/* Random writes and reads in a window; every read compared with the shadow. */
static void *rw_worker(void *arg)
{
    struct rw_job *j = arg;
    uint32_t max_nlb = unvme_info(t.u)->max_xfer / LBA;
    uint8_t *buf = malloc(unvme_info(t.u)->max_xfer + 2 * PAGE);
    uint64_t x = j->seed;

    for (unsigned i = 0; buf && i < j->ops; i++) {
        uint32_t nlb, span;
        uint64_t slba;
        size_t off;
        uint16_t st = 0xffff;
        int rc;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        nlb = 1 + (uint32_t)(x % max_nlb);
        if (x % 7 == 0) {
            nlb = max_nlb;
        }
        span = nlb < j->blocks ? nlb : (uint32_t)j->blocks;
        slba = j->first + (x >> 20) % (j->blocks - span + 1);
        off = (x >> 40) % PAGE;
        if (x & 1) {
            for (size_t k = 0; k < (size_t)span * LBA; k++) {
                buf[off + k] = (uint8_t)(x >> (k % 56)) ^ (uint8_t)k;
            }
            rc = unvme_write(j->q, slba, span, buf + off, &st);
            memcpy(g.shadow + slba * LBA, buf + off, (size_t)span * LBA);
        } else {
            rc = unvme_read(j->q, slba, span, buf + off, &st);
            if (rc == 0 && memcmp(buf + off, g.shadow + slba * LBA, (size_t)span * LBA)) {
                rc = -EILSEQ;
            }
        }
        j->failures += rc != 0 || st != 0;
    }
    free(buf);
    return NULL;
}

static void random_rw_verified(void **state)
{
    unsigned ops = g.fx.unix_transport ? 400 : 4000;
    const struct unvme_info *i;
    uint8_t *buf;
    uint32_t max_nlb;

    (void)state;
    NEED_DEVICE();
    i = unvme_info(drv_open(NULL));
    max_nlb = i->max_xfer / LBA;
    buf = malloc(i->max_xfer + 2 * PAGE + 8);
    assert_non_null(buf);
    for (unsigned n = 0; n < ops; n++) {
        struct unvme_queue *q = unvme_queue(t.u, (unsigned)(rnd() % i->io_queues));
        uint32_t nlb = rnd_nlb(max_nlb);
        uint64_t slba = rnd() % (DISK_BLOCKS - nlb + 1);
        size_t off = rnd_off(), len = (size_t)nlb * LBA;
        uint16_t st = 0xffff;

        if (rnd() & 1) {
            fill_random(buf + off, len);
            assert_int_equal(unvme_write(q, slba, nlb, buf + off, &st), 0);
            assert_int_equal(st, 0);
            memcpy(g.shadow + slba * LBA, buf + off, len);
        } else {
            memset(buf, 0xa5, i->max_xfer + 2 * PAGE + 8);
            assert_int_equal(unvme_read(q, slba, nlb, buf + off, &st), 0);
            assert_int_equal(st, 0);
            assert_memory_equal(buf + off, g.shadow + slba * LBA, len);
            assert_int_equal(buf[off + len], 0xa5); /* nothing written past the end */
        }
    }
    /* more than max_xfer in one helper call: the caller must split */
    assert_int_equal(unvme_read(unvme_queue(t.u, 0), 0, max_nlb + 1, buf, NULL), -EINVAL);
    free(buf);
}

static void queues_in_parallel(void **state)
{
    struct rw_job jobs[4];
    pthread_t th[4];
    uint64_t window = DISK_BLOCKS / 4;

    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    for (unsigned i = 0; i < 4; i++) {
        jobs[i] = (struct rw_job){.q = unvme_queue(t.u, i), .first = i * window,
                                  .blocks = window, .seed = rnd() | 1,
                                  .ops = g.fx.unix_transport ? 100 : 1000};
        assert_int_equal(pthread_create(&th[i], NULL, rw_worker, &jobs[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        verify_range(unvme_queue(t.u, i), i * window + (rnd() % (window - 512)), 512);
    }
}

/* Completions in any order; match by cookie (an index). */
static void collect(struct unvme_queue *q, unsigned n, bool *seen, unsigned nseen,
                    struct unvme_cpl *out)
{
    struct unvme_cpl cpl[64];
    unsigned got = 0;

    while (got < n) {
        int r = unvme_wait(q, cpl, 1, 64, 5000);

        assert_true(r > 0);
        for (int k = 0; k < r; k++) {
            uintptr_t idx = (uintptr_t)cpl[k].cookie;

            assert_true(idx < nseen && !seen[idx]);
            assert_int_equal(cpl[k].err, 0);
            assert_int_equal(cpl[k].status, 0);
            seen[idx] = true;
            if (out) {
                out[idx] = cpl[k];
            }
        }
        got += (unsigned)r;
    }
    assert_int_equal(unvme_inflight(q), 0);
}

#define QD 32u

/* QD 32 with the copy variant (writes) and the zero-copy variant (reads). */
static void async_qd32_copy_and_zero_copy(void **state)
{
    struct unvme_queue *q;
    static uint8_t wdata[QD][64 * LBA + PAGE];
    struct unvme_cpl cpls[QD];
    uint64_t slba[QD];
    uint32_t nlb[QD];
    void *zc[QD];
    bool seen[QD];
    struct nvme_sqe c;
    uint64_t part = DISK_BLOCKS / QD;

    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    q = unvme_queue(t.u, 1);
    for (unsigned round = 0; round < 8; round++) {
        memset(seen, 0, sizeof(seen));
        for (unsigned k = 0; k < QD; k++) { /* disjoint ranges: order is free */
            size_t off = rnd_off();

            nlb[k] = 1 + (uint32_t)(rnd() % 64);
            slba[k] = k * part + rnd() % (part - nlb[k]);
            fill_random(wdata[k] + off, nlb[k] * LBA);
            memcpy(g.shadow + slba[k] * LBA, wdata[k] + off, nlb[k] * LBA);
            unvme_cmd_rw(&c, NVME_IO_WRITE, 1, slba[k], nlb[k]);
            assert_int_equal(unvme_submit_io(q, &c, wdata[k] + off, nlb[k] * LBA,
                                             (void *)(uintptr_t)k), 0);
        }
        assert_int_equal(unvme_inflight(q), QD);
        assert_int_equal(unvme_kick(q), 0); /* one doorbell for the batch */
        collect(q, QD, seen, QD, NULL);

        memset(seen, 0, sizeof(seen));
        for (unsigned k = 0; k < QD; k++) {
            assert_int_equal(unvme_buf_alloc(q, (unsigned)(rnd() % (PAGE / 4)) * 4, &zc[k]), 0);
            unvme_cmd_rw(&c, NVME_IO_READ, 1, slba[k], nlb[k]);
            assert_int_equal(unvme_submit_buf(q, &c, zc[k], nlb[k] * LBA,
                                              (void *)(uintptr_t)k), 0);
        }
        collect(q, QD, seen, QD, cpls);
        for (unsigned k = 0; k < QD; k++) {
            assert_ptr_equal(cpls[k].buf, zc[k]);
            assert_memory_equal(zc[k], g.shadow + slba[k] * LBA, nlb[k] * LBA);
            assert_int_equal(unvme_buf_free(q, zc[k]), 0);
        }
    }
}

static void async_limits(void **state)
{
    struct unvme_queue *q;
    struct unvme_cpl cpls[64];
    struct nvme_sqe c;
    static uint8_t buf[LBA];
    void *zc = NULL, *zc2 = NULL;
    unsigned n = 0;

    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    q = unvme_queue(t.u, 0);
    unvme_cmd_rw(&c, NVME_IO_READ, 1, 0, 1);
    /* depth 64: 63 slots. The 64th submission finds none. */
    while (unvme_submit_io(q, &c, buf, LBA, NULL) == 0) {
        n++;
    }
    assert_int_equal(n, 63);
    assert_int_equal(unvme_submit_io(q, &c, buf, LBA, NULL), -EBUSY);
    assert_int_equal(unvme_buf_alloc(q, 0, &zc), -EBUSY);
    assert_int_equal(unvme_wait(q, cpls, 63, 64, 5000), 63);
    /* zero-copy misuse */
    assert_int_equal(unvme_buf_alloc(q, 2, &zc), -EINVAL);     /* not dword aligned */
    assert_int_equal(unvme_buf_alloc(q, PAGE, &zc), -EINVAL);  /* beyond the page */
    assert_int_equal(unvme_buf_alloc(q, 0, &zc), 0);
    assert_int_equal(unvme_submit_buf(q, &c, buf, LBA, NULL), -EINVAL); /* not a zc buffer */
    assert_int_equal(unvme_submit_buf(q, &c, zc, unvme_info(t.u)->max_xfer + 1, NULL),
                     -EINVAL);
    assert_int_equal(unvme_submit_buf(q, &c, zc, LBA, NULL), 0);
    assert_int_equal(unvme_submit_buf(q, &c, zc, LBA, NULL), -EINVAL); /* in flight */
    assert_int_equal(unvme_buf_free(q, zc), -EBUSY);
    assert_int_equal(unvme_wait(q, cpls, 1, 64, 5000), 1);
    assert_ptr_equal(cpls[0].buf, zc);
    assert_int_equal(unvme_buf_free(q, zc), 0);
    assert_int_equal(unvme_buf_free(q, zc), -EINVAL); /* already given back */
    assert_int_equal(unvme_buf_free(q, NULL), 0);
    assert_int_equal(unvme_buf_alloc(q, 4, &zc2), 0);
    assert_int_equal(unvme_buf_free(q, zc2), 0);
    /* nothing in flight: a wait times out */
    assert_int_equal(unvme_wait(q, cpls, 1, 64, 20), -ETIMEDOUT);
    assert_int_equal(unvme_inflight(q), 0);
}

/* ---- Flush, Write Zeroes, Deallocate, Compare ------------------------------------------------ */

static void flush(void **state)
{
    uint16_t st = 0xffff;

    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(unvme_flush(unvme_queue(t.u, i), &st), 0);
        assert_int_equal(st, 0);
    }
}

/* Write a random pattern at [slba, slba + nlb) (nlb <= 64) and the shadow. */
static void write_pattern(struct unvme_queue *q, uint64_t slba, uint32_t nlb)
{
    static uint8_t buf[64 * LBA];
    uint16_t st = 0xffff;

    fill_random(buf, nlb * LBA);
    assert_int_equal(unvme_write(q, slba, nlb, buf, &st), 0);
    assert_int_equal(st, 0);
    memcpy(g.shadow + slba * LBA, buf, nlb * LBA);
}

static void write_zeroes_and_deallocate(void **state)
{
    struct unvme_queue *q;
    static uint8_t buf[64 * LBA];
    const uint64_t slba = 1000;
    uint16_t st = 0xffff;

    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    q = unvme_queue(t.u, 2);
    for (unsigned mode = 0; mode < 3; mode++) {
        write_pattern(q, slba - 8, 64); /* neighbours too, to see the edges */
        if (mode == 2) {
            assert_int_equal(unvme_dsm_deallocate(q, slba, 48, &st), 0);
        } else {
            assert_int_equal(unvme_write_zeroes(q, slba, 48, mode == 1, &st), 0);
        }
        assert_int_equal(st, 0);
        memset(g.shadow + slba * LBA, 0, 48 * LBA);
        memset(buf, 0xa5, sizeof(buf));
        assert_int_equal(unvme_read(q, slba - 8, 64, buf, &st), 0);
        assert_int_equal(st, 0);
        assert_memory_equal(buf, g.shadow + (slba - 8) * LBA, 64 * LBA);
    }
}

static void compare(void **state)
{
    struct unvme_queue *q;
    static uint8_t buf[16 * LBA];
    const uint64_t slba = 5000;
    uint16_t st = 0xffff;

    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    q = unvme_queue(t.u, 3);
    write_pattern(q, slba, 16);
    memcpy(buf, g.shadow + slba * LBA, sizeof(buf));
    assert_int_equal(unvme_compare(q, slba, 16, buf, &st), 0);
    assert_int_equal(st, 0);
    buf[15 * LBA + 511] ^= 1; /* the last byte differs */
    assert_int_equal(unvme_compare(q, slba, 16, buf, &st), 0);
    assert_int_equal(st, NVME_SC_COMPARE_FAILURE);
    /* without a status out-parameter an error status is -EIO */
    assert_int_equal(unvme_compare(q, slba, 16, buf, NULL), -EIO);
}

/* ---- Error statuses, table driven -------------------------------------------------------- */

struct err_ctx {
    const struct unvme_info *i;
    uint64_t scratch_bus; /* 64 KiB of DMA memory for queue bases */
};

struct err_case {
    const char *name;
    bool admin;
    void (*build)(const struct err_ctx *x, struct nvme_sqe *c, size_t *len);
    uint16_t want;
    const char *spec;
};

static void rw(struct nvme_sqe *c, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
               size_t *len)
{
    unvme_cmd_rw(c, opc, nsid, slba, nlb);
    *len = (size_t)nlb * LBA;
}

static void b_io_opcode(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    *c = (struct nvme_sqe){.cdw0 = 0x7e, .nsid = 1};
    *len = 0;
}

static void b_admin_opcode(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    *c = (struct nvme_sqe){.cdw0 = 0x3f};
    *len = 0;
}

static void b_read_at_end(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    rw(c, NVME_IO_READ, 1, x->i->nsze, 1, len);
}

static void b_read_across_end(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    rw(c, NVME_IO_READ, 1, x->i->nsze - 1, 2, len);
}

static void b_write_at_end(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    rw(c, NVME_IO_WRITE, 1, x->i->nsze, 1, len);
}

static void b_wz_past_end(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    rw(c, NVME_IO_WRITE_ZEROES, 1, x->i->nsze - 4, 8, len);
    *len = 0;
}

static void b_read_huge_slba(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    rw(c, NVME_IO_READ, 1, UINT64_MAX, 2, len); /* SLBA + NLB wraps */
}

static void b_read_nsid2(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    rw(c, NVME_IO_READ, 2, 0, 1, len);
}

static void b_read_nsid0(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    rw(c, NVME_IO_READ, 0, 0, 1, len);
}

static void b_read_nsid_all(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    rw(c, NVME_IO_READ, 0xffffffffu, 0, 1, len);
}

static void b_read_over_mdts(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    rw(c, NVME_IO_READ, 1, 0, x->i->mdts_bytes / LBA + 1, len);
    *len = x->i->max_xfer; /* the buffer we have; the controller must refuse first */
}

static void queue_cmd(struct nvme_sqe *c, uint8_t opc, uint16_t qid, uint32_t entries,
                      uint32_t cdw11, uint64_t base)
{
    *c = (struct nvme_sqe){.cdw0 = opc, .prp1 = base, .cdw11 = cdw11};
    c->cdw10 = (uint32_t)qid | ((entries - 1u) & 0xffffu) << 16;
}

static void b_cq_qid0(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    queue_cmd(c, NVME_ADM_CREATE_CQ, 0, 16,
              NVME_QUEUE_PC | NVME_CQ_IEN | NVME_SET(3, CQ_IV), x->scratch_bus);
    *len = 0;
}

static void b_cq_qid_over(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    queue_cmd(c, NVME_ADM_CREATE_CQ, (uint16_t)(x->i->queues_granted + 1), 16,
              NVME_QUEUE_PC | NVME_CQ_IEN | NVME_SET(3, CQ_IV), x->scratch_bus);
    *len = 0;
}

static void b_cq_qid_exists(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    queue_cmd(c, NVME_ADM_CREATE_CQ, 1, 16,
              NVME_QUEUE_PC | NVME_CQ_IEN | NVME_SET(1, CQ_IV), x->scratch_bus);
    *len = 0;
}

static void b_cq_too_big(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    queue_cmd(c, NVME_ADM_CREATE_CQ, 3, x->i->mqes + 1,
              NVME_QUEUE_PC | NVME_CQ_IEN | NVME_SET(3, CQ_IV), x->scratch_bus);
    *len = 0;
}

static void b_cq_one_entry(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    queue_cmd(c, NVME_ADM_CREATE_CQ, 3, 1, NVME_QUEUE_PC | NVME_CQ_IEN | NVME_SET(3, CQ_IV),
              x->scratch_bus);
    *len = 0;
}

static void b_sq_no_cq(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    queue_cmd(c, NVME_ADM_CREATE_SQ, 3, 16, NVME_QUEUE_PC | NVME_SET(4, SQ_CQID),
              x->scratch_bus);
    *len = 0;
}

static void b_sq_too_big(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    queue_cmd(c, NVME_ADM_CREATE_SQ, 3, x->i->mqes + 1,
              NVME_QUEUE_PC | NVME_SET(1, SQ_CQID), x->scratch_bus);
    *len = 0;
}

static void b_del_cq_in_use(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    *c = (struct nvme_sqe){.cdw0 = NVME_ADM_DELETE_CQ, .cdw10 = 1};
    *len = 0;
}

static void b_del_sq0(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    *c = (struct nvme_sqe){.cdw0 = NVME_ADM_DELETE_SQ, .cdw10 = 0};
    *len = 0;
}

static void b_del_sq_missing(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    *c = (struct nvme_sqe){.cdw0 = NVME_ADM_DELETE_SQ, .cdw10 = 4};
    *len = 0;
}

static void b_identify_cns(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    *c = (struct nvme_sqe){.cdw0 = NVME_ADM_IDENTIFY, .cdw10 = 0xff};
    *len = 4096;
}

static void b_identify_ns2(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    *c = (struct nvme_sqe){.cdw0 = NVME_ADM_IDENTIFY, .cdw10 = NVME_CNS_NS, .nsid = 0xfffffffe};
    *len = 4096;
}

static void b_get_feature0(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    *c = (struct nvme_sqe){.cdw0 = NVME_ADM_GET_FEATURES, .cdw10 = 0};
    *len = 0;
}

static void b_log_unknown(const struct err_ctx *x, struct nvme_sqe *c, size_t *len)
{
    (void)x;
    *c = (struct nvme_sqe){.cdw0 = NVME_ADM_GET_LOG_PAGE, .nsid = 0xffffffffu};
    c->cdw10 = 0x7fu | (127u << 16); /* reserved LID, 512 bytes */
    *len = 512;
}

static const struct err_case err_cases[] = {
    {"I/O opcode 7Eh", false, b_io_opcode, NVME_SC_INVALID_OPCODE, "Base 2.0 §3.3.3.2"},
    {"admin opcode 3Fh", true, b_admin_opcode, NVME_SC_INVALID_OPCODE, "Base 2.0 §3.3.3.2"},
    {"read at NSZE", false, b_read_at_end, NVME_SC_LBA_RANGE, "NVM-CS 1.0 §3.2.4"},
    {"read across NSZE", false, b_read_across_end, NVME_SC_LBA_RANGE, "NVM-CS 1.0"},
    {"write at NSZE", false, b_write_at_end, NVME_SC_LBA_RANGE, "NVM-CS 1.0 §3.2.6"},
    {"write zeroes past NSZE", false, b_wz_past_end, NVME_SC_LBA_RANGE, "NVM-CS 1.0"},
    {"read SLBA+NLB wraps", false, b_read_huge_slba, NVME_SC_LBA_RANGE, "NVM-CS 1.0"},
    {"read NSID 2", false, b_read_nsid2, NVME_SC_INVALID_NS, "Base 2.0 §3.2.1"},
    {"read NSID 0", false, b_read_nsid0, NVME_SC_INVALID_NS, "Base 2.0 §3.2.1"},
    {"read NSID FFFFFFFFh", false, b_read_nsid_all, NVME_SC_INVALID_NS, "Base 2.0 §3.2.1"},
    {"read beyond MDTS", false, b_read_over_mdts, NVME_SC_INVALID_FIELD,
     "Base 2.0 Fig 275 MDTS"},
    {"create CQ QID 0", true, b_cq_qid0, NVME_SC_INVALID_QID, "Base 2.0 §5.4"},
    {"create CQ QID > allocated", true, b_cq_qid_over, NVME_SC_INVALID_QID,
     "Base 2.0 §5.4"},
    {"create CQ QID in use", true, b_cq_qid_exists, NVME_SC_INVALID_QID, "Base 2.0 §5.4"},
    {"create CQ > MQES", true, b_cq_too_big, NVME_SC_INVALID_QUEUE_SIZE, "Base 2.0 §5.4"},
    {"create CQ of 1 entry", true, b_cq_one_entry, NVME_SC_INVALID_QUEUE_SIZE,
     "Base 2.0 §5.4"},
    {"create SQ on missing CQ", true, b_sq_no_cq, NVME_SC_CQ_INVALID, "Base 2.0 §5.5"},
    {"create SQ > MQES", true, b_sq_too_big, NVME_SC_INVALID_QUEUE_SIZE, "Base 2.0 §5.5"},
    {"delete CQ used by SQ 1", true, b_del_cq_in_use, NVME_SC_INVALID_QUEUE_DELETION,
     "Base 2.0 §5.6"},
    {"delete SQ 0 (admin)", true, b_del_sq0, NVME_SC_INVALID_QID, "Base 2.0 §5.7"},
    {"delete SQ 4 (not created)", true, b_del_sq_missing, NVME_SC_INVALID_QID,
     "Base 2.0 §5.7"},
    {"identify CNS FFh", true, b_identify_cns, NVME_SC_INVALID_FIELD, "Base 2.0 §5.17"},
    {"identify NS FFFFFFFEh", true, b_identify_ns2, NVME_SC_INVALID_NS, "Base 2.0 §5.17"},
    {"get features FID 0", true, b_get_feature0, NVME_SC_INVALID_FIELD, "Base 2.0 §5.15"},
    {"log page LID 7Fh", true, b_log_unknown, NVME_SC_INVALID_LOG_PAGE,
     "Base 2.0 §5.16 Invalid Log Page"},
};

/* A create that should have failed but did not: undo it so the run goes on. */
static void undo_create(const struct nvme_sqe *c)
{
    uint8_t opc = (uint8_t)NVME_GET(c->cdw0, SQE_OPC);
    struct nvme_sqe del = {.cdw10 = c->cdw10 & 0xffffu};

    if (opc == NVME_ADM_CREATE_CQ || opc == NVME_ADM_CREATE_SQ) {
        del.cdw0 = opc == NVME_ADM_CREATE_CQ ? NVME_ADM_DELETE_CQ : NVME_ADM_DELETE_SQ;
        unvme_admin(t.u, &del, NULL, 0, NULL, NULL);
    }
}

/* One case of the table: 0 as the spec says, -1 (reported) otherwise. */
static int run_err_case(const struct err_case *e, const struct err_ctx *x, uint8_t *buf)
{
    struct nvme_sqe c;
    size_t dlen = 0;
    uint16_t st = 0xffff;
    int rc;

    if (e->build == b_read_over_mdts && x->i->mdts_bytes == 0) {
        return 0; /* no limit to exceed */
    }
    e->build(x, &c, &dlen);
    rc = e->admin ? unvme_admin(t.u, &c, buf, dlen, NULL, &st)
                  : unvme_io_raw(unvme_queue(t.u, 0), &c, buf, dlen, NULL, &st);
    if (rc == 0 && st == 0) {
        undo_create(&c);
    }
    if (rc != 0 || st != e->want) {
        fprintf(stderr,
                "  MISMATCH %-28s rc %d status SCT %u SC 0x%02x, want SCT %u "
                "SC 0x%02x (%s)\n",
                e->name, rc, NVME_GET(st, SF_SCT), NVME_GET(st, SF_SC),
                NVME_GET(e->want, SF_SCT), NVME_GET(e->want, SF_SC), e->spec);
        return -1;
    }
    return 0;
}

/* Delete I/O queue pairs 4 and 3 behind the driver's back (it re-creates
 * them on reset). */
static void free_queues_3_and_4(void)
{
    for (uint32_t qid = 4; qid >= 3; qid--) {
        struct nvme_sqe sq = {.cdw0 = NVME_ADM_DELETE_SQ, .cdw10 = qid};
        struct nvme_sqe cq = {.cdw0 = NVME_ADM_DELETE_CQ, .cdw10 = qid};
        uint16_t st = 0xffff;

        assert_int_equal(unvme_admin(t.u, &sq, NULL, 0, NULL, &st), 0);
        assert_int_equal(st, 0);
        assert_int_equal(unvme_admin(t.u, &cq, NULL, 0, NULL, &st), 0);
        assert_int_equal(st, 0);
    }
}

static void error_statuses(void **state)
{
    struct unvme_opts o;
    struct err_ctx x;
    uint8_t *scratch = NULL, *buf;
    uint64_t key, len;
    int failed = 0;

    (void)state;
    NEED_DEVICE();
    test_opts(&o);
    x.i = unvme_info(drv_open(&o));
    assert_true(x.i->queues_granted >= 4);
    free_queues_3_and_4(); /* allocated but not created: for the create cases */
    assert_int_equal(vdx_shm_alloc(64 * 1024, (void **)&scratch), DEXT_OK);
    key = o.iova_base + unvme_dma_span(t.u) + (2u << 20);
    assert_int_equal(vdx_register_dma(t.c, key, scratch, 64 * 1024, &x.scratch_bus, &len),
                     DEXT_OK);
    buf = calloc(1, x.i->max_xfer);
    for (size_t k = 0; k < sizeof(err_cases) / sizeof(err_cases[0]); k++) {
        failed += run_err_case(&err_cases[k], &x, buf) < 0;
    }
    /* the queues in use still work; a reset brings queues 3 and 4 back */
    verify_range(unvme_queue(t.u, 0), 0, 64);
    verify_range(unvme_queue(t.u, 1), DISK_BLOCKS - 64, 64);
    assert_int_equal(unvme_reset_controller(t.u), 0);
    verify_range(unvme_queue(t.u, 2), 64, 64);
    verify_range(unvme_queue(t.u, 3), 128, 64);
    free(buf);
    vdx_unregister_dma(t.c, key);
    vdx_shm_free(scratch);
    assert_int_equal(failed, 0);
}

/* ---- Interrupts and waiting ------------------------------------------------------------- */

static void interrupts_per_vector(void **state)
{
    struct dext_irq_page *page = NULL;
    static uint8_t buf[LBA];
    uint32_t dw0;

    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    assert_int_equal(vdx_map_irq_page(t.c, &page), DEXT_OK);
    for (unsigned i = 0; i < 4; i++) {
        __atomic_exchange_n(&page->pending[0], 0, __ATOMIC_SEQ_CST);
        assert_int_equal(unvme_read(unvme_queue(t.u, i), i, 1, buf, NULL), 0);
        assert_int_equal(__atomic_load_n(&page->pending[0], __ATOMIC_SEQ_CST), 1ull << (i + 1));
    }
    __atomic_exchange_n(&page->pending[0], 0, __ATOMIC_SEQ_CST);
    assert_int_equal(unvme_get_features(t.u, NVME_FEAT_NUM_QUEUES, 0, &dw0, NULL), 0);
    assert_int_equal(__atomic_load_n(&page->pending[0], __ATOMIC_SEQ_CST), 1ull); /* admin */
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Verified I/O with each wait mode; NOTIFY sleeps instead of spinning. */
static void wait_modes(void **state)
{
    static const enum unvme_wait_mode modes[] = {UNVME_WAIT_IRQ, UNVME_WAIT_NOTIFY};
    struct unvme_cpl cpl[4];

    (void)state;
    NEED_DEVICE();
    for (size_t m = 0; m < 2; m++) {
        struct unvme_opts o;
        uint64_t t0;
        double c0;

        test_opts(&o);
        o.wait = modes[m];
        drv_open(&o);
        for (unsigned k = 0; k < 20; k++) {
            struct unvme_queue *q = unvme_queue(t.u, k % 4);
            uint64_t slba = rnd() % (DISK_BLOCKS - 64);

            write_pattern(q, slba, 1 + (uint32_t)(rnd() % 64));
            verify_range(q, slba, 64);
        }
        t0 = vdx_now_ns();
        c0 = cpu_seconds();
        assert_int_equal(unvme_wait(unvme_queue(t.u, 0), cpl, 1, 4, 200), -ETIMEDOUT);
        assert_true(vdx_now_ns() - t0 >= 190000000ull);
        if (modes[m] == UNVME_WAIT_NOTIFY) {
            assert_true(cpu_seconds() - c0 < 0.1); /* slept in poll(2) */
        }
        drv_close();
    }
}

/* A command the controller never sees times out; a reset recovers. */
static void command_timeout_and_recovery(void **state)
{
    struct unvme_opts o;
    struct nvme_sqe del = {.cdw0 = NVME_ADM_DELETE_SQ, .cdw10 = 2};
    static uint8_t buf[LBA];
    struct unvme_queue *q;
    uint16_t st = 0xffff;
    uint64_t t0;

    (void)state;
    NEED_DEVICE();
    test_opts(&o);
    o.io_queues = 2;
    o.timeout_ms = 300;
    drv_open(&o);
    q = unvme_queue(t.u, 1);
    /* Delete SQ 2 behind the driver's back: its doorbell now rings nothing. */
    assert_int_equal(unvme_admin(t.u, &del, NULL, 0, NULL, &st), 0);
    assert_int_equal(st, 0);
    t0 = vdx_now_ns();
    assert_int_equal(unvme_read(q, 0, 1, buf, &st), -ETIMEDOUT);
    assert_true(vdx_now_ns() - t0 >= 290000000ull);
    assert_int_equal(unvme_inflight(q), 0);
    assert_int_equal(unvme_reset_controller(t.u), 0);
    verify_range(q, 0, 8);
    verify_range(unvme_queue(t.u, 0), 8, 8);
}

/* ---- Controller reset with commands outstanding ------------------------------------------- */

/*
 * Queue 16 writes on q0 and ring its doorbell (the controller runs them; their
 * completions wait in the CQ, not reaped), and 16 writes plus a zero-copy
 * read on q1 without ringing (the controller never sees them).
 */
static void queue_outstanding(struct unvme_queue *q0, struct unvme_queue *q1,
                              uint8_t wd[2][16][8 * LBA], void **zc)
{
    struct nvme_sqe c;

    for (unsigned k = 0; k < 16; k++) {
        fill_random(wd[0][k], sizeof(wd[0][k]));
        fill_random(wd[1][k], sizeof(wd[1][k]));
        unvme_cmd_rw(&c, NVME_IO_WRITE, 1, 20000 + k * 8, 8);
        assert_int_equal(unvme_submit_io(q0, &c, wd[0][k], sizeof(wd[0][k]), NULL), 0);
        unvme_cmd_rw(&c, NVME_IO_WRITE, 1, 30000 + k * 8, 8);
        assert_int_equal(unvme_submit_io(q1, &c, wd[1][k], sizeof(wd[1][k]), NULL), 0);
    }
    assert_int_equal(unvme_buf_alloc(q1, 0, zc), 0);
    unvme_cmd_rw(&c, NVME_IO_READ, 1, 0, 8);
    assert_int_equal(unvme_submit_buf(q1, &c, *zc, 8 * LBA, *zc), 0);
    assert_int_equal(unvme_kick(q0), 0);
}

/* n completions on q, each with error `err`. */
static void expect_completions(struct unvme_queue *q, int n, int err)
{
    struct unvme_cpl cpls[64];

    assert_int_equal(unvme_wait(q, cpls, (unsigned)n, 64, 5000), n);
    for (int k = 0; k < n; k++) {
        assert_int_equal(cpls[k].err, err);
        if (err == 0) {
            assert_int_equal(cpls[k].status, 0);
        }
    }
    assert_int_equal(unvme_inflight(q), 0);
}

static void reset_during_io(void **state)
{
    static uint8_t wd[2][16][8 * LBA];
    struct unvme_queue *q0, *q1;
    void *zc = NULL;

    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    q0 = unvme_queue(t.u, 0);
    q1 = unvme_queue(t.u, 1);
    queue_outstanding(q0, q1, wd, &zc);

    assert_int_equal(unvme_reset_controller(t.u), 0);

    /* q0: the controller completed them before the reset; the driver must
     * reap those completions, not cancel them. */
    expect_completions(q0, 16, 0);
    for (unsigned k = 0; k < 16; k++) {
        memcpy(g.shadow + (20000 + k * 8) * LBA, wd[0][k], sizeof(wd[0][k]));
    }
    /* q1: never seen by the controller: cancelled, disk untouched. */
    expect_completions(q1, 17, -ECANCELED);
    assert_int_equal(unvme_buf_free(q1, zc), 0);
    verify_range(q0, 20000, 128);
    verify_range(q1, 30000, 128);
    /* and verified I/O goes on on every queue */
    for (unsigned k = 0; k < 200; k++) {
        struct unvme_queue *q = unvme_queue(t.u, k % 4);
        uint64_t slba = rnd() % (DISK_BLOCKS - 64);

        write_pattern(q, slba, 1 + (uint32_t)(rnd() % 64));
        verify_range(q, slba, 64);
    }
}

/* Last test of a group: the whole disk is what the shadow says. */
static void whole_disk_matches_shadow(void **state)
{
    (void)state;
    NEED_DEVICE();
    drv_open(NULL);
    verify_range(unvme_queue(t.u, 0), 0, DISK_BLOCKS);
}

/* ---- Persistence: file-backed daemon, SIGKILL, restart ---------------------------------- */

struct extent {
    uint64_t slba;
    uint32_t nlb;
};

static void persistence_across_sigkill(void **state)
{
    char path[] = "/tmp/unvme-persist-XXXXXX";
    char spec[128];
    struct extent ext[24];
    uint8_t *img = NULL;
    uint16_t st = 0xffff;
    int fd;

    (void)state;
    NEED_DEVICE();
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    snprintf(spec, sizeof(spec), "sim:nvme,size=64M,file=%s", path);
    g.fx = (struct nfx){.unix_transport = true, .specs = {spec}, .nspecs = 1};
    assert_int_equal(nfx_start(&g.fx), 0);
    drv_open(NULL);
    img = calloc(1, DISK_BYTES);
    g.shadow = img;
    for (unsigned k = 0; k < 24; k++) {
        ext[k].nlb = 1 + (uint32_t)(rnd() % 64);
        ext[k].slba = (DISK_BLOCKS / 24) * k + rnd() % 1000;
        write_pattern(unvme_queue(t.u, k % 4), ext[k].slba, ext[k].nlb);
    }
    assert_int_equal(unvme_flush(unvme_queue(t.u, 0), &st), 0);
    assert_int_equal(st, 0);

    nfx_kill(&g.fx);
    assert_int_equal(unvme_read(unvme_queue(t.u, 0), 0, 1, img, &st), -ENODEV);
    drv_close(); /* fast against a dead dext */

    assert_int_equal(nfx_start(&g.fx), 0);
    drv_open(NULL);
    for (unsigned k = 0; k < 24; k++) {
        verify_range(unvme_queue(t.u, k % 4), ext[k].slba, ext[k].nlb + 8);
    }
    verify_range(unvme_queue(t.u, 0), DISK_BLOCKS - 128, 128); /* never written: zeros */
    drv_close();
    nfx_stop(&g.fx);
    g.shadow = NULL;
    free(img);
    unlink(path);
}

static int start_persistence(void **state)
{
    (void)state;
    memset(&g, 0, sizeof(g));
    g.rng = 0x2545f4914f6cdd1dull ^ (uint64_t)getpid();
    vdx_log_set(NULL, NULL, VDX_LOG_ERR);
    g.skip = !nvme_available(g.why, sizeof(g.why));
    return 0;
}

static int stop_persistence(void **state)
{
    (void)state;
    return 0;
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(prp_builder),
        cmocka_unit_test(identify_parsers),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(controller_init, test_teardown),
        cmocka_unit_test_teardown(identify, test_teardown),
        cmocka_unit_test_teardown(open_errors, test_teardown),
        cmocka_unit_test_teardown(shutdown_handshake, test_teardown),
        cmocka_unit_test_teardown(random_rw_verified, test_teardown),
        cmocka_unit_test_teardown(queues_in_parallel, test_teardown),
        cmocka_unit_test_teardown(async_qd32_copy_and_zero_copy, test_teardown),
        cmocka_unit_test_teardown(async_limits, test_teardown),
        cmocka_unit_test_teardown(flush, test_teardown),
        cmocka_unit_test_teardown(write_zeroes_and_deallocate, test_teardown),
        cmocka_unit_test_teardown(compare, test_teardown),
        cmocka_unit_test_teardown(error_statuses, test_teardown),
        cmocka_unit_test_teardown(interrupts_per_vector, test_teardown),
        cmocka_unit_test_teardown(wait_modes, test_teardown),
        cmocka_unit_test_teardown(command_timeout_and_recovery, test_teardown),
        cmocka_unit_test_teardown(reset_during_io, test_teardown),
        cmocka_unit_test_teardown(whole_disk_matches_shadow, test_teardown),
    };
    const struct CMUnitTest persist[] = {
        cmocka_unit_test(persistence_across_sigkill),
    };
    int fails = 0;

    fails += cmocka_run_group_tests_name("pure", pure, NULL, NULL);
    fails += cmocka_run_group_tests_name("local-identity", tests, start_local_identity,
                                         group_stop);
    fails += cmocka_run_group_tests_name("local-dart", tests, start_local_dart, group_stop);
    fails += cmocka_run_group_tests_name("unix-identity", tests, start_unix_identity,
                                         group_stop);
    fails += cmocka_run_group_tests_name("persistence", persist, start_persistence,
                                         stop_persistence);
    if (fails == 0 && g.skip) {
        fprintf(stderr, "sim:nvme is not available (%s): driver tests skipped\n", g.why);
        return 77; /* meson: SKIP */
    }
    return fails ? 1 : 0;
}
