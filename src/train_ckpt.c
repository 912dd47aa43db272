/*
 * train_ckpt.c - the trainer's checkpoints, model.h5 and resume.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/checkpoint.h"
#include "run_dir.h"
#include "train_internal.h"
#include "util.h"

/* Collective.  On failure nothing was written under a checkpoint name and
 * the older checkpoints are untouched; the error (a full disk, ...) ends
 * the run: exit 1, not "resume me".  `verify`: read the file back and check
 * every checksum before counting it as written. */
cv_status cv__train_save_checkpoint(struct trainer *tr, bool verify, struct cv_error *err)
{
    double v[3];
    cv_status st = cv__train_epoch_sums(tr, v, err);
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
cv_status cv__train_save_model(struct trainer *tr, struct cv_error *err)
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
    cv__train_say(arg, "%s\n", line);
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
cv_status cv__train_resume(struct trainer *tr, const char *dir, bool required, bool *found,
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
        cv__train_say(tr, "resuming from %s: the run is complete (%lld epochs); nothing to train\n",
                      path, tr->ts.epoch);
    else
        cv__train_say(tr, "resuming from %s: epoch %lld, step %lld of it (global step %lld)%s\n",
                      path, tr->ts.epoch + 1, tr->ts.epoch_step, tr->ts.step,
                      tr->ts.world_size != tr->world
                          ? " (elastic: world size changed, data order differs)"
                          : "");
    st = tr->rank == 0 ? cv__run_dir_write_metrics(tr->run_dir, tr->ts.metrics, err) : CV_OK;
    return cv_comm_agree(tr->comm, st, err);
}
