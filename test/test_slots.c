/* test_slots.c - slots per GPU (slots.c): equal counts and their memory check, unequal counts
 * (GEM_OPT_UNEQUAL_SLOTS) that give fast GPUs more experts within memory and beat equal
 * counts in memory-bound decode, exact "bytes missing" figures when memory cannot hold every
 * expert, memory read from the profile, and which policies get unequal counts. */
#include "testutil.h"
#include "beyond.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Decode: every expert active with 1 to 3 tokens. */
static gem_trace_t *decode_trace(int64_t S, int L, int E, uint64_t seed)
{
    gem_trace_t *t = NULL;
    assert_ok(gem_trace_create(&t, L, E));
    double *row = malloc(sizeof *row * (size_t)E);
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            for (int e = 0; e < E; e++) row[e] = 1 + (double)(tu_rand(&seed) % 3);
            assert_ok(gem_trace_set(t, s, l, row, (size_t)E));
        }
    free(row);
    return t;
}

static double mean_of(const gem_profile_t *p, const gem_trace_t *t, const gem_mapping_t *m)
{
    gem_report_t *r = NULL;
    assert_ok(gem_evaluate(p, t, m, NULL, &r));
    double v;
    assert_ok(gem_report_get(r, GEM_METRIC_MEAN, &v));
    gem_report_destroy(r);
    return v;
}

static void slots_of(const gem_mapping_t *m, int32_t layer, int G, int32_t *c)
{
    for (int g = 0; g < G; g++) assert_ok(gem_mapping_gpu_slots(m, layer, g, &c[g]));
}

static gem_options_t *opts_mem(int unequal, int64_t bytes, const int64_t *mem, int G)
{
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_THREADS, 1));
    assert_ok(gem_options_set_int(o, GEM_OPT_RESTARTS, 1));
    assert_ok(gem_options_set_int(o, GEM_OPT_UNEQUAL_SLOTS, unequal));
    assert_ok(gem_options_set_int(o, GEM_OPT_EXPERT_BYTES, bytes));
    if (mem) assert_ok(gem_options_set_int_array(o, GEM_OPT_GPU_MEMORY, mem, (size_t)G));
    return o;
}

/* The decode case of the issue: one GPU 1.5x slower, every expert active. Unequal counts give
 * the slow GPU fewer experts and beat equal counts for every policy that takes them, in and
 * out of sample. */
static void test_unequal_beats_equal_in_decode(void **state)
{
    (void)state;
    const int G = 4, E = 32, L = 2;
    gem_profile_t *p = tu_profile(G, (double[]){1, 1, 1, 1.5}, 64, 4, 100, 2);
    gem_trace_t *t = decode_trace(16, L, E, 1), *next = decode_trace(16, L, E, 2);
    const int64_t mem[4] = {12 * 2 * 1000, 12 * 2 * 1000, 12 * 2 * 1000, 12 * 2 * 1000};
    const gem_policy_t pols[3] = {GEM_POLICY_BALANCED, GEM_POLICY_SPEED_AWARE, GEM_POLICY_GEM};
    for (int i = 0; i < 3; i++) {
        gem_options_t *oe = opts_mem(0, 1000, mem, G), *ou = opts_mem(1, 1000, mem, G);
        gem_mapping_t *me = NULL, *mu = NULL;
        assert_ok(gem_compute_mapping(p, t, pols[i], oe, NULL, &me));
        assert_ok(gem_compute_mapping(p, t, pols[i], ou, NULL, &mu));
        assert_ok(gem_mapping_validate(mu));
        int32_t ce[4], cu[4];
        for (int l = 0; l < L; l++) {
            slots_of(me, l, G, ce);
            slots_of(mu, l, G, cu);
            int sum = 0;
            for (int g = 0; g < G; g++) {
                assert_int_equal(ce[g], 8);
                assert_true(cu[g] <= 12); /* memory: 12 slots x 2 layers of 1000 bytes */
                sum += cu[g];
            }
            assert_int_equal(sum, E);
            /* the slow GPU holds fewer, and no GPU needs more than 900 us of weight reads
             * (9 experts x 100 us fast, 6 x 150 us slow), where 8 each take 8 x 150 us on
             * the slow one */
            for (int g = 0; g < 3; g++) {
                assert_true(cu[3] < cu[g]);
                assert_true(100 * cu[g] <= 900);
            }
            assert_true(150 * cu[3] <= 900);
        }
        assert_true(mean_of(p, t, mu) < 0.8 * mean_of(p, t, me));
        assert_true(mean_of(p, next, mu) < 0.8 * mean_of(p, next, me));
        gem_mapping_destroy(me);
        gem_mapping_destroy(mu);
        gem_options_destroy(oe);
        gem_options_destroy(ou);
    }
    gem_trace_destroy(t);
    gem_trace_destroy(next);
    gem_profile_destroy(p);
}

/* Memory caps the counts: with room for 8 experts per layer on the fast GPUs, the slow one
 * must take the rest. */
static void test_memory_caps_unequal(void **state)
{
    (void)state;
    const int G = 4, E = 32;
    gem_profile_t *p = tu_profile(G, (double[]){1, 1, 1, 1.5}, 64, 4, 100, 2);
    gem_trace_t *t = decode_trace(8, 1, E, 3);
    const int64_t mem[4] = {8 * 1000 + 999, 8 * 1000, 8 * 1000, 100000};
    gem_options_t *o = opts_mem(1, 1000, mem, G);
    gem_mapping_t *m = NULL;
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
    int32_t c[4];
    slots_of(m, 0, G, c);
    assert_true(c[0] == 8 && c[1] == 8 && c[2] == 8 && c[3] == 8);
    gem_mapping_destroy(m);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* Not enough memory for every expert: GEM_ERR_INFEASIBLE, and the message says how many bytes
 * are missing (the fewest that would make room). */
static void test_infeasible_memory(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(2, NULL, 16, 4, 10, 1);
    gem_trace_t *t = tu_trace(2, 1, 8, 20, 1);
    gem_mapping_t *m = NULL;
    /* 100 bytes per expert: 250 bytes hold 2; 8 experts need 4 more slots: 50 + 50 (the
     * remainders' top-ups) + 100 + 100 */
    const int64_t mem[2] = {250, 250};
    gem_options_t *o = opts_mem(1, 100, mem, 2);
    assert_gem(GEM_ERR_INFEASIBLE, gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
    assert_error_has("300 bytes missing");
    assert_null(m);
    /* the same with equal slots names the GPU: 4 slots of 100 bytes, 250 free */
    gem_options_destroy(o);
    o = opts_mem(0, 100, mem, 2);
    assert_gem(GEM_ERR_INFEASIBLE, gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    assert_error_has("gpu 0");
    assert_error_has("150 bytes missing");
    /* layers count: two layers need twice the memory */
    gem_options_destroy(o);
    const int64_t mem2[2] = {400, 400};
    o = opts_mem(0, 100, mem2, 2);
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    gem_mapping_destroy(m);
    m = NULL;
    gem_trace_t *t2 = tu_trace(2, 2, 8, 20, 1);
    assert_gem(GEM_ERR_INFEASIBLE, gem_compute_mapping(p, t2, GEM_POLICY_BALANCED, o, NULL, &m));
    assert_error_has("2 layers");
    /* unknown memory (-1 in the profile, no option) is unlimited */
    gem_options_destroy(o);
    o = opts_mem(1, 100, NULL, 2);
    assert_ok(gem_compute_mapping(p, t2, GEM_POLICY_GEM, o, NULL, &m));
    gem_mapping_destroy(m);
    m = NULL;
    /* a memory array of the wrong size */
    assert_ok(gem_options_set_int_array(o, GEM_OPT_GPU_MEMORY, mem, 1));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
    assert_error_has("GEM_OPT_GPU_MEMORY");
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_trace_destroy(t2);
    gem_profile_destroy(p);
}

/* Without GEM_OPT_GPU_MEMORY the profile's memory_bytes bound the counts. */
static void test_memory_from_profile(void **state)
{
    (void)state;
    const char *text =
        "{\"format\": \"gem-profile\", \"version\": 1, \"gpus\": [\n"
        " {\"id\": 0, \"memory_bytes\": 600, \"tokens\": [64], \"latency_us\": [100]},\n"
        " {\"id\": 1, \"memory_bytes\": 10000, \"tokens\": [64], \"latency_us\": [100]}]}";
    gem_profile_t *p = NULL;
    assert_ok(gem_profile_parse(text, strlen(text), &p));
    gem_trace_t *t = decode_trace(4, 1, 10, 5);
    gem_options_t *o = opts_mem(1, 100, NULL, 2);
    gem_mapping_t *m = NULL;
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    int32_t c[2];
    slots_of(m, 0, 2, c);
    assert_true(c[0] == 5 && c[1] == 5); /* equal GPUs, and GPU 0 holds up to 6 */
    gem_mapping_destroy(m);
    m = NULL;
    gem_options_destroy(o);
    o = opts_mem(0, 200, NULL, 2); /* 5 slots of 200 bytes do not fit in 600 */
    assert_gem(GEM_ERR_INFEASIBLE, gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    assert_error_has("gpu 0");
    gem_options_destroy(o);
    o = opts_mem(1, 200, NULL, 2); /* unequal: 3 + 7 fits */
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_BALANCED, o, NULL, &m));
    slots_of(m, 0, 2, c);
    assert_true(c[0] == 3 && c[1] == 7);
    gem_mapping_destroy(m);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* contiguous and round_robin keep equal counts (and eplb too); unequal counts with replicas
 * add the replicas' slots after the single copies'. */
static void test_which_policies(void **state)
{
    (void)state;
    const int G = 4, E = 16;
    gem_profile_t *p = tu_profile(G, (double[]){1, 1, 1, 2}, 64, 4, 100, 2);
    gem_trace_t *t = decode_trace(8, 1, E, 7);
    gem_options_t *o = opts_mem(1, 0, NULL, G);
    const gem_policy_t eq[3] = {GEM_POLICY_CONTIGUOUS, GEM_POLICY_ROUND_ROBIN, GEM_POLICY_EPLB};
    for (int i = 0; i < 3; i++) {
        gem_mapping_t *m = NULL;
        assert_ok(gem_compute_mapping(p, t, eq[i], o, NULL, &m));
        int32_t c[4];
        slots_of(m, 0, G, c);
        for (int g = 0; g < G; g++) assert_int_equal(c[g], 4);
        gem_mapping_destroy(m);
    }
    const gem_policy_t uneq[3] = {GEM_POLICY_BALANCED, GEM_POLICY_SPEED_AWARE, GEM_POLICY_EXACT};
    for (int i = 0; i < 3; i++) {
        gem_mapping_t *m = NULL;
        assert_ok(gem_compute_mapping(p, t, uneq[i], o, NULL, &m));
        int32_t c[4];
        slots_of(m, 0, G, c);
        assert_true(c[3] < c[0]);
        gem_mapping_destroy(m);
    }
    /* the slot vectors directly: base sums to E, full to E + R, base <= full */
    int32_t full[4], base[4];
    assert_ok(gem_options_set_int(o, GEM_OPT_REDUNDANT_SLOTS, 6));
    assert_ok(gem__slots_make(p, t, o, GEM_POLICY_GEM, full, base));
    int fs = 0, bs = 0;
    for (int g = 0; g < G; g++) {
        fs += full[g];
        bs += base[g];
        assert_true(base[g] <= full[g]);
    }
    assert_int_equal(fs, E + 6);
    assert_int_equal(bs, E);
    assert_true(full[3] < full[0]);
    gem_mapping_t *m = NULL;
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m));
    assert_ok(gem_mapping_validate(m));
    int32_t c[4];
    slots_of(m, 0, G, c);
    for (int g = 0; g < G; g++) assert_true(c[g] <= full[g]);
    gem_mapping_destroy(m);
    gem_options_destroy(o);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
}

/* Unequal counts on random shapes: valid, every expert once, within memory. */
static void test_random_shapes(void **state)
{
    (void)state;
    uint64_t st = 9;
    for (int round = 0; round < 25; round++) {
        int G = 2 + (int)(tu_rand(&st) % 5), E = G + (int)(tu_rand(&st) % 20);
        int L = 1 + (int)(tu_rand(&st) % 3);
        double sd[6];
        int64_t mem[6];
        int64_t room = 0;
        for (int g = 0; g < G; g++) {
            sd[g] = 1 + 2 * tu_uniform(&st);
            mem[g] = (int64_t)(tu_rand(&st) % (uint64_t)(E + 1)) * 10 * L + (int64_t)(tu_rand(&st) % 10);
            room += mem[g] / (10 * L);
        }
        gem_profile_t *p = tu_profile(G, sd, 16, 4, 10, 1);
        gem_trace_t *t = tu_trace(3, L, E, 40, tu_rand(&st));
        gem_options_t *o = opts_mem(1, 10, mem, G);
        gem_mapping_t *m = NULL;
        gem_status_t s = gem_compute_mapping(p, t, GEM_POLICY_GEM, o, NULL, &m);
        if (room < E) {
            assert_int_equal(s, GEM_ERR_INFEASIBLE);
            assert_error_has("bytes missing");
        } else {
            assert_ok(s);
            assert_ok(gem_mapping_validate(m));
            for (int l = 0; l < L; l++) {
                size_t n;
                assert_ok(gem_mapping_num_placements(m, l, &n));
                assert_int_equal(n, (size_t)E);
                for (int g = 0; g < G; g++) {
                    int32_t c;
                    assert_ok(gem_mapping_gpu_slots(m, l, g, &c));
                    assert_true((int64_t)c * 10 * L <= mem[g]);
                }
            }
        }
        gem_mapping_destroy(m);
        gem_options_destroy(o);
        gem_trace_destroy(t);
        gem_profile_destroy(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unequal_beats_equal_in_decode),
        cmocka_unit_test(test_memory_caps_unequal),
        cmocka_unit_test(test_infeasible_memory),
        cmocka_unit_test(test_memory_from_profile),
        cmocka_unit_test(test_which_policies),
        cmocka_unit_test(test_random_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
