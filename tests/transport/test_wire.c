/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the unix transport wire format (src/transport/wire.h): every
 * encoder round-trips through its decoder, and every decoder refuses hostile
 * frames with the documented errno.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/wire.h"

static uint8_t buf[VDX_WIRE_MAX_FRAME + 64];

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* A raw header, bypassing the encoders' checks. */
static void raw_hdr(uint8_t *p, uint32_t magic, uint16_t op, uint16_t flags, uint32_t len,
                    uint32_t seq)
{
    put32(p, magic);
    put16(p + 4, op);
    put16(p + 6, flags);
    put32(p + 8, len);
    put32(p + 12, seq);
}

static int req_decode(size_t len, unsigned nfds)
{
    struct vdx_wire_req req;

    return vdx_wire_req_decode(buf, len, nfds, &req);
}

static int rep_decode(size_t len, unsigned nfds)
{
    struct vdx_wire_rep rep;

    return vdx_wire_rep_decode(buf, len, nfds, &rep);
}

/* ---- Layout ---------------------------------------------------------------- */

static void test_header_bytes_are_little_endian(void **state)
{
    static const uint8_t want[16] = {'V',  'D',  'X',  '1',  0x03, 0x00, 0x00, 0x00,
                                     0x10, 0x00, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12};
    int n = vdx_wire_enc_call_req(buf, sizeof(buf), 0x12345678u, 0, NULL, 0, 0);

    (void)state;
    assert_int_equal(n, 32);
    assert_memory_equal(buf, want, sizeof(want));
}

static void test_call_req_bytes(void **state)
{
    uint64_t in[2] = {0x0102030405060708ull, 0xffull};
    int n = vdx_wire_enc_call_req(buf, sizeof(buf), 1, DEXT_SEL_CONFIG_READ, in, 2, 1);

    (void)state;
    assert_int_equal(n, 16 + 16 + 16);
    assert_int_equal(buf[16], DEXT_SEL_CONFIG_READ); /* sel */
    assert_int_equal(buf[20], 2);                    /* nin */
    assert_int_equal(buf[24], 1);                    /* nout */
    assert_int_equal(buf[32], 0x08);                 /* in[0], low byte first */
    assert_int_equal(buf[39], 0x01);
    assert_int_equal(buf[40], 0xff);
}

/* ---- Requests: round trips --------------------------------------------------- */

static void test_req_empty_roundtrip(void **state)
{
    static const uint16_t ops[] = {VDX_OP_LIST, VDX_OP_NOTIFY_ATTACH, VDX_OP_STATUS};
    struct vdx_wire_req req;

    (void)state;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        int n = vdx_wire_enc_empty_req(buf, sizeof(buf), ops[i], 7);

        assert_int_equal(n, VDX_WIRE_HDR_SIZE);
        assert_int_equal(vdx_wire_req_decode(buf, (size_t)n, 0, &req), 0);
        assert_int_equal(req.hdr.op, ops[i]);
        assert_int_equal(req.hdr.seq, 7);
        assert_int_equal(req.hdr.len, 0);
    }
    assert_int_equal(vdx_wire_enc_empty_req(buf, sizeof(buf), VDX_OP_CALL, 1), -EINVAL);
}

static void test_req_open_roundtrip(void **state)
{
    struct vdx_wire_req req;
    int n = vdx_wire_enc_open_req(buf, sizeof(buf), 9, 42);

    (void)state;
    assert_int_equal(n, VDX_WIRE_HDR_SIZE + VDX_WIRE_OPEN_REQ_SIZE);
    assert_int_equal(vdx_wire_req_decode(buf, (size_t)n, 0, &req), 0);
    assert_int_equal(req.hdr.op, VDX_OP_OPEN);
    assert_int_equal(req.u.open.index, 42);
}

static void test_req_call_roundtrip(void **state)
{
    uint64_t in[DEXT_MAX_SCALARS];
    struct vdx_wire_req req;

    (void)state;
    for (uint32_t nin = 0; nin <= DEXT_MAX_SCALARS; nin++) {
        int n;

        for (uint32_t i = 0; i < nin; i++) {
            in[i] = 0x1111111111111111ull * (i + 1) + nin;
        }
        n = vdx_wire_enc_call_req(buf, sizeof(buf), nin, DEXT_SEL_MMIO_WRITE, in, nin, 8);
        assert_int_equal(n, VDX_WIRE_HDR_SIZE + VDX_WIRE_CALL_REQ_SIZE + 8 * nin);
        assert_int_equal(vdx_wire_req_decode(buf, (size_t)n, 0, &req), 0);
        assert_int_equal(req.u.call.sel, DEXT_SEL_MMIO_WRITE);
        assert_int_equal(req.u.call.nin, nin);
        assert_int_equal(req.u.call.nout, 8);
        assert_memory_equal(req.u.call.in, in, nin * sizeof(uint64_t));
    }
}

static void test_req_dma_and_mem_roundtrip(void **state)
{
    struct vdx_wire_req req;
    int n = vdx_wire_enc_dma_req(buf, sizeof(buf), 3, 0xfeed0000ull, 4096, 1ull << 40);

    (void)state;
    assert_int_equal(vdx_wire_req_decode(buf, (size_t)n, 1, &req), 0);
    assert_int_equal(req.nfds, 1);
    assert_true(req.u.dma.key == 0xfeed0000ull);
    assert_true(req.u.dma.fd_offset == 4096);
    assert_true(req.u.dma.size == 1ull << 40);

    n = vdx_wire_enc_mem_req(buf, sizeof(buf), 4, DEXT_MEM_IRQ_STATE);
    assert_int_equal(vdx_wire_req_decode(buf, (size_t)n, 0, &req), 0);
    assert_int_equal(req.u.mem.type, DEXT_MEM_IRQ_STATE);
}

/* ---- Requests: hostile -------------------------------------------------------- */

static void test_req_short_header(void **state)
{
    (void)state;
    vdx_wire_enc_empty_req(buf, sizeof(buf), VDX_OP_LIST, 1);
    for (size_t len = 0; len < VDX_WIRE_HDR_SIZE; len++) {
        assert_int_equal(req_decode(len, 0), -ENODATA);
    }
}

static void test_req_bad_magic(void **state)
{
    (void)state;
    raw_hdr(buf, 0xdeadbeef, VDX_OP_LIST, 0, 0, 1);
    assert_int_equal(req_decode(VDX_WIRE_HDR_SIZE, 0), -EPROTO);
    raw_hdr(buf, 0x32584456u /* "VDX2" */, VDX_OP_LIST, 0, 0, 1);
    assert_int_equal(req_decode(VDX_WIRE_HDR_SIZE, 0), -EPROTO);
}

static void test_req_bad_op(void **state)
{
    (void)state;
    raw_hdr(buf, VDX_WIRE_MAGIC, 0, 0, 0, 1);
    assert_int_equal(req_decode(VDX_WIRE_HDR_SIZE, 0), -EPROTO);
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_WIRE_OP_LAST + 1, 0, 0, 1);
    assert_int_equal(req_decode(VDX_WIRE_HDR_SIZE, 0), -EPROTO);
    raw_hdr(buf, VDX_WIRE_MAGIC, 0xffff, 0, 0, 1);
    assert_int_equal(req_decode(VDX_WIRE_HDR_SIZE, 0), -EPROTO);
}

static void test_req_bad_flags(void **state)
{
    (void)state;
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_OP_LIST, 0x8000, 0, 1);
    assert_int_equal(req_decode(VDX_WIRE_HDR_SIZE, 0), -EPROTO);
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_OP_LIST, VDX_WIRE_F_REPLY, 0, 1);
    assert_int_equal(req_decode(VDX_WIRE_HDR_SIZE, 0), -EPROTO);
}

static void test_req_length_beyond_max(void **state)
{
    struct vdx_wire_hdr hdr;

    (void)state;
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_OP_CALL, 0, VDX_WIRE_MAX_PAYLOAD + 1, 1);
    assert_int_equal(vdx_wire_hdr_decode(buf, VDX_WIRE_HDR_SIZE, &hdr), -EMSGSIZE);
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_OP_CALL, 0, 0xffffffffu, 1);
    assert_int_equal(vdx_wire_hdr_decode(buf, VDX_WIRE_HDR_SIZE, &hdr), -EMSGSIZE);
    /* Within a frame but beyond the largest request of the op. */
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_OP_CALL, 0, 16 + 8 * 9, 1);
    memset(buf + 16, 0, 16 + 8 * 9);
    assert_int_equal(req_decode(16 + 16 + 8 * 9, 0), -EMSGSIZE);
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_OP_LIST, 0, 4, 1);
    assert_int_equal(req_decode(16 + 4, 0), -EMSGSIZE);
}

static void test_req_buffer_not_one_frame(void **state)
{
    int n = vdx_wire_enc_open_req(buf, sizeof(buf), 1, 0);

    (void)state;
    assert_int_equal(req_decode((size_t)n - 1, 0), -EBADMSG); /* truncated payload */
    assert_int_equal(req_decode((size_t)n + 1, 0), -EBADMSG); /* trailing byte */
}

static void test_req_length_mismatching_op(void **state)
{
    uint64_t in[3] = {1, 2, 3};
    int n;

    (void)state;
    /* OPEN with a 4-byte payload. */
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_OP_OPEN, 0, 4, 1);
    assert_int_equal(req_decode(16 + 4, 0), -EBADMSG);
    /* CALL saying nin = 2 but carrying 3 inputs. */
    n = vdx_wire_enc_call_req(buf, sizeof(buf), 1, 0, in, 3, 0);
    put32(buf + 16 + 4, 2);
    assert_int_equal(req_decode((size_t)n, 0), -EBADMSG);
    /* CALL shorter than its fixed part. */
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_OP_CALL, 0, 8, 1);
    assert_int_equal(req_decode(16 + 8, 0), -EBADMSG);
    /* REGISTER_DMA with 16 bytes. */
    raw_hdr(buf, VDX_WIRE_MAGIC, VDX_OP_REGISTER_DMA, 0, 16, 1);
    assert_int_equal(req_decode(16 + 16, 1), -EBADMSG);
    /* COPY_MEMORY with a non-zero reserved field. */
    n = vdx_wire_enc_mem_req(buf, sizeof(buf), 1, 1);
    buf[16 + 4] = 1;
    assert_int_equal(req_decode((size_t)n, 0), -EBADMSG);
    /* CALL with a non-zero reserved field. */
    n = vdx_wire_enc_call_req(buf, sizeof(buf), 1, 0, NULL, 0, 0);
    buf[16 + 12] = 1;
    assert_int_equal(req_decode((size_t)n, 0), -EBADMSG);
}

static void test_req_counts_beyond_max(void **state)
{
    int n;

    (void)state;
    /* nin = 200 in a payload of legal size. */
    n = vdx_wire_enc_call_req(buf, sizeof(buf), 1, 0, NULL, 0, 0);
    put32(buf + 16 + 4, 200);
    assert_int_equal(req_decode((size_t)n, 0), -E2BIG);
    /* nout room = 9. */
    n = vdx_wire_enc_call_req(buf, sizeof(buf), 1, 0, NULL, 0, 0);
    put32(buf + 16 + 8, DEXT_MAX_SCALARS + 1);
    assert_int_equal(req_decode((size_t)n, 0), -E2BIG);
    /* nin = 0xffffffff: no overflow into a "matching" size. */
    n = vdx_wire_enc_call_req(buf, sizeof(buf), 1, 0, NULL, 0, 0);
    put32(buf + 16 + 4, 0xffffffffu);
    assert_int_equal(req_decode((size_t)n, 0), -E2BIG);
}

static void test_req_fd_counts(void **state)
{
    int n;

    (void)state;
    n = vdx_wire_enc_dma_req(buf, sizeof(buf), 1, 0, 0, 4096);
    assert_int_equal(req_decode((size_t)n, 0), -EBADF); /* missing */
    assert_int_equal(req_decode((size_t)n, 2), -EBADF); /* extra */
    assert_int_equal(req_decode((size_t)n, 1), 0);

    n = vdx_wire_enc_empty_req(buf, sizeof(buf), VDX_OP_NOTIFY_ATTACH, 1);
    assert_int_equal(req_decode((size_t)n, 0), 0); /* detach */
    assert_int_equal(req_decode((size_t)n, 1), 0); /* attach */
    assert_int_equal(req_decode((size_t)n, 3), -EBADF);

    n = vdx_wire_enc_call_req(buf, sizeof(buf), 1, 0, NULL, 0, 0);
    assert_int_equal(req_decode((size_t)n, 1), -EBADF);
    n = vdx_wire_enc_empty_req(buf, sizeof(buf), VDX_OP_LIST, 1);
    assert_int_equal(req_decode((size_t)n, 1), -EBADF);
    n = vdx_wire_enc_open_req(buf, sizeof(buf), 1, 0);
    assert_int_equal(req_decode((size_t)n, 1), -EBADF);
    n = vdx_wire_enc_mem_req(buf, sizeof(buf), 1, 0);
    assert_int_equal(req_decode((size_t)n, 1), -EBADF);
}

static void test_req_max_payload(void **state)
{
    (void)state;
    assert_int_equal(vdx_wire_req_max_payload(VDX_OP_LIST), 0);
    assert_int_equal(vdx_wire_req_max_payload(VDX_OP_CALL), 80);
    assert_int_equal(vdx_wire_req_max_payload(VDX_OP_REGISTER_DMA), 24);
    assert_int_equal(vdx_wire_req_max_payload(0), 0);
    assert_int_equal(vdx_wire_req_max_payload(100), 0);
}

/* ---- Replies: round trips ------------------------------------------------------ */

static void test_rep_status_roundtrip(void **state)
{
    struct vdx_wire_rep rep;
    int n = vdx_wire_enc_status_rep(buf, sizeof(buf), VDX_OP_OPEN, 5, DEXT_E_NOT_FOUND);

    (void)state;
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 0, &rep), 0);
    assert_int_equal(rep.hdr.op, VDX_OP_OPEN);
    assert_int_equal(rep.hdr.seq, 5);
    assert_int_equal(rep.status, DEXT_E_NOT_FOUND);
    n = vdx_wire_enc_status_rep(buf, sizeof(buf), VDX_OP_NOTIFY_ATTACH, 6, DEXT_OK);
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 0, &rep), 0);
    assert_int_equal(vdx_wire_enc_status_rep(buf, sizeof(buf), VDX_OP_CALL, 1, 0), -EINVAL);
}

static void test_rep_call_roundtrip(void **state)
{
    uint64_t out[DEXT_MAX_SCALARS] = {1, 2, 3, 4, 5, 6, 7, UINT64_MAX};
    struct vdx_wire_rep rep;
    int n = vdx_wire_enc_call_rep(buf, sizeof(buf), 77, DEXT_OK, out, DEXT_MAX_SCALARS);

    (void)state;
    assert_int_equal(n, VDX_WIRE_MAX_UC_REP_FRAME);
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 0, &rep), 0);
    assert_int_equal(rep.u.call.nout, DEXT_MAX_SCALARS);
    assert_memory_equal(rep.u.call.out, out, sizeof(out));
    n = vdx_wire_enc_call_rep(buf, sizeof(buf), 78, DEXT_E_BAD_ARGUMENT, NULL, 0);
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 0, &rep), 0);
    assert_int_equal(rep.status, DEXT_E_BAD_ARGUMENT);
    assert_int_equal(rep.u.call.nout, 0);
}

static void test_rep_dma_mem_roundtrip(void **state)
{
    struct vdx_wire_rep rep;
    int n = vdx_wire_enc_dma_rep(buf, sizeof(buf), 1, DEXT_OK, 0x100000, 0x2000);

    (void)state;
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 0, &rep), 0);
    assert_true(rep.u.dma.bus == 0x100000 && rep.u.dma.bus_len == 0x2000);

    n = vdx_wire_enc_mem_rep(buf, sizeof(buf), 2, DEXT_OK, VDX_WIRE_MEM_F_WC, 0, 1 << 20);
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 1, &rep), 0);
    assert_int_equal(rep.u.mem.flags, VDX_WIRE_MEM_F_WC);
    assert_true(rep.u.mem.size == 1 << 20);
    n = vdx_wire_enc_mem_rep(buf, sizeof(buf), 3, DEXT_E_UNSUPPORTED, 0, 0, 0);
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 0, &rep), 0);
    assert_int_equal(rep.status, DEXT_E_UNSUPPORTED);
    assert_int_equal(vdx_wire_enc_mem_rep(buf, sizeof(buf), 3, 0, 0x10, 0, 1), -EINVAL);
}

static void test_rep_list_roundtrip(void **state)
{
    struct vdx_wire_dev_info devs[2] = {
        {.domain = 1,
         .bus = 2,
         .slot = 3,
         .fn = 4,
         .claimed = true,
         .vendor = 0x7e57,
         .device = 0xde01,
         .class_code = 0xff0000},
        {.domain = 0,
         .bus = 0xff,
         .slot = 0x1f,
         .fn = 7,
         .claimed = false,
         .vendor = 1,
         .device = 2,
         .class_code = 0x010802},
    };
    struct vdx_wire_dev_info got;
    struct vdx_wire_rep rep;
    int n = vdx_wire_enc_list_rep(buf, sizeof(buf), 1, DEXT_OK, devs, 2);

    (void)state;
    assert_int_equal(n, 16 + 8 + 2 * 16);
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 0, &rep), 0);
    assert_int_equal(rep.u.list.count, 2);
    for (uint32_t i = 0; i < 2; i++) {
        vdx_wire_list_entry(&rep, i, &got);
        assert_int_equal(got.domain, devs[i].domain);
        assert_int_equal(got.bus, devs[i].bus);
        assert_int_equal(got.slot, devs[i].slot);
        assert_int_equal(got.fn, devs[i].fn);
        assert_int_equal(got.claimed, devs[i].claimed);
        assert_int_equal(got.vendor, devs[i].vendor);
        assert_int_equal(got.device, devs[i].device);
        assert_int_equal(got.class_code, devs[i].class_code);
    }
}

static void test_rep_list_max_fits_a_frame(void **state)
{
    static struct vdx_wire_dev_info devs[VDX_WIRE_LIST_MAX + 1];
    struct vdx_wire_rep rep;
    int n =
        vdx_wire_enc_list_rep(buf, VDX_WIRE_MAX_FRAME, 1, DEXT_OK, devs, VDX_WIRE_LIST_MAX);

    (void)state;
    assert_true(n > 0 && n <= (int)VDX_WIRE_MAX_FRAME);
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 0, &rep), 0);
    assert_int_equal(
        vdx_wire_enc_list_rep(buf, sizeof(buf), 1, DEXT_OK, devs, VDX_WIRE_LIST_MAX + 1),
        -E2BIG);
}

static void test_rep_json_roundtrip(void **state)
{
    static const char text[] = "{\"devices\":[]}";
    static char big[VDX_WIRE_JSON_CHUNK_MAX];
    struct vdx_wire_rep rep;
    int n = vdx_wire_enc_json_rep(buf, sizeof(buf), 1, DEXT_OK, VDX_WIRE_F_MORE, text,
                                  sizeof(text) - 1);

    (void)state;
    assert_int_equal(vdx_wire_rep_decode(buf, (size_t)n, 0, &rep), 0);
    assert_true(rep.hdr.flags & VDX_WIRE_F_MORE);
    assert_int_equal(rep.u.json.len, sizeof(text) - 1);
    assert_memory_equal(rep.u.json.text, text, sizeof(text) - 1);
    /* A whole chunk of the largest size fits a frame. */
    memset(big, 'x', sizeof(big));
    n = vdx_wire_enc_json_rep(buf, sizeof(buf), 1, DEXT_OK, 0, big, sizeof(big));
    assert_int_equal(n, VDX_WIRE_MAX_FRAME);
    assert_int_equal(vdx_wire_enc_json_rep(buf, sizeof(buf), 1, DEXT_OK, 0, "x",
                                           VDX_WIRE_JSON_CHUNK_MAX + 1),
                     -EMSGSIZE);
    assert_int_equal(vdx_wire_enc_json_rep(buf, sizeof(buf), 1, DEXT_OK, 0x4, "x", 1),
                     -EINVAL);
}

/* ---- Replies: hostile ------------------------------------------------------------ */

static void test_rep_direction_and_flags(void **state)
{
    int n;

    (void)state;
    /* A request frame is not a reply. */
    n = vdx_wire_enc_empty_req(buf, sizeof(buf), VDX_OP_LIST, 1);
    assert_int_equal(rep_decode((size_t)n, 0), -EPROTO);
    /* MORE on anything but STATUS. */
    n = vdx_wire_enc_call_rep(buf, sizeof(buf), 1, DEXT_OK, NULL, 0);
    put16(buf + 6, VDX_WIRE_F_REPLY | VDX_WIRE_F_MORE);
    assert_int_equal(rep_decode((size_t)n, 0), -EPROTO);
    /* Short header, bad magic. */
    assert_int_equal(rep_decode(3, 0), -ENODATA);
    n = vdx_wire_enc_call_rep(buf, sizeof(buf), 1, DEXT_OK, NULL, 0);
    buf[0] ^= 0xff;
    assert_int_equal(rep_decode((size_t)n, 0), -EPROTO);
}

static void test_rep_call_hostile(void **state)
{
    uint64_t out[2] = {1, 2};
    int n;

    (void)state;
    n = vdx_wire_enc_call_rep(buf, sizeof(buf), 1, DEXT_OK, out, 2);
    put32(buf + 16 + 4, 3); /* says 3, carries 2 */
    assert_int_equal(rep_decode((size_t)n, 0), -EBADMSG);
    put32(buf + 16 + 4, 100);
    assert_int_equal(rep_decode((size_t)n, 0), -E2BIG);
    n = vdx_wire_enc_call_rep(buf, sizeof(buf), 1, DEXT_OK, out, 2);
    assert_int_equal(rep_decode((size_t)n, 1), -EBADF);
}

static void test_rep_mem_hostile(void **state)
{
    int n;

    (void)state;
    n = vdx_wire_enc_mem_rep(buf, sizeof(buf), 1, DEXT_OK, 0, 0, 4096);
    assert_int_equal(rep_decode((size_t)n, 0), -EBADF); /* OK without its fd */
    assert_int_equal(rep_decode((size_t)n, 2), -EBADF);
    n = vdx_wire_enc_mem_rep(buf, sizeof(buf), 1, DEXT_E_NOT_READY, 0, 0, 0);
    assert_int_equal(rep_decode((size_t)n, 1), -EBADF); /* an fd with an error */
    n = vdx_wire_enc_mem_rep(buf, sizeof(buf), 1, DEXT_OK, 0, 0, 0);
    assert_int_equal(rep_decode((size_t)n, 1), -EBADMSG); /* size 0 */
    n = vdx_wire_enc_mem_rep(buf, sizeof(buf), 1, DEXT_OK, 0, UINT64_MAX - 10, 4096);
    assert_int_equal(rep_decode((size_t)n, 1), -EBADMSG); /* offset + size wraps */
    n = vdx_wire_enc_mem_rep(buf, sizeof(buf), 1, DEXT_OK, 0, 0, 4096);
    put32(buf + 16 + 4, 0x80); /* unknown flag */
    assert_int_equal(rep_decode((size_t)n, 1), -EBADMSG);
}

static void test_rep_list_hostile(void **state)
{
    struct vdx_wire_dev_info dev = {0};
    int n;

    (void)state;
    n = vdx_wire_enc_list_rep(buf, sizeof(buf), 1, DEXT_OK, &dev, 1);
    put32(buf + 16 + 4, 2); /* count beyond the payload */
    assert_int_equal(rep_decode((size_t)n, 0), -EBADMSG);
    put32(buf + 16 + 4, VDX_WIRE_LIST_MAX + 1);
    assert_int_equal(rep_decode((size_t)n, 0), -E2BIG);
    n = vdx_wire_enc_list_rep(buf, sizeof(buf), 1, DEXT_OK, &dev, 1);
    buf[16 + 8 + 0x0a] = 1; /* reserved */
    assert_int_equal(rep_decode((size_t)n, 0), -EBADMSG);
    n = vdx_wire_enc_list_rep(buf, sizeof(buf), 1, DEXT_OK, &dev, 1);
    buf[16 + 8 + 0x05] = 0x80; /* unknown device flag */
    assert_int_equal(rep_decode((size_t)n, 0), -EBADMSG);
    n = vdx_wire_enc_list_rep(buf, sizeof(buf), 1, DEXT_E_IO_ERROR, &dev, 1);
    assert_int_equal(rep_decode((size_t)n, 0), -EBADMSG); /* entries with an error */
}

static void test_rep_json_hostile(void **state)
{
    int n;

    (void)state;
    n = vdx_wire_enc_json_rep(buf, sizeof(buf), 1, DEXT_OK, 0, "ab", 2);
    buf[16 + 8 + 1] = '\0';
    assert_int_equal(rep_decode((size_t)n, 0), -EBADMSG);
    n = vdx_wire_enc_json_rep(buf, sizeof(buf), 1, DEXT_OK, 0, "ab", 2);
    put32(buf + 16 + 4, 0xffffffffu); /* length beyond the payload */
    assert_int_equal(rep_decode((size_t)n, 0), -EBADMSG);
    n = vdx_wire_enc_json_rep(buf, sizeof(buf), 1, DEXT_E_NO_SPACE, 0, "ab", 2);
    assert_int_equal(rep_decode((size_t)n, 0), -EBADMSG); /* text with an error */
    n = vdx_wire_enc_json_rep(buf, sizeof(buf), 1, DEXT_E_NO_SPACE, VDX_WIRE_F_MORE, NULL,
                              0);
    assert_int_equal(rep_decode((size_t)n, 0), -EBADMSG); /* MORE with an error */
}

/* ---- Encoders: room --------------------------------------------------------------- */

static void test_encoders_check_room(void **state)
{
    uint64_t in[DEXT_MAX_SCALARS + 1] = {0};

    (void)state;
    assert_int_equal(vdx_wire_enc_empty_req(buf, 15, VDX_OP_LIST, 1), -EMSGSIZE);
    assert_int_equal(vdx_wire_enc_open_req(buf, 23, 1, 0), -EMSGSIZE);
    assert_int_equal(vdx_wire_enc_call_req(buf, 16 + 16 + 7, 1, 0, in, 1, 0), -EMSGSIZE);
    assert_int_equal(vdx_wire_enc_call_req(buf, sizeof(buf), 1, 0, in, 9, 0), -E2BIG);
    assert_int_equal(vdx_wire_enc_call_req(buf, sizeof(buf), 1, 0, in, 0, 9), -E2BIG);
    assert_int_equal(vdx_wire_enc_call_rep(buf, sizeof(buf), 1, 0, in, 9), -E2BIG);
    assert_int_equal(vdx_wire_enc_dma_req(buf, 39, 1, 0, 0, 0), -EMSGSIZE);
    assert_int_equal(vdx_wire_enc_mem_rep(buf, 39, 1, 0, 0, 0, 1), -EMSGSIZE);
}

/* ---- Every truncation and random bytes: no crash, never success ---------------- */

static void check_truncations(size_t n, unsigned nfds, bool is_req)
{
    struct vdx_wire_req req;
    struct vdx_wire_rep rep;

    for (size_t len = 0; len < n; len++) {
        uint8_t *p = malloc(len ? len : 1); /* exact size: ASan sees overreads */

        assert_non_null(p);
        memcpy(p, buf, len);
        if (is_req) {
            assert_true(vdx_wire_req_decode(p, len, nfds, &req) < 0);
        } else {
            assert_true(vdx_wire_rep_decode(p, len, nfds, &rep) < 0);
        }
        free(p);
    }
}

static void test_truncated_frames_refused(void **state)
{
    uint64_t v[4] = {1, 2, 3, 4};
    int n;

    (void)state;
    n = vdx_wire_enc_call_req(buf, sizeof(buf), 1, 16, v, 4, 0);
    check_truncations((size_t)n, 0, true);
    n = vdx_wire_enc_dma_req(buf, sizeof(buf), 1, 1, 2, 3);
    check_truncations((size_t)n, 1, true);
    n = vdx_wire_enc_call_rep(buf, sizeof(buf), 1, DEXT_OK, v, 4);
    check_truncations((size_t)n, 0, false);
    n = vdx_wire_enc_mem_rep(buf, sizeof(buf), 1, DEXT_OK, 0, 0, 4096);
    check_truncations((size_t)n, 1, false);
}

static void test_random_bytes_never_crash(void **state)
{
    struct vdx_wire_req req;
    struct vdx_wire_rep rep;
    uint32_t x = 0x12345678u;

    (void)state;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 16 + (iter % 100);
        uint8_t *p = malloc(len);

        assert_non_null(p);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            p[i] = (uint8_t)(x >> 16);
        }
        /* Mostly valid headers, so the payload decoders get exercised. */
        if (iter % 2 == 0) {
            raw_hdr(p, VDX_WIRE_MAGIC, (uint16_t)(1 + iter % 7),
                    (uint16_t)((iter / 7) % 2 ? VDX_WIRE_F_REPLY : 0), (uint32_t)(len - 16),
                    (uint32_t)iter);
        }
        (void)vdx_wire_req_decode(p, len, (unsigned)(iter % 3), &req);
        if (vdx_wire_rep_decode(p, len, (unsigned)(iter % 3), &rep) == 0 &&
            rep.hdr.op == VDX_OP_LIST) {
            struct vdx_wire_dev_info e;

            for (uint32_t i = 0; i < rep.u.list.count; i++) {
                vdx_wire_list_entry(&rep, i, &e);
            }
        }
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_bytes_are_little_endian),
        cmocka_unit_test(test_call_req_bytes),
        cmocka_unit_test(test_req_empty_roundtrip),
        cmocka_unit_test(test_req_open_roundtrip),
        cmocka_unit_test(test_req_call_roundtrip),
        cmocka_unit_test(test_req_dma_and_mem_roundtrip),
        cmocka_unit_test(test_req_short_header),
        cmocka_unit_test(test_req_bad_magic),
        cmocka_unit_test(test_req_bad_op),
        cmocka_unit_test(test_req_bad_flags),
        cmocka_unit_test(test_req_length_beyond_max),
        cmocka_unit_test(test_req_buffer_not_one_frame),
        cmocka_unit_test(test_req_length_mismatching_op),
        cmocka_unit_test(test_req_counts_beyond_max),
        cmocka_unit_test(test_req_fd_counts),
        cmocka_unit_test(test_req_max_payload),
        cmocka_unit_test(test_rep_status_roundtrip),
        cmocka_unit_test(test_rep_call_roundtrip),
        cmocka_unit_test(test_rep_dma_mem_roundtrip),
        cmocka_unit_test(test_rep_list_roundtrip),
        cmocka_unit_test(test_rep_list_max_fits_a_frame),
        cmocka_unit_test(test_rep_json_roundtrip),
        cmocka_unit_test(test_rep_direction_and_flags),
        cmocka_unit_test(test_rep_call_hostile),
        cmocka_unit_test(test_rep_mem_hostile),
        cmocka_unit_test(test_rep_list_hostile),
        cmocka_unit_test(test_rep_json_hostile),
        cmocka_unit_test(test_encoders_check_room),
        cmocka_unit_test(test_truncated_frames_refused),
        cmocka_unit_test(test_random_bytes_never_crash),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
