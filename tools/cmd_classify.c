/*
 * cmd_classify.c - gem classify: sorts every expert into consistent, temporal or cold.
 */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>

static const char classify_help[] =
    "Usage: gem classify --trace T.csv [options]\n"
    "\n"
    "Classifies the experts of every layer from how often they are heavy: an expert is heavy\n"
    "in a step when its load exceeds heavy-factor x the layer's mean expert load in that step.\n"
    "Heavy in at least consistent-min of the steps: consistent; at least temporal-min:\n"
    "temporal (busy in bursts, often together with others); else cold. Prints per layer the\n"
    "count of each class and the top experts with their class, heavy fraction and mean load\n"
    "in their heavy steps.\n"
    "\n"
    "Options:\n"
    "  --trace F             routing trace (SPEC 4 CSV)\n"
    "  --heavy-factor X      [1.0]\n"
    "  --consistent-min X    fraction of steps, (0, 1] [0.5]\n"
    "  --temporal-min X      fraction of steps, [0, 1] [0.05]\n"
    "  --top N               consistent and temporal experts listed per layer [3]\n"
    "  --json                print every expert's data as one JSON object\n"
    "  --coactivation        with --json: add each layer's matrix of steps in which both\n"
    "                        experts were heavy\n"
    "  -h, --help            show this help\n"
    "\n"
    "Example:\n"
    "  gem classify --trace trace.csv --top 6\n";

typedef struct {
    int32_t expert;
    gem_expert_class_t cls;
    double heavy_fraction, mean_load, mean_heavy_load;
} classify_entry;

/* Consistent experts first, most often heavy first; then temporal ones, heaviest bursts
 * first; then cold ones. */
static int classify_rank(gem_expert_class_t c)
{
    return c == GEM_CLASS_CONSISTENT ? 0 : c == GEM_CLASS_TEMPORAL ? 1 : 2;
}

static int classify_order(const void *pa, const void *pb)
{
    const classify_entry *a = pa, *b = pb;
    int ra = classify_rank(a->cls), rb = classify_rank(b->cls);
    if (ra != rb) return ra - rb;
    double a1 = a->heavy_fraction, b1 = b->heavy_fraction;
    double a2 = a->mean_heavy_load, b2 = b->mean_heavy_load;
    if (a->cls == GEM_CLASS_TEMPORAL) { a1 = a2; b1 = b2; a2 = a->heavy_fraction; b2 = b->heavy_fraction; }
    if (a1 != b1) return a1 < b1 ? 1 : -1;
    if (a2 != b2) return a2 < b2 ? 1 : -1;
    return a->expert - b->expert;
}

static int classify_layer(const gem_classification_t *cls, int32_t layer, int32_t E,
                          classify_entry *out)
{
    for (int32_t e = 0; e < E; e++) {
        out[e].expert = e;
        gem_status_t st = gem_classification_get(cls, layer, e, &out[e].cls,
                                                 &out[e].heavy_fraction, &out[e].mean_load,
                                                 &out[e].mean_heavy_load);
        if (st != GEM_OK) return cli_fail(st);
    }
    return 0;
}

static int classify_print_json(const gem_classification_t *cls, int64_t S, int32_t L, int32_t E,
                               int coactivation, classify_entry *buf)
{
    printf("{\"num_steps\": %lld, \"num_layers\": %d, \"num_experts\": %d, \"layers\": [",
           (long long)S, (int)L, (int)E);
    for (int32_t l = 0; l < L; l++) {
        int rc = classify_layer(cls, l, E, buf);
        if (rc) { printf("]}\n"); return rc; }
        int count[3] = {0, 0, 0};
        for (int32_t e = 0; e < E; e++) count[buf[e].cls]++;
        printf("%s\n {\"layer\": %d, \"consistent\": %d, \"temporal\": %d, \"cold\": %d, "
               "\"experts\": [",
               l ? "," : "", (int)l, count[GEM_CLASS_CONSISTENT], count[GEM_CLASS_TEMPORAL],
               count[GEM_CLASS_COLD]);
        for (int32_t e = 0; e < E; e++) {
            printf("%s{\"expert\": %d, \"class\": ", e ? ", " : "", (int)e);
            cli_json_string(stdout, gem_class_name(buf[e].cls));
            printf(", \"heavy_fraction\": ");
            cli_json_number(stdout, buf[e].heavy_fraction);
            printf(", \"mean_load\": ");
            cli_json_number(stdout, buf[e].mean_load);
            printf(", \"mean_heavy_load\": ");
            cli_json_number(stdout, buf[e].mean_heavy_load);
            printf("}");
        }
        printf("]");
        if (coactivation) {
            printf(", \"coactivation\": [");
            for (int32_t a = 0; a < E; a++) {
                printf("%s[", a ? ", " : "");
                for (int32_t b = 0; b < E; b++) {
                    int64_t steps = 0;
                    gem_status_t st = gem_classification_coactivation(cls, l, a, b, &steps);
                    if (st != GEM_OK) { printf("]]}]}\n"); return cli_fail(st); }
                    printf("%s%lld", b ? ", " : "", (long long)steps);
                }
                printf("]");
            }
            printf("]");
        }
        printf("}");
    }
    printf("\n]}\n");
    return 0;
}

static int classify_print_table(const gem_classification_t *cls, int64_t S, int32_t L,
                                int32_t E, int64_t top, double heavy, double cmin, double tmin,
                                classify_entry *buf)
{
    printf("%lld steps, %d layers x %d experts. Heavy: load > %g x the layer's mean in a step;\n"
           "consistent: heavy in >= %g of the steps; temporal: >= %g; else cold.\n\n",
           (long long)S, (int)L, (int)E, heavy, cmin, tmin);
    printf("layer  consistent temporal  cold   top experts: id (heavy %% of steps, mean load when "
           "heavy)\n");
    for (int32_t l = 0; l < L; l++) {
        int rc = classify_layer(cls, l, E, buf);
        if (rc) return rc;
        int count[3] = {0, 0, 0};
        for (int32_t e = 0; e < E; e++) count[buf[e].cls]++;
        qsort(buf, (size_t)E, sizeof *buf, classify_order);
        printf("%5d %11d %8d %5d  ", (int)l, count[GEM_CLASS_CONSISTENT],
               count[GEM_CLASS_TEMPORAL], count[GEM_CLASS_COLD]);
        /* the top of each of the two busy classes */
        const classify_entry *part[2] = {buf, buf + count[GEM_CLASS_CONSISTENT]};
        const int n[2] = {count[GEM_CLASS_CONSISTENT], count[GEM_CLASS_TEMPORAL]};
        for (int k = 0; k < 2; k++) {
            if (n[k] == 0 || top == 0) continue;
            printf("%s%s:", k && n[0] ? "  " : " ", k ? "temporal" : "consistent");
            for (int64_t i = 0; i < top && i < n[k]; i++)
                printf(" %d (%.0f%%, %.1f)", (int)part[k][i].expert,
                       part[k][i].heavy_fraction * 100.0, part[k][i].mean_heavy_load);
        }
        printf("\n");
    }
    return 0;
}

int gem_cmd_classify(int argc, char **argv)
{
    const char *trace_path = NULL;
    double heavy = 1.0, cmin = 0.5, tmin = 0.05;
    int64_t top = 3;
    int json = 0, coactivation = 0, has_heavy = 0, has_cmin = 0, has_tmin = 0;
    const cli_opt opts[] = {
        {"trace", 0, CLI_STRING, &trace_path, 0, 0, NULL},
        {"heavy-factor", 0, CLI_DOUBLE, &heavy, 1e-12, 1e6, &has_heavy},
        {"consistent-min", 0, CLI_DOUBLE, &cmin, 1e-12, 1, &has_cmin},
        {"temporal-min", 0, CLI_DOUBLE, &tmin, 0, 1, &has_tmin},
        {"top", 0, CLI_INT, &top, 0, GEM_MAX_EXPERTS, NULL},
        {"json", 0, CLI_FLAG, &json, 0, 0, NULL},
        {"coactivation", 0, CLI_FLAG, &coactivation, 0, 0, NULL},
    };
    const cli_spec spec = {classify_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_require(trace_path, "trace"))) return rc;
    if (tmin > cmin)
        return cli_usage_error("--temporal-min %g is above --consistent-min %g", tmin, cmin);

    gem_options_t *o = NULL;
    gem_trace_t *trace = NULL;
    gem_classification_t *cls = NULL;
    classify_entry *buf = NULL;
    if ((rc = cli_options(&o))) goto done;
    if ((has_heavy && (rc = cli_set_double(o, GEM_OPT_HEAVY_FACTOR, heavy, "heavy-factor"))) ||
        (has_cmin && (rc = cli_set_double(o, GEM_OPT_CONSISTENT_MIN, cmin, "consistent-min"))) ||
        (has_tmin && (rc = cli_set_double(o, GEM_OPT_TEMPORAL_MIN, tmin, "temporal-min"))))
        goto done;
    if ((rc = cli_read_trace(trace_path, &trace))) goto done;
    gem_status_t st = gem_classify_experts(trace, o, &cls);
    if (st != GEM_OK) { rc = cli_fail(st); goto done; }
    int64_t S = 0;
    int32_t L = 0, E = 0;
    if ((st = gem_classification_shape(cls, &S, &L, &E)) != GEM_OK) { rc = cli_fail(st); goto done; }
    buf = calloc((size_t)E, sizeof *buf);
    if (!buf) { rc = cli_error("out of memory"); goto done; }
    rc = json ? classify_print_json(cls, S, L, E, coactivation, buf)
              : classify_print_table(cls, S, L, E, top, heavy, cmin, tmin, buf);
done:
    free(buf);
    gem_classification_destroy(cls);
    gem_trace_destroy(trace);
    gem_options_destroy(o);
    return rc;
}
