/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Integration tests of the unix transport over real sockets: a daemon child
 * (dext with sim:testdev + vdx_unix_server, stepped until SIGTERM) serves
 * the public client API and raw hostile clients; after every hostile client
 * the daemon must still serve a fresh one, and it must exit 0 at the end.
 * Setup failures (runtime dir, stale socket, second server, max_clients) are
 * checked against servers created and stepped in this process.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/transport.h"
#include "common/log.h"
#include "dext/core.h"
#include "devices/testdev.h"
#include "platform/platform.h"
#include "transport/unix_server.h"
#include "transport/wire.h"
#include "vfio-dext/client.h"

#define NOBODY_UID 65534u

struct daemon {
    pid_t pid;
    char dir[PATH_MAX];
    char uri[PATH_MAX + 8];
};

struct daemon_cfg {
    uid_t become;    /* (uid_t)-1: stay who we are */
    bool allow_root; /* allowed_uids = {0} */
    unsigned max_clients;
};

static char base_dir[64];     /* mkdtemp: every runtime dir of this run is below */
static struct daemon main_dm; /* the shared daemon of the hostile tests */
static int main_dm_fds;       /* its open fds once started */

/* ---- Daemon child ------------------------------------------------------------ */

static volatile sig_atomic_t daemon_stop;

static void on_term(int sig)
{
    (void)sig;
    daemon_stop = 1;
}

static struct dext *make_dext(void)
{
    struct dext_opts o;
    struct dext *d = NULL;
    char err[256] = "";

    dext_opts_default(&o);
    if (dext_create(&o, &d) < 0) {
        return NULL;
    }
    if (dext_add_device(d, "sim:testdev", err, sizeof(err)) < 0) {
        fprintf(stderr, "sim:testdev: %s\n", err);
        dext_destroy(d);
        return NULL;
    }
    return d;
}

static int daemon_serve(const char *dir, const struct daemon_cfg *cfg, int ready_fd)
{
    struct vdx_unix_server_opts o = {.runtime_dir = dir, .max_clients = cfg->max_clients};
    struct vdx_unix_server *srv = NULL;
    struct dext *d = make_dext();
    int rc = d != NULL ? 0 : -ENOMEM;

    if (cfg->allow_root) {
        o.allowed_uids[0] = 0;
        o.n_allowed_uids = 1;
    }
    if (rc == 0) {
        rc = vdx_unix_server_create(d, &o, &srv);
    }
    if (write(ready_fd, &rc, sizeof(rc)) != sizeof(rc) || rc < 0) {
        dext_destroy(d);
        return 1;
    }
    close(ready_fd);
    while (!daemon_stop) {
        rc = vdx_unix_server_step(srv, 200);
        if (rc < 0 && rc != -EINTR) {
            fprintf(stderr, "daemon: step: %s\n", strerror(-rc));
            return 2;
        }
    }
    vdx_unix_server_destroy(srv);
    dext_destroy(d);
    return 0;
}

static void daemon_child(const char *dir, const struct daemon_cfg *cfg, int ready_fd)
{
    struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART: wakes epoll_wait */

    sigaction(SIGTERM, &sa, NULL);
    if (cfg->become != (uid_t)-1 &&
        (setgroups(0, NULL) < 0 || setgid(cfg->become) < 0 || setuid(cfg->become) < 0)) {
        _exit(10);
    }
    _exit(daemon_serve(dir, cfg, ready_fd));
}

static void daemon_start(struct daemon *dm, const char *dir, const struct daemon_cfg *cfg)
{
    int p[2], rc = -1;

    snprintf(dm->dir, sizeof(dm->dir), "%s", dir);
    snprintf(dm->uri, sizeof(dm->uri), "unix:%s", dir);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    dm->pid = fork();
    assert_true(dm->pid >= 0);
    if (dm->pid == 0) {
        close(p[0]);
        daemon_child(dir, cfg, p[1]);
    }
    close(p[1]);
    assert_int_equal(read(p[0], &rc, sizeof(rc)), sizeof(rc));
    assert_int_equal(read(p[0], &rc, 1), 0); /* EOF: the child closed its end */
    close(p[0]);
    assert_int_equal(rc, 0);
}

static bool daemon_alive(const struct daemon *dm)
{
    int status;

    return waitpid(dm->pid, &status, WNOHANG) == 0;
}

/* The daemon must still be running, then exit 0 on SIGTERM. */
static void daemon_stop_clean(struct daemon *dm)
{
    int status = 0;

    assert_true(daemon_alive(dm));
    assert_int_equal(kill(dm->pid, SIGTERM), 0);
    assert_int_equal(waitpid(dm->pid, &status, 0), dm->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    dm->pid = 0;
}

static int count_fds(pid_t pid)
{
    char path[64];
    struct dirent *e;
    DIR *dir;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    dir = opendir(path);
    if (dir == NULL) {
        return -1;
    }
    while ((e = readdir(dir)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(dir);
    return n;
}

/* ---- Raw clients ---------------------------------------------------------------- */

static void sock_path(char *buf, size_t len, const char *dir)
{
    int n = snprintf(buf, len, "%s/%s", dir, VDX_UNIX_SOCKET_NAME);

    assert_true(n > 0 && (size_t)n < len);
}

static int raw_connect(const char *dir)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sock_path(addr.sun_path, sizeof(addr.sun_path), dir);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static void raw_send(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    if (nfds > 0) {
        struct cmsghdr *cm;

        msg.msg_control = cbuf.b;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    }
    assert_int_equal(sendmsg(fd, &msg, MSG_NOSIGNAL), (ssize_t)len);
}

/* True when the daemon closes the connection within timeout_ms (no reply). */
static bool raw_closed_by_peer(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    ssize_t n;

    if (poll(&p, 1, timeout_ms) != 1) {
        return false;
    }
    n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Read one whole reply frame (blocking, 2 s at most). Returns its length. */
static size_t raw_recv_frame(int fd, uint8_t *buf, size_t cap)
{
    struct vdx_wire_hdr hdr;
    size_t fill = 0;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (vdx_wire_hdr_decode(buf, fill, &hdr) == 0 &&
            fill >= VDX_WIRE_HDR_SIZE + (size_t)hdr.len) {
            return VDX_WIRE_HDR_SIZE + hdr.len;
        }
        assert_int_equal(poll(&p, 1, 2000), 1);
        n = recv(fd, buf + fill, cap - fill, 0);
        assert_true(n > 0);
        fill += (size_t)n;
    }
}

/* A fresh client is served: LIST through the public API. */
static void assert_daemon_serves(const struct daemon *dm)
{
    struct vdx_endpoint *ep = NULL;
    struct vdx_device_desc *devs = NULL;
    size_t n = 0;

    assert_int_equal(vdx_endpoint_parse(dm->uri, &ep), DEXT_OK);
    assert_int_equal(vdx_list_devices(ep, &devs, &n), DEXT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(devs[0].vendor, TESTDEV_VENDOR_ID);
    assert_int_equal(devs[0].device, TESTDEV_DEVICE_ID);
    free(devs);
    vdx_endpoint_free(ep);
    assert_true(daemon_alive(dm));
}

/* Send a hostile frame; the daemon must drop that one connection and go on. */
static void expect_dropped(const void *frame, size_t len, const int *fds, unsigned nfds)
{
    int fd = raw_connect(main_dm.dir);

    raw_send(fd, frame, len, fds, nfds);
    assert_true(raw_closed_by_peer(fd, 2000));
    close(fd);
    assert_daemon_serves(&main_dm);
}

static size_t hdr_only(uint8_t *buf, uint32_t magic, uint16_t op, uint32_t len)
{
    struct vdx_wire_hdr h = {magic, op, 0, len, 1};

    memcpy(buf, &h, sizeof(h)); /* the test host is little-endian */
    return sizeof(h);
}

/* ---- Group setup ----------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct daemon_cfg cfg = {.become = (uid_t)-1};
    char dir[PATH_MAX];

    (void)state;
    vdx_log_set(NULL, NULL, VDX_LOG_ERR); /* hostile tests provoke warnings on purpose */
    snprintf(base_dir, sizeof(base_dir), "/tmp/vdx-unix-XXXXXX");
    if (mkdtemp(base_dir) == NULL) {
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/run", base_dir); /* the server creates it */
    daemon_start(&main_dm, dir, &cfg);
    main_dm_fds = count_fds(main_dm.pid);
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    if (main_dm.pid > 0) {
        kill(main_dm.pid, SIGKILL);
        waitpid(main_dm.pid, NULL, 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- Permissions ----------------------------------------------------------------- */

static void test_runtime_dir_0700_socket_0600(void **state)
{
    char path[PATH_MAX];
    struct stat st;

    (void)state;
    assert_int_equal(lstat(main_dm.dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    sock_path(path, sizeof(path), main_dm.dir);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
}

/* ---- The public client API over the daemon ----------------------------------------- */

static struct vdx_conn *connect_testdev(struct vdx_endpoint *ep)
{
    struct vdx_device_desc *devs = NULL;
    struct vdx_conn *conn = NULL;
    char bdf[32];
    size_t n = 0;

    assert_int_equal(vdx_list_devices(ep, &devs, &n), DEXT_OK);
    assert_int_equal(n, 1);
    snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%x", devs[0].domain, devs[0].bus,
             devs[0].slot, devs[0].fn);
    free(devs);
    assert_int_equal(vdx_connect(ep, bdf, &conn), DEXT_OK);
    return conn;
}

static void test_client_lists_and_calls(void **state)
{
    struct vdx_endpoint *ep = NULL;
    struct vdx_conn *conn;
    struct vdx_device_desc id;
    uint64_t out[DEXT_MAX_SCALARS], in[3];
    uint32_t nout = DEXT_MAX_SCALARS, val = 0, mem_idx = 99;
    uint64_t v64 = 0;
    char *json = NULL;
    struct json_object *o;

    (void)state;
    assert_int_equal(vdx_endpoint_parse(main_dm.uri, &ep), DEXT_OK);
    conn = connect_testdev(ep);
    assert_int_equal(vdx_get_identity(conn, &id), DEXT_OK);
    assert_int_equal(id.vendor, TESTDEV_VENDOR_ID);
    assert_int_equal(id.class_code, TESTDEV_CLASS_CODE);
    /* Raw call: outputs limited to the room asked for. */
    assert_int_equal(vdx_call(conn, DEXT_SEL_GET_IDENTITY, NULL, 0, out, &nout), DEXT_OK);
    assert_int_equal(nout, 6);
    assert_int_equal(out[3], TESTDEV_VENDOR_ID);
    nout = 2;
    assert_int_equal(vdx_call(conn, DEXT_SEL_GET_IDENTITY, NULL, 0, out, &nout),
                     DEXT_E_BAD_ARGUMENT);
    /* Unknown selector, too many inputs: statuses, and the connection lives on. */
    nout = 0;
    assert_int_equal(vdx_call(conn, 99, NULL, 0, NULL, &nout), DEXT_E_UNSUPPORTED);
    in[0] = in[1] = in[2] = 0;
    assert_int_equal(
        vdx_call(conn, DEXT_SEL_CONFIG_READ, in, DEXT_MAX_SCALARS + 1, NULL, NULL),
        DEXT_E_BAD_ARGUMENT);
    assert_int_equal(vdx_claim(conn), DEXT_OK);
    assert_int_equal(vdx_config_read(conn, 0, 2, &val), DEXT_OK);
    assert_int_equal(val, TESTDEV_VENDOR_ID);
    assert_int_equal(vdx_get_bar_info(conn, 0, &mem_idx, NULL, NULL), DEXT_OK);
    assert_int_equal(vdx_mmio_read(conn, mem_idx, TESTDEV_REG_ID, 4, &v64), DEXT_OK);
    assert_int_equal(v64, TESTDEV_ID_MAGIC);
    /* Status JSON through its own connection while this one is open. */
    assert_int_equal(vdx_dext_status(ep, &json), DEXT_OK);
    o = json_tokener_parse(json);
    assert_non_null(o);
    json_object_put(o);
    free(json);
    vdx_disconnect(conn);
    vdx_endpoint_free(ep);
}

static void test_client_maps_bar_as_fd(void **state)
{
    struct vdx_endpoint *ep = NULL;
    struct vdx_conn *conn;
    uint32_t mem_idx = 0;
    uint64_t size = 0, v = 0;
    uint8_t type = 0;
    bool wc = false;
    void *bar = NULL;

    (void)state;
    assert_int_equal(vdx_endpoint_parse(main_dm.uri, &ep), DEXT_OK);
    conn = connect_testdev(ep);
    assert_int_equal(vdx_claim(conn), DEXT_OK);
    assert_int_equal(vdx_map_bar(conn, 2, &bar, &size, &type, &wc), DEXT_OK);
    assert_non_null(bar);
    assert_int_equal(size, TESTDEV_BAR2_DEFAULT_SIZE);
    assert_true(wc); /* prefetchable: write-combining travelled with the fd */
    /* The mapping is the daemon's memory: an MMIO read through it sees our write. */
    ((volatile uint32_t *)bar)[16] = 0xcafef00du;
    assert_int_equal(vdx_get_bar_info(conn, 2, &mem_idx, NULL, NULL), DEXT_OK);
    assert_int_equal(vdx_mmio_read(conn, mem_idx, 64, 4, &v), DEXT_OK);
    assert_int_equal(v, 0xcafef00du);
    /* BAR0 cannot be shared: unsupported, not a broken connection. */
    assert_int_equal(vdx_map_bar(conn, 0, &bar, &size, NULL, NULL), DEXT_E_UNSUPPORTED);
    assert_int_equal(vdx_claim(conn), DEXT_OK);
    vdx_disconnect(conn);
    vdx_endpoint_free(ep);
}

static bool wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, timeout_ms) == 1;
}

static void test_client_dma_and_interrupt(void **state)
{
    struct vdx_endpoint *ep = NULL;
    struct vdx_notify *n = NULL;
    struct vdx_conn *conn;
    uint64_t bus = 0, bus_len = 0, word = 0, pending[DEXT_IRQ_WORDS];
    uint32_t nvec = 0;
    void *va = NULL;

    (void)state;
    assert_int_equal(vdx_endpoint_parse(main_dm.uri, &ep), DEXT_OK);
    conn = connect_testdev(ep);
    assert_int_equal(vdx_claim(conn), DEXT_OK);
    /* DMA memory travels as an fd; the daemon sees what we wrote. */
    assert_int_equal(vdx_shm_alloc(65536, &va), DEXT_OK);
    ((uint64_t *)va)[1] = 0x1122334455667788ull;
    assert_int_equal(vdx_register_dma(conn, 0x100000, va, 65536, &bus, &bus_len), DEXT_OK);
    assert_int_equal(bus_len, 65536);
    assert_int_equal(vdx_probe_dma(conn, 0x100000, 8, &word), DEXT_OK);
    assert_true(word == 0x1122334455667788ull);
    /* Interrupt wake-up through the event fd passed once. */
    assert_int_equal(vdx_setup_interrupts(conn, &nvec), DEXT_OK);
    assert_true(nvec > 5);
    assert_int_equal(vdx_notify_create(conn, &n), DEXT_OK);
    assert_false(wait_readable(vdx_notify_fd(n), 0));
    assert_int_equal(vdx_mmio_write(conn, 0, TESTDEV_REG_RAISE, 4, 5), DEXT_OK);
    assert_true(wait_readable(vdx_notify_fd(n), 2000));
    assert_true(vdx_notify_ack(n));
    assert_int_equal(vdx_read_pending_irqs(conn, pending), DEXT_OK);
    assert_true(pending[0] == 1ull << 5);
    assert_int_equal(vdx_notify_rearm(n), DEXT_OK);
    vdx_notify_destroy(n);
    assert_int_equal(vdx_unregister_dma(conn, 0x100000), DEXT_OK);
    vdx_disconnect(conn);
    vdx_shm_free(va);
    vdx_endpoint_free(ep);
}

/* ---- Hostile clients ------------------------------------------------------------- */

static void test_hostile_short_header_then_close(void **state)
{
    uint8_t frame[16];
    int fd = raw_connect(main_dm.dir);

    (void)state;
    hdr_only(frame, VDX_WIRE_MAGIC, VDX_OP_LIST, 0);
    raw_send(fd, frame, 5, NULL, 0);
    close(fd);
    assert_daemon_serves(&main_dm);
}

static void test_hostile_garbage_magic(void **state)
{
    uint8_t frame[16];

    (void)state;
    expect_dropped(frame, hdr_only(frame, 0x47415242u, VDX_OP_LIST, 0), NULL, 0);
    memset(frame, 0xff, sizeof(frame));
    expect_dropped(frame, sizeof(frame), NULL, 0);
}

static void test_hostile_oversized_length(void **state)
{
    uint8_t frame[16];

    (void)state;
    expect_dropped(frame, hdr_only(frame, VDX_WIRE_MAGIC, VDX_OP_CALL, 0xfffffff0u), NULL,
                   0);
    /* Within the frame limit, beyond any request: refused on the header alone. */
    expect_dropped(frame, hdr_only(frame, VDX_WIRE_MAGIC, VDX_OP_STATUS, 4096), NULL, 0);
}

static void test_hostile_unknown_op(void **state)
{
    uint8_t frame[16];

    (void)state;
    expect_dropped(frame, hdr_only(frame, VDX_WIRE_MAGIC, 0x77, 0), NULL, 0);
    expect_dropped(frame, hdr_only(frame, VDX_WIRE_MAGIC, 0, 0), NULL, 0);
}

static void test_hostile_call_nin_200(void **state)
{
    uint8_t frame[VDX_WIRE_MAX_REQ_FRAME];
    int n;

    (void)state;
    /* Length that matches nin = 200: beyond the largest CALL. */
    expect_dropped(frame, hdr_only(frame, VDX_WIRE_MAGIC, VDX_OP_CALL, 16 + 8 * 200), NULL,
                   0);
    /* Legal length, nin field says 200. */
    n = vdx_wire_enc_call_req(frame, sizeof(frame), 1, 0, NULL, 0, 0);
    frame[VDX_WIRE_HDR_SIZE + 4] = 200;
    expect_dropped(frame, (size_t)n, NULL, 0);
}

static void test_hostile_three_fds(void **state)
{
    uint8_t frame[16];
    int fds[3];

    (void)state;
    for (int i = 0; i < 3; i++) {
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fds[i] >= 0);
    }
    expect_dropped(
        frame,
        (size_t)vdx_wire_enc_empty_req(frame, sizeof(frame), VDX_OP_NOTIFY_ATTACH, 1), fds,
        3);
    /* One fd on an op that takes none. */
    expect_dropped(frame,
                   (size_t)vdx_wire_enc_empty_req(frame, sizeof(frame), VDX_OP_LIST, 1),
                   fds, 1);
    for (int i = 0; i < 3; i++) {
        close(fds[i]);
    }
}

static void test_hostile_second_open_and_pipelining(void **state)
{
    uint8_t frame[64], rep[64];
    int fd = raw_connect(main_dm.dir);
    int n;

    (void)state;
    n = vdx_wire_enc_open_req(frame, sizeof(frame), 1, 0);
    raw_send(fd, frame, (size_t)n, NULL, 0);
    assert_int_equal(raw_recv_frame(fd, rep, sizeof(rep)), 24);
    raw_send(fd, frame, (size_t)n, NULL, 0); /* a second OPEN */
    assert_true(raw_closed_by_peer(fd, 2000));
    close(fd);
    /* Two requests in one write: one at a time is the rule. */
    n = vdx_wire_enc_empty_req(frame, sizeof(frame), VDX_OP_LIST, 1);
    memcpy(frame + n, frame, (size_t)n);
    expect_dropped(frame, 2 * (size_t)n, NULL, 0);
}

static void test_call_before_open_is_refused_not_dropped(void **state)
{
    uint8_t frame[64], rep[128];
    struct vdx_wire_rep r;
    int fd = raw_connect(main_dm.dir);
    size_t len;
    int n;

    (void)state;
    n = vdx_wire_enc_call_req(frame, sizeof(frame), 42, 0, NULL, 0, 6);
    raw_send(fd, frame, (size_t)n, NULL, 0);
    len = raw_recv_frame(fd, rep, sizeof(rep));
    assert_int_equal(vdx_wire_rep_decode(rep, len, 0, &r), 0);
    assert_int_equal(r.hdr.seq, 42);
    assert_int_equal(r.status, DEXT_E_NOT_ATTACHED);
    /* Still served: LIST on the same connection. */
    n = vdx_wire_enc_empty_req(frame, sizeof(frame), VDX_OP_LIST, 43);
    raw_send(fd, frame, (size_t)n, NULL, 0);
    len = raw_recv_frame(fd, rep, sizeof(rep));
    assert_int_equal(vdx_wire_rep_decode(rep, len, 0, &r), 0);
    assert_int_equal(r.u.list.count, 1);
    close(fd);
}

/* One raw CALL on an opened connection; returns the status. */
static uint32_t raw_call(int fd, uint32_t seq, uint32_t sel, const uint64_t *in, uint32_t nin)
{
    uint8_t frame[128], rep[128];
    struct vdx_wire_rep r;
    size_t len;
    int n = vdx_wire_enc_call_req(frame, sizeof(frame), seq, sel, in, nin, 6);

    raw_send(fd, frame, (size_t)n, NULL, 0);
    len = raw_recv_frame(fd, rep, sizeof(rep));
    assert_int_equal(vdx_wire_rep_decode(rep, len, 0, &r), 0);
    return r.status;
}

static uint32_t raw_notify_attach(int fd, uint32_t seq, int notify_fd)
{
    uint8_t frame[64], rep[64];
    struct vdx_wire_rep r;
    size_t len;
    int n = vdx_wire_enc_empty_req(frame, sizeof(frame), VDX_OP_NOTIFY_ATTACH, seq);

    raw_send(fd, frame, (size_t)n, &notify_fd, 1);
    len = raw_recv_frame(fd, rep, sizeof(rep));
    assert_int_equal(vdx_wire_rep_decode(rep, len, 0, &r), 0);
    return r.status;
}

/*
 * Regression: a client passed an eventfd as its notify fd, filled its counter
 * and cleared O_NONBLOCK on the shared file description; the next interrupt
 * blocked the daemon's only thread. Only sockets are accepted now, signalled
 * with MSG_DONTWAIT whatever the file description's flags.
 */
static void test_notify_fd_cannot_block_daemon(void **state)
{
    uint64_t raise[4] = {0, 0x40 /* TESTDEV_REG_RAISE */, 4, 0};
    uint8_t frame[64], rep[64];
    int fd = raw_connect(main_dm.dir), efd, sv[2];
    int n;

    (void)state;
    n = vdx_wire_enc_open_req(frame, sizeof(frame), 1, 0);
    raw_send(fd, frame, (size_t)n, NULL, 0);
    raw_recv_frame(fd, rep, sizeof(rep));
    assert_int_equal(raw_call(fd, 2, DEXT_SEL_CLAIM, NULL, 0), DEXT_OK);
    assert_int_equal(raw_call(fd, 3, DEXT_SEL_SETUP_INTERRUPTS, NULL, 0), DEXT_OK);
    /* No sink yet: a wait could never be delivered. */
    assert_int_equal(raw_call(fd, 4, DEXT_SEL_WAIT_INTERRUPT, NULL, 0), DEXT_E_BAD_ARGUMENT);
    efd = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(raw_notify_attach(fd, 5, efd), DEXT_E_BAD_ARGUMENT);
    close(efd);
    /* A socket whose buffer we fill and whose flags we make blocking. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(raw_notify_attach(fd, 6, sv[1]), DEXT_OK);
    while (send(sv[1], "x", 1, MSG_DONTWAIT) == 1) {
    }
    assert_int_equal(fcntl(sv[1], F_SETFL, 0), 0);
    close(sv[1]);
    for (uint32_t i = 0; i < 50; i++) {
        assert_int_equal(raw_call(fd, 10 + 2 * i, DEXT_SEL_WAIT_INTERRUPT, NULL, 0), DEXT_OK);
        assert_int_equal(raw_call(fd, 11 + 2 * i, DEXT_SEL_MMIO_WRITE, raise, 4), DEXT_OK);
    }
    assert_daemon_serves(&main_dm);
    close(sv[0]);
    close(fd);
}

static void test_partial_frame_does_not_block_others(void **state)
{
    uint8_t frame[16], rep[128];
    struct vdx_wire_rep r;
    uint64_t t0;
    size_t len;
    int stalled = raw_connect(main_dm.dir);

    (void)state;
    vdx_wire_enc_empty_req(frame, sizeof(frame), VDX_OP_LIST, 7);
    raw_send(stalled, frame, 7, NULL, 0);
    t0 = vdx_now_ns();
    assert_daemon_serves(&main_dm); /* another client, served promptly */
    assert_daemon_serves(&main_dm);
    assert_true(vdx_now_ns() - t0 < 1000000000ull);
    /* The stalled client completes its frame later and is answered. */
    raw_send(stalled, frame + 7, sizeof(frame) - 7, NULL, 0);
    len = raw_recv_frame(stalled, rep, sizeof(rep));
    assert_int_equal(vdx_wire_rep_decode(rep, len, 0, &r), 0);
    assert_int_equal(r.hdr.seq, 7);
    assert_int_equal(r.u.list.count, 1);
    close(stalled);
}

/* Regression guard: every hostile client above must have left no fd behind. */
static void test_daemon_leaks_no_fds(void **state)
{
    int now = -1;

    (void)state;
    if (main_dm_fds < 0) {
        skip(); /* no /proc */
    }
    for (int i = 0; i < 100 && now != main_dm_fds; i++) {
        usleep(10000); /* drops of closed clients are asynchronous */
        now = count_fds(main_dm.pid);
    }
    assert_int_equal(now, main_dm_fds);
}

static void test_daemon_survives_and_exits_0(void **state)
{
    (void)state;
    assert_daemon_serves(&main_dm);
    daemon_stop_clean(&main_dm);
}

/* ---- Setup failures, in-process servers -------------------------------------------- */

static struct dext *empty_dext(void)
{
    struct dext *d = NULL;

    assert_int_equal(dext_create(NULL, &d), 0);
    return d;
}

static void sub_dir(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", base_dir, name);

    assert_true(n > 0 && (size_t)n < len);
}

static void test_second_server_gets_eaddrinuse(void **state)
{
    struct vdx_unix_server_opts o = {0};
    struct vdx_unix_server *srv = NULL;
    struct daemon dm;
    struct daemon_cfg cfg = {.become = (uid_t)-1};
    struct dext *d = empty_dext();
    char dir[PATH_MAX];

    (void)state;
    sub_dir(dir, sizeof(dir), "second");
    daemon_start(&dm, dir, &cfg);
    o.runtime_dir = dir;
    assert_int_equal(vdx_unix_server_create(d, &o, &srv), -EADDRINUSE);
    assert_null(srv);
    assert_daemon_serves(&dm); /* its socket was left alone */
    daemon_stop_clean(&dm);
    dext_destroy(d);
}

static void test_stale_socket_is_replaced(void **state)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct vdx_unix_server_opts o = {0};
    struct vdx_unix_server *srv = NULL;
    struct dext *d = empty_dext();
    char dir[PATH_MAX];
    struct stat st;
    int fd;

    (void)state;
    sub_dir(dir, sizeof(dir), "stale");
    assert_int_equal(mkdir(dir, 0700), 0);
    /* A socket file nobody listens on: a daemon that died. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sock_path(addr.sun_path, sizeof(addr.sun_path), dir);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(fd);
    o.runtime_dir = dir;
    assert_int_equal(vdx_unix_server_create(d, &o, &srv), 0);
    fd = raw_connect(dir); /* the new socket answers */
    assert_int_equal(vdx_unix_server_step(srv, 1000), 1);
    assert_int_equal(vdx_unix_server_clients(srv), 1);
    close(fd);
    assert_true(vdx_unix_server_step(srv, 1000) >= 1);
    assert_int_equal(vdx_unix_server_clients(srv), 0);
    vdx_unix_server_destroy(srv);
    assert_int_equal(lstat(addr.sun_path, &st), -1); /* unlinked on destroy */
    dext_destroy(d);
}

static void test_runtime_dir_refused(void **state)
{
    struct vdx_unix_server_opts o = {0};
    struct vdx_unix_server *srv = NULL;
    struct dext *d = empty_dext();
    char dir[PATH_MAX], link[PATH_MAX], path[PATH_MAX];
    int fd;

    (void)state;
    sub_dir(dir, sizeof(dir), "open-dir");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0750), 0);
    o.runtime_dir = dir;
    assert_int_equal(vdx_unix_server_create(d, &o, &srv), -EPERM);
    assert_int_equal(chmod(dir, 0700), 0);
    /* A symlink to a good dir is not accepted either. */
    sub_dir(link, sizeof(link), "link-dir");
    assert_int_equal(symlink(dir, link), 0);
    o.runtime_dir = link;
    assert_int_equal(vdx_unix_server_create(d, &o, &srv), -ENOTDIR);
    /* Something that is not a socket where the socket goes. */
    sock_path(path, sizeof(path), dir);
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    o.runtime_dir = dir;
    assert_int_equal(vdx_unix_server_create(d, &o, &srv), -EEXIST);
    assert_null(srv);
    dext_destroy(d);
}

static void test_max_clients_enforced(void **state)
{
    struct vdx_unix_server_opts o = {0};
    struct vdx_unix_server *srv = NULL;
    struct dext *d = empty_dext();
    char dir[PATH_MAX];
    int fds[3];

    (void)state;
    sub_dir(dir, sizeof(dir), "max");
    o.runtime_dir = dir;
    o.max_clients = 2;
    assert_int_equal(vdx_unix_server_create(d, &o, &srv), 0);
    for (int i = 0; i < 3; i++) {
        fds[i] = raw_connect(dir);
    }
    for (int i = 0; i < 3 && vdx_unix_server_clients(srv) < 2; i++) {
        assert_true(vdx_unix_server_step(srv, 1000) >= 0);
    }
    (void)vdx_unix_server_step(srv, 100);
    assert_int_equal(vdx_unix_server_clients(srv), 2);
    assert_true(raw_closed_by_peer(fds[2], 1000));
    assert_false(raw_closed_by_peer(fds[0], 0));
    for (int i = 0; i < 3; i++) {
        close(fds[i]);
    }
    vdx_unix_server_destroy(srv); /* with live connections: closes them */
    dext_destroy(d);
}

/* A client that sends requests but never reads replies is dropped, in bounded time. */
static void test_slow_reader_dropped(void **state)
{
    struct vdx_unix_server_opts o = {0};
    struct vdx_unix_server *srv = NULL;
    struct dext *d = empty_dext();
    char dir[PATH_MAX];
    uint8_t frame[16];
    uint64_t t0;
    int fd, i;

    (void)state;
    sub_dir(dir, sizeof(dir), "slow");
    o.runtime_dir = dir;
    assert_int_equal(vdx_unix_server_create(d, &o, &srv), 0);
    fd = raw_connect(dir);
    assert_int_equal(vdx_unix_server_step(srv, 1000), 1);
    vdx_wire_enc_empty_req(frame, sizeof(frame), VDX_OP_LIST, 1);
    t0 = vdx_now_ns();
    for (i = 0; i < 1000000 && vdx_unix_server_clients(srv) == 1; i++) {
        assert_int_equal(send(fd, frame, sizeof(frame), MSG_NOSIGNAL), sizeof(frame));
        assert_int_equal(vdx_unix_server_step(srv, 1000), 1);
    }
    assert_int_equal(vdx_unix_server_clients(srv), 0);
    assert_true(i > 1); /* replies were sent until the buffer was full */
    assert_true(vdx_now_ns() - t0 < 10000000000ull);
    close(fd);
    vdx_unix_server_destroy(srv);
    dext_destroy(d);
}

/* ---- In-process: the same paths under this process's sanitizers ---------------- */

struct stepper {
    struct vdx_unix_server *srv;
    int stop; /* atomic */
    int err;
};

/* The one thread that drives the server while the test thread is its client. */
static void *stepper_main(void *arg)
{
    struct stepper *st = arg;

    while (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) {
        int rc = vdx_unix_server_step(st->srv, 20);

        if (rc < 0 && rc != -EINTR) {
            st->err = rc;
            break;
        }
    }
    return NULL;
}

static void in_process_client_session(const char *uri, const char *dir)
{
    struct vdx_endpoint *ep = NULL;
    struct vdx_notify *n = NULL;
    struct dext_irq_page *page = NULL;
    struct vdx_conn *conn;
    uint64_t bus = 0, v = 0, size = 0;
    uint32_t nvec = 0;
    void *va = NULL, *bar = NULL;
    uint8_t frame[16];
    char *json = NULL;
    int fd;

    assert_int_equal(vdx_endpoint_parse(uri, &ep), DEXT_OK);
    conn = connect_testdev(ep);
    assert_int_equal(vdx_claim(conn), DEXT_OK);
    assert_int_equal(vdx_map_bar(conn, 2, &bar, &size, NULL, NULL), DEXT_OK);
    assert_int_equal(vdx_shm_alloc(16384, &va), DEXT_OK);
    assert_int_equal(vdx_register_dma(conn, 0x4000, va, 16384, &bus, NULL), DEXT_OK);
    assert_int_equal(vdx_setup_interrupts(conn, &nvec), DEXT_OK);
    assert_int_equal(vdx_map_irq_page(conn, &page), DEXT_OK);
    assert_int_equal(vdx_notify_create(conn, &n), DEXT_OK);
    assert_int_equal(vdx_mmio_write(conn, 0, TESTDEV_REG_RAISE, 4, 3), DEXT_OK);
    assert_true(wait_readable(vdx_notify_fd(n), 2000));
    assert_int_equal(vdx_mmio_read(conn, 0, TESTDEV_REG_IRQS, 4, &v), DEXT_OK);
    assert_int_equal(vdx_dext_status(ep, &json), DEXT_OK);
    free(json);
    /* A hostile frame on another connection in the middle of it all. */
    fd = raw_connect(dir);
    raw_send(fd, frame, hdr_only(frame, 0x1badd00du, VDX_OP_LIST, 0), NULL, 0);
    assert_true(raw_closed_by_peer(fd, 2000));
    close(fd);
    /* Left open on purpose: the server must release it all on disconnect. */
    vdx_notify_destroy(n);
    vdx_disconnect(conn);
    vdx_shm_free(va);
    vdx_endpoint_free(ep);
}

static void test_in_process_round_trips(void **state)
{
    struct vdx_unix_server_opts o = {0};
    struct stepper st = {0};
    struct dext *d = make_dext();
    char dir[PATH_MAX], uri[PATH_MAX + 8];
    pthread_t thread;

    (void)state;
    assert_non_null(d);
    sub_dir(dir, sizeof(dir), "inproc");
    snprintf(uri, sizeof(uri), "unix:%s", dir);
    o.runtime_dir = dir;
    assert_int_equal(vdx_unix_server_create(d, &o, &st.srv), 0);
    assert_int_equal(pthread_create(&thread, NULL, stepper_main, &st), 0);
    in_process_client_session(uri, dir);
    __atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(st.err, 0);
    vdx_unix_server_destroy(st.srv); /* after the client: nothing may be left */
    dext_destroy(d);
}

/* ---- Client side: dead daemon, malformed replies ------------------------------------ */

static void test_dead_daemon_is_not_attached(void **state)
{
    struct daemon_cfg cfg = {.become = (uid_t)-1};
    struct vdx_endpoint *ep = NULL;
    struct vdx_device_desc *devs = NULL;
    struct vdx_conn *conn;
    struct daemon dm;
    char dir[PATH_MAX];
    size_t n = 0;
    int status;

    (void)state;
    /* Nobody there at all. */
    sub_dir(dir, sizeof(dir), "nobody");
    snprintf(dm.uri, sizeof(dm.uri), "unix:%s", dir);
    assert_int_equal(vdx_endpoint_parse(dm.uri, &ep), DEXT_OK);
    assert_int_equal(vdx_list_devices(ep, &devs, &n), DEXT_E_NOT_ATTACHED);
    vdx_endpoint_free(ep);
    /* A daemon that dies under an open connection. */
    sub_dir(dir, sizeof(dir), "dies");
    daemon_start(&dm, dir, &cfg);
    assert_int_equal(vdx_endpoint_parse(dm.uri, &ep), DEXT_OK);
    conn = connect_testdev(ep);
    assert_int_equal(vdx_claim(conn), DEXT_OK);
    kill(dm.pid, SIGKILL);
    waitpid(dm.pid, &status, 0);
    assert_int_equal(vdx_claim(conn), DEXT_E_NOT_ATTACHED);
    assert_int_equal(vdx_claim(conn), DEXT_E_NOT_ATTACHED); /* and stays so */
    assert_int_equal(vdx_list_devices(ep, &devs, &n), DEXT_E_NOT_ATTACHED);
    vdx_disconnect(conn);
    vdx_endpoint_free(ep);
}

enum bad_reply { BAD_MAGIC, BAD_SEQ, BAD_OP, MEM_OK_WITHOUT_FD, TRAILING_BYTES, BAD_COUNT };

/* A fake daemon: for each scenario, accept, answer OPEN, then answer badly. */
static void fake_daemon(int lfd)
{
    uint8_t req[VDX_WIRE_MAX_REQ_FRAME], rep[128];
    struct vdx_wire_hdr h;

    for (int s = 0; s < BAD_COUNT; s++) {
        int fd = accept(lfd, NULL, NULL);
        uint64_t zero = 0;
        int n;

        if (fd < 0 || recv(fd, req, sizeof(req), 0) < 16) {
            _exit(3);
        }
        vdx_wire_hdr_decode(req, 16, &h);
        n = vdx_wire_enc_status_rep(rep, sizeof(rep), VDX_OP_OPEN, h.seq, DEXT_OK);
        send(fd, rep, (size_t)n, MSG_NOSIGNAL);
        if (recv(fd, req, sizeof(req), 0) < 16) {
            _exit(4);
        }
        vdx_wire_hdr_decode(req, 16, &h);
        if (s == MEM_OK_WITHOUT_FD) {
            n = vdx_wire_enc_mem_rep(rep, sizeof(rep), h.seq, DEXT_OK, 0, 0, 4096);
        } else {
            n = vdx_wire_enc_call_rep(rep, sizeof(rep), s == BAD_SEQ ? h.seq + 1 : h.seq,
                                      DEXT_OK, &zero, 1);
        }
        if (s == BAD_MAGIC) {
            rep[0] ^= 0x55;
        } else if (s == BAD_OP) {
            rep[4] = VDX_OP_REGISTER_DMA;
        } else if (s == TRAILING_BYTES) {
            n += 3;
        }
        send(fd, rep, (size_t)n, MSG_NOSIGNAL);
        while (recv(fd, req, sizeof(req), 0) > 0) {
        }
        close(fd);
    }
    _exit(0);
}

static void test_malformed_reply_is_io_error(void **state)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const struct vdx_transport_ops *ops = &vdx_transport_unix;
    char dir[PATH_MAX];
    void *ep = NULL;
    pid_t pid;
    int lfd, status;

    (void)state;
    sub_dir(dir, sizeof(dir), "fake");
    assert_int_equal(mkdir(dir, 0700), 0);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sock_path(addr.sun_path, sizeof(addr.sun_path), dir);
    assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    pid = fork();
    if (pid == 0) {
        fake_daemon(lfd);
    }
    close(lfd);
    assert_int_equal(vdx_unix_endpoint_new(dir, &ep), DEXT_OK);
    for (int s = 0; s < BAD_COUNT; s++) {
        uint64_t out[2];
        uint32_t nout = 2;
        struct dext_mem mem;
        void *uc = NULL;

        assert_int_equal(ops->open(ep, 0, &uc), DEXT_OK);
        if (s == MEM_OK_WITHOUT_FD) {
            assert_int_equal(ops->copy_memory(uc, DEXT_MEM_BAR2, &mem), DEXT_E_IO_ERROR);
            assert_int_equal(mem.fd, -1);
        } else {
            assert_int_equal(ops->call(uc, 0, NULL, 0, out, &nout), DEXT_E_IO_ERROR);
        }
        /* Marked broken: it stays so, without talking to the peer again. */
        assert_int_equal(ops->call(uc, 0, NULL, 0, out, &nout), DEXT_E_IO_ERROR);
        ops->close(uc);
    }
    ops->ep_free(ep);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- Peer credentials (needs root to run a daemon as another uid) ------------------ */

static void test_peer_uid_checked(void **state)
{
    struct daemon_cfg cfg = {.become = NOBODY_UID};
    struct vdx_endpoint *ep = NULL;
    struct vdx_device_desc *devs = NULL;
    struct daemon dm;
    char dir[64];
    size_t n = 0;
    int fd;

    (void)state;
    if (geteuid() != 0) {
        skip(); /* running a daemon as another uid needs root */
    }
    /* The daemon runs as nobody; we (root) are not its uid. */
    snprintf(dir, sizeof(dir), "/tmp/vdx-uid-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chown(dir, NOBODY_UID, NOBODY_UID), 0);
    daemon_start(&dm, dir, &cfg);
    fd = raw_connect(dir);
    assert_true(raw_closed_by_peer(fd, 2000));
    close(fd);
    assert_int_equal(vdx_endpoint_parse(dm.uri, &ep), DEXT_OK);
    assert_int_equal(vdx_list_devices(ep, &devs, &n), DEXT_E_NOT_ATTACHED);
    vdx_endpoint_free(ep);
    daemon_stop_clean(&dm);
    /* The same, with uid 0 allowed. */
    cfg.allow_root = true;
    daemon_start(&dm, dir, &cfg);
    assert_daemon_serves(&dm);
    daemon_stop_clean(&dm);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_dir_0700_socket_0600),
        cmocka_unit_test(test_client_lists_and_calls),
        cmocka_unit_test(test_client_maps_bar_as_fd),
        cmocka_unit_test(test_client_dma_and_interrupt),
        cmocka_unit_test(test_hostile_short_header_then_close),
        cmocka_unit_test(test_hostile_garbage_magic),
        cmocka_unit_test(test_hostile_oversized_length),
        cmocka_unit_test(test_hostile_unknown_op),
        cmocka_unit_test(test_hostile_call_nin_200),
        cmocka_unit_test(test_hostile_three_fds),
        cmocka_unit_test(test_hostile_second_open_and_pipelining),
        cmocka_unit_test(test_call_before_open_is_refused_not_dropped),
        cmocka_unit_test(test_notify_fd_cannot_block_daemon),
        cmocka_unit_test(test_partial_frame_does_not_block_others),
        cmocka_unit_test(test_daemon_leaks_no_fds),
        cmocka_unit_test(test_daemon_survives_and_exits_0),
        cmocka_unit_test(test_second_server_gets_eaddrinuse),
        cmocka_unit_test(test_stale_socket_is_replaced),
        cmocka_unit_test(test_runtime_dir_refused),
        cmocka_unit_test(test_max_clients_enforced),
        cmocka_unit_test(test_slow_reader_dropped),
        cmocka_unit_test(test_in_process_round_trips),
        cmocka_unit_test(test_dead_daemon_is_not_attached),
        cmocka_unit_test(test_malformed_reply_is_io_error),
        cmocka_unit_test(test_peer_uid_checked),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
