/*
 * run_dir.h - a training run's directory, which rank 0 alone writes:
 *   RUN_DIR/model.h5                  the model after the latest epoch
 *   RUN_DIR/metrics.jsonl             one JSON line per epoch (the history)
 *   RUN_DIR/checkpoints/ckpt-STEP.h5  the newest checkpoint.keep checkpoints
 * Names, listing, pruning and the metric history live here; what goes into
 * the files is train.c's and checkpoint_h5.c's.
 */
#ifndef CV_RUN_DIR_H
#define CV_RUN_DIR_H

#include <stddef.h>

#include "caviar/status.h"

/* mkdir -p RUN_DIR/checkpoints, check it is writable, and remove the
 * temporaries of writes that a crash interrupted (never valid). */
cv_status cv__run_dir_make(const char *dir, struct cv_error *err);

/* "RUN_DIR/name" and "RUN_DIR/checkpoints/ckpt-<12-digit step>.h5" into out. */
void cv__run_dir_path(const char *dir, const char *name, char *out, size_t n);
void cv__run_dir_ckpt_path(const char *dir, long long step, char *out, size_t n);

/* Remove all but the newest `keep` checkpoints. */
void cv__run_dir_prune(const char *dir, int keep);

/* Append one line (a JSON object) to *history (owned, may be NULL). */
cv_status cv__history_append(char **history, const char *line, struct cv_error *err);
/* Replace RUN_DIR/metrics.jsonl with the history, atomically. */
cv_status cv__run_dir_write_metrics(const char *dir, const char *history, struct cv_error *err);

#endif /* CV_RUN_DIR_H */
