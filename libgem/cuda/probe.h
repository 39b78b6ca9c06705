/*
 * probe.h - libgem's CUDA probe (probe.cu): times one MoE expert's FFN on one device with
 * cuBLAS GEMMs and libgem's own kernels. Private; built only when CUDA is found
 * (GEM_HAVE_CUDA). Every function returns a gem_status_t and sets the thread's message
 * through gem__fail, naming the device and the CUDA or cuBLAS error.
 */
#ifndef GEM_CUDA_PROBE_H
#define GEM_CUDA_PROBE_H

#include "gem.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gem__cuda_probe gem__cuda_probe;

/** Loads cuBLAS (dlopen, once per process); GEM_ERR_NOT_SUPPORTED names what is missing.
 *  Needs no GPU, so tests call it to check the loading itself. */
gem_status_t gem__cuda_blas_load(void);
/** Visible CUDA devices. GEM_ERR_NO_DEVICE when there is none or no usable driver. */
gem_status_t gem__cuda_count(int *n);
/** CUDA driver and runtime versions (1000 * major + 10 * minor; 0 when unknown). */
void gem__cuda_versions(int *driver, int *runtime);
/** Name, PCI bus id ("dddd:bb:dd.f") and free memory of a device. */
gem_status_t gem__cuda_info(int device, char *name, size_t name_len, char *bus_id,
                            size_t bus_len, int64_t *free_bytes);
/** Allocates weights (gate, up, down) and activations for up to max_tokens tokens of the
 *  expert shape (hidden, ffn, dtype: a gem_dtype_t, bf16/fp16/fp32) on device, fills them
 *  with random non-zero values, and prepares `repeats` timed runs per point. */
gem_status_t gem__cuda_probe_create(int device, int64_t hidden, int64_t ffn, int64_t dtype,
                                    int64_t max_tokens, int64_t repeats,
                                    gem__cuda_probe **out);
/** Runs the FFN at max_tokens until ms milliseconds have passed (clocks and caches settle). */
gem_status_t gem__cuda_probe_warmup(gem__cuda_probe *p, int64_t ms);
/** One untimed run, one timed run that sizes the batches, then `repeats` timed back-to-back
 *  repeats of the FFN on `tokens` tokens, each a batch of runs lasting at least 0.5 ms (see
 *  probe.cu): median microseconds per run and the repeats' coefficient of variation
 *  (stddev / mean). */
gem_status_t gem__cuda_probe_time(gem__cuda_probe *p, int64_t tokens, double *median_us,
                                  double *cv);
void gem__cuda_probe_destroy(gem__cuda_probe *p);

#ifdef __cplusplus
}
#endif

#endif
