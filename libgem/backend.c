/*
 * backend.c - profiling backends: what is built, the gem_profile_gpus dispatch, the shared
 * tile-boundary sampler, the thread-per-device runner, and the callback backend.
 *
 * The sampler (see backend.h) times a coarse set of tile boundaries first, then bisects the
 * stretches between timed samples whose straight fill may be off: where the slope changes (the
 * memory-bound plateau ends, the kernel changes, a wave of tiles starts), judged by how far the
 * neighbouring stretches' lines, extended across the gap, miss its far end. Worst first and
 * within a budget (a quarter of the boundaries by default), so that measurement noise, which
 * the samples' cv sizes, is not chased at the cost of real bends. Boundaries it never timed are
 * filled by straight lines, so the curve keeps every tile boundary and step interpolation
 * stays right between them.
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

/* Standard deviation of sample i's median (us): the median of r repeats scatters by about
 * 1.2533 * sigma / sqrt(r), sigma = cv * t. 0 when the cv is unknown (a runner reports none). */
static double gem__sample_sigma(const gem__sample_plan *plan, const gem__samples *s, size_t i)
{
    double r = (double)(plan->repeats > 0 ? plan->repeats : 1);
    return 1.2533 * s->cv[i] * s->latency[i] / sqrt(r);
}

/* The line through the timed samples p and a, extended to the timed sample c on the far side
 * of a: how far it misses t_c, in units of the tolerance (tol * t, or noise_k standard
 * deviations of the miss when the samples' measured noise makes that larger). p may lie on
 * either side; c lies on the other side of a. */
static double gem__sample_miss(const gem__sample_plan *plan, const gem__samples *s, size_t p,
                               size_t a, size_t c)
{
    double xp = (double)s->tokens[p], xa = (double)s->tokens[a], xc = (double)s->tokens[c];
    double w = (xc - xa) / (xa - xp); /* > 0: how many p-a lengths c lies beyond a */
    double miss = fabs(s->latency[a] + w * (s->latency[a] - s->latency[p]) - s->latency[c]);
    double sp = gem__sample_sigma(plan, s, p), sa = gem__sample_sigma(plan, s, a);
    double sc = gem__sample_sigma(plan, s, c);
    double sd = sqrt((1 + w) * (1 + w) * sa * sa + w * w * sp * sp + sc * sc);
    double unit = fmax(plan->tol * fmin(s->latency[a], s->latency[c]), plan->noise_k * sd);
    if (unit > 0) return miss / unit;
    return miss > 0 ? INFINITY : 0.0;
}

/* How far the straight fill between the timed neighbours idx[j] < idx[j+1] may be off, in units
 * of the tolerance (> 1: bisect it). Each neighbouring stretch's line, extended across the
 * gap, misses the far end by some amount; a straight gap makes that 0 for at least one side
 * (the one not bent at all, or both), and with one kink or jump inside the gap the fill is off
 * by at most the smaller miss. So the smaller miss it is: a bend that sits exactly on a timed
 * sample is not chased on both sides. INFINITY when neither side has a stretch to extend. */
static double gem__sample_gap_score(const gem__sample_plan *plan, const gem__samples *s,
                                    const size_t *idx, size_t m, size_t j)
{
    double score = INFINITY;
    if (j > 0) score = fmin(score, gem__sample_miss(plan, s, idx[j - 1], idx[j], idx[j + 1]));
    if (j + 2 < m) score = fmin(score, gem__sample_miss(plan, s, idx[j + 2], idx[j + 1], idx[j]));
    return score;
}

typedef struct {
    double score;
    size_t lo, hi;
} gem__gap;

/* Worst gap first; then the wider; then the lower (a deterministic order). */
static int gem__gap_cmp(const void *x, const void *y)
{
    const gem__gap *a = x, *b = y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    size_t wa = a->hi - a->lo, wb = b->hi - b->lo;
    if (wa != wb) return wa > wb ? -1 : 1;
    return (a->lo > b->lo) - (a->lo < b->lo);
}

/* Marks boundaries to time next: the middles of the gaps between timed samples whose straight
 * fill may be off by more than the tolerance, worst first, while the budget lasts (an eighth of
 * what is left of it per round, at least one, so that noise cannot spend it before the rounds
 * that follow a real bend down to the tile). Sets s->capped when the budget stops it. Returns
 * how many boundaries it marked. idx and gaps are scratch of s->n. */
static size_t gem__sample_refine(const gem__sample_plan *plan, gem__samples *s, size_t budget,
                                 unsigned char *want, size_t *idx, gem__gap *gaps)
{
    size_t m = 0, k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->timed[i]) idx[m++] = i;
    for (size_t j = 0; j + 1 < m; j++) {
        if (idx[j + 1] - idx[j] < 2) continue;
        double score = gem__sample_gap_score(plan, s, idx, m, j);
        if (score > 1.0) gaps[k++] = (gem__gap){score, idx[j], idx[j + 1]};
    }
    if (!k) return 0;
    size_t left = budget > s->n_timed ? budget - s->n_timed : 0;
    if (!left) {
        s->capped = 1;
        return 0;
    }
    qsort(gaps, k, sizeof *gaps, gem__gap_cmp);
    size_t take = left / 8 > 1 ? left / 8 : 1;
    if (take > k) take = k;
    for (size_t g = 0; g < take; g++) want[gaps[g].lo + (gaps[g].hi - gaps[g].lo) / 2] = 1;
    return take;
}

/* The budget of timed boundaries for an n-point grid (see gem__sample_plan.max_timed). */
static size_t gem__sample_budget(const gem__sample_plan *plan, size_t n)
{
    if (plan->max_timed) return plan->max_timed;
    size_t small = n < 16 ? n : 16;
    return n / 4 > small ? n / 4 : small;
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
    unsigned char *want = gem__array(n, 1);
    size_t *idx = gem__array(n, sizeof *idx);
    gem__gap *gaps = gem__array(n, sizeof *gaps);
    if (!s.tokens || !s.latency || !s.cv || !s.timed || !want || !idx || !gaps) {
        st = GEM_ERR_NO_MEMORY;
        goto done;
    }
    size_t stride = plan->coarse_stride >= 2 ? plan->coarse_stride : 2;
    for (size_t i = 0; i < n; i++) {
        s.tokens[i] = (int64_t)(i + 1) * plan->tile;
        want[i] = plan->dense || i % stride == 0 || i == n - 1;
    }
    size_t budget = gem__sample_budget(plan, n);
    for (;;) {
        if ((st = gem__sample_pass(plan, fn, ctx, &s, want))) goto done;
        if (plan->dense || !gem__sample_refine(plan, &s, budget, want, idx, gaps)) break;
    }
    gem__sample_fill(&s);
done:
    free(want);
    free(idx);
    free(gaps);
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
    free(s->capped);
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
                                gem__array((size_t)n, sizeof(double)), gem__array((size_t)n, 1)};
        if (!s.timed || !s.seconds || !s.capped) {
            gem__profile_stats_free(&s);
            gem_profile_destroy(p);
            st = GEM_ERR_NO_MEMORY;
        } else {
            for (int d = 0; d < n; d++) {
                s.timed[d] = res[d].samples.n_timed;
                s.seconds[d] = res[d].seconds;
                s.capped[d] = (unsigned char)res[d].samples.capped;
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
