/* test_import.c - importers of other tools' routing data, on small fixtures written here:
 * SGLang logical_count (aggregate and per step, dense layers), HarMoEny-style wide CSV
 * (filters, renumbering, missing rows), per-token JSONL (grouping into steps, padding, missing
 * records), and each malformed case by its status and message. */
#include "testutil.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gem_status_t import(gem_import_format_t f, const char *text, const gem_options_t *o,
                           gem_trace_t **t, char **note)
{
    *t = NULL;
    if (note) *note = NULL;
    gem_status_t st = gem_trace_import_buffer(f, text, strlen(text), o, t, note);
    if (st) {
        assert_null(*t);
        if (note) assert_null(*note);
    }
    return st;
}

static gem_status_t import_bad(gem_import_format_t f, const char *text, const gem_options_t *o)
{
    gem_trace_t *t;
    char *note;
    gem_status_t st = import(f, text, o, &t, &note);
    gem_trace_destroy(t);
    gem_free(note);
    return st;
}

static void shape_is(const gem_trace_t *t, int64_t S, int32_t L, int32_t E)
{
    int64_t s;
    int32_t l, e;
    assert_ok(gem_trace_shape(t, &s, &l, &e));
    assert_true(s == S);
    assert_int_equal(l, L);
    assert_int_equal(e, E);
    assert_ok(gem_trace_validate(t));
}

static void row_is(const gem_trace_t *t, int64_t s, int32_t l, const double *want, int E)
{
    double got[16];
    assert_ok(gem_trace_get(t, s, l, got, 16));
    for (int e = 0; e < E; e++) {
        if (got[e] != want[e])
            print_error("step %lld layer %d expert %d: %g, expected %g\n", (long long)s, (int)l, e,
                        got[e], want[e]);
        assert_true(got[e] == want[e]);
    }
}

static gem_options_t *opts(int64_t steps, int64_t batch, int64_t topk, int64_t seed)
{
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_int(o, GEM_OPT_IMPORT_STEPS, steps));
    assert_ok(gem_options_set_int(o, GEM_OPT_IMPORT_BATCH, batch));
    assert_ok(gem_options_set_int(o, GEM_OPT_IMPORT_TOPK, topk));
    assert_ok(gem_options_set_int(o, GEM_OPT_SEED, seed));
    return o;
}

/* ---- SGLang -------------------------------------------------------------------------------- */

static const char *AGG = "{\"logical_count\": [[0, 0, 0, 0], [10.0, 0, 30, 60], [5, 5, 5, 5]],"
                         " \"other\": 1}";

static void test_sglang_aggregate(void **state)
{
    (void)state;
    gem_options_t *o = opts(5, 10, 2, 7);
    gem_trace_t *t, *u;
    char *note;
    assert_ok(import(GEM_IMPORT_SGLANG, AGG, o, &t, &note));
    shape_is(t, 5, 2, 4);
    assert_non_null(strstr(note, "skipped 1 all-zero (dense) layer of 3: 0;"));
    assert_non_null(strstr(note, "1 leading dense layer: exports with GEM_OPT_FIRST_DENSE_LAYERS 1"
                                 " (gem export --first-dense-layers 1)"));
    assert_null(strstr(note, "after the first MoE layer"));
    assert_non_null(strstr(note, "aggregate"));
    assert_non_null(strstr(note, "drew 5 steps of 10 tokens"));
    assert_non_null(strstr(note, "seed 7"));
    for (int64_t s = 0; s < 5; s++)
        for (int32_t l = 0; l < 2; l++) {
            double row[4], sum = 0;
            assert_ok(gem_trace_get(t, s, l, row, 4));
            for (int e = 0; e < 4; e++) {
                sum += row[e];
                assert_true(row[e] == floor(row[e]) && row[e] <= 10); /* distinct per token */
            }
            assert_true(sum == 20);
            if (l == 0) assert_true(row[1] == 0); /* an expert with no tokens is never drawn */
        }
    /* reproducible for a seed, different for another */
    char *a, *b;
    assert_ok(gem_trace_to_string(t, &a));
    assert_ok(import(GEM_IMPORT_SGLANG, AGG, o, &u, NULL));
    assert_ok(gem_trace_to_string(u, &b));
    assert_string_equal(a, b);
    gem_free(b);
    gem_trace_destroy(u);
    assert_ok(gem_options_set_int(o, GEM_OPT_SEED, 8));
    assert_ok(import(GEM_IMPORT_SGLANG, AGG, o, &u, NULL));
    assert_ok(gem_trace_to_string(u, &b));
    assert_string_not_equal(a, b);
    gem_free(a);
    gem_free(b);
    gem_trace_destroy(u);
    gem_trace_destroy(t);
    gem_free(note);
    gem_options_destroy(o);
}

static void test_sglang_draws_follow_counts(void **state)
{
    (void)state;
    /* top-1: plain draws proportional to 10:30:60 */
    gem_options_t *o = opts(200, 50, 1, 3);
    gem_trace_t *t;
    assert_ok(import(GEM_IMPORT_SGLANG, "{\"logical_count\": [[10, 0, 30, 60]]}", o, &t, NULL));
    double tot[4] = {0};
    for (int64_t s = 0; s < 200; s++) {
        double row[4];
        assert_ok(gem_trace_get(t, s, 0, row, 4));
        for (int e = 0; e < 4; e++) tot[e] += row[e];
    }
    assert_true(tot[1] == 0);
    assert_true(fabs(tot[0] - 1000) < 250 && fabs(tot[2] - 3000) < 250 && fabs(tot[3] - 6000) < 250);
    gem_trace_destroy(t);
    /* one dominant expert: every token takes it, and one other (without replacement) */
    assert_ok(gem_options_set_int(o, GEM_OPT_IMPORT_TOPK, 2));
    assert_ok(gem_options_set_int(o, GEM_OPT_IMPORT_STEPS, 3));
    assert_ok(import(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1e12, 1, 1, 0]]}", o, &t, NULL));
    for (int64_t s = 0; s < 3; s++) {
        double row[4];
        assert_ok(gem_trace_get(t, s, 0, row, 4));
        assert_true(row[0] == 50 && row[1] + row[2] == 50 && row[3] == 0);
    }
    gem_trace_destroy(t);
    /* top-k larger than the experts with tokens: each token takes them all */
    char *note;
    assert_ok(gem_options_set_int(o, GEM_OPT_IMPORT_TOPK, 8));
    assert_ok(import(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1, 0, 2, 3]]}", o, &t, &note));
    row_is(t, 2, 0, (double[]){50, 0, 50, 50}, 4);
    assert_non_null(strstr(note, "fewer than 8"));
    gem_free(note);
    gem_trace_destroy(t);
    gem_options_destroy(o);
}

static void test_sglang_per_step(void **state)
{
    (void)state;
    gem_trace_t *t;
    char *note;
    assert_ok(import(GEM_IMPORT_SGLANG,
                     "{\"logical_count\": [[[0, 0], [1, 2], [0, 0.5]], [[0, 0], [3, 4], [0, 0]]]}",
                     NULL, &t, &note));
    shape_is(t, 2, 2, 2);
    row_is(t, 0, 0, (double[]){1, 2}, 2);
    row_is(t, 0, 1, (double[]){0, 0.5}, 2);
    row_is(t, 1, 0, (double[]){3, 4}, 2);
    row_is(t, 1, 1, (double[]){0, 0}, 2);
    assert_non_null(strstr(note, "skipped 1 all-zero (dense) layer of 3: 0;"));
    assert_non_null(strstr(note, "2 steps"));
    gem_free(note);
    gem_trace_destroy(t);
}

/* Which dense layers lead the model (what exports need back) and which do not. */
static void test_sglang_dense_layers_note(void **state)
{
    (void)state;
    gem_trace_t *t;
    char *note;
    /* layers 0, 1 dense, 2 MoE, 3 dense, 4 MoE, 5 dense */
    assert_ok(import(GEM_IMPORT_SGLANG,
                     "{\"logical_count\": [[0, 0], [0, 0], [1, 2], [0, 0], [3, 1], [0, 0]]}",
                     NULL, &t, &note));
    shape_is(t, 64, 2, 2);
    assert_non_null(strstr(note, "skipped 4 all-zero (dense) layers of 6: 0 1 3 5;"));
    assert_non_null(strstr(note, "2 leading dense layers: exports with GEM_OPT_FIRST_DENSE_LAYERS"
                                 " 2 (gem export --first-dense-layers 2)"));
    assert_non_null(strstr(note, "2 dense layers after the first MoE layer: exports number the "
                                 "layers without them"));
    gem_free(note);
    gem_trace_destroy(t);
    /* no dense layer: no word about them */
    assert_ok(import(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1, 2], [3, 1]]}", NULL, &t,
                     &note));
    assert_null(strstr(note, "dense"));
    gem_free(note);
    gem_trace_destroy(t);
}

static void test_sglang_errors(void **state)
{
    (void)state;
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1, -2]]}", NULL));
    assert_error_has("logical_count[0][1]: count -2 is negative");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1, 2, 3], [1, 2]]}", NULL));
    assert_error_has("logical_count[1]: 2 counts, the first row has 3");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1, \"2\"]]}", NULL));
    assert_error_has("logical_count[0][1]: expected a number");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[[1, 2]], [[1, 2], [3, 4]]]}", NULL));
    assert_error_has("logical_count[1]");
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(GEM_IMPORT_SGLANG, "{\"counts\": [[1]]}", NULL));
    assert_error_has("logical_count");
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": []}", NULL));
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[]]}", NULL));
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[0, 0], [0, 0]]}", NULL));
    assert_error_has("every layer is all zero");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1, 2],\n [3, NaN]]}", NULL));
    assert_error_has("line 2");
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1, 2]", NULL));
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1e308, 1e308]]}", NULL));
    assert_error_has("more than a double holds");
    gem_options_t *o = opts(100000000, 1000000000000LL, 8, 1);
    assert_gem(GEM_ERR_LIMIT, import_bad(GEM_IMPORT_SGLANG, "{\"logical_count\": [[1, 2]]}", o));
    gem_options_destroy(o);
}

/* ---- wide CSV ------------------------------------------------------------------------------ */

static const char *WIDE =
    ",dataset,iteration,layer_idx,0,1,2\r\n"
    "0,a,0,0,1,2,3\r\n"
    "1,a,0,6,4,5,6\r\n"
    "2,b,1,6,1,1,1\r\n"
    "3,b,1,0,2,2,2\r\n"
    "\r\n"
    "4,b,0,0,3,3,3\r\n"
    "5,b,0,6,4,4,4\r\n"
    "6,a,1,0,7,8,9\r\n"
    "7,a,1,6.0,0,0,0.5\r\n";

static void test_wide_csv(void **state)
{
    (void)state;
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_string(o, GEM_OPT_IMPORT_FILTER, "dataset=b"));
    gem_trace_t *t;
    char *note;
    assert_ok(import(GEM_IMPORT_WIDE_CSV, WIDE, o, &t, &note));
    shape_is(t, 2, 2, 3);
    /* steps in order of appearance (iteration 1 first), layers by id (0, 6) */
    row_is(t, 0, 0, (double[]){2, 2, 2}, 3);
    row_is(t, 0, 1, (double[]){1, 1, 1}, 3);
    row_is(t, 1, 0, (double[]){3, 3, 3}, 3);
    row_is(t, 1, 1, (double[]){4, 4, 4}, 3);
    assert_non_null(strstr(note, "4 rows skipped"));
    assert_non_null(strstr(note, "layer ids 0 6 renumbered 0..1"));
    gem_free(note);
    gem_trace_destroy(t);

    assert_ok(gem_options_set_string(o, GEM_OPT_IMPORT_FILTER, "dataset=a"));
    assert_ok(import(GEM_IMPORT_WIDE_CSV, WIDE, o, &t, NULL));
    shape_is(t, 2, 2, 3);
    row_is(t, 0, 1, (double[]){4, 5, 6}, 3);
    row_is(t, 1, 1, (double[]){0, 0, 0.5}, 3);
    gem_trace_destroy(t);

    /* without a filter the runs collide; the message suggests one */
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(GEM_IMPORT_WIDE_CSV, WIDE, NULL));
    assert_error_has("line 7: iteration 0 layer 0 repeats line 2");
    assert_error_has("GEM_OPT_IMPORT_FILTER, e.g. \"dataset=b\"");

    /* bad filters */
    assert_ok(gem_options_set_string(o, GEM_OPT_IMPORT_FILTER, "dataset"));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, import_bad(GEM_IMPORT_WIDE_CSV, WIDE, o));
    assert_ok(gem_options_set_string(o, GEM_OPT_IMPORT_FILTER, "model=x"));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, import_bad(GEM_IMPORT_WIDE_CSV, WIDE, o));
    assert_error_has("\"model\"");
    assert_ok(gem_options_set_string(o, GEM_OPT_IMPORT_FILTER, "dataset=c"));
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(GEM_IMPORT_WIDE_CSV, WIDE, o));
    assert_error_has("no row matches");
    gem_options_destroy(o);
}

static void test_wide_csv_aliases_and_quotes(void **state)
{
    (void)state;
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_string(o, GEM_OPT_IMPORT_FILTER, "run, id=r, 1"));
    const char *text = "\"run, id\",step,layer,0,1\n"
                       "\"r, 1\",0,0,1,2\n"
                       "\"r, 2\",0,0,9,9\n"
                       " \"r, 1\" , 0 , 1 , 3 , 4 \n";
    gem_trace_t *t;
    char *note;
    assert_ok(import(GEM_IMPORT_WIDE_CSV, text, o, &t, &note));
    shape_is(t, 1, 2, 2);
    row_is(t, 0, 0, (double[]){1, 2}, 2);
    row_is(t, 0, 1, (double[]){3, 4}, 2);
    assert_null(strstr(note, "renumbered"));
    gem_free(note);
    gem_trace_destroy(t);
    gem_options_destroy(o);
}

static void test_wide_csv_errors(void **state)
{
    (void)state;
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    assert_ok(gem_options_set_string(o, GEM_OPT_IMPORT_FILTER, "dataset=a"));
    /* a missing (iteration, layer) */
    assert_gem(GEM_ERR_INCOMPLETE,
               import_bad(GEM_IMPORT_WIDE_CSV, ",dataset,iteration,layer_idx,0\n0,a,0,0,1\n"
                          "1,a,0,6,1\n2,a,1,0,1\n", o));
    assert_error_has("iteration 1 has no row for layer 6");
    /* ragged, negative, not a number, bad layer */
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_WIDE_CSV, ",dataset,iteration,layer_idx,0,1\n0,a,0,0,1\n", o));
    assert_error_has("line 2: 5 fields, the header has 6");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_WIDE_CSV, ",dataset,iteration,layer_idx,0,1\n0,a,0,0,1,-1\n", o));
    assert_error_has("line 2: expert 1: count -1 is negative");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_WIDE_CSV, ",dataset,iteration,layer_idx,0,1\n0,a,0,0,1,nan\n", o));
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_WIDE_CSV, ",dataset,iteration,layer_idx,0,1\n0,a,0,0.5,1,1\n", o));
    assert_error_has("layer \"0.5\"");
    /* header problems */
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_WIDE_CSV, ",dataset,layer_idx,0,1\n0,a,0,1,1\n", NULL));
    assert_error_has("iteration (or step)");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_WIDE_CSV, ",dataset,iteration,layer\n0,a,0,0\n", NULL));
    assert_error_has("no expert columns");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(GEM_IMPORT_WIDE_CSV, "iteration,layer,0,2\n0,0,1,1\n", NULL));
    assert_error_has("expected expert 1");
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(GEM_IMPORT_WIDE_CSV, "\n\n", NULL));
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(GEM_IMPORT_WIDE_CSV, "iteration,layer,0\n", NULL));
    assert_error_has("no data rows");
    gem_options_destroy(o);
}

/* ---- per-token JSONL --------------------------------------------------------------------- */

static const char *TOKENS =
    "{\"dataset\": \"gsm8k\", \"problem_id\": 0, \"layer\": 0, \"experts\": [1, 2], \"gating_probs\": [0.6, 0.4], \"token_idx\": 0}\n"
    "{\"dataset\": \"gsm8k\", \"problem_id\": 0, \"layer\": 0, \"experts\": [0, 1], \"token_idx\": 1}\n"
    "{\"dataset\": \"gsm8k\", \"problem_id\": 0, \"layer\": 0, \"experts\": [3, 1], \"token_idx\": 2}\n"
    "\n"
    "{\"dataset\": \"gsm8k\", \"problem_id\": 0, \"layer\": 1, \"experts\": [2, 3], \"token_idx\": 0}\r\n"
    "{\"dataset\": \"gsm8k\", \"problem_id\": 0, \"layer\": 1, \"experts\": [0, 2], \"token_idx\": 1}\n"
    "{\"dataset\": \"gsm8k\", \"problem_id\": 1, \"layer\": 0, \"experts\": [1, 0], \"token_idx\": 0}\n"
    "{\"dataset\": \"gsm8k\", \"problem_id\": 1, \"layer\": 1, \"experts\": [3, -1], \"token_idx\": 0}\n"
    "{\"dataset\": \"gsm8k\", \"problem_id\": 1, \"layer\": 0, \"experts\": [2, 3], \"token_idx\": 1}\n"
    "{\"dataset\": \"gsm8k\", \"problem_id\": 1, \"layer\": 1, \"experts\": [1, 0], \"token_idx\": 1}\n";

static void test_tokens_jsonl(void **state)
{
    (void)state;
    gem_options_t *o = opts(1, 3, 2, 1);
    gem_trace_t *t;
    char *note;
    assert_ok(import(GEM_IMPORT_TOKENS_JSONL, TOKENS, o, &t, &note));
    shape_is(t, 2, 2, 4);
    row_is(t, 0, 0, (double[]){1, 3, 1, 1}, 4);
    row_is(t, 0, 1, (double[]){1, 0, 2, 1}, 4);
    row_is(t, 1, 0, (double[]){1, 1, 1, 1}, 4);
    row_is(t, 1, 1, (double[]){1, 1, 0, 1}, 4);
    assert_non_null(strstr(note, "9 records, 5 tokens in 2 steps of 3 tokens (the last has 2)"));
    assert_non_null(strstr(note, "1 (token, layer) pairs have no record"));
    assert_non_null(strstr(note, "1 negative expert ids (padding) skipped"));
    gem_free(note);
    gem_trace_destroy(t);

    /* through a file, with num_experts widening the trace */
    size_t n = strlen(TOKENS);
    char *text = malloc(n + 128);
    strcpy(text, TOKENS);
    strcat(text, "{\"problem_id\": 2, \"layer\": 1, \"experts\": [5], \"token_idx\": 0, \"num_experts\": 7}\n");
    char *path = tu_write_temp(text, ".jsonl");
    assert_ok(gem_trace_import(GEM_IMPORT_TOKENS_JSONL, path, o, &t, NULL));
    shape_is(t, 2, 2, 7);
    gem_trace_destroy(t);
    unlink(path);
    free(path);
    free(text);
    t = NULL;
    assert_gem(GEM_ERR_IO, gem_trace_import(GEM_IMPORT_TOKENS_JSONL, "/nonexistent/r.jsonl", o, &t, NULL));
    assert_error_has("/nonexistent/r.jsonl");
    assert_null(t);
    gem_options_destroy(o);
}

static void test_tokens_jsonl_positions(void **state)
{
    (void)state;
    /* token_pos restarts in every forward pass: a prefill of 2 tokens, then 2 decode passes */
    const char *text =
        "{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 0, \"experts\": [0]}\n"
        "{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 1, \"experts\": [1]}\n"
        "{\"problem_id\": 0, \"layer\": 1, \"token_pos\": 0, \"experts\": [0]}\n"
        "{\"problem_id\": 0, \"layer\": 1, \"token_pos\": 1, \"experts\": [1]}\n"
        "{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 0, \"experts\": [2]}\n"
        "{\"problem_id\": 0, \"layer\": 1, \"token_pos\": 0, \"experts\": [2]}\n"
        "{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 0, \"experts\": [1]}\n"
        "{\"problem_id\": 0, \"layer\": 1, \"token_pos\": 0, \"experts\": [0]}\n";
    gem_options_t *o = opts(1, 2, 1, 1);
    gem_trace_t *t;
    assert_ok(import(GEM_IMPORT_TOKENS_JSONL, text, o, &t, NULL));
    shape_is(t, 2, 2, 3);
    row_is(t, 0, 0, (double[]){1, 1, 0}, 3);
    row_is(t, 0, 1, (double[]){1, 1, 0}, 3);
    row_is(t, 1, 0, (double[]){0, 1, 1}, 3);
    row_is(t, 1, 1, (double[]){1, 0, 1}, 3);
    gem_trace_destroy(t);
    gem_options_destroy(o);
}

static void test_tokens_jsonl_errors(void **state)
{
    (void)state;
    const gem_import_format_t J = GEM_IMPORT_TOKENS_JSONL;
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": 0, \"experts\": [1], \"token_idx\": 0}\n\n{\"layer\": 1,\n", NULL));
    assert_error_has("line 3");
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(J, "{\"experts\": [1], \"token_idx\": 0}\n", NULL));
    assert_error_has("line 1: no \"layer\"");
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(J, "{\"layer\": 0, \"experts\": [1]}\n", NULL));
    assert_error_has("token_idx");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": -1, \"experts\": [1], \"token_idx\": 0}\n", NULL));
    assert_error_has("line 1: layer -1 is negative");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": \"0\", \"experts\": [1], \"token_idx\": 0}\n", NULL));
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": 0, \"experts\": 1, \"token_idx\": 0}\n", NULL));
    assert_error_has("line 1: experts");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": 0, \"experts\": [1, 1], \"token_idx\": 0}\n", NULL));
    assert_error_has("expert 1 is listed twice");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": 0, \"experts\": [1.5], \"token_idx\": 0}\n", NULL));
    assert_gem(GEM_ERR_LIMIT,
               import_bad(J, "{\"layer\": 0, \"experts\": [70000], \"token_idx\": 0}\n", NULL));
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": 0, \"experts\": [1], \"token_idx\": 0}\n"
                             "{\"layer\": 1, \"experts\": [1], \"token_idx\": 0}\n"
                             "{\"layer\": 0, \"experts\": [2], \"token_idx\": 0}\n", NULL));
    assert_error_has("line 3: the same token and layer 0 as line 1");
    assert_gem(GEM_ERR_OUT_OF_RANGE,
               import_bad(J, "{\"layer\": 0, \"experts\": [4], \"token_idx\": 0, \"num_experts\": 4}\n", NULL));
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": 0, \"experts\": [1], \"token_idx\": 0, \"num_experts\": 4}\n"
                             "{\"layer\": 0, \"experts\": [1], \"token_idx\": 1, \"num_experts\": 5}\n", NULL));
    assert_error_has("line 2: num_experts 5");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": 0, \"experts\": [1], \"token_idx\": 0}\n"
                             "{\"layer\": 0, \"experts\": [1], \"token_pos\": 1}\n", NULL));
    assert_error_has("line 2: has \"token_pos\"");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": 0, \"experts\": [1], \"token_idx\": 0, \"problem_id\": [1]}\n", NULL));
    assert_error_has("problem_id");
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(J, "[1, 2]\n", NULL));
    assert_gem(GEM_ERR_INVALID_INPUT, import_bad(J, "\n \n", NULL));
    assert_error_has("no records");
    assert_gem(GEM_ERR_INVALID_INPUT,
               import_bad(J, "{\"layer\": 0, \"experts\": [-1], \"token_idx\": 0}\n", NULL));
    assert_error_has("no record names an expert");
}

static void test_arguments(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_trace_import_buffer((gem_import_format_t)9, "{}", 2, NULL, &t, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_trace_import_buffer(GEM_IMPORT_SGLANG, "{}", 2, NULL, NULL, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_trace_import_buffer(GEM_IMPORT_SGLANG, NULL, 2, NULL, &t, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_trace_import(GEM_IMPORT_SGLANG, NULL, NULL, &t, NULL));
    assert_null(t);
}

/* Every allocation failing in turn, for each importer: GEM_ERR_NO_MEMORY, nothing leaked. */
static void test_alloc_failures(void **state)
{
    (void)state;
    gem_options_t *o = opts(3, 4, 2, 1);
    assert_ok(gem_options_set_string(o, GEM_OPT_IMPORT_FILTER, "dataset=a"));
    const struct {
        gem_import_format_t f;
        const char *text;
    } cases[] = {
        {GEM_IMPORT_SGLANG, AGG},
        {GEM_IMPORT_SGLANG, "{\"logical_count\": [[[0, 0], [1, 2]], [[0, 0], [3, 4]]]}"},
        {GEM_IMPORT_WIDE_CSV, WIDE},
        {GEM_IMPORT_TOKENS_JSONL, TOKENS},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int n;
        for (n = 1; n < 10000; n++) {
            gem_trace_t *t;
            char *note;
            gem__inject_alloc_failure(n);
            gem_status_t st = import(cases[c].f, cases[c].text, o, &t, &note);
            gem__inject_alloc_failure(0);
            gem_trace_destroy(t);
            gem_free(note);
            if (st == GEM_OK) break;
            assert_int_equal(st, GEM_ERR_NO_MEMORY);
        }
        assert_true(n > 3 && n < 10000);
    }
    gem_options_destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sglang_aggregate),
        cmocka_unit_test(test_sglang_draws_follow_counts),
        cmocka_unit_test(test_sglang_per_step),
        cmocka_unit_test(test_sglang_dense_layers_note),
        cmocka_unit_test(test_sglang_errors),
        cmocka_unit_test(test_wide_csv),
        cmocka_unit_test(test_wide_csv_aliases_and_quotes),
        cmocka_unit_test(test_wide_csv_errors),
        cmocka_unit_test(test_tokens_jsonl),
        cmocka_unit_test(test_tokens_jsonl_positions),
        cmocka_unit_test(test_tokens_jsonl_errors),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
