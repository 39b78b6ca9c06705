/*
 * probe.cu - libgem's CUDA probe: one MoE expert's FFN (SwiGLU) on x tokens,
 *
 *     g = X Wg,  u = X Wu     [x,h] x [h,f]   cuBLAS GEMM, fp32 accumulate
 *     a = silu(g) * u         [x,f]           our elementwise kernel (in place into g)
 *     y = a Wd                [x,f] x [f,h]   cuBLAS GEMM
 *
 * timed with CUDA events around back-to-back runs on one stream. Inputs are random and never
 * zero (our init kernel), because some GPUs draw less power, and so clock higher, on zeros.
 * Each timed repeat is a batch of back-to-back runs lasting at least GEM__PROBE_MIN_BATCH_US
 * (one run at large token counts, a few on the memory-bound plateau, where one run takes
 * ~80 us on an H200): an event pair resolves about half a microsecond and a single launch
 * hiccup would otherwise move one short run by percents, so the repeats' spread (the cv) would
 * be the timer's rather than the GPU's. The time of a repeat is its batch's mean per run.
 *
 * cuBLAS is column-major; a row-major [r,c] matrix is its column-major transpose [c,r], so
 * row-major C = A B is computed as column-major C^T = B^T A^T without any transposition.
 *
 * cuBLAS is loaded with dlopen on first use instead of being linked: its Lt half alone takes
 * half a second of relocations at start-up, which every program linking libgem (and every
 * `gem` command) would pay to profile nothing.
 */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "internal.h"
}
#include "probe.h"

/* Shortest timed repeat (see above), and the most runs one repeat may batch. */
#define GEM__PROBE_MIN_BATCH_US 500.0
#define GEM__PROBE_MAX_BATCH 64

struct gem__cuda_probe {
    int dev;
    int64_t h, f, max_tokens, repeats;
    cudaDataType_t dt;
    size_t esize;
    void *x, *wg, *wu, *wd, *g, *u, *y;
    cudaStream_t stream;
    cublasHandle_t blas;
    cudaEvent_t *ev; /* [2 * repeats]: start and stop of each timed run */
    double *times;   /* [repeats] */
};

/* ---- cuBLAS, loaded on first use ----------------------------------------------------------- */

#define GEM__STR2(x) #x
#define GEM__STR(x) GEM__STR2(x)
#define GEM__CUBLAS_SONAME "libcublas.so." GEM__STR(CUBLAS_VER_MAJOR)
#ifndef GEM_CUDA_LIBDIR
#define GEM_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

/* cublasGemmEx is overloaded in C++ (an old cudaDataType compute-type wrapper): name the one
 * that the library exports. */
typedef cublasStatus_t (*gem__gemm_ex_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                                          int, int, int, const void *, const void *,
                                          cudaDataType, int, const void *, cudaDataType, int,
                                          const void *, void *, cudaDataType, int,
                                          cublasComputeType_t, cublasGemmAlgo_t);

static struct {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    gem__gemm_ex_fn gemm_ex;
    decltype(&cublasGetStatusString) status_string;
    decltype(&cublasGetStatusName) status_name;
    char error[512];
} gem__blas;
static pthread_once_t gem__blas_once = PTHREAD_ONCE_INIT;

static void gem__blas_load(void)
{
    /* The soname through the loader's search path first, then the toolkit it was built with. */
    void *h = dlopen(GEM__CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen(GEM_CUDA_LIBDIR "/" GEM__CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(gem__blas.error, sizeof gem__blas.error, "cannot load cuBLAS (%s): %s",
                 GEM__CUBLAS_SONAME, e ? e : "unknown error");
        return;
    }
    /* The handle stays open for the life of the process: cuBLAS is not meant to unload. */
    *(void **)&gem__blas.create = dlsym(h, "cublasCreate_v2");
    *(void **)&gem__blas.destroy = dlsym(h, "cublasDestroy_v2");
    *(void **)&gem__blas.set_stream = dlsym(h, "cublasSetStream_v2");
    *(void **)&gem__blas.gemm_ex = dlsym(h, "cublasGemmEx");
    *(void **)&gem__blas.status_string = dlsym(h, "cublasGetStatusString");
    *(void **)&gem__blas.status_name = dlsym(h, "cublasGetStatusName");
    if (!gem__blas.create || !gem__blas.destroy || !gem__blas.set_stream || !gem__blas.gemm_ex ||
        !gem__blas.status_string || !gem__blas.status_name) {
        snprintf(gem__blas.error, sizeof gem__blas.error,
                 "cuBLAS (%s) lacks a function libgem needs (cublasGemmEx, ...)",
                 GEM__CUBLAS_SONAME);
        gem__blas.create = NULL;
    }
}

static gem_status_t gem__blas_ready(void)
{
    pthread_once(&gem__blas_once, gem__blas_load);
    if (!gem__blas.create) return gem__fail(GEM_ERR_NOT_SUPPORTED, "%s", gem__blas.error);
    return GEM_OK;
}

extern "C" gem_status_t gem__cuda_blas_load(void) { return gem__blas_ready(); }

/* ---- errors -------------------------------------------------------------------------------- */

static gem_status_t gem__cuda_fail(int dev, const char *what, cudaError_t e)
{
    return gem__fail(GEM_ERR_DEVICE, "CUDA device %d: %s failed: %s (%s)", dev, what,
                     cudaGetErrorString(e), cudaGetErrorName(e));
}

static gem_status_t gem__blas_fail(int dev, const char *what, cublasStatus_t s)
{
    return gem__fail(GEM_ERR_DEVICE, "CUDA device %d: %s failed: %s (%s)", dev, what,
                     gem__blas.status_string(s), gem__blas.status_name(s));
}

#define GEM__CU(dev, what, call)                                                              \
    do {                                                                                      \
        cudaError_t e__ = (call);                                                             \
        if (e__ != cudaSuccess) return gem__cuda_fail((dev), (what), e__);                    \
    } while (0)
#define GEM__BLAS(dev, what, call)                                                            \
    do {                                                                                      \
        cublasStatus_t s__ = (call);                                                          \
        if (s__ != CUBLAS_STATUS_SUCCESS) return gem__blas_fail((dev), (what), s__);          \
    } while (0)

/* ---- kernels ------------------------------------------------------------------------------- */

__device__ __forceinline__ float gem__to_f(float v) { return v; }
__device__ __forceinline__ float gem__to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float gem__to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T gem__from_f(float v);
template <> __device__ __forceinline__ float gem__from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half gem__from_f<__half>(float v) { return __float2half(v); }
template <> __device__ __forceinline__ __nv_bfloat16 gem__from_f<__nv_bfloat16>(float v)
{
    return __float2bfloat16(v);
}

/* Uniform in +-[1/64, 1) * scale from a hash of (seed, index): random, reproducible, never 0. */
template <typename T>
__global__ void gem__init_kernel(T *p, size_t n, unsigned long long seed, float scale)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        unsigned long long z = seed + 0x9e3779b97f4a7c15ULL * (i + 1);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        float mag = 1.0f / 64.0f + (float)(z >> 40) * (63.0f / 64.0f / 16777216.0f);
        p[i] = gem__from_f<T>(((z & 1) ? -mag : mag) * scale);
    }
}

/* a = silu(g) * u, written over g. */
template <typename T> __global__ void gem__silu_mul_kernel(T *g, const T *u, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float a = gem__to_f(g[i]);
        float b = gem__to_f(u[i]);
        g[i] = gem__from_f<T>(a / (1.0f + __expf(-a)) * b);
    }
}

static unsigned gem__blocks(size_t n)
{
    size_t b = (n + 255) / 256;
    return (unsigned)(b < 65535 ? (b ? b : 1) : 65535);
}

static gem_status_t gem__launch_init(gem__cuda_probe *p, void *buf, size_t n,
                                     unsigned long long seed, float scale)
{
    switch (p->dt) {
    case CUDA_R_16BF:
        gem__init_kernel<<<gem__blocks(n), 256, 0, p->stream>>>((__nv_bfloat16 *)buf, n, seed, scale);
        break;
    case CUDA_R_16F:
        gem__init_kernel<<<gem__blocks(n), 256, 0, p->stream>>>((__half *)buf, n, seed, scale);
        break;
    default:
        gem__init_kernel<<<gem__blocks(n), 256, 0, p->stream>>>((float *)buf, n, seed, scale);
        break;
    }
    GEM__CU(p->dev, "init kernel launch", cudaGetLastError());
    return GEM_OK;
}

static gem_status_t gem__launch_silu_mul(gem__cuda_probe *p, size_t n)
{
    switch (p->dt) {
    case CUDA_R_16BF:
        gem__silu_mul_kernel<<<gem__blocks(n), 256, 0, p->stream>>>(
            (__nv_bfloat16 *)p->g, (const __nv_bfloat16 *)p->u, n);
        break;
    case CUDA_R_16F:
        gem__silu_mul_kernel<<<gem__blocks(n), 256, 0, p->stream>>>((__half *)p->g,
                                                                     (const __half *)p->u, n);
        break;
    default:
        gem__silu_mul_kernel<<<gem__blocks(n), 256, 0, p->stream>>>((float *)p->g,
                                                                     (const float *)p->u, n);
        break;
    }
    GEM__CU(p->dev, "silu-mul kernel launch", cudaGetLastError());
    return GEM_OK;
}

/* ---- the expert FFN ---------------------------------------------------------------------------- */

static gem_status_t gem__ffn(gem__cuda_probe *p, int64_t x)
{
    const float one = 1.0f, zero = 0.0f;
    int m_f = (int)p->f, m_h = (int)p->h, n = (int)x;
    /* g^T[f,x] = Wg^T[f,h] X^T[h,x]; likewise u; then y^T[h,x] = Wd^T[h,f] a^T[f,x] */
    GEM__BLAS(p->dev, "cublasGemmEx (gate)",
              gem__blas.gemm_ex(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, m_f, n, m_h, &one, p->wg, p->dt,
                           m_f, p->x, p->dt, m_h, &zero, p->g, p->dt, m_f, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT));
    GEM__BLAS(p->dev, "cublasGemmEx (up)",
              gem__blas.gemm_ex(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, m_f, n, m_h, &one, p->wu, p->dt,
                           m_f, p->x, p->dt, m_h, &zero, p->u, p->dt, m_f, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT));
    gem_status_t st = gem__launch_silu_mul(p, (size_t)x * (size_t)p->f);
    if (st) return st;
    GEM__BLAS(p->dev, "cublasGemmEx (down)",
              gem__blas.gemm_ex(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, m_h, n, m_f, &one, p->wd, p->dt,
                           m_h, p->g, p->dt, m_f, &zero, p->y, p->dt, m_h, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT));
    return GEM_OK;
}

/* ---- public (to libgem) ------------------------------------------------------------------------ */

extern "C" gem_status_t gem__cuda_count(int *n)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    switch (e) {
    case cudaSuccess:
        break;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorSystemNotReady:
    case cudaErrorDevicesUnavailable:
    case cudaErrorCompatNotSupportedOnDevice:
        return gem__fail(GEM_ERR_NO_DEVICE,
                         "no CUDA device or driver was found: cudaGetDeviceCount: %s (%s)",
                         cudaGetErrorString(e), cudaGetErrorName(e));
    default:
        return gem__fail(GEM_ERR_DEVICE, "cudaGetDeviceCount failed: %s (%s)",
                         cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (count < 1)
        return gem__fail(GEM_ERR_NO_DEVICE, "no CUDA device or driver was found (0 devices)");
    *n = count;
    return GEM_OK;
}

extern "C" void gem__cuda_versions(int *driver, int *runtime)
{
    if (cudaDriverGetVersion(driver) != cudaSuccess) *driver = 0;
    if (cudaRuntimeGetVersion(runtime) != cudaSuccess) *runtime = 0;
}

extern "C" gem_status_t gem__cuda_info(int dev, char *name, size_t name_len, char *bus_id,
                                       size_t bus_len, int64_t *free_bytes)
{
    cudaDeviceProp prop;
    GEM__CU(dev, "cudaGetDeviceProperties", cudaGetDeviceProperties(&prop, dev));
    snprintf(name, name_len, "%s", prop.name);
    snprintf(bus_id, bus_len, "%04x:%02x:%02x.0", (unsigned)prop.pciDomainID,
             (unsigned)prop.pciBusID, (unsigned)prop.pciDeviceID);
    size_t free_b = 0, total_b = 0;
    GEM__CU(dev, "cudaSetDevice", cudaSetDevice(dev));
    GEM__CU(dev, "cudaMemGetInfo", cudaMemGetInfo(&free_b, &total_b));
    *free_bytes = (int64_t)free_b;
    return GEM_OK;
}

extern "C" void gem__cuda_probe_destroy(gem__cuda_probe *p)
{
    if (!p) return;
    /* Teardown errors are not reported: the profile is already measured or failed. */
    if (cudaSetDevice(p->dev) == cudaSuccess) {
        if (p->stream) cudaStreamSynchronize(p->stream);
        if (p->ev)
            for (int64_t i = 0; i < 2 * p->repeats; i++)
                if (p->ev[i]) cudaEventDestroy(p->ev[i]);
        if (p->blas) gem__blas.destroy(p->blas);
        void *bufs[] = {p->x, p->wg, p->wu, p->wd, p->g, p->u, p->y};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            if (bufs[i]) cudaFree(bufs[i]);
        if (p->stream) cudaStreamDestroy(p->stream);
    }
    free(p->ev);
    free(p->times);
    free(p);
}

static gem_status_t gem__probe_alloc(gem__cuda_probe *p, void **buf, size_t elems, const char *what)
{
    cudaError_t e = cudaMalloc(buf, elems * p->esize);
    if (e != cudaSuccess) {
        *buf = NULL;
        return gem__fail(GEM_ERR_DEVICE, "CUDA device %d: cudaMalloc of %zu bytes (%s) failed: %s (%s)",
                         p->dev, elems * p->esize, what, cudaGetErrorString(e), cudaGetErrorName(e));
    }
    return GEM_OK;
}

static gem_status_t gem__probe_setup(gem__cuda_probe *p)
{
    size_t h = (size_t)p->h, f = (size_t)p->f, x = (size_t)p->max_tokens;
    gem_status_t st;
    GEM__CU(p->dev, "cudaSetDevice", cudaSetDevice(p->dev));
    GEM__CU(p->dev, "cudaStreamCreate", cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking));
    GEM__BLAS(p->dev, "cublasCreate", gem__blas.create(&p->blas));
    GEM__BLAS(p->dev, "cublasSetStream", gem__blas.set_stream(p->blas, p->stream));
    if ((st = gem__probe_alloc(p, &p->x, x * h, "tokens")) ||
        (st = gem__probe_alloc(p, &p->wg, h * f, "gate weights")) ||
        (st = gem__probe_alloc(p, &p->wu, h * f, "up weights")) ||
        (st = gem__probe_alloc(p, &p->wd, f * h, "down weights")) ||
        (st = gem__probe_alloc(p, &p->g, x * f, "gate activations")) ||
        (st = gem__probe_alloc(p, &p->u, x * f, "up activations")) ||
        (st = gem__probe_alloc(p, &p->y, x * h, "output")))
        return st;
    /* Weights scaled by 1/sqrt(fan-in) keep the activations near 1: no inf or NaN in fp16. */
    float sh = 1.0f / sqrtf((float)h), sf = 1.0f / sqrtf((float)f);
    if ((st = gem__launch_init(p, p->x, x * h, 1, 1.0f)) ||
        (st = gem__launch_init(p, p->wg, h * f, 2, sh)) ||
        (st = gem__launch_init(p, p->wu, h * f, 3, sh)) ||
        (st = gem__launch_init(p, p->wd, f * h, 4, sf)))
        return st;
    for (int64_t i = 0; i < 2 * p->repeats; i++)
        GEM__CU(p->dev, "cudaEventCreate", cudaEventCreate(&p->ev[i]));
    GEM__CU(p->dev, "initialisation", cudaStreamSynchronize(p->stream));
    return GEM_OK;
}

extern "C" gem_status_t gem__cuda_probe_create(int dev, int64_t hidden, int64_t ffn,
                                               int64_t dtype, int64_t max_tokens,
                                               int64_t repeats, gem__cuda_probe **out)
{
    cudaDataType_t dt;
    size_t esize;
    switch (dtype) {
    case GEM_DTYPE_BF16: dt = CUDA_R_16BF; esize = 2; break;
    case GEM_DTYPE_FP16: dt = CUDA_R_16F; esize = 2; break;
    case GEM_DTYPE_FP32: dt = CUDA_R_32F; esize = 4; break;
    default:
        return gem__fail(GEM_ERR_NOT_SUPPORTED,
                         "the CUDA probe times bf16, fp16 and fp32 experts, not dtype %lld",
                         (long long)dtype);
    }
    if (repeats < 1 || repeats > INT32_MAX)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT, "CUDA probe: %lld repeats, at least 1",
                         (long long)repeats);
    if (hidden > INT32_MAX || ffn > INT32_MAX || max_tokens > INT32_MAX)
        return gem__fail(GEM_ERR_LIMIT, "expert shape beyond cuBLAS's int dimensions");
    gem_status_t st = gem__blas_ready();
    if (st) return st;
    gem__cuda_probe *p = (gem__cuda_probe *)calloc(1, sizeof *p);
    if (!p) return gem__fail(GEM_ERR_NO_MEMORY, "out of memory for the CUDA probe");
    p->dev = dev;
    p->h = hidden;
    p->f = ffn;
    p->max_tokens = max_tokens;
    p->repeats = repeats;
    p->dt = dt;
    p->esize = esize;
    p->ev = (cudaEvent_t *)calloc((size_t)(2 * repeats), sizeof *p->ev);
    p->times = (double *)calloc((size_t)repeats, sizeof *p->times);
    if (!p->ev || !p->times) {
        gem__cuda_probe_destroy(p);
        return gem__fail(GEM_ERR_NO_MEMORY, "out of memory for the CUDA probe");
    }
    st = gem__probe_setup(p);
    if (st) {
        gem__cuda_probe_destroy(p);
        return st;
    }
    *out = p;
    return GEM_OK;
}

static double gem__wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

extern "C" gem_status_t gem__cuda_probe_warmup(gem__cuda_probe *p, int64_t ms)
{
    GEM__CU(p->dev, "cudaSetDevice", cudaSetDevice(p->dev));
    double until = gem__wall() + (double)ms * 1e-3;
    do {
        for (int i = 0; i < 4; i++) {
            gem_status_t st = gem__ffn(p, p->max_tokens);
            if (st) return st;
        }
        GEM__CU(p->dev, "warm-up", cudaStreamSynchronize(p->stream));
    } while (gem__wall() < until);
    return GEM_OK;
}

static int gem__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs the FFN on `tokens` tokens `runs` times back to back between the events a and b, and
 * waits: *us receives the mean time of one run. */
static gem_status_t gem__probe_batch(gem__cuda_probe *p, int64_t tokens, int runs,
                                     cudaEvent_t a, cudaEvent_t b, double *us)
{
    gem_status_t st;
    GEM__CU(p->dev, "cudaEventRecord", cudaEventRecord(a, p->stream));
    for (int k = 0; k < runs; k++)
        if ((st = gem__ffn(p, tokens))) return st;
    GEM__CU(p->dev, "cudaEventRecord", cudaEventRecord(b, p->stream));
    GEM__CU(p->dev, "cudaEventSynchronize", cudaEventSynchronize(b));
    float ms = 0;
    GEM__CU(p->dev, "cudaEventElapsedTime", cudaEventElapsedTime(&ms, a, b));
    *us = (double)ms * 1e3 / runs;
    return GEM_OK;
}

extern "C" gem_status_t gem__cuda_probe_time(gem__cuda_probe *p, int64_t tokens,
                                             double *median_us, double *cv)
{
    if (tokens < 1 || tokens > p->max_tokens)
        return gem__fail(GEM_ERR_INTERNAL, "CUDA probe: %lld tokens outside [1, %lld]",
                         (long long)tokens, (long long)p->max_tokens);
    GEM__CU(p->dev, "cudaSetDevice", cudaSetDevice(p->dev));
    /* Untimed: cuBLAS picks (and loads) its kernels for this shape. Then one run, timed, sizes
     * the batch of each timed repeat. */
    gem_status_t st = gem__ffn(p, tokens);
    double one = 0;
    if (!st) st = gem__probe_batch(p, tokens, 1, p->ev[0], p->ev[1], &one);
    if (st) return st;
    int batch = 1;
    if (one > 0 && one < GEM__PROBE_MIN_BATCH_US) {
        double b = ceil(GEM__PROBE_MIN_BATCH_US / one);
        batch = b < GEM__PROBE_MAX_BATCH ? (int)b : GEM__PROBE_MAX_BATCH;
    }
    int64_t r = p->repeats;
    for (int64_t i = 0; i < r; i++) {
        GEM__CU(p->dev, "cudaEventRecord", cudaEventRecord(p->ev[2 * i], p->stream));
        for (int k = 0; k < batch; k++)
            if ((st = gem__ffn(p, tokens))) return st;
        GEM__CU(p->dev, "cudaEventRecord", cudaEventRecord(p->ev[2 * i + 1], p->stream));
    }
    GEM__CU(p->dev, "timed runs", cudaStreamSynchronize(p->stream));
    double sum = 0, var = 0;
    for (int64_t i = 0; i < r; i++) {
        float ms = 0;
        GEM__CU(p->dev, "cudaEventElapsedTime",
                cudaEventElapsedTime(&ms, p->ev[2 * i], p->ev[2 * i + 1]));
        p->times[i] = (double)ms * 1e3 / batch;
        sum += p->times[i];
    }
    double mean = sum / (double)r;
    for (int64_t i = 0; i < r; i++) var += (p->times[i] - mean) * (p->times[i] - mean);
    var /= (double)r;
    qsort(p->times, (size_t)r, sizeof *p->times, gem__cmp_double);
    double med = r % 2 ? p->times[r / 2] : 0.5 * (p->times[r / 2 - 1] + p->times[r / 2]);
    *median_us = med;
    *cv = mean > 0 && var > 0 ? sqrt(var) / mean : 0.0;
    return GEM_OK;
}
