/*
 * fixtures.h - build configs in code for tests that must not depend on the
 * YAML parser: an MLP of dense layers with given units and activations;
 * and a tolerance check for two code paths that round differently.
 */
#ifndef CV_TEST_FIXTURES_H
#define CV_TEST_FIXTURES_H

#include <math.h>
#include <string.h>

#include "caviar/config.h"

static inline void fixture_mlp(struct cv_config *c, int inputs, const int *units,
                               const enum cv_activation *acts, int n, enum cv_loss loss)
{
    memset(c, 0, sizeof(*c));
    c->model.input[0] = inputs;
    c->model.input[1] = c->model.input[2] = 1;
    c->model.input_rank = 1;
    c->model.n_layers = n;
    c->model.loss = loss;
    for (int i = 0; i < n; i++) {
        struct cv_layer_spec *l = &c->model.layers[i];
        l->type = CV_LAYER_DENSE;
        l->units = units[i];
        l->activation = acts[i];
        l->leaky_slope = 0.01f;
        l->keep = 1.0f;
    }
    c->train.optimizer = CV_OPT_ADAM;
    c->train.lr = 1e-3;
    c->train.beta1 = 0.9;
    c->train.beta2 = 0.999;
    c->train.eps = 1e-8;
    c->train.batch = 8;
    c->train.epochs = 1;
    c->train.seed = 7;
}

/* Insert a dropout layer with keep probability `keep` before layer `at`. */
static inline void fixture_insert_dropout(struct cv_config *c, int at, float keep)
{
    for (int i = c->model.n_layers; i > at; i--)
        c->model.layers[i] = c->model.layers[i - 1];
    memset(&c->model.layers[at], 0, sizeof(c->model.layers[at]));
    c->model.layers[at].type = CV_LAYER_DROPOUT;
    c->model.layers[at].keep = keep;
    c->model.n_layers++;
}

/* max |a - b| relative to max |b|: rounding differences only (e.g. ranks
 * sum in another order when each slice is reduced by its owner). */
static inline float max_rel_diff(const float *a, const float *b, size_t n)
{
    float worst = 0, scale = 1e-30f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        worst = d > worst ? d : worst;
        scale = fabsf(b[i]) > scale ? fabsf(b[i]) : scale;
    }
    return worst / scale;
}

/* Append a layer of `type` (units where it has them) with neutral defaults. */
static inline struct cv_layer_spec *fixture_add_layer(struct cv_config *c, enum cv_layer_type type,
                                                      int units)
{
    struct cv_layer_spec *l = &c->model.layers[c->model.n_layers++];
    memset(l, 0, sizeof(*l));
    l->type = type;
    l->units = units;
    l->keep = 1.0f;
    l->leaky_slope = 0.01f;
    l->pad_id = -1;
    return l;
}

#endif /* CV_TEST_FIXTURES_H */
