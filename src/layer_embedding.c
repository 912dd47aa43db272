/*
 * layer_embedding.c - token ids -> vectors: the input (T) holds T token
 * ids (as floats, exact below 2^24), the output is the sequence (T, dim)
 * of rows of the table E (vocab, dim).  The data reader checks ids against
 * the file's vocab_size and training checks that against `vocab`; an id
 * outside [0, vocab) that still gets here reads as a zero vector.  The
 * pad_id token (PyTorch's padding_idx) reads as a zero vector too and its
 * row gets no gradient (so a gradient check agrees); steps beyond a row's
 * length get none either.  Must be the first layer.
 */
#include <string.h>

#include "layer.h"

enum { E_ };

static cv_status embedding_plan(struct cv_layer *l, struct cv_error *err)
{
    const struct cv_layer_spec *sp = l->spec;
    if (l->index != 0 || l->in.t > 0 || l->in.h != 1 || l->in.w != 1)
        return cv_fail(err, CV_SHAPE,
                       "layer %d (embedding) must be the first layer, fed model.input [T] token "
                       "ids",
                       l->index);
    if (sp->vocab < 1 || sp->dim < 1 || sp->pad_id < -1 || sp->pad_id >= sp->vocab)
        return cv_fail(err, CV_CONFIG,
                       "layer %d (embedding): vocab = %d, dim = %d, pad_id = %d: expected vocab "
                       ">= 1, dim >= 1, pad_id in [0, vocab) or -1 (none)",
                       l->index, sp->vocab, sp->dim, sp->pad_id);
    int ed[2] = {sp->vocab, sp->dim};
    cv__layer_add_param(l, "E", true, 2, ed); /* (vocab, dim) */
    l->out = (struct cv_shape){sp->dim, 1, 1, l->in.c};
    return CV_OK;
}

static void embedding_init(struct cv_layer *l, struct cv_rng *rng)
{
    struct cv_view *e = &l->params[E_];
    for (size_t i = 0; i < e->count; i++) /* N(0, 1), as PyTorch's nn.Embedding */
        e->data[i] = (float)cv_rng_normal(rng);
    if (l->spec->pad_id >= 0)
        memset(e->data + (size_t)l->spec->pad_id * e->dims[1], 0, sizeof(float) * e->dims[1]);
}

/* The table row of id v, or -1 for a zero vector (padding, out of range). */
static int token(const struct cv_layer *l, float v)
{
    int id = v >= 0.0f && v < (float)l->spec->vocab ? (int)v : -1;
    return id == l->spec->pad_id ? -1 : id;
}

/* x: (n, T) ids -> y: (n, T, dim) */
static void embedding_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                              float *y, int n)
{
    (void)ctx;
    size_t dim = (size_t)l->spec->dim, steps = (size_t)n * l->out.t;
    const float *e = l->params[E_].data;
#pragma omp parallel for schedule(static) if (steps * dim >= 16384)
    for (size_t s = 0; s < steps; s++) {
        int id = token(l, x[s]);
        if (id >= 0)
            memcpy(y + s * dim, e + (size_t)id * dim, sizeof(float) * dim);
        else
            memset(y + s * dim, 0, sizeof(float) * dim);
    }
}

/* dE[id] = sum of dy over the valid steps holding id (serial: ids repeat). */
static void embedding_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                               const float *y, const float *dy, float *dx, int n)
{
    (void)y;
    size_t dim = (size_t)l->spec->dim;
    int t = l->out.t;
    float *de = l->params[E_].grad;
    memset(de, 0, sizeof(float) * l->params[E_].count);
    for (int i = 0; i < n; i++) {
        int len = cv_ctx_length(ctx, i, t);
        for (int s = 0; s < len; s++) {
            int id = token(l, x[(size_t)i * t + s]);
            if (id < 0)
                continue;
            const float *d = dy + ((size_t)i * t + s) * dim;
            float *g = de + (size_t)id * dim;
            for (size_t j = 0; j < dim; j++)
                g[j] += d[j];
        }
    }
    if (dx) /* ids have no gradient */
        memset(dx, 0, sizeof(float) * (size_t)n * t);
}

const struct cv_layer_ops cv__embedding_ops = {
    .type = CV_LAYER_EMBEDDING,
    .plan = embedding_plan,
    .init = embedding_init,
    .forward = embedding_forward,
    .backward = embedding_backward,
};
