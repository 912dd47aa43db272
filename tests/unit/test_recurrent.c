/*
 * test_recurrent.c - sequence layers against independent expectations:
 * each cell's forward (and a bidirectional pair's) against the textbook
 * equations evaluated here in double; centred differences for embedding,
 * rnn, gru, lstm, stacked and bidirectional layers with per-step and
 * per-row targets and ragged lengths; padding that changes nothing; and
 * the shape errors a user can make.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/gradcheck.h"
#include "caviar/model.h"
#include "fixtures.h"
#include "test.h"
#include "util.h"

#define NB 3 /* batch rows */

/* input (steps, features), or (features) when steps == 0 */
static void base(struct cv_config *c, int steps, int features, enum cv_loss loss)
{
    memset(c, 0, sizeof(*c));
    c->model.input[0] = features;
    c->model.input[1] = c->model.input[2] = 1;
    c->model.input_steps = steps;
    c->model.input_rank = steps ? 2 : 1;
    c->model.loss = loss;
    c->train.seed = 7;
}

static cv_model *make(const struct cv_config *c, int batch, struct cv_error *err)
{
    cv_model *m = NULL;
    if (cv_model_create(c, batch, &m, err) != CV_OK)
        return NULL;
    cv_model_init_params(m, 11);
    return m;
}

/* ---- forward against the equations ---- */

static double sg(double v)
{
    return 1 / (1 + exp(-v));
}

/* p: W (G*H, F), U (G*H, H), b (G*H), bh (H, gru); one step of one row. */
static void ref_step(enum cv_layer_type type, const float *p, int f, int hn, const double *x,
                     double *h, double *c)
{
    int g = type == CV_LAYER_LSTM ? 4 : type == CV_LAYER_GRU ? 3 : 1;
    const float *w = p, *u = w + g * hn * f, *b = u + g * hn * hn, *bh = b + g * hn;
    double a[4 * 8], uh[4 * 8], hn_new[8];
    for (int r = 0; r < g * hn; r++) {
        a[r] = b[r], uh[r] = 0;
        for (int k = 0; k < f; k++)
            a[r] += w[r * f + k] * x[k];
        for (int k = 0; k < hn; k++)
            uh[r] += u[r * hn + k] * h[k];
    }
    for (int j = 0; j < hn; j++) {
        if (type == CV_LAYER_RNN) {
            hn_new[j] = tanh(a[j] + uh[j]);
        } else if (type == CV_LAYER_LSTM) {
            double i = sg(a[j] + uh[j]), fg = sg(a[hn + j] + uh[hn + j]);
            double gg = tanh(a[2 * hn + j] + uh[2 * hn + j]),
                   o = sg(a[3 * hn + j] + uh[3 * hn + j]);
            c[j] = fg * c[j] + i * gg;
            hn_new[j] = o * tanh(c[j]);
        } else {
            double r = sg(a[j] + uh[j]), z = sg(a[hn + j] + uh[hn + j]);
            double n = tanh(a[2 * hn + j] + r * (uh[2 * hn + j] + bh[j]));
            hn_new[j] = (1 - z) * n + z * h[j];
        }
    }
    memcpy(h, hn_new, sizeof(double) * hn);
}

/* Outputs of every step of one row of `len` steps (zeros after), run
 * forwards or from the last valid step. */
static void ref_run(enum cv_layer_type type, const float *p, int t, int f, int hn, int len,
                    bool reverse, const float *x, double *out)
{
    double h[8] = {0}, c[8] = {0}, xs[8];
    memset(out, 0, sizeof(double) * t * hn);
    for (int k = 0; k < len; k++) {
        int s = reverse ? len - 1 - k : k;
        for (int j = 0; j < f; j++)
            xs[j] = x[s * f + j];
        ref_step(type, p, f, hn, xs, h, c);
        memcpy(out + s * hn, h, sizeof(double) * hn);
    }
}

static void fill(float *v, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(scale * sin(1.7 * (double)i + 0.3));
}

/* A recurrent layer with return_sequences, flattened, against ref_run. */
static void test_cell_forward(enum cv_layer_type type, bool bidir)
{
    enum { T = 4, F = 3, H = 2 };
    struct cv_config c;
    base(&c, T, F, CV_LOSS_MSE);
    struct cv_layer_spec *l = fixture_add_layer(&c, bidir ? CV_LAYER_BIDIRECTIONAL : type, H),
                         child;
    if (bidir) {
        memset(&child, 0, sizeof(child));
        child.type = type, child.units = H, child.return_sequences = true, child.pad_id = -1;
        l->children = &child, l->n_children = 1, l->merge = CV_MERGE_CONCAT;
    }
    l->return_sequences = true;
    fixture_add_layer(&c, CV_LAYER_FLATTEN, 0);
    struct cv_error err;
    cv_error_clear(&err);
    cv_model *m = make(&c, 2, &err);
    ASSERT_TRUE(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    size_t np = cv_model_n_params(m), half = bidir ? np / 2 : np;
    fill(cv_model_params(m), np, 0.6);
    float x[2 * T * F], y[2 * T * 2 * H];
    fill(x, 2 * T * F, 1.0);
    int32_t len[2] = {T, 2};
    struct cv_batch b = {.n = 2, .x = x, .lengths = len};
    cv_model_predict(m, &b, y, NULL);
    double worst = 0;
    for (int i = 0; i < 2; i++)
        for (int d = 0; d < (bidir ? 2 : 1); d++) {
            double ref[T * H];
            ref_run(type, cv_model_params(m) + d * half, T, F, H, len[i], d == 1, x + i * T * F,
                    ref);
            int w = bidir ? 2 * H : H;
            for (int s = 0; s < T; s++)
                for (int j = 0; j < H; j++)
                    worst = fmax(worst, fabs(y[i * T * w + s * w + d * H + j] - ref[s * H + j]));
        }
    ASSERT_NEAR(worst, 0, 2e-6);
    cv_model_free(m);
}

/* ---- gradients ---- */

static float gx[NB * 6 * 4];
static int32_t gy_step[NB * 6], gy_row[NB], glen[NB] = {6, 3, 5};

static double gradcheck(const struct cv_config *c, bool per_step, bool ragged)
{
    struct cv_error err;
    cv_error_clear(&err);
    cv_model *m = make(c, NB, &err);
    if (!m) {
        fprintf(stderr, "model: %s\n", err.msg);
        return 1;
    }
    int32_t y[NB * 6];
    for (int i = 0; i < NB * 6; i++) /* padded steps are -1, as the reader leaves them */
        y[i] = ragged && i % 6 >= glen[i / 6] ? -1 : gy_step[i];
    struct cv_batch b = {
        .n = NB, .x = gx, .y_class = per_step ? y : gy_row, .lengths = ragged ? glen : NULL};
    struct cv_gradcheck_result res;
    cv_gradcheck(m, &b, CV_GRADCHECK_EPS, 0, &res, NULL);
    for (int i = 0; i < res.n_tensors; i++)
        if (res.tensor[i].rel_error >= CV_GRADCHECK_THRESHOLD)
            fprintf(stderr, "  %s: %g\n", res.tensor[i].path, res.tensor[i].rel_error);
    cv_model_free(m);
    return res.rel_error;
}

static void test_gradcheck_cells(void)
{
    enum cv_layer_type types[] = {CV_LAYER_RNN, CV_LAYER_GRU, CV_LAYER_LSTM};
    for (int k = 0; k < 3; k++)
        for (int ragged = 0; ragged < 2; ragged++) {
            struct cv_config c;
            base(&c, 6, 4, CV_LOSS_SOFTMAX_CE); /* per step: seq -> dense softmax */
            fixture_add_layer(&c, types[k], 5)->return_sequences = true;
            fixture_add_layer(&c, CV_LAYER_DENSE, 3)->activation = CV_ACT_SOFTMAX;
            ASSERT_TRUE(gradcheck(&c, true, ragged) < CV_GRADCHECK_THRESHOLD);
            c.model.n_class_weights = 3; /* one weight per class of a step */
            c.model.class_weights[0] = 0.5f, c.model.class_weights[1] = 2.0f;
            c.model.class_weights[2] = 1.0f;
            ASSERT_TRUE(gradcheck(&c, true, ragged) < CV_GRADCHECK_THRESHOLD);
            base(&c, 6, 4, CV_LOSS_SOFTMAX_CE); /* stacked, last step -> one class */
            fixture_add_layer(&c, types[k], 4)->return_sequences = true;
            fixture_add_layer(&c, types[k], 3);
            fixture_add_layer(&c, CV_LAYER_DENSE, 3)->activation = CV_ACT_SOFTMAX;
            ASSERT_TRUE(gradcheck(&c, false, ragged) < CV_GRADCHECK_THRESHOLD);
        }
}

static void test_gradcheck_bidirectional(void)
{
    for (int merge = 0; merge < 2; merge++)
        for (int seq = 0; seq < 2; seq++) {
            struct cv_config c;
            struct cv_layer_spec child = {.type = CV_LAYER_LSTM, .units = 3, .pad_id = -1};
            child.return_sequences = seq;
            base(&c, 6, 4, CV_LOSS_SOFTMAX_CE);
            struct cv_layer_spec *l = fixture_add_layer(&c, CV_LAYER_BIDIRECTIONAL, 0);
            l->children = &child, l->n_children = 1, l->merge = (enum cv_merge)merge;
            fixture_add_layer(&c, CV_LAYER_DENSE, 3)->activation = CV_ACT_SOFTMAX;
            ASSERT_TRUE(gradcheck(&c, seq, true) < CV_GRADCHECK_THRESHOLD);
        }
}

/* Embedding -> gru -> per-step softmax, ids in gx; the pad row gets none. */
static void test_embedding(void)
{
    struct cv_config c;
    base(&c, 0, 6, CV_LOSS_SOFTMAX_CE);
    struct cv_layer_spec *e = fixture_add_layer(&c, CV_LAYER_EMBEDDING, 0);
    e->vocab = 5, e->dim = 3, e->pad_id = 0;
    fixture_add_layer(&c, CV_LAYER_GRU, 4)->return_sequences = true;
    fixture_add_layer(&c, CV_LAYER_DENSE, 3)->activation = CV_ACT_SOFTMAX;
    float keep[NB * 6];
    memcpy(keep, gx, sizeof(keep));
    for (int i = 0; i < NB * 6; i++)
        gx[i] = (float)((i * 7) % 5);
    ASSERT_TRUE(gradcheck(&c, true, true) < CV_GRADCHECK_THRESHOLD);
    cv_model *m = make(&c, NB, NULL);
    struct cv_batch b = {.n = NB, .x = gx, .y_class = gy_step, .lengths = NULL};
    cv_model_train_batch(m, &b, 0, 1.0f, NULL);
    float pad_grad = 0, other = 0; /* E is the first tensor: row 0 is pad_id */
    for (int j = 0; j < 3; j++)
        pad_grad += fabsf(cv_model_grads(m)[j]), other += fabsf(cv_model_grads(m)[3 + j]);
    ASSERT_EQ(pad_grad, 0);
    ASSERT_TRUE(other > 0);
    ASSERT_EQ(cv_model_vocab(m), 5);
    cv_model_free(m);
    memcpy(gx, keep, sizeof(keep));
}

/* ---- padding changes nothing ---- */

struct run {
    double loss;
    float grads[4096];
    size_t n;
};

/* One row of `len` valid steps in a model of `steps` steps: loss, grads. */
static void run_row(int steps, int len, bool per_step, const float *row, const int32_t *y,
                    struct run *out)
{
    struct cv_config c;
    base(&c, steps, 4, CV_LOSS_SOFTMAX_CE);
    struct cv_layer_spec child = {.type = CV_LAYER_LSTM, .units = 3, .pad_id = -1};
    child.return_sequences = true;
    struct cv_layer_spec *l = fixture_add_layer(&c, CV_LAYER_BIDIRECTIONAL, 0);
    l->children = &child, l->n_children = 1;
    fixture_add_layer(&c, CV_LAYER_GRU, 3)->return_sequences = per_step;
    fixture_add_layer(&c, CV_LAYER_DENSE, 3)->activation = CV_ACT_SOFTMAX;
    cv_model *m = make(&c, 1, NULL);
    int32_t ys[16];
    for (int s = 0; s < steps; s++)
        ys[s] = s < len ? y[s] : -1;
    int32_t l1 = len;
    struct cv_batch b = {.n = 1, .x = row, .y_class = per_step ? ys : y, .lengths = &l1};
    struct cv_batch_stats st = {0};
    cv_model_train_batch(m, &b, 0, 1.0f, &st);
    out->loss = st.loss_sum;
    out->n = cv_model_n_params(m);
    memcpy(out->grads, cv_model_grads(m), sizeof(float) * out->n);
    cv_model_free(m);
}

static void test_padding_changes_nothing(void)
{
    float padded[9 * 4];
    int32_t y[9] = {0, 2, 1, 1, 0, 2, 1, 0, 2};
    fill(padded, 9 * 4, 1.0);
    for (int per_step = 0; per_step < 2; per_step++) {
        static struct run a, b;
        run_row(9, 5, per_step, padded, y, &a); /* steps 5..8 hold junk */
        run_row(5, 5, per_step, padded, y, &b);
        ASSERT_EQ(a.n, b.n);
        ASSERT_TRUE(a.loss == b.loss);
        ASSERT_TRUE(!memcmp(a.grads, b.grads, sizeof(float) * a.n));
    }
}

/* ---- errors ---- */

static void expect_error(const struct cv_config *c, cv_status want, const char *text)
{
    struct cv_error err;
    cv_error_clear(&err);
    cv_model *m = NULL;
    ASSERT_EQ(cv_model_create(c, 4, &m, &err), want);
    ASSERT_STR_CONTAINS(err.msg, text);
    cv_model_free(m);
}

static void test_errors(void)
{
    struct cv_config c;
    base(&c, 0, 12, CV_LOSS_SOFTMAX_CE); /* a recurrent layer on a non-sequence */
    fixture_add_layer(&c, CV_LAYER_LSTM, 4);
    fixture_add_layer(&c, CV_LAYER_DENSE, 3);
    expect_error(&c, CV_SHAPE, "layer 0 (lstm) needs a sequence");
    base(&c, 5, 3, CV_LOSS_SOFTMAX_CE); /* per-step head after a last-step output is fine, */
    fixture_add_layer(&c, CV_LAYER_LSTM, 4)->return_sequences = true;
    fixture_add_layer(&c, CV_LAYER_LSTM, 4); /* but a recurrent layer after it is not */
    fixture_add_layer(&c, CV_LAYER_GRU, 4);
    expect_error(&c, CV_SHAPE, "layer 2 (gru) needs a sequence");
    base(&c, 5, 3, CV_LOSS_SOFTMAX_CE);
    fixture_add_layer(&c, CV_LAYER_LSTM, 4)->return_sequences = true;
    fixture_add_layer(&c, CV_LAYER_BATCHNORM, 0);
    expect_error(&c, CV_SHAPE, "layer 1 (batchnorm) gets a sequence of 5 steps");
    base(&c, 5, 3, CV_LOSS_MSE);
    fixture_add_layer(&c, CV_LAYER_LSTM, 4)->return_sequences = true;
    expect_error(&c, CV_CONFIG, "use softmax_cross_entropy");
    base(&c, 0, 5, CV_LOSS_SOFTMAX_CE);
    fixture_add_layer(&c, CV_LAYER_DENSE, 4);
    fixture_add_layer(&c, CV_LAYER_EMBEDDING, 0)->vocab = 3;
    expect_error(&c, CV_SHAPE, "must be the first layer");
    base(&c, 5, 3, CV_LOSS_SOFTMAX_CE);
    struct cv_layer_spec dense = {.type = CV_LAYER_DENSE, .units = 2};
    struct cv_layer_spec *l = fixture_add_layer(&c, CV_LAYER_BIDIRECTIONAL, 0);
    l->children = &dense, l->n_children = 1;
    expect_error(&c, CV_CONFIG, "wraps one rnn, gru or lstm");
}

int main(void)
{
    struct cv_rng r;
    cv_rng_seed(&r, 5, 0, 0, 0);
    for (size_t i = 0; i < sizeof(gx) / sizeof(gx[0]); i++)
        gx[i] = (float)cv_rng_normal(&r);
    for (int i = 0; i < NB * 6; i++)
        gy_step[i] = (int32_t)cv_rng_below(&r, 3);
    for (int i = 0; i < NB; i++)
        gy_row[i] = i % 3;
    enum cv_layer_type types[] = {CV_LAYER_RNN, CV_LAYER_GRU, CV_LAYER_LSTM};
    for (int k = 0; k < 3; k++) {
        test_cell_forward(types[k], false);
        test_cell_forward(types[k], true);
    }
    test_gradcheck_cells();
    test_gradcheck_bidirectional();
    test_embedding();
    test_padding_changes_nothing();
    test_errors();
    TEST_MAIN_END();
}
