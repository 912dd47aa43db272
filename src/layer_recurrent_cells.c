/*
 * layer_recurrent_cells.c - one step of one row of each recurrent cell,
 * forward and backward, with the gate activations fused into the pass
 * that adds the recurrent projection (layer_recurrent.h has the contract).
 *   rnn:  h' = tanh(a),  a = x W^T + b + U h
 *   lstm: i, f, o = sigmoid, g = tanh; c' = f c + i g; h' = o tanh(c')
 *   gru:  r, z = sigmoid; n = tanh(a_n + r (U_n h + b_hn)); h' = (1 - z) n + z h
 * ref: Hochreiter & Schmidhuber 1997; Cho et al. 2014; PyTorch nn.LSTM/nn.GRU docs.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "layer_recurrent.h"

/* exp(x) within about 2 ulp for x in [-87, 88] (clamped outside), as
 * Cephes' expf: 2^n p(r).  Written to vectorize: libm's scalar expf and
 * tanhf otherwise take most of a step (docs/performance.md#recurrent). */
static inline float fexp(float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x; /* not fminf: a call, no vectors */
    float n = floorf(x * 1.44269504f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f; /* x - n ln 2 in two parts */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

static inline float sigm(float x)
{
    return 1.0f / (1.0f + fexp(-x));
}

/* (1 - e) / (1 + e), e = exp(-2|x|); near 0 its Taylor series, which keeps
 * the relative precision the quotient would lose. */
static inline float ftanh(float x)
{
    float a = fabsf(x), a2 = a * a, e = fexp(-2.0f * a);
    float near0 = a * (1.0f + a2 * (-1.0f / 3 + a2 * (2.0f / 15 - a2 * 17.0f / 315)));
    float far = (1.0f - e) / (1.0f + e); /* both computed: a select vectorizes, a branch not */
    return copysignf(a < 0.0625f ? near0 : far, x);
}

/* g += uh (n floats), when there is a previous state */
static void add_recurrent(float *g, const float *uh, int n)
{
    for (int j = 0; uh && j < n; j++)
        g[j] += uh[j];
}

static void rnn_forward(int hn, float *restrict g, const float *restrict uh, float *restrict h,
                        float *restrict c, float *restrict aux, const float *bh)
{
    (void)c, (void)aux, (void)bh;
    add_recurrent(g, uh, hn);
#pragma omp simd
    for (int j = 0; j < hn; j++) {
        g[j] = ftanh(g[j]);
        h[j] = g[j];
    }
}

static void rnn_backward(int hn, float *g, const float *hin, const float *cin, float *aux,
                         const float *dh, float *dc, float *dzh, float *dhd)
{
    (void)hin, (void)cin, (void)aux, (void)dc;
#pragma omp simd
    for (int j = 0; j < hn; j++) {
        g[j] = dh[j] * (1.0f - g[j] * g[j]);
        dzh[j] = g[j];
        dhd[j] = 0.0f;
    }
}

/* g = [i | f | g | o] */
static void lstm_forward(int hn, float *restrict g, const float *restrict uh, float *restrict h,
                         float *restrict c, float *restrict aux, const float *bh)
{
    (void)bh;
    float *gi = g, *gf = g + hn, *gg = g + 2 * hn, *go = g + 3 * hn;
    add_recurrent(g, uh, 4 * hn);
#pragma omp simd
    for (int j = 0; j < hn; j++) {
        float i = sigm(gi[j]), f = sigm(gf[j]), gc = ftanh(gg[j]), o = sigm(go[j]);
        c[j] = f * c[j] + i * gc;
        aux[j] = ftanh(c[j]);
        h[j] = o * aux[j];
        gi[j] = i, gf[j] = f, gg[j] = gc, go[j] = o;
    }
}

static void lstm_backward(int hn, float *g, const float *hin, const float *cin, float *aux,
                          const float *dh, float *dc, float *dzh, float *dhd)
{
    (void)hin;
    float *gi = g, *gf = g + hn, *gg = g + 2 * hn, *go = g + 3 * hn;
#pragma omp simd
    for (int j = 0; j < hn; j++) {
        float i = gi[j], f = gf[j], gc = gg[j], o = go[j], tc = aux[j];
        float dct = dc[j] + dh[j] * o * (1.0f - tc * tc);
        gi[j] = dct * gc * i * (1.0f - i);
        gf[j] = dct * cin[j] * f * (1.0f - f);
        gg[j] = dct * i * (1.0f - gc * gc);
        go[j] = dh[j] * tc * o * (1.0f - o);
        dc[j] = dct * f;
        dhd[j] = 0.0f;
    }
    memcpy(dzh, g, sizeof(float) * 4 * (size_t)hn);
}

/* g = [r | z | n] */
static void gru_forward(int hn, float *restrict g, const float *restrict uh, float *restrict h,
                        float *restrict c, float *restrict aux, const float *bh)
{
    (void)c;
    float *gr = g, *gz = g + hn, *gn = g + 2 * hn;
    add_recurrent(g, uh, 2 * hn);
#pragma omp simd
    for (int j = 0; j < hn; j++) {
        float r = sigm(gr[j]), z = sigm(gz[j]);
        aux[j] = (uh ? uh[2 * hn + j] : 0.0f) + bh[j];
        float nc = ftanh(gn[j] + r * aux[j]);
        h[j] = (1.0f - z) * nc + z * h[j];
        gr[j] = r, gz[j] = z, gn[j] = nc;
    }
}

static void gru_backward(int hn, float *g, const float *hin, const float *cin, float *aux,
                         const float *dh, float *dc, float *dzh, float *dhd)
{
    (void)cin, (void)dc;
    float *gr = g, *gz = g + hn, *gn = g + 2 * hn;
#pragma omp simd
    for (int j = 0; j < hn; j++) {
        float r = gr[j], z = gz[j], nc = gn[j];
        float dn = dh[j] * (1.0f - z) * (1.0f - nc * nc);
        gz[j] = dh[j] * (hin[j] - nc) * z * (1.0f - z);
        gr[j] = dn * aux[j] * r * (1.0f - r);
        gn[j] = dn;
        aux[j] = dn * r; /* dLoss/d(U_n h + b_hn) */
        dhd[j] = dh[j] * z;
        dzh[j] = gr[j], dzh[hn + j] = gz[j], dzh[2 * hn + j] = aux[j];
    }
}

const struct cv_cell cv__cell_rnn = {1, rnn_forward, rnn_backward};
const struct cv_cell cv__cell_gru = {3, gru_forward, gru_backward};
const struct cv_cell cv__cell_lstm = {4, lstm_forward, lstm_backward};
