/*
 * test_data_parallel.c - run with 2 and 3 ranks.  Checks that
 *  - the allreduced gradient of a global batch split over ranks equals the
 *    gradient of the whole batch computed on one rank (a second code path),
 *    with overlap on (tiny buckets, many in flight) and off;
 *  - replicas stay bit-identical through optimizer steps;
 *  - an error on one rank becomes everyone's error, with its message.
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>

#include "caviar/comm.h"
#include "caviar/optim.h"
#include "caviar/shard.h"
#include "fixtures.h"
#include "test.h"
#include "util.h"

#define G 13 /* global batch: uneven over 2 and 3 ranks */
#define IN 9
#define K 4

static float X[G * IN];
static int32_t Y[G];
static long long ROWS[G];

static void make_data(void)
{
    struct cv_rng r;
    cv_rng_seed(&r, 5, 0, 0, 0);
    for (int i = 0; i < G * IN; i++)
        X[i] = (float)cv_rng_normal(&r);
    for (int i = 0; i < G; i++)
        Y[i] = (int32_t)(i % K), ROWS[i] = i;
}

static void config(struct cv_config *c)
{
    int units[3] = {16, 8, K};
    enum cv_activation acts[3] = {CV_ACT_RELU, CV_ACT_TANH, CV_ACT_SOFTMAX};
    fixture_mlp(c, IN, units, acts, 3, CV_LOSS_SOFTMAX_CE);
    fixture_insert_dropout(c, 1, 0.7f); /* masks keyed by global row: shard-independent */
}

/* This rank's contiguous part of the global batch. */
static struct cv_batch local_part(int rank, int world)
{
    long long first = 0;
    for (int r = 0; r < rank; r++)
        first += cv_sched_rows(G, r, world);
    struct cv_batch b = {(int)cv_sched_rows(G, rank, world), X + first * IN, Y + first, NULL,
                         ROWS + first};
    return b;
}

static void test_split_gradient(const cv_comm *comm, bool overlap)
{
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);
    struct cv_config c;
    config(&c);
    cv_model *whole = NULL, *part = NULL;
    cv_model_create(&c, G, &whole, NULL);
    cv_model_create(&c, G, &part, NULL);
    cv_model_init_params(whole, 9);
    cv_model_init_params(part, 9);
    struct cv_batch all = {G, X, Y, NULL, ROWS}, mine = local_part(rank, world);
    cv_model_train_batch(whole, &all, 3, 1.0f / G, NULL, NULL, NULL);
    cv_reducer *red = NULL;
    size_t n = cv_model_n_params(part);
    cv_reducer_create(comm, cv_model_grads(part), n, 64, overlap, &red, NULL);
    cv_reducer_begin(red);
    cv_model_train_batch(part, &mine, 3, 1.0f / G, cv_reducer_ready, red, NULL);
    ASSERT_EQ(cv_reducer_finish(red, NULL, NULL), CV_OK);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(cv_model_grads(part)[i] - cv_model_grads(whole)[i]));
        scale = fmax(scale, fabs(cv_model_grads(whole)[i]));
    }
    CV_TEST_REPORT(worst <= 1e-5 * scale, "overlap %d: split vs whole gradient differ by %g (max %g)",
                   overlap, worst, scale);
    cv_reducer_free(red);
    cv_model_free(whole);
    cv_model_free(part);
}

static void test_replicas_identical(const cv_comm *comm)
{
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);
    struct cv_config c;
    config(&c);
    cv_model *m = NULL;
    cv_optim *o = NULL;
    cv_reducer *red = NULL;
    cv_model_create(&c, G, &m, NULL);
    cv_model_init_params(m, 1);
    cv_optim_create(&c, m, &o, NULL);
    cv_reducer_create(comm, cv_model_grads(m), cv_model_n_params(m), 256, true, &red, NULL);
    struct cv_batch mine = local_part(rank, world);
    for (int step = 0; step < 20; step++) {
        cv_reducer_begin(red);
        cv_model_train_batch(m, &mine, (uint64_t)step, 1.0f / G, cv_reducer_ready, red, NULL);
        cv_reducer_finish(red, NULL, NULL);
        cv_optim_step(o, cv_model_params(m), cv_model_grads(m), 1e-2, G);
    }
    bool same = false;
    cv_comm_same_bytes(comm, cv_model_params(m), cv_model_n_params(m) * sizeof(float), &same, NULL,
                       NULL);
    ASSERT_TRUE(same);
    cv_reducer_free(red);
    cv_optim_free(o);
    cv_model_free(m);
}

static void test_error_agreement(const cv_comm *comm)
{
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);
    struct cv_error err;
    cv_error_clear(&err);
    cv_status local = CV_OK;
    if (rank == world - 1)
        local = cv_fail(&err, CV_IO, "data.h5: boom on the last rank");
    cv_status st = cv_comm_agree(comm, local, &err);
    ASSERT_EQ(st, CV_IO);
    ASSERT_STR_CONTAINS(err.msg, "boom on the last rank");
    cv_error_clear(&err);
    ASSERT_EQ(cv_comm_agree(comm, CV_OK, &err), CV_OK);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    make_data();
    cv_comm *comm = NULL;
    cv_comm_create_world(&comm, NULL);
    test_split_gradient(comm, true);
    test_split_gradient(comm, false);
    test_replicas_identical(comm);
    test_error_agreement(comm);
    int failed = cv_test_failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    cv_comm_free(comm);
    MPI_Finalize();
    if (cv_test_failed == 0 && failed)
        cv_test_failed = failed; /* another rank failed: fail here too */
    TEST_MAIN_END();
}
