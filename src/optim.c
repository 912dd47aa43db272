/*
 * optim.c - update rules from the course notes on one flat arena.
 *   momentum: v = b1 v + (1 - b1) g;           w -= lr v
 *   RMSprop:  s = b2 s + (1 - b2) g^2;         w -= lr g / (sqrt(s) + eps)
 *   Adam:     m, v as above; m^ = m / (1 - b1^t), v^ = v / (1 - b2^t);
 *             w -= lr m^ / (sqrt(v^) + eps)    (ref: Kingma & Ba 2015, Alg. 1)
 * Element-wise, so the result does not depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>

#include "caviar/optim.h"
#include "util.h"

struct cv_optim {
    enum cv_optimizer kind;
    double beta1, beta2, eps, l2, clip;
    size_t n;             /* parameters */
    float *m1, *m2;       /* moments (NULL when the rule has none) */
    unsigned char *decay; /* (n) 1 where L2 applies */
    long long t;          /* steps taken (Adam bias correction) */
};

cv_status cv_optim_create(const struct cv_config *cfg, cv_model *m, cv_optim **out,
                          struct cv_error *err)
{
    cv_optim *o = cv_calloc(1, sizeof(*o));
    *out = NULL;
    if (!o)
        return cv_fail(err, CV_NOMEM, "optimizer: out of memory");
    o->kind = cfg->train.optimizer;
    o->beta1 = cfg->train.beta1;
    o->beta2 = cfg->train.beta2;
    o->eps = cfg->train.eps;
    o->l2 = cfg->train.l2;
    o->clip = cfg->train.clip_norm;
    o->n = cv_model_n_params(m);
    bool need1 = o->kind == CV_OPT_MOMENTUM || o->kind == CV_OPT_ADAM;
    bool need2 = o->kind == CV_OPT_RMSPROP || o->kind == CV_OPT_ADAM;
    o->m1 = need1 ? cv_calloc_big(o->n, sizeof(float)) : NULL;
    o->m2 = need2 ? cv_calloc_big(o->n, sizeof(float)) : NULL;
    o->decay = cv_calloc(o->n, 1);
    if ((need1 && !o->m1) || (need2 && !o->m2) || !o->decay) {
        size_t n = o->n;
        cv_optim_free(o);
        return cv_fail(err, CV_NOMEM, "optimizer: out of memory for %zu parameters", n);
    }
    cv_model_decay_mask(m, o->decay);
    *out = o;
    return CV_OK;
}

void cv_optim_free(cv_optim *o)
{
    if (!o)
        return;
    free(o->m1);
    free(o->m2);
    free(o->decay);
    free(o);
}

double cv_optim_lr(const struct cv_config *cfg, int epoch)
{
    double a0 = cfg->train.lr, r = cfg->train.decay_rate;
    switch (cfg->train.decay) {
    case CV_DECAY_CONSTANT:
        return a0;
    case CV_DECAY_INVERSE_TIME:
        return a0 / (1.0 + r * epoch);
    case CV_DECAY_EXPONENTIAL:
        return a0 * pow(r, epoch);
    case CV_DECAY_STEP:
        return a0 * pow(r, epoch / (cfg->train.decay_every > 0 ? cfg->train.decay_every : 1));
    }
    return a0;
}

/* Gradient norm (after L2) and clipping, only when clipping is on: the
 * common case then makes a single pass over the arena.  w, g and the mask
 * are views of n elements; sum_sq makes the norm global when sharded. */
static double clip(cv_optim *o, const float *w, float *g, const unsigned char *dm, long long n,
                   float lam, double (*sum_sq)(void *, double), void *arg)
{
    double sq = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : sq)
    for (long long i = 0; i < n; i++) {
        g[i] += lam * (float)dm[i] * w[i];
        sq += (double)g[i] * g[i];
    }
    if (sum_sq)
        sq = sum_sq(arg, sq);
    double norm = sqrt(sq);
    if (norm > o->clip) {
        float s = (float)(o->clip / norm);
#pragma omp parallel for simd schedule(static)
        for (long long i = 0; i < n; i++)
            g[i] *= s;
    }
    return norm;
}

double cv_optim_step(cv_optim *o, float *w, float *g, double lr, long long count)
{
    return cv_optim_step_part(o, w, g, 0, o->n, lr, count, NULL, NULL);
}

double cv_optim_step_part(cv_optim *o, float *params, float *g, size_t lo, size_t hi, double lr,
                          long long count, double (*sum_sq)(void *arg, double partial), void *arg)
{
    float lam = count > 0 ? (float)(o->l2 / (double)count) : 0.0f;
    long long n = (long long)(hi - lo);
    float *w = params + lo;
    const unsigned char *dm = o->decay + lo;
    double norm = 0;
    if (o->clip > 0) {
        norm = clip(o, w, g, dm, n, lam, sum_sq, arg);
        lam = 0; /* already added */
    }
    float b1 = (float)o->beta1, b2 = (float)o->beta2, a = (float)lr;
    float om1 = (float)(1.0 - o->beta1), om2 = (float)(1.0 - o->beta2); /* exact in double */
    o->t++;
    /* Adam with the bias corrections folded into the step size and epsilon:
     * lr m^/(sqrt(v^)+eps) = [lr sqrt(c2)/c1] m / (sqrt(v) + eps sqrt(c2)) */
    double c1 = 1.0 - pow(o->beta1, (double)o->t), c2 = 1.0 - pow(o->beta2, (double)o->t);
    float at = (float)(lr * sqrt(c2) / c1), et = (float)(o->eps * sqrt(c2));
    float eps = (float)o->eps;
    float *m1 = o->m1 ? o->m1 + lo : NULL, *m2 = o->m2 ? o->m2 + lo : NULL;
    switch (o->kind) {
    case CV_OPT_SGD:
#pragma omp parallel for simd schedule(static)
        for (long long i = 0; i < n; i++)
            w[i] -= a * (g[i] + lam * (float)dm[i] * w[i]);
        break;
    case CV_OPT_MOMENTUM:
#pragma omp parallel for simd schedule(static)
        for (long long i = 0; i < n; i++) {
            float gi = g[i] + lam * (float)dm[i] * w[i];
            m1[i] = b1 * m1[i] + om1 * gi;
            w[i] -= a * m1[i];
        }
        break;
    case CV_OPT_RMSPROP:
#pragma omp parallel for simd schedule(static)
        for (long long i = 0; i < n; i++) {
            float gi = g[i] + lam * (float)dm[i] * w[i];
            m2[i] = b2 * m2[i] + om2 * gi * gi;
            w[i] -= a * gi / (sqrtf(m2[i]) + eps);
        }
        break;
    case CV_OPT_ADAM:
        if (lam == 0.0f) { /* the common case: no mask to read */
#pragma omp parallel for simd schedule(static)
            for (long long i = 0; i < n; i++) {
                float gi = g[i];
                m1[i] = b1 * m1[i] + om1 * gi;
                m2[i] = b2 * m2[i] + om2 * gi * gi;
                w[i] -= at * m1[i] / (sqrtf(m2[i]) + et);
            }
            break;
        }
#pragma omp parallel for simd schedule(static)
        for (long long i = 0; i < n; i++) {
            float gi = g[i] + lam * (float)dm[i] * w[i];
            m1[i] = b1 * m1[i] + om1 * gi;
            m2[i] = b2 * m2[i] + om2 * gi * gi;
            w[i] -= at * m1[i] / (sqrtf(m2[i]) + et);
        }
        break;
    }
    return norm;
}

size_t cv_optim_size(const cv_optim *o)
{
    return o->n;
}
float *cv_optim_m1(cv_optim *o)
{
    return o->m1;
}
float *cv_optim_m2(cv_optim *o)
{
    return o->m2;
}
long long cv_optim_t(const cv_optim *o)
{
    return o->t;
}
void cv_optim_set_t(cv_optim *o, long long t)
{
    o->t = t;
}
