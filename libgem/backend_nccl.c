/*
 * backend_nccl.c - all-to-all between the profile's local GPUs with NCCL
 * (gem_profile_measure_alltoall).
 *
 * One process, one communicator per device (ncclCommInitAll). An all-to-all of S bytes per
 * GPU sends S/n bytes to each of the n GPUs (itself included), as grouped ncclSend/ncclRecv,
 * the way nccl-tests' alltoall_perf does; message sizes double from 1 KiB up to
 * GEM_OPT_ALLTOALL_MAX_BYTES. Each GPU's time is the median, over GEM_OPT_PROFILE_REPEATS runs,
 * of CUDA events on its own stream. nccl-tests' figures follow: algbw = S / time and
 * busbw = algbw * (n-1) / n. A pairwise matrix (one sender, one receiver at a time) shows
 * uneven links.
 */
#include "backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef GEM_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>

/* Untimed runs before each size's timed ones, and a cap on timed runs (all-to-all at 64 MiB
 * takes milliseconds; thousands of repeats would not make it more accurate). */
#define GEM__A2A_WARMUP 5
#define GEM__A2A_MAX_REPEATS 50
#define GEM__A2A_MIN_BYTES 1024

typedef struct {
    int n;                 /* GPUs */
    int *dev;              /* [n] CUDA device of each profile GPU */
    ncclComm_t *comm;      /* [n] */
    cudaStream_t *stream;  /* [n] */
    cudaEvent_t *start, *stop; /* [n] */
    char **sendbuf, **recvbuf; /* [n] */
    size_t cap;            /* bytes of each buffer */
} gem__a2a;

#define GEM__CU(what, call)                                                                   \
    do {                                                                                      \
        cudaError_t e__ = (call);                                                             \
        if (e__ != cudaSuccess)                                                               \
            return gem__fail(GEM_ERR_DEVICE, "%s failed: %s (%s)", (what),                    \
                             cudaGetErrorString(e__), cudaGetErrorName(e__));                 \
    } while (0)
#define GEM__NC(what, call)                                                                   \
    do {                                                                                      \
        ncclResult_t r__ = (call);                                                            \
        if (r__ != ncclSuccess)                                                               \
            return gem__fail(GEM_ERR_DEVICE, "%s failed: %s", (what), ncclGetErrorString(r__)); \
    } while (0)

static void gem__a2a_free(gem__a2a *a)
{
    for (int g = 0; g < a->n; g++) {
        if (!a->dev || cudaSetDevice(a->dev[g]) != cudaSuccess) continue;
        if (a->stream && a->stream[g]) cudaStreamSynchronize(a->stream[g]);
        if (a->comm && a->comm[g]) ncclCommDestroy(a->comm[g]);
        if (a->start && a->start[g]) cudaEventDestroy(a->start[g]);
        if (a->stop && a->stop[g]) cudaEventDestroy(a->stop[g]);
        if (a->sendbuf && a->sendbuf[g]) cudaFree(a->sendbuf[g]);
        if (a->recvbuf && a->recvbuf[g]) cudaFree(a->recvbuf[g]);
        if (a->stream && a->stream[g]) cudaStreamDestroy(a->stream[g]);
    }
    free(a->dev), free(a->comm), free(a->stream), free(a->start), free(a->stop);
    free(a->sendbuf), free(a->recvbuf);
    memset(a, 0, sizeof *a);
}

/* Which CUDA device each profile GPU is: by PCI bus id when every GPU has one, else GPU g is
 * device g. */
static gem_status_t gem__a2a_devices(const gem_profile_t *p, int ndev, int *dev)
{
    int by_bus = 1;
    for (int32_t g = 0; g < p->num_gpus; g++)
        if (!p->gpus[g].pci_bus_id || !*p->gpus[g].pci_bus_id) by_bus = 0;
    for (int32_t g = 0; g < p->num_gpus; g++) {
        if (by_bus) {
            cudaError_t e = cudaDeviceGetByPCIBusId(&dev[g], p->gpus[g].pci_bus_id);
            if (e != cudaSuccess)
                return gem__fail(GEM_ERR_NO_DEVICE,
                                 "gpu %d: PCI bus id %s is not a CUDA device of this host: %s",
                                 (int)g, p->gpus[g].pci_bus_id, cudaGetErrorString(e));
        } else if (g < ndev) {
            dev[g] = g;
        } else {
            return gem__fail(GEM_ERR_NO_DEVICE,
                             "the profile has %d GPUs but this host has %d CUDA devices",
                             (int)p->num_gpus, ndev);
        }
        for (int32_t h = 0; h < g; h++)
            if (dev[h] == dev[g])
                return gem__fail(GEM_ERR_INVALID_INPUT, "gpus %d and %d are the same device %d",
                                 (int)h, (int)g, dev[g]);
    }
    return GEM_OK;
}

static gem_status_t gem__a2a_setup(gem__a2a *a, const gem_profile_t *p, int ndev, size_t cap)
{
    int n = a->n = p->num_gpus;
    a->cap = cap;
    a->dev = gem__array((size_t)n, sizeof *a->dev);
    a->comm = gem__array((size_t)n, sizeof *a->comm);
    a->stream = gem__array((size_t)n, sizeof *a->stream);
    a->start = gem__array((size_t)n, sizeof *a->start);
    a->stop = gem__array((size_t)n, sizeof *a->stop);
    a->sendbuf = gem__array((size_t)n, sizeof *a->sendbuf);
    a->recvbuf = gem__array((size_t)n, sizeof *a->recvbuf);
    if (!a->dev || !a->comm || !a->stream || !a->start || !a->stop || !a->sendbuf || !a->recvbuf)
        return GEM_ERR_NO_MEMORY;
    gem_status_t st = gem__a2a_devices(p, ndev, a->dev);
    if (st) return st;
    ncclResult_t r = ncclCommInitAll(a->comm, n, a->dev);
    if (r != ncclSuccess) {
        /* no communicator to destroy: what a failed init left there is not one */
        memset(a->comm, 0, (size_t)n * sizeof *a->comm);
        return gem__fail(GEM_ERR_DEVICE, "ncclCommInitAll over %d GPUs failed: %s", n,
                         ncclGetErrorString(r));
    }
    for (int g = 0; g < n; g++) {
        GEM__CU("cudaSetDevice", cudaSetDevice(a->dev[g]));
        GEM__CU("cudaStreamCreate", cudaStreamCreateWithFlags(&a->stream[g], cudaStreamNonBlocking));
        GEM__CU("cudaEventCreate", cudaEventCreate(&a->start[g]));
        GEM__CU("cudaEventCreate", cudaEventCreate(&a->stop[g]));
        GEM__CU("cudaMalloc (send buffer)", cudaMalloc((void **)&a->sendbuf[g], cap));
        GEM__CU("cudaMalloc (receive buffer)", cudaMalloc((void **)&a->recvbuf[g], cap));
        GEM__CU("cudaMemset", cudaMemset(a->sendbuf[g], 1, cap));
        /* cudaMemset runs on the legacy default stream, which the non-blocking streams that
         * NCCL uses do not wait for: finish it before the first transfer reads the buffer. */
        GEM__CU("cudaDeviceSynchronize", cudaDeviceSynchronize());
    }
    return GEM_OK;
}

/* One all-to-all of `bytes` per GPU (chunk = bytes / n to every GPU), or with src >= 0 one
 * transfer of `bytes` from GPU src to GPU dst. Events bracket it on every stream involved. */
static gem_status_t gem__a2a_run(gem__a2a *a, size_t bytes, int src, int dst)
{
    for (int g = 0; g < a->n; g++) {
        if (src >= 0 && g != src && g != dst) continue;
        GEM__CU("cudaSetDevice", cudaSetDevice(a->dev[g]));
        GEM__CU("cudaEventRecord", cudaEventRecord(a->start[g], a->stream[g]));
    }
    /* The group is always ended, even when a call inside it failed: a group left open would
     * swallow this thread's later NCCL calls (the teardown's too). */
    GEM__NC("ncclGroupStart", ncclGroupStart());
    ncclResult_t r = ncclSuccess;
    const char *what = NULL;
    if (src >= 0) {
        r = ncclSend(a->sendbuf[src], bytes, ncclInt8, dst, a->comm[src], a->stream[src]);
        what = "ncclSend";
        if (r == ncclSuccess) {
            r = ncclRecv(a->recvbuf[dst], bytes, ncclInt8, src, a->comm[dst], a->stream[dst]);
            what = "ncclRecv";
        }
    } else {
        size_t chunk = bytes / (size_t)a->n;
        for (int g = 0; g < a->n && r == ncclSuccess; g++)
            for (int peer = 0; peer < a->n && r == ncclSuccess; peer++) {
                r = ncclSend(a->sendbuf[g] + (size_t)peer * chunk, chunk, ncclInt8, peer,
                             a->comm[g], a->stream[g]);
                what = "ncclSend";
                if (r != ncclSuccess) break;
                r = ncclRecv(a->recvbuf[g] + (size_t)peer * chunk, chunk, ncclInt8, peer,
                             a->comm[g], a->stream[g]);
                what = "ncclRecv";
            }
    }
    ncclResult_t end = ncclGroupEnd();
    if (r != ncclSuccess)
        return gem__fail(GEM_ERR_DEVICE, "%s failed: %s", what, ncclGetErrorString(r));
    if (end != ncclSuccess)
        return gem__fail(GEM_ERR_DEVICE, "ncclGroupEnd failed: %s", ncclGetErrorString(end));
    for (int g = 0; g < a->n; g++) {
        if (src >= 0 && g != src && g != dst) continue;
        GEM__CU("cudaSetDevice", cudaSetDevice(a->dev[g]));
        GEM__CU("cudaEventRecord", cudaEventRecord(a->stop[g], a->stream[g]));
    }
    for (int g = 0; g < a->n; g++) {
        if (src >= 0 && g != src && g != dst) continue;
        GEM__CU("cudaSetDevice", cudaSetDevice(a->dev[g]));
        GEM__CU("all-to-all", cudaStreamSynchronize(a->stream[g]));
    }
    return GEM_OK;
}

static int gem__cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double gem__median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, gem__cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median time per GPU (us) of `repeats` runs: out[g]; with src >= 0 only out[src] and
 * out[dst] are set. */
static gem_status_t gem__a2a_time(gem__a2a *a, size_t bytes, int src, int dst, int64_t repeats,
                                  double *scratch, double *out)
{
    gem_status_t st;
    for (int i = 0; i < GEM__A2A_WARMUP; i++)
        if ((st = gem__a2a_run(a, bytes, src, dst))) return st;
    for (int g = 0; g < a->n; g++) {
        if (src >= 0 && g != src && g != dst) continue;
        out[g] = 0;
    }
    for (int64_t r = 0; r < repeats; r++) {
        if ((st = gem__a2a_run(a, bytes, src, dst))) return st;
        for (int g = 0; g < a->n; g++) {
            if (src >= 0 && g != src && g != dst) continue;
            float ms = 0;
            GEM__CU("cudaEventElapsedTime", cudaEventElapsedTime(&ms, a->start[g], a->stop[g]));
            scratch[(size_t)g * (size_t)repeats + (size_t)r] = (double)ms * 1e3;
        }
    }
    for (int g = 0; g < a->n; g++) {
        if (src >= 0 && g != src && g != dst) continue;
        out[g] = gem__median(scratch + (size_t)g * (size_t)repeats, (size_t)repeats);
    }
    return GEM_OK;
}

/* Message sizes: powers of two from 1 KiB (or n bytes) up to max, and max itself. */
static size_t gem__a2a_sizes(int n, uint64_t max, double *sizes)
{
    size_t k = 0;
    uint64_t s = GEM__A2A_MIN_BYTES;
    if (s > max) s = max;
    for (; s < max; s *= 2)
        if (s >= (uint64_t)n) sizes[k++] = (double)s;
    sizes[k++] = (double)max;
    return k;
}

gem_status_t gem__nccl_alltoall(gem_profile_t *p, const gem_options_t *opts, double **pair_gbs)
{
    int ndev = 0;
    gem_status_t st = gem__cuda_device_count(&ndev);
    if (st) return st;
    int n = p->num_gpus;
    uint64_t max = (uint64_t)gem__opt_int(opts, GEM_OPT_ALLTOALL_MAX_BYTES);
    if (max < (uint64_t)n) max = (uint64_t)n; /* at least one byte to each peer */
    int64_t repeats = gem__opt_int(opts, GEM_OPT_PROFILE_REPEATS);
    if (repeats > GEM__A2A_MAX_REPEATS) repeats = GEM__A2A_MAX_REPEATS;

    double sizes[80];
    size_t k = gem__a2a_sizes(n, max, sizes);
    double *times = gem__array((size_t)n * k, sizeof *times);
    double *scratch = gem__array((size_t)n * (size_t)repeats, sizeof *scratch);
    double *col = gem__array((size_t)n, sizeof *col);
    double *bytes = gem__array(k, sizeof *bytes);
    double *pair = pair_gbs ? gem__array((size_t)n * (size_t)n, sizeof *pair) : NULL;
    gem__a2a a = {0};
    if (!times || !scratch || !col || !bytes || (pair_gbs && !pair)) {
        st = GEM_ERR_NO_MEMORY;
        goto done;
    }
    if ((st = gem__a2a_setup(&a, p, ndev, (size_t)max))) goto done;
    for (size_t i = 0; i < k && !st; i++) {
        st = gem__a2a_time(&a, (size_t)sizes[i], -1, -1, repeats, scratch, col);
        for (int g = 0; g < n && !st; g++) times[(size_t)g * k + i] = col[g];
    }
    for (int s = 0; pair && s < n && !st; s++)
        for (int d = 0; d < n && !st; d++) {
            if (s == d) continue;
            st = gem__a2a_time(&a, (size_t)max, s, d, repeats, scratch, col);
            /* the receiver's stream finishes last: its time is the transfer's */
            if (!st) pair[(size_t)s * (size_t)n + (size_t)d] = (double)max / (col[d] * 1e3);
        }
    if (st) goto done;
    memcpy(bytes, sizes, k * sizeof *bytes);
    free(p->a2a_bytes);
    free(p->a2a_time);
    p->a2a_bytes = bytes;
    p->a2a_time = times;
    p->a2a_n = k;
    bytes = times = NULL;
    if (pair_gbs) *pair_gbs = pair, pair = NULL;
done:
    gem__a2a_free(&a);
    free(times), free(scratch), free(col), free(bytes), free(pair);
    return st;
}

#else /* !GEM_HAVE_NCCL */

gem_status_t gem__nccl_alltoall(gem_profile_t *p, const gem_options_t *opts, double **pair_gbs)
{
    (void)p, (void)opts, (void)pair_gbs;
    return gem__fail(GEM_ERR_NOT_SUPPORTED,
                     "libgem was built without NCCL (nccl.h and libnccl not found under "
                     "CUDA_HOME at build time)");
}

#endif
