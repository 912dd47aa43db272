/*
 * predictions.h - writing a model's outputs: HDF5 (/probabilities N x k,
 * /predicted N int32) or CSV (row,predicted,p0..pk-1), chosen by the file
 * extension, replaced atomically (temporary file, fsync, rename).
 */
#ifndef CAVIAR_PREDICTIONS_H
#define CAVIAR_PREDICTIONS_H

#include <stddef.h>

#include "caviar/status.h"

/* probs: (n, k).  The predicted class is the argmax (k > 1) or p > 0.5. */
cv_status cv_predictions_write(const char *path, const float *probs, long long n, int k,
                               struct cv_error *err);

/* HDF5 flavour, in predictions_h5.c (the file that includes <hdf5.h>):
 * creates a new temporary file next to path (its name into tmp, empty if
 * none was created) and writes it; the caller commits or removes it. */
cv_status cv__predictions_write_h5(const char *path, char *tmp, size_t size, const float *probs,
                                   const int *pred, long long n, int k, struct cv_error *err);

#endif /* CAVIAR_PREDICTIONS_H */
