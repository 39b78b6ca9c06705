/*
 * engine.c - a toy Mixture-of-Experts serving loop that uses libgem the way an engine would.
 *
 * Each step routes a batch of tokens through a fake top-2 router (skewed, and whose hot
 * experts drift over time), records the choices with gem_trace_record(), and every N steps
 * computes a new placement with policy gem from the window just served, on an emulated node
 * whose GPUs run at different speeds. It "applies" the placement (prints the experts that
 * move) and compares the predicted step latency of the placement in use against the engines'
 * default contiguous placement.
 *
 *   cc examples/engine.c $(pkg-config --cflags --libs libgem) -o engine && ./engine
 *   ./engine --steps 128 --every 32 --gpus 8
 *
 * Exits non-zero on any libgem error, after printing gem_last_error().
 */
#include <gem.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LAYERS = 4, EXPERTS = 16, TOP_K = 2, TOKENS = 1024, MAX_GPUS = 16 };

/* Every libgem call goes through CHECK: on failure it says which call and why, then cleans up. */
#define CHECK(call)                                                                          \
    do {                                                                                     \
        gem_status_t st_ = (call);                                                           \
        if (st_ != GEM_OK) {                                                                 \
            fprintf(stderr, "engine: %s failed: %s: %s\n", #call, gem_status_string(st_),    \
                    gem_last_error());                                                       \
            goto out;                                                                        \
        }                                                                                    \
    } while (0)

/* ---- a fake router -------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static double uniform(void) /* xorshift64*, [0, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717u) >> 11) / 9007199254740992.0;
}

/* Popularity of expert e in layer l at step s: a Zipf-like ranking that differs per layer and
 * shifts by a few places every 40 steps, so some experts are hot only for a while. */
static double popularity(int64_t step, int layer, int expert)
{
    int rank = (expert * 7 + layer * 3 + (int)(step / 40) * 5) % EXPERTS;
    return 1.0 / ((rank + 1.0) * (rank + 1.0) * 0.35 + 1.0);
}

/* Top-2 routing of one token: two different experts drawn by popularity. */
static void route_token(int64_t step, int layer, int32_t *ids)
{
    double w[EXPERTS], total = 0;
    for (int e = 0; e < EXPERTS; e++) total += w[e] = popularity(step, layer, e);
    for (int j = 0; j < TOP_K; j++) {
        double r = uniform() * total;
        int pick = EXPERTS - 1;
        for (int e = 0; e < EXPERTS; e++) {
            if (w[e] <= 0) continue;
            if ((r -= w[e]) < 0) { pick = e; break; }
        }
        while (w[pick] <= 0) pick = (pick + 1) % EXPERTS; /* rounding at the end of the range */
        ids[j] = pick;
        total -= w[pick];
        w[pick] = 0; /* top-k picks distinct experts */
    }
}

/* ---- the loop ------------------------------------------------------------------------------- */

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* Prints the experts whose GPU differs between two unreplicated mappings; returns how many. */
static int print_moves(const gem_mapping_t *from, const gem_mapping_t *to, int *moved)
{
    gem_status_t st = GEM_OK;
    *moved = 0;
    for (int l = 0; l < LAYERS; l++) {
        int printed = 0;
        for (int e = 0; e < EXPERTS; e++) {
            int32_t a, b;
            if ((st = gem_mapping_expert_gpu(from, l, e, &a)) != GEM_OK ||
                (st = gem_mapping_expert_gpu(to, l, e, &b)) != GEM_OK) {
                fprintf(stderr, "engine: gem_mapping_expert_gpu failed: %s\n", gem_last_error());
                return -1;
            }
            if (a == b) continue;
            if (!printed) printf("    layer %d moves", l);
            printf(" e%d:%d->%d", e, (int)a, (int)b);
            printed = 1;
            ++*moved;
        }
        if (printed) printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    int steps = 96, every = 16, gpus = 4;
    for (int i = 1; i < argc; i++) {
        int *dst = !strcmp(argv[i], "--steps") ? &steps : !strcmp(argv[i], "--every") ? &every
                 : !strcmp(argv[i], "--gpus") ? &gpus : NULL;
        if (!dst || i + 1 == argc || parse_int(argv[++i], 1, dst == &gpus ? MAX_GPUS : 1000000, dst)) {
            fprintf(stderr, "usage: %s [--steps N] [--every N] [--gpus 1..%d]\n", argv[0], MAX_GPUS);
            return 2;
        }
    }

    int rc = 1;
    gem_options_t *opts = NULL;
    gem_profile_t *profile = NULL;
    gem_trace_t *trace = NULL, *window = NULL;
    gem_mapping_t *contiguous = NULL, *current = NULL, *next = NULL;
    gem_report_t *report = NULL;
    double sum_default = 0, sum_current = 0;
    int windows = 0, remaps = 0, total_moved = 0;
    int32_t ids[TOKENS * TOP_K];

    printf("libgem %s: %d GPUs (emulated, up to 15%% slower than the fastest), %d layers x %d "
           "experts, top-%d of %d tokens per step, re-map every %d steps\n",
           gem_version_string(), gpus, LAYERS, EXPERTS, TOP_K, TOKENS, every);

    CHECK(gem_options_create(&opts));
    CHECK(gem_options_set_int(opts, GEM_OPT_SEED, 1));
    CHECK(gem_options_set_int(opts, GEM_OPT_SIM_GPUS, gpus));
    CHECK(gem_options_set_double(opts, GEM_OPT_SIM_SPREAD, 0.15));
    CHECK(gem_options_set_int(opts, GEM_OPT_RESTARTS, 2));
    CHECK(gem_profile_gpus(GEM_BACKEND_SIM, opts, &profile));
    CHECK(gem_trace_create(&trace, LAYERS, EXPERTS));

    for (int64_t s = 0; s < steps; s++) {
        for (int l = 0; l < LAYERS; l++) {
            for (int t = 0; t < TOKENS; t++) route_token(s, l, ids + t * TOP_K);
            CHECK(gem_trace_record(trace, s, l, ids, TOKENS, TOP_K));
        }
        if ((s + 1) % every != 0) continue;

        /* The window just served, and what each placement would have cost on it. */
        gem_trace_destroy(window);
        window = NULL;
        CHECK(gem_trace_slice(trace, s + 1 - every, every, &window));
        if (!contiguous) {
            CHECK(gem_compute_mapping(profile, window, GEM_POLICY_CONTIGUOUS, opts, NULL,
                                      &contiguous));
            CHECK(gem_mapping_clone(contiguous, &current));
        }
        double mean_default, mean_current, mean_next;
        CHECK(gem_evaluate(profile, window, contiguous, NULL, &report));
        CHECK(gem_report_get(report, GEM_METRIC_MEAN, &mean_default));
        gem_report_destroy(report);
        report = NULL;
        CHECK(gem_evaluate(profile, window, current, NULL, &report));
        CHECK(gem_report_get(report, GEM_METRIC_MEAN, &mean_current));
        gem_report_destroy(report);
        report = NULL;

        /* A new placement from this window; the engine would now move expert weights. */
        CHECK(gem_compute_mapping(profile, window, GEM_POLICY_GEM, opts, NULL, &next));
        CHECK(gem_evaluate(profile, window, next, NULL, &report));
        CHECK(gem_report_get(report, GEM_METRIC_MEAN, &mean_next));
        gem_report_destroy(report);
        report = NULL;

        printf("steps %4lld-%-4lld predicted step latency: contiguous %8.1f us, in use %8.1f us"
               " (%+.1f%%), new placement on this window %8.1f us\n",
               (long long)(s + 1 - every), (long long)s, mean_default, mean_current,
               100.0 * (mean_current - mean_default) / mean_default, mean_next);
        int moved;
        if (print_moves(current, next, &moved)) goto out;
        printf("  applied placement %d: %d expert%s moved\n", remaps + 1, moved,
               moved == 1 ? "" : "s");
        gem_mapping_destroy(current);
        current = next;
        next = NULL;
        sum_default += mean_default;
        sum_current += mean_current;
        windows++;
        remaps++;
        total_moved += moved;
    }

    if (windows == 0) {
        printf("summary: fewer than %d steps, no placement computed\n", every);
    } else {
        printf("summary: %d steps, %d placements applied, %d expert moves; mean predicted step "
               "latency %.1f us with GEM placements in use vs %.1f us contiguous (%.2fx)\n",
               steps, remaps, total_moved, sum_current / windows, sum_default / windows,
               sum_default / sum_current);
    }
    rc = 0;
out:
    gem_report_destroy(report);
    gem_mapping_destroy(next);
    gem_mapping_destroy(current);
    gem_mapping_destroy(contiguous);
    gem_trace_destroy(window);
    gem_trace_destroy(trace);
    gem_profile_destroy(profile);
    gem_options_destroy(opts);
    return rc;
}
