/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext serve`: serve one dext-owned PCI device to QEMU (vfio-user-pci)
 * on a vfio-user socket, through the passthrough backend (src/vfio/).
 *
 * The event loop is ours: one poll() over the vfio-user server's fd and the
 * backend's interrupt fd, until SIGINT or SIGTERM sets the stop flag (the
 * wait is bounded by STOP_CHECK_MS, so a signal landing between the check
 * and the wait is noticed).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"
#include "vfio-user/server.h"
#include "vfio/passthru.h"

static const char usage[] =
    "Usage: vfio-dext serve BDF --socket PATH [--dext unix[:DIR] | --local SPEC]\n"
    "                       [--iommu identity|dart] [--verbose]\n"
    "\n"
    "Serve the device BDF, owned by a dext, to QEMU over vfio-user on PATH, until\n"
    "SIGINT or SIGTERM. QEMU attaches it with\n"
    "  -device '{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"PATH\"}}'\n"
    "and needs shared guest memory (-object memory-backend-memfd,...) for DMA.\n"
    "\n"
    "Options:\n"
    "  --socket PATH     the vfio-user socket to create (required)\n"
    "  --dext URI        the dext daemon: unix (default runtime dir) or unix:DIR\n"
    "  --local SPEC      run the dext in this process with one device from SPEC,\n"
    "                    e.g. sim:testdev or sim:nvme,size=16M\n"
    "  --iommu MODE      with --local: identity (default) or dart\n"
    "  --verbose         log debug messages on stderr\n"
    "  -h, --help        show this help\n"
    "\n"
    "Prints one line when ready. Exit codes: 0 stopped by a signal, 1 could not\n"
    "start or serving failed, 2 usage error, 3 the dext cannot be reached.\n";

#define STOP_CHECK_MS 250

/* Set by SIGINT/SIGTERM: a signal handler has no context argument. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct serve_opts {
    const char *bdf;
    const char *socket;
    const char *dext; /* NULL: default runtime dir */
    const char *local;
    enum dext_iommu_mode iommu;
    bool iommu_set;
    bool verbose;
};

enum { OPT_SOCKET = 256, OPT_DEXT, OPT_LOCAL, OPT_IOMMU, OPT_VERBOSE };

static const struct option long_opts[] = {
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"dext", required_argument, NULL, OPT_DEXT},
    {"local", required_argument, NULL, OPT_LOCAL},
    {"iommu", required_argument, NULL, OPT_IOMMU},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Returns -1 to go on, or an exit code. */
static int parse_one(struct serve_opts *o, int opt, char **argv)
{
    switch (opt) {
    case OPT_SOCKET:
        o->socket = optarg;
        return -1;
    case OPT_DEXT:
        o->dext = optarg;
        return -1;
    case OPT_LOCAL:
        o->local = optarg;
        return -1;
    case OPT_IOMMU:
        if (cli_parse_iommu(optarg, &o->iommu) < 0) {
            return cli_usage_error("serve", "--iommu '%s': use identity or dart", optarg);
        }
        o->iommu_set = true;
        return -1;
    case OPT_VERBOSE:
        o->verbose = true;
        return -1;
    case 'h':
        return cli_help(usage);
    default:
        return cli_getopt_error("serve", opt, argv);
    }
}

static int check_args(const struct serve_opts *o)
{
    if (o->bdf == NULL) {
        return cli_usage_error("serve", "no device given: add a BDF such as 0000:00:01.0");
    }
    if (o->socket == NULL) {
        return cli_usage_error("serve", "no socket given: add --socket PATH");
    }
    if (o->dext != NULL && o->local != NULL) {
        return cli_usage_error("serve", "--dext and --local exclude each other");
    }
    if (o->iommu_set && o->local == NULL) {
        return cli_usage_error("serve", "--iommu needs --local (a daemon sets its own "
                                        "mode: vfio-dext dext --iommu)");
    }
    return -1;
}

static int parse_args(int argc, char **argv, struct serve_opts *o)
{
    int opt, rc;

    memset(o, 0, sizeof(*o));
    o->iommu = DEXT_IOMMU_IDENTITY;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        rc = parse_one(o, opt, argv);
        if (rc >= 0) {
            return rc;
        }
    }
    if (optind < argc) {
        o->bdf = argv[optind++];
    }
    if (optind < argc) {
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    }
    return check_args(o);
}

/* ---- Setup ------------------------------------------------------------------------ */

/* Everything serve holds, released in reverse by serve_release(). */
struct serve_ctx {
    struct cli_target target;
    struct dext *local;
    struct vdx_endpoint *ep;
    struct vdx_conn *conn;
    struct vdx_passthru *pt;
    struct vdx_vu_server *srv;
};

static int open_endpoint(const struct serve_opts *o, struct serve_ctx *c)
{
    int rc;

    if (o->local != NULL) {
        return cli_local_create("serve", o->local, o->iommu, &c->local, &c->ep);
    }
    rc = cli_target_parse("serve", o->dext, &c->target);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    return cli_target_open("serve", &c->target, &c->ep);
}

static int connect_device(const struct serve_opts *o, struct serve_ctx *c)
{
    dext_status st = vdx_connect(c->ep, o->bdf, &c->conn);

    if (st == DEXT_E_NOT_FOUND) {
        cli_error("serve", "the dext owns no device %s (see: vfio-dext list-devices)",
                  o->bdf);
        return CLI_EXIT_FAILED;
    }
    if (st != DEXT_OK) {
        return cli_report_dext_error("serve", &c->target, "cannot connect to the device",
                                     st);
    }
    return CLI_EXIT_OK;
}

static int create_backend(const struct serve_opts *o, struct serve_ctx *c)
{
    int rc = vdx_passthru_create(c->conn, o->bdf, &c->pt);

    if (rc == -EEXIST) {
        cli_error("serve", "%s: another client already set up its interrupts (is "
                  "another serve running for it?)", o->bdf);
        return CLI_EXIT_FAILED;
    }
    if (rc < 0) {
        cli_error("serve", "%s: cannot claim the device or set up its interrupts: %s",
                  o->bdf, strerror(-rc));
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

static int create_server(const struct serve_opts *o, struct serve_ctx *c)
{
    struct vdx_vu_server_opts so;
    int rc;

    vdx_vu_server_opts_default(&so);
    so.name = o->bdf;
    rc = vdx_vu_server_create_opts(o->socket, &so, vdx_passthru_ops(), c->pt, &c->srv);
    if (rc == -EADDRINUSE) {
        cli_error("serve", "another server is already listening on %s", o->socket);
    } else if (rc == -EEXIST) {
        cli_error("serve", "%s exists and is not a socket (remove it or pick another "
                  "--socket)", o->socket);
    } else if (rc < 0) {
        cli_error("serve", "cannot listen on %s: %s", o->socket, strerror(-rc));
    }
    return rc < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static void serve_release(struct serve_ctx *c)
{
    vdx_vu_server_destroy(c->srv);
    vdx_passthru_destroy(c->pt);
    vdx_disconnect(c->conn);
    if (c->local != NULL) {
        cli_local_destroy(c->local, c->ep);
    } else {
        vdx_endpoint_free(c->ep);
    }
}

static int serve_setup(const struct serve_opts *o, struct serve_ctx *c)
{
    int rc = open_endpoint(o, c);

    if (rc == CLI_EXIT_OK) {
        rc = connect_device(o, c);
    }
    if (rc == CLI_EXIT_OK) {
        rc = create_backend(o, c);
    }
    if (rc == CLI_EXIT_OK) {
        rc = create_server(o, c);
    }
    return rc;
}

/* ---- Serving ---------------------------------------------------------------------- */

static void set_signals(void (*handler)(int))
{
    struct sigaction sa;

    stop_requested = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = handler == SIG_DFL ? SIG_DFL : SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* One wait and whatever became ready. Returns 0 or an exit code > 0. */
static int serve_once(struct serve_ctx *c)
{
    struct pollfd p[2] = {{.fd = vdx_vu_server_fd(c->srv), .events = POLLIN},
                          {.fd = vdx_passthru_irq_fd(c->pt), .events = POLLIN}};
    int rc = poll(p, 2, STOP_CHECK_MS);

    if (rc < 0) {
        return errno == EINTR ? 0 : CLI_EXIT_FAILED;
    }
    if (p[1].revents) {
        rc = vdx_passthru_step(c->pt);
        if (rc < 0) {
            cli_error("serve", "lost the dext's interrupts: %s", strerror(-rc));
            return CLI_EXIT_FAILED;
        }
    }
    if (p[0].revents) {
        rc = vdx_vu_server_step(c->srv, 0);
        if (rc < 0 && rc != -EINTR) {
            cli_error("serve", "serving failed: %s", strerror(-rc));
            return CLI_EXIT_FAILED;
        }
    }
    return 0;
}

static int serve_loop(struct serve_ctx *c)
{
    while (!stop_requested) {
        int rc = serve_once(c);

        if (rc != 0) {
            return rc;
        }
    }
    return CLI_EXIT_OK;
}

int cli_cmd_serve(int argc, char **argv)
{
    struct serve_opts o;
    struct serve_ctx c;
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0) {
        return rc;
    }
    memset(&c, 0, sizeof(c));
    vdx_log_set(NULL, NULL, o.verbose ? VDX_LOG_DEBUG : VDX_LOG_WARN);
    set_signals(on_stop_signal);
    rc = serve_setup(&o, &c);
    if (rc == CLI_EXIT_OK) {
        printf("vfio-dext serve: serving %s on %s (%u interrupt vectors)\n", o.bdf,
               o.socket, vdx_passthru_vectors(c.pt));
        fflush(stdout);
        rc = serve_loop(&c);
    }
    serve_release(&c);
    set_signals(SIG_DFL);
    return rc;
}
