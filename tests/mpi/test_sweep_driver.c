/*
 * test_sweep_driver.c - run with 2 and 3 ranks.  The sweep driver with a
 * stand-in runner (no training; jobs of uneven length), with one group and
 * with one group per rank:
 *  - every trial runs exactly once (random), every (trial, rung) at most
 *    once and every trial at rung 0 (asha), each recorded in results.jsonl;
 *  - every rank of a group gets the same job and the group is the right
 *    ranks; a failing job is recorded as failed and the sweep goes on;
 *  - --resume runs only what is missing from an interrupted run's results;
 *    a larger sweep.trials on --resume runs exactly the new trials, any
 *    other change is refused naming the key and both values;
 *  - tpe on a synthetic objective with a known optimum (the stand-in
 *    runner computes it from the trial's values) gets much closer to it
 *    than random search with as many trials (median of 5 seeds), with jobs
 *    finishing out of order on several groups; with one group (a fixed
 *    order of completions) the same seed proposes the same trials.
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "caviar/sweep.h"
#include "test.h"

#define TRIALS 11

static int runs_here[TRIALS][4]; /* jobs this rank took part in */

static cv_status fake_run(void *arg, const cv_comm *group, const struct cv_sweep_plan *plan,
                          const struct cv_job *job, void (*poll)(void *), void *poll_arg,
                          struct cv_job_outcome *out, struct cv_error *err)
{
    (void)arg;
    (void)plan;
    runs_here[job->trial][job->rung]++;
    bool same = false;
    uint64_t h;
    cv_status st = cv_comm_same_bytes(group, job, sizeof(*job), &same, &h, err);
    ASSERT_TRUE(same);
    for (int i = 0; i < 1 + job->trial % 3; i++) { /* uneven: 2, 4 or 6 ms of "steps" */
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        if (poll)
            poll(poll_arg);
    }
    memset(out, 0, sizeof(*out));
    out->dev_accuracy = 0.5 + 0.01 * ((job->trial * 5) % TRIALS) + 0.001 * job->rung;
    out->epochs_done = job->epochs ? job->epochs : 4;
    out->status = job->epochs && job->epochs < 4 ? CV_JOB_PAUSED : CV_JOB_DONE;
    if (job->trial == 7) {
        out->status = CV_JOB_FAILED;
        snprintf(out->message, sizeof(out->message), "the loss is NaN");
    }
    return st;
}

static struct cv_config *make_config(const char *dir, const char *strategy)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "data: {train: t.h5, dev: t.h5}\n"
             "model: {input: [4], layers: [{type: dense, units: 3, activation: softmax}]}\n"
             "train: {epochs: 4}\nrun: {dir: %s}\n"
             "sweep: {trials: %d, strategy: %s, eta: 2, min_epochs: 1,\n"
             "        space: {train.lr: 'log_uniform(1e-4, 1)'}}\n",
             dir, TRIALS, strategy);
    struct cv_config *c = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    cv_config_parse(text, "driver.yaml", NULL, 0, &c, &err);
    return c;
}

/* Count results lines per (trial, rung) on rank 0. */
static int read_counts(const char *results, int counts[TRIALS][4], int *failed)
{
    struct cv_result *rows = NULL;
    int n = 0;
    struct cv_error err;
    cv_error_clear(&err);
    memset(counts, 0, sizeof(int) * TRIALS * 4);
    *failed = 0;
    if (cv_results_read(results, &rows, &n, &err) != CV_OK)
        return -1;
    for (int i = 0; i < n; i++) {
        if (rows[i].trial < TRIALS && rows[i].rung < 4)
            counts[rows[i].trial][rows[i].rung]++;
        *failed += rows[i].status == CV_JOB_FAILED;
    }
    free(rows);
    return n;
}

static void run_case(const cv_comm *world, const char *base, const char *strategy, int k)
{
    int rank = cv_comm_rank(world), size = cv_comm_size(world);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s-k%d", base, strategy, k);
    struct cv_config *cfg = make_config(dir, strategy);
    ASSERT_TRUE(cfg != NULL);
    struct cv_sweep_plan *plan = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_sweep_plan_sample(cfg, &plan, &err), CV_OK);
    memset(runs_here, 0, sizeof(runs_here));
    struct cv_sweep_opts o = {.ranks_per_trial = k,
                              .metric = "dev.accuracy",
                              .eta = 2,
                              .min_epochs = 1,
                              .max_epochs = 4,
                              .quiet = true};
    struct cv_sweep_summary sum;
    ASSERT_EQ(cv_sweep_run(plan, world, &o, fake_run, NULL, &sum, &err), CV_OK);
    /* jobs per (trial, rung) summed over the world = k per job */
    int total[TRIALS][4];
    MPI_Allreduce(runs_here, total, TRIALS * 4, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    int counts[TRIALS][4], failed = 0;
    char results[600];
    snprintf(results, sizeof(results), "%s/sweep/results.jsonl", dir);
    if (rank == 0) {
        int n = read_counts(results, counts, &failed);
        ASSERT_EQ(n, sum.jobs);
        ASSERT_EQ(failed, 1);
        for (int t = 0; t < TRIALS; t++) {
            ASSERT_EQ(counts[t][0], 1);
            for (int r = 0; r < 4; r++) {
                ASSERT_EQ(total[t][r], counts[t][r] * k);
                ASSERT_TRUE(counts[t][r] <= 1);
            }
            if (cfg->sweep.strategy == CV_STRATEGY_RANDOM)
                ASSERT_EQ(counts[t][1] + counts[t][2], 0);
        }
        if (cfg->sweep.strategy == CV_STRATEGY_ASHA) /* some promoted, not all */
            ASSERT_TRUE(sum.jobs > TRIALS && sum.jobs < 3 * TRIALS);
        printf("%s with %d group(s): %d jobs, %lld epochs\n", strategy, size / k, sum.jobs,
               sum.epochs);
    }
    /* a second run in the same directory needs --resume ... */
    cv_error_clear(&err);
    ASSERT_EQ(cv_sweep_run(plan, world, &o, fake_run, NULL, &sum, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "--resume");
    /* ... and with it, after losing the last 4 lines, runs only those again */
    if (rank == 0) {
        struct cv_result *rows = NULL;
        int n = 0;
        cv_results_read(results, &rows, &n, &err);
        unlink(results);
        for (int i = 0; i < n - 4; i++)
            cv_result_append(results, &rows[i], "dev.accuracy", &err);
        free(rows);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    o.resume = true;
    cv_error_clear(&err);
    ASSERT_EQ(cv_sweep_run(plan, world, &o, fake_run, NULL, &sum, &err), CV_OK);
    if (rank == 0 && cfg->sweep.strategy == CV_STRATEGY_RANDOM) {
        ASSERT_EQ(sum.jobs, 4);
        read_counts(results, counts, &failed);
        for (int t = 0; t < TRIALS; t++)
            ASSERT_EQ(counts[t][0], 1);
    }
    cv_sweep_plan_free(plan);
    cv_config_free(cfg);
}

static void test_errors(const cv_comm *world, const char *base)
{
    int size = cv_comm_size(world);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/errors", base);
    struct cv_config *cfg = make_config(dir, "random");
    struct cv_sweep_plan *plan = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    cv_sweep_plan_sample(cfg, &plan, &err);
    struct cv_sweep_opts o = {.ranks_per_trial = size + 1, .metric = "dev.accuracy"};
    struct cv_sweep_summary sum;
    ASSERT_EQ(cv_sweep_run(plan, world, &o, fake_run, NULL, &sum, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "does not divide");
    plan->n_trials = size - 1; /* more groups than trials */
    o.ranks_per_trial = 1;
    cv_error_clear(&err);
    ASSERT_EQ(cv_sweep_run(plan, world, &o, fake_run, NULL, &sum, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "groups");
    plan->n_trials = TRIALS;
    o.metric = "dev.f2";
    cv_error_clear(&err);
    ASSERT_EQ(cv_sweep_run(plan, world, &o, fake_run, NULL, &sum, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "dev.f2");
    cv_sweep_plan_free(plan);
    cv_config_free(cfg);
}

/* ---- extension and refusal ---- */

static struct cv_config *config_text(const char *dir, const char *sweep, const char *train)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "data: {train: t.h5, dev: t.h5}\n"
             "model: {input: [4], layers: [{type: dense, units: 3, activation: softmax}]}\n"
             "train: {%s}\nrun: {dir: %s}\nsweep: {%s}\n",
             train, dir, sweep);
    struct cv_config *c = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_config_parse(text, "driver.yaml", NULL, 0, &c, &err), CV_OK);
    return c;
}

static int sweep_once(const cv_comm *world, struct cv_config *cfg, bool resume, cv_job_runner run,
                      cv_status want, struct cv_error *err)
{
    struct cv_sweep_plan *plan = NULL;
    cv_error_clear(err);
    ASSERT_EQ(cv_sweep_plan_sample(cfg, &plan, err), CV_OK);
    struct cv_sweep_opts o = {.ranks_per_trial = 1,
                              .metric = "dev.accuracy",
                              .minimize = cfg->sweep.minimize,
                              .eta = 2,
                              .min_epochs = 1,
                              .max_epochs = 4,
                              .resume = resume,
                              .quiet = true};
    struct cv_sweep_summary sum = {0};
    cv_error_clear(err);
    cv_status st = plan ? cv_sweep_run(plan, world, &o, run, NULL, &sum, err) : CV_CONFIG;
    ASSERT_EQ(st, want);
    cv_sweep_plan_free(plan);
    cv_config_free(cfg);
    return sum.jobs;
}

static cv_status ok_run(void *arg, const cv_comm *group, const struct cv_sweep_plan *plan,
                        const struct cv_job *job, void (*poll)(void *), void *poll_arg,
                        struct cv_job_outcome *out, struct cv_error *err)
{
    (void)arg, (void)group, (void)plan, (void)err;
    if (poll)
        poll(poll_arg);
    memset(out, 0, sizeof(*out));
    out->dev_accuracy = 0.5 + 0.01 * job->trial;
    out->epochs_done = 4;
    out->status = CV_JOB_DONE;
    return CV_OK;
}

static void test_extend(const cv_comm *world, const char *base)
{
    char dir[512];
    struct cv_error err;
    snprintf(dir, sizeof(dir), "%s/extend", base);
    const char *sp = "space: {train.lr: 'log_uniform(1e-4, 1)'}";
    char sweep8[256], sweep12[256];
    snprintf(sweep8, sizeof(sweep8), "trials: 8, %s", sp);
    snprintf(sweep12, sizeof(sweep12), "trials: 12, %s", sp);
    bool lead = cv_comm_rank(world) == 0; /* jobs and messages are counted there */
    int jobs = sweep_once(world, config_text(dir, sweep8, "epochs: 4"), false, ok_run, CV_OK, &err);
    ASSERT_TRUE(!lead || jobs == 8);
    /* 8 -> 12 on --resume: exactly the 4 new trials */
    jobs = sweep_once(world, config_text(dir, sweep12, "epochs: 4"), true, ok_run, CV_OK, &err);
    if (lead) {
        ASSERT_EQ(jobs, 4);
        int counts[TRIALS][4], failed;
        char results[600];
        snprintf(results, sizeof(results), "%s/sweep/results.jsonl", dir);
        ASSERT_EQ(read_counts(results, counts, &failed), 12);
        for (int t = 0; t < TRIALS; t++)
            ASSERT_EQ(counts[t][0], 1);
    }
    /* the same again: nothing left to run */
    jobs = sweep_once(world, config_text(dir, sweep12, "epochs: 4"), true, ok_run, CV_OK, &err);
    ASSERT_TRUE(!lead || jobs == 0);
    /* another change is refused, naming each key with both values */
    sweep_once(world, config_text(dir, sweep12, "epochs: 5, lr: 0.5"), true, ok_run, CV_CONFIG,
               &err);
    if (lead) {
        ASSERT_STR_CONTAINS(err.msg, "train.epochs: 4 -> 5");
        ASSERT_STR_CONTAINS(err.msg, "train.lr: (not set) -> 0.5");
        ASSERT_STR_CONTAINS(err.msg, "2 key(s) differ");
    }
    /* fewer trials is not an extension */
    sweep_once(world, config_text(dir, sweep8, "epochs: 4"), true, ok_run, CV_CONFIG, &err);
    if (lead)
        ASSERT_STR_CONTAINS(err.msg, "sweep.trials: 12 -> 8");
}

/* ---- tpe on a known objective ---- */

/* The value of key in the job's own values, or the plan's. */
static double param(const struct cv_sweep_plan *plan, const struct cv_job *job, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "%s=", key);
    const char *at = job->params[0] ? strstr(job->params, pat) : NULL;
    for (int j = 0; !at && j < plan->n_params[job->trial]; j++)
        if (!strncmp(plan->over[job->trial][j], pat, strlen(pat)))
            at = plan->over[job->trial][j];
    ASSERT_TRUE(at != NULL);
    return at ? strtod(at + strlen(pat), NULL) : NAN;
}

/* Optimum 1 at lr = 10^-2.5, l2 = 10^-3, beta1 = 1 - 10^-1.5. */
static cv_status objective_run(void *arg, const cv_comm *group, const struct cv_sweep_plan *plan,
                               const struct cv_job *job, void (*poll)(void *), void *poll_arg,
                               struct cv_job_outcome *out, struct cv_error *err)
{
    (void)arg, (void)group, (void)err;
    for (int i = 0; i < 1 + job->trial % 3; i++) { /* uneven: completions out of order */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        if (poll)
            poll(poll_arg);
    }
    double a = log10(param(plan, job, "train.lr")) + 2.5,
           b = log10(param(plan, job, "train.l2")) + 3,
           c = log10(1 - param(plan, job, "train.beta1")) + 1.5;
    memset(out, 0, sizeof(*out));
    out->dev_accuracy = 1 - a * a - b * b - c * c;
    out->epochs_done = 4;
    out->status = CV_JOB_DONE;
    return CV_OK;
}

/* The distance to the optimum of the best of 60 trials (rank 0). */
static double search_gap(const cv_comm *world, const char *base, const char *strategy, int seed,
                         int k, const char *tag)
{
    char dir[512], sweep[512], results[600];
    snprintf(dir, sizeof(dir), "%s/%s-%s-%d", base, strategy, tag, seed);
    snprintf(sweep, sizeof(sweep),
             "trials: 60, strategy: %s, seed: %d, tpe_startup: 8, ranks_per_trial: %d, space: "
             "{train.lr: 'log_uniform(1e-5, 1)', train.l2: 'log_uniform(1e-6, 1)', train.beta1: "
             "'one_minus_log_uniform(0.5, 0.9999)'}",
             strategy, seed, k);
    struct cv_config *cfg = config_text(dir, sweep, "epochs: 4");
    struct cv_sweep_plan *plan = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_sweep_plan_sample(cfg, &plan, &err), CV_OK);
    struct cv_sweep_opts o = {.ranks_per_trial = k, .metric = "dev.accuracy", .quiet = true};
    struct cv_sweep_summary sum;
    if (plan)
        ASSERT_EQ(cv_sweep_run(plan, world, &o, objective_run, NULL, &sum, &err), CV_OK);
    double gap = NAN;
    snprintf(results, sizeof(results), "%s/sweep/results.jsonl", dir);
    struct cv_result *rows = NULL;
    int n = 0;
    if (cv_comm_rank(world) == 0 && cv_results_read(results, &rows, &n, &err) == CV_OK) {
        ASSERT_EQ(n, 60);
        n = cv_results_best_per_trial(rows, n, false);
        gap = n > 0 ? 1 - rows[0].value : NAN;
    }
    free(rows);
    cv_sweep_plan_free(plan);
    cv_config_free(cfg);
    return gap;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_tpe_objective(const cv_comm *world, const char *base)
{
    double tpe[5], rnd[5];
    for (int s = 0; s < 5; s++) {
        tpe[s] = search_gap(world, base, "tpe", 11 + s, 1, "groups");
        rnd[s] = search_gap(world, base, "random", 11 + s, 1, "groups");
    }
    if (cv_comm_rank(world) == 0) {
        qsort(tpe, 5, sizeof(double), cmp_double);
        qsort(rnd, 5, sizeof(double), cmp_double);
        printf("60 trials on %d groups, median distance to the optimum over 5 seeds: tpe %.4f, "
               "random %.4f\n",
               cv_comm_size(world), tpe[2], rnd[2]);
        ASSERT_TRUE(tpe[2] * 4 < rnd[2]);
    }
    /* one group: completions in a fixed order, so the same proposals */
    int size = cv_comm_size(world);
    double a = search_gap(world, base, "tpe", 3, size, "one-a");
    double b = search_gap(world, base, "tpe", 3, size, "one-b");
    if (cv_comm_rank(world) == 0)
        ASSERT_TRUE(a == b);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    cv_comm *world = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    cv_comm_create_world(&world, &err);
    char base[64] = "/tmp/cv-test-driver-XXXXXX";
    if (cv_comm_rank(world) == 0 && !mkdtemp(base))
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Bcast(base, sizeof(base), MPI_CHAR, 0, MPI_COMM_WORLD);
    int size = cv_comm_size(world);
    run_case(world, base, "random", 1);    /* one group per rank */
    run_case(world, base, "random", size); /* one group */
    run_case(world, base, "asha", 1);
    test_errors(world, base);
    test_extend(world, base);
    test_tpe_objective(world, base);
    MPI_Barrier(MPI_COMM_WORLD);
    if (cv_comm_rank(world) == 0) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", base);
    }
    cv_comm_free(world);
    int failed = cv_test_failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    cv_test_failed = failed;
    TEST_MAIN_END();
}
