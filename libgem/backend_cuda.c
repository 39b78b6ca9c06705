/*
 * backend_cuda.c - GEM_BACKEND_CUDA: every visible CUDA device times one expert's FFN at the
 * tile boundaries (probe kernels of cuda/probe.cu plus cuBLAS), all devices at the same time,
 * one host thread each, sampled coarsely and refined where the curve bends (backend.c).
 *
 * Built only with GEM_HAVE_CUDA (mk/backends.mk found nvcc and cuBLAS); otherwise the entry
 * points say so with GEM_ERR_NOT_SUPPORTED. The library links the CUDA runtime, never the
 * driver (libcuda), so it loads on machines without a GPU driver and reports
 * GEM_ERR_NO_DEVICE there.
 */
#include "backend.h"

#include <stdio.h>

#ifdef GEM_HAVE_CUDA
#include "cuda/probe.h"

typedef struct {
    int64_t hidden, ffn, dtype, max_tokens, repeats, warmup_ms;
} gem__cuda_job;

static gem_status_t gem__cuda_measure(void *ctx, int64_t tokens, double *us, double *cv)
{
    return gem__cuda_probe_time(ctx, tokens, us, cv);
}

static void gem__cuda_device(void *user, int device, const gem__sample_plan *plan,
                             gem__device_result *res)
{
    const gem__cuda_job *job = user;
    gem__cuda_probe *probe = NULL;
    res->has_cv = 1;
    gem_status_t st = gem__cuda_info(device, res->name, sizeof res->name, res->pci_bus_id,
                                     sizeof res->pci_bus_id, &res->memory_bytes);
    if (!st) st = gem__cuda_probe_create(device, job->hidden, job->ffn, job->dtype,
                                         job->max_tokens, job->repeats, &probe);
    if (!st && job->warmup_ms > 0) st = gem__cuda_probe_warmup(probe, job->warmup_ms);
    if (!st) st = gem__sample_curve(plan, gem__cuda_measure, probe, &res->samples);
    gem__cuda_probe_destroy(probe);
    if (st) gem__device_fail(res, st);
}

gem_status_t gem__cuda_device_count(int *n) { return gem__cuda_count(n); }

gem_status_t gem__profile_cuda(const gem_options_t *opts, gem_profile_t **out,
                               gem__profile_stats *stats)
{
    gem__cuda_job job;
    job.hidden = gem__opt_int(opts, GEM_OPT_MODEL_HIDDEN);
    job.ffn = gem__opt_int(opts, GEM_OPT_MODEL_FFN);
    job.dtype = gem__opt_int(opts, GEM_OPT_MODEL_DTYPE);
    job.repeats = gem__opt_int(opts, GEM_OPT_PROFILE_REPEATS);
    job.warmup_ms = gem__opt_int(opts, GEM_OPT_PROFILE_WARMUP_MS);
    if (job.dtype == GEM_DTYPE_FP8)
        return gem__fail(GEM_ERR_NOT_SUPPORTED,
                         "backend cuda: fp8 experts are not timed (cublasGemmEx has no fp8); "
                         "profile bf16 or fp16");
    int64_t tile = gem__opt_int(opts, GEM_OPT_SIM_TILE);
    size_t grid;
    gem_status_t st = gem__tile_grid(tile, gem__opt_int(opts, GEM_OPT_PROFILE_MAX_TOKENS), &grid);
    if (st) return st;
    job.max_tokens = (int64_t)grid * tile; /* the last boundary */
    int n = 0;
    if ((st = gem__cuda_count(&n))) return st;
    return gem__run_devices(n, gem__cuda_device, &job, opts, out, stats);
}

#else /* !GEM_HAVE_CUDA */

#define GEM__NO_CUDA                                                                          \
    "libgem was built without CUDA (no nvcc, CUDA runtime and cuBLAS under CUDA_HOME at "     \
    "build time)"

gem_status_t gem__cuda_device_count(int *n)
{
    (void)n;
    return gem__fail(GEM_ERR_NOT_SUPPORTED, GEM__NO_CUDA);
}

gem_status_t gem__profile_cuda(const gem_options_t *opts, gem_profile_t **out,
                               gem__profile_stats *stats)
{
    (void)opts, (void)out, (void)stats;
    return gem__fail(GEM_ERR_NOT_SUPPORTED, "backend cuda: " GEM__NO_CUDA);
}

#endif
