/*
 * io_mapping.c - reading and writing SPEC 5 mapping files (JSON).
 *
 * Status codes of the reader: syntax, types, missing keys, shares, duplicates and unplaced
 * experts are GEM_ERR_INVALID_INPUT; an expert or GPU id outside [0, num_experts) or
 * [0, num_gpus) is GEM_ERR_OUT_OF_RANGE (as for gem_mapping_add); a newer version is
 * GEM_ERR_VERSION; sizes beyond GEM_MAX_* are GEM_ERR_LIMIT.
 */
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GEM__MAPPING_VERSION 1
#define GEM__PUTS(b, lit) gem__buf_append((b), (lit), sizeof(lit) - 1)

/* ---- reading ----------------------------------------------------------------------------- */

static gem_status_t gem__mapping_header(const json_t *root, int32_t *G, int32_t *L, int32_t *E)
{
    if (!json_is_object(root))
        return gem__fail(GEM_ERR_INVALID_INPUT, "expected a JSON object at the top, found %s",
                         gem__json_type_name(root));
    const json_t *f = json_object_get(root, "format");
    if (!json_is_string(f))
        return gem__fail(GEM_ERR_INVALID_INPUT, "format: expected \"gem-mapping\", found %s",
                         gem__json_type_name(f));
    if (strcmp(json_string_value(f), "gem-mapping") != 0)
        return gem__fail(GEM_ERR_INVALID_INPUT, "format: expected \"gem-mapping\", found \"%s\"",
                         json_string_value(f));
    int64_t version, x;
    gem_status_t st = gem__json_int(json_object_get(root, "version"), 1, INT64_MAX,
                                    GEM_ERR_INVALID_INPUT, &version, "version");
    if (st) return st;
    if (version > GEM__MAPPING_VERSION)
        return gem__fail(GEM_ERR_VERSION, "version %lld is newer than this library reads (%d)",
                         (long long)version, GEM__MAPPING_VERSION);
    static const char *const keys[3] = {"num_gpus", "num_layers", "num_experts"};
    static const int64_t max[3] = {GEM_MAX_GPUS, GEM_MAX_LAYERS, GEM_MAX_EXPERTS};
    int32_t *dst[3] = {G, L, E};
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(root, keys[i]);
        if (!v) return gem__fail(GEM_ERR_INVALID_INPUT, "%s: missing", keys[i]);
        if ((st = gem__json_int(v, 1, INT64_MAX, GEM_ERR_INVALID_INPUT, &x, "%s", keys[i])))
            return st;
        if (x > max[i])
            return gem__fail(GEM_ERR_LIMIT, "%s: %lld, at most %lld", keys[i], (long long)x,
                             (long long)max[i]);
        *dst[i] = (int32_t)x;
    }
    return GEM_OK;
}

/* Reads layers[l].placements into m. head/next chain the placements of each expert so that a
 * second (expert, gpu) is found without a G x E table. */
static gem_status_t gem__read_layer(gem_mapping_t *m, const json_t *layer, int32_t l,
                                    int64_t *head, int64_t **next, size_t *next_cap)
{
    if (!json_is_object(layer))
        return gem__fail(GEM_ERR_INVALID_INPUT, "layers[%d]: expected an object, found %s", (int)l,
                         gem__json_type_name(layer));
    const json_t *pl = json_object_get(layer, "placements");
    if (!json_is_array(pl))
        return gem__fail(GEM_ERR_INVALID_INPUT, "layers[%d].placements: expected an array, found %s",
                         (int)l, gem__json_type_name(pl));
    size_t n = json_array_size(pl);
    if (n > *next_cap) {
        int64_t *nx = gem__realloc(*next, n * sizeof *nx);
        if (!nx) return GEM_ERR_NO_MEMORY;
        *next = nx;
        *next_cap = n;
    }
    for (int32_t e = 0; e < m->num_experts; e++) head[e] = -1;
    gem__layer_map *lm = &m->layers[l];
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(pl, i);
        if (!json_is_array(p) || json_array_size(p) != 3)
            return gem__fail(GEM_ERR_INVALID_INPUT, "layers[%d].placements[%zu]: expected "
                             "[expert, gpu, share], found %s", (int)l, i, gem__json_type_name(p));
        int64_t e, g;
        double w;
        gem_status_t st;
        if ((st = gem__json_int(json_array_get(p, 0), 0, m->num_experts - 1, GEM_ERR_OUT_OF_RANGE,
                                &e, "layers[%d].placements[%zu][0] (expert)", (int)l, i)) ||
            (st = gem__json_int(json_array_get(p, 1), 0, m->num_gpus - 1, GEM_ERR_OUT_OF_RANGE,
                                &g, "layers[%d].placements[%zu][1] (gpu)", (int)l, i)) ||
            (st = gem__json_number(json_array_get(p, 2), &w, "layers[%d].placements[%zu][2] "
                                   "(share)", (int)l, i)))
            return st;
        if (!(w > 0 && w <= 1))
            return gem__fail(GEM_ERR_INVALID_INPUT, "layers[%d].placements[%zu]: share %.17g of "
                             "expert %lld is outside (0, 1]", (int)l, i, w, (long long)e);
        for (int64_t j = head[e]; j >= 0; j = (*next)[j])
            if (lm->p[j].gpu == g)
                return gem__fail(GEM_ERR_INVALID_INPUT, "layers[%d].placements[%zu]: expert %lld "
                                 "is already on gpu %lld (placements[%lld])", (int)l, i,
                                 (long long)e, (long long)g, (long long)j);
        if ((st = gem__layer_map_add(lm, (int32_t)e, (int32_t)g, w))) return st;
        (*next)[i] = head[e];
        head[e] = (int64_t)i;
    }
    /* Every expert placed and its shares summing to 1 (SPEC 1). */
    gem_status_t st = gem__mapping_validate_layer(m, l);
    if (st) return gem__fail_context(st, "layers[%d]", (int)l);
    return GEM_OK;
}

static gem_status_t gem__mapping_from_json(const json_t *root, void *out_)
{
    gem_mapping_t **out = out_;
    int32_t G, L, E;
    gem_status_t st = gem__mapping_header(root, &G, &L, &E);
    if (st) return st;
    const json_t *layers = json_object_get(root, "layers");
    if (!json_is_array(layers))
        return gem__fail(GEM_ERR_INVALID_INPUT, "layers: expected an array, found %s",
                         gem__json_type_name(layers));
    if (json_array_size(layers) != (size_t)L)
        return gem__fail(GEM_ERR_INVALID_INPUT, "layers: %zu entries, num_layers is %d",
                         json_array_size(layers), (int)L);
    const json_t *pol = json_object_get(root, "policy");
    if (pol && !json_is_null(pol) && !json_is_string(pol))
        return gem__fail(GEM_ERR_INVALID_INPUT, "policy: expected a string, found %s",
                         gem__json_type_name(pol));

    gem_mapping_t *m;
    if ((st = gem_mapping_create(&m, G, L, E))) return st;
    int64_t *head = gem__array((size_t)E, sizeof *head), *next = NULL;
    size_t next_cap = 0;
    if (!head) st = GEM_ERR_NO_MEMORY;
    if (!st && json_is_string(pol) && !(m->policy = gem__strdup(json_string_value(pol))))
        st = GEM_ERR_NO_MEMORY;
    for (int32_t l = 0; l < L && !st; l++)
        st = gem__read_layer(m, json_array_get(layers, (size_t)l), l, head, &next, &next_cap);
    free(head);
    free(next);
    if (st) {
        gem_mapping_destroy(m);
        return st;
    }
    *out = m;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_parse(const char *data, size_t len, gem_mapping_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_mapping_parse: out is NULL");
    GEM__CHECK_ARG(data || len == 0, "gem_mapping_parse: data is NULL");
    return gem__json_load(data ? data : "", len, "mapping", gem__mapping_from_json, out);
}

GEM_API gem_status_t gem_mapping_read(const char *path, gem_mapping_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(path && out, "gem_mapping_read: NULL argument");
    return gem__json_load_file(path, gem__mapping_from_json, out);
}

/* ---- writing ----------------------------------------------------------------------------- */

static gem_status_t gem__mapping_text(const gem_mapping_t *m, gem__buf *b)
{
    gem_status_t st = gem_mapping_validate(m);
    if (st) return gem__fail_context(st, "cannot write an invalid mapping");
    gem__buf_printf(b, "{\n  \"format\": \"gem-mapping\",\n  \"version\": %d,\n"
                    "  \"num_gpus\": %d,\n  \"num_layers\": %d,\n  \"num_experts\": %d,\n",
                    GEM__MAPPING_VERSION, (int)m->num_gpus, (int)m->num_layers,
                    (int)m->num_experts);
    if (m->policy) {
        GEM__PUTS(b, "  \"policy\": ");
        if (gem__buf_json_string(b, m->policy) != 0)
            return gem__fail(GEM_ERR_INVALID_ARGUMENT, "mapping policy name is not valid UTF-8, "
                             "which JSON cannot carry");
        GEM__PUTS(b, ",\n");
    }
    GEM__PUTS(b, "  \"layers\": [\n");
    for (int32_t l = 0; l < m->num_layers && !b->failed; l++) {
        const gem__layer_map *lm = &m->layers[l];
        GEM__PUTS(b, "    {\"placements\": [");
        for (size_t i = 0; i < lm->n; i++) {
            gem__buf_printf(b, "%s[%d, %d, ", i ? ", " : "", (int)lm->p[i].expert,
                            (int)lm->p[i].gpu);
            gem__buf_double(b, lm->p[i].share);
            GEM__PUTS(b, "]");
        }
        if (l + 1 < m->num_layers) GEM__PUTS(b, "]},\n");
        else GEM__PUTS(b, "]}\n");
    }
    GEM__PUTS(b, "  ]\n}\n");
    if (b->failed) return gem__fail(GEM_ERR_NO_MEMORY, "out of memory writing the mapping");
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_to_string(const gem_mapping_t *m, char **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(m && out, "gem_mapping_to_string: NULL argument");
    gem__buf b;
    gem__buf_init(&b);
    gem_status_t st = gem__mapping_text(m, &b);
    if (st) {
        gem__buf_free(&b);
        return st;
    }
    *out = b.data;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_write(const gem_mapping_t *m, const char *path)
{
    gem__clear_error();
    GEM__CHECK_ARG(m && path, "gem_mapping_write: NULL argument");
    gem__buf b;
    gem__buf_init(&b);
    gem_status_t st = gem__mapping_text(m, &b);
    if (!st) st = gem__write_file_atomic(path, b.data, b.len);
    gem__buf_free(&b);
    return st;
}
