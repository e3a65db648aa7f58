/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The tiny platform layer: wake-up events and shareable memory. Linux uses
 * eventfd and memfd (platform_linux.c); macOS would use a pipe pair and
 * shm_open. Nothing outside src/platform/ includes a Linux-only header for
 * these.
 */
#ifndef VFIO_DEXT_PLATFORM_H
#define VFIO_DEXT_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/*
 * A wake-up event: a pair of fds (O_CLOEXEC, non-blocking). *wait_fd becomes
 * readable when the event is signalled through *signal_fd, and stays so until
 * drained. The signal end is a socket signalled with send(MSG_DONTWAIT): it
 * never blocks, whatever the holder of the wait end does (fill it, clear
 * O_NONBLOCK on a shared file description, close it), so a dext may signal
 * an fd a peer handed it while holding its locks. Returns 0 or -errno.
 */
int vdx_event_create(int *wait_fd, int *signal_fd);
/* Signal; thread-safe, never blocks. A full or closed wait end is not an error:
 * it is readable already, or nobody listens. Returns 0 or -errno. */
int vdx_event_signal(int signal_fd);
/* Consume all signals. Returns the count consumed (0 if none) or -errno. */
int64_t vdx_event_drain(int wait_fd);
/* Whether an fd a peer sent can serve as a signal end (a socket): 0 or -EINVAL. */
int vdx_event_check_signal_fd(int fd);

/*
 * Shareable anonymous memory of `size` bytes (zero-filled), named for
 * debugging, sealed against shrinking and growing: whoever receives the fd
 * can map it but cannot truncate it under another mapper (which would make
 * that mapper fault with SIGBUS). Returns an O_CLOEXEC fd or -errno.
 */
int vdx_shm_create(const char *name, size_t size);

/*
 * Check that [offset, offset + size) of a peer's fd can be mapped and stays
 * mapped: the fd is sealed against shrinking and is at least that large.
 * Returns 0, -EPERM (not sealed: a peer could truncate it), -ERANGE (too
 * small) or -errno.
 */
int vdx_shm_check(int fd, uint64_t offset, uint64_t size);

/* mmap an fd shared read/write. Returns the address or NULL (errno set). */
void *vdx_shm_map(int fd, uint64_t offset, size_t size);
void vdx_shm_unmap(void *addr, size_t size);

/* The host page size. */
size_t vdx_page_size(void);

#endif /* VFIO_DEXT_PLATFORM_H */
