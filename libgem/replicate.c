/*
 * replicate.c - replicas of hot experts with token shares that equalise finish times, added
 * to a layer that already holds one copy of every expert; and gem__lstate, a layer evaluated
 * step by step on a trace that searches change a few GPUs at a time (also used by remap.c).
 *
 * Replication (gem__replicate_layer), for policy gem with GEM_OPT_REDUNDANT_SLOTS = R:
 *   1. One replica at a time, at most R. Candidates: the GEM__REP_EXPERTS experts with the
 *      highest mean load per copy (EPLB's rule), each on the GEM__REP_GPUS GPUs with a free
 *      slot and without a copy of it whose predicted finish time (mean T over the steps plus
 *      the new copy's cost) is least; and the GEM__REP_EXPERTS experts with the highest load
 *      per copy in the tail steps (those whose latency is at least the p90), each also on the
 *      GEM__REP_GPUS GPUs least busy in those steps (the mean-based candidates miss the
 *      experts that are hot only in the slowest steps). Each candidate gets shares by the
 *      rule and is scored exactly on the trace; the best is kept if it improves the
 *      objective, else replication stops (a copy that does not help costs a tile of weight
 *      reads in every step where its expert is active, so slots may stay empty). With
 *      speed-weighted shares each candidate is also scored with the shares the rule gives by
 *      the tail steps' means (an expert busy only there would get shares for its much smaller
 *      mean load otherwise). The tail candidates serve the mean too: on a DeepSeek-V3-shaped
 *      case (32 GPUs, 256 experts, 64 steps, R = 32) they lowered the mean 0.9%, for 1.5x the
 *      pass's time; on bench_beyond's cases 0.1% to 0.5%.
 *   2. Shares. GEM_SHARES_EQUAL: 1/k for k copies. GEM_SHARES_SPEED_WEIGHTED: water-filling:
 *      each copy's GPU has a predicted time without the expert (its mean T over the steps
 *      less the copy's own mean cost) and a cost curve for a share x of the expert's mean
 *      load (the GPU's curve read with linear interpolation, so that the level moves
 *      smoothly); the level L at which the shares each GPU can take without passing L add up
 *      to 1 is found by bisection. A fast GPU, or one with less other work, takes more.
 *      (With the tail steps' means: the same over the tail steps only, gem__stats.)
 *   3. Refinement (speed-weighted only): for each replicated expert, moves of 1/8 .. 1/128 of
 *      its tokens between two of its copies, kept when they improve the objective on the trace
 *      (this accounts for the per-step loads and the tile steps that the mean ignores).
 * Shares never go below GEM__REP_MIN_SHARE and are normalised so that they sum to 1 exactly
 * up to rounding (the largest share is 1 minus the others).
 * The objective is policy gem's (map_gem.c), read from GEM_OPT_OBJECTIVE:
 *   MEAN: the sum over steps of the layer latency; a change is kept when it lowers the sum by
 *         more than the tolerance, 1e-9 x the sum (at least 1e-9), as gem__lstate_delta finds
 *         it on the GPUs the change touches.
 *   P90:  the nearest-rank p90 of the layer's per-step latencies (gem__nearest_rank(90, S)),
 *         ties broken by the sum, compared as gem__obj_better does: every decision (adding a
 *         copy, each share move) takes a candidate only when its p90 is lower by more than the
 *         tolerance, or its p90 is no higher and its sum lower by more than it. A candidate's
 *         per-step latencies come from the recomputed columns of the GPUs it touches and the
 *         tops of the others (gem__lstate_delta_steps); the p90 is their rank-th smallest
 *         (quickselect). The p90 thus never rises along the pass; the final shares are
 *         evaluated afresh and the pass's start (the single-copy placement) is kept instead
 *         if its p90 is lower after all, so the result's p90 is never above the start's.
 *         Scoring a candidate by its p90 costs a pass over every step (quickselect): on the
 *         DeepSeek-V3-shaped case the pass took about twice as long as with MEAN.
 */
#include "beyond.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GEM__REP_EXPERTS 8
#define GEM__REP_GPUS 4
#define GEM__REP_MIN_SHARE (1.0 / 64)
#define GEM__REP_BISECT 60

/* ---- gem__lstate ---------------------------------------------------------------------------- */

void gem__lstate_free(gem__lstate *st)
{
    free(st->over), free(st->load), free(st->mean), free(st->lm.p), free(st->T), free(st->top);
    free(st->newT), free(st->mark), free(st->slot_of);
    memset(st, 0, sizeof *st);
}

gem_status_t gem__lstate_init(gem__lstate *st, const gem_profile_t *p, const gem_trace_t *t,
                              int32_t layer)
{
    memset(st, 0, sizeof *st);
    const int32_t G = p->num_gpus, E = t->num_experts;
    const size_t S = (size_t)t->num_steps;
    st->p = p;
    st->per_expert = p->cost_model == GEM_COST_PER_EXPERT;
    st->G = G, st->E = E, st->S = S;
    st->over = gem__array((size_t)G, sizeof *st->over);
    st->load = gem__array((size_t)E * S, sizeof *st->load);
    st->mean = gem__array((size_t)E, sizeof *st->mean);
    st->T = gem__array((size_t)G * S, sizeof *st->T);
    st->top = gem__array(S * GEM__LS_TOP, sizeof *st->top);
    st->newT = gem__array((size_t)G * S, sizeof *st->newT);
    st->mark = gem__array((size_t)G, sizeof *st->mark);
    st->slot_of = gem__array((size_t)G, sizeof *st->slot_of);
    if (!st->over || !st->load || !st->mean || !st->T || !st->top || !st->newT || !st->mark ||
        !st->slot_of) {
        gem__lstate_free(st);
        return GEM_ERR_NO_MEMORY;
    }
    for (int32_t g = 0; g < G; g++) st->over[g] = p->gpus[g].overhead;
    for (size_t s = 0; s < S; s++) {
        const double *row = gem__trace_row(t, (int64_t)s, layer);
        for (int32_t e = 0; e < E; e++) st->load[(size_t)e * S + s] = row[e];
    }
    for (int32_t e = 0; e < E; e++) {
        double sum = 0;
        for (size_t s = 0; s < S; s++) sum += st->load[(size_t)e * S + s];
        st->mean[e] = S ? sum / (double)S : 0;
    }
    return GEM_OK;
}

gem_status_t gem__layer_map_copy(gem__layer_map *dst, const gem__layer_map *src)
{
    if (dst->cap < src->n) {
        size_t cap = src->n ? src->n : 1;
        gem__placement *p = gem__realloc(dst->p, cap * sizeof *p);
        if (!p) return GEM_ERR_NO_MEMORY;
        dst->p = p;
        dst->cap = cap;
    }
    if (src->n) memcpy(dst->p, src->p, src->n * sizeof *src->p);
    dst->n = src->n;
    return GEM_OK;
}

/* Marks the GPUs of a change and gives each a column of newT. */
static void gem__lstate_mark(gem__lstate *st, const int32_t *aff, int32_t na)
{
    if (++st->stamp == 0) { /* wrapped */
        memset(st->mark, 0, (size_t)st->G * sizeof *st->mark);
        st->stamp = 1;
    }
    for (int32_t i = 0; i < na; i++) {
        st->mark[aff[i]] = st->stamp;
        st->slot_of[aff[i]] = i;
    }
}

/* Times of the marked GPUs under lm into newT (column slot_of[g]). */
static void gem__lstate_columns(gem__lstate *st, const gem__layer_map *lm, const int32_t *aff,
                                int32_t na)
{
    const size_t S = st->S;
    for (int32_t i = 0; i < na; i++) {
        double *col = st->newT + (size_t)i * S;
        double c = st->per_expert ? st->over[aff[i]] : 0.0;
        for (size_t s = 0; s < S; s++) col[s] = c;
    }
    for (size_t k = 0; k < lm->n; k++) {
        const gem__placement *q = &lm->p[k];
        if (st->mark[q->gpu] != st->stamp) continue;
        double *col = st->newT + (size_t)st->slot_of[q->gpu] * S;
        const double *ld = st->load + (size_t)q->expert * S;
        if (st->per_expert) {
            for (size_t s = 0; s < S; s++)
                if (ld[s] > 0) col[s] += gem__latency(st->p, q->gpu, q->share * ld[s]);
        } else {
            for (size_t s = 0; s < S; s++) col[s] += q->share * ld[s];
        }
    }
    if (!st->per_expert)
        for (int32_t i = 0; i < na; i++) {
            double *col = st->newT + (size_t)i * S;
            for (size_t s = 0; s < S; s++)
                col[s] = st->over[aff[i]] + gem__latency(st->p, aff[i], col[s]);
        }
}

static void gem__lstate_tops(gem__lstate *st)
{
    const int32_t G = st->G, K = G < GEM__LS_TOP ? G : GEM__LS_TOP;
    const size_t S = st->S;
    st->obj = 0;
    for (size_t s = 0; s < S; s++) {
        int32_t *top = st->top + s * GEM__LS_TOP;
        int32_t n = 0;
        for (int32_t g = 0; g < G; g++) {
            double v = st->T[(size_t)g * S + s];
            if (n == K && !(v > st->T[(size_t)top[K - 1] * S + s])) continue;
            int32_t i = n < K ? n++ : K - 1;
            while (i > 0 && v > st->T[(size_t)top[i - 1] * S + s]) {
                top[i] = top[i - 1];
                i--;
            }
            top[i] = g;
        }
        st->obj += st->T[(size_t)top[0] * S + s];
    }
}

gem_status_t gem__lstate_set(gem__lstate *st, const gem__layer_map *lm)
{
    gem_status_t s2 = gem__layer_map_copy(&st->lm, lm);
    if (s2) return s2;
    /* every GPU changes: compute all columns through the trial path, in chunks of all G */
    int32_t *all = gem__array((size_t)st->G, sizeof *all);
    if (!all) return GEM_ERR_NO_MEMORY;
    for (int32_t g = 0; g < st->G; g++) all[g] = g;
    gem__lstate_mark(st, all, st->G);
    gem__lstate_columns(st, &st->lm, all, st->G);
    memcpy(st->T, st->newT, (size_t)st->G * st->S * sizeof *st->T);
    free(all);
    gem__lstate_tops(st);
    return GEM_OK;
}

/* gem__lstate_delta, and the candidate's layer latency of every step into lat[S] unless NULL
 * (the same doubles gem__lstate_commit would leave as the steps' maxima). */
static double gem__lstate_delta_steps(gem__lstate *st, const gem__layer_map *cand,
                                      const int32_t *aff, int32_t na, double *lat)
{
    const size_t S = st->S;
    const int32_t G = st->G, K = G < GEM__LS_TOP ? G : GEM__LS_TOP;
    gem__lstate_mark(st, aff, na);
    gem__lstate_columns(st, cand, aff, na);
    double delta = 0;
    for (size_t s = 0; s < S; s++) {
        const int32_t *top = st->top + s * GEM__LS_TOP;
        double m = -INFINITY;
        for (int32_t i = 0; i < na; i++) m = fmax(m, st->newT[(size_t)i * S + s]);
        int found = 0;
        for (int32_t i = 0; i < K && !found; i++)
            if (st->mark[top[i]] != st->stamp) {
                m = fmax(m, st->T[(size_t)top[i] * S + s]);
                found = 1;
            }
        if (!found && G > K) /* every GPU on the list changed: look at the others */
            for (int32_t g = 0; g < G; g++)
                if (st->mark[g] != st->stamp) m = fmax(m, st->T[(size_t)g * S + s]);
        if (lat) lat[s] = m;
        delta += m - st->T[(size_t)top[0] * S + s];
    }
    return delta;
}

double gem__lstate_delta(gem__lstate *st, const gem__layer_map *cand, const int32_t *aff,
                         int32_t na)
{
    return gem__lstate_delta_steps(st, cand, aff, na, NULL);
}

double gem__lstate_swap_delta(gem__lstate *st, size_t i, size_t j)
{
    const size_t S = st->S;
    const int32_t G = st->G, K = G < GEM__LS_TOP ? G : GEM__LS_TOP;
    const gem__placement a = st->lm.p[i], b = st->lm.p[j];
    const int32_t aff[2] = {a.gpu, b.gpu};
    gem__lstate_mark(st, aff, 2);
    const double *la = st->load + (size_t)a.expert * S, *lb = st->load + (size_t)b.expert * S;
    const double *Ta = st->T + (size_t)a.gpu * S, *Tb = st->T + (size_t)b.gpu * S;
    double delta = 0;
    for (size_t s = 0; s < S; s++) {
        double xa = a.share * la[s], xb = b.share * lb[s];
        double na = Ta[s] - gem__latency(st->p, a.gpu, xa) + gem__latency(st->p, a.gpu, xb);
        double nb = Tb[s] - gem__latency(st->p, b.gpu, xb) + gem__latency(st->p, b.gpu, xa);
        double m = fmax(na, nb);
        const int32_t *top = st->top + s * GEM__LS_TOP;
        int found = 0;
        for (int32_t k = 0; k < K && !found; k++)
            if (st->mark[top[k]] != st->stamp) {
                m = fmax(m, st->T[(size_t)top[k] * S + s]);
                found = 1;
            }
        if (!found && G > K)
            for (int32_t g = 0; g < G; g++)
                if (st->mark[g] != st->stamp) m = fmax(m, st->T[(size_t)g * S + s]);
        delta += m - st->T[(size_t)top[0] * S + s];
    }
    return delta;
}

gem_status_t gem__lstate_commit(gem__lstate *st, const gem__layer_map *cand, const int32_t *aff,
                                int32_t na)
{
    gem_status_t s2 = gem__layer_map_copy(&st->lm, cand);
    if (s2) return s2;
    gem__lstate_mark(st, aff, na);
    gem__lstate_columns(st, cand, aff, na);
    for (int32_t i = 0; i < na; i++)
        memcpy(st->T + (size_t)aff[i] * st->S, st->newT + (size_t)i * st->S,
               st->S * sizeof *st->T);
    gem__lstate_tops(st);
    return GEM_OK;
}

/* ---- shares ---------------------------------------------------------------------------------- */

/* Largest token count z with the linear reading of GPU g's curve f(z) <= y (curves are read
 * as non-decreasing; a copy that cannot take one tile's time takes nothing). */
static double gem__curve_inverse(const gem_profile_t *p, int32_t g, double y)
{
    const gem__curve *c = &p->gpus[g].curve;
    const size_t k = c->k;
    if (!(y >= c->latency[0])) return 0.0;
    size_t i = k - 1;
    while (i > 0 && c->latency[i] > y) i--;
    if (i == k - 1) {
        double slope = c->tail_slope;
        if (!(slope > 0)) return INFINITY;
        return (double)c->tokens[k - 1] + (y - c->latency[k - 1]) / slope;
    }
    double x0 = (double)c->tokens[i], x1 = (double)c->tokens[i + 1];
    double y0 = c->latency[i], y1 = c->latency[i + 1];
    return y1 > y0 ? x0 + (y - y0) * (x1 - x0) / (y1 - y0) : x1;
}

/* Clamps shares to the floor and makes them sum to 1: the largest is 1 minus the others. */
static void gem__normalise(double *w, int32_t k, double floor_share)
{
    double sum = 0;
    for (int32_t i = 0; i < k; i++) sum += (w[i] = fmax(w[i], floor_share));
    int32_t big = 0;
    for (int32_t i = 0; i < k; i++) {
        w[i] /= sum;
        if (w[i] > w[big]) big = i;
    }
    double rest = 0;
    for (int32_t i = 0; i < k; i++)
        if (i != big) rest += w[i];
    w[big] = 1.0 - rest;
}

/* One copy in the water-filling: predicted time without the expert, and what the GPU
 * already runs (aggregate). */
typedef struct {
    int32_t gpu;
    double base;              /* predicted time without this expert */
    double held;              /* aggregate: mean tokens of the other experts */
} gem__wcopy;

/* Share of the expert's mean load m that the copy can take without passing level y. */
static double gem__wshare(const gem__lstate *st, const gem__wcopy *c, double m, double y)
{
    double z;
    if (st->per_expert) z = gem__curve_inverse(st->p, c->gpu, y - c->base);
    else z = gem__curve_inverse(st->p, c->gpu, y - st->over[c->gpu]) - c->held;
    if (!(z > 0)) return 0.0;
    return z >= m ? 1.0 : z / m;
}

static double gem__wcost(const gem__lstate *st, const gem__wcopy *c, double tokens)
{
    if (st->per_expert) return c->base + gem__curve_eval(&st->p->gpus[c->gpu].curve,
                                                         GEM_INTERP_LINEAR, tokens);
    return st->over[c->gpu] + gem__curve_eval(&st->p->gpus[c->gpu].curve, GEM_INTERP_LINEAR,
                                              c->held + tokens);
}

/* Water-filling shares for k copies of an expert with mean load m (see the file comment). */
static void gem__waterfill(const gem__lstate *st, const gem__wcopy *c, int32_t k, double m,
                           double *w)
{
    if (!(m > 0) || k == 1) {
        for (int32_t i = 0; i < k; i++) w[i] = 1.0 / k;
        gem__normalise(w, k, GEM__REP_MIN_SHARE);
        return;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int32_t i = 0; i < k; i++) {
        lo = fmin(lo, st->per_expert ? c[i].base : st->over[c[i].gpu]);
        hi = fmax(hi, gem__wcost(st, &c[i], m));
    }
    for (int it = 0; it < GEM__REP_BISECT && hi > lo; it++) {
        double mid = 0.5 * (lo + hi), sum = 0;
        for (int32_t i = 0; i < k; i++) sum += gem__wshare(st, &c[i], m, mid);
        if (sum >= 1.0) hi = mid;
        else lo = mid;
    }
    double sum = 0;
    for (int32_t i = 0; i < k; i++) sum += (w[i] = gem__wshare(st, &c[i], m, hi));
    if (!(sum > 0))
        for (int32_t i = 0; i < k; i++) w[i] = 1.0;
    gem__normalise(w, k, GEM__REP_MIN_SHARE);
}

/* What the share rule reads, averaged over a set of steps: all of them (the means), or with
 * objective P90 also the tail steps. */
typedef struct {
    const double *tbar;       /* [G] mean T per GPU under st->lm */
    const double *held;       /* [G] mean tokens per GPU under st->lm */
    const double *load;       /* [E] mean load per expert */
    const unsigned char *in;  /* [S] the steps averaged over; NULL = all */
    size_t n;                 /* how many */
} gem__stats;

/* Mean over v's steps of f_g(share x load_e) (the copy's own mean cost under per_expert). */
static double gem__copy_mean_cost(const gem__lstate *st, const gem__stats *v, int32_t e,
                                  int32_t g, double share)
{
    const double *ld = st->load + (size_t)e * st->S;
    double sum = 0;
    for (size_t s = 0; s < st->S; s++)
        if (ld[s] > 0 && (!v->in || v->in[s])) sum += gem__latency(st->p, g, share * ld[s]);
    return v->n ? sum / (double)v->n : 0;
}

/* Sets the shares of expert e's placements in lm by the rule, given v's statistics under
 * st->lm, where e's copies had the shares of st->lm. */
static void gem__set_shares(const gem__lstate *st, gem__layer_map *lm, int32_t e,
                            gem_share_rule_t rule, const gem__stats *v, gem__wcopy *wc,
                            double *w, int32_t *idx)
{
    int32_t k = 0;
    for (size_t i = 0; i < lm->n; i++)
        if (lm->p[i].expert == e) idx[k++] = (int32_t)i;
    if (rule == GEM_SHARES_EQUAL) {
        for (int32_t i = 0; i < k; i++) w[i] = 1.0 / k;
        gem__normalise(w, k, 0.0);
    } else {
        for (int32_t i = 0; i < k; i++) {
            int32_t g = lm->p[idx[i]].gpu;
            double old = 0; /* the share e had on g in st->lm (0 for a new copy) */
            for (size_t j = 0; j < st->lm.n; j++)
                if (st->lm.p[j].expert == e && st->lm.p[j].gpu == g) old = st->lm.p[j].share;
            wc[i].gpu = g;
            wc[i].base = v->tbar[g] - (old > 0 ? gem__copy_mean_cost(st, v, e, g, old) : 0.0);
            wc[i].held = v->held[g] - old * v->load[e];
        }
        gem__waterfill(st, wc, k, v->load[e], w);
    }
    for (int32_t i = 0; i < k; i++) lm->p[idx[i]].share = w[i];
}

/* ---- replication ----------------------------------------------------------------------------- */

/* A layer's objective under GEM_OBJECTIVE_P90: nearest-rank p90 of its per-step latencies,
 * and their sum (the tie-breaker). */
typedef struct {
    double sum, p90;
} gem__rep_obj;

typedef struct {
    gem__lstate st;
    gem__layer_map cand, best;
    int32_t *free_slots;      /* [G] */
    int32_t *copies;          /* [E] */
    double *tbar, *held;      /* [G] mean T and mean tokens under st.lm */
    gem__wcopy *wc;           /* [G] */
    double *w;                /* [G] */
    int32_t *idx, *aff, *best_aff; /* [G + 1] */
    int32_t *experts;         /* [E] */
    double *key;              /* [E] */
    int p90;                  /* the objective is P90 (else MEAN) */
    size_t rank;              /* gem__nearest_rank(90, S) */
    gem__rep_obj cur;         /* of st.lm: its p90 picks the tail steps for either objective */
    double *lat;              /* [S] a layer's latency per step */
    double *ttail, *htail, *etail; /* [G], [G], [E] means over the tail steps (gem__rep_tail) */
    unsigned char *tail;      /* [S] the tail steps */
    size_t ntail;
} gem__rep;

static void gem__rep_free(gem__rep *r)
{
    gem__lstate_free(&r->st);
    free(r->cand.p), free(r->best.p), free(r->free_slots), free(r->copies), free(r->tbar);
    free(r->held), free(r->wc), free(r->w), free(r->idx), free(r->aff), free(r->best_aff);
    free(r->experts), free(r->key), free(r->lat), free(r->ttail), free(r->etail);
    free(r->htail), free(r->tail);
}

/* a better than b, as gem__obj_better in map_gem.c: a lower p90, or the same p90 (within
 * tol) and a lower sum. */
static int gem__rep_better(gem__rep_obj a, gem__rep_obj b, double tol)
{
    return a.p90 < b.p90 - tol || (a.p90 <= b.p90 && a.sum < b.sum - tol);
}

/* (p90, sum) of the per-step latencies in r->lat (reordered). */
static gem__rep_obj gem__rep_obj_of_lat(gem__rep *r)
{
    gem__rep_obj o = {0, 0};
    for (size_t s = 0; s < r->st.S; s++) o.sum += r->lat[s];
    if (r->st.S) o.p90 = gem__kth_smallest(r->lat, r->st.S, r->rank);
    return o;
}

/* r->cur from st's tops, after gem__lstate_set or _commit (the p90 picks the tail steps for
 * either objective). The sum adds the same doubles in the same order as gem__rep_eval does for
 * the candidate that was committed. */
static void gem__rep_current(gem__rep *r)
{
    const gem__lstate *st = &r->st;
    for (size_t s = 0; s < st->S; s++)
        r->lat[s] = st->T[(size_t)st->top[s * GEM__LS_TOP] * st->S + s];
    r->cur = gem__rep_obj_of_lat(r);
}

/* (p90, sum) of the layer if its placements became cand, which differs from st.lm only on
 * the GPUs aff[0..na): the affected GPUs' columns are recomputed, the others' largest time
 * per step comes from the tops (gem__lstate_delta). */
static gem__rep_obj gem__rep_eval(gem__rep *r, const gem__layer_map *cand, const int32_t *aff,
                                  int32_t na)
{
    (void)gem__lstate_delta_steps(&r->st, cand, aff, na, r->lat);
    return gem__rep_obj_of_lat(r);
}

static void gem__rep_means(gem__rep *r)
{
    const gem__lstate *st = &r->st;
    for (int32_t g = 0; g < st->G; g++) {
        double sum = 0;
        for (size_t s = 0; s < st->S; s++) sum += st->T[(size_t)g * st->S + s];
        r->tbar[g] = st->S ? sum / (double)st->S : 0;
        r->held[g] = 0;
    }
    for (size_t i = 0; i < st->lm.n; i++)
        r->held[st->lm.p[i].gpu] += st->lm.p[i].share * st->mean[st->lm.p[i].expert];
}

static int gem__holds(const gem__layer_map *lm, int32_t e, int32_t g)
{
    for (size_t i = 0; i < lm->n; i++)
        if (lm->p[i].expert == e && lm->p[i].gpu == g) return 1;
    return 0;
}

/* GPUs holding e in lm, then g: the GPUs a change to e's copies touches. */
static int32_t gem__expert_gpus(const gem__layer_map *lm, int32_t e, int32_t g, int32_t *aff)
{
    int32_t n = 0;
    for (size_t i = 0; i < lm->n; i++)
        if (lm->p[i].expert == e) aff[n++] = lm->p[i].gpu;
    if (g >= 0) aff[n++] = g;
    return n;
}

/* Up to GEM__REP_EXPERTS experts worth a replica into out, highest load per copy first by
 * the loads ld[E] (ties: lowest id). key: scratch [GEM__REP_EXPERTS]. */
static int32_t gem__rep_candidates(const gem__rep *r, const double *ld, int32_t *out, double *key)
{
    const int32_t E = r->st.E, G = r->st.G;
    int32_t n = 0;
    for (int32_t e = 0; e < E; e++) {
        if (r->copies[e] >= G || !(ld[e] > 0)) continue;
        double k = ld[e] / r->copies[e];
        if (n == GEM__REP_EXPERTS && !(k > key[n - 1])) continue;
        int32_t i = n < GEM__REP_EXPERTS ? n++ : GEM__REP_EXPERTS - 1;
        while (i > 0 && k > key[i - 1]) {
            key[i] = key[i - 1];
            out[i] = out[i - 1];
            i--;
        }
        key[i] = k;
        out[i] = e;
    }
    return n;
}

/* The GEM__REP_GPUS GPUs with a free slot and without e, least predicted finish first:
 * tb[g] plus the new copy's cost on e's load ld[e]. */
static int32_t gem__rep_gpus(const gem__rep *r, int32_t e, const double *tb, const double *ld,
                             int32_t *out)
{
    const gem__lstate *st = &r->st;
    double key[GEM__REP_GPUS];
    int32_t n = 0;
    double share = 1.0 / (r->copies[e] + 1);
    for (int32_t g = 0; g < st->G; g++) {
        if (r->free_slots[g] <= 0 || gem__holds(&st->lm, e, g)) continue;
        double k = tb[g] + gem__latency(st->p, g, share * ld[e]);
        if (n == GEM__REP_GPUS && !(k < key[n - 1])) continue;
        int32_t i = n < GEM__REP_GPUS ? n++ : GEM__REP_GPUS - 1;
        while (i > 0 && k < key[i - 1]) {
            key[i] = key[i - 1];
            out[i] = out[i - 1];
            i--;
        }
        key[i] = k;
        out[i] = g;
    }
    return n;
}

/* The tail steps (those whose latency is at least the p90: the steps a lower p90 has to make
 * faster, and the slowest ones for the mean), and the means over them of T per GPU (ttail),
 * tokens per GPU (htail) and load per expert (etail). */
static void gem__rep_tail(gem__rep *r)
{
    const gem__lstate *st = &r->st;
    const size_t S = st->S;
    size_t n = 0;
    for (int32_t g = 0; g < st->G; g++) r->ttail[g] = r->htail[g] = 0;
    for (int32_t e = 0; e < st->E; e++) r->etail[e] = 0;
    for (size_t s = 0; s < S; s++) {
        r->tail[s] = st->T[(size_t)st->top[s * GEM__LS_TOP] * S + s] >= r->cur.p90;
        if (!r->tail[s]) continue;
        n++;
        for (int32_t g = 0; g < st->G; g++) r->ttail[g] += st->T[(size_t)g * S + s];
        for (int32_t e = 0; e < st->E; e++) r->etail[e] += st->load[(size_t)e * S + s];
    }
    const double div = (double)(n ? n : 1);
    for (int32_t g = 0; g < st->G; g++) r->ttail[g] /= div;
    for (int32_t e = 0; e < st->E; e++) r->etail[e] /= div;
    for (size_t i = 0; i < st->lm.n; i++)
        r->htail[st->lm.p[i].gpu] += st->lm.p[i].share * r->etail[st->lm.p[i].expert];
    r->ntail = n;
}

/* Appends b[0..nb) to a[0..na) without repeats. */
static int32_t gem__union(int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
    for (int32_t i = 0; i < nb; i++) {
        int32_t dup = 0;
        for (int32_t j = 0; j < na && !dup; j++) dup = a[j] == b[i];
        if (!dup) a[na++] = b[i];
    }
    return na;
}

/* Adds the best replica; *added = 0 when none lowers the objective. */
static gem_status_t gem__rep_one(gem__rep *r, gem_share_rule_t rule, int *added)
{
    gem__lstate *st = &r->st;
    const double tol = 1e-9 * fmax(1.0, fabs(st->obj));
    *added = 0;
    gem__rep_means(r);
    gem__rep_tail(r);
    const gem__stats all = {r->tbar, r->held, st->mean, NULL, st->S};
    const gem__stats tailv = {r->ttail, r->htail, r->etail, r->tail, r->ntail};
    int32_t ne = gem__rep_candidates(r, st->mean, r->experts, r->key);
    { /* and the experts busiest in the tail steps */
        int32_t tmp[GEM__REP_EXPERTS];
        int32_t nt = gem__rep_candidates(r, r->etail, tmp, r->key);
        ne = gem__union(r->experts, ne, tmp, nt);
    }
    double best = -tol;       /* objective MEAN: the best change of the sum */
    gem__rep_obj best_obj = r->cur; /* objective P90: the best candidate, or where we are */
    int32_t best_na = 0, best_e = -1, best_g = -1;
    int32_t gpus[2 * GEM__REP_GPUS];
    gem_status_t s2;
    for (int32_t i = 0; i < ne; i++) {
        int32_t e = r->experts[i];
        int32_t ng = gem__rep_gpus(r, e, r->tbar, st->mean, gpus);
        { /* and the GPUs least busy in the tail steps */
            int32_t tmp[GEM__REP_GPUS];
            int32_t nt = gem__rep_gpus(r, e, r->ttail, r->etail, tmp);
            ng = gem__union(gpus, ng, tmp, nt);
        }
        for (int32_t j = 0; j < ng; j++) {
            int32_t g = gpus[j];
            if ((s2 = gem__layer_map_copy(&r->cand, &st->lm))) return s2;
            if ((s2 = gem__layer_map_add(&r->cand, e, g, 1.0))) return s2;
            int32_t na = gem__expert_gpus(&st->lm, e, g, r->aff);
            /* shares by the means; speed-weighted also by the tail steps */
            const int views = rule == GEM_SHARES_SPEED_WEIGHTED ? 2 : 1;
            for (int v = 0; v < views; v++) {
                gem__set_shares(st, &r->cand, e, rule, v ? &tailv : &all, r->wc, r->w, r->idx);
                int take;
                if (r->p90) {
                    gem__rep_obj o = gem__rep_eval(r, &r->cand, r->aff, na);
                    if ((take = gem__rep_better(o, best_obj, tol))) best_obj = o;
                } else {
                    double d = gem__lstate_delta(st, &r->cand, r->aff, na);
                    if ((take = d < best)) best = d;
                }
                if (take) {
                    best_e = e, best_g = g, best_na = na;
                    memcpy(r->best_aff, r->aff, (size_t)na * sizeof *r->aff);
                    if ((s2 = gem__layer_map_copy(&r->best, &r->cand))) return s2;
                }
            }
        }
    }
    if (best_e < 0) return GEM_OK;
    if ((s2 = gem__lstate_commit(st, &r->best, r->best_aff, best_na))) return s2;
    gem__rep_current(r);
    r->free_slots[best_g]--;
    r->copies[best_e]++;
    *added = 1;
    return GEM_OK;
}

/* Moves share between two copies of each replicated expert while that lowers the objective. */
static gem_status_t gem__rep_refine(gem__rep *r)
{
    gem__lstate *st = &r->st;
    gem_status_t s2;
    for (int32_t e = 0; e < st->E; e++) {
        if (r->copies[e] < 2) continue;
        int32_t k = 0;
        for (size_t i = 0; i < st->lm.n; i++)
            if (st->lm.p[i].expert == e) r->idx[k++] = (int32_t)i;
        for (double step = 1.0 / 8; step >= 1.0 / 128; step /= 2) {
            for (int pass = 0, improved = 1; improved && pass < 8; pass++) {
                improved = 0;
                for (int32_t a = 0; a < k; a++)
                    for (int32_t b = 0; b < k; b++) {
                        if (a == b) continue;
                        const gem__placement *pa = &st->lm.p[r->idx[a]], *pb = &st->lm.p[r->idx[b]];
                        if (pa->share - step < GEM__REP_MIN_SHARE) continue;
                        if ((s2 = gem__layer_map_copy(&r->cand, &st->lm))) return s2;
                        r->cand.p[r->idx[a]].share -= step;
                        r->cand.p[r->idx[b]].share += step;
                        int32_t aff[2] = {pa->gpu, pb->gpu};
                        double tol = 1e-9 * fmax(1.0, fabs(st->obj));
                        int take = r->p90
                                       ? gem__rep_better(gem__rep_eval(r, &r->cand, aff, 2),
                                                         r->cur, tol)
                                       : gem__lstate_delta(st, &r->cand, aff, 2) < -tol;
                        if (take) {
                            if ((s2 = gem__lstate_commit(st, &r->cand, aff, 2))) return s2;
                            gem__rep_current(r);
                            improved = 1;
                        }
                    }
            }
        }
        /* exact normalisation after the moves */
        for (int32_t i = 0; i < k; i++) r->w[i] = st->lm.p[r->idx[i]].share;
        gem__normalise(r->w, k, 0.0);
        for (int32_t i = 0; i < k; i++) st->lm.p[r->idx[i]].share = r->w[i];
    }
    return GEM_OK;
}

gem_status_t gem__replicate_layer(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *lm,
                                  int64_t R, gem_share_rule_t rule)
{
    const int32_t G = ctx->num_gpus, E = ctx->num_experts;
    gem__rep r;
    memset(&r, 0, sizeof r);
    gem_status_t s2 = gem__lstate_init(&r.st, ctx->profile, ctx->trace, layer);
    if (s2) return s2;
    r.free_slots = gem__array((size_t)G, sizeof *r.free_slots);
    r.copies = gem__array((size_t)E, sizeof *r.copies);
    r.tbar = gem__array((size_t)G, sizeof *r.tbar);
    r.held = gem__array((size_t)G, sizeof *r.held);
    r.wc = gem__array((size_t)G + 1, sizeof *r.wc);
    r.w = gem__array((size_t)G + 1, sizeof *r.w);
    r.idx = gem__array((size_t)G + 1, sizeof *r.idx);
    r.aff = gem__array((size_t)G + 1, sizeof *r.aff);
    r.best_aff = gem__array((size_t)G + 1, sizeof *r.best_aff);
    r.experts = gem__array(2 * GEM__REP_EXPERTS, sizeof *r.experts);
    r.key = gem__array(GEM__REP_EXPERTS, sizeof *r.key);
    r.p90 = gem__opt_int(ctx->opts, GEM_OPT_OBJECTIVE) == GEM_OBJECTIVE_P90;
    r.rank = gem__nearest_rank(90, r.st.S);
    r.lat = gem__array(r.st.S ? r.st.S : 1, sizeof *r.lat);
    r.ttail = gem__array((size_t)G, sizeof *r.ttail);
    r.htail = gem__array((size_t)G, sizeof *r.htail);
    r.tail = gem__array(r.st.S ? r.st.S : 1, sizeof *r.tail);
    r.etail = gem__array((size_t)E, sizeof *r.etail);
    if (!r.free_slots || !r.copies || !r.tbar || !r.held || !r.wc || !r.w || !r.idx || !r.aff ||
        !r.best_aff || !r.experts || !r.key || !r.lat || !r.ttail || !r.htail || !r.etail || !r.tail) {
        gem__rep_free(&r);
        return GEM_ERR_NO_MEMORY;
    }
    if ((s2 = gem__lstate_set(&r.st, lm))) goto done;
    gem__rep_current(&r);
    const gem__rep_obj start = r.cur;
    for (int32_t g = 0; g < G; g++) r.free_slots[g] = ctx->slots[g];
    for (size_t i = 0; i < lm->n; i++) {
        r.free_slots[lm->p[i].gpu]--;
        r.copies[lm->p[i].expert]++;
    }
    for (int64_t i = 0; i < R; i++) {
        int added;
        if ((s2 = gem__rep_one(&r, rule, &added))) goto done;
        if (!added) break;
    }
    if (rule == GEM_SHARES_SPEED_WEIGHTED && (s2 = gem__rep_refine(&r))) goto done;
    if (r.p90) {
        /* the final shares evaluated afresh (the last normalisation moved them by rounding,
         * which may cross a tile boundary): keep the start if its p90 is lower after all */
        if ((s2 = gem__layer_map_copy(&r.cand, &r.st.lm)) || (s2 = gem__lstate_set(&r.st, &r.cand)))
            goto done;
        gem__rep_current(&r);
        if (r.cur.p90 > start.p90) goto done;
    }
    s2 = gem__layer_map_copy(lm, &r.st.lm);
done:
    gem__rep_free(&r);
    return s2;
}
