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
    struct region_table regions;
    struct dma_buffer *dmabuf;
    struct dext_uc *next; /* dev->clients */
};

/* Counters a device keeps; all under dev->lock unless noted. */
struct dev_counters {
    uint64_t config_calls, mmio_calls;
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

struct dext {
    struct dext_opts opts;
    pthread_mutex_t lock; /* devs array */
    struct dext_dev **devs;
    unsigned ndevs;
};

#endif /* VFIO_DEXT_CORE_PRIV_H */
