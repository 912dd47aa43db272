/*
 * reducer_allreduce.c - the replicated exchange: every rank owns the whole
 * arena and gets the whole sum.  By default one MPI_Allreduce after
 * backward; with comm.overlap, the arena is cut into buckets from its end
 * (backward writes the last layers first) and each bucket's
 * MPI_Iallreduce starts as soon as backward has made it final, as
 * Horovod and DDP do.  Open MPI advances a nonblocking collective only
 * inside MPI calls, so every ready() also tests the buckets in flight.
 * With one rank there is nothing to exchange.
 */
#include <stdio.h>
#include <stdlib.h>

#include "comm_internal.h"
#include "reducer.h"
#include "util.h"

struct allreduce {
    size_t bucket;          /* floats per bucket */
    int n_buckets, started; /* buckets count from the arena's end */
    size_t *lo;             /* (n_buckets) bucket k starts here, ends at lo[k - 1] (or n) */
    MPI_Request *req;       /* (n_buckets) */
    int rc;                 /* the first MPI error of the step */
};

static size_t bucket_end(const cv_reducer *r, const struct allreduce *a, int k)
{
    return k == 0 ? r->n : a->lo[k - 1];
}

static void start_ready(cv_reducer *r, size_t offset)
{
    struct allreduce *a = r->impl;
    MPI_Comm comm = r->comm->comm;
    while (a->started < a->n_buckets && a->lo[a->started] >= offset) {
        int k = a->started++;
        size_t lo = a->lo[k];
        int rc = MPI_Iallreduce(MPI_IN_PLACE, r->grads + lo, (int)(bucket_end(r, a, k) - lo),
                                MPI_FLOAT, MPI_SUM, comm, &a->req[k]);
        if (rc != MPI_SUCCESS && a->rc == MPI_SUCCESS)
            a->rc = rc;
    }
    int flag; /* progress for what is in flight */
    if (a->started > 0)
        MPI_Testall(a->started, a->req, &flag, MPI_STATUSES_IGNORE);
}

static cv_status finish_overlapped(cv_reducer *r, struct cv_error *err)
{
    struct allreduce *a = r->impl;
    start_ready(r, 0); /* whatever backward did not start */
    int rc = MPI_Waitall(a->started, a->req, MPI_STATUSES_IGNORE);
    int first = a->rc;
    a->started = 0;
    a->rc = MPI_SUCCESS;
    if (first != MPI_SUCCESS)
        return cv__mpi_fail(err, first, "MPI_Iallreduce (gradients)");
    return rc == MPI_SUCCESS ? CV_OK : cv__mpi_fail(err, rc, "MPI_Waitall (gradients)");
}

static cv_status finish_blocking(cv_reducer *r, struct cv_error *err)
{
    if (r->comm->size == 1)
        return CV_OK;
    return cv__comm_sum_floats(r->comm, r->grads, r->n, err);
}

static void free_impl(cv_reducer *r)
{
    struct allreduce *a = r->impl;
    if (!a)
        return;
    free(a->lo);
    free(a->req);
    free(a);
}

static const struct cv_reducer_ops blocking_ops = {
    .finish = finish_blocking,
    .free_impl = free_impl,
};

static const struct cv_reducer_ops overlapped_ops = {
    .ready = start_ready,
    .finish = finish_overlapped,
    .free_impl = free_impl,
};

/* Buckets of at most `bucket` floats (int counts), from the end. */
static cv_status plan_buckets(cv_reducer *r, struct allreduce *a, struct cv_error *err)
{
    size_t nb = (r->n + a->bucket - 1) / a->bucket;
    a->lo = cv_calloc(nb ? nb : 1, sizeof(size_t));
    a->req = cv_calloc(nb ? nb : 1, sizeof(MPI_Request));
    if (!a->lo || !a->req)
        return cv_fail(err, CV_NOMEM, "reducer: out of memory for %zu buckets", nb);
    for (size_t hi = r->n; hi > 0; a->n_buckets++) {
        size_t lo = hi > a->bucket ? hi - a->bucket : 0;
        a->lo[a->n_buckets] = lo;
        hi = lo;
    }
    return CV_OK;
}

cv_status cv__reducer_allreduce(cv_reducer *r, size_t bucket_bytes, bool overlap,
                                struct cv_error *err)
{
    struct allreduce *a = cv_calloc(1, sizeof(*a));
    cv_status st = a ? CV_OK : cv_fail(err, CV_NOMEM, "reducer: out of memory");
    r->impl = a;
    r->ops = &blocking_ops;
    if (st == CV_OK && overlap) {
        a->bucket = bucket_bytes / sizeof(float) > 0 ? bucket_bytes / sizeof(float) : 1;
        a->bucket = a->bucket < ((size_t)1 << 30) ? a->bucket : (size_t)1 << 30;
        st = plan_buckets(r, a, err);
    }
    /* one bucket has nothing to overlap with */
    if (st == CV_OK && overlap && a->n_buckets > 1)
        r->ops = &overlapped_ops;
    snprintf(r->what, sizeof(r->what), "%s",
             r->comm->size == 1          ? "one rank: nothing to exchange"
             : r->ops == &overlapped_ops ? "allreduce in buckets during backward, "
                                           "optimizer replicated"
                                         : "allreduce after backward, optimizer replicated");
    return cv_comm_agree(r->comm, st, err);
}
