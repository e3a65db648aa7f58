/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the command files: messages, parsing, reaching a dext. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dext/core.h"

volatile sig_atomic_t cli_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

static void set_signals(void (*stop)(int), void (*pipe)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = pipe;
    sigaction(SIGPIPE, &sa, NULL);
}

void cli_signals_install(void)
{
    cli_stop_requested = 0;
    set_signals(on_stop_signal, SIG_IGN);
}

void cli_signals_restore(void)
{
    set_signals(SIG_DFL, SIG_DFL);
}

static void vmessage(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "vfio-dext %s: ", cmd);
    vfprintf(stderr, fmt, ap);
}

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmessage(cmd, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmessage(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see: vfio-dext %s --help)\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_getopt_error(const char *cmd, int opt, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (opt == ':') {
        return cli_usage_error(cmd, "option '%s' needs a value", arg);
    }
    if (optopt > 0 && optopt < 128 && arg[0] == '-' && arg[1] != '-') {
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    }
    return cli_usage_error(cmd, "unknown option '%s'", arg);
}

enum { OPT_DJ_DEXT = 256, OPT_DJ_JSON };

static const struct option dext_json_opts[] = {
    {"dext", required_argument, NULL, OPT_DJ_DEXT},
    {"json", no_argument, NULL, OPT_DJ_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cli_parse_dext_json(const char *cmd, const char *usage, int argc, char **argv,
                        const char **uri, bool *json)
{
    int opt;

    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", dext_json_opts, NULL)) != -1) {
        if (opt == OPT_DJ_DEXT) {
            *uri = optarg;
        } else if (opt == OPT_DJ_JSON) {
            *json = true;
        } else if (opt == 'h') {
            return cli_help(usage);
        } else {
            return cli_getopt_error(cmd, opt, argv);
        }
    }
    if (optind < argc) {
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }
    return -1;
}

int cli_help(const char *text)
{
    fputs(text, stdout);
    return CLI_EXIT_OK;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (!s || !*s || *s == '-') {
        return -EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || !end || *end) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
    static const char units[] = "KMGT";
    char *end = NULL;
    unsigned long long v;
    const char *u;

    if (!s || !*s || *s == '-') {
        return -EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s) {
        return -EINVAL;
    }
    if (*end) {
        u = strchr(units, *end);
        if (!u || end[1] != '\0') {
            return -EINVAL;
        }
        for (const char *p = units; p <= u; p++) {
            if (v > UINT64_MAX / 1024) {
                return -EINVAL;
            }
            v *= 1024;
        }
    }
    *out = v;
    return 0;
}

int cli_parse_iommu(const char *s, enum dext_iommu_mode *out)
{
    if (strcmp(s, "identity") == 0) {
        *out = DEXT_IOMMU_IDENTITY;
        return 0;
    }
    if (strcmp(s, "dart") == 0) {
        *out = DEXT_IOMMU_DART;
        return 0;
    }
    return -EINVAL;
}

const char *cli_iommu_name(enum dext_iommu_mode mode)
{
    return mode == DEXT_IOMMU_DART ? "dart" : "identity";
}

const char *cli_bdf_str(const struct vdx_device_desc *id, char *buf, size_t len)
{
    snprintf(buf, len, "%04x:%02x:%02x.%x", id->domain, id->bus, id->slot, id->fn);
    return buf;
}

/* ---- Reaching a dext ------------------------------------------------------ */

int cli_target_parse(const char *cmd, const char *uri, struct cli_target *t)
{
    const char *dir;
    char def[PATH_MAX];

    if (!uri || strcmp(uri, "unix") == 0) {
        dir = vdx_default_runtime_dir(def, sizeof(def));
    } else if (strncmp(uri, "unix:", 5) == 0 && uri[5]) {
        dir = uri + 5;
    } else {
        return cli_usage_error(
            cmd, "--dext '%s' is not a dext address: use unix or unix:DIR", uri);
    }
    if (strlen(dir) >= sizeof(t->dir)) {
        return cli_usage_error(cmd, "runtime dir '%s' is too long", dir);
    }
    snprintf(t->dir, sizeof(t->dir), "%s", dir);
    snprintf(t->uri, sizeof(t->uri), "unix:%s", dir);
    t->default_dir = (dir == def);
    return CLI_EXIT_OK;
}

int cli_target_open(const char *cmd, const struct cli_target *t, struct vdx_endpoint **ep)
{
    dext_status st = vdx_endpoint_parse(t->uri, ep);

    if (st != DEXT_OK) {
        return cli_report_dext_error(cmd, t, "cannot use this dext address", st);
    }
    return CLI_EXIT_OK;
}

int cli_report_dext_error(const char *cmd, const struct cli_target *t, const char *what,
                          dext_status st)
{
    if (st == DEXT_E_NOT_ATTACHED && t) {
        bool own_dir = !t->default_dir;

        cli_error(cmd,
                  "no dext is running at %s (start one with: vfio-dext dext --device "
                  "sim:testdev%s%s)",
                  t->dir, own_dir ? " --runtime-dir " : "", own_dir ? t->dir : "");
        return CLI_EXIT_UNREACHABLE;
    }
    if (st == DEXT_E_NOT_ATTACHED) {
        cli_error(cmd, "%s: the dext went away", what);
        return CLI_EXIT_UNREACHABLE;
    }
    cli_error(cmd, "%s: %s", what, vdx_status_str(st));
    return CLI_EXIT_FAILED;
}

int cli_local_create(const char *cmd, const char *spec, enum dext_iommu_mode iommu,
                     struct dext **d, struct vdx_endpoint **ep)
{
    struct dext_opts opts;
    char err[256] = "";
    int rc;

    *d = NULL;
    *ep = NULL;
    dext_opts_default(&opts);
    opts.iommu = iommu;
    rc = dext_create(&opts, d);
    if (rc < 0) {
        cli_error(cmd, "cannot create an in-process dext: %s", strerror(-rc));
        return CLI_EXIT_FAILED;
    }
    rc = dext_add_device(*d, spec, err, sizeof(err));
    if (rc < 0) {
        cli_error(cmd, "cannot add device '%s': %s", spec, err[0] ? err : strerror(-rc));
        goto out_destroy;
    }
    if (vdx_endpoint_local(*d, ep) != DEXT_OK) {
        cli_error(cmd, "cannot create a local endpoint (out of memory?)");
        goto out_destroy;
    }
    return CLI_EXIT_OK;

out_destroy:
    dext_destroy(*d);
    *d = NULL;
    return CLI_EXIT_FAILED;
}

void cli_local_destroy(struct dext *d, struct vdx_endpoint *ep)
{
    vdx_endpoint_free(ep);
    dext_destroy(d);
}
