/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shared dext connection table (seed §4.9): one claimed connection per
 * host device, shared by every VMM-side user of that device in this process
 * (the passthrough backend, the DMA companion), reference counted.
 *
 * Where the seed keeps one process-global hash keyed by bus/device/function,
 * this is an object its creator owns (`vfio-dext serve`/`run`) and hands to
 * whoever needs a device's connection. The key is the full BDF, domain
 * included, plus the dext it is reached through (vdx_endpoint_name()), so
 * equal BDFs of two dexts never share.
 *
 * Semantics, as the seed's:
 *  - publish: insert a connection with one reference (the publisher's);
 *    fails if the key is present;
 *  - lookup: the published connection, one more reference;
 *  - release: only with the connection stored under the key; drops one
 *    reference; the last one disconnects it (the dext then releases its
 *    claim, DMA regions and interrupts) and removes the entry.
 * acquire is lookup, or else connect + claim + publish in one step.
 *
 * Ownership: a published connection belongs to the table; users hold
 * references and must not vdx_disconnect() it. A connection whose publish
 * failed stays the caller's.
 *
 * Thread-safety: every function is thread-safe (one mutex per table).
 * acquire and release hold it while connecting or disconnecting, so two
 * users of one device never open two connections to it, and a new
 * connection never overlaps the disconnect of the previous one.
 *
 * Errors: 0 or -errno.
 */
#ifndef VFIO_DEXT_CONN_TABLE_H
#define VFIO_DEXT_CONN_TABLE_H

#include "vfio-dext/client.h"

struct vdx_conn_table;

/* An empty table. Returns 0 and *out, or -EINVAL (out NULL), -ENOMEM. */
int vdx_conn_table_create(struct vdx_conn_table **out);

/*
 * Free the table. Every reference should have been released: entries still
 * present are disconnected (and a warning is logged for each), so their
 * users must be gone. NULL ok.
 */
void vdx_conn_table_destroy(struct vdx_conn_table *t);

/*
 * Publish `conn`, a connection to device `bdf` ("[DDDD:]BB:DD.F", a missing
 * domain is 0) of the dext behind `ep`, with one reference. On success the
 * table owns conn. Returns 0, -EEXIST (a connection is already published
 * for that key; conn stays the caller's), -EINVAL (NULL argument, bad BDF),
 * -ENOMEM.
 */
int vdx_conn_table_publish(struct vdx_conn_table *t, const struct vdx_endpoint *ep,
                           const char *bdf, struct vdx_conn *conn);

/*
 * The connection published for (ep, bdf), with one more reference.
 * Returns 0 and *out, -ENOENT (none), -EINVAL (NULL argument, bad BDF).
 */
int vdx_conn_table_lookup(struct vdx_conn_table *t, const struct vdx_endpoint *ep,
                          const char *bdf, struct vdx_conn **out);

/*
 * lookup, or when nothing is published: vdx_connect() + vdx_claim() and
 * publish the result with one reference. Returns 0 and *out; -EINVAL (NULL
 * argument, bad BDF), -ENOMEM, or the dext's failure as an errno
 * (vdx_passthru_errno(): -ENOENT no such device, -ENODEV dext gone...);
 * then, when dext_st is not NULL, *dext_st is the dext's status (DEXT_OK for
 * failures that did not come from the dext), so a caller can explain it.
 * On failure nothing is published and no connection is left open.
 */
int vdx_conn_table_acquire(struct vdx_conn_table *t, struct vdx_endpoint *ep,
                           const char *bdf, struct vdx_conn **out, dext_status *dext_st);

/*
 * Drop one reference to the connection published for (ep, bdf); conn must
 * be that connection. The last reference disconnects it and removes the
 * entry; conn must not be used afterwards. Returns 0, -ENOENT (nothing
 * published), -EINVAL (conn is not the published connection: nothing
 * changes; NULL argument; bad BDF).
 */
int vdx_conn_table_release(struct vdx_conn_table *t, const struct vdx_endpoint *ep,
                           const char *bdf, struct vdx_conn *conn);

/* References held on (ep, bdf); 0 when nothing is published (or bad input). */
unsigned vdx_conn_table_refs(struct vdx_conn_table *t, const struct vdx_endpoint *ep,
                             const char *bdf);

#endif /* VFIO_DEXT_CONN_TABLE_H */
