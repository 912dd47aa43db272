/*
 * shard.c - a rank's rows of a split in memory and the batch schedule
 * documented in caviar/shard.h.  Batches are gathered into preallocated
 * buffers: no allocation, copy of the dataset or HDF5 call in the step.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/shard.h"
#include "util.h"

struct cv_shard {
    struct cv_dataset_info info;
    long long n, first; /* local rows, global id of the first */
    int max_batch;
    float *x;        /* (n, features) */
    int32_t *y;      /* (n) or (n, y_steps) class ids, or NULL */
    int32_t *len;    /* (n) sequence lengths, or NULL */
    int32_t *blen;   /* (max_batch) lengths of the batch */
    float *yv;       /* (n, target_dim), or NULL */
    long long *perm; /* (n) local order of this epoch */
    float *bx;       /* (max_batch, features) batch buffers */
    float *own_bx;   /* bx unless the caller's (cv_shard_gather_into) */
    int32_t *by;
    float *byv;
    long long *brows; /* (max_batch) global row ids of the batch */
    long long *bidx;  /* (max_batch) local indices for slices */
    float *aug;       /* (threads, features) augmentation scratch */
};

long long cv_sched_rows(long long n, int rank, int world)
{
    return n / world + (rank < n % world);
}

static long long first_row(long long n, int rank, int world)
{
    long long q = n / world, r = n % world;
    return (long long)rank * q + (rank < r ? rank : r);
}

int cv_sched_local_batch(int global_batch, int rank, int world)
{
    return global_batch / world + (rank < global_batch % world);
}

long long cv_sched_steps(long long n, int global_batch, int world)
{
    long long steps = 0;
    for (int r = 0; r < world; r++) {
        long long nr = cv_sched_rows(n, r, world),
                  br = cv_sched_local_batch(global_batch, r, world);
        long long s = br > 0 ? (nr + br - 1) / br : 0;
        steps = s > steps ? s : steps;
    }
    return steps;
}

int cv_sched_count(long long n, int global_batch, int rank, int world, long long step)
{
    long long nr = cv_sched_rows(n, rank, world),
              br = cv_sched_local_batch(global_batch, rank, world);
    long long left = nr - step * br;
    return (int)(left < 0 ? 0 : left > br ? br : left);
}

long long cv_sched_global_count(long long n, int global_batch, int world, long long step)
{
    long long total = 0;
    for (int r = 0; r < world; r++)
        total += cv_sched_count(n, global_batch, r, world, step);
    return total;
}

static cv_status alloc_shard(cv_shard *s, struct cv_error *err)
{
    size_t f = (size_t)s->info.features, n = (size_t)s->n, mb = (size_t)s->max_batch;
    size_t t = (size_t)s->info.target_dim;
    s->x = cv_calloc_big(n * f, sizeof(float));
    s->perm = cv_calloc(n, sizeof(long long));
    s->bx = s->own_bx = cv_calloc(mb * f, sizeof(float));
    s->brows = cv_calloc(mb, sizeof(long long));
    s->bidx = cv_calloc(mb, sizeof(long long));
    s->aug = cv_calloc((size_t)cv_num_threads() * f, sizeof(float));
    size_t ys = s->info.y_steps > 0 ? (size_t)s->info.y_steps : 1; /* classes per row */
    if (s->info.has_lengths) {
        s->len = cv_calloc(n, sizeof(int32_t));
        s->blen = cv_calloc(mb, sizeof(int32_t));
        if (!s->len || !s->blen)
            return cv_fail(err, CV_NOMEM, "out of memory for the lengths of %lld rows", s->n);
    }
    if (s->info.classes > 0) {
        s->y = cv_calloc(n * ys, sizeof(int32_t));
        s->by = cv_calloc(mb * ys, sizeof(int32_t));
    } else {
        s->yv = cv_calloc(n * t, sizeof(float));
        s->byv = cv_calloc(mb * t, sizeof(float));
    }
    if (!s->x || !s->perm || !s->bx || !s->brows || !s->bidx || !s->aug || (!s->y && !s->yv) ||
        (!s->by && !s->byv))
        return cv_fail(err, CV_NOMEM, "out of memory for a shard of %lld x %d floats", s->n,
                       s->info.features);
    return CV_OK;
}

cv_status cv_shard_open(const char *spec, int rank, int world, int max_batch, cv_shard **out,
                        struct cv_error *err)
{
    cv_shard *s = cv_calloc(1, sizeof(*s));
    *out = NULL;
    if (!s)
        return cv_fail(err, CV_NOMEM, "out of memory");
    cv_status st = cv_dataset_probe(spec, &s->info, err);
    if (st == CV_OK) {
        s->n = cv_sched_rows(s->info.n_rows, rank, world);
        s->first = first_row(s->info.n_rows, rank, world);
        s->max_batch = max_batch;
        st = alloc_shard(s, err);
    }
    if (st == CV_OK && s->n > 0)
        st = cv_dataset_read_rows(spec, s->first, s->n, s->x, s->y, s->yv, err);
    if (st == CV_OK && s->n > 0 && s->len)
        st = cv_dataset_read_lengths(spec, s->first, s->n, s->len, err);
    if (st == CV_OK && s->n > 0 && s->info.y_steps)
        st = cv_dataset_read_step_classes(spec, s->first, s->n, s->y, err);
    if (st != CV_OK) {
        cv_shard_free(s);
        return st;
    }
    for (long long i = 0; i < s->n; i++)
        s->perm[i] = i;
    *out = s;
    return CV_OK;
}

void cv_shard_free(cv_shard *s)
{
    if (!s)
        return;
    free(s->x);
    free(s->y);
    free(s->yv);
    free(s->len);
    free(s->blen);
    free(s->perm);
    free(s->own_bx);
    free(s->by);
    free(s->byv);
    free(s->brows);
    free(s->bidx);
    free(s->aug);
    free(s);
}

const struct cv_dataset_info *cv_shard_info(const cv_shard *s)
{
    return &s->info;
}

long long cv_shard_rows(const cv_shard *s)
{
    return s->n;
}

long long cv_shard_first_row(const cv_shard *s)
{
    return s->first;
}

const int32_t *cv_shard_labels(const cv_shard *s)
{
    return s->y;
}

const float *cv_shard_targets(const cv_shard *s)
{
    return s->yv;
}

void cv_shard_feature_sums(const cv_shard *s, double *sum, double *sumsq)
{
    int f = s->info.features;
    for (int j = 0; j < f; j++)
        sum[j] = sumsq[j] = 0;
    for (long long i = 0; i < s->n; i++) { /* row-major: stream through memory once */
        const float *row = s->x + (size_t)i * f;
        for (int j = 0; j < f; j++) {
            double v = row[j];
            sum[j] += v;
            sumsq[j] += v * v;
        }
    }
}

void cv_shard_normalize(cv_shard *s, const float *mean, const float *std)
{
    int f = s->info.features;
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < s->n; i++)
        for (int j = 0; j < f; j++)
            s->x[(size_t)i * f + j] = (s->x[(size_t)i * f + j] - mean[j]) / std[j];
}

void cv_shard_shuffle(cv_shard *s, uint64_t seed, long long epoch, bool shuffle)
{
    for (long long i = 0; i < s->n; i++)
        s->perm[i] = i;
    if (!shuffle)
        return;
    struct cv_rng rng; /* keyed by the shard's first global row: rank-independent of P's order */
    cv_rng_seed(&rng, seed, CV_RNG_SHUFFLE, (uint64_t)epoch, (uint64_t)s->first);
    for (long long i = s->n - 1; i > 0; i--) { /* Fisher-Yates */
        long long j = (long long)cv_rng_below(&rng, (uint64_t)i + 1);
        long long t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
    }
}

static void gather(cv_shard *s, const long long *local, int n, struct cv_batch *b)
{
    size_t f = (size_t)s->info.features, t = (size_t)s->info.target_dim;
    size_t ys = s->info.y_steps > 0 ? (size_t)s->info.y_steps : 1;
    /* rows at random places in the shard: the copies wait on memory, so
     * the threads' loads overlap (docs/performance.md) */
#pragma omp parallel for schedule(static) if ((size_t)n * f >= 65536)
    for (int i = 0; i < n; i++) {
        long long r = local[i];
        memcpy(s->bx + (size_t)i * f, s->x + (size_t)r * f, f * sizeof(float));
        if (s->len)
            s->blen[i] = s->len[r];
        if (s->y)
            memcpy(s->by + (size_t)i * ys, s->y + (size_t)r * ys, ys * sizeof(int32_t));
        else
            memcpy(s->byv + (size_t)i * t, s->yv + (size_t)r * t, t * sizeof(float));
        s->brows[i] = s->first + r;
    }
    b->n = n;
    b->x = s->bx;
    b->y_class = s->y ? s->by : NULL;
    b->y_vec = s->y ? NULL : s->byv;
    b->rows = s->brows;
    b->lengths = s->len ? s->blen : NULL;
}

void cv_shard_gather_into(cv_shard *s, float *x)
{
    s->bx = x ? x : s->own_bx;
}

void cv_shard_batch(cv_shard *s, int local_batch, long long step, struct cv_batch *b)
{
    CV_ASSERT(local_batch >= 0 && local_batch <= s->max_batch);
    long long start = step * (long long)local_batch;
    long long left = s->n - start;
    int n = (int)(left < 0 ? 0 : left > local_batch ? local_batch : left);
    gather(s, s->perm + (n ? start : 0), n, b);
}

void cv_shard_slice(cv_shard *s, long long first, int n, struct cv_batch *b)
{
    CV_ASSERT(first >= 0 && n >= 0 && n <= s->max_batch && first + n <= s->n);
    for (int i = 0; i < n; i++)
        s->bidx[i] = first + i;
    gather(s, s->bidx, n, b);
}

/* One image (C, H, W): mirror and/or shift by (dy, dx) with zero fill. */
static void augment_one(float *img, float *tmp, const int shape[3], bool mirror, int dy, int dx)
{
    int c = shape[0], h = shape[1], w = shape[2];
    size_t n = (size_t)c * h * w;
    memcpy(tmp, img, n * sizeof(float));
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int sy = y - dy, sx0 = x - dx;
                int sx = mirror ? w - 1 - sx0 : sx0;
                bool in = sy >= 0 && sy < h && sx0 >= 0 && sx0 < w;
                img[((size_t)k * h + y) * w + x] = in ? tmp[((size_t)k * h + sy) * w + sx] : 0.0f;
            }
}

void cv_shard_augment(cv_shard *s, struct cv_batch *b, const int shape[3], uint64_t seed,
                      long long step, bool flip, int shift)
{
    size_t f = (size_t)s->info.features;
    CV_ASSERT((size_t)shape[0] * shape[1] * shape[2] == f && b->x == s->bx);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < b->n; i++) {
        struct cv_rng r;
        cv_rng_seed(&r, seed, CV_RNG_AUGMENT, (uint64_t)step, (uint64_t)b->rows[i]);
        bool mirror = flip && (cv_rng_u64(&r) & 1);
        int dy = shift ? (int)cv_rng_below(&r, 2 * (uint64_t)shift + 1) - shift : 0;
        int dx = shift ? (int)cv_rng_below(&r, 2 * (uint64_t)shift + 1) - shift : 0;
        float *tmp = s->aug + (size_t)omp_get_thread_num() * f;
        if (mirror || dy || dx)
            augment_one(s->bx + (size_t)i * f, tmp, shape, mirror, dy, dx);
    }
}
