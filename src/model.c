/*
 * model.c - a sequential network of layers over three contiguous arenas
 * (parameters, gradients, state) plus activations and scratch sized for
 * max_batch at build time.  Forward keeps every layer's output for backward;
 * backward ping-pongs between two input-gradient buffers.  The loss is
 * fused with the final activation when they match.  A final output with a
 * time axis (T, classes) takes per-step targets: each valid step is a
 * softmax cross-entropy term of its row.  Nothing here knows of ranks or MPI.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/model.h"
#include "caviar/text.h"
#include "kernels.h"
#include "layer.h"

struct cv_model {
    const struct cv_config *cfg; /* borrowed; outlives the model */
    struct cv_layer layers[CV_MAX_LAYERS];
    int n_layers;
    int inputs, outputs, max_batch;
    int out_steps; /* T of a sequence output (per-step targets), else 0 */
    size_t n_params, n_state;
    float *params, *grads, *state, *scratch; /* arenas */
    bool borrowed;                           /* params and grads belong to the caller */
    float *acts[CV_MAX_LAYERS];              /* (max_batch, out_i) outputs of layer i */
    float *act_mem;
    float *dbuf[2];              /* (max_batch, widest) gradient ping-pong */
    float *norm_mean, *norm_std; /* (inputs) */
    bool has_norm;
    enum cv_activation final_act; /* applied by predict after fused logits */
    float final_slope;
    bool fused;     /* final activation folded into the loss */
    float *class_w; /* (outputs) softmax CE class weights, NULL = none */

    struct cv_vocab tokens; /* a text model's vocabulary (n = 0: none), for sampling */
    char **names;           /* (n_names) class names of its training data, one block */
    int n_names;
};

static cv_status plan_layers(cv_model *m, struct cv_error *err)
{
    const struct cv_config *cfg = m->cfg;
    struct cv_shape s = {cfg->model.input[0], cfg->model.input[1], cfg->model.input[2],
                         cfg->model.input_steps};
    cv_status st = cv__shape_check("model.input", s, m->max_batch, err);
    if (st != CV_OK)
        return st;
    m->inputs = (int)cv_shape_size(s);
    for (int i = 0; i < cfg->model.n_layers; i++) {
        st = cv__layer_plan(&m->layers[i], &cfg->model.layers[i], i, s, m->max_batch, err);
        m->n_layers = i + 1; /* so free() destroys what was planned */
        if (st != CV_OK)
            return st;
        s = m->layers[i].out;
    }
    if (m->n_layers == 0)
        return cv_fail(err, CV_CONFIG, "model.layers: expected at least one layer");
    m->outputs = (int)cv_shape_size(s);
    m->out_steps = s.t;
    return CV_OK;
}

/* Outputs of one step: the classes of per-step targets (all outputs
 * without a time axis). */
static int step_outputs(const cv_model *m)
{
    return m->out_steps > 0 ? m->outputs / m->out_steps : m->outputs;
}

/* model.class_weights: one per class (balanced ones come from the trainer,
 * which counts the labels: 1 until then). */
static cv_status plan_class_weights(cv_model *m, struct cv_error *err)
{
    const struct cv_config *c = m->cfg;
    int k = c->model.n_class_weights, classes = step_outputs(m);
    if (!k && !c->model.balanced)
        return CV_OK;
    if (k && k != classes)
        return cv_fail(err, CV_CONFIG,
                       "model.class_weights has %d entries, but the last layer has %d outputs "
                       "(one weight per class)",
                       k, classes);
    m->class_w = cv_calloc((size_t)classes, sizeof(float));
    if (!m->class_w)
        return cv_fail(err, CV_NOMEM, "model: out of memory");
    for (int j = 0; j < classes; j++)
        m->class_w[j] = k ? c->model.class_weights[j] : 1.0f;
    return CV_OK;
}

/* Decide whether the final activation is fused into the loss. */
static cv_status plan_loss(cv_model *m, struct cv_error *err)
{
    struct cv_layer *last = &m->layers[m->n_layers - 1];
    enum cv_loss loss = m->cfg->model.loss;
    m->final_act = last->act;
    m->final_slope = last->slope;
    if (m->out_steps > 0 && loss != CV_LOSS_SOFTMAX_CE)
        return cv_fail(err, CV_CONFIG,
                       "model.loss = %s: a sequence output (%d steps) takes per-step classes: "
                       "use softmax_cross_entropy",
                       cv_loss_name(loss), m->out_steps);
    if (loss == CV_LOSS_MSE)
        return CV_OK;
    enum cv_activation want = loss == CV_LOSS_SOFTMAX_CE ? CV_ACT_SOFTMAX : CV_ACT_SIGMOID;
    if (last->act != want && last->act != CV_ACT_LINEAR)
        return cv_fail(err, CV_CONFIG,
                       "model.loss = %s expects the last layer's activation to be %s (or linear "
                       "logits), got %s",
                       cv_loss_name(loss), cv_activation_name(want), cv_activation_name(last->act));
    if (loss == CV_LOSS_SOFTMAX_CE && step_outputs(m) < 2)
        return cv_fail(
            err, CV_CONFIG,
            "model.loss = softmax_cross_entropy needs >= 2 outputs, the last layer has %d",
            step_outputs(m));
    m->final_act = want;
    m->fused = true;
    last->act = CV_ACT_LINEAR; /* the network emits logits */
    return plan_class_weights(m, err);
}

static cv_status alloc_arenas(cv_model *m, struct cv_error *err)
{
    size_t np = 0, ns = 0, nscr = 0, nact = 0, widest = (size_t)m->inputs;
    for (int i = 0; i < m->n_layers; i++) {
        cv__layer_sizes(&m->layers[i], &np, &ns, &nscr);
        size_t f = cv_shape_size(m->layers[i].out);
        nact += f;
        widest = f > widest ? f : widest;
    }
    m->n_params = np;
    m->n_state = ns;
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

static void bind_arenas(cv_model *m)
{
    float *p = m->params, *g = m->grads, *s = m->state, *scr = m->scratch, *a = m->act_mem;
    for (int i = 0; i < m->n_layers; i++) {
        struct cv_layer *l = &m->layers[i];
        cv__layer_bind(l, &p, &g, &s, &scr);
        m->acts[i] = a;
        a += cv_shape_size(l->out) * (size_t)m->max_batch;
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
    m->borrowed = true;
    bind_arenas(m);
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
    free(m->class_w);
    cv_vocab_deinit(&m->tokens);
    free(m->names);
    free(m);
}

cv_status cv_model_set_class_weights(cv_model *m, const float *w, struct cv_error *err)
{
    if (!m->class_w)
        return cv_fail(err, CV_INVAL, "model: no class weights configured (model.class_weights)");
    memcpy(m->class_w, w, sizeof(float) * (size_t)step_outputs(m));
    return CV_OK;
}

cv_status cv_model_set_keep(cv_model *m, int layer, float keep, struct cv_error *err)
{
    if (layer < 0 || layer >= m->n_layers || m->layers[layer].ops->type != CV_LAYER_DROPOUT)
        return cv_fail(err, CV_INVAL, "model.layers.%d.keep: layer %d is not a dropout layer",
                       layer, layer);
    if (!(keep > 0.0f && keep <= 1.0f))
        return cv_fail(err, CV_INVAL, "model.layers.%d.keep = %g: expected a number in (0, 1]",
                       layer, keep);
    m->layers[layer].keep = keep;
    return CV_OK;
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

static void widen_span(const cv_model *m, const struct cv_layer *l, size_t *lo, size_t *hi)
{
    for (int i = 0; i < l->n_params && !l->frozen; i++) {
        size_t a = (size_t)(l->params[i].data - m->params), b = a + l->params[i].count;
        *lo = a < *lo ? a : *lo;
        *hi = b > *hi ? b : *hi;
    }
    for (int i = 0; i < l->n_children; i++)
        widen_span(m, &l->children[i], lo, hi);
}

void cv_model_trainable_span(const cv_model *m, size_t *lo, size_t *hi)
{
    *lo = m->n_params;
    *hi = 0;
    for (int i = 0; i < m->n_layers; i++)
        widen_span(m, &m->layers[i], lo, hi);
    if (*lo >= *hi)
        *lo = *hi = 0;
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
int cv_model_output_steps(const cv_model *m)
{
    return m->out_steps;
}
int cv_model_vocab(const cv_model *m)
{
    const struct cv_layer *l = &m->layers[0];
    return l->ops->type == CV_LAYER_EMBEDDING ? l->spec->vocab : 0;
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

const struct cv_vocab *cv_model_tokens(const cv_model *m)
{
    return m->tokens.n > 0 ? &m->tokens : NULL;
}

cv_status cv_model_set_tokens(cv_model *m, const struct cv_vocab *v, struct cv_error *err)
{
    return cv_vocab_copy(&m->tokens, v, err);
}

int cv_model_classes(const cv_model *m)
{
    return step_outputs(m);
}

const char *const *cv_model_class_names(const cv_model *m, int *n)
{
    *n = m->n_names;
    return (const char *const *)m->names;
}

cv_status cv_model_set_class_names(cv_model *m, const char *const *names, int n,
                                   struct cv_error *err)
{
    char **block = cv_strings_copy(names, n);
    if (!block)
        return cv_fail(err, CV_NOMEM, "out of memory for %d class names", n);
    free(m->names);
    m->names = block;
    m->n_names = n;
    return CV_OK;
}

cv_status cv_model_set_norm(cv_model *m, const float *mean, const float *std, struct cv_error *err)
{
    for (int j = 0; j < m->inputs; j++)
        if (!isfinite(mean[j]) || !isfinite(std[j]) || !(std[j] > 0))
            return cv_fail(
                err, CV_NONFINITE,
                "normalisation: feature %d has mean %g, std %g: expected finite, std > 0", j,
                mean[j], std[j]);
    memcpy(m->norm_mean, mean, sizeof(float) * (size_t)m->inputs);
    memcpy(m->norm_std, std, sizeof(float) * (size_t)m->inputs);
    m->has_norm = true;
    return CV_OK;
}

static void forward(cv_model *m, const struct cv_ctx *ctx, const float *x, int n)
{
    const float *in = x;
    for (int i = 0; i < m->n_layers; i++) {
        struct cv_layer *l = &m->layers[i];
        l->ops->forward(l, ctx, in, m->acts[i], n);
        in = m->acts[i];
    }
}

/* Loss sum over the batch; d = scale * dLoss/d(network output).  The
 * training objective (`train`) has the label smoothing and class weights;
 * evaluation reports the plain cross-entropy, comparable across recipes. */
static double loss(cv_model *m, const struct cv_batch *b, bool train, float scale, float *d,
                   long long *correct)
{
    const float *z = m->acts[m->n_layers - 1];
    int f = step_outputs(m), rows = b->n * (m->out_steps > 0 ? m->out_steps : 1);
    struct cv_ce_opts ce = {(float)m->cfg->model.label_smoothing, m->class_w};
    /* with per-step targets a row per step; padded steps (class -1) count for nothing */
    switch (m->cfg->model.loss) {
    case CV_LOSS_SOFTMAX_CE:
        return cv_loss_softmax_ce(z, b->y_class, rows, f, scale, train ? &ce : NULL, d, correct);
    case CV_LOSS_BCE:
        return cv_loss_bce_logits(z, b->y_class, b->y_vec, b->n, f, scale, d, correct);
    case CV_LOSS_MSE:
        return cv_loss_mse(z, b->y_class, b->y_vec, b->n, f, scale, d, correct);
    }
    return 0;
}

/* The first layer backward must reach: below it nothing trains (frozen
 * layers of a transferred trunk, pooling), so no gradient is needed there. */
static int first_to_train(const cv_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (cv__layer_trains(&m->layers[i]))
            return i;
    return m->n_layers;
}

/* Samples, or with per-step targets the valid steps, of a batch. */
static long long count_targets(const cv_model *m, const struct cv_batch *b)
{
    if (m->out_steps == 0 || !b->y_class)
        return b->n;
    long long c = 0;
    for (size_t i = 0; i < (size_t)b->n * (size_t)m->out_steps; i++)
        c += b->y_class[i] >= 0;
    return c;
}

/* Layers last to first, down to the first that trains. */
static void backward(cv_model *m, const struct cv_ctx *ctx, const float *x, int n)
{
    int cur = 0; /* dbuf[cur] holds dLoss/d(output of layer i) */
    int first = first_to_train(m);
    for (int i = m->n_layers - 1; i >= first; i--) {
        struct cv_layer *l = &m->layers[i];
        float *dx = i > first ? m->dbuf[cur ^ 1] : NULL;
        l->ops->backward(l, ctx, i > 0 ? m->acts[i - 1] : x, m->acts[i], m->dbuf[cur], dx, n);
        cur ^= 1;
    }
}

void cv_model_train_batch(cv_model *m, const struct cv_batch *b, uint64_t step, float grad_scale,
                          struct cv_batch_stats *stats)
{
    CV_ASSERT(b->n >= 0 && b->n <= m->max_batch);
    struct cv_ctx ctx = {.train = true,
                         .seed = m->cfg->train.seed,
                         .step = step,
                         .rows = b->rows,
                         .lengths = b->lengths};
    if (b->n == 0) { /* a rank whose shard ran out still joins the exchange */
        memset(m->grads, 0, sizeof(float) * m->n_params);
        return;
    }
    double t0 = cv_now();
    forward(m, &ctx, b->x, b->n);
    long long correct = 0;
    double l = loss(m, b, true, grad_scale, m->dbuf[0], &correct);
    double t1 = cv_now();
    backward(m, &ctx, b->x, b->n);
    if (stats) {
        stats->loss_sum += l;
        stats->correct += correct;
        stats->count += count_targets(m, b);
        stats->t_forward += t1 - t0;
        stats->t_backward += cv_now() - t1;
    }
}

void cv_model_predict(cv_model *m, const struct cv_batch *b, float *out,
                      struct cv_batch_stats *stats)
{
    CV_ASSERT(b->n >= 0 && b->n <= m->max_batch);
    if (b->n == 0)
        return;
    struct cv_ctx ctx = {
        .train = false, .seed = m->cfg->train.seed, .rows = b->rows, .lengths = b->lengths};
    forward(m, &ctx, b->x, b->n);
    if (stats && (b->y_class || b->y_vec)) {
        long long correct = 0;
        stats->loss_sum += loss(m, b, false, 0.0f, m->dbuf[0], &correct);
        stats->correct += correct;
        stats->count += count_targets(m, b);
    }
    size_t total = (size_t)b->n * (size_t)m->outputs;
    int steps = m->out_steps > 0 ? m->out_steps : 1; /* softmax over each step */
    memcpy(out, m->acts[m->n_layers - 1], sizeof(float) * total);
    if (m->fused)
        cv_act_apply(out, b->n * steps, step_outputs(m), m->final_act, m->final_slope);
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

/* (C, H, W), or (T steps, C, H, W) for a sequence; trailing 1s of a
 * feature vector dropped for sequences: (T steps, F). */
static void shape_text(struct cv_shape s, char *buf, size_t n)
{
    if (s.t == 0)
        snprintf(buf, n, "(%d, %d, %d)", s.c, s.h, s.w);
    else if (s.h == 1 && s.w == 1)
        snprintf(buf, n, "(%d steps, %d)", s.t, s.c);
    else
        snprintf(buf, n, "(%d steps, %d, %d, %d)", s.t, s.c, s.h, s.w);
}

void cv_model_summary(const cv_model *m, void (*print)(void *arg, const char *line), void *arg)
{
    char line[160];
    char shape[64];
    const int *in = m->cfg->model.input;
    shape_text((struct cv_shape){in[0], in[1], in[2], m->cfg->model.input_steps}, shape,
               sizeof(shape));
    snprintf(line, sizeof(line), "  input      %s", shape);
    print(arg, line);
    for (int i = 0; i < m->n_layers; i++) {
        const struct cv_layer *l = &m->layers[i];
        size_t np = 0, ns = 0, nscr = 0;
        cv__layer_sizes(l, &np, &ns, &nscr);
        shape_text(l->out, shape, sizeof(shape));
        snprintf(line, sizeof(line), "  %2d %-14s -> %s  %zu params%s", i,
                 cv_layer_type_name(l->ops->type), shape, np,
                 i == m->n_layers - 1 && m->fused ? "  [activation fused into loss]" : "");
        print(arg, line);
    }
    snprintf(line, sizeof(line), "  total %zu parameters, %zu state values, loss %s", m->n_params,
             m->n_state, cv_loss_name(m->cfg->model.loss));
    print(arg, line);
}
