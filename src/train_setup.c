/*
 * train_setup.c - the trainer's set-up: run directory, model, data, fresh
 * start or resume (every failure agreed across ranks before the next
 * collective).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/text.h"
#include "run_dir.h"
#include "train_internal.h"
#include "transfer.h"
#include "util.h"

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
    return cv_eval_check_model(spec, d, tr->model, err);
}

/* A text model keeps the vocabulary of its training split, so that it
 * travels into every checkpoint and model.h5 (for `caviar sample`). */
static cv_status keep_vocab(struct trainer *tr, struct cv_error *err)
{
    struct cv_vocab v;
    bool found;
    cv_status st = cv_vocab_read(tr->cfg->data.train, &v, &found, err);
    if (st == CV_OK && found)
        st = cv_model_set_tokens(tr->model, &v, err);
    cv_vocab_deinit(&v);
    return st;
}

/* The class names of the training split travel with the model too, so
 * that `predict` names classes without the training file. */
static cv_status keep_names(struct trainer *tr, struct cv_error *err)
{
    char **names = NULL;
    int n = cv_model_classes(tr->model);
    cv_status st = cv_dataset_class_names(tr->cfg->data.train, n, &names, err);
    if (st == CV_OK && names)
        st = cv_model_set_class_names(tr->model, (const char *const *)names, n, err);
    free(names);
    return st;
}

static cv_status open_data(struct trainer *tr, struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    cv_status st = cv_shard_open(cfg->data.train, tr->rank, tr->world, tr->local_batch, &tr->train,
                                 err);
    if (st == CV_OK)
        st = check_targets(tr, cv_shard_info(tr->train), cfg->data.train, err);
    if (st == CV_OK)
        st = keep_vocab(tr, err);
    if (st == CV_OK)
        st = keep_names(tr, err);
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
    bool augment = cfg->data.augment_flip || cfg->data.augment_shift > 0 ||
                   cv_config_sched_has(cfg, CV_SCHED_AUGMENT_SHIFT);
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

/* model.class_weights = balanced: N / (K n_c) from the training labels of
 * every rank (a class without rows keeps weight 1). */
static cv_status balance_classes(struct trainer *tr, struct cv_error *err)
{
    int steps = cv_model_output_steps(tr->model), k = cv_model_outputs(tr->model);
    long long labels = cv_shard_rows(tr->train) * (steps > 0 ? steps : 1);
    const int32_t *y = cv_shard_labels(tr->train);
    k /= steps > 0 ? steps : 1; /* per-step targets: classes of a step, -1 padding skipped */
    double *n = cv_calloc((size_t)k + 1, sizeof(double));
    float *w = cv_calloc((size_t)k, sizeof(float));
    cv_status st = !n || !w ? cv_fail(err, CV_NOMEM, "out of memory") : CV_OK;
    for (long long i = 0; st == CV_OK && y && i < labels; i++)
        if (y[i] >= 0 || steps == 0)
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
    if (tr->cfg->data.normalize == CV_NORM_STANDARD && !cv_model_vocab(tr->model))
        st = compute_norm(tr, err); /* token ids (an embedding's input) stay ids */
    if (st != CV_OK)
        return st;
    cv_model_init_params(tr->model, tr->cfg->train.seed);
    if (tr->cfg->model.init_from[0])
        st = cv__transfer_load(tr->model, tr->cfg->model.init_from, true, tr->loaded,
                               cv__train_print_line, tr, err);
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

cv_status cv__train_prepare(struct trainer *tr, struct cv_error *err)
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
        st = cv__train_resume(tr, dir ? dir : tr->run_dir, dir != NULL, &found, err);
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
