/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Config space of the passthrough backend (seed §4.6): reads forwarded to
 * the dext; writes through a per-register handler table, in the seed's
 * order:
 *  1. COMMAND (0x04-0x05): each overlapping byte is its own 1-byte write;
 *     a write entirely inside COMMAND is then done;
 *  2. STATUS (0x06-0x07) and BAR0-5 (0x10-0x27): any overlap drops the
 *     whole remaining write, which succeeds (the device's bus identity and
 *     address decoders belong to the host; QEMU emulates the BARs);
 *  3. anything else is forwarded as one write of 1, 2 or 4 bytes (other
 *     lengths: -EINVAL).
 * The ROM BAR (0x30), capabilities and vendor registers are forwarded.
 */
#include <errno.h>
#include <string.h>

#include "vfio/passthru_priv.h"

/* A handler's verdict: go on with the next register / the default, or the
 * write is complete (success). Negative: -errno. */
enum { CFG_CONTINUE = 0, CFG_DONE = 1 };

typedef int (*cfg_write_fn)(struct vdx_passthru *pt, uint32_t off, const uint8_t *buf,
                            uint32_t len);

struct cfg_reg {
    uint32_t off, len; /* the register's bytes [off, off + len) */
    cfg_write_fn write;
};

static bool overlaps(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
    return a < b + blen && b < a + alen;
}

/* COMMAND: forward each overlapping byte on its own. */
static int cfg_write_command(struct vdx_passthru *pt, uint32_t off, const uint8_t *buf,
                             uint32_t len)
{
    for (uint32_t o = PT_PCI_COMMAND; o < PT_PCI_COMMAND + 2; o++) {
        dext_status st;

        if (o < off || o >= off + len) {
            continue;
        }
        st = vdx_config_write(pt->conn, o, 1, buf[o - off]);
        if (st != DEXT_OK) {
            return vdx_passthru_errno(st);
        }
        pt->st.cfg_command_bytes++;
    }
    return off >= PT_PCI_COMMAND && off + len <= PT_PCI_COMMAND + 2 ? CFG_DONE
                                                                    : CFG_CONTINUE;
}

/* STATUS, BARs: the rest of the write never reaches the device. */
static int cfg_write_drop(struct vdx_passthru *pt, uint32_t off, const uint8_t *buf,
                          uint32_t len)
{
    (void)buf;
    pt->st.cfg_writes_dropped++;
    vdx_log(VDX_LOG_DEBUG, "passthru %s: config write of %u bytes at 0x%x dropped",
            pt->name, len, off);
    return CFG_DONE;
}

/* Evaluated in order; the first CFG_DONE or error ends the write. */
static const struct cfg_reg cfg_regs[] = {
    {PT_PCI_COMMAND, 2, cfg_write_command},
    {PT_PCI_STATUS, 2, cfg_write_drop},
    {PT_PCI_BAR0, PT_PCI_BAR_END - PT_PCI_BAR0, cfg_write_drop},
};

#define N_CFG_REGS (sizeof(cfg_regs) / sizeof(cfg_regs[0]))

static uint32_t get_le(const uint8_t *buf, uint32_t len)
{
    uint32_t v = 0;

    for (uint32_t i = 0; i < len; i++) {
        v |= (uint32_t)buf[i] << (8 * i);
    }
    return v;
}

/* Default handler: one write of the whole access. */
static int cfg_write_forward(struct vdx_passthru *pt, uint32_t off, const uint8_t *buf,
                             uint32_t len)
{
    if (len != 1 && len != 2 && len != 4) {
        pt->st.cfg_writes_rejected++;
        return -EINVAL;
    }
    pt->st.cfg_writes_forwarded++;
    return vdx_passthru_errno(vdx_config_write(pt->conn, off, len, get_le(buf, len)));
}

int pt_config_write(struct vdx_passthru *pt, uint64_t off64, const void *buf,
                    uint32_t count)
{
    uint32_t off = (uint32_t)off64; /* the server checked off + count <= 4096 */
    int rc;

    pt->st.cfg_writes++;
    for (size_t i = 0; i < N_CFG_REGS; i++) {
        if (!overlaps(off, count, cfg_regs[i].off, cfg_regs[i].len)) {
            continue;
        }
        rc = cfg_regs[i].write(pt, off, buf, count);
        if (rc != CFG_CONTINUE) {
            return rc < 0 ? rc : 0;
        }
    }
    return cfg_write_forward(pt, off, buf, count);
}

int pt_config_read(struct vdx_passthru *pt, uint64_t off64, void *buf, uint32_t count)
{
    uint32_t off = (uint32_t)off64, v;
    dext_status st;

    if (count == 1 || count == 2 || count == 4) {
        st = vdx_config_read(pt->conn, off, count, &v);
        if (st == DEXT_OK) {
            for (uint32_t i = 0; i < count; i++) {
                ((uint8_t *)buf)[i] = (uint8_t)(v >> (8 * i));
            }
        }
    } else {
        st = vdx_config_read_block(pt->conn, off, buf, count);
    }
    return vdx_passthru_errno(st);
}

/* Position of the MSI-X capability, or 0. Bounded walk: at most 48
 * capabilities (256 - 64) / 4. */
static uint32_t msix_cap_find(struct vdx_passthru *pt)
{
    uint32_t pos, id;

    if (vdx_config_read(pt->conn, PT_PCI_CAP_PTR, 1, &pos) != DEXT_OK) {
        return 0;
    }
    for (unsigned hops = 0; hops < 48 && pos >= 0x40 && pos < 0x100; hops++) {
        pos &= ~3u;
        if (vdx_config_read(pt->conn, pos, 2, &id) != DEXT_OK) {
            return 0;
        }
        if ((id & 0xff) == PT_PCI_CAP_ID_MSIX) {
            return pos;
        }
        pos = id >> 8;
    }
    return 0;
}

void pt_msix_probe(struct vdx_passthru *pt, struct pt_msix *m)
{
    uint32_t pos = msix_cap_find(pt), flags, table, pba;

    *m = (struct pt_msix){0};
    if (pos == 0 ||
        vdx_config_read(pt->conn, pos + PT_PCI_MSIX_FLAGS, 2, &flags) != DEXT_OK ||
        vdx_config_read(pt->conn, pos + PT_PCI_MSIX_TABLE, 4, &table) != DEXT_OK ||
        vdx_config_read(pt->conn, pos + PT_PCI_MSIX_PBA, 4, &pba) != DEXT_OK) {
        return;
    }
    *m = (struct pt_msix){
        .entries = (flags & PT_PCI_MSIX_QSIZE) + 1,
        .table_bir = (uint8_t)(table & PT_PCI_MSIX_BIR),
        .table_off = table & ~PT_PCI_MSIX_BIR,
        .pba_bir = (uint8_t)(pba & PT_PCI_MSIX_BIR),
        .pba_off = pba & ~PT_PCI_MSIX_BIR,
    };
}
