/*
 * transfer.h - transfer learning: start a model from a trained one
 * (model.init_from) and the per-parameter learning-rate factors of frozen
 * (trainable: false) and loaded layers.  Layers match by their checkpoint
 * path (index and type, "layers/03_dense") and the shape of every array, so
 * a new head of another width is left to its fresh initialisation.
 */
#ifndef CV_TRANSFER_H
#define CV_TRANSFER_H

#include <stdbool.h>

#include "caviar/model.h"
#include "caviar/status.h"

/* Copy from the model file `path` into m the parameters and state of every
 * top-level layer whose arrays all match by path and shape, and the input
 * normalisation when the input sizes match (copy false: only find which
 * layers match, e.g. on resume).  loaded[i] (model.n_layers) is set for
 * the layers that match; `note` gets one summary line per layer (may be
 * NULL).  Errors: those of cv_ckpt_open_model; CV_CONFIG when no layer
 * matches. */
cv_status cv__transfer_load(cv_model *m, const char *path, bool copy, bool *loaded,
                            void (*note)(void *arg, const char *line), void *note_arg,
                            struct cv_error *err);

/* scale (n_params): 0 for the parameters of frozen layers, lr_loaded for
 * those of loaded layers (loaded may be NULL), 1 elsewhere.  Returns true
 * when some factor is not 1 (the optimizer then needs them). */
bool cv__transfer_lr_scale(const cv_model *m, const bool *loaded, float *scale);

#endif /* CV_TRANSFER_H */
