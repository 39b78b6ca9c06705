/*
 * backend.c - profiling backends: what is built, the gem_profile_gpus dispatch, the shared
 * tile-boundary sampler, the thread-per-device runner, and the callback backend.
 *
 * The sampler (see backend.h) times a coarse set of tile boundaries first, then bisects only
 * around samples that sit off the chord of their neighbours: that is where the slope changes
 * (the memory-bound plateau ends, the kernel changes, a wave of tiles starts). Boundaries it
 * never timed lie on straight stretches and are filled by straight lines, so the curve keeps
 * every tile boundary and step interpolation stays right between them.
 */
#include "backend.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- what is built ----------------------------------------------------------------------- */

GEM_API int gem_has_backend(gem_backend_t backend)
{
    switch (backend) {
    case GEM_BACKEND_SIM:
    case GEM_BACKEND_CALLBACK:
        return 1;
    case GEM_BACKEND_CUDA:
#ifdef GEM_HAVE_CUDA
        return 1;
#else
        return 0;
#endif
    case GEM_BACKEND_NCCL:
#ifdef GEM_HAVE_NCCL
        return 1;
#else
        return 0;
#endif
    case GEM_BACKEND_HWLOC:
#ifdef GEM_HAVE_HWLOC
        return 1;
#else
        return 0;
#endif
    case GEM_BACKEND_MPI:
        /* MPI lives in the gem tool (mpirun -np N gem profile), never in the library, so
         * that programs linking libgem need no MPI. */
        return 0;
    }
    return 0;
}

GEM_API const char *gem_backend_name(gem_backend_t backend)
{
    switch (backend) {
    case GEM_BACKEND_SIM: return "sim";
    case GEM_BACKEND_CUDA: return "cuda";
    case GEM_BACKEND_NCCL: return "nccl";
    case GEM_BACKEND_HWLOC: return "hwloc";
    case GEM_BACKEND_CALLBACK: return "callback";
    case GEM_BACKEND_MPI: return "mpi";
    }
    return "unknown";
}

/* ---- model shape and common fields --------------------------------------------------------- */

int gem__dtype_bytes(int64_t dtype)
{
    switch (dtype) {
    case GEM_DTYPE_FP8: return 1;
    case GEM_DTYPE_FP32: return 4;
    default: return 2; /* bf16, fp16 */
    }
}

const char *gem__dtype_name(int64_t dtype)
{
    switch (dtype) {
    case GEM_DTYPE_FP16: return "fp16";
    case GEM_DTYPE_FP8: return "fp8";
    case GEM_DTYPE_FP32: return "fp32";
    default: return "bf16";
    }
}

void gem__host_name(const gem_options_t *opts, char *buf, size_t len)
{
    const char *h = gem__opt_string(opts, GEM_OPT_HOST_NAME);
    if (h && *h) {
        snprintf(buf, len, "%s", h);
        return;
    }
    if (gethostname(buf, len) != 0 || !buf[0]) snprintf(buf, len, "localhost");
    buf[len - 1] = '\0'; /* gethostname need not terminate a truncated name */
}

/* The Mixtral-8x7B expert shape, which the model options default to. */
#define GEM__MIXTRAL_HIDDEN 4096
#define GEM__MIXTRAL_FFN 14336

gem_status_t gem__profile_describe(gem_profile_t *p, const gem_options_t *opts)
{
    p->interpolation = (gem_interpolation_t)gem__opt_int(opts, GEM_OPT_INTERPOLATION);
    p->cost_model = (gem_cost_model_t)gem__opt_int(opts, GEM_OPT_COST_MODEL);
    p->model_hidden = gem__opt_int(opts, GEM_OPT_MODEL_HIDDEN);
    p->model_ffn = gem__opt_int(opts, GEM_OPT_MODEL_FFN);
    const char *name = gem__opt_string(opts, GEM_OPT_MODEL_NAME);
    /* The default name belongs to the default shape only: a profile of another shape that
     * called itself Mixtral would be wrong, so it stays unnamed. */
    if (!name && p->model_hidden == GEM__MIXTRAL_HIDDEN && p->model_ffn == GEM__MIXTRAL_FFN)
        name = "Mixtral-8x7B";
    free(p->model_name);
    free(p->model_dtype);
    p->model_name = NULL;
    p->model_dtype = gem__strdup(gem__dtype_name(gem__opt_int(opts, GEM_OPT_MODEL_DTYPE)));
    if (!p->model_dtype) return GEM_ERR_NO_MEMORY;
    if (name && !(p->model_name = gem__strdup(name))) return GEM_ERR_NO_MEMORY;
    return GEM_OK;
}

/* ---- tile grid and sampler ----------------------------------------------------------------- */

gem_status_t gem__tile_grid(int64_t tile, int64_t max_tokens, size_t *n)
{
    if (tile < 1 || max_tokens < 1)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT, "tile %lld and max tokens %lld must be >= 1",
                         (long long)tile, (long long)max_tokens);
    int64_t k = (max_tokens + tile - 1) / tile;       /* the last boundary covers max_tokens */
    if (k > GEM_MAX_TOKENS / tile) k = GEM_MAX_TOKENS / tile; /* ... but stays a valid count */
    if (k < 1)
        return gem__fail(GEM_ERR_LIMIT, "tile %lld is above the largest token count %d",
                         (long long)tile, GEM_MAX_TOKENS);
    if (k > GEM_MAX_CURVE_POINTS)
        return gem__fail(GEM_ERR_LIMIT,
                         "%lld tile boundaries (max tokens %lld / tile %lld), at most %d: raise "
                         "the tile or lower the max tokens",
                         (long long)k, (long long)max_tokens, (long long)tile,
                         GEM_MAX_CURVE_POINTS);
    *n = (size_t)k;
    return GEM_OK;
}

void gem__sample_plan_init(gem__sample_plan *plan, const gem_options_t *opts)
{
    memset(plan, 0, sizeof *plan);
    plan->tile = gem__opt_int(opts, GEM_OPT_SIM_TILE);
    plan->max_tokens = gem__opt_int(opts, GEM_OPT_PROFILE_MAX_TOKENS);
    plan->dense = gem__opt_int(opts, GEM_OPT_PROFILE_DENSE) != 0;
    plan->coarse_stride = 8;
    plan->tol = 0.01;
    plan->noise_k = 3.0;
    plan->repeats = gem__opt_int(opts, GEM_OPT_PROFILE_REPEATS);
}

void gem__samples_free(gem__samples *s)
{
    free(s->tokens);
    free(s->latency);
    free(s->cv);
    free(s->timed);
    memset(s, 0, sizeof *s);
}

/* Times every wanted boundary not timed yet, in ascending order. */
static gem_status_t gem__sample_pass(const gem__sample_plan *plan, gem__measure_fn fn, void *ctx,
                                     gem__samples *s, const unsigned char *want)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!want[i] || s->timed[i]) continue;
        if (plan->stop && atomic_load(plan->stop))
            return gem__fail(GEM_ERR_CANCELLED, "stopped at %lld tokens",
                             (long long)s->tokens[i]);
        double us = 0, cv = 0;
        gem_status_t st = fn(ctx, s->tokens[i], &us, &cv);
        if (st) return st;
        if (!isfinite(us) || us <= 0)
            return gem__fail(GEM_ERR_DEVICE, "measured %g us at %lld tokens: not a time", us,
                             (long long)s->tokens[i]);
        s->latency[i] = us;
        s->cv[i] = isfinite(cv) && cv > 0 ? cv : 0.0;
        s->timed[i] = 1;
        s->n_timed++;
        if (plan->measured) atomic_fetch_add(plan->measured, 1);
    }
    return GEM_OK;
}

/* Deviation test for the timed samples a < b < c: does b sit further from the chord a-c
 * than the tolerance (or the measured noise) allows? */
static int gem__sample_bends(const gem__sample_plan *plan, const gem__samples *s, size_t a,
                             size_t b, size_t c)
{
    double xa = (double)s->tokens[a], xb = (double)s->tokens[b], xc = (double)s->tokens[c];
    double ta = s->latency[a], tb = s->latency[b], tc = s->latency[c];
    double chord = ta + (tc - ta) * (xb - xa) / (xc - xa);
    double cv = fmax(s->cv[a], fmax(s->cv[b], s->cv[c]));
    double noise = plan->noise_k * cv / sqrt((double)(plan->repeats > 0 ? plan->repeats : 1));
    return fabs(tb - chord) > fmax(plan->tol, noise) * tb;
}

static size_t gem__want_mid(unsigned char *want, size_t lo, size_t hi)
{
    size_t m = lo + (hi - lo) / 2;
    if (hi - lo < 2 || want[m]) return 0;
    want[m] = 1;
    return 1;
}

/* Marks boundaries to time next, around samples that bend (idx, bent: scratch of s->n).
 * A bend inside the interval a-b makes both triples that hold it bend, so when two
 * neighbouring triples bend only their shared interval is bisected; a lone bending triple
 * says the bend is close to its middle sample, on either side, so both its intervals are.
 * Returns how many boundaries it marked. */
static size_t gem__sample_refine(const gem__sample_plan *plan, const gem__samples *s,
                                 unsigned char *want, size_t *idx, unsigned char *bent)
{
    size_t m = 0, added = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->timed[i]) idx[m++] = i;
    if (m < 3) return 0;
    for (size_t j = 0; j < m; j++)
        bent[j] = j > 0 && j + 1 < m && gem__sample_bends(plan, s, idx[j - 1], idx[j], idx[j + 1]);
    for (size_t j = 1; j + 1 < m; j++) {
        if (!bent[j]) continue;
        if (bent[j + 1]) added += gem__want_mid(want, idx[j], idx[j + 1]);
        if (!bent[j - 1] && !bent[j + 1]) {
            added += gem__want_mid(want, idx[j - 1], idx[j]);
            added += gem__want_mid(want, idx[j], idx[j + 1]);
        }
    }
    return added;
}

/* Fills boundaries that were not timed by straight lines between timed neighbours (0 and n-1
 * are always timed); their cv is the larger of the neighbours'. */
static void gem__sample_fill(gem__samples *s)
{
    size_t prev = 0;
    for (size_t i = 1; i < s->n; i++) {
        if (!s->timed[i]) continue;
        for (size_t j = prev + 1; j < i; j++) {
            double xa = (double)s->tokens[prev], xc = (double)s->tokens[i];
            double w = ((double)s->tokens[j] - xa) / (xc - xa);
            s->latency[j] = s->latency[prev] + w * (s->latency[i] - s->latency[prev]);
            s->cv[j] = fmax(s->cv[prev], s->cv[i]);
        }
        prev = i;
    }
}

gem_status_t gem__sample_curve(const gem__sample_plan *plan, gem__measure_fn fn, void *ctx,
                               gem__samples *out)
{
    size_t n;
    gem_status_t st = gem__tile_grid(plan->tile, plan->max_tokens, &n);
    if (st) return st;
    gem__samples s = {0};
    s.n = n;
    s.tokens = gem__array(n, sizeof *s.tokens);
    s.latency = gem__array(n, sizeof *s.latency);
    s.cv = gem__array(n, sizeof *s.cv);
    s.timed = gem__array(n, 1);
    unsigned char *want = gem__array(n, 1), *bent = gem__array(n, 1);
    size_t *idx = gem__array(n, sizeof *idx);
    if (!s.tokens || !s.latency || !s.cv || !s.timed || !want || !bent || !idx) {
        st = GEM_ERR_NO_MEMORY;
        goto done;
    }
    size_t stride = plan->coarse_stride >= 2 ? plan->coarse_stride : 2;
    for (size_t i = 0; i < n; i++) {
        s.tokens[i] = (int64_t)(i + 1) * plan->tile;
        want[i] = plan->dense || i % stride == 0 || i == n - 1;
    }
    for (;;) {
        if ((st = gem__sample_pass(plan, fn, ctx, &s, want))) goto done;
        if (plan->dense || !gem__sample_refine(plan, &s, want, idx, bent)) break;
    }
    gem__sample_fill(&s);
done:
    free(want);
    free(bent);
    free(idx);
    if (st) {
        gem__samples_free(&s);
        return st;
    }
    *out = s;
    return GEM_OK;
}

/* ---- one thread per device ------------------------------------------------------------------ */

void gem__device_fail(gem__device_result *res, gem_status_t st)
{
    res->st = st;
    snprintf(res->err, sizeof res->err, "%s", gem_last_error());
}

void gem__profile_stats_free(gem__profile_stats *s)
{
    if (!s) return;
    free(s->timed);
    free(s->seconds);
    memset(s, 0, sizeof *s);
}

typedef struct {
    int device;
    gem__device_fn fn;
    void *user;
    const gem__sample_plan *plan;
    gem__device_result *res;
    atomic_int *stop;
    int *done;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
} gem__worker;

static double gem__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *gem__worker_main(void *arg)
{
    gem__worker *w = arg;
    double t0 = gem__now();
    gem__clear_error();
    w->fn(w->user, w->device, w->plan, w->res);
    w->res->seconds = gem__now() - t0;
    /* One device failing makes the whole profile fail: stop the others early. */
    if (w->res->st && w->res->st != GEM_ERR_CANCELLED) atomic_store(w->stop, 1);
    pthread_mutex_lock(w->lock);
    (*w->done)++;
    pthread_cond_signal(w->cond);
    pthread_mutex_unlock(w->lock);
    return NULL;
}

/* Waits for every worker, calling the progress callback about every 100 ms. Returns 1 when
 * the callback asked to cancel. */
static int gem__wait_workers(int n, int *done, pthread_mutex_t *lock, pthread_cond_t *cond,
                             const gem_options_t *opts, atomic_int *stop, atomic_long *measured,
                             double total)
{
    gem_progress_fn progress = opts ? opts->progress : NULL;
    int cancelled = 0;
    pthread_mutex_lock(lock);
    while (*done < n) {
        if (!progress) {
            pthread_cond_wait(cond, lock);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(cond, lock, &until);
        if (*done >= n || cancelled) continue;
        pthread_mutex_unlock(lock);
        if (progress(opts->progress_user, "measure", (double)atomic_load(measured), total)) {
            cancelled = 1;
            atomic_store(stop, 1);
        }
        pthread_mutex_lock(lock);
    }
    pthread_mutex_unlock(lock);
    return cancelled;
}

/* The profile from every device's samples. */
static gem_status_t gem__profile_from_results(int n, gem__device_result *res,
                                              const gem_options_t *opts, gem_profile_t **out)
{
    gem_profile_t *p;
    gem_status_t st = gem_profile_create(&p, n);
    if (st) return st;
    char host[256];
    gem__host_name(opts, host, sizeof host);
    if ((st = gem__profile_describe(p, opts))) goto fail;
    for (int g = 0; g < n && !st; g++) {
        const gem__samples *s = &res[g].samples;
        st = gem_profile_set_curve(p, g, s->n, s->tokens, s->latency, res[g].has_cv ? s->cv : NULL);
        if (!st) st = gem_profile_set_gpu_string(p, g, "name", res[g].name);
        if (!st) st = gem_profile_set_gpu_string(p, g, "host", host);
        if (!st && res[g].pci_bus_id[0])
            st = gem_profile_set_gpu_string(p, g, "pci_bus_id", res[g].pci_bus_id);
        p->gpus[g].memory_bytes = res[g].memory_bytes;
    }
    if (st) goto fail;
    *out = p;
    return GEM_OK;
fail:
    gem_profile_destroy(p);
    return st;
}

gem_status_t gem__run_devices(int n, gem__device_fn fn, void *user, const gem_options_t *opts,
                              gem_profile_t **out, gem__profile_stats *stats)
{
    if (n < 1) return gem__fail(GEM_ERR_NO_DEVICE, "no devices to profile");
    size_t grid;
    gem_status_t st = gem__tile_grid(gem__opt_int(opts, GEM_OPT_SIM_TILE),
                                     gem__opt_int(opts, GEM_OPT_PROFILE_MAX_TOKENS), &grid);
    if (st) return st;
    atomic_int stop;
    atomic_long measured;
    atomic_init(&stop, 0);
    atomic_init(&measured, 0);
    gem__sample_plan plan;
    gem__sample_plan_init(&plan, opts);
    plan.stop = &stop;
    plan.measured = &measured;

    gem__device_result *res = gem__array((size_t)n, sizeof *res);
    gem__worker *w = gem__array((size_t)n, sizeof *w);
    pthread_t *th = gem__array((size_t)n, sizeof *th);
    if (!res || !w || !th) {
        free(res), free(w), free(th);
        return GEM_ERR_NO_MEMORY;
    }
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    int done = 0, started = 0, spawn_err = 0;
    for (int d = 0; d < n; d++) {
        res[d].memory_bytes = -1;
        w[d] = (gem__worker){d, fn, user, &plan, &res[d], &stop, &done, &lock, &cond};
    }
    for (; started < n; started++) {
        int e = pthread_create(&th[started], NULL, gem__worker_main, &w[started]);
        if (e) {
            spawn_err = e;
            atomic_store(&stop, 1);
            break;
        }
    }
    int cancelled = gem__wait_workers(started, &done, &lock, &cond, opts, &stop, &measured,
                                      (double)grid * n);
    for (int d = 0; d < started; d++) pthread_join(th[d], NULL);

    if (spawn_err) {
        st = gem__fail(GEM_ERR_NO_MEMORY, "could not start a thread for device %d: %s", started,
                       strerror(spawn_err));
    } else if (cancelled) {
        st = gem__fail(GEM_ERR_CANCELLED, "profiling cancelled by the progress callback");
    } else {
        for (int d = 0; d < n && !st; d++)
            if (res[d].st && res[d].st != GEM_ERR_CANCELLED)
                st = gem__fail(res[d].st, "%s", res[d].err);
        for (int d = 0; d < n && !st; d++) /* a stop with no failing device: should not be */
            if (res[d].st) st = gem__fail(GEM_ERR_INTERNAL, "device %d stopped: %s", d, res[d].err);
    }
    if (!st && opts && opts->progress &&
        opts->progress(opts->progress_user, "measure", (double)atomic_load(&measured),
                       (double)grid * n))
        st = gem__fail(GEM_ERR_CANCELLED, "profiling cancelled by the progress callback");
    gem_profile_t *p = NULL;
    if (!st) st = gem__profile_from_results(n, res, opts, &p);
    if (!st && stats) {
        gem__profile_stats s = {n, grid, gem__array((size_t)n, sizeof(size_t)),
                                gem__array((size_t)n, sizeof(double))};
        if (!s.timed || !s.seconds) {
            gem__profile_stats_free(&s);
            gem_profile_destroy(p);
            st = GEM_ERR_NO_MEMORY;
        } else {
            for (int d = 0; d < n; d++) {
                s.timed[d] = res[d].samples.n_timed;
                s.seconds[d] = res[d].seconds;
            }
            *stats = s;
        }
    }
    for (int d = 0; d < n; d++) gem__samples_free(&res[d].samples);
    free(res), free(w), free(th);
    pthread_mutex_destroy(&lock);
    pthread_cond_destroy(&cond);
    if (st) return st;
    *out = p;
    return GEM_OK;
}

/* ---- callback backend ---------------------------------------------------------------------- */

typedef struct {
    gem_runner_fn fn;
    void *user;
    int device;
} gem__runner_ctx;

static gem_status_t gem__runner_measure(void *ctx, int64_t tokens, double *us, double *cv)
{
    gem__runner_ctx *c = ctx;
    double t = c->fn(c->user, c->device, tokens);
    if (t < 0)
        return gem__fail(GEM_ERR_DEVICE, "runner failed on device %d at %lld tokens (returned %g)",
                         c->device, (long long)tokens, t);
    if (!isfinite(t) || t == 0)
        return gem__fail(GEM_ERR_DEVICE,
                         "runner returned %g us on device %d at %lld tokens: a time must be "
                         "finite and > 0",
                         t, c->device, (long long)tokens);
    *us = t;
    *cv = 0.0;
    return GEM_OK;
}

static void gem__callback_device(void *user, int device, const gem__sample_plan *plan,
                                 gem__device_result *res)
{
    const gem_options_t *opts = user;
    gem__runner_ctx ctx = {opts->runner, opts->runner_user, device};
    snprintf(res->name, sizeof res->name, "device %d", device);
    gem_status_t st = gem__sample_curve(plan, gem__runner_measure, &ctx, &res->samples);
    if (st) gem__device_fail(res, st);
}

gem_status_t gem__profile_callback(const gem_options_t *opts, gem_profile_t **out,
                                   gem__profile_stats *stats)
{
    if (!opts || !opts->runner)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT,
                         "backend callback needs a runner: set one with gem_options_set_runner");
    return gem__run_devices(opts->runner_devices, gem__callback_device, (void *)opts, opts, out,
                            stats);
}

/* ---- public entry points ------------------------------------------------------------------- */

GEM_API gem_status_t gem_profile_gpus(gem_backend_t backend, const gem_options_t *opts,
                                      gem_profile_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_profile_gpus: out is NULL");
    switch (backend) {
    case GEM_BACKEND_SIM:
        return gem__profile_sim(opts, out);
    case GEM_BACKEND_CUDA:
        return gem__profile_cuda(opts, out, NULL);
    case GEM_BACKEND_CALLBACK:
        return gem__profile_callback(opts, out, NULL);
    case GEM_BACKEND_NCCL:
        return gem__fail(GEM_ERR_NOT_SUPPORTED,
                         "backend nccl makes no profile: it measures all-to-all into one "
                         "(gem_profile_measure_alltoall)");
    case GEM_BACKEND_HWLOC:
        return gem__fail(GEM_ERR_NOT_SUPPORTED,
                         "backend hwloc makes no profile: it adds topology to one "
                         "(gem_profile_add_topology)");
    case GEM_BACKEND_MPI:
        return gem__fail(GEM_ERR_NOT_SUPPORTED,
                         "backend mpi is not in the library: run the gem tool under mpirun "
                         "(mpirun -np N gem profile --backend cuda|sim); each rank profiles its "
                         "GPUs and rank 0 merges them");
    }
    return gem__fail(GEM_ERR_INVALID_ARGUMENT, "unknown backend %d", (int)backend);
}

GEM_API gem_status_t gem_profile_measure_alltoall(gem_profile_t *profile,
                                                  const gem_options_t *opts)
{
    gem__clear_error();
    GEM__CHECK_ARG(profile, "gem_profile_measure_alltoall: profile is NULL");
    return gem__nccl_alltoall(profile, opts, NULL);
}

GEM_API gem_status_t gem_profile_add_topology(gem_profile_t *profile)
{
    gem__clear_error();
    GEM__CHECK_ARG(profile, "gem_profile_add_topology: profile is NULL");
    return gem__hwloc_add_topology(profile);
}
