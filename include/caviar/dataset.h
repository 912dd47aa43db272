/*
 * dataset.h - HDF5 datasets: probe, read a row range (one rank's shard),
 * write (import), all atomic and validated.
 *
 * Layout (docs/dataset-format.md): a split is an HDF5 group ("/" or e.g.
 * "/dev") holding /X (N x features; float32, or uint8 with a float `scale`
 * attribute: value = byte * scale), /y (N int32 class ids, or N x k float32
 * targets), attribute `classes` (int, 0 for regression targets), optional
 * `class_names` (string array) and `shape` (int[3], per-sample C,H,W).
 * A split is named "file.h5" (root) or "file.h5#group".
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
 * x (n x features floats, uint8 already multiplied by scale), and either
 * y_class (n int32, when classes > 0) or y_vec (n x target_dim floats).
 * The unused y pointer may be NULL.  Validates: every x and y_vec value
 * finite (CV_NONFINITE naming file, row and column), class ids in
 * [0, classes) (CV_FORMAT naming file, row and value). */
cv_status cv_dataset_read_rows(const char *spec, long long row0, long long n, float *x,
                               int32_t *y_class, float *y_vec, struct cv_error *err);

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
