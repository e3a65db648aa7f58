/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Integration tests of the passthrough backend (src/vfio/): a dext with
 * sim:testdev or sim:nvme, reached through the local transport (in-process)
 * or the unix transport (a daemon in a forked child, tests/core/fixture.c),
 * every test over both; the backend over a claimed connection, a vfio-user
 * server on a real socket, stepped in this process while an in-repo client
 * (adapted from tests/vfio-user/test_vu_server.c) replays QEMU's startup and
 * run-time messages (reference/vfio-user.md §2.4, §2.13, §3.3).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "../core/fixture.h"
#include "common/log.h"
#include "devices/testdev.h"
#include "dext/core.h"
#include "platform/platform.h"
#include "vfio-dext/client.h"
#include "vfio-user/protocol.h"
#include "vfio-user/server.h"
#include "vfio/passthru.h"

static const char qemu_caps[] =
    "{\"capabilities\": {\"pgsizes\": 4096, \"max_msg_fds\": 16, \"max_dma_maps\": 65535, "
    "\"max_data_xfer_size\": 1048576, \"migration\": {\"max_bitmap_size\": 268435456, "
    "\"pgsize\": 4096}, \"write_multiple\": true}}";

#define MSG_MAX   (8192u)
#define RAM_IOVA  0x100000ull
#define RAM_SIZE  (2u << 20)
#define ROM_IOVA  0xc0000ull
#define ROM_SIZE  0x20000ull
#define EVT_TRIG  (VDX_VU_IRQ_SET_DATA_EVENTFD | VDX_VU_IRQ_SET_ACTION_TRIGGER)
#define NONE_TRIG (VDX_VU_IRQ_SET_DATA_NONE | VDX_VU_IRQ_SET_ACTION_TRIGGER)
#define CFG       VDX_VU_PCI_CONFIG_REGION

/* ---- Fixture: dext + backend + server, stepped by pump() ---------------------------- */

struct fx {
    struct fixture f; /* the dext: in-process or a daemon */
    struct vdx_conn *conn;
    struct vdx_passthru *pt;
    struct vdx_vu_server *srv;
    char dir[64], path[128];
    int ram_fd;
    uint8_t *ram; /* the client's view of guest RAM */
};

static struct fx g;

static void quiet_log(enum vdx_log_level lvl, const char *msg, void *opaque)
{
    (void)opaque;
    if (getenv("PT_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "[log %d] %s\n", (int)lvl, msg);
    }
}

static void pump(int ms)
{
    struct pollfd p = {.fd = vdx_passthru_irq_fd(g.pt), .events = POLLIN};
    int rc = vdx_vu_server_step(g.srv, ms);

    assert_true(rc >= 0 || rc == -EINTR);
    if (poll(&p, 1, 0) > 0) {
        assert_true(vdx_passthru_step(g.pt) >= 0);
    }
}

/* The transport a test runs over: its prestate. */
static bool tr_local = false, tr_unix = true;

static bool over_unix(void **state)
{
    return *(const bool *)*state;
}

static void fx_up(const char *spec, void **state)
{
    memset(&g, 0, sizeof(g));
    assert_int_equal(fixture_start_spec(&g.f, over_unix(state), DEXT_IOMMU_IDENTITY, spec),
                     0);
    vdx_log_set(quiet_log, NULL, VDX_LOG_DEBUG);
    g.conn = fixture_connect(&g.f);
    assert_int_equal(vdx_passthru_create(g.conn, "0000:00:01.0", &g.pt), 0);
    snprintf(g.dir, sizeof(g.dir), "/tmp/vdx-pt-XXXXXX");
    assert_non_null(mkdtemp(g.dir));
    snprintf(g.path, sizeof(g.path), "%s/dev.sock", g.dir);
    assert_int_equal(vdx_vu_server_create(g.path, vdx_passthru_ops(), g.pt, &g.srv), 0);
    /* Guest RAM as QEMU's memory-backend-memfd makes it: sealed against shrinking. */
    g.ram_fd = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(g.ram_fd >= 0);
    assert_int_equal(ftruncate(g.ram_fd, RAM_SIZE), 0);
    assert_int_equal(fcntl(g.ram_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    g.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g.ram_fd, 0);
    assert_true(g.ram != MAP_FAILED);
}

static void fx_down(void)
{
    munmap(g.ram, RAM_SIZE);
    close(g.ram_fd);
    vdx_vu_server_destroy(g.srv);
    vdx_passthru_destroy(g.pt);
    vdx_disconnect(g.conn);
    fixture_stop(&g.f);
    rmdir(g.dir);
}

/* ---- Client (adapted from tests/vfio-user/test_vu_server.c) ------------------------ */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | ((uint64_t)get32(p + 4) << 32);
}

static int cl_connect(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0 && strlen(g.path) < sizeof(a.sun_path));
    memcpy(a.sun_path, g.path, strlen(g.path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void cl_send(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * 16)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    if (nfds > 0) {
        struct cmsghdr *cm;

        memset(&cbuf, 0, sizeof(cbuf));
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

static bool cl_wait(int fd, unsigned ms)
{
    uint64_t end = vdx_now_ns() + ms * 1000000ull;
    struct pollfd p = {.fd = fd, .events = POLLIN};

    do {
        pump(0);
        if (poll(&p, 1, 1) > 0) {
            return true;
        }
    } while (vdx_now_ns() < end);
    return false;
}

/* Descriptors that came with a reply: the first goes to *keep (when not
 * NULL and still -1), the others are closed. */
static void cl_take_fds(struct msghdr *msg, int *keep)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int rfd;

            memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (keep != NULL && *keep < 0) {
                *keep = rfd;
            } else {
                assert_null(keep); /* at most one descriptor per reply */
                close(rfd);
            }
        }
    }
}

/* One reply; a descriptor goes to *fd_out (NULL: descriptors are closed).
 * Returns its size, 0 on EOF. */
static ssize_t cl_recv_fd(int fd, uint8_t *p, size_t cap, int *fd_out)
{
    size_t got = 0, size = VDX_VU_HDR_SIZE;

    while (got < size) {
        union {
            char b[CMSG_SPACE(sizeof(int) * 4)];
            struct cmsghdr align;
        } cbuf;
        struct iovec iov = {p + got, size - got};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
                             .msg_controllen = sizeof(cbuf.b)};
        ssize_t n;

        assert_true(cl_wait(fd, 2000));
        n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n <= 0) {
            return 0;
        }
        cl_take_fds(&msg, fd_out);
        got += (size_t)n;
        if (got == VDX_VU_HDR_SIZE && size == VDX_VU_HDR_SIZE) {
            size = get32(p + 4);
            assert_true(size >= VDX_VU_HDR_SIZE && size <= cap);
        }
    }
    return (ssize_t)size;
}

static ssize_t cl_recv(int fd, uint8_t *p, size_t cap)
{
    return cl_recv_fd(fd, p, cap, NULL);
}

struct msg {
    uint8_t b[MSG_MAX];
    size_t n;
};

static void m8(struct msg *m, uint8_t v)
{
    m->b[m->n++] = v;
}

static void m16(struct msg *m, uint16_t v)
{
    m8(m, (uint8_t)v), m8(m, (uint8_t)(v >> 8));
}

static void m32(struct msg *m, uint32_t v)
{
    m16(m, (uint16_t)v), m16(m, (uint16_t)(v >> 16));
}

static void m64(struct msg *m, uint64_t v)
{
    m32(m, (uint32_t)v), m32(m, (uint32_t)(v >> 32));
}

static void msg_begin(struct msg *m, uint16_t cmd)
{
    static uint16_t id;

    m->n = 0;
    m16(m, ++id), m16(m, cmd), m32(m, 0), m32(m, 0), m32(m, 0);
}

/* Send m (with fds), read the reply; assert success. Returns the reply size. */
static ssize_t rpc_fds(int fd, struct msg *m, uint8_t *rep, size_t cap, const int *fds,
                       unsigned nfds)
{
    ssize_t n;

    put32(m->b + 4, (uint32_t)m->n);
    cl_send(fd, m->b, m->n, fds, nfds);
    n = cl_recv(fd, rep, cap);
    assert_true(n >= 16);
    assert_int_equal(get32(rep + 8) & VDX_VU_F_ERROR, 0);
    return n;
}

static ssize_t rpc(int fd, struct msg *m, uint8_t *rep, size_t cap)
{
    return rpc_fds(fd, m, rep, cap, NULL, 0);
}

static void q_version(int fd)
{
    struct msg m;
    uint8_t rep[256];

    msg_begin(&m, VDX_VU_CMD_VERSION);
    m16(&m, 0), m16(&m, 0);
    memcpy(m.b + m.n, qemu_caps, sizeof(qemu_caps));
    m.n += sizeof(qemu_caps);
    rpc(fd, &m, rep, sizeof(rep));
}

static void q_dma_map(int fd, int mfd, uint64_t iova, uint64_t size)
{
    struct msg m;
    uint8_t rep[64];
    uint32_t flags = VDX_VU_DMA_MAP_F_READ | (mfd >= 0 ? VDX_VU_DMA_MAP_F_WRITE : 0);

    msg_begin(&m, VDX_VU_CMD_DMA_MAP);
    m32(&m, 32), m32(&m, flags), m64(&m, 0), m64(&m, iova), m64(&m, size);
    rpc_fds(fd, &m, rep, sizeof(rep), &mfd, mfd >= 0 ? 1 : 0);
}

/* Size of region `index` (region info, argsz 32). */
static uint64_t q_region_size(int fd, uint32_t index)
{
    struct msg m;
    uint8_t rep[256];

    msg_begin(&m, VDX_VU_CMD_DEVICE_GET_REGION_INFO);
    m32(&m, 32), m32(&m, 0), m32(&m, index), m32(&m, 0), m64(&m, 0), m64(&m, 0);
    assert_true(rpc(fd, &m, rep, sizeof(rep)) >= 48);
    return get64(rep + 16 + 16);
}

static void q_read(int fd, uint32_t region, uint64_t off, void *buf, uint32_t count)
{
    struct msg m;
    static uint8_t rep[MSG_MAX];

    msg_begin(&m, VDX_VU_CMD_REGION_READ);
    m64(&m, off), m32(&m, region), m32(&m, count);
    assert_int_equal(rpc(fd, &m, rep, sizeof(rep)), 32 + count);
    memcpy(buf, rep + 32, count);
}

static uint64_t rd(int fd, uint32_t region, uint64_t off, uint32_t count)
{
    uint8_t b[8] = {0};

    q_read(fd, region, off, b, count);
    return get64(b);
}

static void wr(int fd, uint32_t region, uint64_t off, uint64_t v, uint32_t count)
{
    struct msg m;
    uint8_t rep[64];

    msg_begin(&m, VDX_VU_CMD_REGION_WRITE);
    m64(&m, off), m32(&m, region), m32(&m, count);
    for (uint32_t i = 0; i < count; i++) {
        m8(&m, (uint8_t)(v >> (8 * i)));
    }
    rpc(fd, &m, rep, sizeof(rep));
}

static void q_set_irqs(int fd, uint32_t flags, uint32_t index, uint32_t start,
                       uint32_t count, const int *fds, unsigned nfds)
{
    struct msg m;
    uint8_t rep[64];

    msg_begin(&m, VDX_VU_CMD_DEVICE_SET_IRQS);
    m32(&m, 20), m32(&m, flags), m32(&m, index), m32(&m, start), m32(&m, count);
    rpc_fds(fd, &m, rep, sizeof(rep), fds, nfds);
}

static void q_reset(int fd)
{
    struct msg m;
    uint8_t rep[64];

    msg_begin(&m, VDX_VU_CMD_DEVICE_RESET);
    rpc(fd, &m, rep, sizeof(rep));
}

/* QEMU's start: VERSION, DMA maps (RAM with memfd, ROM without), GET_INFO. */
static int q_start(void)
{
    int fd = cl_connect();
    struct msg m;
    uint8_t rep[64];

    q_version(fd);
    q_dma_map(fd, -1, ROM_IOVA, ROM_SIZE);
    q_dma_map(fd, g.ram_fd, RAM_IOVA, RAM_SIZE);
    msg_begin(&m, VDX_VU_CMD_DEVICE_GET_INFO);
    m32(&m, 16), m32(&m, 0), m32(&m, 0), m32(&m, 0);
    assert_int_equal(rpc(fd, &m, rep, sizeof(rep)), 32);
    assert_int_equal(get32(rep + 20), VDX_VU_DEVICE_F_PCI | VDX_VU_DEVICE_F_RESET);
    assert_int_equal(get32(rep + 24), 9);
    assert_int_equal(get32(rep + 28), 5);
    return fd;
}

static uint64_t dext_counter(const char *name)
{
    char *js = NULL;
    struct json_object *root, *devs, *ctr, *v;
    uint64_t r;

    assert_int_equal(vdx_dext_status(g.f.ep, &js), DEXT_OK);
    root = json_tokener_parse(js);
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "devices", &devs));
    assert_true(json_object_object_get_ex(json_object_array_get_idx(devs, 0), "counters",
                                          &ctr));
    assert_true(json_object_object_get_ex(ctr, name, &v));
    r = (uint64_t)json_object_get_int64(v);
    json_object_put(root);
    free(js);
    return r;
}

/* Disconnect; the server releases the maps, the dext its registrations. */
static void q_close(int fd)
{
    uint64_t end = vdx_now_ns() + 3000000000ull;

    close(fd);
    while (vdx_vu_server_connected(g.srv) && vdx_now_ns() < end) {
        pump(5);
    }
    assert_false(vdx_vu_server_connected(g.srv));
    assert_int_equal(dext_counter("dma_regions_live"), 0);
}

static uint64_t efd_read(int fd)
{
    uint64_t v = 0;

    return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? v : 0;
}

/* A DEVICE_GET_REGION_INFO reply, decoded (reference/vfio-user.md §2.4). */
struct rinfo {
    uint32_t argsz, flags, cap_offset;
    uint64_t size, offset;
    uint32_t nr_areas;
    struct vdx_vu_sparse_area areas[VDX_VU_MAX_SPARSE_AREAS];
    int fd; /* the descriptor that came with the reply, or -1 */
};

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* The sparse-mmap capability at cap (the only one the backend sends). */
static void rinfo_caps(const uint8_t *info, size_t len, struct rinfo *ri)
{
    const uint8_t *cap = info + ri->cap_offset;

    assert_int_equal(ri->cap_offset, VDX_VU_REGION_INFO_SIZE);
    assert_true(len >= ri->cap_offset + VDX_VU_SPARSE_CAP_SIZE);
    assert_int_equal(get16(cap), VDX_VU_REGION_CAP_SPARSE_MMAP);
    assert_int_equal(get16(cap + 2), VDX_VU_SPARSE_MMAP_VERSION);
    assert_int_equal(get32(cap + 4), 0); /* next: none */
    ri->nr_areas = get32(cap + 8);
    assert_true(ri->nr_areas > 0 && ri->nr_areas <= VDX_VU_MAX_SPARSE_AREAS);
    assert_int_equal(len, VDX_VU_REGION_INFO_SIZE + VDX_VU_SPARSE_CAP_SIZE +
                              VDX_VU_SPARSE_AREA_SIZE * ri->nr_areas);
    for (uint32_t i = 0; i < ri->nr_areas; i++) {
        const uint8_t *a = cap + VDX_VU_SPARSE_CAP_SIZE + VDX_VU_SPARSE_AREA_SIZE * i;

        ri->areas[i] = (struct vdx_vu_sparse_area){get64(a), get64(a + 8)};
    }
}

/* Region info of `index` asked with `argsz`, as QEMU does. */
static void q_region_info(int fd, uint32_t index, uint32_t argsz, struct rinfo *ri)
{
    struct msg m;
    uint8_t rep[512];
    ssize_t n;

    msg_begin(&m, VDX_VU_CMD_DEVICE_GET_REGION_INFO);
    m32(&m, argsz), m32(&m, 0), m32(&m, index), m32(&m, 0), m64(&m, 0), m64(&m, 0);
    put32(m.b + 4, (uint32_t)m.n);
    cl_send(fd, m.b, m.n, NULL, 0);
    memset(ri, 0, sizeof(*ri));
    ri->fd = -1;
    n = cl_recv_fd(fd, rep, sizeof(rep), &ri->fd);
    assert_true(n >= VDX_VU_HDR_SIZE + VDX_VU_REGION_INFO_SIZE);
    assert_int_equal(get32(rep + 8) & VDX_VU_F_ERROR, 0);
    ri->argsz = get32(rep + 16);
    ri->flags = get32(rep + 20);
    assert_int_equal(get32(rep + 24), index);
    ri->cap_offset = get32(rep + 28);
    ri->size = get64(rep + 32);
    ri->offset = get64(rep + 40);
    if (ri->flags & VDX_VU_REGION_F_CAPS) {
        rinfo_caps(rep + 16, (size_t)n - 16, ri);
    } else {
        assert_int_equal(ri->cap_offset, 0);
        assert_int_equal(n, VDX_VU_HDR_SIZE + VDX_VU_REGION_INFO_SIZE);
    }
}

/* QEMU's two steps: argsz 32, then the argsz the reply asked for. */
static void q_region_full(int fd, uint32_t index, struct rinfo *ri)
{
    uint32_t need;

    q_region_info(fd, index, VDX_VU_REGION_INFO_SIZE, ri);
    if (ri->argsz <= VDX_VU_REGION_INFO_SIZE) {
        return;
    }
    assert_int_equal(ri->fd, -1); /* the fd comes only with the full reply */
    need = ri->argsz;
    q_region_info(fd, index, need, ri);
    assert_int_equal(ri->argsz, need);
}

#define RW      (VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE)
#define RW_MMAP (RW | VDX_VU_REGION_F_MMAP)

/* ---- Tests -------------------------------------------------------------------------- */

static void test_regions_and_config_reads(void **state)
{
    uint8_t cfg[4096], dev[4096];
    int fd;

    fx_up("sim:testdev", state);
    fd = q_start();
    assert_int_equal(q_region_size(fd, 0), TESTDEV_BAR0_SIZE);
    assert_int_equal(q_region_size(fd, 1), 0);
    assert_int_equal(q_region_size(fd, 2), TESTDEV_BAR2_DEFAULT_SIZE);
    assert_int_equal(q_region_size(fd, 3), 0);
    assert_int_equal(q_region_size(fd, 6), 0);
    assert_int_equal(q_region_size(fd, 7), 4096);
    assert_int_equal(dext_counter("dma_regions_live"), 1); /* RAM only, not ROM */
    q_read(fd, CFG, 0, cfg, sizeof(cfg));
    assert_int_equal(vdx_config_read_block(g.conn, 0, dev, sizeof(dev)), DEXT_OK);
    assert_memory_equal(cfg, dev, sizeof(cfg));
    assert_int_equal(rd(fd, CFG, 0, 4), TESTDEV_VENDOR_ID | (TESTDEV_DEVICE_ID << 16));
    assert_int_equal(rd(fd, CFG, 0x30, 4), 0); /* no ROM */
    assert_int_equal(rd(fd, 0, TESTDEV_REG_ID, 4), TESTDEV_ID_MAGIC);
    q_close(fd);
    fx_down();
}

static void test_config_write_filter(void **state)
{
    struct vdx_passthru_stats st;
    uint32_t bar0, status, cmd, msix;
    uint64_t sts0, bars0;
    int fd;

    fx_up("sim:testdev", state);
    fd = q_start();
    sts0 = dext_counter("config_writes_status");
    bars0 = dext_counter("config_writes_bar");
    assert_int_equal(vdx_config_read(g.conn, 0x10, 2, &bar0), DEXT_OK);
    assert_int_equal(vdx_config_read(g.conn, 0x06, 2, &status), DEXT_OK);
    /* BAR sizing and QEMU's reset writes of 0 to the six BARs: dropped. */
    wr(fd, CFG, 0x10, 0xffffffffu, 4);
    for (uint32_t o = 0x10; o < 0x28; o += 4) {
        wr(fd, CFG, o, 0, 4);
    }
    wr(fd, CFG, 0x06, 0xffff, 2); /* STATUS (write-1-to-clear bits): dropped */
    vdx_passthru_stats(g.pt, &st);
    assert_int_equal(st.cfg_writes_dropped, 8);
    assert_int_equal(st.cfg_writes_forwarded, 0);
    assert_int_equal(vdx_config_read(g.conn, 0x10, 2, &cmd), DEXT_OK);
    assert_int_equal(cmd, bar0);
    /* COMMAND: byte-wise; a dword at 0x04 forwards COMMAND, drops STATUS. */
    wr(fd, CFG, 0x04, 0x0406, 2);
    assert_int_equal(vdx_config_read(g.conn, 0x04, 2, &cmd), DEXT_OK);
    assert_int_equal(cmd & 0x0406, 0x0406);
    wr(fd, CFG, 0x04, 0xffff0002u, 4);
    assert_int_equal(vdx_config_read(g.conn, 0x04, 2, &cmd), DEXT_OK);
    assert_int_equal(cmd & 0x7, 0x2);
    assert_int_equal(vdx_config_read(g.conn, 0x06, 2, &cmd), DEXT_OK);
    assert_int_equal(cmd, status);
    vdx_passthru_stats(g.pt, &st);
    assert_int_equal(st.cfg_command_bytes, 4);
    assert_int_equal(st.cfg_writes_dropped, 9);
    /* A capability write is forwarded: MSI-X enable. */
    assert_int_equal(vdx_config_read(g.conn, TESTDEV_CAP_MSIX + 2, 2, &msix), DEXT_OK);
    wr(fd, CFG, TESTDEV_CAP_MSIX + 2, msix | 0x8000, 2);
    assert_int_equal(vdx_config_read(g.conn, TESTDEV_CAP_MSIX + 2, 2, &msix), DEXT_OK);
    assert_true(msix & 0x8000);
    vdx_passthru_stats(g.pt, &st);
    assert_int_equal(st.cfg_writes_forwarded, 1);
    assert_int_equal(st.cfg_writes, 11);
    /* The dext's own count: no STATUS or BAR write reached the device. */
    assert_int_equal(dext_counter("config_writes_status"), sts0);
    assert_int_equal(dext_counter("config_writes_bar"), bars0);
    assert_true(dext_counter("config_writes_command") >= 4);
    q_close(fd);
    fx_down();
}

static void test_bar_dma_irq_reset(void **state)
{
    int fd, efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct vdx_passthru_stats st;

    assert_true(efd >= 0);
    fx_up("sim:testdev", state);
    fd = q_start();
    /* BAR0 scratch register through REGION_WRITE/READ (trapped, MMIO selectors). */
    wr(fd, 0, TESTDEV_REG_SCRATCH, 0xdeadbeefu, 4);
    assert_int_equal(rd(fd, 0, TESTDEV_REG_SCRATCH, 4), 0xdeadbeefu);
    /* BAR2 (shared memory, served through the pointer). */
    wr(fd, 2, 0x100, 0x1122334455667788ull, 8);
    assert_int_equal(rd(fd, 2, 0x100, 8), 0x1122334455667788ull);
    /* DMA copy between two IOVAs of the mapped memfd. */
    for (unsigned i = 0; i < 8192; i++) {
        g.ram[i] = (uint8_t)(i * 7 + 3);
    }
    memset(g.ram + 0x10000, 0, 8192);
    wr(fd, 0, TESTDEV_REG_DMA_SRC, RAM_IOVA, 8);
    wr(fd, 0, TESTDEV_REG_DMA_DST, RAM_IOVA + 0x10000, 8);
    wr(fd, 0, TESTDEV_REG_DMA_LEN, 8192, 4);
    wr(fd, 0, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_CMD_COPY, 4);
    assert_int_equal(rd(fd, 0, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_OK);
    assert_memory_equal(g.ram, g.ram + 0x10000, 8192);
    /* MSI-X on with no vector, then vector 3 gets an eventfd; a raise fires it. */
    wr(fd, CFG, TESTDEV_CAP_MSIX + 2, 0x8000 | (TESTDEV_DEFAULT_VECTORS - 1), 2);
    q_set_irqs(fd, EVT_TRIG, VDX_VU_PCI_MSIX_IRQ, 0, 1, NULL, 0);
    q_set_irqs(fd, EVT_TRIG, VDX_VU_PCI_MSIX_IRQ, 3, 1, &efd, 1);
    wr(fd, 0, TESTDEV_REG_RAISE, 3, 4);
    for (int i = 0; i < 50 && efd_read(efd) == 0; i++) {
        assert_true(i < 49);
        pump(5);
    }
    /* De-assign: a raise is latched by the dext, not delivered. */
    q_set_irqs(fd, EVT_TRIG, VDX_VU_PCI_MSIX_IRQ, 3, 1, NULL, 0);
    wr(fd, 0, TESTDEV_REG_RAISE, 3, 4);
    for (int i = 0; i < 20; i++) {
        pump(5);
    }
    assert_int_equal(efd_read(efd), 0);
    vdx_passthru_stats(g.pt, &st);
    assert_int_equal(st.irqs_delivered, 1);
    /* ERR: one eventfd; signalled when the device is lost. */
    q_set_irqs(fd, EVT_TRIG, VDX_VU_PCI_ERR_IRQ, 0, 1, &efd, 1);
    vdx_passthru_report_lost(g.pt);
    assert_int_equal(efd_read(efd), 1);
    vdx_passthru_stats(g.pt, &st);
    assert_int_equal(st.errors_reported, 1);
    q_set_irqs(fd, NONE_TRIG, VDX_VU_PCI_ERR_IRQ, 0, 0, NULL, 0);
    vdx_passthru_report_lost(g.pt); /* de-assigned: nothing to signal */
    assert_int_equal(efd_read(efd), 0);
    /* DEVICE_RESET resets the scratch register. */
    q_reset(fd);
    assert_int_equal(rd(fd, 0, TESTDEV_REG_SCRATCH, 4), 0);
    q_set_irqs(fd, NONE_TRIG, VDX_VU_PCI_MSIX_IRQ, 0, 0, NULL, 0);
    q_close(fd);
    close(efd);
    fx_down();
}

static void test_nvme_startup(void **state)
{
    uint8_t cfg[4096], dev[4096];
    struct vdx_passthru_stats st;
    struct rinfo ri;
    uint32_t bar0;
    int fd, bfd = 0;

    fx_up("sim:nvme,size=16M", state);
    fd = q_start();
    assert_int_equal(vdx_get_bar_info(g.conn, 0, NULL, NULL, NULL), DEXT_OK);
    assert_true(q_region_size(fd, 0) >= 0x2000);
    assert_int_equal(q_region_size(fd, 7), 4096);
    /* BAR0 is registers, doorbells and the MSI-X table: not mmappable. */
    q_region_full(fd, 0, &ri);
    assert_int_equal(ri.flags, RW);
    assert_int_equal(ri.argsz, VDX_VU_REGION_INFO_SIZE);
    assert_int_equal(ri.fd, -1);
    assert_int_equal(vdx_bar_fd(g.conn, 0, &bfd, NULL, NULL), DEXT_E_UNSUPPORTED);
    assert_int_equal(bfd, -1);
    vdx_passthru_stats(g.pt, &st);
    assert_int_equal(st.bars_mmappable, 0);
    q_read(fd, CFG, 0, cfg, sizeof(cfg));
    assert_int_equal(vdx_config_read_block(g.conn, 0, dev, sizeof(dev)), DEXT_OK);
    assert_memory_equal(cfg, dev, sizeof(cfg));
    assert_int_equal(cfg[0x0b], 0x01); /* mass storage */
    assert_int_equal(cfg[0x0a], 0x08); /* NVM */
    bar0 = (uint32_t)rd(fd, 0, 0x08, 4); /* NVMe VS */
    assert_true(bar0 >= 0x10000);
    assert_int_equal(dext_counter("dma_regions_live"), 1);
    q_close(fd);
    fx_down();
}

/* Map every sparse area of ri at its offset in ri->fd; base[] covers the
 * whole region (PROT_NONE outside the areas). Returns base. */
static uint8_t *map_areas(const struct rinfo *ri)
{
    uint8_t *base = mmap(NULL, ri->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    assert_true(base != MAP_FAILED);
    for (uint32_t i = 0; i < ri->nr_areas; i++) {
        const struct vdx_vu_sparse_area *a = &ri->areas[i];
        void *p = mmap(base + a->offset, a->size, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_FIXED, ri->fd, (off_t)(ri->offset + a->offset));

        assert_true(p == base + a->offset);
    }
    return base;
}

static uint64_t dev_read(unsigned bar, uint64_t off)
{
    uint64_t v = 0;

    assert_int_equal(vdx_mmio_read(g.conn, bar, off, 8, &v), DEXT_OK);
    return v;
}

/*
 * sim:testdev BAR2 (shared memfd): MMAP + a one-area sparse capability + the
 * fd, with the argsz two-step; the mapping, REGION_READ/WRITE and the
 * device's MMIO view are the same bytes, in every direction. BAR0
 * (registers) is not mmappable.
 */
static void test_bar2_mmap(void **state)
{
    struct vdx_passthru_stats st0, st;
    uint8_t buf[4096];
    struct rinfo ri;
    uint64_t *w;
    uint8_t *map;
    int fd;

    fx_up("sim:testdev", state);
    fd = q_start();
    vdx_passthru_stats(g.pt, &st0);
    assert_int_equal(st0.bars_mmappable, 1);
    q_region_info(fd, 2, VDX_VU_REGION_INFO_SIZE, &ri);
    assert_int_equal(ri.flags, RW_MMAP); /* no CAPS: they did not fit */
    assert_int_equal(ri.argsz, VDX_VU_REGION_INFO_SIZE + VDX_VU_SPARSE_CAP_SIZE +
                                   VDX_VU_SPARSE_AREA_SIZE);
    assert_int_equal(ri.fd, -1);
    q_region_full(fd, 2, &ri);
    assert_int_equal(ri.flags, RW_MMAP | VDX_VU_REGION_F_CAPS);
    assert_int_equal(ri.size, TESTDEV_BAR2_DEFAULT_SIZE);
    assert_int_equal(ri.nr_areas, 1);
    assert_int_equal(ri.areas[0].offset, 0);
    assert_int_equal(ri.areas[0].size, TESTDEV_BAR2_DEFAULT_SIZE);
    assert_true(ri.fd >= 0);
    map = map_areas(&ri);
    w = (uint64_t *)(void *)map;
    /* device -> mapping and REGION_READ */
    assert_int_equal(vdx_mmio_write(g.conn, 2, 0x200, 8, 0x0123456789abcdefull), DEXT_OK);
    assert_int_equal(w[0x200 / 8], 0x0123456789abcdefull);
    assert_int_equal(rd(fd, 2, 0x200, 8), 0x0123456789abcdefull);
    /* mapping -> device and REGION_READ */
    w[0x300 / 8] = 0xfeedfacecafef00dull;
    assert_int_equal(dev_read(2, 0x300), 0xfeedfacecafef00dull);
    assert_int_equal(rd(fd, 2, 0x300, 8), 0xfeedfacecafef00dull);
    /* REGION_WRITE to a mapped area (QEMU may still send one) -> mapping, device */
    wr(fd, 2, 0x400, 0x1122334455667788ull, 8);
    assert_int_equal(w[0x400 / 8], 0x1122334455667788ull);
    assert_int_equal(dev_read(2, 0x400), 0x1122334455667788ull);
    /* A whole page, at the end of the BAR, both ways. */
    for (unsigned i = 0; i < sizeof(buf); i++) {
        map[TESTDEV_BAR2_DEFAULT_SIZE - sizeof(buf) + i] = (uint8_t)(i * 13 + 1);
    }
    q_read(fd, 2, TESTDEV_BAR2_DEFAULT_SIZE - sizeof(buf), buf, sizeof(buf));
    assert_memory_equal(buf, map + TESTDEV_BAR2_DEFAULT_SIZE - sizeof(buf), sizeof(buf));
    /* Only the REGION_READ/WRITEs above were trapped accesses. */
    vdx_passthru_stats(g.pt, &st);
    assert_int_equal(st.bar_reads - st0.bar_reads, 3);
    assert_int_equal(st.bar_writes - st0.bar_writes, 1);
    munmap(map, TESTDEV_BAR2_DEFAULT_SIZE);
    close(ri.fd);
    /* BAR0: device registers (and the MSI-X table), trapped only. */
    q_region_full(fd, 0, &ri);
    assert_int_equal(ri.flags, RW);
    assert_int_equal(ri.argsz, VDX_VU_REGION_INFO_SIZE);
    assert_int_equal(ri.fd, -1);
    q_close(fd);
    fx_down();
}

/* A REGION_READ that must fail with errno `err`. */
static void q_read_err(int fd, uint32_t region, uint64_t off, uint32_t count, uint32_t err)
{
    struct msg m;
    uint8_t rep[64];

    msg_begin(&m, VDX_VU_CMD_REGION_READ);
    m64(&m, off), m32(&m, region), m32(&m, count);
    put32(m.b + 4, (uint32_t)m.n);
    cl_send(fd, m.b, m.n, NULL, 0);
    assert_int_equal(cl_recv(fd, rep, sizeof(rep)), VDX_VU_HDR_SIZE);
    assert_true(get32(rep + 8) & VDX_VU_F_ERROR);
    assert_int_equal(get32(rep + 12), err);
}

/* Whether [off, off + len) touches [hoff, hoff + hlen). */
static bool touches(uint64_t off, uint64_t len, uint64_t hoff, uint64_t hlen)
{
    return off < hoff + hlen && hoff < off + len;
}

/*
 * sim:testdev,msix=bar2: the MSI-X table and PBA live in the shared BAR2.
 * The sparse areas cover exactly the pages that hold neither; the trapped
 * path serves the table and PBA from the device (not the shared memory),
 * the rest through the mapping.
 */
static void test_bar2_msix_pages_excluded(void **state)
{
    const uint64_t page = vdx_page_size(), tlen = TESTDEV_DEFAULT_VECTORS * 16;
    struct rinfo ri;
    uint64_t mem_size = 0;
    uint8_t *map, *mem = NULL;
    int fd;

    fx_up("sim:testdev,msix=bar2", state);
    fd = q_start();
    q_region_full(fd, 2, &ri);
    assert_true(ri.fd >= 0);
    assert_int_equal(ri.flags, RW_MMAP | VDX_VU_REGION_F_CAPS);
    if (page == 4096) {
        assert_int_equal(ri.nr_areas, 3);
    }
    for (uint64_t p = 0; p < ri.size; p += page) {
        bool hole = touches(p, page, TESTDEV_MSIX_PBA_OFF, 8) ||
                    touches(p, page, TESTDEV_MSIX_TABLE_OFF, tlen);
        bool mapped = false;

        for (uint32_t i = 0; i < ri.nr_areas; i++) {
            assert_int_equal(ri.areas[i].offset % page, 0);
            assert_int_equal(ri.areas[i].size % page, 0);
            mapped |= p >= ri.areas[i].offset && p < ri.areas[i].offset + ri.areas[i].size;
        }
        if (hole == mapped) {
            fail_msg("page 0x%llx: in a hole %d, in an area %d", (unsigned long long)p,
                     hole, mapped);
        }
    }
    map = map_areas(&ri);
    /* Table entry 1's address: written and read back through the device's
     * table, while the shared memory under it stays untouched. */
    assert_int_equal(vdx_map_bar(g.conn, 2, (void **)&mem, &mem_size, NULL, NULL), DEXT_OK);
    wr(fd, 2, TESTDEV_MSIX_TABLE_OFF + 16, 0xfee01000u, 4);
    assert_int_equal(dev_read(2, TESTDEV_MSIX_TABLE_OFF + 16) & 0xffffffffu, 0xfee01000u);
    assert_int_equal(rd(fd, 2, TESTDEV_MSIX_TABLE_OFF + 16, 4), 0xfee01000u);
    assert_int_equal(mem[TESTDEV_MSIX_TABLE_OFF + 17], 0);
    assert_int_equal(rd(fd, 2, TESTDEV_MSIX_PBA_OFF, 8), dev_read(2, TESTDEV_MSIX_PBA_OFF));
    /* A long access over the table would be hundreds of dext calls: refused. */
    q_read_err(fd, 2, TESTDEV_MSIX_TABLE_OFF - 0x800, 0x1000, EINVAL);
    /* Around them, plain shared memory. */
    map[0x10008] = 0xa5;
    assert_int_equal(rd(fd, 2, 0x10008, 1), 0xa5);
    munmap(map, ri.size);
    close(ri.fd);
    q_close(fd);
    fx_down();
}

/* Test fn over transport tr (local or unix). */
#define OVER(fn, tr) {#fn " (" #tr ")", fn, NULL, NULL, &tr_##tr}

int main(void)
{
    const struct CMUnitTest tests[] = {
        OVER(test_regions_and_config_reads, local),
        OVER(test_regions_and_config_reads, unix),
        OVER(test_config_write_filter, local),
        OVER(test_config_write_filter, unix),
        OVER(test_bar_dma_irq_reset, local),
        OVER(test_bar_dma_irq_reset, unix),
        OVER(test_nvme_startup, local),
        OVER(test_nvme_startup, unix),
        OVER(test_bar2_mmap, local),
        OVER(test_bar2_mmap, unix),
        OVER(test_bar2_msix_pages_excluded, local),
        OVER(test_bar2_msix_pages_excluded, unix),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
