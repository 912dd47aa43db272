/*
 * export_onnx_layers.c - one ONNX emitter per caviar layer type: each
 * appends the nodes and initializers of the layer's inference forward
 * (docs/export.md lists the mapping).  Weights are read from the layer's
 * views, bound to the model's arenas by export_onnx.c.  A new layer type
 * gets a function here and a line in cv__onnx_emitter(); until then its
 * export fails naming the layer.
 */

#include "export_onnx_internal.h"

/* The view's dims as int64 (ONNX tensor dims). */
static void view_floats(struct cv_onnx *g, const struct cv_view *w, char *out)
{
    int64_t dims[4];
    for (int k = 0; k < w->ndims; k++)
        dims[k] = w->dims[k];
    cv__onnx_floats(g, w->name, dims, w->ndims, w->data, out);
}

/* y = g(x W^T + b): Gemm on (N, in), W (out, in) stored as caviar keeps it;
 * on a sequence, per step. */
static cv_status dense(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                       struct cv_error *err)
{
    (void)err;
    char w[CV_ONNX_NAME_MAX], b[CV_ONNX_NAME_MAX];
    const char *extra[2] = {w, b};
    struct cv_onnx_attr trans_b = {.name = "transB", .type = CV_ONNX_INT, .i = 1};
    view_floats(g, &l->params[0], w);
    view_floats(g, &l->params[1], b);
    if (l->in.t > 0) {
        cv__onnx_dense_steps(g, l, v, w, b);
    } else {
        cv__onnx_rank(g, v, 2);
        cv__onnx_apply(g, "Gemm", v, extra, 2, &trans_b, 1);
    }
    v->shape = l->out;
    cv__onnx_activation(g, v, l->act, l->slope);
    return CV_OK;
}

/* Padding of one dimension as caviar plans it (layer_conv.c): explicit p on
 * both sides, or `same`: the total split with the extra pixel at the end. */
static void conv_pads(const struct cv_layer *l, int n, int out, int64_t *lo, int64_t *hi)
{
    int k = l->spec->size, s = l->spec->stride;
    if (l->spec->pad != CV_PAD_SAME) {
        *lo = *hi = l->spec->pad > 0 ? l->spec->pad : 0;
        return;
    }
    int64_t total = (int64_t)(out - 1) * s + k - n;
    total = total > 0 ? total : 0;
    *lo = total / 2;
    *hi = total - *lo;
}

/* W (F, C, k, k), b (F): Conv with caviar's stride and padding. */
static cv_status conv2d(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                        struct cv_error *err)
{
    (void)err;
    char w[CV_ONNX_NAME_MAX], b[CV_ONNX_NAME_MAX];
    const char *extra[2] = {w, b};
    int64_t k = l->spec->size, s = l->spec->stride, kernel[2] = {k, k}, strides[2] = {s, s};
    int64_t pads[4]; /* top, left, bottom, right */
    conv_pads(l, l->in.h, l->out.h, &pads[0], &pads[2]);
    conv_pads(l, l->in.w, l->out.w, &pads[1], &pads[3]);
    struct cv_onnx_attr a[3] = {
        {.name = "kernel_shape", .type = CV_ONNX_INTS, .ints = kernel, .n_ints = 2},
        {.name = "strides", .type = CV_ONNX_INTS, .ints = strides, .n_ints = 2},
        {.name = "pads", .type = CV_ONNX_INTS, .ints = pads, .n_ints = 4}};
    cv__onnx_rank(g, v, 4);
    view_floats(g, &l->params[0], w);
    view_floats(g, &l->params[1], b);
    cv__onnx_apply(g, "Conv", v, extra, 2, a, 3);
    v->shape = l->out;
    cv__onnx_activation(g, v, l->act, l->slope);
    return CV_OK;
}

/* Windows without padding (layer_pool.c); global: the mean of each plane. */
static cv_status pool(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                      struct cv_error *err)
{
    (void)err;
    int64_t k = l->spec->size, s = l->spec->stride, kernel[2] = {k, k}, strides[2] = {s, s};
    struct cv_onnx_attr a[2] = {
        {.name = "kernel_shape", .type = CV_ONNX_INTS, .ints = kernel, .n_ints = 2},
        {.name = "strides", .type = CV_ONNX_INTS, .ints = strides, .n_ints = 2}};
    cv__onnx_rank(g, v, 4);
    if (l->ops->type == CV_LAYER_GLOBAL_AVGPOOL)
        cv__onnx_apply(g, "GlobalAveragePool", v, NULL, 0, NULL, 0);
    else
        cv__onnx_apply(g, l->ops->type == CV_LAYER_MAXPOOL ? "MaxPool" : "AveragePool", v, NULL, 0,
                       a, 2);
    v->shape = l->out;
    return CV_OK;
}

/* Inference form: gamma (x - running_mean) / sqrt(running_var + eps) + beta,
 * per channel (per feature after a dense layer), then the activation. */
static cv_status batchnorm(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                           struct cv_error *err)
{
    (void)err;
    char names[4][CV_ONNX_NAME_MAX];
    const char *extra[4] = {names[0], names[1], names[2], names[3]};
    struct cv_onnx_attr eps = {.name = "epsilon", .type = CV_ONNX_FLOAT, .f = l->spec->bn_eps};
    view_floats(g, &l->params[0], names[0]); /* gamma */
    view_floats(g, &l->params[1], names[1]); /* beta */
    view_floats(g, &l->state[0], names[2]);  /* running_mean */
    view_floats(g, &l->state[1], names[3]);  /* running_var */
    /* (N, C) after a dense layer, (N, C, H, W) after a convolution */
    cv__onnx_rank(g, v, l->in.h * l->in.w == 1 ? 2 : 4);
    cv__onnx_apply(g, "BatchNormalization", v, extra, 4, &eps, 1);
    cv__onnx_activation(g, v, l->act, l->slope);
    return CV_OK;
}

/* Dropout scales at training time only (inverted dropout): nothing to emit. */
static cv_status dropout(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                         struct cv_error *err)
{
    (void)g, (void)l, (void)v, (void)err;
    return CV_OK;
}

static cv_status flatten(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                         struct cv_error *err)
{
    (void)err;
    cv__onnx_rank(g, v, 2);
    v->shape = l->out;
    return CV_OK;
}

static cv_status activation(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                            struct cv_error *err)
{
    (void)err;
    cv__onnx_activation(g, v, l->act, l->slope);
    return CV_OK;
}

/* y = g(branch(x) + shortcut(x)); the shortcut is x, or the 1x1 strided
 * projection that layer_residual.c plans as the last child. */
static cv_status residual(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                          struct cv_error *err)
{
    struct cv_onnx_val branch = *v, shortcut = *v;
    int n_branch = l->spec->n_children;
    cv_status st = CV_OK;
    for (int i = 0; st == CV_OK && i < n_branch; i++)
        st = cv__onnx_layer(g, &l->children[i], &branch, err);
    if (st == CV_OK && l->n_children > n_branch)
        st = cv__onnx_layer(g, &l->children[n_branch], &shortcut, err);
    if (st != CV_OK)
        return st;
    cv__onnx_rank(g, &shortcut, branch.rank);
    const char *extra[1] = {shortcut.name};
    *v = branch;
    cv__onnx_apply(g, "Add", v, extra, 1, NULL, 0);
    cv__onnx_activation(g, v, l->act, l->slope);
    return CV_OK;
}

cv_onnx_emit_fn cv__onnx_emitter(enum cv_layer_type type)
{
    switch (type) {
    case CV_LAYER_DENSE:
        return dense;
    case CV_LAYER_DROPOUT:
        return dropout;
    case CV_LAYER_CONV2D:
        return conv2d;
    case CV_LAYER_MAXPOOL:
    case CV_LAYER_AVGPOOL:
    case CV_LAYER_GLOBAL_AVGPOOL:
        return pool;
    case CV_LAYER_BATCHNORM:
        return batchnorm;
    case CV_LAYER_FLATTEN:
        return flatten;
    case CV_LAYER_RESIDUAL:
        return residual;
    case CV_LAYER_ACTIVATION:
        return activation;
    case CV_LAYER_EMBEDDING:
        return cv__onnx_embedding;
    case CV_LAYER_RNN:
    case CV_LAYER_GRU:
    case CV_LAYER_LSTM:
    case CV_LAYER_BIDIRECTIONAL:
        return cv__onnx_recurrent;
    case CV_LAYER_TYPE_COUNT: /* no default: a new type must be decided here */
        break;
    }
    return NULL;
}
