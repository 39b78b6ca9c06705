/*
 * trace.c - the trace handle: tokens per expert for every (step, layer), built in memory.
 * File reading and writing live in io_trace.c, importers in import.c.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

GEM_API gem_status_t gem_trace_create(gem_trace_t **out, int32_t num_layers, int32_t num_experts)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_trace_create: out is NULL");
    GEM__CHECK_ARG(num_layers >= 1 && num_experts >= 1,
                   "gem_trace_create: %d layers and %d experts, both must be >= 1",
                   (int)num_layers, (int)num_experts);
    if (num_layers > GEM_MAX_LAYERS || num_experts > GEM_MAX_EXPERTS)
        return gem__fail(GEM_ERR_LIMIT, "gem_trace_create: %d layers x %d experts exceeds %d x %d",
                         (int)num_layers, (int)num_experts, GEM_MAX_LAYERS, GEM_MAX_EXPERTS);
    /* One step holds layers x experts loads; a tiny malformed file naming layer 6000 and
     * expert 60000 must not make us reserve gigabytes for it. */
    if ((int64_t)num_layers * num_experts > GEM_MAX_LOADS_PER_STEP)
        return gem__fail(GEM_ERR_LIMIT,
                         "gem_trace_create: %d layers x %d experts = %lld loads per step, at most %d",
                         (int)num_layers, (int)num_experts,
                         (long long)num_layers * num_experts, GEM_MAX_LOADS_PER_STEP);
    gem_trace_t *t = gem__calloc(1, sizeof *t);
    if (!t) return GEM_ERR_NO_MEMORY;
    t->num_layers = num_layers;
    t->num_experts = num_experts;
    *out = t;
    return GEM_OK;
}

GEM_API void gem_trace_destroy(gem_trace_t *t)
{
    if (!t) return;
    free(t->loads);
    free(t->present);
    free(t);
}

gem_status_t gem__trace_reserve(gem_trace_t *t, int64_t steps)
{
    if (steps <= t->cap_steps) return GEM_OK;
    if (steps > GEM_MAX_STEPS)
        return gem__fail(GEM_ERR_LIMIT, "trace: %lld steps, at most %d", (long long)steps,
                         GEM_MAX_STEPS);
    int64_t cap = t->cap_steps ? t->cap_steps : 1; /* exact for one-shot imports */
    while (cap < steps) cap *= 2;
    if (cap > GEM_MAX_STEPS) cap = GEM_MAX_STEPS;
    size_t row = (size_t)t->num_layers * (size_t)t->num_experts;
    if ((size_t)cap > SIZE_MAX / sizeof(double) / row)
        return gem__fail(GEM_ERR_LIMIT, "trace: %lld steps of %zu values do not fit in memory",
                         (long long)cap, row);
    double *loads = gem__realloc(t->loads, (size_t)cap * row * sizeof(double));
    if (!loads) return GEM_ERR_NO_MEMORY;
    t->loads = loads;
    uint8_t *present = gem__realloc(t->present, (size_t)cap * (size_t)t->num_layers);
    if (!present) return GEM_ERR_NO_MEMORY;
    t->present = present;
    size_t old = (size_t)t->cap_steps;
    memset(t->loads + old * row, 0, ((size_t)cap - old) * row * sizeof(double));
    memset(t->present + old * (size_t)t->num_layers, 0,
           ((size_t)cap - old) * (size_t)t->num_layers);
    t->cap_steps = cap;
    return GEM_OK;
}

GEM_API gem_status_t gem_trace_clone(const gem_trace_t *src, gem_trace_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(src && out, "gem_trace_clone: NULL argument");
    return gem_trace_slice(src, 0, src->num_steps, out);
}

static gem_status_t gem__check_row(const gem_trace_t *t, int64_t step, int32_t layer)
{
    GEM__CHECK_ARG(t, "trace handle is NULL");
    if (step < 0 || step >= GEM_MAX_STEPS)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "step %lld outside [0, %d)", (long long)step,
                         GEM_MAX_STEPS);
    if (layer < 0 || layer >= t->num_layers)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "layer %d outside [0, %d)", (int)layer,
                         (int)t->num_layers);
    return GEM_OK;
}

static double *gem__row_mut(gem_trace_t *t, int64_t s, int32_t l)
{
    return (double *)gem__trace_row(t, s, l);
}

static void gem__mark(gem_trace_t *t, int64_t step, int32_t layer)
{
    t->present[(size_t)step * (size_t)t->num_layers + (size_t)layer] = 1;
    if (step >= t->num_steps) t->num_steps = step + 1;
}

GEM_API gem_status_t gem_trace_set(gem_trace_t *t, int64_t step, int32_t layer,
                                   const double *loads, size_t n)
{
    gem__clear_error();
    gem_status_t st = gem__check_row(t, step, layer);
    if (st) return st;
    GEM__CHECK_ARG(loads, "gem_trace_set: loads is NULL");
    if (n != (size_t)t->num_experts)
        return gem__fail(GEM_ERR_SHAPE_MISMATCH, "gem_trace_set: %zu loads for %d experts", n,
                         (int)t->num_experts);
    for (size_t e = 0; e < n; e++)
        if (!isfinite(loads[e]) || loads[e] < 0)
            return gem__fail(GEM_ERR_INVALID_INPUT,
                             "step %lld layer %d expert %zu: load %g must be finite and >= 0",
                             (long long)step, (int)layer, e, loads[e]);
    if ((st = gem__trace_reserve(t, step + 1))) return st;
    memcpy(gem__row_mut(t, step, layer), loads, n * sizeof *loads);
    gem__mark(t, step, layer);
    return GEM_OK;
}

GEM_API gem_status_t gem_trace_record(gem_trace_t *t, int64_t step, int32_t layer,
                                      const int32_t *topk_ids, size_t n_tokens, int32_t k)
{
    gem__clear_error();
    gem_status_t st = gem__check_row(t, step, layer);
    if (st) return st;
    GEM__CHECK_ARG(k >= 1, "gem_trace_record: k = %d must be >= 1", (int)k);
    GEM__CHECK_ARG(n_tokens == 0 || topk_ids, "gem_trace_record: topk_ids is NULL");
    GEM__CHECK_ARG(n_tokens <= SIZE_MAX / (size_t)k, "gem_trace_record: n_tokens x k overflows");
    size_t n = n_tokens * (size_t)k;
    /* Check every id first, so that an error adds nothing. */
    for (size_t i = 0; i < n; i++)
        if (topk_ids[i] >= t->num_experts)
            return gem__fail(GEM_ERR_OUT_OF_RANGE,
                             "gem_trace_record: token %zu choice %zu is expert %d, outside [0, %d)",
                             i / (size_t)k, i % (size_t)k, (int)topk_ids[i], (int)t->num_experts);
    if ((st = gem__trace_reserve(t, step + 1))) return st;
    double *row = gem__row_mut(t, step, layer);
    for (size_t i = 0; i < n; i++)
        if (topk_ids[i] >= 0) row[topk_ids[i]] += 1.0;
    gem__mark(t, step, layer);
    return GEM_OK;
}

GEM_API gem_status_t gem_trace_shape(const gem_trace_t *t, int64_t *num_steps,
                                     int32_t *num_layers, int32_t *num_experts)
{
    gem__clear_error();
    GEM__CHECK_ARG(t, "trace handle is NULL");
    if (num_steps) *num_steps = t->num_steps;
    if (num_layers) *num_layers = t->num_layers;
    if (num_experts) *num_experts = t->num_experts;
    return GEM_OK;
}

GEM_API gem_status_t gem_trace_get(const gem_trace_t *t, int64_t step, int32_t layer,
                                   double *loads, size_t n)
{
    gem__clear_error();
    gem_status_t st = gem__check_row(t, step, layer);
    if (st) return st;
    GEM__CHECK_ARG(loads, "gem_trace_get: loads is NULL");
    if (step >= t->num_steps)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "step %lld outside [0, %lld)", (long long)step,
                         (long long)t->num_steps);
    if (n < (size_t)t->num_experts)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT, "gem_trace_get: room for %zu of %d loads", n,
                         (int)t->num_experts);
    memcpy(loads, gem__trace_row(t, step, layer), (size_t)t->num_experts * sizeof *loads);
    return GEM_OK;
}

GEM_API gem_status_t gem_trace_validate(const gem_trace_t *t)
{
    gem__clear_error();
    GEM__CHECK_ARG(t, "trace handle is NULL");
    if (t->num_steps == 0) return gem__fail(GEM_ERR_INCOMPLETE, "trace has no steps");
    for (int64_t s = 0; s < t->num_steps; s++)
        for (int32_t l = 0; l < t->num_layers; l++)
            if (!t->present[(size_t)s * (size_t)t->num_layers + (size_t)l])
                return gem__fail(GEM_ERR_INCOMPLETE, "trace: row for step %lld layer %d is missing",
                                 (long long)s, (int)l);
    return GEM_OK;
}

GEM_API gem_status_t gem_trace_slice(const gem_trace_t *t, int64_t first, int64_t count,
                                     gem_trace_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(t && out, "gem_trace_slice: NULL argument");
    if (first < 0 || count < 0 || first > t->num_steps || count > t->num_steps - first)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "gem_trace_slice: steps [%lld, %lld) outside [0, %lld)",
                         (long long)first, (long long)(first + count), (long long)t->num_steps);
    gem_trace_t *n;
    gem_status_t st = gem_trace_create(&n, t->num_layers, t->num_experts);
    if (st) return st;
    if (count && (st = gem__trace_reserve(n, count))) { gem_trace_destroy(n); return st; }
    size_t row = (size_t)t->num_layers * (size_t)t->num_experts;
    if (count) {
        memcpy(n->loads, t->loads + (size_t)first * row, (size_t)count * row * sizeof(double));
        memcpy(n->present, t->present + (size_t)first * (size_t)t->num_layers,
               (size_t)count * (size_t)t->num_layers);
    }
    n->num_steps = count;
    *out = n;
    return GEM_OK;
}
