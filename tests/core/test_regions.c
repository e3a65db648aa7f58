/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the per-client region table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "dext/regions.h"

#define N 20000

static struct dext_region *mk(uint64_t key)
{
    struct dext_region *r = calloc(1, sizeof(*r));

    r->key = key;
    return r;
}

static void count_free(struct dext_region *r, void *ctx)
{
    (*(size_t *)ctx)++;
    free(r);
}

static void insert_find_remove_many(void **state)
{
    struct region_table t = {0};
    size_t freed = 0;

    (void)state;
    assert_null(regions_find(&t, 1));
    assert_null(regions_remove(&t, 1));
    for (uint64_t i = 0; i < N; i++) {
        /* Keys shaped like guest physical addresses: page multiples. */
        assert_int_equal(regions_insert(&t, mk(i * 4096)), 0);
    }
    assert_int_equal(t.count, N);
    for (uint64_t i = 0; i < N; i += 2) {
        struct dext_region *r = regions_remove(&t, i * 4096);

        assert_non_null(r);
        assert_int_equal(r->key, i * 4096);
        free(r);
    }
    for (uint64_t i = 0; i < N; i++) {
        struct dext_region *r = regions_find(&t, i * 4096);

        if (i % 2) {
            assert_non_null(r);
            assert_int_equal(r->key, i * 4096);
        } else {
            assert_null(r);
        }
    }
    assert_null(regions_find(&t, 4096 * N + 4096));
    regions_clear(&t, count_free, &freed);
    assert_int_equal(freed, N / 2);
    assert_int_equal(t.count, 0);
    assert_null(regions_find(&t, 4096));
}

static void random_churn_matches_model(void **state)
{
    struct region_table t = {0};
    static uint8_t present[4096];
    size_t freed = 0, live = 0;

    (void)state;
    srand(7);
    for (int i = 0; i < 200000; i++) {
        uint64_t k = (uint64_t)(rand() % 4096);
        struct dext_region *r = regions_find(&t, k);

        assert_int_equal(r != NULL, present[k]);
        if (r) {
            assert_ptr_equal(regions_remove(&t, k), r);
            free(r);
            present[k] = 0;
            live--;
        } else {
            assert_int_equal(regions_insert(&t, mk(k)), 0);
            present[k] = 1;
            live++;
        }
        assert_int_equal(t.count, live);
    }
    regions_clear(&t, count_free, &freed);
    assert_int_equal(freed, live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(insert_find_remove_many),
        cmocka_unit_test(random_churn_matches_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
