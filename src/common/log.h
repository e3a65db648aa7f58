/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging through one callback with levels (CONVENTIONS 11). The sink is the
 * one process-wide setting in the tree; by default it writes to stderr
 * at VDX_LOG_WARN and above. Messages name the device (BDF) they are about.
 * Rate limiting: vdx_log_ratelimited() drops messages of one call site after
 * 10 per second and reports how many were dropped.
 */
#ifndef VFIO_DEXT_LOG_H
#define VFIO_DEXT_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum vdx_log_level { VDX_LOG_DEBUG = 0, VDX_LOG_INFO, VDX_LOG_WARN, VDX_LOG_ERR };

typedef void (*vdx_log_fn)(enum vdx_log_level lvl, const char *msg, void *opaque);

/* Replace the sink (NULL restores stderr) and the minimum level. */
void vdx_log_set(vdx_log_fn fn, void *opaque, enum vdx_log_level min);

void vdx_log(enum vdx_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct vdx_ratelimit {
    uint64_t window_start_ns;
    uint32_t in_window;
    uint32_t suppressed;
};

void vdx_log_ratelimited(struct vdx_ratelimit *rl, enum vdx_log_level lvl,
                         const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Monotonic nanoseconds. */
uint64_t vdx_now_ns(void);

#endif /* VFIO_DEXT_LOG_H */
