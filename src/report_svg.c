/*
 * report_svg.c - the plots of a report as inline SVG: lines, heat maps,
 * parallel coordinates and bars.  Every drawn value is also an attribute
 * (data-x, data-y, data-v), so what the page shows can be read back from
 * its DOM.  Colours come from one palette (CSS classes s0..s7).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report_internal.h"

#define W          600
#define H          320
#define ML         72 /* margins: room for tick labels and titles */
#define MR         16
#define MT         34
#define MB         44
#define N_COLORS   8
#define MAX_LEGEND 10 /* more series are told apart by their tooltips */

struct axis {
    double lo, hi;
    bool log;
};

static double tr(double v, bool log)
{
    return log ? log10(v) : v;
}

static bool usable(double v, bool log)
{
    return isfinite(v) && (!log || v > 0);
}

/* Pad a degenerate range so a flat series still gets an axis. */
static void axis_fix(struct axis *a)
{
    if (!(a->lo <= a->hi)) {
        a->lo = a->log ? 1 : 0;
        a->hi = a->log ? 10 : 1;
    }
    if (a->hi - a->lo < 1e-12) {
        double d = a->log ? 0.5 : fabs(a->lo) * 0.05 + 1e-3;
        a->lo -= d;
        a->hi += d;
    }
}

static void axis_add(struct axis *a, double v)
{
    if (!usable(v, a->log))
        return;
    double t = tr(v, a->log);
    a->lo = fmin(a->lo, t);
    a->hi = fmax(a->hi, t);
}

/* Pixel of a value (already on the axis scale) within [p0, p1]. */
static double px(const struct axis *a, double t, double p0, double p1)
{
    return p0 + (t - a->lo) / (a->hi - a->lo) * (p1 - p0);
}

static void tick_label(char *buf, size_t n, double t, bool log)
{
    double v = log ? pow(10, t) : t, a = fabs(v);
    if (a >= 1e4 && a < 1e7 && !log)
        snprintf(buf, n, "%.4gk", v / 1e3);
    else
        snprintf(buf, n, "%.3g", v);
}

/* Ticks at round values: a step of 1, 2 or 5 times a power of ten (at
 * least 1 on an integer axis such as epochs; whole decades on a log axis). */
static int ticks(const struct axis *a, bool integer, double *t, int max)
{
    double span = a->hi - a->lo, step = pow(10, floor(log10(span / 4)));
    step *= span / step > 20 ? 5 : span / step > 8 ? 2 : 1;
    if (a->log || integer)
        step = fmax(1, round(step));
    int n = 0;
    for (double v = ceil(a->lo / step) * step; v <= a->hi + step * 1e-9 && n < max; v += step)
        t[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    if (n < 2) { /* a round value or none inside: show the ends as well */
        double mid = n ? t[0] : NAN;
        n = 0;
        t[n++] = a->lo;
        if (!isnan(mid))
            t[n++] = mid;
        t[n++] = a->hi;
    }
    return n;
}

static void axes(struct cv__html *h, const struct axis *x, const struct axis *y, const char *xl,
                 const char *yl)
{
    char b[32];
    double tx[16], ty[16];
    int nx = ticks(x, !strcmp(xl, "epoch") || !strcmp(xl, "epochs"), tx, 16);
    int ny = ticks(y, false, ty, 16);
    cv__html_put(h, "<g class=\"axes\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", ML, H - MB,
                 W - MR, H - MB);
    cv__html_put(h, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", ML, MT, ML, H - MB);
    for (int i = 0; i < nx; i++) {
        tick_label(b, sizeof(b), tx[i], x->log);
        cv__html_put(h, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s</text>",
                     px(x, tx[i], ML, W - MR), H - MB + 16, b);
    }
    for (int i = 0; i < ny; i++) {
        double Y = px(y, ty[i], H - MB, MT);
        tick_label(b, sizeof(b), ty[i], y->log);
        cv__html_put(h, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", ML, Y,
                     W - MR, Y);
        cv__html_put(h, "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>",
                     ML - 6, Y + 4, b);
    }
    cv__html_put(h, "<text x=\"%d\" y=\"%d\" class=\"label\" text-anchor=\"middle\">", (ML + W) / 2,
                 H - 6);
    cv__html_text(h, xl);
    cv__html_put(h,
                 "%s</text><text x=\"14\" y=\"%d\" class=\"label\" text-anchor=\"middle\" "
                 "transform=\"rotate(-90 14 %d)\">",
                 x->log ? " (log)" : "", (MT + H - MB) / 2, (MT + H - MB) / 2);
    cv__html_text(h, yl);
    cv__html_put(h, "%s</text></g>", y->log ? " (log)" : "");
}

static void open_svg(struct cv__html *h, const char *id, const char *kind, const char *title, int w,
                     int hh)
{
    cv__html_put(h,
                 "<figure><svg class=\"plot\" id=\"%s\" data-kind=\"%s\" viewBox=\"0 0 %d %d\" "
                 "width=\"%d\" height=\"%d\"><text x=\"%d\" y=\"20\" class=\"title\">",
                 id, kind, w, hh, w, hh, ML);
    cv__html_text(h, title);
    cv__html_put(h, "</text>");
}

static void legend(struct cv__html *h, const struct cv__series *s, int ns)
{
    int shown = ns < MAX_LEGEND ? ns : MAX_LEGEND;
    if (ns > 1) /* a backdrop: the legend stays readable over the lines */
        cv__html_put(h, "<rect class=\"legend-bg\" x=\"%d\" y=\"%d\" width=\"166\" height=\"%d\"/>",
                     W - MR - 174, MT, 14 * shown + 8);
    for (int i = 0; i < ns && i < MAX_LEGEND && ns > 1; i++) {
        cv__html_put(h,
                     "<g class=\"legend s%d\"><rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\"/>",
                     i % N_COLORS, W - MR - 170, MT + 4 + 14 * i);
        cv__html_put(h, "<text x=\"%d\" y=\"%d\">", W - MR - 155, MT + 13 + 14 * i);
        cv__html_text(h, s[i].name);
        cv__html_put(h, "</text></g>");
    }
}

static void series(struct cv__html *h, const struct cv__series *s, int i, const struct axis *x,
                   const struct axis *y, int flags)
{
    cv__html_put(h, "<g class=\"series s%d\" data-series=\"", i % N_COLORS);
    cv__html_text(h, s->name);
    cv__html_put(h, "\">");
    if (!(flags & CV_PLOT_POINTS_ONLY)) {
        cv__html_put(h, "<polyline points=\"");
        for (int k = 0; k < s->n; k++)
            if (usable(s->x[k], x->log) && usable(s->y[k], y->log))
                cv__html_put(h, "%.1f,%.1f ", px(x, tr(s->x[k], x->log), ML, W - MR),
                             px(y, tr(s->y[k], y->log), H - MB, MT));
        cv__html_put(h, "\"/>");
    }
    for (int k = 0; k < s->n; k++)
        if (usable(s->x[k], x->log) && usable(s->y[k], y->log))
            cv__html_put(h,
                         "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" data-x=\"%.9g\" "
                         "data-y=\"%.9g\"><title>%.6g, %.6g</title></circle>",
                         px(x, tr(s->x[k], x->log), ML, W - MR),
                         px(y, tr(s->y[k], y->log), H - MB, MT), s->x[k], s->y[k], s->x[k],
                         s->y[k]);
    cv__html_put(h, "</g>");
}

void cv__svg_lines(struct cv__html *h, const char *id, const char *title, const char *xlabel,
                   const char *ylabel, const struct cv__series *s, int ns, int flags)
{
    struct axis x = {INFINITY, -INFINITY, flags & CV_PLOT_LOG_X};
    struct axis y = {INFINITY, -INFINITY, flags & CV_PLOT_LOG_Y};
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < s[i].n; k++)
            if (usable(s[i].x[k], x.log) && usable(s[i].y[k], y.log)) {
                axis_add(&x, s[i].x[k]);
                axis_add(&y, s[i].y[k]);
            }
    axis_fix(&x);
    axis_fix(&y);
    open_svg(h, id, "lines", title, W, H);
    axes(h, &x, &y, xlabel, ylabel);
    for (int i = 0; i < ns; i++)
        series(h, &s[i], i, &x, &y, flags);
    legend(h, s, ns);
    cv__html_put(h, "</svg></figure>\n");
}

/* ---- heat map ---- */

void cv__svg_heatmap(struct cv__html *h, const char *id, const char *title, const double *cells,
                     int n, const char *const *names, const char *fmt)
{
    int cell = n <= 10 ? 40 : n <= 20 ? 24 : 12, left = 110, top = 40;
    int w = left + n * cell + 20 > 440 ? left + n * cell + 20 : 440, hh = top + n * cell + 70;
    double max = -INFINITY, lo = INFINITY;
    for (int i = 0; i < n * n; i++) {
        max = fmax(max, cells[i]);
        lo = fmin(lo, cells[i]);
    }
    if (strstr(fmt, ".0f"))
        lo = 0; /* counts: shade from zero */
    open_svg(h, id, "heatmap", title, w, hh);
    char b[32];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double v = cells[(size_t)i * n + j], a = max > lo ? (v - lo) / (max - lo) : 0;
            cv__html_put(h,
                         "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                         "fill=\"rgba(31,95,191,%.3f)\" data-i=\"%d\" data-j=\"%d\" "
                         "data-v=\"%.9g\"/>",
                         left + j * cell, top + i * cell, cell, cell, 0.04 + 0.96 * a, i, j, v);
            if (cell >= 24) {
                snprintf(b, sizeof(b), fmt, v);
                cv__html_put(h,
                             "<text x=\"%d\" y=\"%d\" class=\"cellv%s\" "
                             "text-anchor=\"middle\">%s</text>",
                             left + j * cell + cell / 2, top + i * cell + cell / 2 + 4,
                             a > 0.55 ? " light" : "", b);
            }
        }
        cv__html_put(h, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">", left - 6,
                     top + i * cell + cell / 2 + 4);
        if (names)
            cv__html_text(h, names[i]);
        else
            cv__html_put(h, "%d", i);
        cv__html_put(h,
                     "</text><text class=\"tick\" text-anchor=\"end\" transform=\"translate(%d "
                     "%d) rotate(-50)\">",
                     left + i * cell + cell / 2 + 4, top + n * cell + 8);
        if (names)
            cv__html_text(h, names[i]);
        else
            cv__html_put(h, "%d", i);
        cv__html_put(h, "</text>");
    }
    cv__html_put(h, "</svg></figure>\n");
}

/* ---- parallel coordinates ---- */

static void colour_of(double t, char *buf, size_t n)
{
    /* dark blue (worst) to orange (best) */
    snprintf(buf, n, "rgb(%d,%d,%d)", (int)(40 + 215 * t), (int)(70 + 80 * t),
             (int)(160 - 130 * t));
}

void cv__svg_parallel(struct cv__html *h, const char *id, const char *title,
                      const char *const *axes_names, const bool *log, int n_axes,
                      const double *rows, int n_rows)
{
    struct axis ax[40];
    n_axes = n_axes > 40 ? 40 : n_axes;
    for (int a = 0; a < n_axes; a++) {
        ax[a] = (struct axis){INFINITY, -INFINITY, log[a]};
        for (int r = 0; r < n_rows; r++)
            axis_add(&ax[a], rows[(size_t)r * n_axes + a]);
        axis_fix(&ax[a]);
    }
    int w = 2 * ML + 200 * (n_axes > 1 ? n_axes - 1 : 1);
    open_svg(h, id, "parallel", title, w, H);
    char c[32], b[32];
    for (int r = 0; r < n_rows; r++) {
        const double *v = rows + (size_t)r * n_axes;
        const struct axis *m = &ax[n_axes - 1];
        double t = usable(v[n_axes - 1], m->log)
                       ? (tr(v[n_axes - 1], m->log) - m->lo) / (m->hi - m->lo)
                       : 0;
        colour_of(t, c, sizeof(c));
        cv__html_put(h, "<polyline class=\"pline\" stroke=\"%s\" data-row=\"%d\" points=\"", c, r);
        for (int a = 0; a < n_axes; a++)
            if (usable(v[a], ax[a].log))
                cv__html_put(h, "%d,%.1f ", ML + 200 * a,
                             px(&ax[a], tr(v[a], ax[a].log), H - MB, MT));
        cv__html_put(h, "\"/>");
    }
    for (int a = 0; a < n_axes; a++) {
        int x = ML + 200 * a;
        cv__html_put(h, "<g class=\"axes\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", x, MT,
                     x, H - MB);
        tick_label(b, sizeof(b), ax[a].hi, ax[a].log);
        cv__html_put(h, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s</text>",
                     x, MT - 4, b);
        tick_label(b, sizeof(b), ax[a].lo, ax[a].log);
        cv__html_put(h, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s</text>",
                     x, H - MB + 14, b);
        cv__html_put(h, "<text x=\"%d\" y=\"%d\" class=\"label\" text-anchor=\"middle\">", x,
                     H - 10);
        cv__html_text(h, axes_names[a]);
        cv__html_put(h, "%s</text></g>", ax[a].log ? " (log)" : "");
    }
    cv__html_put(h, "</svg></figure>\n");
}

/* ---- bars ---- */

void cv__svg_bars(struct cv__html *h, const char *id, const char *title, const char *const *labels,
                  const double *v, int n, int mark)
{
    int row = 22, left = 150, w = W, hh = MT + n * row + 30;
    struct axis x = {INFINITY, -INFINITY, false};
    for (int i = 0; i < n; i++)
        axis_add(&x, v[i]);
    x.lo = fmax(0, x.lo - (x.hi - x.lo) * 0.5 - 0.01); /* show the differences, not only 0..1 */
    axis_fix(&x);
    open_svg(h, id, "bars", title, w, hh);
    for (int i = 0; i < n; i++) {
        double len = isfinite(v[i]) ? px(&x, v[i], 0, w - left - 80) : 0;
        int y = MT + i * row;
        cv__html_put(h, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">", left - 6,
                     y + 14);
        cv__html_text(h, labels[i]);
        cv__html_put(h,
                     "</text><rect class=\"bar%s\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                     "data-label=\"",
                     i == mark ? " mark" : "", left, y + 2, len, row - 6);
        cv__html_text(h, labels[i]);
        cv__html_put(h, "\" data-v=\"%.9g\"/><text x=\"%.1f\" y=\"%d\" class=\"tick\">%.4f</text>",
                     v[i], left + len + 6, y + 14, v[i]);
    }
    cv__html_put(h, "<text x=\"%d\" y=\"%d\" class=\"tick\">axis from %.3g</text></svg></figure>\n",
                 left, hh - 6, x.lo);
}
