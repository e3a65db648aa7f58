/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device ops seam: what the dext core needs from a PCI function.
 *
 * Implementations: simulated devices (src/devices/: testdev, later nvme),
 * Linux VFIO (real hardware), PCIDriverKit on macOS.
 *
 * Threading: the core calls every op with the device's lock held, so ops of one
 * device never run concurrently. Ops may call back into the host interface
 * (struct vdx_dev_host) from inside an op; those callbacks never take the
 * device lock. A device that runs work on its own thread may call the host
 * interface from that thread too.
 *
 * Errors: ops return 0 or a negative errno. The core converts them to
 * dext_status in exactly one place (dext_status_from_errno()).
 */
#ifndef VFIO_DEXT_DEVICE_H
#define VFIO_DEXT_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfio-dext/dext.h"

struct vdx_bar_info {
    uint64_t size;  /* 0: BAR unused or upper half of a 64-bit BAR */
    uint8_t type;   /* DEXT_BAR_TYPE_* */
};

enum vdx_dma_dir {
    VDX_DMA_TO_DEVICE = 0,   /* device reads memory */
    VDX_DMA_FROM_DEVICE = 1, /* device writes memory */
};

/*
 * What the dext offers a device. Set once by the core at attach, before any op.
 * All callbacks are thread-safe.
 */
struct vdx_dev_host {
    void *ctx;
    /*
     * Copy len bytes between buf and bus address `bus` through the dext's IOMMU.
     * Returns 0, or -EFAULT when any byte of [bus, bus+len) is not mapped by a
     * registered region (the fault is counted by the dext; nothing is copied).
     * Holds the IOMMU read lock for the duration: an unmap waits for it.
     */
    int (*dma_rw)(void *ctx, uint64_t bus, void *buf, size_t len, enum vdx_dma_dir dir);
    /*
     * Signal vector `vector` (MSI-X table index, or MSI vector). Takes one
     * short mutex and atomic operations; never blocks on a client. Ignored
     * when interrupts are not set up or vector is out of range (counted).
     */
    void (*irq_raise)(void *ctx, unsigned vector);
};

struct vdx_dev_ops {
    const char *kind; /* "sim:testdev", "vfio", ... */

    /* Mandatory. width is 1, 2 or 4; offset + width <= 4096 (checked by core).
     * Returns 0 or -errno. */
    int (*config_read)(void *dev, uint32_t offset, unsigned width, uint32_t *val);
    int (*config_write)(void *dev, uint32_t offset, unsigned width, uint32_t val);

    /* Mandatory. bar < 6. Returns 0 with size 0 for unused BARs. */
    int (*bar_info)(void *dev, unsigned bar, struct vdx_bar_info *info);

    /* Mandatory. width 1, 2, 4 or 8; offset + width <= BAR size (checked by
     * core). Returns 0 or -errno. */
    int (*mmio_read)(void *dev, unsigned bar, uint64_t offset, unsigned width,
                     uint64_t *val);
    int (*mmio_write)(void *dev, unsigned bar, uint64_t offset, unsigned width,
                      uint64_t val);

    /* Optional. If the BAR is backed by shareable memory, return a new fd the
     * caller owns (dup) and the offset of the BAR within it, and 0; -ENOTSUP
     * otherwise. Mapping the fd MAP_SHARED gives zero-copy BAR access. */
    int (*bar_fd)(void *dev, unsigned bar, int *fd, uint64_t *offset);

    /* Optional: number of vectors the device can raise (for SetupInterrupts).
     * When absent the core derives it from the MSI-X / MSI capability. */
    int (*irq_configure)(void *dev, unsigned requested, unsigned *granted);
    /* Optional: interrupts released (owner client gone). */
    void (*irq_release)(void *dev);

    /* Mandatory: reset with exactly this method. Returns 0, -ENOTSUP when the
     * device has no such method, or -errno. The core tries FUNCTION then HOT. */
    int (*reset)(void *dev, enum dext_reset_method method);

    /* Optional: first claim opened the device / last claim released it. */
    int (*open)(void *dev);
    void (*close)(void *dev);

    /* Optional: per-device status for `vfio-dext status` as "key": number
     * pairs; returns the count written (at most max). */
    size_t (*counters)(void *dev, const char **names, uint64_t *values, size_t max);

    /* Mandatory; accepts NULL. Frees the device. Called with no lock held. */
    void (*destroy)(void *dev);
};

/* A device instance created from a SPEC. bdf is the identity the dext reports. */
struct vdx_device {
    const struct vdx_dev_ops *ops;
    void *dev;
    uint16_t domain;
    uint8_t bus, slot, fn;
};

/*
 * Create a device from a SPEC such as "sim:testdev" or
 * "sim:testdev,bdf=0000:00:01.0". `host` is copied by the device. On success
 * fills *out and returns 0; on failure returns -errno and writes a message a
 * user can act on into err (may be NULL).
 */
int vdx_device_create(const char *spec, const struct vdx_dev_host *host,
                      struct vdx_device *out, char *err, size_t errlen);

/* Parse "[DDDD:]BB:DD.F". Returns 0 or -EINVAL. */
int vdx_parse_bdf(const char *s, uint16_t *domain, uint8_t *bus, uint8_t *slot,
                  uint8_t *fn);

#endif /* VFIO_DEXT_DEVICE_H */
