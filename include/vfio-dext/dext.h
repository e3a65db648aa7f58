/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio-dext: the dext contract.
 *
 * The wire contract between the client library and any dext (the in-process
 * core, the `vfio-dext dext` daemon, or a DriverKit extension on macOS). It is
 * the contract of the seed's VFIOUserPCIDriver user client
 * (shared/reference/seed-system.md §2): 18 scalar selectors, memory types for
 * mapping, the shared IRQ state page and the BAR type byte.
 *
 * Self-contained on purpose: no platform headers, explicit numeric values,
 * static asserts on every layout. Every scalar is a uint64_t.
 */
#ifndef VFIO_DEXT_DEXT_H
#define VFIO_DEXT_DEXT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Selectors (seed §2.3). Numbers are the seed's. ---------------------- */

enum dext_selector {
    DEXT_SEL_GET_IDENTITY = 0,        /* out[6]: bus, dev, fn, vendor, device, class */
    DEXT_SEL_CLAIM = 1,               /* shared claim; see docs/contract.md */
    DEXT_SEL_TERMINATE = 2,           /* terminate the driver instance */
    DEXT_SEL_ALLOCATE_DMA_BUFFER = 3, /* in: size, align; out[6] */
    DEXT_SEL_FREE_DMA_BUFFER = 4,
    DEXT_SEL_REGISTER_DMA_REGION = 5,   /* in: key, clientVA, size; out: nseg, bus, len */
    DEXT_SEL_UNREGISTER_DMA_REGION = 6, /* in: key */
    DEXT_SEL_PROBE_DMA_REGION = 7,      /* in: key, offset; out: 64-bit word */
    DEXT_SEL_CONFIG_READ = 8,           /* in: offset, width; out: value */
    DEXT_SEL_CONFIG_WRITE = 9,          /* in: offset, width, value */
    DEXT_SEL_GET_BAR_INFO = 10,         /* in: bar; out: memoryIndex, size, type */
    DEXT_SEL_MMIO_READ = 11,            /* in: memoryIndex, offset, width; out: value */
    DEXT_SEL_MMIO_WRITE = 12,           /* in: memoryIndex, offset, width, value */
    DEXT_SEL_SETUP_INTERRUPTS = 13,     /* out: number of vectors */
    DEXT_SEL_CHECK_INTERRUPT = 14,      /* out[4]: pending words, cleared */
    DEXT_SEL_WAIT_INTERRUPT = 15,       /* async, one-shot */
    DEXT_SEL_SET_IRQ_MASK = 16,         /* in[4]: enable words */
    DEXT_SEL_RESET_DEVICE = 17,         /* out[1] (extension): method that ran */
};
#define DEXT_SEL_COUNT 18

/*
 * Minimum scalar counts per selector (seed §2.3). A call with fewer inputs or
 * room for fewer outputs than listed fails with DEXT_E_BAD_ARGUMENT.
 * Outputs marked "ext" are extensions: the seed has no output there, so
 * they are not required (min 0) but are filled when there is room.
 */
#define DEXT_IN_GET_IDENTITY 0
#define DEXT_OUT_GET_IDENTITY 6
#define DEXT_IN_CLAIM 0
#define DEXT_OUT_CLAIM 0
#define DEXT_IN_TERMINATE 0
#define DEXT_OUT_TERMINATE 0
#define DEXT_IN_ALLOCATE_DMA_BUFFER 2
#define DEXT_OUT_ALLOCATE_DMA_BUFFER 6
#define DEXT_IN_FREE_DMA_BUFFER 0
#define DEXT_OUT_FREE_DMA_BUFFER 0
#define DEXT_IN_REGISTER_DMA_REGION 3
#define DEXT_OUT_REGISTER_DMA_REGION 3
#define DEXT_IN_UNREGISTER_DMA_REGION 1
#define DEXT_OUT_UNREGISTER_DMA_REGION 0
#define DEXT_IN_PROBE_DMA_REGION 2
#define DEXT_OUT_PROBE_DMA_REGION 1
#define DEXT_IN_CONFIG_READ 2
#define DEXT_OUT_CONFIG_READ 1
#define DEXT_IN_CONFIG_WRITE 3
#define DEXT_OUT_CONFIG_WRITE 0
#define DEXT_IN_GET_BAR_INFO 1
#define DEXT_OUT_GET_BAR_INFO 3
#define DEXT_IN_MMIO_READ 3
#define DEXT_OUT_MMIO_READ 1
#define DEXT_IN_MMIO_WRITE 4
#define DEXT_OUT_MMIO_WRITE 0
#define DEXT_IN_SETUP_INTERRUPTS 0
#define DEXT_OUT_SETUP_INTERRUPTS 1
#define DEXT_IN_CHECK_INTERRUPT 0
#define DEXT_OUT_CHECK_INTERRUPT 4
#define DEXT_IN_WAIT_INTERRUPT 0
#define DEXT_OUT_WAIT_INTERRUPT 0
#define DEXT_IN_SET_IRQ_MASK 4
#define DEXT_OUT_SET_IRQ_MASK 0
#define DEXT_IN_RESET_DEVICE 0
#define DEXT_OUT_RESET_DEVICE 0 /* ext: out[0] = enum dext_reset_method */

/* Largest scalar count any selector takes or gives. */
#define DEXT_MAX_SCALARS 8

/* ---- Status codes ---------------------------------------------------------
 * Values are IOKit's IOReturn codes (IOKit/IOReturn.h: sys_iokit|sub_iokit_common
 * = 0xe0000000 | code), so the macOS transport passes them through unchanged.
 */
typedef uint32_t dext_status;
enum {
    DEXT_OK = 0,
    DEXT_E_BAD_ARGUMENT = 0xe00002c2, /* kIOReturnBadArgument */
    DEXT_E_UNSUPPORTED = 0xe00002c7,  /* kIOReturnUnsupported */
    DEXT_E_IO_ERROR = 0xe00002ca,     /* kIOReturnIOError */
    DEXT_E_NOT_OPEN = 0xe00002cd,     /* kIOReturnNotOpen: device not claimed */
    DEXT_E_NOT_ALIGNED = 0xe00002d0,  /* kIOReturnNotAligned */
    DEXT_E_STILL_OPEN = 0xe00002d2,   /* kIOReturnStillOpen: already exists */
    DEXT_E_NOT_READY = 0xe00002d8,    /* kIOReturnNotReady */
    DEXT_E_NOT_ATTACHED = 0xe00002d9, /* kIOReturnNotAttached: no device/peer */
    DEXT_E_NO_SPACE = 0xe00002db,     /* kIOReturnNoSpace */
    DEXT_E_OVERRUN = 0xe00002e8,      /* kIOReturnOverrun */
    DEXT_E_NOT_FOUND = 0xe00002f0,    /* kIOReturnNotFound */
};

/* ---- Memory types for mapping (seed §2.9) ---------------------------------- */

enum dext_memory_type {
    DEXT_MEM_DMA_BUFFER = 0,
    DEXT_MEM_BAR0 = 1, /* BAR n is type 1 + n, not the memoryIndex */
    DEXT_MEM_BAR1 = 2,
    DEXT_MEM_BAR2 = 3,
    DEXT_MEM_BAR3 = 4,
    DEXT_MEM_BAR4 = 5,
    DEXT_MEM_BAR5 = 6,
    DEXT_MEM_IRQ_STATE = 7,
};
#define DEXT_MEM_TYPE_COUNT 8
#define DEXT_MEM_BAR(n) ((uint32_t)DEXT_MEM_BAR0 + (uint32_t)(n))

/* ---- Limits (seed §2.3 constants) ------------------------------------------- */

#define DEXT_NUM_BARS 6
#define DEXT_MAX_VECTORS 256
#define DEXT_IRQ_WORDS 4                     /* 256 vectors / 64 */
#define DEXT_DMA_CHUNK_SIZE (1536ull << 20)  /* 1.5 GiB per chunk */
#define DEXT_DMA_MAX_CHUNKS 128              /* chunks per region */
#define DEXT_DMA_MAX_REGIONS 65536           /* regions per client */
#define DEXT_DMA_BUFFER_MAX (1536ull << 20)  /* selector 3 size limit */
#define DEXT_DMA_BUFFER_DEFAULT_ALIGN 4096ull
#define DEXT_CONFIG_SPACE_SIZE 4096u
#define DEXT_DART_GRANULE (16u * 1024u)      /* Apple DART page */

/* ---- IRQ state page (seed §2.7) --------------------------------------------
 * 16 KiB, mapped as DEXT_MEM_IRQ_STATE. Little-endian 64-bit words;
 * vector v is word v / 64, bit v % 64.
 *   pending[]: set by the dext, cleared by the client (atomic swap/and).
 *   enabled[]: written by the client (or selector 16), read by the dext.
 * Initial state: pending = 0, enabled = all ones.
 */
#define DEXT_IRQ_PAGE_SIZE 16384u
#define DEXT_IRQ_PAGE_PENDING_OFF 0x00u
#define DEXT_IRQ_PAGE_ENABLED_OFF 0x20u

struct dext_irq_page {
    uint64_t pending[DEXT_IRQ_WORDS]; /* 0x00 */
    uint64_t enabled[DEXT_IRQ_WORDS]; /* 0x20 */
};

_Static_assert(DEXT_MAX_VECTORS == DEXT_IRQ_WORDS * 64, "one bit per vector");
_Static_assert(__builtin_offsetof(struct dext_irq_page, pending) ==
                   DEXT_IRQ_PAGE_PENDING_OFF, "seed §2.7: pending at 0x00");
_Static_assert(__builtin_offsetof(struct dext_irq_page, enabled) ==
                   DEXT_IRQ_PAGE_ENABLED_OFF, "seed §2.7: enabled at 0x20");
_Static_assert(sizeof(struct dext_irq_page) == 0x40, "seed §2.7: 64 bytes used");
_Static_assert(sizeof(struct dext_irq_page) <= DEXT_IRQ_PAGE_SIZE, "fits the page");

/* ---- BAR type byte (seed §2.6; PCI Local Bus 3.0 §6.2.5.1 encoding) ------- */

#define DEXT_BAR_TYPE_IO 0x01u       /* bit 0: I/O space */
#define DEXT_BAR_TYPE_MEM64 0x04u    /* bits 2:1 = 10b: 64-bit memory */
#define DEXT_BAR_TYPE_PREFETCH 0x08u /* bit 3: prefetchable */

#define DEXT_BAR_TYPE_M32 0x00u
#define DEXT_BAR_TYPE_M64 (DEXT_BAR_TYPE_MEM64)
#define DEXT_BAR_TYPE_M32PF (DEXT_BAR_TYPE_PREFETCH)
#define DEXT_BAR_TYPE_M64PF (DEXT_BAR_TYPE_MEM64 | DEXT_BAR_TYPE_PREFETCH)

/* ---- Reset methods (extension: selector 17 out[0]) ------------------------- */

enum dext_reset_method {
    DEXT_RESET_NONE = 0,
    DEXT_RESET_FUNCTION = 1, /* FLR */
    DEXT_RESET_HOT = 2,      /* secondary bus reset of the upstream port */
};

/* ---- IOMMU modes (extension, per device) ------------------------------------ */

enum dext_iommu_mode {
    DEXT_IOMMU_IDENTITY = 0, /* bus address = the registered key */
    DEXT_IOMMU_DART = 1,     /* the dext chooses bus addresses, 16 KiB granule */
};

#ifdef __cplusplus
}
#endif

#endif /* VFIO_DEXT_DEXT_H */
