/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext bench nvme`: the unvme driver against sim:nvme in this process.
 *
 * Setup: an in-process dext (local transport, IOMMU identity) with
 * sim:nvme,size=1G,queues=4 in RAM; the driver polls completions by phase
 * tag on one I/O queue with zero-copy buffers, so the hot path is memory
 * accesses plus two MMIO calls per batch (SQ tail, CQ head): no allocation,
 * no other syscall. The whole namespace is first written with a pattern
 * keyed by byte offset (so by LBA); every later write rewrites the same
 * pattern and every byte read is checked against it.
 *
 * Each phase keeps QD commands in flight: it reaps what completed, checks
 * (reads) or prepares (writes) those buffers, resubmits them all and rings
 * the doorbell once per batch. Time spent checking and preparing data is
 * measured per batch and left out of the rate: it is the benchmark's work,
 * not the driver's. A phase runs BENCH_NVME_REPS repetitions and reports the
 * median. memcpy_mbps is 128 KiB memcpy from a 256 MiB source (larger than
 * any cache, like the device's store) into 8 rotating buffers, the best of a
 * few alignments: the ceiling for a read that moves every byte once.
 */
#include "cli/bench_nvme.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/bench.h"
#include "common/log.h"
#include "dext/core.h"
#include "unvme/unvme.h"

#define CMD              "bench nvme" /* as messages name it */
#define NVME_BENCH_SPEC  "sim:nvme,size=1G,queues=4"
#define BENCH_NVME_REPS  5u
#define MAX_QD           32u
#define XFER_4K          4096u
#define XFER_128K        (128u * 1024u)
#define SEQ_QD           8u
#define MEMCPY_SRC_BYTES (256ull << 20)
#define PATTERN_SEED     0x5bd1e9955bd1e995ull
#define GOAL_IOPS_QD32   500000.0
#define GOAL_SEQ_RATIO   0.5
#define POLL_CHECK_MASK  1023u /* check the clock every 1024 empty polls */

static const char usage[] =
    "Usage: vfio-dext bench nvme [--json] [--seconds S]\n"
    "\n"
    "Measure the user-space NVMe driver (unvme) against a simulated NVMe SSD\n"
    "(sim:nvme, 1 GiB in RAM) in this process, and print each median beside\n"
    "its goal:\n"
    "  iops_4k_randread_qd1     4 KiB random reads, one in flight\n"
    "  iops_4k_randread_qd32    4 KiB random reads, 32 in flight\n"
    "  iops_4k_randwrite_qd32   4 KiB random writes, 32 in flight\n"
    "  mbps_128k_seqread        128 KiB sequential reads, 8 in flight (MB = 10^6 B)\n"
    "  mbps_128k_seqwrite       128 KiB sequential writes, 8 in flight\n"
    "  memcpy_mbps              baseline: memcpy of 128 KiB buffers, same run\n"
    "  seqread_vs_memcpy        mbps_128k_seqread / memcpy_mbps (goal >= 0.5)\n"
    "  randread_qd32_vs_goal    iops_4k_randread_qd32 / 500000 (goal >= 1)\n"
    "  verified                 every byte read matched what was written\n"
    "\n"
    "Options:\n"
    "  --json         print one JSON object\n"
    "  --seconds S    time per measurement (default 1; 0.05 to 600), split into\n"
    "                 5 repetitions whose median is reported\n"
    "  -h, --help     show this help\n"
    "\n"
    "Exit codes: 0 measured and verified (goals missed are reported, not\n"
    "failures), 1 a measurement could not run or data did not verify,\n"
    "2 usage error.\n";

/* ---- The data pattern: 64-bit words keyed by byte offset on the disk ------------- */

static void pattern_fill(void *buf, uint64_t byte_off, size_t len)
{
    uint64_t *w = buf;

    for (size_t i = 0; i < len / 8; i++) {
        w[i] = (byte_off + 8u * i) ^ PATTERN_SEED;
    }
}

static bool pattern_ok(const void *buf, uint64_t byte_off, size_t len)
{
    const uint64_t *w = buf;
    uint64_t bad = 0;

    for (size_t i = 0; i < len / 8; i++) {
        bad |= w[i] ^ ((byte_off + 8u * i) ^ PATTERN_SEED);
    }
    return bad == 0;
}

/* ---- One run of the driver -------------------------------------------------------- */

struct nb {
    struct unvme *u;
    struct unvme_queue *q;
    uint32_t lba_size;
    uint64_t nblocks;
    void *buf[MAX_QD];       /* zero-copy buffers, page aligned */
    uint64_t lba[MAX_QD];    /* what buf[i] holds or will hold */
    uint64_t seq_next;       /* next LBA of the sequential phases */
    uint64_t rng;
    uint64_t mismatches;     /* reads whose data did not verify */
    uint64_t failures;       /* commands with an error status */
    struct unvme_cpl cpl[MAX_QD];
};

struct phase {
    const char *key;
    uint8_t opc;
    uint32_t xfer;
    unsigned qd;
    bool seq;
    bool bytes;              /* report MB/s, else IO/s */
};

static uint64_t rnd(struct nb *b)
{
    uint64_t x = b->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return x;
}

/* The LBA of the next command of a phase. */
static uint64_t next_lba(struct nb *b, const struct phase *p)
{
    uint64_t per = p->xfer / b->lba_size;

    if (p->seq) {
        uint64_t l = b->seq_next;

        b->seq_next = l + per >= b->nblocks ? 0 : l + per;
        return l;
    }
    return (rnd(b) % (b->nblocks / per)) * per;
}

/* Point buffer i at its next LBA (and fill it, for writes); then queue it. */
static int submit_one(struct nb *b, const struct phase *p, unsigned i)
{
    struct nvme_sqe c;

    b->lba[i] = next_lba(b, p);
    if (p->opc == NVME_IO_WRITE) {
        pattern_fill(b->buf[i], b->lba[i] * b->lba_size, p->xfer);
    }
    unvme_cmd_rw(&c, p->opc, 1, b->lba[i], p->xfer / b->lba_size);
    return unvme_submit_buf(b->q, &c, b->buf[i], p->xfer, (void *)(uintptr_t)i);
}

/* Account a completion; reads are checked against the pattern. */
static void check_one(struct nb *b, const struct phase *p, const struct unvme_cpl *c)
{
    unsigned i = (unsigned)(uintptr_t)c->cookie;

    if (c->err || c->status) {
        b->failures++;
        return;
    }
    if (p->opc == NVME_IO_READ && !pattern_ok(b->buf[i], b->lba[i] * b->lba_size, p->xfer)) {
        b->mismatches++;
    }
}

struct rep_state {
    uint64_t done;      /* commands completed */
    uint64_t excluded;  /* ns spent checking and preparing data */
    bool stopping;      /* past the deadline: no resubmission */
};

/* One reaped batch: check, then resubmit, with the data work timed apart. */
static int handle_batch(struct nb *b, const struct phase *p, struct rep_state *s, int n,
                        uint64_t deadline)
{
    uint64_t t0 = vdx_now_ns(), t1;
    int rc = 0;

    s->stopping = s->stopping || t0 >= deadline;
    for (int k = 0; k < n; k++) {
        check_one(b, p, &b->cpl[k]);
        if (!s->stopping && rc == 0) {
            rc = submit_one(b, p, (unsigned)(uintptr_t)b->cpl[k].cookie);
        }
    }
    t1 = vdx_now_ns();
    s->excluded += t1 - t0;
    s->done += (uint64_t)n;
    return rc < 0 ? rc : unvme_kick(b->q);
}

/* One repetition of a phase for dur_ns. Returns the rate, or < 0 on error. */
static double run_rep(struct nb *b, const struct phase *p, uint64_t dur_ns)
{
    struct rep_state s = {0};
    uint64_t t0, deadline, end;
    unsigned empty = 0;
    int rc = 0;

    for (unsigned i = 0; i < p->qd && rc == 0; i++) {
        rc = submit_one(b, p, i);
    }
    t0 = vdx_now_ns();
    deadline = t0 + dur_ns;
    rc = rc ? rc : unvme_kick(b->q);
    while (rc == 0 && unvme_inflight(b->q)) {
        int n = unvme_poll(b->q, b->cpl, MAX_QD);

        if (n > 0) {
            rc = handle_batch(b, p, &s, n, deadline);
        } else if (n < 0) {
            rc = n;
        } else if ((++empty & POLL_CHECK_MASK) == 0 && vdx_now_ns() > deadline + 5000000000ull) {
            rc = -ETIMEDOUT; /* a command is lost: never hang */
        }
    }
    end = vdx_now_ns();
    if (rc < 0) {
        cli_error(CMD, "%s: %s", p->key, strerror(-rc));
        return -1.0;
    }
    return (double)(s.done * (p->bytes ? p->xfer : 1u)) /
           ((double)(end - t0 - s.excluded) / 1e9) / (p->bytes ? 1e6 : 1.0);
}

static double run_phase(struct nb *b, const struct phase *p, double seconds)
{
    double reps[BENCH_NVME_REPS];
    uint64_t dur = (uint64_t)(seconds * 1e9 / BENCH_NVME_REPS);

    for (unsigned r = 0; r < BENCH_NVME_REPS; r++) {
        reps[r] = run_rep(b, p, dur);
        if (reps[r] < 0) {
            return -1.0;
        }
    }
    return bench_median(reps, BENCH_NVME_REPS);
}

/* Write the pattern over the whole namespace (128 KiB, QD 8), not timed. */
static int fill_namespace(struct nb *b)
{
    const struct phase fill = {"fill", NVME_IO_WRITE, XFER_128K, SEQ_QD, true, true};
    uint64_t total = b->nblocks / (XFER_128K / b->lba_size), submitted = 0;
    int rc = 0;

    b->seq_next = 0;
    for (unsigned i = 0; i < SEQ_QD && rc == 0; i++, submitted++) {
        rc = submit_one(b, &fill, i);
    }
    rc = rc ? rc : unvme_kick(b->q);
    while (rc == 0 && unvme_inflight(b->q)) {
        int n = unvme_wait(b->q, b->cpl, 1, MAX_QD, 5000);

        for (int k = 0; k < n && rc == 0; k++) {
            check_one(b, &fill, &b->cpl[k]);
            if (submitted < total) {
                rc = submit_one(b, &fill, (unsigned)(uintptr_t)b->cpl[k].cookie);
                submitted++;
            }
        }
        rc = n < 0 ? n : (rc ? rc : unvme_kick(b->q));
    }
    b->seq_next = 0;
    return rc;
}

/* ---- memcpy baseline ------------------------------------------------------------- */

static double memcpy_rep(const uint8_t *src, uint8_t *dst, uint64_t dur_ns)
{
    uint64_t t0 = vdx_now_ns(), now = t0, bytes = 0, off = 0;
    unsigned slot = 0;

    while (now - t0 < dur_ns) {
        for (unsigned k = 0; k < 16; k++) {
            memcpy(dst + (size_t)slot * XFER_128K, src + off, XFER_128K);
            __asm__ volatile("" : : "r"(dst) : "memory"); /* keep the copy */
            slot = (slot + 1u) % SEQ_QD;
            off = off + XFER_128K >= MEMCPY_SRC_BYTES ? 0 : off + XFER_128K;
            bytes += XFER_128K;
        }
        now = vdx_now_ns();
    }
    return (double)bytes / ((double)(now - t0) / 1e9) / 1e6;
}

/*
 * memcpy speed depends on the relative alignment of source and destination
 * (on this kind of host a page-aligned source into a destination 16 bytes
 * past a page boundary is 8x slower). The ceiling is the best of a few
 * layouts, measured anew in each repetition.
 */
static const struct {
    unsigned src, dst;
} memcpy_layouts[] = {{0, 0}, {0, 64}, {64, 0}, {0, 2048}};

#define N_LAYOUTS (sizeof(memcpy_layouts) / sizeof(memcpy_layouts[0]))

static double memcpy_best(const uint8_t *src, uint8_t *dst, uint64_t dur_ns)
{
    double best = 0.0;

    for (size_t l = 0; l < N_LAYOUTS; l++) {
        double v = memcpy_rep(src + memcpy_layouts[l].src, dst + memcpy_layouts[l].dst,
                              dur_ns / N_LAYOUTS);

        best = v > best ? v : best;
    }
    return best;
}

static double memcpy_mbps(double seconds)
{
    size_t dst_len = (size_t)SEQ_QD * XFER_128K + 4096u;
    uint8_t *src = aligned_alloc(4096, MEMCPY_SRC_BYTES + 4096u);
    uint8_t *dst = aligned_alloc(4096, dst_len);
    double reps[BENCH_NVME_REPS], v = -1.0;

    if (src && dst) {
        memset(src, 0x5a, MEMCPY_SRC_BYTES + 4096u); /* fault every page in first */
        memset(dst, 0, dst_len);
        for (unsigned r = 0; r < BENCH_NVME_REPS; r++) {
            reps[r] = memcpy_best(src, dst, (uint64_t)(seconds * 1e9 / BENCH_NVME_REPS));
        }
        v = bench_median(reps, BENCH_NVME_REPS);
    } else {
        cli_error(CMD, "memcpy baseline: out of memory");
    }
    free(src);
    free(dst);
    return v;
}

/* ---- Results ------------------------------------------------------------------------- */

enum { M_QD1, M_QD32, M_WQD32, M_SEQR, M_SEQW, M_MEMCPY, M_COUNT };

struct results {
    double v[M_COUNT];
    bool verified;
    uint64_t mismatches, failures;
    const struct unvme_info *info;
};

static const struct phase phases[] = {
    [M_QD1] = {"iops_4k_randread_qd1", NVME_IO_READ, XFER_4K, 1, false, false},
    [M_QD32] = {"iops_4k_randread_qd32", NVME_IO_READ, XFER_4K, 32, false, false},
    [M_WQD32] = {"iops_4k_randwrite_qd32", NVME_IO_WRITE, XFER_4K, 32, false, false},
    [M_SEQR] = {"mbps_128k_seqread", NVME_IO_READ, XFER_128K, SEQ_QD, true, true},
    [M_SEQW] = {"mbps_128k_seqwrite", NVME_IO_WRITE, XFER_128K, SEQ_QD, true, true},
};

static double seq_ratio(const struct results *r)
{
    return r->v[M_MEMCPY] > 0 ? r->v[M_SEQR] / r->v[M_MEMCPY] : 0.0;
}

static double qd32_ratio(const struct results *r)
{
    return r->v[M_QD32] / GOAL_IOPS_QD32;
}

static void print_json(const struct results *r, double seconds)
{
    json_object *o = json_object_new_object(), *goal = json_object_new_object();
    json_object *met = json_object_new_object();
    char buf[32];

    for (unsigned m = 0; m < M_MEMCPY; m++) {
        json_object_object_add(o, phases[m].key, json_object_new_int64((int64_t)(r->v[m] + 0.5)));
    }
    json_object_object_add(o, "memcpy_mbps", json_object_new_int64((int64_t)(r->v[M_MEMCPY] + 0.5)));
    snprintf(buf, sizeof(buf), "%.3f", seq_ratio(r));
    json_object_object_add(o, "seqread_vs_memcpy", json_object_new_double_s(seq_ratio(r), buf));
    snprintf(buf, sizeof(buf), "%.3f", qd32_ratio(r));
    json_object_object_add(o, "randread_qd32_vs_goal",
                           json_object_new_double_s(qd32_ratio(r), buf));
    json_object_object_add(o, "verified", json_object_new_boolean(r->verified));
    json_object_object_add(goal, "seqread_vs_memcpy", json_object_new_string(">= 0.5"));
    json_object_object_add(goal, "iops_4k_randread_qd32", json_object_new_string(">= 500000"));
    json_object_object_add(met, "seqread_vs_memcpy",
                           json_object_new_boolean(seq_ratio(r) >= GOAL_SEQ_RATIO));
    json_object_object_add(met, "iops_4k_randread_qd32",
                           json_object_new_boolean(r->v[M_QD32] >= GOAL_IOPS_QD32));
    json_object_object_add(o, "goal", goal);
    json_object_object_add(o, "goal_met", met);
    snprintf(buf, sizeof(buf), "%.3g", seconds);
    json_object_object_add(o, "seconds_per_measurement", json_object_new_double_s(seconds, buf));
    json_object_object_add(o, "repetitions", json_object_new_int(BENCH_NVME_REPS));
    json_object_object_add(o, "max_xfer", json_object_new_int64(r->info->max_xfer));
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void print_row(const char *key, const char *value, const char *goal, const char *met)
{
    printf("%-26s %16s  %-12s %s\n", key, value, goal, met);
}

static void print_table(const struct results *r, double seconds)
{
    char v[48];

    print_row("metric", "median", "goal", "met");
    for (unsigned m = 0; m < M_MEMCPY; m++) {
        snprintf(v, sizeof(v), "%.0f %s", r->v[m], phases[m].bytes ? "MB/s" : "IO/s");
        print_row(phases[m].key, v, m == M_QD32 ? ">= 500000" : "-",
                  m == M_QD32 ? (r->v[m] >= GOAL_IOPS_QD32 ? "yes" : "NO") : "");
    }
    snprintf(v, sizeof(v), "%.0f MB/s", r->v[M_MEMCPY]);
    print_row("memcpy_mbps", v, "(baseline)", "");
    snprintf(v, sizeof(v), "%.3fx", seq_ratio(r));
    print_row("seqread_vs_memcpy", v, ">= 0.5", seq_ratio(r) >= GOAL_SEQ_RATIO ? "yes" : "NO");
    snprintf(v, sizeof(v), "%.3fx", qd32_ratio(r));
    print_row("randread_qd32_vs_goal", v, ">= 1", qd32_ratio(r) >= 1.0 ? "yes" : "NO");
    print_row("verified", r->verified ? "true" : "false", "true", r->verified ? "yes" : "NO");
    printf("\nmedians of %u repetitions of %.2f s; %s, driver max transfer %u bytes;\n"
           "data checking and preparation time excluded from the rates\n",
           BENCH_NVME_REPS, seconds / BENCH_NVME_REPS, NVME_BENCH_SPEC, r->info->max_xfer);
    if (!r->verified) {
        printf("%llu reads did not verify, %llu commands failed\n",
               (unsigned long long)r->mismatches, (unsigned long long)r->failures);
    }
}

/* ---- Driving it -------------------------------------------------------------------------- */

static int alloc_bufs(struct nb *b)
{
    for (unsigned i = 0; i < MAX_QD; i++) {
        int rc = unvme_buf_alloc(b->q, 0, &b->buf[i]);

        if (rc < 0) {
            cli_error(CMD, "cannot reserve driver buffers: %s", strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static int run_phases(struct nb *b, double seconds, struct results *r)
{
    int rc = fill_namespace(b);

    if (rc < 0) {
        cli_error(CMD, "cannot fill the namespace: %s", strerror(-rc));
        return CLI_EXIT_FAILED;
    }
    for (unsigned m = 0; m < M_MEMCPY; m++) {
        r->v[m] = run_phase(b, &phases[m], seconds);
        if (r->v[m] < 0) {
            return CLI_EXIT_FAILED;
        }
    }
    r->v[M_MEMCPY] = memcpy_mbps(seconds);
    r->mismatches = b->mismatches;
    r->failures = b->failures;
    r->verified = b->mismatches == 0 && b->failures == 0;
    return r->v[M_MEMCPY] < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static int open_driver(struct vdx_conn *conn, struct nb *b)
{
    struct unvme_opts o;
    int rc;

    unvme_opts_default(&o);
    o.io_queues = 1;
    o.queue_depth = 64;
    o.max_xfer = XFER_128K;
    rc = unvme_open(conn, &o, &b->u);
    if (rc < 0) {
        cli_error(CMD, "cannot bring the NVMe controller up: %s", strerror(-rc));
        return rc;
    }
    b->q = unvme_queue(b->u, 0);
    b->lba_size = unvme_info(b->u)->lba_size;
    b->nblocks = unvme_info(b->u)->nsze;
    if (unvme_info(b->u)->max_xfer < XFER_128K) {
        cli_error(CMD, "the controller's MDTS is below 128 KiB");
        return -EINVAL;
    }
    return alloc_bufs(b);
}

static int bench_run(double seconds, bool json)
{
    struct vdx_endpoint *ep = NULL;
    struct vdx_conn *conn = NULL;
    struct dext *d = NULL;
    struct results r = {0};
    struct nb *b = calloc(1, sizeof(*b));
    int rc = b ? cli_local_create(CMD, NVME_BENCH_SPEC, DEXT_IOMMU_IDENTITY, &d, &ep)
               : CLI_EXIT_FAILED;
    dext_status st = rc == CLI_EXIT_OK ? bench_connect_first(ep, &conn) : DEXT_OK;

    if (st != DEXT_OK) {
        cli_error(CMD, "cannot open a client on sim:nvme: %s", vdx_status_str(st));
        rc = CLI_EXIT_FAILED;
    }
    if (rc == CLI_EXIT_OK) {
        b->rng = 0x9e3779b97f4a7c15ull;
        rc = open_driver(conn, b) < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
    }
    if (rc == CLI_EXIT_OK) {
        rc = run_phases(b, seconds, &r);
        r.info = unvme_info(b->u);
    }
    if (rc == CLI_EXIT_OK) {
        if (json) {
            print_json(&r, seconds);
        } else {
            print_table(&r, seconds);
        }
        rc = r.verified ? CLI_EXIT_OK : CLI_EXIT_FAILED;
    }
    unvme_close(b ? b->u : NULL);
    vdx_disconnect(conn);
    cli_local_destroy(d, ep);
    free(b);
    return rc;
}

/* ---- Arguments -------------------------------------------------------------------------- */

enum { OPT_JSON = 256, OPT_SECONDS };

static const struct option long_opts[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"seconds", required_argument, NULL, OPT_SECONDS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_seconds(const char *s, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= 0.05 && v <= 600.0)) {
        return cli_usage_error(CMD, "--seconds '%s': give a number from 0.05 to 600", s);
    }
    *out = v;
    return -1;
}

/* -1: go on; else the exit code. */
static int parse_args(int argc, char **argv, double *seconds, bool *json)
{
    int opt, rc;

    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        if (opt == OPT_JSON) {
            *json = true;
            continue;
        }
        if (opt == OPT_SECONDS) {
            rc = parse_seconds(optarg, seconds);
        } else if (opt == 'h') {
            rc = cli_help(usage);
        } else {
            rc = cli_getopt_error(CMD, opt, argv);
        }
        if (rc >= 0) {
            return rc;
        }
    }
    if (optind < argc) {
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    }
    return -1;
}

int vdx_bench_nvme_main(int argc, char **argv)
{
    double seconds = 1.0;
    bool json = false;
    int rc = parse_args(argc, argv, &seconds, &json);

    if (rc >= 0) {
        return rc;
    }
    vdx_log_set(NULL, NULL, VDX_LOG_ERR);
    return bench_run(seconds, json);
}
