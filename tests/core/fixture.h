/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test fixture: a dext with sim:testdev (or another SPEC) reached through
 * the local transport (in-process) or the unix transport (a daemon in a
 * forked child process serving a temporary runtime dir, which dies with its
 * parent), in identity or DART IOMMU mode.
 */
#ifndef VFIO_DEXT_TEST_FIXTURE_H
#define VFIO_DEXT_TEST_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

#include "dext/core.h"
#include "vfio-dext/client.h"

struct fixture {
    bool unix_transport;
    const char *spec;       /* the device */
    enum dext_iommu_mode mode;
    struct dext *dext;      /* local only */
    pid_t daemon;           /* unix only */
    char dir[64];           /* unix only: runtime dir */
    char uri[96];
    struct vdx_endpoint *ep;
};

/* Start the fixture; returns 0 or -1 (with a message on stderr). */
int fixture_start(struct fixture *f, bool unix_transport, enum dext_iommu_mode mode);
/* The same with one device from `spec` (e.g. "sim:nvme,size=16M") instead of
 * sim:testdev; its BDF must be the default 0000:00:01.0 for fixture_connect. */
int fixture_start_spec(struct fixture *f, bool unix_transport, enum dext_iommu_mode mode,
                       const char *spec);
void fixture_stop(struct fixture *f);
/* Connect to the test device (0000:00:01.0); aborts the test on failure. */
struct vdx_conn *fixture_connect(struct fixture *f);
/* The dext's status as parsed JSON (caller puts). */
struct json_object *fixture_status(struct fixture *f);
/* A counter of the first device from the status JSON. */
uint64_t fixture_counter(struct fixture *f, const char *name);

#endif
