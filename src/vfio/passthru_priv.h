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

/* One BAR as the dext describes it. map: the dext shares it as memory. */
struct pt_bar {
    uint64_t size; /* 0: absent (unused BAR, upper half of a 64-bit BAR) */
    uint8_t type;  /* DEXT_BAR_TYPE_* */
    void *map;     /* NULL: trapped through MMIO selectors */
    uint64_t map_size;
};

struct vdx_passthru {
    struct vdx_conn *conn; /* borrowed */
    char name[32];         /* the BDF, for log lines */
    struct pt_bar bars[DEXT_NUM_BARS];
    uint32_t vectors;      /* granted by SetupInterrupts, <= DEXT_MAX_VECTORS */
    uint32_t msix_entries; /* MSI-X table size from config space, 0: no MSI-X */
    struct dext_irq_page *irq_page;
    struct vdx_notify *notify;
    /* Current eventfd per (index, vector), -1: none. Borrowed from the server:
     * valid until the set_irqs call that replaces them returns. Vectors the
     * dext cannot raise (>= DEXT_MAX_VECTORS) are not kept. */
    int efd[PT_EFD_INDEXES][DEXT_MAX_VECTORS];
    struct vdx_passthru_stats st;
    struct vdx_ratelimit rl;
};

/* passthru_cfg.c: config space (region 7). */
int pt_config_read(struct vdx_passthru *pt, uint64_t off, void *buf, uint32_t count);
int pt_config_write(struct vdx_passthru *pt, uint64_t off, const void *buf,
                    uint32_t count);
/* Walk the capability list for MSI-X; returns its table size or 0. */
uint32_t pt_msix_entries(struct vdx_passthru *pt);

/* passthru_irq.c */
int pt_irq_info(void *opaque, uint32_t index, struct vdx_vu_be_irq *info);
int pt_set_irqs(void *opaque, const struct vdx_vu_be_irq_set *set);
int pt_irq_init(struct vdx_passthru *pt);
void pt_irq_fini(struct vdx_passthru *pt);

/* passthru_dma.c */
int pt_dma_map(void *opaque, const struct vdx_vu_be_dma *dma);
void pt_dma_unmap(void *opaque, const struct vdx_vu_be_dma *dma);

#endif /* VFIO_DEXT_PASSTHRU_PRIV_H */
