/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `vfio-dext` command: shared pieces of the command files.
 *
 * Error convention of this layer (CONVENTIONS 3): library calls return a
 * dext_status or -errno; a command turns the one it consumes into a message on
 * stderr, printed once, in words naming what to do, and into an exit code.
 *
 * Exit codes of every command:
 *   0 success; 1 a check or operation failed; 2 usage error;
 *   3 the dext cannot be reached.
 */
#ifndef VFIO_DEXT_CLI_H
#define VFIO_DEXT_CLI_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport/unix_server.h"
#include "vfio-dext/client.h"
#include "vfio-dext/dext.h"

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_UNREACHABLE = 3,
};

/* One command: `vfio-dext NAME ARGS...`. run() gets argv[0] = NAME. */
struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

int cli_cmd_dext(int argc, char **argv);
int cli_cmd_list_devices(int argc, char **argv);
int cli_cmd_status(int argc, char **argv);
int cli_cmd_probe(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);

/* ---- Stopping on a signal ------------------------------------------------ */

/* Set by SIGINT/SIGTERM while cli_signals_install() is in effect: the one
 * process-wide state of the command, as a handler has no context argument. */
extern volatile sig_atomic_t cli_stop_requested;

/* Clear the flag; SIGINT/SIGTERM set it (no SA_RESTART: blocking calls return
 * EINTR); SIGPIPE ignored. */
void cli_signals_install(void);

/* SIGINT, SIGTERM and SIGPIPE back to their defaults. */
void cli_signals_restore(void);

/* Print "vfio-dext CMD: MESSAGE\n" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print a usage error plus "(see: vfio-dext CMD --help)"; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Print the message for an option getopt_long() refused (it is silenced with
 * opterr = 0) and return CLI_EXIT_USAGE. `opt` is getopt's return, `argv`
 * the command's arguments.
 */
int cli_getopt_error(const char *cmd, int opt, char **argv);

/* Print `text` on stdout; returns CLI_EXIT_OK. For --help. */
int cli_help(const char *text);

/*
 * Options of the commands that only read a dext: [--dext URI] [--json]
 * [--help]. Returns -1 to go on, or the exit code (help shown, usage error).
 */
int cli_parse_dext_json(const char *cmd, const char *usage, int argc, char **argv,
                        const char **uri, bool *json);

/* Parse an unsigned decimal (or 0x hex) number into *out. Returns 0 or -EINVAL. */
int cli_parse_u64(const char *s, uint64_t *out);

/* Parse a byte count with an optional K, M, G or T suffix (powers of 1024).
 * Returns 0 or -EINVAL (also on overflow). */
int cli_parse_size(const char *s, uint64_t *out);

/* Parse "identity" or "dart". Returns 0 or -EINVAL. */
int cli_parse_iommu(const char *s, enum dext_iommu_mode *out);
const char *cli_iommu_name(enum dext_iommu_mode mode);

/* ---- Reaching a dext ------------------------------------------------------ */

/* Where `--dext unix[:DIR]` points. */
struct cli_target {
    char dir[PATH_MAX];     /* the runtime dir */
    char uri[PATH_MAX + 8]; /* "unix:DIR" */
    bool default_dir;       /* no DIR given: the default runtime dir */
};

/*
 * Fill *t from a --dext value (NULL: the default runtime dir). Prints the
 * usage error itself; returns CLI_EXIT_OK or CLI_EXIT_USAGE.
 */
int cli_target_parse(const char *cmd, const char *uri, struct cli_target *t);

/* Open the endpoint of *t. Prints the error itself; returns an exit code. */
int cli_target_open(const char *cmd, const struct cli_target *t, struct vdx_endpoint **ep);

/*
 * Turn a failed dext_status of an endpoint-level call into its message and
 * exit code: DEXT_E_NOT_ATTACHED gives "no dext is running at DIR (start one
 * with: ...)" and CLI_EXIT_UNREACHABLE; anything else `what` + the status
 * words and CLI_EXIT_FAILED.
 */
int cli_report_dext_error(const char *cmd, const struct cli_target *t, const char *what,
                          dext_status st);

/*
 * An in-process dext with one device from SPEC, and a local endpoint to it.
 * Prints the error itself; returns an exit code. Destroy with
 * cli_local_destroy() (NULL-safe on both).
 */
struct dext;
int cli_local_create(const char *cmd, const char *spec, enum dext_iommu_mode iommu,
                     struct dext **d, struct vdx_endpoint **ep);
void cli_local_destroy(struct dext *d, struct vdx_endpoint *ep);

/* "DDDD:BB:DD.F" of a device description. buf must hold 13 bytes. */
const char *cli_bdf_str(const struct vdx_device_desc *id, char *buf, size_t len);

#define CLI_BDF_LEN 16

/* ---- The daemon (`vfio-dext dext`) --------------------------------------- */

#define CLI_MAX_DEVICES 64

struct cli_dext_opts {
    const char *devices[CLI_MAX_DEVICES]; /* SPECs */
    unsigned n_devices;
    const char *runtime_dir; /* NULL: vdx_default_runtime_dir() */
    enum dext_iommu_mode iommu;
    uint64_t dart_aperture;     /* 0: the default (1.5 GiB) */
    uint64_t dart_max_mappings; /* 0: the default (65,536) */
    bool allow_any_uid;
    uid_t allowed_uids[VDX_UNIX_MAX_ALLOWED_UIDS];
    unsigned n_allowed_uids;
    bool verbose;
};

/*
 * Run a dext serving o->devices on the unix socket until SIGINT or SIGTERM.
 * Prints one ready line on stdout. Returns an exit code.
 */
int cli_dext_serve(const struct cli_dext_opts *o);

#endif /* VFIO_DEXT_CLI_H */
