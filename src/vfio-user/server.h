/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user server: serves one PCI device to stock QEMU (device
 * vfio-user-pci, >= 10.1) over a UNIX stream socket, with the wire format of
 * protocol.h, and hands every device operation to a backend through
 * struct vdx_vu_backend_ops.
 *
 * Event loop: the library owns no thread and no loop. The caller polls
 * vdx_vu_server_fd() for readability and calls vdx_vu_server_step(). Every
 * callback runs inside vdx_vu_server_step(), on the calling thread.
 *
 * Clients: one at a time (QEMU opens one socket per device). While a client
 * is connected, further connections wait in the listen backlog (unaccepted);
 * the next one is accepted once the current client is gone. A client that
 * does not finish VERSION, or stops in the middle of a message, for longer
 * than stall_timeout_ms is dropped. The peer must have our uid (SO_PEERCRED)
 * unless allow_any_uid; the socket is created with socket_mode (0600).
 *
 * Messages are processed strictly in arrival order (posted writes rely on
 * it). Every command gets exactly one reply unless it has NO_REPLY, in which
 * case it gets none (not even an error: failures are counted in
 * stats.posted_errors). Reply-type messages from the client are ignored
 * (stats.ignored): this server never sends requests. Errors:
 *  - a malformed or unsupported command gets an error reply with a positive
 *    errno and the client is served on: the decoder errors of protocol.h,
 *    the backend's -errno, EINVAL for descriptors a command does not take
 *    (they are closed), for any command but VERSION before VERSION, for a
 *    second VERSION, for unknown flag bits; EEXIST for an overlapping
 *    DMA_MAP, ENOENT for a DMA_UNMAP matching no map exactly, ENOSPC beyond
 *    max_dma_maps / max_dma_files, ENOTSUP for unknown and unimplemented
 *    commands, ENOTTY for DEVICE_FEATURE;
 *  - a message that cannot be framed (size < 16, above the negotiated
 *    maximum, or above the largest VERSION before VERSION), a VERSION the
 *    server cannot accept (after its error reply), a stall, or a client that
 *    does not read its replies (SO_SNDTIMEO 1 s) drops the client.
 * Either way nothing aborts and the next client is served.
 *
 * When a client goes away (EOF, drop, destroy) the server releases all it
 * held: each IRQ index that was enabled is disabled through set_irqs (count
 * 0) and its eventfds closed, each DMA mapping is passed to dma_unmap and
 * then unmapped and its fd closed, then detach runs. Device state is the
 * backend's: the spec says to keep it for the next client.
 *
 * Thread-safety: one thread drives a server; no function taking the server
 * may be called concurrently with another. vdx_vu_eventfd_signal() works on
 * any thread.
 *
 * Platform: Linux (epoll, SO_PEERCRED); a macOS port swaps in kqueue and
 * getpeereid() in server.c only.
 */
#ifndef VFIO_DEXT_VU_SERVER_H
#define VFIO_DEXT_VU_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vfio-user/protocol.h"

struct vdx_vu_server;

/* Limits of this implementation (the backend's answers must respect them). */
#define VDX_VU_MAX_REGIONS     16u   /* num_regions; PCI needs 9 */
#define VDX_VU_MAX_IRQ_INDEXES 8u    /* num_irqs; PCI needs 5 */
#define VDX_VU_MAX_IRQ_VECTORS 2048u /* per index: the MSI-X maximum */

/* ---- Backend ------------------------------------------------------------------- */

/* DEVICE_GET_INFO. flags: VDX_VU_DEVICE_F_PCI (QEMU requires it), plus
 * VDX_VU_DEVICE_F_RESET iff reset is implemented. */
struct vdx_vu_be_device {
    uint32_t flags;
    uint32_t num_regions; /* 1..VDX_VU_MAX_REGIONS; QEMU wants >= 8, use 9 */
    uint32_t num_irqs;    /* 0..VDX_VU_MAX_IRQ_INDEXES; QEMU wants >= 3, use 5 */
};

/*
 * One region. The server zeroes this and sets fd = -1 before asking.
 * fd: -1 (trapped only), or a descriptor the client may mmap; it stays the
 * backend's and must stay open as long as the server exists (the server sends
 * a copy with the full reply, after region_info returned). With an fd the
 * server reports MMAP; areas
 * (nr_areas > 0) restrict mmapping to those page-aligned parts (sparse-mmap
 * capability), nr_areas == 0 means the whole region. Sizes of BARs must be
 * powers of two (QEMU), 0 = absent; config space (index 7) 256 or 4096.
 */
struct vdx_vu_be_region {
    uint64_t size;
    uint32_t flags; /* VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE */
    int fd;
    uint64_t fd_offset; /* mmap offset of region offset 0 in fd; page aligned */
    uint32_t nr_areas;
    struct vdx_vu_sparse_area areas[VDX_VU_MAX_SPARSE_AREAS];
};

/* One IRQ index. count <= VDX_VU_MAX_IRQ_VECTORS. Don't set NORESIZE (ref §3.3). */
struct vdx_vu_be_irq {
    uint32_t flags; /* VDX_VU_IRQ_INFO_F_* */
    uint32_t count;
};

/*
 * A validated SET_IRQS: index < num_irqs and, when count > 0,
 * start + count <= that index's count.
 *  - count == 0 (data NONE, action TRIGGER): disable the whole index; the
 *    backend must stop using every eventfd of the index before returning.
 *  - data EVENTFD: fds[i] is the new eventfd of vector start + i, or -1 for
 *    "no eventfd" (de-assign). Action TRIGGER: the interrupt's eventfd;
 *    action UNMASK: the unmask (INTx resample) eventfd. The fds are borrowed:
 *    the server owns them and closes each when it is replaced, de-assigned,
 *    disabled or the client goes away, always after the set_irqs call that
 *    stopped its use has returned. The backend must stop using a replaced fd
 *    before returning.
 *  - data BOOL: bools[i] for vector start + i; data NONE: no data. With
 *    TRIGGER these mean "fire now", with MASK/UNMASK "mask/unmask".
 * On error nothing changes on the server side (the new fds are closed).
 */
struct vdx_vu_be_irq_set {
    uint32_t index, start, count;
    uint32_t action;      /* one VDX_VU_IRQ_SET_ACTION_* bit */
    uint32_t data;        /* one VDX_VU_IRQ_SET_DATA_* bit */
    const int *fds;       /* data EVENTFD: count entries; else NULL */
    const uint8_t *bools; /* data BOOL: count entries; else NULL */
};

/* DMA_MAP prot bits (the wire's READ/WRITE flags). */
#define VDX_VU_DMA_PROT_READ  VDX_VU_DMA_MAP_F_READ
#define VDX_VU_DMA_PROT_WRITE VDX_VU_DMA_MAP_F_WRITE

/*
 * One DMA mapping of guest memory: [iova, iova + size) with prot. When the
 * client sent an fd, vaddr maps it in this process (MAP_SHARED, prot) and
 * fd/fd_offset describe it (fd is the server's: identical files share one
 * descriptor); both stay valid until dma_unmap for this mapping returns.
 * The file is a regular file (memfd, hugetlbfs, tmpfs...) covering the range
 * when mapped; `sealed` says it cannot shrink (F_SEAL_SHRINK, as QEMU's
 * memory-backend-memfd does by default): otherwise the client could truncate
 * it and a later touch of vaddr would fault (SIGBUS), and the dext's unix
 * transport refuses to register it (vdx_shm_check()).
 * Without an fd, vaddr is NULL and fd is -1: QEMU sends such maps for ROM and
 * BIOS areas and for guest RAM that is not shared (no memfd backend); the
 * memory is then unreachable for device DMA.
 */
struct vdx_vu_be_dma {
    uint64_t iova, size;
    uint32_t prot;
    void *vaddr;
    int fd;
    uint64_t fd_offset;
    bool sealed;
};

/*
 * Backend operations. All run on the thread that calls
 * vdx_vu_server_step(), return 0 or -errno (sent to the client as the error
 * reply's errno) unless noted, and must not block for long: QEMU waits at
 * most 5 s (x-msg-timeout) for any reply and then corrupts its stream.
 */
struct vdx_vu_backend_ops {
    /* Optional. A client was accepted. An error refuses it (connection closed). */
    int (*attach)(void *opaque);
    /* Optional. The client is gone and all it held has been released. */
    void (*detach)(void *opaque);
    /* Mandatory. Sampled once per client, at accept (with region_info and
     * irq_info for every index): the device's shape for that client. */
    int (*device_info)(void *opaque, struct vdx_vu_be_device *info);
    /* Mandatory. index < num_regions. Called at accept and for each
     * DEVICE_GET_REGION_INFO. */
    int (*region_info)(void *opaque, uint32_t index, struct vdx_vu_be_region *info);
    /* Mandatory. index < num_irqs. Called at accept only. */
    int (*irq_info)(void *opaque, uint32_t index, struct vdx_vu_be_irq *info);
    /* Mandatory. See struct vdx_vu_be_irq_set. */
    int (*set_irqs)(void *opaque, const struct vdx_vu_be_irq_set *set);
    /*
     * Mandatory. The server has checked index < num_regions, the region's
     * READ (WRITE) flag, 0 < count <= max_data_xfer_size and
     * offset + count <= size. Read fills exactly count bytes of buf (no short
     * reads). Must not allocate: this is the trapped-MMIO fast path.
     */
    int (*region_read)(void *opaque, uint32_t index, uint64_t offset, void *buf,
                       uint32_t count);
    int (*region_write)(void *opaque, uint32_t index, uint64_t offset, const void *buf,
                        uint32_t count);
    /* Optional (NULL: ENOTSUP). DEVICE_RESET: reset registers, keep DMA maps and
     * IRQ eventfds (QEMU keeps them). Keep it well under 5 s. */
    int (*reset)(void *opaque);
    /* Optional. A new mapping; an error refuses it (QEMU aborts on a refused
     * RAM map, so refuse only what is really unusable). */
    int (*dma_map)(void *opaque, const struct vdx_vu_be_dma *dma);
    /*
     * Optional. The mapping is going away (DMA_UNMAP, UNMAP_ALL, client gone).
     * Must not return while any DMA may still touch it: wait for in-flight
     * DMA here. It cannot fail; afterwards the server unmaps vaddr.
     */
    void (*dma_unmap)(void *opaque, const struct vdx_vu_be_dma *dma);
};

/* ---- Server -------------------------------------------------------------------- */

/* Server options; a zero field takes its default (the value after ';'). */
struct vdx_vu_server_opts {
    const char *name;            /* log label (e.g. the device BDF); default: path */
    uint32_t max_data_xfer_size; /* offered; <= VDX_VU_QEMU_MAX_XFER; 1 MiB */
    uint32_t max_msg_fds;        /* fds we accept per message; <= 16; 16 */
    uint32_t max_dma_maps;       /* offered and enforced; 65535 */
    uint32_t max_dma_files;      /* distinct backing files per client; <= 4096; 64 */
    uint64_t pgsizes;            /* offered DMA page sizes, none below 4 KiB; 4096 */
    unsigned stall_timeout_ms;   /* VERSION and partial-message deadline; 10000 */
    bool allow_any_uid;          /* accept peers of any uid */
    mode_t socket_mode;          /* 0600 */
};

/* Fill opts with the defaults above. */
void vdx_vu_server_opts_default(struct vdx_vu_server_opts *opts);

/*
 * Listen on `path` (the socket appears there only once it listens). A stale
 * socket nobody answers on is replaced; -EADDRINUSE when a server answers,
 * -EEXIST when path is not a socket, -ENAMETOOLONG, -EINVAL for missing
 * mandatory ops or out-of-range opts (NULL opts: defaults), -ENOMEM, -errno.
 * ops and opaque must outlive the server. Returns 0 and *out.
 */
int vdx_vu_server_create(const char *path, const struct vdx_vu_backend_ops *ops,
                         void *opaque, struct vdx_vu_server **out);
int vdx_vu_server_create_opts(const char *path, const struct vdx_vu_server_opts *opts,
                              const struct vdx_vu_backend_ops *ops, void *opaque,
                              struct vdx_vu_server **out);

/* An fd to poll for readability (an epoll fd covering listener and client). */
int vdx_vu_server_fd(const struct vdx_vu_server *srv);

/*
 * Accept, read and serve whatever is ready, waiting up to timeout_ms (0: do
 * not wait, -1: until something happens; a pending deadline shortens the
 * wait). Serves at most 64 messages per call. Returns the number of events
 * handled (>= 0), or -EINTR / -errno from epoll_wait. Client failures are
 * never returned: they are logged (rate-limited) and counted.
 */
int vdx_vu_server_step(struct vdx_vu_server *srv, int timeout_ms);

/* A client is connected. */
bool vdx_vu_server_connected(const struct vdx_vu_server *srv);

/* The current client's eventfd for (index, vector): >= 0, or -ENOENT (none
 * assigned, no client, out of range). Borrowed: see struct vdx_vu_be_irq_set. */
int vdx_vu_server_irq_fd(const struct vdx_vu_server *srv, uint32_t index, uint32_t vector);

/* Signal that eventfd (vdx_vu_eventfd_signal()). Returns 0, -ENOENT or -errno. */
int vdx_vu_server_irq_signal(struct vdx_vu_server *srv, uint32_t index, uint32_t vector);

/*
 * Signal an interrupt eventfd a client sent (QEMU's irqfd or EventNotifier):
 * an 8-byte write of the value 1, never blocking, whatever the client did to
 * the descriptor (a full counter or pipe is readable already: 0). Any
 * thread, as long as the fd is valid (see struct vdx_vu_be_irq_set).
 * Returns 0 or -errno.
 */
int vdx_vu_eventfd_signal(int fd);

struct vdx_vu_server_stats {
    uint64_t clients;       /* accepted */
    uint64_t refused;       /* connections refused (uid, attach, resources) */
    uint64_t dropped;       /* clients dropped for a protocol violation or a stall */
    uint64_t messages;      /* commands processed */
    uint64_t error_replies; /* error replies sent */
    uint64_t posted_errors; /* failed NO_REPLY commands (nothing was sent) */
    uint64_t ignored;       /* reply-type messages from the client, ignored */
    uint32_t dma_maps;      /* current client: live mappings */
    uint32_t dma_files;     /* current client: distinct backing files held */
};

void vdx_vu_server_stats(const struct vdx_vu_server *srv, struct vdx_vu_server_stats *st);

/* Release the client (as on EOF), close, unlink the socket if still ours,
 * free. NULL ok. */
void vdx_vu_server_destroy(struct vdx_vu_server *srv);

#endif /* VFIO_DEXT_VU_SERVER_H */
