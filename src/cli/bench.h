/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext bench dext`: the measurements. Each measurement runs
 * o->repetitions times and reports the median of its repetitions; a
 * repetition is o->iterations operations timed with CLOCK_MONOTONIC.
 *
 * Errors: every bench_* function prints its own error (once, naming what to
 * do) and returns a CLI exit code; CLI_EXIT_OK on success.
 */
#ifndef VFIO_DEXT_CLI_BENCH_H
#define VFIO_DEXT_CLI_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "cli/cli.h"

#define BENCH_MAX_REPS 101

struct bench_opts {
    unsigned repetitions;
    uint64_t iterations;
};

/* Median of v[0..n) (sorts v). n >= 1. */
double bench_median(double *v, unsigned n);

/* Open a client on the endpoint's first device. */
dext_status bench_connect_first(struct vdx_endpoint *ep, struct vdx_conn **conn);

/* Per-call ns of ConfigRead(vendor id) through the local transport. */
int bench_local_rtt(const struct bench_opts *o, double *ns);

/*
 * The same call through the unix transport to a `vfio-dext dext` child, and
 * a socketpair + fork ping-pong with one CALL frame's byte counts (the
 * floor), alternating batch by batch.
 */
struct bench_rtt_result {
    double unix_ns;
    double raw_ns;
    double ratio;     /* median of per-repetition unix/raw */
    size_t req_bytes; /* raw request, = one CALL frame of ConfigRead */
    size_t rep_bytes; /* raw reply */
};
int bench_unix_vs_raw(const struct bench_opts *o, struct bench_rtt_result *r);

/* RegisterDMA + UnregisterDMA pairs of 16 KiB per second, local transport. */
int bench_dma_rate(const struct bench_opts *o, enum dext_iommu_mode mode, double *per_s);

/*
 * Interrupts through the mapped IRQ state page: latency (device raise ->
 * pending bit seen) with one interrupt in flight, and the rate of interrupts
 * raised and drained per second with up to 64 vectors in flight.
 */
struct bench_irq_result {
    double latency_p50_ns;
    double latency_p99_ns;
    double rate_per_s;
};
int bench_irq(const struct bench_opts *o, struct bench_irq_result *r);

#endif /* VFIO_DEXT_CLI_BENCH_H */
