/* SPDX-License-Identifier: BSD-3-Clause */
#include "dext/iommu.h"

#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One live mapping. Kept in a balanced tree ordered by bus address. */
struct mapping {
    uint64_t bus;
    uint64_t len;
    uint8_t *host;
    uint64_t gran_first; /* aperture granules held (gran_count 0: none) */
    uint64_t gran_count;
};

struct iommu {
    struct iommu_config cfg;
    pthread_rwlock_t lock; /* guards everything below; rw shared, map/unmap exclusive */
    void *tree;            /* tsearch(3) root of struct mapping, never overlapping */
    size_t nmaps;
    uint64_t *bitmap; /* one bit per aperture granule; 1 = allocated */
    uint64_t ngran;
    uint64_t hint; /* next-fit start */
    uint64_t bytes;
    uint64_t aperture_used;
    uint64_t faults; /* atomic: counted under the shared lock */
};

#define GRAN ((uint64_t)DEXT_DART_GRANULE)

static int cmp_range(const void *a, const void *b);

int iommu_create(const struct iommu_config *cfg, struct iommu **out)
{
    struct iommu *io;

    if (cfg->aperture_size == 0 || cfg->aperture_size % GRAN != 0 ||
        cfg->aperture_base % GRAN != 0 || cfg->aperture_base + cfg->aperture_size < cfg->aperture_base) {
        return -EINVAL;
    }
    io = calloc(1, sizeof(*io));
    if (!io) {
        return -ENOMEM;
    }
    io->cfg = *cfg;
    io->ngran = cfg->aperture_size / GRAN;
    io->bitmap = calloc((io->ngran + 63) / 64, sizeof(uint64_t));
    if (!io->bitmap) {
        free(io);
        return -ENOMEM;
    }
    pthread_rwlock_init(&io->lock, NULL);
    *out = io;
    return 0;
}

void iommu_destroy(struct iommu *io)
{
    if (!io) {
        return;
    }
    while (io->tree) {
        struct mapping *m = *(struct mapping **)io->tree;

        tdelete(m, &io->tree, cmp_range);
        free(m);
    }
    pthread_rwlock_destroy(&io->lock);
    free(io->bitmap);
    free(io);
}

enum dext_iommu_mode iommu_mode(const struct iommu *io)
{
    return io->cfg.mode;
}

/*
 * Order of two ranges; overlapping ranges compare equal, so a lookup with a
 * one-byte probe finds the mapping containing it, and an insert that returns
 * another node than ours has found an overlap. Ranges never wrap (range_ok).
 */
static int cmp_range(const void *a, const void *b)
{
    const struct mapping *x = a, *y = b;

    if (x->bus + (x->len - 1) < y->bus) {
        return -1;
    }
    if (y->bus + (y->len - 1) < x->bus) {
        return 1;
    }
    return 0;
}

/* Insert a copy of *m. Caller holds the write lock. */
static int insert_mapping(struct iommu *io, const struct mapping *m)
{
    struct mapping *n = malloc(sizeof(*n));
    void *slot;

    if (!n) {
        return -ENOMEM;
    }
    *n = *m;
    slot = tsearch(n, &io->tree, cmp_range);
    if (!slot || *(struct mapping **)slot != n) {
        free(n);
        return slot ? -EEXIST : -ENOMEM;
    }
    io->nmaps++;
    io->bytes += m->len;
    return 0;
}

static bool range_ok(uint64_t start, uint64_t len)
{
    return len != 0 && start + len > start;
}

int iommu_map_at(struct iommu *io, uint64_t bus, void *host, uint64_t len)
{
    struct mapping m = {.bus = bus, .len = len, .host = host};
    int ret;

    if (io->cfg.mode != DEXT_IOMMU_IDENTITY) {
        return -EPERM;
    }
    if (!range_ok(bus, len) || !host) {
        return -EINVAL;
    }
    if (bus < io->cfg.aperture_base + io->cfg.aperture_size &&
        io->cfg.aperture_base < bus + len) {
        return -EEXIST; /* the aperture is the dext's own */
    }
    pthread_rwlock_wrlock(&io->lock);
    ret = insert_mapping(io, &m);
    pthread_rwlock_unlock(&io->lock);
    return ret;
}

static bool bit_test(const uint64_t *bm, uint64_t i)
{
    return (bm[i / 64] >> (i % 64)) & 1u;
}

static void bits_assign(uint64_t *bm, uint64_t first, uint64_t n, bool set)
{
    for (uint64_t i = first; i < first + n; i++) {
        if (set) {
            bm[i / 64] |= 1ull << (i % 64);
        } else {
            bm[i / 64] &= ~(1ull << (i % 64));
        }
    }
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* First run of n free granules in [start, end) aligned to `align` granules. */
static bool find_run(const struct iommu *io, uint64_t start, uint64_t end, uint64_t n,
                     uint64_t align, uint64_t *found)
{
    uint64_t i = round_up(start, align);

    while (i + n <= end) {
        uint64_t j;

        if (i % 64 == 0 && io->bitmap[i / 64] == ~0ull) {
            i = round_up(i + 64, align);
            continue;
        }
        for (j = 0; j < n && !bit_test(io->bitmap, i + j); j++) {
        }
        if (j == n) {
            *found = i;
            return true;
        }
        i = round_up(i + j + 1, align);
    }
    return false;
}

static int alloc_granules(struct iommu *io, uint64_t n, uint64_t align, uint64_t *first)
{
    if (n > io->ngran) {
        return -ENOSPC;
    }
    if (!find_run(io, io->hint, io->ngran, n, align, first) &&
        !find_run(io, 0, io->ngran, n, align, first)) {
        return -ENOSPC;
    }
    bits_assign(io->bitmap, *first, n, true);
    io->hint = *first + n;
    io->aperture_used += n * GRAN;
    return 0;
}

int iommu_map_alloc(struct iommu *io, void *host, uint64_t len, uint64_t align,
                    uint64_t *bus)
{
    /* Without an alignment the bus address keeps host's offset in its granule,
     * as a DART does; with one, the bus address itself is aligned. */
    uint64_t off = align ? 0 : (uintptr_t)host % GRAN;
    uint64_t agran = align > GRAN ? align / GRAN : 1;
    struct mapping m = {.len = len, .host = host};
    int ret;

    if (!range_ok(off, len) || !host || (align & (align - 1)) != 0) {
        return -EINVAL;
    }
    if (len > io->cfg.aperture_size) {
        return -ENOSPC;
    }
    m.gran_count = round_up(off + len, GRAN) / GRAN;
    pthread_rwlock_wrlock(&io->lock);
    if (io->cfg.max_mappings && io->nmaps >= io->cfg.max_mappings) {
        ret = -ENOSPC;
        goto out_unlock;
    }
    ret = alloc_granules(io, m.gran_count, agran, &m.gran_first);
    if (ret < 0) {
        goto out_unlock;
    }
    m.bus = io->cfg.aperture_base + m.gran_first * GRAN + off;
    ret = insert_mapping(io, &m);
    if (ret < 0) {
        bits_assign(io->bitmap, m.gran_first, m.gran_count, false);
        io->aperture_used -= m.gran_count * GRAN;
        goto out_unlock;
    }
    *bus = m.bus;
out_unlock:
    pthread_rwlock_unlock(&io->lock);
    return ret;
}

/* Mapping containing addr, or NULL. Caller holds the lock. */
static struct mapping *lookup(const struct iommu *io, uint64_t addr)
{
    struct mapping probe = {.bus = addr, .len = 1};
    void *slot = tfind(&probe, &io->tree, cmp_range);

    return slot ? *(struct mapping **)slot : NULL;
}

int iommu_unmap(struct iommu *io, uint64_t bus)
{
    struct mapping *m;
    int ret = -ENOENT;

    pthread_rwlock_wrlock(&io->lock);
    m = lookup(io, bus);
    if (!m || m->bus != bus) {
        goto out_unlock;
    }
    tdelete(m, &io->tree, cmp_range);
    if (m->gran_count) {
        bits_assign(io->bitmap, m->gran_first, m->gran_count, false);
        io->aperture_used -= m->gran_count * GRAN;
        if (m->gran_first < io->hint) {
            io->hint = m->gran_first;
        }
    }
    io->bytes -= m->len;
    io->nmaps--;
    free(m);
    ret = 0;
out_unlock:
    pthread_rwlock_unlock(&io->lock);
    return ret;
}

/* Walk [bus, bus+len) over adjacent mappings; copy only when buf != NULL. */
static bool walk(const struct iommu *io, uint64_t bus, uint8_t *buf, size_t len,
                 enum vdx_dma_dir dir)
{
    while (len > 0) {
        const struct mapping *m = lookup(io, bus);
        uint64_t off, n;

        if (!m) {
            return false;
        }
        off = bus - m->bus;
        n = m->len - off < len ? m->len - off : len;
        if (buf && dir == VDX_DMA_TO_DEVICE) {
            memcpy(buf, m->host + off, n);
        } else if (buf) {
            memcpy(m->host + off, buf, n);
        }
        bus += n;
        len -= n;
        buf = buf ? buf + n : NULL;
    }
    return true;
}

int iommu_rw(struct iommu *io, uint64_t bus, void *buf, size_t len, enum vdx_dma_dir dir)
{
    int ret = 0;

    if (len == 0) {
        return 0;
    }
    pthread_rwlock_rdlock(&io->lock);
    if (bus + len < bus || !walk(io, bus, NULL, len, dir)) {
        __atomic_add_fetch(&io->faults, 1, __ATOMIC_RELAXED);
        ret = -EFAULT;
    } else {
        walk(io, bus, buf, len, dir);
    }
    pthread_rwlock_unlock(&io->lock);
    return ret;
}

void iommu_get_stats(struct iommu *io, struct iommu_stats *st)
{
    pthread_rwlock_rdlock(&io->lock);
    st->mappings = io->nmaps;
    st->bytes = io->bytes;
    st->aperture_used = io->aperture_used;
    st->aperture_size = io->cfg.aperture_size;
    st->max_mappings = io->cfg.max_mappings;
    st->faults = __atomic_load_n(&io->faults, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&io->lock);
}
