/*
 * config_schedule.c - train.schedule: values of the optimizer's
 * hyperparameters that change from a given epoch on, the form in which a
 * pbt member's history is replayed as one plain run (docs/config.md):
 *
 *   train:
 *     schedule:
 *       train.lr: {0: 0.002, 4: 0.0016}
 *       train.beta1: {4: 0.92}
 *
 * Only keys the trainer can change between epochs are accepted; the
 * training loop applies them (train.c), this file only converts and checks.
 */
#include <stdio.h>
#include <string.h>

#include "caviar/config.h"
#include "config_internal.h"

static const char *const sched_names[] = {"train.lr", "train.beta1",        "train.beta2",
                                          "train.l2", "train.weight_decay", NULL};

const char *cv_sched_key_name(enum cv_sched_key k)
{
    return sched_names[k];
}

int cv_sched_key_find(const char *name)
{
    return cv__cfg_find_name(sched_names, name);
}

double cv_config_sched_value(const struct cv_config *c, enum cv_sched_key k, int e)
{
    const double own[] = {c->train.lr, c->train.beta1, c->train.beta2, c->train.l2,
                          c->train.weight_decay};
    double v = own[k];
    int at = -1;
    for (int i = 0; i < c->train.n_schedule; i++) {
        const struct cv_sched_point *s = &c->train.schedule[i];
        if (s->key == k && s->epoch <= e && s->epoch > at) {
            at = s->epoch;
            v = s->value;
        }
    }
    return v;
}

/* The same range as the key's own row in config.c's table. */
static bool in_range(enum cv_sched_key k, double v)
{
    switch (k) {
    case CV_SCHED_LR:
        return v > 0;
    case CV_SCHED_BETA1:
    case CV_SCHED_BETA2:
        return v >= 0 && v < 1;
    case CV_SCHED_L2:
    case CV_SCHED_WEIGHT_DECAY:
    case CV_SCHED_KEYS:
        break;
    }
    return v >= 0;
}

static cv_status parse_points(struct pctx *p, enum cv_sched_key k, const struct cv_node *n,
                              struct cv_config *c)
{
    if (n->kind != CV_NODE_MAP || n->n < 1)
        return cv__cfg_bad(p, n, "a mapping of epochs to values, e.g. {0: 0.01, 4: 0.008}");
    for (int i = 0; i < n->n; i++) {
        size_t mark;
        long long e;
        double v;
        struct cv_node key = {.kind = CV_NODE_SCALAR, .line = n->kids[i]->line, .text = n->keys[i]};
        cv__cfg_push(p, n->keys[i], &mark);
        cv_status st = CV_OK;
        if (!cv__cfg_to_ll(&key, &e) || e < 0 || e > 1000000000)
            st = cv__cfg_bad(p, n->kids[i], "an epoch (an integer >= 0) as the key");
        else if (!cv__cfg_scalar(n->kids[i]) || !cv__cfg_to_double(n->kids[i], &v) ||
                 !in_range(k, v))
            st = cv__cfg_bad(p, n->kids[i], "a value in the key's range");
        else if (c->train.n_schedule >= CV_MAX_SCHEDULE)
            st = cv__cfg_bad(p, n->kids[i], "at most 256 points in train.schedule");
        cv__cfg_pop(p, mark);
        if (st != CV_OK)
            return st;
        c->train.schedule[c->train.n_schedule++] = (struct cv_sched_point){k, (int)e, v};
    }
    return CV_OK;
}

cv_status cv__cfg_schedule(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_config *c = base;
    c->train.n_schedule = 0;
    if (n->kind != CV_NODE_MAP)
        return cv__cfg_bad(p, n,
                           "a mapping of keys (train.lr, train.beta1, train.beta2, "
                           "train.l2, train.weight_decay) to {epoch: value}");
    for (int i = 0; i < n->n; i++) {
        int k = cv__cfg_find_name(sched_names, n->keys[i]);
        size_t mark;
        cv__cfg_push(p, n->keys[i], &mark);
        cv_status st = k < 0 ? cv__cfg_bad(p, n->kids[i],
                                           "a key the trainer can change between epochs: "
                                           "train.lr, train.beta1, train.beta2, train.l2 or "
                                           "train.weight_decay")
                             : parse_points(p, (enum cv_sched_key)k, n->kids[i], c);
        cv__cfg_pop(p, mark);
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}
