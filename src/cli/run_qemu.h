/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext run`: building QEMU's command line, starting it, and following
 * its console. QEMU is a child process whose stdout (the guest's serial
 * console with -nographic) comes back through a pipe, so run can echo it and
 * pick out the guest's summary and result lines.
 *
 * Thread-safety: none.
 */
#ifndef VFIO_DEXT_CLI_RUN_QEMU_H
#define VFIO_DEXT_CLI_RUN_QEMU_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Where scripts/setup-qemu.sh and scripts/setup-guest.sh put their results
 * by default. */
#define RUN_DEFAULT_QEMU "/var/cache/vfio-dext/qemu/qemu-system-x86_64"
#define RUN_DEFAULT_GUEST "/var/cache/vfio-dext/guest"

/* What QEMU gets. Strings are borrowed. */
struct run_qemu_cfg {
    const char *qemu;     /* the binary (a path, or a name looked up in PATH) */
    const char *accel;    /* -accel */
    uint64_t memory;      /* guest RAM in bytes (a multiple of 1 MiB) */
    unsigned smp;         /* vCPUs */
    const char *socket;   /* the vfio-user socket */
    const char *kernel;   /* the project guest: vmlinux; NULL: none */
    const char *initrd;   /* with kernel */
    const char *guest_cmd;/* with kernel: the command /init runs */
    bool reboot;          /* let a guest reboot (no -no-reboot) */
    char **extra;         /* appended arguments (NULL-terminated; may be NULL) */
};

/* The guest's lines run collects: "VDX-SUMMARY: ..." and the result. */
#define RUN_MAX_SUMMARY 32
#define RUN_LINE_MAX 512

struct run_console {
    char line[RUN_LINE_MAX]; /* the line being assembled */
    size_t len;
    char summary[RUN_MAX_SUMMARY][RUN_LINE_MAX];
    unsigned n_summary;
    int guest_rc;           /* from "E2E-GUEST: result rc=N"; -1: not seen */
    unsigned boots;         /* "E2E-GUEST: init on" lines seen */
};

/* The kernel's command line limits what a guest command may be. */
#define RUN_MAX_GUEST_CMD 1400

/*
 * Build the argument vector for cfg. Returns a NULL-terminated array whose
 * strings are owned by it (free with run_qemu_argv_free()), or NULL with
 * errno set: ENOMEM, or E2BIG when the guest command is longer than
 * RUN_MAX_GUEST_CMD.
 */
char **run_qemu_argv(const struct run_qemu_cfg *cfg);
void run_qemu_argv_free(char **argv);

/*
 * Start QEMU with argv; its stdout goes to a pipe whose read end is *out_fd
 * (non-blocking, close-on-exec), its stdin and stderr are ours. The child
 * gets SIGTERM if this process dies (Linux). Returns 0 and *out_pid, or
 * -errno (fork, pipe). An exec failure shows as exit status 127.
 */
int run_qemu_spawn(char **argv, pid_t *out_pid, int *out_fd);

/*
 * Read what is available on fd, echo it to `echo`, collect the guest's
 * lines into *con. Returns 1 while the pipe is open, 0 at end of file,
 * -errno on a read error.
 */
int run_console_read(int fd, struct run_console *con, FILE *echo);

#endif /* VFIO_DEXT_CLI_RUN_QEMU_H */
