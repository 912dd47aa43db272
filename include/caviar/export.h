/*
 * export.h - a trained model out of caviar: ONNX (docs/export.md).
 *
 * The ONNX graph computes what cv_model_predict computes after the model's
 * input normalisation: graph input "input" holds raw samples, (N, C, H, W)
 * for an image model (model.input: [C, H, W]) or (N, F) (model.input: [F]);
 * graph output "probabilities" is (N, outputs), the final activation
 * (softmax / sigmoid) included.  Opset CV_ONNX_OPSET, IR version
 * CV_ONNX_IR_VERSION, float32 throughout, the batch dimension named "N".
 */
#ifndef CAVIAR_EXPORT_H
#define CAVIAR_EXPORT_H

#include "caviar/model.h"
#include "caviar/status.h"

#define CV_ONNX_OPSET      13
#define CV_ONNX_IR_VERSION 7

/* Write model m (parameters, batch-norm statistics and normalisation as
 * they are now) to `path` as an ONNX model, atomically (a temporary file
 * next to it, fsync, rename): on failure nothing is left at `path` that was
 * not there before.  Errors: CV_INVAL naming a layer that has no ONNX form
 * (before anything is written), CV_IO naming the file, CV_NOMEM.  Local: no
 * MPI, reads m only. */
cv_status cv_export_onnx(cv_model *m, const char *path, struct cv_error *err);

#endif /* CAVIAR_EXPORT_H */
