/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * BARs of the passthrough backend: their shape (seed §4.3), the mapping used
 * for trapped accesses (§4.7), and the descriptor offered to the VMM.
 *
 * Where the seed maps every BAR into the VMM (region_map), a vfio-user
 * server can only offer a descriptor: a BAR the dext shares as one
 * (vdx_bar_fd()) is reported MMAP with a sparse-mmap capability whose areas
 * cover the BAR except the pages holding the MSI-X table and PBA (QEMU
 * emulates the table and forwards PBA reads: reference/vfio-user.md §3.2),
 * so the guest reaches the rest without a message. Every other BAR, and the
 * holes, stay trapped (REGION_READ/WRITE), as does any access QEMU still
 * sends for a mapped area.
 */
#include <errno.h>
#include <unistd.h>

#include "platform/platform.h"
#include "vfio/passthru_priv.h"

/* ---- Area computation (pure) ------------------------------------------------------ */

/* A hole as whole pages clipped to [0, limit) (page aligned). Empty: s == e. */
static void hole_pages(const struct pt_hole *h, uint64_t page, uint64_t limit, uint64_t *s,
                       uint64_t *e)
{
    uint64_t end = h->len > UINT64_MAX - h->off ? UINT64_MAX : h->off + h->len;

    if (h->len == 0 || h->off >= limit) {
        *s = *e = limit;
        return;
    }
    end = end < limit ? end : limit;
    *s = h->off & ~(page - 1);
    *e = (end + page - 1) & ~(page - 1); /* end <= limit, a page multiple: no wrap */
}

/* Sort [s, e) pairs by start; n <= PT_BAR_MAX_HOLES, so insertion sort. */
static void pages_sort(uint64_t *s, uint64_t *e, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        for (unsigned j = i; j > 0 && s[j] < s[j - 1]; j--) {
            uint64_t ts = s[j], te = e[j];

            s[j] = s[j - 1], e[j] = e[j - 1];
            s[j - 1] = ts, e[j - 1] = te;
        }
    }
}

static int area_put(struct vdx_vu_sparse_area *areas, unsigned max, unsigned *n,
                    uint64_t from, uint64_t to)
{
    if (from >= to) {
        return 0;
    }
    if (*n >= max) {
        return -ENOSPC;
    }
    areas[(*n)++] = (struct vdx_vu_sparse_area){.offset = from, .size = to - from};
    return 0;
}

int pt_sparse_areas(uint64_t size, uint64_t page, const struct pt_hole *holes,
                    unsigned nholes, struct vdx_vu_sparse_area *areas, unsigned max)
{
    uint64_t s[PT_BAR_MAX_HOLES], e[PT_BAR_MAX_HOLES], limit, cur = 0;
    unsigned n = 0;
    int rc;

    if (page == 0 || (page & (page - 1)) || nholes > PT_BAR_MAX_HOLES ||
        (nholes > 0 && holes == NULL) || (max > 0 && areas == NULL)) {
        return -EINVAL;
    }
    limit = size & ~(page - 1);
    for (unsigned i = 0; i < nholes; i++) {
        hole_pages(&holes[i], page, limit, &s[i], &e[i]);
    }
    pages_sort(s, e, nholes);
    for (unsigned i = 0; i < nholes; i++) {
        rc = area_put(areas, max, &n, cur, s[i]);
        if (rc < 0) {
            return rc;
        }
        cur = e[i] > cur ? e[i] : cur;
    }
    rc = area_put(areas, max, &n, cur, limit);
    return rc < 0 ? rc : (int)n;
}

unsigned pt_msix_holes(const struct pt_msix *m, unsigned n,
                       struct pt_hole holes[PT_BAR_MAX_HOLES])
{
    unsigned k = 0;

    if (m->entries == 0) {
        return 0;
    }
    if (m->table_bir == n) {
        holes[k++] =
            (struct pt_hole){m->table_off, (uint64_t)m->entries * PT_PCI_MSIX_ENTRY_SIZE};
    }
    if (m->pba_bir == n) {
        holes[k++] = (struct pt_hole){m->pba_off, ((uint64_t)m->entries + 63) / 64 * 8};
    }
    return k;
}

/* ---- Probing ---------------------------------------------------------------------- */

/* Map BAR n for trapped accesses when the dext shares it as memory. */
static void bar_map(struct vdx_passthru *pt, unsigned n)
{
    struct pt_bar *b = &pt->bars[n];
    dext_status st = vdx_map_bar(pt->conn, n, &b->map, &b->map_size, NULL, NULL);

    if (st != DEXT_OK) {
        b->map = NULL;
        b->map_size = 0;
        if (st != DEXT_E_UNSUPPORTED) {
            vdx_log(VDX_LOG_WARN, "passthru %s: BAR%u cannot be mapped (%s), trapping it",
                    pt->name, n, vdx_status_str(st));
        }
    } else if (b->map_size > b->size) {
        b->map_size = b->size;
    }
}

/* The areas of BAR n the descriptor may offer (the part it covers, minus
 * the MSI-X pages). Returns why not, or NULL (b->nr_areas > 0). */
static const char *bar_areas(struct vdx_passthru *pt, unsigned n, uint64_t fd_size)
{
    struct pt_bar *b = &pt->bars[n];
    uint64_t page = vdx_page_size();
    int rc;

    if (b->fd_offset & (page - 1)) {
        return "its offset in the descriptor is not page aligned";
    }
    rc = pt_sparse_areas(fd_size < b->size ? fd_size : b->size, page, b->holes, b->nholes,
                         b->areas, PT_BAR_MAX_AREAS);
    if (rc <= 0) {
        return "no whole page outside the MSI-X table and PBA";
    }
    b->nr_areas = (uint32_t)rc;
    return NULL;
}

/* Offer BAR n as mmappable when the dext shares it as a descriptor. */
static void bar_share(struct vdx_passthru *pt, unsigned n)
{
    struct pt_bar *b = &pt->bars[n];
    uint64_t fd_size = 0;
    dext_status st = vdx_bar_fd(pt->conn, n, &b->fd, &b->fd_offset, &fd_size);
    const char *why;

    if (st != DEXT_OK) {
        if (st != DEXT_E_UNSUPPORTED) {
            vdx_log(VDX_LOG_WARN, "passthru %s: BAR%u has no descriptor (%s), trapping it",
                    pt->name, n, vdx_status_str(st));
        }
        return;
    }
    why = bar_areas(pt, n, fd_size);
    if (why != NULL) {
        vdx_log(VDX_LOG_INFO, "passthru %s: BAR%u not offered mmappable (%s), trapping it",
                pt->name, n, why);
        close(b->fd);
        b->fd = -1;
        b->nr_areas = 0;
        return;
    }
    pt->st.bars_mmappable++;
    vdx_log(VDX_LOG_DEBUG, "passthru %s: BAR%u mmappable in %u area(s)", pt->name, n,
            b->nr_areas);
}

/* Read BAR n's shape; map and offer it when the dext shares it. A BAR the
 * dext does not describe is absent. */
static void bar_probe(struct vdx_passthru *pt, unsigned n)
{
    struct pt_bar *b = &pt->bars[n];

    b->fd = -1;
    if (vdx_get_bar_info(pt->conn, n, NULL, &b->size, &b->type) != DEXT_OK) {
        b->size = 0;
        return;
    }
    if (b->size == 0 || (b->type & DEXT_BAR_TYPE_IO)) {
        return;
    }
    b->nholes = pt_msix_holes(&pt->msix, n, b->holes);
    bar_map(pt, n);
    bar_share(pt, n);
}

void pt_bars_probe(struct vdx_passthru *pt)
{
    for (unsigned n = 0; n < DEXT_NUM_BARS; n++) {
        bar_probe(pt, n);
    }
}

void pt_bars_release(struct vdx_passthru *pt)
{
    for (unsigned n = 0; n < DEXT_NUM_BARS; n++) {
        struct pt_bar *b = &pt->bars[n];

        if (b->fd >= 0) {
            close(b->fd);
            b->fd = -1;
        }
        b->map = NULL; /* the connection's: unmapped when it closes */
    }
}

bool pt_bar_in_msix(const struct pt_bar *b, uint64_t off, uint64_t len)
{
    for (uint32_t i = 0; i < b->nholes; i++) {
        const struct pt_hole *h = &b->holes[i];

        /* No wrap: hole offsets are 32-bit and lengths small (pt_msix_holes);
         * the server checked off + len against the BAR size. */
        if (h->len > 0 && off < h->off + h->len && h->off < off + len) {
            return true;
        }
    }
    return false;
}

void pt_bar_region_info(const struct vdx_passthru *pt, unsigned n,
                        struct vdx_vu_be_region *r)
{
    const struct pt_bar *b = &pt->bars[n];

    r->size = b->size;
    if (b->size == 0) {
        return;
    }
    r->flags = VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE;
    if (b->fd < 0) {
        return;
    }
    r->fd = b->fd;
    r->fd_offset = b->fd_offset;
    r->nr_areas = b->nr_areas;
    for (uint32_t i = 0; i < b->nr_areas; i++) {
        r->areas[i] = b->areas[i];
    }
}
