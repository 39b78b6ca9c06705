/*
 * check_gpu.c - the checks of test/gpu/check.sh on a machine with NVIDIA GPUs. Links the
 * static libgem to read what the public interface does not show (timed samples per GPU,
 * coefficients of variation, the pairwise NCCL matrix).
 *
 *   gpu_check [--max-tokens N] [--tile N] [--repeats N] [--warmup-ms N] [--no-nccl]
 *             [--driver TEXT] [--summary FILE] [--dry-run N [--dry-noise X]]
 *
 * Profiles every visible GPU for the Mixtral-8x7B expert (bf16) twice, refined (the default)
 * and dense, and checks on each GPU:
 *   - monotone: each curve (dense and refined) is non-decreasing within noise (no sample more
 *     than 2% + 3 cv below the largest before it);
 *   - stable: every timed sample's coefficient of variation is under 2%;
 *   - cheap: the refined sweep timed at most a quarter of the dense sweep's boundaries;
 *   - faithful: the refined curve is within 2% of the dense one at every boundary;
 *   - fast: one GPU's refined profile took under 30 s (warm-up included).
 * Two figures explain a "faithful" failure without a second run: rule_err, the refinement
 * rule replayed on the dense sweep's own numbers (the rule's error alone), and drift, how far
 * the two sweeps differ where both timed (the GPU's own run-to-run change).
 * Then all-to-all with NCCL and the topology with hwloc: figures only, not checks (a failure
 * there prints a WARN line, which check.sh repeats; a GPU in a VM may hide its PCI path from
 * hwloc). Prints a table, and the whole dense and refined curves; --summary FILE also writes
 * the table's rows as name|driver|timed|dense|max_err|max_cv|seconds|verdict for check.sh's
 * closing table, before NCCL runs. Exits 0 when every check passed, 1 when a check failed, 2
 * when profiling itself failed.
 *
 * --dry-run N runs every step but the GPU's: N model devices go through the same runner,
 * sampler, checks and table (the measuring is an H200-like model of this expert's curve
 * with 1% noise per run, median and cv of the repeats, as the CUDA probe reports them; no
 * NCCL). It checks this program and check.sh on a machine without a GPU, not a GPU.
 * --dry-noise X sets the model's noise per run (default 0.01; 0.05 makes the cv check fail,
 * to see a failure reported).
 */
#include "backend.h"

#ifdef GEM_HAVE_CUDA
#include "cuda/probe.h"
#endif

#include "model.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CV_MAX 0.02
#define DEV_MAX 0.02
#define MONO_TOL 0.02
#define SECONDS_MAX 30.0

static int failures;

/* ---- dry run: a model of the expert on an H200 ---------------------------------------------- */

typedef struct {
    uint64_t rng;
    int64_t repeats;
    double noise, slow;
    double runs[10000];
} dry_dev;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* What the CUDA probe reports: the median of the repeats and their cv. */
static gem_status_t dry_measure(void *ctx, int64_t tokens, double *us, double *cv)
{
    dry_dev *d = ctx;
    int64_t r = d->repeats;
    double sum = 0, var = 0;
    for (int64_t i = 0; i < r; i++) {
        d->runs[i] =
            d->slow * gpu_model_h200_us(tokens) * (1.0 + d->noise * gpu_model_gauss(&d->rng));
        sum += d->runs[i];
    }
    double mean = sum / (double)r;
    for (int64_t i = 0; i < r; i++) var += (d->runs[i] - mean) * (d->runs[i] - mean);
    qsort(d->runs, (size_t)r, sizeof *d->runs, cmp_double);
    *us = r % 2 ? d->runs[r / 2] : 0.5 * (d->runs[r / 2 - 1] + d->runs[r / 2]);
    *cv = sqrt(var / (double)r) / mean;
    return GEM_OK;
}

typedef struct {
    int64_t repeats;
    double noise;
    uint64_t pass; /* the refined and the dense sweep draw different noise, as on a GPU */
} dry_job;

static void dry_device(void *user, int device, const gem__sample_plan *plan,
                       gem__device_result *res)
{
    const dry_job *job = user;
    dry_dev *d = calloc(1, sizeof *d);
    if (!d) {
        gem__device_fail(res, GEM_ERR_NO_MEMORY);
        return;
    }
    d->rng = 0x5eed0000ULL + 1000 * job->pass + (uint64_t)device;
    d->repeats = job->repeats < 10000 ? job->repeats : 10000;
    d->noise = job->noise;
    d->slow = 1.0 + 0.03 * device;
    snprintf(res->name, sizeof res->name, "H200 model %d (dry run)", device);
    res->has_cv = 1;
    res->memory_bytes = 140LL << 30;
    gem_status_t st = gem__sample_curve(plan, dry_measure, d, &res->samples);
    if (st) gem__device_fail(res, st);
    free(d);
}

/* ---- the checks ----------------------------------------------------------------------------- */

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

static int dry_devices;
static double dry_noise = 0.01;

static gem_profile_t *profile(gem_options_t *o, gem__profile_stats *stats, const char *what,
                              uint64_t pass)
{
    gem_profile_t *p = NULL;
    gem_status_t st;
    if (dry_devices) {
        dry_job job = {gem__opt_int(o, GEM_OPT_PROFILE_REPEATS), dry_noise, pass};
        st = gem__run_devices(dry_devices, dry_device, &job, o, &p, stats);
    } else {
        st = gem__profile_cuda(o, &p, stats);
    }
    if (st) {
        printf("FAIL: the %s profile failed: %s: %s\n", what, gem_status_string(st),
               gem_last_error());
        exit(2);
    }
    return p;
}

/* How far the curve drops below the largest sample before it, beyond 2% + 3 cv (0: never). */
static double worst_drop(const gem__curve *c)
{
    double worst = 0, running = 0;
    for (size_t i = 0; i < c->k; i++) {
        double cv = c->cv ? c->cv[i] : 0;
        if (c->latency[i] < running * (1.0 - MONO_TOL - 3.0 * cv))
            worst = fmax(worst, 1.0 - c->latency[i] / running);
        running = fmax(running, c->latency[i]);
    }
    return worst;
}

/* The refinement rule replayed on a dense sweep's numbers: its error alone, without the GPU's
 * run-to-run change. */
typedef struct {
    const gem__curve *dense;
    int64_t tile;
} replay;

static gem_status_t replay_measure(void *ctx, int64_t tokens, double *us, double *cv)
{
    const replay *r = ctx;
    size_t i = (size_t)(tokens / r->tile) - 1;
    *us = r->dense->latency[i];
    *cv = r->dense->cv ? r->dense->cv[i] : 0.0;
    return GEM_OK;
}

static double rule_error(const gem_options_t *refined_opts, const gem__curve *d, size_t *timed)
{
    gem__sample_plan plan;
    gem__sample_plan_init(&plan, refined_opts);
    replay r = {d, plan.tile};
    gem__samples s = {0};
    *timed = 0;
    if (gem__sample_curve(&plan, replay_measure, &r, &s)) return INFINITY;
    double err = 0;
    for (size_t i = 0; i < s.n && i < d->k; i++)
        err = fmax(err, fabs(s.latency[i] - d->latency[i]) / d->latency[i]);
    *timed = s.n_timed;
    gem__samples_free(&s);
    return err;
}

static void driver_text(const char *given, char *buf, size_t len)
{
    if (given && *given) {
        snprintf(buf, len, "%s", given);
        return;
    }
    if (dry_devices) {
        snprintf(buf, len, "dry run");
        return;
    }
#ifdef GEM_HAVE_CUDA
    int drv = 0, rt = 0;
    gem__cuda_versions(&drv, &rt);
    snprintf(buf, len, "CUDA %d.%d", drv / 1000, drv % 1000 / 10);
#else
    snprintf(buf, len, "?");
#endif
}

static void usage(void)
{
    fprintf(stderr, "usage: gpu_check [--max-tokens N] [--tile N] [--repeats N] [--warmup-ms N] "
                    "[--no-nccl] [--driver TEXT] [--summary FILE] [--dry-run N [--dry-noise X]]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int64_t max_tokens = 4096, tile = 64, repeats = 20, warmup = 2000;
    int nccl = 1;
    const char *summary = NULL, *driver_arg = NULL;
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (!strcmp(argv[i], "--max-tokens") && more) max_tokens = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--tile") && more) tile = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && more) repeats = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--warmup-ms") && more) warmup = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--no-nccl")) nccl = 0;
        else if (!strcmp(argv[i], "--driver") && more) driver_arg = argv[++i];
        else if (!strcmp(argv[i], "--summary") && more) summary = argv[++i];
        else if ((!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "--fake")) && more)
            dry_devices = atoi(argv[++i]), nccl = 0;
        else if (!strcmp(argv[i], "--dry-noise") && more) dry_noise = atof(argv[++i]);
        else usage();
    }
    if (dry_devices < 0 || dry_devices > 64 || !(dry_noise >= 0 && dry_noise < 0.5)) usage();
    char driver[64];
    driver_text(driver_arg, driver, sizeof driver);

    gem_options_t *or = options(max_tokens, tile, repeats, warmup, 0);
    /* The dense sweep runs second, on GPUs already warm: a short warm-up is enough. */
    gem_options_t *od = options(max_tokens, tile, repeats, warmup < 500 ? warmup : 500, 1);
    gem__profile_stats sr = {0}, sd = {0};
    gem_profile_t *pr = profile(or, &sr, "refined", 1);
    gem_profile_t *pd = profile(od, &sd, "dense", 2);
    int32_t G = pr->num_gpus;
    FILE *sum = summary ? fopen(summary, "w") : NULL;
    if (summary && !sum) {
        printf("FAIL: cannot write %s\n", summary);
        failures++;
    }

    printf("Mixtral-8x7B expert (h 4096, ffn 14336, bf16), tile %lld, up to %lld tokens, "
           "%lld repeats%s\n", (long long)tile, (long long)max_tokens, (long long)repeats,
           dry_devices ? " - DRY RUN: model devices, not a GPU" : "");
#ifdef GEM_HAVE_CUDA
    if (!dry_devices) {
        int drv = 0, rt = 0;
        gem__cuda_versions(&drv, &rt);
        printf("CUDA driver API %d.%d, runtime %d.%d\n", drv / 1000, drv % 1000 / 10, rt / 1000,
               rt % 1000 / 10);
    }
#endif
    printf("%-3s %-26s %-12s %9s %8s %8s %7s %7s %5s %9s %8s\n", "gpu", "name", "driver",
           "timed", "max_err", "rule_err", "drift", "max_cv", "mono", "profile_s", "dense_s");
    for (int32_t g = 0; g < G; g++) {
        const gem__curve *r = &pr->gpus[g].curve, *d = &pd->gpus[g].curve;
        const char *name = pr->gpus[g].name ? pr->gpus[g].name : "?";
        if (r->k != d->k || r->k != sr.grid) {
            printf("FAIL gpu %d: refined and dense curves do not match in shape\n", (int)g);
            failures++;
            continue;
        }
        double max_cv = 0, max_dev = 0, drift = 0;
        for (size_t i = 0; i < d->k; i++) {
            max_cv = fmax(max_cv, d->cv ? d->cv[i] : 0);
            /* filled points carry their timed neighbours' cv: the max is the timed samples' */
            max_cv = fmax(max_cv, r->cv ? r->cv[i] : 0);
            double dev = fabs(r->latency[i] - d->latency[i]) / d->latency[i];
            max_dev = fmax(max_dev, dev);
            if (i % 8 == 0 || i + 1 == d->k) drift = fmax(drift, dev); /* both timed these */
        }
        size_t rule_timed = 0;
        double rule_err = rule_error(or, d, &rule_timed);
        double drop = fmax(worst_drop(d), worst_drop(r));
        char timed[32];
        snprintf(timed, sizeof timed, "%zu/%zu", sr.timed[g], sd.timed[g]);
        printf("%-3d %-26.26s %-12.12s %9s %7.2f%% %7.2f%% %6.2f%% %6.2f%% %5s %9.1f %8.1f%s\n",
               (int)g, name, driver, timed, 100 * max_dev, 100 * rule_err, 100 * drift,
               100 * max_cv, drop > 0 ? "NO" : "yes", sr.seconds[g], sd.seconds[g],
               sr.capped[g] ? "  (refinement budget reached)" : "");
        int fails = failures;
        check(drop == 0, g, "curve not non-decreasing within noise",
              "drops %.2f%% below an earlier sample", 100 * drop);
        check(max_cv < CV_MAX, g, "coefficient of variation", "%.2f%% >= 2%%", 100 * max_cv);
        check(4 * sr.timed[g] <= sr.grid, g, "refined sampling timed more than a quarter",
              "%.0f boundaries", (double)sr.timed[g]);
        check(max_dev <= DEV_MAX, g, "refined curve off the dense sweep", "%.2f%% > 2%%",
              100 * max_dev);
        check(sr.seconds[g] < SECONDS_MAX, g, "profile too slow", "%.1f s >= 30 s", sr.seconds[g]);
        if (sum)
            fprintf(sum, "%s|%s|%zu|%zu|%.2f%%|%.2f%%|%.1f|%s\n", name, driver, sr.timed[g],
                    sd.timed[g], 100 * max_dev, 100 * max_cv, sr.seconds[g],
                    failures == fails ? "ok" : "FAIL");
    }
    if (sum) fclose(sum);
    printf("dense sweep: %zu boundaries per GPU; rule_err: the refinement rule replayed on the "
           "dense numbers; drift: refined vs dense where both timed\n", sd.grid);

    for (int32_t g = 0; g < G; g++) {
        const gem__curve *r = &pr->gpus[g].curve, *d = &pd->gpus[g].curve;
        if (r->k != d->k) continue;
        printf("\ncurve of gpu %d (tokens: dense us, dense cv, refined us, refined - dense):\n",
               (int)g);
        for (size_t i = 0; i < r->k; i++)
            printf("  %6lld: %10.1f %6.2f%% %10.1f %+7.2f%%\n", (long long)r->tokens[i],
                   d->latency[i], d->cv ? 100 * d->cv[i] : 0.0, r->latency[i],
                   100 * (r->latency[i] / d->latency[i] - 1));
    }

    if (nccl) {
        gem_options_t *oa = options(max_tokens, tile, 5, 0, 0);
        gem_options_set_int(oa, GEM_OPT_ALLTOALL_MAX_BYTES, 64LL << 20);
        double *pair = NULL;
        gem_status_t st = gem__nccl_alltoall(pr, oa, &pair);
        if (st == GEM_ERR_NOT_SUPPORTED) {
            printf("\nNCCL all-to-all: not measured: %s\n", gem_last_error());
        } else if (st) {
            printf("WARN nccl all-to-all failed: %s: %s\n", gem_status_string(st), gem_last_error());
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
    } else {
        printf("\nNCCL all-to-all: not measured (%s)\n",
               dry_devices ? "dry run" : "--no-nccl: libgem was built without NCCL");
    }

    gem_status_t st = gem_profile_add_topology(pr);
    if (st == GEM_ERR_NOT_SUPPORTED) {
        printf("topology: not measured: %s\n", gem_last_error());
    } else if (st) {
        printf("WARN topology failed: %s: %s\n", gem_status_string(st), gem_last_error());
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
