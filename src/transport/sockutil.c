/* SPDX-License-Identifier: BSD-3-Clause */
#include "transport/sockutil.h"

#include <string.h>
#include <unistd.h>

void vdx_close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

void vdx_cmsg_put_fd(struct msghdr *msg, void *cbuf, size_t cbuf_len, int fd)
{
    struct cmsghdr *cm;

    msg->msg_control = cbuf;
    msg->msg_controllen = cbuf_len;
    cm = CMSG_FIRSTHDR(msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
}
