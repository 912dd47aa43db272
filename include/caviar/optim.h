/*
 * optim.h - optimizers over the flat parameter arena: SGD, momentum,
 * RMSprop, Adam with bias correction; L2 weight decay (lambda/m * W added
 * to dW, m = samples in the global batch, weights only); optional global
 * gradient-norm clipping; learning-rate schedules.  Every rank runs the same
 * step on the same (allreduced) gradients, so replicas stay bit-identical.
 */
#ifndef CAVIAR_OPTIM_H
#define CAVIAR_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

#include "caviar/config.h"
#include "caviar/model.h"
#include "caviar/status.h"

typedef struct cv_optim cv_optim;

/* Create the optimizer for model m (moments zeroed, t = 0). */
cv_status cv_optim_create(const struct cv_config *cfg, cv_model *m, cv_optim **out,
                          struct cv_error *err);
void cv_optim_free(cv_optim *o); /* NULL is harmless */

/* Learning rate for 0-based `epoch` under the configured schedule. */
double cv_optim_lr(const struct cv_config *cfg, int epoch);

/* One update: params -= f(grads + L2), with global batch `count` for the
 * L2 term.  grads may be modified (clipping).  Returns the gradient norm
 * before clipping when train.clip_norm > 0 (0 otherwise: the norm costs a
 * pass over the arena and is only needed for clipping). */
double cv_optim_step(cv_optim *o, float *params, float *grads, double lr, long long count);

/* The same update for parameters [lo, hi) only (a sharded optimizer: each
 * rank updates its slice); grads[i] is the gradient of parameter lo + i.
 * With clipping the norm must be global: sum_sq(arg, partial) returns the
 * sum over ranks of the partial squared norms (NULL: one rank holds all).
 * Call it once per step on every rank (it advances the step counter). */
double cv_optim_step_part(cv_optim *o, float *params, float *grads, size_t lo, size_t hi, double lr,
                          long long count, double (*sum_sq)(void *arg, double partial), void *arg);

/* Optimizer state for checkpoints: moment arenas (NULL when unused) and the
 * bias-correction step counter. */
size_t cv_optim_size(const cv_optim *o);
float *cv_optim_m1(cv_optim *o); /* momentum / Adam first moment */
float *cv_optim_m2(cv_optim *o); /* RMSprop / Adam second moment */
long long cv_optim_t(const cv_optim *o);
void cv_optim_set_t(cv_optim *o, long long t);

#endif /* CAVIAR_OPTIM_H */
