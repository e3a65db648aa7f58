/* SPDX-License-Identifier: BSD-3-Clause */
/* Probe checks: interrupts (selectors 13-16), reset (17) and terminate (2). */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "cli/probe.h"
#include "common/log.h"
#include "devices/testdev.h"

#define NOTIFY_TIMEOUT_MS 2000

static bool pending_bit(const uint64_t pending[DEXT_IRQ_WORDS], unsigned v)
{
    return (pending[v / 64] >> (v % 64)) & 1;
}

/* A vector the device can raise: `want` folded into the vectors set up. */
static unsigned pick_vector(const struct probe *p, unsigned want)
{
    return want % p->nvec;
}

static dext_status raise_vector(struct probe *p, unsigned v)
{
    return probe_td_write(p, TESTDEV_REG_RAISE, 4, v);
}

void probe_check_irq_setup(struct probe *p)
{
    uint32_t n = 0;
    dext_status st;

    if (probe_skip_unless_claimed(p, DEXT_SEL_SETUP_INTERRUPTS, "interrupt setup")) {
        return;
    }
    st = vdx_setup_interrupts(p->conn, &n);
    if (st == DEXT_E_STILL_OPEN && p->claimed_by_other) {
        probe_report(p, DEXT_SEL_SETUP_INTERRUPTS, NULL, PROBE_SKIP,
                     "another client owns the device's interrupts: %s", vdx_status_str(st));
        return;
    }
    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_SETUP_INTERRUPTS, NULL, PROBE_FAIL,
                     "interrupt setup refused: %s", vdx_status_str(st));
        return;
    }
    probe_report(p, DEXT_SEL_SETUP_INTERRUPTS, NULL,
                 n >= 1 && n <= DEXT_MAX_VECTORS ? PROBE_PASS : PROBE_FAIL,
                 "%u vector(s) set up (1..%u expected)", n, DEXT_MAX_VECTORS);
    p->nvec = n >= 1 && n <= DEXT_MAX_VECTORS ? n : 0;
    probe_expect_status(p, DEXT_SEL_SETUP_INTERRUPTS, "second setup refused",
                        vdx_setup_interrupts(p->conn, NULL), DEXT_E_STILL_OPEN);
}

static bool skip_unless_irqs(struct probe *p, int sel, const char *what)
{
    if (p->nvec) {
        return false;
    }
    probe_report(p, sel, NULL, PROBE_SKIP, "%s: needs interrupts set up by this client",
                 what);
    return true;
}

/* ---- Selectors 14 and 16, the IRQ state page ------------------------------------ */

static void irq_page_map(struct probe *p)
{
    dext_status st = vdx_map_irq_page(p->conn, &p->irq_page);

    if (st != DEXT_OK) {
        p->irq_page = NULL;
        probe_report(p, PROBE_NO_SEL, "MapIRQPage", PROBE_FAIL,
                     "IRQ state page (memory type 7) not mapped: %s", vdx_status_str(st));
        return;
    }
    probe_report(p, PROBE_NO_SEL, "MapIRQPage", PROBE_PASS,
                 "IRQ state page mapped (enabled words 0x%llx 0x%llx 0x%llx 0x%llx)",
                 (unsigned long long)p->irq_page->enabled[0],
                 (unsigned long long)p->irq_page->enabled[1],
                 (unsigned long long)p->irq_page->enabled[2],
                 (unsigned long long)p->irq_page->enabled[3]);
}

static void irq_mask_reaches_page(struct probe *p)
{
    const uint64_t all[DEXT_IRQ_WORDS] = {~0ull, ~0ull, ~0ull, ~0ull};
    const uint64_t mask[DEXT_IRQ_WORDS] = {~0ull, ~0ull, 0x00ff00ff00ff00ffull, ~0ull};
    uint64_t seen = 0;
    dext_status st = vdx_set_irq_mask(p->conn, mask);

    if (st == DEXT_OK && p->irq_page) {
        seen = __atomic_load_n(&p->irq_page->enabled[2], __ATOMIC_ACQUIRE);
    }
    if (st == DEXT_OK) {
        st = vdx_set_irq_mask(p->conn, all);
    }
    if (!p->irq_page || st != DEXT_OK) {
        probe_expect_status(p, DEXT_SEL_SET_IRQ_MASK, "enable words set and restored", st,
                            DEXT_OK);
        return;
    }
    probe_report(
        p, DEXT_SEL_SET_IRQ_MASK, NULL, seen == mask[2] ? PROBE_PASS : PROBE_FAIL,
        "enable words reach the IRQ state page (word 2 = 0x%016llx), then restored",
        (unsigned long long)seen);
}

/* sim:testdev: a raised vector is pending until read, and the read clears it. */
static void irq_raise_and_check(struct probe *p)
{
    uint64_t first[DEXT_IRQ_WORDS] = {0}, second[DEXT_IRQ_WORDS] = {0};
    unsigned v = pick_vector(p, 5);
    dext_status st;

    vdx_read_pending_irqs(p->conn, first);
    st = raise_vector(p, v);
    if (st == DEXT_OK) {
        st = vdx_read_pending_irqs(p->conn, first);
    }
    if (st == DEXT_OK) {
        st = vdx_read_pending_irqs(p->conn, second);
    }
    probe_report(p, DEXT_SEL_CHECK_INTERRUPT, NULL,
                 st == DEXT_OK && pending_bit(first, v) && !pending_bit(second, v)
                     ? PROBE_PASS
                     : PROBE_FAIL,
                 "vector %u raised by the device: %s pending, %s by the read%s", v,
                 pending_bit(first, v) ? "seen" : "NOT seen",
                 pending_bit(second, v) ? "NOT cleared" : "cleared", probe_err(st));
}

/* sim:testdev: the pending bit shows in the mapped page; drained by a swap. */
static void irq_page_drain(struct probe *p)
{
    unsigned v = pick_vector(p, 6);
    uint64_t word = 0, deadline = vdx_now_ns() + 1000000000ull;
    dext_status st = raise_vector(p, v);

    while (st == DEXT_OK && !((word >> (v % 64)) & 1) && vdx_now_ns() < deadline) {
        word |= __atomic_exchange_n(&p->irq_page->pending[v / 64], 0, __ATOMIC_ACQ_REL);
    }
    probe_report(p, PROBE_NO_SEL, "MapIRQPage",
                 (word >> (v % 64)) & 1 ? PROBE_PASS : PROBE_FAIL,
                 "vector %u seen pending in the page and drained by an atomic swap "
                 "(word 0x%016llx)",
                 v, (unsigned long long)word);
}

void probe_check_irq_mask(struct probe *p)
{
    uint64_t pending[DEXT_IRQ_WORDS] = {0};
    dext_status st;

    if (skip_unless_irqs(p, DEXT_SEL_CHECK_INTERRUPT, "pending bits")) {
        return;
    }
    st = vdx_read_pending_irqs(p->conn, pending);
    probe_report(p, DEXT_SEL_CHECK_INTERRUPT, NULL, st == DEXT_OK ? PROBE_PASS : PROBE_FAIL,
                 "pending words read and cleared (0x%llx 0x%llx 0x%llx 0x%llx%s)",
                 (unsigned long long)pending[0], (unsigned long long)pending[1],
                 (unsigned long long)pending[2], (unsigned long long)pending[3],
                 probe_err(st));
    irq_page_map(p);
    irq_mask_reaches_page(p);
    if (probe_skip_unless_testdev(p, DEXT_SEL_CHECK_INTERRUPT, NULL, "raise a vector")) {
        return;
    }
    irq_raise_and_check(p);
    if (p->irq_page) {
        irq_page_drain(p);
    }
}

/* ---- Selector 15: the notification ------------------------------------------- */

static bool fd_readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

/* Raise v, wait for the fd, ack, see the bit, re-arm; no spurious wake-up. */
static void notify_wakeup(struct probe *p, struct vdx_notify *n)
{
    uint64_t pending[DEXT_IRQ_WORDS] = {0};
    unsigned v = pick_vector(p, 7);
    int fd = vdx_notify_fd(n);
    uint64_t t0 = vdx_now_ns(), waited;
    dext_status st = raise_vector(p, v);
    bool woke = st == DEXT_OK && fd_readable(fd, NOTIFY_TIMEOUT_MS);
    bool acked, seen, quiet;

    waited = vdx_now_ns() - t0;
    acked = woke && vdx_notify_ack(n);
    if (st == DEXT_OK) {
        st = vdx_read_pending_irqs(p->conn, pending);
    }
    seen = pending_bit(pending, v);
    if (st == DEXT_OK) {
        st = vdx_notify_rearm(n);
    }
    quiet = st == DEXT_OK && !fd_readable(fd, 20);
    if (!woke) {
        probe_report(p, DEXT_SEL_WAIT_INTERRUPT, NULL, PROBE_FAIL,
                     "vector %u raised: notify fd NOT readable within %d ms%s", v,
                     NOTIFY_TIMEOUT_MS, probe_err(st));
        return;
    }
    probe_report(p, DEXT_SEL_WAIT_INTERRUPT, NULL,
                 acked && seen && quiet ? PROBE_PASS : PROBE_FAIL,
                 "vector %u raised: notify fd readable after %.1f us, pending bit %s, "
                 "re-armed %s",
                 v, (double)waited / 1000.0, seen ? "seen" : "NOT seen",
                 quiet ? "with no spurious wake-up" : "but woke again at once");
}

/* Seed §2.8: re-arming while bits are pending completes at once. */
static void notify_rearm_pending(struct probe *p, struct vdx_notify *n)
{
    uint64_t pending[DEXT_IRQ_WORDS] = {0};
    unsigned v = pick_vector(p, 9);
    int fd = vdx_notify_fd(n);
    bool first, again;
    dext_status st = raise_vector(p, v);

    first = st == DEXT_OK && fd_readable(fd, NOTIFY_TIMEOUT_MS);
    vdx_notify_ack(n);
    if (st == DEXT_OK) {
        st = vdx_notify_rearm(n); /* bit v still pending: must complete at once */
    }
    again = st == DEXT_OK && fd_readable(fd, 200);
    vdx_notify_ack(n);
    vdx_read_pending_irqs(p->conn, pending);
    probe_report(p, DEXT_SEL_WAIT_INTERRUPT, NULL, first && again ? PROBE_PASS : PROBE_FAIL,
                 "re-arm with vector %u still pending completes at once (%s%s)", v,
                 again ? "woke" : "did NOT wake", probe_err(st));
    vdx_notify_rearm(n);
}

void probe_check_irq_notify(struct probe *p)
{
    uint64_t pending[DEXT_IRQ_WORDS];
    struct vdx_notify *n = NULL;
    dext_status st;

    if (skip_unless_irqs(p, DEXT_SEL_WAIT_INTERRUPT, "interrupt notification")) {
        return;
    }
    vdx_read_pending_irqs(p->conn, pending);
    st = vdx_notify_create(p->conn, &n);
    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_WAIT_INTERRUPT, NULL, PROBE_FAIL,
                     "notification not armed: %s", vdx_status_str(st));
        return;
    }
    probe_report(p, DEXT_SEL_WAIT_INTERRUPT, NULL,
                 fd_readable(vdx_notify_fd(n), 0) ? PROBE_FAIL : PROBE_PASS,
                 "notification armed; its fd stays quiet while nothing is pending");
    if (!probe_skip_unless_testdev(p, DEXT_SEL_WAIT_INTERRUPT, NULL,
                                   "wake-up on a raise")) {
        notify_wakeup(p, n);
        notify_rearm_pending(p, n);
    }
    vdx_notify_destroy(n);
}

/* ---- Selectors 17 and 2 -------------------------------------------------------- */

static const char *reset_method_str(uint32_t m)
{
    switch (m) {
    case DEXT_RESET_FUNCTION:
        return "function level reset (FLR)";
    case DEXT_RESET_HOT:
        return "hot reset (secondary bus reset)";
    default:
        return "method not reported";
    }
}

void probe_check_reset(struct probe *p)
{
    uint64_t scratch = ~0ull;
    uint32_t method = DEXT_RESET_NONE;
    dext_status st;

    if (probe_skip_unless_claimed(p, DEXT_SEL_RESET_DEVICE, "reset") ||
        probe_skip_if_in_use(p, DEXT_SEL_RESET_DEVICE, NULL, "reset")) {
        return;
    }
    if (p->testdev) {
        probe_td_write(p, TESTDEV_REG_SCRATCH, 4, 0x12345678);
    }
    st = vdx_reset_device(p->conn, &method);
    if (st != DEXT_OK) {
        probe_report(p, DEXT_SEL_RESET_DEVICE, NULL, PROBE_FAIL, "reset failed: %s",
                     vdx_status_str(st));
        return;
    }
    if (!p->testdev) {
        probe_report(p, DEXT_SEL_RESET_DEVICE, NULL, PROBE_PASS, "reset by %s",
                     reset_method_str(method));
        return;
    }
    st = probe_td_read(p, TESTDEV_REG_SCRATCH, 4, &scratch);
    probe_report(p, DEXT_SEL_RESET_DEVICE, NULL,
                 st == DEXT_OK && scratch == 0 ? PROBE_PASS : PROBE_FAIL,
                 "reset by %s; scratch register back to its reset value (0x%llx)",
                 reset_method_str(method), (unsigned long long)scratch);
}

void probe_check_terminate(struct probe *p)
{
    probe_report(p, DEXT_SEL_TERMINATE, NULL, PROBE_SKIP,
                 "not called: it would remove the device from the dext");
}
