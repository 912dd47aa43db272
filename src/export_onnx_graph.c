/*
 * export_onnx_graph.c - building blocks of the ONNX graph the exporter
 * writes (export_onnx_internal.h): fresh names, nodes with attributes,
 * float initializers, rank changes and activations.  Field numbers are
 * those of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto).
 */
#include <stdio.h>
#include <string.h>

#include "export_onnx_internal.h"

/* onnx.proto field numbers and enum values used here */
enum { GRAPH_NODE = 1, GRAPH_INITIALIZER = 5 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_S = 4, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_STRING = 3, ATTR_TYPE_INTS = 7 };
enum { TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_INT64_DATA = 7, TENSOR_NAME = 8 };
enum { TENSOR_RAW_DATA = 9, ELEM_FLOAT = 1, ELEM_INT64 = 7 };

void cv__onnx_name(struct cv_onnx *g, const char *hint, char *out)
{
    snprintf(out, CV_ONNX_NAME_MAX, "%.100s/%.24s_%d", g->prefix, hint, g->next++);
}

static void attribute(struct cv_pb *node, const struct cv_onnx_attr *a)
{
    struct cv_pb pb = {0};
    cv__pb_string(&pb, ATTR_NAME, a->name);
    switch (a->type) {
    case CV_ONNX_INT:
        cv__pb_varint(&pb, ATTR_I, (uint64_t)a->i);
        cv__pb_varint(&pb, ATTR_TYPE, ATTR_TYPE_INT);
        break;
    case CV_ONNX_FLOAT:
        cv__pb_float(&pb, ATTR_F, a->f);
        cv__pb_varint(&pb, ATTR_TYPE, ATTR_TYPE_FLOAT);
        break;
    case CV_ONNX_INTS:
        for (int k = 0; k < a->n_ints; k++)
            cv__pb_varint(&pb, ATTR_INTS, (uint64_t)a->ints[k]);
        cv__pb_varint(&pb, ATTR_TYPE, ATTR_TYPE_INTS);
        break;
    case CV_ONNX_STRING:
        cv__pb_string(&pb, ATTR_S, a->s);
        cv__pb_varint(&pb, ATTR_TYPE, ATTR_TYPE_STRING);
        break;
    }
    cv__pb_message(node, NODE_ATTRIBUTE, &pb);
    cv__pb_free(&pb);
}

void cv__onnx_node_outs(struct cv_onnx *g, const char *op, const char *const *in, int n_in,
                        const char *const *out, int n_out, const struct cv_onnx_attr *attrs,
                        int n_attrs)
{
    struct cv_pb pb = {0};
    for (int k = 0; k < n_in; k++)
        cv__pb_string(&pb, NODE_INPUT, in[k]);
    for (int k = 0; k < n_out; k++)
        cv__pb_string(&pb, NODE_OUTPUT, out[k]);
    cv__pb_string(&pb, NODE_NAME, out[n_out - 1]); /* the last output names the node */
    cv__pb_string(&pb, NODE_OP_TYPE, op);
    for (int k = 0; k < n_attrs; k++)
        attribute(&pb, &attrs[k]);
    cv__pb_message(&g->graph, GRAPH_NODE, &pb);
    cv__pb_free(&pb);
}

void cv__onnx_node(struct cv_onnx *g, const char *op, const char *const *in, int n_in,
                   const char *out, const struct cv_onnx_attr *attrs, int n_attrs)
{
    const char *outs[1] = {out};
    cv__onnx_node_outs(g, op, in, n_in, outs, 1, attrs, n_attrs);
}

static void tensor_head(struct cv_pb *pb, const char *name, int type, const int64_t *dims,
                        int ndims)
{
    for (int k = 0; k < ndims; k++)
        cv__pb_varint(pb, TENSOR_DIMS, (uint64_t)dims[k]);
    cv__pb_varint(pb, TENSOR_DATA_TYPE, (uint64_t)type);
    cv__pb_string(pb, TENSOR_NAME, name);
}

void cv__onnx_floats(struct cv_onnx *g, const char *hint, const int64_t *dims, int ndims,
                     const float *data, char *out)
{
    struct cv_pb pb = {0};
    size_t count = 1;
    for (int k = 0; k < ndims; k++)
        count *= (size_t)dims[k];
    cv__onnx_name(g, hint, out);
    tensor_head(&pb, out, ELEM_FLOAT, dims, ndims);
    cv__pb_floats_le(&pb, TENSOR_RAW_DATA, data, count);
    cv__pb_message(&g->graph, GRAPH_INITIALIZER, &pb);
    cv__pb_free(&pb);
}

void cv__onnx_int64s(struct cv_onnx *g, const char *hint, const int64_t *v, int n, char *out)
{
    struct cv_pb pb = {0};
    int64_t dims[1] = {n};
    cv__onnx_name(g, hint, out);
    tensor_head(&pb, out, ELEM_INT64, dims, 1);
    for (int k = 0; k < n; k++)
        cv__pb_varint(&pb, TENSOR_INT64_DATA, (uint64_t)v[k]);
    cv__pb_message(&g->graph, GRAPH_INITIALIZER, &pb);
    cv__pb_free(&pb);
}

void cv__onnx_apply(struct cv_onnx *g, const char *op, struct cv_onnx_val *v,
                    const char *const *extra, int n_extra, const struct cv_onnx_attr *attrs,
                    int n_attrs)
{
    const char *in[5] = {v->name};
    char out[CV_ONNX_NAME_MAX];
    CV_ASSERT(n_extra <= 4);
    for (int k = 0; k < n_extra; k++)
        in[k + 1] = extra[k];
    cv__onnx_name(g, op, out);
    cv__onnx_node(g, op, in, 1 + n_extra, out, attrs, n_attrs);
    memcpy(v->name, out, sizeof(out));
}

void cv__onnx_rank(struct cv_onnx *g, struct cv_onnx_val *v, int rank)
{
    if (v->rank == rank)
        return;
    if (rank == 2) {
        struct cv_onnx_attr axis = {.name = "axis", .type = CV_ONNX_INT, .i = 1};
        cv__onnx_apply(g, "Flatten", v, NULL, 0, &axis, 1);
    } else {
        int64_t shape[4] = {-1, v->shape.c, v->shape.h, v->shape.w};
        char s[CV_ONNX_NAME_MAX];
        const char *extra[1] = {s};
        cv__onnx_int64s(g, "shape", shape, 4, s);
        cv__onnx_apply(g, "Reshape", v, extra, 1, NULL, 0);
    }
    v->rank = rank;
}

void cv__onnx_activation(struct cv_onnx *g, struct cv_onnx_val *v, enum cv_activation act,
                         float slope)
{
    struct cv_onnx_attr alpha = {.name = "alpha", .type = CV_ONNX_FLOAT, .f = slope};
    struct cv_onnx_attr axis = {.name = "axis", .type = CV_ONNX_INT, .i = 1};
    int rank = v->rank;
    switch (act) {
    case CV_ACT_LINEAR:
    case CV_ACT_COUNT:
        break;
    case CV_ACT_SIGMOID:
        cv__onnx_apply(g, "Sigmoid", v, NULL, 0, NULL, 0);
        break;
    case CV_ACT_TANH:
        cv__onnx_apply(g, "Tanh", v, NULL, 0, NULL, 0);
        break;
    case CV_ACT_RELU:
        cv__onnx_apply(g, "Relu", v, NULL, 0, NULL, 0);
        break;
    case CV_ACT_LEAKY_RELU:
        cv__onnx_apply(g, "LeakyRelu", v, NULL, 0, &alpha, 1);
        break;
    case CV_ACT_SOFTMAX: /* over all C*H*W values of a sample, or of a step */
        if (rank == 3) {
            axis.i = 2;
            cv__onnx_apply(g, "Softmax", v, NULL, 0, &axis, 1);
            break;
        }
        cv__onnx_rank(g, v, 2);
        cv__onnx_apply(g, "Softmax", v, NULL, 0, &axis, 1);
        cv__onnx_rank(g, v, rank);
        break;
    }
}

cv_status cv__onnx_layer(struct cv_onnx *g, const struct cv_layer *l, struct cv_onnx_val *v,
                         struct cv_error *err)
{
    const char *type = cv_layer_type_name(l->ops->type);
    cv_onnx_emit_fn emit = cv__onnx_emitter(l->ops->type);
    char saved[CV_ONNX_NAME_MAX];
    if (!emit)
        return cv_fail(err, CV_INVAL,
                       "layer %d (%s, config line %d)%s%s: ONNX export has no form for this layer "
                       "type; nothing written",
                       l->index, type, l->spec->line, g->prefix[0] ? " inside " : "", g->prefix);
    memcpy(saved, g->prefix, sizeof(saved));
    snprintf(g->prefix, sizeof(g->prefix), "%.60s%sl%02d_%s", saved, saved[0] ? "." : "", l->index,
             type);
    cv_status st = emit(g, l, v, err);
    memcpy(g->prefix, saved, sizeof(saved));
    return st;
}
