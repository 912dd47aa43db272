/*
 * layer_recurrent.c - rnn (tanh), gru and lstm layers over a sequence
 * (T, F) -> (T, units) with return_sequences, else the last step (units).
 * Full backpropagation through time.  Per batch:
 *   gates (n*T, G*H) = x (n*T, F) W^T + b      one GEMM over every step
 *   for each step k: U h (n, G*H)              one GEMM over the batch
 *                    fused gates + state       per row (layer_recurrent_cells.c)
 * and backward mirrors it: one GEMM per step for dLoss/dh_prev, then dW,
 * dU, dx as single GEMMs over all n*T steps.  Rows may end early (ctx
 * lengths): a row's steps >= its length are never computed, output zeros
 * and get no gradient, so padding changes nothing.  With `reverse` (the
 * backward half of a bidirectional layer) a row runs from its last valid
 * step to step 0, and outputs stay aligned with the input steps.
 * All buffers are scratch sized at plan time: a step allocates nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "layer.h"
#include "layer_recurrent.h"

enum { W_, U_, B_, BH_ };

struct rec {
    const struct cv_cell *cell;
    int t, f, h, g; /* steps, features per step, units, gates */
    bool seq;       /* output every step */
    bool reverse;   /* run from the last valid step */
};

/* Scratch views, each sized for max_batch rows. */
struct bufs {
    float *gates; /* (n, T, G*H) pre-activations, then gates, then their gradients */
    float *hin;   /* (n, T, H) state each step started from */
    float *cin;   /* (n, T, H) LSTM cell each step started from */
    float *aux;   /* (n, T, H) cell-specific (layer_recurrent.h) */
    float *uh;    /* (n, G*H) U h of the current step */
    float *dzk;   /* (n, G*H) dLoss/d(U h_prev) of the current step */
    float *h, *c; /* (n, H) running state */
    float *dh[2]; /* (n, H) dLoss/dh, current and previous step */
    float *dc;    /* (n, H) dLoss/dc */
};

static struct bufs bufs_of(const struct cv_layer *l)
{
    const struct rec *r = l->priv;
    size_t mb = (size_t)l->max_batch, gh = (size_t)r->g * r->h, th = (size_t)r->t * r->h;
    float *p = l->scratch;
    struct bufs b;
    b.gates = p, p += mb * r->t * gh;
    b.hin = p, p += mb * th;
    b.cin = p, p += mb * th;
    b.aux = p, p += mb * th;
    b.uh = p, p += mb * gh;
    b.dzk = p, p += mb * gh;
    b.h = p, p += mb * r->h;
    b.c = p, p += mb * r->h;
    b.dh[0] = p, p += mb * r->h;
    b.dh[1] = p, p += mb * r->h;
    b.dc = p;
    return b;
}

static cv_status rec_plan(struct cv_layer *l, const struct cv_cell *cell, struct cv_error *err)
{
    const char *name = cv_layer_type_name(l->spec->type);
    if (l->in.t < 1)
        return cv_fail(err, CV_SHAPE,
                       "layer %d (%s) needs a sequence (T steps of features: model.input [T, F], "
                       "an embedding, or a recurrent layer with return_sequences before it), got "
                       "%zu values without a time axis",
                       l->index, name, cv_shape_size(l->in));
    if (l->spec->units < 1)
        return cv_fail(err, CV_CONFIG, "layer %d (%s): units = %d: expected >= 1", l->index, name,
                       l->spec->units);
    struct rec *r = cv_calloc(1, sizeof(*r));
    if (!r)
        return cv_fail(err, CV_NOMEM, "out of memory");
    l->priv = r;
    *r = (struct rec){cell,
                      l->in.t,
                      (int)cv_shape_step(l->in),
                      l->spec->units,
                      cell->gates,
                      l->spec->return_sequences,
                      l->spec->reverse};
    int wd[2] = {r->g * r->h, r->f}, ud[2] = {r->g * r->h, r->h}, bd[1] = {r->g * r->h};
    cv__layer_add_param(l, "W", true, 2, wd); /* (G*H, F) input weights */
    cv__layer_add_param(l, "U", true, 2, ud); /* (G*H, H) recurrent weights */
    cv__layer_add_param(l, "b", false, 1, bd);
    if (cell == &cv__cell_gru)
        cv__layer_add_param(l, "bh", false, 1, &r->h); /* (H) b_hn inside the reset gate */
    l->out = (struct cv_shape){r->h, 1, 1, r->seq ? r->t : 0};
    size_t gh = (size_t)r->g * r->h;
    l->scratch_per_sample = (size_t)r->t * (gh + 3 * (size_t)r->h) + 2 * gh + 5 * (size_t)r->h;
    return CV_OK;
}

static cv_status rnn_plan(struct cv_layer *l, struct cv_error *err)
{
    return rec_plan(l, &cv__cell_rnn, err);
}
static cv_status gru_plan(struct cv_layer *l, struct cv_error *err)
{
    return rec_plan(l, &cv__cell_gru, err);
}
static cv_status lstm_plan(struct cv_layer *l, struct cv_error *err)
{
    return rec_plan(l, &cv__cell_lstm, err);
}

static void rec_init(struct cv_layer *l, struct cv_rng *rng)
{
    const struct rec *r = l->priv;
    cv__init_weights(&l->params[W_], r->f, l->spec->init, CV_ACT_TANH, rng);
    cv__init_weights(&l->params[U_], r->h, l->spec->init, CV_ACT_TANH, rng);
    memset(l->params[B_].data, 0, sizeof(float) * l->params[B_].count);
    if (r->cell == &cv__cell_lstm) /* forget gate open at first: Jozefowicz et al. 2015 */
        for (int j = r->h; j < 2 * r->h; j++)
            l->params[B_].data[j] = 1.0f;
    if (l->n_params > BH_)
        memset(l->params[BH_].data, 0, sizeof(float) * l->params[BH_].count);
}

static void rec_destroy(struct cv_layer *l)
{
    free(l->priv);
}

#define ROWS_PAR(n, r) if ((long)(n) * (r)->g * (r)->h >= 16384)

/* Step k of every row still running; y gets the new state (sequences). */
static void step_forward(const struct cv_layer *l, const struct cv_ctx *ctx, const struct bufs *b,
                         int k, float *y, int n)
{
    const struct rec *r = l->priv;
    size_t hn = (size_t)r->h, gh = (size_t)r->g * hn;
    const float *bh = l->n_params > BH_ ? l->params[BH_].data : NULL;
#pragma omp parallel for schedule(static) ROWS_PAR(n, r)
    for (int i = 0; i < n; i++) {
        int len = cv_ctx_length(ctx, i, r->t);
        if (k >= len)
            continue;
        size_t bt = (size_t)i * r->t + (size_t)(r->reverse ? len - 1 - k : k);
        float *h = b->h + i * hn, *c = b->c + i * hn;
        memcpy(b->hin + bt * hn, h, sizeof(float) * hn);
        memcpy(b->cin + bt * hn, c, sizeof(float) * hn);
        r->cell->forward(r->h, b->gates + bt * gh, k ? b->uh + i * gh : NULL, h, c,
                         b->aux + bt * hn, bh);
        if (r->seq)
            memcpy(y + bt * hn, h, sizeof(float) * hn);
    }
}

/* The last state of each row (return last), zeros on padded steps. */
static void finish_forward(const struct cv_layer *l, const struct cv_ctx *ctx, const struct bufs *b,
                           float *y, int n)
{
    const struct rec *r = l->priv;
    size_t hn = (size_t)r->h;
    for (int i = 0; i < n; i++) {
        int len = cv_ctx_length(ctx, i, r->t);
        size_t pad = (size_t)(r->t - len) * hn, first = ((size_t)i * r->t + len) * hn;
        memset(b->hin + first, 0, sizeof(float) * pad); /* finite in the dU GEMM */
        if (r->seq)
            memset(y + first, 0, sizeof(float) * pad);
        else
            memcpy(y + i * hn, b->h + i * hn, sizeof(float) * hn);
    }
}

/* x: (n, T, F) -> y: (n, T, H) or (n, H) */
static void rec_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                        int n)
{
    const struct rec *r = l->priv;
    struct bufs b = bufs_of(l);
    int gh = r->g * r->h, rows = n * r->t;
    if (n == 0)
        return;
    cv_gemm(false, true, rows, gh, r->f, 1.0f, x, r->f, l->params[W_].data, r->f, 0.0f, b.gates,
            gh);
    cv_bias_act_forward(b.gates, l->params[B_].data, rows, gh, CV_ACT_LINEAR, 0.0f);
    memset(b.h, 0, sizeof(float) * (size_t)n * r->h);
    memset(b.c, 0, sizeof(float) * (size_t)n * r->h);
    for (int k = 0; k < r->t; k++) {
        if (k > 0) /* uh (n, G*H) = h (n, H) U^T */
            cv_gemm(false, true, n, gh, r->h, 1.0f, b.h, r->h, l->params[U_].data, r->h, 0.0f, b.uh,
                    gh);
        step_forward(l, ctx, &b, k, y, n);
    }
    finish_forward(l, ctx, &b, y, n);
}

/* Padded steps get zero gradients, so the GEMMs over all n*T steps skip them. */
static void zero_padding(const struct cv_layer *l, const struct cv_ctx *ctx, float *buf,
                         size_t width, int n)
{
    const struct rec *r = l->priv;
    for (int i = 0; i < n; i++) {
        int len = cv_ctx_length(ctx, i, r->t);
        memset(buf + ((size_t)i * r->t + len) * width, 0,
               sizeof(float) * (size_t)(r->t - len) * width);
    }
}

/* Backward of step k: dh holds dLoss/dh' and gets dy; writes dzk and
 * dhd (the direct part of dLoss/dh_prev). */
static void step_backward(const struct cv_layer *l, const struct cv_ctx *ctx, const struct bufs *b,
                          int k, float *dh, float *dhd, const float *dy, int n)
{
    const struct rec *r = l->priv;
    size_t hn = (size_t)r->h, gh = (size_t)r->g * hn;
#pragma omp parallel for schedule(static) ROWS_PAR(n, r)
    for (int i = 0; i < n; i++) {
        int len = cv_ctx_length(ctx, i, r->t);
        float *d = dh + i * hn;
        if (k >= len) { /* not started yet, backwards: nothing flows */
            memset(b->dzk + i * gh, 0, sizeof(float) * gh);
            memset(dhd + i * hn, 0, sizeof(float) * hn);
            continue;
        }
        size_t bt = (size_t)i * r->t + (size_t)(r->reverse ? len - 1 - k : k);
        const float *dyi = r->seq ? dy + bt * hn : k == len - 1 ? dy + i * hn : NULL;
        for (size_t j = 0; dyi && j < hn; j++)
            d[j] += dyi[j];
        r->cell->backward(r->h, b->gates + bt * gh, b->hin + bt * hn, b->cin + bt * hn,
                          b->aux + bt * hn, d, b->dc + i * hn, b->dzk + i * gh, dhd + i * hn);
    }
}

/* dW, dU, db (and the GRU's dbh) as GEMMs / sums over all n*T steps. */
static void param_grads(struct cv_layer *l, const struct bufs *b, const float *x, int n)
{
    const struct rec *r = l->priv;
    int gh = r->g * r->h, rows = n * r->t, hr = l->n_params > BH_ ? 2 * r->h : gh;
    /* dW (GH, F) = dz^T (GH, n*T) x (n*T, F) */
    cv_gemm(true, false, gh, r->f, rows, 1.0f, b->gates, gh, x, r->f, 0.0f, l->params[W_].grad,
            r->f);
    /* dU (GH, H) = dzh^T hin; the GRU's n rows take the reset-gated part in aux */
    cv_gemm(true, false, hr, r->h, rows, 1.0f, b->gates, gh, b->hin, r->h, 0.0f, l->params[U_].grad,
            r->h);
    cv_column_sums(b->gates, gh, l->params[B_].grad, rows, gh, false);
    if (hr == gh)
        return;
    cv_gemm(true, false, r->h, r->h, rows, 1.0f, b->aux, r->h, b->hin, r->h, 0.0f,
            l->params[U_].grad + (size_t)hr * r->h, r->h);
    cv_column_sums(b->aux, r->h, l->params[BH_].grad, rows, r->h, false);
}

static void zero_grads(struct cv_layer *l)
{
    for (int v = 0; v < l->n_params; v++)
        memset(l->params[v].grad, 0, sizeof(float) * l->params[v].count);
}

static void rec_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                         const float *y, const float *dy, float *dx, int n)
{
    const struct rec *r = l->priv;
    struct bufs b = bufs_of(l);
    int gh = r->g * r->h;
    (void)y;
    if (n == 0) {
        zero_grads(l);
        return;
    }
    memset(b.dh[0], 0, sizeof(float) * (size_t)n * r->h);
    memset(b.dc, 0, sizeof(float) * (size_t)n * r->h);
    zero_padding(l, ctx, b.gates, (size_t)gh, n);
    zero_padding(l, ctx, b.aux, (size_t)r->h, n);
    int cur = 0;
    for (int k = r->t - 1; k >= 0; k--) {
        step_backward(l, ctx, &b, k, b.dh[cur], b.dh[cur ^ 1], dy, n);
        if (k > 0) /* dh_prev (n, H) += dzk (n, G*H) U (G*H, H) */
            cv_gemm(false, false, n, r->h, gh, 1.0f, b.dzk, gh, l->params[U_].data, r->h, 1.0f,
                    b.dh[cur ^ 1], r->h);
        cur ^= 1;
    }
    param_grads(l, &b, x, n);
    if (dx) /* dx (n*T, F) = dz (n*T, G*H) W (G*H, F) */
        cv_gemm(false, false, n * r->t, r->f, gh, 1.0f, b.gates, gh, l->params[W_].data, r->f, 0.0f,
                dx, r->f);
}

#define REC_OPS(kind, plan_fn)                                                                     \
    {                                                                                              \
        .type = kind, .plan = plan_fn, .init = rec_init, .forward = rec_forward,                   \
        .backward = rec_backward, .destroy = rec_destroy,                                          \
    }

const struct cv_layer_ops cv__rnn_ops = REC_OPS(CV_LAYER_RNN, rnn_plan);
const struct cv_layer_ops cv__gru_ops = REC_OPS(CV_LAYER_GRU, gru_plan);
const struct cv_layer_ops cv__lstm_ops = REC_OPS(CV_LAYER_LSTM, lstm_plan);
