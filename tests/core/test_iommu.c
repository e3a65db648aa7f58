/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the dext's IOMMU in both modes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dext/iommu.h"

#define G DEXT_DART_GRANULE

static struct iommu *make(enum dext_iommu_mode mode, uint64_t aperture, uint32_t maxmap)
{
    struct iommu_config cfg = {mode, 0x100000000ull, aperture, maxmap};
    struct iommu *io = NULL;

    assert_int_equal(iommu_create(&cfg, &io), 0);
    return io;
}

static void identity_map_rw_unmap(void **state)
{
    struct iommu *io = make(DEXT_IOMMU_IDENTITY, 16 * G, 0);
    uint8_t a[64], b[64], buf[128];
    struct iommu_stats st;

    (void)state;
    memset(a, 0xaa, sizeof(a));
    memset(b, 0xbb, sizeof(b));
    assert_int_equal(iommu_map_at(io, 0x1000, a, sizeof(a)), 0);
    assert_int_equal(iommu_map_at(io, 0x1040, b, sizeof(b)), 0); /* adjacent */
    /* One access spanning both mappings. */
    assert_int_equal(iommu_rw(io, 0x1020, buf, 64, VDX_DMA_TO_DEVICE), 0);
    assert_int_equal(buf[0], 0xaa);
    assert_int_equal(buf[31], 0xaa);
    assert_int_equal(buf[32], 0xbb);
    memset(buf, 0x11, sizeof(buf));
    assert_int_equal(iommu_rw(io, 0x103c, buf, 8, VDX_DMA_FROM_DEVICE), 0);
    assert_int_equal(a[63], 0x11);
    assert_int_equal(b[3], 0x11);
    assert_int_equal(b[4], 0xbb);
    iommu_get_stats(io, &st);
    assert_int_equal(st.mappings, 2);
    assert_int_equal(st.bytes, 128);
    assert_int_equal(iommu_unmap(io, 0x1000), 0);
    assert_int_equal(iommu_unmap(io, 0x1000), -ENOENT);
    assert_int_equal(iommu_unmap(io, 0x1041), -ENOENT);
    iommu_destroy(io);
}

static void identity_refuses_overlap(void **state)
{
    struct iommu *io = make(DEXT_IOMMU_IDENTITY, 16 * G, 0);
    uint8_t a[4096];

    (void)state;
    assert_int_equal(iommu_map_at(io, 0x10000, a, 4096), 0);
    assert_int_equal(iommu_map_at(io, 0x10000, a, 16), -EEXIST);
    assert_int_equal(iommu_map_at(io, 0x0f001, a, 4096), -EEXIST);
    assert_int_equal(iommu_map_at(io, 0x10fff, a, 16), -EEXIST);
    assert_int_equal(iommu_map_at(io, 0x11000, a, 16), 0);
    assert_int_equal(iommu_map_at(io, 0xf000, a, 4096), 0);
    assert_int_equal(iommu_map_at(io, UINT64_MAX - 4, a, 16), -EINVAL); /* wraps */
    assert_int_equal(iommu_map_at(io, 0x90000, a, 0), -EINVAL);
    iommu_destroy(io);
}

static void fault_copies_nothing_and_counts(void **state)
{
    struct iommu *io = make(DEXT_IOMMU_IDENTITY, 16 * G, 0);
    uint8_t a[32] = {0}, buf[64];
    struct iommu_stats st;

    (void)state;
    assert_int_equal(iommu_map_at(io, 0x2000, a, sizeof(a)), 0);
    memset(buf, 0x77, sizeof(buf));
    /* Starts mapped, runs off the end: refused whole. */
    assert_int_equal(iommu_rw(io, 0x2010, buf, 32, VDX_DMA_FROM_DEVICE), -EFAULT);
    assert_int_equal(a[16], 0);
    assert_int_equal(iommu_rw(io, 0x9000, buf, 1, VDX_DMA_TO_DEVICE), -EFAULT);
    assert_int_equal(iommu_rw(io, UINT64_MAX, buf, 2, VDX_DMA_TO_DEVICE), -EFAULT);
    iommu_get_stats(io, &st);
    assert_int_equal(st.faults, 3);
    iommu_destroy(io);
}

static void dart_chooses_addresses(void **state)
{
    struct iommu *io = make(DEXT_IOMMU_DART, 64 * G, 0);
    uint8_t *mem = aligned_alloc(G, 4 * G);
    uint64_t b1, b2, b3;
    uint8_t v = 0;

    (void)state;
    memset(mem, 0, 4 * G);
    assert_int_equal(iommu_map_at(io, 0x1000, mem, 16), -EPERM);
    assert_int_equal(iommu_map_alloc(io, mem, G, 0, &b1), 0);
    assert_int_equal(iommu_map_alloc(io, mem + G + 100, 50, 0, &b2), 0);
    assert_int_equal(b1 % G, 0);
    assert_int_equal(b2 % G, 100); /* offset within the granule is kept */
    assert_true(b1 >= 0x100000000ull && b2 < 0x100000000ull + 64 * G);
    assert_int_not_equal(b1 / G, b2 / G);
    mem[G + 120] = 0x5a;
    assert_int_equal(iommu_rw(io, b2 + 20, &v, 1, VDX_DMA_TO_DEVICE), 0);
    assert_int_equal(v, 0x5a);
    /* Only the registered bytes are reachable, not the rest of the granule. */
    assert_int_equal(iommu_rw(io, b2 + 50, &v, 1, VDX_DMA_TO_DEVICE), -EFAULT);
    assert_int_equal(iommu_map_alloc(io, mem, 2 * G, 8 * G, &b3), 0);
    assert_int_equal((b3 - 0x100000000ull) % (8 * G), 0);
    free(mem);
    iommu_destroy(io);
}

static void dart_aperture_exhaustion(void **state)
{
    struct iommu *io = make(DEXT_IOMMU_DART, 8 * G, 0);
    uint8_t *mem = aligned_alloc(G, 8 * G);
    uint64_t bus[8], extra;
    struct iommu_stats st;

    (void)state;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(iommu_map_alloc(io, mem + (size_t)i * G, G, 0, &bus[i]), 0);
    }
    assert_int_equal(iommu_map_alloc(io, mem, 1, 0, &extra), -ENOSPC);
    assert_int_equal(iommu_map_alloc(io, mem, 9 * G, 0, &extra), -ENOSPC);
    iommu_get_stats(io, &st);
    assert_int_equal(st.aperture_used, 8 * G);
    /* Free two non-adjacent granules: a 2-granule mapping still does not fit. */
    assert_int_equal(iommu_unmap(io, bus[2]), 0);
    assert_int_equal(iommu_unmap(io, bus[5]), 0);
    assert_int_equal(iommu_map_alloc(io, mem, 2 * G, 0, &extra), -ENOSPC);
    assert_int_equal(iommu_unmap(io, bus[3]), 0);
    assert_int_equal(iommu_map_alloc(io, mem, 2 * G, 0, &extra), 0);
    assert_int_equal(extra, bus[2]);
    free(mem);
    iommu_destroy(io);
}

static void dart_mapping_cap(void **state)
{
    struct iommu *io = make(DEXT_IOMMU_DART, 64 * G, 3);
    uint8_t mem[64];
    uint64_t b;

    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(iommu_map_alloc(io, mem, 8, 0, &b), 0);
    }
    assert_int_equal(iommu_map_alloc(io, mem, 8, 0, &b), -ENOSPC);
    assert_int_equal(iommu_unmap(io, b), 0);
    assert_int_equal(iommu_map_alloc(io, mem, 8, 0, &b), 0);
    assert_int_equal(iommu_map_alloc(io, mem, 8, 3, &b), -EINVAL); /* align not pow2 */
    iommu_destroy(io);
}

static void bad_configs(void **state)
{
    struct iommu_config cfg = {DEXT_IOMMU_DART, 0x1000, G, 0};
    struct iommu *io = NULL;

    (void)state;
    assert_int_equal(iommu_create(&cfg, &io), -EINVAL); /* base not granule aligned */
    cfg.aperture_base = 0;
    cfg.aperture_size = G + 1;
    assert_int_equal(iommu_create(&cfg, &io), -EINVAL);
    cfg.aperture_size = 0;
    assert_int_equal(iommu_create(&cfg, &io), -EINVAL);
}

/* Regression: teardown of many mappings in arbitrary order was quadratic. The
 * tree must stay consistent under random churn: checked against a model. */
static void random_churn_matches_model(void **state)
{
    enum { SLOTS = 4096 };
    struct iommu *io = make(DEXT_IOMMU_IDENTITY, 16 * G, 0);
    static uint8_t mem[SLOTS];
    static bool live[SLOTS];
    struct iommu_stats st;
    size_t nlive = 0;

    (void)state;
    srand(11);
    for (int i = 0; i < 100000; i++) {
        unsigned k = (unsigned)rand() % SLOTS;
        uint8_t v = 0;
        /* Slot k maps one byte, mem[k], at bus k * 0x100. */
        uint64_t bus = (uint64_t)k * 0x100;

        if (live[k]) {
            assert_int_equal(iommu_unmap(io, bus), 0);
            nlive--;
        } else {
            assert_int_equal(iommu_map_at(io, bus, &mem[k], 1), 0);
            nlive++;
        }
        live[k] = !live[k];
        mem[k] = (uint8_t)k;
        k = (unsigned)rand() % SLOTS;
        assert_int_equal(iommu_rw(io, (uint64_t)k * 0x100, &v, 1, VDX_DMA_TO_DEVICE),
                         live[k] ? 0 : -EFAULT);
        assert_int_equal(iommu_rw(io, (uint64_t)k * 0x100 + 1, &v, 1, VDX_DMA_TO_DEVICE),
                         -EFAULT);
    }
    iommu_get_stats(io, &st);
    assert_int_equal(st.mappings, nlive);
    iommu_destroy(io); /* frees what is still mapped */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identity_map_rw_unmap),
        cmocka_unit_test(identity_refuses_overlap),
        cmocka_unit_test(fault_copies_nothing_and_counts),
        cmocka_unit_test(dart_chooses_addresses),
        cmocka_unit_test(dart_aperture_exhaustion),
        cmocka_unit_test(dart_mapping_cap),
        cmocka_unit_test(bad_configs),
        cmocka_unit_test(random_churn_matches_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
