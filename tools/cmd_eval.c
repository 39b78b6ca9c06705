/*
 * cmd_eval.c - gem eval: replays a trace through a mapping with the profile's cost model
 * (SPEC 2) and reports the step latencies.
 */
#include "cli.h"
#include "commands.h"
#include "svg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char eval_help[] =
    "Usage: gem eval --profile P.json --trace T.csv --mapping M.json [--json]\n"
    "                [--svg OUT.svg [--against M2.json]]\n"
    "\n"
    "Replays the trace through the mapping with the profile's cost model (SPEC 2): each GPU's\n"
    "time in a layer is its fixed cost plus its experts' latencies, a layer waits for its\n"
    "slowest GPU, a step is the sum of its layers. Prints the step latency figures, the lower\n"
    "bound that no mapping can beat, and each GPU's busy time and how often it was the\n"
    "straggler.\n"
    "\n"
    "Options:\n"
    "  --profile F     GPU profile\n"
    "  --trace F       routing trace (SPEC 4 CSV)\n"
    "  --mapping F     mapping (SPEC 5 JSON)\n"
    "  --json          print one JSON object instead of the table: mean, p50, p90, p99, total,\n"
    "                  lower_bound, max, steps, imbalance (microseconds, full precision) and\n"
    "                  gpus: [{gpu, busy_us, straggler_count}]\n"
    "  --comm          add all-to-all time from the profile (not part of SPEC 2's figures)\n"
    "  --bound-slots   make the lower bound hold for the mappings with as many experts on\n"
    "                  every GPU as this one (layer by layer) rather than for every mapping:\n"
    "                  much tighter for placements with fixed slot counts, as engines use\n"
    "  --experts-per-token K\n"
    "                  experts each token is routed to (the router's top-k), 1..1024, for\n"
    "                  --comm's tokens per step (a step's assignments / K) [8]\n"
    "  --svg F         also draw each GPU's mean busy time per layer against the mean layer\n"
    "                  time (the slowest GPU's) as an SVG picture for a browser, in ms; the\n"
    "                  gap is the time the GPU waits idle. Written whole or not at all\n"
    "                  ('-' = standard output, instead of the figures)\n"
    "  --against F     a second mapping drawn beside the first in the --svg picture (e.g.\n"
    "                  balanced against gem); the printed figures stay those of --mapping\n"
    "  -h, --help      show this help\n"
    "\n"
    "Examples:\n"
    "  gem eval --profile profile.json --trace trace.csv --mapping mapping.json --json\n"
    "  gem eval --profile profile.json --trace trace.csv --mapping gem.json \\\n"
    "      --against balanced.json --svg busy.svg\n";

typedef struct {
    double mean, p50, p90, p99, total, lower_bound, max, steps, imbalance;
    int comm;                 /* --comm: the all-to-all figures below are filled */
    int bound_slots;          /* --bound-slots: the bound is over mappings of these counts */
    double comm_us, cross_host;
} eval_figures;

static int eval_figures_get(const gem_report_t *r, eval_figures *f)
{
    static const gem_metric_t keys[] = {GEM_METRIC_MEAN, GEM_METRIC_P50, GEM_METRIC_P90,
                                        GEM_METRIC_P99, GEM_METRIC_TOTAL,
                                        GEM_METRIC_LOWER_BOUND, GEM_METRIC_MAX,
                                        GEM_METRIC_STEPS, GEM_METRIC_IMBALANCE};
    double *dest[] = {&f->mean, &f->p50, &f->p90, &f->p99, &f->total,
                      &f->lower_bound, &f->max, &f->steps, &f->imbalance};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        gem_status_t st = gem_report_get(r, keys[i], dest[i]);
        if (st != GEM_OK) return cli_fail(st);
    }
    if (f->comm) {
        gem_status_t st = gem_report_get(r, GEM_METRIC_COMM, &f->comm_us);
        if (st == GEM_OK) st = gem_report_get(r, GEM_METRIC_CROSS_HOST, &f->cross_host);
        if (st != GEM_OK) return cli_fail(st);
    }
    return 0;
}

static int eval_print_json(const gem_report_t *r, const eval_figures *f, int32_t G,
                           const char *policy)
{
    printf("{\"mean\": ");
    cli_json_number(stdout, f->mean);
    printf(", \"p50\": ");
    cli_json_number(stdout, f->p50);
    printf(", \"p90\": ");
    cli_json_number(stdout, f->p90);
    printf(", \"p99\": ");
    cli_json_number(stdout, f->p99);
    printf(", \"total\": ");
    cli_json_number(stdout, f->total);
    printf(", \"lower_bound\": ");
    cli_json_number(stdout, f->lower_bound);
    printf(", \"max\": ");
    cli_json_number(stdout, f->max);
    printf(", \"steps\": %.0f, \"imbalance\": ", f->steps);
    cli_json_number(stdout, f->imbalance);
    if (f->comm) {
        printf(", \"comm\": ");
        cli_json_number(stdout, f->comm_us);
        printf(", \"cross_host\": ");
        cli_json_number(stdout, f->cross_host);
    }
    printf(", \"unit\": \"us\", \"policy\": ");
    cli_json_string(stdout, policy);
    printf(", \"gpus\": [");
    for (int32_t g = 0; g < G; g++) {
        double busy;
        int64_t straggler;
        gem_status_t st = gem_report_gpu(r, g, &busy, &straggler);
        if (st != GEM_OK) {
            printf("]}\n");
            return cli_fail(st);
        }
        printf("%s{\"gpu\": %d, \"busy_us\": ", g ? ", " : "", (int)g);
        cli_json_number(stdout, busy);
        printf(", \"straggler_count\": %lld}", (long long)straggler);
    }
    printf("]}\n");
    return 0;
}

static int eval_print_table(const gem_report_t *r, const eval_figures *f, int32_t G, int32_t L,
                            int32_t E, const char *policy)
{
    printf("%.0f steps, %d layers x %d experts on %d GPUs, mapping policy %s\n\n", f->steps,
           (int)L, (int)E, (int)G, policy ? policy : "(none)");
    printf("step latency (us)\n");
    printf("  mean         %14.3f\n", f->mean);
    printf("  p50          %14.3f\n", f->p50);
    printf("  p90          %14.3f\n", f->p90);
    printf("  p99          %14.3f\n", f->p99);
    printf("  max          %14.3f\n", f->max);
    printf("  total        %14.3f  (%.6f s)\n", f->total, f->total * 1e-6);
    printf("  lower bound  %14.3f  (mean; no mapping%s can do better)\n", f->lower_bound,
           f->bound_slots ? " with these experts per GPU" : "");
    if (f->lower_bound > 0)
        printf("  gap to bound %13.2f %%\n", (f->mean / f->lower_bound - 1.0) * 100.0);
    printf("  imbalance    %14.4f  (mean over layers of slowest / average GPU time)\n",
           f->imbalance);
    if (f->comm) {
        printf("  all-to-all   %14.3f  (mean per step, included in the latencies above)\n",
               f->comm_us);
        printf("  cross-host   %14.4f  (fraction of tokens sent to another host)\n",
               f->cross_host);
    }
    printf("\n");

    double layers_run = f->steps * (double)L;
    printf("  GPU      busy (us)   busy %%   straggler   straggler %%\n");
    for (int32_t g = 0; g < G; g++) {
        double busy;
        int64_t straggler;
        gem_status_t st = gem_report_gpu(r, g, &busy, &straggler);
        if (st != GEM_OK) return cli_fail(st);
        printf("  %3d %14.3f %8.2f %11lld %13.2f\n", (int)g, busy,
               f->total > 0 ? busy / f->total * 100.0 : 0.0, (long long)straggler,
               layers_run > 0 ? (double)straggler / layers_run * 100.0 : 0.0);
    }
    return 0;
}

/* Legend name of a mapping: its policy, or its file name when the policy is unknown or the
 * same as the other mapping's. */
static const char *eval_name(const gem_mapping_t *m, const char *path, const char *other)
{
    const char *policy = NULL;
    if (gem_mapping_get_policy_name(m, &policy) != GEM_OK || !policy || !*policy ||
        (other && strcmp(policy, other) == 0)) {
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
    }
    return policy;
}

/* The busy-time picture of one or two evaluated mappings, written to path ('-': stdout). */
static int eval_write_svg(const gem_report_t *const *reports, const char *const *names, int n,
                          int32_t G, int32_t L, int32_t E, double steps, const char *path)
{
    char title[256], subtitle[256];
    if (n == 2)
        snprintf(title, sizeof title, "Per-GPU busy time: %s vs %s", names[0], names[1]);
    else
        snprintf(title, sizeof title, "Per-GPU busy time: %s", names[0]);
    snprintf(subtitle, sizeof subtitle, "%.0f steps x %d layers x %d experts on %d GPUs", steps,
             (int)L, (int)E, (int)G);
    char *text = NULL;
    gem_status_t st = svg_busy_picture(reports, names, n, G, L, title, subtitle, &text);
    if (st != GEM_OK) {
        if (st == GEM_ERR_NO_MEMORY) return cli_error("out of memory drawing %s", path);
        return cli_fail(st);
    }
    int rc = cli_write_text(text, path);
    free(text);
    return rc;
}

int gem_cmd_eval(int argc, char **argv)
{
    const char *profile_path = NULL, *trace_path = NULL, *mapping_path = NULL;
    const char *svg_path = NULL, *against_path = NULL;
    int json = 0, comm = 0, has_k = 0, bound_slots = 0;
    int64_t k = 0;
    const cli_opt opts[] = {
        {"profile", 0, CLI_STRING, &profile_path, 0, 0, NULL},
        {"trace", 0, CLI_STRING, &trace_path, 0, 0, NULL},
        {"mapping", 0, CLI_STRING, &mapping_path, 0, 0, NULL},
        {"json", 0, CLI_FLAG, &json, 0, 0, NULL},
        {"comm", 0, CLI_FLAG, &comm, 0, 0, NULL},
        {"bound-slots", 0, CLI_FLAG, &bound_slots, 0, 0, NULL},
        {"experts-per-token", 0, CLI_INT, &k, 1, 1024, &has_k},
        {"svg", 0, CLI_STRING, &svg_path, 0, 0, NULL},
        {"against", 0, CLI_STRING, &against_path, 0, 0, NULL},
    };
    const cli_spec spec = {eval_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_require(profile_path, "profile")) || (rc = cli_require(trace_path, "trace")) ||
        (rc = cli_require(mapping_path, "mapping")))
        return rc;
    if (against_path && !svg_path) return cli_usage_error("--against needs --svg");
    if (has_k && !comm) return cli_usage_error("--experts-per-token needs --comm");
    if (svg_path && !*svg_path) return cli_usage_error("--svg: empty file name");

    gem_options_t *o = NULL;
    gem_profile_t *profile = NULL;
    gem_trace_t *trace = NULL;
    gem_mapping_t *mapping = NULL, *against = NULL;
    gem_report_t *report = NULL, *against_report = NULL;
    if ((rc = cli_options(&o)) || (comm && (rc = cli_set_int(o, GEM_OPT_COMM_MODEL, 1, "comm"))) ||
        (has_k && (rc = cli_set_int(o, GEM_OPT_EXPERTS_PER_TOKEN, k, "experts-per-token"))) ||
        (bound_slots && (rc = cli_set_int(o, GEM_OPT_BOUND_SLOTS, 1, "bound-slots"))))
        goto done;
    if ((rc = cli_read_profile(profile_path, &profile)) ||
        (rc = cli_read_trace(trace_path, &trace)) ||
        (rc = cli_read_mapping(mapping_path, &mapping)) ||
        (against_path && (rc = cli_read_mapping(against_path, &against))))
        goto done;
    gem_status_t st = gem_evaluate(profile, trace, mapping, o, &report);
    if (st != GEM_OK) { rc = cli_fail(st); goto done; }
    if (against && (st = gem_evaluate(profile, trace, against, o, &against_report)) != GEM_OK) {
        rc = cli_fail_file(st, "mapping", against_path);
        goto done;
    }

    eval_figures f = {0};
    int32_t G = 0, L = 0, E = 0;
    const char *policy = NULL;
    f.comm = comm;
    f.bound_slots = bound_slots;
    if ((rc = eval_figures_get(report, &f))) goto done;
    if ((st = gem_mapping_shape(mapping, &G, &L, &E)) != GEM_OK ||
        (st = gem_mapping_get_policy_name(mapping, &policy)) != GEM_OK) {
        rc = cli_fail(st);
        goto done;
    }
    /* the picture first: when it cannot be written, nothing is printed */
    if (svg_path) {
        const char *first = eval_name(mapping, mapping_path, NULL);
        const char *names[2] = {first, against ? eval_name(against, against_path, first) : NULL};
        const gem_report_t *reports[2] = {report, against_report};
        if ((rc = eval_write_svg(reports, names, against ? 2 : 1, G, L, E, f.steps, svg_path)))
            goto done;
        if (strcmp(svg_path, "-") == 0) goto done; /* the picture was the output */
    }
    rc = json ? eval_print_json(report, &f, G, policy)
              : eval_print_table(report, &f, G, L, E, policy);
done:
    gem_report_destroy(against_report);
    gem_report_destroy(report);
    gem_mapping_destroy(against);
    gem_mapping_destroy(mapping);
    gem_trace_destroy(trace);
    gem_profile_destroy(profile);
    gem_options_destroy(o);
    return rc;
}
