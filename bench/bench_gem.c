/*
 * bench_gem.c - policy gem: how fast it places, how close it gets to a long randomised search
 * and to the optimum, and what it gains over balanced placement.
 *
 * Build without the Makefile (from the repository root, after `make`; public API only):
 *   cc -O2 -std=c11 -Iinclude bench/bench_gem.c -Lbuild -lgem -Wl,-rpath,'$ORIGIN' -lm \
 *       -o build/bench_gem
 * (`make bench` builds it as build/bench/bench_gem against the static library.)
 *
 *   build/bench/bench_gem [--quick] [time|quality|exact|gain]...   (default: all sections)
 *
 * Everything is synthetic and seeded: traces from gem_trace_synthesize (consistent experts,
 * bursty temporal groups, cold rest), profiles from the sim backend (L40-like curves running
 * a Mixtral-8x7B expert: memory-bound ~410 us up to ~200 tokens, then compute-bound, tile 64,
 * 20 us fixed cost per layer). Placement times are medians on one thread (GEM_OPT_THREADS 1).
 * Latencies are mean step latencies from gem_evaluate (SPEC 2, per_expert).
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#endif
#include "gem.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        gem_status_t st_ = (call);                                                             \
        if (st_ != GEM_OK) {                                                                   \
            fprintf(stderr, "bench_gem: %s failed: %s: %s\n", #call, gem_status_string(st_),   \
                    gem_last_error());                                                         \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static int quick;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- inputs -------------------------------------------------------------------------------- */

/* Sim profile: G GPUs with the given spread, or explicit slowdowns when sd != NULL. */
static gem_profile_t *sim_profile(int G, double spread, const double *sd)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    if (sd) {
        CHECK(gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, sd, (size_t)G));
    } else {
        CHECK(gem_options_set_int(o, GEM_OPT_SIM_GPUS, G));
        CHECK(gem_options_set_double(o, GEM_OPT_SIM_SPREAD, spread));
    }
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

static gem_options_t *opts_threads1(int64_t restarts)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_THREADS, 1));
    if (restarts >= 0) CHECK(gem_options_set_int(o, GEM_OPT_RESTARTS, restarts));
    return o;
}

static double mean_latency(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m)
{
    gem_report_t *r;
    CHECK(gem_evaluate(p, t, m, NULL, &r));
    double v;
    CHECK(gem_report_get(r, GEM_METRIC_MEAN, &v));
    gem_report_destroy(r);
    return v;
}

static double policy_latency(const gem_profile_t *p, const gem_trace_t *build,
                             const gem_trace_t *eval, gem_policy_t pol, const gem_options_t *o)
{
    gem_mapping_t *m;
    CHECK(gem_compute_mapping(p, build, pol, o, NULL, &m));
    double v = mean_latency(p, eval, m);
    gem_mapping_destroy(m);
    return v;
}

/* ---- 1. placement time --------------------------------------------------------------------- */

static void bench_time(const char *name, int L, int E, int G, int64_t S, int64_t tokens, int reps)
{
    gem_profile_t *p = sim_profile(G, 0.077, NULL);
    gem_trace_t *t = synth(S, L, E, tokens, 0.6, 1);
    gem_options_t *o = opts_threads1(-1);
    double wall[32], cpu[32];
    for (int r = 0; r < reps; r++) {
        gem_mapping_t *m;
        double w0 = now_ms(), c0 = cpu_ms();
        CHECK(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
        wall[r] = now_ms() - w0;
        cpu[r] = cpu_ms() - c0;
        gem_mapping_destroy(m);
    }
    printf("  %-14s %3d layers x %3d experts, %2d GPUs, %3lld steps: %8.1f ms wall, %8.1f ms cpu "
           "(median of %d)\n", name, L, E, G, (long long)S, median(wall, reps), median(cpu, reps),
           reps);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* ---- 2. quality against a long randomised search --------------------------------------------- */

/* Simulated annealing on one layer (per_expert model, SPEC 2), swaps of two experts on
 * different GPUs; objective: sum over steps of the slowest GPU's time. Independent of the
 * library's search. Returns the best objective and leaves its placement in best[E]. */
typedef struct {
    int E, G;
    int64_t S;
    double *C;      /* [E][G][S] f_g(n) */
    double *over;   /* [G] */
} sa_layer;

static double sa_objective(const sa_layer *L, const int *gpu, double *T)
{
    const int64_t S = L->S;
    for (int g = 0; g < L->G; g++)
        for (int64_t s = 0; s < S; s++) T[g * S + s] = L->over[g];
    for (int e = 0; e < L->E; e++)
        for (int64_t s = 0; s < S; s++)
            T[gpu[e] * S + s] += L->C[((size_t)e * L->G + gpu[e]) * S + s];
    double sum = 0;
    for (int64_t s = 0; s < S; s++) {
        double m = 0;
        for (int g = 0; g < L->G; g++) m = T[g * S + s] > m ? T[g * S + s] : m;
        sum += m;
    }
    return sum;
}

static uint64_t rng_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unif(uint64_t *x) { return (double)(rng_next(x) >> 11) * 0x1.0p-53; }

/* Largest T of step s over the GPUs other than g1 and g2, from the step's top three. */
typedef struct {
    double v[3];
    int i[3];
} sa_top;

static void sa_tops(const sa_layer *L, const double *T, sa_top *top)
{
    for (int64_t s = 0; s < L->S; s++) {
        sa_top t = {{-1, -1, -1}, {-1, -1, -1}};
        for (int g = 0; g < L->G; g++) {
            double x = T[g * L->S + s];
            if (x > t.v[0]) {
                t.v[2] = t.v[1], t.i[2] = t.i[1], t.v[1] = t.v[0], t.i[1] = t.i[0];
                t.v[0] = x, t.i[0] = g;
            } else if (x > t.v[1]) {
                t.v[2] = t.v[1], t.i[2] = t.i[1], t.v[1] = x, t.i[1] = g;
            } else if (x > t.v[2]) {
                t.v[2] = x, t.i[2] = g;
            }
        }
        top[s] = t;
    }
}

static double sa_search(const sa_layer *L, int *gpu, long iters, uint64_t seed)
{
    const int64_t S = L->S;
    const int E = L->E, G = L->G;
    double *T = malloc(sizeof *T * (size_t)G * (size_t)S);
    sa_top *top = malloc(sizeof *top * (size_t)S);
    int *best = malloc(sizeof *best * (size_t)E);
    double cur = sa_objective(L, gpu, T), bestv = cur;
    sa_tops(L, T, top);
    memcpy(best, gpu, sizeof *best * (size_t)E);
    double temp0 = 0.02 * cur / (double)S;
    for (long it = 0; it < iters; it++) {
        double temp = temp0 * pow(1e-3, (double)it / (double)iters);
        int e1 = (int)(rng_next(&seed) % (uint64_t)E), e2 = (int)(rng_next(&seed) % (uint64_t)E);
        int g1 = gpu[e1], g2 = gpu[e2];
        if (g1 == g2) continue;
        const double *c11 = L->C + ((size_t)e1 * G + g1) * S, *c12 = L->C + ((size_t)e1 * G + g2) * S;
        const double *c21 = L->C + ((size_t)e2 * G + g1) * S, *c22 = L->C + ((size_t)e2 * G + g2) * S;
        double next = 0;
        for (int64_t s = 0; s < S; s++) {
            double a = T[g1 * S + s] - c11[s] + c21[s], b = T[g2 * S + s] - c22[s] + c12[s];
            double m = a > b ? a : b;
            const sa_top *t = &top[s];
            int k = 0;
            while (k < 2 && (t->i[k] == g1 || t->i[k] == g2)) k++;
            if (t->v[k] > m) m = t->v[k];
            next += m;
        }
        if (next <= cur || rng_unif(&seed) < exp((cur - next) / temp)) {
            for (int64_t s = 0; s < S; s++) {
                T[g1 * S + s] += c21[s] - c11[s];
                T[g2 * S + s] += c12[s] - c22[s];
            }
            gpu[e1] = g2;
            gpu[e2] = g1;
            cur = next;
            sa_tops(L, T, top);
            if (cur < bestv) {
                bestv = cur;
                memcpy(best, gpu, sizeof *best * (size_t)E);
            }
        }
    }
    memcpy(gpu, best, sizeof *best * (size_t)E);
    bestv = sa_objective(L, gpu, T);
    free(T);
    free(top);
    free(best);
    return bestv;
}

/* Mean step latency of the SA search started from the mapping `start`, layer by layer. */
static double sa_mapping(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *start,
                         long iters)
{
    int64_t S;
    int32_t L, E, G;
    CHECK(gem_trace_shape(t, &S, &L, &E));
    CHECK(gem_profile_num_gpus(p, &G));
    gem_mapping_t *m;
    CHECK(gem_mapping_create(&m, G, L, E));
    sa_layer sl = {E, G, S, malloc(sizeof(double) * (size_t)E * G * S), malloc(sizeof(double) * G)};
    double *row = malloc(sizeof *row * (size_t)E);
    int *gpu = malloc(sizeof *gpu * (size_t)E);
    for (int g = 0; g < G; g++) CHECK(gem_profile_get_overhead(p, g, &sl.over[g]));
    for (int l = 0; l < L; l++) {
        for (int64_t s = 0; s < S; s++) {
            CHECK(gem_trace_get(t, s, l, row, (size_t)E));
            for (int e = 0; e < E; e++)
                for (int g = 0; g < G; g++)
                    CHECK(gem_profile_latency(p, g, row[e], &sl.C[((size_t)e * G + g) * S + s]));
        }
        for (int e = 0; e < E; e++) CHECK(gem_mapping_expert_gpu(start, l, e, &gpu[e]));
        sa_search(&sl, gpu, iters, 0x5eedULL + (uint64_t)l);
        for (int e = 0; e < E; e++) CHECK(gem_mapping_add(m, l, e, gpu[e], 1.0));
    }
    double v = mean_latency(p, t, m);
    gem_mapping_destroy(m);
    free(sl.C);
    free(sl.over);
    free(row);
    free(gpu);
    return v;
}

static void bench_quality(int E, int G, int L, int64_t S, double skew, int64_t per_expert)
{
    gem_profile_t *p = sim_profile(G, 0.15, NULL);
    gem_trace_t *t = synth(S, L, E, per_expert * (int64_t)E, skew, 7);
    gem_options_t *o = opts_threads1(-1), *o_long = opts_threads1(quick ? 40 : 400);
    double c0 = cpu_ms();
    double gem = policy_latency(p, t, t, GEM_POLICY_GEM, o);
    double t_gem = cpu_ms() - c0;
    c0 = cpu_ms();
    double gem_long = policy_latency(p, t, t, GEM_POLICY_GEM, o_long);
    double t_long = cpu_ms() - c0;
    gem_mapping_t *bal;
    CHECK(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &bal));
    double balanced = mean_latency(p, t, bal);
    c0 = cpu_ms();
    double sa = sa_mapping(p, t, bal, (quick ? 20000L : 200000L) * (E / 32 + 1));
    double t_sa = cpu_ms() - c0;
    gem_mapping_destroy(bal);
    double ref = gem_long < sa ? gem_long : sa;
    printf("  E=%3d G=%2d, %4lld tokens/expert (%d layers): gem %.1f us (%.0f ms) | gem x%d restarts"
           " %.1f (%.0f ms) | annealing %.1f (%.0f ms) | balanced %.1f | gem vs best reference"
           " %+.2f%%\n", E, G, (long long)per_expert, L, gem, t_gem, quick ? 10 : 100, gem_long,
           t_long, sa, t_sa, balanced, 100.0 * (gem / ref - 1.0));
    gem_options_destroy(o);
    gem_options_destroy(o_long);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* Gap of gem to policy exact (branch and bound; optimal when the name says "exact"). */
static void bench_exact(int E, int G, int L, int64_t S)
{
    gem_profile_t *p = sim_profile(G, 0.15, NULL);
    gem_trace_t *t = synth(S, L, E, 256 * (int64_t)E / 8, 0.7, 11);
    gem_options_t *o = opts_threads1(-1);
    CHECK(gem_options_set_int(o, GEM_OPT_TIME_LIMIT_MS, 60000));
    double gem = policy_latency(p, t, t, GEM_POLICY_GEM, o);
    gem_mapping_t *m;
    double c0 = cpu_ms();
    CHECK(gem_compute_mapping(p, t, GEM_POLICY_EXACT, o, NULL, &m));
    double t_exact = cpu_ms() - c0;
    const char *name;
    CHECK(gem_mapping_get_policy_name(m, &name));
    double exact = mean_latency(p, t, m);
    printf("  E=%2d G=%d (%d layers, %lld steps): gem %.2f us, %s %.2f us (%.0f ms): gap %+.3f%%\n",
           E, G, L, (long long)S, gem, name, exact, t_exact, 100.0 * (gem / exact - 1.0));
    gem_mapping_destroy(m);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* ---- 3. gain over balanced ------------------------------------------------------------------- */

static void bench_gain(const char *label, int G, double spread, const double *sd, double skew)
{
    const int L = 32, E = 8;
    const int64_t S = 128, tokens = 2048; /* 1024 tokens x top-2 per step, Mixtral-like */
    gem_profile_t *p = sim_profile(G, spread, sd);
    gem_trace_t *t = synth(S, L, E, tokens, skew, 3);
    gem_trace_t *first, *second;
    CHECK(gem_trace_slice(t, 0, S / 2, &first));
    CHECK(gem_trace_slice(t, S / 2, S / 2, &second));
    gem_options_t *o = opts_threads1(-1);
    double bal = policy_latency(p, t, t, GEM_POLICY_BALANCED, o);
    double spd = policy_latency(p, t, t, GEM_POLICY_SPEED_AWARE, o);
    double gem = policy_latency(p, t, t, GEM_POLICY_GEM, o);
    double bal_h = policy_latency(p, first, second, GEM_POLICY_BALANCED, o);
    double gem_h = policy_latency(p, first, second, GEM_POLICY_GEM, o);
    printf("  %-22s skew %.2f: balanced %8.1f  speed_aware %8.1f (%+5.1f%%)  gem %8.1f (%+5.1f%%)"
           " | built on 1st half, run on 2nd: balanced %8.1f gem %8.1f (%+5.1f%%)\n",
           label, skew, bal, spd, 100.0 * (1.0 - spd / bal), gem, 100.0 * (1.0 - gem / bal),
           bal_h, gem_h, 100.0 * (1.0 - gem_h / bal_h));
    gem_options_destroy(o);
    gem_trace_destroy(first);
    gem_trace_destroy(second);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static int want(int argc, char **argv, const char *section)
{
    int any = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        any = 1;
        if (strcmp(argv[i], section) == 0) return 1;
    }
    return !any;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) quick |= strcmp(argv[i], "--quick") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (want(argc, argv, "time")) {
    printf("policy gem: placement time, one thread (targets: Scout < 50 ms, DeepSeek-V3 < 2 s)\n");
    bench_time("Llama-4-Scout", 48, 16, 4, 16, 2048, quick ? 3 : 11);
    bench_time("DeepSeek-V3", 58, 256, 32, 64, 32768, quick ? 1 : 5);
    }
    if (want(argc, argv, "quality")) {
    printf("\nquality: gem (defaults) against a long randomised search (gem with 100x the restarts,"
           " and simulated annealing from balanced); mean step latency, spread 0.15, skew 0.6,"
           " 64 steps\n");
    const int64_t per_expert[] = {8, 512};
    for (int k = 0; k < 2; k++) {
        bench_quality(64, 8, quick ? 2 : 4, 64, 0.6, per_expert[k]);
        bench_quality(128, 16, quick ? 1 : 3, 64, 0.6, per_expert[k]);
        bench_quality(256, 32, quick ? 1 : 2, 64, 0.6, per_expert[k]);
    }
    }
    if (want(argc, argv, "exact")) {
    printf("\nquality: gem against policy exact (branch and bound)\n");
    bench_exact(8, 4, quick ? 4 : 16, 32);
    bench_exact(16, 4, quick ? 1 : 2, 16);
    }
    if (!want(argc, argv, "gain")) return 0;
    printf("\ngain of gem over balanced (mean step latency, us; Mixtral-like 32 layers x 8 experts"
           " on 4 sim L40s, 128 steps of 1024 tokens top-2)\n");
    const double spreads[] = {0.0, 0.077, 0.15, 0.277};
    const double one_slow[] = {1.0, 1.0, 1.0, 1.5};
    const double skews[] = {0.8, 0.05};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 4; i++) {
            char label[64];
            snprintf(label, sizeof label, "spread %.3f", spreads[i]);
            bench_gain(label, 4, spreads[i], NULL, skews[k]);
        }
        bench_gain("one GPU 1.5x slower", 4, 0, one_slow, skews[k]);
    }
    return 0;
}
