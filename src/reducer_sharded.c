/*
 * reducer_sharded.c - the exchanges built on a pairwise reduce-scatter
 * between private arenas, in which rank q sums the slice
 * [start(q), start(q + 1)) of the arena:
 *   sharded    - ZeRO stage 1: each owner updates only its slice, and
 *                share() allgathers the updated slices.  The same bytes
 *                cross as in a ring allreduce, and the optimizer's pass is
 *                split P ways.
 *   compressed - comm.compression = bf16: the reduce-scatter's messages are
 *                bfloat16 (src/bf16.h), added to the owner's float slice in
 *                float; the owners round their sums to bfloat16 and
 *                allgather them, so half the bytes cross both ways and
 *                every rank unpacks the same values: replicas stay
 *                identical, each updating every parameter.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bf16.h"
#include "comm_internal.h"
#include "reducer.h"
#include "util.h"

/* Floats per message: the received chunk is summed while still in L2,
 * and the scratch stays small. */
#define CHUNK ((size_t)1 << 18)

struct sharded {
    bool bf16;
    size_t lo, hi;        /* the slice this rank sums */
    int *counts, *displs; /* (size) each rank's slice */
    size_t widest;        /* the longest slice */
    float *scratch;       /* (CHUNK) float: an incoming message */
    uint16_t *packed;     /* bf16: (2 CHUNK + n) the outgoing and the incoming message,
                             then the allgathered sums */
};

static size_t chunk_len(size_t total, size_t c)
{
    size_t start = c * CHUNK;
    return start >= total ? 0 : total - start < CHUNK ? total - start : CHUNK;
}

/* One message each way: `out` (out_len floats) to `to`, in_len from `from`
 * added onto acc. */
static int exchange(cv_reducer *r, const float *out, long out_len, int to, float *acc, long in_len,
                    int from, int tag)
{
    struct sharded *s = r->impl;
    MPI_Comm comm = r->comm->comm;
    if (!s->bf16) {
        int rc = MPI_Sendrecv(out, (int)out_len, MPI_FLOAT, to, tag, s->scratch, (int)in_len,
                              MPI_FLOAT, from, tag, comm, MPI_STATUS_IGNORE);
        if (rc == MPI_SUCCESS)
            cv__accumulate(acc, s->scratch, in_len);
        return rc;
    }
    uint16_t *send = s->packed, *recv = s->packed + CHUNK;
    cv_bf16_pack(out, send, (size_t)out_len);
    int rc = MPI_Sendrecv(send, (int)out_len, MPI_UINT16_T, to, tag, recv, (int)in_len,
                          MPI_UINT16_T, from, tag, comm, MPI_STATUS_IGNORE);
    if (rc == MPI_SUCCESS)
        cv_bf16_accumulate(acc, recv, (size_t)in_len);
    return rc;
}

/* In round s each rank sends its copy of rank (me + s)'s slice to that rank
 * and adds the copy of its own slice that rank (me - s) sends it: after
 * P - 1 rounds each owner holds its slice's sum, having sent and received
 * (P - 1)/P of the arena, as a ring would.  Why not MPI_Reduce_scatter:
 * Open MPI 4.1's was about 4x slower (docs/performance.md). */
static cv_status reduce_scatter(cv_reducer *r, struct cv_error *err)
{
    struct sharded *s = r->impl;
    int p = r->comm->size, me = r->comm->rank;
    float *mine = r->grads + s->lo;
    for (int k = 1; k < p; k++) {
        int to = (me + k) % p, from = (me - k + p) % p;
        const float *out = r->grads + s->displs[to];
        /* every rank makes the same number of exchanges (some empty), so
         * that sends and receives pair up whatever the slice lengths */
        for (size_t c = 0; c * CHUNK < s->widest; c++) {
            int rc = exchange(r, out + c * CHUNK, (long)chunk_len((size_t)s->counts[to], c), to,
                              mine + c * CHUNK, (long)chunk_len(s->hi - s->lo, c), from, k);
            if (rc != MPI_SUCCESS)
                return cv__mpi_fail(err, rc, "MPI_Sendrecv (gradient reduce-scatter)");
        }
    }
    return CV_OK;
}

/* Compressed: the owners' sums rounded to bfloat16, allgathered as such,
 * and unpacked by every rank (the owner too) into its whole arena. */
static cv_status finish_compressed(cv_reducer *r, struct cv_error *err)
{
    struct sharded *s = r->impl;
    cv_status st = reduce_scatter(r, err);
    if (st != CV_OK)
        return st;
    uint16_t *all = s->packed + 2 * CHUNK;
    cv_bf16_pack(r->grads + s->lo, all + s->lo, s->hi - s->lo);
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, s->counts, s->displs,
                            MPI_UINT16_T, r->comm->comm);
    if (rc != MPI_SUCCESS)
        return cv__mpi_fail(err, rc, "MPI_Allgatherv (bfloat16 gradients)");
    cv_bf16_unpack(all + r->first, r->grads + r->first, r->count);
    return CV_OK;
}

static cv_status share(cv_reducer *r, float *arena, struct cv_error *err)
{
    struct sharded *s = r->impl;
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, arena, s->counts, s->displs,
                            MPI_FLOAT, r->comm->comm);
    return rc == MPI_SUCCESS ? CV_OK : cv__mpi_fail(err, rc, "MPI_Allgatherv (sharded update)");
}

static void free_impl(cv_reducer *r)
{
    struct sharded *s = r->impl;
    if (!s)
        return;
    free(s->counts);
    free(s->displs);
    free(s->scratch);
    free(s->packed);
    free(s);
}

static const struct cv_reducer_ops sharded_ops = {
    .finish = reduce_scatter,
    .share = share,
    .free_impl = free_impl,
};

static const struct cv_reducer_ops compressed_ops = {
    .finish = finish_compressed,
    .free_impl = free_impl,
};

static cv_status plan(cv_reducer *r, struct sharded *s, struct cv_error *err)
{
    cv_status st = cv__plan_slices(r, r->comm->size, &s->counts, &s->displs, &s->widest,
                                   "comm.shard_optimizer / comm.compression", err);
    if (st != CV_OK)
        return st;
    if (s->bf16)
        s->packed = cv_calloc_big(2 * CHUNK + r->n, sizeof(uint16_t));
    else
        s->scratch = cv_calloc(CHUNK, sizeof(float));
    if (!s->packed && !s->scratch)
        return cv_fail(err, CV_NOMEM, "reducer: out of memory for the exchange's messages");
    s->lo = (size_t)s->displs[r->comm->rank];
    s->hi = s->lo + (size_t)s->counts[r->comm->rank];
    return CV_OK;
}

cv_status cv__reducer_sharded(cv_reducer *r, bool bf16, struct cv_error *err)
{
    struct sharded *s = cv_calloc(1, sizeof(*s));
    cv_status st = s ? CV_OK : cv_fail(err, CV_NOMEM, "reducer: out of memory");
    r->impl = s;
    r->ops = bf16 ? &compressed_ops : &sharded_ops;
    r->slices = bf16 ? NULL : r->comm;
    if (st == CV_OK) {
        s->bf16 = bf16;
        st = plan(r, s, err);
    }
    if (st == CV_OK && !bf16) { /* the owned slice; compressed, every rank owns it all */
        r->lo = s->lo;
        r->hi = s->hi;
    }
    if (bf16)
        snprintf(r->what, sizeof(r->what),
                 "allreduce of bfloat16 gradients (pairwise "
                 "reduce-scatter, allgather of the rounded sums) after backward, optimizer "
                 "replicated");
    else
        snprintf(r->what, sizeof(r->what),
                 "pairwise reduce-scatter after backward, optimizer "
                 "sharded over the %d ranks (each updates 1/%d), updated slices allgathered",
                 r->comm->size, r->comm->size);
    return cv_comm_agree(r->comm, st, err);
}
