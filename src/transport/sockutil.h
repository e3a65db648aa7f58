/* SPDX-License-Identifier: BSD-3-Clause */
/* Small socket helpers shared by both sides of the unix transport. */
#ifndef VFIO_DEXT_SOCKUTIL_H
#define VFIO_DEXT_SOCKUTIL_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

/* Close *fd if open and mark it closed (-1). */
void vdx_close_fd(int *fd);

/* Attach one fd as SCM_RIGHTS to msg, using cbuf (at least CMSG_SPACE(sizeof(int))). */
void vdx_cmsg_put_fd(struct msghdr *msg, void *cbuf, size_t cbuf_len, int fd);

/*
 * Write one whole frame to a blocking socket whose SO_SNDTIMEO bounds each
 * call; fd (when >= 0) travels as SCM_RIGHTS with the first byte. Gives up
 * after timeout_ms in all. Returns 0, or -errno with *why set for the log
 * (-ETIMEDOUT: the peer does not read its replies fast enough).
 */
int vdx_send_frame(int sock, const void *buf, size_t len, int fd, unsigned timeout_ms,
                   const char **why);

/* Fill a UNIX socket address; the caller checked strlen(path) < sizeof(sun_path). */
void vdx_sun_addr(struct sockaddr_un *addr, const char *path);

/*
 * May a server put its socket at `path`? 0 when nothing is there or a stale
 * socket nobody answers on (replace it), -EADDRINUSE when a server answers,
 * -EEXIST when it is not a socket, or -errno. `who` prefixes the log lines.
 */
int vdx_socket_path_free(const char *path, const char *who);

/* Bind fd at `tmp` (removing an old file there), chmod `mode`, listen. 0 or -errno. */
int vdx_listener_bind(int fd, const char *tmp, mode_t mode, int backlog);

/*
 * Rename the bound socket `tmp` to `path` (so a client that sees the file can
 * connect) and report which file is ours, for unlinking only our own later.
 */
int vdx_listener_publish(const char *tmp, const char *path, dev_t *dev, ino_t *ino);

#endif /* VFIO_DEXT_SOCKUTIL_H */
