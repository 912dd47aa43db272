/*
 * train_epoch.c - the end of an epoch: dev evaluation, the task's figures,
 * the recipe's decisions (taken once, shared), the epoch line and
 * metrics.jsonl.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run_dir.h"
#include "train_internal.h"
#include "util.h"

static cv_status evaluate(struct trainer *tr, cv_shard *sh, double *loss, double *acc,
                          struct cv_error *err)
{
    struct cv_batch_stats stats = {0};
    long long n = cv_shard_rows(sh);
    cv_status st = CV_OK;
    cv_metrics_reset(&tr->dev_mt);
    for (long long first = 0; first < n && st == CV_OK; first += tr->local_batch) {
        struct cv_batch b;
        int cnt = (int)(n - first < tr->local_batch ? n - first : tr->local_batch);
        cv_shard_slice(sh, first, cnt, &b);
        cv_model_predict(tr->model, &b, tr->pred, &stats);
        st = cv_metrics_add(&tr->dev_mt, tr->pred, b.y_class, b.y_vec, cnt, err);
    }
    st = cv_comm_agree(tr->comm, st, err);
    if (st == CV_OK)
        st = cv_metrics_finish(&tr->dev_mt, tr->comm, err);
    double v[3] = {stats.loss_sum, (double)stats.correct, (double)stats.count};
    if (st == CV_OK)
        st = cv_comm_sum_doubles(tr->comm, v, 3, err);
    *loss = v[2] > 0 ? v[0] / v[2] : NAN;
    *acc = v[2] > 0 ? v[1] / v[2] : NAN;
    return st;
}

/* Global running sums of the epoch: this call's steps plus what a resumed
 * checkpoint carried (already global, so counted on rank 0 only). */
cv_status cv__train_epoch_sums(const struct trainer *tr, double v[3], struct cv_error *err)
{
    bool r0 = tr->rank == 0;
    v[0] = tr->epoch.loss_sum + (r0 ? tr->ts.epoch_loss_sum : 0);
    v[1] = (double)tr->epoch.correct + (r0 ? tr->ts.epoch_correct : 0);
    v[2] = (double)tr->epoch.count + (r0 ? tr->ts.epoch_count : 0);
    return cv_comm_sum_doubles(tr->comm, v, 3, err);
}

struct epoch_figures {
    double train_loss, train_acc, dev_loss, dev_acc, lr, sps, rss, rss_anon;
    double fig[CV_FIG_COUNT]; /* the task's figures on dev, NAN without one */
    struct timers t;          /* the step-time breakdown, mean over ranks */
};

/* A JSON number, or null for NaN/Inf (JSON has neither). */
static const char *jnum(char *buf, size_t n, double v)
{
    if (isfinite(v))
        snprintf(buf, n, "%.6g", v);
    else
        snprintf(buf, n, "null");
    return buf;
}

static enum cv_task task_of(const struct trainer *tr)
{
    return cv_metrics_task(tr->cfg->model.loss, cv_shard_info(tr->train)->classes,
                           cv_model_outputs(tr->model));
}

/* The task's dev figures ("dev_mae":...) into the JSON line before its
 * closing brace; figures the task does not have are left out. */
static void add_figures(char *line, size_t size, const double *fig)
{
    size_t len = strlen(line) - 1; /* at the closing brace */
    for (int i = 0; i < CV_FIG_COUNT && len < size; i++)
        if (i != CV_FIG_F1 && isfinite(fig[i])) /* dev_f1 has its own column */
            len += (size_t)snprintf(line + len, size - len, ",\"dev_%s\":%.6g", cv_figure_name(i),
                                    fig[i]);
    if (len + 2 <= size)
        snprintf(line + len, size - len, "}");
}

/* The epoch line's view of dev: accuracy for classes, the task's figures
 * for multi-label and regression (which have no accuracy). */
static const char *dev_text(const struct trainer *tr, const struct epoch_figures *e, char *buf,
                            size_t n)
{
    enum cv_task t = task_of(tr);
    if (t == CV_TASK_REGRESSION)
        snprintf(buf, n, "MAE %.4g RMSE %.4g R2 %.4f", e->fig[CV_FIG_MAE], e->fig[CV_FIG_RMSE],
                 e->fig[CV_FIG_R2]);
    else if (t == CV_TASK_MULTILABEL)
        snprintf(buf, n, "micro-F1 %.4f macro-F1 %.4f subset acc %.4f", e->fig[CV_FIG_MICRO_F1],
                 e->fig[CV_FIG_F1], e->fig[CV_FIG_SUBSET]);
    else
        snprintf(buf, n, "acc %.4f", e->dev_acc);
    return buf;
}

static cv_status log_epoch(struct trainer *tr, const char *event, const struct epoch_figures *e,
                           struct cv_error *err)
{
    char line[1024], a[32], b[32], c[32], d[32], f[32];
    double el = cv_now() - tr->t_start;
    snprintf(line, sizeof(line),
             "{\"event\":\"%s\",\"epoch\":%lld,\"step\":%lld,\"train_loss\":%s,"
             "\"train_accuracy\":%s,\"dev_loss\":%s,\"dev_accuracy\":%s,\"dev_f1\":%s,"
             "\"lr\":%.6g,\"best_epoch\":%lld,"
             "\"samples_per_s\":%.1f,\"elapsed_s\":%.3f,\"ranks\":%d,\"threads\":%d,"
             "\"time_s\":{\"data\":%.4f,\"forward\":%.4f,\"backward\":%.4f,"
             "\"allreduce_exposed\":%.4f,\"optimizer\":%.4f},\"peak_rss_mb\":%.1f,"
             "\"anon_rss_mb\":%.1f,\"n_params\":%zu}",
             event, tr->ts.epoch + 1, tr->ts.step, jnum(a, 32, e->train_loss),
             jnum(b, 32, e->train_acc), jnum(c, 32, e->dev_loss), jnum(d, 32, e->dev_acc),
             jnum(f, 32, e->fig[CV_FIG_F1]), e->lr, tr->ts.recipe.best_epoch, e->sps, el, tr->world,
             cv_num_threads(), e->t.data, e->t.forward, e->t.backward, e->t.comm, e->t.optim,
             e->rss, e->rss_anon, cv_model_n_params(tr->model));
    add_figures(line, sizeof(line), e->fig);
    cv_status st = cv__history_append(&tr->ts.metrics, line, err);
    if (st == CV_OK && tr->rank == 0)
        st = cv__run_dir_write_metrics(tr->run_dir, tr->ts.metrics, err);
    return cv_comm_agree(tr->comm, st, err); /* rank 0 alone may meet a full disk */
}

/* The learning rate of global step `step` of the current epoch. */
double cv__train_step_lr(const struct trainer *tr, long long step)
{
    long long n_rows = cv_shard_info(tr->train)->n_rows;
    long long per_epoch = cv_sched_steps(n_rows, tr->cfg->train.batch, tr->world);
    return cv__recipe_lr(tr->cfg, &tr->ts.recipe, (int)tr->ts.epoch) *
           cv_optim_warmup(tr->cfg, step, per_epoch) * tr->lr_scale;
}

/* Collective: the epoch-end decisions (best epoch, plateau, early stop),
 * taken once on rank 0 and broadcast so every replica follows them. */
static cv_status decide(struct trainer *tr, const struct cv_epoch_metrics *em, struct cv_error *err)
{
    struct {
        struct cv_recipe_state s;
        struct cv_recipe_step d;
    } msg = {tr->ts.recipe, {0}};
    if (tr->rank == 0)
        cv__recipe_update(tr->cfg, &msg.s, em, tr->ts.epoch + 1, &msg.d);
    cv_status st = cv_comm_bcast(tr->comm, &msg, sizeof(msg), 0, err);
    if (st != CV_OK)
        return st;
    tr->ts.recipe = msg.s;
    tr->decided = msg.d;
    if (msg.d.reduced)
        cv__train_say(tr, "plateau: learning rate lowered to %.6g\n", msg.s.lr);
    return CV_OK;
}

cv_status cv__train_finish_epoch(struct trainer *tr, const char *event, struct cv_train_result *res,
                                 struct cv_error *err)
{
    struct epoch_figures e = {.dev_loss = NAN, .dev_acc = NAN};
    char dev[96];
    for (int i = 0; i < CV_FIG_COUNT; i++)
        e.fig[i] = NAN;
    double v[3];
    cv_status st = cv__train_epoch_sums(tr, v, err);
    double rss[2] = {cv_peak_rss_mb(), cv_anon_rss_mb()};
    /* ranks wait for each other in different places: report the mean */
    double t[5] = {tr->t.data, tr->t.forward, tr->t.backward, tr->t.comm, tr->t.optim};
    if (st == CV_OK)
        st = cv_comm_max_doubles(tr->comm, rss, 2, err);
    if (st == CV_OK)
        st = cv_comm_sum_doubles(tr->comm, t, 5, err);
    e.t = (struct timers){t[0] / tr->world, t[1] / tr->world, t[2] / tr->world, t[3] / tr->world,
                          t[4] / tr->world};
    if (st == CV_OK && tr->dev)
        st = evaluate(tr, tr->dev, &e.dev_loss, &e.dev_acc, err);
    for (int i = 0; st == CV_OK && tr->dev && i < CV_FIG_COUNT; i++)
        e.fig[i] = cv_metrics_figure(&tr->dev_mt, i);
    e.train_loss = v[2] > 0 ? v[0] / v[2] : NAN;
    e.train_acc = v[2] > 0 ? v[1] / v[2] : NAN;
    char tacc[32] = ""; /* float targets have no accuracy */
    enum cv_task task = task_of(tr);
    if (task == CV_TASK_CLASSIFICATION || task == CV_TASK_BINARY)
        snprintf(tacc, sizeof(tacc), " acc %.4f", e.train_acc);
    else
        e.train_acc = e.dev_acc = NAN; /* float targets: no accuracy (null in metrics.jsonl) */
    e.lr = cv__train_step_lr(tr, tr->ts.step - 1); /* the rate of the epoch's last step */
    struct cv_epoch_metrics em = {e.train_loss, e.train_acc, e.dev_loss, e.dev_acc,
                                  e.fig[CV_FIG_F1]};
    if (st == CV_OK)
        st = decide(tr, &em, err);
    if (st != CV_OK)
        return st;
    e.sps = tr->train_time > 0 ? (double)tr->samples / tr->train_time : 0;
    e.rss = rss[0];
    e.rss_anon = rss[1];
    cv__progress_clear(&tr->prog);
    cv__train_say(
        tr,
        "epoch %lld/%d  step %lld  train loss %.4f%s | dev loss %.4f %s | %.0f samples/s | "
        "%.1f s\n",
        tr->ts.epoch + 1, tr->cfg->train.epochs, tr->ts.step, e.train_loss, tacc, e.dev_loss,
        dev_text(tr, &e, dev, sizeof(dev)), e.sps, cv_now() - tr->t_start);
    tr->ts.last[0] = e.train_loss;
    tr->ts.last[1] = e.train_acc;
    tr->ts.last[2] = e.dev_loss;
    tr->ts.last[3] = e.dev_acc;
    *res = (struct cv_train_result){.train_loss = e.train_loss,
                                    .train_accuracy = e.train_acc,
                                    .dev_loss = e.dev_loss,
                                    .dev_accuracy = e.dev_acc,
                                    .epochs_done = (int)tr->ts.epoch + 1,
                                    .steps = tr->ts.step,
                                    .samples_per_s = e.sps};
    memcpy(res->dev_fig, e.fig, sizeof(e.fig));
    return log_epoch(tr, event, &e, err);
}
