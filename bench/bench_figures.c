/*
 * bench_figures.c - the pictures of the project page: what policy gem gains over balanced
 * placement as the GPUs' speeds spread apart, and where the time goes on each GPU.
 *
 * For every cluster (4 emulated GPUs whose throughput spreads by 0, 0.05, 0.077, 0.15, 0.2 or
 * 0.277, plus 4 equal GPUs but one 1.5x slower) and two routings (skew 0.6, and a
 * near-uniform skew 0.05), it maps a synthetic trace (64 steps x 8 layers x 32 experts, 16384
 * expert assignments per step and layer) with policies balanced and gem, replays it through
 * both (gem_evaluate, SPEC 2) and prints the mean step latencies and the gain of gem. It
 * writes two SVG pictures (tools/svg.c) next to itself, or into DIR:
 *
 *   gain-vs-spread.svg          the gain against the spread, one line per routing, the
 *                               one-slow-GPU cluster as separate diamonds (its spread is 0.5)
 *   busy-balanced-vs-gem.svg    per-GPU busy time against the slowest GPU, balanced beside
 *                               gem, for spread 0.277 and skew 0.6 (as `gem eval --svg`)
 *
 *   make bench                          (builds and runs it with the other benchmarks)
 *   build/bench/bench_figures [--out DIR]
 *
 * Everything is seeded (trace, fleet and search: seed 1), so the numbers and pictures are the
 * same on every run and machine. A progress line goes to standard error when it is a terminal.
 */
#include "gem.h"
#include "progress.h"
#include "svg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        gem_status_t st_ = (call);                                                             \
        if (st_ != GEM_OK) {                                                                   \
            fprintf(stderr, "bench_figures: %s failed: %s: %s\n", #call,                       \
                    gem_status_string(st_), gem_last_error());                                 \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define GPUS 4
#define STEPS 64
#define LAYERS 8
#define EXPERTS 32
#define TOKENS 16384

/* The cluster of the busy picture, and the spread given to the one-slow-GPU cluster on the
 * gain chart's axis (its slowest GPU is 1.5x the fastest, so its spread is 0.5). */
#define BUSY_SPREAD 0.277
#define BUSY_SKEW 0.6
#define SLOW_SPREAD 0.5

static const double spreads[] = {0, 0.05, 0.077, 0.15, 0.2, 0.277};
#define NSPREAD ((int)(sizeof spreads / sizeof spreads[0]))
static const double skews[] = {0.6, 0.05};
#define NSKEW ((int)(sizeof skews / sizeof skews[0]))

static gem_profile_t *sim_profile(double spread, int one_slow)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_SEED, 1));
    if (one_slow) {
        const double slowdowns[GPUS] = {1.0, 1.0, 1.0, 1.5};
        CHECK(gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, slowdowns, GPUS));
    } else {
        CHECK(gem_options_set_int(o, GEM_OPT_SIM_GPUS, GPUS));
        CHECK(gem_options_set_double(o, GEM_OPT_SIM_SPREAD, spread));
    }
    gem_profile_t *p;
    CHECK(gem_profile_gpus(GEM_BACKEND_SIM, o, &p));
    gem_options_destroy(o);
    return p;
}

static gem_trace_t *synth(double skew)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_SEED, 1));
    gem_trace_t *t;
    CHECK(gem_trace_synthesize(STEPS, LAYERS, EXPERTS, TOKENS, skew, o, &t));
    gem_options_destroy(o);
    return t;
}

/* Maps with one policy (seed 1) and replays; the caller owns the report. */
static gem_report_t *run(const gem_profile_t *p, const gem_trace_t *t, gem_policy_t pol)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_SEED, 1));
    CHECK(gem_options_set_progress(o, bench_progress_units, NULL));
    gem_mapping_t *m;
    CHECK(gem_compute_mapping(p, t, pol, o, NULL, &m));
    gem_report_t *r;
    CHECK(gem_evaluate(p, t, m, NULL, &r));
    gem_mapping_destroy(m);
    gem_options_destroy(o);
    return r;
}

static double metric(const gem_report_t *r, gem_metric_t key)
{
    double v;
    CHECK(gem_report_get(r, key, &v));
    return v;
}

static void save(const char *dir, const char *name, char *text)
{
    if (!text) {
        fprintf(stderr, "bench_figures: out of memory drawing %s\n", name);
        exit(1);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (svg_save(path, text) != 0) {
        fprintf(stderr, "bench_figures: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    printf("wrote %s\n", path);
    free(text);
}

/* One row of the table: a cluster and a routing, both policies. Returns the gain in %; the
 * row of the busy picture draws it into *busy. */
static double row(const char *cluster, double spread, int one_slow, double skew,
                  const gem_trace_t *t, char **busy)
{
    gem_profile_t *p = sim_profile(spread, one_slow);
    bench_progress("%s, skew %.2f: balanced", cluster, skew);
    gem_report_t *bal = run(p, t, GEM_POLICY_BALANCED);
    bench_progress("%s, skew %.2f: gem", cluster, skew);
    gem_report_t *gem = run(p, t, GEM_POLICY_GEM);
    double b = metric(bal, GEM_METRIC_MEAN), g = metric(gem, GEM_METRIC_MEAN);
    double lb = metric(gem, GEM_METRIC_LOWER_BOUND);
    double gain = (b - g) / b * 100.0;
    bench_progress_clear();
    printf("%-5.2f %-14s %7.3f %14.3f %12.3f %9.2f%% %14.3f %10.2f%%\n", skew, cluster,
           one_slow ? SLOW_SPREAD : spread, b * 1e-3, g * 1e-3, gain, lb * 1e-3,
           (g / lb - 1) * 100.0);
    if (!one_slow && spread == BUSY_SPREAD && skew == BUSY_SKEW) {
        const gem_report_t *reports[2] = {bal, gem};
        const char *names[2] = {"balanced", "gem"};
        char sub[200];
        snprintf(sub, sizeof sub,
                 "Synthetic trace (skew %.1f, seed 1), %d steps x %d layers x %d experts on %d "
                 "emulated GPUs, spread %.3f", skew, STEPS, LAYERS, EXPERTS, GPUS, spread);
        CHECK(svg_busy_picture(reports, names, 2, GPUS, LAYERS,
                               "Per-GPU busy time: balanced vs gem", sub, busy));
    }
    gem_report_destroy(gem);
    gem_report_destroy(bal);
    gem_profile_destroy(p);
    return gain;
}

int main(int argc, char **argv)
{
    /* the pictures go next to the program (build/bench), or where --out says */
    bench_progress_name = "bench_figures";
    char dir[4096] = ".";
    const char *slash = strrchr(argv[0], '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - argv[0]), argv[0]);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            snprintf(dir, sizeof dir, "%s", argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_figures [--out DIR]\n");
            return 2;
        }
    }

    printf("# Gain of policy gem over balanced against the GPUs' speed spread, libgem %s\n",
           gem_version_string());
    printf("# %d steps x %d layers x %d experts, %d expert assignments per step and layer, "
           "%d sim GPUs; seed 1\n", STEPS, LAYERS, EXPERTS, TOKENS, GPUS);
    printf("# gain = 1 - gem mean / balanced mean; gap = gem mean / lower bound - 1\n\n");
    printf("%-5s %-14s %7s %14s %12s %10s %14s %11s\n", "skew", "cluster", "spread",
           "balanced_ms", "gem_ms", "gain", "lower_bound_ms", "gem_gap");

    double gain[NSKEW][NSPREAD], slow_gain[NSKEW];
    char *busy = NULL;
    for (int k = 0; k < NSKEW; k++) {
        gem_trace_t *t = synth(skews[k]);
        for (int i = 0; i < NSPREAD; i++) {
            char label[32];
            snprintf(label, sizeof label, "spread %.3g", spreads[i]);
            gain[k][i] = row(label, spreads[i], 0, skews[k], t, &busy);
        }
        slow_gain[k] = row("one GPU 1.5x", 0, 1, skews[k], t, &busy);
        gem_trace_destroy(t);
    }

    double slow_x = SLOW_SPREAD;
    char names[2 * NSKEW][96];
    svg_series series[2 * NSKEW];
    for (int k = 0; k < NSKEW; k++) {
        snprintf(names[k], sizeof names[k], "skew %.2f%s", skews[k],
                 skews[k] < 0.1 ? " (near-uniform routing)" : " (skewed routing)");
        series[k] = (svg_series){names[k], NSPREAD, spreads, gain[k], k, 0, 1, k == 1};
        snprintf(names[NSKEW + k], sizeof names[NSKEW + k], "one GPU 1.5x slower, skew %.2f",
                 skews[k]);
        series[NSKEW + k] = (svg_series){names[NSKEW + k], 1, &slow_x, &slow_gain[k], k, 1, 0,
                                         k == 1};
    }
    char sub[256];
    snprintf(sub, sizeof sub,
             "Synthetic traces (seed 1): %d steps x %d layers x %d experts, %d assignments per "
             "step and layer;\n%d emulated GPUs (sim backend, seed 1). Gain = 1 - gem / balanced "
             "mean step latency.", STEPS, LAYERS, EXPERTS, TOKENS, GPUS);
    const svg_xy chart = {
        .title = "Gain of gem over balanced placement as GPU speeds spread",
        .subtitle = sub,
        .x_label = "speed spread: the slowest GPU takes (1 + spread) x the fastest one's time",
        .y_label = "gain in mean step latency (%)",
        .nseries = 2 * NSKEW,
        .series = series,
        .value_format = "%.1f%%",
    };
    printf("\n");
    save(dir, "gain-vs-spread.svg", svg_xy_render(&chart));
    save(dir, "busy-balanced-vs-gem.svg", busy);
    return 0;
}
