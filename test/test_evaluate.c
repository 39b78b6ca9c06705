/* test_evaluate.c - gem_evaluate and the report: SPEC 2 by hand on small cases, against an
 * independent brute-force reimplementation on many random cases, nearest-rank percentiles,
 * the lower bound (never above any mapping's mean, nor above the exhaustive optimum; the
 * whole-trace bound beats every per-step bound where a fixed mapping must lose; with
 * GEM_OPT_BOUND_SLOTS, never above the optimum of the same slot counts), and the error
 * statuses. */
#include "testutil.h"
#include "internal.h" /* gem__inject_alloc_failure */

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures ------------------------------------------------------------------------------- */

/* One curve for every GPU, overheads per GPU. */
static gem_profile_t *profile_of(int G, size_t k, const int64_t *tok, const double *lat,
                                 const double *overhead, gem_interpolation_t interp,
                                 gem_cost_model_t model)
{
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, G));
    assert_ok(gem_profile_set_interpolation(p, interp));
    assert_ok(gem_profile_set_cost_model(p, model));
    for (int g = 0; g < G; g++) {
        assert_ok(gem_profile_set_curve(p, g, k, tok, lat, NULL));
        assert_ok(gem_profile_set_overhead(p, g, overhead ? overhead[g] : 0.0));
    }
    return p;
}

static gem_trace_t *trace_of(int64_t S, int L, int E, const double *loads /* [S][L][E] */)
{
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, L, E));
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++)
            assert_ok(gem_trace_set(t, s, l, loads + ((size_t)s * L + l) * E, (size_t)E));
    return t;
}

/* Mapping with one placement per expert, the same in every layer: gpu_of[e]. */
static gem_mapping_t *mapping_of(int G, int L, int E, const int *gpu_of)
{
    gem_mapping_t *m = NULL;
    assert_ok(gem_mapping_create(&m, G, L, E));
    for (int l = 0; l < L; l++)
        for (int e = 0; e < E; e++) assert_ok(gem_mapping_add(m, l, e, gpu_of[e], 1.0));
    assert_ok(gem_mapping_validate(m));
    return m;
}

static double metric(const gem_report_t *r, gem_metric_t k)
{
    double v = NAN;
    assert_ok(gem_report_get(r, k, &v));
    return v;
}

static gem_report_t *eval(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m)
{
    gem_report_t *r = NULL;
    assert_ok(gem_evaluate(p, t, m, NULL, &r));
    return r;
}

#define assert_near(a, b)                                                                     \
    do {                                                                                      \
        double a__ = (a), b__ = (b);                                                          \
        if (!(fabs(a__ - b__) <= 1e-9 * (1.0 + fabs(a__) + fabs(b__))))                       \
            print_error("%s = %.17g but %s = %.17g\n", #a, a__, #b, b__);                     \
        assert_true(fabs(a__ - b__) <= 1e-9 * (1.0 + fabs(a__) + fabs(b__)));                 \
    } while (0)

/* ---- hand-computed cases -------------------------------------------------------------------- */

/* Curve (4, 10), (8, 20): step f = 10 on (0,4], 20 on (4,8]; linear f = 10 on (0,4], a line to
 * 20 at 8; past 8 both extend with slope 10/4: f(9) = 22.5. GPU overheads 1 and 2.
 * Experts 0 and 1 on GPU 0, expert 2 on GPU 1. Steps: [3,6,2], [0,0,0], [1,2,9]. */
static const int64_t H_TOK[] = {4, 8};
static const double H_LAT[] = {10, 20};
static const double H_OVH[] = {1, 2};
static const double H_LOADS[] = {3, 6, 2, 0, 0, 0, 1, 2, 9};
static const int H_MAP[] = {0, 0, 1};

static void check_steps(gem_interpolation_t interp, gem_cost_model_t model, const double *want)
{
    gem_profile_t *p = profile_of(2, 2, H_TOK, H_LAT, H_OVH, interp, model);
    gem_trace_t *t = trace_of(3, 1, 3, H_LOADS);
    gem_mapping_t *m = mapping_of(2, 1, 3, H_MAP);
    gem_report_t *r = eval(p, t, m);
    for (int s = 0; s < 3; s++) {
        double us;
        assert_ok(gem_report_step(r, s, &us));
        assert_near(us, want[s]);
    }
    gem_report_destroy(r);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static void test_hand_step_per_expert(void **state)
{
    (void)state;
    gem_profile_t *p = profile_of(2, 2, H_TOK, H_LAT, H_OVH, GEM_INTERP_STEP, GEM_COST_PER_EXPERT);
    gem_trace_t *t = trace_of(3, 1, 3, H_LOADS);
    gem_mapping_t *m = mapping_of(2, 1, 3, H_MAP);
    gem_report_t *r = eval(p, t, m);
    /* s0: T0 = 1 + f(3) + f(6) = 31, T1 = 2 + f(2) = 12. s1: T0 = 1, T1 = 2 (zero loads cost
     * nothing). s2: T0 = 1 + 10 + 10 = 21, T1 = 2 + f(9) = 24.5 (extrapolated). */
    double want[] = {31, 2, 24.5};
    for (int s = 0; s < 3; s++) {
        double us;
        assert_ok(gem_report_step(r, s, &us));
        assert_near(us, want[s]);
    }
    assert_near(metric(r, GEM_METRIC_TOTAL), 57.5);
    assert_near(metric(r, GEM_METRIC_MEAN), 57.5 / 3);
    assert_near(metric(r, GEM_METRIC_MAX), 31);
    assert_near(metric(r, GEM_METRIC_STEPS), 3);
    assert_near(metric(r, GEM_METRIC_P50), 24.5); /* ceil(1.5) = 2nd of 2, 24.5, 31 */
    assert_near(metric(r, GEM_METRIC_P90), 31);
    assert_near(metric(r, GEM_METRIC_P99), 31);
    assert_near(metric(r, GEM_METRIC_IMBALANCE), (62.0 / 43 + 4.0 / 3 + 49.0 / 45.5) / 3);
    double busy;
    int64_t strag;
    assert_ok(gem_report_gpu(r, 0, &busy, &strag));
    assert_near(busy, 31 + 1 + 21);
    assert_int_equal(strag, 1);
    assert_ok(gem_report_gpu(r, 1, &busy, &strag));
    assert_near(busy, 12 + 2 + 24.5);
    assert_int_equal(strag, 2);
    assert_ok(gem_report_gpu(r, 1, NULL, NULL));
    double lb = metric(r, GEM_METRIC_LOWER_BOUND);
    assert_true(lb <= metric(r, GEM_METRIC_MEAN));
    /* every step-layer is at least the largest overhead, 2 */
    assert_true(lb >= 2.0);
    gem_report_destroy(r);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static void test_hand_linear_and_aggregate(void **state)
{
    (void)state;
    /* linear: s0 T0 = 1 + 10 + f(6) = 1 + 10 + 15 = 26 */
    check_steps(GEM_INTERP_LINEAR, GEM_COST_PER_EXPERT, (double[]){26, 2, 24.5});
    /* aggregate: s0 T0 = 1 + f(9) = 23.5; s2 T0 = 1 + f(3) = 11, T1 = 24.5 */
    check_steps(GEM_INTERP_STEP, GEM_COST_AGGREGATE, (double[]){23.5, 2, 24.5});
    check_steps(GEM_INTERP_LINEAR, GEM_COST_AGGREGATE, (double[]){23.5, 2, 24.5});
}

static void test_hand_k1_and_fractional(void **state)
{
    (void)state;
    /* K = 1: f = t1 up to n1 (both interpolations), t1 * x / n1 past it */
    const int64_t tok[] = {4};
    const double lat[] = {8};
    const double loads[] = {2, 6, 0.5, 4.5};
    const int map[] = {0, 1};
    for (int interp = 0; interp < 2; interp++) {
        gem_profile_t *p = profile_of(2, 1, tok, lat, NULL, (gem_interpolation_t)interp,
                                      GEM_COST_PER_EXPERT);
        gem_trace_t *t = trace_of(2, 1, 2, loads);
        gem_mapping_t *m = mapping_of(2, 1, 2, map);
        gem_report_t *r = eval(p, t, m);
        double us;
        assert_ok(gem_report_step(r, 0, &us));
        assert_near(us, 12); /* max(f(2) = 8, f(6) = 12) */
        assert_ok(gem_report_step(r, 1, &us));
        assert_near(us, 9); /* max(f(0.5) = 8, f(4.5) = 9) */
        gem_report_destroy(r);
        gem_mapping_destroy(m);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
    /* step at fractional x: smallest sample >= x; linear between samples */
    const int64_t tok3[] = {2, 4, 6};
    const double lat3[] = {5, 7, 8};
    const double l3[] = {2.5, 4.0, 4.01};
    gem_profile_t *p = profile_of(1, 3, tok3, lat3, NULL, GEM_INTERP_STEP, GEM_COST_PER_EXPERT);
    gem_trace_t *t = trace_of(3, 1, 1, l3);
    gem_mapping_t *m = mapping_of(1, 1, 1, (int[]){0});
    gem_report_t *r = eval(p, t, m);
    double us;
    assert_ok(gem_report_step(r, 0, &us));
    assert_near(us, 7);
    assert_ok(gem_report_step(r, 1, &us));
    assert_near(us, 7);
    assert_ok(gem_report_step(r, 2, &us));
    assert_near(us, 8);
    gem_report_destroy(r);
    assert_ok(gem_profile_set_interpolation(p, GEM_INTERP_LINEAR));
    r = eval(p, t, m);
    assert_ok(gem_report_step(r, 0, &us));
    assert_near(us, 5.5); /* 5 + 0.5 x (7 - 5) / 2 */
    assert_ok(gem_report_step(r, 2, &us));
    assert_near(us, 7.005);
    gem_report_destroy(r);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static void test_hand_shares(void **state)
{
    (void)state;
    /* expert 0 (8 tokens) split 1/4 on GPU 0, 3/4 on GPU 1; expert 1 (3 tokens) on GPU 0 */
    const double loads[] = {8, 3};
    gem_mapping_t *m = NULL;
    assert_ok(gem_mapping_create(&m, 2, 1, 2));
    assert_ok(gem_mapping_add(m, 0, 0, 0, 0.25));
    assert_ok(gem_mapping_add(m, 0, 0, 1, 0.75));
    assert_ok(gem_mapping_add(m, 0, 1, 0, 1.0));
    gem_trace_t *t = trace_of(1, 1, 2, loads);
    /* per_expert: T0 = 1 + f(2) + f(3) = 21, T1 = 2 + f(6) = 22 */
    gem_profile_t *p = profile_of(2, 2, H_TOK, H_LAT, H_OVH, GEM_INTERP_STEP, GEM_COST_PER_EXPERT);
    gem_report_t *r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_MEAN), 22);
    int64_t strag;
    assert_ok(gem_report_gpu(r, 1, NULL, &strag));
    assert_int_equal(strag, 1);
    gem_report_destroy(r);
    /* aggregate: T0 = 1 + f(5) = 21, T1 = 2 + f(6) = 22 */
    assert_ok(gem_profile_set_cost_model(p, GEM_COST_AGGREGATE));
    r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_MEAN), 22);
    double busy;
    assert_ok(gem_report_gpu(r, 0, &busy, NULL));
    assert_near(busy, 21);
    gem_report_destroy(r);
    gem_profile_destroy(p);
    gem_trace_destroy(t);
    gem_mapping_destroy(m);
}

static void test_percentiles_nearest_rank(void **state)
{
    (void)state;
    /* f(x) = x (linear through (1,1), (2,2), extended), one GPU: step s costs s + 1 */
    const int64_t tok[] = {1, 2};
    const double lat[] = {1, 2};
    double loads[10];
    for (int s = 0; s < 10; s++) loads[s] = (double)((s * 7) % 10 + 1); /* 1..10, shuffled */
    gem_profile_t *p = profile_of(1, 2, tok, lat, NULL, GEM_INTERP_LINEAR, GEM_COST_PER_EXPERT);
    gem_trace_t *t = trace_of(10, 1, 1, loads);
    gem_mapping_t *m = mapping_of(1, 1, 1, (int[]){0});
    gem_report_t *r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_P50), 5);
    assert_near(metric(r, GEM_METRIC_P90), 9); /* the 9th of 10, not the 10th */
    assert_near(metric(r, GEM_METRIC_P99), 10);
    assert_near(metric(r, GEM_METRIC_MAX), 10);
    assert_near(metric(r, GEM_METRIC_MEAN), 5.5);
    /* one GPU, one expert: the bound is exact */
    assert_near(metric(r, GEM_METRIC_LOWER_BOUND), 5.5);
    assert_near(metric(r, GEM_METRIC_IMBALANCE), 1);
    gem_report_destroy(r);
    gem_trace_destroy(t);
    /* a single step is every percentile */
    t = trace_of(1, 1, 1, (double[]){3});
    r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_P50), 3);
    assert_near(metric(r, GEM_METRIC_P99), 3);
    gem_report_destroy(r);
    gem_trace_destroy(t);
    gem_mapping_destroy(m);
    gem_profile_destroy(p);
}

/* ---- brute force ---------------------------------------------------------------------------- */

typedef struct {
    int G;
    int linear, aggregate;
    size_t k[8];
    int64_t tok[8][8];
    double lat[8][8];
    double c[8];
} bf_profile;

/* SPEC 2's f, read literally. */
static double bf_f(const bf_profile *b, int g, double x)
{
    const int64_t *n = b->tok[g];
    const double *t = b->lat[g];
    size_t K = b->k[g];
    if (x == 0) return 0;
    if (x > (double)n[K - 1]) {
        if (K == 1) return t[0] * x / (double)n[0];
        return t[K - 1] + (x - (double)n[K - 1]) * (t[K - 1] - t[K - 2]) /
                              (double)(n[K - 1] - n[K - 2]);
    }
    if (!b->linear) {
        for (size_t i = 0; i < K; i++)
            if ((double)n[i] >= x) return t[i];
    }
    if (x <= (double)n[0]) return t[0];
    for (size_t i = 0; i + 1 < K; i++)
        if ((double)n[i] < x && x <= (double)n[i + 1])
            return t[i] + (x - (double)n[i]) * (t[i + 1] - t[i]) / (double)(n[i + 1] - n[i]);
    fail_msg("bf_f: no piece for x = %g", x);
    return 0;
}

/* Reads the profile back through the public interface. */
static void bf_read(const gem_profile_t *p, bf_profile *b)
{
    int32_t G;
    gem_interpolation_t in;
    gem_cost_model_t cm;
    assert_ok(gem_profile_num_gpus(p, &G));
    assert_ok(gem_profile_get_interpolation(p, &in));
    assert_ok(gem_profile_get_cost_model(p, &cm));
    b->G = G;
    b->linear = in == GEM_INTERP_LINEAR;
    b->aggregate = cm == GEM_COST_AGGREGATE;
    for (int g = 0; g < G; g++) {
        assert_ok(gem_profile_get_curve(p, g, b->tok[g], b->lat[g], 8, &b->k[g]));
        assert_true(b->k[g] <= 8);
        assert_ok(gem_profile_get_overhead(p, g, &b->c[g]));
    }
}

typedef struct {
    double mean, p50, p90, p99, total, max, imbalance;
    double step[64];
    double busy[8];
    int64_t strag[8];
} bf_result;

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double bf_pct(const double *sorted, int S, int p)
{
    int k = (p * S + 99) / 100; /* ceil(p/100 * S) */
    if (k < 1) k = 1;
    return sorted[k - 1];
}

static void bf_eval(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m,
                    bf_result *out)
{
    bf_profile b;
    bf_read(p, &b);
    int64_t S;
    int32_t L, E;
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    assert_true(S <= 64 && E <= 16);
    memset(out, 0, sizeof *out);
    double imb = 0;
    for (int64_t s = 0; s < S; s++) {
        for (int l = 0; l < L; l++) {
            double n[16], T[8], X[8];
            assert_ok(gem_trace_get(t, s, l, n, 16));
            for (int g = 0; g < b.G; g++) T[g] = b.c[g], X[g] = 0;
            size_t np;
            assert_ok(gem_mapping_num_placements(m, l, &np));
            for (size_t i = 0; i < np; i++) {
                int32_t e, g;
                double w;
                assert_ok(gem_mapping_get(m, l, i, &e, &g, &w));
                if (b.aggregate) X[g] += w * n[e];
                else T[g] += bf_f(&b, g, w * n[e]);
            }
            if (b.aggregate)
                for (int g = 0; g < b.G; g++) T[g] += bf_f(&b, g, X[g]);
            int arg = 0;
            double sum = 0;
            for (int g = 0; g < b.G; g++) {
                if (T[g] > T[arg]) arg = g;
                sum += T[g];
                out->busy[g] += T[g];
            }
            out->strag[arg]++;
            out->step[s] += T[arg];
            imb += sum > 0 ? T[arg] / (sum / b.G) : 1.0;
        }
        out->total += out->step[s];
        if (s == 0 || out->step[s] > out->max) out->max = out->step[s];
    }
    out->mean = out->total / (double)S;
    out->imbalance = imb / (double)(S * L);
    double sorted[64];
    memcpy(sorted, out->step, sizeof(double) * (size_t)S);
    qsort(sorted, (size_t)S, sizeof(double), cmp_dbl);
    out->p50 = bf_pct(sorted, (int)S, 50);
    out->p90 = bf_pct(sorted, (int)S, 90);
    out->p99 = bf_pct(sorted, (int)S, 99);
}

/* ---- random cases --------------------------------------------------------------------------- */

static int rnd(uint64_t *st, int lo, int hi) /* [lo, hi] */
{
    return lo + (int)(tu_rand(st) % (uint64_t)(hi - lo + 1));
}

static gem_profile_t *random_profile(uint64_t *st, int G)
{
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, G));
    assert_ok(gem_profile_set_interpolation(p, (gem_interpolation_t)rnd(st, 0, 1)));
    assert_ok(gem_profile_set_cost_model(p, (gem_cost_model_t)rnd(st, 0, 1)));
    int monotone = rnd(st, 0, 3) != 0;
    for (int g = 0; g < G; g++) {
        int k = rnd(st, 1, 5);
        int64_t tok[8];
        double lat[8];
        int64_t x = rnd(st, 1, 8);
        double y = 1 + 20 * tu_uniform(st);
        for (int i = 0; i < k; i++) {
            tok[i] = x;
            lat[i] = y;
            x += rnd(st, 1, 12);
            y = monotone ? y + 15 * tu_uniform(st) : 1 + 30 * tu_uniform(st);
        }
        assert_ok(gem_profile_set_curve(p, g, (size_t)k, tok, lat, NULL));
        assert_ok(gem_profile_set_overhead(p, g, rnd(st, 0, 1) ? 10 * tu_uniform(st) : 0));
    }
    return p;
}

static gem_trace_t *random_trace(uint64_t *st, int64_t S, int L, int E)
{
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, L, E));
    int fractional = rnd(st, 0, 2) == 0;
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            double row[16];
            for (int e = 0; e < E; e++) {
                int r = rnd(st, 0, 9);
                row[e] = r < 2 ? 0 : fractional ? 40 * tu_uniform(st) : rnd(st, 1, 40);
            }
            assert_ok(gem_trace_set(t, s, l, row, (size_t)E));
        }
    return t;
}

/* Random valid mapping; replicas (with random shares) when `replicas`. */
static gem_mapping_t *random_mapping(uint64_t *st, int G, int L, int E, int replicas)
{
    gem_mapping_t *m = NULL;
    assert_ok(gem_mapping_create(&m, G, L, E));
    for (int l = 0; l < L; l++)
        for (int e = 0; e < E; e++) {
            int perm[8];
            for (int g = 0; g < G; g++) perm[g] = g;
            for (int g = G - 1; g > 0; g--) {
                int j = rnd(st, 0, g), tmp = perm[g];
                perm[g] = perm[j];
                perm[j] = tmp;
            }
            int k = replicas && rnd(st, 0, 1) ? rnd(st, 1, G) : 1;
            double w[8], sum = 0;
            for (int i = 0; i < k; i++) sum += (w[i] = 0.2 + tu_uniform(st));
            double used = 0;
            for (int i = 0; i < k; i++) {
                double share = i + 1 < k ? w[i] / sum : 1.0 - used;
                used += share;
                assert_ok(gem_mapping_add(m, l, e, perm[i], share));
            }
        }
    assert_ok(gem_mapping_validate(m));
    return m;
}

static void compare(const gem_report_t *r, const bf_result *b, int G, int64_t S)
{
    assert_near(metric(r, GEM_METRIC_MEAN), b->mean);
    assert_near(metric(r, GEM_METRIC_TOTAL), b->total);
    assert_near(metric(r, GEM_METRIC_MAX), b->max);
    assert_near(metric(r, GEM_METRIC_P50), b->p50);
    assert_near(metric(r, GEM_METRIC_P90), b->p90);
    assert_near(metric(r, GEM_METRIC_P99), b->p99);
    assert_near(metric(r, GEM_METRIC_IMBALANCE), b->imbalance);
    assert_near(metric(r, GEM_METRIC_STEPS), (double)S);
    for (int64_t s = 0; s < S; s++) {
        double us;
        assert_ok(gem_report_step(r, s, &us));
        assert_near(us, b->step[s]);
    }
    for (int g = 0; g < G; g++) {
        double busy;
        int64_t strag;
        assert_ok(gem_report_gpu(r, g, &busy, &strag));
        assert_near(busy, b->busy[g]);
        assert_int_equal(strag, b->strag[g]);
    }
    assert_true(metric(r, GEM_METRIC_LOWER_BOUND) <= metric(r, GEM_METRIC_MEAN));
}

static void test_brute_force_random(void **state)
{
    (void)state;
    uint64_t st = 12345;
    for (int iter = 0; iter < 400; iter++) {
        int G = rnd(&st, 1, 5), L = rnd(&st, 1, 3), E = rnd(&st, 1, 9);
        int64_t S = rnd(&st, 1, 24);
        gem_profile_t *p = random_profile(&st, G);
        gem_trace_t *t = random_trace(&st, S, L, E);
        gem_mapping_t *m = random_mapping(&st, G, L, E, iter % 2);
        gem_report_t *r = eval(p, t, m);
        bf_result b;
        bf_eval(p, t, m, &b);
        compare(r, &b, G, S);
        gem_report_destroy(r);
        gem_mapping_destroy(m);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

/* Same report, bit for bit, whatever the thread count (chunks depend on the trace only). */
static void test_threads_identical(void **state)
{
    (void)state;
    uint64_t st = 99;
    gem_profile_t *p = tu_profile(8, (double[]){1, 1.1, 1.2, 1.05, 1, 1.3, 1.1, 1.02}, 16, 12,
                                  30, 5);
    gem_trace_t *t = tu_trace(300, 6, 64, 50, 7);
    gem_mapping_t *m = random_mapping(&st, 8, 6, 64, 0);
    gem_options_t *o1 = NULL, *o4 = NULL;
    assert_ok(gem_options_create(&o1));
    assert_ok(gem_options_create(&o4));
    assert_ok(gem_options_set_int(o1, GEM_OPT_THREADS, 1));
    assert_ok(gem_options_set_int(o4, GEM_OPT_THREADS, 4));
    gem_report_t *r1 = NULL, *r4 = NULL;
    assert_ok(gem_evaluate(p, t, m, o1, &r1));
    assert_ok(gem_evaluate(p, t, m, o4, &r4));
    for (int k = GEM_METRIC_MEAN; k <= GEM_METRIC_IMBALANCE; k++)
        assert_true(metric(r1, (gem_metric_t)k) == metric(r4, (gem_metric_t)k));
    for (int g = 0; g < 8; g++) {
        double b1, b4;
        int64_t s1, s4;
        assert_ok(gem_report_gpu(r1, g, &b1, &s1));
        assert_ok(gem_report_gpu(r4, g, &b4, &s4));
        assert_true(b1 == b4);
        assert_int_equal(s1, s4);
    }
    char *j1 = NULL, *j4 = NULL;
    assert_ok(gem_report_to_json(r1, &j1));
    assert_ok(gem_report_to_json(r4, &j4));
    assert_string_equal(j1, j4);
    gem_free(j1);
    gem_free(j4);
    gem_report_destroy(r1);
    gem_report_destroy(r4);
    gem_options_destroy(o1);
    gem_options_destroy(o4);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* ---- lower bound ---------------------------------------------------------------------------- */

/* Brute-force mean of the single-placement mapping gpu_of (every layer alike is not needed:
 * layers are independent, so the optimum picks each layer's best; here L = 1). */
static double bf_mean_of(const gem_profile_t *p, const gem_trace_t *t, int G, int E,
                         const int *gpu_of)
{
    gem_mapping_t *m = mapping_of(G, 1, E, gpu_of);
    bf_result b;
    bf_eval(p, t, m, &b);
    gem_mapping_destroy(m);
    return b.mean;
}

static void test_lower_bound_below_exhaustive_optimum(void **state)
{
    (void)state;
    uint64_t st = 777;
    for (int iter = 0; iter < 60; iter++) {
        int G = rnd(&st, 1, 3), E = rnd(&st, 1, 6);
        int64_t S = rnd(&st, 1, 6);
        gem_profile_t *p = random_profile(&st, G);
        gem_trace_t *t = random_trace(&st, S, 1, E);
        /* the exhaustive optimum over all G^E single-placement mappings */
        int gpu_of[8] = {0};
        double best = INFINITY;
        for (;;) {
            double v = bf_mean_of(p, t, G, E, gpu_of);
            if (v < best) best = v;
            int i = 0;
            while (i < E && ++gpu_of[i] == G) gpu_of[i++] = 0;
            if (i == E) break;
        }
        /* any mapping's report carries the bound of its class: without replicas (all such
         * mappings share it) and with replicas (which also covers the single ones) */
        for (int rep = 0; rep < 2; rep++) {
            gem_mapping_t *m = random_mapping(&st, G, 1, E, rep);
            gem_report_t *r = eval(p, t, m);
            double lb = metric(r, GEM_METRIC_LOWER_BOUND);
            if (!(lb <= best + 1e-12 * (1 + fabs(best))))
                print_error("iter %d rep %d: bound %.17g above optimum %.17g\n", iter, rep, lb,
                            best);
            assert_true(lb <= best + 1e-12 * (1 + fabs(best)));
            gem_report_destroy(r);
            gem_mapping_destroy(m);
        }
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

static void test_lower_bound_below_every_policy(void **state)
{
    (void)state;
    uint64_t st = 4242;
    for (int iter = 0; iter < 30; iter++) {
        int G = rnd(&st, 1, 6), L = rnd(&st, 1, 3), E = rnd(&st, G, 14);
        int64_t S = rnd(&st, 1, 10);
        gem_profile_t *p = iter % 2 ? random_profile(&st, G)
                                    : tu_profile(G, (double[]){1, 1.3, 1.1, 2, 1.05, 1.5}, 8, 6,
                                                 20, 3);
        gem_trace_t *t = random_trace(&st, S, L, E);
        gem_options_t *o = NULL;
        assert_ok(gem_options_create(&o));
        assert_ok(gem_options_set_int(o, GEM_OPT_TIME_LIMIT_MS, 200));
        for (int pol = 0; pol < GEM_POLICY_COUNT; pol++) {
            for (int rep = 0; rep < 2; rep++) {
                if (rep && pol != GEM_POLICY_EPLB) continue;
                assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, rep ? rnd(&st, 1, G) : 0));
                gem_mapping_t *m = NULL;
                gem_status_t s = gem_compute_mapping(p, t, (gem_policy_t)pol, o, NULL, &m);
                if (s == GEM_ERR_NOT_SUPPORTED &&
                    (pol == GEM_POLICY_GEM || pol == GEM_POLICY_EXACT))
                    continue; /* policies still being written elsewhere */
                if (s == GEM_ERR_INFEASIBLE && rep) continue; /* more copies than G allows */
                assert_ok(s);
                gem_report_t *r = eval(p, t, m);
                assert_true(metric(r, GEM_METRIC_LOWER_BOUND) <= metric(r, GEM_METRIC_MEAN));
                gem_report_destroy(r);
                gem_mapping_destroy(m);
            }
        }
        gem_options_destroy(o);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

/* Identical GPUs with a linear f(x) = x and no overhead: the fluid bound is N / G per layer,
 * and a mapping that splits the tokens evenly attains it. */
static void test_lower_bound_tight_fluid(void **state)
{
    (void)state;
    const int64_t tok[] = {1, 2};
    const double lat[] = {1, 2};
    const double loads[] = {6, 2, 4, 4}; /* N = 16 over 2 GPUs: 8 each */
    gem_profile_t *p = profile_of(2, 2, tok, lat, NULL, GEM_INTERP_LINEAR, GEM_COST_AGGREGATE);
    gem_trace_t *t = trace_of(1, 1, 4, loads);
    gem_mapping_t *m = mapping_of(2, 1, 4, (int[]){0, 0, 1, 1});
    gem_report_t *r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_MEAN), 8);
    assert_near(metric(r, GEM_METRIC_LOWER_BOUND), 8);
    gem_report_destroy(r);
    /* per_expert too: f is additive here, and the heaviest expert (6) is below 8 */
    assert_ok(gem_profile_set_cost_model(p, GEM_COST_PER_EXPERT));
    r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_LOWER_BOUND), 8);
    gem_report_destroy(r);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    /* one expert heavier than the even split: the heaviest-expert bound 12 takes over */
    t = trace_of(1, 1, 4, (double[]){12, 1, 1, 2});
    m = mapping_of(2, 1, 4, (int[]){0, 1, 1, 1});
    r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_MEAN), 12);
    assert_near(metric(r, GEM_METRIC_LOWER_BOUND), 12);
    gem_report_destroy(r);
    assert_ok(gem_profile_set_cost_model(p, GEM_COST_AGGREGATE)); /* f non-decreasing */
    r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_LOWER_BOUND), 12);
    gem_report_destroy(r);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* Step curves: a GPU pays a whole tile for one token, so two light experts sharing a GPU cost
 * two tiles; the Lagrangian (average) bound sees that, the fluid bound does not. */
static void test_lower_bound_per_expert_tiles(void **state)
{
    (void)state;
    const int64_t tok[] = {64};
    const double lat[] = {10};
    /* four experts of 1 token on 2 GPUs: at least 2 per GPU... or 3 on one: optimum 20 */
    gem_profile_t *p = profile_of(2, 1, tok, lat, NULL, GEM_INTERP_STEP, GEM_COST_PER_EXPERT);
    gem_trace_t *t = trace_of(1, 1, 4, (double[]){1, 1, 1, 1});
    gem_mapping_t *m = mapping_of(2, 1, 4, (int[]){0, 0, 1, 1});
    gem_report_t *r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_MEAN), 20);
    assert_near(metric(r, GEM_METRIC_LOWER_BOUND), 20);
    gem_report_destroy(r);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* A curve that falls past its last sample goes below zero for large x; the bound must stay a
 * bound (and the evaluation follows SPEC 2 literally). */
static void test_lower_bound_falling_tail(void **state)
{
    (void)state;
    const int64_t tok[] = {1, 2};
    const double lat[] = {10, 9};
    gem_profile_t *p = profile_of(2, 2, tok, lat, (double[]){50, 50}, GEM_INTERP_STEP,
                                  GEM_COST_PER_EXPERT);
    gem_trace_t *t = trace_of(1, 1, 2, (double[]){30, 1}); /* f(30) = 9 - 28 = -19 */
    for (int agg = 0; agg < 2; agg++) {
        assert_ok(gem_profile_set_cost_model(p, agg ? GEM_COST_AGGREGATE : GEM_COST_PER_EXPERT));
        double best = INFINITY;
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                gem_mapping_t *m = mapping_of(2, 1, 2, (int[]){a, b});
                gem_report_t *r = eval(p, t, m);
                best = fmin(best, metric(r, GEM_METRIC_MEAN));
                gem_report_destroy(r);
                gem_mapping_destroy(m);
            }
        gem_mapping_t *m = mapping_of(2, 1, 2, (int[]){0, 1});
        gem_report_t *r = eval(p, t, m);
        assert_true(metric(r, GEM_METRIC_LOWER_BOUND) <= best);
        gem_report_destroy(r);
        gem_mapping_destroy(m);
    }
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* ---- whole-trace bound ---------------------------------------------------------------------- */

/* Brute force over fixed single-placement mappings of one layer: f table F[s][e][g] of SPEC 2
 * read literally, then sum over steps of the straggler's time. */
typedef struct {
    int G, E, S;
    double c[8];
    double F[8][8][8]; /* [s][e][g] */
} bf_layer;

static void bf_layer_of(const gem_profile_t *p, const gem_trace_t *t, bf_layer *b)
{
    bf_profile bp;
    bf_read(p, &bp);
    int64_t S;
    int32_t L, E;
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    assert_true(S <= 8 && E <= 8 && bp.G <= 8 && L == 1);
    b->G = bp.G, b->E = E, b->S = (int)S;
    for (int g = 0; g < bp.G; g++) b->c[g] = bp.c[g];
    for (int s = 0; s < S; s++) {
        double n[8];
        assert_ok(gem_trace_get(t, s, 0, n, 8));
        for (int e = 0; e < E; e++)
            for (int g = 0; g < bp.G; g++) b->F[s][e][g] = bf_f(&bp, g, n[e]);
    }
}

/* Layer latency of step s under gpu_of. */
static double bf_step(const bf_layer *b, int s, const int *gpu_of)
{
    double T[8] = {0};
    for (int g = 0; g < b->G; g++) T[g] = b->c[g];
    for (int e = 0; e < b->E; e++) T[gpu_of[e]] += b->F[s][e][gpu_of[e]];
    double mx = T[0];
    for (int g = 1; g < b->G; g++) mx = fmax(mx, T[g]);
    return mx;
}

/* Over every mapping (with GPU g holding count[g] experts unless count is NULL): the best
 * mean of a fixed mapping, and the mean over steps of each step's own best mapping (what a
 * mapping that could change every step would get; every per-step bound is below it). */
static void bf_optima(const bf_layer *b, const int *count, double *fixed, double *per_step)
{
    int gpu_of[8] = {0};
    double step_best[8];
    for (int s = 0; s < b->S; s++) step_best[s] = INFINITY;
    double best = INFINITY;
    for (;;) {
        int n[8] = {0}, ok = 1;
        for (int e = 0; e < b->E; e++) n[gpu_of[e]]++;
        for (int g = 0; g < b->G && count; g++) ok &= n[g] == count[g];
        if (ok) {
            double sum = 0;
            for (int s = 0; s < b->S; s++) {
                double v = bf_step(b, s, gpu_of);
                sum += v;
                step_best[s] = fmin(step_best[s], v);
            }
            best = fmin(best, sum / b->S);
        }
        int i = 0;
        while (i < b->E && ++gpu_of[i] == b->G) gpu_of[i++] = 0;
        if (i == b->E) break;
    }
    double ps = 0;
    for (int s = 0; s < b->S; s++) ps += step_best[s];
    *fixed = best;
    *per_step = ps / b->S;
}

static double bound_of(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m,
                       int slots)
{
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_BOUND_SLOTS, slots));
    gem_report_t *r = NULL;
    assert_ok(gem_evaluate(p, t, m, o, &r));
    double lb = metric(r, GEM_METRIC_LOWER_BOUND);
    assert_true(lb <= metric(r, GEM_METRIC_MEAN));
    gem_report_destroy(r);
    gem_options_destroy(o);
    return lb;
}

#define assert_below(lb, opt)                                                                 \
    do {                                                                                      \
        double lb__ = (lb), opt__ = (opt);                                                    \
        if (!(lb__ <= opt__ + 1e-9 * fabs(opt__)))                                            \
            print_error("bound %.17g above optimum %.17g\n", lb__, opt__);                   \
        assert_true(lb__ <= opt__ + 1e-9 * fabs(opt__));                                      \
    } while (0)

/* 6 experts on 3 GPUs over 8 steps, random curves (some falling), overheads and loads (with
 * zeros): the bound of a random mapping is never above the best fixed mapping (all 729),
 * and with GEM_OPT_BOUND_SLOTS never above the best with the mapping's own slot counts; on
 * many cases it is above the mean of each step's own optimum, which no per-step bound can
 * be, so the whole-trace bound is doing its work. */
static void test_whole_trace_below_exhaustive_optimum(void **state)
{
    (void)state;
    uint64_t st = 2024;
    int beyond = 0, beyond_slots = 0, cases = 120;
    for (int iter = 0; iter < cases; iter++) {
        const int G = 3, E = 6;
        int64_t S = iter < 10 ? rnd(&st, 1, 8) : 8;
        gem_profile_t *p = random_profile(&st, G);
        assert_ok(gem_profile_set_cost_model(p, GEM_COST_PER_EXPERT));
        gem_trace_t *t = random_trace(&st, S, 1, E);
        int gpu_of[6];
        if (iter % 2) {
            for (int e = 0; e < E; e++) gpu_of[e] = e % G; /* 2 slots each */
        } else {
            for (int e = 0; e < E; e++) gpu_of[e] = rnd(&st, 0, G - 1);
        }
        gem_mapping_t *m = mapping_of(G, 1, E, gpu_of);
        int count[3] = {0};
        for (int e = 0; e < E; e++) count[gpu_of[e]]++;
        bf_layer b;
        bf_layer_of(p, t, &b);
        double fixed, per_step, fixed_k, per_step_k;
        bf_optima(&b, NULL, &fixed, &per_step);
        bf_optima(&b, count, &fixed_k, &per_step_k);
        double lb = bound_of(p, t, m, 0), lbk = bound_of(p, t, m, 1);
        assert_below(lb, fixed);
        assert_below(lbk, fixed_k);
        beyond += lb > per_step * (1 + 1e-9);
        beyond_slots += lbk > per_step_k * (1 + 1e-9);
        gem_mapping_destroy(m);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
    if (beyond < cases / 12 || beyond_slots < cases / 2) /* 15 and 98 when written */
        print_error("beyond the per-step optimum in %d (slots: %d) of %d cases\n", beyond,
                    beyond_slots, cases);
    assert_true(beyond >= cases / 12 && beyond_slots >= cases / 2);
}

/* Mappings of any slot counts, replicas too: the slot option's bound stays below the mean
 * and, where the layer has replicas, is the general one. */
static void test_bound_slots_random_mappings(void **state)
{
    (void)state;
    uint64_t st = 31337;
    for (int iter = 0; iter < 40; iter++) {
        int G = rnd(&st, 1, 4), L = rnd(&st, 1, 3), E = rnd(&st, 1, 9);
        int64_t S = rnd(&st, 1, 12);
        gem_profile_t *p = random_profile(&st, G);
        gem_trace_t *t = random_trace(&st, S, L, E);
        gem_mapping_t *m = random_mapping(&st, G, L, E, iter % 2);
        double lb = bound_of(p, t, m, 0), lbk = bound_of(p, t, m, 1);
        int single = 0;
        for (int l = 0; l < L; l++) {
            size_t np;
            assert_ok(gem_mapping_num_placements(m, l, &np));
            single |= np == (size_t)E;
        }
        if (!single) assert_true(lbk == lb); /* only layers of one copy each count slots */
        gem_mapping_destroy(m);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

/* The best place for the expert changes with its load: GPU 0 (no overhead, f = 2x) for 10
 * tokens, GPU 1 (overhead 50, f = x) for 100. Step by step the best mappings give 50 and 150,
 * mean 100, and every per-step bound is at most that; a fixed mapping pays 50 + 200 or
 * 60 + 150, mean at least 105, and the whole-trace bound proves it: its start puts each
 * step's weight on the GPU of the expert, min over g of (c_g + f_g(10)) + (c_g + f_g(100)). */
static void test_whole_trace_fixed_placement(void **state)
{
    (void)state;
    const int64_t tok[] = {1, 2};
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, 2));
    assert_ok(gem_profile_set_interpolation(p, GEM_INTERP_LINEAR));
    assert_ok(gem_profile_set_curve(p, 0, 2, tok, (double[]){2, 4}, NULL));
    assert_ok(gem_profile_set_curve(p, 1, 2, tok, (double[]){1, 2}, NULL));
    assert_ok(gem_profile_set_overhead(p, 1, 50));
    gem_trace_t *t = trace_of(2, 1, 1, (double[]){10, 100});
    for (int g = 0; g < 2; g++) {
        gem_mapping_t *m = mapping_of(2, 1, 1, (int[]){g});
        gem_report_t *r = eval(p, t, m);
        assert_near(metric(r, GEM_METRIC_MEAN), g ? 105 : 125);
        assert_near(metric(r, GEM_METRIC_LOWER_BOUND), 105);
        gem_report_destroy(r);
        /* one expert on one GPU: its slot counts leave only this mapping */
        assert_near(bound_of(p, t, m, 1), g ? 105 : 125);
        gem_mapping_destroy(m);
    }
    /* each step alone: the per-step bound, equal to that step's optimum */
    for (int s = 0; s < 2; s++) {
        gem_trace_t *t1 = trace_of(1, 1, 1, (double[]){s ? 100.0 : 10.0});
        gem_mapping_t *m = mapping_of(2, 1, 1, (int[]){s});
        gem_report_t *r = eval(p, t1, m);
        assert_near(metric(r, GEM_METRIC_LOWER_BOUND), s ? 150 : 50);
        assert_near(metric(r, GEM_METRIC_MEAN), s ? 150 : 50);
        gem_report_destroy(r);
        gem_mapping_destroy(m);
        gem_trace_destroy(t1);
    }
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* Two experts hot in turn (100 tokens, the other 10), a fast GPU (f = x) and a slow one
 * (f = 2x). Step by step the hot expert sits on the fast GPU: 100 every step, which is also
 * the per-step bound. With one expert per GPU (slots) a fixed mapping puts one of them on the
 * slow GPU for good: max(100, 20) + max(10, 200), mean 150, and GEM_OPT_BOUND_SLOTS proves
 * exactly that. Without the slot counts both experts may share the fast GPU (110 a step):
 * the general bound lies between 100 and 110. */
static void test_bound_slots_alternating(void **state)
{
    (void)state;
    const int64_t tok[] = {1, 2};
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, 2));
    assert_ok(gem_profile_set_interpolation(p, GEM_INTERP_LINEAR));
    assert_ok(gem_profile_set_curve(p, 0, 2, tok, (double[]){1, 2}, NULL));
    assert_ok(gem_profile_set_curve(p, 1, 2, tok, (double[]){2, 4}, NULL));
    gem_trace_t *t = trace_of(4, 1, 2, (double[]){100, 10, 10, 100, 100, 10, 10, 100});
    gem_mapping_t *m = mapping_of(2, 1, 2, (int[]){0, 1});
    gem_report_t *r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_MEAN), 150);
    double lb = metric(r, GEM_METRIC_LOWER_BOUND);
    assert_true(lb >= 100 - 1e-9 && lb <= 110 + 1e-9);
    gem_report_destroy(r);
    assert_near(bound_of(p, t, m, 1), 150);
    gem_mapping_destroy(m);
    /* both on the fast GPU: 110 a step, within the general bound, and its own slot counts
     * (two on GPU 0) make that the optimum */
    m = mapping_of(2, 1, 2, (int[]){0, 0});
    r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_MEAN), 110);
    assert_true(metric(r, GEM_METRIC_LOWER_BOUND) <= 110 + 1e-9);
    gem_report_destroy(r);
    assert_near(bound_of(p, t, m, 1), 110);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* A GPU 1.5x slower than the others must hold its share of always-busy experts when slots
 * are equal: every expert costs one tile, 4 experts per GPU, so the slow GPU takes
 * 4 x 15 = 60 a step, which the slot bound finds, while other slot counts allow 50
 * (5, 5, 4 and 2 experts). */
static void test_bound_slots_slow_gpu(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(4, (double[]){1, 1, 1, 1.5}, 64, 1, 10, 0);
    double loads[6 * 16];
    for (int i = 0; i < 6 * 16; i++) loads[i] = 1 + i % 7;
    gem_trace_t *t = trace_of(6, 1, 16, loads);
    int gpu_of[16];
    for (int e = 0; e < 16; e++) gpu_of[e] = e % 4;
    gem_mapping_t *m = mapping_of(4, 1, 16, gpu_of);
    gem_report_t *r = eval(p, t, m);
    assert_near(metric(r, GEM_METRIC_MEAN), 60);
    assert_true(metric(r, GEM_METRIC_LOWER_BOUND) <= 50 + 1e-9 * 50);
    gem_report_destroy(r);
    assert_near(bound_of(p, t, m, 1), 60);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* A trace long enough to be cut into blocks of steps (2^20 steps x experts x GPUs each):
 * the bound stays below every mapping's mean, is the same for any thread count, and the
 * option takes only 0 and 1. */
static void test_whole_trace_blocks(void **state)
{
    (void)state;
    uint64_t st = 8;
    gem_profile_t *p = tu_profile(8, (double[]){1, 1.1, 1.2, 1.05, 1, 1.3, 1.1, 1.5}, 16, 12,
                                  30, 5);
    gem_trace_t *t = tu_trace(4500, 1, 64, 60, 11); /* 3 blocks of 1500 steps */
    gem_mapping_t *m = random_mapping(&st, 8, 1, 64, 0);
    for (int slots = 0; slots < 2; slots++) {
        gem_options_t *o1 = NULL, *o3 = NULL;
        assert_ok(gem_options_create(&o1));
        assert_ok(gem_options_create(&o3));
        assert_ok(gem_options_set_int(o1, GEM_OPT_THREADS, 1));
        assert_ok(gem_options_set_int(o3, GEM_OPT_THREADS, 3));
        assert_ok(gem_options_set_int(o1, GEM_OPT_BOUND_SLOTS, slots));
        assert_ok(gem_options_set_int(o3, GEM_OPT_BOUND_SLOTS, slots));
        gem_report_t *r1 = NULL, *r3 = NULL;
        assert_ok(gem_evaluate(p, t, m, o1, &r1));
        assert_ok(gem_evaluate(p, t, m, o3, &r3));
        double lb = metric(r1, GEM_METRIC_LOWER_BOUND);
        assert_true(lb == metric(r3, GEM_METRIC_LOWER_BOUND));
        assert_true(lb > 0 && lb <= metric(r1, GEM_METRIC_MEAN));
        gem_report_destroy(r1);
        gem_report_destroy(r3);
        gem_options_destroy(o1);
        gem_options_destroy(o3);
    }
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, GEM_OPT_BOUND_SLOTS, 2));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, GEM_OPT_BOUND_SLOTS, -1));
    gem_options_destroy(o);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* ---- errors and the report interface -------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    gem_profile_t *p = profile_of(2, 2, H_TOK, H_LAT, H_OVH, GEM_INTERP_STEP, GEM_COST_PER_EXPERT);
    gem_trace_t *t = trace_of(3, 1, 3, H_LOADS);
    gem_mapping_t *m = mapping_of(2, 1, 3, H_MAP);
    gem_report_t *r = NULL;
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_evaluate(NULL, t, m, NULL, &r));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_evaluate(p, NULL, m, NULL, &r));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_evaluate(p, t, NULL, NULL, &r));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_evaluate(p, t, m, NULL, NULL));
    assert_null(r);

    /* shapes: GPUs, layers, experts */
    gem_profile_t *p3 = profile_of(3, 2, H_TOK, H_LAT, NULL, GEM_INTERP_STEP, GEM_COST_PER_EXPERT);
    assert_gem(GEM_ERR_SHAPE_MISMATCH, gem_evaluate(p3, t, m, NULL, &r));
    assert_error_has("GPUs");
    gem_trace_t *t4 = trace_of(1, 1, 4, (double[]){1, 2, 3, 4});
    assert_gem(GEM_ERR_SHAPE_MISMATCH, gem_evaluate(p, t4, m, NULL, &r));
    gem_trace_t *t2 = trace_of(1, 2, 3, (double[]){1, 2, 3, 4, 5, 6});
    assert_gem(GEM_ERR_SHAPE_MISMATCH, gem_evaluate(p, t2, m, NULL, &r));
    assert_null(r);

    /* incomplete trace: step 1 has no row for layer 0 */
    gem_trace_t *ti = NULL;
    assert_ok(gem_trace_create(&ti, 1, 3));
    assert_ok(gem_trace_set(ti, 2, 0, (double[]){1, 1, 1}, 3));
    assert_gem(GEM_ERR_INCOMPLETE, gem_evaluate(p, ti, m, NULL, &r));
    assert_error_has("step 0");
    gem_trace_t *empty = NULL;
    assert_ok(gem_trace_create(&empty, 1, 3));
    assert_gem(GEM_ERR_INCOMPLETE, gem_evaluate(p, empty, m, NULL, &r));

    /* invalid mapping: expert 2 unplaced; shares that do not sum to 1 */
    gem_mapping_t *bad = NULL;
    assert_ok(gem_mapping_create(&bad, 2, 1, 3));
    assert_ok(gem_mapping_add(bad, 0, 0, 0, 1.0));
    assert_ok(gem_mapping_add(bad, 0, 1, 1, 1.0));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_evaluate(p, t, bad, NULL, &r));
    assert_error_has("expert 2");
    assert_ok(gem_mapping_add(bad, 0, 2, 1, 0.5));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_evaluate(p, t, bad, NULL, &r));
    assert_error_has("sum");

    /* a GPU without a curve */
    gem_profile_t *pn = NULL;
    assert_ok(gem_profile_create(&pn, 2));
    assert_ok(gem_profile_set_curve(pn, 0, 2, H_TOK, H_LAT, NULL));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_evaluate(pn, t, m, NULL, &r));
    assert_error_has("gpu 1");

    /* the communication model needs the profile's all-to-all figures (test_topology.c) */
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_COMM_MODEL, 1));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_evaluate(p, t, m, o, &r));
    assert_error_has("alltoall");
    assert_null(r);

    gem_options_destroy(o);
    gem_profile_destroy(pn);
    gem_mapping_destroy(bad);
    gem_trace_destroy(empty);
    gem_trace_destroy(ti);
    gem_trace_destroy(t2);
    gem_trace_destroy(t4);
    gem_profile_destroy(p3);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

static void test_report_getters_and_json(void **state)
{
    (void)state;
    gem_profile_t *p = profile_of(2, 2, H_TOK, H_LAT, H_OVH, GEM_INTERP_STEP, GEM_COST_PER_EXPERT);
    gem_trace_t *t = trace_of(3, 1, 3, H_LOADS);
    gem_mapping_t *m = mapping_of(2, 1, 3, H_MAP);
    gem_report_t *r = eval(p, t, m);
    double v = -1;
    int64_t n = -1;
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_report_get(NULL, GEM_METRIC_MEAN, &v));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_report_get(r, GEM_METRIC_MEAN, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_report_get(r, (gem_metric_t)99, &v));
    assert_error_has("metric 99");
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_report_get(r, (gem_metric_t)-1, &v));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_report_gpu(r, 2, &v, &n));
    assert_error_has("gpu 2");
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_report_gpu(r, -1, &v, &n));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_report_gpu(NULL, 0, &v, &n));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_report_step(r, 3, &v));
    assert_error_has("step 3");
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_report_step(r, -1, &v));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_report_step(r, 0, NULL));
    assert_true(v == -1 && n == -1); /* untouched on failure */
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_report_to_json(r, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_report_to_json(NULL, NULL));

    char *js = NULL;
    assert_ok(gem_report_to_json(r, &js));
    json_error_t err;
    json_t *root = json_loads(js, 0, &err);
    assert_non_null(root);
    const char *keys[] = {"mean", "p50", "p90", "p99", "total", "max", "lower_bound", "imbalance"};
    const gem_metric_t ks[] = {GEM_METRIC_MEAN, GEM_METRIC_P50, GEM_METRIC_P90, GEM_METRIC_P99,
                               GEM_METRIC_TOTAL, GEM_METRIC_MAX, GEM_METRIC_LOWER_BOUND,
                               GEM_METRIC_IMBALANCE};
    for (int i = 0; i < 8; i++) {
        json_t *x = json_object_get(root, keys[i]);
        assert_non_null(x);
        assert_true(json_number_value(x) == metric(r, ks[i])); /* round-trip precision */
    }
    assert_int_equal(json_integer_value(json_object_get(root, "steps")), 3);
    json_t *gpus = json_object_get(root, "gpus");
    assert_int_equal(json_array_size(gpus), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(gpus, 1),
                                                        "straggler_count")), 2);
    assert_true(json_number_value(json_object_get(json_array_get(gpus, 1), "busy_us")) == 38.5);
    json_decref(root);
    gem_free(js);
    gem_report_destroy(r);
    gem_report_destroy(NULL);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* Every allocation of an evaluation may fail: the failure is reported, nothing leaks
 * (LeakSanitizer checks in the sanitizer build), and a success is the normal report. With
 * replicas (the per-step bounds only) and without them (the whole-trace bound's scratch),
 * with and without GEM_OPT_BOUND_SLOTS. */
static void test_allocation_failures(void **state)
{
    (void)state;
    uint64_t st = 5;
    gem_profile_t *p = tu_profile(4, (double[]){1, 1.2, 1.1, 1.3}, 8, 6, 10, 2);
    gem_trace_t *t = tu_trace(400, 3, 64, 40, 3); /* big enough for worker threads */
    for (int single = 0; single < 2; single++) {
        gem_mapping_t *m = random_mapping(&st, 4, 3, 64, !single);
        gem_options_t *o = NULL;
        assert_ok(gem_options_create(&o));
        assert_ok(gem_options_set_int(o, GEM_OPT_THREADS, 3));
        assert_ok(gem_options_set_int(o, GEM_OPT_BOUND_SLOTS, single));
        gem_report_t *ref = NULL;
        assert_ok(gem_evaluate(p, t, m, o, &ref));
        int failed = 0;
        for (long k = 1; k < 60; k++) {
            gem_report_t *r = NULL;
            char *js = NULL;
            gem__inject_alloc_failure(k);
            gem_status_t s = gem_evaluate(p, t, m, o, &r);
            if (s == GEM_OK) s = gem_report_to_json(r, &js);
            gem__inject_alloc_failure(0);
            assert_true(s == GEM_OK || s == GEM_ERR_NO_MEMORY);
            if (s == GEM_ERR_NO_MEMORY) {
                failed++;
                assert_error_has("memory");
            }
            if (r) {
                assert_true(metric(r, GEM_METRIC_MEAN) == metric(ref, GEM_METRIC_MEAN));
                assert_true(metric(r, GEM_METRIC_LOWER_BOUND) ==
                            metric(ref, GEM_METRIC_LOWER_BOUND));
            }
            gem_free(js);
            gem_report_destroy(r);
        }
        assert_true(failed > (single ? 30 : 10));
        gem_report_destroy(ref);
        gem_options_destroy(o);
        gem_mapping_destroy(m);
    }
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_step_per_expert),
        cmocka_unit_test(test_hand_linear_and_aggregate),
        cmocka_unit_test(test_hand_k1_and_fractional),
        cmocka_unit_test(test_hand_shares),
        cmocka_unit_test(test_percentiles_nearest_rank),
        cmocka_unit_test(test_brute_force_random),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_lower_bound_below_exhaustive_optimum),
        cmocka_unit_test(test_lower_bound_below_every_policy),
        cmocka_unit_test(test_lower_bound_tight_fluid),
        cmocka_unit_test(test_lower_bound_per_expert_tiles),
        cmocka_unit_test(test_lower_bound_falling_tail),
        cmocka_unit_test(test_whole_trace_below_exhaustive_optimum),
        cmocka_unit_test(test_bound_slots_random_mappings),
        cmocka_unit_test(test_whole_trace_fixed_placement),
        cmocka_unit_test(test_bound_slots_alternating),
        cmocka_unit_test(test_bound_slots_slow_gpu),
        cmocka_unit_test(test_whole_trace_blocks),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_report_getters_and_json),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
