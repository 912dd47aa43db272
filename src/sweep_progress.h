/*
 * sweep_progress.h - the coordinator's view of a sweep or ensemble for its
 * log: trials finished / total, running, best so far and an ETA, printed
 * after every result line.  Bookkeeping only (no MPI, no files).
 */
#ifndef CV_SWEEP_PROGRESS_H
#define CV_SWEEP_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "caviar/sweep.h"

struct cv_sweep_progress {
    int n_trials;     /* trials of the plan */
    bool *final;      /* (n_trials) the trial finished or failed */
    int finished;     /* trials done to their last epoch */
    int failed;       /* trials ruled out by a failure */
    int best_trial;   /* -1 until a trial reports a metric */
    double best;      /* its metric */
    bool minimize;    /* direction of the metric */
    double t0;        /* when this run of the sweep began */
    int finished_now; /* trials that finished in this run (for the ETA) */
};

/* Returns false when out of memory. */
bool cv__sweep_progress_init(struct cv_sweep_progress *p, int n_trials, bool minimize);
void cv__sweep_progress_deinit(struct cv_sweep_progress *p);

/* A result line: status and metric of trial's job.  `replayed`: read back
 * from an interrupted run (not counted in the ETA's pace). */
void cv__sweep_progress_record(struct cv_sweep_progress *p, int trial, enum cv_job_status st,
                               double value, bool replayed);

/* "sweep: 3/8 trials done (1 failed), 2 running, best dev.accuracy 0.8123
 * (trial 4), ETA 1m10s" */
void cv__sweep_progress_print(const struct cv_sweep_progress *p, const char *kind,
                              const char *member, const char *metric, int running, FILE *f);

#endif /* CV_SWEEP_PROGRESS_H */
