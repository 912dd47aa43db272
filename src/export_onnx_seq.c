/*
 * export_onnx_seq.c - ONNX emitters of the sequence layers: embedding
 * (Gather), rnn, gru and lstm (ONNX RNN, GRU, LSTM), the bidirectional
 * wrapper (the same ops with direction = bidirectional), and dense on a
 * sequence (per step).  A sequence travels as (N, T, C), batch first, as
 * caviar lays it out; opset 13's recurrent ops want (T, N, C) and give
 * Y (T, D, N, H) and Y_h (D, N, H), so each recurrent layer is wrapped in
 * Transposes.  The graph input `lengths` (N) feeds every recurrent op's
 * sequence_lens: steps past a row's length are skipped and output zeros,
 * and Y_h is the state at the last valid step (at step 0 for the reversed
 * direction), as in layer_recurrent.c.
 */
#include <stdlib.h>
#include <string.h>

#include "export_onnx_internal.h"

/* (N, T) float ids -> Cast int64 -> Gather rows of E (vocab, dim) -> (N, T,
 * dim).  The pad_id row reads as zeros in caviar whatever the table holds,
 * so it is written as zeros. */
cv_status cv__onnx_embedding(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                             struct cv_error *err)
{
    const struct cv_view *e = &l->params[0];
    int64_t dims[2] = {e->dims[0], e->dims[1]};
    char table[CV_ONNX_NAME_MAX], ids[CV_ONNX_NAME_MAX];
    struct cv_onnx_attr to = {.name = "to", .type = CV_ONNX_INT, .i = 7 /* INT64 */};
    float *copy = cv_calloc(e->count, sizeof(float));
    if (!copy)
        return cv_fail(err, CV_NOMEM, "export: out of memory for the embedding table");
    memcpy(copy, e->data, e->count * sizeof(float));
    if (l->spec->pad_id >= 0)
        memset(copy + (size_t)l->spec->pad_id * e->dims[1], 0, sizeof(float) * e->dims[1]);
    cv__onnx_floats(g, "E", dims, 2, copy, table);
    free(copy);
    cv__onnx_apply(g, "Cast", v, NULL, 0, &to, 1);
    memcpy(ids, v->name, sizeof(ids));
    const char *in[2] = {table, ids};
    cv__onnx_name(g, "Gather", v->name);
    cv__onnx_node(g, "Gather", in, 2, v->name, NULL, 0);
    v->rank = 3;
    v->shape = l->out;
    return CV_OK;
}

/* Per step: Reshape (N*T, in), Gemm with W (out, in) transposed, Reshape
 * (N, T, out). */
void cv__onnx_dense_steps(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                          const char *w, const char *b)
{
    int64_t rows[2] = {-1, (int64_t)cv_shape_step(l->in)}, back[3] = {-1, l->out.t, l->out.c};
    char s[CV_ONNX_NAME_MAX];
    const char *shape[1] = {s}, *wb[2] = {w, b};
    struct cv_onnx_attr trans_b = {.name = "transB", .type = CV_ONNX_INT, .i = 1};
    cv__onnx_int64s(g, "rows", rows, 2, s);
    cv__onnx_apply(g, "Reshape", v, shape, 1, NULL, 0);
    cv__onnx_apply(g, "Gemm", v, wb, 2, &trans_b, 1);
    cv__onnx_int64s(g, "steps", back, 3, s);
    cv__onnx_apply(g, "Reshape", v, shape, 1, NULL, 0);
}

/* ONNX's gate blocks in caviar's order: LSTM i o f c from caviar's i f g o,
 * GRU z r h from caviar's r z n (layer_recurrent_cells.c). */
static const int lstm_order[4] = {0, 3, 1, 2}, gru_order[3] = {1, 0, 2}, rnn_order[1] = {0};

struct rec_op {
    const char *op;
    const int *order;
    int gates;
};

static struct rec_op rec_op_of(enum cv_layer_type type)
{
    if (type == CV_LAYER_LSTM)
        return (struct rec_op){"LSTM", lstm_order, 4};
    if (type == CV_LAYER_GRU)
        return (struct rec_op){"GRU", gru_order, 3};
    return (struct rec_op){"RNN", rnn_order, 1};
}

/* dst (D, G*H, cols): each direction's (G*H, cols) blocks reordered. */
static void gate_rows(float *dst, const struct cv_layer *const *dirs, int nd, int view,
                      struct rec_op op, size_t block)
{
    for (int d = 0; d < nd; d++)
        for (int k = 0; k < op.gates; k++)
            memcpy(dst + ((size_t)d * op.gates + k) * block,
                   dirs[d]->params[view].data + (size_t)op.order[k] * block, block * sizeof(float));
}

/* B (D, 2 G*H): [W biases | R biases]; caviar's b goes on the W side, the
 * GRU's b_hn (inside the reset gate) on the R side of the h block. */
static void gate_biases(float *dst, const struct cv_layer *const *dirs, int nd, struct rec_op op,
                        size_t h)
{
    size_t gh = (size_t)op.gates * h;
    for (int d = 0; d < nd; d++) {
        float *row = dst + (size_t)d * 2 * gh;
        for (int k = 0; k < op.gates; k++)
            memcpy(row + k * h, dirs[d]->params[2].data + (size_t)op.order[k] * h,
                   h * sizeof(float));
        if (dirs[d]->n_params > 3) /* GRU: bh, the h block is last in z r h */
            memcpy(row + gh + 2 * h, dirs[d]->params[3].data, h * sizeof(float));
    }
}

/* W, R, B initializers of nd directions into names[0..2]. */
static cv_status rec_weights(struct cv_onnx *g, const struct cv_layer *const *dirs, int nd,
                             struct rec_op op, char names[3][CV_ONNX_NAME_MAX],
                             struct cv_error *err)
{
    size_t h = (size_t)dirs[0]->spec->units, f = (size_t)cv_shape_step(dirs[0]->in);
    size_t gh = (size_t)op.gates * h, most = gh * (f > h + 2 ? f : h + 2) * (size_t)nd;
    float *buf = cv_calloc(most, sizeof(float));
    if (!buf)
        return cv_fail(err, CV_NOMEM, "export: out of memory for recurrent weights");
    int64_t wd[3] = {nd, (int64_t)gh, (int64_t)f}, rd[3] = {nd, (int64_t)gh, (int64_t)h};
    int64_t bd[2] = {nd, 2 * (int64_t)gh};
    gate_rows(buf, dirs, nd, 0, op, h * f);
    cv__onnx_floats(g, "W", wd, 3, buf, names[0]);
    gate_rows(buf, dirs, nd, 1, op, h * h);
    cv__onnx_floats(g, "R", rd, 3, buf, names[1]);
    memset(buf, 0, most * sizeof(float));
    gate_biases(buf, dirs, nd, op, h);
    cv__onnx_floats(g, "B", bd, 2, buf, names[2]);
    free(buf);
    return CV_OK;
}

/* Transpose v with perm (rank n). */
static void transpose(struct cv_onnx *g, struct cv_onnx_val *v, const int64_t *perm, int n)
{
    struct cv_onnx_attr a = {.name = "perm", .type = CV_ONNX_INTS, .ints = perm, .n_ints = n};
    cv__onnx_apply(g, "Transpose", v, NULL, 0, &a, 1);
}

/* The directions' outputs merged: summed over the direction axis, else
 * laid side by side (concat; one direction: just the axis dropped). */
static void merge(struct cv_onnx *g, struct cv_onnx_val *v, bool sum, int axis)
{
    char s[CV_ONNX_NAME_MAX];
    const char *extra[1] = {s};
    if (sum) {
        int64_t axes[1] = {axis};
        struct cv_onnx_attr keep = {.name = "keepdims", .type = CV_ONNX_INT, .i = 0};
        cv__onnx_int64s(g, "axes", axes, 1, s);
        cv__onnx_apply(g, "ReduceSum", v, extra, 1, &keep, 1);
    } else if (axis == 2) { /* (N, T, D, H) -> (N, T, D*H) */
        int64_t shape[3] = {0, 0, -1};
        cv__onnx_int64s(g, "shape", shape, 3, s);
        cv__onnx_apply(g, "Reshape", v, extra, 1, NULL, 0);
    } else { /* (N, D, H) -> (N, D*H) */
        struct cv_onnx_attr one = {.name = "axis", .type = CV_ONNX_INT, .i = 1};
        cv__onnx_apply(g, "Flatten", v, NULL, 0, &one, 1);
    }
}

/* rnn, gru, lstm, or a bidirectional one (its two children as directions). */
cv_status cv__onnx_recurrent(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                             struct cv_error *err)
{
    bool bi = l->ops->type == CV_LAYER_BIDIRECTIONAL;
    const struct cv_layer *dirs[2] = {bi ? &l->children[0] : l, bi ? &l->children[1] : NULL};
    struct rec_op op = rec_op_of(dirs[0]->ops->type);
    bool seq = dirs[0]->spec->return_sequences, sum = bi && l->spec->merge == CV_MERGE_SUM;
    char w[3][CV_ONNX_NAME_MAX], y[CV_ONNX_NAME_MAX];
    cv_status st = rec_weights(g, dirs, bi ? 2 : 1, op, w, err);
    if (st != CV_OK)
        return st;
    static const int64_t tn[3] = {1, 0, 2}, ntdh[4] = {2, 0, 1, 3};
    transpose(g, v, tn, 3); /* (T, N, F) */
    struct cv_onnx_attr a[3] = {
        {.name = "hidden_size", .type = CV_ONNX_INT, .i = dirs[0]->spec->units},
        {.name = "direction", .type = CV_ONNX_STRING, .s = bi ? "bidirectional" : "forward"},
        {.name = "linear_before_reset", .type = CV_ONNX_INT, .i = 1}}; /* r on U_n h + b_hn */
    const char *in[5] = {v->name, w[0], w[1], w[2], CV_ONNX_LENGTHS};
    const char *outs[2] = {y, y}; /* Y (T, D, N, H), or Y_h (D, N, H) only */
    outs[0] = seq ? y : "";
    cv__onnx_name(g, op.op, y);
    cv__onnx_node_outs(g, op.op, in, 5, outs, seq ? 1 : 2, a, op.gates == 3 ? 3 : 2);
    memcpy(v->name, y, sizeof(y));
    transpose(g, v, seq ? ntdh : tn, seq ? 4 : 3); /* (N, T, D, H) or (N, D, H) */
    merge(g, v, sum, seq ? 2 : 1);
    v->rank = seq ? 3 : 2;
    v->shape = l->out;
    return CV_OK;
}
