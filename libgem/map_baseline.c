/*
 * map_baseline.c - the baseline placement policies: contiguous, round_robin, balanced,
 * speed_aware and eplb (DeepSeek's EPLB rule with replicas).
 *
 * Each fills one layer (see gem__map_ctx in internal.h) and respects ctx->slots. Ties are
 * always broken towards the lowest expert id and then the lowest GPU id, so the results are
 * reproducible without any randomness.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers -------------------------------------------------------------------------- */

typedef struct {
    double load;
    int32_t expert;
    int32_t copy;
} gem__item;

/* Sorts items heaviest first, keeping the given order among equal loads (a stable bottom-up
 * merge sort; callers list items by expert id and copy number, so ties go to the lowest
 * id). tmp has room for n items. Inline comparisons: this runs once per layer and policy. */
static void gem__sort_items(gem__item *a, gem__item *tmp, size_t n)
{
    gem__item *src = a, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) dst[k++] = src[j].load > src[i].load ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        gem__item *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

/* Total load of every expert of a layer over the whole trace. */
static void gem__layer_totals(const gem__map_ctx *ctx, int32_t layer, double *restrict tot)
{
    const int32_t E = ctx->num_experts;
    memset(tot, 0, (size_t)E * sizeof *tot);
    for (int64_t s = 0; s < ctx->num_steps; s++) {
        const double *restrict row = gem__trace_row(ctx->trace, s, layer);
        for (int32_t e = 0; e < E; e++) tot[e] += row[e];
    }
}

/* Experts of a layer, heaviest total load first (ties: lowest id). items and tmp [E]. */
static void gem__experts_by_load(const gem__map_ctx *ctx, const double *tot, gem__item *items,
                                 gem__item *tmp)
{
    for (int32_t e = 0; e < ctx->num_experts; e++) items[e] = (gem__item){tot[e], e, 0};
    gem__sort_items(items, tmp, (size_t)ctx->num_experts);
}

static gem_status_t gem__no_slot(int32_t layer, int32_t expert)
{
    return gem__fail(GEM_ERR_INFEASIBLE, "layer %d: no free slot left for expert %d", (int)layer,
                     (int)expert);
}

/* Min-heap of GPU ids keyed by (key[g], g): the least loaded GPU, ties to the lowest id. */
typedef struct {
    int32_t *a;
    int32_t n;
    const double *key;
} gem__gheap;

static int gem__gless(const gem__gheap *h, int32_t x, int32_t y)
{
    return h->key[x] < h->key[y] || (h->key[x] == h->key[y] && x < y);
}

static void gem__gheap_push(gem__gheap *h, int32_t g)
{
    int32_t i = h->n++;
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (!gem__gless(h, g, h->a[parent])) break;
        h->a[i] = h->a[parent];
        i = parent;
    }
    h->a[i] = g;
}

static int32_t gem__gheap_pop(gem__gheap *h)
{
    int32_t top = h->a[0], last = h->a[--h->n], i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && gem__gless(h, h->a[c + 1], h->a[c])) c++;
        if (!gem__gless(h, h->a[c], last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n > 0) h->a[i] = last;
    return top;
}

/* ---- contiguous and round_robin -------------------------------------------------------------- */

/* Experts in id order fill GPU 0's slots, then GPU 1's, ...: expert e lands on GPU
 * floor(e * G / E) when G divides E, the engines' default layout. */
gem_status_t gem__policy_contiguous(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out)
{
    int32_t g = 0, used = 0;
    for (int32_t e = 0; e < ctx->num_experts; e++) {
        while (g < ctx->num_gpus && used >= ctx->slots[g]) g++, used = 0;
        if (g == ctx->num_gpus) return gem__no_slot(layer, e);
        gem_status_t st = gem__layer_map_add(out, e, g, 1.0);
        if (st) return st;
        used++;
    }
    return GEM_OK;
}

/* Expert e on GPU e mod G; a full GPU passes the expert on to the next one with room. */
gem_status_t gem__policy_round_robin(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out)
{
    const int32_t G = ctx->num_gpus;
    int32_t *used = gem__array((size_t)G, sizeof *used);
    if (!used) return GEM_ERR_NO_MEMORY;
    gem_status_t st = GEM_OK;
    for (int32_t e = 0; e < ctx->num_experts && !st; e++) {
        int32_t g = e % G, tries = 0;
        while (tries < G && used[g] >= ctx->slots[g]) g = (g + 1) % G, tries++;
        if (tries == G) st = gem__no_slot(layer, e);
        else if (!(st = gem__layer_map_add(out, e, g, 1.0))) used[g]++;
    }
    free(used);
    return st;
}

/* ---- balanced -------------------------------------------------------------------------------- */

/* Speed-unaware greedy (LPT): heaviest expert first onto the GPU with the least assigned load
 * that still has a free slot. */
gem_status_t gem__policy_balanced(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out)
{
    const int32_t G = ctx->num_gpus, E = ctx->num_experts;
    double *tot = gem__array((size_t)E, sizeof *tot);
    double *load = gem__array((size_t)G, sizeof *load);
    int32_t *used = gem__array((size_t)G, sizeof *used);
    int32_t *heap = gem__array((size_t)G, sizeof *heap);
    gem__item *items = gem__array(2 * (size_t)E, sizeof *items);
    gem_status_t st = GEM_OK;
    if (!tot || !load || !used || !heap || !items) { st = GEM_ERR_NO_MEMORY; goto done; }
    gem__layer_totals(ctx, layer, tot);
    gem__experts_by_load(ctx, tot, items, items + E);
    gem__gheap h = {heap, 0, load};
    for (int32_t g = 0; g < G; g++)
        if (ctx->slots[g] > 0) gem__gheap_push(&h, g);
    for (int32_t i = 0; i < E && !st; i++) {
        if (h.n == 0) { st = gem__no_slot(layer, items[i].expert); break; }
        int32_t g = gem__gheap_pop(&h);
        if ((st = gem__layer_map_add(out, items[i].expert, g, 1.0))) break;
        load[g] += items[i].load;
        if (++used[g] < ctx->slots[g]) gem__gheap_push(&h, g);
    }
done:
    free(tot), free(load), free(used), free(heap), free(items);
    return st;
}

/* ---- speed_aware ----------------------------------------------------------------------------- */

/* As balanced, but each expert goes where the GPU's predicted finish time after taking it is
 * smallest, each GPU read through its own curve at the experts' mean loads per step:
 * c_g + sum f_g(mean_e) under per_expert, c_g + f_g(sum mean_e) under aggregate. */
gem_status_t gem__policy_speed_aware(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out)
{
    const gem_profile_t *p = ctx->profile;
    const int32_t G = ctx->num_gpus, E = ctx->num_experts;
    const int aggregate = p->cost_model == GEM_COST_AGGREGATE;
    double *tot = gem__array((size_t)E, sizeof *tot);
    double *pred = gem__array((size_t)G, sizeof *pred);
    double *sum = gem__array((size_t)G, sizeof *sum);
    int32_t *used = gem__array((size_t)G, sizeof *used);
    gem__item *items = gem__array(2 * (size_t)E, sizeof *items);
    gem_status_t st = GEM_OK;
    if (!tot || !pred || !sum || !used || !items) { st = GEM_ERR_NO_MEMORY; goto done; }
    gem__layer_totals(ctx, layer, tot);
    gem__experts_by_load(ctx, tot, items, items + E);
    for (int32_t g = 0; g < G; g++) pred[g] = p->gpus[g].overhead;
    const double S = (double)ctx->num_steps;
    for (int32_t i = 0; i < E; i++) {
        double mean = items[i].load / S;
        int32_t best = -1;
        double best_t = INFINITY;
        for (int32_t g = 0; g < G; g++) {
            if (used[g] >= ctx->slots[g]) continue;
            double t = aggregate ? p->gpus[g].overhead + gem__latency(p, g, sum[g] + mean)
                                 : pred[g] + gem__latency(p, g, mean);
            if (best < 0 || t < best_t) best = g, best_t = t;
        }
        if (best < 0) { st = gem__no_slot(layer, items[i].expert); break; }
        if ((st = gem__layer_map_add(out, items[i].expert, best, 1.0))) break;
        pred[best] = best_t;
        sum[best] += mean;
        used[best]++;
    }
done:
    free(tot), free(pred), free(sum), free(used), free(items);
    return st;
}

/* ---- eplb ------------------------------------------------------------------------------------ */

/* Max-heap of experts keyed by load per copy (ties: lowest id). */
typedef struct {
    int32_t *a;
    int32_t n;
    const double *tot;
    const int32_t *copies;
} gem__eheap;

static int gem__eless(const gem__eheap *h, int32_t x, int32_t y) /* x before y */
{
    double kx = h->tot[x] / h->copies[x], ky = h->tot[y] / h->copies[y];
    return kx > ky || (kx == ky && x < y);
}

static void gem__eheap_sift_down(gem__eheap *h, int32_t i)
{
    int32_t v = h->a[i];
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && gem__eless(h, h->a[c + 1], h->a[c])) c++;
        if (!gem__eless(h, h->a[c], v)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    h->a[i] = v;
}

/* Gives the R extra copies one at a time to the expert with the highest load per copy; an
 * expert stops at G copies (no GPU may hold two). */
static gem_status_t gem__eplb_replicate(const gem__map_ctx *ctx, int32_t layer, const double *tot,
                                        int32_t *copies, int64_t R)
{
    const int32_t E = ctx->num_experts, G = ctx->num_gpus;
    int32_t *heap = gem__array((size_t)E, sizeof *heap);
    if (!heap) return GEM_ERR_NO_MEMORY;
    gem__eheap h = {heap, 0, tot, copies};
    for (int32_t e = 0; e < E; e++) copies[e] = 1;
    if (G > 1)
        for (int32_t e = 0; e < E; e++) heap[h.n++] = e;
    for (int32_t i = h.n / 2 - 1; i >= 0; i--) gem__eheap_sift_down(&h, i);
    for (int64_t r = 0; r < R; r++) {
        if (h.n == 0) {
            free(heap);
            return gem__fail(GEM_ERR_INFEASIBLE,
                             "layer %d: %lld redundant slots exceed %d copies per expert",
                             (int)layer, (long long)R, (int)G);
        }
        int32_t e = heap[0];
        if (++copies[e] >= G) heap[0] = heap[--h.n];
        if (h.n > 0) gem__eheap_sift_down(&h, 0);
    }
    free(heap);
    return GEM_OK;
}

typedef struct {
    const gem__map_ctx *ctx;
    int32_t *copies;          /* [E] */
    int32_t *where_off;       /* [E + 1] offsets into where */
    int32_t *where;           /* GPUs holding each expert's placed copies */
    int32_t *nplaced;         /* [E] */
    int32_t *gpu_off;         /* [G + 1] offsets into gpu_items */
    int32_t *gpu_items;       /* items on each GPU, in placement order */
    int32_t *used;            /* [G] */
    double *load;             /* [G] */
    gem__item *items;
} gem__pack;

static int gem__holds(const gem__pack *pk, int32_t e, int32_t g)
{
    for (int32_t i = 0; i < pk->nplaced[e]; i++)
        if (pk->where[pk->where_off[e] + i] == g) return 1;
    return 0;
}

static void gem__pack_place(gem__pack *pk, int32_t item, int32_t g)
{
    int32_t e = pk->items[item].expert;
    pk->where[pk->where_off[e] + pk->nplaced[e]++] = g;
    pk->gpu_items[pk->gpu_off[g] + pk->used[g]++] = item;
    pk->load[g] += pk->items[item].load;
}

/* Every GPU with room already holds a copy of the item's expert: move some copy y from a GPU
 * k without that expert to a GPU h with room (h must not hold y's expert), and put the item
 * on k. With slot counts that differ by at most one such a pair always exists (k holds at
 * least as many experts as h, h's include the item's expert, k's do not). Picks the pair
 * that keeps max(load_h, load_k) smallest. */
static gem_status_t gem__pack_repair(gem__pack *pk, int32_t layer, int32_t item)
{
    const gem__map_ctx *ctx = pk->ctx;
    const int32_t G = ctx->num_gpus;
    const int32_t x = pk->items[item].expert;
    const double wx = pk->items[item].load;
    int32_t bh = -1, bk = -1, bpos = -1;
    double bscore = INFINITY;
    for (int32_t h = 0; h < G; h++) {
        if (pk->used[h] >= ctx->slots[h]) continue;
        for (int32_t k = 0; k < G; k++) {
            if (k == h || gem__holds(pk, x, k)) continue;
            for (int32_t i = 0; i < pk->used[k]; i++) {
                const gem__item *y = &pk->items[pk->gpu_items[pk->gpu_off[k] + i]];
                if (gem__holds(pk, y->expert, h)) continue;
                double score = fmax(pk->load[h] + y->load, pk->load[k] - y->load + wx);
                if (score < bscore) bscore = score, bh = h, bk = k, bpos = i;
            }
        }
    }
    if (bh < 0)
        return gem__fail(GEM_ERR_INFEASIBLE,
                         "layer %d: cannot place a copy of expert %d without two copies on one GPU",
                         (int)layer, (int)x);
    /* move y from bk to bh */
    int32_t *slot = &pk->gpu_items[pk->gpu_off[bk] + bpos];
    int32_t yi = *slot;
    int32_t ye = pk->items[yi].expert;
    for (int32_t i = 0; i < pk->nplaced[ye]; i++)
        if (pk->where[pk->where_off[ye] + i] == bk) pk->where[pk->where_off[ye] + i] = bh;
    pk->gpu_items[pk->gpu_off[bh] + pk->used[bh]++] = yi;
    pk->load[bh] += pk->items[yi].load;
    pk->load[bk] -= pk->items[yi].load;
    /* the item takes y's place on bk */
    *slot = item;
    pk->where[pk->where_off[x] + pk->nplaced[x]++] = bk;
    pk->load[bk] += wx;
    return GEM_OK;
}

/* Packs the copies, heaviest first, onto the least-loaded GPU with a free slot that does not
 * hold the same expert yet. */
static gem_status_t gem__eplb_pack(gem__pack *pk, int32_t layer, int32_t n_items, int32_t *heap,
                                   int32_t *stash)
{
    const gem__map_ctx *ctx = pk->ctx;
    gem__gheap h = {heap, 0, pk->load};
    for (int32_t g = 0; g < ctx->num_gpus; g++)
        if (ctx->slots[g] > 0) gem__gheap_push(&h, g);
    for (int32_t it = 0; it < n_items; it++) {
        int32_t e = pk->items[it].expert, ns = 0, g = -1;
        while (h.n > 0) {
            int32_t c = gem__gheap_pop(&h);
            if (!gem__holds(pk, e, c)) { g = c; break; }
            stash[ns++] = c;
        }
        if (g >= 0) {
            gem__pack_place(pk, it, g);
            if (pk->used[g] < ctx->slots[g]) stash[ns++] = g;
        } else {
            if (ns == 0) return gem__no_slot(layer, e);
            gem_status_t st = gem__pack_repair(pk, layer, it);
            if (st) return st;
            ns = 0; /* loads changed: rebuild the heap from scratch */
            h.n = 0;
            for (int32_t c = 0; c < ctx->num_gpus; c++)
                if (pk->used[c] < ctx->slots[c]) stash[ns++] = c;
        }
        for (int32_t i = 0; i < ns; i++) gem__gheap_push(&h, stash[i]);
    }
    return GEM_OK;
}

gem_status_t gem__policy_eplb(const gem__map_ctx *ctx, int32_t layer, gem__layer_map *out)
{
    const int32_t G = ctx->num_gpus, E = ctx->num_experts;
    int64_t total_slots = 0;
    for (int32_t g = 0; g < G; g++) total_slots += ctx->slots[g];
    if (total_slots < E)
        return gem__fail(GEM_ERR_INFEASIBLE, "layer %d: %lld slots for %d experts", (int)layer,
                         (long long)total_slots, (int)E);
    const int64_t R = total_slots - E;
    const size_t n_max = (size_t)total_slots;
    gem__pack pk = {.ctx = ctx};
    double *tot = gem__array((size_t)E, sizeof *tot);
    pk.copies = gem__array((size_t)E, sizeof *pk.copies);
    pk.where_off = gem__array((size_t)E + 1, sizeof *pk.where_off);
    pk.where = gem__array(n_max, sizeof *pk.where);
    pk.nplaced = gem__array((size_t)E, sizeof *pk.nplaced);
    pk.gpu_off = gem__array((size_t)G + 1, sizeof *pk.gpu_off);
    pk.gpu_items = gem__array(n_max, sizeof *pk.gpu_items);
    pk.used = gem__array((size_t)G, sizeof *pk.used);
    pk.load = gem__array((size_t)G, sizeof *pk.load);
    pk.items = gem__array(2 * n_max, sizeof *pk.items); /* and merge-sort room */
    int32_t *heap = gem__array((size_t)G, sizeof *heap);
    int32_t *stash = gem__array((size_t)G, sizeof *stash);
    gem_status_t st = GEM_OK;
    if (!tot || !pk.copies || !pk.where_off || !pk.where || !pk.nplaced || !pk.gpu_off ||
        !pk.gpu_items || !pk.used || !pk.load || !pk.items || !heap || !stash) {
        st = GEM_ERR_NO_MEMORY;
        goto done;
    }
    gem__layer_totals(ctx, layer, tot);
    if ((st = gem__eplb_replicate(ctx, layer, tot, pk.copies, R))) goto done;

    int32_t n = 0;
    for (int32_t e = 0; e < E; e++) {
        pk.where_off[e + 1] = pk.where_off[e] + pk.copies[e];
        for (int32_t c = 0; c < pk.copies[e]; c++)
            pk.items[n++] = (gem__item){tot[e] / pk.copies[e], e, c};
    }
    for (int32_t g = 0; g < G; g++) pk.gpu_off[g + 1] = pk.gpu_off[g] + ctx->slots[g];
    gem__sort_items(pk.items, pk.items + n_max, (size_t)n);
    if ((st = gem__eplb_pack(&pk, layer, n, heap, stash))) goto done;

    /* GPU by GPU, in the order the copies were placed; equal shares */
    for (int32_t g = 0; g < G && !st; g++)
        for (int32_t i = 0; i < pk.used[g] && !st; i++) {
            int32_t e = pk.items[pk.gpu_items[pk.gpu_off[g] + i]].expert;
            st = gem__layer_map_add(out, e, g, pk.copies[e] == 1 ? 1.0 : 1.0 / pk.copies[e]);
        }
done:
    free(tot), free(pk.copies), free(pk.where_off), free(pk.where), free(pk.nplaced);
    free(pk.gpu_off), free(pk.gpu_items), free(pk.used), free(pk.load), free(pk.items);
    free(heap), free(stash);
    return st;
}
