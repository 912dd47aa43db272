/*
 * layer_dropout.c - inverted dropout (course notes): in training each unit
 * is kept with probability `keep` and scaled by 1/keep, so inference needs
 * no rescaling.  Masks are keyed by (seed, step, global row id, layer), so
 * they are the same however rows are sharded over ranks and threads, and a
 * resumed run replays them exactly.  The keep probability starts as the
 * spec's and may change between epochs (train.schedule, cv_model_set_keep).
 */
#include <string.h>

#include "layer.h"

static cv_status dropout_plan(struct cv_layer *l, struct cv_error *err)
{
    float keep = l->spec->keep;
    if (!(keep > 0.0f && keep <= 1.0f))
        return cv_fail(err, CV_CONFIG, "layer %d (dropout): keep = %g: expected a number in (0, 1]",
                       l->index, keep);
    l->keep = keep;
    l->out = l->in;
    l->scratch_per_sample = cv_shape_size(l->in); /* the mask, for backward */
    return CV_OK;
}

/* x, y: (n, f); mask stored in scratch as 0 or 1/keep */
static void dropout_forward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y,
                            int n)
{
    size_t f = cv_shape_size(l->in);
    float keep = l->keep, inv = 1.0f / keep;
    if (!ctx->train || keep >= 1.0f) {
        if (y != x)
            memcpy(y, x, sizeof(float) * f * (size_t)n);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        struct cv_rng rng;
        long long row = ctx->rows ? ctx->rows[i] : i;
        cv_rng_seed(&rng, ctx->seed, CV_RNG_DROPOUT, ctx->step, ((uint64_t)row << 8) ^ l->index);
        float *m = l->scratch + (size_t)i * f;
        for (size_t j = 0; j < f; j++) {
            m[j] = cv_rng_uniform(&rng) < keep ? inv : 0.0f;
            y[(size_t)i * f + j] = x[(size_t)i * f + j] * m[j];
        }
    }
}

static void dropout_backward(struct cv_layer *l, const struct cv_ctx *ctx, const float *x,
                             const float *y, const float *dy, float *dx, int n)
{
    (void)x;
    (void)y;
    size_t f = cv_shape_size(l->in), total = f * (size_t)n;
    if (!dx)
        return;
    if (!ctx->train || l->keep >= 1.0f) {
        memcpy(dx, dy, sizeof(float) * total);
        return;
    }
#pragma omp parallel for schedule(static) if (total >= 16384)
    for (size_t k = 0; k < total; k++)
        dx[k] = dy[k] * l->scratch[k];
}

const struct cv_layer_ops cv__dropout_ops = {
    .type = CV_LAYER_DROPOUT,
    .plan = dropout_plan,
    .forward = dropout_forward,
    .backward = dropout_backward,
};
