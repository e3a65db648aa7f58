/* SPDX-License-Identifier: BSD-3-Clause */
#include "fixture.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "transport/unix_server.h"

static volatile sig_atomic_t daemon_stop;

static void on_term(int sig)
{
    (void)sig;
    daemon_stop = 1;
}

static struct dext *make_dext(enum dext_iommu_mode mode, const char *spec)
{
    struct dext_opts o;
    struct dext *d = NULL;
    char err[256] = "";

    dext_opts_default(&o);
    o.iommu = mode;
    if (dext_create(&o, &d) < 0) {
        return NULL;
    }
    if (dext_add_device(d, spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "fixture: %s: %s\n", spec, err);
        dext_destroy(d);
        return NULL;
    }
    return d;
}

/* The daemon child: serve until SIGTERM, then exit 0. */
static void daemon_main(const char *dir, enum dext_iommu_mode mode, const char *spec)
{
    struct vdx_unix_server_opts o = {.runtime_dir = dir};
    struct vdx_unix_server *srv = NULL;
    struct dext *d = make_dext(mode, spec);

    signal(SIGTERM, on_term);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a test that failed */
    if (!d || vdx_unix_server_create(d, &o, &srv) < 0) {
        _exit(1);
    }
    while (!daemon_stop) {
        int r = vdx_unix_server_step(srv, 100);

        if (r < 0 && r != -EINTR) {
            _exit(2);
        }
    }
    vdx_unix_server_destroy(srv);
    dext_destroy(d);
    _exit(0);
}

static int wait_for_socket(const char *dir)
{
    char path[128];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, VDX_UNIX_SOCKET_NAME);
    for (int i = 0; i < 500; i++) {
        if (stat(path, &st) == 0) {
            return 0;
        }
        usleep(10000);
    }
    return -1;
}

static int start_daemon(struct fixture *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/vdx-test-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    rmdir(f->dir); /* the server creates it 0700 itself */
    f->daemon = fork();
    if (f->daemon == 0) {
        daemon_main(f->dir, f->mode, f->spec);
    }
    if (f->daemon < 0 || wait_for_socket(f->dir) < 0) {
        fprintf(stderr, "fixture: daemon did not start in %s\n", f->dir);
        return -1;
    }
    snprintf(f->uri, sizeof(f->uri), "unix:%s", f->dir);
    return vdx_endpoint_parse(f->uri, &f->ep) == DEXT_OK ? 0 : -1;
}

int fixture_start(struct fixture *f, bool unix_transport, enum dext_iommu_mode mode)
{
    return fixture_start_spec(f, unix_transport, mode, "sim:testdev");
}

int fixture_start_spec(struct fixture *f, bool unix_transport, enum dext_iommu_mode mode,
                       const char *spec)
{
    memset(f, 0, sizeof(*f));
    f->unix_transport = unix_transport;
    f->mode = mode;
    f->spec = spec;
    vdx_log_set(NULL, NULL, VDX_LOG_ERR); /* tests provoke warnings on purpose */
    if (unix_transport) {
        return start_daemon(f);
    }
    f->dext = make_dext(mode, spec);
    if (!f->dext) {
        return -1;
    }
    return vdx_endpoint_local(f->dext, &f->ep) == DEXT_OK ? 0 : -1;
}

void fixture_stop(struct fixture *f)
{
    int status = 0;

    vdx_endpoint_free(f->ep);
    if (f->unix_transport && f->daemon > 0) {
        /* The daemon must have survived everything the tests sent it. */
        assert_int_equal(waitpid(f->daemon, &status, WNOHANG), 0);
        kill(f->daemon, SIGTERM);
        waitpid(f->daemon, &status, 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    dext_destroy(f->dext);
}

struct vdx_conn *fixture_connect(struct fixture *f)
{
    struct vdx_conn *c = NULL;

    assert_int_equal(vdx_connect(f->ep, "0000:00:01.0", &c), DEXT_OK);
    return c;
}

struct json_object *fixture_status(struct fixture *f)
{
    char *text = NULL;
    struct json_object *o;

    assert_int_equal(vdx_dext_status(f->ep, &text), DEXT_OK);
    o = json_tokener_parse(text);
    free(text);
    assert_non_null(o);
    return o;
}

uint64_t fixture_counter(struct fixture *f, const char *name)
{
    struct json_object *o = fixture_status(f), *devs, *dev, *c, *v;
    uint64_t n = UINT64_MAX;

    if (json_object_object_get_ex(o, "devices", &devs) &&
        (dev = json_object_array_get_idx(devs, 0)) != NULL) {
        if (json_object_object_get_ex(dev, "counters", &c) &&
            json_object_object_get_ex(c, name, &v)) {
            n = json_object_get_uint64(v);
        } else if (json_object_object_get_ex(dev, name, &v)) {
            n = json_object_get_type(v) == json_type_array
                    ? (uint64_t)json_object_array_length(v)
                    : json_object_get_uint64(v);
        }
    }
    json_object_put(o);
    return n;
}
