/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio-dext client library: the seed's apple-dext-client API
 * (shared/reference/seed-system.md §3) over any transport.
 *
 * Every function returns a dext_status (vfio-dext/dext.h): DEXT_OK or an
 * error. A NULL connection or a NULL required output returns
 * DEXT_E_BAD_ARGUMENT. A broken transport (daemon gone) returns
 * DEXT_E_NOT_ATTACHED from then on. vdx_status_str() gives words for a status.
 *
 * Thread-safety: a connection may be used from several threads; calls are
 * serialised per connection. An interrupt notifier belongs to one thread.
 */
#ifndef VFIO_DEXT_CLIENT_H
#define VFIO_DEXT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfio-dext/dext.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vdx_conn;
struct vdx_notify;
struct dext; /* an in-process dext (src/dext/core.h) */

/* Words for a status, e.g. "not open (0xe00002cd)". Never NULL. */
const char *vdx_status_str(dext_status st);

/* ---- Discovery and connection -------------------------------------------- */

struct vdx_device_desc {
    uint16_t domain;
    uint8_t bus, slot, fn;
    uint16_t vendor, device;
    uint32_t class_code;
    bool claimed;
};

/*
 * A dext endpoint: "unix:DIR" (a `vfio-dext dext` daemon whose runtime dir is
 * DIR), "unix" (the default runtime dir, see vdx_default_runtime_dir()), or an
 * in-process dext via vdx_endpoint_local().
 */
struct vdx_endpoint;
/* Parse "unix[:DIR]". Returns 0 and *out, or DEXT_E_BAD_ARGUMENT. */
dext_status vdx_endpoint_parse(const char *uri, struct vdx_endpoint **out);
/* An endpoint for an in-process dext; `d` must outlive every connection. */
dext_status vdx_endpoint_local(struct dext *d, struct vdx_endpoint **out);
void vdx_endpoint_free(struct vdx_endpoint *ep);

/*
 * A name for the dext behind `ep`, for keying per-dext state in this process:
 * "unix:DIR" (DIR as given, or the default runtime dir) or "local:ADDR" (the
 * in-process dext's address). Endpoints with equal names reach the same dext.
 * Never NULL ("" for a NULL ep); valid as long as ep.
 */
const char *vdx_endpoint_name(const struct vdx_endpoint *ep);

/* Default runtime dir: $VFIO_DEXT_RUNTIME_DIR, else $XDG_RUNTIME_DIR/vfio-dext,
 * else /run/vfio-dext for root, else /tmp/vfio-dext-UID. Returns buf. */
const char *vdx_default_runtime_dir(char *buf, size_t len);

/*
 * List the dext's devices. On success *devs is a malloc'd array the caller
 * frees and *n its length. DEXT_E_NOT_ATTACHED when no dext answers.
 */
dext_status vdx_list_devices(struct vdx_endpoint *ep, struct vdx_device_desc **devs,
                             size_t *n);

/*
 * Connect to the device with this BDF ("[DDDD:]BB:DD.F"; a missing domain
 * matches domain 0): enumerate the dext's devices and open a user client on
 * the one whose identity matches. DEXT_E_NOT_FOUND when none does.
 */
dext_status vdx_connect(struct vdx_endpoint *ep, const char *bdf, struct vdx_conn **out);
/* Close the connection; the dext releases everything this client held. NULL ok. */
void vdx_disconnect(struct vdx_conn *conn);

/* Status JSON of the whole dext (`vfio-dext status`); caller frees *json. */
dext_status vdx_dext_status(struct vdx_endpoint *ep, char **json);

/* ---- Selectors ------------------------------------------------------------ */

/* Selector 0. Any output may be NULL. */
dext_status vdx_get_identity(struct vdx_conn *conn, struct vdx_device_desc *id);
/* Selector 1: shared claim. Claiming twice is a no-op. */
dext_status vdx_claim(struct vdx_conn *conn);
/* Selector 2. */
dext_status vdx_terminate(struct vdx_conn *conn);

/*
 * Selectors 3 + map of memory type 0: a DMA buffer of `size` bytes the device
 * can reach at *bus_addr. *addr is mapped in this process until
 * vdx_free_dma_buffer(). Outputs other than addr may be NULL.
 */
dext_status vdx_allocate_dma_buffer(struct vdx_conn *conn, uint64_t size, uint64_t align,
                                    uint64_t *bus_addr, uint64_t *bus_len, void **addr,
                                    uint64_t *mapped_size);
dext_status vdx_free_dma_buffer(struct vdx_conn *conn, void *addr);

/*
 * Selector 5. Register [client_va, client_va + size) under `iova` (the lookup
 * key; in identity mode also the bus address). Memory must stay mapped until
 * unregistered. Over the unix transport the memory must be shareable: memory
 * from vdx_shm_alloc() is found automatically; other memory returns
 * DEXT_E_UNSUPPORTED (use vdx_register_dma_fd()). out_* may be NULL.
 */
dext_status vdx_register_dma(struct vdx_conn *conn, uint64_t iova, void *client_va,
                             uint64_t size, uint64_t *out_bus_addr, uint64_t *out_bus_len);
/* Selector 5 with the memory as an fd + offset; works over every transport.
 * The caller keeps fd. */
dext_status vdx_register_dma_fd(struct vdx_conn *conn, uint64_t iova, int fd,
                                uint64_t fd_offset, uint64_t size, uint64_t *out_bus_addr,
                                uint64_t *out_bus_len);
/* Selector 6. */
dext_status vdx_unregister_dma(struct vdx_conn *conn, uint64_t iova);
/* Selector 7: read the 8 bytes the dext sees at key + offset. */
dext_status vdx_probe_dma(struct vdx_conn *conn, uint64_t iova, uint64_t offset,
                          uint64_t *out_word);

/*
 * Shareable memory for DMA (memfd on Linux), known to the library so
 * vdx_register_dma() can pass it to any dext. Returns DEXT_OK and *va.
 */
dext_status vdx_shm_alloc(size_t size, void **va);
void vdx_shm_free(void *va);

/* Selectors 8, 9. width 1, 2 or 4. */
dext_status vdx_config_read(struct vdx_conn *conn, uint32_t offset, unsigned width,
                            uint32_t *out_value);
dext_status vdx_config_write(struct vdx_conn *conn, uint32_t offset, unsigned width,
                             uint32_t value);
/* Dwords while >= 4 bytes remain, then bytes; stops at the first error. */
dext_status vdx_config_read_block(struct vdx_conn *conn, uint32_t offset, void *buf,
                                  size_t len);

/* Selector 10. Outputs may be NULL. */
dext_status vdx_get_bar_info(struct vdx_conn *conn, unsigned bar, uint32_t *out_mem_idx,
                             uint64_t *out_size, uint8_t *out_type);

/*
 * Map BAR `bar` (memory type 1 + bar) into this process. Prefetchable BARs
 * record write-combining intent (*out_wc). DEXT_E_UNSUPPORTED when the device
 * cannot share this BAR as memory (use MMIO selectors). out_type, out_wc may
 * be NULL.
 */
dext_status vdx_map_bar(struct vdx_conn *conn, unsigned bar, void **out_addr,
                        uint64_t *out_size, uint8_t *out_type, bool *out_wc);
dext_status vdx_unmap_bar(struct vdx_conn *conn, unsigned bar, void *addr);

/*
 * A descriptor for BAR `bar` that can be handed to another process (e.g. to a
 * VMM, to offer the BAR mmappable). Memory type 1 + bar, as vdx_map_bar(),
 * but the descriptor itself instead of a mapping in this process.
 *  - out_fd (required): on success a new descriptor (close-on-exec) the
 *    caller owns and must close; it stays valid after the connection closes.
 *    Mapping it MAP_SHARED read/write at *out_offset for *out_size bytes
 *    gives the BAR's bytes: what vdx_map_bar() and the MMIO selectors see.
 *    On error *out_fd is -1.
 *  - out_offset, out_size (may be NULL): the BAR's offset in the descriptor
 *    and its length (the BAR size).
 * Works the same over the local transport (a dup of the device's descriptor)
 * and the unix transport (received from the daemon over SCM_RIGHTS).
 * Returns DEXT_OK, or:
 *  - DEXT_E_BAD_ARGUMENT: NULL conn or out_fd, bar >= DEXT_NUM_BARS;
 *  - DEXT_E_NOT_FOUND: the BAR is absent (size 0, upper half of a 64-bit BAR);
 *  - DEXT_E_UNSUPPORTED: the BAR cannot be shared as a descriptor (device
 *    registers, an I/O BAR, or a transport that maps memory without
 *    descriptors, such as iokit): trap accesses instead (vdx_map_bar() where
 *    it works, else the MMIO selectors);
 *  - DEXT_E_NOT_ATTACHED: the transport broke; DEXT_E_IO_ERROR: the dext
 *    answered with an empty range.
 */
dext_status vdx_bar_fd(struct vdx_conn *conn, unsigned bar, int *out_fd,
                       uint64_t *out_offset, uint64_t *out_size);

/* Selectors 11, 12. width 1, 2, 4 or 8. */
dext_status vdx_mmio_read(struct vdx_conn *conn, uint32_t mem_idx, uint64_t offset,
                          unsigned width, uint64_t *out_value);
dext_status vdx_mmio_write(struct vdx_conn *conn, uint32_t mem_idx, uint64_t offset,
                           unsigned width, uint64_t value);

/* ---- Interrupts ----------------------------------------------------------- */

/* Selector 13. out_num_vectors may be NULL. */
dext_status vdx_setup_interrupts(struct vdx_conn *conn, uint32_t *out_num_vectors);
/* Selector 16. */
dext_status vdx_set_irq_mask(struct vdx_conn *conn, const uint64_t mask[DEXT_IRQ_WORDS]);
/* Selector 14: read and clear. */
dext_status vdx_read_pending_irqs(struct vdx_conn *conn, uint64_t pending[DEXT_IRQ_WORDS]);

/*
 * Map the IRQ state page (memory type 7) for IPC-free use: drain with
 * __atomic_exchange_n(&page->pending[w], 0, ...), mask by writing enabled[].
 * Valid until the connection closes.
 */
dext_status vdx_map_irq_page(struct vdx_conn *conn, struct dext_irq_page **out_page);

/*
 * Interrupt notification (selector 15): create arms the one-shot wait;
 * vdx_notify_fd() is readable once it completes; the owner then drains the
 * fd (vdx_notify_ack), reads pending bits and calls vdx_notify_rearm(), which
 * completes at once when bits are already pending: no wake-up is lost.
 */
dext_status vdx_notify_create(struct vdx_conn *conn, struct vdx_notify **out);
int vdx_notify_fd(const struct vdx_notify *n);
/* Consume the readable state of the fd; returns true if it was signalled. */
bool vdx_notify_ack(struct vdx_notify *n);
dext_status vdx_notify_rearm(struct vdx_notify *n);
void vdx_notify_destroy(struct vdx_notify *n);

/* Selector 17. out_method (may be NULL) gets enum dext_reset_method. */
dext_status vdx_reset_device(struct vdx_conn *conn, uint32_t *out_method);

/* Raw selector call, for tools and tests. */
dext_status vdx_call(struct vdx_conn *conn, uint32_t sel, const uint64_t *in, uint32_t nin,
                     uint64_t *out, uint32_t *nout);

#ifdef __cplusplus
}
#endif

#endif /* VFIO_DEXT_CLIENT_H */
