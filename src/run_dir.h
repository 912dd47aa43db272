/*
 * run_dir.h - a training run's directory, which rank 0 alone writes:
 *   RUN_DIR/.caviar.lock              the owner's lock (pid, host, start)
 *   RUN_DIR/model.h5                  the model after the latest epoch
 *   RUN_DIR/metrics.jsonl             one JSON line per epoch (the history)
 *   RUN_DIR/checkpoints/ckpt-STEP.h5  the newest checkpoint.keep checkpoints
 * Names, listing, pruning and the metric history live here; what goes into
 * the files is train.c's and checkpoint_h5.c's.
 */
#ifndef CV_RUN_DIR_H
#define CV_RUN_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "caviar/status.h"

/* The lock file in every directory caviar owns (run, sweep, ensemble). */
#define CV_LOCK_NAME ".caviar.lock"

/* Take DIR's lock: flock on DIR/.caviar.lock (created without following a
 * symlink), exclusive, or shared for jobs that may share DIR (sweep job
 * array tasks).  The exclusive holder writes "pid P on host H since T
 * (what)" into the file.  The lock lives as long as *fd, and the kernel
 * drops it when the process dies, so a crashed job never leaves it stuck.
 * CV_IO naming DIR and the owner when another job holds it.  On a
 * filesystem without locks, CV_OK without a lock (*fd may still be open).
 * Only one rank of a job should call it (rank 0, which alone writes). */
cv_status cv__dir_lock(const char *dir, bool shared, const char *what, int *fd,
                       struct cv_error *err);
/* Release (close) a lock from cv__dir_lock; -1 does nothing. */
void cv__dir_unlock(int fd);

/* What a training run may find in its directory. */
enum cv_run_mode {
    CV_RUN_FRESH,     /* another run's files are an error (CV_CONFIG) */
    CV_RUN_CONTINUE,  /* --resume / run.resume=auto: they are this run's */
    CV_RUN_OVERWRITE, /* --overwrite: they are removed */
};

/* Rank 0: mkdir -p RUN_DIR, take its lock (*lock_fd, for cv__dir_unlock),
 * make RUN_DIR/checkpoints (refusing a symlink there), apply `mode` to
 * another run's model.h5, metrics.jsonl and checkpoints, and remove the
 * temporaries of writes that a crash interrupted (never valid). */
cv_status cv__run_dir_make(const char *dir, enum cv_run_mode mode, int *lock_fd,
                           struct cv_error *err);

/* "RUN_DIR/name" and "RUN_DIR/checkpoints/ckpt-<12-digit step>.h5" into out. */
void cv__run_dir_path(const char *dir, const char *name, char *out, size_t n);
void cv__run_dir_ckpt_path(const char *dir, long long step, char *out, size_t n);

/* Remove a run's model.h5, metrics.jsonl and checkpoints (--overwrite). */
void cv__run_dir_clear(const char *dir);

/* Remove all but the newest `keep` checkpoints. */
void cv__run_dir_prune(const char *dir, int keep);

/* Append one line (a JSON object) to *history (owned, may be NULL). */
cv_status cv__history_append(char **history, const char *line, struct cv_error *err);
/* Replace RUN_DIR/metrics.jsonl with the history, atomically. */
cv_status cv__run_dir_write_metrics(const char *dir, const char *history, struct cv_error *err);

#endif /* CV_RUN_DIR_H */
