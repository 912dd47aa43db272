/*
 * report_run.c - the section of a training run: loss, accuracy, learning
 * rate and samples/s per epoch (metrics.jsonl), the evaluation of model.h5
 * on the run's dev split (train split without one) with the metrics of its
 * task (caviar/evaluate.h: the confusion matrix as a heat map with class
 * names, per-class or per-label table, regression figures), and the config.
 * Whatever is missing (a run killed before its first epoch, data moved
 * away) is said on the page; the rest is still shown.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/checkpoint.h"
#include "caviar/evaluate.h"
#include "report_internal.h"
#include "util.h"

/* Evaluate RUN_DIR/model.h5 on its dev split, in this process alone. */
static cv_status score_run(const char *dir, struct cv_scored *s, struct cv_metrics *mt,
                           struct cv_error *err)
{
    char path[CV_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/model.h5", dir);
    cv_status st = cv_scored_open(path, NULL, 0, 1, s, err);
    if (st == CV_OK)
        st = cv_scored_metrics(s, mt, err);
    return st == CV_OK ? cv_metrics_finish(mt, NULL, err) : st;
}

/* ---- curves ---- */

static bool any(const double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            return true;
    return false;
}

static void curves(struct cv__html *h, const struct cv__history *hi, int idx)
{
    char id[64];
    struct cv__series loss[2] = {{"train loss", hi->epoch, hi->col[CV_H_TRAIN_LOSS], hi->n},
                                 {"dev loss", hi->epoch, hi->col[CV_H_DEV_LOSS], hi->n}};
    struct cv__series acc[2] = {{"train accuracy", hi->epoch, hi->col[CV_H_TRAIN_ACC], hi->n},
                                {"dev accuracy", hi->epoch, hi->col[CV_H_DEV_ACC], hi->n}};
    struct cv__series lr = {"learning rate", hi->epoch, hi->col[CV_H_LR], hi->n};
    struct cv__series sps = {"samples/s", hi->epoch, hi->col[CV_H_SPS], hi->n};
    cv__html_put(h, "<div class=\"plots\">");
    snprintf(id, sizeof(id), "r%d-loss", idx);
    cv__svg_lines(h, id, "Loss", "epoch", "loss", loss, any(loss[1].y, hi->n) ? 2 : 1, 0);
    if (any(acc[0].y, hi->n)) {
        snprintf(id, sizeof(id), "r%d-accuracy", idx);
        cv__svg_lines(h, id, "Accuracy", "epoch", "accuracy", acc, any(acc[1].y, hi->n) ? 2 : 1, 0);
    }
    snprintf(id, sizeof(id), "r%d-lr", idx);
    cv__svg_lines(h, id, "Learning rate", "epoch", "lr", &lr, 1, 0);
    snprintf(id, sizeof(id), "r%d-sps", idx);
    cv__svg_lines(h, id, "Throughput", "epoch", "samples/s", &sps, 1, 0);
    cv__html_put(h, "</div>\n");
}

static void epoch_table(struct cv__html *h, const struct cv__history *hi, int idx)
{
    static const char *const head[] = {"train loss", "train acc", "dev loss",
                                       "dev acc",    "lr",        "samples/s"};
    cv__html_put(h,
                 "<details><summary>Per-epoch figures</summary><table class=\"epochs\" "
                 "id=\"r%d-epochs\"><tr><th>epoch</th>",
                 idx);
    for (int k = 0; k < CV_H_N; k++)
        cv__html_put(h, "<th>%s</th>", head[k]);
    cv__html_put(h, "</tr>\n");
    for (int i = 0; i < hi->n; i++) {
        cv__html_put(h, "<tr><td>%.0f</td>", hi->epoch[i]);
        for (int k = 0; k < CV_H_N; k++) {
            cv__html_put(h, "<td>");
            cv__html_num(h, hi->col[k][i], k == CV_H_SPS ? "%.0f" : "%.6g");
            cv__html_put(h, "</td>");
        }
        cv__html_put(h, "</tr>\n");
    }
    cv__html_put(h, "</table></details>\n");
}

/* ---- evaluation ---- */

static void figure(struct cv__html *h, const char *name, double v)
{
    if (isnan(v))
        return;
    cv__html_put(h, "<div class=\"kpi\"><span>%s</span><b>", name);
    cv__html_num(h, v, "%.4f");
    cv__html_put(h, "</b></div>");
}

static void prf_table(struct cv__html *h, const struct cv_metrics *mt, const char *what,
                      const double *t, int n, int idx)
{
    cv__html_put(h,
                 "<table class=\"prf\" id=\"r%d-prf\"><tr><th>%s</th><th>precision</th>"
                 "<th>recall</th><th>F1</th><th>support</th></tr>\n",
                 idx, what);
    for (int i = 0; i < n; i++) {
        const double *r = t + 4 * (size_t)i;
        cv__html_put(h, "<tr><td>");
        if (mt->names && t == mt->per_class)
            cv__html_text(h, mt->names[i]);
        else
            cv__html_put(h, "%d", i);
        cv__html_put(h, "</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.0f</td></tr>\n", r[0],
                     r[1], r[2], r[3]);
    }
    cv__html_put(h, "</table>\n");
}

static void confusion(struct cv__html *h, const struct cv_metrics *mt, int idx)
{
    size_t c = (size_t)mt->classes;
    double *cells = cv_calloc(c * c, sizeof(double));
    char id[64];
    if (!cells) {
        cv__report_note(h, "out of memory for the confusion matrix");
        return;
    }
    for (size_t i = 0; i < c * c; i++)
        cells[i] = (double)mt->confusion[i];
    snprintf(id, sizeof(id), "r%d-confusion", idx);
    cv__svg_heatmap(h, id, "Confusion (rows: true class, columns: predicted)", cells, (int)c,
                    mt->names, "%.0f");
    free(cells);
}

static void evaluation(struct cv__html *h, const struct cv_scored *s, const struct cv_metrics *mt,
                       int idx)
{
    cv__html_put(h, "<h3>Evaluation of model.h5 on <code>");
    cv__html_text(h, s->split);
    cv__html_put(h, "</code> (%s, %lld rows)</h3><div class=\"kpis\" id=\"r%d-kpis\">",
                 cv_task_name(mt->task), mt->count, idx);
    figure(h, "loss", mt->loss);
    figure(h, "accuracy", mt->accuracy);
    figure(h, "macro F1", mt->f1);
    figure(h, "top-5 accuracy", mt->top_k);
    figure(h, "ROC AUC", mt->task == CV_TASK_BINARY ? mt->roc_auc : NAN);
    figure(h, "micro F1", mt->micro_f1);
    figure(h, "Hamming loss", mt->hamming);
    figure(h, "subset accuracy", mt->subset_accuracy);
    figure(h, "MAE", mt->mae);
    figure(h, "RMSE", mt->rmse);
    figure(h, "R\xc2\xb2", mt->r2);
    cv__html_put(h, "</div>\n<div class=\"plots\">");
    if (mt->task == CV_TASK_CLASSIFICATION || mt->task == CV_TASK_BINARY) {
        confusion(h, mt, idx);
        prf_table(h, mt, "class", mt->per_class, mt->classes, idx);
    } else if (mt->task == CV_TASK_MULTILABEL) {
        prf_table(h, mt, "label", mt->per_col, mt->outputs, idx);
    }
    cv__html_put(h, "</div>\n");
}

void cv__report_run(struct cv__html *h, const char *dir, int idx)
{
    struct cv__history hi;
    struct cv_error err;
    cv_error_clear(&err);
    cv__html_put(h, "<section class=\"run\" id=\"run-%d\"><h2>Training run <code>", idx);
    cv__html_text(h, dir);
    cv__html_put(h, "</code></h2>\n");
    if (cv__history_read(dir, &hi, &err) != CV_OK) {
        cv__report_note(h, "no curves: %s", err.msg);
    } else {
        if (hi.skipped)
            cv__report_note(h, "%s", hi.note);
        if (hi.n == 0)
            cv__report_note(h, "no epoch has finished yet");
        else
            curves(h, &hi, idx), epoch_table(h, &hi, idx);
    }
    cv__history_free(&hi);
    struct cv_scored s = {0};
    struct cv_metrics mt = {0};
    cv_error_clear(&err);
    if (score_run(dir, &s, &mt, &err) != CV_OK)
        cv__report_note(h, "no evaluation: %s", err.msg);
    else
        evaluation(h, &s, &mt, idx);
    if (s.cfg) {
        cv__html_put(h, "<details><summary>Config</summary><pre class=\"config\">");
        cv__html_text(h, s.cfg->text);
        cv__html_put(h, "</pre></details>\n");
    }
    cv_metrics_deinit(&mt);
    cv_scored_close(&s);
    cv__html_put(h, "</section>\n");
}

/* ---- several runs ---- */

static void overlay(struct cv__html *h, const struct cv__history *hi, const char *const *labels,
                    int n, int col, const char *title, const char *id)
{
    struct cv__series s[16];
    int ns = 0;
    for (int i = 0; i < n && ns < 16; i++)
        if (any(hi[i].col[col], hi[i].n))
            s[ns++] = (struct cv__series){labels[i], hi[i].epoch, hi[i].col[col], hi[i].n};
    if (ns > 0)
        cv__svg_lines(h, id, title, "epoch", title, s, ns, 0);
}

void cv__report_compare(struct cv__html *h, const char *const *runs, const char *const *labels,
                        int n)
{
    struct cv__history *hi = cv_calloc((size_t)n, sizeof(*hi));
    if (!hi) {
        cv__report_note(h, "out of memory comparing %d runs", n);
        return;
    }
    cv__html_put(h,
                 "<section class=\"compare\" id=\"compare\"><h2>%d runs compared</h2>"
                 "<p>A sweep is represented by its best trial.</p><div class=\"plots\">",
                 n);
    for (int i = 0; i < n; i++)
        if (cv__history_read(runs[i], &hi[i], NULL) != CV_OK)
            cv__report_note(h, "%s: no metrics.jsonl", labels[i]);
    overlay(h, hi, labels, n, CV_H_DEV_ACC, "dev accuracy", "cmp-dev-accuracy");
    overlay(h, hi, labels, n, CV_H_DEV_LOSS, "dev loss", "cmp-dev-loss");
    overlay(h, hi, labels, n, CV_H_TRAIN_LOSS, "train loss", "cmp-train-loss");
    cv__html_put(h, "</div></section>\n");
    for (int i = 0; i < n; i++)
        cv__history_free(&hi[i]);
    free(hi);
}
