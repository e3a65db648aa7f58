/* SPDX-License-Identifier: BSD-3-Clause */
/* Probe checks: DMA buffer, DMA regions, and a device DMA copy (sim:testdev). */
#include <stdio.h>
#include <string.h>

#include "cli/probe.h"
#include "common/log.h"
#include "devices/testdev.h"

#define DMA_TEST_SIZE   (64u * 1024u)
#define DMA_KEY_PROBE   0x40000000ull /* keys used by the probe; any free value */
#define DMA_KEY_SRC     0x41000000ull
#define DMA_KEY_DST     0x42000000ull
#define DMA_KEY_UNKNOWN 0x7ff000000ull
#define DMA_WAIT_NS     (2ull * 1000000000ull)
#define PROBE_WORD_OFF  0x1008u

/* Fill with a position-dependent pattern (xorshift over the offset). */
static void fill_pattern(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed | 1;

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

/* First offset where a and b differ, or -1. */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (a[i] != b[i]) {
            return (long)i;
        }
    }
    return -1;
}

/* Run one sim:testdev DMA command and wait for DMA_DONE to move on.
 * Returns the final DMA_STATUS, or a value > TESTDEV_DMA_BADCMD on error. */
static uint64_t td_dma_run(struct probe *p, uint64_t src, uint64_t dst, uint32_t len,
                           uint32_t cmd)
{
    uint64_t done0 = 0, done = 0, status = ~0ull;
    uint64_t deadline = vdx_now_ns() + DMA_WAIT_NS;

    if (probe_td_read(p, TESTDEV_REG_DMA_DONE, 4, &done0) != DEXT_OK ||
        probe_td_write(p, TESTDEV_REG_DMA_SRC, 8, src) != DEXT_OK ||
        probe_td_write(p, TESTDEV_REG_DMA_DST, 8, dst) != DEXT_OK ||
        probe_td_write(p, TESTDEV_REG_DMA_LEN, 4, len) != DEXT_OK ||
        probe_td_write(p, TESTDEV_REG_DMA_CMD, 4, cmd) != DEXT_OK) {
        return ~0ull;
    }
    do {
        if (probe_td_read(p, TESTDEV_REG_DMA_DONE, 4, &done) != DEXT_OK) {
            return ~0ull;
        }
    } while (done == done0 && vdx_now_ns() < deadline);
    if (done == done0 || probe_td_read(p, TESTDEV_REG_DMA_STATUS, 4, &status) != DEXT_OK) {
        return ~0ull;
    }
    return status;
}

static const char *td_dma_status_str(uint64_t st)
{
    switch (st) {
    case TESTDEV_DMA_OK:
        return "ok";
    case TESTDEV_DMA_FAULT:
        return "IOMMU fault";
    case TESTDEV_DMA_BADCMD:
        return "bad command";
    case TESTDEV_DMA_IDLE:
        return "idle";
    default:
        return "no completion within 2 s";
    }
}

/* ---- Selectors 3 and 4 --------------------------------------------------------- */

/* sim:testdev: the device fills the buffer through the IOMMU at its bus address. */
static void dma_buffer_fill(struct probe *p, volatile uint8_t *buf, uint64_t bus)
{
    uint64_t st;
    size_t bad = DMA_TEST_SIZE;

    if (probe_td_write(p, TESTDEV_REG_DMA_FILL, 4, 0x5c) != DEXT_OK) {
        st = ~0ull;
    } else {
        st = td_dma_run(p, 0, bus, DMA_TEST_SIZE, TESTDEV_DMA_CMD_FILL);
    }
    for (size_t i = 0; st == TESTDEV_DMA_OK && i < DMA_TEST_SIZE && bad == DMA_TEST_SIZE;
         i++) {
        bad = buf[i] == 0x5c ? bad : i;
    }
    probe_report(p, DEXT_SEL_ALLOCATE_DMA_BUFFER, NULL,
                 st == TESTDEV_DMA_OK && bad == DMA_TEST_SIZE ? PROBE_PASS : PROBE_FAIL,
                 "device DMA fills the buffer at its bus address (%s%s)",
                 td_dma_status_str(st), bad == DMA_TEST_SIZE ? "" : ", byte differs");
}

void probe_check_dma_buffer(struct probe *p)
{
    uint64_t bus = 0, bus_len = 0, mapped = 0;
    void *addr = NULL;
    char size[32];
    dext_status st;

    if (probe_skip_unless_claimed(p, DEXT_SEL_ALLOCATE_DMA_BUFFER, "DMA buffer")) {
        return;
    }
    st = vdx_allocate_dma_buffer(p->conn, DMA_TEST_SIZE, 0, &bus, &bus_len, &addr, &mapped);
    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_ALLOCATE_DMA_BUFFER, NULL, PROBE_FAIL,
                     "%s buffer refused: %s", probe_size_str(DMA_TEST_SIZE, size, 32),
                     vdx_status_str(st));
        return;
    }
    memset(addr, 0xa7, DMA_TEST_SIZE);
    probe_report(
        p, DEXT_SEL_ALLOCATE_DMA_BUFFER, NULL,
        bus_len >= DMA_TEST_SIZE && mapped >= DMA_TEST_SIZE ? PROBE_PASS : PROBE_FAIL,
        "%s buffer at bus 0x%llx (length 0x%llx), mapped and writable (%llu bytes)",
        probe_size_str(DMA_TEST_SIZE, size, sizeof(size)), (unsigned long long)bus,
        (unsigned long long)bus_len, (unsigned long long)mapped);
    if (!probe_skip_unless_testdev(p, DEXT_SEL_ALLOCATE_DMA_BUFFER, NULL,
                                   "device DMA into the buffer")) {
        dma_buffer_fill(p, addr, bus);
    }
    probe_expect_status(p, DEXT_SEL_FREE_DMA_BUFFER, "buffer unmapped and freed",
                        vdx_free_dma_buffer(p->conn, addr), DEXT_OK);
}

/* ---- Selectors 5, 6 and 7 ------------------------------------------------------- */

static void region_probe_word(struct probe *p, uint8_t *mem)
{
    const uint64_t word = 0x5eedc0de0badf00dull;
    uint64_t seen = 0;
    dext_status st;

    memcpy(mem + PROBE_WORD_OFF, &word, sizeof(word));
    st = vdx_probe_dma(p->conn, DMA_KEY_PROBE, PROBE_WORD_OFF, &seen);
    probe_report(p, DEXT_SEL_PROBE_DMA_REGION, NULL,
                 st == DEXT_OK && seen == word ? PROBE_PASS : PROBE_FAIL,
                 "dext reads the word the client wrote at +0x%x (0x%016llx%s)",
                 PROBE_WORD_OFF, (unsigned long long)seen, probe_err(st));
    probe_expect_status(p, DEXT_SEL_PROBE_DMA_REGION, "read past the region's end refused",
                        vdx_probe_dma(p->conn, DMA_KEY_PROBE, DMA_TEST_SIZE - 4, &seen),
                        DEXT_E_OVERRUN);
}

static void region_lifecycle(struct probe *p, uint8_t *mem)
{
    uint64_t bus = 0, len = 0;
    dext_status st =
        vdx_register_dma(p->conn, DMA_KEY_PROBE, mem, DMA_TEST_SIZE, &bus, &len);

    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_REGISTER_DMA_REGION, NULL, PROBE_FAIL,
                     "64 KiB region refused: %s", vdx_status_str(st));
        return;
    }
    probe_report(p, DEXT_SEL_REGISTER_DMA_REGION, NULL,
                 len >= DMA_TEST_SIZE ? PROBE_PASS : PROBE_FAIL,
                 "64 KiB of shared memory registered under key 0x%llx (bus 0x%llx, "
                 "length 0x%llx)",
                 (unsigned long long)DMA_KEY_PROBE, (unsigned long long)bus,
                 (unsigned long long)len);
    region_probe_word(p, mem);
    st = vdx_register_dma(p->conn, DMA_KEY_PROBE, mem, DMA_TEST_SIZE, NULL, NULL);
    probe_expect_status(p, DEXT_SEL_REGISTER_DMA_REGION, "duplicate key refused", st,
                        DEXT_E_STILL_OPEN);
    probe_expect_status(p, DEXT_SEL_UNREGISTER_DMA_REGION, "region unregistered",
                        vdx_unregister_dma(p->conn, DMA_KEY_PROBE), DEXT_OK);
    probe_expect_status(p, DEXT_SEL_UNREGISTER_DMA_REGION, "unknown key refused",
                        vdx_unregister_dma(p->conn, DMA_KEY_UNKNOWN), DEXT_E_NOT_FOUND);
}

void probe_check_dma_regions(struct probe *p)
{
    void *mem = NULL;
    dext_status st;

    if (probe_skip_unless_claimed(p, DEXT_SEL_REGISTER_DMA_REGION, "DMA regions")) {
        return;
    }
    st = vdx_shm_alloc(DMA_TEST_SIZE, &mem);
    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_REGISTER_DMA_REGION, NULL, PROBE_FAIL,
                     "cannot allocate shareable memory for the test: %s",
                     vdx_status_str(st));
        return;
    }
    region_lifecycle(p, mem);
    vdx_shm_free(mem);
}

/* ---- Device DMA between two registered regions (sim:testdev) ------------------- */

struct dma_pair {
    uint8_t *src, *dst;
    uint64_t src_bus, dst_bus;
};

static dext_status pair_register(struct probe *p, struct dma_pair *d)
{
    dext_status st =
        vdx_register_dma(p->conn, DMA_KEY_SRC, d->src, DMA_TEST_SIZE, &d->src_bus, NULL);

    if (st != DEXT_OK) {
        return st;
    }
    st = vdx_register_dma(p->conn, DMA_KEY_DST, d->dst, DMA_TEST_SIZE, &d->dst_bus, NULL);
    if (st != DEXT_OK) {
        vdx_unregister_dma(p->conn, DMA_KEY_SRC);
    }
    return st;
}

static void dma_copy_run(struct probe *p, struct dma_pair *d)
{
    uint64_t st;
    long diff;

    fill_pattern(d->src, DMA_TEST_SIZE, vdx_now_ns());
    memset(d->dst, 0, DMA_TEST_SIZE);
    st = td_dma_run(p, d->src_bus, d->dst_bus, DMA_TEST_SIZE, TESTDEV_DMA_CMD_COPY);
    diff = st == TESTDEV_DMA_OK ? first_diff(d->src, d->dst, DMA_TEST_SIZE) : -1;
    if (st != TESTDEV_DMA_OK || diff >= 0) {
        probe_report(p, DEXT_SEL_REGISTER_DMA_REGION, NULL, PROBE_FAIL,
                     "device copy bus 0x%llx -> 0x%llx: %s%s",
                     (unsigned long long)d->src_bus, (unsigned long long)d->dst_bus,
                     td_dma_status_str(st), diff >= 0 ? ", bytes differ" : "");
        return;
    }
    probe_report(p, DEXT_SEL_REGISTER_DMA_REGION, NULL, PROBE_PASS,
                 "device copied %u bytes between two registered regions, byte for byte "
                 "(bus 0x%llx -> 0x%llx)",
                 DMA_TEST_SIZE, (unsigned long long)d->src_bus,
                 (unsigned long long)d->dst_bus);
}

/* After unregistering, the same copy must fault in the IOMMU. */
static void dma_copy_fault(struct probe *p, struct dma_pair *d)
{
    uint64_t faults0 = 0, faults = 0;
    uint64_t st;

    probe_td_read(p, TESTDEV_REG_IOMMU_FAULTS, 4, &faults0);
    st = td_dma_run(p, d->src_bus, d->dst_bus, DMA_TEST_SIZE, TESTDEV_DMA_CMD_COPY);
    probe_td_read(p, TESTDEV_REG_IOMMU_FAULTS, 4, &faults);
    probe_report(p, DEXT_SEL_UNREGISTER_DMA_REGION, NULL,
                 st == TESTDEV_DMA_FAULT && faults > faults0 ? PROBE_PASS : PROBE_FAIL,
                 "device access to unregistered memory refused by the IOMMU (%s, %llu "
                 "fault(s) counted)",
                 td_dma_status_str(st), (unsigned long long)(faults - faults0));
}

void probe_check_dma_copy(struct probe *p)
{
    struct dma_pair d = {0};
    void *src = NULL, *dst = NULL;
    dext_status st;

    if (probe_skip_unless_claimed(p, DEXT_SEL_REGISTER_DMA_REGION, "device DMA copy") ||
        probe_skip_unless_testdev(p, DEXT_SEL_REGISTER_DMA_REGION, NULL,
                                  "device DMA copy")) {
        return;
    }
    st = vdx_shm_alloc(DMA_TEST_SIZE, &src);
    if (st == DEXT_OK) {
        st = vdx_shm_alloc(DMA_TEST_SIZE, &dst);
    }
    d.src = src;
    d.dst = dst;
    if (st == DEXT_OK) {
        st = pair_register(p, &d);
    }
    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_REGISTER_DMA_REGION, NULL, PROBE_FAIL,
                     "cannot set up two 64 KiB regions for the copy: %s",
                     vdx_status_str(st));
    } else {
        dma_copy_run(p, &d);
        vdx_unregister_dma(p->conn, DMA_KEY_SRC);
        vdx_unregister_dma(p->conn, DMA_KEY_DST);
        dma_copy_fault(p, &d);
    }
    vdx_shm_free(dst);
    vdx_shm_free(src);
}
