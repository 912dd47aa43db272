/*
 * train.h - data-parallel training of one model over a replica group.
 *
 * Collective: every rank of `comm` calls cv_train_run with the same config.
 * Each rank reads its own shard, computes gradients on its part of every
 * global batch, the gradients are summed over the group after backward, and
 * every rank applies the same optimizer step, so replicas stay bit-identical
 * (checked at start and end).  Rank 0 prints progress during an epoch
 * (run.progress, src/progress.h), one line per epoch, appends JSON lines to
 * RUN_DIR/metrics.jsonl, writes RUN_DIR/model.h5 after every epoch (with
 * train.monitor: the best epoch's model, and RUN_DIR/last.h5 the last's) and
 * checkpoints to RUN_DIR/checkpoints/.  Early stopping ends the run (CV_OK)
 * on every rank after the same epoch.  Rank 0 holds RUN_DIR's lock for the
 * whole call (run_dir.h): a second job in the same directory fails at once,
 * naming the owner.
 */
#ifndef CAVIAR_TRAIN_H
#define CAVIAR_TRAIN_H

#include <signal.h>
#include <stdbool.h>

#include "caviar/comm.h"
#include "caviar/config.h"
#include "caviar/evaluate.h"
#include "caviar/status.h"

struct cv_train_opts {
    const char *resume_dir;      /* resume from the newest valid checkpoint here, or NULL */
    bool overwrite;              /* a fresh run may replace another run's files in run.dir
                                    (else they are an error, CV_CONFIG) */
    volatile sig_atomic_t *stop; /* set by a signal handler: checkpoint and stop */
    bool quiet;                  /* no per-epoch lines on stdout (sweeps) */
    const char *tag;             /* prefix of printed lines, e.g. "trial 3" */
    bool terminal;               /* stdout is a terminal: progress rewritten in place */
    int stop_at_epoch;           /* > 0: return after this many epochs (ASHA rungs) */
    long long stop_at_step;      /* > 0: return after this global step, within an epoch, with
                                    dev figures and a checkpoint (pbt sweep.ready_steps) */
    long long preempt_at_step;   /* > 0: behave as if signalled once this global step is
                                    done (deterministic preemption for tests) */
    void (*on_step)(void *arg);  /* called after every step on this rank, or NULL: the
                                    sweep coordinator serves requests here */
    void *on_step_arg;
    void (*on_epoch)(void *arg, const char *run_dir); /* rank 0, after each epoch's
                                    model.h5 is written, or NULL */
    void *on_epoch_arg;
    /* called on every rank at each start-up phase ("run_dir", "model", "data",
       "resume") just before it looks for a stop request, and before the
       checkpoint of a stop ("stop_checkpoint"), or NULL (tests raise
       signals here) */
    void (*on_phase)(const char *phase);
};

struct cv_train_result {
    double train_loss, train_accuracy; /* last epoch */
    double dev_loss, dev_accuracy;     /* last epoch, NAN without a dev split */
    double dev_fig[CV_FIG_COUNT];      /* last epoch's task figures on dev (evaluate.h) */
    int epochs_done;
    long long steps;
    double seconds;                 /* wall time of this call */
    double samples_per_s;           /* training throughput of this call */
    unsigned long long params_hash; /* FNV-1a of the final parameter arena */
    long long best_epoch;           /* train.monitor: 1-based best epoch (0: none) */
    double best_value;              /* its monitored value (NAN: none) */
    long long stopped_epoch;        /* early stopping fired after this epoch (0: not) */
    double best_last[4];            /* the best epoch's train loss/accuracy, dev loss/accuracy */
};

/* Train per cfg.  Returns CV_OK when the configured epochs are done (or
 * stop_at_epoch reached); CV_INTERRUPTED after a stop request was honoured
 * with a checkpoint written and verified by this call; CV_STOPPED after a
 * stop request during start-up, before any step (nothing written); or an
 * error agreed by all ranks (every rank returns it, the message in err) -
 * a failed checkpoint write too.  Collective. */
cv_status cv_train_run(const struct cv_config *cfg, const cv_comm *comm,
                       const struct cv_train_opts *opts, struct cv_train_result *res,
                       struct cv_error *err);

/* Find the newest checkpoint in RUN_DIR/checkpoints that verifies; report
 * skipped ones through `note` (may be NULL).  CV_IO if none. */
cv_status cv_train_find_checkpoint(const char *run_dir, char *path, size_t size,
                                   void (*note)(void *arg, const char *line), void *note_arg,
                                   struct cv_error *err);

#endif /* CAVIAR_TRAIN_H */
