/*
 * util.h - small shared helpers: the checked allocator and a seeded RNG.
 *
 * The RNG is keyed, not stateful across steps: every consumer derives its
 * generator from (seed, purpose, step, rank, ...) so that a resumed run
 * replays exactly the same data order and dropout masks without storing
 * generator state, and results do not depend on the OpenMP thread count.
 */
#ifndef CV_UTIL_H
#define CV_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "caviar/status.h"

/* calloc that checks n * size for overflow.  Tests may inject failures with
 * cv_alloc_fail_after(k): the k-th next allocation fails (-1 = never). */
void *cv_calloc(size_t n, size_t size);
void cv_alloc_fail_after(long k);
/* realloc of p to n * size bytes, checked and injectable like cv_calloc;
 * on failure p is untouched (and still owned by the caller). */
void *cv_realloc(void *p, size_t n, size_t size);
/* strdup / strndup through the same checked, injectable path. */
char *cv_strdup(const char *s);
char *cv_strndup(const char *s, size_t n);
/* n strings copied into one block for free() (the pointers, then the
 * text), or NULL when out of memory. */
char **cv_strings_copy(const char *const *s, int n);
/* The same for large buffers (datasets, arenas): 2 MiB aligned and marked
 * for transparent huge pages, so that touching them first costs a few
 * hundred page faults instead of one per 4 KiB (expensive under a VM).
 * Free with free(). */
void *cv_calloc_big(size_t n, size_t size);

/* Keys that separate independent random streams. */
enum cv_rng_purpose {
    CV_RNG_INIT = 1,    /* parameter initialisation */
    CV_RNG_SHUFFLE = 2, /* per-epoch shard shuffle */
    CV_RNG_DROPOUT = 3, /* dropout masks */
    CV_RNG_AUGMENT = 4, /* data augmentation */
    CV_RNG_SWEEP = 5    /* hyperparameter sampling */
};

struct cv_rng {
    uint64_t s[4]; /* xoshiro256** state */
};

/* Seed a generator from up to four keys (hashed with splitmix64). */
void cv_rng_seed(struct cv_rng *r, uint64_t seed, uint64_t k1, uint64_t k2, uint64_t k3);
uint64_t cv_rng_u64(struct cv_rng *r);
/* Uniform in [0, 1) with 24 random bits (exact in float). */
float cv_rng_uniform(struct cv_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double cv_rng_uniform_d(struct cv_rng *r);
/* Standard normal (Box-Muller, double precision). */
double cv_rng_normal(struct cv_rng *r);
/* Uniform integer in [0, n). */
uint64_t cv_rng_below(struct cv_rng *r, uint64_t n);

/* OpenMP threads a parallel region would use (1 without OpenMP). */
int cv_num_threads(void);

/* Wall-clock seconds from a monotonic clock. */
double cv_now(void);

/* Peak resident memory of this process, and its resident private
 * (anonymous) memory now, without shared library pages (Linux; 0 where
 * /proc is not there), in MB. */
double cv_peak_rss_mb(void);
double cv_anon_rss_mb(void);

#endif /* CV_UTIL_H */
