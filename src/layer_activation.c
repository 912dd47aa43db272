/*
 * layer_activation.c - element-wise layers without parameters: a standalone
 * activation (e.g. after batchnorm) and flatten (CHW -> features, a copy:
 * rows are already contiguous, only the shape changes).
 */
#include <string.h>

#include "kernels.h"
#include "layer.h"

static cv_status activation_plan(struct cv_layer *l, struct cv_error *err)
{
    (void)err;
    l->out = l->in;
    return CV_OK;
}

static void activation_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                               float *y, int n)
{
    (void)ctx;
    size_t f = cv_shape_step(l->in); /* softmax over each step's features */
    n *= cv_shape_steps(l->in);
    memcpy(y, x, sizeof(float) * f * (size_t)n);
    if (l->act == CV_ACT_SOFTMAX)
        cv_softmax_rows(y, y, n, (int)f);
    else
        cv_act_apply(y, n, (int)f, l->act, l->slope);
}

static void activation_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                                const float *y, const float *dy, float *dx, int n)
{
    (void)ctx;
    (void)x;
    if (dx)
        cv_act_backward(y, dy, dx, n * cv_shape_steps(l->in), (int)cv_shape_step(l->in), l->act,
                        l->slope);
}

const struct cv_layer_ops cv__activation_ops = {
    .type = CV_LAYER_ACTIVATION,
    .plan = activation_plan,
    .forward = activation_forward,
    .backward = activation_backward,
};

static cv_status flatten_plan(struct cv_layer *l, struct cv_error *err)
{
    (void)err;
    l->out = (struct cv_shape){(int)cv_shape_size(l->in), 1, 1, 0};
    return CV_OK;
}

static void flatten_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                            int n)
{
    (void)ctx;
    memcpy(y, x, sizeof(float) * cv_shape_size(l->in) * (size_t)n);
}

static void flatten_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                             const float *y, const float *dy, float *dx, int n)
{
    (void)ctx;
    (void)x;
    (void)y;
    if (dx)
        memcpy(dx, dy, sizeof(float) * cv_shape_size(l->in) * (size_t)n);
}

const struct cv_layer_ops cv__flatten_ops = {
    .type = CV_LAYER_FLATTEN,
    .plan = flatten_plan,
    .forward = flatten_forward,
    .backward = flatten_backward,
};
