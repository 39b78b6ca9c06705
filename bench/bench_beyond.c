/*
 * bench_beyond.c - what goes beyond the GEM paper: replicas with speed-weighted shares, unequal
 * slot counts under memory limits, migration-aware re-mapping after drift, and placement
 * across hosts with the all-to-all model.
 *
 * Build without the Makefile (from the repository root, after `make`):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/bench_beyond.c build/libgem.a \
 *       $(pkg-config --libs jansson) -lpthread -lm -o build/bench_beyond
 * (`make bench` builds it as build/bench/bench_beyond with the library's backend libraries.)
 *
 *   build/bench/bench_beyond [replicas|slots|remap|topology]...   (default: all sections)
 *
 * Everything is synthetic and seeded: profiles from the sim backend (L40-like curves running a
 * Mixtral-8x7B expert, tile 64, 20 us fixed cost per layer) with explicit slowdowns, traces
 * from gem_trace_synthesize or drawn here. Latencies are mean step latencies from gem_evaluate
 * (SPEC 2, per_expert), on the trace a mapping was built from ("in") and on the steps that
 * follow it ("next"), which no policy saw.
 */
#define GEM_EXPERIMENTAL
#include "gem.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        gem_status_t st_ = (call);                                                             \
        if (st_ != GEM_OK) {                                                                   \
            fprintf(stderr, "bench_beyond: %s failed: %s: %s\n", #call,                        \
                    gem_status_string(st_), gem_last_error());                                 \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

/* ---- inputs -------------------------------------------------------------------------------- */

static gem_profile_t *sim_profile(int G, const double *sd)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, sd, (size_t)G));
    gem_profile_t *p;
    CHECK(gem_profile_gpus(GEM_BACKEND_SIM, o, &p));
    gem_options_destroy(o);
    return p;
}

static gem_trace_t *synth(int64_t steps, int layers, int experts, int64_t tokens, double skew,
                          int64_t seed)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_SEED, seed));
    gem_trace_t *t;
    CHECK(gem_trace_synthesize(steps, layers, experts, tokens, skew, o, &t));
    gem_options_destroy(o);
    return t;
}

static gem_options_t *opts_new(void)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_THREADS, 2));
    return o;
}

static double mean_of(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m,
                      const gem_options_t *o, double *comm)
{
    gem_report_t *r;
    CHECK(gem_evaluate(p, t, m, o, &r));
    double v;
    CHECK(gem_report_get(r, GEM_METRIC_MEAN, &v));
    if (comm) CHECK(gem_report_get(r, GEM_METRIC_COMM, comm));
    gem_report_destroy(r);
    return v;
}

static uint64_t rng_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- 1. replicas ----------------------------------------------------------------------------- */

/* Mean on the build trace and on the next steps; copies actually placed per layer. */
static void replica_row(const gem_profile_t *p, const gem_trace_t *in, const gem_trace_t *next,
                        gem_policy_t pol, int R, gem_share_rule_t rule, double *m_in,
                        double *m_next, double *copies)
{
    gem_options_t *o = opts_new();
    CHECK(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, R));
    CHECK(gem_options_set_int(o, GEM_OPT_SHARE_RULE, rule));
    gem_mapping_t *m;
    CHECK(gem_compute_mapping(p, in, pol, o, NULL, &m));
    *m_in = mean_of(p, in, m, NULL, NULL);
    *m_next = mean_of(p, next, m, NULL, NULL);
    int32_t G, L, E;
    CHECK(gem_mapping_shape(m, &G, &L, &E));
    size_t n = 0;
    for (int32_t l = 0; l < L; l++) {
        size_t k;
        CHECK(gem_mapping_num_placements(m, l, &k));
        n += k;
    }
    *copies = (double)n / L - E;
    gem_mapping_destroy(m);
    gem_options_destroy(o);
}

static void bench_replicas(void)
{
    const int G = 8, E = 64, L = 4;
    const int64_t S = 64;
    const double sd[8] = {1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.35, 1.5};
    gem_profile_t *p = sim_profile(G, sd);
    printf("\n== Replication: %d GPUs (slowdowns 1 1 1 1 1.1 1.2 1.35 1.5), %d layers x %d "
           "experts,\n   prefill chunks (4096 tokens x top-8 = 32768 assignments), built on %lld steps, 'next' = "
           "the %lld steps after\n", G, L, E, (long long)S, (long long)S);
    const double skews[2] = {0.6, 1.0};
    for (int k = 0; k < 2; k++) {
        gem_trace_t *all = synth(2 * S, L, E, 32768, skews[k], 7);
        gem_trace_t *in, *next;
        CHECK(gem_trace_slice(all, 0, S, &in));
        CHECK(gem_trace_slice(all, S, S, &next));
        printf("\n  skew %.1f   mean step latency, us (in / next); copies = replicas placed per "
               "layer\n", skews[k]);
        printf("  %-10s | %-26s | %-26s | %-20s\n", "slots R", "gem, speed-weighted shares",
               "gem, equal shares", "eplb (equal shares)");
        const int Rs[3] = {0, E / 8, E / 4};
        for (int i = 0; i < 3; i++) {
            double a1, a2, ac, b1, b2, bc, c1, c2, cc;
            replica_row(p, in, next, GEM_POLICY_GEM, Rs[i], GEM_SHARES_SPEED_WEIGHTED, &a1, &a2, &ac);
            replica_row(p, in, next, GEM_POLICY_GEM, Rs[i], GEM_SHARES_EQUAL, &b1, &b2, &bc);
            replica_row(p, in, next, GEM_POLICY_EPLB, Rs[i], GEM_SHARES_EQUAL, &c1, &c2, &cc);
            char lab[32];
            snprintf(lab, sizeof lab, "%d%s", Rs[i], i == 0 ? "" : i == 1 ? " (E/8)" : " (E/4)");
            printf("  %-10s | %6.0f / %6.0f  (%4.1f cp) | %6.0f / %6.0f  (%4.1f cp) | %6.0f / %6.0f"
                   " (%2.0f)\n", lab, a1, a2, ac, b1, b2, bc, c1, c2, cc);
        }
        gem_trace_destroy(in);
        gem_trace_destroy(next);
        gem_trace_destroy(all);
    }
    gem_profile_destroy(p);
}

/* ---- 2. unequal slots ------------------------------------------------------------------------ */

/* Decode: batch 16, top-8 over 64 experts; every expert gets 1..3 tokens (all active). */
static gem_trace_t *decode_trace(int64_t S, int L, int E, uint64_t seed)
{
    gem_trace_t *t;
    CHECK(gem_trace_create(&t, L, E));
    double *row = malloc(sizeof *row * (size_t)E);
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            for (int e = 0; e < E; e++) row[e] = 1.0 + (double)(rng_next(&seed) % 3);
            CHECK(gem_trace_set(t, s, l, row, (size_t)E));
        }
    free(row);
    return t;
}

static void bench_slots(void)
{
    const int G = 4, E = 64, L = 4;
    const double sd[4] = {1.0, 1.0, 1.0, 1.5};
    gem_profile_t *p = sim_profile(G, sd);
    gem_trace_t *in = decode_trace(64, L, E, 3), *next = decode_trace(64, L, E, 4);
    printf("\n== Unequal slots: decode (every expert active, 1-3 tokens each), %d GPUs, GPU 3 "
           "1.5x slower,\n   %d layers x %d experts; mean step latency, us, on the next 64 "
           "steps\n", G, L, E);
    const int64_t eb = 1 << 20; /* 1 MiB per expert and layer */
    const struct { const char *name; int64_t mem[4]; } mems[3] = {
        {"memory for 20 slots/GPU", {20 * 4 * eb, 20 * 4 * eb, 20 * 4 * eb, 20 * 4 * eb}},
        {"memory for 17 slots/GPU", {17 * 4 * eb, 17 * 4 * eb, 17 * 4 * eb, 17 * 4 * eb}},
        {"memory 18/18/18/10 slots", {18 * 4 * eb, 18 * 4 * eb, 18 * 4 * eb, 10 * 4 * eb}},
    };
    const gem_policy_t pols[3] = {GEM_POLICY_BALANCED, GEM_POLICY_SPEED_AWARE, GEM_POLICY_GEM};
    printf("  %-26s | %-12s | %9s | %9s | %6s | slots (gem, unequal)\n", "memory", "policy",
           "equal", "unequal", "gain");
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 3; i++) {
            double v[2];
            char slots[64] = "";
            for (int u = 0; u < 2; u++) {
                gem_options_t *o = opts_new();
                CHECK(gem_options_set_int(o, GEM_OPT_EXPERT_BYTES, eb));
                CHECK(gem_options_set_int_array(o, GEM_OPT_GPU_MEMORY, mems[k].mem, 4));
                CHECK(gem_options_set_int(o, GEM_OPT_UNEQUAL_SLOTS, u));
                gem_mapping_t *m;
                gem_status_t st = gem_compute_mapping(p, in, pols[i], o, NULL, &m);
                if (st == GEM_ERR_INFEASIBLE) {
                    v[u] = NAN;
                } else {
                    CHECK(st);
                    v[u] = mean_of(p, next, m, NULL, NULL);
                    if (u == 1 && pols[i] == GEM_POLICY_GEM) {
                        int32_t c[4];
                        for (int g = 0; g < 4; g++) CHECK(gem_mapping_gpu_slots(m, 0, g, &c[g]));
                        snprintf(slots, sizeof slots, "%d/%d/%d/%d", c[0], c[1], c[2], c[3]);
                    }
                    gem_mapping_destroy(m);
                }
                gem_options_destroy(o);
            }
            char eq[32];
            if (isnan(v[0])) snprintf(eq, sizeof eq, "infeasible");
            else snprintf(eq, sizeof eq, "%9.0f", v[0]);
            char gain[16] = "";
            if (!isnan(v[0])) snprintf(gain, sizeof gain, "%5.1f%%", 100 * (v[0] - v[1]) / v[0]);
            printf("  %-26s | %-12s | %9s | %9.0f | %6s | %s\n", i == 0 ? mems[k].name : "",
                   gem_policy_name(pols[i]), eq, v[1], gain, slots);
        }
    gem_trace_destroy(in);
    gem_trace_destroy(next);
    gem_profile_destroy(p);
}

/* ---- 3. re-mapping after drift --------------------------------------------------------------- */

/* The window: the steps after the build trace with popularity drift: in each layer the 8
 * heaviest experts (over the build trace) trade loads with 8 others. */
static gem_trace_t *drifted(const gem_trace_t *built, const gem_trace_t *after, uint64_t seed)
{
    int64_t S, S2;
    int32_t L, E;
    CHECK(gem_trace_shape(built, &S, &L, &E));
    CHECK(gem_trace_shape(after, &S2, &L, &E));
    gem_trace_t *w;
    CHECK(gem_trace_create(&w, L, E));
    double *row = malloc(sizeof *row * (size_t)E), *tot = calloc((size_t)E, sizeof *tot);
    int *perm = malloc(sizeof *perm * (size_t)E);
    for (int32_t l = 0; l < L; l++) {
        for (int32_t e = 0; e < E; e++) tot[e] = 0;
        for (int64_t s = 0; s < S; s++) {
            CHECK(gem_trace_get(built, s, l, row, (size_t)E));
            for (int32_t e = 0; e < E; e++) tot[e] += row[e];
        }
        for (int32_t e = 0; e < E; e++) perm[e] = e;
        for (int k = 0; k < 8; k++) { /* k-th heaviest <-> a random lighter expert */
            int32_t h = -1;
            for (int32_t e = 0; e < E; e++)
                if (tot[e] >= 0 && (h < 0 || tot[e] > tot[h])) h = e;
            tot[h] = -1;
            int32_t c;
            do c = (int32_t)(rng_next(&seed) % (uint64_t)E);
            while (tot[c] < 0 || perm[c] != c);
            tot[c] = -1;
            perm[h] = c;
            perm[c] = h;
        }
        for (int64_t s = 0; s < S2; s++) {
            double *src = malloc(sizeof *src * (size_t)E);
            CHECK(gem_trace_get(after, s, l, src, (size_t)E));
            for (int32_t e = 0; e < E; e++) row[e] = src[perm[e]];
            CHECK(gem_trace_set(w, s, l, row, (size_t)E));
            free(src);
        }
    }
    free(row), free(tot), free(perm);
    return w;
}

static void bench_remap(void)
{
    const int G = 8, E = 64, L = 4;
    const int64_t S = 64;
    const double sd[8] = {1.0, 1.0, 1.03, 1.05, 1.08, 1.1, 1.15, 1.2};
    gem_profile_t *p = sim_profile(G, sd);
    gem_trace_t *all = synth(2 * S, L, E, 8192, 0.8, 11);
    gem_trace_t *built, *after;
    CHECK(gem_trace_slice(all, 0, S, &built));
    CHECK(gem_trace_slice(all, S, S, &after));
    gem_trace_t *window = drifted(built, after, 5);
    gem_options_t *o = opts_new();
    gem_mapping_t *cur;
    CHECK(gem_compute_mapping(p, built, GEM_POLICY_GEM, o, NULL, &cur));
    double drift_plain, drift;
    CHECK(gem_drift(p, built, after, cur, &drift_plain));
    CHECK(gem_drift(p, built, window, cur, &drift));
    printf("\n== Re-mapping after drift: %d GPUs (slowdowns 1 .. 1.2), %d layers x %d experts, "
           "gem built on %lld steps;\n   window = the next %lld steps with the 8 hottest "
           "experts of each layer trading loads with 8 others\n", G, L, E, (long long)S,
           (long long)S);
    printf("  drift ratio (mean on window / mean on built_on): %.3f (without the popularity "
           "shift: %.3f)\n", drift, drift_plain);
    printf("  %-22s | %8s | %8s | %13s | %5s | %8s | %s\n", "budget", "current", "remapped",
           "unconstrained", "moves", "recovery", "recommend");
    const struct { const char *name; int64_t k; } budgets[5] = {
        {"K = 0", 0}, {"K = E/8 = 8 (total)", E / 8}, {"K = E/4 = 16 (total)", E / 4},
        {"K = E/8 per layer = 32", (int64_t)L * E / 8}, {"unlimited", -1},
    };
    for (int i = 0; i < 5; i++) {
        CHECK(gem_options_set_int(o, GEM_OPT_MAX_MOVES, budgets[i].k));
        gem_remap_result_t *res;
        CHECK(gem_remap(p, window, cur, o, &res));
        double c, r, u;
        int64_t mv;
        int32_t rec;
        CHECK(gem_remap_result_get(res, &c, &r, &u, &mv, NULL, &rec));
        double recov = c > u ? (c - r) / (c - u) : 0;
        printf("  %-22s | %8.0f | %8.0f | %13.0f | %5lld | %7.0f%% | %d\n", budgets[i].name, c, r,
               u, (long long)mv, 100 * recov, rec);
        gem_remap_result_destroy(res);
    }
    gem_options_destroy(o);
    gem_mapping_destroy(cur);
    gem_trace_destroy(window);
    gem_trace_destroy(after);
    gem_trace_destroy(built);
    gem_trace_destroy(all);
    gem_profile_destroy(p);
}

/* ---- 4. topology ------------------------------------------------------------------------------- */

/* Two hosts of 4 H100-like GPUs running DeepSeek-V3-sized experts (hidden 7168, FFN 2048,
 * fp8: 7 KiB per token), and an all-to-all table, the same for every GPU:
 * 25 us + bytes / 12.5 GB/s, an inter-node figure. Added through the profile's JSON form. */
static gem_profile_t *two_host_profile(void)
{
    const double sd[8] = {1.0, 1.0, 1.05, 1.1, 1.0, 1.05, 1.1, 1.2};
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, sd, 8));
    CHECK(gem_options_set_int(o, GEM_OPT_MODEL_HIDDEN, 7168));
    CHECK(gem_options_set_int(o, GEM_OPT_MODEL_FFN, 2048));
    CHECK(gem_options_set_int(o, GEM_OPT_MODEL_DTYPE, GEM_DTYPE_FP8));
    CHECK(gem_options_set_double(o, GEM_OPT_SIM_BANDWIDTH_GBS, 3350));
    CHECK(gem_options_set_double(o, GEM_OPT_SIM_TFLOPS, 990));
    gem_profile_t *p;
    CHECK(gem_profile_gpus(GEM_BACKEND_SIM, o, &p));
    gem_options_destroy(o);
    for (int g = 0; g < 8; g++) CHECK(gem_profile_set_gpu_string(p, g, "host", g < 4 ? "a" : "b"));
    char *text;
    CHECK(gem_profile_to_string(p, &text));
    gem_profile_destroy(p);
    char a2a[4096];
    int n = snprintf(a2a, sizeof a2a, ", \"alltoall\": {\"bytes\": [65536, 1048576, 16777216], "
                     "\"time_us\": [");
    for (int g = 0; g < 8; g++)
        n += snprintf(a2a + n, sizeof a2a - (size_t)n, "%s[%.3f, %.3f, %.3f]", g ? ", " : "",
                      25 + 65536 / 12500.0, 25 + 1048576 / 12500.0, 25 + 16777216 / 12500.0);
    snprintf(a2a + n, sizeof a2a - (size_t)n, "]}}");
    char *end = strrchr(text, '}');
    size_t len = (size_t)(end - text);
    char *buf = malloc(len + strlen(a2a) + 1);
    memcpy(buf, text, len);
    strcpy(buf + len, a2a);
    gem_free(text);
    CHECK(gem_profile_parse(buf, strlen(buf), &p));
    free(buf);
    return p;
}

/* Steps in which expert group 0 or 1 (ids interleaved) is hot, in turn, the other one at
 * `cold` of its load: routing whose hot set moves between groups from step to step. */
static gem_trace_t *grouped_trace(int64_t S, int L, int E, double per_expert, double cold,
                                  uint64_t seed)
{
    gem_trace_t *t;
    CHECK(gem_trace_create(&t, L, E));
    double *row = malloc(sizeof *row * (size_t)E);
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            int hot = (int)((s + l) % 2);
            for (int e = 0; e < E; e++) {
                double base = (e % 2) == hot ? per_expert : cold * per_expert;
                row[e] = floor(base * (0.75 + 0.5 * (double)(rng_next(&seed) >> 11) * 0x1.0p-53));
            }
            CHECK(gem_trace_set(t, s, l, row, (size_t)E));
        }
    free(row);
    return t;
}

static void bench_topology(void)
{
    gem_profile_t *p = two_host_profile();
    const int E = 64, L = 4;
    printf("\n== Topology: 2 hosts x 4 GPUs (DeepSeek-V3-sized experts, fp8, H100-like), "
           "all-to-all 25 us + bytes / 12.5 GB/s,\n   7 KiB per token, top-8; %d layers x %d "
           "experts in two groups that take turns being hot; mean step latency\n   on the next "
           "64 steps, us; cross = fraction of tokens that need the other host\n", L, E);
    const struct { const char *name; double per, cold; } cases[3] = {
        {"decode, 64 tokens, cold group off", 16, 0.0},
        {"prefill, 1024 tokens, cold group off", 256, 0.0},
        {"prefill, 1024 tokens, cold group 25%", 256, 0.25},
    };
    for (int c = 0; c < 3; c++) {
        gem_trace_t *in = grouped_trace(64, L, E, cases[c].per, cases[c].cold, 21);
        gem_trace_t *next = grouped_trace(64, L, E, cases[c].per, cases[c].cold, 22);
        printf("  %s\n  %-30s | %8s | %8s | %8s | %6s\n", cases[c].name, "policy gem", "compute",
               "a2a", "total", "cross");
        for (int k = 0; k < 3; k++) {
            gem_options_t *o = opts_new();
            CHECK(gem_options_set_int(o, GEM_OPT_TOPOLOGY_AWARE, k > 0));
            CHECK(gem_options_set_int(o, GEM_OPT_COMM_MODEL, k == 2));
            gem_mapping_t *m;
            CHECK(gem_compute_mapping(p, in, GEM_POLICY_GEM, o, NULL, &m));
            CHECK(gem_options_set_int(o, GEM_OPT_COMM_MODEL, 1));
            gem_report_t *r;
            CHECK(gem_evaluate(p, next, m, o, &r));
            double total, comm, cross;
            CHECK(gem_report_get(r, GEM_METRIC_MEAN, &total));
            CHECK(gem_report_get(r, GEM_METRIC_COMM, &comm));
            CHECK(gem_report_get(r, GEM_METRIC_CROSS_HOST, &cross));
            gem_report_destroy(r);
            const char *name = k == 0 ? "plain" : k == 1 ? "topology-aware"
                                                         : "topology-aware, judged w/ comm";
            printf("  %-30s | %8.0f | %8.0f | %8.0f | %6.3f\n", name, total - comm, comm, total,
                   cross);
            gem_mapping_destroy(m);
            gem_options_destroy(o);
        }
        gem_trace_destroy(in);
        gem_trace_destroy(next);
    }
    gem_profile_destroy(p);
}

static int wanted(int argc, char **argv, const char *name)
{
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (wanted(argc, argv, "replicas")) bench_replicas();
    if (wanted(argc, argv, "slots")) bench_slots();
    if (wanted(argc, argv, "remap")) bench_remap();
    if (wanted(argc, argv, "topology")) bench_topology();
    return 0;
}
