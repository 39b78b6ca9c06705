/* test_classify.c - gem_classify_experts and its getters: the classes of hand-made traces,
 * exact heavy fractions, mean loads and co-activation counts (against a brute-force count),
 * the effect of the three options, and every error status. */
#include "testutil.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S20 20

/* One layer, four experts, 20 steps. Mean expert load per step: 32.5 normally, 80 in steps 3
 * and 7, 5 in steps 10 and 11.
 *  expert 0: 100 tokens, 5 in steps 10 and 11 (not > 5): heavy in 18/20 steps;
 *  expert 1: 10 tokens, 200 in steps 3 and 7 (2.5x the mean), 5 in steps 10 and 11: heavy in
 *            2/20 steps, both times together with expert 0;
 *  expert 2: 10 tokens: heavy only in steps 10 and 11 (10 > 5);
 *  expert 3: 10 tokens, 0 in steps 10 and 11: never heavy. */
static gem_trace_t *hand_trace(void)
{
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 1, 4));
    for (int s = 0; s < S20; s++) {
        double row[4] = {100, 10, 10, 10};
        if (s == 3 || s == 7) row[1] = 200;
        if (s == 10 || s == 11) row[0] = 5, row[1] = 5, row[3] = 0;
        assert_ok(gem_trace_set(t, s, 0, row, 4));
    }
    return t;
}

static void test_hand_classes(void **state)
{
    (void)state;
    gem_trace_t *t = hand_trace();
    gem_classification_t *c = NULL;
    assert_ok(gem_classify_experts(t, NULL, &c));

    int64_t S;
    int32_t L, E;
    assert_ok(gem_classification_shape(c, &S, &L, &E));
    assert_int_equal(S, 20);
    assert_int_equal(L, 1);
    assert_int_equal(E, 4);

    gem_expert_class_t k;
    double frac, mean, heavy_mean;
    /* expert 0: heavy in 18 steps -> consistent */
    assert_ok(gem_classification_get(c, 0, 0, &k, &frac, &mean, &heavy_mean));
    assert_int_equal(k, GEM_CLASS_CONSISTENT);
    assert_true(frac == 18.0 / 20.0);
    assert_true(fabs(mean - (18 * 100.0 + 2 * 5.0) / 20.0) < 1e-12);
    assert_true(fabs(heavy_mean - 100.0) < 1e-12);
    /* expert 1: heavy in 2 of 20 steps with 200 tokens -> temporal */
    assert_ok(gem_classification_get(c, 0, 1, &k, &frac, &mean, &heavy_mean));
    assert_int_equal(k, GEM_CLASS_TEMPORAL);
    assert_true(frac == 2.0 / 20.0);
    assert_true(fabs(mean - (16 * 10.0 + 2 * 200.0 + 2 * 5.0) / 20.0) < 1e-12);
    assert_true(fabs(heavy_mean - 200.0) < 1e-12);
    /* expert 2: heavy only in steps 10 and 11: 0.1 -> temporal */
    assert_ok(gem_classification_get(c, 0, 2, &k, &frac, NULL, &heavy_mean));
    assert_int_equal(k, GEM_CLASS_TEMPORAL);
    assert_true(frac == 2.0 / 20.0);
    assert_true(fabs(heavy_mean - 10.0) < 1e-12);
    /* expert 3: never heavy -> cold, mean heavy load 0 */
    assert_ok(gem_classification_get(c, 0, 3, &k, &frac, &mean, &heavy_mean));
    assert_int_equal(k, GEM_CLASS_COLD);
    assert_true(frac == 0.0);
    assert_true(fabs(mean - 18 * 10.0 / 20.0) < 1e-12);
    assert_true(heavy_mean == 0.0);
    /* every output may be NULL */
    assert_ok(gem_classification_get(c, 0, 0, NULL, NULL, NULL, NULL));

    int64_t n;
    assert_ok(gem_classification_coactivation(c, 0, 0, 1, &n));
    assert_int_equal(n, 2);
    assert_ok(gem_classification_coactivation(c, 0, 1, 0, &n));
    assert_int_equal(n, 2);
    assert_ok(gem_classification_coactivation(c, 0, 0, 0, &n));
    assert_int_equal(n, 18);
    assert_ok(gem_classification_coactivation(c, 0, 0, 2, &n));
    assert_int_equal(n, 0);
    assert_ok(gem_classification_coactivation(c, 0, 2, 2, &n));
    assert_int_equal(n, 2);
    assert_ok(gem_classification_coactivation(c, 0, 3, 3, &n));
    assert_int_equal(n, 0);
    gem_classification_destroy(c);
    gem_trace_destroy(t);
}

/* A temporal expert of the classic shape: 3x the mean load in 2 of 20 steps. */
static void test_temporal_burst(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 2, 8));
    for (int s = 0; s < S20; s++)
        for (int l = 0; l < 2; l++) {
            double row[8] = {40, 10, 10, 10, 10, 10, 10, 10};
            if (s == 5 || s == 15) row[4] = 3 * 20.0 + 10; /* well over 3x the mean */
            assert_ok(gem_trace_set(t, s, l, row, 8));
        }
    gem_classification_t *c = NULL;
    assert_ok(gem_classify_experts(t, NULL, &c));
    for (int l = 0; l < 2; l++)
        for (int e = 0; e < 8; e++) {
            gem_expert_class_t k;
            assert_ok(gem_classification_get(c, l, e, &k, NULL, NULL, NULL));
            assert_int_equal(k, e == 0 ? GEM_CLASS_CONSISTENT
                               : e == 4 ? GEM_CLASS_TEMPORAL : GEM_CLASS_COLD);
        }
    gem_classification_destroy(c);
    gem_trace_destroy(t);
}

/* Brute force: heavy flags per (s, l, e), then counts. */
static void test_counts_match_brute_force(void **state)
{
    (void)state;
    const int S = 37, L = 3, E = 23;
    gem_trace_t *t = tu_trace(S, L, E, 50, 99);
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_double(o, GEM_OPT_HEAVY_FACTOR, 1.3));
    gem_classification_t *c = NULL;
    assert_ok(gem_classify_experts(t, o, &c));
    uint8_t *heavy = calloc((size_t)S * L * E, 1);
    double row[23];
    for (int s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            assert_ok(gem_trace_get(t, s, l, row, E));
            double sum = 0;
            for (int e = 0; e < E; e++) sum += row[e];
            for (int e = 0; e < E; e++) heavy[((size_t)s * L + l) * E + e] = row[e] > 1.3 * sum / E;
        }
    for (int l = 0; l < L; l++)
        for (int a = 0; a < E; a++) {
            int64_t ha = 0;
            double load = 0, hload = 0;
            for (int s = 0; s < S; s++) {
                assert_ok(gem_trace_get(t, s, l, row, E));
                load += row[a];
                if (heavy[((size_t)s * L + l) * E + a]) ha++, hload += row[a];
            }
            gem_expert_class_t k;
            double frac, mean, hmean;
            assert_ok(gem_classification_get(c, l, a, &k, &frac, &mean, &hmean));
            assert_true(frac == (double)ha / S);
            assert_true(fabs(mean - load / S) <= 1e-12 * (1 + load));
            assert_true(fabs(hmean - (ha ? hload / (double)ha : 0)) <= 1e-12 * (1 + hload));
            gem_expert_class_t want = frac >= 0.5 ? GEM_CLASS_CONSISTENT
                                      : (ha > 0 && frac >= 0.05) ? GEM_CLASS_TEMPORAL
                                                                 : GEM_CLASS_COLD;
            assert_int_equal(k, want);
            for (int b = 0; b < E; b++) {
                int64_t both = 0, got;
                for (int s = 0; s < S; s++)
                    both += heavy[((size_t)s * L + l) * E + a] && heavy[((size_t)s * L + l) * E + b];
                assert_ok(gem_classification_coactivation(c, l, a, b, &got));
                assert_int_equal(got, both);
            }
        }
    free(heavy);
    gem_classification_destroy(c);
    gem_options_destroy(o);
    gem_trace_destroy(t);
}

static gem_expert_class_t class_of(const gem_trace_t *t, const gem_options_t *o, int e)
{
    gem_classification_t *c = NULL;
    assert_ok(gem_classify_experts(t, o, &c));
    gem_expert_class_t k;
    assert_ok(gem_classification_get(c, 0, e, &k, NULL, NULL, NULL));
    gem_classification_destroy(c);
    return k;
}

static void test_options_move_thresholds(void **state)
{
    (void)state;
    gem_trace_t *t = hand_trace();
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    /* a higher bar for heavy: in steps 3 and 7 the mean is 80, so factor 3 (240) leaves
     * expert 1's 200 tokens light and it turns cold; expert 0 stays heavy where the mean is
     * 32.5 (16 steps) */
    assert_ok(gem_options_set_double(o, GEM_OPT_HEAVY_FACTOR, 3.0));
    assert_int_equal(class_of(t, o, 1), GEM_CLASS_COLD);
    assert_int_equal(class_of(t, o, 0), GEM_CLASS_CONSISTENT); /* 100 > 3 x 32.5 */
    assert_ok(gem_options_set_double(o, GEM_OPT_HEAVY_FACTOR, 1.0));
    /* consistent needs 95% of the steps: expert 0 (90%) becomes temporal */
    assert_ok(gem_options_set_double(o, GEM_OPT_CONSISTENT_MIN, 0.95));
    assert_int_equal(class_of(t, o, 0), GEM_CLASS_TEMPORAL);
    /* temporal needs 20%: expert 1 (10%) becomes cold */
    assert_ok(gem_options_set_double(o, GEM_OPT_TEMPORAL_MIN, 0.2));
    assert_int_equal(class_of(t, o, 1), GEM_CLASS_COLD);
    assert_int_equal(class_of(t, o, 0), GEM_CLASS_TEMPORAL);
    /* temporal_min 0 still leaves a never-heavy expert cold */
    assert_ok(gem_options_set_double(o, GEM_OPT_TEMPORAL_MIN, 0.0));
    assert_int_equal(class_of(t, o, 3), GEM_CLASS_COLD);
    assert_int_equal(class_of(t, o, 1), GEM_CLASS_TEMPORAL);
    /* the bounds are inclusive: heavy in exactly 10% with temporal_min 0.1 is temporal, and
     * exactly 90% with consistent_min 0.9 consistent */
    assert_ok(gem_options_set_double(o, GEM_OPT_TEMPORAL_MIN, 0.1));
    assert_ok(gem_options_set_double(o, GEM_OPT_CONSISTENT_MIN, 0.9));
    assert_int_equal(class_of(t, o, 1), GEM_CLASS_TEMPORAL);
    assert_int_equal(class_of(t, o, 0), GEM_CLASS_CONSISTENT);
    gem_options_destroy(o);
    gem_trace_destroy(t);
}

static void test_zero_step_has_no_heavy(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 1, 3));
    double zero[3] = {0, 0, 0}, one[3] = {0, 0, 9};
    assert_ok(gem_trace_set(t, 0, 0, zero, 3));
    assert_ok(gem_trace_set(t, 1, 0, one, 3));
    gem_classification_t *c = NULL;
    assert_ok(gem_classify_experts(t, NULL, &c));
    double frac;
    int64_t n;
    assert_ok(gem_classification_get(c, 0, 2, NULL, &frac, NULL, NULL));
    assert_true(frac == 0.5);
    assert_ok(gem_classification_get(c, 0, 0, NULL, &frac, NULL, NULL));
    assert_true(frac == 0.0);
    assert_ok(gem_classification_coactivation(c, 0, 2, 2, &n));
    assert_int_equal(n, 1);
    gem_classification_destroy(c);
    gem_trace_destroy(t);
}

static void test_incomplete_trace(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    gem_classification_t *c = NULL;
    assert_ok(gem_trace_create(&t, 2, 4));
    assert_gem(GEM_ERR_INCOMPLETE, gem_classify_experts(t, NULL, &c)); /* no steps */
    double row[4] = {1, 2, 3, 4};
    assert_ok(gem_trace_set(t, 0, 0, row, 4));
    assert_ok(gem_trace_set(t, 1, 0, row, 4));
    assert_ok(gem_trace_set(t, 1, 1, row, 4));
    assert_gem(GEM_ERR_INCOMPLETE, gem_classify_experts(t, NULL, &c));
    assert_error_has("step 0 layer 1");
    assert_null(c);
    assert_ok(gem_trace_set(t, 0, 1, row, 4));
    assert_ok(gem_classify_experts(t, NULL, &c));
    assert_non_null(c);
    gem_classification_destroy(c);
    gem_trace_destroy(t);
}

static void test_bad_options(void **state)
{
    (void)state;
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_HEAVY_FACTOR, 0.0));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_HEAVY_FACTOR, -1.0));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_CONSISTENT_MIN, 0.0));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_CONSISTENT_MIN, 1.5));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_TEMPORAL_MIN, -0.1));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_TEMPORAL_MIN, NAN));
    /* each value alone is fine, together they contradict */
    assert_ok(gem_options_set_double(o, GEM_OPT_CONSISTENT_MIN, 0.2));
    assert_ok(gem_options_set_double(o, GEM_OPT_TEMPORAL_MIN, 0.3));
    gem_trace_t *t = hand_trace();
    gem_classification_t *c = NULL;
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_classify_experts(t, o, &c));
    assert_error_has("temporal_min");
    assert_null(c);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_classify_experts(NULL, NULL, &c));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_classify_experts(t, NULL, NULL));
    gem_options_destroy(o);
    gem_trace_destroy(t);
}

static void test_getters_out_of_range(void **state)
{
    (void)state;
    gem_trace_t *t = hand_trace();
    gem_classification_t *c = NULL;
    assert_ok(gem_classify_experts(t, NULL, &c));
    gem_expert_class_t k = GEM_CLASS_TEMPORAL;
    int64_t n = 77;
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_classification_get(c, 1, 0, &k, NULL, NULL, NULL));
    assert_error_has("layer 1");
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_classification_get(c, -1, 0, &k, NULL, NULL, NULL));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_classification_get(c, 0, 4, &k, NULL, NULL, NULL));
    assert_error_has("expert 4");
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_classification_get(c, 0, -1, &k, NULL, NULL, NULL));
    assert_int_equal(k, GEM_CLASS_TEMPORAL); /* untouched */
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_classification_coactivation(c, 0, 0, 4, &n));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_classification_coactivation(c, 0, -2, 0, &n));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_classification_coactivation(c, 3, 0, 0, &n));
    assert_int_equal(n, 77);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_classification_coactivation(c, 0, 0, 0, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_classification_get(NULL, 0, 0, &k, NULL, NULL, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_classification_coactivation(NULL, 0, 0, 0, &n));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_classification_shape(NULL, NULL, NULL, NULL));
    assert_ok(gem_classification_shape(c, NULL, NULL, NULL));
    gem_classification_destroy(c);
    gem_classification_destroy(NULL);
    gem_trace_destroy(t);
}

static void test_class_names(void **state)
{
    (void)state;
    assert_string_equal(gem_class_name(GEM_CLASS_COLD), "cold");
    assert_string_equal(gem_class_name(GEM_CLASS_CONSISTENT), "consistent");
    assert_string_equal(gem_class_name(GEM_CLASS_TEMPORAL), "temporal");
    assert_string_equal(gem_class_name((gem_expert_class_t)3), "unknown");
    assert_string_equal(gem_class_name((gem_expert_class_t)-1), "unknown");
}

/* Co-activation counters grow as E^2 x L: absurd shapes are refused, not allocated. */
static void test_limit(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 1, 65536));
    double *row = calloc(65536, sizeof *row);
    row[0] = 1;
    assert_ok(gem_trace_set(t, 0, 0, row, 65536));
    gem_classification_t *c = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_classify_experts(t, NULL, &c));
    assert_error_has("co-activation");
    assert_null(c);
    free(row);
    gem_trace_destroy(t);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    gem_trace_t *t = tu_trace(10, 3, 6, 20, 5);
    int failed = 0;
    for (long n = 1; n < 64; n++) {
        gem_classification_t *c = NULL;
        gem__inject_alloc_failure(n);
        gem_status_t st = gem_classify_experts(t, NULL, &c);
        gem__inject_alloc_failure(0);
        if (st == GEM_OK) {
            assert_non_null(c);
            gem_classification_destroy(c);
            break;
        }
        assert_int_equal(st, GEM_ERR_NO_MEMORY);
        assert_null(c);
        failed++;
    }
    assert_true(failed > 0);
    gem_trace_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_classes),
        cmocka_unit_test(test_temporal_burst),
        cmocka_unit_test(test_counts_match_brute_force),
        cmocka_unit_test(test_options_move_thresholds),
        cmocka_unit_test(test_zero_step_has_no_heavy),
        cmocka_unit_test(test_incomplete_trace),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_getters_out_of_range),
        cmocka_unit_test(test_class_names),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
