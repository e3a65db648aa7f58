/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The transport seam, client side: how the client library reaches a dext.
 * Implementations: local (transport_local.c, direct calls into an in-process
 * struct dext), unix (src/transport/unix_client.c, a `vfio-dext dext` daemon
 * over a UNIX socket with fds as SCM_RIGHTS), iokit (macOS, not built here).
 *
 * All ops return dext_status. A transport whose peer went away returns
 * DEXT_E_NOT_ATTACHED. Ops on one user-client handle are called serialised by
 * the client library (one call in flight per connection).
 */
#ifndef VFIO_DEXT_TRANSPORT_H
#define VFIO_DEXT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "dext/core.h"
#include "vfio-dext/client.h"

struct vdx_transport_ops {
    const char *name;

    /* Endpoint level (no user client). */
    dext_status (*list)(void *ep, struct vdx_device_desc **devs, size_t *n);
    dext_status (*status)(void *ep, char **json);
    /* Open a user client on device `index` of list(). *uc: transport handle. */
    dext_status (*open)(void *ep, unsigned index, void **uc);

    /* User-client level. */
    dext_status (*call)(void *uc, uint32_t sel, const uint64_t *in, uint32_t nin,
                        uint64_t *out, uint32_t *nout);
    /* Selector 5 with reachable memory (src->fd >= 0 or src->va). Outputs: bus, len. */
    dext_status (*register_dma)(void *uc, uint64_t key, const struct dext_dma_src *src,
                                uint64_t size, uint64_t *bus, uint64_t *bus_len);
    /*
     * Memory type `type`: either mem->ptr usable in this process (mem->fd = -1),
     * or mem->fd (caller owns) to map at mem->fd_offset for mem->size bytes.
     * For BAR types a transport that can pass descriptors returns the fd
     * (vdx_bar_fd() hands it on); one that cannot (iokit) returns only ptr.
     */
    dext_status (*copy_memory)(void *uc, uint32_t type, struct dext_mem *mem);
    /*
     * Where wait completions (selector 15) signal: the signal end of a
     * platform event (vdx_event_create). The transport keeps its own
     * reference (dup or message); -1 detaches.
     */
    dext_status (*notify_attach)(void *uc, int event_fd);
    /* Close the user client: the dext releases everything it held. */
    void (*close)(void *uc);

    /* Free the endpoint's private data. */
    void (*ep_free)(void *ep);
};

/* Room for "unix:" + a runtime dir, or "local:" + an address. */
#define VDX_ENDPOINT_NAME_MAX 4112

struct vdx_endpoint {
    const struct vdx_transport_ops *ops;
    void *priv;
    char name[VDX_ENDPOINT_NAME_MAX]; /* vdx_endpoint_name() */
};

extern const struct vdx_transport_ops vdx_transport_local;
extern const struct vdx_transport_ops vdx_transport_unix;

/* Create the unix endpoint's private data for runtime dir `dir`. */
dext_status vdx_unix_endpoint_new(const char *dir, void **priv);

#endif /* VFIO_DEXT_TRANSPORT_H */
