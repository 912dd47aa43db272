/*
 * layer_residual.c - a residual block (course notes): a[l+2] = g(z[l+2] + a[l]),
 * i.e. y = g(branch(x) + shortcut(x)).  The branch is the listed layers
 * (planned as children).  The shortcut is the identity when shapes agree,
 * else a 1x1 convolution with the stride that maps the input grid onto the
 * branch's output grid (added automatically, as a last child); when no such
 * stride exists the block is rejected naming both shapes.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "layer.h"

struct residual {
    struct cv_layer_spec proj; /* spec of the projection child, if any */
    bool has_proj;
    int n_branch;  /* children that form the branch */
    size_t widest; /* floats per sample of the widest tensor in the block */
};

static bool same_shape(struct cv_shape a, struct cv_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

/* The stride s with floor((n - 1) / s) + 1 == out for both dimensions, or 0. */
static int projection_stride(struct cv_shape in, struct cv_shape out)
{
    for (int s = 1; s <= in.h && s <= in.w; s++)
        if ((in.h - 1) / s + 1 == out.h && (in.w - 1) / s + 1 == out.w)
            return s;
    return 0;
}

static cv_status plan_branch(struct cv_layer *l, struct residual *r, struct cv_error *err)
{
    const struct cv_layer_spec *sp = l->spec;
    struct cv_shape s = l->in;
    r->widest = cv_shape_size(s);
    for (int i = 0; i < sp->n_children; i++) {
        cv_status st = cv__layer_plan(&l->children[i], &sp->children[i], i, s, l->max_batch, err);
        l->n_children = i + 1;
        if (st != CV_OK)
            return st;
        s = l->children[i].out;
        r->widest = cv_shape_size(s) > r->widest ? cv_shape_size(s) : r->widest;
    }
    r->n_branch = sp->n_children;
    l->out = s;
    return CV_OK;
}

static cv_status plan_shortcut(struct cv_layer *l, struct residual *r, struct cv_error *err)
{
    if (same_shape(l->in, l->out))
        return CV_OK;
    int stride = projection_stride(l->in, l->out);
    if (!stride)
        return cv_fail(err, CV_SHAPE,
                       "layer %d (residual): the branch maps (%d, %d, %d) to (%d, %d, %d), which "
                       "no 1x1 strided projection of the input can match",
                       l->index, l->in.c, l->in.h, l->in.w, l->out.c, l->out.h, l->out.w);
    r->proj = (struct cv_layer_spec){.type = CV_LAYER_CONV2D,
                                     .filters = l->out.c,
                                     .size = 1,
                                     .stride = stride,
                                     .pad = 0,
                                     .activation = CV_ACT_LINEAR,
                                     .keep = 1.0f};
    r->has_proj = true;
    int k = l->n_children;
    cv_status st = cv__layer_plan(&l->children[k], &r->proj, k, l->in, l->max_batch, err);
    l->n_children = k + 1;
    return st;
}

static cv_status residual_plan(struct cv_layer *l, struct cv_error *err)
{
    struct residual *r = cv_calloc(1, sizeof(*r));
    l->priv = r;
    l->children = cv_calloc((size_t)l->spec->n_children + 1, sizeof(struct cv_layer));
    if (!r || !l->children)
        return cv_fail(err, CV_NOMEM, "out of memory");
    cv_status st = plan_branch(l, r, err);
    if (st == CV_OK)
        st = plan_shortcut(l, r, err);
    if (st != CV_OK)
        return st;
    size_t acts = 0;
    for (int i = 0; i < l->n_children; i++)
        acts += cv_shape_size(l->children[i].out);
    /* child outputs (incl. the projection's), then dpre and two gradient buffers */
    l->scratch_per_sample = acts + cv_shape_size(l->out) + 2 * r->widest;
    return CV_OK;
}

static void residual_destroy(struct cv_layer *l)
{
    free(l->priv);
}

/* Output buffer of child i: (max_batch, out_i), consecutive in scratch. */
static float *child_out(const struct cv_layer *l, int i)
{
    float *p = l->scratch;
    for (int k = 0; k < i; k++)
        p += cv_shape_size(l->children[k].out) * (size_t)l->max_batch;
    return p;
}

static float *grad_buf(const struct cv_layer *l, int which)
{
    const struct residual *r = l->priv;
    float *p = child_out(l, l->n_children) + cv_shape_size(l->out) * (size_t)l->max_batch;
    return p + (size_t)which * r->widest * (size_t)l->max_batch;
}

/* x: (n, in) -> y: (n, out) = g(branch(x) + shortcut(x)) */
static void residual_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                             int n)
{
    const struct residual *r = l->priv;
    const float *in = x;
    for (int i = 0; i < r->n_branch; i++) {
        l->children[i].ops->forward(&l->children[i], ctx, in, child_out(l, i), n);
        in = child_out(l, i);
    }
    const float *sc = x;
    if (r->has_proj) {
        l->children[r->n_branch].ops->forward(&l->children[r->n_branch], ctx, x,
                                              child_out(l, r->n_branch), n);
        sc = child_out(l, r->n_branch);
    }
    int size = (int)cv_shape_size(l->out);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) { /* the sum and g in one pass, a sample at a time */
        size_t o = (size_t)i * size;
#pragma omp simd
        for (int k = 0; k < size; k++)
            y[o + k] = in[o + k] + sc[o + k];
        cv_act_apply(y + o, 1, size, l->act, l->slope);
    }
}

static void residual_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                              const float *y, const float *dy, float *dx, int n)
{
    const struct residual *r = l->priv;
    size_t in_size = cv_shape_size(l->in) * (size_t)n;
    float *dpre = child_out(l, l->n_children), *b[2] = {grad_buf(l, 0), grad_buf(l, 1)};
    cv_act_backward(y, dy, dpre, n, (int)cv_shape_size(l->out), l->act, l->slope);
    const float *d = dpre;
    for (int i = r->n_branch - 1; i >= 0; i--) { /* branch, last child first */
        const float *in = i > 0 ? child_out(l, i - 1) : x;
        float *dnext = i > 0 || dx ? b[i & 1] : NULL;
        l->children[i].ops->backward(&l->children[i], ctx, in, child_out(l, i), d, dnext, n);
        d = dnext;
    }
    /* the branch's input gradient ended in b[0] (child 0 writes b[0 & 1]) */
    float *dsc = r->has_proj ? (dx ? b[1] : NULL) : dpre;
    if (r->has_proj) /* the shortcut's own gradient, then its input gradient */
        l->children[r->n_branch].ops->backward(&l->children[r->n_branch], ctx, x,
                                               child_out(l, r->n_branch), dpre, dsc, n);
    if (!dx)
        return;
#pragma omp parallel for simd schedule(static)
    for (size_t k = 0; k < in_size; k++) /* dx = branch part + shortcut part */
        dx[k] = d[k] + dsc[k];
}

const struct cv_layer_ops cv__residual_ops = {
    .type = CV_LAYER_RESIDUAL,
    .plan = residual_plan,
    .forward = residual_forward,
    .backward = residual_backward,
    .destroy = residual_destroy,
};
