/* SPDX-License-Identifier: BSD-3-Clause */
/* Internal structures of the dext core, shared by core.c and status.c. */
#ifndef VFIO_DEXT_CORE_PRIV_H
#define VFIO_DEXT_CORE_PRIV_H

#include <pthread.h>

#include "common/log.h"
#include "dext/core.h"
#include "dext/iommu.h"
#include "dext/irq.h"
#include "dext/regions.h"

struct dma_buffer {
    int fd;
    void *ptr;
    uint64_t size;     /* requested */
    uint64_t map_len;  /* page rounded */
    uint64_t bus;
};

struct dext_uc {
    struct dext_dev *dev;
    uint64_t id;
    dext_notify_fn notify;
    void *opaque;
    bool claimed;
    bool allow_local_va; /* clientVA of selector 5 is a pointer in this process */
    bool sink;           /* the transport has somewhere to deliver completions */
    uint64_t peer_maps;  /* regions backed by our own mmap of a peer's fd */
    uint64_t peer_bytes;
    struct region_table regions;
    struct dma_buffer *dmabuf;
    struct dext_uc *next; /* dev->clients */
};

/* Counters a device keeps; all under dev->lock unless noted. */
struct dev_counters {
    uint64_t config_calls, mmio_calls;
    /* ConfigWrites that reached the device, by the header register they
     * touch (a write spanning two counts in both): COMMAND 0x04-0x05,
     * STATUS 0x06-0x07, BAR0-5 0x10-0x27. A VMM's filter keeps the guest's
     * STATUS and BAR writes away: these prove it. */
    uint64_t config_writes_command, config_writes_status, config_writes_bar;
    uint64_t dma_regions_live, dma_regions_peak;
    uint64_t dma_bytes_live, dma_bytes_peak;
    uint64_t irqs_unconfigured; /* atomic: raised with no interrupts set up */
    uint64_t irqs_raised, irqs_delivered, irqs_latched, irqs_ignored; /* of past setups */
    uint64_t resets_function, resets_hot, resets_failed;
    uint32_t last_reset_method;
};

struct dext_dev {
    struct dext *dext;
    unsigned index;
    struct vdx_device vd;
    struct dext_identity id;
    char bdf[16];
    enum dext_iommu_mode mode;
    struct vdx_dev_host host;

    pthread_mutex_t lock; /* selectors, device ops, clients, claims, counters */
    struct iommu *iommu;  /* own rwlock */
    unsigned claim_refs;
    bool terminated;
    struct dext_uc *clients;
    unsigned nclients;
    uint64_t next_uc_id;
    struct dev_counters c;

    pthread_mutex_t irq_lock; /* guards irq for raises from any thread */
    struct dext_irq *irq;     /* set/cleared under lock + irq_lock */
    struct dext_uc *irq_owner;
    struct vdx_ratelimit rl;
};

/* Caps on mmaps of peers' memory, well below the OS's per-process limits
 * (65,530 mappings by default on Linux, 128 TiB of address space), so that no
 * client can exhaust the daemon for the others. */
#define DEXT_PEER_MAPS_PER_CLIENT 16384u
#define DEXT_PEER_MAPS_TOTAL 32768u
#define DEXT_PEER_BYTES_PER_CLIENT (4ull << 40)
#define DEXT_PEER_BYTES_TOTAL (32ull << 40)

struct dext {
    struct dext_opts opts;
    uint64_t peer_maps, peer_bytes; /* atomic: over all devices and clients */
    pthread_mutex_t lock; /* devs array: devices are added before serving */
    struct dext_dev **devs;
    unsigned ndevs;
};

#endif /* VFIO_DEXT_CORE_PRIV_H */
