/*
 * bench_speed.c - how long placement and evaluation take, against problem size.
 *
 * Prints medians of repeated runs on one thread (GEM_OPT_THREADS = 1): placement time for
 * every policy over experts x GPUs x layers x window, the EPLB-with-replication target on
 * the DeepSeek-V3 shape (58 layers x 256 experts, 288 slots on 32 GPUs), and evaluator
 * throughput in step-layers per second. Traces are synthetic (gem_trace_synthesize, seed 1),
 * profiles emulated (sim backend, spread 0.077).
 *
 *   build/bench/bench_speed [--quick]
 *
 * On a terminal, standard error shows what is being timed (progress.h).
 */
#include "gem.h"
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        gem_status_t st_ = (call);                                                             \
        if (st_ != GEM_OK) {                                                                   \
            fprintf(stderr, "bench_speed: %s failed: %s: %s\n", #call, gem_status_string(st_), \
                    gem_last_error());                                                         \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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

static gem_profile_t *sim(int gpus)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_SIM_GPUS, gpus));
    gem_profile_t *p;
    CHECK(gem_profile_gpus(GEM_BACKEND_SIM, o, &p));
    gem_options_destroy(o);
    return p;
}

static gem_trace_t *synth(int64_t steps, int layers, int experts, int64_t tokens)
{
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_SEED, 1));
    gem_trace_t *t;
    CHECK(gem_trace_synthesize(steps, layers, experts, tokens, 0.6, o, &t));
    gem_options_destroy(o);
    return t;
}

/* Median milliseconds of `reps` placements. */
static double time_policy(const gem_profile_t *p, const gem_trace_t *t, gem_policy_t pol,
                          const gem_options_t *o, int reps)
{
    double v[32];
    if (reps > 32) reps = 32;
    for (int r = 0; r < reps; r++) {
        gem_mapping_t *m;
        double t0 = now_ms();
        CHECK(gem_compute_mapping(p, t, pol, o, NULL, &m));
        v[r] = now_ms() - t0;
        gem_mapping_destroy(m);
    }
    return median(v, reps);
}

typedef struct {
    const char *label;
    int experts, gpus, layers;
    int64_t window;
} shape;

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    bench_progress_name = "bench_speed";
    int reps = quick ? 3 : 7;
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    printf("# Placement and evaluation speed, libgem %s, host %s, %ld online cores, 1 thread\n",
           gem_version_string(), host, sysconf(_SC_NPROCESSORS_ONLN));
    printf("# median of %d runs; synthetic traces (skew 0.6, seed 1), sim profiles\n\n", reps);

    const shape shapes[] = {
        {"8e/4g", 8, 4, 32, 16},       {"16e/4g (Scout)", 16, 4, 48, 16},
        {"64e/8g", 64, 8, 24, 32},     {"128e/16g", 128, 16, 24, 32},
        {"256e/32g (DSv3)", 256, 32, 58, 64}, {"256e/64g", 256, 64, 58, 64},
    };
    const gem_policy_t pols[] = {GEM_POLICY_CONTIGUOUS, GEM_POLICY_ROUND_ROBIN,
                                 GEM_POLICY_BALANCED, GEM_POLICY_SPEED_AWARE, GEM_POLICY_EPLB,
                                 GEM_POLICY_GEM};
    const int npol = (int)(sizeof pols / sizeof pols[0]);
    gem_options_t *o;
    CHECK(gem_options_create(&o));
    CHECK(gem_options_set_int(o, GEM_OPT_THREADS, 1));

    printf("%-17s %6s %6s %6s", "shape", "layers", "window", "gpus");
    for (int k = 0; k < npol; k++) printf(" %12s", gem_policy_name(pols[k]));
    printf("   (ms)\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        gem_profile_t *p = sim(s->gpus);
        gem_trace_t *t = synth(s->window, s->layers, s->experts, 16 * (int64_t)s->experts);
        /* the row is printed whole, so that the progress line never splits it */
        char line[256];
        int len = snprintf(line, sizeof line, "%-17s %6d %6lld %6d", s->label, s->layers,
                           (long long)s->window, s->gpus);
        for (int k = 0; k < npol; k++) {
            int r = pols[k] == GEM_POLICY_GEM && s->experts >= 256 ? (quick ? 1 : 3) : reps;
            bench_progress("%s: %s", s->label, gem_policy_name(pols[k]));
            len += snprintf(line + len, sizeof line - (size_t)len, " %12.3f",
                            time_policy(p, t, pols[k], o, r));
        }
        bench_progress_clear();
        printf("%s\n", line);
        fflush(stdout);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }

    /* EPLB with replication on the DeepSeek-V3 shape: 256 experts + 32 redundant = 288 slots. */
    {
        gem_profile_t *p = sim(32);
        gem_trace_t *t = synth(64, 58, 256, 4096);
        gem_options_t *ro;
        CHECK(gem_options_clone(o, &ro));
        CHECK(gem_options_set_int(ro, GEM_OPT_REDUNDANT_SLOTS, 32));
        bench_progress("eplb + 32 redundant slots");
        double ms = time_policy(p, t, GEM_POLICY_EPLB, ro, reps);
        bench_progress_clear();
        printf("\neplb + 32 redundant slots, 58 layers x 256 experts, 288 slots on 32 GPUs: "
               "%.3f ms (target < 10 ms)\n", ms);
        gem_options_destroy(ro);

        /* evaluator throughput on the same shape */
        gem_mapping_t *m;
        CHECK(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
        double v[16];
        int n = quick ? 3 : 9;
        bench_progress("evaluator");
        for (int r = 0; r < n; r++) {
            gem_report_t *rep;
            double t0 = now_ms();
            CHECK(gem_evaluate(p, t, m, NULL, &rep));
            v[r] = now_ms() - t0;
            gem_report_destroy(rep);
        }
        double med = median(v, n);
        bench_progress_clear();
        printf("evaluator: 64 steps x 58 layers x 256 experts x 32 GPUs in %.3f ms = %.0f "
               "step-layers/s\n", med, 64.0 * 58 / (med / 1e3));
        gem_mapping_destroy(m);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
    gem_options_destroy(o);
    return 0;
}
