/*
 * svg.c - a small SVG writer: text buffer, two chart layouts, the busy-time picture of
 * gem_evaluate reports, and an atomic file writer (see svg.h).
 *
 * The pictures are meant to be read in a browser or on a project page: fixed pixel layout,
 * a white background (readable on dark pages too), system sans-serif fonts, tooltips on every
 * bar and point. Text widths are estimated from character counts, which is enough to keep
 * labels apart; nothing here measures fonts.
 */
#include "svg.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct svg {
    FILE *f;     /* open_memstream over buf */
    char *buf;
    size_t len;
};

/* ---- the buffer ----------------------------------------------------------------------------- */

/* Copies text escaped for XML: the five special characters as entities, control characters
 * and bytes that are not valid UTF-8 as '?', so that any name (a file path, a policy name read
 * from a file) makes a well-formed document. */
static void svg_escape(FILE *f, const char *text)
{
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    while (*p) {
        unsigned c = *p;
        if (c == '&') fputs("&amp;", f);
        else if (c == '<') fputs("&lt;", f);
        else if (c == '>') fputs("&gt;", f);
        else if (c == '"') fputs("&quot;", f);
        else if (c < 0x20) fputc(c == '\t' ? ' ' : '?', f);
        else if (c < 0x80) fputc((int)c, f);
        else {
            /* length of a well-formed UTF-8 sequence starting here, 0 if there is none */
            int n = (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3
                  : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
            for (int i = 1; i < n; i++)
                if ((p[i] & 0xc0) != 0x80) n = 0;
            if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) n = 0;
            if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))) n = 0;
            if (n == 0) { fputc('?', f); p++; continue; }
            fwrite(p, 1, (size_t)n, f);
            p += n;
            continue;
        }
        p++;
    }
}

svg *svg_begin(double width, double height, const char *title)
{
    svg *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->f = open_memstream(&s->buf, &s->len);
    if (!s->f) {
        free(s);
        return NULL;
    }
    fprintf(s->f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\" "
            "font-size=\"12\">\n",
            width, height, width, height);
    if (title) {
        fputs("<title>", s->f);
        svg_escape(s->f, title);
        fputs("</title>\n", s->f);
    }
    fputs("<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n", s->f);
    return s;
}

char *svg_finish(svg *s)
{
    if (!s) return NULL;
    fputs("</svg>\n", s->f);
    int bad = ferror(s->f);
    if (fclose(s->f) != 0) bad = 1;
    char *text = s->buf;
    free(s);
    if (bad) {
        free(text);
        return NULL;
    }
    return text;
}

void svg_discard(svg *s)
{
    if (!s) return;
    fclose(s->f);
    free(s->buf);
    free(s);
}

/* Ends a shape element: "/>" alone, or a <title> child for the tooltip. */
static void svg_close_shape(svg *s, const char *elem, const char *tip)
{
    if (!tip) {
        fputs("/>\n", s->f);
        return;
    }
    fputs("><title>", s->f);
    svg_escape(s->f, tip);
    fprintf(s->f, "</title></%s>\n", elem);
}

void svg_rect(svg *s, double x, double y, double w, double h, const char *style, const char *tip)
{
    if (w < 0) { x += w; w = -w; }
    if (h < 0) { y += h; h = -h; }
    fprintf(s->f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" %s", x, y, w, h,
            style ? style : "");
    svg_close_shape(s, "rect", tip);
}

void svg_line(svg *s, double x1, double y1, double x2, double y2, const char *style)
{
    fprintf(s->f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" %s/>\n", x1, y1, x2, y2,
            style ? style : "");
}

void svg_circle(svg *s, double cx, double cy, double r, const char *style, const char *tip)
{
    fprintf(s->f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" %s", cx, cy, r, style ? style : "");
    svg_close_shape(s, "circle", tip);
}

void svg_diamond(svg *s, double cx, double cy, double r, const char *style, const char *tip)
{
    fprintf(s->f, "<polygon points=\"%.2f,%.2f %.2f,%.2f %.2f,%.2f %.2f,%.2f\" %s", cx, cy - r,
            cx + r, cy, cx, cy + r, cx - r, cy, style ? style : "");
    svg_close_shape(s, "polygon", tip);
}

void svg_polyline(svg *s, const double *x, const double *y, int n, const char *style)
{
    if (n < 2) return;
    fputs("<polyline fill=\"none\" points=\"", s->f);
    for (int i = 0; i < n; i++) fprintf(s->f, "%s%.2f,%.2f", i ? " " : "", x[i], y[i]);
    fprintf(s->f, "\" %s/>\n", style ? style : "");
}

static void svg_text_raw(svg *s, double x, double y, const char *anchor, const char *style,
                         const char *text)
{
    fprintf(s->f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\" %s>", x, y,
            anchor ? anchor : "start", style ? style : "");
    svg_escape(s->f, text);
    fputs("</text>\n", s->f);
}

void svg_text(svg *s, double x, double y, const char *anchor, const char *style,
              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) return; /* out of memory: the label is lost, the picture is still valid */
    svg_text_raw(s, x, y, anchor, style, text);
    free(text);
}

void svg_text_vertical(svg *s, double x, double y, const char *style, const char *text)
{
    fprintf(s->f, "<text transform=\"translate(%.2f %.2f) rotate(-90)\" text-anchor=\"middle\" %s>",
            x, y, style ? style : "");
    svg_escape(s->f, text);
    fputs("</text>\n", s->f);
}

/* ---- chart helpers -------------------------------------------------------------------------- */

const char *svg_colour(int i)
{
    /* Okabe and Ito's palette, readable with every common colour-vision deficiency */
    static const char *const palette[] = {"#0072B2", "#E69F00", "#009E73",
                                          "#CC79A7", "#D55E00", "#56B4E9"};
    if (i < 0) return "#000000";
    return palette[i % 6];
}

/* Rough width in pixels of text at a font size (sans-serif averages ~0.55 em a character). */
static double svg_text_width(const char *text, double size)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++)
        if ((*p & 0xc0) != 0x80) n++; /* count characters, not UTF-8 continuation bytes */
    return (double)n * size * 0.56;
}

/* Widest line of a '\n'-separated text, and the number of lines. */
static double svg_lines_width(const char *text, double size, int *lines)
{
    double w = 0;
    int n = 0;
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char line[512];
        if (len >= sizeof line) len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = 0;
        double lw = svg_text_width(line, size);
        if (lw > w) w = lw;
        n++;
        p = end ? end + 1 : p + len;
    }
    if (lines) *lines = n;
    return w;
}

/* Title (bold) and subtitle lines from the top; returns the y below them. */
static double svg_heading(svg *s, double x, const char *title, const char *subtitle)
{
    double y = 26;
    if (title) svg_text_raw(s, x, y, "start", "font-size=\"17\" font-weight=\"bold\"", title);
    for (const char *p = subtitle; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char line[512];
        if (len >= sizeof line) len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = 0;
        y += 17;
        svg_text_raw(s, x, y, "start", "fill=\"#444444\"", line);
        p = end ? end + 1 : p + len;
    }
    return y;
}

/* An axis from lo to hi cut at round numbers (1, 2, 2.5 or 5 times a power of ten). */
typedef struct {
    double lo, hi, step;
    int decimals; /* of the tick labels */
} svg_axis;

static svg_axis svg_nice_axis(double lo, double hi, int ticks)
{
    svg_axis a;
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (hi <= lo) hi = lo + (lo != 0 ? fabs(lo) : 1.0);
    double raw = (hi - lo) / ticks;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    double nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    a.step = nf * mag;
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    int d = (int)-floor(log10(a.step) + 1e-9) + (nf == 2.5 ? 1 : 0);
    a.decimals = d < 0 ? 0 : d > 6 ? 6 : d;
    return a;
}

/* Pixel position of v on an axis mapped to [p0, p1]. */
static double svg_scale(const svg_axis *a, double v, double p0, double p1)
{
    return p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
}

/* Grid lines and labels of a vertical (y) axis over the plot [x0, x1] x [top, bottom], the
 * axis' values drawn between pixels lo_px (its lowest) and hi_px. */
static void svg_y_axis(svg *s, const svg_axis *a, double x0, double x1, double top,
                       double bottom, double lo_px, double hi_px, const char *label)
{
    int n = (int)floor((a->hi - a->lo) / a->step + 0.5);
    for (int i = 0; i <= n; i++) {
        double v = a->lo + i * a->step;
        double y = svg_scale(a, v, lo_px, hi_px);
        svg_line(s, x0, y, x1, y, "stroke=\"#dddddd\" stroke-width=\"1\"");
        svg_text(s, x0 - 6, y + 4, "end", "fill=\"#333333\"", "%.*f", a->decimals,
                 fabs(v) < a->step * 1e-9 ? 0.0 : v);
    }
    svg_line(s, x0, top, x0, bottom, "stroke=\"#333333\" stroke-width=\"1\"");
    if (label) svg_text_vertical(s, 18, (top + bottom) / 2, "font-size=\"13\"", label);
}

/* Legend entries laid left to right from (x, y), wrapping before max_x; returns the y of the
 * last row. kind: 0 solid swatch, 1 light swatch (idle), 2 line with a circle, 3 diamond. */
typedef struct {
    const char *text;
    int colour;
    int kind;
} svg_legend_item;

static double svg_legend(svg *s, const svg_legend_item *items, int n, double x0, double y,
                         double max_x, int draw)
{
    double x = x0;
    for (int i = 0; i < n; i++) {
        double w = 22 + svg_text_width(items[i].text, 12) + 18;
        if (x > x0 && x + w > max_x) {
            x = x0;
            y += 20;
        }
        if (draw) {
            char style[160];
            const char *c = svg_colour(items[i].colour);
            switch (items[i].kind) {
            case 0:
                snprintf(style, sizeof style, "fill=\"%s\"", c);
                svg_rect(s, x, y - 10, 14, 12, style, NULL);
                break;
            case 1:
                snprintf(style, sizeof style,
                         "fill=\"%s\" fill-opacity=\"0.18\" stroke=\"%s\" "
                         "stroke-dasharray=\"3 2\"", c, c);
                svg_rect(s, x, y - 10, 14, 12, style, NULL);
                break;
            case 2:
                snprintf(style, sizeof style, "stroke=\"%s\" stroke-width=\"2\"", c);
                svg_line(s, x - 3, y - 4, x + 17, y - 4, style);
                snprintf(style, sizeof style, "fill=\"%s\" stroke=\"#ffffff\"", c);
                svg_circle(s, x + 7, y - 4, 4.5, style, NULL);
                break;
            default:
                snprintf(style, sizeof style, "fill=\"%s\" stroke=\"#ffffff\"", c);
                svg_diamond(s, x + 7, y - 4, 6, style, NULL);
                break;
            }
            svg_text_raw(s, x + 22, y, "start", NULL, items[i].text);
        }
        x += w;
    }
    return y;
}

/* ---- grouped bars --------------------------------------------------------------------------- */

/* Label positions of the reference lines in the right margin, kept 14 px apart. */
static void svg_spread_labels(const double *want, double *y, int n)
{
    if (n <= 0) return;
    int *order = malloc(sizeof *order * (size_t)n);
    if (!order) {
        for (int i = 0; i < n; i++) y[i] = want[i];
        return;
    }
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort by position, top first */
        for (int j = i; j > 0 && want[order[j]] < want[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    double last = -1e300;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        y[i] = want[i] < last + 14 ? last + 14 : want[i];
        last = y[i];
    }
    free(order);
}

char *svg_bars_render(const svg_bars *c)
{
    const int G = c->ngroups > 0 ? c->ngroups : 0, S = c->nseries > 0 ? c->nseries : 1;
    /* bar widths: comfortable for a few groups, narrower for many (the plot stays < ~1000 px) */
    double bar = floor((960.0 / (G ? G : 1) - 20) / S);
    if (bar > 44) bar = 44;
    if (bar < 8) bar = 8;
    double gap = bar * 0.8 < 10 ? 10 : bar * 0.8 > 28 ? 28 : bar * 0.8;
    if (G <= 32) /* group names side by side without touching */
        for (int g = 0; g < G; g++) {
            double need = svg_text_width(c->groups[g], 12) + 14 - S * bar;
            if (need > gap) gap = need;
        }
    double group_w = S * bar + gap;

    /* the value range: bars, caps and lines, from 0 */
    double top_v = 0;
    for (int i = 0; i < S * G; i++)
        if (isfinite(c->values[i]) && c->values[i] > top_v) top_v = c->values[i];
    for (int i = 0; c->caps && i < S; i++)
        if (isfinite(c->caps[i]) && c->caps[i] > top_v) top_v = c->caps[i];
    for (int i = 0; i < c->nlines; i++)
        if (isfinite(c->lines[i].value) && c->lines[i].value > top_v) top_v = c->lines[i].value;
    svg_axis ax = svg_nice_axis(0, top_v > 0 ? top_v * 1.04 : 1, 6);

    /* right margin: the reference lines' labels */
    char (*line_text)[160] = calloc((size_t)(c->nlines ? c->nlines : 1), sizeof *line_text);
    double *want = calloc((size_t)(c->nlines ? c->nlines : 1), sizeof *want);
    double *at = calloc((size_t)(c->nlines ? c->nlines : 1), sizeof *at);
    if (!line_text || !want || !at) {
        free(line_text);
        free(want);
        free(at);
        return NULL;
    }
    double mr = 24;
    for (int i = 0; i < c->nlines; i++) {
        snprintf(line_text[i], sizeof line_text[i], "%s", c->lines[i].label);
        double w = svg_text_width(line_text[i], 12) * 1.1 + 16; /* bold */
        if (w > mr) mr = w;
    }
    const double ml = 78;
    double pw = G * group_w;
    if (pw < 360) pw = 360;
    int sub_lines = 0;
    double head_w = svg_text_width(c->title, 17) * 1.05;
    double sub_w = svg_lines_width(c->subtitle, 12, &sub_lines);
    if (sub_w > head_w) head_w = sub_w;
    if (18 + head_w + 20 > ml + pw + mr) pw = 18 + head_w + 20 - ml - mr; /* room for the title */
    const double W = ml + pw + mr;
    const double x0 = ml + (pw - G * group_w) / 2; /* bars centred in the plot */

    svg_legend_item items[16];
    int nitems = 0;
    for (int i = 0; c->series && i < S && nitems < 15; i++)
        items[nitems++] = (svg_legend_item){c->series[i], i, 0};
    if (c->caps && c->cap_label) items[nitems++] = (svg_legend_item){c->cap_label, -1, 1};
    double legend_y = 26 + 17.0 * sub_lines + 26;
    double last_row = nitems ? svg_legend(NULL, items, nitems, 18, legend_y, W - 10, 0)
                             : legend_y - 20;
    const double top = last_row + 22, ph = 290, bottom = top + ph;
    const double H = bottom + (c->notes ? 70 : 56);

    svg *s = svg_begin(W, H, c->title);
    if (!s) {
        free(line_text);
        free(want);
        free(at);
        return NULL;
    }
    svg_heading(s, 18, c->title, c->subtitle);
    if (nitems) svg_legend(s, items, nitems, 18, legend_y, W - 10, 1);
    svg_y_axis(s, &ax, ml, ml + pw, top, bottom, bottom, top, c->y_label);

    for (int si = 0; si < S; si++) {
        const char *col = svg_colour(S == 1 && !c->series ? 0 : si);
        char solid[96], light[200];
        /* classes name the parts for style sheets and for tests that count bars */
        snprintf(solid, sizeof solid, "class=\"bar\" fill=\"%s\"", col);
        snprintf(light, sizeof light,
                 "class=\"idle\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"%s\" "
                 "stroke-width=\"1\" stroke-dasharray=\"3 2\"", col, col);
        for (int g = 0; g < G; g++) {
            double v = c->values[si * G + g];
            double bx = x0 + gap / 2 + g * group_w + si * bar, bw = bar - 2;
            double cx = bx + bw / 2;
            const char *tip = c->tips ? c->tips[si * G + g] : NULL;
            if (!isfinite(v)) continue;
            double y = svg_scale(&ax, v, bottom, top);
            double cap = c->caps ? c->caps[si] : NAN;
            if (isfinite(cap) && cap > v) {
                double yc = svg_scale(&ax, cap, bottom, top);
                svg_rect(s, bx, yc, bw, y - yc, light, tip);
            }
            svg_rect(s, bx, y, bw, bottom - y, solid, tip);
            if (bar >= 28) {
                int inside = isfinite(cap) && bottom - y >= 18;
                svg_text(s, cx, inside ? y + 13 : y - 4, "middle",
                         inside ? "font-size=\"10\" fill=\"#ffffff\" font-weight=\"bold\""
                                : "font-size=\"10\" fill=\"#222222\"",
                         "%.*f", c->digits, v);
            }
            if (c->notes && c->notes[si * G + g] && bar >= 20)
                svg_text_raw(s, cx, bottom + 30, "middle", "font-size=\"10\" fill=\"#555555\"",
                             c->notes[si * G + g]);
        }
    }
    /* group names, thinned out when there are many */
    int every = G > 32 ? (G + 15) / 16 : 1;
    for (int g = 0; g < G; g += every)
        svg_text_raw(s, x0 + gap / 2 + g * group_w + (S * bar - 2) / 2, bottom + 16, "middle",
                     NULL, c->groups[g]);
    svg_line(s, ml, bottom, ml + pw, bottom, "stroke=\"#333333\" stroke-width=\"1\"");

    for (int i = 0; i < c->nlines; i++) want[i] = svg_scale(&ax, c->lines[i].value, bottom, top);
    svg_spread_labels(want, at, c->nlines);
    for (int i = 0; i < c->nlines; i++) {
        const char *col = svg_colour(c->lines[i].series);
        char style[128];
        snprintf(style, sizeof style,
                 "class=\"ref\" stroke=\"%s\" stroke-width=\"1.6\" stroke-dasharray=\"7 4\"",
                 col);
        svg_line(s, ml, want[i], ml + pw, want[i], style);
        snprintf(style, sizeof style, "fill=\"%s\" font-weight=\"bold\"", col);
        svg_text_raw(s, ml + pw + 6, at[i] + 4, "start", style, line_text[i]);
    }
    if (c->x_label)
        svg_text_raw(s, ml + pw / 2, bottom + (c->notes ? 54 : 40), "middle", "font-size=\"13\"",
                     c->x_label);
    free(line_text);
    free(want);
    free(at);
    return svg_finish(s);
}

/* ---- lines with markers --------------------------------------------------------------------- */

char *svg_xy_render(const svg_xy *c)
{
    double xmin = 0, xmax = 0, ymin = 0, ymax = 0;
    for (int k = 0; k < c->nseries; k++)
        for (int i = 0; i < c->series[k].n; i++) {
            double x = c->series[k].x[i], y = c->series[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            if (x < xmin) xmin = x;
            if (x > xmax) xmax = x;
            if (y < ymin) ymin = y;
            if (y > ymax) ymax = y;
        }
    double ypad = (ymax - ymin) * 0.1;
    svg_axis ax = svg_nice_axis(xmin, xmax, 6);
    svg_axis ay = svg_nice_axis(ymin < 0 ? ymin - ypad : 0, ymax + ypad, 6);

    const double ml = 78, mr = 30, pw = 600;
    int sub_lines = 0;
    double head_w = svg_text_width(c->title, 17) * 1.05;
    double sub_w = svg_lines_width(c->subtitle, 12, &sub_lines);
    if (sub_w > head_w) head_w = sub_w;
    double W = ml + pw + mr;
    if (head_w + 40 > W) W = head_w + 40;

    svg_legend_item items[16];
    int nitems = 0;
    for (int k = 0; k < c->nseries && nitems < 16; k++)
        items[nitems++] = (svg_legend_item){c->series[k].name, c->series[k].colour,
                                            c->series[k].diamond ? 3 : 2};
    double legend_y = 26 + 17.0 * sub_lines + 26;
    double last_row = svg_legend(NULL, items, nitems, 18, legend_y, W - 10, 0);
    const double top = last_row + 24, ph = 320, bottom = top + ph;
    const double H = bottom + 58;

    svg *s = svg_begin(W, H, c->title);
    if (!s) return NULL;
    svg_heading(s, 18, c->title, c->subtitle);
    svg_legend(s, items, nitems, 18, legend_y, W - 10, 1);
    /* points keep clear of the axes: a margin inside the plot on every side, wider at the
     * bottom for value labels under the lowest points */
    const double x_lo = ml + 14, x_hi = ml + pw - 14, y_lo = bottom - 24, y_hi = top + 8;
    svg_y_axis(s, &ay, ml, ml + pw, top, bottom, y_lo, y_hi, c->y_label);

    /* x axis: ticks below the plot, the zero line of y drawn darker */
    int n = (int)floor((ax.hi - ax.lo) / ax.step + 0.5);
    for (int i = 0; i <= n; i++) {
        double v = ax.lo + i * ax.step, x = svg_scale(&ax, v, x_lo, x_hi);
        svg_line(s, x, bottom, x, bottom + 5, "stroke=\"#333333\"");
        svg_text(s, x, bottom + 18, "middle", "fill=\"#333333\"", "%.*f", ax.decimals,
                 fabs(v) < ax.step * 1e-9 ? 0.0 : v);
    }
    svg_line(s, ml, bottom, ml + pw, bottom, "stroke=\"#333333\" stroke-width=\"1\"");
    double y0 = svg_scale(&ay, 0, y_lo, y_hi);
    svg_line(s, ml, y0, ml + pw, y0, "stroke=\"#888888\" stroke-width=\"1.2\"");
    if (c->x_label)
        svg_text_raw(s, ml + pw / 2, bottom + 42, "middle", "font-size=\"13\"", c->x_label);

    for (int k = 0; k < c->nseries; k++) {
        const svg_series *se = &c->series[k];
        const char *col = svg_colour(se->colour);
        double *px = malloc(sizeof *px * (size_t)(se->n ? se->n : 1));
        double *py = malloc(sizeof *py * (size_t)(se->n ? se->n : 1));
        if (!px || !py) {
            free(px);
            free(py);
            svg_discard(s);
            return NULL;
        }
        int m = 0;
        for (int i = 0; i < se->n; i++) {
            if (!isfinite(se->x[i]) || !isfinite(se->y[i])) continue;
            px[m] = svg_scale(&ax, se->x[i], x_lo, x_hi);
            py[m] = svg_scale(&ay, se->y[i], y_lo, y_hi);
            m++;
        }
        char style[160];
        if (se->joined) {
            snprintf(style, sizeof style, "stroke=\"%s\" stroke-width=\"2\"", col);
            svg_polyline(s, px, py, m, style);
        }
        snprintf(style, sizeof style, "fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1\"", col);
        for (int i = 0, j = 0; i < se->n; i++) {
            if (!isfinite(se->x[i]) || !isfinite(se->y[i])) continue;
            char tip[256];
            snprintf(tip, sizeof tip, "%s: x = %g, y = %g", se->name ? se->name : "", se->x[i],
                     se->y[i]);
            if (se->diamond) svg_diamond(s, px[j], py[j], 6.5, style, tip);
            else svg_circle(s, px[j], py[j], 4.5, style, tip);
            if (c->value_format) {
                char fill[64];
                snprintf(fill, sizeof fill, "font-size=\"10\" fill=\"%s\"", col);
                char label[64];
                snprintf(label, sizeof label, c->value_format, se->y[i]);
                svg_text_raw(s, px[j], se->label_below ? py[j] + 18 : py[j] - 9, "middle", fill,
                             label);
            }
            j++;
        }
        free(px);
        free(py);
    }
    return svg_finish(s);
}

/* ---- per-GPU busy time ---------------------------------------------------------------------- */

int svg_digits_for(double top)
{
    if (!(top > 0)) return 2;
    int d = 3 - (int)floor(log10(top));
    return d < 0 ? 0 : d > 4 ? 4 : d;
}

typedef struct {
    double *values, *caps;
    char **notes, **tips, **series, **groups, **line_labels;
    svg_ref_line *lines;
} svg_busy_parts;

static void svg_busy_free(svg_busy_parts *b, int n, int G)
{
    for (int i = 0; b->notes && i < n * G; i++) free(b->notes[i]);
    for (int i = 0; b->tips && i < n * G; i++) free(b->tips[i]);
    for (int i = 0; b->series && i < n; i++) free(b->series[i]);
    for (int i = 0; b->line_labels && i < n; i++) free(b->line_labels[i]);
    for (int i = 0; b->groups && i < G; i++) free(b->groups[i]);
    free(b->values);
    free(b->caps);
    free(b->notes);
    free(b->tips);
    free(b->series);
    free(b->groups);
    free(b->line_labels);
    free(b->lines);
}

/* Fills the chart's arrays from the reports; GEM_ERR_NO_MEMORY or a report call's status. */
static gem_status_t svg_busy_fill(const gem_report_t *const *reports, const char *const *names,
                                  int n, int32_t G, int32_t L, svg_busy_parts *b)
{
    const size_t cells = (size_t)n * (size_t)G;
    b->values = calloc(cells, sizeof *b->values);
    b->caps = calloc((size_t)n, sizeof *b->caps);
    b->notes = calloc(cells, sizeof *b->notes);
    b->tips = calloc(cells, sizeof *b->tips);
    b->series = calloc((size_t)n, sizeof *b->series);
    b->line_labels = calloc((size_t)n, sizeof *b->line_labels);
    b->lines = calloc((size_t)n, sizeof *b->lines);
    b->groups = calloc((size_t)G, sizeof *b->groups);
    if (!b->values || !b->caps || !b->notes || !b->tips || !b->series || !b->line_labels ||
        !b->lines || !b->groups)
        return GEM_ERR_NO_MEMORY;
    for (int32_t g = 0; g < G; g++)
        if (asprintf(&b->groups[g], "GPU %d", (int)g) < 0) {
            b->groups[g] = NULL; /* asprintf leaves it undefined on failure */
            return GEM_ERR_NO_MEMORY;
        }
    for (int i = 0; i < n; i++) {
        double steps = 0, total = 0, mean = 0;
        gem_status_t st;
        if ((st = gem_report_get(reports[i], GEM_METRIC_STEPS, &steps)) ||
            (st = gem_report_get(reports[i], GEM_METRIC_TOTAL, &total)) ||
            (st = gem_report_get(reports[i], GEM_METRIC_MEAN, &mean)))
            return st;
        double layers_run = steps * (double)L; /* (step, layer)s replayed */
        double per = layers_run > 0 ? 1.0 / layers_run * 1e-3 : 0; /* us in total -> ms/layer */
        b->caps[i] = total * per;
        const char *name = names && names[i] ? names[i] : "mapping";
        if (asprintf(&b->series[i], "%s: mean step %.2f ms", name, mean * 1e-3) < 0) {
            b->series[i] = NULL;
            return GEM_ERR_NO_MEMORY;
        }
        if (asprintf(&b->line_labels[i], "%s: %.4g ms", name, b->caps[i]) < 0) {
            b->line_labels[i] = NULL;
            return GEM_ERR_NO_MEMORY;
        }
        b->lines[i] = (svg_ref_line){b->line_labels[i], b->caps[i], i};
        for (int32_t g = 0; g < G; g++) {
            double busy = 0;
            int64_t strag = 0;
            if ((st = gem_report_gpu(reports[i], g, &busy, &strag))) return st;
            size_t k = (size_t)i * (size_t)G + (size_t)g;
            double v = busy * per, share = layers_run > 0 ? (double)strag / layers_run : 0;
            b->values[k] = v;
            if (asprintf(&b->notes[k], "%.0f%%", share * 100) < 0) {
                b->notes[k] = NULL;
                return GEM_ERR_NO_MEMORY;
            }
            if (asprintf(&b->tips[k],
                         "GPU %d, %s: busy %.4f ms per layer, idle %.4f ms waiting for the "
                         "slowest GPU; the slowest in %lld of %.0f layers (%.1f%%)",
                         (int)g, name, v, b->caps[i] - v, (long long)strag, layers_run,
                         share * 100) < 0) {
                b->tips[k] = NULL;
                return GEM_ERR_NO_MEMORY;
            }
        }
    }
    return GEM_OK;
}

gem_status_t svg_busy_picture(const gem_report_t *const *reports, const char *const *names,
                              int n, int32_t num_gpus, int32_t num_layers, const char *title,
                              const char *subtitle, char **out)
{
    if (!reports || n < 1 || num_gpus < 1 || num_layers < 1 || !out)
        return GEM_ERR_INVALID_ARGUMENT;
    svg_busy_parts b;
    memset(&b, 0, sizeof b);
    gem_status_t st = svg_busy_fill(reports, names, n, num_gpus, num_layers, &b);
    char *sub = NULL;
    if (!st) {
        const char *explain =
            "Bars: each GPU's mean busy time per layer. Light: time it waits, idle, for the "
            "slowest GPU.\nDashed: mean layer time (the slowest GPU's), = mean step latency / "
            "layers.";
        if (asprintf(&sub, "%s%s%s", subtitle ? subtitle : "", subtitle ? "\n" : "", explain) < 0) {
            sub = NULL;
            st = GEM_ERR_NO_MEMORY;
        }
    }
    if (!st) {
        double top = 0;
        for (int i = 0; i < n; i++)
            if (b.caps[i] > top) top = b.caps[i];
        svg_bars c = {
            .title = title ? title : "Per-GPU busy time against the slowest GPU",
            .subtitle = sub,
            .x_label = "GPU (under each bar: share of layers in which it was the slowest)",
            .y_label = "time per layer (ms)",
            .ngroups = num_gpus,
            .groups = (const char *const *)b.groups,
            .nseries = n,
            .series = (const char *const *)b.series,
            .values = b.values,
            .caps = b.caps,
            .cap_label = "idle: waiting for the slowest GPU",
            .notes = (const char *const *)b.notes,
            .tips = (const char *const *)b.tips,
            .nlines = n,
            .lines = b.lines,
            .digits = svg_digits_for(top),
        };
        char *text = svg_bars_render(&c);
        if (text) *out = text;
        else st = GEM_ERR_NO_MEMORY;
    }
    free(sub);
    svg_busy_free(&b, n, num_gpus);
    return st;
}

/* ---- files ---------------------------------------------------------------------------------- */

static int svg_write_all(int fd, const char *data, size_t len)
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

int svg_save(const char *path, const char *text)
{
    if (!path || !*path || !text) {
        errno = EINVAL;
        return -1;
    }
    /* a hidden temporary name in the target's folder, so that rename(2) stays on one file
     * system; open(2) with 0666 lets the umask decide a new file's permissions */
    const char *slash = strrchr(path, '/');
    int dir = slash ? (int)(slash - path) + 1 : 0;
    char *tmp = NULL;
    int fd = -1;
    for (unsigned n = 0; fd < 0 && n < 100; n++) {
        free(tmp);
        if (asprintf(&tmp, "%.*s.gem.tmp-%ld-%u", dir, path, (long)getpid(), n) < 0) {
            errno = ENOMEM;
            return -1;
        }
        do fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        while (fd < 0 && errno == EINTR);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        errno = e;
        return -1;
    }
    struct stat old;
    if (stat(path, &old) == 0 && S_ISREG(old.st_mode)) (void)fchmod(fd, old.st_mode & 07777);
    int failed = svg_write_all(fd, text, strlen(text)) || fsync(fd);
    int e = failed ? errno : 0;
    if (close(fd) != 0 && !failed) failed = 1, e = errno;
    if (!failed && rename(tmp, path) != 0) failed = 1, e = errno;
    if (failed) unlink(tmp);
    free(tmp);
    if (failed) {
        errno = e;
        return -1;
    }
    return 0;
}
