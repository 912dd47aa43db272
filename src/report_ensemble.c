/*
 * report_ensemble.c - the section of an ensemble: every member (members.txt)
 * and the mean of their probabilities evaluated on the first member's dev
 * split with the metrics of the task, the members' figures against the
 * ensemble's, and their agreement: the fraction of rows on which two
 * members predict the same class (classification tasks).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/checkpoint.h"
#include "caviar/evaluate.h"
#include "report_internal.h"
#include "util.h"

#define EVAL_BATCH  256
#define MAX_MEMBERS 64

struct ens {
    int n; /* members */
    char path[MAX_MEMBERS][CV_PATH_MAX];
    struct cv_config *cfg;       /* member 0's */
    cv_shard *shard;             /* its dev split */
    float *xbuf, *probs, *mean;  /* (batch, in), (rows, k), (rows, k) */
    int *pred;                   /* (n, rows) predicted classes */
    double fig[MAX_MEMBERS + 1]; /* members' headline figure, then the ensemble's */
    const char *fig_name;        /* its name */
    int k;                       /* outputs */
};

static cv_status read_members(const char *dir, struct ens *e, struct cv_error *err)
{
    char path[CV_PATH_MAX + 32], line[CV_PATH_MAX + 2];
    snprintf(path, sizeof(path), "%s/members.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return cv_fail(err, CV_IO, "cannot open %s (written when every member has finished)", path);
    while (e->n < MAX_MEMBERS && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            snprintf(e->path[e->n++], CV_PATH_MAX, "%.*s", CV_PATH_MAX - 1, line);
    }
    fclose(f);
    return e->n ? CV_OK : cv_fail(err, CV_FORMAT, "%s lists no member", path);
}

static double headline(const struct cv_metrics *mt, const char **name)
{
    if (mt->task == CV_TASK_REGRESSION)
        return *name = "R\xc2\xb2", mt->r2;
    if (mt->task == CV_TASK_MULTILABEL)
        return *name = "macro F1", mt->f1;
    return *name = "accuracy", mt->accuracy;
}

/* Member i predicts the rows; its metrics and its share of the mean. */
static cv_status score_member(struct ens *e, int i, cv_model *m, struct cv_error *err)
{
    struct cv_metrics mt;
    long long rows = cv_shard_rows(e->shard);
    const struct cv_dataset_info *d = cv_shard_info(e->shard);
    cv_status st = cv_eval_check_split(e->path[i], d, cv_model_inputs(m), cv_model_outputs(m),
                                       e->cfg->model.loss, err);
    if (st == CV_OK && cv_model_outputs(m) != e->k)
        st = cv_fail(err, CV_SHAPE, "%s has %d outputs, member 0 has %d", e->path[i],
                     cv_model_outputs(m), e->k);
    if (st == CV_OK)
        st = cv_metrics_init(&mt, e->cfg->model.loss, d->classes, e->k, err);
    if (st != CV_OK)
        return st;
    cv_predict_shard(m, e->shard, e->xbuf, e->probs);
    st = cv_metrics_add(&mt, e->probs, cv_shard_labels(e->shard), cv_shard_targets(e->shard), rows,
                        err);
    if (st == CV_OK)
        st = cv_metrics_finish(&mt, NULL, err);
    e->fig[i] = headline(&mt, &e->fig_name);
    cv_metrics_deinit(&mt);
    for (long long r = 0; r < rows; r++) {
        for (int j = 0; j < e->k; j++)
            e->mean[r * e->k + j] += e->probs[r * e->k + j] / (float)e->n;
        e->pred[(size_t)i * (size_t)rows + (size_t)r] = cv_predicted_class(e->probs + r * e->k,
                                                                           e->k);
    }
    return st;
}

static cv_status open_split(struct ens *e, struct cv_error *err)
{
    cv_model *m = NULL;
    cv_status st = cv_ckpt_open_model(e->path[0], EVAL_BATCH, &e->cfg, &m, err);
    const char *split = st == CV_OK && e->cfg->data.dev[0] ? e->cfg->data.dev : NULL;
    if (st == CV_OK)
        st = cv_shard_open(split ? split : e->cfg->data.train, 0, 1, EVAL_BATCH, &e->shard, err);
    if (st == CV_OK) {
        size_t rows = (size_t)cv_shard_rows(e->shard) + 1;
        e->k = cv_model_outputs(m);
        e->xbuf = cv_calloc((size_t)EVAL_BATCH * (size_t)cv_model_inputs(m), sizeof(float));
        e->probs = cv_calloc(rows * (size_t)e->k, sizeof(float));
        e->mean = cv_calloc(rows * (size_t)e->k, sizeof(float));
        e->pred = cv_calloc(rows * (size_t)e->n, sizeof(int));
        if (!e->xbuf || !e->probs || !e->mean || !e->pred)
            st = cv_fail(err, CV_NOMEM, "out of memory for %zu predictions", rows);
    }
    cv_model_free(m);
    return st;
}

static cv_status score_all(struct ens *e, struct cv_error *err)
{
    cv_status st = open_split(e, err);
    for (int i = 0; i < e->n && st == CV_OK; i++) {
        struct cv_config *cfg = NULL;
        cv_model *m = NULL;
        st = cv_ckpt_open_model(e->path[i], EVAL_BATCH, &cfg, &m, err);
        if (st == CV_OK)
            st = score_member(e, i, m, err);
        cv_model_free(m);
        cv_config_free(cfg);
    }
    struct cv_metrics mt;
    const struct cv_dataset_info *d = st == CV_OK ? cv_shard_info(e->shard) : NULL;
    if (st == CV_OK &&
        (st = cv_metrics_init(&mt, e->cfg->model.loss, d->classes, e->k, err)) == CV_OK) {
        st = cv_metrics_add(&mt, e->mean, cv_shard_labels(e->shard), cv_shard_targets(e->shard),
                            cv_shard_rows(e->shard), err);
        if (st == CV_OK)
            st = cv_metrics_finish(&mt, NULL, err);
        e->fig[e->n] = headline(&mt, &e->fig_name);
        cv_metrics_deinit(&mt);
    }
    return st;
}

static void agreement(struct cv__html *h, const struct ens *e, int idx)
{
    long long rows = cv_shard_rows(e->shard);
    double *cells = cv_calloc((size_t)e->n * (size_t)e->n, sizeof(double));
    char id[64];
    if (!cells || rows == 0) {
        free(cells);
        return;
    }
    for (int a = 0; a < e->n; a++)
        for (int b = 0; b < e->n; b++) {
            long long same = 0;
            for (long long r = 0; r < rows; r++)
                same += e->pred[(size_t)a * rows + r] == e->pred[(size_t)b * rows + r];
            cells[a * e->n + b] = (double)same / (double)rows;
        }
    snprintf(id, sizeof(id), "e%d-agreement", idx);
    cv__svg_heatmap(h, id, "Agreement: fraction of rows two members predict alike", cells, e->n,
                    NULL, "%.3f");
    free(cells);
}

static void members_vs_ensemble(struct cv__html *h, const struct ens *e, int idx)
{
    char labels[MAX_MEMBERS + 1][24], id[64], title[96];
    const char *lp[MAX_MEMBERS + 1];
    for (int i = 0; i <= e->n; i++) {
        snprintf(labels[i], sizeof(labels[i]), i < e->n ? "member %d" : "ensemble (mean)", i);
        lp[i] = labels[i];
    }
    snprintf(id, sizeof(id), "e%d-members", idx);
    snprintf(title, sizeof(title), "%s of each member and of the ensemble", e->fig_name);
    cv__svg_bars(h, id, title, lp, e->fig, e->n + 1, e->n);
}

void cv__report_ensemble(struct cv__html *h, const char *dir, int idx)
{
    struct ens *e = cv_calloc(1, sizeof(*e));
    struct cv_error err;
    cv_error_clear(&err);
    cv__html_put(h, "<section class=\"ensemble\" id=\"ensemble-%d\"><h2>Ensemble <code>", idx);
    cv__html_text(h, dir);
    cv__html_put(h, "</code></h2>\n");
    cv_status st = e ? read_members(dir, e, &err) : cv_fail(&err, CV_NOMEM, "out of memory");
    if (st == CV_OK)
        st = score_all(e, &err);
    if (st != CV_OK) {
        cv__report_note(h, "no evaluation of the members: %s", err.msg);
    } else {
        cv__html_put(h,
                     "<p>%d member(s) evaluated on %lld rows; the ensemble averages their "
                     "probabilities.</p><div class=\"plots\">",
                     e->n, cv_shard_rows(e->shard));
        members_vs_ensemble(h, e, idx);
        if (cv_shard_info(e->shard)->classes > 0)
            agreement(h, e, idx);
        cv__html_put(h, "</div>\n");
    }
    if (e) {
        cv_config_free(e->cfg);
        cv_shard_free(e->shard);
        free(e->xbuf);
        free(e->probs);
        free(e->mean);
        free(e->pred);
    }
    free(e);
    cv__html_put(h, "</section>\n");
}
