/*
 * comm_bench.c - what one step's gradient exchange costs, through each of
 * caviar's strategies (src/reducer.h) and through the plain MPI
 * collectives they were chosen against.  Prints the median and the minimum of
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
#include "comm_internal.h"
#include "reducer.h"
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

enum kind { ALLREDUCE, SHARDED, COMPRESSED, NODE };

/* A strategy made directly (the trainer's policy picks one); NULL where it
 * cannot run here (node-shared arenas need every host to run > 1 ranks). */
static cv_reducer *make(const cv_comm *c, float *arena, size_t n, int kind)
{
    cv_reducer *r = cv_calloc(1, sizeof(*r));
    cv_comm *node = NULL, *cross = NULL;
    bool uniform = false;
    *r = (cv_reducer){.comm = c, .grads = arena, .n = n, .hi = n};
    cv_status st = CV_OK;
    if (kind == NODE) {
        st = cv__comm_split_node(c, &node, &cross, &uniform, NULL);
        if (st == CV_OK && (!uniform || cv_comm_size(node) < 2)) {
            cv_comm_free(node);
            cv_comm_free(cross);
            free(r);
            return NULL;
        }
    }
    if (st == CV_OK)
        st = kind == ALLREDUCE    ? cv__reducer_allreduce(r, NULL)
             : kind == SHARDED    ? cv__reducer_sharded(r, false, NULL)
             : kind == COMPRESSED ? cv__reducer_sharded(r, true, NULL)
                                  : cv__reducer_node(r, node, cross, NULL);
    if (st != CV_OK) {
        cv_reducer_free(r);
        return NULL;
    }
    return r;
}

/* One strategy: finish, and share the (updated) parameters back. */
static void bench_reducer(const cv_comm *c, float *arena, size_t n, int kind, const char *what,
                          int reps)
{
    double t[MAX_REPS];
    cv_reducer *r = make(c, arena, n, kind);
    if (!r)
        return;
    float *grads = r->grads; /* node-shared: this rank's part of the window */
    for (int k = 0; k < reps; k++) {
        fill(grads, n, cv_comm_rank(c));
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        cv_reducer_finish(r, NULL, NULL);
        if (kind == NODE) /* sharing the one parameter arena is a barrier of the host */
            MPI_Barrier(MPI_COMM_WORLD);
        else
            cv_reducer_share(r, arena, NULL);
        t[k] = MPI_Wtime() - t0;
    }
    report(what, t, reps, cv_comm_rank(c));
    cv_reducer_free(r);
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
    bench_reducer(c, arena, n, ALLREDUCE, "caviar allreduce (MPI_Allreduce)", reps);
    bench_reducer(c, arena, n, SHARDED, "caviar sharded (pairwise reduce-scatter + allgather)",
                  reps);
    bench_reducer(c, arena, n, COMPRESSED, "caviar allreduce in bf16 (reduce-scatter + allgather)",
                  reps);
    bench_reducer(c, arena, n, NODE, "caviar node-shared (sum from peers' memory)", reps);
    bench_mpi(arena, out, n, reps, rank, size);
    cv_comm_free(c);
    free(arena);
    free(out);
    MPI_Finalize();
    return 0;
}
