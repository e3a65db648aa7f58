/* SPDX-License-Identifier: BSD-3-Clause */
/* Small socket helpers shared by both sides of the unix transport. */
#ifndef VFIO_DEXT_SOCKUTIL_H
#define VFIO_DEXT_SOCKUTIL_H

#include <stddef.h>
#include <sys/socket.h>

/* Close *fd if open and mark it closed (-1). */
void vdx_close_fd(int *fd);

/* Attach one fd as SCM_RIGHTS to msg, using cbuf (at least CMSG_SPACE(sizeof(int))). */
void vdx_cmsg_put_fd(struct msghdr *msg, void *cbuf, size_t cbuf_len, int fd);

#endif /* VFIO_DEXT_SOCKUTIL_H */
