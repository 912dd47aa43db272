/*
 * report.h - `caviar report`: one self-contained HTML page (inline SVG and
 * CSS, no script, no network) about run directories, to open from a laptop
 * after scp.  For a training run: loss and accuracy (train and dev), the
 * learning rate and samples/s per epoch, the evaluation of model.h5 on the
 * dev split (confusion heat map with class names, per-class precision /
 * recall / F1, or the figures of a multi-label or regression task) and the
 * config.  For a sweep: the results table sorted by the metric, the metric
 * against each hyperparameter, parallel coordinates, ASHA's rungs and the
 * best trial.  For an ensemble: each member against the ensemble and their
 * agreement.  Several directories: their curves overlaid as well.
 * Not collective: one process reads and evaluates everything.
 */
#ifndef CAVIAR_REPORT_H
#define CAVIAR_REPORT_H

#include <stddef.h>

#include "caviar/status.h"

/* What a directory holds. */
enum cv_report_kind {
    CV_REPORT_NONE,    /* none of the below */
    CV_REPORT_RUN,     /* metrics.jsonl or model.h5 */
    CV_REPORT_SWEEP,   /* results.jsonl + config.yaml, or sweep/ holding them */
    CV_REPORT_ENSEMBLE /* the same with members.txt, or ensemble/ */
};

/* The kind of dir; *sub receives the directory the kind's files are in
 * (dir, or dir/sweep, dir/ensemble). */
enum cv_report_kind cv_report_kind_of(const char *dir, char *sub, size_t size);

/* Write the page about dirs[0..n) to `out`, atomically (a temporary file
 * renamed over it).  A directory that is none of the kinds is CV_USAGE
 * naming it; missing or damaged parts (a truncated metrics.jsonl, a sweep
 * with no finished trial, data moved away) are said on the page instead.
 * Errors: CV_USAGE, CV_IO (writing out), CV_NOMEM. */
cv_status cv_report_write(const char *const *dirs, int n, const char *out, struct cv_error *err);

#endif /* CAVIAR_REPORT_H */
