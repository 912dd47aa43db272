/*
 * reducer_node.c - node-shared arenas, the hierarchical exchange: the ranks
 * of one host keep one parameter arena and their gradient arenas in one
 * MPI-3 shared window.  Each rank owns a slice of the arena (ZeRO stage 1
 * over the host's ranks); after backward the owner sums its peers'
 * gradients for that slice straight from their memory, with no copy in
 * between, and with several hosts allreduces the slice with its owners on
 * the other hosts.  The owners update their slices of the one parameter
 * arena, so sharing the update is a barrier.  Used when every host runs the
 * same number (> 1) of the group's ranks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"
#include "reducer.h"
#include "util.h"

struct node {
    cv_comm *node, *cross; /* this host's ranks; the same slice's owners on every host */
    MPI_Win win;           /* params (on node rank 0) and every rank's grads */
    bool locked;
    float *params;        /* (n) the host's parameter arena */
    float **grads;        /* (node size) each node rank's gradient arena */
    int *counts, *displs; /* (node size) each node rank's slice, for the moments */
};

/* Writes to the window before this are seen by every node rank after it
 * (the MPI-3 shared-memory idiom: sync, barrier, sync). */
static cv_status node_sync(const struct node *s, const char *what, struct cv_error *err)
{
    MPI_Win_sync(s->win);
    int rc = MPI_Barrier(s->node->comm);
    MPI_Win_sync(s->win);
    if (rc == MPI_SUCCESS)
        return CV_OK;
    char where[96];
    snprintf(where, sizeof(where), "MPI_Barrier (%s)", what);
    return cv__mpi_fail(err, rc, where);
}

static cv_status finish(cv_reducer *r, struct cv_error *err)
{
    struct node *s = r->impl;
    cv_status st = node_sync(s, "node-shared gradients", err);
    long cnt = (long)(r->hi - r->lo);
    for (int q = 0; st == CV_OK && q < s->node->size; q++)
        if (q != s->node->rank)
            cv__accumulate(r->grads + r->lo, s->grads[q] + r->lo, cnt);
    if (st == CV_OK && s->cross->size > 1)
        st = cv__comm_sum_floats(s->cross, r->grads + r->lo, (size_t)cnt, err);
    return st;
}

/* The parameters: a barrier publishes the owners' updates.  Any other
 * arena of the same layout (optimizer moments): gathered over the host;
 * every host holds the same slices. */
static cv_status share(cv_reducer *r, float *arena, struct cv_error *err)
{
    struct node *s = r->impl;
    if (arena == s->params)
        return node_sync(s, "sharded update", err);
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, arena, s->counts, s->displs,
                            MPI_FLOAT, s->node->comm);
    return rc == MPI_SUCCESS ? CV_OK : cv__mpi_fail(err, rc, "MPI_Allgatherv (moments)");
}

/* Each owner copies its slice of the model's parameters into the shared
 * arena (the pages' first touch, on its NUMA node), node rank 0 the frozen
 * parameters outside the trainable span, then the model computes on the
 * shared arenas. */
static cv_status adopt(cv_reducer *r, struct cv_error *err)
{
    struct node *s = r->impl;
    const float *own = cv_model_params(r->model);
    size_t end = r->first + r->count;
    if (own != s->params)
        memcpy(s->params + r->lo, own + r->lo, (r->hi - r->lo) * sizeof(float));
    if (own != s->params && s->node->rank == 0) {
        memcpy(s->params, own, r->first * sizeof(float));
        memcpy(s->params + end, own + end, (r->n - end) * sizeof(float));
    }
    cv_status st = node_sync(s, "node-shared parameters", err);
    if (st == CV_OK && own != s->params)
        cv_model_use_arenas(r->model, s->params, r->grads);
    return st;
}

static void free_impl(cv_reducer *r)
{
    struct node *s = r->impl;
    if (!s)
        return;
    if (s->locked)
        MPI_Win_unlock_all(s->win);
    if (s->win != MPI_WIN_NULL)
        MPI_Win_free(&s->win);
    cv_comm_free(s->cross);
    cv_comm_free(s->node);
    free(s->grads);
    free(s->counts);
    free(s->displs);
    free(s);
}

static const struct cv_reducer_ops node_ops = {
    .finish = finish,
    .share = share,
    .adopt = adopt,
    .free_impl = free_impl,
};

/* One window: node rank 0 holds the parameter arena and its gradients (a
 * cache line apart), every other rank its gradients.  Non-contiguous, so
 * each rank's part is its own page-aligned allocation, on the NUMA node of
 * the rank that first writes it. */
static cv_status alloc_window(cv_reducer *r, struct node *s, struct cv_error *err)
{
    size_t params_len = (r->n + 15) & ~(size_t)15;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    MPI_Aint bytes = (MPI_Aint)((r->n + (s->node->rank == 0 ? params_len : 0)) * sizeof(float));
    float *base = NULL;
    int rc = MPI_Win_allocate_shared(bytes, (int)sizeof(float), info, s->node->comm, &base,
                                     &s->win);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS) {
        s->win = MPI_WIN_NULL;
        return cv__mpi_fail(err, rc, "MPI_Win_allocate_shared (node-shared arenas)");
    }
    MPI_Win_set_errhandler(s->win, MPI_ERRORS_RETURN);
    for (int q = 0; q < s->node->size && rc == MPI_SUCCESS; q++) {
        MPI_Aint sz;
        int unit;
        float *p = NULL;
        rc = MPI_Win_shared_query(s->win, q, &sz, &unit, &p);
        if (q == 0)
            s->params = p;
        s->grads[q] = q == 0 ? p + params_len : p;
    }
    if (rc == MPI_SUCCESS) /* one passive epoch for the window's life: MPI_Win_sync orders */
        rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
    s->locked = rc == MPI_SUCCESS;
    if (rc == MPI_SUCCESS)
        r->grads = s->grads[s->node->rank];
    return rc == MPI_SUCCESS ? CV_OK : cv__mpi_fail(err, rc, "MPI_Win_shared_query / lock_all");
}

static cv_status plan(cv_reducer *r, struct node *s, struct cv_error *err)
{
    size_t widest;
    if (r->n == 0)
        return cv_fail(err, CV_INVAL, "node-shared arenas: a model without parameters");
    cv_status st = cv__plan_slices(r, s->node->size, &s->counts, &s->displs, &widest,
                                   "node-shared arenas (comm.shared_memory)", err);
    if (st != CV_OK)
        return st;
    s->grads = cv_calloc((size_t)s->node->size, sizeof(float *));
    if (!s->grads)
        return cv_fail(err, CV_NOMEM, "reducer: out of memory");
    r->lo = (size_t)s->displs[s->node->rank];
    r->hi = r->lo + (size_t)s->counts[s->node->rank];
    return CV_OK;
}

cv_status cv__reducer_node(cv_reducer *r, cv_comm *node, cv_comm *cross, struct cv_error *err)
{
    struct node *s = cv_calloc(1, sizeof(*s));
    int ranks = node->size, hosts = cross->size;
    if (s) {
        *s = (struct node){.node = node, .cross = cross, .win = MPI_WIN_NULL};
        r->impl = s;
        r->ops = &node_ops;
        r->slices = node;
    } else {
        cv_comm_free(node);
        cv_comm_free(cross);
    }
    cv_status st = s ? CV_OK : cv_fail(err, CV_NOMEM, "reducer: out of memory");
    /* agreed first: the window's allocation is collective */
    st = cv_comm_agree(r->comm, st == CV_OK ? plan(r, s, err) : st, err);
    if (st == CV_OK)
        st = cv_comm_agree(r->comm, alloc_window(r, s, err), err);
    snprintf(r->what, sizeof(r->what),
             "node-shared arenas: each slice's owner sums the host's "
             "%d gradient copies from shared memory%s, optimizer sharded over the host's ranks",
             ranks, hosts > 1 ? ", then allreduces the slice across hosts" : "");
    return st;
}
