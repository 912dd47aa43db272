/*
 * recipe.h - the epoch-end decisions of the training recipe: which epoch is
 * the best so far (its model is kept), reduce-on-plateau, early stopping.
 * Pure functions of the config, the state and the epoch's monitored value:
 * the trainer runs them on rank 0 and broadcasts the state, so every rank
 * takes the same decision (train.c).  No MPI, no files here.
 */
#ifndef CV_RECIPE_H
#define CV_RECIPE_H

#include <stdbool.h>

#include "caviar/checkpoint.h"
#include "caviar/config.h"

/* A fresh state: no best yet, no plateau reduction. */
void cv__recipe_init(struct cv_recipe_state *s);

/* The figures of a finished epoch, NAN where not computed. */
struct cv_epoch_metrics {
    double train_loss, train_acc, dev_loss, dev_acc, dev_f1;
};

/* The value of train.monitor among m (NAN for none). */
double cv__recipe_value(const struct cv_config *cfg, const struct cv_epoch_metrics *m);

/* What one epoch changed. */
struct cv_recipe_step {
    bool improved; /* a new best: keep this epoch's model */
    bool reduced;  /* reduce-on-plateau lowered the rate */
    bool stop;     /* early stopping: no further epoch */
};

/* Fold the figures m of 1-based `epoch` (train.monitor's among them) into s. */
void cv__recipe_update(const struct cv_config *cfg, struct cv_recipe_state *s,
                       const struct cv_epoch_metrics *m, long long epoch,
                       struct cv_recipe_step *out);

/* The learning rate of 0-based `epoch` before warmup: the schedule's, or
 * the plateau's current rate. */
double cv__recipe_lr(const struct cv_config *cfg, const struct cv_recipe_state *s, int epoch);

#endif /* CV_RECIPE_H */
