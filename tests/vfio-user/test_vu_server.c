/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Integration tests of the vfio-user server over a real UNIX socket, stepped
 * in this process (libvfio-user's pattern: send, pump the server, read the
 * reply). The client here is an in-repo stand-in for QEMU 10.1+/11.x's
 * vfio-user-pci: it replays QEMU's startup sequence with QEMU's exact message
 * sizes (reference/vfio-user.md §2.13, §2.0) and checks every reply byte for
 * byte where the reference pins it down. The backend is a fake PCI device:
 * 256-byte config space with an MSI-X capability, BAR0 trapped (4 KiB),
 * BAR2 64-bit 16 KiB backed by a memfd with two sparse-mmap areas (MSI-X table
 * and PBA in its trapped first page), INTx/MSI/MSI-X/ERR/REQ IRQ info.
 *
 * Then the hostile clients, each followed by a fresh client that must be
 * served correctly, the client killed mid-session, and descriptor accounting
 * (every fd and mapping a client brought is gone after it leaves).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "platform/platform.h"
#include "vfio-user/protocol.h"
#include "vfio-user/server.h"

/* The capabilities QEMU sends (see test_vu_protocol.c): request is 214 bytes. */
static const char qemu_caps[] =
    "{\"capabilities\": {\"pgsizes\": 4096, \"max_msg_fds\": 16, \"max_dma_maps\": 65535, "
    "\"max_data_xfer_size\": 1048576, \"migration\": {\"max_bitmap_size\": 268435456, "
    "\"pgsize\": 4096}, \"write_multiple\": true}}";
/* What the server must answer with default options. */
static const char server_caps[] = "{\"capabilities\":{\"max_msg_fds\":16,"
                                  "\"max_data_xfer_size\":1048576}}";

#define RAM_SIZE      (2u << 20)
#define BAR0_SIZE     0x1000u
#define BAR2_SIZE     0x4000u
#define CFG_SIZE      256u
#define MSIX_CAP      0x40u
#define MSIX_VECTORS  4u
#define BAR0_FAIL_REG 0xffcu /* the fake device fails accesses here with EIO */
#define MSG_MAX       (64u * 1024u + 64u)
#define EVT_TRIG      (VDX_VU_IRQ_SET_DATA_EVENTFD | VDX_VU_IRQ_SET_ACTION_TRIGGER)
#define NONE_TRIG     (VDX_VU_IRQ_SET_DATA_NONE | VDX_VU_IRQ_SET_ACTION_TRIGGER)

/* ---- Test backend: a fake PCI device ----------------------------------------------- */

struct tb {
    uint8_t config[CFG_SIZE];
    uint32_t bar_raw[6]; /* what the guest wrote to the BAR registers */
    uint8_t bar0[BAR0_SIZE];
    int bar2_fd;
    uint8_t *bar2;
    bool require_dma_fd; /* refuse fd-less DMA maps (EFAULT) */
    int attach_rc;
    int info_rc; /* device_info's answer */
    int set_irqs_rc;
    unsigned attach_calls, detach_calls, reset_calls;
    unsigned map_calls, unmap_calls, live_maps;
    uint64_t mapped_word; /* first 8 bytes seen through the last vaddr */
    bool mapped_sealed;   /* the last fd map's file cannot shrink */
    unsigned set_calls, disables;
    struct vdx_vu_be_irq_set last_set;
    int last_fds[VDX_VU_QEMU_MAX_MSG_FDS];
};

static struct tb g_tb;

static const uint32_t bar_mask[6] = {~(BAR0_SIZE - 1), 0, ~(BAR2_SIZE - 1),
                                     0xffffffffu,      0, 0};
static const uint32_t bar_type[6] = {0x0, 0, 0x4, 0, 0, 0}; /* BAR2: 64-bit memory */

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

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* The device's config space after reset. */
static void build_config(uint8_t *c)
{
    memset(c, 0, CFG_SIZE);
    put32(c + 0x00, 0x56781234u); /* vendor 0x1234, device 0x5678 */
    put32(c + 0x04, 0x00100000u); /* status: capability list */
    put32(c + 0x08, 0xff000001u); /* class ff, revision 1 */
    put32(c + 0x10, bar_type[0]);
    put32(c + 0x18, bar_type[2]);
    put32(c + 0x2c, 0x00011234u);
    c[0x34] = MSIX_CAP;
    c[MSIX_CAP] = 0x11; /* MSI-X, last capability */
    c[MSIX_CAP + 2] = MSIX_VECTORS - 1;
    put32(c + MSIX_CAP + 4, 0x00000002u); /* table: BAR2 + 0 */
    put32(c + MSIX_CAP + 8, 0x00000802u); /* PBA: BAR2 + 0x800 */
}

static void tb_reset(struct tb *t)
{
    build_config(t->config);
    memset(t->bar_raw, 0, sizeof(t->bar_raw));
    memset(t->bar0, 0, sizeof(t->bar0));
}

static void cfg_write_byte(struct tb *t, uint32_t o, uint8_t v)
{
    if (o >= 0x10 && o < 0x28) {
        uint32_t bar = (o - 0x10) / 4, sh = (o % 4) * 8;

        t->bar_raw[bar] = (t->bar_raw[bar] & ~(0xffu << sh)) | ((uint32_t)v << sh);
        put32(t->config + 0x10 + bar * 4,
              (t->bar_raw[bar] & bar_mask[bar]) | bar_type[bar]);
    } else if (o == 0x04) {
        t->config[o] = v & 0x07; /* IO, MEM, MASTER */
    } else if (o == 0x05) {
        t->config[o] = v & 0x04; /* INTX_DISABLE */
    } else if (o == 0x3c) {
        t->config[o] = v;
    } else if (o == MSIX_CAP + 3) {
        t->config[o] = v & 0xc0; /* enable, function mask */
    }
    /* Everything else, the ROM BAR included, is read-only (ROM reads 0: no ROM). */
}

static int tb_device_info(void *opaque, struct vdx_vu_be_device *info)
{
    if (((struct tb *)opaque)->info_rc < 0) {
        return ((struct tb *)opaque)->info_rc;
    }
    info->flags = VDX_VU_DEVICE_F_PCI | VDX_VU_DEVICE_F_RESET;
    info->num_regions = VDX_VU_PCI_NUM_REGIONS;
    info->num_irqs = VDX_VU_PCI_NUM_IRQS;
    return 0;
}

static int tb_region_info(void *opaque, uint32_t index, struct vdx_vu_be_region *r)
{
    struct tb *t = opaque;

    switch (index) {
    case 0:
        r->size = BAR0_SIZE;
        r->flags = VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE;
        break;
    case 2:
        r->size = BAR2_SIZE;
        r->flags = VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE;
        r->fd = t->bar2_fd;
        r->nr_areas = 2;
        r->areas[0] = (struct vdx_vu_sparse_area){0x1000, 0x1000};
        r->areas[1] = (struct vdx_vu_sparse_area){0x3000, 0x1000};
        break;
    case VDX_VU_PCI_CONFIG_REGION:
        r->size = CFG_SIZE;
        r->flags = VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE;
        break;
    default:
        break; /* absent: size 0 */
    }
    return 0;
}

static int tb_irq_info(void *opaque, uint32_t index, struct vdx_vu_be_irq *info)
{
    static const uint32_t counts[] = {1, 0, MSIX_VECTORS, 1, 0};

    (void)opaque;
    info->flags = VDX_VU_IRQ_INFO_F_EVENTFD;
    info->count = counts[index];
    return 0;
}

static int tb_set_irqs(void *opaque, const struct vdx_vu_be_irq_set *set)
{
    struct tb *t = opaque;

    t->set_calls++;
    t->disables += set->count == 0;
    t->last_set = *set;
    for (uint32_t i = 0; set->fds != NULL && i < set->count && i < VDX_VU_QEMU_MAX_MSG_FDS;
         i++) {
        t->last_fds[i] = set->fds[i];
        /* A borrowed fd must be open while the call runs. */
        assert_true(set->fds[i] < 0 || fcntl(set->fds[i], F_GETFD) >= 0);
    }
    return t->set_irqs_rc;
}

static int tb_region_read(void *opaque, uint32_t index, uint64_t off, void *buf, uint32_t n)
{
    struct tb *t = opaque;

    switch (index) {
    case 0:
        if (off + n > BAR0_FAIL_REG) {
            return -EIO;
        }
        memcpy(buf, t->bar0 + off, n);
        return 0;
    case 2:
        memcpy(buf, t->bar2 + off, n);
        return 0;
    case VDX_VU_PCI_CONFIG_REGION:
        memcpy(buf, t->config + off, n);
        return 0;
    default:
        return -EINVAL;
    }
}

static int tb_region_write(void *opaque, uint32_t index, uint64_t off, const void *buf,
                           uint32_t n)
{
    struct tb *t = opaque;

    switch (index) {
    case 0:
        if (off + n > BAR0_FAIL_REG) {
            return -EIO;
        }
        memcpy(t->bar0 + off, buf, n);
        return 0;
    case 2:
        memcpy(t->bar2 + off, buf, n);
        return 0;
    case VDX_VU_PCI_CONFIG_REGION:
        for (uint32_t i = 0; i < n; i++) {
            cfg_write_byte(t, (uint32_t)off + i, ((const uint8_t *)buf)[i]);
        }
        return 0;
    default:
        return -EINVAL;
    }
}

static int tb_reset_op(void *opaque)
{
    struct tb *t = opaque;

    t->reset_calls++;
    tb_reset(t);
    return 0;
}

static int tb_attach(void *opaque)
{
    struct tb *t = opaque;

    t->attach_calls++;
    return t->attach_rc;
}

static void tb_detach(void *opaque)
{
    ((struct tb *)opaque)->detach_calls++;
}

static int tb_dma_map(void *opaque, const struct vdx_vu_be_dma *d)
{
    struct tb *t = opaque;

    t->map_calls++;
    if (d->vaddr == NULL) {
        assert_int_equal(d->fd, -1);
        if (t->require_dma_fd) {
            return -EFAULT;
        }
    } else {
        assert_true(fcntl(d->fd, F_GETFD) >= 0);
        memcpy(&t->mapped_word, d->vaddr, sizeof(t->mapped_word));
        t->mapped_sealed = d->sealed;
    }
    t->live_maps++;
    return 0;
}

static void tb_dma_unmap(void *opaque, const struct vdx_vu_be_dma *d)
{
    struct tb *t = opaque;
    volatile const uint8_t *p = d->vaddr;

    t->unmap_calls++;
    t->live_maps--;
    if (p != NULL) {
        (void)p[0]; /* still mapped while the backend lets go */
        assert_true(fcntl(d->fd, F_GETFD) >= 0);
    }
}

static const struct vdx_vu_backend_ops tb_ops = {
    .attach = tb_attach,
    .detach = tb_detach,
    .device_info = tb_device_info,
    .region_info = tb_region_info,
    .irq_info = tb_irq_info,
    .set_irqs = tb_set_irqs,
    .region_read = tb_region_read,
    .region_write = tb_region_write,
    .reset = tb_reset_op,
    .dma_map = tb_dma_map,
    .dma_unmap = tb_dma_unmap,
};

/* ---- Harness --------------------------------------------------------------------------
 */

/* QEMU's interrupt notifiers are eventfds. */
static int efd_new(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    assert_true(fd >= 0);
    return fd;
}

/* The counter (0: not signalled), reset. */
static uint64_t efd_read(int fd)
{
    uint64_t v = 0;

    return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? v : 0;
}

static char g_dir[64];
static char g_main_path[128];
static char g_path[128];             /* where cl_connect() goes */
static struct vdx_vu_server *g_srv;  /* the server being stepped */
static struct vdx_vu_server *g_main; /* default options, stall 300 ms */
static bool g_pump = true;           /* false in forked children */

static void quiet_log(enum vdx_log_level lvl, const char *msg, void *opaque)
{
    (void)opaque;
    if (getenv("VU_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "[log %d] %s\n", (int)lvl, msg);
    }
}

static void pump(int ms)
{
    if (g_pump) {
        int rc = vdx_vu_server_step(g_srv, ms);

        assert_true(rc >= 0 || rc == -EINTR);
    } else if (ms > 0) {
        poll(NULL, 0, ms);
    }
}

static void pump_for(unsigned ms)
{
    uint64_t end = vdx_now_ns() + ms * 1000000ull;

    while (vdx_now_ns() < end) {
        pump(5);
    }
}

static void wait_idle(void)
{
    uint64_t end = vdx_now_ns() + 3000000000ull;

    while (vdx_vu_server_connected(g_srv) && vdx_now_ns() < end) {
        pump(5);
    }
    assert_false(vdx_vu_server_connected(g_srv));
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

/* Mappings of files whose name contains `needle` in /proc/self/maps. */
static int count_maps(const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, needle) != NULL;
    }
    fclose(f);
    return n;
}

static int cl_connect(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0 && strlen(g_path) < sizeof(a.sun_path));
    memcpy(a.sun_path, g_path, strlen(g_path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* One sendmsg() with the whole message and its descriptors (as QEMU does). */
static void cl_send(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * 128)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    if (nfds > 0) {
        struct cmsghdr *cm;

        assert_true(nfds <= 128);
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

/* Readable within ms, pumping the server meanwhile. */
static bool cl_wait(int fd, unsigned ms)
{
    uint64_t end = vdx_now_ns() + ms * 1000000ull;
    struct pollfd p = {.fd = fd, .events = POLLIN};

    do {
        if (poll(&p, 1, 0) > 0) {
            return true;
        }
        pump(0);
        if (poll(&p, 1, 1) > 0) {
            return true;
        }
    } while (vdx_now_ns() < end);
    return false;
}

/*
 * Read one reply (header with its descriptors, then the body). Returns its
 * size, 0 on EOF, -ETIMEDOUT. *nrfds receives the descriptors (closed unless
 * rfds is given).
 */
static ssize_t cl_recv_fds(int fd, void *buf, size_t cap, int *rfds, unsigned *nrfds)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } cbuf;
    uint8_t *p = buf;
    size_t got = 0, size = VDX_VU_HDR_SIZE;
    unsigned nr = 0;

    while (got < size) {
        struct iovec iov = {p + got, size - got};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = cbuf.b,
                             .msg_controllen = sizeof(cbuf.b)};
        ssize_t n;

        if (!cl_wait(fd, 2000)) {
            return -ETIMEDOUT;
        }
        n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n <= 0) {
            return n == 0 || errno == ECONNRESET ? 0 : -errno;
        }
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++, nr++) {
                int rfd;

                memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                if (rfds != NULL && nr < 4) {
                    rfds[nr] = rfd;
                } else {
                    close(rfd);
                }
            }
        }
        got += (size_t)n;
        if (got == VDX_VU_HDR_SIZE && size == VDX_VU_HDR_SIZE) {
            size = get32(p + 4);
            assert_true(size >= VDX_VU_HDR_SIZE && size <= cap);
        }
    }
    if (nrfds != NULL) {
        *nrfds = nr;
    } else {
        assert_int_equal(nr, 0); /* no descriptor on a reply that takes none */
    }
    return (ssize_t)size;
}

static ssize_t cl_recv(int fd, void *buf, size_t cap)
{
    return cl_recv_fds(fd, buf, cap, NULL, NULL);
}

/* The server closes the connection (possibly after an error reply). */
static void expect_eof(int fd)
{
    uint8_t b[MSG_MAX];
    ssize_t n;

    do {
        n = cl_recv(fd, b, sizeof(b));
    } while (n > 0);
    assert_int_equal(n, 0);
    close(fd);
    wait_idle();
}

/* Nothing arrives for ms. */
static void expect_silence(int fd, unsigned ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    pump_for(ms);
    assert_int_equal(poll(&p, 1, 0), 0);
}

/* ---- Messages as QEMU lays them out (hw/vfio-user/protocol.h) -------------------------
 */

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

static void mbytes(struct msg *m, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

/* Start a message; msg_end() patches its size. */
static void msg_begin(struct msg *m, uint16_t id, uint16_t cmd, uint32_t flags)
{
    m->n = 0;
    m16(m, id), m16(m, cmd), m32(m, 0), m32(m, flags), m32(m, 0);
}

static size_t msg_end(struct msg *m)
{
    put32(m->b + 4, (uint32_t)m->n);
    return m->n;
}

static size_t q_version(struct msg *m, uint16_t id, const char *caps, size_t caps_len)
{
    msg_begin(m, id, VDX_VU_CMD_VERSION, 0);
    m16(m, 0), m16(m, 0);
    mbytes(m, caps, caps_len);
    return msg_end(m);
}

static size_t q_dma_map(struct msg *m, uint16_t id, uint32_t flags, uint64_t offset,
                        uint64_t iova, uint64_t size)
{
    msg_begin(m, id, VDX_VU_CMD_DMA_MAP, 0);
    m32(m, 32), m32(m, flags), m64(m, offset), m64(m, iova), m64(m, size);
    return msg_end(m);
}

static size_t q_dma_unmap(struct msg *m, uint16_t id, uint32_t flags, uint64_t iova,
                          uint64_t size)
{
    msg_begin(m, id, VDX_VU_CMD_DMA_UNMAP, 0);
    m32(m, 24), m32(m, flags), m64(m, iova), m64(m, size);
    return msg_end(m);
}

static size_t q_device_info(struct msg *m, uint16_t id)
{
    msg_begin(m, id, VDX_VU_CMD_DEVICE_GET_INFO, 0);
    m32(m, 16), m32(m, 0), m32(m, 0), m32(m, 0);
    return msg_end(m);
}

/* 48 bytes whatever argsz is (QEMU's request size is sizeof(VFIOUserRegionInfo)). */
static size_t q_region_info(struct msg *m, uint16_t id, uint32_t argsz, uint32_t index)
{
    msg_begin(m, id, VDX_VU_CMD_DEVICE_GET_REGION_INFO, 0);
    m32(m, argsz), m32(m, 0), m32(m, index), m32(m, 0), m64(m, 0), m64(m, 0);
    return msg_end(m);
}

static size_t q_irq_info(struct msg *m, uint16_t id, uint32_t index)
{
    msg_begin(m, id, VDX_VU_CMD_DEVICE_GET_IRQ_INFO, 0);
    m32(m, 16), m32(m, 0), m32(m, index), m32(m, 0);
    return msg_end(m);
}

/* The eventfd/NONE form: always 36 bytes with argsz 20. */
static size_t q_set_irqs(struct msg *m, uint16_t id, uint32_t flags, uint32_t index,
                         uint32_t start, uint32_t count)
{
    msg_begin(m, id, VDX_VU_CMD_DEVICE_SET_IRQS, 0);
    m32(m, 20), m32(m, flags), m32(m, index), m32(m, start), m32(m, count);
    return msg_end(m);
}

static size_t q_read(struct msg *m, uint16_t id, uint32_t region, uint64_t off,
                     uint32_t count)
{
    msg_begin(m, id, VDX_VU_CMD_REGION_READ, 0);
    m64(m, off), m32(m, region), m32(m, count);
    return msg_end(m);
}

static size_t q_write(struct msg *m, uint16_t id, uint32_t region, uint64_t off,
                      const void *data, uint32_t count, bool posted)
{
    msg_begin(m, id, VDX_VU_CMD_REGION_WRITE, posted ? VDX_VU_F_NO_REPLY : 0);
    m64(m, off), m32(m, region), m32(m, count);
    mbytes(m, data, count);
    return msg_end(m);
}

static size_t q_write32(struct msg *m, uint16_t id, uint32_t region, uint64_t off,
                        uint32_t v, bool posted)
{
    uint8_t d[4];

    put32(d, v);
    return q_write(m, id, region, off, d, 4, posted);
}

static size_t q_reset(struct msg *m, uint16_t id)
{
    msg_begin(m, id, VDX_VU_CMD_DEVICE_RESET, 0);
    return msg_end(m);
}

/* ---- Expected replies --------------------------------------------------------------- */

/* A reply must be exactly: header (id, cmd, size, REPLY, 0) + payload. */
static void expect_rep(const uint8_t *rep, ssize_t n, uint16_t id, uint16_t cmd,
                       const struct msg *payload)
{
    struct msg e;

    msg_begin(&e, id, cmd, VDX_VU_F_TYPE_REPLY);
    if (payload != NULL) {
        mbytes(&e, payload->b, payload->n);
    }
    msg_end(&e);
    assert_int_equal(n, (ssize_t)e.n);
    assert_memory_equal(rep, e.b, e.n);
}

static void expect_err(const uint8_t *rep, ssize_t n, uint16_t id, uint16_t cmd,
                       uint32_t err)
{
    struct msg e;

    msg_begin(&e, id, cmd, VDX_VU_F_TYPE_REPLY | VDX_VU_F_ERROR);
    msg_end(&e);
    put32(e.b + 12, err);
    assert_int_equal(n, 16);
    assert_memory_equal(rep, e.b, 16);
}

static void p_reset(struct msg *p)
{
    p->n = 0;
}

/* Send, then read the reply. */
static ssize_t rpc(int fd, const struct msg *m, uint8_t *rep, size_t cap)
{
    cl_send(fd, m->b, m->n, NULL, 0);
    return cl_recv(fd, rep, cap);
}

/* Expect an error reply with err for the message in m. */
static void rpc_err(int fd, const struct msg *m, uint32_t err)
{
    uint8_t rep[64];
    ssize_t n = rpc(fd, m, rep, sizeof(rep));

    expect_err(rep, n, get16(m->b), get16(m->b + 2), err);
}

/* REGION_READ of count <= 8 bytes; returns the value (little-endian). */
static uint64_t rd(int fd, uint16_t id, uint32_t region, uint64_t off, uint32_t count)
{
    struct msg m, p;
    uint8_t rep[64];
    uint64_t v = 0;
    ssize_t n;

    q_read(&m, id, region, off, count);
    n = rpc(fd, &m, rep, sizeof(rep));
    assert_int_equal(n, 32 + count);
    p_reset(&p);
    m64(&p, off), m32(&p, region), m32(&p, count);
    mbytes(&p, rep + 32, count);
    expect_rep(rep, n, id, VDX_VU_CMD_REGION_READ, &p);
    memcpy(&v, rep + 32, count);
    return v;
}

/* Synchronous REGION_WRITE (config space, I/O BARs, or no posted writes). */
static void wr(int fd, uint16_t id, uint32_t region, uint64_t off, uint64_t v,
               uint32_t count)
{
    struct msg m, p;
    uint8_t rep[64];

    q_write(&m, id, region, off, &v, count, false);
    assert_int_equal(m.n, 32 + count);
    p_reset(&p);
    m64(&p, off), m32(&p, region), m32(&p, count);
    expect_rep(rep, rpc(fd, &m, rep, sizeof(rep)), id, VDX_VU_CMD_REGION_WRITE, &p);
}

/* ---- The QEMU stand-in -------------------------------------------------------------- */

struct qemu {
    int fd;
    uint16_t id; /* QEMU's global 16-bit message counter; wraps */
    int ram_fd;  /* guest RAM (memory-backend-memfd) */
    int bar2_fd; /* from the BAR2 region info */
    uint8_t *bar2_area[2];
    int err_efd;
};

static uint16_t qid(struct qemu *q)
{
    return q->id++;
}

static void version_ok(int fd, uint16_t id)
{
    struct msg m, p;
    uint8_t rep[256];
    ssize_t n;

    assert_int_equal(q_version(&m, id, qemu_caps, sizeof(qemu_caps)), 214);
    n = rpc(fd, &m, rep, sizeof(rep));
    if (g_srv != g_main) { /* other limits: test_limits() checks the JSON */
        assert_true(n > 20 && n <= 214);
        assert_int_equal(get16(rep), id);
        assert_int_equal(get32(rep + 8), VDX_VU_F_TYPE_REPLY);
        return;
    }
    p_reset(&p);
    m16(&p, 0), m16(&p, 0);
    mbytes(&p, server_caps, sizeof(server_caps));
    expect_rep(rep, n, id, VDX_VU_CMD_VERSION, &p);
    assert_true(n <= 214); /* QEMU reuses its request buffer for the reply */
}

static void device_info_ok(int fd, uint16_t id)
{
    struct msg m, p;
    uint8_t rep[64];

    q_device_info(&m, id);
    assert_int_equal(m.n, 32);
    p_reset(&p);
    m32(&p, 16), m32(&p, VDX_VU_DEVICE_F_PCI | VDX_VU_DEVICE_F_RESET), m32(&p, 9),
        m32(&p, 5);
    expect_rep(rep, rpc(fd, &m, rep, sizeof(rep)), id, VDX_VU_CMD_DEVICE_GET_INFO, &p);
}

/* §2.13 step 2: the RAM sections of a PC machine, pipelined, then the replies. */
static void qemu_dma_maps(struct qemu *q)
{
    static const struct {
        uint32_t flags;
        bool fd;
        uint64_t offset, iova, size;
    } maps[] = {
        {3, true, 0, 0, 0xc0000},                /* low RAM */
        {1, false, 0, 0xc0000, 0x20000},         /* option ROM shadow: no fd */
        {3, true, 0x100000, 0x100000, 0x100000}, /* high RAM */
        {1, false, 0, 0xfffc0000, 0x40000},      /* pc.bios: no fd */
    };
    uint16_t ids[4];
    struct msg m;
    uint8_t rep[64];

    for (unsigned i = 0; i < 4; i++) {
        ids[i] = qid(q);
        assert_int_equal(q_dma_map(&m, ids[i], maps[i].flags, maps[i].offset, maps[i].iova,
                                   maps[i].size),
                         48);
        cl_send(q->fd, m.b, m.n, maps[i].fd ? &q->ram_fd : NULL, maps[i].fd ? 1 : 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        expect_rep(rep, cl_recv(q->fd, rep, sizeof(rep)), ids[i], VDX_VU_CMD_DMA_MAP, NULL);
    }
}

static void region_info_plain(struct qemu *q, uint32_t index, uint32_t flags, uint64_t size)
{
    struct msg m, p;
    uint8_t rep[128];
    uint16_t id = qid(q);

    assert_int_equal(q_region_info(&m, id, 32, index), 48);
    p_reset(&p);
    m32(&p, 32), m32(&p, flags), m32(&p, index), m32(&p, 0), m64(&p, size), m64(&p, 0);
    expect_rep(rep, rpc(q->fd, &m, rep, sizeof(rep)), id, VDX_VU_CMD_DEVICE_GET_REGION_INFO,
               &p);
}

/* BAR2: argsz 32 first (no fd, no caps), then again with the argsz it said. */
static void region_info_bar2(struct qemu *q)
{
    const uint32_t rwm =
        VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE | VDX_VU_REGION_F_MMAP;
    struct msg m, p;
    uint8_t rep[128];
    int rfds[4];
    unsigned nr;
    uint16_t id = qid(q);
    ssize_t n;

    q_region_info(&m, id, 32, 2);
    cl_send(q->fd, m.b, m.n, NULL, 0);
    n = cl_recv_fds(q->fd, rep, sizeof(rep), rfds, &nr);
    assert_int_equal(nr, 0);
    p_reset(&p);
    m32(&p, 80), m32(&p, rwm), m32(&p, 2), m32(&p, 0), m64(&p, BAR2_SIZE), m64(&p, 0);
    expect_rep(rep, n, id, VDX_VU_CMD_DEVICE_GET_REGION_INFO, &p);

    id = qid(q);
    assert_int_equal(q_region_info(&m, id, 80, 2), 48);
    cl_send(q->fd, m.b, m.n, NULL, 0);
    n = cl_recv_fds(q->fd, rep, sizeof(rep), rfds, &nr);
    assert_int_equal(nr, 1);
    assert_true(n <= 16 + 80); /* QEMU's receive buffer: 16 + argsz */
    p_reset(&p);
    m32(&p, 80), m32(&p, rwm | VDX_VU_REGION_F_CAPS), m32(&p, 2), m32(&p, 32);
    m64(&p, BAR2_SIZE), m64(&p, 0);
    m16(&p, VDX_VU_REGION_CAP_SPARSE_MMAP), m16(&p, 1), m32(&p, 0), m32(&p, 2), m32(&p, 0);
    m64(&p, 0x1000), m64(&p, 0x1000), m64(&p, 0x3000), m64(&p, 0x1000);
    expect_rep(rep, n, id, VDX_VU_CMD_DEVICE_GET_REGION_INFO, &p);
    q->bar2_fd = rfds[0];
}

/* §2.13 steps 3-5. */
static void qemu_discover(struct qemu *q)
{
    const uint32_t rw = VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE;
    struct msg m, p;
    uint8_t rep[64];
    uint16_t id;

    device_info_ok(q->fd, qid(q));
    region_info_plain(q, 0, rw, BAR0_SIZE);
    region_info_plain(q, 1, 0, 0);
    region_info_bar2(q);
    region_info_plain(q, 3, 0, 0); /* upper half of the 64-bit BAR2 */
    region_info_plain(q, 4, 0, 0);
    region_info_plain(q, 5, 0, 0);
    region_info_plain(q, VDX_VU_PCI_CONFIG_REGION, rw, CFG_SIZE);
    id = qid(q);
    assert_int_equal(q_irq_info(&m, id, VDX_VU_PCI_ERR_IRQ), 32);
    p_reset(&p);
    m32(&p, 16), m32(&p, VDX_VU_IRQ_INFO_F_EVENTFD), m32(&p, 3), m32(&p, 1);
    expect_rep(rep, rpc(q->fd, &m, rep, sizeof(rep)), id, VDX_VU_CMD_DEVICE_GET_IRQ_INFO,
               &p);
}

/* §2.13 step 6: the whole config space in one read ("read 256 bytes at 0"). */
static void qemu_read_config(struct qemu *q)
{
    uint8_t cfg[CFG_SIZE], rep[512];
    struct msg m, p;
    uint16_t id = qid(q);

    build_config(cfg);
    assert_int_equal(q_read(&m, id, VDX_VU_PCI_CONFIG_REGION, 0, CFG_SIZE), 32);
    p_reset(&p);
    m64(&p, 0), m32(&p, 7), m32(&p, CFG_SIZE);
    mbytes(&p, cfg, CFG_SIZE);
    expect_rep(rep, rpc(q->fd, &m, rep, sizeof(rep)), id, VDX_VU_CMD_REGION_READ, &p);
}

/* §2.13 steps 7-12. */
static void qemu_probe(struct qemu *q, bool mmap_areas)
{
    const uint32_t cfg = VDX_VU_PCI_CONFIG_REGION;
    struct msg m;
    uint8_t rep[64];
    uint16_t id;

    /* ROM sizing: a ROM BAR that reads 0 means "no ROM". */
    assert_int_equal(rd(q->fd, qid(q), cfg, 0x30, 4), 0);
    wr(q->fd, qid(q), cfg, 0x30, 0xfffff800u, 4);
    assert_int_equal(rd(q->fd, qid(q), cfg, 0x30, 4), 0);
    wr(q->fd, qid(q), cfg, 0x30, 0, 4);
    /* BAR types of the implemented BARs. */
    assert_int_equal(rd(q->fd, qid(q), cfg, 0x10, 4), 0x0);
    assert_int_equal(rd(q->fd, qid(q), cfg, 0x18, 4), 0x4);
    /* MSI-X: control, table, PBA, then the IRQ info. */
    assert_int_equal(rd(q->fd, qid(q), cfg, MSIX_CAP + 2, 2), MSIX_VECTORS - 1);
    assert_int_equal(rd(q->fd, qid(q), cfg, MSIX_CAP + 4, 4), 0x2);
    assert_int_equal(rd(q->fd, qid(q), cfg, MSIX_CAP + 8, 4), 0x802);
    id = qid(q);
    q_irq_info(&m, id, VDX_VU_PCI_MSIX_IRQ);
    assert_int_equal(rpc(q->fd, &m, rep, sizeof(rep)), 32);
    assert_int_equal(get32(rep + 16 + 4), VDX_VU_IRQ_INFO_F_EVENTFD); /* no NORESIZE */
    assert_int_equal(get32(rep + 16 + 12), MSIX_VECTORS);
    if (mmap_areas) {
        for (unsigned i = 0; i < 2; i++) {
            q->bar2_area[i] = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED,
                                   q->bar2_fd, 0x1000 + 0x2000 * i);
            assert_true(q->bar2_area[i] != MAP_FAILED);
        }
    }
    /* Interrupt pin 0: no INTx setup. ERR count 1: its eventfd. */
    assert_int_equal(rd(q->fd, qid(q), cfg, 0x3d, 1), 0);
    q->err_efd = efd_new();
    id = qid(q);
    assert_int_equal(q_set_irqs(&m, id, EVT_TRIG, VDX_VU_PCI_ERR_IRQ, 0, 1), 36);
    cl_send(q->fd, m.b, m.n, &q->err_efd, 1);
    expect_rep(rep, cl_recv(q->fd, rep, sizeof(rep)), id, VDX_VU_CMD_DEVICE_SET_IRQS, NULL);
}

/* §2.13 step 13 / §3.5: QEMU's device reset. */
static void qemu_machine_reset(struct qemu *q)
{
    const uint32_t cfg = VDX_VU_PCI_CONFIG_REGION;
    struct msg m;
    uint8_t rep[64];
    uint64_t cmd = rd(q->fd, qid(q), cfg, 0x04, 2);
    uint16_t id;

    wr(q->fd, qid(q), cfg, 0x04, cmd & ~0x0407u, 2);
    id = qid(q);
    assert_int_equal(q_reset(&m, id), 16);
    expect_rep(rep, rpc(q->fd, &m, rep, sizeof(rep)), id, VDX_VU_CMD_DEVICE_RESET, NULL);
    for (uint32_t bar = 0; bar < 6; bar++) {
        wr(q->fd, qid(q), cfg, 0x10 + 4 * bar, 0, 4);
    }
}

/* Connect and run QEMU's realize and first reset. */
static void qemu_start(struct qemu *q, uint16_t first_id)
{
    memset(q, 0, sizeof(*q));
    q->id = first_id;
    q->bar2_fd = -1;
    q->err_efd = -1;
    q->ram_fd = vdx_shm_create("vu-test-ram", RAM_SIZE);
    assert_true(q->ram_fd >= 0);
    assert_int_equal(pwrite(q->ram_fd, "guestRAM", 8, 0), 8);
    assert_int_equal(pwrite(q->ram_fd, "highRAM!", 8, 0x100000), 8);
    q->fd = cl_connect();
    version_ok(q->fd, qid(q));
    qemu_dma_maps(q);
    qemu_discover(q);
    qemu_read_config(q);
    qemu_probe(q, true);
    qemu_machine_reset(q);
}

static void qemu_stop(struct qemu *q)
{
    for (unsigned i = 0; i < 2; i++) {
        if (q->bar2_area[i] != NULL) {
            munmap(q->bar2_area[i], 0x1000);
        }
    }
    close(q->fd);
    close(q->ram_fd);
    if (q->bar2_fd >= 0) {
        close(q->bar2_fd);
    }
    if (q->err_efd >= 0) {
        close(q->err_efd);
    }
    wait_idle();
}

/* A well-behaved client is served: after every hostile case. */
static void assert_fresh_client_ok(void)
{
    int fd;

    wait_idle();
    fd = cl_connect();
    version_ok(fd, 0x4242);
    device_info_ok(fd, 0x4243);
    assert_int_equal(rd(fd, 0x4244, VDX_VU_PCI_CONFIG_REGION, 0, 4), 0x56781234u);
    close(fd);
    wait_idle();
}

/* A client that has done VERSION. */
static int client_ready(void)
{
    int fd;

    wait_idle();
    fd = cl_connect();
    version_ok(fd, 1);
    return fd;
}

/* ---- Fixtures ---------------------------------------------------------------------------
 */

static int group_setup(void **state)
{
    struct vdx_vu_server_opts o;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    vdx_log_set(quiet_log, NULL, VDX_LOG_DEBUG);
    snprintf(g_dir, sizeof(g_dir), "/tmp/vu-test-XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        return -1;
    }
    snprintf(g_main_path, sizeof(g_main_path), "%s/dev.sock", g_dir);
    snprintf(g_path, sizeof(g_path), "%s", g_main_path);
    g_tb.bar2_fd = vdx_shm_create("vu-test-bar2", BAR2_SIZE);
    g_tb.bar2 = mmap(NULL, BAR2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g_tb.bar2_fd, 0);
    if (g_tb.bar2_fd < 0 || g_tb.bar2 == MAP_FAILED) {
        return -1;
    }
    tb_reset(&g_tb);
    vdx_vu_server_opts_default(&o);
    o.name = "test-dev";
    o.stall_timeout_ms = 300;
    if (vdx_vu_server_create_opts(g_path, &o, &tb_ops, &g_tb, &g_main) < 0) {
        return -1;
    }
    g_srv = g_main;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    vdx_vu_server_destroy(g_main);
    munmap(g_tb.bar2, BAR2_SIZE);
    close(g_tb.bar2_fd);
    rmdir(g_dir);
    return 0;
}

/* Every test starts idle with a clean backend. */
static int test_setup(void **state)
{
    (void)state;
    g_srv = g_main;
    snprintf(g_path, sizeof(g_path), "%s", g_main_path);
    wait_idle();
    g_tb.require_dma_fd = false;
    g_tb.attach_rc = 0;
    g_tb.info_rc = 0;
    g_tb.set_irqs_rc = 0;
    tb_reset(&g_tb);
    return 0;
}

/* ---- QEMU replay
 * ------------------------------------------------------------------------- */

/* QEMU's realize and first machine reset, every reply byte for byte; message
 * ids start near 0xffff so QEMU's 16-bit counter wraps on the way. */
static void test_qemu_replay_startup(void **state)
{
    struct vdx_vu_server_stats st;
    int fds_before = count_fds();
    unsigned unmaps = g_tb.unmap_calls, detaches = g_tb.detach_calls;
    struct qemu q;

    (void)state;
    qemu_start(&q, 0xfff0);
    assert_int_equal(g_tb.reset_calls, 1);
    assert_int_equal(g_tb.live_maps, 4);
    assert_memory_equal(&g_tb.mapped_word, "highRAM!", 8); /* the fd map at offset 1 MiB */
    assert_true(g_tb.mapped_sealed);                       /* a sealed memfd */
    vdx_vu_server_stats(g_srv, &st);
    assert_int_equal(st.dma_maps, 4);
    assert_int_equal(st.dma_files, 1); /* one memfd sent twice: one descriptor kept */
    assert_int_equal(count_maps("vu-test-ram"), 2);
    /* The ERR eventfd is wired: the server signals QEMU's fd. */
    assert_true(vdx_vu_server_irq_fd(g_srv, VDX_VU_PCI_ERR_IRQ, 0) >= 0);
    assert_int_equal(vdx_vu_server_irq_signal(g_srv, VDX_VU_PCI_ERR_IRQ, 0), 0);
    assert_int_equal(efd_read(q.err_efd), 1);
    /* After the reset sequence the BARs read back their type bits only. */
    assert_int_equal(get32(g_tb.config + 0x18), 0x4);
    qemu_stop(&q);
    assert_int_equal(g_tb.live_maps, 0);
    assert_int_equal(g_tb.unmap_calls, unmaps + 4);
    assert_int_equal(g_tb.detach_calls, detaches + 1);
    assert_int_equal(count_maps("vu-test-ram"), 0);
    assert_int_equal(count_fds(), fds_before);
}

/* Run time: BAR2 shared through the fd, MSI-X vectors (no fd, per-vector fds,
 * replacement, de-assign, disable), DMA_UNMAP releasing fds and mappings. */
static void set_irqs_fds(struct qemu *q, uint32_t flags, uint32_t index, uint32_t start,
                         uint32_t count, const int *fds, unsigned nfds, int err)
{
    struct msg m;
    uint8_t rep[64];
    uint16_t id = qid(q);

    q_set_irqs(&m, id, flags, index, start, count);
    cl_send(q->fd, m.b, m.n, fds, nfds);
    if (err == 0) {
        expect_rep(rep, cl_recv(q->fd, rep, sizeof(rep)), id, VDX_VU_CMD_DEVICE_SET_IRQS,
                   NULL);
    } else {
        expect_err(rep, cl_recv(q->fd, rep, sizeof(rep)), id, VDX_VU_CMD_DEVICE_SET_IRQS,
                   (uint32_t)err);
    }
}

static void test_qemu_runtime_msix(void **state)
{
    const uint32_t msix = VDX_VU_PCI_MSIX_IRQ;
    int fds_before = count_fds(), base, e[6];
    struct qemu q;

    (void)state;
    qemu_start(&q, 1);
    /* The mmapped areas and trapped accesses see the same BAR2 memory. */
    memcpy(q.bar2_area[0], "MMIO", 4);
    assert_int_equal(rd(q.fd, qid(&q), 2, 0x1000, 4), get32((const uint8_t *)"MMIO"));
    wr(q.fd, qid(&q), 2, 0x3008, 0xa5a5a5a5u, 4);
    assert_int_equal(get32(q.bar2_area[1] + 8), 0xa5a5a5a5u);
    /* MSI-X enable as Linux does it. */
    wr(q.fd, qid(&q), VDX_VU_PCI_CONFIG_REGION, MSIX_CAP + 2, 0x8000 | (MSIX_VECTORS - 1),
       2);
    assert_int_equal(g_tb.config[MSIX_CAP + 3], 0x80);
    set_irqs_fds(&q, EVT_TRIG, msix, 0, 1, NULL, 0, 0);
    assert_int_equal(g_tb.last_set.index, msix);
    assert_int_equal(g_tb.last_fds[0], -1);
    assert_int_equal(vdx_vu_server_irq_fd(g_srv, msix, 0), -ENOENT);
    base = count_fds();
    for (unsigned i = 0; i < 6; i++) {
        e[i] = efd_new();
    }
    set_irqs_fds(&q, EVT_TRIG, msix, 0, 1, &e[0], 1, 0);
    set_irqs_fds(&q, EVT_TRIG, msix, 2, 1, &e[1], 1, 0);
    assert_int_equal(count_fds(), base + 6 + 2);
    assert_int_equal(vdx_vu_server_irq_signal(g_srv, msix, 0), 0);
    assert_int_equal(vdx_vu_server_irq_signal(g_srv, msix, 2), 0);
    assert_int_equal(efd_read(e[0]), 1);
    assert_int_equal(efd_read(e[1]), 1);
    /* Masking swaps vector 0's fd: the old one is closed, signals go to the new. */
    set_irqs_fds(&q, EVT_TRIG, msix, 0, 1, &e[2], 1, 0);
    assert_int_equal(count_fds(), base + 6 + 2);
    assert_int_equal(vdx_vu_server_irq_signal(g_srv, msix, 0), 0);
    assert_int_equal(efd_read(e[2]), 1);
    assert_int_equal(efd_read(e[0]), 0);
    /* A "no fd" run de-assigns vector 2. */
    set_irqs_fds(&q, EVT_TRIG, msix, 2, 1, NULL, 0, 0);
    assert_int_equal(vdx_vu_server_irq_fd(g_srv, msix, 2), -ENOENT);
    assert_int_equal(count_fds(), base + 6 + 1);
    /* Several vectors in one message, then a refused one changes nothing. */
    set_irqs_fds(&q, EVT_TRIG, msix, 1, 3, &e[3], 3, 0);
    assert_int_equal(count_fds(), base + 6 + 4);
    g_tb.set_irqs_rc = -EBUSY;
    set_irqs_fds(&q, EVT_TRIG, msix, 3, 1, &e[0], 1, EBUSY);
    g_tb.set_irqs_rc = 0;
    assert_int_equal(count_fds(), base + 6 + 4);
    assert_int_equal(vdx_vu_server_irq_signal(g_srv, msix, 3), 0);
    assert_int_equal(efd_read(e[5]), 1);
    /* Disable: every vector's fd goes. */
    set_irqs_fds(&q, NONE_TRIG, msix, 0, 0, NULL, 0, 0);
    for (uint32_t v = 0; v < MSIX_VECTORS; v++) {
        assert_int_equal(vdx_vu_server_irq_fd(g_srv, msix, v), -ENOENT);
    }
    assert_int_equal(count_fds(), base + 6);
    for (unsigned i = 0; i < 6; i++) {
        close(e[i]);
    }
    /* A second reset keeps DMA maps and IRQ fds. */
    qemu_machine_reset(&q);
    assert_true(vdx_vu_server_irq_fd(g_srv, VDX_VU_PCI_ERR_IRQ, 0) >= 0);
    qemu_stop(&q);
    assert_int_equal(count_fds(), fds_before);
}

static void unmap_ok(struct qemu *q, uint32_t flags, uint64_t iova, uint64_t size)
{
    struct msg m, p;
    uint8_t rep[64];
    uint16_t id = qid(q);

    assert_int_equal(q_dma_unmap(&m, id, flags, iova, size), 40);
    p_reset(&p);
    m32(&p, 24), m32(&p, flags), m64(&p, iova), m64(&p, size);
    expect_rep(rep, rpc(q->fd, &m, rep, sizeof(rep)), id, VDX_VU_CMD_DMA_UNMAP, &p);
}

static void test_qemu_dma_unmap(void **state)
{
    struct vdx_vu_server_stats st;
    struct msg m;
    uint8_t rep[64];
    int fds_before = count_fds(), fds_started;
    struct qemu q;
    uint16_t id;

    (void)state;
    qemu_start(&q, 100);
    fds_started = count_fds();
    unmap_ok(&q, 0, 0x100000, 0x100000);
    vdx_vu_server_stats(g_srv, &st);
    assert_int_equal(st.dma_maps, 3);
    assert_int_equal(st.dma_files, 1);
    assert_int_equal(count_maps("vu-test-ram"), 1);
    unmap_ok(&q, 0, 0, 0xc0000);
    vdx_vu_server_stats(g_srv, &st);
    assert_int_equal(st.dma_files, 0);
    assert_int_equal(count_maps("vu-test-ram"), 0);
    assert_int_equal(count_fds(), fds_started - 1); /* the server's RAM fd */
    /* Not mapped (any more), or not an exact match. */
    q_dma_unmap(&m, qid(&q), 0, 0, 0xc0000);
    rpc_err(q.fd, &m, ENOENT);
    q_dma_unmap(&m, qid(&q), 0, 0xc0000, 0x10000);
    rpc_err(q.fd, &m, ENOENT);
    unmap_ok(&q, 0, 0xc0000, 0x20000);
    /* Map again, then UNMAP_ALL (the vIOMMU case: address and size 0). */
    id = qid(&q);
    q_dma_map(&m, id, 3, 0, 0, 0xc0000);
    cl_send(q.fd, m.b, m.n, &q.ram_fd, 1);
    expect_rep(rep, cl_recv(q.fd, rep, sizeof(rep)), id, VDX_VU_CMD_DMA_MAP, NULL);
    unmap_ok(&q, VDX_VU_DMA_UNMAP_F_ALL, 0, 0);
    vdx_vu_server_stats(g_srv, &st);
    assert_int_equal(st.dma_maps, 0);
    assert_int_equal(g_tb.live_maps, 0);
    assert_int_equal(count_fds(), fds_started - 1);
    qemu_stop(&q);
    assert_int_equal(count_fds(), fds_before);
}

/* ---- Posted writes and framing
 * ------------------------------------------------------------ */

static void test_posted_writes(void **state)
{
    struct vdx_vu_server_stats st0, st1;
    struct msg m;
    int fd = client_ready();

    (void)state;
    vdx_vu_server_stats(g_srv, &st0);
    /* A posted write takes effect before a later read, and gets no reply:
     * the first reply to arrive is the read's (rd() checks its id). */
    q_write32(&m, 10, 0, 0x0, 0x11223344u, true);
    assert_int_equal(m.n, 36);
    cl_send(fd, m.b, m.n, NULL, 0);
    assert_int_equal(rd(fd, 11, 0, 0x0, 4), 0x11223344u);
    for (uint32_t i = 0; i < 100; i++) {
        q_write32(&m, (uint16_t)(100 + i), 0, 0x8, i, true);
        cl_send(fd, m.b, m.n, NULL, 0);
    }
    assert_int_equal(rd(fd, 12, 0, 0x8, 4), 99);
    /* Failing posted commands get no reply either: counted. */
    q_write32(&m, 13, 0, BAR0_SIZE, 1, true); /* out of range */
    cl_send(fd, m.b, m.n, NULL, 0);
    q_write32(&m, 14, 0, BAR0_FAIL_REG, 1, true); /* backend EIO */
    cl_send(fd, m.b, m.n, NULL, 0);
    msg_begin(&m, 15, 200, VDX_VU_F_NO_REPLY); /* unknown */
    msg_end(&m);
    cl_send(fd, m.b, m.n, NULL, 0);
    expect_silence(fd, 50);
    assert_int_equal(rd(fd, 16, 0, 0x8, 4), 99);
    vdx_vu_server_stats(g_srv, &st1);
    assert_int_equal(st1.posted_errors, st0.posted_errors + 3);
    assert_int_equal(st1.error_replies, st0.error_replies);
    close(fd);
    assert_fresh_client_ok();
}

/* Messages trickling in byte by byte, and a 16 KiB write and read. */
static void test_partial_frames(void **state)
{
    static uint8_t big[BAR2_SIZE], rep[BAR2_SIZE + 64];
    struct msg m;
    int fd = client_ready();
    ssize_t n;

    (void)state;
    q_write32(&m, 20, 0, 0x10, 0xcafef00du, false);
    for (size_t i = 0; i < m.n; i++) {
        cl_send(fd, m.b + i, 1, NULL, 0);
        pump(0);
    }
    assert_int_equal(cl_recv(fd, rep, sizeof(rep)), 32);
    assert_int_equal(rd(fd, 21, 0, 0x10, 4), 0xcafef00du);
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)(i * 7);
    }
    q_write(&m, 22, 2, 0, big, sizeof(big), false);
    cl_send(fd, m.b, m.n, NULL, 0);
    assert_int_equal(cl_recv(fd, rep, sizeof(rep)), 32);
    q_read(&m, 23, 2, 0, sizeof(big));
    n = rpc(fd, &m, rep, sizeof(rep));
    assert_int_equal(n, 32 + sizeof(big));
    assert_memory_equal(rep + 32, big, sizeof(big));
    close(fd);
    assert_fresh_client_ok();
}

/* ---- Hostile clients
 * ------------------------------------------------------------------------ */

static void send_raw_hdr(int fd, uint16_t id, uint16_t cmd, uint32_t size, uint32_t flags)
{
    struct msg m;

    msg_begin(&m, id, cmd, flags);
    put32(m.b + 4, size);
    cl_send(fd, m.b, m.n, NULL, 0);
}

static void test_hostile_framing(void **state)
{
    struct vdx_vu_server_stats st0, st1;
    int fd;

    (void)state;
    vdx_vu_server_stats(g_srv, &st0);
    /* Half a header, then gone. */
    fd = cl_connect();
    cl_send(fd, "\x01\x00\x01\x00\xd6\x00", 6, NULL, 0);
    close(fd);
    assert_fresh_client_ok();
    /* Half a header, then silence: dropped after the stall timeout. */
    fd = client_ready();
    cl_send(fd, "\x01\x00\x04\x00", 4, NULL, 0);
    expect_eof(fd);
    assert_fresh_client_ok();
    /* No VERSION at all. */
    fd = cl_connect();
    expect_eof(fd);
    assert_fresh_client_ok();
    /* A size below the header size cannot be framed. */
    fd = client_ready();
    send_raw_hdr(fd, 2, VDX_VU_CMD_DEVICE_RESET, 8, 0);
    expect_eof(fd);
    assert_fresh_client_ok();
    /* Larger than the negotiated maximum (32 + max_data_xfer_size). */
    fd = client_ready();
    send_raw_hdr(fd, 3, VDX_VU_CMD_REGION_WRITE, 32 + 1048576 + 1, 0);
    expect_eof(fd);
    assert_fresh_client_ok();
    /* Before VERSION, nothing may be larger than a VERSION. */
    fd = cl_connect();
    send_raw_hdr(fd, 4, VDX_VU_CMD_VERSION, 100000, 0);
    expect_eof(fd);
    assert_fresh_client_ok();
    vdx_vu_server_stats(g_srv, &st1);
    assert_int_equal(st1.dropped, st0.dropped + 6);
}

/* A client that sends requests but never reads the replies is dropped once
 * a reply cannot be written for 1 s (SO_SNDTIMEO), not served forever. */
static void test_slow_reader(void **state)
{
    struct vdx_vu_server_stats st0, st1;
    uint64_t end;
    struct msg m;
    int fd = client_ready();

    (void)state;
    vdx_vu_server_stats(g_srv, &st0);
    for (uint16_t i = 0; i < 64; i++) {
        q_read(&m, i, 2, 0, BAR2_SIZE); /* 1 MiB of replies in all */
        cl_send(fd, m.b, m.n, NULL, 0);
    }
    end = vdx_now_ns() + 4000000000ull;
    while (vdx_vu_server_connected(g_srv) && vdx_now_ns() < end) {
        pump(5);
    }
    assert_false(vdx_vu_server_connected(g_srv));
    vdx_vu_server_stats(g_srv, &st1);
    assert_int_equal(st1.dropped, st0.dropped + 1);
    close(fd);
    assert_fresh_client_ok();
}

/* A message with payload p of n bytes. */
static void raw_msg(struct msg *m, uint16_t id, uint16_t cmd, uint32_t flags, const void *p,
                    size_t n)
{
    msg_begin(m, id, cmd, flags);
    mbytes(m, p, n);
    msg_end(m);
}

static void test_hostile_sizes(void **state)
{
    static const uint8_t zeros[64];
    static const struct {
        uint16_t cmd;
        size_t len;
    } bad[] = {
        {VDX_VU_CMD_DEVICE_GET_INFO, 12},
        {VDX_VU_CMD_DEVICE_GET_INFO, 20},
        {VDX_VU_CMD_DMA_MAP, 24},
        {VDX_VU_CMD_DMA_MAP, 40},
        {VDX_VU_CMD_DMA_UNMAP, 32},
        {VDX_VU_CMD_DEVICE_GET_REGION_INFO, 16},
        {VDX_VU_CMD_DEVICE_GET_IRQ_INFO, 20},
        {VDX_VU_CMD_DEVICE_SET_IRQS, 16},
        {VDX_VU_CMD_REGION_READ, 12},
        {VDX_VU_CMD_REGION_READ, 20},
        {VDX_VU_CMD_REGION_WRITE, 8},
        {VDX_VU_CMD_DEVICE_RESET, 4},
    };
    struct msg m;
    int fd = client_ready();

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_msg(&m, (uint16_t)i, bad[i].cmd, 0, zeros, bad[i].len);
        rpc_err(fd, &m, EINVAL);
    }
    /* A write whose data is shorter than its count. */
    q_write32(&m, 50, 0, 0, 1, false);
    put32(m.b + 28, 6);
    rpc_err(fd, &m, EINVAL);
    /* argsz below the struct. */
    q_device_info(&m, 51);
    put32(m.b + 16, 8);
    rpc_err(fd, &m, EINVAL);
    /* A read above max_data_xfer_size. */
    q_read(&m, 52, 2, 0, 1048577);
    rpc_err(fd, &m, E2BIG);
    /* Flags: unknown bit, ERROR in a command, an unknown message type. */
    q_device_info(&m, 53);
    put32(m.b + 8, 0x40);
    rpc_err(fd, &m, EINVAL);
    put32(m.b + 8, VDX_VU_F_ERROR);
    rpc_err(fd, &m, EINVAL);
    put32(m.b + 8, 2);
    rpc_err(fd, &m, EINVAL);
    /* Still served. */
    device_info_ok(fd, 54);
    close(fd);
    assert_fresh_client_ok();
}

/* Send m with descriptors and expect an error reply err. */
static void send_fds_err(int fd, const struct msg *m, const int *fds, unsigned nfds,
                         uint32_t err)
{
    uint8_t rep[64];

    cl_send(fd, m->b, m->n, fds, nfds);
    expect_err(rep, cl_recv(fd, rep, sizeof(rep)), get16(m->b), get16(m->b + 2), err);
}

static void test_hostile_fds(void **state)
{
    int fds_before = count_fds(), many[100], mem[2];
    struct msg m;
    int fd;

    (void)state;
    for (unsigned i = 0; i < 100; i++) {
        many[i] = efd_new();
        assert_true(many[i] >= 0);
    }
    mem[0] = vdx_shm_create("vu-test-hostile", 0x10000);
    mem[1] = vdx_shm_create("vu-test-hostile", 0x10000);
    fd = client_ready();
    /* A descriptor with a command that takes none. */
    q_device_info(&m, 1);
    send_fds_err(fd, &m, many, 1, EINVAL);
    /* Two memory fds with one DMA_MAP. */
    q_dma_map(&m, 2, 3, 0, 0, 0x10000);
    send_fds_err(fd, &m, mem, 2, EINVAL);
    /* More eventfds than max_msg_fds (16). */
    q_set_irqs(&m, 3, EVT_TRIG, VDX_VU_PCI_MSIX_IRQ, 0, 17);
    send_fds_err(fd, &m, many, 17, EINVAL);
    /* More than the receive buffer holds: the kernel truncates. */
    q_device_info(&m, 4);
    send_fds_err(fd, &m, many, 100, EINVAL);
    /* Fd count differs from the vector count. */
    q_set_irqs(&m, 5, EVT_TRIG, VDX_VU_PCI_MSIX_IRQ, 0, 2);
    send_fds_err(fd, &m, many, 1, EINVAL);
    /* VERSION again, with an fd. */
    q_version(&m, 6, "{}", 3);
    send_fds_err(fd, &m, many, 1, EINVAL);
    /* Nothing was kept: our fds + this client's two socket ends. */
    assert_int_equal(count_fds(), fds_before + 100 + 2 + 2);
    device_info_ok(fd, 7);
    close(fd);
    for (unsigned i = 0; i < 100; i++) {
        close(many[i]);
    }
    close(mem[0]);
    close(mem[1]);
    wait_idle();
    assert_int_equal(count_fds(), fds_before);
    assert_fresh_client_ok();
}

static void test_hostile_commands(void **state)
{
    static const uint16_t unsupported[] = {0, 6, 11, 12, 14, 15, 17, 18, 19, 200, 0xffff};
    struct vdx_vu_server_stats st0, st1;
    struct msg m;
    int fd;

    (void)state;
    /* Before VERSION: refused, but the client may still negotiate. */
    fd = cl_connect();
    q_device_info(&m, 1);
    rpc_err(fd, &m, EINVAL);
    version_ok(fd, 2);
    vdx_vu_server_stats(g_srv, &st0);
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        raw_msg(&m, (uint16_t)(10 + i), unsupported[i], 0, "abcd", 4);
        rpc_err(fd, &m, ENOTSUP);
    }
    raw_msg(&m, 30, VDX_VU_CMD_DEVICE_FEATURE, 0, "\x08\x00\x00\x00\x01\x00\x04\x00", 8);
    rpc_err(fd, &m, ENOTTY);
    /* The same with NO_REPLY, and a reply-type message: silence. */
    raw_msg(&m, 31, 200, VDX_VU_F_NO_REPLY, NULL, 0);
    cl_send(fd, m.b, m.n, NULL, 0);
    raw_msg(&m, 32, VDX_VU_CMD_DMA_READ, VDX_VU_F_TYPE_REPLY, "12345678", 8);
    cl_send(fd, m.b, m.n, NULL, 0);
    expect_silence(fd, 30);
    /* VERSION twice. */
    q_version(&m, 33, qemu_caps, sizeof(qemu_caps));
    rpc_err(fd, &m, EINVAL);
    device_info_ok(fd, 34);
    vdx_vu_server_stats(g_srv, &st1);
    assert_int_equal(st1.ignored, st0.ignored + 1);
    assert_int_equal(st1.posted_errors, st0.posted_errors + 1);
    close(fd);
    assert_fresh_client_ok();
}

/* A VERSION the server cannot accept: error reply, then the connection closes. */
static void version_refused(const char *caps, size_t len, uint16_t major, uint32_t err)
{
    uint8_t rep[64];
    struct msg m;
    int fd = cl_connect();

    q_version(&m, 7, caps, len);
    put32(m.b + 16, major);
    expect_err(rep, rpc(fd, &m, rep, sizeof(rep)), 7, VDX_VU_CMD_VERSION, err);
    expect_eof(fd);
    assert_fresh_client_ok();
}

static void test_hostile_version(void **state)
{
    (void)state;
    version_refused("{}", 3, 1, ENOTSUP);
    version_refused("{\"capabilities\":", 17, 0, EINVAL);
    version_refused("{}", 2, 0, EINVAL); /* no NUL */
    version_refused("{\"capabilities\":{\"max_msg_fds\":-1}}", 36, 0, EINVAL);
    version_refused("{\"capabilities\":{\"pgsizes\":65536}}", 35, 0,
                    EINVAL); /* none common */
}

static void map_expect(int fd, uint16_t id, uint32_t flags, uint64_t off, uint64_t iova,
                       uint64_t size, const int *mfd, uint32_t err)
{
    uint8_t rep[64];
    struct msg m;
    ssize_t n;

    q_dma_map(&m, id, flags, off, iova, size);
    cl_send(fd, m.b, m.n, mfd, mfd != NULL ? 1 : 0);
    n = cl_recv(fd, rep, sizeof(rep));
    if (err == 0) {
        expect_rep(rep, n, id, VDX_VU_CMD_DMA_MAP, NULL);
    } else {
        expect_err(rep, n, id, VDX_VU_CMD_DMA_MAP, err);
    }
}

static void test_hostile_dma(void **state)
{
    char file[160];
    int fds_before = count_fds(), ram, pipefd[2], ro;
    struct vdx_vu_server_stats st;
    struct msg m;
    int fd;

    (void)state;
    ram = vdx_shm_create("vu-test-ram", 0x100000);
    assert_int_equal(pipe(pipefd), 0);
    snprintf(file, sizeof(file), "%s/ro-file", g_dir);
    ro = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_int_equal(ftruncate(ro, 0x10000), 0);
    close(ro);
    ro = open(file, O_RDONLY | O_CLOEXEC);
    fd = client_ready();
    map_expect(fd, 1, 3, 0, 0x100000, 0x10000, &ram, 0);
    /* Overlaps: same, inside, around, straddling either end. */
    map_expect(fd, 2, 3, 0, 0x100000, 0x10000, &ram, EEXIST);
    map_expect(fd, 3, 3, 0, 0x104000, 0x1000, &ram, EEXIST);
    map_expect(fd, 4, 3, 0, 0xf0000, 0x30000, &ram, EEXIST);
    map_expect(fd, 5, 3, 0, 0xff000, 0x2000, &ram, EEXIST);
    map_expect(fd, 6, 3, 0, 0x10f000, 0x2000, &ram, EEXIST);
    /* Adjacent on both sides is fine. */
    map_expect(fd, 7, 3, 0x10000, 0xf0000, 0x10000, &ram, 0);
    map_expect(fd, 8, 1, 0, 0x110000, 0x10000, NULL, 0);
    /* Not page aligned. */
    map_expect(fd, 9, 3, 0, 0x200100, 0x1000, &ram, EINVAL);
    map_expect(fd, 10, 3, 0, 0x200000, 0x800, &ram, EINVAL);
    /* An offset needs an fd; the backend may require one. */
    map_expect(fd, 11, 3, 0x1000, 0x200000, 0x1000, NULL, EINVAL);
    g_tb.require_dma_fd = true;
    map_expect(fd, 12, 3, 0, 0x200000, 0x1000, NULL, EFAULT);
    g_tb.require_dma_fd = false;
    /* The fd must cover the range, be a regular file and allow the access. */
    map_expect(fd, 13, 3, 0xf8000, 0x200000, 0x10000, &ram, EINVAL);
    map_expect(fd, 14, 3, 0, 0x200000, 0x1000, &pipefd[0], EINVAL);
    map_expect(fd, 15, 3, 0, 0x200000, 0x1000, &ro, EACCES);
    map_expect(fd, 16, 1, 0, 0x200000, 0x1000, &ro, 0); /* read-only is fine */
    assert_false(g_tb.mapped_sealed);                   /* a plain file */
    vdx_vu_server_stats(g_srv, &st);
    assert_int_equal(st.dma_maps, 4);
    assert_int_equal(st.dma_files, 2);
    q_dma_unmap(&m, 17, 0, 0x100000, 0x1000);
    rpc_err(fd, &m, ENOENT);
    q_dma_unmap(&m, 18, VDX_VU_DMA_UNMAP_F_GET_DIRTY_BITMAP, 0x100000, 0x10000);
    rpc_err(fd, &m, ENOTSUP);
    q_dma_unmap(&m, 19, VDX_VU_DMA_UNMAP_F_ALL, 0x100000, 0x10000);
    rpc_err(fd, &m, EINVAL);
    close(fd);
    wait_idle();
    assert_int_equal(g_tb.live_maps, 0);
    close(ram);
    close(ro);
    close(pipefd[0]);
    close(pipefd[1]);
    unlink(file);
    assert_int_equal(count_fds(), fds_before);
    assert_fresh_client_ok();
}

/* ---- A server with small limits
 * ---------------------------------------------------------- */

static struct vdx_vu_backend_ops tb_ops_noreset;

static struct vdx_vu_server *use_limited_server(void)
{
    struct vdx_vu_server_opts o;
    struct vdx_vu_server *srv = NULL;

    vdx_vu_server_opts_default(&o);
    o.max_data_xfer_size = 4096;
    o.max_dma_maps = 3;
    o.max_dma_files = 2;
    o.max_msg_fds = 4;
    o.stall_timeout_ms = 300;
    tb_ops_noreset = tb_ops;
    tb_ops_noreset.reset = NULL;
    snprintf(g_path, sizeof(g_path), "%s/limited.sock", g_dir);
    assert_int_equal(vdx_vu_server_create_opts(g_path, &o, &tb_ops_noreset, &g_tb, &srv),
                     0);
    g_srv = srv;
    return srv;
}

static void test_limits(void **state)
{
    struct vdx_vu_version_req v;
    int fds_before = count_fds(), mem[3];
    struct vdx_vu_server *srv;
    unsigned unmaps;
    uint8_t rep[256];
    struct msg m;
    ssize_t n;
    int fd;

    (void)state;
    srv = use_limited_server();
    for (unsigned i = 0; i < 3; i++) {
        mem[i] = vdx_shm_create("vu-test-lim", 0x10000);
    }
    fd = cl_connect();
    q_version(&m, 1, qemu_caps, sizeof(qemu_caps));
    n = rpc(fd, &m, rep, sizeof(rep));
    assert_true(n > 20 && n <= 214);
    assert_int_equal(vdx_vu_version_decode(rep + 16, (size_t)n - 16, &v), 0);
    assert_int_equal(v.caps.max_msg_fds, 4);
    assert_int_equal(v.caps.max_data_xfer_size, 4096);
    assert_int_equal(v.caps.max_dma_maps, 3);
    /* Distinct files, then maps, run out. */
    map_expect(fd, 2, 3, 0, 0x0, 0x1000, &mem[0], 0);
    map_expect(fd, 3, 3, 0, 0x1000, 0x1000, &mem[1], 0);
    map_expect(fd, 4, 3, 0, 0x2000, 0x1000, &mem[2], ENOSPC);
    map_expect(fd, 5, 3, 0x1000, 0x2000, 0x1000, &mem[0], 0);
    map_expect(fd, 6, 3, 0x2000, 0x3000, 0x1000, &mem[0], ENOSPC);
    /* More fds than max_msg_fds (4); data transfers of 4 KiB. */
    {
        int efds[5];

        for (unsigned i = 0; i < 5; i++) {
            efds[i] = efd_new();
        }
        q_set_irqs(&m, 7, EVT_TRIG, VDX_VU_PCI_MSIX_IRQ, 0, 4);
        send_fds_err(fd, &m, efds, 5, EINVAL);
        for (unsigned i = 0; i < 5; i++) {
            close(efds[i]);
        }
    }
    q_read(&m, 8, 2, 0, 4097);
    rpc_err(fd, &m, E2BIG);
    assert_int_equal(rd(fd, 9, 0, 0, 4), 0);
    q_reset(&m, 10);
    rpc_err(fd, &m, ENOTSUP);
    /* Destroying the server with a client holding maps releases them. */
    unmaps = g_tb.unmap_calls;
    vdx_vu_server_destroy(srv);
    g_srv = g_main;
    assert_int_equal(g_tb.unmap_calls, unmaps + 3);
    assert_int_equal(g_tb.live_maps, 0);
    assert_int_equal(access(g_path, F_OK), -1); /* socket unlinked */
    close(fd);
    for (unsigned i = 0; i < 3; i++) {
        close(mem[i]);
    }
    assert_int_equal(count_fds(), fds_before);
}

static void test_limited_oversize(void **state)
{
    struct vdx_vu_server *srv = use_limited_server();
    int fd = client_ready();

    (void)state;
    send_raw_hdr(fd, 1, VDX_VU_CMD_REGION_WRITE, 32 + 4096 + 4096, 0);
    expect_eof(fd);
    assert_fresh_client_ok();
    vdx_vu_server_destroy(srv);
    g_srv = g_main;
}

/* ---- Clients that go away
 * ---------------------------------------------------------------- */

static void test_client_closed_mid_session(void **state)
{
    int fds_before = count_fds(), e[2];
    unsigned disables = g_tb.disables, detaches = g_tb.detach_calls;
    struct qemu q;

    (void)state;
    qemu_start(&q, 7);
    e[0] = efd_new();
    e[1] = efd_new();
    set_irqs_fds(&q, EVT_TRIG, VDX_VU_PCI_MSIX_IRQ, 0, 2, e, 2, 0);
    /* Gone without a single DMA_UNMAP. */
    close(q.fd);
    q.fd = -1;
    wait_idle();
    assert_int_equal(g_tb.live_maps, 0);
    assert_int_equal(g_tb.disables, disables + 2); /* MSI-X and ERR */
    assert_int_equal(g_tb.detach_calls, detaches + 1);
    assert_int_equal(count_maps("vu-test-ram"), 0);
    for (unsigned i = 0; i < 2; i++) {
        munmap(q.bar2_area[i], 0x1000);
    }
    close(e[0]);
    close(e[1]);
    close(q.ram_fd);
    close(q.bar2_fd);
    close(q.err_efd);
    assert_int_equal(count_fds(), fds_before);
    assert_fresh_client_ok();
}

/* The child: a client that maps memory and wires an eventfd, then waits to be
 * killed. No cmocka in here: plain checks and _exit(). */
static void killed_child(int ready_fd)
{
    int ram = vdx_shm_create("vu-test-ram", RAM_SIZE), efd = efd_new(), fd;
    uint8_t rep[256];
    struct msg m;

    g_pump = false;
    fd = cl_connect();
    q_version(&m, 1, qemu_caps, sizeof(qemu_caps));
    cl_send(fd, m.b, m.n, NULL, 0);
    q_dma_map(&m, 2, 3, 0, 0, 0x100000);
    cl_send(fd, m.b, m.n, &ram, 1);
    q_dma_map(&m, 3, 3, 0x100000, 0x100000, 0x100000);
    cl_send(fd, m.b, m.n, &ram, 1);
    q_set_irqs(&m, 4, EVT_TRIG, VDX_VU_PCI_ERR_IRQ, 0, 1);
    cl_send(fd, m.b, m.n, &efd, 1);
    for (unsigned i = 0; i < 4; i++) {
        if (cl_recv(fd, rep, sizeof(rep)) <= 0 || (get32(rep + 8) & VDX_VU_F_ERROR)) {
            _exit(3);
        }
    }
    if (write(ready_fd, "R", 1) != 1) {
        _exit(4);
    }
    for (;;) {
        pause();
    }
}

static void test_client_killed(void **state)
{
    int fds_before = count_fds(), pipefd[2], status;
    unsigned unmaps = g_tb.unmap_calls;
    struct vdx_vu_server_stats st;
    pid_t pid;

    (void)state;
    assert_int_equal(pipe(pipefd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        killed_child(pipefd[1]);
    }
    close(pipefd[1]);
    assert_true(cl_wait(pipefd[0], 5000)); /* pumping the server meanwhile */
    vdx_vu_server_stats(g_srv, &st);
    assert_int_equal(st.dma_maps, 2);
    assert_int_equal(st.dma_files, 1);
    assert_true(vdx_vu_server_irq_fd(g_srv, VDX_VU_PCI_ERR_IRQ, 0) >= 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    close(pipefd[0]);
    wait_idle();
    assert_int_equal(g_tb.unmap_calls, unmaps + 2);
    assert_int_equal(count_maps("vu-test-ram"), 0);
    assert_int_equal(count_fds(), fds_before);
    assert_fresh_client_ok();
}

/* A second client waits in the backlog until the first leaves. */
static void test_one_client_at_a_time(void **state)
{
    uint8_t rep[256];
    struct msg m;
    int a = client_ready(), b;

    (void)state;
    b = cl_connect();
    q_version(&m, 9, qemu_caps, sizeof(qemu_caps));
    cl_send(b, m.b, m.n, NULL, 0);
    expect_silence(b, 100);
    device_info_ok(a, 2);
    close(a);
    assert_int_equal(cl_recv(b, rep, sizeof(rep)), 85);
    device_info_ok(b, 10);
    close(b);
    assert_fresh_client_ok();
}

/* ---- Backend and region errors
 * ------------------------------------------------------------ */

static void test_backend_errors(void **state)
{
    struct vdx_vu_server_stats st0, st1;
    unsigned detaches;
    struct msg m;
    int fd;

    (void)state;
    vdx_vu_server_stats(g_srv, &st0);
    g_tb.attach_rc = -EBUSY;
    fd = cl_connect();
    expect_eof(fd);
    g_tb.attach_rc = 0;
    vdx_vu_server_stats(g_srv, &st1);
    assert_int_equal(st1.refused, st0.refused + 1);
    /* Attached, then the device cannot be described: attach is undone. */
    detaches = g_tb.detach_calls;
    g_tb.info_rc = -EIO;
    fd = cl_connect();
    expect_eof(fd);
    g_tb.info_rc = 0;
    assert_int_equal(g_tb.detach_calls, detaches + 1);
    fd = client_ready();
    q_read(&m, 2, 0, BAR0_FAIL_REG, 4);
    rpc_err(fd, &m, EIO);
    q_write32(&m, 3, 0, BAR0_FAIL_REG, 0, false);
    rpc_err(fd, &m, EIO);
    close(fd);
    assert_fresh_client_ok();
}

static void test_hostile_regions_irqs(void **state)
{
    const uint32_t cfg = VDX_VU_PCI_CONFIG_REGION;
    struct msg m;
    int fd = client_ready();
    uint8_t rep[64];

    (void)state;
    q_read(&m, 1, cfg, 250, 8); /* past the end */
    rpc_err(fd, &m, EINVAL);
    q_read(&m, 2, 9, 0, 4); /* no such region */
    rpc_err(fd, &m, EINVAL);
    q_read(&m, 3, 1, 0, 4); /* absent BAR */
    rpc_err(fd, &m, EINVAL);
    q_write32(&m, 4, cfg, 0x100, 0, false);
    rpc_err(fd, &m, EINVAL);
    q_region_info(&m, 5, 32, 9);
    rpc_err(fd, &m, EINVAL);
    q_region_info(&m, 6, 16, 0);
    rpc_err(fd, &m, EINVAL);
    q_irq_info(&m, 7, 5);
    rpc_err(fd, &m, EINVAL);
    q_set_irqs(&m, 8, NONE_TRIG, VDX_VU_PCI_MSIX_IRQ, 3, 2); /* past the vectors */
    rpc_err(fd, &m, EINVAL);
    q_set_irqs(&m, 9, NONE_TRIG, VDX_VU_PCI_MSI_IRQ, 0, 1); /* MSI has none */
    rpc_err(fd, &m, EINVAL);
    q_set_irqs(&m, 10, NONE_TRIG, 7, 0, 1);
    rpc_err(fd, &m, EINVAL);
    q_set_irqs(&m, 11, VDX_VU_IRQ_SET_DATA_EVENTFD | VDX_VU_IRQ_SET_ACTION_MASK,
               VDX_VU_PCI_INTX_IRQ, 0, 1);
    rpc_err(fd, &m, EINVAL);
    /* Booleans reach the backend. */
    msg_begin(&m, 12, VDX_VU_CMD_DEVICE_SET_IRQS, 0);
    m32(&m, 22), m32(&m, VDX_VU_IRQ_SET_DATA_BOOL | VDX_VU_IRQ_SET_ACTION_TRIGGER);
    m32(&m, VDX_VU_PCI_MSIX_IRQ), m32(&m, 1), m32(&m, 2), m8(&m, 1), m8(&m, 0);
    msg_end(&m);
    expect_rep(rep, rpc(fd, &m, rep, sizeof(rep)), 12, VDX_VU_CMD_DEVICE_SET_IRQS, NULL);
    assert_int_equal(g_tb.last_set.data, VDX_VU_IRQ_SET_DATA_BOOL);
    assert_int_equal(g_tb.last_set.start, 1);
    assert_non_null(g_tb.last_set.bools);
    assert_null(g_tb.last_set.fds);
    device_info_ok(fd, 13);
    close(fd);
    assert_fresh_client_ok();
}

/* Random bytes after (and instead of) VERSION: the server survives. */
static void test_garbage_streams(void **state)
{
    static uint8_t junk[2048];
    uint64_t x = 0x243f6a8885a308d3ull;

    (void)state;
    for (unsigned round = 0; round < 12; round++) {
        int fd = round % 3 == 0 ? cl_connect() : client_ready();

        for (size_t i = 0; i < sizeof(junk); i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            junk[i] =
                (uint8_t)(round % 2 ? x : x % 24); /* small values look like commands */
        }
        cl_send(fd, junk, sizeof(junk), NULL, 0);
        pump_for(10);
        close(fd);
        wait_idle();
    }
    assert_fresh_client_ok();
}

/* ---- Creation
 * ----------------------------------------------------------------------------- */

static void test_create_errors(void **state)
{
    struct vdx_vu_backend_ops partial = tb_ops;
    struct vdx_vu_server_opts o;
    struct vdx_vu_server *srv = NULL;
    char path[512];
    struct stat st;
    int fd;

    (void)state;
    memset(path, 'x', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(vdx_vu_server_create(path, &tb_ops, &g_tb, &srv), -ENAMETOOLONG);
    assert_int_equal(vdx_vu_server_create(g_main_path, &tb_ops, &g_tb, &srv), -EADDRINUSE);
    snprintf(path, sizeof(path), "%s/plain-file", g_dir);
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(fd);
    assert_int_equal(vdx_vu_server_create(path, &tb_ops, &g_tb, &srv), -EEXIST);
    unlink(path);
    partial.region_read = NULL;
    assert_int_equal(vdx_vu_server_create(path, &partial, &g_tb, &srv), -EINVAL);
    vdx_vu_server_opts_default(&o);
    o.max_msg_fds = 17;
    assert_int_equal(vdx_vu_server_create_opts(path, &o, &tb_ops, &g_tb, &srv), -EINVAL);
    vdx_vu_server_opts_default(&o);
    o.pgsizes = 2048;
    assert_int_equal(vdx_vu_server_create_opts(path, &o, &tb_ops, &g_tb, &srv), -EINVAL);
    /* A stale socket (nobody listening) is replaced; the new one is 0600. */
    {
        struct sockaddr_un a = {.sun_family = AF_UNIX};

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(strlen(path) < sizeof(a.sun_path));
        memcpy(a.sun_path, path, strlen(path) + 1);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        close(fd);
    }
    assert_int_equal(vdx_vu_server_create(path, &tb_ops, &g_tb, &srv), 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(vdx_vu_server_fd(srv) >= 0);
    assert_false(vdx_vu_server_connected(srv));
    assert_int_equal(vdx_vu_server_irq_signal(srv, 0, 0), -ENOENT);
    vdx_vu_server_destroy(srv);
    assert_int_equal(lstat(path, &st), -1);
    vdx_vu_server_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_qemu_replay_startup, test_setup),
        cmocka_unit_test_setup(test_qemu_runtime_msix, test_setup),
        cmocka_unit_test_setup(test_qemu_dma_unmap, test_setup),
        cmocka_unit_test_setup(test_posted_writes, test_setup),
        cmocka_unit_test_setup(test_partial_frames, test_setup),
        cmocka_unit_test_setup(test_hostile_framing, test_setup),
        cmocka_unit_test_setup(test_slow_reader, test_setup),
        cmocka_unit_test_setup(test_hostile_sizes, test_setup),
        cmocka_unit_test_setup(test_hostile_fds, test_setup),
        cmocka_unit_test_setup(test_hostile_commands, test_setup),
        cmocka_unit_test_setup(test_hostile_version, test_setup),
        cmocka_unit_test_setup(test_hostile_dma, test_setup),
        cmocka_unit_test_setup(test_hostile_regions_irqs, test_setup),
        cmocka_unit_test_setup(test_limits, test_setup),
        cmocka_unit_test_setup(test_limited_oversize, test_setup),
        cmocka_unit_test_setup(test_client_closed_mid_session, test_setup),
        cmocka_unit_test_setup(test_client_killed, test_setup),
        cmocka_unit_test_setup(test_one_client_at_a_time, test_setup),
        cmocka_unit_test_setup(test_backend_errors, test_setup),
        cmocka_unit_test_setup(test_garbage_streams, test_setup),
        cmocka_unit_test_setup(test_create_errors, test_setup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
