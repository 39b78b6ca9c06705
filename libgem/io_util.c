/*
 * io_util.c - whole-file reading, atomic writing, and the small parsing helpers that the
 * file formats (io_profile.c, io_trace.c, io_mapping.c, import.c, export.c) share.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files larger than this are refused before anything is allocated for them. */
#define GEM__MAX_FILE_BYTES ((uint64_t)4 << 30)

/* ---- reading ------------------------------------------------------------------------------ */

static gem_status_t gem__read_stream(int fd, const char *path, size_t hint, char **data,
                                     size_t *len)
{
    size_t cap = hint + 1 > 4096 ? hint + 1 : 4096, n = 0;
    char *buf = gem__malloc(cap);
    if (!buf) return GEM_ERR_NO_MEMORY;
    for (;;) {
        if (n + 1 >= cap) {
            /* Grow past the size stat reported only for files that change or have no size
             * (pipes, /proc); the limit still holds. */
            if ((uint64_t)cap > GEM__MAX_FILE_BYTES) {
                free(buf);
                return gem__fail(GEM_ERR_LIMIT, "%s: larger than 4 GiB, which libgem does not read",
                                 path);
            }
            char *bigger = gem__realloc(buf, cap * 2);
            if (!bigger) { free(buf); return GEM_ERR_NO_MEMORY; }
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            free(buf);
            return gem__fail(GEM_ERR_IO, "%s: cannot read: %s", path, strerror(err));
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    if ((uint64_t)n > GEM__MAX_FILE_BYTES) {
        free(buf);
        return gem__fail(GEM_ERR_LIMIT, "%s: larger than 4 GiB, which libgem does not read", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return GEM_OK;
}

gem_status_t gem__read_file(const char *path, char **data, size_t *len)
{
    GEM__CHECK_ARG(path && data && len, "gem__read_file: NULL argument");
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
    if (fd < 0) return gem__fail(GEM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return gem__fail(GEM_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return gem__fail(GEM_ERR_IO, "%s: cannot read: %s", path, strerror(EISDIR));
    }
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > GEM__MAX_FILE_BYTES) {
        close(fd);
        return gem__fail(GEM_ERR_LIMIT, "%s: %lld bytes, larger than 4 GiB, which libgem does "
                         "not read", path, (long long)sb.st_size);
    }
    size_t hint = S_ISREG(sb.st_mode) ? (size_t)sb.st_size : 0;
    gem_status_t st = gem__read_stream(fd, path, hint, data, len);
    close(fd);
    return st;
}

/* ---- atomic writing ----------------------------------------------------------------------- */

static atomic_uint gem__temp_counter;

/* Length of the directory part of path, its last '/' included (0 for a bare name). */
static size_t gem__dir_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) + 1 : 0;
}

/* Creates a fresh temporary file next to path (same directory, so rename(2) cannot cross file
 * systems), with a short hidden name so that a long target name cannot make it too long.
 * open(2) with mode 0666 lets the umask decide the permissions, as for any new file; an
 * existing target's mode is copied afterwards. */
static int gem__open_temp(const char *path, char **tmp_out)
{
    int dir = (int)gem__dir_len(path);
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&gem__temp_counter, 1);
        char *tmp = gem__sprintf("%.*s.gemtmp-%ld-%u", dir, path, (long)getpid(), n);
        if (!tmp) { errno = ENOMEM; return -1; }
        int fd;
        do fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0) { *tmp_out = tmp; return fd; }
        int err = errno;
        free(tmp);
        if (err != EEXIST) { errno = err; return -1; }
    }
    errno = EEXIST;
    return -1;
}

static int gem__write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t put = write(fd, data, len);
        if (put < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += put;
        len -= (size_t)put;
    }
    return 0;
}

gem_status_t gem__write_file_atomic(const char *path, const char *data, size_t len)
{
    GEM__CHECK_ARG(path && *path, "gem__write_file_atomic: path is NULL or empty");
    GEM__CHECK_ARG(data || len == 0, "gem__write_file_atomic: data is NULL");
    char *tmp = NULL;
    int fd = gem__open_temp(path, &tmp);
    if (fd < 0) {
        if (errno == ENOMEM) return gem__fail(GEM_ERR_NO_MEMORY, "out of memory");
        return gem__fail(GEM_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                         strerror(errno));
    }
    struct stat old;
    if (stat(path, &old) == 0 && S_ISREG(old.st_mode))
        (void)fchmod(fd, old.st_mode & 07777); /* best effort: keep the target's permissions */
    const char *step = "write";
    int failed = gem__write_all(fd, data, len);
    if (!failed) { step = "flush"; failed = fsync(fd); }
    int err = failed ? errno : 0;
    if (close(fd) != 0 && !failed) { step = "close"; failed = 1; err = errno; }
    if (!failed && rename(tmp, path) != 0) { step = "rename"; failed = 1; err = errno; }
    if (failed) {
        unlink(tmp);
        free(tmp);
        return gem__fail(GEM_ERR_IO, "%s: cannot %s: %s (the file was left as it was)", path, step,
                         strerror(err));
    }
    free(tmp);
    /* Best effort: make the rename itself durable. */
    size_t dl = gem__dir_len(path);
    char *dir = dl ? gem__sprintf("%.*s", (int)dl, path) : gem__strdup(".");
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dir);
    } else {
        gem__clear_error(); /* that allocation failure is not the caller's error */
    }
    return GEM_OK;
}

/* ---- JSON helpers ------------------------------------------------------------------------ */

gem_status_t gem__json_parse(const char *data, size_t len, const char *what, json_t **out)
{
    json_error_t err;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        if (json_error_code(&err) == json_error_out_of_memory)
            return gem__fail(GEM_ERR_NO_MEMORY, "%s: out of memory parsing JSON", what);
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s: line %d, column %d: %s", what, err.line,
                         err.column, err.text);
    }
    *out = root;
    return GEM_OK;
}

gem_status_t gem__json_load(const char *data, size_t len, const char *what,
                            gem__from_json_fn from_json, void *out)
{
    json_t *root;
    gem_status_t st = gem__json_parse(data, len, what, &root);
    if (st) return st; /* the syntax message already starts with what */
    st = from_json(root, out);
    json_decref(root);
    if (st && st != GEM_ERR_NO_MEMORY) return gem__fail_context(st, "%s", what);
    return st;
}

gem_status_t gem__json_load_file(const char *path, gem__from_json_fn from_json, void *out)
{
    char *data;
    size_t len;
    gem_status_t st = gem__read_file(path, &data, &len);
    if (st) return st;
    st = gem__json_load(data, len, path, from_json, out);
    free(data);
    return st;
}

const char *gem__json_type_name(const json_t *v)
{
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

/* Formats the JSON path of a failing value into buf. */
static void gem__vpath(char *buf, size_t n, const char *fmt, va_list ap)
{
    vsnprintf(buf, n, fmt, ap);
}

gem_status_t gem__json_int(const json_t *v, int64_t min, int64_t max, gem_status_t range_status,
                           int64_t *out, const char *fmt, ...)
{
    char path[256];
    va_list ap;
    int64_t x = 0;
    if (json_is_integer(v)) {
        x = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        /* Writers in other languages print 64.0 for an integral float; accept it exactly. */
        double d = json_real_value(v);
        if (d != floor(d) || !(d >= -9.2e18 && d <= 9.2e18)) {
            va_start(ap, fmt);
            gem__vpath(path, sizeof path, fmt, ap);
            va_end(ap);
            return gem__fail(GEM_ERR_INVALID_INPUT, "%s: %.17g is not an integer", path, d);
        }
        x = (int64_t)d;
    } else {
        va_start(ap, fmt);
        gem__vpath(path, sizeof path, fmt, ap);
        va_end(ap);
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s: expected an integer, found %s", path,
                         gem__json_type_name(v));
    }
    if (x < min || x > max) {
        va_start(ap, fmt);
        gem__vpath(path, sizeof path, fmt, ap);
        va_end(ap);
        return gem__fail(range_status, "%s: %lld outside [%lld, %lld]", path, (long long)x,
                         (long long)min, (long long)max);
    }
    *out = x;
    return GEM_OK;
}

gem_status_t gem__json_number(const json_t *v, double *out, const char *fmt, ...)
{
    if (!json_is_number(v)) {
        char path[256];
        va_list ap;
        va_start(ap, fmt);
        gem__vpath(path, sizeof path, fmt, ap);
        va_end(ap);
        return gem__fail(GEM_ERR_INVALID_INPUT, "%s: expected a number, found %s", path,
                         gem__json_type_name(v));
    }
    *out = json_number_value(v);
    return GEM_OK;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t gem__utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, min = 0x10000;
    else return 0;
    unsigned cp = c & (0x3f >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

int gem__buf_json_string(gem__buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; u[i];) {
        size_t n = gem__utf8_seq(u + i);
        if (!n) return -1;
        i += n;
    }
    gem__buf_append(b, "\"", 1);
    size_t run = 0; /* bytes copied through unchanged, appended in one go */
    for (size_t i = 0;; i++) {
        unsigned char c = u[i];
        int special = c == '"' || c == '\\' || c < 0x20;
        if (!c || special) {
            gem__buf_append(b, s + i - run, run);
            run = 0;
        }
        if (!c) break;
        if (!special) { run++; continue; }
        switch (c) {
        case '"': gem__buf_append(b, "\\\"", 2); break;
        case '\\': gem__buf_append(b, "\\\\", 2); break;
        case '\n': gem__buf_append(b, "\\n", 2); break;
        case '\t': gem__buf_append(b, "\\t", 2); break;
        case '\r': gem__buf_append(b, "\\r", 2); break;
        default: gem__buf_printf(b, "\\u%04x", c); break;
        }
    }
    gem__buf_append(b, "\"", 1);
    return 0;
}

/* ---- numbers in text --------------------------------------------------------------------- */

/* strtod follows LC_NUMERIC, which the host program may have set to a locale whose decimal
 * point is ','. Files always use '.', so convert in the C locale. */
static locale_t gem__c_locale;
static pthread_once_t gem__c_locale_once = PTHREAD_ONCE_INIT;
static void gem__c_locale_init(void) { gem__c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static size_t gem__digits(const char *s, size_t n, size_t i)
{
    size_t j = i;
    while (j < n && s[j] >= '0' && s[j] <= '9') j++;
    return j - i;
}

int gem__parse_decimal(const char *s, size_t n, double *out)
{
    size_t i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t whole = gem__digits(s, n, i);
    i += whole;
    size_t frac = 0;
    if (i < n && s[i] == '.') {
        i++;
        frac = gem__digits(s, n, i);
        i += frac;
    }
    if (whole + frac == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t exp = gem__digits(s, n, i);
        if (!exp) return 0;
        i += exp;
    }
    if (i != n) return 0;
    /* Copy out: s need not be NUL-terminated, and strtod must not read past n. */
    char small[64];
    char *text = n < sizeof small ? small : malloc(n + 1);
    if (!text) return 0;
    memcpy(text, s, n);
    text[n] = '\0';
    pthread_once(&gem__c_locale_once, gem__c_locale_init);
    double x = gem__c_locale ? strtod_l(text, NULL, gem__c_locale) : strtod(text, NULL);
    if (text != small) free(text);
    *out = x;
    return 1;
}

int gem__parse_uint(const char *s, size_t n, int64_t max, int64_t *out)
{
    if (n == 0 || gem__digits(s, n, 0) != n) return 0;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        int d = s[i] - '0';
        if (x > (max - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 1;
}
