/*
 * config_layer.c - model.layers (and a residual block's layers) -> layer
 * specs: the per-type table of allowed keys, type-dependent defaults and
 * required keys, with config.c's field machinery (config_internal.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/config.h"
#include "config_internal.h"
#include "config_tree.h"
#include "util.h"

static cv_status sp_pad(struct pctx *p, const struct cv_node *n, void *base);
static cv_status sp_trainable(struct pctx *p, const struct cv_node *n, void *base);
static cv_status sp_layer(struct pctx *p, const struct cv_node *n, void *base);
static cv_status convert_layer(struct pctx *p, const struct cv_node *n, struct cv_layer_spec *l);

static const char *const merge_names[] = {"concat", "sum", NULL};

/* Layer keys; `allowed` below says which apply to which type. */
static const struct field layer_fields[] = {
    {"type", LENUM(type, cv__layer_names)},
    {"units", F_INT, L(units), GE, 1, NONE, 0, NULL, 0, NULL},
    {"activation", LENUM(activation, cv__act_names)},
    {"slope", F_FLT, L(leaky_slope), GT, 0, LT, 1, NULL, 0, NULL},
    {"init", LENUM(init, cv__init_names)},
    {"keep", F_FLT, L(keep), GT, 0, LE, 1, NULL, 0, NULL},
    {"filters", F_INT, L(filters), GE, 1, NONE, 0, NULL, 0, NULL},
    {"size", F_INT, L(size), GE, 1, NONE, 0, NULL, 0, NULL},
    {"stride", F_INT, L(stride), GE, 1, NONE, 0, NULL, 0, NULL},
    {"pad", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_pad},
    {"momentum", F_FLT, L(bn_momentum), GE, 0, LT, 1, NULL, 0, NULL},
    {"eps", F_FLT, L(bn_eps), GT, 0, NONE, 0, NULL, 0, NULL},
    {"layers", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, cv__cfg_layers},
    {"trainable", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_trainable},
    {"vocab", F_INT, L(vocab), GE, 1, LE, 1 << 24, NULL, 0, NULL},
    {"dim", F_INT, L(dim), GE, 1, NONE, 0, NULL, 0, NULL},
    {"pad_id", F_INT, L(pad_id), GE, -1, LT, 1 << 24, NULL, 0, NULL},
    {"return_sequences", F_BOOL, L(return_sequences), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"merge_mode", LENUM(merge, merge_names)},
    {"layer", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_layer},
    {NULL}};

/* Allowed keys per layer type, as a space-separated list (messages use it). */
static const char *const layer_keys[CV_LAYER_TYPE_COUNT] = {
    [CV_LAYER_DENSE] = "type units activation slope init trainable",
    [CV_LAYER_DROPOUT] = "type keep",
    [CV_LAYER_CONV2D] = "type filters size stride pad activation slope init trainable",
    [CV_LAYER_MAXPOOL] = "type size stride",
    [CV_LAYER_AVGPOOL] = "type size stride",
    [CV_LAYER_GLOBAL_AVGPOOL] = "type",
    [CV_LAYER_BATCHNORM] = "type momentum eps activation slope trainable",
    [CV_LAYER_FLATTEN] = "type",
    [CV_LAYER_RESIDUAL] = "type layers activation slope trainable",
    [CV_LAYER_ACTIVATION] = "type activation slope",
    [CV_LAYER_EMBEDDING] = "type vocab dim pad_id trainable",
    [CV_LAYER_RNN] = "type units return_sequences init trainable",
    [CV_LAYER_GRU] = "type units return_sequences init trainable",
    [CV_LAYER_LSTM] = "type units return_sequences init trainable",
    [CV_LAYER_BIDIRECTIONAL] = "type layer merge_mode trainable",
};

static cv_status sp_pad(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_layer_spec *l = base;
    long long v;
    if (cv__cfg_scalar(n) && !strcmp(n->text, "same"))
        l->pad = CV_PAD_SAME;
    else if (cv__cfg_scalar(n) && !strcmp(n->text, "valid"))
        l->pad = CV_PAD_VALID;
    else if (cv__cfg_to_ll(n, &v) && v >= 0 && v < 1 << 16)
        l->pad = (int)v;
    else
        return cv__cfg_bad(p, n, "same, valid or an integer >= 0");
    return CV_OK;
}

/* trainable: false freezes the layer (stored inverted: a zeroed spec trains) */
static cv_status sp_trainable(struct pctx *p, const struct cv_node *n, void *base)
{
    static const struct field f = {"trainable", F_BOOL, 0, NONE, 0, NONE, 0, NULL, 0, NULL};
    struct cv_layer_spec *l = base;
    bool on = true;
    cv_status st = cv__cfg_set_field(p, &f, n, &on);
    l->frozen = !on;
    return st;
}

static void layer_defaults(struct cv_layer_spec *l, int line)
{
    memset(l, 0, sizeof(*l));
    l->line = line;
    l->leaky_slope = 0.01f;
    l->keep = 1.0f;
    l->stride = 0; /* 0 = default: 1 for conv, the window size for pools */
    l->pad = CV_PAD_VALID;
    l->bn_momentum = 0.9f;
    l->bn_eps = 1e-5f;
    l->pad_id = -1;
}

void cv__cfg_free_specs(struct cv_layer_spec *l, int n)
{
    for (int i = 0; i < n; i++) {
        cv__cfg_free_specs(l[i].children, l[i].n_children);
        free(l[i].children);
    }
}

/* Required keys per type, and defaults that depend on the type. */
static cv_status finish_layer(struct pctx *p, const struct cv_node *n, struct cv_layer_spec *l)
{
    const char *need = NULL;
    if (l->type == CV_LAYER_DENSE && l->units < 1)
        need = "units";
    else if (l->type == CV_LAYER_CONV2D && (l->filters < 1 || l->size < 1))
        need = "filters and size";
    else if ((l->type == CV_LAYER_MAXPOOL || l->type == CV_LAYER_AVGPOOL) && l->size < 1)
        need = "size";
    else if (l->type == CV_LAYER_DROPOUT && !cv__tree_get(n, "keep"))
        need = "keep";
    else if (l->type == CV_LAYER_RESIDUAL && l->n_children < 1)
        need = "layers (a non-empty list)";
    else if (l->type == CV_LAYER_EMBEDDING && (l->vocab < 1 || l->dim < 1))
        need = "vocab and dim";
    else if ((l->type == CV_LAYER_RNN || l->type == CV_LAYER_GRU || l->type == CV_LAYER_LSTM) &&
             l->units < 1)
        need = "units";
    else if (l->type == CV_LAYER_BIDIRECTIONAL && l->n_children != 1)
        need = "layer (an rnn, gru or lstm layer)";
    if (!need && l->type == CV_LAYER_EMBEDDING && l->pad_id >= l->vocab)
        need = "pad_id below vocab (or -1: none)";
    if (need) {
        char w[400];
        return cv_fail(p->err, CV_CONFIG, "%s: %s (%s) needs %s", cv__cfg_where(p, n, w, sizeof(w)),
                       p->path, cv__layer_names[l->type], need);
    }
    if (l->stride == 0)
        l->stride = (l->type == CV_LAYER_MAXPOOL || l->type == CV_LAYER_AVGPOOL) ? l->size : 1;
    if (l->type == CV_LAYER_RESIDUAL && !cv__tree_get(n, "activation"))
        l->activation = CV_ACT_RELU; /* a[l+2] = g(z[l+2] + a[l]) with g = relu */
    return CV_OK;
}

static cv_status convert_layer(struct pctx *p, const struct cv_node *n, struct cv_layer_spec *l)
{
    layer_defaults(l, n->line);
    const struct cv_node *t = cv__tree_get(n, "type");
    if (n->kind != CV_NODE_MAP || !t)
        return cv__cfg_bad(p, n, "a mapping with a 'type' key");
    size_t mark;
    cv__cfg_push(p, "type", &mark);
    cv_status st = cv__cfg_set_field(p, &layer_fields[0], t, l);
    cv__cfg_pop(p, mark);
    if (st == CV_OK)
        st = cv__cfg_apply(p, n, layer_fields, layer_keys[l->type], l);
    return st == CV_OK ? finish_layer(p, n, l) : st;
}

/* bidirectional: layer, the one recurrent layer it runs both ways */
static cv_status sp_layer(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_layer_spec *parent = base, *child;
    if (n->kind != CV_NODE_MAP)
        return cv__cfg_bad(p, n, "a mapping: an rnn, gru or lstm layer");
    cv__cfg_free_specs(parent->children, parent->n_children);
    free(parent->children);
    parent->n_children = 0;
    parent->children = child = cv_calloc(1, sizeof(*child));
    if (!child)
        return cv_fail(p->err, CV_NOMEM, "out of memory");
    parent->n_children = 1; /* freed on error too */
    cv_status st = convert_layer(p, n, child);
    if (st == CV_OK && child->type != CV_LAYER_RNN && child->type != CV_LAYER_GRU &&
        child->type != CV_LAYER_LSTM) {
        char w[400];
        st = cv_fail(p->err, CV_CONFIG, "%s: %s.type = %s: expected rnn, gru or lstm",
                     cv__cfg_where(p, n, w, sizeof(w)), p->path, cv__layer_names[child->type]);
    }
    return st;
}

/* model.layers, or a residual block's layers: base is the config or a spec */
cv_status cv__cfg_layers(struct pctx *p, const struct cv_node *n, void *base)
{
    bool top = !strcmp(p->path, "model.layers");
    struct cv_config *c = top ? base : NULL;
    struct cv_layer_spec *parent = top ? NULL : base, *specs;
    if (n->kind != CV_NODE_SEQ || n->n < 1 || n->n > CV_MAX_LAYERS)
        return cv__cfg_bad(p, n, "a list of 1 to 64 layers");
    specs = top ? c->model.layers : cv_calloc((size_t)n->n, sizeof(*specs));
    if (!specs)
        return cv_fail(p->err, CV_NOMEM, "out of memory");
    if (!top) {
        cv__cfg_free_specs(parent->children, parent->n_children);
        free(parent->children);
        parent->children = specs;
        parent->n_children = 0;
    } else {
        cv__cfg_free_specs(c->model.layers, c->model.n_layers);
        c->model.n_layers = 0;
    }
    for (int i = 0; i < n->n; i++) {
        char idx[16];
        size_t mark;
        snprintf(idx, sizeof(idx), "%d", i);
        cv__cfg_push(p, idx, &mark);
        cv_status st = convert_layer(p, n->kids[i], &specs[i]);
        cv__cfg_pop(p, mark);
        *(top ? &c->model.n_layers : &parent->n_children) = i + 1; /* freed on error too */
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}
