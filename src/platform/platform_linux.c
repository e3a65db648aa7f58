/* SPDX-License-Identifier: BSD-3-Clause */
/* Linux implementation of platform.h: eventfd and memfd. */
#include "platform/platform.h"

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int vdx_event_create(int *wait_fd, int *signal_fd)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
        return -errno;
    }
    *wait_fd = sv[0];
    *signal_fd = sv[1];
    return 0;
}

int vdx_event_signal(int signal_fd)
{
    static const uint8_t one = 1;

    for (;;) {
        if (send(signal_fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) {
            return 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNREFUSED ||
            errno == EPIPE) {
            return 0; /* full: readable already; closed: nobody listens */
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

int64_t vdx_event_drain(int wait_fd)
{
    uint8_t buf[64];
    int64_t n = 0;

    for (;;) {
        ssize_t r = recv(wait_fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (r >= 0) {
            n++;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK ? n : -errno;
    }
}

int vdx_event_check_signal_fd(int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        return -EINVAL;
    }
    return 0;
}

int vdx_shm_create(const char *name, size_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0) {
        return -errno;
    }
    if (ftruncate(fd, (off_t)size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        int err = -errno;

        close(fd);
        return err;
    }
    return fd;
}

int vdx_shm_check(int fd, uint64_t offset, uint64_t size)
{
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);

    if (seals < 0) {
        return errno == EINVAL ? -EPERM : -errno;
    }
    if (!(seals & F_SEAL_SHRINK)) {
        return -EPERM;
    }
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (offset + size < offset || offset + size > (uint64_t)st.st_size) {
        return -ERANGE;
    }
    return 0;
}

void *vdx_shm_map(int fd, uint64_t offset, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);

    return p == MAP_FAILED ? NULL : p;
}

void vdx_shm_unmap(void *addr, size_t size)
{
    if (addr) {
        munmap(addr, size);
    }
}

size_t vdx_page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);

    return ps > 0 ? (size_t)ps : 4096u;
}
