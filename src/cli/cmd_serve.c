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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/serve.h"
#include "common/log.h"

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
    "Prints one line when ready, one when a VMM attaches or detaches (with what\n"
    "it still held) and the counters when stopped. Exit codes: 0 stopped by a\n"
    "signal, 1 could not start or serving failed, 2 usage error, 3 the dext\n"
    "cannot be reached.\n";

#define STOP_CHECK_MS 250

struct serve_opts {
    struct cli_serve_opts s;
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
        o->s.socket = optarg;
        return -1;
    case OPT_DEXT:
        o->s.dext = optarg;
        return -1;
    case OPT_LOCAL:
        o->s.local = optarg;
        return -1;
    case OPT_IOMMU:
        if (cli_parse_iommu(optarg, &o->s.iommu) < 0) {
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
    if (o->s.bdf == NULL) {
        return cli_usage_error("serve", "no device given: add a BDF such as 0000:00:01.0");
    }
    if (o->s.socket == NULL) {
        return cli_usage_error("serve", "no socket given: add --socket PATH");
    }
    if (o->s.dext != NULL && o->s.local != NULL) {
        return cli_usage_error("serve", "--dext and --local exclude each other");
    }
    if (o->iommu_set && o->s.local == NULL) {
        return cli_usage_error("serve", "--iommu needs --local (a daemon sets its own "
                                        "mode: vfio-dext dext --iommu)");
    }
    return -1;
}

static int parse_args(int argc, char **argv, struct serve_opts *o)
{
    int opt, rc;

    memset(o, 0, sizeof(*o));
    o->s.cmd = "serve";
    o->s.iommu = DEXT_IOMMU_IDENTITY;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        rc = parse_one(o, opt, argv);
        if (rc >= 0) {
            return rc;
        }
    }
    if (optind < argc) {
        o->s.bdf = argv[optind++];
    }
    if (optind < argc) {
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    }
    return check_args(o);
}

/* ---- Serving ---------------------------------------------------------------------- */

static int serve_loop(struct cli_serve *s)
{
    struct pollfd p[CLI_SERVE_NFDS];
    int rc;

    while (!cli_stop_requested) {
        cli_serve_pollfds(s, p);
        rc = poll(p, CLI_SERVE_NFDS, STOP_CHECK_MS);
        if (rc < 0 && errno != EINTR) {
            cli_error("serve", "poll: %s", strerror(errno));
            return CLI_EXIT_FAILED;
        }
        rc = rc > 0 ? cli_serve_handle(s, p) : 0;
        if (rc != 0) {
            return rc;
        }
    }
    return CLI_EXIT_OK;
}

int cli_cmd_serve(int argc, char **argv)
{
    struct serve_opts o;
    struct cli_serve s;
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0) {
        return rc;
    }
    memset(&s, 0, sizeof(s));
    vdx_log_set(NULL, NULL, o.verbose ? VDX_LOG_DEBUG : VDX_LOG_WARN);
    cli_signals_install();
    rc = cli_serve_setup(&o.s, &s);
    if (rc == CLI_EXIT_OK) {
        printf("vfio-dext serve: serving %s on %s (%u interrupt vectors)\n", s.bdf,
               o.s.socket, vdx_passthru_vectors(s.pt));
        fflush(stdout);
        rc = serve_loop(&s);
        cli_serve_print_stats(&s, stdout);
    }
    cli_serve_release(&s);
    cli_signals_restore();
    return rc;
}
