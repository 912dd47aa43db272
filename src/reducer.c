/*
 * reducer.c - the exchange policy (which strategy runs, from cfg.comm and
 * the host layout) and the calls every strategy shares (src/reducer.h).
 * Why each strategy exists, with the measurements: docs/performance.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"
#include "reducer.h"
#include "util.h"

size_t cv__slice_start(size_t n, int q, int p)
{
    if (q >= p)
        return n;
    size_t s = (size_t)((double)n * q / p) & ~(size_t)15;
    return s < n ? s : n;
}

cv_status cv__plan_slices(const cv_reducer *r, int p, int **counts, int **displs, size_t *widest,
                          const char *what, struct cv_error *err)
{
    size_t n = r->count;
    if (r->first + n > (size_t)INT32_MAX) /* MPI's counts and displacements are ints */
        return cv_fail(err, CV_INVAL, "%s: %zu parameters: at most %d can be sliced over ranks",
                       what, r->first + n, INT32_MAX);
    *counts = cv_calloc((size_t)p, sizeof(int));
    *displs = cv_calloc((size_t)p, sizeof(int));
    if (!*counts || !*displs)
        return cv_fail(err, CV_NOMEM, "reducer: out of memory");
    *widest = 0;
    for (int q = 0; q < p; q++) {
        size_t a = cv__slice_start(n, q, p), b = cv__slice_start(n, q + 1, p);
        (*displs)[q] = (int)(r->first + a);
        (*counts)[q] = (int)(b - a);
        *widest = b - a > *widest ? b - a : *widest;
    }
    return CV_OK;
}

void cv__accumulate(float *acc, const float *in, long n)
{
#pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (long i = 0; i < n; i++)
        acc[i] += in[i];
}

/* Gradients above this many bytes are sharded under shard_optimizer =
 * auto: there the update's pass over the arena costs more than the extra
 * collective (docs/performance.md#sharded-optimizer). */
#define SHARD_ABOVE_BYTES ((size_t)4 << 20)

/* The sharded optimizer under comm.shard_optimizer (auto: large arenas). */
static bool shard(const struct cv_config *cfg, size_t n)
{
    if (cfg->comm.shard_optimizer != CV_AUTO)
        return cfg->comm.shard_optimizer == CV_ON;
    return n * sizeof(float) > SHARD_ABOVE_BYTES && n <= (size_t)INT32_MAX;
}

/* Node-shared arenas where every host runs the same number (> 1) of the
 * group's ranks; *fallback otherwise. */
static cv_status try_node(cv_reducer *r, bool *fallback, struct cv_error *err)
{
    cv_comm *node = NULL, *cross = NULL;
    bool uniform = false;
    cv_status st = cv__comm_split_node(r->comm, &node, &cross, &uniform, err);
    *fallback = st == CV_OK && (!uniform || cv_comm_size(node) < 2);
    if (st != CV_OK || *fallback) {
        cv_comm_free(node);
        cv_comm_free(cross);
        return st;
    }
    return cv__reducer_node(r, node, cross, err);
}

/* One rank has nothing to exchange (the allreduce strategy is then a
 * no-op); bfloat16 compression is a replicated exchange of its own;
 * node-shared arenas are the default wherever every host runs the same
 * number (> 1) of ranks; else the sharded optimizer when it pays (shard),
 * else one allreduce. */
cv_status cv_reducer_create(const struct cv_config *cfg, const cv_comm *comm, cv_model *m,
                            cv_reducer **out, struct cv_error *err)
{
    cv_reducer *r = cv_calloc(1, sizeof(*r));
    *out = NULL;
    cv_status st = cv_comm_agree(comm, r ? CV_OK : cv_fail(err, CV_NOMEM, "reducer: out of memory"),
                                 err);
    if (st != CV_OK) {
        free(r);
        return st;
    }
    size_t lo, hi;
    cv_model_trainable_span(m, &lo, &hi);
    *r = (cv_reducer){.comm = comm,
                      .model = m,
                      .grads = cv_model_grads(m),
                      .n = cv_model_n_params(m),
                      .first = lo,
                      .count = hi - lo,
                      .lo = lo,
                      .hi = hi};
    bool many = cv_comm_size(comm) > 1, fallback = true;
    bool bf16 = cfg->comm.compression == CV_COMPRESS_BF16;
    if (many && !bf16 && cfg->comm.shared_memory != CV_OFF && cfg->comm.shard_optimizer != CV_OFF)
        st = try_node(r, &fallback, err);
    if (st == CV_OK && fallback)
        st = many && (bf16 || shard(cfg, r->count)) ? cv__reducer_sharded(r, bf16, err)
                                                    : cv__reducer_allreduce(r, err);
    if (st != CV_OK) {
        cv_reducer_free(r);
        return st;
    }
    size_t len = strlen(r->what);
    if (r->count < r->n && len < sizeof(r->what))
        snprintf(r->what + len, sizeof(r->what) - len,
                 "; the %zu parameters of frozen layers outside the trainable span are not "
                 "exchanged",
                 r->n - r->count);
    *out = r;
    return CV_OK;
}

void cv_reducer_free(cv_reducer *r)
{
    if (!r)
        return;
    if (r->ops && r->ops->free_impl)
        r->ops->free_impl(r);
    free(r);
}

cv_status cv_reducer_adopt(cv_reducer *r, struct cv_error *err)
{
    return r->ops->adopt ? r->ops->adopt(r, err) : CV_OK;
}

cv_status cv_reducer_finish(cv_reducer *r, double *wait_s, struct cv_error *err)
{
    double t0 = cv_now();
    cv_status st = r->ops->finish(r, err);
    if (wait_s)
        *wait_s += cv_now() - t0;
    return st;
}

void cv_reducer_owned(const cv_reducer *r, size_t *lo, size_t *hi)
{
    *lo = r->lo;
    *hi = r->hi;
}

float *cv_reducer_owned_grads(cv_reducer *r)
{
    return r->grads + r->lo;
}

cv_status cv_reducer_share(cv_reducer *r, float *arena, struct cv_error *err)
{
    return r->ops->share ? r->ops->share(r, arena, err) : CV_OK;
}

cv_status cv_reducer_sum_over_slices(cv_reducer *r, double *v, struct cv_error *err)
{
    return r->slices ? cv_comm_sum_doubles(r->slices, v, 1, err) : CV_OK;
}

const char *cv_reducer_describe(const cv_reducer *r)
{
    return r->what;
}
