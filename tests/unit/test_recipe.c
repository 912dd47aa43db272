/*
 * test_recipe.c - the training recipe's pure parts: the best epoch, early
 * stopping (Keras' EarlyStopping rules: min_delta, patience, min or max),
 * the schedules at hand-computed points (PyTorch is the peer in
 * tests/peer/recipe_torch.py), finite-difference gradients of the softmax
 * cross-entropy with label smoothing and class weights, and the config
 * errors of the recipe keys (one message naming the key).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/optim.h"
#include "kernels.h"
#include "recipe.h"
#include "test.h"

/* Every figure of the epoch = v: the monitored one is among them. */
static void update(const struct cv_config *c, struct cv_recipe_state *s, double v, long long epoch,
                   struct cv_recipe_step *d)
{
    struct cv_epoch_metrics m = {v, v, v, v, v};
    cv__recipe_update(c, s, &m, epoch, d);
}

static void early_stopping(void)
{
    struct cv_config c;
    memset(&c, 0, sizeof(c));
    c.train.monitor = CV_MON_DEV_ACCURACY; /* maximised */
    c.train.patience = 3;
    c.train.min_delta = 0.01;
    struct cv_recipe_state s;
    struct cv_recipe_step d;
    cv__recipe_init(&s);
    /* 0.80 best; 0.805 is a new best model but not an improvement by > 0.01 */
    const double v[6] = {0.70, 0.80, 0.805, 0.79, NAN, 0.81};
    const bool best[6] = {true, true, true, false, false, true};
    const bool stop[6] = {false, false, false, false, true, true};
    for (int e = 0; e < 6; e++) {
        update(&c, &s, v[e], e + 1, &d);
        ASSERT_EQ(d.improved, best[e]);
        ASSERT_EQ(d.stop, stop[e]);
    }
    ASSERT_EQ(s.best_epoch, 6);
    ASSERT_NEAR(s.best, 0.81, 0);
    ASSERT_EQ(s.stopped, 6); /* es reference stayed 0.80: 0.81 is not > 0.80 + 0.01 */
    /* minimised: a lower loss improves */
    c.train.monitor = CV_MON_DEV_LOSS;
    c.train.monitor_min = true;
    c.train.min_delta = 0;
    cv__recipe_init(&s);
    update(&c, &s, 0.5, 1, &d);
    update(&c, &s, 0.4, 2, &d);
    ASSERT_TRUE(d.improved && !d.stop);
    update(&c, &s, 0.45, 3, &d);
    ASSERT_TRUE(!d.improved && s.best_epoch == 2);
    /* no monitor: nothing decided */
    c.train.monitor = CV_MON_NONE;
    cv__recipe_init(&s);
    update(&c, &s, 0.1, 1, &d);
    ASSERT_TRUE(!d.improved && !d.stop && s.best_epoch == 0);
}

static void schedules(void)
{
    struct cv_config c;
    memset(&c, 0, sizeof(c));
    c.train.lr = 0.1;
    c.train.epochs = 10;
    c.train.decay = CV_DECAY_COSINE;
    c.train.decay_floor = 0.02;
    ASSERT_NEAR(cv_optim_lr(&c, 0), 0.1, 1e-15);
    ASSERT_NEAR(cv_optim_lr(&c, 5), 0.06, 1e-15); /* half way: the mean of lr and floor */
    c.train.decay_restart = 4;                    /* cycles of 4 epochs */
    ASSERT_NEAR(cv_optim_lr(&c, 4), 0.1, 1e-15);
    ASSERT_NEAR(cv_optim_lr(&c, 6), 0.06, 1e-15);
    c.train.decay = CV_DECAY_INVERSE_SQRT; /* k / sqrt(epoch number) a0 */
    c.train.decay_rate = 0.5;
    ASSERT_NEAR(cv_optim_lr(&c, 3), 0.1 * 0.5 / 2, 1e-15);
    c.train.warmup_steps = 4; /* (step + 1) / 4, then 1 */
    ASSERT_NEAR(cv_optim_warmup(&c, 0, 100), 0.25, 0);
    ASSERT_NEAR(cv_optim_warmup(&c, 3, 100), 1.0, 0);
    ASSERT_NEAR(cv_optim_warmup(&c, 50, 100), 1.0, 0);
    c.train.warmup_steps = 0;
    c.train.warmup_epochs = 2; /* the schedule starts after the warmup */
    ASSERT_NEAR(cv_optim_warmup(&c, 9, 10), 0.5, 1e-15);
    ASSERT_NEAR(cv_optim_lr(&c, 5), 0.1 * 0.5 / 2, 1e-15);
}

/* d(loss)/dz by central differences (in double) against the kernel's. */
static void loss_gradients(void)
{
    const float w[5] = {0.5f, 2.0f, 1.0f, 3.0f, 0.7f};
    const int32_t y[2] = {3, 0};
    float z[10], d[10], tmp[10];
    for (int i = 0; i < 10; i++)
        z[i] = (float)sin(1.7 * i) * 2.0f;
    for (int k = 0; k < 4; k++) {
        struct cv_ce_opts o = {k & 1 ? 0.15f : 0.0f, k & 2 ? w : NULL};
        cv_loss_softmax_ce(z, y, 2, 5, 1.0f, &o, d, NULL);
        double worst = 0;
        for (int i = 0; i < 10; i++) {
            float h = 1e-2f, keep = z[i];
            z[i] = keep + h;
            double up = cv_loss_softmax_ce(z, y, 2, 5, 1.0f, &o, tmp, NULL);
            z[i] = keep - h;
            double down = cv_loss_softmax_ce(z, y, 2, 5, 1.0f, &o, tmp, NULL);
            z[i] = keep;
            double num = (up - down) / (2.0 * ((double)(keep + h) - keep));
            worst = fmax(worst, fabs(num - d[i]));
        }
        CV_TEST_REPORT(worst < 2e-4, "smoothing %g weights %s: gradient off by %g", o.smoothing,
                       o.weights ? "on" : "off", worst);
    }
    /* smoothing with the right class certain costs e (log K - mean log p)... by hand:
     * z = [0, 0], y = 0, e = 0.2: q = [0.9, 0.1], p = [0.5, 0.5] -> loss log 2 */
    float z2[2] = {0, 0}, d2[2];
    int32_t y2[1] = {0};
    struct cv_ce_opts o = {0.2f, NULL};
    ASSERT_NEAR(cv_loss_softmax_ce(z2, y2, 1, 2, 1.0f, &o, d2, NULL), log(2.0), 1e-12);
    ASSERT_NEAR(d2[0], 0.5 - 0.9, 1e-7);
}

static void config_errors(void)
{
    const char *base =
        "data: {train: a.h5}\n"
        "model: {input: [4], layers: [{type: dense, units: 3, activation: softmax}]}\n";
    struct {
        const char *override, *needle;
    } bad[] = {
        {"train.monitor=dev.loss", "data.dev is not set"},
        {"train.early_stopping={patience: 2}", NULL}, /* monitors train.loss without dev: ok */
        {"train.weight_decay=-1", "train.weight_decay"},
        {"train.weight_decay=0.1", "train.weight_decay (decoupled) is for"},
        {"train.warmup={epochs: 10}", "train.warmup.epochs = 10"},
        {"train.warmup={epochs: 1, steps: 3}", "not both"},
        {"model.label_smoothing=1", "model.label_smoothing"},
        {"model.class_weights=[1, -2, 1]", "model.class_weights"},
        {"model.layers.0.trainable=false", "every layer with parameters"},
        {"train.decay={kind: plateau, rate: 1}", "plateau"},
        {"train.early_stopping={min_delta: 0.1}", "patience"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cv_config *c = NULL;
        struct cv_error err;
        cv_error_clear(&err);
        cv_status st = cv_config_parse(base, "t.yaml", &bad[i].override, 1, &c, &err);
        if (!bad[i].needle) {
            ASSERT_EQ(st, CV_OK);
            ASSERT_EQ(c->train.monitor, CV_MON_TRAIN_LOSS);
        } else {
            CV_TEST_REPORT(st == CV_CONFIG && strstr(err.msg, bad[i].needle),
                           "%s: status %d, message '%s'", bad[i].override, (int)st, err.msg);
        }
        cv_config_free(c);
    }
}

int main(void)
{
    early_stopping();
    schedules();
    loss_gradients();
    config_errors();
    TEST_MAIN_END();
}
