/* test_map_gem.c - policies gem and exact: valid placements with the right slot counts, gem
 * within 0.5% of the exhaustive optimum on small skewed cases, exact equal to it (and proven),
 * gem never worse than balanced or speed_aware on the trace it was built from, the same result
 * for every thread count, the p90 objective, time limits, and the error statuses.
 *
 * The reference objective and the exhaustive search are written here from SPEC 2, using only
 * gem_profile_latency from the library. */
#include "testutil.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXE 64
#define MAXG 16

/* ---- fixtures ------------------------------------------------------------------------------- */

/* Skewed loads with bursts: each expert has a weight ~ u^3, each step multiplies it by a
 * random factor and, with probability 0.15, by 4 (a burst). Integer tokens, some zero. */
static gem_trace_t *skewed_trace(int64_t S, int L, int E, double scale, uint64_t seed)
{
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, L, E));
    double w[MAXE], row[MAXE];
    for (int l = 0; l < L; l++) {
        for (int e = 0; e < E; e++) {
            double u = tu_uniform(&seed);
            w[e] = 0.05 + u * u * u;
        }
        for (int64_t s = 0; s < S; s++) {
            for (int e = 0; e < E; e++) {
                double x = w[e] * (0.3 + 1.4 * tu_uniform(&seed));
                if (tu_uniform(&seed) < 0.15) x *= 4;
                row[e] = floor(x * scale);
            }
            assert_ok(gem_trace_set(t, s, l, row, (size_t)E));
        }
    }
    return t;
}

/* G GPUs with slowdowns in [1, 1 + spread] (seeded), step curves on tile 16, 12 tiles. */
static gem_profile_t *var_profile(int G, double spread, uint64_t seed, gem_cost_model_t model)
{
    double sd[MAXG];
    for (int g = 0; g < G; g++) sd[g] = 1.0 + spread * tu_uniform(&seed);
    gem_profile_t *p = tu_profile(G, sd, 16, 12, 100.0, 10.0);
    assert_ok(gem_profile_set_cost_model(p, model));
    return p;
}

typedef struct {
    gem_profile_t *p;
    gem_trace_t *t;
    gem_classification_t *cls;
    gem_options_t *o;
    int32_t slots[MAXG];
    gem__map_ctx ctx;
} fixture;

static void fixture_init(fixture *f, gem_profile_t *p, gem_trace_t *t)
{
    memset(f, 0, sizeof *f);
    f->p = p;
    f->t = t;
    assert_ok(gem_options_create(&f->o));
    assert_ok(gem_classify_experts(t, f->o, &f->cls));
    int64_t S;
    int32_t L, E, G;
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    assert_ok(gem_profile_num_gpus(p, &G));
    for (int g = 0; g < G; g++) f->slots[g] = E / G + (g < E % G ? 1 : 0);
    f->ctx = (gem__map_ctx){.profile = p, .trace = t, .opts = f->o, .cls = f->cls,
                            .num_gpus = G, .num_layers = L, .num_experts = E, .num_steps = S,
                            .slots = f->slots};
}

static void fixture_free(fixture *f)
{
    gem_classification_destroy(f->cls);
    gem_options_destroy(f->o);
    gem_trace_destroy(f->t);
    gem_profile_destroy(f->p);
}

/* Runs a layer policy and returns gpu[e], checking one placement per expert, share 1, and
 * at most (exactly, when the slots add up to E) slots[g] experts on GPU g. */
static void run_layer(const gem__map_ctx *ctx, int l, gem__layer_policy_fn fn, int *gpu)
{
    gem__layer_map lm = {0, 0, NULL};
    assert_ok(fn(ctx, l, &lm));
    assert_int_equal(lm.n, (size_t)ctx->num_experts);
    int count[MAXG] = {0}, total = 0;
    for (int e = 0; e < ctx->num_experts; e++) gpu[e] = -1;
    for (size_t i = 0; i < lm.n; i++) {
        const gem__placement *q = &lm.p[i];
        assert_true(q->expert >= 0 && q->expert < ctx->num_experts);
        assert_true(q->gpu >= 0 && q->gpu < ctx->num_gpus);
        assert_true(q->share == 1.0);
        assert_int_equal(gpu[q->expert], -1);
        gpu[q->expert] = q->gpu;
        count[q->gpu]++;
    }
    for (int g = 0; g < ctx->num_gpus; g++) {
        assert_true(count[g] <= ctx->slots[g]);
        total += ctx->slots[g];
    }
    if (total == ctx->num_experts)
        for (int g = 0; g < ctx->num_gpus; g++) assert_int_equal(count[g], ctx->slots[g]);
    free(lm.p);
}

/* ---- reference objective (SPEC 2) ------------------------------------------------------------ */

typedef struct {
    int G, E;
    int64_t S;
    int aggregate;
    const gem_profile_t *p;
    double over[MAXG];
    double *C;     /* [E][G][S] f_g(n) */
    double *load;  /* [E][S] */
} ref_layer;

static void ref_init(ref_layer *r, const gem_profile_t *p, const gem_trace_t *t, int l)
{
    int32_t L, E, G;
    int64_t S;
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    assert_ok(gem_profile_num_gpus(p, &G));
    gem_cost_model_t model;
    assert_ok(gem_profile_get_cost_model(p, &model));
    r->G = G, r->E = E, r->S = S, r->p = p;
    r->aggregate = model == GEM_COST_AGGREGATE;
    r->C = malloc(sizeof *r->C * (size_t)E * G * S);
    r->load = malloc(sizeof *r->load * (size_t)E * S);
    double row[MAXE];
    for (int g = 0; g < G; g++) assert_ok(gem_profile_get_overhead(p, g, &r->over[g]));
    for (int64_t s = 0; s < S; s++) {
        assert_ok(gem_trace_get(t, s, l, row, MAXE));
        for (int e = 0; e < E; e++) {
            r->load[(size_t)e * S + s] = row[e];
            for (int g = 0; g < G; g++)
                assert_ok(gem_profile_latency(p, g, row[e], &r->C[((size_t)e * G + g) * S + s]));
        }
    }
}

static void ref_free(ref_layer *r)
{
    free(r->C);
    free(r->load);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sum over steps of the layer latency, and its nearest-rank p90. */
static double ref_eval(const ref_layer *r, const int *gpu, double *p90)
{
    double total = 0, lat[256];
    for (int64_t s = 0; s < r->S; s++) {
        double T[MAXG] = {0};
        for (int e = 0; e < r->E; e++)
            T[gpu[e]] += r->aggregate ? r->load[(size_t)e * r->S + s]
                                      : r->C[((size_t)e * r->G + gpu[e]) * r->S + s];
        double m = 0;
        for (int g = 0; g < r->G; g++) {
            double x = T[g];
            if (r->aggregate) assert_ok(gem_profile_latency(r->p, g, T[g], &x));
            x += r->over[g];
            if (x > m) m = x;
        }
        lat[s] = m;
        total += m;
    }
    if (p90) {
        qsort(lat, (size_t)r->S, sizeof *lat, cmp_dbl);
        *p90 = lat[gem__nearest_rank(90, (size_t)r->S)];
    }
    return total;
}

/* Exhaustive optimum over assignments with exactly slots[g] experts per GPU; p90 = 1 orders
 * by (p90, sum). */
typedef struct {
    const ref_layer *r;
    const int32_t *slots;
    int use_p90;
    int gpu[MAXE], count[MAXG];
    double best_sum, best_p90;
} exhaustive;

static void exh_rec(exhaustive *x, int e)
{
    if (e == x->r->E) {
        double p90, sum = ref_eval(x->r, x->gpu, &p90);
        int better = x->use_p90 ? (p90 < x->best_p90 || (p90 == x->best_p90 && sum < x->best_sum))
                                : sum < x->best_sum;
        if (better) x->best_sum = sum, x->best_p90 = p90;
        return;
    }
    for (int g = 0; g < x->r->G; g++) {
        if (x->count[g] >= x->slots[g]) continue;
        x->count[g]++;
        x->gpu[e] = g;
        exh_rec(x, e + 1);
        x->count[g]--;
    }
}

static void exhaustive_optimum(const ref_layer *r, const int32_t *slots, int use_p90,
                               double *sum, double *p90)
{
    exhaustive x;
    memset(&x, 0, sizeof x);
    x.r = r, x.slots = slots, x.use_p90 = use_p90;
    x.best_sum = INFINITY, x.best_p90 = INFINITY;
    exh_rec(&x, 0);
    *sum = x.best_sum;
    if (p90) *p90 = x.best_p90;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_valid_on_random_shapes(void **state)
{
    (void)state;
    const int shapes[][4] = {/* G, E, L, S */
                             {1, 5, 2, 6},  {2, 3, 1, 1},  {3, 7, 2, 9},  {4, 16, 3, 12},
                             {5, 23, 2, 7}, {8, 8, 2, 10}, {6, 40, 1, 20}, {16, 64, 1, 8}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int G = shapes[i][0], E = shapes[i][1], L = shapes[i][2], S = shapes[i][3];
        for (int model = 0; model < 2; model++) {
            fixture f;
            fixture_init(&f, var_profile(G, 0.3, 11 + i, (gem_cost_model_t)model),
                         skewed_trace(S, L, E, 60, 100 + i));
            int gpu[MAXE];
            for (int l = 0; l < L; l++) {
                run_layer(&f.ctx, l, gem__policy_gem, gpu);
                if (E <= 10) run_layer(&f.ctx, l, gem__policy_exact, gpu);
            }
            /* more slots than experts: at most slots[g] each */
            for (int g = 0; g < G; g++) f.slots[g] = E / G + 2;
            for (int l = 0; l < L; l++) run_layer(&f.ctx, l, gem__policy_gem, gpu);
            /* unequal slots adding up to E */
            if (G >= 2 && E >= G + 1) {
                for (int g = 0; g < G; g++) f.slots[g] = 1;
                f.slots[0] = E - (G - 1);
                for (int l = 0; l < L; l++) run_layer(&f.ctx, l, gem__policy_gem, gpu);
            }
            fixture_free(&f);
        }
    }
}

/* gem within 0.5% of the exhaustive optimum: 8 experts on 4 GPUs (2 slots each) and 12 on 4
 * (3 each), skewed bursty loads, GPUs up to 40% apart, both cost models. */
static void check_near_optimal(int E, int G, int cases, gem_cost_model_t model, uint64_t seed)
{
    double worst = 0;
    for (int c = 0; c < cases; c++) {
        fixture f;
        fixture_init(&f, var_profile(G, 0.4, seed + 7 * (uint64_t)c, model),
                     skewed_trace(16, 1, E, 16.0 * 12 * 8 / E, seed + 1000 + (uint64_t)c));
        ref_layer r;
        ref_init(&r, f.p, f.t, 0);
        int gpu[MAXE];
        run_layer(&f.ctx, 0, gem__policy_gem, gpu);
        double got = ref_eval(&r, gpu, NULL), opt;
        exhaustive_optimum(&r, f.slots, 0, &opt, NULL);
        assert_true(got >= opt * (1 - 1e-12));
        double gap = got / opt - 1;
        if (gap > worst) worst = gap;
        if (gap > 0.005) print_error("E=%d case %d: gem %.3f optimum %.3f (%.3f%%)\n", E, c, got, opt,
                                     100 * gap);
        assert_true(gap <= 0.005);
        ref_free(&r);
        fixture_free(&f);
    }
    (void)worst;
}

static void test_gem_near_optimal_8_on_4(void **state)
{
    (void)state;
    check_near_optimal(8, 4, 24, GEM_COST_PER_EXPERT, 1);
    check_near_optimal(8, 4, 8, GEM_COST_AGGREGATE, 2);
}

static void test_gem_near_optimal_12_on_4(void **state)
{
    (void)state;
    check_near_optimal(12, 4, 3, GEM_COST_PER_EXPERT, 3);
    check_near_optimal(12, 4, 1, GEM_COST_AGGREGATE, 4);
}

/* exact equals the exhaustive optimum and says it proved it; also with identical GPUs (its
 * symmetry breaking) and with the p90 objective (order (p90, sum)). */
static void test_exact_is_optimal(void **state)
{
    (void)state;
    for (int c = 0; c < 10; c++) {
        int E = c < 8 ? 8 : 9, G = c % 3 == 2 ? 3 : 4;
        gem_cost_model_t model = c % 4 == 3 ? GEM_COST_AGGREGATE : GEM_COST_PER_EXPERT;
        double spread = c % 5 == 0 ? 0.0 : 0.5;
        fixture f;
        fixture_init(&f, var_profile(G, spread, 50 + c, model),
                     skewed_trace(12, 1, E, 150, 500 + c));
        int use_p90 = c % 2;
        assert_ok(gem_options_set_int(f.o, GEM_OPT_OBJECTIVE,
                                      use_p90 ? GEM_OBJECTIVE_P90 : GEM_OBJECTIVE_MEAN));
        ref_layer r;
        ref_init(&r, f.p, f.t, 0);
        gem__layer_map lm = {0, 0, NULL};
        int proven = -1;
        assert_ok(gem__exact_layer(&f.ctx, 0, &lm, &proven));
        assert_int_equal(proven, 1);
        int gpu[MAXE];
        for (size_t i = 0; i < lm.n; i++) gpu[lm.p[i].expert] = lm.p[i].gpu;
        free(lm.p);
        double p90, sum = ref_eval(&r, gpu, &p90), opt, opt_p90;
        exhaustive_optimum(&r, f.slots, use_p90, &opt, &opt_p90);
        if (use_p90) {
            assert_true(fabs(p90 - opt_p90) <= 1e-9 * opt_p90);
        }
        assert_true(fabs(sum - opt) <= 1e-9 * opt);
        /* gem is never better than the optimum, and exact's wrapper gives the same */
        run_layer(&f.ctx, 0, gem__policy_exact, gpu);
        assert_true(fabs(ref_eval(&r, gpu, NULL) - opt) <= 1e-9 * opt);
        ref_free(&r);
        fixture_free(&f);
    }
}

/* A case far too big to prove in 1 ms: exact stops, says so, and is no worse than gem. */
static void test_exact_time_limit(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, var_profile(4, 0.3, 9, GEM_COST_PER_EXPERT), skewed_trace(32, 1, 40, 60, 9));
    assert_ok(gem_options_set_int(f.o, GEM_OPT_TIME_LIMIT_MS, 1));
    assert_ok(gem_options_set_int(f.o, GEM_OPT_THREADS, 1));
    ref_layer r;
    ref_init(&r, f.p, f.t, 0);
    gem__layer_map lm = {0, 0, NULL};
    int proven = -1;
    assert_ok(gem__exact_layer(&f.ctx, 0, &lm, &proven));
    assert_int_equal(proven, 0);
    int gpu[MAXE], gb[MAXE], gs[MAXE];
    for (size_t i = 0; i < lm.n; i++) gpu[lm.p[i].expert] = lm.p[i].gpu;
    free(lm.p);
    /* its incumbent (gem, itself cut short) still weighed the baselines */
    run_layer(&f.ctx, 0, gem__policy_balanced, gb);
    run_layer(&f.ctx, 0, gem__policy_speed_aware, gs);
    double v = ref_eval(&r, gpu, NULL);
    assert_true(v <= ref_eval(&r, gb, NULL) * (1 + 1e-12));
    assert_true(v <= ref_eval(&r, gs, NULL) * (1 + 1e-12));
    ref_free(&r);
    fixture_free(&f);
}

static double mapping_mean(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m)
{
    gem_report_t *rep = NULL;
    assert_ok(gem_evaluate(p, t, m, NULL, &rep));
    double v;
    assert_ok(gem_report_get(rep, GEM_METRIC_MEAN, &v));
    gem_report_destroy(rep);
    return v;
}

/* Through the public API: gem's mean step latency on its own trace is never above balanced's
 * or speed_aware's, whatever the search is allowed (even no restarts and one move). */
static void test_never_worse_than_baselines(void **state)
{
    (void)state;
    for (int c = 0; c < 12; c++) {
        int G = 2 + c % 4, E = G * (2 + c % 3) + c % 2, L = 3;
        gem_cost_model_t model = c % 3 == 2 ? GEM_COST_AGGREGATE : GEM_COST_PER_EXPERT;
        gem_profile_t *p = var_profile(G, 0.1 * (c % 4), 70 + c, model);
        gem_trace_t *t = c % 2 ? skewed_trace(20, L, E, 80, 700 + c) : tu_trace(20, L, E, 90, 700 + c);
        gem_options_t *o = NULL;
        assert_ok(gem_options_create(&o));
        if (c % 4 == 1) {
            assert_ok(gem_options_set_int(o, GEM_OPT_RESTARTS, 0));
            assert_ok(gem_options_set_int(o, GEM_OPT_MAX_ITERATIONS, 1));
        }
        gem_mapping_t *mg = NULL, *mb = NULL, *ms = NULL;
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &mg));
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &mb));
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_SPEED_AWARE, o, NULL, &ms));
        const char *name;
        assert_ok(gem_mapping_get_policy_name(mg, &name));
        assert_string_equal(name, "gem");
        double vg = mapping_mean(p, t, mg), vb = mapping_mean(p, t, mb), vs = mapping_mean(p, t, ms);
        assert_true(vg <= vb * (1 + 1e-12));
        assert_true(vg <= vs * (1 + 1e-12));
        gem_mapping_destroy(mg);
        gem_mapping_destroy(mb);
        gem_mapping_destroy(ms);
        gem_options_destroy(o);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

/* A GPU twice as slow gets the light experts: 2 GPUs with 2 slots each, 4 experts. */
static void test_slow_gpu_gets_less(void **state)
{
    (void)state;
    const double sd[2] = {1.0, 2.0};
    gem_profile_t *p = tu_profile(2, sd, 16, 12, 100.0, 0.0);
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 1, 4));
    for (int s = 0; s < 8; s++) {
        double row[4] = {150, 10, 140, 12};
        assert_ok(gem_trace_set(t, s, 0, row, 4));
    }
    fixture f;
    fixture_init(&f, p, t);
    int gpu[4];
    run_layer(&f.ctx, 0, gem__policy_gem, gpu);
    /* curves: 100 x slowdown x (1 + 0.25 i) for up to 16 (i + 1) tokens. Fast GPU with 150
     * and 140 tokens: 325 + 300 = 625 per step, slow GPU with 10 and 12: 200 + 200 = 400.
     * Every other split puts a heavy expert on the slow GPU: 600 or more there, plus 200. */
    assert_int_equal(gpu[0], 0);
    assert_int_equal(gpu[2], 0);
    assert_int_equal(gpu[1], 1);
    assert_int_equal(gpu[3], 1);
    fixture_free(&f);
}

/* Two temporal experts that burst together are kept apart. */
static void test_coactive_experts_apart(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(4, NULL, 16, 12, 100.0, 5.0);
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, 1, 8));
    for (int s = 0; s < 20; s++) {
        double row[8] = {40, 40, 40, 40, 8, 8, 8, 8};
        if (s % 5 == 0) row[5] = row[6] = 150; /* bursts, together */
        assert_ok(gem_trace_set(t, s, 0, row, 8));
    }
    fixture f;
    fixture_init(&f, p, t);
    gem_expert_class_t k;
    assert_ok(gem_classification_get(f.cls, 0, 5, &k, NULL, NULL, NULL));
    assert_int_equal(k, GEM_CLASS_TEMPORAL);
    int gpu[8];
    run_layer(&f.ctx, 0, gem__policy_gem, gpu);
    assert_int_not_equal(gpu[5], gpu[6]);
    f.ctx.cls = NULL; /* works without a classification too */
    run_layer(&f.ctx, 0, gem__policy_gem, gpu);
    assert_int_not_equal(gpu[5], gpu[6]);
    fixture_free(&f);
}

static int same_mapping(const gem_mapping_t *a, const gem_mapping_t *b)
{
    int32_t G, L, E;
    assert_ok(gem_mapping_shape(a, &G, &L, &E));
    for (int l = 0; l < L; l++)
        for (int e = 0; e < E; e++) {
            int32_t ga, gb;
            assert_ok(gem_mapping_expert_gpu(a, l, e, &ga));
            assert_ok(gem_mapping_expert_gpu(b, l, e, &gb));
            if (ga != gb) return 0;
        }
    return 1;
}

static void test_same_result_any_thread_count(void **state)
{
    (void)state;
    gem_profile_t *p = var_profile(6, 0.2, 3, GEM_COST_PER_EXPERT);
    gem_trace_t *t = skewed_trace(24, 9, 30, 50, 3);
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_SEED, 12345));
    assert_ok(gem_options_set_int(o, GEM_OPT_RESTARTS, 6));
    gem_mapping_t *m[3] = {NULL, NULL, NULL};
    const int threads[3] = {1, 2, 4};
    for (int i = 0; i < 3; i++) {
        assert_ok(gem_options_set_int(o, GEM_OPT_THREADS, threads[i]));
        assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m[i]));
    }
    assert_true(same_mapping(m[0], m[1]));
    assert_true(same_mapping(m[0], m[2]));
    /* and again with a classification handed in */
    gem_classification_t *cls = NULL;
    assert_ok(gem_classify_experts(t, o, &cls));
    gem_mapping_t *mc = NULL;
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, cls, &mc));
    assert_true(same_mapping(m[0], mc));
    gem_mapping_destroy(mc);
    gem_classification_destroy(cls);
    for (int i = 0; i < 3; i++) gem_mapping_destroy(m[i]);

    /* exact too (small layers, proven) */
    gem_trace_t *ts = skewed_trace(10, 4, 8, 100, 4);
    gem_profile_t *ps = var_profile(4, 0.3, 4, GEM_COST_PER_EXPERT);
    gem_mapping_t *e1 = NULL, *e4 = NULL;
    assert_ok(gem_options_set_int(o, GEM_OPT_THREADS, 1));
    assert_ok(gem_compute_mapping(ps, ts, GEM_POLICY_EXACT, o, NULL, &e1));
    assert_ok(gem_options_set_int(o, GEM_OPT_THREADS, 4));
    assert_ok(gem_compute_mapping(ps, ts, GEM_POLICY_EXACT, o, NULL, &e4));
    const char *name;
    assert_ok(gem_mapping_get_policy_name(e1, &name));
    assert_string_equal(name, "exact");
    assert_true(mapping_mean(ps, ts, e1) == mapping_mean(ps, ts, e4));
    gem_mapping_destroy(e1);
    gem_mapping_destroy(e4);
    gem_profile_destroy(ps);
    gem_trace_destroy(ts);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* Objective p90: each layer's p90 is no worse than balanced's or speed_aware's. */
static void test_p90_objective(void **state)
{
    (void)state;
    for (int c = 0; c < 4; c++) {
        fixture f;
        fixture_init(&f, var_profile(4, 0.3, 80 + c, GEM_COST_PER_EXPERT),
                     skewed_trace(40, 2, 16, 70, 800 + c));
        assert_ok(gem_options_set_int(f.o, GEM_OPT_OBJECTIVE, GEM_OBJECTIVE_P90));
        for (int l = 0; l < 2; l++) {
            ref_layer r;
            ref_init(&r, f.p, f.t, l);
            int gpu[MAXE], gb[MAXE], gs[MAXE];
            run_layer(&f.ctx, l, gem__policy_gem, gpu);
            run_layer(&f.ctx, l, gem__policy_balanced, gb);
            run_layer(&f.ctx, l, gem__policy_speed_aware, gs);
            double p_gem, p_bal, p_spd;
            ref_eval(&r, gpu, &p_gem);
            ref_eval(&r, gb, &p_bal);
            ref_eval(&r, gs, &p_spd);
            assert_true(p_gem <= p_bal * (1 + 1e-12));
            assert_true(p_gem <= p_spd * (1 + 1e-12));
            ref_free(&r);
        }
        fixture_free(&f);
    }
}

static void test_time_limit_still_valid(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, var_profile(8, 0.2, 5, GEM_COST_PER_EXPERT), skewed_trace(64, 2, 64, 40, 5));
    assert_ok(gem_options_set_int(f.o, GEM_OPT_TIME_LIMIT_MS, 1));
    assert_ok(gem_options_set_int(f.o, GEM_OPT_RESTARTS, 1000));
    int gpu[MAXE];
    for (int l = 0; l < 2; l++) run_layer(&f.ctx, l, gem__policy_gem, gpu);
    fixture_free(&f);
}

static void test_errors(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, var_profile(3, 0.2, 6, GEM_COST_PER_EXPERT), skewed_trace(5, 2, 7, 40, 6));
    gem__layer_map lm = {0, 0, NULL};
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem__policy_gem(&f.ctx, 2, &lm));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem__policy_gem(&f.ctx, -1, &lm));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem__policy_exact(&f.ctx, 2, &lm));
    f.slots[0] = 1, f.slots[1] = 2, f.slots[2] = 3; /* 6 slots for 7 experts */
    assert_gem(GEM_ERR_INFEASIBLE, gem__policy_gem(&f.ctx, 0, &lm));
    assert_error_has("6 slots for 7 experts");
    assert_gem(GEM_ERR_INFEASIBLE, gem__policy_exact(&f.ctx, 0, &lm));
    assert_int_equal(lm.n, 0);
    free(lm.p);
    fixture_free(&f);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, var_profile(4, 0.2, 7, GEM_COST_PER_EXPERT), skewed_trace(8, 1, 8, 40, 7));
    gem__layer_policy_fn fns[2] = {gem__policy_gem, gem__policy_exact};
    for (int k = 0; k < 2; k++) {
        int failed = 0;
        for (long n = 1; n < 200; n++) {
            gem__layer_map lm = {0, 0, NULL};
            gem__inject_alloc_failure(n);
            gem_status_t st = fns[k](&f.ctx, 0, &lm);
            gem__inject_alloc_failure(0);
            free(lm.p);
            if (st == GEM_OK) break;
            assert_int_equal(st, GEM_ERR_NO_MEMORY);
            failed++;
        }
        assert_true(failed > 0);
    }
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_on_random_shapes),
        cmocka_unit_test(test_gem_near_optimal_8_on_4),
        cmocka_unit_test(test_gem_near_optimal_12_on_4),
        cmocka_unit_test(test_exact_is_optimal),
        cmocka_unit_test(test_exact_time_limit),
        cmocka_unit_test(test_never_worse_than_baselines),
        cmocka_unit_test(test_slow_gpu_gets_less),
        cmocka_unit_test(test_coactive_experts_apart),
        cmocka_unit_test(test_same_result_any_thread_count),
        cmocka_unit_test(test_p90_objective),
        cmocka_unit_test(test_time_limit_still_valid),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
