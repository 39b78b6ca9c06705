/*
 * mapping.c - the mapping handle: (expert, gpu, share) placements per layer, and SPEC 1 rules.
 * File reading and writing live in io_mapping.c, engine exports in export.c.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

GEM_API gem_status_t gem_mapping_create(gem_mapping_t **out, int32_t num_gpus,
                                        int32_t num_layers, int32_t num_experts)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_mapping_create: out is NULL");
    GEM__CHECK_ARG(num_gpus >= 1 && num_layers >= 1 && num_experts >= 1,
                   "gem_mapping_create: %d GPUs, %d layers, %d experts: each must be >= 1",
                   (int)num_gpus, (int)num_layers, (int)num_experts);
    if (num_gpus > GEM_MAX_GPUS || num_layers > GEM_MAX_LAYERS || num_experts > GEM_MAX_EXPERTS)
        return gem__fail(GEM_ERR_LIMIT, "gem_mapping_create: %d GPUs, %d layers, %d experts "
                         "exceeds %d, %d, %d", (int)num_gpus, (int)num_layers, (int)num_experts,
                         GEM_MAX_GPUS, GEM_MAX_LAYERS, GEM_MAX_EXPERTS);
    gem_mapping_t *m = gem__calloc(1, sizeof *m);
    if (!m) return GEM_ERR_NO_MEMORY;
    m->layers = gem__array((size_t)num_layers, sizeof *m->layers);
    if (!m->layers) { free(m); return GEM_ERR_NO_MEMORY; }
    m->num_gpus = num_gpus;
    m->num_layers = num_layers;
    m->num_experts = num_experts;
    *out = m;
    return GEM_OK;
}

GEM_API void gem_mapping_destroy(gem_mapping_t *m)
{
    if (!m) return;
    for (int32_t l = 0; l < m->num_layers; l++) free(m->layers[l].p);
    free(m->layers);
    free(m->policy);
    free(m);
}

GEM_API gem_status_t gem_mapping_clone(const gem_mapping_t *src, gem_mapping_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(src && out, "gem_mapping_clone: NULL argument");
    gem_mapping_t *m;
    gem_status_t st = gem_mapping_create(&m, src->num_gpus, src->num_layers, src->num_experts);
    if (st) return st;
    if (src->policy && !(m->policy = gem__strdup(src->policy))) goto oom;
    for (int32_t l = 0; l < src->num_layers; l++) {
        const gem__layer_map *s = &src->layers[l];
        if (!s->n) continue;
        if (!(m->layers[l].p = gem__array(s->n, sizeof *s->p))) goto oom;
        memcpy(m->layers[l].p, s->p, s->n * sizeof *s->p);
        m->layers[l].n = m->layers[l].cap = s->n;
    }
    *out = m;
    return GEM_OK;
oom:
    gem_mapping_destroy(m);
    return GEM_ERR_NO_MEMORY;
}

static gem_status_t gem__check_layer(const gem_mapping_t *m, int32_t layer)
{
    GEM__CHECK_ARG(m, "mapping handle is NULL");
    if (layer < 0 || layer >= m->num_layers)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "layer %d outside [0, %d)", (int)layer,
                         (int)m->num_layers);
    return GEM_OK;
}

gem_status_t gem__layer_map_add(gem__layer_map *lm, int32_t expert, int32_t gpu, double share)
{
    if (lm->n == lm->cap) {
        size_t cap = lm->cap ? lm->cap * 2 : 16;
        gem__placement *p = gem__realloc(lm->p, cap * sizeof *p);
        if (!p) return GEM_ERR_NO_MEMORY;
        lm->p = p;
        lm->cap = cap;
    }
    lm->p[lm->n++] = (gem__placement){expert, gpu, share};
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_add(gem_mapping_t *m, int32_t layer, int32_t expert,
                                     int32_t gpu, double share)
{
    gem__clear_error();
    gem_status_t st = gem__check_layer(m, layer);
    if (st) return st;
    if (expert < 0 || expert >= m->num_experts)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "layer %d: expert %d outside [0, %d)", (int)layer,
                         (int)expert, (int)m->num_experts);
    if (gpu < 0 || gpu >= m->num_gpus)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "layer %d expert %d: gpu %d outside [0, %d)",
                         (int)layer, (int)expert, (int)gpu, (int)m->num_gpus);
    if (!isfinite(share) || share <= 0 || share > 1)
        return gem__fail(GEM_ERR_INVALID_INPUT, "layer %d expert %d gpu %d: share %g outside (0, 1]",
                         (int)layer, (int)expert, (int)gpu, share);
    gem__layer_map *lm = &m->layers[layer];
    for (size_t i = 0; i < lm->n; i++)
        if (lm->p[i].expert == expert && lm->p[i].gpu == gpu)
            return gem__fail(GEM_ERR_INVALID_INPUT, "layer %d: expert %d placed twice on gpu %d",
                             (int)layer, (int)expert, (int)gpu);
    return gem__layer_map_add(lm, expert, gpu, share);
}

GEM_API gem_status_t gem_mapping_clear_layer(gem_mapping_t *m, int32_t layer)
{
    gem__clear_error();
    gem_status_t st = gem__check_layer(m, layer);
    if (st) return st;
    m->layers[layer].n = 0;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_set_policy_name(gem_mapping_t *m, const char *name)
{
    gem__clear_error();
    GEM__CHECK_ARG(m, "mapping handle is NULL");
    char *copy = NULL;
    if (name && !(copy = gem__strdup(name))) return GEM_ERR_NO_MEMORY;
    free(m->policy);
    m->policy = copy;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_get_policy_name(const gem_mapping_t *m, const char **name)
{
    gem__clear_error();
    GEM__CHECK_ARG(m && name, "gem_mapping_get_policy_name: NULL argument");
    *name = m->policy;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_shape(const gem_mapping_t *m, int32_t *num_gpus,
                                       int32_t *num_layers, int32_t *num_experts)
{
    gem__clear_error();
    GEM__CHECK_ARG(m, "mapping handle is NULL");
    if (num_gpus) *num_gpus = m->num_gpus;
    if (num_layers) *num_layers = m->num_layers;
    if (num_experts) *num_experts = m->num_experts;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_num_placements(const gem_mapping_t *m, int32_t layer, size_t *n)
{
    gem__clear_error();
    gem_status_t st = gem__check_layer(m, layer);
    if (st) return st;
    GEM__CHECK_ARG(n, "gem_mapping_num_placements: n is NULL");
    *n = m->layers[layer].n;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_get(const gem_mapping_t *m, int32_t layer, size_t i,
                                     int32_t *expert, int32_t *gpu, double *share)
{
    gem__clear_error();
    gem_status_t st = gem__check_layer(m, layer);
    if (st) return st;
    if (i >= m->layers[layer].n)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "layer %d: placement %zu outside [0, %zu)",
                         (int)layer, i, m->layers[layer].n);
    const gem__placement *p = &m->layers[layer].p[i];
    if (expert) *expert = p->expert;
    if (gpu) *gpu = p->gpu;
    if (share) *share = p->share;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_expert_gpu(const gem_mapping_t *m, int32_t layer,
                                            int32_t expert, int32_t *gpu)
{
    gem__clear_error();
    gem_status_t st = gem__check_layer(m, layer);
    if (st) return st;
    GEM__CHECK_ARG(gpu, "gem_mapping_expert_gpu: gpu is NULL");
    if (expert < 0 || expert >= m->num_experts)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "expert %d outside [0, %d)", (int)expert,
                         (int)m->num_experts);
    int found = 0;
    int32_t where = -1;
    const gem__layer_map *lm = &m->layers[layer];
    for (size_t i = 0; i < lm->n; i++)
        if (lm->p[i].expert == expert) found++, where = lm->p[i].gpu;
    if (found == 0)
        return gem__fail(GEM_ERR_INVALID_INPUT, "layer %d: expert %d is not placed", (int)layer,
                         (int)expert);
    if (found > 1)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT, "layer %d: expert %d has %d replicas",
                         (int)layer, (int)expert, found);
    *gpu = where;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_gpu_slots(const gem_mapping_t *m, int32_t layer, int32_t gpu,
                                           int32_t *slots)
{
    gem__clear_error();
    gem_status_t st = gem__check_layer(m, layer);
    if (st) return st;
    GEM__CHECK_ARG(slots, "gem_mapping_gpu_slots: slots is NULL");
    if (gpu < 0 || gpu >= m->num_gpus)
        return gem__fail(GEM_ERR_OUT_OF_RANGE, "gpu %d outside [0, %d)", (int)gpu,
                         (int)m->num_gpus);
    int32_t n = 0;
    const gem__layer_map *lm = &m->layers[layer];
    for (size_t i = 0; i < lm->n; i++) n += lm->p[i].gpu == gpu;
    *slots = n;
    return GEM_OK;
}

/* SPEC 1: no GPU holds the same expert twice. gem_mapping_add refuses a second copy, but
 * policies and readers fill layer maps directly, so validation checks it too: placements in
 * expert order (a counting sort), each GPU marked with the last expert seen on it. Ids must
 * already be in range. */
static gem_status_t gem__check_no_duplicates(const gem_mapping_t *m, int32_t layer)
{
    const gem__layer_map *lm = &m->layers[layer];
    size_t *order = gem__array(lm->n ? lm->n : 1, sizeof *order);
    size_t *start = gem__array((size_t)m->num_experts + 1, sizeof *start);
    int32_t *last = gem__array((size_t)m->num_gpus, sizeof *last);
    gem_status_t st = (!order || !start || !last) ? GEM_ERR_NO_MEMORY : GEM_OK;
    if (!st) {
        for (size_t i = 0; i < lm->n; i++) start[lm->p[i].expert + 1]++;
        for (int32_t e = 0; e < m->num_experts; e++) start[e + 1] += start[e];
        for (size_t i = 0; i < lm->n; i++) order[start[lm->p[i].expert]++] = i;
        for (int32_t g = 0; g < m->num_gpus; g++) last[g] = -1;
    }
    for (size_t k = 0; k < lm->n && !st; k++) {
        const gem__placement *q = &lm->p[order[k]];
        if (last[q->gpu] == q->expert)
            st = gem__fail(GEM_ERR_INVALID_INPUT, "layer %d: expert %d placed twice on gpu %d",
                           (int)layer, (int)q->expert, (int)q->gpu);
        last[q->gpu] = q->expert;
    }
    free(order);
    free(start);
    free(last);
    return st;
}

gem_status_t gem__mapping_validate_layer(const gem_mapping_t *m, int32_t layer)
{
    const gem__layer_map *lm = &m->layers[layer];
    double *sum = gem__array((size_t)m->num_experts, sizeof *sum);
    if (!sum) return GEM_ERR_NO_MEMORY;
    gem_status_t st = GEM_OK;
    for (size_t i = 0; i < lm->n && !st; i++) {
        const gem__placement *p = &lm->p[i];
        if (p->expert < 0 || p->expert >= m->num_experts || p->gpu < 0 || p->gpu >= m->num_gpus)
            st = gem__fail(GEM_ERR_OUT_OF_RANGE, "layer %d placement %zu: expert %d gpu %d out of range",
                           (int)layer, i, (int)p->expert, (int)p->gpu);
        else if (!isfinite(p->share) || p->share <= 0 || p->share > 1)
            st = gem__fail(GEM_ERR_INVALID_INPUT, "layer %d expert %d gpu %d: share %g outside (0, 1]",
                           (int)layer, (int)p->expert, (int)p->gpu, p->share);
        else
            sum[p->expert] += p->share;
    }
    if (!st) st = gem__check_no_duplicates(m, layer);
    for (int32_t e = 0; e < m->num_experts && !st; e++) {
        if (sum[e] == 0)
            st = gem__fail(GEM_ERR_INVALID_INPUT, "layer %d: expert %d has no placement",
                           (int)layer, (int)e);
        else if (fabs(sum[e] - 1.0) > 1e-9)
            st = gem__fail(GEM_ERR_INVALID_INPUT,
                           "layer %d: shares of expert %d sum to %.12g, not 1", (int)layer, (int)e,
                           sum[e]);
    }
    free(sum);
    return st;
}

GEM_API gem_status_t gem_mapping_validate(const gem_mapping_t *m)
{
    gem__clear_error();
    GEM__CHECK_ARG(m, "mapping handle is NULL");
    for (int32_t l = 0; l < m->num_layers; l++) {
        gem_status_t st = gem__mapping_validate_layer(m, l);
        if (st) return st;
    }
    return GEM_OK;
}

gem_status_t gem__check_shapes(const gem_profile_t *p, const gem_trace_t *t,
                               const gem_mapping_t *m)
{
    if (p && m && p->num_gpus != m->num_gpus)
        return gem__fail(GEM_ERR_SHAPE_MISMATCH, "profile has %d GPUs but mapping has %d",
                         (int)p->num_gpus, (int)m->num_gpus);
    if (t && m && (t->num_layers != m->num_layers || t->num_experts != m->num_experts))
        return gem__fail(GEM_ERR_SHAPE_MISMATCH,
                         "trace has %d layers x %d experts but mapping has %d x %d",
                         (int)t->num_layers, (int)t->num_experts, (int)m->num_layers,
                         (int)m->num_experts);
    return GEM_OK;
}
