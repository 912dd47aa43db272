/*
 * comm.c - MPI behind the cv_comm interface: a duplicated communicator per
 * group (never a global one), MPI_ERRORS_RETURN with messages from
 * MPI_Error_string, error agreement (MAX of the status, then the message of
 * the lowest failing rank), and the coordinator's idle messages.  The
 * gradient exchange is not here: src/reducer.h.
 *
 * Determinism: a sum allreduce hands every rank the same bits for a given
 * algorithm; tests check replica checksums after training with 2 and 3 ranks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm_internal.h"
#include "util.h"

cv_status cv__mpi_fail(struct cv_error *err, int rc, const char *what)
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
        return cv__mpi_fail(err, rc, "MPI_Comm_dup");
    return wrap(dup, out, err);
}

cv_status cv_comm_split(const cv_comm *parent, int color, int key, cv_comm **out,
                        struct cv_error *err)
{
    MPI_Comm sub;
    int rc = MPI_Comm_split(parent->comm, color < 0 ? MPI_UNDEFINED : color, key, &sub);
    *out = NULL;
    if (rc != MPI_SUCCESS)
        return cv__mpi_fail(err, rc, "MPI_Comm_split");
    if (sub == MPI_COMM_NULL)
        return CV_OK;
    return wrap(sub, out, err);
}

cv_status cv__comm_split_node(const cv_comm *c, cv_comm **node, cv_comm **cross, bool *uniform,
                              struct cv_error *err)
{
    MPI_Comm sub;
    int rank = 0, size = 0;
    *node = *cross = NULL;
    int rc = MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &sub);
    if (rc != MPI_SUCCESS)
        return cv__mpi_fail(err, rc, "MPI_Comm_split_type (ranks of one host)");
    MPI_Comm_rank(sub, &rank);
    MPI_Comm_size(sub, &size);
    /* the collectives first, so that a local failure cannot leave peers waiting */
    cv_status st = cv_comm_split(c, rank, c->rank, cross, err);
    int sizes[2] = {size, -size};
    if (st == CV_OK)
        st = cv__comm_max_ints(c, sizes, 2, err); /* the largest and the smallest host */
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
            return cv__mpi_fail(err, rc, "MPI_Allreduce");
        off += (size_t)cnt;
    }
    return CV_OK;
}

cv_status cv__comm_sum_floats(const cv_comm *c, float *buf, size_t n, struct cv_error *err)
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

cv_status cv__comm_max_ints(const cv_comm *c, int *buf, int n, struct cv_error *err)
{
    return allreduce(c, buf, (size_t)n, MPI_INT, MPI_MAX, err);
}

cv_status cv_comm_bcast(const cv_comm *c, void *buf, size_t bytes, int root, struct cv_error *err)
{
    for (size_t off = 0; off < bytes;) {
        int cnt = bytes - off > (1u << 30) ? (1 << 30) : (int)(bytes - off);
        int rc = MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, c->comm);
        if (rc != MPI_SUCCESS)
            return cv__mpi_fail(err, rc, "MPI_Bcast");
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
        st = cv__mpi_fail(err, rc, "MPI_Gatherv");
    free(counts);
    free(displs);
    return st;
}

cv_status cv_comm_barrier(const cv_comm *c, struct cv_error *err)
{
    int rc = MPI_Barrier(c->comm);
    return rc == MPI_SUCCESS ? CV_OK : cv__mpi_fail(err, rc, "MPI_Barrier");
}

cv_status cv_comm_agree(const cv_comm *c, cv_status local, struct cv_error *err)
{
    /* [0] worst status, [1] lowest failing rank (as -rank for MAX) */
    int v[2] = {(int)local, local != CV_OK ? -c->rank : -c->size};
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_MAX, c->comm);
    if (rc != MPI_SUCCESS)
        return cv__mpi_fail(err, rc, "MPI_Allreduce (error agreement)");
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
        return cv__mpi_fail(err, rc, "MPI_Bcast (error agreement)");
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
            return cv__mpi_fail(err, rc, what);
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
    return rc == MPI_SUCCESS ? CV_OK : cv__mpi_fail(err, rc, "MPI_Send");
}

cv_status cv_comm_try_recv(const cv_comm *c, void *buf, size_t bytes, int tag, int *from,
                           struct cv_error *err)
{
    int flag = 0;
    MPI_Status status;
    *from = -1;
    int rc = MPI_Iprobe(MPI_ANY_SOURCE, tag, c->comm, &flag, &status);
    if (rc != MPI_SUCCESS)
        return cv__mpi_fail(err, rc, "MPI_Iprobe");
    if (!flag)
        return CV_OK;
    rc = MPI_Recv(buf, (int)bytes, MPI_BYTE, status.MPI_SOURCE, tag, c->comm, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
        return cv__mpi_fail(err, rc, "MPI_Recv");
    *from = status.MPI_SOURCE;
    return CV_OK;
}

cv_status cv_comm_recv_idle(const cv_comm *c, void *buf, size_t bytes, int src, int tag,
                            struct cv_error *err)
{
    MPI_Request req;
    int rc = MPI_Irecv(buf, (int)bytes, MPI_BYTE, src, tag, c->comm, &req);
    if (rc != MPI_SUCCESS)
        return cv__mpi_fail(err, rc, "MPI_Irecv");
    return wait_idle(&req, "MPI_Irecv", err);
}

cv_status cv_comm_bcast_idle(const cv_comm *c, void *buf, size_t bytes, int root,
                             struct cv_error *err)
{
    MPI_Request req;
    int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, c->comm, &req);
    if (rc != MPI_SUCCESS)
        return cv__mpi_fail(err, rc, "MPI_Ibcast");
    return wait_idle(&req, "MPI_Ibcast", err);
}

cv_status cv_comm_barrier_idle(const cv_comm *c, struct cv_error *err)
{
    MPI_Request req;
    int rc = MPI_Ibarrier(c->comm, &req);
    if (rc != MPI_SUCCESS)
        return cv__mpi_fail(err, rc, "MPI_Ibarrier");
    return wait_idle(&req, "MPI_Ibarrier", err);
}

uint64_t cv_hash_bytes(const void *buf, size_t bytes)
{
    /* FNV-1a over 8-byte little-endian words (then the tail bytes): the same
     * bits give the same hash on every rank, much faster than byte-wise */
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
        return cv__mpi_fail(err, rc, "MPI_Allreduce (checksum)");
    *same = mn == mx;
    if (hash)
        *hash = h;
    return CV_OK;
}
