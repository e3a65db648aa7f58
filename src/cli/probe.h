/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext probe`: the checks and how they report.
 *
 * A check is a function over struct probe that calls the client library and
 * reports one or more lines through probe_report(): PASS, FAIL or SKIP, the
 * selector it exercises, what it checked and the value it saw. Checks run in
 * the order of probe_checks[]; later checks use what earlier ones recorded
 * (claim, BAR table, interrupt setup). A check cleans up what it acquired.
 * Device-specific checks run only on sim:testdev (p->testdev) and report SKIP
 * with the reason elsewhere.
 */
#ifndef VFIO_DEXT_CLI_PROBE_H
#define VFIO_DEXT_CLI_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "vfio-dext/client.h"
#include "vfio-dext/dext.h"

enum probe_result { PROBE_PASS, PROBE_FAIL, PROBE_SKIP };

/* "selector" of a check that exercises no selector (e.g. mapping memory). */
#define PROBE_NO_SEL (-1)

struct probe_bar {
    dext_status st; /* GetBARInfo result */
    uint32_t mem_idx;
    uint64_t size; /* 0: unused or upper half */
    uint8_t type;
};

struct probe {
    struct vdx_conn *conn;
    struct vdx_device_desc want; /* the BDF asked for */
    struct vdx_device_desc id;   /* GetIdentity */
    char bdf[CLI_BDF_LEN];
    bool testdev;          /* identity is sim:testdev */
    bool claimed_by_other; /* claimed before the probe started */
    bool claimed;          /* our Claim succeeded */
    struct probe_bar bars[DEXT_NUM_BARS];
    uint32_t nvec; /* vectors set up; 0: not set up */
    struct dext_irq_page *irq_page;

    bool json;
    json_object *checks; /* array, --json only */
    unsigned passed, failed, skipped;
};

typedef void (*probe_check_fn)(struct probe *p);

/* Report one check. sel: selector number or PROBE_NO_SEL; name: NULL for the
 * selector's name. */
void probe_report(struct probe *p, int sel, const char *name, enum probe_result r,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* PASS when st == want, else FAIL naming both. `what` says what was tried. */
void probe_expect_status(struct probe *p, int sel, const char *what, dext_status st,
                         dext_status want);

/* "" for DEXT_OK, else "; " + the status words, for the end of a detail.
 * Returns a static buffer: one use per probe_report() call. */
const char *probe_err(dext_status st);

/* The seed's name of a selector ("ConfigRead"); "?" when out of range. */
const char *probe_sel_name(int sel);

/* "64 KiB" into buf. */
const char *probe_size_str(uint64_t size, char *buf, size_t len);

/* sim:testdev BAR0 register access through selectors 11/12. */
dext_status probe_td_read(struct probe *p, uint32_t reg, unsigned width, uint64_t *val);
dext_status probe_td_write(struct probe *p, uint32_t reg, unsigned width, uint64_t val);

/*
 * Checks that change the device's state (config writes, MMIO writes, reset)
 * are skipped when another client holds a claim: the device is in use (by a
 * VM, say) and the probe must not disturb it. Returns true (and reports
 * SKIP) in that case.
 */
bool probe_skip_if_in_use(struct probe *p, int sel, const char *name, const char *what);

/* Skip a check that drives the device (raise a vector, run its DMA engine):
 * returns true (and reports SKIP) when the device is not sim:testdev or is
 * in use by another client. */
bool probe_skip_unless_testdev(struct probe *p, int sel, const char *name,
                               const char *what);

/* Skip a check that needs our claim: returns true (and reports SKIP). */
bool probe_skip_unless_claimed(struct probe *p, int sel, const char *what);

/* The checks, by area (probe_config.c, probe_dma.c, probe_irq.c). */
void probe_check_identity(struct probe *p);
void probe_check_config_ids(struct probe *p);
void probe_check_config_widths(struct probe *p);
void probe_check_config_write(struct probe *p);
void probe_check_not_open(struct probe *p);
void probe_check_claim(struct probe *p);
void probe_check_bar_info(struct probe *p);
void probe_check_bar_synthesis(struct probe *p);
void probe_check_map_bars(struct probe *p);
void probe_check_mmio(struct probe *p);
void probe_check_dma_buffer(struct probe *p);
void probe_check_dma_regions(struct probe *p);
void probe_check_dma_copy(struct probe *p);
void probe_check_irq_setup(struct probe *p);
void probe_check_irq_mask(struct probe *p);
void probe_check_irq_notify(struct probe *p);
void probe_check_reset(struct probe *p);
void probe_check_terminate(struct probe *p);

#endif /* VFIO_DEXT_CLI_PROBE_H */
