/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim:nvme command parsers and validators (see nvme.h, part 3).
 *
 * Every function here is pure: it reads only its arguments (and, for PRP
 * lists, host memory through the caller's read callback), keeps no state,
 * never allocates, and returns an NVMe status (SCT << 8 | SC, without DNR)
 * or 0 / -errno. They take hostile input — any 64 bytes from a submission
 * queue — and are fuzzed directly by tests/devices/test_nvme_cmd.c.
 */
#include "devices/nvme.h"
#include "common/le.h"

#include <errno.h>
#include <string.h>

/* ---- Queue entries ---------------------------------------------------------- */

int nvme_cmd_decode(const void *buf, size_t len, struct nvme_cmd *cmd)
{
    const uint8_t *p = buf;
    uint32_t cdw0;

    if (!buf || !cmd || len < NVME_SQE_SIZE) {
        return -EINVAL;
    }
    cdw0 = get_le32(p);
    cmd->opc = (uint8_t)NVME_GET(cdw0, SQE_OPC);
    cmd->fuse = (uint8_t)NVME_GET(cdw0, SQE_FUSE);
    cmd->psdt = (uint8_t)NVME_GET(cdw0, SQE_PSDT);
    cmd->cid = (uint16_t)NVME_GET(cdw0, SQE_CID);
    cmd->nsid = get_le32(p + 4);
    cmd->mptr = get_le64(p + 16);
    cmd->prp1 = get_le64(p + 24);
    cmd->prp2 = get_le64(p + 32);
    cmd->cdw10 = get_le32(p + 40);
    cmd->cdw11 = get_le32(p + 44);
    cmd->cdw12 = get_le32(p + 48);
    cmd->cdw13 = get_le32(p + 52);
    cmd->cdw14 = get_le32(p + 56);
    cmd->cdw15 = get_le32(p + 60);
    return 0;
}

int nvme_cpl_encode(const struct nvme_cpl *cpl, bool phase, void *buf, size_t len)
{
    uint8_t *p = buf;

    if (!cpl || !buf || len < NVME_CQE_SIZE) {
        return -EINVAL;
    }
    put_le32(p, cpl->dw0);
    put_le32(p + 4, 0);
    put_le16(p + 8, cpl->sqhd);
    put_le16(p + 10, cpl->sqid);
    put_le16(p + 12, cpl->cid);
    put_le16(p + 14, (uint16_t)(NVME_SET(cpl->status, CQE_SF) | (phase ? NVME_CQE_P : 0u)));
    return 0;
}

int nvme_cpl_decode(const void *buf, size_t len, struct nvme_cpl *cpl, bool *phase)
{
    const uint8_t *p = buf;
    uint32_t dw2;
    uint16_t st; /* DW3 31:16 */

    if (!buf || !cpl || !phase || len < NVME_CQE_SIZE) {
        return -EINVAL;
    }
    dw2 = get_le32(p + 8);
    st = (uint16_t)(get_le32(p + 12) >> 16);
    cpl->dw0 = get_le32(p);
    cpl->sqhd = (uint16_t)dw2;
    cpl->sqid = (uint16_t)(dw2 >> 16);
    cpl->cid = (uint16_t)get_le32(p + 12);
    cpl->status = (uint16_t)NVME_GET(st, CQE_SF);
    *phase = (st & NVME_CQE_P) != 0;
    return 0;
}

uint16_t nvme_cmd_check_common(const struct nvme_cmd *cmd)
{
    if (cmd->fuse != 0 || cmd->psdt != NVME_PSDT_PRP) {
        return NVME_SC_INVALID_FIELD;
    }
    return NVME_SC_SUCCESS;
}

/* ---- NVM I/O commands ------------------------------------------------------ */

static bool nsid_active(const struct nvme_ns_limits *lim, uint32_t nsid)
{
    return nsid >= 1 && nsid <= lim->nn;
}

/* [slba, slba + nlb) inside the namespace, without overflow. */
static bool lba_range_ok(uint64_t nsze, uint64_t slba, uint64_t nlb)
{
    return slba <= nsze && nlb <= nsze - slba;
}

uint16_t nvme_rw_parse(const struct nvme_cmd *cmd, const struct nvme_ns_limits *lim,
                       bool has_data, struct nvme_rw *rw)
{
    uint16_t st = nvme_cmd_check_common(cmd);

    if (st) {
        return st;
    }
    if (NVME_GET(cmd->cdw12, RW_DTYPE) != 0) { /* no directives supported */
        return NVME_SC_INVALID_FIELD;
    }
    if (!nsid_active(lim, cmd->nsid)) {
        return NVME_SC_INVALID_NS;
    }
    rw->slba = ((uint64_t)cmd->cdw11 << 32) | cmd->cdw10;
    rw->nlb = NVME_GET(cmd->cdw12, RW_NLB) + 1u; /* 0's based */
    rw->bytes = (uint64_t)rw->nlb << lim->lba_shift;
    rw->fua = (cmd->cdw12 & NVME_RW_FUA) != 0;
    rw->deac = !has_data && (cmd->cdw12 & NVME_RW_DEAC) != 0;
    if (has_data && lim->max_xfer && rw->bytes > lim->max_xfer) {
        return NVME_SC_INVALID_FIELD;
    }
    if (!lba_range_ok(lim->nsze, rw->slba, rw->nlb)) {
        return NVME_SC_LBA_RANGE;
    }
    return NVME_SC_SUCCESS;
}

uint16_t nvme_flush_check(const struct nvme_cmd *cmd, const struct nvme_ns_limits *lim)
{
    uint16_t st = nvme_cmd_check_common(cmd);

    if (st) {
        return st;
    }
    if (cmd->nsid != NVME_NSID_ALL && !nsid_active(lim, cmd->nsid)) {
        return NVME_SC_INVALID_NS;
    }
    return NVME_SC_SUCCESS;
}

uint16_t nvme_dsm_parse(const struct nvme_cmd *cmd, const struct nvme_ns_limits *lim,
                        unsigned *nr, size_t *list_len, bool *deallocate)
{
    uint16_t st = nvme_cmd_check_common(cmd);

    if (st) {
        return st;
    }
    if (!nsid_active(lim, cmd->nsid)) {
        return NVME_SC_INVALID_NS;
    }
    *nr = NVME_GET(cmd->cdw10, DSM_NR) + 1u; /* 0's based */
    *list_len = (size_t)*nr * sizeof(struct nvme_dsm_range);
    *deallocate = (cmd->cdw11 & NVME_DSM_AD) != 0;
    return NVME_SC_SUCCESS;
}

int nvme_dsm_range(const void *list, size_t len, unsigned i, uint64_t *slba, uint32_t *nlb)
{
    const size_t rsz = sizeof(struct nvme_dsm_range);
    const uint8_t *p = list;

    if (!list || i >= len / rsz) {
        return -EINVAL;
    }
    p += (size_t)i * rsz;
    *nlb = get_le32(p + offsetof(struct nvme_dsm_range, nlb));
    *slba = get_le64(p + offsetof(struct nvme_dsm_range, slba));
    return 0;
}

uint16_t nvme_dsm_check(const void *list, size_t len, unsigned nr, uint64_t nsze)
{
    for (unsigned i = 0; i < nr; i++) {
        uint64_t slba;
        uint32_t nlb;

        if (nvme_dsm_range(list, len, i, &slba, &nlb)) {
            return NVME_SC_INVALID_FIELD;
        }
        if (nlb != 0 && !lba_range_ok(nsze, slba, nlb)) {
            return NVME_SC_LBA_RANGE;
        }
    }
    return NVME_SC_SUCCESS;
}

/* ---- PRP lists ----------------------------------------------------------------- */

#define PAGE        ((uint64_t)NVME_SIM_PAGE_SIZE)
#define PAGE_OFF(a) ((a) & (PAGE - 1))

struct prp_walk {
    struct nvme_seg *segs;
    unsigned max_segs;
    unsigned n;
    uint64_t left; /* bytes still to describe */
};

static uint16_t add_seg(struct prp_walk *w, uint64_t addr, uint64_t len)
{
    if (w->n == w->max_segs) {
        return NVME_SC_INVALID_FIELD;
    }
    w->segs[w->n].addr = addr;
    w->segs[w->n].len = (uint32_t)len;
    w->n++;
    w->left -= len;
    return NVME_SC_SUCCESS;
}

/* A data entry after the first: a whole page, offset 0. */
static uint16_t add_page(struct prp_walk *w, uint64_t entry)
{
    if (PAGE_OFF(entry) != 0) {
        return NVME_SC_INVALID_PRP_OFFSET;
    }
    return add_seg(w, entry, w->left < PAGE ? w->left : PAGE);
}

/*
 * Consume the PRP list starting at `list`. Each pass reads the entries of
 * one list page that are needed; when more pages of data remain than
 * entries fit, the page's last entry chains to the next list page. Every
 * pass either adds a segment or moves to a page-aligned list page, which
 * holds NVME_SIM_PAGE_SIZE / 8 entries, so the loop ends after at most
 * 2 + (pages of data) passes.
 */
static uint16_t walk_list(struct prp_walk *w, uint64_t list, nvme_read_fn rd, void *ctx,
                          uint64_t *scratch, size_t scratch_entries)
{
    while (w->left > 0) {
        uint64_t pages = (w->left + PAGE - 1) / PAGE;
        uint64_t slots = (PAGE - PAGE_OFF(list)) / sizeof(uint64_t);
        bool chain = pages > slots;
        uint64_t want = chain ? slots : pages;
        uint64_t next = 0;

        for (uint64_t i = 0; i < want;) {
            uint64_t chunk = want - i < scratch_entries ? want - i : scratch_entries;

            if (rd(ctx, list + i * NVME_PRP_ENTRY_SIZE, scratch,
                   chunk * NVME_PRP_ENTRY_SIZE)) {
                return NVME_SC_DATA_XFER_ERROR;
            }
            for (uint64_t k = 0; k < chunk; k++, i++) {
                uint16_t st;

                if (chain && i == want - 1) {
                    next = scratch[k]; /* the last entry chains to the next page */
                    continue;
                }
                st = add_page(w, scratch[k]);
                if (st) {
                    return st;
                }
            }
        }
        if (chain && PAGE_OFF(next) != 0) {
            return NVME_SC_INVALID_PRP_OFFSET;
        }
        list = next;
    }
    return NVME_SC_SUCCESS;
}

uint16_t nvme_prp_map(uint64_t prp1, uint64_t prp2, uint64_t len, nvme_read_fn rd,
                      void *ctx, uint64_t *scratch, size_t scratch_entries,
                      struct nvme_seg *segs, unsigned max_segs, unsigned *nsegs)
{
    struct prp_walk w = {segs, max_segs, 0, len};
    uint64_t first;
    uint16_t st;

    *nsegs = 0;
    if (len == 0 || len > UINT32_MAX || !segs || !scratch || scratch_entries == 0) {
        return NVME_SC_INVALID_FIELD;
    }
    if (prp1 & NVME_PRP_OFFSET_MASK) {
        return NVME_SC_INVALID_PRP_OFFSET;
    }
    first = PAGE - PAGE_OFF(prp1);
    st = add_seg(&w, prp1, len < first ? len : first);
    if (!st && w.left > 0 && w.left <= PAGE) {
        st = add_page(&w, prp2);
    } else if (!st && w.left > 0) {
        st = (prp2 & NVME_PRP_LIST_MASK)
                 ? NVME_SC_INVALID_PRP_OFFSET
                 : walk_list(&w, prp2, rd, ctx, scratch, scratch_entries);
    }
    if (st) {
        return st;
    }
    *nsegs = w.n;
    return NVME_SC_SUCCESS;
}

unsigned nvme_seg_merge(struct nvme_seg *segs, unsigned n)
{
    unsigned out = 0;

    for (unsigned i = 0; i < n; i++) {
        struct nvme_seg *last = out ? &segs[out - 1] : NULL;
        uint64_t end = last ? last->addr + last->len : 0;

        if (last && end == segs[i].addr && end > last->addr &&
            segs[i].len <= UINT32_MAX - last->len) {
            last->len += segs[i].len;
        } else {
            segs[out++] = segs[i];
        }
    }
    return out;
}

/* ---- Admin command fields ------------------------------------------------------ */

static uint16_t queue_common(const struct nvme_cmd *cmd, const struct nvme_queue_limits *l,
                             struct nvme_create_q *q)
{
    uint32_t qsize = NVME_GET(cmd->cdw10, QUEUE_QSIZE); /* 0's based */

    q->qid = (uint16_t)NVME_GET(cmd->cdw10, QUEUE_QID);
    q->size = qsize + 1;
    q->base = cmd->prp1;
    if (q->qid == 0 || q->qid > l->max_qid) {
        return NVME_SC_INVALID_QID;
    }
    if (qsize == 0 || qsize > l->mqes) {
        return NVME_SC_INVALID_QUEUE_SIZE;
    }
    if (!(cmd->cdw11 & NVME_QUEUE_PC)) {
        return NVME_SC_INVALID_FIELD; /* CAP.CQR: contiguous queues required */
    }
    if (l->page_size == 0 || (q->base & (l->page_size - 1)) != 0) {
        return NVME_SC_INVALID_PRP_OFFSET;
    }
    return NVME_SC_SUCCESS;
}

uint16_t nvme_create_cq_parse(const struct nvme_cmd *cmd, const struct nvme_queue_limits *l,
                              struct nvme_create_q *q)
{
    uint16_t st = nvme_cmd_check_common(cmd);

    if (st) {
        return st;
    }
    st = queue_common(cmd, l, q);
    if (st) {
        return st;
    }
    q->ien = (cmd->cdw11 & NVME_CQ_IEN) != 0;
    q->iv = (uint16_t)NVME_GET(cmd->cdw11, CQ_IV);
    q->cqid = 0;
    if (q->ien && q->iv >= l->nvec) {
        return NVME_SC_INVALID_VECTOR;
    }
    return NVME_SC_SUCCESS;
}

uint16_t nvme_create_sq_parse(const struct nvme_cmd *cmd, const struct nvme_queue_limits *l,
                              struct nvme_create_q *q)
{
    uint16_t st = nvme_cmd_check_common(cmd);

    if (st) {
        return st;
    }
    st = queue_common(cmd, l, q);
    if (st) {
        return st;
    }
    q->ien = false;
    q->iv = 0;
    q->cqid = (uint16_t)NVME_GET(cmd->cdw11, SQ_CQID);
    if (q->cqid == 0) {
        return NVME_SC_CQ_INVALID;
    }
    return NVME_SC_SUCCESS;
}

uint16_t nvme_get_log_parse(const struct nvme_cmd *cmd, uint32_t max_len,
                            struct nvme_get_log *log)
{
    uint64_t numd = (uint64_t)NVME_GET(cmd->cdw11, LOG_NUMDU) << 16 |
                    NVME_GET(cmd->cdw10, LOG_NUMDL); /* 0's based dwords */
    uint16_t st = nvme_cmd_check_common(cmd);

    if (st) {
        return st;
    }
    log->lid = (uint8_t)NVME_GET(cmd->cdw10, LOG_LID);
    log->rae = (cmd->cdw10 & NVME_LOG_RAE) != 0;
    log->offset = ((uint64_t)cmd->cdw13 << 32) | cmd->cdw12;
    log->len = (numd + 1) * 4;
    if ((log->offset & 0x3u) != 0 || log->len > max_len) {
        return NVME_SC_INVALID_FIELD;
    }
    return NVME_SC_SUCCESS;
}

/* ---- Registers ------------------------------------------------------------------- */

static bool css_valid(uint32_t css, uint64_t cap)
{
    uint64_t cap_css = NVME_GET(cap, CAP_CSS);

    if (css == NVME_CC_CSS_NVM) {
        return (cap_css & NVME_CAP_CSS_NVM) != 0;
    }
    if (css == NVME_CC_CSS_IOCS) {
        return (cap_css & NVME_CAP_CSS_IOCS) != 0;
    }
    return css == NVME_CC_CSS_ADMIN && (cap_css & NVME_CAP_CSS_NOIO) != 0;
}

bool nvme_cc_valid(uint32_t cc, uint64_t cap, uint32_t aqa, uint64_t asq, uint64_t acq)
{
    unsigned mps = NVME_GET(cc, CC_MPS);
    uint64_t page = 1ull << (NVME_MPS_BASE_SHIFT + mps);

    if (!css_valid(NVME_GET(cc, CC_CSS), cap) || mps < NVME_GET(cap, CAP_MPSMIN) ||
        mps > NVME_GET(cap, CAP_MPSMAX) || NVME_GET(cc, CC_AMS) != NVME_CC_AMS_RR) {
        return false;
    }
    if (NVME_GET(cc, CC_IOSQES) != NVME_SQES_LOG2 ||
        NVME_GET(cc, CC_IOCQES) != NVME_CQES_LOG2) {
        return false;
    }
    if (NVME_GET(aqa, AQA_ASQS) == 0 || NVME_GET(aqa, AQA_ACQS) == 0) {
        return false;
    }
    return asq != 0 && acq != 0 && (asq & (page - 1)) == 0 && (acq & (page - 1)) == 0;
}

int nvme_db_decode(uint64_t off, uint16_t *qid, bool *is_cq)
{
    uint64_t rel;

    if (off < NVME_REG_DBS || off - NVME_REG_DBS >= 0x1000u || (off & 0x3u) != 0) {
        return -EINVAL;
    }
    rel = (off - NVME_REG_DBS) / NVME_DB_STRIDE(NVME_SIM_DSTRD);
    *qid = (uint16_t)(rel / 2);
    *is_cq = (rel & 1u) != 0;
    return 0;
}

bool nvme_cq_head_valid(uint32_t size, uint32_t head, uint32_t tail, uint32_t new_head)
{
    uint32_t used, adv;

    if (size == 0 || new_head >= size || head >= size || tail >= size) {
        return false;
    }
    used = (tail + size - head) % size;
    adv = (new_head + size - head) % size;
    return adv <= used;
}

/* ---- Data structure helpers ------------------------------------------------------- */

uint64_t nvme_data_units(uint64_t units_512)
{
    return units_512 / 1000u + (units_512 % 1000u != 0);
}

void nvme_put_u128(uint8_t out[16], uint64_t lo)
{
    memset(out, 0, 16);
    put_le32(out, (uint32_t)lo);
    put_le32(out + 4, (uint32_t)(lo >> 32));
}

void nvme_put_ascii(char *field, size_t len, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    memset(field, ' ', len);
    memcpy(field, s ? s : "", n < len ? n : len);
}
