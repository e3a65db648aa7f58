/* SPDX-License-Identifier: BSD-3-Clause */
/* Probe checks: BAR info, BAR register synthesis, BAR mapping, MMIO. */
#include <stdio.h>
#include <string.h>

#include "cli/probe.h"
#include "devices/testdev.h"

#define PCI_BAR0        0x10u
#define TD_MAP_TEST_OFF 0x100u /* where the BAR2 map test writes */

static const char *bar_type_name(uint8_t type)
{
    if (type & DEXT_BAR_TYPE_IO) {
        return "I/O";
    }
    switch (type & (DEXT_BAR_TYPE_MEM64 | DEXT_BAR_TYPE_PREFETCH)) {
    case DEXT_BAR_TYPE_M32:
        return "32-bit memory";
    case DEXT_BAR_TYPE_M64:
        return "64-bit memory";
    case DEXT_BAR_TYPE_M32PF:
        return "32-bit prefetchable memory";
    default:
        return "64-bit prefetchable memory";
    }
}

static bool bar_used(const struct probe_bar *b)
{
    return b->st == DEXT_OK && b->size > 0;
}

static bool bar_mappable(const struct probe_bar *b)
{
    return bar_used(b) && !(b->type & DEXT_BAR_TYPE_IO);
}

/* sim:testdev's BAR layout (testdev.h): BAR0 64 KiB M32, BAR2 M64PF. */
static bool testdev_bar_ok(unsigned bar, const struct probe_bar *b)
{
    if (bar == 0) {
        return bar_used(b) && b->size == TESTDEV_BAR0_SIZE && b->type == DEXT_BAR_TYPE_M32;
    }
    if (bar == 2) {
        return bar_used(b) && b->size >= 4096 && b->type == DEXT_BAR_TYPE_M64PF;
    }
    return !bar_used(b);
}

static void report_bar(struct probe *p, unsigned bar)
{
    const struct probe_bar *b = &p->bars[bar];
    bool upper = bar > 0 && bar_used(&p->bars[bar - 1]) &&
                 (p->bars[bar - 1].type & DEXT_BAR_TYPE_MEM64);
    enum probe_result r = PROBE_PASS;
    char size[32];

    if (b->st == DEXT_E_NOT_ATTACHED) {
        r = PROBE_FAIL;
    } else if (p->testdev && !testdev_bar_ok(bar, b)) {
        r = PROBE_FAIL;
    }
    if (bar_used(b)) {
        probe_report(p, DEXT_SEL_GET_BAR_INFO, NULL, r, "BAR%u: memory index %u, %s, %s%s",
                     bar, b->mem_idx, probe_size_str(b->size, size, sizeof(size)),
                     bar_type_name(b->type), r == PROBE_FAIL ? " (not sim:testdev's)" : "");
        return;
    }
    probe_report(p, DEXT_SEL_GET_BAR_INFO, NULL, r, "BAR%u: %s, GetBARInfo: %s", bar,
                 upper ? "upper half of a 64-bit BAR" : "unused",
                 b->st == DEXT_OK ? "size 0" : vdx_status_str(b->st));
}

void probe_check_bar_info(struct probe *p)
{
    uint64_t in[1] = {DEXT_NUM_BARS}, out[3];
    uint32_t nout = 3;

    for (unsigned bar = 0; bar < DEXT_NUM_BARS; bar++) {
        struct probe_bar *b = &p->bars[bar];

        b->st = vdx_get_bar_info(p->conn, bar, &b->mem_idx, &b->size, &b->type);
        report_bar(p, bar);
    }
    probe_expect_status(p, DEXT_SEL_GET_BAR_INFO, "BAR index 6 refused",
                        vdx_call(p->conn, DEXT_SEL_GET_BAR_INFO, in, 1, out, &nout),
                        DEXT_E_BAD_ARGUMENT);
}

/* Seed §2.6: 32-bit reads of 0x10..0x24 return GetBARInfo's type bits only,
 * 0 for unused BARs and upper halves. */
void probe_check_bar_synthesis(struct probe *p)
{
    char seen[64] = "";
    size_t used = 0;
    int bad = -1;

    for (unsigned bar = 0; bar < DEXT_NUM_BARS; bar++) {
        const struct probe_bar *b = &p->bars[bar];
        uint32_t want = bar_used(b) ? b->type : 0, v = 0;
        dext_status st = vdx_config_read(p->conn, PCI_BAR0 + 4 * bar, 4, &v);

        if (st != DEXT_OK || v != want) {
            bad = bad < 0 ? (int)bar : bad;
        }
        used += (size_t)snprintf(seen + used, sizeof(seen) - used, "%s0x%02x",
                                 bar ? " " : "", v);
    }
    if (bad < 0) {
        probe_report(p, DEXT_SEL_CONFIG_READ, NULL, PROBE_PASS,
                     "BAR registers 0x10..0x24 carry GetBARInfo's type bits (%s)", seen);
        return;
    }
    probe_report(p, DEXT_SEL_CONFIG_READ, NULL, PROBE_FAIL,
                 "BAR%d register 0x%02x does not carry GetBARInfo's type 0x%02x (%s)", bad,
                 PCI_BAR0 + 4 * bad, bar_used(&p->bars[bad]) ? p->bars[bad].type : 0, seen);
}

/* ---- Mapping ---------------------------------------------------------------- */

/* sim:testdev BAR2: what an MMIO write puts there is seen through the map,
 * and the other way round. Returns a detail for the report; sets *ok. */
static void map_roundtrip(struct probe *p, unsigned bar, volatile uint8_t *addr, bool *ok,
                          char *detail, size_t len)
{
    const uint64_t a = 0x0123456789abcdefull, b = 0xfedcba9876543210ull;
    volatile uint64_t *word = (volatile uint64_t *)(addr + TD_MAP_TEST_OFF);
    uint32_t idx = p->bars[bar].mem_idx;
    uint64_t via_map, via_mmio = 0;
    dext_status st = vdx_mmio_write(p->conn, idx, TD_MAP_TEST_OFF, 8, a);

    via_map = *word;
    *word = b;
    if (st == DEXT_OK) {
        st = vdx_mmio_read(p->conn, idx, TD_MAP_TEST_OFF, 8, &via_mmio);
    }
    *ok = st == DEXT_OK && via_map == a && via_mmio == b;
    snprintf(detail, len,
             "; MMIO write seen through the map (0x%016llx), map write seen "
             "by MMIO read (0x%016llx)",
             (unsigned long long)via_map, (unsigned long long)via_mmio);
}

static void map_one(struct probe *p, unsigned bar)
{
    char size[32], detail[160] = "";
    uint64_t mapped = 0;
    void *addr = NULL;
    bool wc = false, ok = true;
    dext_status st = vdx_map_bar(p->conn, bar, &addr, &mapped, NULL, &wc);

    if (st == DEXT_E_UNSUPPORTED) {
        bool want_map = p->testdev && bar == 2;

        probe_report(p, PROBE_NO_SEL, "MapBAR", want_map ? PROBE_FAIL : PROBE_PASS,
                     "BAR%u not shareable as memory, MMIO selectors only: %s%s", bar,
                     vdx_status_str(st), want_map ? "; sim:testdev shares BAR2" : "");
        return;
    }
    if (st != DEXT_OK) {
        probe_report(p, PROBE_NO_SEL, "MapBAR", PROBE_FAIL, "BAR%u map failed: %s", bar,
                     vdx_status_str(st));
        return;
    }
    if (p->testdev && bar == 2 && !p->claimed_by_other) {
        map_roundtrip(p, bar, addr, &ok, detail, sizeof(detail));
    }
    ok = ok && mapped >= p->bars[bar].size && !(p->testdev && bar == 0);
    st = vdx_unmap_bar(p->conn, bar, addr);
    probe_report(p, PROBE_NO_SEL, "MapBAR", ok && st == DEXT_OK ? PROBE_PASS : PROBE_FAIL,
                 "BAR%u mapped (%s%s)%s%s", bar, probe_size_str(mapped, size, sizeof(size)),
                 wc ? ", write-combining" : "", detail,
                 st == DEXT_OK ? "" : "; unmap failed");
}

void probe_check_map_bars(struct probe *p)
{
    bool any = false;

    for (unsigned bar = 0; bar < DEXT_NUM_BARS; bar++) {
        if (bar_mappable(&p->bars[bar])) {
            map_one(p, bar);
            any = true;
        }
    }
    if (!any) {
        probe_report(p, PROBE_NO_SEL, "MapBAR", PROBE_SKIP, "the device has no memory BAR");
    }
}

/* ---- MMIO selectors ----------------------------------------------------------- */

static void mmio_testdev(struct probe *p)
{
    const uint64_t pattern = 0xa5a55a5aull, pattern64 = 0x0f1e2d3c4b5a6978ull;
    uint64_t id = 0, v = 0, v64 = 0;
    dext_status st = probe_td_read(p, TESTDEV_REG_ID, 4, &id);

    probe_report(p, DEXT_SEL_MMIO_READ, NULL,
                 st == DEXT_OK && id == TESTDEV_ID_MAGIC ? PROBE_PASS : PROBE_FAIL,
                 "BAR0 ID register reads 0x%08llx%s", (unsigned long long)id,
                 probe_err(st));
    if (probe_skip_if_in_use(p, DEXT_SEL_MMIO_WRITE, NULL, "scratch register round trip")) {
        return;
    }
    st = probe_td_write(p, TESTDEV_REG_SCRATCH, 4, pattern);
    if (st == DEXT_OK) {
        st = probe_td_read(p, TESTDEV_REG_SCRATCH, 4, &v);
    }
    probe_report(p, DEXT_SEL_MMIO_WRITE, NULL,
                 st == DEXT_OK && v == pattern ? PROBE_PASS : PROBE_FAIL,
                 "scratch register round trip, 4 bytes (wrote 0x%08llx, read 0x%08llx)",
                 (unsigned long long)pattern, (unsigned long long)v);
    st = probe_td_write(p, TESTDEV_REG_SCRATCH64, 8, pattern64);
    if (st == DEXT_OK) {
        st = probe_td_read(p, TESTDEV_REG_SCRATCH64, 8, &v64);
    }
    probe_report(p, DEXT_SEL_MMIO_WRITE, NULL,
                 st == DEXT_OK && v64 == pattern64 ? PROBE_PASS : PROBE_FAIL,
                 "scratch register round trip, 8 bytes (read 0x%016llx)",
                 (unsigned long long)v64);
}

static void mmio_refusals(struct probe *p, const struct probe_bar *b)
{
    uint64_t in[3] = {b->mem_idx, 0, 3}, out[1];
    uint32_t nout = 1;

    probe_expect_status(p, DEXT_SEL_MMIO_READ, "width 3 refused",
                        vdx_call(p->conn, DEXT_SEL_MMIO_READ, in, 3, out, &nout),
                        DEXT_E_BAD_ARGUMENT);
    in[1] = b->size;
    in[2] = 4;
    nout = 1;
    probe_expect_status(p, DEXT_SEL_MMIO_READ, "read past the end of the BAR refused",
                        vdx_call(p->conn, DEXT_SEL_MMIO_READ, in, 3, out, &nout),
                        DEXT_E_OVERRUN);
}

void probe_check_mmio(struct probe *p)
{
    const struct probe_bar *b = NULL;
    uint64_t v = 0;
    unsigned bar;
    dext_status st;

    for (bar = 0; bar < DEXT_NUM_BARS && !b; bar++) {
        b = bar_mappable(&p->bars[bar]) ? &p->bars[bar] : NULL;
    }
    if (!b) {
        probe_report(p, DEXT_SEL_MMIO_READ, NULL, PROBE_SKIP,
                     "the device has no memory BAR");
        return;
    }
    if (p->testdev) {
        mmio_testdev(p);
    } else if (!probe_skip_if_in_use(p, DEXT_SEL_MMIO_READ, NULL, "BAR read")) {
        st = vdx_mmio_read(p->conn, b->mem_idx, 0, 4, &v);
        probe_report(p, DEXT_SEL_MMIO_READ, NULL, st == DEXT_OK ? PROBE_PASS : PROBE_FAIL,
                     "BAR%u offset 0 reads 0x%08llx%s", bar - 1, (unsigned long long)v,
                     probe_err(st));
        probe_report(p, DEXT_SEL_MMIO_WRITE, NULL, PROBE_SKIP,
                     "not written: no register of this device is known to be harmless");
    }
    mmio_refusals(p, b);
}
