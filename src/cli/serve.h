/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Serving one dext device over vfio-user: the pieces `vfio-dext serve` and
 * `vfio-dext run` share. A struct cli_serve holds the endpoint (an
 * in-process dext or a daemon), the device connection, the passthrough
 * backend and the vfio-user server; the caller owns the event loop and
 * polls the two descriptors cli_serve_pollfds() fills.
 *
 * Errors are reported once, here, on stderr under the caller's command name
 * (CONVENTIONS 3); functions return a CLI exit code.
 *
 * Thread-safety: none; one thread sets up, steps and releases.
 */
#ifndef VFIO_DEXT_CLI_SERVE_H
#define VFIO_DEXT_CLI_SERVE_H

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli/cli.h"
#include "vfio-user/server.h"
#include "vfio/conn_table.h"
#include "vfio/passthru.h"

struct cli_serve_opts {
    const char *cmd;    /* command name for messages ("serve", "run") */
    const char *bdf;    /* the device; NULL: the dext's first device */
    const char *socket; /* the vfio-user socket to create */
    const char *dext;   /* a daemon: NULL (default runtime dir) or unix[:DIR] */
    const char *local;  /* non-NULL: an in-process dext with this device SPEC */
    enum dext_iommu_mode iommu; /* with local */
};

/* Everything held, released in reverse by cli_serve_release(). */
struct cli_serve {
    const char *cmd;       /* for messages */
    char bdf[CLI_BDF_LEN]; /* the device served */
    bool connected;        /* a VMM was attached at the last step */
    struct cli_target target;
    struct dext *local;
    struct vdx_endpoint *ep;
    struct vdx_conn_table *conns; /* shared connections per device (seed §4.9) */
    struct vdx_conn *conn;        /* a reference held in conns */
    struct vdx_passthru *pt;
    struct vdx_vu_server *srv;
};

/*
 * Open the endpoint, connect to and take over the device, listen on the
 * socket. On failure the message is printed and what was set up stays in
 * *s for cli_serve_release(). *s must be zeroed first.
 */
int cli_serve_setup(const struct cli_serve_opts *o, struct cli_serve *s);

/* Destroy in reverse order; safe on a partly set up or zeroed *s. */
void cli_serve_release(struct cli_serve *s);

/* Fill p[0] (vfio-user server) and p[1] (dext interrupts) for poll(). */
#define CLI_SERVE_NFDS 2
void cli_serve_pollfds(const struct cli_serve *s, struct pollfd p[CLI_SERVE_NFDS]);

/*
 * Handle what poll() reported in p. When a VMM attaches or goes away, prints
 * one line on stdout (on detach: what it still held, which must be nothing).
 * Returns 0 to go on, or an exit code (the dext's interrupts are gone, the
 * server failed).
 */
int cli_serve_handle(struct cli_serve *s, const struct pollfd p[CLI_SERVE_NFDS]);

/* One line of counters on f: messages, interrupts, config filter, DMA. */
void cli_serve_print_stats(const struct cli_serve *s, FILE *f);

#endif /* VFIO_DEXT_CLI_SERVE_H */
