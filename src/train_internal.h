/*
 * train_internal.h - the trainer's state, shared by the files of the
 * training loop: train.c (the step and epoch loops, the public entry),
 * train_setup.c (run directory, data, model, fresh start or resume),
 * train_epoch.c (dev evaluation, the epoch's figures and recipe decisions)
 * and train_ckpt.c (checkpoints, model.h5, resume).
 */
#ifndef CV_TRAIN_INTERNAL_H
#define CV_TRAIN_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>

#include "caviar/evaluate.h"
#include "caviar/optim.h"
#include "caviar/shard.h"
#include "caviar/train.h"
#include "progress.h"
#include "recipe.h"
#include "reducer.h"

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
    int lock_fd;     /* rank 0: the run directory's lock, or -1 */
    double lr_scale; /* train.schedule's lr of the epoch / train.lr (1 without) */
    int aug_shift;   /* the epoch's data.augment.shift (train.schedule may change it) */
};

/* Rank 0's lines: stdout, or RUN_DIR/train.log for a quiet run. */
void cv__train_say(const struct trainer *tr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* cv__train_say with a newline, as a line callback (arg: the trainer). */
void cv__train_print_line(void *arg, const char *line);

/* Collective: run directory, model, data, resume or fresh start. */
cv_status cv__train_prepare(struct trainer *tr, struct cv_error *err);
/* Collective: resume from the newest valid checkpoint of dir; *found is
 * false (and CV_OK) when none exists and `required` is false. */
cv_status cv__train_resume(struct trainer *tr, const char *dir, bool required, bool *found,
                           struct cv_error *err);

/* Collective: the epoch's global running sums {loss, correct, count}. */
cv_status cv__train_epoch_sums(const struct trainer *tr, double v[3], struct cv_error *err);
/* The learning rate of global step `step` of the current epoch. */
double cv__train_step_lr(const struct trainer *tr, long long step);
/* Collective: dev evaluation, recipe decisions, the epoch line and
 * metrics.jsonl; *res gets the epoch's figures. */
cv_status cv__train_finish_epoch(struct trainer *tr, const char *event, struct cv_train_result *res,
                                 struct cv_error *err);

/* Collective: a checkpoint (verified when `verify`), and model.h5. */
cv_status cv__train_save_checkpoint(struct trainer *tr, bool verify, struct cv_error *err);
cv_status cv__train_save_model(struct trainer *tr, struct cv_error *err);

#endif /* CV_TRAIN_INTERNAL_H */
