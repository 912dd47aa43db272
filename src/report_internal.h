/*
 * report_internal.h - the pieces of `caviar report` (see caviar/report.h):
 *   report.c        which kind each directory is, the page, run.report;
 *   report_run.c    a training run: curves, evaluation, config;
 *   report_sweep.c  a sweep (table, metric per hyperparameter, parallel
 *                   coordinates, ASHA rungs) and an ensemble;
 *   report_svg.c    the plots as inline SVG;
 *   report_data.c   metrics.jsonl read back, and the page buffer.
 * Every plot carries its points as data-x / data-y attributes, so a test
 * (or a script) reads from the page what it shows.
 */
#ifndef CV_REPORT_INTERNAL_H
#define CV_REPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "caviar/config.h"
#include "caviar/status.h"

/* ---- the page buffer ---- */

struct cv__html {
    char *s;    /* the text (owned) */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
    bool oom;   /* an append failed: the page is incomplete */
};

void cv__html_put(struct cv__html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text with <, >, &, " escaped. */
void cv__html_text(struct cv__html *h, const char *s);
/* A number for a table cell: "-" for NaN. */
void cv__html_num(struct cv__html *h, double v, const char *fmt);

/* ---- plots (report_svg.c) ---- */

enum { CV_PLOT_LOG_X = 1, CV_PLOT_LOG_Y = 2, CV_PLOT_POINTS_ONLY = 4 };

struct cv__series {
    const char *name; /* legend text */
    const double *x;  /* (n) */
    const double *y;  /* (n); NaN points are left out */
    int n;
};

/* Lines (or points) of several series on shared axes. */
void cv__svg_lines(struct cv__html *h, const char *id, const char *title, const char *xlabel,
                   const char *ylabel, const struct cv__series *s, int ns, int flags);
/* An n x n heat map; rows and columns labelled by names (NULL: indices);
 * fmt prints a cell's value. */
void cv__svg_heatmap(struct cv__html *h, const char *id, const char *title, const double *cells,
                     int n, const char *const *names, const char *fmt);
/* One polyline per row across n_axes vertical axes (the last is the metric
 * and colours the lines); log[a] puts axis a on a log scale. */
void cv__svg_parallel(struct cv__html *h, const char *id, const char *title,
                      const char *const *axes, const bool *log, int n_axes, const double *rows,
                      int n_rows);
/* Horizontal bars: one per label, the `mark`ed one highlighted. */
void cv__svg_bars(struct cv__html *h, const char *id, const char *title, const char *const *labels,
                  const double *v, int n, int mark);

/* ---- a run's history (report_data.c) ---- */

enum { CV_H_TRAIN_LOSS, CV_H_TRAIN_ACC, CV_H_DEV_LOSS, CV_H_DEV_ACC, CV_H_LR, CV_H_SPS, CV_H_N };

struct cv__history {
    int n;                        /* epochs read */
    double *epoch;                /* (n) */
    double *col[CV_H_N];          /* (n) each; NaN where the line had null */
    int skipped;                  /* lines that could not be read (a torn last line) */
    char note[CV_PATH_MAX + 128]; /* why, for the page */
};

/* Read RUN_DIR/metrics.jsonl.  A missing file is CV_IO; unreadable lines
 * are skipped and counted (a killed job tears the last one). */
cv_status cv__history_read(const char *run_dir, struct cv__history *h, struct cv_error *err);
void cv__history_free(struct cv__history *h);

/* ---- sections ---- */

/* A training run: curves, the evaluation of model.h5 on its dev split
 * (confusion heat map, per-class table), the config. */
void cv__report_run(struct cv__html *h, const char *dir, int idx);
/* A sweep directory (holding results.jsonl and config.yaml). */
void cv__report_sweep(struct cv__html *h, const char *dir, int idx);
/* An ensemble directory (results.jsonl, members.txt). */
void cv__report_ensemble(struct cv__html *h, const char *dir, int idx);
/* Several runs' curves overlaid. */
void cv__report_compare(struct cv__html *h, const char *const *runs, const char *const *labels,
                        int n);
/* A boxed message on the page (e.g. "model.h5 missing"). */
void cv__report_note(struct cv__html *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* CV_REPORT_INTERNAL_H */
