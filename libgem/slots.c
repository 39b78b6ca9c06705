/*
 * slots.c - how many expert copies each GPU holds per layer: equal counts, or (with
 * GEM_OPT_UNEQUAL_SLOTS) counts that equalise the GPUs' predicted finish times, both within
 * the GPUs' memory.
 *
 * Memory. A GPU holds its experts of every layer, so slots[g] copies per layer take
 * slots[g] x L x GEM_OPT_EXPERT_BYTES bytes, which must fit the GPU's free memory
 * (GEM_OPT_GPU_MEMORY[g], else the profile's memory_bytes; unknown = unlimited). Without
 * GEM_OPT_EXPERT_BYTES memory is not checked.
 *
 * Unequal counts. In memory-bound decode every active expert costs its own weight reads, so a
 * GPU's time grows with the number of experts it holds; equal counts make the slowest GPU the
 * straggler. The counts are handed out one slot at a time, each to the GPU whose predicted
 * time with one more expert is least (ties: fewer slots, then lowest id), within memory:
 *   per_expert: c_g + k x fbar_g, fbar_g = mean over the trace's (step, layer, expert) of
 *               f_g(n) (an average expert's cost on g, zero loads included);
 *   aggregate:  c_g + f_g(k x nbar), nbar = mean load of an expert per (step, layer).
 * The first E slots handed out are the base (one copy of every expert), the next R the
 * replicas' slots. Long traces are sampled (at most GEM__SLOTS_ROWS (step, layer) rows,
 * evenly spaced) for fbar: it only ranks GPUs.
 */
#include "beyond.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GEM__SLOTS_ROWS 4096

int gem__policy_any_slots(gem_policy_t p)
{
    return p == GEM_POLICY_BALANCED || p == GEM_POLICY_SPEED_AWARE || p == GEM_POLICY_GEM ||
           p == GEM_POLICY_EXACT;
}

int gem__policy_replicates(gem_policy_t p) { return p == GEM_POLICY_EPLB || p == GEM_POLICY_GEM; }

/* Free bytes of each GPU for experts (-1: unknown), from the option or the profile. */
static gem_status_t gem__gpu_memory(const gem_profile_t *p, const gem_options_t *opts,
                                    int64_t *mem)
{
    const int32_t G = p->num_gpus;
    const gem_options_t *o = opts ? opts : gem__default_options();
    size_t n = o->arr_n[GEM_OPT_GPU_MEMORY];
    const int64_t *arr = o->iarr[GEM_OPT_GPU_MEMORY];
    if (arr && n != (size_t)G)
        return gem__fail(GEM_ERR_INVALID_ARGUMENT,
                         "gem_compute_mapping: GEM_OPT_GPU_MEMORY has %zu entries for %d GPUs", n,
                         (int)G);
    for (int32_t g = 0; g < G; g++) mem[g] = arr ? arr[g] : p->gpus[g].memory_bytes;
    return GEM_OK;
}

/* Bytes that one slot per layer takes on a GPU (expert bytes x layers), saturated. */
static double gem__slot_bytes(int64_t bytes, int32_t L) { return (double)bytes * (double)L; }

/* Slots per layer that memory allows on each GPU (at most E: a GPU never holds an expert
 * twice), INT32_MAX-free: E when unknown. */
static void gem__memory_caps(const int64_t *mem, int32_t G, int32_t E, int64_t bytes, int32_t L,
                             int32_t *cap)
{
    double per = gem__slot_bytes(bytes, L);
    for (int32_t g = 0; g < G; g++) {
        if (bytes <= 0 || mem[g] < 0) { cap[g] = E; continue; }
        double c = floor((double)mem[g] / per);
        cap[g] = c < (double)E ? (int32_t)c : E;
    }
}

static int gem__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Fewest extra bytes that would let the GPUs hold `need` more slots: each GPU's next slot
 * costs what its remainder lacks of a whole slot, further ones a whole slot each. */
static double gem__missing_bytes(const int64_t *mem, const int32_t *cap, int32_t G, int32_t E,
                                 int64_t bytes, int32_t L, int64_t need)
{
    double per = gem__slot_bytes(bytes, L);
    uint64_t *first = gem__array((size_t)G, sizeof *first);
    if (!first) return need * per; /* an estimate is all that is left */
    int32_t n = 0;
    for (int32_t g = 0; g < G; g++)
        if (cap[g] < E && mem[g] >= 0)
            first[n++] = (uint64_t)(per - fmod((double)mem[g], per));
    qsort(first, (size_t)n, sizeof *first, gem__cmp_u64);
    double total = 0;
    for (int32_t i = 0; i < n && need > 0; i++, need--) total += (double)first[i];
    total += (double)need * per;
    free(first);
    return total;
}

/* Average cost of one expert on each GPU over (a sample of) the trace, and the mean load. */
static gem_status_t gem__expert_costs(const gem_profile_t *p, const gem_trace_t *t, double *fbar,
                                      double *nbar)
{
    const int32_t G = p->num_gpus, L = t->num_layers, E = t->num_experts;
    const int64_t rows = t->num_steps * L;
    const int64_t stride = rows > GEM__SLOTS_ROWS ? rows / GEM__SLOTS_ROWS : 1;
    double load = 0, cnt = 0;
    for (int32_t g = 0; g < G; g++) fbar[g] = 0;
    for (int64_t r = 0; r < rows; r += stride) {
        const double *row = gem__trace_row(t, r / L, (int32_t)(r % L));
        for (int32_t e = 0; e < E; e++) {
            load += row[e];
            if (row[e] > 0)
                for (int32_t g = 0; g < G; g++) fbar[g] += gem__latency(p, g, row[e]);
        }
        cnt += E;
    }
    double sum = 0;
    for (int32_t g = 0; g < G; g++) sum += (fbar[g] /= cnt);
    *nbar = load / cnt;
    if (!(sum > 0)) /* no load at all: rank the GPUs by one token */
        for (int32_t g = 0; g < G; g++) fbar[g] = gem__latency(p, g, 1.0);
    if (!(*nbar > 0)) *nbar = 1.0;
    return GEM_OK;
}

/* Greedy speed-proportional counts (see the file comment). */
static gem_status_t gem__unequal(const gem_profile_t *p, const gem_trace_t *t, const int32_t *cap,
                                 int64_t E, int64_t total, int32_t *full, int32_t *base)
{
    const int32_t G = p->num_gpus;
    double *fbar = gem__array((size_t)G, sizeof *fbar);
    if (!fbar) return GEM_ERR_NO_MEMORY;
    double nbar;
    gem__expert_costs(p, t, fbar, &nbar);
    const int aggregate = p->cost_model == GEM_COST_AGGREGATE;
    for (int32_t g = 0; g < G; g++) full[g] = 0;
    for (int64_t i = 0; i < total; i++) {
        int32_t best = -1;
        double bt = INFINITY;
        for (int32_t g = 0; g < G; g++) {
            if (full[g] >= cap[g]) continue;
            double k = full[g] + 1.0;
            double tg = aggregate ? p->gpus[g].overhead + gem__latency(p, g, k * nbar)
                                  : p->gpus[g].overhead + k * fbar[g];
            if (best < 0 || tg < bt || (tg == bt && full[g] < full[best])) best = g, bt = tg;
        }
        if (best < 0) { /* checked by the caller */
            free(fbar);
            return gem__fail(GEM_ERR_INTERNAL, "gem_compute_mapping: slot %lld has no GPU",
                             (long long)i);
        }
        full[best]++;
        if (i + 1 == E) memcpy(base, full, (size_t)G * sizeof *base);
    }
    free(fbar);
    return GEM_OK;
}

gem_status_t gem__slots_make(const gem_profile_t *p, const gem_trace_t *t,
                             const gem_options_t *opts, gem_policy_t policy, int32_t *full,
                             int32_t *base)
{
    const int32_t G = p->num_gpus, E = t->num_experts, L = t->num_layers;
    const int64_t R = gem__opt_int(opts, GEM_OPT_REDUNDANT_SLOTS);
    const int unequal = gem__opt_int(opts, GEM_OPT_UNEQUAL_SLOTS) && gem__policy_any_slots(policy);
    if (R > 0 && !gem__policy_replicates(policy))
        return gem__fail(GEM_ERR_NOT_SUPPORTED,
                         "gem_compute_mapping: policy %s does not replicate experts "
                         "(GEM_OPT_REDUNDANT_SLOTS = %lld; use gem or eplb)",
                         gem_policy_name(policy), (long long)R);
    const int64_t total = (int64_t)E + R;
    /* no GPU may hold an expert twice, so an expert has at most G copies */
    if (total > (int64_t)E * G)
        return gem__fail(GEM_ERR_INFEASIBLE,
                         "gem_compute_mapping: %lld copies of %d experts do not fit on %d GPUs "
                         "without two copies of one expert on a GPU (at most %lld)",
                         (long long)total, (int)E, (int)G, (long long)E * G);

    const int64_t bytes = gem__opt_int(opts, GEM_OPT_EXPERT_BYTES);
    int64_t *mem = gem__array((size_t)G, sizeof *mem);
    int32_t *cap = gem__array((size_t)G, sizeof *cap);
    gem_status_t st = (!mem || !cap) ? GEM_ERR_NO_MEMORY : GEM_OK;
    if (!st) st = gem__gpu_memory(p, opts, mem);
    if (st) goto done;
    gem__memory_caps(mem, G, E, bytes, L, cap);

    if (!unequal) {
        for (int32_t g = 0; g < G; g++) {
            full[g] = (int32_t)(total / G + (g < total % G ? 1 : 0));
            base[g] = (int32_t)(E / G + (g < E % G ? 1 : 0));
        }
        for (int32_t g = 0; g < G && !st; g++)
            if (full[g] > cap[g])
                st = gem__fail(GEM_ERR_INFEASIBLE,
                               "gem_compute_mapping: gpu %d needs %d expert slots x %d layers of "
                               "%lld bytes but has %lld bytes free (%.0f bytes missing; "
                               "GEM_OPT_UNEQUAL_SLOTS may help)",
                               (int)g, (int)full[g], (int)L, (long long)bytes, (long long)mem[g],
                               (double)full[g] * gem__slot_bytes(bytes, L) - (double)mem[g]);
        goto done;
    }
    int64_t room = 0;
    for (int32_t g = 0; g < G; g++) room += cap[g];
    if (room < total) {
        st = gem__fail(GEM_ERR_INFEASIBLE,
                       "gem_compute_mapping: the GPUs' memory holds %lld of the %lld expert "
                       "copies per layer (%d layers of %lld bytes each): %.0f bytes missing",
                       (long long)room, (long long)total, (int)L, (long long)bytes,
                       gem__missing_bytes(mem, cap, G, E, bytes, L, total - room));
        goto done;
    }
    st = gem__unequal(p, t, cap, E, total, full, base);
done:
    free(mem);
    free(cap);
    return st;
}
