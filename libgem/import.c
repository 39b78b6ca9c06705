/*
 * import.c - routing data recorded by other tools, turned into traces (gem_import_format_t).
 *
 * GEM_IMPORT_SGLANG: SGLang's expert-distribution recorder output, {"logical_count": ...}.
 *   [L][E] is one aggregate over a whole run; a step-by-step trace is drawn from it:
 *   GEM_OPT_IMPORT_STEPS steps of GEM_OPT_IMPORT_BATCH tokens, each token choosing
 *   GEM_OPT_IMPORT_TOPK distinct experts with probability proportional to the counts (each
 *   pick among the experts the token has not chosen yet), reproducibly for GEM_OPT_SEED.
 *   [N][L][E] gives N steps directly. Layers whose counts are all zero (in every step) are
 *   dense layers, skipped; the others are renumbered 0..L-1 in order. The note says how many
 *   dense layers lead, the GEM_OPT_FIRST_DENSE_LAYERS that exports this model's layers need.
 * GEM_IMPORT_WIDE_CSV: ",dataset,iteration,layer_idx,0,1,...,E-1" (HarMoEny). Columns before
 *   the first numerically named one are descriptive; "iteration" (or "step") and "layer_idx"
 *   (or "layer") are required. GEM_OPT_IMPORT_FILTER "column=value" keeps the rows whose
 *   column has exactly that text. Steps are the distinct iteration values in order of first
 *   appearance, layers the distinct layer ids in ascending order. Every (iteration, layer)
 *   must have exactly one row.
 * GEM_IMPORT_TOKENS_JSONL: one JSON object per (token, layer) with "layer", "experts" and
 *   "token_idx" (or "token_pos", a position within one forward pass), optionally "request_id"
 *   or "problem_id" and "dataset", which together with token_idx name a token. Tokens in order
 *   of first appearance form steps of GEM_OPT_IMPORT_BATCH tokens (the last may be smaller).
 *   The number of experts is the largest id + 1 unless records carry "num_experts"; layers
 *   are the largest layer + 1. Negative expert ids are padding and are skipped. A token with
 *   no record in some layer simply counts in fewer layers.
 *
 * Notes on what was skipped, renumbered or drawn go to *note.
 */
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GEM__PUTS(b, lit) gem__buf_append((b), (lit), sizeof(lit) - 1)

/* ---- small pieces ---------------------------------------------------------------------- */

/* Lines of a buffer, with '\r' before '\n' removed; numbered from 1. */
typedef struct {
    const char *data;
    size_t len, at;
    int64_t lineno;
} gem__lines;

static int gem__next_line(gem__lines *it, const char **line, size_t *n)
{
    if (it->at >= it->len) return 0;
    const char *s = it->data + it->at;
    const char *nl = memchr(s, '\n', it->len - it->at);
    size_t k = nl ? (size_t)(nl - s) : it->len - it->at;
    it->at += k + (nl != NULL);
    it->lineno++;
    if (k && s[k - 1] == '\r') k--;
    *line = s;
    *n = k;
    return 1;
}

static int gem__blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

/* Open-addressing hash map from byte strings to int64 values: interns iteration labels and
 * token names, and finds repeated (iteration, layer) rows. */
typedef struct {
    uint64_t h;
    size_t off, len;
    int64_t val;
    int used;
} gem__slot;

typedef struct {
    gem__slot *slots;
    size_t cap, n;
    gem__buf keys;
} gem__map;

static uint64_t gem__hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static void gem__map_free(gem__map *m)
{
    free(m->slots);
    gem__buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}

static gem_status_t gem__map_grow(gem__map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    gem__slot *s = gem__array(cap, sizeof *s);
    if (!s) return GEM_ERR_NO_MEMORY;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].used) continue;
        size_t j = m->slots[i].h & (cap - 1);
        while (s[j].used) j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return GEM_OK;
}

/* Looks key up; if absent, inserts it with value val. *found = the stored value, and
 * *inserted = 1 when it was new. */
static gem_status_t gem__map_intern(gem__map *m, const void *key, size_t len, int64_t val,
                                    int64_t *found, int *inserted)
{
    if ((m->n + 1) * 2 > m->cap) {
        gem_status_t st = gem__map_grow(m);
        if (st) return st;
    }
    uint64_t h = gem__hash(key, len);
    size_t j = h & (m->cap - 1);
    for (; m->slots[j].used; j = (j + 1) & (m->cap - 1)) {
        gem__slot *s = &m->slots[j];
        if (s->h == h && s->len == len && !memcmp(m->keys.data + s->off, key, len)) {
            *found = s->val;
            *inserted = 0;
            return GEM_OK;
        }
    }
    size_t off = m->keys.len;
    gem__buf_append(&m->keys, len ? key : "", len);
    if (m->keys.failed) return GEM_ERR_NO_MEMORY;
    m->slots[j] = (gem__slot){h, off, len, val, 1};
    m->n++;
    *found = val;
    *inserted = 1;
    return GEM_OK;
}

/* Value stored for key, or -1 when absent (values are never negative). */
static int64_t gem__map_get(const gem__map *m, const void *key, size_t len)
{
    if (!m->cap) return -1;
    uint64_t h = gem__hash(key, len);
    for (size_t j = h & (m->cap - 1); m->slots[j].used; j = (j + 1) & (m->cap - 1)) {
        const gem__slot *s = &m->slots[j];
        if (s->h == h && s->len == len && !memcmp(m->keys.data + s->off, key, len)) return s->val;
    }
    return -1;
}

static int gem__i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- SGLang logical_count ------------------------------------------------------------- */

typedef struct {
    int64_t N;        /* steps in the file; 0 for the aggregate [L][E] */
    int32_t L, E;     /* layers and experts in the file */
    double *v;        /* [max(N,1)][L][E] */
} gem__counts;

/* Reads one row of E non-negative numbers. */
static gem_status_t gem__count_row(const json_t *row, int32_t E, double *dst, const char *where)
{
    if (!json_is_array(row))
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s: expected an array of %d counts, found %s",
                         where, (int)E, gem__json_type_name(row));
    if (json_array_size(row) != (size_t)E)
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s: %zu counts, the first row has %d", where,
                         json_array_size(row), (int)E);
    for (int32_t e = 0; e < E; e++) {
        gem_status_t st = gem__json_number(json_array_get(row, (size_t)e), &dst[e], "%s[%d]",
                                           where, (int)e);
        if (st) return st;
        if (dst[e] < 0)
            return gem__fail(GEM_ERR_INVALID_INPUT, "%s[%d]: count %.17g is negative", where,
                             (int)e, dst[e]);
    }
    return GEM_OK;
}

static gem_status_t gem__read_counts(const json_t *root, gem__counts *c)
{
    if (!json_is_object(root))
        return gem__fail(GEM_ERR_INVALID_INPUT, "expected a JSON object at the top, found %s",
                         gem__json_type_name(root));
    const json_t *lc = json_object_get(root, "logical_count");
    if (!json_is_array(lc) || json_array_size(lc) == 0)
        return gem__fail(GEM_ERR_INVALID_INPUT, "logical_count: expected a non-empty array, found "
                         "%s", gem__json_type_name(lc));
    const json_t *first = json_array_get(lc, 0);
    if (!json_is_array(first) || json_array_size(first) == 0)
        return gem__fail(GEM_ERR_INVALID_INPUT, "logical_count[0]: expected a non-empty array, "
                         "found %s", gem__json_type_name(first));
    int three = json_is_array(json_array_get(first, 0));
    size_t N = three ? json_array_size(lc) : 1;
    const json_t *layers0 = three ? first : lc;
    size_t L = json_array_size(layers0);
    const json_t *row0 = json_array_get(layers0, 0);
    size_t E = json_is_array(row0) ? json_array_size(row0) : 0;
    if (E == 0)
        return gem__fail(GEM_ERR_INVALID_INPUT, "logical_count: the first layer has no experts");
    if (L > GEM_MAX_LAYERS || E > GEM_MAX_EXPERTS || N > GEM_MAX_STEPS)
        return gem__fail(GEM_ERR_LIMIT, "logical_count: %zu steps x %zu layers x %zu experts "
                         "exceeds %d x %d x %d", N, L, E, GEM_MAX_STEPS, GEM_MAX_LAYERS,
                         GEM_MAX_EXPERTS);
    c->N = three ? (int64_t)N : 0;
    c->L = (int32_t)L;
    c->E = (int32_t)E;
    c->v = gem__array(N * L, E * sizeof(double));
    if (!c->v) return GEM_ERR_NO_MEMORY;
    for (size_t s = 0; s < N; s++) {
        const json_t *layers = three ? json_array_get(lc, s) : lc;
        if (!json_is_array(layers) || json_array_size(layers) != L)
            return gem__fail(GEM_ERR_INVALID_INPUT, "logical_count[%zu]: expected an array of %zu "
                             "layers, found %s of %zu", s, L, gem__json_type_name(layers),
                             json_is_array(layers) ? json_array_size(layers) : 0);
        for (size_t l = 0; l < L; l++) {
            char where[64];
            if (three) snprintf(where, sizeof where, "logical_count[%zu][%zu]", s, l);
            else snprintf(where, sizeof where, "logical_count[%zu]", l);
            gem_status_t st = gem__count_row(json_array_get(layers, l), (int32_t)E,
                                             c->v + (s * L + l) * E, where);
            if (st) return st;
        }
    }
    return GEM_OK;
}

/* Draws one token's k distinct experts, proportional to weights w (cum = prefix sums), and
 * adds 1 to each in row. Sampling with rejection of repeats gives exactly the law of drawing
 * without replacement; after many repeats (one dominant expert) an exact scan takes over. */
static void gem__draw_token(gem__rng *r, const double *w, const double *cum, int32_t E, int k,
                            double *row)
{
    int32_t chosen[64];
    double total = cum[E - 1];
    for (int j = 0; j < k; j++) {
        int32_t pick = -1;
        for (int attempt = 0; attempt < 32 && pick < 0; attempt++) {
            double u = gem__rng_uniform(r) * total;
            int32_t lo = 0, hi = E - 1; /* first i with cum[i] > u */
            while (lo < hi) {
                int32_t mid = lo + (hi - lo) / 2;
                if (cum[mid] > u) hi = mid;
                else lo = mid + 1;
            }
            if (!(w[lo] > 0)) continue; /* u rounded onto the end of the range */
            pick = lo;
            for (int i = 0; i < j; i++)
                if (chosen[i] == lo) pick = -1;
        }
        if (pick < 0) {
            double rest = 0;
            for (int32_t e = 0; e < E; e++) {
                int taken = 0;
                for (int i = 0; i < j; i++) taken |= chosen[i] == e;
                if (!taken) rest += w[e];
            }
            double u = gem__rng_uniform(r) * rest, acc = 0;
            for (int32_t e = 0; e < E; e++) {
                int taken = 0;
                for (int i = 0; i < j; i++) taken |= chosen[i] == e;
                if (taken || !(w[e] > 0)) continue;
                pick = e;
                acc += w[e];
                if (acc > u) break;
            }
        }
        chosen[j] = pick;
        row[pick] += 1.0;
    }
}

static gem_status_t gem__import_sglang(const char *data, size_t len, const gem_options_t *opts,
                                       gem_trace_t **out, gem__buf *note)
{
    json_t *root;
    gem_status_t st = gem__json_parse(data, len, "SGLang logical_count JSON", &root);
    if (st) return st;
    gem__counts c = {0};
    st = gem__read_counts(root, &c);
    json_decref(root);
    int32_t *keep = NULL, kept = 0;
    gem_trace_t *t = NULL;
    double *cum = NULL;
    size_t rows = (size_t)(c.N ? c.N : 1);
    if (!st && !(keep = gem__array((size_t)c.L, sizeof *keep))) st = GEM_ERR_NO_MEMORY;
    /* Dense layers: all zero in every step. */
    for (int32_t l = 0; l < c.L && !st; l++) {
        int any = 0;
        for (size_t s = 0; s < rows && !any; s++)
            for (int32_t e = 0; e < c.E && !any; e++)
                any = c.v[(s * (size_t)c.L + (size_t)l) * (size_t)c.E + (size_t)e] > 0;
        if (any) keep[kept++] = l;
    }
    if (!st && kept == 0)
        st = gem__fail(GEM_ERR_INVALID_INPUT, "logical_count: every layer is all zero");
    if (!st && kept < c.L) {
        gem__buf_printf(note, "skipped %d all-zero (dense) layer%s of %d:", (int)(c.L - kept),
                        c.L - kept > 1 ? "s" : "", (int)c.L);
        for (int32_t l = 0, j = 0; l < c.L; l++) {
            if (j < kept && keep[j] == l) { j++; continue; }
            gem__buf_printf(note, " %d", (int)l);
        }
        gem__buf_printf(note, "; the other %d are numbered 0..%d\n", (int)kept, (int)(kept - 1));
        /* Engines number the model's layers, dense ones included: say how to get back there. */
        const int32_t lead = keep[0], later = c.L - kept - keep[0];
        if (lead > 0)
            gem__buf_printf(note, "%d leading dense layer%s: exports with "
                            "GEM_OPT_FIRST_DENSE_LAYERS %d (gem export --first-dense-layers "
                            "%d) number the layers as the model does\n",
                            (int)lead, lead > 1 ? "s" : "", (int)lead, (int)lead);
        if (later > 0)
            gem__buf_printf(note, "%d dense layer%s after the first MoE layer: exports "
                            "number the layers without %s\n", (int)later,
                            later > 1 ? "s" : "", later > 1 ? "them" : "it");
    }
    if (!st) st = gem_trace_create(&t, kept, c.E);
    if (!st && c.N) {
        /* [N][L][E]: the steps are in the file. */
        if (!(st = gem__trace_reserve(t, c.N)))
            for (int64_t s = 0; s < c.N && !st; s++)
                for (int32_t j = 0; j < kept && !st; j++)
                    st = gem_trace_set(t, s, j, c.v + ((size_t)s * (size_t)c.L + (size_t)keep[j]) *
                                                         (size_t)c.E, (size_t)c.E);
        if (!st)
            gem__buf_printf(note, "logical_count has %lld steps of %d layers x %d experts\n",
                            (long long)c.N, (int)kept, (int)c.E);
    } else if (!st) {
        int64_t S = gem__opt_int(opts, GEM_OPT_IMPORT_STEPS);
        int64_t B = gem__opt_int(opts, GEM_OPT_IMPORT_BATCH);
        int K = (int)gem__opt_int(opts, GEM_OPT_IMPORT_TOPK);
        uint64_t seed = (uint64_t)gem__opt_int(opts, GEM_OPT_SEED);
        double draws = (double)S * kept * (double)B * K;
        if (draws > 1e10)
            st = gem__fail(GEM_ERR_LIMIT, "drawing %lld steps x %d layers x %lld tokens x top-%d "
                           "= %.3g choices is beyond libgem's limit of 1e10; lower "
                           "GEM_OPT_IMPORT_STEPS or GEM_OPT_IMPORT_BATCH", (long long)S,
                           (int)kept, (long long)B, K, draws);
        if (!st) st = gem__trace_reserve(t, S);
        if (!st && !(cum = gem__array((size_t)kept * (size_t)c.E, sizeof *cum)))
            st = GEM_ERR_NO_MEMORY;
        int capped = 0;
        for (int32_t j = 0; j < kept && !st; j++) {
            const double *w = c.v + (size_t)keep[j] * (size_t)c.E;
            double acc = 0;
            int nonzero = 0;
            for (int32_t e = 0; e < c.E; e++) {
                acc += w[e];
                nonzero += w[e] > 0;
                cum[(size_t)j * (size_t)c.E + (size_t)e] = acc;
            }
            if (nonzero < K) capped = 1;
            if (!isfinite(acc))
                st = gem__fail(GEM_ERR_INVALID_INPUT, "logical_count[%d]: the counts add up to "
                               "more than a double holds", (int)keep[j]);
        }
        gem__rng r;
        gem__rng_seed(&r, seed);
        double *row = st ? NULL : gem__array((size_t)c.E, sizeof *row);
        if (!st && !row) st = GEM_ERR_NO_MEMORY;
        for (int64_t s = 0; s < S && !st; s++)
            for (int32_t j = 0; j < kept && !st; j++) {
                const double *w = c.v + (size_t)keep[j] * (size_t)c.E;
                const double *cj = cum + (size_t)j * (size_t)c.E;
                int nonzero = 0;
                for (int32_t e = 0; e < c.E; e++) nonzero += w[e] > 0;
                int k = nonzero < K ? nonzero : K;
                memset(row, 0, (size_t)c.E * sizeof *row);
                for (int64_t b = 0; b < B; b++) gem__draw_token(&r, w, cj, c.E, k, row);
                st = gem_trace_set(t, s, j, row, (size_t)c.E);
            }
        free(row);
        if (!st) {
            gem__buf_printf(note, "logical_count is one aggregate over a whole run: drew %lld "
                            "steps of %lld tokens, each choosing %d distinct experts with "
                            "probability proportional to the counts (seed %llu)\n",
                            (long long)S, (long long)B, K, (unsigned long long)seed);
            if (capped)
                gem__buf_printf(note, "some layers have fewer than %d experts with tokens; their "
                                "tokens choose every such expert\n", K);
        }
    }
    free(cum);
    free(keep);
    free(c.v);
    if (st) {
        gem_trace_destroy(t);
        return st;
    }
    *out = t;
    return GEM_OK;
}

/* ---- wide CSV ---------------------------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t n;
} gem__field;

/* Splits a CSV line into at most cap fields (double-quoted fields may hold commas; their
 * quotes are removed, inner "" kept as is); returns the number of fields in the line. Fields
 * are trimmed of spaces. */
static size_t gem__csv_split(const char *line, size_t n, gem__field *f, size_t cap)
{
    size_t k = 0, i = 0;
    for (;;) {
        size_t a = i;
        int quoted = 0;
        while (a < n && (line[a] == ' ' || line[a] == '\t')) a++;
        size_t b = a;
        if (a < n && line[a] == '"') {
            quoted = 1;
            b = a + 1;
            while (b < n && !(line[b] == '"' && (b + 1 >= n || line[b + 1] != '"'))) b += line[b] == '"' ? 2 : 1;
        }
        size_t end = b;
        while (end < n && line[end] != ',') end++;
        if (k < cap) {
            if (quoted) {
                f[k].s = line + a + 1;
                f[k].n = (b > a + 1 ? b : a + 1) - (a + 1);
            } else {
                size_t e2 = end;
                while (e2 > a && (line[e2 - 1] == ' ' || line[e2 - 1] == '\t')) e2--;
                f[k].s = line + a;
                f[k].n = e2 - a;
            }
        }
        k++;
        if (end >= n) break;
        i = end + 1;
    }
    return k;
}

static int gem__field_is(const gem__field *f, const char *s)
{
    return f->n == strlen(s) && !memcmp(f->s, s, f->n);
}

typedef struct {
    int64_t step;      /* index of the iteration value */
    int64_t layer_id;  /* as in the file */
    int64_t line;
    size_t index;      /* values at index * E */
} gem__wide_row;

typedef struct {
    size_t ncols, first_expert;
    int32_t E;
    size_t col_iter, col_layer, col_filter, col_hint; /* col_filter/hint: SIZE_MAX if none */
    const char *filter_value;
    size_t filter_len;
    gem__field *f;     /* [ncols + 1] scratch */
    gem__wide_row *rows;
    size_t n, cap;
    double *values;
    gem__map iters;    /* iteration text -> step */
    gem__map cells;    /* (step, layer id) -> line */
    gem__buf iter_text; /* iteration texts, NUL-separated, in step order */
    size_t *iter_off;  /* [steps] offsets into iter_text */
    size_t iter_cap;
    int64_t skipped;
    char *hint_name;   /* a descriptive column's name, for the hint about filters */
} gem__wide;

static gem_status_t gem__wide_header(gem__wide *w, const char *line, size_t n, int64_t lineno,
                                     const gem_options_t *opts)
{
    size_t k = gem__csv_split(line, n, NULL, 0);
    w->ncols = k;
    if (!(w->f = gem__array(k + 1, sizeof *w->f))) return GEM_ERR_NO_MEMORY;
    gem__csv_split(line, n, w->f, k + 1);
    size_t first = k;
    int64_t id;
    for (size_t i = 0; i < k && first == k; i++)
        if (gem__parse_uint(w->f[i].s, w->f[i].n, INT32_MAX, &id) == 1) first = i;
    if (first == k)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: the header names no expert columns "
                         "(0, 1, ...)", (long long)lineno);
    if (k - first > GEM_MAX_EXPERTS)
        return gem__fail(GEM_ERR_LIMIT, "line %lld: %zu experts, at most %d", (long long)lineno,
                         k - first, GEM_MAX_EXPERTS);
    for (size_t i = first; i < k; i++)
        if (gem__parse_uint(w->f[i].s, w->f[i].n, INT32_MAX, &id) != 1 ||
            id != (int64_t)(i - first) || (w->f[i].n > 1 && w->f[i].s[0] == '0'))
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: header column %zu is \"%.*s\", "
                             "expected expert %zu (experts must be 0..E-1 in order, last)",
                             (long long)lineno, i + 1, (int)(w->f[i].n > 40 ? 40 : w->f[i].n),
                             w->f[i].s, i - first);
    w->first_expert = first;
    w->E = (int32_t)(k - first);
    w->col_iter = w->col_layer = w->col_filter = w->col_hint = SIZE_MAX;
    for (size_t i = 0; i < first; i++) {
        if (gem__field_is(&w->f[i], "iteration") ||
            (gem__field_is(&w->f[i], "step") && w->col_iter == SIZE_MAX))
            w->col_iter = i;
        else if (gem__field_is(&w->f[i], "layer_idx") ||
                 (gem__field_is(&w->f[i], "layer") && w->col_layer == SIZE_MAX))
            w->col_layer = i;
        else if (w->f[i].n && w->col_hint == SIZE_MAX)
            w->col_hint = i;
    }
    if (w->col_hint != SIZE_MAX &&
        !(w->hint_name = gem__sprintf("%.*s", (int)w->f[w->col_hint].n, w->f[w->col_hint].s)))
        return GEM_ERR_NO_MEMORY;
    if (w->col_iter == SIZE_MAX || w->col_layer == SIZE_MAX)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: the header has no %s column before "
                         "the experts", (long long)lineno,
                         w->col_iter == SIZE_MAX ? "iteration (or step)" : "layer_idx (or layer)");
    const char *filter = gem__opt_string(opts, GEM_OPT_IMPORT_FILTER);
    if (filter && *filter) {
        const char *eq = strchr(filter, '=');
        if (!eq)
            return gem__fail(GEM_ERR_INVALID_ARGUMENT, "GEM_OPT_IMPORT_FILTER \"%s\" is not "
                             "column=value", filter);
        for (size_t i = 0; i < first; i++)
            if (w->f[i].n == (size_t)(eq - filter) && !memcmp(w->f[i].s, filter, w->f[i].n))
                w->col_filter = i;
        if (w->col_filter == SIZE_MAX)
            return gem__fail(GEM_ERR_INVALID_ARGUMENT, "GEM_OPT_IMPORT_FILTER: column \"%.*s\" is "
                             "not among the header's descriptive columns", (int)(eq - filter),
                             filter);
        w->filter_value = eq + 1;
        w->filter_len = strlen(eq + 1);
    }
    return GEM_OK;
}

static gem_status_t gem__wide_new_step(gem__wide *w, const gem__field *f, int64_t step)
{
    if ((size_t)step >= w->iter_cap) {
        size_t cap = w->iter_cap ? w->iter_cap * 2 : 64;
        size_t *o = gem__realloc(w->iter_off, cap * sizeof *o);
        if (!o) return GEM_ERR_NO_MEMORY;
        w->iter_off = o;
        w->iter_cap = cap;
    }
    w->iter_off[step] = w->iter_text.len;
    gem__buf_append(&w->iter_text, f->s, f->n);
    gem__buf_append(&w->iter_text, "", 1);
    return w->iter_text.failed ? GEM_ERR_NO_MEMORY : GEM_OK;
}

static const char *gem__wide_iter(const gem__wide *w, int64_t step)
{
    return w->iter_text.data + w->iter_off[step];
}

static gem_status_t gem__wide_row_add(gem__wide *w, const char *line, size_t n, int64_t lineno)
{
    size_t k = gem__csv_split(line, n, w->f, w->ncols + 1);
    if (k != w->ncols)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: %zu fields, the header has %zu",
                         (long long)lineno, k, w->ncols);
    const gem__field *f = w->f;
    if (w->col_filter != SIZE_MAX &&
        !(f[w->col_filter].n == w->filter_len &&
          !memcmp(f[w->col_filter].s, w->filter_value, w->filter_len))) {
        w->skipped++;
        return GEM_OK;
    }
    /* Layer id: a non-negative integer (pandas may print 3.0). */
    double lid;
    const gem__field *lf = &f[w->col_layer];
    if (!gem__parse_decimal(lf->s, lf->n, &lid) || lid != floor(lid) || lid < 0 || lid > INT32_MAX)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: layer \"%.*s\" is not a non-negative "
                         "integer", (long long)lineno, (int)(lf->n > 40 ? 40 : lf->n), lf->s);
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        if (cap > SIZE_MAX / sizeof(double) / (size_t)w->E)
            return gem__fail(GEM_ERR_LIMIT, "too many rows to hold in memory");
        gem__wide_row *r = gem__realloc(w->rows, cap * sizeof *r);
        if (!r) return GEM_ERR_NO_MEMORY;
        w->rows = r;
        double *v = gem__realloc(w->values, cap * (size_t)w->E * sizeof *v);
        if (!v) return GEM_ERR_NO_MEMORY;
        w->values = v;
        w->cap = cap;
    }
    double *v = w->values + w->n * (size_t)w->E;
    for (int32_t e = 0; e < w->E; e++) {
        const gem__field *x = &f[w->first_expert + (size_t)e];
        if (!gem__parse_decimal(x->s, x->n, &v[e]) || !isfinite(v[e]))
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: expert %d: \"%.*s\" is not a "
                             "finite decimal number", (long long)lineno, (int)e,
                             (int)(x->n > 40 ? 40 : x->n), x->s);
        if (v[e] < 0)
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: expert %d: count %.*s is "
                             "negative", (long long)lineno, (int)e, (int)(x->n > 40 ? 40 : x->n),
                             x->s);
        v[e] += 0.0;
    }
    int64_t step;
    int inserted;
    const gem__field *it = &f[w->col_iter];
    gem_status_t st = gem__map_intern(&w->iters, it->s, it->n, (int64_t)w->iters.n, &step,
                                      &inserted);
    if (!st && inserted) st = gem__wide_new_step(w, it, step);
    if (st) return st;
    if (step >= GEM_MAX_STEPS)
        return gem__fail(GEM_ERR_LIMIT, "line %lld: more than %d iterations", (long long)lineno,
                         GEM_MAX_STEPS);
    int64_t cell[2] = {step, (int64_t)lid}, prev;
    if ((st = gem__map_intern(&w->cells, cell, sizeof cell, lineno, &prev, &inserted))) return st;
    if (!inserted) {
        if (w->col_filter == SIZE_MAX && w->col_hint != SIZE_MAX) {
            const gem__field *h = &w->f[w->col_hint];
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: iteration %s layer %lld repeats "
                             "line %lld (rows of several runs? keep one with "
                             "GEM_OPT_IMPORT_FILTER, e.g. \"%s=%.*s\")", (long long)lineno,
                             gem__wide_iter(w, step), (long long)lid, (long long)prev,
                             w->hint_name, (int)(h->n > 40 ? 40 : h->n), h->s);
        }
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: iteration %s layer %lld repeats line "
                         "%lld", (long long)lineno, gem__wide_iter(w, step), (long long)lid,
                         (long long)prev);
    }
    w->rows[w->n] = (gem__wide_row){step, (int64_t)lid, lineno, w->n};
    w->n++;
    return GEM_OK;
}

static void gem__wide_free(gem__wide *w)
{
    free(w->f);
    free(w->rows);
    free(w->values);
    gem__map_free(&w->iters);
    gem__map_free(&w->cells);
    gem__buf_free(&w->iter_text);
    free(w->iter_off);
    free(w->hint_name);
}

/* Distinct layer ids, ascending; *L their number. */
static gem_status_t gem__wide_layers(const gem__wide *w, int64_t **ids, int32_t *L)
{
    int64_t *x = gem__array(w->n, sizeof *x);
    if (!x) return GEM_ERR_NO_MEMORY;
    for (size_t i = 0; i < w->n; i++) x[i] = w->rows[i].layer_id;
    qsort(x, w->n, sizeof *x, gem__i64_cmp);
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++)
        if (k == 0 || x[k - 1] != x[i]) x[k++] = x[i];
    if (k > GEM_MAX_LAYERS) {
        free(x);
        return gem__fail(GEM_ERR_LIMIT, "%zu distinct layers, at most %d", k, GEM_MAX_LAYERS);
    }
    *ids = x;
    *L = (int32_t)k;
    return GEM_OK;
}

static int32_t gem__layer_index(const int64_t *ids, int32_t L, int64_t id)
{
    int32_t lo = 0, hi = L - 1;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The first (iteration, layer) without a row, found without an S x L table. */
static gem_status_t gem__wide_missing(const gem__wide *w, const int64_t *ids, int32_t L, int64_t S)
{
    int64_t *count = gem__array((size_t)S, sizeof *count);
    if (!count) return GEM_ERR_NO_MEMORY;
    for (size_t i = 0; i < w->n; i++) count[w->rows[i].step]++;
    int64_t s = 0;
    while (s < S && count[s] == L) s++;
    free(count);
    if (s == S) return GEM_OK;
    for (int32_t j = 0; j < L; j++) {
        int64_t cell[2] = {s, ids[j]};
        if (gem__map_get(&w->cells, cell, sizeof cell) < 0)
            return gem__fail(GEM_ERR_INCOMPLETE, "iteration %s has no row for layer %lld",
                             gem__wide_iter(w, s), (long long)ids[j]);
    }
    return gem__fail(GEM_ERR_INTERNAL, "wide CSV: row count and rows disagree");
}

static gem_status_t gem__import_wide(const char *data, size_t len, const gem_options_t *opts,
                                     gem_trace_t **out, gem__buf *note)
{
    if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)) data += 3, len -= 3; /* byte order mark */
    gem__wide w;
    memset(&w, 0, sizeof w);
    gem__lines it = {data, len, 0, 0};
    const char *line;
    size_t n;
    int have_header = 0;
    gem_status_t st = GEM_OK;
    while (!st && gem__next_line(&it, &line, &n)) {
        if (gem__blank(line, n)) continue;
        if (have_header) st = gem__wide_row_add(&w, line, n, it.lineno);
        else st = gem__wide_header(&w, line, n, it.lineno, opts);
        have_header = 1;
    }
    if (!st && !have_header) st = gem__fail(GEM_ERR_INVALID_INPUT, "no header line");
    if (!st && w.n == 0 && w.skipped)
        st = gem__fail(GEM_ERR_INVALID_INPUT, "no row matches GEM_OPT_IMPORT_FILTER (%lld rows "
                       "skipped)", (long long)w.skipped);
    if (!st && w.n == 0) st = gem__fail(GEM_ERR_INVALID_INPUT, "no data rows");
    int64_t *ids = NULL;
    int32_t L = 0;
    int64_t S = (int64_t)w.iters.n;
    gem_trace_t *t = NULL;
    if (!st) st = gem__wide_layers(&w, &ids, &L);
    if (!st && (uint64_t)S * (uint64_t)L != w.n) st = gem__wide_missing(&w, ids, L, S);
    if (!st) st = gem_trace_create(&t, L, w.E);
    if (!st) st = gem__trace_reserve(t, S);
    for (size_t i = 0; i < w.n && !st; i++) {
        const gem__wide_row *r = &w.rows[i];
        st = gem_trace_set(t, r->step, gem__layer_index(ids, L, r->layer_id),
                           w.values + r->index * (size_t)w.E, (size_t)w.E);
    }
    if (!st) {
        gem__buf_printf(note, "wide CSV: %zu rows: %lld iterations x %d layers x %d experts",
                        w.n, (long long)S, (int)L, (int)w.E);
        if (w.col_filter != SIZE_MAX)
            gem__buf_printf(note, " (filter %s kept them; %lld rows skipped)",
                            gem__opt_string(opts, GEM_OPT_IMPORT_FILTER), (long long)w.skipped);
        GEM__PUTS(note, "\n");
        if (ids[0] != 0 || ids[L - 1] != L - 1) {
            GEM__PUTS(note, "layer ids");
            for (int32_t j = 0; j < L && j < 16; j++) gem__buf_printf(note, " %lld", (long long)ids[j]);
            gem__buf_printf(note, "%s renumbered 0..%d\n", L > 16 ? " ..." : "", (int)(L - 1));
        }
    }
    free(ids);
    gem__wide_free(&w);
    if (st) {
        gem_trace_destroy(t);
        return st;
    }
    *out = t;
    return GEM_OK;
}

/* ---- per-token JSONL --------------------------------------------------------------------- */

typedef struct {
    int64_t token;   /* ordinal of first appearance */
    int64_t line;
    int32_t layer;
    size_t first, k; /* expert ids at ids[first .. first + k) */
} gem__tok_rec;

typedef struct {
    gem__tok_rec *recs;
    size_t n, cap;
    int32_t *ids;
    size_t nids, ids_cap;
    gem__map tokens;
    gem__buf key;
    int mode;          /* 0 unknown, 1 token_idx, 2 token_pos */
    int64_t pass, prev_pos;
    int32_t prev_layer;
    int64_t num_experts; /* from the records, 0 if none say */
    int32_t max_id, max_layer;
    int64_t padding;
} gem__tok;

/* Appends a request or dataset id to the token key: type tag, text, separator. */
static gem_status_t gem__key_part(gem__buf *k, const json_t *v, const char *name, int64_t lineno)
{
    if (!v || json_is_null(v)) {
        GEM__PUTS(k, "-\x1f");
    } else if (json_is_string(v)) {
        GEM__PUTS(k, "s");
        gem__buf_append(k, json_string_value(v), json_string_length(v));
        GEM__PUTS(k, "\x1f");
    } else if (json_is_integer(v)) {
        gem__buf_printf(k, "i%lld\x1f", (long long)json_integer_value(v));
    } else {
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: %s: expected a string or an integer, "
                         "found %s", (long long)lineno, name, gem__json_type_name(v));
    }
    return GEM_OK;
}

static gem_status_t gem__tok_record(gem__tok *tk, const json_t *o, int64_t lineno)
{
    if (!json_is_object(o))
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: expected a JSON object, found %s",
                         (long long)lineno, gem__json_type_name(o));
    int64_t layer, pos, x;
    gem_status_t st;
    const json_t *lv = json_object_get(o, "layer");
    if (!lv) return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: no \"layer\"", (long long)lineno);
    if ((st = gem__json_int(lv, INT64_MIN, INT64_MAX, GEM_ERR_INVALID_INPUT, &layer,
                            "line %lld: layer", (long long)lineno)))
        return st;
    if (layer < 0)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: layer %lld is negative",
                         (long long)lineno, (long long)layer);
    if (layer >= GEM_MAX_LAYERS)
        return gem__fail(GEM_ERR_LIMIT, "line %lld: layer %lld, libgem reads at most %d layers",
                         (long long)lineno, (long long)layer, GEM_MAX_LAYERS);
    const json_t *ti = json_object_get(o, "token_idx"), *tp = json_object_get(o, "token_pos");
    int mode = ti ? 1 : tp ? 2 : 0;
    if (!mode)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: no \"token_idx\" (or \"token_pos\")",
                         (long long)lineno);
    if (tk->mode && mode != tk->mode)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: has \"%s\" but earlier records have "
                         "\"%s\"", (long long)lineno, mode == 1 ? "token_idx" : "token_pos",
                         mode == 1 ? "token_pos" : "token_idx");
    tk->mode = mode;
    if ((st = gem__json_int(mode == 1 ? ti : tp, 0, INT64_MAX, GEM_ERR_INVALID_INPUT, &pos,
                            "line %lld: %s", (long long)lineno,
                            mode == 1 ? "token_idx" : "token_pos")))
        return st;
    const json_t *ne = json_object_get(o, "num_experts");
    if (ne) {
        if ((st = gem__json_int(ne, 1, INT64_MAX, GEM_ERR_INVALID_INPUT, &x,
                                "line %lld: num_experts", (long long)lineno)))
            return st;
        if (x > GEM_MAX_EXPERTS)
            return gem__fail(GEM_ERR_LIMIT, "line %lld: num_experts %lld, at most %d",
                             (long long)lineno, (long long)x, GEM_MAX_EXPERTS);
        if (tk->num_experts && x != tk->num_experts)
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: num_experts %lld, earlier records "
                             "say %lld", (long long)lineno, (long long)x,
                             (long long)tk->num_experts);
        tk->num_experts = x;
    }
    const json_t *ex = json_object_get(o, "experts");
    if (!json_is_array(ex))
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: experts: expected an array of expert "
                         "ids, found %s", (long long)lineno, gem__json_type_name(ex));
    size_t k = json_array_size(ex);
    if (tk->nids + k > tk->ids_cap) {
        size_t cap = tk->ids_cap ? tk->ids_cap : 1024;
        while (cap < tk->nids + k) cap *= 2;
        int32_t *ids = gem__realloc(tk->ids, cap * sizeof *ids);
        if (!ids) return GEM_ERR_NO_MEMORY;
        tk->ids = ids;
        tk->ids_cap = cap;
    }
    size_t first = tk->nids;
    for (size_t i = 0; i < k; i++) {
        if ((st = gem__json_int(json_array_get(ex, i), INT64_MIN, INT64_MAX,
                                GEM_ERR_INVALID_INPUT, &x, "line %lld: experts[%zu]",
                                (long long)lineno, i)))
            return st;
        if (x < 0) { tk->padding++; continue; }
        if (x >= GEM_MAX_EXPERTS)
            return gem__fail(GEM_ERR_LIMIT, "line %lld: experts[%zu]: expert %lld, libgem reads "
                             "at most %d experts", (long long)lineno, i, (long long)x,
                             GEM_MAX_EXPERTS);
        if (tk->num_experts && x >= tk->num_experts)
            return gem__fail(GEM_ERR_OUT_OF_RANGE, "line %lld: experts[%zu]: expert %lld, but "
                             "num_experts is %lld", (long long)lineno, i, (long long)x,
                             (long long)tk->num_experts);
        for (size_t j = first; j < tk->nids; j++)
            if (tk->ids[j] == x)
                return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: experts[%zu]: expert %lld is "
                                 "listed twice", (long long)lineno, i, (long long)x);
        tk->ids[tk->nids++] = (int32_t)x;
        if (x > tk->max_id) tk->max_id = (int32_t)x;
    }
    /* The token's name: dataset, request, (forward pass,) index. */
    gem__buf *key = &tk->key;
    key->len = 0;
    const json_t *rid = json_object_get(o, "request_id");
    if (!rid) rid = json_object_get(o, "problem_id");
    if ((st = gem__key_part(key, json_object_get(o, "dataset"), "dataset", lineno)) ||
        (st = gem__key_part(key, rid, json_object_get(o, "request_id") ? "request_id"
                                                                      : "problem_id", lineno)))
        return st;
    if (mode == 2) {
        /* Positions restart in every forward pass, which runs its layers in order. */
        if (tk->n && (layer < tk->prev_layer || (layer == tk->prev_layer && pos <= tk->prev_pos)))
            tk->pass++;
        tk->prev_layer = (int32_t)layer;
        tk->prev_pos = pos;
        gem__buf_printf(key, "p%lld\x1f", (long long)tk->pass);
    }
    gem__buf_printf(key, "%lld", (long long)pos);
    if (key->failed) return GEM_ERR_NO_MEMORY;
    int64_t token;
    int inserted;
    if ((st = gem__map_intern(&tk->tokens, key->data, key->len, (int64_t)tk->tokens.n, &token,
                              &inserted)))
        return st;
    if (tk->n == tk->cap) {
        size_t cap = tk->cap ? tk->cap * 2 : 1024;
        gem__tok_rec *r = gem__realloc(tk->recs, cap * sizeof *r);
        if (!r) return GEM_ERR_NO_MEMORY;
        tk->recs = r;
        tk->cap = cap;
    }
    tk->recs[tk->n++] = (gem__tok_rec){token, lineno, (int32_t)layer, first, tk->nids - first};
    if (layer > tk->max_layer) tk->max_layer = (int32_t)layer;
    return GEM_OK;
}

static int gem__rec_cmp(const void *a, const void *b)
{
    const gem__tok_rec *x = a, *y = b;
    if (x->token != y->token) return x->token < y->token ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static gem_status_t gem__import_jsonl(const char *data, size_t len, const gem_options_t *opts,
                                      gem_trace_t **out, gem__buf *note)
{
    gem__tok tk;
    memset(&tk, 0, sizeof tk);
    tk.max_id = tk.max_layer = -1;
    gem__buf_init(&tk.key);
    gem__lines it = {data, len, 0, 0};
    const char *line;
    size_t n;
    gem_status_t st = GEM_OK;
    while (!st && gem__next_line(&it, &line, &n)) {
        if (gem__blank(line, n)) continue;
        json_error_t err;
        json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &err);
        if (!o) {
            st = json_error_code(&err) == json_error_out_of_memory
                     ? gem__fail(GEM_ERR_NO_MEMORY, "out of memory parsing JSON")
                     : gem__fail(GEM_ERR_INVALID_INPUT, "line %lld, column %d: %s",
                                 (long long)it.lineno, err.column, err.text);
            break;
        }
        st = gem__tok_record(&tk, o, it.lineno);
        json_decref(o);
    }
    if (!st && tk.n == 0) st = gem__fail(GEM_ERR_INVALID_INPUT, "no records");
    if (!st && tk.max_id < 0 && !tk.num_experts)
        st = gem__fail(GEM_ERR_INVALID_INPUT, "no record names an expert");
    /* One record per (token, layer). */
    if (!st) {
        qsort(tk.recs, tk.n, sizeof *tk.recs, gem__rec_cmp);
        for (size_t i = 1; i < tk.n && !st; i++)
            if (tk.recs[i].token == tk.recs[i - 1].token && tk.recs[i].layer == tk.recs[i - 1].layer)
                st = gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: the same token and layer %d as "
                               "line %lld", (long long)tk.recs[i].line, (int)tk.recs[i].layer,
                               (long long)tk.recs[i - 1].line);
    }
    int64_t B = gem__opt_int(opts, GEM_OPT_IMPORT_BATCH);
    int64_t T = (int64_t)tk.tokens.n;
    int64_t S = (T + B - 1) / B;
    int32_t L = tk.max_layer + 1;
    int32_t E = tk.num_experts ? (int32_t)tk.num_experts : tk.max_id + 1;
    gem_trace_t *t = NULL;
    uint8_t *seen = NULL;
    if (!st) st = gem_trace_create(&t, L, E);
    if (!st) st = gem__trace_reserve(t, S);
    if (!st && !(seen = gem__array((size_t)L, 1))) st = GEM_ERR_NO_MEMORY;
    if (!st) {
        size_t cells = (size_t)S * (size_t)L;
        memset(t->present, 1, cells);
        t->num_steps = S;
        for (size_t i = 0; i < tk.n; i++) {
            const gem__tok_rec *r = &tk.recs[i];
            double *row = t->loads + ((size_t)(r->token / B) * (size_t)L + (size_t)r->layer) *
                                         (size_t)E;
            for (size_t j = 0; j < r->k; j++) row[tk.ids[r->first + j]] += 1.0;
            seen[r->layer] = 1;
        }
        gem__buf_printf(note, "tokens JSONL: %zu records, %lld tokens in %lld step%s of %lld "
                        "tokens", tk.n, (long long)T, (long long)S, S == 1 ? "" : "s",
                        (long long)B);
        if (T % B) gem__buf_printf(note, " (the last has %lld)", (long long)(T % B));
        gem__buf_printf(note, "; %d layers x %d experts (%s)\n", (int)L, (int)E,
                        tk.num_experts ? "num_experts from the records" : "largest id + 1");
        uint64_t missing = (uint64_t)T * (uint64_t)L - tk.n;
        if (missing)
            gem__buf_printf(note, "%llu (token, layer) pairs have no record; those tokens count "
                            "in fewer layers\n", (unsigned long long)missing);
        for (int32_t l = 0; l < L; l++)
            if (!seen[l]) gem__buf_printf(note, "layer %d has no records (all zero)\n", (int)l);
        if (tk.padding)
            gem__buf_printf(note, "%lld negative expert ids (padding) skipped\n",
                            (long long)tk.padding);
    }
    free(seen);
    free(tk.recs);
    free(tk.ids);
    gem__map_free(&tk.tokens);
    gem__buf_free(&tk.key);
    if (st) {
        gem_trace_destroy(t);
        return st;
    }
    *out = t;
    return GEM_OK;
}

/* ---- entry points ------------------------------------------------------------------------ */

static gem_status_t gem__import(gem_import_format_t format, const char *data, size_t len,
                                const gem_options_t *opts, gem_trace_t **out, char **note)
{
    gem__buf b;
    gem__buf_init(&b);
    gem_trace_t *t = NULL;
    gem_status_t st;
    switch (format) {
    case GEM_IMPORT_SGLANG: st = gem__import_sglang(data, len, opts, &t, &b); break;
    case GEM_IMPORT_WIDE_CSV: st = gem__import_wide(data, len, opts, &t, &b); break;
    case GEM_IMPORT_TOKENS_JSONL: st = gem__import_jsonl(data, len, opts, &t, &b); break;
    default:
        st = gem__fail(GEM_ERR_INVALID_ARGUMENT, "import format %d is not one of "
                       "gem_import_format_t", (int)format);
    }
    if (!st && b.failed) st = gem__fail(GEM_ERR_NO_MEMORY, "out of memory writing the note");
    if (!st && note && !b.data && !(b.data = gem__strdup(""))) st = GEM_ERR_NO_MEMORY;
    if (st) {
        gem_trace_destroy(t);
        gem__buf_free(&b);
        return st;
    }
    *out = t;
    if (note) {
        /* Without the last newline, so that one note prints as one line. */
        if (b.len && b.data[b.len - 1] == '\n') b.data[--b.len] = '\0';
        *note = b.data;
    } else {
        gem__buf_free(&b);
    }
    return GEM_OK;
}

static int gem__format_valid(gem_import_format_t format)
{
    return format == GEM_IMPORT_SGLANG || format == GEM_IMPORT_WIDE_CSV ||
           format == GEM_IMPORT_TOKENS_JSONL;
}

GEM_API gem_status_t gem_trace_import_buffer(gem_import_format_t format, const char *data,
                                             size_t len, const gem_options_t *opts,
                                             gem_trace_t **out, char **note)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_trace_import_buffer: out is NULL");
    GEM__CHECK_ARG(data || len == 0, "gem_trace_import_buffer: data is NULL");
    GEM__CHECK_ARG(gem__format_valid(format), "import format %d is not one of gem_import_format_t",
                   (int)format);
    gem_status_t st = gem__import(format, data ? data : "", len, opts, out, note);
    if (st && st != GEM_ERR_NO_MEMORY && st != GEM_ERR_INVALID_ARGUMENT)
        return gem__fail_context(st, "import");
    return st;
}

GEM_API gem_status_t gem_trace_import(gem_import_format_t format, const char *path,
                                      const gem_options_t *opts, gem_trace_t **out, char **note)
{
    gem__clear_error();
    GEM__CHECK_ARG(path && out, "gem_trace_import: NULL argument");
    GEM__CHECK_ARG(gem__format_valid(format), "import format %d is not one of gem_import_format_t",
                   (int)format);
    char *data;
    size_t len;
    gem_status_t st = gem__read_file(path, &data, &len);
    if (st) return st;
    st = gem__import(format, data, len, opts, out, note);
    free(data);
    if (st && st != GEM_ERR_NO_MEMORY && st != GEM_ERR_INVALID_ARGUMENT)
        return gem__fail_context(st, "%s", path);
    return st;
}
