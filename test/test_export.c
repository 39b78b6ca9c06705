/* test_export.c - engine exports of a hand-made mapping, compared with the exact expected text,
 * and the refusals (unequal slots, unequal replica shares, invalid mappings). */
#include "testutil.h"
#include "internal.h"

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

static void test_alloc_failures(void **state)
{
    (void)state;
    gem_mapping_t *m = replicated_mapping(0.5);
    for (int f = 0; f < 3; f++) {
        int n;
        for (n = 1; n < 1000; n++) {
            char *s = NULL;
            gem__inject_alloc_failure(n);
            gem_status_t st = gem_mapping_export_string(m, (gem_export_format_t)f, &s);
            gem__inject_alloc_failure(0);
            gem_free(s);
            if (st == GEM_OK) break;
            assert_int_equal(st, GEM_ERR_NO_MEMORY);
            assert_null(s);
        }
        assert_true(n > 1 && n < 1000);
    }
    gem_mapping_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sglang),
        cmocka_unit_test(test_eplb),
        cmocka_unit_test(test_trtllm),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
