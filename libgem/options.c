/*
 * options.c - the options handle: a table of typed keys with defaults and bounds.
 */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { T_INT, T_DOUBLE, T_STRING, T_INT_ARRAY, T_DOUBLE_ARRAY } opt_type;

typedef struct {
    const char *name;
    opt_type type;
    double def, lo, hi; /* bounds are inclusive; for arrays they bound every element */
} opt_desc;

#define I62 4611686018427387904.0 /* 2^62 */

/* Indexed by gem_option_t; keep in the enum's order. */
static const opt_desc gem__opts[GEM__NUM_OPTIONS] = {
    [GEM_OPT_THREADS] = {"threads", T_INT, 0, 0, 4096},
    [GEM_OPT_SEED] = {"seed", T_INT, 1, 0, I62},
    [GEM_OPT_OBJECTIVE] = {"objective", T_INT, GEM_OBJECTIVE_MEAN, 0, 1},
    [GEM_OPT_RESTARTS] = {"restarts", T_INT, 4, 0, 1e6},
    [GEM_OPT_MAX_ITERATIONS] = {"max_iterations", T_INT, 100000, 1, 1e9},
    [GEM_OPT_TIME_LIMIT_MS] = {"time_limit_ms", T_INT, 0, 0, 1e9},
    [GEM_OPT_HEAVY_FACTOR] = {"heavy_factor", T_DOUBLE, 1.0, 1e-12, 1e6},
    [GEM_OPT_CONSISTENT_MIN] = {"consistent_min", T_DOUBLE, 0.5, 1e-12, 1},
    [GEM_OPT_TEMPORAL_MIN] = {"temporal_min", T_DOUBLE, 0.05, 0, 1},
    [GEM_OPT_REDUNDANT_SLOTS] = {"redundant_slots", T_INT, 0, 0, 1048576},
    [GEM_OPT_SHARE_RULE] = {"share_rule", T_INT, GEM_SHARES_SPEED_WEIGHTED, 0, 1},
    [GEM_OPT_EXPERT_BYTES] = {"expert_bytes", T_INT, 0, 0, I62},
    [GEM_OPT_GPU_MEMORY] = {"gpu_memory", T_INT_ARRAY, 0, 0, I62},
    [GEM_OPT_UNEQUAL_SLOTS] = {"unequal_slots", T_INT, 0, 0, 1},
    [GEM_OPT_MAX_MOVES] = {"max_moves", T_INT, -1, -1, I62},
    [GEM_OPT_MAX_MOVE_BYTES] = {"max_move_bytes", T_INT, -1, -1, I62},
    [GEM_OPT_MIN_GAIN] = {"min_gain", T_DOUBLE, 0.01, 0, 1},
    [GEM_OPT_TOPOLOGY_AWARE] = {"topology_aware", T_INT, 0, 0, 1},
    [GEM_OPT_COMM_MODEL] = {"comm_model", T_INT, 0, 0, 1},
    [GEM_OPT_TOKEN_BYTES] = {"token_bytes", T_INT, 0, 0, 1073741824},
    [GEM_OPT_MODEL_HIDDEN] = {"model_hidden", T_INT, 4096, 1, 1048576},
    [GEM_OPT_MODEL_FFN] = {"model_ffn", T_INT, 14336, 1, 1048576},
    [GEM_OPT_MODEL_DTYPE] = {"model_dtype", T_INT, GEM_DTYPE_BF16, 0, 3},
    [GEM_OPT_MODEL_NAME] = {"model_name", T_STRING, 0, 0, 0},
    [GEM_OPT_SIM_GPUS] = {"sim_gpus", T_INT, 4, 1, GEM_MAX_GPUS},
    [GEM_OPT_SIM_SPREAD] = {"sim_spread", T_DOUBLE, 0.077, 0, 10},
    [GEM_OPT_SIM_SLOWDOWNS] = {"sim_slowdowns", T_DOUBLE_ARRAY, 0, 1e-9, 100},
    [GEM_OPT_SIM_TILE] = {"sim_tile", T_INT, 64, 1, 65536},
    [GEM_OPT_SIM_BANDWIDTH_GBS] = {"sim_bandwidth_gbs", T_DOUBLE, 864, 1e-3, 1e6},
    [GEM_OPT_SIM_TFLOPS] = {"sim_tflops", T_DOUBLE, 181, 1e-3, 1e6},
    [GEM_OPT_SIM_OVERHEAD_US] = {"sim_overhead_us", T_DOUBLE, 20, 0, 1e9},
    [GEM_OPT_SIM_NOISE] = {"sim_noise", T_DOUBLE, 0, 0, 0.5},
    [GEM_OPT_PROFILE_MAX_TOKENS] = {"profile_max_tokens", T_INT, 4096, 1, GEM_MAX_TOKENS},
    [GEM_OPT_PROFILE_WARMUP_MS] = {"profile_warmup_ms", T_INT, 2000, 0, 600000},
    [GEM_OPT_PROFILE_REPEATS] = {"profile_repeats", T_INT, 20, 1, 10000},
    [GEM_OPT_PROFILE_DENSE] = {"profile_dense", T_INT, 0, 0, 1},
    [GEM_OPT_HOST_NAME] = {"host_name", T_STRING, 0, 0, 0},
    [GEM_OPT_ALLTOALL_MAX_BYTES] = {"alltoall_max_bytes", T_INT, 64.0 * 1048576, 1, I62},
    [GEM_OPT_INTERPOLATION] = {"interpolation", T_INT, GEM_INTERP_STEP, 0, 1},
    [GEM_OPT_COST_MODEL] = {"cost_model", T_INT, GEM_COST_PER_EXPERT, 0, 1},
    [GEM_OPT_IMPORT_BATCH] = {"import_batch", T_INT, 256, 1, 1e12},
    [GEM_OPT_IMPORT_STEPS] = {"import_steps", T_INT, 64, 1, GEM_MAX_STEPS},
    [GEM_OPT_IMPORT_FILTER] = {"import_filter", T_STRING, 0, 0, 0},
    [GEM_OPT_IMPORT_TOPK] = {"import_topk", T_INT, 8, 1, 64},
    [GEM_OPT_SIM_MEMORY_GB] = {"sim_memory_gb", T_DOUBLE, 48, 0, 1e6},
    [GEM_OPT_FIRST_DENSE_LAYERS] = {"first_dense_layers", T_INT, 0, 0, 65536},
    [GEM_OPT_EXPERTS_PER_TOKEN] = {"experts_per_token", T_INT, 0, 0, 1024},
    [GEM_OPT_BOUND_SLOTS] = {"bound_slots", T_INT, 0, 0, 1},
};

static const opt_desc *gem__desc(gem_option_t key)
{
    if ((unsigned)key >= GEM__NUM_OPTIONS || !gem__opts[key].name) return NULL;
    return &gem__opts[key];
}

static const char *gem__type_name(opt_type t)
{
    static const char *names[] = {"int", "double", "string", "int array", "double array"};
    return names[t];
}

static void gem__options_defaults(gem_options_t *o)
{
    memset(o, 0, sizeof *o);
    for (int k = 0; k < GEM__NUM_OPTIONS; k++) {
        o->ival[k] = (int64_t)gem__opts[k].def;
        o->dval[k] = gem__opts[k].def;
    }
}

static gem_options_t gem__defaults_storage;
static pthread_once_t gem__defaults_once = PTHREAD_ONCE_INIT;

static void gem__defaults_init(void) { gem__options_defaults(&gem__defaults_storage); }

const gem_options_t *gem__default_options(void)
{
    pthread_once(&gem__defaults_once, gem__defaults_init);
    return &gem__defaults_storage;
}

GEM_API gem_status_t gem_options_create(gem_options_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(out, "gem_options_create: out is NULL");
    gem_options_t *o = gem__malloc(sizeof *o);
    if (!o) return GEM_ERR_NO_MEMORY;
    gem__options_defaults(o);
    *out = o;
    return GEM_OK;
}

GEM_API void gem_options_destroy(gem_options_t *o)
{
    if (!o) return;
    for (int k = 0; k < GEM__NUM_OPTIONS; k++) {
        free(o->sval[k]);
        free(o->iarr[k]);
        free(o->darr[k]);
    }
    free(o);
}

GEM_API gem_status_t gem_options_clone(const gem_options_t *src, gem_options_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(src && out, "gem_options_clone: NULL argument");
    gem_options_t *o = gem__malloc(sizeof *o);
    if (!o) return GEM_ERR_NO_MEMORY;
    *o = *src;
    for (int k = 0; k < GEM__NUM_OPTIONS; k++) o->sval[k] = NULL, o->iarr[k] = NULL, o->darr[k] = NULL;
    for (int k = 0; k < GEM__NUM_OPTIONS; k++) {
        size_t n = src->arr_n[k];
        if (src->sval[k] && !(o->sval[k] = gem__strdup(src->sval[k]))) goto oom;
        if (src->iarr[k]) {
            if (!(o->iarr[k] = gem__array(n, sizeof(int64_t)))) goto oom;
            memcpy(o->iarr[k], src->iarr[k], n * sizeof(int64_t));
        }
        if (src->darr[k]) {
            if (!(o->darr[k] = gem__array(n, sizeof(double)))) goto oom;
            memcpy(o->darr[k], src->darr[k], n * sizeof(double));
        }
    }
    *out = o;
    return GEM_OK;
oom:
    gem_options_destroy(o);
    return GEM_ERR_NO_MEMORY;
}

static gem_status_t gem__check_key(const gem_options_t *o, gem_option_t key, opt_type want,
                                   const opt_desc **d)
{
    GEM__CHECK_ARG(o, "options handle is NULL");
    *d = gem__desc(key);
    GEM__CHECK_ARG(*d, "unknown option key %d", (int)key);
    GEM__CHECK_ARG((*d)->type == want, "option %s is of type %s, not %s", (*d)->name,
                   gem__type_name((*d)->type), gem__type_name(want));
    return GEM_OK;
}

static gem_status_t gem__check_value(const opt_desc *d, double v)
{
    GEM__CHECK_ARG(isfinite(v), "option %s: value is not finite", d->name);
    GEM__CHECK_ARG(v >= d->lo && v <= d->hi, "option %s: value %.17g outside [%.17g, %.17g]",
                   d->name, v, d->lo, d->hi);
    return GEM_OK;
}

GEM_API gem_status_t gem_options_set_int(gem_options_t *o, gem_option_t key, int64_t value)
{
    gem__clear_error();
    const opt_desc *d = gem__desc(key);
    if (d && d->type == T_DOUBLE) /* ints are welcome where doubles are expected */
        return gem_options_set_double(o, key, (double)value);
    gem_status_t st = gem__check_key(o, key, T_INT, &d);
    if (st) return st;
    if ((st = gem__check_value(d, (double)value))) return st;
    o->ival[key] = value;
    o->dval[key] = (double)value;
    return GEM_OK;
}

GEM_API gem_status_t gem_options_set_double(gem_options_t *o, gem_option_t key, double value)
{
    gem__clear_error();
    const opt_desc *d;
    gem_status_t st = gem__check_key(o, key, T_DOUBLE, &d);
    if (st) return st;
    if ((st = gem__check_value(d, value))) return st;
    o->dval[key] = value;
    return GEM_OK;
}

GEM_API gem_status_t gem_options_set_string(gem_options_t *o, gem_option_t key,
                                            const char *value)
{
    gem__clear_error();
    const opt_desc *d;
    gem_status_t st = gem__check_key(o, key, T_STRING, &d);
    if (st) return st;
    char *copy = NULL;
    if (value && !(copy = gem__strdup(value))) return GEM_ERR_NO_MEMORY;
    free(o->sval[key]);
    o->sval[key] = copy;
    return GEM_OK;
}

GEM_API gem_status_t gem_options_set_int_array(gem_options_t *o, gem_option_t key,
                                               const int64_t *values, size_t n)
{
    gem__clear_error();
    const opt_desc *d;
    gem_status_t st = gem__check_key(o, key, T_INT_ARRAY, &d);
    if (st) return st;
    GEM__CHECK_ARG(n == 0 || values, "option %s: values is NULL", d->name);
    GEM__CHECK_ARG(n <= GEM_MAX_GPUS, "option %s: %zu values, at most %d", d->name, n,
                   GEM_MAX_GPUS);
    for (size_t i = 0; i < n; i++)
        if ((st = gem__check_value(d, (double)values[i])))
            return gem__fail_context(st, "element %zu", i);
    int64_t *copy = NULL;
    if (n) {
        if (!(copy = gem__array(n, sizeof *copy))) return GEM_ERR_NO_MEMORY;
        memcpy(copy, values, n * sizeof *copy);
    }
    free(o->iarr[key]);
    o->iarr[key] = copy;
    o->arr_n[key] = n;
    return GEM_OK;
}

GEM_API gem_status_t gem_options_set_double_array(gem_options_t *o, gem_option_t key,
                                                  const double *values, size_t n)
{
    gem__clear_error();
    const opt_desc *d;
    gem_status_t st = gem__check_key(o, key, T_DOUBLE_ARRAY, &d);
    if (st) return st;
    GEM__CHECK_ARG(n == 0 || values, "option %s: values is NULL", d->name);
    GEM__CHECK_ARG(n <= GEM_MAX_GPUS, "option %s: %zu values, at most %d", d->name, n,
                   GEM_MAX_GPUS);
    for (size_t i = 0; i < n; i++)
        if ((st = gem__check_value(d, values[i])))
            return gem__fail_context(st, "element %zu", i);
    double *copy = NULL;
    if (n) {
        if (!(copy = gem__array(n, sizeof *copy))) return GEM_ERR_NO_MEMORY;
        memcpy(copy, values, n * sizeof *copy);
    }
    free(o->darr[key]);
    o->darr[key] = copy;
    o->arr_n[key] = n;
    return GEM_OK;
}

GEM_API gem_status_t gem_options_get_int(const gem_options_t *o, gem_option_t key,
                                         int64_t *value)
{
    gem__clear_error();
    const opt_desc *d;
    gem_status_t st = gem__check_key(o, key, T_INT, &d);
    if (st) return st;
    GEM__CHECK_ARG(value, "gem_options_get_int: value is NULL");
    *value = o->ival[key];
    return GEM_OK;
}

GEM_API gem_status_t gem_options_get_double(const gem_options_t *o, gem_option_t key,
                                            double *value)
{
    gem__clear_error();
    GEM__CHECK_ARG(o && value, "gem_options_get_double: NULL argument");
    const opt_desc *d = gem__desc(key);
    GEM__CHECK_ARG(d, "unknown option key %d", (int)key);
    GEM__CHECK_ARG(d->type == T_INT || d->type == T_DOUBLE, "option %s is of type %s, not double",
                   d->name, gem__type_name(d->type));
    *value = d->type == T_INT ? (double)o->ival[key] : o->dval[key];
    return GEM_OK;
}

GEM_API gem_status_t gem_options_get_string(const gem_options_t *o, gem_option_t key,
                                            const char **value)
{
    gem__clear_error();
    const opt_desc *d;
    gem_status_t st = gem__check_key(o, key, T_STRING, &d);
    if (st) return st;
    GEM__CHECK_ARG(value, "gem_options_get_string: value is NULL");
    *value = o->sval[key];
    return GEM_OK;
}

GEM_API gem_status_t gem_options_get_int_array(const gem_options_t *o, gem_option_t key,
                                               int64_t *values, size_t cap, size_t *n)
{
    gem__clear_error();
    const opt_desc *d;
    gem_status_t st = gem__check_key(o, key, T_INT_ARRAY, &d);
    if (st) return st;
    GEM__CHECK_ARG(n && (cap == 0 || values), "gem_options_get_int_array: NULL argument");
    size_t len = o->arr_n[key];
    if (len) memcpy(values, o->iarr[key], (cap < len ? cap : len) * sizeof *values);
    *n = len;
    return GEM_OK;
}

GEM_API gem_status_t gem_options_get_double_array(const gem_options_t *o, gem_option_t key,
                                                  double *values, size_t cap, size_t *n)
{
    gem__clear_error();
    const opt_desc *d;
    gem_status_t st = gem__check_key(o, key, T_DOUBLE_ARRAY, &d);
    if (st) return st;
    GEM__CHECK_ARG(n && (cap == 0 || values), "gem_options_get_double_array: NULL argument");
    size_t len = o->arr_n[key];
    if (len) memcpy(values, o->darr[key], (cap < len ? cap : len) * sizeof *values);
    *n = len;
    return GEM_OK;
}

GEM_API gem_status_t gem_options_set_runner(gem_options_t *o, gem_runner_fn fn, void *user,
                                            int32_t num_devices)
{
    gem__clear_error();
    GEM__CHECK_ARG(o, "gem_options_set_runner: options handle is NULL");
    GEM__CHECK_ARG(!fn || (num_devices >= 1 && num_devices <= GEM_MAX_GPUS),
                   "gem_options_set_runner: num_devices %d outside [1, %d]", (int)num_devices,
                   GEM_MAX_GPUS);
    o->runner = fn;
    o->runner_user = user;
    o->runner_devices = fn ? num_devices : 0;
    return GEM_OK;
}

GEM_API gem_status_t gem_options_set_progress(gem_options_t *o, gem_progress_fn fn, void *user)
{
    gem__clear_error();
    GEM__CHECK_ARG(o, "gem_options_set_progress: options handle is NULL");
    o->progress = fn;
    o->progress_user = user;
    return GEM_OK;
}

/* ---- internal readers -------------------------------------------------------------------- */

int64_t gem__opt_int(const gem_options_t *o, gem_option_t key)
{
    if (!o) o = gem__default_options();
    return o->ival[key];
}

double gem__opt_double(const gem_options_t *o, gem_option_t key)
{
    if (!o) o = gem__default_options();
    return gem__opts[key].type == T_INT ? (double)o->ival[key] : o->dval[key];
}

const char *gem__opt_string(const gem_options_t *o, gem_option_t key)
{
    if (!o) return NULL;
    return o->sval[key];
}

int gem__opt_threads(const gem_options_t *o)
{
    int64_t t = gem__opt_int(o, GEM_OPT_THREADS);
    if (t > 0) return (int)t;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < 4096 ? n : 4096) : 1;
}
