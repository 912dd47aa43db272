/*
 * lr_schedule.c - the learning rate of an epoch (train.decay) and the
 * linear warmup in front of it.  Pure functions of the config, the epoch and
 * the step, so every rank computes the same rate and a resumed run the same
 * one.  Reduce-on-plateau depends on the monitored metric and lives with
 * the other epoch-end decisions in recipe.c.
 */
#include <math.h>

#include "caviar/optim.h"

#define PI 3.14159265358979323846

/* Cosine annealing from train.lr to decay.floor over T epochs, restarted
 * every decay.restart epochs (each cycle restart_mult times longer) when set.
 * ref: Loshchilov & Hutter 2017 (SGDR); PyTorch CosineAnnealingLR and
 * CosineAnnealingWarmRestarts (epoch-wise) give the same rates. */
static double cosine(const struct cv_config *cfg, int e, int horizon)
{
    double a0 = cfg->train.lr, lo = cfg->train.decay_floor;
    long long t = e, len = horizon > 0 ? horizon : 1;
    int mult = cfg->train.decay_restart_mult > 1 ? cfg->train.decay_restart_mult : 1;
    if (cfg->train.decay_restart > 0)
        for (len = cfg->train.decay_restart; t >= len; len *= mult)
            t -= len;
    return lo + (a0 - lo) * (1.0 + cos(PI * (double)t / (double)len)) / 2.0;
}

double cv_optim_lr(const struct cv_config *cfg, int epoch)
{
    double a0 = cfg->train.lr, r = cfg->train.decay_rate;
    int e = epoch - cfg->train.warmup_epochs;
    e = e > 0 ? e : 0;
    switch (cfg->train.decay) {
    case CV_DECAY_CONSTANT:
    case CV_DECAY_PLATEAU:
        return a0;
    case CV_DECAY_INVERSE_TIME:
        return a0 / (1.0 + r * e);
    case CV_DECAY_EXPONENTIAL:
        return a0 * pow(r, e);
    case CV_DECAY_STEP:
        return a0 * pow(r, e / (cfg->train.decay_every > 0 ? cfg->train.decay_every : 1));
    case CV_DECAY_COSINE:
        return cosine(cfg, e, cfg->train.epochs - cfg->train.warmup_epochs);
    case CV_DECAY_INVERSE_SQRT: /* the course: k / sqrt(epoch number) x a0 */
        return a0 * r / sqrt((double)e + 1.0);
    }
    return a0;
}

double cv_optim_warmup(const struct cv_config *cfg, long long step, long long steps_per_epoch)
{
    long long w = cfg->train.warmup_steps > 0 ? cfg->train.warmup_steps
                                              : cfg->train.warmup_epochs * steps_per_epoch;
    return step < w ? (double)(step + 1) / (double)w : 1.0;
}
