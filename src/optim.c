/*
 * optim.c - update rules from the course notes on one flat arena.
 *   momentum: v = b1 v + (1 - b1) g;           w -= lr v
 *   RMSprop:  s = b2 s + (1 - b2) g^2;         w -= lr g / (sqrt(s) + eps)
 *   Adam:     m, v as above; m^ = m / (1 - b1^t), v^ = v / (1 - b2^t);
 *             w -= lr m^ / (sqrt(v^) + eps)    (ref: Kingma & Ba 2015, Alg. 1)
 *   Nesterov: v = b1 v + g;  w -= lr (g + b1 v)  (PyTorch SGD, nesterov=True)
 *   AdamW:    w -= lr wd w (decoupled, masked), then Adam
 *             (ref: Loshchilov & Hutter 2019, Alg. 2; PyTorch AdamW)
 * Element-wise, so the result does not depend on the thread count.  With a
 * per-parameter learning-rate factor (frozen layers 0, fine-tuned ones
 * lower) a scalar path runs that skips frozen elements entirely.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/optim.h"
#include "util.h"

struct cv_optim {
    enum cv_optimizer kind;
    double beta1, beta2, eps, l2, clip, wd;
    size_t n;             /* parameters */
    float *m1, *m2;       /* moments (NULL when the rule has none) */
    unsigned char *decay; /* (n) 1 where L2 / weight decay applies */
    float *scale;         /* (n) learning-rate factor, 0 = frozen; NULL = all 1 */
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
    o->wd = o->kind == CV_OPT_ADAMW ? cfg->train.weight_decay : 0;
    o->n = cv_model_n_params(m);
    bool adam = o->kind == CV_OPT_ADAM || o->kind == CV_OPT_ADAMW;
    bool need1 = o->kind == CV_OPT_MOMENTUM || o->kind == CV_OPT_NESTEROV || adam;
    bool need2 = o->kind == CV_OPT_RMSPROP || adam;
    o->m1 = need1 ? cv_calloc_big(o->n, sizeof(float)) : NULL;
    o->m2 = need2 ? cv_calloc_big(o->n, sizeof(float)) : NULL;
    o->decay = cv_calloc(o->n, 1);
    if ((need1 && !o->m1) || (need2 && !o->m2) || !o->decay) {
        size_t n = o->n;
        cv_optim_free(o);
        return cv_fail(err, CV_NOMEM, "optimizer: out of memory for %zu parameters", n);
    }
    if (cfg->train.decay_all)
        memset(o->decay, 1, o->n);
    else
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
    free(o->scale);
    free(o);
}

void cv_optim_set_hyper(cv_optim *o, double beta1, double beta2, double l2, double weight_decay)
{
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->l2 = l2;
    o->wd = o->kind == CV_OPT_ADAMW ? weight_decay : 0;
}

cv_status cv_optim_set_lr_scale(cv_optim *o, const float *scale, struct cv_error *err)
{
    free(o->scale);
    o->scale = NULL;
    if (!scale)
        return CV_OK;
    o->scale = cv_calloc(o->n, sizeof(float));
    if (!o->scale)
        return cv_fail(err, CV_NOMEM, "optimizer: out of memory for %zu scales", o->n);
    memcpy(o->scale, scale, o->n * sizeof(float));
    return CV_OK;
}

/* Gradient norm (after L2) and clipping, only when clipping is on: the
 * common case then makes a single pass over the arena.  w, g, the mask and
 * the factors (sc, may be NULL) are views of n elements; a frozen element
 * (factor 0) has no L2 term either.  sum_sq makes the norm global when
 * sharded. */
static double clip(cv_optim *o, const float *w, float *g, const unsigned char *dm, const float *sc,
                   long long n, float lam, double (*sum_sq)(void *, double), void *arg)
{
    double sq = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : sq)
    for (long long i = 0; i < n; i++) {
        float l2 = sc && sc[i] == 0 ? 0.0f : lam * (float)dm[i];
        g[i] += l2 * w[i];
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

/* The constants of one step, the same for every element. */
struct step_k {
    float lam;      /* L2: lambda / m, 0 when off (or already added by clip) */
    double lr;      /* learning rate */
    double c1, sc2; /* Adam's bias corrections 1 - b1^t and sqrt(1 - b2^t) */
    float et;       /* Adam's epsilon, bias-corrected: eps sqrt(c2) */
};

/* The rule over n elements with one learning rate `lr` (a segment). */
static void rule(const cv_optim *o, const struct step_k *k, double lr, float *w, const float *g,
                 float *m1, float *m2, const unsigned char *dm, long long n)
{
    float b1 = (float)o->beta1, b2 = (float)o->beta2, a = (float)lr, lam = k->lam;
    float om1 = (float)(1.0 - o->beta1), om2 = (float)(1.0 - o->beta2); /* exact in double */
    float at = (float)(lr * k->sc2 / k->c1), et = k->et, eps = (float)o->eps;
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
    case CV_OPT_NESTEROV:
#pragma omp parallel for simd schedule(static)
        for (long long i = 0; i < n; i++) {
            float gi = g[i] + lam * (float)dm[i] * w[i];
            m1[i] = b1 * m1[i] + gi;
            w[i] -= a * (gi + b1 * m1[i]);
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
    case CV_OPT_ADAMW:
        if (o->wd > 0) {
            float keep = (float)(1.0 - lr * o->wd);
#pragma omp parallel for simd schedule(static)
            for (long long i = 0; i < n; i++)
                w[i] *= dm[i] ? keep : 1.0f;
        }
        /* fall through - the Adam step on the decayed weights */
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
}

/* With per-parameter factors: the rule over each run of equal factor
 * (a layer's parameters are contiguous), frozen runs skipped, so their
 * moments stay zero. */
static void scaled_rules(const cv_optim *o, const struct step_k *k, float *w, const float *g,
                         float *m1, float *m2, const unsigned char *dm, const float *sc,
                         long long n)
{
    for (long long i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && sc[j] == sc[i];)
            j++;
        if (sc[i] != 0)
            rule(o, k, k->lr * sc[i], w + i, g + i, m1 ? m1 + i : NULL, m2 ? m2 + i : NULL, dm + i,
                 j - i);
    }
}

double cv_optim_step_part(cv_optim *o, float *params, float *g, size_t lo, size_t hi, double lr,
                          long long count, double (*sum_sq)(void *arg, double partial), void *arg)
{
    struct step_k k = {.lam = count > 0 ? (float)(o->l2 / (double)count) : 0.0f, .lr = lr};
    long long n = (long long)(hi - lo);
    float *w = params + lo;
    const unsigned char *dm = o->decay + lo;
    const float *sc = o->scale ? o->scale + lo : NULL;
    double norm = 0;
    for (long long i = 0; sc && i < n; i++)
        g[i] = sc[i] != 0 ? g[i] : 0.0f; /* a frozen layer adds nothing to the norm */
    if (o->clip > 0) {
        norm = clip(o, w, g, dm, sc, n, k.lam, sum_sq, arg);
        k.lam = 0; /* already added */
    }
    o->t++;
    /* Adam with the bias corrections folded into the step size and epsilon:
     * lr m^/(sqrt(v^)+eps) = [lr sqrt(c2)/c1] m / (sqrt(v) + eps sqrt(c2)) */
    double c1 = 1.0 - pow(o->beta1, (double)o->t), c2 = 1.0 - pow(o->beta2, (double)o->t);
    k.c1 = c1;
    k.sc2 = sqrt(c2);
    k.et = (float)(o->eps * sqrt(c2));
    float *m1 = o->m1 ? o->m1 + lo : NULL, *m2 = o->m2 ? o->m2 + lo : NULL;
    if (sc)
        scaled_rules(o, &k, w, g, m1, m2, dm, sc, n);
    else
        rule(o, &k, lr, w, g, m1, m2, dm, n);
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
