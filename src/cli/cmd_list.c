/* SPDX-License-Identifier: BSD-3-Clause */
/* `vfio-dext list-devices`: the devices a dext owns, as a table or JSON. */
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "cli/cli.h"

static const char usage[] =
    "Usage: vfio-dext list-devices [--dext unix[:DIR]] [--json]\n"
    "\n"
    "List the devices a running dext owns: BDF, vendor, device, class and\n"
    "whether a client has claimed it.\n"
    "\n"
    "Options:\n"
    "  --dext unix[:DIR]   the dext to ask (default: unix, the default runtime dir)\n"
    "  --json              print {\"devices\":[{\"bdf\",\"vendor\",\"device\",\"class\",\n"
    "                      \"claimed\"}]}\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit codes: 0 listed, 1 the dext refused, 2 usage error, 3 no dext running.\n";


static json_object *hex_string(unsigned value, int digits)
{
    char buf[16];

    snprintf(buf, sizeof(buf), "0x%0*x", digits, value);
    return json_object_new_string(buf);
}

static json_object *device_json(const struct vdx_device_desc *d)
{
    json_object *o = json_object_new_object();
    char bdf[CLI_BDF_LEN];

    json_object_object_add(o, "bdf",
                           json_object_new_string(cli_bdf_str(d, bdf, sizeof(bdf))));
    json_object_object_add(o, "vendor", hex_string(d->vendor, 4));
    json_object_object_add(o, "device", hex_string(d->device, 4));
    json_object_object_add(o, "class", hex_string(d->class_code, 6));
    json_object_object_add(o, "claimed", json_object_new_boolean(d->claimed));
    return o;
}

static void print_json(const struct vdx_device_desc *devs, size_t n)
{
    json_object *root = json_object_new_object();
    json_object *arr = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        json_object_array_add(arr, device_json(&devs[i]));
    }
    json_object_object_add(root, "devices", arr);
    puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

static void print_table(const struct vdx_device_desc *devs, size_t n)
{
    char bdf[CLI_BDF_LEN];

    if (n == 0) {
        puts("(the dext owns no devices)");
        return;
    }
    printf("%-13s %-6s %-6s %-8s %s\n", "BDF", "VENDOR", "DEVICE", "CLASS", "CLAIMED");
    for (size_t i = 0; i < n; i++) {
        printf("%-13s 0x%04x 0x%04x 0x%06x %s\n", cli_bdf_str(&devs[i], bdf, sizeof(bdf)),
               devs[i].vendor, devs[i].device, devs[i].class_code,
               devs[i].claimed ? "yes" : "no");
    }
}

int cli_cmd_list_devices(int argc, char **argv)
{
    struct vdx_device_desc *devs = NULL;
    struct vdx_endpoint *ep = NULL;
    struct cli_target t;
    const char *uri = NULL;
    bool json = false;
    dext_status st;
    size_t n = 0;
    int rc = cli_parse_dext_json("list-devices", usage, argc, argv, &uri, &json);

    if (rc >= 0) {
        return rc;
    }
    rc = cli_target_parse("list-devices", uri, &t);
    if (rc == CLI_EXIT_OK) {
        rc = cli_target_open("list-devices", &t, &ep);
    }
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    st = vdx_list_devices(ep, &devs, &n);
    if (st != DEXT_OK) {
        rc = cli_report_dext_error("list-devices", &t, "cannot list the devices", st);
    } else if (json) {
        print_json(devs, n);
    } else {
        print_table(devs, n);
    }
    free(devs);
    vdx_endpoint_free(ep);
    return rc;
}
