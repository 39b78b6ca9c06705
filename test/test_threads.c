/*
 * test_threads.c - libgem from many threads at once (gem.h "Thread safety"; docs/threads.md).
 *
 *  - Eight threads each run the whole pipeline on handles of their own (sim profile, synthetic
 *    trace, every cheap policy including gem with its own worker threads, evaluation, files):
 *    every result must equal the one computed alone on the main thread first.
 *  - Eight threads share one const profile, trace, options, classification and mapping, which
 *    gem.h allows: same results again.
 *  - Error messages are per thread: one thread's failure never shows in another's
 *    gem_last_error().
 *  - The progress callback of a multi-threaded gem_compute_mapping is never entered twice at
 *    once; the profiling runner is called for each device from one thread of its own.
 *
 * Workers never call cmocka's asserts (they are not thread-safe): they record their first
 * failure in a message that the main thread asserts on after joining. `make tsan` builds this
 * file with -fsanitize=thread; the plain, ASan and valgrind runs use it too.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NTHREADS 8

/* Sizes: small enough for valgrind and TSan, big enough that policies do real work. */
#define T_GPUS 4
#define T_STEPS 24
#define T_LAYERS 4
#define T_EXPERTS 16
#define T_TOKENS 256

static const gem_policy_t t_policies[] = {
    GEM_POLICY_CONTIGUOUS, GEM_POLICY_ROUND_ROBIN, GEM_POLICY_BALANCED,
    GEM_POLICY_SPEED_AWARE, GEM_POLICY_GEM,        GEM_POLICY_EPLB,
};
#define NPOLICIES (sizeof t_policies / sizeof *t_policies)

static const gem_metric_t t_metrics[] = {
    GEM_METRIC_MEAN, GEM_METRIC_P50, GEM_METRIC_P90, GEM_METRIC_P99, GEM_METRIC_TOTAL,
    GEM_METRIC_LOWER_BOUND, GEM_METRIC_MAX, GEM_METRIC_STEPS, GEM_METRIC_IMBALANCE,
};
#define NMETRICS (sizeof t_metrics / sizeof *t_metrics)

/* What the main thread computed alone. */
typedef struct {
    char *profile_text, *trace_text;
    char *mapping_text[NPOLICIES];
    char *report_json[NPOLICIES];
    double metric[NPOLICIES][NMETRICS];
} t_expected;

static t_expected expected;

/* ---- worker bookkeeping ------------------------------------------------------------------ */

typedef struct {
    int id;
    char fail[768]; /* first failure, "" when none */
    /* shared phase */
    const gem_profile_t *profile;
    const gem_trace_t *trace;
    const gem_options_t *opts;
    const gem_classification_t *cls;
    const gem_mapping_t *mapping;
    const gem_report_t *report;
    pthread_barrier_t *barrier;
} t_worker;

static void t_failf(t_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void t_failf(t_worker *w, const char *fmt, ...)
{
    if (w->fail[0]) return;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(w->fail, sizeof w->fail, "thread %d: ", w->id);
    vsnprintf(w->fail + n, sizeof w->fail - (size_t)n, fmt, ap);
    va_end(ap);
}

/* In a worker: a call that must succeed; on failure note it and jump to the cleanup. */
#define T_OK(w, call)                                                                        \
    do {                                                                                     \
        gem_status_t wst__ = (call);                                                         \
        if (wst__ != GEM_OK) {                                                               \
            t_failf((w), "%s: %s: %s", #call, gem_status_string(wst__), gem_last_error());   \
            goto out;                                                                        \
        }                                                                                    \
    } while (0)
#define T_CHECK(w, cond, ...)                                                                \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            t_failf((w), __VA_ARGS__);                                                       \
            goto out;                                                                        \
        }                                                                                    \
    } while (0)

static int t_same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* A temporary path unique to the thread (tu_temp_path's counter is not thread-safe). */
static void t_path(char *buf, size_t n, int id, const char *what)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    snprintf(buf, n, "%s/gemthreads-%ld-%d-%s", dir, (long)getpid(), id, what);
}

/* ---- the pipeline -------------------------------------------------------------------------- */

static gem_status_t t_make_options(gem_options_t **out)
{
    gem_options_t *o = NULL;
    gem_status_t st = gem_options_create(&o);
    if (!st) st = gem_options_set_int(o, GEM_OPT_SIM_GPUS, T_GPUS);
    if (!st) st = gem_options_set_double(o, GEM_OPT_SIM_SPREAD, 0.12);
    if (!st) st = gem_options_set_double(o, GEM_OPT_SIM_NOISE, 0.02);
    if (!st) st = gem_options_set_int(o, GEM_OPT_SEED, 7);
    if (!st) st = gem_options_set_int(o, GEM_OPT_RESTARTS, 2);
    if (!st) st = gem_options_set_int(o, GEM_OPT_THREADS, 2);
    if (!st) st = gem_options_set_string(o, GEM_OPT_HOST_NAME, "threads-test");
    if (st) {
        gem_options_destroy(o);
        return st;
    }
    *out = o;
    return GEM_OK;
}

/* Options of one policy: eplb gets redundant slots, so that replicas are exercised too. */
static gem_status_t t_policy_options(const gem_options_t *base, gem_policy_t p,
                                     gem_options_t **out)
{
    gem_status_t st = gem_options_clone(base, out);
    if (!st && p == GEM_POLICY_EPLB) st = gem_options_set_int(*out, GEM_OPT_REDUNDANT_SLOTS, 4);
    if (st) {
        gem_options_destroy(*out);
        *out = NULL;
    }
    return st;
}

static gem_status_t t_make_inputs(const gem_options_t *opts, gem_profile_t **p, gem_trace_t **t)
{
    gem_status_t st = gem_profile_gpus(GEM_BACKEND_SIM, opts, p);
    if (st) return st;
    st = gem_trace_synthesize(T_STEPS, T_LAYERS, T_EXPERTS, T_TOKENS, 0.6, opts, t);
    if (st) {
        gem_profile_destroy(*p);
        *p = NULL;
    }
    return st;
}

/* One policy on the given inputs: the mapping's text, the report's JSON and metrics. */
static gem_status_t t_run_policy(const gem_profile_t *p, const gem_trace_t *t,
                                 const gem_options_t *opts, int pi, char **mapping_text,
                                 char **report_json, double *metric)
{
    gem_options_t *po = NULL;
    gem_mapping_t *m = NULL;
    gem_report_t *r = NULL;
    *mapping_text = *report_json = NULL;
    gem_status_t st = t_policy_options(opts, t_policies[pi], &po);
    if (!st) st = gem_compute_mapping(p, t, t_policies[pi], po, NULL, &m);
    if (!st) st = gem_mapping_to_string(m, mapping_text);
    if (!st) st = gem_evaluate(p, t, m, po, &r);
    if (!st) st = gem_report_to_json(r, report_json);
    for (size_t k = 0; !st && k < NMETRICS; k++) st = gem_report_get(r, t_metrics[k], &metric[k]);
    gem_report_destroy(r);
    gem_mapping_destroy(m);
    gem_options_destroy(po);
    return st;
}

/* Writes a handle's text to a file through the library and reads it back as text. */
static void t_files(t_worker *w, const gem_profile_t *p, const gem_trace_t *t)
{
    char path[512];
    gem_profile_t *p2 = NULL;
    gem_trace_t *t2 = NULL;
    gem_mapping_t *m = NULL, *m2 = NULL;
    char *s = NULL;

    t_path(path, sizeof path, w->id, "profile.json");
    T_OK(w, gem_profile_write(p, path));
    T_OK(w, gem_profile_read(path, &p2));
    unlink(path);
    T_OK(w, gem_profile_to_string(p2, &s));
    T_CHECK(w, t_same(s, expected.profile_text), "profile read back from %s differs", path);
    gem_free(s);
    s = NULL;

    t_path(path, sizeof path, w->id, "trace.csv");
    T_OK(w, gem_trace_write(t, path));
    T_OK(w, gem_trace_read(path, &t2));
    unlink(path);
    T_OK(w, gem_trace_to_string(t2, &s));
    T_CHECK(w, t_same(s, expected.trace_text), "trace read back from %s differs", path);
    gem_free(s);
    s = NULL;

    t_path(path, sizeof path, w->id, "mapping.json");
    T_OK(w, gem_mapping_parse(expected.mapping_text[0], strlen(expected.mapping_text[0]), &m));
    T_OK(w, gem_mapping_write(m, path));
    T_OK(w, gem_mapping_read(path, &m2));
    unlink(path);
    T_OK(w, gem_mapping_to_string(m2, &s));
    T_CHECK(w, t_same(s, expected.mapping_text[0]), "mapping read back from %s differs", path);
out:
    gem_free(s);
    gem_profile_destroy(p2);
    gem_trace_destroy(t2);
    gem_mapping_destroy(m);
    gem_mapping_destroy(m2);
}

/* Compares one policy's results with the expected ones. */
static void t_check_policy(t_worker *w, int pi, const char *mtext, const char *rjson,
                           const double *metric, const char *where)
{
    T_CHECK(w, t_same(mtext, expected.mapping_text[pi]), "%s: policy %s: mapping differs", where,
            gem_policy_name(t_policies[pi]));
    T_CHECK(w, t_same(rjson, expected.report_json[pi]), "%s: policy %s: report differs", where,
            gem_policy_name(t_policies[pi]));
    for (size_t k = 0; k < NMETRICS; k++)
        T_CHECK(w, metric[k] == expected.metric[pi][k], "%s: policy %s: metric %d is %.17g, "
                "expected %.17g", where, gem_policy_name(t_policies[pi]), (int)t_metrics[k],
                metric[k], expected.metric[pi][k]);
out:;
}

static void *t_own_pipeline(void *arg)
{
    t_worker *w = arg;
    gem_options_t *opts = NULL;
    gem_profile_t *p = NULL;
    gem_trace_t *t = NULL;
    char *s = NULL, *mtext = NULL, *rjson = NULL;
    double metric[NMETRICS];

    T_OK(w, t_make_options(&opts));
    T_OK(w, t_make_inputs(opts, &p, &t));
    T_OK(w, gem_profile_to_string(p, &s));
    T_CHECK(w, t_same(s, expected.profile_text), "own sim profile differs");
    gem_free(s);
    s = NULL;
    T_OK(w, gem_trace_to_string(t, &s));
    T_CHECK(w, t_same(s, expected.trace_text), "own synthetic trace differs");
    /* each thread walks the policies from a different one, so different policies overlap */
    for (size_t i = 0; i < NPOLICIES && !w->fail[0]; i++) {
        int pi = (int)((i + (size_t)w->id) % NPOLICIES);
        T_OK(w, t_run_policy(p, t, opts, pi, &mtext, &rjson, metric));
        t_check_policy(w, pi, mtext, rjson, metric, "own handles");
        gem_free(mtext);
        gem_free(rjson);
        mtext = rjson = NULL;
    }
    if (!w->fail[0]) t_files(w, p, t);
out:
    gem_free(s);
    gem_free(mtext);
    gem_free(rjson);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
    gem_options_destroy(opts);
    return NULL;
}

/* ---- setup: the single-threaded reference ------------------------------------------------ */

static int setup_expected(void **state)
{
    (void)state;
    gem_options_t *opts = NULL;
    gem_profile_t *p = NULL;
    gem_trace_t *t = NULL;
    assert_ok(t_make_options(&opts));
    /* the reference is computed with one worker thread, the workers use two */
    assert_ok(gem_options_set_int(opts, GEM_OPT_THREADS, 1));
    assert_ok(t_make_inputs(opts, &p, &t));
    assert_ok(gem_profile_to_string(p, &expected.profile_text));
    assert_ok(gem_trace_to_string(t, &expected.trace_text));
    for (size_t i = 0; i < NPOLICIES; i++)
        assert_ok(t_run_policy(p, t, opts, (int)i, &expected.mapping_text[i],
                               &expected.report_json[i], expected.metric[i]));
    gem_trace_destroy(t);
    gem_profile_destroy(p);
    gem_options_destroy(opts);
    return 0;
}

static int teardown_expected(void **state)
{
    (void)state;
    gem_free(expected.profile_text);
    gem_free(expected.trace_text);
    for (size_t i = 0; i < NPOLICIES; i++) {
        gem_free(expected.mapping_text[i]);
        gem_free(expected.report_json[i]);
    }
    memset(&expected, 0, sizeof expected);
    return 0;
}

static void t_run_threads(void *(*fn)(void *), t_worker *w)
{
    pthread_t tid[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i].id = i;
        assert_int_equal(pthread_create(&tid[i], NULL, fn, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) assert_int_equal(pthread_join(tid[i], NULL), 0);
    for (int i = 0; i < NTHREADS; i++) {
        if (w[i].fail[0]) print_error("%s\n", w[i].fail);
        assert_string_equal(w[i].fail, "");
    }
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_own_handles_in_parallel(void **state)
{
    (void)state;
    t_worker w[NTHREADS];
    memset(w, 0, sizeof w);
    t_run_threads(t_own_pipeline, w);
}

/* Everything here takes the shared handles as const. */
static void *t_shared_pipeline(void *arg)
{
    t_worker *w = arg;
    char *mtext = NULL, *rjson = NULL, *s = NULL;
    gem_classification_t *cls = NULL;
    gem_mapping_t *m = NULL;
    double metric[NMETRICS];
    double *row = NULL;

    pthread_barrier_wait(w->barrier); /* start together */
    for (size_t i = 0; i < NPOLICIES && !w->fail[0]; i++) {
        int pi = (int)((i + (size_t)w->id) % NPOLICIES);
        T_OK(w, t_run_policy(w->profile, w->trace, w->opts, pi, &mtext, &rjson, metric));
        t_check_policy(w, pi, mtext, rjson, metric, "shared handles");
        gem_free(mtext);
        gem_free(rjson);
        mtext = rjson = NULL;
    }
    if (w->fail[0]) goto out;

    /* policy gem with a shared precomputed classification gives what it gives alone */
    int gi = 4;
    T_CHECK(w, t_policies[gi] == GEM_POLICY_GEM, "policy table changed");
    T_OK(w, gem_compute_mapping(w->profile, w->trace, GEM_POLICY_GEM, w->opts, w->cls, &m));
    T_OK(w, gem_mapping_to_string(m, &s));
    T_CHECK(w, t_same(s, expected.mapping_text[gi]), "gem with a shared classification differs");
    gem_free(s);
    s = NULL;

    /* read-only queries on every shared handle */
    T_OK(w, gem_profile_to_string(w->profile, &s));
    T_CHECK(w, t_same(s, expected.profile_text), "shared profile text differs");
    gem_free(s);
    s = NULL;
    T_OK(w, gem_trace_to_string(w->trace, &s));
    T_CHECK(w, t_same(s, expected.trace_text), "shared trace text differs");
    gem_free(s);
    s = NULL;
    T_OK(w, gem_mapping_to_string(w->mapping, &s));
    T_CHECK(w, t_same(s, expected.mapping_text[0]), "shared mapping text differs");
    gem_free(s);
    s = NULL;
    T_OK(w, gem_report_to_json(w->report, &s));
    T_CHECK(w, t_same(s, expected.report_json[0]), "shared report JSON differs");
    T_OK(w, gem_classify_experts(w->trace, w->opts, &cls));
    for (int32_t l = 0; l < T_LAYERS; l++)
        for (int32_t e = 0; e < T_EXPERTS; e++) {
            gem_expert_class_t a, b;
            double fa, fb;
            int64_t ca, cb;
            T_OK(w, gem_classification_get(cls, l, e, &a, &fa, NULL, NULL));
            T_OK(w, gem_classification_get(w->cls, l, e, &b, &fb, NULL, NULL));
            T_OK(w, gem_classification_coactivation(cls, l, e, (e + 1) % T_EXPERTS, &ca));
            T_OK(w, gem_classification_coactivation(w->cls, l, e, (e + 1) % T_EXPERTS, &cb));
            T_CHECK(w, a == b && fa == fb && ca == cb, "classification of layer %d expert %d "
                    "differs", (int)l, (int)e);
        }
    row = malloc(sizeof *row * T_EXPERTS);
    T_CHECK(w, row != NULL, "malloc");
    for (int64_t st = 0; st < T_STEPS; st++) T_OK(w, gem_trace_get(w->trace, st, 0, row, T_EXPERTS));
    for (int32_t g = 0; g < T_GPUS; g++) {
        double us;
        int64_t straggler;
        T_OK(w, gem_profile_latency(w->profile, g, 100.5, &us));
        T_OK(w, gem_report_gpu(w->report, g, &us, &straggler));
    }
    for (int f = GEM_EXPORT_SGLANG; f <= GEM_EXPORT_TRTLLM; f++) {
        gem_free(s);
        s = NULL;
        T_OK(w, gem_mapping_export_string(w->mapping, (gem_export_format_t)f, &s));
    }
out:
    free(row);
    gem_free(s);
    gem_free(mtext);
    gem_free(rjson);
    gem_mapping_destroy(m);
    gem_classification_destroy(cls);
    return NULL;
}

static void test_shared_const_handles(void **state)
{
    (void)state;
    gem_options_t *opts = NULL;
    gem_profile_t *p = NULL;
    gem_trace_t *t = NULL;
    gem_classification_t *cls = NULL;
    gem_mapping_t *m = NULL;
    gem_report_t *r = NULL;
    pthread_barrier_t barrier;
    assert_ok(t_make_options(&opts));
    assert_ok(t_make_inputs(opts, &p, &t));
    assert_ok(gem_classify_experts(t, opts, &cls));
    assert_ok(gem_mapping_parse(expected.mapping_text[0], strlen(expected.mapping_text[0]), &m));
    assert_ok(gem_evaluate(p, t, m, opts, &r));
    assert_int_equal(pthread_barrier_init(&barrier, NULL, NTHREADS), 0);

    t_worker w[NTHREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < NTHREADS; i++) {
        w[i].profile = p;
        w[i].trace = t;
        w[i].opts = opts;
        w[i].cls = cls;
        w[i].mapping = m;
        w[i].report = r;
        w[i].barrier = &barrier;
    }
    t_run_threads(t_shared_pipeline, w);

    pthread_barrier_destroy(&barrier);
    gem_report_destroy(r);
    gem_mapping_destroy(m);
    gem_classification_destroy(cls);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
    gem_options_destroy(opts);
}

/* Every thread fails a call with its own numbers, waits until all have, then finds its own
 * message; the even threads then succeed at a call, which clears only their own messages.
 * No early return here: every thread must reach every barrier. */
static void *t_errors(void *arg)
{
    t_worker *w = arg;
    gem_trace_t *t = NULL;
    char mine[64], theirs[64];
    int32_t layers = -(w->id + 1);
    snprintf(mine, sizeof mine, " %d layers", (int)layers);

    gem_status_t st = gem_trace_create(&t, layers, 5);
    if (st != GEM_ERR_INVALID_ARGUMENT || t != NULL)
        t_failf(w, "gem_trace_create(%d layers) returned %d", (int)layers, (int)st);
    pthread_barrier_wait(w->barrier);
    if (!strstr(gem_last_error(), mine))
        t_failf(w, "own message lost: \"%s\" lacks \"%s\"", gem_last_error(), mine);
    for (int other = 0; other < NTHREADS; other++) {
        snprintf(theirs, sizeof theirs, " %d layers", -(other + 1));
        if (other != w->id && strstr(gem_last_error(), theirs))
            t_failf(w, "thread %d's message shows here: \"%s\"", other, gem_last_error());
    }
    pthread_barrier_wait(w->barrier);
    if (w->id % 2 == 0) {
        st = gem_trace_create(&t, 1, 1);
        if (st != GEM_OK) t_failf(w, "gem_trace_create(1, 1): %s", gem_last_error());
        else if (gem_last_error()[0] != '\0')
            t_failf(w, "message after a success: \"%s\"", gem_last_error());
    }
    pthread_barrier_wait(w->barrier); /* the even threads have cleared theirs */
    if (w->id % 2 == 1 && !strstr(gem_last_error(), mine))
        t_failf(w, "another thread's success cleared this one's message (now \"%s\")",
                gem_last_error());
    gem_trace_destroy(t);
    return NULL;
}

static void test_error_messages_per_thread(void **state)
{
    (void)state;
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, NTHREADS), 0);
    t_worker w[NTHREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < NTHREADS; i++) w[i].barrier = &barrier;
    t_run_threads(t_errors, w);
    pthread_barrier_destroy(&barrier);
    /* the main thread made none of those calls: its message is its own */
    gem_trace_t *t = NULL;
    assert_gem(GEM_ERR_INVALID_ARGUMENT, gem_trace_create(&t, 0, 0));
    assert_error_has(" 0 layers");
    assert_null(t);
}

/* ---- progress callbacks from the mapping workers ------------------------------------------- */

typedef struct {
    atomic_int inside;  /* callbacks running right now */
    atomic_int overlap; /* times a callback found another one running */
    atomic_int calls;
    double last_done;
    int non_monotonic;
} t_progress;

static int t_progress_cb(void *user, const char *what, double done, double total)
{
    t_progress *pr = user;
    if (atomic_fetch_add(&pr->inside, 1) != 0) atomic_fetch_add(&pr->overlap, 1);
    atomic_fetch_add(&pr->calls, 1);
    /* plain fields: safe only because calls are serialised, which TSan would catch */
    if (done < pr->last_done || done > total) pr->non_monotonic = 1;
    pr->last_done = done;
    (void)what;
    usleep(200); /* widen the window in which a second call could overlap */
    atomic_fetch_sub(&pr->inside, 1);
    return 0;
}

static void test_progress_callback_serialised(void **state)
{
    (void)state;
    gem_options_t *opts = NULL;
    gem_profile_t *p = NULL;
    gem_trace_t *t = NULL;
    gem_mapping_t *m = NULL;
    t_progress pr;
    memset(&pr, 0, sizeof pr);
    assert_ok(t_make_options(&opts));
    assert_ok(t_make_inputs(opts, &p, &t));
    assert_ok(gem_options_set_int(opts, GEM_OPT_THREADS, 4));
    assert_ok(gem_options_set_progress(opts, t_progress_cb, &pr));
    assert_ok(gem_compute_mapping(p, t, GEM_POLICY_GEM, opts, NULL, &m));
    assert_int_equal(atomic_load(&pr.overlap), 0);
    assert_int_equal(pr.non_monotonic, 0);
    assert_true(atomic_load(&pr.calls) >= 1);
    /* the callback changes nothing: same mapping as without it */
    char *s = NULL;
    assert_ok(gem_mapping_to_string(m, &s));
    assert_string_equal(s, expected.mapping_text[4]);
    gem_free(s);
    gem_mapping_destroy(m);
    gem_trace_destroy(t);
    gem_profile_destroy(p);
    gem_options_destroy(opts);
}

/* ---- runner callbacks from the profiling threads -------------------------------------------- */

#define T_DEVICES 4

typedef struct {
    pthread_t thread[T_DEVICES]; /* the thread that first measured each device */
    int seen[T_DEVICES];
    atomic_int wrong_thread;     /* a device measured from two threads */
    atomic_int bad_device;
    atomic_int calls;
} t_runner;

/* A deterministic "GPU": tiles of 32 tokens, device d is (1 + d/10) times slower. Each slot of
 * t_runner is written only by its device's thread, so TSan checks that claim too. */
static double t_runner_fn(void *user, int device, int64_t tokens)
{
    t_runner *r = user;
    atomic_fetch_add(&r->calls, 1);
    if (device < 0 || device >= T_DEVICES) {
        atomic_fetch_add(&r->bad_device, 1);
        return -1;
    }
    if (!r->seen[device]) {
        r->seen[device] = 1;
        r->thread[device] = pthread_self();
    } else if (!pthread_equal(r->thread[device], pthread_self())) {
        atomic_fetch_add(&r->wrong_thread, 1);
    }
    int64_t tiles = (tokens + 31) / 32;
    return 50.0 * (1.0 + device / 10.0) * (double)(1 + tiles);
}

static void test_runner_called_per_device(void **state)
{
    (void)state;
    gem_options_t *opts = NULL;
    gem_profile_t *p = NULL, *again = NULL;
    t_runner r;
    memset(&r, 0, sizeof r);
    assert_ok(gem_options_create(&opts));
    assert_ok(gem_options_set_int(opts, GEM_OPT_PROFILE_MAX_TOKENS, 512));
    assert_ok(gem_options_set_int(opts, GEM_OPT_SIM_TILE, 32));
    assert_ok(gem_options_set_int(opts, GEM_OPT_PROFILE_WARMUP_MS, 0));
    assert_ok(gem_options_set_int(opts, GEM_OPT_PROFILE_REPEATS, 1));
    assert_ok(gem_options_set_string(opts, GEM_OPT_HOST_NAME, "threads-test"));
    assert_ok(gem_options_set_runner(opts, t_runner_fn, &r, T_DEVICES));
    assert_ok(gem_profile_gpus(GEM_BACKEND_CALLBACK, opts, &p));
    assert_int_equal(atomic_load(&r.bad_device), 0);
    assert_int_equal(atomic_load(&r.wrong_thread), 0);
    assert_true(atomic_load(&r.calls) >= T_DEVICES);
    for (int d = 0; d < T_DEVICES; d++) assert_true(r.seen[d]);
    int32_t G = 0;
    assert_ok(gem_profile_num_gpus(p, &G));
    assert_int_equal(G, T_DEVICES);
    /* the same runner again gives the same profile, whatever the thread timing */
    memset(&r, 0, sizeof r);
    assert_ok(gem_profile_gpus(GEM_BACKEND_CALLBACK, opts, &again));
    char *a = NULL, *b = NULL;
    assert_ok(gem_profile_to_string(p, &a));
    assert_ok(gem_profile_to_string(again, &b));
    assert_string_equal(a, b);
    double us1, us0;
    assert_ok(gem_profile_latency(p, 0, 100, &us0));
    assert_ok(gem_profile_latency(p, 1, 100, &us1));
    assert_true(us1 > us0);
    gem_free(a);
    gem_free(b);
    gem_profile_destroy(again);
    gem_profile_destroy(p);
    gem_options_destroy(opts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_handles_in_parallel),
        cmocka_unit_test(test_shared_const_handles),
        cmocka_unit_test(test_error_messages_per_thread),
        cmocka_unit_test(test_progress_callback_serialised),
        cmocka_unit_test(test_runner_called_per_device),
    };
    return cmocka_run_group_tests(tests, setup_expected, teardown_expected);
}
