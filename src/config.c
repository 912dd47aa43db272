/*
 * config.c - YAML config -> struct cv_config.  One table row per setting
 * ({name, type, offset, bounds, enum names}) drives parsing, range checks
 * and messages; layer specs use the same machinery with a per-type list of
 * allowed keys.  Unknown keys and bad values are errors that name file:line
 * (or the command-line override).  The tree after overrides is emitted back
 * as YAML into cfg->text, so the effective config can be stored and parsed
 * again exactly.  Keys are documented in docs/config.md.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caviar/config.h"
#include "config_internal.h"
#include "config_tree.h"
#include "util.h"

/* ---- names ---- */

const char *const cv__layer_names[] = {"dense",    "dropout",        "conv2d",        "maxpool",
                                       "avgpool",  "global_avgpool", "batchnorm",     "flatten",
                                       "residual", "activation",     "embedding",     "rnn",
                                       "gru",      "lstm",           "bidirectional", NULL};
const char *const cv__act_names[] = {"linear",     "sigmoid", "tanh", "relu",
                                     "leaky_relu", "softmax", NULL};
const char *const cv__init_names[] = {"auto", "he", "xavier", NULL};
static const char *const loss_names[] = {"softmax_cross_entropy", "binary_cross_entropy", "mse",
                                         NULL};
static const char *const opt_names[] = {"sgd",      "momentum", "rmsprop", "adam",
                                        "nesterov", "adamw",    NULL};
static const char *const decay_names[] = {"constant", "inverse_time", "exponential", "step",
                                          "cosine",   "inverse_sqrt", "plateau",     NULL};
static const char *const monitor_names[] = {
    "none", "train.loss", "train.accuracy", "dev.loss", "dev.accuracy", "dev.f1", NULL};
static const char *const norm_names[] = {"none", "standard", NULL};
static const char *const resume_names[] = {"never", "auto", NULL};
static const char *const compression_names[] = {"none", "bf16", NULL};
static const char *const strategy_names[] = {"random", "grid", "asha", "tpe", "pbt", NULL};
static const char *const direction_names[] = {"auto", "max", "min", NULL};
const char *cv_layer_type_name(enum cv_layer_type t)
{
    return (unsigned)t < CV_LAYER_TYPE_COUNT ? cv__layer_names[t] : "?";
}
const char *cv_activation_name(enum cv_activation a)
{
    return (unsigned)a < CV_ACT_COUNT ? cv__act_names[a] : "?";
}
const char *cv_loss_name(enum cv_loss l)
{
    return (unsigned)l <= CV_LOSS_MSE ? loss_names[l] : "?";
}
const char *cv_optimizer_name(enum cv_optimizer o)
{
    return (unsigned)o <= CV_OPT_ADAMW ? opt_names[o] : "?";
}
const char *cv_monitor_name(enum cv_monitor m)
{
    return (unsigned)m <= CV_MON_DEV_F1 ? monitor_names[m] : "?";
}

/* ---- field tables ---- */

static cv_status sp_input(struct pctx *, const struct cv_node *, void *);
static cv_status sp_decay(struct pctx *, const struct cv_node *, void *);
static cv_status sp_augment(struct pctx *, const struct cv_node *, void *);
static cv_status sp_warmup(struct pctx *, const struct cv_node *, void *);
static cv_status sp_early(struct pctx *, const struct cv_node *, void *);
static cv_status sp_class_weights(struct pctx *, const struct cv_node *, void *);

static const struct field data_fields[] = {
    {"train", STR(data.train)},
    {"dev", STR(data.dev)},
    {"test", STR(data.test)},
    {"normalize", ENUM(data.normalize, norm_names)},
    {"augment", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_augment},
    {NULL}};
static const struct field model_fields[] = {
    {"input", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_input},
    {"layers", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, cv__cfg_layers},
    {"loss", ENUM(model.loss, loss_names)},
    {"label_smoothing", F_DBL, C(model.label_smoothing), GE, 0, LT, 1, NULL, 0, NULL},
    {"class_weights", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_class_weights},
    {"init_from", STR(model.init_from)},
    {NULL}};
static const struct field train_fields[] = {
    {"optimizer", ENUM(train.optimizer, opt_names)},
    {"lr", F_DBL, C(train.lr), GT, 0, NONE, 0, NULL, 0, NULL},
    {"beta1", F_DBL, C(train.beta1), GE, 0, LT, 1, NULL, 0, NULL},
    {"beta2", F_DBL, C(train.beta2), GE, 0, LT, 1, NULL, 0, NULL},
    {"eps", F_DBL, C(train.eps), GT, 0, NONE, 0, NULL, 0, NULL},
    {"batch", F_INT, C(train.batch), GE, 1, NONE, 0, NULL, 0, NULL},
    {"epochs", F_INT, C(train.epochs), GE, 1, NONE, 0, NULL, 0, NULL},
    {"l2", F_DBL, C(train.l2), GE, 0, NONE, 0, NULL, 0, NULL},
    {"weight_decay", F_DBL, C(train.weight_decay), GE, 0, NONE, 0, NULL, 0, NULL},
    {"decay_all", F_BOOL, C(train.decay_all), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"lr_loaded", F_DBL, C(train.lr_loaded), GE, 0, NONE, 0, NULL, 0, NULL},
    {"decay", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_decay},
    {"warmup", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_warmup},
    {"monitor", ENUM(train.monitor, monitor_names)},
    {"early_stopping", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_early},
    {"clip_norm", F_DBL, C(train.clip_norm), GE, 0, NONE, 0, NULL, 0, NULL},
    {"seed", F_U64, C(train.seed), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"max_steps", F_I64, C(train.max_steps), GE, 0, NONE, 0, NULL, 0, NULL},
    {"schedule", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, cv__cfg_schedule},
    {NULL}};
static const struct field comm_fields[] = {
    {"shard_optimizer", F_TRI, C(comm.shard_optimizer), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"compression", ENUM(comm.compression, compression_names)},
    {"shared_memory", F_TRI, C(comm.shared_memory), NONE, 0, NONE, 0, NULL, 0, NULL},
    {NULL}};
static const struct field ckpt_fields[] = {
    {"every_steps", F_INT, C(checkpoint.every_steps), GE, 0, NONE, 0, NULL, 0, NULL},
    {"every_epochs", F_INT, C(checkpoint.every_epochs), GE, 0, NONE, 0, NULL, 0, NULL},
    {"keep", F_INT, C(checkpoint.keep), GE, 1, NONE, 0, NULL, 0, NULL},
    {NULL}};
static const struct field run_fields[] = {
    {"dir", STR(run.dir)},
    {"resume", ENUM(run.resume, resume_names)},
    {"progress", F_DBL, C(run.progress), GE, 0, NONE, 0, NULL, 0, NULL},
    {"progress_steps", F_I64, C(run.progress_steps), GE, 0, NONE, 0, NULL, 0, NULL},
    {"report", F_BOOL, C(run.report), NONE, 0, NONE, 0, NULL, 0, NULL},
    {NULL}};
static const struct field sweep_fields[] = {
    {"trials", F_INT, C(sweep.trials), GE, 1, NONE, 0, NULL, 0, NULL},
    {"ranks_per_trial", F_INT, C(sweep.ranks_per_trial), GE, 1, NONE, 0, NULL, 0, NULL},
    {"strategy", ENUM(sweep.strategy, strategy_names)},
    {"metric", STR(sweep.metric)},
    {"seed", F_U64, C(sweep.seed), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"eta", F_INT, C(sweep.eta), GE, 2, NONE, 0, NULL, 0, NULL},
    {"min_epochs", F_INT, C(sweep.min_epochs), GE, 1, NONE, 0, NULL, 0, NULL},
    {"max_epochs", F_INT, C(sweep.max_epochs), GE, 1, NONE, 0, NULL, 0, NULL},
    {"budget_epochs", F_INT, C(sweep.budget_epochs), GE, 0, NONE, 0, NULL, 0, NULL},
    {"direction", ENUM(sweep.direction, direction_names)},
    {"ready", F_INT, C(sweep.ready), GE, 1, NONE, 0, NULL, 0, NULL},
    {"ready_steps", F_INT, C(sweep.ready_steps), GE, 1, NONE, 0, NULL, 0, NULL},
    {"pbt_fraction", F_DBL, C(sweep.pbt_fraction), GT, 0, LE, 0.5, NULL, 0, NULL},
    {"resample", F_DBL, C(sweep.resample), GE, 0, LE, 1, NULL, 0, NULL},
    {"tpe_startup", F_INT, C(sweep.tpe_startup), GE, 1, NONE, 0, NULL, 0, NULL},
    {"tpe_candidates", F_INT, C(sweep.tpe_candidates), GE, 1, LE, 10000, NULL, 0, NULL},
    {"space", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, cv__cfg_space},
    {NULL}};

struct section {
    const char *name;
    const struct field *fields;
};
static const struct section sections[] = {{"data", data_fields},       {"model", model_fields},
                                          {"train", train_fields},     {"comm", comm_fields},
                                          {"checkpoint", ckpt_fields}, {"run", run_fields},
                                          {"sweep", sweep_fields},     {NULL, NULL}};

/* ---- special keys ---- */

static cv_status sp_input(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_config *c = base;
    long long v[3];
    const char *want = "a list of 1 (features), 2 (T steps, F features) or 3 (C, H, W) positive "
                       "integers";
    if (n->kind != CV_NODE_SEQ || n->n < 1 || n->n > 3)
        return cv__cfg_bad(p, n, want);
    for (int i = 0; i < n->n; i++)
        if (!cv__cfg_to_ll(n->kids[i], &v[i]) || v[i] < 1 || v[i] > 1 << 24)
            return cv__cfg_bad(p, n, want);
    long long all = 1;
    for (int i = 0; i < n->n && all <= INT_MAX; i++)
        all *= v[i]; /* < 2^31 x 2^24: no overflow in 64 bits */
    if (all > INT_MAX) {
        char w[400];
        return cv_fail(p->err, CV_CONFIG,
                       "%s: %s = [%lld, %lld, %lld]: expected C x H x W of at most %d values "
                       "per sample",
                       cv__cfg_where(p, n, w, sizeof(w)), p->path, v[0], v[1], v[2], INT_MAX);
    }
    c->model.input_rank = n->n;
    c->model.input_steps = n->n == 2 ? (int)v[0] : 0; /* [T, F]: a sequence */
    for (int i = 0; i < 3; i++)
        c->model.input[i] = n->n == 2 ? (i ? 1 : (int)v[1]) : i < n->n ? (int)v[i] : 1;
    return CV_OK;
}

static cv_status sp_decay(struct pctx *p, const struct cv_node *n, void *base)
{
    static const struct field f[] = {
        {"kind", ENUM(train.decay, decay_names)},
        {"rate", F_DBL, C(train.decay_rate), GE, 0, NONE, 0, NULL, 0, NULL},
        {"every", F_INT, C(train.decay_every), GE, 1, NONE, 0, NULL, 0, NULL},
        {"floor", F_DBL, C(train.decay_floor), GE, 0, NONE, 0, NULL, 0, NULL},
        {"restart", F_INT, C(train.decay_restart), GE, 0, NONE, 0, NULL, 0, NULL},
        {"restart_mult", F_INT, C(train.decay_restart_mult), GE, 1, NONE, 0, NULL, 0, NULL},
        {"patience", F_INT, C(train.decay_patience), GE, 0, NONE, 0, NULL, 0, NULL},
        {NULL}};
    struct cv_config *c = base;
    cv_status st = cv__cfg_apply(p, n, f, NULL, base);
    enum cv_decay k = c->train.decay;
    bool mult = k == CV_DECAY_EXPONENTIAL || k == CV_DECAY_STEP;
    double r = c->train.decay_rate;
    if (st == CV_OK && mult && !(r > 0 && r <= 1))
        return cv__cfg_bad(p, n, "decay.rate in (0, 1] for exponential and step decay");
    if (st == CV_OK && k == CV_DECAY_PLATEAU && !(r > 0 && r < 1))
        return cv__cfg_bad(p, n, "decay.rate (the factor) in (0, 1) for plateau decay");
    if (st == CV_OK && k == CV_DECAY_INVERSE_SQRT && !(r > 0))
        return cv__cfg_bad(p, n, "decay.rate (k) > 0 for inverse_sqrt decay");
    return st;
}

static cv_status sp_warmup(struct pctx *p, const struct cv_node *n, void *base)
{
    static const struct field f[] = {
        {"epochs", F_INT, C(train.warmup_epochs), GE, 0, NONE, 0, NULL, 0, NULL},
        {"steps", F_I64, C(train.warmup_steps), GE, 0, NONE, 0, NULL, 0, NULL},
        {NULL}};
    struct cv_config *c = base;
    cv_status st = cv__cfg_apply(p, n, f, NULL, base);
    if (st == CV_OK && c->train.warmup_epochs > 0 && c->train.warmup_steps > 0)
        return cv__cfg_bad(p, n, "warmup.epochs or warmup.steps, not both");
    return st;
}

static cv_status sp_early(struct pctx *p, const struct cv_node *n, void *base)
{
    static const struct field f[] = {
        {"patience", F_INT, C(train.patience), GE, 1, NONE, 0, NULL, 0, NULL},
        {"min_delta", F_DBL, C(train.min_delta), GE, 0, NONE, 0, NULL, 0, NULL},
        {NULL}};
    struct cv_config *c = base;
    cv_status st = cv__cfg_apply(p, n, f, NULL, base);
    if (st == CV_OK && c->train.patience < 1)
        return cv__cfg_bad(p, n, "a mapping with patience (epochs >= 1) and optional min_delta");
    return st;
}

/* model.class_weights: a list of numbers > 0, or `balanced` */
static cv_status sp_class_weights(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_config *c = base;
    const char *want = "balanced or a list of 2 to 1024 numbers > 0 (one per class)";
    c->model.balanced = false;
    c->model.n_class_weights = 0;
    if (cv__cfg_scalar(n) && !strcmp(n->text, "balanced"))
        return c->model.balanced = true, CV_OK;
    if (n->kind != CV_NODE_SEQ || n->n < 2 || n->n > CV_MAX_CLASSES)
        return cv__cfg_bad(p, n, want);
    for (int i = 0; i < n->n; i++) {
        double v = 0;
        if (!cv__cfg_to_double(n->kids[i], &v) || !(v > 0))
            return cv__cfg_bad(p, n, want);
        c->model.class_weights[i] = (float)v;
    }
    c->model.n_class_weights = n->n;
    return CV_OK;
}

static cv_status sp_augment(struct pctx *p, const struct cv_node *n, void *base)
{
    static const struct field f[] = {
        {"flip", F_BOOL, C(data.augment_flip), NONE, 0, NONE, 0, NULL, 0, NULL},
        {"shift", F_INT, C(data.augment_shift), GE, 0, LE, 16, NULL, 0, NULL},
        {NULL}};
    return cv__cfg_apply(p, n, f, NULL, base);
}

/* ---- the whole document ---- */

static void defaults(struct cv_config *c)
{
    memset(c, 0, sizeof(*c));
    c->data.normalize = CV_NORM_STANDARD;
    c->model.loss = CV_LOSS_SOFTMAX_CE;
    c->train.optimizer = CV_OPT_ADAM;
    c->train.lr = 1e-3;
    c->train.beta1 = 0.9;
    c->train.beta2 = 0.999;
    c->train.eps = 1e-8;
    c->train.batch = 128;
    c->train.epochs = 10;
    c->train.decay_every = 1;
    c->train.weight_decay = 0.01; /* PyTorch's AdamW default */
    c->train.lr_loaded = 1.0;
    c->train.decay_restart_mult = 1;
    c->train.decay_patience = 10; /* PyTorch's ReduceLROnPlateau default */
    c->train.seed = 1;
    c->comm.shard_optimizer = CV_AUTO;
    c->comm.shared_memory = CV_AUTO;
    c->checkpoint.every_epochs = 1;
    c->checkpoint.keep = 3;
    snprintf(c->run.dir, sizeof(c->run.dir), "runs/default");
    c->run.progress = 30;
    c->sweep.trials = 16;
    c->sweep.ranks_per_trial = 1;
    snprintf(c->sweep.metric, sizeof(c->sweep.metric), "dev.accuracy");
    c->sweep.eta = 3;
    c->sweep.min_epochs = 1;
    c->sweep.ready = 1;
    c->sweep.pbt_fraction = 0.25;
    c->sweep.resample = 0.25;
    c->sweep.tpe_startup = 10;
    c->sweep.tpe_candidates = 24;
}

static cv_status convert_root(struct pctx *p, const struct cv_node *root, struct cv_config *c)
{
    char w[400];
    if (root->kind != CV_NODE_MAP)
        return cv_fail(p->err, CV_CONFIG,
                       "%s: expected a mapping with sections data, model, "
                       "train, ...",
                       cv__cfg_where(p, root, w, sizeof(w)));
    for (int i = 0; i < root->n; i++) {
        const struct section *s = sections;
        while (s->name && strcmp(s->name, root->keys[i]))
            s++;
        if (!s->name)
            return cv_fail(p->err, CV_CONFIG,
                           "%s: unknown key '%s' (known sections: data, model, "
                           "train, comm, checkpoint, run, sweep)",
                           cv__cfg_where(p, root->kids[i], w, sizeof(w)), root->keys[i]);
        size_t mark;
        cv__cfg_push(p, s->name, &mark);
        cv_status st = cv__cfg_apply(p, root->kids[i], s->fields, NULL, c);
        cv__cfg_pop(p, mark);
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}

/* Every layer with parameters (all but dropout, pools, flatten, activation) frozen. */
static bool all_frozen(const struct cv_config *c)
{
    int with_params = 0, frozen = 0;
    for (int i = 0; i < c->model.n_layers; i++) {
        const struct cv_layer_spec *l = &c->model.layers[i];
        enum cv_layer_type t = l->type;
        if (t != CV_LAYER_DROPOUT && t != CV_LAYER_MAXPOOL && t != CV_LAYER_AVGPOOL &&
            t != CV_LAYER_GLOBAL_AVGPOOL && t != CV_LAYER_FLATTEN && t != CV_LAYER_ACTIVATION)
            with_params++, frozen += l->frozen;
    }
    return with_params > 0 && frozen == with_params;
}

/* The training recipe's keys that only make sense together (docs/config.md). */
static cv_status require_recipe(struct pctx *p, const struct cv_node *root, struct cv_config *c)
{
    const struct cv_node *train = cv__tree_get(root, "train");
    const char *src = p->source;
    bool es = c->train.patience > 0, plateau = c->train.decay == CV_DECAY_PLATEAU;
    if ((es || plateau) && c->train.monitor == CV_MON_NONE)
        c->train.monitor = c->data.dev[0] ? CV_MON_DEV_LOSS : CV_MON_TRAIN_LOSS; /* as Keras */
    c->train.monitor_min = c->train.monitor == CV_MON_TRAIN_LOSS ||
                           c->train.monitor == CV_MON_DEV_LOSS;
    bool softmax = c->model.loss == CV_LOSS_SOFTMAX_CE;
    if (c->train.monitor >= CV_MON_DEV_LOSS && !c->data.dev[0])
        return cv_fail(p->err, CV_CONFIG,
                       "%s: train.monitor = %s is computed on the dev split, but data.dev is not "
                       "set",
                       src, monitor_names[c->train.monitor]);
    if (cv__tree_get(train, "weight_decay") && c->train.optimizer != CV_OPT_ADAMW)
        return cv_fail(p->err, CV_CONFIG,
                       "%s: train.weight_decay (decoupled) is for train.optimizer = adamw; with "
                       "%s use train.l2",
                       src, opt_names[c->train.optimizer]);
    if (c->train.warmup_epochs >= c->train.epochs)
        return cv_fail(p->err, CV_CONFIG,
                       "%s: train.warmup.epochs = %d is not shorter than train.epochs = %d", src,
                       c->train.warmup_epochs, c->train.epochs);
    if (c->model.label_smoothing > 0 && !softmax)
        return cv_fail(p->err, CV_CONFIG,
                       "%s: model.label_smoothing needs model.loss = softmax_cross_entropy", src);
    if ((c->model.balanced || c->model.n_class_weights) && !softmax)
        return cv_fail(p->err, CV_CONFIG,
                       "%s: model.class_weights needs model.loss = softmax_cross_entropy", src);
    if (all_frozen(c))
        return cv_fail(p->err, CV_CONFIG,
                       "%s: every layer with parameters has trainable: false; nothing would "
                       "train",
                       src);
    return CV_OK;
}

static cv_status require(struct pctx *p, const struct cv_node *root, struct cv_config *c)
{
    const struct cv_node *sweep = cv__tree_get(root, "sweep");
    const char *missing = !c->data.train[0]       ? "data.train"
                          : c->model.input[0] < 1 ? "model.input"
                          : c->model.n_layers < 1 ? "model.layers"
                                                  : NULL;
    if (missing)
        return cv_fail(p->err, CV_CONFIG, "%s: missing required key %s", p->source, missing);
    if (!cv__tree_get(sweep, "max_epochs"))
        c->sweep.max_epochs = c->train.epochs;
    if (!cv__tree_get(sweep, "seed"))
        c->sweep.seed = c->train.seed;
    if (cv__tree_get(sweep, "ready") && cv__tree_get(sweep, "ready_steps"))
        return cv_fail(p->err, CV_CONFIG,
                       "%s: sweep.ready and sweep.ready_steps are both given: give the pbt "
                       "interval in epochs or in steps, not both",
                       p->source);
    size_t len = strlen(c->sweep.metric);
    /* losses and errors are minimised (dev.loss, dev.hamming_loss, dev.mae, dev.rmse) */
    c->sweep.minimize = (len >= 4 && !strcmp(c->sweep.metric + len - 4, "loss")) ||
                        (len >= 4 && !strcmp(c->sweep.metric + len - 4, ".mae")) ||
                        (len >= 5 && !strcmp(c->sweep.metric + len - 5, ".rmse"));
    if (c->sweep.direction != CV_DIRECTION_AUTO) /* sweep.direction overrides the name */
        c->sweep.minimize = c->sweep.direction == CV_DIRECTION_MIN;
    if (c->comm.compression != CV_COMPRESS_NONE && c->comm.shard_optimizer == CV_ON)
        return cv_fail(p->err, CV_CONFIG,
                       "%s: comm.compression = %s needs comm.shard_optimizer = auto or false "
                       "(every rank unpacks the rounded sums and updates every parameter)",
                       p->source, compression_names[c->comm.compression]);
    if (c->comm.shared_memory == CV_ON) {
        const char *clash = c->comm.compression != CV_COMPRESS_NONE ? "comm.compression = bf16"
                            : c->comm.shard_optimizer == CV_OFF     ? "comm.shard_optimizer = false"
                                                                    : NULL;
        if (clash)
            return cv_fail(p->err, CV_CONFIG,
                           "%s: comm.shared_memory = true cannot be used with "
                           "%s (node-shared arenas are summed in float by each slice's owner, "
                           "who updates it)",
                           p->source, clash);
    }
    if (c->sweep.min_epochs > c->sweep.max_epochs)
        return cv_fail(p->err, CV_CONFIG,
                       "%s: sweep.min_epochs = %d is larger than "
                       "sweep.max_epochs = %d",
                       p->source, c->sweep.min_epochs, c->sweep.max_epochs);
    return cv__cfg_schedule_check(c, p->err);
}

cv_status cv_config_parse(const char *text, const char *source, const char *const *overrides,
                          int n_overrides, struct cv_config **out, struct cv_error *err)
{
    struct cv_node *root = NULL;
    struct cv_config *c = cv_calloc(1, sizeof(*c));
    *out = NULL;
    if (!c)
        return cv_fail(err, CV_NOMEM, "out of memory");
    defaults(c);
    snprintf(c->source, sizeof(c->source), "%s", source);
    struct pctx p = {c->source, err, ""};
    cv_status st = cv__tree_parse(text, source, NULL, &root, err);
    for (int i = 0; st == CV_OK && i < n_overrides; i++)
        st = cv__tree_override(root, overrides[i], err);
    if (st == CV_OK)
        st = convert_root(&p, root, c);
    if (st == CV_OK)
        st = require(&p, root, c);
    if (st == CV_OK)
        st = require_recipe(&p, root, c);
    if (st == CV_OK)
        st = cv__tree_emit(root, &c->text, err);
    cv__tree_free(root);
    if (st != CV_OK) {
        cv_config_free(c);
        return st;
    }
    *out = c;
    return CV_OK;
}

cv_status cv_config_load(const char *path, const char *const *overrides, int n_overrides,
                         struct cv_config **out, struct cv_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cv_fail(err, CV_IO, "%s: cannot open config: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + got + 1 > cap) {
            cap = 2 * (len + got + 1);
            char *t = cv_realloc(text, cap, 1);
            if (!t) {
                free(text);
                fclose(f);
                return cv_fail(err, CV_NOMEM, "out of memory reading %s", path);
            }
            text = t;
        }
        memcpy(text + len, chunk, got);
        len += got;
        if (len > CV_TREE_MAX_INPUT) /* e.g. /dev/zero: refused without reading it all */
            break;
    }
    bool bad_read = ferror(f);
    fclose(f);
    if (bad_read) {
        free(text);
        return cv_fail(err, CV_IO, "%s: read error", path);
    }
    if (len > CV_TREE_MAX_INPUT) {
        free(text);
        return cv_fail(err, CV_CONFIG, "%s: more than %d bytes: a config holds at most that", path,
                       CV_TREE_MAX_INPUT);
    }
    if (!text && !(text = cv_calloc(1, 1)))
        return cv_fail(err, CV_NOMEM, "out of memory");
    text[len] = '\0';
    size_t text_len = strlen(text); /* the parser would stop at a NUL silently */
    if (text_len < len) {
        free(text);
        return cv_fail(err, CV_CONFIG, "%s: a NUL byte at offset %zu: not a YAML text file", path,
                       text_len);
    }
    cv_status st = cv_config_parse(text, path, overrides, n_overrides, out, err);
    free(text);
    return st;
}

void cv_config_free(struct cv_config *cfg)
{
    if (!cfg)
        return;
    cv__cfg_free_specs(cfg->model.layers, cfg->model.n_layers);
    free(cfg->text);
    free(cfg);
}

/* The first architectural difference between two configs, or NULL. */
const char *cv_config_arch_diff(const struct cv_config *a, const struct cv_config *b, char *buf,
                                size_t n)
{
    for (int i = 0; i < 3; i++)
        if (a->model.input[i] != b->model.input[i] || a->model.input_steps != b->model.input_steps)
            return snprintf(buf, n, "model.input differs"), buf;
    if (a->model.n_layers != b->model.n_layers)
        return snprintf(buf, n, "layer count %d vs %d", a->model.n_layers, b->model.n_layers), buf;
    if (a->model.loss != b->model.loss)
        return snprintf(buf, n, "model.loss differs"), buf;
    for (int i = 0; i < a->model.n_layers; i++) {
        const struct cv_layer_spec *x = &a->model.layers[i], *y = &b->model.layers[i];
        const char *what = x->type != y->type                           ? "type"
                           : x->units != y->units                       ? "units"
                           : x->activation != y->activation             ? "activation"
                           : x->filters != y->filters                   ? "filters"
                           : x->size != y->size                         ? "size"
                           : x->stride != y->stride                     ? "stride"
                           : x->pad != y->pad                           ? "pad"
                           : x->n_children != y->n_children             ? "layers"
                           : x->vocab != y->vocab                       ? "vocab"
                           : x->dim != y->dim                           ? "dim"
                           : x->return_sequences != y->return_sequences ? "return_sequences"
                           : x->merge != y->merge                       ? "merge_mode"
                                                                        : NULL;
        if (what)
            return snprintf(buf, n, "model.layers.%d.%s differs", i, what), buf;
    }
    return NULL;
}
