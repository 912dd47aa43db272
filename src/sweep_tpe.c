/*
 * sweep_tpe.c - the Tree-structured Parzen Estimator (Bergstra et al. 2011)
 * as Optuna's univariate TPE sampler does it: the finished trials are split
 * into good (the best gamma(n)) and bad; per key, each group becomes a
 * Parzen estimator; candidates drawn from the good one are scored by
 * log l(x) - log g(x) summed over the keys, and the best is proposed.
 * Keys are modelled where their distribution is uniform (log space, 1 - beta
 * in log space), so the estimator sees what the random sampler draws.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sweep_learn.h"
#include "util.h"

#define MAX_OBS 1024 /* observations modelled per group: the most recent win */

struct parzen {
    double mu[MAX_OBS + 1], sigma[MAX_OBS + 1]; /* the last one is the prior */
    int n;                                      /* components, prior included */
    double lo, hi;                              /* flat bounds */
    double weight[CV_MAX_CHOICES];              /* choice keys: probabilities */
};

static double norm_cdf(double z)
{
    return 0.5 * erfc(-z / sqrt(2.0));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Flat bounds: integers cover [lo - 0.5, hi + 0.5] so each value has an
 * equal share. */
static void flat_bounds(const struct cv_sweep_dim *d, double *lo, double *hi)
{
    double pad = d->dist == CV_DIST_INT_UNIFORM ? 0.5 : 0.0;
    *lo = cv__sweep_to_flat(d, d->lo) - pad;
    *hi = cv__sweep_to_flat(d, d->hi) + pad;
}

/* ref: Optuna _ParzenEstimator (consider_endpoints off, magic clip on):
 * each sigma is the larger gap to a neighbouring observation (the bounds
 * count only when there is a single one), clipped to
 * [range / min(100, 1 + n + 1), range]; the prior is N(mid, range). */
static void parzen_numeric(struct parzen *p, const struct cv_sweep_dim *d, const double *x, int n)
{
    flat_bounds(d, &p->lo, &p->hi);
    double range = p->hi - p->lo, s[MAX_OBS + 2];
    memcpy(p->mu, x, (size_t)n * sizeof(*x));
    qsort(p->mu, (size_t)n, sizeof(double), cmp_double);
    s[0] = p->lo;
    memcpy(s + 1, p->mu, (size_t)n * sizeof(double));
    s[n + 1] = p->hi;
    double min_s = range / fmin(100.0, 1.0 + n + 1);
    for (int i = 0; i < n; i++) {
        double left = s[i + 1] - s[i], right = s[i + 2] - s[i + 1];
        double g = n < 2        ? fmax(left, right)
                   : i == 0     ? right
                   : i == n - 1 ? left
                                : fmax(left, right);
        p->sigma[i] = fmin(range, fmax(min_s, g));
    }
    p->mu[n] = 0.5 * (p->lo + p->hi);
    p->sigma[n] = range;
    p->n = n + 1;
}

static double parzen_logpdf(const struct parzen *p, double x)
{
    double best = -INFINITY, terms[MAX_OBS + 1];
    for (int i = 0; i < p->n; i++) {
        double s = p->sigma[i], z = (x - p->mu[i]) / s;
        double mass = norm_cdf((p->hi - p->mu[i]) / s) - norm_cdf((p->lo - p->mu[i]) / s);
        terms[i] = -0.5 * z * z - log(s * 2.5066282746310002) /* sqrt(2 pi) */ -
                   log(fmax(mass, 1e-300));
        best = fmax(best, terms[i]);
    }
    double sum = 0;
    for (int i = 0; i < p->n; i++)
        sum += exp(terms[i] - best);
    return best + log(sum / p->n); /* equal weights */
}

static double parzen_sample(const struct parzen *p, struct cv_rng *r)
{
    int i = (int)cv_rng_below(r, (uint64_t)p->n);
    for (int tries = 0; tries < 64; tries++) {
        double x = p->mu[i] + p->sigma[i] * cv_rng_normal(r);
        if (x >= p->lo && x <= p->hi)
            return x;
    }
    return p->lo + (p->hi - p->lo) * cv_rng_uniform_d(r); /* a far tail: any point */
}

/* ref: Optuna's categorical kernels: each observation's kernel puts
 * 1 + 1 / (n + 1) on its value and 1 / (n + 1) on every other, the prior's
 * is uniform; the estimator is their equal-weight mixture. */
static void parzen_choice(struct parzen *p, const struct cv_sweep_dim *d, const double *x, int n)
{
    int k = d->n_choices;
    double smooth = 1.0 / (n + 1), per = 1.0 / (1.0 + smooth * k);
    for (int c = 0; c < k; c++)
        p->weight[c] = (1.0 / k + n * smooth * per) / (n + 1);
    for (int i = 0; i < n; i++)
        p->weight[(int)x[i]] += per / (n + 1);
}

/* A row's value of d in the flat space (choice: its index); false if the
 * row has none that d can hold. */
static bool observe(const struct cv_sweep_dim *d, const struct cv_result *r, double *x)
{
    const char *text = cv__sweep_param(r, d->key);
    if (!text)
        return false;
    if (d->dist == CV_DIST_CHOICE) {
        for (int c = 0; c < d->n_choices; c++)
            if (!strcmp(text, d->choices[c]))
                return *x = c, true;
        return false;
    }
    char *end;
    double v = strtod(text, &end);
    *x = cv__sweep_to_flat(d, v);
    return end != text && !*end && isfinite(*x);
}

/* The estimator of key d over rows [from, to). */
static void fit(struct parzen *p, const struct cv_sweep_dim *d, const struct cv_result *rows,
                int from, int to)
{
    double x[MAX_OBS];
    int n = 0;
    for (int i = to - 1; i >= from && n < MAX_OBS; i--)
        n += observe(d, &rows[i], &x[n]);
    if (d->dist == CV_DIST_CHOICE)
        parzen_choice(p, d, x, n);
    else
        parzen_numeric(p, d, x, n);
}

static double dim_score(const struct parzen *l, const struct parzen *g,
                        const struct cv_sweep_dim *d, double x)
{
    if (d->dist == CV_DIST_CHOICE)
        return log(l->weight[(int)x]) - log(g->weight[(int)x]);
    return parzen_logpdf(l, x) - parzen_logpdf(g, x);
}

static double dim_draw(const struct parzen *l, const struct cv_sweep_dim *d, struct cv_rng *r)
{
    if (d->dist == CV_DIST_CHOICE) {
        double u = cv_rng_uniform_d(r), acc = 0;
        for (int c = 0; c < d->n_choices; c++)
            if ((acc += l->weight[c]) > u)
                return c;
        return d->n_choices - 1;
    }
    double x = parzen_sample(l, r);
    if (d->dist == CV_DIST_INT_UNIFORM) /* a whole number inside the bounds */
        x = fmin(d->hi, fmax(d->lo, round(x)));
    return x;
}

static int by_value_min(const void *a, const void *b)
{
    const struct cv_result *x = a, *y = b;
    return x->value < y->value ? -1 : x->value > y->value ? 1 : x->trial - y->trial;
}

static int by_value_max(const void *a, const void *b)
{
    return by_value_min(b, a);
}

/* One key: the best of the candidates drawn from l.  The candidates of
 * different keys are scored independently, as the univariate sampler does. */
static double propose_dim(const struct cv_sweep_dim *d, const struct cv_result *rows, int n,
                          int good, int candidates, struct cv_rng *r)
{
    struct parzen *l = cv_calloc(2, sizeof(*l)), *g = l ? l + 1 : NULL;
    if (!l) /* no model without memory: a uniform draw in the flat space */
        return d->dist == CV_DIST_CHOICE ? (double)cv_rng_below(r, (uint64_t)d->n_choices) : NAN;
    fit(l, d, rows, 0, good);
    fit(g, d, rows, good, n);
    double best = NAN, best_score = -INFINITY;
    for (int c = 0; c < candidates; c++) {
        double x = dim_draw(l, d, r), s = dim_score(l, g, d, x);
        if (s > best_score || isnan(best))
            best = x, best_score = s;
    }
    free(l);
    return best;
}

void cv__tpe_propose(const struct cv_sweep_dim *dims, int nd, const struct cv_result *rows, int n,
                     bool minimize, uint64_t seed, int trial, int candidates, char *buf,
                     size_t size)
{
    struct cv_result *sorted = cv_calloc((size_t)(n > 0 ? n : 1), sizeof(*sorted));
    int m = 0;
    for (int i = 0; sorted && i < n; i++)
        if (isfinite(rows[i].value))
            sorted[m++] = rows[i];
    if (sorted)
        qsort(sorted, (size_t)m, sizeof(*sorted), minimize ? by_value_min : by_value_max);
    int good = (int)fmin(ceil(0.1 * m), 25.0);
    size_t len = 0;
    buf[0] = '\0';
    for (int j = 0; j < nd && len < size; j++) {
        const struct cv_sweep_dim *d = &dims[j];
        struct cv_rng r;
        cv_rng_seed(&r, seed, CV_RNG_SWEEP, (uint64_t)trial ^ 0x7e9e0000u,
                    cv_hash_bytes(d->key, strlen(d->key)));
        double x = propose_dim(d, sorted ? sorted : rows, sorted ? m : 0, good, candidates, &r);
        char value[CV_CHOICE_MAX + 8];
        if (d->dist == CV_DIST_CHOICE)
            snprintf(value, sizeof(value), "%s", d->choices[(int)x]);
        else if (isnan(x))
            cv_sweep_sample_dim(d, seed, trial, value, sizeof(value));
        else
            cv__sweep_format(d, cv__sweep_from_flat(d, x), value, sizeof(value));
        len += (size_t)snprintf(buf + len, size - len, "%s=%s\n", d->key, value);
    }
    free(sorted);
}
