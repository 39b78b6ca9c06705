/*
 * internal.h - libgem's private data structures and helpers (never installed).
 *
 * Every name here is gem__* and has hidden visibility: the shared library exports only the
 * gem_* functions of include/gem.h (see libgem/libgem.map). Tests link the static library and
 * may use these.
 */
#ifndef GEM_INTERNAL_H
#define GEM_INTERNAL_H

#include "gem.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#  define GEM__PRINTF(a, b) __attribute__((format(printf, a, b)))
#  define GEM__HIDDEN __attribute__((visibility("hidden")))
#else
#  define GEM__PRINTF(a, b)
#  define GEM__HIDDEN
#endif

/* ---- errors (core.c) ------------------------------------------------------------------ */

/** Records a message for gem_last_error() on this thread and returns status, so that
 *  `return gem__fail(GEM_ERR_X, "...")` reads as one step. */
gem_status_t gem__fail(gem_status_t status, const char *fmt, ...) GEM__PRINTF(2, 3);
gem_status_t gem__vfail(gem_status_t status, const char *fmt, va_list ap);
/** Prefixes the current error message with "context: " (for nested failures). */
gem_status_t gem__fail_context(gem_status_t status, const char *fmt, ...) GEM__PRINTF(2, 3);
/** Clears the thread's message; called at the start of every public entry point. */
void gem__clear_error(void);

/* ---- memory (core.c) ------------------------------------------------------------------ */
/* All library allocations go through these so that tests can inject failures. They set the
 * GEM_ERR_NO_MEMORY message themselves on failure. */
void *gem__malloc(size_t size);
void *gem__calloc(size_t count, size_t size);
void *gem__realloc(void *ptr, size_t size);
/** calloc of count * size with an overflow check. */
void *gem__array(size_t count, size_t size);
char *gem__strdup(const char *s);
/** Test hook: the n-th allocation from now fails (n >= 1); 0 disables. Process-wide. */
void gem__inject_alloc_failure(long n);

/** Allocates and formats like asprintf; NULL on failure. */
char *gem__sprintf(const char *fmt, ...) GEM__PRINTF(1, 2);

/* ---- growable string (core.c) ---------------------------------------------------------- */
typedef struct {
    char *data;
    size_t len, cap;
    int failed; /* an append failed: the buffer is incomplete */
} gem__buf;
void gem__buf_init(gem__buf *b);
void gem__buf_free(gem__buf *b);
void gem__buf_append(gem__buf *b, const char *s, size_t n);
void gem__buf_printf(gem__buf *b, const char *fmt, ...) GEM__PRINTF(2, 3);
/** Shortest decimal text of x that reads back to exactly x ("%.17g" trimmed). */
void gem__buf_double(gem__buf *b, double x);

/* ---- files (io_util.c) ----------------------------------------------------------------- */
/** Reads a whole file; *len excludes the NUL that is appended. GEM_ERR_IO names the path. */
gem_status_t gem__read_file(const char *path, char **data, size_t *len);
/** Writes data to path through a temporary file in the same directory and rename(2), so the
 *  file is written whole or not at all. */
gem_status_t gem__write_file_atomic(const char *path, const char *data, size_t len);

/* ---- file-format helpers (io_util.c), shared by the readers, writers and importers -------- */
struct json_t; /* jansson's; only the io_*.c files include jansson.h */
/** Parses JSON text (duplicate keys rejected). A syntax error is GEM_ERR_INVALID_INPUT
 *  "what: line L, column C: <jansson's text>". Free *out with json_decref. */
gem_status_t gem__json_parse(const char *data, size_t len, const char *what,
                             struct json_t **out);
/** Builds a document's object from its parsed JSON; out is the caller's T ** (T the object). */
typedef gem_status_t (*gem__from_json_fn)(const struct json_t *root, void *out);
/** Parses data as JSON and builds the object with from_json. what (the document kind, or a
 *  file's path) names it in every message: syntax errors as gem__json_parse, and every error
 *  of from_json but out of memory gets "what: " put in front. */
gem_status_t gem__json_load(const char *data, size_t len, const char *what,
                            gem__from_json_fn from_json, void *out);
/** Reads path whole (gem__read_file), then gem__json_load with what = path. */
gem_status_t gem__json_load_file(const char *path, gem__from_json_fn from_json, void *out);
/** Type of a JSON value for messages ("a string", "an array", ...; "nothing" for NULL). */
const char *gem__json_type_name(const struct json_t *v);
/** Reads an integer, or an integral real such as 64.0, that lies in [min, max]. The JSON path
 *  for messages is printf-formatted from fmt only on failure. Wrong type or a fraction:
 *  GEM_ERR_INVALID_INPUT; outside [min, max]: range_status. */
gem_status_t gem__json_int(const struct json_t *v, int64_t min, int64_t max,
                           gem_status_t range_status, int64_t *out, const char *fmt, ...)
    GEM__PRINTF(6, 7);
/** Reads a number (integer or real; always finite, JSON has no NaN) into a double. */
gem_status_t gem__json_number(const struct json_t *v, double *out, const char *fmt, ...)
    GEM__PRINTF(3, 4);
/** Appends s as a JSON string literal (quotes, escapes). Returns -1 and appends nothing when
 *  s is not valid UTF-8 (JSON could not carry it), else 0. */
int gem__buf_json_string(gem__buf *b, const char *s);
/** Strict decimal number filling exactly s[0, n): [+-]digits[.digits][(e|E)[+-]digits] (a
 *  leading or trailing '.' with digits on the other side is accepted). No spaces, hex, nan or
 *  inf. Locale-independent. Returns 1 and sets *out (which may be +-inf on overflow), else 0. */
int gem__parse_decimal(const char *s, size_t n, double *out);
/** Non-negative decimal integer filling exactly s[0, n) (digits only). Returns 1 and sets *out
 *  when it is <= max, -1 when it is larger, 0 when it is not digits. */
int gem__parse_uint(const char *s, size_t n, int64_t max, int64_t *out);

/* ---- options (options.c) --------------------------------------------------------------- */
#define GEM__NUM_OPTIONS 48
struct gem_options {
    int64_t ival[GEM__NUM_OPTIONS];
    double dval[GEM__NUM_OPTIONS];
    char *sval[GEM__NUM_OPTIONS];
    int64_t *iarr[GEM__NUM_OPTIONS];
    double *darr[GEM__NUM_OPTIONS];
    size_t arr_n[GEM__NUM_OPTIONS];
    gem_runner_fn runner;
    void *runner_user;
    int32_t runner_devices;
    gem_progress_fn progress;
    void *progress_user;
};
/** Shared defaults for callers that passed NULL options. */
const gem_options_t *gem__default_options(void);
/** Convenience readers that never fail (options are validated when set). */
int64_t gem__opt_int(const gem_options_t *o, gem_option_t key);
double gem__opt_double(const gem_options_t *o, gem_option_t key);
const char *gem__opt_string(const gem_options_t *o, gem_option_t key); /* NULL if unset */
/** Threads to use: GEM_OPT_THREADS, or the number of online cores when 0. */
int gem__opt_threads(const gem_options_t *o);

/* ---- profile (profile.c) --------------------------------------------------------------- */
typedef struct {
    size_t k;                 /* samples */
    int64_t *tokens;          /* [k] strictly ascending, >= 1 */
    double *latency;          /* [k] finite, > 0 */
    double *cv;               /* [k] or NULL */
    /* Derived by gem__curve_prepare, for fast lookups: */
    double *lut;              /* step interpolation: f at integer x in [0, lut_n) or NULL */
    size_t lut_n;
    double tail_slope;        /* extrapolation slope past the last sample */
    double min_rate;          /* inf over x > 0 of f(x) / x, clamped at 0 (lower bounds) */
} gem__curve;

typedef struct {
    double overhead;          /* c_g, us */
    gem__curve curve;
    char *name, *pci_bus_id, *host, *cpuset;
    int32_t numa_node;        /* -1 when unknown */
    int64_t memory_bytes;     /* free memory, -1 when unknown */
} gem__gpu;

struct gem_profile {
    int32_t num_gpus;
    gem__gpu *gpus;
    gem_interpolation_t interpolation;
    gem_cost_model_t cost_model;
    /* descriptive model shape */
    char *model_name;
    char *model_dtype;
    int64_t model_hidden, model_ffn;  /* 0 when unknown */
    /* measured all-to-all (optional): n_sizes message sizes, time per GPU and size */
    size_t a2a_n;
    double *a2a_bytes;        /* [a2a_n] */
    double *a2a_time;         /* [num_gpus * a2a_n], row per GPU */
};

/** Validates samples and sets a curve (copies). `where` prefixes messages ("gpu 3"). */
gem_status_t gem__curve_set(gem__curve *c, size_t k, const int64_t *tokens,
                            const double *latency, const double *cv, const char *where);
void gem__curve_free(gem__curve *c);
/** SPEC 2's f(x) for x >= 0. */
double gem__curve_eval(const gem__curve *c, gem_interpolation_t interp, double x);
/** (Re)builds the derived fields; called by every setter. */
gem_status_t gem__curve_prepare(gem__curve *c, gem_interpolation_t interp);
/** f_g(x) for GPU g of a profile. */
static inline double gem__latency(const gem_profile_t *p, int32_t g, double x);
/** GEM_OK when every GPU has a curve; else GEM_ERR_INVALID_INPUT naming the GPU. */
gem_status_t gem__profile_check_ready(const gem_profile_t *p);

/* ---- trace (trace.c) ------------------------------------------------------------------- */
struct gem_trace {
    int64_t num_steps;        /* highest step set + 1 */
    int32_t num_layers, num_experts;
    int64_t cap_steps;
    double *loads;            /* [cap_steps][num_layers][num_experts] */
    uint8_t *present;         /* [cap_steps][num_layers] */
};
/** Pointer to the E loads of (step, layer); no checks. */
static inline const double *gem__trace_row(const gem_trace_t *t, int64_t s, int32_t l)
{
    return t->loads + ((size_t)s * (size_t)t->num_layers + (size_t)l) * (size_t)t->num_experts;
}
/** Ensures room for step s (grows geometrically). */
gem_status_t gem__trace_reserve(gem_trace_t *t, int64_t steps);

/* ---- mapping (mapping.c) --------------------------------------------------------------- */
typedef struct {
    int32_t expert, gpu;
    double share;
} gem__placement;

typedef struct {
    size_t n, cap;
    gem__placement *p;
} gem__layer_map;

struct gem_mapping {
    int32_t num_gpus, num_layers, num_experts;
    char *policy;
    gem__layer_map *layers;   /* [num_layers] */
};
/** Validates one layer against SPEC 1; GEM_ERR_INVALID_INPUT names the layer and expert. */
gem_status_t gem__mapping_validate_layer(const gem_mapping_t *m, int32_t layer);
/** Shape checks shared by evaluate and compute_mapping. */
gem_status_t gem__check_shapes(const gem_profile_t *p, const gem_trace_t *t,
                               const gem_mapping_t *m);

/* ---- policies (map_*.c) ---------------------------------------------------------------- */
/** Inputs every policy receives. Layers are independent: a policy fills one layer at a time,
 *  possibly from several threads at once, so it must only write its own layer. */
typedef struct {
    const gem_profile_t *profile;
    const gem_trace_t *trace;
    const gem_options_t *opts;
    const gem_classification_t *cls; /* never NULL for policy gem */
    int32_t num_gpus, num_layers, num_experts;
    int64_t num_steps;
    const int32_t *slots;     /* [num_gpus]: experts (copies) each GPU holds per layer */
} gem__map_ctx;

typedef gem_status_t (*gem__layer_policy_fn)(const gem__map_ctx *ctx, int32_t layer,
                                             gem__layer_map *out);

/** Appends a placement to a layer map under construction (no checks beyond memory). */
gem_status_t gem__layer_map_add(gem__layer_map *lm, int32_t expert, int32_t gpu, double share);

/** A value and the expert or GPU it belongs to, for sorting with gem__cmp_keyed_desc. */
typedef struct {
    double key;
    int32_t id;
} gem__keyed;
/** qsort order of gem__keyed (map.c): descending key, then ascending id, so deterministic. */
int gem__cmp_keyed_desc(const void *a, const void *b);
/** The k-th smallest (0-based) of v[0..n), n >= 1, k < n; reorders v (map.c; quickselect, for
 *  the p90 objectives of map_gem.c and replicate.c). */
double gem__kth_smallest(double *v, size_t n, size_t k);

/* Per-layer policies (map_baseline.c, map_gem.c, map_exact.c); dispatched by map.c. Each fills
 * `out` (empty on entry) with a valid placement of every expert of the layer that respects
 * ctx->slots. */
gem_status_t gem__policy_contiguous(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out);
gem_status_t gem__policy_round_robin(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out);
gem_status_t gem__policy_balanced(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out);
gem_status_t gem__policy_speed_aware(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out);
gem_status_t gem__policy_eplb(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out);
gem_status_t gem__policy_gem(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out);
gem_status_t gem__policy_exact(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out);

/* ---- classification (classify.c) -------------------------------------------------------- */
/* Unchecked readers for the policies (ids must be in range; the struct is private to
 * classify.c). */
gem_expert_class_t gem__cls_class(const gem_classification_t *c, int32_t layer, int32_t e);
double gem__cls_mean_load(const gem_classification_t *c, int32_t layer, int32_t e);
double gem__cls_mean_heavy_load(const gem_classification_t *c, int32_t layer, int32_t e);
/** Steps in which both a and b were heavy (a == b: steps in which a was heavy). */
uint32_t gem__cls_coactivation(const gem_classification_t *c, int32_t layer, int32_t a,
                               int32_t b);

/* ---- policy exact (map_exact.c) --------------------------------------------------------- */
/** gem__policy_exact that also says whether the layer's optimum was proven (*proven = 1) or
 *  the branch and bound stopped at its time limit (*proven = 0: `out` is then the best
 *  placement found, never worse than policy gem's). proven may be NULL. The dispatcher calls
 *  this for GEM_POLICY_EXACT and names the mapping "exact" when every layer was proven,
 *  else "exact-timeout". */
gem_status_t gem__exact_layer(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out,
                              int *proven);

/* ---- random numbers (core.c) ----------------------------------------------------------- */
/** splitmix64-seeded xoshiro256** generator: small, fast, reproducible everywhere. */
typedef struct { uint64_t s[4]; } gem__rng;
void gem__rng_seed(gem__rng *r, uint64_t seed);
uint64_t gem__rng_next(gem__rng *r);
/** Uniform in [0, 1). */
double gem__rng_uniform(gem__rng *r);
/** Uniform integer in [0, n), n >= 1. */
uint64_t gem__rng_below(gem__rng *r, uint64_t n);

/* ---- small helpers ----------------------------------------------------------------------- */
/** Nearest-rank percentile index (0-based) of p percent in n sorted values: ceil(p*n/100)-1,
 *  at least 0. Integer arithmetic so that 90% of 10 is exactly the 9th. */
static inline size_t gem__nearest_rank(unsigned p, size_t n)
{
    size_t k = ((size_t)p * n + 99) / 100;
    return k == 0 ? 0 : k - 1;
}

static inline double gem__latency(const gem_profile_t *p, int32_t g, double x)
{
    if (!(x > 0)) return 0.0;
    const gem__curve *c = &p->gpus[g].curve;
    if (c->lut && x < (double)c->lut_n) {
        /* step interpolation at integer and fractional x: smallest sample >= x is the
         * smallest sample >= ceil(x), because samples are integers */
        size_t i = (size_t)x;
        if ((double)i < x) i++;
        if (i < c->lut_n) return c->lut[i];
    }
    return gem__curve_eval(c, p->interpolation, x);
}

#define GEM__CHECK_ARG(cond, ...) \
    do { if (!(cond)) return gem__fail(GEM_ERR_INVALID_ARGUMENT, __VA_ARGS__); } while (0)

#endif /* GEM_INTERNAL_H */
