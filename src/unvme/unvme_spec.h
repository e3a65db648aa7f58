/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVMe wire formats used by the unvme driver: controller registers,
 * submission and completion queue entries, opcodes, status codes and the
 * Identify data fields the driver reads. Values are from the NVM Express Base
 * Specification 2.0 (cited "Base 2.0 §x") and the NVM Command Set
 * Specification 1.0 ("NVM-CS 1.0 §x"). Self-contained: only <stdint.h>.
 * Everything is little-endian on the wire; the driver is built for
 * little-endian hosts only (checked below).
 */
#ifndef VFIO_DEXT_UNVME_SPEC_H
#define VFIO_DEXT_UNVME_SPEC_H

#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "unvme reads NVMe structures in place: little-endian hosts only");

/* ---- Controller registers (Base 2.0 §3.1.3, Figure 35) -------------------- */

#define NVME_REG_CAP   0x00u /* 64-bit Controller Capabilities */
#define NVME_REG_VS    0x08u /* Version */
#define NVME_REG_INTMS 0x0cu
#define NVME_REG_INTMC 0x10u
#define NVME_REG_CC    0x14u /* Controller Configuration */
#define NVME_REG_CSTS  0x1cu /* Controller Status */
#define NVME_REG_NSSR  0x20u
#define NVME_REG_AQA   0x24u /* Admin Queue Attributes */
#define NVME_REG_ASQ   0x28u /* 64-bit Admin SQ base */
#define NVME_REG_ACQ   0x30u /* 64-bit Admin CQ base */
#define NVME_REG_DBS   0x1000u /* first doorbell (Base 2.0 §3.1.3.22-23) */

/* CAP fields (Base 2.0 §3.1.3.1). */
#define NVME_CAP_MQES(cap)   ((uint32_t)((cap) & 0xffffu))        /* 0's based */
#define NVME_CAP_CQR(cap)    ((uint32_t)(((cap) >> 16) & 0x1u))
#define NVME_CAP_TO(cap)     ((uint32_t)(((cap) >> 24) & 0xffu))  /* 500 ms units */
#define NVME_CAP_DSTRD(cap)  ((uint32_t)(((cap) >> 32) & 0xfu))
#define NVME_CAP_CSS(cap)    ((uint32_t)(((cap) >> 37) & 0xffu))
#define NVME_CAP_MPSMIN(cap) ((uint32_t)(((cap) >> 48) & 0xfu))
#define NVME_CAP_MPSMAX(cap) ((uint32_t)(((cap) >> 52) & 0xfu))
#define NVME_CAP_CSS_NVM     0x01u /* bit 37: NVM Command Set */

/* CC fields (Base 2.0 §3.1.3.5). */
#define NVME_CC_EN            (1u << 0)
#define NVME_CC_CSS_NVM       (0u << 4)
#define NVME_CC_MPS(shift)    ((uint32_t)((shift) - 12u) << 7)  /* page = 2^(12+MPS) */
#define NVME_CC_AMS_RR        (0u << 11)
#define NVME_CC_SHN_MASK      (3u << 14)
#define NVME_CC_SHN_NORMAL    (1u << 14)
#define NVME_CC_IOSQES(log2)  ((uint32_t)(log2) << 16)
#define NVME_CC_IOCQES(log2)  ((uint32_t)(log2) << 20)

/* CSTS fields (Base 2.0 §3.1.3.6). */
#define NVME_CSTS_RDY            (1u << 0)
#define NVME_CSTS_CFS            (1u << 1)
#define NVME_CSTS_SHST_MASK      (3u << 2)
#define NVME_CSTS_SHST_COMPLETE  (2u << 2)

/* AQA (Base 2.0 §3.1.3.8): 0's based sizes. */
#define NVME_AQA(sq_entries, cq_entries) \
    ((uint32_t)((sq_entries) - 1u) | ((uint32_t)((cq_entries) - 1u) << 16))

/* Doorbells with CAP.DSTRD = d (Base 2.0 §3.1.3.22, 3.1.3.23). */
#define NVME_SQ_TAIL_DB(qid, d) (NVME_REG_DBS + (2u * (qid)) * (4u << (d)))
#define NVME_CQ_HEAD_DB(qid, d) (NVME_REG_DBS + (2u * (qid) + 1u) * (4u << (d)))

/* ---- Queue entries (Base 2.0 §4.2, §4.6) ----------------------------------- */

#define NVME_PAGE_SHIFT 12u /* CC.MPS = 0: 4 KiB memory pages */
#define NVME_PAGE_SIZE  (1u << NVME_PAGE_SHIFT)
#define NVME_SQES_LOG2  6u  /* 64-byte SQ entries */
#define NVME_CQES_LOG2  4u  /* 16-byte CQ entries */

/* Submission Queue Entry, common format (Base 2.0 §4.2, Figure 88). */
struct nvme_sqe {
    uint32_t cdw0;  /* opcode 7:0, FUSE 9:8, PSDT 15:14, CID 31:16 */
    uint32_t nsid;
    uint32_t cdw2;
    uint32_t cdw3;
    uint64_t mptr;
    uint64_t prp1;  /* Data Pointer: PRP Entry 1 */
    uint64_t prp2;  /* PRP Entry 2 or PRP List pointer */
    uint32_t cdw10;
    uint32_t cdw11;
    uint32_t cdw12;
    uint32_t cdw13;
    uint32_t cdw14;
    uint32_t cdw15;
};
_Static_assert(sizeof(struct nvme_sqe) == 64, "Base 2.0 §4.2: SQ entry is 64 bytes");
_Static_assert(__builtin_offsetof(struct nvme_sqe, prp1) == 24, "Base 2.0 Fig 88: DPTR");
_Static_assert(__builtin_offsetof(struct nvme_sqe, cdw10) == 40, "Base 2.0 Fig 88: CDW10");

#define NVME_SQE_CDW0(opc, cid) ((uint32_t)(opc) | ((uint32_t)(cid) << 16))
#define NVME_SQE_OPC(cdw0)      ((uint8_t)((cdw0) & 0xffu))

/* Completion Queue Entry (Base 2.0 §4.6, Figure 90). */
struct nvme_cqe {
    uint32_t dw0;    /* command specific */
    uint32_t dw1;
    uint16_t sqhd;   /* SQ Head Pointer */
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* bit 0: Phase Tag; 15:1 Status Field */
};
_Static_assert(sizeof(struct nvme_cqe) == 16, "Base 2.0 §4.6: CQ entry is 16 bytes");
_Static_assert(__builtin_offsetof(struct nvme_cqe, cid) == 12, "Base 2.0 Fig 90: DW3");

/* Status Field (Base 2.0 §4.6.1, Figure 93), taken from cqe.status. */
#define NVME_CQE_PHASE(st) ((st) & 0x1u)
#define NVME_CQE_SC(st)    ((uint8_t)(((st) >> 1) & 0xffu))
#define NVME_CQE_SCT(st)   ((uint8_t)(((st) >> 9) & 0x7u))
#define NVME_CQE_MORE(st)  (((st) >> 14) & 0x1u)
#define NVME_CQE_DNR(st)   (((st) >> 15) & 0x1u)

/* A PRP entry or list (Base 2.0 §4.1.1): one list page holds 512 entries. */
#define NVME_PRPS_PER_PAGE (NVME_PAGE_SIZE / 8u)

/* Opcode bits 1:0 give the data direction (Base 2.0 §5 / NVM-CS 1.0 §3, Fig 10). */
#define NVME_OPC_XFER(opc)  ((opc) & 0x3u)
#define NVME_XFER_NONE      0u
#define NVME_XFER_TO_DEV    1u /* host to controller */
#define NVME_XFER_FROM_DEV  2u /* controller to host */
#define NVME_XFER_BIDI      3u

/* ---- Admin commands (Base 2.0 §5, Figure 138) ------------------------------ */

enum nvme_admin_opc {
    NVME_ADM_DELETE_SQ = 0x00,
    NVME_ADM_CREATE_SQ = 0x01,
    NVME_ADM_GET_LOG_PAGE = 0x02,
    NVME_ADM_DELETE_CQ = 0x04,
    NVME_ADM_CREATE_CQ = 0x05,
    NVME_ADM_IDENTIFY = 0x06,
    NVME_ADM_ABORT = 0x08,
    NVME_ADM_SET_FEATURES = 0x09,
    NVME_ADM_GET_FEATURES = 0x0a,
    NVME_ADM_ASYNC_EVENT = 0x0c,
};

/* Create I/O CQ / SQ (Base 2.0 §5.4, §5.5). */
#define NVME_QUEUE_CDW10(qid, entries) ((uint32_t)(qid) | ((uint32_t)((entries) - 1u) << 16))
#define NVME_CQ_PC          (1u << 0) /* physically contiguous */
#define NVME_CQ_IEN         (1u << 1) /* interrupts enabled */
#define NVME_CQ_IV(v)       ((uint32_t)(v) << 16)
#define NVME_SQ_PC          (1u << 0)
#define NVME_SQ_CQID(cqid)  ((uint32_t)(cqid) << 16)

/* Identify (Base 2.0 §5.17): CDW10.CNS. */
#define NVME_CNS_NS         0x00u
#define NVME_CNS_CTRL       0x01u
#define NVME_CNS_ACTIVE_NS  0x02u
#define NVME_IDENTIFY_SIZE  4096u

/* Identify Controller fields (Base 2.0 §5.17.2.1, Figure 275). */
#define NVME_IDC_VID   0u
#define NVME_IDC_SN    4u   /* 20 ASCII bytes */
#define NVME_IDC_MN    24u  /* 40 ASCII bytes */
#define NVME_IDC_FR    64u  /* 8 ASCII bytes */
#define NVME_IDC_MDTS  77u  /* 2^n units of CAP.MPSMIN; 0: no limit */
#define NVME_IDC_CNTLID 78u
#define NVME_IDC_VER   80u
#define NVME_IDC_SQES  512u
#define NVME_IDC_CQES  513u
#define NVME_IDC_NN    516u
#define NVME_IDC_ONCS  520u
#define NVME_IDC_VWC   525u
#define NVME_SN_LEN    20u
#define NVME_MN_LEN    40u
#define NVME_FR_LEN    8u

/* ONCS bits (Base 2.0 Figure 275). */
#define NVME_ONCS_COMPARE      (1u << 0)
#define NVME_ONCS_DSM          (1u << 2)
#define NVME_ONCS_WRITE_ZEROES (1u << 3)

/* Identify Namespace fields (NVM-CS 1.0 §4.1.5.1, Figure 97). */
#define NVME_IDNS_NSZE  0u
#define NVME_IDNS_NCAP  8u
#define NVME_IDNS_NLBAF 25u
#define NVME_IDNS_FLBAS 26u
#define NVME_IDNS_LBAF0 128u /* 4 bytes each: MS 15:0, LBADS 23:16, RP 25:24 */

/* Get Log Page (Base 2.0 §5.16): CDW10 LID 7:0, NUMDL 31:16; CDW11 NUMDU 15:0. */
#define NVME_LOG_ERROR     0x01u
#define NVME_LOG_SMART     0x02u
#define NVME_LOG_FW_SLOT   0x03u

/* Features (Base 2.0 §5.27.1, Figure 317). */
#define NVME_FEAT_ARBITRATION   0x01u
#define NVME_FEAT_POWER_MGMT    0x02u
#define NVME_FEAT_TEMP_THRESH   0x04u
#define NVME_FEAT_VWC           0x06u
#define NVME_FEAT_NUM_QUEUES    0x07u
#define NVME_FEAT_IRQ_COALESCE  0x08u
#define NVME_FEAT_IRQ_CONFIG    0x09u
#define NVME_FEAT_SAVE          (1u << 31) /* Set Features CDW10.SV */

/* ---- NVM command set (NVM-CS 1.0 §3, Figure 10) ----------------------------- */

enum nvme_io_opc {
    NVME_IO_FLUSH = 0x00,
    NVME_IO_WRITE = 0x01,
    NVME_IO_READ = 0x02,
    NVME_IO_WRITE_UNCOR = 0x04,
    NVME_IO_COMPARE = 0x05,
    NVME_IO_WRITE_ZEROES = 0x08,
    NVME_IO_DSM = 0x09,
};

/* CDW12 of Read/Write/Compare/Write Zeroes (NVM-CS 1.0 §3.2.3, §3.2.6). */
#define NVME_RW_NLB(nlb)   ((uint32_t)((nlb) - 1u) & 0xffffu) /* 0's based */
#define NVME_RW_MAX_NLB    65536u
#define NVME_RW_DEAC       (1u << 25) /* Write Zeroes: deallocate */
#define NVME_RW_FUA        (1u << 30)

/* Dataset Management (NVM-CS 1.0 §3.2.1): CDW10 NR 7:0 (0's based), CDW11.AD. */
#define NVME_DSM_AD        (1u << 2)
#define NVME_DSM_MAX_RANGES 256u

struct nvme_dsm_range {
    uint32_t cattr;
    uint32_t nlb;  /* length in logical blocks (1's based) */
    uint64_t slba;
};
_Static_assert(sizeof(struct nvme_dsm_range) == 16, "NVM-CS 1.0 Figure 40: 16-byte range");

/* ---- Status codes (Base 2.0 §4.6.1.2) ------------------------------------- */

#define NVME_SCT_GENERIC  0x0u
#define NVME_SCT_CMD      0x1u /* command specific */
#define NVME_SCT_MEDIA    0x2u /* media and data integrity errors */

/* Generic (Figure 94 and NVM-CS 1.0 Figure 27). */
#define NVME_SC_SUCCESS          0x00u
#define NVME_SC_INVALID_OPCODE   0x01u
#define NVME_SC_INVALID_FIELD    0x02u
#define NVME_SC_CID_CONFLICT     0x03u
#define NVME_SC_DATA_XFER_ERROR  0x04u
#define NVME_SC_INTERNAL         0x06u
#define NVME_SC_ABORT_REQ        0x07u
#define NVME_SC_ABORT_SQ_DELETED 0x08u
#define NVME_SC_INVALID_NS       0x0bu
#define NVME_SC_CMD_SEQ_ERROR    0x0cu
#define NVME_SC_PRP_OFFSET       0x13u
#define NVME_SC_LBA_RANGE        0x80u
#define NVME_SC_CAP_EXCEEDED     0x81u

/* Command specific (Figure 95). */
#define NVME_SC_CQ_INVALID       0x00u
#define NVME_SC_INVALID_QID      0x01u
#define NVME_SC_INVALID_QSIZE    0x02u
#define NVME_SC_INVALID_VECTOR   0x08u
#define NVME_SC_INVALID_QDELETE  0x0cu

/* Media and data integrity (NVM-CS 1.0 Figure 29). */
#define NVME_SC_COMPARE_FAILED   0x85u

#endif /* VFIO_DEXT_UNVME_SPEC_H */
