/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the simulated PCI function core (src/devices/simpci.c):
 * header and capability chain, BAR sizing, write masks, MSI-X/MSI delivery
 * with masking and pending bits, FLR through PCIe Device Control, and the
 * small parsers kinds use.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/simpci.h"

#define T_VENDOR 0x1234u
#define T_DEVICE 0x5678u
#define T_CLASS  0x010802u
#define T_PM     0x40u
#define T_MSI    0x50u
#define T_PCIE   0x70u
#define T_MSIX   0xb0u
#define T_NVEC   8u
#define T_TABLE  0x2000u
#define T_PBA    0x3000u

struct irq_log {
    unsigned n;
    unsigned v[64];
};

struct fixture {
    struct simpci *p;
    struct irq_log irqs;
    unsigned flrs;
};

static void rec_irq(void *ctx, unsigned vector)
{
    struct irq_log *l = ctx;

    if (l->n < 64) {
        l->v[l->n] = vector;
    }
    l->n++;
}

static void count_flr(void *opaque)
{
    struct fixture *f = opaque;

    f->flrs++;
    simpci_reset(f->p);
}

static const struct simpci_id t_id = {
    .vendor = T_VENDOR,
    .device = T_DEVICE,
    .subsys_vendor = 0x1af4,
    .subsys_device = 0x0001,
    .class_code = T_CLASS,
    .revision = 2,
};

static struct simpci *new_pci(struct fixture *f, bool flr_cb)
{
    struct vdx_dev_host host = {.ctx = &f->irqs, .dma_rw = NULL, .irq_raise = rec_irq};
    struct simpci *p = NULL;

    assert_int_equal(simpci_create(&t_id, &host, flr_cb ? count_flr : NULL, f, &p), 0);
    assert_non_null(p);
    return p;
}

/* The full function: BAR0 16K, BAR2 64-bit 1M, BAR4 I/O 256, PM, MSI, PCIe, MSI-X. */
static int setup_full(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const struct simpci_msix_layout l = {T_NVEC, 0, T_TABLE, 0, T_PBA};

    assert_non_null(f);
    f->p = new_pci(f, true);
    assert_int_equal(simpci_set_bar(f->p, 0, 16 * 1024, DEXT_BAR_TYPE_M32), 0);
    assert_int_equal(simpci_set_bar(f->p, 2, 1024 * 1024, DEXT_BAR_TYPE_M64PF), 0);
    assert_int_equal(simpci_set_bar(f->p, 4, 256, DEXT_BAR_TYPE_IO), 0);
    assert_int_equal(simpci_add_pm(f->p, T_PM), 0);
    assert_int_equal(simpci_add_msi(f->p, T_MSI, 2), 0);
    assert_int_equal(simpci_add_pcie(f->p, T_PCIE, true), 0);
    assert_int_equal(simpci_add_msix(f->p, T_MSIX, &l), 0);
    *state = f;
    return 0;
}

/* MSI only (4 vectors capable), no MSI-X. */
static int setup_msi(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->p = new_pci(f, false);
    assert_int_equal(simpci_set_bar(f->p, 0, 4096, DEXT_BAR_TYPE_M32), 0);
    assert_int_equal(simpci_add_msi(f->p, T_MSI, 2), 0);
    assert_int_equal(simpci_add_pcie(f->p, T_PCIE, false), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    simpci_destroy(f->p);
    free(f);
    return 0;
}

static uint32_t cr(struct simpci *p, uint32_t off, unsigned width)
{
    uint32_t v = 0xdeadbeef;

    assert_int_equal(simpci_config_read(p, off, width, &v), 0);
    return v;
}

static void cw(struct simpci *p, uint32_t off, unsigned width, uint32_t v)
{
    assert_int_equal(simpci_config_write(p, off, width, v), 0);
}

static uint64_t tr(struct simpci *p, uint64_t off, unsigned width)
{
    uint64_t v = 0xdeadbeef;

    assert_true(simpci_msix_read(p, 0, off, width, &v));
    return v;
}

static void tw(struct simpci *p, uint64_t off, unsigned width, uint64_t v)
{
    assert_true(simpci_msix_write(p, 0, off, width, v));
}

/* ---- Header and capabilities -------------------------------------------------- */

static void test_identity(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;

    assert_int_equal(cr(p, 0x00, 4), T_VENDOR | (T_DEVICE << 16));
    assert_int_equal(cr(p, 0x00, 2), T_VENDOR);
    assert_int_equal(cr(p, 0x02, 2), T_DEVICE);
    assert_int_equal(cr(p, 0x08, 1), 2);
    assert_int_equal(cr(p, 0x08, 4) >> 8, T_CLASS);
    assert_int_equal(cr(p, 0x0b, 1), 0x01); /* base class */
    assert_int_equal(cr(p, SIMPCI_HEADER_TYPE, 1), 0);
    assert_int_equal(cr(p, SIMPCI_SUBSYS_VENDOR_ID, 2), 0x1af4);
    assert_int_equal(cr(p, SIMPCI_SUBSYS_ID, 2), 0x0001);
    assert_int_equal(cr(p, SIMPCI_INTERRUPT_PIN, 1), 0);
    assert_int_equal(cr(p, SIMPCI_COMMAND, 2), 0);
    assert_true(cr(p, SIMPCI_STATUS, 2) & SIMPCI_STATUS_CAP_LIST);
}

static void test_cap_chain(void **state)
{
    struct fixture *f = *state;
    const uint8_t want_id[] = {SIMPCI_CAP_ID_PM, SIMPCI_CAP_ID_MSI, SIMPCI_CAP_ID_PCIE,
                               SIMPCI_CAP_ID_MSIX};
    const uint8_t want_off[] = {T_PM, T_MSI, T_PCIE, T_MSIX};
    uint32_t off = cr(f->p, SIMPCI_CAP_PTR, 1);
    unsigned n = 0;

    while (off) {
        assert_true(n < 4);
        assert_int_equal(off, want_off[n]);
        assert_int_equal(cr(f->p, off, 1), want_id[n]);
        off = cr(f->p, off + 1, 1);
        n++;
    }
    assert_int_equal(n, 4);
    /* The capability contents the spec fixes. */
    assert_int_equal(cr(f->p, T_PM + 2, 2) & 7, 3);
    assert_int_equal(cr(f->p, T_MSI + 2, 2), (2u << 1) | 0x80 | 0x100);
    assert_int_equal(cr(f->p, T_PCIE + 2, 2), 0x0002);
    assert_true(cr(f->p, T_PCIE + 4, 4) & SIMPCI_PCIE_DEVCAP_FLR);
    assert_int_equal(cr(f->p, T_MSIX + 2, 2), T_NVEC - 1);
    assert_int_equal(cr(f->p, T_MSIX + 4, 4), T_TABLE | 0);
    assert_int_equal(cr(f->p, T_MSIX + 8, 4), T_PBA | 0);
    /* No extended capabilities: the header at 0x100 is 0. */
    assert_int_equal(cr(f->p, 0x100, 4), 0);
}

static void test_bar_sizing(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    struct vdx_bar_info bi;

    assert_int_equal(cr(p, 0x10, 4), 0x0);
    cw(p, 0x10, 4, 0xffffffff);
    assert_int_equal(cr(p, 0x10, 4), 0xffffc000);
    cw(p, 0x10, 4, 0xfebc0000);
    assert_int_equal(cr(p, 0x10, 4), 0xfebc0000);

    assert_int_equal(cr(p, 0x18, 4), 0xc);
    cw(p, 0x18, 4, 0xffffffff);
    cw(p, 0x1c, 4, 0xffffffff);
    assert_int_equal(cr(p, 0x18, 4), 0xfff0000c);
    assert_int_equal(cr(p, 0x1c, 4), 0xffffffff);
    cw(p, 0x18, 4, 0x12345678);
    cw(p, 0x1c, 4, 0x9);
    assert_int_equal(cr(p, 0x18, 4), 0x1230000c);
    assert_int_equal(cr(p, 0x1c, 4), 0x9);

    cw(p, 0x20, 4, 0xffffffff); /* I/O BAR of 256 bytes */
    assert_int_equal(cr(p, 0x20, 4), 0xffffff01);
    for (uint32_t off = 0x14; off <= 0x24; off += 0x10) { /* BAR1, BAR5 unused */
        cw(p, off, 4, 0xffffffff);
        assert_int_equal(cr(p, off, 4), 0);
    }
    cw(p, 0x30, 4, 0xffffffff); /* no expansion ROM */
    assert_int_equal(cr(p, 0x30, 4), 0);

    assert_int_equal(simpci_bar_info(p, 0, &bi), 0);
    assert_int_equal(bi.size, 16 * 1024);
    assert_int_equal(bi.type, DEXT_BAR_TYPE_M32);
    assert_int_equal(simpci_bar_info(p, 2, &bi), 0);
    assert_int_equal(bi.size, 1024 * 1024);
    assert_int_equal(bi.type, DEXT_BAR_TYPE_M64PF);
    assert_int_equal(simpci_bar_info(p, 3, &bi), 0);
    assert_int_equal(bi.size, 0);
    assert_int_equal(simpci_bar_info(p, 4, &bi), 0);
    assert_int_equal(bi.type, DEXT_BAR_TYPE_IO);
    assert_int_equal(simpci_bar_info(p, 6, &bi), -EINVAL);
    /* An I/O BAR makes Command bit 0 writable. */
    cw(p, SIMPCI_COMMAND, 2, 0xffff);
    assert_int_equal(cr(p, SIMPCI_COMMAND, 2), 0x0547);
}

static void test_bar_64bit_large(void **state)
{
    struct fixture f = {0};
    struct simpci *p = new_pci(&f, false);

    (void)state;
    assert_int_equal(simpci_set_bar(p, 0, 8ull << 30, DEXT_BAR_TYPE_M64), 0);
    cw(p, 0x10, 4, 0xffffffff);
    cw(p, 0x14, 4, 0xffffffff);
    assert_int_equal(cr(p, 0x10, 4), 0x00000004);
    assert_int_equal(cr(p, 0x14, 4), 0xfffffffe);
    assert_int_equal(simpci_set_bar(p, 1, 4096, DEXT_BAR_TYPE_M32), -EBUSY);
    assert_int_equal(simpci_set_bar(p, 5, 4096, DEXT_BAR_TYPE_M64), -EINVAL);
    assert_int_equal(simpci_set_bar(p, 2, 3000, DEXT_BAR_TYPE_M32), -EINVAL);
    assert_int_equal(simpci_set_bar(p, 2, 8, DEXT_BAR_TYPE_M32), -EINVAL);
    assert_int_equal(simpci_set_bar(p, 2, 4ull << 30, DEXT_BAR_TYPE_M32), -EINVAL);
    assert_int_equal(simpci_set_bar(p, 2, 512, DEXT_BAR_TYPE_IO), -EINVAL);
    assert_int_equal(simpci_set_bar(p, 2, 256, DEXT_BAR_TYPE_IO | DEXT_BAR_TYPE_PREFETCH),
                     -EINVAL);
    assert_int_equal(simpci_set_bar(p, 6, 4096, DEXT_BAR_TYPE_M32), -EINVAL);
    simpci_destroy(p);
}

/* ---- Write masks ---------------------------------------------------------------- */

static void test_masks_ro_rw(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;

    cw(p, 0x00, 4, 0xffffffff); /* IDs are read-only */
    assert_int_equal(cr(p, 0x00, 4), T_VENDOR | (T_DEVICE << 16));
    cw(p, 0x08, 4, 0);
    assert_int_equal(cr(p, 0x08, 4) >> 8, T_CLASS);
    cw(p, SIMPCI_COMMAND, 2, 0xffff); /* I/O bit writable: the function has an I/O BAR */
    assert_int_equal(cr(p, SIMPCI_COMMAND, 2), 0x0547);
    cw(p, SIMPCI_COMMAND, 1, 0x06);
    assert_int_equal(cr(p, SIMPCI_COMMAND, 2), 0x0506);
    cw(p, SIMPCI_INTERRUPT_LINE, 2, 0xffff); /* line RW, pin RO 0 */
    assert_int_equal(cr(p, SIMPCI_INTERRUPT_LINE, 2), 0x00ff);
    cw(p, SIMPCI_CAP_PTR, 1, 0);
    assert_int_equal(cr(p, SIMPCI_CAP_PTR, 1), T_PM);
    /* An unaligned dword write spanning Command and Status. */
    cw(p, 0x05, 4, 0xffffffff);
    assert_int_equal(cr(p, SIMPCI_COMMAND, 2), 0x0506 | 0x0500);
    /* Unimplemented space reads 0 and ignores writes. */
    cw(p, 0x200, 4, 0x12345678);
    assert_int_equal(cr(p, 0x200, 4), 0);
    cw(p, 0xffc, 4, 0x12345678);
    assert_int_equal(cr(p, 0xffc, 4), 0);
    assert_int_equal(cr(p, 0xfff, 1), 0);
}

static void test_masks_rw1c(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    uint32_t sta = T_PCIE + SIMPCI_PCIE_DEVSTA;

    simpci_cfg_set_bits(p, SIMPCI_STATUS, 2, 0x2000 | 0x0100); /* master abort, parity */
    assert_int_equal(cr(p, SIMPCI_STATUS, 2), 0x2100 | SIMPCI_STATUS_CAP_LIST);
    cw(p, SIMPCI_STATUS, 2, 0); /* writing 0 leaves them */
    assert_int_equal(cr(p, SIMPCI_STATUS, 2), 0x2100 | SIMPCI_STATUS_CAP_LIST);
    cw(p, SIMPCI_STATUS, 2, 0x2000 | SIMPCI_STATUS_CAP_LIST); /* clears only bit 13 */
    assert_int_equal(cr(p, SIMPCI_STATUS, 2), 0x0100 | SIMPCI_STATUS_CAP_LIST);
    cw(p, SIMPCI_COMMAND, 4, 0xffff0000); /* a dword write to Command clears Status too */
    assert_int_equal(cr(p, SIMPCI_STATUS, 2), SIMPCI_STATUS_CAP_LIST);

    simpci_cfg_set_bits(p, sta, 2, 0x0009);
    cw(p, sta, 2, 0x0001);
    assert_int_equal(cr(p, sta, 2), 0x0008);
    cw(p, sta, 2, 0xffff);
    assert_int_equal(cr(p, sta, 2), 0);
}

static void test_pm_state(void **state)
{
    struct fixture *f = *state;
    uint32_t csr = T_PM + SIMPCI_PM_PMCSR;

    assert_int_equal(cr(f->p, csr, 2), SIMPCI_PM_PMCSR_NO_SOFT_RESET);
    cw(f->p, csr, 2, 3); /* D3hot */
    assert_int_equal(cr(f->p, csr, 2) & 3, 3);
    cw(f->p, csr, 2, 1); /* D1 unsupported: ignored */
    assert_int_equal(cr(f->p, csr, 2) & 3, 3);
    cw(f->p, csr, 4, 0xfffffff0); /* RO bits stay, D0 */
    assert_int_equal(cr(f->p, csr, 2), SIMPCI_PM_PMCSR_NO_SOFT_RESET);
}

static void test_bad_access(void **state)
{
    struct fixture *f = *state;
    uint32_t v;

    assert_int_equal(simpci_config_read(f->p, 0, 3, &v), -EINVAL);
    assert_int_equal(simpci_config_read(f->p, 0xffe, 4, &v), -EINVAL);
    assert_int_equal(simpci_config_read(f->p, 0x1000, 1, &v), -EINVAL);
    assert_int_equal(simpci_config_write(f->p, 0, 8, 0), -EINVAL);
    assert_int_equal(simpci_config_write(f->p, UINT32_MAX, 4, 0), -EINVAL);
    assert_false(simpci_msix_read(f->p, 0, 0, 4, &(uint64_t){0}));
    assert_false(simpci_msix_read(f->p, 2, T_TABLE, 4, &(uint64_t){0}));
    assert_false(simpci_msix_read(f->p, 0, T_TABLE, 3, &(uint64_t){0}));
}

/* ---- MSI-X ------------------------------------------------------------------- */

static void msix_enable(struct simpci *p, bool fmask)
{
    cw(p, T_MSIX + 2, 2, SIMPCI_MSIX_CTRL_ENABLE | (fmask ? SIMPCI_MSIX_CTRL_MASKALL : 0));
}

static void test_msix_table_masks(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    uint64_t e = T_TABLE + 3 * 16;

    assert_int_equal(tr(p, e + 12, 4), 1); /* power-on: masked */
    tw(p, e, 8, UINT64_MAX);
    assert_int_equal(tr(p, e, 8), 0xfffffffffffffffcull);
    tw(p, e + 8, 4, 0x1234);
    tw(p, e + 12, 4, 0xffffffff);
    assert_int_equal(tr(p, e + 8, 8), 0x0000000100001234ull);
    tw(p, T_PBA, 8, UINT64_MAX); /* PBA is read-only */
    assert_int_equal(tr(p, T_PBA, 8), 0);
    /* Past the table: a miss, for the device's own registers. */
    assert_false(simpci_msix_read(p, 0, T_TABLE + T_NVEC * 16, 4, &(uint64_t){0}));
    assert_false(simpci_msix_read(p, 0, T_PBA + 8, 4, &(uint64_t){0}));
}

static void test_msix_function_mask(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    struct simpci_stats st;

    msix_enable(p, true);
    tw(p, T_TABLE + 3 * 16 + 12, 4, 0); /* entry 3 unmasked, function masked */
    simpci_raise(p, 3);
    assert_int_equal(f->irqs.n, 0);
    assert_int_equal(tr(p, T_PBA, 8), 1u << 3);
    msix_enable(p, false); /* clearing the function mask delivers */
    assert_int_equal(f->irqs.n, 1);
    assert_int_equal(f->irqs.v[0], 3);
    assert_int_equal(tr(p, T_PBA, 8), 0);
    simpci_raise(p, 3);
    assert_int_equal(f->irqs.n, 2);
    simpci_get_stats(p, &st);
    assert_int_equal(st.raised, 2);
    assert_int_equal(st.delivered, 2);
    assert_int_equal(st.pended, 1);
}

static void test_msix_entry_mask(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    struct simpci_stats st;

    msix_enable(p, false);
    simpci_raise(p, 5); /* entry 5 still masked (power-on) */
    simpci_raise(p, 7);
    assert_int_equal(f->irqs.n, 0);
    assert_int_equal(tr(p, T_PBA, 1), (1u << 5) | (1u << 7));
    tw(p, T_TABLE + 5 * 16 + 12, 1, 0);
    assert_int_equal(f->irqs.n, 1);
    assert_int_equal(f->irqs.v[0], 5);
    assert_int_equal(tr(p, T_PBA, 1), 1u << 7);
    simpci_raise(p, T_NVEC); /* beyond the table */
    simpci_raise(p, 100000);
    simpci_get_stats(p, &st);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(f->irqs.n, 1);
    /* Reset clears the PBA and masks everything again. */
    simpci_reset(p);
    assert_int_equal(tr(p, T_PBA, 8), 0);
    assert_int_equal(tr(p, T_TABLE + 5 * 16 + 12, 4), 1);
    assert_false(simpci_msix_enabled(p));
}

static void test_irq_configure_msix(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    struct simpci_stats st;
    unsigned granted = 0;

    simpci_raise(p, 1); /* disabled: dropped */
    assert_int_equal(simpci_irq_configure(p, 0, &granted), -EINVAL);
    assert_int_equal(simpci_irq_configure(p, 256, &granted), 0);
    assert_int_equal(granted, T_NVEC);
    assert_true(simpci_msix_enabled(p));
    assert_false(simpci_msi_enabled(p));
    assert_int_equal(cr(p, T_MSIX + 2, 2) & SIMPCI_MSIX_CTRL_MASKALL, 0);
    assert_int_equal(tr(p, T_TABLE + 2 * 16, 4), 0xfee00000u);
    assert_int_equal(tr(p, T_TABLE + 2 * 16 + 8, 4), 2);
    for (unsigned v = 0; v < T_NVEC; v++) {
        simpci_raise(p, v);
        assert_int_equal(f->irqs.v[v], v);
    }
    assert_int_equal(f->irqs.n, T_NVEC);
    simpci_irq_release(p);
    assert_false(simpci_msix_enabled(p));
    simpci_raise(p, 0);
    assert_int_equal(f->irqs.n, T_NVEC);
    simpci_get_stats(p, &st);
    assert_int_equal(st.dropped, 2);
    /* Fewer requested than the table: only those are unmasked. */
    assert_int_equal(simpci_irq_configure(p, 2, &granted), 0);
    assert_int_equal(granted, 2);
    simpci_raise(p, 4);
    assert_int_equal(f->irqs.n, T_NVEC);
    assert_int_equal(tr(p, T_PBA, 1), 1u << 4);
}

/* ---- MSI -------------------------------------------------------------------------- */

static void test_msi_path(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    uint32_t ctrl = T_MSI + SIMPCI_MSI_CTRL;
    struct simpci_stats st;

    simpci_raise(p, 0); /* disabled */
    assert_int_equal(f->irqs.n, 0);
    cw(p, ctrl, 2,
       SIMPCI_MSI_CTRL_ENABLE | (1u << SIMPCI_MSI_CTRL_MME_SHIFT)); /* 2 vectors */
    assert_true(simpci_msi_enabled(p));
    simpci_raise(p, 1);
    assert_int_equal(f->irqs.n, 1);
    assert_int_equal(f->irqs.v[0], 1);
    simpci_raise(p, 2); /* >= 2^MME */
    assert_int_equal(f->irqs.n, 1);
    cw(p, T_MSI + SIMPCI_MSI_MASK, 4, 0xffffffff); /* only 4 mask bits exist */
    assert_int_equal(cr(p, T_MSI + SIMPCI_MSI_MASK, 4), 0xf);
    simpci_raise(p, 0);
    assert_int_equal(f->irqs.n, 1);
    assert_int_equal(cr(p, T_MSI + SIMPCI_MSI_PENDING, 4), 1);
    cw(p, T_MSI + SIMPCI_MSI_PENDING, 4, 0); /* pending bits are read-only */
    assert_int_equal(cr(p, T_MSI + SIMPCI_MSI_PENDING, 4), 1);
    cw(p, T_MSI + SIMPCI_MSI_MASK, 4, 0xe); /* unmask 0: delivered */
    assert_int_equal(f->irqs.n, 2);
    assert_int_equal(f->irqs.v[1], 0);
    assert_int_equal(cr(p, T_MSI + SIMPCI_MSI_PENDING, 4), 0);
    simpci_get_stats(p, &st);
    assert_int_equal(st.raised, 4);
    assert_int_equal(st.delivered, 2);
    assert_int_equal(st.pended, 1);
    assert_int_equal(st.dropped, 2);
    /* Address low bits are read-only 0. */
    cw(p, T_MSI + SIMPCI_MSI_ADDR_LO, 4, 0xffffffff);
    assert_int_equal(cr(p, T_MSI + SIMPCI_MSI_ADDR_LO, 4), 0xfffffffc);
}

static void test_irq_configure_msi(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    unsigned granted = 0;

    assert_int_equal(simpci_irq_configure(p, 3, &granted), 0);
    assert_int_equal(granted, 2);
    assert_int_equal(simpci_irq_configure(p, 100, &granted), 0);
    assert_int_equal(granted, 4);
    assert_int_equal((cr(p, T_MSI + 2, 2) >> 4) & 7, 2);
    simpci_raise(p, 3);
    assert_int_equal(f->irqs.n, 1);
    simpci_irq_release(p);
    simpci_raise(p, 3);
    assert_int_equal(f->irqs.n, 1);
}

static void test_no_irq_caps(void **state)
{
    struct fixture f = {0};
    struct simpci *p = new_pci(&f, false);
    unsigned granted = 0;

    (void)state;
    assert_int_equal(simpci_irq_configure(p, 1, &granted), -ENOTSUP);
    simpci_raise(p, 0);
    assert_int_equal(f.irqs.n, 0);
    simpci_destroy(p);
}

/* ---- FLR ------------------------------------------------------------------------- */

static void test_flr_devctl(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    uint32_t devctl = T_PCIE + SIMPCI_PCIE_DEVCTL;
    unsigned granted;

    assert_int_equal(cr(p, devctl, 2), 0x2810);
    cw(p, SIMPCI_COMMAND, 2, SIMPCI_CMD_MEMORY | SIMPCI_CMD_MASTER);
    cw(p, SIMPCI_INTERRUPT_LINE, 1, 11);
    cw(p, 0x10, 4, 0xfeb00000);
    cw(p, devctl, 2, 0x0010);
    assert_int_equal(simpci_irq_configure(p, 8, &granted), 0);
    assert_int_equal(f->flrs, 0);

    cw(p, devctl, 2, 0x0010 | SIMPCI_PCIE_DEVCTL_FLR);
    assert_int_equal(f->flrs, 1);
    assert_int_equal(cr(p, SIMPCI_COMMAND, 2), 0);
    assert_int_equal(cr(p, SIMPCI_INTERRUPT_LINE, 1), 0);
    assert_int_equal(cr(p, 0x10, 4), 0);
    assert_int_equal(cr(p, devctl, 2), 0x2810); /* bit 15 reads 0 */
    assert_false(simpci_msix_enabled(p));
    assert_int_equal(tr(p, T_TABLE + 12, 4), 1);
    /* Identity and the capability chain survive. */
    assert_int_equal(cr(p, 0x00, 2), T_VENDOR);
    assert_int_equal(cr(p, SIMPCI_CAP_PTR, 1), T_PM);
    /* A byte write to the upper half of DevCtl also initiates it. */
    cw(p, devctl + 1, 1, 0x80);
    assert_int_equal(f->flrs, 2);
}

static void test_flr_not_capable(void **state)
{
    struct fixture *f = *state;
    struct simpci *p = f->p;
    uint32_t devctl = T_PCIE + SIMPCI_PCIE_DEVCTL;

    assert_int_equal(cr(p, T_PCIE + 4, 4) & SIMPCI_PCIE_DEVCAP_FLR, 0);
    cw(p, SIMPCI_COMMAND, 2, SIMPCI_CMD_MEMORY);
    cw(p, devctl, 2, SIMPCI_PCIE_DEVCTL_FLR);
    assert_int_equal(cr(p, SIMPCI_COMMAND, 2), SIMPCI_CMD_MEMORY);
}

/* ---- Builders and hooks ---------------------------------------------------------- */

static void test_builder_errors(void **state)
{
    struct fixture *f = *state;
    struct fixture g = {0};
    struct simpci *p = new_pci(&g, false);
    struct simpci_msix_layout l = {4, 0, 0x100, 0, 0x200};

    assert_int_equal(simpci_add_pm(f->p, 0xe0), -EEXIST);
    assert_int_equal(simpci_add_msi(f->p, 0xe0, 0), -EEXIST);
    assert_int_equal(simpci_add_pcie(p, 0x3c, true), -EINVAL); /* header */
    assert_int_equal(simpci_add_pcie(p, 0x42, true), -EINVAL); /* misaligned */
    assert_int_equal(simpci_add_pcie(p, 0xd0, true), -EINVAL); /* past 0xff */
    assert_int_equal(simpci_add_msi(p, 0x40, 6), -EINVAL);     /* MMC > 5 */
    assert_int_equal(simpci_add_msix(p, 0x40, &l), -EINVAL);   /* no BAR yet */
    assert_int_equal(simpci_set_bar(p, 0, 4096, DEXT_BAR_TYPE_M32), 0);
    l.table_off = 0x104;
    assert_int_equal(simpci_add_msix(p, 0x40, &l), -EINVAL); /* misaligned */
    l.table_off = 0xff8;
    assert_int_equal(simpci_add_msix(p, 0x40, &l), -EINVAL); /* past the BAR */
    l.table_off = 0x200;
    assert_int_equal(simpci_add_msix(p, 0x40, &l), -EINVAL); /* overlaps the PBA */
    l.table_off = 0x100;
    l.nvec = 0;
    assert_int_equal(simpci_add_msix(p, 0x40, &l), -EINVAL);
    l.nvec = 2049;
    assert_int_equal(simpci_add_msix(p, 0x40, &l), -EINVAL);
    l.nvec = 4;
    assert_int_equal(simpci_add_msix(p, 0x40, &l), 0);
    assert_int_equal(simpci_add_msix(p, 0x60, &l), -EEXIST);
    assert_int_equal(simpci_add_pm(p, 0x48), -EINVAL); /* overlaps MSI-X */
    assert_int_equal(simpci_add_pm(p, 0x4c), 0);
    simpci_destroy(p);
}

struct hook_rec {
    unsigned calls;
    uint32_t off, val, old;
    unsigned width;
};

static void rec_hook(struct simpci *p, void *opaque, uint32_t off, unsigned width,
                     uint32_t val, uint32_t old)
{
    struct hook_rec *r = opaque;

    (void)p;
    r->calls++;
    r->off = off;
    r->width = width;
    r->val = val;
    r->old = old;
}

static void test_cfg_hook(void **state)
{
    struct fixture f = {0};
    struct simpci *p = new_pci(&f, false);
    struct hook_rec r = {0};

    (void)state;
    assert_int_equal(simpci_cfg_init(p, 0x44, 4, 0xaabbccdd, 0x0000ffff, 0), 0);
    assert_int_equal(simpci_cfg_hook(p, 0x46, 2, rec_hook, &r), 0);
    assert_int_equal(simpci_cfg_hook(p, 0xfff, 2, rec_hook, &r), -EINVAL);
    cw(p, 0x44, 2, 0x1111); /* misses the hook */
    assert_int_equal(r.calls, 0);
    cw(p, 0x45, 2, 0x2222);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.off, 0x45);
    assert_int_equal(r.width, 2);
    assert_int_equal(r.val, 0x2222);
    assert_int_equal(r.old, 0xbb11);
    assert_int_equal(cr(p, 0x44, 4), 0xaabb2211);
    simpci_reset(p);
    assert_int_equal(cr(p, 0x44, 4), 0xaabbccdd);
    assert_int_equal(simpci_cfg_init(p, 0xffe, 4, 0, 0, 0), -EINVAL);
    /* Hook table full: a builder fails whole, leaving no half-built capability. */
    while (simpci_cfg_hook(p, 0x80, 1, rec_hook, &r) == 0) {
    }
    assert_int_equal(simpci_cfg_hook(p, 0x80, 1, rec_hook, &r), -ENOSPC);
    assert_int_equal(simpci_add_pm(p, 0x40), -ENOSPC);
    assert_int_equal(cr(p, SIMPCI_CAP_PTR, 1), 0);
    assert_int_equal(cr(p, SIMPCI_STATUS, 2) & SIMPCI_STATUS_CAP_LIST, 0);
    simpci_destroy(p);
}

/* ---- Parsers ------------------------------------------------------------------------ */

static void test_parse_numbers(void **state)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } sizes[] = {
        {"4096", 0, 4096},
        {"4K", 0, 4096},
        {"4k", 0, 4096},
        {"1M", 0, 1u << 20},
        {"1G", 0, 1u << 30},
        {"0x1000", 0, 4096},
        {"0x10K", 0, 16 * 1024},
        {"", -EINVAL, 0},
        {"K", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"+4", -EINVAL, 0},
        {" 4", -EINVAL, 0},
        {"4KB", -EINVAL, 0},
        {"4T", -EINVAL, 0},
        {"0x", -EINVAL, 0},
        {"17179869184G", -EINVAL, 0},
        {"18446744073709551616", -EINVAL, 0},
        {"18446744073709551615", 0, UINT64_MAX},
    };
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        v = 0;
        assert_int_equal(simpci_parse_size(sizes[i].s, &v), sizes[i].rc);
        if (sizes[i].rc == 0) {
            assert_int_equal(v, sizes[i].v);
        }
    }
    assert_int_equal(simpci_parse_u64("64", &v), 0);
    assert_int_equal(v, 64);
    assert_int_equal(simpci_parse_u64("0xfF", &v), 0);
    assert_int_equal(v, 255);
    assert_int_equal(simpci_parse_u64("64K", &v), -EINVAL);
    assert_int_equal(simpci_parse_u64("12a", &v), -EINVAL);
    assert_int_equal(simpci_parse_u64(NULL, &v), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_cap_chain, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing, setup_full, teardown),
        cmocka_unit_test(test_bar_64bit_large),
        cmocka_unit_test_setup_teardown(test_masks_ro_rw, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_masks_rw1c, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_pm_state, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_bad_access, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_msix_table_masks, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_msix_function_mask, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_msix_entry_mask, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_irq_configure_msix, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_msi_path, setup_msi, teardown),
        cmocka_unit_test_setup_teardown(test_irq_configure_msi, setup_msi, teardown),
        cmocka_unit_test(test_no_irq_caps),
        cmocka_unit_test_setup_teardown(test_flr_devctl, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_flr_not_capable, setup_msi, teardown),
        cmocka_unit_test_setup_teardown(test_builder_errors, setup_full, teardown),
        cmocka_unit_test(test_cfg_hook),
        cmocka_unit_test(test_parse_numbers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
