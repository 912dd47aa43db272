/*
 * layer_dense.c - fully connected layer with fused bias + activation:
 * y = g(x W^T + b).  Any input shape is consumed by its total size, so a
 * dense layer after conv/pool needs no explicit flatten.
 */
#include "kernels.h"
#include "layer.h"

enum { W_, B_ };

static cv_status dense_plan(struct cv_layer *l, struct cv_error *err)
{
    int in = (int)cv_shape_size(l->in), out = l->spec->units;
    if (out < 1)
        return cv_fail(err, CV_CONFIG, "layer %d (dense): units = %d: expected >= 1", l->index,
                       out);
    int wd[2] = {out, in}, bd[1] = {out};
    cv__layer_add_param(l, "W", true, 2, wd);  /* (out, in) */
    cv__layer_add_param(l, "b", false, 1, bd); /* (out) */
    l->out = (struct cv_shape){out, 1, 1};
    l->scratch_per_sample = (size_t)out; /* dz for backward */
    return CV_OK;
}

static void dense_init(struct cv_layer *l, struct cv_rng *rng)
{
    struct cv_view *w = &l->params[W_], *b = &l->params[B_];
    cv__init_weights(w, w->dims[1], l->spec->init, l->spec->activation, rng);
    for (size_t i = 0; i < b->count; i++)
        b->data[i] = 0.0f;
}

/* x: (n, in) -> y: (n, out) */
static void dense_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                          int n)
{
    int in = l->params[W_].dims[1], out = l->params[W_].dims[0];
    (void)ctx;
    if (n == 0)
        return;
    /* y (n, out) = x (n, in) . W^T (in, out) */
    cv_gemm(false, true, n, out, in, 1.0f, x, in, l->params[W_].data, in, 0.0f, y, out);
    cv_bias_act_forward(y, l->params[B_].data, n, out, l->act, l->slope);
}

static void dense_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                           const float *y, const float *dy, float *dx, int n)
{
    int in = l->params[W_].dims[1], out = l->params[W_].dims[0];
    float *dz = l->scratch; /* (n, out) */
    (void)ctx;
    if (n == 0) {
        for (size_t i = 0; i < l->params[W_].count; i++)
            l->params[W_].grad[i] = 0.0f;
        for (int i = 0; i < out; i++)
            l->params[B_].grad[i] = 0.0f;
        return;
    }
    cv_act_backward(y, dy, dz, n, out, l->act, l->slope);
    if (!l->frozen) { /* dW (out, in) = dz^T (out, n) . x (n, in) */
        cv_gemm(true, false, out, in, n, 1.0f, dz, out, x, in, 0.0f, l->params[W_].grad, in);
        cv_bias_backward(dz, l->params[B_].grad, n, out);
    }
    if (dx) /* dx (n, in) = dz (n, out) . W (out, in) */
        cv_gemm(false, false, n, in, out, 1.0f, dz, out, l->params[W_].data, in, 0.0f, dx, in);
}

const struct cv_layer_ops cv__dense_ops = {
    .type = CV_LAYER_DENSE,
    .plan = dense_plan,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
};
