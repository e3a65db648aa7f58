/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the interrupt state: pending/enabled bitmaps, latching, one-shot wait. */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "dext/irq.h"
#include "platform/platform.h"

struct sink {
    int fd;     /* wait end */
    int sig_fd; /* signal end, as a dext holds it */
    int calls;  /* atomic */
};

static void on_notify(void *opaque)
{
    struct sink *s = opaque;

    __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
    vdx_event_signal(s->sig_fd);
}

static struct dext_irq *make(struct sink *s, unsigned nvec)
{
    struct dext_irq *irq = NULL;

    assert_int_equal(vdx_event_create(&s->fd, &s->sig_fd), 0);
    s->calls = 0;
    assert_int_equal(irq_create(nvec, on_notify, s, &irq), 0);
    return irq;
}

static void done(struct dext_irq *irq, struct sink *s)
{
    irq_destroy(irq);
    close(s->fd);
    close(s->sig_fd);
}

static void initial_state_and_delivery(void **state)
{
    struct sink s;
    struct dext_irq *irq = make(&s, 256);
    uint64_t out[DEXT_IRQ_WORDS];

    (void)state;
    for (int w = 0; w < DEXT_IRQ_WORDS; w++) {
        assert_int_equal(irq->page->pending[w], 0);
        assert_true(irq->page->enabled[w] == ~0ull);
    }
    irq_raise(irq, 0);
    irq_raise(irq, 65);
    irq_raise(irq, 255);
    irq_raise(irq, 256); /* beyond the vectors: ignored */
    assert_int_equal(s.calls, 0); /* nothing armed */
    irq_check(irq, out);
    assert_true(out[0] == 1 && out[1] == 2 && out[2] == 0 && out[3] == 1ull << 63);
    irq_check(irq, out);
    assert_true(out[0] == 0 && out[1] == 0 && out[3] == 0);
    assert_int_equal(irq->raised, 3);
    assert_int_equal(irq->ignored, 1);
    done(irq, &s);
}

static void wait_is_one_shot(void **state)
{
    struct sink s;
    struct dext_irq *irq = make(&s, 8);

    (void)state;
    irq_arm(irq);
    assert_int_equal(s.calls, 0);
    irq_raise(irq, 1);
    assert_int_equal(s.calls, 1);
    irq_raise(irq, 2); /* not re-armed: no second completion */
    assert_int_equal(s.calls, 1);
    /* Re-arming with bits pending completes at once: no lost wake-up. */
    irq_arm(irq);
    assert_int_equal(s.calls, 2);
    done(irq, &s);
}

static void disabled_vector_is_latched(void **state)
{
    struct sink s;
    struct dext_irq *irq = make(&s, 64);
    uint64_t mask[DEXT_IRQ_WORDS] = {~(1ull << 3), ~0ull, ~0ull, ~0ull};
    uint64_t out[DEXT_IRQ_WORDS];

    (void)state;
    irq_set_mask(irq, mask);
    irq_arm(irq);
    irq_raise(irq, 3);
    assert_int_equal(irq->page->pending[0], 0);
    assert_int_equal(s.calls, 0);
    assert_int_equal(irq->latched_count, 1);
    irq_check(irq, out);
    assert_int_equal(out[0], 0); /* still masked: stays latched */
    mask[0] = ~0ull;
    irq_set_mask(irq, mask); /* enabling delivers it, and completes the wait */
    assert_int_equal(irq->page->pending[0], 1ull << 3);
    assert_int_equal(s.calls, 1);
    irq_check(irq, out);
    assert_int_equal(out[0], 1ull << 3);
    irq_check(irq, out);
    assert_int_equal(out[0], 0); /* delivered exactly once */
    done(irq, &s);
}

static void enable_through_page_delivers_on_next_check(void **state)
{
    struct sink s;
    struct dext_irq *irq = make(&s, 64);
    uint64_t out[DEXT_IRQ_WORDS];

    (void)state;
    /* A client masking and unmasking through the shared page, with no call. */
    __atomic_store_n(&irq->page->enabled[0], 0, __ATOMIC_SEQ_CST);
    irq_raise(irq, 7);
    __atomic_store_n(&irq->page->enabled[0], ~0ull, __ATOMIC_SEQ_CST);
    irq_check(irq, out);
    assert_int_equal(out[0], 1ull << 7);
    done(irq, &s);
}

/* ---- raise/drain race: every raise is seen, no wake-up is lost -------------- */

#define RACE_ROUNDS 20000

struct race {
    struct dext_irq *irq;
    struct sink *s;
    uint64_t drained; /* atomic: bits seen by the consumer */
    int stop;
    int lost; /* the consumer timed out waiting: a lost wake-up */
};

static void *consumer(void *arg)
{
    struct race *r = arg;
    struct pollfd pfd = {.fd = r->s->fd, .events = POLLIN};
    uint64_t out[DEXT_IRQ_WORDS];

    irq_arm(r->irq);
    while (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST)) {
        int n = poll(&pfd, 1, 2000);

        if (n == 0) {
            if (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST)) {
                r->lost = 1;
            }
            break;
        }
        vdx_event_drain(r->s->fd);
        irq_check(r->irq, out);
        for (int w = 0; w < DEXT_IRQ_WORDS; w++) {
            __atomic_add_fetch(&r->drained, (uint64_t)__builtin_popcountll(out[w]),
                               __ATOMIC_SEQ_CST);
        }
        irq_arm(r->irq);
    }
    return NULL;
}

static void no_lost_wakeup_under_race(void **state)
{
    struct sink s;
    struct race r = {.irq = make(&s, 256), .s = &s};
    pthread_t th;
    uint64_t deadline;

    (void)state;
    assert_int_equal(pthread_create(&th, NULL, consumer, &r), 0);
    for (uint64_t i = 0; i < RACE_ROUNDS && !r.lost; i++) {
        irq_raise(r.irq, (unsigned)(i % 256));
        deadline = vdx_now_ns() + 2000000000ull;
        /* Wait until drained so nothing coalesces and every raise counts. */
        while (__atomic_load_n(&r.drained, __ATOMIC_SEQ_CST) < i + 1 && !r.lost &&
               vdx_now_ns() < deadline) {
            sched_yield();
        }
        assert_true(__atomic_load_n(&r.drained, __ATOMIC_SEQ_CST) >= i + 1);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_SEQ_CST);
    vdx_event_signal(s.sig_fd);
    pthread_join(th, NULL);
    assert_int_equal(r.lost, 0);
    assert_int_equal(r.drained, RACE_ROUNDS);
    done(r.irq, &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(initial_state_and_delivery),
        cmocka_unit_test(wait_is_one_shot),
        cmocka_unit_test(disabled_vector_is_latched),
        cmocka_unit_test(enable_through_page_delivers_on_next_check),
        cmocka_unit_test(no_lost_wakeup_under_race),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
