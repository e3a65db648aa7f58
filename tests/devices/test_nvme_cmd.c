/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the sim:nvme command parsers (src/devices/nvme_cmd.c): queue
 * entry encoding, I/O command validation, Dataset Management ranges, PRP
 * lists (with a fake host memory behind the read callback), queue creation
 * fields, Get Log Page fields, the CC enable check, doorbell decoding — and
 * a random fuzz over all of them with arbitrary 64-byte entries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/nvme.h"

/* CC with EN = 0 and SHN = 0 (Base §3.1.3.5). */
#define CC_MAKE(css, mps, ams, iosqes, iocqes)                                             \
    (NVME_SET(css, CC_CSS) | NVME_SET(mps, CC_MPS) | NVME_SET(ams, CC_AMS) |               \
     NVME_SET(iosqes, CC_IOSQES) | NVME_SET(iocqes, CC_IOCQES))

#define MEM_BUS  0x100000ull
#define MEM_SIZE (1024u * 1024u)
#define PG       4096u

/* ---- A fake host memory for PRP lists ------------------------------------------ */

struct fake_mem {
    uint8_t *mem;
    unsigned reads;
    unsigned faults;
    uint64_t rng; /* non-zero: reads return random bytes (fuzz) */
};

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static int fake_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct fake_mem *m = ctx;

    m->reads++;
    if (m->rng) {
        uint8_t *p = buf;

        if (xorshift(&m->rng) % 8 == 0) {
            m->faults++;
            return -EFAULT;
        }
        for (size_t i = 0; i < len; i++) {
            p[i] = (uint8_t)xorshift(&m->rng);
        }
        for (size_t i = 0; i + 8 <= len; i += 8) {
            if (xorshift(&m->rng) & 1) { /* page-aligned entries go deeper */
                p[i] = 0;
                p[i + 1] &= 0xf0;
            }
        }
        return 0;
    }
    if (addr < MEM_BUS || addr - MEM_BUS > MEM_SIZE || len > MEM_SIZE - (addr - MEM_BUS)) {
        m->faults++;
        return -EFAULT;
    }
    memcpy(buf, m->mem + (addr - MEM_BUS), len);
    return 0;
}

static void put_entry(struct fake_mem *m, uint64_t bus, unsigned idx, uint64_t val)
{
    memcpy(m->mem + (bus - MEM_BUS) + idx * 8u, &val, sizeof(val));
}

static int setup(void **state)
{
    struct fake_mem *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    m->mem = calloc(1, MEM_SIZE);
    assert_non_null(m->mem);
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    struct fake_mem *m = *state;

    free(m->mem);
    free(m);
    return 0;
}

/* ---- Queue entries ------------------------------------------------------------------ */

static void test_decode_encode(void **state)
{
    uint8_t raw[64];
    struct nvme_cmd c;
    struct nvme_cpl cpl = {.dw0 = 0xdeadbeef,
                           .sqhd = 7,
                           .sqid = 3,
                           .cid = 0x1234,
                           .status = NVME_SC_LBA_RANGE | NVME_SF_DNR};
    struct nvme_cpl out;
    uint8_t cqe[16];
    bool phase = false;

    (void)state;
    for (unsigned i = 0; i < sizeof(raw); i++) {
        raw[i] = (uint8_t)i;
    }
    assert_int_equal(nvme_cmd_decode(raw, 63, &c), -EINVAL);
    assert_int_equal(nvme_cmd_decode(raw, sizeof(raw), &c), 0);
    assert_int_equal(c.opc, 0x00);
    assert_int_equal(c.fuse, 1); /* byte 1 = 0x01 */
    assert_int_equal(c.psdt, 0);
    assert_int_equal(c.cid, 0x0302);
    assert_int_equal(c.nsid, 0x07060504);
    assert_true(c.prp1 == 0x1f1e1d1c1b1a1918ull);
    assert_true(c.prp2 == 0x2726252423222120ull);
    assert_int_equal(c.cdw10, 0x2b2a2928);
    assert_int_equal(c.cdw15, 0x3f3e3d3c);

    assert_int_equal(nvme_cpl_encode(&cpl, true, cqe, 15), -EINVAL);
    assert_int_equal(nvme_cpl_encode(&cpl, true, cqe, sizeof(cqe)), 0);
    assert_int_equal(cqe[14] & 1, 1);        /* phase */
    assert_int_equal((cqe[15] >> 7) & 1, 1); /* DNR is bit 31 of DW3 */
    assert_int_equal(nvme_cpl_decode(cqe, sizeof(cqe), &out, &phase), 0);
    assert_true(phase);
    assert_int_equal(out.dw0, 0xdeadbeef);
    assert_int_equal(out.sqhd, 7);
    assert_int_equal(out.sqid, 3);
    assert_int_equal(out.cid, 0x1234);
    assert_int_equal(out.status, NVME_SC_LBA_RANGE | NVME_SF_DNR);
    assert_int_equal(NVME_GET(out.status, SF_SCT), 0);
    assert_int_equal(NVME_GET(out.status, SF_SC), 0x80);
}

/* ---- I/O commands -----------------------------------------------------------------------
 */

static const struct nvme_ns_limits lim = {1, 2048, 9, 128 * 1024};

static struct nvme_cmd rw_cmd(uint32_t nsid, uint64_t slba, uint32_t nlb0, uint32_t flags)
{
    struct nvme_cmd c = {.opc = NVME_IO_READ, .nsid = nsid};

    c.cdw10 = (uint32_t)slba;
    c.cdw11 = (uint32_t)(slba >> 32);
    c.cdw12 = (nlb0 & 0xffffu) | flags;
    return c;
}

static void test_rw_parse(void **state)
{
    struct nvme_rw rw;
    struct nvme_cmd c;

    (void)state;
    c = rw_cmd(1, 10, 7, NVME_RW_FUA);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), 0);
    assert_true(rw.slba == 10);
    assert_int_equal(rw.nlb, 8);
    assert_true(rw.bytes == 4096);
    assert_true(rw.fua);
    assert_false(rw.deac);

    c = rw_cmd(0, 0, 0, 0);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), NVME_SC_INVALID_NS);
    c = rw_cmd(2, 0, 0, 0);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), NVME_SC_INVALID_NS);
    c = rw_cmd(NVME_NSID_ALL, 0, 0, 0);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), NVME_SC_INVALID_NS);
    /* MDTS: 256 blocks = 128 KiB fits, 257 does not; Write Zeroes has no MDTS. */
    c = rw_cmd(1, 0, 255, 0);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), 0);
    c = rw_cmd(1, 0, 256, 0);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), NVME_SC_INVALID_FIELD);
    assert_int_equal(nvme_rw_parse(&c, &lim, false, &rw), 0);
    /* LBA range: exactly to the end fits, one more does not, no overflow. */
    c = rw_cmd(1, 2040, 7, 0);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), 0);
    c = rw_cmd(1, 2041, 7, 0);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), NVME_SC_LBA_RANGE);
    c = rw_cmd(1, UINT64_MAX, 0, 0);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), NVME_SC_LBA_RANGE);
    c = rw_cmd(1, UINT64_MAX - 2, 7, 0);
    assert_int_equal(nvme_rw_parse(&c, &lim, false, &rw), NVME_SC_LBA_RANGE);
    /* Directives, fused operations and SGLs are not supported. */
    c = rw_cmd(1, 0, 0, 1u << 20);
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), NVME_SC_INVALID_FIELD);
    c = rw_cmd(1, 0, 0, 0);
    c.fuse = 1;
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), NVME_SC_INVALID_FIELD);
    c.fuse = 0;
    c.psdt = 1;
    assert_int_equal(nvme_rw_parse(&c, &lim, true, &rw), NVME_SC_INVALID_FIELD);
    /* Write Zeroes deallocate bit. */
    c = rw_cmd(1, 0, 0, NVME_RW_DEAC);
    assert_int_equal(nvme_rw_parse(&c, &lim, false, &rw), 0);
    assert_true(rw.deac);
}

static void test_flush_dsm(void **state)
{
    struct nvme_cmd c = {.opc = NVME_IO_FLUSH, .nsid = 1};
    uint8_t list[3 * 16] = {0};
    unsigned nr = 0;
    size_t len = 0;
    bool ad = false;
    uint64_t slba;
    uint32_t nlb;

    (void)state;
    assert_int_equal(nvme_flush_check(&c, &lim), 0);
    c.nsid = NVME_NSID_ALL;
    assert_int_equal(nvme_flush_check(&c, &lim), 0);
    c.nsid = 3;
    assert_int_equal(nvme_flush_check(&c, &lim), NVME_SC_INVALID_NS);

    c = (struct nvme_cmd){.opc = NVME_IO_DSM, .nsid = 1, .cdw10 = 2, .cdw11 = NVME_DSM_AD};
    assert_int_equal(nvme_dsm_parse(&c, &lim, &nr, &len, &ad), 0);
    assert_int_equal(nr, 3);
    assert_int_equal(len, 48);
    assert_true(ad);
    c.cdw10 = 255;
    assert_int_equal(nvme_dsm_parse(&c, &lim, &nr, &len, &ad), 0);
    assert_int_equal(nr, 256);
    assert_int_equal(len, 4096);

    /* ranges: (0, 8), (2000, 48), (x, 0) ignored */
    list[4] = 8;
    list[16 + 4] = 48;
    list[16 + 8] = 0xd0;
    list[16 + 9] = 0x07; /* 2000 */
    list[32 + 8] = 0xff;
    assert_int_equal(nvme_dsm_range(list, sizeof(list), 1, &slba, &nlb), 0);
    assert_true(slba == 2000);
    assert_int_equal(nlb, 48);
    assert_int_equal(nvme_dsm_range(list, sizeof(list), 3, &slba, &nlb), -EINVAL);
    assert_int_equal(nvme_dsm_check(list, sizeof(list), 3, 2048), 0);
    list[16 + 4] = 49;
    assert_int_equal(nvme_dsm_check(list, sizeof(list), 3, 2048), NVME_SC_LBA_RANGE);
    list[16 + 4] = 48;
    assert_int_equal(nvme_dsm_check(list, sizeof(list), 4, 2048), NVME_SC_INVALID_FIELD);
}

/* ---- PRP lists
 * --------------------------------------------------------------------------- */

static uint16_t map(struct fake_mem *m, uint64_t prp1, uint64_t prp2, uint64_t len,
                    struct nvme_seg *segs, unsigned max, unsigned *n)
{
    uint64_t scratch[512];

    return nvme_prp_map(prp1, prp2, len, fake_read, m, scratch, 512, segs, max, n);
}

static void test_prp_simple(void **state)
{
    struct fake_mem *m = *state;
    struct nvme_seg s[40];
    unsigned n = 99;

    /* One page, offset 0 and a dword offset; PRP2 ignored. */
    assert_int_equal(map(m, 0x5000, 0xdead, 4096, s, 40, &n), 0);
    assert_int_equal(n, 1);
    assert_true(s[0].addr == 0x5000 && s[0].len == 4096);
    assert_int_equal(map(m, 0x5004, 0xdead, 100, s, 40, &n), 0);
    assert_int_equal(n, 1);
    /* Crossing one page boundary: PRP2 is the second page. */
    assert_int_equal(map(m, 0x5e00, 0x9000, 4096, s, 40, &n), 0);
    assert_int_equal(n, 2);
    assert_true(s[0].addr == 0x5e00 && s[0].len == 512);
    assert_true(s[1].addr == 0x9000 && s[1].len == 3584);
    assert_int_equal(map(m, 0x5000, 0x9000, 8192, s, 40, &n), 0);
    assert_int_equal(n, 2);
    /* Offsets: PRP1 not dword aligned, PRP2 data pointer not page aligned. */
    assert_int_equal(map(m, 0x5002, 0, 16, s, 40, &n), NVME_SC_INVALID_PRP_OFFSET);
    assert_int_equal(map(m, 0x5000, 0x9200, 8192, s, 40, &n), NVME_SC_INVALID_PRP_OFFSET);
    assert_int_equal(n, 0);
    /* Length 0, too many segments. */
    assert_int_equal(map(m, 0x5000, 0, 0, s, 40, &n), NVME_SC_INVALID_FIELD);
    assert_int_equal(map(m, 0x5000, 0x9000, 8192, s, 1, &n), NVME_SC_INVALID_FIELD);
    assert_int_equal(m->reads, 0);
}

static void test_prp_list(void **state)
{
    struct fake_mem *m = *state;
    const uint64_t list = MEM_BUS + 0x1000;
    struct nvme_seg s[40];
    unsigned n = 0;

    /* 64 KiB with PRP1 at offset 512: 3584 bytes, then 16 list entries. */
    for (unsigned i = 0; i < 16; i++) {
        put_entry(m, list + 8, i, 0x100000ull * (i + 1)); /* list at offset 8 */
    }
    assert_int_equal(map(m, 0x7200, list + 8, 65536, s, 40, &n), 0);
    assert_int_equal(n, 17);
    assert_true(s[0].addr == 0x7200 && s[0].len == 3584);
    assert_true(s[1].addr == 0x100000 && s[1].len == 4096);
    assert_true(s[16].addr == 0x1000000 && s[16].len == 512);
    /* A data entry with an offset; a list pointer not qword aligned; a list
     * in unmapped memory. */
    put_entry(m, list + 8, 3, 0x400100);
    assert_int_equal(map(m, 0x7200, list + 8, 65536, s, 40, &n),
                     NVME_SC_INVALID_PRP_OFFSET);
    assert_int_equal(map(m, 0x7200, list + 4, 65536, s, 40, &n),
                     NVME_SC_INVALID_PRP_OFFSET);
    assert_int_equal(map(m, 0x7200, 0x80000000, 65536, s, 40, &n), NVME_SC_DATA_XFER_ERROR);
}

static void test_prp_chain(void **state)
{
    struct fake_mem *m = *state;
    const uint64_t l1 = MEM_BUS + 0x2000, l2 = MEM_BUS + 0x5000;
    struct nvme_seg s[40];
    unsigned n = 0;

    /* 128 KiB aligned: 1 page in PRP1, 31 in lists. The first list starts
     * two entries before the end of its page: one data entry, one chain. */
    put_entry(m, l1 + 4080, 0, 0xa000);
    put_entry(m, l1 + 4080, 1, l2);
    for (unsigned i = 0; i < 30; i++) {
        put_entry(m, l2, i, 0x200000ull + i * 0x1000ull);
    }
    assert_int_equal(map(m, 0x3000, l1 + 4080, 131072, s, 40, &n), 0);
    assert_int_equal(n, 32);
    assert_true(s[1].addr == 0xa000);
    assert_true(s[2].addr == 0x200000);
    assert_true(s[31].addr == 0x200000 + 29 * 0x1000ull);
    /* The chain entry must be page aligned. */
    put_entry(m, l1 + 4080, 1, l2 + 8);
    assert_int_equal(map(m, 0x3000, l1 + 4080, 131072, s, 40, &n),
                     NVME_SC_INVALID_PRP_OFFSET);
    /* A list at the last slot of a page only chains; a list that chains to
     * itself forever is bounded by the transfer length. */
    put_entry(m, l1 + 4088, 0, l1);
    for (unsigned i = 0; i < 511; i++) {
        put_entry(m, l1, i, 0x300000ull + i * 0x1000ull);
    }
    put_entry(m, l1, 511, l1);
    m->reads = 0;
    assert_int_equal(map(m, 0x3000, l1 + 4088, 131072, s, 40, &n), 0);
    assert_int_equal(n, 32);
    assert_true(m->reads <= 3);
}

/* ---- Admin command fields ------------------------------------------------------------ */

static const struct nvme_queue_limits ql = {4, 1023, 5, 4096};

static struct nvme_cmd q_cmd(uint16_t qid, uint16_t qsize0, uint64_t base, uint32_t cdw11)
{
    struct nvme_cmd c = {
        .prp1 = base, .cdw10 = qid | ((uint32_t)qsize0 << 16), .cdw11 = cdw11};
    return c;
}

static void test_create_queues(void **state)
{
    struct nvme_create_q q;
    struct nvme_cmd c;

    (void)state;
    c = q_cmd(1, 63, 0x10000, NVME_QUEUE_PC | NVME_CQ_IEN | (4u << 16));
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), 0);
    assert_int_equal(q.qid, 1);
    assert_int_equal(q.size, 64);
    assert_true(q.ien);
    assert_int_equal(q.iv, 4);
    c = q_cmd(0, 63, 0x10000, NVME_QUEUE_PC);
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), NVME_SC_INVALID_QID);
    c = q_cmd(5, 63, 0x10000, NVME_QUEUE_PC);
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), NVME_SC_INVALID_QID);
    c = q_cmd(1, 0, 0x10000, NVME_QUEUE_PC);
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), NVME_SC_INVALID_QUEUE_SIZE);
    c = q_cmd(1, 1024, 0x10000, NVME_QUEUE_PC);
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), NVME_SC_INVALID_QUEUE_SIZE);
    c = q_cmd(1, 1023, 0x10000, NVME_QUEUE_PC);
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), 0);
    c = q_cmd(1, 63, 0x10000, 0);
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), NVME_SC_INVALID_FIELD);
    c = q_cmd(1, 63, 0x10200, NVME_QUEUE_PC);
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), NVME_SC_INVALID_PRP_OFFSET);
    c = q_cmd(1, 63, 0x10000, NVME_QUEUE_PC | NVME_CQ_IEN | (5u << 16));
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), NVME_SC_INVALID_VECTOR);
    c = q_cmd(1, 63, 0x10000, NVME_QUEUE_PC | (5u << 16)); /* IEN clear: IV unused */
    assert_int_equal(nvme_create_cq_parse(&c, &ql, &q), 0);

    c = q_cmd(2, 15, 0x20000, NVME_QUEUE_PC | (3u << 16));
    assert_int_equal(nvme_create_sq_parse(&c, &ql, &q), 0);
    assert_int_equal(q.cqid, 3);
    c = q_cmd(2, 15, 0x20000, NVME_QUEUE_PC);
    assert_int_equal(nvme_create_sq_parse(&c, &ql, &q), NVME_SC_CQ_INVALID);
    c = q_cmd(2, 15, 0x20000, NVME_QUEUE_PC | (3u << 16));
    c.psdt = 2;
    assert_int_equal(nvme_create_sq_parse(&c, &ql, &q), NVME_SC_INVALID_FIELD);
}

static void test_get_log(void **state)
{
    struct nvme_cmd c = {.cdw10 = NVME_LOG_SMART | (127u << 16)};
    struct nvme_get_log g;

    (void)state;
    assert_int_equal(nvme_get_log_parse(&c, 4096, &g), 0);
    assert_int_equal(g.lid, NVME_LOG_SMART);
    assert_true(g.len == 512);
    assert_false(g.rae);
    c.cdw10 |= NVME_LOG_RAE;
    c.cdw12 = 8;
    assert_int_equal(nvme_get_log_parse(&c, 4096, &g), 0);
    assert_true(g.rae);
    assert_true(g.offset == 8);
    c.cdw12 = 6;
    assert_int_equal(nvme_get_log_parse(&c, 4096, &g), NVME_SC_INVALID_FIELD);
    c.cdw12 = 0;
    c.cdw11 = 1; /* NUMDU: 64 Ki dwords more */
    assert_int_equal(nvme_get_log_parse(&c, 4096, &g), NVME_SC_INVALID_FIELD);
}

static void test_registers(void **state)
{
    const uint64_t cap = 0x20020103ffull; /* MQES 1023, CQR, TO 2, CSS NVM */
    const uint32_t good = NVME_CC_EN | CC_MAKE(0, 0, 0, 6, 4);
    const uint32_t aqa = 31u | (31u << 16);
    uint16_t qid = 0;
    bool cq = false;

    (void)state;
    assert_true(nvme_cc_valid(good, cap, aqa, 0x1000, 0x2000));
    assert_false(nvme_cc_valid(good | CC_MAKE(1, 0, 0, 0, 0), cap, aqa, 0x1000, 0x2000));
    assert_false(nvme_cc_valid(good | CC_MAKE(6, 0, 0, 0, 0), cap, aqa, 0x1000, 0x2000));
    assert_false(nvme_cc_valid(good | CC_MAKE(0, 1, 0, 0, 0), cap, aqa, 0x1000, 0x2000));
    assert_false(nvme_cc_valid(good | CC_MAKE(0, 0, 1, 0, 0), cap, aqa, 0x1000, 0x2000));
    assert_false(
        nvme_cc_valid(NVME_CC_EN | CC_MAKE(0, 0, 0, 0, 4), cap, aqa, 0x1000, 0x2000));
    assert_false(
        nvme_cc_valid(NVME_CC_EN | CC_MAKE(0, 0, 0, 6, 5), cap, aqa, 0x1000, 0x2000));
    assert_false(nvme_cc_valid(good, cap, 31u, 0x1000, 0x2000));
    assert_false(nvme_cc_valid(good, cap, 31u << 16, 0x1000, 0x2000));
    assert_false(nvme_cc_valid(good, cap, aqa, 0, 0x2000));
    assert_false(nvme_cc_valid(good, cap, aqa, 0x1800, 0x2000));

    assert_int_equal(nvme_db_decode(0x1000, &qid, &cq), 0);
    assert_int_equal(qid, 0);
    assert_false(cq);
    assert_int_equal(nvme_db_decode(0x100c, &qid, &cq), 0);
    assert_int_equal(qid, 1);
    assert_true(cq);
    assert_int_equal(nvme_db_decode(0x1ffc, &qid, &cq), 0);
    assert_int_equal(qid, 511);
    assert_int_equal(nvme_db_decode(0xffc, &qid, &cq), -EINVAL);
    assert_int_equal(nvme_db_decode(0x2000, &qid, &cq), -EINVAL);
    assert_int_equal(nvme_db_decode(0x1002, &qid, &cq), -EINVAL);

    /* size 8, head 6, tail 2: entries 6,7,0,1 posted */
    assert_true(nvme_cq_head_valid(8, 6, 2, 6));
    assert_true(nvme_cq_head_valid(8, 6, 2, 0));
    assert_true(nvme_cq_head_valid(8, 6, 2, 2));
    assert_false(nvme_cq_head_valid(8, 6, 2, 3));
    assert_false(nvme_cq_head_valid(8, 6, 2, 5));
    assert_false(nvme_cq_head_valid(8, 6, 2, 8));
    assert_false(nvme_cq_head_valid(0, 0, 0, 0));
}

static void test_helpers(void **state)
{
    uint8_t u[16];
    char f[8];

    (void)state;
    assert_true(nvme_data_units(0) == 0);
    assert_true(nvme_data_units(1) == 1);
    assert_true(nvme_data_units(1000) == 1);
    assert_true(nvme_data_units(1001) == 2);
    nvme_put_u128(u, 0x0102030405060708ull);
    assert_int_equal(u[0], 8);
    assert_int_equal(u[7], 1);
    assert_int_equal(u[8], 0);
    nvme_put_ascii(f, sizeof(f), "0.1");
    assert_memory_equal(f, "0.1     ", 8);
    nvme_put_ascii(f, sizeof(f), "0123456789");
    assert_memory_equal(f, "01234567", 8);
}

/* ---- Fuzz
 * ----------------------------------------------------------------------------------- */

/* Merge segs[0..n) (total bytes `total`): the runs keep every byte in order
 * and no two neighbours are contiguous any more. */
static void check_merged(struct nvme_seg *segs, unsigned n, uint64_t total)
{
    struct nvme_seg orig[NVME_SIM_MAX_SEGS];
    unsigned runs, k = 0;
    uint64_t sum = 0;

    memcpy(orig, segs, n * sizeof(*segs));
    runs = nvme_seg_merge(segs, n);
    assert_true(runs >= 1 && runs <= n);
    for (unsigned r = 0; r < runs; r++) {
        uint64_t covered = 0;

        assert_int_equal(segs[r].addr, orig[k].addr);
        while (covered < segs[r].len) {
            assert_true(orig[k].addr == segs[r].addr + covered);
            covered += orig[k++].len;
        }
        assert_true(covered == segs[r].len);
        sum += segs[r].len;
        if (r > 0) {
            assert_true(segs[r - 1].addr + segs[r - 1].len != segs[r].addr);
        }
    }
    assert_int_equal(k, n);
    assert_true(sum == total);
}

static void test_seg_merge(void **state)
{
    const uint64_t a = 0x100000, top = 0ull - 4096;
    struct nvme_seg s[8] = {
        {a + 512, 3584},  {a + 4096, 4096}, {a + 8192, 4096}, /* one run, PRP1 offset */
        {a + 4096, 4096},                                     /* backwards: new run */
        {a + 20480, 100},                                     /* a gap: new run */
    };
    struct nvme_seg wrap[2] = {{top, 4096}, {0, 4096}};
    struct nvme_seg big[2] = {{0, UINT32_MAX - 10}, {UINT32_MAX - 10, 100}};

    (void)state;
    assert_int_equal(nvme_seg_merge(s, 0), 0);
    check_merged(s, 5, 3584 + 4096 * 3 + 100);
    assert_int_equal(nvme_seg_merge(s, 3), 3); /* merged already */
    assert_true(s[0].addr == a + 512 && s[0].len == 3584 + 8192);
    assert_true(s[1].addr == a + 4096 && s[1].len == 4096);
    assert_true(s[2].addr == a + 20480 && s[2].len == 100);
    /* Never across the top of the bus, never beyond a 32-bit length. */
    assert_int_equal(nvme_seg_merge(wrap, 2), 2);
    assert_int_equal(nvme_seg_merge(big, 2), 2);
}

/* Random 64-byte entries through every parser; random PRP lists behind a
 * reader that returns random entries or faults. Nothing may crash, segments
 * must stay within the limit and describe exactly the requested length. */
static void test_fuzz(void **state)
{
    struct fake_mem *m = *state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;

    for (unsigned iter = 0; iter < 200000; iter++) {
        uint8_t raw[64];
        struct nvme_cmd c;
        struct nvme_rw rw;
        struct nvme_create_q q;
        struct nvme_get_log g;
        struct nvme_seg s[NVME_SIM_MAX_SEGS];
        unsigned nr, n = 0;
        size_t len;
        bool ad;
        uint64_t total = 0, xlen;
        uint16_t st;

        for (unsigned i = 0; i < sizeof(raw); i += 8) {
            uint64_t v = xorshift(&seed);

            memcpy(raw + i, &v, 8);
        }
        assert_int_equal(nvme_cmd_decode(raw, sizeof(raw), &c), 0);
        (void)nvme_rw_parse(&c, &lim, iter & 1, &rw);
        (void)nvme_flush_check(&c, &lim);
        (void)nvme_dsm_parse(&c, &lim, &nr, &len, &ad);
        (void)nvme_dsm_check(raw, sizeof(raw), (c.cdw10 & 0xff) + 1, c.cdw11);
        (void)nvme_create_cq_parse(&c, &ql, &q);
        (void)nvme_create_sq_parse(&c, &ql, &q);
        (void)nvme_get_log_parse(&c, 4096, &g);
        (void)nvme_cc_valid(c.cdw10, c.prp1, c.cdw11, c.prp2, c.mptr);
        (void)nvme_cq_head_valid(c.cdw10 & 0xff, c.cdw11 & 0xff, c.cdw12 & 0xff,
                                 c.cdw13 & 0xff);
        m->rng = xorshift(&seed) | 1;
        xlen = c.cdw14 % (NVME_SIM_MAX_XFER + 1);
        if (iter % 4 == 0) {
            c.prp2 &= ~0xfffull; /* reach the list walk more often */
            c.prp1 &= ~0x3ull;
        }
        st = map(m, c.prp1, c.prp2, xlen, s, NVME_SIM_MAX_SEGS, &n);
        m->rng = 0;
        if (st == 0) {
            assert_true(n >= 1 && n <= NVME_SIM_MAX_SEGS);
            for (unsigned i = 0; i < n; i++) {
                total += s[i].len;
            }
            assert_true(total == xlen);
            check_merged(s, n, xlen);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_encode),
        cmocka_unit_test(test_rw_parse),
        cmocka_unit_test(test_flush_dsm),
        cmocka_unit_test_setup_teardown(test_prp_simple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prp_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prp_chain, setup, teardown),
        cmocka_unit_test(test_seg_merge),
        cmocka_unit_test(test_create_queues),
        cmocka_unit_test(test_get_log),
        cmocka_unit_test(test_registers),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
    };

    return cmocka_run_group_tests_name("nvme_cmd", tests, NULL, NULL);
}
