/*
 * layer_batchnorm.c - batch normalisation (course notes): per feature (after
 * dense, input (C, 1, 1)) or per channel over N x H x W (after conv).
 * Training: z_hat = (z - mu_B) / sqrt(var_B + eps), y = g(gamma z_hat + beta),
 * and exponentially weighted running mean/variance (unbiased) for inference.
 * In data parallel the batch statistics are per rank; the running statistics
 * are averaged over ranks every step by the trainer, so replicas agree.
 */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "layer.h"

enum { GAMMA, BETA };
enum { RMEAN, RVAR };

static cv_status bn_plan(struct cv_layer *l, struct cv_error *err)
{
    (void)err;
    int c[1] = {l->in.c};
    cv__layer_add_param(l, "gamma", false, 1, c);
    cv__layer_add_param(l, "beta", false, 1, c);
    cv__layer_add_state(l, "running_mean", 1, c);
    cv__layer_add_state(l, "running_var", 1, c);
    l->out = l->in;
    l->scratch_per_sample = 2 * cv_shape_size(l->in); /* z_hat; dz when dx is not wanted */
    l->scratch_fixed = (size_t)l->in.c;               /* 1 / sqrt(var + eps) per channel */
    return CV_OK;
}

static void bn_init(struct cv_layer *l, struct cv_rng *rng)
{
    (void)rng;
    for (int k = 0; k < l->in.c; k++) {
        l->params[GAMMA].data[k] = 1.0f;
        l->params[BETA].data[k] = 0.0f;
        l->state[RMEAN].data[k] = 0.0f;
        l->state[RVAR].data[k] = 1.0f;
    }
}

static float *inv_std(const struct cv_layer *l)
{
    return l->scratch + 2 * (size_t)l->max_batch * cv_shape_size(l->in);
}

/* Mean and biased variance of channel k over (n, hw), in double. */
static void channel_stats(const float *x, int n, int c, int hw, int k, double *mu, double *var)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        const float *p = x + ((size_t)i * c + k) * hw;
#pragma omp simd reduction(+ : s, s2)
        for (int j = 0; j < hw; j++) {
            double v = p[j];
            s += v;
            s2 += v * v;
        }
    }
    double m = (double)n * hw;
    *mu = s / m;
    *var = fmax(s2 / m - *mu * *mu, 0.0);
}

/* x, y: (n, C, H, W) */
static void bn_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                       int n)
{
    int c = l->in.c, hw = l->in.h * l->in.w;
    float mom = l->spec->bn_momentum, eps = l->spec->bn_eps, *xh = l->scratch, *is = inv_std(l);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < c; k++) {
        double mu = l->state[RMEAN].data[k], var = l->state[RVAR].data[k];
        if (ctx->train) {
            double m = (double)n * hw;
            channel_stats(x, n, c, hw, k, &mu, &var);
            l->state[RMEAN].data[k] = (float)(mom * l->state[RMEAN].data[k] + (1 - mom) * mu);
            l->state[RVAR].data[k] = (float)(mom * l->state[RVAR].data[k] +
                                             (1 - mom) * var * (m > 1 ? m / (m - 1) : 1));
        }
        float isk = (float)(1.0 / sqrt(var + eps)), muf = (float)mu;
        float g = l->params[GAMMA].data[k], b = l->params[BETA].data[k];
        is[k] = isk;
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * c + k) * hw;
            const float *xi = x + o;
            float *hi = xh + o, *yi = y + o;
#pragma omp simd
            for (int j = 0; j < hw; j++) {
                float h = (xi[j] - muf) * isk;
                hi[j] = h;
                yi[j] = g * h + b;
            }
        }
    }
    if (l->act != CV_ACT_LINEAR)
        cv_act_apply(y, n, c * hw, l->act, l->slope);
}

static void bn_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                        const float *y, const float *dy, float *dx, int n)
{
    (void)ctx;
    (void)x;
    int c = l->in.c, hw = l->in.h * l->in.w;
    float *xh = l->scratch, *is = inv_std(l);
    /* dz = dy * g'(y), into dx (rewritten in place below) or, when the input
     * gradient is not wanted, into scratch: gamma and beta still need it */
    float *dz = dx ? dx : l->scratch + (size_t)l->max_batch * cv_shape_size(l->in);
    cv_act_backward(y, dy, dz, n, c * hw, l->act, l->slope);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < c; k++) {
        double dg = 0, db = 0, m = (double)n * hw;
        for (int i = 0; i < n; i++) {
            const float *dzi = dz + ((size_t)i * c + k) * hw, *hi = xh + ((size_t)i * c + k) * hw;
#pragma omp simd reduction(+ : dg, db)
            for (int j = 0; j < hw; j++) {
                dg += (double)dzi[j] * hi[j];
                db += dzi[j];
            }
        }
        l->params[GAMMA].grad[k] = (float)dg;
        l->params[BETA].grad[k] = (float)db;
        /* dx = gamma / sqrt(var + eps) / m * (m dz - sum dz - z_hat sum dz z_hat) */
        float s = (float)(l->params[GAMMA].data[k] * is[k] / m);
        for (int i = 0; i < n; i++) {
            float *dzi = dz + ((size_t)i * c + k) * hw;
            const float *hi = xh + ((size_t)i * c + k) * hw;
#pragma omp simd
            for (int j = 0; j < hw; j++)
                dzi[j] = s * (float)(m * dzi[j] - db - hi[j] * dg);
        }
    }
}

const struct cv_layer_ops cv__batchnorm_ops = {
    .type = CV_LAYER_BATCHNORM,
    .plan = bn_plan,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
};
