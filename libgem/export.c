/*
 * export.c - a mapping in the formats serving engines load at start-up.
 *
 * The engines number physical expert slots GPU by GPU: GPU g owns slots g*S .. g*S+S-1, with
 * the same S for every GPU and layer, and split an expert's tokens equally among its replicas.
 * A mapping that needs anything else (unequal slots, unequal replica shares) is refused with
 * GEM_ERR_NOT_SUPPORTED rather than exported into something that would run differently from
 * what was evaluated. Within a GPU, slots are ordered by expert id so that the output is
 * deterministic.
 *
 * Layers: engines count the model's decoder layers, dense ones included (DeepSeek-V3 has 3
 * dense layers first, so SGLang wants 61 rows where the mapping has 58 MoE layers).
 * GEM_OPT_FIRST_DENSE_LAYERS = D makes the mapping's layer l the model's layer D + l:
 * TensorRT-LLM's keys are shifted, and the SGLang and EPLB tables, which have one row per
 * model layer, start with D rows for the dense layers. Those rows hold the trivial layout,
 * slot j -> expert j mod E, the one SGLang itself starts from (--init-expert-location
 * trivial): the engine never routes a token through a dense layer, but it still derives its
 * expert-to-slot tables from every row, and a row that left an expert without a slot (all
 * zeros, as the recorder's logical_count has there) would give that expert no replica to
 * dispatch to. Every expert has a slot in it because a valid mapping has at least E slots per
 * layer.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GEM__PUTS(b, lit) gem__buf_append((b), (lit), sizeof(lit) - 1)

/* Physical layout of every layer: phy[l][slot] = expert, with slots ordered GPU by GPU and
 * by expert id within a GPU. */
typedef struct {
    int32_t L, E, G, S;   /* S: slots per GPU */
    int32_t D;            /* dense layers before the first MoE layer (rows of `trivial`) */
    int32_t *phy;         /* [L][G*S] */
    int32_t *trivial;     /* [G*S]: slot j -> expert j mod E, the rows of the dense layers */
    int32_t max_replicas; /* over every expert of every row, the trivial one included */
} gem__layout;

static const char *gem__format_name(gem_export_format_t f)
{
    switch (f) {
    case GEM_EXPORT_SGLANG: return "SGLang";
    case GEM_EXPORT_EPLB: return "EPLB";
    case GEM_EXPORT_TRTLLM: return "TensorRT-LLM";
    }
    return "unknown";
}

static int gem__placement_cmp(const void *a, const void *b)
{
    const gem__placement *x = a, *y = b;
    if (x->gpu != y->gpu) return x->gpu < y->gpu ? -1 : 1;
    return (x->expert > y->expert) - (x->expert < y->expert);
}

/* Checks what the engines can express and builds the slot layout, with D dense layers first. */
static gem_status_t gem__build_layout(const gem_mapping_t *m, const char *engine, int32_t D,
                                      gem__layout *out)
{
    gem_status_t st = gem_mapping_validate(m);
    if (st) return gem__fail_context(st, "cannot export an invalid mapping");
    int32_t G = m->num_gpus, L = m->num_layers, E = m->num_experts;
    int32_t S = -1, max_rep = 1;
    size_t width = 0;
    int32_t *slots = gem__array((size_t)G, sizeof *slots);
    int32_t *copies = gem__array((size_t)E, sizeof *copies);
    gem__placement *sorted = NULL;
    int32_t *phy = NULL, *trivial = NULL;
    if (!slots || !copies) { st = GEM_ERR_NO_MEMORY; goto done; }
    /* Pass 1: equal slots everywhere, equal replica shares. */
    for (int32_t l = 0; l < L && !st; l++) {
        const gem__layer_map *lm = &m->layers[l];
        memset(slots, 0, (size_t)G * sizeof *slots);
        memset(copies, 0, (size_t)E * sizeof *copies);
        for (size_t i = 0; i < lm->n; i++) slots[lm->p[i].gpu]++, copies[lm->p[i].expert]++;
        if (S < 0) S = slots[0];
        for (int32_t g = 0; g < G && !st; g++)
            if (slots[g] != S)
                st = gem__fail(GEM_ERR_NOT_SUPPORTED, "%s export needs the same number of expert "
                               "slots on every GPU in every layer: layer %d gpu %d has %d, "
                               "layer 0 gpu 0 has %d", engine, (int)l, (int)g, (int)slots[g],
                               (int)S);
        for (size_t i = 0; i < lm->n && !st; i++) {
            const gem__placement *p = &lm->p[i];
            double equal = 1.0 / copies[p->expert];
            if (fabs(p->share - equal) > 1e-9)
                st = gem__fail(GEM_ERR_NOT_SUPPORTED, "%s export: layer %d expert %d has %d "
                               "replicas and gives gpu %d a share of %.12g, but the engine splits "
                               "an expert's tokens equally among its replicas (%.12g each)",
                               engine, (int)l, (int)p->expert, (int)copies[p->expert],
                               (int)p->gpu, p->share, equal);
            if (copies[p->expert] > max_rep) max_rep = copies[p->expert];
        }
    }
    if (st) goto done;
    /* Pass 2: the layout. G*S = placements per layer, which exist in memory already. */
    width = (size_t)G * (size_t)S;
    phy = gem__array((size_t)L * width, sizeof *phy);
    sorted = gem__array(width, sizeof *sorted);
    trivial = gem__array(width, sizeof *trivial);
    if (!phy || !sorted || !trivial) { st = GEM_ERR_NO_MEMORY; goto done; }
    for (size_t j = 0; j < width; j++) trivial[j] = (int32_t)(j % (size_t)E);
    /* The trivial row gives expert 0 ceil(G*S / E) slots; some expert of every MoE layer has
     * as many already (pigeonhole), so this changes nothing but keeps log2phy's bound local. */
    if (D > 0 && (int32_t)((width + (size_t)E - 1) / (size_t)E) > max_rep)
        max_rep = (int32_t)((width + (size_t)E - 1) / (size_t)E);
    for (int32_t l = 0; l < L; l++) {
        const gem__layer_map *lm = &m->layers[l];
        memcpy(sorted, lm->p, width * sizeof *sorted);
        qsort(sorted, width, sizeof *sorted, gem__placement_cmp);
        for (size_t j = 0; j < width; j++) phy[(size_t)l * width + j] = sorted[j].expert;
    }
    *out = (gem__layout){L, E, G, S, D, phy, trivial, max_rep};
    phy = trivial = NULL;
done:
    free(slots);
    free(copies);
    free(sorted);
    free(phy);
    free(trivial);
    return st;
}

static void gem__put_ints(gem__buf *b, const int32_t *x, size_t n)
{
    GEM__PUTS(b, "[");
    for (size_t i = 0; i < n; i++) gem__buf_printf(b, i ? ", %d" : "%d", (int)x[i]);
    GEM__PUTS(b, "]");
}

static size_t gem__width(const gem__layout *y) { return (size_t)y->G * (size_t)y->S; }

/* Rows of the model's layers: D dense, then the L MoE layers. */
static int64_t gem__rows(const gem__layout *y) { return (int64_t)y->D + y->L; }

/* Slot-to-expert row of model layer r. */
static const int32_t *gem__row(const gem__layout *y, int64_t r)
{
    if (r < y->D) return y->trivial;
    return y->phy + (size_t)(r - y->D) * gem__width(y);
}

/* "key": [ one array per model layer ] for the slot-to-expert table. */
static void gem__put_phy(gem__buf *b, const gem__layout *y, const char *key)
{
    gem__buf_printf(b, "  \"%s\": [\n", key);
    for (int64_t r = 0; r < gem__rows(y); r++) {
        GEM__PUTS(b, "    ");
        gem__put_ints(b, gem__row(y, r), gem__width(y));
        if (r + 1 < gem__rows(y)) GEM__PUTS(b, ",\n");
        else GEM__PUTS(b, "\n");
    }
    GEM__PUTS(b, "  ]");
}

static void gem__put_sglang(gem__buf *b, const gem__layout *y)
{
    GEM__PUTS(b, "{\n");
    gem__put_phy(b, y, "physical_to_logical_map");
    GEM__PUTS(b, "\n}\n");
}

/* DeepSeek's EPLB tensors: phy2log [D+L][G*S], log2phy [D+L][E][max replicas] padded with -1
 * (slots of each expert ascending), logcnt [D+L][E]; the dense rows follow the trivial row. */
static gem_status_t gem__put_eplb(gem__buf *b, const gem__layout *y)
{
    size_t W = gem__width(y), R = (size_t)y->max_replicas;
    int32_t *log2phy = gem__array((size_t)y->E * R, sizeof *log2phy);
    int32_t *cnt = gem__array((size_t)y->E, sizeof *cnt);
    if (!log2phy || !cnt) {
        free(log2phy);
        free(cnt);
        return GEM_ERR_NO_MEMORY;
    }
    GEM__PUTS(b, "{\n");
    gem__put_phy(b, y, "phy2log");
    GEM__PUTS(b, ",\n  \"log2phy\": [\n");
    const int64_t rows = gem__rows(y);
    for (int64_t l = 0; l < rows; l++) {
        for (size_t i = 0; i < (size_t)y->E * R; i++) log2phy[i] = -1;
        memset(cnt, 0, (size_t)y->E * sizeof *cnt);
        const int32_t *phy = gem__row(y, l);
        for (size_t j = 0; j < W; j++) {
            int32_t e = phy[j];
            log2phy[(size_t)e * R + (size_t)cnt[e]++] = (int32_t)j;
        }
        GEM__PUTS(b, "    [");
        for (int32_t e = 0; e < y->E; e++) {
            if (e) GEM__PUTS(b, ", ");
            gem__put_ints(b, log2phy + (size_t)e * R, R);
        }
        if (l + 1 < rows) GEM__PUTS(b, "],\n");
        else GEM__PUTS(b, "]\n");
    }
    GEM__PUTS(b, "  ],\n  \"logcnt\": [\n");
    for (int64_t l = 0; l < rows; l++) {
        memset(cnt, 0, (size_t)y->E * sizeof *cnt);
        const int32_t *phy = gem__row(y, l);
        for (size_t j = 0; j < W; j++) cnt[phy[j]]++;
        GEM__PUTS(b, "    ");
        gem__put_ints(b, cnt, (size_t)y->E);
        if (l + 1 < rows) GEM__PUTS(b, ",\n");
        else GEM__PUTS(b, "\n");
    }
    GEM__PUTS(b, "  ]\n}\n");
    free(log2phy);
    free(cnt);
    return GEM_OK;
}

/* TensorRT-LLM's MoeLoadBalancerConfig YAML (moe_config.load_balancer): num_slots and, per
 * MoE layer (keyed by the model's layer index), the expert of every slot; every successive
 * num_slots/ep_size slots belong to one rank. Dense layers have no entry. layer_updates_per_iter
 * 0 keeps the placement static. */
static void gem__put_trtllm(gem__buf *b, const gem__layout *y)
{
    gem__buf_printf(b, "# TensorRT-LLM MoE load balancer configuration written by libgem %s:\n"
                    "# %d GPUs x %d slots. The keys of initial_global_assignments are the model's\n"
                    "# layers %d..%d: MoE layers 0..%d after %d dense layer%s\n"
                    "# (GEM_OPT_FIRST_DENSE_LAYERS, gem export --first-dense-layers).\n",
                    GEM_VERSION_STRING, (int)y->G, (int)y->S, (int)y->D,
                    (int)(y->D + y->L - 1), (int)(y->L - 1), (int)y->D, y->D == 1 ? "" : "s");
    gem__buf_printf(b, "num_slots: %zu\n", gem__width(y));
    GEM__PUTS(b, "initial_global_assignments:\n");
    for (int64_t r = y->D; r < gem__rows(y); r++) {
        gem__buf_printf(b, "  %lld: ", (long long)r);
        gem__put_ints(b, gem__row(y, r), gem__width(y));
        GEM__PUTS(b, "\n");
    }
    GEM__PUTS(b, "layer_updates_per_iter: 0\n");
}

static gem_status_t gem__export_text(const gem_mapping_t *m, gem_export_format_t format,
                                     const gem_options_t *opts, gem__buf *b)
{
    GEM__CHECK_ARG(format == GEM_EXPORT_SGLANG || format == GEM_EXPORT_EPLB ||
                       format == GEM_EXPORT_TRTLLM,
                   "export format %d is not one of gem_export_format_t", (int)format);
    /* [0, 2^16], checked when it was set */
    const int32_t D = (int32_t)gem__opt_int(opts, GEM_OPT_FIRST_DENSE_LAYERS);
    gem__layout y;
    gem_status_t st = gem__build_layout(m, gem__format_name(format), D, &y);
    if (st) return st;
    switch (format) {
    case GEM_EXPORT_SGLANG: gem__put_sglang(b, &y); break;
    case GEM_EXPORT_EPLB: st = gem__put_eplb(b, &y); break;
    case GEM_EXPORT_TRTLLM: gem__put_trtllm(b, &y); break;
    }
    free(y.phy);
    free(y.trivial);
    if (!st && b->failed) st = gem__fail(GEM_ERR_NO_MEMORY, "out of memory exporting the mapping");
    return st;
}

GEM_API gem_status_t gem_mapping_export_string_opts(const gem_mapping_t *m,
                                                    gem_export_format_t format,
                                                    const gem_options_t *opts, char **out)
{
    gem__clear_error();
    GEM__CHECK_ARG(m && out, "gem_mapping_export_string: NULL argument");
    gem__buf b;
    gem__buf_init(&b);
    gem_status_t st = gem__export_text(m, format, opts, &b);
    if (st) {
        gem__buf_free(&b);
        return st;
    }
    *out = b.data;
    return GEM_OK;
}

GEM_API gem_status_t gem_mapping_export_opts(const gem_mapping_t *m, gem_export_format_t format,
                                             const gem_options_t *opts, const char *path)
{
    gem__clear_error();
    GEM__CHECK_ARG(m && path, "gem_mapping_export: NULL argument");
    gem__buf b;
    gem__buf_init(&b);
    gem_status_t st = gem__export_text(m, format, opts, &b);
    if (!st) st = gem__write_file_atomic(path, b.data, b.len);
    gem__buf_free(&b);
    return st;
}

GEM_API gem_status_t gem_mapping_export_string(const gem_mapping_t *m, gem_export_format_t format,
                                               char **out)
{
    gem__clear_error();
    return gem_mapping_export_string_opts(m, format, NULL, out);
}

GEM_API gem_status_t gem_mapping_export(const gem_mapping_t *m, gem_export_format_t format,
                                        const char *path)
{
    gem__clear_error();
    return gem_mapping_export_opts(m, format, NULL, path);
}
