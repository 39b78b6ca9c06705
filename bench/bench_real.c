/*
 * bench_real.c - every policy on routing data recorded from real models.
 *
 * Reads ../shared/traces (or the folder given as argv[1]) when present; the data is never
 * copied into the repository. For each usable trace and each emulated cluster (sim profiles
 * of spread 0, 0.077, 0.277 and one GPU 1.5x slower) it maps with every policy and prints the
 * mean and p90 step latency, the gain of gem over balanced, and the gap to the evaluator's
 * lower bound, both the general one and the one over mappings with the same number of experts
 * on every GPU (GEM_OPT_BOUND_SLOTS).
 *
 *   make bench            (builds and runs this with the other benchmarks)
 *   build/bench/bench_real [TRACES_DIR]
 *
 * On a terminal, standard error shows what is running, layer by layer (progress.h).
 */
#include "gem.h"
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        gem_status_t st_ = (call);                                                             \
        if (st_ != GEM_OK) {                                                                   \
            fprintf(stderr, "bench_real: %s failed: %s: %s\n", #call, gem_status_string(st_),  \
                    gem_last_error());                                                         \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

typedef struct {
    const char *label;
    const char *file;             /* relative to the traces folder */
    gem_import_format_t format;
    const char *filter;           /* wide CSV row filter, or NULL */
    int keep_layers;              /* keep only layers [0, keep_layers); 0 = all */
    int gpus;                     /* emulated GPUs */
    int hidden, ffn;              /* expert shape for the sim profile */
    int64_t batch, steps, topk;   /* importer settings */
    const char *how;              /* how the steps were obtained, printed */
} dataset;

static const dataset datasets[] = {
    {"switch128 bookcorpus", "harmoeny-switch128/expert_freq_switch128_datasets.csv",
     GEM_IMPORT_WIDE_CSV, "dataset=bookcorpus", 6, 8, 768, 3072, 0, 0, 0,
     "per-iteration counts, encoder layers 0-5 (decoder layers are degenerate)"},
    {"switch128 wikitext", "harmoeny-switch128/expert_freq_switch128_datasets.csv",
     GEM_IMPORT_WIDE_CSV, "dataset=wikitext", 6, 8, 768, 3072, 0, 0, 0,
     "per-iteration counts, encoder layers 0-5"},
    {"switch128 wmt19", "harmoeny-switch128/expert_freq_switch128_datasets.csv",
     GEM_IMPORT_WIDE_CSV, "dataset=wmt19", 6, 8, 768, 3072, 0, 0, 0,
     "per-iteration counts, encoder layers 0-5"},
    {"deepseek-v3 decode", "sglang-deepseek-v3-ep-stats/decode_in1000out1000.json",
     GEM_IMPORT_SGLANG, NULL, 0, 32, 7168, 2048, 256, 64, 8,
     "aggregate counts: 64 steps of 256 tokens x top-8 DRAWN from the distribution (seed 1)"},
    {"deepseek-v3 prefill", "sglang-deepseek-v3-ep-stats/prefill_in4096.json",
     GEM_IMPORT_SGLANG, NULL, 0, 32, 7168, 2048, 4096, 64, 8,
     "aggregate counts: 64 steps of 4096 tokens x top-8 DRAWN from the distribution (seed 1)"},
    {"mixtral-8x7b gsm8k", "mixtral-8x7b-gsm8k/gsm8k_2_routing.jsonl", GEM_IMPORT_TOKENS_JSONL,
     NULL, 0, 4, 4096, 14336, 16, 0, 0, "per-token top-2 choices grouped 16 tokens a step"},
};

typedef struct {
    const char *label;
    double spread;
    int one_slow; /* one GPU 1.5x slower, the rest equal */
} cluster;

static const cluster clusters[] = {
    {"spread 0", 0.0, 0},
    {"spread 0.077", 0.077, 0},
    {"spread 0.277", 0.277, 0},
    {"one GPU 1.5x", 0.0, 1},
};

static const gem_policy_t policies[] = {GEM_POLICY_CONTIGUOUS, GEM_POLICY_ROUND_ROBIN,
                                        GEM_POLICY_BALANCED,   GEM_POLICY_SPEED_AWARE,
                                        GEM_POLICY_EPLB,       GEM_POLICY_GEM};
#define NPOL (sizeof policies / sizeof policies[0])

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A copy of t with only layers [0, keep). */
static gem_trace_t *keep_layers(const gem_trace_t *t, int keep)
{
    int64_t S;
    int32_t L, E;
    CHECK(gem_trace_shape(t, &S, &L, &E));
    if (keep <= 0 || keep >= L) {
        gem_trace_t *c;
        CHECK(gem_trace_clone(t, &c));
        return c;
    }
    gem_trace_t *out;
    CHECK(gem_trace_create(&out, keep, E));
    double *row = malloc(sizeof *row * (size_t)E);
    for (int64_t s = 0; s < S; s++)
        for (int32_t l = 0; l < keep; l++) {
            CHECK(gem_trace_get(t, s, l, row, (size_t)E));
            CHECK(gem_trace_set(out, s, l, row, (size_t)E));
        }
    free(row);
    return out;
}

static gem_profile_t *sim_profile(const dataset *d, const cluster *c)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_MODEL_HIDDEN, d->hidden));
    CHECK(gem_options_set_int(o, GEM_OPT_MODEL_FFN, d->ffn));
    CHECK(gem_options_set_int(o, GEM_OPT_SIM_GPUS, d->gpus));
    CHECK(gem_options_set_double(o, GEM_OPT_SIM_SPREAD, c->spread));
    if (c->one_slow) {
        double *sl = malloc(sizeof *sl * (size_t)d->gpus);
        for (int g = 0; g < d->gpus; g++) sl[g] = g == d->gpus - 1 ? 1.5 : 1.0;
        CHECK(gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, sl, (size_t)d->gpus));
        free(sl);
    }
    gem_profile_t *p;
    CHECK(gem_profile_gpus(GEM_BACKEND_SIM, o, &p));
    gem_options_destroy(o);
    return p;
}

static int run_dataset(const char *root, const dataset *d)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, d->file);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        printf("\n## %s: %s not found, skipped\n", d->label, path);
        return 0;
    }
    gem_options_t *io;
    CHECK(gem_options_create(&io));
    if (d->filter) CHECK(gem_options_set_string(io, GEM_OPT_IMPORT_FILTER, d->filter));
    if (d->batch) CHECK(gem_options_set_int(io, GEM_OPT_IMPORT_BATCH, d->batch));
    if (d->steps) CHECK(gem_options_set_int(io, GEM_OPT_IMPORT_STEPS, d->steps));
    if (d->topk) CHECK(gem_options_set_int(io, GEM_OPT_IMPORT_TOPK, d->topk));
    gem_trace_t *raw, *t;
    char *note = NULL;
    bench_progress("%s: importing", d->label);
    CHECK(gem_trace_import(d->format, path, io, &raw, &note));
    bench_progress_clear();
    gem_options_destroy(io);
    t = keep_layers(raw, d->keep_layers);
    gem_trace_destroy(raw);
    int64_t S;
    int32_t L, E;
    CHECK(gem_trace_shape(t, &S, &L, &E));
    printf("\n## %s: %lld steps x %d layers x %d experts on %d emulated GPUs\n", d->label,
           (long long)S, (int)L, (int)E, d->gpus);
    printf("source: %s\nsteps: %s\n", d->file, d->how);
    if (note && *note) printf("importer: %s\n", note);
    gem_free(note);

    gem_options_t *mo;
    CHECK(gem_options_create(&mo));
    CHECK(gem_options_set_int(mo, GEM_OPT_SEED, 1));
    CHECK(gem_options_set_progress(mo, bench_progress_units, NULL));
    gem_options_t *so; /* evaluation with the bound over mappings of the same slot counts */
    CHECK(gem_options_create(&so));
    CHECK(gem_options_set_int(so, GEM_OPT_BOUND_SLOTS, 1));
    printf("%-14s %-12s %12s %12s %9s %9s %9s\n", "cluster", "policy", "mean_us", "p90_us",
           "vs_bound", "vs_slots", "map_ms");
    for (size_t c = 0; c < sizeof clusters / sizeof clusters[0]; c++) {
        gem_profile_t *p = sim_profile(d, &clusters[c]);
        double mean[NPOL], lb = 0, lbs = 0;
        for (size_t k = 0; k < NPOL; k++) {
            gem_mapping_t *m;
            bench_progress("%s, %s: %s", d->label, clusters[c].label,
                           gem_policy_name(policies[k]));
            double t0 = now_ms();
            CHECK(gem_compute_mapping(p, t, policies[k], mo, NULL, &m));
            double ms = now_ms() - t0;
            gem_report_t *r;
            CHECK(gem_evaluate(p, t, m, NULL, &r));
            double p90;
            CHECK(gem_report_get(r, GEM_METRIC_MEAN, &mean[k]));
            CHECK(gem_report_get(r, GEM_METRIC_P90, &p90));
            CHECK(gem_report_get(r, GEM_METRIC_LOWER_BOUND, &lb));
            gem_report_t *rs;
            CHECK(gem_evaluate(p, t, m, so, &rs));
            CHECK(gem_report_get(rs, GEM_METRIC_LOWER_BOUND, &lbs));
            bench_progress_clear();
            printf("%-14s %-12s %12.1f %12.1f %8.2f%% %8.2f%% %9.1f\n", clusters[c].label,
                   gem_policy_name(policies[k]), mean[k], p90, 100.0 * (mean[k] / lb - 1),
                   100.0 * (mean[k] / lbs - 1), ms);
            gem_report_destroy(rs);
            gem_report_destroy(r);
            gem_mapping_destroy(m);
        }
        printf("%-14s gem vs balanced: %+.2f%% mean step latency (lower bound %.1f us)\n",
               clusters[c].label, 100.0 * (mean[NPOL - 1] / mean[2] - 1), lb);
        gem_profile_destroy(p);
    }
    gem_options_destroy(so);
    gem_options_destroy(mo);
    gem_trace_destroy(t);
    return 1;
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "../shared/traces";
    bench_progress_name = "bench_real";
    struct stat sb;
    if (stat(root, &sb) != 0) {
        printf("bench_real: no traces folder at %s; nothing to do\n", root);
        return 0;
    }
    printf("# Policies on real routing data (%s), libgem %s\n", root, gem_version_string());
    printf("# Cost model: SPEC per_expert, step interpolation; sim profiles like an L40, seed 1.\n");
    printf("# vs_bound = mean / evaluator lower bound - 1 (no mapping can beat the bound);\n"
           "# vs_slots = the same with GEM_OPT_BOUND_SLOTS (no mapping with the same number of\n"
           "# experts on every GPU can beat it).\n");
    int used = 0;
    for (size_t i = 0; i < sizeof datasets / sizeof datasets[0]; i++)
        used += run_dataset(root, &datasets[i]);
    printf("\n%d datasets benchmarked\n", used);
    return 0;
}
