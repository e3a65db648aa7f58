/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext dext`: a dext in the foreground, serving its devices to clients
 * over the unix transport until SIGINT or SIGTERM.
 *
 * The event loop is ours (the server library owns none): step the server,
 * waiting in its epoll fd, until SIGINT or SIGTERM sets the stop flag. A
 * signal interrupts the wait (-EINTR); one that lands between the flag check
 * and the wait is noticed when the wait times out (STOP_CHECK_MS), so there is
 * no extra syscall per request on the serving path.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"
#include "dext/core.h"
#include "transport/unix_server.h"

static const char usage[] =
    "Usage: vfio-dext dext --device SPEC [--device SPEC]... [OPTIONS]\n"
    "\n"
    "Run a dext in the foreground: own the devices and serve them to clients\n"
    "(probe, QEMU's vfio-user server, ...) on RUNTIME_DIR/dext.sock until\n"
    "SIGINT or SIGTERM.\n"
    "\n"
    "Options:\n"
    "  --device SPEC        a device to own, e.g. sim:testdev or\n"
    "                       sim:testdev,bdf=0000:00:02.0,vectors=32 (repeatable,\n"
    "                       at least one)\n"
    "  --runtime-dir DIR    where to create dext.sock (default: $VFIO_DEXT_RUNTIME_DIR,\n"
    "                       else $XDG_RUNTIME_DIR/vfio-dext, else /run/vfio-dext\n"
    "                       for root, else /tmp/vfio-dext-UID)\n"
    "  --iommu MODE         identity (bus address = registered key, default) or\n"
    "                       dart (the dext chooses bus addresses, 16 KiB granule)\n"
    "  --dart-aperture SIZE bytes the DART may map at once (multiple of 16K,\n"
    "                       16K..1T; default 1536M)\n"
    "  --dart-max-mappings N  live DART mappings at once (1..16777216; default 65536)\n"
    "  --allow-uid UID      also accept clients running as UID (repeatable)\n"
    "  --allow-any-uid      accept clients of every user\n"
    "  --verbose            log debug messages on stderr\n"
    "  -h, --help           show this help\n"
    "\n"
    "Prints one line when ready, then serves. Exit codes: 0 stopped by a signal,\n"
    "1 could not start or serving failed, 2 usage error.\n";

#define STOP_CHECK_MS 250


enum {
    OPT_DEVICE = 256,
    OPT_RUNTIME_DIR,
    OPT_IOMMU,
    OPT_DART_APERTURE,
    OPT_DART_MAX_MAPPINGS,
    OPT_ALLOW_UID,
    OPT_ALLOW_ANY_UID,
    OPT_VERBOSE,
};

static const struct option long_opts[] = {
    {"device", required_argument, NULL, OPT_DEVICE},
    {"runtime-dir", required_argument, NULL, OPT_RUNTIME_DIR},
    {"iommu", required_argument, NULL, OPT_IOMMU},
    {"dart-aperture", required_argument, NULL, OPT_DART_APERTURE},
    {"dart-max-mappings", required_argument, NULL, OPT_DART_MAX_MAPPINGS},
    {"allow-uid", required_argument, NULL, OPT_ALLOW_UID},
    {"allow-any-uid", no_argument, NULL, OPT_ALLOW_ANY_UID},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int add_uid(struct cli_dext_opts *o, const char *s)
{
    uint64_t uid;

    if (cli_parse_u64(s, &uid) < 0 || uid >= (uint64_t)(uid_t)-1) {
        return cli_usage_error("dext", "--allow-uid '%s' is not a user id", s);
    }
    if (o->n_allowed_uids >= VDX_UNIX_MAX_ALLOWED_UIDS) {
        return cli_usage_error("dext", "at most %u --allow-uid options",
                               VDX_UNIX_MAX_ALLOWED_UIDS);
    }
    o->allowed_uids[o->n_allowed_uids++] = (uid_t)uid;
    return CLI_EXIT_OK;
}

static int add_device(struct cli_dext_opts *o, const char *spec)
{
    if (o->n_devices >= CLI_MAX_DEVICES) {
        return cli_usage_error("dext", "at most %u --device options", CLI_MAX_DEVICES);
    }
    o->devices[o->n_devices++] = spec;
    return CLI_EXIT_OK;
}

static int parse_dart(struct cli_dext_opts *o, int opt, const char *s)
{
    uint64_t v;

    if (opt == OPT_DART_APERTURE) {
        if (cli_parse_size(s, &v) < 0 || v < DEXT_DART_GRANULE || v > (1ull << 40) ||
            v % DEXT_DART_GRANULE) {
            return cli_usage_error("dext", "--dart-aperture '%s': a multiple of 16K "
                                   "between 16K and 1T", s);
        }
        o->dart_aperture = v;
    } else {
        if (cli_parse_u64(s, &v) < 0 || v == 0 || v > (1u << 24)) {
            return cli_usage_error("dext", "--dart-max-mappings '%s': 1..16777216", s);
        }
        o->dart_max_mappings = v;
    }
    return -1;
}

/* Returns -1 to go on, or an exit code (help shown, or usage error). */
static int parse_one(struct cli_dext_opts *o, int opt, char **argv)
{
    switch (opt) {
    case OPT_DART_APERTURE:
    case OPT_DART_MAX_MAPPINGS:
        return parse_dart(o, opt, optarg);
    case OPT_DEVICE:
        return add_device(o, optarg) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
    case OPT_RUNTIME_DIR:
        o->runtime_dir = optarg;
        return -1;
    case OPT_IOMMU:
        if (cli_parse_iommu(optarg, &o->iommu) < 0) {
            return cli_usage_error("dext", "--iommu '%s': use identity or dart", optarg);
        }
        return -1;
    case OPT_ALLOW_UID:
        return add_uid(o, optarg) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
    case OPT_ALLOW_ANY_UID:
        o->allow_any_uid = true;
        return -1;
    case OPT_VERBOSE:
        o->verbose = true;
        return -1;
    case 'h':
        return cli_help(usage);
    default:
        return cli_getopt_error("dext", opt, argv);
    }
}

static int parse_args(int argc, char **argv, struct cli_dext_opts *o)
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
        return cli_usage_error("dext", "unexpected argument '%s'", argv[optind]);
    }
    if (o->n_devices == 0) {
        return cli_usage_error("dext", "no device given: add --device sim:testdev");
    }
    return -1;
}

int cli_cmd_dext(int argc, char **argv)
{
    struct cli_dext_opts o;
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0) {
        return rc;
    }
    return cli_dext_serve(&o);
}

/* ---- Serving -------------------------------------------------------------- */

static int create_dext(const struct cli_dext_opts *o, struct dext **out)
{
    struct dext_opts opts;
    char err[256];
    int rc;

    dext_opts_default(&opts);
    opts.iommu = o->iommu;
    if (o->dart_aperture) {
        opts.dart_aperture = o->dart_aperture;
    }
    if (o->dart_max_mappings) {
        opts.dart_max_mappings = (uint32_t)o->dart_max_mappings;
    }
    rc = dext_create(&opts, out);
    if (rc < 0) {
        cli_error("dext", "cannot create the dext: %s", strerror(-rc));
        return CLI_EXIT_FAILED;
    }
    for (unsigned i = 0; i < o->n_devices; i++) {
        err[0] = '\0';
        rc = dext_add_device(*out, o->devices[i], err, sizeof(err));
        if (rc < 0) {
            cli_error("dext", "cannot add device '%s': %s", o->devices[i],
                      err[0] ? err : strerror(-rc));
            dext_destroy(*out);
            *out = NULL;
            return CLI_EXIT_FAILED;
        }
    }
    return CLI_EXIT_OK;
}

static int create_server(const struct cli_dext_opts *o, const char *dir, struct dext *d,
                         struct vdx_unix_server **srv)
{
    struct vdx_unix_server_opts so;
    int rc;

    memset(&so, 0, sizeof(so));
    so.runtime_dir = dir;
    so.allow_any_uid = o->allow_any_uid;
    so.n_allowed_uids = o->n_allowed_uids;
    memcpy(so.allowed_uids, o->allowed_uids, sizeof(so.allowed_uids));
    rc = vdx_unix_server_create(d, &so, srv);
    if (rc == -EADDRINUSE) {
        cli_error("dext",
                  "another dext is already serving %s/%s (stop it, or pass another "
                  "--runtime-dir)",
                  dir, VDX_UNIX_SOCKET_NAME);
        return CLI_EXIT_FAILED;
    }
    if (rc < 0) {
        cli_error("dext",
                  "cannot serve on %s/%s: %s (check the directory exists or can "
                  "be created, and is yours with mode 0700)",
                  dir, VDX_UNIX_SOCKET_NAME, strerror(-rc));
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

/* Serve until a signal; returns an exit code. */
static int serve_loop(struct vdx_unix_server *srv)
{
    while (!cli_stop_requested) {
        int rc = vdx_unix_server_step(srv, STOP_CHECK_MS);

        if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
            cli_error("dext", "serving failed: %s", strerror(-rc));
            return CLI_EXIT_FAILED;
        }
    }
    return CLI_EXIT_OK;
}

int cli_dext_serve(const struct cli_dext_opts *o)
{
    char defdir[PATH_MAX];
    const char *dir = o->runtime_dir;
    struct vdx_unix_server *srv = NULL;
    struct dext *d = NULL;
    int rc;

    if (!dir) {
        dir = vdx_default_runtime_dir(defdir, sizeof(defdir));
    }
    vdx_log_set(NULL, NULL, o->verbose ? VDX_LOG_DEBUG : VDX_LOG_WARN);
    cli_signals_install();
    rc = create_dext(o, &d);
    if (rc != CLI_EXIT_OK) {
        goto out_signals;
    }
    rc = create_server(o, dir, d, &srv);
    if (rc != CLI_EXIT_OK) {
        goto out_dext;
    }
    printf("vfio-dext dext: serving %u device(s) on %s/%s (iommu %s)\n", o->n_devices, dir,
           VDX_UNIX_SOCKET_NAME, cli_iommu_name(o->iommu));
    fflush(stdout);
    rc = serve_loop(srv);
    vdx_unix_server_destroy(srv);
out_dext:
    dext_destroy(d);
out_signals:
    cli_signals_restore();
    return rc;
}
