/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Integration tests of the passthrough backend (src/vfio/): an in-process
 * dext (local transport) with sim:testdev or sim:nvme, the backend over a
 * claimed connection, a vfio-user server on a real socket, all stepped in
 * this process while an in-repo client (adapted from
 * tests/vfio-user/test_vu_server.c) replays QEMU's startup and run-time
 * messages (reference/vfio-user.md §2.13, §3.3).
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

#include "common/log.h"
#include "devices/testdev.h"
#include "dext/core.h"
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
    struct dext *d;
    struct vdx_endpoint *ep;
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

static void fx_up(const char *spec)
{
    struct dext_opts o;
    char err[128];

    vdx_log_set(quiet_log, NULL, VDX_LOG_DEBUG);
    memset(&g, 0, sizeof(g));
    dext_opts_default(&o);
    assert_int_equal(dext_create(&o, &g.d), 0);
    assert_int_equal(dext_add_device(g.d, spec, err, sizeof(err)), 0);
    assert_int_equal(vdx_endpoint_local(g.d, &g.ep), DEXT_OK);
    assert_int_equal(vdx_connect(g.ep, "0000:00:01.0", &g.conn), DEXT_OK);
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
    vdx_endpoint_free(g.ep);
    dext_destroy(g.d);
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

/* One reply; descriptors on replies are closed. Returns its size, 0 on EOF. */
static ssize_t cl_recv(int fd, uint8_t *p, size_t cap)
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
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                int rfd;

                memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                close(rfd);
            }
        }
        got += (size_t)n;
        if (got == VDX_VU_HDR_SIZE && size == VDX_VU_HDR_SIZE) {
            size = get32(p + 4);
            assert_true(size >= VDX_VU_HDR_SIZE && size <= cap);
        }
    }
    return (ssize_t)size;
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

    assert_int_equal(vdx_dext_status(g.ep, &js), DEXT_OK);
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

/* ---- Tests -------------------------------------------------------------------------- */

static void test_regions_and_config_reads(void **state)
{
    uint8_t cfg[4096], dev[4096];
    int fd;

    (void)state;
    fx_up("sim:testdev");
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
    int fd;

    (void)state;
    fx_up("sim:testdev");
    fd = q_start();
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
    q_close(fd);
    fx_down();
}

static void test_bar_dma_irq_reset(void **state)
{
    int fd, efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct vdx_passthru_stats st;

    (void)state;
    assert_true(efd >= 0);
    fx_up("sim:testdev");
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
    uint32_t bar0;
    int fd;

    (void)state;
    fx_up("sim:nvme,size=16M");
    fd = q_start();
    assert_int_equal(vdx_get_bar_info(g.conn, 0, NULL, NULL, NULL), DEXT_OK);
    assert_true(q_region_size(fd, 0) >= 0x2000);
    assert_int_equal(q_region_size(fd, 7), 4096);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regions_and_config_reads),
        cmocka_unit_test(test_config_write_filter),
        cmocka_unit_test(test_bar_dma_irq_reset),
        cmocka_unit_test(test_nvme_startup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
