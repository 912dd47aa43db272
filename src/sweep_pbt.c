/*
 * sweep_pbt.c - population-based training's decisions (Jaderberg et al.
 * 2017, truncation selection): at the end of a generation the bottom
 * fraction of the population copies members of the top fraction (exploit)
 * and perturbs the copied hyperparameters (explore).  Pure functions of the
 * generation's results and the seed; the coordinator (sweep_coord.c) moves
 * the checkpoints and records the lineage.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sweep_learn.h"
#include "util.h"

/* Key of the explore/exploit streams, apart from the trials' draws. */
#define PBT_KEY 0x9b7a0000u

/* The value text of key in "key=value\n" lines, copied to buf. */
static bool lookup(const char *params, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    for (const char *l = params; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, klen) || l[klen] != '=')
            continue;
        const char *v = l + klen + 1, *end = strchr(v, '\n');
        size_t n = end ? (size_t)(end - v) : strlen(v);
        if (n >= size)
            return false;
        memcpy(buf, v, n);
        buf[n] = '\0';
        return true;
    }
    return false;
}

static void perturb_choice(const struct cv_sweep_dim *d, const char *cur, struct cv_rng *r,
                           char *buf, size_t size)
{
    int at = 0;
    while (at < d->n_choices && strcmp(cur, d->choices[at]))
        at++;
    if (at == d->n_choices) /* not one of the values: any of them */
        at = (int)cv_rng_below(r, (uint64_t)d->n_choices);
    else if (d->n_choices > 1)
        at = at == 0 ? 1 : at == d->n_choices - 1 ? at - 1 : at + (cv_rng_below(r, 2) ? 1 : -1);
    snprintf(buf, size, "%s", d->choices[at]);
}

static void perturb_number(const struct cv_sweep_dim *d, const char *cur, struct cv_rng *r,
                           char *buf, size_t size)
{
    double f = cv_rng_below(r, 2) ? 1.2 : 0.8, v = strtod(cur, NULL);
    if (d->dist == CV_DIST_ONE_MINUS_LOG_UNIFORM) /* 1 - beta is what scales */
        v = 1 - (1 - v) * f;
    else if (d->dist == CV_DIST_INT_UNIFORM) /* move by at least one */
        v = f > 1 ? fmax(v + 1, round(v * f)) : fmin(v - 1, round(v * f));
    else
        v *= f;
    cv__sweep_format(d, fmin(d->hi, fmax(d->lo, v)), buf, size);
}

void cv__pbt_perturb(const struct cv_sweep_dim *dims, int nd, const char *params, double resample,
                     uint64_t seed, int generation, int member, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int j = 0; j < nd && len < size; j++) {
        const struct cv_sweep_dim *d = &dims[j];
        struct cv_rng r;
        cv_rng_seed(&r, seed, CV_RNG_SWEEP, PBT_KEY ^ (uint64_t)generation,
                    ((uint64_t)member << 32) ^ cv_hash_bytes(d->key, strlen(d->key)));
        char cur[CV_CHOICE_MAX + 8], value[CV_CHOICE_MAX + 8];
        bool have = lookup(params, d->key, cur, sizeof(cur));
        if (!have || cv_rng_uniform_d(&r) < resample)
            cv_sweep_sample_dim(d, seed ^ cv_rng_u64(&r), member, value, sizeof(value));
        else if (d->dist == CV_DIST_CHOICE)
            perturb_choice(d, cur, &r, value, sizeof(value));
        else
            perturb_number(d, cur, &r, value, sizeof(value));
        len += (size_t)snprintf(buf + len, size - len, "%s=%s\n", d->key, value);
    }
}

/* Is a better than b (NAN, a failed member, is worst; ties: lower id)? */
static bool ahead(const double *v, int a, int b, bool minimize)
{
    if (isnan(v[a]) || isnan(v[b]))
        return isnan(v[b]) && (!isnan(v[a]) || a < b);
    if (v[a] != v[b])
        return minimize ? v[a] < v[b] : v[a] > v[b];
    return a < b;
}

void cv__pbt_pairs(const double *value, const bool *alive, int n, bool minimize, double fraction,
                   uint64_t seed, int generation, int *donor)
{
    int *order = cv_calloc((size_t)n, sizeof(*order)), m = 0;
    for (int i = 0; i < n; i++)
        donor[i] = -1;
    if (!order)
        return; /* no exploit this generation: training goes on */
    for (int i = 0; i < n; i++) {
        if (!alive[i])
            continue;
        int at = m++;
        while (at > 0 && ahead(value, i, order[at - 1], minimize)) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = i;
    }
    int cut = (int)floor(m * fraction);
    cut = cut < 1 ? 1 : cut > m / 2 ? m / 2 : cut;
    struct cv_rng r;
    cv_rng_seed(&r, seed, CV_RNG_SWEEP, PBT_KEY ^ (uint64_t)generation, 1);
    for (int b = m - cut; b < m; b++)
        donor[order[b]] = order[cv_rng_below(&r, (uint64_t)cut)];
    free(order);
}
