/*
 * fuzz_common.h - shared checks of the libFuzzer targets in fuzz/ (one header, static
 * functions, so that every target stays a single translation unit).
 *
 * The targets parse arbitrary bytes. Any status is fine for a parse; what must never happen is
 * a crash, a leak, a sanitizer report, or a result that does not survive a round trip through
 * its own writer: what the library accepted and wrote, it must read back to the same thing.
 * Such a mismatch is a real bug, so the checks abort (libFuzzer then keeps the input).
 */
#ifndef GEM_FUZZ_COMMON_H
#define GEM_FUZZ_COMMON_H

#include "gem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not every target uses every check. */
#if defined(__GNUC__)
#  define FUZZ_UNUSED __attribute__((unused))
#else
#  define FUZZ_UNUSED
#endif

/* Prints what went wrong and aborts: the fuzzer records the input as a crash. */
FUZZ_UNUSED static void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz check failed: %s%s%s (last error: \"%s\")\n", what,
            detail ? ": " : "", detail ? detail : "", gem_last_error());
    abort();
}

/* A call that must succeed on something the library itself produced. */
#define FUZZ_MUST(call)                                                                     \
    do {                                                                                    \
        gem_status_t fst__ = (call);                                                        \
        if (fst__ != GEM_OK) fuzz_fail(#call, gem_status_string(fst__));                    \
    } while (0)

/* Doubles that went through a writer and a reader must come back bit for bit (the writers
 * print round-trip precision); == also accepts -0 read back as 0. */
FUZZ_UNUSED static int fuzz_same_double(double a, double b)
{
    return a == b || (a != a && b != b);
}

FUZZ_UNUSED static int fuzz_same_string(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* ---- profiles ---------------------------------------------------------------------------- */

FUZZ_UNUSED static void fuzz_same_profile(const gem_profile_t *a, const gem_profile_t *b)
{
    int32_t ga = 0, gb = 0;
    FUZZ_MUST(gem_profile_num_gpus(a, &ga));
    FUZZ_MUST(gem_profile_num_gpus(b, &gb));
    if (ga != gb) fuzz_fail("profile round trip", "GPU count differs");
    gem_interpolation_t ia, ib;
    gem_cost_model_t ca, cb;
    FUZZ_MUST(gem_profile_get_interpolation(a, &ia));
    FUZZ_MUST(gem_profile_get_interpolation(b, &ib));
    FUZZ_MUST(gem_profile_get_cost_model(a, &ca));
    FUZZ_MUST(gem_profile_get_cost_model(b, &cb));
    if (ia != ib) fuzz_fail("profile round trip", "interpolation differs");
    if (ca != cb) fuzz_fail("profile round trip", "cost model differs");
    static const char *const keys[] = {"name", "pci_bus_id", "host", "cpuset"};
    for (int32_t g = 0; g < ga; g++) {
        double oa, ob;
        FUZZ_MUST(gem_profile_get_overhead(a, g, &oa));
        FUZZ_MUST(gem_profile_get_overhead(b, g, &ob));
        if (!fuzz_same_double(oa, ob)) fuzz_fail("profile round trip", "overhead differs");
        size_t ka = 0, kb = 0;
        FUZZ_MUST(gem_profile_get_curve(a, g, NULL, NULL, 0, &ka));
        FUZZ_MUST(gem_profile_get_curve(b, g, NULL, NULL, 0, &kb));
        if (ka != kb) fuzz_fail("profile round trip", "curve length differs");
        int64_t *ta = malloc(ka * sizeof *ta + 1), *tb = malloc(ka * sizeof *tb + 1);
        double *la = malloc(ka * sizeof *la + 1), *lb = malloc(ka * sizeof *lb + 1);
        if (!ta || !tb || !la || !lb) fuzz_fail("malloc", NULL);
        FUZZ_MUST(gem_profile_get_curve(a, g, ta, la, ka, &ka));
        FUZZ_MUST(gem_profile_get_curve(b, g, tb, lb, ka, &kb));
        for (size_t i = 0; i < ka; i++)
            if (ta[i] != tb[i] || !fuzz_same_double(la[i], lb[i]))
                fuzz_fail("profile round trip", "curve sample differs");
        free(ta);
        free(tb);
        free(la);
        free(lb);
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            const char *sa = NULL, *sb = NULL;
            FUZZ_MUST(gem_profile_get_gpu_string(a, g, keys[i], &sa));
            FUZZ_MUST(gem_profile_get_gpu_string(b, g, keys[i], &sb));
            if (!fuzz_same_string(sa, sb)) fuzz_fail("profile round trip", keys[i]);
        }
    }
}

/* ---- traces ------------------------------------------------------------------------------ */

FUZZ_UNUSED static void fuzz_same_trace(const gem_trace_t *a, const gem_trace_t *b)
{
    int64_t sa, sb;
    int32_t la, lb, ea, eb;
    FUZZ_MUST(gem_trace_shape(a, &sa, &la, &ea));
    FUZZ_MUST(gem_trace_shape(b, &sb, &lb, &eb));
    if (sa != sb || la != lb || ea != eb) fuzz_fail("trace round trip", "shape differs");
    double *ra = malloc((size_t)ea * sizeof *ra), *rb = malloc((size_t)ea * sizeof *rb);
    if (!ra || !rb) fuzz_fail("malloc", NULL);
    for (int64_t s = 0; s < sa; s++)
        for (int32_t l = 0; l < la; l++) {
            FUZZ_MUST(gem_trace_get(a, s, l, ra, (size_t)ea));
            FUZZ_MUST(gem_trace_get(b, s, l, rb, (size_t)ea));
            for (int32_t e = 0; e < ea; e++)
                if (!fuzz_same_double(ra[e], rb[e])) fuzz_fail("trace round trip", "load differs");
        }
    free(ra);
    free(rb);
}

/* A trace the library accepted: it must be complete, serialise, and read back equal; a few
 * read-only calls must work on it. */
FUZZ_UNUSED static void fuzz_exercise_trace(const gem_trace_t *t)
{
    FUZZ_MUST(gem_trace_validate(t));
    char *text = NULL;
    FUZZ_MUST(gem_trace_to_string(t, &text));
    gem_trace_t *back = NULL;
    gem_status_t st = gem_trace_parse(text, strlen(text), &back);
    if (st != GEM_OK) {
        fprintf(stderr, "written trace:\n%.2000s\n", text);
        fuzz_fail("gem_trace_parse of gem_trace_to_string", gem_status_string(st));
    }
    fuzz_same_trace(t, back);
    /* The writer is a fixpoint: writing what was read gives the same text. */
    char *again = NULL;
    FUZZ_MUST(gem_trace_to_string(back, &again));
    if (strcmp(text, again) != 0) fuzz_fail("trace round trip", "second write differs");
    gem_free(again);
    gem_free(text);
    gem_trace_destroy(back);

    int64_t steps;
    int32_t layers, experts;
    FUZZ_MUST(gem_trace_shape(t, &steps, &layers, &experts));
    gem_trace_t *half = NULL;
    FUZZ_MUST(gem_trace_slice(t, steps / 2, steps - steps / 2, &half));
    gem_trace_destroy(half);
    /* Classification is quadratic in experts; keep it to shapes a fuzz input makes cheaply. */
    if ((int64_t)experts * experts * layers <= 65536 && steps * layers * experts <= 1 << 20) {
        gem_classification_t *cls = NULL;
        FUZZ_MUST(gem_classify_experts(t, NULL, &cls));
        gem_classification_destroy(cls);
    }
}

/* ---- mappings ---------------------------------------------------------------------------- */

FUZZ_UNUSED static void fuzz_same_mapping(const gem_mapping_t *a, const gem_mapping_t *b)
{
    int32_t ga, gb, la, lb, ea, eb;
    FUZZ_MUST(gem_mapping_shape(a, &ga, &la, &ea));
    FUZZ_MUST(gem_mapping_shape(b, &gb, &lb, &eb));
    if (ga != gb || la != lb || ea != eb) fuzz_fail("mapping round trip", "shape differs");
    const char *pa = NULL, *pb = NULL;
    FUZZ_MUST(gem_mapping_get_policy_name(a, &pa));
    FUZZ_MUST(gem_mapping_get_policy_name(b, &pb));
    if (!fuzz_same_string(pa, pb)) fuzz_fail("mapping round trip", "policy name differs");
    for (int32_t l = 0; l < la; l++) {
        size_t na, nb;
        FUZZ_MUST(gem_mapping_num_placements(a, l, &na));
        FUZZ_MUST(gem_mapping_num_placements(b, l, &nb));
        if (na != nb) fuzz_fail("mapping round trip", "placement count differs");
        for (size_t i = 0; i < na; i++) {
            int32_t xa, xb, ya, yb;
            double wa, wb;
            FUZZ_MUST(gem_mapping_get(a, l, i, &xa, &ya, &wa));
            FUZZ_MUST(gem_mapping_get(b, l, i, &xb, &yb, &wb));
            if (xa != xb || ya != yb || !fuzz_same_double(wa, wb))
                fuzz_fail("mapping round trip", "placement differs");
        }
    }
}

#endif
