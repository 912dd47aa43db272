/*
 * comm.c - MPI behind the cv_comm interface: a duplicated communicator per
 * group (never a global one), MPI_ERRORS_RETURN with messages from
 * MPI_Error_string, error agreement (MAX of the status, then the message of
 * the lowest failing rank), and the bucketed gradient reducer.
 *
 * Determinism: a sum allreduce hands every rank the same bits for a given
 * algorithm; tests check replica checksums after training with 2 and 3 ranks.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bf16.h"
#include "caviar/comm.h"
#include "util.h"

struct cv_comm {
    MPI_Comm comm;
    int rank, size;
};

static cv_status mpi_fail(struct cv_error *err, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return cv_fail(err, CV_MPI, "%s: %s", what, msg);
}

static cv_status wrap(MPI_Comm comm, cv_comm **out, struct cv_error *err)
{
    cv_comm *c = cv_calloc(1, sizeof(*c));
    if (!c) {
        MPI_Comm_free(&comm);
        return cv_fail(err, CV_NOMEM, "comm: out of memory");
    }
    c->comm = comm;
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->size);
    *out = c;
    return CV_OK;
}

cv_status cv_comm_create_world(cv_comm **out, struct cv_error *err)
{
    MPI_Comm dup;
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    *out = NULL;
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Comm_dup");
    return wrap(dup, out, err);
}

cv_status cv_comm_split(const cv_comm *parent, int color, int key, cv_comm **out,
                        struct cv_error *err)
{
    MPI_Comm sub;
    int rc = MPI_Comm_split(parent->comm, color < 0 ? MPI_UNDEFINED : color, key, &sub);
    *out = NULL;
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Comm_split");
    if (sub == MPI_COMM_NULL)
        return CV_OK;
    return wrap(sub, out, err);
}

cv_status cv_comm_split_node(const cv_comm *c, cv_comm **node, cv_comm **cross, bool *uniform,
                             struct cv_error *err)
{
    MPI_Comm sub;
    int rank = 0, size = 0;
    *node = *cross = NULL;
    int rc = MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &sub);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Comm_split_type (ranks of one host)");
    MPI_Comm_rank(sub, &rank);
    MPI_Comm_size(sub, &size);
    /* the collectives first, so that a local failure cannot leave peers waiting */
    cv_status st = cv_comm_split(c, rank, c->rank, cross, err);
    int sizes[2] = {size, -size};
    if (st == CV_OK)
        st = cv_comm_max_ints(c, sizes, 2, err); /* the largest and the smallest host */
    *uniform = st == CV_OK && sizes[0] == -sizes[1];
    if (st == CV_OK)
        st = wrap(sub, node, err);
    else
        MPI_Comm_free(&sub);
    if (st != CV_OK) {
        cv_comm_free(*node);
        cv_comm_free(*cross);
        *node = *cross = NULL;
    }
    return st;
}

void cv_comm_free(cv_comm *c)
{
    if (!c)
        return;
    MPI_Comm_free(&c->comm);
    free(c);
}

int cv_comm_rank(const cv_comm *c)
{
    return c->rank;
}

int cv_comm_size(const cv_comm *c)
{
    return c->size;
}

static cv_status allreduce(const cv_comm *c, void *buf, size_t n, MPI_Datatype t, MPI_Op op,
                           struct cv_error *err)
{
    /* counts beyond INT_MAX go in slices */
    size_t elem = t == MPI_FLOAT ? 4 : t == MPI_DOUBLE ? 8 : sizeof(int);
    for (size_t off = 0; off < n;) {
        int cnt = n - off > (1u << 30) ? (1 << 30) : (int)(n - off);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, cnt, t, op, c->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(err, rc, "MPI_Allreduce");
        off += (size_t)cnt;
    }
    return CV_OK;
}

cv_status cv_comm_sum_floats(const cv_comm *c, float *buf, size_t n, struct cv_error *err)
{
    return allreduce(c, buf, n, MPI_FLOAT, MPI_SUM, err);
}

cv_status cv_comm_sum_doubles(const cv_comm *c, double *buf, int n, struct cv_error *err)
{
    return allreduce(c, buf, (size_t)n, MPI_DOUBLE, MPI_SUM, err);
}

cv_status cv_comm_max_doubles(const cv_comm *c, double *buf, int n, struct cv_error *err)
{
    return allreduce(c, buf, (size_t)n, MPI_DOUBLE, MPI_MAX, err);
}

cv_status cv_comm_max_ints(const cv_comm *c, int *buf, int n, struct cv_error *err)
{
    return allreduce(c, buf, (size_t)n, MPI_INT, MPI_MAX, err);
}

cv_status cv_comm_bcast(const cv_comm *c, void *buf, size_t bytes, int root,
                        struct cv_error *err)
{
    for (size_t off = 0; off < bytes;) {
        int cnt = bytes - off > (1u << 30) ? (1 << 30) : (int)(bytes - off);
        int rc = MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, c->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(err, rc, "MPI_Bcast");
        off += (size_t)cnt;
    }
    return CV_OK;
}

cv_status cv_comm_gather_floats(const cv_comm *c, const float *send, size_t n, float *recv,
                                int root, struct cv_error *err)
{
    int cnt = (int)n, *counts = NULL, *displs = NULL;
    cv_status st = CV_OK;
    if (n > (size_t)1 << 30)
        return cv_fail(err, CV_INVAL, "gather of %zu floats per rank is too large", n);
    if (c->rank == root) {
        counts = cv_calloc((size_t)c->size, sizeof(int));
        displs = cv_calloc((size_t)c->size, sizeof(int));
    }
    int rc = MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, root, c->comm);
    if (c->rank == root && counts && displs)
        for (int r = 1; r < c->size; r++)
            displs[r] = displs[r - 1] + counts[r - 1];
    if (rc == MPI_SUCCESS)
        rc = MPI_Gatherv(send, cnt, MPI_FLOAT, recv, counts, displs, MPI_FLOAT, root, c->comm);
    if (rc != MPI_SUCCESS)
        st = mpi_fail(err, rc, "MPI_Gatherv");
    free(counts);
    free(displs);
    return st;
}

cv_status cv_comm_barrier(const cv_comm *c, struct cv_error *err)
{
    int rc = MPI_Barrier(c->comm);
    return rc == MPI_SUCCESS ? CV_OK : mpi_fail(err, rc, "MPI_Barrier");
}

cv_status cv_comm_agree(const cv_comm *c, cv_status local, struct cv_error *err)
{
    /* [0] worst status, [1] lowest failing rank (as -rank for MAX) */
    int v[2] = {(int)local, local != CV_OK ? -c->rank : -c->size};
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_MAX, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Allreduce (error agreement)");
    if (v[0] == CV_OK)
        return CV_OK;
    int root = -v[1];
    struct cv_error remote;
    cv_error_clear(&remote);
    if (c->rank == root && err)
        remote = *err;
    else if (c->rank == root)
        remote.code = local;
    rc = MPI_Bcast(&remote, (int)sizeof(remote), MPI_BYTE, root, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Bcast (error agreement)");
    if (c->rank != root) {
        if (err && err->code == CV_OK)
            cv_fail(err, remote.code, "%s", remote.msg);
        return (cv_status)v[0];
    }
    return local != CV_OK ? local : (cv_status)v[0];
}

/* ---- messages ---- */

/* Test the request until done, sleeping between tests: Open MPI's blocking
 * waits poll at full speed, which would take a core from working ranks. */
static cv_status wait_idle(MPI_Request *req, const char *what, struct cv_error *err)
{
    long ns = 20000;
    for (;;) {
        int done = 0, rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_fail(err, rc, what);
        if (done)
            return CV_OK;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
        ns = ns < 1000000 ? ns * 2 : 2000000;
    }
}

cv_status cv_comm_send(const cv_comm *c, const void *buf, size_t bytes, int dest, int tag,
                       struct cv_error *err)
{
    int rc = MPI_Send(buf, (int)bytes, MPI_BYTE, dest, tag, c->comm);
    return rc == MPI_SUCCESS ? CV_OK : mpi_fail(err, rc, "MPI_Send");
}

cv_status cv_comm_try_recv(const cv_comm *c, void *buf, size_t bytes, int tag, int *from,
                           struct cv_error *err)
{
    int flag = 0;
    MPI_Status status;
    *from = -1;
    int rc = MPI_Iprobe(MPI_ANY_SOURCE, tag, c->comm, &flag, &status);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Iprobe");
    if (!flag)
        return CV_OK;
    rc = MPI_Recv(buf, (int)bytes, MPI_BYTE, status.MPI_SOURCE, tag, c->comm, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Recv");
    *from = status.MPI_SOURCE;
    return CV_OK;
}

cv_status cv_comm_recv_idle(const cv_comm *c, void *buf, size_t bytes, int src, int tag,
                            struct cv_error *err)
{
    MPI_Request req;
    int rc = MPI_Irecv(buf, (int)bytes, MPI_BYTE, src, tag, c->comm, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Irecv");
    return wait_idle(&req, "MPI_Irecv", err);
}

cv_status cv_comm_bcast_idle(const cv_comm *c, void *buf, size_t bytes, int root,
                             struct cv_error *err)
{
    MPI_Request req;
    int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, c->comm, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Ibcast");
    return wait_idle(&req, "MPI_Ibcast", err);
}

cv_status cv_comm_barrier_idle(const cv_comm *c, struct cv_error *err)
{
    MPI_Request req;
    int rc = MPI_Ibarrier(c->comm, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Ibarrier");
    return wait_idle(&req, "MPI_Ibarrier", err);
}

uint64_t cv_hash_bytes(const void *buf, size_t bytes)
{
    /* FNV-1a over 8-byte little-endian words (then the tail bytes): the same
     * bits give the same hash on every rank, 8x faster than byte-wise */
    const unsigned char *p = buf;
    uint64_t h = 1469598103934665603ULL, w;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ULL;
    }
    for (; i < bytes; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

cv_status cv_comm_same_bytes(const cv_comm *c, const void *buf, size_t bytes, bool *same,
                             uint64_t *hash, struct cv_error *err)
{
    uint64_t h = cv_hash_bytes(buf, bytes);
    uint64_t mn = h, mx = h;
    int rc = MPI_Allreduce(MPI_IN_PLACE, &mn, 1, MPI_UINT64_T, MPI_MIN, c->comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_UINT64_T, MPI_MAX, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Allreduce (checksum)");
    *same = mn == mx;
    if (hash)
        *hash = h;
    return CV_OK;
}

/* ---- the bucketed reducer ---- */

/* Floats per message of the pairwise reduce-scatter: the received chunk is
 * summed while it is still in L2 (4 MiB here), and the scratch stays small. */
#define RS_CHUNK ((size_t)1 << 18)

struct cv_reducer {
    const cv_comm *comm;       /* the ranks the arena is sliced over (node-shared: a host's) */
    float *arena;
    size_t n, bucket;          /* elements in the arena, per bucket */
    int n_buckets, started;    /* buckets count from the arena's end */
    size_t *lo, *hi;           /* (n_buckets) bucket k covers [lo[k], hi[k]) */
    int *owner;                /* (n_buckets) sharded: the rank that sums bucket k */
    bool overlap, sharded, bf16;
    int *counts, *displs;      /* (size) sharded: each rank's slice of the arena */
    float *scratch;            /* sharded, blocking, float: a message of my slice */
    uint16_t *packed;          /* bf16: two messages, then (replicated) the arena */
    size_t widest;             /* the longest slice */
    const cv_comm *cross;      /* node-shared: the same slice's owners on other hosts */
    bool node_shared, locked;
    bool clear_peers;          /* zero the peers' copies once added (clear_peers) */
    bool owners_compute;       /* owners compute their slices' sums themselves */
    size_t (*cut)(void *arg, size_t at); /* node-shared: where slices may start */
    void *cut_arg;
    MPI_Win win;               /* node-shared: params (node rank 0) and grads */
    MPI_Win batch_win;         /* node-shared: cv_reducer_node_batch */
    float *params, **grads;    /* node-shared: the node's params, each rank's grads */
    MPI_Request *req;
    int rc;                    /* first MPI error of the step */
};

/* Rank q's slice of a sharded arena: [n q / P, n (q+1) / P), cut at
 * multiples of 16 floats so that no cache line is shared by two owners,
 * then moved up to the next r->cut (a row of a weight matrix) if set. */
static size_t slice_start(const cv_reducer *r, int q)
{
    int p = r->comm->size;
    size_t n = r->n;
    if (q >= p)
        return n;
    size_t s = (size_t)((double)n * q / p) & ~(size_t)15;
    s = s < n ? s : n;
    if (r->cut && q > 0) {
        size_t c = r->cut(r->cut_arg, s);
        s = c < n ? c : n;
    }
    return s;
}

/* Buckets from the arena's end (backward writes the tail first), each at
 * most r->bucket elements and, when sharded, inside one owner's slice. */
static void plan_buckets(cv_reducer *r)
{
    int p = r->comm->size, k = 0, owner = p - 1;
    for (size_t hi = r->n; hi > 0; k++) {
        while (owner > 0 && slice_start(r, owner) >= hi)
            owner--;
        size_t floor_ = r->sharded ? slice_start(r, owner) : 0;
        size_t lo = hi - floor_ > r->bucket ? hi - r->bucket : floor_;
        if (r->lo) {
            r->lo[k] = lo;
            r->hi[k] = hi;
            r->owner[k] = owner;
        }
        hi = lo;
    }
    r->n_buckets = k;
}

static cv_status reducer_alloc(cv_reducer *r, struct cv_error *err)
{
    int p = r->comm->size;
    size_t nb = (size_t)r->n_buckets + 1;
    r->lo = cv_calloc(nb, sizeof(size_t));
    r->hi = cv_calloc(nb, sizeof(size_t));
    r->owner = cv_calloc(nb, sizeof(int));
    r->req = cv_calloc(nb, sizeof(MPI_Request));
    r->counts = cv_calloc((size_t)p, sizeof(int));
    r->displs = cv_calloc((size_t)p, sizeof(int));
    if (!r->lo || !r->hi || !r->owner || !r->req || !r->counts || !r->displs)
        return cv_fail(err, CV_NOMEM, "reducer: out of memory");
    plan_buckets(r); /* again, now that there is room for the ranges */
    size_t widest = 0;
    for (int q = 0; q < p; q++) {
        size_t a = slice_start(r, q), b = slice_start(r, q + 1);
        r->displs[q] = (int)a;
        r->counts[q] = (int)(b - a);
        widest = b - a > widest ? b - a : widest;
    }
    r->widest = widest;
    if (r->sharded && !r->overlap && !r->bf16 && !r->node_shared) { /* the exchange's messages */
        size_t len = widest < RS_CHUNK ? widest : RS_CHUNK;
        r->scratch = cv_calloc(len ? len : 1, sizeof(float));
        if (!r->scratch)
            return cv_fail(err, CV_NOMEM, "reducer: out of memory for %zu floats", len);
    }
    if (r->bf16) {
        size_t len = 2 * RS_CHUNK + (r->sharded ? 0 : r->n); /* out, in message; arena */
        r->packed = cv_calloc_big(len ? len : 1, sizeof(uint16_t));
        if (!r->packed)
            return cv_fail(err, CV_NOMEM, "reducer: out of memory for %zu bfloat16s", len);
    }
    return CV_OK;
}

cv_status cv_reducer_create(const cv_comm *c, float *arena, size_t n, size_t bucket_bytes,
                            bool overlap, bool shard, bool bf16, cv_reducer **out,
                            struct cv_error *err)
{
    cv_reducer *r = cv_calloc(1, sizeof(*r));
    *out = NULL;
    if (!r)
        return cv_fail(err, CV_NOMEM, "reducer: out of memory");
    r->comm = c;
    r->arena = arena;
    r->n = n;
    r->win = r->batch_win = MPI_WIN_NULL;
    /* slices have int displacements: beyond 2^31 floats the arena is
     * reduced whole, in float */
    bool sliceable = c->size > 1 && n > 0 && n <= (size_t)INT32_MAX;
    r->bf16 = bf16 && sliceable;
    r->bucket = bucket_bytes / sizeof(float) > 0 ? bucket_bytes / sizeof(float) : 1;
    if (r->bucket > (1u << 30))
        r->bucket = 1u << 30;
    r->sharded = shard && sliceable;
    plan_buckets(r); /* counts them; reducer_alloc fills in the ranges */
    /* one bucket cannot overlap anything, and the blocking allreduce's tuned
     * algorithms beat libnbc's nonblocking one (measured: 95k vs 86k
     * samples/s on the 235k-parameter MLP, 2 ranks); compressed exchanges
     * are always blocking */
    r->overlap = overlap && !r->bf16 && c->size > 1 &&
                 r->n_buckets > (r->sharded ? c->size : 1);
    cv_status st = reducer_alloc(r, err);
    if (st != CV_OK) {
        cv_reducer_free(r);
        return st;
    }
    *out = r;
    return CV_OK;
}

/* One shared window: the node's first rank holds the parameter arena and
 * its gradients (a cache line apart), every other rank its gradients.
 * Non-contiguous, so each rank's part is its own page-aligned allocation;
 * pages go to the NUMA node of the rank that first writes them (its
 * gradients, its slice of the parameters: cv_reducer_load_params). */
static cv_status alloc_node_window(cv_reducer *r, struct cv_error *err)
{
    const cv_comm *node = r->comm;
    size_t params_len = (r->n + 15) & ~(size_t)15;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    MPI_Aint bytes = (MPI_Aint)((r->n + (node->rank == 0 ? params_len : 0)) * sizeof(float));
    float *base = NULL;
    int rc = MPI_Win_allocate_shared(bytes, (int)sizeof(float), info, node->comm, &base, &r->win);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Win_allocate_shared (node-shared arenas)");
    MPI_Win_set_errhandler(r->win, MPI_ERRORS_RETURN);
    r->grads = cv_calloc((size_t)node->size, sizeof(float *));
    if (!r->grads)
        return cv_fail(err, CV_NOMEM, "reducer: out of memory");
    for (int q = 0; q < node->size && rc == MPI_SUCCESS; q++) {
        MPI_Aint sz;
        int unit;
        float *p = NULL;
        rc = MPI_Win_shared_query(r->win, q, &sz, &unit, &p);
        if (q == 0)
            r->params = p;
        r->grads[q] = q == 0 ? p + params_len : p;
    }
    r->arena = r->grads[node->rank]; /* this rank's gradients, as in a private reducer */
    if (rc == MPI_SUCCESS) /* one passive epoch for the window's life: MPI_Win_sync orders */
        rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, r->win);
    r->locked = rc == MPI_SUCCESS;
    return rc == MPI_SUCCESS ? CV_OK : mpi_fail(err, rc, "MPI_Win_shared_query / lock_all");
}

cv_status cv_reducer_create_node_shared(const cv_comm *node, const cv_comm *cross, size_t n,
                                        size_t (*cut)(void *arg, size_t at), void *cut_arg,
                                        cv_reducer **out, struct cv_error *err)
{
    cv_reducer *r = cv_calloc(1, sizeof(*r));
    *out = NULL;
    if (!r)
        return cv_fail(err, CV_NOMEM, "reducer: out of memory");
    if (n == 0 || n > (size_t)INT32_MAX) {
        free(r);
        return cv_fail(err, CV_INVAL, "node-shared arenas: %zu parameters: expected 1 to %d", n,
                       INT32_MAX);
    }
    r->comm = node;
    r->cross = cross;
    r->n = n;
    r->bucket = n; /* one bucket, the whole arena: it is summed after backward */
    r->sharded = r->node_shared = true;
    r->cut = cut;
    r->cut_arg = cut_arg;
    r->win = r->batch_win = MPI_WIN_NULL;
    plan_buckets(r);
    /* agreed first: the window's allocation is collective */
    cv_status st = cv_comm_agree(node, reducer_alloc(r, err), err);
    if (st == CV_OK)
        st = alloc_node_window(r, err);
    if (st != CV_OK) {
        cv_reducer_free(r);
        return st;
    }
    *out = r;
    return CV_OK;
}

void cv_reducer_free(cv_reducer *r)
{
    if (!r)
        return;
    if (r->locked)
        MPI_Win_unlock_all(r->win);
    if (r->node_shared && r->win != MPI_WIN_NULL)
        MPI_Win_free(&r->win);
    if (r->batch_win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(r->batch_win);
        MPI_Win_free(&r->batch_win);
    }
    free(r->grads);
    free(r->lo);
    free(r->hi);
    free(r->owner);
    free(r->req);
    free(r->counts);
    free(r->displs);
    free(r->scratch);
    free(r->packed);
    free(r);
}

bool cv_reducer_sharded(const cv_reducer *r)
{
    return r->sharded;
}

bool cv_reducer_overlapped(const cv_reducer *r)
{
    return r->overlap;
}

bool cv_reducer_compressed(const cv_reducer *r)
{
    return r->bf16;
}

void cv_reducer_clear_peers(cv_reducer *r, bool on)
{
    r->clear_peers = on && r->node_shared;
}

cv_status cv_reducer_node_batch(cv_reducer *r, size_t n, float **out, struct cv_error *err)
{
    *out = NULL;
    CV_ASSERT(r->node_shared && r->batch_win == MPI_WIN_NULL);
    MPI_Aint bytes = (MPI_Aint)((r->comm->rank == 0 ? n : 0) * sizeof(float));
    float *base = NULL;
    MPI_Aint sz;
    int unit, rc = MPI_Win_allocate_shared(bytes, (int)sizeof(float), MPI_INFO_NULL, r->comm->comm,
                                           &base, &r->batch_win);
    if (rc != MPI_SUCCESS) {
        r->batch_win = MPI_WIN_NULL;
        return mpi_fail(err, rc, "MPI_Win_allocate_shared (node-shared batch)");
    }
    MPI_Win_set_errhandler(r->batch_win, MPI_ERRORS_RETURN);
    rc = MPI_Win_shared_query(r->batch_win, 0, &sz, &unit, out);
    if (rc == MPI_SUCCESS) /* node_sync orders it with the arenas' window */
        rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, r->batch_win);
    if (rc != MPI_SUCCESS) {
        MPI_Win_free(&r->batch_win);
        *out = NULL;
        return mpi_fail(err, rc, "MPI_Win_shared_query / lock_all (node-shared batch)");
    }
    return CV_OK;
}

void cv_reducer_owners_compute(cv_reducer *r, bool on)
{
    r->owners_compute = on && r->node_shared;
}

cv_status cv_reducer_sum_across_hosts(cv_reducer *r, struct cv_error *err)
{
    if (!r->owners_compute || !r->cross || r->cross->size < 2)
        return CV_OK;
    size_t lo, hi;
    cv_reducer_owned(r, &lo, &hi);
    return cv_comm_sum_floats(r->cross, r->arena + lo, hi - lo, err);
}

bool cv_reducer_node_shared(const cv_reducer *r)
{
    return r->node_shared;
}

int cv_reducer_hosts(const cv_reducer *r)
{
    return r->cross ? r->cross->size : 1;
}

float *cv_reducer_node_params(cv_reducer *r)
{
    return r->node_shared ? r->params : NULL;
}

float *cv_reducer_node_grads(cv_reducer *r)
{
    return r->node_shared ? r->arena : NULL;
}

/* Writes to the shared window before this are seen by every node rank
 * after it (the MPI-3 shared-memory idiom: sync, barrier, sync). */
static cv_status node_sync(const cv_reducer *r, const char *what, struct cv_error *err)
{
    MPI_Win_sync(r->win);
    if (r->batch_win != MPI_WIN_NULL)
        MPI_Win_sync(r->batch_win);
    int rc = MPI_Barrier(r->comm->comm);
    MPI_Win_sync(r->win);
    if (r->batch_win != MPI_WIN_NULL)
        MPI_Win_sync(r->batch_win);
    if (rc == MPI_SUCCESS)
        return CV_OK;
    char where[96];
    snprintf(where, sizeof(where), "MPI_Barrier (%s)", what);
    return mpi_fail(err, rc, where);
}

cv_status cv_reducer_node_barrier(const cv_reducer *r, struct cv_error *err)
{
    CV_ASSERT(r->node_shared);
    return node_sync(r, "split layers", err);
}

cv_status cv_reducer_load_params(cv_reducer *r, const float *params, struct cv_error *err)
{
    if (!r->node_shared)
        return CV_OK;
    size_t lo, hi; /* each owner copies its slice: the pages' first touch */
    cv_reducer_owned(r, &lo, &hi);
    if (params != r->params)
        memcpy(r->params + lo, params + lo, (hi - lo) * sizeof(float));
    return node_sync(r, "node-shared parameters", err);
}

cv_status cv_reducer_sum_over_slices(const cv_reducer *r, double *v, struct cv_error *err)
{
    return cv_comm_sum_doubles(r->comm, v, 1, err);
}

void cv_reducer_owned(const cv_reducer *r, size_t *lo, size_t *hi)
{
    int me = r->comm->rank;
    *lo = r->sharded ? (size_t)r->displs[me] : 0;
    *hi = r->sharded ? *lo + (size_t)r->counts[me] : r->n;
}

float *cv_reducer_owned_grads(cv_reducer *r)
{
    size_t lo, hi;
    cv_reducer_owned(r, &lo, &hi);
    return r->arena + lo;
}

void cv_reducer_begin(cv_reducer *r)
{
    r->started = 0;
    r->rc = MPI_SUCCESS;
}

static int start_bucket(cv_reducer *r, int k)
{
    float *p = r->arena + r->lo[k];
    int cnt = (int)(r->hi[k] - r->lo[k]);
    if (!r->sharded)
        return MPI_Iallreduce(MPI_IN_PLACE, p, cnt, MPI_FLOAT, MPI_SUM, r->comm->comm, &r->req[k]);
    bool root = r->owner[k] == r->comm->rank; /* only the owner needs the sum */
    return MPI_Ireduce(root ? MPI_IN_PLACE : p, p, cnt, MPI_FLOAT, MPI_SUM, r->owner[k],
                       r->comm->comm, &r->req[k]);
}

void cv_reducer_ready(void *reducer, size_t offset)
{
    cv_reducer *r = reducer;
    if (!r->overlap)
        return;
    while (r->started < r->n_buckets && r->lo[r->started] >= offset) {
        int rc = start_bucket(r, r->started);
        if (rc != MPI_SUCCESS && r->rc == MPI_SUCCESS)
            r->rc = rc;
        r->started++;
    }
    int flag; /* drive progress of what is in flight */
    if (r->started > 0)
        MPI_Testall(r->started, r->req, &flag, MPI_STATUSES_IGNORE);
}

/* acc += in, n floats, then in = 0 if `clear` (cv_reducer_clear_peers);
 * threads share the work when it is large.  Two loops: GCC 12 unswitching
 * one on `clear` left the plain sum scalar. */
static void accumulate(float *acc, float *in, long n, bool clear)
{
    if (!clear) {
#pragma omp parallel for simd schedule(static) if (n >= 65536)
        for (long i = 0; i < n; i++)
            acc[i] += in[i];
        return;
    }
#pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (long i = 0; i < n; i++) {
        acc[i] += in[i];
        in[i] = 0.0f;
    }
}

static size_t chunk_len(size_t total, size_t c)
{
    size_t start = c * RS_CHUNK;
    return start >= total ? 0 : total - start < RS_CHUNK ? total - start : RS_CHUNK;
}

/* One message of the pairwise exchange in bfloat16: `out` packed into the
 * first half of r->packed, the peer's into the second. */
static int exchange_bf16(cv_reducer *r, const float *out, long out_len, int to, long in_len,
                         int from, int tag)
{
    uint16_t *send = r->packed, *recv = r->packed + RS_CHUNK;
    cv_bf16_pack(out, send, (size_t)out_len);
    return MPI_Sendrecv(send, (int)out_len, MPI_UINT16_T, to, tag, recv, (int)in_len,
                        MPI_UINT16_T, from, tag, r->comm->comm, MPI_STATUS_IGNORE);
}

/* Replicated, compressed, after the reduce-scatter: each owner rounds its
 * float sums to bfloat16, the slices are allgathered as such, and every
 * rank (the owner too) unpacks the same values, so replicas stay identical. */
static int allgather_bf16(cv_reducer *r)
{
    uint16_t *all = r->packed + 2 * RS_CHUNK;
    size_t lo = (size_t)r->displs[r->comm->rank];
    cv_bf16_pack(r->arena + lo, all + lo, (size_t)r->counts[r->comm->rank]);
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, r->counts, r->displs,
                            MPI_UINT16_T, r->comm->comm);
    if (rc != MPI_SUCCESS)
        return rc;
    cv_bf16_unpack(all, r->arena, r->n);
    return MPI_SUCCESS;
}

/* Pairwise-exchange reduce-scatter: in round s each rank sends its copy of
 * rank (me+s)'s slice to that rank and adds the copy of its own slice that
 * rank (me-s) sends it, so after P-1 rounds each owner holds its slice's sum
 * in place, having sent and received (P-1)/P of the arena as a ring would.
 * Why not MPI_Reduce_scatter: for 23 MB at 2 ranks on shared memory,
 * Open MPI 4.1's plus MPI_Allgatherv took 9.6 ms where this plus the
 * allgather takes 2.5 and MPI_Allreduce 3.0-3.7 (tests/bench/comm_bench.c,
 * medians of 30; on a slower day 10.9, 3.4-3.8 and 4.4). */
static int reduce_scatter_pairwise(cv_reducer *r)
{
    int p = r->comm->size, me = r->comm->rank;
    float *mine = r->arena + r->displs[me];
    size_t cnt = (size_t)r->counts[me];
    for (int s = 1; s < p; s++) {
        int to = (me + s) % p, from = (me - s + p) % p;
        const float *out = r->arena + r->displs[to];
        size_t out_cnt = (size_t)r->counts[to];
        /* every rank makes the same number of exchanges (some empty), so
         * that sends and receives pair up whatever the slice lengths */
        for (size_t c = 0; c * RS_CHUNK < r->widest; c++) {
            long in_len = (long)chunk_len(cnt, c), out_len = (long)chunk_len(out_cnt, c);
            int rc = r->bf16 ? exchange_bf16(r, out + c * RS_CHUNK, out_len, to, in_len, from, s)
                             : MPI_Sendrecv(out + c * RS_CHUNK, (int)out_len, MPI_FLOAT, to, s,
                                            r->scratch, (int)in_len, MPI_FLOAT, from, s,
                                            r->comm->comm, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS)
                return rc;
            float *acc = mine + c * RS_CHUNK;
            if (r->bf16)
                cv_bf16_accumulate(acc, r->packed + RS_CHUNK, (size_t)in_len);
            else
                accumulate(acc, r->scratch, in_len, false);
        }
    }
    return MPI_SUCCESS;
}

/* Blocking reduction of the whole arena: every rank gets the sum (in
 * INT_MAX slices, cv_comm_sum_floats), or, when sharded, each owner gets
 * the sum of its slice (in place); compressed and replicated, the owners'
 * sums are then shared in bfloat16. */
static cv_status reduce_blocking(cv_reducer *r, struct cv_error *err)
{
    if (!r->sharded && !r->bf16)
        return cv_comm_sum_floats(r->comm, r->arena, r->n, err);
    int rc = reduce_scatter_pairwise(r);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Sendrecv (gradient reduce-scatter)");
    rc = r->sharded ? MPI_SUCCESS : allgather_bf16(r);
    return rc == MPI_SUCCESS ? CV_OK : mpi_fail(err, rc, "MPI_Allgatherv (bfloat16 gradients)");
}

/* Node-shared: once every rank's gradients are final, each owner adds its
 * peers' copies of its slice to its own, reading their memory directly,
 * then (several hosts) allreduces the slice with its owners elsewhere.
 * With `pending` and one host, the last peer's copy is handed back instead
 * of added (cv_reducer_finish_pending). */
static cv_status reduce_node_shared(cv_reducer *r, float **pending, struct cv_error *err)
{
    cv_status st = node_sync(r, "node-shared gradients", err);
    if (r->owners_compute) /* cv_model_owned_grads, then cv_reducer_sum_across_hosts */
        return st;
    int me = r->comm->rank, p = r->comm->size;
    size_t lo = (size_t)r->displs[me], cnt = (size_t)r->counts[me];
    bool across_hosts = r->cross && r->cross->size > 1; /* needs the whole sum first */
    int last = pending && !across_hosts && p > 1 ? (me == p - 1 ? p - 2 : p - 1) : -1;
    for (int q = 0; st == CV_OK && q < p; q++)
        if (q != me && q != last)
            accumulate(r->arena + lo, r->grads[q] + lo, (long)cnt, r->clear_peers);
    if (st == CV_OK && last >= 0)
        *pending = r->grads[last] + lo;
    if (st == CV_OK && across_hosts)
        st = cv_comm_sum_floats(r->cross, r->arena + lo, cnt, err);
    return st;
}

cv_status cv_reducer_finish(cv_reducer *r, double *wait_s, struct cv_error *err)
{
    return cv_reducer_finish_pending(r, wait_s, NULL, err);
}

cv_status cv_reducer_finish_pending(cv_reducer *r, double *wait_s, float **pending,
                                    struct cv_error *err)
{
    double t0 = cv_now();
    int rc = MPI_SUCCESS;
    if (pending)
        *pending = NULL;
    if (r->node_shared) {
        cv_status st = reduce_node_shared(r, pending, err);
        if (wait_s)
            *wait_s = cv_now() - t0;
        return st;
    }
    if (r->comm->size > 1 && !r->overlap) {
        cv_status st = reduce_blocking(r, err);
        if (wait_s)
            *wait_s = cv_now() - t0;
        return st;
    }
    if (r->overlap) {
        cv_reducer_ready(r, 0); /* start whatever backward did not */
        rc = MPI_Waitall(r->started, r->req, MPI_STATUSES_IGNORE);
    }
    if (wait_s)
        *wait_s = cv_now() - t0;
    if (r->rc != MPI_SUCCESS)
        return mpi_fail(err, r->rc, r->sharded ? "MPI_Ireduce (gradients)" : "MPI_Iallreduce");
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Waitall");
    return CV_OK;
}

cv_status cv_reducer_share(const cv_reducer *r, float *arena, struct cv_error *err)
{
    if (!r->sharded)
        return CV_OK;
    if (r->node_shared && arena == r->params)
        return node_sync(r, "sharded update", err);
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, arena, r->counts, r->displs,
                            MPI_FLOAT, r->comm->comm);
    return rc == MPI_SUCCESS ? CV_OK : mpi_fail(err, rc, "MPI_Allgatherv (sharded update)");
}
