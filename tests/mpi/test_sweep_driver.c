/*
 * test_sweep_driver.c - run with 2 and 3 ranks.  The sweep driver with a
 * stand-in runner (no training; jobs of uneven length), with one group and
 * with one group per rank:
 *  - every trial runs exactly once (random), every (trial, rung) at most
 *    once and every trial at rung 0 (asha), each recorded in results.jsonl;
 *  - every rank of a group gets the same job and the group is the right
 *    ranks; a failing job is recorded as failed and the sweep goes on;
 *  - --resume runs only what is missing from an interrupted run's results.
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
