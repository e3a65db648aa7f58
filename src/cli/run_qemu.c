/* SPDX-License-Identifier: BSD-3-Clause */
/* `vfio-dext run`: QEMU's command line, the child process, its console (run_qemu.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli/run_qemu.h"

/* ---- The argument vector ----------------------------------------------------------- */

struct argv_buf {
    char **v;
    size_t n, cap;
    bool failed; /* an allocation failed: the result is NULL */
};

static void push_owned(struct argv_buf *b, char *s)
{
    char **nv;

    if (s == NULL || b->failed) {
        b->failed = true;
        free(s);
        return;
    }
    if (b->n + 2 > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 32;
        nv = realloc(b->v, b->cap * sizeof(*nv));
        if (nv == NULL) {
            b->failed = true;
            free(s);
            return;
        }
        b->v = nv;
    }
    b->v[b->n++] = s;
    b->v[b->n] = NULL;
}

static void push(struct argv_buf *b, const char *s)
{
    push_owned(b, strdup(s));
}

static void pushf(struct argv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pushf(struct argv_buf *b, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
    }
    va_end(ap);
    push_owned(b, s);
}

/* Standard base64 of n bytes into a new string. */
static char *base64(const char *in, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    const unsigned char *p = (const unsigned char *)in;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t left = n - i;

        v |= left > 1 ? (uint32_t)p[i + 1] << 8 : 0;
        v |= left > 2 ? p[i + 2] : 0;
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        *o++ = left > 1 ? tab[(v >> 6) & 63] : '=';
        *o++ = left > 2 ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* The project guest: exit status via isa-debug-exit, kernel, initrd, command. */
static void push_guest(struct argv_buf *b, const struct run_qemu_cfg *cfg)
{
    char *cmd64 = base64(cfg->guest_cmd, strlen(cfg->guest_cmd));

    push(b, "-device");
    push(b, "isa-debug-exit,iobase=0xf4,iosize=0x04");
    push(b, "-kernel");
    push(b, cfg->kernel);
    push(b, "-initrd");
    push(b, cfg->initrd);
    push(b, "-append");
    if (cmd64 == NULL) {
        b->failed = true;
        return;
    }
    pushf(b, "console=ttyS0 quiet panic=-1 e2e_cmd64=%s", cmd64);
    free(cmd64);
}

/* The device, as JSON: the socket path is escaped for a JSON string. */
static void push_device(struct argv_buf *b, const char *socket)
{
    char path[4096 * 2];
    size_t j = 0;

    for (const char *p = socket; *p != '\0' && j + 2 < sizeof(path); p++) {
        if (*p == '"' || *p == '\\') {
            path[j++] = '\\';
        }
        path[j++] = *p;
    }
    path[j] = '\0';
    push(b, "-device");
    pushf(b, "{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"%s\"},"
             "\"addr\":\"05.0\"}",
          path);
}

char **run_qemu_argv(const struct run_qemu_cfg *cfg)
{
    struct argv_buf b = {0};
    uint64_t mib = cfg->memory >> 20;

    if (cfg->kernel != NULL && strlen(cfg->guest_cmd) > RUN_MAX_GUEST_CMD) {
        errno = E2BIG;
        return NULL;
    }
    push(&b, cfg->qemu);
    push(&b, "-accel");
    push(&b, cfg->accel);
    push(&b, "-smp");
    pushf(&b, "%u", cfg->smp);
    push(&b, "-m");
    pushf(&b, "%" PRIu64 "M", mib);
    push(&b, "-object");
    pushf(&b, "memory-backend-memfd,id=vdx-ram,size=%" PRIu64 "M,share=on", mib);
    push(&b, "-machine");
    push(&b, "q35,memory-backend=vdx-ram");
    push(&b, "-nographic");
    push(&b, "-vga");
    push(&b, "none");
    push(&b, "-net");
    push(&b, "none");
    if (!cfg->reboot) {
        push(&b, "-no-reboot");
    }
    if (cfg->kernel != NULL) {
        push_guest(&b, cfg);
    }
    push_device(&b, cfg->socket);
    for (char **e = cfg->extra; e != NULL && *e != NULL; e++) {
        push(&b, *e);
    }
    if (b.failed) {
        run_qemu_argv_free(b.v);
        errno = ENOMEM;
        return NULL;
    }
    return b.v;
}

void run_qemu_argv_free(char **argv)
{
    for (char **p = argv; p != NULL && *p != NULL; p++) {
        free(*p);
    }
    free(argv);
}

/* ---- The child ---------------------------------------------------------------------- */

/* In the child, between fork and exec: only async-signal-safe calls. */
static void exec_child(char **argv, int out_fd)
{
    sigset_t none;

#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(out_fd, STDOUT_FILENO) < 0) {
        _exit(127);
    }
    close(out_fd);
    execvp(argv[0], argv);
    _exit(127);
}

int run_qemu_spawn(char **argv, pid_t *out_pid, int *out_fd)
{
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0) {
        return -errno;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        int err = errno;

        close(p[0]);
        close(p[1]);
        return -err;
    }
    if (pid == 0) {
        close(p[0]);
        exec_child(argv, p[1]);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    *out_pid = pid;
    *out_fd = p[0];
    return 0;
}

/* ---- The console -------------------------------------------------------------------- */

#define SUMMARY_TAG "VDX-SUMMARY: "
#define RESULT_TAG "E2E-GUEST: result rc="
#define BOOT_TAG "E2E-GUEST: init on"

static bool starts_with(const char *s, const char *tag)
{
    return strncmp(s, tag, strlen(tag)) == 0;
}

/* A whole line (no newline; may end in '\r'). Tags count only at the start
 * of a line: the guest also echoes commands that contain them. */
static void console_line(struct run_console *con, char *line)
{
    size_t n = strlen(line);

    if (n > 0 && line[n - 1] == '\r') {
        line[n - 1] = '\0';
    }
    if (starts_with(line, SUMMARY_TAG) && con->n_summary < RUN_MAX_SUMMARY) {
        /* line is con->line: same size, so the tail fits */
        memcpy(con->summary[con->n_summary++], line + strlen(SUMMARY_TAG),
               n + 1 - strlen(SUMMARY_TAG));
    } else if (starts_with(line, RESULT_TAG)) {
        con->guest_rc = atoi(line + strlen(RESULT_TAG));
    } else if (starts_with(line, BOOT_TAG)) {
        con->boots++;
    }
}

static void console_bytes(struct run_console *con, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            con->line[con->len] = '\0';
            console_line(con, con->line);
            con->len = 0;
        } else if (con->len + 1 < RUN_LINE_MAX) {
            con->line[con->len++] = p[i];
        }
    }
}

int run_console_read(int fd, struct run_console *con, FILE *echo)
{
    char buf[4096];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n == 0) {
            return 0;
        }
        if (n < 0) {
            return errno == EAGAIN ? 1 : errno == EINTR ? 1 : -errno;
        }
        fwrite(buf, 1, (size_t)n, echo);
        fflush(echo);
        console_bytes(con, buf, (size_t)n);
    }
}
