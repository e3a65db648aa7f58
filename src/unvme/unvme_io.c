/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * unvme: the synchronous NVM command helpers (NVM-CS 1.0 §3). Each builds
 * one SQE and runs it through unvme_io_raw() (copy variant, one slot).
 */
#include <errno.h>
#include <string.h>

#include "unvme/unvme_int.h"

/* Read, Write, Compare: nlb blocks at slba with data in buf. */
static int rw_sync(struct unvme_queue *q, uint8_t opc, uint64_t slba, uint32_t nlb,
                   void *buf, uint16_t *status)
{
    struct nvme_sqe c;

    if (!q || !buf || nlb == 0 || nlb > NVME_RW_MAX_NLB) {
        return -EINVAL;
    }
    unvme_cmd_rw(&c, opc, q->u->opts.nsid, slba, nlb);
    return unvme_io_raw(q, &c, buf, (size_t)nlb * q->u->info.lba_size, NULL, status);
}

int unvme_read(struct unvme_queue *q, uint64_t slba, uint32_t nlb, void *buf,
               uint16_t *status)
{
    return rw_sync(q, NVME_IO_READ, slba, nlb, buf, status);
}

int unvme_write(struct unvme_queue *q, uint64_t slba, uint32_t nlb, const void *buf,
                uint16_t *status)
{
    /* Writes only read buf (opcode direction: host to controller). */
    return rw_sync(q, NVME_IO_WRITE, slba, nlb, (void *)(uintptr_t)buf, status);
}

int unvme_compare(struct unvme_queue *q, uint64_t slba, uint32_t nlb, const void *buf,
                  uint16_t *status)
{
    return rw_sync(q, NVME_IO_COMPARE, slba, nlb, (void *)(uintptr_t)buf, status);
}

int unvme_flush(struct unvme_queue *q, uint16_t *status)
{
    struct nvme_sqe c = {.cdw0 = NVME_IO_FLUSH};

    if (!q) {
        return -EINVAL;
    }
    c.nsid = q->u->opts.nsid;
    return unvme_io_raw(q, &c, NULL, 0, NULL, status);
}

int unvme_write_zeroes(struct unvme_queue *q, uint64_t slba, uint32_t nlb, bool deallocate,
                       uint16_t *status)
{
    struct nvme_sqe c;

    if (!q || nlb == 0 || nlb > NVME_RW_MAX_NLB) {
        return -EINVAL;
    }
    unvme_cmd_rw(&c, NVME_IO_WRITE_ZEROES, q->u->opts.nsid, slba, nlb);
    if (deallocate) {
        c.cdw12 |= NVME_RW_DEAC;
    }
    return unvme_io_raw(q, &c, NULL, 0, NULL, status);
}

int unvme_dsm_deallocate(struct unvme_queue *q, uint64_t slba, uint32_t nlb,
                         uint16_t *status)
{
    struct nvme_dsm_range r = {.cattr = 0, .nlb = nlb, .slba = slba};
    struct nvme_sqe c = {.cdw0 = NVME_IO_DSM, .cdw10 = 0, .cdw11 = NVME_DSM_AD};

    if (!q || nlb == 0) {
        return -EINVAL;
    }
    c.nsid = q->u->opts.nsid; /* CDW10.NR = 0: one range */
    return unvme_io_raw(q, &c, &r, sizeof(r), NULL, status);
}
