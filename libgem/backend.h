/*
 * backend.h - private interface between the profiling backends (backend*.c, topo_hwloc.c,
 * cuda/probe.cu). Never installed; every name is gem__* and hidden.
 *
 * The measuring backends (cuda, callback) share one sampler: it times an expert at the tile
 * boundaries tile, 2*tile, ... up to GEM_OPT_PROFILE_MAX_TOKENS, coarsely first, then bisects
 * only where the curve bends, worst bend first, within a budget of timed boundaries, and fills
 * the boundaries it did not time by straight lines between timed neighbours. They also share
 * the thread-per-device runner, which reports progress from the calling thread and stops every
 * device when one fails.
 */
#ifndef GEM_BACKEND_H
#define GEM_BACKEND_H

#include "internal.h"

#include <stdatomic.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- model shape and common profile fields (backend.c) --------------------------------- */

/** Bytes of one element of a gem_dtype_t (bf16 2, fp16 2, fp8 1, fp32 4). */
int gem__dtype_bytes(int64_t dtype);
/** "bf16", "fp16", "fp8", "fp32". */
const char *gem__dtype_name(int64_t dtype);
/** Host name for profiles: GEM_OPT_HOST_NAME, else gethostname(2), else "localhost". The
 *  result is written into buf (always NUL-terminated). */
void gem__host_name(const gem_options_t *opts, char *buf, size_t len);
/** Sets a fresh profile's interpolation, cost model and model description from opts. Call
 *  before any curve is set (curves are prepared for the interpolation set here). */
gem_status_t gem__profile_describe(gem_profile_t *p, const gem_options_t *opts);

/* ---- tile grid and sampler (backend.c) --------------------------------------------------- */

/** Tile boundaries tile, 2*tile, ... up to the first one >= max_tokens (at least one, and
 *  none above GEM_MAX_TOKENS). GEM_ERR_LIMIT when there would be more than
 *  GEM_MAX_CURVE_POINTS of them. */
gem_status_t gem__tile_grid(int64_t tile, int64_t max_tokens, size_t *n);

/** Times `tokens` tokens through one expert on one device: *us (> 0) and the coefficient of
 *  variation of the repeats (*cv, 0 when unknown). Returns a status and sets the message. */
typedef gem_status_t (*gem__measure_fn)(void *ctx, int64_t tokens, double *us, double *cv);

typedef struct {
    int64_t tile, max_tokens;
    int dense;              /* time every boundary */
    size_t coarse_stride;   /* boundaries between first-pass samples (>= 2) */
    double tol;             /* bisect a stretch between timed samples when its straight fill
                               may be off by more than tol * t ... */
    double noise_k;         /* ... and by more than noise_k standard deviations of that
                               estimate, propagated from the samples' measured cv (the median
                               of r repeats scatters by about 1.25 cv t / sqrt(r)) */
    int64_t repeats;        /* timed runs behind each sample (for the noise term) */
    size_t max_timed;       /* budget of timed boundaries; 0: the larger of a quarter of the
                               boundaries and min(boundaries, 16). The coarse pass is always
                               timed, whatever the budget. */
    atomic_int *stop;       /* set by others: stop early with GEM_ERR_CANCELLED */
    atomic_long *measured;  /* incremented once per timed sample (may be NULL) */
} gem__sample_plan;

typedef struct {
    size_t n;               /* grid points */
    int64_t *tokens;        /* [n] */
    double *latency;        /* [n] timed or filled */
    double *cv;             /* [n] */
    unsigned char *timed;   /* [n] 1 where timed, 0 where filled by a straight line */
    size_t n_timed;
    int capped;             /* the budget ran out while some stretch still bent */
} gem__samples;

/** Default plan from opts: GEM_OPT_SIM_TILE, GEM_OPT_PROFILE_MAX_TOKENS, GEM_OPT_PROFILE_DENSE,
 *  GEM_OPT_PROFILE_REPEATS; coarse stride 8, tol 1%, noise_k 3, the default budget. */
void gem__sample_plan_init(gem__sample_plan *plan, const gem_options_t *opts);
/** Runs the sampler for one device. On failure out is left empty. */
gem_status_t gem__sample_curve(const gem__sample_plan *plan, gem__measure_fn fn, void *ctx,
                               gem__samples *out);
void gem__samples_free(gem__samples *s);

/* ---- one thread per device (backend.c) --------------------------------------------------- */

/** What one device's worker produced. */
typedef struct {
    gem_status_t st;
    char err[512];
    gem__samples samples;
    int has_cv;             /* samples.cv holds measured coefficients of variation */
    char name[256];
    char pci_bus_id[32];
    int64_t memory_bytes;   /* -1 when unknown */
    double seconds;         /* wall time of this device's profile */
} gem__device_result;

/** Per-device statistics of a measuring run, for reports and the GPU check. */
typedef struct {
    int32_t n;              /* devices */
    size_t grid;            /* tile boundaries per device: the points of a dense sweep */
    size_t *timed;          /* [n] boundaries actually timed */
    double *seconds;        /* [n] wall time of each device's profile */
    unsigned char *capped;  /* [n] refinement stopped at its budget (gem__samples.capped) */
} gem__profile_stats;
void gem__profile_stats_free(gem__profile_stats *s);

/** Worker for device `device`: fills res (st, err through gem__device_fail). */
typedef void (*gem__device_fn)(void *user, int device, const gem__sample_plan *plan,
                               gem__device_result *res);
/** Records the thread's current gem_last_error() into res with status st. */
void gem__device_fail(gem__device_result *res, gem_status_t st);

/** Runs fn for devices 0..n-1, one thread each, all at once. Reports progress ("measure",
 *  timed samples, boundaries of a dense sweep) from the calling thread; a failure on one
 *  device stops the others and is returned (the lowest failing device's). On success builds
 *  the profile (names, host, curves, cv, memory, overhead 0) into *out and, when stats is not
 *  NULL, fills it (free with gem__profile_stats_free). */
gem_status_t gem__run_devices(int n, gem__device_fn fn, void *user, const gem_options_t *opts,
                              gem_profile_t **out, gem__profile_stats *stats);

/* ---- backends ---------------------------------------------------------------------------- */

/** The sim (backend_sim.c). */
gem_status_t gem__profile_sim(const gem_options_t *opts, gem_profile_t **out);
/** Slowdowns of the seeded fleet: sd[fleet] (explicit GEM_OPT_SIM_SLOWDOWNS when set, whose
 *  length is then the fleet). *fleet receives the fleet's size; sd is allocated. */
gem_status_t gem__sim_slowdowns(const gem_options_t *opts, double **sd, int32_t *fleet);
/** f(x) of the sim for one unslowed GPU, without noise. */
double gem__sim_latency(const gem_options_t *opts, int64_t tokens);

/** CUDA probe kernels + cuBLAS (backend_cuda.c). */
gem_status_t gem__profile_cuda(const gem_options_t *opts, gem_profile_t **out,
                               gem__profile_stats *stats);
/** Engine-supplied runner (backend.c). */
gem_status_t gem__profile_callback(const gem_options_t *opts, gem_profile_t **out,
                                   gem__profile_stats *stats);
/** Number of CUDA devices; GEM_ERR_NO_DEVICE (no device or no driver), GEM_ERR_NOT_SUPPORTED
 *  (built without CUDA). */
gem_status_t gem__cuda_device_count(int *n);

/** NCCL all-to-all (backend_nccl.c). pair_gbs (may be NULL) receives a G x G matrix of
 *  point-to-point bandwidths in GB/s (row sender, column receiver; diagonal 0), allocated. */
gem_status_t gem__nccl_alltoall(gem_profile_t *p, const gem_options_t *opts, double **pair_gbs);

/** hwloc (topo_hwloc.c). */
gem_status_t gem__hwloc_add_topology(gem_profile_t *p);

#ifdef __cplusplus
}
#endif

#endif /* GEM_BACKEND_H */
