/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * simpci: simulated PCI Express function core (see simpci.h).
 *
 * Config space is four byte arrays: the live value, the RW mask, the RW1C
 * mask and the power-on image. A write merges each byte through the masks
 * (bhyve/QEMU style), then runs the hooks registered for the touched range.
 * Interrupt state is bitmaps (MSI-X PBA, MSI pending bits in config space);
 * update_irqs() is the one place that derives what gets delivered.
 */
#include "devices/simpci.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CAPS       16u
#define MAX_HOOKS      16u
#define NUM_BARS       6u
#define CAP_AREA_START 0x40u
#define CAP_AREA_END   0x100u

/* What an OS programs into message address / data (x86 LAPIC window). */
#define MSG_ADDR 0xfee00000u

struct cfg_hook {
    uint16_t off;
    uint16_t len;
    simpci_cfg_hook_fn fn;
    void *opaque;
};

struct cap {
    uint8_t id;
    uint8_t off;
    uint8_t len;
};

struct bar {
    uint64_t size; /* 0: unused */
    uint8_t type;  /* DEXT_BAR_TYPE_* */
    bool upper;    /* upper register of a 64-bit BAR */
};

struct msix {
    struct simpci_msix_layout l;
    uint8_t *table; /* nvec * 16 bytes, little-endian entries */
    uint64_t *pba;  /* pba_words words; bit v = vector v pending */
    unsigned pba_words;
};

struct simpci {
    uint8_t cfg[SIMPCI_CFG_SIZE];   /* live values */
    uint8_t wmask[SIMPCI_CFG_SIZE]; /* RW bits */
    uint8_t w1c[SIMPCI_CFG_SIZE];   /* RW1C bits */
    uint8_t reset[SIMPCI_CFG_SIZE]; /* power-on values */

    struct vdx_dev_host host; /* zeroed when none was given */
    simpci_flr_fn flr;
    void *flr_opaque;
    bool flr_requested; /* set by the DevCtl hook, acted on after the write */

    struct bar bars[NUM_BARS];
    struct cap caps[MAX_CAPS];
    unsigned ncaps;
    struct cfg_hook hooks[MAX_HOOKS];
    unsigned nhooks;

    uint8_t pm_cap, msi_cap, pcie_cap, msix_cap; /* 0: absent */
    unsigned msi_mmc_log2;
    bool pcie_flr;
    struct msix msix; /* valid when msix_cap != 0 */

    struct simpci_stats stats;
};

/* ---- Little-endian byte helpers -------------------------------------------- */

static uint64_t get_le(const uint8_t *buf, unsigned width)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < width; i++) {
        v |= (uint64_t)buf[i] << (8 * i);
    }
    return v;
}

static void put_le(uint8_t *buf, unsigned width, uint64_t v)
{
    for (unsigned i = 0; i < width; i++) {
        buf[i] = (uint8_t)(v >> (8 * i));
    }
}

static bool cfg_access_ok(uint32_t off, unsigned width)
{
    return (width == 1 || width == 2 || width == 4) && off < SIMPCI_CFG_SIZE &&
           width <= SIMPCI_CFG_SIZE - off;
}

/* If byte `at` is inside access (off, width), store its value from v. */
static bool access_byte(uint32_t off, unsigned width, uint32_t v, uint32_t at, uint8_t *b)
{
    if (at < off || at - off >= width) {
        return false;
    }
    *b = (uint8_t)(v >> (8 * (at - off)));
    return true;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static uint32_t cfg16(const struct simpci *p, uint32_t off)
{
    return (uint32_t)get_le(&p->cfg[off], 2);
}

static void cfg_put(struct simpci *p, uint32_t off, unsigned width, uint32_t v)
{
    put_le(&p->cfg[off], width, v);
}

/* ---- Creation and building ------------------------------------------------- */

int simpci_cfg_init(struct simpci *p, uint32_t off, unsigned width, uint32_t val,
                    uint32_t wmask, uint32_t w1c)
{
    if (!p || !cfg_access_ok(off, width)) {
        return -EINVAL;
    }
    put_le(&p->cfg[off], width, val);
    put_le(&p->reset[off], width, val);
    put_le(&p->wmask[off], width, wmask);
    put_le(&p->w1c[off], width, w1c);
    return 0;
}

static void init_header(struct simpci *p, const struct simpci_id *id)
{
    uint32_t cmd_rw = SIMPCI_CMD_MEMORY | SIMPCI_CMD_MASTER | SIMPCI_CMD_PARITY |
                      SIMPCI_CMD_SERR | SIMPCI_CMD_INTX_DISABLE;

    simpci_cfg_init(p, SIMPCI_VENDOR_ID, 2, id->vendor, 0, 0);
    simpci_cfg_init(p, SIMPCI_DEVICE_ID, 2, id->device, 0, 0);
    simpci_cfg_init(p, SIMPCI_COMMAND, 2, 0, cmd_rw, 0);
    simpci_cfg_init(p, SIMPCI_STATUS, 2, 0, 0, SIMPCI_STATUS_RW1C);
    simpci_cfg_init(p, SIMPCI_REVISION, 4, id->revision | (id->class_code << 8), 0, 0);
    simpci_cfg_init(p, 0x0c, 1, 0, 0xff, 0); /* cache line size: RW, no effect */
    simpci_cfg_init(p, SIMPCI_HEADER_TYPE, 1, 0x00, 0, 0);
    simpci_cfg_init(p, SIMPCI_SUBSYS_VENDOR_ID, 2, id->subsys_vendor, 0, 0);
    simpci_cfg_init(p, SIMPCI_SUBSYS_ID, 2, id->subsys_device, 0, 0);
    simpci_cfg_init(p, SIMPCI_INTERRUPT_LINE, 1, 0, 0xff, 0);
    simpci_cfg_init(p, SIMPCI_INTERRUPT_PIN, 1, 0, 0, 0); /* no INTx */
}

int simpci_create(const struct simpci_id *id, const struct vdx_dev_host *host,
                  simpci_flr_fn flr, void *flr_opaque, struct simpci **out)
{
    struct simpci *p;

    if (!id || !out || id->class_code > 0xffffffu) {
        return -EINVAL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    if (host) {
        p->host = *host;
    }
    p->flr = flr;
    p->flr_opaque = flr_opaque;
    init_header(p, id);
    *out = p;
    return 0;
}

void simpci_destroy(struct simpci *p)
{
    if (!p) {
        return;
    }
    free(p->msix.table);
    free(p->msix.pba);
    free(p);
}

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static int bar_check(const struct simpci *p, unsigned bar, uint64_t size, uint8_t type)
{
    bool io = type & DEXT_BAR_TYPE_IO;
    bool m64 = type & DEXT_BAR_TYPE_MEM64;

    if (bar >= NUM_BARS || !is_pow2(size) || (type & ~0x0du)) {
        return -EINVAL;
    }
    if (io && (type != DEXT_BAR_TYPE_IO || size < 4 || size > 256)) {
        return -EINVAL;
    }
    if (!io && (size < 16 || (!m64 && size > 0x80000000ull))) {
        return -EINVAL;
    }
    if (m64 && bar + 1 >= NUM_BARS) {
        return -EINVAL;
    }
    if (p->bars[bar].size || p->bars[bar].upper ||
        (m64 && (p->bars[bar + 1].size || p->bars[bar + 1].upper))) {
        return -EBUSY;
    }
    return 0;
}

int simpci_set_bar(struct simpci *p, unsigned bar, uint64_t size, uint8_t type)
{
    uint32_t reg = SIMPCI_BAR0 + 4 * bar;
    uint64_t mask = ~(size - 1);
    int rc = p ? bar_check(p, bar, size, type) : -EINVAL;

    if (rc) {
        return rc;
    }
    p->bars[bar].size = size;
    p->bars[bar].type = type;
    if (type & DEXT_BAR_TYPE_IO) {
        uint32_t cmd_rw = (uint32_t)get_le(&p->wmask[SIMPCI_COMMAND], 2);

        simpci_cfg_init(p, reg, 4, type, (uint32_t)mask & ~0x3u, 0);
        simpci_cfg_init(p, SIMPCI_COMMAND, 2, 0, cmd_rw | SIMPCI_CMD_IO, 0);
        return 0;
    }
    simpci_cfg_init(p, reg, 4, type, (uint32_t)mask & ~0xfu, 0);
    if (type & DEXT_BAR_TYPE_MEM64) {
        p->bars[bar + 1].upper = true;
        simpci_cfg_init(p, reg + 4, 4, 0, (uint32_t)(mask >> 32), 0);
    }
    return 0;
}

int simpci_cfg_hook(struct simpci *p, uint16_t off, uint16_t len, simpci_cfg_hook_fn fn,
                    void *opaque)
{
    if (!p || !fn || len == 0 || off >= SIMPCI_CFG_SIZE || len > SIMPCI_CFG_SIZE - off) {
        return -EINVAL;
    }
    if (p->nhooks == MAX_HOOKS) {
        return -ENOSPC;
    }
    p->hooks[p->nhooks++] = (struct cfg_hook){off, len, fn, opaque};
    return 0;
}

/*
 * Whether a capability fits at off. Every builder also registers one hook, so
 * room for it is checked here too: past this check a builder cannot fail and
 * never leaves a half-built capability behind.
 */
static int cap_check(const struct simpci *p, unsigned off, unsigned len)
{
    if (off < CAP_AREA_START || (off & 3) || off + len > CAP_AREA_END) {
        return -EINVAL;
    }
    for (unsigned i = 0; i < p->ncaps; i++) {
        if (ranges_overlap(off, len, p->caps[i].off, p->caps[i].len)) {
            return -EINVAL;
        }
    }
    return p->ncaps == MAX_CAPS || p->nhooks == MAX_HOOKS ? -ENOSPC : 0;
}

/* Append a capability header to the list: ID, Next = 0, linked from the tail. */
static int cap_add(struct simpci *p, uint8_t id, uint8_t off, uint8_t len)
{
    int rc = cap_check(p, off, len);
    uint32_t status;

    if (rc) {
        return rc;
    }
    if (p->ncaps == 0) {
        status = (uint32_t)get_le(&p->reset[SIMPCI_STATUS], 2) | SIMPCI_STATUS_CAP_LIST;
        simpci_cfg_init(p, SIMPCI_STATUS, 2, status, 0, SIMPCI_STATUS_RW1C);
        simpci_cfg_init(p, SIMPCI_CAP_PTR, 1, off, 0, 0);
    } else {
        simpci_cfg_init(p, p->caps[p->ncaps - 1].off + 1u, 1, off, 0, 0);
    }
    simpci_cfg_init(p, off, 1, id, 0, 0);
    simpci_cfg_init(p, off + 1u, 1, 0, 0, 0);
    p->caps[p->ncaps++] = (struct cap){id, off, len};
    return 0;
}

/* ---- Interrupt state ----------------------------------------------------------- */

static uint32_t msix_ctrl(const struct simpci *p)
{
    return cfg16(p, p->msix_cap + SIMPCI_MSIX_CTRL);
}

static uint32_t msi_ctrl(const struct simpci *p)
{
    return cfg16(p, p->msi_cap + SIMPCI_MSI_CTRL);
}

bool simpci_msix_enabled(const struct simpci *p)
{
    return p->msix_cap && (msix_ctrl(p) & SIMPCI_MSIX_CTRL_ENABLE);
}

bool simpci_msi_enabled(const struct simpci *p)
{
    return p->msi_cap && (msi_ctrl(p) & SIMPCI_MSI_CTRL_ENABLE);
}

/* Vectors MSI may use now: 1 << min(MME, MMC). */
static unsigned msi_nvec(const struct simpci *p)
{
    unsigned mme = (msi_ctrl(p) & SIMPCI_MSI_CTRL_MME_MASK) >> SIMPCI_MSI_CTRL_MME_SHIFT;

    return 1u << (mme < p->msi_mmc_log2 ? mme : p->msi_mmc_log2);
}

static uint32_t low_bits32(unsigned n)
{
    return n >= 32 ? 0xffffffffu : (1u << n) - 1u;
}

static bool msix_entry_masked(const struct simpci *p, unsigned v)
{
    return p->msix.table[v * SIMPCI_MSIX_ENTRY_SIZE + SIMPCI_MSIX_ENTRY_CTRL] &
           SIMPCI_MSIX_ENTRY_MASKED;
}

static void deliver(struct simpci *p, unsigned vector)
{
    if (!p->host.irq_raise) {
        p->stats.dropped++;
        return;
    }
    p->stats.delivered++;
    p->host.irq_raise(p->host.ctx, vector);
}

static void msix_flush(struct simpci *p)
{
    if (msix_ctrl(p) & SIMPCI_MSIX_CTRL_MASKALL) {
        return;
    }
    for (unsigned w = 0; w < p->msix.pba_words; w++) {
        uint64_t bits = p->msix.pba[w];

        while (bits) {
            unsigned b = (unsigned)__builtin_ctzll(bits);
            unsigned v = w * 64 + b;

            bits &= bits - 1;
            if (!msix_entry_masked(p, v)) {
                p->msix.pba[w] &= ~(1ull << b);
                deliver(p, v);
            }
        }
    }
}

static void msi_flush(struct simpci *p)
{
    uint32_t pend_off = p->msi_cap + SIMPCI_MSI_PENDING;
    uint32_t pend = (uint32_t)get_le(&p->cfg[pend_off], 4);
    uint32_t mask = (uint32_t)get_le(&p->cfg[p->msi_cap + SIMPCI_MSI_MASK], 4);
    uint32_t go = pend & ~mask & low_bits32(msi_nvec(p));

    cfg_put(p, pend_off, 4, pend & ~go);
    while (go) {
        unsigned v = (unsigned)__builtin_ctz(go);

        go &= go - 1;
        deliver(p, v);
    }
}

/* The one place that derives delivery: pending & unmasked & enabled go out. */
static void update_irqs(struct simpci *p)
{
    if (simpci_msix_enabled(p)) {
        msix_flush(p);
    } else if (simpci_msi_enabled(p)) {
        msi_flush(p);
    }
}

static void msix_raise(struct simpci *p, unsigned vector)
{
    if (vector >= p->msix.l.nvec) {
        p->stats.dropped++;
        return;
    }
    if ((msix_ctrl(p) & SIMPCI_MSIX_CTRL_MASKALL) || msix_entry_masked(p, vector)) {
        p->msix.pba[vector / 64] |= 1ull << (vector % 64);
        p->stats.pended++;
        return;
    }
    deliver(p, vector);
}

static void msi_raise(struct simpci *p, unsigned vector)
{
    uint32_t mask = (uint32_t)get_le(&p->cfg[p->msi_cap + SIMPCI_MSI_MASK], 4);
    uint32_t pend_off = p->msi_cap + SIMPCI_MSI_PENDING;

    if (vector >= msi_nvec(p)) {
        p->stats.dropped++;
        return;
    }
    if (mask & (1u << vector)) {
        cfg_put(p, pend_off, 4, (uint32_t)get_le(&p->cfg[pend_off], 4) | (1u << vector));
        p->stats.pended++;
        return;
    }
    deliver(p, vector);
}

void simpci_raise(struct simpci *p, unsigned vector)
{
    p->stats.raised++;
    if (simpci_msix_enabled(p)) {
        msix_raise(p, vector);
    } else if (simpci_msi_enabled(p)) {
        msi_raise(p, vector);
    } else {
        p->stats.dropped++;
    }
}

void simpci_get_stats(const struct simpci *p, struct simpci_stats *st)
{
    *st = p->stats;
}

/* ---- Capabilities ------------------------------------------------------------- */

/* PMCSR: software may only choose D0 or D3hot; a D1/D2 write keeps the old state. */
static void pm_hook(struct simpci *p, void *opaque, uint32_t off, unsigned width,
                    uint32_t val, uint32_t old)
{
    uint32_t at = p->pm_cap + SIMPCI_PM_PMCSR;
    uint8_t prev;
    uint8_t state = p->cfg[at] & SIMPCI_PM_PMCSR_STATE;

    (void)opaque;
    (void)val;
    if (!access_byte(off, width, old, at, &prev) || state == 0 || state == 3) {
        return;
    }
    p->cfg[at] =
        (uint8_t)((p->cfg[at] & ~SIMPCI_PM_PMCSR_STATE) | (prev & SIMPCI_PM_PMCSR_STATE));
}

int simpci_add_pm(struct simpci *p, uint8_t off)
{
    int rc;

    if (!p) {
        return -EINVAL;
    }
    if (p->pm_cap) {
        return -EEXIST;
    }
    rc = cap_add(p, SIMPCI_CAP_ID_PM, off, SIMPCI_PM_SIZE);
    if (rc) {
        return rc;
    }
    p->pm_cap = off;
    simpci_cfg_init(p, off + SIMPCI_PM_PMC, 2, 0x0003, 0, 0); /* version 3 */
    simpci_cfg_init(p, off + SIMPCI_PM_PMCSR, 2, SIMPCI_PM_PMCSR_NO_SOFT_RESET,
                    SIMPCI_PM_PMCSR_STATE, 0);
    return simpci_cfg_hook(p, (uint16_t)(off + SIMPCI_PM_PMCSR), 1, pm_hook, NULL);
}

/* Any write to the MSI capability may unmask or enable: re-derive delivery. */
static void irq_hook(struct simpci *p, void *opaque, uint32_t off, unsigned width,
                     uint32_t val, uint32_t old)
{
    (void)opaque;
    (void)off;
    (void)width;
    (void)val;
    (void)old;
    update_irqs(p);
}

int simpci_add_msi(struct simpci *p, uint8_t off, unsigned mmc_log2)
{
    uint32_t ctrl = (mmc_log2 << SIMPCI_MSI_CTRL_MMC_SHIFT) | SIMPCI_MSI_CTRL_64BIT |
                    SIMPCI_MSI_CTRL_PVM;
    int rc;

    if (!p || mmc_log2 > 5) {
        return -EINVAL;
    }
    if (p->msi_cap) {
        return -EEXIST;
    }
    rc = cap_add(p, SIMPCI_CAP_ID_MSI, off, SIMPCI_MSI_SIZE);
    if (rc) {
        return rc;
    }
    p->msi_cap = off;
    p->msi_mmc_log2 = mmc_log2;
    simpci_cfg_init(p, off + SIMPCI_MSI_CTRL, 2, ctrl,
                    SIMPCI_MSI_CTRL_ENABLE | SIMPCI_MSI_CTRL_MME_MASK, 0);
    simpci_cfg_init(p, off + SIMPCI_MSI_ADDR_LO, 4, 0, 0xfffffffcu, 0);
    simpci_cfg_init(p, off + SIMPCI_MSI_ADDR_HI, 4, 0, 0xffffffffu, 0);
    simpci_cfg_init(p, off + SIMPCI_MSI_DATA, 2, 0, 0xffffu, 0);
    simpci_cfg_init(p, off + SIMPCI_MSI_MASK, 4, 0, low_bits32(1u << mmc_log2), 0);
    simpci_cfg_init(p, off + SIMPCI_MSI_PENDING, 4, 0, 0, 0);
    return simpci_cfg_hook(p, (uint16_t)(off + SIMPCI_MSI_CTRL),
                           SIMPCI_MSI_PENDING - SIMPCI_MSI_CTRL, irq_hook, NULL);
}

/* Device Control bit 15 written 1: request an FLR, done after the write. */
static void pcie_devctl_hook(struct simpci *p, void *opaque, uint32_t off, unsigned width,
                             uint32_t val, uint32_t old)
{
    uint8_t hi;

    (void)opaque;
    (void)old;
    if (p->pcie_flr &&
        access_byte(off, width, val, p->pcie_cap + SIMPCI_PCIE_DEVCTL + 1u, &hi) &&
        (hi & (SIMPCI_PCIE_DEVCTL_FLR >> 8))) {
        p->flr_requested = true;
    }
}

static void pcie_init_regs(struct simpci *p, uint8_t off, bool flr)
{
    uint32_t devcap = 0x00008000u | (flr ? SIMPCI_PCIE_DEVCAP_FLR : 0); /* RBER */

    simpci_cfg_init(p, off + SIMPCI_PCIE_FLAGS, 2, 0x0002, 0, 0); /* v2, endpoint */
    simpci_cfg_init(p, off + SIMPCI_PCIE_DEVCAP, 4, devcap, 0, 0);
    /* Relaxed ordering, no snoop, 512-byte read requests; bit 15 reads 0. */
    simpci_cfg_init(p, off + SIMPCI_PCIE_DEVCTL, 2, 0x2810, 0x79ff, 0);
    simpci_cfg_init(p, off + SIMPCI_PCIE_DEVSTA, 2, 0, 0, SIMPCI_PCIE_DEVSTA_RW1C);
    simpci_cfg_init(p, off + SIMPCI_PCIE_LNKCAP, 4, 0x00000011, 0, 0); /* 2.5 GT/s x1 */
    simpci_cfg_init(p, off + SIMPCI_PCIE_LNKCTL, 2, 0, 0x00cb, 0);
    simpci_cfg_init(p, off + SIMPCI_PCIE_LNKSTA, 2, 0x0011, 0, 0);
    simpci_cfg_init(p, off + SIMPCI_PCIE_LNKCAP2, 4, 0x00000002, 0, 0);
    simpci_cfg_init(p, off + SIMPCI_PCIE_LNKCTL2, 2, 0x0001, 0, 0);
}

int simpci_add_pcie(struct simpci *p, uint8_t off, bool flr)
{
    int rc;

    if (!p) {
        return -EINVAL;
    }
    if (p->pcie_cap) {
        return -EEXIST;
    }
    rc = cap_add(p, SIMPCI_CAP_ID_PCIE, off, SIMPCI_PCIE_SIZE);
    if (rc) {
        return rc;
    }
    p->pcie_cap = off;
    p->pcie_flr = flr;
    pcie_init_regs(p, off, flr);
    return simpci_cfg_hook(p, (uint16_t)(off + SIMPCI_PCIE_DEVCTL + 1u), 1,
                           pcie_devctl_hook, NULL);
}

static unsigned pba_words(unsigned nvec)
{
    return (nvec + 63) / 64;
}

/* A window [off, off + len) of a memory BAR declared before. */
static bool msix_window_ok(const struct simpci *p, unsigned bir, uint32_t off, uint64_t len)
{
    const struct bar *b;

    if (bir >= NUM_BARS || (off & 7)) {
        return false;
    }
    b = &p->bars[bir];
    return b->size && !(b->type & DEXT_BAR_TYPE_IO) && off < b->size &&
           len <= b->size - off;
}

static int msix_check(const struct simpci *p, const struct simpci_msix_layout *l)
{
    uint64_t tlen, plen;

    if (!l || l->nvec == 0 || l->nvec > SIMPCI_MSIX_MAX_VECTORS) {
        return -EINVAL;
    }
    tlen = (uint64_t)l->nvec * SIMPCI_MSIX_ENTRY_SIZE;
    plen = (uint64_t)pba_words(l->nvec) * 8;
    if (!msix_window_ok(p, l->table_bir, l->table_off, tlen) ||
        !msix_window_ok(p, l->pba_bir, l->pba_off, plen)) {
        return -EINVAL;
    }
    if (l->table_bir == l->pba_bir &&
        ranges_overlap(l->table_off, tlen, l->pba_off, plen)) {
        return -EINVAL;
    }
    return p->msix_cap ? -EEXIST : 0;
}

/* Power-on MSI-X state: every entry masked, address/data 0, nothing pending. */
static void msix_reset_table(struct simpci *p)
{
    if (!p->msix_cap) {
        return;
    }
    memset(p->msix.table, 0, (size_t)p->msix.l.nvec * SIMPCI_MSIX_ENTRY_SIZE);
    for (unsigned v = 0; v < p->msix.l.nvec; v++) {
        p->msix.table[v * SIMPCI_MSIX_ENTRY_SIZE + SIMPCI_MSIX_ENTRY_CTRL] =
            SIMPCI_MSIX_ENTRY_MASKED;
    }
    memset(p->msix.pba, 0, (size_t)p->msix.pba_words * sizeof(uint64_t));
}

static void msix_init_regs(struct simpci *p, uint8_t off,
                           const struct simpci_msix_layout *l)
{
    simpci_cfg_init(p, off + SIMPCI_MSIX_CTRL, 2, l->nvec - 1,
                    SIMPCI_MSIX_CTRL_ENABLE | SIMPCI_MSIX_CTRL_MASKALL, 0);
    simpci_cfg_init(p, off + SIMPCI_MSIX_TABLE, 4, l->table_off | l->table_bir, 0, 0);
    simpci_cfg_init(p, off + SIMPCI_MSIX_PBA, 4, l->pba_off | l->pba_bir, 0, 0);
}

int simpci_add_msix(struct simpci *p, uint8_t off, const struct simpci_msix_layout *l)
{
    uint8_t *table;
    uint64_t *pba;
    int rc = p ? msix_check(p, l) : -EINVAL;

    if (rc) {
        return rc;
    }
    rc = cap_check(p, off, SIMPCI_MSIX_SIZE);
    if (rc) {
        return rc;
    }
    table = calloc(l->nvec, SIMPCI_MSIX_ENTRY_SIZE);
    pba = calloc(pba_words(l->nvec), sizeof(uint64_t));
    if (!table || !pba) {
        free(table);
        free(pba);
        return -ENOMEM;
    }
    cap_add(p, SIMPCI_CAP_ID_MSIX, off, SIMPCI_MSIX_SIZE); /* checked above */
    p->msix = (struct msix){*l, table, pba, pba_words(l->nvec)};
    p->msix_cap = off;
    msix_init_regs(p, off, l);
    msix_reset_table(p);
    return simpci_cfg_hook(p, (uint16_t)(off + SIMPCI_MSIX_CTRL), 2, irq_hook, NULL);
}

/* ---- Config access ------------------------------------------------------------- */

int simpci_config_read(struct simpci *p, uint32_t off, unsigned width, uint32_t *val)
{
    if (!p || !val || !cfg_access_ok(off, width)) {
        return -EINVAL;
    }
    *val = (uint32_t)get_le(&p->cfg[off], width);
    return 0;
}

static void cfg_write_byte(struct simpci *p, uint32_t at, uint8_t v)
{
    uint8_t old = p->cfg[at];
    uint8_t w = p->wmask[at];

    p->cfg[at] = (uint8_t)(((old & ~w) | (v & w)) & ~(v & p->w1c[at]));
}

static void run_hooks(struct simpci *p, uint32_t off, unsigned width, uint32_t val,
                      uint32_t old)
{
    for (unsigned i = 0; i < p->nhooks; i++) {
        const struct cfg_hook *h = &p->hooks[i];

        if (ranges_overlap(off, width, h->off, h->len)) {
            h->fn(p, h->opaque, off, width, val, old);
        }
    }
}

int simpci_config_write(struct simpci *p, uint32_t off, unsigned width, uint32_t val)
{
    uint32_t old;

    if (!p || !cfg_access_ok(off, width)) {
        return -EINVAL;
    }
    old = (uint32_t)get_le(&p->cfg[off], width);
    for (unsigned i = 0; i < width; i++) {
        cfg_write_byte(p, off + i, (uint8_t)(val >> (8 * i)));
    }
    run_hooks(p, off, width, val, old);
    if (p->flr_requested) {
        p->flr_requested = false;
        if (p->flr) {
            p->flr(p->flr_opaque);
        } else {
            simpci_reset(p);
        }
    }
    return 0;
}

uint32_t simpci_cfg_get(const struct simpci *p, uint32_t off, unsigned width)
{
    if (!p || !cfg_access_ok(off, width)) {
        return 0;
    }
    return (uint32_t)get_le(&p->cfg[off], width);
}

void simpci_cfg_set_bits(struct simpci *p, uint32_t off, unsigned width, uint32_t bits)
{
    if (!p || !cfg_access_ok(off, width)) {
        return;
    }
    cfg_put(p, off, width, (uint32_t)get_le(&p->cfg[off], width) | bits);
}

int simpci_bar_info(const struct simpci *p, unsigned bar, struct vdx_bar_info *info)
{
    if (!p || !info || bar >= NUM_BARS) {
        return -EINVAL;
    }
    info->size = p->bars[bar].size;
    info->type = p->bars[bar].size ? p->bars[bar].type : 0;
    return 0;
}

void simpci_reset(struct simpci *p)
{
    if (!p) {
        return;
    }
    memcpy(p->cfg, p->reset, sizeof(p->cfg));
    p->flr_requested = false;
    msix_reset_table(p);
}

/* ---- MSI-X table and PBA ------------------------------------------------------ */

static bool in_window(uint64_t a, uint64_t base, uint64_t len)
{
    return a >= base && a - base < len;
}

static uint64_t table_len(const struct simpci *p)
{
    return (uint64_t)p->msix.l.nvec * SIMPCI_MSIX_ENTRY_SIZE;
}

static bool msix_hit(const struct simpci *p, unsigned bar, uint64_t off, unsigned width)
{
    const struct simpci_msix_layout *l = &p->msix.l;

    if (!p->msix_cap || (width != 1 && width != 2 && width != 4 && width != 8)) {
        return false;
    }
    return (bar == l->table_bir &&
            ranges_overlap(off, width, l->table_off, table_len(p))) ||
           (bar == l->pba_bir &&
            ranges_overlap(off, width, l->pba_off, (uint64_t)p->msix.pba_words * 8));
}

static uint8_t msix_read_byte(const struct simpci *p, unsigned bar, uint64_t a)
{
    const struct simpci_msix_layout *l = &p->msix.l;

    if (bar == l->table_bir && in_window(a, l->table_off, table_len(p))) {
        return p->msix.table[a - l->table_off];
    }
    if (bar == l->pba_bir && in_window(a, l->pba_off, (uint64_t)p->msix.pba_words * 8)) {
        uint64_t i = a - l->pba_off;

        return (uint8_t)(p->msix.pba[i / 8] >> (8 * (i % 8)));
    }
    return 0;
}

bool simpci_msix_read(struct simpci *p, unsigned bar, uint64_t off, unsigned width,
                      uint64_t *val)
{
    uint64_t v = 0;

    if (!p || !val || !msix_hit(p, bar, off, width)) {
        return false;
    }
    for (unsigned i = 0; i < width; i++) {
        v |= (uint64_t)msix_read_byte(p, bar, off + i) << (8 * i);
    }
    *val = v;
    return true;
}

/* Writable bits of byte i of an entry: address bits 1:0 and reserved bits are RO. */
static uint8_t entry_wmask(unsigned i)
{
    if (i == 0) {
        return 0xfc;
    }
    if (i < SIMPCI_MSIX_ENTRY_CTRL) {
        return 0xff;
    }
    return i == SIMPCI_MSIX_ENTRY_CTRL ? SIMPCI_MSIX_ENTRY_MASKED : 0;
}

/* Write one table byte; true if it was a vector-control byte. */
static bool msix_write_byte(struct simpci *p, unsigned bar, uint64_t a, uint8_t v)
{
    const struct simpci_msix_layout *l = &p->msix.l;
    uint64_t i;
    uint8_t w;

    if (bar != l->table_bir || !in_window(a, l->table_off, table_len(p))) {
        return false; /* PBA is read-only; gaps ignore writes */
    }
    i = a - l->table_off;
    w = entry_wmask((unsigned)(i % SIMPCI_MSIX_ENTRY_SIZE));
    p->msix.table[i] = (uint8_t)((p->msix.table[i] & ~w) | (v & w));
    return i % SIMPCI_MSIX_ENTRY_SIZE == SIMPCI_MSIX_ENTRY_CTRL;
}

bool simpci_msix_write(struct simpci *p, unsigned bar, uint64_t off, unsigned width,
                       uint64_t val)
{
    bool ctrl_touched = false;

    if (!p || !msix_hit(p, bar, off, width)) {
        return false;
    }
    for (unsigned i = 0; i < width; i++) {
        ctrl_touched |= msix_write_byte(p, bar, off + i, (uint8_t)(val >> (8 * i)));
    }
    if (ctrl_touched) {
        update_irqs(p);
    }
    return true;
}

/* ---- Interrupt setup as a host OS does it ---------------------------------- */

static void msix_program_entry(struct simpci *p, unsigned v)
{
    uint8_t *e = &p->msix.table[v * SIMPCI_MSIX_ENTRY_SIZE];

    put_le(e + 0, 4, MSG_ADDR);
    put_le(e + 4, 4, 0);
    put_le(e + 8, 4, v);
    put_le(e + SIMPCI_MSIX_ENTRY_CTRL, 4, 0); /* unmasked */
}

static unsigned msix_configure(struct simpci *p, unsigned requested)
{
    unsigned n = requested < p->msix.l.nvec ? requested : p->msix.l.nvec;
    uint32_t ctrl_off = p->msix_cap + SIMPCI_MSIX_CTRL;
    uint32_t ctrl = msix_ctrl(p);

    if (p->msi_cap) {
        cfg_put(p, p->msi_cap + SIMPCI_MSI_CTRL, 2, msi_ctrl(p) & ~SIMPCI_MSI_CTRL_ENABLE);
    }
    for (unsigned v = 0; v < n; v++) {
        msix_program_entry(p, v);
    }
    ctrl = (ctrl & ~SIMPCI_MSIX_CTRL_MASKALL) | SIMPCI_MSIX_CTRL_ENABLE;
    cfg_put(p, ctrl_off, 2, ctrl);
    return n;
}

static unsigned msi_configure(struct simpci *p, unsigned requested)
{
    unsigned cap = 1u << p->msi_mmc_log2;
    unsigned want = requested < cap ? requested : cap;
    unsigned mme = 0;
    uint32_t ctrl = msi_ctrl(p) & ~SIMPCI_MSI_CTRL_MME_MASK;

    while ((2u << mme) <= want) {
        mme++;
    }
    cfg_put(p, p->msi_cap + SIMPCI_MSI_ADDR_LO, 4, MSG_ADDR);
    cfg_put(p, p->msi_cap + SIMPCI_MSI_ADDR_HI, 4, 0);
    cfg_put(p, p->msi_cap + SIMPCI_MSI_DATA, 2, 0);
    cfg_put(p, p->msi_cap + SIMPCI_MSI_MASK, 4, 0);
    ctrl |= (mme << SIMPCI_MSI_CTRL_MME_SHIFT) | SIMPCI_MSI_CTRL_ENABLE;
    cfg_put(p, p->msi_cap + SIMPCI_MSI_CTRL, 2, ctrl);
    return 1u << mme;
}

int simpci_irq_configure(struct simpci *p, unsigned requested, unsigned *granted)
{
    unsigned n;

    if (!p || !granted || requested == 0) {
        return -EINVAL;
    }
    if (p->msix_cap) {
        n = msix_configure(p, requested);
    } else if (p->msi_cap) {
        n = msi_configure(p, requested);
    } else {
        return -ENOTSUP;
    }
    update_irqs(p);
    *granted = n;
    return 0;
}

void simpci_irq_release(struct simpci *p)
{
    if (!p) {
        return;
    }
    if (p->msix_cap) {
        uint32_t ctrl = msix_ctrl(p);

        for (unsigned v = 0; v < p->msix.l.nvec; v++) {
            p->msix.table[v * SIMPCI_MSIX_ENTRY_SIZE + SIMPCI_MSIX_ENTRY_CTRL] |=
                SIMPCI_MSIX_ENTRY_MASKED;
        }
        ctrl &= ~(SIMPCI_MSIX_CTRL_ENABLE | SIMPCI_MSIX_CTRL_MASKALL);
        cfg_put(p, p->msix_cap + SIMPCI_MSIX_CTRL, 2, ctrl);
    }
    if (p->msi_cap) {
        uint32_t ctrl = msi_ctrl(p) & ~(SIMPCI_MSI_CTRL_ENABLE | SIMPCI_MSI_CTRL_MME_MASK);

        cfg_put(p, p->msi_cap + SIMPCI_MSI_CTRL, 2, ctrl);
    }
}

/* ---- Helpers for kinds ------------------------------------------------------- */

static int digit_value(char c, unsigned base)
{
    int d = -1;

    if (c >= '0' && c <= '9') {
        d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
    }
    return d >= 0 && (unsigned)d < base ? d : -1;
}

/* Parse exactly len characters of s as an unsigned number. */
static int parse_u64_n(const char *s, size_t len, uint64_t *out)
{
    unsigned base = 10;
    uint64_t v = 0;

    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        len -= 2;
    }
    if (len == 0) {
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        int d = digit_value(s[i], base);

        if (d < 0 || v > (UINT64_MAX - (uint64_t)d) / base) {
            return -EINVAL;
        }
        v = v * base + (uint64_t)d;
    }
    *out = v;
    return 0;
}

int simpci_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !out) {
        return -EINVAL;
    }
    return parse_u64_n(s, strlen(s), out);
}

static unsigned size_shift(char c)
{
    switch (c) {
    case 'k':
    case 'K':
        return 10;
    case 'm':
    case 'M':
        return 20;
    case 'g':
    case 'G':
        return 30;
    default:
        return 0;
    }
}

int simpci_parse_size(const char *s, uint64_t *out)
{
    size_t len;
    unsigned shift;
    uint64_t v;

    if (!s || !out) {
        return -EINVAL;
    }
    len = strlen(s);
    shift = len ? size_shift(s[len - 1]) : 0;
    if (shift) {
        len--;
    }
    if (parse_u64_n(s, len, &v) || v > (UINT64_MAX >> shift)) {
        return -EINVAL;
    }
    *out = v << shift;
    return 0;
}

void simpci_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
