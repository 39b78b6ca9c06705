/*
 * io_trace.c - reading and writing SPEC 4 trace files (CSV).
 *
 * The reader first collects every row (so a file that claims step 99999999 in two rows costs
 * two rows of memory, not 10^8 steps), then sorts the (step, layer) keys to find duplicates
 * and gaps, and only then builds the trace, whose size then equals what the file holds.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GEM__PUTS(b, lit) gem__buf_append((b), (lit), sizeof(lit) - 1)

/* One data row: its key, line and position in the value store. */
typedef struct {
    int64_t step;
    int32_t layer;
    int64_t line;
    size_t index; /* row number in file order: values at index * E */
} gem__csv_row;

typedef struct {
    gem__csv_row *rows;
    size_t n, cap;
    double *values;       /* [n][E] */
    int32_t E;
} gem__csv_rows;

/* A field [s, s + n) with spaces and tabs trimmed from both ends. */
static void gem__trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

/* Counts the comma-separated fields of a line. */
static size_t gem__count_fields(const char *s, size_t n)
{
    size_t k = 1;
    for (size_t i = 0; i < n; i++) k += s[i] == ',';
    return k;
}

/* Next field of the line at *pos (advanced past its comma), trimmed. */
static void gem__next_field(const char *line, size_t n, size_t *pos, const char **f, size_t *fn)
{
    size_t a = *pos, b = a;
    while (b < n && line[b] != ',') b++;
    *f = line + a;
    *fn = b - a;
    *pos = b < n ? b + 1 : b;
    gem__trim(f, fn);
}

static gem_status_t gem__parse_header(const char *line, size_t n, int64_t lineno, int32_t *E)
{
    size_t k = gem__count_fields(line, n), pos = 0;
    if (k < 3)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: header has %zu fields; expected "
                         "step,layer,0,1,...,E-1", (long long)lineno, k);
    if (k - 2 > GEM_MAX_EXPERTS)
        return gem__fail(GEM_ERR_LIMIT, "line %lld: %zu experts, at most %d", (long long)lineno,
                         k - 2, GEM_MAX_EXPERTS);
    for (size_t i = 0; i < k; i++) {
        const char *f;
        size_t fn;
        gem__next_field(line, n, &pos, &f, &fn);
        const char *want = i == 0 ? "step" : "layer";
        int64_t id;
        int ok = i < 2 ? fn == strlen(want) && !memcmp(f, want, fn)
                       : gem__parse_uint(f, fn, INT32_MAX, &id) == 1 && id == (int64_t)(i - 2) &&
                             (fn == 1 || f[0] != '0');
        if (!ok) {
            if (i < 2)
                return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: header field %zu is \"%.*s\", "
                                 "expected \"%s\" (header: step,layer,0,1,...,E-1)",
                                 (long long)lineno, i + 1, (int)(fn > 40 ? 40 : fn), f, want);
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: header field %zu is \"%.*s\", "
                             "expected expert \"%zu\" (header: step,layer,0,1,...,E-1)",
                             (long long)lineno, i + 1, (int)(fn > 40 ? 40 : fn), f, i - 2);
        }
    }
    *E = (int32_t)(k - 2);
    return GEM_OK;
}

static gem_status_t gem__rows_grow(gem__csv_rows *r)
{
    if (r->n < r->cap) return GEM_OK;
    size_t cap = r->cap ? r->cap * 2 : 64;
    if (cap > SIZE_MAX / sizeof(double) / (size_t)r->E)
        return gem__fail(GEM_ERR_LIMIT, "trace: too many rows to hold in memory");
    gem__csv_row *rows = gem__realloc(r->rows, cap * sizeof *rows);
    if (!rows) return GEM_ERR_NO_MEMORY;
    r->rows = rows;
    double *v = gem__realloc(r->values, cap * (size_t)r->E * sizeof *v);
    if (!v) return GEM_ERR_NO_MEMORY;
    r->values = v;
    r->cap = cap;
    return GEM_OK;
}

static gem_status_t gem__parse_row(gem__csv_rows *r, const char *line, size_t n, int64_t lineno)
{
    int32_t E = r->E;
    size_t k = gem__count_fields(line, n), pos = 0;
    if (k < 2)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: 1 field, expected step, layer and %d "
                         "values", (long long)lineno, (int)E);
    if (k - 2 != (size_t)E)
        return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: %zu values, header has %d experts",
                         (long long)lineno, k - 2, (int)E);
    gem_status_t st = gem__rows_grow(r);
    if (st) return st;
    gem__csv_row *row = &r->rows[r->n];
    double *v = r->values + r->n * (size_t)E;
    const char *f;
    size_t fn;
    int64_t id;
    for (int which = 0; which < 2; which++) {
        gem__next_field(line, n, &pos, &f, &fn);
        const char *name = which ? "layer" : "step";
        int64_t max = which ? GEM_MAX_LAYERS - 1 : GEM_MAX_STEPS - 1;
        int got = gem__parse_uint(f, fn, max, &id);
        if (got == 0)
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: %s \"%.*s\" is not a "
                             "non-negative integer", (long long)lineno, name,
                             (int)(fn > 40 ? 40 : fn), f);
        if (got < 0)
            return gem__fail(GEM_ERR_LIMIT, "line %lld: %s %.*s is beyond libgem's limit of %lld",
                             (long long)lineno, name, (int)(fn > 40 ? 40 : fn), f, (long long)max);
        if (which) row->layer = (int32_t)id;
        else row->step = id;
    }
    for (int32_t e = 0; e < E; e++) {
        gem__next_field(line, n, &pos, &f, &fn);
        if (!gem__parse_decimal(f, fn, &v[e]))
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: expert %d: \"%.*s\" is not a "
                             "decimal number", (long long)lineno, (int)e, (int)(fn > 40 ? 40 : fn),
                             f);
        if (!isfinite(v[e]))
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: expert %d: %.*s is too large",
                             (long long)lineno, (int)e, (int)(fn > 40 ? 40 : fn), f);
        if (v[e] < 0)
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: expert %d: load %.*s is negative",
                             (long long)lineno, (int)e, (int)(fn > 40 ? 40 : fn), f);
        v[e] += 0.0; /* -0 becomes +0 */
    }
    row->line = lineno;
    row->index = r->n;
    r->n++;
    return GEM_OK;
}

/* Splits the text into lines and parses the header and the rows. */
static gem_status_t gem__collect_rows(const char *data, size_t len, gem__csv_rows *r)
{
    int64_t lineno = 0;
    int have_header = 0;
    for (size_t at = 0; at < len;) {
        const char *line = data + at;
        const char *nl = memchr(line, '\n', len - at);
        size_t n = nl ? (size_t)(nl - line) : len - at;
        at += n + (nl != NULL);
        lineno++;
        if (n && line[n - 1] == '\r') n--;
        const char *t = line;
        size_t tn = n;
        gem__trim(&t, &tn);
        if (tn == 0 || t[0] == '#') continue;
        if (memchr(line, '\0', n))
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: contains a NUL byte",
                             (long long)lineno);
        gem_status_t st = have_header ? gem__parse_row(r, line, n, lineno)
                                      : gem__parse_header(line, n, lineno, &r->E);
        if (st) return st;
        have_header = 1;
    }
    if (!have_header)
        return gem__fail(GEM_ERR_INVALID_INPUT, "no header line (expected step,layer,0,1,...,E-1)");
    if (r->n == 0) return gem__fail(GEM_ERR_INCOMPLETE, "header but no data rows");
    return GEM_OK;
}

static int gem__row_cmp(const void *a, const void *b)
{
    const gem__csv_row *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* With the rows sorted by (step, layer, line): a repeated key, then the first (step, layer)
 * that no row has. */
static gem_status_t gem__check_keys(const gem__csv_rows *r, int64_t S, int32_t L)
{
    for (size_t i = 1; i < r->n; i++) {
        const gem__csv_row *a = &r->rows[i - 1], *b = &r->rows[i];
        if (a->step == b->step && a->layer == b->layer)
            return gem__fail(GEM_ERR_INVALID_INPUT, "line %lld: step %lld layer %d repeats line "
                             "%lld", (long long)b->line, (long long)b->step, (int)b->layer,
                             (long long)a->line);
    }
    int64_t s = 0;
    int32_t l = 0;
    for (size_t i = 0; i <= r->n; i++) {
        int at_end = i == r->n;
        if (!at_end && r->rows[i].step == s && r->rows[i].layer == l) {
            if (++l == L) l = 0, s++;
            continue;
        }
        if (at_end && s == S) return GEM_OK;
        return gem__fail(GEM_ERR_INCOMPLETE, "no row for step %lld layer %d (the file has %zu "
                         "rows; steps 0..%lld x layers 0..%d need %lld)", (long long)s, (int)l,
                         r->n, (long long)(S - 1), (int)(L - 1), (long long)S * L);
    }
    return GEM_OK;
}

static gem_status_t gem__trace_from_csv(const char *data, size_t len, gem_trace_t **out)
{
    /* A UTF-8 byte order mark, as spreadsheet programs write, is not part of the header. */
    if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)) data += 3, len -= 3;
    gem__csv_rows r = {0};
    gem_trace_t *t = NULL;
    gem_status_t st = gem__collect_rows(data, len, &r);
    int64_t S = 0;
    int32_t L = 0;
    for (size_t i = 0; i < r.n && !st; i++) {
        if (r.rows[i].step + 1 > S) S = r.rows[i].step + 1;
        if (r.rows[i].layer + 1 > L) L = r.rows[i].layer + 1;
    }
    if (!st) {
        qsort(r.rows, r.n, sizeof *r.rows, gem__row_cmp);
        st = gem__check_keys(&r, S, L);
    }
    if (!st) st = gem_trace_create(&t, L, r.E);
    if (!st) st = gem__trace_reserve(t, S);
    if (!st) {
        size_t E = (size_t)r.E;
        for (size_t i = 0; i < r.n; i++) {
            const gem__csv_row *row = &r.rows[i];
            size_t cell = (size_t)row->step * (size_t)L + (size_t)row->layer;
            memcpy(t->loads + cell * E, r.values + row->index * E, E * sizeof(double));
            t->present[cell] = 1;
        }
        t->num_steps = S;
        *out = t;
        t = NULL;
    }
    gem_trace_destroy(t);
    free(r.rows);
    free(r.values);
    return st;
}

GEM_API gem_status_t gem_trace_parse(const char *data, size_t len, gem_trace_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_trace_parse: out is NULL");
    GEM__CHECK_ARG(data || len == 0, "gem_trace_parse: data is NULL");
    gem_status_t st = gem__trace_from_csv(data ? data : "", len, out);
    if (st && st != GEM_ERR_NO_MEMORY) return gem__fail_context(st, "trace");
    return st;
}

GEM_API gem_status_t gem_trace_read(const char *path, gem_trace_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(path && out, "gem_trace_read: NULL argument");
    char *data;
    size_t len;
    gem_status_t st = gem__read_file(path, &data, &len);
    if (st) return st;
    st = gem__trace_from_csv(data, len, out);
    free(data);
    if (st && st != GEM_ERR_NO_MEMORY) return gem__fail_context(st, "%s", path);
    return st;
}

/* ---- writing ----------------------------------------------------------------------------- */

static gem_status_t gem__trace_text(const gem_trace_t *t, gem__buf *b)
{
    gem_status_t st = gem_trace_validate(t);
    if (st) return gem__fail_context(st, "cannot write an incomplete trace");
    GEM__PUTS(b, "step,layer");
    for (int32_t e = 0; e < t->num_experts; e++) gem__buf_printf(b, ",%d", (int)e);
    GEM__PUTS(b, "\n");
    for (int64_t s = 0; s < t->num_steps && !b->failed; s++)
        for (int32_t l = 0; l < t->num_layers; l++) {
            const double *row = gem__trace_row(t, s, l);
            gem__buf_printf(b, "%lld,%d", (long long)s, (int)l);
            for (int32_t e = 0; e < t->num_experts; e++) {
                GEM__PUTS(b, ",");
                gem__buf_double(b, row[e]);
            }
            GEM__PUTS(b, "\n");
        }
    if (b->failed) return gem__fail(GEM_ERR_NO_MEMORY, "out of memory writing the trace");
    return GEM_OK;
}

GEM_API gem_status_t gem_trace_to_string(const gem_trace_t *t, char **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(t && out, "gem_trace_to_string: NULL argument");
    gem__buf b;
    gem__buf_init(&b);
    gem_status_t st = gem__trace_text(t, &b);
    if (st) {
        gem__buf_free(&b);
        return st;
    }
    *out = b.data;
    return GEM_OK;
}

GEM_API gem_status_t gem_trace_write(const gem_trace_t *t, const char *path)
{
    gem__clear_error();
    GEM__CHECK_ARG(t && path, "gem_trace_write: NULL argument");
    gem__buf b;
    gem__buf_init(&b);
    gem_status_t st = gem__trace_text(t, &b);
    if (!st) st = gem__write_file_atomic(path, b.data, b.len);
    gem__buf_free(&b);
    return st;
}
