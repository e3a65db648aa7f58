/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the passthrough backend's sparse-mmap areas (src/vfio/
 * passthru_bar.c): pt_sparse_areas(), a pure function, and pt_msix_holes().
 * Fixed cases, hostile inputs (holes outside the BAR, wrapping, overlapping)
 * and a randomized check of the defining property against a page-by-page
 * model.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "vfio/passthru_priv.h"

#define K4  0x1000ull
#define K16 0x4000ull
#define M1  0x100000ull

struct area {
    uint64_t off, size;
};

/* Run pt_sparse_areas and compare with want[n]. */
static void expect(uint64_t size, uint64_t page, const struct pt_hole *h, unsigned nh,
                   const struct area *want, int n)
{
    struct vdx_vu_sparse_area a[PT_BAR_MAX_AREAS];
    int rc = pt_sparse_areas(size, page, h, nh, a, PT_BAR_MAX_AREAS);

    assert_int_equal(rc, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(a[i].offset, want[i].off);
        assert_int_equal(a[i].size, want[i].size);
    }
}

static void test_no_holes(void **state)
{
    (void)state;
    expect(M1, K4, NULL, 0, (struct area[]){{0, M1}}, 1);
    expect(K4, K4, NULL, 0, (struct area[]){{0, K4}}, 1);
    /* Smaller than a page: nothing mappable (a 4 KiB BAR on 16 KiB pages). */
    expect(K4, K16, NULL, 0, NULL, 0);
    expect(0, K4, NULL, 0, NULL, 0);
}

static void test_holes_inside(void **state)
{
    /* sim:testdev,msix=bar2: PBA at 0x4000 (8 bytes), table at 0x8000 (64 x 16). */
    const struct pt_hole testdev[] = {{0x8000, 0x400}, {0x4000, 8}};

    (void)state;
    expect(M1, K4, testdev, 2,
           (struct area[]){{0, 0x4000}, {0x5000, 0x3000}, {0x9000, M1 - 0x9000}}, 3);
    /* 16 KiB pages: both holes round out to their pages, which touch. */
    expect(M1, K16, testdev, 2, (struct area[]){{0, 0x4000}, {0xc000, M1 - 0xc000}}, 2);
    /* At the start, at the end, unaligned, spanning pages. */
    expect(M1, K4, (struct pt_hole[]){{0, 1}}, 1, (struct area[]){{K4, M1 - K4}}, 1);
    expect(M1, K4, (struct pt_hole[]){{M1 - 1, 1}}, 1, (struct area[]){{0, M1 - K4}}, 1);
    expect(M1, K4, (struct pt_hole[]){{0x1ffc, 8}}, 1,
           (struct area[]){{0, K4}, {0x3000, M1 - 0x3000}}, 2);
    /* Two holes in one page, and overlapping holes. */
    expect(M1, K4, (struct pt_hole[]){{0x2000, 4}, {0x2ff0, 16}}, 2,
           (struct area[]){{0, 0x2000}, {0x3000, M1 - 0x3000}}, 2);
    expect(M1, K4, (struct pt_hole[]){{0x2000, 0x3000}, {0x3000, 0x100}}, 2,
           (struct area[]){{0, 0x2000}, {0x5000, M1 - 0x5000}}, 2);
    /* The whole BAR. */
    expect(0x2000, K4, (struct pt_hole[]){{0, K4}, {K4, 1}}, 2, NULL, 0);
}

static void test_hostile_holes(void **state)
{
    (void)state;
    /* Outside the BAR, empty, wrapping around 2^64: no effect, or clipped. */
    expect(M1, K4, (struct pt_hole[]){{M1, 0x1000}, {UINT64_MAX, 2}}, 2,
           (struct area[]){{0, M1}}, 1);
    expect(M1, K4, (struct pt_hole[]){{0x3000, 0}}, 1, (struct area[]){{0, M1}}, 1);
    expect(M1, K4, (struct pt_hole[]){{0x3000, UINT64_MAX}}, 1,
           (struct area[]){{0, 0x3000}}, 1);
    expect(M1, K4, (struct pt_hole[]){{M1 - 8, UINT64_MAX}}, 1,
           (struct area[]){{0, M1 - K4}}, 1);
    /* A BAR size that is not a page multiple: the tail page is not offered. */
    expect(M1 + 0x10, K4, NULL, 0, (struct area[]){{0, M1}}, 1);
}

static void test_bad_arguments(void **state)
{
    struct vdx_vu_sparse_area a[PT_BAR_MAX_AREAS];
    const struct pt_hole h[3] = {{0x1000, 1}, {0x3000, 1}, {0x5000, 1}};

    (void)state;
    assert_int_equal(pt_sparse_areas(M1, 0, NULL, 0, a, 3), -EINVAL);
    assert_int_equal(pt_sparse_areas(M1, 3000, NULL, 0, a, 3), -EINVAL);
    assert_int_equal(pt_sparse_areas(M1, K4, h, 3, a, 3), -EINVAL);
    assert_int_equal(pt_sparse_areas(M1, K4, NULL, 1, a, 3), -EINVAL);
    assert_int_equal(pt_sparse_areas(M1, K4, NULL, 0, NULL, 3), -EINVAL);
    /* More areas than room. */
    assert_int_equal(pt_sparse_areas(M1, K4, h, 2, a, 2), -ENOSPC);
    assert_int_equal(pt_sparse_areas(M1, K4, NULL, 0, NULL, 0), -ENOSPC);
    assert_int_equal(pt_sparse_areas(M1, K4, h, 2, a, 3), 3);
}

static void test_msix_holes(void **state)
{
    struct pt_msix m = {
        .entries = 65, .table_bir = 2, .table_off = 0x8000, .pba_bir = 4, .pba_off = 0x100};
    struct pt_hole h[PT_BAR_MAX_HOLES];

    (void)state;
    assert_int_equal(pt_msix_holes(&m, 0, h), 0);
    assert_int_equal(pt_msix_holes(&m, 2, h), 1);
    assert_int_equal(h[0].off, 0x8000);
    assert_int_equal(h[0].len, 65 * 16);
    assert_int_equal(pt_msix_holes(&m, 4, h), 1);
    assert_int_equal(h[0].off, 0x100);
    assert_int_equal(h[0].len, 16); /* 65 pending bits: two qwords */
    m.pba_bir = 2;
    assert_int_equal(pt_msix_holes(&m, 2, h), 2);
    m.entries = 0; /* no MSI-X */
    assert_int_equal(pt_msix_holes(&m, 2, h), 0);
    /* The largest table a device can describe, at the top of its offset field. */
    m = (struct pt_msix){.entries = 2048, .table_off = 0xfffffff8u, .pba_off = 0xfffffff8u};
    assert_int_equal(pt_msix_holes(&m, 0, h), 2);
    assert_int_equal(h[0].off + h[0].len, 0xfffffff8ull + 2048 * 16);
}

/* The defining property, page by page, on random small layouts. */
static void check_model(uint64_t size, uint64_t page, const struct pt_hole *h, unsigned nh)
{
    struct vdx_vu_sparse_area a[PT_BAR_MAX_AREAS];
    int n = pt_sparse_areas(size, page, h, nh, a, PT_BAR_MAX_AREAS);

    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        assert_true(a[i].size > 0 && a[i].offset % page == 0 && a[i].size % page == 0);
        assert_true(a[i].offset + a[i].size <= size);
        assert_true(i == 0 || a[i].offset > a[i - 1].offset + a[i - 1].size);
    }
    for (uint64_t p = 0; p + page <= size; p += page) {
        bool hole = false, in = false;

        for (unsigned j = 0; j < nh; j++) {
            hole |= h[j].len > 0 && p < h[j].off + h[j].len && h[j].off < p + page;
        }
        for (int i = 0; i < n; i++) {
            in |= p >= a[i].offset && p < a[i].offset + a[i].size;
        }
        assert_true(hole != in);
    }
}

static void test_random_layouts(void **state)
{
    (void)state;
    srand(42);
    for (int iter = 0; iter < 20000; iter++) {
        uint64_t page = 1ull << (rand() % 4 + 10), size = 1ull << (rand() % 8 + 8);
        struct pt_hole h[PT_BAR_MAX_HOLES];
        unsigned nh = (unsigned)(rand() % 3);

        for (unsigned j = 0; j < nh; j++) {
            h[j] =
                (struct pt_hole){(uint64_t)rand() % (size + 64), (uint64_t)rand() % 5000};
        }
        check_model(size, page, h, nh);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_holes),
        cmocka_unit_test(test_holes_inside),
        cmocka_unit_test(test_hostile_holes),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_msix_holes),
        cmocka_unit_test(test_random_layouts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
