/*
 * test_model.c - the network against independent expectations: centred
 * differences for every activation, loss and dropout; a hand-computed
 * forward pass; init statistics; the fused-loss rules and their errors;
 * frozen layers' gradients.
 */
#include <math.h>
#include <stdlib.h>

#include "caviar/gradcheck.h"
#include "caviar/model.h"
#include "fixtures.h"
#include "test.h"
#include "util.h"

#define N  6
#define IN 5

static float x[N * IN], yv[N * 3];
static int32_t yc[N];
static long long rows[N];

static void make_data(void)
{
    struct cv_rng r;
    cv_rng_seed(&r, 42, 0, 0, 0);
    for (int i = 0; i < N * IN; i++)
        x[i] = (float)cv_rng_normal(&r);
    for (int i = 0; i < N; i++) {
        yc[i] = i % 3;
        rows[i] = 100 + i;
        for (int j = 0; j < 3; j++)
            yv[i * 3 + j] = (float)cv_rng_uniform(&r);
    }
}

static double check(struct cv_config *c, bool vec_targets)
{
    cv_model *m = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    if (cv_model_create(c, N, &m, &err) != CV_OK) {
        fprintf(stderr, "model: %s\n", err.msg);
        return 1;
    }
    cv_model_init_params(m, 3);
    struct cv_batch b = {N, x, vec_targets ? NULL : yc, vec_targets ? yv : NULL, rows, NULL};
    struct cv_gradcheck_result res;
    cv_gradcheck(m, &b, CV_GRADCHECK_EPS, 0, &res, NULL);
    cv_model_free(m);
    return res.rel_error;
}

static void test_gradcheck_activations_and_losses(void)
{
    enum cv_activation hidden[] = {CV_ACT_SIGMOID, CV_ACT_TANH, CV_ACT_RELU, CV_ACT_LEAKY_RELU,
                                   CV_ACT_LINEAR};
    for (size_t h = 0; h < sizeof(hidden) / sizeof(hidden[0]); h++) {
        struct cv_config c;
        int units[3] = {7, 4, 3};
        enum cv_activation acts[3] = {hidden[h], hidden[h], CV_ACT_SOFTMAX};
        fixture_mlp(&c, IN, units, acts, 3, CV_LOSS_SOFTMAX_CE);
        double e = check(&c, false);
        CV_TEST_REPORT(e < CV_GRADCHECK_THRESHOLD, "softmax CE, hidden %s: rel error %g",
                       cv_activation_name(hidden[h]), e);
    }
    struct cv_config c;
    int units[2] = {6, 3};
    enum cv_activation bce[2] = {CV_ACT_TANH, CV_ACT_SIGMOID};
    fixture_mlp(&c, IN, units, bce, 2, CV_LOSS_BCE);
    double e = check(&c, true); /* multi-label targets in [0, 1] */
    CV_TEST_REPORT(e < CV_GRADCHECK_THRESHOLD, "bce multi-label: rel error %g", e);
    enum cv_activation mse[2] = {CV_ACT_SIGMOID, CV_ACT_LINEAR};
    fixture_mlp(&c, IN, units, mse, 2, CV_LOSS_MSE);
    e = check(&c, true);
    CV_TEST_REPORT(e < CV_GRADCHECK_THRESHOLD, "mse: rel error %g", e);
    enum cv_activation mse_soft[2] = {CV_ACT_TANH, CV_ACT_SOFTMAX}; /* unfused softmax Jacobian */
    fixture_mlp(&c, IN, units, mse_soft, 2, CV_LOSS_MSE);
    e = check(&c, true);
    CV_TEST_REPORT(e < CV_GRADCHECK_THRESHOLD, "mse after softmax: rel error %g", e);
}

static void test_gradcheck_dropout(void)
{
    struct cv_config c;
    int units[2] = {8, 3};
    enum cv_activation acts[2] = {CV_ACT_TANH, CV_ACT_SOFTMAX};
    fixture_mlp(&c, IN, units, acts, 2, CV_LOSS_SOFTMAX_CE);
    fixture_insert_dropout(&c, 1, 0.6f);
    double e = check(&c, false);
    CV_TEST_REPORT(e < CV_GRADCHECK_THRESHOLD, "dropout: rel error %g", e);
}

/* 2 -> 2 (relu) -> 1 (linear) by hand. */
static void test_forward_by_hand(void)
{
    struct cv_config c;
    int units[2] = {2, 1};
    enum cv_activation acts[2] = {CV_ACT_RELU, CV_ACT_LINEAR};
    fixture_mlp(&c, 2, units, acts, 2, CV_LOSS_MSE);
    cv_model *m = NULL;
    cv_model_create(&c, 1, &m, NULL);
    ASSERT_EQ(cv_model_n_params(m), 2 * 2 + 2 + 2 + 1);
    float *p = cv_model_params(m);
    const float w[9] = {1, -1, 2, 1, /* W1 */ 0.5f, -3, /* b1 */ 2, -1, /* W2 */ 0.25f /* b2 */};
    for (int i = 0; i < 9; i++)
        p[i] = w[i];
    float in[2] = {1, 2}, out[1];
    /* z1 = [1-2+0.5, 2+2-3] = [-0.5, 1] -> a1 = [0, 1]; z2 = 0*2 + 1*(-1) + 0.25 */
    struct cv_batch b = {1, in, NULL, NULL, NULL, NULL};
    cv_model_predict(m, &b, out, NULL);
    ASSERT_NEAR(out[0], -0.75, 1e-7);
    cv_model_free(m);
}

static void test_init_statistics(void)
{
    struct cv_config c;
    int units[2] = {400, 400};
    enum cv_activation acts[2] = {CV_ACT_RELU, CV_ACT_TANH};
    fixture_mlp(&c, 300, units, acts, 2, CV_LOSS_MSE);
    cv_model *m = NULL;
    cv_model_create(&c, 1, &m, NULL);
    cv_model_init_params(m, 11);
    const float *p = cv_model_params(m);
    double s2 = 0;
    for (int i = 0; i < 400 * 300; i++)
        s2 += (double)p[i] * p[i];
    ASSERT_NEAR(sqrt(s2 / (400 * 300)), sqrt(2.0 / 300), 0.01 * sqrt(2.0 / 300)); /* He */
    const float *w2 = p + 400 * 300 + 400;
    s2 = 0;
    for (int i = 0; i < 400 * 400; i++)
        s2 += (double)w2[i] * w2[i];
    ASSERT_NEAR(sqrt(s2 / (400 * 400)), sqrt(1.0 / 400), 0.01 * sqrt(1.0 / 400)); /* Xavier */
    ASSERT_NEAR(p[400 * 300], 0.0, 0); /* biases start at zero */
    cv_model_free(m);
}

static void test_loss_activation_rules(void)
{
    struct cv_config c;
    int units[1] = {3};
    enum cv_activation relu[1] = {CV_ACT_RELU};
    fixture_mlp(&c, IN, units, relu, 1, CV_LOSS_SOFTMAX_CE);
    cv_model *m = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_model_create(&c, 2, &m, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "softmax");
    ASSERT_TRUE(m == NULL);
    /* predictions of a fused softmax model are probabilities */
    enum cv_activation soft[1] = {CV_ACT_SOFTMAX};
    fixture_mlp(&c, IN, units, soft, 1, CV_LOSS_SOFTMAX_CE);
    ASSERT_EQ(cv_model_create(&c, N, &m, NULL), CV_OK);
    cv_model_init_params(m, 1);
    float out[N * 3];
    struct cv_batch b = {N, x, yc, NULL, NULL, NULL};
    cv_model_predict(m, &b, out, NULL);
    for (int i = 0; i < N; i++)
        ASSERT_NEAR(out[i * 3] + out[i * 3 + 1] + out[i * 3 + 2], 1.0, 1e-6);
    cv_model_free(m);
}

/* dropout(keep) -> linear dense of 2 outputs, MSE, over `in` inputs; c
 * holds its config (the model borrows it); NULL if it cannot be built. */
static cv_model *dropout_mlp(struct cv_config *c, int in, float keep)
{
    int units[1] = {2};
    enum cv_activation acts[1] = {CV_ACT_LINEAR};
    fixture_mlp(c, in, units, acts, 1, CV_LOSS_MSE);
    fixture_insert_dropout(c, 0, keep);
    cv_model *m = NULL;
    cv_model_create(c, 1, &m, NULL);
    return m;
}

static void test_dropout_statistics(void)
{
    struct cv_config c;
    cv_model *m = dropout_mlp(&c, 1000, 0.8f);
    float *p = cv_model_params(m);
    for (int i = 0; i < 2000; i++) /* output 0 sums the inputs, output 1 ignores them */
        p[i] = i < 1000 ? 1.0f : 0.0f;
    p[2000] = p[2001] = 0;
    static float ones[1000];
    for (int i = 0; i < 1000; i++)
        ones[i] = 1.0f;
    long long row = 5;
    struct cv_batch b = {1, ones, NULL, NULL, &row, NULL};
    float out[2];
    cv_model_predict(m, &b, out, NULL); /* inference: dropout off */
    ASSERT_NEAR(out[0], 1000.0, 1e-3);
    /* training: kept units are scaled by 1/keep, so the sum stays ~1000 */
    float t[2] = {0, 0};
    struct cv_batch bt = {1, ones, NULL, t, &row, NULL};
    struct cv_batch_stats st = {0};
    cv_model_train_batch(m, &bt, 1, 1.0f, &st);
    double z = sqrt(2 * st.loss_sum); /* loss = 0.5 * out0^2 */
    ASSERT_NEAR(z, 1000.0, 4 * sqrt(1000 * 0.8 * 0.2) / 0.8);
    cv_model_free(m);
}

/* The loss of one training step of a dropout(keep_built) -> dense model
 * whose keep is then set to keep_set (0: left as built). */
static double dropout_loss(float keep_built, float keep_set, cv_status *set)
{
    struct cv_config c;
    cv_model *m = dropout_mlp(&c, 1000, keep_built);
    if (!m)
        return NAN;
    float *p = cv_model_params(m);
    for (int i = 0; i < 2002; i++)
        p[i] = i < 1000 ? 1.0f : 0.0f;
    if (keep_set > 0)
        *set = cv_model_set_keep(m, 0, keep_set, NULL);
    static float ones[1000], t[2];
    for (int i = 0; i < 1000; i++)
        ones[i] = 1.0f;
    long long row = 5;
    struct cv_batch bt = {1, ones, NULL, t, &row, NULL};
    struct cv_batch_stats st = {0};
    cv_model_train_batch(m, &bt, 1, 1.0f, &st);
    cv_model_free(m);
    return st.loss_sum;
}

/* cv_model_set_keep (train.schedule): a keep set after building trains
 * exactly as one built with it; only a dropout layer and (0, 1] accepted. */
static void test_set_keep(void)
{
    cv_status set = CV_INVAL;
    double built = dropout_loss(0.5f, 0, &set), changed = dropout_loss(0.8f, 0.5f, &set);
    ASSERT_EQ(set, CV_OK);
    ASSERT_NEAR(changed, built, 0);
    ASSERT_TRUE(dropout_loss(0.8f, 0, &set) != built); /* the keep matters */
    struct cv_config c;
    cv_model *m = dropout_mlp(&c, 4, 0.8f);
    ASSERT_TRUE(m != NULL);
    if (!m)
        return;
    struct cv_error err = {0};
    ASSERT_EQ(cv_model_set_keep(m, 1, 0.5f, &err), CV_INVAL);
    ASSERT_STR_CONTAINS(err.msg, "model.layers.1.keep: layer 1 is not a dropout layer");
    cv_error_clear(&err);
    ASSERT_EQ(cv_model_set_keep(m, 0, 0.0f, &err), CV_INVAL);
    ASSERT_STR_CONTAINS(err.msg, "model.layers.0.keep = 0");
    ASSERT_EQ(cv_model_set_keep(m, 7, 0.5f, NULL), CV_INVAL);
    cv_model_free(m);
}

/* IN -> 7 ReLU -> 4 tanh -> 3 softmax, softmax cross-entropy. */
/* trainable: false: backward writes no gradient for the frozen layer (its
 * arena slice keeps what was there), stops below the first layer that
 * trains, and every other gradient is exactly that of the same network
 * with nothing frozen (the input gradient still flows through a frozen
 * layer above trainable ones).  The trainable span leaves out a frozen
 * layer at the front. */
static void test_frozen_layers(void)
{
    int units[3] = {8, 6, 3};
    enum cv_activation acts[3] = {CV_ACT_RELU, CV_ACT_TANH, CV_ACT_SOFTMAX};
    size_t ends[3] = {8 * IN + 8, 8 * IN + 8 + 6 * 8 + 6, 8 * IN + 8 + 6 * 8 + 6 + 3 * 6 + 3};
    struct cv_config c0, cf;
    fixture_mlp(&c0, IN, units, acts, 3, CV_LOSS_SOFTMAX_CE);
    struct cv_batch b = {.n = N, .x = x, .y_class = yc, .rows = rows};
    cv_model *m0 = NULL;
    ASSERT_EQ(cv_model_create(&c0, N, &m0, NULL), CV_OK);
    cv_model_init_params(m0, 3);
    cv_model_train_batch(m0, &b, 1, 1.0f / N, NULL);
    for (int f = 0; f < 2; f++) {
        fixture_mlp(&cf, IN, units, acts, 3, CV_LOSS_SOFTMAX_CE);
        cf.model.layers[f].frozen = true;
        cv_model *m = NULL;
        ASSERT_EQ(cv_model_create(&cf, N, &m, NULL), CV_OK);
        size_t n = cv_model_n_params(m), lo, hi, wrong = 0;
        ASSERT_EQ(n, ends[2]);
        cv_model_init_params(m, 3);
        for (size_t i = 0; i < n; i++)
            cv_model_grads(m)[i] = NAN;
        cv_model_train_batch(m, &b, 1, 1.0f / N, NULL);
        size_t flo = f == 0 ? 0 : ends[f - 1], fhi = ends[f];
        for (size_t i = 0; i < n; i++) {
            float g = cv_model_grads(m)[i], want = cv_model_grads(m0)[i];
            wrong += i >= flo && i < fhi ? !isnan(g) : g != want;
        }
        CV_TEST_REPORT(wrong == 0, "layer %d frozen: %zu of %zu gradients wrong", f, wrong, n);
        cv_model_trainable_span(m, &lo, &hi);
        ASSERT_EQ(lo, f == 0 ? ends[0] : 0);
        ASSERT_EQ(hi, n);
        cv_model_free(m);
    }
    cv_model_free(m0);
}

int main(void)
{
    make_data();
    test_gradcheck_activations_and_losses();
    test_gradcheck_dropout();
    test_forward_by_hand();
    test_init_statistics();
    test_loss_activation_rules();
    test_dropout_statistics();
    test_set_keep();
    test_frozen_layers();
    TEST_MAIN_END();
}
