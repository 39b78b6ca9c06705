/*
 * check_gpu.c - the checks of test/gpu/check.sh on a machine with NVIDIA GPUs. Links the
 * static libgem to read what the public interface does not show (timed samples per GPU,
 * coefficients of variation, the pairwise NCCL matrix).
 *
 *   gpu_check [--max-tokens N] [--tile N] [--repeats N] [--warmup-ms N] [--no-nccl]
 *             [--fake N]
 *
 * Profiles every visible GPU for the Mixtral-8x7B expert (bf16) twice, refined (the default)
 * and dense, and checks on each GPU:
 *   - monotone: each dense curve is non-decreasing within noise (no sample more than
 *     2% + 3 cv below the largest before it);
 *   - stable: every timed sample's coefficient of variation is under 2%;
 *   - cheap: the refined sweep timed at most a quarter of the dense sweep's boundaries;
 *   - faithful: the refined curve is within 2% of the dense one at every boundary;
 *   - fast: one GPU's refined profile took under 30 s (warm-up included).
 * Then all-to-all with NCCL (figures only; it fails the check only if NCCL fails) and the
 * topology. Prints a table; exits 1 when a check failed, 2 when profiling itself failed.
 *
 * --fake N runs the same checks without a GPU: N emulated devices through the callback
 * backend (an L40-like expert curve with 0.2% jitter, no NCCL), to check this program and
 * check.sh themselves on any machine.
 */
#include "backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CV_MAX 0.02
#define DEV_MAX 0.02
#define MONO_TOL 0.02
#define SECONDS_MAX 30.0

static int failures;
static int fake_devices;

/* The sim's curve, jittered by a hash of (device, tokens, call): a stand-in GPU. */
static double fake_runner(void *user, int device, int64_t tokens)
{
    static _Atomic unsigned long calls;
    unsigned long long z = (unsigned long long)tokens * 0x9e3779b97f4a7c15ULL ^
                           (unsigned long long)device << 40 ^ (unsigned long long)calls++;
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 29;
    double u = (double)(z >> 11) * 0x1.0p-53;
    return gem__sim_latency(user, tokens) * (1.0 + 0.002 * (2 * u - 1));
}

static void check(int ok, int gpu, const char *what, const char *fmt, double value)
{
    if (ok) return;
    failures++;
    printf("FAIL gpu %d: %s: ", gpu, what);
    printf(fmt, value);
    printf("\n");
}

static gem_options_t *options(int64_t max_tokens, int64_t tile, int64_t repeats, int64_t warmup,
                              int dense)
{
    gem_options_t *o = NULL;
    if (gem_options_create(&o) ||
        gem_options_set_int(o, GEM_OPT_PROFILE_MAX_TOKENS, max_tokens) ||
        gem_options_set_int(o, GEM_OPT_SIM_TILE, tile) ||
        gem_options_set_int(o, GEM_OPT_PROFILE_REPEATS, repeats) ||
        gem_options_set_int(o, GEM_OPT_PROFILE_WARMUP_MS, warmup) ||
        gem_options_set_int(o, GEM_OPT_PROFILE_DENSE, dense)) {
        fprintf(stderr, "gpu_check: options: %s\n", gem_last_error());
        exit(2);
    }
    return o; /* Mixtral-8x7B bf16 are the model defaults */
}

static gem_profile_t *profile(gem_options_t *o, gem__profile_stats *stats, const char *what)
{
    gem_profile_t *p = NULL;
    gem_status_t st;
    if (fake_devices) {
        gem_options_set_runner(o, fake_runner, o, fake_devices);
        st = gem__profile_callback(o, &p, stats);
    } else {
        st = gem__profile_cuda(o, &p, stats);
    }
    if (st) {
        fprintf(stderr, "gpu_check: %s profile failed: %s: %s\n", what, gem_status_string(st),
                gem_last_error());
        exit(2);
    }
    return p;
}

int main(int argc, char **argv)
{
    int64_t max_tokens = 4096, tile = 64, repeats = 20, warmup = 2000;
    int nccl = 1;
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (!strcmp(argv[i], "--max-tokens") && more) max_tokens = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--tile") && more) tile = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && more) repeats = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--warmup-ms") && more) warmup = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--no-nccl")) nccl = 0;
        else if (!strcmp(argv[i], "--fake") && more) fake_devices = atoi(argv[++i]), nccl = 0;
        else {
            fprintf(stderr, "usage: gpu_check [--max-tokens N] [--tile N] [--repeats N] "
                            "[--warmup-ms N] [--no-nccl] [--fake N]\n");
            return 2;
        }
    }
    gem_options_t *or = options(max_tokens, tile, repeats, warmup, 0);
    /* The dense sweep runs second, on GPUs already warm: a short warm-up is enough. */
    gem_options_t *od = options(max_tokens, tile, repeats, warmup < 500 ? warmup : 500, 1);
    gem__profile_stats sr = {0}, sd = {0};
    gem_profile_t *pr = profile(or, &sr, "refined");
    gem_profile_t *pd = profile(od, &sd, "dense");
    int32_t G = pr->num_gpus;
    printf("Mixtral-8x7B expert (h 4096, ffn 14336, bf16), tile %lld, up to %lld tokens, "
           "%lld repeats%s\n", (long long)tile, (long long)max_tokens, (long long)repeats,
           fake_devices ? " - FAKE devices (callback backend), not a GPU" : "");
    printf("%-3s %-28s %7s %8s %8s %8s %9s %9s %9s %9s %7s\n", "gpu", "name", "timed",
           "refine_s", "max_cv", "max_dev", "t(first)", "t(last)", "GB/s", "TFLOP/s", "mono");
    for (int32_t g = 0; g < G; g++) {
        const gem__curve *r = &pr->gpus[g].curve, *d = &pd->gpus[g].curve;
        if (r->k != d->k) {
            printf("FAIL gpu %d: refined and dense curves do not match in shape\n", (int)g);
            failures++;
            continue;
        }
        double max_cv = 0, max_dev = 0, worst_drop = 0, running = 0;
        for (size_t i = 0; i < d->k; i++) {
            double cv = d->cv ? d->cv[i] : 0; /* a runner reports none */
            max_cv = fmax(max_cv, cv);
            max_dev = fmax(max_dev, fabs(r->latency[i] - d->latency[i]) / d->latency[i]);
            double allowed = running * (1.0 - MONO_TOL - 3.0 * cv);
            if (d->latency[i] < allowed)
                worst_drop = fmax(worst_drop, 1.0 - d->latency[i] / running);
            running = fmax(running, d->latency[i]);
        }
        /* the refined sweep's timed samples (filled ones carry their neighbours' cv) */
        for (size_t i = 0; r->cv && i < r->k; i++) max_cv = fmax(max_cv, r->cv[i]);
        double h = 4096, f = 14336;
        double gbs = 3.0 * h * f * 2.0 / (d->latency[0] * 1e-6) / 1e9;
        double tflops = 6.0 * (double)d->tokens[d->k - 1] * h * f / (d->latency[d->k - 1] * 1e-6) / 1e12;
        printf("%-3d %-28.28s %3zu/%-3zu %8.1f %7.2f%% %7.2f%% %9.1f %9.1f %9.0f %9.0f %7s\n",
               (int)g, pr->gpus[g].name ? pr->gpus[g].name : "?", sr.timed[g], sr.grid,
               sr.seconds[g], 100 * max_cv, 100 * max_dev, d->latency[0], d->latency[d->k - 1],
               gbs, tflops, worst_drop > 0 ? "NO" : "yes");
        check(worst_drop == 0, g, "curve not non-decreasing within noise",
              "drops %.2f%% below an earlier sample", 100 * worst_drop);
        check(max_cv < CV_MAX, g, "coefficient of variation", "%.2f%% >= 2%%", 100 * max_cv);
        check(4 * sr.timed[g] <= sr.grid, g, "refined sampling timed more than a quarter",
              "%.0f boundaries", (double)sr.timed[g]);
        check(max_dev <= DEV_MAX, g, "refined curve off the dense sweep", "%.2f%% > 2%%",
              100 * max_dev);
        check(sr.seconds[g] < SECONDS_MAX, g, "profile too slow", "%.1f s >= 30 s", sr.seconds[g]);
    }
    printf("dense sweep: %zu boundaries per GPU, %.1f s on GPU 0\n", sd.grid, sd.seconds[0]);
    printf("\ncurve of GPU 0 (tokens: refined us / dense us):\n");
    {
        const gem__curve *r = &pr->gpus[0].curve, *d = &pd->gpus[0].curve;
        size_t step = r->k > 32 ? r->k / 32 : 1;
        for (size_t i = 0; i < r->k; i += step)
            printf("  %6lld: %9.1f / %9.1f\n", (long long)r->tokens[i], r->latency[i], d->latency[i]);
    }

    if (nccl) {
        gem_options_t *oa = options(max_tokens, tile, 5, 0, 0);
        gem_options_set_int(oa, GEM_OPT_ALLTOALL_MAX_BYTES, 64LL << 20);
        double *pair = NULL;
        gem_status_t st = gem__nccl_alltoall(pr, oa, &pair);
        if (st) {
            printf("FAIL nccl: %s: %s\n", gem_status_string(st), gem_last_error());
            failures++;
        } else {
            printf("\nNCCL all-to-all over %d GPU%s:\n%14s %12s %12s %12s\n", (int)G,
                   G == 1 ? "" : "s", "bytes/GPU", "time_us", "algbw_GB/s", "busbw_GB/s");
            for (size_t i = 0; i < pr->a2a_n; i++) {
                double t = 0;
                for (int32_t g = 0; g < G; g++) t = fmax(t, pr->a2a_time[(size_t)g * pr->a2a_n + i]);
                double alg = pr->a2a_bytes[i] / (t * 1e3);
                printf("%14.0f %12.2f %12.2f %12.2f\n", pr->a2a_bytes[i], t, alg,
                       alg * (G - 1) / G);
            }
            if (G > 1) {
                printf("pairwise send/recv GB/s (row sends, column receives):\n");
                for (int32_t s = 0; s < G; s++) {
                    for (int32_t d = 0; d < G; d++) printf(" %8.1f", pair[s * G + d]);
                    printf("\n");
                }
            }
        }
        free(pair);
        gem_options_destroy(oa);
    }

    gem_status_t st = gem_profile_add_topology(pr);
    if (st) {
        printf("FAIL topology: %s: %s\n", gem_status_string(st), gem_last_error());
        failures++;
    } else {
        for (int32_t g = 0; g < G; g++)
            printf("gpu %d: %s  host %s  numa %d  cpus %s\n", (int)g,
                   pr->gpus[g].pci_bus_id ? pr->gpus[g].pci_bus_id : "?",
                   pr->gpus[g].host ? pr->gpus[g].host : "?", (int)pr->gpus[g].numa_node,
                   pr->gpus[g].cpuset ? pr->gpus[g].cpuset : "?");
    }
    printf("\ngpu_check: %s (%d failed check%s)\n", failures ? "FAILED" : "passed", failures,
           failures == 1 ? "" : "s");
    gem__profile_stats_free(&sr);
    gem__profile_stats_free(&sd);
    gem_profile_destroy(pr);
    gem_profile_destroy(pd);
    gem_options_destroy(or);
    gem_options_destroy(od);
    return failures ? 1 : 0;
}
