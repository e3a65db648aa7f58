/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the vfio-user wire format (src/vfio-user/protocol.h): every
 * decoder with good and hostile buffers, every encoder byte for byte, and a
 * random-bytes / mutation fuzz loop over all decoders.
 *
 * Buffers are built here by hand from the layouts QEMU's hw/vfio-user uses
 * (reference/vfio-user.md §2), never with the library's own encoders.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vfio-user/protocol.h"

/* The capabilities QEMU 10.1+ sends: qobject_to_json() of its QDict, keys in
 * hash-bucket order, ", " and ": " separators (193 bytes, 214 with NUL,
 * header and version). */
static const char qemu_caps[] =
    "{\"capabilities\": {\"pgsizes\": 4096, \"max_msg_fds\": 16, \"max_dma_maps\": 65535, "
    "\"max_data_xfer_size\": 1048576, \"migration\": {\"max_bitmap_size\": 268435456, "
    "\"pgsize\": 4096}, \"write_multiple\": true}}";

/* ---- Byte writer ---------------------------------------------------------------- */

struct bw {
    uint8_t b[8192];
    size_t n;
};

static void w8(struct bw *w, uint8_t v)
{
    w->b[w->n++] = v;
}

static void w16(struct bw *w, uint16_t v)
{
    w8(w, (uint8_t)v);
    w8(w, (uint8_t)(v >> 8));
}

static void w32(struct bw *w, uint32_t v)
{
    w16(w, (uint16_t)v);
    w16(w, (uint16_t)(v >> 16));
}

static void w64(struct bw *w, uint64_t v)
{
    w32(w, (uint32_t)v);
    w32(w, (uint32_t)(v >> 32));
}

static void wbytes(struct bw *w, const void *p, size_t n)
{
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

/* A reply header as the spec lays it out. */
static void w_rep_hdr(struct bw *w, uint16_t id, uint16_t cmd, uint32_t size,
                      uint32_t flags, uint32_t err)
{
    w16(w, id);
    w16(w, cmd);
    w32(w, size);
    w32(w, flags);
    w32(w, err);
}

/* ---- Header ----------------------------------------------------------------------- */

static void test_hdr_decode(void **state)
{
    struct bw w = {.n = 0};
    struct vdx_vu_hdr h;

    (void)state;
    w_rep_hdr(&w, 0xbeef, 9, 32, 0x10, 0);
    assert_int_equal(vdx_vu_hdr_decode(w.b, w.n, &h), 0);
    assert_int_equal(h.id, 0xbeef);
    assert_int_equal(h.cmd, 9);
    assert_int_equal(h.size, 32);
    assert_int_equal(h.flags, 0x10);
    assert_int_equal(h.error, 0);
    assert_int_equal(vdx_vu_hdr_decode(w.b, 15, &h), -ENODATA);
    w.n = 0;
    w_rep_hdr(&w, 1, 1, 15, 0, 0);
    assert_int_equal(vdx_vu_hdr_decode(w.b, w.n, &h), -EBADMSG);
    w.n = 0;
    w_rep_hdr(&w, 1, 1, 16, 0, 0);
    assert_int_equal(vdx_vu_hdr_decode(w.b, w.n, &h), 0);
}

/* ---- VERSION ---------------------------------------------------------------------- */

static void version_payload(struct bw *w, uint16_t major, uint16_t minor, const char *json,
                            size_t jlen)
{
    w->n = 0;
    w16(w, major);
    w16(w, minor);
    if (json != NULL) {
        wbytes(w, json, jlen);
    }
}

static int version_json(const char *json, struct vdx_vu_version_req *v)
{
    struct bw w;

    version_payload(&w, 0, 0, json, strlen(json) + 1);
    return vdx_vu_version_decode(w.b, w.n, v);
}

static void test_version_qemu(void **state)
{
    struct vdx_vu_version_req v;
    struct bw w;

    (void)state;
    assert_int_equal(VDX_VU_HDR_SIZE + VDX_VU_VERSION_SIZE + sizeof(qemu_caps), 214);
    version_payload(&w, 0, 0, qemu_caps, sizeof(qemu_caps));
    assert_int_equal(vdx_vu_version_decode(w.b, w.n, &v), 0);
    assert_int_equal(v.major, 0);
    assert_int_equal(v.minor, 0);
    assert_true(v.has_json);
    assert_int_equal(v.caps.max_msg_fds, 16);
    assert_int_equal(v.caps.max_data_xfer_size, 1048576);
    assert_int_equal(v.caps.max_dma_maps, 65535);
    assert_int_equal(v.caps.pgsizes, 4096);
    assert_true(v.caps.write_multiple);
    assert_false(v.caps.twin_socket);
}

static void test_version_defaults(void **state)
{
    struct vdx_vu_version_req v;
    struct bw w;

    (void)state;
    version_payload(&w, 0, 7, NULL, 0);
    assert_int_equal(vdx_vu_version_decode(w.b, w.n, &v), 0);
    assert_false(v.has_json);
    assert_int_equal(v.minor, 7);
    assert_int_equal(v.caps.max_msg_fds, VDX_VU_DEF_MAX_MSG_FDS);
    assert_int_equal(v.caps.max_data_xfer_size, VDX_VU_DEF_MAX_XFER);
    assert_int_equal(v.caps.max_dma_maps, VDX_VU_DEF_MAX_DMA_MAPS);
    assert_int_equal(v.caps.pgsizes, VDX_VU_DEF_PGSIZES);
    assert_int_equal(version_json("{}", &v), 0);
    assert_int_equal(v.caps.max_msg_fds, VDX_VU_DEF_MAX_MSG_FDS);
    /* Unknown keys, twin_socket, whitespace around. */
    assert_int_equal(
        version_json(
            " {\"capabilities\":{\"x\":[1,2],\"twin_socket\":{\"supported\":true}},"
            "\"y\":null} \n",
            &v),
        0);
    assert_true(v.caps.twin_socket);
}

static void test_version_hostile(void **state)
{
    static const char *const bad[] = {
        "",
        "[1]",
        "1",
        "{\"capabilities\":1}",
        "{\"capabilities\":{\"max_msg_fds\":-1}}",
        "{\"capabilities\":{\"max_msg_fds\":1.5}}",
        "{\"capabilities\":{\"max_msg_fds\":\"16\"}}",
        "{\"capabilities\":{\"max_msg_fds\":4294967296}}",
        "{\"capabilities\":{\"max_data_xfer_size\":0}}",
        "{\"capabilities\":{\"pgsizes\":0}}",
        "{\"capabilities\":{\"pgsizes\":18446744073709551616}}",
        "{\"capabilities\":{\"write_multiple\":1}}",
        "{\"capabilities\":{\"migration\":true}}",
        "{\"capabilities\":{\"twin_socket\":[]}}",
        "{} x",
        "{",
        "{\"capabilities\":{\"max_msg_fds\":16,}}",
        "{\"capabilities\":{\"x\":\"\xff\xfe\"}}", /* not UTF-8 */
        "{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
    };
    struct vdx_vu_version_req v;
    struct bw w;
    char big[VDX_VU_CAPS_JSON_MAX + 8];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(version_json(bad[i], &v), -EINVAL);
    }
    version_payload(&w, 1, 0, "{}", 3);
    assert_int_equal(vdx_vu_version_decode(w.b, w.n, &v), -ENOTSUP);
    version_payload(&w, 0, 0, "{}", 2); /* no NUL */
    assert_int_equal(vdx_vu_version_decode(w.b, w.n, &v), -EINVAL);
    version_payload(&w, 0, 0, "{}\0{}", 6); /* NUL inside */
    assert_int_equal(vdx_vu_version_decode(w.b, w.n, &v), -EINVAL);
    assert_int_equal(vdx_vu_version_decode(w.b, 3, &v), -EINVAL);
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    version_payload(&w, 0, 0, big, sizeof(big));
    assert_int_equal(vdx_vu_version_decode(w.b, w.n, &v), -E2BIG);
}

static void test_caps_negotiate(void **state)
{
    struct vdx_vu_caps client = {16, 1048576, 65535, 4096 | 65536, true, false};
    struct vdx_vu_caps server = {8, 4096, 100, 4096 | 2097152, false, false};
    struct vdx_vu_caps out;

    (void)state;
    assert_int_equal(vdx_vu_caps_negotiate(&client, &server, &out), 0);
    assert_int_equal(out.max_msg_fds, 8);
    assert_int_equal(out.max_data_xfer_size, 4096);
    assert_int_equal(out.max_dma_maps, 100);
    assert_int_equal(out.pgsizes, 4096);
    assert_false(out.write_multiple);
    client.pgsizes = 65536;
    assert_int_equal(vdx_vu_caps_negotiate(&client, &server, &out), -EINVAL);
}

/* ---- DMA_MAP / DMA_UNMAP --------------------------------------------------------------
 */

static void dma_map_payload(struct bw *w, uint32_t argsz, uint32_t flags, uint64_t offset,
                            uint64_t iova, uint64_t size)
{
    w->n = 0;
    w32(w, argsz);
    w32(w, flags);
    w64(w, offset);
    w64(w, iova);
    w64(w, size);
}

static void test_dma_map_decode(void **state)
{
    struct vdx_vu_dma_map m;
    struct bw w;

    (void)state;
    dma_map_payload(&w, 32, 3, 0x100000, 0x100000, 0x7ff00000);
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 1, &m), 0);
    assert_int_equal(m.argsz, 32);
    assert_int_equal(m.flags, 3);
    assert_int_equal(m.offset, 0x100000);
    assert_int_equal(m.iova, 0x100000);
    assert_int_equal(m.size, 0x7ff00000);
    dma_map_payload(&w, 32, 1, 0, 0xfffc0000, 0x40000); /* pc.bios: no fd, read-only */
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 0, &m), 0);
    /* Hostile. */
    assert_int_equal(vdx_vu_dma_map_decode(w.b, 31, 0, &m), -EINVAL);
    assert_int_equal(vdx_vu_dma_map_decode(w.b, 33, 0, &m), -EINVAL);
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 2, &m), -EINVAL);
    dma_map_payload(&w, 31, 3, 0, 0, 4096);
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 1, &m), -EINVAL);
    dma_map_payload(&w, 32, 0, 0, 0, 4096);
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 1, &m), -EINVAL);
    dma_map_payload(&w, 32, 7, 0, 0, 4096); /* libvfio-user's MMAP bit: not ours */
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 1, &m), -EINVAL);
    dma_map_payload(&w, 32, 3, 0, 0, 0);
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 1, &m), -EINVAL);
    dma_map_payload(&w, 32, 3, 0, UINT64_MAX - 4095, 4096); /* ends at 2^64 */
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 1, &m), -EINVAL);
    dma_map_payload(&w, 32, 3, UINT64_MAX - 10, 0, 4096);
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 1, &m), -EINVAL);
    dma_map_payload(&w, 32, 3, 4096, 0, 4096); /* an offset but no fd */
    assert_int_equal(vdx_vu_dma_map_decode(w.b, w.n, 0, &m), -EINVAL);
}

static void dma_unmap_payload(struct bw *w, uint32_t argsz, uint32_t flags, uint64_t iova,
                              uint64_t size)
{
    w->n = 0;
    w32(w, argsz);
    w32(w, flags);
    w64(w, iova);
    w64(w, size);
}

static void test_dma_unmap_decode(void **state)
{
    struct vdx_vu_dma_unmap u;
    struct bw w;

    (void)state;
    dma_unmap_payload(&w, 24, 0, 0xc0000, 0x10000);
    assert_int_equal(vdx_vu_dma_unmap_decode(w.b, w.n, &u), 0);
    assert_int_equal(u.argsz, 24);
    assert_int_equal(u.iova, 0xc0000);
    assert_int_equal(u.size, 0x10000);
    dma_unmap_payload(&w, 24, 2, 0, 0);
    assert_int_equal(vdx_vu_dma_unmap_decode(w.b, w.n, &u), 0);
    assert_int_equal(u.flags, 2);
    dma_unmap_payload(&w, 24, 2, 4096, 0);
    assert_int_equal(vdx_vu_dma_unmap_decode(w.b, w.n, &u), -EINVAL);
    dma_unmap_payload(&w, 24, 1, 0, 4096);
    assert_int_equal(vdx_vu_dma_unmap_decode(w.b, w.n, &u), -ENOTSUP);
    dma_unmap_payload(&w, 24, 4, 0, 4096);
    assert_int_equal(vdx_vu_dma_unmap_decode(w.b, w.n, &u), -EINVAL);
    dma_unmap_payload(&w, 23, 0, 0, 4096);
    assert_int_equal(vdx_vu_dma_unmap_decode(w.b, w.n, &u), -EINVAL);
    dma_unmap_payload(&w, 24, 0, 0, 0);
    assert_int_equal(vdx_vu_dma_unmap_decode(w.b, w.n, &u), -EINVAL);
    dma_unmap_payload(&w, 24, 0, UINT64_MAX, 2);
    assert_int_equal(vdx_vu_dma_unmap_decode(w.b, w.n, &u), -EINVAL);
    assert_int_equal(vdx_vu_dma_unmap_decode(w.b, 25, &u), -EINVAL);
}

/* ---- GET_INFO, GET_REGION_INFO, GET_IRQ_INFO ------------------------------------------
 */

static void test_info_decoders(void **state)
{
    struct vdx_vu_device_info di;
    struct vdx_vu_region_info ri;
    struct vdx_vu_irq_info ii;
    struct bw w = {.n = 0};

    (void)state;
    w32(&w, 16), w32(&w, 0), w32(&w, 0), w32(&w, 0);
    assert_int_equal(vdx_vu_device_info_decode(w.b, w.n, &di), 0);
    assert_int_equal(di.argsz, 16);
    assert_int_equal(vdx_vu_device_info_decode(w.b, 15, &di), -EINVAL);
    assert_int_equal(vdx_vu_device_info_decode(w.b, 17, &di), -EINVAL);
    w.b[0] = 15;
    assert_int_equal(vdx_vu_device_info_decode(w.b, w.n, &di), -EINVAL);

    w.n = 0;
    w32(&w, 32), w32(&w, 0), w32(&w, 7), w32(&w, 0), w64(&w, 0), w64(&w, 0);
    assert_int_equal(vdx_vu_region_info_decode(w.b, w.n, &ri), 0);
    assert_int_equal(ri.argsz, 32);
    assert_int_equal(ri.index, 7);
    assert_int_equal(vdx_vu_region_info_decode(w.b, 31, &ri), -EINVAL);
    assert_int_equal(vdx_vu_region_info_decode(w.b, 33, &ri), -EINVAL);
    w.b[0] = 31;
    assert_int_equal(vdx_vu_region_info_decode(w.b, w.n, &ri), -EINVAL);
    w.b[0] = 0xff, w.b[1] = 0xff; /* a big argsz is fine */
    assert_int_equal(vdx_vu_region_info_decode(w.b, w.n, &ri), 0);

    w.n = 0;
    w32(&w, 16), w32(&w, 0), w32(&w, 3), w32(&w, 0);
    assert_int_equal(vdx_vu_irq_info_decode(w.b, w.n, &ii), 0);
    assert_int_equal(ii.index, 3);
    assert_int_equal(vdx_vu_irq_info_decode(w.b, 12, &ii), -EINVAL);
    w.b[0] = 4;
    assert_int_equal(vdx_vu_irq_info_decode(w.b, w.n, &ii), -EINVAL);
}

/* ---- SET_IRQS ------------------------------------------------------------------------ */

static void set_irqs_payload(struct bw *w, uint32_t argsz, uint32_t flags, uint32_t index,
                             uint32_t start, uint32_t count)
{
    w->n = 0;
    w32(w, argsz);
    w32(w, flags);
    w32(w, index);
    w32(w, start);
    w32(w, count);
}

#define EVT_TRIG  (VDX_VU_IRQ_SET_DATA_EVENTFD | VDX_VU_IRQ_SET_ACTION_TRIGGER)
#define NONE_TRIG (VDX_VU_IRQ_SET_DATA_NONE | VDX_VU_IRQ_SET_ACTION_TRIGGER)

static void test_set_irqs_good(void **state)
{
    struct vdx_vu_irq_set_req r;
    struct bw w;

    (void)state;
    /* QEMU: one vector with its fd, always 36 bytes with argsz 20. */
    set_irqs_payload(&w, 20, EVT_TRIG, 2, 5, 1);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 1, &r), 0);
    assert_int_equal(r.index, 2);
    assert_int_equal(r.start, 5);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.data, VDX_VU_IRQ_SET_DATA_EVENTFD);
    assert_int_equal(r.action, VDX_VU_IRQ_SET_ACTION_TRIGGER);
    assert_int_equal(r.nfds, 1);
    /* A "no fd" run: de-assign. */
    set_irqs_payload(&w, 20, EVT_TRIG, 2, 0, 3);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 0, &r), 0);
    assert_int_equal(r.nfds, 0);
    /* Disable the index. */
    set_irqs_payload(&w, 20, NONE_TRIG, 2, 0, 0);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 0, &r), 0);
    /* INTx unmask with the resample eventfd; mask with no data. */
    set_irqs_payload(&w, 20, VDX_VU_IRQ_SET_DATA_EVENTFD | VDX_VU_IRQ_SET_ACTION_UNMASK, 0,
                     0, 1);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 1, &r), 0);
    assert_int_equal(r.action, VDX_VU_IRQ_SET_ACTION_UNMASK);
    set_irqs_payload(&w, 20, VDX_VU_IRQ_SET_DATA_NONE | VDX_VU_IRQ_SET_ACTION_MASK, 0, 0,
                     1);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 0, &r), 0);
    /* Booleans: argsz covers them. */
    set_irqs_payload(&w, 23, VDX_VU_IRQ_SET_DATA_BOOL | VDX_VU_IRQ_SET_ACTION_TRIGGER, 1, 0,
                     3);
    w8(&w, 1), w8(&w, 0), w8(&w, 1);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 0, &r), 0);
    assert_ptr_equal(r.bools, w.b + 20);
}

static void test_set_irqs_hostile(void **state)
{
    struct vdx_vu_irq_set_req r;
    struct bw w;

    (void)state;
    set_irqs_payload(&w, 20, EVT_TRIG, 2, 0, 1);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, 19, 1, &r), -EINVAL);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 2, &r), -EINVAL); /* fds != count */
    set_irqs_payload(&w, 20, EVT_TRIG, 2, 0, 3);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 2, &r), -EINVAL);
    set_irqs_payload(&w, 24, EVT_TRIG, 2, 0, 1); /* argsz != payload */
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 1, &r), -EINVAL);
    set_irqs_payload(&w, 20, EVT_TRIG, 2, 0, 1);
    w32(&w, 0);
    w.b[0] = 24; /* eventfd with trailing bytes */
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 1, &r), -EINVAL);
    set_irqs_payload(&w, 20, EVT_TRIG | VDX_VU_IRQ_SET_DATA_NONE, 2, 0, 1);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 1, &r), -EINVAL);
    set_irqs_payload(&w, 20, EVT_TRIG | VDX_VU_IRQ_SET_ACTION_MASK, 2, 0, 1);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 1, &r), -EINVAL);
    set_irqs_payload(&w, 20, VDX_VU_IRQ_SET_DATA_EVENTFD, 2, 0, 1); /* no action */
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 1, &r), -EINVAL);
    set_irqs_payload(&w, 20, EVT_TRIG | 0x40, 2, 0, 1);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 1, &r), -EINVAL);
    set_irqs_payload(&w, 20, EVT_TRIG, 2, 0, 0); /* count 0 only with NONE */
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 0, &r), -EINVAL);
    set_irqs_payload(&w, 20, NONE_TRIG, 2, 1, 0); /* disable from start 0 only */
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 0, &r), -EINVAL);
    set_irqs_payload(&w, 20, NONE_TRIG, 2, 0, 1); /* NONE carries no fd */
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 1, &r), -EINVAL);
    set_irqs_payload(&w, 20, NONE_TRIG, 2, UINT32_MAX, 2);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 0, &r), -EINVAL);
    set_irqs_payload(&w, 22, VDX_VU_IRQ_SET_DATA_BOOL | VDX_VU_IRQ_SET_ACTION_TRIGGER, 1, 0,
                     3);
    w8(&w, 1), w8(&w, 1);
    assert_int_equal(vdx_vu_set_irqs_decode(w.b, w.n, 0, &r), -EINVAL);
}

/* ---- REGION_READ / REGION_WRITE
 * ---------------------------------------------------------- */

static void rw_payload(struct bw *w, uint64_t offset, uint32_t region, uint32_t count)
{
    w->n = 0;
    w64(w, offset);
    w32(w, region);
    w32(w, count);
}

static void test_region_rw_decode(void **state)
{
    struct vdx_vu_region_rw_req rw;
    struct bw w;

    (void)state;
    rw_payload(&w, 0x30, 7, 4);
    assert_int_equal(vdx_vu_region_read_decode(w.b, w.n, 1048576, &rw), 0);
    assert_int_equal(rw.offset, 0x30);
    assert_int_equal(rw.region, 7);
    assert_int_equal(rw.count, 4);
    assert_null(rw.data);
    assert_int_equal(vdx_vu_region_read_decode(w.b, w.n, 3, &rw), -E2BIG);
    assert_int_equal(vdx_vu_region_read_decode(w.b, 15, 4096, &rw), -EINVAL);
    w32(&w, 0xfffff800);
    assert_int_equal(vdx_vu_region_read_decode(w.b, w.n, 4096, &rw), -EINVAL);
    assert_int_equal(vdx_vu_region_write_decode(w.b, w.n, 4096, &rw), 0);
    assert_ptr_equal(rw.data, w.b + 16);
    assert_int_equal(vdx_vu_region_write_decode(w.b, w.n - 1, 4096, &rw), -EINVAL);
    w8(&w, 0);
    assert_int_equal(vdx_vu_region_write_decode(w.b, w.n, 4096, &rw), -EINVAL);
    rw_payload(&w, 0, 0, 0);
    assert_int_equal(vdx_vu_region_read_decode(w.b, w.n, 4096, &rw), -EINVAL);
    rw_payload(&w, UINT64_MAX - 1, 0, 4);
    assert_int_equal(vdx_vu_region_read_decode(w.b, w.n, 4096, &rw), -EINVAL);
    rw_payload(&w, 0, 0, 5000);
    assert_int_equal(vdx_vu_region_write_decode(w.b, w.n, 4096, &rw), -E2BIG);
}

/* ---- Region description -------------------------------------------------------------- */

static void test_region_desc_check(void **state)
{
    struct vdx_vu_sparse_area areas[VDX_VU_MAX_SPARSE_AREAS + 1] = {{0x1000, 0x1000},
                                                                    {0x3000, 0x1000}};
    struct vdx_vu_region_desc d = {
        2,      VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE | VDX_VU_REGION_F_MMAP,
        0x4000, 0,
        2,      areas};
    struct vdx_vu_region_desc t;

    (void)state;
    assert_int_equal(vdx_vu_region_desc_check(&d, 4096), 0);
    assert_int_equal(vdx_vu_region_desc_check(&d, 3000), -EINVAL);
    t = d, t.flags |= VDX_VU_REGION_F_CAPS;
    assert_int_equal(vdx_vu_region_desc_check(&t, 4096), -EINVAL);
    t = d, t.flags &= ~VDX_VU_REGION_F_MMAP;
    assert_int_equal(vdx_vu_region_desc_check(&t, 4096), -EINVAL);
    t = d, t.offset = 0x800;
    assert_int_equal(vdx_vu_region_desc_check(&t, 4096), -EINVAL);
    t = d, t.nr_areas = VDX_VU_MAX_SPARSE_AREAS + 1;
    assert_int_equal(vdx_vu_region_desc_check(&t, 4096), -EINVAL);
    t = d, t.size = 0x3800;
    assert_int_equal(vdx_vu_region_desc_check(&t, 4096), -EINVAL);
    areas[1] = (struct vdx_vu_sparse_area){0x3000, 0x800};
    assert_int_equal(vdx_vu_region_desc_check(&d, 4096), -EINVAL);
    areas[1] = (struct vdx_vu_sparse_area){0x3000, 0};
    assert_int_equal(vdx_vu_region_desc_check(&d, 4096), -EINVAL);
    areas[1] = (struct vdx_vu_sparse_area){UINT64_MAX - 0xfff, 0x1000};
    assert_int_equal(vdx_vu_region_desc_check(&d, 4096), -EINVAL);
    t = d, t.nr_areas = 0, t.flags = VDX_VU_REGION_F_READ, t.size = 256;
    assert_int_equal(vdx_vu_region_desc_check(&t, 4096), 0);
}

/* ---- Encoders --------------------------------------------------------------------------
 */

static void test_enc_simple(void **state)
{
    uint8_t b[64];
    struct bw w = {.n = 0};

    (void)state;
    assert_int_equal(vdx_vu_enc_empty_rep(b, sizeof(b), 0x1234, VDX_VU_CMD_DMA_MAP), 16);
    w_rep_hdr(&w, 0x1234, 2, 16, 1, 0);
    assert_memory_equal(b, w.b, 16);
    assert_int_equal(vdx_vu_enc_empty_rep(b, 15, 1, 2), -EMSGSIZE);

    assert_int_equal(vdx_vu_enc_error_rep(b, sizeof(b), 7, 200, ENOTSUP), 16);
    w.n = 0;
    w_rep_hdr(&w, 7, 200, 16, 0x21, ENOTSUP);
    assert_memory_equal(b, w.b, 16);
    assert_int_equal(vdx_vu_enc_error_rep(b, sizeof(b), 7, 2, 0), -EINVAL);
    assert_int_equal(vdx_vu_enc_error_rep(b, 8, 7, 2, EIO), -EMSGSIZE);

    assert_int_equal(vdx_vu_enc_device_info_rep(b, sizeof(b), 3, 3, 9, 5), 32);
    w.n = 0;
    w_rep_hdr(&w, 3, 4, 32, 1, 0);
    w32(&w, 16), w32(&w, 3), w32(&w, 9), w32(&w, 5);
    assert_memory_equal(b, w.b, 32);
    assert_int_equal(vdx_vu_enc_device_info_rep(b, 31, 3, 3, 9, 5), -EMSGSIZE);

    assert_int_equal(vdx_vu_enc_irq_info_rep(b, sizeof(b), 4, 2, 1, 4), 32);
    w.n = 0;
    w_rep_hdr(&w, 4, 7, 32, 1, 0);
    w32(&w, 16), w32(&w, 1), w32(&w, 2), w32(&w, 4);
    assert_memory_equal(b, w.b, 32);

    {
        struct vdx_vu_dma_unmap u = {24, 2, 0, 0};

        assert_int_equal(vdx_vu_enc_dma_unmap_rep(b, sizeof(b), 5, &u), 40);
        w.n = 0;
        w_rep_hdr(&w, 5, 3, 40, 1, 0);
        w32(&w, 24), w32(&w, 2), w64(&w, 0), w64(&w, 0);
        assert_memory_equal(b, w.b, 40);
        assert_int_equal(vdx_vu_enc_dma_unmap_rep(b, 39, 5, &u), -EMSGSIZE);
    }

    assert_int_equal(vdx_vu_enc_region_write_rep(b, sizeof(b), 6, 0x30, 7, 4), 32);
    w.n = 0;
    w_rep_hdr(&w, 6, 10, 32, 1, 0);
    w64(&w, 0x30), w32(&w, 7), w32(&w, 4);
    assert_memory_equal(b, w.b, 32);

    assert_int_equal(vdx_vu_enc_region_read_rep(b, sizeof(b), 8, 0x30, 7, 4), 36);
    w.n = 0;
    w_rep_hdr(&w, 8, 9, 36, 1, 0);
    w64(&w, 0x30), w32(&w, 7), w32(&w, 4);
    assert_memory_equal(b, w.b, 32);
    assert_int_equal(vdx_vu_enc_region_read_rep(b, 35, 8, 0x30, 7, 4), -EMSGSIZE);
}

static void test_enc_version(void **state)
{
    static const char exp_json[] = "{\"capabilities\":{\"max_msg_fds\":16,"
                                   "\"max_data_xfer_size\":1048576}}";
    struct vdx_vu_caps caps = {16, 1048576, 65535, 4096, false, false};
    struct vdx_vu_version_req v;
    uint8_t b[256];
    struct bw w = {.n = 0};
    int n;

    (void)state;
    n = vdx_vu_enc_version_rep(b, sizeof(b), 0xfff0, 0, 0, &caps);
    assert_int_equal(n, 16 + 4 + sizeof(exp_json));
    assert_int_equal(n, 85); /* well under QEMU's 214-byte request */
    w_rep_hdr(&w, 0xfff0, 1, 85, 1, 0);
    w16(&w, 0), w16(&w, 0);
    wbytes(&w, exp_json, sizeof(exp_json));
    assert_memory_equal(b, w.b, 85);
    assert_int_equal(vdx_vu_enc_version_rep(b, 84, 1, 0, 0, &caps), -EMSGSIZE);
    /* Non-default limits are spelled out, and parse back. */
    caps.max_dma_maps = 8;
    caps.pgsizes = 4096 | 2097152;
    n = vdx_vu_enc_version_rep(b, sizeof(b), 1, 0, 0, &caps);
    assert_true(n > 85);
    assert_int_equal(vdx_vu_version_decode(b + 16, (size_t)n - 16, &v), 0);
    assert_int_equal(v.caps.max_dma_maps, 8);
    assert_int_equal(v.caps.pgsizes, 4096 | 2097152);
    assert_int_equal(v.caps.max_msg_fds, 16);
}

static void test_enc_region_info(void **state)
{
    static const struct vdx_vu_sparse_area areas[] = {{0x1000, 0x1000}, {0x3000, 0x1000}};
    struct vdx_vu_region_desc d = {2, 7, 0x4000, 0, 2, areas};
    struct vdx_vu_region_desc cfg = {7, 3, 256, 0, 0, NULL};
    uint8_t b[256];
    struct bw w = {.n = 0};
    bool full;

    (void)state;
    /* QEMU's first ask (argsz 32): the bare struct, argsz = what the full reply needs. */
    assert_int_equal(vdx_vu_enc_region_info_rep(b, sizeof(b), 9, 32, &d, &full), 48);
    assert_false(full);
    w_rep_hdr(&w, 9, 5, 48, 1, 0);
    w32(&w, 80), w32(&w, 7), w32(&w, 2), w32(&w, 0), w64(&w, 0x4000), w64(&w, 0);
    assert_memory_equal(b, w.b, 48);
    /* The second ask (argsz 80): CAPS, cap_offset 32, the sparse capability. */
    assert_int_equal(vdx_vu_enc_region_info_rep(b, sizeof(b), 10, 80, &d, &full), 96);
    assert_true(full);
    w.n = 0;
    w_rep_hdr(&w, 10, 5, 96, 1, 0);
    w32(&w, 80), w32(&w, 15), w32(&w, 2), w32(&w, 32), w64(&w, 0x4000), w64(&w, 0);
    w16(&w, 1), w16(&w, 1), w32(&w, 0), w32(&w, 2), w32(&w, 0);
    w64(&w, 0x1000), w64(&w, 0x1000), w64(&w, 0x3000), w64(&w, 0x1000);
    assert_memory_equal(b, w.b, 96);
    /* A bigger argsz gets the same reply. */
    assert_int_equal(vdx_vu_enc_region_info_rep(b, sizeof(b), 10, 4096, &d, &full), 96);
    assert_int_equal(vdx_vu_enc_region_info_rep(b, 95, 10, 80, &d, &full), -EMSGSIZE);
    assert_int_equal(vdx_vu_enc_region_info_rep(b, sizeof(b), 10, 31, &d, &full), -EINVAL);
    /* No capability: the 32-byte struct is the full reply. */
    assert_int_equal(vdx_vu_enc_region_info_rep(b, sizeof(b), 11, 32, &cfg, &full), 48);
    assert_true(full);
    w.n = 0;
    w_rep_hdr(&w, 11, 5, 48, 1, 0);
    w32(&w, 32), w32(&w, 3), w32(&w, 7), w32(&w, 0), w64(&w, 256), w64(&w, 0);
    assert_memory_equal(b, w.b, 48);
}

static void test_cmd_name(void **state)
{
    (void)state;
    assert_string_equal(vdx_vu_cmd_name(VDX_VU_CMD_VERSION), "VERSION");
    assert_string_equal(vdx_vu_cmd_name(VDX_VU_CMD_MIG_DATA_WRITE), "MIG_DATA_WRITE");
    assert_string_equal(vdx_vu_cmd_name(0), "unknown");
    assert_string_equal(vdx_vu_cmd_name(19), "unknown");
    assert_string_equal(vdx_vu_cmd_name(0xffff), "unknown");
}

/* ---- Fuzz ------------------------------------------------------------------------------
 */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static bool errno_known(int rc)
{
    return rc == 0 || rc == -EINVAL || rc == -E2BIG || rc == -ENOTSUP || rc == -ENODATA ||
           rc == -EBADMSG || rc == -ENOMEM;
}

/* Run every decoder on (b, n, nfds) and check what a success promises. */
static void decode_all(const uint8_t *b, size_t n, unsigned nfds)
{
    union {
        struct vdx_vu_hdr h;
        struct vdx_vu_version_req v;
        struct vdx_vu_dma_map m;
        struct vdx_vu_dma_unmap u;
        struct vdx_vu_device_info di;
        struct vdx_vu_region_info ri;
        struct vdx_vu_irq_info ii;
        struct vdx_vu_irq_set_req s;
        struct vdx_vu_region_rw_req rw;
    } o;
    int rc;

    assert_true(errno_known(vdx_vu_hdr_decode(b, n, &o.h)));
    assert_true(errno_known(vdx_vu_version_decode(b, n, &o.v)));
    rc = vdx_vu_dma_map_decode(b, n, nfds, &o.m);
    assert_true(errno_known(rc));
    assert_true(rc < 0 || (o.m.size != 0 && o.m.iova + o.m.size > o.m.iova));
    assert_true(errno_known(vdx_vu_dma_unmap_decode(b, n, &o.u)));
    assert_true(errno_known(vdx_vu_device_info_decode(b, n, &o.di)));
    assert_true(errno_known(vdx_vu_region_info_decode(b, n, &o.ri)));
    assert_true(errno_known(vdx_vu_irq_info_decode(b, n, &o.ii)));
    rc = vdx_vu_set_irqs_decode(b, n, nfds, &o.s);
    assert_true(errno_known(rc));
    if (rc == 0) {
        assert_true(o.s.bools == NULL || o.s.bools + o.s.count == b + n);
        assert_true(o.s.nfds == 0 || o.s.nfds == o.s.count);
    }
    rc = vdx_vu_region_read_decode(b, n, 4096, &o.rw);
    assert_true(errno_known(rc));
    rc = vdx_vu_region_write_decode(b, n, 4096, &o.rw);
    assert_true(errno_known(rc));
    assert_true(rc < 0 || (o.rw.count <= 4096 && o.rw.data + o.rw.count == b + n));
}

static void test_fuzz_random(void **state)
{
    static uint8_t b[512];

    (void)state;
    for (unsigned it = 0; it < 60000; it++) {
        size_t n = rng() % 64;
        uint64_t shape = rng();

        if ((shape & 7) == 0) {
            n = rng() % sizeof(b);
        }
        for (size_t i = 0; i < n; i++) {
            /* Mostly small values: they hit the interesting branches. */
            b[i] = (shape & 8) ? (uint8_t)rng()
                               : (uint8_t)(rng() % 4 == 0 ? rng() : rng() % 40);
        }
        decode_all(b, n, (unsigned)(rng() % 4));
    }
}

/* Flip bytes of valid messages: decoders must stay within their contract. */
static void test_fuzz_mutate(void **state)
{
    struct bw seeds[6];
    static uint8_t b[512];

    (void)state;
    dma_map_payload(&seeds[0], 32, 3, 0, 0x100000, 0x100000);
    dma_unmap_payload(&seeds[1], 24, 0, 0x100000, 0x100000);
    set_irqs_payload(&seeds[2], 20, EVT_TRIG, 2, 1, 1);
    set_irqs_payload(&seeds[3], 24,
                     VDX_VU_IRQ_SET_DATA_BOOL | VDX_VU_IRQ_SET_ACTION_TRIGGER, 2, 0, 4);
    w32(&seeds[3], 0x01000101);
    rw_payload(&seeds[4], 0x10, 0, 8);
    w64(&seeds[4], 0x1122334455667788ull);
    version_payload(&seeds[5], 0, 0, qemu_caps, sizeof(qemu_caps));
    for (unsigned it = 0; it < 30000; it++) {
        const struct bw *s = &seeds[rng() % 6];
        size_t n = s->n;
        unsigned flips = 1 + (unsigned)(rng() % 3);

        memcpy(b, s->b, n);
        for (unsigned f = 0; f < flips; f++) {
            b[rng() % n] = (uint8_t)rng();
        }
        if (rng() % 8 == 0) {
            n = rng() % (n + 1);
        }
        decode_all(b, n, (unsigned)(rng() % 3));
    }
}

/* The capabilities parser against mutated QEMU JSON. */
static void test_fuzz_caps(void **state)
{
    static const char alphabet[] = "{}[]\":, 0123456789-.eEtrufalsn\\x";
    char json[sizeof(qemu_caps)];
    struct vdx_vu_caps caps;

    (void)state;
    for (unsigned it = 0; it < 8000; it++) {
        size_t n = sizeof(qemu_caps) - 1;
        int rc;

        memcpy(json, qemu_caps, sizeof(json));
        for (unsigned f = 0; f < 1 + rng() % 4; f++) {
            json[rng() % n] = alphabet[rng() % (sizeof(alphabet) - 1)];
        }
        if (rng() % 4 == 0) {
            n = rng() % (n + 1);
        }
        memset(&caps, 0, sizeof(caps));
        caps.max_data_xfer_size = 1;
        caps.pgsizes = 4096;
        rc = vdx_vu_caps_parse(json, n, &caps);
        assert_true(rc == 0 || rc == -EINVAL);
        assert_true(rc < 0 || (caps.max_data_xfer_size != 0 && caps.pgsizes != 0));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_decode),       cmocka_unit_test(test_version_qemu),
        cmocka_unit_test(test_version_defaults), cmocka_unit_test(test_version_hostile),
        cmocka_unit_test(test_caps_negotiate),   cmocka_unit_test(test_dma_map_decode),
        cmocka_unit_test(test_dma_unmap_decode), cmocka_unit_test(test_info_decoders),
        cmocka_unit_test(test_set_irqs_good),    cmocka_unit_test(test_set_irqs_hostile),
        cmocka_unit_test(test_region_rw_decode), cmocka_unit_test(test_region_desc_check),
        cmocka_unit_test(test_enc_simple),       cmocka_unit_test(test_enc_version),
        cmocka_unit_test(test_enc_region_info),  cmocka_unit_test(test_cmd_name),
        cmocka_unit_test(test_fuzz_random),      cmocka_unit_test(test_fuzz_mutate),
        cmocka_unit_test(test_fuzz_caps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
