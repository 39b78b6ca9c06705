/*
 * classify.c - GEM's classification of experts from a routing trace.
 *
 * Definitions (per layer l, with the options' defaults in brackets):
 *
 *  - heavy: expert e is heavy in step s when its load n[s][l][e] is strictly greater than
 *    GEM_OPT_HEAVY_FACTOR [1.0] x the mean expert load of layer l in step s
 *    (sum over e of n[s][l][e] / E). A step in which every load is 0 has no heavy expert.
 *  - heavy_fraction = (steps in which e is heavy) / S.
 *  - class: consistent if heavy_fraction >= GEM_OPT_CONSISTENT_MIN [0.5]; else temporal if
 *    heavy_fraction >= GEM_OPT_TEMPORAL_MIN [0.05] and heavy_fraction > 0; else cold.
 *    (TEMPORAL_MIN must not exceed CONSISTENT_MIN; an expert that is never heavy is always
 *    cold, even with TEMPORAL_MIN = 0.)
 *  - mean_load: mean of n[s][l][e] over all S steps; mean_heavy_load: mean over the steps in
 *    which e was heavy (0 if none).
 *  - co-activation of (a, b): steps in which both a and b are heavy; (a, a) counts the steps
 *    in which a is heavy. Stored per layer as a packed upper triangle of uint32 (S is at most
 *    GEM_MAX_STEPS < 2^32).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest number of co-activation counters (all layers together) we allocate: 2^28 uint32
 * = 1 GiB. E = 256 needs 32,896 per layer, so even thousands of such layers fit. */
#define GEM__COACT_MAX ((size_t)1 << 28)

struct gem_classification {
    int64_t num_steps;
    int32_t num_layers, num_experts;
    uint8_t *cls;             /* [L][E] gem_expert_class_t */
    double *heavy_fraction;   /* [L][E] */
    double *mean_load;        /* [L][E] */
    double *mean_heavy_load;  /* [L][E] */
    uint32_t *coact;          /* [L][E(E+1)/2] packed upper triangle, row-major */
};

static size_t gem__tri_size(size_t E) { return E * (E + 1) / 2; }

/* Index of (a, b), a <= b, in a packed upper triangle of size E: rows a = 0.. hold b = a..E-1. */
static size_t gem__tri_index(size_t E, size_t a, size_t b)
{
    return a * (2 * E - a + 1) / 2 + (b - a);
}

GEM_API void gem_classification_destroy(gem_classification_t *c)
{
    if (!c) return;
    free(c->cls);
    free(c->heavy_fraction);
    free(c->mean_load);
    free(c->mean_heavy_load);
    free(c->coact);
    free(c);
}

static gem_status_t gem__classify_options(const gem_options_t *opts, double *factor,
                                          double *cons_min, double *temp_min)
{
    *factor = gem__opt_double(opts, GEM_OPT_HEAVY_FACTOR);
    *cons_min = gem__opt_double(opts, GEM_OPT_CONSISTENT_MIN);
    *temp_min = gem__opt_double(opts, GEM_OPT_TEMPORAL_MIN);
    /* the setters bound each value; only their combination is left to check */
    if (*temp_min > *cons_min)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT,
                         "gem_classify_experts: temporal_min %g exceeds consistent_min %g",
                         *temp_min, *cons_min);
    return GEM_OK;
}

/* Classifies one layer. heavy[E] and heavy_ids[E] are scratch. */
static void gem__classify_layer(const gem_trace_t *t, int32_t l, double factor, double cons_min,
                                double temp_min, gem_classification_t *c, int64_t *heavy_steps,
                                int32_t *heavy_ids)
{
    const size_t E = (size_t)t->num_experts;
    const size_t base = (size_t)l * E;
    uint32_t *tri = c->coact + (size_t)l * gem__tri_size(E);
    double *sum = c->mean_load + base, *hsum = c->mean_heavy_load + base;
    memset(heavy_steps, 0, E * sizeof *heavy_steps);
    for (int64_t s = 0; s < t->num_steps; s++) {
        const double *row = gem__trace_row(t, s, l);
        double total = 0;
        for (size_t e = 0; e < E; e++) total += row[e];
        const double threshold = factor * total / (double)E;
        size_t nh = 0;
        for (size_t e = 0; e < E; e++) {
            sum[e] += row[e];
            if (row[e] > threshold) {
                heavy_ids[nh++] = (int32_t)e;
                heavy_steps[e]++;
                hsum[e] += row[e];
            }
        }
        /* heavy_ids is ascending, so (heavy_ids[i], heavy_ids[j]) with i <= j is (a <= b) */
        for (size_t i = 0; i < nh; i++)
            for (size_t j = i; j < nh; j++)
                tri[gem__tri_index(E, (size_t)heavy_ids[i], (size_t)heavy_ids[j])]++;
    }
    const double S = (double)t->num_steps;
    for (size_t e = 0; e < E; e++) {
        double frac = (double)heavy_steps[e] / S;
        c->heavy_fraction[base + e] = frac;
        sum[e] /= S;
        hsum[e] = heavy_steps[e] ? hsum[e] / (double)heavy_steps[e] : 0.0;
        gem_expert_class_t k = GEM_CLASS_COLD;
        if (heavy_steps[e] > 0 && frac >= cons_min) k = GEM_CLASS_CONSISTENT;
        else if (heavy_steps[e] > 0 && frac >= temp_min) k = GEM_CLASS_TEMPORAL;
        c->cls[base + e] = (uint8_t)k;
    }
}

GEM_API gem_status_t gem_classify_experts(const gem_trace_t *trace, const gem_options_t *opts,
                                          gem_classification_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(trace && out, "gem_classify_experts: trace or out is NULL");
    if (!opts) opts = gem__default_options();
    double factor, cons_min, temp_min;
    gem_status_t st = gem__classify_options(opts, &factor, &cons_min, &temp_min);
    if (st) return st;
    if ((st = gem_trace_validate(trace)))
        return gem__fail_context(st, "gem_classify_experts");

    const size_t L = (size_t)trace->num_layers, E = (size_t)trace->num_experts;
    const size_t tri = gem__tri_size(E);
    if (tri > GEM__COACT_MAX / L)
        return gem__fail(GEM_ERR_LIMIT,
                         "gem_classify_experts: %zu layers x %zu experts need %zu x %zu "
                         "co-activation counters, at most %zu in all", L, E, L, tri,
                         GEM__COACT_MAX);

    gem_classification_t *c = gem__calloc(1, sizeof *c);
    if (!c) return GEM_ERR_NO_MEMORY;
    c->num_steps = trace->num_steps;
    c->num_layers = trace->num_layers;
    c->num_experts = trace->num_experts;
    c->cls = gem__array(L * E, 1);
    c->heavy_fraction = gem__array(L * E, sizeof(double));
    c->mean_load = gem__array(L * E, sizeof(double));
    c->mean_heavy_load = gem__array(L * E, sizeof(double));
    c->coact = gem__array(L * tri, sizeof(uint32_t));
    int64_t *heavy_steps = gem__array(E, sizeof *heavy_steps);
    int32_t *heavy_ids = gem__array(E, sizeof *heavy_ids);
    if (!c->cls || !c->heavy_fraction || !c->mean_load || !c->mean_heavy_load || !c->coact ||
        !heavy_steps || !heavy_ids) {
        free(heavy_steps);
        free(heavy_ids);
        gem_classification_destroy(c);
        return GEM_ERR_NO_MEMORY;
    }
    for (size_t l = 0; l < L; l++)
        gem__classify_layer(trace, (int32_t)l, factor, cons_min, temp_min, c, heavy_steps,
                            heavy_ids);
    free(heavy_steps);
    free(heavy_ids);
    *out = c;
    return GEM_OK;
}

GEM_API gem_status_t gem_classification_shape(const gem_classification_t *c,
                                              int64_t *num_steps, int32_t *num_layers,
                                              int32_t *num_experts)
{
    gem__clear_error();
    GEM__CHECK_ARG(c, "gem_classification_shape: classification handle is NULL");
    if (num_steps) *num_steps = c->num_steps;
    if (num_layers) *num_layers = c->num_layers;
    if (num_experts) *num_experts = c->num_experts;
    return GEM_OK;
}

static gem_status_t gem__check_expert(const gem_classification_t *c, const char *fn,
                                      int32_t layer, int32_t expert)
{
    GEM__CHECK_ARG(c, "%s: classification handle is NULL", fn);
    if (layer < 0 || layer >= c->num_layers)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "%s: layer %d outside [0, %d)", fn, (int)layer,
                         (int)c->num_layers);
    if (expert < 0 || expert >= c->num_experts)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "%s: expert %d outside [0, %d)", fn,
                         (int)expert, (int)c->num_experts);
    return GEM_OK;
}

GEM_API gem_status_t gem_classification_get(const gem_classification_t *c, int32_t layer,
                                            int32_t expert, gem_expert_class_t *cls_out,
                                            double *heavy_fraction, double *mean_load,
                                            double *mean_heavy_load)
{
    gem__clear_error();
    gem_status_t st = gem__check_expert(c, "gem_classification_get", layer, expert);
    if (st) return st;
    size_t i = (size_t)layer * (size_t)c->num_experts + (size_t)expert;
    if (cls_out) *cls_out = (gem_expert_class_t)c->cls[i];
    if (heavy_fraction) *heavy_fraction = c->heavy_fraction[i];
    if (mean_load) *mean_load = c->mean_load[i];
    if (mean_heavy_load) *mean_heavy_load = c->mean_heavy_load[i];
    return GEM_OK;
}

GEM_API gem_status_t gem_classification_coactivation(const gem_classification_t *c,
                                                     int32_t layer, int32_t a, int32_t b,
                                                     int64_t *steps)
{
    gem__clear_error();
    const char *fn = "gem_classification_coactivation";
    gem_status_t st = gem__check_expert(c, fn, layer, a);
    if (!st) st = gem__check_expert(c, fn, layer, b);
    if (st) return st;
    GEM__CHECK_ARG(steps, "%s: steps is NULL", fn);
    *steps = (int64_t)gem__cls_coactivation(c, layer, a, b);
    return GEM_OK;
}

GEM_API const char *gem_class_name(gem_expert_class_t cls)
{
    switch (cls) {
    case GEM_CLASS_COLD: return "cold";
    case GEM_CLASS_CONSISTENT: return "consistent";
    case GEM_CLASS_TEMPORAL: return "temporal";
    }
    return "unknown";
}

/* ---- internal accessors (internal.h), no checks: callers pass ids in range ------------- */

gem_expert_class_t gem__cls_class(const gem_classification_t *c, int32_t layer, int32_t e)
{
    return (gem_expert_class_t)c->cls[(size_t)layer * (size_t)c->num_experts + (size_t)e];
}

double gem__cls_mean_load(const gem_classification_t *c, int32_t layer, int32_t e)
{
    return c->mean_load[(size_t)layer * (size_t)c->num_experts + (size_t)e];
}

double gem__cls_mean_heavy_load(const gem_classification_t *c, int32_t layer, int32_t e)
{
    return c->mean_heavy_load[(size_t)layer * (size_t)c->num_experts + (size_t)e];
}

uint32_t gem__cls_coactivation(const gem_classification_t *c, int32_t layer, int32_t a,
                               int32_t b)
{
    size_t E = (size_t)c->num_experts;
    if (a > b) { int32_t x = a; a = b; b = x; }
    return c->coact[(size_t)layer * gem__tri_size(E) + gem__tri_index(E, (size_t)a, (size_t)b)];
}
