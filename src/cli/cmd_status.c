/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext status`: is a dext running, and its status JSON (devices,
 * claims, clients, counters), as is or rendered readably. The renderer walks
 * whatever keys the dext reports rather than a fixed schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"

static const char usage[] =
    "Usage: vfio-dext status [--dext unix[:DIR]] [--json]\n"
    "\n"
    "Tell whether a dext is running and show its status: IOMMU mode, devices,\n"
    "claims, clients and per-device counters.\n"
    "\n"
    "Options:\n"
    "  --dext unix[:DIR]   the dext to ask (default: unix, the default runtime dir)\n"
    "  --json              print the dext's status JSON as is\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit codes: 0 running, 1 the dext refused, 2 usage error, 3 no dext running.\n";


/* ---- Generic rendering of a JSON object ---------------------------------- */

static void render_object(json_object *obj, int indent, const char *skip);

#define RENDER_WIDTH 88

static bool is_scalar(json_object *v)
{
    return !json_object_is_type(v, json_type_object) &&
           !json_object_is_type(v, json_type_array);
}

static bool is_scalar_array(json_object *v)
{
    size_t n;

    if (!json_object_is_type(v, json_type_array)) {
        return false;
    }
    n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++) {
        if (!is_scalar(json_object_array_get_idx(v, i))) {
            return false;
        }
    }
    return true;
}

static void print_scalar(json_object *v)
{
    if (!v) {
        fputs("-", stdout);
    } else if (json_object_is_type(v, json_type_boolean)) {
        fputs(json_object_get_boolean(v) ? "yes" : "no", stdout);
    } else {
        fputs(json_object_get_string(v), stdout);
    }
}

static void print_scalar_array(json_object *arr)
{
    size_t n = json_object_array_length(arr);

    if (n == 0) {
        fputs("none", stdout);
    }
    for (size_t i = 0; i < n; i++) {
        if (i) {
            fputs(", ", stdout);
        }
        print_scalar(json_object_array_get_idx(arr, i));
    }
}

/* "devices" -> "device"; anything else unchanged. */
static void singular(const char *key, char *buf, size_t len)
{
    size_t n = strlen(key);

    snprintf(buf, len, "%s", key);
    if (n > 1 && n < len && key[n - 1] == 's') {
        buf[n - 1] = '\0';
    }
}

/* A label for an array element: its bdf, name or id, else its index.
 * Returns the key used (not repeated in the body), or NULL. */
static const char *element_label(json_object *el, size_t idx, char *buf, size_t len)
{
    static const char *const keys[] = {"bdf", "name", "id"};
    json_object *v;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (json_object_object_get_ex(el, keys[i], &v) && is_scalar(v)) {
            snprintf(buf, len, "%s", json_object_get_string(v));
            return keys[i];
        }
    }
    snprintf(buf, len, "#%zu", idx);
    return NULL;
}

/* An object of scalars only (counters): "name=value" pairs, wrapped. */
static bool is_flat(json_object *obj)
{
    json_object_object_foreach(obj, key, val)
    {
        (void)key;
        if (!is_scalar(val)) {
            return false;
        }
    }
    return true;
}

static void render_flat(json_object *obj, int indent)
{
    int col = 0;

    json_object_object_foreach(obj, key, val)
    {
        const char *v = json_object_get_string(val);
        int w = (int)(strlen(key) + 1 + strlen(v ? v : "-"));

        if (col > 0 && col + 2 + w > RENDER_WIDTH) {
            putchar('\n');
            col = 0;
        }
        col += col == 0 ? printf("%*s", indent, "") : printf("  ");
        col += printf("%s=%s", key, v ? v : "-");
    }
    if (col > 0) {
        putchar('\n');
    }
}

static void render_element(const char *name, json_object *el, size_t idx, int indent)
{
    char label[128];
    const char *skip;

    if (!json_object_is_type(el, json_type_object)) {
        printf("%*s%s: ", indent, "", name);
        print_scalar(el);
        putchar('\n');
        return;
    }
    skip = element_label(el, idx, label, sizeof(label));
    printf("%*s%s %s\n", indent, "", name, label);
    render_object(el, indent + 2, skip);
}

static void render_array(const char *key, json_object *arr, int indent)
{
    size_t n = json_object_array_length(arr);
    char name[64];

    singular(key, name, sizeof(name));
    for (size_t i = 0; i < n; i++) {
        if (indent == 0) {
            putchar('\n');
        }
        render_element(name, json_object_array_get_idx(arr, i), i, indent);
    }
}

/* Scalars first ("key: value"; an array of objects shows its length), then
 * nested objects and arrays of objects. */
static void render_object(json_object *obj, int indent, const char *skip)
{
    json_object_object_foreach(obj, key, val)
    {
        if (skip && strcmp(key, skip) == 0) {
            continue;
        }
        if (is_scalar(val)) {
            printf("%*s%s: ", indent, "", key);
            print_scalar(val);
            putchar('\n');
        } else if (is_scalar_array(val)) {
            printf("%*s%s: ", indent, "", key);
            print_scalar_array(val);
            putchar('\n');
        } else if (json_object_is_type(val, json_type_array)) {
            printf("%*s%s: %zu\n", indent, "", key, json_object_array_length(val));
        }
    }
    json_object_object_foreach(obj, key2, val2)
    {
        if (json_object_is_type(val2, json_type_object)) {
            printf("%*s%s:\n", indent, "", key2);
            if (is_flat(val2)) {
                render_flat(val2, indent + 2);
            } else {
                render_object(val2, indent + 2, NULL);
            }
        } else if (!is_scalar(val2) && !is_scalar_array(val2)) {
            render_array(key2, val2, indent);
        }
    }
}

static int render(const struct cli_target *t, const char *text)
{
    json_object *root = json_tokener_parse(text);

    if (!root || !json_object_is_type(root, json_type_object)) {
        cli_error("status",
                  "the dext at %s sent a status that is not a JSON object "
                  "(rerun with --json to see it)",
                  t->dir);
        json_object_put(root);
        return CLI_EXIT_FAILED;
    }
    printf("dext: running at %s\n", t->dir);
    render_object(root, 0, NULL);
    json_object_put(root);
    return CLI_EXIT_OK;
}

int cli_cmd_status(int argc, char **argv)
{
    struct vdx_endpoint *ep = NULL;
    struct cli_target t;
    const char *uri = NULL;
    char *text = NULL;
    bool json = false;
    dext_status st;
    int rc = cli_parse_dext_json("status", usage, argc, argv, &uri, &json);

    if (rc >= 0) {
        return rc;
    }
    rc = cli_target_parse("status", uri, &t);
    if (rc == CLI_EXIT_OK) {
        rc = cli_target_open("status", &t, &ep);
    }
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    st = vdx_dext_status(ep, &text);
    if (st != DEXT_OK) {
        rc = cli_report_dext_error("status", &t, "cannot read the dext's status", st);
    } else if (json) {
        puts(text);
    } else {
        rc = render(&t, text);
    }
    free(text);
    vdx_endpoint_free(ep);
    return rc;
}
