/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Benchmark: interrupt latency and rate through the IRQ state page.
 *
 * Two threads over one local connection to sim:testdev:
 *  - the raiser ("bench-raiser") raises vectors 0..nv-1 in turn with an MMIO
 *    write of the RAISE register, stamping the time just before; it raises a
 *    vector again only once the drainer has consumed its previous raise, so
 *    nothing coalesces and every raise is one interrupt;
 *  - the drainer (the calling thread) spins on the page's pending words,
 *    swapping them to 0 (__atomic_exchange_n) and, for each bit, records
 *    latency = now - stamp and releases the vector to the raiser.
 * Latency comes from a run with one vector (one interrupt in flight: nothing
 * queues behind anything); rate from a run cycling up to 64 vectors (up to
 * 64 in flight). Rate = raises drained per second.
 *
 * Shared state (struct irq_run): stamp[v] is written by the raiser before the
 * raise and read by the drainer after it saw the bit (the dext's atomic OR
 * and the MMIO call order them); done[v] is written by the drainer (release)
 * and read by the raiser (acquire); abort is set by either side on failure.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "common/log.h"
#include "dext/core.h"
#include "devices/testdev.h"

#define IRQ_MAX_INFLIGHT   64u /* vectors cycled: those of pending word 0 */
#define IRQ_STALL_NS       (2ull * 1000000000ull)
#define SPINS_BEFORE_YIELD 256u /* then yield: the peer may share our CPU */

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield" ::: "memory")
#else
#define cpu_relax() __asm__ volatile("" ::: "memory")
#endif

/* Busy-wait step: spin a while, then give the CPU away once per call. */
static void relax(unsigned *spins)
{
    if (++*spins >= SPINS_BEFORE_YIELD) {
        *spins = 0;
        sched_yield();
    } else {
        cpu_relax();
    }
}

struct irq_run {
    struct vdx_conn *conn;
    struct dext_irq_page *page;
    uint32_t bar0;
    unsigned nvec; /* vectors set up, capped at 64 */
    unsigned nv;   /* vectors cycled in this run, 1..nvec */
    uint64_t n;    /* raises in this run */
    uint64_t stamp[IRQ_MAX_INFLIGHT];
    uint64_t issued[IRQ_MAX_INFLIGHT]; /* raiser only */
    uint64_t done[IRQ_MAX_INFLIGHT];   /* drainer writes, raiser reads */
    int abort;
    uint64_t *lat; /* n latencies */
    uint64_t drained;
};

/* Wait until the drainer consumed every earlier raise of v. */
static bool wait_drained(struct irq_run *r, unsigned v)
{
    uint64_t deadline = 0;
    unsigned spins = 0;

    while (__atomic_load_n(&r->done[v], __ATOMIC_ACQUIRE) != r->issued[v]) {
        relax(&spins);
        if (__atomic_load_n(&r->abort, __ATOMIC_RELAXED)) {
            return false;
        }
        if (deadline == 0) {
            deadline = vdx_now_ns() + IRQ_STALL_NS;
        } else if (vdx_now_ns() > deadline) {
            return false;
        }
    }
    return true;
}

static void *raiser_main(void *opaque)
{
    struct irq_run *r = opaque;

    for (uint64_t i = 0; i < r->n; i++) {
        unsigned v = (unsigned)(i % r->nv);

        if (!wait_drained(r, v)) {
            break;
        }
        r->issued[v]++;
        __atomic_store_n(&r->stamp[v], vdx_now_ns(), __ATOMIC_RELEASE);
        if (vdx_mmio_write(r->conn, r->bar0, TESTDEV_REG_RAISE, 4, v) != DEXT_OK) {
            __atomic_store_n(&r->abort, 1, __ATOMIC_RELAXED);
            break;
        }
    }
    return NULL;
}

static void drain_word(struct irq_run *r, uint64_t bits, uint64_t now)
{
    while (bits) {
        unsigned v = (unsigned)__builtin_ctzll(bits);

        bits &= bits - 1;
        if (v >= r->nv || r->drained >= r->n) {
            continue;
        }
        r->lat[r->drained++] = now - __atomic_load_n(&r->stamp[v], __ATOMIC_ACQUIRE);
        __atomic_store_n(&r->done[v], r->done[v] + 1, __ATOMIC_RELEASE);
    }
}

/* Spin until n interrupts were drained; false on a stall or raiser failure. */
static bool drainer(struct irq_run *r)
{
    uint64_t last = vdx_now_ns();
    unsigned spins = 0;

    while (r->drained < r->n) {
        uint64_t *word = &r->page->pending[0];
        uint64_t bits = 0, now;

        /* read before swapping: a swap on every spin would steal the line
         * from the dext's atomic OR */
        if (__atomic_load_n(word, __ATOMIC_RELAXED)) {
            bits = __atomic_exchange_n(word, 0, __ATOMIC_ACQ_REL);
        }
        now = vdx_now_ns();
        if (bits) {
            drain_word(r, bits, now);
            last = now;
            spins = 0;
            continue;
        }
        relax(&spins);
        if (__atomic_load_n(&r->abort, __ATOMIC_RELAXED) || now - last > IRQ_STALL_NS) {
            return false;
        }
    }
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* One run cycling nv vectors: latency p50/p99 and rate. */
static int irq_once(struct irq_run *r, unsigned nv, double *p50, double *p99, double *rate)
{
    pthread_t th;
    uint64_t t0;
    bool ok;

    r->nv = nv;
    memset(r->stamp, 0, sizeof(r->stamp));
    memset(r->issued, 0, sizeof(r->issued));
    memset(r->done, 0, sizeof(r->done));
    r->abort = 0;
    r->drained = 0;
    t0 = vdx_now_ns();
    if (pthread_create(&th, NULL, raiser_main, r) != 0) {
        cli_error("bench", "cannot start the raiser thread");
        return CLI_EXIT_FAILED;
    }
    pthread_setname_np(th, "bench-raiser");
    ok = drainer(r);
    *rate = (double)r->drained * 1e9 / (double)(vdx_now_ns() - t0);
    __atomic_store_n(&r->abort, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    if (!ok) {
        cli_error("bench",
                  "interrupts stopped arriving after %llu of %llu raises "
                  "(see: vfio-dext probe --local sim:testdev)",
                  (unsigned long long)r->drained, (unsigned long long)r->n);
        return CLI_EXIT_FAILED;
    }
    qsort(r->lat, r->n, sizeof(r->lat[0]), cmp_u64);
    *p50 = (double)r->lat[r->n / 2];
    *p99 = (double)r->lat[r->n * 99 / 100];
    return CLI_EXIT_OK;
}

static int irq_reps(const struct bench_opts *o, struct irq_run *r,
                    struct bench_irq_result *res)
{
    double p50[BENCH_MAX_REPS], p99[BENCH_MAX_REPS], rate[BENCH_MAX_REPS], unused;

    r->n = o->iterations;
    r->lat = calloc(r->n, sizeof(r->lat[0]));
    if (!r->lat) {
        cli_error("bench", "out of memory for %llu latencies", (unsigned long long)r->n);
        return CLI_EXIT_FAILED;
    }
    for (unsigned i = 0; i < o->repetitions; i++) {
        if (irq_once(r, 1, &p50[i], &p99[i], &unused) != CLI_EXIT_OK ||
            irq_once(r, r->nvec, &unused, &unused, &rate[i]) != CLI_EXIT_OK) {
            free(r->lat);
            return CLI_EXIT_FAILED;
        }
    }
    free(r->lat);
    res->latency_p50_ns = bench_median(p50, o->repetitions);
    res->latency_p99_ns = bench_median(p99, o->repetitions);
    res->rate_per_s = bench_median(rate, o->repetitions);
    return CLI_EXIT_OK;
}

/* Claim, set up interrupts, map the page, find BAR0. */
static dext_status irq_prepare(struct irq_run *r)
{
    uint32_t nvec = 0;
    dext_status st = vdx_claim(r->conn);

    if (st == DEXT_OK) {
        st = vdx_setup_interrupts(r->conn, &nvec);
    }
    if (st == DEXT_OK) {
        st = vdx_map_irq_page(r->conn, &r->page);
    }
    if (st == DEXT_OK) {
        st = vdx_get_bar_info(r->conn, 0, &r->bar0, NULL, NULL);
    }
    r->nvec = nvec < IRQ_MAX_INFLIGHT ? nvec : IRQ_MAX_INFLIGHT;
    if (st == DEXT_OK && r->nvec == 0) {
        st = DEXT_E_NOT_FOUND;
    }
    return st;
}

int bench_irq(const struct bench_opts *o, struct bench_irq_result *res)
{
    struct vdx_endpoint *ep = NULL;
    struct irq_run r;
    struct dext *d = NULL;
    dext_status st;
    int rc = cli_local_create("bench", "sim:testdev", DEXT_IOMMU_IDENTITY, &d, &ep);

    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    memset(&r, 0, sizeof(r));
    st = bench_connect_first(ep, &r.conn);
    if (st == DEXT_OK) {
        st = irq_prepare(&r);
    }
    if (st == DEXT_OK) {
        rc = irq_reps(o, &r, res);
    } else {
        cli_error("bench", "cannot set up interrupts on sim:testdev: %s",
                  vdx_status_str(st));
        rc = CLI_EXIT_FAILED;
    }
    vdx_disconnect(r.conn);
    cli_local_destroy(d, ep);
    return rc;
}
