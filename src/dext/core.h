/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dext core: the seed's VFIOUserPCIDriver and its user client, platform
 * neutral. A `struct dext` holds devices; each `struct dext_uc` is one user
 * client (one connection) bound to one device.
 *
 * Threading: every function is thread-safe. Per device, one mutex serialises
 * selectors and device ops; an rwlock guards the IOMMU (device DMA holds it
 * shared, map/unmap exclusive, so an unmap waits for in-flight DMA); the IRQ
 * fast path is lock-free atomics on the IRQ state page plus a small mutex for
 * the notification sink. Lock order: device -> iommu -> irq.
 *
 * Errors: selectors return dext_status (vfio-dext/dext.h); other functions
 * return 0 or -errno.
 */
#ifndef VFIO_DEXT_CORE_H
#define VFIO_DEXT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "dext/device.h"
#include "vfio-dext/dext.h"

struct dext;
struct dext_dev;
struct dext_uc;

struct dext_opts {
    enum dext_iommu_mode iommu;  /* per device default; DEXT_IOMMU_IDENTITY */
    uint64_t dart_base;          /* first bus address of the DART aperture */
    uint64_t dart_aperture;      /* bytes mappable at once; default 1.5 GiB */
    uint32_t dart_max_mappings;  /* default 65,536 */
};

/* Fill opts with the defaults above. */
void dext_opts_default(struct dext_opts *opts);

/* Create an empty dext. Returns 0 and *out, or -errno. */
int dext_create(const struct dext_opts *opts, struct dext **out);

/* Destroy: closes every user client, then destroys every device. NULL ok. */
void dext_destroy(struct dext *d);

/*
 * Add a device from SPEC ("sim:testdev[,bdf=...][,iommu=identity|dart]").
 * Returns 0 or -errno with a message in err. Refuses a duplicate BDF (-EEXIST).
 */
int dext_add_device(struct dext *d, const char *spec, char *err, size_t errlen);

/* Number of devices, and device i (NULL when out of range). */
unsigned dext_device_count(const struct dext *d);
struct dext_dev *dext_device(struct dext *d, unsigned i);

/* Identity as GetIdentity reports it, plus the domain. */
struct dext_identity {
    uint16_t domain;
    uint8_t bus, slot, fn;
    uint16_t vendor, device;
    uint32_t class_code; /* 24 bits */
};
void dext_dev_identity(const struct dext_dev *dev, struct dext_identity *id);
bool dext_dev_claimed(struct dext_dev *dev);

/*
 * How a user client is woken when its armed interrupt wait completes
 * (selector 15). Called from whichever thread raised the interrupt or armed
 * the wait, possibly with the device's locks held: it must not block (signal
 * a platform event) and must not call back into the dext.
 */
typedef void (*dext_notify_fn)(void *opaque);

/* Open a user client on a device (NewUserClient). Returns NULL on ENOMEM. */
struct dext_uc *dext_uc_open(struct dext_dev *dev, dext_notify_fn notify, void *opaque);

/*
 * Close a user client (the seed's user-client Stop): releases its interrupts,
 * DMA regions, DMA buffer and claim, in that order. Once it returns, the
 * client's notify callback is never called again, so its opaque may be freed.
 * NULL ok.
 */
void dext_uc_close(struct dext_uc *uc);

struct dext_dev *dext_uc_device(struct dext_uc *uc);

/*
 * Declare that this client lives in the dext's own process (local transport),
 * so selector 5's clientVA is a pointer the dext may use. Without it (the
 * default, e.g. a unix-socket peer) selector 5 through dext_uc_call() returns
 * DEXT_E_UNSUPPORTED: memory must come as an fd via dext_uc_register_dma().
 */
void dext_uc_allow_local_va(struct dext_uc *uc);

/*
 * The transport tells whether the client has a completion sink (an event it
 * can wait on). Without one, WaitInterrupt (15) is a bad argument: the wait
 * could never be delivered.
 */
void dext_uc_set_sink(struct dext_uc *uc, bool attached);

/*
 * Call selector `sel` with nin scalar inputs; *nout is the room in `out` on
 * entry and the number written on return. Selector 15 arms the one-shot
 * wait: `notify` fires once when a pending bit is (or becomes) set.
 * Returns a dext_status. Never crashes on any input.
 */
dext_status dext_uc_call(struct dext_uc *uc, uint32_t sel, const uint64_t *in,
                         uint32_t nin, uint64_t *out, uint32_t *nout);

/*
 * Selector 5 with memory the dext can reach: either a pointer in this process
 * (local transport, fd < 0) or an fd + offset the dext maps itself (unix
 * transport). The caller keeps fd; the dext maps it for as long as the region
 * lives. An fd must be sealed against shrinking (F_SEAL_SHRINK; memory from
 * vdx_shm_create is) or the call returns DEXT_E_UNSUPPORTED: a peer could
 * otherwise truncate it under the device. key, size and outputs as selector 5.
 */
struct dext_dma_src {
    void *va;         /* used when fd < 0 */
    int fd;           /* -1: use va */
    uint64_t fd_offset;
};
dext_status dext_uc_register_dma(struct dext_uc *uc, uint64_t key,
                                 const struct dext_dma_src *src, uint64_t size,
                                 uint64_t *bus, uint64_t *bus_len);

/*
 * A memory object for mapping (CopyClientMemoryForType). For the local
 * transport `ptr` is directly usable; `fd` (when >= 0) is a new descriptor the
 * caller owns, mappable MAP_SHARED at `fd_offset` for `size` bytes.
 * `wc` records write-combining intent (prefetchable BAR).
 */
struct dext_mem {
    void *ptr;
    int fd;
    uint64_t fd_offset;
    uint64_t size;
    bool wc;
};
dext_status dext_uc_copy_memory(struct dext_uc *uc, uint32_t type, struct dext_mem *mem);

/* Status of the whole dext as JSON (`vfio-dext status`). Caller puts it. */
struct json_object *dext_status_json(struct dext *d);

/* One place converting -errno from device ops and platform calls. */
dext_status dext_status_from_errno(int neg_errno);
/* Human words for a status ("not open"), never NULL. */
const char *dext_status_str(dext_status st);

#endif /* VFIO_DEXT_CORE_H */
