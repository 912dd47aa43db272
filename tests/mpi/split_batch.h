/*
 * split_batch.h - what the MPI tests share: one global batch of G samples
 * split over the ranks in the trainer's schedule, the small network it
 * trains, and helpers for comparing a parallel code path with a second one.
 * Static, for test executables only.
 */
#ifndef CV_TEST_SPLIT_BATCH_H
#define CV_TEST_SPLIT_BATCH_H

#include <math.h>

#include "caviar/comm.h"
#include "caviar/optim.h"
#include "caviar/shard.h"
#include "fixtures.h"
#include "reducer.h"
#include "test.h"
#include "transfer.h"
#include "util.h"

#define G  13 /* global batch: uneven over 2, 3 and 4 ranks */
#define IN 9
#define K  4

static float X[G * IN];
static int32_t Y[G];
static long long ROWS[G];

static inline void make_data(void)
{
    struct cv_rng r;
    cv_rng_seed(&r, 5, 0, 0, 0);
    for (int i = 0; i < G * IN; i++)
        X[i] = (float)cv_rng_normal(&r);
    for (int i = 0; i < G; i++)
        Y[i] = (int32_t)(i % K), ROWS[i] = i;
}

static inline void mlp_config(struct cv_config *c, bool dropout)
{
    int units[3] = {16, 8, K};
    enum cv_activation acts[3] = {CV_ACT_RELU, CV_ACT_TANH, CV_ACT_SOFTMAX};
    fixture_mlp(c, IN, units, acts, 3, CV_LOSS_SOFTMAX_CE);
    if (dropout)
        fixture_insert_dropout(c, 1, 0.7f); /* masks keyed by global row: shard-independent */
}

static inline void config(struct cv_config *c)
{
    mlp_config(c, true);
}

/* This rank's contiguous part of the global batch. */
static inline struct cv_batch local_part(int rank, int world)
{
    long long first = 0;
    for (int r = 0; r < rank; r++)
        first += cv_sched_rows(G, r, world);
    struct cv_batch b = {(int)cv_sched_rows(G, rank, world), X + first * IN, Y + first, NULL,
                         ROWS + first};
    return b;
}

/* The global-norm hook of a sharded optimizer step (arg: the reducer). */
static inline double sum_over_slices(void *reducer, double partial)
{
    double v = partial;
    cv_reducer_sum_over_slices(reducer, &v, NULL);
    return v;
}

/* Element i of rank r's arena: small integers, so every order of summation
 * gives the exact sum, which a test computes independently. */
static inline float contribution(int r, size_t i)
{
    return (float)((i * 7 + (size_t)r * 13) % 101) - 50.0f;
}

/* Elements of the owned slice [lo, hi) (sum[0] is element lo) that differ
 * from the exact sum over `world` ranks of scale * contribution(r, i). */
static inline size_t wrong_sums(const float *sum, size_t lo, size_t hi, int world, float scale)
{
    size_t wrong = 0;
    for (size_t i = lo; i < hi; i++) {
        float want = 0;
        for (int r = 0; r < world; r++)
            want += contribution(r, i) * scale;
        wrong += sum[i - lo] != want;
    }
    return wrong;
}

/* The strategies, made directly (cv_reducer_create picks one by policy). */
enum strategy { ALLREDUCE, SHARDED, COMPRESSED, NODE };

/* A reducer of `kind` over n floats of `arena` (m: the model, may be NULL
 * unless adopted; with m, only its trainable span is exchanged, as the
 * trainer does); NODE takes `node` and `cross` (the hosts' layout), which
 * it frees. */
static inline cv_reducer *make_reducer(const cv_comm *comm, cv_model *m, float *arena, size_t n,
                                       int kind, cv_comm *node, cv_comm *cross)
{
    cv_reducer *r = cv_calloc(1, sizeof(*r));
    ASSERT_TRUE(r != NULL);
    size_t lo = 0, hi = n;
    if (m)
        cv_model_trainable_span(m, &lo, &hi);
    *r = (cv_reducer){.comm = comm,
                      .model = m,
                      .grads = arena,
                      .n = n,
                      .first = lo,
                      .count = hi - lo,
                      .lo = lo,
                      .hi = hi};
    cv_status st = kind == ALLREDUCE    ? cv__reducer_allreduce(r, NULL)
                   : kind == SHARDED    ? cv__reducer_sharded(r, false, NULL)
                   : kind == COMPRESSED ? cv__reducer_sharded(r, true, NULL)
                                        : cv__reducer_node(r, node, cross, NULL);
    ASSERT_EQ(st, CV_OK);
    return r;
}

/* Each rank's owned slice: disjoint, in rank order, covering the arena
 * (over `comm`: the ranks that partition it). */
static inline void check_partition(const cv_comm *comm, const cv_reducer *red, size_t n)
{
    int world = cv_comm_size(comm);
    size_t lo, hi;
    cv_reducer_owned(red, &lo, &hi);
    double all[2 * 8] = {0};
    ASSERT_TRUE(world <= 8);
    all[2 * cv_comm_rank(comm)] = (double)lo;
    all[2 * cv_comm_rank(comm) + 1] = (double)hi;
    cv_comm_sum_doubles(comm, all, 2 * world, NULL);
    ASSERT_EQ((long long)all[0], 0);
    for (int r = 1; r < world; r++)
        ASSERT_EQ((long long)all[2 * r], (long long)all[2 * r - 1]);
    ASSERT_EQ((long long)all[2 * world - 1], (long long)n);
}

/* Frozen layers' learning-rate factor 0 for the optimizer, as the trainer
 * sets it. */
static inline void freeze_in_optimizer(cv_model *m, cv_optim *o)
{
    float *scale = cv_calloc(cv_model_n_params(m), sizeof(float));
    ASSERT_TRUE(scale != NULL);
    if (scale && cv__transfer_lr_scale(m, NULL, scale))
        ASSERT_EQ(cv_optim_set_lr_scale(o, scale, NULL), CV_OK);
    free(scale);
}

/* A sharded optimizer (Adam, L2, optionally a global-norm clip) follows a
 * replicated one on private arenas step for step: the norm, the parameters
 * and, once shared, the moments.  The sharded side is `kind` (SHARDED, or
 * NODE over the given hosts' layout, adopted as the trainer does; or
 * ALLREDUCE); the replicated side is one allreduce of the whole arena.  At
 * odd steps the last rank has no rows (the end of an epoch), on both sides.
 * frozen >= 0: that layer is trainable: false on both sides; the tested
 * side exchanges only the trainable span, the replicated side everything,
 * and the frozen layer's parameters must not move. */
static inline void sharded_matches_replicated(const cv_comm *world, int kind, cv_comm *node,
                                              cv_comm *cross, double clip, int frozen)
{
    int rank = cv_comm_rank(world), p = cv_comm_size(world);
    struct cv_config c;
    mlp_config(&c, true);
    c.train.optimizer = CV_OPT_ADAM;
    c.train.l2 = 0.3;
    c.train.clip_norm = clip;
    if (frozen >= 0)
        c.model.layers[frozen].frozen = true;
    cv_model *ms = NULL, *mr = NULL;
    cv_optim *os = NULL, *orep = NULL;
    cv_model_create(&c, G, &ms, NULL);
    cv_model_create(&c, G, &mr, NULL);
    cv_model_init_params(ms, 4);
    cv_model_init_params(mr, 4);
    cv_optim_create(&c, ms, &os, NULL);
    cv_optim_create(&c, mr, &orep, NULL);
    size_t n = cv_model_n_params(ms), lo, hi;
    cv_reducer *rs = make_reducer(world, ms, cv_model_grads(ms), n, kind, node, cross);
    cv_reducer *rr = make_reducer(world, NULL, cv_model_grads(mr), n, ALLREDUCE, NULL, NULL);
    if (!rs || !rr || !os || !orep)
        return;
    freeze_in_optimizer(ms, os);
    freeze_in_optimizer(mr, orep);
    float *p0 = cv_calloc(n, sizeof(float));
    ASSERT_TRUE(p0 != NULL);
    if (!p0)
        return;
    memcpy(p0, cv_model_params(ms), n * sizeof(float));
    ASSERT_EQ(cv_reducer_adopt(rs, NULL), CV_OK);
    cv_reducer_owned(rs, &lo, &hi);
    struct cv_batch mine = local_part(rank, p);
    double clipped_norm = 0;
    for (int step = 0; step < 15; step++) {
        struct cv_batch b = mine;
        if (step % 2 == 1 && rank == p - 1)
            b.n = 0;
        cv_model_train_batch(mr, &b, (uint64_t)step, 1.0f / G, NULL);
        ASSERT_EQ(cv_reducer_finish(rr, NULL, NULL), CV_OK);
        clipped_norm = cv_optim_step(orep, cv_model_params(mr), cv_model_grads(mr), 1e-2, G);
        cv_model_train_batch(ms, &b, (uint64_t)step, 1.0f / G, NULL);
        ASSERT_EQ(cv_reducer_finish(rs, NULL, NULL), CV_OK);
        double norm = cv_optim_step_part(os, cv_model_params(ms), cv_reducer_owned_grads(rs), lo,
                                         hi, 1e-2, G, sum_over_slices, rs);
        ASSERT_EQ(cv_reducer_share(rs, cv_model_params(ms), NULL), CV_OK);
        CV_TEST_REPORT(fabs(norm - clipped_norm) <= 1e-6 * clipped_norm,
                       "kind %d step %d: sharded norm %.9g, replicated %.9g", kind, step, norm,
                       clipped_norm);
    }
    if (clip > 0) /* the clip was active, so the global norm mattered */
        CV_TEST_REPORT(clipped_norm > clip, "norm %g never exceeded the clip %g", clipped_norm,
                       clip);
    float dw = max_rel_diff(cv_model_params(ms), cv_model_params(mr), n);
    CV_TEST_REPORT(dw <= 1e-5f,
                   "kind %d clip %g: sharded vs replicated parameters "
                   "differ by %g",
                   kind, clip, dw);
    bool same = false;
    cv_comm_same_bytes(world, cv_model_params(ms), n * sizeof(float), &same, NULL, NULL);
    ASSERT_TRUE(same);
    size_t first, end, moved = 0, outside = 0;
    cv_model_trainable_span(ms, &first, &end);
    for (size_t i = 0; i < n; i++) {
        bool out = i < first || i >= end;
        outside += out;
        moved += out && cv_model_params(ms)[i] != p0[i];
    }
    CV_TEST_REPORT(frozen < 0 ? outside == 0 : outside > 0 && moved == 0,
                   "kind %d frozen %d: %zu of %zu parameters outside the span %zu..%zu moved", kind,
                   frozen, moved, outside, first, end);
    CV_TEST_REPORT(lo >= first && hi <= end, "kind %d: owned %zu..%zu outside the span %zu..%zu",
                   kind, lo, hi, first, end);
    free(p0);
    /* moments live on their owners until shared (as before a checkpoint) */
    cv_reducer_share(rs, cv_optim_m1(os), NULL);
    cv_reducer_share(rs, cv_optim_m2(os), NULL);
    float d1 = max_rel_diff(cv_optim_m1(os), cv_optim_m1(orep), n);
    float d2 = max_rel_diff(cv_optim_m2(os), cv_optim_m2(orep), n);
    CV_TEST_REPORT(d1 <= 1e-5f && d2 <= 1e-5f, "moments differ: m1 %g, m2 %g", d1, d2);
    ASSERT_EQ(cv_optim_t(os), 15);
    cv_model_free(ms); /* before the reducer whose arenas it may compute on */
    cv_reducer_free(rs);
    cv_reducer_free(rr);
    cv_optim_free(os);
    cv_optim_free(orep);
    cv_model_free(mr);
}

#endif /* CV_TEST_SPLIT_BATCH_H */
