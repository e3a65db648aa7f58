/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dext's IOMMU: translates device bus addresses to host memory.
 *
 * Two modes (DESIGN.md seam 4):
 *  - identity: a mapping's bus address is the one the caller asks for (the
 *    client's key, e.g. a guest physical address). Overlaps are refused.
 *  - dart: the IOMMU chooses bus addresses itself from a bounded aperture in
 *    16 KiB granules, like Apple's DART, with a cap on live mappings.
 * Both modes also allocate from the aperture when the dext itself needs a bus
 * address (the DMA buffer of selector 3): iommu_map_alloc().
 *
 * Mappings live in a balanced tree (tsearch(3)): map, unmap and lookup are
 * O(log n), so tearing down 65,536 mappings is not quadratic.
 * Locking: an rwlock inside. iommu_rw() holds it shared for the whole copy,
 * map/unmap hold it exclusive, so an unmap waits for in-flight DMA.
 * Errors: 0 or -errno.
 */
#ifndef VFIO_DEXT_IOMMU_H
#define VFIO_DEXT_IOMMU_H

#include <stddef.h>
#include <stdint.h>

#include "dext/device.h"

struct iommu;

struct iommu_config {
    enum dext_iommu_mode mode;
    uint64_t aperture_base; /* first bus address the allocator hands out */
    uint64_t aperture_size; /* bytes; multiple of DEXT_DART_GRANULE */
    uint32_t max_mappings;  /* dart mode: live mappings cap; 0 = unlimited */
};

struct iommu_stats {
    uint64_t mappings;   /* live */
    uint64_t bytes;      /* live */
    uint64_t faults;     /* accesses refused */
    uint64_t aperture_used; /* bytes of aperture allocated */
    uint64_t aperture_size; /* configured */
    uint32_t max_mappings;  /* configured; 0 = unlimited */
};

int iommu_create(const struct iommu_config *cfg, struct iommu **out);
void iommu_destroy(struct iommu *io);
enum dext_iommu_mode iommu_mode(const struct iommu *io);

/*
 * Map [host, host + len) at bus address `bus` (identity mode only).
 * -EEXIST if it overlaps a live mapping or the aperture (reserved for the
 * dext's own buffers), -EINVAL on len 0 or wrap-around.
 */
int iommu_map_at(struct iommu *io, uint64_t bus, void *host, uint64_t len);

/*
 * Map [host, host + len) at a bus address the IOMMU chooses from its
 * aperture. align 0: the bus address keeps host's offset within a granule
 * (as a DART does); otherwise (a power of two) the bus address is aligned to
 * max(align, granule). -ENOSPC when the aperture or the mapping cap is
 * exhausted.
 */
int iommu_map_alloc(struct iommu *io, void *host, uint64_t len, uint64_t align,
                    uint64_t *bus);

/* Remove the mapping that starts at `bus`. -ENOENT if none. */
int iommu_unmap(struct iommu *io, uint64_t bus);

/*
 * Copy between buf and [bus, bus + len), which may span adjacent mappings.
 * -EFAULT (and a counted fault) if any byte is unmapped; nothing is copied then.
 */
int iommu_rw(struct iommu *io, uint64_t bus, void *buf, size_t len, enum vdx_dma_dir dir);

void iommu_get_stats(struct iommu *io, struct iommu_stats *st);

#endif /* VFIO_DEXT_IOMMU_H */
