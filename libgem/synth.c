/*
 * synth.c - synthetic MoE routing traces (gem_trace_synthesize), for demos, tests and
 * benchmarks when no recorded trace is at hand.
 *
 * The generator follows what recorded routing looks like (the GEM paper's three classes):
 *
 *  - Popularity. Each layer ranks its experts in a random order and gives rank r the weight
 *    1 / (r + 1)^a with a = skew: a Zipf-like curve, flat (uniform routing) at skew 0. The top
 *    ranks are the "consistent" experts: heavy in nearly every step.
 *  - Temporal groups. About E/16 groups of 2-3 experts, drawn from the less popular three
 *    quarters of the ranks, share (1 - 0.4 skew) / E each of the layer's tokens: a little less
 *    than the mean, so normally not heavy. Each group is hot in bursts (a two-state Markov
 *    chain, mean burst 4 steps) for 15-20% of the steps (drawn per group), and while hot every
 *    member's weight is (1 + 2 skew) times its normal one: 3x at skew 1. Members of a group are
 *    hot together, which is what the co-activation counts of the classification pick up.
 *  - Noise. Every step multiplies each expert's weight by exp(0.3 skew z), z standard normal.
 *
 * Each (step, layer) then draws tokens_per_step assignments from its weights. Routing is top-1:
 * every assignment picks one expert independently, so a row's loads sum to tokens_per_step
 * exactly. (For top-k routing pass k x tokens; the k distinct experts of one token are not
 * modelled, which changes little once tokens >> E.) Draws use Walker's alias method, O(1)
 * each, so the whole trace costs O(steps x layers x (E + tokens)). One generator, seeded with
 * GEM_OPT_SEED, is consumed in a fixed order, so the result depends only on the arguments and
 * the seed (and, for skew > 0, on the C library's pow/exp/log/cos, which may round the last
 * bit differently elsewhere: compare synthetic traces across machines by their statistics,
 * or ship the file).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sizes beyond which a synthetic trace is a mistake rather than a request: 2^31 values
 * (16 GiB of loads) or 2^36 draws (minutes of work). */
#define GEM__SYNTH_MAX_VALUES 2147483648.0
#define GEM__SYNTH_MAX_DRAWS 68719476736.0

#define GEM__SYNTH_BURST 4.0 /* mean length of a temporal group's hot period, in steps */

/* One layer's routing model. */
typedef struct {
    double *weight;       /* [E] normal weight of each expert */
    int32_t *group;       /* [E] temporal group of each expert, -1 when none */
    int32_t num_groups;
    double *hot_prob;     /* [num_groups] stationary fraction of hot steps */
    uint8_t *hot;         /* [num_groups] current state of each group */
} gem__synth_layer;

/* Working memory for one (step, layer). */
typedef struct {
    double *w;            /* [E] this step's weights */
    double *prob;         /* [E] alias table: probability of keeping the drawn column */
    int32_t *alias;       /* [E] alias table: the other expert of the column */
    int32_t *stack;       /* [E] Vose's small and large work lists */
} gem__synth_work;

static double gem__synth_normal(gem__rng *r)
{
    /* Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
    double u1 = 1.0 - gem__rng_uniform(r), u2 = gem__rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Builds the layer's popularity, its consistent top ranks and its temporal groups. */
static void gem__synth_layer_init(gem__synth_layer *ly, int32_t E, double skew, gem__rng *r,
                                  int32_t *order)
{
    for (int32_t i = 0; i < E; i++) order[i] = i;
    for (int32_t i = E - 1; i > 0; i--) { /* Fisher-Yates: expert order[r] has rank r */
        int32_t j = (int32_t)gem__rng_below(r, (uint64_t)i + 1);
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int32_t rank = 0; rank < E; rank++) {
        ly->weight[order[rank]] = pow((double)rank + 1.0, -skew);
        ly->group[order[rank]] = -1;
    }

    ly->num_groups = 0;
    if (skew <= 0 || E < 4) return;
    /* Temporal groups from the ranks [E/4, E), members drawn without replacement. */
    int32_t first = E / 4, pool = E - first;
    int32_t size = E >= 24 ? 3 : 2;
    int32_t groups = E / 16 > 1 ? E / 16 : 1;
    if (groups * size > pool) groups = pool / size;
    double sum_other = 0.0, member_share = (1.0 - 0.4 * skew) / (double)E;
    for (int32_t g = 0; g < groups; g++) {
        for (int32_t m = 0; m < size; m++) {
            int32_t pick = first + (int32_t)gem__rng_below(r, (uint64_t)pool);
            int32_t e = order[pick];
            order[pick] = order[first]; /* move the member out of the pool */
            order[first] = e;
            first++;
            pool--;
            ly->group[e] = g;
        }
        ly->hot_prob[g] = 0.15 + 0.05 * gem__rng_uniform(r);
        ly->hot[g] = gem__rng_uniform(r) < ly->hot_prob[g];
    }
    ly->num_groups = groups;
    /* The other experts keep their Zipf proportions in what the members leave. */
    for (int32_t e = 0; e < E; e++)
        if (ly->group[e] < 0) sum_other += ly->weight[e];
    double rest = 1.0 - member_share * (double)(groups * size);
    for (int32_t e = 0; e < E; e++)
        ly->weight[e] = ly->group[e] < 0 ? ly->weight[e] * rest / sum_other : member_share;
}

/* Advances each temporal group's hot/cold chain by one step. The chain leaves a burst with
 * probability 1/BURST and enters one with the probability that makes hot_prob stationary. */
static void gem__synth_advance(gem__synth_layer *ly, gem__rng *r)
{
    for (int32_t g = 0; g < ly->num_groups; g++) {
        double off = 1.0 / GEM__SYNTH_BURST, p = ly->hot_prob[g];
        double on = p * off / (1.0 - p);
        double u = gem__rng_uniform(r);
        ly->hot[g] = ly->hot[g] ? u >= off : u < on;
    }
}

/* Vose's alias table of w[0..E) (positive weights of sum total). */
static void gem__synth_alias(gem__synth_work *wk, int32_t E, double total)
{
    int32_t ns = 0, nl = 0; /* small list grows from stack[0], large from stack[E-1] */
    for (int32_t e = 0; e < E; e++) {
        wk->prob[e] = wk->w[e] * (double)E / total;
        wk->alias[e] = e;
        if (wk->prob[e] < 1.0) wk->stack[ns++] = e;
        else wk->stack[E - 1 - nl++] = e;
    }
    while (ns > 0 && nl > 0) {
        int32_t s = wk->stack[--ns], g = wk->stack[E - nl];
        nl--;
        wk->alias[s] = g;
        wk->prob[g] = (wk->prob[g] + wk->prob[s]) - 1.0;
        if (wk->prob[g] < 1.0) wk->stack[ns++] = g;
        else wk->stack[E - 1 - nl++] = g;
    }
    /* Whatever is left is 1 up to rounding. */
    while (nl > 0) wk->prob[wk->stack[E - nl--]] = 1.0;
    while (ns > 0) wk->prob[wk->stack[--ns]] = 1.0;
}

/* Fills one row: this step's weights, then tokens draws. */
static void gem__synth_row(const gem__synth_layer *ly, gem__synth_work *wk, int32_t E,
                           int64_t tokens, double skew, gem__rng *r, double *row)
{
    double total = 0.0, hot = 1.0 + 2.0 * skew, sigma = 0.3 * skew;
    for (int32_t e = 0; e < E; e++) {
        double w = ly->weight[e];
        if (ly->group[e] >= 0 && ly->hot[ly->group[e]]) w *= hot;
        if (sigma > 0) w *= exp(sigma * gem__synth_normal(r));
        wk->w[e] = w;
        total += w;
    }
    gem__synth_alias(wk, E, total);
    memset(row, 0, (size_t)E * sizeof *row);
    for (int64_t t = 0; t < tokens; t++) {
        int32_t e = (int32_t)gem__rng_below(r, (uint64_t)E);
        row[gem__rng_uniform(r) < wk->prob[e] ? e : wk->alias[e]] += 1.0;
    }
}

static gem_status_t gem__synth_check(int64_t S, int32_t L, int32_t E, int64_t N, double skew)
{
    GEM__CHECK_ARG(S >= 1 && L >= 1 && E >= 1,
                   "gem_trace_synthesize: %lld steps, %d layers, %d experts: each must be >= 1",
                   (long long)S, (int)L, (int)E);
    GEM__CHECK_ARG(N >= 1, "gem_trace_synthesize: tokens_per_step %lld must be >= 1",
                   (long long)N);
    GEM__CHECK_ARG(isfinite(skew) && skew >= 0 && skew <= 1,
                   "gem_trace_synthesize: skew %g outside [0, 1]", skew);
    if (S > GEM_MAX_STEPS || L > GEM_MAX_LAYERS || E > GEM_MAX_EXPERTS)
        return gem__fail(GEM_ERR_LIMIT,
                         "gem_trace_synthesize: %lld steps x %d layers x %d experts exceeds "
                         "%d x %d x %d",
                         (long long)S, (int)L, (int)E, GEM_MAX_STEPS, GEM_MAX_LAYERS,
                         GEM_MAX_EXPERTS);
    if (N > GEM_MAX_TOKENS)
        return gem__fail(GEM_ERR_LIMIT, "gem_trace_synthesize: tokens_per_step %lld exceeds %d",
                         (long long)N, GEM_MAX_TOKENS);
    double rows = (double)S * (double)L;
    if (rows * (double)E > GEM__SYNTH_MAX_VALUES)
        return gem__fail(GEM_ERR_LIMIT,
                         "gem_trace_synthesize: %lld x %d x %d = %.3g loads, at most %.0f",
                         (long long)S, (int)L, (int)E, rows * (double)E, GEM__SYNTH_MAX_VALUES);
    if (rows * (double)N > GEM__SYNTH_MAX_DRAWS)
        return gem__fail(GEM_ERR_LIMIT,
                         "gem_trace_synthesize: %lld steps x %d layers x %lld tokens = %.3g "
                         "draws, at most %.0f",
                         (long long)S, (int)L, (long long)N, rows * (double)N,
                         GEM__SYNTH_MAX_DRAWS);
    return GEM_OK;
}

GEM_API gem_status_t gem_trace_synthesize(int64_t num_steps, int32_t num_layers,
                                          int32_t num_experts, int64_t tokens_per_step,
                                          double skew, const gem_options_t *opts,
                                          gem_trace_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_trace_synthesize: out is NULL");
    gem_status_t st = gem__synth_check(num_steps, num_layers, num_experts, tokens_per_step, skew);
    if (st != GEM_OK) return st;

    const int32_t E = num_experts;
    gem_trace_t *t = NULL;
    gem__synth_layer ly;
    gem__synth_work wk;
    memset(&ly, 0, sizeof ly);
    memset(&wk, 0, sizeof wk);
    int32_t *order = gem__array((size_t)E, sizeof *order);
    ly.weight = gem__array((size_t)E, sizeof *ly.weight);
    ly.group = gem__array((size_t)E, sizeof *ly.group);
    ly.hot_prob = gem__array((size_t)E, sizeof *ly.hot_prob); /* groups < E */
    ly.hot = gem__array((size_t)E, sizeof *ly.hot);
    wk.w = gem__array((size_t)E, sizeof *wk.w);
    wk.prob = gem__array((size_t)E, sizeof *wk.prob);
    wk.alias = gem__array((size_t)E, sizeof *wk.alias);
    wk.stack = gem__array((size_t)E, sizeof *wk.stack);
    if (!order || !ly.weight || !ly.group || !ly.hot_prob || !ly.hot || !wk.w || !wk.prob ||
        !wk.alias || !wk.stack) {
        st = GEM_ERR_NO_MEMORY;
        goto done;
    }
    if ((st = gem_trace_create(&t, num_layers, num_experts)) != GEM_OK ||
        (st = gem__trace_reserve(t, num_steps)) != GEM_OK)
        goto done;

    gem__rng r;
    gem__rng_seed(&r, (uint64_t)gem__opt_int(opts, GEM_OPT_SEED));
    for (int32_t l = 0; l < num_layers; l++) {
        gem__synth_layer_init(&ly, E, skew, &r, order);
        for (int64_t s = 0; s < num_steps; s++) {
            if (s > 0) gem__synth_advance(&ly, &r);
            double *row = t->loads + ((size_t)s * (size_t)num_layers + (size_t)l) * (size_t)E;
            gem__synth_row(&ly, &wk, E, tokens_per_step, skew, &r, row);
            t->present[(size_t)s * (size_t)num_layers + (size_t)l] = 1;
        }
    }
    t->num_steps = num_steps;
    *out = t;
    t = NULL;
done:
    gem_trace_destroy(t);
    free(order);
    free(ly.weight);
    free(ly.group);
    free(ly.hot_prob);
    free(ly.hot);
    free(wk.w);
    free(wk.prob);
    free(wk.alias);
    free(wk.stack);
    return st;
}
