/*
 * reducer_allreduce.c - the replicated exchange: every rank owns the whole
 * arena and gets the whole sum, in one MPI_Allreduce after backward.  With
 * one rank there is nothing to exchange.  (Overlapping buckets with
 * backward was measured and removed: docs/performance.md#overlap.)
 */
#include <stdio.h>

#include "comm_internal.h"
#include "reducer.h"

static cv_status finish(cv_reducer *r, struct cv_error *err)
{
    if (r->comm->size == 1)
        return CV_OK;
    return cv__comm_sum_floats(r->comm, r->grads + r->first, r->count, err);
}

static const struct cv_reducer_ops allreduce_ops = {
    .finish = finish,
};

cv_status cv__reducer_allreduce(cv_reducer *r, struct cv_error *err)
{
    r->ops = &allreduce_ops;
    snprintf(r->what, sizeof(r->what), "%s",
             r->comm->size == 1 ? "one rank: nothing to exchange"
                                : "allreduce after backward, optimizer replicated");
    (void)err;
    return CV_OK;
}
