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
 *  - The seed maps every BAR into the VMM. Here a BAR the dext shares as a
 *    descriptor (vdx_bar_fd(), e.g. sim:testdev's BAR2) is offered
 *    mmappable: region info carries the descriptor, MMAP and a sparse-mmap
 *    capability whose page-aligned areas cover the BAR except the pages
 *    holding the MSI-X table and PBA (which QEMU must keep trapping). Any
 *    other BAR (device registers, e.g. sim:nvme's BAR0; a transport without
 *    descriptors, such as iokit) and those pages are trapped: REGION_READ/
 *    WRITE through the dext's mapping when it shares the BAR as memory,
 *    through MMIO selectors otherwise. Trapped accesses to mmappable areas
 *    are served too. Offering MMAP turns QEMU's posted BAR writes off for the
 *    device (reference/vfio-user.md §3.7).
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
    uint64_t bar_reads;           /* trapped BAR reads (REGION_READ of a BAR) */
    uint64_t bar_writes;          /* trapped BAR writes (REGION_WRITE of a BAR) */
    uint64_t bar_errors;          /* BAR accesses the dext failed or refused */
    uint64_t bars_mmappable;      /* BARs offered mmappable (at create) */
    uint64_t irqs_delivered;      /* eventfd signals sent */
    uint64_t irqs_dropped;        /* pending vectors with no eventfd */
    uint64_t errors_reported;     /* ERR eventfd signals (device lost) */
    uint64_t irq_mask_errors;     /* SetIRQMask failures (set_irqs still succeeds) */
    uint64_t dma_registered;      /* live dext DMA registrations */
    uint64_t dma_unreachable;     /* live maps without fd or unsealed: not registered */
    uint64_t dma_errors;          /* maps the dext refused */
};

/*
 * Take over the device behind `conn`: claim it (a no-op if already claimed),
 * read the MSI-X layout from config space, read its BAR layout, map the BARs
 * the dext shares as memory (for trapped accesses) and take a descriptor of
 * those it shares as one (offered mmappable), set interrupts up (selector
 * 13), map the IRQ state page and create the interrupt notifier. `name`
 * labels log lines (the BDF; copied). conn is borrowed and must outlive the
 * backend; it may be shared (vfio/conn_table.h) but must not be used for
 * interrupts by anyone else. BAR mappings made through it are the
 * connection's (shared with its other users) and go when it closes.
 * Returns 0 and *out, or -errno: -ENOMEM; the dext's error for claim,
 * SetupInterrupts (-EEXIST: another client set interrupts up), IRQ page or
 * notifier (see vdx_passthru_errno()). On error nothing is left behind
 * in this process; the claim and, if SetupInterrupts succeeded, the
 * interrupt setup stay with the connection (the dext releases them when it
 * closes: the contract has no selector to undo them).
 */
int vdx_passthru_create(struct vdx_conn *conn, const char *name, struct vdx_passthru **out);

/* Close the BAR descriptors and the notifier, forget every eventfd (not
 * closed: they are the server's). Destroy the vfio-user server first (it
 * sends the BAR descriptors). NULL ok. */
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

/*
 * The device is gone (the dext went away, vdx_passthru_step() failed):
 * signal the VMM's ERR eventfd if it gave one (QEMU then stops the guest
 * with an error instead of letting it run on a dead device). The caller
 * decides what happens to the server next. NULL ok.
 */
void vdx_passthru_report_lost(struct vdx_passthru *pt);

/* Number of interrupt vectors the dext granted (SetupInterrupts). */
uint32_t vdx_passthru_vectors(const struct vdx_passthru *pt);

void vdx_passthru_stats(const struct vdx_passthru *pt, struct vdx_passthru_stats *st);

/* The errno for a dext status (DEXT_OK: 0). The one place this is decided. */
int vdx_passthru_errno(dext_status st);

#endif /* VFIO_DEXT_PASSTHRU_H */
