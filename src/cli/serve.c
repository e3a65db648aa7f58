/* SPDX-License-Identifier: BSD-3-Clause */
/* Serving one dext device over vfio-user: setup, one step, release (serve.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/serve.h"

static int open_endpoint(const struct cli_serve_opts *o, struct cli_serve *s)
{
    int rc;

    if (o->local != NULL) {
        return cli_local_create(o->cmd, o->local, o->iommu, &s->local, &s->ep);
    }
    rc = cli_target_parse(o->cmd, o->dext, &s->target);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    return cli_target_open(o->cmd, &s->target, &s->ep);
}

/* No BDF given: the dext's first device. */
static int pick_device(const struct cli_serve_opts *o, struct cli_serve *s)
{
    struct vdx_device_desc *devs = NULL;
    size_t n = 0;
    dext_status st;

    if (o->bdf != NULL) {
        snprintf(s->bdf, sizeof(s->bdf), "%s", o->bdf);
        return CLI_EXIT_OK;
    }
    st = vdx_list_devices(s->ep, &devs, &n);
    if (st != DEXT_OK) {
        return cli_report_dext_error(o->cmd, &s->target, "cannot list the dext's devices",
                                     st);
    }
    if (n == 0) {
        free(devs);
        cli_error(o->cmd, "the dext owns no device (start it with --device SPEC)");
        return CLI_EXIT_FAILED;
    }
    cli_bdf_str(&devs[0], s->bdf, sizeof(s->bdf));
    free(devs);
    return CLI_EXIT_OK;
}

/* The device's shared connection: connected, claimed and published in the
 * table, or one more reference to it. */
static int connect_device(const struct cli_serve_opts *o, struct cli_serve *s)
{
    dext_status st = DEXT_OK;
    int rc = vdx_conn_table_create(&s->conns);

    if (rc == 0) {
        rc = vdx_conn_table_acquire(s->conns, s->ep, s->bdf, &s->conn, &st);
    }
    if (rc == 0) {
        return CLI_EXIT_OK;
    }
    if (st == DEXT_E_NOT_FOUND) {
        cli_error(o->cmd, "the dext owns no device %s (see: vfio-dext list-devices)",
                  s->bdf);
        return CLI_EXIT_FAILED;
    }
    if (st != DEXT_OK) {
        return cli_report_dext_error(o->cmd, &s->target,
                                     "cannot connect to or claim the device", st);
    }
    cli_error(o->cmd, "%s: cannot connect to the device: %s", s->bdf, strerror(-rc));
    return CLI_EXIT_FAILED;
}

static int create_backend(const struct cli_serve_opts *o, struct cli_serve *s)
{
    int rc = vdx_passthru_create(s->conn, s->bdf, &s->pt);

    if (rc == -EEXIST) {
        cli_error(o->cmd, "%s: another client already set up its interrupts (is "
                  "another serve running for it?)", s->bdf);
        return CLI_EXIT_FAILED;
    }
    if (rc < 0) {
        cli_error(o->cmd, "%s: cannot claim the device or set up its interrupts: %s",
                  s->bdf, strerror(-rc));
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

static int create_server(const struct cli_serve_opts *o, struct cli_serve *s)
{
    struct vdx_vu_server_opts so;
    int rc;

    vdx_vu_server_opts_default(&so);
    so.name = s->bdf;
    rc = vdx_vu_server_create_opts(o->socket, &so, vdx_passthru_ops(), s->pt, &s->srv);
    if (rc == -EADDRINUSE) {
        cli_error(o->cmd, "another server is already listening on %s", o->socket);
    } else if (rc == -EEXIST) {
        cli_error(o->cmd, "%s exists and is not a socket (remove it or pick another "
                  "--socket)", o->socket);
    } else if (rc < 0) {
        cli_error(o->cmd, "cannot listen on %s: %s", o->socket, strerror(-rc));
    }
    return rc < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cli_serve_setup(const struct cli_serve_opts *o, struct cli_serve *s)
{
    int rc;

    s->cmd = o->cmd;
    rc = open_endpoint(o, s);
    if (rc == CLI_EXIT_OK) {
        rc = pick_device(o, s);
    }
    if (rc == CLI_EXIT_OK) {
        rc = connect_device(o, s);
    }
    if (rc == CLI_EXIT_OK) {
        rc = create_backend(o, s);
    }
    if (rc == CLI_EXIT_OK) {
        rc = create_server(o, s);
    }
    return rc;
}

void cli_serve_release(struct cli_serve *s)
{
    vdx_vu_server_destroy(s->srv);
    vdx_passthru_destroy(s->pt);
    if (s->conn != NULL) {
        vdx_conn_table_release(s->conns, s->ep, s->bdf, s->conn);
    }
    vdx_conn_table_destroy(s->conns);
    if (s->local != NULL) {
        cli_local_destroy(s->local, s->ep);
    } else {
        vdx_endpoint_free(s->ep);
    }
    memset(s, 0, sizeof(*s));
}

void cli_serve_pollfds(const struct cli_serve *s, struct pollfd p[CLI_SERVE_NFDS])
{
    p[0] = (struct pollfd){.fd = vdx_vu_server_fd(s->srv), .events = POLLIN};
    p[1] = (struct pollfd){.fd = vdx_passthru_irq_fd(s->pt), .events = POLLIN};
}

/* A line when a VMM attaches or goes; on detach, what is still held. */
static void note_attach(struct cli_serve *s)
{
    bool now = vdx_vu_server_connected(s->srv);
    struct vdx_vu_server_stats vs;
    struct vdx_passthru_stats ps;

    if (now == s->connected) {
        return;
    }
    s->connected = now;
    if (now) {
        printf("vfio-dext %s: %s: a VMM attached\n", s->cmd, s->bdf);
    } else {
        vdx_vu_server_stats(s->srv, &vs);
        vdx_passthru_stats(s->pt, &ps);
        printf("vfio-dext %s: %s: the VMM detached; still held: %u DMA maps, %u DMA "
               "files, %" PRIu64 " dext DMA registrations\n",
               s->cmd, s->bdf, vs.dma_maps, vs.dma_files, ps.dma_registered);
    }
    fflush(stdout);
}

int cli_serve_handle(struct cli_serve *s, const struct pollfd p[CLI_SERVE_NFDS])
{
    int rc;

    if (p[1].revents) {
        rc = vdx_passthru_step(s->pt);
        if (rc < 0) {
            vdx_passthru_report_lost(s->pt);
            cli_error(s->cmd, "%s: lost the dext's interrupts: %s", s->bdf, strerror(-rc));
            return CLI_EXIT_FAILED;
        }
    }
    if (p[0].revents) {
        rc = vdx_vu_server_step(s->srv, 0);
        if (rc < 0 && rc != -EINTR) {
            cli_error(s->cmd, "%s: serving failed: %s", s->bdf, strerror(-rc));
            return CLI_EXIT_FAILED;
        }
        note_attach(s);
    }
    return 0;
}

void cli_serve_print_stats(const struct cli_serve *s, FILE *f)
{
    struct vdx_vu_server_stats vs;
    struct vdx_passthru_stats ps;

    vdx_vu_server_stats(s->srv, &vs);
    vdx_passthru_stats(s->pt, &ps);
    fprintf(f, "vfio-dext %s: %s: %" PRIu64 " client(s), %" PRIu64 " messages (%" PRIu64
            " errors), %" PRIu64 " interrupts delivered; config writes %" PRIu64
            " (%" PRIu64 " dropped: STATUS/BARs); BAR accesses trapped %" PRIu64
            " reads %" PRIu64 " writes, %" PRIu64 " BAR(s) mmappable; DMA maps live %u\n",
            s->cmd, s->bdf, vs.clients, vs.messages, vs.error_replies, ps.irqs_delivered,
            ps.cfg_writes, ps.cfg_writes_dropped, ps.bar_reads, ps.bar_writes,
            (uint64_t)ps.bars_mmappable, vs.dma_maps);
}
