/*
 * sweep.h - many models trained at once in one MPI job: hyperparameter
 * sweeps (grid, seeded random, ASHA, TPE, PBT) and ensembles.
 *
 *   plan    the trials: each is the base config plus `key=value` overrides
 *           (sampled from sweep.space, a grid point, or an ensemble seed);
 *   queue   which trial a free group trains next and up to which epoch
 *           (pure bookkeeping, no MPI: unit-tested on its own); tpe and
 *           pbt also decide a job's values as the sweep runs (job.params,
 *           src/sweep_learn.h);
 *   driver  the job's P ranks form P/k groups (k = sweep.ranks_per_trial);
 *           each group trains one job at a time, data parallel inside the
 *           group.  World rank 0 is also the coordinator: it answers the
 *           groups' requests between its own training steps (no rank of its
 *           own, no polling core) and appends RUN_DIR/<kind>/results.jsonl;
 *   results results.jsonl lines read back for resume, --collect, --refine,
 *           the summary table and best.yaml.
 */
#ifndef CAVIAR_SWEEP_H
#define CAVIAR_SWEEP_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "caviar/comm.h"
#include "caviar/config.h"
#include "caviar/evaluate.h"
#include "caviar/status.h"

/* ---- plan ---- */

struct cv_sweep_plan {
    const struct cv_config *base; /* borrowed; its text is every trial's starting point */
    char dir[CV_PATH_MAX];        /* RUN_DIR/sweep or RUN_DIR/ensemble */
    const char *member;           /* trial directory prefix: "trial" or "member" */
    enum cv_strategy strategy;    /* asha runs trials in rungs, others to the end */
    int n_trials;
    char ***over; /* over[i][j]: "key=value" of trial i (owned) */
    int *n_over;
    int *n_params; /* the first n_params[i] overrides are its hyperparameters */
};

/* Sample/enumerate the trials of cfg->sweep (random: sweep.trials seeded
 * draws; grid: every point, all keys choice or int_uniform; asha: random).
 * Errors (CV_CONFIG) name the key: empty space, a grid over a continuous
 * key, a key the config does not accept (each trial's config is parsed). */
cv_status cv_sweep_plan_sample(const struct cv_config *cfg, struct cv_sweep_plan **out,
                               struct cv_error *err);
/* An ensemble of `members` trials of cfg differing in train.seed (seed + i),
 * or, with rows != NULL, the given results rows' hyperparameters. */
struct cv_result;
cv_status cv_sweep_plan_members(const struct cv_config *cfg, int members,
                                const struct cv_result *rows, struct cv_sweep_plan **out,
                                struct cv_error *err);
void cv_sweep_plan_free(struct cv_sweep_plan *p);

/* The config of trial i: base text + its overrides + run.dir = its
 * directory + run.resume = auto (a re-run continues from its checkpoint). */
cv_status cv_sweep_trial_config(const struct cv_sweep_plan *p, int i, struct cv_config **out,
                                struct cv_error *err);
void cv_sweep_trial_dir(const struct cv_sweep_plan *p, int i, char *buf, size_t size);

/* One draw of dimension d for trial `trial` (random strategy), as text. */
void cv_sweep_sample_dim(const struct cv_sweep_dim *d, uint64_t seed, int trial, char *buf,
                         size_t size);

/* ---- queue ---- */

/* CV_JOB_EXPLOIT is not a job's end but a PBT lineage line: the member
 * copied `parent` after generation `rung` and goes on with new params. */
enum cv_job_status {
    CV_JOB_DONE,
    CV_JOB_PAUSED,
    CV_JOB_FAILED,
    CV_JOB_INTERRUPTED,
    CV_JOB_EXPLOIT
};

#define CV_JOB_PARAMS 12288

struct cv_job {
    int trial;
    int rung;                   /* asha rung, pbt generation; 0 for grid/random/tpe */
    int epochs;                 /* train up to this epoch; 0 = the trial config's */
    long long steps;            /* > 0: up to this global step instead (sweep.ready_steps) */
    char params[CV_JOB_PARAMS]; /* tpe, pbt: "key=value\n" lines that replace the plan's
                                   hyperparameters of the trial; "" = the plan's */
};

/* The config of a job: as cv_sweep_trial_config, with job->params (tpe,
 * pbt) in place of the plan's hyperparameters when non-empty. */
cv_status cv_sweep_job_config(const struct cv_sweep_plan *p, const struct cv_job *job,
                              struct cv_config **out, struct cv_error *err);
enum cv_queue_answer { CV_QUEUE_RUN, CV_QUEUE_WAIT, CV_QUEUE_DONE };

typedef struct cv_queue cv_queue;

/* strategy asha: rungs at min_epochs * eta^k epochs, the last at
 * max_epochs; pbt: generations every min_epochs (= sweep.ready) epochs up
 * to max_epochs (CV_CONFIG if more than 64); grid/random/tpe: one job per
 * trial.  budget > 0 caps the epochs
 * handed out (a job costs its epochs minus those its trial already has). */
cv_status cv_queue_create(int n_trials, enum cv_strategy strategy, int eta, int min_epochs,
                          int max_epochs, bool minimize, long long budget, cv_queue **out,
                          struct cv_error *err);
void cv_queue_free(cv_queue *q);
/* The next job, or WAIT (jobs are running whose results may open promotions)
 * or DONE (nothing will be handed out again). */
enum cv_queue_answer cv_queue_next(cv_queue *q, struct cv_job *job);
/* A handed-out job ended.  INTERRUPTED puts it back (a resumed sweep reruns
 * it); DONE/PAUSED record the metric; FAILED rules the trial out. */
void cv_queue_report(cv_queue *q, const struct cv_job *job, enum cv_job_status st, double metric);
/* Replay a result of an earlier (interrupted) run of the sweep. */
void cv_queue_replay(cv_queue *q, const struct cv_job *job, enum cv_job_status st, double metric);
int cv_queue_rungs(const cv_queue *q, int *epochs, int max);
/* pbt: the generation that is complete and waits for its exploit step
 * (then cv_queue_next says WAIT until cv_queue_pbt_advance), or -1. */
int cv_queue_pbt_pending(const cv_queue *q);
/* pbt: each member's value at generation k (NAN: failed) and whether it
 * takes part (trained generation k; members finished early do not). */
void cv_queue_pbt_members(const cv_queue *q, int k, double *value, bool *alive);
/* pbt: the exploit step is done (donor[i] >= 0: member i copied donor[i],
 * so a failed member goes on); the next generation may start. */
void cv_queue_pbt_advance(cv_queue *q, const int *donor);
long long cv_queue_epochs_spent(const cv_queue *q);
int cv_queue_running(const cv_queue *q);

/* ---- results ---- */

struct cv_result {
    int trial, rung, epochs; /* epochs: epochs trained when the line was written */
    long long steps;         /* pbt with sweep.ready_steps: global steps trained, else 0 */
    enum cv_job_status status;
    double value; /* the sweep metric (NAN if failed) */
    double train_loss, train_accuracy, dev_loss, dev_accuracy, seconds;
    char message[256]; /* failure reason */
    int n_params;
    struct {
        char key[CV_KEY_MAX];
        char value[1024]; /* YAML text, as given to the override */
    } params[CV_MAX_SWEEP + 2];
    char model[CV_PATH_MAX]; /* the trial's model.h5 */
    int parent;              /* exploit lines: the member copied (else -1) */
    double parent_value;     /* exploit lines: its value at that generation */
};

const char *cv_job_status_name(enum cv_job_status s);
/* "random", "grid", "asha", "tpe", "pbt". */
const char *cv_strategy_name(enum cv_strategy s);
/* Append one line (one write(), then fsync) to path. */
cv_status cv_result_append(const char *path, const struct cv_result *r, const char *metric,
                           struct cv_error *err);
/* Read every line of path; *rows malloc'd.  A torn last line (killed
 * mid-write) is skipped; any other bad line is CV_CORRUPT naming path:line. */
cv_status cv_results_read(const char *path, struct cv_result **rows, int *n, struct cv_error *err);
/* The best line of each trial (its last, highest rung; exploit lines do
 * not count), sorted best first by value (failed last); returns the count. */
int cv_results_best_per_trial(struct cv_result *rows, int n, bool minimize);
/* pbt: where member's final model comes from.  line[k] = the index in
 * rows of the job line whose training at generation k led to it (its own,
 * or before a copy the donor's, and so on back); returns the number of
 * generations, 0 if the history is incomplete or longer than max.  The
 * params of those lines are the member's whole schedule of values. */
int cv_results_pbt_ancestry(const struct cv_result *rows, int n, int member, int *line, int max);
/* The summary table. */
void cv_results_print(const struct cv_result *rows, int n, const char *metric, FILE *f);

/* ---- driver ---- */

struct cv_job_outcome {
    enum cv_job_status status;
    int epochs_done;
    long long steps; /* global steps trained */
    double train_loss, train_accuracy, dev_loss, dev_accuracy, seconds;
    double dev_fig[CV_FIG_COUNT]; /* the task's figures on dev (caviar/evaluate.h) */
    char message[256];
};

/* Trains one job; collective over `group`; fills *out on the group's rank
 * 0.  `poll` (non-NULL on world rank 0 only) must be called often while
 * training (cv_train_opts.on_step) so the coordinator keeps answering.
 * Returning an error other than for the job (e.g. CV_MPI) ends the sweep. */
typedef cv_status (*cv_job_runner)(void *arg, const cv_comm *group,
                                   const struct cv_sweep_plan *plan, const struct cv_job *job,
                                   void (*poll)(void *), void *poll_arg, struct cv_job_outcome *out,
                                   struct cv_error *err);

/* The runner that trains: arg is the stop flag (volatile sig_atomic_t *). */
cv_status cv_sweep_train_job(void *arg, const cv_comm *group, const struct cv_sweep_plan *plan,
                             const struct cv_job *job, void (*poll)(void *), void *poll_arg,
                             struct cv_job_outcome *out, struct cv_error *err);

struct cv_sweep_opts {
    int ranks_per_trial;
    const char *metric; /* "dev.accuracy", "dev.loss", "train.accuracy", "train.loss" */
    bool minimize;
    int eta, min_epochs, max_epochs;
    int steps_per_epoch; /* pbt with sweep.ready_steps: min/max_epochs count global steps, an
                            epoch of this many; 0: they count epochs */
    long long budget;    /* total epochs, 0 = no cap */
    bool resume;         /* continue results.jsonl of an interrupted sweep */
    bool overwrite;      /* start afresh: remove an earlier sweep's results and runs */
    volatile sig_atomic_t *stop; /* set by a signal: finish with checkpoints, exit 75 */
    bool quiet;                  /* no per-job lines */
};

struct cv_sweep_summary {
    int jobs, done, failed, interrupted;
    long long epochs; /* epochs trained by this run */
    double seconds;
};

/* Collective over world.  Validation errors come before any training, on
 * every rank.  Returns CV_INTERRUPTED if stopped by a signal. */
cv_status cv_sweep_run(const struct cv_sweep_plan *plan, const cv_comm *world,
                       const struct cv_sweep_opts *opts, cv_job_runner run, void *run_arg,
                       struct cv_sweep_summary *sum, struct cv_error *err);

/* How a job uses RUN_DIR/<kind>. */
enum cv_sweep_dir_use {
    CV_SWEEP_DIR_NEW,       /* a fresh sweep: an existing results.jsonl is an error */
    CV_SWEEP_DIR_CONTINUE,  /* --resume, --collect: keep what is there */
    CV_SWEEP_DIR_OVERWRITE, /* --overwrite: remove the results, config and trials' runs */
    CV_SWEEP_DIR_SHARED,    /* a --trial task: keep, and share the lock with the others */
};

/* pbt with sweep.ready_steps: the global steps of one epoch of a member
 * (its ranks_per_trial ranks share train.batch), from the training split's
 * rows.  CV_CONFIG if max_epochs of them exceed 2^31 - 1. */
cv_status cv_sweep_pbt_epoch_steps(const struct cv_config *cfg, int *steps, struct cv_error *err);

/* One rank: make RUN_DIR/<kind> and its trial directories (a symlink at
 * one is refused), take RUN_DIR/<kind>'s lock (shared for
 * CV_SWEEP_DIR_SHARED, else exclusive; *lock_fd, for cv__dir_unlock in
 * run_dir.h; CV_IO naming the owner if another job holds it), apply `use`,
 * and check config.yaml is this config's (writing it the first time).
 * CV_SWEEP_DIR_NEW with an existing results.jsonl is an error (CV_CONFIG:
 * a finished or interrupted run: resume it, overwrite it, or use another
 * run.dir). */
cv_status cv_sweep_prepare_dir(const struct cv_sweep_plan *p, enum cv_sweep_dir_use use,
                               int *lock_fd, struct cv_error *err);
/* The results line of a job's outcome. */
void cv_sweep_result(const struct cv_sweep_plan *p, const struct cv_job *job,
                     const struct cv_job_outcome *o, const char *metric, struct cv_result *r);
/* The config of a results row: base text + its hyperparameters + run.dir. */
cv_status cv_sweep_row_config(const struct cv_config *base, const struct cv_result *r,
                              const char *run_dir, struct cv_config **out, struct cv_error *err);
/* pbt: the config that replays `member`'s whole history as one plain run:
 * the first generation's values, and train.schedule with every later
 * value from the epoch it took effect (the values of its ancestors before
 * each copy).  *out NULL (CV_OK) with `why` when that cannot be: a key of
 * the space that train.schedule cannot change took several values, or the
 * lineage is incomplete. */
cv_status cv_sweep_pbt_replay_config(const struct cv_config *base, const struct cv_result *rows,
                                     int n, int member, const char *run_dir, struct cv_config **out,
                                     char *why, size_t why_size, struct cv_error *err);
/* Coarse to fine: a copy of cfg whose sweep.space is narrowed around the
 * `top` best finished rows (sorted best first): numeric keys to the span of
 * their values padded by half of it (at least 5% of the old range, log and
 * 1 - beta keys in log space), clamped to the old bounds; choice keys to the
 * values that occur. */
cv_status cv_sweep_refine(const struct cv_config *cfg, const struct cv_result *rows, int n, int top,
                          struct cv_config **out, struct cv_error *err);

/* The metric value of an outcome by name (dev.accuracy, dev.loss,
 * train.accuracy, train.loss, or dev.<figure> of caviar/evaluate.h: dev.f1,
 * dev.mae, ...); NAN for an unknown name. */
double cv_outcome_metric(const struct cv_job_outcome *o, const char *metric);
bool cv_metric_known(const char *metric);

#endif /* CAVIAR_SWEEP_H */
