/* test_replicate.c - replicas for policy gem (GEM_OPT_REDUNDANT_SLOTS) with speed-weighted or
 * equal shares: valid mappings (shares sum to 1, never two copies on a GPU, slots kept),
 * speed-weighted shares beating equal ones on a skewed trace with variability, the faster
 * GPU taking the larger share, eplb keeping equal shares, determinism, errors and allocation
 * failures; with GEM_OPT_OBJECTIVE = P90, layer p90s never above the single-copy placement's,
 * the copy that lowers the tail chosen over the one that lowers the mean, and determinism;
 * and gem__lstate, the incremental layer evaluator the searches use. */
#include "testutil.h"
#include "beyond.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static gem_options_t *opts(int64_t threads, int64_t R, gem_share_rule_t rule)
{
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_THREADS, threads));
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, R));
    assert_ok(gem_options_set_int(o, GEM_OPT_SHARE_RULE, rule));
    assert_ok(gem_options_set_int(o, GEM_OPT_RESTARTS, 1));
    return o;
}

/* Maps with policy gem under o (which it frees) and asserts the mapping's text equals *want,
 * or keeps it there the first time. */
static void same_mapping_text(const gem_profile_t *p, const gem_trace_t *t, gem_options_t *o,
                              char **want)
{
    gem_mapping_t *m = NULL;
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
    char *got = NULL;
    assert_ok(gem_mapping_to_string(m, &got));
    if (!*want) {
        *want = got;
    } else {
        assert_string_equal(got, *want);
        gem_free(got);
    }
    gem_mapping_destroy(m);
    gem_options_destroy(o);
}

static double metric_of(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m,
                        gem_metric_t metric)
{
    gem_report_t *r = NULL;
    assert_ok(gem_evaluate(p, t, m, NULL, &r));
    double v;
    assert_ok(gem_report_get(r, metric, &v));
    gem_report_destroy(r);
    return v;
}

static double mean_of(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m)
{
    return metric_of(p, t, m, GEM_METRIC_MEAN);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank p90 of one layer's latencies (max over GPUs per step), from scratch: every
 * GPU's time summed from the curves (SPEC 2), the steps sorted. */
static double layer_p90(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m,
                        int32_t layer)
{
    int32_t G, L, E;
    int64_t S;
    assert_ok(gem_profile_num_gpus(p, &G));
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    size_t n;
    assert_ok(gem_mapping_num_placements(m, layer, &n));
    double *lat = calloc((size_t)S, sizeof *lat), *T = calloc((size_t)G, sizeof *T);
    double *row = calloc((size_t)E, sizeof *row), *x = calloc((size_t)G, sizeof *x);
    const int per_expert = p->cost_model == GEM_COST_PER_EXPERT;
    for (int64_t s = 0; s < S; s++) {
        assert_ok(gem_trace_get(t, s, layer, row, (size_t)E));
        for (int32_t g = 0; g < G; g++) T[g] = p->gpus[g].overhead, x[g] = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t e, g;
            double w;
            assert_ok(gem_mapping_get(m, layer, i, &e, &g, &w));
            if (per_expert) T[g] += gem__latency(p, g, w * row[e]);
            else x[g] += w * row[e];
        }
        lat[s] = 0;
        for (int32_t g = 0; g < G; g++)
            lat[s] = fmax(lat[s], T[g] + (per_expert ? 0 : gem__latency(p, g, x[g])));
    }
    qsort(lat, (size_t)S, sizeof *lat, cmp_double);
    double v = lat[gem__nearest_rank(90, (size_t)S)];
    free(lat), free(T), free(row), free(x);
    return v;
}

/* SPEC 1 plus: at most E + R copies per layer, each GPU within the equal slot counts, no
 * expert twice on a GPU, shares in (0, 1] summing to 1 within 1e-9. */
static void check_replicated(const gem_mapping_t *m, int G, int L, int E, int R)
{
    assert_ok(gem_mapping_validate(m));
    const int total = E + R;
    for (int l = 0; l < L; l++) {
        size_t n;
        assert_ok(gem_mapping_num_placements(m, l, &n));
        assert_true(n >= (size_t)E && n <= (size_t)total);
        double *sum = calloc((size_t)E, sizeof *sum);
        int *seen = calloc((size_t)E * (size_t)G, sizeof *seen);
        for (size_t i = 0; i < n; i++) {
            int32_t e, g;
            double w;
            assert_ok(gem_mapping_get(m, l, i, &e, &g, &w));
            assert_true(w > 0 && w <= 1);
            assert_int_equal(seen[e * G + g], 0);
            seen[e * G + g] = 1;
            sum[e] += w;
        }
        for (int e = 0; e < E; e++) assert_true(fabs(sum[e] - 1.0) <= 1e-9);
        for (int g = 0; g < G; g++) {
            int32_t slots;
            assert_ok(gem_mapping_gpu_slots(m, l, g, &slots));
            assert_true(slots <= total / G + (g < total % G ? 1 : 0));
        }
        free(sum);
        free(seen);
    }
}

static void test_valid_on_random_shapes(void **state)
{
    (void)state;
    uint64_t st = 42;
    for (int round = 0; round < 30; round++) {
        int G = 2 + (int)(tu_rand(&st) % 5), E = 3 + (int)(tu_rand(&st) % 14);
        int L = 1 + (int)(tu_rand(&st) % 3);
        int R = (int)(tu_rand(&st) % (uint64_t)(E + 1));
        double sd[6];
        for (int g = 0; g < G; g++) sd[g] = 1.0 + tu_uniform(&st);
        gem_profile_t *p = tu_profile(G, sd, 16, 6, 10, 1);
        gem_trace_t *t = tu_trace(1 + (int64_t)(tu_rand(&st) % 6), L, E, 120, tu_rand(&st));
        for (int rule = 0; rule < 2; rule++) {
            gem_options_t *o = opts(1, R, (gem_share_rule_t)rule);
            gem_mapping_t *m = NULL, *m0 = NULL;
            assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
            check_replicated(m, G, L, E, R);
            /* replicas are only kept where they lower the objective */
            assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 0));
            assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m0));
            assert_true(mean_of(p, t, m) <= mean_of(p, t, m0) * (1 + 1e-12));
            gem_mapping_destroy(m);
            gem_mapping_destroy(m0);
            gem_options_destroy(o);
        }
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

/* One very hot expert whose load varies from step to step, seven light ones; GPUs 1x, 1x,
 * 1.5x and 2x slow. Tiles of 16 tokens, each costing 25% more than the one before. */
static gem_trace_t *skewed_trace(int64_t S, uint64_t seed)
{
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 1, 8));
    for (int64_t s = 0; s < S; s++) {
        double row[8];
        row[0] = 400 + (double)(tu_rand(&seed) % 400);
        for (int e = 1; e < 8; e++) row[e] = 10 + (double)(tu_rand(&seed) % 40);
        assert_ok(gem_trace_set(t, s, 0, row, 8));
    }
    return t;
}

static void test_speed_weighted_beats_equal(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(4, (double[]){1, 1, 1.5, 2}, 16, 64, 10, 1);
    gem_trace_t *t = skewed_trace(40, 7), *next = skewed_trace(40, 8);
    double mean[3][3]; /* [R = 0, 2, 4][in: speed, equal, eplb] */
    for (int r = 0; r < 3; r++) {
        int R = 2 * r;
        gem_options_t *os = opts(1, R, GEM_SHARES_SPEED_WEIGHTED);
        gem_options_t *oe = opts(1, R, GEM_SHARES_EQUAL);
        gem_mapping_t *ms = NULL, *me = NULL, *mb = NULL;
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, os, NULL, &ms));
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, oe, NULL, &me));
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_EPLB, os, NULL, &mb));
        check_replicated(ms, 4, 1, 8, R);
        check_replicated(me, 4, 1, 8, R);
        mean[r][0] = mean_of(p, t, ms);
        mean[r][1] = mean_of(p, t, me);
        mean[r][2] = mean_of(p, t, mb);
        if (R > 0) {
            /* the same slot count: speed-weighted shares beat equal ones, in and out of
             * sample, and beat EPLB's rule */
            assert_true(mean[r][0] < mean[r][1]);
            assert_true(mean_of(p, next, ms) < mean_of(p, next, me));
            assert_true(mean[r][0] < mean[r][2]);
            /* the hot expert got a replica */
            size_t n;
            assert_ok(gem_mapping_num_placements(ms, 0, &n));
            assert_true(n > 8);
        }
        gem_mapping_destroy(ms);
        gem_mapping_destroy(me);
        gem_mapping_destroy(mb);
        gem_options_destroy(os);
        gem_options_destroy(oe);
    }
    /* replicas help this trace */
    assert_true(mean[1][0] < mean[0][0]);
    assert_true(mean[2][0] <= mean[1][0] * 1.001);
    gem_trace_destroy(t);
    gem_trace_destroy(next);
    gem_profile_destroy(p);
}

/* Two GPUs, the second twice as slow; expert 0 carries everything. Its copy on the fast GPU
 * takes the larger share; equal shares give each copy one half. */
static void test_faster_gpu_takes_more(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(2, (double[]){1, 2}, 16, 64, 10, 0);
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 1, 2));
    for (int64_t s = 0; s < 8; s++)
        assert_ok(gem_trace_set(t, s, 0, (double[]){600 + 10 * (double)s, 4}, 2));
    for (int rule = 0; rule < 2; rule++) {
        gem_options_t *o = opts(1, 2, (gem_share_rule_t)rule);
        gem_mapping_t *m = NULL;
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
        double w[2] = {0, 0};
        size_t n;
        assert_ok(gem_mapping_num_placements(m, 0, &n));
        for (size_t i = 0; i < n; i++) {
            int32_t e, g;
            double share;
            assert_ok(gem_mapping_get(m, 0, i, &e, &g, &share));
            if (e == 0) w[g] = share;
        }
        if (rule == GEM_SHARES_SPEED_WEIGHTED) {
            /* replicated, about 0.69 on the GPU twice as fast (where f_0(x) = f_1(600 - x)) */
            assert_true(w[0] > 0.6 && w[0] < 0.8);
            assert_true(fabs(w[0] + w[1] - 1) <= 1e-12);
        } else {
            /* halves would make the slow GPU slower than one copy on the fast one: no
             * replica then, or halves if there is one */
            assert_true((w[0] == 1 && w[1] == 0) || (w[0] == 0.5 && w[1] == 0.5));
        }
        gem_mapping_destroy(m);
        gem_options_destroy(o);
    }
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* EPLB's shares stay equal whatever the share rule says. */
static void test_eplb_keeps_equal_shares(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(4, (double[]){1, 1, 1.5, 2}, 16, 64, 10, 1);
    gem_trace_t *t = skewed_trace(10, 3);
    gem_options_t *o = opts(1, 4, GEM_SHARES_SPEED_WEIGHTED);
    gem_mapping_t *m = NULL;
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_EPLB, o, NULL, &m));
    check_replicated(m, 4, 1, 8, 4);
    int copies[8] = {0};
    size_t n;
    assert_ok(gem_mapping_num_placements(m, 0, &n));
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++) {
        int32_t e, g;
        assert_ok(gem_mapping_get(m, 0, i, &e, &g, NULL));
        copies[e]++;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t e, g;
        double w;
        assert_ok(gem_mapping_get(m, 0, i, &e, &g, &w));
        assert_true(w == 1.0 / copies[e]);
    }
    gem_mapping_destroy(m);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static void test_same_result_any_thread_count(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(3, (double[]){1, 1.4, 1.1}, 16, 32, 10, 1);
    gem_trace_t *t = tu_trace(6, 7, 12, 300, 11);
    char *want = NULL;
    for (int threads = 1; threads <= 4; threads++)
        same_mapping_text(p, t, opts(threads, 5, GEM_SHARES_SPEED_WEIGHTED), &want);
    gem_free(want);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static gem_options_t *opts_p90(int64_t threads, int64_t R, gem_share_rule_t rule)
{
    gem_options_t *o = opts(threads, R, rule);
    assert_ok(gem_options_set_int(o, GEM_OPT_OBJECTIVE, GEM_OBJECTIVE_P90));
    return o;
}

/* S steps x L layers x E experts: a few hot experts, each busy (many tokens) in a random
 * third of the steps and light otherwise, and a warm background. */
static gem_trace_t *bursty_trace(int64_t S, int L, int E, uint64_t seed)
{
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, L, E));
    double *row = calloc((size_t)E, sizeof *row);
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            for (int e = 0; e < E; e++) {
                double base = (double)(tu_rand(&seed) % 60);
                if (e < 1 + E / 4 && tu_rand(&seed) % 3 == 0)
                    base += 200 + (double)(tu_rand(&seed) % 600);
                row[e] = e % 5 == 4 && tu_rand(&seed) % 4 == 0 ? 0 : base;
            }
            assert_ok(gem_trace_set(t, s, l, row, (size_t)E));
        }
    free(row);
    return t;
}

/* With objective P90 the replica pass never raises a layer's p90 above the single-copy
 * placement's (R = 0, which places every expert as the pass's start does), to 1e-9: on
 * one-layer traces by gem_evaluate's p90, on several layers layer by layer. */
static void test_p90_never_worse(void **state)
{
    (void)state;
    uint64_t st = 2024;
    int replicated = 0, lowered = 0;
    for (int round = 0; round < 24; round++) {
        int G = 3 + (int)(tu_rand(&st) % 4), E = 6 + (int)(tu_rand(&st) % 11);
        int L = round % 3 == 2 ? 3 : 1;
        int64_t S = 10 + (int64_t)(tu_rand(&st) % 31);
        int R = 1 + (int)(tu_rand(&st) % (uint64_t)E);
        double sd[6];
        for (int g = 0; g < G; g++) sd[g] = g % 2 ? 1.0 + tu_uniform(&st) : 1.0;
        gem_profile_t *p = tu_profile(G, sd, 16, 64, 10, 1);
        if (round % 4 == 3) assert_ok(gem_profile_set_cost_model(p, GEM_COST_AGGREGATE));
        gem_trace_t *t = bursty_trace(S, L, E, tu_rand(&st));
        for (int rule = 0; rule < 2; rule++) {
            gem_options_t *o = opts_p90(1, R, (gem_share_rule_t)rule);
            gem_mapping_t *m = NULL, *m0 = NULL;
            assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
            check_replicated(m, G, L, E, R);
            assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 0));
            assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m0));
            for (int l = 0; l < L; l++) {
                double got = layer_p90(p, t, m, l), start = layer_p90(p, t, m0, l);
                assert_true(got <= start * (1 + 1e-9));
                lowered += got < start * (1 - 1e-9);
                size_t n;
                assert_ok(gem_mapping_num_placements(m, l, &n));
                replicated += n > (size_t)E;
            }
            if (L == 1) /* one layer: the trace's p90 is the layer's */
                assert_true(metric_of(p, t, m, GEM_METRIC_P90) <=
                            metric_of(p, t, m0, GEM_METRIC_P90) * (1 + 1e-9));
            gem_mapping_destroy(m);
            gem_mapping_destroy(m0);
            gem_options_destroy(o);
        }
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
    /* the cases exercise the pass: copies are placed and p90s come down */
    assert_true(replicated > 20);
    assert_true(lowered > 10);
}

/* Four GPUs, GPU 0 1.25x slow with the one free slot (E = 4, R = 1); a tile of 16 tokens
 * costs 10 us, each further tile 2.5. Expert 0 carries 800 tokens in steps 0 and 1 only (the
 * tail: the p90 of 10 steps is the second largest), expert 1 a steady 480, experts 2 and 3 a
 * light 16 (one of them ends up on GPU 0). A copy of the steady expert shortens the eight
 * other steps by about 25 us and leaves the tail (the best mean); a copy of the bursty one
 * shortens the two tail steps by about 47 us (the best p90). MEAN takes the first, P90 the
 * second. */
static void test_p90_copies_the_tail(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(4, (double[]){1.25, 1, 1, 1}, 16, 64, 10, 1);
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 1, 4));
    for (int64_t s = 0; s < 10; s++)
        assert_ok(gem_trace_set(t, s, 0, (double[]){s < 2 ? 800 : 0, 480, 16, 16}, 4));
    double p90[2], mean[2];
    int32_t copied[2] = {-1, -1};
    for (int k = 0; k < 2; k++) {
        gem_options_t *o = k ? opts_p90(1, 1, GEM_SHARES_SPEED_WEIGHTED)
                             : opts(1, 1, GEM_SHARES_SPEED_WEIGHTED);
        gem_mapping_t *m = NULL;
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
        check_replicated(m, 4, 1, 4, 1);
        int copies[4] = {0};
        size_t n;
        assert_ok(gem_mapping_num_placements(m, 0, &n));
        for (size_t i = 0; i < n; i++) {
            int32_t e, g;
            assert_ok(gem_mapping_get(m, 0, i, &e, &g, NULL));
            if (++copies[e] == 2) copied[k] = e;
        }
        p90[k] = metric_of(p, t, m, GEM_METRIC_P90);
        mean[k] = metric_of(p, t, m, GEM_METRIC_MEAN);
        assert_true(fabs(p90[k] - layer_p90(p, t, m, 0)) <= 1e-9 * p90[k]);
        gem_mapping_destroy(m);
        gem_options_destroy(o);
    }
    assert_int_equal(copied[0], 1); /* MEAN: the steady expert */
    assert_int_equal(copied[1], 0); /* P90: the bursty one */
    assert_true(p90[1] < p90[0] - 1);
    assert_true(mean[0] <= mean[1]);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* P90: the same mapping whatever the thread count. */
static void test_p90_same_result_any_thread_count(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(4, (double[]){1, 1.4, 1.1, 1.8}, 16, 64, 10, 1);
    gem_trace_t *t = bursty_trace(24, 6, 12, 17);
    char *want = NULL;
    for (int threads = 1; threads <= 3; threads += 2)
        same_mapping_text(p, t, opts_p90(threads, 6, GEM_SHARES_SPEED_WEIGHTED), &want);
    /* and the pass did something there */
    assert_non_null(strstr(want, "0.")); /* some share below 1 */
    gem_free(want);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static void test_errors(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(2, NULL, 16, 4, 10, 1);
    gem_trace_t *t = tu_trace(3, 1, 4, 50, 1);
    gem_mapping_t *m = NULL;
    gem_options_t *o = opts(1, 2, GEM_SHARES_SPEED_WEIGHTED);
    /* policies that place single copies do not replicate */
    const gem_policy_t single[] = {GEM_POLICY_CONTIGUOUS, GEM_POLICY_ROUND_ROBIN,
                                   GEM_POLICY_BALANCED, GEM_POLICY_SPEED_AWARE, GEM_POLICY_EXACT};
    for (int i = 0; i < 5; i++) {
        assert_gem(GEM_ERR_NOT_SUPPORTED, gem_compute_mapping(p, t, single[i], o, NULL, &m));
        assert_error_has(gem_policy_name(single[i]));
        assert_null(m);
    }
    /* 4 experts x 2 GPUs hold at most 8 copies */
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 5));
    assert_gem(GEM_ERR_INFEASIBLE, gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
    assert_null(m);
    /* ... and exactly 8 is fine */
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 4));
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
    check_replicated(m, 2, 1, 4, 4);
    gem_mapping_destroy(m);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* gem__lstate's incremental delta equals a from-scratch evaluation. */
static void test_lstate_delta_exact(void **state)
{
    (void)state;
    uint64_t seed = 5;
    for (int round = 0; round < 20; round++) {
        int G = 2 + (int)(tu_rand(&seed) % 7), E = 2 + (int)(tu_rand(&seed) % 12);
        gem_profile_t *p = tu_profile(G, NULL, 16, 8, 10, 1);
        if (round % 2) assert_ok(gem_profile_set_cost_model(p, GEM_COST_AGGREGATE));
        gem_trace_t *t = tu_trace(5, 1, E, 100, tu_rand(&seed));
        gem__layer_map lm = {0, 0, NULL}, cand = {0, 0, NULL};
        for (int e = 0; e < E; e++)
            assert_ok(gem__layer_map_add(&lm, e, (int)(tu_rand(&seed) % (uint64_t)G), 1.0));
        gem__lstate st, ref;
        assert_ok(gem__lstate_init(&st, p, t, 0));
        assert_ok(gem__lstate_init(&ref, p, t, 0));
        assert_ok(gem__lstate_set(&st, &lm));
        for (int k = 0; k < 10; k++) {
            /* move one expert, or split it over two GPUs */
            assert_ok(gem__layer_map_copy(&cand, &st.lm));
            size_t i = tu_rand(&seed) % cand.n;
            int32_t from = cand.p[i].gpu, to = (int32_t)(tu_rand(&seed) % (uint64_t)G);
            int aff_n = 1;
            int32_t aff[2] = {from, to};
            if (to != from) {
                aff_n = 2;
                if (k % 2 || cand.p[i].share < 1) cand.p[i].gpu = to;
                else {
                    int dup = 0;
                    for (size_t j = 0; j < cand.n; j++)
                        dup |= cand.p[j].expert == cand.p[i].expert && cand.p[j].gpu == to;
                    if (!dup) {
                        cand.p[i].share = 0.25;
                        assert_ok(gem__layer_map_add(&cand, cand.p[i].expert, to, 0.75));
                    }
                }
            }
            if (!(round % 2) && st.lm.n >= 2) {
                /* a swap of two placements: the per_expert shortcut agrees */
                size_t x = tu_rand(&seed) % st.lm.n, y = tu_rand(&seed) % st.lm.n;
                if (x != y && st.lm.p[x].gpu != st.lm.p[y].gpu) {
                    gem__layer_map sw = {0, 0, NULL};
                    assert_ok(gem__layer_map_copy(&sw, &st.lm));
                    int32_t gx = sw.p[x].gpu, gy = sw.p[y].gpu, two[2] = {gx, gy};
                    sw.p[x].gpu = gy;
                    sw.p[y].gpu = gx;
                    double full = gem__lstate_delta(&st, &sw, two, 2);
                    double fast = gem__lstate_swap_delta(&st, x, y);
                    assert_true(fabs(full - fast) <= 1e-9 * fmax(1, st.obj));
                    free(sw.p);
                }
            }
            double d = gem__lstate_delta(&st, &cand, aff, aff_n);
            assert_ok(gem__lstate_set(&ref, &cand));
            assert_true(fabs(st.obj + d - ref.obj) <= 1e-9 * fmax(1, ref.obj));
            assert_ok(gem__lstate_commit(&st, &cand, aff, aff_n));
            assert_true(fabs(st.obj - ref.obj) <= 1e-9 * fmax(1, ref.obj));
        }
        free(lm.p);
        free(cand.p);
        gem__lstate_free(&st);
        gem__lstate_free(&ref);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

/* Every allocation failure is reported as GEM_ERR_NO_MEMORY, or the same mapping comes out
 * (objective p90: with the state the replica pass keeps for it too). */
static void alloc_failures_with(gem_objective_t objective)
{
    gem_profile_t *p = tu_profile(3, (double[]){1, 1.3, 1.1}, 16, 32, 10, 1);
    gem_trace_t *t = skewed_trace(6, 9);
    gem_options_t *o = opts(2, 3, GEM_SHARES_SPEED_WEIGHTED);
    assert_ok(gem_options_set_int(o, GEM_OPT_OBJECTIVE, objective));
    assert_true(tu_alloc_failures_mapping(p, t, GEM_POLICY_GEM, o, 400, 1) > 20);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    alloc_failures_with(GEM_OBJECTIVE_MEAN);
    alloc_failures_with(GEM_OBJECTIVE_P90);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_on_random_shapes),
        cmocka_unit_test(test_speed_weighted_beats_equal),
        cmocka_unit_test(test_faster_gpu_takes_more),
        cmocka_unit_test(test_eplb_keeps_equal_shares),
        cmocka_unit_test(test_same_result_any_thread_count),
        cmocka_unit_test(test_p90_never_worse),
        cmocka_unit_test(test_p90_copies_the_tail),
        cmocka_unit_test(test_p90_same_result_any_thread_count),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_lstate_delta_exact),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
