/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext bench dext`: run every measurement of bench.h in one process and
 * print the medians beside the goals of the issue, so a reader sees where the
 * project stands. The raw socket baseline is measured in the same run.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/bench.h"
#include "cli/bench_nvme.h"

static const char usage[] =
    "Usage: vfio-dext bench dext [--json] [--iterations N] [--repetitions R]\n"
    "       vfio-dext bench nvme [--json] [--seconds S]   (see: bench nvme --help)\n"
    "\n"
    "Measure the dext's fast paths with a simulated device (sim:testdev) and\n"
    "print each median beside its goal:\n"
    "  local_rtt_ns          ConfigRead through the in-process transport\n"
    "  unix_rtt_ns           the same call to a `vfio-dext dext` child process\n"
    "  raw_socket_rtt_ns     baseline: socketpair ping-pong of the same bytes\n"
    "  unix_vs_raw_ratio     unix_rtt_ns / raw_socket_rtt_ns\n"
    "  dma_map_unmap_per_s_* RegisterDMA + UnregisterDMA pairs of 16 KiB per\n"
    "                        second, IOMMU identity and dart\n"
    "  irq_latency_ns_p50    device raise -> pending bit seen in the IRQ page\n"
    "  irq_rate_per_s        interrupts raised and drained per second\n"
    "\n"
    "Options:\n"
    "  --json                print one JSON object\n"
    "  --iterations N        operations per repetition (default 20000)\n"
    "  --repetitions R       repetitions per measurement, median reported\n"
    "                        (default 7, at most 101)\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit codes: 0 measured (goals missed are reported, not failures),\n"
    "1 a measurement could not run, 2 usage error.\n";

struct bench_results {
    double local_rtt;
    struct bench_rtt_result rtt;
    double dma_identity, dma_dart;
    struct bench_irq_result irq;
};

/* A goal: metric <= or >= limit. */
struct bench_goal {
    const char *key;
    bool at_most;
    double limit;
    const char *text;
};

static const struct bench_goal goals[] = {
    {"unix_vs_raw_ratio", true, 1.3, "<= 1.3"},
    {"local_rtt_ns", true, 200.0, "<= 200"},
    {"dma_map_unmap_per_s_identity", false, 500000.0, ">= 500000"},
    {"dma_map_unmap_per_s_dart", false, 500000.0, ">= 500000"},
    {"irq_rate_per_s", false, 1000000.0, ">= 1000000"},
};

#define N_GOALS (sizeof(goals) / sizeof(goals[0]))

static int run_all(const struct bench_opts *o, struct bench_results *r)
{
    int rc = bench_unix_vs_raw(o, &r->rtt);

    if (rc == CLI_EXIT_OK) {
        rc = bench_local_rtt(o, &r->local_rtt);
    }
    if (rc == CLI_EXIT_OK) {
        rc = bench_dma_rate(o, DEXT_IOMMU_IDENTITY, &r->dma_identity);
    }
    if (rc == CLI_EXIT_OK) {
        rc = bench_dma_rate(o, DEXT_IOMMU_DART, &r->dma_dart);
    }
    if (rc == CLI_EXIT_OK) {
        rc = bench_irq(o, &r->irq);
    }
    return rc;
}

/* The metrics in output order. */
struct metric {
    const char *key;
    double value;
    const char *unit;
};

static size_t metrics(const struct bench_results *r, struct metric *m)
{
    const struct metric all[] = {
        {"local_rtt_ns", r->local_rtt, "ns"},
        {"unix_rtt_ns", r->rtt.unix_ns, "ns"},
        {"raw_socket_rtt_ns", r->rtt.raw_ns, "ns"},
        {"unix_vs_raw_ratio", r->rtt.ratio, "x"},
        {"dma_map_unmap_per_s_identity", r->dma_identity, "/s"},
        {"dma_map_unmap_per_s_dart", r->dma_dart, "/s"},
        {"irq_latency_ns_p50", r->irq.latency_p50_ns, "ns"},
        {"irq_latency_ns_p99", r->irq.latency_p99_ns, "ns"},
        {"irq_rate_per_s", r->irq.rate_per_s, "/s"},
    };

    memcpy(m, all, sizeof(all));
    return sizeof(all) / sizeof(all[0]);
}

static const struct bench_goal *goal_of(const char *key)
{
    for (size_t i = 0; i < N_GOALS; i++) {
        if (strcmp(goals[i].key, key) == 0) {
            return &goals[i];
        }
    }
    return NULL;
}

static bool goal_met(const struct bench_goal *g, double v)
{
    return g->at_most ? v <= g->limit : v >= g->limit;
}

/* Ratios keep 3 decimals, everything else is rounded to an integer. */
static json_object *number(const struct metric *m)
{
    char buf[32];

    if (strcmp(m->unit, "x") == 0) {
        snprintf(buf, sizeof(buf), "%.3f", m->value);
        return json_object_new_double_s(strtod(buf, NULL), buf);
    }
    return json_object_new_int64((int64_t)(m->value + 0.5));
}

static void print_json(const struct bench_opts *o, const struct bench_results *r)
{
    json_object *root = json_object_new_object(), *g = json_object_new_object();
    json_object *met = json_object_new_object();
    struct metric m[16];
    size_t n = metrics(r, m);

    for (size_t i = 0; i < n; i++) {
        const struct bench_goal *goal = goal_of(m[i].key);

        json_object_object_add(root, m[i].key, number(&m[i]));
        if (goal) {
            json_object_object_add(g, m[i].key, json_object_new_string(goal->text));
            json_object_object_add(met, m[i].key,
                                   json_object_new_boolean(goal_met(goal, m[i].value)));
        }
    }
    json_object_object_add(root, "repetitions", json_object_new_int((int)o->repetitions));
    json_object_object_add(root, "iterations",
                           json_object_new_int64((int64_t)o->iterations));
    json_object_object_add(root, "raw_request_bytes",
                           json_object_new_int((int)r->rtt.req_bytes));
    json_object_object_add(root, "raw_reply_bytes",
                           json_object_new_int((int)r->rtt.rep_bytes));
    json_object_object_add(root, "goal", g);
    json_object_object_add(root, "goal_met", met);
    puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
}

static void print_table(const struct bench_opts *o, const struct bench_results *r)
{
    struct metric m[16];
    size_t n = metrics(r, m);

    printf("%-30s %14s  %-12s %s\n", "metric", "median", "goal", "met");
    for (size_t i = 0; i < n; i++) {
        const struct bench_goal *goal = goal_of(m[i].key);
        char value[32];

        snprintf(value, sizeof(value), strcmp(m[i].unit, "x") ? "%.0f %s" : "%.2f%s",
                 m[i].value, m[i].unit);
        if (goal) {
            printf("%-30s %14s  %-12s %s\n", m[i].key, value, goal->text,
                   goal_met(goal, m[i].value) ? "yes" : "NO");
        } else {
            printf("%-30s %14s  -\n", m[i].key, value);
        }
    }
    printf("\nmedians of %u repetitions of %llu operations; raw baseline frames: "
           "%zu-byte request, %zu-byte reply\n",
           o->repetitions, (unsigned long long)o->iterations, r->rtt.req_bytes,
           r->rtt.rep_bytes);
}

/* ---- Arguments ------------------------------------------------------------------ */

enum { OPT_JSON = 256, OPT_ITER, OPT_REPS };

static const struct option long_opts[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"iterations", required_argument, NULL, OPT_ITER},
    {"repetitions", required_argument, NULL, OPT_REPS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_count(const char *opt, const char *s, uint64_t min, uint64_t max,
                       uint64_t *out)
{
    if (cli_parse_u64(s, out) < 0 || *out < min || *out > max) {
        return cli_usage_error("bench", "%s '%s': give a number from %llu to %llu", opt, s,
                               (unsigned long long)min, (unsigned long long)max);
    }
    return -1;
}

static int parse_one(int opt, char **argv, struct bench_opts *o, bool *json)
{
    uint64_t v = 0;
    int rc;

    switch (opt) {
    case OPT_JSON:
        *json = true;
        return -1;
    case OPT_ITER:
        rc = parse_count("--iterations", optarg, 100, 100000000, &o->iterations);
        return rc;
    case OPT_REPS:
        rc = parse_count("--repetitions", optarg, 1, BENCH_MAX_REPS, &v);
        o->repetitions = (unsigned)v;
        return rc;
    case 'h':
        return cli_help(usage);
    default:
        return cli_getopt_error("bench", opt, argv);
    }
}

static int parse_args(int argc, char **argv, struct bench_opts *o, bool *json)
{
    int opt, rc;

    o->iterations = 20000;
    o->repetitions = 7;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        rc = parse_one(opt, argv, o, json);
        if (rc >= 0) {
            return rc;
        }
    }
    if (optind >= argc) {
        return cli_usage_error("bench", "what to measure? dext or nvme");
    }
    if (strcmp(argv[optind], "dext") != 0) {
        return cli_usage_error("bench", "unknown benchmark '%s' (use dext or nvme)",
                               argv[optind]);
    }
    if (optind + 1 < argc) {
        return cli_usage_error("bench", "unexpected argument '%s'", argv[optind + 1]);
    }
    return -1;
}

int cli_cmd_bench(int argc, char **argv)
{
    struct bench_results r;
    struct bench_opts o;
    bool json = false;
    int rc;

    if (argc > 1 && strcmp(argv[1], "nvme") == 0) {
        return vdx_bench_nvme_main(argc - 1, argv + 1);
    }
    rc = parse_args(argc, argv, &o, &json);
    if (rc >= 0) {
        return rc;
    }
    memset(&r, 0, sizeof(r));
    rc = run_all(&o, &r);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (json) {
        print_json(&o, &r);
    } else {
        print_table(&o, &r);
    }
    return CLI_EXIT_OK;
}
