/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext run`: the main job. One process hosts the dext (in-process, or
 * a running daemon) and the vfio-user server; it starts QEMU with shared
 * memfd guest RAM and the `vfio-user-pci` device on that server, echoes the
 * guest's console, and stops everything when QEMU exits, on SIGINT/SIGTERM,
 * or at --timeout.
 *
 * With no arguments it is the embedded default: sim:nvme and the project's
 * test guest (scripts/setup-guest.sh) running `vdx-demo`, which verifies
 * files on the passed-through disk, runs fio and prints "VDX-SUMMARY:" lines;
 * the guest's exit status comes back through isa-debug-exit (QEMU exits with
 * 2 * rc + 1), and run exits 0 only if it is 0.
 *
 * The loop: one poll() over the server, the dext's interrupts and QEMU's
 * console, bounded by STOP_CHECK_MS so the stop flag and the child are
 * checked. While QEMU shuts down the server keeps serving (QEMU unmaps DMA
 * and closes its socket on the way out); a QEMU that does not exit within
 * KILL_GRACE_S of SIGTERM gets SIGKILL.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/run_qemu.h"
#include "cli/serve.h"
#include "common/log.h"

static const char usage[] =
    "Usage: vfio-dext run [--device SPEC | --dext unix[:DIR] [--bdf BDF]]\n"
    "                     [--qemu PATH] [--guest DIR|none] [--cmd CMD] [--memory SIZE]\n"
    "                     [--smp N] [--accel NAME] [--reboot] [--timeout SECONDS]\n"
    "                     [--socket PATH] [--verbose] [-- QEMU_ARGS...]\n"
    "\n"
    "Start a dext, serve its device over vfio-user and boot QEMU with it as a\n"
    "vfio-user-pci device; stop everything when QEMU exits or on Ctrl-C.\n"
    "With no arguments: a simulated NVMe SSD (sim:nvme,size=1G) and the project's\n"
    "test guest, whose stock nvme driver finds the disk; the guest makes a file\n"
    "system, writes and verifies files, runs a short fio job, prints a summary\n"
    "and powers off. Exits 0 only if the guest verified its data.\n"
    "\n"
    "Options:\n"
    "  --device SPEC     the device of an in-process dext (default sim:nvme,size=1G),\n"
    "                    e.g. sim:nvme,size=4G,file=disk.img\n"
    "  --dext URI        use a running dext daemon instead: unix or unix:DIR\n"
    "  --bdf BDF         with --dext: the device (default: the dext's first)\n"
    "  --qemu PATH       QEMU >= 10.1 (default $VFIO_DEXT_QEMU, else\n"
    "                    " RUN_DEFAULT_QEMU " as made by\n"
    "                    scripts/setup-qemu.sh, else qemu-system-x86_64 in PATH)\n"
    "  --guest DIR       the test guest (default $VFIO_DEXT_GUEST, else\n"
    "                    " RUN_DEFAULT_GUEST ", made by\n"
    "                    scripts/setup-guest.sh); 'none': boot what QEMU_ARGS say\n"
    "  --cmd CMD         the shell command the test guest runs (default vdx-demo)\n"
    "  --memory SIZE     guest RAM, shared memfd (default 1G)\n"
    "  --smp N           vCPUs (default 2)\n"
    "  --accel NAME      QEMU accelerator (default tcg)\n"
    "  --reboot          let the guest reboot (default: a reboot ends QEMU)\n"
    "  --timeout SECONDS stop QEMU after this long (default: no limit)\n"
    "  --socket PATH     the vfio-user socket (default: in a private temp dir)\n"
    "  --verbose         log debug messages on stderr\n"
    "  -h, --help        show this help\n"
    "  -- QEMU_ARGS      appended to QEMU's command line\n"
    "\n"
    "The guest's console is echoed on stdout, then a summary. Exit codes: 0 the\n"
    "guest succeeded (test guest: its command exited 0; else QEMU exited 0),\n"
    "1 it did not or QEMU failed, 2 usage error, 3 the dext cannot be reached.\n";

#define STOP_CHECK_MS 250
#define KILL_GRACE_S 10
#define DEFAULT_DEVICE "sim:nvme,size=1G"
#define DEFAULT_CMD "vdx-demo"

struct run_opts {
    struct cli_serve_opts s;
    const char *qemu;
    const char *guest; /* NULL: default; "none" */
    const char *cmd;
    const char *accel;
    uint64_t memory;
    unsigned smp;
    unsigned timeout_s;
    bool reboot;
    bool verbose;
    char **extra; /* after "--" */
};

enum {
    OPT_DEVICE = 256, OPT_DEXT, OPT_BDF, OPT_QEMU, OPT_GUEST, OPT_CMD, OPT_MEMORY,
    OPT_SMP, OPT_ACCEL, OPT_REBOOT, OPT_TIMEOUT, OPT_SOCKET, OPT_VERBOSE,
};

static const struct option long_opts[] = {
    {"device", required_argument, NULL, OPT_DEVICE},
    {"dext", required_argument, NULL, OPT_DEXT},
    {"bdf", required_argument, NULL, OPT_BDF},
    {"qemu", required_argument, NULL, OPT_QEMU},
    {"guest", required_argument, NULL, OPT_GUEST},
    {"cmd", required_argument, NULL, OPT_CMD},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"smp", required_argument, NULL, OPT_SMP},
    {"accel", required_argument, NULL, OPT_ACCEL},
    {"reboot", no_argument, NULL, OPT_REBOOT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* ---- Options ------------------------------------------------------------------------ */

static int parse_number(const char *opt, const char *s, uint64_t max, unsigned *out)
{
    uint64_t v;

    if (cli_parse_u64(s, &v) < 0 || v > max) {
        return cli_usage_error("run", "%s '%s': expected a number up to %" PRIu64, opt, s,
                               max);
    }
    *out = (unsigned)v;
    return -1;
}

static int parse_memory(const char *s, uint64_t *out)
{
    if (cli_parse_size(s, out) < 0 || *out < (64u << 20) || (*out & ((1u << 20) - 1))) {
        return cli_usage_error("run", "--memory '%s': expected a whole number of MiB, at "
                                      "least 64M (e.g. 1G)", s);
    }
    return -1;
}

/* Returns -1 to go on, or an exit code. */
static int parse_one(struct run_opts *o, int opt, char **argv)
{
    switch (opt) {
    case OPT_DEVICE: o->s.local = optarg; return -1;
    case OPT_DEXT: o->s.dext = optarg; return -1;
    case OPT_BDF: o->s.bdf = optarg; return -1;
    case OPT_QEMU: o->qemu = optarg; return -1;
    case OPT_GUEST: o->guest = optarg; return -1;
    case OPT_CMD: o->cmd = optarg; return -1;
    case OPT_MEMORY: return parse_memory(optarg, &o->memory);
    case OPT_SMP: return parse_number("--smp", optarg, 255, &o->smp);
    case OPT_ACCEL: o->accel = optarg; return -1;
    case OPT_REBOOT: o->reboot = true; return -1;
    case OPT_TIMEOUT: return parse_number("--timeout", optarg, 86400 * 7, &o->timeout_s);
    case OPT_SOCKET: o->s.socket = optarg; return -1;
    case OPT_VERBOSE: o->verbose = true; return -1;
    case 'h': return cli_help(usage);
    default: return cli_getopt_error("run", opt, argv);
    }
}

static int check_args(struct run_opts *o)
{
    if (o->s.dext != NULL && o->s.local != NULL) {
        return cli_usage_error("run", "--device and --dext exclude each other");
    }
    if (o->s.bdf != NULL && o->s.dext == NULL) {
        return cli_usage_error("run", "--bdf needs --dext (an in-process dext has one "
                                      "device: give it with --device SPEC)");
    }
    if (o->smp == 0) {
        return cli_usage_error("run", "--smp 0: a guest needs at least one vCPU");
    }
    if (o->cmd != NULL && o->guest != NULL && strcmp(o->guest, "none") == 0) {
        return cli_usage_error("run", "--cmd needs the test guest (not --guest none)");
    }
    if (o->s.dext == NULL && o->s.local == NULL) {
        o->s.local = DEFAULT_DEVICE;
    }
    if (o->cmd == NULL) {
        o->cmd = DEFAULT_CMD;
    }
    return -1;
}

static int parse_args(int argc, char **argv, struct run_opts *o)
{
    int opt, rc;

    memset(o, 0, sizeof(*o));
    o->s.cmd = "run";
    o->s.iommu = DEXT_IOMMU_IDENTITY;
    o->accel = "tcg";
    o->memory = 1u << 30;
    o->smp = 2;
    optind = 0;
    opterr = 0;
    /* '+': stop at the first non-option, so "--" ends our options */
    while ((opt = getopt_long(argc, argv, "+:h", long_opts, NULL)) != -1) {
        rc = parse_one(o, opt, argv);
        if (rc >= 0) {
            return rc;
        }
    }
    if (optind < argc && strcmp(argv[optind - 1], "--") != 0) {
        return cli_usage_error("run", "unexpected argument '%s' (QEMU arguments go after "
                                      "'--')", argv[optind]);
    }
    o->extra = argv + optind;
    return check_args(o);
}

/* ---- Finding QEMU and the guest ------------------------------------------------------ */

static bool is_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *pick_qemu(const struct run_opts *o)
{
    const char *env = getenv("VFIO_DEXT_QEMU");

    if (o->qemu != NULL) {
        return o->qemu;
    }
    if (env != NULL && env[0] != '\0') {
        return env;
    }
    return access(RUN_DEFAULT_QEMU, X_OK) == 0 ? RUN_DEFAULT_QEMU : "qemu-system-x86_64";
}

/* An executable path, or a name found in PATH. */
static bool runnable(const char *prog)
{
    char path[PATH_MAX];
    const char *dirs = getenv("PATH");

    if (strchr(prog, '/') != NULL) {
        return is_file(prog) && access(prog, X_OK) == 0;
    }
    for (const char *d = dirs; d != NULL && *d != '\0';) {
        const char *end = strchr(d, ':');
        int len = end != NULL ? (int)(end - d) : (int)strlen(d);

        snprintf(path, sizeof(path), "%.*s/%s", len, len ? d : ".", prog);
        if (is_file(path) && access(path, X_OK) == 0) {
            return true;
        }
        d = end != NULL ? end + 1 : NULL;
    }
    return false;
}

/* The test guest's files into kernel/initrd; an exit code. */
static int find_guest(const struct run_opts *o, char *kernel, char *initrd, size_t len)
{
    static const char *const initrds[] = {"initrd.img"};
    const char *dir = o->guest, *env = getenv("VFIO_DEXT_GUEST");

    if (dir == NULL) {
        dir = env != NULL && env[0] != '\0' ? env : RUN_DEFAULT_GUEST;
    }
    snprintf(kernel, len, "%s/vmlinux", dir);
    if (!is_file(kernel)) {
        cli_error("run", "no test guest in %s (make it with: scripts/setup-guest.sh %s; "
                  "`make run` does), or pass --guest DIR", dir, dir);
        return CLI_EXIT_FAILED;
    }
    for (size_t i = 0; i < sizeof(initrds) / sizeof(initrds[0]); i++) {
        snprintf(initrd, len, "%s/%s", dir, initrds[i]);
        if (is_file(initrd)) {
            return CLI_EXIT_OK;
        }
    }
    cli_error("run", "%s has a kernel but no initrd.img (re-run scripts/setup-guest.sh %s)",
              dir, dir);
    return CLI_EXIT_FAILED;
}

/* ---- Running ------------------------------------------------------------------------- */

/* QEMU as a child and what became of it. */
struct run_child {
    pid_t pid;
    int out_fd;        /* its console; -1 once closed */
    bool exited;
    int status;        /* waitpid() status once exited */
    bool term_sent;
    time_t kill_at;    /* SIGKILL after this (term_sent) */
    const char *why;   /* why run stopped QEMU; NULL: it ended on its own */
    struct run_console con;
};

static void child_stop(struct run_child *c, const char *why)
{
    if (c->term_sent || c->exited) {
        return;
    }
    c->why = why;
    c->term_sent = true;
    c->kill_at = time(NULL) + KILL_GRACE_S;
    kill(c->pid, SIGTERM);
}

static void child_check(struct run_child *c)
{
    if (!c->exited && waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
        c->exited = true;
    }
    if (!c->exited && c->term_sent && time(NULL) > c->kill_at) {
        fprintf(stderr, "vfio-dext run: QEMU ignored SIGTERM for %d s: SIGKILL\n",
                KILL_GRACE_S);
        kill(c->pid, SIGKILL);
        c->kill_at = time(NULL) + KILL_GRACE_S;
    }
}

static void child_console(struct run_child *c)
{
    int rc = run_console_read(c->out_fd, &c->con, stdout);

    if (rc <= 0) {
        close(c->out_fd);
        c->out_fd = -1;
    }
}

/* One wait and what became ready. Returns 0 or an exit code (serving failed). */
static int run_once(struct cli_serve *s, struct run_child *c)
{
    struct pollfd p[CLI_SERVE_NFDS + 1];
    int rc;

    cli_serve_pollfds(s, p);
    p[CLI_SERVE_NFDS] = (struct pollfd){.fd = c->out_fd, .events = POLLIN};
    rc = poll(p, CLI_SERVE_NFDS + 1, c->out_fd >= 0 ? STOP_CHECK_MS : 20);
    if (rc < 0 && errno != EINTR) {
        cli_error("run", "poll: %s", strerror(errno));
        return CLI_EXIT_FAILED;
    }
    if (rc <= 0) {
        return 0;
    }
    if (p[CLI_SERVE_NFDS].revents) {
        child_console(c);
    }
    return cli_serve_handle(s, p);
}

/* QEMU is gone: serve until the server has seen its socket close (bounded),
 * so what it held is released and reported before the summary. */
static void drain_detach(struct cli_serve *s)
{
    struct pollfd p[CLI_SERVE_NFDS];

    for (int i = 0; i < 2000 / 20 && s->connected; i++) {
        cli_serve_pollfds(s, p);
        if (poll(p, CLI_SERVE_NFDS, 20) > 0 && cli_serve_handle(s, p) != 0) {
            return;
        }
    }
}

/* Serve until QEMU has exited. Returns CLI_EXIT_OK or the serving failure. */
static int run_loop(struct cli_serve *s, struct run_child *c, unsigned timeout_s)
{
    time_t end = timeout_s ? time(NULL) + timeout_s : 0;
    int failed = CLI_EXIT_OK, rc;

    while (!c->exited) {
        rc = run_once(s, c);
        if (rc != 0 && failed == CLI_EXIT_OK) {
            failed = rc;
            child_stop(c, "serving the device failed");
        }
        if (cli_stop_requested) {
            child_stop(c, "stopped by a signal");
        }
        if (end != 0 && time(NULL) >= end) {
            child_stop(c, "the --timeout expired");
        }
        child_check(c);
    }
    while (c->out_fd >= 0) {
        child_console(c);
    }
    drain_detach(s);
    return failed;
}

/* ---- The summary --------------------------------------------------------------------- */

/* Print the nonzero members of obj as " key=value". */
static void print_nonzero(struct json_object *obj)
{
    bool any = false;

    json_object_object_foreach(obj, key, val)
    {
        if (json_object_is_type(val, json_type_int) && json_object_get_uint64(val) != 0) {
            printf(" %s=%" PRIu64, key, json_object_get_uint64(val));
            any = true;
        }
    }
    printf("%s\n", any ? "" : " (none)");
}

/* What the dext saw of the served device: the config writes that reached it
 * by register (the filter keeps STATUS and BAR writes away) and the device's
 * own counters, from the dext's status. */
static void print_dext_view(const struct cli_serve *s)
{
    struct json_object *root, *devs, *dev, *bdf, *ctr, *v;
    char *json = NULL;

    if (vdx_dext_status(s->ep, &json) != DEXT_OK) {
        return;
    }
    root = json_tokener_parse(json);
    free(json);
    if (root == NULL || !json_object_object_get_ex(root, "devices", &devs)) {
        json_object_put(root);
        return;
    }
    for (size_t i = 0; i < json_object_array_length(devs); i++) {
        dev = json_object_array_get_idx(devs, i);
        if (!json_object_object_get_ex(dev, "bdf", &bdf) ||
            strcmp(json_object_get_string(bdf), s->bdf) != 0) {
            continue;
        }
        if (json_object_object_get_ex(dev, "counters", &ctr)) {
            printf("vfio-dext run: dext: config writes that reached the device:");
            static const char *const keys[] = {"config_writes_command",
                                               "config_writes_status", "config_writes_bar"};
            for (size_t k = 0; k < 3; k++) {
                if (json_object_object_get_ex(ctr, keys[k], &v)) {
                    printf(" %s %" PRIu64, keys[k] + strlen("config_writes_"),
                           json_object_get_uint64(v));
                }
            }
            printf("\n");
        }
        if (json_object_object_get_ex(dev, "device_counters", &ctr)) {
            printf("vfio-dext run: device:");
            print_nonzero(ctr);
        }
    }
    json_object_put(root);
}

/* The verdict; prints it and returns the exit code. */
static int verdict(const struct run_opts *o, const struct run_child *c, bool test_guest)
{
    int code = WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;

    if (c->why != NULL) {
        printf("vfio-dext run: FAIL: %s before the guest finished\n", c->why);
        return CLI_EXIT_FAILED;
    }
    if (!WIFEXITED(c->status)) {
        printf("vfio-dext run: FAIL: QEMU was killed by signal %d\n", WTERMSIG(c->status));
        return CLI_EXIT_FAILED;
    }
    if (code == 127) {
        printf("vfio-dext run: FAIL: cannot run QEMU '%s' (get QEMU >= 10.1: "
               "scripts/setup-qemu.sh, or pass --qemu)\n", pick_qemu(o));
        return CLI_EXIT_FAILED;
    }
    if (!test_guest) {
        printf("vfio-dext run: %s: QEMU exited with %d\n", code == 0 ? "PASS" : "FAIL",
               code);
        return code == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
    }
    if (code == 1 && c->con.guest_rc == 0) {
        printf("vfio-dext run: PASS: %s\n", strcmp(o->cmd, DEFAULT_CMD) == 0
                                                ? "the guest verified its data"
                                                : "the guest's command succeeded");
        return CLI_EXIT_OK;
    }
    if (code & 1) {
        printf("vfio-dext run: FAIL: the guest's command failed with status %d\n",
               code >> 1);
    } else {
        printf("vfio-dext run: FAIL: QEMU exited with %d before the guest reported a "
               "result (see its messages above)\n", code);
    }
    return CLI_EXIT_FAILED;
}

static int summary(const struct run_opts *o, const struct cli_serve *s,
                   const struct run_child *c, bool test_guest)
{
    printf("\nvfio-dext run: ---- summary ----\n");
    for (unsigned i = 0; i < c->con.n_summary; i++) {
        printf("vfio-dext run: guest: %s\n", c->con.summary[i]);
    }
    cli_serve_print_stats(s, stdout);
    print_dext_view(s);
    return verdict(o, c, test_guest);
}

static void print_command(char **argv)
{
    printf("vfio-dext run: starting");
    for (char **a = argv; *a != NULL; a++) {
        printf(strpbrk(*a, " \"{}") ? " '%s'" : " %s", *a);
    }
    printf("\n");
    fflush(stdout);
}

/* Start QEMU on the server and serve it to the end. */
static int run_qemu(const struct run_opts *o, struct cli_serve *s, const char *kernel,
                    const char *initrd)
{
    struct run_qemu_cfg cfg = {
        .qemu = pick_qemu(o), .accel = o->accel, .memory = o->memory, .smp = o->smp,
        .socket = o->s.socket, .kernel = kernel, .initrd = initrd, .guest_cmd = o->cmd,
        .reboot = o->reboot, .extra = o->extra,
    };
    struct run_child c = {.out_fd = -1, .con.guest_rc = -1};
    char **argv = run_qemu_argv(&cfg);
    int rc, test_rc;

    if (argv == NULL) {
        cli_error("run", errno == E2BIG ? "--cmd is too long (at most %d bytes fit on the "
                                          "kernel command line)"
                                        : "out of memory (%d)",
                  RUN_MAX_GUEST_CMD);
        return errno == E2BIG ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
    }
    print_command(argv);
    rc = run_qemu_spawn(argv, &c.pid, &c.out_fd);
    run_qemu_argv_free(argv);
    if (rc < 0) {
        cli_error("run", "cannot start QEMU: %s", strerror(-rc));
        return CLI_EXIT_FAILED;
    }
    rc = run_loop(s, &c, o->timeout_s);
    test_rc = summary(o, s, &c, kernel != NULL);
    return rc != CLI_EXIT_OK ? rc : test_rc;
}

int cli_cmd_run(int argc, char **argv)
{
    char kernel[PATH_MAX], initrd[PATH_MAX], dir[] = "/tmp/vfio-dext-run.XXXXXX";
    char sock[sizeof(dir) + 32];
    bool test_guest;
    struct run_opts o;
    struct cli_serve s;
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0) {
        return rc;
    }
    if (!runnable(pick_qemu(&o))) {
        cli_error("run", "cannot run QEMU '%s' (get QEMU >= 10.1 with "
                  "scripts/setup-qemu.sh, or pass --qemu PATH)", pick_qemu(&o));
        return CLI_EXIT_FAILED;
    }
    test_guest = o.guest == NULL || strcmp(o.guest, "none") != 0;
    if (test_guest && (rc = find_guest(&o, kernel, initrd, sizeof(kernel))) != CLI_EXIT_OK) {
        return rc;
    }
    if (o.s.socket == NULL) {
        if (mkdtemp(dir) == NULL) {
            cli_error("run", "cannot create a directory in /tmp: %s", strerror(errno));
            return CLI_EXIT_FAILED;
        }
        snprintf(sock, sizeof(sock), "%s/vfio-user.sock", dir);
        o.s.socket = sock;
    }
    memset(&s, 0, sizeof(s));
    vdx_log_set(NULL, NULL, o.verbose ? VDX_LOG_DEBUG : VDX_LOG_WARN);
    cli_signals_install();
    rc = cli_serve_setup(&o.s, &s);
    if (rc == CLI_EXIT_OK) {
        printf("vfio-dext run: serving %s (%s) on %s\n", s.bdf,
               o.s.local != NULL ? o.s.local : s.target.uri, o.s.socket);
        rc = run_qemu(&o, &s, test_guest ? kernel : NULL, test_guest ? initrd : NULL);
    }
    cli_serve_release(&s);
    cli_signals_restore();
    if (o.s.socket == sock) {
        unlink(sock);
        rmdir(dir);
    }
    return rc;
}
