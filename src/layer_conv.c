/*
 * layer_conv.c - 2-D convolution lowered to GEMM (im2col / col2im), with a
 * fused per-channel bias and activation.  Output size per dimension:
 * floor((n + pad_lo + pad_hi - k) / s) + 1.  Padding: `valid` = 0, an
 * explicit p on every side, or `same`: out = ceil(n / s) with the total
 * padding split as evenly as possible (the extra pixel at the bottom/right,
 * as TensorFlow does).  No allocation in forward/backward: the columns and
 * z/dz live in the layer's scratch.  A batch is lowered whole (see columns()).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "layer.h"

struct conv {
    int k, s;   /* kernel size, stride */
    int pt, pl; /* padding top, left (bottom/right follow from the output size) */
};

enum { W_, B_ };

/* In 64 bits: n + s and (out - 1) * s + k pass INT_MAX for a large stride
 * or kernel.  0 if the padding would not fit an int. */
static int same_pad(int n, int k, int s, int *lo)
{
    long long out = ((long long)n + s - 1) / s, total = (out - 1) * s + k - n;
    total = total > 0 ? total : 0;
    if (total / 2 > INT_MAX)
        return 0;
    *lo = (int)(total / 2);
    return (int)out;
}

/* floor((n + 2 p - k) / s) + 1, or 0 if the kernel does not fit; at most
 * INT_MAX (which the shape check then refuses). */
static int valid_out(int n, int p, int k, int s)
{
    long long span = (long long)n + 2LL * p - k, out = span / s + 1;
    return span < 0 ? 0 : out > INT_MAX ? INT_MAX : (int)out;
}

static cv_status conv_plan(struct cv_layer *l, struct cv_error *err)
{
    const struct cv_layer_spec *sp = l->spec;
    struct conv *c = cv_calloc(1, sizeof(*c));
    if (!c)
        return cv_fail(err, CV_NOMEM, "out of memory");
    l->priv = c;
    c->k = sp->size;
    c->s = sp->stride;
    int oh, ow, p = sp->pad >= 0 ? sp->pad : 0;
    if (c->s < 1)
        return cv_fail(err, CV_CONFIG, "layer %d (conv2d): stride %d: expected >= 1", l->index,
                       c->s);
    if (sp->activation == CV_ACT_SOFTMAX) /* backward treats each output row on its own */
        return cv_fail(err, CV_CONFIG,
                       "layer %d (conv2d): activation softmax: expected an element-wise one "
                       "(softmax belongs to the last dense layer)",
                       l->index);
    if (sp->pad == CV_PAD_SAME) {
        oh = same_pad(l->in.h, c->k, c->s, &c->pt);
        ow = same_pad(l->in.w, c->k, c->s, &c->pl);
    } else {
        c->pt = c->pl = p;
        oh = valid_out(l->in.h, p, c->k, c->s);
        ow = valid_out(l->in.w, p, c->k, c->s);
    }
    if (oh < 1 || ow < 1)
        return cv_fail(err, CV_SHAPE,
                       "layer %d (conv2d): a %dx%d kernel does not fit the input (%d, %d, %d) "
                       "with padding %d",
                       l->index, c->k, c->k, l->in.c, l->in.h, l->in.w, p);
    int wd[4] = {sp->filters, l->in.c, c->k, c->k}, bd[1] = {sp->filters};
    cv__layer_add_param(l, "W", true, 4, wd); /* (F, C, k, k) */
    cv__layer_add_param(l, "b", false, 1, bd);
    l->out = (struct cv_shape){sp->filters, oh, ow, 0};
    /* (C*k*k, OH*OW) columns per sample, and dz; a product that overflows
     * becomes SIZE_MAX, which cv__layer_plan refuses */
    size_t ckk, ohw = (size_t)oh * (size_t)ow, cols, dz;
    if (__builtin_mul_overflow(l->params[W_].count / (size_t)sp->filters, ohw, &cols) ||
        __builtin_mul_overflow((size_t)sp->filters, ohw, &dz) ||
        __builtin_add_overflow(cols, dz, &l->scratch_per_sample))
        l->scratch_per_sample = SIZE_MAX;
    ckk = l->params[W_].count / (size_t)sp->filters;
    if (ckk > INT_MAX) /* the GEMM's inner dimension */
        return cv_fail(err, CV_SHAPE,
                       "layer %d (conv2d): %d channels x %dx%d kernel = %zu values per filter: "
                       "expected at most %d",
                       l->index, l->in.c, c->k, c->k, ckk, INT_MAX);
    return CV_OK;
}

static void conv_init(struct cv_layer *l, struct cv_rng *rng)
{
    struct conv *c = l->priv;
    cv__init_weights(&l->params[W_], l->in.c * c->k * c->k, l->spec->init, l->spec->activation,
                     rng);
    memset(l->params[B_].data, 0, l->params[B_].count * sizeof(float));
}

static void conv_destroy(struct cv_layer *l)
{
    free(l->priv);
}

/* col (C*k*k, OH*OW) from one image x (C, H, W); zero outside the image. */
/* Output positions [*lo, *hi) of a row of `out` whose input position
 * xo * s + off lies inside [0, n); the others read zero padding. */
static void valid_range(int out, int s, int off, int n, int *lo, int *hi)
{
    /* in 64 bits: -off + s passes INT_MAX for a stride near it */
    int a = off >= 0 ? 0 : (int)((-(long long)off + s - 1) / s); /* first xo: xo s + off >= 0 */
    int b = n - off <= 0 ? 0 : (n - off - 1) / s + 1;            /* first xo with xo s + off >= n */
    *lo = a < out ? a : out;
    *hi = b < out ? b : out;
    if (*hi < *lo)
        *hi = *lo;
}

/* col (C*K*K, OH*OW), rows `ld` floats apart: row (ch, ki, kj) holds x[ch]
 * shifted by (ki, kj). */
static void im2col(const struct cv_layer *l, const float *x, float *col, size_t ld)
{
    const struct conv *c = l->priv;
    int oh = l->out.h, ow = l->out.w, H = l->in.h, W = l->in.w, s = c->s;
    for (int ch = 0; ch < l->in.c; ch++)
        for (int ki = 0; ki < c->k; ki++)
            for (int kj = 0; kj < c->k; kj++, col += ld) {
                int off = kj - c->pl, lo, hi;
                valid_range(ow, s, off, W, &lo, &hi);
                for (int y = 0; y < oh; y++) {
                    float *row = col + (size_t)y * ow;
                    int iy = y * s + ki - c->pt;
                    if (iy < 0 || iy >= H || lo == hi) {
                        memset(row, 0, sizeof(float) * (size_t)ow);
                        continue;
                    }
                    const float *src = x + ((size_t)ch * H + iy) * W + (lo * s + off);
                    /* most rows have no padding on one side or both: no
                     * call for nothing (millions of them per step) */
                    if (lo > 0)
                        memset(row, 0, sizeof(float) * (size_t)lo);
                    if (s == 1)
                        memcpy(row + lo, src, sizeof(float) * (size_t)(hi - lo));
                    else
                        for (int xo = lo; xo < hi; xo++)
                            row[xo] = src[(xo - lo) * s];
                    if (hi < ow)
                        memset(row + hi, 0, sizeof(float) * (size_t)(ow - hi));
                }
            }
}

/* dst[j * s] += src[j] for j < n.  Stride 1 (the common case) has its own
 * loop: with s unknown the compiler scatters one float at a time. */
static void add_row(float *restrict dst, int s, const float *restrict src, int n)
{
    if (s == 1) {
#pragma omp simd
        for (int j = 0; j < n; j++)
            dst[j] += src[j];
        return;
    }
    for (int j = 0; j < n; j++)
        dst[(size_t)j * s] += src[j];
}

/* dx (C, H, W) = sum of the columns' contributions (the adjoint of im2col);
 * rows of col are `ld` floats apart. */
static void col2im(const struct cv_layer *l, const float *col, size_t ld, float *dx)
{
    const struct conv *c = l->priv;
    int oh = l->out.h, ow = l->out.w, H = l->in.h, W = l->in.w, s = c->s;
    memset(dx, 0, sizeof(float) * cv_shape_size(l->in));
    for (int ch = 0; ch < l->in.c; ch++)
        for (int ki = 0; ki < c->k; ki++)
            for (int kj = 0; kj < c->k; kj++, col += ld) {
                int off = kj - c->pl, lo, hi;
                valid_range(ow, s, off, W, &lo, &hi);
                for (int y = 0; y < oh; y++) {
                    int iy = y * s + ki - c->pt;
                    if (iy < 0 || iy >= H || lo == hi)
                        continue;
                    const float *row = col + (size_t)y * ow + lo;
                    float *dst = dx + ((size_t)ch * H + iy) * W + (lo * s + off);
                    add_row(dst, s, row, hi - lo);
                }
            }
}

/* The whole batch is lowered to one matrix so that each pass is one GEMM:
 * columns (CKK, n*OHW), sample i's block at column i*OHW; per-sample GEMMs
 * were too small for OpenBLAS (K = 9 on a first 3x3 layer).  The product
 * z (F, n*OHW) is channel-major, and the layer's output (n, F, OHW) is one
 * copy of rows of OHW away. */
static float *columns(const struct cv_layer *l)
{
    return l->scratch;
}

static float *zbuf(const struct cv_layer *l) /* (F, n*OHW), after the largest columns */
{
    size_t ckk = (size_t)l->in.c * l->params[W_].dims[2] * l->params[W_].dims[3];
    return l->scratch + (size_t)l->max_batch * ckk * cv_shape_size(l->out) / (size_t)l->out.c;
}

/* x: (n, C, H, W) -> y: (n, F, OH, OW) */
static void conv_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                         int n)
{
    (void)ctx;
    int F = l->out.c, ohw = l->out.h * l->out.w, ckk = (int)(l->params[W_].count / (size_t)F);
    size_t in = cv_shape_size(l->in), ld = (size_t)n * ohw;
    float *col = columns(l), *z = zbuf(l);
    if (n == 0)
        return;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        im2col(l, x + (size_t)i * in, col + (size_t)i * ohw, ld);
    /* z (F, n*OHW) = W (F, CKK) . columns (CKK, n*OHW) */
    cv_gemm(false, false, F, (int)ld, ckk, 1.0f, l->params[W_].data, ckk, col, (int)ld, 0.0f, z,
            (int)ld);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int f = 0; f < F; f++)
            memcpy(y + ((size_t)i * F + f) * ohw, z + f * ld + (size_t)i * ohw,
                   sizeof(float) * (size_t)ohw);
    /* per-channel bias: rows of (n*F, OHW) get b[row % F] */
    cv_channel_bias_act(y, l->params[B_].data, n, F, ohw, l->act, l->slope);
}

static void conv_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                          const float *y, const float *dy, float *dx, int n)
{
    (void)ctx;
    (void)x;
    int F = l->out.c, ohw = l->out.h * l->out.w, ckk = (int)(l->params[W_].count / (size_t)F);
    size_t in = cv_shape_size(l->in), ld = (size_t)n * ohw;
    float *col = columns(l), *dz = zbuf(l); /* dz (F, n*OHW), channel-major like z */
    if (n == 0) {
        memset(l->params[W_].grad, 0, l->params[W_].count * sizeof(float));
        memset(l->params[B_].grad, 0, l->params[B_].count * sizeof(float));
        return;
    }
    /* element-wise activations only (softmax is refused at build time), so
     * each row of OHW can be done on its own, straight into channel-major */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (int f = 0; f < F; f++) {
            size_t o = ((size_t)i * F + f) * ohw;
            cv_act_backward(y + o, dy + o, dz + f * ld + (size_t)i * ohw, 1, ohw, l->act, l->slope);
        }
    if (!l->frozen) { /* dW (F, CKK) = dz (F, n*OHW) . columns^T */
        cv_channel_bias_backward(dz, l->params[B_].grad, 1, F, (int)ld);
        cv_gemm(false, true, F, ckk, (int)ld, 1.0f, dz, (int)ld, col, (int)ld, 0.0f,
                l->params[W_].grad, ckk);
    }
    if (!dx)
        return;
    /* dcolumns (CKK, n*OHW) = W^T . dz, into the columns' place */
    cv_gemm(true, false, ckk, (int)ld, F, 1.0f, l->params[W_].data, ckk, dz, (int)ld, 0.0f, col,
            (int)ld);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        col2im(l, col + (size_t)i * ohw, ld, dx + (size_t)i * in);
}

const struct cv_layer_ops cv__conv2d_ops = {
    .type = CV_LAYER_CONV2D,
    .plan = conv_plan,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = conv_destroy,
};
