/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sim:nvme — a simulated NVMe SSD (one PCIe function, one namespace).
 *
 * This header has four parts:
 *  1. The wire format: controller registers, queue entries, admin and NVM
 *     command fields, status codes and the 4 KiB Identify / log structures,
 *     with _Static_assert on every size and offset taken from the
 *     specifications. References are to the NVM Express Base Specification
 *     2.0 ("Base"), the NVM Command Set Specification 1.0 ("NVM CS") and the
 *     NVMe over PCIe Transport Specification 1.0 ("PCIe"), by section title
 *     and number.
 *  2. The simulated device's programming model (identity, BAR0 layout,
 *     limits). docs/nvme.md describes the behaviour.
 *  3. Pure command parsers and validators (nvme_cmd.c): functions over
 *     buffers with lengths and no device state, so a fuzzer can call them
 *     directly. They never allocate, never log and never abort.
 *  4. The backing store (nvme_store.c): RAM (sparse anonymous memory) or a
 *     file (sparse, fdatasync on Flush/FUA).
 *
 * Byte order: NVMe is little-endian. Parsers decode byte by byte; the 4 KiB
 * data structures below are filled as C structs and need a little-endian
 * host (asserted in nvme.c).
 *
 * Threading: the parsers are reentrant. A struct nvme_store is not
 * thread-safe; its owner (the controller, under the dext's device lock)
 * serialises calls.
 */
#ifndef VFIO_DEXT_NVME_H
#define VFIO_DEXT_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ======================================================================== */
/* 1. Wire format                                                            */
/* ======================================================================== */

/* ---- Controller registers (Base §3.1.3 "Controller Properties";
 *      PCIe §3.1.2 for the doorbells) -------------------------------------- */

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
#define NVME_REG_DBS   0x1000u /* first doorbell (PCIe §3.1.2.1) */

/* The register block as laid out by Base Figure 35 (properties 00h..37h). */
struct nvme_regs_layout {
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
_Static_assert(offsetof(struct nvme_regs_layout, vs) == NVME_REG_VS, "Base §3.1.3.2");
_Static_assert(offsetof(struct nvme_regs_layout, intms) == NVME_REG_INTMS, "Base §3.1.3.3");
_Static_assert(offsetof(struct nvme_regs_layout, intmc) == NVME_REG_INTMC, "Base §3.1.3.4");
_Static_assert(offsetof(struct nvme_regs_layout, cc) == NVME_REG_CC, "Base §3.1.3.5");
_Static_assert(offsetof(struct nvme_regs_layout, csts) == NVME_REG_CSTS, "Base §3.1.3.6");
_Static_assert(offsetof(struct nvme_regs_layout, nssr) == NVME_REG_NSSR, "Base §3.1.3.7");
_Static_assert(offsetof(struct nvme_regs_layout, aqa) == NVME_REG_AQA, "Base §3.1.3.8");
_Static_assert(offsetof(struct nvme_regs_layout, asq) == NVME_REG_ASQ, "Base §3.1.3.9");
_Static_assert(offsetof(struct nvme_regs_layout, acq) == NVME_REG_ACQ, "Base §3.1.3.10");
_Static_assert(sizeof(struct nvme_regs_layout) == 0x38, "Base Figure 35");

/* CAP (Base §3.1.3.1) */
#define NVME_CAP_MQES(cap)    ((uint32_t)((cap)&0xffffu)) /* 0's based */
#define NVME_CAP_CQR          (1ull << 16)
#define NVME_CAP_AMS_SHIFT    17
#define NVME_CAP_TO_SHIFT     24 /* 500 ms units */
#define NVME_CAP_DSTRD_SHIFT  32
#define NVME_CAP_NSSRS        (1ull << 36)
#define NVME_CAP_CSS_SHIFT    37
#define NVME_CAP_CSS_NVM      (1ull << 37) /* CSS bit 0: NVM command set */
#define NVME_CAP_CSS_IOCS     (1ull << 43) /* CSS bit 6: I/O command sets */
#define NVME_CAP_CSS_NOIO     (1ull << 44) /* CSS bit 7: admin only */
#define NVME_CAP_MPSMIN_SHIFT 48
#define NVME_CAP_MPSMAX_SHIFT 52
#define NVME_CAP_MPSMIN(cap)  ((unsigned)(((cap) >> 48) & 0xfu))
#define NVME_CAP_MPSMAX(cap)  ((unsigned)(((cap) >> 52) & 0xfu))

/* VS (Base §3.1.3.2) */
#define NVME_VS(mjr, mnr, ter) (((uint32_t)(mjr) << 16) | ((uint32_t)(mnr) << 8) | (ter))

/* CC (Base §3.1.3.5) */
#define NVME_CC_EN         0x00000001u
#define NVME_CC_CSS(cc)    (((cc) >> 4) & 0x7u)
#define NVME_CC_MPS(cc)    (((cc) >> 7) & 0xfu)
#define NVME_CC_AMS(cc)    (((cc) >> 11) & 0x7u)
#define NVME_CC_SHN(cc)    (((cc) >> 14) & 0x3u)
#define NVME_CC_IOSQES(cc) (((cc) >> 16) & 0xfu)
#define NVME_CC_IOCQES(cc) (((cc) >> 20) & 0xfu)
#define NVME_CC_SHN_MASK   0x0000c000u
#define NVME_CC_WRITABLE   0x00fffff1u /* EN, CSS, MPS, AMS, SHN, IOSQES, IOCQES */
#define NVME_CC_CSS_NVM    0u
#define NVME_CC_MAKE(css, mps, ams, shn, iosqes, iocqes)                                   \
    (((uint32_t)(css) << 4) | ((uint32_t)(mps) << 7) | ((uint32_t)(ams) << 11) |           \
     ((uint32_t)(shn) << 14) | ((uint32_t)(iosqes) << 16) | ((uint32_t)(iocqes) << 20))

/* CSTS (Base §3.1.3.6) */
#define NVME_CSTS_RDY            0x00000001u
#define NVME_CSTS_CFS            0x00000002u
#define NVME_CSTS_SHST_MASK      0x0000000cu
#define NVME_CSTS_SHST_NORMAL    0x00000000u
#define NVME_CSTS_SHST_OCCURRING 0x00000004u
#define NVME_CSTS_SHST_COMPLETE  0x00000008u

/* AQA (Base §3.1.3.8): 0's based sizes */
#define NVME_AQA_ASQS(aqa)   ((aqa)&0xfffu)
#define NVME_AQA_ACQS(aqa)   (((aqa) >> 16) & 0xfffu)
#define NVME_AQA_MASK        0x0fff0fffu
#define NVME_ADMIN_QUEUE_MAX 4096u /* AQA fields are 12 bits */

/* ASQ/ACQ (Base §3.1.3.9-10): bits 11:0 reserved */
#define NVME_AQ_BASE_MASK (~0xfffull)

/* Doorbells with CAP.DSTRD = 0 (PCIe §3.1.2.1-2): 4-byte stride. */
#define NVME_DB_STRIDE       4u
#define NVME_SQ_TAIL_DB(qid) (NVME_REG_DBS + (2u * (qid)) * NVME_DB_STRIDE)
#define NVME_CQ_HEAD_DB(qid) (NVME_REG_DBS + (2u * (qid) + 1u) * NVME_DB_STRIDE)

/* ---- Queue entries (Base §4.1 "Submission Queue Entry", §4.2
 *      "Completion Queue Entry") ------------------------------------------- */

#define NVME_SQE_SIZE  64u
#define NVME_CQE_SIZE  16u
#define NVME_SQES_LOG2 6u
#define NVME_CQES_LOG2 4u

/* Common command format (Base Figure 88). */
struct nvme_sqe_layout {
    uint32_t cdw0; /* OPC 7:0, FUSE 9:8, PSDT 15:14, CID 31:16 */
    uint32_t nsid;
    uint32_t cdw2;
    uint32_t cdw3;
    uint64_t mptr;
    uint64_t prp1; /* DPTR */
    uint64_t prp2;
    uint32_t cdw10;
    uint32_t cdw11;
    uint32_t cdw12;
    uint32_t cdw13;
    uint32_t cdw14;
    uint32_t cdw15;
};
_Static_assert(sizeof(struct nvme_sqe_layout) == NVME_SQE_SIZE, "Base §4.1: 64-byte SQE");
_Static_assert(1u << NVME_SQES_LOG2 == NVME_SQE_SIZE, "CC.IOSQES = 6");
_Static_assert(offsetof(struct nvme_sqe_layout, nsid) == 4, "Base Figure 88: NSID");
_Static_assert(offsetof(struct nvme_sqe_layout, mptr) == 16, "Base Figure 88: MPTR");
_Static_assert(offsetof(struct nvme_sqe_layout, prp1) == 24, "Base Figure 88: DPTR");
_Static_assert(offsetof(struct nvme_sqe_layout, prp2) == 32, "Base Figure 88: DPTR");
_Static_assert(offsetof(struct nvme_sqe_layout, cdw10) == 40, "Base Figure 88: CDW10");
_Static_assert(offsetof(struct nvme_sqe_layout, cdw15) == 60, "Base Figure 88: CDW15");

/* Common completion queue entry (Base Figure 90). */
struct nvme_cqe_layout {
    uint32_t dw0;
    uint32_t dw1;
    uint16_t sqhd;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* P bit 0, Status Field 15:1 */
};
_Static_assert(sizeof(struct nvme_cqe_layout) == NVME_CQE_SIZE, "Base §4.2: 16-byte CQE");
_Static_assert(1u << NVME_CQES_LOG2 == NVME_CQE_SIZE, "CC.IOCQES = 4");
_Static_assert(offsetof(struct nvme_cqe_layout, sqhd) == 8, "Base Figure 90: DW2");
_Static_assert(offsetof(struct nvme_cqe_layout, cid) == 12, "Base Figure 90: DW3");
_Static_assert(offsetof(struct nvme_cqe_layout, status) == 14, "Base Figure 90: DW3");

#define NVME_PSDT_PRP 0u /* CDW0 bits 15:14 (Base Figure 87) */

/*
 * Status Field (Base §4.2.3): a 15-bit value, bits 7:0 SC, 10:8 SCT,
 * 12:11 CRD, 13 M, 14 DNR. It sits in CQE DW3 bits 31:17. The values below
 * are SCT << 8 | SC; add NVME_DNR where the command must not be retried.
 */
#define NVME_DNR              0x4000u
#define NVME_STATUS(sct, sc)  ((uint16_t)(((sct) << 8) | (sc)))
#define NVME_STATUS_SC(s)     ((unsigned)((s)&0xffu))
#define NVME_STATUS_SCT(s)    ((unsigned)(((s) >> 8) & 0x7u))
#define NVME_SCT_GENERIC      0u
#define NVME_SCT_CMD_SPECIFIC 1u
#define NVME_SCT_MEDIA        2u

/* Generic Command Status (Base §4.2.3.1, Figure 94; NVM CS Figure 21) */
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
/* Command Specific Status (Base §4.2.3.2, Figure 96) */
#define NVME_SC_CQ_INVALID        0x0100u /* Completion Queue Invalid */
#define NVME_SC_QID_INVALID       0x0101u /* Invalid Queue Identifier */
#define NVME_SC_QUEUE_SIZE        0x0102u /* Invalid Queue Size */
#define NVME_SC_AER_LIMIT         0x0105u /* Asynchronous Event Request Limit Exceeded */
#define NVME_SC_INVALID_VECTOR    0x0108u /* Invalid Interrupt Vector */
#define NVME_SC_INVALID_LOG_PAGE  0x0109u
#define NVME_SC_INVALID_QUEUE_DEL 0x010cu /* Invalid Queue Deletion */
#define NVME_SC_FEAT_NOT_SAVEABLE 0x010du /* Feature Identifier Not Saveable */
#define NVME_SC_FEAT_NOT_NS_SPEC  0x010fu /* Feature Not Namespace Specific */
/* Media and Data Integrity Errors (Base §4.2.3.3, Figure 98; NVM CS) */
#define NVME_SC_WRITE_FAULT      0x0280u
#define NVME_SC_UNRECOVERED_READ 0x0281u
#define NVME_SC_COMPARE_FAILURE  0x0285u

/* ---- Admin commands (Base §5) ---------------------------------------------- */

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

/* Create I/O Completion Queue (Base §5.4): CDW10 QID 15:0, QSIZE 31:16;
 * CDW11 PC bit 0, IEN bit 1, IV 31:16. Create I/O Submission Queue (Base
 * §5.5): CDW10 as above; CDW11 PC bit 0, QPRIO 2:1, CQID 31:16. */
#define NVME_QUEUE_PC 0x1u
#define NVME_CQ_IEN   0x2u

/* Identify (Base §5.17): CDW10 CNS 7:0, CNTID 31:16; CDW11 CSI 31:24 */
#define NVME_CNS_NS           0x00u
#define NVME_CNS_CTRL         0x01u
#define NVME_CNS_NS_ACTIVE    0x02u
#define NVME_CNS_NS_DESC      0x03u
#define NVME_CNS_CS_NS        0x05u
#define NVME_CNS_CS_CTRL      0x06u
#define NVME_CNS_CS_NS_ACTIVE 0x07u
#define NVME_CSI_NVM          0x00u
#define NVME_IDENTIFY_SIZE    4096u

/* Get Log Page (Base §5.16): CDW10 LID 7:0, LSP 14:8, RAE 15, NUMDL 31:16;
 * CDW11 NUMDU 15:0; CDW12/13 offset (dword aligned). */
#define NVME_LOG_ERROR   0x01u
#define NVME_LOG_SMART   0x02u
#define NVME_LOG_FW_SLOT 0x03u
#define NVME_LOG_RAE     0x8000u

/* Features (Base §5.27.1): CDW10 FID 7:0, SEL 10:8 (get), SV 31 (set). */
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
#define NVME_FEAT_SV             0x80000000u
#define NVME_SEL_CURRENT         0u
#define NVME_SEL_DEFAULT         1u
#define NVME_SEL_SAVED           2u
#define NVME_SEL_SUPPORTED       3u
#define NVME_FEAT_CAP_SAVE       0x1u /* Get Features SEL=3 result bits */
#define NVME_FEAT_CAP_NS         0x2u
#define NVME_FEAT_CAP_CHANGE     0x4u

/* Asynchronous Event Request completion DW0 (Base §5.2, Figure 146) */
#define NVME_AER_TYPE_ERROR            0x0u
#define NVME_AER_TYPE_SMART            0x1u
#define NVME_AER_INFO_INVALID_DB       0x00u /* Write to Invalid Doorbell Register */
#define NVME_AER_INFO_INVALID_DB_VALUE 0x01u /* Invalid Doorbell Write Value */
#define NVME_AER_INFO_TEMP             0x01u /* SMART: Temperature Threshold */
#define NVME_AER_DW0(type, info, lid)                                                      \
    ((uint32_t)(type) | ((uint32_t)(info) << 8) | ((uint32_t)(lid) << 16))

/* SMART critical warning bits (Base Figure 207, byte 0) */
#define NVME_SMART_CRIT_TEMPERATURE 0x02u

/* ---- NVM command set I/O commands (NVM CS §3) ----------------------------- */

#define NVME_CMD_FLUSH        0x00u
#define NVME_CMD_WRITE        0x01u
#define NVME_CMD_READ         0x02u
#define NVME_CMD_COMPARE      0x05u
#define NVME_CMD_WRITE_ZEROES 0x08u
#define NVME_CMD_DSM          0x09u

/* Read/Write/Compare/Write Zeroes CDW12 (NVM CS §3.2.4, §3.2.6, §3.2.8) */
#define NVME_RW_NLB(cdw12)   (((cdw12)&0xffffu) + 1u)
#define NVME_RW_DTYPE(cdw12) (((cdw12) >> 20) & 0xfu)
#define NVME_RW_DEAC         (1u << 25) /* Write Zeroes */
#define NVME_RW_FUA          (1u << 30)
#define NVME_RW_LR           (1u << 31)

/* Dataset Management (NVM CS §3.2.3): CDW10 NR 7:0 (0's based), CDW11 AD bit 2. */
#define NVME_DSM_NR(cdw10)  (((cdw10)&0xffu) + 1u)
#define NVME_DSM_AD         0x4u
#define NVME_DSM_MAX_RANGES 256u

struct nvme_dsm_range_layout {
    uint32_t cattr;
    uint32_t nlb; /* not 0's based */
    uint64_t slba;
};
_Static_assert(sizeof(struct nvme_dsm_range_layout) == 16,
               "NVM CS Figure 39: 16-byte range");
_Static_assert(offsetof(struct nvme_dsm_range_layout, slba) == 8, "NVM CS Figure 39");

#define NVME_NSID_ALL 0xffffffffu

/* ---- Identify and log data structures ---------------------------------------- */

/* Power State Descriptor (Base Figure 276) */
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
_Static_assert(sizeof(struct nvme_psd) == 32, "Base Figure 276: 32-byte descriptor");

/* Identify Controller data structure (Base §5.17.2.1, Figure 275) */
struct nvme_id_ctrl {
    uint16_t vid;
    uint16_t ssvid;
    char sn[20];
    char mn[40];
    char fr[8];
    uint8_t rab;
    uint8_t ieee[3];
    uint8_t cmic;
    uint8_t mdts;
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
    uint8_t sqes;
    uint8_t cqes;
    uint16_t maxcmd;
    uint32_t nn;
    uint16_t oncs;
    uint16_t fuses;
    uint8_t fna;
    uint8_t vwc;
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
_Static_assert(offsetof(struct nvme_id_ctrl, nn) == 516, "Base Figure 275: NN");
_Static_assert(offsetof(struct nvme_id_ctrl, oncs) == 520, "Base Figure 275: ONCS");
_Static_assert(offsetof(struct nvme_id_ctrl, vwc) == 525, "Base Figure 275: VWC");
_Static_assert(offsetof(struct nvme_id_ctrl, acwu) == 532, "Base Figure 275: ACWU");
_Static_assert(offsetof(struct nvme_id_ctrl, sgls) == 536, "Base Figure 275: SGLS");
_Static_assert(offsetof(struct nvme_id_ctrl, mnan) == 540, "Base Figure 275: MNAN");
_Static_assert(offsetof(struct nvme_id_ctrl, subnqn) == 768, "Base Figure 275: SUBNQN");
_Static_assert(offsetof(struct nvme_id_ctrl, psd) == 2048, "Base Figure 275: PSD0");
_Static_assert(offsetof(struct nvme_id_ctrl, vs) == 3072, "Base Figure 275: vendor");

/* Identify Namespace data structure for the NVM command set (NVM CS §4.1.5.1,
 * Figure 97). */
struct nvme_id_ns {
    uint64_t nsze;
    uint64_t ncap;
    uint64_t nuse;
    uint8_t nsfeat;
    uint8_t nlbaf;
    uint8_t flbas;
    uint8_t mc;
    uint8_t dpc;
    uint8_t dps;
    uint8_t nmic;
    uint8_t rescap;
    uint8_t fpi;
    uint8_t dlfeat;
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
    uint32_t lbaf[64]; /* MS 15:0, LBADS 23:16, RP 25:24 */
    uint8_t rsvd384[3712];
};
_Static_assert(sizeof(struct nvme_id_ns) == NVME_IDENTIFY_SIZE, "NVM CS Figure 97: 4096");
_Static_assert(offsetof(struct nvme_id_ns, nsfeat) == 24, "NVM CS Figure 97: NSFEAT");
_Static_assert(offsetof(struct nvme_id_ns, dlfeat) == 33, "NVM CS Figure 97: DLFEAT");
_Static_assert(offsetof(struct nvme_id_ns, nvmcap) == 48, "NVM CS Figure 97: NVMCAP");
_Static_assert(offsetof(struct nvme_id_ns, npwg) == 64, "NVM CS Figure 97: NPWG");
_Static_assert(offsetof(struct nvme_id_ns, anagrpid) == 92, "NVM CS Figure 97: ANAGRPID");
_Static_assert(offsetof(struct nvme_id_ns, nsattr) == 99, "NVM CS Figure 97: NSATTR");
_Static_assert(offsetof(struct nvme_id_ns, nguid) == 104, "NVM CS Figure 97: NGUID");
_Static_assert(offsetof(struct nvme_id_ns, eui64) == 120, "NVM CS Figure 97: EUI64");
_Static_assert(offsetof(struct nvme_id_ns, lbaf) == 128, "NVM CS Figure 97: LBAF0");
#define NVME_LBAF(lbads) ((uint32_t)(lbads) << 16)

/* Namespace Identification Descriptor (Base §5.17.2.3, Figure 277) */
struct nvme_ns_desc_hdr {
    uint8_t nidt;
    uint8_t nidl;
    uint16_t rsvd;
};
_Static_assert(sizeof(struct nvme_ns_desc_hdr) == 4, "Base Figure 277: 4-byte header");
#define NVME_NIDT_EUI64 0x1u
#define NVME_NIDT_NGUID 0x2u
#define NVME_NIDT_CSI   0x4u

/* Error Information log entry (Base §5.16.1.2, Figure 206) */
struct nvme_error_log {
    uint64_t error_count;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* Status Field 15:1, phase bit 0 */
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
_Static_assert(offsetof(struct nvme_error_log, lba) == 16, "Base Figure 206: LBA");
_Static_assert(offsetof(struct nvme_error_log, csi) == 32, "Base Figure 206: CSI");

/* SMART / Health Information log (Base §5.16.1.3, Figure 207) */
struct nvme_smart_log {
    uint8_t critical_warning;
    uint8_t temperature[2]; /* Kelvin, unaligned */
    uint8_t avail_spare;
    uint8_t spare_thresh;
    uint8_t percent_used;
    uint8_t endu_grp_crit_warn;
    uint8_t rsvd7[25];
    uint8_t data_units_read[16];
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
_Static_assert(sizeof(struct nvme_smart_log) == 512, "Base Figure 207: 512 bytes");
_Static_assert(offsetof(struct nvme_smart_log, data_units_read) == 32, "Base Figure 207");
_Static_assert(offsetof(struct nvme_smart_log, host_reads) == 64, "Base Figure 207");
_Static_assert(offsetof(struct nvme_smart_log, power_on_hours) == 128, "Base Figure 207");
_Static_assert(offsetof(struct nvme_smart_log, num_err_log_entries) == 176,
               "Base Figure 207");
_Static_assert(offsetof(struct nvme_smart_log, warning_temp_time) == 192,
               "Base Figure 207");
_Static_assert(offsetof(struct nvme_smart_log, temp_sensor) == 200, "Base Figure 207");

/* Firmware Slot Information log (Base §5.16.1.4, Figure 208) */
struct nvme_fw_slot_log {
    uint8_t afi;
    uint8_t rsvd1[7];
    char frs[7][8];
    uint8_t rsvd64[448];
};
_Static_assert(sizeof(struct nvme_fw_slot_log) == 512, "Base Figure 208: 512 bytes");
_Static_assert(offsetof(struct nvme_fw_slot_log, frs) == 8, "Base Figure 208: FRS1");

/* ======================================================================== */
/* 2. The simulated device                                                   */
/* ======================================================================== */

#define NVME_SIM_VENDOR_ID  0x7e57u /* made-up IDs for a simulated device */
#define NVME_SIM_DEVICE_ID  0x4e56u
#define NVME_SIM_CLASS_CODE 0x010802u /* mass storage, NVM, NVM Express */
#define NVME_SIM_REVISION   0x01u
#define NVME_SIM_MODEL      "vfio-dext sim:nvme"
#define NVME_SIM_FIRMWARE   "0.1"

/* Config space capabilities. */
#define NVME_SIM_CAP_PM   0x40u
#define NVME_SIM_CAP_MSIX 0x50u
#define NVME_SIM_CAP_PCIE 0x60u

/* BAR0 (64-bit, non-prefetchable): registers, doorbells, MSI-X table, PBA. */
#define NVME_SIM_BAR0_SIZE      0x4000u
#define NVME_SIM_MSIX_TABLE_OFF 0x2000u
#define NVME_SIM_MSIX_PBA_OFF   0x3000u

#define NVME_SIM_PAGE_SIZE      4096u /* CAP.MPSMIN = CAP.MPSMAX = 0 */
#define NVME_SIM_PAGE_SHIFT     12u
#define NVME_SIM_LBA_SHIFT      9u /* LBAF0: 512-byte blocks */
#define NVME_SIM_LBA_SIZE       (1u << NVME_SIM_LBA_SHIFT)
#define NVME_SIM_MDTS           5u /* 2^5 pages: 128 KiB per command */
#define NVME_SIM_MAX_XFER       (NVME_SIM_PAGE_SIZE << NVME_SIM_MDTS)
#define NVME_SIM_MQES           1023u /* 0's based: 1024 entries */
#define NVME_SIM_TO             2u    /* CAP.TO: 1 s */
#define NVME_SIM_DEFAULT_QUEUES 4u
#define NVME_SIM_MAX_QUEUES     64u /* I/O queue pairs */
#define NVME_SIM_AERL           3u  /* 0's based: 4 outstanding AERs */
#define NVME_SIM_ACL            3u
#define NVME_SIM_ELPE           15u  /* 0's based: 16 error log entries */
#define NVME_SIM_TEMP_K         313u /* composite temperature, 40 C */
#define NVME_SIM_WCTEMP_K       343u
#define NVME_SIM_CCTEMP_K       358u
#define NVME_SIM_MIN_SIZE       (1024u * 1024u)
#define NVME_SIM_MAX_SIZE       (1ull << 46) /* 64 TiB */
#define NVME_SIM_MAX_SEGS       (NVME_SIM_MAX_XFER / NVME_SIM_PAGE_SIZE + 1u)

_Static_assert(NVME_SQ_TAIL_DB(0) == 0x1000u, "PCIe §3.1.2.1: SQ0TDBL at 1000h");
_Static_assert(NVME_CQ_HEAD_DB(1) == 0x100cu, "PCIe §3.1.2.2: CQ1HDBL at 100Ch");
_Static_assert(NVME_CQ_HEAD_DB(NVME_SIM_MAX_QUEUES) + 4u <= NVME_SIM_MSIX_TABLE_OFF,
               "doorbells end before the MSI-X table");
_Static_assert(NVME_SIM_MSIX_TABLE_OFF + (NVME_SIM_MAX_QUEUES + 1u) * 16u <=
                   NVME_SIM_MSIX_PBA_OFF,
               "the MSI-X table ends before the PBA");
_Static_assert(NVME_SIM_MSIX_PBA_OFF + 16u <= NVME_SIM_BAR0_SIZE, "the PBA fits BAR0");
_Static_assert(NVME_SIM_MQES + 1u >= 2u && NVME_SIM_MQES <= 0xffffu, "Base §3.1.3.1");

/* ======================================================================== */
/* 3. Pure parsers and validators (nvme_cmd.c)                              */
/* ======================================================================== */

/* A submission queue entry decoded to host order. */
struct nvme_cmd {
    uint8_t opc;
    uint8_t fuse;
    uint8_t psdt;
    uint16_t cid;
    uint32_t nsid;
    uint64_t mptr;
    uint64_t prp1;
    uint64_t prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

/* A completion to post, before the phase tag. */
struct nvme_cpl {
    uint32_t dw0;
    uint16_t sqhd;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* NVME_STATUS value, possibly | NVME_DNR */
};

/* Decode `len` bytes into *cmd. Returns 0, or -EINVAL when len < 64. */
int nvme_cmd_decode(const void *buf, size_t len, struct nvme_cmd *cmd);

/* Encode a completion with phase tag `phase` into 16 bytes at buf. Returns 0,
 * or -EINVAL when len < 16. */
int nvme_cpl_encode(const struct nvme_cpl *cpl, bool phase, void *buf, size_t len);

/* Decode 16 bytes of CQE (for tests and drivers). Returns 0 or -EINVAL. */
int nvme_cpl_decode(const void *buf, size_t len, struct nvme_cpl *cpl, bool *phase);

/* Fields no command of this device uses: FUSE (fused operations are not
 * supported) and PSDT (SGLs are not supported). NVME_SC_INVALID_FIELD or 0. */
uint16_t nvme_cmd_check_common(const struct nvme_cmd *cmd);

/* What a namespace and the controller allow. */
struct nvme_ns_limits {
    uint32_t nn;        /* namespaces: NSIDs 1..nn are valid (all active) */
    uint64_t nsze;      /* LBAs of the namespace (one namespace) */
    uint32_t lba_shift; /* log2 of the LBA size */
    uint32_t max_xfer;  /* MDTS in bytes, 0 = no limit */
};

/* A decoded Read, Write, Compare or Write Zeroes. */
struct nvme_rw {
    uint64_t slba;
    uint32_t nlb;   /* blocks, 1..65536 */
    uint64_t bytes; /* nlb << lba_shift */
    bool fua;
    bool deac; /* Write Zeroes: deallocate */
};

/*
 * Validate a Read/Write/Compare (has_data) or Write Zeroes (!has_data)
 * against the namespace, in the specification's order:
 * Invalid Field (FUSE, PSDT, DTYPE set), Invalid Namespace or Format (NSID
 * not an active namespace), Invalid Field (data transfer beyond MDTS), LBA
 * Out of Range (SLBA + NLB beyond NSZE, overflow included). Returns 0 or
 * that status.
 */
uint16_t nvme_rw_parse(const struct nvme_cmd *cmd, const struct nvme_ns_limits *lim,
                       bool has_data, struct nvme_rw *rw);

/* Flush: NSID must be an active namespace or FFFFFFFFh. */
uint16_t nvme_flush_check(const struct nvme_cmd *cmd, const struct nvme_ns_limits *lim);

/* Dataset Management command fields: number of ranges and the byte length of
 * the range list. Status as nvme_rw_parse (no MDTS: the list is <= 4 KiB). */
uint16_t nvme_dsm_parse(const struct nvme_cmd *cmd, const struct nvme_ns_limits *lim,
                        unsigned *nr, size_t *list_len, bool *deallocate);

/* Decode range i of a Dataset Management range list. Returns 0,
 * -EINVAL (list too short). */
int nvme_dsm_range(const void *list, size_t len, unsigned i, uint64_t *slba, uint32_t *nlb);

/* Check every range of a list against the namespace: LBA Out of Range when
 * SLBA + NLB exceeds NSZE (ranges with NLB 0 are ignored). 0 or status. */
uint16_t nvme_dsm_check(const void *list, size_t len, unsigned nr, uint64_t nsze);

/* One physically contiguous piece of a data buffer. */
struct nvme_seg {
    uint64_t addr;
    uint32_t len;
};

/* Reads `len` bytes of host memory at `addr` (a PRP list). Returns 0 or
 * -EFAULT. */
typedef int (*nvme_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

/*
 * Turn PRP1/PRP2 for a transfer of `len` bytes (1..) into segments, reading
 * PRP lists through `rd` (Base §4.1.1 "Physical Region Page Entry and List",
 * with a NVME_SIM_PAGE_SIZE memory page):
 *  - PRP1 may carry a page offset, which must be dword aligned;
 *  - if the rest fits one page, PRP2 is that page (offset 0);
 *  - else PRP2 points to a PRP list (qword aligned, any offset in its page);
 *    the last entry of a list page points to the next list page (offset 0).
 * `scratch` holds `scratch_entries` (>= 1) list entries for reading lists.
 * Work is bounded by the pages of the transfer, whatever the list holds.
 * Returns 0 with segs[0..*nsegs), NVME_SC_INVALID_PRP_OFFSET,
 * NVME_SC_DATA_XFER_ERROR (rd failed), or NVME_SC_INVALID_FIELD (len 0 or
 * more segments than max_segs).
 */
uint16_t nvme_prp_map(uint64_t prp1, uint64_t prp2, uint64_t len, nvme_read_fn rd,
                      void *ctx, uint64_t *scratch, size_t scratch_entries,
                      struct nvme_seg *segs, unsigned max_segs, unsigned *nsegs);

/* Limits the controller applies to queue creation. */
struct nvme_queue_limits {
    uint16_t max_qid; /* highest I/O queue id allowed (allocated queues) */
    uint32_t mqes;    /* CAP.MQES, 0's based */
    uint32_t nvec;    /* interrupt vectors (MSI-X table size) */
    uint32_t page_size;
};

struct nvme_create_q {
    uint16_t qid;
    uint32_t size; /* entries (not 0's based) */
    uint64_t base;
    bool ien;      /* CQ: interrupts enabled */
    uint16_t iv;   /* CQ: interrupt vector */
    uint16_t cqid; /* SQ: completion queue */
};

/*
 * Create I/O Completion / Submission Queue fields (Base §5.4, §5.5):
 * Invalid Queue Identifier (QID 0 or above max_qid), Invalid Queue Size
 * (QSIZE 0, i.e. one entry, or above MQES), Invalid Field (PC = 0: CAP.CQR
 * requires contiguous queues), Invalid PRP Offset (base not page aligned),
 * Invalid Interrupt Vector (CQ, IEN set, IV >= nvec), Completion Queue
 * Invalid (SQ, CQID 0). Whether the queue ids are in use is the caller's.
 */
uint16_t nvme_create_cq_parse(const struct nvme_cmd *cmd, const struct nvme_queue_limits *l,
                              struct nvme_create_q *q);
uint16_t nvme_create_sq_parse(const struct nvme_cmd *cmd, const struct nvme_queue_limits *l,
                              struct nvme_create_q *q);

struct nvme_get_log {
    uint8_t lid;
    bool rae;        /* retain asynchronous event */
    uint64_t offset; /* bytes */
    uint64_t len;    /* bytes */
};

/* Get Log Page fields (Base §5.16): Invalid Field when the offset is not
 * dword aligned or the length exceeds max_len. */
uint16_t nvme_get_log_parse(const struct nvme_cmd *cmd, uint32_t max_len,
                            struct nvme_get_log *log);

/* Controller enable check (Base §3.5.1 "Controller Initialization"): the CC
 * fields and admin queue registers a controller with capabilities `cap` can
 * run with: CSS the NVM command set (or admin only when CAP.CSS says so),
 * MPS within MPSMIN..MPSMAX, AMS round robin, IOSQES = 6, IOCQES = 4, admin
 * queues of 2..4096 entries, ASQ and ACQ programmed (non-zero, page
 * aligned). Returns true when valid. */
bool nvme_cc_valid(uint32_t cc, uint64_t cap, uint32_t aqa, uint64_t asq, uint64_t acq);

/* Doorbell decode: offset within BAR0 -> queue id and kind. Returns 0, or
 * -EINVAL when off is not a dword doorbell in [DBS, DBS + 4 KiB). */
int nvme_db_decode(uint64_t off, uint16_t *qid, bool *is_cq);

/* A new CQ head is valid if it is inside the queue and does not pass the
 * tail, i.e. it only releases entries the controller posted. */
bool nvme_cq_head_valid(uint32_t size, uint32_t head, uint32_t tail, uint32_t new_head);

/* SMART data units: thousands of 512-byte units, rounded up (Base Figure
 * 207, Data Units Read). */
uint64_t nvme_data_units(uint64_t units_512);

/* Write a 128-bit little-endian counter (lo only) into 16 bytes. */
void nvme_put_u128(uint8_t out[16], uint64_t lo);

/* Copy `s` space padded into an ASCII field of `len` bytes (no NUL). */
void nvme_put_ascii(char *field, size_t len, const char *s);

/* ======================================================================== */
/* 4. Backing store (nvme_store.c)                                           */
/* ======================================================================== */

struct nvme_store;

/*
 * Open a backing store of `size` bytes (a multiple of 512). path NULL: RAM,
 * an anonymous MAP_NORESERVE mapping that costs nothing until written.
 * Otherwise a regular file, created (mode 0600) if absent and extended
 * sparsely to `size` if shorter (never truncated), locked exclusively
 * (flock) so that two devices cannot share it.
 * Returns 0 and *out, or -errno with a message in err: -EINVAL (size),
 * -EBUSY (file locked by another user), -ENOMEM, or the open/ftruncate error.
 */
int nvme_store_open(const char *path, uint64_t size, struct nvme_store **out, char *err,
                    size_t errlen);

/* fdatasync (file) and free everything. Accepts NULL. */
void nvme_store_close(struct nvme_store *s);

/* Size of an existing file, 0 if it does not exist. Returns 0 or -errno. */
int nvme_store_file_size(const char *path, uint64_t *size);

/* Byte I/O within the store; callers checked the range. Returns 0, -EINVAL
 * (outside the store) or -EIO/-ENOSPC/-errno from the file. */
int nvme_store_read(struct nvme_store *s, uint64_t off, void *buf, size_t len);
int nvme_store_write(struct nvme_store *s, uint64_t off, const void *buf, size_t len);

/* Make [off, off + len) read back as zeros, releasing the space where the
 * store can (hole punching, MADV_DONTNEED). Returns 0 or -errno. */
int nvme_store_zero(struct nvme_store *s, uint64_t off, uint64_t len);

/* Make every completed write durable (fdatasync; RAM: no-op). 0 or -errno. */
int nvme_store_sync(struct nvme_store *s);

/* Whether writes can sit in a volatile cache that nvme_store_sync() empties
 * (the file's page cache). RAM has none: its data is the volatile medium. */
bool nvme_store_has_volatile_cache(const struct nvme_store *s);

/* ======================================================================== */
/* The kind (registered in devices.c)                                        */
/* ======================================================================== */

struct simpci_kind;
extern const struct simpci_kind simpci_kind_nvme;

#endif /* VFIO_DEXT_NVME_H */
