/*
 * test_optim.c - update rules against values computed by hand (a few lines
 * of Python in the comments' formulas), L2 on weights only, clipping and
 * learning-rate schedules.
 */
#include <stdlib.h>

#include "caviar/model.h"
#include "caviar/optim.h"
#include "fixtures.h"
#include "test.h"

/* A model with parameters W (1x2) and b (1): 3 arena entries. */
static cv_model *tiny(struct cv_config *c, enum cv_optimizer opt, double lr)
{
    int units[1] = {1};
    enum cv_activation acts[1] = {CV_ACT_LINEAR};
    fixture_mlp(c, 2, units, acts, 1, CV_LOSS_MSE);
    c->train.optimizer = opt;
    c->train.lr = lr;
    cv_model *m = NULL;
    cv_model_create(c, 4, &m, NULL);
    return m;
}

/* One parameter followed through steps with gradients 0.5, -1.0, 0.25. */
static void run_steps(enum cv_optimizer opt, const double *expect, int steps)
{
    struct cv_config c;
    cv_model *m = tiny(&c, opt, 0.1);
    cv_optim *o = NULL;
    ASSERT_EQ(cv_optim_create(&c, m, &o, NULL), CV_OK);
    float *w = cv_model_params(m), *g = cv_model_grads(m);
    const float grads[3] = {0.5f, -1.0f, 0.25f};
    w[0] = 1.0f;
    for (int t = 0; t < steps; t++) {
        g[0] = grads[t];
        g[1] = g[2] = 0;
        cv_optim_step(o, w, g, 0.1, 1);
        ASSERT_NEAR(w[0], expect[t], 2e-6);
    }
    cv_optim_free(o);
    cv_model_free(m);
}

static void test_update_rules(void)
{
    /* Adam with bias correction: step 1 moves by exactly lr */
    const double adam[3] = {0.900000002, 0.9366103542405654, 0.9502794203389762};
    run_steps(CV_OPT_ADAM, adam, 3);
    const double mom[2] = {0.995, 1.0005}; /* v = 0.9 v + 0.1 g; w -= 0.1 v */
    run_steps(CV_OPT_MOMENTUM, mom, 2);
    const double rms[2] = {-2.1622756601696445, 0.6664335495626941};
    run_steps(CV_OPT_RMSPROP, rms, 2);
    const double sgd[2] = {0.95, 1.05};
    run_steps(CV_OPT_SGD, sgd, 2);
}

static void test_l2_weights_only(void)
{
    struct cv_config c;
    cv_model *m = tiny(&c, CV_OPT_SGD, 1.0);
    c.train.l2 = 0.5;
    cv_optim *o = NULL;
    cv_optim_create(&c, m, &o, NULL);
    float *w = cv_model_params(m), *g = cv_model_grads(m);
    w[0] = 2.0f, w[1] = -4.0f, w[2] = 3.0f; /* W = [2, -4], b = 3 */
    g[0] = g[1] = g[2] = 0.0f;
    cv_optim_step(o, w, g, 1.0, 10); /* dW += 0.5/10 W */
    ASSERT_NEAR(w[0], 2.0 - 0.05 * 2.0, 1e-6);
    ASSERT_NEAR(w[1], -4.0 + 0.05 * 4.0, 1e-6);
    ASSERT_NEAR(w[2], 3.0, 0); /* bias: no decay */
    cv_optim_free(o);
    cv_model_free(m);
}

static void test_clipping(void)
{
    struct cv_config c;
    cv_model *m = tiny(&c, CV_OPT_SGD, 1.0);
    c.train.clip_norm = 1.0;
    cv_optim *o = NULL;
    cv_optim_create(&c, m, &o, NULL);
    float *w = cv_model_params(m), *g = cv_model_grads(m);
    w[0] = w[1] = w[2] = 0;
    g[0] = 3, g[1] = 4, g[2] = 0; /* norm 5 -> scaled to 1 */
    double norm = cv_optim_step(o, w, g, 1.0, 1);
    ASSERT_NEAR(norm, 5.0, 1e-9);
    ASSERT_NEAR(w[0], -0.6, 1e-7);
    ASSERT_NEAR(w[1], -0.8, 1e-7);
    cv_optim_free(o);
    cv_model_free(m);
}

/* A gradient handed over as grads + add (cv_optim_step_part's pending
 * addend) updates exactly as the same sum made beforehand: every rule, with
 * and without L2 and clipping, on a slice that starts mid-arena. */
static void test_pending_addend(void)
{
    const enum cv_optimizer rules[4] = {CV_OPT_SGD, CV_OPT_MOMENTUM, CV_OPT_RMSPROP, CV_OPT_ADAM};
    int units[1] = {19};
    enum cv_activation acts[1] = {CV_ACT_RELU};
    for (int k = 0; k < 16; k++) {
        struct cv_config c;
        fixture_mlp(&c, 37, units, acts, 1, CV_LOSS_MSE);
        c.train.optimizer = rules[k % 4];
        c.train.l2 = k & 4 ? 0.5 : 0;
        c.train.clip_norm = k & 8 ? 0.1 : 0;
        cv_model *m = NULL;
        cv_optim *summed = NULL, *split = NULL;
        ASSERT_EQ(cv_model_create(&c, 4, &m, NULL), CV_OK);
        size_t n = cv_model_n_params(m), lo = 5;
        float *w1 = calloc(n, sizeof(float)), *w2 = calloc(n, sizeof(float));
        float *g1 = calloc(n, sizeof(float)), *g2 = calloc(n, sizeof(float));
        float *add = calloc(n, sizeof(float)), *w3 = calloc(n, sizeof(float));
        float *g3 = calloc(n, sizeof(float)), *add3 = calloc(n, sizeof(float));
        cv_optim *consuming = NULL; /* the same, leaving the gradients it read zero */
        ASSERT_EQ(cv_optim_create(&c, m, &summed, NULL), CV_OK);
        ASSERT_EQ(cv_optim_create(&c, m, &split, NULL), CV_OK);
        ASSERT_EQ(cv_optim_create(&c, m, &consuming, NULL), CV_OK);
        if (!w1 || !w2 || !w3 || !g1 || !g2 || !g3 || !add || !add3 || !summed || !split ||
            !consuming)
            return;
        cv_optim_consume_grads(consuming, true);
        for (size_t i = 0; i < n; i++)
            w1[i] = w2[i] = w3[i] = 0.01f * (float)((i * 7) % 23) - 0.1f;
        double norm1 = 0, norm2 = 0, norm3 = 0;
        size_t left = 0;
        for (int t = 0; t < 3; t++) {
            for (size_t i = 0; i < n; i++) {
                g2[i] = g3[i] = 0.03f * (float)((i * 5 + (size_t)t) % 11) - 0.15f;
                add[i] = add3[i] = 0.02f * (float)((i * 3 + 2 * (size_t)t) % 13) - 0.1f;
                g1[i] = g2[i] + add[i];
            }
            norm1 = cv_optim_step_part(summed, w1, g1 + lo, NULL, lo, n, 0.05, 8, NULL, NULL);
            norm2 = cv_optim_step_part(split, w2, g2 + lo, add + lo, lo, n, 0.05, 8, NULL, NULL);
            norm3 = cv_optim_step_part(consuming, w3, g3 + lo, add3 + lo, lo, n, 0.05, 8, NULL,
                                       NULL);
            for (size_t i = 0; i < n; i++) /* zero in the slice, untouched before it */
                left += i < lo ? g3[i] != g2[i] || add3[i] != add[i] : g3[i] != 0 || add3[i] != 0;
        }
        CV_TEST_REPORT(memcmp(w1, w2, n * sizeof(float)) == 0 && norm1 == norm2,
                       "rule %d l2 %g clip %g: the pending addend changed the update",
                       (int)c.train.optimizer, c.train.l2, c.train.clip_norm);
        CV_TEST_REPORT(memcmp(w1, w3, n * sizeof(float)) == 0 && norm1 == norm3 && left == 0,
                       "rule %d l2 %g clip %g: consuming changed the update or left %zu wrong",
                       (int)c.train.optimizer, c.train.l2, c.train.clip_norm, left);
        if (c.train.clip_norm > 0) /* the clip was active */
            CV_TEST_REPORT(norm1 > c.train.clip_norm, "norm %g under the clip", norm1);
        ASSERT_TRUE(w1[lo] != 0.01f * (float)((lo * 7) % 23) - 0.1f); /* the slice moved */
        free(w1), free(w2), free(w3), free(g1), free(g2), free(g3), free(add), free(add3);
        cv_optim_free(consuming);
        cv_optim_free(summed);
        cv_optim_free(split);
        cv_model_free(m);
    }
}

static void test_schedules(void)
{
    struct cv_config c;
    memset(&c, 0, sizeof(c));
    c.train.lr = 0.1;
    c.train.decay = CV_DECAY_CONSTANT;
    ASSERT_NEAR(cv_optim_lr(&c, 5), 0.1, 0);
    c.train.decay = CV_DECAY_INVERSE_TIME; /* a0 / (1 + rate * epoch) */
    c.train.decay_rate = 1.0;
    ASSERT_NEAR(cv_optim_lr(&c, 3), 0.025, 1e-12);
    c.train.decay = CV_DECAY_EXPONENTIAL; /* a0 * rate^epoch */
    c.train.decay_rate = 0.5;
    ASSERT_NEAR(cv_optim_lr(&c, 2), 0.025, 1e-12);
    c.train.decay = CV_DECAY_STEP; /* a0 * rate^floor(epoch / every) */
    c.train.decay_every = 2;
    ASSERT_NEAR(cv_optim_lr(&c, 3), 0.05, 1e-12);
    ASSERT_NEAR(cv_optim_lr(&c, 4), 0.025, 1e-12);
}

int main(void)
{
    test_update_rules();
    test_l2_weights_only();
    test_clipping();
    test_pending_addend();
    test_schedules();
    TEST_MAIN_END();
}
