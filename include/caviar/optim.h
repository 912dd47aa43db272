/*
 * optim.h - optimizers over the flat parameter arena: SGD, momentum,
 * RMSprop, Adam with bias correction, SGD with Nesterov momentum (PyTorch's
 * form) and AdamW (decoupled weight decay); L2 (lambda/m * W added to dW,
 * m = samples in the global batch, weights only) is part of the gradient,
 * AdamW's decay is not; optional global gradient-norm clipping; per-layer
 * learning-rate factors (frozen layers); learning-rate schedules
 * (src/lr_schedule.c).  Every rank runs the same
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

/* Learning rate for 0-based `epoch` under train.decay, counted from the end
 * of an epoch warmup; reduce-on-plateau is the trainer's (it follows the
 * monitored metric: src/recipe.h), so kind plateau returns train.lr. */
double cv_optim_lr(const struct cv_config *cfg, int epoch);

/* Linear warmup factor of the 0-based global `step`: (step + 1) / W within
 * the first W steps (train.warmup.steps, or warmup.epochs x steps_per_epoch),
 * 1 after and without warmup. */
double cv_optim_warmup(const struct cv_config *cfg, long long step, long long steps_per_epoch);

/* Per-parameter learning-rate factors (n_params floats, copied; 0 freezes a
 * parameter: no update, its moments stay zero, its gradient is left out of
 * the clipping norm), or NULL for none.  Errors: CV_NOMEM. */
cv_status cv_optim_set_lr_scale(cv_optim *o, const float *scale, struct cv_error *err);
/* Change beta1, beta2, l2 and weight_decay (used by adamw only) between
 * steps, as train.schedule does from an epoch on; the moments are kept. */
void cv_optim_set_hyper(cv_optim *o, double beta1, double beta2, double l2, double weight_decay);

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
