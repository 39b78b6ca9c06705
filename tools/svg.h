/*
 * svg.h - a small SVG writer for the pictures of the gem tool and the benchmarks.
 *
 * Three layers, each usable alone:
 *  - a text buffer with shapes and escaped text (svg_begin ... svg_finish);
 *  - two chart layouts drawn with it: grouped bars against horizontal reference lines
 *    (svg_bars), and lines with markers over a numeric x axis (svg_xy);
 *  - the pictures of libgem results: per-GPU busy time of one or more gem_evaluate reports
 *    against the straggler (svg_busy_picture).
 * Plus svg_save, which writes a file whole or not at all (temporary file, then rename).
 *
 * Only libc (and gem.h, for the busy picture) is needed. Numbers are printed with printf, so
 * the caller keeps LC_NUMERIC at "C" (the default of a C program that never calls setlocale).
 * Every function that builds text returns a malloc'ed NUL-terminated string (free with free())
 * or NULL when memory ran out.
 */
#ifndef GEM_SVG_H
#define GEM_SVG_H

#include "gem.h"

#include <stddef.h>

#if defined(__GNUC__)
#  define SVG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define SVG_PRINTF(a, b)
#endif

/* ---- the buffer ----------------------------------------------------------------------------- */

typedef struct svg svg;

/** A document of width x height pixels whose <title> (what a browser shows as the tab's name)
 *  is title (may be NULL). NULL when out of memory. */
svg *svg_begin(double width, double height, const char *title);
/** Closes the document and returns its text; frees s. NULL (and s freed) when an earlier
 *  write ran out of memory. */
char *svg_finish(svg *s);
/** Frees s without producing text. Accepts NULL. */
void svg_discard(svg *s);

/* style: the attributes to add, as written ("fill=\"#0072B2\""), or NULL. tip: a tooltip shown
 * when the pointer rests on the shape (a <title> child), or NULL. */
void svg_rect(svg *s, double x, double y, double w, double h, const char *style,
              const char *tip);
void svg_line(svg *s, double x1, double y1, double x2, double y2, const char *style);
void svg_circle(svg *s, double cx, double cy, double r, const char *style, const char *tip);
/** A diamond of half-diagonal r centred on (cx, cy). */
void svg_diamond(svg *s, double cx, double cy, double r, const char *style, const char *tip);
/** Connected line through n points. */
void svg_polyline(svg *s, const double *x, const double *y, int n, const char *style);
/** Text with its special characters escaped. anchor: "start", "middle" or "end". */
void svg_text(svg *s, double x, double y, const char *anchor, const char *style,
              const char *fmt, ...) SVG_PRINTF(6, 7);
/** Text turned 90 degrees anticlockwise about (x, y): a vertical axis label. */
void svg_text_vertical(svg *s, double x, double y, const char *style, const char *text);

/* ---- charts --------------------------------------------------------------------------------- */

/** Colour of series i (a colour-blind-safe palette, repeating after 6). */
const char *svg_colour(int i);

/** A horizontal line across the plot at value, labelled in the right margin. series >= 0 takes
 *  that series' colour; -1 is black. */
typedef struct {
    const char *label;
    double value;
    int series;
} svg_ref_line;

/** Grouped bars: ngroups groups along the x axis (GPUs, policies), one bar per series in each
 *  group, side by side. Values are in the y axis' unit; the y axis starts at 0. */
typedef struct {
    const char *title;
    const char *subtitle;              /* lines separated by '\n', or NULL */
    const char *x_label, *y_label;     /* y_label names the unit: "time per layer (ms)" */
    int ngroups;
    const char *const *groups;         /* [ngroups] names under the groups */
    int nseries;                       /* >= 1 */
    const char *const *series;         /* [nseries] legend names; NULL: no legend entries */
    const double *values;              /* [nseries * ngroups], series-major; not finite: no bar */
    const double *caps;                /* [nseries] or NULL: a light segment from each bar up to
                                          its series' cap (time spent waiting for it) */
    const char *cap_label;             /* legend text of the light segment */
    const char *const *notes;          /* [nseries * ngroups] short text under each bar, or NULL */
    const char *const *tips;           /* [nseries * ngroups] tooltips, or NULL */
    int nlines;
    const svg_ref_line *lines;         /* [nlines] */
    int digits;                        /* decimals of the values printed on the bars */
} svg_bars;

char *svg_bars_render(const svg_bars *c);
/** Decimals that show values up to top with about four significant digits (0 to 4). */
int svg_digits_for(double top);

/** One series of points (x ascending when joined). */
typedef struct {
    const char *name;    /* legend text */
    int n;
    const double *x, *y; /* [n] */
    int colour;          /* palette index */
    int diamond;         /* 1: diamond markers, else circles */
    int joined;          /* 1: a line through the points */
    int label_below;     /* 1: value labels below the points, else above */
} svg_series;

/** Lines with markers over numeric axes; both axes include 0. */
typedef struct {
    const char *title;
    const char *subtitle;   /* lines separated by '\n', or NULL */
    const char *x_label, *y_label;
    int nseries;
    const svg_series *series;
    const char *value_format; /* printf format of the value labels ("%.1f%%"); NULL: none */
} svg_xy;

char *svg_xy_render(const svg_xy *c);

/* ---- pictures of libgem results ------------------------------------------------------------- */

/** Per-GPU busy time against the straggler, for n reports (n >= 1, one per mapping, side by
 *  side) of the same trace on the same num_gpus GPUs and num_layers layers. Each bar is a
 *  GPU's mean busy time per (step, layer), in ms; the dashed line of its mapping is the mean
 *  layer time, i.e. the mean over (step, layer) of the slowest GPU's time (mean step latency /
 *  layers), so the light gap between a bar and its line is the time that GPU waits, idle, for
 *  the straggler. Under each bar: the share of (step, layer)s in which that GPU was the
 *  straggler. names[i] names report i in the legend. subtitle may be NULL. Returns GEM_OK and
 *  the text in *out, or the status of a failed gem_report_* call, or GEM_ERR_NO_MEMORY. */
gem_status_t svg_busy_picture(const gem_report_t *const *reports, const char *const *names,
                              int n, int32_t num_gpus, int32_t num_layers, const char *title,
                              const char *subtitle, char **out);

/* ---- files ---------------------------------------------------------------------------------- */

/** Writes text to path whole or not at all: a temporary file in the same folder, flushed to
 *  disk, then renamed over path (an existing file keeps its permissions; a new one gets 0666
 *  less the umask). Returns 0, or -1 with errno set and no file left behind. */
int svg_save(const char *path, const char *text);

#endif
