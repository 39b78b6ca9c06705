/*
 * evaluate.c - replays a trace through a mapping with SPEC 2's cost model, and a lower bound
 * on the mean step latency that no mapping with the same constraints can beat.
 *
 * The model and the bounds are explained in docs/cost-model.md; the comments here say how
 * the code follows it.
 *
 * Work is split into chunks of whole steps whose size depends only on the number of steps,
 * and every sum over chunks is taken in chunk order, so the report is bit-for-bit the same
 * whatever GEM_OPT_THREADS is.
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
        (E * G <= GEM__FTAB_MAX && !w->ftab) || !w->hst || !w->hidx || (ev->cm && !w->cs)) {
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
 * addressing table stamped per row avoids both sorting and clearing. */
static size_t gem__distinct_loads(gem__eval_worker *w, const double *row)
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
                w->v[u] = x;
                w->mult[u++] = 1;
                break;
            }
            if (w->v[w->hidx[h]] == x) {
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
 * assignment is high; the best value seen. w->lam holds the start on entry. */
static double gem__lagrangian(gem__eval_worker *w, size_t U, gem__oracle_fn oracle)
{
    const int32_t G = w->ev->G;
    double best = -INFINITY;
    for (int round = 0;; round++) {
        double val = oracle(w, U, w->lam, w->sub);
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
 * max_u min_g (c_g + f_g(v_u)). */
static double gem__fill_ftab(gem__eval_worker *w, size_t U)
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
        heavy = gem__max(heavy, best);
    }
    gem__lambda_start(w, w->sub);
    return heavy;
}

static double gem__step_layer_bound(gem__eval_worker *w, const double *row, int32_t l)
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

    double b;
    if (safe) {
        b = ev->max_c;
        if (ev->fluid_ok) b = gem__max(b, gem__fluid_bound(ev, N));
    } else {
        /* T_g >= c_g + (placements on g) x min f_g over (0, N], at most E placements */
        b = -INFINITY;
        for (int32_t g = 0; g < G; g++)
            b = gem__max(b, ev->c[g] + (double)E * gem__min(0.0, gem__latency(ev->p, g, N)));
    }
    if (!(nmax > 0)) return b;
    if (per_expert) {
        size_t U = gem__distinct_loads(w, row);
        if (ev->single[l] && w->ftab) {
            double heavy = gem__fill_ftab(w, U);
            if (safe) b = gem__max(b, heavy);
            b = gem__max(b, gem__lagrangian(w, U, gem__oracle_single));
        } else if (!ev->any_neg_tail) {
            for (int32_t g = 0; g < G; g++) /* time of GPU g for everything, by its bounds */
                w->sub[g] = ev->c[g] + gem__max(ev->fmin[g], ev->rate[g] * N);
            gem__lambda_start(w, w->sub);
            b = gem__max(b, gem__lagrangian(w, U, gem__oracle_replicas));
        }
    } else if (ev->single[l] && ev->all_monotone) {
        double heavy = INFINITY;
        for (int32_t g = 0; g < G; g++)
            heavy = gem__min(heavy, ev->c[g] + gem__latency(ev->p, g, nmax));
        b = gem__max(b, heavy);
    }
    return b;
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
            lb += gem__step_layer_bound(w, row, l);
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

static void *gem__eval_thread(void *arg)
{
    gem__eval_worker *w = arg;
    for (;;) {
        long long ci = atomic_fetch_add(&w->ev->next, 1);
        if (ci >= w->ev->num_chunks) break;
        gem__eval_chunk(w, (int64_t)ci);
    }
    return NULL;
}

/* ---- set-up --------------------------------------------------------------------------------- */

static int gem__cmp_by_c(const void *a, const void *b)
{
    const double *x = a, *y = b; /* pairs (c, 1/r) */
    return (x[0] > y[0]) - (x[0] < y[0]);
}

static gem_status_t gem__eval_prepare(gem__eval *ev, const gem_profile_t *p,
                                      const gem_trace_t *t, const gem_mapping_t *m)
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
    atomic_init(&ev->next, 0);
    return GEM_OK;
}

/* Runs the chunks on up to `threads` threads (the caller's among them). */
static gem_status_t gem__eval_run(gem__eval *ev, int threads)
{
    /* small jobs are not worth a thread */
    double work = (double)ev->S * ev->L * ((double)ev->E * ev->G + ev->G);
    if (work < 1e6) threads = 1;
    if (threads > ev->num_chunks) threads = (int)ev->num_chunks;
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
    if (!(st = gem__eval_prepare(&ev, profile, trace, mapping))) {
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
