/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext probe BDF`: run every check of probe.h against one device, over a
 * running dext (--dext) or an in-process one (--local), and report them.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/probe.h"
#include "common/log.h"
#include "dext/core.h"
#include "dext/device.h"

static const char usage[] =
    "Usage: vfio-dext probe BDF [--dext unix[:DIR] | --local SPEC [--iommu MODE]]\n"
    "                           [--json]\n"
    "\n"
    "Check every selector of the dext contract against the device BDF\n"
    "(e.g. 0000:00:01.0): identity, config space, BARs, MMIO, DMA buffers and\n"
    "regions, interrupts and reset. Prints one line per check:\n"
    "  PASS sel  N NAME: what was checked (value seen)\n"
    "and ends with 'N passed, M failed'. Checks that need to drive the device\n"
    "(raise an interrupt, run a DMA copy) run on sim:testdev only and are\n"
    "SKIPped elsewhere. Terminate (selector 2) is never called.\n"
    "\n"
    "Options:\n"
    "  --dext unix[:DIR]   probe through a running dext (default: unix, the default\n"
    "                      runtime dir)\n"
    "  --local SPEC        probe an in-process dext owning SPEC (e.g. sim:testdev);\n"
    "                      no daemon needed; BDF may then be omitted\n"
    "  --iommu MODE        with --local: identity (default) or dart\n"
    "  --verbose           with --local: show the in-process dext's log\n"
    "  --json              print "
    "{\"checks\":[{\"selector\",\"name\",\"result\",\"detail\"}],\n"
    "                      \"passed\":N,\"failed\":M,\"skipped\":K}\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit codes: 0 every check passed or was skipped, 1 a check failed or the\n"
    "device is not there, 2 usage error, 3 the dext cannot be reached.\n";

static const char *const sel_names[DEXT_SEL_COUNT] = {
    [DEXT_SEL_GET_IDENTITY] = "GetIdentity",
    [DEXT_SEL_CLAIM] = "Claim",
    [DEXT_SEL_TERMINATE] = "Terminate",
    [DEXT_SEL_ALLOCATE_DMA_BUFFER] = "AllocateDMABuffer",
    [DEXT_SEL_FREE_DMA_BUFFER] = "FreeDMABuffer",
    [DEXT_SEL_REGISTER_DMA_REGION] = "RegisterDMARegion",
    [DEXT_SEL_UNREGISTER_DMA_REGION] = "UnregisterDMARegion",
    [DEXT_SEL_PROBE_DMA_REGION] = "ProbeDMARegion",
    [DEXT_SEL_CONFIG_READ] = "ConfigRead",
    [DEXT_SEL_CONFIG_WRITE] = "ConfigWrite",
    [DEXT_SEL_GET_BAR_INFO] = "GetBARInfo",
    [DEXT_SEL_MMIO_READ] = "MMIORead",
    [DEXT_SEL_MMIO_WRITE] = "MMIOWrite",
    [DEXT_SEL_SETUP_INTERRUPTS] = "SetupInterrupts",
    [DEXT_SEL_CHECK_INTERRUPT] = "CheckInterrupt",
    [DEXT_SEL_WAIT_INTERRUPT] = "WaitInterrupt",
    [DEXT_SEL_SET_IRQ_MASK] = "SetIRQMask",
    [DEXT_SEL_RESET_DEVICE] = "ResetDevice",
};

static const probe_check_fn probe_checks[] = {
    probe_check_identity,     probe_check_config_ids,    probe_check_config_widths,
    probe_check_config_write, probe_check_not_open,      probe_check_claim,
    probe_check_bar_info,     probe_check_bar_synthesis, probe_check_map_bars,
    probe_check_mmio,         probe_check_dma_buffer,    probe_check_dma_regions,
    probe_check_dma_copy,     probe_check_irq_setup,     probe_check_irq_mask,
    probe_check_irq_notify,   probe_check_reset,         probe_check_terminate,
};

/* ---- Reporting ------------------------------------------------------------ */

const char *probe_sel_name(int sel)
{
    if (sel < 0 || sel >= DEXT_SEL_COUNT || !sel_names[sel]) {
        return "?";
    }
    return sel_names[sel];
}

const char *probe_size_str(uint64_t size, char *buf, size_t len)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;

    while (size >= 1024 && size % 1024 == 0 && u < 4) {
        size /= 1024;
        u++;
    }
    snprintf(buf, len, "%llu %s", (unsigned long long)size, units[u]);
    return buf;
}

static void count(struct probe *p, enum probe_result r)
{
    if (r == PROBE_PASS) {
        p->passed++;
    } else if (r == PROBE_FAIL) {
        p->failed++;
    } else {
        p->skipped++;
    }
}

static void add_json_check(struct probe *p, int sel, const char *name, enum probe_result r,
                           const char *detail)
{
    static const char *const results[] = {"pass", "fail", "skip"};
    json_object *o = json_object_new_object();

    json_object_object_add(o, "selector", sel < 0 ? NULL : json_object_new_int(sel));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "result", json_object_new_string(results[r]));
    json_object_object_add(o, "detail", json_object_new_string(detail));
    json_object_array_add(p->checks, o);
}

void probe_report(struct probe *p, int sel, const char *name, enum probe_result r,
                  const char *fmt, ...)
{
    static const char *const words[] = {"PASS", "FAIL", "SKIP"};
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (!name) {
        name = probe_sel_name(sel);
    }
    count(p, r);
    if (p->json) {
        add_json_check(p, sel, name, r, detail);
    } else if (sel < 0) {
        printf("%s sel  - %s: %s\n", words[r], name, detail);
    } else {
        printf("%s sel %2d %s: %s\n", words[r], sel, name, detail);
    }
}

void probe_expect_status(struct probe *p, int sel, const char *what, dext_status st,
                         dext_status want)
{
    char got[64];

    if (st == want) {
        probe_report(p, sel, NULL, PROBE_PASS, "%s%s%s", what, st == DEXT_OK ? "" : ": ",
                     st == DEXT_OK ? "" : vdx_status_str(st));
        return;
    }
    snprintf(got, sizeof(got), "%s", vdx_status_str(st));
    probe_report(p, sel, NULL, PROBE_FAIL, "%s: got %s, expected %s", what, got,
                 vdx_status_str(want));
}

const char *probe_err(dext_status st)
{
    static char buf[96];

    if (st == DEXT_OK) {
        return "";
    }
    snprintf(buf, sizeof(buf), "; %s", vdx_status_str(st));
    return buf;
}

bool probe_skip_if_in_use(struct probe *p, int sel, const char *name, const char *what)
{
    if (!p->claimed_by_other) {
        return false;
    }
    probe_report(p, sel, name, PROBE_SKIP,
                 "%s: the device is in use by another client; not disturbing it", what);
    return true;
}

bool probe_skip_unless_testdev(struct probe *p, int sel, const char *name, const char *what)
{
    if (probe_skip_if_in_use(p, sel, name, what)) {
        return true;
    }
    if (p->testdev) {
        return false;
    }
    probe_report(p, sel, name, PROBE_SKIP,
                 "%s: needs sim:testdev to drive the device (this is %04x:%04x)", what,
                 p->id.vendor, p->id.device);
    return true;
}

bool probe_skip_unless_claimed(struct probe *p, int sel, const char *what)
{
    if (p->claimed) {
        return false;
    }
    probe_report(p, sel, NULL, PROBE_SKIP, "%s: needs a claim, and Claim failed", what);
    return true;
}

/* ---- sim:testdev register access ----------------------------------------- */

dext_status probe_td_read(struct probe *p, uint32_t reg, unsigned width, uint64_t *val)
{
    return vdx_mmio_read(p->conn, p->bars[0].mem_idx, reg, width, val);
}

dext_status probe_td_write(struct probe *p, uint32_t reg, unsigned width, uint64_t val)
{
    return vdx_mmio_write(p->conn, p->bars[0].mem_idx, reg, width, val);
}

/* ---- The command ---------------------------------------------------------- */

struct probe_args {
    const char *bdf;
    const char *dext;
    const char *local;
    enum dext_iommu_mode iommu;
    bool iommu_given;
    bool json;
    bool verbose;
};

enum { OPT_DEXT = 256, OPT_LOCAL, OPT_IOMMU, OPT_JSON, OPT_VERBOSE };

static const struct option long_opts[] = {
    {"dext", required_argument, NULL, OPT_DEXT},
    {"local", required_argument, NULL, OPT_LOCAL},
    {"iommu", required_argument, NULL, OPT_IOMMU},
    {"json", no_argument, NULL, OPT_JSON},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Returns -1 to go on, or an exit code. */
static int parse_one(struct probe_args *a, int opt, char **argv)
{
    switch (opt) {
    case OPT_DEXT:
        a->dext = optarg;
        return -1;
    case OPT_LOCAL:
        a->local = optarg;
        return -1;
    case OPT_IOMMU:
        if (cli_parse_iommu(optarg, &a->iommu) < 0) {
            return cli_usage_error("probe", "--iommu '%s': use identity or dart", optarg);
        }
        a->iommu_given = true;
        return -1;
    case OPT_JSON:
        a->json = true;
        return -1;
    case OPT_VERBOSE:
        a->verbose = true;
        return -1;
    case 'h':
        return cli_help(usage);
    default:
        return cli_getopt_error("probe", opt, argv);
    }
}

static int check_args(struct probe_args *a, int argc, char **argv)
{
    if (optind < argc) {
        a->bdf = argv[optind++];
    }
    if (optind < argc) {
        return cli_usage_error("probe", "unexpected argument '%s'", argv[optind]);
    }
    if (a->dext && a->local) {
        return cli_usage_error("probe", "use either --dext or --local, not both");
    }
    if (a->iommu_given && !a->local) {
        return cli_usage_error("probe", "--iommu applies to --local only (a daemon's "
                                        "mode is set by: vfio-dext dext --iommu)");
    }
    if (!a->bdf && !a->local) {
        return cli_usage_error("probe", "which device? give its BDF as vfio-dext "
                                        "list-devices shows it, e.g. 0000:00:01.0");
    }
    return -1;
}

static int parse_args(int argc, char **argv, struct probe_args *a)
{
    int opt, rc;

    memset(a, 0, sizeof(*a));
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        rc = parse_one(a, opt, argv);
        if (rc >= 0) {
            return rc;
        }
    }
    return check_args(a, argc, argv);
}

/* Resources of one probe run, released by probe_env_close(). */
struct probe_env {
    struct cli_target target;
    bool remote;
    struct dext *local;
    struct vdx_endpoint *ep;
};

static int probe_env_open(const struct probe_args *a, struct probe_env *env)
{
    int rc;

    memset(env, 0, sizeof(*env));
    if (a->local) {
        /* The in-process dext logs here: keep the warnings the probe's own
         * refusal checks provoke (duplicate key, IOMMU fault) out of the way. */
        vdx_log_set(NULL, NULL, a->verbose ? VDX_LOG_DEBUG : VDX_LOG_ERR);
        return cli_local_create("probe", a->local, a->iommu, &env->local, &env->ep);
    }
    env->remote = true;
    rc = cli_target_parse("probe", a->dext, &env->target);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    return cli_target_open("probe", &env->target, &env->ep);
}

static void probe_env_close(struct probe_env *env)
{
    if (env->local) {
        cli_local_destroy(env->local, env->ep);
    } else {
        vdx_endpoint_free(env->ep);
    }
}

static int report_error(const struct probe_env *env, const char *what, dext_status st)
{
    return cli_report_dext_error("probe", env->remote ? &env->target : NULL, what, st);
}

static void list_bdfs(const struct vdx_device_desc *devs, size_t n, char *buf, size_t len)
{
    char bdf[CLI_BDF_LEN];
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                                 cli_bdf_str(&devs[i], bdf, sizeof(bdf)));
    }
    if (n == 0) {
        snprintf(buf, len, "no devices");
    }
}

static bool same_bdf(const struct vdx_device_desc *a, const struct vdx_device_desc *b)
{
    return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot &&
           a->fn == b->fn;
}

/* Find the device to probe among the dext's devices; fills p->want. */
static int find_device(const struct probe_args *a, const struct vdx_device_desc *devs,
                       size_t n, struct probe *p)
{
    if (a->bdf && vdx_parse_bdf(a->bdf, &p->want.domain, &p->want.bus, &p->want.slot,
                                &p->want.fn) < 0) {
        return cli_usage_error("probe",
                               "'%s' is not a BDF: use DDDD:BB:DD.F, e.g. "
                               "0000:00:01.0",
                               a->bdf);
    }
    for (size_t i = 0; i < n; i++) {
        if (!a->bdf || same_bdf(&devs[i], &p->want)) {
            p->want = devs[i];
            p->claimed_by_other = devs[i].claimed;
            return CLI_EXIT_OK;
        }
    }
    return CLI_EXIT_FAILED;
}

static int pick_device(const struct probe_args *a, const struct probe_env *env,
                       struct probe *p)
{
    struct vdx_device_desc *devs = NULL;
    char have[256];
    size_t n = 0;
    int rc;
    dext_status st = vdx_list_devices(env->ep, &devs, &n);

    if (st != DEXT_OK) {
        return report_error(env, "cannot list the dext's devices", st);
    }
    rc = find_device(a, devs, n, p);
    if (rc == CLI_EXIT_FAILED) {
        list_bdfs(devs, n, have, sizeof(have));
        cli_error("probe",
                  "the dext has no device %s (it has: %s; see: vfio-dext "
                  "list-devices)",
                  a->bdf ? a->bdf : "at all", have);
    }
    free(devs);
    return rc;
}

/* True when the connection is gone (the dext died or closed us). */
static bool connection_lost(struct probe *p)
{
    uint32_t v;

    return vdx_config_read(p->conn, 0, 2, &v) == DEXT_E_NOT_ATTACHED;
}

/* Run the checks; returns false if the dext went away in the middle. */
static bool run_checks(struct probe *p)
{
    for (size_t i = 0; i < sizeof(probe_checks) / sizeof(probe_checks[0]); i++) {
        unsigned failed = p->failed;

        probe_checks[i](p);
        if (p->failed != failed && connection_lost(p)) {
            return false;
        }
    }
    return true;
}

static void print_summary(struct probe *p)
{
    json_object *root;

    if (!p->json) {
        printf("%u passed, %u failed\n", p->passed, p->failed);
        return;
    }
    root = json_object_new_object();
    json_object_object_add(root, "checks", json_object_get(p->checks));
    json_object_object_add(root, "passed", json_object_new_int((int)p->passed));
    json_object_object_add(root, "failed", json_object_new_int((int)p->failed));
    json_object_object_add(root, "skipped", json_object_new_int((int)p->skipped));
    json_object_object_add(root, "bdf", json_object_new_string(p->bdf));
    puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

static int run_probe(const struct probe_env *env, struct probe *p)
{
    dext_status st;
    bool alive;

    cli_bdf_str(&p->want, p->bdf, sizeof(p->bdf));
    st = vdx_connect(env->ep, p->bdf, &p->conn);
    if (st != DEXT_OK) {
        return report_error(env, "cannot open a client on the device", st);
    }
    if (!p->json) {
        printf("probe %s on %s%s\n", p->bdf,
               env->remote ? env->target.uri : "an in-process dext",
               p->claimed_by_other ? " (in use by another client: checks that would "
                                     "disturb it are skipped)"
                                   : "");
    }
    p->checks = json_object_new_array();
    alive = run_checks(p);
    print_summary(p);
    json_object_put(p->checks);
    vdx_disconnect(p->conn);
    if (!alive) {
        cli_error("probe", "the dext stopped answering in the middle of the probe (see "
                           "its log; is it still running? vfio-dext status)");
        return CLI_EXIT_UNREACHABLE;
    }
    return p->failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cli_cmd_probe(int argc, char **argv)
{
    struct probe_args a;
    struct probe_env env;
    struct probe p;
    int rc = parse_args(argc, argv, &a);

    if (rc >= 0) {
        return rc;
    }
    rc = probe_env_open(&a, &env);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    memset(&p, 0, sizeof(p));
    p.json = a.json;
    rc = pick_device(&a, &env, &p);
    if (rc == CLI_EXIT_OK) {
        rc = run_probe(&env, &p);
    }
    probe_env_close(&env);
    return rc;
}
