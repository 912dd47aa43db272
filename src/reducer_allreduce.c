/*
 * reducer_allreduce.c - the replicated exchange: every rank owns the whole
 * arena and gets the whole sum.  By default one MPI_Allreduce after
 * backward.  With comm.overlap the arena is cut into buckets from its end
 * (backward writes the last layers first) and each bucket is summed as soon
 * as backward has made it final, as Horovod and DDP do: backward only posts
 * how many buckets are final, and a communication thread of this rank
 * allreduces them while backward goes on.  (A nonblocking MPI_Iallreduce
 * would advance only inside MPI calls, which a layer's backward does not
 * make, and Open MPI 4.1 picks a slower algorithm for it at few ranks:
 * docs/performance.md#overlap.)  The two threads never call MPI at the same
 * time (MPI_THREAD_SERIALIZED): the thread calls MPI only between the first
 * post of a step and the end of finish().  With one rank there is nothing
 * to exchange.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "comm_internal.h"
#include "reducer.h"
#include "util.h"

struct allreduce {
    size_t bucket; /* floats per bucket */
    int n_buckets; /* buckets count from the arena's end */
    size_t *lo;    /* (n_buckets) bucket k starts here, ends at lo[k - 1] (or n) */
    bool has_thread;
    pthread_t thread;
    pthread_mutex_t mu;        /* guards the fields below */
    pthread_cond_t wake, done; /* to the thread; to finish() */
    int posted;                /* buckets backward has made final this step */
    bool complete;             /* the thread has summed every bucket (then idles) */
    bool quit;
    cv_status st;        /* the first failure of the step ... */
    struct cv_error err; /* ... and its message */
};

static size_t bucket_end(const cv_reducer *r, const struct allreduce *a, int k)
{
    return k == 0 ? r->n : a->lo[k - 1];
}

/* Sum buckets [from, to) in the blocking collective; the first failure is
 * kept.  Runs on the communication thread. */
static cv_status sum_buckets(cv_reducer *r, struct allreduce *a, int from, int to, cv_status st,
                             struct cv_error *err)
{
    for (int k = from; k < to; k++) {
        size_t lo = a->lo[k];
        cv_status s = cv__comm_sum_floats(r->comm, r->grads + lo, bucket_end(r, a, k) - lo,
                                          st == CV_OK ? err : NULL);
        st = st == CV_OK ? s : st;
    }
    return st;
}

static void *communicate(void *arg)
{
    cv_reducer *r = arg;
    struct allreduce *a = r->impl;
    int done = 0;
    cv_status st = CV_OK;
    struct cv_error err;
    cv_error_clear(&err);
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->quit && a->posted == done)
            pthread_cond_wait(&a->wake, &a->mu);
        if (a->quit)
            break;
        int posted = a->posted;
        pthread_mutex_unlock(&a->mu);
        st = sum_buckets(r, a, done, posted, st, &err);
        done = posted;
        pthread_mutex_lock(&a->mu);
        if (done < a->n_buckets)
            continue;
        a->complete = true; /* no more MPI calls until the next step's first post */
        a->st = st;
        a->err = err;
        st = CV_OK;
        done = 0;
        pthread_cond_signal(&a->done);
        while (!a->quit && a->complete)
            pthread_cond_wait(&a->wake, &a->mu);
        if (a->quit)
            break;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Backward made [offset, n) final: post the buckets inside it. */
static void post_ready(cv_reducer *r, size_t offset)
{
    struct allreduce *a = r->impl;
    pthread_mutex_lock(&a->mu);
    int k = a->posted;
    while (k < a->n_buckets && a->lo[k] >= offset)
        k++;
    if (k > a->posted) {
        a->posted = k;
        pthread_cond_signal(&a->wake);
    }
    pthread_mutex_unlock(&a->mu);
}

static cv_status finish_overlapped(cv_reducer *r, struct cv_error *err)
{
    struct allreduce *a = r->impl;
    pthread_mutex_lock(&a->mu);
    a->posted = a->n_buckets; /* whatever backward did not post */
    pthread_cond_signal(&a->wake);
    while (!a->complete)
        pthread_cond_wait(&a->done, &a->mu);
    cv_status st = a->st;
    if (st != CV_OK && err)
        *err = a->err;
    a->complete = false;
    a->posted = 0;
    pthread_cond_signal(&a->wake); /* back to waiting for the next step's posts */
    pthread_mutex_unlock(&a->mu);
    return st;
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
    if (a->has_thread) {
        pthread_mutex_lock(&a->mu);
        a->quit = true;
        pthread_cond_signal(&a->wake);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
        pthread_cond_destroy(&a->wake);
        pthread_cond_destroy(&a->done);
        pthread_mutex_destroy(&a->mu);
    }
    free(a->lo);
    free(a);
}

static const struct cv_reducer_ops blocking_ops = {
    .finish = finish_blocking,
    .free_impl = free_impl,
};

static const struct cv_reducer_ops overlapped_ops = {
    .ready = post_ready,
    .finish = finish_overlapped,
    .free_impl = free_impl,
};

/* Buckets of at most `bucket` floats, from the end. */
static cv_status plan_buckets(cv_reducer *r, struct allreduce *a, struct cv_error *err)
{
    size_t nb = (r->n + a->bucket - 1) / a->bucket;
    a->lo = cv_calloc(nb ? nb : 1, sizeof(size_t));
    if (!a->lo)
        return cv_fail(err, CV_NOMEM, "reducer: out of memory for %zu buckets", nb);
    for (size_t hi = r->n; hi > 0; a->n_buckets++) {
        size_t lo = hi > a->bucket ? hi - a->bucket : 0;
        a->lo[a->n_buckets] = lo;
        hi = lo;
    }
    return CV_OK;
}

static cv_status start_thread(cv_reducer *r, struct allreduce *a, struct cv_error *err)
{
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (level < MPI_THREAD_SERIALIZED)
        return cv_fail(err, CV_MPI,
                       "comm.overlap needs MPI initialised with MPI_THREAD_SERIALIZED or more "
                       "(its communication thread calls MPI)");
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->wake, NULL);
    pthread_cond_init(&a->done, NULL);
    if (pthread_create(&a->thread, NULL, communicate, r) != 0) {
        pthread_cond_destroy(&a->wake);
        pthread_cond_destroy(&a->done);
        pthread_mutex_destroy(&a->mu);
        return cv_fail(err, CV_NOMEM, "comm.overlap: cannot start the communication thread");
    }
    a->has_thread = true;
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
        st = plan_buckets(r, a, err);
    }
    /* one bucket has nothing to overlap with */
    if (st == CV_OK && overlap && a->n_buckets > 1)
        st = start_thread(r, a, err);
    if (st == CV_OK && a->has_thread)
        r->ops = &overlapped_ops;
    snprintf(r->what, sizeof(r->what), "%s",
             r->comm->size == 1 ? "one rank: nothing to exchange"
             : a && a->has_thread
                 ? "allreduce in buckets during backward (a communication thread sums them), "
                   "optimizer replicated"
                 : "allreduce after backward, optimizer replicated");
    return cv_comm_agree(r->comm, st, err);
}
