/*
 * export_onnx_internal.h - the ONNX graph under construction, shared by the
 * exporter's driver (export_onnx.c) and its layer emitters
 * (export_onnx_layers.c).  Each layer type has one emitter function: it
 * reads the layer's shapes and weights (struct cv_layer, bound to the
 * model's arenas) and appends ONNX nodes and initializers that compute the
 * layer's inference forward.  Adding a layer type is adding one emitter
 * and one line in cv__onnx_emitter().
 */
#ifndef CV_EXPORT_ONNX_INTERNAL_H
#define CV_EXPORT_ONNX_INTERNAL_H

#include <stdint.h>

#include "export_onnx_pb.h"
#include "layer.h"

#define CV_ONNX_NAME_MAX 160

/* A tensor of the graph: a batch of samples of shape `shape`. */
struct cv_onnx_val {
    char name[CV_ONNX_NAME_MAX]; /* graph name of the tensor */
    struct cv_shape shape;       /* per-sample (C, H, W), steps t */
    int rank;                    /* 2: (N, C*H*W) (or (N, T) token ids); 3: (N, T, C) a
                                    sequence; 4: (N, C, H, W) */
};

struct cv_onnx {
    struct cv_pb graph;            /* GraphProto fields so far: nodes, initializers */
    char prefix[CV_ONNX_NAME_MAX]; /* names of what is emitted now, e.g. "l03_conv2d" */
    int next;                      /* counter that keeps names unique */
};

/* The graph input of a sequence model's per-row lengths, (N) int32. */
#define CV_ONNX_LENGTHS "lengths"

/* An attribute of a node: one int, one float, a list of ints or a string. */
struct cv_onnx_attr {
    const char *name;
    enum { CV_ONNX_INT, CV_ONNX_FLOAT, CV_ONNX_INTS, CV_ONNX_STRING } type;
    int64_t i;
    float f;
    const int64_t *ints;
    int n_ints;
    const char *s;
};

/* A fresh name "<prefix>/<hint>_<k>" into out (CV_ONNX_NAME_MAX). */
void cv__onnx_name(struct cv_onnx *g, const char *hint, char *out);

/* Append node op_type(in...) -> out with attributes. */
void cv__onnx_node(struct cv_onnx *g, const char *op, const char *const *in, int n_in,
                   const char *out, const struct cv_onnx_attr *attrs, int n_attrs);

/* The same with several outputs; "" leaves an optional output out. */
void cv__onnx_node_outs(struct cv_onnx *g, const char *op, const char *const *in, int n_in,
                        const char *const *out, int n_out, const struct cv_onnx_attr *attrs,
                        int n_attrs);

/* Append a float initializer of the given dims named fresh from hint;
 * its name into out.  data is copied. */
void cv__onnx_floats(struct cv_onnx *g, const char *hint, const int64_t *dims, int ndims,
                     const float *data, char *out);

/* Append an int64 vector initializer (a shape, axes); its name into out. */
void cv__onnx_int64s(struct cv_onnx *g, const char *hint, const int64_t *v, int n, char *out);

/* v becomes the output of op(v, extra inputs...) with the same shape:
 * a fresh name, rank unchanged. */
void cv__onnx_apply(struct cv_onnx *g, const char *op, struct cv_onnx_val *v,
                    const char *const *extra, int n_extra, const struct cv_onnx_attr *attrs,
                    int n_attrs);

/* Reshape v to rank 2 (Flatten, also of a sequence) or 4 (Reshape to
 * (-1, C, H, W)). */
void cv__onnx_rank(struct cv_onnx *g, struct cv_onnx_val *v, int rank);

/* Apply activation act (slope for leaky_relu) to v; softmax is over the
 * whole sample, or each step of a sequence, as caviar computes it. */
void cv__onnx_activation(struct cv_onnx *g, struct cv_onnx_val *v, enum cv_activation act,
                         float slope);

/* Emitters of the sequence layers (export_onnx_seq.c); dense on a sequence
 * applies per step. */
cv_status cv__onnx_embedding(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                             struct cv_error *err);
cv_status cv__onnx_recurrent(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                             struct cv_error *err);
void cv__onnx_dense_steps(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                          const char *w, const char *b);

/* Emit layer l on v (v becomes its output).  Children of composite layers
 * are emitted through cv__onnx_layer, whose error is passed up. */
typedef cv_status (*cv_onnx_emit_fn)(struct cv_onnx *g, const struct cv_layer *l,
                                     struct cv_onnx_val *v, struct cv_error *err);
/* The emitter of a layer type, NULL where ONNX export has none yet. */
cv_onnx_emit_fn cv__onnx_emitter(enum cv_layer_type type);
/* Emit l (and, for a composite layer, its children) with names prefixed by
 * the layer's place; CV_INVAL naming the layer if its type has no emitter. */
cv_status cv__onnx_layer(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                         struct cv_error *err);

#endif /* CV_EXPORT_ONNX_INTERNAL_H */
