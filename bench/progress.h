/*
 * progress.h - one updating progress line on standard error for the benchmark programs
 * ("\r[bench_real] deepseek-v3 decode, spread 0.277: gem, layer 12/58"), drawn only when
 * standard error is a terminal, so that `make bench > results.txt`, logs and CI stay clean.
 *
 * Erase it (bench_progress_clear) before printing a result line when standard output may be
 * the same terminal. Header-only: each benchmark is one C file built alone (mk/bench.mk).
 */
#ifndef GEM_BENCH_PROGRESS_H
#define GEM_BENCH_PROGRESS_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *bench_progress_name = "bench"; /* the program, set by main */
static char bench_progress_label[160];
static int bench_progress_width;  /* characters on the line now */
static double bench_progress_at;  /* when it was last drawn, seconds */

static inline int bench_progress_on(void)
{
    static int tty = -1;
    if (tty < 0) tty = isatty(STDERR_FILENO);
    return tty;
}

static inline double bench_progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void bench_progress_draw(const char *text)
{
    int n = (int)strlen(bench_progress_name) + 3 + (int)strlen(text);
    int pad = bench_progress_width > n ? bench_progress_width - n : 0;
    fprintf(stderr, "\r[%s] %s%*s", bench_progress_name, text, pad, "");
    fflush(stderr);
    bench_progress_width = n + pad;
    bench_progress_at = bench_progress_now();
}

/** Sets what is running and draws it. */
static inline void bench_progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bench_progress_label, sizeof bench_progress_label, fmt, ap);
    va_end(ap);
    if (bench_progress_on()) bench_progress_draw(bench_progress_label);
}

/** A gem_progress_fn (gem_options_set_progress) that adds the library's count to the line,
 *  at most every 0.1 s. Never cancels. */
static inline int bench_progress_units(void *user, const char *what, double done, double total)
{
    (void)user;
    if (!bench_progress_on()) return 0;
    if (bench_progress_now() - bench_progress_at < 0.1 && done < total) return 0;
    char text[240];
    snprintf(text, sizeof text, "%s, %s %.0f/%.0f", bench_progress_label,
             strcmp(what, "map") == 0 ? "layer" : what, done, total);
    bench_progress_draw(text);
    return 0;
}

/** Erases the line. */
static inline void bench_progress_clear(void)
{
    if (!bench_progress_on() || bench_progress_width == 0) return;
    fprintf(stderr, "\r%*s\r", bench_progress_width, "");
    fflush(stderr);
    bench_progress_width = 0;
}

#endif
