/*
 * predictions.h - a model's predictions on new data, labelled or not:
 * reading the rows to predict (an HDF5 split whose /y is optional, a CSV of
 * features, a folder of PNG/JPEG images), predicting them with the model's
 * stored input normalisation, and writing the prediction file: HDF5
 * (/probabilities N x k, /predicted N, /label N when the data has labels,
 * attribute class_names) or CSV (row,predicted[,predicted_name][,label],
 * p0..pk-1); for a per-step model (k = T x V) one prediction per valid
 * step (/predicted N x T, -1 on padded steps; CSV row,step,predicted,...,
 * p0..pV-1, a line per valid step), chosen by the file extension, replaced atomically (temporary
 * file, fsync, rename).  Used by `caviar predict` and `ensemble predict`.
 */
#ifndef CAVIAR_PREDICTIONS_H
#define CAVIAR_PREDICTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "caviar/comm.h"
#include "caviar/config.h"
#include "caviar/import.h"
#include "caviar/model.h"
#include "caviar/status.h"

/* How to read data that is not HDF5. */
struct cv_pred_opts {
    const char *label_column;   /* CSV: the true label's column (NULL: every column a feature) */
    bool header;                /* CSV: the first line names the columns */
    enum cv_missing missing;    /* CSV: missing feature values */
    struct cv_image_opts image; /* folder: size 0 x 0 and channels 0 take the model's */
};

/* The rows of one rank. */
struct cv_pred_input {
    long long total;    /* rows in all */
    long long first, n; /* this rank's rows [first, first + n) */
    int features;       /* per row */
    float *x;           /* (n, features) as stored: the model normalises (owned) */
    int32_t *label;     /* (n) true class ids, or NULL when the data has none (owned) */
    int32_t *lengths;   /* (n) valid steps of each sequence, or NULL: all (owned) */
    int classes;        /* of the labels (0 without) */
    bool ids_only;      /* CSV class ids: classes is the largest + 1, any subset may occur */
    char spec[CV_PATH_MAX];
};

/* The class names of model m (cv_model_classes() of them): those stored
 * in the model file at training time, else (older models) those of its
 * training split (data.train's class_names) when it is readable and has
 * one per class; else *names = NULL.  *names is one block for free().
 * Local. */
cv_status cv_pred_model_names(const cv_model *m, char ***names, struct cv_error *err);

/* Fill the image options the user left open from the model: (C, H, W) of
 * model.input when it has three dimensions, else the `shape` stored with
 * the training split; RGB when neither says.  Local. */
void cv_pred_image_defaults(const struct cv_config *cfg, struct cv_image_opts *io);

/* Open the rows that rank gets of world (contiguous blocks, as shards) of
 * `spec`: a folder (images: class subfolders give labels, mapped to
 * `names` when given, else numbered by sorted folder name; image files
 * directly in it have none), a file ending in .csv (the true label only
 * with o->label_column; names mapped like folders), else an HDF5 split
 * "file.h5[#group]" whose /y, when there, must hold class ids (float
 * targets are not labels).  CSV files and folders are read whole by each
 * rank.  Then checks that the rows fit a model of `inputs` features and
 * `outputs` outputs with `loss` (cv_eval_check_split for labelled HDF5).
 * Local: agree before a collective.  Close *in whatever it returns. */
cv_status cv_pred_input_open(const char *spec, const struct cv_pred_opts *o,
                             const char *const *names, int n_names, int rank, int world,
                             struct cv_pred_input *in, struct cv_error *err);
cv_status cv_pred_input_check(const struct cv_pred_input *in, int inputs, int outputs,
                              enum cv_loss loss, struct cv_error *err);
void cv_pred_input_close(struct cv_pred_input *in);

/* probs (n, outputs) = m's predictions of the rows x (n, inputs),
 * normalised on the fly with m's statistics; lengths (n, or NULL): each
 * sequence's valid steps.  xbuf: (max_batch, inputs). */
void cv_predict_rows(cv_model *m, const float *x, const int32_t *lengths, long long n, float *xbuf,
                     float *probs);

/* A prediction file's contents. */
struct cv_pred_out {
    const float *probs;       /* (n, k) */
    long long n;              /* rows */
    int k;                    /* outputs */
    const int32_t *label;     /* (n) true class ids, or NULL */
    const char *const *names; /* (k, or k / steps per step) class names, or NULL */
    int steps;                /* T of a per-step model (k = T x classes), 0: none */
    const int32_t *lengths;   /* (n) valid steps of each row (per step), or NULL: all */
};

/* The predicted class is the argmax (k > 1) or p > 0.5; per step, the
 * argmax of each valid step's k / steps outputs.  Errors: CV_USAGE
 * (not .h5/.hdf5/.csv), CV_IO, CV_NOMEM; nothing is left at path on failure. */
cv_status cv_predictions_write(const char *path, const struct cv_pred_out *p, struct cv_error *err);

/* Collective: gather every rank's rows of probs (in->n, k), labels and
 * lengths on rank 0, which writes `path`; the status is agreed.  steps:
 * cv_model_output_steps() of the model (0: one prediction per row). */
cv_status cv_predictions_gather_write(const cv_comm *comm, const char *path,
                                      const struct cv_pred_input *in, const float *probs, int k,
                                      int steps, const char *const *names, struct cv_error *err);

/* HDF5 flavour, in predictions_h5.c (the file that includes <hdf5.h>):
 * creates a new temporary file next to path (its name into tmp, empty if
 * none was created) and writes it; the caller commits or removes it. */
cv_status cv__predictions_write_h5(const char *path, char *tmp, size_t size,
                                   const struct cv_pred_out *p, const int *pred,
                                   struct cv_error *err);

#endif /* CAVIAR_PREDICTIONS_H */
