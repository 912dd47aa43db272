/*
 * layer.h - the private layer interface: a small vtable plus one struct that
 * every layer type shares.  One file per layer type implements it
 * (layer_dense.c, layer_dropout.c, layer_conv.c, ...).
 *
 * Life cycle, driven by model.c:
 *   plan    - from spec + input shape: output shape, parameter and state
 *             views (names, dims, counts), scratch needs.  Validates.
 *   (model binds every view to its slice of the params / grads / state
 *    arenas and the scratch arena, recursing into children)
 *   init    - fill parameters and state (seeded).
 *   forward / backward for a batch of n <= max_batch samples.
 *   destroy - free priv and children.
 * Tensors are row-major, one sample per row; a sample of shape (C, H, W) is
 * C*H*W contiguous floats in CHW order.  A shape with a time axis (t > 0)
 * is t steps of C*H*W features, step after step (a sample of T steps of F
 * features is T*F floats, (T, F) row-major); dense, activation and dropout
 * layers apply to each step (time-distributed).  Backward overwrites the parameter
 * gradients (it never adds to them), so the arena needs no clearing.
 */
#ifndef CV_LAYER_H
#define CV_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caviar/config.h"
#include "caviar/status.h"
#include "util.h"

struct cv_shape {
    int c, h, w; /* per-step channels, height, width; dense features = c (h = w = 1) */
    int t;       /* steps of a sequence, 0 = no time axis */
};

/* Floats of one step (the whole sample without a time axis). */
static inline size_t cv_shape_step(struct cv_shape s)
{
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

/* Steps of a sample: t, or 1 without a time axis. */
static inline int cv_shape_steps(struct cv_shape s)
{
    return s.t > 0 ? s.t : 1;
}

static inline size_t cv_shape_size(struct cv_shape s)
{
    return cv_shape_step(s) * (size_t)cv_shape_steps(s);
}

/* Size limits that plan checks, so that no size computed later overflows:
 * one batch of any layer's input or output (max_batch x C x H x W) must fit
 * in int, since the kernels and BLAS take int dimensions; a parameter or
 * state view, and a layer's scratch, must stay below CV_MAX_VIEW floats
 * (4 PiB: any larger request fails anyway), so that sums of them cannot
 * overflow size_t. */
#define CV_MAX_BATCH_VALUES 2147483647LL
#define CV_MAX_VIEW         ((size_t)1 << 50)

/* Checks one activation shape against CV_MAX_BATCH_VALUES (CV_SHAPE, the
 * message naming `what`, the shape and the batch). */
cv_status cv__shape_check(const char *what, struct cv_shape s, int max_batch, struct cv_error *err);

/* Context of one forward/backward call. */
struct cv_ctx {
    bool train;             /* training mode: dropout on, batchnorm batch stats */
    uint64_t seed;          /* train.seed */
    uint64_t step;          /* global optimizer step (keys dropout masks) */
    const long long *rows;  /* n global dataset row ids of the batch (keys masks), or NULL */
    const int32_t *lengths; /* n valid steps per row (sequences), or NULL: all steps */
};

/* Valid steps of row i of a batch of sequences of t steps. */
static inline int cv_ctx_length(const struct cv_ctx *ctx, int i, int t)
{
    int len = ctx->lengths ? ctx->lengths[i] : t;
    return len < 1 ? 1 : len > t ? t : len;
}

#define CV_MAX_VIEWS 6

/* A named tensor inside one of the model's arenas. */
struct cv_view {
    const char *name; /* "W", "b", "gamma", "running_mean", ... */
    int dims[4];      /* shape, outermost first */
    int ndims;
    size_t count; /* product of dims */
    bool decay;   /* L2 applies (weights; not biases, gamma, beta) */
    float *data;  /* bound by the model */
    float *grad;  /* bound by the model (params only) */
};

struct cv_layer;

struct cv_layer_ops {
    enum cv_layer_type type;
    cv_status (*plan)(struct cv_layer *l, struct cv_error *err);
    void (*init)(struct cv_layer *l, struct cv_rng *rng);
    /* x: (n, in) -> y: (n, out) */
    void (*forward)(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, float *y, int n);
    /* dy: (n, out) -> dx: (n, in); dx == NULL means the input gradient is
     * not needed (first layer).  Writes parameter gradients. */
    void (*backward)(struct cv_layer *l, const struct cv_ctx *ctx, const float *x, const float *y,
                     const float *dy, float *dx, int n);
    void (*destroy)(struct cv_layer *l);
};

struct cv_layer {
    const struct cv_layer_ops *ops;
    const struct cv_layer_spec *spec;
    int index;               /* position among its siblings */
    struct cv_shape in, out; /* per-sample shapes */
    int max_batch;           /* largest n forward/backward will see */
    enum cv_activation act;  /* effective activation (the model may turn a final
                                softmax/sigmoid into linear when fused with the loss) */
    float slope;             /* leaky_relu slope */
    float keep;              /* dropout: keep probability now (train.schedule changes it) */
    bool frozen; /* trainable: false: backward writes no parameter gradients (the optimizer
                    skips them and the exchange leaves them out) */
    struct cv_view params[CV_MAX_VIEWS]; /* trainable tensors */
    int n_params;
    struct cv_view state[CV_MAX_VIEWS]; /* persistent non-trainable tensors */
    int n_state;
    size_t scratch_per_sample; /* floats of scratch per sample ... */
    size_t scratch_fixed;      /* ... plus this many, set by plan */
    float *scratch;            /* bound by the model, max_batch-sized */
    struct cv_layer *children; /* composite layers (residual), owned */
    int n_children;
    void *priv; /* layer-private data, freed by destroy */
};

/* Find the ops for a layer type (NULL if not built in). */
const struct cv_layer_ops *cv__layer_ops(enum cv_layer_type type);
/* rnn, gru or lstm. */
bool cv__layer_is_recurrent(enum cv_layer_type type);

/* Declare a view during plan(); returns it for further tweaks. */
struct cv_view *cv__layer_add_param(struct cv_layer *l, const char *name, bool decay, int ndims,
                                    const int *dims);
struct cv_view *cv__layer_add_state(struct cv_layer *l, const char *name, int ndims,
                                    const int *dims);

/* Plan a layer from its spec and input shape (picks the ops, calls plan). */
cv_status cv__layer_plan(struct cv_layer *l, const struct cv_layer_spec *spec, int index,
                         struct cv_shape in, int max_batch, struct cv_error *err);

/* Whether the layer (or a layer inside it) has parameters to train. */
bool cv__layer_trains(const struct cv_layer *l);

/* Floats a planned layer (and its children) needs in each arena. */
void cv__layer_sizes(const struct cv_layer *l, size_t *n_params, size_t *n_state,
                     size_t *n_scratch);
/* Bind the layer's views (then its children's) to consecutive slices from
 * the cursors, advancing them. `grads` parallels `params`. */
void cv__layer_bind(struct cv_layer *l, float **params, float **grads, float **state,
                    float **scratch);
/* Initialise children first, then the layer itself (ops->init). */
void cv__layer_init(struct cv_layer *l, struct cv_rng *rng);
/* Destroy children, call ops->destroy, clear the struct.  Safe on a layer
 * that failed to plan. */
void cv__layer_destroy(struct cv_layer *l);

/* Fill `v` with He (gain 2) or Xavier (gain 1) normal values: std = sqrt(gain / fan_in). */
void cv__init_weights(struct cv_view *v, int fan_in, enum cv_init kind, enum cv_activation act,
                      struct cv_rng *rng);

/* Per-layer ops tables, defined in layer_*.c. */
extern const struct cv_layer_ops cv__dense_ops;
extern const struct cv_layer_ops cv__dropout_ops;
extern const struct cv_layer_ops cv__activation_ops;
extern const struct cv_layer_ops cv__flatten_ops;
extern const struct cv_layer_ops cv__conv2d_ops;
extern const struct cv_layer_ops cv__maxpool_ops;
extern const struct cv_layer_ops cv__avgpool_ops;
extern const struct cv_layer_ops cv__global_avgpool_ops;
extern const struct cv_layer_ops cv__batchnorm_ops;
extern const struct cv_layer_ops cv__residual_ops;
extern const struct cv_layer_ops cv__embedding_ops;
extern const struct cv_layer_ops cv__rnn_ops;
extern const struct cv_layer_ops cv__gru_ops;
extern const struct cv_layer_ops cv__lstm_ops;
extern const struct cv_layer_ops cv__bidirectional_ops;

#endif /* CV_LAYER_H */
