/*
 * test_limits.c - absurd sizes and allocation failures.
 *
 *  - Sizes beyond GEM_MAX_* (a billion experts, a step id of 10^12, a header of two million
 *    columns, a 10 GB file, a mapping of a billion GPUs) are refused with GEM_ERR_LIMIT and a message that
 *    names them, before anything of that size is allocated.
 *  - Options outside their documented ranges are refused and leave the option unchanged.
 *  - Allocation failure injection (gem__inject_alloc_failure, libgem/internal.h): for every
 *    reader, writer, importer, exporter, gem_compute_mapping, gem_evaluate and more, the k-th
 *    allocation of the call fails, for k = 1, 2, ... until the call needs fewer than k. Each
 *    call must then return GEM_ERR_NO_MEMORY with a message and untouched outputs (or succeed
 *    with a correct result, if it could do without that allocation), leak nothing (the ASan
 *    build checks after every k), and a failed write must leave the previous file as it was,
 *    with no temporary file left beside it.
 */
#include "testutil.h"
#include "internal.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#  define TL_LSAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define TL_LSAN 1
#  endif
#endif
#ifdef TL_LSAN
#  include <sanitizer/lsan_interface.h>
#endif

/* ---- absurd sizes -------------------------------------------------------------------------- */

static void test_billion_experts_refused(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_trace_create(&t, 1, 1000000000));
    assert_error_has("1000000000");
    assert_null(t);
    assert_gem(GEM_ERR_LIMIT, gem_trace_create(&t, 1000000000, 8));
    assert_error_has("1000000000");
    assert_gem(GEM_ERR_LIMIT, gem_trace_create(&t, INT32_MAX, INT32_MAX));
    assert_null(t);
    /* each bound alone is accepted, but not layers x experts beyond one step's limit */
    assert_gem(GEM_ERR_LIMIT, gem_trace_create(&t, GEM_MAX_LAYERS, GEM_MAX_EXPERTS));
    assert_error_has("loads per step");
    assert_null(t);
    /* the largest accepted shape costs nothing until steps are added */
    assert_ok(gem_trace_create(&t, GEM_MAX_LAYERS, GEM_MAX_LOADS_PER_STEP / GEM_MAX_LAYERS));
    gem_trace_destroy(t);

    gem_mapping_t *m = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_mapping_create(&m, 1000000000, 1, 1));
    assert_error_has("1000000000");
    assert_gem(GEM_ERR_LIMIT, gem_mapping_create(&m, 1, 1, 1000000000));
    assert_null(m);
    gem_profile_t *p = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_profile_create(&p, 1000000000));
    assert_error_has("1000000000");
    assert_null(p);
}

/* Steps beyond GEM_MAX_STEPS are refused; the largest step id allowed costs one row of memory
 * while the trace is read (and is then incomplete), not 10^8 steps. */
static void test_huge_step_ids(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    double row[2] = {1, 2};
    assert_ok(gem_trace_create(&t, 1, 2));
    gem_status_t st = gem_trace_set(t, 1000000000000LL, 0, row, 2);
    assert_true(st == GEM_ERR_OUT_OF_RANGE || st == GEM_ERR_LIMIT);
    assert_error_has("1000000000000");
    st = gem_trace_set(t, GEM_MAX_STEPS, 0, row, 2);
    assert_true(st == GEM_ERR_OUT_OF_RANGE || st == GEM_ERR_LIMIT);
    gem_trace_destroy(t);

    const char *csv = "step,layer,0,1\n0,0,1,2\n1000000000000,0,3,4\n";
    t = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_trace_parse(csv, strlen(csv), &t));
    assert_error_has("line 3");
    assert_error_has("1000000000000");
    assert_null(t);
    /* a step id with more digits than any integer type holds */
    const char *csv2 = "step,layer,0\n123456789012345678901234567890,0,1\n";
    assert_gem(GEM_ERR_LIMIT, gem_trace_parse(csv2, strlen(csv2), &t));
    assert_error_has("line 2");
    /* allowed, but three layers at step 10^8 - 1 would be 2.4 GB if the reader sized the
     * trace before counting rows */
    const char *csv3 = "step,layer,0\n99999999,0,1\n99999999,1,1\n99999999,2,1\n";
    assert_gem(GEM_ERR_INCOMPLETE, gem_trace_parse(csv3, strlen(csv3), &t));
    assert_error_has("step 0 layer 0");
    assert_null(t);
    /* a layer id beyond GEM_MAX_LAYERS */
    const char *csv4 = "step,layer,0\n0,70000,1\n";
    assert_gem(GEM_ERR_LIMIT, gem_trace_parse(csv4, strlen(csv4), &t));
    assert_error_has("line 2");
}

/* A header of 2 million expert columns (a 15 MB line): beyond GEM_MAX_EXPERTS. */
static void test_huge_header_line(void **state)
{
    (void)state;
    const size_t E = 2000000;
    gem__buf b;
    gem__buf_init(&b);
    gem__buf_append(&b, "step,layer", 10);
    for (size_t e = 0; e < E; e++) gem__buf_printf(&b, ",%zu", e);
    gem__buf_append(&b, "\n0,0", 4);
    assert_false(b.failed);
    gem_trace_t *t = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_trace_parse(b.data, b.len, &t));
    assert_error_has("2000000");
    assert_null(t);

    /* the same line as a file */
    char *path = tu_temp_path(".csv");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    fclose(f);
    assert_gem(GEM_ERR_LIMIT, gem_trace_read(path, &t));
    assert_error_has(path);
    assert_null(t);
    unlink(path);
    free(path);

    /* one data field of a million digits: a number, but not a finite one */
    gem__buf_free(&b);
    gem__buf_init(&b);
    gem__buf_append(&b, "step,layer,0\n0,0,1", 18);
    for (int i = 0; i < 1000000; i++) gem__buf_append(&b, "0", 1);
    gem__buf_append(&b, "\n", 1);
    assert_false(b.failed);
    assert_gem(GEM_ERR_INVALID_INPUT, gem_trace_parse(b.data, b.len, &t));
    assert_error_has("line 2");
    assert_null(t);
    gem__buf_free(&b);
}

/* A 10 GB file (sparse: it costs no disk) is one 10 GB line; every reader refuses it before
 * allocating anything for it. */
static void test_ten_gigabyte_file(void **state)
{
    (void)state;
    char *path = tu_temp_path(".big");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("step,layer,0\n0,0,", f);
    int sized = ftruncate(fileno(f), (off_t)10 << 30) == 0;
    fclose(f);
    if (!sized) { /* a file system without sparse files: nothing to test here */
        unlink(path);
        free(path);
        skip();
    }
    gem_trace_t *t = NULL;
    gem_profile_t *p = NULL;
    gem_mapping_t *m = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_trace_read(path, &t));
    assert_error_has(path);
    assert_gem(GEM_ERR_LIMIT, gem_profile_read(path, &p));
    assert_gem(GEM_ERR_LIMIT, gem_mapping_read(path, &m));
    for (int fmt = GEM_IMPORT_SGLANG; fmt <= GEM_IMPORT_TOKENS_JSONL; fmt++)
        assert_gem(GEM_ERR_LIMIT, gem_trace_import((gem_import_format_t)fmt, path, NULL, &t, NULL));
    assert_null(t);
    assert_null(p);
    assert_null(m);
    unlink(path);
    free(path);
}

static void test_huge_mapping_shapes(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"format\": \"gem-mapping\", \"version\": 1, \"num_gpus\": 1000000000, "
        "\"num_layers\": 1, \"num_experts\": 1, \"layers\": [{\"placements\": [[0, 0, 1]]}]}",
        "{\"format\": \"gem-mapping\", \"version\": 1, \"num_gpus\": 1, "
        "\"num_layers\": 1000000000, \"num_experts\": 1, \"layers\": []}",
        "{\"format\": \"gem-mapping\", \"version\": 1, \"num_gpus\": 1, "
        "\"num_layers\": 1, \"num_experts\": 100000000000000000000, \"layers\": []}",
        "{\"format\": \"gem-mapping\", \"version\": 1, \"num_gpus\": 4294967297, "
        "\"num_layers\": 1, \"num_experts\": 1, \"layers\": [{\"placements\": [[0, 0, 1]]}]}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        gem_mapping_t *m = NULL;
        gem_status_t st = gem_mapping_parse(texts[i], strlen(texts[i]), &m);
        if (st != GEM_ERR_LIMIT && st != GEM_ERR_INVALID_INPUT)
            print_error("mapping %zu: status %d: %s\n", i, (int)st, gem_last_error());
        assert_true(st == GEM_ERR_LIMIT || st == GEM_ERR_INVALID_INPUT);
        assert_null(m);
        assert_true(gem_last_error()[0] != '\0');
    }
    /* those that JSON can carry as integers name the field */
    gem_mapping_t *m = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_mapping_parse(texts[0], strlen(texts[0]), &m));
    assert_error_has("num_gpus");
    assert_gem(GEM_ERR_LIMIT, gem_mapping_parse(texts[1], strlen(texts[1]), &m));
    assert_error_has("num_layers");
    assert_gem(GEM_ERR_LIMIT, gem_mapping_parse(texts[3], strlen(texts[3]), &m));
    assert_error_has("num_gpus");

    /* a placement naming a GPU far outside num_gpus */
    const char *far = "{\"format\": \"gem-mapping\", \"version\": 1, \"num_gpus\": 2, "
                      "\"num_layers\": 1, \"num_experts\": 1, "
                      "\"layers\": [{\"placements\": [[0, 1000000000000, 1]]}]}";
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_mapping_parse(far, strlen(far), &m));
    assert_null(m);
}

static void test_huge_profile_values(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    const char *tok = "{\"format\": \"gem-profile\", \"version\": 1, \"gpus\": [{\"id\": 0, "
                      "\"tokens\": [1, 1000000000000], \"latency_us\": [1, 2]}]}";
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_parse(tok, strlen(tok), &p));
    assert_error_has("tokens");
    assert_null(p);
    const char *id = "{\"format\": \"gem-profile\", \"version\": 1, \"gpus\": [{\"id\": "
                     "1000000000, \"tokens\": [1], \"latency_us\": [1]}]}";
    gem_status_t st = gem_profile_parse(id, strlen(id), &p);
    assert_true(st == GEM_ERR_OUT_OF_RANGE || st == GEM_ERR_INVALID_INPUT);
    assert_null(p);
    /* a latency of 1e400 is not finite */
    const char *lat = "{\"format\": \"gem-profile\", \"version\": 1, \"gpus\": [{\"id\": 0, "
                      "\"tokens\": [1], \"latency_us\": [1e400]}]}";
    assert_true(gem_profile_parse(lat, strlen(lat), &p) != GEM_OK);
    assert_null(p);
}

/* Absurd sizes passed to calls, not read from files. */
static void test_absurd_call_arguments(void **state)
{
    (void)state;
    gem_trace_t *t = NULL;
    assert_gem(GEM_ERR_LIMIT, gem_trace_synthesize(1000000000000LL, 1, 8, 64, 0.5, NULL, &t));
    assert_gem(GEM_ERR_LIMIT, gem_trace_synthesize(4, 1, 1000000000, 64, 0.5, NULL, &t));
    /* 10^15 tokens a step would be 10^15 random draws: refused, not started */
    gem_status_t st = gem_trace_synthesize(4, 2, 8, 1000000000000000LL, 0.5, NULL, &t);
    assert_true(st == GEM_ERR_LIMIT || st == GEM_ERR_INVALID_ARGUMENT);
    assert_null(t);

    assert_ok(gem_trace_create(&t, 1, 4));
    int32_t ids[2] = {0, 1};
    /* n_tokens x k overflows size_t: refused before anything is read */
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_record(t, 0, 0, ids, SIZE_MAX / 2, 4));
    double row[4] = {0};
    assert_gem(GEM_ERR_SHAPE_MISMATCH, gem_trace_set(t, 0, 0, row, SIZE_MAX));
    gem_trace_destroy(t);

    gem_profile_t *p = NULL;
    assert_ok(gem_profile_create(&p, 1));
    int64_t tok[1] = {1};
    double lat[1] = {1};
    assert_gem(GEM_ERR_LIMIT,
               gem_profile_set_curve(p, 0, (size_t)GEM_MAX_CURVE_POINTS + 1, tok, lat, NULL));
    assert_gem(GEM_ERR_LIMIT, gem_profile_set_curve(p, 0, SIZE_MAX, tok, lat, NULL));
    size_t k = 99;
    assert_ok(gem_profile_get_curve(p, 0, NULL, NULL, 0, &k));
    assert_int_equal(k, 0);
    gem_profile_destroy(p);

    gem_mapping_t *m = NULL;
    assert_ok(gem_mapping_create(&m, 2, 1, 2));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_mapping_add(m, 0, 1000000000, 0, 1.0));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_mapping_add(m, 0, 0, 1000000000, 1.0));
    assert_gem(GEM_ERR_OUT_OF_RANGE, gem_mapping_add(m, 1000000000, 0, 0, 1.0));
    gem_mapping_destroy(m);
}

/* ---- options out of range -------------------------------------------------------------------- */

typedef struct {
    gem_option_t key;
    double value;
} tl_bad_option;

static void test_options_out_of_range(void **state)
{
    (void)state;
    static const tl_bad_option bad_int[] = {
        {GEM_OPT_THREADS, -1},          {GEM_OPT_THREADS, 4097},
        {GEM_OPT_SEED, -1},             {GEM_OPT_SEED, 4611686018427387905.0 * 2},
        {GEM_OPT_RESTARTS, 1000001},    {GEM_OPT_MAX_ITERATIONS, 0},
        {GEM_OPT_MAX_ITERATIONS, 2e9},  {GEM_OPT_TIME_LIMIT_MS, -5},
        {GEM_OPT_REDUNDANT_SLOTS, -1},  {GEM_OPT_REDUNDANT_SLOTS, 1048577},
        {GEM_OPT_OBJECTIVE, 2},         {GEM_OPT_SHARE_RULE, 7},
        {GEM_OPT_UNEQUAL_SLOTS, 2},     {GEM_OPT_MAX_MOVES, -2},
        {GEM_OPT_MODEL_HIDDEN, 0},      {GEM_OPT_MODEL_HIDDEN, 1048577},
        {GEM_OPT_MODEL_DTYPE, 4},       {GEM_OPT_SIM_GPUS, 0},
        {GEM_OPT_SIM_GPUS, GEM_MAX_GPUS + 1}, {GEM_OPT_SIM_TILE, 0},
        {GEM_OPT_PROFILE_REPEATS, 0},   {GEM_OPT_PROFILE_MAX_TOKENS, GEM_MAX_TOKENS + 1.0},
        {GEM_OPT_IMPORT_TOPK, 65},      {GEM_OPT_IMPORT_STEPS, 0},
        {GEM_OPT_IMPORT_STEPS, GEM_MAX_STEPS + 1.0},
    };
    static const tl_bad_option bad_double[] = {
        {GEM_OPT_HEAVY_FACTOR, 0},      {GEM_OPT_HEAVY_FACTOR, 1e7},
        {GEM_OPT_CONSISTENT_MIN, 0},    {GEM_OPT_CONSISTENT_MIN, 1.5},
        {GEM_OPT_TEMPORAL_MIN, -0.1},   {GEM_OPT_MIN_GAIN, 2},
        {GEM_OPT_SIM_SPREAD, 11},       {GEM_OPT_SIM_SPREAD, -1},
        {GEM_OPT_SIM_NOISE, 0.6},       {GEM_OPT_SIM_BANDWIDTH_GBS, 0},
        {GEM_OPT_SIM_TFLOPS, -3},
    };
    gem_options_t *o = NULL;
    assert_ok(gem_options_create(&o));
    for (size_t i = 0; i < sizeof bad_int / sizeof *bad_int; i++) {
        int64_t before, after;
        assert_ok(gem_options_get_int(o, bad_int[i].key, &before));
        gem_status_t st = gem_options_set_int(o, bad_int[i].key, (int64_t)bad_int[i].value);
        if (st != GEM_ERR_INVALID_ARGUMENT)
            print_error("option %d = %.17g accepted\n", (int)bad_int[i].key, bad_int[i].value);
        assert_int_equal(st, GEM_ERR_INVALID_ARGUMENT);
        assert_true(gem_last_error()[0] != '\0');
        assert_ok(gem_options_get_int(o, bad_int[i].key, &after));
        assert_true(before == after);
    }
    for (size_t i = 0; i < sizeof bad_double / sizeof *bad_double; i++) {
        double before, after;
        assert_ok(gem_options_get_double(o, bad_double[i].key, &before));
        gem_status_t st = gem_options_set_double(o, bad_double[i].key, bad_double[i].value);
        if (st != GEM_ERR_INVALID_ARGUMENT)
            print_error("option %d = %.17g accepted\n", (int)bad_double[i].key,
                        bad_double[i].value);
        assert_int_equal(st, GEM_ERR_INVALID_ARGUMENT);
        assert_ok(gem_options_get_double(o, bad_double[i].key, &after));
        assert_true(before == after);
    }
    /* NaN and infinities are outside every range */
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_HEAVY_FACTOR, NAN));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_MIN_GAIN, INFINITY));
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_options_set_double(o, GEM_OPT_SIM_OVERHEAD_US, -INFINITY));
    /* unknown keys, wrong types */
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, (gem_option_t)48, 1));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, (gem_option_t)-1, 1));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, (gem_option_t)1000000, 1));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_double(o, GEM_OPT_THREADS, 2.0));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_options_set_int(o, GEM_OPT_MODEL_NAME, 3));
    /* arrays: every element is checked, and an absurd length is refused */
    const double slow[3] = {1.0, 0.0, 2.0};
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, slow, 3));
    const double slow2[2] = {1.0, 101.0};
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, slow2, 2));
    const int64_t mem[2] = {1, -1};
    assert_gem(GEM_ERR_INVALID_ARGUMENT,
               gem_options_set_int_array(o, GEM_OPT_GPU_MEMORY, mem, 2));
    gem_status_t st = gem_options_set_double_array(o, GEM_OPT_SIM_SLOWDOWNS, slow, SIZE_MAX / 2);
    assert_true(st == GEM_ERR_INVALID_ARGUMENT || st == GEM_ERR_LIMIT);
    size_t n = 99;
    assert_ok(gem_options_get_double_array(o, GEM_OPT_SIM_SLOWDOWNS, NULL, 0, &n));
    assert_int_equal(n, 0);
    gem_options_destroy(o);
}

/* ---- allocation failure injection ------------------------------------------------------------- */

/* Inputs shared by the calls under test, built without injection. */
typedef struct {
    gem_profile_t *profile;
    gem_trace_t *trace;
    gem_mapping_t *mapping; /* contiguous, valid */
    gem_mapping_t *replicated;
    gem_report_t *report;
    gem_options_t *opts;    /* threads 1 */
    gem_options_t *opts2;   /* threads 2 */
    gem_options_t *eplb;    /* redundant slots */
    char *profile_text, *trace_text, *mapping_text;
    char *dir;              /* scratch directory for the file calls */
    char *profile_path, *trace_path, *mapping_path, *target_path;
} tl_fixture;

static tl_fixture fx;

static const char tl_previous[] = "previous content: a failed write must leave it\n";

static const char tl_sglang[] =
    "{\"logical_count\": [[4, 0, 2, 9, 1, 0], [1, 1, 1, 1, 1, 1], [0, 7, 3, 0, 0, 2]]}";
static const char tl_wide_csv[] =
    ",dataset,iteration,layer_idx,0,1,2,3\n"
    "0,a,0,0,5,0,2,1\n1,a,0,1,0,3,3,2\n2,a,1,0,1,1,1,1\n3,a,1,1,4,0,0,4\n"
    "4,b,0,0,9,9,9,9\n5,b,0,1,1,0,0,0\n";
static const char tl_tokens_jsonl[] =
    "{\"dataset\": \"d\", \"problem_id\": 0, \"layer\": 0, \"experts\": [1, 0], \"token_idx\": 0}\n"
    "{\"dataset\": \"d\", \"problem_id\": 0, \"layer\": 1, \"experts\": [2, 3], \"token_idx\": 0}\n"
    "{\"dataset\": \"d\", \"problem_id\": 0, \"layer\": 0, \"experts\": [3, 1], \"token_idx\": 1}\n"
    "{\"dataset\": \"d\", \"problem_id\": 0, \"layer\": 1, \"experts\": [0, 1], \"token_idx\": 1}\n";

static void tl_put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *tl_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int tl_setup(void **state)
{
    (void)state;
    const double slow[3] = {1.0, 1.1, 1.3};
    fx.profile = tu_profile(3, slow, 16, 4, 100.0, 5.0);
    fx.trace = tu_trace(6, 2, 6, 40, 11);
    assert_ok(gem_options_create(&fx.opts));
    assert_ok(gem_options_set_int(fx.opts, GEM_OPT_THREADS, 1));
    assert_ok(gem_options_set_int(fx.opts, GEM_OPT_RESTARTS, 1));
    assert_ok(gem_options_set_int(fx.opts, GEM_OPT_SIM_GPUS, 2));
    assert_ok(gem_options_set_int(fx.opts, GEM_OPT_IMPORT_STEPS, 3));
    assert_ok(gem_options_set_int(fx.opts, GEM_OPT_IMPORT_BATCH, 8));
    assert_ok(gem_options_set_int(fx.opts, GEM_OPT_IMPORT_TOPK, 2));
    assert_ok(gem_options_set_int(fx.opts, GEM_OPT_PROFILE_MAX_TOKENS, 256));
    /* the wide CSV fixture holds two datasets: import one */
    assert_ok(gem_options_set_string(fx.opts, GEM_OPT_IMPORT_FILTER, "dataset=a"));
    assert_ok(gem_options_clone(fx.opts, &fx.opts2));
    assert_ok(gem_options_set_int(fx.opts2, GEM_OPT_THREADS, 2));
    assert_ok(gem_options_clone(fx.opts, &fx.eplb));
    assert_ok(gem_options_set_int(fx.eplb, GEM_OPT_REDUNDANT_SLOTS, 3));
    assert_ok(gem_compute_mapping(fx.profile, fx.trace, GEM_POLICY_CONTIGUOUS, fx.opts, NULL,
                                  &fx.mapping));
    assert_ok(gem_compute_mapping(fx.profile, fx.trace, GEM_POLICY_EPLB, fx.eplb, NULL,
                                  &fx.replicated));
    assert_ok(gem_evaluate(fx.profile, fx.trace, fx.mapping, NULL, &fx.report));
    assert_ok(gem_profile_to_string(fx.profile, &fx.profile_text));
    assert_ok(gem_trace_to_string(fx.trace, &fx.trace_text));
    assert_ok(gem_mapping_to_string(fx.mapping, &fx.mapping_text));

    char *base = tu_temp_path("-limits");
    assert_int_equal(mkdir(base, 0700), 0);
    fx.dir = base;
    fx.profile_path = tl_join(base, "profile.json");
    fx.trace_path = tl_join(base, "trace.csv");
    fx.mapping_path = tl_join(base, "mapping.json");
    fx.target_path = tl_join(base, "target");
    tl_put_file(fx.profile_path, fx.profile_text);
    tl_put_file(fx.trace_path, fx.trace_text);
    tl_put_file(fx.mapping_path, fx.mapping_text);
    tl_put_file(fx.target_path, tl_previous);
    return 0;
}

static int tl_teardown(void **state)
{
    (void)state;
    gem__inject_alloc_failure(0);
    unlink(fx.profile_path);
    unlink(fx.trace_path);
    unlink(fx.mapping_path);
    unlink(fx.target_path);
    rmdir(fx.dir);
    free(fx.profile_path);
    free(fx.trace_path);
    free(fx.mapping_path);
    free(fx.target_path);
    free(fx.dir);
    gem_free(fx.profile_text);
    gem_free(fx.trace_text);
    gem_free(fx.mapping_text);
    gem_report_destroy(fx.report);
    gem_mapping_destroy(fx.mapping);
    gem_mapping_destroy(fx.replicated);
    gem_trace_destroy(fx.trace);
    gem_profile_destroy(fx.profile);
    gem_options_destroy(fx.opts);
    gem_options_destroy(fx.opts2);
    gem_options_destroy(fx.eplb);
    memset(&fx, 0, sizeof fx);
    return 0;
}

/* One call under test. `call` makes exactly one library call (the only one that runs with a
 * failure pending) and stores any handle or string it returns in *out. `check` runs without
 * injection: after a success it checks and frees *out, after a failure it checks that the
 * call's effects are absent; it returns a description of what is wrong, or NULL. */
typedef struct {
    const char *name;
    gem_status_t (*call)(void **out);
    const char *(*check)(gem_status_t st, void *out);
    int no_output; /* writes to a file: nothing comes back through out */
} tl_op;

/* ---- helpers for checks ---- */

static const char *tl_same_text(char *got, const char *want, const char *what)
{
    int same = got && strcmp(got, want) == 0;
    gem_free(got);
    return same ? NULL : what;
}

static char *tl_text_of(void *h, gem_status_t (*to_string)(const void *, char **))
{
    char *s = NULL;
    if (to_string(h, &s) != GEM_OK) return NULL;
    return s;
}

static gem_status_t tl_profile_str(const void *h, char **s) { return gem_profile_to_string(h, s); }
static gem_status_t tl_trace_str(const void *h, char **s) { return gem_trace_to_string(h, s); }
static gem_status_t tl_mapping_str(const void *h, char **s) { return gem_mapping_to_string(h, s); }

/* The scratch directory holds the four fixture files and nothing else (no temporaries). */
static const char *tl_dir_clean(void)
{
    DIR *d = opendir(fx.dir);
    if (!d) return "scratch directory vanished";
    int extra = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strcmp(n, ".") && strcmp(n, "..") && strcmp(n, "profile.json") &&
            strcmp(n, "trace.csv") && strcmp(n, "mapping.json") && strcmp(n, "target")) {
            print_error("left behind: %s/%s\n", fx.dir, n);
            extra = 1;
        }
    }
    closedir(d);
    return extra ? "a temporary file was left behind" : NULL;
}

/* After a write: on failure the previous content is intact; on success it is the expected
 * text, and the previous content is put back for the next round. */
static const char *tl_check_write(gem_status_t st, const char *want)
{
    const char *why = tl_dir_clean();
    char *now = tu_read_file(fx.target_path);
    if (!why && !now) why = "target file vanished";
    if (!why && st != GEM_OK && strcmp(now, tl_previous) != 0)
        why = "a failed write changed the previous file";
    if (!why && st == GEM_OK && want && strcmp(now, want) != 0)
        why = "the written file is not the text of the handle";
    free(now);
    tl_put_file(fx.target_path, tl_previous);
    return why;
}

/* ---- readers ---- */

static gem_status_t op_profile_parse(void **out)
{
    return gem_profile_parse(fx.profile_text, strlen(fx.profile_text), (gem_profile_t **)out);
}
static gem_status_t op_profile_read(void **out)
{
    return gem_profile_read(fx.profile_path, (gem_profile_t **)out);
}
static const char *chk_profile(gem_status_t st, void *out)
{
    if (st) return NULL;
    const char *why = tl_same_text(tl_text_of(out, tl_profile_str), fx.profile_text,
                                   "profile read differs");
    gem_profile_destroy(out);
    return why;
}

static gem_status_t op_trace_parse(void **out)
{
    return gem_trace_parse(fx.trace_text, strlen(fx.trace_text), (gem_trace_t **)out);
}
static gem_status_t op_trace_read(void **out)
{
    return gem_trace_read(fx.trace_path, (gem_trace_t **)out);
}
static const char *chk_trace(gem_status_t st, void *out)
{
    if (st) return NULL;
    const char *why = tl_same_text(tl_text_of(out, tl_trace_str), fx.trace_text,
                                   "trace read differs");
    gem_trace_destroy(out);
    return why;
}

static gem_status_t op_mapping_parse(void **out)
{
    return gem_mapping_parse(fx.mapping_text, strlen(fx.mapping_text), (gem_mapping_t **)out);
}
static gem_status_t op_mapping_read(void **out)
{
    return gem_mapping_read(fx.mapping_path, (gem_mapping_t **)out);
}
static const char *chk_mapping(gem_status_t st, void *out)
{
    if (st) return NULL;
    const char *why = tl_same_text(tl_text_of(out, tl_mapping_str), fx.mapping_text,
                                   "mapping read differs");
    gem_mapping_destroy(out);
    return why;
}

/* ---- importers ---- */

static gem_status_t tl_import(gem_import_format_t f, const char *text, void **out)
{
    return gem_trace_import_buffer(f, text, strlen(text), fx.opts, (gem_trace_t **)out, NULL);
}
static gem_status_t op_import_sglang(void **out)
{
    return tl_import(GEM_IMPORT_SGLANG, tl_sglang, out);
}
static gem_status_t op_import_wide_csv(void **out)
{
    return tl_import(GEM_IMPORT_WIDE_CSV, tl_wide_csv, out);
}
static gem_status_t op_import_tokens_jsonl(void **out)
{
    return tl_import(GEM_IMPORT_TOKENS_JSONL, tl_tokens_jsonl, out);
}
/* the note is an output too */
static gem_status_t op_import_with_note(void **out)
{
    void **pair = calloc(2, sizeof *pair);
    if (!pair) return GEM_ERR_NO_MEMORY;
    gem_status_t st = gem_trace_import_buffer(GEM_IMPORT_WIDE_CSV, tl_wide_csv,
                                              strlen(tl_wide_csv), fx.opts,
                                              (gem_trace_t **)&pair[0], (char **)&pair[1]);
    if (st) {
        const char *touched = pair[0] || pair[1] ? "x" : NULL;
        free(pair);
        /* report touched outputs through the status the driver checks */
        return touched ? GEM_ERR_INTERNAL : st;
    }
    *out = pair;
    return st;
}
static const char *chk_import(gem_status_t st, void *out)
{
    if (st) return NULL;
    /* the same import without injection gives the same trace */
    const char *why = NULL;
    int64_t s;
    int32_t l, e;
    if (gem_trace_validate(out) != GEM_OK) why = "imported trace is incomplete";
    else if (gem_trace_shape(out, &s, &l, &e) != GEM_OK || s < 1) why = "imported trace empty";
    gem_trace_destroy(out);
    return why;
}
static const char *chk_import_note(gem_status_t st, void *out)
{
    if (st) return NULL;
    void **pair = out;
    const char *why = pair[1] ? NULL : "no note after success";
    const char *why2 = chk_import(GEM_OK, pair[0]);
    gem_free(pair[1]);
    free(pair);
    return why ? why : why2;
}

/* ---- writers ---- */

static gem_status_t op_profile_to_string(void **out)
{
    return gem_profile_to_string(fx.profile, (char **)out);
}
static const char *chk_profile_text(gem_status_t st, void *out)
{
    return st ? NULL : tl_same_text(out, fx.profile_text, "profile text differs");
}
static gem_status_t op_trace_to_string(void **out)
{
    return gem_trace_to_string(fx.trace, (char **)out);
}
static const char *chk_trace_text(gem_status_t st, void *out)
{
    return st ? NULL : tl_same_text(out, fx.trace_text, "trace text differs");
}
static gem_status_t op_mapping_to_string(void **out)
{
    return gem_mapping_to_string(fx.mapping, (char **)out);
}
static const char *chk_mapping_text(gem_status_t st, void *out)
{
    return st ? NULL : tl_same_text(out, fx.mapping_text, "mapping text differs");
}

static gem_status_t op_profile_write(void **out)
{
    (void)out;
    return gem_profile_write(fx.profile, fx.target_path);
}
static const char *chk_profile_write(gem_status_t st, void *out)
{
    (void)out;
    return tl_check_write(st, fx.profile_text);
}
static gem_status_t op_trace_write(void **out)
{
    (void)out;
    return gem_trace_write(fx.trace, fx.target_path);
}
static const char *chk_trace_write(gem_status_t st, void *out)
{
    (void)out;
    return tl_check_write(st, fx.trace_text);
}
static gem_status_t op_mapping_write(void **out)
{
    (void)out;
    return gem_mapping_write(fx.mapping, fx.target_path);
}
static const char *chk_mapping_write(gem_status_t st, void *out)
{
    (void)out;
    return tl_check_write(st, fx.mapping_text);
}
static gem_status_t op_export_file(void **out)
{
    (void)out;
    return gem_mapping_export(fx.mapping, GEM_EXPORT_EPLB, fx.target_path);
}
static const char *chk_export_file(gem_status_t st, void *out)
{
    (void)out;
    return tl_check_write(st, NULL);
}
static gem_status_t op_atomic_write(void **out)
{
    (void)out;
    return gem__write_file_atomic(fx.target_path, "new\n", 4);
}
static const char *chk_atomic_write(gem_status_t st, void *out)
{
    (void)out;
    return tl_check_write(st, "new\n");
}

static gem_status_t tl_export(gem_export_format_t f, void **out)
{
    return gem_mapping_export_string(fx.mapping, f, (char **)out);
}
static gem_status_t op_export_sglang(void **out) { return tl_export(GEM_EXPORT_SGLANG, out); }
static gem_status_t op_export_eplb(void **out) { return tl_export(GEM_EXPORT_EPLB, out); }
static gem_status_t op_export_trtllm(void **out) { return tl_export(GEM_EXPORT_TRTLLM, out); }
static const char *chk_string(gem_status_t st, void *out)
{
    if (st) return NULL;
    const char *why = out && *(char *)out ? NULL : "empty text";
    gem_free(out);
    return why;
}
static gem_status_t op_report_json(void **out) { return gem_report_to_json(fx.report, (char **)out); }

/* ---- computations ---- */

static const char *chk_mapping_valid(gem_status_t st, void *out)
{
    if (st) return NULL;
    const char *why = gem_mapping_validate(out) == GEM_OK ? NULL : "mapping invalid";
    gem_mapping_destroy(out);
    return why;
}
#define TL_MAP_OP(fn, policy, options)                                                      \
    static gem_status_t fn(void **out)                                                       \
    {                                                                                        \
        return gem_compute_mapping(fx.profile, fx.trace, policy, options, NULL,              \
                                   (gem_mapping_t **)out);                                   \
    }
TL_MAP_OP(op_map_contiguous, GEM_POLICY_CONTIGUOUS, fx.opts)
TL_MAP_OP(op_map_round_robin, GEM_POLICY_ROUND_ROBIN, fx.opts)
TL_MAP_OP(op_map_balanced, GEM_POLICY_BALANCED, fx.opts)
TL_MAP_OP(op_map_speed_aware, GEM_POLICY_SPEED_AWARE, fx.opts)
TL_MAP_OP(op_map_gem, GEM_POLICY_GEM, fx.opts)
TL_MAP_OP(op_map_gem_threads, GEM_POLICY_GEM, fx.opts2)
TL_MAP_OP(op_map_eplb, GEM_POLICY_EPLB, fx.eplb)
TL_MAP_OP(op_map_exact, GEM_POLICY_EXACT, fx.opts)

static gem_status_t op_evaluate(void **out)
{
    return gem_evaluate(fx.profile, fx.trace, fx.mapping, fx.opts, (gem_report_t **)out);
}
static gem_status_t op_evaluate_replicated(void **out)
{
    return gem_evaluate(fx.profile, fx.trace, fx.replicated, fx.opts, (gem_report_t **)out);
}
static const char *chk_report(gem_status_t st, void *out)
{
    if (st) return NULL;
    double a, b;
    const char *why = NULL;
    if (gem_report_get(out, GEM_METRIC_MEAN, &a) || gem_report_get(fx.report, GEM_METRIC_MEAN, &b))
        why = "report unreadable";
    gem_report_destroy(out);
    return why;
}
static const char *chk_report_same(gem_status_t st, void *out)
{
    if (st) return NULL;
    char *x = NULL, *y = NULL;
    gem_report_to_json(out, &x);
    gem_report_to_json(fx.report, &y);
    const char *why = x && y && strcmp(x, y) == 0 ? NULL : "report differs";
    gem_free(x);
    gem_free(y);
    gem_report_destroy(out);
    return why;
}

static gem_status_t op_classify(void **out)
{
    return gem_classify_experts(fx.trace, fx.opts, (gem_classification_t **)out);
}
static const char *chk_classify(gem_status_t st, void *out)
{
    if (!st) gem_classification_destroy(out);
    return NULL;
}
static gem_status_t op_synthesize(void **out)
{
    return gem_trace_synthesize(5, 2, 8, 64, 0.5, fx.opts, (gem_trace_t **)out);
}
static gem_status_t op_trace_clone(void **out) { return gem_trace_clone(fx.trace, (gem_trace_t **)out); }
static const char *chk_trace_handle(gem_status_t st, void *out)
{
    if (st) return NULL;
    const char *why = gem_trace_validate(out) == GEM_OK ? NULL : "trace incomplete";
    gem_trace_destroy(out);
    return why;
}
static gem_status_t op_profile_sim(void **out)
{
    return gem_profile_gpus(GEM_BACKEND_SIM, fx.opts, (gem_profile_t **)out);
}
static gem_status_t op_profile_clone(void **out)
{
    return gem_profile_clone(fx.profile, (gem_profile_t **)out);
}
static const char *chk_profile_handle(gem_status_t st, void *out)
{
    if (!st) gem_profile_destroy(out);
    return NULL;
}
static gem_status_t op_mapping_clone(void **out)
{
    return gem_mapping_clone(fx.replicated, (gem_mapping_t **)out);
}
static gem_status_t op_options_clone(void **out)
{
    return gem_options_clone(fx.eplb, (gem_options_t **)out);
}
static const char *chk_options(gem_status_t st, void *out)
{
    if (st) return NULL;
    int64_t r = 0;
    gem_options_get_int(out, GEM_OPT_REDUNDANT_SLOTS, &r);
    gem_options_destroy(out);
    return r == 3 ? NULL : "clone lost an option";
}

/* ---- the driver ---- */

/* How many allocations the countdown had left, by probing: 0 when the failure was consumed
 * (or injection is off). Probes k times at most. */
static long tl_countdown_left(long k)
{
    for (long j = 1; j <= k; j++) {
        void *p = gem__malloc(1);
        if (!p) return j;
        free(p);
    }
    return 0;
}

/* Upper bound on allocations one call may make here; the fixtures are tiny. */
#define TL_MAX_K 20000

static char tl_sentinel;

static void tl_run(const tl_op *op)
{
    long k;
    int swallowed = 0;
    for (k = 1; k <= TL_MAX_K; k++) {
        void *out = &tl_sentinel;
        gem__inject_alloc_failure(k);
        gem_status_t st = op->call(&out);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", gem_last_error());
        long left = tl_countdown_left(k);
        gem__inject_alloc_failure(0);

        const char *why = NULL;
        if (st == GEM_OK && out == &tl_sentinel && !op->no_output)
            why = "success without an output";
        else if (st != GEM_OK && st != GEM_ERR_NO_MEMORY)
            why = "a status other than GEM_ERR_NO_MEMORY";
        else if (st == GEM_ERR_NO_MEMORY && left > 0)
            why = "GEM_ERR_NO_MEMORY although no allocation failed";
        else if (st == GEM_ERR_NO_MEMORY && msg[0] == '\0')
            why = "GEM_ERR_NO_MEMORY without a message";
        else if (st != GEM_OK && out != &tl_sentinel)
            why = "a failed call set its output";
        const char *cwhy = op->check(st, st == GEM_OK ? out : NULL);
        if (!why) why = cwhy;
#ifdef TL_LSAN
        if (!why && __lsan_do_recoverable_leak_check()) why = "memory leaked";
#endif
        if (why) {
            print_error("%s with allocation %ld failing: %s (status %d %s, message \"%s\")\n",
                        op->name, k, why, (int)st, gem_status_string(st), msg);
            fail();
        }
        if (st == GEM_OK) {
            if (left > 0) break; /* the call needed fewer than k allocations */
            swallowed++;
        }
    }
    if (k > TL_MAX_K) {
        print_error("%s: still allocating after %d failures\n", op->name, TL_MAX_K);
        fail();
    }
    if (getenv("GEM_TEST_VERBOSE"))
        print_message("%s: %ld allocations, %d failures absorbed\n", op->name, k - 1, swallowed);
}

static const tl_op tl_readers[] = {
    {"gem_profile_parse", op_profile_parse, chk_profile, 0},
    {"gem_profile_read", op_profile_read, chk_profile, 0},
    {"gem_trace_parse", op_trace_parse, chk_trace, 0},
    {"gem_trace_read", op_trace_read, chk_trace, 0},
    {"gem_mapping_parse", op_mapping_parse, chk_mapping, 0},
    {"gem_mapping_read", op_mapping_read, chk_mapping, 0},
};
static const tl_op tl_importers[] = {
    {"gem_trace_import_buffer(sglang)", op_import_sglang, chk_import, 0},
    {"gem_trace_import_buffer(wide csv)", op_import_wide_csv, chk_import, 0},
    {"gem_trace_import_buffer(tokens jsonl)", op_import_tokens_jsonl, chk_import, 0},
    {"gem_trace_import_buffer(wide csv, note)", op_import_with_note, chk_import_note, 0},
};
static const tl_op tl_writers[] = {
    {"gem_profile_to_string", op_profile_to_string, chk_profile_text, 0},
    {"gem_trace_to_string", op_trace_to_string, chk_trace_text, 0},
    {"gem_mapping_to_string", op_mapping_to_string, chk_mapping_text, 0},
    {"gem_mapping_export_string(sglang)", op_export_sglang, chk_string, 0},
    {"gem_mapping_export_string(eplb)", op_export_eplb, chk_string, 0},
    {"gem_mapping_export_string(trtllm)", op_export_trtllm, chk_string, 0},
    {"gem_report_to_json", op_report_json, chk_string, 0},
    {"gem__write_file_atomic", op_atomic_write, chk_atomic_write, 1},
    {"gem_profile_write", op_profile_write, chk_profile_write, 1},
    {"gem_trace_write", op_trace_write, chk_trace_write, 1},
    {"gem_mapping_write", op_mapping_write, chk_mapping_write, 1},
    {"gem_mapping_export", op_export_file, chk_export_file, 1},
};
static const tl_op tl_computations[] = {
    {"gem_compute_mapping(contiguous)", op_map_contiguous, chk_mapping_valid, 0},
    {"gem_compute_mapping(round_robin)", op_map_round_robin, chk_mapping_valid, 0},
    {"gem_compute_mapping(balanced)", op_map_balanced, chk_mapping_valid, 0},
    {"gem_compute_mapping(speed_aware)", op_map_speed_aware, chk_mapping_valid, 0},
    {"gem_compute_mapping(gem)", op_map_gem, chk_mapping_valid, 0},
    {"gem_compute_mapping(gem, 2 threads)", op_map_gem_threads, chk_mapping_valid, 0},
    {"gem_compute_mapping(eplb)", op_map_eplb, chk_mapping_valid, 0},
    {"gem_compute_mapping(exact)", op_map_exact, chk_mapping_valid, 0},
    {"gem_evaluate", op_evaluate, chk_report_same, 0},
    {"gem_evaluate(replicated)", op_evaluate_replicated, chk_report, 0},
    {"gem_classify_experts", op_classify, chk_classify, 0},
};
static const tl_op tl_handles[] = {
    {"gem_trace_synthesize", op_synthesize, chk_trace_handle, 0},
    {"gem_trace_clone", op_trace_clone, chk_trace_handle, 0},
    {"gem_profile_gpus(sim)", op_profile_sim, chk_profile_handle, 0},
    {"gem_profile_clone", op_profile_clone, chk_profile_handle, 0},
    {"gem_mapping_clone", op_mapping_clone, chk_mapping_valid, 0},
    {"gem_options_clone", op_options_clone, chk_options, 0},
};

#define TL_RUN_ALL(table)                                                                   \
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) tl_run(&table[i])

static void test_alloc_failures_readers(void **state)
{
    (void)state;
    TL_RUN_ALL(tl_readers);
}
static void test_alloc_failures_importers(void **state)
{
    (void)state;
    TL_RUN_ALL(tl_importers);
}
static void test_alloc_failures_writers(void **state)
{
    (void)state;
    TL_RUN_ALL(tl_writers);
}
static void test_alloc_failures_computations(void **state)
{
    (void)state;
    TL_RUN_ALL(tl_computations);
}
static void test_alloc_failures_handles(void **state)
{
    (void)state;
    TL_RUN_ALL(tl_handles);
}

/* A write that fails for another reason (no such directory) leaves nothing either. */
static void test_failed_write_leaves_nothing(void **state)
{
    (void)state;
    char *missing = tl_join(fx.dir, "no-such-dir/out.json");
    assert_gem(GEM_ERR_IO, gem_profile_write(fx.profile, missing));
    assert_error_has(missing);
    free(missing);
    assert_null(tl_dir_clean());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_billion_experts_refused),
        cmocka_unit_test(test_huge_step_ids),
        cmocka_unit_test(test_huge_header_line),
        cmocka_unit_test(test_ten_gigabyte_file),
        cmocka_unit_test(test_huge_mapping_shapes),
        cmocka_unit_test(test_huge_profile_values),
        cmocka_unit_test(test_absurd_call_arguments),
        cmocka_unit_test(test_options_out_of_range),
        cmocka_unit_test(test_alloc_failures_readers),
        cmocka_unit_test(test_alloc_failures_importers),
        cmocka_unit_test(test_alloc_failures_writers),
        cmocka_unit_test(test_alloc_failures_computations),
        cmocka_unit_test(test_alloc_failures_handles),
        cmocka_unit_test(test_failed_write_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, tl_setup, tl_teardown);
}
