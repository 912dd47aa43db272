/*
 * comm_internal.h - what the gradient exchange (src/reducer*.c) needs of
 * cv_comm beyond the public caviar/comm.h: the MPI communicator itself, MPI
 * error messages, the ranks of one host, and the float sum.  Only comm.c and
 * the reducer files include it (and with it <mpi.h>).
 */
#ifndef CV_COMM_INTERNAL_H
#define CV_COMM_INTERNAL_H

#include <mpi.h>
#include <stdbool.h>

#include "caviar/comm.h"

struct cv_comm {
    MPI_Comm comm;
    int rank, size;
};

/* err = "what: MPI's message for rc"; returns CV_MPI. */
cv_status cv__mpi_fail(struct cv_error *err, int rc, const char *what);

/* Collective over c: *node = the ranks of c that share memory with this one
 * (one host), *cross = the ranks with the same node rank on every host, and
 * *uniform = every host has the same number of ranks of c. */
cv_status cv__comm_split_node(const cv_comm *c, cv_comm **node, cv_comm **cross, bool *uniform,
                              struct cv_error *err);

/* Collective: in-place sum of n floats (in slices of 2^30 beyond INT_MAX). */
cv_status cv__comm_sum_floats(const cv_comm *c, float *buf, size_t n, struct cv_error *err);
cv_status cv__comm_max_ints(const cv_comm *c, int *buf, int n, struct cv_error *err);

#endif /* CV_COMM_INTERNAL_H */
