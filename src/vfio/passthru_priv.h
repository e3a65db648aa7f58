/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internals of the passthrough backend, shared by src/vfio/passthru*.c.
 * Not a public header: see passthru.h for the contract.
 */
#ifndef VFIO_DEXT_PASSTHRU_PRIV_H
#define VFIO_DEXT_PASSTHRU_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "vfio/passthru.h"

/* The IRQ indexes that carry eventfds (INTx, MSI, MSI-X); ERR and REQ have none. */
#define PT_EFD_INDEXES 3u

/* PCI config space layout (PCI Local Bus 3.0 §6.1, §6.2). */
#define PT_PCI_COMMAND 0x04u
#define PT_PCI_STATUS 0x06u
#define PT_PCI_BAR0 0x10u
#define PT_PCI_BAR_END 0x28u /* one past BAR5 */
#define PT_PCI_CAP_PTR 0x34u
#define PT_PCI_CAP_ID_MSIX 0x11u
#define PT_PCI_MSIX_FLAGS 2u        /* message control, from the cap start */
#define PT_PCI_MSIX_QSIZE 0x07ffu   /* table size - 1 */
#define PT_PCI_MSIX_TABLE 4u        /* table offset | BIR, from the cap start */
#define PT_PCI_MSIX_PBA 8u          /* PBA offset | BIR, from the cap start */
#define PT_PCI_MSIX_BIR 0x7u        /* BAR indicator bits of TABLE / PBA */
#define PT_PCI_MSIX_ENTRY_SIZE 16u  /* PCI Local Bus 3.0 §6.8.2.6 */

/* The MSI-X capability's layout, as read from config space (device input:
 * nothing here is trusted to lie inside a BAR). entries == 0: no MSI-X. */
struct pt_msix {
    uint32_t entries;
    uint8_t table_bir, pba_bir; /* 0..7; only 0..5 name a BAR */
    uint32_t table_off, pba_off;
};

/* A byte range of a BAR that must stay trapped (MSI-X table, PBA). */
struct pt_hole {
    uint64_t off, len;
};

/* At most two holes (table, PBA) split a BAR into at most three areas. */
#define PT_BAR_MAX_HOLES 2u
#define PT_BAR_MAX_AREAS (PT_BAR_MAX_HOLES + 1u)

/*
 * One BAR as the dext describes it.
 * map: the dext shares it as memory mapped in this process (vdx_map_bar());
 * the mapping is the connection's and goes with it. NULL: trapped through
 * MMIO selectors.
 * fd: the dext shares it as a descriptor (vdx_bar_fd()); owned here, offered
 * to the VMM as mmappable in the areas (never the MSI-X table or PBA pages).
 * -1: not offered (every access trapped).
 * holes: the MSI-X table and PBA bytes in this BAR; trapped accesses there
 * always go to the device (MMIO selectors), never to the shared memory.
 */
struct pt_bar {
    uint64_t size; /* 0: absent (unused BAR, upper half of a 64-bit BAR) */
    uint8_t type;  /* DEXT_BAR_TYPE_* */
    void *map;
    uint64_t map_size;
    uint32_t nholes;
    struct pt_hole holes[PT_BAR_MAX_HOLES];
    int fd;
    uint64_t fd_offset;
    uint32_t nr_areas; /* > 0 whenever fd >= 0 */
    struct vdx_vu_sparse_area areas[PT_BAR_MAX_AREAS];
};

struct vdx_passthru {
    struct vdx_conn *conn; /* borrowed */
    char name[32];         /* the BDF, for log lines */
    struct pt_bar bars[DEXT_NUM_BARS];
    uint32_t vectors;    /* granted by SetupInterrupts, <= DEXT_MAX_VECTORS */
    struct pt_msix msix; /* from config space at create; entries 0: no MSI-X */
    struct dext_irq_page *irq_page;
    struct vdx_notify *notify;
    /* Current eventfd per (index, vector), -1: none. Borrowed from the server:
     * valid until the set_irqs call that replaces them returns. Vectors the
     * dext cannot raise (>= DEXT_MAX_VECTORS) are not kept. */
    int efd[PT_EFD_INDEXES][DEXT_MAX_VECTORS];
    int err_efd; /* ERR index: signalled when the device is lost; -1: none */
    struct vdx_passthru_stats st;
    struct vdx_ratelimit rl;
};

/* passthru_cfg.c: config space (region 7). */
int pt_config_read(struct vdx_passthru *pt, uint64_t off, void *buf, uint32_t count);
int pt_config_write(struct vdx_passthru *pt, uint64_t off, const void *buf,
                    uint32_t count);
/* Walk the capability list for MSI-X; fills *m (entries 0 when absent or
 * unreadable). */
void pt_msix_probe(struct vdx_passthru *pt, struct pt_msix *m);

/* passthru_bar.c: BAR layout and sharing (seed §4.3, §4.7). */
/* Read every BAR's shape; map and offer what the dext shares. Never fails:
 * a BAR that cannot be shared is trapped. Needs pt->msix. */
void pt_bars_probe(struct vdx_passthru *pt);
/* Close the BAR descriptors (the server must be gone). */
void pt_bars_release(struct vdx_passthru *pt);
/* Whether [off, off + len) touches the BAR's MSI-X table or PBA. */
bool pt_bar_in_msix(const struct pt_bar *b, uint64_t off, uint64_t len);
/* Region info of BAR `n` (< 6): size, READ|WRITE, fd and sparse areas. */
void pt_bar_region_info(const struct vdx_passthru *pt, unsigned n,
                        struct vdx_vu_be_region *r);
/* The MSI-X table and PBA ranges that lie in BAR `n`; returns how many. */
unsigned pt_msix_holes(const struct pt_msix *m, unsigned n,
                       struct pt_hole holes[PT_BAR_MAX_HOLES]);
/*
 * The mmappable areas of a BAR: [0, size) minus every page (of `page` bytes,
 * a power of two) holding a byte of a hole, in ascending order, each page
 * aligned in offset and size. Holes may be empty, overlap each other or lie
 * partly or wholly outside the BAR; a size below one page has no area.
 * A pure function (for tests and fuzzing). Returns the number of areas
 * written (0: nothing mappable), -EINVAL (page not a power of two, nholes >
 * PT_BAR_MAX_HOLES, NULL arrays) or -ENOSPC (more than max areas needed).
 */
int pt_sparse_areas(uint64_t size, uint64_t page, const struct pt_hole *holes,
                    unsigned nholes, struct vdx_vu_sparse_area *areas, unsigned max);

/* passthru_irq.c */
int pt_irq_info(void *opaque, uint32_t index, struct vdx_vu_be_irq *info);
int pt_set_irqs(void *opaque, const struct vdx_vu_be_irq_set *set);
int pt_irq_init(struct vdx_passthru *pt);
void pt_irq_fini(struct vdx_passthru *pt);

/* passthru_dma.c */
int pt_dma_map(void *opaque, const struct vdx_vu_be_dma *dma);
void pt_dma_unmap(void *opaque, const struct vdx_vu_be_dma *dma);

#endif /* VFIO_DEXT_PASSTHRU_PRIV_H */
