/* SPDX-License-Identifier: BSD-3-Clause */
/* Probe checks: identity, config space, the claim gate and Claim. */
#include <stdio.h>
#include <string.h>

#include "cli/probe.h"
#include "devices/testdev.h"

#define PCI_CAP_PTR         0x34u
#define PCI_STATUS          0x06u
#define PCI_STATUS_CAP_LIST 0x10u
#define PCI_COMMAND         0x04u
#define PCI_CMD_MEM_MASTER  0x0006u
#define PCI_INTERRUPT_LINE  0x3cu
#define PCI_CAP_ID_PM       0x01u
#define PCI_PM_PMCSR        0x04u
#define PCI_PM_STATE_MASK   0x0003u
#define PCI_PM_PME_STATUS   0x8000u /* RW1C: never write it as 1 */

/* ConfigRead that reports its own failure; returns false if it failed. */
static bool cfg_read(struct probe *p, uint32_t off, unsigned width, uint32_t *val,
                     const char *what)
{
    dext_status st = vdx_config_read(p->conn, off, width, val);

    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_CONFIG_READ, NULL, PROBE_FAIL,
                     "%s: read of %u byte(s) at 0x%03x failed: %s", what, width, off,
                     vdx_status_str(st));
        return false;
    }
    return true;
}

void probe_check_identity(struct probe *p)
{
    char want[CLI_BDF_LEN], got[CLI_BDF_LEN];
    dext_status st = vdx_get_identity(p->conn, &p->id);

    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_GET_IDENTITY, NULL, PROBE_FAIL, "identity unavailable: %s",
                     vdx_status_str(st));
        return;
    }
    cli_bdf_str(&p->want, want, sizeof(want));
    cli_bdf_str(&p->id, got, sizeof(got));
    p->testdev = p->id.vendor == TESTDEV_VENDOR_ID && p->id.device == TESTDEV_DEVICE_ID;
    /* The seed's identity carries no domain: compare bus, slot, function. */
    if (p->id.bus == p->want.bus && p->id.slot == p->want.slot && p->id.fn == p->want.fn) {
        probe_report(p, DEXT_SEL_GET_IDENTITY, NULL, PROBE_PASS,
                     "BDF matches (%s, %04x:%04x class 0x%06x%s)", got, p->id.vendor,
                     p->id.device, p->id.class_code, p->testdev ? ", sim:testdev" : "");
    } else {
        probe_report(p, DEXT_SEL_GET_IDENTITY, NULL, PROBE_FAIL,
                     "BDF %s does not match the device asked for (%s)", got, want);
    }
}

static void expect_cfg(struct probe *p, uint32_t off, unsigned width, uint32_t want,
                       const char *what)
{
    uint32_t v = 0;

    if (!cfg_read(p, off, width, &v, what)) {
        return;
    }
    if (width == 4 && off == 0x08) {
        v >>= 8; /* class code: the upper 24 bits of the revision dword */
    }
    probe_report(p, DEXT_SEL_CONFIG_READ, NULL, v == want ? PROBE_PASS : PROBE_FAIL,
                 "%s matches GetIdentity (0x%0*x%s)", what, width == 2 ? 4 : 6, v,
                 v == want ? "" : ", differs");
}

static const char *header_kind(uint32_t type)
{
    switch (type & 0x7f) {
    case 0:
        return "type 0, endpoint";
    case 1:
        return "type 1, bridge";
    case 2:
        return "type 2, CardBus bridge";
    default:
        return NULL;
    }
}

void probe_check_config_ids(struct probe *p)
{
    uint32_t v = 0;
    const char *kind;

    expect_cfg(p, 0x00, 2, p->id.vendor, "vendor id");
    expect_cfg(p, 0x02, 2, p->id.device, "device id");
    expect_cfg(p, 0x08, 4, p->id.class_code, "class code");
    if (!cfg_read(p, 0x0e, 1, &v, "header type")) {
        return;
    }
    kind = header_kind(v);
    probe_report(p, DEXT_SEL_CONFIG_READ, NULL, kind ? PROBE_PASS : PROBE_FAIL,
                 "header type 0x%02x (%s)", v, kind ? kind : "not a valid layout");
}

void probe_check_config_widths(struct probe *p)
{
    uint32_t d = 0, w[2] = {0, 0}, b[4] = {0, 0, 0, 0};
    uint64_t in[3] = {0, 3, 0}, out[1];
    uint32_t nout = 1;
    bool ok = cfg_read(p, 0, 4, &d, "widths") && cfg_read(p, 0, 2, &w[0], "widths") &&
              cfg_read(p, 2, 2, &w[1], "widths");

    for (unsigned i = 0; ok && i < 4; i++) {
        ok = cfg_read(p, i, 1, &b[i], "widths");
    }
    if (ok) {
        ok = w[0] == (d & 0xffff) && w[1] == d >> 16 &&
             (b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24) == d;
        probe_report(p, DEXT_SEL_CONFIG_READ, NULL, ok ? PROBE_PASS : PROBE_FAIL,
                     "widths 1, 2 and 4 agree at 0x000 (0x%08x; 0x%04x 0x%04x; "
                     "0x%02x 0x%02x 0x%02x 0x%02x)",
                     d, w[0], w[1], b[0], b[1], b[2], b[3]);
    }
    /* Raw calls, so the dext (not the library) is what refuses the width. */
    probe_expect_status(p, DEXT_SEL_CONFIG_READ, "width 3 refused",
                        vdx_call(p->conn, DEXT_SEL_CONFIG_READ, in, 2, out, &nout),
                        DEXT_E_BAD_ARGUMENT);
    nout = 0;
    probe_expect_status(p, DEXT_SEL_CONFIG_WRITE, "width 3 refused",
                        vdx_call(p->conn, DEXT_SEL_CONFIG_WRITE, in, 3, out, &nout),
                        DEXT_E_BAD_ARGUMENT);
}

/* Interrupt Line is a scratch register for software on every type 0/1
 * function (PCI 3.0 §6.2.4): flip it, read back, restore. */
static void config_write_intline(struct probe *p)
{
    uint32_t old = 0, flipped, seen = 0;
    dext_status st;

    if (!cfg_read(p, PCI_INTERRUPT_LINE, 1, &old, "Interrupt Line")) {
        return;
    }
    flipped = (old ^ 0xa5u) & 0xffu;
    st = vdx_config_write(p->conn, PCI_INTERRUPT_LINE, 1, flipped);
    if (st == DEXT_OK) {
        st = vdx_config_read(p->conn, PCI_INTERRUPT_LINE, 1, &seen);
    }
    vdx_config_write(p->conn, PCI_INTERRUPT_LINE, 1, old);
    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_CONFIG_WRITE, NULL, PROBE_FAIL,
                     "Interrupt Line round trip failed: %s", vdx_status_str(st));
        return;
    }
    probe_report(
        p, DEXT_SEL_CONFIG_WRITE, NULL, seen == flipped ? PROBE_PASS : PROBE_FAIL,
        "Interrupt Line 0x3c round trip (wrote 0x%02x, read 0x%02x, restored 0x%02x)",
        flipped, seen, old);
}

/* Offset of capability `id` in the standard list, or 0. Bounded walk. */
static uint32_t find_cap(struct probe *p, uint8_t id)
{
    uint32_t status = 0, ptr = 0, hdr = 0;

    if (vdx_config_read(p->conn, PCI_STATUS, 2, &status) != DEXT_OK ||
        !(status & PCI_STATUS_CAP_LIST) ||
        vdx_config_read(p->conn, PCI_CAP_PTR, 1, &ptr) != DEXT_OK) {
        return 0;
    }
    for (unsigned hops = 0; hops < 48 && ptr >= 0x40 && ptr < 0x100; hops++) {
        ptr &= ~3u;
        if (vdx_config_read(p->conn, ptr, 2, &hdr) != DEXT_OK) {
            return 0;
        }
        if ((hdr & 0xff) == id) {
            return ptr;
        }
        ptr = hdr >> 8;
    }
    return 0;
}

/* PMCSR: write the current power state back (PME_Status, RW1C, written 0)
 * and check the device stays in it. Harmless: no state change. */
static void config_write_pmcsr(struct probe *p)
{
    uint32_t pm = find_cap(p, PCI_CAP_ID_PM), old = 0, seen = 0;
    dext_status st;

    if (!pm) {
        probe_report(p, DEXT_SEL_CONFIG_WRITE, NULL, PROBE_SKIP,
                     "PMCSR round trip: no PM capability in the list");
        return;
    }
    if (!cfg_read(p, pm + PCI_PM_PMCSR, 2, &old, "PMCSR")) {
        return;
    }
    st = vdx_config_write(p->conn, pm + PCI_PM_PMCSR, 2, old & ~PCI_PM_PME_STATUS);
    if (st == DEXT_OK) {
        st = vdx_config_read(p->conn, pm + PCI_PM_PMCSR, 2, &seen);
    }
    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_CONFIG_WRITE, NULL, PROBE_FAIL,
                     "PMCSR (PM capability at 0x%02x) round trip failed: %s", pm,
                     vdx_status_str(st));
        return;
    }
    probe_report(p, DEXT_SEL_CONFIG_WRITE, NULL,
                 (seen & PCI_PM_STATE_MASK) == (old & PCI_PM_STATE_MASK) ? PROBE_PASS
                                                                         : PROBE_FAIL,
                 "PMCSR (PM capability at 0x%02x) round trip keeps power state D%u "
                 "(0x%04x)",
                 pm, old & PCI_PM_STATE_MASK, seen);
}

void probe_check_config_write(struct probe *p)
{
    if (probe_skip_if_in_use(p, DEXT_SEL_CONFIG_WRITE, NULL, "config write round trip")) {
        return;
    }
    config_write_intline(p);
    config_write_pmcsr(p);
}

/* ---- The claim gate --------------------------------------------------------- */

static void expect_not_open(struct probe *p, uint32_t sel, const uint64_t *in, uint32_t nin,
                            uint32_t room)
{
    uint64_t out[DEXT_MAX_SCALARS];
    uint32_t nout = room;

    probe_expect_status(p, (int)sel, "refused before Claim",
                        vdx_call(p->conn, sel, in, nin, out, &nout), DEXT_E_NOT_OPEN);
}

static void expect_register_not_open(struct probe *p)
{
    void *mem = NULL;
    dext_status st = vdx_shm_alloc(16384, &mem);

    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_REGISTER_DMA_REGION, NULL, PROBE_FAIL,
                     "cannot allocate shareable memory for the test: %s",
                     vdx_status_str(st));
        return;
    }
    st = vdx_register_dma(p->conn, 0x100000, mem, 16384, NULL, NULL);
    if (st == DEXT_OK) {
        vdx_unregister_dma(p->conn, 0x100000);
    }
    probe_expect_status(p, DEXT_SEL_REGISTER_DMA_REGION, "refused before Claim", st,
                        DEXT_E_NOT_OPEN);
    vdx_shm_free(mem);
}

void probe_check_not_open(struct probe *p)
{
    static const int sels[] = {DEXT_SEL_ALLOCATE_DMA_BUFFER, DEXT_SEL_REGISTER_DMA_REGION,
                               DEXT_SEL_SETUP_INTERRUPTS, DEXT_SEL_RESET_DEVICE};
    const uint64_t buf_in[2] = {4096, 0};

    if (p->claimed_by_other) {
        for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
            probe_report(p, sels[i], NULL, PROBE_SKIP,
                         "claim gate not observable: another client holds a claim");
        }
        return;
    }
    expect_not_open(p, DEXT_SEL_ALLOCATE_DMA_BUFFER, buf_in, 2,
                    DEXT_OUT_ALLOCATE_DMA_BUFFER);
    expect_register_not_open(p);
    expect_not_open(p, DEXT_SEL_SETUP_INTERRUPTS, NULL, 0, DEXT_OUT_SETUP_INTERRUPTS);
    expect_not_open(p, DEXT_SEL_RESET_DEVICE, NULL, 0, 1);
}

void probe_check_claim(struct probe *p)
{
    uint32_t cmd = 0;
    dext_status st = vdx_claim(p->conn);

    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_CLAIM, NULL, PROBE_FAIL, "claim refused: %s",
                     vdx_status_str(st));
        return;
    }
    p->claimed = true;
    if (!cfg_read(p, PCI_COMMAND, 2, &cmd, "command register after Claim")) {
        return;
    }
    /* Seed §2.4: the first claim enables memory space and bus mastering. */
    probe_report(p, DEXT_SEL_CLAIM, NULL,
                 (cmd & PCI_CMD_MEM_MASTER) == PCI_CMD_MEM_MASTER ? PROBE_PASS : PROBE_FAIL,
                 "claimed; command register 0x%04x has memory space and bus master %s", cmd,
                 (cmd & PCI_CMD_MEM_MASTER) == PCI_CMD_MEM_MASTER ? "on" : "OFF");
    st = vdx_claim(p->conn);
    probe_expect_status(p, DEXT_SEL_CLAIM, "second Claim on the same client is a no-op", st,
                        DEXT_OK);
}
