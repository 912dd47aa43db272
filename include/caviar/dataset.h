/*
 * dataset.h - HDF5 datasets: probe, read a row range (one rank's shard),
 * write (import), all atomic and validated.
 *
 * Layout (docs/dataset-format.md): a split is an HDF5 group ("/" or e.g.
 * "/dev") holding /X (N x features; float32, or uint8 with a float `scale`
 * attribute: value = byte * scale), /y (N int32 class ids, or N x k float32
 * targets), attribute `classes` (int, 0 for regression targets), optional
 * `class_names` (string array) and `shape` (int[3], per-sample C,H,W).
 * Sequences: /X int32 (N x T) token ids with attribute `vocab_size`, or
 * float32 (N x T x F); optional /lengths (N int32 in [1, T]); /y per row,
 * or int32 (N x T) one class per step.  A split is named "file.h5" (root)
 * or "file.h5#group".
 *
 * Reading is independent per process (no collectives): rank r reads only its
 * own rows through an HDF5 hyperslab.
 */
#ifndef CAVIAR_DATASET_H
#define CAVIAR_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "caviar/status.h"

struct cv_dataset_info {
    long long n_rows; /* N */
    int features;     /* columns of /X */
    int classes;      /* > 0: /y holds int32 class ids in [0, classes); 0: float targets */
    int target_dim;   /* columns of /y (1 for class ids) */
    bool x_uint8;     /* /X stored as uint8 (scaled on read) */
    float scale;      /* uint8 scale (1 for float32) */
    int shape[3];     /* per-sample (C, H, W) if stored, else {features, 1, 1} */
    int steps;        /* T of a sequence /X (N x T ids, N x T x F floats), else 0 */
    int vocab_size;   /* > 0: /X holds token ids in [0, vocab_size) (features = T) */
    int pad_id;       /* attribute pad_id, -1 if none */
    bool has_lengths; /* /lengths holds each row's valid steps */
    int y_steps;      /* T of per-step class ids /y (N x T; target_dim = T), else 0 */
};

/* Read the metadata of split `spec` ("file.h5" or "file.h5#group").
 * Errors: CV_IO (missing/unreadable file), CV_FORMAT (no /X or /y, bad
 * ranks or types, row counts that differ), each naming file and dataset. */
cv_status cv_dataset_probe(const char *spec, struct cv_dataset_info *info, struct cv_error *err);

/* The `classes` names stored with split `spec` (attribute class_names),
 * or *names = NULL when it has none (or not as many).  *names is one block
 * for free().  Errors: those of cv_dataset_probe, CV_NOMEM. */
cv_status cv_dataset_class_names(const char *spec, int classes, char ***names,
                                 struct cv_error *err);

/* Read rows [row0, row0 + n) of split `spec` into caller buffers:
 * x (n x features floats, uint8 already multiplied by scale, token ids as
 * floats), and either y_class (n int32, when classes > 0) or y_vec
 * (n x target_dim floats).  The unused y pointer may be NULL.  Per-step
 * classes (y_steps > 0) are not read here (y_class is left alone): see
 * cv_dataset_read_step_classes.  Validates: every x and y_vec value finite
 * (CV_NONFINITE naming file, row and column), token ids in [0,
 * vocab_size), class ids in [0, classes) (CV_FORMAT naming file, dataset,
 * row and value). */
cv_status cv_dataset_read_rows(const char *spec, long long row0, long long n, float *x,
                               int32_t *y_class, float *y_vec, struct cv_error *err);

/* For predictions on data without labels: as cv_dataset_probe, but /y
 * (and `classes`) may be absent; *labeled says whether /y is there (it is
 * then checked as cv_dataset_probe checks it).  Training and eval keep
 * refusing such a split. */
cv_status cv_dataset_probe_features(const char *spec, struct cv_dataset_info *info, bool *labeled,
                                    struct cv_error *err);
/* Rows [row0, row0 + n) of /X alone, validated as cv_dataset_read_rows's. */
cv_status cv_dataset_read_features(const char *spec, long long row0, long long n, float *x,
                                   struct cv_error *err);
/* Per-step classes (y_steps > 0) of rows [row0, row0 + n) into y
 * (n x y_steps int32): each in [0, classes) up to its row's length, set to
 * -1 beyond it; lengths checked as cv_dataset_read_lengths.  CV_INVAL for
 * a split with one class per row; errors as cv_dataset_read_rows. */
cv_status cv_dataset_read_step_classes(const char *spec, long long row0, long long n, int32_t *y,
                                       struct cv_error *err);

/* Read /lengths of rows [row0, row0 + n) into len (n int32), each checked
 * in [1, steps]; all steps (T) when the split has no /lengths.  Errors as
 * cv_dataset_read_rows. */
cv_status cv_dataset_read_lengths(const char *spec, long long row0, long long n, int32_t *len,
                                  struct cv_error *err);

/* One split to write. Exactly one of x_u8 / x_f32 is set; exactly one of
 * y_class / y_vec. */
struct cv_split_out {
    const char *group; /* "/" for the root, or e.g. "dev" */
    long long n_rows;
    int features;
    const uint8_t *x_u8; /* n_rows x features, with scale */
    float scale;
    const float *x_f32;     /* n_rows x features */
    const int32_t *y_class; /* n_rows class ids */
    const float *y_vec;     /* n_rows x target_dim */
    int target_dim;
    int classes;                    /* 0 for float targets */
    const int *shape;               /* optional per-sample (C, H, W), NULL if none */
    const char *const *class_names; /* optional, `classes` entries, NULL if none */
};

/* Write splits into `path` atomically: a temporary file in the same
 * directory, flushed, fsynced and renamed over `path`.  Nothing is left at
 * `path` (or the old file survives) on failure. */
cv_status cv_dataset_write(const char *path, const struct cv_split_out *splits, int n_splits,
                           struct cv_error *err);

/* Every HDF5 file is read first by a checking process, before this
 * process's readers (datasets, models, checkpoints) call libhdf5 on it: a
 * file on which libhdf5 faults is then refused (CV_CORRUPT, naming it)
 * instead of crashing this process (src/h5_check.c).  `exe`: a caviar
 * executable to start for it (the tool sets itself); CV_H5_CHECK_FORK: a
 * fork of this process (only in a program that is not an MPI rank: MPI
 * may have registered its memory); NULL or "" (the default in a program
 * of your own): no check.  Setting it forgets the files checked so far. */
#define CV_H5_CHECK_FORK "fork"
void cv_h5_set_checker(const char *exe);

#endif /* CAVIAR_DATASET_H */
