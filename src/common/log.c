/* SPDX-License-Identifier: BSD-3-Clause */
#include "common/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warning", "error"};

/* The one process-wide setting: where log lines go (see log.h). */
static struct {
    vdx_log_fn fn;
    void *opaque;
    enum vdx_log_level min;
} sink = {NULL, NULL, VDX_LOG_WARN};

void vdx_log_set(vdx_log_fn fn, void *opaque, enum vdx_log_level min)
{
    sink.fn = fn;
    sink.opaque = opaque;
    sink.min = min;
}

static void emit(enum vdx_log_level lvl, const char *fmt, va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (sink.fn) {
        sink.fn(lvl, msg, sink.opaque);
        return;
    }
    fprintf(stderr, "vfio-dext: %s: %s\n", level_names[lvl], msg);
}

void vdx_log(enum vdx_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    if (lvl < sink.min) {
        return;
    }
    va_start(ap, fmt);
    emit(lvl, fmt, ap);
    va_end(ap);
}

uint64_t vdx_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define RL_WINDOW_NS 1000000000ull
#define RL_BURST 10u

/* Thread-safe: a limiter may be shared by threads (atomics, no lock). */
void vdx_log_ratelimited(struct vdx_ratelimit *rl, enum vdx_log_level lvl, const char *fmt,
                         ...)
{
    uint64_t now = vdx_now_ns();
    uint64_t start = __atomic_load_n(&rl->window_start_ns, __ATOMIC_RELAXED);
    va_list ap;

    if (lvl < sink.min) {
        return;
    }
    if (now - start >= RL_WINDOW_NS &&
        __atomic_compare_exchange_n(&rl->window_start_ns, &start, now, false,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        uint32_t dropped = __atomic_exchange_n(&rl->suppressed, 0, __ATOMIC_RELAXED);

        __atomic_store_n(&rl->in_window, 0, __ATOMIC_RELAXED);
        if (dropped) {
            vdx_log(lvl, "(%u similar messages suppressed)", dropped);
        }
    }
    if (__atomic_fetch_add(&rl->in_window, 1, __ATOMIC_RELAXED) >= RL_BURST) {
        __atomic_add_fetch(&rl->suppressed, 1, __ATOMIC_RELAXED);
        return;
    }
    va_start(ap, fmt);
    emit(lvl, fmt, ap);
    va_end(ap);
}
