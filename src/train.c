/*
 * train.c - the data-parallel training loop (see caviar/train.h).
 *
 *   set-up (every failure agreed across ranks before the next collective)
 *     -> per epoch: shuffle shard -> per step: gather batch -> forward/loss/
 *        backward -> the gradient exchange (src/reducer.h: this rank's owned
 *        slice summed) -> small allreduce of {stop flag, non-finite flag,
 *        batch-norm state} -> optimizer step on the owned slice -> share
 *     -> dev evaluation, metric line, model.h5, checkpoints (src/run_dir.h).
 * Resume restores parameters, optimizer moments, step/epoch/position and the
 * epoch's running sums; data order and dropout masks are keyed by
 * (seed, epoch/step, row), so a resumed run replays exactly.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/checkpoint.h"
#include "caviar/evaluate.h"
#include "caviar/optim.h"
#include "caviar/shard.h"
#include "caviar/train.h"
#include "progress.h"
#include "recipe.h"
#include "reducer.h"
#include "run_dir.h"
#include "transfer.h"
#include "util.h"

struct timers {
    double data, forward, backward, comm, optim;
};

struct trainer {
    const struct cv_config *cfg;
    const cv_comm *comm;
    const struct cv_train_opts *opts;
    int rank, world, local_batch;
    cv_model *model;
    cv_optim *optim;
    cv_reducer *reducer; /* the gradient exchange (src/reducer.h) */
    cv_shard *train, *dev;
    struct cv_metrics dev_mt;      /* the task's figures on dev (caviar/evaluate.h) */
    float *pred;                   /* (local_batch, outputs) evaluation output */
    double *small;                 /* (2 + n_state) the per-step tiny allreduce */
    struct cv_recipe_step decided; /* the last epoch's recipe decisions */
    bool loaded[CV_MAX_LAYERS];    /* layers model.init_from loaded */
    struct cv_error norm_err;      /* a failed global-norm sum inside the optimizer */
    struct cv_train_state ts;
    struct cv_batch_stats epoch; /* this rank's running sums of the epoch */
    struct timers t;
    double t_start, train_time; /* seconds in training steps this call */
    long long samples;          /* global samples trained this call */
    long long samples_epoch0;   /* tr->samples when this epoch's steps began */
    struct cv_progress prog;    /* rank 0's progress line (src/progress.h) */
    FILE *log;                  /* quiet runs (sweep trials): RUN_DIR/train.log on rank 0 */
    char run_dir[CV_PATH_MAX];
    int lock_fd; /* rank 0: the run directory's lock, or -1 */
};

/* ---- small helpers ---- */

static void say(const struct trainer *tr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct trainer *tr, const char *fmt, ...)
{
    FILE *f = tr->opts->quiet ? tr->log : stdout;
    if (tr->rank != 0 || !f)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (tr->opts->tag)
        fprintf(f, "[%s] ", tr->opts->tag);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fflush(f);
}

/* ---- set-up ---- */

/* Rank 0 owns the run directory (its lock) until cv_train_run returns. */
static cv_status make_run_dir(struct trainer *tr, struct cv_error *err)
{
    cv_status st = CV_OK;
    bool resume = tr->opts->resume_dir || tr->cfg->run.resume == CV_RESUME_AUTO;
    enum cv_run_mode mode = resume                ? CV_RUN_CONTINUE
                            : tr->opts->overwrite ? CV_RUN_OVERWRITE
                                                  : CV_RUN_FRESH;
    snprintf(tr->run_dir, sizeof(tr->run_dir), "%s", tr->cfg->run.dir);
    if (tr->rank == 0)
        st = cv__run_dir_make(tr->run_dir, mode, &tr->lock_fd, err);
    return cv_comm_agree(tr->comm, st, err);
}

static cv_status check_targets(const struct trainer *tr, const struct cv_dataset_info *d,
                               const char *spec, struct cv_error *err)
{
    return cv_eval_check_split(spec, d, cv_model_inputs(tr->model), cv_model_outputs(tr->model),
                               tr->cfg->model.loss, err);
}

static cv_status open_data(struct trainer *tr, struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    cv_status st = cv_shard_open(cfg->data.train, tr->rank, tr->world, tr->local_batch, &tr->train,
                                 err);
    if (st == CV_OK)
        st = check_targets(tr, cv_shard_info(tr->train), cfg->data.train, err);
    if (st == CV_OK && cfg->data.dev[0])
        st = cv_shard_open(cfg->data.dev, tr->rank, tr->world, tr->local_batch, &tr->dev, err);
    if (st == CV_OK && tr->dev)
        st = check_targets(tr, cv_shard_info(tr->dev), cfg->data.dev, err);
    if (st == CV_OK && tr->dev)
        st = cv_metrics_init(&tr->dev_mt, cfg->model.loss, cv_shard_info(tr->dev)->classes,
                             cv_model_outputs(tr->model), err);
    /* data.test is only recorded, but a run should not end with a model
     * whose named test split cannot be read or scored */
    if (st == CV_OK && cfg->data.test[0])
        st = cv_eval_probe_split(cfg->data.test, cv_model_inputs(tr->model),
                                 cv_model_outputs(tr->model), cfg->model.loss, err);
    return cv_comm_agree(tr->comm, st, err);
}

/* Global mean / std per feature from per-rank sums (course: normalise with
 * the training set's statistics, stored with the model for eval). */
static cv_status compute_norm(struct trainer *tr, struct cv_error *err)
{
    int f = cv_model_inputs(tr->model);
    double *s = cv_calloc(2 * (size_t)f + 1, sizeof(double));
    float *mean = cv_calloc((size_t)f, sizeof(float)), *sd = cv_calloc((size_t)f, sizeof(float));
    cv_status st = (!s || !mean || !sd) ? cv_fail(err, CV_NOMEM, "out of memory") : CV_OK;
    st = cv_comm_agree(tr->comm, st, err);
    if (st == CV_OK) {
        cv_shard_feature_sums(tr->train, s, s + f);
        s[2 * f] = (double)cv_shard_rows(tr->train);
        st = cv_comm_sum_doubles(tr->comm, s, 2 * f + 1, err);
    }
    for (int j = 0; st == CV_OK && j < f; j++) {
        double n = s[2 * f] > 0 ? s[2 * f] : 1, mu = s[j] / n;
        double var = s[f + j] / n - mu * mu;
        mean[j] = (float)mu;
        sd[j] = var > 1e-12 ? (float)sqrt(var) : 1.0f; /* constant feature: leave it centred */
    }
    if (st == CV_OK)
        st = cv_model_set_norm(tr->model, mean, sd, err);
    free(s);
    free(mean);
    free(sd);
    return st;
}

static cv_status build(struct trainer *tr, struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    if (cfg->train.batch < tr->world)
        return cv_fail(err, CV_CONFIG,
                       "train.batch = %d is smaller than the number of ranks (%d): every rank "
                       "needs at least one sample per global batch",
                       cfg->train.batch, tr->world);
    bool augment = cfg->data.augment_flip || cfg->data.augment_shift > 0;
    if (augment && (cfg->model.input[1] < 2 || cfg->model.input[2] < 2))
        return cv_fail(err, CV_CONFIG,
                       "data.augment needs image inputs: model.input = [C, H, W], got [%d, %d, %d]",
                       cfg->model.input[0], cfg->model.input[1], cfg->model.input[2]);
    tr->local_batch = cv_sched_local_batch(cfg->train.batch, 0, tr->world); /* the largest */
    cv_status st = cv_model_create(cfg, tr->local_batch, &tr->model, err);
    if (st == CV_OK)
        st = cv_optim_create(cfg, tr->model, &tr->optim, err);
    if (st == CV_OK) {
        tr->pred = cv_calloc((size_t)tr->local_batch * (size_t)cv_model_outputs(tr->model),
                             sizeof(float));
        tr->small = cv_calloc(2 + cv_model_n_state(tr->model), sizeof(double));
        if (!tr->pred || !tr->small)
            st = cv_fail(err, CV_NOMEM, "out of memory");
    }
    return st;
}

/* ---- evaluation and metrics ---- */

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
static cv_status epoch_sums(const struct trainer *tr, double v[3], struct cv_error *err)
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
static double step_lr(const struct trainer *tr, long long step)
{
    long long n_rows = cv_shard_info(tr->train)->n_rows;
    long long per_epoch = cv_sched_steps(n_rows, tr->cfg->train.batch, tr->world);
    return cv__recipe_lr(tr->cfg, &tr->ts.recipe, (int)tr->ts.epoch) *
           cv_optim_warmup(tr->cfg, step, per_epoch);
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
        say(tr, "plateau: learning rate lowered to %.6g\n", msg.s.lr);
    return CV_OK;
}

static cv_status finish_epoch(struct trainer *tr, const char *event, struct cv_train_result *res,
                              struct cv_error *err)
{
    struct epoch_figures e = {.dev_loss = NAN, .dev_acc = NAN};
    char dev[96];
    for (int i = 0; i < CV_FIG_COUNT; i++)
        e.fig[i] = NAN;
    double v[3];
    cv_status st = epoch_sums(tr, v, err);
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
        e.train_acc = e.dev_acc = NAN;   /* float targets: no accuracy (null in metrics.jsonl) */
    e.lr = step_lr(tr, tr->ts.step - 1); /* the rate of the epoch's last step */
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
    say(tr,
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

/* ---- checkpoints ---- */

/* Collective.  On failure nothing was written under a checkpoint name and
 * the older checkpoints are untouched; the error (a full disk, ...) ends
 * the run: exit 1, not "resume me".  `verify`: read the file back and check
 * every checksum before counting it as written. */
static cv_status save_checkpoint(struct trainer *tr, bool verify, struct cv_error *err)
{
    double v[3];
    cv_status st = epoch_sums(tr, v, err);
    if (st != CV_OK)
        return st;
    struct cv_train_state ts = tr->ts;
    ts.epoch_loss_sum = v[0];
    ts.epoch_correct = v[1];
    ts.epoch_count = v[2];
    /* a sharded optimizer keeps each moment slice on its owner only */
    float *m1 = cv_optim_m1(tr->optim), *m2 = cv_optim_m2(tr->optim);
    if (m1 && (st = cv_reducer_share(tr->reducer, m1, err)) != CV_OK)
        return st;
    if (m2 && (st = cv_reducer_share(tr->reducer, m2, err)) != CV_OK)
        return st;
    if (tr->rank == 0) {
        char path[CV_PATH_MAX + 64];
        cv__run_dir_ckpt_path(tr->run_dir, ts.step, path, sizeof(path));
        st = cv_ckpt_save(path, tr->model, tr->optim, &ts, err);
        if (st == CV_OK && verify && (st = cv_ckpt_verify(path, err)) != CV_OK)
            unlink(path); /* never leave a damaged checkpoint in place */
        if (st == CV_OK)
            cv__run_dir_prune(tr->run_dir, tr->cfg->checkpoint.keep);
    }
    return cv_comm_agree(tr->comm, st, err);
}

/* model.h5 is the model to ship: the last epoch's, or with train.monitor the
 * best epoch's (then last.h5 holds the last epoch's). */
static cv_status save_model(struct trainer *tr, struct cv_error *err)
{
    cv_status st = CV_OK;
    const struct cv_config *cfg = tr->cfg;
    bool monitored = cfg->train.monitor != CV_MON_NONE;
    if (tr->rank == 0) {
        char path[CV_PATH_MAX + 16];
        cv__run_dir_path(tr->run_dir, monitored ? "last.h5" : "model.h5", path, sizeof(path));
        st = cv_ckpt_save(path, tr->model, NULL, NULL, err);
    }
    if (tr->rank == 0 && st == CV_OK && monitored && tr->decided.improved) {
        char path[CV_PATH_MAX + 16], name[32];
        snprintf(name, sizeof(name), "%s", cv_monitor_name(cfg->train.monitor));
        struct cv_ckpt_best b = {tr->ts.recipe.best_epoch, name, tr->ts.recipe.best};
        cv__run_dir_path(tr->run_dir, "model.h5", path, sizeof(path));
        st = cv_ckpt_save_best(path, tr->model, &b, err);
    }
    return cv_comm_agree(tr->comm, st, err);
}

static void note_rank0(void *arg, const char *line)
{
    say(arg, "%s\n", line);
}

static cv_status load_resume(struct trainer *tr, const char *path, struct cv_error *err)
{
    struct cv_config *old = NULL;
    char why[128];
    cv_status st = cv_ckpt_read_config(path, NULL, 0, &old, err);
    const char *d = st == CV_OK ? cv_config_arch_diff(old, tr->cfg, why, sizeof(why)) : NULL;
    cv_config_free(old);
    if (d)
        return cv_fail(err, CV_CONFIG, "cannot resume from %s: architecture differs (%s)", path, d);
    if (st == CV_OK)
        st = cv_ckpt_load(path, tr->model, tr->optim, &tr->ts, err);
    const struct cv_dataset_info *info = cv_shard_info(tr->train);
    if (st == CV_OK && (tr->ts.data_rows != info->n_rows || tr->ts.data_features != info->features))
        st = cv_fail(err, CV_CONFIG,
                     "cannot resume from %s: it was trained on %lld x %d rows of %s, data.train "
                     "= %s has %lld x %d",
                     path, tr->ts.data_rows, tr->ts.data_features, tr->ts.data_path,
                     tr->cfg->data.train, info->n_rows, info->features);
    return st;
}

/* Collective: resume from the newest valid checkpoint.  *found is false
 * (and CV_OK) when none exists and `required` is false. */
static cv_status resume(struct trainer *tr, const char *dir, bool required, bool *found,
                        struct cv_error *err)
{
    char path[CV_PATH_MAX + 64] = "";
    struct cv_error quiet;
    cv_error_clear(&quiet);
    cv_status st = CV_OK;
    if (tr->rank == 0)
        st = cv_train_find_checkpoint(dir, path, sizeof(path), note_rank0, tr,
                                      required ? err : &quiet);
    if (!required && st != CV_OK && tr->rank == 0)
        st = CV_OK, path[0] = '\0';
    st = cv_comm_agree(tr->comm, st, err);
    if (st == CV_OK)
        st = cv_comm_bcast(tr->comm, path, sizeof(path), 0, err);
    *found = st == CV_OK && path[0];
    if (!*found)
        return st;
    st = cv_comm_agree(tr->comm, load_resume(tr, path, err), err);
    if (st != CV_OK)
        return st;
    if (tr->ts.epoch >= tr->cfg->train.epochs)
        say(tr, "resuming from %s: the run is complete (%lld epochs); nothing to train\n", path,
            tr->ts.epoch);
    else
        say(tr, "resuming from %s: epoch %lld, step %lld of it (global step %lld)%s\n", path,
            tr->ts.epoch + 1, tr->ts.epoch_step, tr->ts.step,
            tr->ts.world_size != tr->world ? " (elastic: world size changed, data order differs)"
                                           : "");
    st = tr->rank == 0 ? cv__run_dir_write_metrics(tr->run_dir, tr->ts.metrics, err) : CV_OK;
    return cv_comm_agree(tr->comm, st, err);
}

/* ---- the step loop ---- */

static cv_status diverged(const struct trainer *tr, const char *what, struct cv_error *err)
{
    return cv_fail(err, CV_NONFINITE,
                   "training diverged: %s at epoch %lld, step %lld of the epoch (global step "
                   "%lld); the last good model is kept in %s/model.h5",
                   what, tr->ts.epoch + 1, tr->ts.epoch_step + 1, tr->ts.step + 1, tr->run_dir);
}

/* One tiny allreduce per step folds: stop requests, divergence, and the
 * non-trainable state (batch-norm running statistics), averaged so that
 * every replica holds the same state.  Averaging each step is linear, so it
 * equals the running average of the ranks' mean batch statistics. */
static cv_status sync_small(struct trainer *tr, bool stop, bool finite, struct cv_error *err)
{
    size_t ns = cv_model_n_state(tr->model);
    float *state = cv_model_state(tr->model);
    tr->small[0] = stop ? 1 : 0;
    tr->small[1] = finite ? 0 : 1;
    for (size_t i = 0; i < ns; i++)
        tr->small[2 + i] = state[i];
    cv_status st = cv_comm_sum_doubles(tr->comm, tr->small, (int)(2 + ns), err);
    for (size_t i = 0; st == CV_OK && tr->world > 1 && i < ns; i++)
        state[i] = (float)(tr->small[2 + i] / tr->world);
    return st;
}

/* The global squared gradient norm for clipping: the partial norms of the
 * owned slices summed (unchanged when every rank owns the whole arena). */
static double sum_sq_over_ranks(void *arg, double partial)
{
    struct trainer *tr = arg;
    double v = partial;
    if (cv_reducer_sum_over_slices(tr->reducer, &v, &tr->norm_err) != CV_OK)
        return NAN;
    return v;
}

/* The optimizer step on this rank's slice of the parameters (all of them
 * unless sharded), then the slices shared so every replica is whole. */
static cv_status update(struct trainer *tr, double lr, long long global, struct cv_error *err)
{
    size_t lo, hi;
    double t0 = cv_now();
    cv_reducer_owned(tr->reducer, &lo, &hi);
    cv_error_clear(&tr->norm_err);
    double norm = cv_optim_step_part(tr->optim, cv_model_params(tr->model),
                                     cv_reducer_owned_grads(tr->reducer), lo, hi, lr, global,
                                     sum_sq_over_ranks, tr);
    double t1 = cv_now();
    tr->t.optim += t1 - t0;
    if (tr->norm_err.code != CV_OK) {
        if (err)
            *err = tr->norm_err;
        return tr->norm_err.code;
    }
    if (!isfinite(norm)) /* a global norm: every rank stops here */
        return diverged(tr, "the gradient is NaN or infinite", err);
    cv_status st = cv_reducer_share(tr->reducer, cv_model_params(tr->model), err);
    tr->t.comm += cv_now() - t1;
    return st;
}

/* One global mini-batch.  *stop: some rank was asked to stop. */
static cv_status train_step(struct trainer *tr, long long n_rows, double lr, bool *stop,
                            struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    long long s = tr->ts.epoch_step;
    struct cv_batch b;
    struct cv_batch_stats bs = {0};
    double t0 = cv_now(), wait = 0;
    cv_shard_batch(tr->train, cv_sched_local_batch(cfg->train.batch, tr->rank, tr->world), s, &b);
    if (cfg->data.augment_flip || cfg->data.augment_shift > 0)
        cv_shard_augment(tr->train, &b, cfg->model.input, cfg->train.seed, tr->ts.step,
                         cfg->data.augment_flip, cfg->data.augment_shift);
    long long global = cv_sched_global_count(n_rows, cfg->train.batch, tr->world, s);
    tr->t.data += cv_now() - t0;
    cv_model_train_batch(tr->model, &b, (uint64_t)tr->ts.step, 1.0f / (float)global, &bs);
    cv_status st = cv_reducer_finish(tr->reducer, &wait, err);
    bool preempt = tr->opts->preempt_at_step > 0 && tr->ts.step + 1 >= tr->opts->preempt_at_step;
    bool asked = (tr->opts->stop && *tr->opts->stop) || preempt;
    double t_flags = cv_now();
    if (st == CV_OK)
        st = sync_small(tr, asked, isfinite(bs.loss_sum), err);
    double *flags = tr->small;
    double t1 = cv_now();
    tr->t.comm += wait + (t1 - t_flags);
    tr->t.forward += bs.t_forward;
    tr->t.backward += bs.t_backward;
    if (st != CV_OK)
        return st;
    if (flags[1] > 0)
        return diverged(tr, "the loss is NaN or infinite", err);
    st = update(tr, lr, global, err);
    if (st != CV_OK)
        return st;
    tr->epoch.loss_sum += bs.loss_sum;
    tr->epoch.correct += bs.correct;
    tr->epoch.count += bs.count;
    tr->samples += global;
    *stop = flags[0] > 0;
    return CV_OK;
}

/* A stop request: exit 75 ("resume me") only with a checkpoint written
 * and verified by this run; else the write error (exit 1). */
static cv_status interrupted(struct trainer *tr, struct cv_error *err)
{
    if (tr->opts->on_phase)
        tr->opts->on_phase("stop_checkpoint");
    cv_status st = save_checkpoint(tr, true, err);
    if (st != CV_OK)
        return st;
    return cv_fail(err, CV_INTERRUPTED,
                   "stopped on request at epoch %lld, global step %lld; checkpoint written to "
                   "%s/checkpoints; resume with --resume %s or run.resume=auto",
                   tr->ts.epoch + 1, tr->ts.step, tr->run_dir, tr->run_dir);
}

static void reset_epoch(struct trainer *tr)
{
    memset(&tr->epoch, 0, sizeof(tr->epoch));
    tr->ts.epoch_loss_sum = tr->ts.epoch_correct = tr->ts.epoch_count = 0;
    tr->ts.epoch++;
    tr->ts.epoch_step = 0;
}

/* The progress line after a step (rank 0, when one is due). */
static void show_progress(struct trainer *tr, long long steps)
{
    const struct cv_config *cfg = tr->cfg;
    int last = cfg->train.epochs;
    if (tr->opts->stop_at_epoch > 0 && tr->opts->stop_at_epoch < last)
        last = tr->opts->stop_at_epoch;
    long long left = (last - tr->ts.epoch - 1) * steps;
    if (cfg->train.max_steps > 0 && cfg->train.max_steps - tr->ts.step < left + steps)
        left = cfg->train.max_steps - tr->ts.step - (steps - tr->ts.epoch_step);
    double n = (double)tr->epoch.count + tr->ts.epoch_count;
    struct cv_progress_at at = {
        .epoch = (int)tr->ts.epoch + 1,
        .epochs = last,
        .step = tr->ts.epoch_step,
        .steps = steps,
        .left = left > 0 ? left : 0,
        .samples = tr->samples - tr->samples_epoch0,
        .loss = n > 0 ? (tr->epoch.loss_sum + tr->ts.epoch_loss_sum) / n : NAN,
    };
    cv__progress_print(&tr->prog, &at);
}

/* Runs the steps of the current epoch; *limit when train.max_steps hit. */
static cv_status run_steps(struct trainer *tr, bool *limit, struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    long long n_rows = cv_shard_info(tr->train)->n_rows;
    long long steps = cv_sched_steps(n_rows, cfg->train.batch, tr->world);
    cv_shard_shuffle(tr->train, cfg->train.seed, tr->ts.epoch, true);
    cv__progress_epoch(&tr->prog, tr->ts.epoch_step);
    tr->samples_epoch0 = tr->samples;
    *limit = false;
    while (tr->ts.epoch_step < steps && !*limit) {
        bool stop = false;
        double t0 = cv_now();
        cv_status st = train_step(tr, n_rows, step_lr(tr, tr->ts.step), &stop, err);
        tr->train_time += cv_now() - t0;
        if (st != CV_OK)
            return st;
        tr->ts.step++;
        tr->ts.epoch_step++;
        if (tr->opts->on_step)
            tr->opts->on_step(tr->opts->on_step_arg);
        if (cv__progress_due(&tr->prog, tr->ts.epoch_step))
            show_progress(tr, steps);
        *limit = cfg->train.max_steps > 0 && tr->ts.step >= cfg->train.max_steps;
        if (stop)
            return interrupted(tr, err);
        if (cfg->checkpoint.every_steps > 0 && tr->ts.step % cfg->checkpoint.every_steps == 0)
            if ((st = save_checkpoint(tr, false, err)) != CV_OK)
                return st;
    }
    return CV_OK;
}

/* A run resumed after its last epoch trains nothing: its result is the
 * last epoch's, which the checkpoint carries. */
static void result_from_state(const struct trainer *tr, struct cv_train_result *res)
{
    res->train_loss = tr->ts.last[0];
    res->train_accuracy = tr->ts.last[1];
    res->dev_loss = tr->ts.last[2];
    res->dev_accuracy = tr->ts.last[3];
    res->epochs_done = (int)tr->ts.epoch;
    res->steps = tr->ts.step;
}

static void result_recipe(const struct trainer *tr, struct cv_train_result *res)
{
    res->best_epoch = tr->ts.recipe.best_epoch;
    res->best_value = tr->ts.recipe.best;
    res->stopped_epoch = tr->ts.recipe.stopped;
    for (int i = 0; i < 4; i++)
        res->best_last[i] = tr->ts.recipe.best_last[i];
}

static void say_stopped(const struct trainer *tr)
{
    const struct cv_recipe_state *r = &tr->ts.recipe;
    say(tr,
        "early stopping after epoch %lld: %s has not improved by more than %g for %d epochs; "
        "best %.6g at epoch %lld, kept in %s/model.h5\n",
        r->stopped, cv_monitor_name(tr->cfg->train.monitor), tr->cfg->train.min_delta,
        tr->cfg->train.patience, r->best, r->best_epoch, tr->run_dir);
}

/* After an epoch's model is saved: the caller's hook on rank 0 (the CLI
 * refreshes RUN_DIR/report.html there when run.report is set). */
static void epoch_hook(struct trainer *tr)
{
    if (tr->opts->on_epoch && tr->rank == 0)
        tr->opts->on_epoch(tr->opts->on_epoch_arg, tr->run_dir);
}

static cv_status run_epochs(struct trainer *tr, struct cv_train_result *res, struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    int last = cfg->train.epochs;
    if (tr->opts->stop_at_epoch > 0 && tr->opts->stop_at_epoch < last)
        last = tr->opts->stop_at_epoch;
    if (tr->ts.epoch >= last || tr->ts.recipe.stopped > 0)
        result_from_state(tr, res);
    if (tr->ts.recipe.stopped > 0) { /* resumed after early stopping: nothing to train */
        say_stopped(tr);
        return CV_OK;
    }
    bool limit = false;
    while (tr->ts.epoch < last && !limit) {
        cv_status st = run_steps(tr, &limit, err);
        if (st == CV_OK)
            st = finish_epoch(tr, limit ? "end" : "epoch", res, err);
        if (st == CV_OK)
            st = save_model(tr, err);
        if (st != CV_OK)
            return st;
        epoch_hook(tr);
        if (limit)
            return CV_OK;
        reset_epoch(tr);
        bool stop = tr->ts.recipe.stopped > 0;
        bool due = cfg->checkpoint.every_epochs > 0 &&
                   tr->ts.epoch % cfg->checkpoint.every_epochs == 0;
        if (due || tr->ts.epoch == last || stop)
            if ((st = save_checkpoint(tr, false, err)) != CV_OK)
                return st;
        if (stop) {
            say_stopped(tr);
            break;
        }
    }
    return CV_OK;
}

/* ---- set-up and the public entry ---- */

static void print_line(void *arg, const char *line)
{
    say(arg, "%s\n", line);
}

/* model.class_weights = balanced: N / (K n_c) from the training labels of
 * every rank (a class without rows keeps weight 1). */
static cv_status balance_classes(struct trainer *tr, struct cv_error *err)
{
    int k = cv_model_outputs(tr->model);
    const int32_t *y = cv_shard_labels(tr->train);
    double *n = cv_calloc((size_t)k + 1, sizeof(double));
    float *w = cv_calloc((size_t)k, sizeof(float));
    cv_status st = !n || !w ? cv_fail(err, CV_NOMEM, "out of memory") : CV_OK;
    for (long long i = 0; st == CV_OK && y && i < cv_shard_rows(tr->train); i++)
        n[y[i] >= 0 && y[i] < k ? y[i] : k] += 1;
    st = cv_comm_agree(tr->comm, st, err);
    if (st == CV_OK)
        st = cv_comm_sum_doubles(tr->comm, n, k + 1, err);
    double total = 0;
    for (int j = 0; st == CV_OK && j <= k; j++)
        total += n[j];
    for (int j = 0; st == CV_OK && j < k; j++)
        w[j] = n[j] > 0 ? (float)(total / (k * n[j])) : 1.0f;
    if (st == CV_OK)
        st = cv_model_set_class_weights(tr->model, w, err);
    free(n);
    free(w);
    return st;
}

/* Frozen layers and the lr factor of loaded ones, for the optimizer. */
static cv_status lr_factors(struct trainer *tr, bool resumed, struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    cv_status st = CV_OK;
    if (resumed && cfg->model.init_from[0] && cfg->train.lr_loaded != 1.0)
        st = cv__transfer_load(tr->model, cfg->model.init_from, false, tr->loaded, NULL, NULL, err);
    float *scale = cv_calloc(cv_model_n_params(tr->model), sizeof(float));
    if (st == CV_OK && !scale)
        st = cv_fail(err, CV_NOMEM, "out of memory");
    if (st == CV_OK && cv__transfer_lr_scale(tr->model, tr->loaded, scale))
        st = cv_optim_set_lr_scale(tr->optim, scale, err);
    free(scale);
    return st;
}

static cv_status fresh_start(struct trainer *tr, struct cv_error *err)
{
    cv_status st = CV_OK;
    if (tr->cfg->data.normalize == CV_NORM_STANDARD)
        st = compute_norm(tr, err);
    if (st != CV_OK)
        return st;
    cv_model_init_params(tr->model, tr->cfg->train.seed);
    if (tr->cfg->model.init_from[0])
        st = cv__transfer_load(tr->model, tr->cfg->model.init_from, true, tr->loaded, print_line,
                               tr, err);
    if (st != CV_OK)
        return st;
    bool same = false;
    st = cv_comm_same_bytes(tr->comm, cv_model_params(tr->model),
                            cv_model_n_params(tr->model) * sizeof(float), &same, NULL, err);
    if (st == CV_OK && !same)
        st = cv_fail(err, CV_MPI, "replicas start from different parameters (checksums differ)");
    return st;
}

static cv_status check_warmup(const struct trainer *tr, struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    long long n_rows = cv_shard_info(tr->train)->n_rows;
    long long total = cv_sched_steps(n_rows, cfg->train.batch, tr->world) * cfg->train.epochs;
    if (cfg->train.warmup_steps >= total)
        return cv_fail(err, CV_CONFIG,
                       "train.warmup.steps = %lld is not shorter than the training (%d epochs of "
                       "%lld steps = %lld steps)",
                       cfg->train.warmup_steps, cfg->train.epochs, total / cfg->train.epochs,
                       total);
    return CV_OK;
}

/* Collective: after a start-up phase, stop if any rank was asked to (a
 * signal may reach one rank only, at any moment). */
static cv_status stop_point(struct trainer *tr, const char *phase, struct cv_error *err)
{
    if (tr->opts->on_phase)
        tr->opts->on_phase(phase);
    cv_status st = CV_OK;
    if (tr->opts->stop && *tr->opts->stop)
        st = cv_fail(err, CV_STOPPED,
                     "stopped on request during start-up (after phase %s), before training: "
                     "no checkpoint written; run the same command again to %s",
                     phase, tr->opts->resume_dir ? "resume" : "start");
    return cv_comm_agree(tr->comm, st, err);
}

static cv_status prepare(struct trainer *tr, struct cv_error *err)
{
    cv_status st = make_run_dir(tr, err);
    if (st == CV_OK)
        st = stop_point(tr, "run_dir", err);
    if (st == CV_OK)
        st = cv_comm_agree(tr->comm, build(tr, err), err);
    if (st == CV_OK)
        st = cv_reducer_create(tr->cfg, tr->comm, tr->model, &tr->reducer, err);
    if (st == CV_OK)
        st = stop_point(tr, "model", err);
    if (st == CV_OK)
        st = open_data(tr, err);
    if (st == CV_OK)
        st = check_warmup(tr, err); /* the same on every rank: no agreement needed */
    if (st == CV_OK)
        st = stop_point(tr, "data", err);
    if (st != CV_OK)
        return st;
    const char *dir = tr->opts->resume_dir;
    bool auto_resume = tr->cfg->run.resume == CV_RESUME_AUTO, found = false;
    if (dir || auto_resume)
        st = resume(tr, dir ? dir : tr->run_dir, dir != NULL, &found, err);
    if (st == CV_OK && tr->cfg->model.balanced)
        st = balance_classes(tr, err);
    if (st == CV_OK && !found)
        st = cv_comm_agree(tr->comm, fresh_start(tr, err), err);
    if (st == CV_OK)
        st = cv_comm_agree(tr->comm, lr_factors(tr, found, err), err);
    if (st == CV_OK)
        st = cv_reducer_adopt(tr->reducer, err);
    if (st == CV_OK)
        st = stop_point(tr, "resume", err);
    if (st != CV_OK)
        return st;
    const float *mean = cv_model_norm_mean(tr->model), *sd = cv_model_norm_std(tr->model);
    if (mean) {
        cv_shard_normalize(tr->train, mean, sd);
        if (tr->dev)
            cv_shard_normalize(tr->dev, mean, sd);
    }
    tr->ts.world_size = tr->world;
    tr->ts.data_rows = cv_shard_info(tr->train)->n_rows;
    tr->ts.data_features = cv_shard_info(tr->train)->features;
    snprintf(tr->ts.data_path, sizeof(tr->ts.data_path), "%s", tr->cfg->data.train);
    return CV_OK;
}

static cv_status check_replicas(struct trainer *tr, struct cv_train_result *res,
                                struct cv_error *err)
{
    bool same = false;
    uint64_t h = 0;
    cv_status st = cv_comm_same_bytes(tr->comm, cv_model_params(tr->model),
                                      cv_model_n_params(tr->model) * sizeof(float), &same, &h, err);
    res->params_hash = h;
    if (st == CV_OK && !same)
        st = cv_fail(err, CV_MPI, "replicas diverged: parameter checksums differ across ranks");
    return st;
}

/* Rank 0's progress goes to the terminal or log; a quiet run (a sweep
 * trial) keeps its lines in its own RUN_DIR/train.log instead. */
static void open_output(struct trainer *tr)
{
    const struct cv_config *cfg = tr->cfg;
    FILE *out = stdout;
    if (tr->rank != 0)
        return;
    if (tr->opts->quiet) {
        char path[CV_PATH_MAX + 16];
        cv__run_dir_path(tr->run_dir, "train.log", path, sizeof(path));
        tr->log = fopen(path, "a"); /* a log only: nothing reads it back */
        out = tr->log;
    }
    bool tty = !tr->opts->quiet && tr->opts->terminal;
    cv__progress_init(&tr->prog, out, tty, tr->opts->tag, cfg->run.progress,
                      cfg->run.progress_steps);
}

static void say_exchange(const struct trainer *tr)
{
    if (tr->world > 1)
        say(tr, "gradients: %s\n", cv_reducer_describe(tr->reducer));
}

cv_status cv_train_run(const struct cv_config *cfg, const cv_comm *comm,
                       const struct cv_train_opts *opts, struct cv_train_result *res,
                       struct cv_error *err)
{
    static const struct cv_train_opts none;
    struct trainer tr = {.cfg = cfg, .comm = comm, .opts = opts ? opts : &none, .lock_fd = -1};
    tr.rank = cv_comm_rank(comm);
    tr.world = cv_comm_size(comm);
    tr.t_start = cv_now();
    for (int i = 0; i < 4; i++)
        tr.ts.last[i] = NAN; /* no epoch finished yet */
    cv__recipe_init(&tr.ts.recipe);
    memset(res, 0, sizeof(*res));
    res->dev_loss = res->dev_accuracy = NAN;
    for (int i = 0; i < CV_FIG_COUNT; i++)
        res->dev_fig[i] = NAN;
    cv_status st = prepare(&tr, err);
    if (st == CV_OK)
        open_output(&tr);
    if (st == CV_OK) {
        say(&tr, "training on %lld rows of %s with %d rank(s) x %d thread(s), global batch %d\n",
            cv_shard_info(tr.train)->n_rows, cfg->data.train, tr.world, cv_num_threads(),
            cfg->train.batch);
        say_exchange(&tr);
        cv_model_summary(tr.model, print_line, &tr);
        st = run_epochs(&tr, res, err);
        result_recipe(&tr, res);
    }
    if (st == CV_OK)
        st = check_replicas(&tr, res, err);
    res->seconds = cv_now() - tr.t_start;
    cv_optim_free(tr.optim);
    cv_shard_free(tr.train);
    cv_shard_free(tr.dev);
    cv_metrics_deinit(&tr.dev_mt);
    cv_model_free(tr.model);
    cv_reducer_free(tr.reducer); /* after the model, which may compute on its arenas */
    free(tr.pred);
    free(tr.small);
    free(tr.ts.metrics);
    if (tr.log)
        fclose(tr.log);
    cv__dir_unlock(tr.lock_fd);
    return st;
}
