/*
 * profile.c - the profile handle: per-GPU latency curves and the SPEC 2 curve function f_g.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Step lookup tables are built only up to this many tokens (8 MB a GPU); past it the binary
 * search serves. */
#define GEM__LUT_MAX 1048576

void gem__curve_free(gem__curve *c)
{
    free(c->tokens);
    free(c->latency);
    free(c->cv);
    free(c->lut);
    memset(c, 0, sizeof *c);
}

/* Smallest index i with tokens[i] >= x, or k when none. */
static size_t gem__curve_lower_bound(const gem__curve *c, double x)
{
    size_t lo = 0, hi = c->k;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((double)c->tokens[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

double gem__curve_eval(const gem__curve *c, gem_interpolation_t interp, double x)
{
    if (!(x > 0)) return 0.0;
    size_t k = c->k;
    double nk = (double)c->tokens[k - 1];
    if (x > nk) {
        if (k == 1) return c->latency[0] * x / (double)c->tokens[0];
        return c->latency[k - 1] + (x - nk) * c->tail_slope;
    }
    size_t i = gem__curve_lower_bound(c, x); /* tokens[i] >= x, i < k */
    if (interp == GEM_INTERP_STEP || i == 0) return c->latency[i];
    double x0 = (double)c->tokens[i - 1], x1 = (double)c->tokens[i];
    double y0 = c->latency[i - 1], y1 = c->latency[i];
    /* Weighted form: both terms are non-negative, so samples of very different magnitude do
     * not cancel (y0 + (x-x0)*(y1-y0)/(x1-x0) returns 0 at x = x1 for y0 = 3e20, y1 = 250). */
    if (x == x1) return y1;
    return (y0 * (x1 - x) + y1 * (x - x0)) / (x1 - x0);
}

gem_status_t gem__curve_prepare(gem__curve *c, gem_interpolation_t interp)
{
    free(c->lut);
    c->lut = NULL;
    c->lut_n = 0;
    size_t k = c->k;
    c->tail_slope = k >= 2 ? (c->latency[k - 1] - c->latency[k - 2]) /
                                 (double)(c->tokens[k - 1] - c->tokens[k - 2])
                           : c->latency[0] / (double)c->tokens[0];
    /* inf f(x)/x: on each piece f(x)/x is monotone, so the infimum is at a sample or at
     * infinity (the tail slope). */
    double rate = INFINITY;
    for (size_t i = 0; i < k; i++) rate = fmin(rate, c->latency[i] / (double)c->tokens[i]);
    rate = fmin(rate, c->tail_slope);
    c->min_rate = rate > 0 ? rate : 0.0;

    int64_t nk = c->tokens[k - 1];
    /* The table costs 8 bytes a token up to the last sample; build it only when that stays
     * within a small multiple of the samples themselves, so that a few bytes of profile
     * ("tokens": [1048575]) cannot claim megabytes per GPU. */
    if (interp == GEM_INTERP_STEP && nk < GEM__LUT_MAX && (uint64_t)nk <= 256 * (uint64_t)k) {
        c->lut_n = (size_t)nk + 1;
        c->lut = gem__array(c->lut_n, sizeof(double));
        if (!c->lut) { c->lut_n = 0; return GEM_ERR_NO_MEMORY; }
        size_t i = 0;
        c->lut[0] = 0.0;
        for (size_t x = 1; x < c->lut_n; x++) {
            while ((size_t)c->tokens[i] < x) i++;
            c->lut[x] = c->latency[i];
        }
    }
    return GEM_OK;
}

gem_status_t gem__curve_set(gem__curve *c, size_t k, const int64_t *tokens,
                            const double *latency, const double *cv, const char *where)
{
    if (k < 1) return gem__fail(GEM_ERR_INVALID_INPUT, "%s: curve has no samples", where);
    if (k > GEM_MAX_CURVE_POINTS)
        return gem__fail(GEM_ERR_LIMIT, "%s: %zu curve samples, at most %d", where, k,
                         GEM_MAX_CURVE_POINTS);
    if (!tokens || !latency)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT, "%s: tokens or latencies is NULL", where);
    for (size_t i = 0; i < k; i++) {
        if (tokens[i] < 1 || tokens[i] > GEM_MAX_TOKENS)
            return gem__fail(GEM_ERR_INVALID_INPUT, "%s: tokens[%zu] = %lld outside [1, %d]",
                             where, i, (long long)tokens[i], GEM_MAX_TOKENS);
        if (i > 0 && tokens[i] <= tokens[i - 1])
            return gem__fail(GEM_ERR_INVALID_INPUT,
                             "%s: tokens not strictly ascending at index %zu (%lld after %lld)",
                             where, i, (long long)tokens[i], (long long)tokens[i - 1]);
        if (!isfinite(latency[i]) || latency[i] <= 0)
            return gem__fail(GEM_ERR_INVALID_INPUT,
                             "%s: latency_us[%zu] = %g must be finite and > 0", where, i,
                             latency[i]);
        if (cv && (!isfinite(cv[i]) || cv[i] < 0))
            return gem__fail(GEM_ERR_INVALID_INPUT, "%s: cv[%zu] = %g must be finite and >= 0",
                             where, i, cv[i]);
    }
    gem__curve n = {0};
    n.k = k;
    n.tokens = gem__array(k, sizeof *n.tokens);
    n.latency = gem__array(k, sizeof *n.latency);
    n.cv = cv ? gem__array(k, sizeof *n.cv) : NULL;
    if (!n.tokens || !n.latency || (cv && !n.cv)) {
        gem__curve_free(&n);
        return GEM_ERR_NO_MEMORY;
    }
    memcpy(n.tokens, tokens, k * sizeof *tokens);
    memcpy(n.latency, latency, k * sizeof *latency);
    if (cv) memcpy(n.cv, cv, k * sizeof *cv);
    gem__curve_free(c);
    *c = n;
    return GEM_OK;
}

/* ---- handle ------------------------------------------------------------------------------ */

GEM_API gem_status_t gem_profile_create(gem_profile_t **out, int32_t num_gpus)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_profile_create: out is NULL");
    if (num_gpus < 1) return gem__fail(GEM_ERR_INVALID_ARGUMENT, "num_gpus %d < 1", (int)num_gpus);
    if (num_gpus > GEM_MAX_GPUS)
        return gem__fail(GEM_ERR_LIMIT, "num_gpus %d > %d", (int)num_gpus, GEM_MAX_GPUS);
    gem_profile_t *p = gem__calloc(1, sizeof *p);
    if (!p) return GEM_ERR_NO_MEMORY;
    p->gpus = gem__array((size_t)num_gpus, sizeof *p->gpus);
    if (!p->gpus) { free(p); return GEM_ERR_NO_MEMORY; }
    p->num_gpus = num_gpus;
    for (int32_t g = 0; g < num_gpus; g++) {
        p->gpus[g].numa_node = -1;
        p->gpus[g].memory_bytes = -1;
    }
    p->interpolation = GEM_INTERP_STEP;
    p->cost_model = GEM_COST_PER_EXPERT;
    *out = p;
    return GEM_OK;
}

GEM_API void gem_profile_destroy(gem_profile_t *p)
{
    if (!p) return;
    for (int32_t g = 0; g < p->num_gpus; g++) {
        gem__gpu *u = &p->gpus[g];
        gem__curve_free(&u->curve);
        free(u->name);
        free(u->pci_bus_id);
        free(u->host);
        free(u->cpuset);
    }
    free(p->gpus);
    free(p->model_name);
    free(p->model_dtype);
    free(p->a2a_bytes);
    free(p->a2a_time);
    free(p);
}

static gem_status_t gem__dup_field(char **dst, const char *src)
{
    *dst = NULL;
    if (src && !(*dst = gem__strdup(src))) return GEM_ERR_NO_MEMORY;
    return GEM_OK;
}

/* Copies GPU src into the zeroed slot dst. */
static gem_status_t gem__gpu_copy(gem__gpu *dst, const gem__gpu *src,
                                  gem_interpolation_t interp)
{
    gem_status_t st;
    dst->overhead = src->overhead;
    dst->numa_node = src->numa_node;
    dst->memory_bytes = src->memory_bytes;
    if ((st = gem__dup_field(&dst->name, src->name)) ||
        (st = gem__dup_field(&dst->pci_bus_id, src->pci_bus_id)) ||
        (st = gem__dup_field(&dst->host, src->host)) ||
        (st = gem__dup_field(&dst->cpuset, src->cpuset)))
        return st;
    if (src->curve.k) {
        if ((st = gem__curve_set(&dst->curve, src->curve.k, src->curve.tokens,
                                 src->curve.latency, src->curve.cv, "copy")))
            return st;
        if ((st = gem__curve_prepare(&dst->curve, interp))) return st;
    }
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_clone(const gem_profile_t *src, gem_profile_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(src && out, "gem_profile_clone: NULL argument");
    gem_profile_t *p;
    gem_status_t st = gem_profile_create(&p, src->num_gpus);
    if (st) return st;
    p->interpolation = src->interpolation;
    p->cost_model = src->cost_model;
    p->model_hidden = src->model_hidden;
    p->model_ffn = src->model_ffn;
    for (int32_t g = 0; g < src->num_gpus && !st; g++)
        st = gem__gpu_copy(&p->gpus[g], &src->gpus[g], src->interpolation);
    if (!st) st = gem__dup_field(&p->model_name, src->model_name);
    if (!st) st = gem__dup_field(&p->model_dtype, src->model_dtype);
    if (!st && src->a2a_n) {
        size_t n = src->a2a_n, G = (size_t)src->num_gpus;
        p->a2a_bytes = gem__array(n, sizeof(double));
        p->a2a_time = gem__array(n * G, sizeof(double));
        if (!p->a2a_bytes || !p->a2a_time) st = GEM_ERR_NO_MEMORY;
        else {
            memcpy(p->a2a_bytes, src->a2a_bytes, n * sizeof(double));
            memcpy(p->a2a_time, src->a2a_time, n * G * sizeof(double));
            p->a2a_n = n;
        }
    }
    if (st) { gem_profile_destroy(p); return st; }
    *out = p;
    return GEM_OK;
}

#define GEM__CHECK_GPU(p, g)                                                                  \
    do {                                                                                      \
        GEM__CHECK_ARG(p, "profile handle is NULL");                                          \
        if ((g) < 0 || (g) >= (p)->num_gpus)                                                  \
            return gem__fail(GEM_ERR_OUT_OF_RANGE, "gpu %d outside [0, %d)", (int)(g),        \
                             (int)(p)->num_gpus);                                             \
    } while (0)

GEM_API gem_status_t gem_profile_set_curve(gem_profile_t *p, int32_t gpu, size_t k,
                                           const int64_t *tokens, const double *latency_us,
                                           const double *cv)
{
    gem__clear_error();
    GEM__CHECK_GPU(p, gpu);
    char where[32];
    snprintf(where, sizeof where, "gpu %d", (int)gpu);
    gem__curve c = {0};
    gem_status_t st = gem__curve_set(&c, k, tokens, latency_us, cv, where);
    if (!st) st = gem__curve_prepare(&c, p->interpolation);
    if (st) { gem__curve_free(&c); return st; }
    gem__curve_free(&p->gpus[gpu].curve);
    p->gpus[gpu].curve = c;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_set_overhead(gem_profile_t *p, int32_t gpu, double us)
{
    gem__clear_error();
    GEM__CHECK_GPU(p, gpu);
    if (!isfinite(us) || us < 0)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT, "gpu %d: overhead_us %g must be finite and >= 0",
                         (int)gpu, us);
    p->gpus[gpu].overhead = us;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_set_interpolation(gem_profile_t *p, gem_interpolation_t interp)
{
    gem__clear_error();
    GEM__CHECK_ARG(p, "profile handle is NULL");
    GEM__CHECK_ARG(interp == GEM_INTERP_STEP || interp == GEM_INTERP_LINEAR,
                   "interpolation %d is neither step (0) nor linear (1)", (int)interp);
    for (int32_t g = 0; g < p->num_gpus; g++) {
        if (!p->gpus[g].curve.k) continue;
        gem_status_t st = gem__curve_prepare(&p->gpus[g].curve, interp);
        if (st) return st;
    }
    p->interpolation = interp;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_set_cost_model(gem_profile_t *p, gem_cost_model_t model)
{
    gem__clear_error();
    GEM__CHECK_ARG(p, "profile handle is NULL");
    GEM__CHECK_ARG(model == GEM_COST_PER_EXPERT || model == GEM_COST_AGGREGATE,
                   "cost model %d is neither per_expert (0) nor aggregate (1)", (int)model);
    p->cost_model = model;
    return GEM_OK;
}

static char **gem__gpu_string_field(gem__gpu *u, const char *key)
{
    if (!key) return NULL;
    if (!strcmp(key, "name")) return &u->name;
    if (!strcmp(key, "pci_bus_id")) return &u->pci_bus_id;
    if (!strcmp(key, "host")) return &u->host;
    if (!strcmp(key, "cpuset")) return &u->cpuset;
    return NULL;
}

GEM_API gem_status_t gem_profile_set_gpu_string(gem_profile_t *p, int32_t gpu, const char *key,
                                                const char *value)
{
    gem__clear_error();
    GEM__CHECK_GPU(p, gpu);
    char **field = gem__gpu_string_field(&p->gpus[gpu], key);
    GEM__CHECK_ARG(field, "unknown GPU string key '%s' (name, pci_bus_id, host, cpuset)",
                   key ? key : "(null)");
    char *copy = NULL;
    if (value && !(copy = gem__strdup(value))) return GEM_ERR_NO_MEMORY;
    free(*field);
    *field = copy;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_num_gpus(const gem_profile_t *p, int32_t *num_gpus)
{
    gem__clear_error();
    GEM__CHECK_ARG(p && num_gpus, "gem_profile_num_gpus: NULL argument");
    *num_gpus = p->num_gpus;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_get_interpolation(const gem_profile_t *p,
                                                   gem_interpolation_t *interp)
{
    gem__clear_error();
    GEM__CHECK_ARG(p && interp, "gem_profile_get_interpolation: NULL argument");
    *interp = p->interpolation;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_get_cost_model(const gem_profile_t *p, gem_cost_model_t *model)
{
    gem__clear_error();
    GEM__CHECK_ARG(p && model, "gem_profile_get_cost_model: NULL argument");
    *model = p->cost_model;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_get_overhead(const gem_profile_t *p, int32_t gpu, double *us)
{
    gem__clear_error();
    GEM__CHECK_GPU(p, gpu);
    GEM__CHECK_ARG(us, "gem_profile_get_overhead: us is NULL");
    *us = p->gpus[gpu].overhead;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_get_curve(const gem_profile_t *p, int32_t gpu, int64_t *tokens,
                                           double *latency_us, size_t cap, size_t *k)
{
    gem__clear_error();
    GEM__CHECK_GPU(p, gpu);
    GEM__CHECK_ARG(k && (cap == 0 || (tokens && latency_us)),
                   "gem_profile_get_curve: NULL argument");
    const gem__curve *c = &p->gpus[gpu].curve;
    size_t n = cap < c->k ? cap : c->k;
    if (n) {
        memcpy(tokens, c->tokens, n * sizeof *tokens);
        memcpy(latency_us, c->latency, n * sizeof *latency_us);
    }
    *k = c->k;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_get_gpu_string(const gem_profile_t *p, int32_t gpu,
                                                const char *key, const char **value)
{
    gem__clear_error();
    GEM__CHECK_GPU(p, gpu);
    GEM__CHECK_ARG(value, "gem_profile_get_gpu_string: value is NULL");
    char **field = gem__gpu_string_field(&p->gpus[gpu], key);
    GEM__CHECK_ARG(field, "unknown GPU string key '%s' (name, pci_bus_id, host, cpuset)",
                   key ? key : "(null)");
    *value = *field;
    return GEM_OK;
}

gem_status_t gem__profile_check_ready(const gem_profile_t *p)
{
    for (int32_t g = 0; g < p->num_gpus; g++)
        if (!p->gpus[g].curve.k)
            return gem__fail(GEM_ERR_INVALID_INPUT, "profile: gpu %d has no latency curve", (int)g);
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_latency(const gem_profile_t *p, int32_t gpu, double tokens,
                                         double *us)
{
    gem__clear_error();
    GEM__CHECK_GPU(p, gpu);
    GEM__CHECK_ARG(us, "gem_profile_latency: us is NULL");
    GEM__CHECK_ARG(isfinite(tokens) && tokens >= 0, "tokens %g must be finite and >= 0", tokens);
    if (!p->gpus[gpu].curve.k)
        return gem__fail(GEM_ERR_INVALID_INPUT, "profile: gpu %d has no latency curve", (int)gpu);
    *us = gem__latency(p, gpu, tokens);
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_speeds(const gem_profile_t *p, double *speeds, size_t n)
{
    gem__clear_error();
    GEM__CHECK_ARG(p && speeds, "gem_profile_speeds: NULL argument");
    GEM__CHECK_ARG(n >= (size_t)p->num_gpus, "gem_profile_speeds: room for %zu of %d GPUs", n,
                   (int)p->num_gpus);
    gem_status_t st = gem__profile_check_ready(p);
    if (st) return st;
    /* The largest token count every curve has sampled: a point in every GPU's measured range. */
    int64_t x = INT64_MAX;
    for (int32_t g = 0; g < p->num_gpus; g++) {
        const gem__curve *c = &p->gpus[g].curve;
        if (c->tokens[c->k - 1] < x) x = c->tokens[c->k - 1];
    }
    double best = INFINITY;
    for (int32_t g = 0; g < p->num_gpus; g++) {
        speeds[g] = gem__latency(p, g, (double)x);
        if (speeds[g] < best) best = speeds[g];
    }
    for (int32_t g = 0; g < p->num_gpus; g++) speeds[g] = best / speeds[g];
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_append(gem_profile_t *dst, const gem_profile_t *src)
{
    gem__clear_error();
    GEM__CHECK_ARG(dst && src, "gem_profile_append: NULL argument");
    if (dst->interpolation != src->interpolation || dst->cost_model != src->cost_model)
        return gem__fail(GEM_ERR_SHAPE_MISMATCH,
                         "gem_profile_append: interpolation or cost model differ");
    /* Curves of different experts cannot sit in one profile; an unknown (0 / NULL) field
     * is compatible with anything. */
    if ((dst->model_hidden && src->model_hidden && dst->model_hidden != src->model_hidden) ||
        (dst->model_ffn && src->model_ffn && dst->model_ffn != src->model_ffn) ||
        (dst->model_dtype && src->model_dtype && strcmp(dst->model_dtype, src->model_dtype)))
        return gem__fail(GEM_ERR_SHAPE_MISMATCH,
                         "gem_profile_append: expert shapes differ (hidden %lld/%lld, ffn %lld/%lld, "
                         "dtype %s/%s)", (long long)dst->model_hidden, (long long)src->model_hidden,
                         (long long)dst->model_ffn, (long long)src->model_ffn,
                         dst->model_dtype ? dst->model_dtype : "?",
                         src->model_dtype ? src->model_dtype : "?");
    if ((int64_t)dst->num_gpus + src->num_gpus > GEM_MAX_GPUS)
        return gem__fail(GEM_ERR_LIMIT, "gem_profile_append: more than %d GPUs", GEM_MAX_GPUS);
    int32_t G = dst->num_gpus + src->num_gpus;
    gem__gpu *gpus = gem__array((size_t)G, sizeof *gpus);
    if (!gpus) return GEM_ERR_NO_MEMORY;
    gem_status_t st = GEM_OK;
    for (int32_t g = 0; g < src->num_gpus && !st; g++)
        st = gem__gpu_copy(&gpus[dst->num_gpus + g], &src->gpus[g], dst->interpolation);
    if (st) {
        for (int32_t g = dst->num_gpus; g < G; g++) {
            gem__curve_free(&gpus[g].curve);
            free(gpus[g].name), free(gpus[g].pci_bus_id), free(gpus[g].host), free(gpus[g].cpuset);
        }
        free(gpus);
        return st;
    }
    /* The all-to-all matrix describes one communicator; merged profiles drop it. */
    memcpy(gpus, dst->gpus, (size_t)dst->num_gpus * sizeof *gpus);
    free(dst->gpus);
    dst->gpus = gpus;
    dst->num_gpus = G;
    free(dst->a2a_bytes);
    free(dst->a2a_time);
    dst->a2a_bytes = dst->a2a_time = NULL;
    dst->a2a_n = 0;
    return GEM_OK;
}
