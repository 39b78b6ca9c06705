/*
 * io_profile.c - reading and writing SPEC 3 profile files (JSON).
 *
 * The reader validates everything SPEC 3 requires and names the JSON path of the first
 * problem ("gpus[2].tokens[3]: ..."). The writer emits every field the profile has, numbers in
 * their shortest exact form, so that read(write(p)) equals p.
 */
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GEM__PROFILE_VERSION 1

/* Appends a string literal. */
#define GEM__PUTS(b, lit) gem__buf_append((b), (lit), sizeof(lit) - 1)

/* ---- reading ----------------------------------------------------------------------------- */

/* Optional string member: absent or null leaves *dst NULL. */
static gem_status_t gem__member_string(const json_t *obj, const char *key, const char *where,
                                    char **dst)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return GEM_OK;
    if (!json_is_string(v))
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s%s: expected a string, found %s", where, key,
                         gem__json_type_name(v));
    char *copy = gem__strdup(json_string_value(v));
    if (!copy) return GEM_ERR_NO_MEMORY;
    free(*dst);
    *dst = copy;
    return GEM_OK;
}

/* Optional integer member in [min, max]; absent or null leaves *dst as it is. */
static gem_status_t gem__member_int(const json_t *obj, const char *key, const char *where,
                                 int64_t min, int64_t max, int64_t *dst)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return GEM_OK;
    return gem__json_int(v, min, max, GEM_ERR_INVALID_INPUT, dst, "%s%s", where, key);
}

/* Reads a string member that must be one of two names; absent keeps *value. */
static gem_status_t gem__enum_member(const json_t *root, const char *key, const char *a,
                                     const char *b, int *value)
{
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return GEM_OK;
    const char *s = json_string_value(v);
    if (s && !strcmp(s, a)) *value = 0;
    else if (s && !strcmp(s, b)) *value = 1;
    else if (s)
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s: \"%s\" is neither \"%s\" nor \"%s\"", key, s,
                         a, b);
    else
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s: expected \"%s\" or \"%s\", found %s", key, a,
                         b, gem__json_type_name(v));
    return GEM_OK;
}

/* Checks "format" and "version", which say whether the rest can be read at all. */
static gem_status_t gem__check_header(const json_t *root, const char *format)
{
    if (!json_is_object(root))
        return gem__fail(GEM_ERR_INVALID_INPUT, "expected a JSON object at the top, found %s",
                         gem__json_type_name(root));
    const json_t *f = json_object_get(root, "format");
    if (!json_is_string(f))
        return gem__fail(GEM_ERR_INVALID_INPUT, "format: expected \"%s\", found %s", format,
                         gem__json_type_name(f));
    if (strcmp(json_string_value(f), format) != 0)
        return gem__fail(GEM_ERR_INVALID_INPUT, "format: expected \"%s\", found \"%s\"", format,
                         json_string_value(f));
    int64_t version;
    gem_status_t st = gem__json_int(json_object_get(root, "version"), 1, INT64_MAX,
                                    GEM_ERR_INVALID_INPUT, &version, "version");
    if (st) return st;
    if (version > GEM__PROFILE_VERSION)
        return gem__fail(GEM_ERR_VERSION, "version %lld is newer than this library reads (%d)",
                         (long long)version, GEM__PROFILE_VERSION);
    return GEM_OK;
}

/* A member that must be an array of length n (n == 0: any length >= 1); sets *len. */
static gem_status_t gem__array_member(const json_t *obj, const char *key, const char *where,
                                      size_t n, size_t max, const json_t **arr, size_t *len)
{
    const json_t *a = json_object_get(obj, key);
    if (!a)
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s%s: missing", where, key);
    if (!json_is_array(a))
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s%s: expected an array, found %s", where, key,
                         gem__json_type_name(a));
    size_t k = json_array_size(a);
    if (n && k != n)
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s%s: %zu entries, expected %zu", where, key, k, n);
    if (k == 0) return gem__fail(GEM_ERR_INVALID_INPUT, "%s%s: empty", where, key);
    if (k > max)
        return gem__fail(GEM_ERR_LIMIT, "%s%s: %zu entries, at most %zu", where, key, k, max);
    *arr = a;
    *len = k;
    return GEM_OK;
}

/* Reads the latency curve of one GPU object (validated here so that messages name the JSON
 * path; gem_profile_set_curve then only copies). */
static gem_status_t gem__read_curve(gem_profile_t *p, int32_t id, const json_t *gpu,
                                    const char *where)
{
    const json_t *tok, *lat, *cv = NULL;
    size_t k, k2, k3;
    gem_status_t st = gem__array_member(gpu, "tokens", where, 0, GEM_MAX_CURVE_POINTS, &tok, &k);
    if (!st) st = gem__array_member(gpu, "latency_us", where, k, GEM_MAX_CURVE_POINTS, &lat, &k2);
    const json_t *cvv = json_object_get(gpu, "latency_cv");
    if (!st && cvv && !json_is_null(cvv))
        st = gem__array_member(gpu, "latency_cv", where, k, GEM_MAX_CURVE_POINTS, &cv, &k3);
    if (st) return st;
    int64_t *tokens = gem__array(k, sizeof *tokens);
    double *latency = gem__array(k, sizeof *latency);
    double *cvs = cv ? gem__array(k, sizeof *cvs) : NULL;
    if (!tokens || !latency || (cv && !cvs)) st = GEM_ERR_NO_MEMORY;
    for (size_t i = 0; i < k && !st; i++) {
        st = gem__json_int(json_array_get(tok, i), 1, GEM_MAX_TOKENS, GEM_ERR_INVALID_INPUT,
                           &tokens[i], "%stokens[%zu]", where, i);
        if (!st && i > 0 && tokens[i] <= tokens[i - 1])
            st = gem__fail(GEM_ERR_INVALID_INPUT,
                           "%stokens[%zu]: %lld after %lld, tokens must be strictly ascending",
                           where, i, (long long)tokens[i], (long long)tokens[i - 1]);
        if (!st) st = gem__json_number(json_array_get(lat, i), &latency[i], "%slatency_us[%zu]",
                                       where, i);
        if (!st && !(latency[i] > 0) )
            st = gem__fail(GEM_ERR_INVALID_INPUT, "%slatency_us[%zu]: %.17g must be > 0", where,
                           i, latency[i]);
        if (!st && cv) {
            st = gem__json_number(json_array_get(cv, i), &cvs[i], "%slatency_cv[%zu]", where, i);
            if (!st && !(cvs[i] >= 0))
                st = gem__fail(GEM_ERR_INVALID_INPUT, "%slatency_cv[%zu]: %.17g must be >= 0",
                               where, i, cvs[i]);
        }
    }
    if (!st) st = gem_profile_set_curve(p, id, k, tokens, latency, cvs);
    free(tokens);
    free(latency);
    free(cvs);
    return st;
}

static gem_status_t gem__read_gpu(gem_profile_t *p, const json_t *gpu, size_t index,
                                  uint8_t *seen)
{
    char where[48];
    snprintf(where, sizeof where, "gpus[%zu].", index);
    if (!json_is_object(gpu))
        return gem__fail(GEM_ERR_INVALID_INPUT, "gpus[%zu]: expected an object, found %s", index,
                         gem__json_type_name(gpu));
    int64_t id;
    const json_t *idv = json_object_get(gpu, "id");
    if (!idv) return gem__fail(GEM_ERR_INVALID_INPUT, "gpus[%zu].id: missing", index);
    gem_status_t st = gem__json_int(idv, 0, p->num_gpus - 1, GEM_ERR_OUT_OF_RANGE, &id,
                                    "gpus[%zu].id", index);
    if (st) return st;
    if (seen[id])
        return gem__fail(GEM_ERR_INVALID_INPUT, "gpus[%zu].id: gpu %lld appears twice", index,
                         (long long)id);
    seen[id] = 1;
    gem__gpu *u = &p->gpus[id];
    if ((st = gem__read_curve(p, (int32_t)id, gpu, where))) return st;
    const json_t *ov = json_object_get(gpu, "overhead_us");
    if (ov && !json_is_null(ov)) {
        double c;
        if ((st = gem__json_number(ov, &c, "%soverhead_us", where))) return st;
        if (!(c >= 0))
            return gem__fail(GEM_ERR_INVALID_INPUT, "%soverhead_us: %.17g must be >= 0", where, c);
        u->overhead = c;
    }
    int64_t numa = u->numa_node, mem = u->memory_bytes;
    if ((st = gem__member_string(gpu, "name", where, &u->name)) ||
        (st = gem__member_string(gpu, "pci_bus_id", where, &u->pci_bus_id)) ||
        (st = gem__member_string(gpu, "host", where, &u->host)) ||
        (st = gem__member_string(gpu, "cpuset", where, &u->cpuset)) ||
        (st = gem__member_int(gpu, "numa_node", where, -1, INT32_MAX, &numa)) ||
        (st = gem__member_int(gpu, "memory_bytes", where, -1, INT64_MAX, &mem)))
        return st;
    u->numa_node = (int32_t)numa;
    u->memory_bytes = mem;
    return GEM_OK;
}

static gem_status_t gem__read_model(gem_profile_t *p, const json_t *root)
{
    const json_t *m = json_object_get(root, "model");
    if (!m || json_is_null(m)) return GEM_OK;
    if (!json_is_object(m))
        return gem__fail(GEM_ERR_INVALID_INPUT, "model: expected an object, found %s",
                         gem__json_type_name(m));
    gem_status_t st;
    if ((st = gem__member_string(m, "name", "model.", &p->model_name)) ||
        (st = gem__member_string(m, "dtype", "model.", &p->model_dtype)) ||
        (st = gem__member_int(m, "hidden", "model.", 0, INT64_MAX, &p->model_hidden)) ||
        (st = gem__member_int(m, "ffn", "model.", 0, INT64_MAX, &p->model_ffn)))
        return st;
    return GEM_OK;
}

static gem_status_t gem__read_alltoall(gem_profile_t *p, const json_t *root)
{
    const json_t *a = json_object_get(root, "alltoall");
    if (!a || json_is_null(a)) return GEM_OK;
    if (!json_is_object(a))
        return gem__fail(GEM_ERR_INVALID_INPUT, "alltoall: expected an object, found %s",
                         gem__json_type_name(a));
    const json_t *bytes, *time;
    size_t n, rows;
    size_t G = (size_t)p->num_gpus;
    gem_status_t st = gem__array_member(a, "bytes", "alltoall.", 0, GEM_MAX_CURVE_POINTS, &bytes, &n);
    if (!st) st = gem__array_member(a, "time_us", "alltoall.", G, G, &time, &rows);
    if (st) return st;
    double *b = gem__array(n, sizeof *b), *t = gem__array(n * G, sizeof *t);
    if (!b || !t) st = GEM_ERR_NO_MEMORY;
    for (size_t i = 0; i < n && !st; i++) {
        st = gem__json_number(json_array_get(bytes, i), &b[i], "alltoall.bytes[%zu]", i);
        if (!st && !(b[i] >= 0))
            st = gem__fail(GEM_ERR_INVALID_INPUT, "alltoall.bytes[%zu]: %.17g must be >= 0", i,
                           b[i]);
    }
    for (size_t g = 0; g < G && !st; g++) {
        const json_t *row = json_array_get(time, g);
        if (!json_is_array(row) || json_array_size(row) != n) {
            st = gem__fail(GEM_ERR_INVALID_INPUT,
                           "alltoall.time_us[%zu]: expected an array of %zu numbers (one per "
                           "size in alltoall.bytes), found %s of %zu", g, n,
                           gem__json_type_name(row), json_is_array(row) ? json_array_size(row) : 0);
            break;
        }
        for (size_t i = 0; i < n && !st; i++) {
            double *x = &t[g * n + i];
            st = gem__json_number(json_array_get(row, i), x, "alltoall.time_us[%zu][%zu]", g, i);
            if (!st && !(*x >= 0))
                st = gem__fail(GEM_ERR_INVALID_INPUT, "alltoall.time_us[%zu][%zu]: %.17g must be "
                               ">= 0", g, i, *x);
        }
    }
    if (st) {
        free(b);
        free(t);
        return st;
    }
    p->a2a_n = n;
    p->a2a_bytes = b;
    p->a2a_time = t;
    return GEM_OK;
}

static gem_status_t gem__profile_from_json(const json_t *root, void *out_)
{
    gem_profile_t **out = out_;
    gem_status_t st = gem__check_header(root, "gem-profile");
    if (st) return st;
    const json_t *gpus;
    size_t G;
    if ((st = gem__array_member(root, "gpus", "", 0, GEM_MAX_GPUS, &gpus, &G))) return st;
    int interp = GEM_INTERP_STEP, cost = GEM_COST_PER_EXPERT;
    if ((st = gem__enum_member(root, "interpolation", "step", "linear", &interp)) ||
        (st = gem__enum_member(root, "cost_model", "per_expert", "aggregate", &cost)))
        return st;

    gem_profile_t *p;
    if ((st = gem_profile_create(&p, (int32_t)G))) return st;
    uint8_t *seen = gem__array(G, 1);
    if (!seen) st = GEM_ERR_NO_MEMORY;
    /* Interpolation first: the curve setters prepare their lookup tables for it. */
    if (!st) st = gem_profile_set_interpolation(p, (gem_interpolation_t)interp);
    if (!st) st = gem_profile_set_cost_model(p, (gem_cost_model_t)cost);
    for (size_t i = 0; i < G && !st; i++) st = gem__read_gpu(p, json_array_get(gpus, i), i, seen);
    /* G ids in [0, G) with none twice: every id is there. */
    if (!st) st = gem__read_model(p, root);
    if (!st) st = gem__read_alltoall(p, root);
    free(seen);
    if (st) {
        gem_profile_destroy(p);
        return st;
    }
    *out = p;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_parse(const char *data, size_t len, gem_profile_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_profile_parse: out is NULL");
    GEM__CHECK_ARG(data || len == 0, "gem_profile_parse: data is NULL");
    return gem__json_load(data ? data : "", len, "profile", gem__profile_from_json, out);
}

GEM_API gem_status_t gem_profile_read(const char *path, gem_profile_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(path && out, "gem_profile_read: NULL argument");
    return gem__json_load_file(path, gem__profile_from_json, out);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void gem__put_doubles(gem__buf *b, const double *x, size_t n)
{
    GEM__PUTS(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) GEM__PUTS(b, ", ");
        gem__buf_double(b, x[i]);
    }
    GEM__PUTS(b, "]");
}

/* Appends `"key": "value"` preceded by sep; fails on text JSON cannot carry. */
static gem_status_t gem__put_string(gem__buf *b, const char *sep, const char *key,
                                    const char *value, const char *where)
{
    gem__buf_printf(b, "%s\"%s\": ", sep, key);
    if (gem__buf_json_string(b, value) != 0)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT, "%s%s is not valid UTF-8, which JSON cannot "
                         "carry", where, key);
    return GEM_OK;
}

static gem_status_t gem__put_gpu(gem__buf *b, const gem_profile_t *p, int32_t g)
{
    const gem__gpu *u = &p->gpus[g];
    char where[48];
    snprintf(where, sizeof where, "gpu %d: ", (int)g);
    gem_status_t st = GEM_OK;
    gem__buf_printf(b, "    {\"id\": %d", (int)g);
    if (u->name) st = gem__put_string(b, ", ", "name", u->name, where);
    if (!st && u->pci_bus_id) st = gem__put_string(b, ", ", "pci_bus_id", u->pci_bus_id, where);
    if (!st && u->host) st = gem__put_string(b, ", ", "host", u->host, where);
    if (!st && u->cpuset) st = gem__put_string(b, ", ", "cpuset", u->cpuset, where);
    if (st) return st;
    if (u->numa_node >= 0) gem__buf_printf(b, ", \"numa_node\": %d", (int)u->numa_node);
    if (u->memory_bytes >= 0)
        gem__buf_printf(b, ", \"memory_bytes\": %lld", (long long)u->memory_bytes);
    GEM__PUTS(b, ",\n     \"overhead_us\": ");
    gem__buf_double(b, u->overhead);
    const gem__curve *c = &u->curve;
    GEM__PUTS(b, ",\n     \"tokens\": [");
    for (size_t i = 0; i < c->k; i++)
        gem__buf_printf(b, "%s%lld", i ? ", " : "", (long long)c->tokens[i]);
    GEM__PUTS(b, "],\n     \"latency_us\": ");
    gem__put_doubles(b, c->latency, c->k);
    if (c->cv) {
        GEM__PUTS(b, ",\n     \"latency_cv\": ");
        gem__put_doubles(b, c->cv, c->k);
    }
    GEM__PUTS(b, "}");
    return GEM_OK;
}

static gem_status_t gem__profile_text(const gem_profile_t *p, gem__buf *b)
{
    gem_status_t st = gem__profile_check_ready(p);
    if (st) return st;
    gem__buf_printf(b, "{\n  \"format\": \"gem-profile\",\n  \"version\": %d,\n",
                    GEM__PROFILE_VERSION);
    gem__buf_printf(b, "  \"interpolation\": \"%s\",\n  \"cost_model\": \"%s\",\n",
                    p->interpolation == GEM_INTERP_LINEAR ? "linear" : "step",
                    p->cost_model == GEM_COST_AGGREGATE ? "aggregate" : "per_expert");
    if (p->model_name || p->model_dtype || p->model_hidden || p->model_ffn) {
        const char *sep = "";
        GEM__PUTS(b, "  \"model\": {");
        if (p->model_name) {
            if ((st = gem__put_string(b, sep, "name", p->model_name, "model."))) return st;
            sep = ", ";
        }
        if (p->model_hidden) {
            gem__buf_printf(b, "%s\"hidden\": %lld", sep, (long long)p->model_hidden);
            sep = ", ";
        }
        if (p->model_ffn) {
            gem__buf_printf(b, "%s\"ffn\": %lld", sep, (long long)p->model_ffn);
            sep = ", ";
        }
        if (p->model_dtype && (st = gem__put_string(b, sep, "dtype", p->model_dtype, "model.")))
            return st;
        GEM__PUTS(b, "},\n");
    }
    GEM__PUTS(b, "  \"gpus\": [\n");
    for (int32_t g = 0; g < p->num_gpus; g++) {
        if ((st = gem__put_gpu(b, p, g))) return st;
        if (g + 1 < p->num_gpus) GEM__PUTS(b, ",");
        GEM__PUTS(b, "\n");
    }
    GEM__PUTS(b, "  ]");
    if (p->a2a_n) {
        GEM__PUTS(b, ",\n  \"alltoall\": {\"bytes\": ");
        gem__put_doubles(b, p->a2a_bytes, p->a2a_n);
        GEM__PUTS(b, ",\n               \"time_us\": [");
        for (int32_t g = 0; g < p->num_gpus; g++) {
            if (g) GEM__PUTS(b, ",\n                           ");
            gem__put_doubles(b, p->a2a_time + (size_t)g * p->a2a_n, p->a2a_n);
        }
        GEM__PUTS(b, "]}");
    }
    GEM__PUTS(b, "\n}\n");
    if (b->failed) return gem__fail(GEM_ERR_NO_MEMORY, "out of memory writing the profile");
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_to_string(const gem_profile_t *p, char **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(p && out, "gem_profile_to_string: NULL argument");
    gem__buf b;
    gem__buf_init(&b);
    gem_status_t st = gem__profile_text(p, &b);
    if (st) {
        gem__buf_free(&b);
        return st;
    }
    *out = b.data;
    return GEM_OK;
}

GEM_API gem_status_t gem_profile_write(const gem_profile_t *p, const char *path)
{
    gem__clear_error();
    GEM__CHECK_ARG(p && path, "gem_profile_write: NULL argument");
    gem__buf b;
    gem__buf_init(&b);
    gem_status_t st = gem__profile_text(p, &b);
    if (!st) st = gem__write_file_atomic(path, b.data, b.len);
    gem__buf_free(&b);
    return st;
}
