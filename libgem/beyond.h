/*
 * beyond.h - private interface of the parts that go beyond the GEM paper (never installed):
 * slot counts per GPU under memory limits (slots.c), replicas with speed-weighted shares
 * (replicate.c), topology-aware placement and the all-to-all cost model (topology.c), and
 * migration-aware re-mapping (remap.c).
 */
#ifndef GEM_BEYOND_H
#define GEM_BEYOND_H

#include "internal.h"

/* ---- slots (slots.c) -------------------------------------------------------------------- */

/** Slots per GPU for gem_compute_mapping. full[g]: copies GPU g may hold per layer (E + R in
 *  all); base[g]: the slots for one copy of every expert (E in all, base <= full), which is
 *  where a replicating policy starts before it adds its R copies. Equal counts (the first
 *  (E + R) % G GPUs one more), or with GEM_OPT_UNEQUAL_SLOTS for policies that handle any
 *  slot vector, counts that equalise each GPU's predicted finish time. Both are capped by
 *  memory: GPU g holds at most floor(free_g / (GEM_OPT_EXPERT_BYTES x L)) slots per layer.
 *  Errors: GEM_ERR_INFEASIBLE (says how many bytes are missing), GEM_ERR_NOT_SUPPORTED (R > 0
 *  with a policy that does not replicate), GEM_ERR_INVALID_ARGUMENT (memory array size). */
gem_status_t gem__slots_make(const gem_profile_t *p, const gem_trace_t *t,
                             const gem_options_t *opts, gem_policy_t policy, int32_t *full,
                             int32_t *base);
/** 1 when the policy places experts into any slot vector (and so gets unequal slots). */
int gem__policy_any_slots(gem_policy_t policy);
/** 1 when the policy can place more than one copy of an expert. */
int gem__policy_replicates(gem_policy_t policy);

/* ---- a layer's placements evaluated on a trace (replicate.c) ------------------------------ */

#define GEM__LS_TOP 4 /* GPUs kept per step, largest T first */

/** One layer of a trace with a placement list and its per-step GPU times, for searches that
 *  change a few GPUs at a time. Objective: sum over steps of max_g T_g (S x the layer's mean
 *  latency), SPEC 2. */
typedef struct {
    const gem_profile_t *p;
    int per_expert;
    int32_t G, E;
    size_t S;
    double *over;             /* [G] c_g */
    double *load;             /* [E][S] */
    double *mean;             /* [E] mean load per step */
    gem__layer_map lm;        /* the placements (owned) */
    double *T;                /* [G][S] */
    int32_t *top;             /* [S][GEM__LS_TOP] GPUs with the largest T, ties to lowest id */
    double obj;
    /* scratch for trials */
    double *newT;             /* [G][S] */
    int32_t *mark;            /* [G] stamp of the GPUs a trial changes */
    int32_t stamp;
    int32_t *slot_of;         /* [G] index of a changed GPU in newT */
} gem__lstate;

gem_status_t gem__lstate_init(gem__lstate *st, const gem_profile_t *p, const gem_trace_t *t,
                              int32_t layer);
void gem__lstate_free(gem__lstate *st);
/** Replaces the placements (copied) and computes T, the tops and the objective. */
gem_status_t gem__lstate_set(gem__lstate *st, const gem__layer_map *lm);
/** Objective change if the placements became `cand`, which differs from st->lm only on the
 *  GPUs aff[0..na) (na >= 1, distinct). */
double gem__lstate_delta(gem__lstate *st, const gem__layer_map *cand, const int32_t *aff,
                         int32_t na);
/** Objective change if placements i and j of st->lm traded GPUs (per_expert model only: the
 *  two GPUs' times change by the two copies' costs, read from the curves). */
double gem__lstate_swap_delta(gem__lstate *st, size_t i, size_t j);
/** Makes `cand` (as for delta) the current placements. */
gem_status_t gem__lstate_commit(gem__lstate *st, const gem__layer_map *cand, const int32_t *aff,
                                int32_t na);
/** Copies a layer map (dst is overwritten; its old storage is reused or freed). */
gem_status_t gem__layer_map_copy(gem__layer_map *dst, const gem__layer_map *src);

/* ---- replication (replicate.c) ------------------------------------------------------------ */

/** Adds up to R replicas to a layer placed with one copy of every expert, into the free
 *  slots of ctx->slots (no GPU holding an expert twice), and sets the shares by `rule`. A
 *  replica is added only where it improves the layer's objective on ctx->trace (MEAN: the sum
 *  of its latencies; P90: their p90, then the sum). lm is updated in place. */
gem_status_t gem__replicate_layer(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *lm,
                                  int64_t R, gem_share_rule_t rule);

/* ---- topology and communication (topology.c) ---------------------------------------------- */

/** GPUs grouped by the profile's "host" strings (GPUs without one share the host ""). */
typedef struct {
    int32_t G, H;
    int32_t *host;            /* [G] host index, numbered in order of first appearance */
    int32_t *size;            /* [H] GPUs per host */
} gem__hosts;
gem_status_t gem__hosts_init(gem__hosts *h, const gem_profile_t *p);
void gem__hosts_free(gem__hosts *h);

/** The all-to-all model of docs/cost-model-topology.md. */
typedef struct {
    gem__hosts hosts;
    const gem_profile_t *p;
    double token_bytes;       /* b */
    double k;                 /* experts per token */
    int have_a2a;             /* the profile's alltoall table is usable */
} gem__comm;

/** Reads b and k from opts and the profile. need_time: also require the profile's all-to-all
 *  table (GEM_ERR_INVALID_INPUT when missing or not ascending). */
gem_status_t gem__comm_init(gem__comm *c, const gem_profile_t *p, const gem_options_t *opts,
                            int need_time);
void gem__comm_free(gem__comm *c);
/** Scratch doubles gem__comm_layer needs. */
size_t gem__comm_scratch(const gem__comm *c);
/** All-to-all time (dispatch + combine, us) of one (step, layer) with loads row[E] and the
 *  placements lm (0 when need_time was not set). cross and tokens (may be NULL) receive the
 *  expected number of the row's tokens that need a host other than their own, and the
 *  row's tokens N / k. */
double gem__comm_layer(const gem__comm *c, const gem__layer_map *lm, const double *row,
                       int32_t E, double *scratch, double *cross, double *tokens);
/** Fraction of a trace's tokens that need a host other than their own under a mapping
 *  (sum of cross over sum of tokens; 0 with one host). */
gem_status_t gem__cross_host_fraction(const gem_profile_t *p, const gem_trace_t *t,
                                      const gem_mapping_t *m, const gem_options_t *opts,
                                      double *fraction);

/* ---- the plan that map.c hands to gem__policy_beyond ------------------------------------- */

typedef struct gem__beyond {
    gem__layer_policy_fn inner; /* places one copy of every expert */
    const int32_t *base;      /* [G] slots for that (sums to E) */
    int64_t R;                /* replicas to add afterwards */
    gem_share_rule_t rule;
    int topology;             /* place across hosts first */
    int comm;                 /* judge by compute + all-to-all time */
    gem__comm cm;             /* when topology or comm */
    gem_profile_t **sub;      /* [H] one profile per host's GPUs (topology) */
    int32_t **sub_gpus;       /* [H] the GPUs of each host */
    double *speed;            /* [G] relative speeds (gem_profile_speeds) */
} gem__beyond;

/** What map.c hands to gem__policy_beyond: the usual context, and the plan. The policy
 *  receives &ctx and finds the plan around it (ctx is the first member). */
typedef struct {
    gem__map_ctx ctx;
    const gem__beyond *plan;
} gem__beyond_ctx;

/** Builds the host sub-profiles and the comm model; plan->topology etc. set by the caller. */
gem_status_t gem__beyond_init(gem__beyond *b, const gem_profile_t *p, const gem_options_t *opts);
void gem__beyond_free(gem__beyond *b);
/** Per-layer policy for a context that is the ctx member of a gem__beyond_ctx: the plan's
 *  inner policy (across hosts first when topology is set), then replicas. */
gem_status_t gem__policy_beyond(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out);

#endif /* GEM_BEYOND_H */
