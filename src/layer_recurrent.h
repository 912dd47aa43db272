/*
 * layer_recurrent.h - the per-row step maths of the recurrent cells (tanh
 * RNN, GRU, LSTM), used by layer_recurrent.c, which owns the sequence
 * loop, the GEMMs and the buffers.  Gate orders and the GRU's reset gate
 * follow PyTorch (nn.LSTM: i, f, g, o; nn.GRU: r, z, n with r applied to
 * U_n h + b_hn), so weights map one to one.
 */
#ifndef CV_LAYER_RECURRENT_H
#define CV_LAYER_RECURRENT_H

struct cv_cell {
    int gates; /* G: blocks of H pre-activations per step */
    /* One step of one row.  g (G*H): in, x W^T + b; out, the activated
     * gates.  uh (G*H): U h_prev, NULL at the first step (h_prev = 0).
     * h (H), c (H, LSTM only, else NULL): the state, updated in place.
     * aux (H): written for backward (LSTM tanh(c'), GRU U_n h + b_hn).
     * bh (H): the GRU's recurrent candidate bias b_hn, else NULL. */
    void (*forward)(int hn, float *g, const float *uh, float *h, float *c, float *aux,
                    const float *bh);
    /* Backward of one step of one row.  g: in, the activated gates; out,
     * dLoss/d(x W^T + b).  hin, cin: the state the step started from.
     * dh (H): dLoss/dh'.  dc (H, LSTM): in dLoss/dc', out dLoss/dc_prev.
     * dzh (G*H): out, dLoss/d(U h_prev) (GRU: its n part also into aux).
     * dhd (H): out, the part of dLoss/dh_prev that bypasses U (GRU). */
    void (*backward)(int hn, float *g, const float *hin, const float *cin, float *aux,
                     const float *dh, float *dc, float *dzh, float *dhd);
};

extern const struct cv_cell cv__cell_rnn;
extern const struct cv_cell cv__cell_gru;
extern const struct cv_cell cv__cell_lstm;

#endif /* CV_LAYER_RECURRENT_H */
