/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * unvme: admin commands (Base 2.0 §5) — the public helpers, I/O queue
 * creation and deletion, Number of Queues, and the Identify parsers. Every
 * admin command runs synchronously on the admin queue under admin_lock.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "unvme/unvme_int.h"

#define SHORT_TIMEOUT_MS 1000u

int unvme_status_out(const struct unvme_cpl *cpl, uint16_t *status)
{
    if (cpl->err) {
        return cpl->err;
    }
    if (status) {
        *status = cpl->status;
        return 0;
    }
    return cpl->status ? -EIO : 0;
}

static int admin_run(struct unvme *u, const struct nvme_sqe *cmd, void *data, size_t len,
                     unsigned timeout_ms, struct unvme_cpl *cpl)
{
    int rc;

    pthread_mutex_lock(&u->admin_lock);
    rc = unvme_admin_locked(u, cmd, data, len, timeout_ms, cpl);
    pthread_mutex_unlock(&u->admin_lock);
    return rc;
}

int unvme_admin(struct unvme *u, const struct nvme_sqe *cmd, void *data, size_t len,
                uint32_t *dw0, uint16_t *status)
{
    struct unvme_cpl cpl;
    int rc;

    if (!u || !cmd || len > u->info.max_xfer || (len && !data)) {
        return -EINVAL;
    }
    rc = admin_run(u, cmd, data, len, u->opts.timeout_ms, &cpl);
    if (rc < 0) {
        return rc;
    }
    if (dw0) {
        *dw0 = cpl.dw0;
    }
    return unvme_status_out(&cpl, status);
}

int unvme_identify(struct unvme *u, uint8_t cns, uint32_t nsid, uint16_t cntid, void *buf,
                   uint16_t *status)
{
    struct nvme_sqe c = {.cdw0 = NVME_ADM_IDENTIFY, .nsid = nsid};

    c.cdw10 = NVME_SET(cns, IDENTIFY_CNS) | NVME_SET(cntid, IDENTIFY_CNTID);
    return unvme_admin(u, &c, buf, NVME_IDENTIFY_SIZE, NULL, status);
}

int unvme_get_log_page(struct unvme *u, uint8_t lid, uint32_t nsid, uint64_t offset,
                       void *buf, size_t len, uint16_t *status)
{
    struct nvme_sqe c = {.cdw0 = NVME_ADM_GET_LOG_PAGE, .nsid = nsid};
    uint32_t numd;

    if (len < 4 || (len & 3u) || (offset & 3u)) {
        return -EINVAL;
    }
    numd = (uint32_t)(len / 4u - 1u); /* 0's based dwords */
    c.cdw10 = NVME_SET(lid, LOG_LID) | NVME_SET(numd, LOG_NUMDL);
    c.cdw11 = NVME_SET(numd >> 16, LOG_NUMDU);
    c.cdw12 = (uint32_t)offset;
    c.cdw13 = (uint32_t)(offset >> 32);
    return unvme_admin(u, &c, buf, len, NULL, status);
}

int unvme_get_features(struct unvme *u, uint8_t fid, uint32_t cdw11, uint32_t *dw0,
                       uint16_t *status)
{
    struct nvme_sqe c = {.cdw0 = NVME_ADM_GET_FEATURES, .cdw11 = cdw11};

    c.cdw10 = NVME_SET(fid, FEAT_FID);

    return unvme_admin(u, &c, NULL, 0, dw0, status);
}

int unvme_set_features(struct unvme *u, uint8_t fid, uint32_t value, bool save,
                       uint32_t *dw0, uint16_t *status)
{
    struct nvme_sqe c = {.cdw0 = NVME_ADM_SET_FEATURES, .cdw11 = value};

    c.cdw10 = NVME_SET(fid, FEAT_FID) | (save ? NVME_FEAT_SV : 0u);
    return unvme_admin(u, &c, NULL, 0, dw0, status);
}

/* ---- Used by bring-up and reset (admin_lock held) ---------------------------- */

/* An admin command that must succeed; the failure is logged with `what`. */
static int must(struct unvme *u, const struct nvme_sqe *c, void *data, size_t len,
                const char *what, uint32_t *dw0)
{
    struct unvme_cpl cpl;
    int rc = unvme_admin_locked(u, c, data, len, u->opts.timeout_ms, &cpl);

    if (rc == 0 && (cpl.err || cpl.status)) {
        rc = cpl.err ? cpl.err : -EIO;
    }
    if (rc < 0) {
        unvme_logf(u, VDX_LOG_ERR, "%s failed: %s (status SCT %u SC 0x%02x)", what,
                   strerror(-rc), NVME_GET(cpl.status, SF_SCT),
                   NVME_GET(cpl.status, SF_SC));
        return rc;
    }
    if (dw0) {
        *dw0 = cpl.dw0;
    }
    return 0;
}

int unvme_set_num_queues(struct unvme *u, unsigned want, unsigned *granted)
{
    struct nvme_sqe c = {.cdw0 = NVME_ADM_SET_FEATURES, .cdw10 = NVME_FEAT_NUM_QUEUES};
    uint32_t dw0 = 0, nsqa, ncqa;
    int rc;

    c.cdw11 = NVME_SET(want - 1u, FEAT_NQ_SQ) | NVME_SET(want - 1u, FEAT_NQ_CQ);
    rc = must(u, &c, NULL, 0, "Set Features (Number of Queues)", &dw0);
    if (rc < 0) {
        return rc;
    }
    nsqa = NVME_GET(dw0, FEAT_NQ_SQ) + 1u;
    ncqa = NVME_GET(dw0, FEAT_NQ_CQ) + 1u;
    *granted = nsqa < ncqa ? nsqa : ncqa;
    return 0;
}

int unvme_create_io_queue(struct unvme *u, struct unvme_queue *q)
{
    struct nvme_sqe cq = {.cdw0 = NVME_ADM_CREATE_CQ, .prp1 = q->cq_bus};
    struct nvme_sqe sq = {.cdw0 = NVME_ADM_CREATE_SQ, .prp1 = q->sq_bus};
    struct nvme_sqe del = {.cdw0 = NVME_ADM_DELETE_CQ};
    struct unvme_cpl cpl;
    int rc;

    cq.cdw10 = NVME_SET(q->qid, QUEUE_QID) | NVME_SET(q->depth - 1u, QUEUE_QSIZE);
    cq.cdw11 = NVME_QUEUE_PC | NVME_CQ_IEN | NVME_SET(q->vector, CQ_IV);
    sq.cdw10 = cq.cdw10;
    sq.cdw11 = NVME_QUEUE_PC | NVME_SET(q->qid, SQ_CQID);
    del.cdw10 = NVME_SET(q->qid, QUEUE_QID);
    rc = must(u, &cq, NULL, 0, "Create I/O Completion Queue", NULL);
    if (rc < 0) {
        return rc;
    }
    rc = must(u, &sq, NULL, 0, "Create I/O Submission Queue", NULL);
    if (rc < 0) {
        unvme_admin_locked(u, &del, NULL, 0, SHORT_TIMEOUT_MS, &cpl);
        return rc;
    }
    q->created = true;
    return 0;
}

int unvme_delete_io_queue(struct unvme *u, struct unvme_queue *q, unsigned timeout_ms)
{
    struct nvme_sqe sq = {.cdw0 = NVME_ADM_DELETE_SQ, .cdw10 = NVME_SET(q->qid, QUEUE_QID)};
    struct nvme_sqe cq = {.cdw0 = NVME_ADM_DELETE_CQ, .cdw10 = sq.cdw10};
    struct unvme_cpl cpl;
    int rc;

    if (!q->created) {
        return 0;
    }
    q->created = false;
    rc = unvme_admin_locked(u, &sq, NULL, 0, timeout_ms, &cpl);
    if (rc == 0) {
        rc = unvme_admin_locked(u, &cq, NULL, 0, timeout_ms, &cpl);
    }
    return rc;
}

/* ---- Identify parsers (pure) ------------------------------------------------------- */

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)le16(p) | ((uint32_t)le16(p + 2) << 16);
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32);
}

/* Copy an ASCII field, dropping trailing spaces and NULs; dst holds len + 1. */
static void copy_ascii(char *dst, const uint8_t *src, size_t len)
{
    while (len && (src[len - 1] == ' ' || src[len - 1] == '\0')) {
        len--;
    }
    for (size_t i = 0; i < len; i++) {
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
    }
    dst[len] = '\0';
}

/* Offset of a field of the Identify Controller / Namespace data. */
#define IDC(field)  offsetof(struct nvme_id_ctrl, field)
#define IDNS(field) offsetof(struct nvme_id_ns, field)

/* An SQES/CQES byte allows entries of 2^log2 bytes. */
static bool qes_allows(uint8_t qes, unsigned log2)
{
    return NVME_GET(qes, QES_MIN) <= log2 && NVME_GET(qes, QES_MAX) >= log2;
}

int unvme_parse_id_ctrl(const uint8_t *buf, struct unvme_info *info)
{
    info->vid = le16(buf + IDC(vid));
    copy_ascii(info->serial, buf + IDC(sn), NVME_SN_LEN);
    copy_ascii(info->model, buf + IDC(mn), NVME_MN_LEN);
    copy_ascii(info->firmware, buf + IDC(fr), NVME_FR_LEN);
    info->mdts = buf[IDC(mdts)];
    info->oncs = le16(buf + IDC(oncs));
    info->vwc = (buf[IDC(vwc)] & NVME_VWC_PRESENT) != 0;
    info->nn = le32(buf + IDC(nn));
    if (!qes_allows(buf[IDC(sqes)], NVME_SQES_LOG2) ||
        !qes_allows(buf[IDC(cqes)], NVME_CQES_LOG2)) {
        return -EINVAL;
    }
    return 0;
}

int unvme_parse_id_ns(const uint8_t *buf, struct unvme_info *info)
{
    uint8_t flbas = buf[IDNS(flbas)];
    unsigned fmt = NVME_GET(flbas, FLBAS_LO) | NVME_GET(flbas, FLBAS_HI) << 4;
    uint32_t lbaf;
    unsigned lbads;

    if (fmt > buf[IDNS(nlbaf)] || fmt >= NVME_LBAF_MAX) {
        return -EINVAL;
    }
    lbaf = le32(buf + IDNS(lbaf) + sizeof(uint32_t) * fmt);
    lbads = NVME_GET(lbaf, LBAF_LBADS);
    info->nsze = le64(buf + IDNS(nsze));
    if (info->nsze == 0 || NVME_GET(lbaf, LBAF_MS) != 0 || lbads < 9 || lbads > 16) {
        return -EINVAL; /* inactive, metadata formats, or an absurd block size */
    }
    info->lba_size = 1u << lbads;
    return 0;
}

int unvme_identify_all(struct unvme *u)
{
    struct nvme_sqe c = {.cdw0 = NVME_ADM_IDENTIFY};
    uint8_t *buf = malloc(NVME_IDENTIFY_SIZE);
    int rc;

    if (!buf) {
        return -ENOMEM;
    }
    c.cdw10 = NVME_CNS_CTRL;
    rc = must(u, &c, buf, NVME_IDENTIFY_SIZE, "Identify Controller", NULL);
    if (rc == 0 && unvme_parse_id_ctrl(buf, &u->info) < 0) {
        unvme_logf(u, VDX_LOG_ERR, "Identify Controller: unsupported SQES/CQES");
        rc = -EINVAL;
    }
    if (rc == 0 && (u->opts.nsid > u->info.nn)) {
        unvme_logf(u, VDX_LOG_ERR, "namespace %u does not exist (NN %u)", u->opts.nsid,
                   u->info.nn);
        rc = -EINVAL;
    }
    if (rc == 0) {
        c.cdw10 = NVME_CNS_NS;
        c.nsid = u->opts.nsid;
        rc = must(u, &c, buf, NVME_IDENTIFY_SIZE, "Identify Namespace", NULL);
    }
    if (rc == 0 && unvme_parse_id_ns(buf, &u->info) < 0) {
        unvme_logf(u, VDX_LOG_ERR, "namespace %u is inactive or has an unsupported format",
                   u->opts.nsid);
        rc = -EINVAL;
    }
    free(buf);
    return rc;
}
