/*
 * sweep_learn.h - private to sweep*.c: the strategies that learn from
 * results while the sweep runs.  TPE proposes a trial's hyperparameters
 * from the finished trials; PBT decides, at the end of a generation, which
 * members copy which (exploit) and with which perturbed values (explore).
 * Both are pure functions of their inputs and a seed (no MPI, no files),
 * so a resumed sweep decides exactly as the first run did.
 */
#ifndef CV_SWEEP_LEARN_H
#define CV_SWEEP_LEARN_H

#include <stdbool.h>
#include <stdint.h>

#include "caviar/sweep.h"

/* A value of d in the space where d is uniform (log, -log(1 - beta)), and back. */
double cv__sweep_to_flat(const struct cv_sweep_dim *d, double v);
double cv__sweep_from_flat(const struct cv_sweep_dim *d, double t);
/* The value text of results row r for key (NULL if it has none). */
const char *cv__sweep_param(const struct cv_result *r, const char *key);
/* "key=value\n" lines (a job's own values) appended to r->params. */
void cv__sweep_params_from_lines(const char *lines, struct cv_result *r);
/* v as results.jsonl keeps it ("%.9g"), so decisions made from a value
 * are the same when it is read back on resume. */
double cv__sweep_round(double v);
/* v formatted as d's values are ("%.6g", int, ...). */
void cv__sweep_format(const struct cv_sweep_dim *d, double v, char *buf, size_t size);

/* TPE (Bergstra et al. 2011; Optuna's univariate sampler): the finished
 * rows (value finite) split into the best gamma(n) = min(ceil(n / 10), 25)
 * and the rest; per key a Parzen estimator of each (truncated Gaussians at
 * the observations plus a prior over the whole range; a choice key: counts
 * plus a uniform prior); `candidates` draws from the good estimator, the one
 * with the largest log l(x) - log g(x) wins.  Writes "key=value\n" lines to
 * buf.  Seeded by (seed, trial). */
void cv__tpe_propose(const struct cv_sweep_dim *dims, int nd, const struct cv_result *rows, int n,
                     bool minimize, uint64_t seed, int trial, int candidates, char *buf,
                     size_t size);

/* PBT explore: params (the donor's "key=value\n" lines) perturbed key by key: with probability
 * `resample` a fresh draw, else numeric values times 0.8 or 1.2 (1 - beta
 * for one_minus_log_uniform keys), clamped to the range; a choice moves to
 * a neighbouring value.  Seeded by (seed, generation, member). */
void cv__pbt_perturb(const struct cv_sweep_dim *dims, int nd, const char *params, double resample,
                     uint64_t seed, int generation, int member, char *buf, size_t size);

/* PBT exploit: members ranked by value (NAN = failed, last); the bottom
 * max(1, floor(n * fraction)) each get a donor drawn from as many at the
 * top.  donor[i] = the member i copies, or -1.  n >= 2. */
void cv__pbt_pairs(const double *value, const bool *alive, int n, bool minimize, double fraction,
                   uint64_t seed, int generation, int *donor);

/* ---- the coordinator's side (world rank 0): sweep_learn.c ---- */

struct cv__learner;

/* For plans of strategy tpe or pbt (else *out = NULL, nothing to do).
 * results: the results.jsonl that exploit lines are appended to. */
cv_status cv__learner_create(const struct cv_sweep_plan *p, bool minimize, const char *metric,
                             const char *results, struct cv__learner **out, struct cv_error *err);
void cv__learner_free(struct cv__learner *l);
/* A results line, written now or replayed on resume: tpe models finished
 * ones; the trial's values become its current ones (pbt, resume). */
void cv__learner_observe(struct cv__learner *l, const struct cv_result *r);
/* Resume: a replayed line's values must lie in the space (a choice value
 * among its values, a number in its range); CV_CORRUPT naming path, the
 * trial and the key otherwise. */
cv_status cv__learner_check(const struct cv__learner *l, const struct cv_result *r,
                            const char *path, struct cv_error *err);
/* Before a job is handed out: pbt does a complete generation's exploit
 * step (checkpoints copied, lineage lines appended, the queue advanced). */
cv_status cv__learner_prepare(struct cv__learner *l, cv_queue *q, struct cv_error *err);
/* The values of a job handed out (job->params): its current ones, or for a
 * new tpe trial past the start-up, a proposal from the finished trials. */
cv_status cv__learner_params(struct cv__learner *l, struct cv_job *job, struct cv_error *err);

#endif /* CV_SWEEP_LEARN_H */
