/*
 * test_kernels.c - kernels against hand-computed values and against their
 * naive references: softmax, activation derivatives, stable losses, GEMM.
 */
#include <math.h>
#include <stdlib.h>

#include "kernels.h"
#include "test.h"
#include "util.h"

static void test_softmax_course_example(void)
{
    /* course notes: softmax([5, 2, -1, 3]) = [0.842, 0.042, 0.002, 0.114] */
    float z[4] = {5, 2, -1, 3}, p[4];
    cv_softmax_rows(z, p, 1, 4);
    ASSERT_NEAR(p[0], 0.842, 5e-4);
    ASSERT_NEAR(p[1], 0.042, 5e-4);
    ASSERT_NEAR(p[2], 0.002, 5e-4);
    ASSERT_NEAR(p[3], 0.114, 5e-4);
    /* stable for huge logits: shifting by a constant changes nothing */
    float big[4] = {1005, 1002, 999, 1003}, q[4];
    cv_softmax_rows(big, q, 1, 4);
    for (int j = 0; j < 4; j++)
        ASSERT_NEAR(q[j], p[j], 1e-6);
}

static void test_activation_values_and_derivatives(void)
{
    float z[3] = {-2.0f, 0.5f, 3.0f};
    float y[3];
    /* sigmoid(0.5) = 1/(1+e^-0.5) = 0.6224593; derivative a(1-a) */
    for (int i = 0; i < 3; i++)
        y[i] = z[i];
    cv_act_apply(y, 1, 3, CV_ACT_SIGMOID, 0);
    ASSERT_NEAR(y[1], 0.6224593, 1e-6);
    float dy[3] = {1, 1, 1}, dz[3];
    cv_act_backward(y, dy, dz, 1, 3, CV_ACT_SIGMOID, 0);
    for (int i = 0; i < 3; i++)
        ASSERT_NEAR(dz[i], y[i] * (1 - y[i]), 1e-7);
    /* tanh'(z) = 1 - a^2: tanh(0.5) = 0.4621172 -> 0.7864477 */
    for (int i = 0; i < 3; i++)
        y[i] = z[i];
    cv_act_apply(y, 1, 3, CV_ACT_TANH, 0);
    cv_act_backward(y, dy, dz, 1, 3, CV_ACT_TANH, 0);
    ASSERT_NEAR(dz[1], 0.7864477, 1e-6);
    /* relu and leaky relu: values and slopes */
    for (int i = 0; i < 3; i++)
        y[i] = z[i];
    cv_act_apply(y, 1, 3, CV_ACT_LEAKY_RELU, 0.1f);
    ASSERT_NEAR(y[0], -0.2, 1e-7);
    ASSERT_NEAR(y[2], 3.0, 1e-7);
    cv_act_backward(y, dy, dz, 1, 3, CV_ACT_LEAKY_RELU, 0.1f);
    ASSERT_NEAR(dz[0], 0.1, 1e-7);
    ASSERT_NEAR(dz[1], 1.0, 1e-7);
    for (int i = 0; i < 3; i++)
        y[i] = z[i];
    cv_act_apply(y, 1, 3, CV_ACT_RELU, 0);
    ASSERT_NEAR(y[0], 0.0, 0);
    cv_act_backward(y, dy, dz, 1, 3, CV_ACT_RELU, 0);
    ASSERT_NEAR(dz[0], 0.0, 0);
    ASSERT_NEAR(dz[2], 1.0, 0);
}

static void test_softmax_ce(void)
{
    /* logits [2, 1, 0], label 0: loss = log(e^2+e^1+e^0) - 2 = 0.4076059 */
    float z[3] = {2, 1, 0}, d[3];
    int32_t y[1] = {0};
    long long hits = 0;
    double l = cv_loss_softmax_ce(z, y, 1, 3, 1.0f, NULL, d, &hits);
    ASSERT_NEAR(l, 0.4076059, 1e-6);
    ASSERT_EQ(hits, 1);
    /* gradient = softmax - onehot: p = [0.6652410, 0.2447285, 0.0900306] */
    ASSERT_NEAR(d[0], 0.6652410 - 1, 1e-6);
    ASSERT_NEAR(d[1], 0.2447285, 1e-6);
    /* no overflow with extreme logits */
    float zz[2] = {1000, -1000}, dd[2];
    int32_t yy[1] = {1};
    l = cv_loss_softmax_ce(zz, yy, 1, 2, 1.0f, NULL, dd, NULL);
    ASSERT_NEAR(l, 2000, 1e-3);
    ASSERT_TRUE(isfinite(dd[0]) && isfinite(dd[1]));
}

static void test_bce_and_mse(void)
{
    /* z = 0.3, t = 1: loss = log(1 + e^-0.3) = 0.5543552; d = sigmoid(0.3) - 1 */
    float z[1] = {0.3f}, d[1];
    float t[1] = {1};
    double l = cv_loss_bce_logits(z, NULL, t, 1, 1, 1.0f, d, NULL);
    ASSERT_NEAR(l, 0.5543552, 1e-6);
    ASSERT_NEAR(d[0], 0.5744425 - 1, 1e-6);
    float big[1] = {-80.0f};
    l = cv_loss_bce_logits(big, NULL, t, 1, 1, 1.0f, d, NULL);
    ASSERT_NEAR(l, 80.0, 1e-4); /* log(1 + e^80) without overflow */
    float o[2] = {0.5f, 2.0f}, tv[2] = {1.0f, 1.0f}, dm[2];
    l = cv_loss_mse(o, NULL, tv, 1, 2, 0.5f, dm, NULL);
    ASSERT_NEAR(l, 0.5 * (0.25 + 1.0), 1e-7);
    ASSERT_NEAR(dm[0], 0.5 * -0.5, 1e-7);
}

static void test_gemm_matches_naive(void)
{
    struct cv_rng r;
    cv_rng_seed(&r, 1, 2, 3, 4);
    int m = 37, n = 29, k = 53;
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
    float *c1 = malloc(sizeof(float) * m * n), *c2 = malloc(sizeof(float) * m * n);
    for (int i = 0; i < m * k; i++)
        a[i] = (float)cv_rng_normal(&r);
    for (int i = 0; i < k * n; i++)
        b[i] = (float)cv_rng_normal(&r);
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        for (int i = 0; i < m * n; i++)
            c1[i] = c2[i] = 0.5f;
        cv_gemm(ta, tb, m, n, k, 1.5f, a, ta ? m : k, b, tb ? k : n, 0.25f, c1, n);
        cv_gemm_naive(ta, tb, m, n, k, 1.5f, a, ta ? m : k, b, tb ? k : n, 0.25f, c2, n);
        double worst = 0;
        for (int i = 0; i < m * n; i++)
            worst = fmax(worst, fabs(c1[i] - c2[i]));
        ASSERT_NEAR(worst, 0, 1e-4);
    }
    free(a);
    free(b);
    free(c1);
    free(c2);
}

static void test_bias_backward(void)
{
    float dz[6] = {1, 2, 3, 4, 5, 6}, db[3];
    cv_bias_backward(dz, db, 2, 3);
    ASSERT_NEAR(db[0], 5, 0);
    ASSERT_NEAR(db[2], 9, 0);
}

/* The block kernels over columns [c0, c1) of a wider tensor: the whole-row
 * kernels' values there, bit for bit, and every other column untouched. */
static void test_blocks_match_whole_rows(void)
{
    enum { N = 5, F = 12, C0 = 3, C1 = 8 };
    enum cv_activation acts[] = {CV_ACT_RELU, CV_ACT_LEAKY_RELU, CV_ACT_SIGMOID, CV_ACT_TANH,
                                 CV_ACT_LINEAR};
    float z[N * F], bias[F], dy[N * F];
    for (int i = 0; i < N * F; i++) {
        z[i] = (float)((i * 37) % 23) / 5.0f - 2.2f;
        dy[i] = (float)((i * 11) % 7) - 3.0f;
    }
    for (int j = 0; j < F; j++)
        bias[j] = 0.1f * (float)j - 0.5f;
    for (size_t a = 0; a < sizeof(acts) / sizeof(acts[0]); a++) {
        float whole[N * F], block[N * F], dz_whole[N * F], dz_block[N * F];
        memcpy(whole, z, sizeof(z));
        memcpy(block, z, sizeof(z));
        cv_bias_act_forward(whole, bias, N, F, acts[a], 0.1f);
        cv_bias_act_block(block + C0, F, bias + C0, N, C1 - C0, acts[a], 0.1f);
        cv_act_backward(whole, dy, dz_whole, N, F, acts[a], 0.1f);
        for (int i = 0; i < N * F; i++)
            dz_block[i] = -7.0f;
        cv_act_backward_block(whole + C0, dy + C0, dz_block + C0, F, N, C1 - C0, acts[a], 0.1f);
        int wrong = 0, touched = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < F; j++) {
                int k = i * F + j;
                bool in = j >= C0 && j < C1;
                wrong += in && (block[k] != whole[k] || dz_block[k] != dz_whole[k]);
                touched += !in && (block[k] != z[k] || dz_block[k] != -7.0f);
            }
        CV_TEST_REPORT(wrong == 0 && touched == 0, "%s: %d block values differ, %d outside changed",
                       cv_activation_name(acts[a]), wrong, touched);
    }
}

int main(void)
{
    test_softmax_course_example();
    test_activation_values_and_derivatives();
    test_softmax_ce();
    test_bce_and_mse();
    test_gemm_matches_naive();
    test_bias_backward();
    test_blocks_match_whole_rows();
    TEST_MAIN_END();
}
