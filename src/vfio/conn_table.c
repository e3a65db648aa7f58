/* SPDX-License-Identifier: BSD-3-Clause */
/* The shared dext connection table (conn_table.h; seed §4.9). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "dext/device.h"
#include "vfio/conn_table.h"
#include "vfio/passthru.h"

/* The key: the dext (its endpoint's name) and the full BDF. */
struct ct_key {
    const char *ep; /* borrowed from the caller's endpoint */
    uint16_t domain;
    uint8_t bus, slot, fn;
};

struct ct_entry {
    char *ep; /* owned copy of the key's endpoint name */
    uint16_t domain;
    uint8_t bus, slot, fn;
    struct vdx_conn *conn; /* owned: disconnected with the last reference */
    unsigned refs;         /* >= 1 while listed */
    struct ct_entry *next;
};

/* A handful of devices per process: a list is enough. */
struct vdx_conn_table {
    pthread_mutex_t lock; /* guards head and every entry */
    struct ct_entry *head;
};

static int key_make(const struct vdx_endpoint *ep, const char *bdf, struct ct_key *k)
{
    if (ep == NULL || bdf == NULL) {
        return -EINVAL;
    }
    k->ep = vdx_endpoint_name(ep);
    k->domain = 0;
    return vdx_parse_bdf(bdf, &k->domain, &k->bus, &k->slot, &k->fn) < 0 ? -EINVAL : 0;
}

static bool key_match(const struct ct_entry *e, const struct ct_key *k)
{
    return e->domain == k->domain && e->bus == k->bus && e->slot == k->slot &&
           e->fn == k->fn && strcmp(e->ep, k->ep) == 0;
}

/* The link pointing at k's entry (*link NULL: none). Caller holds t->lock. */
static struct ct_entry **find_locked(struct vdx_conn_table *t, const struct ct_key *k)
{
    struct ct_entry **link = &t->head;

    while (*link != NULL && !key_match(*link, k)) {
        link = &(*link)->next;
    }
    return link;
}

static int insert_locked(struct vdx_conn_table *t, const struct ct_key *k,
                         struct vdx_conn *conn)
{
    struct ct_entry *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        return -ENOMEM;
    }
    e->ep = strdup(k->ep);
    if (e->ep == NULL) {
        free(e);
        return -ENOMEM;
    }
    e->domain = k->domain;
    e->bus = k->bus, e->slot = k->slot, e->fn = k->fn;
    e->conn = conn;
    e->refs = 1;
    e->next = t->head;
    t->head = e;
    return 0;
}

static void entry_free(struct ct_entry *e)
{
    vdx_disconnect(e->conn);
    free(e->ep);
    free(e);
}

int vdx_conn_table_create(struct vdx_conn_table **out)
{
    struct vdx_conn_table *t;

    if (out == NULL) {
        return -EINVAL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return -ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return 0;
}

void vdx_conn_table_destroy(struct vdx_conn_table *t)
{
    if (t == NULL) {
        return;
    }
    while (t->head != NULL) {
        struct ct_entry *e = t->head;

        t->head = e->next;
        vdx_log(VDX_LOG_WARN,
                "conn table: %04x:%02x:%02x.%x of %s still has %u reference(s); "
                "disconnecting it",
                e->domain, e->bus, e->slot, e->fn, e->ep, e->refs);
        entry_free(e);
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int vdx_conn_table_publish(struct vdx_conn_table *t, const struct vdx_endpoint *ep,
                           const char *bdf, struct vdx_conn *conn)
{
    struct ct_key k;
    int rc;

    if (t == NULL || conn == NULL) {
        return -EINVAL;
    }
    rc = key_make(ep, bdf, &k);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&t->lock);
    rc = *find_locked(t, &k) != NULL ? -EEXIST : insert_locked(t, &k, conn);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* lookup with the lock held: refs++ and *out, or -ENOENT. */
static int lookup_locked(struct vdx_conn_table *t, const struct ct_key *k,
                         struct vdx_conn **out)
{
    struct ct_entry *e = *find_locked(t, k);

    if (e == NULL) {
        return -ENOENT;
    }
    e->refs++;
    *out = e->conn;
    return 0;
}

int vdx_conn_table_lookup(struct vdx_conn_table *t, const struct vdx_endpoint *ep,
                          const char *bdf, struct vdx_conn **out)
{
    struct ct_key k;
    int rc;

    if (t == NULL || out == NULL) {
        return -EINVAL;
    }
    rc = key_make(ep, bdf, &k);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&t->lock);
    rc = lookup_locked(t, &k, out);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* Connect, claim and publish; caller holds t->lock. */
static int open_locked(struct vdx_conn_table *t, struct vdx_endpoint *ep, const char *bdf,
                       const struct ct_key *k, struct vdx_conn **out, dext_status *dext_st)
{
    struct vdx_conn *conn = NULL;
    dext_status st = vdx_connect(ep, bdf, &conn);
    int rc;

    if (st != DEXT_OK) {
        goto out_dext;
    }
    st = vdx_claim(conn);
    if (st != DEXT_OK) {
        goto out_disconnect;
    }
    rc = insert_locked(t, k, conn);
    if (rc < 0) {
        vdx_disconnect(conn);
        return rc;
    }
    *out = conn;
    return 0;

out_disconnect:
    vdx_disconnect(conn);
out_dext:
    *dext_st = st;
    return vdx_passthru_errno(st);
}

int vdx_conn_table_acquire(struct vdx_conn_table *t, struct vdx_endpoint *ep,
                           const char *bdf, struct vdx_conn **out, dext_status *dext_st)
{
    dext_status ignored;
    struct ct_key k;
    int rc;

    if (dext_st == NULL) {
        dext_st = &ignored;
    }
    *dext_st = DEXT_OK;
    if (t == NULL || out == NULL) {
        return -EINVAL;
    }
    rc = key_make(ep, bdf, &k);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&t->lock);
    rc = lookup_locked(t, &k, out);
    if (rc == -ENOENT) {
        rc = open_locked(t, ep, bdf, &k, out, dext_st);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int vdx_conn_table_release(struct vdx_conn_table *t, const struct vdx_endpoint *ep,
                           const char *bdf, struct vdx_conn *conn)
{
    struct ct_entry **link, *e;
    struct ct_key k;
    int rc;

    if (t == NULL || conn == NULL) {
        return -EINVAL;
    }
    rc = key_make(ep, bdf, &k);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&t->lock);
    link = find_locked(t, &k);
    e = *link;
    if (e == NULL || e->conn != conn) {
        rc = e == NULL ? -ENOENT : -EINVAL;
    } else if (--e->refs == 0) {
        *link = e->next;
        entry_free(e); /* under the lock: see the header */
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

unsigned vdx_conn_table_refs(struct vdx_conn_table *t, const struct vdx_endpoint *ep,
                             const char *bdf)
{
    struct ct_entry *e;
    struct ct_key k;
    unsigned refs = 0;

    if (t == NULL || key_make(ep, bdf, &k) < 0) {
        return 0;
    }
    pthread_mutex_lock(&t->lock);
    e = *find_locked(t, &k);
    if (e != NULL) {
        refs = e->refs;
    }
    pthread_mutex_unlock(&t->lock);
    return refs;
}
