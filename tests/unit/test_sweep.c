/*
 * test_sweep.c - the pieces of a sweep without MPI:
 *  - sampling: log_uniform puts a quarter of the draws in each decade of
 *    (1e-4, 1), one_minus_log_uniform does the same for 1 - beta, uniform
 *    and int_uniform cover their range evenly (both ends included), draws
 *    are reproducible and differ between trials;
 *  - grid plans enumerate every combination once; config errors name keys;
 *  - the queue, driven by a simulated cluster of G workers with uneven job
 *    lengths: every trial runs exactly once (grid/random) and ASHA promotes
 *    only trials in the top 1/eta of their rung, never twice, within budget;
 *  - results.jsonl round trip, a torn last line, ranking; refinement;
 *  - train.schedule (a pbt member's replay) parses and holds its values;
 *  - pbt: generations wait for each other and for the exploit step; the
 *    bottom copies the top; perturbed values stay in their ranges (a choice
 *    within its values); tpe: proposals stay in range, are reproducible,
 *    and on a known objective get much closer to its optimum than random
 *    draws with the same number of trials.
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "caviar/sweep.h"
#include "sweep_learn.h"
#include "test.h"

#define DRAWS 8000

static struct cv_sweep_dim dim(enum cv_dist dist, double lo, double hi)
{
    struct cv_sweep_dim d = {.dist = dist, .lo = lo, .hi = hi};
    snprintf(d.key, sizeof(d.key), "train.x");
    return d;
}

static double draw(const struct cv_sweep_dim *d, int trial)
{
    char buf[64];
    cv_sweep_sample_dim(d, 42, trial, buf, sizeof(buf));
    return strtod(buf, NULL);
}

static void test_log_uniform(void)
{
    struct cv_sweep_dim d = dim(CV_DIST_LOG_UNIFORM, 1e-4, 1);
    int decade[4] = {0};
    for (int i = 0; i < DRAWS; i++) {
        double v = draw(&d, i);
        ASSERT_TRUE(v >= 1e-4 && v <= 1);
        int k = (int)floor(-log10(v)); /* 0: [0.1, 1), 3: [1e-4, 1e-3) */
        decade[k < 0 ? 0 : k > 3 ? 3 : k]++;
    }
    /* binomial sd = sqrt(8000 * 0.25 * 0.75) = 39: allow 4 sd */
    for (int k = 0; k < 4; k++)
        ASSERT_NEAR(decade[k], DRAWS / 4, 160);
}

static void test_one_minus_log_uniform(void)
{
    struct cv_sweep_dim d = dim(CV_DIST_ONE_MINUS_LOG_UNIFORM, 0.9, 0.999);
    int decade[2] = {0};
    for (int i = 0; i < DRAWS; i++) {
        double beta = draw(&d, i);
        ASSERT_TRUE(beta >= 0.9 - 1e-9 && beta <= 0.999 + 1e-9);
        decade[1 - beta < 0.01]++; /* [0.9, 0.99) and [0.99, 0.999] */
    }
    ASSERT_NEAR(decade[0], DRAWS / 2, 180);
    ASSERT_NEAR(decade[1], DRAWS / 2, 180);
}

static void test_uniform_and_int(void)
{
    struct cv_sweep_dim u = dim(CV_DIST_UNIFORM, -2, 2), n = dim(CV_DIST_INT_UNIFORM, 3, 6);
    int below = 0, count[4] = {0};
    for (int i = 0; i < DRAWS; i++) {
        double v = draw(&u, i);
        ASSERT_TRUE(v >= -2 && v <= 2);
        below += v < 0;
        double k = draw(&n, i);
        ASSERT_TRUE(k == floor(k) && k >= 3 && k <= 6);
        count[(int)k - 3]++;
    }
    ASSERT_NEAR(below, DRAWS / 2, 180);
    for (int k = 0; k < 4; k++) /* both ends included, evenly */
        ASSERT_NEAR(count[k], DRAWS / 4, 160);
    /* reproducible, different per trial */
    ASSERT_EQ(draw(&u, 7) == draw(&u, 7), 1);
    ASSERT_EQ(draw(&u, 7) != draw(&u, 8), 1);
}

static const char *BASE =
    "data: {train: t.h5}\n"
    "model: {input: [4], layers: [{type: dense, units: 8, activation: relu},\n"
    "        {type: dense, units: 3, activation: softmax}]}\n"
    "train: {epochs: 4}\n"
    "run: {dir: /tmp/cv-test-sweep}\n";

static struct cv_config *config_with(const char *sweep, struct cv_error *err)
{
    char text[4096];
    snprintf(text, sizeof(text), "%s%s", BASE, sweep);
    struct cv_config *c = NULL;
    cv_error_clear(err);
    cv_config_parse(text, "t.yaml", NULL, 0, &c, err);
    return c;
}

static void test_grid(void)
{
    struct cv_error err;
    struct cv_config *c = config_with(
        "sweep:\n  strategy: grid\n  space:\n    train.optimizer: choice(sgd, adam)\n"
        "    model.layers.0.units: int_uniform(2, 4)\n",
        &err);
    ASSERT_TRUE(c != NULL);
    struct cv_sweep_plan *p = NULL;
    ASSERT_EQ(cv_sweep_plan_sample(c, &p, &err), CV_OK);
    ASSERT_EQ(p ? p->n_trials : 0, 6);
    for (int i = 0; p && i < p->n_trials; i++) {
        ASSERT_EQ(p->n_params[i], 2);
        ASSERT_STR_CONTAINS(p->over[i][0], "train.optimizer=");
        for (int j = 0; j < i; j++) /* every combination once */
            ASSERT_TRUE(strcmp(p->over[i][0], p->over[j][0]) ||
                        strcmp(p->over[i][1], p->over[j][1]));
    }
    struct cv_config *t = NULL;
    if (p) {
        ASSERT_EQ(cv_sweep_trial_config(p, 5, &t, &err), CV_OK);
        ASSERT_TRUE(t && t->model.layers[0].units == 4 && t->train.optimizer == CV_OPT_ADAM);
        ASSERT_TRUE(t && t->run.resume == CV_RESUME_AUTO);
        ASSERT_STR_CONTAINS(t ? t->run.dir : "", "/tmp/cv-test-sweep/sweep/trial-0005");
    }
    cv_config_free(t);
    cv_sweep_plan_free(p);
    cv_config_free(c);
}

static void expect_plan_error(const char *sweep, const char *needle)
{
    struct cv_error err;
    struct cv_config *c = config_with(sweep, &err);
    struct cv_sweep_plan *p = NULL;
    if (c)
        cv_sweep_plan_sample(c, &p, &err);
    ASSERT_TRUE(p == NULL);
    ASSERT_STR_CONTAINS(err.msg, needle);
    cv_sweep_plan_free(p);
    cv_config_free(c);
}

static void test_plan_errors(void)
{
    expect_plan_error("sweep: {trials: 2}\n", "sweep.space is empty");
    expect_plan_error("sweep:\n  space:\n    train.lr: log_uniform(0, 1)\n", "positive bounds");
    expect_plan_error("sweep:\n  space:\n    train.lr: uniform(1, 0.5)\n", "a < b");
    expect_plan_error("sweep:\n  space:\n    train.lrr: log_uniform(1e-3, 1)\n", "lrr");
    expect_plan_error("sweep:\n  strategy: grid\n  space:\n    train.lr: uniform(0.1, 1)\n",
                      "grid needs choice");
    expect_plan_error("sweep:\n  space:\n    model.layers.0.units: int_uniform(-3, -1)\n", "units");
}

/* A choice can be a YAML flow value: whole layer lists (number of layers). */
static void test_choice_of_layers(void)
{
    struct cv_error err;
    struct cv_config *c = config_with(
        "sweep:\n  trials: 12\n  space:\n    model.layers: \"choice([{type: dense, units: 3, "
        "activation: softmax}], [{type: dense, units: 5}, {type: dense, units: 3, activation: "
        "softmax}])\"\n",
        &err);
    ASSERT_TRUE(c && c->sweep.space[0].n_choices == 2);
    struct cv_sweep_plan *p = NULL;
    ASSERT_EQ(c ? cv_sweep_plan_sample(c, &p, &err) : CV_CONFIG, CV_OK);
    int seen[3] = {0};
    for (int i = 0; p && i < p->n_trials; i++) {
        struct cv_config *t = NULL;
        if (cv_sweep_trial_config(p, i, &t, &err) == CV_OK)
            seen[t->model.n_layers]++;
        cv_config_free(t);
    }
    ASSERT_TRUE(seen[1] > 0 && seen[2] > 0 && seen[1] + seen[2] == 12);
    cv_sweep_plan_free(p);
    cv_config_free(c);
}

/* ---- the queue under a simulated cluster ---- */

struct sim {
    cv_queue *q;
    int groups;
    struct cv_job job[8];
    double ends[8];  /* simulated time the group's job ends, < 0 idle */
    int runs[64][8]; /* jobs per (trial, rung) */
    double metric_of[64];
    double result[64][8]; /* reported metric per (trial, rung), NAN if none */
    int eta, misplaced;   /* promotions of trials outside their rung's top 1/eta */
};

/* ASHA's rule, checked independently: a promotion to rung r takes a trial
 * ranked within the top floor(n / eta) of the n results of rung r - 1. */
static void check_promotion(struct sim *s, int n_trials, const struct cv_job *j)
{
    int n = 0, ahead = 0;
    double mine = s->result[j->trial][j->rung - 1];
    for (int t = 0; t < n_trials; t++) {
        double v = s->result[t][j->rung - 1];
        if (isnan(v))
            continue;
        n++;
        ahead += v > mine;
    }
    if (isnan(mine) || ahead >= n / s->eta)
        s->misplaced++;
}

/* Event simulation: the group whose job ends first reports, then asks. */
static int simulate(struct sim *s, int n_trials, int *max_running)
{
    double now = 0;
    int jobs = 0;
    for (int g = 0; g < s->groups; g++)
        s->ends[g] = -1;
    for (int t = 0; t < 64; t++)
        for (int r = 0; r < 8; r++)
            s->result[t][r] = NAN;
    for (;;) {
        bool asked = false;
        for (int g = 0; g < s->groups; g++) {
            if (s->ends[g] >= 0)
                continue;
            if (cv_queue_next(s->q, &s->job[g]) != CV_QUEUE_RUN)
                continue;
            asked = true;
            const struct cv_job *j = &s->job[g];
            s->runs[j->trial][j->rung]++;
            if (j->rung > 0)
                check_promotion(s, n_trials, j);
            jobs++;
            /* uneven lengths: 1 to 3 time units per epoch */
            s->ends[g] = now + (1 + j->trial % 3) * (j->epochs ? j->epochs : 1);
        }
        int running = 0, first = -1;
        for (int g = 0; g < s->groups; g++)
            if (s->ends[g] >= 0) {
                running++;
                if (first < 0 || s->ends[g] < s->ends[first])
                    first = g;
            }
        if (running > *max_running)
            *max_running = running;
        if (first < 0 && !asked)
            break;
        if (first < 0)
            continue;
        now = s->ends[first];
        s->ends[first] = -1;
        const struct cv_job *j = &s->job[first];
        double v = s->metric_of[j->trial] + 0.01 * j->rung;
        s->result[j->trial][j->rung] = v;
        cv_queue_report(s->q, j, CV_JOB_PAUSED, v);
    }
    return jobs;
}

static void test_queue_random(void)
{
    for (int groups = 1; groups <= 3; groups++) {
        struct sim s = {.groups = groups};
        struct cv_error err;
        ASSERT_EQ(cv_queue_create(10, CV_STRATEGY_RANDOM, 3, 1, 4, false, 0, &s.q, &err), CV_OK);
        int most = 0;
        ASSERT_EQ(simulate(&s, 10, &most), 10);
        for (int t = 0; t < 10; t++) /* none lost, none twice */
            ASSERT_EQ(s.runs[t][0], 1);
        ASSERT_EQ(most, groups); /* every group kept busy */
        ASSERT_EQ(cv_queue_running(s.q), 0);
        cv_queue_free(s.q);
    }
}

static void test_queue_asha(void)
{
    for (int groups = 1; groups <= 3; groups++) {
        struct sim s = {.groups = groups, .eta = 3};
        struct cv_error err;
        int n = 27;
        for (int t = 0; t < n; t++) /* a shuffled ranking: trial 13 best, 0 worst */
            s.metric_of[t] = t == 13 ? 1.0 : t == 0 ? 0.0 : 0.1 + 0.8 * ((t * 7) % 26) / 26.0;
        ASSERT_EQ(cv_queue_create(n, CV_STRATEGY_ASHA, 3, 1, 9, false, 0, &s.q, &err), CV_OK);
        int rungs[8], nr = cv_queue_rungs(s.q, rungs, 8);
        ASSERT_EQ(nr, 3);
        ASSERT_TRUE(rungs[0] == 1 && rungs[1] == 3 && rungs[2] == 9);
        int most = 0;
        simulate(&s, n, &most);
        int at[3] = {0};
        for (int t = 0; t < n; t++)
            for (int r = 0; r < 3; r++) {
                ASSERT_TRUE(s.runs[t][r] <= 1); /* never promoted twice */
                at[r] += s.runs[t][r];
            }
        ASSERT_EQ(at[0], n);
        ASSERT_EQ(s.misplaced, 0);
        ASSERT_TRUE(at[1] >= n / 3 && at[1] < n / 2); /* about the top third */
        ASSERT_TRUE(at[2] >= 1 && at[2] < at[1]);
        ASSERT_EQ(s.runs[13][2], 1); /* the best reaches the top */
        ASSERT_EQ(s.runs[0][1], 0);  /* the worst is never promoted */
        /* epochs: 27 x 1 + promotions x (3-1) + (9-3) */
        ASSERT_EQ(cv_queue_epochs_spent(s.q), at[0] * 1 + at[1] * 2 + at[2] * 6);
        cv_queue_free(s.q);
    }
}

static void test_queue_budget_and_replay(void)
{
    struct cv_error err;
    cv_queue *q = NULL;
    ASSERT_EQ(cv_queue_create(10, CV_STRATEGY_RANDOM, 3, 1, 4, false, 12, &q, &err), CV_OK);
    struct cv_job j;
    int handed = 0;
    while (cv_queue_next(q, &j) == CV_QUEUE_RUN)
        handed++;
    ASSERT_EQ(handed, 3); /* 3 trials x 4 epochs fit a budget of 12 */
    cv_queue_free(q);

    /* replay: trials 0 and 2 finished before; 1 was running (interrupted) */
    ASSERT_EQ(cv_queue_create(4, CV_STRATEGY_RANDOM, 3, 1, 4, false, 0, &q, &err), CV_OK);
    struct cv_job done0 = {.trial = 0}, done2 = {.trial = 2}, int1 = {.trial = 1};
    cv_queue_replay(q, &done0, CV_JOB_DONE, 0.5);
    cv_queue_replay(q, &int1, CV_JOB_INTERRUPTED, NAN);
    cv_queue_replay(q, &done2, CV_JOB_DONE, 0.6);
    int order[4], k = 0;
    while (k < 4 && cv_queue_next(q, &j) == CV_QUEUE_RUN)
        order[k++] = j.trial;
    ASSERT_EQ(k, 2);
    ASSERT_TRUE(k == 2 && order[0] == 1 && order[1] == 3);
    /* an interrupted job goes back to the queue */
    cv_queue_report(q, &(struct cv_job){.trial = 1}, CV_JOB_INTERRUPTED, NAN);
    ASSERT_EQ(cv_queue_next(q, &j), CV_QUEUE_RUN);
    ASSERT_EQ(j.trial, 1);
    cv_queue_free(q);
}

/* ---- results ---- */

static void test_results_roundtrip(void)
{
    char path[] = "/tmp/cv-test-results-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    struct cv_result r = {.trial = 3,
                          .rung = 1,
                          .epochs = 3,
                          .status = CV_JOB_DONE,
                          .value = 0.875,
                          .dev_loss = NAN,
                          .n_params = 2};
    snprintf(r.params[0].key, sizeof(r.params[0].key), "train.lr");
    snprintf(r.params[0].value, sizeof(r.params[0].value), "0.00123");
    snprintf(r.params[1].key, sizeof(r.params[1].key), "train.optimizer");
    snprintf(r.params[1].value, sizeof(r.params[1].value), "adam");
    snprintf(r.message, sizeof(r.message), "quote \" and backslash \\");
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_result_append(path, &r, "dev.accuracy", &err), CV_OK);
    r.trial = 4;
    r.value = 0.9;
    r.steps = 1290; /* pbt with sweep.ready_steps */
    ASSERT_EQ(cv_result_append(path, &r, "dev.accuracy", &err), CV_OK);
    r.steps = 0;
    r.trial = 5;
    r.status = CV_JOB_FAILED;
    r.value = NAN;
    ASSERT_EQ(cv_result_append(path, &r, "dev.accuracy", &err), CV_OK);
    FILE *f = fopen(path, "a"); /* a writer killed mid-line */
    fputs("{\"trial\":6,\"rung\":0,\"ep", f);
    fclose(f);
    struct cv_result *rows = NULL;
    int n = 0;
    ASSERT_EQ(cv_results_read(path, &rows, &n, &err), CV_OK);
    ASSERT_EQ(n, 3);
    if (n == 3) {
        ASSERT_EQ(rows[0].trial, 3);
        ASSERT_NEAR(rows[0].value, 0.875, 1e-12);
        ASSERT_TRUE(isnan(rows[0].dev_loss));
        ASSERT_STR_CONTAINS(rows[0].params[0].value, "0.00123");
        ASSERT_STR_CONTAINS(rows[0].params[1].value, "adam");
        ASSERT_STR_CONTAINS(rows[0].message, "quote \" and backslash \\");
        ASSERT_EQ(rows[2].status, CV_JOB_FAILED);
        ASSERT_EQ(rows[0].steps, 0); /* written only with sweep.ready_steps */
        ASSERT_EQ(rows[1].steps, 1290);
        n = cv_results_best_per_trial(rows, n, false);
        ASSERT_EQ(rows[0].trial, 4); /* best first, failed last */
        ASSERT_EQ(rows[2].trial, 5);
    }
    free(rows);
    f = fopen(path, "a"); /* garbage in the middle is corruption, not a torn line */
    fputs("\nnot json\n{\"trial\":7}\n", f);
    fclose(f);
    ASSERT_EQ(cv_results_read(path, &rows, &n, &err), CV_CORRUPT);
    ASSERT_STR_CONTAINS(err.msg, path);
    unlink(path);
}

static void test_refine(void)
{
    struct cv_error err;
    struct cv_config *c = config_with("sweep:\n  space:\n    train.lr: log_uniform(1e-5, 1)\n"
                                      "    train.optimizer: choice(sgd, momentum, adam)\n"
                                      "    model.layers.0.units: int_uniform(8, 512)\n",
                                      &err);
    struct cv_result rows[3] = {0};
    const char *lr[3] = {"0.001", "0.004", "0.5"}, *opt[3] = {"adam", "momentum", "sgd"};
    const char *units[3] = {"64", "100", "8"};
    for (int i = 0; i < 3; i++) {
        rows[i].trial = i;
        rows[i].status = CV_JOB_DONE;
        rows[i].n_params = 3;
        snprintf(rows[i].params[0].key, CV_KEY_MAX, "train.lr");
        snprintf(rows[i].params[0].value, 64, "%s", lr[i]);
        snprintf(rows[i].params[1].key, CV_KEY_MAX, "train.optimizer");
        snprintf(rows[i].params[1].value, 64, "%s", opt[i]);
        snprintf(rows[i].params[2].key, CV_KEY_MAX, "model.layers.0.units");
        snprintf(rows[i].params[2].value, 64, "%s", units[i]);
    }
    struct cv_config *fine = NULL;
    ASSERT_EQ(c ? cv_sweep_refine(c, rows, 3, 2, &fine, &err) : CV_CONFIG, CV_OK);
    if (fine) {
        const struct cv_sweep_dim *d = &fine->sweep.space[0];
        /* log span [1e-3, 4e-3] padded by half its log width: [5e-4, 8e-3] */
        ASSERT_EQ(d->dist, CV_DIST_LOG_UNIFORM);
        ASSERT_NEAR(d->lo, 5e-4, 1e-9);
        ASSERT_NEAR(d->hi, 8e-3, 1e-8);
        const struct cv_sweep_dim *o = &fine->sweep.space[1];
        ASSERT_EQ(o->n_choices, 2); /* momentum, adam */
        ASSERT_TRUE(!strcmp(o->choices[0], "momentum") && !strcmp(o->choices[1], "adam"));
        const struct cv_sweep_dim *u = &fine->sweep.space[2];
        ASSERT_TRUE(u->lo == 46 && u->hi == 118); /* [64, 100] padded by 18 */
        ASSERT_STR_CONTAINS(fine->text, "log_uniform(0.0005, 0.008)");
        /* fresh points: a range left as it was is drawn anew, not replayed */
        ASSERT_TRUE(fine->sweep.seed != c->sweep.seed);
        int same = 0;
        for (int i = 0; i < 8; i++) {
            char a[64], b[64];
            cv_sweep_sample_dim(&c->sweep.space[2], c->sweep.seed, i, a, sizeof(a));
            cv_sweep_sample_dim(&c->sweep.space[2], fine->sweep.seed, i, b, sizeof(b));
            same += !strcmp(a, b);
        }
        ASSERT_TRUE(same <= 1);
    }
    struct cv_config *none = NULL;
    ASSERT_EQ(c ? cv_sweep_refine(c, rows, 3, 4, &none, &err) : CV_OK, CV_USAGE);
    cv_config_free(fine);
    cv_config_free(c);
}

/* ---- strategies that learn ---- */

static struct cv_sweep_dim named(const char *key, enum cv_dist dist, double lo, double hi)
{
    struct cv_sweep_dim d = dim(dist, lo, hi);
    snprintf(d.key, sizeof(d.key), "%s", key);
    return d;
}

/* train.optimizer: choice(sgd, momentum, adam) */
static struct cv_sweep_dim optimizers(void)
{
    struct cv_sweep_dim d = named("train.optimizer", CV_DIST_CHOICE, 0, 0);
    d.n_choices = 3;
    snprintf(d.choices[0], CV_CHOICE_MAX, "sgd");
    snprintf(d.choices[1], CV_CHOICE_MAX, "momentum");
    snprintf(d.choices[2], CV_CHOICE_MAX, "adam");
    return d;
}

static double value_of(const char *lines, const char *key, char *text, size_t size)
{
    const char *at = strstr(lines, key);
    ASSERT_TRUE(at != NULL);
    if (!at)
        return NAN;
    at += strlen(key) + 1;
    size_t n = strcspn(at, "\n");
    snprintf(text, size, "%.*s", (int)n, at);
    return strtod(text, NULL);
}

/* sweep.direction: auto follows the metric's name, max and min override it. */
static void test_direction(void)
{
    const char *cases[][2] = {{"dev.accuracy", "auto"},
                              {"dev.loss", "auto"},
                              {"dev.rmse", "auto"},
                              {"dev.accuracy", "min"},
                              {"dev.loss", "max"}};
    const bool want[] = {false, true, true, true, false};
    for (int i = 0; i < 5; i++) {
        char text[256];
        struct cv_error err;
        snprintf(text, sizeof(text),
                 "sweep:\n  metric: %s\n  direction: %s\n  space:\n"
                 "    train.lr: log_uniform(1e-4, 1)\n",
                 cases[i][0], cases[i][1]);
        struct cv_config *c = config_with(text, &err);
        ASSERT_TRUE(c != NULL);
        if (c)
            ASSERT_EQ(c->sweep.minimize, want[i]);
        cv_config_free(c);
    }
}

/* train.schedule: the latest point at or before an epoch, else the key's own value. */
static void test_train_schedule(void)
{
    struct cv_error err;
    struct cv_config *c = config_with("sweep:\n  space:\n    train.lr: log_uniform(1e-4, 1)\n",
                                      &err);
    const char *over[] = {"train.schedule={train.lr: {4: 0.05, 0: 0.1}, train.l2: {2: 0.001}}"};
    struct cv_config *s = NULL;
    ASSERT_EQ(c ? cv_config_parse(c->text, "t.yaml", over, 1, &s, &err) : CV_CONFIG, CV_OK);
    if (s) {
        ASSERT_EQ(s->train.n_schedule, 3);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_LR, -1, 0), 0.1, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_LR, -1, 3), 0.1, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_LR, -1, 4), 0.05, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_LR, -1, 99), 0.05, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_L2, -1, 1), s->train.l2, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_L2, -1, 2), 0.001, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_BETA1, -1, 7), s->train.beta1, 0);
    }
    cv_config_free(s);
    const char *bad[] = {"train.schedule={train.beta1: {1: 1.5}}"};
    s = NULL;
    ASSERT_EQ(c ? cv_config_parse(c->text, "t.yaml", bad, 1, &s, &err) : CV_OK, CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "train.schedule.train.beta1.1");
    cv_config_free(s);
    cv_config_free(c);
}

/* parse TEXT with OVER; the status, and the message in err. */
static cv_status parse_over(const char *text, const char *over, struct cv_config **out,
                            struct cv_error *err)
{
    cv_error_clear(err);
    *out = NULL;
    return cv_config_parse(text, "t.yaml", &over, 1, out, err);
}

/* train.schedule of a dropout layer's keep (per layer, keyed as in a sweep
 * space) and of the augmentation shift. */
static void test_train_schedule_keep_shift(void)
{
    const char *img = "data: {train: t.h5}\n"
                      "model: {input: [1, 8, 8], layers: [{type: dense, units: 8},\n"
                      "        {type: dropout, keep: 0.9}, {type: dropout, keep: 0.7},\n"
                      "        {type: dense, units: 3, activation: softmax}]}\n"
                      "train: {epochs: 4}\n";
    struct cv_error err;
    struct cv_config *s = NULL;
    ASSERT_EQ(parse_over(img,
                         "train.schedule={model.layers.2.keep: {0: 0.5, 3: 0.25}, "
                         "data.augment.shift: {2: 3}}",
                         &s, &err),
              CV_OK);
    if (s) {
        ASSERT_EQ(s->train.n_schedule, 3);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_KEEP, 2, 2), 0.5, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_KEEP, 2, 3), 0.25, 0);
        /* layer 1 has no points: its own keep, whatever layer 2 does */
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_KEEP, 1, 3), 0.9f, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_AUGMENT_SHIFT, -1, 1), 0, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_AUGMENT_SHIFT, -1, 2), 3, 0);
        ASSERT_TRUE(cv_config_sched_has(s, CV_SCHED_AUGMENT_SHIFT));
        ASSERT_TRUE(!cv_config_sched_has(s, CV_SCHED_BETA1));
    }
    cv_config_free(s);
    int layer = -1;
    ASSERT_EQ(cv_sched_key_find("model.layers.12.keep", &layer), CV_SCHED_KEEP);
    ASSERT_EQ(layer, 12);
    ASSERT_EQ(cv_sched_key_find("model.layers.N.keep", NULL), -1);
    ASSERT_EQ(cv_sched_key_find("model.layers.-1.keep", NULL), -1);
    ASSERT_EQ(cv_sched_key_find("model.layers.1.units", NULL), -1);
    ASSERT_EQ(cv_sched_key_find("data.augment.flip", NULL), -1);
    const char *bad[][2] = {
        {"train.schedule={model.layers.0.keep: {0: 0.5}}", "layer 0 is dense, not a dropout"},
        {"train.schedule={model.layers.9.keep: {0: 0.5}}", "layer 9 is missing"},
        {"train.schedule={model.layers.1.keep: {1: 0}}", "train.schedule.model.layers.1.keep.1"},
        {"train.schedule={model.layers.1.keep: {1: 1.5}}", "train.schedule.model.layers.1.keep.1"},
        {"train.schedule={data.augment.shift: {1: 2.5}}", "train.schedule.data.augment.shift.1"},
        {"train.schedule={data.augment.shift: {1: 17}}", "train.schedule.data.augment.shift.1"},
        {"train.schedule={data.augment.flip: {1: 1}}", "train.schedule.data.augment.flip"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ(parse_over(img, bad[i][0], &s, &err), CV_CONFIG);
        ASSERT_STR_CONTAINS(err.msg, bad[i][1]);
        cv_config_free(s);
    }
    /* a shift needs image inputs, as data.augment does */
    ASSERT_EQ(parse_over(BASE, "train.schedule={data.augment.shift: {1: 2}}", &s, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "train.schedule.data.augment.shift needs image inputs");
    cv_config_free(s);
}

/* train.schedule.unit: steps: the points are global steps. */
static void test_train_schedule_steps(void)
{
    struct cv_error err;
    struct cv_config *s = NULL;
    ASSERT_EQ(parse_over(BASE, "train.schedule={train.lr: {0: 0.1, 250: 0.05}, unit: steps}", &s,
                         &err),
              CV_OK);
    if (s) {
        ASSERT_TRUE(s->train.schedule_steps);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_LR, -1, 249), 0.1, 0);
        ASSERT_NEAR(cv_config_sched_value(s, CV_SCHED_LR, -1, 250), 0.05, 0);
    }
    cv_config_free(s);
    ASSERT_EQ(parse_over(BASE, "train.schedule={train.lr: {3: 0.1}}", &s, &err), CV_OK);
    ASSERT_TRUE(s && !s->train.schedule_steps); /* epochs by default */
    cv_config_free(s);
    ASSERT_EQ(parse_over(BASE, "train.schedule={unit: batches, train.lr: {3: 0.1}}", &s, &err),
              CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "train.schedule.unit = batches: expected epochs or steps");
    cv_config_free(s);
}

static void test_pbt_perturb(void)
{
    struct cv_sweep_dim d[4] = {named("train.lr", CV_DIST_LOG_UNIFORM, 1e-4, 1e-1),
                                named("train.beta1", CV_DIST_ONE_MINUS_LOG_UNIFORM, 0.5, 0.999),
                                named("model.layers.0.units", CV_DIST_INT_UNIFORM, 8, 64),
                                optimizers()};
    const char *from = "train.lr=0.01\ntrain.beta1=0.9\nmodel.layers.0.units=8\n"
                       "train.optimizer=sgd\n";
    int up = 0, down = 0, resampled = 0;
    char out[1024], t[64];
    for (int m = 0; m < 200; m++) {
        cv__pbt_perturb(d, 4, from, 0.0, 7, m / 10, m, out, sizeof(out));
        double lr = value_of(out, "train.lr", t, sizeof(t));
        double b = value_of(out, "train.beta1", t, sizeof(t));
        double u = value_of(out, "model.layers.0.units", t, sizeof(t));
        value_of(out, "train.optimizer", t, sizeof(t));
        ASSERT_TRUE(lr == 0.008 || lr == 0.012);                       /* x 0.8 or x 1.2 */
        ASSERT_TRUE(fabs(b - 0.92) < 1e-12 || fabs(b - 0.88) < 1e-12); /* 1 - beta scaled */
        ASSERT_TRUE(u == 8 || u == 10);      /* clamped at the lower bound, or up by 1.2 */
        ASSERT_TRUE(!strcmp(t, "momentum")); /* sgd's only neighbour */
        up += lr > 0.01;
        down += lr < 0.01;
        cv__pbt_perturb(d, 4, from, 1.0, 7, 0, m, out, sizeof(out));
        lr = value_of(out, "train.lr", t, sizeof(t));
        ASSERT_TRUE(lr >= 1e-4 && lr <= 1e-1);
        resampled += lr != 0.008 && lr != 0.012;
        value_of(out, "train.optimizer", t, sizeof(t));
        ASSERT_TRUE(!strcmp(t, "sgd") || !strcmp(t, "momentum") || !strcmp(t, "adam"));
    }
    ASSERT_TRUE(up > 60 && down > 60);
    ASSERT_TRUE(resampled > 190);
    char again[1024];
    cv__pbt_perturb(d, 4, from, 0.25, 7, 3, 5, out, sizeof(out));
    cv__pbt_perturb(d, 4, from, 0.25, 7, 3, 5, again, sizeof(again));
    ASSERT_TRUE(!strcmp(out, again)); /* seeded by (seed, generation, member) */
}

static void test_pbt_pairs(void)
{
    /* 8 members: 4 and 6 best, 1 failed, 7 not in this generation */
    double v[8] = {0.5, NAN, 0.3, 0.6, 0.9, 0.4, 0.8, 0.1};
    bool alive[8] = {1, 1, 1, 1, 1, 1, 1, 0};
    int donor[8], again[8];
    cv__pbt_pairs(v, alive, 8, false, 0.25, 3, 0, donor);
    /* 7 alive: floor(7 / 4) = 1 */
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(donor[i], i == 1 ? 4 : -1);
    cv__pbt_pairs(v, alive, 8, false, 0.3, 3, 0, donor); /* floor(2.1) = 2: 1 and 2 copy 4 or 6 */
    for (int i = 0; i < 8; i++) {
        if (i == 1 || i == 2)
            ASSERT_TRUE(donor[i] == 4 || donor[i] == 6);
        else
            ASSERT_EQ(donor[i], -1);
    }
    cv__pbt_pairs(v, alive, 8, false, 0.3, 3, 0, again);
    ASSERT_TRUE(!memcmp(donor, again, sizeof(donor)));
    cv__pbt_pairs(v, alive, 8, true, 0.3, 3, 0, donor); /* minimize: 1 and 4 copy 2 or 5 */
    ASSERT_TRUE(donor[1] == 2 || donor[1] == 5);        /* failed is worst either way */
    ASSERT_TRUE(donor[4] == 2 || donor[4] == 5);
    ASSERT_EQ(donor[6], -1);
    bool two[2] = {1, 1};
    double v2[2] = {0.2, 0.7};
    cv__pbt_pairs(v2, two, 2, false, 0.25, 3, 0, donor);
    ASSERT_TRUE(donor[0] == 1 && donor[1] == -1);
}

/* 5 members, ready 2 of 5 epochs: generations at 2, 4, 5 epochs. */
static void test_queue_pbt(void)
{
    struct cv_error err;
    cv_queue *q = NULL;
    ASSERT_EQ(cv_queue_create(5, CV_STRATEGY_PBT, 3, 2, 5, false, 0, &q, &err), CV_OK);
    int rungs[8];
    ASSERT_EQ(cv_queue_rungs(q, rungs, 8), 3);
    ASSERT_TRUE(rungs[0] == 2 && rungs[1] == 4 && rungs[2] == 5);
    struct cv_job j[5];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 5; i++) {
            ASSERT_EQ(cv_queue_next(q, &j[i]), CV_QUEUE_RUN);
            ASSERT_EQ(j[i].rung, k);
            ASSERT_EQ(j[i].epochs, rungs[k]);
        }
        ASSERT_EQ(cv_queue_pbt_pending(q), -1);
        for (int i = 0; i < 4; i++) /* member 4 still trains: the others wait */
            cv_queue_report(q, &j[i], i == 2 ? CV_JOB_FAILED : CV_JOB_PAUSED, 0.1 * i);
        struct cv_job w; /* the last generation: nothing more to hand out */
        ASSERT_EQ(cv_queue_next(q, &w), k < 2 ? CV_QUEUE_WAIT : CV_QUEUE_DONE);
        ASSERT_EQ(cv_queue_pbt_pending(q), -1);
        cv_queue_report(q, &j[4], k == 2 ? CV_JOB_DONE : CV_JOB_PAUSED, 0.4);
        if (k == 2)
            break;
        ASSERT_EQ(cv_queue_pbt_pending(q), k); /* complete: the exploit step is due */
        ASSERT_EQ(cv_queue_next(q, &w), CV_QUEUE_WAIT);
        double v[5];
        bool alive[5];
        cv_queue_pbt_members(q, k, v, alive);
        ASSERT_TRUE(alive[0] && alive[2] && alive[4] && isnan(v[2]) && v[4] == 0.4);
        int donor[5] = {-1, -1, 4, -1, -1}; /* the failed member copies member 4 */
        cv_queue_pbt_advance(q, donor);
        ASSERT_EQ(cv_queue_pbt_pending(q), -1);
    }
    struct cv_job w;
    ASSERT_EQ(cv_queue_next(q, &w), CV_QUEUE_DONE);
    cv_queue_free(q);
    /* more than 64 generations is refused, naming sweep.ready */
    ASSERT_EQ(cv_queue_create(5, CV_STRATEGY_PBT, 3, 1, 65, false, 0, &q, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "sweep.ready");
}

/* A known objective over (lr, units, optimizer): its optimum is lr = 10^-2.5,
 * units = 100, adam (value 1). */
static double objective(const char *lines)
{
    char t[64];
    double lr = value_of(lines, "train.lr", t, sizeof(t));
    double u = value_of(lines, "model.layers.0.units", t, sizeof(t));
    value_of(lines, "train.optimizer", t, sizeof(t));
    double a = log10(lr) + 2.5, b = (u - 100) / 100;
    return 1 - a * a - b * b - (strcmp(t, "adam") ? 0.02 : 0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The best value after `trials` sequential trials; tpe after 8 random ones. */
static double search(const struct cv_sweep_dim *d, bool tpe, uint64_t seed, int trials)
{
    struct cv_result *rows = calloc((size_t)trials, sizeof(*rows));
    double best = -INFINITY;
    char lines[1024];
    for (int i = 0; rows && i < trials; i++) {
        size_t len = 0;
        if (tpe && i >= 8) {
            cv__tpe_propose(d, 3, rows, i, false, seed, i, 24, lines, sizeof(lines));
        } else {
            lines[0] = '\0';
            for (int j = 0; j < 3; j++) {
                len += (size_t)snprintf(lines + len, sizeof(lines) - len, "%s=", d[j].key);
                cv_sweep_sample_dim(&d[j], seed, i, lines + len, sizeof(lines) - len);
                len += strlen(lines + len);
                len += (size_t)snprintf(lines + len, sizeof(lines) - len, "\n");
            }
        }
        rows[i].trial = i;
        rows[i].status = CV_JOB_DONE;
        rows[i].value = objective(lines);
        cv__sweep_params_from_lines(lines, &rows[i]);
        best = fmax(best, rows[i].value);
    }
    free(rows);
    return best;
}

static void test_tpe(void)
{
    struct cv_sweep_dim d[3] = {named("train.lr", CV_DIST_LOG_UNIFORM, 1e-5, 1),
                                named("model.layers.0.units", CV_DIST_INT_UNIFORM, 1, 1000),
                                optimizers()};
    /* 9 seeds of 40 trials each: the median distance to the optimum */
    double gap_tpe[9], gap_rand[9];
    for (int s = 0; s < 9; s++) {
        gap_tpe[s] = 1 - search(d, true, 100 + (uint64_t)s, 40);
        gap_rand[s] = 1 - search(d, false, 100 + (uint64_t)s, 40);
    }
    qsort(gap_tpe, 9, sizeof(double), cmp_double);
    qsort(gap_rand, 9, sizeof(double), cmp_double);
    printf("40 trials, median distance to the optimum over 9 seeds: tpe %.4f, random %.4f\n",
           gap_tpe[4], gap_rand[4]);
    ASSERT_TRUE(gap_tpe[4] * 2.5 < gap_rand[4]);
    /* in range, and the same proposal for the same results */
    struct cv_result rows[12] = {0};
    char a[512], b[512], t[64];
    for (int i = 0; i < 12; i++) {
        rows[i].value = i * 0.1;
        snprintf(a, sizeof(a), "train.lr=%g\nmodel.layers.0.units=%d\ntrain.optimizer=sgd\n",
                 pow(10, -i * 0.4), 1 + 80 * i);
        cv__sweep_params_from_lines(a, &rows[i]);
    }
    for (int trial = 12; trial < 40; trial++) {
        cv__tpe_propose(d, 3, rows, 12, false, 9, trial, 24, a, sizeof(a));
        cv__tpe_propose(d, 3, rows, 12, false, 9, trial, 24, b, sizeof(b));
        ASSERT_TRUE(!strcmp(a, b));
        double lr = value_of(a, "train.lr", t, sizeof(t));
        double u = value_of(a, "model.layers.0.units", t, sizeof(t));
        ASSERT_TRUE(lr >= 1e-5 && lr <= 1 && u >= 1 && u <= 1000 && u == floor(u));
    }
}

int main(void)
{
    test_log_uniform();
    test_one_minus_log_uniform();
    test_uniform_and_int();
    test_grid();
    test_plan_errors();
    test_choice_of_layers();
    test_queue_random();
    test_queue_asha();
    test_queue_budget_and_replay();
    test_results_roundtrip();
    test_refine();
    test_direction();
    test_train_schedule();
    test_train_schedule_keep_shift();
    test_train_schedule_steps();
    test_pbt_perturb();
    test_pbt_pairs();
    test_queue_pbt();
    test_tpe();
    TEST_MAIN_END();
}
