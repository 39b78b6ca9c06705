/*
 * core.c - version, status strings, per-thread error messages, allocation, buffers, RNG.
 */
#include "internal.h"

#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- version --------------------------------------------------------------------------- */

GEM_API unsigned gem_version(void) { return GEM_VERSION_NUMBER; }
GEM_API const char *gem_version_string(void) { return GEM_VERSION_STRING; }

/* ---- status and errors ------------------------------------------------------------------ */

GEM_API const char *gem_status_string(gem_status_t status)
{
    switch (status) {
    case GEM_OK: return "ok";
    case GEM_ERR_INVALID_ARGUMENT: return "invalid argument";
    case GEM_ERR_INVALID_INPUT: return "invalid input";
    case GEM_ERR_IO: return "input/output error";
    case GEM_ERR_NO_MEMORY: return "out of memory";
    case GEM_ERR_NOT_SUPPORTED: return "not supported";
    case GEM_ERR_NO_DEVICE: return "no device";
    case GEM_ERR_DEVICE: return "device error";
    case GEM_ERR_OUT_OF_RANGE: return "id out of range";
    case GEM_ERR_SHAPE_MISMATCH: return "shape mismatch";
    case GEM_ERR_INFEASIBLE: return "infeasible";
    case GEM_ERR_LIMIT: return "size limit exceeded";
    case GEM_ERR_INCOMPLETE: return "incomplete trace";
    case GEM_ERR_VERSION: return "unsupported format version";
    case GEM_ERR_INTERNAL: return "internal error";
    case GEM_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

#define GEM__ERRLEN 1024
static _Thread_local char gem__errmsg[GEM__ERRLEN];

GEM_API const char *gem_last_error(void) { return gem__errmsg; }

void gem__clear_error(void) { gem__errmsg[0] = '\0'; }

gem_status_t gem__vfail(gem_status_t status, const char *fmt, va_list ap)
{
    vsnprintf(gem__errmsg, sizeof gem__errmsg, fmt, ap);
    return status;
}

gem_status_t gem__fail(gem_status_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gem__vfail(status, fmt, ap);
    va_end(ap);
    return status;
}

gem_status_t gem__fail_context(gem_status_t status, const char *fmt, ...)
{
    char old[GEM__ERRLEN];
    memcpy(old, gem__errmsg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(gem__errmsg, sizeof gem__errmsg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof gem__errmsg) {
        memcpy(gem__errmsg + n, ": ", 2);
        size_t room = sizeof gem__errmsg - (size_t)n - 2;
        size_t len = strnlen(old, room - 1);
        memcpy(gem__errmsg + n + 2, old, len);
        gem__errmsg[(size_t)n + 2 + len] = '\0';
    }
    return status;
}

GEM_API void gem_free(void *ptr) { free(ptr); }

/* ---- memory ----------------------------------------------------------------------------- */

/* Failure injection for tests: counts down allocations; the one that reaches zero fails. */
static atomic_long gem__alloc_countdown;

void gem__inject_alloc_failure(long n) { atomic_store(&gem__alloc_countdown, n); }

static int gem__alloc_should_fail(void)
{
    long n = atomic_load(&gem__alloc_countdown);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&gem__alloc_countdown, &n, n - 1))
            return n == 1;
    }
    return 0;
}

static void *gem__oom(size_t size)
{
    gem__fail(GEM_ERR_NO_MEMORY, "out of memory allocating %zu bytes", size);
    return NULL;
}

void *gem__malloc(size_t size)
{
    if (gem__alloc_should_fail()) return gem__oom(size);
    void *p = malloc(size ? size : 1);
    return p ? p : gem__oom(size);
}

void *gem__calloc(size_t count, size_t size)
{
    return gem__array(count, size);
}

void *gem__array(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return gem__oom(SIZE_MAX);
    if (gem__alloc_should_fail()) return gem__oom(count * size);
    void *p = calloc(count ? count : 1, size ? size : 1);
    return p ? p : gem__oom(count * size);
}

void *gem__realloc(void *ptr, size_t size)
{
    if (gem__alloc_should_fail()) return gem__oom(size);
    void *p = realloc(ptr, size ? size : 1);
    return p ? p : gem__oom(size);
}

char *gem__strdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = gem__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *gem__sprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? gem__malloc((size_t)n + 1) : NULL;
    if (s) vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

/* ---- growable string --------------------------------------------------------------------- */

void gem__buf_init(gem__buf *b) { memset(b, 0, sizeof *b); }

void gem__buf_free(gem__buf *b)
{
    free(b->data);
    gem__buf_init(b);
}

void gem__buf_append(gem__buf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) { b->failed = 1; return; }
            cap *= 2;
        }
        char *d = gem__realloc(b->data, cap);
        if (!d) { b->failed = 1; return; }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void gem__buf_printf(gem__buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { b->failed = 1; va_end(ap2); return; }
    if ((size_t)n < sizeof small) {
        gem__buf_append(b, small, (size_t)n);
    } else {
        char *big = gem__malloc((size_t)n + 1);
        if (!big) { b->failed = 1; va_end(ap2); return; }
        vsnprintf(big, (size_t)n + 1, fmt, ap2);
        gem__buf_append(b, big, (size_t)n);
        free(big);
    }
    va_end(ap2);
}

/* The "C" numeric locale, so that files never carry a host program's decimal comma. */
static locale_t gem__c_locale;
static pthread_once_t gem__c_locale_once = PTHREAD_ONCE_INIT;
static void gem__c_locale_init(void) { gem__c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

void gem__buf_double(gem__buf *b, double x)
{
    pthread_once(&gem__c_locale_once, gem__c_locale_init);
    locale_t old = gem__c_locale ? uselocale(gem__c_locale) : (locale_t)0;
    /* Integers print as integers; other values with the fewest digits that read back. */
    char s[40];
    if (x == floor(x) && fabs(x) < 1e15) {
        snprintf(s, sizeof s, "%.0f", x);
        if (strcmp(s, "-0") == 0) strcpy(s, "0");
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(s, sizeof s, "%.*g", prec, x);
            if (strtod(s, NULL) == x) break;
        }
    }
    if (old) uselocale(old);
    gem__buf_append(b, s, strlen(s));
}

/* ---- random numbers ---------------------------------------------------------------------- */

static uint64_t gem__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gem__rng_seed(gem__rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = gem__splitmix64(&seed);
}

static inline uint64_t gem__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gem__rng_next(gem__rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = gem__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = gem__rotl(s[3], 45);
    return result;
}

double gem__rng_uniform(gem__rng *r) { return (double)(gem__rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t gem__rng_below(gem__rng *r, uint64_t n)
{
    /* rejection sampling keeps the distribution exactly uniform */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = gem__rng_next(r); while (x >= limit);
    return x % n;
}
