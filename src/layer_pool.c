/*
 * layer_pool.c - max and average pooling over size x size windows with a
 * stride (no padding; output floor((n - size) / stride) + 1), and global
 * average pooling (C, H, W) -> (C, 1, 1).  Max pooling keeps the argmax of
 * each window in scratch for backward.
 */
#include <float.h>
#include <string.h>

#include "layer.h"

static bool is_max(const struct cv_layer *l)
{
    return l->ops->type == CV_LAYER_MAXPOOL;
}

static cv_status pool_plan(struct cv_layer *l, struct cv_error *err)
{
    int k = l->spec->size, s = l->spec->stride;
    if (l->ops->type == CV_LAYER_GLOBAL_AVGPOOL) {
        l->out = (struct cv_shape){l->in.c, 1, 1, 0};
        return CV_OK;
    }
    if (s < 1)
        return cv_fail(err, CV_CONFIG, "layer %d (%s): stride %d: expected >= 1", l->index,
                       cv_layer_type_name(l->ops->type), s);
    if (k < 1 || k > l->in.h || k > l->in.w)
        return cv_fail(err, CV_SHAPE,
                       "layer %d (%s): a %dx%d window does not fit the input "
                       "(%d, %d, %d)",
                       l->index, cv_layer_type_name(l->ops->type), k, k, l->in.c, l->in.h, l->in.w);
    l->out = (struct cv_shape){l->in.c, (l->in.h - k) / s + 1, (l->in.w - k) / s + 1, 0};
    if (is_max(l))
        l->scratch_per_sample = cv_shape_size(l->out); /* argmax, as an exact float index */
    return CV_OK;
}

/* One output value of window (y, x) of channel plane p (H, W). */
static float window(const struct cv_layer *l, const float *p, int y, int x, bool max, int *arg)
{
    int k = l->spec->size, s = l->spec->stride, W = l->in.w;
    float best = -FLT_MAX, sum = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            int at = (y * s + i) * W + x * s + j;
            sum += p[at];
            if (p[at] > best)
                best = p[at], *arg = at;
        }
    return max ? best : sum / (float)(k * k);
}

/* The common 2x2 window at stride 2 of max pooling, with the same result
 * and argmax as window() (a best of -FLT_MAX, the first largest wins) but
 * without its loops over the window: a plane (H, W) -> out (OH, OW). */
static void max2x2_plane(const struct cv_layer *l, const float *p, float *out, float *arg)
{
    int W = l->in.w, oh = l->out.h, ow = l->out.w;
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            int a = 2 * i * W + 2 * j, at[4] = {a, a + 1, a + W, a + W + 1}, best_at = 0;
            float best = -FLT_MAX;
            for (int q = 0; q < 4; q++)
                if (p[at[q]] > best)
                    best = p[at[q]], best_at = at[q];
            out[i * ow + j] = best;
            arg[i * ow + j] = (float)best_at;
        }
}

/* x: (n, C, H, W) -> y: (n, C, OH, OW) */
static void pool_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                         int n)
{
    (void)ctx;
    int planes = n * l->in.c, hw = l->in.h * l->in.w, oh = l->out.h, ow = l->out.w;
    bool global = l->ops->type == CV_LAYER_GLOBAL_AVGPOOL, max = is_max(l);
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; p++) {
        const float *in = x + (size_t)p * hw;
        if (global) {
            double s = 0;
            for (int j = 0; j < hw; j++)
                s += in[j];
            y[p] = (float)(s / hw);
            continue;
        }
        if (max && l->spec->size == 2 && l->spec->stride == 2) {
            size_t o = (size_t)p * oh * ow;
            max2x2_plane(l, in, y + o, l->scratch + o);
            continue;
        }
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int arg = 0;
                size_t o = (size_t)p * oh * ow + (size_t)i * ow + j;
                y[o] = window(l, in, i, j, max, &arg);
                if (max)
                    l->scratch[o] = (float)arg;
            }
    }
}

static void pool_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                          const float *y, const float *dy, float *dx, int n)
{
    (void)ctx;
    (void)x;
    (void)y;
    if (!dx)
        return;
    int planes = n * l->in.c, hw = l->in.h * l->in.w, oh = l->out.h, ow = l->out.w;
    int k = l->spec->size, s = l->spec->stride, W = l->in.w;
    bool global = l->ops->type == CV_LAYER_GLOBAL_AVGPOOL, max = is_max(l);
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; p++) {
        float *d = dx + (size_t)p * hw;
        memset(d, 0, sizeof(float) * (size_t)hw);
        if (global) {
            for (int j = 0; j < hw; j++)
                d[j] = dy[p] / (float)hw;
            continue;
        }
        for (int i = 0; i < oh * ow; i++) {
            size_t o = (size_t)p * oh * ow + (size_t)i;
            if (max) {
                d[(int)l->scratch[o]] += dy[o];
                continue;
            }
            int y0 = (i / ow) * s, x0 = (i % ow) * s;
            for (int a = 0; a < k; a++)
                for (int b = 0; b < k; b++)
                    d[(y0 + a) * W + x0 + b] += dy[o] / (float)(k * k);
        }
    }
}

const struct cv_layer_ops cv__maxpool_ops = {.type = CV_LAYER_MAXPOOL,
                                             .plan = pool_plan,
                                             .forward = pool_forward,
                                             .backward = pool_backward};
const struct cv_layer_ops cv__avgpool_ops = {.type = CV_LAYER_AVGPOOL,
                                             .plan = pool_plan,
                                             .forward = pool_forward,
                                             .backward = pool_backward};
const struct cv_layer_ops cv__global_avgpool_ops = {.type = CV_LAYER_GLOBAL_AVGPOOL,
                                                    .plan = pool_plan,
                                                    .forward = pool_forward,
                                                    .backward = pool_backward};
