/*
 * recipe_dump.c - prints, as one JSON object, what caviar computes for the
 * training recipe on fixed inputs, for tests/peer/recipe_torch.py to check
 * against PyTorch 1.13 (an independent implementation):
 *   optim:  parameter trajectories of AdamW (weight decay, bias excluded)
 *           and Nesterov SGD (with and without L2) under fixed gradients
 *   sched:  learning rates of cosine (one cycle, restarts), inverse_sqrt,
 *           and warmup + cosine per step; reduce-on-plateau on a fixed
 *           metric sequence
 *   loss:   softmax cross-entropy with label smoothing and class weights,
 *           its sum and gradient
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "caviar/model.h"
#include "caviar/optim.h"
#include "fixtures.h"
#include "kernels.h"
#include "recipe.h"

#define STEPS 6

static void print_floats(const char *name, const float *v, int n, const char *end)
{
    printf("\"%s\": [", name);
    for (int i = 0; i < n; i++)
        printf("%s%.9g", i ? ", " : "", v[i]);
    printf("]%s", end);
}

static void print_doubles(const char *name, const double *v, int n, const char *end)
{
    printf("\"%s\": [", name);
    for (int i = 0; i < n; i++)
        printf("%s%.17g", i ? ", " : "", v[i]);
    printf("]%s", end);
}

/* gradient t of parameter i: the same sequence the peer reads back */
static float grad(int t, int i)
{
    return (float)sin(1.3 * t + 0.7 * i) * (i == 2 ? 0.5f : 2.0f);
}

/* A 2 -> 1 dense layer: W (1, 2) decayed, b (1) not. */
static void trajectory(const char *name, enum cv_optimizer opt, double l2, double wd, long long m,
                       const char *end)
{
    struct cv_config c;
    int units[1] = {1};
    enum cv_activation acts[1] = {CV_ACT_LINEAR};
    fixture_mlp(&c, 2, units, acts, 1, CV_LOSS_MSE);
    c.train.optimizer = opt;
    c.train.beta1 = opt == CV_OPT_NESTEROV ? 0.8 : 0.9;
    c.train.l2 = l2;
    c.train.weight_decay = wd;
    cv_model *mod = NULL;
    cv_optim *o = NULL;
    if (cv_model_create(&c, 1, &mod, NULL) != CV_OK || cv_optim_create(&c, mod, &o, NULL) != CV_OK)
        exit(1);
    float *w = cv_model_params(mod), *g = cv_model_grads(mod), traj[STEPS * 3];
    w[0] = 0.5f, w[1] = -1.5f, w[2] = 0.25f;
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < 3; i++)
            g[i] = grad(t, i);
        cv_optim_step(o, w, g, 0.05 * (1 + t % 2), m); /* a changing rate, as schedules do */
        for (int i = 0; i < 3; i++)
            traj[t * 3 + i] = w[i];
    }
    print_floats(name, traj, STEPS * 3, end);
    cv_optim_free(o);
    cv_model_free(mod);
}

static void schedules(void)
{
    struct cv_config c;
    double lr[40];
    memset(&c, 0, sizeof(c));
    c.train.lr = 0.1;
    c.train.epochs = 12;
    c.train.decay = CV_DECAY_COSINE;
    c.train.decay_floor = 0.001;
    for (int e = 0; e < 12; e++)
        lr[e] = cv_optim_lr(&c, e);
    print_doubles("cosine", lr, 12, ",\n");
    c.train.decay_restart = 3;
    c.train.decay_restart_mult = 2;
    c.train.epochs = 21;
    for (int e = 0; e < 21; e++)
        lr[e] = cv_optim_lr(&c, e);
    print_doubles("restarts", lr, 21, ",\n");
    c.train.decay = CV_DECAY_INVERSE_SQRT;
    c.train.decay_rate = 2.0;
    for (int e = 0; e < 10; e++)
        lr[e] = cv_optim_lr(&c, e);
    print_doubles("inverse_sqrt", lr, 10, ",\n");
    /* warmup 2 epochs of 4 steps, then cosine over the 6 other epochs */
    c.train.decay = CV_DECAY_COSINE;
    c.train.decay_restart = 0;
    c.train.epochs = 8;
    c.train.warmup_epochs = 2;
    struct cv_recipe_state s;
    cv__recipe_init(&s);
    for (int k = 0; k < 32; k++)
        lr[k] = cv__recipe_lr(&c, &s, k / 4) * cv_optim_warmup(&c, k, 4);
    print_doubles("warmup_cosine", lr, 32, ",\n");
}

/* Every figure of the epoch = v: the monitored one is among them. */
static void update(const struct cv_config *c, struct cv_recipe_state *s, double v, long long epoch,
                   struct cv_recipe_step *d)
{
    struct cv_epoch_metrics m = {v, v, v, v, v};
    cv__recipe_update(c, s, &m, epoch, d);
}

static void plateau(void)
{
    const double v[14] = {1.0, 0.9, 0.95, 0.9,  0.91, 0.89, 0.89,
                          0.9, 0.9, 0.8,  0.85, 0.86, 0.87, 0.88};
    double lr[14];
    struct cv_config c;
    memset(&c, 0, sizeof(c));
    c.train.lr = 0.1;
    c.train.decay = CV_DECAY_PLATEAU;
    c.train.decay_rate = 0.5;
    c.train.decay_patience = 1;
    c.train.decay_floor = 0.02;
    c.train.monitor = CV_MON_DEV_LOSS;
    c.train.monitor_min = true;
    struct cv_recipe_state s;
    struct cv_recipe_step d;
    cv__recipe_init(&s);
    for (int e = 0; e < 14; e++) {
        update(&c, &s, v[e], e + 1, &d);
        lr[e] = cv__recipe_lr(&c, &s, e + 1); /* the rate of the next epoch */
    }
    print_doubles("plateau_values", v, 14, ",\n");
    print_doubles("plateau", lr, 14, ",\n");
}

static void loss(void)
{
    const float z[12] = {2.0f, -1.0f, 0.5f, 0.0f, 0.3f, 0.3f, -2.0f, 1.5f, 4.0f, 1.0f, -1.0f, 0.0f};
    const int32_t y[3] = {0, 3, 1};
    const float w[4] = {0.5f, 2.0f, 1.0f, 3.0f};
    struct cv_ce_opts o = {0.2f, w};
    float d[12];
    double l = cv_loss_softmax_ce(z, y, 3, 4, 0.25f, &o, d, NULL);
    print_floats("z", z, 12, ",\n");
    printf("\"y\": [0, 3, 1],\n");
    print_floats("weights", w, 4, ",\n");
    printf("\"smoothing\": 0.2, \"scale\": 0.25, \"loss\": %.17g,\n", l);
    print_floats("dz", d, 12, "\n");
}

int main(void)
{
    printf("{\n");
    float g[STEPS * 3];
    for (int t = 0; t < STEPS; t++)
        for (int i = 0; i < 3; i++)
            g[t * 3 + i] = grad(t, i);
    print_floats("grads", g, STEPS * 3, ",\n");
    trajectory("adamw", CV_OPT_ADAMW, 0, 0.1, 4, ",\n");
    trajectory("nesterov", CV_OPT_NESTEROV, 0, 0, 4, ",\n");
    trajectory("nesterov_l2", CV_OPT_NESTEROV, 0.8, 0, 4, ",\n");
    schedules();
    plateau();
    loss();
    printf("}\n");
    return 0;
}
