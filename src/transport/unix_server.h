/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The unix transport, daemon side: serves a struct dext to clients over a
 * UNIX stream socket RUNTIME_DIR/dext.sock. Each connection is one user client
 * (after OPEN). The library owns no event loop and no thread: the caller polls
 * vdx_unix_server_fd() and calls vdx_unix_server_step().
 *
 * Security: the runtime dir is created 0700 (an existing one must be owned by
 * us and not group/other accessible), the socket is 0600, and a peer whose
 * uid (SO_PEERCRED) differs from ours is refused unless allowed by options.
 *
 * Hostile input: a malformed frame closes that one connection with a logged
 * reason (its user client is closed, releasing everything it held); every
 * other connection keeps being served.
 *
 * Thread-safety: one thread drives a server.
 */
#ifndef VFIO_DEXT_UNIX_SERVER_H
#define VFIO_DEXT_UNIX_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct dext;
struct vdx_unix_server;

#define VDX_UNIX_SOCKET_NAME "dext.sock"
#define VDX_UNIX_MAX_ALLOWED_UIDS 8

struct vdx_unix_server_opts {
    const char *runtime_dir;       /* required */
    bool allow_any_uid;            /* accept every peer uid */
    uid_t allowed_uids[VDX_UNIX_MAX_ALLOWED_UIDS]; /* besides our own */
    unsigned n_allowed_uids;
    unsigned max_clients;          /* 0: 256 */
};

/*
 * Create the runtime dir if needed, bind and listen. `d` must outlive the
 * server: destroy the server before the dext. (Linux: epoll, SO_PEERCRED.) Refuses (-EADDRINUSE) when
 * another daemon answers on the socket; removes a stale socket file.
 * Returns 0 and *out, or -errno (message logged).
 */
int vdx_unix_server_create(struct dext *d, const struct vdx_unix_server_opts *opts,
                           struct vdx_unix_server **out);

/* An fd to poll for readability (epoll fd covering the listener and clients). */
int vdx_unix_server_fd(const struct vdx_unix_server *srv);

/*
 * Serve whatever is ready, waiting up to timeout_ms (0: do not wait, -1:
 * forever). Returns the number of events handled, or -EINTR / -errno.
 */
int vdx_unix_server_step(struct vdx_unix_server *srv, int timeout_ms);

/* Live client connections. */
unsigned vdx_unix_server_clients(const struct vdx_unix_server *srv);

/* Close every connection, unlink the socket, free. NULL ok. */
void vdx_unix_server_destroy(struct vdx_unix_server *srv);

#endif /* VFIO_DEXT_UNIX_SERVER_H */
