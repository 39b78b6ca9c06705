/* testutil.c - see testutil.h. */
#include "testutil.h"

#include "internal.h" /* gem__inject_alloc_failure: tests link the static library */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tu_temp_path(const char *suffix)
{
    static unsigned counter;
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    size_t n = strlen(dir) + strlen(suffix ? suffix : "") + 64;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/gemtest-%ld-%u%s", dir, (long)getpid(), counter++, suffix ? suffix : "");
    return p;
}

char *tu_write_temp(const char *text, const char *suffix)
{
    char *p = tu_temp_path(suffix);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

int tu_error_has(const char *needle) { return strstr(gem_last_error(), needle) != NULL; }

uint64_t tu_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double tu_uniform(uint64_t *state) { return (double)(tu_rand(state) >> 11) * 0x1.0p-53; }

gem_profile_t *tu_profile(int G, const double *slowdown, int tile, int k, double base,
                          double overhead)
{
    gem_profile_t *p = NULL;
    assert_int_equal(gem_profile_create(&p, G), GEM_OK);
    int64_t *tok = malloc(sizeof *tok * (size_t)k);
    double *lat = malloc(sizeof *lat * (size_t)k);
    for (int g = 0; g < G; g++) {
        double s = slowdown ? slowdown[g] : 1.0;
        for (int i = 0; i < k; i++) {
            tok[i] = (int64_t)tile * (i + 1);
            lat[i] = base * s * (1.0 + 0.25 * i);
        }
        assert_int_equal(gem_profile_set_curve(p, g, (size_t)k, tok, lat, NULL), GEM_OK);
        assert_int_equal(gem_profile_set_overhead(p, g, overhead), GEM_OK);
    }
    free(tok);
    free(lat);
    return p;
}

gem_trace_t *tu_trace(int64_t S, int L, int E, int max_load, uint64_t seed)
{
    gem_trace_t *t = NULL;
    assert_int_equal(gem_trace_create(&t, L, E), GEM_OK);
    double *row = malloc(sizeof *row * (size_t)E);
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            for (int e = 0; e < E; e++) {
                uint64_t r = tu_rand(&seed);
                row[e] = (r % 5 == 0) ? 0.0 : (double)(r % (uint64_t)(max_load + 1));
            }
            assert_int_equal(gem_trace_set(t, s, l, row, (size_t)E), GEM_OK);
        }
    free(row);
    return t;
}

int tu_alloc_failures_mapping(const gem_profile_t *p, const gem_trace_t *t, gem_policy_t policy,
                              const gem_options_t *o, long limit, long step)
{
    gem_mapping_t *ref = NULL;
    assert_ok(gem_compute_mapping(p, t, policy, o, NULL, &ref));
    char *want = NULL;
    assert_ok(gem_mapping_to_string(ref, &want));
    gem_mapping_destroy(ref);
    int failed = 0;
    for (long n = 1; n < limit; n += step) {
        gem_mapping_t *m = NULL;
        gem__inject_alloc_failure(n);
        gem_status_t s = gem_compute_mapping(p, t, policy, o, NULL, &m);
        gem__inject_alloc_failure(0);
        assert_true(s == GEM_OK || s == GEM_ERR_NO_MEMORY);
        if (s == GEM_OK) {
            char *got = NULL;
            assert_ok(gem_mapping_to_string(m, &got));
            assert_string_equal(got, want);
            gem_free(got);
        } else {
            failed++;
            assert_null(m);
            assert_error_has("memory");
        }
        gem_mapping_destroy(m);
    }
    gem_free(want);
    return failed;
}
