/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The passthrough backend: one PCI device owned by a dext, served to a VMM.
 * It implements the seed's VMM-side semantics (shared/reference/
 * seed-system.md §4: region info §4.3, IRQ info and set_irqs §4.4, delivery
 * §4.5, the config filter §4.6, BAR access §4.7, reset §4.8) on top of a
 * dext client connection (vfio-dext/client.h), and exposes them as a
 * vfio-user backend (struct vdx_vu_backend_ops, vfio-user/server.h). The
 * logic is VMM-neutral: a VMM could call the same functions directly.
 *
 * Event loop: none of its own. vdx_passthru_irq_fd() is readable when the
 * dext has interrupts pending; the caller then calls vdx_passthru_step(),
 * which drains the dext's IRQ state page and signals the eventfd of every
 * pending vector (vdx_vu_eventfd_signal()).
 *
 * Thread-safety: none. Every function taking a struct vdx_passthru, and
 * every backend op, must run on one thread: the one that steps the
 * vfio-user server. (The server closes a replaced eventfd right after
 * set_irqs returns; vdx_passthru_step() on another thread could signal a
 * closed or reused descriptor.)
 *
 * Errors: 0 or -errno. A dext status becomes an errno in one place
 * (vdx_passthru_errno()).
 *
 * Deliberate differences from the seed (see docs/serve.md):
 *  - BARs are never offered mmappable: the client library gives a mapped
 *    pointer for a shareable BAR but no descriptor, so every BAR access is
 *    trapped (through the pointer when the dext shares the BAR, through
 *    MMIO selectors otherwise).
 *  - MSI-X IRQ info has no NORESIZE (vfio-user reference §3.3), and its
 *    count comes from the device's MSI-X capability in config space.
 *  - DMA maps are registered with the dext (the seed's container had no-op
 *    stubs and relied on the companion); maps without a descriptor, or with
 *    an unsealed one, are accepted but not registered (QEMU aborts on a
 *    refused RAM map): the device cannot reach that memory.
 */
#ifndef VFIO_DEXT_PASSTHRU_H
#define VFIO_DEXT_PASSTHRU_H

#include <stdint.h>

#include "vfio-dext/client.h"
#include "vfio-user/server.h"

struct vdx_passthru;

/* Counters. Config-write counters count REGION_WRITEs to config space. */
struct vdx_passthru_stats {
    uint64_t cfg_writes;          /* config writes received */
    uint64_t cfg_writes_forwarded;/* forwarded whole (no filtered register touched) */
    uint64_t cfg_command_bytes;   /* COMMAND bytes forwarded as 1-byte writes */
    uint64_t cfg_writes_dropped;  /* remainder dropped: overlapped STATUS or BAR0-5 */
    uint64_t cfg_writes_rejected; /* length not 1, 2 or 4: -EINVAL */
    uint64_t bar_errors;          /* BAR accesses the dext failed or refused */
    uint64_t irqs_delivered;      /* eventfd signals sent */
    uint64_t irqs_dropped;        /* pending vectors with no eventfd */
    uint64_t irq_mask_errors;     /* SetIRQMask failures (set_irqs still succeeds) */
    uint64_t dma_registered;      /* live dext DMA registrations */
    uint64_t dma_unreachable;     /* live maps without fd or unsealed: not registered */
    uint64_t dma_errors;          /* maps the dext refused */
};

/*
 * Take over the device behind `conn`: claim it (a no-op if already claimed),
 * read its BAR layout and map the BARs the dext can share, read the MSI-X
 * table size from config space, set interrupts up (selector 13), map the IRQ
 * state page and create the interrupt notifier. `name` labels log lines (the
 * BDF; copied). conn is borrowed and must outlive the backend; it must not
 * be used for interrupts by anyone else.
 * Returns 0 and *out, or -errno: -ENOMEM; the dext's error for claim,
 * SetupInterrupts (-EEXIST: another client set interrupts up), IRQ page or
 * notifier (see vdx_passthru_errno()). On error nothing is left behind
 * in this process; the claim and, if SetupInterrupts succeeded, the
 * interrupt setup stay with the connection (the dext releases them when it
 * closes: the contract has no selector to undo them).
 */
int vdx_passthru_create(struct vdx_conn *conn, const char *name, struct vdx_passthru **out);

/* Unmap the BARs and the notifier, forget every eventfd (not closed: they are
 * the server's). Destroy the vfio-user server first. NULL ok. */
void vdx_passthru_destroy(struct vdx_passthru *pt);

/* The backend operations; opaque is the struct vdx_passthru. Static. */
const struct vdx_vu_backend_ops *vdx_passthru_ops(void);

/* A descriptor readable when interrupts are pending (owned by pt). */
int vdx_passthru_irq_fd(const struct vdx_passthru *pt);

/*
 * Non-blocking: acknowledge the notifier, drain the pending bits of the IRQ
 * state page, signal each vector's eventfd, re-arm the wait. Returns the
 * number of eventfds signalled (>= 0), or -errno if re-arming failed (the
 * dext is gone: -ENODEV).
 */
int vdx_passthru_step(struct vdx_passthru *pt);

/* Number of interrupt vectors the dext granted (SetupInterrupts). */
uint32_t vdx_passthru_vectors(const struct vdx_passthru *pt);

void vdx_passthru_stats(const struct vdx_passthru *pt, struct vdx_passthru_stats *st);

/* The errno for a dext status (DEXT_OK: 0). The one place this is decided. */
int vdx_passthru_errno(dext_status st);

#endif /* VFIO_DEXT_PASSTHRU_H */
