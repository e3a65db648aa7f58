/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupt state of one device while a client has set interrupts up
 * (selector 13): the shared IRQ state page (pending/enabled bitmaps, dext.h),
 * a private latched bitmap, and the owner's one-shot wait.
 *
 * Delivery rule, derived in one place (irq_flush_latched): a vector raised
 * while disabled is latched; latched & enabled moves to pending (at every
 * raise, check, arm and mask change); pending bits complete an armed wait.
 * Every step is an atomic operation on 64-bit words, so no wake-up is lost
 * (the core serialises raises against setup/release with a mutex):
 *  - raise: if enabled, pending |= bit, else latched |= bit and then
 *    re-check enabled (the client may have enabled it meanwhile);
 *  - arm: armed = 1, then if anything is pending, take armed back and notify.
 * Thread-safety: all functions may run concurrently, except create/destroy.
 */
#ifndef VFIO_DEXT_IRQ_H
#define VFIO_DEXT_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#include "dext/core.h"

struct dext_irq {
    struct dext_irq_page *page; /* shared: mapped from fd */
    int fd;                     /* the page's shareable memory */
    unsigned nvec; /* atomic */
    uint64_t latched[DEXT_IRQ_WORDS]; /* atomic */
    int armed;                        /* atomic: a wait is outstanding */
    dext_notify_fn notify;
    void *opaque;
    /* counters, atomic */
    uint64_t raised, delivered, latched_count, ignored, notified;
};

/* Allocate the page (pending 0, enabled all ones). Returns 0 or -errno. */
int irq_create(unsigned nvec, dext_notify_fn notify, void *opaque, struct dext_irq **out);
void irq_destroy(struct dext_irq *irq);

/* Vectors in use; set once configuration settled (raises beyond are ignored). */
void irq_set_vectors(struct dext_irq *irq, unsigned nvec);
unsigned irq_vectors(const struct dext_irq *irq);

/* A device raised `vector`. */
void irq_raise(struct dext_irq *irq, unsigned vector);
/* Move latched & enabled to pending and notify an armed wait. */
void irq_flush_latched(struct dext_irq *irq);
/* Selector 15: arm the one-shot wait; completes at once if bits are pending. */
void irq_arm(struct dext_irq *irq);
/* Selector 14: swap pending words with 0. */
void irq_check(struct dext_irq *irq, uint64_t out[DEXT_IRQ_WORDS]);
/* Selector 16: store enabled words, then flush latched vectors. */
void irq_set_mask(struct dext_irq *irq, const uint64_t mask[DEXT_IRQ_WORDS]);

#endif /* VFIO_DEXT_IRQ_H */
