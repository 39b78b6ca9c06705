/* test_io_trace.c - SPEC 4 trace files: what the reader accepts (comments, blank lines, CRLF,
 * spaces, rows in any order), each malformed case by its status and message, the guard
 * against absurd step ids, and exact round trips. */
#include "testutil.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gem_status_t parse(const char *text, gem_trace_t **t)
{
    *t = NULL;
    return gem_trace_parse(text, strlen(text), t);
}

/* Parses text that must fail, and checks that nothing was returned. */
static gem_status_t parse_bad(const char *text)
{
    gem_trace_t *t = NULL;
    gem_status_t st = gem_trace_parse(text, strlen(text), &t);
    assert_null(t);
    return st;
}

static void assert_row(const gem_trace_t *t, int64_t s, int32_t l, const double *want, int E)
{
    double got[16];
    assert_ok(gem_trace_get(t, s, l, got, 16));
    for (int e = 0; e < E; e++) assert_true(got[e] == want[e]);
}

static void test_reads_valid_file(void **state)
{
    (void)state;
    const char *text =
        "# a comment\r\n"
        "\r\n"
        "  # an indented comment\n"
        " step , layer,0,1 ,2\r\n"
        "1,0,7,8,9\r\n"
        "0,1, 4 ,5.5,6e1\n"
        "\n"
        "# between rows\n"
        "0,0,1,2,3\n"
        "1,1,0.25,0,1E-3"; /* no newline at the end */
    /* a byte order mark before the first line is skipped */
    gem_trace_t *b;
    assert_ok(parse("\xef\xbb\xbfstep,layer,0\n0,0,1\n", &b));
    gem_trace_destroy(b);
    gem_trace_t *t;
    assert_ok(parse(text, &t));
    int64_t S;
    int32_t L, E;
    assert_ok(gem_trace_shape(t, &S, &L, &E));
    assert_true(S == 2 && L == 2 && E == 3);
    assert_ok(gem_trace_validate(t));
    assert_row(t, 0, 0, (double[]){1, 2, 3}, 3);
    assert_row(t, 0, 1, (double[]){4, 5.5, 60}, 3);
    assert_row(t, 1, 0, (double[]){7, 8, 9}, 3);
    assert_row(t, 1, 1, (double[]){0.25, 0, 0.001}, 3);
    gem_trace_destroy(t);
}

static void test_header_errors(void **state)
{
    (void)state;
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad(""));
    assert_error_has("no header");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("# only comments\n\n"));
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("step,layer\n0,0\n"));
    assert_error_has("line 1");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("layer,step,0\n0,0,1\n"));
    assert_error_has("\"layer\", expected \"step\"");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("step,layer,0,2\n0,0,1,1\n"));
    assert_error_has("expected expert \"1\"");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("step,layer,0,01\n0,0,1,1\n"));
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("step,layer,1\n0,0,1\n"));
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("\n# x\nStep,layer,0\n0,0,1\n"));
    assert_error_has("line 3");
    /* a header and nothing else */
    assert_gem(GEM_ERR_INCOMPLETE, parse_bad("step,layer,0,1\n"));
}

#define HDR "step,layer,0,1,2,3,4,5,6,7\n"

static void test_row_errors(void **state)
{
    (void)state;
    /* ragged: the message counts values against experts */
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_bad("# c\n" HDR "0,0,1,1,1,1,1,1,1,1\n0,1,1,1,1,1,1,1,1,1\n"
                         "1,0,1,1,1,1,1,1,1,1\n\n1,1,1,1,1,1,1\n"));
    assert_error_has("line 7: 5 values, header has 8 experts");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad(HDR "0,0,1,1,1,1,1,1,1,1,1\n"));
    assert_error_has("line 2: 9 values");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad(HDR "0\n"));
    assert_error_has("line 2");
    /* truncated file: the last row stops part-way */
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad(HDR "0,0,1,1,1,1,1,1,1,1\n0,1,1,1,1,"));
    assert_error_has("line 3");
    /* values that are not strict decimal numbers */
    const char *bad[] = {"nan", "NaN", "inf", "-inf", "0x10", "", "abc", "1.5x", "1 2", "1e",
                         "--1", "1,5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[256];
        snprintf(text, sizeof text, "step,layer,0,1\n0,0,1,%s\n", bad[i]);
        assert_gem(GEM_ERR_INVALID_INPUT, parse_bad(text));
        assert_error_has("line 2");
    }
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("step,layer,0,1\n0,0,1,1e999\n"));
    assert_error_has("too large");
    /* negative load */
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("step,layer,0,1\n0,0,1,-2\n"));
    assert_error_has("line 2: expert 1: load -2 is negative");
    /* step and layer: non-negative integers */
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("step,layer,0\n-1,0,1\n"));
    assert_error_has("step \"-1\"");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("step,layer,0\n0.5,0,1\n"));
    assert_gem(GEM_ERR_INVALID_INPUT, parse_bad("step,layer,0\n0,x,1\n"));
    assert_error_has("layer \"x\"");
    assert_gem(GEM_ERR_LIMIT, parse_bad("step,layer,0\n100000000,0,1\n"));
    assert_gem(GEM_ERR_LIMIT, parse_bad("step,layer,0\n0,65536,1\n"));
    assert_gem(GEM_ERR_LIMIT, parse_bad("step,layer,0\n99999999999999999999999,0,1\n"));
}

static void test_duplicate_and_missing(void **state)
{
    (void)state;
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_bad("step,layer,0\n0,0,1\n0,1,1\n1,0,1\n3,1,2\n1,1,1\n2,0,1\n2,1,1\n"
                         "3,1,1\n3,0,1\n"));
    assert_error_has("line 9: step 3 layer 1 repeats line 5");
    /* missing rows: GEM_ERR_INCOMPLETE naming the first one */
    assert_gem(GEM_ERR_INCOMPLETE, parse_bad("step,layer,0\n0,0,1\n1,0,1\n1,1,1\n"));
    assert_error_has("step 0 layer 1");
    assert_gem(GEM_ERR_INCOMPLETE, parse_bad("step,layer,0\n0,0,1\n0,1,1\n1,0,1\n"));
    assert_error_has("step 1 layer 1");
    assert_gem(GEM_ERR_INCOMPLETE, parse_bad("step,layer,0\n2,0,1\n"));
    assert_error_has("step 0 layer 0");
    /* a huge step id in two rows fails at once, without allocating 10^8 steps */
    assert_gem(GEM_ERR_INCOMPLETE, parse_bad("step,layer,0,1,2,3\n0,0,1,1,1,1\n"
                                             "99999999,3,1,1,1,1\n"));
    assert_error_has("step 0 layer 1");
    assert_error_has("2 rows");
}

static void test_files(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    assert_gem(GEM_ERR_IO, gem_trace_read("/nonexistent/trace.csv", &t));
    assert_error_has("/nonexistent/trace.csv");
    assert_null(t);
    char *path = tu_write_temp("step,layer,0\n0,0,5\n0,1,-1\n", ".csv");
    assert_gem(GEM_ERR_INVALID_INPUT, gem_trace_read(path, &t));
    assert_error_has(path);
    assert_error_has("line 3");
    unlink(path);
    free(path);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_parse("x", 1, NULL));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_parse(NULL, 3, &t));
}

static void assert_traces_equal(const gem_trace_t *a, const gem_trace_t *b)
{
    assert_true(a->num_steps == b->num_steps);
    assert_int_equal(a->num_layers, b->num_layers);
    assert_int_equal(a->num_experts, b->num_experts);
    for (int64_t s = 0; s < a->num_steps; s++)
        for (int32_t l = 0; l < a->num_layers; l++) {
            const double *x = gem__trace_row(a, s, l), *y = gem__trace_row(b, s, l);
            for (int32_t e = 0; e < a->num_experts; e++) assert_true(x[e] == y[e]);
        }
}

static void test_round_trip_exact(void **state)
{
    (void)state;
    gem_trace_t *t = tu_trace(7, 3, 5, 1000, 42), *u = NULL, *v = NULL;
    /* fractions that need 17 digits, and extremes */
    double row[5] = {0.1, 1.0 / 3.0, 1e-300, 1.7976931348623157e308, 123456789.98765432};
    assert_ok(gem_trace_set(t, 2, 1, row, 5));
    double neg0[5] = {-0.0, 0, 1e15, 1e15 + 1, 4.9406564584124654e-324};
    assert_ok(gem_trace_set(t, 6, 2, neg0, 5));
    char *s1 = NULL, *s2 = NULL;
    assert_ok(gem_trace_to_string(t, &s1));
    assert_true(strncmp(s1, "step,layer,0,1,2,3,4\n0,0,", 25) == 0);
    assert_ok(parse(s1, &u));
    assert_traces_equal(t, u);
    assert_ok(gem_trace_to_string(u, &s2));
    assert_string_equal(s1, s2);
    char *path = tu_temp_path(".csv");
    assert_ok(gem_trace_write(u, path));
    assert_ok(gem_trace_read(path, &v));
    assert_traces_equal(t, v);
    char *s3 = tu_read_file(path);
    assert_string_equal(s1, s3);
    unlink(path);
    free(path);
    free(s3);
    gem_free(s1);
    gem_free(s2);
    gem_trace_destroy(t);
    gem_trace_destroy(u);
    gem_trace_destroy(v);
}

static void test_writer_refuses_incomplete(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    char *s = NULL;
    assert_ok(gem_trace_create(&t, 2, 2));
    assert_gem(GEM_ERR_INCOMPLETE, gem_trace_to_string(t, &s));
    double row[2] = {1, 2};
    assert_ok(gem_trace_set(t, 0, 0, row, 2));
    assert_gem(GEM_ERR_INCOMPLETE, gem_trace_to_string(t, &s));
    assert_error_has("step 0 layer 1");
    assert_null(s);
    char *dir_path = tu_temp_path("-missing/t.csv");
    assert_ok(gem_trace_set(t, 0, 1, row, 2));
    assert_gem(GEM_ERR_IO, gem_trace_write(t, dir_path));
    free(dir_path);
    gem_trace_destroy(t);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    const char *text = "step,layer,0,1\n1,0,1,2\n0,1,3,4\n0,0,1,1\n1,1,0,0.5\n";
    int n;
    for (n = 1; n < 10000; n++) {
        gem_trace_t *t = NULL;
        char *s = NULL;
        gem__inject_alloc_failure(n);
        gem_status_t st = parse(text, &t);
        if (!st) {
            st = gem_trace_to_string(t, &s);
            gem_free(s);
            gem_trace_destroy(t);
        } else {
            assert_null(t);
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
        cmocka_unit_test(test_row_errors),
        cmocka_unit_test(test_duplicate_and_missing),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_round_trip_exact),
        cmocka_unit_test(test_writer_refuses_incomplete),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
