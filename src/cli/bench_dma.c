/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Benchmark: DMA map + unmap (RegisterDMARegion + UnregisterDMARegion) of a
 * 16 KiB region per second, through the local transport, in a dext of the
 * given IOMMU mode. This is the companion device's hot path: one pair per
 * guest dma_map/dma_unmap in DART mode.
 */
#include <stdio.h>

#include "cli/bench.h"
#include "common/log.h"
#include "dext/core.h"

#define DMA_REGION_SIZE (16u * 1024u)
#define DMA_KEY         0x100000000ull

static int time_pairs(const struct bench_opts *o, struct vdx_conn *conn, void *mem,
                      double *per_s)
{
    double reps[BENCH_MAX_REPS];

    for (unsigned r = 0; r < o->repetitions; r++) {
        uint64_t t0 = vdx_now_ns();

        for (uint64_t i = 0; i < o->iterations; i++) {
            if (vdx_register_dma(conn, DMA_KEY, mem, DMA_REGION_SIZE, NULL, NULL) !=
                    DEXT_OK ||
                vdx_unregister_dma(conn, DMA_KEY) != DEXT_OK) {
                cli_error("bench", "DMA map/unmap pair %llu failed", (unsigned long long)i);
                return CLI_EXIT_FAILED;
            }
        }
        reps[r] = (double)o->iterations * 1e9 / (double)(vdx_now_ns() - t0);
    }
    *per_s = bench_median(reps, o->repetitions);
    return CLI_EXIT_OK;
}

static int run_on(const struct bench_opts *o, struct vdx_endpoint *ep, double *per_s)
{
    struct vdx_conn *conn = NULL;
    void *mem = NULL;
    dext_status st = bench_connect_first(ep, &conn);
    int rc = CLI_EXIT_FAILED;

    if (st == DEXT_OK) {
        st = vdx_claim(conn);
    }
    if (st == DEXT_OK) {
        st = vdx_shm_alloc(DMA_REGION_SIZE, &mem);
    }
    if (st == DEXT_OK) {
        rc = time_pairs(o, conn, mem, per_s);
    } else {
        cli_error("bench", "cannot set up the DMA benchmark: %s", vdx_status_str(st));
    }
    vdx_shm_free(mem);
    vdx_disconnect(conn);
    return rc;
}

int bench_dma_rate(const struct bench_opts *o, enum dext_iommu_mode mode, double *per_s)
{
    struct vdx_endpoint *ep = NULL;
    struct dext *d = NULL;
    int rc = cli_local_create("bench", "sim:testdev", mode, &d, &ep);

    if (rc == CLI_EXIT_OK) {
        rc = run_on(o, ep, per_s);
    }
    cli_local_destroy(d, ep);
    return rc;
}
