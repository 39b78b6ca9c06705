/* test_io_mapping.c - SPEC 5 mapping files: reading, each malformed case by its status and
 * message, and exact round trips.
 *
 * Status choice (documented in io_mapping.c): an expert or GPU id outside its range is
 * GEM_ERR_OUT_OF_RANGE, as for gem_mapping_add; every other malformed placement (wrong type,
 * share outside (0, 1], duplicate, unplaced expert, shares not summing to 1) is
 * GEM_ERR_INVALID_INPUT. */
#include "testutil.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gem_status_t parse(const char *text, gem_mapping_t **m)
{
    *m = NULL;
    return gem_mapping_parse(text, strlen(text), m);
}

/* A 2-GPU, 2-layer, 3-expert mapping whose layers are given as text. */
static gem_status_t parse_layers(const char *layers)
{
    char text[2048];
    snprintf(text, sizeof text, "{\"format\":\"gem-mapping\",\"version\":1,\"num_gpus\":2,"
             "\"num_layers\":2,\"num_experts\":3,\"layers\":[%s]}", layers);
    gem_mapping_t *m = NULL;
    gem_status_t st = parse(text, &m);
    if (st) assert_null(m);
    gem_mapping_destroy(m);
    return st;
}

#define LAYER_OK "{\"placements\":[[0,0,1],[1,1,1],[2,0,1]]}"

static void test_reads_valid_file(void **state)
{
    (void)state;
    const char *text =
        "{\"format\": \"gem-mapping\", \"version\": 1, \"num_gpus\": 4, \"num_layers\": 2,\n"
        " \"num_experts\": 3, \"policy\": \"gem\", \"extra\": {\"ignored\": true},\n"
        " \"layers\": [\n"
        "  {\"placements\": [[0, 2, 1.0], [1, 0, 1], [2, 3, 0.6], [2, 1, 0.4]]},\n"
        "  {\"placements\": [[2, 0, 1.0], [1, 1, 1.0], [0, 2, 0.5], [0, 3, 0.5]], \"note\": 1}\n"
        " ]}\n";
    gem_mapping_t *m;
    assert_ok(parse(text, &m));
    int32_t G, L, E;
    assert_ok(gem_mapping_shape(m, &G, &L, &E));
    assert_true(G == 4 && L == 2 && E == 3);
    const char *pol;
    assert_ok(gem_mapping_get_policy_name(m, &pol));
    assert_string_equal(pol, "gem");
    size_t n;
    assert_ok(gem_mapping_num_placements(m, 0, &n));
    assert_int_equal(n, 4);
    int32_t e, g;
    double w;
    assert_ok(gem_mapping_get(m, 0, 3, &e, &g, &w));
    assert_true(e == 2 && g == 1 && w == 0.4);
    assert_ok(gem_mapping_expert_gpu(m, 1, 2, &g));
    assert_int_equal(g, 0);
    assert_ok(gem_mapping_validate(m));
    gem_mapping_destroy(m);
    /* no policy: none kept */
    assert_ok(parse("{\"format\":\"gem-mapping\",\"version\":1,\"num_gpus\":1,\"num_layers\":1,"
                    "\"num_experts\":1,\"policy\":null,\"layers\":[{\"placements\":[[0,0,1]]}]}", &m));
    assert_ok(gem_mapping_get_policy_name(m, &pol));
    assert_null(pol);
    gem_mapping_destroy(m);
}

static void test_header_errors(void **state)
{
    (void)state;
    gem_mapping_t *m;
    assert_gem(GEM_ERR_INVALID_INPUT, parse("{\"format\":\"gem-profile\",\"version\":1}", &m));
    assert_error_has("format");
    assert_gem(GEM_ERR_VERSION, parse("{\"format\":\"gem-mapping\",\"version\":2}", &m));
    assert_error_has("version 2");
    assert_gem(GEM_ERR_INVALID_INPUT, parse("{\"format\":\"gem-mapping\",\"version\":\"x\"}", &m));
    const char *fmt = "{\"format\":\"gem-mapping\",\"version\":1,\"num_gpus\":%s,\"num_layers\":1,"
                      "\"num_experts\":1,\"layers\":[{\"placements\":[[0,0,1]]}]}";
    char text[512];
    snprintf(text, sizeof text, fmt, "0");
    assert_gem(GEM_ERR_INVALID_INPUT, parse(text, &m));
    assert_error_has("num_gpus");
    snprintf(text, sizeof text, fmt, "1.5");
    assert_gem(GEM_ERR_INVALID_INPUT, parse(text, &m));
    snprintf(text, sizeof text, fmt, "\"2\"");
    assert_gem(GEM_ERR_INVALID_INPUT, parse(text, &m));
    snprintf(text, sizeof text, fmt, "70000");
    assert_gem(GEM_ERR_LIMIT, parse(text, &m));
    snprintf(text, sizeof text, fmt, "1");
    assert_ok(parse(text, &m));
    gem_mapping_destroy(m);
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-mapping\",\"version\":1,\"num_gpus\":1,\"num_layers\":1}", &m));
    assert_error_has("num_experts: missing");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_layers(LAYER_OK));
    assert_error_has("layers: 1 entries, num_layers is 2");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-mapping\",\"version\":1,\"num_gpus\":1,\"num_layers\":1,"
                     "\"num_experts\":1,\"policy\":3,\"layers\":[{\"placements\":[[0,0,1]]}]}", &m));
    assert_error_has("policy");
    assert_null(m);
}

static void test_placement_errors(void **state)
{
    (void)state;
    assert_ok(parse_layers(LAYER_OK "," LAYER_OK));
    assert_gem(GEM_ERR_INVALID_INPUT, parse_layers(LAYER_OK ",[]"));
    assert_error_has("layers[1]: expected an object");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_layers(LAYER_OK ",{\"placement\":[]}"));
    assert_error_has("layers[1].placements");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_layers(LAYER_OK ",{\"placements\":[[0,0,1],[1,1],[2,0,1]]}"));
    assert_error_has("layers[1].placements[1]: expected [expert, gpu, share]");
    /* ids out of range */
    assert_gem(GEM_ERR_OUT_OF_RANGE,
               parse_layers(LAYER_OK ",{\"placements\":[[0,0,1],[1,1,1],[3,0,1]]}"));
    assert_error_has("layers[1].placements[2][0] (expert)");
    assert_gem(GEM_ERR_OUT_OF_RANGE,
               parse_layers(LAYER_OK ",{\"placements\":[[0,0,1],[1,2,1],[2,0,1]]}"));
    assert_error_has("layers[1].placements[1][1] (gpu)");
    assert_gem(GEM_ERR_OUT_OF_RANGE,
               parse_layers(LAYER_OK ",{\"placements\":[[-1,0,1],[1,1,1],[2,0,1]]}"));
    /* wrong types */
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_layers(LAYER_OK ",{\"placements\":[[0.5,0,1],[1,1,1],[2,0,1]]}"));
    assert_error_has("not an integer");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_layers(LAYER_OK ",{\"placements\":[[0,0,\"1\"],[1,1,1],[2,0,1]]}"));
    assert_error_has("(share): expected a number");
    /* shares */
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_layers(LAYER_OK ",{\"placements\":[[0,0,0],[0,1,1],[1,1,1],[2,0,1]]}"));
    assert_error_has("outside (0, 1]");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_layers(LAYER_OK ",{\"placements\":[[0,0,1.5],[1,1,1],[2,0,1]]}"));
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_layers(LAYER_OK ",{\"placements\":[[0,0,0.5],[0,1,0.4],[1,1,1],[2,0,1]]}"));
    assert_error_has("layers[1]");
    assert_error_has("sum to 0.9");
    /* within 1e-9 is fine */
    assert_ok(parse_layers(LAYER_OK ",{\"placements\":[[0,0,0.5],[0,1,0.5000000001],[1,1,1],"
                           "[2,0,1]]}"));
    /* duplicate (expert, gpu) */
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_layers(LAYER_OK ",{\"placements\":[[0,0,0.5],[1,1,1],[0,0,0.5],[2,0,1]]}"));
    assert_error_has("layers[1].placements[2]: expert 0 is already on gpu 0 (placements[0])");
    /* unplaced expert */
    assert_gem(GEM_ERR_INVALID_INPUT, parse_layers(LAYER_OK ",{\"placements\":[[0,0,1],[2,0,1]]}"));
    assert_error_has("expert 1 has no placement");
    /* syntax, truncation */
    assert_gem(GEM_ERR_INVALID_INPUT, parse_layers(LAYER_OK ",{\"placements\":[[0,0,1],]}"));
    assert_error_has("line 1");
    const char *whole = "{\"format\":\"gem-mapping\",\"version\":1,\"num_gpus\":1,\"num_layers\":1,"
                        "\"num_experts\":1,\"layers\":[{\"placements\":[[0,0,1]]}]}";
    gem_mapping_t *m = NULL;
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_parse(whole, strlen(whole) - 3, &m));
    assert_null(m);
}

static void assert_mappings_equal(const gem_mapping_t *a, const gem_mapping_t *b)
{
    assert_int_equal(a->num_gpus, b->num_gpus);
    assert_int_equal(a->num_layers, b->num_layers);
    assert_int_equal(a->num_experts, b->num_experts);
    if (!a->policy || !b->policy) assert_ptr_equal(a->policy, b->policy);
    else assert_string_equal(a->policy, b->policy);
    for (int32_t l = 0; l < a->num_layers; l++) {
        assert_int_equal(a->layers[l].n, b->layers[l].n);
        for (size_t i = 0; i < a->layers[l].n; i++) {
            const gem__placement *x = &a->layers[l].p[i], *y = &b->layers[l].p[i];
            assert_true(x->expert == y->expert && x->gpu == y->gpu && x->share == y->share);
        }
    }
}

static void test_round_trip_exact(void **state)
{
    (void)state;
    gem_mapping_t *m = NULL, *u = NULL, *v = NULL;
    assert_ok(gem_mapping_create(&m, 3, 3, 4));
    assert_ok(gem_mapping_set_policy_name(m, "speed \"aware\" \xce\xbb"));
    for (int32_t l = 0; l < 3; l++)
        for (int32_t e = 0; e < 4; e++) {
            if (e == 1) {
                /* three replicas whose shares need 17 digits */
                assert_ok(gem_mapping_add(m, l, e, 0, 1.0 / 3.0));
                assert_ok(gem_mapping_add(m, l, e, 2, 1.0 / 3.0));
                assert_ok(gem_mapping_add(m, l, e, 1, 1.0 - 2.0 / 3.0));
            } else if (e == 2) {
                assert_ok(gem_mapping_add(m, l, e, (l + 1) % 3, 0.1));
                assert_ok(gem_mapping_add(m, l, e, l, 0.9));
            } else {
                assert_ok(gem_mapping_add(m, l, e, (e + l) % 3, 1.0));
            }
        }
    char *s1 = NULL, *s2 = NULL;
    assert_ok(gem_mapping_to_string(m, &s1));
    assert_ok(parse(s1, &u));
    assert_mappings_equal(m, u);
    assert_ok(gem_mapping_to_string(u, &s2));
    assert_string_equal(s1, s2);
    char *path = tu_temp_path(".json");
    assert_ok(gem_mapping_write(u, path));
    assert_ok(gem_mapping_read(path, &v));
    assert_mappings_equal(m, v);
    unlink(path);
    free(path);
    gem_free(s1);
    gem_free(s2);
    gem_mapping_destroy(m);
    gem_mapping_destroy(u);
    gem_mapping_destroy(v);
}

static void test_exact_text(void **state)
{
    (void)state;
    gem_mapping_t *m = NULL;
    assert_ok(gem_mapping_create(&m, 2, 2, 2));
    assert_ok(gem_mapping_add(m, 0, 0, 1, 1));
    assert_ok(gem_mapping_add(m, 0, 1, 0, 1));
    assert_ok(gem_mapping_add(m, 1, 0, 0, 0.25));
    assert_ok(gem_mapping_add(m, 1, 0, 1, 0.75));
    assert_ok(gem_mapping_add(m, 1, 1, 1, 1));
    char *s = NULL;
    assert_ok(gem_mapping_to_string(m, &s));
    assert_string_equal(s, "{\n"
                           "  \"format\": \"gem-mapping\",\n"
                           "  \"version\": 1,\n"
                           "  \"num_gpus\": 2,\n"
                           "  \"num_layers\": 2,\n"
                           "  \"num_experts\": 2,\n"
                           "  \"layers\": [\n"
                           "    {\"placements\": [[0, 1, 1], [1, 0, 1]]},\n"
                           "    {\"placements\": [[0, 0, 0.25], [0, 1, 0.75], [1, 1, 1]]}\n"
                           "  ]\n"
                           "}\n");
    gem_free(s);
    gem_mapping_destroy(m);
}

static void test_files_and_refusals(void **state)
{
    (void)state;
    gem_mapping_t *m = NULL;
    assert_gem(GEM_ERR_IO, gem_mapping_read("/nonexistent/mapping.json", &m));
    assert_error_has("/nonexistent/mapping.json");
    assert_null(m);
    char *path = tu_write_temp("{\"format\":\"gem-mapping\",\n\"version\":1,\n\"num_gpus\":}", ".json");
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_read(path, &m));
    assert_error_has(path);
    assert_error_has("line 3");
    unlink(path);
    free(path);
    /* the writer refuses a mapping that would not read back, and writes nothing */
    assert_ok(gem_mapping_create(&m, 2, 1, 2));
    assert_ok(gem_mapping_add(m, 0, 0, 0, 1));
    char *s = NULL;
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_to_string(m, &s));
    assert_error_has("expert 1 has no placement");
    assert_null(s);
    char *target = tu_temp_path(".json");
    assert_gem(GEM_ERR_INVALID_INPUT, gem_mapping_write(m, target));
    assert_null(tu_read_file(target));
    assert_ok(gem_mapping_add(m, 0, 1, 1, 1));
    char *bad_dir = tu_temp_path("-missing/m.json");
    assert_gem(GEM_ERR_IO, gem_mapping_write(m, bad_dir));
    free(bad_dir);
    free(target);
    gem_mapping_destroy(m);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    const char *text = "{\"format\":\"gem-mapping\",\"version\":1,\"num_gpus\":2,\"num_layers\":2,"
                       "\"num_experts\":3,\"policy\":\"p\",\"layers\":[" LAYER_OK ","
                       "{\"placements\":[[0,0,0.5],[0,1,0.5],[1,0,1],[2,1,1]]}]}";
    int n;
    for (n = 1; n < 10000; n++) {
        gem_mapping_t *m = NULL;
        char *s = NULL;
        gem__inject_alloc_failure(n);
        gem_status_t st = parse(text, &m);
        if (!st) {
            st = gem_mapping_to_string(m, &s);
            gem_free(s);
            gem_mapping_destroy(m);
        }
        gem__inject_alloc_failure(0);
        if (st == GEM_OK) break;
        assert_int_equal(st, GEM_ERR_NO_MEMORY);
    }
    assert_true(n > 3 && n < 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_valid_file),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_placement_errors),
        cmocka_unit_test(test_round_trip_exact),
        cmocka_unit_test(test_exact_text),
        cmocka_unit_test(test_files_and_refusals),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
