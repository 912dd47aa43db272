/*
 * comm_bench.c - what one step's gradient exchange costs, through caviar's
 * own reducer (each mode the trainer can pick, node-shared arenas too) and
 * through the plain MPI collectives it was chosen against.  Prints the median and the minimum of
 * REPS exchanges of an arena of N floats (default: the 5.8M parameters of
 * the bench's workload b).  Not a test.
 *
 *   mpirun -np 2 --bind-to core build/tests/comm_bench [N [REPS]]
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/comm.h"
#include "util.h"

#define MAX_REPS 200

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *t, int reps, int rank)
{
    qsort(t, (size_t)reps, sizeof(double), cmp);
    if (rank == 0)
        printf("  %-52s median %7.2f ms   min %7.2f ms\n", what, 1e3 * t[reps / 2], 1e3 * t[0]);
}

static void fill(float *a, size_t n, int rank)
{
    for (size_t i = 0; i < n; i++)
        a[i] = (float)((i + (size_t)rank) % 97) * 1e-3f;
}

/* One reducer mode: begin, report every 1 MiB of the arena final (as
 * backward does), finish, and for a sharded one share the slices back. */
static void bench_reducer(const cv_comm *c, float *arena, size_t n, bool overlap, bool shard,
                          bool bf16, const char *what, int reps)
{
    cv_reducer *r = NULL;
    double t[MAX_REPS];
    if (cv_reducer_create(c, arena, n, 4u << 20, overlap, shard, bf16, &r, NULL) != CV_OK)
        return;
    for (int k = 0; k < reps; k++) {
        fill(arena, n, cv_comm_rank(c));
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        cv_reducer_begin(r);
        for (size_t off = n; off > 0; off = off > (1u << 18) ? off - (1u << 18) : 0)
            cv_reducer_ready(r, off);
        cv_reducer_finish(r, NULL, NULL);
        cv_reducer_share(r, arena, NULL);
        t[k] = MPI_Wtime() - t0;
    }
    report(what, t, reps, cv_comm_rank(c));
    cv_reducer_free(r);
}

/* Node-shared arenas (the ranks of this host): the owners sum straight from
 * their peers' gradients, and sharing the parameters is a barrier. */
static void bench_node_shared(const cv_comm *c, size_t n, int reps)
{
    cv_comm *node = NULL, *cross = NULL;
    cv_reducer *r = NULL;
    bool uniform = false;
    double t[MAX_REPS];
    if (cv_comm_split_node(c, &node, &cross, &uniform, NULL) != CV_OK || !uniform ||
        cv_reducer_create_node_shared(node, cross, n, NULL, NULL, &r, NULL) != CV_OK) {
        cv_comm_free(node);
        cv_comm_free(cross);
        return;
    }
    float *grads = cv_reducer_node_grads(r);
    for (int k = 0; k < reps; k++) {
        fill(grads, n, cv_comm_rank(c));
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        cv_reducer_begin(r);
        cv_reducer_finish(r, NULL, NULL);
        cv_reducer_share(r, cv_reducer_node_params(r), NULL);
        t[k] = MPI_Wtime() - t0;
    }
    report("caviar node-shared (sum from peers' memory)", t, reps, cv_comm_rank(c));
    cv_reducer_free(r);
    cv_comm_free(node);
    cv_comm_free(cross);
}

/* The collectives alone: MPI_Allreduce, and MPI_Reduce_scatter followed by
 * MPI_Allgatherv (what a sharded step needs). */
static void bench_mpi(float *arena, float *out, size_t n, int reps, int rank, int size)
{
    double t[MAX_REPS], u[MAX_REPS];
    int *counts = calloc((size_t)size, sizeof(int)), *displs = calloc((size_t)size, sizeof(int));
    for (int q = 0; q < size; q++) {
        displs[q] = (int)(n * (size_t)q / (size_t)size);
        counts[q] = (int)(n * (size_t)(q + 1) / (size_t)size) - displs[q];
    }
    for (int k = 0; k < reps; k++) {
        fill(arena, n, rank);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, arena, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t[k] = MPI_Wtime() - t0;
        fill(arena, n, rank);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        MPI_Reduce_scatter(arena, out, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        memcpy(arena + displs[rank], out, (size_t)counts[rank] * sizeof(float));
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, arena, counts, displs, MPI_FLOAT,
                       MPI_COMM_WORLD);
        u[k] = MPI_Wtime() - t0;
    }
    report("MPI_Allreduce", t, reps, rank);
    report("MPI_Reduce_scatter + MPI_Allgatherv", u, reps, rank);
    free(counts);
    free(displs);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 5820426;
    int reps = argc > 2 ? atoi(argv[2]) : 30;
    reps = reps < 1 ? 1 : reps > MAX_REPS ? MAX_REPS : reps;
    cv_comm *c = NULL;
    float *arena = cv_calloc_big(n ? n : 1, sizeof(float));
    float *out = cv_calloc_big(n ? n : 1, sizeof(float));
    if (n == 0 || n > (size_t)INT32_MAX || !arena || !out ||
        cv_comm_create_world(&c, NULL) != CV_OK) {
        fprintf(stderr, "comm_bench: N must be in 1..2^31-1 floats, and fit in memory\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int rank = cv_comm_rank(c), size = cv_comm_size(c);
    if (rank == 0)
        printf("gradient exchange of %zu floats (%.1f MB) over %d ranks, %d repetitions\n", n,
               4e-6 * (double)n, size, reps);
    bench_reducer(c, arena, n, false, false, false, "caviar replicated (MPI_Allreduce)", reps);
    bench_node_shared(c, n, reps);
    bench_reducer(c, arena, n, false, true, false,
                  "caviar sharded (pairwise reduce-scatter + allgather)", reps);
    bench_reducer(c, arena, n, true, true, false, "caviar sharded, overlapped (MPI_Ireduce)", reps);
    bench_reducer(c, arena, n, true, false, false, "caviar replicated, overlapped (Iallreduce)",
                  reps);
    bench_reducer(c, arena, n, false, true, true, "caviar sharded, bf16", reps);
    bench_reducer(c, arena, n, false, false, true, "caviar replicated, bf16", reps);
    bench_mpi(arena, out, n, reps, rank, size);
    cv_comm_free(c);
    free(arena);
    free(out);
    MPI_Finalize();
    return 0;
}
