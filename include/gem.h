/*
 * gem.h - libgem: variability-aware placement of Mixture-of-Experts experts on GPUs.
 *
 * Copyright (c) 2026 the libgem authors. MIT licence (see LICENSE).
 *
 * This header is the specification of libgem's public interface. The cost model and the file
 * formats it refers to are defined in SPEC.md (shipped as docs/SPEC.md); section numbers below
 * ("SPEC 2") point there.
 *
 * Conventions that hold for every function unless its comment says otherwise:
 *
 *  - Status. Every function that can fail returns a gem_status_t. GEM_OK (0) is success. On
 *    failure, gem_last_error() returns a message that says what was wrong and where (file,
 *    line, field, index), and every output parameter is left untouched (an output handle
 *    pointer is never set to a half-built object).
 *  - Ownership. A handle returned through `gem_xxx_t **out` belongs to the caller, who frees it
 *    with the matching gem_xxx_destroy(). Every destroy accepts NULL. Strings returned through
 *    `char **out` are freed with gem_free(). `const char *` results are owned by the handle and
 *    live until the handle is destroyed or next modified.
 *  - Thread safety. libgem has no global mutable state except the per-thread error message.
 *    Functions that take a handle as `const` may be called from many threads at once on the
 *    same handle. Functions that take a non-const handle need exclusive access to it.
 *    Different handles may be used from different threads freely.
 *  - Sizes. GPU, layer and expert ids and counts are int32_t; step ids and counts and token
 *    counts are int64_t; loads and times are double (times in microseconds); byte counts are
 *    uint64_t. No public struct exists; nothing in this ABI is a bool or a bitfield.
 *  - Stability. Everything outside `#ifdef GEM_EXPERIMENTAL` is stable: enum values are only
 *    ever appended, functions are only ever added. Declarations inside GEM_EXPERIMENTAL may
 *    change between minor versions.
 */
#ifndef GEM_H
#define GEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define GEM_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define GEM_API __attribute__((visibility("default")))
#else
#  define GEM_API
#endif

/* ==========================================================================================
 * Version
 * ========================================================================================== */

#define GEM_VERSION_MAJOR 1
#define GEM_VERSION_MINOR 0
#define GEM_VERSION_PATCH 0
/** Single number for comparisons: 10000 * major + 100 * minor + patch. */
#define GEM_VERSION_NUMBER (GEM_VERSION_MAJOR * 10000 + GEM_VERSION_MINOR * 100 + GEM_VERSION_PATCH)
#define GEM_VERSION_STRING "1.0.0"

/** Version of the library actually loaded (GEM_VERSION_NUMBER of its build). Thread-safe. */
GEM_API unsigned gem_version(void);
/** Version string of the loaded library, static storage. Thread-safe. */
GEM_API const char *gem_version_string(void);

/* ==========================================================================================
 * Status and errors
 * ========================================================================================== */

typedef enum {
    GEM_OK = 0,
    GEM_ERR_INVALID_ARGUMENT = 1, /* a parameter is NULL, out of its range or of the wrong type */
    GEM_ERR_INVALID_INPUT = 2,    /* a file or buffer is malformed (syntax, types, values) */
    GEM_ERR_IO = 3,               /* a file could not be opened, read, written or renamed */
    GEM_ERR_NO_MEMORY = 4,        /* an allocation failed */
    GEM_ERR_NOT_SUPPORTED = 5,    /* the feature or backend is not in this build */
    GEM_ERR_NO_DEVICE = 6,        /* no GPU, or no driver, was found */
    GEM_ERR_DEVICE = 7,           /* a CUDA, NCCL or MPI call failed; the message has its text */
    GEM_ERR_OUT_OF_RANGE = 8,     /* an id (GPU, layer, expert, step) is outside its range */
    GEM_ERR_SHAPE_MISMATCH = 9,   /* handles disagree on GPUs, layers or experts */
    GEM_ERR_INFEASIBLE = 10,      /* the constraints (slots, memory, moves) cannot be met */
    GEM_ERR_LIMIT = 11,           /* a size is beyond what libgem accepts (see GEM_MAX_*) */
    GEM_ERR_INCOMPLETE = 12,      /* a trace is missing (step, layer) rows */
    GEM_ERR_VERSION = 13,         /* a file's format version is newer than this library reads */
    GEM_ERR_INTERNAL = 14,        /* a bug in libgem: please report it */
    GEM_ERR_CANCELLED = 15        /* a progress callback asked to stop */
} gem_status_t;

/** Short constant description of a status ("invalid input"). Never NULL. Thread-safe. */
GEM_API const char *gem_status_string(gem_status_t status);

/** Message of the last failed call on this thread ("" if none). Owned by libgem, valid until
 *  the next libgem call on the same thread. Thread-local, so thread-safe. */
GEM_API const char *gem_last_error(void);

/** Frees memory that libgem returned through a `char **` or `void **`. Accepts NULL. */
GEM_API void gem_free(void *ptr);

/* Sizes libgem refuses with GEM_ERR_LIMIT instead of trying to allocate them. */
#define GEM_MAX_GPUS 65536
#define GEM_MAX_LAYERS 65536
#define GEM_MAX_EXPERTS 65536
#define GEM_MAX_STEPS 100000000
#define GEM_MAX_CURVE_POINTS 1048576
#define GEM_MAX_TOKENS 1073741824 /* largest token count on a latency curve */
#define GEM_MAX_LOADS_PER_STEP 16777216 /* layers x experts of one trace */

/* ==========================================================================================
 * Enumerations
 * ========================================================================================== */

/** How a latency curve is read between its samples (SPEC 2). */
typedef enum { GEM_INTERP_STEP = 0, GEM_INTERP_LINEAR = 1 } gem_interpolation_t;

/** How a GPU's time in a layer is composed from its experts (SPEC 2). */
typedef enum { GEM_COST_PER_EXPERT = 0, GEM_COST_AGGREGATE = 1 } gem_cost_model_t;

/** Placement policies. */
typedef enum {
    GEM_POLICY_CONTIGUOUS = 0,  /* experts in id order fill GPU 0, then GPU 1, ... (expert e
                                   on GPU floor(e * G / E) when G divides E): engines' default */
    GEM_POLICY_ROUND_ROBIN = 1, /* expert e on GPU e mod G */
    GEM_POLICY_BALANCED = 2,    /* equal experts per GPU (unless GEM_OPT_UNEQUAL_SLOTS),
                                   heaviest first to the least-loaded GPU with a free slot */
    GEM_POLICY_SPEED_AWARE = 3, /* as balanced, but least predicted finish time per GPU curve */
    GEM_POLICY_GEM = 4,         /* classification + variability-aware iterative search; with
                                   GEM_OPT_REDUNDANT_SLOTS, replicas with GEM_OPT_SHARE_RULE */
    GEM_POLICY_EPLB = 5,        /* DeepSeek EPLB-style: replicas to the highest load per copy,
                                   always equal shares, then balanced packing of the copies */
    GEM_POLICY_EXACT = 6        /* branch and bound, small cases, with a time limit
                                   (GEM_OPT_TIME_LIMIT_MS; 0 means 10 s); the mapping's policy
                                   name is "exact-timeout" when an optimum was not proven */
} gem_policy_t;
#define GEM_POLICY_COUNT 7

/** Profile backends. */
typedef enum {
    GEM_BACKEND_SIM = 0,      /* emulated GPUs (no hardware needed) */
    GEM_BACKEND_CUDA = 1,     /* probe kernels and cuBLAS on the visible CUDA devices */
    GEM_BACKEND_NCCL = 2,     /* all-to-all microbenchmark (fills a profile's alltoall part) */
    GEM_BACKEND_HWLOC = 3,    /* host topology (fills host, NUMA node, CPU set) */
    GEM_BACKEND_CALLBACK = 4, /* engine-supplied runner (see gem_options_set_runner) */
    GEM_BACKEND_MPI = 5       /* multi-node profiling across MPI ranks: not in the library
                                 (gem_has_backend gives 0, gem_profile_gpus
                                 GEM_ERR_NOT_SUPPORTED); run `mpirun -np N gem profile` */
} gem_backend_t;

/** Expert classes (issue: GEM classification). */
typedef enum {
    GEM_CLASS_COLD = 0,       /* rarely heavy */
    GEM_CLASS_CONSISTENT = 1, /* heavy in most steps */
    GEM_CLASS_TEMPORAL = 2    /* heavy in few steps, with a high load when it is */
} gem_expert_class_t;

/** Element type of the expert weights, for model shapes. */
typedef enum { GEM_DTYPE_BF16 = 0, GEM_DTYPE_FP16 = 1, GEM_DTYPE_FP8 = 2, GEM_DTYPE_FP32 = 3 } gem_dtype_t;

/** Objectives for the iterative search. */
typedef enum { GEM_OBJECTIVE_MEAN = 0, GEM_OBJECTIVE_P90 = 1 } gem_objective_t;

/** How replicas of one expert share its tokens. */
typedef enum { GEM_SHARES_SPEED_WEIGHTED = 0, GEM_SHARES_EQUAL = 1 } gem_share_rule_t;

/** Engine formats for gem_mapping_export(). */
typedef enum {
    GEM_EXPORT_SGLANG = 0,  /* {"physical_to_logical_map": [[...] per layer]} */
    GEM_EXPORT_EPLB = 1,    /* {"phy2log": ..., "log2phy": ..., "logcnt": ...} (DeepSeek/vLLM) */
    GEM_EXPORT_TRTLLM = 2   /* TensorRT-LLM load-balancer YAML */
} gem_export_format_t;

/** Routing-data formats for gem_trace_import(). */
typedef enum {
    GEM_IMPORT_SGLANG = 0,    /* {"logical_count": [L][E]} or [N][L][E] */
    GEM_IMPORT_WIDE_CSV = 1,  /* ",dataset,iteration,layer_idx,0,1,..." with filter */
    GEM_IMPORT_TOKENS_JSONL = 2 /* one record per (token, layer) with "experts" */
} gem_import_format_t;

/* ==========================================================================================
 * Options: one opaque handle, typed setters (zstd setParameter style)
 * ========================================================================================== */

/** Option keys. The comment gives the type, the default and the accepted range (bounds
 *  inclusive; for arrays, of every element). Setting an option with a setter of another type
 *  (except gem_options_set_int on a double option), or outside its range, returns
 *  GEM_ERR_INVALID_ARGUMENT and leaves the option unchanged. */
typedef enum {
    /* general */
    GEM_OPT_THREADS = 0,          /* int: worker threads; 0 = all cores. [0, 4096] */
    GEM_OPT_SEED = 1,             /* int: random seed. [0, 2^62] default 1 */
    /* search (policy gem, exact) */
    GEM_OPT_OBJECTIVE = 2,        /* int gem_objective_t: what policy gem's search minimises in
                                     each layer: MEAN the sum of the layer's latencies over the
                                     steps; P90 their nearest-rank p90, ties broken by the
                                     sum (a proxy for the trace's p90, whose steps sum every
                                     layer). The replica pass (GEM_OPT_REDUNDANT_SLOTS)
                                     minimises the same objective and never raises a
                                     layer's p90 under P90. default MEAN */
    GEM_OPT_RESTARTS = 3,         /* int: randomised restarts of the search. [0, 1e6] default 4 */
    GEM_OPT_MAX_ITERATIONS = 4,   /* int: improving moves per restart, cap. [1, 1e9] default 100000 */
    GEM_OPT_TIME_LIMIT_MS = 5,    /* int: wall-clock limit of one gem_compute_mapping call
                                     (policies gem and exact), split over the layers each
                                     thread handles; 0 = none. [0, 1e9] default 0 (policy
                                     exact reads 0 as 10000) */
    /* classification */
    GEM_OPT_HEAVY_FACTOR = 6,     /* double: expert heavy in a step if load > factor x the layer's
                                     mean expert load in that step. (0, 1e6] default 1.0 */
    GEM_OPT_CONSISTENT_MIN = 7,   /* double: heavy in at least this fraction of steps ->
                                     consistent. (0, 1] default 0.5 */
    GEM_OPT_TEMPORAL_MIN = 8,     /* double: heavy in at least this fraction (and less than
                                     consistent) -> temporal, else cold. [0, 1] default 0.05 */
    /* replication and slots */
    GEM_OPT_REDUNDANT_SLOTS = 9,  /* int: extra expert copies per layer, policies gem and eplb
                                     only (others: GEM_ERR_NOT_SUPPORTED). [0, 2^20] default 0 */
    GEM_OPT_SHARE_RULE = 10,      /* int gem_share_rule_t for policy gem's replicas (eplb always
                                     shares equally). default SPEED_WEIGHTED */
    GEM_OPT_EXPERT_BYTES = 11,    /* int: bytes of one expert's weights; 0 = unknown (memory is
                                     then not checked). [0, 2^62] default 0 */
    GEM_OPT_GPU_MEMORY = 12,      /* int array [G]: bytes free for experts on each GPU, exactly G
                                     entries. [0, 2^62] default unset: the profile's memory
                                     figures (unknown = unlimited) */
    GEM_OPT_UNEQUAL_SLOTS = 13,   /* int 0/1: let fast GPUs hold more experts, within memory
                                     (policies balanced, speed_aware, gem, exact; the others
                                     ignore it). default 0 */
    /* migration-aware re-mapping */
    GEM_OPT_MAX_MOVES = 14,       /* int: experts that may move; -1 = unlimited. [-1, 2^62]
                                     default -1 */
    GEM_OPT_MAX_MOVE_BYTES = 15,  /* int: bytes that may move; -1 = unlimited. [-1, 2^62]
                                     default -1 */
    GEM_OPT_MIN_GAIN = 16,        /* double: relative gain under which no change is recommended.
                                     [0, 1] default 0.01 */
    /* topology */
    GEM_OPT_TOPOLOGY_AWARE = 17,  /* int 0/1: keep tokens within a host where possible
                                     (policies balanced, speed_aware, gem; the others ignore
                                     it). default 0 */
    GEM_OPT_COMM_MODEL = 18,      /* int 0/1: gem_evaluate adds all-to-all time from the
                                     profile's alltoall section; with TOPOLOGY_AWARE the
                                     mapping keeps the topology-aware placement only where it
                                     wins by compute plus all-to-all time. Experts per token:
                                     GEM_OPT_EXPERTS_PER_TOKEN. default 0 */
    GEM_OPT_TOKEN_BYTES = 19,     /* int: bytes one token's activation moves (hidden x dtype);
                                     0 = from the profile's model. [0, 2^30] default 0 */
    /* model shape (profiling backends) */
    GEM_OPT_MODEL_HIDDEN = 20,    /* int: hidden size. [1, 2^20] default 4096 */
    GEM_OPT_MODEL_FFN = 21,       /* int: expert FFN size. [1, 2^20] default 14336 */
    GEM_OPT_MODEL_DTYPE = 22,     /* int gem_dtype_t; the cuda backend has no FP8. default BF16 */
    GEM_OPT_MODEL_NAME = 23,      /* string: descriptive. default unset: "Mixtral-8x7B" when
                                     MODEL_HIDDEN and MODEL_FFN are the defaults, else none */
    /* sim backend */
    GEM_OPT_SIM_GPUS = 24,        /* int: emulated GPUs. [1, GEM_MAX_GPUS] default 4 */
    GEM_OPT_SIM_SPREAD = 25,      /* double: throughput spread (slowest is 1+spread slower than
                                     fastest). [0, 10] default 0.077 */
    GEM_OPT_SIM_SLOWDOWNS = 26,   /* double array [G]: explicit slowdown per GPU (>= 1 typical);
                                     overrides SIM_SPREAD and SIM_GPUS. values (0, 100] */
    GEM_OPT_SIM_TILE = 27,        /* int: GEMM tile in tokens; every backend (sim, cuda,
                                     callback) samples curves at its multiples. [1, 65536]
                                     default 64 */
    GEM_OPT_SIM_BANDWIDTH_GBS = 28, /* double: peak memory bandwidth GB/s. [1e-3, 1e6]
                                       default 864 (L40) */
    GEM_OPT_SIM_TFLOPS = 29,      /* double: peak matrix rate TFLOP/s. [1e-3, 1e6] default 181
                                     (L40 bf16) */
    GEM_OPT_SIM_OVERHEAD_US = 30, /* double: fixed cost per GPU per layer, before slowdown.
                                     [0, 1e9] default 20 */
    GEM_OPT_SIM_NOISE = 31,       /* double: relative noise of each sample. [0, 0.5] default 0 */
    /* profiling (all measuring backends) */
    GEM_OPT_PROFILE_MAX_TOKENS = 32, /* int: largest token count sampled (curves end at the
                                        first tile multiple >= it; sim too).
                                        [1, GEM_MAX_TOKENS] default 4096 */
    GEM_OPT_PROFILE_WARMUP_MS = 33,  /* int: warm-up before timing (cuda). [0, 600000]
                                        default 2000 */
    GEM_OPT_PROFILE_REPEATS = 34,    /* int: timed repeats per point, median kept (cuda: each
                                        repeat a batch of back-to-back runs lasting at least
                                        0.5 ms, its mean per run; nccl, at most 50; a callback
                                        runner is called once per point). [1, 10000] default 20 */
    GEM_OPT_PROFILE_DENSE = 35,      /* int 0/1: time every tile boundary instead of refining
                                        where the slope changes (cuda, callback); refining times
                                        at most the larger of a quarter of the boundaries and
                                        16 (fewer when there are fewer). default 0 */
    GEM_OPT_HOST_NAME = 36,          /* string: host name written into profiles. default: the
                                        machine's (gethostname) */
    GEM_OPT_ALLTOALL_MAX_BYTES = 37, /* int: largest all-to-all message. [1, 2^62] default
                                        64 MiB */
    GEM_OPT_INTERPOLATION = 38,      /* int gem_interpolation_t for written profiles. STEP */
    GEM_OPT_COST_MODEL = 39,         /* int gem_cost_model_t for written profiles. PER_EXPERT */
    /* importers */
    GEM_OPT_IMPORT_BATCH = 40,       /* int: tokens per step when grouping per-token records, or
                                        when drawing steps from aggregate counts. [1, 1e12]
                                        default 256 */
    GEM_OPT_IMPORT_STEPS = 41,       /* int: steps to draw from aggregate counts.
                                        [1, GEM_MAX_STEPS] default 64 */
    GEM_OPT_IMPORT_FILTER = 42,      /* string: "column=value" row filter for wide CSV */
    GEM_OPT_IMPORT_TOPK = 43,        /* int: experts per token for drawing from aggregate
                                        counts, and for GEM_OPT_COMM_MODEL's tokens per step
                                        when GEM_OPT_EXPERTS_PER_TOKEN is unset.
                                        [1, 64] default 8 */
    GEM_OPT_SIM_MEMORY_GB = 44,      /* double: emulated free memory per GPU in GB (1e9 bytes).
                                        [0, 1e6] default 48 */
    /* engine exports */
    GEM_OPT_FIRST_DENSE_LAYERS = 45, /* int: dense (non-MoE) decoder layers before the first MoE
                                        layer (DeepSeek-V3: 3), for gem_mapping_export_opts:
                                        the mapping's layer l is the model's layer l + this
                                        (TensorRT-LLM keys), and the SGLang and EPLB tables
                                        start with this many rows of the trivial layout (slot
                                        j holds expert j mod E). [0, 2^16] default 0 */
    /* communication model */
    GEM_OPT_EXPERTS_PER_TOKEN = 46,  /* int: experts per token (the router's top-k) for
                                        GEM_OPT_COMM_MODEL; 0 = unset: GEM_OPT_IMPORT_TOPK.
                                        [0, 1024] default 0 */
    /* evaluation */
    GEM_OPT_BOUND_SLOTS = 47         /* int 0/1: gem_evaluate's GEM_METRIC_LOWER_BOUND holds
                                        only for mappings with as many experts on every GPU
                                        as the evaluated one, layer by layer (per_expert
                                        layers without replicas; the others keep the general
                                        bound): much tighter for policies that fix the slot
                                        counts (docs/cost-model.md). default 0 */
} gem_option_t;

typedef struct gem_options gem_options_t;

/** Creates an options handle holding every default. Destroy with gem_options_destroy. */
GEM_API gem_status_t gem_options_create(gem_options_t **out);
GEM_API void gem_options_destroy(gem_options_t *opts);
/** Deep copy. */
GEM_API gem_status_t gem_options_clone(const gem_options_t *opts, gem_options_t **out);

/** Typed setters. An int option can also be read as double, and a double option set with
 *  gem_options_set_int; other mixes are an error. */
GEM_API gem_status_t gem_options_set_int(gem_options_t *opts, gem_option_t key, int64_t value);
GEM_API gem_status_t gem_options_set_double(gem_options_t *opts, gem_option_t key, double value);
/** String options; the string is copied. NULL resets to the default. */
GEM_API gem_status_t gem_options_set_string(gem_options_t *opts, gem_option_t key,
                                            const char *value);
/** Array options; the array is copied. n = 0 (values may be NULL) resets to the default. */
GEM_API gem_status_t gem_options_set_int_array(gem_options_t *opts, gem_option_t key,
                                               const int64_t *values, size_t n);
GEM_API gem_status_t gem_options_set_double_array(gem_options_t *opts, gem_option_t key,
                                                  const double *values, size_t n);

GEM_API gem_status_t gem_options_get_int(const gem_options_t *opts, gem_option_t key,
                                         int64_t *value);
GEM_API gem_status_t gem_options_get_double(const gem_options_t *opts, gem_option_t key,
                                            double *value);
/** The returned string is owned by the handle; NULL when the option is unset, in which case
 *  the default described at the option applies. */
GEM_API gem_status_t gem_options_get_string(const gem_options_t *opts, gem_option_t key,
                                            const char **value);
/** Copies at most cap values; *n receives the array's full length (0 when unset). */
GEM_API gem_status_t gem_options_get_int_array(const gem_options_t *opts, gem_option_t key,
                                               int64_t *values, size_t cap, size_t *n);
GEM_API gem_status_t gem_options_get_double_array(const gem_options_t *opts, gem_option_t key,
                                                  double *values, size_t cap, size_t *n);

/** Engine-supplied runner: return the microseconds that `tokens` tokens through one expert take
 *  on CUDA device `device`, or a negative value on failure. Called from one thread per
 *  device at the same time. */
typedef double (*gem_runner_fn)(void *user, int device, int64_t tokens);
/** Sets the runner for GEM_BACKEND_CALLBACK, and the number of devices it serves. */
GEM_API gem_status_t gem_options_set_runner(gem_options_t *opts, gem_runner_fn fn, void *user,
                                            int32_t num_devices);

/** Progress callback for long operations (profiling, search): done of total units.
 *  Return non-zero to cancel: the call then fails with GEM_ERR_CANCELLED. */
typedef int (*gem_progress_fn)(void *user, const char *what, double done, double total);
GEM_API gem_status_t gem_options_set_progress(gem_options_t *opts, gem_progress_fn fn,
                                              void *user);

/* ==========================================================================================
 * Profiles: per-GPU latency curves (SPEC 3)
 * ========================================================================================== */

typedef struct gem_profile gem_profile_t;

/** Empty profile of num_gpus GPUs; each needs a curve before use. */
GEM_API gem_status_t gem_profile_create(gem_profile_t **out, int32_t num_gpus);
GEM_API void gem_profile_destroy(gem_profile_t *profile);
GEM_API gem_status_t gem_profile_clone(const gem_profile_t *profile, gem_profile_t **out);

/** Sets GPU gpu's curve: k samples, tokens strictly ascending >= 1, latencies finite > 0.
 *  cv (coefficient of variation per sample) may be NULL. Copies the arrays. */
GEM_API gem_status_t gem_profile_set_curve(gem_profile_t *profile, int32_t gpu, size_t k,
                                           const int64_t *tokens, const double *latency_us,
                                           const double *cv);
/** Fixed per-layer cost c_g, finite and >= 0. */
GEM_API gem_status_t gem_profile_set_overhead(gem_profile_t *profile, int32_t gpu, double us);
GEM_API gem_status_t gem_profile_set_interpolation(gem_profile_t *profile,
                                                   gem_interpolation_t interp);
GEM_API gem_status_t gem_profile_set_cost_model(gem_profile_t *profile, gem_cost_model_t model);
/** Descriptive strings of a GPU: key is "name", "pci_bus_id", "host" or "cpuset". */
GEM_API gem_status_t gem_profile_set_gpu_string(gem_profile_t *profile, int32_t gpu,
                                                const char *key, const char *value);

GEM_API gem_status_t gem_profile_num_gpus(const gem_profile_t *profile, int32_t *num_gpus);
GEM_API gem_status_t gem_profile_get_interpolation(const gem_profile_t *profile,
                                                   gem_interpolation_t *interp);
GEM_API gem_status_t gem_profile_get_cost_model(const gem_profile_t *profile,
                                                gem_cost_model_t *model);
GEM_API gem_status_t gem_profile_get_overhead(const gem_profile_t *profile, int32_t gpu,
                                              double *us);
/** Copies at most cap samples; *k receives the curve's length. */
GEM_API gem_status_t gem_profile_get_curve(const gem_profile_t *profile, int32_t gpu,
                                           int64_t *tokens, double *latency_us, size_t cap,
                                           size_t *k);
/** Descriptive string (see set_gpu_string); *value is NULL when absent. */
GEM_API gem_status_t gem_profile_get_gpu_string(const gem_profile_t *profile, int32_t gpu,
                                                const char *key, const char **value);
/** f_g(tokens) of SPEC 2, in microseconds. tokens >= 0, finite. */
GEM_API gem_status_t gem_profile_latency(const gem_profile_t *profile, int32_t gpu,
                                         double tokens, double *us);
/** Relative speed of each GPU (fastest = 1.0): ratio of latencies at the profile's largest
 *  common token count. speeds has num_gpus entries. */
GEM_API gem_status_t gem_profile_speeds(const gem_profile_t *profile, double *speeds,
                                        size_t n);

/** Reads a SPEC 3 profile file. Errors: GEM_ERR_IO, GEM_ERR_INVALID_INPUT, GEM_ERR_VERSION. */
GEM_API gem_status_t gem_profile_read(const char *path, gem_profile_t **out);
/** Same, from a buffer of len bytes (need not be NUL-terminated). */
GEM_API gem_status_t gem_profile_parse(const char *data, size_t len, gem_profile_t **out);
/** Writes a SPEC 3 profile file whole or not at all (temporary file, then rename). */
GEM_API gem_status_t gem_profile_write(const gem_profile_t *profile, const char *path);
/** Serialises to a NUL-terminated string; free *out with gem_free. */
GEM_API gem_status_t gem_profile_to_string(const gem_profile_t *profile, char **out);

/** Appends the GPUs of src after those of dst (ids renumbered dst.G..). Interpolation, cost
 *  model and the expert shape (hidden, ffn, dtype, where both profiles give them) must agree
 *  (GEM_ERR_SHAPE_MISMATCH): curves of different experts cannot be compared. dst's alltoall
 *  section is dropped: it described one communicator. More than GEM_MAX_GPUS in all:
 *  GEM_ERR_LIMIT. Used to merge the profiles of MPI ranks. */
GEM_API gem_status_t gem_profile_append(gem_profile_t *dst, const gem_profile_t *src);

/* ==========================================================================================
 * Profiling backends
 * ========================================================================================== */

/** 1 if the backend is compiled into this library, else 0. Thread-safe. */
GEM_API int gem_has_backend(gem_backend_t backend);
/** Constant name of a backend ("sim", "cuda", ...); "unknown" for others. */
GEM_API const char *gem_backend_name(gem_backend_t backend);

/** Builds a profile by measuring (cuda, callback) or emulating (sim) GPUs, with the model
 *  shape and backend settings of opts (may be NULL for defaults; callback needs a runner).
 *  Curves are sampled at multiples of GEM_OPT_SIM_TILE up to GEM_OPT_PROFILE_MAX_TOKENS.
 *  Errors: GEM_ERR_NOT_SUPPORTED (backend not built; one that does not make profiles: nccl,
 *  hwloc; mpi, which lives in the gem tool only; cuda with FP8), GEM_ERR_NO_DEVICE (no GPU or
 *  driver), GEM_ERR_DEVICE (a CUDA call failed, or the runner returned a time that is
 *  negative, zero or not finite), GEM_ERR_INVALID_ARGUMENT (callback without a runner),
 *  GEM_ERR_LIMIT (too many tile boundaries), GEM_ERR_CANCELLED. */
GEM_API gem_status_t gem_profile_gpus(gem_backend_t backend, const gem_options_t *opts,
                                      gem_profile_t **out);

/** Measures all-to-all over the profile's local GPUs with NCCL and stores it in the profile's
 *  alltoall section. Errors as gem_profile_gpus. */
GEM_API gem_status_t gem_profile_measure_alltoall(gem_profile_t *profile,
                                                  const gem_options_t *opts);
/** Fills each GPU's host, NUMA node and CPU set from hwloc, matching GPUs by PCI bus id. */
GEM_API gem_status_t gem_profile_add_topology(gem_profile_t *profile);

/* ==========================================================================================
 * Traces: tokens per expert per (step, layer) (SPEC 4)
 * ========================================================================================== */

typedef struct gem_trace gem_trace_t;

/** Empty trace of num_layers layers of num_experts experts; steps are added as they come. */
GEM_API gem_status_t gem_trace_create(gem_trace_t **out, int32_t num_layers,
                                      int32_t num_experts);
GEM_API void gem_trace_destroy(gem_trace_t *trace);
GEM_API gem_status_t gem_trace_clone(const gem_trace_t *trace, gem_trace_t **out);

/** Sets the loads of (step, layer): n = num_experts values, finite and >= 0. The trace grows
 *  to step + 1 steps when needed; rows not yet set count as missing. */
GEM_API gem_status_t gem_trace_set(gem_trace_t *trace, int64_t step, int32_t layer,
                                   const double *loads, size_t n);
/** Adds one token count per expert id found in topk_ids (n_tokens x k ids, row-major) to
 *  (step, layer); ids < 0 are skipped (padding), ids >= num_experts are an error (nothing is
 *  added then). Marks the row present. For engines that record live. */
GEM_API gem_status_t gem_trace_record(gem_trace_t *trace, int64_t step, int32_t layer,
                                      const int32_t *topk_ids, size_t n_tokens, int32_t k);

GEM_API gem_status_t gem_trace_shape(const gem_trace_t *trace, int64_t *num_steps,
                                     int32_t *num_layers, int32_t *num_experts);
/** Copies the loads of (step, layer) into loads[n], n >= num_experts. */
GEM_API gem_status_t gem_trace_get(const gem_trace_t *trace, int64_t step, int32_t layer,
                                   double *loads, size_t n);
/** GEM_OK when every (step, layer) row is present, else GEM_ERR_INCOMPLETE naming the first
 *  missing row. */
GEM_API gem_status_t gem_trace_validate(const gem_trace_t *trace);
/** New trace holding steps [first, first + count) renumbered from 0. */
GEM_API gem_status_t gem_trace_slice(const gem_trace_t *trace, int64_t first, int64_t count,
                                     gem_trace_t **out);

/** Reads a SPEC 4 CSV trace. Errors name the line: GEM_ERR_INVALID_INPUT, GEM_ERR_INCOMPLETE. */
GEM_API gem_status_t gem_trace_read(const char *path, gem_trace_t **out);
GEM_API gem_status_t gem_trace_parse(const char *data, size_t len, gem_trace_t **out);
/** Writes a SPEC 4 CSV trace (values with round-trip precision), whole or not at all. */
GEM_API gem_status_t gem_trace_write(const gem_trace_t *trace, const char *path);
GEM_API gem_status_t gem_trace_to_string(const gem_trace_t *trace, char **out);

/** Imports routing data recorded by other tools (see gem_import_format_t), with
 *  GEM_OPT_IMPORT_* from opts (may be NULL). Notes about skipped rows go to *note when note is
 *  not NULL (free with gem_free; "" when none). */
GEM_API gem_status_t gem_trace_import(gem_import_format_t format, const char *path,
                                      const gem_options_t *opts, gem_trace_t **out,
                                      char **note);
GEM_API gem_status_t gem_trace_import_buffer(gem_import_format_t format, const char *data,
                                             size_t len, const gem_options_t *opts,
                                             gem_trace_t **out, char **note);

/** Synthetic trace with consistent, temporal and cold experts (for demos, tests and
 *  benchmarks): num_steps x num_layers x num_experts, tokens_per_step assignments per
 *  (step, layer), deterministic for the seed in opts. skew in [0, 1]: 0 = uniform routing. */
GEM_API gem_status_t gem_trace_synthesize(int64_t num_steps, int32_t num_layers,
                                          int32_t num_experts, int64_t tokens_per_step,
                                          double skew, const gem_options_t *opts,
                                          gem_trace_t **out);

/* ==========================================================================================
 * Mappings: placements of experts on GPUs (SPEC 1 and 5)
 * ========================================================================================== */

typedef struct gem_mapping gem_mapping_t;

/** Empty mapping; add placements, then gem_mapping_validate. */
GEM_API gem_status_t gem_mapping_create(gem_mapping_t **out, int32_t num_gpus,
                                        int32_t num_layers, int32_t num_experts);
GEM_API void gem_mapping_destroy(gem_mapping_t *mapping);
GEM_API gem_status_t gem_mapping_clone(const gem_mapping_t *mapping, gem_mapping_t **out);

/** Adds (expert, gpu, share) to a layer. share in (0, 1]. A second placement of the same
 *  expert on the same GPU is an error (GEM_ERR_INVALID_INPUT). */
GEM_API gem_status_t gem_mapping_add(gem_mapping_t *mapping, int32_t layer, int32_t expert,
                                     int32_t gpu, double share);
/** Removes every placement of a layer. */
GEM_API gem_status_t gem_mapping_clear_layer(gem_mapping_t *mapping, int32_t layer);
/** Descriptive policy name stored in the file; copied. */
GEM_API gem_status_t gem_mapping_set_policy_name(gem_mapping_t *mapping, const char *name);
GEM_API gem_status_t gem_mapping_get_policy_name(const gem_mapping_t *mapping,
                                                 const char **name);

GEM_API gem_status_t gem_mapping_shape(const gem_mapping_t *mapping, int32_t *num_gpus,
                                       int32_t *num_layers, int32_t *num_experts);
GEM_API gem_status_t gem_mapping_num_placements(const gem_mapping_t *mapping, int32_t layer,
                                                size_t *n);
/** The i-th placement of a layer, in the order added (or read). */
GEM_API gem_status_t gem_mapping_get(const gem_mapping_t *mapping, int32_t layer, size_t i,
                                     int32_t *expert, int32_t *gpu, double *share);
/** GPU of an expert that has exactly one placement; GEM_ERR_INVALID_ARGUMENT if replicated,
 *  GEM_ERR_INVALID_INPUT if not placed. */
GEM_API gem_status_t gem_mapping_expert_gpu(const gem_mapping_t *mapping, int32_t layer,
                                            int32_t expert, int32_t *gpu);
/** Checks SPEC 1: every expert placed, shares in (0,1] summing to 1 within 1e-9, no expert
 *  twice on one GPU. GEM_ERR_INVALID_INPUT names the layer and expert. */
GEM_API gem_status_t gem_mapping_validate(const gem_mapping_t *mapping);
/** Experts placed on a GPU in a layer (its slots). */
GEM_API gem_status_t gem_mapping_gpu_slots(const gem_mapping_t *mapping, int32_t layer,
                                           int32_t gpu, int32_t *slots);

GEM_API gem_status_t gem_mapping_read(const char *path, gem_mapping_t **out);
GEM_API gem_status_t gem_mapping_parse(const char *data, size_t len, gem_mapping_t **out);
GEM_API gem_status_t gem_mapping_write(const gem_mapping_t *mapping, const char *path);
GEM_API gem_status_t gem_mapping_to_string(const gem_mapping_t *mapping, char **out);

/** Writes the mapping in an engine's format, whole or not at all. Refuses
 *  (GEM_ERR_NOT_SUPPORTED, with the reason) what the format cannot express: unequal slots per
 *  GPU, or replica shares that are not equal. */
GEM_API gem_status_t gem_mapping_export(const gem_mapping_t *mapping, gem_export_format_t format,
                                        const char *path);
GEM_API gem_status_t gem_mapping_export_string(const gem_mapping_t *mapping,
                                               gem_export_format_t format, char **out);
/** Both with options (may be NULL): GEM_OPT_FIRST_DENSE_LAYERS numbers the layers as the
 *  model does, dense layers included. With NULL options, or that option at 0, the text is the
 *  same as the two above write. */
GEM_API gem_status_t gem_mapping_export_opts(const gem_mapping_t *mapping,
                                             gem_export_format_t format,
                                             const gem_options_t *opts, const char *path);
GEM_API gem_status_t gem_mapping_export_string_opts(const gem_mapping_t *mapping,
                                                    gem_export_format_t format,
                                                    const gem_options_t *opts, char **out);

/* ==========================================================================================
 * Classification of experts (GEM)
 * ========================================================================================== */

typedef struct gem_classification gem_classification_t;

/** Classifies every expert of every layer from a complete trace, with GEM_OPT_HEAVY_FACTOR,
 *  GEM_OPT_CONSISTENT_MIN and GEM_OPT_TEMPORAL_MIN from opts (may be NULL). Also counts, for
 *  every pair of experts of a layer, the steps in which both are heavy. */
GEM_API gem_status_t gem_classify_experts(const gem_trace_t *trace, const gem_options_t *opts,
                                          gem_classification_t **out);
GEM_API void gem_classification_destroy(gem_classification_t *cls);
GEM_API gem_status_t gem_classification_shape(const gem_classification_t *cls,
                                              int64_t *num_steps, int32_t *num_layers,
                                              int32_t *num_experts);
/** Per expert: its class, the fraction of steps it was heavy in, its mean load over all steps
 *  and its mean load in the steps it was heavy (0 if never). Any output may be NULL. */
GEM_API gem_status_t gem_classification_get(const gem_classification_t *cls, int32_t layer,
                                            int32_t expert, gem_expert_class_t *cls_out,
                                            double *heavy_fraction, double *mean_load,
                                            double *mean_heavy_load);
/** Steps in which both experts were heavy (a == b: steps in which a was heavy). */
GEM_API gem_status_t gem_classification_coactivation(const gem_classification_t *cls,
                                                     int32_t layer, int32_t a, int32_t b,
                                                     int64_t *steps);
/** Constant name of a class: "cold", "consistent", "temporal". */
GEM_API const char *gem_class_name(gem_expert_class_t cls);

/* ==========================================================================================
 * Placement
 * ========================================================================================== */

/** Constant name of a policy ("gem", "balanced", ...); "unknown" for others. */
GEM_API const char *gem_policy_name(gem_policy_t policy);
/** Policy from its name; GEM_ERR_INVALID_ARGUMENT lists the valid names. */
GEM_API gem_status_t gem_policy_from_name(const char *name, gem_policy_t *policy);

/** Computes a mapping of the trace's layers and experts onto the profile's GPUs.
 *  cls may be NULL (policy gem then classifies the trace itself). opts may be NULL.
 *  The trace must be complete. Deterministic for a given GEM_OPT_SEED whatever GEM_OPT_THREADS,
 *  unless a time limit stops a search (GEM_OPT_TIME_LIMIT_MS; policy exact always has one).
 *  Errors: GEM_ERR_INCOMPLETE, GEM_ERR_SHAPE_MISMATCH (cls of another shape),
 *  GEM_ERR_INFEASIBLE (memory or slots cannot hold every expert), GEM_ERR_NOT_SUPPORTED
 *  (GEM_OPT_REDUNDANT_SLOTS > 0 with a policy other than gem or eplb),
 *  GEM_ERR_INVALID_ARGUMENT (GEM_OPT_GPU_MEMORY without one entry per GPU),
 *  GEM_ERR_INVALID_INPUT (TOPOLOGY_AWARE with COMM_MODEL and no alltoall section in the
 *  profile), GEM_ERR_CANCELLED. */
GEM_API gem_status_t gem_compute_mapping(const gem_profile_t *profile, const gem_trace_t *trace,
                                         gem_policy_t policy, const gem_options_t *opts,
                                         const gem_classification_t *cls, gem_mapping_t **out);

/* ==========================================================================================
 * Evaluation (SPEC 2)
 * ========================================================================================== */

typedef struct gem_report gem_report_t;

/** Scalar results of an evaluation; all in microseconds except where said. */
typedef enum {
    GEM_METRIC_MEAN = 0,        /* mean step latency */
    GEM_METRIC_P50 = 1,         /* nearest-rank percentiles of step latency */
    GEM_METRIC_P90 = 2,
    GEM_METRIC_P99 = 3,
    GEM_METRIC_TOTAL = 4,       /* sum of step latencies */
    GEM_METRIC_LOWER_BOUND = 5, /* lower bound on MEAN that no mapping with the same
                                   constraints can beat (see docs/cost-model.md); it leaves
                                   out all-to-all time */
    GEM_METRIC_MAX = 6,         /* largest step latency */
    GEM_METRIC_STEPS = 7,       /* number of steps (a count, as double) */
    GEM_METRIC_IMBALANCE = 8,   /* mean over (step, layer) of max_g T_g / mean_g T_g */
    GEM_METRIC_COMM = 9,        /* mean all-to-all time per step (dispatch and combine, all
                                   layers), included in the step latencies
                                   (GEM_OPT_COMM_MODEL; 0 without it) */
    GEM_METRIC_CROSS_HOST = 10  /* fraction of tokens that need a host other than their
                                   own (GEM_OPT_COMM_MODEL; 0 without it or with one host) */
} gem_metric_t;

/** Replays the trace through the mapping with the profile's cost model. The three must agree on
 *  GPUs, layers and experts (GEM_ERR_SHAPE_MISMATCH), the trace must be complete and the
 *  mapping valid. opts may be NULL; with GEM_OPT_COMM_MODEL set it adds all-to-all time, and
 *  fails with GEM_ERR_INVALID_INPUT when the profile has no alltoall section or the bytes per
 *  token are unknown (GEM_OPT_TOKEN_BYTES, or the profile model's hidden size and dtype). */
GEM_API gem_status_t gem_evaluate(const gem_profile_t *profile, const gem_trace_t *trace,
                                  const gem_mapping_t *mapping, const gem_options_t *opts,
                                  gem_report_t **out);
GEM_API void gem_report_destroy(gem_report_t *report);
GEM_API gem_status_t gem_report_get(const gem_report_t *report, gem_metric_t metric,
                                    double *value);
/** Per GPU: total busy time (sum over steps and layers of T_g) and the number of
 *  (step, layer)s in which it was the straggler (ties to the lowest id). */
GEM_API gem_status_t gem_report_gpu(const gem_report_t *report, int32_t gpu, double *busy_us,
                                    int64_t *straggler_count);
/** Latency of one step. */
GEM_API gem_status_t gem_report_step(const gem_report_t *report, int64_t step, double *us);
/** JSON object with mean, p50, p90, p99, total and more (comm and cross_host only with
 *  GEM_OPT_COMM_MODEL); free with gem_free. */
GEM_API gem_status_t gem_report_to_json(const gem_report_t *report, char **out);

#ifdef GEM_EXPERIMENTAL
/* ==========================================================================================
 * Experimental: migration-aware re-mapping
 *
 * Define GEM_EXPERIMENTAL before including gem.h to see these declarations. They may change
 * between minor versions (see Stability above); the `gem remap` command of the tool uses them.
 * ========================================================================================== */

typedef struct gem_remap_result gem_remap_result_t;

/** Finds a mapping close to `current` (at most GEM_OPT_MAX_MOVES expert moves and
 *  GEM_OPT_MAX_MOVE_BYTES bytes) that serves the new trace window better.
 *
 *  An expert (of one layer) moves when its set of GPUs differs from current's; the bytes
 *  moved are GEM_OPT_EXPERT_BYTES per copy that lands on a GPU that did not hold that
 *  expert. The search (greedy best-improvement swaps of two placements of a layer between
 *  their GPUs, at most GEM_OPT_MAX_ITERATIONS swaps) keeps every GPU's number of experts
 *  per layer, and so its memory use. The result also holds the mean on the window of an
 *  unconstrained re-map: policy gem from scratch on the window with opts, GEM_OPT_SEED and
 *  the other search options included (see gem_compute_mapping). Means are gem_evaluate's
 *  with opts (GEM_OPT_COMM_MODEL adds all-to-all time; the swap search scores compute time
 *  only). opts may be NULL (every default: no move or byte limit, GEM_OPT_MIN_GAIN 0.01).
 *
 *  Guarantees of a successful call: the proposed mapping is valid (SPEC 1), its mean on the
 *  window is at most current's (when nothing better fits the budget, it is a copy of
 *  current, with 0 moves and 0 bytes); moves <= GEM_OPT_MAX_MOVES and bytes moved <=
 *  GEM_OPT_MAX_MOVE_BYTES when those are not -1. The unconstrained re-map is a heuristic,
 *  not a bound: its mean may be above the constrained one. Deterministic for a given
 *  GEM_OPT_SEED whatever GEM_OPT_THREADS, unless GEM_OPT_TIME_LIMIT_MS stops the
 *  unconstrained search.
 *
 *  Ownership: *out belongs to the caller, who frees it with gem_remap_result_destroy; the
 *  inputs are only read, and the result keeps no reference to them.
 *  Errors: GEM_ERR_INVALID_ARGUMENT (profile, window, current or out NULL;
 *  GEM_OPT_MAX_MOVE_BYTES >= 0 while GEM_OPT_EXPERT_BYTES is 0), GEM_ERR_SHAPE_MISMATCH
 *  (profile's GPUs, or window's layers and experts, differ from current's),
 *  GEM_ERR_INCOMPLETE (the window misses (step, layer) rows), GEM_ERR_INVALID_INPUT (a GPU
 *  of the profile has no curve; current is not a valid mapping, message starting
 *  "gem_remap: current"; GEM_OPT_COMM_MODEL without the profile's alltoall section),
 *  GEM_ERR_NO_MEMORY, and what gem_compute_mapping returns for the unconstrained re-map,
 *  message starting "gem_remap: unconstrained re-map" (GEM_ERR_INFEASIBLE when memory or
 *  slots cannot hold every expert, GEM_ERR_CANCELLED when the progress callback stops it,
 *  ...).
 *  Thread-safe: profile, window, current and opts are only read, so many threads may
 *  re-map with the same handles at once; a progress callback in opts is called as by
 *  gem_compute_mapping. */
GEM_API gem_status_t gem_remap(const gem_profile_t *profile, const gem_trace_t *window,
                               const gem_mapping_t *current, const gem_options_t *opts,
                               gem_remap_result_t **out);
/** Frees the result and the mapping it owns (the one gem_remap_result_mapping gives), so
 *  that pointer is dangling afterwards. Accepts NULL. Needs exclusive access to res. */
GEM_API void gem_remap_result_destroy(gem_remap_result_t *res);
/** Predicted mean step latency on the window: keeping current, the constrained re-map, and an
 *  unconstrained re-map; moves made and bytes moved; recommend = 1 when the gain passes
 *  GEM_OPT_MIN_GAIN. Any output may be NULL.
 *
 *  current_us >= remapped_us always; unconstrained_us may lie on either side of them.
 *  bytes_moved is 0 when GEM_OPT_EXPERT_BYTES was 0 (unknown). recommend is 1 exactly when
 *  moves > 0, current_us > 0 and (current_us - remapped_us) / current_us >=
 *  GEM_OPT_MIN_GAIN, else 0.
 *  Errors: GEM_ERR_INVALID_ARGUMENT (res NULL); the outputs are then untouched.
 *  Thread-safe: res is only read, so many threads may query one result at once. */
GEM_API gem_status_t gem_remap_result_get(const gem_remap_result_t *res, double *current_us,
                                          double *remapped_us, double *unconstrained_us,
                                          int64_t *moves, uint64_t *bytes_moved,
                                          int32_t *recommend);
/** The proposed mapping, owned by the result.
 *
 *  Ownership: *mapping is never NULL on success and stays valid until
 *  gem_remap_result_destroy(res); do not destroy or modify it (gem_mapping_clone gives a
 *  copy of one's own). Its policy name is "remap" when it differs from current, else
 *  current's (a copy of it). Write it with gem_mapping_write or export it as any mapping.
 *  Errors: GEM_ERR_INVALID_ARGUMENT (res or mapping NULL).
 *  Thread-safe: res and the mapping are only read, so many threads may use them at once
 *  (as const gem_mapping_t handles) until the result is destroyed. */
GEM_API gem_status_t gem_remap_result_mapping(const gem_remap_result_t *res,
                                              const gem_mapping_t **mapping);
/** Drift: mean step latency of mapping on `window` divided by its mean on `built_on`.
 *
 *  Both means are gem_evaluate's with no options (SPEC 2, compute time only). Above 1: the
 *  mapping serves the window worse than the trace it was built from. When both means are 0
 *  the ratio is 1.
 *  Ownership: nothing is allocated for the caller; *ratio is a plain value.
 *  Errors: GEM_ERR_INVALID_ARGUMENT (a NULL argument), GEM_ERR_SHAPE_MISMATCH,
 *  GEM_ERR_INCOMPLETE and GEM_ERR_INVALID_INPUT as gem_evaluate, with messages starting
 *  "gem_drift: built_on" or "gem_drift: window" to say which trace; GEM_ERR_INVALID_INPUT
 *  also when the mean on built_on is 0 and the one on window is not (no ratio exists);
 *  GEM_ERR_NO_MEMORY.
 *  Thread-safe: every input is only read, so many threads may call it with the same
 *  handles at once. */
GEM_API gem_status_t gem_drift(const gem_profile_t *profile, const gem_trace_t *built_on,
                               const gem_trace_t *window, const gem_mapping_t *mapping,
                               double *ratio);
#endif /* GEM_EXPERIMENTAL */

#ifdef __cplusplus
}
#endif

#endif /* GEM_H */
