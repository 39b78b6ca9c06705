/*
 * map_gem.c - policy gem: classification-guided initial placement plus an iterative local
 * search on the trace, per layer.
 *
 * The objective of a layer is what the layer adds to the trace's step latencies (SPEC 2):
 *   GEM_OBJECTIVE_MEAN: sum over steps s of max_g T_g(s) (= S x the layer's mean latency);
 *   GEM_OBJECTIVE_P90:  the nearest-rank p90 of the layer's per-step latencies max_g T_g(s),
 *                       ties broken by the sum. The trace's p90 is over step latencies, which
 *                       sum every layer; a layer's own p90 is a proxy for it (layers are placed
 *                       independently), so this objective does not guarantee the trace's p90.
 *
 * Method (one copy of every expert, share 1, exactly ctx->slots[g] experts on GPU g when the
 * slots add up to E; with more slots than experts, at most slots[g] and single moves into free
 * slots join the swaps):
 *   1. Starting points: (a) GEM's placement: consistent experts by mean load, heaviest first,
 *      each on the GPU with a free slot whose predicted finish time (c_g + sum of f_g(mean
 *      load) of its experts, its own curve; aggregate: c_g + f_g(sum of mean loads)) is least
 *      after adding it; temporal experts by mean heavy load, heaviest first, on the GPU with
 *      the fewest co-activations with the experts already there, then least predicted finish
 *      time; cold experts last, as the consistent ones. Without a classification every expert
 *      counts as consistent. (b) balanced and (c) speed_aware, the baselines (map_baseline.c).
 *   2. Local search from the best of the three starts (ties: the earlier): swaps of two experts on different GPUs (and moves into
 *      free slots), evaluated incrementally on the per-GPU, per-step times T[g][s] with the
 *      top three GPUs of every step kept. A trade can only help if it takes an expert off a
 *      straggler, so each expert carries a bound on what removing it can save (gain, tighter
 *      when the partner's GPU is not the runner-up there); pairs whose bounds cannot beat the
 *      best trade found are skipped, and a pair costs only the steps whose straggler is one
 *      of its two GPUs unless it looks improving. Experts are
 *      scanned round robin from the heaviest; for each with a gain the best improving partner
 *      is taken. At a local optimum of trades, the best improving exchange of two GPUs' whole
 *      contents is made (the move that lets a group of experts trade a slow GPU for a fast
 *      one) and the trades resume. Stops at a local optimum of both or after
 *      GEM_OPT_MAX_ITERATIONS improving moves.
 *   3. GEM_OPT_RESTARTS restarts, each ceil(64 / E) rounds of: perturb the best placement
 *      (2 + E/32 random trades, at most 16), search again but only from the experts the
 *      perturbation and later trades touched (or whose gain grew), keep the better. Randomness
 *      is seeded by GEM_OPT_SEED and the layer only, so the result does not depend on
 *      threads.
 *   4. The best placement over all of them, evaluated from scratch in expert order, is
 *      returned, so gem is never worse than balanced or speed_aware on the trace it was built
 *      from (with objective p90: on each layer's p90).
 * GEM_OPT_TIME_LIMIT_MS (0 = none) is split evenly over the layers that a thread handles; when
 * it runs out the search stops early (results may then depend on timing).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per-expert-per-GPU cost rows are precomputed while they fit in this many doubles; beyond,
 * costs are looked up in the curve on the fly. */
#define GEM__COST_CACHE_MAX ((size_t)1 << 22)
/* Up to this many GPUs the search keeps a G x G table of which GPU is second to which. */
#define GEM__RUNNER_MAX_GPUS 2048

/* ---- a layer's search state --------------------------------------------------------------- */

typedef struct {
    double sum;               /* sum over steps of the layer latency */
    double p90;               /* nearest-rank p90 of the layer latencies */
} gem__obj;

typedef struct {
    const gem_profile_t *prof;
    int per_expert;           /* cost model per_expert (else aggregate) */
    int32_t G, E;
    size_t S;
    gem_objective_t objective;
    size_t rank;              /* 0-based nearest-rank index of p90 */
    const int32_t *cap;       /* [G] slots */
    int32_t maxcap;
    double *over;             /* [G] c_g */
    double *load;             /* [E][S] tokens */
    double *mean;             /* [E] mean load */
    double *C;                /* [G][E][S] f_g(load) for per_expert, or NULL; GPU-major so
                                 that a scan of partners for one GPU stays in one block */
    /* assignment */
    int32_t *gpu;             /* [E] */
    int32_t *count;           /* [G] */
    int32_t *members;         /* [G][maxcap] */
    int32_t *pos;             /* [E] index in its GPU's members */
    /* times */
    double *T;                /* [G][S] */
    double *X;                /* [G][S] token sums (aggregate only) */
    double *v1, *v2, *v3;     /* [S] the three largest T of each step (-inf when fewer GPUs) */
    int32_t *i1, *i2;         /* [S] GPUs of v1, v2 */
    size_t *strag_off;        /* [G + 1] steps whose straggler (i1) is g: strag[off[g]..] */
    size_t *strag;            /* [S] */
    double *m1, *m2;          /* [S] scratch (p90 objective, exchanges) */
    double *zero;             /* [S] zeros (the cost of no expert) */
    /* per scanned expert e1 and partner GPU g2 (cached per_expert costs, objective mean):
     * what does not depend on the partner, laid out for a tight loop over its experts */
    double *w_rest;           /* [S] T of g1 without e1 */
    double *w_th;             /* [S] v1, or +inf in steps whose straggler is g1 (or g2) */
    size_t *w_idx;            /* [S] the steps whose straggler is g1 or g2 */
    double *w_oth, *w_v1;     /* [S] for those: largest T of the other GPUs, and v1 */
    double *gmax;             /* [G] largest gain of a GPU's experts */
    int32_t *gorder;          /* [G] GPUs by gmax, largest first */
    gem__keyed *gkey;         /* [G] scratch for sorting them */
    double *pair_gain;        /* [G] per scanned expert: bound on its side's saving by partner GPU */
    double *gain;             /* [E] upper bound on what taking e off its GPU can save in the
                                 steps where that GPU is the straggler (0 elsewhere) */
    double *gain2;            /* [E] the same for a partner on a GPU that is never second
                                 where e's GPU is the straggler */
    uint8_t *runner;          /* [G][G] h is second in some step where g is the straggler;
                                 NULL for very many GPUs (then gain alone is used) */
    gem__obj obj;
    double tol;               /* improvements smaller than this are noise */
    /* focused search (restarts): only experts marked dirty are scanned; a trade marks the
     * experts of its two GPUs, and a refresh marks experts whose gain grew */
    int focus;
    uint8_t *dirty;           /* [E] */
    /* time limit */
    int has_deadline;
    struct timespec deadline;
} gem__ls;

static inline double gem__ls_cost(const gem__ls *L, int32_t e, int32_t g, size_t s)
{
    if (L->C) return L->C[((size_t)g * (size_t)L->E + (size_t)e) * L->S + s];
    return gem__latency(L->prof, g, L->load[(size_t)e * L->S + s]);
}

static void gem__ls_free(gem__ls *L)
{
    free(L->over); free(L->load); free(L->mean); free(L->C);
    free(L->gpu); free(L->count); free(L->members); free(L->pos);
    free(L->T); free(L->X); free(L->v1); free(L->v2); free(L->v3); free(L->i1); free(L->i2);
    free(L->strag_off); free(L->strag); free(L->m1); free(L->m2); free(L->zero); free(L->gain);
    free(L->dirty);
    free(L->w_rest); free(L->w_th); free(L->w_idx); free(L->w_oth); free(L->w_v1);
    free(L->gmax); free(L->gorder); free(L->gkey); free(L->pair_gain); free(L->gain2);
    free(L->runner);
    memset(L, 0, sizeof *L);
}

static gem_status_t gem__ls_init(gem__ls *L, const gem__map_ctx *ctx, int32_t layer)
{
    memset(L, 0, sizeof *L);
    const int32_t G = ctx->num_gpus, E = ctx->num_experts;
    const size_t S = (size_t)ctx->num_steps;
    L->prof = ctx->profile;
    L->per_expert = ctx->profile->cost_model == GEM_COST_PER_EXPERT;
    L->G = G;
    L->E = E;
    L->S = S;
    L->objective = (gem_objective_t)gem__opt_int(ctx->opts, GEM_OPT_OBJECTIVE);
    L->rank = gem__nearest_rank(90, S);
    L->cap = ctx->slots;
    for (int32_t g = 0; g < G; g++) L->maxcap = ctx->slots[g] > L->maxcap ? ctx->slots[g] : L->maxcap;
    if (L->maxcap > E) L->maxcap = E;
    const size_t SG = S * (size_t)G;
    if (!(L->over = gem__array((size_t)G, sizeof(double))) ||
        !(L->load = gem__array((size_t)E * S, sizeof(double))) ||
        !(L->mean = gem__array((size_t)E, sizeof(double))) ||
        !(L->gpu = gem__array((size_t)E, sizeof(int32_t))) ||
        !(L->count = gem__array((size_t)G, sizeof(int32_t))) ||
        !(L->members = gem__array((size_t)G * (size_t)(L->maxcap ? L->maxcap : 1), sizeof(int32_t))) ||
        !(L->pos = gem__array((size_t)E, sizeof(int32_t))) ||
        !(L->T = gem__array(SG, sizeof(double))) ||
        (!L->per_expert && !(L->X = gem__array(SG, sizeof(double)))) ||
        !(L->v1 = gem__array(S, sizeof(double))) || !(L->v2 = gem__array(S, sizeof(double))) ||
        !(L->v3 = gem__array(S, sizeof(double))) || !(L->i1 = gem__array(S, sizeof(int32_t))) ||
        !(L->i2 = gem__array(S, sizeof(int32_t))) ||
        !(L->strag_off = gem__array((size_t)G + 1, sizeof(size_t))) ||
        !(L->strag = gem__array(S, sizeof(size_t))) ||
        !(L->m1 = gem__array(S, sizeof(double))) || !(L->m2 = gem__array(S, sizeof(double))) ||
        !(L->zero = gem__array(S, sizeof(double))) ||
        !(L->dirty = gem__array((size_t)E, 1)) ||
        !(L->w_rest = gem__array(S, sizeof(double))) || !(L->w_th = gem__array(S, sizeof(double))) ||
        !(L->w_idx = gem__array(S, sizeof(size_t))) || !(L->w_oth = gem__array(S, sizeof(double))) ||
        !(L->w_v1 = gem__array(S, sizeof(double))) ||
        !(L->gain = gem__array((size_t)E, sizeof(double))) ||
        !(L->gmax = gem__array((size_t)G, sizeof(double))) ||
        !(L->pair_gain = gem__array((size_t)G, sizeof(double))) ||
        !(L->gain2 = gem__array((size_t)E, sizeof(double))) ||
        (G <= GEM__RUNNER_MAX_GPUS && !(L->runner = gem__array((size_t)G * (size_t)G, 1))) ||
        !(L->gorder = gem__array((size_t)G, sizeof(int32_t))) ||
        !(L->gkey = gem__array((size_t)G, sizeof(gem__keyed)))) {
        gem__ls_free(L);
        return GEM_ERR_NO_MEMORY;
    }
    for (int32_t g = 0; g < G; g++) L->over[g] = ctx->profile->gpus[g].overhead;
    for (size_t s = 0; s < S; s++) {
        const double *row = gem__trace_row(ctx->trace, (int64_t)s, layer);
        for (int32_t e = 0; e < E; e++) L->load[(size_t)e * S + s] = row[e];
    }
    for (int32_t e = 0; e < E; e++) {
        double sum = 0;
        for (size_t s = 0; s < S; s++) sum += L->load[(size_t)e * S + s];
        L->mean[e] = sum / (double)S;
    }
    if (L->per_expert && (size_t)E * SG <= GEM__COST_CACHE_MAX) {
        L->C = gem__array((size_t)E * SG, sizeof(double));
        if (!L->C) { gem__ls_free(L); return GEM_ERR_NO_MEMORY; }
        for (int32_t g = 0; g < G; g++)
            for (int32_t e = 0; e < E; e++) {
                double *row = L->C + ((size_t)g * (size_t)E + (size_t)e) * S;
                for (size_t s = 0; s < S; s++)
                    row[s] = gem__latency(L->prof, g, L->load[(size_t)e * S + s]);
            }
    }
    return GEM_OK;
}

/* T (and X) of GPU g in every step, from scratch in members order. */
static void gem__ls_column(gem__ls *L, int32_t g)
{
    const size_t S = L->S;
    const int32_t *mem = L->members + (size_t)g * (size_t)L->maxcap;
    double *T = L->T + (size_t)g * S;
    for (size_t s = 0; s < S; s++) {
        double acc = 0;
        if (L->per_expert) {
            for (int32_t i = 0; i < L->count[g]; i++) acc += gem__ls_cost(L, mem[i], g, s);
            T[s] = L->over[g] + acc;
        } else {
            for (int32_t i = 0; i < L->count[g]; i++) acc += L->load[(size_t)mem[i] * S + s];
            L->X[(size_t)g * S + s] = acc;
            T[s] = L->over[g] + gem__latency(L->prof, g, acc);
        }
    }
}

static void gem__ls_top3(gem__ls *L, size_t s)
{
    const size_t S = L->S;
    const double *t = L->T + s;
    double a = -INFINITY, b = -INFINITY, c = -INFINITY;
    int32_t ia = -1, ib = -1;
    for (int32_t g = 0; g < L->G; g++) {
        double x = t[(size_t)g * S];
        if (x > a) { c = b; b = a; ib = ia; a = x; ia = g; }
        else if (x > b) { c = b; b = x; ib = g; }
        else if (x > c) c = x;
    }
    L->v1[s] = a; L->v2[s] = b; L->v3[s] = c;
    L->i1[s] = ia; L->i2[s] = ib;
}

/* gain[e]: in a step where e's GPU g is the straggler, a trade of e makes the step no faster
 * than the third largest T (the largest of the other GPUs is at least that) nor than g's time
 * without e (per_expert: the expert coming in adds >= 0; aggregate: at least c_g). */
static void gem__ls_gains(gem__ls *L)
{
    const size_t S = L->S;
    for (int32_t g = 0; g < L->G; g++) {
        const int32_t *mem = L->members + (size_t)g * (size_t)L->maxcap;
        const double *T = L->T + (size_t)g * S;
        double gmax = 0;
        for (int32_t i = 0; i < L->count[g]; i++) {
            int32_t e = mem[i];
            double gain = 0, gain2 = 0;
            for (size_t k = L->strag_off[g]; k < L->strag_off[g + 1]; k++) {
                size_t s = L->strag[k];
                double rest = L->per_expert ? T[s] - gem__ls_cost(L, e, g, s) : L->over[g];
                double floor = rest > L->v3[s] ? rest : L->v3[s];
                if (L->v1[s] > floor) gain += L->v1[s] - floor;
                floor = rest > L->v2[s] ? rest : L->v2[s];
                if (L->v1[s] > floor) gain2 += L->v1[s] - floor;
            }
            if (gain > L->gain[e]) L->dirty[e] = 1;
            L->gain[e] = gain;
            L->gain2[e] = gain2;
            if (gain > gmax) gmax = gain;
        }
        L->gmax[g] = gmax;
        L->gkey[g] = (gem__keyed){gmax, g};
    }
    qsort(L->gkey, (size_t)L->G, sizeof *L->gkey, gem__cmp_keyed_desc);
    for (int32_t g = 0; g < L->G; g++) L->gorder[g] = L->gkey[g].id;
}

/* Top three, straggler lists and objective of every step, after columns changed. */
static void gem__ls_refresh(gem__ls *L)
{
    const size_t S = L->S, G = (size_t)L->G;
    memset(L->strag_off, 0, (G + 1) * sizeof *L->strag_off);
    if (L->runner) /* clear what the previous refresh set */
        for (size_t s = 0; s < S; s++)
            if (L->i2[s] >= 0) L->runner[(size_t)L->i1[s] * G + (size_t)L->i2[s]] = 0;
    double sum = 0;
    for (size_t s = 0; s < S; s++) {
        gem__ls_top3(L, s);
        if (L->runner && L->i2[s] >= 0) L->runner[(size_t)L->i1[s] * G + (size_t)L->i2[s]] = 1;
        sum += L->v1[s];
        L->strag_off[L->i1[s] + 1]++;
    }
    for (size_t g = 0; g < G; g++) L->strag_off[g + 1] += L->strag_off[g];
    /* fill in step order, using each offset as its GPU's cursor, then shift them back */
    for (size_t s = 0; s < S; s++) L->strag[L->strag_off[L->i1[s]]++] = s;
    for (size_t g = G; g > 0; g--) L->strag_off[g] = L->strag_off[g - 1];
    L->strag_off[0] = 0;
    gem__ls_gains(L);
    L->obj.sum = sum;
    if (L->objective == GEM_OBJECTIVE_P90) {
        memcpy(L->m1, L->v1, S * sizeof *L->m1);
        L->obj.p90 = gem__kth_smallest(L->m1, S, L->rank);
    } else {
        L->obj.p90 = 0;
    }
    L->tol = 1e-12 * fabs(sum);
}

/* Loads an assignment (gpu[e] for every expert) and evaluates it from scratch. Members are
 * filled in expert order, so the sums are in a canonical order. */
static void gem__ls_set(gem__ls *L, const int32_t *gpu)
{
    memset(L->count, 0, (size_t)L->G * sizeof *L->count);
    memset(L->dirty, 1, (size_t)L->E);
    for (int32_t e = 0; e < L->E; e++) {
        int32_t g = gpu[e];
        L->gpu[e] = g;
        L->pos[e] = L->count[g];
        L->members[(size_t)g * (size_t)L->maxcap + (size_t)L->count[g]++] = e;
    }
    for (int32_t g = 0; g < L->G; g++) gem__ls_column(L, g);
    gem__ls_refresh(L);
}

/* a better than b */
static int gem__obj_better(const gem__ls *L, gem__obj a, gem__obj b, double tol)
{
    if (L->objective == GEM_OBJECTIVE_P90)
        return a.p90 < b.p90 - tol || (a.p90 <= b.p90 && a.sum < b.sum - tol);
    return a.sum < b.sum - tol;
}

/* New T of GPU g in step s when expert out leaves it and expert in joins it (-1: none). */
static inline double gem__ls_newT(const gem__ls *L, size_t s, int32_t g, int32_t out, int32_t in)
{
    const size_t i = (size_t)g * L->S + s;
    if (L->per_expert) {
        double t = L->T[i];
        if (out >= 0) t -= gem__ls_cost(L, out, g, s);
        if (in >= 0) t += gem__ls_cost(L, in, g, s);
        return t;
    }
    double x = L->X[i];
    if (out >= 0) x -= L->load[(size_t)out * L->S + s];
    if (in >= 0) x += L->load[(size_t)in * L->S + s];
    return L->over[g] + gem__latency(L->prof, g, x);
}

/* Largest T of step s over the GPUs other than g1 and g2. */
static inline double gem__ls_other(const gem__ls *L, size_t s, int32_t g1, int32_t g2)
{
    if (L->i1[s] != g1 && L->i1[s] != g2) return L->v1[s];
    if (L->i2[s] != g1 && L->i2[s] != g2) return L->v2[s];
    return L->v3[s];
}

static inline double gem__max3(double a, double b, double c)
{
    double m = a > b ? a : b;
    return m > c ? m : c;
}

/* Change of the sum objective if e1 (on g1) and e2 (on g2, -1 = a free slot there) trade
 * places; returns a value >= limit (not exact) as soon as the change cannot beat limit.
 * fast: per_expert costs are cached (a constant, so each caller gets a specialised copy). */
static inline double gem__ls_delta_impl(const gem__ls *L, int32_t e1, int32_t g1, int32_t e2,
                                        int32_t g2, double limit, int fast)
{
    const size_t S = L->S, E = (size_t)L->E;
    const double *t1 = L->T + (size_t)g1 * S, *t2 = L->T + (size_t)g2 * S;
    const double *c11 = NULL, *c12 = NULL, *c21 = L->zero, *c22 = L->zero;
    if (fast) {
        c11 = L->C + ((size_t)g1 * E + (size_t)e1) * S;
        c12 = L->C + ((size_t)g2 * E + (size_t)e1) * S;
        if (e2 >= 0) {
            c21 = L->C + ((size_t)g1 * E + (size_t)e2) * S;
            c22 = L->C + ((size_t)g2 * E + (size_t)e2) * S;
        }
    }
#define GEM__NEW_T(s, a, b)                                                                  \
    do {                                                                                      \
        if (fast) {                                                                           \
            a = t1[s] - c11[s] + c21[s];                                                      \
            b = t2[s] - c22[s] + c12[s];                                                      \
        } else {                                                                              \
            a = gem__ls_newT(L, s, g1, e1, e2);                                               \
            b = gem__ls_newT(L, s, g2, e2, e1);                                               \
        }                                                                                     \
    } while (0)
    double d = 0;
    /* steps whose straggler is g1 or g2: the only ones that can get faster */
    const int32_t gs[2] = {g1, g2};
    for (int k = 0; k < 2; k++)
        for (size_t i = L->strag_off[gs[k]]; i < L->strag_off[gs[k] + 1]; i++) {
            size_t s = L->strag[i];
            double a, b;
            GEM__NEW_T(s, a, b);
            d += gem__max3(a, b, gem__ls_other(L, s, g1, g2)) - L->v1[s];
        }
    if (d >= limit) return d;
    /* every other step keeps its straggler unless g1 or g2 overtakes it */
    for (size_t s = 0; s < S; s++) {
        if (L->i1[s] == g1 || L->i1[s] == g2) continue;
        double a, b;
        GEM__NEW_T(s, a, b);
        double m = a > b ? a : b;
        if (m > L->v1[s]) {
            d += m - L->v1[s];
            if (d >= limit) return d;
        }
    }
#undef GEM__NEW_T
    return d;
}

static double gem__ls_delta_fast(const gem__ls *L, int32_t e1, int32_t g1, int32_t e2,
                                 int32_t g2, double limit)
{
    return gem__ls_delta_impl(L, e1, g1, e2, g2, limit, 1);
}

static double gem__ls_delta_slow(const gem__ls *L, int32_t e1, int32_t g1, int32_t e2,
                                 int32_t g2, double limit)
{
    return gem__ls_delta_impl(L, e1, g1, e2, g2, limit, 0);
}

/* Objective after the trade (p90 objective): full evaluation, after a quick check that some
 * step gets faster at all. Returns 0 when no step gets faster (cannot improve). */
static int gem__ls_eval_p90(gem__ls *L, int32_t e1, int32_t g1, int32_t e2, int32_t g2,
                            gem__obj *res)
{
    int faster = 0;
    const int32_t gs[2] = {g1, g2};
    for (int k = 0; k < 2 && !faster; k++)
        for (size_t i = L->strag_off[gs[k]]; i < L->strag_off[gs[k] + 1]; i++) {
            size_t s = L->strag[i];
            double a = gem__ls_newT(L, s, g1, e1, e2), b = gem__ls_newT(L, s, g2, e2, e1);
            if (gem__max3(a, b, gem__ls_other(L, s, g1, g2)) < L->v1[s]) { faster = 1; break; }
        }
    if (!faster) return 0;
    double sum = 0;
    for (size_t s = 0; s < L->S; s++) {
        double a = gem__ls_newT(L, s, g1, e1, e2), b = gem__ls_newT(L, s, g2, e2, e1);
        double m = gem__max3(a, b, gem__ls_other(L, s, g1, g2));
        L->m2[s] = m;
        sum += m;
    }
    res->sum = sum;
    res->p90 = gem__kth_smallest(L->m2, L->S, L->rank);
    return 1;
}

/* Makes the trade: e1 goes to g2; e2 (if >= 0) goes to e1's GPU g1. */
/* Marks the experts of GPU g for a focused search. */
static void gem__ls_touch(gem__ls *L, int32_t g)
{
    const int32_t *mem = L->members + (size_t)g * (size_t)L->maxcap;
    for (int32_t i = 0; i < L->count[g]; i++) L->dirty[mem[i]] = 1;
}

static void gem__ls_apply(gem__ls *L, int32_t e1, int32_t e2, int32_t g2)
{
    const size_t mc = (size_t)L->maxcap;
    int32_t g1 = L->gpu[e1];
    if (e2 >= 0) {
        int32_t p1 = L->pos[e1], p2 = L->pos[e2];
        L->members[(size_t)g1 * mc + (size_t)p1] = e2;
        L->members[(size_t)g2 * mc + (size_t)p2] = e1;
        L->pos[e1] = p2; L->pos[e2] = p1;
        L->gpu[e1] = g2; L->gpu[e2] = g1;
    } else {
        int32_t p1 = L->pos[e1];
        int32_t last = L->members[(size_t)g1 * mc + (size_t)(--L->count[g1])];
        L->members[(size_t)g1 * mc + (size_t)p1] = last;
        L->pos[last] = p1;
        L->pos[e1] = L->count[g2];
        L->members[(size_t)g2 * mc + (size_t)L->count[g2]++] = e1;
        L->gpu[e1] = g2;
    }
    gem__ls_column(L, g1);
    gem__ls_column(L, g2);
    gem__ls_touch(L, g1);
    gem__ls_touch(L, g2);
    gem__ls_refresh(L);
}

/* Objective if GPUs g1 and g2 trade everything they hold (a move no single swap reaches
 * without first getting worse when the two run at different speeds). Uses m1, m2. */
/* T of g1 holding g2's experts and of g2 holding g1's, in step s. */
static void gem__ls_exchange_T(const gem__ls *L, int32_t g1, int32_t g2, size_t s, double *a,
                               double *b)
{
    const size_t S = L->S, mc = (size_t)L->maxcap;
    if (L->per_expert) {
        double x = 0, y = 0;
        for (int32_t i = 0; i < L->count[g2]; i++)
            x += gem__ls_cost(L, L->members[(size_t)g2 * mc + (size_t)i], g1, s);
        for (int32_t i = 0; i < L->count[g1]; i++)
            y += gem__ls_cost(L, L->members[(size_t)g1 * mc + (size_t)i], g2, s);
        *a = L->over[g1] + x;
        *b = L->over[g2] + y;
    } else {
        *a = L->over[g1] + gem__latency(L->prof, g1, L->X[(size_t)g2 * S + s]);
        *b = L->over[g2] + gem__latency(L->prof, g2, L->X[(size_t)g1 * S + s]);
    }
}

/* 1 if exchanging g1 and g2 makes the steps where one of them is the straggler faster in
 * sum: a necessary condition for any gain (the other steps can only get slower), and cheap. */
static int gem__ls_exchange_may_help(const gem__ls *L, int32_t g1, int32_t g2)
{
    double d = 0;
    const int32_t gs[2] = {g1, g2};
    int faster = 0;
    for (int k = 0; k < 2; k++)
        for (size_t i = L->strag_off[gs[k]]; i < L->strag_off[gs[k] + 1]; i++) {
            size_t s = L->strag[i];
            double a, b;
            gem__ls_exchange_T(L, g1, g2, s, &a, &b);
            double m = gem__max3(a, b, gem__ls_other(L, s, g1, g2));
            d += m - L->v1[s];
            faster |= m < L->v1[s];
        }
    return L->objective == GEM_OBJECTIVE_P90 ? faster : d < -L->tol;
}

static gem__obj gem__ls_eval_exchange(gem__ls *L, int32_t g1, int32_t g2)
{
    const size_t S = L->S;
    double *a = L->m1;
    gem__obj o = {0, 0};
    for (size_t s = 0; s < S; s++) {
        double x, y;
        gem__ls_exchange_T(L, g1, g2, s, &x, &y);
        a[s] = gem__max3(x, y, gem__ls_other(L, s, g1, g2));
        o.sum += a[s];
    }
    if (L->objective == GEM_OBJECTIVE_P90) o.p90 = gem__kth_smallest(a, S, L->rank);
    return o;
}

static void gem__ls_apply_exchange(gem__ls *L, int32_t g1, int32_t g2)
{
    const size_t mc = (size_t)L->maxcap;
    int32_t n1 = L->count[g1], n2 = L->count[g2];
    int32_t *m1 = L->members + (size_t)g1 * mc, *m2 = L->members + (size_t)g2 * mc;
    int32_t n = n1 > n2 ? n1 : n2;
    for (int32_t i = 0; i < n; i++) {
        int32_t x = m1[i], y = m2[i];
        m1[i] = y;
        m2[i] = x;
    }
    L->count[g1] = n2;
    L->count[g2] = n1;
    for (int32_t i = 0; i < n2; i++) L->gpu[m1[i]] = g1;
    for (int32_t i = 0; i < n1; i++) L->gpu[m2[i]] = g2;
    gem__ls_column(L, g1);
    gem__ls_column(L, g2);
    gem__ls_touch(L, g1);
    gem__ls_touch(L, g2);
    gem__ls_refresh(L);
}

/* Best improving exchange of two GPUs' contents; 1 if one was made. */
static int gem__ls_try_exchanges(gem__ls *L)
{
    int32_t b1 = -1, b2 = -1;
    gem__obj best = L->obj;
    for (int32_t g1 = 0; g1 < L->G; g1++)
        for (int32_t g2 = g1 + 1; g2 < L->G; g2++) {
            /* some step must get faster: one of them is a straggler somewhere */
            if (L->strag_off[g1 + 1] == L->strag_off[g1] &&
                L->strag_off[g2 + 1] == L->strag_off[g2])
                continue;
            if (L->count[g1] > L->cap[g2] || L->count[g2] > L->cap[g1]) continue;
            if (L->count[g1] == 0 && L->count[g2] == 0) continue;
            /* only their straggler steps can get faster, and no further than the slowest
             * other GPU */
            double bound = 0;
            const int32_t gs[2] = {g1, g2};
            for (int k = 0; k < 2; k++)
                for (size_t i = L->strag_off[gs[k]]; i < L->strag_off[gs[k] + 1]; i++) {
                    size_t st = L->strag[i];
                    bound += L->v1[st] - gem__ls_other(L, st, g1, g2);
                }
            if (L->objective == GEM_OBJECTIVE_P90 ? bound <= 0 : bound <= L->tol) continue;
            if (!gem__ls_exchange_may_help(L, g1, g2)) continue;
            gem__obj o = gem__ls_eval_exchange(L, g1, g2);
            if (gem__obj_better(L, o, best, L->tol)) {
                best = o;
                b1 = g1;
                b2 = g2;
            }
        }
    if (b1 < 0) return 0;
    gem__ls_apply_exchange(L, b1, b2);
    return 1;
}

static int gem__ls_timed_out(const gem__ls *L)
{
    if (!L->has_deadline) return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > L->deadline.tv_sec ||
           (now.tv_sec == L->deadline.tv_sec && now.tv_nsec >= L->deadline.tv_nsec);
}

/* The best trade of e1 (on g1) with an expert of g2 or a free slot there, under the sum
 * objective with cached costs: the same arithmetic as gem__ls_delta_fast, with what does not
 * depend on the partner computed once. Updates *best_d, *best_e2, *best_g2. */
static void gem__ls_scan_gpu_fast(gem__ls *L, int32_t e1, int32_t g1, int32_t g2, double side1,
                                  double *best_d, int32_t *best_e2, int32_t *best_g2)
{
    const size_t S = L->S, E = (size_t)L->E, mc = (size_t)L->maxcap;
    const double *t2 = L->T + (size_t)g2 * S;
    const double *c12 = L->C + ((size_t)g2 * E + (size_t)e1) * S;
    const double *rest = L->w_rest;
    double *th = L->w_th, *oth = L->w_oth, *v1 = L->w_v1;
    size_t *idx = L->w_idx, n = 0;
    /* th (the caller's: v1, +inf where g1 is the straggler) gets +inf where g2 is, too,
     * and is restored on the way out */
    const int32_t gs[2] = {g1, g2};
    for (int k = 0; k < 2; k++)
        for (size_t i = L->strag_off[gs[k]]; i < L->strag_off[gs[k] + 1]; i++) {
            size_t s = L->strag[i];
            th[s] = INFINITY;
            idx[n] = s;
            oth[n] = gem__ls_other(L, s, g1, g2);
            v1[n++] = L->v1[s];
        }
    const int32_t n2 = L->count[g2];
    const int free_slot = n2 < L->cap[g2];
    for (int32_t i = 0; i < n2 + free_slot; i++) {
        int32_t e2 = i < n2 ? L->members[(size_t)g2 * mc + (size_t)i] : -1;
        double side2 = e2 < 0 ? 0
                       : !L->runner || L->runner[(size_t)g2 * (size_t)L->G + (size_t)g1]
                           ? L->gain[e2] : L->gain2[e2];
        const double limit = *best_d;
        if (-(side1 + side2) >= limit) continue;
        const double *c21 = e2 < 0 ? L->zero : L->C + ((size_t)g1 * E + (size_t)e2) * S;
        const double *c22 = e2 < 0 ? L->zero : L->C + ((size_t)g2 * E + (size_t)e2) * S;
        double d = 0;
        for (size_t k = 0; k < n; k++) {
            size_t s = idx[k];
            double a = rest[s] + c21[s], b = t2[s] - c22[s] + c12[s];
            d += gem__max3(a, b, oth[k]) - v1[k];
        }
        if (d >= limit) continue;
        /* the other steps, in blocks so the loop stays simple */
        for (size_t s0 = 0; s0 < S && d < limit; s0 += 16) {
            size_t s1 = s0 + 16 < S ? s0 + 16 : S;
            for (size_t s = s0; s < s1; s++) {
                double a = rest[s] + c21[s], b = t2[s] - c22[s] + c12[s];
                double m = a > b ? a : b;
                d += m > th[s] ? m - th[s] : 0;
            }
        }
        if (d < limit) {
            *best_d = d;
            *best_e2 = e2;
            *best_g2 = g2;
        }
    }
    for (size_t i = L->strag_off[g2]; i < L->strag_off[g2 + 1]; i++)
        th[L->strag[i]] = L->v1[L->strag[i]];
}

/* pair_gain[g2]: what taking e1 off g1 can save in the steps where g1 is the straggler when
 * the partner sits on g2. There the step stays at least as slow as g1 without e1 and as the
 * slowest GPU other than g1 and g2: the second (v2), or the third when g2 is second. Returns
 * the largest entry. */
static double gem__ls_pair_gains(gem__ls *L, int32_t e1, int32_t g1)
{
    const size_t S = L->S;
    const double *T = L->T + (size_t)g1 * S;
    double base = 0;
    for (int32_t g = 0; g < L->G; g++) L->pair_gain[g] = 0;
    for (size_t k = L->strag_off[g1]; k < L->strag_off[g1 + 1]; k++) {
        size_t s = L->strag[k];
        double rest = L->per_expert ? T[s] - gem__ls_cost(L, e1, g1, s) : L->over[g1];
        double lo2 = rest > L->v2[s] ? rest : L->v2[s], lo3 = rest > L->v3[s] ? rest : L->v3[s];
        double save2 = L->v1[s] > lo2 ? L->v1[s] - lo2 : 0;
        double save3 = L->v1[s] > lo3 ? L->v1[s] - lo3 : 0;
        base += save2;
        if (L->i2[s] >= 0) L->pair_gain[L->i2[s]] += save3 - save2;
    }
    double top = 0;
    for (int32_t g = 0; g < L->G; g++) {
        L->pair_gain[g] += base;
        if (g != g1 && L->pair_gain[g] > top) top = L->pair_gain[g];
    }
    return top;
}

/* Local search from the current assignment; order[E] is the scan order of experts. focus:
 * scan only experts marked dirty (the caller marks what it changed), and stop when none is
 * left, rather than at a local optimum confirmed by a pass over every expert. */
static void gem__ls_search(gem__ls *L, const int32_t *order, int64_t max_moves, int focus)
{
    const size_t mc = (size_t)L->maxcap;
    int64_t moves = 0;
    int32_t idle = 0; /* experts scanned since the last improving move */
    int32_t cursor = 0;
    unsigned ticks = 0;
    L->focus = focus;
    for (;;) {
        if (idle >= L->E) {
            /* a local optimum of single trades: try exchanging two GPUs' contents */
            if (moves >= max_moves || !gem__ls_try_exchanges(L)) break;
            moves++;
            idle = 0;
        }
        if (moves >= max_moves) break;
        if ((++ticks & 15) == 0 && gem__ls_timed_out(L)) break;
        int32_t e1 = order[cursor];
        cursor = cursor + 1 == L->E ? 0 : cursor + 1;
        idle++;
        int32_t g1 = L->gpu[e1];
        const double gb1 = L->gain[e1];
        /* a trade that can improve takes an expert off a straggler; trades of e1 with such an
         * expert are examined from that expert's side */
        if (gb1 <= 0 || (L->focus && !L->dirty[e1])) continue;
        int32_t best_e2 = -2, best_g2 = -1;
        double best_d = -L->tol;
        gem__obj best_obj = L->obj;
        const double top1 = gem__ls_pair_gains(L, e1, g1);
        const int fast = L->C && L->objective != GEM_OBJECTIVE_P90;
        if (fast) {
            const double *t1 = L->T + (size_t)g1 * L->S;
            const double *c11 = L->C + ((size_t)g1 * (size_t)L->E + (size_t)e1) * L->S;
            for (size_t s = 0; s < L->S; s++) {
                L->w_rest[s] = t1[s] - c11[s];
                L->w_th[s] = L->i1[s] == g1 ? INFINITY : L->v1[s];
            }
        }
        /* GPUs by their largest gain, so that once the bound on what a trade can save (e1's
         * side + e2's gain) cannot beat the best found, no later GPU can either */
        for (int32_t j = 0; j < L->G; j++) {
            int32_t g2 = L->gorder[j];
            if (g2 == g1) continue;
            double bound = top1 + L->gmax[g2];
            if (L->objective == GEM_OBJECTIVE_P90 ? bound <= 0 : -bound >= best_d) break;
            const double side1 = L->pair_gain[g2];
            bound = side1 + L->gmax[g2];
            if (L->objective == GEM_OBJECTIVE_P90 ? bound <= 0 : -bound >= best_d) continue;
            if (fast) {
                gem__ls_scan_gpu_fast(L, e1, g1, g2, side1, &best_d, &best_e2, &best_g2);
                continue;
            }
            int32_t n2 = L->count[g2];
            int free_slot = n2 < L->cap[g2];
            for (int32_t i = 0; i < n2 + free_slot; i++) {
                int32_t e2 = i < n2 ? L->members[(size_t)g2 * mc + (size_t)i] : -1;
                const double side2 = e2 < 0 ? 0
                                     : !L->runner || L->runner[(size_t)g2 * (size_t)L->G + (size_t)g1]
                                         ? L->gain[e2] : L->gain2[e2];
                if (L->objective == GEM_OBJECTIVE_P90) {
                    if (side1 + side2 <= 0) continue;
                    gem__obj o;
                    if (gem__ls_eval_p90(L, e1, g1, e2, g2, &o) &&
                        gem__obj_better(L, o, best_obj, L->tol)) {
                        best_obj = o;
                        best_e2 = e2;
                        best_g2 = g2;
                    }
                } else {
                    if (-(side1 + side2) >= best_d) continue;
                    double d = L->C ? gem__ls_delta_fast(L, e1, g1, e2, g2, best_d)
                                    : gem__ls_delta_slow(L, e1, g1, e2, g2, best_d);
                    if (d < best_d) {
                        best_d = d;
                        best_e2 = e2;
                        best_g2 = g2;
                    }
                }
            }
        }
        if (best_e2 == -2) L->dirty[e1] = 0;
        if (best_e2 != -2) {
            gem__ls_apply(L, e1, best_e2, best_g2);
            moves++;
            idle = 0;
        }
    }
    L->focus = 0;
}

/* Random trades from the current assignment (the perturbation of a restart). */
static void gem__ls_perturb(gem__ls *L, gem__rng *rng, int32_t k)
{
    if (L->G < 2) return;
    for (int32_t j = 0; j < k; j++) {
        int32_t e1 = (int32_t)gem__rng_below(rng, (uint64_t)L->E);
        int32_t g1 = L->gpu[e1];
        /* a random slot on another GPU: an expert there, or a free slot */
        int32_t g2 = (int32_t)gem__rng_below(rng, (uint64_t)L->G - 1);
        if (g2 >= g1) g2++;
        int32_t n2 = L->count[g2], free_slot = n2 < L->cap[g2];
        if (n2 + free_slot == 0) continue;
        int32_t i = (int32_t)gem__rng_below(rng, (uint64_t)(n2 + free_slot));
        int32_t e2 = i < n2 ? L->members[(size_t)g2 * (size_t)L->maxcap + (size_t)i] : -1;
        gem__ls_apply(L, e1, e2, g2);
    }
}

/* ---- starting points ------------------------------------------------------------------------ */

/* Experts sorted by mean load, heaviest first. */
static void gem__order_by_mean(const gem__ls *L, gem__keyed *k, int32_t *order)
{
    for (int32_t e = 0; e < L->E; e++) k[e] = (gem__keyed){L->mean[e], e};
    qsort(k, (size_t)L->E, sizeof *k, gem__cmp_keyed_desc);
    for (int32_t e = 0; e < L->E; e++) order[e] = k[e].id;
}

/* Predicted time of GPU g holding `held` mean tokens (aggregate) or `sum` of f (per expert)
 * after adding expert e. */
static double gem__predict_add(const gem__ls *L, int32_t g, const double *pred, const double *held,
                               int32_t e)
{
    if (L->per_expert) return pred[g] + gem__latency(L->prof, g, L->mean[e]);
    return L->over[g] + gem__latency(L->prof, g, held[g] + L->mean[e]);
}

static void gem__place(const gem__ls *L, int32_t *gpu, int32_t *used, double *pred, double *held,
                       int32_t e, int32_t g)
{
    pred[g] = gem__predict_add(L, g, pred, held, e);
    held[g] += L->mean[e];
    used[g]++;
    gpu[e] = g;
}

/* GPU with a free slot whose predicted finish time after adding e is least (ties: lowest
 * id). */
static int32_t gem__least_finish(const gem__ls *L, const int32_t *used, const double *pred,
                                 const double *held, int32_t e)
{
    int32_t best = -1;
    double bv = INFINITY;
    for (int32_t g = 0; g < L->G; g++) {
        if (used[g] >= L->cap[g]) continue;
        double v = gem__predict_add(L, g, pred, held, e);
        if (best < 0 || v < bv) { best = g; bv = v; }
    }
    return best;
}

/* GEM's classification-guided placement (see the file comment). */
static void gem__start_gem(const gem__ls *L, const gem__map_ctx *ctx, int32_t layer,
                           const int32_t *order, gem__keyed *keyed, int32_t *gpu, int32_t *used,
                           double *pred, double *held, double *coact)
{
    const gem_classification_t *cls = ctx->cls;
    for (int32_t g = 0; g < L->G; g++) {
        used[g] = 0;
        pred[g] = L->over[g];
        held[g] = 0;
    }
    if (!cls) { /* no classification: every expert is treated as consistent */
        for (int32_t i = 0; i < L->E; i++) {
            int32_t e = order[i];
            gem__place(L, gpu, used, pred, held, e, gem__least_finish(L, used, pred, held, e));
        }
        return;
    }
    for (int32_t i = 0; i < L->E; i++) {
        int32_t e = order[i];
        if (gem__cls_class(cls, layer, e) == GEM_CLASS_CONSISTENT)
            gem__place(L, gpu, used, pred, held, e, gem__least_finish(L, used, pred, held, e));
    }
    /* temporal experts, by their load when heavy */
    int32_t nt = 0;
    for (int32_t e = 0; e < L->E; e++)
        if (gem__cls_class(cls, layer, e) == GEM_CLASS_TEMPORAL)
            keyed[nt++] = (gem__keyed){gem__cls_mean_heavy_load(cls, layer, e), e};
    qsort(keyed, (size_t)nt, sizeof *keyed, gem__cmp_keyed_desc);
    for (int32_t i = 0; i < nt; i++) {
        int32_t e = keyed[i].id;
        /* co-activation of e with what each GPU holds so far */
        for (int32_t g = 0; g < L->G; g++) coact[g] = 0;
        for (int32_t f = 0; f < L->E; f++)
            if (gpu[f] >= 0) coact[gpu[f]] += (double)gem__cls_coactivation(cls, layer, e, f);
        int32_t best = -1;
        double bc = 0, bp = 0;
        for (int32_t g = 0; g < L->G; g++) {
            if (used[g] >= L->cap[g]) continue;
            double p = gem__predict_add(L, g, pred, held, e);
            if (best < 0 || coact[g] < bc || (coact[g] == bc && p < bp)) {
                best = g; bc = coact[g]; bp = p;
            }
        }
        gem__place(L, gpu, used, pred, held, e, best);
    }
    for (int32_t i = 0; i < L->E; i++) {
        int32_t e = order[i];
        if (gpu[e] < 0)
            gem__place(L, gpu, used, pred, held, e, gem__least_finish(L, used, pred, held, e));
    }
}

/* A baseline policy's placement of the layer as gpu[e]; 0 when it is not one copy of every
 * expert (then it is no starting point). */
static gem_status_t gem__start_baseline(const gem__map_ctx *ctx, int32_t layer,
                                        gem__layer_policy_fn policy, int32_t *gpu, int *ok)
{
    gem__layer_map lm = {0, 0, NULL};
    *ok = 0;
    gem_status_t st = policy(ctx, layer, &lm);
    if (!st && lm.n == (size_t)ctx->num_experts) {
        for (int32_t e = 0; e < ctx->num_experts; e++) gpu[e] = -1;
        *ok = 1;
        for (size_t i = 0; i < lm.n && *ok; i++) {
            const gem__placement *q = &lm.p[i];
            if (q->expert < 0 || q->expert >= ctx->num_experts || q->gpu < 0 ||
                q->gpu >= ctx->num_gpus || gpu[q->expert] >= 0)
                *ok = 0;
            else
                gpu[q->expert] = q->gpu;
        }
    }
    free(lm.p);
    return st;
}

/* ---- the policy ------------------------------------------------------------------------------ */

static int32_t gem__perturb_size(int32_t E)
{
    int32_t k = 2 + E / 32;
    return k > 16 ? 16 : k;
}

static void gem__set_deadline(gem__ls *L, const gem__map_ctx *ctx)
{
    int64_t ms = gem__opt_int(ctx->opts, GEM_OPT_TIME_LIMIT_MS);
    if (ms <= 0) return;
    /* the call's limit, shared by the layers one thread handles */
    int64_t threads = gem__opt_threads(ctx->opts);
    if (threads < 1) threads = 1;
    int64_t per_thread = (ctx->num_layers + threads - 1) / threads;
    double budget_ms = (double)ms / (double)(per_thread > 0 ? per_thread : 1);
    clock_gettime(CLOCK_MONOTONIC, &L->deadline);
    double ns = (double)L->deadline.tv_nsec + budget_ms * 1e6;
    L->deadline.tv_sec += (time_t)(ns / 1e9);
    L->deadline.tv_nsec = (long)fmod(ns, 1e9);
    L->has_deadline = 1;
}

static gem_status_t gem__check_ctx(const gem__map_ctx *ctx, int32_t layer, const char *name)
{
    if (!ctx || !ctx->profile || !ctx->trace || !ctx->slots)
        return gem__fail(GEM_ERR_INTERNAL, "policy %s: incomplete context", name);
    if (layer < 0 || layer >= ctx->num_layers)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "policy %s: layer %d outside [0, %d)", name,
                         (int)layer, (int)ctx->num_layers);
    if (ctx->num_steps < 1)
        return gem__fail(GEM_ERR_INCOMPLETE, "policy %s: the trace has no steps", name);
    int64_t total = 0;
    for (int32_t g = 0; g < ctx->num_gpus; g++) {
        if (ctx->slots[g] < 0)
            return gem__fail(GEM_ERR_INTERNAL, "policy %s: gpu %d has %d slots", name, (int)g,
                             (int)ctx->slots[g]);
        total += ctx->slots[g];
    }
    if (total < ctx->num_experts)
        return gem__fail(GEM_ERR_INFEASIBLE, "policy %s: layer %d: %lld slots for %d experts",
                         name, (int)layer, (long long)total, (int)ctx->num_experts);
    return GEM_OK;
}

/* Searches from the loaded assignment, evaluates the result from scratch (in canonical order)
 * and keeps it in best[E] if it beats *best_obj. cand[E] is scratch. */
static void gem__search_keep_better(gem__ls *L, const int32_t *order, int64_t max_moves,
                                    int focus, int32_t *cand, int32_t *best, gem__obj *best_obj)
{
    const size_t bytes = (size_t)L->E * sizeof *cand;
    gem__ls_search(L, order, max_moves, focus);
    memcpy(cand, L->gpu, bytes);
    gem__ls_set(L, cand);
    if (gem__obj_better(L, L->obj, *best_obj, 0)) {
        memcpy(best, cand, bytes);
        *best_obj = L->obj;
    }
}

/* Runs the search and leaves the best assignment found in best[E]. */
static gem_status_t gem__gem_search(const gem__map_ctx *ctx, int32_t layer, gem__ls *L,
                                    int32_t *best)
{
    const int32_t E = L->E, G = L->G;
    int32_t *order = gem__array((size_t)E, sizeof *order);
    int32_t *cand = gem__array((size_t)E, sizeof *cand);
    int32_t *used = gem__array((size_t)G, sizeof *used);
    double *pred = gem__array((size_t)G, sizeof *pred);
    double *held = gem__array((size_t)G, sizeof *held);
    double *coact = gem__array((size_t)G, sizeof *coact);
    gem__keyed *keyed = gem__array((size_t)E, sizeof *keyed);
    if (!order || !cand || !used || !pred || !held || !coact || !keyed) {
        free(order); free(cand); free(used); free(pred); free(held); free(coact); free(keyed);
        return GEM_ERR_NO_MEMORY;
    }
    gem__set_deadline(L, ctx);
    gem__order_by_mean(L, keyed, order);
    const int64_t max_moves = gem__opt_int(ctx->opts, GEM_OPT_MAX_ITERATIONS);
    gem__obj best_obj = {INFINITY, INFINITY};
    int have_best = 0;

    /* starting points: gem's own, balanced, speed_aware, each evaluated from scratch; the
     * search then improves the best of them only (searching from each as well cost twice
     * the time for a difference of a few hundredths of a percent, bench_gem), and its
     * result is evaluated from scratch again */
    gem_status_t st = GEM_OK;
    for (int start = 0; start < 3 && !st; start++) {
        int ok = 1;
        for (int32_t e = 0; e < E; e++) cand[e] = -1;
        if (start == 0)
            gem__start_gem(L, ctx, layer, order, keyed, cand, used, pred, held, coact);
        else
            st = gem__start_baseline(ctx, layer, start == 1 ? gem__policy_balanced
                                                            : gem__policy_speed_aware, cand, &ok);
        if (st || !ok) continue;
        gem__ls_set(L, cand);
        if (!have_best || gem__obj_better(L, L->obj, best_obj, 0)) {
            memcpy(best, L->gpu, (size_t)E * sizeof *best);
            best_obj = L->obj;
            have_best = 1;
        }
    }
    if (!st && have_best) {
        gem__ls_set(L, best);
        gem__search_keep_better(L, order, max_moves, 0, cand, best, &best_obj);
    }

    /* restarts: perturb the best, search, keep the better */
    gem__rng rng;
    uint64_t seed = (uint64_t)gem__opt_int(ctx->opts, GEM_OPT_SEED);
    gem__rng_seed(&rng, seed ^ ((uint64_t)(layer + 1) * 0x9E3779B97F4A7C15ULL));
    /* a restart is ceil(64 / E) rounds: on a small layer a round costs next to nothing and
     * one round explores little */
    const int64_t rounds = (64 + E - 1) / E;
    const int64_t restarts = gem__opt_int(ctx->opts, GEM_OPT_RESTARTS) * rounds;
    const int32_t k = gem__perturb_size(E);
    for (int64_t r = 0; r < restarts && G > 1 && !st && !gem__ls_timed_out(L); r++) {
        gem__ls_set(L, best);
        /* best is a local optimum: only what the kick touches is looked at again */
        memset(L->dirty, 0, (size_t)E);
        gem__ls_perturb(L, &rng, k);
        gem__search_keep_better(L, order, max_moves, 1, cand, best, &best_obj);
    }
    free(order); free(cand); free(used); free(pred); free(held); free(coact); free(keyed);
    return st;
}

gem_status_t gem__policy_gem(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out)
{
    gem_status_t st = gem__check_ctx(ctx, layer, "gem");
    if (st) return st;
    gem__ls L;
    if ((st = gem__ls_init(&L, ctx, layer))) return st;
    int32_t *best = gem__array((size_t)ctx->num_experts, sizeof *best);
    if (!best) { gem__ls_free(&L); return GEM_ERR_NO_MEMORY; }
    st = gem__gem_search(ctx, layer, &L, best);
    for (int32_t e = 0; e < ctx->num_experts && !st; e++)
        st = gem__layer_map_add(out, e, best[e], 1.0);
    free(best);
    gem__ls_free(&L);
    return st;
}
