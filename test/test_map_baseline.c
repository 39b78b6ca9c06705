/* test_map_baseline.c - gem_compute_mapping's checks and dispatch, and the baseline policies
 * (contiguous, round_robin, balanced, speed_aware, eplb): valid mappings with the right slot
 * counts, exact layouts, hand-checked greedy choices, replicas, determinism across thread
 * counts, and the error statuses. */
#include "testutil.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const gem_policy_t BASELINES[] = {GEM_POLICY_CONTIGUOUS, GEM_POLICY_ROUND_ROBIN,
                                         GEM_POLICY_BALANCED, GEM_POLICY_SPEED_AWARE,
                                         GEM_POLICY_EPLB};
#define NBASE ((int)(sizeof BASELINES / sizeof BASELINES[0]))

static gem_options_t *opts_with(int64_t threads, int64_t redundant)
{
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_THREADS, threads));
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, redundant));
    return o;
}

static gem_trace_t *trace_rows(int64_t S, int L, int E, const double *loads /* [S][L][E] */)
{
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, L, E));
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++)
            assert_ok(gem_trace_set(t, s, l, loads + ((size_t)s * L + l) * E, (size_t)E));
    return t;
}

/* Checks SPEC 1 and the slot counts (E + R copies, the first (E + R) % G GPUs one more),
 * and that no GPU holds an expert twice. */
static void check_mapping(const gem_mapping_t *m, int G, int L, int E, int R)
{
    assert_ok(gem_mapping_validate(m));
    int32_t g2, l2, e2;
    assert_ok(gem_mapping_shape(m, &g2, &l2, &e2));
    assert_int_equal(g2, G);
    assert_int_equal(l2, L);
    assert_int_equal(e2, E);
    int total = E + R;
    for (int l = 0; l < L; l++) {
        size_t n;
        assert_ok(gem_mapping_num_placements(m, l, &n));
        assert_int_equal(n, (size_t)total);
        for (int g = 0; g < G; g++) {
            int32_t slots;
            assert_ok(gem_mapping_gpu_slots(m, l, g, &slots));
            assert_int_equal(slots, total / G + (g < total % G ? 1 : 0));
        }
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++) {
                int32_t ei, gi, ej, gj;
                assert_ok(gem_mapping_get(m, l, i, &ei, &gi, NULL));
                assert_ok(gem_mapping_get(m, l, j, &ej, &gj, NULL));
                assert_false(ei == ej && gi == gj);
            }
    }
}

static int gpu_of(const gem_mapping_t *m, int l, int e)
{
    int32_t g = -1;
    assert_ok(gem_mapping_expert_gpu(m, l, e, &g));
    return g;
}

static int copies_of(const gem_mapping_t *m, int l, int e)
{
    size_t n;
    int c = 0;
    assert_ok(gem_mapping_num_placements(m, l, &n));
    for (size_t i = 0; i < n; i++) {
        int32_t x;
        assert_ok(gem_mapping_get(m, l, i, &x, NULL, NULL));
        c += x == e;
    }
    return c;
}

/* ---- every policy, random shapes ------------------------------------------------------------ */

static void test_valid_on_random_shapes(void **state)
{
    (void)state;
    uint64_t st = 2024;
    double slow[8] = {1, 1.4, 1.1, 2.0, 1.2, 1.05, 1.7, 1.3};
    for (int iter = 0; iter < 40; iter++) {
        int G = 1 + (int)(tu_rand(&st) % 8);
        int E = 1 + (int)(tu_rand(&st) % 30); /* often not a multiple of G, sometimes < G */
        int L = 1 + (int)(tu_rand(&st) % 3);
        int64_t S = 1 + (int64_t)(tu_rand(&st) % 6);
        gem_profile_t *p = tu_profile(G, slow, 16, 8, 10, 2);
        if (iter % 3 == 0) assert_ok(gem_profile_set_cost_model(p, GEM_COST_AGGREGATE));
        gem_trace_t *t = tu_trace(S, L, E, 100, tu_rand(&st));
        for (int k = 0; k < NBASE; k++) {
            int R = 0;
            if (BASELINES[k] == GEM_POLICY_EPLB && G > 1)
                R = (int)(tu_rand(&st) % (uint64_t)(E * (G - 1) + 1)); /* up to G copies each */
            gem_options_t *o = opts_with(2, R);
            gem_mapping_t *m = NULL;
            assert_ok(gem_compute_mapping(p, t, BASELINES[k], o, NULL, &m));
            check_mapping(m, G, L, E, R);
            const char *name = NULL;
            assert_ok(gem_mapping_get_policy_name(m, &name));
            assert_string_equal(name, gem_policy_name(BASELINES[k]));
            gem_mapping_destroy(m);
            gem_options_destroy(o);
        }
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

/* ---- exact layouts -------------------------------------------------------------------------- */

static void test_contiguous_and_round_robin_layouts(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(4, NULL, 16, 4, 10, 0);
    gem_trace_t *t8 = tu_trace(2, 2, 8, 20, 1);
    gem_trace_t *t10 = tu_trace(2, 1, 10, 20, 2);
    gem_mapping_t *m = NULL;
    /* G divides E: expert e on GPU floor(e * G / E) = e / 2 */
    assert_ok(gem_compute_mapping(p, t8, GEM_POLICY_CONTIGUOUS, NULL, NULL, &m));
    for (int l = 0; l < 2; l++)
        for (int e = 0; e < 8; e++) assert_int_equal(gpu_of(m, l, e), e / 2);
    gem_mapping_destroy(m);
    /* 10 experts on 4 GPUs: slots 3, 3, 2, 2 filled in order */
    const int want_c[10] = {0, 0, 0, 1, 1, 1, 2, 2, 3, 3};
    assert_ok(gem_compute_mapping(p, t10, GEM_POLICY_CONTIGUOUS, NULL, NULL, &m));
    for (int e = 0; e < 10; e++) assert_int_equal(gpu_of(m, 0, e), want_c[e]);
    gem_mapping_destroy(m);
    /* round robin: e mod G, which also fills slots 3, 3, 2, 2 */
    assert_ok(gem_compute_mapping(p, t10, GEM_POLICY_ROUND_ROBIN, NULL, NULL, &m));
    for (int e = 0; e < 10; e++) assert_int_equal(gpu_of(m, 0, e), e % 4);
    gem_mapping_destroy(m);
    assert_ok(gem_compute_mapping(p, t8, GEM_POLICY_ROUND_ROBIN, NULL, NULL, &m));
    for (int e = 0; e < 8; e++) assert_int_equal(gpu_of(m, 1, e), e % 4);
    gem_mapping_destroy(m);
    gem_trace_destroy(t8);
    gem_trace_destroy(t10);
    gem_profile_destroy(p);
}

/* Policies called directly with slot counts that map.c does not make. */
static void test_policies_follow_given_slots(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(3, NULL, 16, 4, 10, 0);
    gem_trace_t *t = tu_trace(1, 1, 6, 20, 3);
    int32_t slots[3] = {1, 4, 1};
    gem__map_ctx ctx = {p, t, NULL, NULL, 3, 1, 6, 1, slots};
    gem__layer_map lm = {0};
    assert_ok(gem__policy_contiguous(&ctx, 0, &lm));
    const int want_c[6] = {0, 1, 1, 1, 1, 2};
    for (int e = 0; e < 6; e++) {
        assert_int_equal(lm.p[e].expert, e);
        assert_int_equal(lm.p[e].gpu, want_c[e]);
    }
    lm.n = 0;
    /* e mod 3; GPUs 0 and 2 have one slot each, so experts 3 (GPU 0 full) and 5 (GPU 2 full,
     * then GPU 0 full) go on to the next GPU with room, GPU 1 */
    assert_ok(gem__policy_round_robin(&ctx, 0, &lm));
    const int want_r[6] = {0, 1, 2, 1, 1, 1};
    for (int e = 0; e < 6; e++) assert_int_equal(lm.p[e].gpu, want_r[e]);
    lm.n = 0;
    /* too few slots */
    int32_t few[3] = {1, 1, 1};
    ctx.slots = few;
    assert_gem(GEM_ERR_INFEASIBLE, gem__policy_contiguous(&ctx, 0, &lm));
    lm.n = 0;
    assert_gem(GEM_ERR_INFEASIBLE, gem__policy_round_robin(&ctx, 0, &lm));
    lm.n = 0;
    assert_gem(GEM_ERR_INFEASIBLE, gem__policy_balanced(&ctx, 0, &lm));
    lm.n = 0;
    assert_gem(GEM_ERR_INFEASIBLE, gem__policy_speed_aware(&ctx, 0, &lm));
    lm.n = 0;
    assert_gem(GEM_ERR_INFEASIBLE, gem__policy_eplb(&ctx, 0, &lm));
    free(lm.p);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* ---- balanced and speed_aware ------------------------------------------------------------ */

static void test_balanced_by_hand(void **state)
{
    (void)state;
    /* totals over 2 steps: e0 10, e1 1, e2 6, e3 4, e4 6. Order: e0, e2, e4 (tie with e2: lower
     * id first), e3, e1. 3 GPUs, slots 2, 2, 1.
     *   e0 -> g0 (all 0, lowest id)         loads 10 0 0
     *   e2 -> g1                            loads 10 6 0
     *   e4 -> g2 (full now)                 loads 10 6 6
     *   e3 -> g1 (6 < 10; full now)         loads 10 10 6
     *   e1 -> g0 (the only one with room)   loads 11 10 6 */
    const double loads[] = {4, 1, 3, 2, 6, /* step 1 */ 6, 0, 3, 2, 0};
    gem_trace_t *t = trace_rows(2, 1, 5, loads);
    gem_profile_t *p = tu_profile(3, (double[]){5, 1, 1}, 16, 4, 10, 0); /* speeds ignored */
    gem_mapping_t *m = NULL;
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, NULL, NULL, &m));
    const int want[5] = {0, 0, 1, 1, 2};
    for (int e = 0; e < 5; e++) assert_int_equal(gpu_of(m, 0, e), want[e]);
    gem_mapping_destroy(m);
    /* eplb without redundant slots packs the same way */
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_EPLB, NULL, NULL, &m));
    for (int e = 0; e < 5; e++) assert_int_equal(gpu_of(m, 0, e), want[e]);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static double gpu_load(const gem_mapping_t *m, const gem_trace_t *t, int g)
{
    int64_t S;
    int32_t L, E;
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    double sum = 0, row[64];
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            assert_ok(gem_trace_get(t, s, l, row, 64));
            for (int e = 0; e < E; e++)
                if (gpu_of(m, l, e) == g) sum += row[e];
        }
    return sum;
}

static void test_speed_aware_prefers_fast_gpu(void **state)
{
    (void)state;
    /* linear-ish curves (one token per tile): the slow GPU takes 3x as long per token */
    for (int fast = 0; fast < 2; fast++) {
        double slow[2] = {3, 3};
        slow[fast] = 1;
        gem_profile_t *p = tu_profile(2, slow, 1, 400, 1, 0);
        gem_trace_t *t = tu_trace(4, 2, 12, 60, 17 + (uint64_t)fast);
        gem_mapping_t *ms = NULL, *mb = NULL;
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_SPEED_AWARE, NULL, NULL, &ms));
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, NULL, NULL, &mb));
        double fs = gpu_load(ms, t, fast), ss = gpu_load(ms, t, 1 - fast);
        double fb = gpu_load(mb, t, fast), sb = gpu_load(mb, t, 1 - fast);
        assert_true(fs > 1.5 * ss);  /* speed-aware gives the fast GPU clearly more tokens */
        assert_true(fs > fb);        /* more than the speed-unaware greedy does */
        (void)sb;
        /* and it serves the trace faster */
        gem_report_t *rs = NULL, *rb = NULL;
        assert_ok(gem_evaluate(p, t, ms, NULL, &rs));
        assert_ok(gem_evaluate(p, t, mb, NULL, &rb));
        double vs, vb;
        assert_ok(gem_report_get(rs, GEM_METRIC_MEAN, &vs));
        assert_ok(gem_report_get(rb, GEM_METRIC_MEAN, &vb));
        assert_true(vs < vb);
        gem_report_destroy(rs);
        gem_report_destroy(rb);
        gem_mapping_destroy(ms);
        gem_mapping_destroy(mb);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

static void test_speed_aware_by_hand(void **state)
{
    (void)state;
    /* Curves f_0(x) = x, f_1(x) = 2x (K = 1 at one token: t1 * x / n1), overheads 0 and 5;
     * per_expert. Loads (one step) e0 8, e1 6, e2 3, e3 1; slots 2, 2.
     *   e0: g0 0+8 = 8, g1 5+16 = 21        -> g0 (8)
     *   e1: g0 8+6 = 14, g1 5+12 = 17       -> g0 (14, full)
     *   e2, e3 -> g1                                                          */
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, 2));
    assert_ok(gem_profile_set_curve(p, 0, 1, (int64_t[]){1}, (double[]){1}, NULL));
    assert_ok(gem_profile_set_curve(p, 1, 1, (int64_t[]){1}, (double[]){2}, NULL));
    assert_ok(gem_profile_set_overhead(p, 1, 5));
    gem_trace_t *t = trace_rows(1, 1, 4, (double[]){8, 6, 3, 1});
    gem_mapping_t *m = NULL;
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_SPEED_AWARE, NULL, NULL, &m));
    const int want[4] = {0, 0, 1, 1};
    for (int e = 0; e < 4; e++) assert_int_equal(gpu_of(m, 0, e), want[e]);
    gem_mapping_destroy(m);
    /* aggregate: e0 -> g0 (8 vs 21), e1 -> g0 (14 vs 17), same outcome; with loads 8, 8, 1, 1
     * e1 sees g0 16 vs g1 21 -> g0. Now make g1 fast enough to win the second expert: */
    assert_ok(gem_profile_set_cost_model(p, GEM_COST_AGGREGATE));
    assert_ok(gem_profile_set_curve(p, 1, 1, (int64_t[]){1}, (double[]){1.2}, NULL));
    assert_ok(gem_profile_set_overhead(p, 1, 0));
    /*   e0: g0 8, g1 9.6 -> g0; e1: g0 14, g1 7.2 -> g1; e2: g0 11, g1 10.8 -> g1 (full);
     *   e3 -> g0 */
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_SPEED_AWARE, NULL, NULL, &m));
    const int want2[4] = {0, 1, 1, 0};
    for (int e = 0; e < 4; e++) assert_int_equal(gpu_of(m, 0, e), want2[e]);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* ---- eplb --------------------------------------------------------------------------------- */

static void test_eplb_replicas_to_heaviest(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(4, NULL, 16, 4, 10, 0);
    /* e5 1000 and e2 800 are far heavier than the rest */
    const double loads[8] = {50, 30, 800, 20, 90, 1000, 10, 60};
    gem_trace_t *t = trace_rows(1, 1, 8, loads);
    gem_options_t *o = opts_with(1, 2);
    gem_mapping_t *m = NULL;
    /* R = 2: e5 (1000 -> 500 a copy), then e2 (800 > 500) */
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_EPLB, o, NULL, &m));
    check_mapping(m, 4, 1, 8, 2);
    for (int e = 0; e < 8; e++) assert_int_equal(copies_of(m, 0, e), e == 5 || e == 2 ? 2 : 1);
    size_t n;
    assert_ok(gem_mapping_num_placements(m, 0, &n));
    for (size_t i = 0; i < n; i++) {
        int32_t e;
        double w;
        assert_ok(gem_mapping_get(m, 0, i, &e, NULL, &w));
        assert_true(w == (e == 5 || e == 2 ? 0.5 : 1.0)); /* equal shares */
    }
    gem_mapping_destroy(m);
    /* R = 4: 1000 -> 500 (e5), 800 -> 400 (e2), 500 -> 333 (e5), 400 -> 266 (e2) */
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 4));
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_EPLB, o, NULL, &m));
    check_mapping(m, 4, 1, 8, 4);
    assert_int_equal(copies_of(m, 0, 5), 3);
    assert_int_equal(copies_of(m, 0, 2), 3);
    gem_mapping_destroy(m);
    /* R = 8 = enough for every copy e5 can take: it stops at G = 4 copies, one per GPU */
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 8));
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_EPLB, o, NULL, &m));
    check_mapping(m, 4, 1, 8, 8);
    assert_int_equal(copies_of(m, 0, 5), 4);
    assert_int_equal(copies_of(m, 0, 2), 4);
    gem_mapping_destroy(m);
    /* more copies than E x G cannot be placed */
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 8 * 3 + 1));
    assert_gem(GEM_ERR_INFEASIBLE, gem_compute_mapping(p, t, GEM_POLICY_EPLB, o, NULL, &m));
    assert_error_has("copies");
    /* exactly E x G: every GPU holds every expert */
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 8 * 3));
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_EPLB, o, NULL, &m));
    check_mapping(m, 4, 1, 8, 24);
    for (int e = 0; e < 8; e++) assert_int_equal(copies_of(m, 0, e), 4);
    gem_mapping_destroy(m);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* The greedy packing can reach a copy whose only GPUs with room already hold its expert; the
 * policy then swaps a copy out instead of failing. Slots 3 and 1 (set directly): items
 * e1 6, e2 5.5, e0 5, e0 5 -> e1 g0, e2 g1 (full), e0 g0, then e0 has only g0 left. */
static void test_eplb_repairs_stuck_packing(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(2, NULL, 16, 4, 10, 0);
    gem_trace_t *t = trace_rows(1, 1, 3, (double[]){10, 6, 5.5});
    int32_t slots[2] = {3, 1};
    gem__map_ctx ctx = {p, t, NULL, NULL, 2, 1, 3, 1, slots};
    gem__layer_map lm = {0};
    assert_ok(gem__policy_eplb(&ctx, 0, &lm));
    assert_int_equal(lm.n, 4);
    int on[2] = {0, 0}, e0_gpus = 0;
    for (size_t i = 0; i < lm.n; i++) {
        on[lm.p[i].gpu]++;
        if (lm.p[i].expert == 0) {
            e0_gpus |= 1 << lm.p[i].gpu;
            assert_true(lm.p[i].share == 0.5);
        }
    }
    assert_int_equal(on[0], 3);
    assert_int_equal(on[1], 1);
    assert_int_equal(e0_gpus, 3); /* one copy on each GPU */
    free(lm.p);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* ---- dispatch: determinism, names, errors --------------------------------------------------- */

static void test_same_result_any_thread_count(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(5, (double[]){1, 1.2, 1.1, 1.5, 1.05}, 16, 8, 10, 1);
    gem_trace_t *t = tu_trace(8, 9, 23, 80, 5);
    for (int k = 0; k < NBASE; k++) {
        int R = BASELINES[k] == GEM_POLICY_EPLB ? 7 : 0;
        gem_options_t *o1 = opts_with(1, R), *o4 = opts_with(4, R);
        gem_mapping_t *m1 = NULL, *m4 = NULL;
        assert_ok(gem_compute_mapping(p, t, BASELINES[k], o1, NULL, &m1));
        assert_ok(gem_compute_mapping(p, t, BASELINES[k], o4, NULL, &m4));
        for (int l = 0; l < 9; l++) {
            size_t n1, n4;
            assert_ok(gem_mapping_num_placements(m1, l, &n1));
            assert_ok(gem_mapping_num_placements(m4, l, &n4));
            assert_int_equal(n1, n4);
            for (size_t i = 0; i < n1; i++) {
                int32_t e1, g1, e4, g4;
                double w1, w4;
                assert_ok(gem_mapping_get(m1, l, i, &e1, &g1, &w1));
                assert_ok(gem_mapping_get(m4, l, i, &e4, &g4, &w4));
                assert_int_equal(e1, e4);
                assert_int_equal(g1, g4);
                assert_true(w1 == w4);
            }
        }
        gem_mapping_destroy(m1);
        gem_mapping_destroy(m4);
        gem_options_destroy(o1);
        gem_options_destroy(o4);
    }
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static void test_policy_names(void **state)
{
    (void)state;
    const char *names[GEM_POLICY_COUNT] = {"contiguous", "round_robin", "balanced", "speed_aware",
                                           "gem",        "eplb",        "exact"};
    for (int i = 0; i < GEM_POLICY_COUNT; i++) {
        assert_string_equal(gem_policy_name((gem_policy_t)i), names[i]);
        gem_policy_t pol = (gem_policy_t)-1;
        assert_ok(gem_policy_from_name(names[i], &pol));
        assert_int_equal(pol, i);
    }
    assert_string_equal(gem_policy_name((gem_policy_t)GEM_POLICY_COUNT), "unknown");
    assert_string_equal(gem_policy_name((gem_policy_t)-1), "unknown");
    gem_policy_t pol = GEM_POLICY_GEM;
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_policy_from_name("greedy", &pol));
    assert_error_has("greedy");
    assert_error_has("speed_aware");
    assert_error_has("round_robin");
    assert_int_equal(pol, GEM_POLICY_GEM); /* untouched */
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_policy_from_name("Balanced", &pol));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_policy_from_name("", &pol));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_policy_from_name(NULL, &pol));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_policy_from_name("gem", NULL));
}

static int cancel_after_two(void *user, const char *what, double done, double total)
{
    (void)what;
    (void)total;
    int *calls = user;
    ++*calls;
    return done >= 2;
}

static void test_errors(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(2, NULL, 16, 4, 10, 0);
    gem_trace_t *t = tu_trace(3, 2, 4, 20, 9);
    gem_mapping_t *m = NULL;
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_compute_mapping(NULL, t, GEM_POLICY_BALANCED, NULL, NULL, &m));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_compute_mapping(p, NULL, GEM_POLICY_BALANCED, NULL, NULL, &m));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_compute_mapping(p, t, GEM_POLICY_BALANCED, NULL, NULL, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_compute_mapping(p, t, (gem_policy_t)GEM_POLICY_COUNT, NULL, NULL, &m));
    assert_error_has("policy");
    assert_null(m);

    /* incomplete trace */
    gem_trace_t *ti = NULL;
    assert_ok(gem_trace_create(&ti, 2, 4));
    assert_ok(gem_trace_set(ti, 0, 0, (double[]){1, 2, 3, 4}, 4));
    assert_gem(GEM_ERR_INCOMPLETE, gem_compute_mapping(p, ti, GEM_POLICY_BALANCED, NULL, NULL, &m));
    assert_error_has("layer 1");

    /* a GPU without a curve */
    gem_profile_t *pn = NULL;
    assert_ok(gem_profile_create(&pn, 2));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_compute_mapping(pn, t, GEM_POLICY_CONTIGUOUS, NULL, NULL, &m));
    assert_error_has("gpu 0");

    /* classification of another trace shape */
    gem_trace_t *t5 = tu_trace(3, 2, 5, 20, 9);
    gem_classification_t *cls = NULL;
    assert_ok(gem_classify_experts(t5, NULL, &cls));
    assert_gem(GEM_ERR_SHAPE_MISMATCH, gem_compute_mapping(p, t, GEM_POLICY_GEM, NULL, cls, &m));
    assert_error_has("classification");
    assert_gem(GEM_ERR_SHAPE_MISMATCH,
               gem_compute_mapping(p, t, GEM_POLICY_BALANCED, NULL, cls, &m));

    /* redundant slots: only eplb and gem replicate (test_replicate.c) */
    gem_options_t *o = opts_with(1, 2);
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    assert_error_has("balanced");
    assert_gem(GEM_ERR_NOT_SUPPORTED,
               gem_compute_mapping(p, t, GEM_POLICY_CONTIGUOUS, o, NULL, &m));
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 5)); /* 9 copies > 4 x 2 */
    assert_gem(GEM_ERR_INFEASIBLE, gem_compute_mapping(p, t, GEM_POLICY_EPLB, o, NULL, &m));
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 0));

    /* memory: 2 slots per layer of 100 bytes on each GPU, 2 layers: 400 bytes; GPU 1 has 350 */
    assert_ok(gem_options_set_int(o, GEM_OPT_EXPERT_BYTES, 100));
    assert_ok(gem_options_set_int_array(o, GEM_OPT_GPU_MEMORY, (int64_t[]){1000, 350}, 2));
    assert_gem(GEM_ERR_INFEASIBLE, gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    assert_error_has("gpu 1");
    assert_error_has("50 bytes missing");
    assert_ok(gem_options_set_int_array(o, GEM_OPT_GPU_MEMORY, (int64_t[]){1000, 400}, 2));
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    gem_mapping_destroy(m);
    m = NULL;
    assert_ok(gem_options_set_int_array(o, GEM_OPT_GPU_MEMORY, (int64_t[]){1000}, 1));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    assert_ok(gem_options_set_int_array(o, GEM_OPT_GPU_MEMORY, NULL, 0));
    assert_ok(gem_options_set_int(o, GEM_OPT_EXPERT_BYTES, 0));

    /* unequal slots (test_slots.c): accepted, every expert placed */
    assert_ok(gem_options_set_int(o, GEM_OPT_UNEQUAL_SLOTS, 1));
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    assert_ok(gem_mapping_validate(m));
    gem_mapping_destroy(m);
    m = NULL;
    assert_ok(gem_options_set_int(o, GEM_OPT_UNEQUAL_SLOTS, 0));

    /* the progress callback can cancel */
    int calls = 0;
    gem_trace_t *t6 = tu_trace(2, 6, 4, 20, 1);
    assert_ok(gem_options_set_progress(o, cancel_after_two, &calls));
    assert_gem(GEM_ERR_CANCELLED, gem_compute_mapping(p, t6, GEM_POLICY_BALANCED, o, NULL, &m));
    assert_int_equal(calls, 2);
    assert_null(m);

    gem_trace_destroy(t6);
    gem_options_destroy(o);
    gem_classification_destroy(cls);
    gem_trace_destroy(t5);
    gem_profile_destroy(pn);
    gem_trace_destroy(ti);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* Every allocation of a mapping may fail, in the dispatcher or in a policy on any worker
 * thread: the failure is reported, nothing leaks, and a success is the normal mapping. */
static void test_allocation_failures(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(3, (double[]){1, 1.3, 1.1}, 16, 6, 10, 1);
    gem_trace_t *t = tu_trace(4, 5, 11, 50, 8);
    for (int k = 0; k < NBASE; k++) {
        gem_options_t *o = opts_with(2, BASELINES[k] == GEM_POLICY_EPLB ? 4 : 0);
        assert_true(tu_alloc_failures_mapping(p, t, BASELINES[k], o, 120, 1) > 5);
        gem_options_destroy(o);
    }
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_on_random_shapes),
        cmocka_unit_test(test_contiguous_and_round_robin_layouts),
        cmocka_unit_test(test_policies_follow_given_slots),
        cmocka_unit_test(test_balanced_by_hand),
        cmocka_unit_test(test_speed_aware_prefers_fast_gpu),
        cmocka_unit_test(test_speed_aware_by_hand),
        cmocka_unit_test(test_eplb_replicas_to_heaviest),
        cmocka_unit_test(test_eplb_repairs_stuck_packing),
        cmocka_unit_test(test_same_result_any_thread_count),
        cmocka_unit_test(test_policy_names),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
