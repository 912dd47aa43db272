/*
 * layer.c - what all layer types share: the type registry, view
 * declaration, arena sizing and binding (recursing into composite layers),
 * weight initialisation.  Layer maths lives in layer_<type>.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

const struct cv_layer_ops *cv__layer_ops(enum cv_layer_type type)
{
    switch (type) {
    case CV_LAYER_DENSE:
        return &cv__dense_ops;
    case CV_LAYER_DROPOUT:
        return &cv__dropout_ops;
    case CV_LAYER_ACTIVATION:
        return &cv__activation_ops;
    case CV_LAYER_FLATTEN:
        return &cv__flatten_ops;
    case CV_LAYER_CONV2D:
        return &cv__conv2d_ops;
    case CV_LAYER_MAXPOOL:
        return &cv__maxpool_ops;
    case CV_LAYER_AVGPOOL:
        return &cv__avgpool_ops;
    case CV_LAYER_GLOBAL_AVGPOOL:
        return &cv__global_avgpool_ops;
    case CV_LAYER_BATCHNORM:
        return &cv__batchnorm_ops;
    case CV_LAYER_RESIDUAL:
        return &cv__residual_ops;
    case CV_LAYER_TYPE_COUNT: /* no default: a new type without ops must not compile */
        break;
    }
    return NULL;
}

static struct cv_view *add_view(struct cv_view *views, int *n, const char *name, int ndims,
                                const int *dims)
{
    CV_ASSERT(*n < CV_MAX_VIEWS && ndims >= 1 && ndims <= 4);
    struct cv_view *v = &views[(*n)++];
    memset(v, 0, sizeof(*v));
    v->name = name;
    v->ndims = ndims;
    v->count = 1;
    for (int i = 0; i < ndims; i++) {
        v->dims[i] = dims[i];
        /* an overflowing product is kept as SIZE_MAX for plan to refuse */
        if (dims[i] < 0 || __builtin_mul_overflow(v->count, (size_t)dims[i], &v->count))
            v->count = SIZE_MAX;
    }
    return v;
}

struct cv_view *cv__layer_add_param(struct cv_layer *l, const char *name, bool decay, int ndims,
                                    const int *dims)
{
    struct cv_view *v = add_view(l->params, &l->n_params, name, ndims, dims);
    v->decay = decay;
    return v;
}

struct cv_view *cv__layer_add_state(struct cv_layer *l, const char *name, int ndims,
                                    const int *dims)
{
    return add_view(l->state, &l->n_state, name, ndims, dims);
}

cv_status cv__shape_check(const char *what, struct cv_shape s, int max_batch, struct cv_error *err)
{
    long long n;
    bool ok = s.c >= 1 && s.h >= 1 && s.w >= 1 && max_batch >= 1 &&
              !__builtin_mul_overflow((long long)s.c * s.h, (long long)s.w, &n) &&
              !__builtin_mul_overflow(n, (long long)max_batch, &n) && n <= CV_MAX_BATCH_VALUES;
    if (!ok)
        return cv_fail(err, CV_SHAPE,
                       "%s: (%d, %d, %d) per sample x batch %d is more than %lld values (use a "
                       "smaller batch, input or layer)",
                       what, s.c, s.h, s.w, max_batch, CV_MAX_BATCH_VALUES);
    return CV_OK;
}

/* What plan produced must respect the limits in layer.h. */
static cv_status check_plan(const struct cv_layer *l, struct cv_error *err)
{
    char what[64];
    size_t scratch;
    snprintf(what, sizeof(what), "layer %d (%s) output", l->index,
             cv_layer_type_name(l->ops->type));
    cv_status st = cv__shape_check(what, l->out, l->max_batch, err);
    for (int i = 0; st == CV_OK && i < l->n_params + l->n_state; i++) {
        const struct cv_view *v = i < l->n_params ? &l->params[i] : &l->state[i - l->n_params];
        if (v->count >= CV_MAX_VIEW)
            st = cv_fail(err, CV_SHAPE, "layer %d (%s): %s has too many values (limit 2^50)",
                         l->index, cv_layer_type_name(l->ops->type), v->name);
    }
    if (st == CV_OK &&
        (__builtin_mul_overflow(l->scratch_per_sample, (size_t)l->max_batch, &scratch) ||
         __builtin_add_overflow(scratch, l->scratch_fixed, &scratch) || scratch >= CV_MAX_VIEW))
        st = cv_fail(err, CV_SHAPE, "layer %d (%s): scratch at batch %d is too large", l->index,
                     cv_layer_type_name(l->ops->type), l->max_batch);
    return st;
}

static void freeze_children(struct cv_layer *l)
{
    for (int i = 0; i < l->n_children; i++) {
        l->children[i].frozen = true;
        freeze_children(&l->children[i]);
    }
}

cv_status cv__layer_plan(struct cv_layer *l, const struct cv_layer_spec *spec, int index,
                         struct cv_shape in, int max_batch, struct cv_error *err)
{
    memset(l, 0, sizeof(*l));
    l->ops = cv__layer_ops(spec->type);
    l->spec = spec;
    l->index = index;
    l->in = in;
    l->max_batch = max_batch;
    l->act = spec->activation;
    l->slope = spec->leaky_slope;
    l->frozen = spec->frozen;
    if (!l->ops)
        return cv_fail(err, CV_CONFIG, "layer %d: type '%s' is not supported", index,
                       cv_layer_type_name(spec->type));
    cv_status st = l->ops->plan(l, err);
    if (st == CV_OK && l->frozen) /* a frozen block freezes what is inside it */
        freeze_children(l);
    return st == CV_OK ? check_plan(l, err) : st;
}

bool cv__layer_trains(const struct cv_layer *l)
{
    if (l->n_params > 0 && !l->frozen)
        return true;
    for (int i = 0; i < l->n_children; i++)
        if (cv__layer_trains(&l->children[i]))
            return true;
    return false;
}

void cv__layer_sizes(const struct cv_layer *l, size_t *n_params, size_t *n_state, size_t *n_scratch)
{
    for (int i = 0; i < l->n_params; i++)
        *n_params += l->params[i].count;
    for (int i = 0; i < l->n_state; i++)
        *n_state += l->state[i].count;
    *n_scratch += l->scratch_per_sample * (size_t)l->max_batch + l->scratch_fixed;
    for (int i = 0; i < l->n_children; i++)
        cv__layer_sizes(&l->children[i], n_params, n_state, n_scratch);
}

void cv__layer_bind(struct cv_layer *l, float **params, float **grads, float **state,
                    float **scratch)
{
    for (int i = 0; i < l->n_params; i++) {
        l->params[i].data = *params;
        l->params[i].grad = *grads;
        *params += l->params[i].count;
        *grads += l->params[i].count;
    }
    for (int i = 0; i < l->n_state; i++) {
        l->state[i].data = *state;
        *state += l->state[i].count;
    }
    l->scratch = *scratch;
    *scratch += l->scratch_per_sample * (size_t)l->max_batch + l->scratch_fixed;
    for (int i = 0; i < l->n_children; i++)
        cv__layer_bind(&l->children[i], params, grads, state, scratch);
}

void cv__layer_init(struct cv_layer *l, struct cv_rng *rng)
{
    for (int i = 0; i < l->n_children; i++)
        cv__layer_init(&l->children[i], rng);
    if (l->ops && l->ops->init)
        l->ops->init(l, rng);
}

void cv__layer_destroy(struct cv_layer *l)
{
    for (int i = 0; i < l->n_children; i++)
        cv__layer_destroy(&l->children[i]);
    free(l->children);
    if (l->ops && l->ops->destroy)
        l->ops->destroy(l);
    memset(l, 0, sizeof(*l));
}

void cv__init_weights(struct cv_view *v, int fan_in, enum cv_init kind, enum cv_activation act,
                      struct cv_rng *rng)
{
    if (kind == CV_INIT_AUTO)
        kind = (act == CV_ACT_RELU || act == CV_ACT_LEAKY_RELU) ? CV_INIT_HE : CV_INIT_XAVIER;
    /* ref: He et al. 2015 (var 2/fan_in); Xavier/Glorot as in the course (var 1/fan_in) */
    double gain = kind == CV_INIT_HE ? 2.0 : 1.0;
    double sd = sqrt(gain / (double)(fan_in > 0 ? fan_in : 1));
    for (size_t i = 0; i < v->count; i++)
        v->data[i] = (float)(sd * cv_rng_normal(rng));
}
