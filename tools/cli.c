/*
 * cli.c - helpers shared by the gem subcommands: option parsing, messages, file handles.
 */
#include "cli.h"
#include "svg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *cli_cmd = "gem";

/* ---- messages ---------------------------------------------------------------------------- */

static void cli_vmessage(const char *fmt, va_list ap)
{
    fprintf(stderr, "gem %s: ", cli_cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_fail(gem_status_t status)
{
    const char *msg = gem_last_error();
    if (msg && *msg)
        fprintf(stderr, "gem %s: %s: %s\n", cli_cmd, gem_status_string(status), msg);
    else
        fprintf(stderr, "gem %s: %s\n", cli_cmd, gem_status_string(status));
    return CLI_EXIT_FAIL;
}

int cli_fail_file(gem_status_t status, const char *role, const char *path)
{
    const char *msg = gem_last_error();
    if (!path || (msg && strstr(msg, path))) return cli_fail(status);
    fprintf(stderr, "gem %s: %s: %s (%s %s)\n", cli_cmd, gem_status_string(status),
            msg && *msg ? msg : "failed", role, path);
    return CLI_EXIT_FAIL;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vmessage(fmt, ap);
    va_end(ap);
    return CLI_EXIT_FAIL;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vmessage(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'gem %s --help'.\n", cli_cmd);
    return CLI_EXIT_USAGE;
}

/* ---- option parsing ---------------------------------------------------------------------- */

static const cli_opt *cli_find_long(const cli_spec *spec, const char *name, size_t len)
{
    for (size_t i = 0; i < spec->nopts; i++) {
        const char *n = spec->opts[i].name;
        if (n && strlen(n) == len && strncmp(n, name, len) == 0) return &spec->opts[i];
    }
    return NULL;
}

static const cli_opt *cli_find_short(const cli_spec *spec, char c)
{
    for (size_t i = 0; i < spec->nopts; i++)
        if (spec->opts[i].short_name == c) return &spec->opts[i];
    return NULL;
}

/* Stores one option's value after checking its syntax and range. */
static int cli_store(const cli_opt *o, const char *value)
{
    switch (o->kind) {
    case CLI_FLAG:
        *(int *)o->dest = 1;
        break;
    case CLI_STRING:
        *(const char **)o->dest = value;
        break;
    case CLI_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (end == value || *end != '\0' || errno == ERANGE)
            return cli_usage_error("--%s: '%s' is not an integer", o->name, value);
        if ((double)v < o->min || (double)v > o->max)
            return cli_usage_error("--%s: %lld is outside [%.0f, %.0f]", o->name, v, o->min,
                                   o->max);
        *(int64_t *)o->dest = v;
        break;
    }
    case CLI_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (end == value || *end != '\0' || !isfinite(v))
            return cli_usage_error("--%s: '%s' is not a finite number", o->name, value);
        if (v < o->min || v > o->max)
            return cli_usage_error("--%s: %g is outside [%g, %g]", o->name, v, o->min, o->max);
        *(double *)o->dest = v;
        break;
    }
    }
    if (o->given) *o->given = 1;
    return CLI_RUN;
}

int cli_parse(const cli_spec *spec, int argc, char **argv, char **args, int *nargs)
{
    int n = 0, options_done = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == '\0') { /* positional (or "-") */
            if (n >= spec->max_args)
                return spec->max_args == 0
                           ? cli_usage_error("unexpected argument '%s'", a)
                           : cli_usage_error("too many arguments ('%s')", a);
            args[n++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) { options_done = 1; continue; }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(spec->help, stdout);
            return CLI_EXIT_OK;
        }
        const cli_opt *o;
        const char *value = NULL;
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = cli_find_long(spec, name, len);
            if (!o) return cli_usage_error("unknown option '%.*s'", (int)len + 2, a);
            if (eq) {
                if (o->kind == CLI_FLAG)
                    return cli_usage_error("--%s takes no value", o->name);
                value = eq + 1;
            }
        } else {
            o = a[2] == '\0' ? cli_find_short(spec, a[1]) : NULL;
            if (!o) return cli_usage_error("unknown option '%s'", a);
        }
        if (o->kind != CLI_FLAG && !value) {
            if (i + 1 >= argc) return cli_usage_error("--%s needs a value", o->name);
            value = argv[++i];
        }
        int rc = cli_store(o, value);
        if (rc != CLI_RUN) return rc;
    }
    if (n < spec->min_args)
        return cli_usage_error("missing argument%s", spec->min_args > 1 ? "s" : "");
    if (nargs) *nargs = n;
    return CLI_RUN;
}

int cli_require(const char *value, const char *name)
{
    if (value && *value) return 0;
    return cli_usage_error("missing --%s", name);
}

/* ---- library objects --------------------------------------------------------------------- */

int cli_read_profile(const char *path, gem_profile_t **out)
{
    gem_status_t st = gem_profile_read(path, out);
    return st == GEM_OK ? 0 : cli_fail_file(st, "profile", path);
}

int cli_read_trace(const char *path, gem_trace_t **out)
{
    gem_status_t st = gem_trace_read(path, out);
    return st == GEM_OK ? 0 : cli_fail_file(st, "trace", path);
}

int cli_read_mapping(const char *path, gem_mapping_t **out)
{
    gem_status_t st = gem_mapping_read(path, out);
    return st == GEM_OK ? 0 : cli_fail_file(st, "mapping", path);
}

/* Prints a library-made string to standard output and frees it. */
static int cli_put_string(gem_status_t st, char *text)
{
    if (st != GEM_OK) return cli_fail(st);
    int rc = cli_write_text(text, "-");
    gem_free(text);
    return rc;
}

int cli_write_trace(const gem_trace_t *trace, const char *path)
{
    if (strcmp(path, "-") == 0) {
        char *text = NULL;
        gem_status_t st = gem_trace_to_string(trace, &text);
        return cli_put_string(st, text);
    }
    gem_status_t st = gem_trace_write(trace, path);
    return st == GEM_OK ? 0 : cli_fail_file(st, "writing trace", path);
}

int cli_write_mapping(const gem_mapping_t *mapping, const char *path)
{
    if (strcmp(path, "-") == 0) {
        char *text = NULL;
        gem_status_t st = gem_mapping_to_string(mapping, &text);
        return cli_put_string(st, text);
    }
    gem_status_t st = gem_mapping_write(mapping, path);
    return st == GEM_OK ? 0 : cli_fail_file(st, "writing mapping", path);
}

int cli_write_text(const char *text, const char *path)
{
    size_t len = strlen(text);
    if (strcmp(path, "-") == 0) {
        if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)
            return cli_error("cannot write to standard output: %s", strerror(errno));
        return 0;
    }
    /* The one atomic writer of the tools (svg.c): the library's own is hidden inside it. */
    if (svg_save(path, text) != 0) return cli_error("cannot write '%s': %s", path, strerror(errno));
    return 0;
}

int cli_options(gem_options_t **out)
{
    gem_status_t st = gem_options_create(out);
    return st == GEM_OK ? 0 : cli_fail(st);
}

static int cli_option_refused(gem_status_t st, const char *flag)
{
    fprintf(stderr, "gem %s: %s: --%s: %s\n", cli_cmd, gem_status_string(st), flag,
            gem_last_error());
    return CLI_EXIT_USAGE;
}

int cli_set_int(gem_options_t *opts, gem_option_t key, int64_t value, const char *flag)
{
    gem_status_t st = gem_options_set_int(opts, key, value);
    return st == GEM_OK ? 0 : cli_option_refused(st, flag);
}

int cli_set_double(gem_options_t *opts, gem_option_t key, double value, const char *flag)
{
    gem_status_t st = gem_options_set_double(opts, key, value);
    return st == GEM_OK ? 0 : cli_option_refused(st, flag);
}

int cli_set_string(gem_options_t *opts, gem_option_t key, const char *value, const char *flag)
{
    gem_status_t st = gem_options_set_string(opts, key, value);
    return st == GEM_OK ? 0 : cli_option_refused(st, flag);
}

int cli_policy(const char *name, gem_policy_t *policy)
{
    gem_status_t st = gem_policy_from_name(name, policy);
    return st == GEM_OK ? 0 : cli_option_refused(st, "policy");
}

int cli_objective(const char *name, gem_objective_t *objective)
{
    if (strcmp(name, "mean") == 0) *objective = GEM_OBJECTIVE_MEAN;
    else if (strcmp(name, "p90") == 0) *objective = GEM_OBJECTIVE_P90;
    else return cli_usage_error("--objective: '%s' is not one of mean, p90", name);
    return 0;
}

void cli_json_number(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, "%.17g", x);
    else fputs("null", f);
}

void cli_json_string(FILE *f, const char *s)
{
    if (!s) { fputs("null", f); return; }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cli_nonblank(const char *text)
{
    for (; text && *text; text++)
        if (*text != ' ' && *text != '\t' && *text != '\n' && *text != '\r') return 1;
    return 0;
}

/* ---- progress on a terminal -------------------------------------------------------------- */

/* The unit of a library progress report, by its "what". */
static const char *cli_progress_unit(const char *what)
{
    if (strcmp(what, "map") == 0) return "layer";
    if (strcmp(what, "simulate") == 0) return "GPU";
    if (strcmp(what, "measure") == 0) return "tile boundaries timed";
    return what;
}

/* Draws "\r[gem] <text>", blanking what is left of a longer previous line. */
static void cli_progress_draw(cli_progress *p, const char *text)
{
    int n = (int)strlen(text) + 6;
    int pad = p->width > n ? p->width - n : 0;
    fprintf(stderr, "\r[gem] %s%*s", text, pad, "");
    if (pad) fprintf(stderr, "\r[gem] %s", text); /* back to the end of the text */
    fflush(stderr);
    p->width = n;
    p->drawn_at = cli_now();
}

void cli_progress_start(cli_progress *p, gem_options_t *opts, const char *label)
{
    memset(p, 0, sizeof *p);
    p->on = isatty(STDERR_FILENO);
    p->start = cli_now();
    snprintf(p->label, sizeof p->label, "%s", label ? label : cli_cmd);
    if (p->on && opts) gem_options_set_progress(opts, cli_progress_update, p);
}

void cli_progress_label(cli_progress *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->label, sizeof p->label, fmt, ap);
    va_end(ap);
    if (!p->on) return;
    char text[160];
    snprintf(text, sizeof text, "%s, %.1f s", p->label, cli_now() - p->start);
    cli_progress_draw(p, text);
}

/* The library may call this from its worker threads, but never two calls at once (map.c holds
 * a lock around it; test_threads checks), so the line needs no lock of its own. */
int cli_progress_update(void *user, const char *what, double done, double total)
{
    cli_progress *p = user;
    if (!p->on) return 0;
    double now = cli_now();
    if (p->drawn_at > 0 && now - p->drawn_at < 0.1 && done < total) return 0;
    char text[200];
    snprintf(text, sizeof text, "%s: %s %.0f/%.0f (%.0f%%), %.1f s", p->label,
             cli_progress_unit(what ? what : ""), done, total,
             total > 0 ? done / total * 100 : 0.0, now - p->start);
    cli_progress_draw(p, text);
    return 0;
}

void cli_progress_end(cli_progress *p)
{
    if (!p->on || p->width == 0) return;
    fprintf(stderr, "\r%*s\r", p->width, "");
    fflush(stderr);
    p->width = 0;
}
