/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim:testdev — the simulated PCIe endpoint described in testdev.h.
 *
 * BAR0 registers go through a register table (offset, size, access, backing
 * field, write mask, side effect). The DMA engine runs synchronously inside
 * the DMA_CMD write and only touches memory through host->dma_rw, in chunks
 * of a bounce buffer allocated at create time (no allocation on the I/O
 * path). BAR2 is a memfd mapping shared with clients through bar_fd.
 *
 * Threading: like every device op, all functions run under the dext's device
 * lock; testdev starts no thread. The counters op reports totals since
 * creation, while the BAR0 counter registers return to 0 on reset.
 */
#include "devices/simpci.h"
#include "devices/testdev.h"

#include "common/log.h"
#include "platform/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TD_NAME        "sim:testdev"
#define TD_BOUNCE_SIZE (64u * 1024u)
#define TD_BAR2_MIN    (4ull * 1024u)
#define TD_BAR2_MAX    (1024ull * 1024u * 1024u)
#define TD_CMD_OP_MASK (TESTDEV_DMA_CMD_COPY | TESTDEV_DMA_CMD_FILL)
#define TD_CMD_VALID   (TD_CMD_OP_MASK | TESTDEV_DMA_CMD_IRQ | TESTDEV_DMA_CMD_VECTOR(0xff))

_Static_assert((TESTDEV_MSI_VECTORS & (TESTDEV_MSI_VECTORS - 1)) == 0,
               "MSI vector count is a power of two");
_Static_assert(TESTDEV_MSIX_TABLE_OFF + TESTDEV_MAX_VECTORS * SIMPCI_MSIX_ENTRY_SIZE <=
                   TESTDEV_BAR0_SIZE,
               "the largest MSI-X table fits BAR0");
_Static_assert(TESTDEV_MSIX_PBA_OFF + TESTDEV_MAX_VECTORS / 8 <= TESTDEV_MSIX_TABLE_OFF,
               "the largest PBA ends before the table");

/* BAR0 register file; every field returns to its reset value on reset. */
struct td_regs {
    uint32_t id;
    uint32_t version;
    uint32_t scratch;
    uint64_t scratch64;
    uint64_t dma_src;
    uint64_t dma_dst;
    uint32_t dma_len;
    uint32_t dma_status;
    uint32_t dma_fill;
    uint32_t iommu_faults;
    uint32_t dma_done;
    uint32_t irqs;
};

/* Totals since creation, for the counters op (not cleared by reset). */
struct td_stats {
    uint64_t dma_done;
    uint64_t dma_bad_cmds;
    uint64_t iommu_faults;
    uint64_t resets_flr;
    uint64_t resets_hot;
};

struct testdev {
    struct simpci *pci;
    struct vdx_dev_host host; /* zeroed when none was given */
    char bdf[16];
    unsigned nvec;
    unsigned msix_bar; /* BAR of the MSI-X table and PBA: 0 or 2 */
    uint64_t bar2_size;
    int bar2_fd;
    uint8_t *bar2;   /* bar2_size bytes, shared with bar2_fd */
    uint8_t *bounce; /* TD_BOUNCE_SIZE bytes */
    struct td_regs regs;
    struct td_stats stats;
    struct vdx_ratelimit rl;
};

/* ---- BAR0 register table ------------------------------------------------ */

#define TD_R        0x1u
#define TD_W        0x2u
#define TD_NOFIELD  ((size_t)-1)
#define TD_FIELD(f) offsetof(struct td_regs, f)

struct td_reg {
    uint32_t off;
    uint8_t size;   /* 4 or 8 */
    uint8_t flags;  /* TD_R: reads the field (else 0); TD_W: accepts writes */
    size_t field;   /* offset in struct td_regs, or TD_NOFIELD */
    uint64_t wmask; /* bits a write stores into the field */
    void (*on_write)(struct testdev *td, uint64_t val); /* side effect or NULL */
};

static void dma_cmd_write(struct testdev *td, uint64_t val);
static void raise_write(struct testdev *td, uint64_t val);

static const struct td_reg td_reg_table[] = {
    {TESTDEV_REG_ID, 4, TD_R, TD_FIELD(id), 0, NULL},
    {TESTDEV_REG_VERSION, 4, TD_R, TD_FIELD(version), 0, NULL},
    {TESTDEV_REG_SCRATCH, 4, TD_R | TD_W, TD_FIELD(scratch), 0xffffffffu, NULL},
    {TESTDEV_REG_SCRATCH64, 8, TD_R | TD_W, TD_FIELD(scratch64), UINT64_MAX, NULL},
    {TESTDEV_REG_DMA_SRC, 8, TD_R | TD_W, TD_FIELD(dma_src), UINT64_MAX, NULL},
    {TESTDEV_REG_DMA_DST, 8, TD_R | TD_W, TD_FIELD(dma_dst), UINT64_MAX, NULL},
    {TESTDEV_REG_DMA_LEN, 4, TD_R | TD_W, TD_FIELD(dma_len), 0xffffffffu, NULL},
    {TESTDEV_REG_DMA_CMD, 4, TD_W, TD_NOFIELD, 0, dma_cmd_write},
    {TESTDEV_REG_DMA_STATUS, 4, TD_R, TD_FIELD(dma_status), 0, NULL},
    {TESTDEV_REG_DMA_FILL, 4, TD_R | TD_W, TD_FIELD(dma_fill), 0xffu, NULL},
    {TESTDEV_REG_RAISE, 4, TD_W, TD_NOFIELD, 0, raise_write},
    {TESTDEV_REG_IOMMU_FAULTS, 4, TD_R, TD_FIELD(iommu_faults), 0, NULL},
    {TESTDEV_REG_DMA_DONE, 4, TD_R, TD_FIELD(dma_done), 0, NULL},
    {TESTDEV_REG_IRQS, 4, TD_R, TD_FIELD(irqs), 0, NULL},
};

enum td_part { PART_NONE, PART_FULL, PART_LO, PART_HI };

static const struct td_reg *find_reg(uint64_t off)
{
    for (size_t i = 0; i < sizeof(td_reg_table) / sizeof(td_reg_table[0]); i++) {
        const struct td_reg *r = &td_reg_table[i];

        if (off >= r->off && off - r->off < r->size) {
            return r;
        }
    }
    return NULL;
}

/* The part of r an access covers: all of it, or one half of an 8-byte one. */
static enum td_part reg_part(const struct td_reg *r, uint64_t off, unsigned width)
{
    if (off == r->off && width == r->size) {
        return PART_FULL;
    }
    if (r->size == 8 && width == 4 && off == r->off) {
        return PART_LO;
    }
    if (r->size == 8 && width == 4 && off == r->off + 4) {
        return PART_HI;
    }
    return PART_NONE;
}

static uint64_t reg_load(const struct testdev *td, const struct td_reg *r)
{
    const char *p;
    uint32_t v32;
    uint64_t v64;

    if (r->field == TD_NOFIELD || !(r->flags & TD_R)) {
        return 0;
    }
    p = (const char *)&td->regs + r->field;
    if (r->size == 8) {
        memcpy(&v64, p, sizeof(v64));
        return v64;
    }
    memcpy(&v32, p, sizeof(v32));
    return v32;
}

static void reg_store(struct testdev *td, const struct td_reg *r, uint64_t v)
{
    char *p = (char *)&td->regs + r->field;
    uint32_t v32 = (uint32_t)v;

    if (r->size == 8) {
        memcpy(p, &v, sizeof(v));
    } else {
        memcpy(p, &v32, sizeof(v32));
    }
}

static uint64_t bar0_read(const struct testdev *td, uint64_t off, unsigned width)
{
    const struct td_reg *r = find_reg(off);
    enum td_part part = r ? reg_part(r, off, width) : PART_NONE;
    uint64_t v;

    if (part == PART_NONE) {
        return 0;
    }
    v = reg_load(td, r);
    if (part == PART_LO) {
        return v & 0xffffffffu;
    }
    return part == PART_HI ? v >> 32 : v;
}

static void bar0_write(struct testdev *td, uint64_t off, unsigned width, uint64_t val)
{
    const struct td_reg *r = find_reg(off);
    enum td_part part = r ? reg_part(r, off, width) : PART_NONE;
    uint64_t cur, full = val;

    if (part == PART_NONE || !(r->flags & TD_W)) {
        return;
    }
    cur = reg_load(td, r);
    if (part == PART_LO) {
        full = (cur & ~0xffffffffull) | (val & 0xffffffffu);
    } else if (part == PART_HI) {
        full = (cur & 0xffffffffu) | (val << 32);
    }
    if (r->field != TD_NOFIELD) {
        reg_store(td, r, (cur & ~r->wmask) | (full & r->wmask));
    }
    if (r->on_write) {
        r->on_write(td, full);
    }
}

/* ---- Interrupts and the DMA engine ---------------------------------------- */

static void td_raise(struct testdev *td, unsigned vector)
{
    td->regs.irqs++;
    simpci_raise(td->pci, vector);
}

static void raise_write(struct testdev *td, uint64_t val)
{
    td_raise(td, (unsigned)(uint32_t)val);
}

/* One transfer of at most TD_BOUNCE_SIZE bytes through the IOMMU. */
static int dma_xfer(struct testdev *td, uint64_t bus, size_t len, enum vdx_dma_dir dir)
{
    if (!td->host.dma_rw) {
        return -ENODEV;
    }
    return td->host.dma_rw(td->host.ctx, bus, td->bounce, len, dir);
}

/* [bus, bus + len) must not wrap: no IOMMU maps past the top of the space. */
static bool bus_range_ok(uint64_t bus, uint64_t len)
{
    return bus <= UINT64_MAX - (len - 1);
}

/* Chunks completed before a fault stay written, as on hardware. */
static int dma_copy(struct testdev *td, uint64_t src, uint64_t dst, uint32_t len)
{
    if (!bus_range_ok(src, len) || !bus_range_ok(dst, len)) {
        return -EFAULT;
    }
    for (uint32_t done = 0; done < len;) {
        size_t n = len - done < TD_BOUNCE_SIZE ? len - done : TD_BOUNCE_SIZE;
        int rc = dma_xfer(td, src + done, n, VDX_DMA_TO_DEVICE);

        if (rc == 0) {
            rc = dma_xfer(td, dst + done, n, VDX_DMA_FROM_DEVICE);
        }
        if (rc) {
            return rc;
        }
        done += (uint32_t)n;
    }
    return 0;
}

static int dma_fill(struct testdev *td, uint64_t dst, uint32_t len, uint8_t byte)
{
    if (!bus_range_ok(dst, len)) {
        return -EFAULT;
    }
    memset(td->bounce, byte, len < TD_BOUNCE_SIZE ? len : TD_BOUNCE_SIZE);
    for (uint32_t done = 0; done < len;) {
        size_t n = len - done < TD_BOUNCE_SIZE ? len - done : TD_BOUNCE_SIZE;
        int rc = dma_xfer(td, dst + done, n, VDX_DMA_FROM_DEVICE);

        if (rc) {
            return rc;
        }
        done += (uint32_t)n;
    }
    return 0;
}

static bool dma_cmd_ok(uint32_t cmd, uint32_t len)
{
    uint32_t op = cmd & TD_CMD_OP_MASK;

    return !(cmd & ~TD_CMD_VALID) &&
           (op == TESTDEV_DMA_CMD_COPY || op == TESTDEV_DMA_CMD_FILL) && len != 0 &&
           len <= TESTDEV_DMA_MAX_LEN;
}

static void dma_finish(struct testdev *td, uint32_t cmd, int rc)
{
    if (rc == -EFAULT) {
        td->regs.iommu_faults++;
        td->stats.iommu_faults++;
    }
    if (rc) {
        vdx_log_ratelimited(&td->rl, VDX_LOG_DEBUG,
                            "%s: " TD_NAME ": DMA command 0x%x failed: %s", td->bdf, cmd,
                            strerror(-rc));
    }
    td->regs.dma_status = rc ? TESTDEV_DMA_FAULT : TESTDEV_DMA_OK;
    td->regs.dma_done++;
    td->stats.dma_done++;
    if (cmd & TESTDEV_DMA_CMD_IRQ) {
        td_raise(td, (cmd >> 8) & 0xffu);
    }
}

static void dma_cmd_write(struct testdev *td, uint64_t val)
{
    uint32_t cmd = (uint32_t)val;
    const struct td_regs *r = &td->regs;
    int rc;

    if (!dma_cmd_ok(cmd, r->dma_len)) {
        td->regs.dma_status = TESTDEV_DMA_BADCMD;
        td->stats.dma_bad_cmds++;
        vdx_log_ratelimited(&td->rl, VDX_LOG_DEBUG,
                            "%s: " TD_NAME ": bad DMA command 0x%x (length %u)", td->bdf,
                            cmd, r->dma_len);
        return;
    }
    if (cmd & TESTDEV_DMA_CMD_COPY) {
        rc = dma_copy(td, r->dma_src, r->dma_dst, r->dma_len);
    } else {
        rc = dma_fill(td, r->dma_dst, r->dma_len, (uint8_t)r->dma_fill);
    }
    dma_finish(td, cmd, rc);
}

/* ---- Reset ------------------------------------------------------------------- */

static void bar2_zero(struct testdev *td)
{
#ifdef MADV_REMOVE
    /* Frees the pages instead of touching up to 1 GiB; reads then see zeros. */
    if (madvise(td->bar2, td->bar2_size, MADV_REMOVE) == 0) {
        return;
    }
#endif
    memset(td->bar2, 0, td->bar2_size);
}

static void td_reset_state(struct testdev *td)
{
    td->regs = (struct td_regs){.id = TESTDEV_ID_MAGIC, .version = 1};
    simpci_reset(td->pci);
    bar2_zero(td);
}

/* simpci's FLR callback: PCIe Device Control bit 15 was written. */
static void td_flr(void *opaque)
{
    struct testdev *td = opaque;

    td_reset_state(td);
    td->stats.resets_flr++;
}

static int td_reset(void *dev, enum dext_reset_method method)
{
    struct testdev *td = dev;

    switch (method) {
    case DEXT_RESET_FUNCTION:
        td_flr(td);
        return 0;
    case DEXT_RESET_HOT:
        td_reset_state(td);
        td->stats.resets_hot++;
        return 0;
    default:
        return -ENOTSUP;
    }
}

/* ---- Ops ---------------------------------------------------------------------- */

static int td_config_read(void *dev, uint32_t offset, unsigned width, uint32_t *val)
{
    return simpci_config_read(((struct testdev *)dev)->pci, offset, width, val);
}

static int td_config_write(void *dev, uint32_t offset, unsigned width, uint32_t val)
{
    return simpci_config_write(((struct testdev *)dev)->pci, offset, width, val);
}

static int td_bar_info(void *dev, unsigned bar, struct vdx_bar_info *info)
{
    return simpci_bar_info(((struct testdev *)dev)->pci, bar, info);
}

static bool mmio_width_ok(unsigned width)
{
    return width == 1 || width == 2 || width == 4 || width == 8;
}

static bool in_bar(uint64_t off, unsigned width, uint64_t size)
{
    return off < size && width <= size - off;
}

static int td_mmio_read(void *dev, unsigned bar, uint64_t off, unsigned width,
                        uint64_t *val)
{
    struct testdev *td = dev;
    uint64_t v = 0;

    if (!mmio_width_ok(width) || !val) {
        return -EINVAL;
    }
    if (bar == 0 && in_bar(off, width, TESTDEV_BAR0_SIZE)) {
        if (!simpci_msix_read(td->pci, 0, off, width, val)) {
            *val = bar0_read(td, off, width);
        }
        return 0;
    }
    if (bar == 2 && in_bar(off, width, td->bar2_size)) {
        if (simpci_msix_read(td->pci, 2, off, width, val)) {
            return 0;
        }
        for (unsigned i = 0; i < width; i++) {
            v |= (uint64_t)td->bar2[off + i] << (8 * i);
        }
        *val = v;
        return 0;
    }
    return -EINVAL;
}

static int td_mmio_write(void *dev, unsigned bar, uint64_t off, unsigned width,
                         uint64_t val)
{
    struct testdev *td = dev;

    if (!mmio_width_ok(width)) {
        return -EINVAL;
    }
    if (bar == 0 && in_bar(off, width, TESTDEV_BAR0_SIZE)) {
        if (!simpci_msix_write(td->pci, 0, off, width, val)) {
            bar0_write(td, off, width, val);
        }
        return 0;
    }
    if (bar == 2 && in_bar(off, width, td->bar2_size)) {
        if (simpci_msix_write(td->pci, 2, off, width, val)) {
            return 0;
        }
        for (unsigned i = 0; i < width; i++) {
            td->bar2[off + i] = (uint8_t)(val >> (8 * i));
        }
        return 0;
    }
    return -EINVAL;
}

static int td_bar_fd(void *dev, unsigned bar, int *fd, uint64_t *offset)
{
    struct testdev *td = dev;
    int nfd;

    if (bar != 2 || !fd || !offset) {
        return -ENOTSUP;
    }
    nfd = fcntl(td->bar2_fd, F_DUPFD_CLOEXEC, 0);
    if (nfd < 0) {
        return -errno;
    }
    *fd = nfd;
    *offset = 0;
    return 0;
}

static int td_irq_configure(void *dev, unsigned requested, unsigned *granted)
{
    return simpci_irq_configure(((struct testdev *)dev)->pci, requested, granted);
}

static void td_irq_release(void *dev)
{
    simpci_irq_release(((struct testdev *)dev)->pci);
}

static size_t td_counters(void *dev, const char **names, uint64_t *values, size_t max)
{
    struct testdev *td = dev;
    struct simpci_stats st;
    size_t n = 0;

    simpci_get_stats(td->pci, &st);
    const char *const k[] = {"dma_done",     "dma_bad_cmds",   "iommu_faults",
                             "irqs_raised",  "irqs_delivered", "irqs_pended",
                             "irqs_dropped", "resets_flr",     "resets_hot"};
    const uint64_t v[] = {
        td->stats.dma_done, td->stats.dma_bad_cmds, td->stats.iommu_faults,
        st.raised,          st.delivered,           st.pended,
        st.dropped,         td->stats.resets_flr,   td->stats.resets_hot};

    _Static_assert(sizeof(k) / sizeof(k[0]) == sizeof(v) / sizeof(v[0]), "one per name");
    for (; n < max && n < sizeof(k) / sizeof(k[0]); n++) {
        names[n] = k[n];
        values[n] = v[n];
    }
    return n;
}

static void bar2_destroy(struct testdev *td)
{
    vdx_shm_unmap(td->bar2, td->bar2_size);
    td->bar2 = NULL;
    if (td->bar2_fd >= 0) {
        close(td->bar2_fd);
        td->bar2_fd = -1;
    }
}

static void td_destroy(void *dev)
{
    struct testdev *td = dev;

    if (!td) {
        return;
    }
    simpci_destroy(td->pci);
    bar2_destroy(td);
    free(td->bounce);
    free(td);
}

static const struct vdx_dev_ops td_ops = {
    .kind = TD_NAME,
    .config_read = td_config_read,
    .config_write = td_config_write,
    .bar_info = td_bar_info,
    .mmio_read = td_mmio_read,
    .mmio_write = td_mmio_write,
    .bar_fd = td_bar_fd,
    .irq_configure = td_irq_configure,
    .irq_release = td_irq_release,
    .reset = td_reset,
    .counters = td_counters,
    .destroy = td_destroy,
};

/* ---- Creation ------------------------------------------------------------------ */

static int parse_vectors(const char *s, unsigned *nvec, char *err, size_t errlen)
{
    uint64_t v;

    if (simpci_parse_u64(s, &v) || v < 1 || v > TESTDEV_MAX_VECTORS) {
        simpci_set_err(err, errlen, TD_NAME ": vectors=%s: expected a number from 1 to %u",
                       s, TESTDEV_MAX_VECTORS);
        return -EINVAL;
    }
    *nvec = (unsigned)v;
    return 0;
}

static int parse_bar2(const char *s, uint64_t *size, char *err, size_t errlen)
{
    uint64_t v;

    if (simpci_parse_size(s, &v) || v < TD_BAR2_MIN || v > TD_BAR2_MAX || (v & (v - 1))) {
        simpci_set_err(err, errlen,
                       TD_NAME ": bar2=%s: expected a power of two from 4K to 1G "
                               "(bytes, or with suffix K, M or G)",
                       s);
        return -EINVAL;
    }
    *size = v;
    return 0;
}

struct td_opts {
    unsigned nvec;
    unsigned msix_bar;
    uint64_t bar2_size;
};

static int parse_msix(const char *s, unsigned *bar, char *err, size_t errlen)
{
    if (strcmp(s, "bar0") == 0 || strcmp(s, "bar2") == 0) {
        *bar = s[3] == '0' ? 0 : 2;
        return 0;
    }
    simpci_set_err(err, errlen, TD_NAME ": msix=%s: expected bar0 or bar2", s);
    return -EINVAL;
}

/* Checks across options: the MSI-X structures fit the BAR they live in. */
static int check_opts(const struct td_opts *o, char *err, size_t errlen)
{
    if (o->msix_bar == 2 && o->bar2_size < TESTDEV_BAR0_SIZE) {
        simpci_set_err(err, errlen, TD_NAME ": msix=bar2 needs bar2=64K or more");
        return -EINVAL;
    }
    return 0;
}

static int parse_opts(const struct simpci_kind_args *a, struct td_opts *o, char *err,
                      size_t errlen)
{
    o->nvec = TESTDEV_DEFAULT_VECTORS;
    o->msix_bar = 0;
    o->bar2_size = TESTDEV_BAR2_DEFAULT_SIZE;
    for (size_t i = 0; i < a->nkv; i++) {
        const struct simpci_kv *kv = &a->kv[i];
        int rc;

        if (strcmp(kv->key, "vectors") == 0) {
            rc = parse_vectors(kv->val, &o->nvec, err, errlen);
        } else if (strcmp(kv->key, "bar2") == 0) {
            rc = parse_bar2(kv->val, &o->bar2_size, err, errlen);
        } else if (strcmp(kv->key, "msix") == 0) {
            rc = parse_msix(kv->val, &o->msix_bar, err, errlen);
        } else {
            simpci_set_err(err, errlen,
                           TD_NAME ": unknown option '%s' (valid: vectors, bar2, msix)",
                           kv->key);
            rc = -EINVAL;
        }
        if (rc) {
            return rc;
        }
    }
    return check_opts(o, err, errlen);
}

static int bar2_create(struct testdev *td)
{
    int fd = vdx_shm_create("vfio-dext-testdev-bar2", td->bar2_size);

    if (fd < 0) {
        return fd;
    }
    td->bar2 = vdx_shm_map(fd, 0, td->bar2_size);
    if (!td->bar2) {
        int rc = errno ? -errno : -ENOMEM;

        close(fd);
        return rc;
    }
    td->bar2_fd = fd;
    return 0;
}

static int build_config(struct testdev *td)
{
    const struct simpci_msix_layout msix = {
        .nvec = td->nvec,
        .table_bir = (uint8_t)td->msix_bar,
        .table_off = TESTDEV_MSIX_TABLE_OFF,
        .pba_bir = (uint8_t)td->msix_bar,
        .pba_off = TESTDEV_MSIX_PBA_OFF,
    };
    int rc;

    rc = simpci_set_bar(td->pci, 0, TESTDEV_BAR0_SIZE, DEXT_BAR_TYPE_M32);
    if (!rc) {
        rc = simpci_set_bar(td->pci, 2, td->bar2_size, DEXT_BAR_TYPE_M64PF);
    }
    if (!rc) {
        rc = simpci_add_pm(td->pci, TESTDEV_CAP_PM);
    }
    if (!rc) {
        rc = simpci_add_msi(td->pci, TESTDEV_CAP_MSI,
                            (unsigned)__builtin_ctz(TESTDEV_MSI_VECTORS));
    }
    if (!rc) {
        rc = simpci_add_pcie(td->pci, TESTDEV_CAP_PCIE, true);
    }
    if (!rc) {
        rc = simpci_add_msix(td->pci, TESTDEV_CAP_MSIX, &msix);
    }
    return rc;
}

static int create_pci(struct testdev *td, const struct vdx_dev_host *host)
{
    const struct simpci_id id = {
        .vendor = TESTDEV_VENDOR_ID,
        .device = TESTDEV_DEVICE_ID,
        .subsys_vendor = TESTDEV_VENDOR_ID,
        .subsys_device = TESTDEV_DEVICE_ID,
        .class_code = TESTDEV_CLASS_CODE,
        .revision = TESTDEV_REVISION,
    };
    int rc = simpci_create(&id, host, td_flr, td, &td->pci);

    if (rc) {
        return rc;
    }
    rc = build_config(td);
    if (rc) {
        simpci_destroy(td->pci);
        td->pci = NULL;
    }
    return rc;
}

static int td_create(const struct simpci_kind_args *a, void **dev, char *err, size_t errlen)
{
    struct td_opts o;
    struct testdev *td;
    int rc = parse_opts(a, &o, err, errlen);

    if (rc) {
        return rc;
    }
    td = calloc(1, sizeof(*td));
    if (!td) {
        rc = -ENOMEM;
        goto out;
    }
    td->bar2_fd = -1;
    td->nvec = o.nvec;
    td->msix_bar = o.msix_bar;
    td->bar2_size = o.bar2_size;
    snprintf(td->bdf, sizeof(td->bdf), "%s", a->bdf ? a->bdf : "?");
    if (a->host) {
        td->host = *a->host;
    }
    td->bounce = malloc(TD_BOUNCE_SIZE);
    if (!td->bounce) {
        rc = -ENOMEM;
        goto out_free;
    }
    rc = bar2_create(td);
    if (rc) {
        goto out_bounce;
    }
    rc = create_pci(td, a->host);
    if (rc) {
        goto out_bar2;
    }
    td_reset_state(td);
    *dev = td;
    return 0;

out_bar2:
    bar2_destroy(td);
out_bounce:
    free(td->bounce);
out_free:
    free(td);
out:
    simpci_set_err(err, errlen, TD_NAME ": cannot create the device: %s", strerror(-rc));
    return rc;
}

static const char *const td_keys[] = {"vectors", "bar2", "msix", NULL};

const struct simpci_kind simpci_kind_testdev = {
    .name = TD_NAME,
    .keys = td_keys,
    .ops = &td_ops,
    .create = td_create,
};
