/*
 * kernels.h - numeric kernels on row-major float arrays: GEMM (OpenBLAS),
 * fused bias + activation, activation gradients, softmax / losses, and
 * naive reference versions used by tests to check the fast ones.
 *
 * Threading rule: kernels that call cblas_* are never called from inside an
 * OpenMP parallel region (OpenBLAS has its own pool, built on OpenMP);
 * element-wise kernels open their own `omp parallel for`.
 */
#ifndef CV_KERNELS_H
#define CV_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caviar/config.h"

/* C (m,n) = alpha * op(A) op(B) + beta * C, row-major, op = transpose if ta/tb. */
void cv_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc);
/* Same contract, plain loops in double accumulation: the reference. */
void cv_gemm_naive(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc);

/* y (n, f) += bias (f) broadcast over rows, then y = act(y) in place. */
void cv_bias_act_forward(float *y, const float *bias, int n, int f, enum cv_activation act,
                         float slope);
/* The same on f columns of n rows ld floats apart (a block of a wider
 * tensor); not softmax, which is row-wise. */
void cv_bias_act_block(float *y, int ld, const float *bias, int n, int f, enum cv_activation act,
                       float slope);
/* dz (n, f) = dy * act'(y), computed from the activation output y.  For
 * softmax the full Jacobian product is used.  dz may alias dy. */
void cv_act_backward(const float *y, const float *dy, float *dz, int n, int f,
                     enum cv_activation act, float slope);
/* The same on f columns of n rows ld floats apart in y, dy and dz; not
 * softmax. */
void cv_act_backward_block(const float *y, const float *dy, float *dz, int ld, int n, int f,
                           enum cv_activation act, float slope);
/* Per-channel: y (n, C, hw) += bias[c], then y = act(y) in place; and
 * db (C) = sum of dz (n, C, hw) over n and hw. */
void cv_channel_bias_act(float *y, const float *bias, int n, int c, int hw, enum cv_activation act,
                         float slope);
void cv_channel_bias_backward(const float *dz, float *db, int n, int c, int hw);

/* db (f) = sum over rows of dz (n, f). */
void cv_bias_backward(const float *dz, float *db, int n, int f);
/* The same over f columns of rows ld floats apart; db += the sums if
 * `accumulate`, else db = them. */
void cv_column_sums(const float *dz, int ld, float *db, int n, int f, bool accumulate);

/* Row-wise stable softmax of x (n, f) into p (may alias). */
void cv_softmax_rows(const float *x, float *p, int n, int f);

/* Losses over a batch of n rows of f outputs.  Each returns the sum of
 * per-sample losses and writes d (n, f) = scale * dLoss/dz for the network
 * output z (logits for the fused losses).  `correct` counts argmax hits
 * (for bce/mse with class ids: argmax too; multi-label: all bits right). */
/* Softmax cross-entropy options (NULL: plain).  Label smoothing e: the
 * targets are q = (1 - e) onehot(y) + e / f.  Class weights w (f values,
 * NULL = all 1) scale each sample's loss and gradient by w[y] (Keras'
 * class_weight: a weighted sum, divided by the count, not by the weights). */
struct cv_ce_opts {
    float smoothing;
    const float *weights;
};
/* A row whose class is negative (a padded step) adds no loss, no hit and a
 * zero gradient. */
double cv_loss_softmax_ce(const float *logits, const int32_t *y, int n, int f, float scale,
                          const struct cv_ce_opts *o, float *d, long long *correct);
double cv_loss_bce_logits(const float *logits, const int32_t *y_class, const float *y_vec, int n,
                          int f, float scale, float *d, long long *correct);
double cv_loss_mse(const float *out, const int32_t *y_class, const float *y_vec, int n, int f,
                   float scale, float *d, long long *correct);

/* out = act(x) element-wise / row-wise, for predictions from logits. */
void cv_act_apply(float *x, int n, int f, enum cv_activation act, float slope);

#endif /* CV_KERNELS_H */
