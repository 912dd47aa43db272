/*
 * kernels.c - GEMM through OpenBLAS, fused element-wise kernels with OpenMP,
 * numerically stable softmax and losses, and naive references for tests.
 *
 * Every element-wise loop is row-independent, so results do not depend on
 * the thread count; reductions over rows accumulate in double.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "caviar/model.h"
#include "kernels.h"

/* Loops shorter than this stay single-threaded: a parallel region costs
 * more than it saves on small batches. */
#define PAR_MIN 16384

bool cv_set_flush_denormals(bool on)
{
#if defined(__SSE__)
    const unsigned int ftz_daz = 0x8040; /* MXCSR bit 15 flush-to-zero, bit 6 denormals-are-zero */
    /* the region's threads include the caller; without OpenMP it runs once, on the caller */
#pragma omp parallel
    _mm_setcsr(on ? (_mm_getcsr() | ftz_daz) : (_mm_getcsr() & ~ftz_daz));
    return true;
#else
    (void)on;
    return false;
#endif
}

void cv_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void cv_gemm_naive(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                double av = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double bv = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                s += av * bv;
            }
            float *cv = &c[(size_t)i * ldc + j];
            *cv = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *cv));
        }
    }
}

static inline float act1(float z, enum cv_activation act, float slope)
{
    switch (act) {
    case CV_ACT_SIGMOID:
        return z >= 0 ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
    case CV_ACT_TANH:
        return tanhf(z);
    case CV_ACT_RELU:
        return z > 0 ? z : 0.0f;
    case CV_ACT_LEAKY_RELU:
        return z > 0 ? z : slope * z;
    case CV_ACT_LINEAR:
    case CV_ACT_SOFTMAX: /* row-wise, handled by the caller */
    case CV_ACT_COUNT:
        break;
    }
    return z;
}

/* Row loops over f columns of rows ld floats apart, with the activation
 * hoisted out, so each one vectorises. */
#define ROWS_LOOP(n, f, ld, body)                                                                  \
    _Pragma("omp parallel for schedule(static) if ((long)(n) * (f) >= PAR_MIN)")                   \
    for (int i = 0; i < (n); i++) {                                                                \
        _Pragma("omp simd")                                                                        \
        for (int j = 0; j < (f); j++) {                                                            \
            size_t k = (size_t)i * (size_t)(ld) + (size_t)j;                                       \
            body;                                                                                  \
        }                                                                                          \
    }

void cv_bias_act_forward(float *y, const float *bias, int n, int f, enum cv_activation act,
                         float slope)
{
    cv_bias_act_block(y, f, bias, n, f, act, slope);
}

void cv_bias_act_block(float *y, int ld, const float *bias, int n, int f, enum cv_activation act,
                       float slope)
{
    static const float zero_bias[1] = {0};
    if (act == CV_ACT_SOFTMAX) {
        CV_ASSERT(ld == f); /* row-wise: a block of columns has no softmax */
        if (bias)
            cv_bias_act_forward(y, bias, n, f, CV_ACT_LINEAR, 0);
        cv_softmax_rows(y, y, n, f);
        return;
    }
    const float *b = bias ? bias : zero_bias;
    size_t bs = bias ? 1 : 0; /* stride 0 reads the single zero */
    switch (act) {
    case CV_ACT_RELU:
        ROWS_LOOP(n, f, ld, {
            float z = y[k] + b[j * bs];
            y[k] = z > 0 ? z : 0.0f;
        });
        break;
    case CV_ACT_LEAKY_RELU:
        ROWS_LOOP(n, f, ld, {
            float z = y[k] + b[j * bs];
            y[k] = z > 0 ? z : slope * z;
        });
        break;
    case CV_ACT_LINEAR:
        if (bias)
            ROWS_LOOP(n, f, ld, { y[k] += b[j]; });
        break;
    case CV_ACT_SIGMOID:
    case CV_ACT_TANH:
        ROWS_LOOP(n, f, ld, { y[k] = act1(y[k] + b[j * bs], act, slope); });
        break;
    case CV_ACT_SOFTMAX:
    case CV_ACT_COUNT:
        break;
    }
}

void cv_act_apply(float *x, int n, int f, enum cv_activation act, float slope)
{
    cv_bias_act_forward(x, NULL, n, f, act, slope);
}

static void softmax_backward(const float *y, const float *dy, float *dz, int n, int f)
{
#pragma omp parallel for schedule(static) if ((long)n * f >= PAR_MIN)
    for (int i = 0; i < n; i++) { /* dz = a * (g - sum(g * a)) */
        const float *a = y + (size_t)i * f, *g = dy + (size_t)i * f;
        float *d = dz + (size_t)i * f;
        double dot = 0;
        for (int j = 0; j < f; j++)
            dot += (double)g[j] * a[j];
        for (int j = 0; j < f; j++)
            d[j] = a[j] * (g[j] - (float)dot);
    }
}

void cv_act_backward(const float *y, const float *dy, float *dz, int n, int f,
                     enum cv_activation act, float slope)
{
    if (act == CV_ACT_SOFTMAX)
        softmax_backward(y, dy, dz, n, f);
    else
        cv_act_backward_block(y, dy, dz, f, n, f, act, slope);
}

void cv_act_backward_block(const float *y, const float *dy, float *dz, int ld, int n, int f,
                           enum cv_activation act, float slope)
{
    switch (act) {
    case CV_ACT_RELU:
        ROWS_LOOP(n, f, ld, { dz[k] = y[k] > 0 ? dy[k] : 0.0f; });
        break;
    case CV_ACT_LEAKY_RELU: /* slope > 0 keeps the sign of z in a */
        ROWS_LOOP(n, f, ld, { dz[k] = y[k] > 0 ? dy[k] : slope * dy[k]; });
        break;
    case CV_ACT_SIGMOID:
        ROWS_LOOP(n, f, ld, { dz[k] = dy[k] * y[k] * (1.0f - y[k]); });
        break;
    case CV_ACT_TANH:
        ROWS_LOOP(n, f, ld, { dz[k] = dy[k] * (1.0f - y[k] * y[k]); });
        break;
    case CV_ACT_LINEAR:
    case CV_ACT_COUNT:
        if (dz != dy)
            ROWS_LOOP(n, f, ld, { dz[k] = dy[k]; });
        break;
    case CV_ACT_SOFTMAX: /* row-wise: cv_act_backward */
        CV_ASSERT(!"softmax over a block of columns");
        break;
    }
}

void cv_channel_bias_act(float *y, const float *bias, int n, int c, int hw, enum cv_activation act,
                         float slope)
{
#pragma omp parallel for schedule(static) if ((long)n * c * hw >= PAR_MIN)
    for (int r = 0; r < n * c; r++) { /* row r of (n*C, hw) has channel r % C */
        float b = bias[r % c], *row = y + (size_t)r * hw;
        for (int j = 0; j < hw; j++)
            row[j] += b;
    }
    if (act != CV_ACT_LINEAR)
        cv_act_apply(y, n, c * hw, act, slope);
}

void cv_channel_bias_backward(const float *dz, float *db, int n, int c, int hw)
{
    for (int k = 0; k < c; k++) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            const float *row = dz + ((size_t)i * c + k) * hw;
#pragma omp simd reduction(+ : s)
            for (int j = 0; j < hw; j++)
                s += row[j];
        }
        db[k] = (float)s;
    }
}

void cv_bias_backward(const float *dz, float *db, int n, int f)
{
    cv_column_sums(dz, f, db, n, f, false);
}

void cv_column_sums(const float *dz, int ld, float *db, int n, int f, bool accumulate)
{
    /* row-major accumulation: unit stride, vectorised, a fixed summation
     * order whatever the thread count */
    if (!accumulate)
        for (int j = 0; j < f; j++)
            db[j] = 0.0f;
    for (int i = 0; i < n; i++) {
        const float *row = dz + (size_t)i * (size_t)ld;
#pragma omp simd
        for (int j = 0; j < f; j++)
            db[j] += row[j];
    }
}

void cv_softmax_rows(const float *x, float *p, int n, int f)
{
#pragma omp parallel for schedule(static) if ((long)n * f >= PAR_MIN)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * f;
        float *pi = p + (size_t)i * f;
        float mx = xi[0];
        for (int j = 1; j < f; j++)
            mx = xi[j] > mx ? xi[j] : mx;
        double s = 0;
        for (int j = 0; j < f; j++) {
            pi[j] = expf(xi[j] - mx);
            s += pi[j];
        }
        float inv = (float)(1.0 / s);
        for (int j = 0; j < f; j++)
            pi[j] *= inv;
    }
}

static int argmax(const float *v, int f)
{
    int best = 0;
    for (int j = 1; j < f; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

double cv_loss_softmax_ce(const float *logits, const int32_t *y, int n, int f, float scale,
                          const struct cv_ce_opts *o, float *d, long long *correct)
{
    double total = 0, e = o ? o->smoothing : 0, off = e / f, on = 1.0 - e + off;
    const float *cw = o ? o->weights : NULL;
    long long hits = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, hits) if ((long)n * f >= PAR_MIN)
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * f;
        float *di = d + (size_t)i * f;
        if (y[i] < 0) { /* a padded step: no loss, no gradient */
            memset(di, 0, sizeof(float) * (size_t)f);
            continue;
        }
        float mx = z[argmax(z, f)];
        double s = 0, qz = 0, w = cw ? cw[y[i]] : 1.0;
        for (int j = 0; j < f; j++) {
            s += exp((double)(z[j] - mx));
            qz += (j == y[i] ? on : off) * z[j];
        }
        double lse = log(s) + mx; /* log-sum-exp: loss = lse - sum_j q_j z_j */
        total += w * (lse - qz);
        hits += argmax(z, f) == y[i];
        for (int j = 0; j < f; j++)
            di[j] = scale * (float)(w * (exp((double)z[j] - lse) - (j == y[i] ? on : off)));
    }
    if (correct)
        *correct += hits;
    return total;
}

static inline float target_at(const int32_t *y_class, const float *y_vec, int i, int j, int f)
{
    if (y_vec)
        return y_vec[(size_t)i * f + j];
    return f == 1 ? (float)y_class[i] : (float)(y_class[i] == j);
}

static bool row_correct(const float *out, const int32_t *y_class, const float *y_vec, int i, int f,
                        float threshold)
{
    const float *o = out + (size_t)i * f;
    if (y_class && f > 1)
        return argmax(o, f) == y_class[i];
    for (int j = 0; j < f; j++) /* multi-label / binary: every bit right */
        if ((o[j] > threshold) != (target_at(y_class, y_vec, i, j, f) > 0.5f))
            return false;
    return true;
}

double cv_loss_bce_logits(const float *logits, const int32_t *y_class, const float *y_vec, int n,
                          int f, float scale, float *d, long long *correct)
{
    double total = 0;
    long long hits = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, hits) if ((long)n * f >= PAR_MIN)
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < f; j++) {
            double z = logits[(size_t)i * f + j], t = target_at(y_class, y_vec, i, j, f);
            /* stable: max(z,0) - z t + log(1 + e^-|z|) */
            total += (z > 0 ? z : 0) - z * t + log1p(exp(-fabs(z)));
            double p = z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
            d[(size_t)i * f + j] = scale * (float)(p - t);
        }
        hits += row_correct(logits, y_class, y_vec, i, f, 0.0f);
    }
    if (correct)
        *correct += hits;
    return total;
}

double cv_loss_mse(const float *out, const int32_t *y_class, const float *y_vec, int n, int f,
                   float scale, float *d, long long *correct)
{
    double total = 0;
    long long hits = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, hits) if ((long)n * f >= PAR_MIN)
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < f; j++) {
            double e = (double)out[(size_t)i * f + j] - target_at(y_class, y_vec, i, j, f);
            total += 0.5 * e * e; /* per sample: 1/2 sum of squared errors */
            d[(size_t)i * f + j] = scale * (float)e;
        }
        if (y_class)
            hits += row_correct(out, y_class, y_vec, i, f, 0.5f);
    }
    if (correct)
        *correct += hits;
    return total;
}
