/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA of the passthrough backend: the client's guest-memory maps registered
 * with the dext, keyed by IOVA (identity mode: bus address = IOVA = guest
 * physical address).
 *
 * Only maps with a descriptor sealed against shrinking are registered
 * (vdx_register_dma_fd()). The others (QEMU's ROM/BIOS areas, guest RAM
 * without a shared memory backend, unsealed files) are accepted but not
 * registered: a refused DMA_MAP for RAM makes QEMU fail realize or abort
 * (reference/vfio-user.md §2.1), and the device simply cannot reach that
 * memory (a DMA there is an IOMMU fault in the dext, counted). Whether a map
 * was registered is a pure function of the map, so dma_unmap needs no table.
 */
#include <errno.h>
#include <string.h>

#include "vfio/passthru_priv.h"

static bool registrable(const struct vdx_vu_be_dma *dma)
{
    return dma->fd >= 0 && dma->sealed;
}

int pt_dma_map(void *opaque, const struct vdx_vu_be_dma *dma)
{
    struct vdx_passthru *pt = opaque;
    int rc;

    if (!registrable(dma)) {
        pt->st.dma_unreachable++;
        vdx_log_ratelimited(&pt->rl, VDX_LOG_INFO,
                            "passthru %s: DMA map [0x%llx, +0x%llx) %s: not reachable by "
                            "the device (use a shared memfd memory backend for guest RAM)",
                            pt->name, (unsigned long long)dma->iova,
                            (unsigned long long)dma->size,
                            dma->fd < 0 ? "has no file" : "is not sealed");
        return 0;
    }
    rc = vdx_passthru_errno(vdx_register_dma_fd(pt->conn, dma->iova, dma->fd,
                                                dma->fd_offset, dma->size, NULL, NULL));
    if (rc < 0) {
        pt->st.dma_errors++;
        vdx_log_ratelimited(&pt->rl, VDX_LOG_WARN,
                            "passthru %s: DMA map [0x%llx, +0x%llx) refused by the dext: %s",
                            pt->name, (unsigned long long)dma->iova,
                            (unsigned long long)dma->size, strerror(-rc));
        return rc;
    }
    pt->st.dma_registered++;
    return 0;
}

/* vdx_unregister_dma() waits for DMA in flight (the dext's IOMMU lock). */
void pt_dma_unmap(void *opaque, const struct vdx_vu_be_dma *dma)
{
    struct vdx_passthru *pt = opaque;
    dext_status st;

    if (!registrable(dma)) {
        pt->st.dma_unreachable--;
        return;
    }
    st = vdx_unregister_dma(pt->conn, dma->iova);
    if (st != DEXT_OK) {
        vdx_log_ratelimited(&pt->rl, VDX_LOG_WARN,
                            "passthru %s: DMA unmap of 0x%llx failed: %s", pt->name,
                            (unsigned long long)dma->iova, vdx_status_str(st));
    }
    pt->st.dma_registered--;
}
