/*
 * cmd_compare.c - gem compare: maps a trace with every policy and compares their step
 * latencies under the profile's cost model.
 */
#include "cli.h"
#include "commands.h"
#include "svg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char compare_help[] =
    "Usage: gem compare --profile P.json --trace T.csv [options]\n"
    "\n"
    "Maps the trace with each policy, replays it through each mapping (as 'gem eval') and\n"
    "prints, per policy, the mean and p90 step latency, the ratio of its mean to the best\n"
    "policy's, and the time the mapping took; then the lower bound on the mean that no\n"
    "mapping can beat, and the (tighter) one that no mapping with as many experts on every\n"
    "GPU as the best policy's can beat (as 'gem eval --bound-slots'). Mapping and replaying\n"
    "use the same trace: it measures how well each policy fits what it saw, not how it\n"
    "predicts.\n"
    "\n"
    "Options:\n"
    "  --profile F           GPU profile\n"
    "  --trace F             routing trace (SPEC 4 CSV)\n"
    "  --policies A,B,...    policies to run [contiguous,round_robin,balanced,speed_aware,eplb,\n"
    "                        gem]; 'exact' (branch and bound, small cases) only when named\n"
    "  --seed N              random seed of the searches [1]\n"
    "  --threads N           worker threads, 0 = all cores [0]\n"
    "  --objective O         mean or p90 [mean]\n"
    "  --restarts N          randomised restarts of the gem search [4]\n"
    "  --time-limit-ms N     wall-clock limit per policy, 0 = none [0; exact: 10000]\n"
    "  --redundant-slots R   extra expert copies per layer [0]; only eplb and gem replicate,\n"
    "                        the other policies then fail with 'not supported'\n"
    "  --json                print one JSON object instead of the table\n"
    "  --svg F               also draw the mean step latency of each policy against the lower\n"
    "                        bound as an SVG bar chart for a browser (ms); written whole or\n"
    "                        not at all\n"
    "  -h, --help            show this help\n"
    "\n"
    "Example:\n"
    "  gem compare --profile profile.json --trace trace.csv --policies balanced,gem\n";

static const char *const compare_default[] = {"contiguous", "round_robin", "balanced",
                                              "speed_aware", "eplb", "gem"};
#define COMPARE_MAX 32

typedef struct {
    gem_policy_t policy;
    int ok;
    double mean, p90, lower_bound, seconds;
    double slot_bound;        /* over mappings with this one's experts per GPU (the best only) */
    gem_mapping_t *mapping;   /* kept for that, freed at the end */
    char error[512];
} compare_row;

/* Maps and evaluates one policy, keeping the mapping in the row; a failure is recorded in
 * the row, not fatal. */
static void compare_one(const gem_profile_t *profile, const gem_trace_t *trace,
                        const gem_options_t *o, compare_row *row)
{
    gem_report_t *report = NULL;
    double t0 = cli_now();
    gem_status_t st = gem_compute_mapping(profile, trace, row->policy, o, NULL, &row->mapping);
    row->seconds = cli_now() - t0;
    if (st == GEM_OK) st = gem_evaluate(profile, trace, row->mapping, NULL, &report);
    if (st == GEM_OK) st = gem_report_get(report, GEM_METRIC_MEAN, &row->mean);
    if (st == GEM_OK) st = gem_report_get(report, GEM_METRIC_P90, &row->p90);
    if (st == GEM_OK) st = gem_report_get(report, GEM_METRIC_LOWER_BOUND, &row->lower_bound);
    row->ok = st == GEM_OK;
    if (!row->ok)
        snprintf(row->error, sizeof row->error, "%s: %s", gem_status_string(st),
                 gem_last_error());
    gem_report_destroy(report);
}

/* The best row's bound over mappings with its experts per GPU (GEM_OPT_BOUND_SLOTS). */
static gem_status_t compare_slot_bound(const gem_profile_t *profile, const gem_trace_t *trace,
                                       compare_row *row)
{
    gem_options_t *slots = NULL;
    gem_report_t *report = NULL;
    gem_status_t st = gem_options_create(&slots);
    if (st == GEM_OK) st = gem_options_set_int(slots, GEM_OPT_BOUND_SLOTS, 1);
    if (st == GEM_OK) st = gem_evaluate(profile, trace, row->mapping, slots, &report);
    if (st == GEM_OK) st = gem_report_get(report, GEM_METRIC_LOWER_BOUND, &row->slot_bound);
    gem_report_destroy(report);
    gem_options_destroy(slots);
    return st;
}

/* Splits "a,b,c" into policies; usage error on an unknown or empty name. */
static int compare_parse_list(char *list, compare_row *rows, int *n)
{
    *n = 0;
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (*n == COMPARE_MAX) return cli_usage_error("--policies: more than %d", COMPARE_MAX);
        int rc = cli_policy(name, &rows[*n].policy);
        if (rc) return rc;
        (*n)++;
    }
    if (*n == 0) return cli_usage_error("--policies: no policy named");
    return 0;
}

static void compare_print_json(const compare_row *rows, int n, int best, double bound)
{
    printf("{\"unit\": \"us\", \"lower_bound\": ");
    cli_json_number(stdout, bound);
    printf(", \"lower_bound_slots\": ");
    cli_json_number(stdout, best >= 0 ? rows[best].slot_bound : 0.0);
    printf(", \"best\": ");
    cli_json_string(stdout, best >= 0 ? gem_policy_name(rows[best].policy) : NULL);
    printf(", \"policies\": [");
    for (int i = 0; i < n; i++) {
        printf("%s{\"policy\": ", i ? ", " : "");
        cli_json_string(stdout, gem_policy_name(rows[i].policy));
        if (rows[i].ok) {
            printf(", \"mean\": ");
            cli_json_number(stdout, rows[i].mean);
            printf(", \"p90\": ");
            cli_json_number(stdout, rows[i].p90);
            printf(", \"ratio\": ");
            cli_json_number(stdout, rows[i].mean / rows[best].mean);
        } else {
            printf(", \"error\": ");
            cli_json_string(stdout, rows[i].error);
        }
        printf(", \"map_seconds\": ");
        cli_json_number(stdout, rows[i].seconds);
        printf("}");
    }
    printf("]}\n");
}

static void compare_print_table(const compare_row *rows, int n, int best, double bound,
                                const gem_trace_t *trace, int32_t G)
{
    int64_t S = 0;
    int32_t L = 0, E = 0;
    gem_trace_shape(trace, &S, &L, &E);
    /* Milliseconds once steps take a millisecond or more, else microseconds. */
    int ms = best >= 0 && rows[best].mean >= 1000.0;
    double scale = ms ? 1e-3 : 1.0;
    const char *unit = ms ? "ms" : "us";
    printf("%lld steps, %d layers x %d experts on %d GPUs\n\n", (long long)S, (int)L, (int)E,
           (int)G);
    printf("  %-12s %12s %12s %9s %14s\n", "policy", "mean", "p90", "vs best", "map time");
    for (int i = 0; i < n; i++) {
        const char *name = gem_policy_name(rows[i].policy);
        if (!rows[i].ok) {
            printf("  %-12s failed: %s\n", name, rows[i].error);
            continue;
        }
        printf("  %-12s %9.3f %s %9.3f %s %8.3fx %11.1f ms%s\n", name, rows[i].mean * scale,
               unit, rows[i].p90 * scale, unit, rows[i].mean / rows[best].mean,
               rows[i].seconds * 1e3, i == best ? "  <- best" : "");
    }
    if (best >= 0) {
        printf("  %-12s %9.3f %s   (mean step latency that no mapping can beat)\n",
               "lower bound", bound * scale, unit);
        const char *name = gem_policy_name(rows[best].policy);
        printf("  %-12s %9.3f %s   (nor any with %s's experts per GPU", "same slots",
               rows[best].slot_bound * scale, unit, name);
        if (rows[best].slot_bound > 0)
            printf(": %s is within %.2f%%", name,
                   (rows[best].mean / rows[best].slot_bound - 1) * 100);
        printf(")\n");
    }
}

/* Bar chart of the policies that succeeded: mean step latency in ms, the lower bound as a
 * dashed line, each bar's ratio to the best under it. */
static int compare_write_svg(const compare_row *rows, int n, int best, double bound,
                             const gem_trace_t *trace, int32_t G, const char *path)
{
    int64_t S = 0;
    int32_t L = 0, E = 0;
    gem_trace_shape(trace, &S, &L, &E);
    const char *groups[COMPARE_MAX];
    double values[COMPARE_MAX];
    char note_text[COMPARE_MAX][32], tip_text[COMPARE_MAX][160];
    const char *notes[COMPARE_MAX], *tips[COMPARE_MAX];
    int m = 0;
    double top = bound;
    for (int i = 0; i < n; i++) {
        if (!rows[i].ok) continue;
        groups[m] = gem_policy_name(rows[i].policy);
        values[m] = rows[i].mean * 1e-3;
        if (rows[i].mean > top) top = rows[i].mean;
        snprintf(note_text[m], sizeof note_text[m], i == best ? "best" : "%.3fx",
                 rows[i].mean / rows[best].mean);
        snprintf(tip_text[m], sizeof tip_text[m],
                 "%s: mean step %.4f ms, p90 %.4f ms, %.3fx the best, %.1f%% above the lower "
                 "bound; mapped in %.1f ms", groups[m], rows[i].mean * 1e-3, rows[i].p90 * 1e-3,
                 rows[i].mean / rows[best].mean, (rows[i].mean / bound - 1) * 100,
                 rows[i].seconds * 1e3);
        notes[m] = note_text[m];
        tips[m] = tip_text[m];
        m++;
    }
    char subtitle[256], line_label[64];
    snprintf(subtitle, sizeof subtitle,
             "%lld steps x %d layers x %d experts on %d GPUs. Under each bar: its mean over the "
             "best one's.\nDashed: lower bound on the mean that no mapping can beat.",
             (long long)S, (int)L, (int)E, (int)G);
    snprintf(line_label, sizeof line_label, "lower bound: %.4g ms", bound * 1e-3);
    const svg_ref_line line = {line_label, bound * 1e-3, -1};
    const svg_bars c = {
        .title = "Mean step latency per placement policy",
        .subtitle = subtitle,
        .x_label = "placement policy",
        .y_label = "mean step latency (ms)",
        .ngroups = m,
        .groups = groups,
        .nseries = 1,
        .values = values,
        .notes = notes,
        .tips = tips,
        .nlines = bound > 0 ? 1 : 0,
        .lines = &line,
        .digits = svg_digits_for(top * 1e-3),
    };
    char *text = svg_bars_render(&c);
    if (!text) return cli_error("out of memory drawing %s", path);
    int rc = cli_write_text(text, path);
    free(text);
    return rc;
}

int gem_cmd_compare(int argc, char **argv)
{
    const char *profile_path = NULL, *trace_path = NULL, *policies = NULL;
    const char *objective_name = NULL, *svg_path = NULL;
    int64_t seed = 1, threads = 0, restarts = 0, time_limit = 0, redundant = 0;
    int json = 0, has_seed = 0, has_threads = 0, has_restarts = 0, has_time = 0,
        has_redundant = 0;
    const cli_opt opts[] = {
        {"profile", 0, CLI_STRING, &profile_path, 0, 0, NULL},
        {"trace", 0, CLI_STRING, &trace_path, 0, 0, NULL},
        {"policies", 0, CLI_STRING, &policies, 0, 0, NULL},
        {"seed", 0, CLI_INT, &seed, 0, 4611686018427387904.0, &has_seed},
        {"threads", 0, CLI_INT, &threads, 0, 4096, &has_threads},
        {"objective", 0, CLI_STRING, &objective_name, 0, 0, NULL},
        {"restarts", 0, CLI_INT, &restarts, 0, 1e6, &has_restarts},
        {"time-limit-ms", 0, CLI_INT, &time_limit, 0, 1e9, &has_time},
        {"redundant-slots", 0, CLI_INT, &redundant, 0, 1048576, &has_redundant},
        {"json", 0, CLI_FLAG, &json, 0, 0, NULL},
        {"svg", 0, CLI_STRING, &svg_path, 0, 0, NULL},
    };
    const cli_spec spec = {compare_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_require(profile_path, "profile")) || (rc = cli_require(trace_path, "trace")))
        return rc;
    if (svg_path && !*svg_path) return cli_usage_error("--svg: empty file name");

    compare_row rows[COMPARE_MAX];
    memset(rows, 0, sizeof rows);
    int n = 0;
    if (policies) {
        char *list = strdup(policies);
        if (!list) return cli_error("out of memory");
        rc = compare_parse_list(list, rows, &n);
        free(list);
        if (rc) return rc;
    } else {
        for (size_t i = 0; i < sizeof compare_default / sizeof compare_default[0]; i++)
            if ((rc = cli_policy(compare_default[i], &rows[n++].policy))) return rc;
    }
    gem_objective_t objective = GEM_OBJECTIVE_MEAN;
    if (objective_name && (rc = cli_objective(objective_name, &objective))) return rc;

    gem_options_t *o = NULL;
    gem_profile_t *profile = NULL;
    gem_trace_t *trace = NULL;
    if ((rc = cli_options(&o))) goto done;
    if ((has_seed && (rc = cli_set_int(o, GEM_OPT_SEED, seed, "seed"))) ||
        (has_threads && (rc = cli_set_int(o, GEM_OPT_THREADS, threads, "threads"))) ||
        (rc = cli_set_int(o, GEM_OPT_OBJECTIVE, objective, "objective")) ||
        (has_restarts && (rc = cli_set_int(o, GEM_OPT_RESTARTS, restarts, "restarts"))) ||
        (has_time && (rc = cli_set_int(o, GEM_OPT_TIME_LIMIT_MS, time_limit, "time-limit-ms"))) ||
        (has_redundant &&
         (rc = cli_set_int(o, GEM_OPT_REDUNDANT_SLOTS, redundant, "redundant-slots"))))
        goto done;
    if ((rc = cli_read_profile(profile_path, &profile)) || (rc = cli_read_trace(trace_path, &trace)))
        goto done;
    gem_status_t st = gem_trace_validate(trace);
    if (st != GEM_OK) { rc = cli_fail_file(st, "trace", trace_path); goto done; }

    int best = -1, failed = 0;
    double bound = 0.0;
    cli_progress line;
    cli_progress_start(&line, o, "compare");
    for (int i = 0; i < n; i++) {
        cli_progress_label(&line, "compare %d/%d %s", i + 1, n, gem_policy_name(rows[i].policy));
        compare_one(profile, trace, o, &rows[i]);
        if (!rows[i].ok) {
            cli_progress_end(&line);
            fprintf(stderr, "gem compare: policy %s: %s\n", gem_policy_name(rows[i].policy),
                    rows[i].error);
            failed++;
            continue;
        }
        if (best < 0 || rows[i].mean < rows[best].mean) best = i;
        /* every policy's bound holds for all mappings; the largest is the tightest */
        if (rows[i].lower_bound > bound) bound = rows[i].lower_bound;
    }
    cli_progress_end(&line);
    gem_status_t st2;
    if (best >= 0 && (st2 = compare_slot_bound(profile, trace, &rows[best])) != GEM_OK) {
        rc = cli_fail(st2);
        goto done;
    }
    int32_t G = 0;
    gem_profile_num_gpus(profile, &G);
    /* the picture first: when it cannot be written, nothing is printed */
    if (svg_path && best >= 0 &&
        (rc = compare_write_svg(rows, n, best, bound, trace, G, svg_path)))
        goto done;
    if (svg_path && strcmp(svg_path, "-") == 0) {
        /* the picture was the output */
    } else if (json) {
        compare_print_json(rows, n, best, bound);
    } else {
        compare_print_table(rows, n, best, bound, trace, G);
    }
    rc = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
done:
    for (int i = 0; i < n; i++) gem_mapping_destroy(rows[i].mapping);
    gem_trace_destroy(trace);
    gem_profile_destroy(profile);
    gem_options_destroy(o);
    return rc;
}
