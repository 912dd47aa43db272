/*
 * config_schedule.c - train.schedule: values of the optimizer's
 * hyperparameters that change from a given epoch on, the form in which a
 * pbt member's history is replayed as one plain run (docs/config.md):
 *
 *   train:
 *     schedule:
 *       train.lr: {0: 0.002, 4: 0.0016}
 *       train.beta1: {4: 0.92}
 *       model.layers.1.keep: {0: 0.8, 4: 0.64}
 *       data.augment.shift: {2: 3}
 *
 * With `unit: steps` the points are global steps (0-based) instead of
 * epochs, for values that change within an epoch.
 *
 * Only keys the trainer can change between epochs are accepted: the
 * optimizer's values, the keep probability of a top-level dropout layer
 * (keyed as in a sweep space) and the augmentation's shift.  The training
 * loop applies them (train.c), this file only converts and checks.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "caviar/config.h"
#include "config_internal.h"

static const char *const sched_names[] = {
    "train.lr",           "train.beta1",        "train.beta2",         "train.l2",
    "train.weight_decay", "data.augment.shift", "model.layers.N.keep", NULL};

#define SCHED_KEYS_HELP                                                                            \
    "a key the trainer can change between epochs: train.lr, train.beta1, train.beta2, "            \
    "train.l2, train.weight_decay, data.augment.shift or model.layers.N.keep"

const char *cv_sched_key_name(enum cv_sched_key k)
{
    return sched_names[k];
}

int cv_sched_key_find(const char *name, int *layer)
{
    int n, len = 0;
    if (sscanf(name, "model.layers.%d.keep%n", &n, &len) == 1 && len > 0 && !name[len] && n >= 0 &&
        n < CV_MAX_LAYERS && isdigit((unsigned char)name[13])) {
        if (layer)
            *layer = n;
        return CV_SCHED_KEEP;
    }
    int k = cv__cfg_find_name(sched_names, name);
    return k == CV_SCHED_KEEP ? -1 : k; /* the placeholder N is no layer */
}

bool cv_config_sched_has(const struct cv_config *c, enum cv_sched_key k)
{
    for (int i = 0; i < c->train.n_schedule; i++)
        if (c->train.schedule[i].key == k)
            return true;
    return false;
}

static double own_value(const struct cv_config *c, enum cv_sched_key k, int layer)
{
    switch (k) {
    case CV_SCHED_LR:
        return c->train.lr;
    case CV_SCHED_BETA1:
        return c->train.beta1;
    case CV_SCHED_BETA2:
        return c->train.beta2;
    case CV_SCHED_L2:
        return c->train.l2;
    case CV_SCHED_WEIGHT_DECAY:
        return c->train.weight_decay;
    case CV_SCHED_AUGMENT_SHIFT:
        return c->data.augment_shift;
    case CV_SCHED_KEEP:
        return layer >= 0 && layer < c->model.n_layers ? c->model.layers[layer].keep : 1.0;
    case CV_SCHED_KEYS:
        break;
    }
    return 0;
}

double cv_config_sched_value(const struct cv_config *c, enum cv_sched_key k, int layer, long long e)
{
    double v = own_value(c, k, layer);
    long long at = -1;
    for (int i = 0; i < c->train.n_schedule; i++) {
        const struct cv_sched_point *s = &c->train.schedule[i];
        if (s->key == k && (k != CV_SCHED_KEEP || s->layer == layer) && s->at <= e && s->at > at) {
            at = s->at;
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
    case CV_SCHED_AUGMENT_SHIFT: /* as data.augment.shift */
        return v >= 0 && v <= 16 && v == (double)(int)v;
    case CV_SCHED_KEEP: /* as a dropout layer's keep */
        return v > 0 && v <= 1;
    case CV_SCHED_L2:
    case CV_SCHED_WEIGHT_DECAY:
    case CV_SCHED_KEYS:
        break;
    }
    return v >= 0;
}

static cv_status parse_points(struct pctx *p, enum cv_sched_key k, int layer,
                              const struct cv_node *n, struct cv_config *c)
{
    if (n->kind != CV_NODE_MAP || n->n < 1)
        return cv__cfg_bad(p, n,
                           "a mapping of epochs (or steps) to values, e.g. {0: 0.01, 4: 0.008}");
    for (int i = 0; i < n->n; i++) {
        size_t mark;
        long long e;
        double v;
        struct cv_node key = {.kind = CV_NODE_SCALAR, .line = n->kids[i]->line, .text = n->keys[i]};
        cv__cfg_push(p, n->keys[i], &mark);
        cv_status st = CV_OK;
        if (!cv__cfg_to_ll(&key, &e) || e < 0 || e > 1000000000000000LL)
            st = cv__cfg_bad(p, n->kids[i], "an epoch or step (an integer >= 0) as the key");
        else if (!cv__cfg_scalar(n->kids[i]) || !cv__cfg_to_double(n->kids[i], &v) ||
                 !in_range(k, v))
            st = cv__cfg_bad(p, n->kids[i], "a value in the key's range");
        else if (c->train.n_schedule >= CV_MAX_SCHEDULE)
            st = cv__cfg_bad(p, n->kids[i], "at most 256 points in train.schedule");
        cv__cfg_pop(p, mark);
        if (st != CV_OK)
            return st;
        c->train.schedule[c->train.n_schedule++] = (struct cv_sched_point){k, layer, e, v};
    }
    return CV_OK;
}

/* unit: epochs (the default) or steps: what the points' keys count. */
static cv_status parse_unit(struct pctx *p, const struct cv_node *n, struct cv_config *c)
{
    static const char *const units[] = {"epochs", "steps", NULL};
    int u = cv__cfg_scalar(n) ? cv__cfg_find_name(units, n->text) : -1;
    if (u < 0)
        return cv__cfg_bad(p, n, "epochs or steps");
    c->train.schedule_steps = u == 1;
    return CV_OK;
}

cv_status cv__cfg_schedule(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_config *c = base;
    c->train.n_schedule = 0;
    if (n->kind != CV_NODE_MAP)
        return cv__cfg_bad(p, n, "a mapping of keys (" SCHED_KEYS_HELP ") to {epoch: value}");
    c->train.schedule_steps = false;
    for (int i = 0; i < n->n; i++) {
        int layer = -1, k = cv_sched_key_find(n->keys[i], &layer);
        size_t mark;
        cv__cfg_push(p, n->keys[i], &mark);
        cv_status st = !strcmp(n->keys[i], "unit") ? parse_unit(p, n->kids[i], c)
                       : k < 0 ? cv__cfg_bad(p, n->kids[i], "unit or " SCHED_KEYS_HELP)
                               : parse_points(p, (enum cv_sched_key)k, layer, n->kids[i], c);
        cv__cfg_pop(p, mark);
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}

/* After the whole config is read: a scheduled keep belongs to a dropout
 * layer, and a scheduled shift to an image model (as data.augment). */
cv_status cv__cfg_schedule_check(const struct cv_config *c, struct cv_error *err)
{
    for (int i = 0; i < c->train.n_schedule; i++) {
        const struct cv_sched_point *s = &c->train.schedule[i];
        if (s->key == CV_SCHED_KEEP &&
            (s->layer >= c->model.n_layers || c->model.layers[s->layer].type != CV_LAYER_DROPOUT))
            return cv_fail(err, CV_CONFIG,
                           "%s: train.schedule.model.layers.%d.keep: layer %d is %s, not a "
                           "dropout layer",
                           c->source, s->layer, s->layer,
                           s->layer < c->model.n_layers
                               ? cv_layer_type_name(c->model.layers[s->layer].type)
                               : "missing");
        if (s->key == CV_SCHED_AUGMENT_SHIFT && (c->model.input[1] < 2 || c->model.input[2] < 2))
            return cv_fail(err, CV_CONFIG,
                           "%s: train.schedule.data.augment.shift needs image inputs: "
                           "model.input = [C, H, W], got [%d, %d, %d]",
                           c->source, c->model.input[0], c->model.input[1], c->model.input[2]);
    }
    return CV_OK;
}
