/*
 * sweep_progress.c - trials done / total, running, best so far and ETA of
 * a sweep (see sweep_progress.h).  The ETA is the pace of this run (trials
 * finished per second of wall time) applied to the trials left; an ASHA
 * trial that stays paused at a rung finishes early, so there it is an
 * upper bound.
 */
#include <math.h>
#include <stdlib.h>

#include "progress.h"
#include "sweep_progress.h"
#include "util.h"

bool cv__sweep_progress_init(struct cv_sweep_progress *p, int n_trials, bool minimize)
{
    *p = (struct cv_sweep_progress){.n_trials = n_trials, .best_trial = -1, .best = NAN};
    p->minimize = minimize;
    p->t0 = cv_now();
    p->final = cv_calloc(n_trials > 0 ? (size_t)n_trials : 1, sizeof(bool));
    return p->final != NULL;
}

void cv__sweep_progress_deinit(struct cv_sweep_progress *p)
{
    free(p->final);
    p->final = NULL;
}

void cv__sweep_progress_record(struct cv_sweep_progress *p, int trial, enum cv_job_status st,
                               double value, bool replayed)
{
    if (trial < 0 || trial >= p->n_trials || !p->final)
        return;
    bool done = st == CV_JOB_DONE, failed = st == CV_JOB_FAILED;
    if ((done || failed) && !p->final[trial]) {
        p->final[trial] = true;
        p->finished += done;
        p->failed += failed;
        p->finished_now += !replayed;
    }
    bool better = p->minimize ? value < p->best : value > p->best;
    if ((done || st == CV_JOB_PAUSED) && isfinite(value) && (p->best_trial < 0 || better)) {
        p->best = value;
        p->best_trial = trial;
    }
}

void cv__sweep_progress_print(const struct cv_sweep_progress *p, const char *kind,
                              const char *member, const char *metric, int running, FILE *f)
{
    int ended = p->finished + p->failed, left = p->n_trials - ended;
    double el = cv_now() - p->t0;
    double eta = p->finished_now > 0 ? el / p->finished_now * left : NAN;
    char d[32];
    fprintf(f, "%s: %d/%d %ss done", kind, ended, p->n_trials, member);
    if (p->failed)
        fprintf(f, " (%d failed)", p->failed);
    fprintf(f, ", %d running", running);
    if (p->best_trial >= 0)
        fprintf(f, ", best %s %.4f (%s %d)", metric, p->best, member, p->best_trial);
    if (left > 0)
        fprintf(f, ", ETA %s", cv__progress_duration(eta, d, sizeof(d)));
    fprintf(f, ", %s elapsed\n", cv__progress_duration(el, d, sizeof(d)));
    fflush(f);
}
