/*
 * util.c - checked allocation with test-time failure injection, the keyed
 * xoshiro256** generator, and a monotonic clock.
 */
#define _DEFAULT_SOURCE /* madvise(MADV_HUGEPAGE) */
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "util.h"

static long alloc_countdown = -1;

void cv_alloc_fail_after(long k)
{
    alloc_countdown = k;
}

static bool injected_failure(void)
{
    return alloc_countdown >= 0 && alloc_countdown-- == 0;
}

void *cv_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    if (injected_failure())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *cv_realloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    if (injected_failure())
        return NULL;
    size_t bytes = n * size;
    return realloc(p, bytes ? bytes : 1); /* never realloc(p, 0), which frees p */
}

char *cv_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = cv_calloc(len + 1, 1);
    if (d)
        memcpy(d, s, len);
    return d;
}

char *cv_strdup(const char *s)
{
    return cv_strndup(s, SIZE_MAX);
}

#define HUGE_PAGE ((size_t)2 << 20)

char **cv_strings_copy(const char *const *s, int n)
{
    size_t bytes = (size_t)n * sizeof(char *) + 1;
    for (int i = 0; i < n; i++)
        bytes += strlen(s[i]) + 1;
    char **out = cv_calloc(bytes, 1), *p = out ? (char *)(out + n) : NULL;
    for (int i = 0; out && i < n; i++) {
        out[i] = p;
        p = stpcpy(p, s[i]) + 1;
    }
    return out;
}

void *cv_calloc_big(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    if (bytes < 2 * HUGE_PAGE)
        return cv_calloc(n, size);
    if (injected_failure())
        return NULL;
    size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, rounded) != 0)
        return NULL;
    madvise(p, rounded, MADV_HUGEPAGE); /* only a hint: fine if refused */
    memset(p, 0, bytes);
    return p;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void cv_rng_seed(struct cv_rng *r, uint64_t seed, uint64_t k1, uint64_t k2, uint64_t k3)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ k1;
    h = splitmix64(&x);
    x = h ^ k2;
    h = splitmix64(&x);
    x = h ^ k3;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t cv_rng_u64(struct cv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float cv_rng_uniform(struct cv_rng *r)
{
    return (float)(cv_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

double cv_rng_uniform_d(struct cv_rng *r)
{
    return (double)(cv_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double cv_rng_normal(struct cv_rng *r)
{
    double u1 = cv_rng_uniform_d(r);
    double u2 = cv_rng_uniform_d(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t cv_rng_below(struct cv_rng *r, uint64_t n)
{
    /* modulo bias is below n / 2^64: negligible for shuffles and sampling */
    return cv_rng_u64(r) % n;
}

double cv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cv_num_threads(void)
{
    return omp_get_max_threads();
}

double cv_peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Resident private (anonymous) memory now, without the shared library pages
 * that peak RSS also counts (Linux; 0 where /proc is not there). */
double cv_anon_rss_mb(void)
{
    char line[128];
    double kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "RssAnon: %lf", &kb) == 1)
            break;
    fclose(f);
    return kb / 1024.0;
}
