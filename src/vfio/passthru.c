/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The passthrough backend: lifetime, device and region info (seed §4.3),
 * BAR access (§4.7), reset (§4.8) and the ops table. Config space is in
 * passthru_cfg.c, interrupts in passthru_irq.c, DMA in passthru_dma.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfio/passthru_priv.h"

int vdx_passthru_errno(dext_status st)
{
    switch (st) {
    case DEXT_OK:
        return 0;
    case DEXT_E_BAD_ARGUMENT:
    case DEXT_E_NOT_ALIGNED:
        return -EINVAL;
    case DEXT_E_UNSUPPORTED:
        return -ENOTSUP;
    case DEXT_E_NOT_OPEN:
    case DEXT_E_NOT_ATTACHED:
        return -ENODEV;
    case DEXT_E_STILL_OPEN:
        return -EEXIST;
    case DEXT_E_NOT_READY:
        return -EAGAIN;
    case DEXT_E_NO_SPACE:
        return -ENOSPC;
    case DEXT_E_OVERRUN:
        return -ERANGE;
    case DEXT_E_NOT_FOUND:
        return -ENOENT;
    default:
        return -EIO;
    }
}

/* ---- Lifetime ------------------------------------------------------------------- */

int vdx_passthru_create(struct vdx_conn *conn, const char *name, struct vdx_passthru **out)
{
    struct vdx_passthru *pt;
    int rc;

    if (conn == NULL || out == NULL) {
        return -EINVAL;
    }
    pt = calloc(1, sizeof(*pt));
    if (pt == NULL) {
        return -ENOMEM;
    }
    pt->conn = conn;
    snprintf(pt->name, sizeof(pt->name), "%s", name ? name : "?");
    rc = vdx_passthru_errno(vdx_claim(conn));
    if (rc < 0) {
        goto out_free;
    }
    pt_msix_probe(pt, &pt->msix);
    pt_bars_probe(pt);
    rc = pt_irq_init(pt);
    if (rc < 0) {
        goto out_bars;
    }
    *out = pt;
    return 0;

out_bars:
    pt_bars_release(pt);
out_free:
    free(pt);
    return rc;
}

void vdx_passthru_destroy(struct vdx_passthru *pt)
{
    if (pt == NULL) {
        return;
    }
    pt_irq_fini(pt);
    pt_bars_release(pt);
    free(pt);
}

uint32_t vdx_passthru_vectors(const struct vdx_passthru *pt)
{
    return pt->vectors;
}

void vdx_passthru_stats(const struct vdx_passthru *pt, struct vdx_passthru_stats *st)
{
    *st = pt->st;
}

/* ---- Device and regions (seed §4.3) ---------------------------------------------- */

static int pt_device_info(void *opaque, struct vdx_vu_be_device *info)
{
    (void)opaque;
    info->flags = VDX_VU_DEVICE_F_PCI | VDX_VU_DEVICE_F_RESET;
    info->num_regions = VDX_VU_PCI_NUM_REGIONS;
    info->num_irqs = VDX_VU_PCI_NUM_IRQS;
    return 0;
}

/* BARs: the dext's size (0 = absent), mmappable areas when the dext shares
 * the BAR as a descriptor (passthru_bar.c). Config: 4096. ROM and VGA: absent. */
static int pt_region_info(void *opaque, uint32_t index, struct vdx_vu_be_region *r)
{
    struct vdx_passthru *pt = opaque;

    if (index <= VDX_VU_PCI_BAR5_REGION) {
        pt_bar_region_info(pt, index, r);
    } else if (index == VDX_VU_PCI_CONFIG_REGION) {
        r->size = DEXT_CONFIG_SPACE_SIZE;
        r->flags = VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE;
    } else if (index == VDX_VU_PCI_ROM_REGION || index == VDX_VU_PCI_VGA_REGION) {
        r->size = 0;
    } else {
        return -EINVAL;
    }
    return 0;
}

/* ---- BAR access (seed §4.7) ------------------------------------------------------- */

/* The widest naturally aligned access (8, 4, 2, 1) at off with n bytes left. */
static unsigned access_width(uint64_t off, uint32_t n)
{
    for (unsigned w = 8; w > 1; w /= 2) {
        if (n >= w && off % w == 0) {
            return w;
        }
    }
    return 1;
}

static uint64_t load_le(const volatile void *p, unsigned w)
{
    switch (w) {
    case 8:
        return *(const volatile uint64_t *)p;
    case 4:
        return *(const volatile uint32_t *)p;
    case 2:
        return *(const volatile uint16_t *)p;
    default:
        return *(const volatile uint8_t *)p;
    }
}

static void store_le(volatile void *p, unsigned w, uint64_t v)
{
    switch (w) {
    case 8:
        *(volatile uint64_t *)p = v;
        break;
    case 4:
        *(volatile uint32_t *)p = (uint32_t)v;
        break;
    case 2:
        *(volatile uint16_t *)p = (uint16_t)v;
        break;
    default:
        *(volatile uint8_t *)p = (uint8_t)v;
        break;
    }
}

/* Trapped accesses are split into naturally aligned pieces of at most 8
 * bytes; registers (MMIO selectors, one dext call each: a BAR the dext does
 * not share as memory, or its MSI-X table and PBA) take at most this many
 * bytes per message, so a client cannot make one message cost thousands of
 * dext calls. */
#define PT_MMIO_MAX_COUNT 64u

/* Whether [off, off + len) of BAR n is served through the dext's mapping
 * (else through MMIO selectors: the device's registers). */
static bool bar_through_map(const struct pt_bar *b, uint64_t off, uint64_t len)
{
    return b->map != NULL && !pt_bar_in_msix(b, off, len);
}

/* One piece of a BAR access; val in/out, host (little-endian) order. */
static int bar_piece(struct vdx_passthru *pt, unsigned n, uint64_t off, unsigned w,
                     uint64_t *val, bool write)
{
    struct pt_bar *b = &pt->bars[n];
    dext_status st;

    if (bar_through_map(b, off, w)) {
        if (off + w > b->map_size) {
            return -EINVAL;
        }
        if (write) {
            store_le((uint8_t *)b->map + off, w, *val);
        } else {
            *val = load_le((uint8_t *)b->map + off, w);
        }
        return 0;
    }
    st = write ? vdx_mmio_write(pt->conn, n, off, w, *val)
               : vdx_mmio_read(pt->conn, n, off, w, val);
    return vdx_passthru_errno(st);
}

static int bar_access(struct vdx_passthru *pt, unsigned n, uint64_t off, uint8_t *buf,
                      uint32_t count, bool write)
{
    if (write) {
        pt->st.bar_writes++;
    } else {
        pt->st.bar_reads++;
    }
    if (count > PT_MMIO_MAX_COUNT && !bar_through_map(&pt->bars[n], off, count)) {
        pt->st.bar_errors++;
        return -EINVAL;
    }
    for (uint32_t done = 0; done < count;) {
        unsigned w = access_width(off + done, count - done);
        uint64_t v = 0;
        int rc;

        if (write) {
            memcpy(&v, buf + done, w);
        }
        rc = bar_piece(pt, n, off + done, w, &v, write);
        if (rc < 0) {
            pt->st.bar_errors++;
            vdx_log_ratelimited(&pt->rl, VDX_LOG_WARN,
                                "passthru %s: BAR%u %s of %u bytes at 0x%llx failed: %s",
                                pt->name, n, write ? "write" : "read", w,
                                (unsigned long long)(off + done), strerror(-rc));
            return rc;
        }
        if (!write) {
            memcpy(buf + done, &v, w);
        }
        done += w;
    }
    return 0;
}

static int pt_region_read(void *opaque, uint32_t index, uint64_t off, void *buf,
                          uint32_t count)
{
    struct vdx_passthru *pt = opaque;

    if (index == VDX_VU_PCI_CONFIG_REGION) {
        return pt_config_read(pt, off, buf, count);
    }
    if (index > VDX_VU_PCI_BAR5_REGION) {
        return -EINVAL;
    }
    return bar_access(pt, index, off, buf, count, false);
}

static int pt_region_write(void *opaque, uint32_t index, uint64_t off, const void *buf,
                           uint32_t count)
{
    struct vdx_passthru *pt = opaque;

    if (index == VDX_VU_PCI_CONFIG_REGION) {
        return pt_config_write(pt, off, buf, count);
    }
    if (index > VDX_VU_PCI_BAR5_REGION) {
        return -EINVAL;
    }
    return bar_access(pt, index, off, (uint8_t *)(uintptr_t)buf, count, true);
}

/* ---- Reset (seed §4.8) ------------------------------------------------------------ */

static int pt_reset(void *opaque)
{
    struct vdx_passthru *pt = opaque;
    int rc = vdx_passthru_errno(vdx_reset_device(pt->conn, NULL));

    if (rc < 0) {
        vdx_log(VDX_LOG_WARN, "passthru %s: device reset failed: %s", pt->name,
                strerror(-rc));
    }
    return rc;
}

static const struct vdx_vu_backend_ops pt_ops = {
    .device_info = pt_device_info,
    .region_info = pt_region_info,
    .irq_info = pt_irq_info,
    .set_irqs = pt_set_irqs,
    .region_read = pt_region_read,
    .region_write = pt_region_write,
    .reset = pt_reset,
    .dma_map = pt_dma_map,
    .dma_unmap = pt_dma_unmap,
};

const struct vdx_vu_backend_ops *vdx_passthru_ops(void)
{
    return &pt_ops;
}
