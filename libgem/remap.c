/*
 * remap.c - migration-aware re-mapping (gem_remap) and drift (gem_drift), the experimental
 * part of gem.h.
 *
 * A mapping in service was built from an older trace; routing drifts. Re-mapping from scratch
 * would move most experts (gigabytes of weights per layer); gem_remap looks for the best
 * mapping within a migration budget instead:
 *
 *   - A move is an expert (of one layer) whose set of GPUs differs from the current mapping's;
 *     the bytes moved are GEM_OPT_EXPERT_BYTES per copy that lands on a GPU that did not hold
 *     that expert. Budgets: GEM_OPT_MAX_MOVES moves and GEM_OPT_MAX_MOVE_BYTES bytes over the
 *     whole mapping (-1: unlimited).
 *   - Search: greedy best improvement over swaps of two placements of a layer between their
 *     GPUs (slot counts, and so memory, stay as they are; shares travel with the copies). Each
 *     round takes, over all layers, the swap that lowers the predicted mean on the window the
 *     most among those that still fit the budget (a swap that puts an expert back where it
 *     was frees budget). Only swaps that touch a GPU that is the straggler in some step can
 *     lower a step's latency, so only those are scored, exactly, on the window's steps. Stops
 *     when nothing improves or fits, or after GEM_OPT_MAX_ITERATIONS swaps.
 *   - Reported: predicted mean step latency on the window keeping the current mapping, with
 *     the constrained re-map, and with an unconstrained one (policy gem on the window, with
 *     opts), all by gem_evaluate with opts; moves and bytes of the constrained one;
 *     recommend = 1 when it moves something and (current - remapped) / current >=
 *     GEM_OPT_MIN_GAIN. If the constrained mapping were not better than the current one under
 *     opts' model (the search scores compute time only), the current mapping is returned.
 */
#define GEM_EXPERIMENTAL
#include "beyond.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct gem_remap_result {
    double current_us, remapped_us, unconstrained_us;
    int64_t moves;
    uint64_t bytes;
    int32_t recommend;
    gem_mapping_t *mapping;
};

/* ---- move accounting ---------------------------------------------------------------------- */

/* The current mapping's GPUs of each expert of a layer (CSR). */
typedef struct {
    int32_t *off;             /* [E + 1] */
    int32_t *gpu;             /* [placements] */
} gem__orig;

static gem_status_t gem__orig_init(gem__orig *o, const gem__layer_map *lm, int32_t E)
{
    o->off = gem__array((size_t)E + 1, sizeof *o->off);
    o->gpu = gem__array(lm->n ? lm->n : 1, sizeof *o->gpu);
    int32_t *fill = gem__array((size_t)E, sizeof *fill);
    if (!o->off || !o->gpu || !fill) {
        free(o->off), free(o->gpu), free(fill);
        o->off = o->gpu = NULL;
        return GEM_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < lm->n; i++) o->off[lm->p[i].expert + 1]++;
    for (int32_t e = 0; e < E; e++) o->off[e + 1] += o->off[e];
    for (size_t i = 0; i < lm->n; i++) {
        int32_t e = lm->p[i].expert;
        o->gpu[o->off[e] + fill[e]++] = lm->p[i].gpu;
    }
    free(fill);
    return GEM_OK;
}

static int gem__orig_holds(const gem__orig *o, int32_t e, int32_t g)
{
    for (int32_t i = o->off[e]; i < o->off[e + 1]; i++)
        if (o->gpu[i] == g) return 1;
    return 0;
}

/* Whether expert e's GPUs in lm differ from the original ones, and how many of its copies
 * sit on GPUs that did not hold it. */
static void gem__expert_moved(const gem__orig *o, const gem__layer_map *lm, int32_t e,
                              int *moved, int64_t *fresh)
{
    int32_t n = 0;
    *fresh = 0;
    for (size_t i = 0; i < lm->n; i++) {
        if (lm->p[i].expert != e) continue;
        n++;
        if (!gem__orig_holds(o, e, lm->p[i].gpu)) (*fresh)++;
    }
    *moved = *fresh > 0 || n != o->off[e + 1] - o->off[e];
}

/* ---- the search --------------------------------------------------------------------------- */

typedef struct {
    gem__lstate st;
    gem__orig orig;
    gem__layer_map cand;
    int valid;                /* best below is up to date */
    double gain;              /* objective decrease of the best swap (> 0), or 0 */
    size_t bi, bj;            /* its placements */
    int64_t dmoves, dfresh;   /* what it adds to the moves and fresh copies */
} gem__rlayer;

typedef struct {
    int32_t L, E, G;
    gem__rlayer *layers;
    int64_t moves, fresh;     /* totals so far */
    int64_t max_moves;        /* -1: unlimited */
    double max_fresh;         /* copies the byte budget allows (INFINITY: unlimited) */
    uint8_t *strag;           /* [G] scratch: GPU is a straggler somewhere */
    int32_t *ncopies;         /* [E] scratch: copies of each expert in the layer */
    uint8_t *holds;           /* [E][G] scratch: GPU holds expert, or NULL when too large */
} gem__search;

static int gem__fits(const gem__search *r, int64_t dmoves, int64_t dfresh)
{
    if (r->max_moves >= 0 && r->moves + dmoves > r->max_moves) return 0;
    return (double)(r->fresh + dfresh) <= r->max_fresh;
}

/* Swaps the GPUs of placements i and j in lm. */
static void gem__swap(gem__layer_map *lm, size_t i, size_t j)
{
    int32_t g = lm->p[i].gpu;
    lm->p[i].gpu = lm->p[j].gpu;
    lm->p[j].gpu = g;
}

/* Moves and fresh copies a swap adds (experts a and b of the layer). */
static void gem__swap_cost(const gem__rlayer *rl, int32_t a, int32_t b, const gem__layer_map *after,
                           int64_t *dmoves, int64_t *dfresh)
{
    int ma0, mb0, ma1, mb1;
    int64_t fa0, fb0, fa1, fb1;
    gem__expert_moved(&rl->orig, &rl->st.lm, a, &ma0, &fa0);
    gem__expert_moved(&rl->orig, &rl->st.lm, b, &mb0, &fb0);
    gem__expert_moved(&rl->orig, after, a, &ma1, &fa1);
    gem__expert_moved(&rl->orig, after, b, &mb1, &fb1);
    *dmoves = (ma1 - ma0) + (mb1 - mb0);
    *dfresh = (fa1 - fa0) + (fb1 - fb0);
}

/* Largest experts x GPUs for which a table says which GPU holds which expert; past it the
 * placements are scanned. */
#define GEM__HOLDS_MAX ((size_t)1 << 22)

/* Whether a GPU other than via placements i and j holds expert e, in lm. */
static int gem__held_elsewhere(const gem__search *r, const gem__layer_map *lm, int32_t e,
                               int32_t g, size_t i, size_t j)
{
    if (r->holds) return r->holds[(size_t)e * (size_t)r->G + (size_t)g];
    for (size_t k = 0; k < lm->n; k++)
        if (k != i && k != j && lm->p[k].expert == e && lm->p[k].gpu == g) return 1;
    return 0;
}

/* What a swap adds to the moves and fresh copies. Experts with one copy now and before
 * (the usual case) are settled by comparing GPUs; others by scanning a trial copy. */
static gem_status_t gem__swap_budget(gem__search *r, gem__rlayer *rl, size_t i, size_t j,
                                     int64_t *dm, int64_t *df)
{
    const gem__layer_map *lm = &rl->st.lm;
    const gem__placement *a = &lm->p[i], *b = &lm->p[j];
    const gem__orig *o = &rl->orig;
    if (r->ncopies[a->expert] == 1 && r->ncopies[b->expert] == 1 &&
        o->off[a->expert + 1] - o->off[a->expert] == 1 &&
        o->off[b->expert + 1] - o->off[b->expert] == 1) {
        int32_t oa = o->gpu[o->off[a->expert]], ob = o->gpu[o->off[b->expert]];
        int64_t before = (a->gpu != oa) + (b->gpu != ob);
        int64_t after = (b->gpu != oa) + (a->gpu != ob);
        *dm = *df = after - before;
        return GEM_OK;
    }
    gem_status_t s2 = gem__layer_map_copy(&rl->cand, lm);
    if (s2) return s2;
    gem__swap(&rl->cand, i, j);
    gem__swap_cost(rl, a->expert, b->expert, &rl->cand, dm, df);
    return GEM_OK;
}

/* Best swap of one layer that fits the budget. */
static gem_status_t gem__best_swap(gem__search *r, gem__rlayer *rl)
{
    gem__lstate *st = &rl->st;
    const gem__layer_map *lm = &st->lm;
    const size_t P = lm->n;
    rl->valid = 1;
    rl->gain = 0;
    memset(r->strag, 0, (size_t)r->G);
    for (size_t s = 0; s < st->S; s++) r->strag[st->top[s * GEM__LS_TOP]] = 1;
    memset(r->ncopies, 0, (size_t)r->E * sizeof *r->ncopies);
    for (size_t k = 0; k < P; k++) r->ncopies[lm->p[k].expert]++;
    if (r->holds) {
        memset(r->holds, 0, (size_t)r->E * (size_t)r->G);
        for (size_t k = 0; k < P; k++)
            r->holds[(size_t)lm->p[k].expert * (size_t)r->G + (size_t)lm->p[k].gpu] = 1;
    }
    const double tol = 1e-9 * fmax(1.0, fabs(st->obj));
    gem_status_t s2;
    for (size_t i = 0; i < P; i++) {
        for (size_t j = i + 1; j < P; j++) {
            const gem__placement *a = &lm->p[i], *b = &lm->p[j];
            if (a->gpu == b->gpu || a->expert == b->expert) continue;
            if (!r->strag[a->gpu] && !r->strag[b->gpu]) continue;
            /* no GPU may hold an expert twice */
            if (gem__held_elsewhere(r, lm, a->expert, b->gpu, i, j) ||
                gem__held_elsewhere(r, lm, b->expert, a->gpu, i, j))
                continue;
            int64_t dm, df;
            if ((s2 = gem__swap_budget(r, rl, i, j, &dm, &df))) return s2;
            if (!gem__fits(r, dm, df)) continue;
            double gain;
            if (st->per_expert) {
                gain = -gem__lstate_swap_delta(st, i, j);
            } else {
                if ((s2 = gem__layer_map_copy(&rl->cand, lm))) return s2;
                gem__swap(&rl->cand, i, j);
                int32_t aff[2] = {a->gpu, b->gpu};
                gain = -gem__lstate_delta(st, &rl->cand, aff, 2);
            }
            if (gain > tol && gain > rl->gain) {
                rl->gain = gain;
                rl->bi = i, rl->bj = j;
                rl->dmoves = dm, rl->dfresh = df;
            }
        }
    }
    return GEM_OK;
}

static gem_status_t gem__search_run(gem__search *r, int64_t max_iter)
{
    gem_status_t s2;
    for (int64_t it = 0; it < max_iter; it++) {
        int32_t best = -1;
        for (int32_t l = 0; l < r->L; l++) {
            gem__rlayer *rl = &r->layers[l];
            if (rl->valid && rl->gain > 0 && !gem__fits(r, rl->dmoves, rl->dfresh)) rl->valid = 0;
            if (!rl->valid && (s2 = gem__best_swap(r, rl))) return s2;
            if (rl->gain > 0 && (best < 0 || rl->gain > r->layers[best].gain)) best = l;
        }
        if (best < 0) break;
        gem__rlayer *rl = &r->layers[best];
        if ((s2 = gem__layer_map_copy(&rl->cand, &rl->st.lm))) return s2;
        int32_t aff[2] = {rl->cand.p[rl->bi].gpu, rl->cand.p[rl->bj].gpu};
        gem__swap(&rl->cand, rl->bi, rl->bj);
        if ((s2 = gem__lstate_commit(&rl->st, &rl->cand, aff, 2))) return s2;
        r->moves += rl->dmoves;
        r->fresh += rl->dfresh;
        rl->valid = 0;
        /* budgets only shrink or grow with this layer's swap: others are re-checked above */
    }
    return GEM_OK;
}

static void gem__search_free(gem__search *r)
{
    if (r->layers)
        for (int32_t l = 0; l < r->L; l++) {
            gem__lstate_free(&r->layers[l].st);
            free(r->layers[l].orig.off), free(r->layers[l].orig.gpu), free(r->layers[l].cand.p);
        }
    free(r->layers);
    free(r->strag);
    free(r->ncopies);
    free(r->holds);
}

/* The constrained re-map of `current` on the window, as a new mapping. */
static gem_status_t gem__remap_search(const gem_profile_t *p, const gem_trace_t *w,
                                      const gem_mapping_t *cur, const gem_options_t *opts,
                                      gem_mapping_t **out, int64_t *moves, int64_t *fresh)
{
    gem__search r;
    memset(&r, 0, sizeof r);
    r.L = cur->num_layers, r.E = cur->num_experts, r.G = cur->num_gpus;
    r.max_moves = gem__opt_int(opts, GEM_OPT_MAX_MOVES);
    int64_t max_bytes = gem__opt_int(opts, GEM_OPT_MAX_MOVE_BYTES);
    int64_t eb = gem__opt_int(opts, GEM_OPT_EXPERT_BYTES);
    r.max_fresh = max_bytes < 0 ? INFINITY : floor((double)max_bytes / (double)eb);
    r.layers = gem__array((size_t)r.L, sizeof *r.layers);
    r.strag = gem__array((size_t)r.G, 1);
    r.ncopies = gem__array((size_t)r.E, sizeof *r.ncopies);
    if ((size_t)r.E * (size_t)r.G <= GEM__HOLDS_MAX) r.holds = gem__array((size_t)r.E * (size_t)r.G, 1);
    gem_status_t st = (!r.layers || !r.strag || !r.ncopies ||
                       ((size_t)r.E * (size_t)r.G <= GEM__HOLDS_MAX && !r.holds))
                          ? GEM_ERR_NO_MEMORY : GEM_OK;
    for (int32_t l = 0; l < r.L && !st; l++) {
        gem__rlayer *rl = &r.layers[l];
        if (!(st = gem__lstate_init(&rl->st, p, w, l)) &&
            !(st = gem__orig_init(&rl->orig, &cur->layers[l], r.E)))
            st = gem__lstate_set(&rl->st, &cur->layers[l]);
    }
    if (!st) st = gem__search_run(&r, gem__opt_int(opts, GEM_OPT_MAX_ITERATIONS));
    gem_mapping_t *m = NULL;
    if (!st) st = gem_mapping_clone(cur, &m);
    for (int32_t l = 0; l < r.L && !st; l++)
        st = gem__layer_map_copy(&m->layers[l], &r.layers[l].st.lm);
    if (!st) st = gem_mapping_set_policy_name(m, "remap");
    if (!st) {
        *out = m;
        *moves = r.moves;
        *fresh = r.fresh;
    } else {
        gem_mapping_destroy(m);
    }
    gem__search_free(&r);
    return st;
}

/* ---- public interface --------------------------------------------------------------------- */

static gem_status_t gem__mean(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m,
                              const gem_options_t *opts, double *mean)
{
    gem_report_t *rep = NULL;
    gem_status_t st = gem_evaluate(p, t, m, opts, &rep);
    if (!st) st = gem_report_get(rep, GEM_METRIC_MEAN, mean);
    gem_report_destroy(rep);
    return st;
}

GEM_API gem_status_t gem_remap(const gem_profile_t *profile, const gem_trace_t *window,
                               const gem_mapping_t *current, const gem_options_t *opts,
                               gem_remap_result_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(profile && window && current && out,
                   "gem_remap: profile, window, current and out must not be NULL");
    gem_status_t st = gem__check_shapes(profile, window, current);
    if (st) return st;
    if ((st = gem__profile_check_ready(profile))) return st;
    if ((st = gem_trace_validate(window))) return st;
    if ((st = gem_mapping_validate(current))) return gem__fail_context(st, "gem_remap: current");
    if (gem__opt_int(opts, GEM_OPT_MAX_MOVE_BYTES) >= 0 &&
        gem__opt_int(opts, GEM_OPT_EXPERT_BYTES) <= 0)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT,
                         "gem_remap: GEM_OPT_MAX_MOVE_BYTES needs GEM_OPT_EXPERT_BYTES (the "
                         "bytes of one expert)");
    gem_remap_result_t *res = gem__calloc(1, sizeof *res);
    if (!res) return GEM_ERR_NO_MEMORY;
    gem_mapping_t *unc = NULL;
    int64_t moves = 0, fresh = 0;
    if ((st = gem__mean(profile, window, current, opts, &res->current_us))) goto fail;
    if ((st = gem_compute_mapping(profile, window, GEM_POLICY_GEM, opts, NULL, &unc)) ||
        (st = gem__mean(profile, window, unc, opts, &res->unconstrained_us))) {
        st = gem__fail_context(st, "gem_remap: unconstrained re-map");
        goto fail;
    }
    if ((st = gem__remap_search(profile, window, current, opts, &res->mapping, &moves, &fresh)))
        goto fail;
    if ((st = gem__mean(profile, window, res->mapping, opts, &res->remapped_us))) goto fail;
    if (!(res->remapped_us < res->current_us)) {
        /* nothing better within the budget (or not under opts' model): keep the current */
        gem_mapping_destroy(res->mapping);
        res->mapping = NULL;
        if ((st = gem_mapping_clone(current, &res->mapping))) goto fail;
        res->remapped_us = res->current_us;
        moves = fresh = 0;
    }
    res->moves = moves;
    res->bytes = (uint64_t)fresh * (uint64_t)gem__opt_int(opts, GEM_OPT_EXPERT_BYTES);
    res->recommend = moves > 0 && res->current_us > 0 &&
                     (res->current_us - res->remapped_us) / res->current_us >=
                         gem__opt_double(opts, GEM_OPT_MIN_GAIN);
    gem_mapping_destroy(unc);
    *out = res;
    return GEM_OK;
fail:
    gem_mapping_destroy(unc);
    gem_remap_result_destroy(res);
    return st;
}

GEM_API void gem_remap_result_destroy(gem_remap_result_t *res)
{
    if (!res) return;
    gem_mapping_destroy(res->mapping);
    free(res);
}

GEM_API gem_status_t gem_remap_result_get(const gem_remap_result_t *res, double *current_us,
                                          double *remapped_us, double *unconstrained_us,
                                          int64_t *moves, uint64_t *bytes_moved,
                                          int32_t *recommend)
{
    gem__clear_error();
    GEM__CHECK_ARG(res, "gem_remap_result_get: result is NULL");
    if (current_us) *current_us = res->current_us;
    if (remapped_us) *remapped_us = res->remapped_us;
    if (unconstrained_us) *unconstrained_us = res->unconstrained_us;
    if (moves) *moves = res->moves;
    if (bytes_moved) *bytes_moved = res->bytes;
    if (recommend) *recommend = res->recommend;
    return GEM_OK;
}

GEM_API gem_status_t gem_remap_result_mapping(const gem_remap_result_t *res,
                                              const gem_mapping_t **mapping)
{
    gem__clear_error();
    GEM__CHECK_ARG(res && mapping, "gem_remap_result_mapping: NULL argument");
    *mapping = res->mapping;
    return GEM_OK;
}

GEM_API gem_status_t gem_drift(const gem_profile_t *profile, const gem_trace_t *built_on,
                               const gem_trace_t *window, const gem_mapping_t *mapping,
                               double *ratio)
{
    gem__clear_error();
    GEM__CHECK_ARG(profile && built_on && window && mapping && ratio,
                   "gem_drift: NULL argument");
    double before, after;
    gem_status_t st = gem__mean(profile, built_on, mapping, NULL, &before);
    if (st) return gem__fail_context(st, "gem_drift: built_on");
    if ((st = gem__mean(profile, window, mapping, NULL, &after)))
        return gem__fail_context(st, "gem_drift: window");
    if (!(before > 0)) {
        if (after == before) {
            *ratio = 1.0;
            return GEM_OK;
        }
        return gem__fail(GEM_ERR_INVALID_INPUT,
                         "gem_drift: the mapping's mean step latency on built_on is %g us, so "
                         "no ratio exists", before);
    }
    *ratio = after / before;
    return GEM_OK;
}
