/*
 * topology.c - GPUs on several hosts: the all-to-all cost model (GEM_OPT_COMM_MODEL), the
 * topology-aware placement (GEM_OPT_TOPOLOGY_AWARE), and gem__policy_beyond, the per-layer
 * policy that map.c runs when a mapping needs topology or replicas.
 *
 * The model and its defaults are documented in docs/cost-model-topology.md; in short, for one
 * (step, layer) with loads n_e, N = sum n_e and k experts per token (GEM_OPT_EXPERTS_PER_TOKEN,
 * or GEM_OPT_IMPORT_TOPK when that is unset):
 *   T = N / k tokens, each originating evenly on the G GPUs; a token picks expert e with
 *   probability q_e = min(1, n_e / T), and a copy (e, g, w) with probability w q_e, all
 *   independently. P_g = 1 - prod over g's copies (1 - w q_e) is the probability that a token
 *   needs GPU g; P_h = 1 - prod over h's GPUs (1 - P_g) that it needs host h. A token is sent
 *   once to every host it needs (and forwarded inside it), so cross-host sends per step are
 *   T sum_h (1 - G_h / G) P_h of T sum_h P_h in all (what topology-aware placement lowers).
 *   GEM_METRIC_CROSS_HOST is another figure: the share of tokens that need at least one host
 *   other than their own, 1 - sum_j (G_j / G) prod over h != j of (1 - P_h).
 *   Time: the measured all-to-all is the link that counts: between hosts when there are two or
 *   more (units = hosts), else between GPUs (units = GPUs). GPU g sends
 *   s_g = b T / G (sum_u P_u - P_u(g)) bytes and receives r_g = b T (1 - G_u / G) P_u / G_u
 *   (its unit's remote arrivals, shared by its G_u GPUs); dispatch takes
 *   max_g A_g(max(s_g, r_g)), A_g the profile's all-to-all time of GPU g at that message size
 *   (linear between measured sizes, the smallest size's time below it, the last slope past
 *   the largest), and combine the same again.
 *
 * Topology-aware placement of one layer (for policies that place single copies into any slot
 * vector): experts are first split over hosts, each host taking as many as its GPUs have base
 * slots: heaviest first to the host whose load per unit of speed stays least, then swaps
 * between hosts that lower the expected cross-host sends (the sum over steps of
 * sum_h (1 - G_h / G) P_h) while no host's load per speed rises above the start's worst or 5%
 * over the mean, whichever is more. Then each host's GPUs get the host's experts by the inner
 * policy, run on the host alone (its own profile, a one-layer trace of its experts). With
 * GEM_OPT_COMM_MODEL the result is compared with the inner policy on all GPUs by compute plus
 * all-to-all time on the trace, and the better one is kept.
 */
#include "beyond.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GEM__TOPO_SLACK 0.05
#define GEM__TOPO_PASSES 10
#define GEM__Q_MAX (1.0 - 1e-9)

/* ---- hosts ----------------------------------------------------------------------------------- */

void gem__hosts_free(gem__hosts *h)
{
    free(h->host);
    free(h->size);
    memset(h, 0, sizeof *h);
}

gem_status_t gem__hosts_init(gem__hosts *h, const gem_profile_t *p)
{
    memset(h, 0, sizeof *h);
    const int32_t G = p->num_gpus;
    h->G = G;
    h->host = gem__array((size_t)G, sizeof *h->host);
    h->size = gem__array((size_t)G, sizeof *h->size);
    if (!h->host || !h->size) {
        gem__hosts_free(h);
        return GEM_ERR_NO_MEMORY;
    }
    for (int32_t g = 0; g < G; g++) {
        const char *name = p->gpus[g].host ? p->gpus[g].host : "";
        int32_t found = -1;
        for (int32_t j = 0; j < g && found < 0; j++) {
            const char *other = p->gpus[j].host ? p->gpus[j].host : "";
            if (strcmp(name, other) == 0) found = h->host[j];
        }
        if (found < 0) found = h->H++;
        h->host[g] = found;
        h->size[found]++;
    }
    return GEM_OK;
}

/* ---- the communication model ------------------------------------------------------------------ */

void gem__comm_free(gem__comm *c)
{
    gem__hosts_free(&c->hosts);
    memset(c, 0, sizeof *c);
}

/* Bytes of one element of the profile's model dtype; 0 when unknown. */
static double gem__dtype_bytes(const char *d)
{
    if (!d) return 0;
    if (!strcmp(d, "bf16") || !strcmp(d, "fp16") || !strcmp(d, "f16") ||
        !strcmp(d, "bfloat16") || !strcmp(d, "float16"))
        return 2;
    if (!strncmp(d, "fp8", 3) || !strcmp(d, "f8") || !strcmp(d, "int8")) return 1;
    if (!strcmp(d, "fp32") || !strcmp(d, "f32") || !strcmp(d, "float32")) return 4;
    return 0;
}

gem_status_t gem__comm_init(gem__comm *c, const gem_profile_t *p, const gem_options_t *opts,
                            int need_time)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    /* Experts per token: the router's top-k; unset (0), the importers' top-k as before. */
    int64_t k = gem__opt_int(opts, GEM_OPT_EXPERTS_PER_TOKEN);
    c->k = (double)(k > 0 ? k : gem__opt_int(opts, GEM_OPT_IMPORT_TOPK));
    int64_t tb = gem__opt_int(opts, GEM_OPT_TOKEN_BYTES);
    if (tb > 0) c->token_bytes = (double)tb;
    else c->token_bytes = (double)p->model_hidden * gem__dtype_bytes(p->model_dtype);
    if (need_time) {
        if (!p->a2a_n || !p->a2a_bytes || !p->a2a_time)
            return gem__fail(GEM_ERR_INVALID_INPUT,
                             "communication model: the profile has no alltoall figures "
                             "(gem_profile_measure_alltoall, or an \"alltoall\" section)");
        for (size_t i = 0; i < p->a2a_n; i++)
            if (!(p->a2a_bytes[i] > 0) || (i > 0 && !(p->a2a_bytes[i] > p->a2a_bytes[i - 1])))
                return gem__fail(GEM_ERR_INVALID_INPUT,
                                 "communication model: alltoall.bytes[%zu] = %.17g: sizes must "
                                 "be > 0 and strictly ascending", i, p->a2a_bytes[i]);
        if (!(c->token_bytes > 0))
            return gem__fail(GEM_ERR_INVALID_INPUT,
                             "communication model: bytes per token unknown: set "
                             "GEM_OPT_TOKEN_BYTES, or give the profile's model a hidden size "
                             "and a dtype (bf16, fp16, fp8, fp32)");
        c->have_a2a = 1;
    }
    return gem__hosts_init(&c->hosts, p);
}

size_t gem__comm_scratch(const gem__comm *c)
{
    return (size_t)c->hosts.G + 2 * (size_t)c->hosts.H + 1;
}

/* Time of GPU g's all-to-all at `bytes` per GPU (see the file comment). */
static double gem__a2a_time(const gem_profile_t *p, int32_t g, double bytes)
{
    if (!(bytes > 0)) return 0;
    const size_t n = p->a2a_n;
    const double *x = p->a2a_bytes, *t = p->a2a_time + (size_t)g * n;
    if (bytes <= x[0]) return t[0];
    if (bytes > x[n - 1]) {
        if (n == 1) return t[0] * bytes / x[0];
        return t[n - 1] + (bytes - x[n - 1]) * (t[n - 1] - t[n - 2]) / (x[n - 1] - x[n - 2]);
    }
    size_t i = 1;
    while (x[i] < bytes) i++;
    if (bytes == x[i]) return t[i];
    return (t[i - 1] * (x[i] - bytes) + t[i] * (bytes - x[i - 1])) / (x[i] - x[i - 1]);
}

double gem__comm_layer(const gem__comm *c, const gem__layer_map *lm, const double *row,
                       int32_t E, double *scratch, double *cross, double *tokens)
{
    const gem__hosts *h = &c->hosts;
    const int32_t G = h->G, H = h->H;
    double N = 0;
    for (int32_t e = 0; e < E; e++) N += row[e];
    if (cross) *cross = 0;
    if (tokens) *tokens = 0;
    if (!(N > 0)) return 0;
    const double T = N / c->k;
    double *pg = scratch, *ph = scratch + G; /* products of (1 - .); ph + H: suffixes */
    for (int32_t g = 0; g < G; g++) pg[g] = 1.0;
    for (int32_t j = 0; j < H; j++) ph[j] = 1.0;
    for (size_t i = 0; i < lm->n; i++) {
        const gem__placement *q = &lm->p[i];
        double qe = row[q->expert] / T;
        if (qe > 1) qe = 1;
        pg[q->gpu] *= 1.0 - q->share * qe;
    }
    for (int32_t g = 0; g < G; g++) ph[h->host[g]] *= pg[g];
    double all = 0;
    for (int32_t j = 0; j < H; j++) all += 1.0 - ph[j];
    if (cross) {
        /* a token from host j stays there when it needs no other host: the product of ph
         * over the others, from prefix and suffix products */
        double *suf = ph + H, stay = 0, pre = 1.0;
        suf[H] = 1.0;
        for (int32_t j = H - 1; j >= 0; j--) suf[j] = suf[j + 1] * ph[j];
        for (int32_t j = 0; j < H; j++) {
            stay += (double)h->size[j] / G * pre * suf[j + 1];
            pre *= ph[j];
        }
        *cross = T * (1.0 - stay);
    }
    if (tokens) *tokens = T;
    if (!c->have_a2a) return 0;

    /* units: hosts when there are two or more, else GPUs */
    const int by_host = H >= 2;
    double sumP = 0;
    if (by_host) sumP = all;
    else
        for (int32_t g = 0; g < G; g++) sumP += 1.0 - pg[g];
    const double b = c->token_bytes;
    double D = 0;
    for (int32_t g = 0; g < G; g++) {
        double Pu = by_host ? 1.0 - ph[h->host[g]] : 1.0 - pg[g];
        double Gu = by_host ? (double)h->size[h->host[g]] : 1.0;
        double sent = b * T / G * (sumP - Pu);
        double recv = b * T * (1.0 - Gu / G) * Pu / Gu;
        D = fmax(D, gem__a2a_time(c->p, g, fmax(sent, recv)));
    }
    return 2 * D;
}

gem_status_t gem__cross_host_fraction(const gem_profile_t *p, const gem_trace_t *t,
                                      const gem_mapping_t *m, const gem_options_t *opts,
                                      double *fraction)
{
    gem_status_t st = gem__check_shapes(p, t, m);
    if (st) return st;
    if ((st = gem_trace_validate(t))) return st;
    gem__comm c;
    if ((st = gem__comm_init(&c, p, opts, 0))) {
        gem__comm_free(&c);
        return st;
    }
    double *scratch = gem__array(gem__comm_scratch(&c), sizeof *scratch);
    if (!scratch) {
        gem__comm_free(&c);
        return GEM_ERR_NO_MEMORY;
    }
    double cross = 0, all = 0;
    for (int64_t s = 0; s < t->num_steps; s++)
        for (int32_t l = 0; l < t->num_layers; l++) {
            double cr, se;
            gem__comm_layer(&c, &m->layers[l], gem__trace_row(t, s, l), t->num_experts, scratch,
                            &cr, &se);
            cross += cr;
            all += se;
        }
    *fraction = all > 0 ? cross / all : 0;
    free(scratch);
    gem__comm_free(&c);
    return GEM_OK;
}

/* ---- the plan --------------------------------------------------------------------------------- */

void gem__beyond_free(gem__beyond *b)
{
    if (b->sub)
        for (int32_t h = 0; h < b->cm.hosts.H; h++) gem_profile_destroy(b->sub[h]);
    if (b->sub_gpus)
        for (int32_t h = 0; h < b->cm.hosts.H; h++) free(b->sub_gpus[h]);
    free(b->sub);
    free(b->sub_gpus);
    free(b->speed);
    gem__comm_free(&b->cm);
}

/* A profile of some of p's GPUs (curves, overheads, reading rules). */
static gem_status_t gem__profile_subset(const gem_profile_t *p, const int32_t *gpus, int32_t n,
                                        gem_profile_t **out)
{
    gem_profile_t *q = NULL;
    gem_status_t st = gem_profile_create(&q, n);
    if (!st) st = gem_profile_set_interpolation(q, p->interpolation);
    if (!st) st = gem_profile_set_cost_model(q, p->cost_model);
    for (int32_t j = 0; j < n && !st; j++) {
        const gem__gpu *u = &p->gpus[gpus[j]];
        st = gem_profile_set_curve(q, j, u->curve.k, u->curve.tokens, u->curve.latency, u->curve.cv);
        if (!st) st = gem_profile_set_overhead(q, j, u->overhead);
    }
    if (st) {
        gem_profile_destroy(q);
        return st;
    }
    *out = q;
    return GEM_OK;
}

gem_status_t gem__beyond_init(gem__beyond *b, const gem_profile_t *p, const gem_options_t *opts)
{
    const int32_t G = p->num_gpus;
    gem_status_t st = gem__comm_init(&b->cm, p, opts, b->comm);
    if (st) return st;
    b->speed = gem__array((size_t)G, sizeof *b->speed);
    if (!b->speed) return GEM_ERR_NO_MEMORY;
    if ((st = gem_profile_speeds(p, b->speed, (size_t)G))) return st;
    const int32_t H = b->cm.hosts.H;
    if (!b->topology || H < 2) return GEM_OK;
    b->sub = gem__array((size_t)H, sizeof *b->sub);
    b->sub_gpus = gem__array((size_t)H, sizeof *b->sub_gpus);
    if (!b->sub || !b->sub_gpus) return GEM_ERR_NO_MEMORY;
    for (int32_t h = 0; h < H && !st; h++) {
        b->sub_gpus[h] = gem__array((size_t)b->cm.hosts.size[h], sizeof **b->sub_gpus);
        if (!b->sub_gpus[h]) return GEM_ERR_NO_MEMORY;
        int32_t n = 0;
        for (int32_t g = 0; g < G; g++)
            if (b->cm.hosts.host[g] == h) b->sub_gpus[h][n++] = g;
        st = gem__profile_subset(p, b->sub_gpus[h], n, &b->sub[h]);
    }
    return st;
}

/* ---- topology-aware placement of one layer -------------------------------------------------- */

typedef struct {
    int32_t E, H;
    size_t S;
    int32_t *host;            /* [E] host of each expert */
    int32_t *cap;             /* [H] experts each host takes */
    double *tgt;              /* [H] share of the speed */
    double *w;                /* [H] 1 - G_h / G */
    double *load;             /* [H] mean tokens */
    double *mean;             /* [E] */
    double *r;                /* [E][S] 1 - q_e: a token does not pick e */
    double *ph;               /* [H][S] product of r over the host's experts */
    double limit;             /* largest load / tgt allowed */
} gem__split;

static void gem__split_free(gem__split *sp)
{
    free(sp->host), free(sp->cap), free(sp->tgt), free(sp->w), free(sp->load), free(sp->mean);
    free(sp->r), free(sp->ph);
}

static double gem__split_ratio(const gem__split *sp, int32_t h, double load)
{
    return sp->tgt[h] > 0 ? load / sp->tgt[h] : (load > 0 ? INFINITY : 0);
}

/* Change of the expected cross-host sends if experts a (on ha) and b (on hb) swapped:
 * P_h = 1 - ph, so each host's term changes by w (ph - ph'). */
static double gem__split_delta(const gem__split *sp, int32_t a, int32_t b)
{
    const size_t S = sp->S;
    const int32_t ha = sp->host[a], hb = sp->host[b];
    const double *ra = sp->r + (size_t)a * S, *rb = sp->r + (size_t)b * S;
    const double *A = sp->ph + (size_t)ha * S, *B = sp->ph + (size_t)hb * S;
    double d = 0;
    for (size_t s = 0; s < S; s++) {
        if (ra[s] == rb[s]) continue;
        double f = rb[s] / ra[s];
        d += sp->w[ha] * (A[s] - A[s] * f) + sp->w[hb] * (B[s] - B[s] / f);
    }
    return d;
}

/* The hosts' products from scratch (after swaps, so that rounding does not pile up). */
static void gem__split_products(gem__split *sp)
{
    const size_t S = sp->S;
    for (size_t i = 0; i < (size_t)sp->H * S; i++) sp->ph[i] = 1.0;
    for (int32_t e = 0; e < sp->E; e++)
        for (size_t s = 0; s < S; s++) sp->ph[(size_t)sp->host[e] * S + s] *= sp->r[(size_t)e * S + s];
}

static void gem__split_swap(gem__split *sp, int32_t a, int32_t b)
{
    const size_t S = sp->S;
    const int32_t ha = sp->host[a], hb = sp->host[b];
    for (size_t s = 0; s < S; s++) {
        double f = sp->r[(size_t)b * S + s] / sp->r[(size_t)a * S + s];
        sp->ph[(size_t)ha * S + s] *= f;
        sp->ph[(size_t)hb * S + s] /= f;
    }
    sp->load[ha] += sp->mean[b] - sp->mean[a];
    sp->load[hb] += sp->mean[a] - sp->mean[b];
    sp->host[a] = hb;
    sp->host[b] = ha;
}

static int gem__cmp_desc_mean(const void *x, const void *y, void *arg);

/* Splits the layer's experts over the hosts (see the file comment). */
static gem_status_t gem__split_layer(const gem__map_ctx *ctx, const gem__beyond *b, int32_t layer,
                                     gem__split *sp)
{
    const gem__hosts *hs = &b->cm.hosts;
    const int32_t E = ctx->num_experts, H = hs->H, G = ctx->num_gpus;
    const size_t S = (size_t)ctx->num_steps;
    memset(sp, 0, sizeof *sp);
    sp->E = E, sp->H = H, sp->S = S;
    sp->host = gem__array((size_t)E, sizeof *sp->host);
    sp->cap = gem__array((size_t)H, sizeof *sp->cap);
    sp->tgt = gem__array((size_t)H, sizeof *sp->tgt);
    sp->w = gem__array((size_t)H, sizeof *sp->w);
    sp->load = gem__array((size_t)H, sizeof *sp->load);
    sp->mean = gem__array((size_t)E, sizeof *sp->mean);
    sp->r = gem__array((size_t)E * S, sizeof *sp->r);
    sp->ph = gem__array((size_t)H * S, sizeof *sp->ph);
    int32_t *order = gem__array((size_t)E, sizeof *order);
    if (!sp->host || !sp->cap || !sp->tgt || !sp->w || !sp->load || !sp->mean || !sp->r ||
        !sp->ph || !order) {
        free(order);
        gem__split_free(sp);
        return GEM_ERR_NO_MEMORY;
    }
    double speed = 0;
    for (int32_t g = 0; g < G; g++) {
        sp->cap[hs->host[g]] += b->base[g];
        sp->tgt[hs->host[g]] += b->speed[g];
        speed += b->speed[g];
    }
    for (int32_t h = 0; h < H; h++) {
        sp->tgt[h] /= speed;
        sp->w[h] = 1.0 - (double)hs->size[h] / G;
    }
    for (size_t s = 0; s < S; s++) {
        const double *row = gem__trace_row(ctx->trace, (int64_t)s, layer);
        double N = 0;
        for (int32_t e = 0; e < E; e++) N += row[e];
        for (int32_t e = 0; e < E; e++) {
            double q = N > 0 ? row[e] * b->cm.k / N : 0;
            sp->r[(size_t)e * S + s] = 1.0 - (q < GEM__Q_MAX ? q : GEM__Q_MAX);
            sp->mean[e] += row[e] / (double)S;
        }
    }
    /* heaviest first to the host with room whose load per speed stays least */
    for (int32_t e = 0; e < E; e++) order[e] = e;
    qsort_r(order, (size_t)E, sizeof *order, gem__cmp_desc_mean, sp->mean);
    int32_t *used = gem__array((size_t)H, sizeof *used);
    if (!used) { free(order); gem__split_free(sp); return GEM_ERR_NO_MEMORY; }
    double total = 0;
    for (int32_t i = 0; i < E; i++) {
        int32_t e = order[i], best = -1;
        double bv = INFINITY;
        for (int32_t h = 0; h < H; h++) {
            if (used[h] >= sp->cap[h]) continue;
            double v = gem__split_ratio(sp, h, sp->load[h] + sp->mean[e]);
            if (best < 0 || v < bv) best = h, bv = v;
        }
        if (best < 0) { /* the base slots add up to E, so this cannot happen */
            free(used), free(order), gem__split_free(sp);
            return gem__fail(GEM_ERR_INTERNAL, "topology: layer %d: no host has room for "
                             "expert %d", (int)layer, (int)e);
        }
        sp->host[e] = best;
        used[best]++;
        sp->load[best] += sp->mean[e];
        total += sp->mean[e];
    }
    free(used);
    gem__split_products(sp);
    double worst = 0;
    for (int32_t h = 0; h < H; h++) worst = fmax(worst, gem__split_ratio(sp, h, sp->load[h]));
    sp->limit = fmax(worst, (1.0 + GEM__TOPO_SLACK) * total);

    /* swaps that lower the cross-host sends within the balance limit; best partner per
     * expert, heaviest experts first */
    for (int pass = 0, improved = 1; improved && pass < GEM__TOPO_PASSES; pass++) {
        improved = 0;
        for (int32_t i = 0; i < E; i++) {
            int32_t a = order[i], bb = -1;
            double bd = -1e-12 * (double)S;
            for (int32_t j = 0; j < E; j++) {
                int32_t c = order[j];
                if (sp->host[c] == sp->host[a] || (sp->mean[a] == 0 && sp->mean[c] == 0)) continue;
                double la = sp->load[sp->host[a]] - sp->mean[a] + sp->mean[c];
                double lc = sp->load[sp->host[c]] - sp->mean[c] + sp->mean[a];
                if (gem__split_ratio(sp, sp->host[a], la) > sp->limit ||
                    gem__split_ratio(sp, sp->host[c], lc) > sp->limit)
                    continue;
                double d = gem__split_delta(sp, a, c);
                if (d < bd) bd = d, bb = c;
            }
            if (bb >= 0) {
                gem__split_swap(sp, a, bb);
                improved = 1;
            }
        }
        gem__split_products(sp);
    }
    free(order);
    return GEM_OK;
}

static int gem__cmp_desc_mean(const void *x, const void *y, void *arg)
{
    const double *m = arg;
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    if (m[a] != m[b]) return m[a] < m[b] ? 1 : -1;
    return (a > b) - (a < b);
}

/* Places the experts of host h on its GPUs with the inner policy, into out. */
static gem_status_t gem__place_host(const gem__map_ctx *ctx, const gem__beyond *b, int32_t layer,
                                    const gem__split *sp, int32_t h, gem__layer_map *out)
{
    const int32_t E = ctx->num_experts, Gh = b->cm.hosts.size[h];
    const int64_t S = ctx->num_steps;
    int32_t *ex = gem__array((size_t)sp->cap[h] + 1, sizeof *ex);
    int32_t *slots = gem__array((size_t)Gh, sizeof *slots);
    double *row = gem__array((size_t)sp->cap[h] + 1, sizeof *row);
    gem_trace_t *t = NULL;
    gem_classification_t *cls = NULL;
    gem_options_t *own = NULL;
    gem__layer_map lm = {0, 0, NULL};
    gem_status_t st = (!ex || !slots || !row) ? GEM_ERR_NO_MEMORY : GEM_OK;
    int32_t n = 0;
    if (!st)
        for (int32_t e = 0; e < E; e++)
            if (sp->host[e] == h) ex[n++] = e;
    if (st || n == 0) goto done;
    for (int32_t j = 0; j < Gh; j++) slots[j] = b->base[b->sub_gpus[h][j]];
    if ((st = gem_trace_create(&t, 1, n))) goto done;
    for (int64_t s = 0; s < S && !st; s++) {
        const double *full = gem__trace_row(ctx->trace, s, layer);
        for (int32_t i = 0; i < n; i++) row[i] = full[ex[i]];
        st = gem_trace_set(t, s, 0, row, (size_t)n);
    }
    if (!st && b->inner == gem__policy_gem) st = gem_classify_experts(t, ctx->opts, &cls);
    /* the call's time limit is shared by every (layer, host) sub-problem a thread runs */
    int64_t ms = gem__opt_int(ctx->opts, GEM_OPT_TIME_LIMIT_MS);
    if (!st && ms > 0) {
        int64_t threads = gem__opt_threads(ctx->opts), L = ctx->num_layers;
        int64_t per = ((L + threads - 1) / threads) * b->cm.hosts.H;
        if (!(st = gem_options_clone(ctx->opts, &own)))
            st = gem_options_set_int(own, GEM_OPT_TIME_LIMIT_MS, ms / per > 0 ? ms / per : 1);
    }
    if (st) goto done;
    gem__map_ctx sub = {
        .profile = b->sub[h], .trace = t, .opts = own ? own : ctx->opts, .cls = cls, .num_gpus = Gh,
        .num_layers = 1, .num_experts = n, .num_steps = S, .slots = slots,
    };
    if ((st = b->inner(&sub, 0, &lm))) goto done;
    for (size_t i = 0; i < lm.n && !st; i++)
        st = gem__layer_map_add(out, ex[lm.p[i].expert], b->sub_gpus[h][lm.p[i].gpu],
                                lm.p[i].share);
done:
    free(lm.p);
    gem_options_destroy(own);
    gem_classification_destroy(cls);
    gem_trace_destroy(t);
    free(ex), free(slots), free(row);
    return st;
}

/* Compute plus all-to-all time of a layer map over the trace (sum over steps). */
static gem_status_t gem__layer_cost(const gem__map_ctx *ctx, const gem__beyond *b, int32_t layer,
                                    const gem__layer_map *lm, double *cost)
{
    gem__lstate st;
    gem_status_t s2 = gem__lstate_init(&st, ctx->profile, ctx->trace, layer);
    if (s2) return s2;
    double *scratch = gem__array(gem__comm_scratch(&b->cm), sizeof *scratch);
    if (!scratch) s2 = GEM_ERR_NO_MEMORY;
    if (!s2) s2 = gem__lstate_set(&st, lm);
    if (!s2) {
        double c = st.obj;
        for (int64_t s = 0; s < ctx->num_steps; s++)
            c += gem__comm_layer(&b->cm, lm, gem__trace_row(ctx->trace, s, layer),
                                 ctx->num_experts, scratch, NULL, NULL);
        *cost = c;
    }
    free(scratch);
    gem__lstate_free(&st);
    return s2;
}

static gem_status_t gem__topo_layer(const gem__map_ctx *ctx, const gem__beyond *b, int32_t layer,
                                    gem__layer_map *out)
{
    gem__split sp;
    gem_status_t st = gem__split_layer(ctx, b, layer, &sp);
    if (st) return st;
    for (int32_t h = 0; h < b->cm.hosts.H && !st; h++) st = gem__place_host(ctx, b, layer, &sp, h, out);
    gem__split_free(&sp);
    if (st || !b->comm) return st;
    /* judged by compute + all-to-all: keep the plain placement when it is better */
    gem__layer_map plain = {0, 0, NULL};
    double c_topo = 0, c_plain = 0;
    if (!(st = b->inner(ctx, layer, &plain)) && !(st = gem__layer_cost(ctx, b, layer, out, &c_topo)) &&
        !(st = gem__layer_cost(ctx, b, layer, &plain, &c_plain)) && c_plain < c_topo)
        st = gem__layer_map_copy(out, &plain);
    free(plain.p);
    return st;
}

gem_status_t gem__policy_beyond(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out)
{
    const gem__beyond *b = ((const gem__beyond_ctx *)ctx)->plan;
    if (!b || !b->inner || !b->base)
        return gem__fail(GEM_ERR_INTERNAL, "gem__policy_beyond: no plan");
    gem__map_ctx base = *ctx;
    base.slots = b->base;
    gem_status_t st;
    if (b->topology && b->cm.hosts.H >= 2) st = gem__topo_layer(&base, b, layer, out);
    else st = b->inner(&base, layer, out);
    if (!st && b->R > 0) st = gem__replicate_layer(ctx, layer, out, b->R, b->rule);
    return st;
}
