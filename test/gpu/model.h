/*
 * model.h - a modelled GPU for the sampler's tests (test/test_backends.c) and the GPU check's
 * dry run (test/gpu/check_gpu.c): the expert curve an H200 might time and the run-to-run noise
 * on it, so both exercise the sampler on the same curve. Test code only.
 */
#ifndef GEM_TEST_GPU_MODEL_H
#define GEM_TEST_GPU_MODEL_H

#include <math.h>
#include <stdint.h>

/* Mixtral-8x7B's expert in bf16 on an H200-like GPU: its 352 MB of weights stream at about
 * 4.3 TB/s (84 us with the launches) until about 155 tokens; past that its 352 MFLOP per token
 * run at about 650 TFLOP/s (0.542 us a token), in waves of tiles over 132 SMs whose last,
 * partial wave costs a little more than its share: a 1% saw-tooth step every 448 tokens. */
static inline double gpu_model_h200_us(int64_t tokens)
{
    double x = (double)tokens, w = x / 448.0;
    return fmax(84.0, 0.542 * x) * (1.0 + 0.01 * ((ceil(w) - w) - 0.5));
}

/* splitmix64: a small, seedable generator, so that every run draws the same noise. */
static inline uint64_t gpu_model_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A standard normal draw (Box-Muller). */
static inline double gpu_model_gauss(uint64_t *s)
{
    double u = ((double)(gpu_model_splitmix(s) >> 11) + 0.5) * 0x1.0p-53;
    double v = (double)(gpu_model_splitmix(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

#endif
