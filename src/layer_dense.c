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
    cv__layer_add_param(l, "W", true, 2, wd); /* (out, in) */
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

/* ---- columns [c0, c1) of a result over `rows` rows of full-width tensors:
 * the ops of a layer split by features (cv_model_split_features); the whole
 * layer's forward and input gradients are columns [0, width) ---- */

static void dense_forward_cols(struct cv_layer *l, const float *x, float *y, int rows, int c0,
                               int c1)
{
    int in = l->params[W_].dims[1], out = l->params[W_].dims[0];
    if (rows == 0 || c1 <= c0)
        return;
    /* y[:, c0:c1] (rows, c1 - c0) = x (rows, in) . W[c0:c1, :]^T */
    cv_gemm(false, true, rows, c1 - c0, in, 1.0f, x, in, l->params[W_].data + (size_t)c0 * in, in,
            0.0f, y + c0, out);
    cv_bias_act_block(y + c0, out, l->params[B_].data + c0, rows, c1 - c0, l->act, l->slope);
}

static void dense_act_grads_cols(struct cv_layer *l, const float *y, const float *dy, float *dz,
                                 int rows, int c0, int c1)
{
    int out = l->params[W_].dims[0];
    if (rows > 0 && c1 > c0)
        cv_act_backward_block(y + c0, dy + c0, dz + c0, out, rows, c1 - c0, l->act, l->slope);
}

static void dense_input_grads_cols(struct cv_layer *l, const float *dz, float *dx, int rows,
                                   int c0, int c1)
{
    int in = l->params[W_].dims[1], out = l->params[W_].dims[0];
    if (rows == 0 || c1 <= c0)
        return;
    /* dx[:, c0:c1] (rows, c1 - c0) = dz (rows, out) . W[:, c0:c1] (out, c1 - c0) */
    cv_gemm(false, false, rows, c1 - c0, out, 1.0f, dz, out, l->params[W_].data + c0, in, 0.0f,
            dx + c0, in);
}

/* x: (n, in) -> y: (n, out) */
static void dense_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                          int n)
{
    (void)ctx;
    dense_forward_cols(l, x, y, n, 0, l->params[W_].dims[0]);
}

static void dense_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                           const float *y, const float *dy, float *dx, int n)
{
    int in = l->params[W_].dims[1], out = l->params[W_].dims[0];
    float *dz = l->scratch; /* (n, out) */
    if (n == 0) {
        if (ctx->defer_weights) /* the owners' to compute, over the other ranks' rows */
            return;
        for (size_t i = 0; i < l->params[W_].count; i++)
            l->params[W_].grad[i] = 0.0f;
        for (int i = 0; i < out; i++)
            l->params[B_].grad[i] = 0.0f;
        return;
    }
    cv_act_backward(y, dy, dz, n, out, l->act, l->slope);
    if (!ctx->defer_weights) { /* else cv_model_owned_grads, over the node's batch */
        /* dW (out, in) = dz^T (out, n) . x (n, in); added onto zeros when the
         * caller keeps the arena zero, since OpenBLAS clears C for beta = 0 in
         * a pass of its own (4% of the wide MLP's step at 2 ranks) */
        cv_gemm(true, false, out, in, n, 1.0f, dz, out, x, in, ctx->accumulate ? 1.0f : 0.0f,
                l->params[W_].grad, in);
        cv_bias_backward(dz, l->params[B_].grad, n, out);
    }
    if (dx) /* dx (n, in) = dz (n, out) . W (out, in) */
        dense_input_grads_cols(l, dz, dx, n, 0, in);
}

/* dW rows [r0, r1), columns [c0, c1) = dz[:, r0:r1]^T x[:, c0:c1] over `rows` rows. */
static void weight_block(struct cv_layer *l, const float *x, const float *dz, int rows, int r0,
                         int r1, int c0, int c1, bool accumulate)
{
    int in = l->params[W_].dims[1], out = l->params[W_].dims[0];
    if (r1 <= r0 || c1 <= c0)
        return;
    cv_gemm(true, false, r1 - r0, c1 - c0, rows, 1.0f, dz + r0, out, x + c0, in,
            accumulate ? 1.0f : 0.0f, l->params[W_].grad + (size_t)r0 * in + c0, in);
}

/* W (out, in) is elements [0, out in) of the layer, b the next out: a
 * range may start and end inside a row of W, cut into a partial first row,
 * whole rows (one GEMM) and a partial last row. */
static void dense_weight_grads(struct cv_layer *l, const float *x, const float *dz, int rows,
                               size_t lo, size_t hi, bool accumulate)
{
    size_t in = (size_t)l->params[W_].dims[1], nw = l->params[W_].count;
    int out = l->params[W_].dims[0];
    size_t wlo = lo < nw ? lo : nw, whi = hi < nw ? hi : nw;
    if (wlo < whi) {
        int r0 = (int)(wlo / in), c0 = (int)(wlo % in), r1 = (int)(whi / in), c1 = (int)(whi % in);
        if (r0 == r1) {
            weight_block(l, x, dz, rows, r0, r0 + 1, c0, c1, accumulate);
        } else {
            if (c0 > 0)
                weight_block(l, x, dz, rows, r0, r0 + 1, c0, (int)in, accumulate);
            weight_block(l, x, dz, rows, c0 > 0 ? r0 + 1 : r0, r1, 0, (int)in, accumulate);
            weight_block(l, x, dz, rows, r1, r1 + 1, 0, c1, accumulate);
        }
    }
    size_t blo = lo > nw ? lo - nw : 0, bhi = hi > nw ? hi - nw : 0;
    if (bhi > (size_t)out)
        bhi = (size_t)out;
    if (blo < bhi)
        cv_column_sums(dz + blo, out, l->params[B_].grad + blo, rows, (int)(bhi - blo), accumulate);
}

const struct cv_layer_ops cv__dense_ops = {
    .type = CV_LAYER_DENSE,
    .plan = dense_plan,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
    .weight_grads = dense_weight_grads,
    .forward_cols = dense_forward_cols,
    .act_grads_cols = dense_act_grads_cols,
    .input_grads_cols = dense_input_grads_cols,
};
