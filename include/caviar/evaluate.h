/*
 * evaluate.h - predictions over a rank's shard and classification metrics
 * (loss, accuracy, macro precision / recall / F1, confusion matrix) summed
 * over the ranks.  Shared by `caviar eval`, `predict` and `ensemble eval`:
 * metrics are computed from probabilities, so an ensemble (mean of member
 * probabilities) is evaluated exactly like a single model.
 */
#ifndef CAVIAR_EVALUATE_H
#define CAVIAR_EVALUATE_H

#include <stdio.h>

#include "caviar/comm.h"
#include "caviar/model.h"
#include "caviar/shard.h"
#include "caviar/status.h"

/* Whether split `spec` (described by d) can be scored by a model of
 * `inputs` features and `outputs` outputs trained with `loss`: at least one
 * row; the same features; class ids with one output per class (or, except
 * for softmax_cross_entropy, one output for <= 2 classes), or float targets
 * of `outputs` columns.  Anything else would read past the model's outputs
 * or score the wrong label space.  Errors: CV_FORMAT (no rows), CV_SHAPE
 * (naming spec and both counts).  Local: no collectives. */
cv_status cv_eval_check_split(const char *spec, const struct cv_dataset_info *d, int inputs,
                              int outputs, enum cv_loss loss, struct cv_error *err);
/* The same for a split not opened yet: probe it first (its file errors as
 * cv_dataset_probe's).  Local: agree the status before a collective. */
cv_status cv_eval_probe_split(const char *spec, int inputs, int outputs, enum cv_loss loss,
                              struct cv_error *err);

/* probs (rows of the shard, outputs) = the model's predictions for every
 * local row in storage order; inputs are normalised on the fly with the
 * model's statistics (the shard stays raw).  xbuf: (max_batch, inputs). */
void cv_predict_shard(cv_model *m, cv_shard *sh, float *xbuf, float *probs);

/* The predicted class of one row of probabilities: argmax, or p > 0.5 for
 * a single output. */
int cv_predicted_class(const float *p, int k);

struct cv_metrics {
    enum cv_loss loss_kind; /* how the loss is computed from probabilities */
    int classes;            /* confusion is classes x classes (>= 2) */
    int outputs;            /* columns of probs */
    long long count;        /* rows seen */
    double loss_sum;        /* sum of per-row losses */
    long long *confusion;   /* (classes, classes): [true][predicted] (owned) */
    double loss, accuracy, precision, recall, f1; /* after finish; macro averages */
};

cv_status cv_metrics_init(struct cv_metrics *mt, enum cv_loss kind, int classes, int outputs,
                          struct cv_error *err);
void cv_metrics_deinit(struct cv_metrics *mt);
/* Add n rows of probabilities (n, outputs) with class ids y, or float
 * targets y_vec (n, outputs) for which only the loss is computed. */
void cv_metrics_add(struct cv_metrics *mt, const float *probs, const int32_t *y, const float *y_vec,
                    long long n);
/* Collective: sum counts over ranks, then compute the figures. */
cv_status cv_metrics_finish(struct cv_metrics *mt, const cv_comm *comm, struct cv_error *err);
/* One JSON object (no newline). */
void cv_metrics_json(const struct cv_metrics *mt, FILE *f);
/* Human report: figures and the confusion matrix. */
void cv_metrics_print(const struct cv_metrics *mt, FILE *f);

#endif /* CAVIAR_EVALUATE_H */
