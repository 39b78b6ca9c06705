/* testutil.h - helpers shared by the cmocka test binaries (test/test_*.c). */
#ifndef GEM_TESTUTIL_H
#define GEM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gem.h"

/* Asserts a gem call's status and prints gem_last_error() when it differs. */
#define assert_gem(expected, call)                                                           \
    do {                                                                                      \
        gem_status_t st__ = (call);                                                           \
        if (st__ != (expected))                                                               \
            print_error("%s returned %d (%s): %s\n", #call, (int)st__,                       \
                        gem_status_string(st__), gem_last_error());                          \
        assert_int_equal(st__, (expected));                                                   \
    } while (0)
#define assert_ok(call) assert_gem(GEM_OK, call)

/* Path of a fresh temporary file name under $TMPDIR (not created); free() it. */
char *tu_temp_path(const char *suffix);
/* Writes text to a fresh temporary file and returns its path; free() it, unlink it. */
char *tu_write_temp(const char *text, const char *suffix);
/* Reads a whole file into a NUL-terminated string; free() it. NULL if unreadable. */
char *tu_read_file(const char *path);
/* 1 if the last error message contains needle. */
int tu_error_has(const char *needle);
#define assert_error_has(needle)                                                             \
    do {                                                                                      \
        if (!tu_error_has(needle))                                                            \
            print_error("last error \"%s\" lacks \"%s\"\n", gem_last_error(), needle);        \
        assert_true(tu_error_has(needle));                                                    \
    } while (0)

/* Small deterministic generator for test data (not the library's). */
uint64_t tu_rand(uint64_t *state);
double tu_uniform(uint64_t *state); /* [0, 1) */

/* A profile of G GPUs whose curves are t = base * slowdown[g] * ceil(x / tile) tiles
 * (k samples at tile boundaries), overhead c. slowdown may be NULL (all 1). */
gem_profile_t *tu_profile(int G, const double *slowdown, int tile, int k, double base,
                          double overhead);
/* A complete random trace S x L x E with integer loads in [0, max_load], some zero. */
gem_trace_t *tu_trace(int64_t S, int L, int E, int max_load, uint64_t seed);

/* Maps the trace with the policy once, then again with allocation n failing, for n = 1,
 * 1 + step, ... below limit: each try must fail with GEM_ERR_NO_MEMORY (no mapping, an error
 * naming memory) or give the same mapping as the first. Returns how many tries failed. */
int tu_alloc_failures_mapping(const gem_profile_t *p, const gem_trace_t *t, gem_policy_t policy,
                              const gem_options_t *o, long limit, long step);

#endif
