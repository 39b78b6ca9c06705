/* test_remap.c - migration-aware re-mapping (gem_remap) and drift (gem_drift), the
 * experimental part of gem.h: budgets of moves and bytes are respected (counted here
 * independently from the mappings), K = 0 keeps the current mapping, the recommendation
 * follows GEM_OPT_MIN_GAIN, a re-map after drift recovers most of what an unconstrained one
 * gains, drift of a mapping on its own trace is 1, and the errors. */
#define GEM_EXPERIMENTAL
#include "testutil.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A trace whose hot experts are `hot` (loads 150-250), the rest 5-25. */
static gem_trace_t *hot_trace(int64_t S, int L, int E, const int *hot, int nhot, uint64_t seed)
{
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, L, E));
    double *row = malloc(sizeof *row * (size_t)E);
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            for (int e = 0; e < E; e++) row[e] = 5 + (double)(tu_rand(&seed) % 21);
            for (int i = 0; i < nhot; i++) row[(hot[i] + l) % E] = 150 + (double)(tu_rand(&seed) % 101);
            assert_ok(gem_trace_set(t, s, l, row, (size_t)E));
        }
    free(row);
    return t;
}

typedef struct {
    gem_profile_t *p;
    gem_trace_t *built, *window;
    gem_mapping_t *cur;
    int G, L, E;
} fixture;

static void fixture_make(fixture *f)
{
    f->G = 4, f->L = 3, f->E = 16;
    f->p = tu_profile(f->G, (double[]){1, 1, 1.2, 1.4}, 16, 32, 10, 1);
    /* routing drifts: the hot experts change */
    f->built = hot_trace(20, f->L, f->E, (int[]){0, 1, 2, 3}, 4, 1);
    f->window = hot_trace(20, f->L, f->E, (int[]){4, 8, 12, 13}, 4, 2);
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_THREADS, 1));
    f->cur = NULL;
    assert_ok(gem_compute_mapping(f->p, f->built, GEM_POLICY_GEM, o, NULL, &f->cur));
    gem_options_destroy(o);
}

static void fixture_free(fixture *f)
{
    gem_mapping_destroy(f->cur);
    gem_trace_destroy(f->built);
    gem_trace_destroy(f->window);
    gem_profile_destroy(f->p);
}

static gem_options_t *remap_opts(int64_t K, int64_t bytes, int64_t max_bytes, double min_gain)
{
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_THREADS, 1));
    assert_ok(gem_options_set_int(o, GEM_OPT_MAX_MOVES, K));
    assert_ok(gem_options_set_int(o, GEM_OPT_EXPERT_BYTES, bytes));
    assert_ok(gem_options_set_int(o, GEM_OPT_MAX_MOVE_BYTES, max_bytes));
    assert_ok(gem_options_set_double(o, GEM_OPT_MIN_GAIN, min_gain));
    return o;
}

/* Experts whose GPU sets differ, and copies on GPUs that did not hold them, counted from the
 * two mappings alone. */
static void count_moves(const gem_mapping_t *a, const gem_mapping_t *b, int G, int L, int E,
                        int64_t *moves, int64_t *fresh)
{
    *moves = *fresh = 0;
    int *in_a = calloc((size_t)E * G, sizeof *in_a), *in_b = calloc((size_t)E * G, sizeof *in_b);
    for (int l = 0; l < L; l++) {
        memset(in_a, 0, sizeof *in_a * (size_t)E * G);
        memset(in_b, 0, sizeof *in_b * (size_t)E * G);
        size_t n;
        int32_t e, g;
        assert_ok(gem_mapping_num_placements(a, l, &n));
        for (size_t i = 0; i < n; i++) {
            assert_ok(gem_mapping_get(a, l, i, &e, &g, NULL));
            in_a[e * G + g] = 1;
        }
        assert_ok(gem_mapping_num_placements(b, l, &n));
        for (size_t i = 0; i < n; i++) {
            assert_ok(gem_mapping_get(b, l, i, &e, &g, NULL));
            in_b[e * G + g] = 1;
        }
        for (e = 0; e < E; e++) {
            int differ = 0;
            for (g = 0; g < G; g++) {
                if (in_a[e * G + g] != in_b[e * G + g]) differ = 1;
                if (in_b[e * G + g] && !in_a[e * G + g]) (*fresh)++;
            }
            *moves += differ;
        }
    }
    free(in_a);
    free(in_b);
}

static void test_k_zero_keeps_current(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    gem_options_t *o = remap_opts(0, 0, -1, 0.0);
    gem_remap_result_t *res = NULL;
    assert_ok(gem_remap(f.p, f.window, f.cur, o, &res));
    double c, r, u;
    int64_t mv;
    uint64_t by;
    int32_t rec;
    assert_ok(gem_remap_result_get(res, &c, &r, &u, &mv, &by, &rec));
    assert_true(c == r);
    assert_int_equal(mv, 0);
    assert_true(by == 0);
    assert_int_equal(rec, 0);
    assert_true(u < c); /* there was something to gain */
    const gem_mapping_t *m = NULL;
    assert_ok(gem_remap_result_mapping(res, &m));
    char *a = NULL, *b = NULL;
    assert_ok(gem_mapping_to_string(m, &a));
    assert_ok(gem_mapping_to_string(f.cur, &b));
    assert_string_equal(a, b); /* the very same placements, in the same order */
    gem_free(a);
    gem_free(b);
    gem_remap_result_destroy(res);
    gem_options_destroy(o);
    fixture_free(&f);
}

static void test_respects_move_budget(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    double prev = INFINITY, unc = 0, cur = 0;
    for (int64_t K = 1; K <= 12; K++) {
        gem_options_t *o = remap_opts(K, 0, -1, 0.0);
        gem_remap_result_t *res = NULL;
        assert_ok(gem_remap(f.p, f.window, f.cur, o, &res));
        double c, r, u;
        int64_t mv;
        assert_ok(gem_remap_result_get(res, &c, &r, &u, &mv, NULL, NULL));
        const gem_mapping_t *m = NULL;
        assert_ok(gem_remap_result_mapping(res, &m));
        assert_ok(gem_mapping_validate(m));
        int64_t moves, fresh;
        count_moves(f.cur, m, f.G, f.L, f.E, &moves, &fresh);
        assert_int_equal(moves, mv);
        assert_true(mv <= K);
        /* swaps keep every GPU's slot count */
        for (int l = 0; l < f.L; l++)
            for (int g = 0; g < f.G; g++) {
                int32_t x, y;
                assert_ok(gem_mapping_gpu_slots(m, l, g, &x));
                assert_ok(gem_mapping_gpu_slots(f.cur, l, g, &y));
                assert_int_equal(x, y);
            }
        /* the reported latency is the mapping's, and never worse than keeping the current */
        gem_report_t *rep = NULL;
        assert_ok(gem_evaluate(f.p, f.window, m, NULL, &rep));
        double mean;
        assert_ok(gem_report_get(rep, GEM_METRIC_MEAN, &mean));
        gem_report_destroy(rep);
        assert_true(mean == r);
        assert_true(r <= c);
        assert_true(r <= prev * (1 + 1e-12)); /* a larger budget does no worse (greedy) */
        prev = r;
        unc = u, cur = c;
        gem_remap_result_destroy(res);
        gem_options_destroy(o);
    }
    /* most of the unconstrained gain is recovered with 12 of 48 experts moved */
    assert_true(cur - prev >= 0.6 * (cur - unc));
    fixture_free(&f);
}

static void test_respects_byte_budget(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    for (int64_t budget = 0; budget <= 1000; budget += 250) {
        gem_options_t *o = remap_opts(-1, 100, budget, 0.0);
        gem_remap_result_t *res = NULL;
        assert_ok(gem_remap(f.p, f.window, f.cur, o, &res));
        int64_t mv;
        uint64_t by;
        assert_ok(gem_remap_result_get(res, NULL, NULL, NULL, &mv, &by, NULL));
        const gem_mapping_t *m = NULL;
        assert_ok(gem_remap_result_mapping(res, &m));
        int64_t moves, fresh;
        count_moves(f.cur, m, f.G, f.L, f.E, &moves, &fresh);
        assert_int_equal(moves, mv);
        assert_true(by == (uint64_t)fresh * 100);
        assert_true(by <= (uint64_t)budget);
        if (budget == 0) assert_int_equal(mv, 0);
        if (budget >= 500) assert_true(mv > 0);
        gem_remap_result_destroy(res);
        gem_options_destroy(o);
    }
    fixture_free(&f);
}

static void test_recommend_gate(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    double gains[3] = {0.0, 0.05, 1.0};
    double gain = 0;
    for (int i = 0; i < 3; i++) {
        gem_options_t *o = remap_opts(6, 0, -1, gains[i]);
        gem_remap_result_t *res = NULL;
        assert_ok(gem_remap(f.p, f.window, f.cur, o, &res));
        double c, r;
        int64_t mv;
        int32_t rec;
        assert_ok(gem_remap_result_get(res, &c, &r, NULL, &mv, NULL, &rec));
        gain = (c - r) / c;
        assert_true(mv > 0 && gain > 0.05 && gain < 1);
        assert_int_equal(rec, gain >= gains[i]);
        gem_remap_result_destroy(res);
        gem_options_destroy(o);
    }
    assert_true(gain > 0);
    /* on the trace it was built from, gem has nothing left to gain: no recommendation at the
     * default threshold */
    gem_options_t *o = remap_opts(-1, 0, -1, 0.01);
    gem_remap_result_t *res = NULL;
    assert_ok(gem_remap(f.p, f.built, f.cur, o, &res));
    double c, r;
    int32_t rec;
    assert_ok(gem_remap_result_get(res, &c, &r, NULL, NULL, NULL, &rec));
    assert_true(r <= c);
    assert_true((c - r) / c < 0.01);
    assert_int_equal(rec, 0);
    gem_remap_result_destroy(res);
    gem_options_destroy(o);
    fixture_free(&f);
}

/* A current mapping with replicas: copies move with their shares, the result stays valid. */
static void test_replicated_current(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    gem_options_t *o = remap_opts(4, 0, -1, 0.0);
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 4));
    gem_mapping_t *rep = NULL;
    assert_ok(gem_compute_mapping(f.p, f.built, GEM_POLICY_EPLB, o, NULL, &rep));
    gem_remap_result_t *res = NULL;
    assert_ok(gem_remap(f.p, f.window, rep, o, &res));
    const gem_mapping_t *m = NULL;
    assert_ok(gem_remap_result_mapping(res, &m));
    assert_ok(gem_mapping_validate(m));
    int64_t mv, moves, fresh;
    double c, r;
    assert_ok(gem_remap_result_get(res, &c, &r, NULL, &mv, NULL, NULL));
    count_moves(rep, m, f.G, f.L, f.E, &moves, &fresh);
    assert_int_equal(moves, mv);
    assert_true(mv <= 4 && r <= c);
    gem_remap_result_destroy(res);
    gem_mapping_destroy(rep);
    gem_options_destroy(o);
    fixture_free(&f);
}

static void test_drift(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    double ratio;
    assert_ok(gem_drift(f.p, f.built, f.built, f.cur, &ratio));
    assert_true(ratio == 1.0);
    assert_ok(gem_drift(f.p, f.built, f.window, f.cur, &ratio));
    assert_true(ratio > 1.02);
    /* the ratio is the two means' */
    double a, b;
    gem_report_t *r = NULL;
    assert_ok(gem_evaluate(f.p, f.built, f.cur, NULL, &r));
    assert_ok(gem_report_get(r, GEM_METRIC_MEAN, &a));
    gem_report_destroy(r);
    assert_ok(gem_evaluate(f.p, f.window, f.cur, NULL, &r));
    assert_ok(gem_report_get(r, GEM_METRIC_MEAN, &b));
    gem_report_destroy(r);
    assert_true(ratio == b / a);
    /* an all-zero trace on a profile without fixed costs: no ratio, unless both are zero */
    gem_profile_t *p0 = tu_profile(4, NULL, 16, 4, 10, 0);
    gem_trace_t *z = NULL;
    assert_ok(gem_trace_create(&z, f.L, f.E));
    double *row = calloc((size_t)f.E, sizeof *row);
    for (int l = 0; l < f.L; l++) assert_ok(gem_trace_set(z, 0, l, row, (size_t)f.E));
    free(row);
    assert_ok(gem_drift(p0, z, z, f.cur, &ratio));
    assert_true(ratio == 1.0);
    assert_gem(GEM_ERR_INVALID_INPUT, gem_drift(p0, z, f.window, f.cur, &ratio));
    assert_error_has("built_on");
    gem_trace_destroy(z);
    gem_profile_destroy(p0);
    fixture_free(&f);
}

static void test_errors(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    gem_remap_result_t *res = NULL;
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_remap(NULL, f.window, f.cur, NULL, &res));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_remap(f.p, f.window, f.cur, NULL, NULL));
    /* bytes budget without the bytes of an expert */
    gem_options_t *o = remap_opts(-1, 0, 1000, 0.01);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_remap(f.p, f.window, f.cur, o, &res));
    assert_error_has("GEM_OPT_EXPERT_BYTES");
    assert_null(res);
    /* shapes */
    gem_trace_t *t5 = tu_trace(3, f.L, f.E + 1, 10, 1);
    assert_gem(GEM_ERR_SHAPE_MISMATCH, gem_remap(f.p, t5, f.cur, NULL, &res));
    double ratio;
    assert_gem(GEM_ERR_SHAPE_MISMATCH, gem_drift(f.p, f.built, t5, f.cur, &ratio));
    assert_error_has("window");
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_drift(f.p, f.built, f.window, f.cur, NULL));
    /* an incomplete window */
    gem_trace_t *inc = NULL;
    assert_ok(gem_trace_create(&inc, f.L, f.E));
    double *row = calloc((size_t)f.E, sizeof *row);
    assert_ok(gem_trace_set(inc, 0, 0, row, (size_t)f.E));
    free(row);
    assert_gem(GEM_ERR_INCOMPLETE, gem_remap(f.p, inc, f.cur, NULL, &res));
    /* an invalid current mapping */
    gem_mapping_t *bad = NULL;
    assert_ok(gem_mapping_create(&bad, f.G, f.L, f.E));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_remap(f.p, f.window, bad, NULL, &res));
    assert_error_has("current");
    assert_null(res);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_remap_result_get(NULL, NULL, NULL, NULL, NULL, NULL, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_remap_result_mapping(NULL, NULL));
    gem_remap_result_destroy(NULL);
    gem_mapping_destroy(bad);
    gem_trace_destroy(inc);
    gem_trace_destroy(t5);
    gem_options_destroy(o);
    fixture_free(&f);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    gem_options_t *o = remap_opts(5, 100, 2000, 0.01);
    int failed = 0;
    for (long n = 1; n < 300; n += 3) {
        gem_remap_result_t *res = NULL;
        gem__inject_alloc_failure(n);
        gem_status_t s = gem_remap(f.p, f.window, f.cur, o, &res);
        gem__inject_alloc_failure(0);
        assert_true(s == GEM_OK || s == GEM_ERR_NO_MEMORY);
        if (s) {
            failed++;
            assert_null(res);
            assert_error_has("memory");
        }
        gem_remap_result_destroy(res);
    }
    assert_true(failed > 10);
    gem_options_destroy(o);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_k_zero_keeps_current),
        cmocka_unit_test(test_respects_move_budget),
        cmocka_unit_test(test_respects_byte_budget),
        cmocka_unit_test(test_recommend_gate),
        cmocka_unit_test(test_replicated_current),
        cmocka_unit_test(test_drift),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
