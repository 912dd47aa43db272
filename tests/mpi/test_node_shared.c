/*
 * test_node_shared.c - node-shared arenas (cv_reducer_create_node_shared),
 * run with 2, 3 and 4 ranks, each on three layouts of "hosts": the real one
 * (every rank on this machine), hosts of 2 ranks (2 x 2 at np 4: summed in
 * shared memory, then across hosts) and hosts of 1 rank (only the
 * allreduce across hosts).  Any grouping of ranks on one machine can share
 * memory, so the multi-host layouts run here for real.  Checks that
 *  - each owner's slice holds the exact sum over every rank of the job
 *    (integer-valued gradients), and the owners' slices cover the arena
 *    once per host;
 *  - the one parameter arena of a host holds what was loaded, and an
 *    owner's update is seen by its peers after cv_reducer_share;
 *  - Adam with L2 and a global-norm clip on node-shared arenas follows a
 *    replicated optimizer on private arenas (a second code path) step for
 *    step: parameters, moments and the clipped norm; with the peers'
 *    gradient copies summed, and with a shared batch whose owners compute
 *    their slices (rows cut at weight rows, ranks with fewer rows than
 *    max_batch).
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>

#include "caviar/optim.h"
#include "split_batch.h"
#include "test.h"

struct hosts {
    const char *name;
    cv_comm *node, *cross;
};

/* Hosts of `per` consecutive ranks (0: the machine's real grouping). */
static bool make_hosts(const cv_comm *world, int per, struct hosts *h)
{
    int rank = cv_comm_rank(world);
    bool uniform = true;
    if (per == 0)
        ASSERT_EQ(cv_comm_split_node(world, &h->node, &h->cross, &uniform, NULL), CV_OK);
    else if (cv_comm_size(world) % per == 0) {
        cv_comm_split(world, rank / per, rank, &h->node, NULL);
        cv_comm_split(world, rank % per, rank, &h->cross, NULL);
    } else
        return false;
    ASSERT_TRUE(uniform);
    ASSERT_TRUE(h->node != NULL && h->cross != NULL);
    return h->node && h->cross && uniform;
}

static void test_exact_sums(const cv_comm *world, const struct hosts *h, size_t n)
{
    int rank = cv_comm_rank(world), p = cv_comm_size(world);
    cv_reducer *r = NULL;
    ASSERT_EQ(cv_reducer_create_node_shared(h->node, h->cross, n, NULL, NULL, &r, NULL), CV_OK);
    if (!r)
        return;
    ASSERT_TRUE(cv_reducer_node_shared(r) && cv_reducer_sharded(r));
    ASSERT_EQ(cv_reducer_hosts(r), cv_comm_size(h->cross));
    float *g = cv_reducer_node_grads(r), *sum = cv_calloc(n, sizeof(float));
    /* a peer's copy is left pending only on one host of several ranks */
    bool expect_pending = cv_comm_size(h->cross) == 1 && cv_comm_size(h->node) > 1;
    /* twice: the second sum starts from fresh gradients, and leaves the
     * last addition pending as the trainer does */
    for (int rep = 0; rep < 2 && sum; rep++) {
        for (size_t i = 0; i < n; i++)
            g[i] = contribution(rank, i) * (float)(rep + 1);
        cv_reducer_begin(r);
        float *pending = NULL;
        ASSERT_EQ(cv_reducer_finish_pending(r, NULL, rep ? &pending : NULL, NULL), CV_OK);
        size_t lo, hi;
        cv_reducer_owned(r, &lo, &hi);
        CV_TEST_REPORT((pending != NULL) == (rep && expect_pending),
                       "%s rep %d: pending %p, expected one: %d", h->name, rep,
                       (const void *)pending, rep && expect_pending);
        const float *got = cv_reducer_owned_grads(r);
        for (size_t i = 0; i < hi - lo; i++)
            sum[i] = pending ? got[i] + pending[i] : got[i];
        size_t wrong = wrong_sums(sum, lo, hi, p, (float)(rep + 1));
        CV_TEST_REPORT(wrong == 0, "%s n %zu rep %d: %zu of [%zu, %zu) wrong", h->name, n, rep,
                       wrong, lo, hi);
        size_t owned = hi - lo;
        MPI_Allreduce(MPI_IN_PLACE, &owned, 1, MPI_UNSIGNED_LONG, MPI_SUM, MPI_COMM_WORLD);
        CV_TEST_REPORT(owned == n * (size_t)cv_comm_size(h->cross),
                       "%s: slices cover %zu of %zu x %d hosts", h->name, owned, n,
                       cv_comm_size(h->cross));
    }
    free(sum);
    cv_reducer_free(r);
}

/* Loaded (each owner copies its slice), everyone sees the whole arena; each
 * owner then writes its slice and, after share, every rank of the host
 * sees every slice. */
static void test_one_parameter_arena(const struct hosts *h)
{
    size_t n = 100003, lo, hi, wrong = 0;
    cv_reducer *r = NULL;
    float *mine = cv_calloc(n, sizeof(float));
    ASSERT_EQ(cv_reducer_create_node_shared(h->node, h->cross, n, NULL, NULL, &r, NULL), CV_OK);
    if (!r || !mine)
        return;
    for (size_t i = 0; i < n; i++)
        mine[i] = (float)i;
    ASSERT_EQ(cv_reducer_load_params(r, mine, NULL), CV_OK);
    float *params = cv_reducer_node_params(r);
    for (size_t i = 0; i < n; i++)
        wrong += params[i] != (float)i;
    CV_TEST_REPORT(wrong == 0, "%s: %zu loaded parameters wrong", h->name, wrong);
    cv_comm_barrier(h->node, NULL); /* everyone has read before anyone writes */
    cv_reducer_owned(r, &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        params[i] = (float)i * 2.0f;
    ASSERT_EQ(cv_reducer_share(r, params, NULL), CV_OK);
    wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += params[i] != (float)i * 2.0f;
    CV_TEST_REPORT(wrong == 0, "%s: %zu updates not seen", h->name, wrong);
    cv_reducer_free(r);
    free(mine);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    make_data();
    cv_comm *world = NULL;
    cv_comm_create_world(&world, NULL);
    struct hosts layouts[] = {{"this machine", NULL, NULL},
                              {"hosts of 2", NULL, NULL},
                              {"hosts of 1", NULL, NULL}};
    int per[] = {0, 2, 1};
    for (int k = 0; k < 3; k++) {
        struct hosts *h = &layouts[k];
        if (!make_hosts(world, per[k], h))
            continue; /* 3 ranks do not make hosts of 2 */
        test_exact_sums(world, h, 20);      /* fewer than 16 floats per rank */
        test_exact_sums(world, h, 1000003); /* unequal slices */
        test_one_parameter_arena(h);
        for (int mode = SUMMED; mode <= 3; mode++) { /* 3: every layer split */
            sharded_matches_replicated(world, h->node, h->cross, false, 0.05, mode);
            sharded_matches_replicated(world, h->node, h->cross, false, 0, mode);
        }
        cv_comm_free(h->node);
        cv_comm_free(h->cross);
    }
    int failed = cv_test_failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    cv_comm_free(world);
    MPI_Finalize();
    if (cv_test_failed == 0 && failed)
        cv_test_failed = failed;
    TEST_MAIN_END();
}
