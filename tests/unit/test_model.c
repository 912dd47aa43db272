/*
 * test_model.c - the network against independent expectations: centred
 * differences for every activation, loss and dropout; a hand-computed
 * forward pass; init statistics; the fused-loss rules and their errors.
 */
#include <math.h>
#include <stdlib.h>

#include "caviar/gradcheck.h"
#include "caviar/model.h"
#include "fixtures.h"
#include "test.h"
#include "util.h"

#define N 6
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
    struct cv_batch b = {N, x, vec_targets ? NULL : yc, vec_targets ? yv : NULL, rows};
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
    struct cv_batch b = {1, in, NULL, NULL, NULL};
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
    struct cv_batch b = {N, x, yc, NULL, NULL};
    cv_model_predict(m, &b, out, NULL);
    for (int i = 0; i < N; i++)
        ASSERT_NEAR(out[i * 3] + out[i * 3 + 1] + out[i * 3 + 2], 1.0, 1e-6);
    cv_model_free(m);
}

static void test_dropout_statistics(void)
{
    struct cv_config c;
    int units[1] = {2};
    enum cv_activation acts[1] = {CV_ACT_LINEAR};
    fixture_mlp(&c, 1000, units, acts, 1, CV_LOSS_MSE);
    fixture_insert_dropout(&c, 0, 0.8f);
    cv_model *m = NULL;
    cv_model_create(&c, 1, &m, NULL);
    float *p = cv_model_params(m);
    for (int i = 0; i < 2000; i++) /* output 0 sums the inputs, output 1 ignores them */
        p[i] = i < 1000 ? 1.0f : 0.0f;
    p[2000] = p[2001] = 0;
    static float ones[1000];
    for (int i = 0; i < 1000; i++)
        ones[i] = 1.0f;
    long long row = 5;
    struct cv_batch b = {1, ones, NULL, NULL, &row};
    float out[2];
    cv_model_predict(m, &b, out, NULL); /* inference: dropout off */
    ASSERT_NEAR(out[0], 1000.0, 1e-3);
    /* training: kept units are scaled by 1/keep, so the sum stays ~1000 */
    float t[2] = {0, 0};
    struct cv_batch bt = {1, ones, NULL, t, &row};
    struct cv_batch_stats st = {0};
    cv_model_train_batch(m, &bt, 1, 1.0f, NULL, NULL, &st);
    double z = sqrt(2 * st.loss_sum); /* loss = 0.5 * out0^2 */
    ASSERT_NEAR(z, 1000.0, 4 * sqrt(1000 * 0.8 * 0.2) / 0.8);
    cv_model_free(m);
}

/* IN -> 7 ReLU -> 4 tanh -> 3 softmax, softmax cross-entropy. */
static void relu_tanh_mlp(struct cv_config *c)
{
    int units[3] = {7, 4, 3};
    enum cv_activation acts[3] = {CV_ACT_RELU, CV_ACT_TANH, CV_ACT_SOFTMAX};
    fixture_mlp(c, IN, units, acts, 3, CV_LOSS_SOFTMAX_CE);
}

/* With the arena kept zero by the caller, dense layers add their weight
 * gradients onto it: the gradients are the same bits; a second batch onto
 * the first shows the weights' were added, not written. */
static void test_accumulated_grads(void)
{
    struct cv_config c;
    relu_tanh_mlp(&c);
    cv_model *plain = NULL, *acc = NULL;
    ASSERT_EQ(cv_model_create(&c, N, &plain, NULL), CV_OK);
    ASSERT_EQ(cv_model_create(&c, N, &acc, NULL), CV_OK);
    if (!plain || !acc)
        return;
    cv_model_init_params(plain, 3);
    cv_model_init_params(acc, 3);
    cv_model_accumulate_grads(acc, true);
    size_t n = cv_model_n_params(plain);
    unsigned char *weight = calloc(n, 1);
    if (!weight)
        return;
    cv_model_decay_mask(plain, weight); /* 1 on weights, 0 on biases */
    struct cv_batch b = {N, x, yc, NULL, rows};
    cv_model_train_batch(plain, &b, 1, 0.5f, NULL, NULL, NULL);
    cv_model_train_batch(acc, &b, 1, 0.5f, NULL, NULL, NULL);
    const float *g = cv_model_grads(plain), *ga = cv_model_grads(acc);
    CV_TEST_REPORT(memcmp(g, ga, n * sizeof(float)) == 0,
                   "gradients added onto zeros differ from gradients written");
    cv_model_train_batch(acc, &b, 1, 0.5f, NULL, NULL, NULL);
    size_t weights = 0, wrong = 0;
    for (size_t i = 0; i < n; i++) {
        weights += weight[i];
        wrong += weight[i] && g[i] != 0.0f && ga[i] != 2.0f * g[i];
    }
    CV_TEST_REPORT(weights > 0 && wrong == 0, "%zu of %zu weight gradients not added", wrong,
                   weights);
    free(weight);
    cv_model_free(plain);
    cv_model_free(acc);
}

/* A batch shared by 3 simulated ranks (cv_model_share_batch, one buffer):
 * the gradients each owner computes over every rank's rows, for slices cut
 * inside rows of W and inside a bias, equal those of one unshared model on
 * the whole batch (a second code path), on two steps with different row
 * counts per rank (3, 3, 0 then 2, 1, 3: rows unused at the second step
 * held data at the first).  Backward itself leaves the gradients alone. */
static void test_shared_batch(void)
{
    struct cv_config c;
    relu_tanh_mlp(&c);
    fixture_insert_dropout(&c, 1, 0.7f); /* masks keyed by row id: the same in both paths */
    enum { R = 3, MB = 3 };
    cv_model *ref = NULL, *m[R] = {NULL};
    ASSERT_EQ(cv_model_create(&c, N, &ref, NULL), CV_OK);
    for (int q = 0; q < R; q++)
        ASSERT_EQ(cv_model_create(&c, MB, &m[q], NULL), CV_OK);
    ASSERT_TRUE(cv_model_can_share_batch(ref));
    size_t n = cv_model_n_params(ref);
    ASSERT_EQ(n, 7 * IN + 7 + 4 * 7 + 4 + 3 * 4 + 3);
    /* W1 (7, 5) at 0, b1 at 35, W2 (4, 7) at 42, b2 at 70, W3 (3, 4) at 74, b3 at 86 */
    ASSERT_EQ(cv_model_row_start(ref, 13), 15);
    ASSERT_EQ(cv_model_row_start(ref, 35), 35);
    ASSERT_EQ(cv_model_row_start(ref, 38), 38);
    ASSERT_EQ(cv_model_row_start(ref, 43), 49);
    ASSERT_EQ(cv_model_row_start(ref, 87), 87);
    ASSERT_EQ(cv_model_row_start(ref, n), n);
    float *buf = calloc(cv_model_shared_batch_floats(m[0], R), sizeof(float));
    ASSERT_TRUE(buf != NULL);
    cv_model_init_params(ref, 9);
    for (int q = 0; q < R; q++) {
        cv_model_init_params(m[q], 9);
        cv_model_share_batch(m[q], buf, R, q);
    }
    size_t cut[R + 1] = {0, 13, 72, n}; /* inside a row of W1, inside b2 */
    int counts[2][R] = {{3, 3, 0}, {2, 1, 3}};
    for (int step = 0; step < 2; step++) {
        struct cv_batch whole = {N, x, yc, NULL, rows};
        cv_model_train_batch(ref, &whole, (uint64_t)step, 0.25f, NULL, NULL, NULL);
        int first = 0;
        for (int q = 0; q < R; q++) {
            float *g = cv_model_grads(m[q]);
            for (size_t i = 0; i < n; i++)
                g[i] = 7.0f;
            int k = counts[step][q];
            struct cv_batch b = {k, x + first * IN, yc + first, NULL, rows + first};
            cv_model_train_batch(m[q], &b, (uint64_t)step, 0.25f, NULL, NULL, NULL);
            first += k;
        }
        size_t untouched = 0;
        float *got = calloc(n, sizeof(float));
        ASSERT_TRUE(got != NULL);
        for (int q = 0; q < R; q++) {
            const float *g = cv_model_grads(m[q]);
            for (size_t i = 0; i < n; i++)
                untouched += g[i] == 7.0f;
            cv_model_owned_grads(m[q], cut[q], cut[q + 1]);
            memcpy(got + cut[q], g + cut[q], (cut[q + 1] - cut[q]) * sizeof(float));
        }
        CV_TEST_REPORT(untouched == R * n, "step %d: backward wrote %zu gradients", step,
                       R * n - untouched);
        float d = max_rel_diff(got, cv_model_grads(ref), n);
        CV_TEST_REPORT(d <= 1e-6f, "step %d: owners' gradients over the shared batch differ from "
                       "the whole batch's by %g", step, d);
        free(got);
    }
    free(buf);
    for (int q = 0; q < R; q++)
        cv_model_free(m[q]);
    cv_model_free(ref);
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
    test_accumulated_grads();
    test_shared_batch();
    TEST_MAIN_END();
}
