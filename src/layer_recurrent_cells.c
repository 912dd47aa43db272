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
#include <string.h>

#include "layer_recurrent.h"

static inline float sigm(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

static void rnn_forward(int hn, float *g, const float *uh, float *h, float *c, float *aux,
                        const float *bh)
{
    (void)c, (void)aux, (void)bh;
    for (int j = 0; j < hn; j++) {
        g[j] = tanhf(g[j] + (uh ? uh[j] : 0.0f));
        h[j] = g[j];
    }
}

static void rnn_backward(int hn, float *g, const float *hin, const float *cin, float *aux,
                         const float *dh, float *dc, float *dzh, float *dhd)
{
    (void)hin, (void)cin, (void)aux, (void)dc;
    for (int j = 0; j < hn; j++) {
        g[j] = dh[j] * (1.0f - g[j] * g[j]);
        dzh[j] = g[j];
        dhd[j] = 0.0f;
    }
}

/* g = [i | f | g | o] */
static void lstm_forward(int hn, float *g, const float *uh, float *h, float *c, float *aux,
                         const float *bh)
{
    (void)bh;
    float *gi = g, *gf = g + hn, *gg = g + 2 * hn, *go = g + 3 * hn;
    for (int j = 0; j < hn; j++) {
        float i = sigm(gi[j] + (uh ? uh[j] : 0.0f));
        float f = sigm(gf[j] + (uh ? uh[hn + j] : 0.0f));
        float gc = tanhf(gg[j] + (uh ? uh[2 * hn + j] : 0.0f));
        float o = sigm(go[j] + (uh ? uh[3 * hn + j] : 0.0f));
        c[j] = f * c[j] + i * gc;
        aux[j] = tanhf(c[j]);
        h[j] = o * aux[j];
        gi[j] = i, gf[j] = f, gg[j] = gc, go[j] = o;
    }
}

static void lstm_backward(int hn, float *g, const float *hin, const float *cin, float *aux,
                          const float *dh, float *dc, float *dzh, float *dhd)
{
    (void)hin;
    float *gi = g, *gf = g + hn, *gg = g + 2 * hn, *go = g + 3 * hn;
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
static void gru_forward(int hn, float *g, const float *uh, float *h, float *c, float *aux,
                        const float *bh)
{
    (void)c;
    float *gr = g, *gz = g + hn, *gn = g + 2 * hn;
    for (int j = 0; j < hn; j++) {
        float r = sigm(gr[j] + (uh ? uh[j] : 0.0f));
        float z = sigm(gz[j] + (uh ? uh[hn + j] : 0.0f));
        aux[j] = (uh ? uh[2 * hn + j] : 0.0f) + bh[j];
        float nc = tanhf(gn[j] + r * aux[j]);
        h[j] = (1.0f - z) * nc + z * h[j];
        gr[j] = r, gz[j] = z, gn[j] = nc;
    }
}

static void gru_backward(int hn, float *g, const float *hin, const float *cin, float *aux,
                         const float *dh, float *dc, float *dzh, float *dhd)
{
    (void)cin, (void)dc;
    float *gr = g, *gz = g + hn, *gn = g + 2 * hn;
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
