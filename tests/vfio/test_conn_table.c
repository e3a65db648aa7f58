/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of the shared dext connection table (src/vfio/conn_table.c, seed
 * §4.9): publish / lookup / release semantics, a mismatched release refused,
 * the last release disconnecting, a duplicate publish refused, acquire
 * sharing one connection and one claim, keys by endpoint and full BDF, and
 * concurrent acquire/release. Against a real dext with sim:testdev, local
 * (in-process) and, for sharing, the unix transport (a forked daemon); the
 * dext's status JSON shows its clients and claims.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../core/fixture.h"
#include "vfio/conn_table.h"
#include "vfio/passthru.h"

#define BDF "0000:00:01.0"

static struct fixture fx;
static struct vdx_conn_table *tab;

static void up(bool unix_transport)
{
    assert_int_equal(fixture_start(&fx, unix_transport, DEXT_IOMMU_IDENTITY), 0);
    assert_int_equal(vdx_conn_table_create(&tab), 0);
}

static void down(void)
{
    vdx_conn_table_destroy(tab);
    tab = NULL;
    fixture_stop(&fx);
}

/* Clients the dext has open on the device. */
static uint64_t clients(void)
{
    return fixture_counter(&fx, "clients");
}

static bool claimed(void)
{
    struct vdx_device_desc *d = NULL;
    size_t n = 0;
    bool c;

    assert_int_equal(vdx_list_devices(fx.ep, &d, &n), DEXT_OK);
    assert_int_equal(n, 1);
    c = d[0].claimed;
    free(d);
    return c;
}

static void test_publish_lookup_release(void **state)
{
    struct vdx_conn *c, *got = NULL;

    (void)state;
    up(false);
    c = fixture_connect(&fx);
    assert_int_equal(vdx_claim(c), DEXT_OK);
    assert_int_equal(vdx_conn_table_lookup(tab, fx.ep, BDF, &got), -ENOENT);
    assert_int_equal(vdx_conn_table_publish(tab, fx.ep, BDF, c), 0);
    assert_int_equal(vdx_conn_table_refs(tab, fx.ep, BDF), 1);
    /* lookup: the same connection, one more reference; the domain is optional. */
    assert_int_equal(vdx_conn_table_lookup(tab, fx.ep, "00:01.0", &got), 0);
    assert_ptr_equal(got, c);
    assert_int_equal(vdx_conn_table_refs(tab, fx.ep, BDF), 2);
    /* Not the same device: another function, another domain. */
    assert_int_equal(vdx_conn_table_lookup(tab, fx.ep, "0000:00:01.1", &got), -ENOENT);
    assert_int_equal(vdx_conn_table_lookup(tab, fx.ep, "0001:00:01.0", &got), -ENOENT);
    /* release: one reference; the connection stays open and claimed. */
    assert_int_equal(vdx_conn_table_release(tab, fx.ep, BDF, c), 0);
    assert_int_equal(vdx_conn_table_refs(tab, fx.ep, BDF), 1);
    assert_int_equal(clients(), 1);
    assert_true(claimed());
    /* The last release disconnects: the dext drops the client and its claim. */
    assert_int_equal(vdx_conn_table_release(tab, fx.ep, BDF, c), 0);
    assert_int_equal(vdx_conn_table_refs(tab, fx.ep, BDF), 0);
    assert_int_equal(clients(), 0);
    assert_false(claimed());
    assert_int_equal(vdx_conn_table_release(tab, fx.ep, BDF, c), -ENOENT);
    down();
}

static void test_duplicate_publish_and_mismatch(void **state)
{
    struct vdx_conn *a, *b;

    (void)state;
    up(false);
    a = fixture_connect(&fx);
    b = fixture_connect(&fx);
    assert_int_equal(vdx_conn_table_publish(tab, fx.ep, BDF, a), 0);
    /* A second owner for the same device: refused, b stays ours. */
    assert_int_equal(vdx_conn_table_publish(tab, fx.ep, "00:01.0", b), -EEXIST);
    assert_int_equal(vdx_conn_table_refs(tab, fx.ep, BDF), 1);
    /* Releasing with a connection that is not the published one: refused. */
    assert_int_equal(vdx_conn_table_release(tab, fx.ep, BDF, b), -EINVAL);
    assert_int_equal(vdx_conn_table_refs(tab, fx.ep, BDF), 1);
    assert_int_equal(clients(), 2);
    vdx_disconnect(b);
    assert_int_equal(vdx_conn_table_release(tab, fx.ep, BDF, a), 0);
    assert_int_equal(clients(), 0);
    down();
}

static void test_bad_arguments(void **state)
{
    struct vdx_conn *c, *got = NULL;
    dext_status st = DEXT_E_IO_ERROR;

    (void)state;
    up(false);
    c = fixture_connect(&fx);
    assert_int_equal(vdx_conn_table_create(NULL), -EINVAL);
    assert_int_equal(vdx_conn_table_publish(NULL, fx.ep, BDF, c), -EINVAL);
    assert_int_equal(vdx_conn_table_publish(tab, NULL, BDF, c), -EINVAL);
    assert_int_equal(vdx_conn_table_publish(tab, fx.ep, NULL, c), -EINVAL);
    assert_int_equal(vdx_conn_table_publish(tab, fx.ep, "zz:01.0", c), -EINVAL);
    assert_int_equal(vdx_conn_table_publish(tab, fx.ep, BDF, NULL), -EINVAL);
    assert_int_equal(vdx_conn_table_lookup(tab, fx.ep, BDF, NULL), -EINVAL);
    assert_int_equal(vdx_conn_table_release(tab, fx.ep, "00:01", c), -EINVAL);
    assert_int_equal(vdx_conn_table_acquire(tab, fx.ep, "", &got, &st), -EINVAL);
    assert_int_equal(st, DEXT_OK); /* not the dext's failure */
    assert_int_equal(vdx_conn_table_refs(NULL, fx.ep, BDF), 0);
    vdx_disconnect(c);
    vdx_conn_table_destroy(NULL);
    down();
}

/* acquire: connect + claim + publish once, then share; keyed by endpoint. */
static void acquire_shares(bool unix_transport)
{
    struct vdx_conn *a = NULL, *b = NULL, *c = NULL;
    struct vdx_endpoint *ep2 = NULL;
    dext_status st = DEXT_E_IO_ERROR;

    up(unix_transport);
    assert_int_equal(vdx_conn_table_acquire(tab, fx.ep, BDF, &a, &st), 0);
    assert_int_equal(vdx_conn_table_acquire(tab, fx.ep, BDF, &b, NULL), 0);
    assert_ptr_equal(a, b);
    assert_int_equal(vdx_conn_table_refs(tab, fx.ep, BDF), 2);
    assert_int_equal(clients(), 1); /* one connection, one claim */
    assert_true(claimed());
    /* A passthrough backend on the shared connection, as serve creates it. */
    {
        struct vdx_passthru *pt = NULL;

        assert_int_equal(vdx_passthru_create(a, BDF, &pt), 0);
        vdx_passthru_destroy(pt);
    }
    /* No such device: the dext's answer, nothing published. */
    assert_int_equal(vdx_conn_table_acquire(tab, fx.ep, "00:07.0", &c, &st), -ENOENT);
    assert_int_equal(st, DEXT_E_NOT_FOUND);
    assert_int_equal(vdx_conn_table_refs(tab, fx.ep, "00:07.0"), 0);
    /* Another endpoint object to the same dext has the same name: same key. */
    if (unix_transport) {
        assert_int_equal(vdx_endpoint_parse(fx.uri, &ep2), DEXT_OK);
        assert_string_equal(vdx_endpoint_name(ep2), vdx_endpoint_name(fx.ep));
        assert_int_equal(vdx_conn_table_lookup(tab, ep2, BDF, &c), 0);
        assert_ptr_equal(c, a);
        assert_int_equal(vdx_conn_table_release(tab, ep2, BDF, c), 0);
        vdx_endpoint_free(ep2);
    }
    assert_int_equal(vdx_conn_table_release(tab, fx.ep, BDF, b), 0);
    assert_int_equal(clients(), 1);
    assert_int_equal(vdx_conn_table_release(tab, fx.ep, BDF, a), 0);
    assert_int_equal(clients(), 0);
    assert_false(claimed());
    down();
}

static void test_acquire_shares_local(void **state)
{
    (void)state;
    acquire_shares(false);
}

static void test_acquire_shares_unix(void **state)
{
    (void)state;
    acquire_shares(true);
}

/* Two in-process dexts with the same BDF never share a key. */
static void test_key_includes_endpoint(void **state)
{
    struct fixture other;
    struct vdx_conn *a = NULL, *b = NULL;

    (void)state;
    up(false);
    assert_int_equal(fixture_start(&other, false, DEXT_IOMMU_IDENTITY), 0);
    assert_string_not_equal(vdx_endpoint_name(fx.ep), vdx_endpoint_name(other.ep));
    assert_int_equal(vdx_conn_table_acquire(tab, fx.ep, BDF, &a, NULL), 0);
    assert_int_equal(vdx_conn_table_acquire(tab, other.ep, BDF, &b, NULL), 0);
    assert_ptr_not_equal(a, b);
    assert_int_equal(vdx_conn_table_release(tab, other.ep, BDF, a), -EINVAL);
    assert_int_equal(vdx_conn_table_release(tab, other.ep, BDF, b), 0);
    assert_int_equal(vdx_conn_table_release(tab, fx.ep, BDF, a), 0);
    fixture_stop(&other);
    down();
}

/* Entries left at destroy are disconnected (ASan: nothing leaks). */
static void test_destroy_disconnects_leftovers(void **state)
{
    struct vdx_conn *a = NULL;

    (void)state;
    up(false);
    assert_int_equal(vdx_conn_table_acquire(tab, fx.ep, BDF, &a, NULL), 0);
    assert_int_equal(clients(), 1);
    vdx_conn_table_destroy(tab);
    tab = NULL;
    assert_int_equal(clients(), 0);
    down();
}

#define THREADS 4
#define ROUNDS  200

static void *churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        struct vdx_conn *c = NULL;

        if (vdx_conn_table_acquire(tab, fx.ep, BDF, &c, NULL) < 0 ||
            vdx_claim(c) != DEXT_OK || vdx_conn_table_release(tab, fx.ep, BDF, c) < 0) {
            return (void *)1;
        }
    }
    return NULL;
}

/* Concurrent acquire/release: never two connections, none left over. */
static void test_concurrent_acquire_release(void **state)
{
    pthread_t t[THREADS];

    (void)state;
    up(false);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, churn, NULL), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *rc = (void *)1;

        assert_int_equal(pthread_join(t[i], &rc), 0);
        assert_null(rc);
    }
    assert_int_equal(vdx_conn_table_refs(tab, fx.ep, BDF), 0);
    assert_int_equal(clients(), 0);
    down();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_lookup_release),
        cmocka_unit_test(test_duplicate_publish_and_mismatch),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_acquire_shares_local),
        cmocka_unit_test(test_acquire_shares_unix),
        cmocka_unit_test(test_key_includes_endpoint),
        cmocka_unit_test(test_destroy_disconnects_leftovers),
        cmocka_unit_test(test_concurrent_acquire_release),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
