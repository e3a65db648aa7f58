/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Benchmark: round-trip time of a cheap selector (ConfigRead of the vendor
 * id) through the local and the unix transport, and the floor a unix
 * transport cannot beat: a raw socketpair ping-pong of the same byte counts.
 *
 * The unix and raw measurements alternate, one batch of each per repetition,
 * so both see the same machine load; the ratio is the median of the
 * per-repetition ratios.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/bench.h"
#include "common/log.h"
#include "dext/core.h"
#include "transport/wire.h"

#define WARMUP_CALLS    1000u
#define DAEMON_START_NS (10ull * 1000000000ull)

double bench_median(double *v, unsigned n)
{
    /* insertion sort: n is a handful of repetitions */
    for (unsigned i = 1; i < n; i++) {
        double x = v[i];
        unsigned j = i;

        for (; j > 0 && v[j - 1] > x; j--) {
            v[j] = v[j - 1];
        }
        v[j] = x;
    }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

dext_status bench_connect_first(struct vdx_endpoint *ep, struct vdx_conn **conn)
{
    struct vdx_device_desc *devs = NULL;
    char bdf[CLI_BDF_LEN];
    size_t n = 0;
    dext_status st = vdx_list_devices(ep, &devs, &n);

    if (st == DEXT_OK && n == 0) {
        st = DEXT_E_NOT_FOUND;
    }
    if (st == DEXT_OK) {
        st = vdx_connect(ep, cli_bdf_str(&devs[0], bdf, sizeof(bdf)), conn);
    }
    free(devs);
    return st;
}

/* ---- ConfigRead batches --------------------------------------------------------- */

/* ns per call of `calls` ConfigRead(0, 2); negative if a call failed. */
static double config_read_batch(struct vdx_conn *conn, uint64_t calls)
{
    uint64_t t0 = vdx_now_ns();
    uint32_t v;

    for (uint64_t i = 0; i < calls; i++) {
        if (vdx_config_read(conn, 0, 2, &v) != DEXT_OK) {
            cli_error("bench", "ConfigRead failed during the measurement");
            return -1;
        }
    }
    return (double)(vdx_now_ns() - t0) / (double)calls;
}

int bench_local_rtt(const struct bench_opts *o, double *ns)
{
    double reps[BENCH_MAX_REPS];
    struct vdx_endpoint *ep = NULL;
    struct vdx_conn *conn = NULL;
    struct dext *d = NULL;
    int rc = cli_local_create("bench", "sim:testdev", DEXT_IOMMU_IDENTITY, &d, &ep);
    dext_status st = rc == CLI_EXIT_OK ? bench_connect_first(ep, &conn) : DEXT_OK;

    if (st != DEXT_OK) {
        cli_error("bench", "cannot open a client on sim:testdev: %s", vdx_status_str(st));
        rc = CLI_EXIT_FAILED;
    }
    if (rc == CLI_EXIT_OK && config_read_batch(conn, WARMUP_CALLS) < 0) {
        rc = CLI_EXIT_FAILED;
    }
    for (unsigned r = 0; rc == CLI_EXIT_OK && r < o->repetitions; r++) {
        reps[r] = config_read_batch(conn, o->iterations);
        rc = reps[r] < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
    }
    if (rc == CLI_EXIT_OK) {
        *ns = bench_median(reps, o->repetitions);
    }
    vdx_disconnect(conn);
    cli_local_destroy(d, ep);
    return rc;
}

/* ---- The unix transport, to a daemon child ----------------------------------- */

struct unix_peer {
    char dir[64];
    pid_t pid;
    struct vdx_endpoint *ep;
    struct vdx_conn *conn;
};

static pid_t spawn_daemon(const char *dir)
{
    char *argv[] = {"vfio-dext",     "dext",      "--device", "sim:testdev",
                    "--runtime-dir", (char *)dir, NULL};
    pid_t pid = fork();
    int null_fd;

    if (pid != 0) {
        return pid;
    }
    null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDOUT_FILENO);
    }
    execv("/proc/self/exe", argv);
    _exit(127);
}

/* Wait until the daemon answers LIST, or it died, or 10 s passed. */
static int wait_daemon(struct unix_peer *u)
{
    uint64_t deadline = vdx_now_ns() + DAEMON_START_NS;
    struct vdx_device_desc *devs = NULL;
    size_t n = 0;
    int status;

    while (vdx_now_ns() < deadline) {
        if (vdx_list_devices(u->ep, &devs, &n) == DEXT_OK) {
            free(devs);
            return CLI_EXIT_OK;
        }
        if (waitpid(u->pid, &status, WNOHANG) == u->pid) {
            u->pid = -1;
            cli_error("bench", "the dext child exited before serving (run vfio-dext dext "
                               "--device sim:testdev by hand to see why)");
            return CLI_EXIT_FAILED;
        }
        usleep(10000);
    }
    cli_error("bench", "the dext child did not answer within 10 s");
    return CLI_EXIT_FAILED;
}

static void unix_stop(struct unix_peer *u)
{
    int status;

    vdx_disconnect(u->conn);
    vdx_endpoint_free(u->ep);
    if (u->pid > 0) {
        kill(u->pid, SIGTERM);
        while (waitpid(u->pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    rmdir(u->dir);
}

static int unix_start(struct unix_peer *u)
{
    char uri[80];
    dext_status st;
    int rc;

    memset(u, 0, sizeof(*u));
    snprintf(u->dir, sizeof(u->dir), "/tmp/vfio-dext-bench-XXXXXX");
    if (!mkdtemp(u->dir)) {
        cli_error("bench", "cannot create a runtime dir in /tmp: %s", strerror(errno));
        return CLI_EXIT_FAILED;
    }
    snprintf(uri, sizeof(uri), "unix:%s", u->dir);
    u->pid = spawn_daemon(u->dir);
    if (u->pid < 0) {
        cli_error("bench", "cannot fork the dext child: %s", strerror(errno));
        rmdir(u->dir);
        return CLI_EXIT_FAILED;
    }
    rc = vdx_endpoint_parse(uri, &u->ep) == DEXT_OK ? wait_daemon(u) : CLI_EXIT_FAILED;
    st = rc == CLI_EXIT_OK ? bench_connect_first(u->ep, &u->conn) : DEXT_OK;
    if (st != DEXT_OK) {
        cli_error("bench", "cannot open a client on the dext child: %s",
                  vdx_status_str(st));
        rc = CLI_EXIT_FAILED;
    }
    if (rc != CLI_EXIT_OK) {
        unix_stop(u);
    }
    return rc;
}

/* ---- The raw baseline --------------------------------------------------------- */

/* Sizes of one CALL frame of ConfigRead: wire.h (the unix transport's format). */
#define RAW_REQ_BYTES                                                                      \
    (VDX_WIRE_HDR_SIZE + VDX_WIRE_CALL_REQ_SIZE + 8u * DEXT_IN_CONFIG_READ)
#define RAW_REP_BYTES                                                                      \
    (VDX_WIRE_HDR_SIZE + VDX_WIRE_CALL_REP_SIZE + 8u * DEXT_OUT_CONFIG_READ)

struct raw_peer {
    int fd;
    pid_t pid;
};

static bool xfer_all(int fd, void *buf, size_t len, bool out)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = out ? write(fd, p, len) : read(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* The child: answer every request with a reply, until EOF. */
static void __attribute__((noreturn)) raw_echo(int fd)
{
    uint8_t req[RAW_REQ_BYTES], rep[RAW_REP_BYTES];

    memset(rep, 0, sizeof(rep));
    while (xfer_all(fd, req, sizeof(req), false)) {
        if (!xfer_all(fd, rep, sizeof(rep), true)) {
            break;
        }
    }
    _exit(0);
}

/* ns per ping-pong of `calls`; negative if the child went away. */
static double raw_batch(struct raw_peer *r, uint64_t calls)
{
    uint8_t req[RAW_REQ_BYTES] = {0}, rep[RAW_REP_BYTES];
    uint64_t t0 = vdx_now_ns();

    for (uint64_t i = 0; i < calls; i++) {
        if (!xfer_all(r->fd, req, sizeof(req), true) ||
            !xfer_all(r->fd, rep, sizeof(rep), false)) {
            cli_error("bench", "the raw socket ping-pong child went away");
            return -1;
        }
    }
    return (double)(vdx_now_ns() - t0) / (double)calls;
}

static int raw_start(struct raw_peer *r)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        cli_error("bench", "cannot create a socketpair: %s", strerror(errno));
        return CLI_EXIT_FAILED;
    }
    r->pid = fork();
    if (r->pid == 0) {
        close(sv[0]);
        raw_echo(sv[1]);
    }
    close(sv[1]);
    if (r->pid < 0) {
        cli_error("bench", "cannot fork the ping-pong child: %s", strerror(errno));
        close(sv[0]);
        return CLI_EXIT_FAILED;
    }
    r->fd = sv[0];
    return CLI_EXIT_OK;
}

static void raw_stop(struct raw_peer *r)
{
    int status;

    close(r->fd);
    while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR) {
    }
}

/* ---- Unix vs raw, alternating --------------------------------------------------- */

static int alternate(const struct bench_opts *o, struct raw_peer *raw, struct unix_peer *u,
                     struct bench_rtt_result *res)
{
    double rraw[BENCH_MAX_REPS], runix[BENCH_MAX_REPS], ratio[BENCH_MAX_REPS];

    if (raw_batch(raw, WARMUP_CALLS) < 0 || config_read_batch(u->conn, WARMUP_CALLS) < 0) {
        return CLI_EXIT_FAILED;
    }
    for (unsigned r = 0; r < o->repetitions; r++) {
        rraw[r] = raw_batch(raw, o->iterations);
        runix[r] = config_read_batch(u->conn, o->iterations);
        if (rraw[r] <= 0 || runix[r] < 0) {
            return CLI_EXIT_FAILED;
        }
        ratio[r] = runix[r] / rraw[r];
    }
    res->raw_ns = bench_median(rraw, o->repetitions);
    res->unix_ns = bench_median(runix, o->repetitions);
    res->ratio = bench_median(ratio, o->repetitions);
    res->req_bytes = RAW_REQ_BYTES;
    res->rep_bytes = RAW_REP_BYTES;
    return CLI_EXIT_OK;
}

int bench_unix_vs_raw(const struct bench_opts *o, struct bench_rtt_result *res)
{
    struct raw_peer raw;
    struct unix_peer u;
    int rc = raw_start(&raw);

    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    rc = unix_start(&u);
    if (rc == CLI_EXIT_OK) {
        rc = alternate(o, &raw, &u, res);
        unix_stop(&u);
    }
    raw_stop(&raw);
    return rc;
}
