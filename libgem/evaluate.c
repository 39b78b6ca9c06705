/*
 * evaluate.c - replays a trace through a mapping with SPEC 2's cost model, and a lower bound
 * on the mean step latency that no mapping with the same constraints can beat.
 *
 * The model and the bounds are explained in docs/cost-model.md; the comments here say how
 * the code follows it.
 *
 * Work is split into chunks of whole steps whose size depends only on the number of steps,
 * and every sum over chunks is taken in chunk order, so the report is bit-for-bit the same
 * whatever GEM_OPT_THREADS is. The lower bound of a layer whose mapping has no replicas
 * (per_expert) is not summed step by step in the chunks but computed over blocks of steps
 * (a mapping is the same in every step): units of one block and one layer, whose sizes
 * depend on the shapes only, are tasks of their own, ahead of the chunks.
 */
#include "beyond.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct gem_report {
    int32_t num_gpus;
    int64_t num_steps;
    double mean, p50, p90, p99, total, max, lower_bound, imbalance;
    int has_comm;             /* GEM_OPT_COMM_MODEL: comm holds the mean all-to-all time */
    double comm, cross_host;
    double *step_us;          /* [num_steps] */
    double *busy_us;          /* [num_gpus] */
    int64_t *stragglers;      /* [num_gpus] */
};

/* Multiplicative-weight rounds that improve the Lagrangian bound after its start. From the
 * speed-proportional start, 30 rounds gain 0.1% on random small cases (exhaustive optima),
 * and each costs a pass over distinct loads x GPUs. */
#define GEM__LAGR_ROUNDS 1
/* Largest experts x GPUs for which the bounds that read every f_g(n_e) are computed (a table
 * of that many doubles per worker). Past it they would cost far more than the evaluation
 * itself, and only the O(E + G) bounds are used. */
#define GEM__FTAB_MAX ((size_t)1 << 18)
/* Whole-trace bound (docs/cost-model.md 3.7): most steps x experts x GPUs in one block of
 * steps (its f table: 8 MiB per worker), and the ascent of its weights: at most
 * GEM__WT_ROUNDS rounds, stopped when GEM__WT_STALL rounds in a row (one, if the start is
 * no better than the per-step bounds) do not beat the best by GEM__WT_TINY of it; step size
 * GEM__WT_ETA / sqrt(1 + round), and GEM__WT_SPREAD of the weight spread evenly after each
 * step. Tuned on random 4-GPU cases with unlike curves: 20 rounds get within about 1% of
 * where 300 get, most of the gain being the start itself. */
#define GEM__WT_CELLS ((size_t)1 << 20)
#define GEM__WT_ROUNDS 20
#define GEM__WT_STALL 3
#define GEM__WT_TINY 1e-5
#define GEM__WT_ETA 0.1
#define GEM__WT_SPREAD 0.003

/* ---- read-only state shared by the workers ------------------------------------------------ */

typedef struct {
    const gem_profile_t *p;
    const gem_trace_t *t;
    const gem_mapping_t *m;
    int32_t G, L, E;
    int64_t S;
    gem_cost_model_t model;
    const gem__comm *cm;      /* all-to-all model (docs/cost-model-topology.md), or NULL */
    double *c;                /* [G] overheads */
    double max_c;
    /* fluid bound: GPUs sorted by c, prefix sums of 1/r and c/r (valid when fluid_ok) */
    int fluid_ok;
    double *fl_c, *fl_a, *fl_b; /* [G] */
    double *fmin, *rate;      /* [G] inf of f_g over x > 0, inf of f_g(x) / x (clamped at 0) */
    int all_monotone;         /* every f_g non-decreasing (aggregate heaviest-expert bound) */
    int any_neg_tail;         /* some f_g falls past its last sample: f may go below 0 */
    uint8_t *single;          /* [L] 1 when every expert of the layer has one placement */
    int64_t chunk;            /* steps per chunk */
    int64_t num_chunks;
    /* whole-trace bound: layers that have it (their bound is left out of the chunks), cut
     * into blocks of steps; a unit is one (block, such layer) */
    uint8_t *whole;           /* [L] */
    int32_t *wlayers;         /* [num_wl] the layers with whole[l] */
    int32_t num_wl;
    int64_t block;            /* steps per block */
    int64_t num_blocks;
    int64_t num_units;        /* num_blocks x num_wl */
    double *unit_lb;          /* [num_units] each unit's bound, summed over its steps */
    int32_t *kslots;          /* [L][G] experts on each GPU (GEM_OPT_BOUND_SLOTS), or NULL */
    /* outputs */
    double *step_us;          /* [S] */
    double *chunk_busy;       /* [num_chunks][G] */
    int64_t *chunk_strag;     /* [num_chunks][G] */
    double *chunk_imb;        /* [num_chunks] sum of per-(step, layer) imbalance */
    double *chunk_lb;         /* [num_chunks] sum of per-(step, layer) bounds */
    double *chunk_comm;       /* [num_chunks][3] sums of all-to-all time, tokens leaving their
                                 host, tokens (per (step, layer)) */
    atomic_llong next;
} gem__eval;

/* Scratch of one worker. */
typedef struct {
    gem__eval *ev;
    double *T, *X;            /* [G] GPU times, aggregate loads */
    double *cs;               /* scratch of the all-to-all model, or NULL */
    double *lam, *sub;        /* [G] Lagrange weights and their supergradient */
    double *v;                /* [E] distinct non-zero loads */
    double *mult;             /* [E] how many experts have each */
    double *ftab;             /* [E*G] f_g(v_u), row per u; NULL past GEM__FTAB_MAX */
    uint32_t *hst, *hidx;     /* [hmask + 1] hash of distinct loads: stamp, index into v */
    uint32_t hmask, hstamp;
    int hshift;               /* 64 - log2(hmask + 1) */
    /* whole-trace bound of one unit; NULL when no layer has one */
    double *hv;               /* [E] heavy bound of each distinct load */
    double *bft;              /* [block * E * G] the block's steps' f tables, one after another */
    size_t *boff;             /* [block] where each step's table starts */
    int32_t *buix;            /* [block * E] each expert's distinct load in its step, -1: none */
    double *blam, *bgl;       /* [block * G] weights on the GPUs, and their supergradient */
    double *bmu;              /* [block] weight on the step's heavy expert */
    int32_t *bhe;             /* [block] the step's heavy expert, -1: none */
    double *bS, *bt;          /* [block * G] slot sums and k-th values (GEM_OPT_BOUND_SLOTS) */
    double *W;                /* [E * G] each expert's weighted cost on each GPU */
    double *m1, *m2, *pi;     /* [E], [E], [G] best and second W[e][g] + pi_g; prices */
    int32_t *sig, *a2;        /* [E] their GPUs: the assignment that minimises W + pi */
    double *sel;              /* [E] scratch of the selections */
} gem__eval_worker;

static void gem__eval_free(gem__eval *ev)
{
    free(ev->c);
    free(ev->fl_c);
    free(ev->fl_a);
    free(ev->fl_b);
    free(ev->fmin);
    free(ev->rate);
    free(ev->single);
    free(ev->step_us);
    free(ev->chunk_busy);
    free(ev->chunk_strag);
    free(ev->chunk_imb);
    free(ev->chunk_lb);
    free(ev->chunk_comm);
    free(ev->whole);
    free(ev->wlayers);
    free(ev->unit_lb);
    free(ev->kslots);
}

static void gem__worker_free(gem__eval_worker *w)
{
    free(w->T);
    free(w->X);
    free(w->lam);
    free(w->sub);
    free(w->v);
    free(w->mult);
    free(w->ftab);
    free(w->hst);
    free(w->hidx);
    free(w->cs);
    free(w->hv);
    free(w->bft);
    free(w->boff);
    free(w->buix);
    free(w->blam);
    free(w->bgl);
    free(w->bmu);
    free(w->bhe);
    free(w->bS);
    free(w->bt);
    free(w->W);
    free(w->m1);
    free(w->m2);
    free(w->pi);
    free(w->sig);
    free(w->a2);
    free(w->sel);
}

/* Scratch of the whole-trace bound, only when some layer has it. */
static gem_status_t gem__worker_init_block(gem__eval_worker *w, const gem__eval *ev)
{
    size_t G = (size_t)ev->G, E = (size_t)ev->E, B = (size_t)ev->block;
    size_t BS = ev->kslots ? B * G : 1;
    w->hv = gem__array(E, sizeof(double));
    w->bft = gem__array(B * E * G, sizeof(double));
    w->boff = gem__array(B, sizeof(size_t));
    w->buix = gem__array(B * E, sizeof(int32_t));
    w->blam = gem__array(B * G, sizeof(double));
    w->bgl = gem__array(B * G, sizeof(double));
    w->bmu = gem__array(B, sizeof(double));
    w->bhe = gem__array(B, sizeof(int32_t));
    w->bS = gem__array(BS, sizeof(double));
    w->bt = gem__array(BS, sizeof(double));
    w->W = gem__array(E * G, sizeof(double));
    w->m1 = gem__array(E, sizeof(double));
    w->m2 = gem__array(E, sizeof(double));
    w->pi = gem__calloc(G, sizeof(double));
    w->sig = gem__array(E, sizeof(int32_t));
    w->a2 = gem__array(E, sizeof(int32_t));
    w->sel = gem__array(E, sizeof(double));
    if (!w->hv || !w->bft || !w->boff || !w->buix || !w->blam || !w->bgl || !w->bmu ||
        !w->bhe || !w->bS || !w->bt || !w->W || !w->m1 || !w->m2 || !w->pi || !w->sig ||
        !w->a2 || !w->sel)
        return GEM_ERR_NO_MEMORY;
    return GEM_OK;
}

static gem_status_t gem__worker_init(gem__eval_worker *w, gem__eval *ev)
{
    memset(w, 0, sizeof *w);
    w->ev = ev;
    size_t G = (size_t)ev->G, E = (size_t)ev->E;
    w->T = gem__array(G, sizeof(double));
    w->X = gem__array(G, sizeof(double));
    w->lam = gem__array(G, sizeof(double));
    w->sub = gem__array(G, sizeof(double));
    w->v = gem__array(E, sizeof(double));
    w->mult = gem__array(E, sizeof(double));
    if (E * G <= GEM__FTAB_MAX) w->ftab = gem__array(E * G, sizeof(double));
    size_t hsize = 4;
    w->hshift = 62;
    while (hsize < 2 * E) hsize *= 2, w->hshift--; /* at most half full */
    w->hmask = (uint32_t)(hsize - 1);
    w->hst = gem__array(hsize, sizeof *w->hst);
    w->hidx = gem__array(hsize, sizeof *w->hidx);
    if (ev->cm) w->cs = gem__array(gem__comm_scratch(ev->cm), sizeof(double));
    if (!w->T || !w->X || !w->lam || !w->sub || !w->v || !w->mult ||
        (E * G <= GEM__FTAB_MAX && !w->ftab) || !w->hst || !w->hidx || (ev->cm && !w->cs) ||
        (ev->num_units > 0 && gem__worker_init_block(w, ev))) {
        gem__worker_free(w);
        return GEM_ERR_NO_MEMORY;
    }
    return GEM_OK;
}

/* ---- SPEC 2: the GPU times of one (step, layer) -------------------------------------------- */

static void gem__layer_times(const gem__eval *ev, const double *row, int32_t l, double *T,
                             double *X)
{
    const gem_profile_t *p = ev->p;
    const gem__layer_map *lm = &ev->m->layers[l];
    const int32_t G = ev->G;
    if (ev->model == GEM_COST_PER_EXPERT) {
        memcpy(T, ev->c, (size_t)G * sizeof *T);
        for (size_t i = 0; i < lm->n; i++) {
            const gem__placement *q = &lm->p[i];
            double x = q->share * row[q->expert];
            if (x > 0) T[q->gpu] += gem__latency(p, q->gpu, x);
        }
    } else {
        memset(X, 0, (size_t)G * sizeof *X);
        for (size_t i = 0; i < lm->n; i++) {
            const gem__placement *q = &lm->p[i];
            X[q->gpu] += q->share * row[q->expert];
        }
        for (int32_t g = 0; g < G; g++) T[g] = ev->c[g] + gem__latency(p, g, X[g]);
    }
}

/* ---- lower bound of one (step, layer); see docs/cost-model.md ------------------------------ */

/* Fluid bound: the smallest T with sum_g max(0, T - c_g) / r_g >= N (every r_g > 0). */
static double gem__fluid_bound(const gem__eval *ev, double N)
{
    const int32_t G = ev->G;
    for (int32_t j = 0; j < G; j++) {
        /* GPUs 0..j (by c) are busy; T lies in [c_j, c_{j+1}] when the capacity at the next
         * breakpoint covers N */
        if (j + 1 == G || ev->fl_c[j + 1] * ev->fl_a[j] - ev->fl_b[j] >= N)
            return (N + ev->fl_b[j]) / ev->fl_a[j];
    }
    return ev->max_c; /* not reached */
}

static int gem__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Collects the distinct non-zero loads of a row into w->v with their multiplicities, in
 * order of first appearance; returns how many. Equal loads give equal f values, so the
 * Lagrangian needs each only once (decode steps repeat small counts a lot). An open-
 * addressing table stamped per row avoids both sorting and clearing. With uix, also says
 * which distinct load each expert has (-1 for none). */
static size_t gem__distinct_loads(gem__eval_worker *w, const double *row, int32_t *uix)
{
    const uint32_t mask = w->hmask;
    if (++w->hstamp == 0) { /* wrapped: forget every old stamp */
        memset(w->hst, 0, ((size_t)mask + 1) * sizeof *w->hst);
        w->hstamp = 1;
    }
    const uint32_t stamp = w->hstamp;
    size_t u = 0;
    for (int32_t e = 0; e < w->ev->E; e++) {
        double x = row[e];
        if (uix) uix[e] = -1;
        if (!(x > 0)) continue;
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        /* loads are mostly small integers, whose low mantissa bits are all zero: fold the
         * high bits down before multiplying, and take the product's top bits */
        uint32_t h = (uint32_t)(((bits ^ (bits >> 31)) * 0x9e3779b97f4a7c15ULL) >> w->hshift);
        for (;;) {
            if (w->hst[h] != stamp) {
                w->hst[h] = stamp;
                w->hidx[h] = (uint32_t)u;
                if (uix) uix[e] = (int32_t)u;
                w->v[u] = x;
                w->mult[u++] = 1;
                break;
            }
            if (w->v[w->hidx[h]] == x) {
                if (uix) uix[e] = (int32_t)w->hidx[h];
                w->mult[w->hidx[h]] += 1;
                break;
            }
            h = (h + 1) & mask;
        }
    }
    return u;
}

static inline double gem__max(double a, double b) { return a > b ? a : b; }
static inline double gem__min(double a, double b) { return a < b ? a : b; }

/* A Lagrangian bound: for weights lambda in the simplex, any mapping's layer latency is
 * max_g T_g >= sum_g lambda_g T_g, and a lower bound of that sum over the mappings of the
 * class is a lower bound. The oracle returns that lower bound for one lambda and fills sub[]
 * with a supergradient (each GPU's time under the assignment that attains it). */
typedef double (*gem__oracle_fn)(gem__eval_worker *w, size_t U, const double *lam, double *sub);

/* Without replicas (per_expert): sum_g lambda_g c_g + sum_e min_g lambda_g f_g(n_e). */
static double gem__oracle_single(gem__eval_worker *w, size_t U, const double *lam, double *sub)
{
    const gem__eval *ev = w->ev;
    const int32_t G = ev->G;
    memcpy(sub, ev->c, (size_t)G * sizeof *sub);
    for (size_t u = 0; u < U; u++) {
        const double *F = w->ftab + u * (size_t)G;
        double mv = INFINITY;
        int32_t arg = 0;
        for (int32_t g = 0; g < G; g++) {
            double x = lam[g] * F[g];
            if (x < mv) mv = x, arg = g;
        }
        sub[arg] += w->mult[u] * F[arg];
    }
    double val = 0;
    for (int32_t g = 0; g < G; g++) val += lam[g] * sub[g];
    return val;
}

/* With replicas allowed (per_expert, every f_g >= 0): each copy of an expert with n_e > 0
 * tokens gets w n_e > 0 of them and costs lambda_g f_g(w n_e) >= lambda_g max(m_g, r_g w n_e),
 * m_g = inf f_g, r_g = inf f_g(x)/x. The expert's copies together cost at least
 * max(min_g lambda_g m_g, n_e min_g lambda_g r_g). */
static double gem__oracle_replicas(gem__eval_worker *w, size_t U, const double *lam, double *sub)
{
    const gem__eval *ev = w->ev;
    const int32_t G = ev->G;
    memcpy(sub, ev->c, (size_t)G * sizeof *sub);
    int32_t gm = 0, gr = 0;
    for (int32_t g = 1; g < G; g++) {
        if (lam[g] * ev->fmin[g] < lam[gm] * ev->fmin[gm]) gm = g;
        if (lam[g] * ev->rate[g] < lam[gr] * ev->rate[gr]) gr = g;
    }
    for (size_t u = 0; u < U; u++) {
        double by_m = lam[gm] * ev->fmin[gm], by_r = lam[gr] * ev->rate[gr] * w->v[u];
        if (by_m >= by_r) sub[gm] += w->mult[u] * ev->fmin[gm];
        else sub[gr] += w->mult[u] * ev->rate[gr] * w->v[u];
    }
    double val = 0;
    for (int32_t g = 0; g < G; g++) val += lam[g] * sub[g];
    return val;
}

/* Starts from weights inversely proportional to each GPU's time for the whole layer (with
 * linear curves and no overheads those are optimal: they give the fluid bound), then a few
 * multiplicative-weight ascent steps that weight up the GPUs whose time under the current
 * assignment is high; the best value seen, whose weights go to best_lam unless it is NULL.
 * w->lam holds the start on entry. */
static double gem__lagrangian(gem__eval_worker *w, size_t U, gem__oracle_fn oracle,
                              double *best_lam)
{
    const int32_t G = w->ev->G;
    double best = -INFINITY;
    for (int round = 0;; round++) {
        double val = oracle(w, U, w->lam, w->sub);
        if (val > best && best_lam) memcpy(best_lam, w->lam, (size_t)G * sizeof *best_lam);
        best = gem__max(best, val);
        if (round == GEM__LAGR_ROUNDS || G == 1) break;
        double smax = 0;
        for (int32_t g = 0; g < G; g++) smax = gem__max(smax, fabs(w->sub[g]));
        if (!(smax > 0)) break;
        double eta = 2.0 / (1.0 + round), sum = 0;
        for (int32_t g = 0; g < G; g++) {
            w->lam[g] *= exp(eta * (w->sub[g] - val) / smax);
            sum += w->lam[g];
        }
        for (int32_t g = 0; g < G; g++) w->lam[g] /= sum;
    }
    return best;
}

/* lambda_g proportional to 1 / work[g] (uniform where that is not positive and finite). */
static void gem__lambda_start(gem__eval_worker *w, const double *work)
{
    const int32_t G = w->ev->G;
    double sum = 0;
    int ok = 1;
    for (int32_t g = 0; g < G; g++) {
        if (!(work[g] > 0) || !isfinite(work[g])) ok = 0;
        else sum += (w->lam[g] = 1.0 / work[g]);
    }
    for (int32_t g = 0; g < G; g++) w->lam[g] = ok && sum > 0 ? w->lam[g] / sum : 1.0 / G;
}

/* Fills the table of f_g(v_u) when it fits, and returns the heaviest-expert bound
 * max_u min_g (c_g + f_g(v_u)); each u's min goes to hv unless it is NULL. */
static double gem__fill_ftab(gem__eval_worker *w, size_t U, double *hv)
{
    const gem__eval *ev = w->ev;
    const int32_t G = ev->G;
    double heavy = -INFINITY;
    memcpy(w->sub, ev->c, (size_t)G * sizeof *w->sub); /* each GPU's time for everything */
    for (size_t u = 0; u < U; u++) {
        double best = INFINITY;
        for (int32_t g = 0; g < G; g++) {
            double f = gem__latency(ev->p, g, w->v[u]);
            w->ftab[u * (size_t)G + (size_t)g] = f;
            best = gem__min(best, ev->c[g] + f);
            w->sub[g] += w->mult[u] * f;
        }
        if (hv) hv[u] = best;
        heavy = gem__max(heavy, best);
    }
    gem__lambda_start(w, w->sub);
    return heavy;
}

/* What the whole-trace bound takes from one step's bound (only in layers that have it). */
typedef struct {
    int32_t *uix;             /* in: [E] receives each expert's distinct load */
    double *lam;              /* out: [G] the Lagrangian's best weights */
    double lagr, heavy;       /* out: the Lagrangian and heaviest-expert bounds */
    double fluid;             /* out: the fluid bound (-inf when not computed) */
    size_t U;                 /* out: distinct non-zero loads (rows of the f table) */
    int safe;                 /* out: every f_g >= 0 on [0, N] */
} gem__step_info;

static double gem__step_layer_bound(gem__eval_worker *w, const double *row, int32_t l,
                                    gem__step_info *info)
{
    const gem__eval *ev = w->ev;
    const int32_t G = ev->G, E = ev->E;
    const int per_expert = ev->model == GEM_COST_PER_EXPERT;
    double N = 0, nmax = 0;
    for (int32_t e = 0; e < E; e++) {
        N += row[e];
        nmax = gem__max(nmax, row[e]);
    }
    /* f_g >= 0 on [0, N] unless a curve falls below 0 past its last sample before N */
    int safe = 1;
    if (ev->any_neg_tail)
        for (int32_t g = 0; g < G && safe; g++)
            if (gem__latency(ev->p, g, N) < 0) safe = 0;

    double b, fluid = -INFINITY;
    if (safe) {
        if (ev->fluid_ok) fluid = gem__fluid_bound(ev, N);
        b = gem__max(ev->max_c, fluid);
    } else {
        /* T_g >= c_g + (placements on g) x min f_g over (0, N], at most E placements */
        b = -INFINITY;
        for (int32_t g = 0; g < G; g++)
            b = gem__max(b, ev->c[g] + (double)E * gem__min(0.0, gem__latency(ev->p, g, N)));
    }
    if (info) {
        info->safe = safe;
        info->fluid = fluid;
        info->lagr = info->heavy = -INFINITY;
        info->U = 0;
    }
    if (!(nmax > 0)) {
        if (info)
            for (int32_t e = 0; e < E; e++) info->uix[e] = -1;
        return b;
    }
    if (per_expert) {
        size_t U = gem__distinct_loads(w, row, info ? info->uix : NULL);
        if (ev->single[l] && w->ftab) {
            double heavy = gem__fill_ftab(w, U, info ? w->hv : NULL);
            if (safe) b = gem__max(b, heavy);
            double lagr = gem__lagrangian(w, U, gem__oracle_single, info ? info->lam : NULL);
            b = gem__max(b, lagr);
            if (info) info->lagr = lagr, info->heavy = heavy, info->U = U;
        } else if (!ev->any_neg_tail) {
            for (int32_t g = 0; g < G; g++) /* time of GPU g for everything, by its bounds */
                w->sub[g] = ev->c[g] + gem__max(ev->fmin[g], ev->rate[g] * N);
            gem__lambda_start(w, w->sub);
            b = gem__max(b, gem__lagrangian(w, U, gem__oracle_replicas, NULL));
        }
    } else if (ev->single[l] && ev->all_monotone) {
        double heavy = INFINITY;
        for (int32_t g = 0; g < G; g++)
            heavy = gem__min(heavy, ev->c[g] + gem__latency(ev->p, g, nmax));
        b = gem__max(b, heavy);
    }
    return b;
}

/* ---- whole-trace lower bound of one block of steps and one layer; docs/cost-model.md 3.7 ---- */

/* Rearranges x[0..n) so that x[0..k) hold k smallest values (1 <= k <= n, no NaN); returns
 * their sum and puts the largest of them, the k-th smallest, in *kth. Quickselect with
 * Hoare's partition around a median of three. */
static double gem__smallest_sum(double *x, size_t n, size_t k, double *kth)
{
    size_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        double a = x[lo], b = x[mid], c = x[hi];
        double piv = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
        size_t i = lo, j = hi;
        for (;;) {
            while (x[i] < piv) i++;
            while (x[j] > piv) j--;
            if (i >= j) break;
            double tmp = x[i];
            x[i++] = x[j];
            x[j--] = tmp;
        }
        /* now x[lo..j] <= piv <= x[j+1..hi] */
        if (want <= j) hi = j;
        else lo = j + 1;
    }
    double sum = 0, mx = x[0];
    for (size_t i = 0; i < k; i++) {
        sum += x[i];
        mx = gem__max(mx, x[i]);
    }
    *kth = mx;
    return sum;
}

/* The slot bounds of one step (GEM_OPT_BOUND_SLOTS): GPU g holds exactly k_g experts, so
 * T_g >= c_g + S_g with S_g the sum of the k_g smallest f_g(n_e) over all experts (t_g the
 * k_g-th smallest), and the GPU g of an expert h holds k_g - 1 others besides it:
 * T_g >= c_g + f_g(n_h) + S_g - min(f_g(n_h), t_g). Fills S and t [G], and w->hv[u] with the
 * second bound for a load v_u minimised over the GPUs that hold experts; returns the largest
 * of all (every one holds: each expert sits somewhere). w->ftab holds the step's f table. */
static double gem__step_slots(gem__eval_worker *w, const int32_t *k, const int32_t *uix,
                              size_t U, double *S, double *t)
{
    const gem__eval *ev = w->ev;
    const size_t G = (size_t)ev->G, E = (size_t)ev->E;
    const double *F = w->ftab;
    double b = -INFINITY;
    for (size_t g = 0; g < G; g++) {
        S[g] = t[g] = 0;
        if (k[g] == 0) continue;
        for (size_t e = 0; e < E; e++) w->sel[e] = uix[e] >= 0 ? F[(size_t)uix[e] * G + g] : 0;
        S[g] = gem__smallest_sum(w->sel, E, (size_t)k[g], &t[g]);
        b = gem__max(b, ev->c[g] + S[g]);
    }
    for (size_t u = 0; u < U; u++) {
        double best = INFINITY;
        for (size_t g = 0; g < G; g++) {
            if (k[g] == 0) continue;
            double f = F[u * G + g];
            best = gem__min(best, ev->c[g] + f + S[g] - gem__min(f, t[g]));
        }
        w->hv[u] = best;
        b = gem__max(b, best);
    }
    return b;
}

/* y[i] += a[i] * x[i], i < n: the inner loop of the whole-trace bound, unrolled because -O2
 * does not vectorise a loop of unknown length. */
static inline void gem__mul_add(size_t n, double *restrict y, const double *restrict a,
                                const double *restrict x)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        y[i] += a[i] * x[i];
        y[i + 1] += a[i + 1] * x[i + 1];
        y[i + 2] += a[i + 2] * x[i + 2];
        y[i + 3] += a[i + 3] * x[i + 3];
    }
    for (; i < n; i++) y[i] += a[i] * x[i];
}

/* The cost of heavy expert h of block step i on GPU g, for its mu: the time of h's GPU
 * counting h alone (f >= 0 on the step's loads), or h and the k_g - 1 cheapest others. */
static inline double gem__heavy_cost(const gem__eval_worker *w, size_t i, size_t g,
                                     const int32_t *k)
{
    const size_t G = (size_t)w->ev->G, E = (size_t)w->ev->E;
    int32_t h = w->bhe[i];
    double f = w->bft[w->boff[i] + (size_t)w->buix[i * E + (size_t)h] * G + g];
    double x = w->ev->c[g] + f;
    if (k) x += w->bS[i * G + g] - gem__min(f, w->bt[i * G + g]);
    return x;
}

/* Top two of W[e][g] + pi_g over the GPUs that may hold experts (all without slots): value
 * and GPU of the smallest (w->m1, w->sig) and of the second (w->m2, w->a2). */
static void gem__top2(gem__eval_worker *w, size_t e, const int32_t *k)
{
    const size_t G = (size_t)w->ev->G;
    const double *We = w->W + e * G;
    double m1 = INFINITY, m2 = INFINITY;
    int32_t a1 = -1, a2 = -1;
    for (size_t g = 0; g < G; g++) {
        if (k && k[g] == 0) continue;
        double v = We[g] + w->pi[g];
        if (v < m1) m2 = m1, a2 = a1, m1 = v, a1 = (int32_t)g;
        else if (v < m2) m2 = v, a2 = (int32_t)g;
    }
    w->m1[e] = m1, w->sig[e] = a1, w->m2[e] = m2, w->a2[e] = a2;
}

/* Slot counts: raises phi(pi) = sum_e min_g (W[e][g] + pi_g) - sum_g k_g pi_g one price at a
 * time to its maximum. As a function of pi_g alone, phi is sum_e min(pi_g, d_e) - k_g pi_g
 * plus a constant, d_e = (the best of e elsewhere) - W[e][g]: its slope #{d_e > pi_g} - k_g
 * changes sign at the k_g-th largest d_e. */
static void gem__prices(gem__eval_worker *w, const int32_t *k, int passes)
{
    const size_t G = (size_t)w->ev->G, E = (size_t)w->ev->E;
    for (int pass = 0; pass < passes; pass++)
        for (size_t g = 0; g < G; g++) {
            if (k[g] == 0) continue;
            int other = 0;
            for (size_t e = 0; e < E; e++) {
                double alt = w->sig[e] == (int32_t)g ? w->m2[e] : w->m1[e];
                other |= alt < INFINITY;
                w->sel[e] = -(alt - w->W[e * G + g]); /* k_g-th smallest of -d */
            }
            if (!other) continue; /* g is the only GPU: every expert is there anyway */
            double kth;
            gem__smallest_sum(w->sel, E, (size_t)k[g], &kth);
            double p = -kth;
            if (p == w->pi[g]) continue;
            w->pi[g] = p;
            for (size_t e = 0; e < E; e++) {
                if (w->sig[e] == (int32_t)g || w->a2[e] == (int32_t)g) {
                    gem__top2(w, e, k);
                    continue;
                }
                double v = w->W[e * G + g] + p;
                if (v < w->m1[e]) {
                    w->m2[e] = w->m1[e], w->a2[e] = w->sig[e];
                    w->m1[e] = v, w->sig[e] = (int32_t)g;
                } else if (v < w->m2[e]) {
                    w->m2[e] = v, w->a2[e] = (int32_t)g;
                }
            }
        }
}

/* The bound for the current weights (docs/cost-model.md 3.7): sum_s sum_g lambda_sg c_g plus
 * the minimum over assignments of sum_e W[e][g(e)], with
 *   W[e][g] = sum_s lambda_sg f_g(n_e(s)) + sum over the steps where e is the heavy expert
 *             of mu_s x (its heavy cost on g).
 * Without slot counts (k NULL) that minimum is each expert's own minimum over g; with them it
 * is at least phi(pi) for every pi (weak duality), and the prices are raised first. w->sig
 * gets the assignment that attains it (without the counts in the second case). */
static double gem__block_value(gem__eval_worker *w, size_t B, const int32_t *k)
{
    const gem__eval *ev = w->ev;
    const size_t G = (size_t)ev->G, E = (size_t)ev->E;
    const double *c = ev->c;
    double *W = w->W;
    memset(W, 0, E * G * sizeof *W);
    double val = 0;
    for (size_t i = 0; i < B; i++) {
        const double *lam = w->blam + i * G, *F = w->bft + w->boff[i];
        const int32_t *uix = w->buix + i * E;
        for (size_t g = 0; g < G; g++) val += lam[g] * c[g];
        for (size_t e = 0; e < E; e++)
            if (uix[e] >= 0) gem__mul_add(G, W + e * G, lam, F + (size_t)uix[e] * G);
        if (w->bhe[i] >= 0 && w->bmu[i] > 0)
            for (size_t g = 0; g < G; g++)
                W[(size_t)w->bhe[i] * G + g] += w->bmu[i] * gem__heavy_cost(w, i, g, k);
    }
    for (size_t e = 0; e < E; e++) gem__top2(w, e, k);
    if (k) {
        gem__prices(w, k, 2);
        for (size_t g = 0; g < G; g++) val -= (double)k[g] * w->pi[g];
    }
    for (size_t e = 0; e < E; e++) val += w->m1[e];
    return val;
}

/* One multiplicative-weight ascent step per step of the block along the supergradient at
 * w->sig (the time each GPU would have in that step, and the heavy expert's cost on its
 * GPU), then a small share spread evenly so that weights at 0 can grow again. */
static void gem__block_ascend(gem__eval_worker *w, size_t B, double eta, const int32_t *k)
{
    const gem__eval *ev = w->ev;
    const size_t G = (size_t)ev->G, E = (size_t)ev->E;
    for (size_t i = 0; i < B; i++) {
        double *lam = w->blam + i * G, *gl = w->bgl + i * G, gm = 0;
        const double *F = w->bft + w->boff[i];
        const int32_t *uix = w->buix + i * E;
        memcpy(gl, ev->c, G * sizeof *gl);
        for (size_t e = 0; e < E; e++)
            if (uix[e] >= 0) gl[w->sig[e]] += F[(size_t)uix[e] * G + (size_t)w->sig[e]];
        double vs = 0, smax = 0;
        for (size_t g = 0; g < G; g++) {
            vs += lam[g] * gl[g];
            smax = gem__max(smax, fabs(gl[g]));
        }
        const int heavy = w->bhe[i] >= 0;
        if (heavy) {
            gm = gem__heavy_cost(w, i, (size_t)w->sig[w->bhe[i]], k);
            vs += w->bmu[i] * gm;
            smax = gem__max(smax, fabs(gm));
        }
        if (!(smax > 0)) continue;
        double sum = 0;
        for (size_t g = 0; g < G; g++) sum += (lam[g] *= exp(eta * (gl[g] - vs) / smax));
        if (heavy) sum += (w->bmu[i] *= exp(eta * (gm - vs) / smax));
        const double keep = (1 - GEM__WT_SPREAD) / sum, spread = GEM__WT_SPREAD / (G + heavy);
        for (size_t g = 0; g < G; g++) lam[g] = lam[g] * keep + spread;
        if (heavy) w->bmu[i] = w->bmu[i] * keep + spread;
    }
}

/* With slot counts: max_g (B c_g + the k_g smallest over e of sum_s f_g(n_e(s))), since GPU
 * g holds the same k_g experts in every step of the block. */
static double gem__block_slots(gem__eval_worker *w, size_t B, const int32_t *k)
{
    const gem__eval *ev = w->ev;
    const size_t G = (size_t)ev->G, E = (size_t)ev->E;
    double *W = w->W, b = -INFINITY;
    memset(W, 0, E * G * sizeof *W);
    for (size_t i = 0; i < B; i++) {
        const double *F = w->bft + w->boff[i];
        const int32_t *uix = w->buix + i * E;
        for (size_t e = 0; e < E; e++)
            if (uix[e] >= 0)
                for (size_t g = 0; g < G; g++) W[e * G + g] += F[(size_t)uix[e] * G + g];
    }
    for (size_t g = 0; g < G; g++) {
        double sum = 0, kth;
        if (k[g] > 0) {
            for (size_t e = 0; e < E; e++) w->sel[e] = W[e * G + g];
            sum = gem__smallest_sum(w->sel, E, (size_t)k[g], &kth);
        }
        b = gem__max(b, (double)B * ev->c[g] + sum);
    }
    return b;
}

/* The heavy expert of a step: the largest w->hv over its experts, the lowest on ties. */
static int32_t gem__pick_heavy(const gem__eval_worker *w, const int32_t *uix)
{
    int32_t h = -1;
    for (int32_t e = 0; e < w->ev->E; e++)
        if (uix[e] >= 0 && (h < 0 || w->hv[uix[e]] > w->hv[uix[h]])) h = e;
    return h;
}

/* The weights of block step i start as those of the step's best bound, so that the whole-trace
 * bound starts at or above the sum of those (the minimum of a sum over steps is at least the
 * sum of the minima): the Lagrangian's (already in lam), all on the heavy expert, or, when
 * every f on the step's loads is >= 0, those of the fluid bound (1 / r_g on the GPUs with
 * c_g below it) or all on the GPU with the largest c_g. */
static void gem__block_start(gem__eval_worker *w, size_t i, const gem__step_info *info,
                             double heavy)
{
    const gem__eval *ev = w->ev;
    const size_t G = (size_t)ev->G;
    double *lam = w->blam + i * G;
    double base = info->safe ? gem__max(ev->max_c, info->fluid) : -INFINITY;
    if (info->lagr >= heavy && info->lagr >= base) return;
    for (size_t g = 0; g < G; g++) lam[g] = 0;
    if (heavy >= base) {
        w->bmu[i] = 1;
    } else if (info->fluid > ev->max_c) { /* then some c_g is below it */
        double sum = 0;
        for (size_t g = 0; g < G; g++)
            if (ev->c[g] < info->fluid) sum += (lam[g] = 1.0 / ev->rate[g]);
        for (size_t g = 0; g < G; g++) lam[g] /= sum;
    } else {
        size_t arg = 0;
        for (size_t g = 1; g < G; g++)
            if (ev->c[g] > ev->c[arg]) arg = g;
        lam[arg] = 1;
    }
}

/* Lower bound on the sum over steps s0..s1-1 of layer l's latency, for every mapping of the
 * class (without replicas; with GEM_OPT_BOUND_SLOTS, with the evaluated mapping's slot
 * counts), which is the same in all those steps: the largest of the per-step bounds' sum,
 * the slot bound of the block, and the whole-trace bound, whose weights start from each
 * step's best bound and ascend. */
static double gem__block_bound(gem__eval_worker *w, int64_t s0, int64_t s1, int32_t l)
{
    const gem__eval *ev = w->ev;
    const size_t G = (size_t)ev->G, E = (size_t)ev->E, B = (size_t)(s1 - s0);
    const int32_t *k = ev->kslots ? ev->kslots + (size_t)l * G : NULL;
    double *own = w->ftab, per_step = 0;
    size_t off = 0;
    for (size_t i = 0; i < B; i++) {
        double *lam = w->blam + i * G;
        gem__step_info info = {w->buix + i * E, lam, 0, 0, 0, 0, 0};
        w->ftab = w->bft + off;
        w->boff[i] = off;
        double b = gem__step_layer_bound(w, gem__trace_row(ev->t, s0 + (int64_t)i, l), l, &info);
        off += info.U * G;
        w->bhe[i] = -1;
        w->bmu[i] = 0;
        if (info.U == 0) {
            /* no tokens: the step adds max_g c_g, all weight on the GPU with the largest */
            size_t arg = 0;
            for (size_t g = 0; g < G; g++) {
                lam[g] = 0;
                if (ev->c[g] > ev->c[arg]) arg = g;
            }
            lam[arg] = 1;
            if (k) {
                for (size_t g = 0; g < G; g++) w->bS[i * G + g] = w->bt[i * G + g] = 0;
            }
            per_step += b;
            continue;
        }
        /* w->hv: the heavy bound of each distinct load, min_g (c_g + f_g) or with slots */
        double heavy = info.heavy;
        if (k) {
            double sb = gem__step_slots(w, k, info.uix, info.U, w->bS + i * G, w->bt + i * G);
            b = gem__max(b, sb);
            heavy = -INFINITY;
            for (size_t u = 0; u < info.U; u++) heavy = gem__max(heavy, w->hv[u]);
        }
        per_step += b;
        /* the heavy expert's GPU counts only that expert unless slots count the others:
         * then every f on the step's loads must be >= 0 */
        if (k || info.safe) w->bhe[i] = gem__pick_heavy(w, info.uix);
        if (w->bhe[i] < 0) heavy = -INFINITY;
        gem__block_start(w, i, &info, heavy);
    }
    w->ftab = own;
    double best = per_step;
    if (k) best = gem__max(best, gem__block_slots(w, B, k));
    if (k)
        for (size_t g = 0; g < G; g++) w->pi[g] = 0;
    /* patience: GEM__WT_STALL rounds, or one when the start gains nothing over the bounds
     * already known (then the steps agree and the ascent seldom finds more) */
    const double known = best;
    double ref = -INFINITY;
    int stall = 0, patience = GEM__WT_STALL;
    for (int round = 0; round < GEM__WT_ROUNDS; round++) {
        double val = gem__block_value(w, B, k);
        best = gem__max(best, val);
        if (round == 0 && !(val - known > GEM__WT_TINY * fabs(known))) patience = 1;
        if (round == 0 || val - ref > GEM__WT_TINY * fabs(ref)) {
            stall = 0;
            ref = gem__max(ref, val);
        } else if (++stall >= patience) {
            break;
        }
        gem__block_ascend(w, B, GEM__WT_ETA / sqrt(1.0 + round), k);
    }
    return best;
}

/* ---- workers -------------------------------------------------------------------------------- */

static void gem__eval_chunk(gem__eval_worker *w, int64_t ci)
{
    gem__eval *ev = w->ev;
    const int32_t G = ev->G, L = ev->L;
    double *busy = ev->chunk_busy + (size_t)ci * (size_t)G;
    int64_t *strag = ev->chunk_strag + (size_t)ci * (size_t)G;
    double imb = 0, lb = 0, comm = 0, cross = 0, tokens = 0;
    int64_t s_end = (ci + 1) * ev->chunk < ev->S ? (ci + 1) * ev->chunk : ev->S;
    for (int64_t s = ci * ev->chunk; s < s_end; s++) {
        double step = 0;
        for (int32_t l = 0; l < L; l++) {
            const double *row = gem__trace_row(ev->t, s, l);
            gem__layer_times(ev, row, l, w->T, w->X);
            int32_t arg = 0;
            double sum = 0;
            for (int32_t g = 0; g < G; g++) {
                busy[g] += w->T[g];
                sum += w->T[g];
                if (w->T[g] > w->T[arg]) arg = g;
            }
            double mx = w->T[arg];
            strag[arg]++;
            step += mx;
            double mean = sum / G;
            imb += mean > 0 ? mx / mean : 1.0;
            if (!ev->whole[l]) lb += gem__step_layer_bound(w, row, l, NULL);
            if (ev->cm) {
                /* all-to-all phases before and after the experts, in lock step too */
                double cr, tk;
                double a2a = gem__comm_layer(ev->cm, &ev->m->layers[l], row, ev->E, w->cs,
                                             &cr, &tk);
                step += a2a;
                comm += a2a;
                cross += cr;
                tokens += tk;
            }
        }
        ev->step_us[s] = step;
    }
    ev->chunk_imb[ci] = imb;
    ev->chunk_lb[ci] = lb;
    ev->chunk_comm[3 * ci] = comm;
    ev->chunk_comm[3 * ci + 1] = cross;
    ev->chunk_comm[3 * ci + 2] = tokens;
}

/* Tasks: the units of the whole-trace bound first (the larger ones), then the chunks. */
static void *gem__eval_thread(void *arg)
{
    gem__eval_worker *w = arg;
    gem__eval *ev = w->ev;
    for (;;) {
        long long task = atomic_fetch_add(&ev->next, 1);
        if (task >= ev->num_units + ev->num_chunks) break;
        if (task < ev->num_units) {
            int64_t b = (int64_t)task / ev->num_wl;
            int64_t s1 = (b + 1) * ev->block < ev->S ? (b + 1) * ev->block : ev->S;
            ev->unit_lb[task] = gem__block_bound(w, b * ev->block, s1,
                                                 ev->wlayers[(int64_t)task % ev->num_wl]);
        } else {
            gem__eval_chunk(w, (int64_t)task - ev->num_units);
        }
    }
    return NULL;
}

/* ---- set-up --------------------------------------------------------------------------------- */

static int gem__cmp_by_c(const void *a, const void *b)
{
    const double *x = a, *y = b; /* pairs (c, 1/r) */
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* The whole-trace bound covers the layers whose per-step bound has the Lagrangian of
 * section 3.3 (per_expert, no replicas, f table within GEM__FTAB_MAX) on more than one GPU;
 * with GEM_OPT_BOUND_SLOTS (slots), it also counts each GPU's experts there. Blocks of
 * steps are as long as GEM__WT_CELLS allows and of equal length, and depend on the shapes
 * only. */
static gem_status_t gem__eval_prepare_whole(gem__eval *ev, int slots)
{
    const size_t EG = (size_t)ev->E * (size_t)ev->G;
    ev->whole = gem__array((size_t)ev->L, 1);
    ev->wlayers = gem__array((size_t)ev->L, sizeof(int32_t));
    if (!ev->whole || !ev->wlayers) return GEM_ERR_NO_MEMORY;
    for (int32_t l = 0; l < ev->L; l++) {
        ev->whole[l] = ev->model == GEM_COST_PER_EXPERT && ev->single[l] && ev->G > 1 &&
                       EG <= GEM__FTAB_MAX;
        if (ev->whole[l]) ev->wlayers[ev->num_wl++] = l;
    }
    if (ev->num_wl == 0) return GEM_OK;
    if (slots) {
        const size_t G = (size_t)ev->G;
        ev->kslots = gem__calloc((size_t)ev->L * G, sizeof(int32_t));
        if (!ev->kslots) return GEM_ERR_NO_MEMORY;
        for (int32_t i = 0; i < ev->num_wl; i++) {
            const gem__layer_map *lm = &ev->m->layers[ev->wlayers[i]];
            for (size_t j = 0; j < lm->n; j++)
                ev->kslots[(size_t)ev->wlayers[i] * G + (size_t)lm->p[j].gpu]++;
        }
    }
    int64_t most = (int64_t)(GEM__WT_CELLS / EG); /* >= 4: EG <= GEM__FTAB_MAX */
    int64_t nb = (ev->S + most - 1) / most;
    ev->block = (ev->S + nb - 1) / nb;
    ev->num_blocks = (ev->S + ev->block - 1) / ev->block;
    ev->num_units = ev->num_blocks * ev->num_wl;
    ev->unit_lb = gem__array((size_t)ev->num_units, sizeof(double));
    return ev->unit_lb ? GEM_OK : GEM_ERR_NO_MEMORY;
}

static gem_status_t gem__eval_prepare(gem__eval *ev, const gem_profile_t *p,
                                      const gem_trace_t *t, const gem_mapping_t *m, int slots)
{
    memset(ev, 0, sizeof *ev);
    ev->p = p, ev->t = t, ev->m = m;
    ev->G = p->num_gpus, ev->L = t->num_layers, ev->E = t->num_experts, ev->S = t->num_steps;
    ev->model = p->cost_model;
    size_t G = (size_t)ev->G;
    /* chunks depend on S only, so sums come out the same for any thread count */
    ev->chunk = ev->S / 256 > 16 ? ev->S / 256 : 16;
    ev->num_chunks = (ev->S + ev->chunk - 1) / ev->chunk;
    size_t nc = (size_t)ev->num_chunks;
    ev->c = gem__array(G, sizeof(double));
    ev->fl_c = gem__array(G, sizeof(double));
    ev->fl_a = gem__array(G, sizeof(double));
    ev->fl_b = gem__array(G, sizeof(double));
    ev->fmin = gem__array(G, sizeof(double));
    ev->rate = gem__array(G, sizeof(double));
    ev->single = gem__array((size_t)ev->L, 1);
    ev->step_us = gem__array((size_t)ev->S, sizeof(double));
    ev->chunk_busy = gem__array(nc * G, sizeof(double));
    ev->chunk_strag = gem__array(nc * G, sizeof(int64_t));
    ev->chunk_imb = gem__array(nc, sizeof(double));
    ev->chunk_lb = gem__array(nc, sizeof(double));
    ev->chunk_comm = gem__array(3 * nc, sizeof(double));
    double *pairs = gem__array(2 * G, sizeof(double));
    if (!ev->c || !ev->fl_c || !ev->fl_a || !ev->fl_b || !ev->fmin || !ev->rate || !ev->single || !ev->step_us ||
        !ev->chunk_busy || !ev->chunk_strag || !ev->chunk_imb || !ev->chunk_lb || !ev->chunk_comm || !pairs) {
        free(pairs);
        gem__eval_free(ev);
        return GEM_ERR_NO_MEMORY;
    }
    ev->max_c = 0;
    ev->fluid_ok = 1;
    ev->all_monotone = 1;
    for (size_t g = 0; g < G; g++) {
        const gem__curve *cv = &p->gpus[g].curve;
        ev->c[g] = p->gpus[g].overhead;
        ev->max_c = fmax(ev->max_c, ev->c[g]);
        ev->rate[g] = cv->min_rate;
        /* inf of f over x > 0: a sample (pieces are constant or linear between samples),
         * unless the tail falls (then there is none, and any_neg_tail is set) */
        ev->fmin[g] = INFINITY;
        for (size_t i = 0; i < cv->k; i++) ev->fmin[g] = fmin(ev->fmin[g], cv->latency[i]);
        if (!(cv->min_rate > 0)) ev->fluid_ok = 0;
        if (cv->tail_slope < 0) ev->any_neg_tail = 1, ev->all_monotone = 0;
        for (size_t i = 1; i < cv->k; i++)
            if (cv->latency[i] < cv->latency[i - 1]) ev->all_monotone = 0;
        pairs[2 * g] = ev->c[g];
        pairs[2 * g + 1] = cv->min_rate > 0 ? 1.0 / cv->min_rate : 0.0;
    }
    if (ev->fluid_ok) {
        qsort(pairs, G, 2 * sizeof(double), gem__cmp_by_c);
        double a = 0, b = 0;
        for (size_t j = 0; j < G; j++) {
            a += pairs[2 * j + 1];
            b += pairs[2 * j] * pairs[2 * j + 1];
            ev->fl_c[j] = pairs[2 * j];
            ev->fl_a[j] = a;
            ev->fl_b[j] = b;
        }
    }
    free(pairs);
    for (int32_t l = 0; l < ev->L; l++) ev->single[l] = m->layers[l].n == (size_t)ev->E;
    if (gem__eval_prepare_whole(ev, slots)) {
        gem__eval_free(ev);
        return GEM_ERR_NO_MEMORY;
    }
    atomic_init(&ev->next, 0);
    return GEM_OK;
}

/* Runs the chunks on up to `threads` threads (the caller's among them). */
static gem_status_t gem__eval_run(gem__eval *ev, int threads)
{
    /* small jobs are not worth a thread */
    double work = (double)ev->S * ev->L * ((double)ev->E * ev->G + ev->G);
    if (work < 1e6) threads = 1;
    const int64_t tasks = ev->num_units + ev->num_chunks;
    if (threads > tasks) threads = (int)tasks;
    if (threads < 1) threads = 1;
    gem__eval_worker *ws = gem__array((size_t)threads, sizeof *ws);
    pthread_t *tids = gem__array((size_t)threads, sizeof *tids);
    if (!ws || !tids) { free(ws); free(tids); return GEM_ERR_NO_MEMORY; }
    int ready = 0;
    gem_status_t st = GEM_OK;
    for (; ready < threads; ready++)
        if ((st = gem__worker_init(&ws[ready], ev))) break;
    if (ready == 0) { free(ws); free(tids); return st; }
    int started = 0;
    for (int i = 1; i < ready; i++) {
        if (pthread_create(&tids[i], NULL, gem__eval_thread, &ws[i]) != 0) break;
        started = i;
    }
    gem__eval_thread(&ws[0]);
    for (int i = 1; i <= started; i++) pthread_join(tids[i], NULL);
    for (int i = 0; i < ready; i++) gem__worker_free(&ws[i]);
    free(ws);
    free(tids);
    return GEM_OK;
}

static gem_status_t gem__report_build(gem__eval *ev, gem_report_t **out)
{
    const size_t G = (size_t)ev->G, S = (size_t)ev->S;
    gem_report_t *r = gem__calloc(1, sizeof *r);
    double *sorted = gem__array(S, sizeof(double));
    if (r) {
        r->busy_us = gem__array(G, sizeof(double));
        r->stragglers = gem__array(G, sizeof(int64_t));
    }
    if (!r || !sorted || !r->busy_us || !r->stragglers) {
        if (r) { free(r->busy_us); free(r->stragglers); }
        free(r);
        free(sorted);
        return GEM_ERR_NO_MEMORY;
    }
    r->num_gpus = ev->G;
    r->num_steps = ev->S;
    double imb = 0, lb = 0, comm = 0, cross = 0, tokens = 0, total = 0;
    double mx = ev->step_us[0]; /* S >= 1 */
    for (int64_t ci = 0; ci < ev->num_chunks; ci++) {
        for (size_t g = 0; g < G; g++) {
            r->busy_us[g] += ev->chunk_busy[(size_t)ci * G + g];
            r->stragglers[g] += ev->chunk_strag[(size_t)ci * G + g];
        }
        imb += ev->chunk_imb[ci];
        lb += ev->chunk_lb[ci];
        comm += ev->chunk_comm[3 * ci];
        cross += ev->chunk_comm[3 * ci + 1];
        tokens += ev->chunk_comm[3 * ci + 2];
    }
    for (int64_t u = 0; u < ev->num_units; u++) lb += ev->unit_lb[u];
    for (size_t s = 0; s < S; s++) {
        total += ev->step_us[s];
        mx = fmax(mx, ev->step_us[s]);
    }
    memcpy(sorted, ev->step_us, S * sizeof(double));
    qsort(sorted, S, sizeof(double), gem__cmp_double);
    r->total = total;
    r->mean = total / (double)S;
    r->max = mx;
    r->p50 = sorted[gem__nearest_rank(50, S)];
    r->p90 = sorted[gem__nearest_rank(90, S)];
    r->p99 = sorted[gem__nearest_rank(99, S)];
    r->imbalance = imb / ((double)S * (double)ev->L);
    /* the bound is never above the mean it bounds; rounding in the bound's arithmetic could
     * otherwise put it an ulp over a tight optimum */
    r->lower_bound = fmin(lb / (double)S, r->mean);
    r->has_comm = ev->cm != NULL;
    r->comm = comm / (double)S;
    r->cross_host = tokens > 0 ? cross / tokens : 0;
    free(sorted);
    if (!isfinite(r->total) || !isfinite(r->lower_bound) || !isfinite(r->imbalance)) {
        free(r->busy_us);
        free(r->stragglers);
        free(r);
        return gem__fail(GEM_ERR_LIMIT, "gem_evaluate: step latencies overflow a double "
                         "(loads or latencies too large)");
    }
    r->step_us = ev->step_us; /* the report takes it over */
    ev->step_us = NULL;
    *out = r;
    return GEM_OK;
}

/* ---- public interface ----------------------------------------------------------------------- */

GEM_API gem_status_t gem_evaluate(const gem_profile_t *profile, const gem_trace_t *trace,
                                  const gem_mapping_t *mapping, const gem_options_t *opts,
                                  gem_report_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(profile && trace && mapping && out,
                   "gem_evaluate: profile, trace, mapping and out must not be NULL");
    gem_status_t st = gem__check_shapes(profile, trace, mapping);
    if (st) return st;
    if ((st = gem__profile_check_ready(profile))) return st;
    if ((st = gem_trace_validate(trace))) return st;
    if ((st = gem_mapping_validate(mapping))) return st;
    gem__clear_error();

    gem__comm cm;
    const int comm = gem__opt_int(opts, GEM_OPT_COMM_MODEL) != 0;
    if (comm && (st = gem__comm_init(&cm, profile, opts, 1))) {
        gem__comm_free(&cm);
        return gem__fail_context(st, "gem_evaluate");
    }
    gem__eval ev;
    const int slots = gem__opt_int(opts, GEM_OPT_BOUND_SLOTS) != 0;
    if (!(st = gem__eval_prepare(&ev, profile, trace, mapping, slots))) {
        ev.cm = comm ? &cm : NULL;
        if (!(st = gem__eval_run(&ev, gem__opt_threads(opts)))) st = gem__report_build(&ev, out);
        gem__eval_free(&ev);
    }
    if (comm) gem__comm_free(&cm);
    return st;
}

GEM_API void gem_report_destroy(gem_report_t *r)
{
    if (!r) return;
    free(r->step_us);
    free(r->busy_us);
    free(r->stragglers);
    free(r);
}

GEM_API gem_status_t gem_report_get(const gem_report_t *r, gem_metric_t metric, double *value)
{
    gem__clear_error();
    GEM__CHECK_ARG(r && value, "gem_report_get: NULL argument");
    double v;
    switch (metric) {
    case GEM_METRIC_MEAN: v = r->mean; break;
    case GEM_METRIC_P50: v = r->p50; break;
    case GEM_METRIC_P90: v = r->p90; break;
    case GEM_METRIC_P99: v = r->p99; break;
    case GEM_METRIC_TOTAL: v = r->total; break;
    case GEM_METRIC_LOWER_BOUND: v = r->lower_bound; break;
    case GEM_METRIC_MAX: v = r->max; break;
    case GEM_METRIC_STEPS: v = (double)r->num_steps; break;
    case GEM_METRIC_IMBALANCE: v = r->imbalance; break;
    case GEM_METRIC_COMM: v = r->comm; break;
    case GEM_METRIC_CROSS_HOST: v = r->cross_host; break;
    default:
        return gem__fail(GEM_ERR_INVALID_ARGUMENT, "gem_report_get: unknown metric %d (0..%d)",
                         (int)metric, (int)GEM_METRIC_CROSS_HOST);
    }
    *value = v;
    return GEM_OK;
}

GEM_API gem_status_t gem_report_gpu(const gem_report_t *r, int32_t gpu, double *busy_us,
                                    int64_t *straggler_count)
{
    gem__clear_error();
    GEM__CHECK_ARG(r, "gem_report_gpu: report is NULL");
    if (gpu < 0 || gpu >= r->num_gpus)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "gem_report_gpu: gpu %d outside [0, %d)", (int)gpu,
                         (int)r->num_gpus);
    if (busy_us) *busy_us = r->busy_us[gpu];
    if (straggler_count) *straggler_count = r->stragglers[gpu];
    return GEM_OK;
}

GEM_API gem_status_t gem_report_step(const gem_report_t *r, int64_t step, double *us)
{
    gem__clear_error();
    GEM__CHECK_ARG(r && us, "gem_report_step: NULL argument");
    if (step < 0 || step >= r->num_steps)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "gem_report_step: step %lld outside [0, %lld)",
                         (long long)step, (long long)r->num_steps);
    *us = r->step_us[step];
    return GEM_OK;
}

static void gem__json_field(gem__buf *b, const char *key, double v, int last)
{
    gem__buf_printf(b, "\"%s\": ", key);
    gem__buf_double(b, v);
    if (!last) gem__buf_append(b, ", ", 2);
}

GEM_API gem_status_t gem_report_to_json(const gem_report_t *r, char **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(r && out, "gem_report_to_json: NULL argument");
    gem__buf b;
    gem__buf_init(&b);
    gem__buf_append(&b, "{", 1);
    gem__json_field(&b, "mean", r->mean, 0);
    gem__json_field(&b, "p50", r->p50, 0);
    gem__json_field(&b, "p90", r->p90, 0);
    gem__json_field(&b, "p99", r->p99, 0);
    gem__json_field(&b, "total", r->total, 0);
    gem__json_field(&b, "max", r->max, 0);
    gem__json_field(&b, "lower_bound", r->lower_bound, 0);
    gem__json_field(&b, "imbalance", r->imbalance, 0);
    if (r->has_comm) {
        gem__json_field(&b, "comm", r->comm, 0);
        gem__json_field(&b, "cross_host", r->cross_host, 0);
    }
    gem__buf_printf(&b, "\"steps\": %lld, \"gpus\": [", (long long)r->num_steps);
    for (int32_t g = 0; g < r->num_gpus; g++) {
        gem__buf_printf(&b, "%s{\"gpu\": %d, ", g ? ", " : "", (int)g);
        gem__json_field(&b, "busy_us", r->busy_us[g], 0);
        gem__buf_printf(&b, "\"straggler_count\": %lld}", (long long)r->stragglers[g]);
    }
    gem__buf_append(&b, "]}\n", 3);
    if (b.failed) {
        gem__buf_free(&b);
        return gem__fail(GEM_ERR_NO_MEMORY, "gem_report_to_json: out of memory");
    }
    *out = b.data;
    return GEM_OK;
}
