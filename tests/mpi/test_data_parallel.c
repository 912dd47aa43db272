/*
 * test_data_parallel.c - run with 2 and 3 ranks.  Checks that
 *  - the allreduced gradient of a global batch split over ranks equals the
 *    gradient of the whole batch computed on one rank (a second code path),
 *  - replicas stay bit-identical through optimizer steps;
 *  - a sharded optimizer (each rank updates its slice, then allgather)
 *    follows the replicated one step for step, parameters and Adam moments,
 *    with L2 and with a global-norm clip;
 *  - each strategy's sums are exact on integer-valued arenas, whole or per
 *    owned slice, in float or bfloat16, for arenas too small to give every
 *    rank a slice and for slices of unequal length spanning several
 *    messages; bfloat16 sums of other values are as rounding predicts;
 *  - an error on one rank becomes everyone's error, with its message.
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>

#include "caviar/comm.h"
#include "caviar/optim.h"
#include "caviar/shard.h"
#include "bf16.h"
#include "split_batch.h"
#include "test.h"
#include "util.h"

static void test_split_gradient(const cv_comm *comm)
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
    cv_model_train_batch(whole, &all, 3, 1.0f / G, NULL);
    size_t n = cv_model_n_params(part);
    cv_reducer *red = make_reducer(comm, part, cv_model_grads(part), n, ALLREDUCE, NULL, NULL);
    cv_model_train_batch(part, &mine, 3, 1.0f / G, NULL);
    ASSERT_EQ(cv_reducer_finish(red, NULL, NULL), CV_OK);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(cv_model_grads(part)[i] - cv_model_grads(whole)[i]));
        scale = fmax(scale, fabs(cv_model_grads(whole)[i]));
    }
    CV_TEST_REPORT(worst <= 1e-5 * scale, "split vs whole gradient differ by %g (max %g)", worst,
                   scale);
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
    cv_model_create(&c, G, &m, NULL);
    cv_model_init_params(m, 1);
    cv_optim_create(&c, m, &o, NULL);
    cv_reducer *red = make_reducer(comm, m, cv_model_grads(m), cv_model_n_params(m), ALLREDUCE,
                                   NULL, NULL);
    struct cv_batch mine = local_part(rank, world);
    for (int step = 0; step < 20; step++) {
        cv_model_train_batch(m, &mine, (uint64_t)step, 1.0f / G, NULL);
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

static void test_reduction_exact(const cv_comm *comm, size_t n, int kind)
{
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);
    bool shard = kind == SHARDED;
    float *arena = cv_calloc_big(n, sizeof(float));
    ASSERT_TRUE(arena != NULL);
    cv_reducer *red = make_reducer(comm, NULL, arena, n, kind, NULL, NULL);
    if (!arena || !red)
        return;
    for (size_t i = 0; i < n; i++)
        arena[i] = contribution(rank, i);
    ASSERT_EQ(cv_reducer_finish(red, NULL, NULL), CV_OK);
    size_t lo, hi;
    cv_reducer_owned(red, &lo, &hi);
    size_t wrong = wrong_sums(cv_reducer_owned_grads(red), lo, hi, world, 1.0f);
    CV_TEST_REPORT(wrong == 0, "n %zu kind %d: %zu of [%zu, %zu) wrong", n, kind, wrong, lo, hi);
    size_t owned = hi - lo; /* the slices cover the arena once */
    MPI_Allreduce(MPI_IN_PLACE, &owned, 1, MPI_UNSIGNED_LONG, MPI_SUM, MPI_COMM_WORLD);
    CV_TEST_REPORT(owned == (shard ? n : n * (size_t)world), "slices cover %zu of %zu", owned, n);
    cv_reducer_free(red);
    free(arena);
}

/* Compressed reduction of values that bfloat16 cannot hold: the owner q of
 * element i adds its peers' bfloat16-rounded copies to its own value in
 * float, in the exchange's order (rank q-1, q-2, ...), and every rank gets
 * that sum rounded to bfloat16, so the result is known exactly; it is also
 * within bfloat16's rounding bound of the exact sum, and the same bytes on
 * every rank. */
static float fraction(int r, size_t i)
{
    return (float)((i * 7 + (size_t)r * 13) % 101) / 7.0f - 7.0f;
}

static void test_reduction_bf16(const cv_comm *comm)
{
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);
    size_t n = 300007, lo, hi, wrong = 0, rounded = 0;
    float *arena = cv_calloc_big(n, sizeof(float));
    ASSERT_TRUE(arena != NULL);
    cv_reducer *red = make_reducer(comm, NULL, arena, n, COMPRESSED, NULL, NULL);
    if (!arena || !red)
        return;
    for (size_t i = 0; i < n; i++)
        arena[i] = fraction(rank, i);
    ASSERT_EQ(cv_reducer_finish(red, NULL, NULL), CV_OK);
    cv_reducer_owned(red, &lo, &hi);
    ASSERT_TRUE(lo == 0 && hi == n); /* replicated: every rank holds every sum */
    const float *sum = cv_reducer_owned_grads(red);
    for (size_t i = 0, q = 0; i < n; i++) {
        while (i >= cv__slice_start(n, (int)q + 1, world))
            q++; /* the owner of element i */
        float exact = 0, abs_sum = 0, want = fraction((int)q, i);
        for (int r = 0; r < world; r++)
            exact += fraction(r, i), abs_sum += fabsf(fraction(r, i));
        for (int s = 1; s < world; s++)
            want += cv_bf16_to_float(cv_bf16_from_float(fraction(((int)q - s + world) % world, i)));
        want = cv_bf16_to_float(cv_bf16_from_float(want));
        bool ok = sum[i] == want && fabsf(sum[i] - exact) <= (float)world * 0x1p-8f * abs_sum;
        wrong += !ok;
        rounded += sum[i] != exact;
    }
    CV_TEST_REPORT(wrong == 0, "bf16: %zu of %zu sums off", wrong, n);
    CV_TEST_REPORT(rounded > n / 4, "bf16: only %zu of %zu sums were rounded", rounded, n);
    bool same = false;
    cv_comm_same_bytes(comm, sum, n * sizeof(float), &same, NULL, NULL);
    ASSERT_TRUE(same);
    cv_reducer_free(red);
    free(arena);
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
    test_split_gradient(comm);
    test_replicas_identical(comm);
    sharded_matches_replicated(comm, SHARDED, NULL, NULL, 0, -1);
    sharded_matches_replicated(comm, SHARDED, NULL, NULL, 0.05, -1);
    /* trainable: false at either end of the arena: only the span between
     * is exchanged, by every strategy */
    for (int kind = ALLREDUCE; kind <= SHARDED; kind++) {
        sharded_matches_replicated(comm, kind, NULL, NULL, 0.05, 0);
        sharded_matches_replicated(comm, kind, NULL, NULL, 0, 3);
    }
    /* 20 floats: fewer than 16 per rank; 1,000,003: 2-3 slices of unequal
     * length, each longer than one message of the pairwise reduce-scatter */
    size_t sizes[] = {20, 1000003};
    for (int i = 0; i < 2; i++)
        for (int kind = ALLREDUCE; kind <= COMPRESSED; kind++)
            test_reduction_exact(comm, sizes[i], kind);
    test_reduction_bf16(comm);
    test_error_agreement(comm);
    int failed = cv_test_failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    cv_comm_free(comm);
    MPI_Finalize();
    if (cv_test_failed == 0 && failed)
        cv_test_failed = failed; /* another rank failed: fail here too */
    TEST_MAIN_END();
}
