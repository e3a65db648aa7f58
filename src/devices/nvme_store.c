/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim:nvme backing store (see nvme.h, part 4).
 *
 * RAM: one private anonymous MAP_NORESERVE mapping. Untouched pages read as
 * zeros through the shared zero page, so size=1G costs nothing until
 * written; zeroing whole pages gives them back (MADV_DONTNEED).
 *
 * File: pread/pwrite on a regular file, extended sparsely with ftruncate,
 * never shrunk; zeroing punches holes (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE) and
 * falls back to writing zeros where the filesystem cannot. A completed
 * pwrite is in the kernel's page cache, so it survives the dext process
 * being killed; fdatasync (Flush, FUA, shutdown) makes it survive power loss.
 * The file is flock()ed so two devices never share it.
 */
#include "devices/nvme.h"
#include "devices/simpci.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZERO_CHUNK 65536u

struct nvme_store {
    uint64_t size;
    int fd;         /* file store, or -1 */
    uint8_t *mem;   /* RAM store, or NULL */
    bool can_punch; /* zeroing is cheap: RAM, or a file system that punches holes */
};

static const uint8_t zero_chunk[ZERO_CHUNK];

static bool range_ok(const struct nvme_store *s, uint64_t off, uint64_t len)
{
    return off <= s->size && len <= s->size - off;
}

/* ---- Open / close ------------------------------------------------------------ */

static int open_ram(struct nvme_store *s, char *err, size_t errlen)
{
    void *p = mmap(NULL, s->size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        int rc = -errno;

        simpci_set_err(err, errlen, "cannot reserve %llu bytes of memory: %s",
                       (unsigned long long)s->size, strerror(-rc));
        return rc;
    }
    s->mem = p;
    return 0;
}

/* Lock, check the type and grow the file to the store's size. */
static int prepare_file(struct nvme_store *s, const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (flock(s->fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

        simpci_set_err(err, errlen, "%s: %s", path,
                       rc == -EBUSY ? "in use by another device or process"
                                    : strerror(-rc));
        return rc;
    }
    if (fstat(s->fd, &st) < 0) {
        int rc = -errno;

        simpci_set_err(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        simpci_set_err(err, errlen, "%s: not a regular file", path);
        return -EINVAL;
    }
    if ((uint64_t)st.st_size < s->size && ftruncate(s->fd, (off_t)s->size) < 0) {
        int rc = -errno;

        simpci_set_err(err, errlen, "%s: cannot extend to %llu bytes: %s", path,
                       (unsigned long long)s->size, strerror(-rc));
        return rc;
    }
    return 0;
}

static int open_file(struct nvme_store *s, const char *path, char *err, size_t errlen)
{
    int rc;

    s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        rc = -errno;
        simpci_set_err(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
        return rc;
    }
    rc = prepare_file(s, path, err, errlen);
    if (rc) {
        close(s->fd);
        s->fd = -1;
        return rc;
    }
    /* Probe hole punching harmlessly: beyond the end, keeping the size. */
    s->can_punch = fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                             (off_t)s->size, 4096) == 0;
    return 0;
}

int nvme_store_open(const char *path, uint64_t size, struct nvme_store **out, char *err,
                    size_t errlen)
{
    struct nvme_store *s;
    int rc;

    if (!out || size == 0 || size % NVME_SIM_LBA_SIZE != 0 || size > (uint64_t)INT64_MAX) {
        simpci_set_err(err, errlen, "bad store size");
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        simpci_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->size = size;
    s->fd = -1;
    rc = path ? open_file(s, path, err, errlen) : open_ram(s, err, errlen);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void nvme_store_close(struct nvme_store *s)
{
    if (!s) {
        return;
    }
    if (s->fd >= 0) {
        (void)fdatasync(s->fd);
        close(s->fd);
    }
    if (s->mem) {
        munmap(s->mem, s->size);
    }
    free(s);
}

int nvme_store_file_size(const char *path, uint64_t *size)
{
    struct stat st;

    if (!path || !size) {
        return -EINVAL;
    }
    if (stat(path, &st) < 0) {
        if (errno == ENOENT) {
            *size = 0;
            return 0;
        }
        return -errno;
    }
    *size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    return 0;
}

/* ---- I/O ------------------------------------------------------------------------ */

static int file_read(int fd, uint64_t off, uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) { /* the file shrank under us: what is missing reads as zeros */
            memset(buf, 0, len);
            return 0;
        }
        buf += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int file_write(int fd, uint64_t off, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            return -EIO;
        }
        buf += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int nvme_store_read(struct nvme_store *s, uint64_t off, void *buf, size_t len)
{
    if (!s || !buf || !range_ok(s, off, len)) {
        return -EINVAL;
    }
    if (s->mem) {
        memcpy(buf, s->mem + off, len);
        return 0;
    }
    return file_read(s->fd, off, buf, len);
}

int nvme_store_write(struct nvme_store *s, uint64_t off, const void *buf, size_t len)
{
    if (!s || !buf || !range_ok(s, off, len)) {
        return -EINVAL;
    }
    if (s->mem) {
        memcpy(s->mem + off, buf, len);
        return 0;
    }
    return file_write(s->fd, off, buf, len);
}

uint8_t *nvme_store_ptr(struct nvme_store *s, uint64_t off, uint64_t len)
{
    if (!s || !s->mem || !range_ok(s, off, len)) {
        return NULL;
    }
    return s->mem + off;
}

/* Zero the RAM store: memset the partial pages at the edges, give whole
 * pages back to the kernel (they then read as zeros). */
static int ram_zero(struct nvme_store *s, uint64_t off, uint64_t len)
{
    const uint64_t pg = NVME_SIM_PAGE_SIZE;
    uint64_t start = (off + pg - 1) & ~(pg - 1);
    uint64_t end = (off + len) & ~(pg - 1);

    if (start >= end) {
        memset(s->mem + off, 0, len);
        return 0;
    }
    memset(s->mem + off, 0, start - off);
    memset(s->mem + end, 0, off + len - end);
    if (madvise(s->mem + start, end - start, MADV_DONTNEED) < 0) {
        memset(s->mem + start, 0, end - start);
    }
    return 0;
}

static int file_zero_slow(int fd, uint64_t off, uint64_t len)
{
    while (len > 0) {
        size_t n = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;
        int rc = file_write(fd, off, zero_chunk, n);

        if (rc) {
            return rc;
        }
        off += n;
        len -= n;
    }
    return 0;
}

int nvme_store_zero(struct nvme_store *s, uint64_t off, uint64_t len)
{
    if (!s || !range_ok(s, off, len)) {
        return -EINVAL;
    }
    if (len == 0) {
        return 0;
    }
    if (s->mem) {
        return ram_zero(s, off, len);
    }
    if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                  (off_t)len) == 0) {
        return 0;
    }
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) {
        return -errno;
    }
    return file_zero_slow(s->fd, off, len);
}

int nvme_store_sync(struct nvme_store *s)
{
    if (!s) {
        return -EINVAL;
    }
    if (s->fd >= 0 && fdatasync(s->fd) < 0) {
        return -errno;
    }
    return 0;
}

bool nvme_store_cheap_zero(const struct nvme_store *s)
{
    return s && (s->mem || s->can_punch);
}

bool nvme_store_has_volatile_cache(const struct nvme_store *s)
{
    return s && s->fd >= 0;
}
