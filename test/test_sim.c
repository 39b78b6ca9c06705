/* test_sim.c - the emulated GPUs of GEM_BACKEND_SIM (libgem/backend_sim.c). */
#include "testutil.h"

#include "backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka's assert_float_equal works in float precision; these figures need double's. */
#define assert_near(a, b, tol)                                                                \
    do {                                                                                      \
        double a__ = (a), b__ = (b);                                                          \
        if (!(fabs(a__ - b__) <= (tol))) {                                                    \
            print_error("%.17g != %.17g (tolerance %g)\n", a__, b__, (double)(tol));          \
            fail();                                                                           \
        }                                                                                     \
    } while (0)

/* Mixtral-8x7B expert, bf16, on an L40: weights 3*4096*14336*2 bytes at 864 GB/s. */
#define MIXTRAL_MEM_US (3.0 * 4096 * 14336 * 2 / 864e9 * 1e6)

static gem_options_t *opts_new(void)
{
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    return o;
}

static gem_profile_t *sim(const gem_options_t *o)
{
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_gpus(GEM_BACKEND_SIM, o, &p));
    assert_non_null(p);
    return p;
}

static size_t curve(const gem_profile_t *p, int32_t g, int64_t *tok, double *lat, size_t cap)
{
    size_t k = 0;
    assert_ok(gem_profile_get_curve(p, g, tok, lat, cap, &k));
    assert_true(k <= cap);
    return k;
}

static double overhead(const gem_profile_t *p, int32_t g)
{
    double c = 0;
    assert_ok(gem_profile_get_overhead(p, g, &c));
    return c;
}

/* The slowdown of each GPU, read back from its overhead (c_g = 20 us * slowdown). */
static void slowdowns(const gem_profile_t *p, double *sd)
{
    int32_t G = 0;
    assert_ok(gem_profile_num_gpus(p, &G));
    for (int32_t g = 0; g < G; g++) sd[g] = overhead(p, g) / 20.0;
}

static void test_defaults_emulate_a_4_gpu_l40_node(void **state)
{
    (void)state;
    gem_profile_t *p = sim(NULL);
    int32_t G = 0;
    assert_ok(gem_profile_num_gpus(p, &G));
    assert_int_equal(G, 4);
    int64_t tok[128];
    double lat[128];
    double sd[4];
    slowdowns(p, sd);
    int fastest = 0;
    for (int g = 1; g < 4; g++)
        if (sd[g] < sd[fastest]) fastest = g;
    assert_near(sd[fastest], 1.0, 1e-12);
    size_t k = curve(p, fastest, tok, lat, 128);
    assert_int_equal(k, 64); /* 64, 128, ..., 4096 */
    assert_int_equal(tok[0], 64);
    assert_int_equal(tok[63], 4096);
    /* The sanity figure: ~408 us at 64 tokens on an unslowed L40. */
    assert_true(lat[0] > 405.0 && lat[0] < 412.0);
    assert_near(lat[0], MIXTRAL_MEM_US + 1.0, 1e-9);

    const char *s = NULL;
    assert_ok(gem_profile_get_gpu_string(p, fastest, "name", &s));
    char want[32];
    snprintf(want, sizeof want, "sim-L40 #%d", fastest);
    assert_string_equal(s, want);
    assert_ok(gem_profile_get_gpu_string(p, 0, "host", &s));
    assert_non_null(s);
    assert_true(strlen(s) > 0);
    assert_ok(gem_profile_get_gpu_string(p, 0, "pci_bus_id", &s));
    assert_null(s);
    assert_string_equal(p->model_name, "Mixtral-8x7B");
    assert_string_equal(p->model_dtype, "bf16");
    assert_int_equal(p->model_hidden, 4096);
    assert_int_equal(p->model_ffn, 14336);
    assert_int_equal(p->gpus[0].memory_bytes, 48000000000LL);
    gem_interpolation_t interp;
    gem_cost_model_t cm;
    assert_ok(gem_profile_get_interpolation(p, &interp));
    assert_ok(gem_profile_get_cost_model(p, &cm));
    assert_int_equal(interp, GEM_INTERP_STEP);
    assert_int_equal(cm, GEM_COST_PER_EXPERT);
    gem_profile_destroy(p);
}

static void test_curve_plateau_then_compute_growth(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 1));
    gem_profile_t *p = sim(o);
    int64_t tok[64];
    double lat[64];
    size_t k = curve(p, 0, tok, lat, 64);
    assert_int_equal(k, 64);
    /* Memory-bound up to the ridge, b*rate/(2*BW) = 209.5 tokens: 64, 128, 192 cost the same. */
    assert_near(lat[1], lat[0], 0);
    assert_near(lat[2], lat[0], 0);
    assert_true(lat[3] > lat[2] * 1.2);
    /* Then compute-bound: every further tile adds the same FLOPs. */
    double step = lat[4] - lat[3];
    double flops_us = 6.0 * 64 * 4096 * 14336 / 181e12 * 1e6;
    assert_near(step, flops_us, 1e-6);
    for (size_t i = 4; i < k; i++) {
        assert_true(lat[i] > lat[i - 1]);
        assert_near(lat[i] - lat[i - 1], step, 1e-6);
    }
    /* 4096 tokens: 6*4096*h*f / 181 TFLOP/s. */
    assert_near(lat[63], 64 * flops_us + 1.0, 1e-6);
    gem_profile_destroy(p);
    gem_options_destroy(o);
}

static void test_tile_steps(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 1));
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_TILE, 128));
    assert_ok(gem_options_set_int(o, GEM_OPT_PROFILE_MAX_TOKENS, 1000)); /* not a multiple */
    gem_profile_t *p = sim(o);
    int64_t tok[16];
    double lat[16];
    size_t k = curve(p, 0, tok, lat, 16);
    assert_int_equal(k, 8); /* 128 ... 1024: the last boundary covers 1000 */
    for (size_t i = 0; i < k; i++) assert_int_equal(tok[i], 128 * (int64_t)(i + 1));
    /* Between boundaries the kernel pads to the next tile: the time is the boundary's. */
    double a, b, c;
    assert_ok(gem_profile_latency(p, 0, 513, &a));
    assert_ok(gem_profile_latency(p, 0, 640, &b));
    assert_ok(gem_profile_latency(p, 0, 512, &c));
    assert_near(a, b, 0);
    assert_true(a > c);
    /* The model agrees off the boundaries too. */
    assert_near(gem__sim_latency(o, 513), gem__sim_latency(o, 640), 0);
    assert_near(gem__sim_latency(o, 513), a, 1e-9);
    gem_profile_destroy(p);

    /* max tokens under one tile: one sample, at the tile. */
    assert_ok(gem_options_set_int(o, GEM_OPT_PROFILE_MAX_TOKENS, 5));
    p = sim(o);
    k = curve(p, 0, tok, lat, 16);
    assert_int_equal(k, 1);
    assert_int_equal(tok[0], 128);
    gem_profile_destroy(p);
    gem_options_destroy(o);
}

static void test_explicit_slowdowns_order_and_scale(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    const double sd[] = {1.0, 1.5, 1.2};
    assert_ok(gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, sd, 3));
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 9)); /* overridden by the list */
    gem_profile_t *p = sim(o);
    int32_t G = 0;
    assert_ok(gem_profile_num_gpus(p, &G));
    assert_int_equal(G, 3);
    int64_t tok[64];
    double lat[3][64];
    for (int g = 0; g < 3; g++) assert_int_equal(curve(p, g, tok, lat[g], 64), 64);
    for (int g = 0; g < 3; g++) {
        assert_near(overhead(p, g), 20.0 * sd[g], 1e-12);
        for (int i = 0; i < 64; i++)
            assert_near(lat[g][i], lat[0][i] * sd[g], 1e-9 * lat[g][i]);
    }
    /* Ordering: GPU 1 slowest, GPU 0 fastest, at every token count. */
    for (int i = 0; i < 64; i++) {
        assert_true(lat[0][i] < lat[2][i]);
        assert_true(lat[2][i] < lat[1][i]);
    }
    double speeds[3];
    assert_ok(gem_profile_speeds(p, speeds, 3));
    assert_near(speeds[0], 1.0, 1e-12);
    assert_near(speeds[1], 1.0 / 1.5, 1e-12);
    assert_near(speeds[2], 1.0 / 1.2, 1e-12);
    gem_profile_destroy(p);
    gem_options_destroy(o);
}

static void test_spread_is_honoured_exactly(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 8));
    assert_ok(gem_options_set_double(o, GEM_OPT_SIM_SPREAD, 0.3));
    int fastest_at[8] = {0};
    for (int seed = 1; seed <= 24; seed++) {
        assert_ok(gem_options_set_int(o, GEM_OPT_SEED, seed));
        double *sd = NULL;
        int32_t fleet = 0;
        assert_ok(gem__sim_slowdowns(o, &sd, &fleet));
        assert_int_equal(fleet, 8);
        double lo = INFINITY, hi = -INFINITY;
        int lo_at = 0;
        for (int g = 0; g < 8; g++) {
            if (sd[g] < lo) lo = sd[g], lo_at = g;
            if (sd[g] > hi) hi = sd[g];
            assert_true(sd[g] >= 1.0 && sd[g] <= 1.3);
        }
        assert_true(lo == 1.0);
        assert_true(hi == 1.0 + 0.3);
        fastest_at[lo_at]++;
        /* The profile carries exactly these: fastest curve / slowest curve = 1.3. */
        gem_profile_t *p = sim(o);
        double t[8];
        for (int g = 0; g < 8; g++) assert_ok(gem_profile_latency(p, g, 64, &t[g]));
        double tmin = INFINITY, tmax = 0;
        for (int g = 0; g < 8; g++) {
            assert_near(t[g], (MIXTRAL_MEM_US + 1.0) * sd[g], 1e-9);
            tmin = fmin(tmin, t[g]), tmax = fmax(tmax, t[g]);
        }
        assert_near(tmax / tmin, 1.3, 1e-12);
        gem_profile_destroy(p);
        free(sd);
    }
    /* Shuffled: the fastest GPU is not always the same one. */
    int places = 0;
    for (int g = 0; g < 8; g++) places += fastest_at[g] > 0;
    assert_true(places >= 3);

    /* Two GPUs: exactly 1 and 1 + spread; one GPU: 1; spread 0: all 1. */
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 2));
    double *sd = NULL;
    int32_t fleet = 0;
    assert_ok(gem__sim_slowdowns(o, &sd, &fleet));
    assert_true(fmin(sd[0], sd[1]) == 1.0 && fmax(sd[0], sd[1]) == 1.3);
    free(sd);
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 1));
    assert_ok(gem__sim_slowdowns(o, &sd, &fleet));
    assert_int_equal(fleet, 1);
    assert_true(sd[0] == 1.0);
    free(sd);
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 5));
    assert_ok(gem_options_set_double(o, GEM_OPT_SIM_SPREAD, 0));
    assert_ok(gem__sim_slowdowns(o, &sd, &fleet));
    for (int g = 0; g < 5; g++) assert_true(sd[g] == 1.0);
    free(sd);
    gem_options_destroy(o);
}

static int same_curves(const gem_profile_t *a, const gem_profile_t *b)
{
    if (a->num_gpus != b->num_gpus) return 0;
    for (int32_t g = 0; g < a->num_gpus; g++) {
        const gem__curve *x = &a->gpus[g].curve, *y = &b->gpus[g].curve;
        if (x->k != y->k || memcmp(x->tokens, y->tokens, x->k * sizeof *x->tokens) ||
            memcmp(x->latency, y->latency, x->k * sizeof *x->latency) ||
            a->gpus[g].overhead != b->gpus[g].overhead)
            return 0;
    }
    return 1;
}

static void test_deterministic_for_a_seed(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 6));
    assert_ok(gem_options_set_double(o, GEM_OPT_SIM_SPREAD, 0.2));
    assert_ok(gem_options_set_double(o, GEM_OPT_SIM_NOISE, 0.05));
    assert_ok(gem_options_set_int(o, GEM_OPT_SEED, 42));
    gem_profile_t *a = sim(o), *b = sim(o);
    assert_true(same_curves(a, b));
    assert_ok(gem_options_set_int(o, GEM_OPT_SEED, 43));
    gem_profile_t *c = sim(o);
    assert_false(same_curves(a, c));
    gem_profile_destroy(a);
    gem_profile_destroy(b);
    gem_profile_destroy(c);

    /* A GPU's noise depends on its index, not on the fleet: GPU 2 of a 3-GPU fleet with
     * explicit slowdowns equals GPU 2 of a longer list with the same value there. */
    const double s3[] = {1.1, 1.0, 1.25}, s5[] = {1.3, 1.2, 1.25, 1.0, 1.05};
    assert_ok(gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, s3, 3));
    a = sim(o);
    assert_ok(gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, s5, 5));
    b = sim(o);
    assert_int_equal(a->gpus[2].curve.k, b->gpus[2].curve.k);
    assert_memory_equal(a->gpus[2].curve.latency, b->gpus[2].curve.latency,
                        a->gpus[2].curve.k * sizeof(double));
    gem_profile_destroy(a);
    gem_profile_destroy(b);
    gem_options_destroy(o);
}

static void test_noise_stays_within_bounds(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 2));
    assert_ok(gem_options_set_double(o, GEM_OPT_SIM_SPREAD, 0));
    assert_ok(gem_options_set_double(o, GEM_OPT_SIM_NOISE, 0.5)); /* the largest allowed */
    gem_profile_t *p = sim(o);
    int64_t tok[64];
    double lat[64];
    int moved = 0, nonmonotone = 0;
    for (int g = 0; g < 2; g++) {
        size_t k = curve(p, g, tok, lat, 64);
        for (size_t i = 0; i < k; i++) {
            double base = gem__sim_latency(o, tok[i]);
            assert_true(lat[i] > 0);
            assert_true(fabs(lat[i] / base - 1.0) <= 0.5 + 1e-12);
            moved += fabs(lat[i] / base - 1.0) > 1e-3;
            if (i) nonmonotone += lat[i] < lat[i - 1];
        }
    }
    assert_true(moved > 100);    /* nearly every sample carries noise */
    assert_true(nonmonotone > 0); /* and noisy curves need not be monotone: still valid */
    gem_profile_destroy(p);
    gem_options_destroy(o);
}

static void test_model_and_profile_options(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 2));
    assert_ok(gem_options_set_int(o, GEM_OPT_MODEL_HIDDEN, 2048));
    assert_ok(gem_options_set_int(o, GEM_OPT_MODEL_FFN, 1408));
    assert_ok(gem_options_set_int(o, GEM_OPT_MODEL_DTYPE, GEM_DTYPE_FP8));
    assert_ok(gem_options_set_string(o, GEM_OPT_HOST_NAME, "node7"));
    assert_ok(gem_options_set_int(o, GEM_OPT_INTERPOLATION, GEM_INTERP_LINEAR));
    assert_ok(gem_options_set_int(o, GEM_OPT_COST_MODEL, GEM_COST_AGGREGATE));
    assert_ok(gem_options_set_double(o, GEM_OPT_SIM_MEMORY_GB, 80));
    assert_ok(gem_options_set_double(o, GEM_OPT_SIM_BANDWIDTH_GBS, 3350));
    assert_ok(gem_options_set_double(o, GEM_OPT_SIM_OVERHEAD_US, 0));
    gem_profile_t *p = sim(o);
    /* A shape other than Mixtral's is not called Mixtral. */
    assert_null(p->model_name);
    assert_string_equal(p->model_dtype, "fp8");
    assert_int_equal(p->model_hidden, 2048);
    const char *s = NULL;
    assert_ok(gem_profile_get_gpu_string(p, 1, "host", &s));
    assert_string_equal(s, "node7");
    assert_ok(gem_profile_get_gpu_string(p, 1, "name", &s));
    assert_string_equal(s, "sim-GPU #1");
    assert_int_equal(p->gpus[1].memory_bytes, 80000000000LL);
    assert_near(overhead(p, 0), 0, 0);
    gem_interpolation_t interp;
    gem_cost_model_t cm;
    assert_ok(gem_profile_get_interpolation(p, &interp));
    assert_ok(gem_profile_get_cost_model(p, &cm));
    assert_int_equal(interp, GEM_INTERP_LINEAR);
    assert_int_equal(cm, GEM_COST_AGGREGATE);
    /* fp8 weights: 3*2048*1408*1 bytes at 3350 GB/s. */
    double t;
    assert_ok(gem_profile_latency(p, 0, 1, &t));
    double want = fmax(3.0 * 2048 * 1408 / 3350e9, 6.0 * 64 * 2048 * 1408 / 181e12) * 1e6 + 1.0;
    double t1;
    assert_ok(gem_profile_latency(p, 1, 1, &t1));
    assert_near(fmin(t, t1), want, 1e-9);
    gem_profile_destroy(p);

    /* A name given is kept whatever the shape. */
    assert_ok(gem_options_set_string(o, GEM_OPT_MODEL_NAME, "Qwen1.5-MoE-A2.7B"));
    p = sim(o);
    assert_string_equal(p->model_name, "Qwen1.5-MoE-A2.7B");
    gem_profile_destroy(p);
    gem_options_destroy(o);
}

static void test_invalid_requests(void **state)
{
    (void)state;
    gem_profile_t *p = (gem_profile_t *)0x1;
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_gpus(GEM_BACKEND_SIM, NULL, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_gpus((gem_backend_t)99, NULL, &p));
    assert_error_has("unknown backend 99");
    assert_ptr_equal(p, (gem_profile_t *)0x1);

    gem_options_t *o = opts_new();
    /* 2^21 boundaries of one token: beyond GEM_MAX_CURVE_POINTS. */
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_TILE, 1));
    assert_ok(gem_options_set_int(o, GEM_OPT_PROFILE_MAX_TOKENS, 2097152));
    assert_gem(GEM_ERR_LIMIT, gem_profile_gpus(GEM_BACKEND_SIM, o, &p));
    assert_error_has("tile boundaries");
    assert_ptr_equal(p, (gem_profile_t *)0x1);
    /* The option setters refuse what the sim cannot emulate, and keep the old value. */
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_SIM_NOISE, 0.6));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_SIM_SPREAD, -0.1));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, GEM_OPT_SIM_GPUS, 0));
    const double bad[] = {1.0, 0.0};
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, bad, 2));
    assert_error_has("element 1");
    gem_options_destroy(o);
}

static int cancel_at_two(void *user, const char *what, double done, double total)
{
    int *calls = user;
    assert_string_equal(what, "simulate");
    assert_true(done >= 1 && done <= total);
    return ++*calls == 2;
}

static void test_progress_can_cancel(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    int calls = 0;
    assert_ok(gem_options_set_progress(o, cancel_at_two, &calls));
    gem_profile_t *p = NULL;
    assert_gem(GEM_ERR_CANCELLED, gem_profile_gpus(GEM_BACKEND_SIM, o, &p));
    assert_null(p);
    assert_int_equal(calls, 2);
    gem_options_destroy(o);
}

static void test_allocation_failures_are_clean(void **state)
{
    (void)state;
    gem_options_t *o = opts_new();
    assert_ok(gem_options_set_int(o, GEM_OPT_SIM_GPUS, 3));
    int failed = 0;
    for (long n = 1; n < 200; n++) {
        gem_profile_t *p = NULL;
        gem__inject_alloc_failure(n);
        gem_status_t st = gem_profile_gpus(GEM_BACKEND_SIM, o, &p);
        gem__inject_alloc_failure(0);
        if (st == GEM_OK) {
            gem_profile_destroy(p);
            break;
        }
        assert_int_equal(st, GEM_ERR_NO_MEMORY);
        assert_null(p);
        failed++;
    }
    assert_true(failed > 10);
    gem_options_destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_emulate_a_4_gpu_l40_node),
        cmocka_unit_test(test_curve_plateau_then_compute_growth),
        cmocka_unit_test(test_tile_steps),
        cmocka_unit_test(test_explicit_slowdowns_order_and_scale),
        cmocka_unit_test(test_spread_is_honoured_exactly),
        cmocka_unit_test(test_deterministic_for_a_seed),
        cmocka_unit_test(test_noise_stays_within_bounds),
        cmocka_unit_test(test_model_and_profile_options),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_progress_can_cancel),
        cmocka_unit_test(test_allocation_failures_are_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
