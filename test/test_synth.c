/* test_synth.c - gem_trace_synthesize: shape, determinism, totals, skew and temporal groups. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static gem_trace_t *synth(int64_t S, int L, int E, int64_t N, double skew, int64_t seed)
{
    gem_options_t *o = NULL;
    gem_trace_t *t = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_SEED, seed));
    assert_ok(gem_trace_synthesize(S, L, E, N, skew, o, &t));
    gem_options_destroy(o);
    return t;
}

/* All loads of a trace, [S][L][E]. */
static double *loads_of(const gem_trace_t *t)
{
    int64_t S;
    int32_t L, E;
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    double *v = malloc((size_t)(S * L * E) * sizeof *v);
    assert_non_null(v);
    for (int64_t s = 0; s < S; s++)
        for (int32_t l = 0; l < L; l++)
            assert_ok(gem_trace_get(t, s, l, v + (s * L + l) * E, (size_t)E));
    return v;
}

static void test_shape_complete_and_totals(void **state)
{
    (void)state;
    gem_trace_t *t = synth(37, 3, 20, 300, 0.7, 5);
    int64_t S;
    int32_t L, E;
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    assert_int_equal(S, 37);
    assert_int_equal(L, 3);
    assert_int_equal(E, 20);
    assert_ok(gem_trace_validate(t));
    double *v = loads_of(t);
    for (int64_t row = 0; row < S * L; row++) {
        double sum = 0;
        for (int32_t e = 0; e < E; e++) {
            double x = v[row * E + e];
            assert_true(x >= 0 && x == floor(x)); /* whole token counts */
            sum += x;
        }
        assert_true(sum == 300.0);
    }
    free(v);
    gem_trace_destroy(t);
}

static void test_deterministic_for_a_seed(void **state)
{
    (void)state;
    gem_trace_t *a = synth(50, 4, 16, 256, 0.8, 42);
    gem_trace_t *b = synth(50, 4, 16, 256, 0.8, 42);
    gem_trace_t *c = synth(50, 4, 16, 256, 0.8, 43);
    double *va = loads_of(a), *vb = loads_of(b), *vc = loads_of(c);
    size_t n = 50 * 4 * 16;
    assert_memory_equal(va, vb, n * sizeof *va);
    assert_true(memcmp(va, vc, n * sizeof *va) != 0);

    /* NULL options mean the default seed, 1. */
    gem_trace_t *d = NULL, *e = synth(10, 2, 8, 64, 0.5, 1);
    assert_ok(gem_trace_synthesize(10, 2, 8, 64, 0.5, NULL, &d));
    double *vd = loads_of(d), *ve = loads_of(e);
    assert_memory_equal(vd, ve, 10 * 2 * 8 * sizeof *vd);
    free(va); free(vb); free(vc); free(vd); free(ve);
    gem_trace_destroy(a); gem_trace_destroy(b); gem_trace_destroy(c);
    gem_trace_destroy(d); gem_trace_destroy(e);
}

static void test_skew_zero_is_uniform(void **state)
{
    (void)state;
    const int64_t S = 200, N = 800;
    const int L = 2, E = 8;
    gem_trace_t *t = synth(S, L, E, N, 0.0, 3);
    double *v = loads_of(t);
    for (int l = 0; l < L; l++) {
        for (int e = 0; e < E; e++) {
            double sum = 0;
            for (int64_t s = 0; s < S; s++) sum += v[(s * L + l) * E + e];
            /* expected 20000, binomial sd ~ 132: 3% is over 4 sd */
            double expect = (double)(S * N) / E;
            assert_true(fabs(sum - expect) < 0.03 * expect);
        }
    }
    free(v);
    gem_trace_destroy(t);
}

static void test_skew_one_has_heavy_experts(void **state)
{
    (void)state;
    const int64_t S = 100, N = 1024;
    const int L = 4, E = 32;
    gem_trace_t *t = synth(S, L, E, N, 1.0, 9);
    double *v = loads_of(t);
    double mean = (double)N / E;
    int argmax_differs = 0, prev = -1;
    for (int l = 0; l < L; l++) {
        double best = 0, least = INFINITY;
        int arg = -1;
        for (int e = 0; e < E; e++) {
            double sum = 0;
            for (int64_t s = 0; s < S; s++) sum += v[(s * L + l) * E + e];
            sum /= (double)S;
            if (sum > best) { best = sum; arg = e; }
            if (sum < least) least = sum;
        }
        assert_true(best > 3.0 * mean);   /* a consistently popular expert */
        assert_true(least < 0.5 * mean);  /* and a cold one */
        if (prev >= 0 && arg != prev) argmax_differs = 1;
        prev = arg;
    }
    assert_true(argmax_differs); /* layers rank their experts independently */
    free(v);
    gem_trace_destroy(t);
}

/* Experts of a temporal group are heavy (load > the row mean) in the same steps. */
static void test_temporal_experts_coactivate(void **state)
{
    (void)state;
    const int64_t S = 400, N = 2048;
    const int L = 3, E = 32;
    gem_trace_t *t = synth(S, L, E, N, 1.0, 11);
    double *v = loads_of(t);
    double mean = (double)N / E;
    for (int l = 0; l < L; l++) {
        /* heavy[e][s] */
        unsigned char *heavy = calloc((size_t)(E * S), 1);
        int count[32] = {0};
        for (int e = 0; e < E; e++)
            for (int64_t s = 0; s < S; s++)
                if (v[(s * L + l) * E + e] > mean) { heavy[e * S + s] = 1; count[e]++; }
        /* Temporal candidates: heavy in 8%..45% of the steps. Look for pairs heavy together far
         * more often than independence predicts. */
        int temporal = 0, pairs = 0;
        for (int a = 0; a < E; a++) {
            double fa = (double)count[a] / (double)S;
            if (fa < 0.08 || fa > 0.45) continue;
            temporal++;
            for (int b = a + 1; b < E; b++) {
                double fb = (double)count[b] / (double)S;
                if (fb < 0.08 || fb > 0.45) continue;
                int both = 0;
                for (int64_t s = 0; s < S; s++) both += heavy[a * S + s] & heavy[b * S + s];
                double indep = fa * fb * (double)S;
                if (both > 3.0 * indep && both > 0.6 * (count[a] < count[b] ? count[a] : count[b]))
                    pairs++;
            }
        }
        assert_true(temporal >= 2);
        assert_true(pairs >= 1);
        free(heavy);
    }
    free(v);

    /* With the library's classification, when it is built: every layer has consistent and
     * temporal experts, and some temporal pair co-activates in most of its heavy steps. */
    gem_classification_t *cls = NULL;
    gem_status_t st = gem_classify_experts(t, NULL, &cls);
    if (st == GEM_ERR_NOT_SUPPORTED) {
        gem_trace_destroy(t);
        skip();
    }
    assert_ok(st);
    for (int l = 0; l < L; l++) {
        int consistent = 0, temporal = 0, coactive = 0;
        int tmp[32];
        for (int e = 0; e < E; e++) {
            gem_expert_class_t c;
            assert_ok(gem_classification_get(cls, l, e, &c, NULL, NULL, NULL));
            if (c == GEM_CLASS_CONSISTENT) consistent++;
            if (c == GEM_CLASS_TEMPORAL) tmp[temporal++] = e;
        }
        for (int i = 0; i < temporal; i++)
            for (int j = i + 1; j < temporal; j++) {
                int64_t both, ha, hb;
                assert_ok(gem_classification_coactivation(cls, l, tmp[i], tmp[j], &both));
                assert_ok(gem_classification_coactivation(cls, l, tmp[i], tmp[i], &ha));
                assert_ok(gem_classification_coactivation(cls, l, tmp[j], tmp[j], &hb));
                if (both * 10 > 6 * (ha < hb ? ha : hb)) coactive++;
            }
        assert_true(consistent >= 1);
        assert_true(temporal >= 2);
        assert_true(coactive >= 1);
    }
    gem_classification_destroy(cls);
    gem_trace_destroy(t);
}

static void test_small_expert_counts(void **state)
{
    (void)state;
    for (int E = 1; E <= 4; E++) {
        gem_trace_t *t = synth(5, 2, E, 17, 1.0, 2);
        double *v = loads_of(t);
        for (int row = 0; row < 10; row++) {
            double sum = 0;
            for (int e = 0; e < E; e++) sum += v[row * E + e];
            assert_true(sum == 17.0);
        }
        free(v);
        gem_trace_destroy(t);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    gem_trace_t *t = (gem_trace_t *)(uintptr_t)0x1; /* must stay untouched */
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_synthesize(10, 2, 8, 64, 0.5, NULL, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_synthesize(0, 2, 8, 64, 0.5, NULL, &t));
    assert_error_has("steps");
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_synthesize(10, 0, 8, 64, 0.5, NULL, &t));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_synthesize(10, 2, -1, 64, 0.5, NULL, &t));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_synthesize(10, 2, 8, 0, 0.5, NULL, &t));
    assert_error_has("tokens_per_step");
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_synthesize(10, 2, 8, 64, -0.1, NULL, &t));
    assert_error_has("skew");
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_synthesize(10, 2, 8, 64, 1.5, NULL, &t));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_synthesize(10, 2, 8, 64, NAN, NULL, &t));
    assert_gem(GEM_ERR_LIMIT,
               gem_trace_synthesize(10, 2, GEM_MAX_EXPERTS + 1, 64, 0.5, NULL, &t));
    assert_gem(GEM_ERR_LIMIT, gem_trace_synthesize(GEM_MAX_STEPS + 1LL, 2, 8, 64, 0.5, NULL, &t));
    assert_gem(GEM_ERR_LIMIT,
               gem_trace_synthesize(10, 2, 8, GEM_MAX_TOKENS + 1LL, 0.5, NULL, &t));
    /* each size allowed alone, but far too much together */
    assert_gem(GEM_ERR_LIMIT, gem_trace_synthesize(GEM_MAX_STEPS, 1024, 256, 1, 0.5, NULL, &t));
    assert_error_has("loads");
    assert_gem(GEM_ERR_LIMIT, gem_trace_synthesize(1000000, 64, 8, 4096, 0.5, NULL, &t));
    assert_error_has("draws");
    assert_true(t == (gem_trace_t *)(uintptr_t)0x1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_complete_and_totals),
        cmocka_unit_test(test_deterministic_for_a_seed),
        cmocka_unit_test(test_skew_zero_is_uniform),
        cmocka_unit_test(test_skew_one_has_heavy_experts),
        cmocka_unit_test(test_temporal_experts_coactivate),
        cmocka_unit_test(test_small_expert_counts),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
