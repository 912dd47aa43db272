/*
 * report_sweep.c - the sections of a sweep and of an ensemble.
 * A sweep: results.jsonl as a table sorted by the metric, the metric
 * against each hyperparameter (log axes for log-uniform keys), parallel
 * coordinates, ASHA's rungs and PBT's generations (each trial's metric at
 * each), PBT's lineage (every exploit step, the best member's schedule of
 * values) and the best trial's own section.  An ensemble: each member and the mean of their
 * probabilities evaluated on the dev split, and how often two members
 * predict the same class.  A sweep without a finished trial shows what
 * exists and says so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/checkpoint.h"
#include "caviar/evaluate.h"
#include "caviar/sweep.h"
#include "report_internal.h"
#include "util.h"

#define EVAL_BATCH 256

struct sweep_view {
    struct cv_config *cfg;  /* the sweep's config.yaml, or NULL */
    const char *metric;     /* its metric name */
    bool minimize;          /* direction */
    struct cv_result *all;  /* every line (rungs included) */
    struct cv_result *best; /* the best line per trial, best first */
    int n_all, n_best, n_finished;
};

static bool finished(const struct cv_result *r)
{
    return (r->status == CV_JOB_DONE || r->status == CV_JOB_PAUSED) && isfinite(r->value);
}

static double value_of(const char *text)
{
    char *end;
    double v = strtod(text, &end);
    return *text && !*end ? v : NAN;
}

static const struct cv_sweep_dim *dim_of(const struct sweep_view *v, const char *key)
{
    for (int d = 0; v->cfg && d < v->cfg->sweep.n_space; d++)
        if (!strcmp(v->cfg->sweep.space[d].key, key))
            return &v->cfg->sweep.space[d];
    return NULL;
}

static bool log_dim(const struct sweep_view *v, const char *key)
{
    const struct cv_sweep_dim *d = dim_of(v, key);
    return d && d->dist == CV_DIST_LOG_UNIFORM;
}

/* ---- the table ---- */

static void results_table(struct cv__html *h, const struct sweep_view *v, int idx)
{
    const struct cv_result *b = v->best;
    cv__html_put(h,
                 "<table class=\"results\" id=\"s%d-results\"><tr><th>#</th><th>trial</th>"
                 "<th>status</th><th>epochs</th><th>",
                 idx);
    cv__html_text(h, v->metric);
    cv__html_put(h, "</th><th>dev loss</th><th>dev acc</th><th>seconds</th>");
    for (int j = 0; v->n_best && j < b[0].n_params; j++) {
        cv__html_put(h, "<th>");
        cv__html_text(h, b[0].params[j].key);
        cv__html_put(h, "</th>");
    }
    cv__html_put(h, "<th>message</th></tr>\n");
    for (int i = 0; i < v->n_best; i++) {
        cv__html_put(h,
                     "<tr class=\"%s\" data-trial=\"%d\"><td>%d</td><td>%d</td><td>%s</td>"
                     "<td>%d</td><td class=\"value\">",
                     i == 0 && finished(&b[i]) ? "best" : "", b[i].trial, i + 1, b[i].trial,
                     cv_job_status_name(b[i].status), b[i].epochs);
        cv__html_num(h, b[i].value, "%.6g");
        cv__html_put(h, "</td><td>");
        cv__html_num(h, b[i].dev_loss, "%.4f");
        cv__html_put(h, "</td><td>");
        cv__html_num(h, b[i].dev_accuracy, "%.4f");
        cv__html_put(h, "</td><td>%.1f</td>", b[i].seconds);
        for (int j = 0; j < b[i].n_params; j++) {
            cv__html_put(h, "<td>");
            cv__html_text(h, b[i].params[j].value);
            cv__html_put(h, "</td>");
        }
        cv__html_put(h, "<td>");
        cv__html_text(h, b[i].message);
        cv__html_put(h, "</td></tr>\n");
    }
    cv__html_put(h, "</table>\n");
}

/* ---- plots ---- */

static void per_param(struct cv__html *h, const struct sweep_view *v, int idx)
{
    int np = v->best[0].n_params, n = v->n_finished;
    double *x = cv_calloc((size_t)n + 1, sizeof(double)),
           *y = cv_calloc((size_t)n + 1, sizeof(double));
    char id[64], title[CV_KEY_MAX + 96];
    for (int j = 0; x && y && j < np; j++) {
        const char *key = v->best[0].params[j].key;
        for (int i = 0; i < n; i++) {
            x[i] = value_of(v->best[i].params[j].value);
            y[i] = v->best[i].value;
        }
        struct cv__series s = {v->metric, x, y, n};
        snprintf(id, sizeof(id), "s%d-param-%d", idx, j);
        snprintf(title, sizeof(title), "%s against %s", v->metric, key);
        cv__svg_lines(h, id, title, key, v->metric, &s, 1,
                      CV_PLOT_POINTS_ONLY | (log_dim(v, key) ? CV_PLOT_LOG_X : 0));
    }
    free(x);
    free(y);
}

static void parallel(struct cv__html *h, const struct sweep_view *v, int idx)
{
    int na = v->best[0].n_params + 1, n = v->n_finished;
    if (na > 40)
        return;
    const char *names[40];
    bool log[40] = {false};
    double *rows = cv_calloc((size_t)n * (size_t)na + 1, sizeof(double));
    char id[64];
    if (!rows)
        return;
    for (int a = 0; a + 1 < na; a++) {
        names[a] = v->best[0].params[a].key;
        log[a] = log_dim(v, names[a]);
    }
    names[na - 1] = v->metric;
    for (int i = 0; i < n; i++) {
        for (int a = 0; a + 1 < na; a++)
            rows[(size_t)i * na + a] = value_of(v->best[i].params[a].value);
        rows[(size_t)i * na + na - 1] = v->best[i].value;
    }
    snprintf(id, sizeof(id), "s%d-parallel", idx);
    cv__svg_parallel(h, id, "Parallel coordinates (orange: high metric)", names, log, na, rows, n);
    free(rows);
}

/* Each trial's metric at each rung it reached (ASHA). */
static void rungs(struct cv__html *h, const struct sweep_view *v, int idx)
{
    int n = v->n_all, ns = 0;
    struct cv__series *s = cv_calloc((size_t)v->n_best + 1, sizeof(*s));
    double *x = cv_calloc((size_t)n + 1, sizeof(double)),
           *y = cv_calloc((size_t)n + 1, sizeof(double));
    char(*names)[32] = cv_calloc((size_t)v->n_best + 1, 32);
    char id[64];
    int used = 0;
    for (int t = 0; s && x && y && names && t < v->n_best; t++) {
        int first = used;
        for (int i = 0; i < n; i++)
            if (v->all[i].trial == v->best[t].trial && finished(&v->all[i])) {
                x[used] = v->all[i].epochs;
                y[used++] = v->all[i].value;
            }
        if (used == first)
            continue;
        snprintf(names[ns], 32, "trial %d", v->best[t].trial);
        s[ns] = (struct cv__series){names[ns], x + first, y + first, used - first};
        ns++;
    }
    snprintf(id, sizeof(id), "s%d-rungs", idx);
    if (ns > 0)
        cv__svg_lines(h, id,
                      "Each trial's metric at the epochs it reached (asha rungs, pbt generations)",
                      "epochs", v->metric, s, ns, 0);
    free(s);
    free(x);
    free(y);
    free(names);
}

static void put_values(struct cv__html *h, const struct cv_result *r)
{
    for (int j = 0; j < r->n_params; j++) {
        cv__html_put(h, "%s", j ? ", " : "");
        cv__html_text(h, r->params[j].key);
        cv__html_put(h, " = ");
        cv__html_text(h, r->params[j].value);
    }
}

/* pbt: every exploit step, then the best member's schedule of values. */
static void lineage(struct cv__html *h, const struct sweep_view *v, int idx)
{
    cv__html_put(h,
                 "<h3>Lineage</h3>\n<table class=\"lineage\" id=\"s%d-lineage\"><tr>"
                 "<th>after epoch</th><th>trial</th><th>copied</th><th>its value</th>"
                 "<th>copied value</th><th>new values</th></tr>\n",
                 idx);
    for (int i = 0; i < v->n_all; i++) {
        const struct cv_result *r = &v->all[i];
        if (r->status != CV_JOB_EXPLOIT)
            continue;
        cv__html_put(h, "<tr><td>%d</td><td>%d</td><td>%d</td><td>", r->epochs, r->trial,
                     r->parent);
        cv__html_num(h, r->value, "%.6g");
        cv__html_put(h, "</td><td>");
        cv__html_num(h, r->parent_value, "%.6g");
        cv__html_put(h, "</td><td>");
        put_values(h, r);
        cv__html_put(h, "</td></tr>\n");
    }
    cv__html_put(h, "</table>\n");
    int line[64], g = cv_results_pbt_ancestry(v->all, v->n_all, v->best[0].trial, line, 64);
    cv__html_put(h,
                 "<h3>Schedule of trial %d</h3>\n<table class=\"schedule\" id=\"s%d-schedule\">"
                 "<tr><th>generation</th><th>up to epoch</th><th>trained as</th><th>",
                 v->best[0].trial, idx);
    cv__html_text(h, v->metric);
    cv__html_put(h, "</th><th>values</th></tr>\n");
    for (int k = 0; k < g; k++) {
        const struct cv_result *r = &v->all[line[k]];
        cv__html_put(h, "<tr><td>%d</td><td>%d</td><td>trial %d</td><td>", k, r->epochs, r->trial);
        cv__html_num(h, r->value, "%.6g");
        cv__html_put(h, "</td><td>");
        put_values(h, r);
        cv__html_put(h, "</td></tr>\n");
    }
    cv__html_put(h, "</table>\n");
}

/* ---- the section ---- */

static void load_view(struct sweep_view *v, const char *dir, struct cv__html *h)
{
    char path[CV_PATH_MAX + 32];
    struct cv_error err;
    cv_error_clear(&err);
    snprintf(path, sizeof(path), "%s/config.yaml", dir);
    if (cv_config_load(path, NULL, 0, &v->cfg, &err) != CV_OK)
        cv__report_note(h, "no sweep config: %s", err.msg);
    v->metric = v->cfg ? v->cfg->sweep.metric : "value";
    v->minimize = v->cfg && v->cfg->sweep.minimize;
    snprintf(path, sizeof(path), "%s/results.jsonl", dir);
    cv_error_clear(&err);
    if (cv_results_read(path, &v->all, &v->n_all, &err) != CV_OK) {
        cv__report_note(h, "no results: %s", err.msg);
        return;
    }
    v->best = cv_calloc((size_t)v->n_all + 1, sizeof(*v->best));
    if (!v->best) {
        cv__report_note(h, "out of memory for %d results", v->n_all);
        return;
    }
    memcpy(v->best, v->all, (size_t)v->n_all * sizeof(*v->best));
    v->n_best = cv_results_best_per_trial(v->best, v->n_all, v->minimize);
    while (v->n_finished < v->n_best && finished(&v->best[v->n_finished]))
        v->n_finished++;
}

static void best_trial(struct cv__html *h, const struct sweep_view *v, int idx)
{
    char dir[CV_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", v->best[0].model);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    cv__html_put(h, "<h3>Best trial: %d (%s = %.6g)</h3>\n", v->best[0].trial, v->metric,
                 v->best[0].value);
    cv__report_run(h, dir, 1000 + idx);
}

void cv__report_sweep(struct cv__html *h, const char *dir, int idx)
{
    struct sweep_view v = {0};
    cv__html_put(h, "<section class=\"sweep\" id=\"sweep-%d\"><h2>Sweep <code>", idx);
    cv__html_text(h, dir);
    cv__html_put(h, "</code></h2>\n");
    load_view(&v, dir, h);
    if (v.best) {
        cv__html_put(h, "<p>%d trial(s) with results, %d finished; metric <b>", v.n_best,
                     v.n_finished);
        cv__html_text(h, v.metric);
        cv__html_put(h, "</b> (%s is better), strategy %s</p>\n", v.minimize ? "lower" : "higher",
                     v.cfg ? cv_strategy_name(v.cfg->sweep.strategy) : "unknown");
        results_table(h, &v, idx);
    }
    if (v.n_finished == 0)
        cv__report_note(h, "no trial has finished yet: nothing to plot");
    if (v.n_finished > 0) {
        cv__html_put(h, "<div class=\"plots\">");
        per_param(h, &v, idx);
        parallel(h, &v, idx);
        if (v.cfg &&
            (v.cfg->sweep.strategy == CV_STRATEGY_ASHA || v.cfg->sweep.strategy == CV_STRATEGY_PBT))
            rungs(h, &v, idx);
        cv__html_put(h, "</div>\n");
        if (v.cfg && v.cfg->sweep.strategy == CV_STRATEGY_PBT)
            lineage(h, &v, idx);
        best_trial(h, &v, idx);
    }
    free(v.all);
    free(v.best);
    cv_config_free(v.cfg);
    cv__html_put(h, "</section>\n");
}
