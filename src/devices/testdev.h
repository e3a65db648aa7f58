/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim:testdev — a simulated PCIe endpoint that exercises the whole dext
 * contract. This header is its programming model (used by the device, by
 * `vfio-dext probe` and by tests).
 *
 * Identity: vendor 0x7e57, device 0xde01 (made-up IDs for a simulated
 * device), class 0xff0000, revision 1.
 * Capabilities: PM at 0x40, MSI at 0x50, PCIe (endpoint, FLR) at 0x70,
 * MSI-X at 0xb0 with table and PBA in BAR0 (or BAR2: msix=bar2), at
 * TESTDEV_MSIX_TABLE_OFF and TESTDEV_MSIX_PBA_OFF.
 * BARs: BAR0 32-bit non-prefetchable MMIO, 64 KiB, registers below (MMIO
 * selectors only: not shareable); BAR2/3 64-bit prefetchable, 1 MiB by
 * default, backed by shareable memory (memfd) so map_bar is zero-copy;
 * BAR1, BAR4, BAR5 unused.
 * SPEC options: vectors=N (MSI-X table size, 1..2048, default 64),
 * bar2=SIZE (power of two, 4 KiB..1 GiB, default 1M), msix=bar0|bar2 (where
 * the MSI-X table and PBA live, default bar0; bar2 needs bar2=64K or more:
 * then those pages of BAR2 are emulated registers, not its shared memory).
 * Every register returns to its reset value on FLR or hot reset.
 */
#ifndef VFIO_DEXT_TESTDEV_H
#define VFIO_DEXT_TESTDEV_H

#define TESTDEV_VENDOR_ID 0x7e57u
#define TESTDEV_DEVICE_ID 0xde01u
#define TESTDEV_CLASS_CODE 0xff0000u
#define TESTDEV_REVISION 0x01u

#define TESTDEV_CAP_PM 0x40u
#define TESTDEV_CAP_MSI 0x50u
#define TESTDEV_CAP_PCIE 0x70u
#define TESTDEV_CAP_MSIX 0xb0u

#define TESTDEV_BAR0_SIZE (64u * 1024u)
#define TESTDEV_BAR2_DEFAULT_SIZE (1024u * 1024u)
#define TESTDEV_DEFAULT_VECTORS 64u
#define TESTDEV_MAX_VECTORS 2048u
#define TESTDEV_MSI_VECTORS 32u /* MSI Multiple Message Capable = 5 */

/* BAR0 registers. Widths in brackets; other widths read 0 / are ignored. */
#define TESTDEV_REG_ID 0x000u          /* [4] RO TESTDEV_ID_MAGIC */
#define TESTDEV_REG_VERSION 0x004u     /* [4] RO 1 */
#define TESTDEV_REG_SCRATCH 0x008u     /* [4] RW, reset 0 */
#define TESTDEV_REG_SCRATCH64 0x010u   /* [8] RW, reset 0 */
#define TESTDEV_REG_DMA_SRC 0x020u     /* [8] RW bus address */
#define TESTDEV_REG_DMA_DST 0x028u     /* [8] RW bus address */
#define TESTDEV_REG_DMA_LEN 0x030u     /* [4] RW bytes, <= TESTDEV_DMA_MAX_LEN */
#define TESTDEV_REG_DMA_CMD 0x034u     /* [4] WO: starts the engine, see bits */
#define TESTDEV_REG_DMA_STATUS 0x038u  /* [4] RO TESTDEV_DMA_* */
#define TESTDEV_REG_DMA_FILL 0x03cu    /* [4] RW fill byte (low 8 bits) */
#define TESTDEV_REG_RAISE 0x040u       /* [4] WO: raise vector N (MSI-X/MSI rules) */
#define TESTDEV_REG_IOMMU_FAULTS 0x044u /* [4] RO DMA accesses the IOMMU refused */
#define TESTDEV_REG_DMA_DONE 0x048u    /* [4] RO DMA commands completed (ok or fault) */
#define TESTDEV_REG_IRQS 0x04cu        /* [4] RO vectors raised by the device */

#define TESTDEV_ID_MAGIC 0x7e57de01u

#define TESTDEV_DMA_CMD_COPY 0x1u        /* copy DMA_LEN bytes SRC -> DST */
#define TESTDEV_DMA_CMD_FILL 0x2u        /* fill DMA_LEN bytes at DST */
#define TESTDEV_DMA_CMD_IRQ 0x10000u     /* raise vector (bits 15:8) when done */
#define TESTDEV_DMA_CMD_VECTOR(v) (((unsigned)(v) & 0xffu) << 8)

#define TESTDEV_DMA_IDLE 0u
#define TESTDEV_DMA_OK 1u
#define TESTDEV_DMA_FAULT 2u   /* the IOMMU refused an access */
#define TESTDEV_DMA_BADCMD 3u  /* bad length or command bits */

#define TESTDEV_DMA_MAX_LEN (16u * 1024u * 1024u)

#define TESTDEV_MSIX_PBA_OFF 0x4000u   /* in BAR0 (or BAR2) */
#define TESTDEV_MSIX_TABLE_OFF 0x8000u /* in BAR0 (or BAR2), 16 bytes per entry */

#endif /* VFIO_DEXT_TESTDEV_H */
