/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupts of the passthrough backend: IRQ info and set_irqs (seed §4.4),
 * delivery from the dext's pending bitmap to eventfds (§4.5).
 *
 * State: efd[index][vector] is the eventfd QEMU gave for that vector. The
 * dext's enable mask is derived from it in one place (irq_mask_update()):
 * vector v is enabled iff MSI or MSI-X vector v has an eventfd, and vector 0
 * also when INTx has one. A vector the device raises while disabled is
 * latched by the dext and delivered once enabled.
 */
#include <errno.h>
#include <string.h>

#include "vfio/passthru_priv.h"

int pt_irq_info(void *opaque, uint32_t index, struct vdx_vu_be_irq *info)
{
    struct vdx_passthru *pt = opaque;

    switch (index) {
    case VDX_VU_PCI_INTX_IRQ:
        info->flags = VDX_VU_IRQ_INFO_F_EVENTFD;
        info->count = 1;
        return 0;
    case VDX_VU_PCI_MSI_IRQ:
        info->flags = VDX_VU_IRQ_INFO_F_EVENTFD;
        info->count = pt->vectors;
        return 0;
    case VDX_VU_PCI_MSIX_IRQ:
        info->flags = VDX_VU_IRQ_INFO_F_EVENTFD; /* no NORESIZE: ref §3.3 */
        info->count = pt->msix.entries;
        return 0;
    case VDX_VU_PCI_ERR_IRQ: /* one eventfd: vdx_passthru_report_lost() */
        info->flags = VDX_VU_IRQ_INFO_F_EVENTFD;
        info->count = 1;
        return 0;
    case VDX_VU_PCI_REQ_IRQ:
        info->flags = 0;
        info->count = 0;
        return 0;
    default:
        return -EINVAL;
    }
}

static void efd_clear(struct vdx_passthru *pt, uint32_t index)
{
    for (uint32_t v = 0; v < DEXT_MAX_VECTORS; v++) {
        pt->efd[index][v] = -1;
    }
}

/* The one place the delivered set is derived. */
static void irq_mask_update(struct vdx_passthru *pt)
{
    uint64_t mask[DEXT_IRQ_WORDS] = {0};
    dext_status st;

    for (uint32_t v = 0; v < DEXT_MAX_VECTORS; v++) {
        if (pt->efd[VDX_VU_PCI_MSI_IRQ][v] >= 0 || pt->efd[VDX_VU_PCI_MSIX_IRQ][v] >= 0) {
            mask[v / 64] |= 1ull << (v % 64);
        }
    }
    if (pt->efd[VDX_VU_PCI_INTX_IRQ][0] >= 0) {
        mask[0] |= 1;
    }
    st = vdx_set_irq_mask(pt->conn, mask);
    if (st != DEXT_OK) {
        pt->st.irq_mask_errors++;
        vdx_log_ratelimited(&pt->rl, VDX_LOG_WARN, "passthru %s: SetIRQMask failed: %s",
                            pt->name, vdx_status_str(st));
    }
}

/* "Fire now" (data NONE/BOOL with TRIGGER): signal the current eventfds. */
static void irq_fire(struct vdx_passthru *pt, const struct vdx_vu_be_irq_set *set)
{
    for (uint32_t i = 0; i < set->count; i++) {
        uint32_t v = set->start + i;

        if (v >= DEXT_MAX_VECTORS || pt->efd[set->index][v] < 0) {
            continue;
        }
        if (set->bools == NULL || set->bools[i]) {
            vdx_vu_eventfd_signal(pt->efd[set->index][v]);
        }
    }
}

/* The ERR index: one eventfd (start 0, count <= 1), or fire it. */
static int err_set(struct vdx_passthru *pt, const struct vdx_vu_be_irq_set *set)
{
    if (set->count == 0) {
        pt->err_efd = -1;
    } else if (set->data == VDX_VU_IRQ_SET_DATA_EVENTFD) {
        pt->err_efd = set->fds != NULL ? set->fds[0] : -1;
    } else if (pt->err_efd >= 0 && (set->bools == NULL || set->bools[0])) {
        vdx_vu_eventfd_signal(pt->err_efd);
    }
    return 0;
}

void vdx_passthru_report_lost(struct vdx_passthru *pt)
{
    if (pt != NULL && pt->err_efd >= 0) {
        vdx_vu_eventfd_signal(pt->err_efd);
        pt->st.errors_reported++;
    }
}

/*
 * Record the new eventfds (TRIGGER) and re-derive the mask. As in the seed,
 * this never fails: MASK/UNMASK (INTx resampling) are accepted and ignored,
 * and a SetIRQMask failure is counted and logged.
 */
int pt_set_irqs(void *opaque, const struct vdx_vu_be_irq_set *set)
{
    struct vdx_passthru *pt = opaque;

    if (set->index == VDX_VU_PCI_ERR_IRQ && set->action == VDX_VU_IRQ_SET_ACTION_TRIGGER) {
        return err_set(pt, set);
    }
    if (set->index >= PT_EFD_INDEXES || set->action != VDX_VU_IRQ_SET_ACTION_TRIGGER) {
        return 0;
    }
    if (set->count == 0) {
        efd_clear(pt, set->index);
    } else if (set->data == VDX_VU_IRQ_SET_DATA_EVENTFD) {
        for (uint32_t i = 0; i < set->count; i++) {
            uint32_t v = set->start + i;

            if (v < DEXT_MAX_VECTORS) {
                pt->efd[set->index][v] = set->fds != NULL ? set->fds[i] : -1;
            }
        }
    } else {
        irq_fire(pt, set);
        return 0;
    }
    irq_mask_update(pt);
    return 0;
}

/* ---- Delivery (seed §4.5) -------------------------------------------------------- */

/* MSI-X if the vector has an eventfd there, else MSI, else INTx. */
static int deliver(struct vdx_passthru *pt, uint32_t v)
{
    int fd = pt->efd[VDX_VU_PCI_MSIX_IRQ][v];

    if (fd < 0) {
        fd = pt->efd[VDX_VU_PCI_MSI_IRQ][v];
    }
    if (fd < 0) {
        fd = pt->efd[VDX_VU_PCI_INTX_IRQ][0];
    }
    if (fd < 0 || vdx_vu_eventfd_signal(fd) < 0) {
        pt->st.irqs_dropped++;
        return 0;
    }
    pt->st.irqs_delivered++;
    return 1;
}

int vdx_passthru_step(struct vdx_passthru *pt)
{
    int n = 0;

    vdx_notify_ack(pt->notify);
    for (uint32_t w = 0; w < DEXT_IRQ_WORDS; w++) {
        uint64_t bits = __atomic_exchange_n(&pt->irq_page->pending[w], 0, __ATOMIC_SEQ_CST);

        while (bits != 0) {
            uint32_t b = (uint32_t)__builtin_ctzll(bits);

            bits &= bits - 1;
            n += deliver(pt, w * 64 + b);
        }
    }
    int rc = vdx_passthru_errno(vdx_notify_rearm(pt->notify));

    return rc < 0 ? rc : n;
}

int vdx_passthru_irq_fd(const struct vdx_passthru *pt)
{
    return vdx_notify_fd(pt->notify);
}

/* SetupInterrupts, the IRQ page, the notifier; nothing enabled yet. */
int pt_irq_init(struct vdx_passthru *pt)
{
    uint64_t none[DEXT_IRQ_WORDS] = {0};
    int rc;

    for (uint32_t i = 0; i < PT_EFD_INDEXES; i++) {
        efd_clear(pt, i);
    }
    pt->err_efd = -1;
    rc = vdx_passthru_errno(vdx_setup_interrupts(pt->conn, &pt->vectors));
    if (rc < 0) {
        return rc;
    }
    if (pt->vectors > DEXT_MAX_VECTORS) {
        pt->vectors = DEXT_MAX_VECTORS;
    }
    rc = vdx_passthru_errno(vdx_map_irq_page(pt->conn, &pt->irq_page));
    if (rc < 0) {
        return rc;
    }
    rc = vdx_passthru_errno(vdx_set_irq_mask(pt->conn, none));
    if (rc < 0) {
        return rc;
    }
    return vdx_passthru_errno(vdx_notify_create(pt->conn, &pt->notify));
}

void pt_irq_fini(struct vdx_passthru *pt)
{
    vdx_notify_destroy(pt->notify);
    pt->notify = NULL;
    for (uint32_t i = 0; i < PT_EFD_INDEXES; i++) {
        efd_clear(pt, i);
    }
}
