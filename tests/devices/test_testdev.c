/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of sim:testdev through the device ops seam, with a fake host:
 * dma_rw backed by a small fake IOMMU (a few bus-address -> buffer mappings)
 * and an irq_raise that records vectors. Also the SPEC parser and
 * vdx_parse_bdf (src/devices/devices.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dext/device.h"
#include "devices/simpci.h"
#include "devices/testdev.h"
#include "platform/platform.h"

#define SRC_BUS      0x100000ull
#define DST_BUS      0x200000ull
#define BUF_SIZE     (256u * 1024u)
#define UNMAPPED_BUS 0x900000ull
#define BOUNCE_MAX   (64u * 1024u) /* the device's documented bounce buffer */

struct map {
    uint64_t bus;
    size_t len;
    uint8_t *mem;
};

struct fake_host {
    struct map maps[3];
    unsigned nmaps;
    unsigned dma_calls;
    unsigned faults;
    size_t max_len;
    unsigned nirq;
    unsigned irq[64];
};

struct fixture {
    struct fake_host fh;
    struct vdx_dev_host host;
    struct vdx_device dev;
    uint8_t *src, *dst;
};

static const struct map *find_map(const struct fake_host *fh, uint64_t bus, size_t len)
{
    for (unsigned i = 0; i < fh->nmaps; i++) {
        const struct map *m = &fh->maps[i];

        if (bus >= m->bus && bus - m->bus <= m->len && len <= m->len - (bus - m->bus)) {
            return m;
        }
    }
    return NULL;
}

static int fake_dma_rw(void *ctx, uint64_t bus, void *buf, size_t len, enum vdx_dma_dir dir)
{
    struct fake_host *fh = ctx;
    const struct map *m = find_map(fh, bus, len);

    fh->dma_calls++;
    fh->max_len = len > fh->max_len ? len : fh->max_len;
    if (!m) {
        fh->faults++;
        return -EFAULT;
    }
    if (dir == VDX_DMA_TO_DEVICE) {
        memcpy(buf, m->mem + (bus - m->bus), len);
    } else {
        memcpy(m->mem + (bus - m->bus), buf, len);
    }
    return 0;
}

static void fake_irq_raise(void *ctx, unsigned vector)
{
    struct fake_host *fh = ctx;

    if (fh->nirq < 64) {
        fh->irq[fh->nirq] = vector;
    }
    fh->nirq++;
}

static int setup_spec(void **state, const char *spec)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";

    assert_non_null(f);
    f->src = malloc(BUF_SIZE);
    f->dst = malloc(BUF_SIZE);
    assert_non_null(f->src);
    assert_non_null(f->dst);
    for (size_t i = 0; i < BUF_SIZE; i++) {
        f->src[i] = (uint8_t)(i * 7 + (i >> 8));
    }
    memset(f->dst, 0xee, BUF_SIZE);
    f->fh.maps[0] = (struct map){SRC_BUS, BUF_SIZE, f->src};
    f->fh.maps[1] = (struct map){DST_BUS, BUF_SIZE, f->dst};
    f->fh.nmaps = 2;
    f->host = (struct vdx_dev_host){&f->fh, fake_dma_rw, fake_irq_raise};
    assert_int_equal(vdx_device_create(spec, &f->host, &f->dev, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_spec(state, "sim:testdev,bdf=0000:03:00.0");
}

static int setup_4vec(void **state)
{
    return setup_spec(state, "sim:testdev,vectors=4,bar2=64K");
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    f->dev.ops->destroy(f->dev.dev);
    free(f->src);
    free(f->dst);
    free(f);
    return 0;
}

static uint64_t rd(struct fixture *f, uint64_t off, unsigned width)
{
    uint64_t v = 0xdeadbeef;

    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 0, off, width, &v), 0);
    return v;
}

static void wr(struct fixture *f, uint64_t off, unsigned width, uint64_t v)
{
    assert_int_equal(f->dev.ops->mmio_write(f->dev.dev, 0, off, width, v), 0);
}

static uint32_t cfg(struct fixture *f, uint32_t off, unsigned width)
{
    uint32_t v = 0xdeadbeef;

    assert_int_equal(f->dev.ops->config_read(f->dev.dev, off, width, &v), 0);
    return v;
}

static uint64_t counter(struct fixture *f, const char *name)
{
    const char *names[32];
    uint64_t values[32];
    size_t n = f->dev.ops->counters(f->dev.dev, names, values, 32);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return values[i];
        }
    }
    fail_msg("no counter %s", name);
    return 0;
}

static void dma(struct fixture *f, uint64_t src, uint64_t dst, uint32_t len, uint32_t cmd)
{
    wr(f, TESTDEV_REG_DMA_SRC, 8, src);
    wr(f, TESTDEV_REG_DMA_DST, 8, dst);
    wr(f, TESTDEV_REG_DMA_LEN, 4, len);
    wr(f, TESTDEV_REG_DMA_CMD, 4, cmd);
}

/* ---- Identity and config --------------------------------------------------------- */

static void test_identity(void **state)
{
    struct fixture *f = *state;
    struct vdx_bar_info bi;

    assert_string_equal(f->dev.ops->kind, "sim:testdev");
    assert_int_equal(f->dev.domain, 0);
    assert_int_equal(f->dev.bus, 3);
    assert_int_equal(f->dev.slot, 0);
    assert_int_equal(f->dev.fn, 0);
    assert_int_equal(cfg(f, 0, 2), TESTDEV_VENDOR_ID);
    assert_int_equal(cfg(f, 2, 2), TESTDEV_DEVICE_ID);
    assert_int_equal(cfg(f, 8, 4), TESTDEV_REVISION | (TESTDEV_CLASS_CODE << 8));
    assert_int_equal(cfg(f, SIMPCI_HEADER_TYPE, 1), 0);
    assert_int_equal(cfg(f, SIMPCI_INTERRUPT_PIN, 1), 0);
    assert_int_equal(cfg(f, SIMPCI_CAP_PTR, 1), TESTDEV_CAP_PM);
    assert_int_equal(cfg(f, TESTDEV_CAP_PM, 2), SIMPCI_CAP_ID_PM | (TESTDEV_CAP_MSI << 8));
    assert_int_equal(cfg(f, TESTDEV_CAP_MSI, 2),
                     SIMPCI_CAP_ID_MSI | (TESTDEV_CAP_PCIE << 8));
    assert_int_equal(cfg(f, TESTDEV_CAP_PCIE, 2),
                     SIMPCI_CAP_ID_PCIE | (TESTDEV_CAP_MSIX << 8));
    assert_int_equal(cfg(f, TESTDEV_CAP_MSIX, 2), SIMPCI_CAP_ID_MSIX);
    assert_int_equal((cfg(f, TESTDEV_CAP_MSI + 2, 2) >> 1) & 7, 5); /* 32 vectors */
    assert_true(cfg(f, TESTDEV_CAP_PCIE + 4, 4) & SIMPCI_PCIE_DEVCAP_FLR);
    assert_int_equal(cfg(f, TESTDEV_CAP_MSIX + 2, 2) & 0x7ff, TESTDEV_DEFAULT_VECTORS - 1);
    assert_int_equal(cfg(f, TESTDEV_CAP_MSIX + 4, 4), TESTDEV_MSIX_TABLE_OFF | 0);
    assert_int_equal(cfg(f, TESTDEV_CAP_MSIX + 8, 4), TESTDEV_MSIX_PBA_OFF | 0);

    assert_int_equal(f->dev.ops->bar_info(f->dev.dev, 0, &bi), 0);
    assert_int_equal(bi.size, TESTDEV_BAR0_SIZE);
    assert_int_equal(bi.type, DEXT_BAR_TYPE_M32);
    assert_int_equal(f->dev.ops->bar_info(f->dev.dev, 2, &bi), 0);
    assert_int_equal(bi.size, TESTDEV_BAR2_DEFAULT_SIZE);
    assert_int_equal(bi.type, DEXT_BAR_TYPE_M64PF);
    for (unsigned b = 1; b < 6; b += (b == 1 ? 2 : 1)) { /* 1, 3, 4, 5 */
        assert_int_equal(f->dev.ops->bar_info(f->dev.dev, b, &bi), 0);
        assert_int_equal(bi.size, 0);
    }
    /* BAR sizing through config space. */
    assert_int_equal(f->dev.ops->config_write(f->dev.dev, 0x18, 4, 0xffffffff), 0);
    assert_int_equal(cfg(f, 0x18, 4), 0xfff0000c);
    assert_int_equal(f->dev.ops->config_write(f->dev.dev, 0x10, 4, 0xffffffff), 0);
    assert_int_equal(cfg(f, 0x10, 4), 0xffff0000);
}

/* ---- BAR0 registers -------------------------------------------------------------- */

static void test_registers(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(rd(f, TESTDEV_REG_ID, 4), TESTDEV_ID_MAGIC);
    assert_int_equal(rd(f, TESTDEV_REG_VERSION, 4), 1);
    wr(f, TESTDEV_REG_ID, 4, 0);
    assert_int_equal(rd(f, TESTDEV_REG_ID, 4), TESTDEV_ID_MAGIC);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH, 4), 0);
    wr(f, TESTDEV_REG_SCRATCH, 4, 0xcafef00d);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH, 4), 0xcafef00d);

    wr(f, TESTDEV_REG_SCRATCH64, 8, 0x0123456789abcdefull);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH64, 8), 0x0123456789abcdefull);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH64, 4), 0x89abcdef);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH64 + 4, 4), 0x01234567);
    wr(f, TESTDEV_REG_SCRATCH64 + 4, 4, 0xaaaaaaaa);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH64, 8), 0xaaaaaaaa89abcdefull);
    wr(f, TESTDEV_REG_SCRATCH64, 4, 0x55555555);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH64, 8), 0xaaaaaaaa55555555ull);
    wr(f, TESTDEV_REG_DMA_SRC + 4, 4, 0x1);
    wr(f, TESTDEV_REG_DMA_SRC, 4, 0x2000);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_SRC, 8), 0x100002000ull);

    wr(f, TESTDEV_REG_DMA_FILL, 4, 0x1a5);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_FILL, 4), 0xa5);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_CMD, 4), 0); /* write-only */
    assert_int_equal(rd(f, TESTDEV_REG_RAISE, 4), 0);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_IDLE);
    wr(f, TESTDEV_REG_DMA_STATUS, 4, 7); /* read-only */
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_IDLE);
}

static void test_width_rules(void **state)
{
    struct fixture *f = *state;
    uint64_t v;

    wr(f, TESTDEV_REG_SCRATCH, 4, 0x11223344);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH, 2), 0);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH, 1), 0);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH, 8), 0);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH + 1, 1), 0);
    wr(f, TESTDEV_REG_SCRATCH, 2, 0xffff);
    wr(f, TESTDEV_REG_SCRATCH + 2, 1, 0xff);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH, 4), 0x11223344);
    assert_int_equal(rd(f, TESTDEV_REG_ID, 1), 0);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH64 + 2, 4), 0); /* not a half */
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH64, 2), 0);
    wr(f, TESTDEV_REG_SCRATCH64 + 2, 4, 0xffffffff);
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH64, 8), 0);
    /* Undefined offsets read 0 and ignore writes. */
    for (uint64_t off = 0x00c; off < 0x4000; off = off * 2 + 4) {
        if (off == TESTDEV_REG_SCRATCH64 + 4 || (off >= 0x10 && off < 0x50)) {
            continue;
        }
        wr(f, off, 4, 0xffffffff);
        assert_int_equal(rd(f, off, 4), 0);
    }
    assert_int_equal(rd(f, TESTDEV_BAR0_SIZE - 8, 8), 0);
    /* Bad width / out of the BAR: an error, never a crash. */
    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 0, 0, 3, &v), -EINVAL);
    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 0, TESTDEV_BAR0_SIZE, 4, &v),
                     -EINVAL);
    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 1, 0, 4, &v), -EINVAL);
    assert_int_equal(f->dev.ops->mmio_write(f->dev.dev, 5, 0, 4, 0), -EINVAL);
    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 2, UINT64_MAX - 2, 4, &v), -EINVAL);
}

/* ---- DMA ----------------------------------------------------------------------------- */

static void test_dma_copy(void **state)
{
    struct fixture *f = *state;
    const uint32_t len = 200001; /* several bounce chunks plus a tail */

    dma(f, SRC_BUS + 3, DST_BUS + 5, len, TESTDEV_DMA_CMD_COPY);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_OK);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_DONE, 4), 1);
    assert_int_equal(rd(f, TESTDEV_REG_IOMMU_FAULTS, 4), 0);
    assert_memory_equal(f->dst + 5, f->src + 3, len);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(f->dst[i], 0xee);
    }
    for (size_t i = 5 + len; i < BUF_SIZE; i++) {
        assert_int_equal(f->dst[i], 0xee);
    }
    assert_true(f->fh.max_len <= BOUNCE_MAX);
    assert_true(f->fh.dma_calls >= 8);
    assert_int_equal(f->fh.nirq, 0); /* no IRQ bit */
    assert_int_equal(counter(f, "dma_done"), 1);
}

static void test_dma_fill(void **state)
{
    struct fixture *f = *state;
    const uint32_t len = 70000;

    wr(f, TESTDEV_REG_DMA_FILL, 4, 0x1a5);
    dma(f, 0, DST_BUS + 1, len, TESTDEV_DMA_CMD_FILL);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_OK);
    assert_int_equal(f->dst[0], 0xee);
    for (size_t i = 1; i <= len; i++) {
        assert_int_equal(f->dst[i], 0xa5);
    }
    assert_int_equal(f->dst[len + 1], 0xee);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_DONE, 4), 1);
}

/* The largest command: 16 MiB copied, then filled, through the 64 KiB bounce. */
static void test_dma_max_len(void **state)
{
    struct fixture *f = *state;
    const uint64_t big_bus = 0x40000000ull;
    uint8_t *big = malloc(2 * (size_t)TESTDEV_DMA_MAX_LEN);

    assert_non_null(big);
    for (size_t i = 0; i < TESTDEV_DMA_MAX_LEN; i++) {
        big[i] = (uint8_t)(i ^ (i >> 13));
    }
    f->fh.maps[2] = (struct map){big_bus, 2 * (size_t)TESTDEV_DMA_MAX_LEN, big};
    f->fh.nmaps = 3;
    dma(f, big_bus, big_bus + TESTDEV_DMA_MAX_LEN, TESTDEV_DMA_MAX_LEN,
        TESTDEV_DMA_CMD_COPY);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_OK);
    assert_memory_equal(big, big + TESTDEV_DMA_MAX_LEN, TESTDEV_DMA_MAX_LEN);
    wr(f, TESTDEV_REG_DMA_FILL, 4, 0x3c);
    dma(f, 0, big_bus, TESTDEV_DMA_MAX_LEN, TESTDEV_DMA_CMD_FILL);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_OK);
    for (size_t i = 0; i < TESTDEV_DMA_MAX_LEN; i++) {
        if (big[i] != 0x3c) {
            fail_msg("byte %zu is 0x%02x", i, big[i]);
        }
    }
    assert_int_equal(rd(f, TESTDEV_REG_DMA_DONE, 4), 2);
    assert_true(f->fh.max_len <= BOUNCE_MAX);
    f->fh.nmaps = 2;
    free(big);
}

static void test_dma_fault(void **state)
{
    struct fixture *f = *state;
    uint8_t *src_copy = malloc(BUF_SIZE);
    uint8_t *dst_copy = malloc(BUF_SIZE);

    assert_non_null(src_copy);
    assert_non_null(dst_copy);
    memcpy(src_copy, f->src, BUF_SIZE);
    memcpy(dst_copy, f->dst, BUF_SIZE);

    dma(f, SRC_BUS, UNMAPPED_BUS, 4096, TESTDEV_DMA_CMD_COPY); /* unmapped destination */
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_FAULT);
    assert_int_equal(rd(f, TESTDEV_REG_IOMMU_FAULTS, 4), 1);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_DONE, 4), 1);
    dma(f, UNMAPPED_BUS, DST_BUS, 4096, TESTDEV_DMA_CMD_COPY); /* unmapped source */
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_FAULT);
    assert_int_equal(rd(f, TESTDEV_REG_IOMMU_FAULTS, 4), 2);
    dma(f, 0, DST_BUS + BUF_SIZE - 100, 200, TESTDEV_DMA_CMD_FILL); /* runs off the end */
    assert_int_equal(rd(f, TESTDEV_REG_IOMMU_FAULTS, 4), 3);
    dma(f, 0, UINT64_MAX - 10, 100, TESTDEV_DMA_CMD_FILL); /* wraps the bus space */
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_FAULT);
    assert_int_equal(rd(f, TESTDEV_REG_IOMMU_FAULTS, 4), 4);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_DONE, 4), 4);
    assert_memory_equal(f->src, src_copy, BUF_SIZE);
    assert_memory_equal(f->dst, dst_copy, BUF_SIZE);
    assert_int_equal(counter(f, "iommu_faults"), 4);
    free(src_copy);
    free(dst_copy);
}

static void test_dma_bad_cmd(void **state)
{
    struct fixture *f = *state;
    const uint32_t bad[] = {0,
                            TESTDEV_DMA_CMD_COPY | TESTDEV_DMA_CMD_FILL,
                            0x4,
                            0x100000,
                            TESTDEV_DMA_CMD_IRQ,
                            0x80000000u | TESTDEV_DMA_CMD_COPY};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wr(f, TESTDEV_REG_DMA_STATUS, 4, 0);
        dma(f, SRC_BUS, DST_BUS, 16, bad[i]);
        assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_BADCMD);
    }
    dma(f, SRC_BUS, DST_BUS, 0, TESTDEV_DMA_CMD_COPY);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_BADCMD);
    dma(f, SRC_BUS, DST_BUS, TESTDEV_DMA_MAX_LEN + 1, TESTDEV_DMA_CMD_FILL);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_BADCMD);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_DONE, 4), 0);
    assert_int_equal(f->fh.dma_calls, 0);
    assert_int_equal(f->fh.nirq, 0);
    assert_int_equal(counter(f, "dma_bad_cmds"), 8);
}

/* ---- Interrupts ---------------------------------------------------------------------- */

static void test_dma_irq(void **state)
{
    struct fixture *f = *state;
    unsigned granted = 0;

    wr(f, TESTDEV_REG_RAISE, 4, 1); /* not set up: dropped */
    assert_int_equal(f->fh.nirq, 0);
    assert_int_equal(f->dev.ops->irq_configure(f->dev.dev, DEXT_MAX_VECTORS, &granted), 0);
    assert_int_equal(granted, TESTDEV_DEFAULT_VECTORS);
    dma(f, 0, DST_BUS, 64,
        TESTDEV_DMA_CMD_FILL | TESTDEV_DMA_CMD_IRQ | TESTDEV_DMA_CMD_VECTOR(5));
    assert_int_equal(rd(f, TESTDEV_REG_DMA_STATUS, 4), TESTDEV_DMA_OK);
    assert_int_equal(f->fh.nirq, 1);
    assert_int_equal(f->fh.irq[0], 5);
    /* A faulting command completes too, and raises its vector. */
    dma(f, 0, UNMAPPED_BUS, 64,
        TESTDEV_DMA_CMD_FILL | TESTDEV_DMA_CMD_IRQ | TESTDEV_DMA_CMD_VECTOR(63));
    assert_int_equal(f->fh.nirq, 2);
    assert_int_equal(f->fh.irq[1], 63);
    wr(f, TESTDEV_REG_RAISE, 4, 7);
    assert_int_equal(f->fh.nirq, 3);
    assert_int_equal(f->fh.irq[2], 7);
    wr(f, TESTDEV_REG_RAISE, 4, TESTDEV_DEFAULT_VECTORS); /* beyond the table */
    assert_int_equal(f->fh.nirq, 3);
    assert_int_equal(rd(f, TESTDEV_REG_IRQS, 4), 5);
    assert_int_equal(counter(f, "irqs_raised"), 5);
    assert_int_equal(counter(f, "irqs_dropped"), 2);
    f->dev.ops->irq_release(f->dev.dev);
    wr(f, TESTDEV_REG_RAISE, 4, 7);
    assert_int_equal(f->fh.nirq, 3);
}

static void test_msix_in_bar0(void **state)
{
    struct fixture *f = *state;
    const uint64_t e1 = TESTDEV_MSIX_TABLE_OFF + 16;
    unsigned granted = 0;

    assert_int_equal(cfg(f, TESTDEV_CAP_MSIX + 2, 2) & 0x7ff, 3);
    assert_int_equal(rd(f, e1 + 12, 4), 1);
    assert_int_equal(rd(f, TESTDEV_MSIX_TABLE_OFF + 4 * 16 + 12, 4),
                     0); /* past the table */
    assert_int_equal(f->dev.ops->irq_configure(f->dev.dev, 256, &granted), 0);
    assert_int_equal(granted, 4);
    assert_int_equal(rd(f, e1, 4), 0xfee00000u);
    assert_int_equal(rd(f, e1 + 8, 4), 1);
    assert_int_equal(rd(f, e1 + 12, 4), 0);
    wr(f, e1 + 12, 4, 1); /* mask entry 1 */
    wr(f, TESTDEV_REG_RAISE, 4, 1);
    assert_int_equal(f->fh.nirq, 0);
    assert_int_equal(rd(f, TESTDEV_MSIX_PBA_OFF, 8), 2);
    wr(f, e1 + 12, 4, 0); /* unmask: the pending vector is delivered */
    assert_int_equal(f->fh.nirq, 1);
    assert_int_equal(f->fh.irq[0], 1);
    assert_int_equal(rd(f, TESTDEV_MSIX_PBA_OFF, 8), 0);
    assert_int_equal(counter(f, "irqs_pended"), 1);
}

static void test_msi_when_no_msix_enabled(void **state)
{
    struct fixture *f = *state;
    const uint32_t ctrl = TESTDEV_CAP_MSI + SIMPCI_MSI_CTRL;

    /* Software enables MSI with 32 vectors instead of MSI-X. */
    assert_int_equal(f->dev.ops->config_write(f->dev.dev, ctrl, 2, 0x0051), 0);
    wr(f, TESTDEV_REG_RAISE, 4, 31);
    wr(f, TESTDEV_REG_RAISE, 4, 32);
    assert_int_equal(f->fh.nirq, 1);
    assert_int_equal(f->fh.irq[0], 31);
}

/* ---- BAR2 and reset ------------------------------------------------------------------ */

static void test_bar2_fd(void **state)
{
    struct fixture *f = *state;
    int fd = -1;
    uint64_t off = 99, v = 0;
    uint8_t *map;

    assert_int_equal(f->dev.ops->bar_fd(f->dev.dev, 0, &fd, &off), -ENOTSUP);
    assert_int_equal(f->dev.ops->bar_fd(f->dev.dev, 3, &fd, &off), -ENOTSUP);
    assert_int_equal(f->dev.ops->bar_fd(f->dev.dev, 2, &fd, &off), 0);
    assert_true(fd >= 0);
    assert_int_equal(off, 0);
    map = vdx_shm_map(fd, off, TESTDEV_BAR2_DEFAULT_SIZE);
    assert_non_null(map);
    close(fd);

    assert_int_equal(f->dev.ops->mmio_write(f->dev.dev, 2, 0x100, 8, 0x1122334455667788ull),
                     0);
    assert_int_equal(map[0x100], 0x88);
    assert_int_equal(map[0x107], 0x11);
    map[TESTDEV_BAR2_DEFAULT_SIZE - 1] = 0x5a;
    assert_int_equal(
        f->dev.ops->mmio_read(f->dev.dev, 2, TESTDEV_BAR2_DEFAULT_SIZE - 1, 1, &v), 0);
    assert_int_equal(v, 0x5a);
    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 2, 0x102, 2, &v), 0);
    assert_int_equal(v, 0x5566);

    /* Reset zeroes the memory clients see. */
    assert_int_equal(f->dev.ops->reset(f->dev.dev, DEXT_RESET_FUNCTION), 0);
    assert_int_equal(map[0x100], 0);
    assert_int_equal(map[TESTDEV_BAR2_DEFAULT_SIZE - 1], 0);
    map[5] = 1; /* still the same memory after the reset */
    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 2, 5, 1, &v), 0);
    assert_int_equal(v, 1);
    vdx_shm_unmap(map, TESTDEV_BAR2_DEFAULT_SIZE);
}

static void dirty_everything(struct fixture *f)
{
    unsigned granted;

    wr(f, TESTDEV_REG_SCRATCH, 4, 1);
    wr(f, TESTDEV_REG_SCRATCH64, 8, 2);
    wr(f, TESTDEV_REG_DMA_FILL, 4, 3);
    dma(f, SRC_BUS, DST_BUS, 16, TESTDEV_DMA_CMD_COPY);
    dma(f, SRC_BUS, UNMAPPED_BUS, 16, TESTDEV_DMA_CMD_COPY);
    assert_int_equal(f->dev.ops->irq_configure(f->dev.dev, 8, &granted), 0);
    wr(f, TESTDEV_REG_RAISE, 4, 0);
    assert_int_equal(f->dev.ops->mmio_write(f->dev.dev, 2, 0, 4, 0xffffffff), 0);
    assert_int_equal(f->dev.ops->config_write(f->dev.dev, SIMPCI_COMMAND, 2, 6), 0);
}

static void assert_power_on(struct fixture *f)
{
    static const uint32_t zero_regs[] = {
        TESTDEV_REG_SCRATCH,  TESTDEV_REG_DMA_LEN,      TESTDEV_REG_DMA_STATUS,
        TESTDEV_REG_DMA_FILL, TESTDEV_REG_IOMMU_FAULTS, TESTDEV_REG_DMA_DONE,
        TESTDEV_REG_IRQS,
    };
    uint64_t v = 1;

    assert_int_equal(rd(f, TESTDEV_REG_ID, 4), TESTDEV_ID_MAGIC);
    assert_int_equal(rd(f, TESTDEV_REG_VERSION, 4), 1);
    for (size_t i = 0; i < sizeof(zero_regs) / sizeof(zero_regs[0]); i++) {
        assert_int_equal(rd(f, zero_regs[i], 4), 0);
    }
    assert_int_equal(rd(f, TESTDEV_REG_SCRATCH64, 8), 0);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_SRC, 8), 0);
    assert_int_equal(rd(f, TESTDEV_REG_DMA_DST, 8), 0);
    assert_int_equal(rd(f, TESTDEV_MSIX_TABLE_OFF + 12, 4), 1);
    assert_int_equal(cfg(f, TESTDEV_CAP_MSIX + 2, 2), TESTDEV_DEFAULT_VECTORS - 1);
    assert_int_equal(cfg(f, SIMPCI_COMMAND, 2), 0);
    assert_int_equal(f->dev.ops->mmio_read(f->dev.dev, 2, 0, 4, &v), 0);
    assert_int_equal(v, 0);
}

static void test_flr_via_devctl(void **state)
{
    struct fixture *f = *state;
    const uint32_t devctl = TESTDEV_CAP_PCIE + SIMPCI_PCIE_DEVCTL;

    dirty_everything(f);
    assert_int_equal(f->dev.ops->config_write(f->dev.dev, devctl, 2, 0x8000 | 0x2810), 0);
    assert_power_on(f);
    assert_int_equal(counter(f, "resets_flr"), 1);
    assert_int_equal(counter(f, "resets_hot"), 0);
    assert_int_equal(counter(f, "dma_done"), 2); /* totals survive the reset */
}

static void test_reset_op(void **state)
{
    struct fixture *f = *state;

    dirty_everything(f);
    assert_int_equal(f->dev.ops->reset(f->dev.dev, DEXT_RESET_HOT), 0);
    assert_power_on(f);
    dirty_everything(f);
    assert_int_equal(f->dev.ops->reset(f->dev.dev, DEXT_RESET_FUNCTION), 0);
    assert_power_on(f);
    assert_int_equal(f->dev.ops->reset(f->dev.dev, DEXT_RESET_NONE), -ENOTSUP);
    assert_int_equal(f->dev.ops->reset(f->dev.dev, (enum dext_reset_method)42), -ENOTSUP);
    assert_int_equal(counter(f, "resets_flr"), 1);
    assert_int_equal(counter(f, "resets_hot"), 1);
}

static void test_no_host(void **state)
{
    struct vdx_device dev;
    char err[128];
    uint64_t v;

    (void)state;
    assert_int_equal(vdx_device_create("sim:testdev", NULL, &dev, err, sizeof(err)), 0);
    assert_int_equal(dev.slot, 1); /* default 0000:00:01.0 */
    dev.ops->mmio_write(dev.dev, 0, TESTDEV_REG_DMA_LEN, 4, 16);
    dev.ops->mmio_write(dev.dev, 0, TESTDEV_REG_DMA_CMD, 4, TESTDEV_DMA_CMD_FILL);
    dev.ops->mmio_read(dev.dev, 0, TESTDEV_REG_DMA_STATUS, 4, &v);
    assert_int_equal(v, TESTDEV_DMA_FAULT);
    dev.ops->mmio_write(dev.dev, 0, TESTDEV_REG_RAISE, 4, 0);
    dev.ops->destroy(dev.dev);
    dev.ops->destroy(NULL);
}

/* ---- SPEC and BDF parsing --------------------------------------------------------------
 */

static void test_spec_good(void **state)
{
    static const char *const good[] = {
        "sim:testdev",
        "sim:testdev,bdf=0000:00:01.0",
        "sim:testdev,bdf=01:02.3,iommu=dart",
        "sim:testdev,iommu=identity",
        "sim:testdev,vectors=1",
        "sim:testdev,vectors=2048,bar2=1G",
        "sim:testdev,bar2=4K",
        "sim:testdev,bar2=65536,vectors=0x10",
        "sim:testdev,bar2=2m",
        "sim:testdev,msix=bar0",
        "sim:testdev,msix=bar2,bar2=64K",
    };
    struct vdx_dev_host host = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct vdx_device dev = {0};
        char err[256] = "";

        if (vdx_device_create(good[i], &host, &dev, err, sizeof(err)) != 0) {
            fail_msg("'%s' refused: %s", good[i], err);
        }
        assert_non_null(dev.ops);
        dev.ops->destroy(dev.dev);
    }
}

static void test_spec_identity_and_sizes(void **state)
{
    struct vdx_device dev = {0};
    struct vdx_bar_info bi;
    char err[256] = "";
    uint32_t v = 0;

    (void)state;
    assert_int_equal(vdx_device_create("sim:testdev,bdf=abcd:ef:1f.7,vectors=2048,bar2=2M",
                                       NULL, &dev, err, sizeof(err)),
                     0);
    assert_int_equal(dev.domain, 0xabcd);
    assert_int_equal(dev.bus, 0xef);
    assert_int_equal(dev.slot, 0x1f);
    assert_int_equal(dev.fn, 7);
    assert_int_equal(dev.ops->bar_info(dev.dev, 2, &bi), 0);
    assert_int_equal(bi.size, 2u << 20);
    assert_int_equal(dev.ops->config_read(dev.dev, TESTDEV_CAP_MSIX + 2, 2, &v), 0);
    assert_int_equal(v & 0x7ff, 2047);
    dev.ops->destroy(dev.dev);
}

/* msix=bar2: the table and PBA are emulated registers inside BAR2; the rest
 * of BAR2 stays plain shared memory; BAR0 no longer holds them. */
static void test_msix_in_bar2(void **state)
{
    struct vdx_device dev = {0};
    char err[256] = "";
    uint32_t table = 0, pba = 0;
    uint64_t v = 0;
    int fd = -1;
    uint64_t off = 1;
    uint8_t *mem;

    (void)state;
    assert_int_equal(
        vdx_device_create("sim:testdev,msix=bar2", NULL, &dev, err, sizeof(err)), 0);
    assert_int_equal(dev.ops->config_read(dev.dev, TESTDEV_CAP_MSIX + 4, 4, &table), 0);
    assert_int_equal(dev.ops->config_read(dev.dev, TESTDEV_CAP_MSIX + 8, 4, &pba), 0);
    assert_int_equal(table, TESTDEV_MSIX_TABLE_OFF | 2);
    assert_int_equal(pba, TESTDEV_MSIX_PBA_OFF | 2);
    /* Entry 0's vector control: masked at reset, read through BAR2. */
    assert_int_equal(dev.ops->mmio_read(dev.dev, 2, TESTDEV_MSIX_TABLE_OFF + 12, 4, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(
        dev.ops->mmio_write(dev.dev, 2, TESTDEV_MSIX_TABLE_OFF, 4, 0xfee00000u), 0);
    assert_int_equal(dev.ops->mmio_read(dev.dev, 2, TESTDEV_MSIX_TABLE_OFF, 4, &v), 0);
    assert_int_equal(v, 0xfee00000u);
    /* The shared memory around it is plain memory, and not the table. */
    assert_int_equal(dev.ops->bar_fd(dev.dev, 2, &fd, &off), 0);
    assert_int_equal(off, 0);
    mem = vdx_shm_map(fd, 0, TESTDEV_BAR2_DEFAULT_SIZE);
    assert_non_null(mem);
    assert_int_equal(mem[TESTDEV_MSIX_TABLE_OFF], 0);
    mem[0x10000] = 0x5a;
    assert_int_equal(dev.ops->mmio_read(dev.dev, 2, 0x10000, 1, &v), 0);
    assert_int_equal(v, 0x5a);
    vdx_shm_unmap(mem, TESTDEV_BAR2_DEFAULT_SIZE);
    close(fd);
    /* BAR0 no longer decodes the table. */
    assert_int_equal(dev.ops->mmio_read(dev.dev, 0, TESTDEV_MSIX_TABLE_OFF + 12, 4, &v), 0);
    assert_int_equal(v, 0);
    dev.ops->destroy(dev.dev);
}

static void test_spec_bad(void **state)
{
    static const struct {
        const char *spec;
        const char *msg; /* a part the message must contain */
    } bad[] = {
        {"", "KIND"},
        {"sim:nope", "sim:testdev"},
        {"sim:nope", "'sim:nope'"},
        {"testdev", "unknown device kind"},
        {"sim:testdev,foo=1", "'foo'"},
        {"sim:testdev,foo=1", "bdf, iommu, vectors, bar2"},
        {"sim:testdev,vectors=0", "vectors=0"},
        {"sim:testdev,vectors=2049", "1 to 2048"},
        {"sim:testdev,vectors=abc", "vectors=abc"},
        {"sim:testdev,vectors=-1", "vectors=-1"},
        {"sim:testdev,bar2=3K", "bar2=3K"},
        {"sim:testdev,bar2=2K", "power of two"},
        {"sim:testdev,bar2=2G", "bar2=2G"},
        {"sim:testdev,bar2=1T", "bar2=1T"},
        {"sim:testdev,msix=bar1", "msix=bar1"},
        {"sim:testdev,msix=", "key=value"},
        {"sim:testdev,msix=bar2,bar2=32K", "64K or more"},
        {"sim:testdev,", "KIND"},
        {",sim:testdev", "KIND"},
        {"sim:testdev,,bdf=00:01.0", "KIND"},
        {"sim:testdev,bdf", "'bdf'"},
        {"sim:testdev,bdf=", "key=value"},
        {"sim:testdev,=1", "'=1'"},
        {"sim:testdev,bdf=zz:00.0", "bdf=zz:00.0"},
        {"sim:testdev,bdf=00:20.0", "bdf=00:20.0"},
        {"sim:testdev,vectors=4,vectors=8", "twice"},
        {"sim:testdev,BDF=00:01.0", "'BDF'"},
    };
    char longspec[2048];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vdx_device dev = {0};
        char err[256] = "";
        int rc = vdx_device_create(bad[i].spec, NULL, &dev, err, sizeof(err));

        if (rc != -EINVAL || !strstr(err, bad[i].msg)) {
            fail_msg("'%s': rc %d, message '%s' (want '%s')", bad[i].spec, rc, err,
                     bad[i].msg);
        }
    }
    memset(longspec, 'a', sizeof(longspec) - 1);
    longspec[sizeof(longspec) - 1] = '\0';
    assert_int_equal(vdx_device_create(longspec, NULL, &(struct vdx_device){0}, NULL, 0),
                     -EINVAL);
    assert_int_equal(vdx_device_create(NULL, NULL, &(struct vdx_device){0}, NULL, 0),
                     -EINVAL);
}

static void test_parse_bdf(void **state)
{
    static const struct {
        const char *s;
        uint16_t d;
        uint8_t b, sl, f;
    } good[] = {
        {"0000:00:01.0", 0, 0, 1, 0},
        {"00:1f.7", 0, 0, 0x1f, 7},
        {"ffff:ff:1f.7", 0xffff, 0xff, 0x1f, 7},
        {"ABCD:eF:0a.1", 0xabcd, 0xef, 0xa, 1},
        {"1:2:3.4", 1, 2, 3, 4},
        {"0:0.0", 0, 0, 0, 0},
    };
    static const char *const bad[] = {
        "",         "00:20.0",       "00:00.8",       "00:00.0x",
        "00:00.0 ", "0000:00:00",    "00000:00:00.0", "000:100:00.0",
        "g0:00.0",  "00:00:00:00.0", "0000:00.00.0",  "0000:00:00.",
        ":00:00.0", "00:00.-1",      "+0:00.0",       " 00:00.0",
        "00:.0",    "00:000.0",      "00:00.00",      "0000::00.0",
        "00:00,0",  "0x0:00.0",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint16_t d = 0xeeee;
        uint8_t b = 0xee, sl = 0xee, f = 0xee;

        if (vdx_parse_bdf(good[i].s, &d, &b, &sl, &f) != 0) {
            fail_msg("'%s' refused", good[i].s);
        }
        assert_int_equal(d, good[i].d);
        assert_int_equal(b, good[i].b);
        assert_int_equal(sl, good[i].sl);
        assert_int_equal(f, good[i].f);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint16_t d;
        uint8_t b, sl, f;

        if (vdx_parse_bdf(bad[i], &d, &b, &sl, &f) != -EINVAL) {
            fail_msg("'%s' accepted", bad[i]);
        }
    }
    assert_int_equal(
        vdx_parse_bdf(NULL, &(uint16_t){0}, &(uint8_t){0}, &(uint8_t){0}, &(uint8_t){0}),
        -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_width_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_fill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_max_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_bad_cmd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix_in_bar0, setup_4vec, teardown),
        cmocka_unit_test_setup_teardown(test_msi_when_no_msix_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar2_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flr_via_devctl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_op, setup, teardown),
        cmocka_unit_test(test_no_host),
        cmocka_unit_test(test_spec_good),
        cmocka_unit_test(test_spec_identity_and_sizes),
        cmocka_unit_test(test_spec_bad),
        cmocka_unit_test(test_msix_in_bar2),
        cmocka_unit_test(test_parse_bdf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
