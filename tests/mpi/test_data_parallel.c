/*
 * test_data_parallel.c - run with 2 and 3 ranks.  Checks that
 *  - the allreduced gradient of a global batch split over ranks equals the
 *    gradient of the whole batch computed on one rank (a second code path),
 *    with overlap on (tiny buckets, many in flight) and off;
 *  - replicas stay bit-identical through optimizer steps;
 *  - a sharded optimizer (each rank updates its slice, then allgather)
 *    follows the replicated one step for step, parameters and Adam moments,
 *    with L2 and with a global-norm clip, bucketed and blocking;
 *  - the reducer's sums are exact on integer-valued arenas, whole or per
 *    owned slice, in float or bfloat16, for arenas too small to give every
 *    rank a slice and for slices of unequal length spanning several
 *    messages; bfloat16 sums of other values are as rounding predicts;
 *  - an error on one rank becomes everyone's error, with its message.
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>

#include "bf16.h"
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
    cv_reducer_create(comm, cv_model_grads(part), n, 64, overlap, false, false, &red, NULL);
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
    cv_reducer_create(comm, cv_model_grads(m), cv_model_n_params(m), 256, true, false, false, &red,
                      NULL);
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

struct sum_arg {
    const cv_comm *comm;
};

static double sum_sq(void *arg, double partial)
{
    double v = partial;
    cv_comm_sum_doubles(((struct sum_arg *)arg)->comm, &v, 1, NULL);
    return v;
}

/* max |a - b| relative to max |b|: rounding differences only (3 ranks sum
 * in another order when each bucket is reduced to its owner). */
static float max_rel_diff(const float *a, const float *b, size_t n)
{
    float worst = 0, scale = 1e-30f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        worst = d > worst ? d : worst;
        scale = fabsf(b[i]) > scale ? fabsf(b[i]) : scale;
    }
    return worst / scale;
}

/* Each rank's owned slice: disjoint, in rank order, covering the arena. */
static void check_partition(const cv_comm *comm, const cv_reducer *red, size_t n)
{
    int world = cv_comm_size(comm);
    size_t lo, hi;
    cv_reducer_owned(red, &lo, &hi);
    double mine[2] = {(double)lo, (double)hi}, all[2 * 8] = {0};
    ASSERT_TRUE(world <= 8);
    ASSERT_TRUE(cv_reducer_sharded(red));
    all[2 * cv_comm_rank(comm)] = mine[0];
    all[2 * cv_comm_rank(comm) + 1] = mine[1];
    cv_comm_sum_doubles(comm, all, 2 * world, NULL);
    ASSERT_EQ((long long)all[0], 0);
    for (int r = 1; r < world; r++)
        ASSERT_EQ((long long)all[2 * r], (long long)all[2 * r - 1]);
    ASSERT_EQ((long long)all[2 * world - 1], (long long)n);
}

static void test_sharded_matches_replicated(const cv_comm *comm, bool overlap, double clip)
{
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);
    struct cv_config c;
    config(&c);
    c.train.optimizer = CV_OPT_ADAM;
    c.train.l2 = 0.3;
    c.train.clip_norm = clip;
    cv_model *ms = NULL, *mr = NULL;
    cv_optim *os = NULL, *orep = NULL;
    cv_reducer *rs = NULL, *rr = NULL;
    cv_model_create(&c, G, &ms, NULL);
    cv_model_create(&c, G, &mr, NULL);
    cv_model_init_params(ms, 4);
    cv_model_init_params(mr, 4);
    cv_optim_create(&c, ms, &os, NULL);
    cv_optim_create(&c, mr, &orep, NULL);
    size_t n = cv_model_n_params(ms), lo, hi;
    /* 64-byte buckets: many in flight, and some cut at an owner boundary */
    ASSERT_EQ(cv_reducer_create(comm, cv_model_grads(ms), n, 64, overlap, true, false, &rs, NULL),
              CV_OK);
    cv_reducer_create(comm, cv_model_grads(mr), n, 64, overlap, false, false, &rr, NULL);
    check_partition(comm, rs, n);
    cv_reducer_owned(rs, &lo, &hi);
    struct sum_arg arg = {comm};
    struct cv_batch mine = local_part(rank, world);
    double clipped_norm = 0;
    for (int step = 0; step < 15; step++) {
        cv_reducer_begin(rr);
        cv_model_train_batch(mr, &mine, (uint64_t)step, 1.0f / G, cv_reducer_ready, rr, NULL);
        cv_reducer_finish(rr, NULL, NULL);
        clipped_norm = cv_optim_step(orep, cv_model_params(mr), cv_model_grads(mr), 1e-2, G);

        cv_reducer_begin(rs);
        cv_model_train_batch(ms, &mine, (uint64_t)step, 1.0f / G, cv_reducer_ready, rs, NULL);
        ASSERT_EQ(cv_reducer_finish(rs, NULL, NULL), CV_OK);
        double norm = cv_optim_step_part(os, cv_model_params(ms), cv_reducer_owned_grads(rs), lo,
                                         hi, 1e-2, G, sum_sq, &arg);
        ASSERT_EQ(cv_reducer_share(rs, cv_model_params(ms), NULL), CV_OK);
        CV_TEST_REPORT(fabs(norm - clipped_norm) <= 1e-6 * clipped_norm,
                       "step %d: sharded norm %.9g, replicated %.9g", step, norm, clipped_norm);
    }
    if (clip > 0) /* the clip was active, so the global norm mattered */
        CV_TEST_REPORT(clipped_norm > clip, "norm %g never exceeded the clip %g", clipped_norm,
                       clip);
    float dw = max_rel_diff(cv_model_params(ms), cv_model_params(mr), n);
    CV_TEST_REPORT(dw <= 1e-5f, "overlap %d clip %g: sharded vs replicated parameters differ by %g",
                   overlap, clip, dw);
    bool same = false;
    cv_comm_same_bytes(comm, cv_model_params(ms), n * sizeof(float), &same, NULL, NULL);
    ASSERT_TRUE(same);
    /* moments live on their owners until shared (as before a checkpoint) */
    cv_reducer_share(rs, cv_optim_m1(os), NULL);
    cv_reducer_share(rs, cv_optim_m2(os), NULL);
    float d1 = max_rel_diff(cv_optim_m1(os), cv_optim_m1(orep), n);
    float d2 = max_rel_diff(cv_optim_m2(os), cv_optim_m2(orep), n);
    CV_TEST_REPORT(d1 <= 1e-5f && d2 <= 1e-5f, "moments differ: m1 %g, m2 %g", d1, d2);
    ASSERT_EQ(cv_optim_t(os), 15);
    cv_reducer_free(rs);
    cv_reducer_free(rr);
    cv_optim_free(os);
    cv_optim_free(orep);
    cv_model_free(ms);
    cv_model_free(mr);
}

/* Element i of rank r's arena: small integers, so every order of summation
 * gives the exact sum, which is computed here independently. */
static float contribution(int r, size_t i)
{
    return (float)((i * 7 + (size_t)r * 13) % 101) - 50.0f;
}

static void test_reduction_exact(const cv_comm *comm, size_t n, bool overlap, bool shard,
                                 bool bf16)
{
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);
    float *arena = cv_calloc_big(n, sizeof(float));
    cv_reducer *red = NULL;
    ASSERT_TRUE(arena != NULL);
    ASSERT_EQ(cv_reducer_create(comm, arena, n, 40000, overlap, shard, bf16, &red, NULL), CV_OK);
    if (!arena || !red)
        return;
    for (size_t i = 0; i < n; i++)
        arena[i] = contribution(rank, i);
    cv_reducer_begin(red);
    for (size_t off = n; off > 0; off = off > 30011 ? off - 30011 : 0)
        cv_reducer_ready(red, off); /* as backward reports layers */
    ASSERT_EQ(cv_reducer_finish(red, NULL, NULL), CV_OK);
    size_t lo, hi, wrong = 0;
    cv_reducer_owned(red, &lo, &hi);
    const float *sum = cv_reducer_owned_grads(red);
    for (size_t i = lo; i < hi; i++) {
        float want = 0;
        for (int r = 0; r < world; r++)
            want += contribution(r, i);
        wrong += sum[i - lo] != want;
    }
    CV_TEST_REPORT(wrong == 0, "n %zu overlap %d shard %d bf16 %d: %zu of [%zu, %zu) wrong", n,
                   overlap, shard, bf16, wrong, lo, hi);
    size_t owned = hi - lo; /* the slices cover the arena once */
    MPI_Allreduce(MPI_IN_PLACE, &owned, 1, MPI_UNSIGNED_LONG, MPI_SUM, MPI_COMM_WORLD);
    CV_TEST_REPORT(owned == (shard ? n : n * (size_t)world), "slices cover %zu of %zu", owned, n);
    cv_reducer_free(red);
    free(arena);
}

/* Compressed reduction of values that bfloat16 cannot hold.  Sharded: each
 * owner adds its peers' bfloat16-rounded copies in float, in the exchange's
 * order (rank me-1, me-2, ...), so the result is known exactly.  Replicated:
 * the owners' sums, rounded to bfloat16, on every rank: the same bytes
 * everywhere, each a bfloat16 value, within the rounding bound of the float
 * sum. */
static float fraction(int r, size_t i)
{
    return (float)((i * 7 + (size_t)r * 13) % 101) / 7.0f - 7.0f;
}

static void test_reduction_bf16(const cv_comm *comm, bool shard)
{
    int rank = cv_comm_rank(comm), world = cv_comm_size(comm);
    size_t n = 300007, lo, hi, wrong = 0, rounded = 0;
    float *arena = cv_calloc_big(n, sizeof(float));
    cv_reducer *red = NULL;
    ASSERT_TRUE(arena != NULL);
    ASSERT_EQ(cv_reducer_create(comm, arena, n, 1 << 20, false, shard, true, &red, NULL), CV_OK);
    if (!arena || !red)
        return;
    ASSERT_TRUE(cv_reducer_compressed(red));
    for (size_t i = 0; i < n; i++)
        arena[i] = fraction(rank, i);
    cv_reducer_begin(red);
    ASSERT_EQ(cv_reducer_finish(red, NULL, NULL), CV_OK);
    cv_reducer_owned(red, &lo, &hi);
    const float *sum = cv_reducer_owned_grads(red);
    for (size_t i = lo; i < hi; i++) {
        float exact = 0, abs_sum = 0, want = fraction(rank, i);
        for (int r = 0; r < world; r++)
            exact += fraction(r, i), abs_sum += fabsf(fraction(r, i));
        for (int s = 1; s < world; s++)
            want += cv_bf16_to_float(cv_bf16_from_float(fraction((rank - s + world) % world, i)));
        float got = sum[i - lo];
        bool ok = shard ? got == want
                        : fabsf(got - exact) <= (float)world * 0x1p-8f * abs_sum &&
                              cv_bf16_to_float(cv_bf16_from_float(got)) == got;
        wrong += !ok;
        rounded += sum[i - lo] != exact;
    }
    CV_TEST_REPORT(wrong == 0, "bf16 shard %d: %zu of [%zu, %zu) off", shard, wrong, lo, hi);
    CV_TEST_REPORT(rounded > (hi - lo) / 4, "bf16 shard %d: only %zu of %zu sums were rounded",
                   shard, rounded, hi - lo);
    bool same = false;
    cv_comm_same_bytes(comm, sum, (hi - lo) * sizeof(float), &same, NULL, NULL);
    if (!shard) /* replicated: every rank holds the same (rounded) sums */
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
    test_split_gradient(comm, true);
    test_split_gradient(comm, false);
    test_replicas_identical(comm);
    test_sharded_matches_replicated(comm, true, 0);
    test_sharded_matches_replicated(comm, false, 0);
    test_sharded_matches_replicated(comm, true, 0.05);
    /* 20 floats: fewer than 16 per rank; 1,000,003: 2-3 slices of unequal
     * length, each longer than one message of the pairwise reduce-scatter */
    size_t sizes[] = {20, 1000003};
    for (int i = 0; i < 2; i++)
        for (int mode = 0; mode < 8; mode++)
            test_reduction_exact(comm, sizes[i], mode & 1, mode & 2, mode & 4);
    test_reduction_bf16(comm, true);
    test_reduction_bf16(comm, false);
    test_error_agreement(comm);
    int failed = cv_test_failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    cv_comm_free(comm);
    MPI_Finalize();
    if (cv_test_failed == 0 && failed)
        cv_test_failed = failed; /* another rank failed: fail here too */
    TEST_MAIN_END();
}
