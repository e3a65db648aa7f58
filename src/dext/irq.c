/* SPDX-License-Identifier: BSD-3-Clause */
#include "dext/irq.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "platform/platform.h"

#define SEQ __ATOMIC_SEQ_CST

int irq_create(unsigned nvec, dext_notify_fn notify, void *opaque, struct dext_irq **out)
{
    struct dext_irq *irq = calloc(1, sizeof(*irq));
    int ret;

    if (!irq) {
        return -ENOMEM;
    }
    ret = vdx_shm_create("vfio-dext-irq", DEXT_IRQ_PAGE_SIZE);
    if (ret < 0) {
        goto out_free;
    }
    irq->fd = ret;
    irq->page = vdx_shm_map(irq->fd, 0, DEXT_IRQ_PAGE_SIZE);
    if (!irq->page) {
        ret = -errno;
        goto out_close;
    }
    for (unsigned w = 0; w < DEXT_IRQ_WORDS; w++) {
        irq->page->enabled[w] = ~0ull;
    }
    irq->nvec = nvec;
    irq->notify = notify;
    irq->opaque = opaque;
    *out = irq;
    return 0;

out_close:
    close(irq->fd);
out_free:
    free(irq);
    return ret;
}

void irq_destroy(struct dext_irq *irq)
{
    if (!irq) {
        return;
    }
    vdx_shm_unmap(irq->page, DEXT_IRQ_PAGE_SIZE);
    close(irq->fd);
    free(irq);
}

static bool any_pending(struct dext_irq *irq)
{
    for (unsigned w = 0; w < DEXT_IRQ_WORDS; w++) {
        if (__atomic_load_n(&irq->page->pending[w], SEQ)) {
            return true;
        }
    }
    return false;
}

/* Complete the armed wait, if any: exactly one notification per arm. */
static void complete_wait(struct dext_irq *irq)
{
    if (__atomic_exchange_n(&irq->armed, 0, SEQ) && irq->notify) {
        __atomic_add_fetch(&irq->notified, 1, __ATOMIC_RELAXED);
        irq->notify(irq->opaque);
    }
}

static void deliver(struct dext_irq *irq, unsigned w, uint64_t bits)
{
    __atomic_fetch_or(&irq->page->pending[w], bits, SEQ);
    __atomic_add_fetch(&irq->delivered, (uint64_t)__builtin_popcountll(bits),
                       __ATOMIC_RELAXED);
    complete_wait(irq);
}

/* Move latched & enabled of word w to pending; true if anything moved. */
static bool flush_word(struct dext_irq *irq, unsigned w)
{
    uint64_t want = __atomic_load_n(&irq->latched[w], SEQ) &
                    __atomic_load_n(&irq->page->enabled[w], SEQ);
    uint64_t taken;

    if (!want) {
        return false;
    }
    taken = __atomic_fetch_and(&irq->latched[w], ~want, SEQ) & want;
    if (taken) {
        deliver(irq, w, taken);
    }
    return taken != 0;
}

void irq_flush_latched(struct dext_irq *irq)
{
    for (unsigned w = 0; w < DEXT_IRQ_WORDS; w++) {
        flush_word(irq, w);
    }
}

void irq_set_vectors(struct dext_irq *irq, unsigned nvec)
{
    __atomic_store_n(&irq->nvec, nvec, __ATOMIC_RELEASE);
}

unsigned irq_vectors(const struct dext_irq *irq)
{
    return __atomic_load_n(&irq->nvec, __ATOMIC_ACQUIRE);
}

void irq_raise(struct dext_irq *irq, unsigned vector)
{
    unsigned w = vector / 64;
    uint64_t bit = 1ull << (vector % 64);

    if (vector >= irq_vectors(irq)) {
        __atomic_add_fetch(&irq->ignored, 1, __ATOMIC_RELAXED);
        return;
    }
    __atomic_add_fetch(&irq->raised, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&irq->page->enabled[w], SEQ) & bit) {
        deliver(irq, w, bit);
    } else {
        __atomic_fetch_or(&irq->latched[w], bit, SEQ);
        __atomic_add_fetch(&irq->latched_count, 1, __ATOMIC_RELAXED);
    }
    /* Vectors the client enabled through the page since they were latched
     * (this one too, if it was enabled between our load and the latch). */
    irq_flush_latched(irq);
}

void irq_arm(struct dext_irq *irq)
{
    __atomic_store_n(&irq->armed, 1, SEQ);
    irq_flush_latched(irq);
    if (any_pending(irq)) {
        complete_wait(irq);
    }
}

void irq_check(struct dext_irq *irq, uint64_t out[DEXT_IRQ_WORDS])
{
    irq_flush_latched(irq);
    for (unsigned w = 0; w < DEXT_IRQ_WORDS; w++) {
        out[w] = __atomic_exchange_n(&irq->page->pending[w], 0, SEQ);
    }
}

void irq_set_mask(struct dext_irq *irq, const uint64_t mask[DEXT_IRQ_WORDS])
{
    for (unsigned w = 0; w < DEXT_IRQ_WORDS; w++) {
        __atomic_store_n(&irq->page->enabled[w], mask[w], SEQ);
    }
    irq_flush_latched(irq);
}
