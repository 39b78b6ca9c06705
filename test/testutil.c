/* testutil.c - see testutil.h. */
#include "testutil.h"

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
