/* test_core.c - status strings, errors, options, and the in-memory handles (profile curves,
 * trace building, mapping rules). */
#include "testutil.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_version_and_status(void **state)
{
    (void)state;
    assert_int_equal(gem_version(), GEM_VERSION_NUMBER);
    assert_string_equal(gem_version_string(), GEM_VERSION_STRING);
    for (int s = GEM_OK; s <= GEM_ERR_CANCELLED; s++)
        assert_string_not_equal(gem_status_string((gem_status_t)s), "unknown status");
    assert_string_equal(gem_status_string((gem_status_t)999), "unknown status");
    gem_free(NULL);
}

static void test_error_message_is_thread_local_and_cleared(void **state)
{
    (void)state;
    gem_options_t *o = NULL;
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_create(NULL));
    assert_error_has("out is NULL");
    assert_ok(gem_options_create(&o));
    assert_string_equal(gem_last_error(), "");
    gem_options_destroy(o);
}

static void test_options_defaults_bounds_types(void **state)
{
    (void)state;
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    int64_t i;
    double d;
    assert_ok(gem_options_get_int(o, GEM_OPT_SEED, &i));
    assert_int_equal(i, 1);
    assert_ok(gem_options_get_double(o, GEM_OPT_HEAVY_FACTOR, &d));
    assert_true(d == 1.0);
    /* ints are readable as doubles, not the reverse */
    assert_ok(gem_options_get_double(o, GEM_OPT_RESTARTS, &d));
    assert_true(d == 4.0);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_get_int(o, GEM_OPT_HEAVY_FACTOR, &i));
    /* an int may set a double option */
    assert_ok(gem_options_set_int(o, GEM_OPT_HEAVY_FACTOR, 2));
    assert_ok(gem_options_get_double(o, GEM_OPT_HEAVY_FACTOR, &d));
    assert_true(d == 2.0);
    /* out of range and wrong type leave the value unchanged */
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, GEM_OPT_THREADS, -1));
    assert_error_has("threads");
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_SIM_SPREAD, NAN));
    assert_error_has("not finite");
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_SEED, 1.5));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, (gem_option_t)9999, 1));
    assert_error_has("unknown option");
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_string(o, GEM_OPT_SEED, "x"));
    assert_ok(gem_options_get_int(o, GEM_OPT_THREADS, &i));
    assert_int_equal(i, 0);
    gem_options_destroy(o);
    gem_options_destroy(NULL);
}

static void test_options_strings_arrays_clone(void **state)
{
    (void)state;
    gem_options_t *o = NULL, *c = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_string(o, GEM_OPT_MODEL_NAME, "Mixtral"));
    double sl[3] = {1.0, 1.1, 1.5}, back[3];
    assert_ok(gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, sl, 3));
    double bad[2] = {1.0, -1.0};
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, bad, 2));
    assert_error_has("element 1");
    int64_t mem[2] = {100, 200};
    assert_ok(gem_options_set_int_array(o, GEM_OPT_GPU_MEMORY, mem, 2));
    assert_ok(gem_options_clone(o, &c));
    gem_options_destroy(o);
    const char *s;
    size_t n;
    assert_ok(gem_options_get_string(c, GEM_OPT_MODEL_NAME, &s));
    assert_string_equal(s, "Mixtral");
    assert_ok(gem_options_get_double_array(c, GEM_OPT_SIM_SLOWDOWNS, back, 3, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(back, sl, sizeof sl);
    int64_t m2[1];
    assert_ok(gem_options_get_int_array(c, GEM_OPT_GPU_MEMORY, m2, 1, &n));
    assert_int_equal(n, 2);
    assert_int_equal(m2[0], 100);
    assert_ok(gem_options_set_double_array(c, GEM_OPT_SIM_SLOWDOWNS, NULL, 0));
    assert_ok(gem_options_get_double_array(c, GEM_OPT_SIM_SLOWDOWNS, back, 3, &n));
    assert_int_equal(n, 0);
    gem_options_destroy(c);
}

/* SPEC 2 by hand: samples (64, 100), (128, 150), (256, 200). */
static gem_profile_t *three_point_profile(gem_interpolation_t interp)
{
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, 1));
    assert_ok(gem_profile_set_interpolation(p, interp));
    int64_t tok[3] = {64, 128, 256};
    double lat[3] = {100, 150, 200};
    assert_ok(gem_profile_set_curve(p, 0, 3, tok, lat, NULL));
    return p;
}

static double f(const gem_profile_t *p, double x)
{
    double us = -1;
    assert_ok(gem_profile_latency(p, 0, x, &us));
    return us;
}

static void test_curve_step(void **state)
{
    (void)state;
    gem_profile_t *p = three_point_profile(GEM_INTERP_STEP);
    assert_true(f(p, 0) == 0);
    assert_true(f(p, 0.5) == 100);
    assert_true(f(p, 1) == 100);
    assert_true(f(p, 64) == 100);
    assert_true(f(p, 64.0001) == 150);
    assert_true(f(p, 65) == 150);
    assert_true(f(p, 128) == 150);
    assert_true(f(p, 200) == 200);
    assert_true(f(p, 256) == 200);
    /* past the last sample: t_K + (x - n_K) * (t_K - t_{K-1}) / (n_K - n_{K-1}) */
    assert_float_equal(f(p, 384), 200 + 128 * 50.0 / 128, 1e-12);
    assert_float_equal(f(p, 256.5), 200 + 0.5 * 50.0 / 128, 1e-12);
    gem_profile_destroy(p);
}

static void test_curve_linear(void **state)
{
    (void)state;
    gem_profile_t *p = three_point_profile(GEM_INTERP_LINEAR);
    assert_true(f(p, 0) == 0);
    assert_true(f(p, 10) == 100);
    assert_true(f(p, 64) == 100);
    assert_float_equal(f(p, 96), 125, 1e-12);
    assert_float_equal(f(p, 192), 175, 1e-12);
    assert_float_equal(f(p, 512), 200 + 256 * 50.0 / 128, 1e-12);
    /* switching interpolation rebuilds the lookup tables */
    assert_ok(gem_profile_set_interpolation(p, GEM_INTERP_STEP));
    assert_true(f(p, 96) == 150);
    gem_profile_destroy(p);
}

static void test_curve_single_sample_and_large_tokens(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, 2));
    int64_t tok[1] = {64};
    double lat[1] = {80};
    assert_ok(gem_profile_set_curve(p, 0, 1, tok, lat, NULL));
    int64_t tok2[2] = {1, 2000000}; /* beyond the lookup table size: binary search path */
    double lat2[2] = {10, 30};
    assert_ok(gem_profile_set_curve(p, 1, 2, tok2, lat2, NULL));
    double us;
    assert_ok(gem_profile_latency(p, 0, 32, &us));
    assert_true(us == 80);
    assert_ok(gem_profile_latency(p, 0, 128, &us));
    assert_float_equal(us, 160, 1e-12); /* t_1 * x / n_1 */
    assert_ok(gem_profile_latency(p, 1, 1.5, &us));
    assert_true(us == 30);
    assert_ok(gem_profile_latency(p, 1, 1, &us));
    assert_true(us == 10);
    gem_profile_destroy(p);
}

static void test_curve_rejects_bad_samples(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, 2));
    int64_t asc[2] = {64, 128}, desc[2] = {128, 64}, zero[2] = {0, 64};
    double ok[2] = {1, 2}, nan[2] = {1, NAN}, neg[2] = {1, -2};
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_set_curve(p, 1, 2, desc, ok, NULL));
    assert_error_has("gpu 1");
    assert_error_has("ascending");
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_set_curve(p, 0, 2, zero, ok, NULL));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_set_curve(p, 0, 2, asc, nan, NULL));
    assert_error_has("latency_us[1]");
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_set_curve(p, 0, 2, asc, neg, NULL));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_set_curve(p, 0, 0, asc, ok, NULL));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_profile_set_curve(p, 2, 2, asc, ok, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_set_overhead(p, 0, INFINITY));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_create(&p, 0));
    assert_gem(GEM_ERR_LIMIT, gem_profile_create(&p, GEM_MAX_GPUS + 1));
    /* no curve yet: latency refuses */
    double us;
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_latency(p, 0, 10, &us));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_latency(p, 0, NAN, &us));
    gem_profile_destroy(p);
}

static void test_profile_speeds_clone_append(void **state)
{
    (void)state;
    double slow[3] = {1.0, 1.25, 2.0};
    gem_profile_t *p = tu_profile(3, slow, 64, 8, 100, 5), *c = NULL;
    double sp[3];
    assert_ok(gem_profile_speeds(p, sp, 3));
    assert_float_equal(sp[0], 1.0, 1e-12);
    assert_float_equal(sp[1], 0.8, 1e-12);
    assert_float_equal(sp[2], 0.5, 1e-12);
    assert_ok(gem_profile_set_gpu_string(p, 2, "host", "node7"));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_set_gpu_string(p, 2, "colour", "red"));
    assert_ok(gem_profile_clone(p, &c));
    /* profiles of different experts do not merge */
    p->model_hidden = 4096;
    c->model_hidden = 7168;
    assert_gem(GEM_ERR_SHAPE_MISMATCH, gem_profile_append(p, c));
    assert_error_has("expert shapes differ");
    c->model_hidden = 0; /* unknown is compatible */
    assert_ok(gem_profile_append(p, c));
    int32_t G;
    assert_ok(gem_profile_num_gpus(p, &G));
    assert_int_equal(G, 6);
    const char *host;
    assert_ok(gem_profile_get_gpu_string(p, 5, "host", &host));
    assert_string_equal(host, "node7");
    double a, b;
    assert_ok(gem_profile_latency(p, 4, 100, &a));
    assert_ok(gem_profile_latency(p, 1, 100, &b));
    assert_true(a == b);
    gem_profile_destroy(p);
    gem_profile_destroy(c);
}

static void test_trace_build_record_validate(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 2, 4));
    double row[4] = {1, 2, 3, 4};
    assert_ok(gem_trace_set(t, 0, 0, row, 4));
    assert_gem(GEM_ERR_INCOMPLETE, gem_trace_validate(t));
    assert_error_has("step 0 layer 1");
    int32_t ids[6] = {0, 1, 1, 3, -1, 2}; /* 3 tokens, top-2, one padding id */
    assert_ok(gem_trace_record(t, 0, 1, ids, 3, 2));
    assert_ok(gem_trace_validate(t));
    double got[4];
    assert_ok(gem_trace_get(t, 0, 1, got, 4));
    assert_true(got[0] == 1 && got[1] == 2 && got[2] == 1 && got[3] == 1);
    int32_t bad[2] = {0, 4};
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_trace_record(t, 0, 1, bad, 1, 2));
    assert_error_has("expert 4");
    assert_ok(gem_trace_get(t, 0, 1, got, 4)); /* nothing was added */
    assert_true(got[0] == 1);
    double nanrow[4] = {1, NAN, 0, 0}, negrow[4] = {0, 0, -1, 0};
    assert_gem(GEM_ERR_INVALID_INPUT, gem_trace_set(t, 1, 0, nanrow, 4));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_trace_set(t, 1, 0, negrow, 4));
    assert_error_has("expert 2");
    assert_gem(GEM_ERR_SHAPE_MISMATCH, gem_trace_set(t, 1, 0, row, 3));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_trace_set(t, 1, 2, row, 4));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_trace_set(t, -1, 0, row, 4));
    /* many steps grow the storage */
    for (int64_t s = 1; s < 100; s++) {
        assert_ok(gem_trace_set(t, s, 0, row, 4));
        assert_ok(gem_trace_set(t, s, 1, row, 4));
    }
    int64_t S;
    assert_ok(gem_trace_shape(t, &S, NULL, NULL));
    assert_int_equal(S, 100);
    gem_trace_t *sl = NULL;
    assert_ok(gem_trace_slice(t, 50, 10, &sl));
    assert_ok(gem_trace_validate(sl));
    assert_ok(gem_trace_shape(sl, &S, NULL, NULL));
    assert_int_equal(S, 10);
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_trace_slice(t, 95, 10, &sl));
    gem_trace_destroy(sl);
    gem_trace_destroy(t);
}

static void test_mapping_rules(void **state)
{
    (void)state;
    gem_mapping_t *m = NULL;
    assert_ok(gem_mapping_create(&m, 2, 1, 3));
    assert_ok(gem_mapping_add(m, 0, 0, 0, 1.0));
    assert_ok(gem_mapping_add(m, 0, 1, 1, 1.0));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_validate(m));
    assert_error_has("expert 2 has no placement");
    assert_ok(gem_mapping_add(m, 0, 2, 0, 0.6));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_validate(m));
    assert_error_has("sum to");
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_add(m, 0, 2, 0, 0.4));
    assert_error_has("twice");
    assert_ok(gem_mapping_add(m, 0, 2, 1, 0.4));
    assert_ok(gem_mapping_validate(m));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_add(m, 0, 1, 0, 0.0));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_add(m, 0, 1, 0, NAN));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_mapping_add(m, 0, 3, 0, 1.0));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_mapping_add(m, 0, 0, 2, 1.0));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_mapping_add(m, 1, 0, 0, 1.0));
    int32_t g, slots;
    assert_ok(gem_mapping_expert_gpu(m, 0, 1, &g));
    assert_int_equal(g, 1);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_mapping_expert_gpu(m, 0, 2, &g));
    assert_ok(gem_mapping_gpu_slots(m, 0, 0, &slots));
    assert_int_equal(slots, 2);
    /* a layer map filled directly (as policies and readers do) is checked for duplicates */
    gem_mapping_t *d = NULL;
    assert_ok(gem_mapping_create(&d, 2, 1, 2));
    assert_ok(gem__layer_map_add(&d->layers[0], 0, 1, 0.5));
    assert_ok(gem__layer_map_add(&d->layers[0], 1, 0, 1.0));
    assert_ok(gem__layer_map_add(&d->layers[0], 0, 1, 0.5));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_validate(d));
    assert_error_has("expert 0 placed twice on gpu 1");
    gem_mapping_destroy(d);
    gem_mapping_t *c = NULL;
    assert_ok(gem_mapping_set_policy_name(m, "hand"));
    assert_ok(gem_mapping_clone(m, &c));
    const char *name;
    assert_ok(gem_mapping_get_policy_name(c, &name));
    assert_string_equal(name, "hand");
    size_t n;
    assert_ok(gem_mapping_num_placements(c, 0, &n));
    assert_int_equal(n, 4);
    int32_t e;
    double w;
    assert_ok(gem_mapping_get(c, 0, 3, &e, &g, &w));
    assert_true(e == 2 && g == 1 && w == 0.4);
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_mapping_get(c, 0, 4, &e, &g, &w));
    assert_ok(gem_mapping_clear_layer(c, 0));
    assert_ok(gem_mapping_num_placements(c, 0, &n));
    assert_int_equal(n, 0);
    gem_mapping_destroy(c);
    gem_mapping_destroy(m);
    gem_mapping_destroy(NULL);
}

static void test_injected_allocation_failure(void **state)
{
    (void)state;
    /* Every allocation of a trace build may fail: each failure is reported, nothing leaks
     * (LeakSanitizer checks the latter in the sanitizer build). */
    for (long k = 1; k < 8; k++) {
        gem_trace_t *t = NULL;
        gem__inject_alloc_failure(k);
        gem_status_t st = gem_trace_create(&t, 3, 5);
        double row[5] = {0};
        if (st == GEM_OK) st = gem_trace_set(t, 40, 1, row, 5);
        gem__inject_alloc_failure(0);
        assert_true(st == GEM_OK || st == GEM_ERR_NO_MEMORY);
        if (st == GEM_ERR_NO_MEMORY) assert_error_has("out of memory");
        gem_trace_destroy(t);
    }
}

static void test_tiny_inputs_cannot_claim_huge_memory(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_trace_create(&t, 6000, 60000));
    assert_error_has("loads per step");
    assert_null(t);
    /* a 50-byte token record naming layer 6000 and expert 60000 */
    const char *rec = "{\"layer\":6000, \"experts\": [60000], \"token_idx\": 0}\n";
    assert_gem(GEM_ERR_LIMIT, gem_trace_import_buffer(GEM_IMPORT_TOKENS_JSONL, rec, strlen(rec),
                                                      NULL, &t, NULL));
    assert_null(t);
    /* a one-sample curve at a million tokens builds no million-entry lookup table, and still
     * answers by the SPEC */
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, 1));
    int64_t tok[1] = {1048575};
    double lat[1] = {500};
    assert_ok(gem_profile_set_curve(p, 0, 1, tok, lat, NULL));
    assert_null(p->gpus[0].curve.lut);
    double us;
    assert_ok(gem_profile_latency(p, 0, 12, &us));
    assert_true(us == 500);
    gem_profile_destroy(p);
}

static void test_rng_deterministic_and_uniform(void **state)
{
    (void)state;
    gem__rng a, b;
    gem__rng_seed(&a, 42);
    gem__rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) assert_true(gem__rng_next(&a) == gem__rng_next(&b));
    int hist[4] = {0};
    for (int i = 0; i < 4000; i++) hist[gem__rng_below(&a, 4)]++;
    for (int i = 0; i < 4; i++) assert_in_range(hist[i], 850, 1150);
    assert_int_equal(gem__nearest_rank(90, 10), 8);
    assert_int_equal(gem__nearest_rank(50, 1), 0);
    assert_int_equal(gem__nearest_rank(99, 100), 98);
    assert_int_equal(gem__nearest_rank(90, 11), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_status),
        cmocka_unit_test(test_error_message_is_thread_local_and_cleared),
        cmocka_unit_test(test_options_defaults_bounds_types),
        cmocka_unit_test(test_options_strings_arrays_clone),
        cmocka_unit_test(test_curve_step),
        cmocka_unit_test(test_curve_linear),
        cmocka_unit_test(test_curve_single_sample_and_large_tokens),
        cmocka_unit_test(test_curve_rejects_bad_samples),
        cmocka_unit_test(test_profile_speeds_clone_append),
        cmocka_unit_test(test_trace_build_record_validate),
        cmocka_unit_test(test_mapping_rules),
        cmocka_unit_test(test_injected_allocation_failure),
        cmocka_unit_test(test_tiny_inputs_cannot_claim_huge_memory),
        cmocka_unit_test(test_rng_deterministic_and_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
