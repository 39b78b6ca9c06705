/* test_export.c - engine exports of a hand-made mapping, compared with the exact expected text,
 * the refusals (unequal slots, unequal replica shares, invalid mappings), and the model's
 * dense layers (GEM_OPT_FIRST_DENSE_LAYERS): leading trivial rows, shifted TensorRT-LLM keys,
 * and SGLang's logical_count -> import -> map -> export giving back one row per model layer. */
#include "testutil.h"
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 2 GPUs x 2 slots, 2 layers of 4 experts, no replication. */
static gem_mapping_t *plain_mapping(void)
{
    gem_mapping_t *m = NULL;
    assert_ok(gem_mapping_create(&m, 2, 2, 4));
    const int gpu0[4] = {1, 0, 1, 0}, gpu1[4] = {0, 0, 1, 1};
    for (int e = 0; e < 4; e++) {
        assert_ok(gem_mapping_add(m, 0, e, gpu0[e], 1.0));
        assert_ok(gem_mapping_add(m, 1, 3 - e, gpu1[3 - e], 1.0)); /* added in another order */
    }
    return m;
}

/* 2 GPUs x 2 slots, 1 layer of 3 experts; expert 0 on both GPUs. */
static gem_mapping_t *replicated_mapping(double share0)
{
    gem_mapping_t *m = NULL;
    assert_ok(gem_mapping_create(&m, 2, 1, 3));
    assert_ok(gem_mapping_add(m, 0, 2, 1, 1.0));
    assert_ok(gem_mapping_add(m, 0, 0, 1, 1.0 - share0));
    assert_ok(gem_mapping_add(m, 0, 1, 0, 1.0));
    assert_ok(gem_mapping_add(m, 0, 0, 0, share0));
    return m;
}

static void test_sglang(void **state)
{
    (void)state;
    gem_mapping_t *m = plain_mapping();
    char *s = NULL;
    assert_ok(gem_mapping_export_string(m, GEM_EXPORT_SGLANG, &s));
    assert_string_equal(s, "{\n"
                           "  \"physical_to_logical_map\": [\n"
                           "    [1, 3, 0, 2],\n"
                           "    [0, 1, 2, 3]\n"
                           "  ]\n"
                           "}\n");
    /* to a file: the same text */
    char *path = tu_temp_path(".json");
    assert_ok(gem_mapping_export(m, GEM_EXPORT_SGLANG, path));
    char *f = tu_read_file(path);
    assert_string_equal(f, s);
    free(f);
    unlink(path);
    free(path);
    gem_free(s);
    gem_mapping_destroy(m);
}

static void test_eplb(void **state)
{
    (void)state;
    gem_mapping_t *m = replicated_mapping(0.5);
    char *s = NULL;
    assert_ok(gem_mapping_export_string(m, GEM_EXPORT_EPLB, &s));
    assert_string_equal(s, "{\n"
                           "  \"phy2log\": [\n"
                           "    [0, 1, 0, 2]\n"
                           "  ],\n"
                           "  \"log2phy\": [\n"
                           "    [[0, 2], [1, -1], [3, -1]]\n"
                           "  ],\n"
                           "  \"logcnt\": [\n"
                           "    [2, 1, 1]\n"
                           "  ]\n"
                           "}\n");
    gem_free(s);
    /* SGLang takes the same table */
    assert_ok(gem_mapping_export_string(m, GEM_EXPORT_SGLANG, &s));
    assert_non_null(strstr(s, "[0, 1, 0, 2]"));
    gem_free(s);
    gem_mapping_destroy(m);

    /* without replication every expert has one slot: log2phy rows of width 1 */
    m = plain_mapping();
    assert_ok(gem_mapping_export_string(m, GEM_EXPORT_EPLB, &s));
    assert_non_null(strstr(s, "\"log2phy\": [\n    [[2], [0], [3], [1]],\n    [[0], [1], [2], [3]]\n  ]"));
    assert_non_null(strstr(s, "\"logcnt\": [\n    [1, 1, 1, 1],\n    [1, 1, 1, 1]\n  ]"));
    gem_free(s);
    gem_mapping_destroy(m);
}

static void test_trtllm(void **state)
{
    (void)state;
    gem_mapping_t *m = plain_mapping();
    char *s = NULL;
    assert_ok(gem_mapping_export_string(m, GEM_EXPORT_TRTLLM, &s));
    /* comment lines first, then the configuration */
    const char *body = "num_slots: 4\n"
                       "initial_global_assignments:\n"
                       "  0: [1, 3, 0, 2]\n"
                       "  1: [0, 1, 2, 3]\n"
                       "layer_updates_per_iter: 0\n";
    const char *at = strstr(s, "num_slots");
    assert_non_null(at);
    assert_string_equal(at, body);
    for (const char *p = s; p < at; p = strchr(p, '\n') + 1) assert_true(*p == '#');
    gem_free(s);
    gem_mapping_destroy(m);
}

static void test_refusals(void **state)
{
    (void)state;
    char *s = NULL;
    /* unequal shares: the engines split tokens equally among replicas */
    gem_mapping_t *m = replicated_mapping(0.6);
    for (int f = 0; f < 3; f++) {
        assert_gem(GEM_ERR_NOT_SUPPORTED, gem_mapping_export_string(m, (gem_export_format_t)f, &s));
        assert_error_has("equally");
        assert_error_has("expert 0");
        assert_null(s);
    }
    char *path = tu_temp_path(".json");
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_mapping_export(m, GEM_EXPORT_SGLANG, path));
    assert_null(tu_read_file(path));
    free(path);
    gem_mapping_destroy(m);

    /* unequal slots: 2 experts on gpu 0, 1 on gpu 1 */
    assert_ok(gem_mapping_create(&m, 2, 1, 3));
    assert_ok(gem_mapping_add(m, 0, 0, 0, 1));
    assert_ok(gem_mapping_add(m, 0, 1, 0, 1));
    assert_ok(gem_mapping_add(m, 0, 2, 1, 1));
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_mapping_export_string(m, GEM_EXPORT_TRTLLM, &s));
    assert_error_has("same number of expert slots");
    assert_error_has("gpu 1 has 1");
    gem_mapping_destroy(m);

    /* equal within a layer but not across layers */
    assert_ok(gem_mapping_create(&m, 2, 2, 2));
    assert_ok(gem_mapping_add(m, 0, 0, 0, 1));
    assert_ok(gem_mapping_add(m, 0, 1, 1, 1));
    assert_ok(gem_mapping_add(m, 1, 0, 0, 0.5));
    assert_ok(gem_mapping_add(m, 1, 0, 1, 0.5));
    assert_ok(gem_mapping_add(m, 1, 1, 0, 0.5));
    assert_ok(gem_mapping_add(m, 1, 1, 1, 0.5));
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_mapping_export_string(m, GEM_EXPORT_SGLANG, &s));
    assert_error_has("layer 1");
    gem_mapping_destroy(m);

    /* an invalid mapping, a bad format, NULLs, an unwritable path */
    assert_ok(gem_mapping_create(&m, 2, 1, 2));
    assert_ok(gem_mapping_add(m, 0, 0, 0, 1));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_export_string(m, GEM_EXPORT_SGLANG, &s));
    assert_error_has("expert 1 has no placement");
    assert_ok(gem_mapping_add(m, 0, 1, 1, 1));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_mapping_export_string(m, (gem_export_format_t)7, &s));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_mapping_export_string(m, GEM_EXPORT_SGLANG, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_mapping_export_string(NULL, GEM_EXPORT_SGLANG, &s));
    char *bad = tu_temp_path("-missing/x.yaml");
    assert_gem(GEM_ERR_IO, gem_mapping_export(m, GEM_EXPORT_TRTLLM, bad));
    free(bad);
    assert_null(s);
    gem_mapping_destroy(m);
}

static gem_options_t *dense_opts(int64_t first_dense_layers)
{
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_FIRST_DENSE_LAYERS, first_dense_layers));
    return o;
}

/* Lines of s that start with prefix. */
static int count_lines(const char *s, const char *prefix)
{
    int n = 0;
    for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, strlen(prefix)) == 0;
    return n;
}

static void test_first_dense_layers(void **state)
{
    (void)state;
    gem_mapping_t *m = plain_mapping();
    gem_options_t *o = dense_opts(3);
    char *s = NULL;
    /* SGLang: 3 rows of the trivial layout, then the 2 MoE layers: 5 rows */
    assert_ok(gem_mapping_export_string_opts(m, GEM_EXPORT_SGLANG, o, &s));
    assert_string_equal(s, "{\n"
                           "  \"physical_to_logical_map\": [\n"
                           "    [0, 1, 2, 3],\n"
                           "    [0, 1, 2, 3],\n"
                           "    [0, 1, 2, 3],\n"
                           "    [1, 3, 0, 2],\n"
                           "    [0, 1, 2, 3]\n"
                           "  ]\n"
                           "}\n");
    assert_int_equal(count_lines(s, "    ["), 5);
    /* to a file: the same text */
    char *path = tu_temp_path(".json");
    assert_ok(gem_mapping_export_opts(m, GEM_EXPORT_SGLANG, o, path));
    char *f = tu_read_file(path);
    assert_string_equal(f, s);
    free(f);
    unlink(path);
    free(path);
    gem_free(s);

    /* TensorRT-LLM: the same slots under the model's layer numbers 3 and 4, dense layers have
     * no key, and no comment asks for a hand edit */
    assert_ok(gem_mapping_export_string_opts(m, GEM_EXPORT_TRTLLM, o, &s));
    const char *at = strstr(s, "num_slots");
    assert_non_null(at);
    assert_string_equal(at, "num_slots: 4\n"
                            "initial_global_assignments:\n"
                            "  3: [1, 3, 0, 2]\n"
                            "  4: [0, 1, 2, 3]\n"
                            "layer_updates_per_iter: 0\n");
    for (const char *p = s; p < at; p = strchr(p, '\n') + 1) assert_true(*p == '#');
    assert_non_null(strstr(s, "layers 3..4: MoE layers 0..1 after 3 dense layers"));
    assert_null(strstr(s, "add their count"));
    gem_free(s);
    gem_mapping_destroy(m);

    /* EPLB with replicas: 4 slots over 3 experts, so the trivial row is [0, 1, 2, 0] and expert
     * 0 has two slots there too; log2phy and logcnt follow from it */
    m = replicated_mapping(0.5);
    gem_options_destroy(o);
    o = dense_opts(2);
    assert_ok(gem_mapping_export_string_opts(m, GEM_EXPORT_EPLB, o, &s));
    assert_string_equal(s, "{\n"
                           "  \"phy2log\": [\n"
                           "    [0, 1, 2, 0],\n"
                           "    [0, 1, 2, 0],\n"
                           "    [0, 1, 0, 2]\n"
                           "  ],\n"
                           "  \"log2phy\": [\n"
                           "    [[0, 3], [1, -1], [2, -1]],\n"
                           "    [[0, 3], [1, -1], [2, -1]],\n"
                           "    [[0, 2], [1, -1], [3, -1]]\n"
                           "  ],\n"
                           "  \"logcnt\": [\n"
                           "    [2, 1, 1],\n"
                           "    [2, 1, 1],\n"
                           "    [2, 1, 1]\n"
                           "  ]\n"
                           "}\n");
    gem_free(s);
    gem_mapping_destroy(m);
    gem_options_destroy(o);
}

/* 0 (the default) and NULL options write exactly what the option-less calls write. */
static void test_first_dense_layers_default(void **state)
{
    (void)state;
    gem_mapping_t *m = replicated_mapping(0.5);
    gem_options_t *o = dense_opts(0);
    for (int f = 0; f < 3; f++) {
        char *plain = NULL, *zero = NULL, *null = NULL;
        assert_ok(gem_mapping_export_string(m, (gem_export_format_t)f, &plain));
        assert_ok(gem_mapping_export_string_opts(m, (gem_export_format_t)f, o, &zero));
        assert_ok(gem_mapping_export_string_opts(m, (gem_export_format_t)f, NULL, &null));
        assert_string_equal(plain, zero);
        assert_string_equal(plain, null);
        gem_free(plain);
        gem_free(zero);
        gem_free(null);
    }
    char *s = NULL;
    assert_ok(gem_mapping_export_string_opts(m, GEM_EXPORT_TRTLLM, o, &s));
    assert_non_null(strstr(s, "\n  0: [0, 1, 0, 2]\n"));
    assert_non_null(strstr(s, "layers 0..0: MoE layers 0..0 after 0 dense layers"));
    gem_free(s);
    gem_options_destroy(o);
    gem_mapping_destroy(m);
}

static void test_first_dense_layers_refusals(void **state)
{
    (void)state;
    gem_options_t *o = dense_opts(3);
    int64_t v = -1;
    /* outside [0, 2^16], or not an int: refused, the option unchanged */
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, GEM_OPT_FIRST_DENSE_LAYERS, -1));
    assert_error_has("first_dense_layers");
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_options_set_int(o, GEM_OPT_FIRST_DENSE_LAYERS, 65537));
    assert_error_has("outside");
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_options_set_double(o, GEM_OPT_FIRST_DENSE_LAYERS, 2.0));
    assert_error_has("type int");
    assert_ok(gem_options_get_int(o, GEM_OPT_FIRST_DENSE_LAYERS, &v));
    assert_int_equal(v, 3);
    assert_ok(gem_options_set_int(o, GEM_OPT_FIRST_DENSE_LAYERS, 65536)); /* the bound */
    /* the default of a fresh handle */
    gem_options_t *d = NULL;
    assert_ok(gem_options_create(&d));
    assert_ok(gem_options_get_int(d, GEM_OPT_FIRST_DENSE_LAYERS, &v));
    assert_int_equal(v, 0);
    gem_options_destroy(d);

    /* what the engines cannot express is refused with the offset too, and nothing written */
    gem_mapping_t *m = replicated_mapping(0.6);
    char *s = NULL;
    assert_gem(GEM_ERR_NOT_SUPPORTED,
               gem_mapping_export_string_opts(m, GEM_EXPORT_SGLANG, o, &s));
    assert_error_has("equally");
    assert_null(s);
    char *path = tu_temp_path(".json");
    assert_gem(GEM_ERR_NOT_SUPPORTED, gem_mapping_export_opts(m, GEM_EXPORT_EPLB, o, path));
    assert_null(tu_read_file(path));
    free(path);
    gem_mapping_destroy(m);
    /* NULL arguments and a bad format */
    m = plain_mapping();
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_mapping_export_string_opts(NULL, GEM_EXPORT_SGLANG, o, &s));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_mapping_export_string_opts(m, GEM_EXPORT_SGLANG, o, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_mapping_export_opts(m, GEM_EXPORT_SGLANG, o, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_mapping_export_string_opts(m, (gem_export_format_t)3, o, &s));
    assert_null(s);
    gem_mapping_destroy(m);
    gem_options_destroy(o);
}

/* Rows of key in a JSON export, each checked to have `width` entries. */
static size_t json_rows(const char *text, const char *key, size_t width)
{
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    assert_non_null(root);
    json_t *rows = json_object_get(root, key);
    assert_true(json_is_array(rows));
    size_t n = json_array_size(rows);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_array_size(json_array_get(rows, i)), width);
    json_decref(root);
    return n;
}

/* SGLang's recorder writes one logical_count row per model layer (dense ones all zero); the
 * importer drops the leading dense rows and says how many, and exports with that many first
 * dense layers have the model's row count again, the MoE rows where the recorder had them. */
static void test_sglang_round_trip_rows(void **state)
{
    (void)state;
    const char *counts = "{\"logical_count\": [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0],"
                         " [9, 1, 4, 2], [1, 7, 3, 5]]}";
    gem_trace_t *t = NULL;
    char *note = NULL;
    assert_ok(
        gem_trace_import_buffer(GEM_IMPORT_SGLANG, counts, strlen(counts), NULL, &t, &note));
    assert_non_null(strstr(note, "3 leading dense layers"));
    gem_free(note);
    int64_t S;
    int32_t L, E;
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    assert_int_equal(L, 2);
    gem_profile_t *p = tu_profile(2, NULL, 16, 4, 10, 1);
    gem_mapping_t *m = NULL;
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, NULL, NULL, &m));
    gem_options_t *o = dense_opts(3);
    char *s = NULL, *plain = NULL;
    assert_ok(gem_mapping_export_string_opts(m, GEM_EXPORT_SGLANG, o, &s));
    assert_int_equal(json_rows(s, "physical_to_logical_map", 4), 5); /* as logical_count */
    /* the MoE rows are those of the plain export, after the 3 dense ones */
    assert_ok(gem_mapping_export_string(m, GEM_EXPORT_SGLANG, &plain));
    assert_int_equal(json_rows(plain, "physical_to_logical_map", 4), 2);
    const char *moe = strstr(plain, "    [");
    assert_non_null(moe);
    assert_non_null(strstr(s, "    [0, 1, 2, 3],\n    [0, 1, 2, 3],\n    [0, 1, 2, 3],\n"));
    assert_non_null(strstr(s, moe));
    gem_free(plain);
    gem_free(s);
    assert_ok(gem_mapping_export_string_opts(m, GEM_EXPORT_EPLB, o, &s));
    assert_int_equal(json_rows(s, "phy2log", 4), 5);
    assert_int_equal(json_rows(s, "logcnt", 4), 5);
    gem_free(s);
    gem_options_destroy(o);
    gem_mapping_destroy(m);
    gem_profile_destroy(p);
    gem_trace_destroy(t);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    gem_mapping_t *m = replicated_mapping(0.5);
    gem_options_t *o = dense_opts(2);
    for (int f = 0; f < 6; f++) { /* each format without, then with dense layers */
        int n;
        for (n = 1; n < 1000; n++) {
            char *s = NULL;
            gem__inject_alloc_failure(n);
            gem_status_t st = gem_mapping_export_string_opts(m, (gem_export_format_t)(f % 3),
                                                             f < 3 ? NULL : o, &s);
            gem__inject_alloc_failure(0);
            gem_free(s);
            if (st == GEM_OK) break;
            assert_int_equal(st, GEM_ERR_NO_MEMORY);
            assert_null(s);
        }
        assert_true(n > 1 && n < 1000);
    }
    gem_options_destroy(o);
    gem_mapping_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sglang),
        cmocka_unit_test(test_eplb),
        cmocka_unit_test(test_trtllm),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_first_dense_layers),
        cmocka_unit_test(test_first_dense_layers_default),
        cmocka_unit_test(test_first_dense_layers_refusals),
        cmocka_unit_test(test_sglang_round_trip_rows),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
