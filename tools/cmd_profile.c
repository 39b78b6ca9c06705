/*
 * cmd_profile.c - gem profile: measure (cuda) or emulate (sim) the GPUs' expert latency
 * curves and write a profile (SPEC 3).
 *
 * Under mpirun (built with MPI: GEM_HAVE_MPI), every rank profiles its own GPUs and rank 0
 * writes one merged profile. A sim rank r of R emulates GPUs r*G .. r*G+G-1 of one seeded
 * fleet of R*G GPUs, so `mpirun -np R gem profile --gpus G` writes the same curves as one
 * process with --gpus R*G (with each rank's host name). MPI is initialised only when the
 * launcher's environment says there are several ranks, so a plain run needs no MPI at all.
 */
#include "cli.h"
#include "commands.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef GEM_HAVE_MPI
#include <mpi.h>
#endif

static const char profile_help[] =
    "Usage: gem profile [options] [-o PROFILE.json]\n"
    "\n"
    "Writes a GPU profile (SPEC 3): for every GPU, the microseconds one MoE expert's FFN takes\n"
    "on 64, 128, ... tokens (the GEMM tile boundaries) and a fixed cost per layer.\n"
    "\n"
    "  --backend sim   emulated GPUs (the default; no hardware needed): each curve follows\n"
    "                  the expert's weight reads and FLOPs at an L40's bandwidth and matrix\n"
    "                  rate, slowed down per GPU so that the fleet spreads by --spread.\n"
    "  --backend cuda  times the expert (cuBLAS GEMMs and libgem's kernels) on every visible\n"
    "                  CUDA device at once: coarse tile boundaries first, then only where the\n"
    "                  curve bends (--dense times them all). Choose devices with\n"
    "                  CUDA_VISIBLE_DEVICES.\n"
    "\n"
    "With no options: an emulated node of 4 L40-like GPUs serving Mixtral-8x7B, on stdout.\n"
    "\n"
    "Model:\n"
    "  --model NAME         model name; a known one sets --hidden and --ffn: Mixtral-8x7B,\n"
    "                       Mixtral-8x22B, DeepSeek-V2-Lite, DeepSeek-V3, Qwen1.5-MoE-A2.7B,\n"
    "                       Qwen2-57B-A14B, Qwen3-30B-A3B, Qwen3-235B-A22B, OLMoE-1B-7B,\n"
    "                       Phi-3.5-MoE, DBRX [Mixtral-8x7B]\n"
    "  --hidden N           hidden size [4096]\n"
    "  --ffn N              expert FFN size [14336]\n"
    "  --dtype T            bf16, fp16, fp8 (sim only) or fp32 [bf16]\n"
    "Sampling:\n"
    "  --tile N             GEMM tile in tokens: curves are sampled at its multiples [64]\n"
    "  --max-tokens N       largest token count on the curves [4096]\n"
    "Sim:\n"
    "  --gpus N             emulated GPUs (per rank under mpirun) [4]\n"
    "  --spread X           the slowest GPU is 1+X times slower than the fastest [0.077]\n"
    "  --slowdowns A,B,...  explicit slowdown of each GPU (sets the GPU count)\n"
    "  --seed N             random seed of the fleet and its noise [1]\n"
    "  --noise X            relative noise of each sample, 0 to 0.5 [0]\n"
    "  --bandwidth-gbs X    peak memory bandwidth [864]\n"
    "  --tflops X           peak matrix rate [181]\n"
    "  --overhead-us X      fixed cost per GPU and layer, before slowdown [20]\n"
    "  --memory-gb X        free memory per GPU [48]\n"
    "CUDA:\n"
    "  --warmup-ms N        warm-up before timing [2000]\n"
    "  --repeats N          timed repeats per point, each a batch of runs lasting at\n"
    "                       least 0.5 ms; the median is kept [20]\n"
    "  --dense              time every tile boundary instead of refining (refining times\n"
    "                       at most the larger of a quarter of them and 16)\n"
    "  --alltoall           also measure all-to-all between the GPUs with NCCL\n"
    "Output:\n"
    "  --topology           add each GPU's NUMA node and CPUs close to it (hwloc)\n"
    "  --host NAME          host name written into the profile [this machine's]\n"
    "  --interpolation I    step or linear, for readers of the profile [step]\n"
    "  --cost-model M       per_expert or aggregate [per_expert]\n"
    "  -o, --output F       profile file to write ('-' = standard output) [-]\n"
    "  -h, --help           show this help\n"
    "\n"
    "Several hosts: mpirun -np N gem profile --backend cuda -o profile.json (one rank per\n"
    "host) profiles every rank's GPUs and rank 0 writes them as one profile.\n"
    "\n"
    "Examples:\n"
    "  gem profile --gpus 8 --spread 0.2 -o profile.json\n"
    "  gem profile --backend cuda --model Mixtral-8x7B -o profile.json\n";

/* Expert shapes of well-known MoE models (hidden size, routed expert FFN size). */
static const struct {
    const char *name;
    int64_t hidden, ffn;
} profile_models[] = {
    {"Mixtral-8x7B", 4096, 14336},     {"Mixtral-8x22B", 6144, 16384},
    {"DeepSeek-V2-Lite", 2048, 1408},  {"DeepSeek-V3", 7168, 2048},
    {"Qwen1.5-MoE-A2.7B", 2048, 1408}, {"Qwen2-57B-A14B", 3584, 2560},
    {"Qwen3-30B-A3B", 2048, 768},      {"Qwen3-235B-A22B", 4096, 1536},
    {"OLMoE-1B-7B", 2048, 1024},       {"Phi-3.5-MoE", 4096, 6400},
    {"DBRX", 6144, 10752},
};

typedef struct {
    const char *backend, *slowdowns, *dtype, *model, *host, *interp, *cost_model, *output;
    int64_t gpus, tile, max_tokens, hidden, ffn, seed, warmup_ms, repeats;
    double spread, noise, bandwidth, tflops, overhead, memory;
    int dense, alltoall, topology;
    /* which options the command line gave */
    int g_gpus, g_spread, g_slowdowns, g_seed, g_noise, g_bandwidth, g_tflops, g_overhead,
        g_memory, g_warmup, g_repeats, g_hidden, g_ffn;
} profile_args;

/* ---- options -------------------------------------------------------------------------------- */

static int profile_parse_slowdowns(const char *text, double **out, size_t *n)
{
    size_t cap = 1;
    for (const char *c = text; *c; c++) cap += *c == ',';
    double *v = malloc(cap * sizeof *v);
    if (!v) return cli_error("out of memory");
    size_t k = 0;
    const char *s = text;
    for (;;) {
        char *end;
        errno = 0;
        double x = strtod(s, &end);
        if (end == s || !isfinite(x) || (*end != ',' && *end != '\0')) {
            free(v);
            return cli_usage_error("--slowdowns: '%s' is not a comma-separated list of numbers",
                                   text);
        }
        v[k++] = x;
        if (*end == '\0') break;
        s = end + 1;
    }
    *out = v;
    *n = k;
    return 0;
}

static int profile_dtype(const char *name, int64_t *dtype)
{
    static const char *names[] = {"bf16", "fp16", "fp8", "fp32"};
    static const int64_t values[] = {GEM_DTYPE_BF16, GEM_DTYPE_FP16, GEM_DTYPE_FP8, GEM_DTYPE_FP32};
    for (size_t i = 0; i < 4; i++)
        if (strcasecmp(name, names[i]) == 0) {
            *dtype = values[i];
            return 0;
        }
    return cli_usage_error("--dtype: '%s' is not bf16, fp16, fp8 or fp32", name);
}

/* Options that belong to one backend only are refused with the other, rather than ignored. */
static int profile_check_backend(const profile_args *a, int sim)
{
    const struct {
        int given;
        const char *flag;
    } sim_only[] = {{a->g_gpus, "gpus"}, {a->g_spread, "spread"}, {a->g_slowdowns, "slowdowns"},
                    {a->g_seed, "seed"}, {a->g_noise, "noise"}, {a->g_bandwidth, "bandwidth-gbs"},
                    {a->g_tflops, "tflops"}, {a->g_overhead, "overhead-us"},
                    {a->g_memory, "memory-gb"}},
      cuda_only[] = {{a->g_warmup, "warmup-ms"}, {a->g_repeats, "repeats"},
                     {a->dense, "dense"}, {a->alltoall, "alltoall"}};
    for (size_t i = 0; i < sizeof sim_only / sizeof sim_only[0]; i++)
        if (!sim && sim_only[i].given)
            return cli_usage_error("--%s applies to --backend sim (for cuda, choose devices with "
                                   "CUDA_VISIBLE_DEVICES)",
                                   sim_only[i].flag);
    for (size_t i = 0; i < sizeof cuda_only / sizeof cuda_only[0]; i++)
        if (sim && cuda_only[i].given)
            return cli_usage_error("--%s applies to --backend cuda", cuda_only[i].flag);
    return 0;
}

/* Options handle from the command line. ranks > 1 (sim under MPI): the fleet is ranks times
 * the per-rank GPUs. */
static int profile_options(const profile_args *a, int sim, int ranks, gem_options_t **out)
{
    gem_options_t *o = NULL;
    int rc = cli_options(&o);
    if (rc) return rc;
    int64_t dtype = GEM_DTYPE_BF16, hidden = a->hidden, ffn = a->ffn;
    const char *model = a->model;
    if (a->model) {
        size_t i, n = sizeof profile_models / sizeof profile_models[0];
        for (i = 0; i < n; i++)
            if (strcasecmp(a->model, profile_models[i].name) == 0) break;
        if (i < n) {
            model = profile_models[i].name; /* as the model's authors spell it */
            if (!a->g_hidden) hidden = profile_models[i].hidden;
            if (!a->g_ffn) ffn = profile_models[i].ffn;
        } else if (!a->g_hidden || !a->g_ffn) {
            rc = cli_usage_error("--model: '%s' is not a model gem knows: give its --hidden and "
                                 "--ffn", a->model);
            goto fail;
        }
    }
    if ((rc = profile_dtype(a->dtype, &dtype))) goto fail;
    if ((rc = cli_set_int(o, GEM_OPT_MODEL_HIDDEN, hidden, "hidden")) ||
        (rc = cli_set_int(o, GEM_OPT_MODEL_FFN, ffn, "ffn")) ||
        (rc = cli_set_int(o, GEM_OPT_MODEL_DTYPE, dtype, "dtype")) ||
        (model && (rc = cli_set_string(o, GEM_OPT_MODEL_NAME, model, "model"))) ||
        (a->host && (rc = cli_set_string(o, GEM_OPT_HOST_NAME, a->host, "host"))) ||
        (rc = cli_set_int(o, GEM_OPT_SIM_TILE, a->tile, "tile")) ||
        (rc = cli_set_int(o, GEM_OPT_PROFILE_MAX_TOKENS, a->max_tokens, "max-tokens")))
        goto fail;
    if (a->interp) {
        int lin = strcmp(a->interp, "linear") == 0;
        if (!lin && strcmp(a->interp, "step") != 0) {
            rc = cli_usage_error("--interpolation: '%s' is not step or linear", a->interp);
            goto fail;
        }
        if ((rc = cli_set_int(o, GEM_OPT_INTERPOLATION, lin ? GEM_INTERP_LINEAR : GEM_INTERP_STEP,
                              "interpolation")))
            goto fail;
    }
    if (a->cost_model) {
        int agg = strcmp(a->cost_model, "aggregate") == 0;
        if (!agg && strcmp(a->cost_model, "per_expert") != 0) {
            rc = cli_usage_error("--cost-model: '%s' is not per_expert or aggregate",
                                 a->cost_model);
            goto fail;
        }
        if ((rc = cli_set_int(o, GEM_OPT_COST_MODEL, agg ? GEM_COST_AGGREGATE : GEM_COST_PER_EXPERT,
                              "cost-model")))
            goto fail;
    }
    if (sim) {
        /* A sim rank emulates the whole seeded fleet, then keeps its slice of it. */
        if ((rc = cli_set_int(o, GEM_OPT_SIM_GPUS, a->gpus * ranks, "gpus")) ||
            (rc = cli_set_double(o, GEM_OPT_SIM_SPREAD, a->spread, "spread")) ||
            (rc = cli_set_int(o, GEM_OPT_SEED, a->seed, "seed")) ||
            (rc = cli_set_double(o, GEM_OPT_SIM_NOISE, a->noise, "noise")) ||
            (rc = cli_set_double(o, GEM_OPT_SIM_BANDWIDTH_GBS, a->bandwidth, "bandwidth-gbs")) ||
            (rc = cli_set_double(o, GEM_OPT_SIM_TFLOPS, a->tflops, "tflops")) ||
            (rc = cli_set_double(o, GEM_OPT_SIM_OVERHEAD_US, a->overhead, "overhead-us")) ||
            (rc = cli_set_double(o, GEM_OPT_SIM_MEMORY_GB, a->memory, "memory-gb")))
            goto fail;
        if (a->slowdowns) {
            double *v = NULL;
            size_t n = 0;
            if ((rc = profile_parse_slowdowns(a->slowdowns, &v, &n))) goto fail;
            gem_status_t st = gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, v, n);
            free(v);
            if (st != GEM_OK) {
                rc = cli_usage_error("--slowdowns: %s", gem_last_error());
                goto fail;
            }
            if (n % (size_t)ranks != 0) {
                rc = cli_usage_error("--slowdowns: %zu values do not split over %d ranks", n,
                                     ranks);
                goto fail;
            }
        }
    } else {
        if ((rc = cli_set_int(o, GEM_OPT_PROFILE_WARMUP_MS, a->warmup_ms, "warmup-ms")) ||
            (rc = cli_set_int(o, GEM_OPT_PROFILE_REPEATS, a->repeats, "repeats")) ||
            (rc = cli_set_int(o, GEM_OPT_PROFILE_DENSE, a->dense, "dense")))
            goto fail;
    }
    *out = o;
    return 0;
fail:
    gem_options_destroy(o);
    return rc;
}

/* ---- measuring ---------------------------------------------------------------------------- */

typedef struct {
    double done, total;
    cli_progress line; /* the updating line on a terminal (cli.h) */
} profile_progress;

/* Remembers the last report: timed samples of the boundaries a dense sweep would time. */
static int profile_on_progress(void *user, const char *what, double done, double total)
{
    profile_progress *p = user;
    if (strcmp(what, "measure") == 0) p->done = done, p->total = total;
    return cli_progress_update(&p->line, what, done, total);
}

/* all-to-all figures as nccl-tests prints them, from the profile's "alltoall" section. */
static void profile_print_alltoall(const char *text, int32_t G)
{
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    json_t *a = root ? json_object_get(root, "alltoall") : NULL;
    json_t *bytes = a ? json_object_get(a, "bytes") : NULL, *rows = a ? json_object_get(a, "time_us") : NULL;
    if (json_is_array(bytes) && json_is_array(rows)) {
        fprintf(stderr, "%14s %12s %12s %12s\n", "bytes/GPU", "time_us", "algbw_GB/s", "busbw_GB/s");
        for (size_t i = 0; i < json_array_size(bytes); i++) {
            double b = json_number_value(json_array_get(bytes, i)), t = 0;
            for (size_t g = 0; g < json_array_size(rows); g++)
                t = fmax(t, json_number_value(json_array_get(json_array_get(rows, g), i)));
            double alg = t > 0 ? b / (t * 1e3) : 0; /* bytes per ns = GB/s */
            fprintf(stderr, "%14.0f %12.2f %12.2f %12.2f\n", b, t, alg,
                    alg * (double)(G - 1) / (double)G);
        }
    }
    json_decref(root);
}

/* The profile of this process's GPUs, as text. */
static int profile_local(const profile_args *a, int sim, gem_options_t *o, char **text)
{
    profile_progress prog = {0};
    cli_progress_start(&prog.line, NULL, "profile");
    if (!sim) gem_options_set_progress(o, profile_on_progress, &prog);
    double t0 = cli_now();
    gem_profile_t *p = NULL;
    gem_status_t st = gem_profile_gpus(sim ? GEM_BACKEND_SIM : GEM_BACKEND_CUDA, o, &p);
    cli_progress_end(&prog.line);
    if (st != GEM_OK) return cli_fail(st);
    int32_t G = 0;
    gem_profile_num_gpus(p, &G);
    if (!sim)
        fprintf(stderr, "gem profile: %d GPU%s, %.0f of %.0f tile boundaries timed, %.1f s\n",
                (int)G, G == 1 ? "" : "s", prog.done, prog.total, cli_now() - t0);
    if (a->alltoall && (st = gem_profile_measure_alltoall(p, o)) != GEM_OK) {
        gem_profile_destroy(p);
        return cli_fail(st);
    }
    if (a->topology && (st = gem_profile_add_topology(p)) != GEM_OK) {
        gem_profile_destroy(p);
        return cli_fail(st);
    }
    st = gem_profile_to_string(p, text);
    gem_profile_destroy(p);
    if (st != GEM_OK) return cli_fail(st);
    if (a->alltoall) profile_print_alltoall(*text, G);
    return 0;
}

/* ---- MPI ---------------------------------------------------------------------------------- */

/* Ranks in the launcher's environment (Open MPI, MPICH/Hydra or Slurm PMI, MVAPICH): 1 when
 * none; 2 when a PMIx launcher started us without saying how many (MPI then tells). */
static int profile_env_ranks(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v) return atoi(v) > 1 ? atoi(v) : 1;
    }
    return getenv("PMIX_RANK") ? 2 : 1;
}

/* Rank r's share of a seeded sim fleet: GPUs r*G .. r*G+G-1, renumbered from 0. */
static int profile_slice(const char *fleet, int rank, int ranks, char **out)
{
    json_error_t err;
    json_t *root = json_loads(fleet, 0, &err);
    json_t *gpus = root ? json_object_get(root, "gpus") : NULL;
    if (!json_is_array(gpus)) {
        json_decref(root);
        return cli_error("rank %d: cannot read its own profile (%s)", rank, err.text);
    }
    size_t n = json_array_size(gpus), per = n / (size_t)ranks;
    json_t *mine = json_array();
    for (size_t i = 0; mine && i < per; i++) {
        json_t *gpu = json_array_get(gpus, (size_t)rank * per + i);
        json_object_set_new(gpu, "id", json_integer((json_int_t)i));
        json_array_append(mine, gpu);
    }
    int bad = !mine || json_object_set_new(root, "gpus", mine) != 0;
    /* 17 significant digits: every double reads back exactly. */
    *out = bad ? NULL : json_dumps(root, JSON_REAL_PRECISION(17));
    json_decref(root);
    return *out ? 0 : cli_error("out of memory");
}

#ifdef GEM_HAVE_MPI
/* Every rank's text (its profile, or its error when status != 0) gathered at rank 0, which
 * merges the profiles in rank order and writes them. Returns the command's exit status on
 * every rank. */
static int profile_gather(const char *text, int status, int rank, int ranks, const char *output)
{
    long long mine[2] = {status, (long long)strlen(text) + 1}, *all = NULL;
    if (rank == 0 && !(all = malloc(2 * sizeof *all * (size_t)ranks))) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Gather(mine, 2, MPI_LONG_LONG, all, 2, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    int *counts = NULL, *displs = NULL;
    char *buf = NULL;
    if (rank == 0) {
        counts = malloc(sizeof *counts * (size_t)ranks);
        displs = malloc(sizeof *displs * (size_t)ranks);
        long long total = 0;
        for (int r = 0; counts && displs && r < ranks; r++) {
            counts[r] = (int)all[2 * r + 1];
            displs[r] = (int)total;
            total += all[2 * r + 1];
        }
        if (!counts || !displs || total > 2147483647LL || !(buf = malloc((size_t)total)))
            MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Gatherv(text, (int)mine[1], MPI_CHAR, buf, counts, displs, MPI_CHAR, 0, MPI_COMM_WORLD);
    int rc = 0;
    if (rank == 0) {
        gem_profile_t *merged = NULL;
        for (int r = 0; r < ranks && !rc; r++) {
            const char *t = buf + displs[r];
            if (all[2 * r]) {
                cli_error("rank %d failed: %s", r, t);
                rc = (int)all[2 * r]; /* its exit status: 2 for a bad command line */
                break;
            }
            gem_profile_t *p = NULL;
            gem_status_t st = gem_profile_parse(t, strlen(t), &p);
            if (st == GEM_OK && merged) st = gem_profile_append(merged, p);
            if (st != GEM_OK) {
                fprintf(stderr, "gem profile: rank %d: ", r);
                rc = cli_fail(st);
            }
            if (merged) gem_profile_destroy(p);
            else merged = p;
        }
        /* Two ranks on one host would both have profiled its GPUs. */
        int32_t G = 0;
        if (!rc) gem_profile_num_gpus(merged, &G);
        for (int32_t g = 0; !rc && g < G; g++)
            for (int32_t h = 0; !rc && h < g; h++) {
                const char *bg, *bh, *hg, *hh;
                gem_profile_get_gpu_string(merged, g, "pci_bus_id", &bg);
                gem_profile_get_gpu_string(merged, h, "pci_bus_id", &bh);
                gem_profile_get_gpu_string(merged, g, "host", &hg);
                gem_profile_get_gpu_string(merged, h, "host", &hh);
                if (bg && bh && hg && hh && !strcmp(bg, bh) && !strcmp(hg, hh))
                    rc = cli_error("GPU %s of host %s was profiled by two ranks: run one rank "
                                   "per host (mpirun --map-by ppr:1:node)", bg, hg);
            }
        char *out = NULL;
        if (!rc) {
            gem_status_t st = gem_profile_to_string(merged, &out);
            rc = st != GEM_OK ? cli_fail(st) : cli_write_text(out, output);
        }
        gem_free(out);
        gem_profile_destroy(merged);
        free(buf), free(counts), free(displs), free(all);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return rc;
}
#endif

/* ---- the command ---------------------------------------------------------------------------- */

int gem_cmd_profile(int argc, char **argv)
{
    profile_args a = {
        .backend = "sim", .dtype = "bf16", .output = "-", .gpus = 4, .tile = 64,
        .max_tokens = 4096, .hidden = 4096, .ffn = 14336, .seed = 1, .warmup_ms = 2000,
        .repeats = 20, .spread = 0.077, .noise = 0, .bandwidth = 864, .tflops = 181,
        .overhead = 20, .memory = 48,
    };
    const cli_opt opts[] = {
        {"backend", 0, CLI_STRING, &a.backend, 0, 0, NULL},
        {"model", 0, CLI_STRING, &a.model, 0, 0, NULL},
        {"hidden", 0, CLI_INT, &a.hidden, 1, 1048576, &a.g_hidden},
        {"ffn", 0, CLI_INT, &a.ffn, 1, 1048576, &a.g_ffn},
        {"dtype", 0, CLI_STRING, &a.dtype, 0, 0, NULL},
        {"tile", 0, CLI_INT, &a.tile, 1, 65536, NULL},
        {"max-tokens", 0, CLI_INT, &a.max_tokens, 1, GEM_MAX_TOKENS, NULL},
        {"gpus", 0, CLI_INT, &a.gpus, 1, GEM_MAX_GPUS, &a.g_gpus},
        {"spread", 0, CLI_DOUBLE, &a.spread, 0, 10, &a.g_spread},
        {"slowdowns", 0, CLI_STRING, &a.slowdowns, 0, 0, &a.g_slowdowns},
        {"seed", 0, CLI_INT, &a.seed, 0, 4611686018427387904.0, &a.g_seed},
        {"noise", 0, CLI_DOUBLE, &a.noise, 0, 0.5, &a.g_noise},
        {"bandwidth-gbs", 0, CLI_DOUBLE, &a.bandwidth, 1e-3, 1e6, &a.g_bandwidth},
        {"tflops", 0, CLI_DOUBLE, &a.tflops, 1e-3, 1e6, &a.g_tflops},
        {"overhead-us", 0, CLI_DOUBLE, &a.overhead, 0, 1e9, &a.g_overhead},
        {"memory-gb", 0, CLI_DOUBLE, &a.memory, 0, 1e6, &a.g_memory},
        {"warmup-ms", 0, CLI_INT, &a.warmup_ms, 0, 600000, &a.g_warmup},
        {"repeats", 0, CLI_INT, &a.repeats, 1, 10000, &a.g_repeats},
        {"dense", 0, CLI_FLAG, &a.dense, 0, 0, NULL},
        {"alltoall", 0, CLI_FLAG, &a.alltoall, 0, 0, NULL},
        {"topology", 0, CLI_FLAG, &a.topology, 0, 0, NULL},
        {"host", 0, CLI_STRING, &a.host, 0, 0, NULL},
        {"interpolation", 0, CLI_STRING, &a.interp, 0, 0, NULL},
        {"cost-model", 0, CLI_STRING, &a.cost_model, 0, 0, NULL},
        {"output", 'o', CLI_STRING, &a.output, 0, 0, NULL},
    };
    const cli_spec spec = {profile_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    int sim = strcmp(a.backend, "sim") == 0;
    if (!sim && strcmp(a.backend, "cuda") != 0)
        return cli_usage_error("--backend: '%s' is not sim or cuda (nccl: --alltoall; hwloc: "
                               "--topology; mpi: run under mpirun)",
                               a.backend);
    if ((rc = profile_check_backend(&a, sim))) return rc;
    if (a.g_gpus && a.g_slowdowns)
        return cli_usage_error("--gpus and --slowdowns: the list of slowdowns sets the GPUs");
    if (!*a.output) return cli_usage_error("--output: empty file name");

    int ranks = profile_env_ranks(), rank = 0, mpi = 0;
#ifdef GEM_HAVE_MPI
    if (ranks > 1) {
        if (a.alltoall)
            return cli_usage_error("--alltoall measures one host's GPUs: run it without mpirun");
        MPI_Init(NULL, NULL);
        mpi = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    }
#else
    if (ranks > 1)
        fprintf(stderr, "gem profile: warning: started by an MPI launcher, but this gem was "
                        "built without MPI: every rank profiles alone\n");
    ranks = 1;
#endif
    gem_options_t *o = NULL;
    char *text = NULL;
    rc = profile_options(&a, sim, ranks, &o);
    if (!rc) rc = profile_local(&a, sim, o, &text);
    if (!rc && sim && ranks > 1) {
        char *slice = NULL;
        rc = profile_slice(text, rank, ranks, &slice);
        gem_free(text);
        text = slice; /* from jansson: freed with free(), as gem_free does */
    }
    gem_options_destroy(o);
#ifdef GEM_HAVE_MPI
    if (ranks > 1) {
        char msg[1024];
        snprintf(msg, sizeof msg, "exit status %d (its own message is above)", rc);
        rc = profile_gather(rc ? msg : text, rc, rank, ranks, a.output);
        gem_free(text);
        MPI_Finalize();
        return rc;
    }
    if (!rc) rc = cli_write_text(text, a.output);
    gem_free(text);
    if (mpi) MPI_Finalize(); /* a launcher of one rank */
    return rc;
#else
    (void)mpi;
    if (!rc) rc = cli_write_text(text, a.output);
    gem_free(text);
    return rc;
#endif
}
