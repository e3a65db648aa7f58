/* SPDX-License-Identifier: BSD-3-Clause */
#include "transport/sockutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

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

void vdx_sun_addr(struct sockaddr_un *addr, const char *path)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, path, strlen(path) + 1);
}

int vdx_socket_path_free(const char *path, const char *who)
{
    struct sockaddr_un addr;
    struct stat st;
    int probe, rc;

    if (lstat(path, &st) < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    if (!S_ISSOCK(st.st_mode)) {
        vdx_log(VDX_LOG_ERR, "%s: %s exists and is not a socket; refusing to replace it",
                who, path);
        return -EEXIST;
    }
    probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0) {
        return -errno;
    }
    vdx_sun_addr(&addr, path);
    rc = connect(probe, (const struct sockaddr *)&addr, sizeof(addr));
    if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
        close(probe);
        vdx_log(VDX_LOG_ERR, "%s: another server answers on %s", who, path);
        return -EADDRINUSE;
    }
    close(probe);
    vdx_log(VDX_LOG_INFO, "%s: replacing stale socket %s", who, path);
    return 0;
}

int vdx_listener_bind(int fd, const char *tmp, mode_t mode, int backlog)
{
    struct sockaddr_un addr;

    vdx_sun_addr(&addr, tmp);
    if (unlink(tmp) < 0 && errno != ENOENT) {
        return -errno;
    }
    if (bind(fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0) {
        return -errno;
    }
    if (chmod(tmp, mode) < 0 || listen(fd, backlog) < 0) {
        int rc = -errno;

        unlink(tmp);
        return rc;
    }
    return 0;
}

int vdx_listener_publish(const char *tmp, const char *path, dev_t *dev, ino_t *ino)
{
    struct stat st;

    if (rename(tmp, path) < 0 || lstat(path, &st) < 0) {
        return -errno;
    }
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

int vdx_send_frame(int sock, const void *buf, size_t len, int fd, unsigned timeout_ms,
                   const char **why)
{
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    uint64_t deadline = vdx_now_ns() + (uint64_t)timeout_ms * 1000000ull;

    if (fd >= 0) {
        memset(&cbuf, 0, sizeof(cbuf));
        vdx_cmsg_put_fd(&msg, cbuf.b, sizeof(cbuf.b), fd);
    }
    while (iov.iov_len > 0) {
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);

        if (n < 0 && errno != EINTR) {
            *why = errno == EAGAIN ? "it does not read its replies" : "sendmsg failed";
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
        if (n > 0) {
            iov.iov_base = (char *)iov.iov_base + n;
            iov.iov_len -= (size_t)n;
            msg.msg_control = NULL; /* the fd went with the first byte */
            msg.msg_controllen = 0;
        }
        if (iov.iov_len > 0 && vdx_now_ns() > deadline) {
            *why = "it reads its replies too slowly";
            return -ETIMEDOUT;
        }
    }
    return 0;
}
