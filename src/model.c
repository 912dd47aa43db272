/*
 * model.c - a sequential network of layers over three contiguous arenas
 * (parameters, gradients, state) plus activations and scratch sized for
 * max_batch at build time.  Forward keeps every layer's output for backward;
 * backward ping-pongs between two input-gradient buffers and reports, layer
 * by layer, which tail of the gradient arena is final (for overlapped
 * allreduce).  The loss is fused with the final activation when they match.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/model.h"
#include "kernels.h"
#include "layer.h"

struct cv_model {
    const struct cv_config *cfg;        /* borrowed; outlives the model */
    struct cv_layer layers[CV_MAX_LAYERS];
    size_t param_offset[CV_MAX_LAYERS]; /* first arena element of each layer */
    int n_layers;
    int inputs, outputs, max_batch;
    size_t n_params, n_state;
    float *params, *grads, *state, *scratch; /* arenas */
    bool borrowed;                      /* params and grads belong to the caller */
    bool accumulate;                    /* grads are zero between batches (the caller's) */
    float *acts[CV_MAX_LAYERS];         /* (max_batch, out_i) outputs of layer i */
    float *act_mem;
    float *dbuf[2];                     /* (max_batch, widest) gradient ping-pong; split:
                                           (ranks max_batch, widest) */
    size_t widest;                      /* widest input or output, in floats per sample */
    float *norm_mean, *norm_std;        /* (inputs) */
    bool has_norm;
    enum cv_activation final_act;       /* applied by predict after fused logits */
    float final_slope;
    bool fused;                         /* final activation folded into the loss */
    /* A shared batch (cv_model_share_batch): each tensor below holds the
     * rows of every rank, rank after rank, max_batch rows each */
    int share_ranks, share_rank;        /* 0 ranks: not shared */
    float *share_in;                    /* (ranks max_batch, inputs) */
    float *share_acts[CV_MAX_LAYERS];   /* (ranks max_batch, out_i) */
    float *share_dz[CV_MAX_LAYERS];     /* dense layers: (ranks max_batch, out_i) */
    int split;                          /* layers [0, split) are split by features */
    void (*sync)(void *arg);            /* barrier of the host's ranks (split) */
    void *sync_arg;
};

static cv_status plan_layers(cv_model *m, struct cv_error *err)
{
    const struct cv_config *cfg = m->cfg;
    struct cv_shape s = {cfg->model.input[0], cfg->model.input[1], cfg->model.input[2]};
    m->inputs = (int)cv_shape_size(s);
    for (int i = 0; i < cfg->model.n_layers; i++) {
        cv_status st = cv__layer_plan(&m->layers[i], &cfg->model.layers[i], i, s, m->max_batch, err);
        m->n_layers = i + 1; /* so free() destroys what was planned */
        if (st != CV_OK)
            return st;
        s = m->layers[i].out;
    }
    if (m->n_layers == 0)
        return cv_fail(err, CV_CONFIG, "model.layers: expected at least one layer");
    m->outputs = (int)cv_shape_size(s);
    return CV_OK;
}

/* Decide whether the final activation is fused into the loss. */
static cv_status plan_loss(cv_model *m, struct cv_error *err)
{
    struct cv_layer *last = &m->layers[m->n_layers - 1];
    enum cv_loss loss = m->cfg->model.loss;
    m->final_act = last->act;
    m->final_slope = last->slope;
    if (loss == CV_LOSS_MSE)
        return CV_OK;
    enum cv_activation want = loss == CV_LOSS_SOFTMAX_CE ? CV_ACT_SOFTMAX : CV_ACT_SIGMOID;
    if (last->act != want && last->act != CV_ACT_LINEAR)
        return cv_fail(err, CV_CONFIG,
                       "model.loss = %s expects the last layer's activation to be %s (or linear "
                       "logits), got %s",
                       cv_loss_name(loss), cv_activation_name(want), cv_activation_name(last->act));
    if (loss == CV_LOSS_SOFTMAX_CE && m->outputs < 2)
        return cv_fail(err, CV_CONFIG,
                       "model.loss = softmax_cross_entropy needs >= 2 outputs, the last layer has %d",
                       m->outputs);
    m->final_act = want;
    m->fused = true;
    last->act = CV_ACT_LINEAR; /* the network emits logits */
    return CV_OK;
}

static cv_status alloc_arenas(cv_model *m, struct cv_error *err)
{
    size_t np = 0, ns = 0, nscr = 0, nact = 0, widest = (size_t)m->inputs;
    for (int i = 0; i < m->n_layers; i++) {
        m->param_offset[i] = np;
        cv__layer_sizes(&m->layers[i], &np, &ns, &nscr);
        size_t f = cv_shape_size(m->layers[i].out);
        nact += f;
        widest = f > widest ? f : widest;
    }
    m->n_params = np;
    m->n_state = ns;
    m->widest = widest;
    size_t mb = (size_t)m->max_batch;
    m->params = cv_calloc_big(np, sizeof(float));
    m->grads = cv_calloc_big(np, sizeof(float));
    m->state = cv_calloc_big(ns, sizeof(float));
    m->scratch = cv_calloc_big(nscr, sizeof(float));
    m->act_mem = cv_calloc_big(nact * mb, sizeof(float));
    m->dbuf[0] = cv_calloc_big(widest * mb, sizeof(float));
    m->dbuf[1] = cv_calloc_big(widest * mb, sizeof(float));
    m->norm_mean = cv_calloc((size_t)m->inputs, sizeof(float));
    m->norm_std = cv_calloc((size_t)m->inputs, sizeof(float));
    if (!m->params || !m->grads || !m->state || !m->scratch || !m->act_mem || !m->dbuf[0] ||
        !m->dbuf[1] || !m->norm_mean || !m->norm_std)
        return cv_fail(err, CV_NOMEM, "model: out of memory for %zu parameters at batch %d", np,
                       m->max_batch);
    return CV_OK;
}

/* The host's rows of a shared batch. */
static int host_rows(const cv_model *m)
{
    return m->share_ranks * m->max_batch;
}

/* This rank's rows of a shared tensor of `width` floats per sample. */
static float *own_rows(const cv_model *m, float *t, size_t width)
{
    return t + (size_t)m->share_rank * (size_t)m->max_batch * width;
}

static void bind_arenas(cv_model *m)
{
    float *p = m->params, *g = m->grads, *s = m->state, *scr = m->scratch, *a = m->act_mem;
    for (int i = 0; i < m->n_layers; i++) {
        struct cv_layer *l = &m->layers[i];
        cv__layer_bind(l, &p, &g, &s, &scr);
        m->acts[i] = a;
        a += cv_shape_size(l->out) * (size_t)m->max_batch;
        if (m->share_ranks > 0) {
            m->acts[i] = own_rows(m, m->share_acts[i], cv_shape_size(l->out));
            if (m->share_dz[i])
                l->scratch = own_rows(m, m->share_dz[i], cv_shape_size(l->out));
        }
    }
}

cv_status cv_model_create(const struct cv_config *cfg, int max_batch, cv_model **out,
                          struct cv_error *err)
{
    *out = NULL;
    if (max_batch < 1)
        return cv_fail(err, CV_INVAL, "model: max batch %d: expected >= 1", max_batch);
    cv_model *m = cv_calloc(1, sizeof(*m));
    if (!m)
        return cv_fail(err, CV_NOMEM, "model: out of memory");
    m->cfg = cfg;
    m->max_batch = max_batch;
    cv_status st = plan_layers(m, err);
    if (st == CV_OK)
        st = plan_loss(m, err);
    if (st == CV_OK)
        st = alloc_arenas(m, err);
    if (st != CV_OK) {
        cv_model_free(m);
        return st;
    }
    bind_arenas(m);
    *out = m;
    return CV_OK;
}

void cv_model_use_arenas(cv_model *m, float *params, float *grads)
{
    if (!m->borrowed) {
        free(m->params);
        free(m->grads);
    }
    m->params = params;
    m->grads = grads;
    memset(grads, 0, sizeof(float) * m->n_params); /* as its own; once the own is freed */
    m->borrowed = true;
    bind_arenas(m);
}

/* Parameters of layer i, its children's included. */
static size_t layer_params(const cv_model *m, int i)
{
    size_t end = i + 1 < m->n_layers ? m->param_offset[i + 1] : m->n_params;
    return end - m->param_offset[i];
}

size_t cv_model_row_start(const cv_model *m, size_t at)
{
    for (int i = 0; i < m->n_layers; i++) {
        const struct cv_layer *l = &m->layers[i];
        size_t v0 = m->param_offset[i];
        for (int k = 0; k < l->n_params && l->n_children == 0; k++) {
            const struct cv_view *v = &l->params[k];
            if (at >= v0 && at < v0 + v->count) {
                size_t row = v->count / (size_t)v->dims[0];
                return v0 + (at - v0 + row - 1) / row * row;
            }
            v0 += v->count;
        }
    }
    return at;
}

bool cv_model_can_share_batch(const cv_model *m)
{
    for (int i = 0; i < m->n_layers; i++) {
        const struct cv_layer *l = &m->layers[i];
        if (layer_params(m, i) > 0 && (!l->ops->weight_grads || l->n_children > 0 || l->n_state > 0))
            return false;
    }
    return true;
}

/* Walks the shared tensors in their order in the buffer: the input, then
 * each layer's output and, for layers with weight_grads, its dz. */
static size_t share_layout(cv_model *m, float *buf, int ranks)
{
    size_t rows = (size_t)ranks * (size_t)m->max_batch, at = 0;
    if (buf)
        m->share_in = buf;
    at += rows * (size_t)m->inputs;
    for (int i = 0; i < m->n_layers; i++) {
        size_t f = cv_shape_size(m->layers[i].out);
        if (buf)
            m->share_acts[i] = buf + at;
        at += rows * f;
        bool dz = m->layers[i].ops->weight_grads && layer_params(m, i) > 0;
        if (buf)
            m->share_dz[i] = dz ? buf + at : NULL;
        at += dz ? rows * f : 0;
    }
    return at;
}

size_t cv_model_shared_batch_floats(cv_model *m, int ranks)
{
    return share_layout(m, NULL, ranks);
}

float *cv_model_share_batch(cv_model *m, float *buf, int ranks, int rank)
{
    CV_ASSERT(cv_model_can_share_batch(m) && ranks >= 1 && rank >= 0 && rank < ranks);
    share_layout(m, buf, ranks);
    m->share_ranks = ranks;
    m->share_rank = rank;
    bind_arenas(m);
    return own_rows(m, m->share_in, (size_t)m->inputs);
}

void cv_model_owned_grads(cv_model *m, size_t lo, size_t hi)
{
    CV_ASSERT(m->share_ranks > 0 && lo <= hi && hi <= m->n_params);
    int rows = host_rows(m);
    for (int i = 0; i < m->n_layers; i++) {
        struct cv_layer *l = &m->layers[i];
        size_t first = m->param_offset[i], end = first + layer_params(m, i);
        size_t a = lo > first ? lo : first, b = hi < end ? hi : end;
        if (a < b)
            l->ops->weight_grads(l, i > 0 ? m->share_acts[i - 1] : m->share_in, m->share_dz[i],
                                 rows, a - first, b - first, m->accumulate);
    }
}

int cv_model_splittable_layers(const cv_model *m, int min_width)
{
    int k = 0;
    while (k < m->n_layers && m->layers[k].ops->forward_cols && m->layers[k].n_children == 0 &&
           m->layers[k].act != CV_ACT_SOFTMAX &&
           cv_shape_size(m->layers[k].out) >= (size_t)min_width)
        k++;
    return k;
}

cv_status cv_model_split_features(cv_model *m, int layers, void (*sync)(void *arg), void *arg,
                                  struct cv_error *err)
{
    CV_ASSERT(m->share_ranks > 0 && layers >= 0 && layers <= cv_model_splittable_layers(m, 1));
    if (layers == 0)
        return CV_OK;
    size_t floats = m->widest * (size_t)host_rows(m);
    for (int k = 0; k < 2; k++) { /* input gradients of every row of the host */
        free(m->dbuf[k]);
        m->dbuf[k] = cv_calloc_big(floats, sizeof(float));
        if (!m->dbuf[k])
            return cv_fail(err, CV_NOMEM, "model: out of memory for split layers' gradients "
                           "(%zu floats)", floats);
    }
    m->split = layers;
    m->sync = sync;
    m->sync_arg = arg;
    return CV_OK;
}

/* Shared batch: rows [n, max_batch) of this rank's part of every tensor
 * are zeroed, so that the owners' sums over all rows add nothing for them. */
static void clear_unused_rows(cv_model *m, int n)
{
    size_t skip = (size_t)n, left = (size_t)(m->max_batch - n);
    if (left == 0)
        return;
    memset(own_rows(m, m->share_in, (size_t)m->inputs) + skip * (size_t)m->inputs, 0,
           left * (size_t)m->inputs * sizeof(float));
    for (int i = 0; i < m->n_layers; i++) {
        size_t f = cv_shape_size(m->layers[i].out);
        memset(m->acts[i] + skip * f, 0, left * f * sizeof(float));
        if (m->share_dz[i])
            memset(m->layers[i].scratch + skip * f, 0, left * f * sizeof(float));
    }
}

void cv_model_accumulate_grads(cv_model *m, bool on)
{
    m->accumulate = on;
}

void cv_model_free(cv_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_layers; i++)
        cv__layer_destroy(&m->layers[i]);
    if (!m->borrowed) {
        free(m->params);
        free(m->grads);
    }
    free(m->state);
    free(m->scratch);
    free(m->act_mem);
    free(m->dbuf[0]);
    free(m->dbuf[1]);
    free(m->norm_mean);
    free(m->norm_std);
    free(m);
}

void cv_model_init_params(cv_model *m, uint64_t seed)
{
    for (int i = 0; i < m->n_layers; i++) {
        struct cv_rng rng; /* one stream per layer: adding a layer does not shift the others */
        cv_rng_seed(&rng, seed, CV_RNG_INIT, (uint64_t)i, 0);
        cv__layer_init(&m->layers[i], &rng);
    }
}

size_t cv_model_n_params(const cv_model *m)
{
    return m->n_params;
}
float *cv_model_params(cv_model *m)
{
    return m->params;
}
float *cv_model_grads(cv_model *m)
{
    return m->grads;
}
size_t cv_model_n_state(const cv_model *m)
{
    return m->n_state;
}
float *cv_model_state(cv_model *m)
{
    return m->state;
}
int cv_model_inputs(const cv_model *m)
{
    return m->inputs;
}
int cv_model_outputs(const cv_model *m)
{
    return m->outputs;
}
int cv_model_max_batch(const cv_model *m)
{
    return m->max_batch;
}
const struct cv_config *cv_model_config(const cv_model *m)
{
    return m->cfg;
}
const float *cv_model_norm_mean(const cv_model *m)
{
    return m->has_norm ? m->norm_mean : NULL;
}
const float *cv_model_norm_std(const cv_model *m)
{
    return m->has_norm ? m->norm_std : NULL;
}

cv_status cv_model_set_norm(cv_model *m, const float *mean, const float *std,
                            struct cv_error *err)
{
    for (int j = 0; j < m->inputs; j++)
        if (!isfinite(mean[j]) || !isfinite(std[j]) || !(std[j] > 0))
            return cv_fail(err, CV_NONFINITE,
                           "normalisation: feature %d has mean %g, std %g: expected finite, std > 0",
                           j, mean[j], std[j]);
    memcpy(m->norm_mean, mean, sizeof(float) * (size_t)m->inputs);
    memcpy(m->norm_std, std, sizeof(float) * (size_t)m->inputs);
    m->has_norm = true;
    return CV_OK;
}

/* Columns [c0, c1) of a tensor `width` wide that this rank computes in a
 * split layer: contiguous shares, cut at multiples of 16 floats (64 bytes)
 * where every rank still gets 16, so that two ranks rarely write one cache
 * line. */
static void split_cols(const cv_model *m, size_t width, int *c0, int *c1)
{
    long long w = (long long)width, r = m->share_rank, p = m->share_ranks;
    long long align = w >= 16 * p ? 16 : 1;
    *c0 = (int)(w * r / p / align * align);
    *c1 = r + 1 == p ? (int)w : (int)(w * (r + 1) / p / align * align);
}

/* A barrier of the host's ranks; returns the seconds it waited. */
static double sync_ranks(cv_model *m)
{
    double t0 = cv_now();
    m->sync(m->sync_arg);
    return cv_now() - t0;
}

/* In training, layers [0, split) compute this rank's share of their output
 * features over the host's rows, each followed by a barrier, since the
 * next layer reads every column (and the first reads every rank's inputs);
 * the rest, and every layer in prediction (each rank its own rows),
 * compute this rank's n rows.  Returns the seconds spent in barriers. */
static double forward(cv_model *m, const struct cv_ctx *ctx, const float *x, int n)
{
    int split = ctx->train ? m->split : 0;
    double waited = split > 0 ? sync_ranks(m) : 0;
    const float *in = x;
    for (int i = 0; i < m->n_layers; i++) {
        struct cv_layer *l = &m->layers[i];
        if (i < split) {
            int c0, c1;
            split_cols(m, cv_shape_size(l->out), &c0, &c1);
            l->ops->forward_cols(l, i > 0 ? m->share_acts[i - 1] : m->share_in, m->share_acts[i],
                                 host_rows(m), c0, c1);
            waited += sync_ranks(m);
        } else {
            l->ops->forward(l, ctx, in, m->acts[i], n);
        }
        in = m->acts[i];
    }
    return waited;
}

/* Loss sum over the batch; d = scale * dLoss/d(network output). */
static double loss(cv_model *m, const struct cv_batch *b, float scale, float *d,
                   long long *correct)
{
    const float *z = m->acts[m->n_layers - 1];
    int f = m->outputs;
    switch (m->cfg->model.loss) {
    case CV_LOSS_SOFTMAX_CE:
        return cv_loss_softmax_ce(z, b->y_class, b->n, f, scale, d, correct);
    case CV_LOSS_BCE:
        return cv_loss_bce_logits(z, b->y_class, b->y_vec, b->n, f, scale, d, correct);
    case CV_LOSS_MSE:
        return cv_loss_mse(z, b->y_class, b->y_vec, b->n, f, scale, d, correct);
    }
    return 0;
}

/* Backward of split layer i: its output gradients dz from dy, which holds
 * this rank's n rows (from the first layer after the split ones) or this
 * rank's columns of the host's rows (from a split layer); then, after a
 * barrier, this rank's columns of the input gradients over the host's rows.
 * Returns the seconds spent in the barrier. */
static double split_backward(cv_model *m, int i, int n, const float *dy, bool by_cols, float *dx)
{
    struct cv_layer *l = &m->layers[i];
    int c0, c1;
    size_t out = cv_shape_size(l->out);
    if (by_cols) {
        split_cols(m, out, &c0, &c1);
        l->ops->act_grads_cols(l, m->share_acts[i], dy, m->share_dz[i], host_rows(m), c0, c1);
    } else {
        l->ops->act_grads_cols(l, m->acts[i], dy, l->scratch, n, 0, (int)out);
    }
    if (!dx) /* the first layer: the barrier before the owners' weight gradients follows */
        return 0;
    double waited = sync_ranks(m); /* dx reads every rank's dz */
    split_cols(m, cv_shape_size(l->in), &c0, &c1);
    l->ops->input_grads_cols(l, m->share_dz[i], dx, host_rows(m), c0, c1);
    return waited;
}

/* Returns the seconds spent in barriers (split layers). */
static double backward(cv_model *m, const struct cv_ctx *ctx, const float *x, int n,
                       cv_grad_ready_fn ready, void *ready_arg)
{
    int cur = 0;          /* dbuf[cur] holds dLoss/d(output of layer i) */
    bool by_cols = false; /* ... as this rank's columns of the host's rows, else n rows */
    double waited = 0;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        float *dx = i > 0 ? m->dbuf[cur ^ 1] : NULL;
        if (i < m->split) {
            waited += split_backward(m, i, n, m->dbuf[cur], by_cols, dx);
            by_cols = true;
        } else {
            const float *in = i > 0 ? m->acts[i - 1] : x;
            m->layers[i].ops->backward(&m->layers[i], ctx, in, m->acts[i], m->dbuf[cur], dx, n);
        }
        cur ^= 1;
        if (ready)
            ready(ready_arg, m->param_offset[i]);
    }
    return waited;
}

void cv_model_train_batch(cv_model *m, const struct cv_batch *b, uint64_t step, float grad_scale,
                          cv_grad_ready_fn ready, void *ready_arg, struct cv_batch_stats *stats)
{
    CV_ASSERT(b->n >= 0 && b->n <= m->max_batch);
    bool shared = m->share_ranks > 0;
    struct cv_ctx ctx = {.train = true, .seed = m->cfg->train.seed, .step = step, .rows = b->rows,
                         .accumulate = m->accumulate, .defer_weights = shared};
    const float *x = b->x;
    if (shared) {
        float *own = own_rows(m, m->share_in, (size_t)m->inputs);
        if (b->x != own && b->n > 0) /* gathered elsewhere: the owners read it here */
            memcpy(own, b->x, sizeof(float) * (size_t)b->n * (size_t)m->inputs);
        clear_unused_rows(m, b->n);
        x = own;
    }
    if (b->n == 0 && m->split == 0) { /* a rank whose shard ran out still joins the allreduce
                                         (and the split layers, below, with no rows) */
        if (!shared)
            memset(m->grads, 0, sizeof(float) * m->n_params);
        if (ready)
            ready(ready_arg, 0);
        return;
    }
    double t0 = cv_now();
    double sync_f = forward(m, &ctx, x, b->n);
    long long correct = 0;
    double l = loss(m, b, grad_scale, m->dbuf[0], &correct);
    double t1 = cv_now();
    double sync_b = backward(m, &ctx, x, b->n, ready, ready_arg);
    if (stats) {
        stats->loss_sum += l;
        stats->correct += correct;
        stats->count += b->n;
        stats->t_forward += t1 - t0 - sync_f;
        stats->t_backward += cv_now() - t1 - sync_b;
        stats->t_sync += sync_f + sync_b;
    }
}

void cv_model_predict(cv_model *m, const struct cv_batch *b, float *out,
                      struct cv_batch_stats *stats)
{
    CV_ASSERT(b->n >= 0 && b->n <= m->max_batch);
    if (b->n == 0)
        return;
    struct cv_ctx ctx = {.train = false, .seed = m->cfg->train.seed, .rows = b->rows};
    forward(m, &ctx, b->x, b->n);
    if (stats && (b->y_class || b->y_vec)) {
        long long correct = 0;
        stats->loss_sum += loss(m, b, 0.0f, m->dbuf[0], &correct);
        stats->correct += correct;
        stats->count += b->n;
    }
    size_t total = (size_t)b->n * (size_t)m->outputs;
    memcpy(out, m->acts[m->n_layers - 1], sizeof(float) * total);
    if (m->fused)
        cv_act_apply(out, b->n, m->outputs, m->final_act, m->final_slope);
}

/* ---- walking views (checkpoints, L2, summaries) ---- */

struct walk {
    cv_view_fn fn;
    void *arg;
    bool state;
};

static cv_status walk_layer(struct cv_layer *l, const char *prefix, struct walk *w,
                            struct cv_error *err)
{
    char path[256];
    struct cv_view *views = w->state ? l->state : l->params;
    int nv = w->state ? l->n_state : l->n_params;
    for (int v = 0; v < nv; v++) {
        snprintf(path, sizeof(path), "%s/%s", prefix, views[v].name);
        cv_status st = w->fn(w->arg, path, views[v].dims, views[v].ndims, views[v].data,
                             views[v].count, err);
        if (st != CV_OK)
            return st;
    }
    for (int c = 0; c < l->n_children; c++) {
        snprintf(path, sizeof(path), "%s/%02d_%s", prefix, c,
                 cv_layer_type_name(l->children[c].ops->type));
        cv_status st = walk_layer(&l->children[c], path, w, err);
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}

static cv_status walk(cv_model *m, struct walk *w, struct cv_error *err)
{
    char prefix[64];
    for (int i = 0; i < m->n_layers; i++) {
        snprintf(prefix, sizeof(prefix), "layers/%02d_%s", i,
                 cv_layer_type_name(m->layers[i].ops->type));
        cv_status st = walk_layer(&m->layers[i], prefix, w, err);
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}

cv_status cv_model_each_param(cv_model *m, cv_view_fn fn, void *arg, struct cv_error *err)
{
    struct walk w = {fn, arg, false};
    return walk(m, &w, err);
}

cv_status cv_model_each_state(cv_model *m, cv_view_fn fn, void *arg, struct cv_error *err)
{
    struct walk w = {fn, arg, true};
    return walk(m, &w, err);
}

static void decay_layer(const struct cv_layer *l, const float *base, unsigned char *mask,
                        double *sum)
{
    for (int v = 0; v < l->n_params; v++) {
        const struct cv_view *pv = &l->params[v];
        size_t off = (size_t)(pv->data - base);
        if (mask)
            memset(mask + off, pv->decay ? 1 : 0, pv->count);
        if (sum && pv->decay)
            for (size_t k = 0; k < pv->count; k++)
                *sum += (double)pv->data[k] * pv->data[k];
    }
    for (int c = 0; c < l->n_children; c++)
        decay_layer(&l->children[c], base, mask, sum);
}

double cv_model_l2_sum(const cv_model *m)
{
    double s = 0;
    for (int i = 0; i < m->n_layers; i++)
        decay_layer(&m->layers[i], m->params, NULL, &s);
    return s;
}

void cv_model_decay_mask(const cv_model *m, unsigned char *mask)
{
    for (int i = 0; i < m->n_layers; i++)
        decay_layer(&m->layers[i], m->params, mask, NULL);
}

void cv_model_summary(const cv_model *m, void (*print)(void *arg, const char *line), void *arg)
{
    char line[160];
    snprintf(line, sizeof(line), "  input      (%d, %d, %d)", m->cfg->model.input[0],
             m->cfg->model.input[1], m->cfg->model.input[2]);
    print(arg, line);
    for (int i = 0; i < m->n_layers; i++) {
        const struct cv_layer *l = &m->layers[i];
        size_t np = 0, ns = 0, nscr = 0;
        cv__layer_sizes(l, &np, &ns, &nscr);
        snprintf(line, sizeof(line), "  %2d %-14s -> (%d, %d, %d)  %zu params%s", i,
                 cv_layer_type_name(l->ops->type), l->out.c, l->out.h, l->out.w, np,
                 i == m->n_layers - 1 && m->fused ? "  [activation fused into loss]" : "");
        print(arg, line);
    }
    snprintf(line, sizeof(line), "  total %zu parameters, %zu state values, loss %s", m->n_params,
             m->n_state, cv_loss_name(m->cfg->model.loss));
    print(arg, line);
}
