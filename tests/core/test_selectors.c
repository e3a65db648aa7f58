/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every selector of the contract, its error cases and limits, through the
 * client library against sim:testdev — run four times: local and unix
 * transports, identity and DART IOMMU modes. Behaviour must be identical.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/testdev.h"
#include "fixture.h"

static struct fixture fx;

#define OK(expr) assert_int_equal((expr), DEXT_OK)
#define ST(expr, st) assert_int_equal((expr), (st))

static struct vdx_conn *claimed(void)
{
    struct vdx_conn *c = fixture_connect(&fx);

    OK(vdx_claim(c));
    return c;
}

static uint32_t reg32(struct vdx_conn *c, uint64_t off)
{
    uint64_t v = 0;

    OK(vdx_mmio_read(c, 0, off, 4, &v));
    return (uint32_t)v;
}

static bool wait_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, ms) == 1;
}

/* ---- identity, claims, call rules ---------------------------------------- */

static void get_identity(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    struct vdx_device_desc id;
    struct vdx_device_desc *devs = NULL;
    size_t n = 0;

    (void)state;
    OK(vdx_get_identity(c, &id));
    assert_int_equal(id.bus, 0);
    assert_int_equal(id.slot, 1);
    assert_int_equal(id.fn, 0);
    assert_int_equal(id.vendor, TESTDEV_VENDOR_ID);
    assert_int_equal(id.device, TESTDEV_DEVICE_ID);
    assert_int_equal(id.class_code, TESTDEV_CLASS_CODE);
    OK(vdx_list_devices(fx.ep, &devs, &n));
    assert_int_equal(n, 1);
    assert_false(devs[0].claimed);
    free(devs);
    vdx_disconnect(c);
}

static void connect_errors(void **state)
{
    struct vdx_conn *c = NULL;

    (void)state;
    ST(vdx_connect(fx.ep, "0000:00:02.0", &c), DEXT_E_NOT_FOUND);
    ST(vdx_connect(fx.ep, "00:01", &c), DEXT_E_BAD_ARGUMENT);
    ST(vdx_connect(fx.ep, "zz:01.0", &c), DEXT_E_BAD_ARGUMENT);
    OK(vdx_connect(fx.ep, "00:01.0", &c)); /* domain 0 implied */
    vdx_disconnect(c);
}

static void call_rules(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint64_t in[8] = {0, 4}, out[8];
    uint32_t nout = 8;

    (void)state;
    ST(vdx_call(c, DEXT_SEL_COUNT, NULL, 0, out, &nout), DEXT_E_UNSUPPORTED);
    nout = 8;
    ST(vdx_call(c, 1000, NULL, 0, out, &nout), DEXT_E_UNSUPPORTED);
    nout = 8;
    ST(vdx_call(c, DEXT_SEL_CONFIG_READ, in, 1, out, &nout), DEXT_E_BAD_ARGUMENT);
    nout = 0; /* no room for the output */
    ST(vdx_call(c, DEXT_SEL_CONFIG_READ, in, 2, out, &nout), DEXT_E_BAD_ARGUMENT);
    nout = 3; /* GetIdentity needs 6 */
    ST(vdx_call(c, DEXT_SEL_GET_IDENTITY, NULL, 0, out, &nout), DEXT_E_BAD_ARGUMENT);
    nout = 3;
    ST(vdx_call(c, DEXT_SEL_CHECK_INTERRUPT, NULL, 0, out, &nout), DEXT_E_BAD_ARGUMENT);
    nout = 8;
    OK(vdx_call(c, DEXT_SEL_CONFIG_READ, in, 2, out, &nout));
    assert_int_equal(nout, 1);
    assert_int_equal(out[0], TESTDEV_VENDOR_ID | (TESTDEV_DEVICE_ID << 16));
    vdx_disconnect(c);
}

static void claim_gates_selectors(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint64_t in[3] = {4096, 0, 4096}, out[8];
    uint32_t nout = 8;
    void *mem = NULL;

    (void)state;
    OK(vdx_shm_alloc(4096, &mem));
    ST(vdx_call(c, DEXT_SEL_ALLOCATE_DMA_BUFFER, in, 2, out, &nout), DEXT_E_NOT_OPEN);
    ST(vdx_register_dma(c, 0x10000, mem, 4096, NULL, NULL), DEXT_E_NOT_OPEN);
    ST(vdx_setup_interrupts(c, NULL), DEXT_E_NOT_OPEN);
    ST(vdx_reset_device(c, NULL), DEXT_E_NOT_OPEN);
    OK(vdx_claim(c));
    OK(vdx_claim(c)); /* again: no-op */
    assert_int_equal(fixture_counter(&fx, "claims"), 1);
    OK(vdx_register_dma(c, 0x10000, mem, 4096, NULL, NULL));
    vdx_disconnect(c);
    assert_int_equal(fixture_counter(&fx, "claims"), 0);
    assert_int_equal(fixture_counter(&fx, "dma_regions_live"), 0);
    vdx_shm_free(mem);
}

static void first_claim_enables_memory_and_bus_master(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint32_t cmd = 0;

    (void)state;
    OK(vdx_config_write(c, 0x04, 2, 0));
    OK(vdx_claim(c));
    OK(vdx_config_read(c, 0x04, 2, &cmd));
    assert_int_equal(cmd & 0x6, 0x6);
    vdx_disconnect(c);
}

/* ---- config space ------------------------------------------------------------ */

static void config_read_widths_and_bar_synthesis(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint32_t v = 0;

    (void)state;
    OK(vdx_config_read(c, 0x00, 2, &v));
    assert_int_equal(v, TESTDEV_VENDOR_ID);
    OK(vdx_config_read(c, 0x02, 2, &v));
    assert_int_equal(v, TESTDEV_DEVICE_ID);
    OK(vdx_config_read(c, 0x0b, 1, &v));
    assert_int_equal(v, TESTDEV_CLASS_CODE >> 16);
    ST(vdx_config_read(c, 0x00, 3, &v), DEXT_E_BAD_ARGUMENT);
    ST(vdx_config_read(c, 0x00, 8, &v), DEXT_E_BAD_ARGUMENT);
    ST(vdx_config_read(c, 4094, 4, &v), DEXT_E_BAD_ARGUMENT);
    ST(vdx_config_read(c, 0x10000, 1, &v), DEXT_E_BAD_ARGUMENT);
    OK(vdx_config_read(c, 4095, 1, &v));
    /* 32-bit BAR reads give only the type bits (seed §2.6). */
    OK(vdx_config_read(c, 0x10, 4, &v));
    assert_int_equal(v, DEXT_BAR_TYPE_M32);
    OK(vdx_config_read(c, 0x14, 4, &v));
    assert_int_equal(v, 0); /* unused */
    OK(vdx_config_read(c, 0x18, 4, &v));
    assert_int_equal(v, DEXT_BAR_TYPE_M64PF);
    OK(vdx_config_read(c, 0x1c, 4, &v));
    assert_int_equal(v, 0); /* upper half of BAR2 */
    vdx_disconnect(c);
}

static void config_write_and_block_read(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint8_t block[256];
    uint32_t v = 0, pmcsr;

    (void)state;
    /* PMCSR power state (RW) in the PM capability. */
    OK(vdx_config_read(c, TESTDEV_CAP_PM + 4, 2, &pmcsr));
    OK(vdx_config_write(c, TESTDEV_CAP_PM + 4, 2, (pmcsr & ~3u) | 3u));
    OK(vdx_config_read(c, TESTDEV_CAP_PM + 4, 2, &v));
    assert_int_equal(v & 3, 3);
    OK(vdx_config_write(c, TESTDEV_CAP_PM + 4, 2, pmcsr & ~3u));
    /* Read-only registers stay as they are. */
    OK(vdx_config_write(c, 0x00, 2, 0x1234));
    OK(vdx_config_read(c, 0x00, 2, &v));
    assert_int_equal(v, TESTDEV_VENDOR_ID);
    ST(vdx_config_write(c, 0x04, 1, 0x100), DEXT_E_BAD_ARGUMENT); /* value too wide */
    ST(vdx_config_write(c, 0x04, 3, 0), DEXT_E_BAD_ARGUMENT);
    ST(vdx_config_write(c, 4096, 1, 0), DEXT_E_BAD_ARGUMENT);
    OK(vdx_config_read_block(c, 0, block, 7)); /* one dword then three bytes */
    assert_int_equal(block[0] | block[1] << 8, TESTDEV_VENDOR_ID);
    assert_int_equal(block[2] | block[3] << 8, TESTDEV_DEVICE_ID);
    OK(vdx_config_read_block(c, 0, block, sizeof(block)));
    assert_int_equal(block[0x34] >= 0x40, 1); /* a capability list */
    vdx_disconnect(c);
}

/* The counters that let a VMM-side filter be proven: config writes that
 * reached the device, by header register touched. */
static void config_write_counters_by_register(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint64_t cmd0 = fixture_counter(&fx, "config_writes_command");
    uint64_t sts0 = fixture_counter(&fx, "config_writes_status");
    uint64_t bar0 = fixture_counter(&fx, "config_writes_bar");
    uint32_t v = 0;

    (void)state;
    OK(vdx_config_read(c, 0x04, 4, &v));
    OK(vdx_config_write(c, 0x04, 2, v & 0xffff)); /* COMMAND */
    OK(vdx_config_write(c, 0x06, 2, 0));          /* STATUS */
    OK(vdx_config_write(c, 0x04, 4, v & 0xffff)); /* both */
    OK(vdx_config_write(c, 0x27, 1, 0));          /* BAR5's last byte */
    OK(vdx_config_write(c, 0x28, 4, 0));          /* CardBus CIS: none of them */
    OK(vdx_config_write(c, 0x0c, 4, 0));          /* below BAR0: none */
    ST(vdx_config_write(c, 0x10, 3, 0), DEXT_E_BAD_ARGUMENT); /* refused: not counted */
    assert_int_equal(fixture_counter(&fx, "config_writes_command") - cmd0, 2);
    assert_int_equal(fixture_counter(&fx, "config_writes_status") - sts0, 2);
    assert_int_equal(fixture_counter(&fx, "config_writes_bar") - bar0, 1);
    vdx_disconnect(c);
}

/* ---- BARs and MMIO ----------------------------------------------------------- */

static void bar_info(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint32_t idx = 99;
    uint64_t size = 0;
    uint8_t type = 0xff;

    (void)state;
    OK(vdx_get_bar_info(c, 0, &idx, &size, &type));
    assert_int_equal(idx, 0);
    assert_int_equal(size, TESTDEV_BAR0_SIZE);
    assert_int_equal(type, DEXT_BAR_TYPE_M32);
    OK(vdx_get_bar_info(c, 2, &idx, &size, &type));
    assert_int_equal(idx, 2);
    assert_int_equal(size, TESTDEV_BAR2_DEFAULT_SIZE);
    assert_int_equal(type, DEXT_BAR_TYPE_M64PF);
    ST(vdx_get_bar_info(c, 1, NULL, NULL, NULL), DEXT_E_NOT_FOUND);
    ST(vdx_get_bar_info(c, 3, NULL, NULL, NULL), DEXT_E_NOT_FOUND);
    ST(vdx_get_bar_info(c, 6, NULL, NULL, NULL), DEXT_E_BAD_ARGUMENT);
    vdx_disconnect(c);
}

static void mmio_registers_and_errors(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint64_t v = 0;

    (void)state;
    assert_int_equal(reg32(c, TESTDEV_REG_ID), TESTDEV_ID_MAGIC);
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_SCRATCH, 4, 0xdeadbeef));
    assert_int_equal(reg32(c, TESTDEV_REG_SCRATCH), 0xdeadbeef);
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_SCRATCH64, 8, 0x0123456789abcdefull));
    OK(vdx_mmio_read(c, 0, TESTDEV_REG_SCRATCH64, 8, &v));
    assert_true(v == 0x0123456789abcdefull);
    ST(vdx_mmio_read(c, 0, 0, 3, &v), DEXT_E_BAD_ARGUMENT);
    ST(vdx_mmio_read(c, 0, TESTDEV_BAR0_SIZE, 4, &v), DEXT_E_OVERRUN);
    ST(vdx_mmio_read(c, 0, TESTDEV_BAR0_SIZE - 2, 4, &v), DEXT_E_OVERRUN);
    ST(vdx_mmio_read(c, 0, 2, 4, &v), DEXT_E_NOT_ALIGNED);
    ST(vdx_mmio_read(c, 1, 0, 4, &v), DEXT_E_NOT_FOUND);
    ST(vdx_mmio_read(c, 7, 0, 4, &v), DEXT_E_BAD_ARGUMENT);
    ST(vdx_mmio_write(c, 0, TESTDEV_REG_SCRATCH, 4, 1ull << 32), DEXT_E_BAD_ARGUMENT);
    ST(vdx_mmio_write(c, 0, UINT64_MAX - 1, 2, 0), DEXT_E_OVERRUN);
    assert_true(fixture_counter(&fx, "mmio_calls") >= 4);
    vdx_disconnect(c);
}

static void map_bar_is_zero_copy(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint64_t size = 0, v = 0;
    uint8_t type = 0;
    bool wc = false;
    void *p = NULL;

    (void)state;
    OK(vdx_map_bar(c, 2, &p, &size, &type, &wc));
    assert_int_equal(size, TESTDEV_BAR2_DEFAULT_SIZE);
    assert_int_equal(type, DEXT_BAR_TYPE_M64PF);
    assert_true(wc); /* prefetchable: write-combining intent */
    ((volatile uint32_t *)p)[16] = 0xfeedf00d;
    OK(vdx_mmio_read(c, 2, 64, 4, &v));
    assert_int_equal(v, 0xfeedf00d);
    OK(vdx_mmio_write(c, 2, 128, 8, 0x1122334455667788ull));
    assert_true(((volatile uint64_t *)p)[16] == 0x1122334455667788ull);
    ST(vdx_unmap_bar(c, 2, (uint8_t *)p + 1), DEXT_E_BAD_ARGUMENT);
    OK(vdx_unmap_bar(c, 2, p));
    ST(vdx_map_bar(c, 0, &p, &size, NULL, NULL), DEXT_E_UNSUPPORTED); /* registers */
    ST(vdx_map_bar(c, 1, &p, &size, NULL, NULL), DEXT_E_NOT_FOUND);
    vdx_disconnect(c);
}

/* vdx_bar_fd: the BAR as a descriptor the caller owns, identical over every
 * transport; a mapping of it is the device's BAR2; it outlives the
 * connection. Registers and absent BARs have none. */
static void bar_fd_is_the_bar(void **state)
{
    struct vdx_conn *c = fixture_connect(&fx);
    uint64_t off = 1, size = 0, v = 0;
    volatile uint64_t *p;
    int fd = 0, bad = 0;

    (void)state;
    OK(vdx_bar_fd(c, 2, &fd, &off, &size));
    assert_true(fd >= 0);
    assert_int_equal(off, 0);
    assert_int_equal(size, TESTDEV_BAR2_DEFAULT_SIZE);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
    assert_true(p != MAP_FAILED);
    p[32] = 0xabad1deaull;
    OK(vdx_mmio_read(c, 2, 256, 8, &v));
    assert_int_equal(v, 0xabad1deaull);
    OK(vdx_mmio_write(c, 2, 264, 8, 0x5eedull));
    assert_true(p[33] == 0x5eedull);
    ST(vdx_bar_fd(c, 0, &bad, NULL, NULL), DEXT_E_UNSUPPORTED); /* registers */
    assert_int_equal(bad, -1);
    ST(vdx_bar_fd(c, 1, &bad, NULL, NULL), DEXT_E_NOT_FOUND);
    ST(vdx_bar_fd(c, 3, &bad, NULL, NULL), DEXT_E_NOT_FOUND); /* upper half */
    ST(vdx_bar_fd(c, DEXT_NUM_BARS, &bad, NULL, NULL), DEXT_E_BAD_ARGUMENT);
    ST(vdx_bar_fd(c, 2, NULL, NULL, NULL), DEXT_E_BAD_ARGUMENT);
    ST(vdx_bar_fd(NULL, 2, &bad, NULL, NULL), DEXT_E_BAD_ARGUMENT);
    assert_int_equal(bad, -1);
    OK(vdx_bar_fd(c, 2, &bad, NULL, NULL)); /* outputs other than the fd optional */
    close(bad);
    vdx_disconnect(c);
    assert_true(p[32] == 0xabad1deaull); /* the mapping is the caller's */
    munmap((void *)p, size);
    close(fd);
}

/* ---- DMA buffer and regions ---------------------------------------------------- */

static void dma_buffer(void **state)
{
    struct vdx_conn *c = claimed();
    uint64_t bus = 0, len = 0, msize = 0, in[2], out[6];
    uint32_t nout = 6;
    void *p = NULL;

    (void)state;
    OK(vdx_allocate_dma_buffer(c, 10000, 0, &bus, &len, &p, &msize));
    assert_non_null(p);
    assert_int_equal(len, 10000);
    assert_true(msize >= 10000);
    memset(p, 0x42, 10000);
    in[0] = 0;
    in[1] = 0;
    ST(vdx_call(c, DEXT_SEL_ALLOCATE_DMA_BUFFER, in, 2, out, &nout), DEXT_E_BAD_ARGUMENT);
    in[0] = DEXT_DMA_BUFFER_MAX + 1;
    nout = 6;
    ST(vdx_call(c, DEXT_SEL_ALLOCATE_DMA_BUFFER, in, 2, out, &nout), DEXT_E_BAD_ARGUMENT);
    in[0] = 4096;
    in[1] = 3;
    nout = 6;
    ST(vdx_call(c, DEXT_SEL_ALLOCATE_DMA_BUFFER, in, 2, out, &nout), DEXT_E_BAD_ARGUMENT);
    /* The device reaches the buffer at its bus address. */
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_DST, 8, bus + 100));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_LEN, 4, 50));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_FILL, 4, 0x99));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_CMD, 4, TESTDEV_DMA_CMD_FILL));
    assert_int_equal(reg32(c, TESTDEV_REG_DMA_STATUS), TESTDEV_DMA_OK);
    assert_int_equal(((uint8_t *)p)[99], 0x42);
    assert_int_equal(((uint8_t *)p)[100], 0x99);
    assert_int_equal(((uint8_t *)p)[149], 0x99);
    assert_int_equal(((uint8_t *)p)[150], 0x42);
    ST(vdx_free_dma_buffer(c, (uint8_t *)p + 8), DEXT_E_BAD_ARGUMENT);
    OK(vdx_free_dma_buffer(c, p));
    /* Freed: the device's access now faults. */
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_CMD, 4, TESTDEV_DMA_CMD_FILL));
    assert_int_equal(reg32(c, TESTDEV_REG_DMA_STATUS), TESTDEV_DMA_FAULT);
    vdx_disconnect(c);
}

static void dma_region_register_probe_unregister(void **state)
{
    struct vdx_conn *c = claimed();
    uint64_t bus = 0, len = 0, word = 0;
    uint8_t *mem = NULL;

    (void)state;
    OK(vdx_shm_alloc(3 * 4096, (void **)&mem));
    memset(mem, 0, 3 * 4096);
    memcpy(mem + 4096 + 8, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    OK(vdx_register_dma(c, 0x40000000, mem + 4096, 8192, &bus, &len));
    assert_int_equal(len, 8192);
    if (fx.mode == DEXT_IOMMU_IDENTITY) {
        assert_int_equal(bus, 0x40000000);
    } else {
        assert_int_not_equal(bus, 0x40000000); /* the DART chose it */
    }
    OK(vdx_probe_dma(c, 0x40000000, 8, &word));
    assert_true(word == 0x0807060504030201ull);
    mem[4096 + 8] = 0xff; /* aliasing: the dext sees the client's pages */
    OK(vdx_probe_dma(c, 0x40000000, 8, &word));
    assert_int_equal(word & 0xff, 0xff);
    ST(vdx_probe_dma(c, 0x40000000, 8192, &word), DEXT_E_NOT_FOUND);
    ST(vdx_probe_dma(c, 0x40000000, 8190, &word), DEXT_E_OVERRUN);
    ST(vdx_probe_dma(c, 0x50000000, 0, &word), DEXT_E_NOT_FOUND);
    ST(vdx_register_dma(c, 0x40000000, mem, 4096, NULL, NULL), DEXT_E_STILL_OPEN);
    ST(vdx_register_dma(c, 0x60000000, mem, 0, NULL, NULL), DEXT_E_BAD_ARGUMENT);
    ST(vdx_register_dma(c, 0x60000000, NULL, 4096, NULL, NULL), DEXT_E_BAD_ARGUMENT);
    assert_int_equal(fixture_counter(&fx, "dma_regions_live"), 1);
    assert_int_equal(fixture_counter(&fx, "dma_bytes_live"), 8192);
    OK(vdx_unregister_dma(c, 0x40000000));
    ST(vdx_unregister_dma(c, 0x40000000), DEXT_E_NOT_FOUND);
    assert_int_equal(fixture_counter(&fx, "dma_regions_live"), 0);
    assert_true(fixture_counter(&fx, "dma_regions_peak") >= 1);
    vdx_disconnect(c);
    vdx_shm_free(mem);
}

static void dma_register_memory_rules(void **state)
{
    struct vdx_conn *c = claimed();
    static uint8_t private_mem[4096];
    int fd = memfd_create("unsealed", MFD_CLOEXEC);
    void *shm = NULL;

    (void)state;
    assert_true(fd >= 0 && ftruncate(fd, 8192) == 0);
    /* An fd a peer could truncate under the device is refused. */
    ST(vdx_register_dma_fd(c, 0x1000, fd, 0, 4096, NULL, NULL), DEXT_E_UNSUPPORTED);
    close(fd);
    OK(vdx_shm_alloc(8192, &shm));
    if (fx.unix_transport) {
        /* Private memory cannot reach another process, nor can memory beyond
         * the end of a shared block. */
        ST(vdx_register_dma(c, 0x1000, private_mem, 4096, NULL, NULL), DEXT_E_UNSUPPORTED);
        ST(vdx_register_dma(c, 0x1000, shm, 8193, NULL, NULL), DEXT_E_UNSUPPORTED);
    } else {
        /* In the dext's own process a pointer is enough (the seed's model). */
        OK(vdx_register_dma(c, 0x1000, private_mem, 4096, NULL, NULL));
        OK(vdx_unregister_dma(c, 0x1000));
    }
    vdx_disconnect(c);
    vdx_shm_free(shm);
}

static void dma_identity_overlap_refused(void **state)
{
    struct vdx_conn *c = claimed();
    void *mem = NULL;

    (void)state;
    OK(vdx_shm_alloc(8192, &mem));
    OK(vdx_register_dma(c, 0x100000, mem, 8192, NULL, NULL));
    if (fx.mode == DEXT_IOMMU_IDENTITY) {
        ST(vdx_register_dma(c, 0x101000, mem, 4096, NULL, NULL), DEXT_E_STILL_OPEN);
    } else {
        OK(vdx_register_dma(c, 0x101000, mem, 4096, NULL, NULL));
    }
    vdx_disconnect(c);
    vdx_shm_free(mem);
}

/* The device copies between two registered regions; every byte is checked. */
static void device_dma_copy_verified(void **state)
{
    struct vdx_conn *c = claimed();
    uint64_t src_bus, dst_bus, len, faults0;
    const size_t n = 300000; /* crosses pages and the engine's bounce chunks */
    uint8_t *src = NULL, *dst = NULL;

    (void)state;
    OK(vdx_shm_alloc(n, (void **)&src));
    OK(vdx_shm_alloc(n, (void **)&dst));
    for (size_t i = 0; i < n; i++) {
        src[i] = (uint8_t)(i * 7 + 3);
    }
    memset(dst, 0, n);
    OK(vdx_register_dma(c, 0x80000000, src, n, &src_bus, &len));
    OK(vdx_register_dma(c, 0x90000000, dst, n, &dst_bus, &len));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_SRC, 8, src_bus));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_DST, 8, dst_bus));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_LEN, 4, (uint32_t)n));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_CMD, 4, TESTDEV_DMA_CMD_COPY));
    assert_int_equal(reg32(c, TESTDEV_REG_DMA_STATUS), TESTDEV_DMA_OK);
    assert_memory_equal(src, dst, n);
    /* To an unmapped bus address: a counted fault, nothing written. */
    faults0 = reg32(c, TESTDEV_REG_IOMMU_FAULTS);
    memset(dst, 0, n);
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_DST, 8, 0x7000000000ull));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_CMD, 4, TESTDEV_DMA_CMD_COPY));
    assert_int_equal(reg32(c, TESTDEV_REG_DMA_STATUS), TESTDEV_DMA_FAULT);
    assert_int_equal(reg32(c, TESTDEV_REG_IOMMU_FAULTS), faults0 + 1);
    assert_true(fixture_counter(&fx, "iommu_faults") >= 1);
    /* Running off the end of a region faults too. */
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_DST, 8, dst_bus + 16));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_CMD, 4, TESTDEV_DMA_CMD_COPY));
    assert_int_equal(reg32(c, TESTDEV_REG_DMA_STATUS), TESTDEV_DMA_FAULT);
    /* After unregistering, the same copy faults. */
    OK(vdx_unregister_dma(c, 0x80000000));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_DST, 8, dst_bus));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_CMD, 4, TESTDEV_DMA_CMD_COPY));
    assert_int_equal(reg32(c, TESTDEV_REG_DMA_STATUS), TESTDEV_DMA_FAULT);
    vdx_disconnect(c);
    vdx_shm_free(src);
    vdx_shm_free(dst);
}

/* Limits that need no memory behind them: the local transport only. */
static void dma_region_limits(void **state)
{
    struct vdx_conn *c;
    uint64_t bus = 0, len = 0;
    uint64_t huge = 3ull << 30;
    void *va;

    (void)state;
    if (fx.unix_transport) {
        skip();
    }
    c = claimed();
    va = mmap(NULL, huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(va != MAP_FAILED);
    /* More than 128 chunks of 1.5 GiB. */
    ST(vdx_register_dma(c, 0, va, 129 * DEXT_DMA_CHUNK_SIZE, NULL, NULL), DEXT_E_NO_SPACE);
    if (fx.mode == DEXT_IOMMU_IDENTITY) {
        /* Two chunks: only the first one's bus range is reported. */
        OK(vdx_register_dma(c, 1ull << 40, va, huge, &bus, &len));
        assert_true(bus == 1ull << 40 && len == DEXT_DMA_CHUNK_SIZE);
        OK(vdx_unregister_dma(c, 1ull << 40));
    } else {
        /* Larger than the whole default aperture (1.5 GiB). */
        ST(vdx_register_dma(c, 1ull << 40, va, huge, &bus, &len), DEXT_E_NO_SPACE);
    }
    munmap(va, huge);
    vdx_disconnect(c);
}

static void dma_65536_regions_per_client(void **state)
{
    struct vdx_conn *c;
    static uint8_t page[64];
    uint32_t limit = DEXT_DMA_MAX_REGIONS;

    (void)state;
    if (fx.unix_transport) {
        skip(); /* same core code; 65,536 socket round trips add nothing */
    }
    c = claimed();
    for (uint32_t i = 0; i < limit; i++) {
        dext_status st = vdx_register_dma(c, (uint64_t)i << 12, page, 64, NULL, NULL);

        if (st != DEXT_OK) {
            fail_msg("region %u: %s", i, vdx_status_str(st));
        }
    }
    /* DART mode: its 65,536-mapping cap is hit at the same point. */
    ST(vdx_register_dma(c, 1ull << 40, page, 64, NULL, NULL), DEXT_E_NO_SPACE);
    assert_int_equal(fixture_counter(&fx, "dma_regions_live"), limit);
    vdx_disconnect(c); /* releases them all */
    assert_int_equal(fixture_counter(&fx, "dma_regions_live"), 0);
    assert_int_equal(fixture_counter(&fx, "iommu_mappings"), 0);
}

/* ---- interrupts ------------------------------------------------------------------ */

static void interrupts_end_to_end(void **state)
{
    struct vdx_conn *c = claimed(), *other = fixture_connect(&fx);
    struct vdx_notify *n = NULL;
    struct dext_irq_page *page = NULL;
    uint64_t pending[4], mask[4] = {~0ull, ~0ull, ~0ull, ~0ull};
    uint32_t nvec = 0;

    (void)state;
    ST(vdx_read_pending_irqs(c, pending), DEXT_E_NOT_READY);
    ST(vdx_set_irq_mask(c, mask), DEXT_E_NOT_READY);
    ST(vdx_notify_create(c, &n), DEXT_E_NOT_READY);
    ST(vdx_map_irq_page(c, &page), DEXT_E_NOT_READY);
    OK(vdx_setup_interrupts(c, &nvec));
    assert_int_equal(nvec, TESTDEV_DEFAULT_VECTORS);
    ST(vdx_setup_interrupts(c, &nvec), DEXT_E_STILL_OPEN);
    ST(vdx_setup_interrupts(other, &nvec), DEXT_E_STILL_OPEN); /* one owner */
    ST(vdx_read_pending_irqs(other, pending), DEXT_E_NOT_READY);
    OK(vdx_notify_create(c, &n));
    assert_false(wait_readable(vdx_notify_fd(n), 0));
    /* raise -> pending -> notify fd readable -> drain */
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_RAISE, 4, 5));
    assert_true(wait_readable(vdx_notify_fd(n), 2000));
    assert_true(vdx_notify_ack(n));
    OK(vdx_read_pending_irqs(c, pending));
    assert_true(pending[0] == 1ull << 5 && pending[1] == 0);
    OK(vdx_read_pending_irqs(c, pending));
    assert_int_equal(pending[0], 0);
    /* Mask respected, and the masked vector is latched, then delivered. */
    OK(vdx_notify_rearm(n));
    mask[0] = ~(1ull << 7);
    OK(vdx_set_irq_mask(c, mask));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_RAISE, 4, 7));
    assert_false(wait_readable(vdx_notify_fd(n), 50));
    OK(vdx_read_pending_irqs(c, pending));
    assert_int_equal(pending[0], 0);
    mask[0] = ~0ull;
    OK(vdx_set_irq_mask(c, mask));
    assert_true(wait_readable(vdx_notify_fd(n), 2000));
    vdx_notify_ack(n);
    OK(vdx_read_pending_irqs(c, pending));
    assert_int_equal(pending[0], 1ull << 7);
    /* Through the shared page, with no round trip. */
    OK(vdx_map_irq_page(c, &page));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_RAISE, 4, 63));
    assert_int_equal(__atomic_exchange_n(&page->pending[0], 0, __ATOMIC_SEQ_CST), 1ull << 63);
    /* Re-arm with a bit already pending completes at once. */
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_RAISE, 4, 1));
    vdx_notify_ack(n);
    OK(vdx_notify_rearm(n));
    assert_true(wait_readable(vdx_notify_fd(n), 2000));
    /* A DMA completion raises its chosen vector. */
    OK(vdx_read_pending_irqs(c, pending));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_LEN, 4, 0));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_CMD, 4,
                      TESTDEV_DMA_CMD_FILL | TESTDEV_DMA_CMD_IRQ | TESTDEV_DMA_CMD_VECTOR(9)));
    assert_int_equal(reg32(c, TESTDEV_REG_DMA_STATUS), TESTDEV_DMA_BADCMD);
    vdx_notify_destroy(n);
    vdx_disconnect(other);
    vdx_disconnect(c);
    /* Released with its owner: someone else may set up now. */
    c = claimed();
    OK(vdx_setup_interrupts(c, &nvec));
    assert_true(fixture_counter(&fx, "irqs_latched") >= 1);
    assert_true(fixture_counter(&fx, "irqs_delivered") >= 4);
    vdx_disconnect(c);
}

static void dma_completion_interrupt(void **state)
{
    struct vdx_conn *c = claimed();
    uint64_t pending[4], bus, len;
    void *mem = NULL;

    (void)state;
    OK(vdx_setup_interrupts(c, NULL));
    OK(vdx_shm_alloc(4096, &mem));
    OK(vdx_register_dma(c, 0x200000, mem, 4096, &bus, &len));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_DST, 8, bus));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_LEN, 4, 4096));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_DMA_CMD, 4,
                      TESTDEV_DMA_CMD_FILL | TESTDEV_DMA_CMD_IRQ | TESTDEV_DMA_CMD_VECTOR(9)));
    assert_int_equal(reg32(c, TESTDEV_REG_DMA_STATUS), TESTDEV_DMA_OK);
    OK(vdx_read_pending_irqs(c, pending));
    assert_int_equal(pending[0], 1ull << 9);
    vdx_disconnect(c);
    vdx_shm_free(mem);
}

/* ---- reset and sharing ------------------------------------------------------------ */

static void reset_restores_registers(void **state)
{
    struct vdx_conn *c = claimed();
    uint64_t pending[4];
    uint32_t method = 0;

    (void)state;
    OK(vdx_setup_interrupts(c, NULL));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_SCRATCH, 4, 0x55));
    OK(vdx_reset_device(c, &method));
    assert_int_equal(method, DEXT_RESET_FUNCTION);
    assert_int_equal(reg32(c, TESTDEV_REG_SCRATCH), 0);
    assert_int_equal(fixture_counter(&fx, "resets_function") >= 1, 1);
    /* Interrupts still reach the client after the reset. */
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_RAISE, 4, 2));
    OK(vdx_read_pending_irqs(c, pending));
    assert_int_equal(pending[0], 1ull << 2);
    vdx_disconnect(c);
}

static void shared_claim_survives_first_opener(void **state)
{
    struct vdx_conn *a = claimed(), *b = claimed();
    void *mem = NULL;

    (void)state;
    assert_int_equal(fixture_counter(&fx, "claims"), 2);
    assert_int_equal(fixture_counter(&fx, "clients"), 2);
    vdx_disconnect(a); /* the opener leaves (the seed would close the device) */
    OK(vdx_shm_alloc(4096, &mem));
    OK(vdx_register_dma(b, 0x300000, mem, 4096, NULL, NULL));
    OK(vdx_reset_device(b, NULL));
    assert_int_equal(fixture_counter(&fx, "claims"), 1);
    vdx_disconnect(b);
    assert_int_equal(fixture_counter(&fx, "claims"), 0);
    vdx_shm_free(mem);
}

/* A client process killed mid-use: everything it held is released. */
static void killed_client_releases_everything(void **state)
{
    int ready[2];
    pid_t pid;
    char b;

    (void)state;
    if (!fx.unix_transport) {
        skip(); /* a process boundary needs the unix transport */
    }
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    if (pid == 0) {
        struct vdx_conn *c = NULL;
        struct vdx_notify *n = NULL;
        void *mem = NULL, *buf = NULL;
        uint64_t bus, len;

        if (vdx_connect(fx.ep, "0000:00:01.0", &c) != DEXT_OK || vdx_claim(c) != DEXT_OK ||
            vdx_shm_alloc(65536, &mem) != DEXT_OK ||
            vdx_register_dma(c, 0x10000, mem, 65536, NULL, NULL) != DEXT_OK ||
            vdx_setup_interrupts(c, NULL) != DEXT_OK || vdx_notify_create(c, &n) != DEXT_OK ||
            vdx_allocate_dma_buffer(c, 4096, 0, &bus, &len, &buf, NULL) != DEXT_OK) {
            _exit(1);
        }
        (void)!write(ready[1], "r", 1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &b, 1), 1);
    close(ready[0]);
    assert_int_equal(fixture_counter(&fx, "dma_regions_live"), 1);
    assert_int_equal(fixture_counter(&fx, "interrupt_vectors"), TESTDEV_DEFAULT_VECTORS);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 200 && fixture_counter(&fx, "clients") != 0; i++) {
        usleep(10000);
    }
    assert_int_equal(fixture_counter(&fx, "clients"), 0);
    assert_int_equal(fixture_counter(&fx, "claims"), 0);
    assert_int_equal(fixture_counter(&fx, "dma_regions_live"), 0);
    assert_int_equal(fixture_counter(&fx, "iommu_mappings"), 0);
    assert_int_equal(fixture_counter(&fx, "interrupt_vectors"), 0);
}

static void terminate_detaches(void **state)
{
    struct vdx_conn *c;
    uint32_t v;

    (void)state;
    if (fx.unix_transport) {
        skip(); /* it ends the shared fixture's device; covered locally */
    }
    c = fixture_connect(&fx);
    OK(vdx_terminate(c));
    ST(vdx_config_read(c, 0, 2, &v), DEXT_E_NOT_ATTACHED);
    ST(vdx_claim(c), DEXT_E_NOT_ATTACHED);
    vdx_disconnect(c);
}

/* ---- regressions ---------------------------------------------------------------- */

/* A size near 2^64 wrapped the chunk count to 0 and the region was inserted
 * with no chunks (a heap over-read, then probes of arbitrary memory). */
static void regression_huge_size_does_not_wrap(void **state)
{
    struct vdx_conn *c = claimed();
    static uint8_t page[64];
    uint64_t in[3] = {0x1000, (uintptr_t)page, UINT64_MAX}, out[3];
    uint32_t nout = 3;
    uint64_t word;

    (void)state;
    if (fx.unix_transport) {
        ST(vdx_call(c, DEXT_SEL_REGISTER_DMA_REGION, in, 3, out, &nout), DEXT_E_UNSUPPORTED);
    } else {
        ST(vdx_call(c, DEXT_SEL_REGISTER_DMA_REGION, in, 3, out, &nout), DEXT_E_NO_SPACE);
        in[2] = UINT64_MAX - DEXT_DMA_CHUNK_SIZE + 2;
        nout = 3;
        ST(vdx_call(c, DEXT_SEL_REGISTER_DMA_REGION, in, 3, out, &nout), DEXT_E_NO_SPACE);
    }
    ST(vdx_probe_dma(c, 0x1000, 1ull << 40, &word), DEXT_E_NOT_FOUND);
    vdx_disconnect(c);
}

/* AllocateDMABuffer's alignment applies to the bus address. */
static void regression_dma_buffer_alignment(void **state)
{
    struct vdx_conn *c = claimed();
    uint64_t bus = 0;
    void *p = NULL;

    (void)state;
    for (uint64_t align = 4096; align <= (1u << 20); align <<= 2) {
        OK(vdx_allocate_dma_buffer(c, 12345, align, &bus, NULL, &p, NULL));
        assert_int_equal(bus % align, 0);
    }
    vdx_disconnect(c);
}

/* A vector latched while disabled and then enabled through the shared page
 * is delivered by the next raise, not only by the next call. */
static void regression_latched_delivered_by_next_raise(void **state)
{
    struct vdx_conn *c = claimed();
    uint64_t mask[4] = {~2ull, ~0ull, ~0ull, ~0ull};
    struct dext_irq_page *page = NULL;

    (void)state;
    OK(vdx_setup_interrupts(c, NULL));
    OK(vdx_map_irq_page(c, &page));
    OK(vdx_set_irq_mask(c, mask));
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_RAISE, 4, 1));
    assert_int_equal(__atomic_load_n(&page->pending[0], __ATOMIC_SEQ_CST), 0);
    __atomic_store_n(&page->enabled[0], ~0ull, __ATOMIC_SEQ_CST);
    OK(vdx_mmio_write(c, 0, TESTDEV_REG_RAISE, 4, 0));
    assert_int_equal(__atomic_load_n(&page->pending[0], __ATOMIC_SEQ_CST), 3);
    vdx_disconnect(c);
}

/* A reset cleared COMMAND and left a claimed device without decoding. */
static void regression_reset_keeps_decoding(void **state)
{
    struct vdx_conn *c = claimed();
    uint32_t cmd = 0;

    (void)state;
    OK(vdx_reset_device(c, NULL));
    OK(vdx_config_read(c, 0x04, 2, &cmd));
    assert_int_equal(cmd & 0x6, 0x6);
    vdx_disconnect(c);
}

/* WaitInterrupt with no completion sink used to arm a wait nobody could see. */
static void regression_wait_needs_a_sink(void **state)
{
    struct vdx_conn *c = claimed();
    struct vdx_notify *n = NULL;

    (void)state;
    OK(vdx_setup_interrupts(c, NULL));
    ST(vdx_call(c, DEXT_SEL_WAIT_INTERRUPT, NULL, 0, NULL, NULL), DEXT_E_BAD_ARGUMENT);
    OK(vdx_notify_create(c, &n));
    OK(vdx_notify_rearm(n));
    vdx_notify_destroy(n);
    ST(vdx_call(c, DEXT_SEL_WAIT_INTERRUPT, NULL, 0, NULL, NULL), DEXT_E_BAD_ARGUMENT);
    vdx_disconnect(c);
}

/* In identity mode a client could map over the dext's own aperture and make
 * every other client's AllocateDMABuffer fail. */
static void regression_identity_aperture_reserved(void **state)
{
    struct vdx_conn *a = claimed(), *b = claimed();
    uint64_t bus;
    void *mem = NULL, *p = NULL;

    (void)state;
    OK(vdx_shm_alloc(4096, &mem));
    if (fx.mode == DEXT_IOMMU_IDENTITY) {
        ST(vdx_register_dma(a, 0xf000000000000000ull, mem, 4096, NULL, NULL),
           DEXT_E_STILL_OPEN);
    }
    OK(vdx_allocate_dma_buffer(b, 4096, 0, &bus, NULL, &p, NULL));
    vdx_disconnect(a);
    vdx_disconnect(b);
    vdx_shm_free(mem);
}

/* One client registering page after page of its memory used up the daemon's
 * mmap limit, so every client's requests failed. Now capped per client. */
static void regression_peer_mappings_capped(void **state)
{
    struct vdx_conn *a, *b;
    uint8_t *mem = NULL;
    uint64_t bus;
    void *p = NULL;
    dext_status st = DEXT_OK;
    uint32_t i;

    (void)state;
    if (!fx.unix_transport) {
        skip(); /* the local transport maps nothing */
    }
    a = claimed();
    b = claimed();
    OK(vdx_shm_alloc(2 * 4096, (void **)&mem));
    for (i = 0; i < 20000 && st == DEXT_OK; i++) {
        st = vdx_register_dma(a, (uint64_t)i << 13, mem, 4096, NULL, NULL);
    }
    ST(st, DEXT_E_NO_SPACE);
    assert_int_equal(i - 1, 16384); /* DEXT_PEER_MAPS_PER_CLIENT */
    OK(vdx_allocate_dma_buffer(b, 4096, 0, &bus, NULL, &p, NULL));
    OK(vdx_register_dma(b, 1ull << 40, mem, 4096, NULL, NULL));
    vdx_disconnect(a);
    vdx_disconnect(b);
    vdx_shm_free(mem);
}

/* ---- groups --------------------------------------------------------------------- */

static int start_local_identity(void **s)
{
    (void)s;
    return fixture_start(&fx, false, DEXT_IOMMU_IDENTITY);
}

static int start_local_dart(void **s)
{
    (void)s;
    return fixture_start(&fx, false, DEXT_IOMMU_DART);
}

static int start_unix_identity(void **s)
{
    (void)s;
    return fixture_start(&fx, true, DEXT_IOMMU_IDENTITY);
}

static int start_unix_dart(void **s)
{
    (void)s;
    return fixture_start(&fx, true, DEXT_IOMMU_DART);
}

static int stop(void **s)
{
    (void)s;
    fixture_stop(&fx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_identity),
        cmocka_unit_test(connect_errors),
        cmocka_unit_test(call_rules),
        cmocka_unit_test(claim_gates_selectors),
        cmocka_unit_test(first_claim_enables_memory_and_bus_master),
        cmocka_unit_test(config_read_widths_and_bar_synthesis),
        cmocka_unit_test(config_write_and_block_read),
        cmocka_unit_test(config_write_counters_by_register),
        cmocka_unit_test(bar_info),
        cmocka_unit_test(mmio_registers_and_errors),
        cmocka_unit_test(map_bar_is_zero_copy),
        cmocka_unit_test(bar_fd_is_the_bar),
        cmocka_unit_test(dma_buffer),
        cmocka_unit_test(dma_region_register_probe_unregister),
        cmocka_unit_test(dma_register_memory_rules),
        cmocka_unit_test(dma_identity_overlap_refused),
        cmocka_unit_test(device_dma_copy_verified),
        cmocka_unit_test(dma_region_limits),
        cmocka_unit_test(dma_65536_regions_per_client),
        cmocka_unit_test(interrupts_end_to_end),
        cmocka_unit_test(dma_completion_interrupt),
        cmocka_unit_test(reset_restores_registers),
        cmocka_unit_test(shared_claim_survives_first_opener),
        cmocka_unit_test(killed_client_releases_everything),
        cmocka_unit_test(regression_huge_size_does_not_wrap),
        cmocka_unit_test(regression_dma_buffer_alignment),
        cmocka_unit_test(regression_latched_delivered_by_next_raise),
        cmocka_unit_test(regression_reset_keeps_decoding),
        cmocka_unit_test(regression_wait_needs_a_sink),
        cmocka_unit_test(regression_identity_aperture_reserved),
        cmocka_unit_test(regression_peer_mappings_capped),
        cmocka_unit_test(terminate_detaches),
    };
    int fails = 0;

    fails += cmocka_run_group_tests_name("local-identity", tests, start_local_identity, stop);
    fails += cmocka_run_group_tests_name("local-dart", tests, start_local_dart, stop);
    fails += cmocka_run_group_tests_name("unix-identity", tests, start_unix_identity, stop);
    fails += cmocka_run_group_tests_name("unix-dart", tests, start_unix_dart, stop);
    return fails ? 1 : 0;
}
