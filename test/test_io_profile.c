/* test_io_profile.c - SPEC 3 profile files: reading every field, each malformed case by its
 * status and message, exact round trips, and the file helpers of io_util.c (atomic writes
 * that leave nothing behind, the 4 GiB read limit). */
#include "testutil.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *FULL =
    "{\"format\": \"gem-profile\", \"version\": 1, \"interpolation\": \"linear\",\n"
    " \"cost_model\": \"aggregate\", \"comment\": {\"unknown\": [\"keys are ignored\"]},\n"
    " \"model\": {\"name\": \"Mixtral-8x7B\", \"hidden\": 4096, \"ffn\": 14336, \"dtype\": \"bf16\"},\n"
    " \"gpus\": [\n"
    "  {\"id\": 1, \"name\": \"NVIDIA L40 \\\"b\\\"\", \"overhead_us\": 2.5,\n"
    "   \"tokens\": [10, 20.0], \"latency_us\": [100, 200], \"latency_cv\": [0.01, 0]},\n"
    "  {\"id\": 0, \"name\": \"NVIDIA L40\", \"pci_bus_id\": \"0000:3b:00.0\", \"host\": \"node0\",\n"
    "   \"numa_node\": 1, \"cpuset\": \"0-15\", \"memory_bytes\": 48000000000,\n"
    "   \"overhead_us\": 8.0, \"tokens\": [64, 128, 192], \"latency_us\": [410.0, 420.5, 431.0]}\n"
    " ],\n"
    " \"alltoall\": {\"bytes\": [1024, 1048576], \"time_us\": [[10, 20.5], [11, 21]]}\n"
    "}\n";

static gem_status_t parse(const char *text, gem_profile_t **p)
{
    return gem_profile_parse(text, strlen(text), p);
}

/* Exact equality of everything a profile file carries. */
static void assert_profiles_equal(const gem_profile_t *a, const gem_profile_t *b)
{
    assert_int_equal(a->num_gpus, b->num_gpus);
    assert_int_equal(a->interpolation, b->interpolation);
    assert_int_equal(a->cost_model, b->cost_model);
#define SAME_STR(x, y) do { if (!(x) || !(y)) assert_ptr_equal((x), (y)); else assert_string_equal((x), (y)); } while (0)
    SAME_STR(a->model_name, b->model_name);
    SAME_STR(a->model_dtype, b->model_dtype);
    assert_true(a->model_hidden == b->model_hidden && a->model_ffn == b->model_ffn);
    for (int32_t g = 0; g < a->num_gpus; g++) {
        const gem__gpu *x = &a->gpus[g], *y = &b->gpus[g];
        assert_true(x->overhead == y->overhead);
        SAME_STR(x->name, y->name);
        SAME_STR(x->pci_bus_id, y->pci_bus_id);
        SAME_STR(x->host, y->host);
        SAME_STR(x->cpuset, y->cpuset);
        assert_int_equal(x->numa_node, y->numa_node);
        assert_true(x->memory_bytes == y->memory_bytes);
        assert_int_equal(x->curve.k, y->curve.k);
        for (size_t i = 0; i < x->curve.k; i++) {
            assert_true(x->curve.tokens[i] == y->curve.tokens[i]);
            assert_true(x->curve.latency[i] == y->curve.latency[i]);
        }
        assert_true((x->curve.cv == NULL) == (y->curve.cv == NULL));
        for (size_t i = 0; x->curve.cv && i < x->curve.k; i++)
            assert_true(x->curve.cv[i] == y->curve.cv[i]);
    }
    assert_int_equal(a->a2a_n, b->a2a_n);
    for (size_t i = 0; i < a->a2a_n; i++) assert_true(a->a2a_bytes[i] == b->a2a_bytes[i]);
    for (size_t i = 0; i < a->a2a_n * (size_t)a->num_gpus; i++)
        assert_true(a->a2a_time[i] == b->a2a_time[i]);
#undef SAME_STR
}

static void test_reads_every_field(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    assert_ok(parse(FULL, &p));
    assert_int_equal(p->num_gpus, 2);
    assert_int_equal(p->interpolation, GEM_INTERP_LINEAR);
    assert_int_equal(p->cost_model, GEM_COST_AGGREGATE);
    assert_string_equal(p->model_name, "Mixtral-8x7B");
    assert_string_equal(p->model_dtype, "bf16");
    assert_true(p->model_hidden == 4096 && p->model_ffn == 14336);
    /* ids in any order */
    assert_string_equal(p->gpus[0].name, "NVIDIA L40");
    assert_string_equal(p->gpus[1].name, "NVIDIA L40 \"b\"");
    assert_string_equal(p->gpus[0].pci_bus_id, "0000:3b:00.0");
    assert_string_equal(p->gpus[0].host, "node0");
    assert_string_equal(p->gpus[0].cpuset, "0-15");
    assert_int_equal(p->gpus[0].numa_node, 1);
    assert_true(p->gpus[0].memory_bytes == 48000000000LL);
    assert_int_equal(p->gpus[1].numa_node, -1);
    assert_true(p->gpus[1].memory_bytes == -1);
    assert_null(p->gpus[1].host);
    assert_true(p->gpus[0].overhead == 8.0 && p->gpus[1].overhead == 2.5);
    assert_int_equal(p->gpus[0].curve.k, 3);
    assert_true(p->gpus[0].curve.tokens[2] == 192 && p->gpus[0].curve.latency[1] == 420.5);
    assert_null(p->gpus[0].curve.cv);
    assert_non_null(p->gpus[1].curve.cv);
    assert_true(p->gpus[1].curve.cv[0] == 0.01);
    /* 20.0 read as the integer 20 */
    assert_true(p->gpus[1].curve.tokens[1] == 20);
    assert_int_equal(p->a2a_n, 2);
    assert_true(p->a2a_bytes[1] == 1048576 && p->a2a_time[1] == 20.5 && p->a2a_time[2] == 11);
    /* interpolation was set before the curves: linear between samples */
    double us;
    assert_ok(gem_profile_latency(p, 1, 15, &us));
    assert_true(us == 150.0);
    gem_profile_destroy(p);
}

static void test_defaults(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    assert_ok(parse("{\"format\":\"gem-profile\",\"version\":1,\"gpus\":[{\"id\":0,"
                    "\"tokens\":[10,20],\"latency_us\":[100,200]}]}", &p));
    assert_int_equal(p->interpolation, GEM_INTERP_STEP);
    assert_int_equal(p->cost_model, GEM_COST_PER_EXPERT);
    assert_true(p->gpus[0].overhead == 0.0);
    assert_null(p->model_name);
    assert_int_equal(p->a2a_n, 0);
    double us;
    assert_ok(gem_profile_latency(p, 0, 15, &us));
    assert_true(us == 200.0); /* step */
    gem_profile_destroy(p);
}

/* A minimal valid profile with one piece replaced, for the malformed cases. */
static gem_status_t parse_gpus(const char *gpus)
{
    char text[2048];
    snprintf(text, sizeof text, "{\"format\":\"gem-profile\",\"version\":1,\"gpus\":[%s]}", gpus);
    gem_profile_t *p = NULL;
    gem_status_t st = parse(text, &p);
    if (st) assert_null(p);
    gem_profile_destroy(p);
    return st;
}

#define GPU0 "{\"id\":0,\"tokens\":[64,128],\"latency_us\":[1,2]}"

static void test_malformed_gpus(void **state)
{
    (void)state;
    assert_ok(parse_gpus(GPU0));
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus(""));
    assert_error_has("gpus: empty");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"tokens\":[64],\"latency_us\":[1]}"));
    assert_error_has("gpus[0].id: missing");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus(GPU0 "," GPU0));
    assert_error_has("gpus[1].id: gpu 0 appears twice");
    assert_gem(GEM_ERR_OUT_OF_RANGE, parse_gpus("{\"id\":1,\"tokens\":[64],\"latency_us\":[1]}"));
    assert_error_has("gpus[0].id");
    assert_gem(GEM_ERR_OUT_OF_RANGE, parse_gpus("{\"id\":-1,\"tokens\":[64],\"latency_us\":[1]}"));
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":\"0\",\"tokens\":[64],\"latency_us\":[1]}"));
    assert_error_has("expected an integer");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("7"));
    assert_error_has("gpus[0]: expected an object");
    /* curves */
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":0,\"latency_us\":[1]}"));
    assert_error_has("gpus[0].tokens: missing");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":0,\"tokens\":[],\"latency_us\":[]}"));
    assert_error_has("gpus[0].tokens: empty");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":0,\"tokens\":[64,128],\"latency_us\":[1]}"));
    assert_error_has("gpus[0].latency_us: 1 entries, expected 2");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[64,64.5,128,192],\"latency_us\":[1,2,3,4]}"));
    assert_error_has("gpus[0].tokens[1]: 64.5 is not an integer");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[64,128,192,100],\"latency_us\":[1,2,3,4]}"));
    assert_error_has("gpus[0].tokens[3]: 100 after 192");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":0,\"tokens\":[0],\"latency_us\":[1]}"));
    assert_error_has("gpus[0].tokens[0]");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[2000000000],\"latency_us\":[1]}"));
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[0]}"));
    assert_error_has("gpus[0].latency_us[0]: 0 must be > 0");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[-3]}"));
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[\"fast\"]}"));
    assert_error_has("expected a number, found a string");
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":0,\"tokens\":64,\"latency_us\":[1]}"));
    assert_error_has("gpus[0].tokens: expected an array");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[1],\"overhead_us\":-1}"));
    assert_error_has("gpus[0].overhead_us");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[1],\"latency_cv\":[1,2]}"));
    assert_error_has("gpus[0].latency_cv: 2 entries, expected 1");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[1],\"latency_cv\":[-0.5]}"));
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[1],\"name\":5}"));
    assert_error_has("gpus[0].name: expected a string");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[1],\"numa_node\":-2}"));
    /* NaN and infinity are not JSON, and overflowing reals are refused by the parser */
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[NaN]}"));
    assert_error_has("line 1");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[Infinity]}"));
    assert_gem(GEM_ERR_INVALID_INPUT, parse_gpus("{\"id\":0,\"tokens\":[64],\"latency_us\":[1e400]}"));
}

static void test_malformed_document(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    assert_gem(GEM_ERR_INVALID_INPUT, parse("[1, 2]", &p));
    assert_error_has("expected a JSON object");
    assert_gem(GEM_ERR_INVALID_INPUT, parse("{\"version\":1,\"gpus\":[" GPU0 "]}", &p));
    assert_error_has("format");
    assert_gem(GEM_ERR_INVALID_INPUT, parse("{\"format\":\"gem-mapping\",\"version\":1}", &p));
    assert_error_has("\"gem-mapping\"");
    assert_gem(GEM_ERR_INVALID_INPUT, parse("{\"format\":\"gem-profile\",\"gpus\":[" GPU0 "]}", &p));
    assert_error_has("version");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-profile\",\"version\":\"1\",\"gpus\":[" GPU0 "]}", &p));
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-profile\",\"version\":1.5,\"gpus\":[" GPU0 "]}", &p));
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-profile\",\"version\":0,\"gpus\":[" GPU0 "]}", &p));
    /* too new: refused before anything else is looked at */
    assert_gem(GEM_ERR_VERSION, parse("{\"format\":\"gem-profile\",\"version\":2,\"gpus\":7}", &p));
    assert_error_has("version 2");
    assert_gem(GEM_ERR_INVALID_INPUT, parse("{\"format\":\"gem-profile\",\"version\":1}", &p));
    assert_error_has("gpus: missing");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-profile\",\"version\":1,\"interpolation\":\"cubic\","
                     "\"gpus\":[" GPU0 "]}", &p));
    assert_error_has("interpolation: \"cubic\"");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-profile\",\"version\":1,\"cost_model\":3,"
                     "\"gpus\":[" GPU0 "]}", &p));
    assert_error_has("cost_model");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-profile\",\"version\":1,\"model\":{\"hidden\":\"big\"},"
                     "\"gpus\":[" GPU0 "]}", &p));
    assert_error_has("model.hidden");
    /* all-to-all shape: one row per GPU, one column per size */
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-profile\",\"version\":1,\"gpus\":[" GPU0 "],"
                     "\"alltoall\":{\"bytes\":[1,2],\"time_us\":[[1]]}}", &p));
    assert_error_has("alltoall.time_us[0]");
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-profile\",\"version\":1,\"gpus\":[" GPU0 "],"
                     "\"alltoall\":{\"bytes\":[1],\"time_us\":[[1],[2]]}}", &p));
    assert_error_has("alltoall.time_us: 2 entries, expected 1");
    /* duplicate keys are ambiguous */
    assert_gem(GEM_ERR_INVALID_INPUT,
               parse("{\"format\":\"gem-profile\",\"version\":1,\"version\":1,\"gpus\":[" GPU0 "]}", &p));
    assert_error_has("duplicate");
    /* syntax: line and column */
    assert_gem(GEM_ERR_INVALID_INPUT, parse("{\"format\": \"gem-profile\",\n\"version\": 1,\n\"gpus\": [}", &p));
    assert_error_has("line 3");
    assert_error_has("column");
    /* truncated file */
    size_t cut = strlen(FULL) / 2;
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_parse(FULL, cut, &p));
    assert_error_has("line");
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_parse("", 0, &p));
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_parse(NULL, 0, &p));
    assert_null(p);
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_parse(FULL, strlen(FULL), NULL));
}

static void test_nonexistent_file(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    assert_gem(GEM_ERR_IO, gem_profile_read("/nonexistent/dir/profile.json", &p));
    assert_error_has("/nonexistent/dir/profile.json");
    assert_error_has("No such file");
    assert_null(p);
    /* a directory is not a file */
    assert_gem(GEM_ERR_IO, gem_profile_read("/tmp", &p));
}

static void test_round_trip_exact(void **state)
{
    (void)state;
    gem_profile_t *p = NULL, *q = NULL;
    assert_ok(parse(FULL, &p));
    /* values that need all 17 digits, tiny and huge ones */
    int64_t tok[5] = {1, 3, 1000, 65536, GEM_MAX_TOKENS};
    double lat[5] = {0.1, 1.0 / 3.0, 2.0 / 3.0 * 1e5, 1e300, 5e-324};
    double cv[5] = {0, 1e-17, 0.2, 3.0000000000000004, 1e15 + 0.5};
    assert_ok(gem_profile_set_curve(p, 0, 5, tok, lat, cv));
    assert_ok(gem_profile_set_overhead(p, 0, 12.300000000000001));
    assert_ok(gem_profile_set_gpu_string(p, 1, "host", "h\xc3\xa9te \\ \"q\"\n\t\x01"));
    char *s1 = NULL, *s2 = NULL;
    assert_ok(gem_profile_to_string(p, &s1));
    assert_ok(parse(s1, &q));
    assert_profiles_equal(p, q);
    assert_ok(gem_profile_to_string(q, &s2));
    assert_string_equal(s1, s2);
    /* through a file too */
    char *path = tu_temp_path(".json");
    gem_profile_t *r = NULL;
    assert_ok(gem_profile_write(q, path));
    assert_ok(gem_profile_read(path, &r));
    assert_profiles_equal(p, r);
    char *s3 = tu_read_file(path);
    assert_string_equal(s1, s3);
    unlink(path);
    free(path);
    free(s3);
    gem_free(s1);
    gem_free(s2);
    gem_profile_destroy(p);
    gem_profile_destroy(q);
    gem_profile_destroy(r);
}

static void test_round_trip_minimal(void **state)
{
    (void)state;
    double slow[3] = {1.0, 1.077, 1.3};
    gem_profile_t *p = tu_profile(3, slow, 64, 8, 123.456, 20.0), *q = NULL;
    char *s1 = NULL, *s2 = NULL;
    assert_ok(gem_profile_to_string(p, &s1));
    assert_null(strstr(s1, "\"model\""));
    assert_null(strstr(s1, "alltoall"));
    assert_null(strstr(s1, "numa_node"));
    assert_ok(parse(s1, &q));
    assert_profiles_equal(p, q);
    assert_ok(gem_profile_to_string(q, &s2));
    assert_string_equal(s1, s2);
    gem_free(s1);
    gem_free(s2);
    gem_profile_destroy(p);
    gem_profile_destroy(q);
}

static void test_writer_refuses(void **state)
{
    (void)state;
    gem_profile_t *p = NULL;
    char *s = NULL;
    assert_ok(gem_profile_create(&p, 2));
    int64_t tok[1] = {64};
    double lat[1] = {5};
    assert_ok(gem_profile_set_curve(p, 0, 1, tok, lat, NULL));
    /* gpu 1 has no curve: the file would not read back */
    assert_gem(GEM_ERR_INVALID_INPUT, gem_profile_to_string(p, &s));
    assert_error_has("gpu 1");
    assert_null(s);
    assert_ok(gem_profile_set_curve(p, 1, 1, tok, lat, NULL));
    assert_ok(gem_profile_set_gpu_string(p, 0, "name", "bad \xff utf-8"));
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_profile_to_string(p, &s));
    assert_error_has("UTF-8");
    gem_profile_destroy(p);
}

/* ---- atomic writes (io_util.c) ------------------------------------------------------------ */

static char *make_temp_dir(void)
{
    char *base = tu_temp_path("-dir");
    assert_int_equal(mkdir(base, 0700), 0);
    return base;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_atomic_write_missing_directory(void **state)
{
    (void)state;
    gem_profile_t *p = tu_profile(2, NULL, 64, 4, 10, 1);
    char *dir = make_temp_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/missing/profile.json", dir);
    assert_gem(GEM_ERR_IO, gem_profile_write(p, path));
    assert_error_has(path);
    assert_int_equal(count_entries(dir), 0);
    rmdir(dir);
    free(dir);
    gem_profile_destroy(p);
}

static void test_atomic_write_keeps_target_on_failure(void **state)
{
    (void)state;
    char *dir = make_temp_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/profile.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("old contents\n", f);
    fclose(f);
    gem_profile_t *p = tu_profile(4, NULL, 64, 32, 10, 1);

    /* A file size limit makes write(2) fail with EFBIG part-way. */
    struct rlimit old, small = {64, 64};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    gem_status_t st = gem_profile_write(p, path);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_gem(GEM_ERR_IO, st);
    assert_error_has("left as it was");
    char *text = tu_read_file(path);
    assert_string_equal(text, "old contents\n");
    free(text);
    assert_int_equal(count_entries(dir), 1); /* no temporary file left */

    /* Renaming onto a directory fails: the temporary file goes away too. */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_gem(GEM_ERR_IO, gem_profile_write(p, sub));
    assert_int_equal(count_entries(dir), 2);

    /* and a successful write replaces the file whole */
    assert_ok(gem_profile_write(p, path));
    gem_profile_t *q = NULL;
    assert_ok(gem_profile_read(path, &q));
    assert_profiles_equal(p, q);
    assert_int_equal(count_entries(dir), 2);
    gem_profile_destroy(q);
    rmdir(sub);
    unlink(path);
    rmdir(dir);
    free(dir);
    gem_profile_destroy(p);
}

static void test_atomic_write_keeps_mode(void **state)
{
    (void)state;
    char *dir = make_temp_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/x.txt", dir);
    assert_ok(gem__write_file_atomic(path, "abc", 3));
    assert_int_equal(chmod(path, 0640), 0);
    assert_ok(gem__write_file_atomic(path, "", 0));
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
    assert_int_equal(sb.st_size, 0);
    unlink(path);
    rmdir(dir);
    free(dir);
}

static void test_atomic_write_long_name(void **state)
{
    (void)state;
    /* a 250-byte file name: the temporary name must not be longer than the file system allows */
    char *dir = make_temp_dir();
    char name[251];
    memset(name, 'n', 250);
    name[250] = '\0';
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_ok(gem__write_file_atomic(path, "x\n", 2));
    char *text = tu_read_file(path);
    assert_string_equal(text, "x\n");
    free(text);
    assert_int_equal(count_entries(dir), 1);
    unlink(path);
    /* a bare name writes in the current directory */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    assert_ok(gem__write_file_atomic("bare.txt", "y", 1));
    assert_int_equal(count_entries("."), 1);
    unlink("bare.txt");
    assert_int_equal(chdir(cwd), 0);
    rmdir(dir);
    free(dir);
}

/* Every allocation failing in turn: GEM_ERR_NO_MEMORY, nothing leaked (LeakSanitizer). */
static void test_alloc_failures(void **state)
{
    (void)state;
    int n;
    for (n = 1; n < 10000; n++) {
        gem_profile_t *p = NULL;
        char *s = NULL;
        gem__inject_alloc_failure(n);
        gem_status_t st = parse(FULL, &p);
        if (!st) {
            st = gem_profile_to_string(p, &s);
            gem_free(s);
            gem_profile_destroy(p);
        } else {
            assert_null(p); /* no half-built profile */
        }
        gem__inject_alloc_failure(0);
        if (st == GEM_OK) break;
        assert_int_equal(st, GEM_ERR_NO_MEMORY);
    }
    assert_true(n > 5 && n < 10000);
}

static void test_read_file_limit(void **state)
{
    (void)state;
    char *path = tu_temp_path(".big");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    /* sparse: no disk space is used */
    int ok = ftruncate(fd, ((off_t)4 << 30) + 1) == 0;
    close(fd);
    if (ok) {
        char *data = NULL;
        size_t len = 0;
        assert_gem(GEM_ERR_LIMIT, gem__read_file(path, &data, &len));
        assert_error_has("4 GiB");
        assert_null(data);
        gem_profile_t *p = NULL;
        assert_gem(GEM_ERR_LIMIT, gem_profile_read(path, &p));
    }
    unlink(path);
    free(path);
    /* an empty file reads as empty text */
    char *empty = tu_write_temp("", ".txt");
    char *data = NULL;
    size_t len = 9;
    assert_ok(gem__read_file(empty, &data, &len));
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);
    unlink(empty);
    free(empty);
}

static void test_decimal_parser(void **state)
{
    (void)state;
    double x;
    int64_t i;
    const char *good[] = {"0", "12", "-3", "+4", "1.5", ".5", "5.", "1e3", "1E-3", "2.5e+10"};
    const double val[] = {0, 12, -3, 4, 1.5, 0.5, 5, 1000, 0.001, 2.5e10};
    for (size_t k = 0; k < sizeof good / sizeof *good; k++) {
        assert_int_equal(gem__parse_decimal(good[k], strlen(good[k]), &x), 1);
        assert_true(x == val[k]);
    }
    const char *bad[] = {"", ".", "-", "e3", "1e", "0x10", "nan", "inf", "1.2.3", " 1", "1 ",
                         "1,", "1e3x", "--1", "1..2"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        assert_int_equal(gem__parse_decimal(bad[k], strlen(bad[k]), &x), 0);
    /* exactly n bytes are read */
    assert_int_equal(gem__parse_decimal("12345", 2, &x), 1);
    assert_true(x == 12);
    assert_int_equal(gem__parse_uint("123", 3, 200, &i), 1);
    assert_int_equal(i, 123);
    assert_int_equal(gem__parse_uint("201", 3, 200, &i), -1);
    assert_int_equal(gem__parse_uint("99999999999999999999999", 23, INT64_MAX, &i), -1);
    assert_int_equal(gem__parse_uint("-1", 2, 200, &i), 0);
    assert_int_equal(gem__parse_uint("", 0, 200, &i), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_every_field),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_malformed_gpus),
        cmocka_unit_test(test_malformed_document),
        cmocka_unit_test(test_nonexistent_file),
        cmocka_unit_test(test_round_trip_exact),
        cmocka_unit_test(test_round_trip_minimal),
        cmocka_unit_test(test_writer_refuses),
        cmocka_unit_test(test_atomic_write_missing_directory),
        cmocka_unit_test(test_atomic_write_keeps_target_on_failure),
        cmocka_unit_test(test_atomic_write_keeps_mode),
        cmocka_unit_test(test_atomic_write_long_name),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_read_file_limit),
        cmocka_unit_test(test_decimal_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
