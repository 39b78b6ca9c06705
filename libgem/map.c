/*
 * map.c - gem_compute_mapping: checks, slots per GPU (slots.c), and the per-layer policy
 * dispatch over worker threads. Replicas for policy gem and topology-aware placement run as
 * gem__policy_beyond (topology.c), a wrapper around the policy's own single-copy placement.
 *
 * Layers are independent, so each is handed to the policy on its own; a policy sees only its
 * layer index (and seeds any randomness from (seed, layer)), which is what makes the result
 * the same for every GEM_OPT_THREADS.
 */
#include "beyond.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const gem__policy_names[GEM_POLICY_COUNT] = {
    [GEM_POLICY_CONTIGUOUS] = "contiguous", [GEM_POLICY_ROUND_ROBIN] = "round_robin",
    [GEM_POLICY_BALANCED] = "balanced",     [GEM_POLICY_SPEED_AWARE] = "speed_aware",
    [GEM_POLICY_GEM] = "gem",               [GEM_POLICY_EPLB] = "eplb",
    [GEM_POLICY_EXACT] = "exact",
};

static const gem__layer_policy_fn gem__policy_fns[GEM_POLICY_COUNT] = {
    [GEM_POLICY_CONTIGUOUS] = gem__policy_contiguous, [GEM_POLICY_ROUND_ROBIN] = gem__policy_round_robin,
    [GEM_POLICY_BALANCED] = gem__policy_balanced,     [GEM_POLICY_SPEED_AWARE] = gem__policy_speed_aware,
    [GEM_POLICY_GEM] = gem__policy_gem,               [GEM_POLICY_EPLB] = gem__policy_eplb,
    [GEM_POLICY_EXACT] = gem__policy_exact,
};

GEM_API const char *gem_policy_name(gem_policy_t policy)
{
    if ((unsigned)policy >= GEM_POLICY_COUNT) return "unknown";
    return gem__policy_names[policy];
}

GEM_API gem_status_t gem_policy_from_name(const char *name, gem_policy_t *policy)
{
    gem__clear_error();
    GEM__CHECK_ARG(name && policy, "gem_policy_from_name: NULL argument");
    for (int i = 0; i < GEM_POLICY_COUNT; i++) {
        if (strcmp(name, gem__policy_names[i]) == 0) {
            *policy = (gem_policy_t)i;
            return GEM_OK;
        }
    }
    return gem__fail(GEM_ERR_INVALID_ARGUMENT,
                     "unknown policy '%s' (valid: contiguous, round_robin, balanced, "
                     "speed_aware, gem, eplb, exact)", name);
}

/* ---- the per-layer job ---------------------------------------------------------------------- */

typedef struct {
    const gem__map_ctx *ctx;
    gem_policy_t policy;
    gem__layer_policy_fn fn;  /* the per-layer function (policy's own, or gem__policy_beyond) */
    gem__layer_map *lms;      /* [L] results */
    gem_status_t *st;         /* [L] */
    int *proven;              /* [L] exact: optimum proven */
    atomic_int next;          /* next layer to hand out */
    atomic_int first_fail;    /* lowest failed layer, L when none */
    atomic_int cancelled;
    pthread_mutex_t lock;     /* serialises the progress callback and the message below */
    int32_t done;
    int32_t msg_layer;        /* layer whose error message msg holds, L when none */
    char msg[1024];           /* kept without allocating: the failure may be out of memory */
} gem__map_job;

int gem__cmp_keyed_desc(const void *a, const void *b)
{
    const gem__keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static void gem__swap_doubles(double *v, size_t i, size_t j)
{
    double t = v[i];
    v[i] = v[j];
    v[j] = t;
}

double gem__kth_smallest(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1; /* k in [lo, hi] */
    while (hi - lo >= 8) {
        const size_t mid = lo + (hi - lo) / 2;
        const double a = v[lo], b = v[mid], c = v[hi];
        const double pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        /* three ways, since step latencies repeat a lot: [lo, lt) < pivot, [lt, i) == pivot,
         * (gt, hi] > pivot */
        size_t lt = lo, i = lo, gt = hi;
        while (i <= gt) {
            if (v[i] < pivot) {
                gem__swap_doubles(v, lt++, i++);
            } else if (v[i] > pivot) {
                gem__swap_doubles(v, i, gt);
                if (gt == 0) break;
                gt--;
            } else {
                i++;
            }
        }
        if (k < lt) hi = lt - 1;
        else if (k > gt) lo = gt + 1;
        else return pivot;
    }
    for (size_t i = lo + 1; i <= hi; i++)
        for (size_t j = i; j > lo && v[j] < v[j - 1]; j--) gem__swap_doubles(v, j, j - 1);
    return v[k];
}

/* Records a failed layer; keeps the message of the lowest one (error messages are per
 * thread, so the worker's must be copied before it is lost). */
static void gem__map_note_failure(gem__map_job *job, int32_t l, gem_status_t st)
{
    job->st[l] = st;
    pthread_mutex_lock(&job->lock);
    if (l < job->msg_layer) {
        job->msg_layer = l;
        snprintf(job->msg, sizeof job->msg, "%s", gem_last_error());
    }
    pthread_mutex_unlock(&job->lock);
    int cur = atomic_load(&job->first_fail);
    while (l < cur && !atomic_compare_exchange_weak(&job->first_fail, &cur, l)) {
    }
}

static void gem__map_progress(gem__map_job *job)
{
    const gem_options_t *o = job->ctx->opts;
    pthread_mutex_lock(&job->lock);
    job->done++;
    if (o && o->progress &&
        o->progress(o->progress_user, "map", (double)job->done, (double)job->ctx->num_layers))
        atomic_store(&job->cancelled, 1);
    pthread_mutex_unlock(&job->lock);
}

static void *gem__map_worker(void *arg)
{
    gem__map_job *job = arg;
    const int32_t L = job->ctx->num_layers;
    for (;;) {
        int32_t l = atomic_fetch_add(&job->next, 1);
        /* layers are handed out in order, so once past a failure nothing later matters */
        if (l >= L || l > atomic_load(&job->first_fail) || atomic_load(&job->cancelled)) break;
        gem__clear_error();
        gem_status_t st;
        if (job->fn == gem__policy_exact)
            st = gem__exact_layer(job->ctx, l, &job->lms[l], &job->proven[l]);
        else
            st = job->fn(job->ctx, l, &job->lms[l]);
        if (st) {
            gem__map_note_failure(job, l, st);
            break;
        }
        gem__map_progress(job);
    }
    return NULL;
}

static void gem__map_run(gem__map_job *job, int threads)
{
    if (threads > job->ctx->num_layers) threads = job->ctx->num_layers;
    pthread_t *tids = threads > 1 ? gem__array((size_t)threads, sizeof *tids) : NULL;
    int started = 0;
    if (tids)
        for (int i = 0; i < threads - 1; i++) {
            if (pthread_create(&tids[i], NULL, gem__map_worker, job) != 0) break;
            started++;
        }
    gem__map_worker(job); /* the calling thread works too (alone if threads could not start) */
    for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
    free(tids);
}

/* Checks what a policy returned for one layer: SPEC 1 rules (gem__mapping_validate_layer,
 * which also refuses an expert twice on a GPU) and no GPU over its slots. A failure here is
 * a bug in the policy. */
static gem_status_t gem__check_policy_layer(const gem__map_ctx *ctx, const gem_mapping_t *m,
                                            int32_t l, int32_t *count)
{
    gem_status_t st = gem__mapping_validate_layer(m, l);
    if (st) return st;
    const gem__layer_map *lm = &m->layers[l];
    const int32_t G = ctx->num_gpus;
    memset(count, 0, (size_t)G * sizeof *count);
    for (size_t i = 0; i < lm->n; i++) count[lm->p[i].gpu]++;
    for (int32_t g = 0; g < G; g++)
        if (count[g] > ctx->slots[g])
            return gem__fail(GEM_ERR_INVALID_INPUT, "layer %d: gpu %d holds %d experts, %d slots",
                             (int)l, (int)g, (int)count[g], (int)ctx->slots[g]);
    return GEM_OK;
}

static gem_status_t gem__check_policy_output(const gem__map_ctx *ctx, const gem_mapping_t *m,
                                             gem_policy_t policy)
{
    int32_t *count = gem__array((size_t)ctx->num_gpus, sizeof *count);
    gem_status_t st = !count ? GEM_ERR_NO_MEMORY : GEM_OK;
    for (int32_t l = 0; l < ctx->num_layers && !st; l++)
        st = gem__check_policy_layer(ctx, m, l, count);
    free(count);
    if (st && st != GEM_ERR_NO_MEMORY)
        return gem__fail_context(GEM_ERR_INTERNAL, "policy %s made an invalid mapping (a bug)",
                                 gem_policy_name(policy));
    return st;
}

/* ---- gem_compute_mapping -------------------------------------------------------------------- */

static gem_status_t gem__check_inputs(const gem_profile_t *profile, const gem_trace_t *trace,
                                      const gem_classification_t *cls)
{
    gem_status_t st = gem__profile_check_ready(profile);
    if (st) return st;
    if ((st = gem_trace_validate(trace))) return st;
    if (cls) {
        int64_t cs;
        int32_t cl, ce;
        if ((st = gem_classification_shape(cls, &cs, &cl, &ce))) return st;
        if (cl != trace->num_layers || ce != trace->num_experts)
            return gem__fail(GEM_ERR_SHAPE_MISMATCH,
                             "gem_compute_mapping: classification has %d layers x %d experts "
                             "but the trace has %d x %d", (int)cl, (int)ce,
                             (int)trace->num_layers, (int)trace->num_experts);
    }
    return GEM_OK;
}

/* Runs the policy on every layer and moves the results into a new mapping. */
static gem_status_t gem__map_layers(const gem__map_ctx *ctx, gem_policy_t policy,
                                    gem__layer_policy_fn fn, gem_mapping_t **out)
{
    const int32_t L = ctx->num_layers;
    gem__map_job job;
    memset(&job, 0, sizeof job);
    job.ctx = ctx;
    job.policy = policy;
    job.fn = fn;
    job.lms = gem__array((size_t)L, sizeof *job.lms);
    job.st = gem__array((size_t)L, sizeof *job.st);
    job.proven = gem__array((size_t)L, sizeof *job.proven);
    gem_mapping_t *m = NULL;
    gem_status_t st = (!job.lms || !job.st || !job.proven) ? GEM_ERR_NO_MEMORY : GEM_OK;
    if (!st && pthread_mutex_init(&job.lock, NULL) != 0)
        st = gem__fail(GEM_ERR_INTERNAL, "gem_compute_mapping: pthread_mutex_init failed");
    if (st) goto done;
    atomic_init(&job.next, 0);
    atomic_init(&job.first_fail, L);
    atomic_init(&job.cancelled, 0);
    job.msg_layer = L;
    gem__map_run(&job, gem__opt_threads(ctx->opts));
    pthread_mutex_destroy(&job.lock);

    int32_t fail = atomic_load(&job.first_fail);
    if (fail < L) {
        st = gem__fail(job.st[fail], "policy %s, layer %d: %s", gem_policy_name(policy),
                       (int)fail, job.msg);
        goto done;
    }
    if (atomic_load(&job.cancelled)) {
        st = gem__fail(GEM_ERR_CANCELLED, "gem_compute_mapping: cancelled by the progress "
                       "callback after %d of %d layers", (int)job.done, (int)L);
        goto done;
    }
    if ((st = gem_mapping_create(&m, ctx->num_gpus, L, ctx->num_experts))) goto done;
    for (int32_t l = 0; l < L; l++) {
        free(m->layers[l].p);
        m->layers[l] = job.lms[l];
        memset(&job.lms[l], 0, sizeof job.lms[l]);
    }
    const char *name = gem_policy_name(policy);
    if (job.fn == gem__policy_exact)
        for (int32_t l = 0; l < L; l++)
            if (!job.proven[l]) name = "exact-timeout";
    if ((st = gem_mapping_set_policy_name(m, name))) goto done;
    st = gem__check_policy_output(ctx, m, policy);

done:
    if (st) gem_mapping_destroy(m);
    else *out = m;
    if (job.lms)
        for (int32_t l = 0; l < L; l++) free(job.lms[l].p);
    free(job.lms);
    free(job.st);
    free(job.proven);
    return st;
}

GEM_API gem_status_t gem_compute_mapping(const gem_profile_t *profile, const gem_trace_t *trace,
                                         gem_policy_t policy, const gem_options_t *opts,
                                         const gem_classification_t *cls, gem_mapping_t **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(profile && trace && out,
                   "gem_compute_mapping: profile, trace and out must not be NULL");
    GEM__CHECK_ARG((unsigned)policy < GEM_POLICY_COUNT,
                   "gem_compute_mapping: unknown policy %d (0..%d)", (int)policy,
                   GEM_POLICY_COUNT - 1);
    gem_status_t st = gem__check_inputs(profile, trace, cls);
    if (st) return st;
    gem__clear_error();

    const size_t G = (size_t)profile->num_gpus;
    int32_t *slots = gem__array(G, sizeof *slots), *base = gem__array(G, sizeof *base);
    if (!slots || !base) {
        free(slots), free(base);
        return GEM_ERR_NO_MEMORY;
    }
    if ((st = gem__slots_make(profile, trace, opts, policy, slots, base))) {
        free(slots), free(base);
        return st;
    }
    /* replicas for gem, topology for the policies that fill any slot vector: both run as a
     * wrapper around the policy's single-copy placement */
    gem__beyond plan;
    memset(&plan, 0, sizeof plan);
    int64_t R = gem__opt_int(opts, GEM_OPT_REDUNDANT_SLOTS);
    int topo = gem__opt_int(opts, GEM_OPT_TOPOLOGY_AWARE) && policy != GEM_POLICY_EXACT &&
               gem__policy_any_slots(policy);
    int use_plan = topo || (policy == GEM_POLICY_GEM && R > 0);
    if (use_plan) {
        plan.inner = gem__policy_fns[policy];
        plan.base = base;
        plan.R = policy == GEM_POLICY_GEM ? R : 0;
        plan.rule = (gem_share_rule_t)gem__opt_int(opts, GEM_OPT_SHARE_RULE);
        plan.topology = topo;
        plan.comm = topo && gem__opt_int(opts, GEM_OPT_COMM_MODEL);
        if ((st = gem__beyond_init(&plan, profile, opts))) {
            gem__beyond_free(&plan);
            free(slots), free(base);
            return st;
        }
    }
    gem_classification_t *own = NULL;
    if (policy == GEM_POLICY_GEM && !cls) {
        if ((st = gem_classify_experts(trace, opts, &own))) {
            gem__beyond_free(&plan);
            free(slots), free(base);
            return st;
        }
        cls = own;
    }
    gem__beyond_ctx bctx = {
        .ctx = {
            .profile = profile, .trace = trace, .opts = opts, .cls = cls,
            .num_gpus = profile->num_gpus, .num_layers = trace->num_layers,
            .num_experts = trace->num_experts, .num_steps = trace->num_steps, .slots = slots,
        },
        .plan = &plan,
    };
    st = gem__map_layers(&bctx.ctx, policy, use_plan ? gem__policy_beyond : gem__policy_fns[policy],
                         out);
    gem_classification_destroy(own);
    gem__beyond_free(&plan);
    free(slots), free(base);
    return st;
}
