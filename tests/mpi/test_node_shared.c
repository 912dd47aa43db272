/*
 * test_node_shared.c - node-shared arenas (src/reducer_node.c), run with 2,
 * 3 and 4 ranks, each on three layouts of "hosts": the real one (every rank
 * on this machine), hosts of 2 ranks (2 x 2 at np 4: summed in shared
 * memory, then across hosts) and hosts of 1 rank (only the allreduce
 * across hosts).  Any grouping of ranks on one machine can share memory,
 * so the multi-host layouts run here for real.  Checks that
 *  - each owner's slice holds the exact sum over every rank of the job
 *    (integer-valued gradients), twice in a row, and the owners' slices
 *    cover the arena once per host;
 *  - the one parameter arena of a host holds what the model had when
 *    adopted, and an owner's update is seen by its peers after share;
 *  - Adam with L2 and a global-norm clip on node-shared arenas follows a
 *    replicated optimizer on private arenas (a second code path) step for
 *    step: parameters, moments and the clipped norm.
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>

#include "caviar/optim.h"
#include "comm_internal.h"
#include "split_batch.h"
#include "test.h"

/* Hosts of `per` consecutive ranks (0: the machine's real grouping), into
 * node and cross; false where the ranks do not divide into such hosts. */
static bool make_hosts(const cv_comm *world, int per, cv_comm **node, cv_comm **cross)
{
    int rank = cv_comm_rank(world);
    bool uniform = true;
    *node = *cross = NULL;
    if (per == 0)
        ASSERT_EQ(cv__comm_split_node(world, node, cross, &uniform, NULL), CV_OK);
    else if (cv_comm_size(world) % per == 0) {
        cv_comm_split(world, rank / per, rank, node, NULL);
        cv_comm_split(world, rank % per, rank, cross, NULL);
    } else
        return false;
    ASSERT_TRUE(uniform && *node != NULL && *cross != NULL);
    return *node && *cross && uniform;
}

static void test_exact_sums(const cv_comm *world, int per, size_t n)
{
    int rank = cv_comm_rank(world), p = cv_comm_size(world);
    cv_comm *node, *cross;
    if (!make_hosts(world, per, &node, &cross))
        return;
    int hosts = cv_comm_size(cross);
    cv_reducer *r = make_reducer(world, NULL, NULL, n, NODE, node, cross);
    if (!r)
        return;
    float *g = r->grads;                 /* this rank's gradients, in the shared window */
    for (int rep = 1; rep <= 2; rep++) { /* the second sum starts from fresh gradients */
        for (size_t i = 0; i < n; i++)
            g[i] = contribution(rank, i) * (float)rep;
        ASSERT_EQ(cv_reducer_finish(r, NULL, NULL), CV_OK);
        size_t lo, hi;
        cv_reducer_owned(r, &lo, &hi);
        size_t wrong = wrong_sums(cv_reducer_owned_grads(r), lo, hi, p, (float)rep);
        CV_TEST_REPORT(wrong == 0, "hosts of %d, n %zu rep %d: %zu of [%zu, %zu) wrong", per, n,
                       rep, wrong, lo, hi);
        size_t owned = hi - lo;
        MPI_Allreduce(MPI_IN_PLACE, &owned, 1, MPI_UNSIGNED_LONG, MPI_SUM, MPI_COMM_WORLD);
        CV_TEST_REPORT(owned == n * (size_t)hosts, "hosts of %d: slices cover %zu of %zu x %d", per,
                       owned, n, hosts);
        cv_comm_barrier(world, NULL); /* every owner has read before g is rewritten */
    }
    cv_reducer_free(r);
}

/* Adopted (each owner copies its slice), everyone sees the whole arena;
 * each owner then writes its slice and, after share, every rank of the
 * host sees every slice. */
static void test_one_parameter_arena(const cv_comm *world, int per)
{
    struct cv_config c;
    int units[1] = {1000};
    enum cv_activation acts[1] = {CV_ACT_LINEAR};
    fixture_mlp(&c, 99, units, acts, 1, CV_LOSS_MSE);
    cv_model *m = NULL;
    cv_comm *node, *cross;
    ASSERT_EQ(cv_model_create(&c, 1, &m, NULL), CV_OK);
    if (!m || !make_hosts(world, per, &node, &cross))
        return;
    size_t n = cv_model_n_params(m), lo, hi, wrong = 0;
    for (size_t i = 0; i < n; i++)
        cv_model_params(m)[i] = (float)i;
    cv_reducer *r = make_reducer(world, m, cv_model_grads(m), n, NODE, node, cross);
    ASSERT_EQ(cv_reducer_adopt(r, NULL), CV_OK);
    float *params = cv_model_params(m); /* the host's arena now */
    for (size_t i = 0; i < n; i++)
        wrong += params[i] != (float)i;
    CV_TEST_REPORT(wrong == 0, "hosts of %d: %zu adopted parameters wrong", per, wrong);
    cv_comm_barrier(world, NULL); /* everyone has read before anyone writes */
    cv_reducer_owned(r, &lo, &hi);
    for (size_t i = lo; i < hi; i++)
        params[i] = (float)i * 2.0f;
    ASSERT_EQ(cv_reducer_share(r, params, NULL), CV_OK);
    wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += params[i] != (float)i * 2.0f;
    CV_TEST_REPORT(wrong == 0, "hosts of %d: %zu updates not seen", per, wrong);
    cv_model_free(m);
    cv_reducer_free(r);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    make_data();
    cv_comm *world = NULL;
    cv_comm_create_world(&world, NULL);
    int per[] = {0, 2, 1}; /* 3 ranks do not make hosts of 2: skipped */
    for (int k = 0; k < 3; k++) {
        test_exact_sums(world, per[k], 20);      /* fewer than 16 floats per rank */
        test_exact_sums(world, per[k], 1000003); /* unequal slices */
        test_one_parameter_arena(world, per[k]);
        for (int clip = 0; clip < 2; clip++) {
            cv_comm *node, *cross;
            if (make_hosts(world, per[k], &node, &cross))
                sharded_matches_replicated(world, NODE, node, cross, clip ? 0.05 : 0, -1);
        }
        for (int frozen = 0; frozen <= 3; frozen += 3) { /* the first or the last layer */
            cv_comm *node, *cross;
            if (make_hosts(world, per[k], &node, &cross))
                sharded_matches_replicated(world, NODE, node, cross, 0.05, frozen);
        }
    }
    int failed = cv_test_failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    cv_comm_free(world);
    MPI_Finalize();
    if (cv_test_failed == 0 && failed)
        cv_test_failed = failed;
    TEST_MAIN_END();
}
