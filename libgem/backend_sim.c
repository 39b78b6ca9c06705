/*
 * backend_sim.c - emulated GPUs (GEM_BACKEND_SIM) for demos, tests and machines without GPUs.
 *
 * One expert's FFN (gate, up and down projections) on x tokens reads its weights once,
 * 3*h*f*b bytes, and does 6*x_pad*h*f FLOPs, where x_pad is x rounded up to the GEMM tile (the
 * kernel computes whole tiles). Its time is the larger of the two at the GPU's peak rates plus
 * a small launch cost: flat while memory-bound, then growing with the token count - the shape
 * that GEM's classification of experts rests on. A slower GPU multiplies every time, and its
 * fixed cost, by its slowdown.
 *
 * The fleet of slowdowns is a function of the seed and the fleet size only, and each GPU's
 * noise a function of the seed and its index only, so any slice of a fleet can be rebuilt
 * exactly (the gem tool's MPI ranks rely on this).
 */
#include "backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Launch cost of the expert's four kernels (two GEMMs fused or not, the activation, the down
 * GEMM), microseconds. */
#define GEM__SIM_LAUNCH_US 1.0

/* L40 defaults of GEM_OPT_SIM_BANDWIDTH_GBS and GEM_OPT_SIM_TFLOPS, for naming the GPUs. */
#define GEM__L40_GBS 864.0
#define GEM__L40_TFLOPS 181.0

/* Streams of the seeded generator, so that the fleet and each GPU's noise never overlap. */
#define GEM__SIM_FLEET_STREAM 0x5eed0f1ee7ULL
#define GEM__SIM_NOISE_STREAM 0x9e3779b97f4a7c15ULL

double gem__sim_latency(const gem_options_t *opts, int64_t tokens)
{
    double h = (double)gem__opt_int(opts, GEM_OPT_MODEL_HIDDEN);
    double f = (double)gem__opt_int(opts, GEM_OPT_MODEL_FFN);
    double b = gem__dtype_bytes(gem__opt_int(opts, GEM_OPT_MODEL_DTYPE));
    int64_t tile = gem__opt_int(opts, GEM_OPT_SIM_TILE);
    double bw = gem__opt_double(opts, GEM_OPT_SIM_BANDWIDTH_GBS) * 1e9; /* bytes/s */
    double rate = gem__opt_double(opts, GEM_OPT_SIM_TFLOPS) * 1e12;     /* FLOP/s */
    double x_pad = (double)((tokens + tile - 1) / tile) * (double)tile;
    double mem_s = 3.0 * h * f * b / bw;
    double cmp_s = 6.0 * x_pad * h * f / rate;
    return (mem_s > cmp_s ? mem_s : cmp_s) * 1e6 + GEM__SIM_LAUNCH_US;
}

gem_status_t gem__sim_slowdowns(const gem_options_t *opts, double **sd, int32_t *fleet)
{
    size_t n_explicit = opts ? opts->arr_n[GEM_OPT_SIM_SLOWDOWNS] : 0;
    if (n_explicit) {
        double *v = gem__array(n_explicit, sizeof *v);
        if (!v) return GEM_ERR_NO_MEMORY;
        memcpy(v, opts->darr[GEM_OPT_SIM_SLOWDOWNS], n_explicit * sizeof *v);
        *sd = v;
        *fleet = (int32_t)n_explicit;
        return GEM_OK;
    }
    int64_t G = gem__opt_int(opts, GEM_OPT_SIM_GPUS);
    double spread = gem__opt_double(opts, GEM_OPT_SIM_SPREAD);
    double *v = gem__array((size_t)G, sizeof *v);
    if (!v) return GEM_ERR_NO_MEMORY;
    gem__rng r;
    gem__rng_seed(&r, (uint64_t)gem__opt_int(opts, GEM_OPT_SEED) ^ GEM__SIM_FLEET_STREAM);
    /* The fastest and the slowest are pinned so that the spread holds exactly; the others
     * fall uniformly in between, and a shuffle puts the extremes anywhere. */
    v[0] = 1.0;
    if (G > 1) v[1] = 1.0 + spread;
    for (int64_t g = 2; g < G; g++) v[g] = 1.0 + spread * gem__rng_uniform(&r);
    for (int64_t g = G - 1; g > 0; g--) {
        uint64_t j = gem__rng_below(&r, (uint64_t)g + 1);
        double t = v[g];
        v[g] = v[j];
        v[j] = t;
    }
    *sd = v;
    *fleet = (int32_t)G;
    return GEM_OK;
}

/* GPU g's curve: the unslowed curve times its slowdown, with seeded relative noise uniform in
 * [-noise, +noise] per sample (noise <= 0.5 keeps every time > 0). */
static gem_status_t gem__sim_curve(const gem_options_t *opts, int32_t g, double slowdown,
                                   const double *base, size_t k, int64_t tile, double *lat,
                                   int64_t *tok, gem_profile_t *p)
{
    double noise = gem__opt_double(opts, GEM_OPT_SIM_NOISE);
    gem__rng r;
    gem__rng_seed(&r, (uint64_t)gem__opt_int(opts, GEM_OPT_SEED) +
                          GEM__SIM_NOISE_STREAM * ((uint64_t)g + 1));
    for (size_t i = 0; i < k; i++) {
        tok[i] = (int64_t)(i + 1) * tile;
        lat[i] = base[i] * slowdown;
        if (noise > 0) lat[i] *= 1.0 + noise * (2.0 * gem__rng_uniform(&r) - 1.0);
    }
    return gem_profile_set_curve(p, g, k, tok, lat, NULL);
}

static gem_status_t gem__sim_fill(gem_profile_t *p, const gem_options_t *opts, const double *sd)
{
    int64_t tile = gem__opt_int(opts, GEM_OPT_SIM_TILE);
    size_t k;
    gem_status_t st = gem__tile_grid(tile, gem__opt_int(opts, GEM_OPT_PROFILE_MAX_TOKENS), &k);
    if (st) return st;
    double *base = gem__array(k, sizeof *base);
    double *lat = gem__array(k, sizeof *lat);
    int64_t *tok = gem__array(k, sizeof *tok);
    if (!base || !lat || !tok) {
        st = GEM_ERR_NO_MEMORY;
        goto done;
    }
    for (size_t i = 0; i < k; i++) base[i] = gem__sim_latency(opts, (int64_t)(i + 1) * tile);

    char host[256];
    gem__host_name(opts, host, sizeof host);
    int l40 = gem__opt_double(opts, GEM_OPT_SIM_BANDWIDTH_GBS) == GEM__L40_GBS &&
              gem__opt_double(opts, GEM_OPT_SIM_TFLOPS) == GEM__L40_TFLOPS;
    double overhead = gem__opt_double(opts, GEM_OPT_SIM_OVERHEAD_US);
    double mem = gem__opt_double(opts, GEM_OPT_SIM_MEMORY_GB) * 1e9;
    gem_progress_fn progress = opts ? opts->progress : NULL;
    for (int32_t g = 0; g < p->num_gpus && !st; g++) {
        char name[64];
        snprintf(name, sizeof name, "%s #%d", l40 ? "sim-L40" : "sim-GPU", (int)g);
        if ((st = gem__sim_curve(opts, g, sd[g], base, k, tile, lat, tok, p)) ||
            (st = gem_profile_set_overhead(p, g, overhead * sd[g])) ||
            (st = gem_profile_set_gpu_string(p, g, "name", name)) ||
            (st = gem_profile_set_gpu_string(p, g, "host", host)))
            break;
        p->gpus[g].memory_bytes = (int64_t)llround(mem);
        if (progress && progress(opts->progress_user, "simulate", (double)g + 1,
                                 (double)p->num_gpus))
            st = gem__fail(GEM_ERR_CANCELLED, "simulation cancelled by the progress callback");
    }
done:
    free(base);
    free(lat);
    free(tok);
    return st;
}

gem_status_t gem__profile_sim(const gem_options_t *opts, gem_profile_t **out)
{
    /* Validate the grid before allocating a fleet. */
    size_t k;
    gem_status_t st = gem__tile_grid(gem__opt_int(opts, GEM_OPT_SIM_TILE),
                                     gem__opt_int(opts, GEM_OPT_PROFILE_MAX_TOKENS), &k);
    if (st) return st;
    double *sd = NULL;
    int32_t G = 0;
    if ((st = gem__sim_slowdowns(opts, &sd, &G))) return st;
    gem_profile_t *p = NULL;
    st = gem_profile_create(&p, G);
    if (!st) st = gem__profile_describe(p, opts);
    if (!st) st = gem__sim_fill(p, opts, sd);
    free(sd);
    if (st) {
        gem_profile_destroy(p);
        return st;
    }
    *out = p;
    return GEM_OK;
}
