/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NVMe wire format: the one definition shared by the simulated controller
 * (src/devices/nvme*, "sim:nvme") and the user-space driver (src/unvme/).
 * Registers, queue entries, opcodes, status codes, Identify and log page
 * structures and the command fields either side builds or parses are
 * defined here once (a few feature fields only the simulator decodes are
 * spelled out at their one use in nvme.c). What is a choice of one side (the
 * simulator's limits and BAR layout, the driver's page size) lives in that
 * side's header, which includes this one.
 *
 * References, cited by section and figure where those were checked and by
 * structure name otherwise:
 *   "Base"   NVM Express Base Specification, Revision 2.0
 *   "NVM CS" NVM Express NVM Command Set Specification, Revision 1.0
 *   "PCIe"   NVMe over PCIe Transport Specification, Revision 1.0
 *
 * Conventions (the same as libnvme's):
 *   - A multi-bit field FOO of a register or command dword has NVME_FOO_SHIFT
 *     and NVME_FOO_MASK (the mask is NOT shifted). Read it with
 *     NVME_GET(value, FOO) and build it with NVME_SET(x, FOO) (NVME_SET64 for
 *     fields of the 64-bit CAP register). Named values of such a field
 *     (NVME_CC_SHN_NORMAL, NVME_CSTS_SHST_COMPLETE, ...) are field values,
 *     not shifted.
 *   - Single-bit flags are given in place (NVME_CC_EN, NVME_CSTS_RDY,
 *     NVME_RW_FUA, ...): test them with &, set them with |.
 *   - 0's based fields (queue sizes, NLB, NUMD, NR, MQES) hold the raw field
 *     value; converting to a count is the caller's (+ 1 / - 1), noted at
 *     each such field.
 *   - Status values NVME_SC_* are SCT << 8 | SC, i.e. bits 10:0 of the Status
 *     Field, as QEMU and Linux define them; add NVME_SF_DNR where wanted.
 *
 * Byte order: NVMe is little-endian. The structs below are the wire layout
 * in host byte order, which is the wire order only on little-endian hosts;
 * the build fails elsewhere.
 *
 * Self-contained: only <stdint.h> and <stddef.h>; every size and offset
 * taken from a specification is checked with _Static_assert.
 */
#ifndef VFIO_DEXT_NVME_SPEC_H
#define VFIO_DEXT_NVME_SPEC_H

#include <stddef.h>
#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the NVMe structures below are little-endian wire layouts");

/* ---- Field access ----------------------------------------------------------------- */

#define NVME_GET(v, f)   (((v) >> NVME_##f##_SHIFT) & NVME_##f##_MASK)
#define NVME_SET(x, f)   (((uint32_t)(x)&NVME_##f##_MASK) << NVME_##f##_SHIFT)
#define NVME_SET64(x, f) (((uint64_t)(x)&NVME_##f##_MASK) << NVME_##f##_SHIFT)

/* PCI class code of an NVMe controller: mass storage, NVM, NVM Express
 * (PCIe §2.1, Class Code register). */
#define NVME_PCI_CLASS_CODE 0x010802u

/* ======================================================================== */
/* Controller properties (Base §3.1.3 "Controller Properties")             */
/* ======================================================================== */

#define NVME_REG_CAP   0x00u /* 8 bytes, RO */
#define NVME_REG_VS    0x08u
#define NVME_REG_INTMS 0x0cu /* RW1S */
#define NVME_REG_INTMC 0x10u /* RW1C */
#define NVME_REG_CC    0x14u
#define NVME_REG_CSTS  0x1cu
#define NVME_REG_NSSR  0x20u
#define NVME_REG_AQA   0x24u
#define NVME_REG_ASQ   0x28u   /* 8 bytes */
#define NVME_REG_ACQ   0x30u   /* 8 bytes */
#define NVME_REG_DBS   0x1000u /* first doorbell (PCIe §3.1.2) */

/* Properties 00h..37h as a struct, to check the offsets above. */
struct nvme_regs {
    uint64_t cap;
    uint32_t vs;
    uint32_t intms;
    uint32_t intmc;
    uint32_t cc;
    uint32_t rsvd18;
    uint32_t csts;
    uint32_t nssr;
    uint32_t aqa;
    uint64_t asq;
    uint64_t acq;
};
_Static_assert(offsetof(struct nvme_regs, vs) == NVME_REG_VS, "Base §3.1.3.2 VS");
_Static_assert(offsetof(struct nvme_regs, intms) == NVME_REG_INTMS, "Base §3.1.3.3 INTMS");
_Static_assert(offsetof(struct nvme_regs, intmc) == NVME_REG_INTMC, "Base §3.1.3.4 INTMC");
_Static_assert(offsetof(struct nvme_regs, cc) == NVME_REG_CC, "Base §3.1.3.5 CC");
_Static_assert(offsetof(struct nvme_regs, csts) == NVME_REG_CSTS, "Base §3.1.3.6 CSTS");
_Static_assert(offsetof(struct nvme_regs, nssr) == NVME_REG_NSSR, "Base §3.1.3.7 NSSR");
_Static_assert(offsetof(struct nvme_regs, aqa) == NVME_REG_AQA, "Base §3.1.3.8 AQA");
_Static_assert(offsetof(struct nvme_regs, asq) == NVME_REG_ASQ, "Base §3.1.3.9 ASQ");
_Static_assert(offsetof(struct nvme_regs, acq) == NVME_REG_ACQ, "Base §3.1.3.10 ACQ");
_Static_assert(sizeof(struct nvme_regs) == 0x38, "Base §3.1.3: properties 00h..37h");

/* CAP, Controller Capabilities (Base §3.1.3.1) */
#define NVME_CAP_MQES_SHIFT   0 /* 0's based: entries - 1 */
#define NVME_CAP_MQES_MASK    0xffffu
#define NVME_CAP_CQR          (1ull << 16) /* contiguous queues required */
#define NVME_CAP_AMS_SHIFT    17
#define NVME_CAP_AMS_MASK     0x3u
#define NVME_CAP_TO_SHIFT     24 /* 500 ms units */
#define NVME_CAP_TO_MASK      0xffu
#define NVME_CAP_TO_UNIT_MS   500u
#define NVME_CAP_DSTRD_SHIFT  32 /* doorbell stride: 4 << DSTRD bytes */
#define NVME_CAP_DSTRD_MASK   0xfu
#define NVME_CAP_NSSRS        (1ull << 36)
#define NVME_CAP_CSS_SHIFT    37
#define NVME_CAP_CSS_MASK     0xffu
#define NVME_CAP_CSS_NVM      0x01u /* CSS bit 0 (CAP bit 37): NVM command set */
#define NVME_CAP_CSS_IOCS     0x40u /* CSS bit 6 (CAP bit 43): I/O command sets */
#define NVME_CAP_CSS_NOIO     0x80u /* CSS bit 7 (CAP bit 44): admin only */
#define NVME_CAP_MPSMIN_SHIFT 48
#define NVME_CAP_MPSMIN_MASK  0xfu
#define NVME_CAP_MPSMAX_SHIFT 52
#define NVME_CAP_MPSMAX_MASK  0xfu

/* Memory page size = 2^(12 + MPS) for CC.MPS, CAP.MPSMIN and CAP.MPSMAX;
 * MDTS is in units of 2^(12 + CAP.MPSMIN) (Base §3.1.3.5). */
#define NVME_MPS_BASE_SHIFT 12u

/* VS, Version (Base §3.1.3.2): MJR 31:16, MNR 15:8, TER 7:0 */
#define NVME_VS(mjr, mnr, ter) (((uint32_t)(mjr) << 16) | ((uint32_t)(mnr) << 8) | (ter))

/* CC, Controller Configuration (Base §3.1.3.5) */
#define NVME_CC_EN           0x00000001u
#define NVME_CC_CSS_SHIFT    4
#define NVME_CC_CSS_MASK     0x7u
#define NVME_CC_CSS_NVM      0u /* NVM command set */
#define NVME_CC_CSS_IOCS     6u /* all supported I/O command sets */
#define NVME_CC_CSS_ADMIN    7u /* admin command set only */
#define NVME_CC_MPS_SHIFT    7
#define NVME_CC_MPS_MASK     0xfu
#define NVME_CC_AMS_SHIFT    11
#define NVME_CC_AMS_MASK     0x7u
#define NVME_CC_AMS_RR       0u /* round robin */
#define NVME_CC_SHN_SHIFT    14
#define NVME_CC_SHN_MASK     0x3u
#define NVME_CC_SHN_NONE     0u
#define NVME_CC_SHN_NORMAL   1u
#define NVME_CC_SHN_ABRUPT   2u
#define NVME_CC_IOSQES_SHIFT 16 /* log2 of the I/O SQ entry size */
#define NVME_CC_IOSQES_MASK  0xfu
#define NVME_CC_IOCQES_SHIFT 20 /* log2 of the I/O CQ entry size */
#define NVME_CC_IOCQES_MASK  0xfu

/* CSTS, Controller Status (Base §3.1.3.6) */
#define NVME_CSTS_RDY            0x00000001u
#define NVME_CSTS_CFS            0x00000002u /* controller fatal status */
#define NVME_CSTS_SHST_SHIFT     2
#define NVME_CSTS_SHST_MASK      0x3u
#define NVME_CSTS_SHST_NORMAL    0u
#define NVME_CSTS_SHST_OCCURRING 1u
#define NVME_CSTS_SHST_COMPLETE  2u

/* AQA, Admin Queue Attributes (Base §3.1.3.8): 0's based queue sizes */
#define NVME_AQA_ASQS_SHIFT  0
#define NVME_AQA_ASQS_MASK   0xfffu
#define NVME_AQA_ACQS_SHIFT  16
#define NVME_AQA_ACQS_MASK   0xfffu
#define NVME_AQA_MAX_ENTRIES 4096u /* 12-bit 0's based fields */

/* ASQ, ACQ (Base §3.1.3.9, §3.1.3.10): bits 11:0 reserved */
#define NVME_AQ_BASE_MASK (~0xfffull)

/* Doorbells (PCIe §3.1.2 "SQ y Tail Doorbell", "CQ y Head Doorbell"): the
 * SQ y tail at DBS + 2y * stride, the CQ y head at DBS + (2y + 1) * stride,
 * stride = 4 << CAP.DSTRD bytes; the value is in bits 15:0. */
#define NVME_DB_STRIDE(dstrd)       (4u << (dstrd))
#define NVME_SQ_TAIL_DB(qid, dstrd) (NVME_REG_DBS + (2u * (qid)) * NVME_DB_STRIDE(dstrd))
#define NVME_CQ_HEAD_DB(qid, dstrd)                                                        \
    (NVME_REG_DBS + (2u * (qid) + 1u) * NVME_DB_STRIDE(dstrd))
_Static_assert(NVME_SQ_TAIL_DB(0, 0) == 0x1000u, "PCIe §3.1.2: SQ0TDBL at 1000h");
_Static_assert(NVME_CQ_HEAD_DB(0, 0) == 0x1004u, "PCIe §3.1.2: CQ0HDBL at 1000h + 4");
_Static_assert(NVME_CQ_HEAD_DB(1, 0) == 0x100cu, "PCIe §3.1.2: CQ1HDBL at 100Ch");
_Static_assert(NVME_SQ_TAIL_DB(1, 1) == 0x1010u, "PCIe §3.1.2: SQ1TDBL, DSTRD 1");

/* ======================================================================== */
/* Queue entries (Base §3.3.3 "Submission Queue Entry", "Completion Queue  */
/* Entry")                                                                 */
/* ======================================================================== */

#define NVME_SQE_SIZE  64u
#define NVME_CQE_SIZE  16u
#define NVME_SQES_LOG2 6u /* CC.IOSQES */
#define NVME_CQES_LOG2 4u /* CC.IOCQES */

/* Common Command Format (Base §3.3.3.1, Figure 88). */
struct nvme_sqe {
    uint32_t cdw0; /* OPC 7:0, FUSE 9:8, PSDT 15:14, CID 31:16 */
    uint32_t nsid;
    uint32_t cdw2;
    uint32_t cdw3;
    uint64_t mptr;
    uint64_t prp1; /* DPTR: PRP Entry 1 */
    uint64_t prp2; /* DPTR: PRP Entry 2 or a PRP List pointer */
    uint32_t cdw10;
    uint32_t cdw11;
    uint32_t cdw12;
    uint32_t cdw13;
    uint32_t cdw14;
    uint32_t cdw15;
};
_Static_assert(sizeof(struct nvme_sqe) == NVME_SQE_SIZE, "Base §3.3.3.1: 64-byte SQE");
_Static_assert(1u << NVME_SQES_LOG2 == NVME_SQE_SIZE, "CC.IOSQES = 6");
_Static_assert(offsetof(struct nvme_sqe, nsid) == 4, "Base Figure 88: NSID");
_Static_assert(offsetof(struct nvme_sqe, mptr) == 16, "Base Figure 88: MPTR");
_Static_assert(offsetof(struct nvme_sqe, prp1) == 24, "Base Figure 88: DPTR");
_Static_assert(offsetof(struct nvme_sqe, prp2) == 32, "Base Figure 88: DPTR");
_Static_assert(offsetof(struct nvme_sqe, cdw10) == 40, "Base Figure 88: CDW10");
_Static_assert(offsetof(struct nvme_sqe, cdw15) == 60, "Base Figure 88: CDW15");

/* Command Dword 0 (Base §3.3.3.1) */
#define NVME_SQE_OPC_SHIFT  0
#define NVME_SQE_OPC_MASK   0xffu
#define NVME_SQE_FUSE_SHIFT 8
#define NVME_SQE_FUSE_MASK  0x3u
#define NVME_SQE_PSDT_SHIFT 14
#define NVME_SQE_PSDT_MASK  0x3u
#define NVME_SQE_CID_SHIFT  16
#define NVME_SQE_CID_MASK   0xffffu
#define NVME_PSDT_PRP       0u /* PRPs are used for the data transfer */

/* Opcode bits 1:0 give the data direction of admin and I/O commands
 * (Base §5, opcodes for admin commands; NVM CS §3, opcodes for NVM). */
#define NVME_OPC_XFER_SHIFT     0
#define NVME_OPC_XFER_MASK      0x3u
#define NVME_XFER_NONE          0u
#define NVME_XFER_HOST_TO_CTRL  1u
#define NVME_XFER_CTRL_TO_HOST  2u
#define NVME_XFER_BIDIRECTIONAL 3u

/* Common Completion Queue Entry (Base §3.3.3.2, Figure 90). */
struct nvme_cqe {
    uint32_t dw0; /* command specific */
    uint32_t dw1;
    uint16_t sqhd; /* SQ head pointer */
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* DW3 31:16: phase tag bit 0, Status Field 15:1 */
};
_Static_assert(sizeof(struct nvme_cqe) == NVME_CQE_SIZE, "Base §3.3.3.2: 16-byte CQE");
_Static_assert(1u << NVME_CQES_LOG2 == NVME_CQE_SIZE, "CC.IOCQES = 4");
_Static_assert(offsetof(struct nvme_cqe, sqhd) == 8, "Base Figure 90: DW2 SQHD");
_Static_assert(offsetof(struct nvme_cqe, sqid) == 10, "Base Figure 90: DW2 SQID");
_Static_assert(offsetof(struct nvme_cqe, cid) == 12, "Base Figure 90: DW3 CID");
_Static_assert(offsetof(struct nvme_cqe, status) == 14, "Base Figure 90: DW3 P and SF");

/* nvme_cqe.status */
#define NVME_CQE_P        0x0001u /* phase tag */
#define NVME_CQE_SF_SHIFT 1
#define NVME_CQE_SF_MASK  0x7fffu

/* Status Field (Base §3.3.3.2, "Status Field Definition"): SC 7:0, SCT 10:8,
 * CRD 12:11, M 13, DNR 14. */
#define NVME_SF_SC_SHIFT  0
#define NVME_SF_SC_MASK   0xffu
#define NVME_SF_SCT_SHIFT 8
#define NVME_SF_SCT_MASK  0x7u
#define NVME_SF_CRD_SHIFT 11
#define NVME_SF_CRD_MASK  0x3u
#define NVME_SF_M         0x2000u /* more information in the Error log */
#define NVME_SF_DNR       0x4000u /* do not retry */

/* A status value: Status Code Type and Status Code (bits 10:0 of the SF). */
#define NVME_STATUS(sct, sc) ((uint16_t)(NVME_SET(sct, SF_SCT) | NVME_SET(sc, SF_SC)))

#define NVME_SCT_GENERIC      0u
#define NVME_SCT_CMD_SPECIFIC 1u
#define NVME_SCT_MEDIA        2u /* media and data integrity errors */
#define NVME_SCT_PATH         3u
#define NVME_SCT_VENDOR       7u

/* Generic Command Status values (Base §3.3.3.2, Status Field Definition; 80h
 * and up: the NVM command set's, NVM CS) */
#define NVME_SC_SUCCESS            0x0000u
#define NVME_SC_INVALID_OPCODE     0x0001u
#define NVME_SC_INVALID_FIELD      0x0002u
#define NVME_SC_CID_CONFLICT       0x0003u
#define NVME_SC_DATA_XFER_ERROR    0x0004u
#define NVME_SC_INTERNAL           0x0006u
#define NVME_SC_ABORT_REQ          0x0007u
#define NVME_SC_ABORT_SQ_DELETION  0x0008u
#define NVME_SC_INVALID_NS         0x000bu /* Invalid Namespace or Format */
#define NVME_SC_CMD_SEQ_ERROR      0x000cu
#define NVME_SC_INVALID_PRP_OFFSET 0x0013u
#define NVME_SC_LBA_RANGE          0x0080u /* LBA Out of Range (NVM CS) */
#define NVME_SC_CAP_EXCEEDED       0x0081u /* Capacity Exceeded (NVM CS) */
/* Command Specific Status values (Base §3.3.3.2, Status Field Definition) */
#define NVME_SC_CQ_INVALID             0x0100u /* Completion Queue Invalid */
#define NVME_SC_INVALID_QID            0x0101u /* Invalid Queue Identifier */
#define NVME_SC_INVALID_QUEUE_SIZE     0x0102u
#define NVME_SC_AER_LIMIT              0x0105u /* Async Event Request Limit Exceeded */
#define NVME_SC_INVALID_VECTOR         0x0108u /* Invalid Interrupt Vector */
#define NVME_SC_INVALID_LOG_PAGE       0x0109u
#define NVME_SC_INVALID_QUEUE_DELETION 0x010cu
#define NVME_SC_FEAT_NOT_SAVEABLE      0x010du /* Feature Identifier Not Saveable */
#define NVME_SC_FEAT_NOT_NS_SPECIFIC   0x010fu /* Feature Not Namespace Specific */
/* Media and Data Integrity Error values (Base §3.3.3.2, Status Field
 * Definition; the NVM command set's, NVM CS) */
#define NVME_SC_WRITE_FAULT      0x0280u
#define NVME_SC_UNRECOVERED_READ 0x0281u
#define NVME_SC_COMPARE_FAILURE  0x0285u

_Static_assert(NVME_STATUS(NVME_SCT_CMD_SPECIFIC, 0x01) == NVME_SC_INVALID_QID,
               "NVME_SC_* carry SCT in bits 10:8");
_Static_assert(NVME_STATUS(NVME_SCT_MEDIA, 0x85) == NVME_SC_COMPARE_FAILURE,
               "NVME_SC_* carry SCT in bits 10:8");

/* ---- Physical Region Page entries and lists (Base §4.1.1) ----------------- */

#define NVME_PRP_ENTRY_SIZE  8u
#define NVME_PRP_OFFSET_MASK 0x3u /* PRP1's page offset is dword aligned */
#define NVME_PRP_LIST_MASK   0x7u /* a PRP list pointer is qword aligned */

/* ======================================================================== */
/* Admin commands (Base §5)                                                 */
/* ======================================================================== */

#define NVME_ADM_DELETE_SQ    0x00u
#define NVME_ADM_CREATE_SQ    0x01u
#define NVME_ADM_GET_LOG_PAGE 0x02u
#define NVME_ADM_DELETE_CQ    0x04u
#define NVME_ADM_CREATE_CQ    0x05u
#define NVME_ADM_IDENTIFY     0x06u
#define NVME_ADM_ABORT        0x08u
#define NVME_ADM_SET_FEATURES 0x09u
#define NVME_ADM_GET_FEATURES 0x0au
#define NVME_ADM_ASYNC_EVENT  0x0cu
#define NVME_ADM_DBBUF_CONFIG 0x7cu

#define NVME_NSID_ALL 0xffffffffu /* every namespace (broadcast) */

/* Create I/O Completion Queue (Base §5.4), Create I/O Submission Queue
 * (Base §5.5), Delete I/O Completion / Submission Queue (Base §5.6, §5.7).
 * CDW10: QID 15:0, QSIZE 31:16 (0's based); CDW11: PC bit 0; for a CQ IEN
 * bit 1 and IV 31:16; for an SQ QPRIO 2:1 and CQID 31:16. */
#define NVME_QUEUE_QID_SHIFT   0
#define NVME_QUEUE_QID_MASK    0xffffu
#define NVME_QUEUE_QSIZE_SHIFT 16
#define NVME_QUEUE_QSIZE_MASK  0xffffu
#define NVME_QUEUE_PC          0x1u /* physically contiguous */
#define NVME_CQ_IEN            0x2u /* interrupts enabled */
#define NVME_CQ_IV_SHIFT       16
#define NVME_CQ_IV_MASK        0xffffu
#define NVME_SQ_QPRIO_SHIFT    1
#define NVME_SQ_QPRIO_MASK     0x3u
#define NVME_SQ_CQID_SHIFT     16
#define NVME_SQ_CQID_MASK      0xffffu

/* ---- Identify (Base §5.17) ------------------------------------------------ */

/* CDW10: CNS 7:0, CNTID 31:16; CDW11: CSI 31:24 */
#define NVME_IDENTIFY_CNS_SHIFT   0
#define NVME_IDENTIFY_CNS_MASK    0xffu
#define NVME_IDENTIFY_CNTID_SHIFT 16
#define NVME_IDENTIFY_CNTID_MASK  0xffffu
#define NVME_IDENTIFY_CSI_SHIFT   24
#define NVME_IDENTIFY_CSI_MASK    0xffu
#define NVME_IDENTIFY_SIZE        4096u

#define NVME_CNS_NS           0x00u /* Identify Namespace */
#define NVME_CNS_CTRL         0x01u /* Identify Controller */
#define NVME_CNS_NS_ACTIVE    0x02u /* Active Namespace ID list */
#define NVME_CNS_NS_DESC      0x03u /* Namespace Identification Descriptor list */
#define NVME_CNS_CS_NS        0x05u /* I/O Command Set specific Identify Namespace */
#define NVME_CNS_CS_CTRL      0x06u /* I/O Command Set specific Identify Controller */
#define NVME_CNS_CS_NS_ACTIVE 0x07u /* Active Namespace ID list of a command set */
#define NVME_CSI_NVM          0x00u

/* Power State Descriptor (Base §5.17.2.1, in the Identify Controller data
 * structure). */
struct nvme_psd {
    uint16_t mp; /* centiwatts */
    uint8_t rsvd2;
    uint8_t flags; /* MXPS bit 0, NOPS bit 1 */
    uint32_t enlat;
    uint32_t exlat;
    uint8_t rrt, rrl, rwt, rwl;
    uint16_t idlp;
    uint8_t ips;
    uint8_t rsvd19;
    uint16_t actp;
    uint8_t apw_aps;
    uint8_t rsvd23[9];
};
_Static_assert(sizeof(struct nvme_psd) == 32, "Base §5.17.2.1: 32-byte power state");
_Static_assert(offsetof(struct nvme_psd, enlat) == 4, "Base §5.17.2.1: ENLAT");
_Static_assert(offsetof(struct nvme_psd, idlp) == 16, "Base §5.17.2.1: IDLP");
_Static_assert(offsetof(struct nvme_psd, actp) == 20, "Base §5.17.2.1: ACTP");

#define NVME_SN_LEN 20u /* ASCII, space padded */
#define NVME_MN_LEN 40u
#define NVME_FR_LEN 8u

/* Identify Controller data structure (Base §5.17.2.1, Figure 275) */
struct nvme_id_ctrl {
    uint16_t vid;
    uint16_t ssvid;
    char sn[NVME_SN_LEN];
    char mn[NVME_MN_LEN];
    char fr[NVME_FR_LEN];
    uint8_t rab;
    uint8_t ieee[3];
    uint8_t cmic;
    uint8_t mdts; /* 2^n units of 2^(12 + CAP.MPSMIN) bytes; 0: no limit */
    uint16_t cntlid;
    uint32_t ver;
    uint32_t rtd3r;
    uint32_t rtd3e;
    uint32_t oaes;
    uint32_t ctratt;
    uint16_t rrls;
    uint8_t rsvd102[9];
    uint8_t cntrltype;
    uint8_t fguid[16];
    uint16_t crdt[3];
    uint8_t rsvd134[122];
    uint16_t oacs;
    uint8_t acl;
    uint8_t aerl;
    uint8_t frmw;
    uint8_t lpa;
    uint8_t elpe;
    uint8_t npss;
    uint8_t avscc;
    uint8_t apsta;
    uint16_t wctemp;
    uint16_t cctemp;
    uint16_t mtfa;
    uint32_t hmpre;
    uint32_t hmmin;
    uint8_t tnvmcap[16];
    uint8_t unvmcap[16];
    uint32_t rpmbs;
    uint16_t edstt;
    uint8_t dsto;
    uint8_t fwug;
    uint16_t kas;
    uint16_t hctma;
    uint16_t mntmt;
    uint16_t mxtmt;
    uint32_t sanicap;
    uint32_t hmminds;
    uint16_t hmmaxd;
    uint16_t nsetidmax;
    uint16_t endgidmax;
    uint8_t anatt;
    uint8_t anacap;
    uint32_t anagrpmax;
    uint32_t nanagrpid;
    uint32_t pels;
    uint8_t rsvd356[156];
    uint8_t sqes; /* NVME_QES_* */
    uint8_t cqes;
    uint16_t maxcmd;
    uint32_t nn;
    uint16_t oncs; /* NVME_ONCS_* */
    uint16_t fuses;
    uint8_t fna;
    uint8_t vwc; /* NVME_VWC_* */
    uint16_t awun;
    uint16_t awupf;
    uint8_t icsvscc;
    uint8_t nwpc;
    uint16_t acwu;
    uint16_t rsvd534;
    uint32_t sgls;
    uint32_t mnan;
    uint8_t rsvd544[224];
    char subnqn[256];
    uint8_t rsvd1024[768];
    uint8_t nvmof[256];
    struct nvme_psd psd[32];
    uint8_t vs[1024];
};
_Static_assert(sizeof(struct nvme_id_ctrl) == NVME_IDENTIFY_SIZE, "Base Figure 275: 4096");
_Static_assert(offsetof(struct nvme_id_ctrl, sn) == 4, "Base Figure 275: SN");
_Static_assert(offsetof(struct nvme_id_ctrl, mn) == 24, "Base Figure 275: MN");
_Static_assert(offsetof(struct nvme_id_ctrl, fr) == 64, "Base Figure 275: FR");
_Static_assert(offsetof(struct nvme_id_ctrl, mdts) == 77, "Base Figure 275: MDTS");
_Static_assert(offsetof(struct nvme_id_ctrl, cntlid) == 78, "Base Figure 275: CNTLID");
_Static_assert(offsetof(struct nvme_id_ctrl, ver) == 80, "Base Figure 275: VER");
_Static_assert(offsetof(struct nvme_id_ctrl, oaes) == 92, "Base Figure 275: OAES");
_Static_assert(offsetof(struct nvme_id_ctrl, cntrltype) == 111,
               "Base Figure 275: CNTRLTYPE");
_Static_assert(offsetof(struct nvme_id_ctrl, crdt) == 128, "Base Figure 275: CRDT1");
_Static_assert(offsetof(struct nvme_id_ctrl, oacs) == 256, "Base Figure 275: OACS");
_Static_assert(offsetof(struct nvme_id_ctrl, acl) == 258, "Base Figure 275: ACL");
_Static_assert(offsetof(struct nvme_id_ctrl, lpa) == 261, "Base Figure 275: LPA");
_Static_assert(offsetof(struct nvme_id_ctrl, wctemp) == 266, "Base Figure 275: WCTEMP");
_Static_assert(offsetof(struct nvme_id_ctrl, hmpre) == 272, "Base Figure 275: HMPRE");
_Static_assert(offsetof(struct nvme_id_ctrl, tnvmcap) == 280, "Base Figure 275: TNVMCAP");
_Static_assert(offsetof(struct nvme_id_ctrl, kas) == 320, "Base Figure 275: KAS");
_Static_assert(offsetof(struct nvme_id_ctrl, sanicap) == 328, "Base Figure 275: SANICAP");
_Static_assert(offsetof(struct nvme_id_ctrl, anatt) == 342, "Base Figure 275: ANATT");
_Static_assert(offsetof(struct nvme_id_ctrl, pels) == 352, "Base Figure 275: PELS");
_Static_assert(offsetof(struct nvme_id_ctrl, sqes) == 512, "Base Figure 275: SQES");
_Static_assert(offsetof(struct nvme_id_ctrl, cqes) == 513, "Base Figure 275: CQES");
_Static_assert(offsetof(struct nvme_id_ctrl, nn) == 516, "Base Figure 275: NN");
_Static_assert(offsetof(struct nvme_id_ctrl, oncs) == 520, "Base Figure 275: ONCS");
_Static_assert(offsetof(struct nvme_id_ctrl, vwc) == 525, "Base Figure 275: VWC");
_Static_assert(offsetof(struct nvme_id_ctrl, acwu) == 532, "Base Figure 275: ACWU");
_Static_assert(offsetof(struct nvme_id_ctrl, sgls) == 536, "Base Figure 275: SGLS");
_Static_assert(offsetof(struct nvme_id_ctrl, mnan) == 540, "Base Figure 275: MNAN");
_Static_assert(offsetof(struct nvme_id_ctrl, subnqn) == 768, "Base Figure 275: SUBNQN");
_Static_assert(offsetof(struct nvme_id_ctrl, psd) == 2048, "Base Figure 275: PSD0");
_Static_assert(offsetof(struct nvme_id_ctrl, vs) == 3072, "Base Figure 275: vendor");

/* SQES / CQES: log2 of the required (3:0) and maximum (7:4) entry size */
#define NVME_QES_MIN_SHIFT 0
#define NVME_QES_MIN_MASK  0xfu
#define NVME_QES_MAX_SHIFT 4
#define NVME_QES_MAX_MASK  0xfu

/* CNTRLTYPE */
#define NVME_CNTRLTYPE_IO 0x1u
/* FRMW: slot 1 read-only (bit 0), number of slots (3:1) */
#define NVME_FRMW_SLOT1_RO     0x1u
#define NVME_FRMW_NSLOTS_SHIFT 1
#define NVME_FRMW_NSLOTS_MASK  0x7u
/* LPA, Log Page Attributes */
#define NVME_LPA_SMART_PER_NS 0x1u /* SMART / Health log per namespace */
#define NVME_LPA_EXT_DATA     0x4u /* extended data for Get Log Page (NUMDU, offset) */
/* OACS, Optional Admin Command Support: Doorbell Buffer Config (bit 8) */
#define NVME_OACS_DBBUF 0x0100u
/* ONCS, Optional NVM Command Support */
#define NVME_ONCS_COMPARE      0x0001u
#define NVME_ONCS_WRITE_UNCOR  0x0002u
#define NVME_ONCS_DSM          0x0004u
#define NVME_ONCS_WRITE_ZEROES 0x0008u
/* VWC: a volatile write cache is present (bit 0); Flush with NSID FFFFFFFFh
 * (bits 2:1: 10b not supported, 11b supported) */
#define NVME_VWC_PRESENT        0x1u
#define NVME_VWC_FLUSH_SHIFT    1
#define NVME_VWC_FLUSH_MASK     0x3u
#define NVME_VWC_FLUSH_NSID_ALL 0x3u

/* Identify Namespace data structure for the NVM command set (NVM CS
 * §4.1.5.1, Figure 97). */
struct nvme_id_ns {
    uint64_t nsze;
    uint64_t ncap;
    uint64_t nuse;
    uint8_t nsfeat;
    uint8_t nlbaf; /* 0's based number of LBA formats */
    uint8_t flbas; /* NVME_FLBAS_* */
    uint8_t mc;
    uint8_t dpc;
    uint8_t dps;
    uint8_t nmic;
    uint8_t rescap;
    uint8_t fpi;
    uint8_t dlfeat; /* NVME_DLFEAT_* */
    uint16_t nawun;
    uint16_t nawupf;
    uint16_t nacwu;
    uint16_t nabsn;
    uint16_t nabo;
    uint16_t nabspf;
    uint16_t noiob;
    uint8_t nvmcap[16];
    uint16_t npwg;
    uint16_t npwa;
    uint16_t npdg;
    uint16_t npda;
    uint16_t nows;
    uint16_t mssrl;
    uint32_t mcl;
    uint8_t msrc;
    uint8_t rsvd81[11];
    uint32_t anagrpid;
    uint8_t rsvd96[3];
    uint8_t nsattr;
    uint16_t nvmsetid;
    uint16_t endgid;
    uint8_t nguid[16];
    uint8_t eui64[8];
    uint32_t lbaf[64]; /* NVME_LBAF_* */
    uint8_t rsvd384[3712];
};
_Static_assert(sizeof(struct nvme_id_ns) == NVME_IDENTIFY_SIZE, "NVM CS Figure 97: 4096");
_Static_assert(offsetof(struct nvme_id_ns, ncap) == 8, "NVM CS Figure 97: NCAP");
_Static_assert(offsetof(struct nvme_id_ns, nsfeat) == 24, "NVM CS Figure 97: NSFEAT");
_Static_assert(offsetof(struct nvme_id_ns, nlbaf) == 25, "NVM CS Figure 97: NLBAF");
_Static_assert(offsetof(struct nvme_id_ns, flbas) == 26, "NVM CS Figure 97: FLBAS");
_Static_assert(offsetof(struct nvme_id_ns, dlfeat) == 33, "NVM CS Figure 97: DLFEAT");
_Static_assert(offsetof(struct nvme_id_ns, nvmcap) == 48, "NVM CS Figure 97: NVMCAP");
_Static_assert(offsetof(struct nvme_id_ns, npwg) == 64, "NVM CS Figure 97: NPWG");
_Static_assert(offsetof(struct nvme_id_ns, anagrpid) == 92, "NVM CS Figure 97: ANAGRPID");
_Static_assert(offsetof(struct nvme_id_ns, nsattr) == 99, "NVM CS Figure 97: NSATTR");
_Static_assert(offsetof(struct nvme_id_ns, nguid) == 104, "NVM CS Figure 97: NGUID");
_Static_assert(offsetof(struct nvme_id_ns, eui64) == 120, "NVM CS Figure 97: EUI64");
_Static_assert(offsetof(struct nvme_id_ns, lbaf) == 128, "NVM CS Figure 97: LBAF0");

/* FLBAS: format index bits 3:0 (LO) and, with more than 16 formats, bits 5:4
 * of the index in FLBAS bits 6:5 (HI); bit 4: metadata at the end of the LBA */
#define NVME_FLBAS_LO_SHIFT 0
#define NVME_FLBAS_LO_MASK  0xfu
#define NVME_FLBAS_HI_SHIFT 5
#define NVME_FLBAS_HI_MASK  0x3u
#define NVME_FLBAS_EXTENDED 0x10u
#define NVME_LBAF_MAX       64u
/* LBA Format: MS 15:0 (metadata bytes), LBADS 23:16 (log2 of the LBA size),
 * RP 25:24 (relative performance) */
#define NVME_LBAF_MS_SHIFT    0
#define NVME_LBAF_MS_MASK     0xffffu
#define NVME_LBAF_LBADS_SHIFT 16
#define NVME_LBAF_LBADS_MASK  0xffu
#define NVME_LBAF_RP_SHIFT    24
#define NVME_LBAF_RP_MASK     0x3u
/* DLFEAT: deallocated blocks read as zeroes (2:0 = 001b); Write Zeroes DEAC
 * supported (bit 3) */
#define NVME_DLFEAT_READ_ZEROES 0x1u
#define NVME_DLFEAT_WZ_DEAC     0x8u

/* Namespace Identification Descriptor (Base §5.17.2.3) */
struct nvme_ns_desc_hdr {
    uint8_t nidt;
    uint8_t nidl;
    uint16_t rsvd;
};
_Static_assert(sizeof(struct nvme_ns_desc_hdr) == 4, "Base §5.17.2.3: 4-byte header");
#define NVME_NIDT_EUI64 0x1u
#define NVME_NIDT_NGUID 0x2u
#define NVME_NIDT_CSI   0x4u

/* ---- Get Log Page (Base §5.16) ---------------------------------------------- */

/* CDW10: LID 7:0, LSP 14:8, RAE 15, NUMDL 31:16; CDW11: NUMDU 15:0 (NUMD is
 * a 0's based count of dwords); CDW12/13: byte offset, dword aligned. */
#define NVME_LOG_LID_SHIFT   0
#define NVME_LOG_LID_MASK    0xffu
#define NVME_LOG_LSP_SHIFT   8
#define NVME_LOG_LSP_MASK    0x7fu
#define NVME_LOG_RAE         0x8000u /* retain asynchronous event */
#define NVME_LOG_NUMDL_SHIFT 16
#define NVME_LOG_NUMDL_MASK  0xffffu
#define NVME_LOG_NUMDU_SHIFT 0
#define NVME_LOG_NUMDU_MASK  0xffffu

#define NVME_LOG_ERROR   0x01u
#define NVME_LOG_SMART   0x02u
#define NVME_LOG_FW_SLOT 0x03u

/* Error Information log entry (Base §5.16.1.2, Figure 206) */
struct nvme_error_log {
    uint64_t error_count;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* Status Field 15:1, phase tag bit 0 */
    uint16_t param_loc;
    uint64_t lba;
    uint32_t nsid;
    uint8_t vsia;
    uint8_t trtype;
    uint16_t rsvd30;
    uint64_t csi;
    uint16_t ttsi;
    uint8_t rsvd42[22];
};
_Static_assert(sizeof(struct nvme_error_log) == 64, "Base Figure 206: 64-byte entry");
_Static_assert(offsetof(struct nvme_error_log, status) == 12, "Base Figure 206: SF");
_Static_assert(offsetof(struct nvme_error_log, lba) == 16, "Base Figure 206: LBA");
_Static_assert(offsetof(struct nvme_error_log, nsid) == 24, "Base Figure 206: NSID");
_Static_assert(offsetof(struct nvme_error_log, csi) == 32, "Base Figure 206: CSI");

/* SMART / Health Information log (Base §5.16.1.3) */
struct nvme_smart_log {
    uint8_t critical_warning; /* NVME_SMART_CRIT_* */
    uint8_t temperature[2];   /* Kelvin, unaligned */
    uint8_t avail_spare;
    uint8_t spare_thresh;
    uint8_t percent_used;
    uint8_t endu_grp_crit_warn;
    uint8_t rsvd7[25];
    uint8_t data_units_read[16]; /* thousands of 512-byte units, rounded up */
    uint8_t data_units_written[16];
    uint8_t host_reads[16];
    uint8_t host_writes[16];
    uint8_t ctrl_busy_time[16];
    uint8_t power_cycles[16];
    uint8_t power_on_hours[16];
    uint8_t unsafe_shutdowns[16];
    uint8_t media_errors[16];
    uint8_t num_err_log_entries[16];
    uint32_t warning_temp_time;
    uint32_t critical_comp_time;
    uint16_t temp_sensor[8];
    uint32_t thm_temp1_trans;
    uint32_t thm_temp2_trans;
    uint32_t thm_temp1_time;
    uint32_t thm_temp2_time;
    uint8_t rsvd232[280];
};
_Static_assert(sizeof(struct nvme_smart_log) == 512, "Base §5.16.1.3: 512 bytes");
_Static_assert(offsetof(struct nvme_smart_log, data_units_read) == 32,
               "Base §5.16.1.3: Data Units Read");
_Static_assert(offsetof(struct nvme_smart_log, host_reads) == 64,
               "Base §5.16.1.3: Host Read Commands");
_Static_assert(offsetof(struct nvme_smart_log, power_on_hours) == 128,
               "Base §5.16.1.3: Power On Hours");
_Static_assert(offsetof(struct nvme_smart_log, num_err_log_entries) == 176,
               "Base §5.16.1.3: Number of Error Information Log Entries");
_Static_assert(offsetof(struct nvme_smart_log, warning_temp_time) == 192,
               "Base §5.16.1.3: Warning Composite Temperature Time");
_Static_assert(offsetof(struct nvme_smart_log, temp_sensor) == 200,
               "Base §5.16.1.3: Temperature Sensor 1");
_Static_assert(offsetof(struct nvme_smart_log, thm_temp1_trans) == 216,
               "Base §5.16.1.3: Thermal Management Temperature 1 Transition Count");

/* Critical Warning bits (byte 0 of the SMART / Health log) */
#define NVME_SMART_CRIT_SPARE       0x01u
#define NVME_SMART_CRIT_TEMPERATURE 0x02u

/* Firmware Slot Information log (Base §5.16.1.4) */
struct nvme_fw_slot_log {
    uint8_t afi; /* active slot 2:0 */
    uint8_t rsvd1[7];
    char frs[7][8];
    uint8_t rsvd64[448];
};
_Static_assert(sizeof(struct nvme_fw_slot_log) == 512, "Base §5.16.1.4: 512 bytes");
_Static_assert(offsetof(struct nvme_fw_slot_log, frs) == 8, "Base §5.16.1.4: FRS1");

/* ---- Features (Base §5.27.1; Get Features §5.15, Set Features §5.27) ------- */

/* CDW10: FID 7:0, SEL 10:8 (Get Features), SV bit 31 (Set Features) */
#define NVME_FEAT_FID_SHIFT 0
#define NVME_FEAT_FID_MASK  0xffu
#define NVME_FEAT_SEL_SHIFT 8
#define NVME_FEAT_SEL_MASK  0x7u
#define NVME_FEAT_SV        0x80000000u

#define NVME_FEAT_ARBITRATION    0x01u
#define NVME_FEAT_POWER_MGMT     0x02u
#define NVME_FEAT_TEMP_THRESH    0x04u
#define NVME_FEAT_ERROR_RECOVERY 0x05u
#define NVME_FEAT_VOLATILE_WC    0x06u
#define NVME_FEAT_NUM_QUEUES     0x07u
#define NVME_FEAT_IRQ_COALESCE   0x08u
#define NVME_FEAT_IRQ_CONFIG     0x09u
#define NVME_FEAT_WRITE_ATOMIC   0x0au
#define NVME_FEAT_ASYNC_EVENT    0x0bu

#define NVME_SEL_CURRENT   0u
#define NVME_SEL_DEFAULT   1u
#define NVME_SEL_SAVED     2u
#define NVME_SEL_SUPPORTED 3u
/* Get Features with SEL = supported capabilities: completion DW0 bits */
#define NVME_FEAT_CAP_SAVE   0x1u
#define NVME_FEAT_CAP_NS     0x2u
#define NVME_FEAT_CAP_CHANGE 0x4u

/* Number of Queues feature (Base §5.27.1): CDW11 NSQR 15:0 and NCQR 31:16; DW0 of
 * the completion NSQA 15:0 and NCQA 31:16; all 0's based. */
#define NVME_FEAT_NQ_SQ_SHIFT 0
#define NVME_FEAT_NQ_SQ_MASK  0xffffu
#define NVME_FEAT_NQ_CQ_SHIFT 16
#define NVME_FEAT_NQ_CQ_MASK  0xffffu

/* Temperature Threshold: TMPTH 15:0 (Kelvin), TMPSEL 19:16, THSEL 21:20 */
#define NVME_FEAT_TMPTH_SHIFT  0
#define NVME_FEAT_TMPTH_MASK   0xffffu
#define NVME_FEAT_TMPSEL_SHIFT 16
#define NVME_FEAT_TMPSEL_MASK  0xfu
#define NVME_FEAT_THSEL_SHIFT  20
#define NVME_FEAT_THSEL_MASK   0x3u
#define NVME_THSEL_OVER        0u
#define NVME_THSEL_UNDER       1u

/* Interrupt Vector Configuration: IV 15:0, CD (coalescing disable) bit 16 */
#define NVME_FEAT_IV_SHIFT 0
#define NVME_FEAT_IV_MASK  0xffffu
#define NVME_FEAT_IV_CD    0x10000u

/* ---- Asynchronous Event Request (Base §5.2) --------------------------------- */

/* Completion DW0: event type 2:0, event information 15:8, log page 23:16 */
#define NVME_AER_TYPE_SHIFT 0
#define NVME_AER_TYPE_MASK  0x7u
#define NVME_AER_INFO_SHIFT 8
#define NVME_AER_INFO_MASK  0xffu
#define NVME_AER_LID_SHIFT  16
#define NVME_AER_LID_MASK   0xffu
#define NVME_AER_DW0(type, info, lid)                                                      \
    (NVME_SET(type, AER_TYPE) | NVME_SET(info, AER_INFO) | NVME_SET(lid, AER_LID))

#define NVME_AER_TYPE_ERROR            0x0u
#define NVME_AER_TYPE_SMART            0x1u
#define NVME_AER_INFO_INVALID_DB       0x00u /* Error: Write to Invalid Doorbell Register */
#define NVME_AER_INFO_INVALID_DB_VALUE 0x01u /* Error: Invalid Doorbell Write Value */
#define NVME_AER_INFO_TEMP             0x01u /* SMART: Temperature Threshold */

/* ======================================================================== */
/* NVM command set I/O commands (NVM CS §3)                                 */
/* ======================================================================== */

#define NVME_IO_FLUSH        0x00u
#define NVME_IO_WRITE        0x01u
#define NVME_IO_READ         0x02u
#define NVME_IO_WRITE_UNCOR  0x04u
#define NVME_IO_COMPARE      0x05u
#define NVME_IO_WRITE_ZEROES 0x08u
#define NVME_IO_DSM          0x09u

/* Compare (NVM CS §3.2.1), Read (§3.2.4), Write (§3.2.6), Write Zeroes
 * (§3.2.8): CDW10/11 SLBA; CDW12 NLB 15:0 (0's based), DTYPE 23:20, DEAC 25
 * (Write Zeroes), FUA 30, LR 31. */
#define NVME_RW_NLB_SHIFT   0
#define NVME_RW_NLB_MASK    0xffffu
#define NVME_RW_MAX_NLB     65536u
#define NVME_RW_DTYPE_SHIFT 20
#define NVME_RW_DTYPE_MASK  0xfu
#define NVME_RW_DEAC        (1u << 25)
#define NVME_RW_FUA         (1u << 30)
#define NVME_RW_LR          (1u << 31)

/* Dataset Management (NVM CS §3.2.3): CDW10 NR 7:0 (0's based number of
 * ranges); CDW11 attributes IDR bit 0, IDW bit 1, AD (deallocate) bit 2. */
#define NVME_DSM_NR_SHIFT   0
#define NVME_DSM_NR_MASK    0xffu
#define NVME_DSM_IDR        0x1u
#define NVME_DSM_IDW        0x2u
#define NVME_DSM_AD         0x4u
#define NVME_DSM_MAX_RANGES 256u

/* Dataset Management range (NVM CS §3.2.3, "Range Definition") */
struct nvme_dsm_range {
    uint32_t cattr;
    uint32_t nlb; /* logical blocks, not 0's based */
    uint64_t slba;
};
_Static_assert(sizeof(struct nvme_dsm_range) == 16, "NVM CS §3.2.3: 16-byte range");
_Static_assert(offsetof(struct nvme_dsm_range, nlb) == 4, "NVM CS §3.2.3: Length");
_Static_assert(offsetof(struct nvme_dsm_range, slba) == 8, "NVM CS §3.2.3: SLBA");

#endif /* VFIO_DEXT_NVME_SPEC_H */
