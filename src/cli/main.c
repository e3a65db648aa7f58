/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio-dext: the command. Dispatches `vfio-dext COMMAND ...` to one file per
 * command (cmd_*.c, bench_dext.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef VDX_VERSION
#define VDX_VERSION "unknown"
#endif

static const struct cli_command commands[] = {
    {"dext", "run a dext in the foreground, serving devices on a unix socket",
     cli_cmd_dext},
    {"list-devices", "list the devices a dext owns", cli_cmd_list_devices},
    {"status", "show whether a dext is running, its devices, claims and counters",
     cli_cmd_status},
    {"probe", "check every selector of the dext contract against one device",
     cli_cmd_probe},
    {"bench", "measure call latency, DMA map rate and interrupt latency", cli_cmd_bench},
    {"serve", "serve one dext device to QEMU (vfio-user-pci) on a socket", cli_cmd_serve},
    {"run", "boot QEMU with a dext device passed through (default: an NVMe demo)",
     cli_cmd_run},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *f)
{
    fputs("Usage: vfio-dext COMMAND [OPTIONS]\n"
          "       vfio-dext COMMAND --help\n"
          "       vfio-dext --version\n"
          "\n"
          "PCI device passthrough through a user-space driver extension (dext).\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    }
    fputs("\n"
          "Exit codes: 0 success, 1 a check or operation failed, 2 usage error,\n"
          "            3 the dext cannot be reached.\n"
          "\n"
          "Quick start:\n"
          "  vfio-dext dext --device sim:testdev &\n"
          "  vfio-dext list-devices\n"
          "  vfio-dext probe 0000:00:01.0\n",
          f);
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const struct cli_command *cmd;

    if (argc < 2) {
        fputs("vfio-dext: no command given (see: vfio-dext --help)\n", stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        puts("vfio-dext " VDX_VERSION);
        return CLI_EXIT_OK;
    }
    cmd = find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "vfio-dext: unknown command '%s' (see: vfio-dext --help)\n",
                argv[1]);
        return CLI_EXIT_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
