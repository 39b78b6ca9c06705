/* test_backends.c - what is built, the cuda/nccl/hwloc entry points on a machine without a
 * GPU, and the shared tile-boundary sampler through the callback backend, on exact curves and
 * on noisy GPU-like ones. */
#include "testutil.h"

#include "backend.h"
#include "gpu/model.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef GEM_HAVE_CUDA
#include "cuda/probe.h"
#endif
#ifdef GEM_HAVE_HWLOC
#include <hwloc.h>
#endif

#define assert_near(a, b, tol)                                                                \
    do {                                                                                      \
        double a__ = (a), b__ = (b);                                                          \
        if (!(fabs(a__ - b__) <= (tol))) {                                                    \
            print_error("%.17g != %.17g (tolerance %g)\n", a__, b__, (double)(tol));          \
            fail();                                                                           \
        }                                                                                     \
    } while (0)

static gem_options_t *opts_new(void)
{
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    return o;
}

/* ---- what is built --------------------------------------------------------------------- */

static void test_has_backend_and_names(void **state)
{
    (void)state;
    assert_int_equal(gem_has_backend(GEM_BACKEND_SIM), 1);
    assert_int_equal(gem_has_backend(GEM_BACKEND_CALLBACK), 1);
#ifdef GEM_HAVE_CUDA
    assert_int_equal(gem_has_backend(GEM_BACKEND_CUDA), 1);
#else
    assert_int_equal(gem_has_backend(GEM_BACKEND_CUDA), 0);
#endif
#ifdef GEM_HAVE_NCCL
    assert_int_equal(gem_has_backend(GEM_BACKEND_NCCL), 1);
#else
    assert_int_equal(gem_has_backend(GEM_BACKEND_NCCL), 0);
#endif
#ifdef GEM_HAVE_HWLOC
    assert_int_equal(gem_has_backend(GEM_BACKEND_HWLOC), 1);
#else
    assert_int_equal(gem_has_backend(GEM_BACKEND_HWLOC), 0);
#endif
    assert_int_equal(gem_has_backend(GEM_BACKEND_MPI), 0); /* MPI lives in the gem tool */
    assert_int_equal(gem_has_backend((gem_backend_t)42), 0);
    assert_string_equal(gem_backend_name(GEM_BACKEND_SIM), "sim");
    assert_string_equal(gem_backend_name(GEM_BACKEND_CUDA), "cuda");
    assert_string_equal(gem_backend_name(GEM_BACKEND_NCCL), "nccl");
    assert_string_equal(gem_backend_name(GEM_BACKEND_HWLOC), "hwloc");
    assert_string_equal(gem_backend_name(GEM_BACKEND_CALLBACK), "callback");
    assert_string_equal(gem_backend_name(GEM_BACKEND_MPI), "mpi");
    assert_string_equal(gem_backend_name((gem_backend_t)-1), "unknown");
}

static void test_backends_that_make_no_profile(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_profile_gpus(GEM_BACKEND_NCCL, NULL, &p));
    assert_error_has("gem_profile_measure_alltoall");
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_profile_gpus(GEM_BACKEND_HWLOC, NULL, &p));
    assert_error_has("gem_profile_add_topology");
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_profile_gpus(GEM_BACKEND_MPI, NULL, &p));
    assert_error_has("mpirun");
    assert_null(p);
}

/* ---- CUDA and NCCL without a GPU ----------------------------------------------------------- */

/* This machine has the CUDA toolkit but no GPU and no driver. On a machine with a GPU the
 * checks of test/gpu/check.sh apply instead. */
static int have_gpu(void)
{
#ifdef GEM_HAVE_CUDA
    int n = 0;
    return gem__cuda_count(&n) == GEM_OK && n > 0;
#else
    return 0;
#endif
}

static void test_cuda_without_device(void **state)
{
    (void)state;
    if (have_gpu()) skip();
    gem_profile_t *p = NULL;
    gem_options_t *o = opts_new();
    assert_ok(gem_options_set_int(o, GEM_OPT_PROFILE_WARMUP_MS, 0));
#ifdef GEM_HAVE_CUDA
    assert_gem(GEM_ERR_NO_DEVICE, gem_profile_gpus(GEM_BACKEND_CUDA, o, &p));
    assert_error_has("no CUDA device or driver was found");
    assert_gem(GEM_ERR_NO_DEVICE, gem_profile_gpus(GEM_BACKEND_CUDA, NULL, &p));
    /* Loading cuBLAS needs no GPU: the dlopen and every symbol resolve here. */
    assert_ok(gem__cuda_blas_load());
    /* fp8 is refused before any device is looked for. */
    assert_ok(gem_options_set_int(o, GEM_OPT_MODEL_DTYPE, GEM_DTYPE_FP8));
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_profile_gpus(GEM_BACKEND_CUDA, o, &p));
    assert_error_has("fp8");
#else
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_profile_gpus(GEM_BACKEND_CUDA, o, &p));
    assert_error_has("without CUDA");
#endif
    assert_null(p);
    gem_options_destroy(o);
}

static void test_nccl_without_device(void **state)
{
    (void)state;
    if (have_gpu()) skip();
    gem_profile_t *p = tu_profile(2, NULL, 64, 4, 100.0, 5.0);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_measure_alltoall(NULL, NULL));
#ifdef GEM_HAVE_NCCL
    assert_gem(GEM_ERR_NO_DEVICE, gem_profile_measure_alltoall(p, NULL));
    assert_error_has("no CUDA device or driver");
#else
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_profile_measure_alltoall(p, NULL));
    assert_error_has("without NCCL");
#endif
    assert_int_equal(p->a2a_n, 0);
    gem_profile_destroy(p);
}

/* ---- hwloc ----------------------------------------------------------------------------------- */

#ifdef GEM_HAVE_HWLOC
static void this_host(char *buf, size_t len)
{
    assert_int_equal(gethostname(buf, len), 0);
    buf[len - 1] = '\0';
}
#endif

static void test_topology_fills_host(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(3, NULL, 64, 4, 100.0, 5.0);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_add_topology(NULL));
#ifdef GEM_HAVE_HWLOC
    /* GPU 2 lives on another host: left alone. */
    assert_ok(gem_profile_set_gpu_string(p, 2, "host", "elsewhere"));
    assert_ok(gem_profile_set_gpu_string(p, 2, "pci_bus_id", "0000:ff:1f.7"));
    assert_ok(gem_profile_add_topology(p));
    char host[256];
    this_host(host, sizeof host);
    const char *s = NULL;
    for (int g = 0; g < 2; g++) {
        assert_ok(gem_profile_get_gpu_string(p, g, "host", &s));
        assert_non_null(s);
        assert_string_equal(s, host);
        /* no PCI bus id: no CPU set to find */
        assert_ok(gem_profile_get_gpu_string(p, g, "cpuset", &s));
        assert_null(s);
    }
    assert_ok(gem_profile_get_gpu_string(p, 2, "host", &s));
    assert_string_equal(s, "elsewhere");
    /* Idempotent. */
    assert_ok(gem_profile_add_topology(p));
#else
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_profile_add_topology(p));
    assert_error_has("without hwloc");
#endif
    gem_profile_destroy(p);
}

#ifdef GEM_HAVE_HWLOC
/* The bus id of some PCI device of this machine, or "" if hwloc sees none (containers). */
static void some_pci_device(char *buf, size_t len)
{
    hwloc_topology_t t;
    buf[0] = '\0';
    assert_int_equal(hwloc_topology_init(&t), 0);
#if defined(__linux__) && HWLOC_API_VERSION >= 0x00020100
    hwloc_topology_set_components(t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
#endif
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_ALL);
    assert_int_equal(hwloc_topology_load(t), 0);
    hwloc_obj_t o = hwloc_get_next_pcidev(t, NULL);
    if (o)
        snprintf(buf, len, "%04x:%02x:%02x.%x", o->attr->pcidev.domain, o->attr->pcidev.bus,
                 o->attr->pcidev.dev, o->attr->pcidev.func);
    hwloc_topology_destroy(t);
}
#endif

static void test_topology_by_pci_bus_id(void **state)
{
    (void)state;
#ifndef GEM_HAVE_HWLOC
    skip();
#else
    char bus[32];
    some_pci_device(bus, sizeof bus);
    if (!bus[0]) skip();
    gem_profile_t *p = tu_profile(2, NULL, 64, 4, 100.0, 5.0);
    assert_ok(gem_profile_set_gpu_string(p, 0, "pci_bus_id", bus));
    assert_ok(gem_profile_add_topology(p));
    const char *s = NULL;
    assert_ok(gem_profile_get_gpu_string(p, 0, "cpuset", &s));
    assert_non_null(s);
    assert_true(strlen(s) > 0); /* e.g. "0-1" */
    assert_true(p->gpus[0].numa_node >= -1);
    assert_null(p->gpus[1].cpuset);
    gem_profile_destroy(p);

    /* A bus id this host lacks fails and changes nothing, not even the hosts. */
    p = tu_profile(2, NULL, 64, 4, 100.0, 5.0);
    assert_ok(gem_profile_set_gpu_string(p, 1, "pci_bus_id", "0000:ff:1f.7"));
    assert_gem(GEM_ERR_NO_DEVICE, gem_profile_add_topology(p));
    assert_error_has("gpu 1: PCI device 0000:ff:1f.7");
    assert_null(p->gpus[0].host);
    assert_null(p->gpus[1].host);
    assert_ok(gem_profile_set_gpu_string(p, 1, "pci_bus_id", "not-a-bus-id"));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_add_topology(p));
    assert_error_has("not-a-bus-id");
    /* Upper case, and CUDA's 8-digit domain, are read too. */
    char upper[40];
    snprintf(upper, sizeof upper, "0000%s", bus);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
    assert_ok(gem_profile_set_gpu_string(p, 1, "pci_bus_id", upper));
    assert_ok(gem_profile_add_topology(p));
    assert_non_null(p->gpus[1].cpuset);
    gem_profile_destroy(p);
#endif
}

/* ---- the sampler ------------------------------------------------------------------------------ */

/* A curve with every feature the sampler must find, on a 64-token tile: a memory-bound
 * plateau to 640 tokens, a slope to 4096, a steeper one after, and a jump past 9984. */
static double truth(int64_t x)
{
    int64_t xp = (x + 63) / 64 * 64;
    double t = 100.0;
    if (xp > 640) t += 0.1 * (double)((xp < 4096 ? xp : 4096) - 640);
    if (xp > 4096) t += 0.3 * (double)(xp - 4096);
    if (xp > 9984) t += 200.0;
    return t;
}

typedef struct {
    atomic_long calls;
    pthread_t thread;
    atomic_int thread_set;
    atomic_int wrong_thread;
} device_log;

typedef struct {
    device_log dev[8];
    int fail_device;      /* -1: never */
    int64_t fail_tokens;
    double fail_value;
} runner_state;

static double runner(void *user, int device, int64_t tokens)
{
    runner_state *r = user;
    device_log *d = &r->dev[device];
    atomic_fetch_add(&d->calls, 1);
    if (!atomic_exchange(&d->thread_set, 1)) d->thread = pthread_self();
    else if (!pthread_equal(d->thread, pthread_self())) atomic_store(&d->wrong_thread, 1);
    if (device == r->fail_device && tokens >= r->fail_tokens) return r->fail_value;
    return truth(tokens) * (1.0 + 0.25 * device);
}

static runner_state *runner_new(void)
{
    runner_state *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->fail_device = -1;
    return r;
}

static gem_profile_t *profile_callback(gem_options_t *o, runner_state *r, int devices,
                                       int dense, gem__profile_stats *stats)
{
    assert_ok(gem_options_set_runner(o, runner, r, devices));
    assert_ok(gem_options_set_int(o, GEM_OPT_PROFILE_DENSE, dense));
    gem_profile_t *p = NULL;
    assert_ok(gem__profile_callback(o, &p, stats));
    return p;
}

static void test_callback_refinement_matches_dense(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    assert_ok(gem_options_set_int(o, GEM_OPT_PROFILE_MAX_TOKENS, 16384)); /* 256 boundaries */
    runner_state *rd = runner_new(), *rr = runner_new();
    gem__profile_stats sd = {0}, sr = {0};
    gem_profile_t *dense = profile_callback(o, rd, 3, 1, &sd);
    gem_profile_t *refined = profile_callback(o, rr, 3, 0, &sr);
    assert_int_equal(sd.n, 3);
    assert_int_equal(sd.grid, 256);
    for (int d = 0; d < 3; d++) {
        assert_int_equal(atomic_load(&rd->dev[d].calls), 256);
        assert_int_equal(sd.timed[d], 256);
        long calls = atomic_load(&rr->dev[d].calls);
        assert_int_equal(sr.timed[d], (size_t)calls);
        /* Far fewer samples than dense: at most a quarter. */
        assert_true(calls <= 256 / 4);
        assert_false(atomic_load(&rd->dev[d].wrong_thread));
        assert_false(atomic_load(&rr->dev[d].wrong_thread));
        /* ... and yet every boundary is right: all slope changes and the jump were found. */
        const gem__curve *a = &dense->gpus[d].curve, *b = &refined->gpus[d].curve;
        assert_int_equal(a->k, 256);
        assert_int_equal(b->k, 256);
        for (size_t i = 0; i < 256; i++) {
            assert_int_equal(a->tokens[i], (int64_t)(i + 1) * 64);
            assert_int_equal(b->tokens[i], a->tokens[i]);
            assert_near(a->latency[i], truth(a->tokens[i]) * (1.0 + 0.25 * d), 1e-9);
            assert_near(b->latency[i], a->latency[i], 1e-9 * a->latency[i]);
        }
        assert_null(b->cv); /* a runner gives no spread of repeats */
        const char *s = NULL;
        assert_ok(gem_profile_get_gpu_string(refined, d, "name", &s));
        char want[32];
        snprintf(want, sizeof want, "device %d", d);
        assert_string_equal(s, want);
    }
    /* One thread per device: three different threads. */
    assert_false(pthread_equal(rr->dev[0].thread, rr->dev[1].thread));
    assert_false(pthread_equal(rr->dev[1].thread, rr->dev[2].thread));
    assert_string_equal(refined->model_name, "Mixtral-8x7B");
    assert_non_null(refined->gpus[0].host);
    gem__profile_stats_free(&sd);
    gem__profile_stats_free(&sr);
    gem_profile_destroy(dense);
    gem_profile_destroy(refined);
    free(rd);
    free(rr);
    gem_options_destroy(o);
}

/* The sampler alone, on curves with one feature each. */
typedef struct {
    int kind;
    long calls;
} fake;

static gem_status_t fake_measure(void *ctx, int64_t tokens, double *us, double *cv)
{
    fake *f = ctx;
    f->calls++;
    double x = (double)tokens;
    switch (f->kind) {
    case 0: *us = 50.0; break;                                  /* flat */
    case 1: *us = 10.0 + 0.5 * x; break;                        /* straight */
    case 2: *us = x <= 1280 ? 300.0 : 300.0 + 0.4 * (x - 1280); break; /* one kink */
    case 3: *us = x <= 2112 ? 100.0 : 180.0; break;             /* one jump */
    default: *us = 100.0 + 2e-5 * x * x; break;                 /* smooth bend */
    }
    *cv = 0;
    return GEM_OK;
}

static void test_sampler_finds_each_feature(void **state)
{
    (void)state;
    gem__sample_plan plan;
    gem__sample_plan_init(&plan, NULL); /* tile 64, 4096 tokens: 64 boundaries */
    for (int kind = 0; kind <= 4; kind++) {
        fake f = {kind, 0};
        gem__samples s = {0};
        assert_ok(gem__sample_curve(&plan, fake_measure, &f, &s));
        assert_int_equal(s.n, 64);
        assert_int_equal(s.n_timed, (size_t)f.calls);
        assert_true(s.timed[0] && s.timed[63]);
        for (size_t i = 0; i < s.n; i++) {
            double want, cv;
            fake g = {kind, 0};
            fake_measure(&g, s.tokens[i], &want, &cv);
            if (kind == 4) assert_near(s.latency[i], want, 0.01 * want); /* within tol */
            else assert_near(s.latency[i], want, 1e-9 * want);
        }
        if (kind <= 1) assert_int_equal(f.calls, 9); /* the coarse pass only: 1, 9, ..., 57, 64 */
        else assert_true(f.calls <= 64 / 2);
        gem__samples_free(&s);
    }
    /* Dense: every boundary. */
    plan.dense = 1;
    fake f = {1, 0};
    gem__samples s = {0};
    assert_ok(gem__sample_curve(&plan, fake_measure, &f, &s));
    assert_int_equal(f.calls, 64);
    gem__samples_free(&s);
    /* Tiny grids: one and two boundaries. */
    plan.dense = 0;
    plan.max_tokens = 64;
    f.calls = 0;
    assert_ok(gem__sample_curve(&plan, fake_measure, &f, &s));
    assert_int_equal(s.n, 1);
    assert_int_equal(f.calls, 1);
    gem__samples_free(&s);
    plan.max_tokens = 65;
    f.calls = 0;
    assert_ok(gem__sample_curve(&plan, fake_measure, &f, &s));
    assert_int_equal(s.n, 2);
    assert_int_equal(s.tokens[1], 128);
    assert_int_equal(f.calls, 2);
    gem__samples_free(&s);
}

/* Noise that the repeats measured (cv) widens the tolerance: a 3% step is a feature when the
 * samples are steady, and within the noise when they scatter by 5%. */
static gem_status_t step_measure(void *ctx, int64_t tokens, double *us, double *cv)
{
    fake *f = ctx;
    f->calls++;
    *us = tokens <= 2304 ? 200.0 : 206.0;
    *cv = f->kind ? 0.05 : 0.0;
    return GEM_OK;
}

static void test_sampler_tolerates_measured_noise(void **state)
{
    (void)state;
    gem__sample_plan plan;
    gem__sample_plan_init(&plan, NULL);
    plan.repeats = 20;
    fake quiet = {0, 0}, noisy = {1, 0};
    gem__samples s = {0};
    assert_ok(gem__sample_curve(&plan, step_measure, &quiet, &s));
    assert_near(s.latency[35], 200.0, 0); /* the step located exactly */
    assert_near(s.latency[36], 206.0, 0);
    gem__samples_free(&s);
    assert_ok(gem__sample_curve(&plan, step_measure, &noisy, &s));
    assert_near(s.cv[5], 0.05, 1e-12); /* filled points carry their neighbours' cv */
    gem__samples_free(&s);
    assert_true(quiet.calls > 9);    /* chased */
    assert_int_equal(noisy.calls, 9); /* cv 5% over 20 repeats: within noise */
}

/* ---- the sampler on noisy GPU-like curves ------------------------------------------------ */

/* kind 0: Mixtral-8x7B's expert as an H200 might time it (gpu/model.h, shared with the GPU
 * check's dry run); kind 1 a plain straight line; kind 2 a staircase too steep to follow on a
 * budget (a 20% share of 192-token steps: 4% steps). */
static double gpu_curve(int kind, int64_t tokens)
{
    double x = (double)tokens;
    switch (kind) {
    case 1: return 50.0 + 0.5 * x;
    case 2: return fmax(84.0, 0.8 * 0.542 * x + 0.2 * 0.542 * ceil(x / 192.0) * 192.0);
    default: return gpu_model_h200_us(tokens);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* What the CUDA probe reports for one point: the median of 20 runs with 1% noise each, and
 * their cv. */
static double noisy_median(int kind, double slow, int64_t tokens, uint64_t *rng, double *cv)
{
    double run[20], sum = 0, var = 0;
    for (int i = 0; i < 20; i++) {
        run[i] = slow * gpu_curve(kind, tokens) * (1.0 + 0.01 * gpu_model_gauss(rng));
        sum += run[i];
    }
    double mean = sum / 20;
    for (int i = 0; i < 20; i++) var += (run[i] - mean) * (run[i] - mean);
    qsort(run, 20, sizeof *run, cmp_double);
    *cv = sqrt(var / 20) / mean;
    return 0.5 * (run[9] + run[10]);
}

/* An engine's runner over noisy GPUs: each device draws from its own generator (only its
 * thread touches it), so a profile is the same whatever the threads' timing. */
typedef struct {
    uint64_t rng[4];
} noisy_runner;

static double noisy_runner_fn(void *user, int device, int64_t tokens)
{
    noisy_runner *r = user;
    double cv;
    return noisy_median(0, 1.0 + 0.1 * device, tokens, &r->rng[device], &cv);
}

static gem_profile_t *noisy_profile(gem_options_t *o, noisy_runner *r, int dense,
                                    gem__profile_stats *stats)
{
    assert_ok(gem_options_set_runner(o, noisy_runner_fn, r, 4));
    assert_ok(gem_options_set_int(o, GEM_OPT_PROFILE_DENSE, dense));
    gem_profile_t *p = NULL;
    assert_ok(gem__profile_callback(o, &p, stats));
    return p;
}

/* Through the engine-supplied runner, as check.sh's GPU check does it on a GPU: on a curve with
 * a memory-bound plateau, wave steps and 1% noise per run, refinement times at most a quarter
 * of the 64 boundaries of a dense sweep and reproduces that sweep (measured again, with its
 * own noise) within 2% at every boundary. */
static void test_refinement_on_noisy_gpu_curve(void **state)
{
    (void)state;
    gem_options_t *o = opts_new(); /* tile 64, 4096 tokens: 64 boundaries */
    noisy_runner rd, rr;
    for (int d = 0; d < 4; d++) rd.rng[d] = 1000 + (uint64_t)d, rr.rng[d] = 2000 + (uint64_t)d;
    gem__profile_stats sd = {0}, sr = {0};
    gem_profile_t *dense = noisy_profile(o, &rd, 1, &sd);
    gem_profile_t *refined = noisy_profile(o, &rr, 0, &sr);
    assert_int_equal(sd.grid, 64);
    for (int d = 0; d < 4; d++) {
        assert_int_equal(sd.timed[d], 64);
        assert_true(sr.timed[d] >= 9);       /* the coarse pass ... */
        assert_true(4 * sr.timed[d] <= 64);  /* ... and refinement: at most a quarter */
        const gem__curve *a = &dense->gpus[d].curve, *b = &refined->gpus[d].curve;
        double worst = 0;
        for (size_t i = 0; i < 64; i++)
            worst = fmax(worst, fabs(b->latency[i] - a->latency[i]) / a->latency[i]);
        if (worst > 0.02) print_error("device %d: refined is %.2f%% off dense\n", d, 100 * worst);
        assert_true(worst <= 0.02);
        /* the plateau's end was found: 128 tokens still on it, 256 well past it */
        assert_true(fabs(b->latency[1] / (84.0 * (1.0 + 0.1 * d)) - 1) < 0.02);
        assert_true(b->latency[3] > 1.5 * b->latency[1]);
    }
    gem__profile_stats_free(&sd);
    gem__profile_stats_free(&sr);
    gem_profile_destroy(dense);
    gem_profile_destroy(refined);
    gem_options_destroy(o);
}

typedef struct {
    int kind;
    uint64_t rng;
    long calls;
} noisy_probe;

static gem_status_t noisy_measure(void *ctx, int64_t tokens, double *us, double *cv)
{
    noisy_probe *p = ctx;
    p->calls++;
    *us = noisy_median(p->kind, 1.0, tokens, &p->rng, cv);
    return GEM_OK;
}

/* With the cv that the CUDA probe measures, noise alone is not chased: a straight line with 1%
 * noise per run keeps the coarse pass (9 samples) over many draws. A staircase too steep to
 * follow stays within the budget; a budget set in the plan holds, and a bend that still wants
 * samples when it runs out is reported (capped). */
static void test_sampler_noise_and_budget(void **state)
{
    (void)state;
    gem__sample_plan plan;
    gem__sample_plan_init(&plan, NULL);
    plan.repeats = 20;
    gem__samples s = {0};
    for (uint64_t seed = 1; seed <= 50; seed++) {
        noisy_probe p = {1, seed, 0};
        assert_ok(gem__sample_curve(&plan, noisy_measure, &p, &s));
        assert_int_equal(p.calls, 9);
        assert_false(s.capped);
        gem__samples_free(&s);
    }
    for (uint64_t seed = 1; seed <= 20; seed++) {
        noisy_probe stairs = {2, seed, 0};
        assert_ok(gem__sample_curve(&plan, noisy_measure, &stairs, &s));
        assert_true(stairs.calls > 9);       /* it does chase the steps ... */
        assert_true(stairs.calls <= 16);     /* ... on a quarter of the 64 boundaries at most */
        assert_int_equal(s.n_timed, (size_t)stairs.calls);
        gem__samples_free(&s);
    }
    noisy_probe stairs = {2, 7, 0};
    plan.max_timed = 12;
    assert_ok(gem__sample_curve(&plan, noisy_measure, &stairs, &s));
    assert_true(stairs.calls <= 12);
    gem__samples_free(&s);
    /* The smooth bend of the exact curves above wants more than 10 samples. */
    fake bend = {4, 0};
    plan.max_timed = 10;
    assert_ok(gem__sample_curve(&plan, fake_measure, &bend, &s));
    assert_int_equal(bend.calls, 10);
    assert_true(s.capped);
    gem__samples_free(&s);
    /* The coarse pass is timed whatever the budget; dense ignores it. */
    plan.max_timed = 3;
    stairs.calls = 0;
    assert_ok(gem__sample_curve(&plan, noisy_measure, &stairs, &s));
    assert_int_equal(stairs.calls, 9);
    gem__samples_free(&s);
    plan.dense = 1;
    stairs.calls = 0;
    assert_ok(gem__sample_curve(&plan, noisy_measure, &stairs, &s));
    assert_int_equal(stairs.calls, 64);
    assert_false(s.capped);
    gem__samples_free(&s);
}

static void test_grid_limits(void **state)
{
    (void)state;
    size_t n = 0;
    assert_ok(gem__tile_grid(64, 4096, &n));
    assert_int_equal(n, 64);
    assert_ok(gem__tile_grid(64, 4097, &n));
    assert_int_equal(n, 65);
    assert_ok(gem__tile_grid(65536, 1, &n));
    assert_int_equal(n, 1);
    assert_ok(gem__tile_grid(1, GEM_MAX_CURVE_POINTS, &n));
    assert_int_equal(n, GEM_MAX_CURVE_POINTS);
    assert_gem(GEM_ERR_LIMIT, gem__tile_grid(1, GEM_MAX_CURVE_POINTS + 1, &n));
    /* The last boundary never passes GEM_MAX_TOKENS. */
    assert_ok(gem__tile_grid(65536, GEM_MAX_TOKENS, &n));
    assert_true((int64_t)n * 65536 <= GEM_MAX_TOKENS);
    assert_ok(gem__tile_grid(3000, GEM_MAX_TOKENS, &n));
    assert_true((int64_t)n * 3000 <= GEM_MAX_TOKENS);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem__tile_grid(0, 10, &n));
}

/* ---- callback failures ---------------------------------------------------------------------- */

static void test_callback_needs_a_runner(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_gpus(GEM_BACKEND_CALLBACK, NULL, &p));
    assert_error_has("gem_options_set_runner");
    gem_options_t *o = opts_new();
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_gpus(GEM_BACKEND_CALLBACK, o, &p));
    assert_error_has("runner");
    assert_null(p);
    gem_options_destroy(o);
}

static void test_callback_runner_failure(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    runner_state *r = runner_new();
    r->fail_device = 1;
    r->fail_tokens = 640;
    r->fail_value = -1.0;
    assert_ok(gem_options_set_int(o, GEM_OPT_PROFILE_DENSE, 1));
    assert_ok(gem_options_set_runner(o, runner, r, 3));
    gem_profile_t *p = NULL;
    assert_gem(GEM_ERR_DEVICE, gem_profile_gpus(GEM_BACKEND_CALLBACK, o, &p));
    assert_error_has("device 1");
    assert_error_has("640 tokens");
    assert_null(p);

    /* Not a time: NaN, infinity, zero. */
    const double bad[] = {NAN, INFINITY, 0.0};
    for (int i = 0; i < 3; i++) {
        memset(r, 0, sizeof *r);
        r->fail_device = 2;
        r->fail_tokens = 1;
        r->fail_value = bad[i];
        assert_gem(GEM_ERR_DEVICE, gem_profile_gpus(GEM_BACKEND_CALLBACK, o, &p));
        assert_error_has("device 2 at 64 tokens");
        assert_null(p);
    }
    free(r);
    gem_options_destroy(o);
}

typedef struct {
    int calls;
    double last_done, last_total;
    int cancel;
} progress_log;

static int progress(void *user, const char *what, double done, double total)
{
    progress_log *l = user;
    assert_string_equal(what, "measure");
    l->calls++;
    l->last_done = done;
    l->last_total = total;
    return l->cancel;
}

static void test_callback_progress_and_cancel(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    runner_state *r = runner_new();
    progress_log log = {0};
    assert_ok(gem_options_set_progress(o, progress, &log));
    gem_profile_t *p = profile_callback(o, r, 2, 0, NULL);
    assert_true(log.calls >= 1);
    /* The last report: samples timed of the boundaries a dense sweep would time. */
    assert_near(log.last_total, 2 * 64, 0);
    assert_near(log.last_done, (double)(atomic_load(&r->dev[0].calls) + atomic_load(&r->dev[1].calls)), 0);
    gem_profile_destroy(p);

    log.cancel = 1;
    assert_ok(gem_options_set_runner(o, runner, r, 2));
    p = NULL;
    assert_gem(GEM_ERR_CANCELLED, gem_profile_gpus(GEM_BACKEND_CALLBACK, o, &p));
    assert_null(p);
    free(r);
    gem_options_destroy(o);
}

static void test_callback_allocation_failures(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    runner_state *r = runner_new();
    assert_ok(gem_options_set_runner(o, runner, r, 2));
    int failed = 0;
    for (long n = 1; n < 100; n++) {
        gem_profile_t *p = NULL;
        gem__inject_alloc_failure(n);
        gem_status_t st = gem_profile_gpus(GEM_BACKEND_CALLBACK, o, &p);
        gem__inject_alloc_failure(0);
        if (st == GEM_OK) {
            gem_profile_destroy(p);
            break;
        }
        assert_int_equal(st, GEM_ERR_NO_MEMORY);
        assert_null(p);
        failed++;
    }
    assert_true(failed > 5);
    free(r);
    gem_options_destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_has_backend_and_names),
        cmocka_unit_test(test_backends_that_make_no_profile),
        cmocka_unit_test(test_cuda_without_device),
        cmocka_unit_test(test_nccl_without_device),
        cmocka_unit_test(test_topology_fills_host),
        cmocka_unit_test(test_topology_by_pci_bus_id),
        cmocka_unit_test(test_callback_refinement_matches_dense),
        cmocka_unit_test(test_sampler_finds_each_feature),
        cmocka_unit_test(test_sampler_tolerates_measured_noise),
        cmocka_unit_test(test_refinement_on_noisy_gpu_curve),
        cmocka_unit_test(test_sampler_noise_and_budget),
        cmocka_unit_test(test_grid_limits),
        cmocka_unit_test(test_callback_needs_a_runner),
        cmocka_unit_test(test_callback_runner_failure),
        cmocka_unit_test(test_callback_progress_and_cancel),
        cmocka_unit_test(test_callback_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
