/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * simpci: the core of a simulated PCI Express function, shared by the
 * simulated devices (sim:testdev, later sim:nvme).
 *
 * What it models, the way hardware behaves (PCI Local Bus 3.0 §6, PCIe Base
 * 4.0 §7):
 *  - a 4 KiB configuration space with a type 0 header; every byte has a write
 *    mask (RW bits) and a write-one-to-clear mask (RW1C bits); all other bits
 *    are read-only; unimplemented space reads 0 and ignores writes;
 *  - BAR registers with sizing semantics (writing all ones reads back the size
 *    mask with the read-only type bits; a 64-bit BAR uses two registers);
 *  - a capability list built by the device: PM, MSI (64-bit, per-vector
 *    masking), PCIe v2 endpoint (optionally FLR capable), MSI-X;
 *  - the MSI-X table and PBA for accesses inside the BAR that hosts them;
 *  - interrupt delivery with masking and pending bits (simpci_raise);
 *  - reset to power-on values (FLR, hot reset).
 *
 * Config side effects go through a per-register hook table (simpci_cfg_hook):
 * a write is first applied through the masks, then every hook whose range it
 * touches runs. The capability builders register their own hooks.
 *
 * Threading: a struct simpci is not thread-safe. The device serialises every
 * call (the dext core holds the device lock around device ops). Callbacks made
 * from inside simpci (host->irq_raise, the FLR callback) run on the caller's
 * thread, inside the call that triggered them.
 *
 * Errors: 0 or a negative errno.
 */
#ifndef VFIO_DEXT_SIMPCI_H
#define VFIO_DEXT_SIMPCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dext/device.h"

/* ---- Standard register offsets and bits used by simulated devices -------- */

#define SIMPCI_CFG_SIZE 4096u

#define SIMPCI_VENDOR_ID        0x00u
#define SIMPCI_DEVICE_ID        0x02u
#define SIMPCI_COMMAND          0x04u
#define SIMPCI_STATUS           0x06u
#define SIMPCI_REVISION         0x08u
#define SIMPCI_CLASS_PROG       0x09u /* 24-bit class code at 0x09..0x0b */
#define SIMPCI_HEADER_TYPE      0x0eu
#define SIMPCI_BAR0             0x10u
#define SIMPCI_SUBSYS_VENDOR_ID 0x2cu
#define SIMPCI_SUBSYS_ID        0x2eu
#define SIMPCI_CAP_PTR          0x34u
#define SIMPCI_INTERRUPT_LINE   0x3cu
#define SIMPCI_INTERRUPT_PIN    0x3du

#define SIMPCI_CMD_IO           0x0001u
#define SIMPCI_CMD_MEMORY       0x0002u
#define SIMPCI_CMD_MASTER       0x0004u
#define SIMPCI_CMD_PARITY       0x0040u
#define SIMPCI_CMD_SERR         0x0100u
#define SIMPCI_CMD_INTX_DISABLE 0x0400u

#define SIMPCI_STATUS_CAP_LIST 0x0010u
#define SIMPCI_STATUS_RW1C     0xf900u /* parity, target/master aborts, SERR */

#define SIMPCI_CAP_ID_PM   0x01u
#define SIMPCI_CAP_ID_MSI  0x05u
#define SIMPCI_CAP_ID_PCIE 0x10u
#define SIMPCI_CAP_ID_MSIX 0x11u

/* PM capability (PCI PM 1.2 §3.2). */
#define SIMPCI_PM_PMC                 0x02u
#define SIMPCI_PM_PMCSR               0x04u
#define SIMPCI_PM_PMCSR_STATE         0x0003u /* 0 = D0, 3 = D3hot; D1/D2 unsupported */
#define SIMPCI_PM_PMCSR_NO_SOFT_RESET 0x0008u
#define SIMPCI_PM_SIZE                8u

/* MSI capability, 64-bit with per-vector masking (PCI 3.0 §6.8.1). */
#define SIMPCI_MSI_CTRL           0x02u
#define SIMPCI_MSI_ADDR_LO        0x04u
#define SIMPCI_MSI_ADDR_HI        0x08u
#define SIMPCI_MSI_DATA           0x0cu
#define SIMPCI_MSI_MASK           0x10u
#define SIMPCI_MSI_PENDING        0x14u
#define SIMPCI_MSI_SIZE           0x18u
#define SIMPCI_MSI_CTRL_ENABLE    0x0001u
#define SIMPCI_MSI_CTRL_MMC_SHIFT 1
#define SIMPCI_MSI_CTRL_MME_SHIFT 4
#define SIMPCI_MSI_CTRL_MME_MASK  0x0070u
#define SIMPCI_MSI_CTRL_64BIT     0x0080u
#define SIMPCI_MSI_CTRL_PVM       0x0100u

/* PCI Express capability v2, endpoint (PCIe Base 4.0 §7.5.3). */
#define SIMPCI_PCIE_FLAGS       0x02u
#define SIMPCI_PCIE_DEVCAP      0x04u
#define SIMPCI_PCIE_DEVCTL      0x08u
#define SIMPCI_PCIE_DEVSTA      0x0au
#define SIMPCI_PCIE_LNKCAP      0x0cu
#define SIMPCI_PCIE_LNKCTL      0x10u
#define SIMPCI_PCIE_LNKSTA      0x12u
#define SIMPCI_PCIE_DEVCAP2     0x24u
#define SIMPCI_PCIE_DEVCTL2     0x28u
#define SIMPCI_PCIE_LNKCAP2     0x2cu
#define SIMPCI_PCIE_LNKCTL2     0x30u
#define SIMPCI_PCIE_SIZE        0x3cu
#define SIMPCI_PCIE_DEVCAP_FLR  0x10000000u /* bit 28 */
#define SIMPCI_PCIE_DEVCTL_FLR  0x8000u     /* bit 15, always reads 0 */
#define SIMPCI_PCIE_DEVSTA_RW1C 0x000fu     /* error detected bits */

/* MSI-X capability (PCI 3.0 §6.8.2). */
#define SIMPCI_MSIX_CTRL         0x02u
#define SIMPCI_MSIX_TABLE        0x04u
#define SIMPCI_MSIX_PBA          0x08u
#define SIMPCI_MSIX_SIZE         0x0cu
#define SIMPCI_MSIX_CTRL_QSIZE   0x07ffu
#define SIMPCI_MSIX_CTRL_MASKALL 0x4000u
#define SIMPCI_MSIX_CTRL_ENABLE  0x8000u
#define SIMPCI_MSIX_ENTRY_SIZE   16u
#define SIMPCI_MSIX_ENTRY_CTRL   0x0cu
#define SIMPCI_MSIX_ENTRY_MASKED 0x1u
#define SIMPCI_MSIX_MAX_VECTORS  2048u

_Static_assert(SIMPCI_CFG_SIZE == DEXT_CONFIG_SPACE_SIZE, "PCIe: 4 KiB config space");

/* ---- Creation ------------------------------------------------------------- */

struct simpci;

/* The identity written into the header. class_code is 24 bits. */
struct simpci_id {
    uint16_t vendor;
    uint16_t device;
    uint16_t subsys_vendor;
    uint16_t subsys_device;
    uint32_t class_code;
    uint8_t revision;
};

/*
 * Called when software initiates a Function Level Reset (PCIe Device Control
 * bit 15 written 1, FLR-capable function). The device must reset itself and
 * call simpci_reset(). Runs inside simpci_config_write(), after the write.
 */
typedef void (*simpci_flr_fn)(void *opaque);

/*
 * Create a function with a type 0 header, no BARs and no capabilities.
 * `host` is copied (NULL: no DMA, interrupts are dropped); `flr` may be NULL
 * (then an FLR only resets simpci's own state).
 * Returns 0 and *out, -EINVAL (bad class code) or -ENOMEM.
 */
int simpci_create(const struct simpci_id *id, const struct vdx_dev_host *host,
                  simpci_flr_fn flr, void *flr_opaque, struct simpci **out);

/* Free everything. Accepts NULL. */
void simpci_destroy(struct simpci *p);

/*
 * Declare BAR `bar` (0..5): `size` a power of two, `type` DEXT_BAR_TYPE_*.
 * Memory BARs: size >= 16, at most 2 GiB when 32-bit; a 64-bit BAR also
 * takes register bar + 1, which must be free. I/O BARs: 4..256 bytes.
 * Call before adding MSI-X. Returns 0, -EINVAL (bad size, type or index) or
 * -EBUSY (register already used).
 */
int simpci_set_bar(struct simpci *p, unsigned bar, uint64_t size, uint8_t type);

/*
 * Capability builders. `off` is the capability's config offset: dword
 * aligned, >= 0x40, and the structure must fit below 0x100 without
 * overlapping another capability. Each capability is appended to the list
 * (Status bit 4 set, Capabilities Pointer / previous Next Pointer linked).
 * Each kind may be added once. Returns 0, -EINVAL (bad offset or parameter),
 * -EEXIST (added twice) or -ENOSPC (capability or hook table full). On error
 * nothing was changed.
 */

/* PM: version 3, D0 and D3hot, No_Soft_Reset; PMCSR power state RW (writes
 * of the unsupported D1/D2 are ignored, as the PM spec requires). */
int simpci_add_pm(struct simpci *p, uint8_t off);

/* MSI: 64-bit address, per-vector masking; `mmc_log2` (0..5) is the Multiple
 * Message Capable field, i.e. 1 << mmc_log2 vectors. */
int simpci_add_msi(struct simpci *p, uint8_t off, unsigned mmc_log2);

/* PCIe capability v2, endpoint, x1 2.5 GT/s. With `flr`, Device
 * Capabilities bit 28 is set and writing Device Control bit 15 resets the
 * function (the simpci_flr_fn given to simpci_create). */
int simpci_add_pcie(struct simpci *p, uint8_t off, bool flr);

/* MSI-X layout: table and PBA windows inside memory BARs declared before. */
struct simpci_msix_layout {
    unsigned nvec;      /* table size, 1..2048 */
    unsigned table_bir; /* BAR holding the table */
    uint32_t table_off; /* 8-byte aligned; table is nvec * 16 bytes */
    unsigned pba_bir;   /* BAR holding the PBA */
    uint32_t pba_off;   /* 8-byte aligned; PBA is ceil(nvec / 64) * 8 bytes */
};

/* MSI-X: windows must fit in their BARs and not overlap; -ENOMEM possible.
 * Power-on state: disabled, every entry masked, PBA clear. */
int simpci_add_msix(struct simpci *p, uint8_t off, const struct simpci_msix_layout *l);

/*
 * Register a side effect for config writes touching [off, off + len).
 * `fn` runs after the write went through the masks, with the access as
 * issued (off, width, val) and the value the accessed bytes had before.
 * Returns 0, -EINVAL (range outside config space) or -ENOSPC.
 */
typedef void (*simpci_cfg_hook_fn)(struct simpci *p, void *opaque, uint32_t off,
                                   unsigned width, uint32_t val, uint32_t old);
int simpci_cfg_hook(struct simpci *p, uint16_t off, uint16_t len, simpci_cfg_hook_fn fn,
                    void *opaque);

/*
 * Set a config register's power-on value (the value simpci_reset() restores)
 * and masks directly, for device-specific registers such as a vendor
 * capability. wmask: RW bits; w1c: RW1C bits; other bits read-only.
 * The builders above use it; like them, call it at creation time only.
 * Returns 0 or -EINVAL (width not 1/2/4, or off + width > 4096).
 */
int simpci_cfg_init(struct simpci *p, uint32_t off, unsigned width, uint32_t val,
                    uint32_t wmask, uint32_t w1c);

/* ---- The device ops helpers ----------------------------------------------- */

/* Config access as the device ops define it: width 1, 2 or 4, any offset with
 * off + width <= 4096 (else -EINVAL). Little-endian. */
int simpci_config_read(struct simpci *p, uint32_t off, unsigned width, uint32_t *val);
int simpci_config_write(struct simpci *p, uint32_t off, unsigned width, uint32_t val);

/* The bar_info op: size 0 for unused BARs and the upper half of a 64-bit BAR.
 * Returns 0 or -EINVAL (bar >= 6). */
int simpci_bar_info(const struct simpci *p, unsigned bar, struct vdx_bar_info *info);

/*
 * MSI-X table / PBA emulation for the BAR that hosts them. If any byte of
 * [off, off + width) lies in the table or PBA window of `bar`, the access is
 * handled here and the function returns true: table bytes behave like
 * hardware (address low bits 1:0 read 0, vector control only bit 0
 * writable), PBA is read-only, bytes outside the windows read 0 and ignore
 * writes. Returns false (nothing done) when the access misses both windows.
 * width is 1, 2, 4 or 8. Clearing an entry mask delivers its pending vector.
 */
bool simpci_msix_read(struct simpci *p, unsigned bar, uint64_t off, unsigned width,
                      uint64_t *val);
bool simpci_msix_write(struct simpci *p, unsigned bar, uint64_t off, unsigned width,
                       uint64_t val);

/*
 * The irq_configure op done the way a host OS sets up interrupts: with
 * MSI-X, program entries 0..granted-1 (address 0xfee00000, data = index),
 * unmask them, clear the function mask and enable MSI-X; without MSI-X,
 * enable MSI with the largest power of two vectors <= requested and
 * unmask them. granted = min(requested, table size) for MSI-X. Pending
 * vectors that became deliverable are delivered.
 * Returns 0, -EINVAL (requested 0) or -ENOTSUP (no MSI-X and no MSI).
 */
int simpci_irq_configure(struct simpci *p, unsigned requested, unsigned *granted);

/* The irq_release op: mask every MSI-X entry and disable MSI-X and MSI. */
void simpci_irq_release(struct simpci *p);

/* Return config space, MSI-X table and PBA to their power-on values.
 * Statistics are kept. */
void simpci_reset(struct simpci *p);

/* ---- The device side ------------------------------------------------------ */

/*
 * The function signals `vector`:
 *  - MSI-X enabled: vector >= table size -> dropped; function masked or
 *    entry masked -> PBA bit set (delivered when unmasked); else delivered.
 *  - else MSI enabled: vector >= enabled vector count -> dropped; masked ->
 *    pending bit set (delivered when unmasked); else delivered.
 *  - else dropped (no INTx).
 * Delivered means host->irq_raise(ctx, vector). Every outcome is counted.
 */
void simpci_raise(struct simpci *p, unsigned vector);

/* Read config space as the device sees it (no side effects). Returns 0 for
 * out-of-range or bad width. */
uint32_t simpci_cfg_get(const struct simpci *p, uint32_t off, unsigned width);

/* Device-side set of status bits, ignoring write masks (e.g. an error bit
 * that software then clears with RW1C). Ignored when out of range. */
void simpci_cfg_set_bits(struct simpci *p, uint32_t off, unsigned width, uint32_t bits);

/* Whether MSI-X / MSI is currently enabled by software. */
bool simpci_msix_enabled(const struct simpci *p);
bool simpci_msi_enabled(const struct simpci *p);

/* Interrupt statistics since creation (not cleared by reset). */
struct simpci_stats {
    uint64_t raised;    /* simpci_raise calls */
    uint64_t delivered; /* host->irq_raise calls, including deferred ones */
    uint64_t pended;    /* raises latched in PBA / MSI pending bits */
    uint64_t dropped;   /* raises lost: disabled, out of range or no host */
};
void simpci_get_stats(const struct simpci *p, struct simpci_stats *st);

/* ---- Simulated device kinds (the registry is src/devices/devices.c) ------- */

/* One key=value option of a SPEC, pointing into the parser's buffer. */
struct simpci_kv {
    const char *key;
    const char *val;
};

struct simpci_kind_args {
    const struct simpci_kv *kv; /* the kind's own options (generic ones removed) */
    size_t nkv;
    const struct vdx_dev_host *host; /* may be NULL */
    const char *bdf;                 /* "DDDD:BB:DD.F", for log messages */
};

struct simpci_kind {
    const char *name;              /* "sim:testdev" */
    const char *const *keys;       /* the kind's option keys, NULL-terminated */
    const struct vdx_dev_ops *ops; /* ops->kind == name */
    /* Create an instance. Keys are already checked against `keys` and unique.
     * Returns 0 and *dev, or -errno with a message in err (err may be NULL). */
    int (*create)(const struct simpci_kind_args *args, void **dev, char *err,
                  size_t errlen);
};

extern const struct simpci_kind simpci_kind_testdev;

/* ---- Helpers for kinds ------------------------------------------------------ */

/* Parse a decimal or 0x-prefixed unsigned number, nothing else. Pure.
 * Returns 0 or -EINVAL (empty, junk, sign, overflow). */
int simpci_parse_u64(const char *s, uint64_t *out);

/* Parse a size: a number as simpci_parse_u64, optionally followed by one of
 * K, M, G (powers of 1024; lower case too). Returns 0 or -EINVAL (also on
 * overflow). */
int simpci_parse_size(const char *s, uint64_t *out);

/* snprintf into err when err is non-NULL and errlen > 0. */
void simpci_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* VFIO_DEXT_SIMPCI_H */
