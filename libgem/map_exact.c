/*
 * map_exact.c - policy exact: branch and bound over the placements of one layer (one copy of
 * every expert, exactly ctx->slots[g] experts on GPU g, or at most that many when the slots
 * exceed the experts), for small layers.
 *
 * Objective as policy gem's (map_gem.c): the sum over steps of the layer latency
 * max_g T_g(s), or with GEM_OBJECTIVE_P90 its nearest-rank p90 (ties broken by the sum).
 *
 * - Incumbent: policy gem's placement, so the result is never worse than gem's.
 * - Experts are placed heaviest (mean load) first; each tries the GPUs with a free slot,
 *   least bound first. GPUs with the same curve, fixed cost and slot count are
 *   interchangeable: of those still empty only the lowest is tried.
 * - Bound, per step s: the largest partial T_g(s) (under per_expert every expert added later
 *   adds f >= 0; under aggregate f is read at a larger token count, which cannot lower it when
 *   every curve is non-decreasing, else this part of the bound is off), and under per_expert
 *   also the mean over GPUs of the final T_g(s), at least (sum of partial T_g(s) + sum over
 *   unplaced experts of min_g f_g(n_e(s))) / G. The node's bound is the sum (or p90) of these;
 *   a node whose bound cannot beat the incumbent is cut.
 * - GEM_OPT_TIME_LIMIT_MS (0 means 10000 ms here) is the limit of the whole call, split
 *   evenly over the layers a thread handles. *proven says whether the search finished; when
 *   it did not, the result is the best found (then it depends on timing).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GEM__EXACT_DEFAULT_MS 10000
/* Beyond these sizes a layer is not searched (the depth-first search recurses once per expert,
 * and the cost table has E x G x S entries): the result is gem's, reported as not proven. */
#define GEM__EXACT_MAX_EXPERTS 1024
#define GEM__EXACT_MAX_TABLE ((size_t)1 << 24)

typedef struct {
    /* problem */
    const gem_profile_t *prof;
    int per_expert, bound_ok;
    int32_t G, E;
    size_t S, rank;
    int p90;
    const int32_t *cap;
    double *over;             /* [G] */
    double *load;             /* [E][S] */
    double *C;                /* [E][G][S] f_g(load) */
    int32_t *order;           /* [E] experts, heaviest first */
    double *rest;             /* [(E + 1)][S] sum over order[i..] of min_g C (per_expert) */
    int32_t *twin;            /* [G] lowest GPU interchangeable with g */
    /* search state */
    int32_t *gpu;             /* [E] */
    int32_t *count;           /* [G] */
    double *T;                /* [G][S] partial times */
    double *X;                /* [G][S] partial token sums (aggregate) */
    double *M;                /* [E + 1][S] bound of each step per depth */
    double *sumT;             /* [E + 1][S] sum over GPUs of partial T per depth (per_expert) */
    double *save;             /* [E][S] column saved per depth */
    double *scratch;          /* [S] */
    double *oT;               /* [G][S] scratch of the from-scratch objective */
    double *child_bound;      /* [E][G] */
    int32_t *child_gpu;       /* [E][G] */
    /* best */
    int32_t *best;
    double best_sum, best_p90;
    /* limits */
    struct timespec deadline;
    unsigned long nodes, check_mask; /* the clock is read when (nodes & check_mask) == 0 */
    int timed_out;
} gem__bb;

static void gem__bb_free(gem__bb *B)
{
    free(B->over); free(B->load); free(B->C); free(B->order); free(B->rest); free(B->twin);
    free(B->gpu); free(B->count); free(B->T); free(B->X); free(B->M); free(B->sumT); free(B->save); free(B->oT);
    free(B->scratch); free(B->child_bound); free(B->child_gpu); free(B->best);
}

static int gem__bb_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank p90 of v[S] (copied into scratch). */
static double gem__bb_p90(gem__bb *B, const double *v)
{
    memcpy(B->scratch, v, B->S * sizeof *v);
    qsort(B->scratch, B->S, sizeof *v, gem__bb_cmp_double);
    return B->scratch[B->rank];
}

static int gem__curve_nondecreasing(const gem__curve *c)
{
    for (size_t i = 1; i < c->k; i++)
        if (c->latency[i] < c->latency[i - 1]) return 0;
    return c->tail_slope >= 0;
}

static int gem__same_gpu(const gem_profile_t *p, const int32_t *cap, int32_t a, int32_t b)
{
    const gem__gpu *x = &p->gpus[a], *y = &p->gpus[b];
    if (x->overhead != y->overhead || cap[a] != cap[b] || x->curve.k != y->curve.k) return 0;
    for (size_t i = 0; i < x->curve.k; i++)
        if (x->curve.tokens[i] != y->curve.tokens[i] || x->curve.latency[i] != y->curve.latency[i])
            return 0;
    return 1;
}

static gem_status_t gem__bb_init(gem__bb *B, const gem__map_ctx *ctx, int32_t layer)
{
    memset(B, 0, sizeof *B);
    const int32_t G = ctx->num_gpus, E = ctx->num_experts;
    const size_t S = (size_t)ctx->num_steps;
    B->prof = ctx->profile;
    B->per_expert = ctx->profile->cost_model == GEM_COST_PER_EXPERT;
    B->G = G;
    B->E = E;
    B->S = S;
    B->rank = gem__nearest_rank(90, S);
    B->p90 = gem__opt_int(ctx->opts, GEM_OPT_OBJECTIVE) == GEM_OBJECTIVE_P90;
    B->cap = ctx->slots;
    const size_t GS = (size_t)G * S, ES = (size_t)E * S;
    /* a node costs about G x S: read the clock about every 2^20 of that work */
    B->check_mask = 1;
    while (B->check_mask < 1023 && (B->check_mask + 1) * GS < ((size_t)1 << 20))
        B->check_mask = B->check_mask * 2 + 1;
    if (!(B->over = gem__array((size_t)G, sizeof(double))) ||
        !(B->load = gem__array(ES, sizeof(double))) ||
        !(B->C = gem__array(ES * (size_t)G, sizeof(double))) ||
        !(B->order = gem__array((size_t)E, sizeof(int32_t))) ||
        !(B->rest = gem__array(ES + S, sizeof(double))) ||
        !(B->twin = gem__array((size_t)G, sizeof(int32_t))) ||
        !(B->gpu = gem__array((size_t)E, sizeof(int32_t))) ||
        !(B->count = gem__array((size_t)G, sizeof(int32_t))) ||
        !(B->T = gem__array(GS, sizeof(double))) || !(B->X = gem__array(GS, sizeof(double))) ||
        !(B->M = gem__array(ES + S, sizeof(double))) ||
        !(B->sumT = gem__array(ES + S, sizeof(double))) ||
        !(B->oT = gem__array(GS, sizeof(double))) ||
        !(B->save = gem__array(ES, sizeof(double))) ||
        !(B->scratch = gem__array(S, sizeof(double))) ||
        !(B->child_bound = gem__array((size_t)E * (size_t)G, sizeof(double))) ||
        !(B->child_gpu = gem__array((size_t)E * (size_t)G, sizeof(int32_t))) ||
        !(B->best = gem__array((size_t)E, sizeof(int32_t)))) {
        gem__bb_free(B);
        return GEM_ERR_NO_MEMORY;
    }
    for (int32_t g = 0; g < G; g++) B->over[g] = ctx->profile->gpus[g].overhead;
    for (size_t s = 0; s < S; s++) {
        const double *row = gem__trace_row(ctx->trace, (int64_t)s, layer);
        for (int32_t e = 0; e < E; e++) B->load[(size_t)e * S + s] = row[e];
    }
    for (int32_t e = 0; e < E; e++)
        for (int32_t g = 0; g < G; g++)
            for (size_t s = 0; s < S; s++)
                B->C[((size_t)e * (size_t)G + (size_t)g) * S + s] =
                    gem__latency(B->prof, g, B->load[(size_t)e * S + s]);

    /* heaviest first: they decide the most, so good incumbents and cuts come early */
    gem__keyed *k = gem__array((size_t)E, sizeof *k);
    if (!k) { gem__bb_free(B); return GEM_ERR_NO_MEMORY; }
    for (int32_t e = 0; e < E; e++) {
        double sum = 0;
        for (size_t s = 0; s < S; s++) sum += B->load[(size_t)e * S + s];
        k[e] = (gem__keyed){sum, e};
    }
    qsort(k, (size_t)E, sizeof *k, gem__cmp_keyed_desc);
    for (int32_t e = 0; e < E; e++) B->order[e] = k[e].id;
    free(k);

    /* rest[i][s]: the least the experts order[i..] add to the sum of T over GPUs */
    for (int32_t i = E - 1; i >= 0; i--) {
        int32_t e = B->order[i];
        for (size_t s = 0; s < S; s++) {
            double m = INFINITY;
            for (int32_t g = 0; g < G; g++) {
                double c = B->C[((size_t)e * (size_t)G + (size_t)g) * S + s];
                if (c < m) m = c;
            }
            B->rest[(size_t)i * S + s] = B->rest[(size_t)(i + 1) * S + s] + m;
        }
    }
    B->bound_ok = B->per_expert;
    if (!B->per_expert) {
        B->bound_ok = 1;
        for (int32_t g = 0; g < G; g++)
            if (!gem__curve_nondecreasing(&B->prof->gpus[g].curve)) B->bound_ok = 0;
    }
    for (int32_t g = 0; g < G; g++) {
        B->twin[g] = g;
        for (int32_t h = 0; h < g; h++)
            if (gem__same_gpu(B->prof, ctx->slots, g, h)) { B->twin[g] = h; break; }
    }
    return GEM_OK;
}

/* Objective of a complete assignment, from scratch in expert order (as the evaluator sums). */
static void gem__bb_objective(gem__bb *B, const int32_t *gpu, double *sum, double *p90)
{
    const size_t S = B->S, G = (size_t)B->G;
    double *T = B->oT, *m = B->scratch;
    for (size_t i = 0; i < G * S; i++) T[i] = 0;
    for (int32_t e = 0; e < B->E; e++) {
        size_t g = (size_t)gpu[e];
        for (size_t s = 0; s < S; s++)
            T[g * S + s] += B->per_expert ? B->C[((size_t)e * G + g) * S + s]
                                          : B->load[(size_t)e * S + s];
    }
    double total = 0;
    for (size_t s = 0; s < S; s++) {
        double mx = -INFINITY;
        for (size_t g = 0; g < G; g++) {
            double t = B->per_expert ? B->over[g] + T[g * S + s]
                                     : B->over[g] + gem__latency(B->prof, (int32_t)g, T[g * S + s]);
            if (t > mx) mx = t;
        }
        m[s] = mx;
        total += mx;
    }
    *sum = total;
    *p90 = 0;
    if (B->p90) {
        qsort(m, S, sizeof *m, gem__bb_cmp_double);
        *p90 = m[B->rank];
    }
}

/* Can a node with this bound still beat the best? */
static int gem__bb_promising(const gem__bb *B, double sum, double p90)
{
    double tol = 1e-12 * fabs(B->best_sum);
    if (B->p90) return p90 < B->best_p90 || (p90 <= B->best_p90 && sum < B->best_sum - tol);
    return sum < B->best_sum - tol;
}

static int gem__bb_timed_out(gem__bb *B)
{
    if (B->timed_out) return 1;
    if ((++B->nodes & B->check_mask) != 0) return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > B->deadline.tv_sec ||
        (now.tv_sec == B->deadline.tv_sec && now.tv_nsec >= B->deadline.tv_nsec))
        B->timed_out = 1;
    return B->timed_out;
}

/* Bound of the node reached by putting order[depth] on g, and its step maxima into m[S]. The
 * partial T of g (with c_g) and X are updated by the caller. */
static void gem__bb_bound(gem__bb *B, int32_t depth, int32_t g, double *m, double *sum,
                          double *p90)
{
    const size_t S = B->S, G = (size_t)B->G;
    const int32_t e = B->order[depth];
    const double *prev = B->M + (size_t)depth * S;
    const double *cost = B->C + ((size_t)e * G + (size_t)g) * S;
    const double *rest = B->rest + (size_t)(depth + 1) * S;
    const double *sumT = B->sumT + (size_t)depth * S;
    double total = 0;
    for (size_t s = 0; s < S; s++) {
        double t;
        if (B->per_expert) t = B->T[(size_t)g * S + s] + cost[s];
        else t = B->over[g] + gem__latency(B->prof, g, B->X[(size_t)g * S + s] +
                                                           B->load[(size_t)e * S + s]);
        double lb = B->bound_ok ? (t > prev[s] ? t : prev[s]) : 0;
        if (B->per_expert) {
            /* mean over GPUs of the final times */
            double avg = (sumT[s] + cost[s] + rest[s]) / (double)G;
            if (avg > lb) lb = avg;
        }
        m[s] = lb;
        total += lb;
    }
    *sum = total;
    *p90 = B->p90 ? gem__bb_p90(B, m) : 0;
}

static void gem__bb_dfs(gem__bb *B, int32_t depth)
{
    const size_t S = B->S;
    const int32_t G = B->G;
    if (depth == B->E) {
        double sum, p90;
        gem__bb_objective(B, B->gpu, &sum, &p90);
        if (gem__bb_promising(B, sum, p90)) {
            B->best_sum = sum;
            B->best_p90 = p90;
            memcpy(B->best, B->gpu, (size_t)B->E * sizeof *B->best);
        }
        return;
    }
    if (gem__bb_timed_out(B)) return;
    const int32_t e = B->order[depth];
    double *m = B->M + (size_t)(depth + 1) * S;
    double *cb = B->child_bound + (size_t)depth * (size_t)G;
    int32_t *cg = B->child_gpu + (size_t)depth * (size_t)G;
    int32_t n = 0;
    for (int32_t g = 0; g < G; g++) {
        if (B->count[g] >= B->cap[g]) continue;
        /* interchangeable empty GPUs: only the lowest */
        if (B->count[g] == 0 && B->twin[g] != g && B->count[B->twin[g]] == 0) continue;
        double sum, p90;
        gem__bb_bound(B, depth, g, m, &sum, &p90);
        if (!gem__bb_promising(B, sum, p90)) continue;
        double key = B->p90 ? p90 : sum;
        int32_t i = n++;
        while (i > 0 && cb[i - 1] > key) { cb[i] = cb[i - 1]; cg[i] = cg[i - 1]; i--; }
        cb[i] = key;
        cg[i] = g;
    }
    double *saveT = B->save + (size_t)depth * S;
    for (int32_t i = 0; i < n && !B->timed_out; i++) {
        int32_t g = cg[i];
        double sum, p90;
        /* again: m holds the last child's bounds, and the best may have improved since */
        gem__bb_bound(B, depth, g, m, &sum, &p90);
        if (!gem__bb_promising(B, sum, p90)) continue;
        double *Tg = B->T + (size_t)g * S, *Xg = B->X + (size_t)g * S;
        const double *cost = B->C + ((size_t)e * (size_t)G + (size_t)g) * S;
        const double *sum_in = B->sumT + (size_t)depth * S;
        double *sum_out = B->sumT + (size_t)(depth + 1) * S;
        memcpy(saveT, B->per_expert ? Tg : Xg, S * sizeof *Tg);
        for (size_t s = 0; s < S; s++) {
            if (B->per_expert) Tg[s] += cost[s];
            else Xg[s] += B->load[(size_t)e * S + s];
            sum_out[s] = sum_in[s] + cost[s];
        }
        B->gpu[e] = g;
        B->count[g]++;
        gem__bb_dfs(B, depth + 1);
        B->count[g]--;
        B->gpu[e] = -1;
        memcpy(B->per_expert ? Tg : Xg, saveT, S * sizeof *Tg);
    }
}

static void gem__bb_set_deadline(gem__bb *B, const gem__map_ctx *ctx)
{
    int64_t ms = gem__opt_int(ctx->opts, GEM_OPT_TIME_LIMIT_MS);
    if (ms <= 0) ms = GEM__EXACT_DEFAULT_MS;
    int64_t threads = gem__opt_threads(ctx->opts);
    if (threads < 1) threads = 1;
    int64_t per_thread = (ctx->num_layers + threads - 1) / threads;
    double budget_ms = (double)ms / (double)(per_thread > 0 ? per_thread : 1);
    clock_gettime(CLOCK_MONOTONIC, &B->deadline);
    double ns = (double)B->deadline.tv_nsec + budget_ms * 1e6;
    B->deadline.tv_sec += (time_t)(ns / 1e9);
    B->deadline.tv_nsec = (long)fmod(ns, 1e9);
}

gem_status_t gem__exact_layer(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out,
                              int *proven)
{
    if (!ctx || !ctx->profile || !ctx->trace || !ctx->slots)
        return gem__fail(GEM_ERR_INTERNAL, "policy exact: incomplete context");
    if (layer < 0 || layer >= ctx->num_layers)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "policy exact: layer %d outside [0, %d)",
                         (int)layer, (int)ctx->num_layers);
    if (ctx->num_steps < 1)
        return gem__fail(GEM_ERR_INCOMPLETE, "policy exact: the trace has no steps");
    int64_t total = 0;
    for (int32_t g = 0; g < ctx->num_gpus; g++) total += ctx->slots[g] > 0 ? ctx->slots[g] : 0;
    if (total < ctx->num_experts)
        return gem__fail(GEM_ERR_INFEASIBLE, "policy exact: layer %d: %lld slots for %d experts",
                         (int)layer, (long long)total, (int)ctx->num_experts);
    if (ctx->num_experts > GEM__EXACT_MAX_EXPERTS ||
        (size_t)ctx->num_experts * (size_t)ctx->num_gpus * (size_t)ctx->num_steps >
            GEM__EXACT_MAX_TABLE) {
        if (proven) *proven = 0;
        return gem__policy_gem(ctx, layer, out);
    }
    gem__bb B;
    gem_status_t st = gem__bb_init(&B, ctx, layer);
    if (st) return st;
    gem__bb_set_deadline(&B, ctx);

    /* incumbent: policy gem */
    gem__layer_map inc = {0, 0, NULL};
    if ((st = gem__policy_gem(ctx, layer, &inc))) goto done;
    if (inc.n != (size_t)B.E) {
        st = gem__fail(GEM_ERR_INTERNAL, "policy exact: layer %d: gem placed %zu of %d experts",
                       (int)layer, inc.n, (int)B.E);
        goto done;
    }
    for (int32_t e = 0; e < B.E; e++) B.best[e] = -1;
    for (size_t i = 0; i < inc.n; i++) B.best[inc.p[i].expert] = inc.p[i].gpu;
    gem__bb_objective(&B, B.best, &B.best_sum, &B.best_p90);

    /* the partial state of the root: c_g in T, nothing placed */
    for (int32_t g = 0; g < B.G; g++)
        for (size_t s = 0; s < B.S; s++) {
            B.T[(size_t)g * B.S + s] = B.per_expert ? B.over[g] : 0;
            B.X[(size_t)g * B.S + s] = 0;
        }
    for (size_t s = 0; s < B.S; s++) {
        double m = -INFINITY, all = 0;
        for (int32_t g = 0; g < B.G; g++) {
            m = B.over[g] > m ? B.over[g] : m;
            all += B.over[g];
        }
        B.M[s] = m;
        B.sumT[s] = all;
    }
    for (int32_t e = 0; e < B.E; e++) B.gpu[e] = -1;
    gem__bb_dfs(&B, 0);
    if (proven) *proven = !B.timed_out;
    for (int32_t e = 0; e < B.E && !st; e++) st = gem__layer_map_add(out, e, B.best[e], 1.0);
done:
    free(inc.p);
    gem__bb_free(&B);
    return st;
}

gem_status_t gem__policy_exact(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out)
{
    return gem__exact_layer(ctx, layer, out, NULL);
}
