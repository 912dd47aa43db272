/*
 * checkpoint.h - models and checkpoints in one HDF5 format (docs/checkpoint-format.md).
 *
 * A model file is a checkpoint without optimizer state; eval, predict and
 * ensemble eval accept either.  Files are written by one rank, atomically
 * (temporary file in the same directory, fsync, rename, fsync of the
 * directory), with every array chunked and Fletcher32-checksummed so
 * corruption is detected on read.  checkpoint_h5.c is the only file of the
 * training path that includes <hdf5.h>.
 */
#ifndef CAVIAR_CHECKPOINT_H
#define CAVIAR_CHECKPOINT_H

#include <stdint.h>

#include "caviar/config.h"
#include "caviar/model.h"
#include "caviar/optim.h"
#include "caviar/status.h"

#define CV_CKPT_FORMAT_VERSION 1

/* The epoch-end decisions of the training recipe (src/recipe.h): made on
 * rank 0, shared with every rank, stored in every checkpoint so a resumed
 * run keeps the best-so-far and the early-stopping count. */
struct cv_recipe_state {
    double lr;             /* reduce-on-plateau: the current rate (0 = train.lr) */
    double plateau_best;   /* best monitored value the plateau compares with */
    long long plateau_bad; /* epochs since it improved */
    double best;           /* best monitored value (NAN: none yet) */
    long long best_epoch;  /* 1-based epoch of it, 0 = none */
    double best_last[4];   /* that epoch's train loss/accuracy, dev loss/accuracy */
    double es_best;        /* early stopping's reference (improved by > min_delta) */
    long long es_bad;      /* epochs since it improved */
    long long stopped;     /* 1-based epoch at which early stopping fired, 0 = not */
};

/* Where training stands; stored in every checkpoint. */
struct cv_train_state {
    long long epoch;             /* 0-based epoch in progress */
    long long epoch_step;        /* steps of that epoch already done */
    long long step;              /* optimizer steps done in total */
    int world_size;              /* ranks that wrote it */
    long long data_rows;         /* rows of the training split */
    int data_features;           /* features of the training split */
    char data_path[CV_PATH_MAX]; /* training split spec */
    double epoch_loss_sum;       /* running sums of the epoch in progress, so a */
    double epoch_correct;        /* resumed run prints the same metric line */
    double epoch_count;
    double last[4]; /* the last finished epoch's train loss, train accuracy, dev
                       loss, dev accuracy (NAN: none), for a resumed finished run */
    char *metrics;  /* metric history, JSON lines (owned; may be NULL) */
    struct cv_recipe_state recipe;
};

/* Write model (+ optimizer and training state when o and ts are given) to
 * `path` atomically.  Errors: CV_IO / CV_HDF5 naming the file; on failure
 * the previous file at `path` is untouched and no temporary is left. */
cv_status cv_ckpt_save(const char *path, cv_model *m, cv_optim *o, const struct cv_train_state *ts,
                       struct cv_error *err);

/* The best model of a monitored run: a model file with root attributes
 * best_epoch (1-based), best_metric (train.monitor) and best_value. */
struct cv_ckpt_best {
    long long epoch;
    const char *metric;
    double value;
};
cv_status cv_ckpt_save_best(const char *path, cv_model *m, const struct cv_ckpt_best *best,
                            struct cv_error *err);

/* Read the stored config text of a model/checkpoint and parse it (with
 * optional overrides).  Errors: CV_IO, CV_FORMAT, CV_VERSION (newer format),
 * CV_CONFIG. */
cv_status cv_ckpt_read_config(const char *path, const char *const *overrides, int n_overrides,
                              struct cv_config **cfg, struct cv_error *err);

/* Load parameters, state and normalisation into m (built from the same
 * architecture); optimizer moments into o and training state into ts when
 * not NULL (ts->metrics is allocated: free it).  Checksums are verified:
 * CV_CORRUPT names the file and dataset that failed. */
cv_status cv_ckpt_load(const char *path, cv_model *m, cv_optim *o, struct cv_train_state *ts,
                       struct cv_error *err);

/* Open a model file: config + model + weights (for eval/predict).  *cfg and
 * *m are owned by the caller (free m first). */
cv_status cv_ckpt_open_model(const char *path, int max_batch, struct cv_config **cfg, cv_model **m,
                             struct cv_error *err);

/* Verify every checksum of a file without loading it into a model. */
cv_status cv_ckpt_verify(const char *path, struct cv_error *err);

/* Facts for `caviar inspect`. */
struct cv_ckpt_info {
    int format_version;
    char caviar_version[32];
    char kind[16]; /* "model" or "checkpoint" */
    long long n_params;
    unsigned long long params_hash; /* FNV-1a of the parameter arena as stored */
    long long optimizer_t;
    struct cv_train_state ts; /* ts.metrics owned: free it */
};
cv_status cv_ckpt_info(const char *path, struct cv_ckpt_info *info, struct cv_error *err);

#endif /* CAVIAR_CHECKPOINT_H */
