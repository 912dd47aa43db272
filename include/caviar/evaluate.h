/*
 * evaluate.h - predictions over a rank's shard and the metrics of every
 * kind of task (classification, binary, multi-label, regression: see
 * docs/metrics.md), summed over the ranks.  Shared by `caviar eval`, `predict` and `ensemble eval`:
 * metrics are computed from probabilities, so an ensemble (mean of member
 * probabilities) is evaluated exactly like a single model.
 */
#ifndef CAVIAR_EVALUATE_H
#define CAVIAR_EVALUATE_H

#include <stdio.h>

#include "caviar/comm.h"
#include "caviar/config.h"
#include "caviar/dataset.h"
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
/* cv_eval_check_split for model m, and for sequences: per-step targets
 * need a sequence output of as many steps (a per-step head on a last-step
 * output is refused), per-row targets a non-sequence output, token ids an
 * embedding whose vocab covers vocab_size.  Errors: CV_FORMAT, CV_SHAPE
 * naming the split.  Local: no collectives. */
cv_status cv_eval_check_model(const char *spec, const struct cv_dataset_info *d, const cv_model *m,
                              struct cv_error *err);
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

/* What the targets are, which decides the metrics (docs/metrics.md). */
enum cv_task {
    CV_TASK_CLASSIFICATION, /* class ids, one output per class (softmax) */
    CV_TASK_BINARY,         /* class ids 0/1, one output: p(class 1) */
    CV_TASK_MULTILABEL,     /* float 0/1 targets, binary cross-entropy: one label per output */
    CV_TASK_REGRESSION      /* float targets, mse */
};

#define CV_TOPK 5 /* top-k accuracy is reported for more than CV_TOPK classes */

struct cv_metrics {
    enum cv_task task;
    enum cv_loss loss_kind; /* how the loss is computed from probabilities */
    int classes;            /* confusion is classes x classes (>= 2) */
    int outputs;            /* columns of probs (per step) */
    int steps;              /* per-step targets: a row is steps x outputs, else 1 */
    long long count;        /* rows seen */
    double loss_sum;        /* sum of per-row losses */
    long long *confusion;   /* (classes, classes): [true][predicted] (owned) */
    long long topk_hits;    /* rows whose class is among the CV_TOPK highest */
    double *per_class;      /* (classes, 4): precision, recall, F1, support (owned) */
    double *col;            /* (outputs, 4) multi-label: tp, fp, fn, tn; regression:
                               sum |e|, sum e^2, sum y, sum y^2 (owned) */
    double *per_col;        /* (outputs, 4) after finish: multi-label P, R, F1, support;
                               regression MAE, RMSE, R^2, 0 (owned) */
    long long subset_hits;  /* multi-label rows with every label right */
    float *scores;          /* binary: (n_scores, 2) p(1), true class, for ROC AUC (owned) */
    long long n_scores, cap_scores;
    const char *const *names; /* class names (borrowed, may be NULL) */
    /* after finish; NAN where the task has no such figure */
    double loss, accuracy, precision, recall, f1; /* macro averages over classes/labels */
    double top_k;                                 /* top-CV_TOPK accuracy */
    double roc_auc;                               /* binary */
    double micro_f1, hamming, subset_accuracy;    /* multi-label */
    double mae, rmse, r2;                         /* regression, averaged over outputs */
};

/* The task of a model with `loss` and `outputs` on data with `classes`
 * (0 = float targets). */
enum cv_task cv_metrics_task(enum cv_loss loss, int classes, int outputs);
const char *cv_task_name(enum cv_task t);

/* The task figures a training run logs per epoch for its dev split and a
 * sweep can rank by ("dev.<name>"): one list for train, metrics.jsonl,
 * sweeps and reports.  NAN where the task has no such figure. */
#define CV_FIGURES(X)                                                                              \
    X(F1, "f1", f1)                                                                                \
    X(TOP_K, "top_k_accuracy", top_k)                                                              \
    X(ROC_AUC, "roc_auc", roc_auc)                                                                 \
    X(MICRO_F1, "micro_f1", micro_f1)                                                              \
    X(HAMMING, "hamming_loss", hamming)                                                            \
    X(SUBSET, "subset_accuracy", subset_accuracy)                                                  \
    X(MAE, "mae", mae)                                                                             \
    X(RMSE, "rmse", rmse)                                                                          \
    X(R2, "r2", r2)

enum cv_figure {
#define CV_FIGURE_ENUM(id, name, field) CV_FIG_##id,
    CV_FIGURES(CV_FIGURE_ENUM)
#undef CV_FIGURE_ENUM
        CV_FIG_COUNT
};

/* The name of figure i ("mae"), and its value in finished metrics. */
const char *cv_figure_name(int i);
double cv_metrics_figure(const struct cv_metrics *mt, int i);

/* Zero the counts for another pass over the data, keeping the buffers. */
void cv_metrics_reset(struct cv_metrics *mt);

/* classes: the data's (0 for float targets).  A softmax_cross_entropy
 * model whose outputs are a multiple T > 1 of classes predicts per step:
 * a row is then T predictions with T class ids (-1: padding, skipped).
 * Errors: CV_NOMEM. */
cv_status cv_metrics_init(struct cv_metrics *mt, enum cv_loss kind, int classes, int outputs,
                          struct cv_error *err);
void cv_metrics_deinit(struct cv_metrics *mt);
/* Add n rows of probabilities (n, outputs) with class ids y, or float
 * targets y_vec (n, outputs).  A binary task keeps the scores (for ROC AUC),
 * growing its buffer: CV_NOMEM if that fails. */
cv_status cv_metrics_add(struct cv_metrics *mt, const float *probs, const int32_t *y,
                         const float *y_vec, long long n, struct cv_error *err);
/* Collective: sum counts over ranks, then compute the figures (every rank
 * gets them).  comm may be NULL (one process). */
cv_status cv_metrics_finish(struct cv_metrics *mt, const cv_comm *comm, struct cv_error *err);
/* One JSON object (no newline): task, count, loss and the task's figures
 * (classification and binary: accuracy, macro P/R/F1, per_class with names,
 * confusion, top_k_accuracy / roc_auc; multi-label: per_label, micro/macro
 * F1, hamming_loss, subset_accuracy; regression: mae, rmse, r2). */
void cv_metrics_json(const struct cv_metrics *mt, FILE *f);
/* Human report: the figures, per-class table and confusion matrix. */
void cv_metrics_print(const struct cv_metrics *mt, FILE *f);

/* ---- a model file scored on a split (score.c) ---- */

struct cv_scored {
    struct cv_config *cfg;   /* the model's config (owned) */
    cv_model *model;         /* (owned) */
    cv_shard *shard;         /* this rank's rows of the split (owned) */
    float *xbuf;             /* (batch, inputs) scratch */
    float *probs;            /* (rows of the shard, outputs) the predictions */
    char **names;            /* the split's class names, or NULL (owned) */
    char split[CV_PATH_MAX]; /* the split scored */
};

/* Open the model file, rank's rows of split `data` (NULL: the model's
 * data.dev, else data.train), check they fit (cv_eval_check_split), read the
 * class names and predict every row.  Not collective: agree on the status
 * before a collective.  Close *s whatever it returns.  Errors: those of
 * opening the files, CV_SHAPE, CV_NOMEM. */
cv_status cv_scored_open(const char *model, const char *data, int rank, int world,
                         struct cv_scored *s, struct cv_error *err);
/* Init *mt for the scored task and add this rank's rows (not finished). */
cv_status cv_scored_metrics(const struct cv_scored *s, struct cv_metrics *mt, struct cv_error *err);
void cv_scored_close(struct cv_scored *s);

/* ---- internal to the metrics files ---- */
void cv__metrics_add_vec(struct cv_metrics *mt, const float *probs, const float *y_vec,
                         long long n);
void cv__metrics_vec_figures(struct cv_metrics *mt);
/* Collective: ROC AUC of the binary scores of every rank. */
cv_status cv__metrics_auc(struct cv_metrics *mt, const cv_comm *comm, struct cv_error *err);

#endif /* CAVIAR_EVALUATE_H */
