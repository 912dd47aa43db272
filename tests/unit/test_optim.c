/*
 * test_optim.c - update rules against values computed by hand (a few lines
 * of Python in the comments' formulas), L2 on weights only, clipping and
 * learning-rate schedules.
 */
#include <math.h>
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

/* Two slices updated apart (a sharded optimizer: each owner its slice)
 * give exactly the whole arena's update: every rule, with and without L2;
 * with clipping too, when the slices' partial squared norms are summed
 * (the sum_sq hook, here over the two slices of one process). */
static double other_half; /* the other slice's partial squared norm */
static double add_other(void *arg, double partial)
{
    (void)arg;
    return partial + other_half;
}

static void test_slices_match_whole(void)
{
    const enum cv_optimizer rules[6] = {CV_OPT_SGD,  CV_OPT_MOMENTUM, CV_OPT_RMSPROP,
                                        CV_OPT_ADAM, CV_OPT_NESTEROV, CV_OPT_ADAMW};
    int units[1] = {19};
    enum cv_activation acts[1] = {CV_ACT_RELU};
    for (int k = 0; k < 24; k++) {
        struct cv_config c;
        fixture_mlp(&c, 37, units, acts, 1, CV_LOSS_MSE);
        c.train.optimizer = rules[k % 6];
        c.train.weight_decay = 0.1;
        c.train.l2 = (k / 6) & 1 ? 0.5 : 0;
        c.train.clip_norm = (k / 6) & 2 ? 0.1 : 0;
        cv_model *m = NULL;
        cv_optim *whole = NULL, *parts = NULL;
        ASSERT_EQ(cv_model_create(&c, 4, &m, NULL), CV_OK);
        size_t n = cv_model_n_params(m), cut = 301;
        float *w1 = calloc(n, sizeof(float)), *w2 = calloc(n, sizeof(float));
        float *g1 = calloc(n, sizeof(float)), *g2 = calloc(n, sizeof(float));
        ASSERT_EQ(cv_optim_create(&c, m, &whole, NULL), CV_OK);
        ASSERT_EQ(cv_optim_create(&c, m, &parts, NULL), CV_OK);
        if (!w1 || !w2 || !g1 || !g2 || !whole || !parts)
            return;
        for (size_t i = 0; i < n; i++)
            w1[i] = w2[i] = 0.01f * (float)((i * 7) % 23) - 0.1f;
        double norm1 = 0, norm2 = 0;
        for (int t = 0; t < 3; t++) {
            for (size_t i = 0; i < n; i++)
                g1[i] = g2[i] = 0.03f * (float)((i * 5 + (size_t)t) % 11) - 0.15f;
            norm1 = cv_optim_step(whole, w1, g1, 0.05, 8);
            /* the second slice's partial norm (after L2), as its owner would sum it */
            other_half = 0;
            float lam = (float)(c.train.l2 / 8.0);
            unsigned char *dm = calloc(n, 1);
            cv_model_decay_mask(m, dm);
            for (size_t i = cut; i < n; i++) {
                float g = g2[i] + lam * (float)dm[i] * w2[i];
                other_half += (double)g * g;
            }
            free(dm);
            norm2 = cv_optim_step_part(parts, w2, g2, 0, cut, 0.05, 8, add_other, NULL);
            other_half = norm2 * norm2 - other_half;      /* the first slice's, for the second */
            cv_optim_set_t(parts, cv_optim_t(parts) - 1); /* one step, two slices */
            cv_optim_step_part(parts, w2, g2 + cut, cut, n, 0.05, 8, add_other, NULL);
        }
        double worst = 0;
        for (size_t i = 0; i < n; i++)
            worst = fmax(worst, fabs((double)w1[i] - w2[i]));
        CV_TEST_REPORT(worst <= 1e-7 && fabs(norm1 - norm2) <= 1e-9 * norm1,
                       "rule %d l2 %g clip %g: slices differ from the whole by %g (norm %g vs %g)",
                       (int)c.train.optimizer, c.train.l2, c.train.clip_norm, worst, norm1, norm2);
        if (c.train.clip_norm > 0) /* the clip was active */
            CV_TEST_REPORT(norm1 > c.train.clip_norm, "norm %g under the clip", norm1);
        free(w1), free(w2), free(g1), free(g2);
        cv_optim_free(whole);
        cv_optim_free(parts);
        cv_model_free(m);
    }
}

/* AdamW's decay is decoupled: with a zero gradient Adam does not move, and
 * AdamW multiplies the weights (not the bias) by 1 - lr wd exactly; a
 * frozen parameter (factor 0) does not move and keeps no moments, a
 * parameter at factor 0.5 moves as with half the rate. */
static void test_adamw_and_factors(void)
{
    struct cv_config c;
    cv_model *m = tiny(&c, CV_OPT_ADAMW, 0.1);
    c.train.weight_decay = 0.5;
    cv_optim *o = NULL;
    ASSERT_EQ(cv_optim_create(&c, m, &o, NULL), CV_OK);
    float *w = cv_model_params(m), *g = cv_model_grads(m);
    w[0] = 2.0f, w[1] = -4.0f, w[2] = 3.0f;
    g[0] = g[1] = g[2] = 0.0f;
    cv_optim_step(o, w, g, 0.1, 1);
    ASSERT_NEAR(w[0], 2.0 * (1 - 0.1 * 0.5), 1e-7);
    ASSERT_NEAR(w[1], -4.0 * (1 - 0.1 * 0.5), 1e-7);
    ASSERT_NEAR(w[2], 3.0, 0); /* bias: excluded */
    cv_optim_free(o);
    c.train.decay_all = true; /* ... unless asked */
    ASSERT_EQ(cv_optim_create(&c, m, &o, NULL), CV_OK);
    cv_optim_step(o, w, g, 0.1, 1);
    ASSERT_NEAR(w[2], 3.0 * (1 - 0.1 * 0.5), 1e-7);
    cv_optim_free(o);
    c.train.optimizer = CV_OPT_SGD;
    ASSERT_EQ(cv_optim_create(&c, m, &o, NULL), CV_OK);
    const float scale[3] = {0.0f, 0.5f, 1.0f};
    ASSERT_EQ(cv_optim_set_lr_scale(o, scale, NULL), CV_OK);
    w[0] = w[1] = w[2] = 1.0f;
    g[0] = g[1] = g[2] = 1.0f;
    cv_optim_step(o, w, g, 0.1, 1);
    ASSERT_NEAR(w[0], 1.0, 0);
    ASSERT_NEAR(w[1], 1.0 - 0.05, 1e-7);
    ASSERT_NEAR(w[2], 1.0 - 0.1, 1e-7);
    cv_optim_free(o);
    c.train.optimizer = CV_OPT_ADAM;
    ASSERT_EQ(cv_optim_create(&c, m, &o, NULL), CV_OK);
    ASSERT_EQ(cv_optim_set_lr_scale(o, scale, NULL), CV_OK);
    g[0] = g[1] = g[2] = 1.0f;
    cv_optim_step(o, w, g, 0.1, 1);
    ASSERT_NEAR(cv_optim_m1(o)[0], 0.0, 0); /* frozen: no optimizer state */
    ASSERT_NEAR(cv_optim_m1(o)[1], 0.1, 1e-7);
    cv_optim_free(o);
    cv_model_free(m);
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
    test_slices_match_whole();
    test_schedules();
    test_adamw_and_factors();
    TEST_MAIN_END();
}
