/*
 * layer_bidirectional.c - a recurrent layer run both ways over the same
 * sequence (Schuster & Paliwal 1997): child 0 forwards, child 1 (the same
 * spec, reversed) from each row's last valid step to its first.  Their
 * outputs, aligned by step, are concatenated (T, 2 units) or summed
 * (T, units), as Keras' Bidirectional(merge_mode=concat|sum); without
 * return_sequences each gives its final state (child 1's is the state at
 * step 0), as PyTorch's h_n of a bidirectional nn.LSTM.
 */
#include <stdlib.h>
#include <string.h>

#include "layer.h"

struct bidir {
    struct cv_layer_spec dir[2]; /* the wrapped spec, forwards and reversed */
    size_t out1, in1;            /* floats per sample of a child's output, of the input */
};

static cv_status bidir_plan(struct cv_layer *l, struct cv_error *err)
{
    const struct cv_layer_spec *sp = l->spec;
    if (sp->n_children != 1 || !cv__layer_is_recurrent(sp->children[0].type))
        return cv_fail(err, CV_CONFIG,
                       "layer %d (bidirectional) wraps one rnn, gru or lstm layer (key 'layer')",
                       l->index);
    struct bidir *b = cv_calloc(1, sizeof(*b));
    l->priv = b;
    l->children = cv_calloc(2, sizeof(struct cv_layer));
    if (!b || !l->children)
        return cv_fail(err, CV_NOMEM, "out of memory");
    for (int d = 0; d < 2; d++) {
        b->dir[d] = sp->children[0];
        b->dir[d].reverse = d == 1;
        b->dir[d].children = NULL;
        b->dir[d].n_children = 0;
        cv_status st = cv__layer_plan(&l->children[d], &b->dir[d], d, l->in, l->max_batch, err);
        l->n_children = d + 1;
        if (st != CV_OK)
            return st;
    }
    struct cv_shape o = l->children[0].out;
    b->out1 = cv_shape_size(o);
    b->in1 = cv_shape_size(l->in);
    l->out = o;
    if (sp->merge == CV_MERGE_CONCAT)
        l->out.c *= 2;
    /* two child outputs, two child output gradients, one input gradient */
    l->scratch_per_sample = 4 * b->out1 + b->in1;
    return CV_OK;
}

static void bidir_destroy(struct cv_layer *l)
{
    free(l->priv);
}

static float *buf(const struct cv_layer *l, int i)
{
    const struct bidir *b = l->priv;
    return l->scratch + (size_t)i * b->out1 * (size_t)l->max_batch;
}

/* Each step's H values of child 0 and child 1 -> 2H (concat) or H (sum). */
static void bidir_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                          int n)
{
    const struct bidir *b = l->priv;
    float *o[2] = {buf(l, 0), buf(l, 1)};
    for (int d = 0; d < 2; d++)
        l->children[d].ops->forward(&l->children[d], ctx, x, o[d], n);
    size_t hn = cv_shape_step(l->children[0].out), rows = b->out1 / hn * (size_t)n;
    for (size_t s = 0; s < rows; s++)
        for (size_t j = 0; j < hn; j++) {
            if (l->spec->merge == CV_MERGE_SUM) {
                y[s * hn + j] = o[0][s * hn + j] + o[1][s * hn + j];
            } else {
                y[s * 2 * hn + j] = o[0][s * hn + j];
                y[s * 2 * hn + hn + j] = o[1][s * hn + j];
            }
        }
}

static void bidir_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                           const float *y, const float *dy, float *dx, int n)
{
    const struct bidir *b = l->priv;
    (void)y;
    size_t hn = cv_shape_step(l->children[0].out), rows = b->out1 / hn * (size_t)n;
    const float *d[2] = {dy, dy}; /* sum: both get dy */
    if (l->spec->merge == CV_MERGE_CONCAT) {
        float *s0 = buf(l, 2), *s1 = buf(l, 3);
        for (size_t s = 0; s < rows; s++) {
            memcpy(s0 + s * hn, dy + s * 2 * hn, sizeof(float) * hn);
            memcpy(s1 + s * hn, dy + s * 2 * hn + hn, sizeof(float) * hn);
        }
        d[0] = s0, d[1] = s1;
    }
    float *dx1 = dx ? l->scratch + 4 * b->out1 * (size_t)l->max_batch : NULL;
    l->children[0].ops->backward(&l->children[0], ctx, x, buf(l, 0), d[0], dx, n);
    l->children[1].ops->backward(&l->children[1], ctx, x, buf(l, 1), d[1], dx1, n);
    for (size_t k = 0; dx && k < b->in1 * (size_t)n; k++)
        dx[k] += dx1[k];
}

const struct cv_layer_ops cv__bidirectional_ops = {
    .type = CV_LAYER_BIDIRECTIONAL,
    .plan = bidir_plan,
    .forward = bidir_forward,
    .backward = bidir_backward,
    .destroy = bidir_destroy,
};
