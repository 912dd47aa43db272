/*
 * progress.h - rank 0's progress line during an epoch: step / steps,
 * samples/s, the running loss and the ETA of the epoch and of the run.
 * On a terminal one line is rewritten in place; otherwise (a SLURM log, a
 * file) a plain line is printed every run.progress seconds or every
 * run.progress_steps steps.  A step costs one clock read and a compare;
 * nothing is allocated or printed unless a line is due.
 */
#ifndef CV_PROGRESS_H
#define CV_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

struct cv_progress {
    FILE *out;             /* where lines go (borrowed), NULL = off */
    bool tty;              /* rewrite one line in place */
    const char *tag;       /* line prefix, e.g. "trial 3", or NULL */
    double every_s;        /* seconds between lines */
    long long every_steps; /* > 0: a line every so many steps instead */
    double t_epoch;        /* when this epoch (or this call) started */
    double t_run;          /* when this call started */
    double next_due;       /* clock time of the next line */
    long long step0;       /* epoch step at t_epoch (a resumed epoch starts late) */
    long long run_steps;   /* global steps trained by this call */
    bool dirty;            /* an in-place line is showing */
};

/* Off unless out != NULL and every_s > 0 or every_steps > 0; on a
 * terminal (tty) the line is rewritten twice a second (or every
 * every_steps steps) instead of printed anew. */
void cv__progress_init(struct cv_progress *p, FILE *out, bool tty, const char *tag, double every_s,
                       long long every_steps);

/* An epoch begins at epoch step `step0` (non-zero after a resume). */
void cv__progress_epoch(struct cv_progress *p, long long step0);

struct cv_progress_at {
    int epoch, epochs;     /* 1-based epoch, of how many */
    long long step, steps; /* steps done in this epoch, of how many */
    long long left;        /* global steps left in the run after this epoch */
    long long samples;     /* global samples trained in this epoch by this call */
    double loss;           /* running mean loss of the epoch (rank 0's rows) */
};

/* True when a line is due after a step; cheap, for every step. */
bool cv__progress_due(struct cv_progress *p, long long epoch_step);
/* Print the due line and schedule the next one. */
void cv__progress_print(struct cv_progress *p, const struct cv_progress_at *at);
/* Clear an in-place line before the epoch line is printed. */
void cv__progress_clear(struct cv_progress *p);

/* "1h02m", "3m05s", "42s" into buf: a duration for humans. */
const char *cv__progress_duration(double s, char *buf, size_t n);

#endif /* CV_PROGRESS_H */
