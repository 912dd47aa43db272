/*
 * recipe.c - best epoch, reduce-on-plateau and early stopping (recipe.h).
 *   best:     strictly better than every earlier epoch
 *   plateau:  PyTorch ReduceLROnPlateau (threshold 0, cooldown 0): after
 *             more than decay.patience epochs without a strictly better value
 *             lr = max(lr x decay.rate, decay.floor), and the count restarts
 *   stopping: Keras EarlyStopping: an improvement beats the reference by
 *             more than min_delta; stop once `patience` epochs in a row
 *             brought none
 * A NaN value (a metric not computed, or a diverging loss) never improves.
 */
#include <math.h>

#include "caviar/optim.h"
#include "recipe.h"

void cv__recipe_init(struct cv_recipe_state *s)
{
    *s = (struct cv_recipe_state){
        .plateau_best = NAN, .best = NAN, .es_best = NAN, .best_last = {NAN, NAN, NAN, NAN}};
}

double cv__recipe_value(const struct cv_config *cfg, const struct cv_epoch_metrics *m)
{
    switch (cfg->train.monitor) {
    case CV_MON_NONE:
        return NAN;
    case CV_MON_TRAIN_LOSS:
        return m->train_loss;
    case CV_MON_TRAIN_ACCURACY:
        return m->train_acc;
    case CV_MON_DEV_LOSS:
        return m->dev_loss;
    case CV_MON_DEV_ACCURACY:
        return m->dev_acc;
    case CV_MON_DEV_F1:
        return m->dev_f1;
    }
    return NAN;
}

/* v beats ref by more than delta (any finite v beats no reference) */
static bool beats(bool minimize, double v, double ref, double delta)
{
    if (!isfinite(v))
        return false;
    if (isnan(ref))
        return true;
    return minimize ? v < ref - delta : v > ref + delta;
}

void cv__recipe_update(const struct cv_config *cfg, struct cv_recipe_state *s,
                       const struct cv_epoch_metrics *m, long long epoch,
                       struct cv_recipe_step *out)
{
    double v = cv__recipe_value(cfg, m);
    bool min = cfg->train.monitor_min;
    *out = (struct cv_recipe_step){0};
    if (cfg->train.monitor == CV_MON_NONE)
        return;
    out->improved = beats(min, v, s->best, 0);
    if (out->improved) {
        s->best = v;
        s->best_epoch = epoch;
        s->best_last[0] = m->train_loss;
        s->best_last[1] = m->train_acc;
        s->best_last[2] = m->dev_loss;
        s->best_last[3] = m->dev_acc;
    }
    if (cfg->train.decay == CV_DECAY_PLATEAU) {
        bool better = beats(min, v, s->plateau_best, 0);
        s->plateau_best = better ? v : s->plateau_best;
        s->plateau_bad = better ? 0 : s->plateau_bad + 1;
        if (s->plateau_bad > cfg->train.decay_patience) {
            double old = s->lr > 0 ? s->lr : cfg->train.lr;
            double lr = fmax(old * cfg->train.decay_rate, cfg->train.decay_floor);
            out->reduced = old - lr > 1e-8; /* PyTorch's eps */
            s->lr = out->reduced ? lr : old;
            s->plateau_bad = 0;
        }
    }
    if (cfg->train.patience > 0) {
        bool better = beats(min, v, s->es_best, cfg->train.min_delta);
        s->es_best = better ? v : s->es_best;
        s->es_bad = better ? 0 : s->es_bad + 1;
        if (s->es_bad >= cfg->train.patience) {
            out->stop = true;
            s->stopped = epoch;
        }
    }
}

double cv__recipe_lr(const struct cv_config *cfg, const struct cv_recipe_state *s, int epoch)
{
    if (cfg->train.decay == CV_DECAY_PLATEAU && s->lr > 0)
        return s->lr;
    return cv_optim_lr(cfg, epoch);
}
