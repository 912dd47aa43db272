/*
 * export_onnx.c - `caviar export`: a model as an ONNX file (export.h).
 * The driver plans a private copy of the model's layers (shapes, views),
 * binds their views to the model's own parameter and state arenas, then
 * walks them through the per-layer emitters (export_onnx_layers.c) between
 * the input normalisation and the final activation, and wraps the graph in
 * a ModelProto written atomically.  Nothing here runs the network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/export.h"
#include "atomic_file.h"
#include "export_onnx_internal.h"

/* onnx.proto field numbers used here */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER = 2, MODEL_PRODUCER_VERSION = 3, MODEL_GRAPH = 7 };
enum { MODEL_OPSET = 8, OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { GRAPH_NAME = 2, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12 };
enum { VALUE_NAME = 1, VALUE_TYPE = 2, TYPE_TENSOR = 1, TENSOR_ELEM = 1, TENSOR_SHAPE = 2 };
enum { SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2, ELEM_FLOAT = 1, ELEM_INT32 = 6 };

/* The model's layers planned again, bound to m's arenas (read only). */
struct plan {
    struct cv_layer layers[CV_MAX_LAYERS];
    int n;
    float *scratch; /* what binding needs; never used */
};

static void plan_free(struct plan *p)
{
    for (int i = 0; i < p->n; i++)
        cv__layer_destroy(&p->layers[i]);
    free(p->scratch);
    free(p);
}

static cv_status plan_bind(struct plan *p, cv_model *m, struct cv_error *err)
{
    const struct cv_config *cfg = cv_model_config(m);
    struct cv_shape s = {cfg->model.input[0], cfg->model.input[1], cfg->model.input[2],
                         cfg->model.input_steps};
    size_t np = 0, ns = 0, nscr = 0;
    for (int i = 0; i < cfg->model.n_layers; i++) {
        cv_status st = cv__layer_plan(&p->layers[i], &cfg->model.layers[i], i, s, 1, err);
        p->n = i + 1;
        if (st != CV_OK)
            return st;
        cv__layer_sizes(&p->layers[i], &np, &ns, &nscr);
        s = p->layers[i].out;
    }
    if (np != cv_model_n_params(m) || ns != cv_model_n_state(m))
        return cv_fail(err, CV_SHAPE,
                       "export: %zu parameters, %zu state values planned, the model "
                       "has %zu and %zu",
                       np, ns, cv_model_n_params(m), cv_model_n_state(m));
    if (!(p->scratch = cv_calloc(nscr ? nscr : 1, sizeof(float))))
        return cv_fail(err, CV_NOMEM, "export: out of memory");
    float *params = cv_model_params(m), *grads = params, *state = cv_model_state(m);
    float *scratch = p->scratch;
    for (int i = 0; i < p->n; i++)
        cv__layer_bind(&p->layers[i], &params, &grads, &state, &scratch);
    return CV_OK;
}

/* Sub mean, Div std, as the data pipeline does before forward (evaluate.c). */
static void normalise(struct cv_onnx *g, cv_model *m, struct cv_onnx_val *v)
{
    const float *mean = cv_model_norm_mean(m), *sd = cv_model_norm_std(m);
    int64_t dims[3] = {v->shape.c, v->shape.h, v->shape.w}, flat[1] = {cv_model_inputs(m)};
    int64_t steps[2] = {v->shape.t, v->shape.c}; /* (T, F) */
    char a[CV_ONNX_NAME_MAX], b[CV_ONNX_NAME_MAX];
    const char *ea[1] = {a}, *eb[1] = {b};
    if (!mean)
        return;
    snprintf(g->prefix, sizeof(g->prefix), "input_norm");
    const int64_t *d = v->rank == 4 ? dims : v->rank == 3 ? steps : flat;
    int nd = v->rank == 4 ? 3 : v->rank == 3 ? 2 : 1;
    cv__onnx_floats(g, "mean", d, nd, mean, a);
    cv__onnx_floats(g, "std", d, nd, sd, b);
    cv__onnx_apply(g, "Sub", v, ea, 1, NULL, 0);
    cv__onnx_apply(g, "Div", v, eb, 1, NULL, 0);
    g->prefix[0] = '\0';
}

/* A sequence model: T steps of features, or T token ids for an embedding. */
static bool is_sequence(const struct cv_config *cfg)
{
    return cfg->model.input_steps > 0 || cfg->model.layers[0].type == CV_LAYER_EMBEDDING;
}

/* Nodes from "input" (and "lengths") to "probabilities". */
static cv_status build(struct cv_onnx *g, struct plan *p, cv_model *m, struct cv_error *err)
{
    const struct cv_config *cfg = cv_model_config(m);
    struct cv_onnx_val v = {.name = "input",
                            .shape = p->layers[0].in,
                            .rank = cfg->model.input_rank == 3   ? 4
                                    : cfg->model.input_steps > 0 ? 3
                                                                 : 2};
    enum cv_loss loss = cfg->model.loss;
    struct cv_layer *last = &p->layers[p->n - 1];
    enum cv_activation final = last->act;
    /* as model.c fuses: the network emits logits, predict applies the loss's activation */
    if (loss != CV_LOSS_MSE) {
        final = loss == CV_LOSS_SOFTMAX_CE ? CV_ACT_SOFTMAX : CV_ACT_SIGMOID;
        last->act = CV_ACT_LINEAR;
    }
    normalise(g, m, &v);
    for (int i = 0; i < p->n; i++) {
        cv_status st = cv__onnx_layer(g, &p->layers[i], &v, err);
        if (st != CV_OK)
            return st;
    }
    snprintf(g->prefix, sizeof(g->prefix), "output");
    if (v.rank != 3) /* a per-step output stays (N, T, outputs per step) */
        cv__onnx_rank(g, &v, 2);
    if (loss != CV_LOSS_MSE)
        cv__onnx_activation(g, &v, final, last->slope);
    const char *in[1] = {v.name};
    cv__onnx_node(g, "Identity", in, 1, "probabilities", NULL, 0);
    return CV_OK;
}

/* ValueInfoProto of a tensor (N, dims...) of elem (ONNX TensorProto type). */
static void value_info(struct cv_pb *graph, int field, const char *name, const int *dims, int nd,
                       int elem)
{
    struct cv_pb shape = {0}, tensor = {0}, type = {0}, vi = {0}, dim = {0};
    cv__pb_string(&dim, DIM_PARAM, "N");
    cv__pb_message(&shape, SHAPE_DIM, &dim);
    for (int k = 0; k < nd; k++) {
        cv__pb_free(&dim);
        cv__pb_varint(&dim, DIM_VALUE, (uint64_t)dims[k]);
        cv__pb_message(&shape, SHAPE_DIM, &dim);
    }
    cv__pb_varint(&tensor, TENSOR_ELEM, (uint64_t)elem);
    cv__pb_message(&tensor, TENSOR_SHAPE, &shape);
    cv__pb_message(&type, TYPE_TENSOR, &tensor);
    cv__pb_string(&vi, VALUE_NAME, name);
    cv__pb_message(&vi, VALUE_TYPE, &type);
    cv__pb_message(graph, field, &vi);
    cv__pb_free(&dim), cv__pb_free(&shape), cv__pb_free(&tensor), cv__pb_free(&type);
    cv__pb_free(&vi);
}

/* The ModelProto around the graph's nodes and initializers. */
static void model_proto(struct cv_pb *out, struct cv_onnx *g, const struct plan *p, cv_model *m)
{
    const struct cv_config *cfg = cv_model_config(m);
    const struct cv_shape last = p->layers[p->n - 1].out;
    int in[3] = {cfg->model.input[0], cfg->model.input[1], cfg->model.input[2]};
    int flat[1] = {cv_model_inputs(m)}, outputs[2] = {cv_model_outputs(m)};
    int steps[2] = {cfg->model.input_steps, cfg->model.input[0]}; /* (T, F) */
    struct cv_pb opset = {0};
    cv__pb_string(&g->graph, GRAPH_NAME, "caviar");
    value_info(&g->graph, GRAPH_INPUT, "input",
               cfg->model.input_rank == 3 ? in
               : cfg->model.input_steps   ? steps
                                          : flat,
               cfg->model.input_rank == 3 ? 3
               : cfg->model.input_steps   ? 2
                                          : 1,
               ELEM_FLOAT);
    if (is_sequence(cfg))
        value_info(&g->graph, GRAPH_INPUT, CV_ONNX_LENGTHS, NULL, 0, ELEM_INT32);
    if (last.t > 0) /* per step: (N, T, outputs per step) */
        outputs[0] = last.t, outputs[1] = (int)cv_shape_step(last);
    value_info(&g->graph, GRAPH_OUTPUT, "probabilities", outputs, last.t > 0 ? 2 : 1, ELEM_FLOAT);
    cv__pb_varint(out, MODEL_IR_VERSION, CV_ONNX_IR_VERSION);
    cv__pb_string(out, MODEL_PRODUCER, "caviar");
    cv__pb_string(out, MODEL_PRODUCER_VERSION, CAVIAR_VERSION_STRING);
    cv__pb_message(out, MODEL_GRAPH, &g->graph);
    cv__pb_string(&opset, OPSET_DOMAIN, "");
    cv__pb_varint(&opset, OPSET_VERSION, CV_ONNX_OPSET);
    cv__pb_message(out, MODEL_OPSET, &opset);
    cv__pb_free(&opset);
}

cv_status cv_export_onnx(cv_model *m, const char *path, struct cv_error *err)
{
    struct cv_onnx g = {0};
    struct cv_pb model = {0};
    struct plan *p = cv_calloc(1, sizeof(*p));
    if (!p)
        return cv_fail(err, CV_NOMEM, "export: out of memory");
    cv_status st = plan_bind(p, m, err);
    if (st == CV_OK)
        st = build(&g, p, m, err);
    if (st == CV_OK)
        model_proto(&model, &g, p, m);
    if (st == CV_OK && (g.graph.oom || model.oom))
        st = cv_fail(err, CV_NOMEM, "export %s: out of memory for the ONNX graph", path);
    if (st == CV_OK)
        st = cv__write_bytes_atomic(path, model.p, model.n, err);
    cv__pb_free(&model);
    cv__pb_free(&g.graph);
    plan_free(p);
    return st;
}
