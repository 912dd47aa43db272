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
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caviar/config.h"
#include "config_tree.h"
#include "util.h"

/* ---- names ---- */

static const char *const layer_names[] = {"dense",          "dropout",   "conv2d",
                                          "maxpool",        "avgpool",   "global_avgpool",
                                          "batchnorm",      "flatten",   "residual",
                                          "activation",     NULL};
static const char *const act_names[] = {"linear", "sigmoid", "tanh", "relu", "leaky_relu",
                                        "softmax", NULL};
static const char *const init_names[] = {"auto", "he", "xavier", NULL};
static const char *const loss_names[] = {"softmax_cross_entropy", "binary_cross_entropy", "mse",
                                         NULL};
static const char *const opt_names[] = {"sgd", "momentum", "rmsprop", "adam", NULL};
static const char *const decay_names[] = {"constant", "inverse_time", "exponential", "step",
                                          NULL};
static const char *const norm_names[] = {"none", "standard", NULL};
static const char *const resume_names[] = {"never", "auto", NULL};
static const char *const compression_names[] = {"none", "bf16", NULL};
static const char *const strategy_names[] = {"random", "grid", "asha", NULL};
static const char *const dist_names[] = {"choice", "uniform", "log_uniform",
                                         "one_minus_log_uniform", "int_uniform", NULL};

const char *cv_layer_type_name(enum cv_layer_type t)
{
    return (unsigned)t < CV_LAYER_TYPE_COUNT ? layer_names[t] : "?";
}
const char *cv_activation_name(enum cv_activation a)
{
    return (unsigned)a < CV_ACT_COUNT ? act_names[a] : "?";
}
const char *cv_loss_name(enum cv_loss l)
{
    return (unsigned)l <= CV_LOSS_MSE ? loss_names[l] : "?";
}
const char *cv_optimizer_name(enum cv_optimizer o)
{
    return (unsigned)o <= CV_OPT_ADAM ? opt_names[o] : "?";
}

/* ---- field tables ---- */

/* F_TRI: auto or a boolean, into an enum cv_tristate */
enum ftype { F_INT, F_I64, F_U64, F_DBL, F_FLT, F_BOOL, F_TRI, F_STR, F_ENUM, F_SPECIAL };
enum bound { NONE, GE, GT, LE, LT };

struct pctx;
struct field {
    const char *key;
    enum ftype type;
    size_t off;
    enum bound lob;
    double lo;
    enum bound hib;
    double hi;
    const char *const *names;                            /* F_ENUM */
    size_t size;                                         /* F_STR capacity */
    cv_status (*special)(struct pctx *, const struct cv_node *, void *base);
};

struct pctx {
    const char *source;
    struct cv_error *err;
    char path[160];          /* dotted key of the node being converted */
};

#define C(f) offsetof(struct cv_config, f)
#define L(f) offsetof(struct cv_layer_spec, f)
#define STR(f) F_STR, C(f), NONE, 0, NONE, 0, NULL, sizeof(((struct cv_config *)0)->f), NULL
#define ENUM(f, names) F_ENUM, C(f), NONE, 0, NONE, 0, names, 0, NULL
#define LENUM(f, names) F_ENUM, L(f), NONE, 0, NONE, 0, names, 0, NULL

static cv_status sp_input(struct pctx *, const struct cv_node *, void *);
static cv_status sp_layers(struct pctx *, const struct cv_node *, void *);
static cv_status sp_decay(struct pctx *, const struct cv_node *, void *);
static cv_status sp_augment(struct pctx *, const struct cv_node *, void *);
static cv_status sp_space(struct pctx *, const struct cv_node *, void *);
static cv_status sp_pad(struct pctx *, const struct cv_node *, void *);

static const struct field data_fields[] = {
    {"train", STR(data.train)},
    {"dev", STR(data.dev)},
    {"test", STR(data.test)},
    {"normalize", ENUM(data.normalize, norm_names)},
    {"augment", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_augment},
    {NULL}};
static const struct field model_fields[] = {
    {"input", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_input},
    {"layers", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_layers},
    {"loss", ENUM(model.loss, loss_names)},
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
    {"decay", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_decay},
    {"clip_norm", F_DBL, C(train.clip_norm), GE, 0, NONE, 0, NULL, 0, NULL},
    {"seed", F_U64, C(train.seed), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"max_steps", F_I64, C(train.max_steps), GE, 0, NONE, 0, NULL, 0, NULL},
    {NULL}};
static const struct field comm_fields[] = {
    {"bucket_kb", F_INT, C(comm.bucket_kb), GE, 1, NONE, 0, NULL, 0, NULL},
    {"overlap", F_BOOL, C(comm.overlap), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"shard_optimizer", F_TRI, C(comm.shard_optimizer), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"compression", ENUM(comm.compression, compression_names)},
    {"shared_memory", F_TRI, C(comm.shared_memory), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"shared_batch", F_TRI, C(comm.shared_batch), NONE, 0, NONE, 0, NULL, 0, NULL},
    {"split_features", F_TRI, C(comm.split_features), NONE, 0, NONE, 0, NULL, 0, NULL},
    {NULL}};
static const struct field ckpt_fields[] = {
    {"every_steps", F_INT, C(checkpoint.every_steps), GE, 0, NONE, 0, NULL, 0, NULL},
    {"every_epochs", F_INT, C(checkpoint.every_epochs), GE, 0, NONE, 0, NULL, 0, NULL},
    {"keep", F_INT, C(checkpoint.keep), GE, 1, NONE, 0, NULL, 0, NULL},
    {NULL}};
static const struct field run_fields[] = {
    {"dir", STR(run.dir)},
    {"resume", ENUM(run.resume, resume_names)},
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
    {"space", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_space},
    {NULL}};

struct section {
    const char *name;
    const struct field *fields;
};
static const struct section sections[] = {
    {"data", data_fields},   {"model", model_fields}, {"train", train_fields},
    {"comm", comm_fields},   {"checkpoint", ckpt_fields}, {"run", run_fields},
    {"sweep", sweep_fields}, {NULL, NULL}};

/* Layer keys; `allowed` below says which apply to which type. */
static const struct field layer_fields[] = {
    {"type", LENUM(type, layer_names)},
    {"units", F_INT, L(units), GE, 1, NONE, 0, NULL, 0, NULL},
    {"activation", LENUM(activation, act_names)},
    {"slope", F_FLT, L(leaky_slope), GT, 0, LT, 1, NULL, 0, NULL},
    {"init", LENUM(init, init_names)},
    {"keep", F_FLT, L(keep), GT, 0, LE, 1, NULL, 0, NULL},
    {"filters", F_INT, L(filters), GE, 1, NONE, 0, NULL, 0, NULL},
    {"size", F_INT, L(size), GE, 1, NONE, 0, NULL, 0, NULL},
    {"stride", F_INT, L(stride), GE, 1, NONE, 0, NULL, 0, NULL},
    {"pad", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_pad},
    {"momentum", F_FLT, L(bn_momentum), GE, 0, LT, 1, NULL, 0, NULL},
    {"eps", F_FLT, L(bn_eps), GT, 0, NONE, 0, NULL, 0, NULL},
    {"layers", F_SPECIAL, 0, NONE, 0, NONE, 0, NULL, 0, sp_layers},
    {NULL}};

/* Allowed keys per layer type, as a space-separated list (messages use it). */
static const char *const layer_keys[CV_LAYER_TYPE_COUNT] = {
    [CV_LAYER_DENSE] = "type units activation slope init",
    [CV_LAYER_DROPOUT] = "type keep",
    [CV_LAYER_CONV2D] = "type filters size stride pad activation slope init",
    [CV_LAYER_MAXPOOL] = "type size stride",
    [CV_LAYER_AVGPOOL] = "type size stride",
    [CV_LAYER_GLOBAL_AVGPOOL] = "type",
    [CV_LAYER_BATCHNORM] = "type momentum eps activation slope",
    [CV_LAYER_FLATTEN] = "type",
    [CV_LAYER_RESIDUAL] = "type layers activation slope",
    [CV_LAYER_ACTIVATION] = "type activation slope",
};

/* ---- messages ---- */

static const char *where(const struct pctx *p, const struct cv_node *n, char *buf, size_t size)
{
    if (n->origin)
        snprintf(buf, size, "override '%s'", n->origin);
    else
        snprintf(buf, size, "%s:%d", p->source, n->line);
    return buf;
}

static cv_status bad(struct pctx *p, const struct cv_node *n, const char *expected)
{
    char w[400];
    const char *v = n->kind == CV_NODE_SCALAR ? n->text : n->kind == CV_NODE_MAP ? "{...}" : "[...]";
    return cv_fail(p->err, CV_CONFIG, "%s: %s = %s: expected %s", where(p, n, w, sizeof(w)),
                   p->path, v, expected);
}

static void list_names(const char *const *names, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; names[i]; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? ", " : "", names[i]);
    }
}

static void push(struct pctx *p, const char *key, size_t *mark)
{
    *mark = strlen(p->path);
    snprintf(p->path + *mark, sizeof(p->path) - *mark, "%s%s", *mark ? "." : "", key);
}

static void pop(struct pctx *p, size_t mark)
{
    p->path[mark] = '\0';
}

/* ---- scalars ---- */

static bool scalar(const struct cv_node *n)
{
    return n->kind == CV_NODE_SCALAR;
}

static bool to_double(const struct cv_node *n, double *v)
{
    char *end;
    if (!scalar(n) || !*n->text)
        return false;
    errno = 0;
    *v = strtod(n->text, &end);
    return *end == '\0' && errno == 0 && isfinite(*v);
}

static bool to_ll(const struct cv_node *n, long long *v)
{
    char *end;
    if (!scalar(n) || !*n->text)
        return false;
    errno = 0;
    *v = strtoll(n->text, &end, 10);
    return *end == '\0' && errno == 0;
}

static bool to_bool(const struct cv_node *n, bool *v)
{
    static const char *const yes[] = {"true", "yes", "on", NULL}, *const no[] = {"false", "no", "off", NULL};
    for (int i = 0; scalar(n) && yes[i]; i++) {
        if (!strcasecmp(n->text, yes[i]))
            return *v = true, true;
        if (!strcasecmp(n->text, no[i]))
            return *v = false, true;
    }
    return false;
}

static int find_name(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

static bool in_bounds(const struct field *f, double v)
{
    bool lo = f->lob == NONE || (f->lob == GE ? v >= f->lo : v > f->lo);
    bool hi = f->hib == NONE || (f->hib == LE ? v <= f->hi : v < f->hi);
    return lo && hi;
}

static void expectation(const struct field *f, bool integer, char *buf, size_t size)
{
    const char *what = integer ? "an integer" : "a number";
    if (f->lob != NONE && f->hib != NONE)
        snprintf(buf, size, "%s in %c%g, %g%c", what, f->lob == GE ? '[' : '(', f->lo, f->hi,
                 f->hib == LE ? ']' : ')');
    else if (f->lob != NONE)
        snprintf(buf, size, "%s %s %g", what, f->lob == GE ? ">=" : ">", f->lo);
    else
        snprintf(buf, size, "%s", what);
}

static cv_status set_number(struct pctx *p, const struct field *f, const struct cv_node *n,
                            void *at)
{
    char exp[96];
    bool integer = f->type != F_DBL && f->type != F_FLT;
    long long i = 0;
    double d = 0;
    bool ok = integer ? to_ll(n, &i) : to_double(n, &d);
    if (integer)
        d = (double)i;
    if (f->type == F_U64 && i < 0)
        ok = false;
    expectation(f, integer, exp, sizeof(exp));
    if (!ok || !in_bounds(f, d))
        return bad(p, n, f->type == F_U64 ? "a non-negative integer" : exp);
    if (f->type == F_INT && (i > 2147483647LL || i < -2147483647LL))
        return bad(p, n, "an integer that fits in 32 bits");
    if (f->type == F_INT)
        *(int *)at = (int)i;
    else if (f->type == F_I64)
        *(long long *)at = i;
    else if (f->type == F_U64)
        *(uint64_t *)at = (uint64_t)i;
    else if (f->type == F_FLT)
        *(float *)at = (float)d;
    else
        *(double *)at = d;
    return CV_OK;
}

static cv_status set_field(struct pctx *p, const struct field *f, const struct cv_node *n,
                           void *base)
{
    void *at = (char *)base + f->off;
    char exp[300];
    switch (f->type) {
    case F_INT:
    case F_I64:
    case F_U64:
    case F_DBL:
    case F_FLT:
        return set_number(p, f, n, at);
    case F_BOOL:
        return to_bool(n, (bool *)at) ? CV_OK : bad(p, n, "true or false");
    case F_TRI: {
        bool on;
        if (scalar(n) && !strcasecmp(n->text, "auto"))
            *(enum cv_tristate *)at = CV_AUTO;
        else if (to_bool(n, &on))
            *(enum cv_tristate *)at = on ? CV_ON : CV_OFF;
        else
            return bad(p, n, "auto, true or false");
        return CV_OK;
    }
    case F_STR:
        if (!scalar(n) || strlen(n->text) >= f->size)
            return bad(p, n, "a string (path) shorter than the limit");
        memcpy(at, n->text, strlen(n->text) + 1);
        return CV_OK;
    case F_ENUM: {
        int k = scalar(n) ? find_name(f->names, n->text) : -1;
        char names[280];
        list_names(f->names, names, sizeof(names));
        snprintf(exp, sizeof(exp), "one of %s", names);
        if (k < 0)
            return bad(p, n, exp);
        *(int *)at = k; /* every enum here is int-sized */
        return CV_OK;
    }
    case F_SPECIAL:
        return f->special(p, n, base);
    }
    return CV_OK;
}

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *s = strstr(list, word); s; s = strstr(s + 1, word))
        if ((s == list || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\0'))
            return true;
    return false;
}

/* Convert every key of map n with `fields`; keys outside `allowed` (a
 * space-separated list, NULL = all) are unknown. */
static cv_status apply(struct pctx *p, const struct cv_node *n, const struct field *fields,
                       const char *allowed, void *base)
{
    char w[400], known[400];
    if (n->kind != CV_NODE_MAP)
        return bad(p, n, "a mapping of keys");
    for (int i = 0; i < n->n; i++) {
        const struct field *f = fields;
        while (f->key && strcmp(f->key, n->keys[i]))
            f++;
        bool ok = f->key && (!allowed || has_word(allowed, f->key));
        if (!ok) {
            if (allowed)
                snprintf(known, sizeof(known), "%s", allowed);
            else
                for (const struct field *g = fields; g->key; g++)
                    snprintf(known + (g == fields ? 0 : strlen(known)),
                             sizeof(known) - (g == fields ? 0 : strlen(known)), "%s%s",
                             g == fields ? "" : ", ", g->key);
            return cv_fail(p->err, CV_CONFIG, "%s: unknown key '%s%s%s' (known keys here: %s)",
                           where(p, n->kids[i], w, sizeof(w)), p->path, *p->path ? "." : "",
                           n->keys[i], known);
        }
        size_t mark;
        push(p, n->keys[i], &mark);
        cv_status st = set_field(p, f, n->kids[i], base);
        pop(p, mark);
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}

/* ---- special keys ---- */

static cv_status sp_input(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_config *c = base;
    long long v[3];
    if (n->kind != CV_NODE_SEQ || (n->n != 1 && n->n != 3))
        return bad(p, n, "a list of 1 (features) or 3 (C, H, W) positive integers");
    for (int i = 0; i < n->n; i++)
        if (!to_ll(n->kids[i], &v[i]) || v[i] < 1 || v[i] > 1 << 24)
            return bad(p, n, "a list of 1 (features) or 3 (C, H, W) positive integers");
    c->model.input_rank = n->n;
    for (int i = 0; i < 3; i++)
        c->model.input[i] = i < n->n ? (int)v[i] : 1;
    return CV_OK;
}

static cv_status sp_pad(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_layer_spec *l = base;
    long long v;
    if (scalar(n) && !strcmp(n->text, "same"))
        l->pad = CV_PAD_SAME;
    else if (scalar(n) && !strcmp(n->text, "valid"))
        l->pad = CV_PAD_VALID;
    else if (to_ll(n, &v) && v >= 0 && v < 1 << 16)
        l->pad = (int)v;
    else
        return bad(p, n, "same, valid or an integer >= 0");
    return CV_OK;
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
}

static void free_specs(struct cv_layer_spec *l, int n)
{
    for (int i = 0; i < n; i++) {
        free_specs(l[i].children, l[i].n_children);
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
    if (need) {
        char w[400];
        return cv_fail(p->err, CV_CONFIG, "%s: %s (%s) needs %s", where(p, n, w, sizeof(w)),
                       p->path, layer_names[l->type], need);
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
        return bad(p, n, "a mapping with a 'type' key");
    size_t mark;
    push(p, "type", &mark);
    cv_status st = set_field(p, &layer_fields[0], t, l);
    pop(p, mark);
    if (st == CV_OK)
        st = apply(p, n, layer_fields, layer_keys[l->type], l);
    return st == CV_OK ? finish_layer(p, n, l) : st;
}

/* model.layers, or a residual block's layers: base is the config or a spec */
static cv_status sp_layers(struct pctx *p, const struct cv_node *n, void *base)
{
    bool top = !strcmp(p->path, "model.layers");
    struct cv_config *c = top ? base : NULL;
    struct cv_layer_spec *parent = top ? NULL : base, *specs;
    if (n->kind != CV_NODE_SEQ || n->n < 1 || n->n > CV_MAX_LAYERS)
        return bad(p, n, "a list of 1 to 64 layers");
    specs = top ? c->model.layers : cv_calloc((size_t)n->n, sizeof(*specs));
    if (!specs)
        return cv_fail(p->err, CV_NOMEM, "out of memory");
    if (!top) {
        free_specs(parent->children, parent->n_children);
        free(parent->children);
        parent->children = specs;
        parent->n_children = 0;
    } else {
        free_specs(c->model.layers, c->model.n_layers);
        c->model.n_layers = 0;
    }
    for (int i = 0; i < n->n; i++) {
        char idx[16];
        size_t mark;
        snprintf(idx, sizeof(idx), "%d", i);
        push(p, idx, &mark);
        cv_status st = convert_layer(p, n->kids[i], &specs[i]);
        pop(p, mark);
        *(top ? &c->model.n_layers : &parent->n_children) = i + 1; /* freed on error too */
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}

static cv_status sp_decay(struct pctx *p, const struct cv_node *n, void *base)
{
    static const struct field f[] = {
        {"kind", ENUM(train.decay, decay_names)},
        {"rate", F_DBL, C(train.decay_rate), GE, 0, NONE, 0, NULL, 0, NULL},
        {"every", F_INT, C(train.decay_every), GE, 1, NONE, 0, NULL, 0, NULL},
        {NULL}};
    struct cv_config *c = base;
    cv_status st = apply(p, n, f, NULL, base);
    bool mult = c->train.decay == CV_DECAY_EXPONENTIAL || c->train.decay == CV_DECAY_STEP;
    if (st == CV_OK && mult && !(c->train.decay_rate > 0 && c->train.decay_rate <= 1))
        return bad(p, n, "decay.rate in (0, 1] for exponential and step decay");
    return st;
}

static cv_status sp_augment(struct pctx *p, const struct cv_node *n, void *base)
{
    static const struct field f[] = {
        {"flip", F_BOOL, C(data.augment_flip), NONE, 0, NONE, 0, NULL, 0, NULL},
        {"shift", F_INT, C(data.augment_shift), GE, 0, LE, 16, NULL, 0, NULL},
        {NULL}};
    return apply(p, n, f, NULL, base);
}

/* ---- sweep.space: key -> "dist(args)" ---- */

static char *trim(char *tok)
{
    while (isspace((unsigned char)*tok))
        tok++;
    char *end = tok + strlen(tok);
    while (end > tok && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return tok;
}

/* Split at the commas outside brackets and quotes, so a choice can be a
 * YAML flow value: choice([64, 64], [128]). */
static int split_args(char *s, char **args, int max)
{
    int n = 0, depth = 0;
    char quote = 0, *tok = s;
    for (char *p = s;; p++) {
        if (quote && *p) {
            quote = *p == quote ? 0 : quote;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '[' || *p == '{') {
            depth++;
        } else if ((*p == ']' || *p == '}') && depth > 0) {
            depth--;
        } else if ((*p == ',' && depth == 0) || !*p) {
            bool end = !*p;
            *p = '\0';
            if (n < max)
                args[n] = trim(tok);
            n++;
            tok = p + 1;
            if (end)
                break;
        }
    }
    return n == 1 && !*args[0] ? 0 : n;
}

static const char *check_dim(struct cv_sweep_dim *d, char **args, int n)
{
    char *end;
    if (d->dist == CV_DIST_CHOICE) {
        if (n < 1)
            return "choice(...) with at least one value";
        for (int i = 0; i < n; i++) {
            if (strlen(args[i]) >= sizeof(d->choices[i]))
                return "choices of at most 255 characters each";
            snprintf(d->choices[i], sizeof(d->choices[i]), "%s", args[i]);
        }
        d->n_choices = n;
        return NULL;
    }
    if (n != 2)
        return "two bounds, e.g. log_uniform(1e-4, 1e-1)";
    d->lo = strtod(args[0], &end);
    if (*end || !isfinite(d->lo))
        return "numeric bounds";
    d->hi = strtod(args[1], &end);
    if (*end || !isfinite(d->hi))
        return "numeric bounds";
    if (!(d->lo < d->hi))
        return "bounds a < b";
    if (d->dist == CV_DIST_LOG_UNIFORM && d->lo <= 0)
        return "positive bounds for log_uniform";
    if (d->dist == CV_DIST_ONE_MINUS_LOG_UNIFORM && (d->lo <= 0 || d->hi >= 1))
        return "bounds in (0, 1) for one_minus_log_uniform";
    if (d->dist == CV_DIST_INT_UNIFORM && (d->lo != floor(d->lo) || d->hi != floor(d->hi)))
        return "integer bounds for int_uniform";
    return NULL;
}

static cv_status parse_dim(struct pctx *p, const char *key, const struct cv_node *n,
                           struct cv_sweep_dim *d)
{
    char buf[1024], *args[CV_MAX_CHOICES + 1];
    const char *problem = "a distribution: choice(...), uniform(a, b), log_uniform(a, b), "
                          "one_minus_log_uniform(a, b) or int_uniform(a, b)";
    memset(d, 0, sizeof(*d));
    d->line = n->line;
    if (strlen(key) >= sizeof(d->key) || !scalar(n) || strlen(n->text) >= sizeof(buf))
        return bad(p, n, problem);
    snprintf(d->key, sizeof(d->key), "%s", key);
    snprintf(buf, sizeof(buf), "%s", n->text);
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (open && !close)
        return bad(p, n, "a complete distribution: inside a {flow} mapping YAML splits values at "
                         "commas, so quote it ('log_uniform(1e-4, 1e-1)') or use block style");
    if (!open || !close || close < open || close[1] != '\0')
        return bad(p, n, problem);
    *open = *close = '\0';
    int k = find_name(dist_names, buf);
    if (k < 0)
        return bad(p, n, problem);
    d->dist = (enum cv_dist)k;
    int na = split_args(open + 1, args, CV_MAX_CHOICES + 1);
    if (na > CV_MAX_CHOICES)
        return bad(p, n, "at most 32 choices");
    const char *why = check_dim(d, args, na);
    return why ? bad(p, n, why) : CV_OK;
}

static cv_status sp_space(struct pctx *p, const struct cv_node *n, void *base)
{
    struct cv_config *c = base;
    if (n->kind != CV_NODE_MAP || n->n < 1 || n->n > CV_MAX_SWEEP)
        return bad(p, n, "a mapping of 1 to 32 config keys to distributions");
    c->sweep.n_space = 0;
    for (int i = 0; i < n->n; i++) {
        size_t mark;
        push(p, n->keys[i], &mark);
        cv_status st = parse_dim(p, n->keys[i], n->kids[i], &c->sweep.space[i]);
        pop(p, mark);
        if (st != CV_OK)
            return st;
        c->sweep.n_space = i + 1;
    }
    return CV_OK;
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
    c->train.seed = 1;
    c->comm.bucket_kb = 4096;
    c->comm.overlap = false; /* why: include/caviar/comm.h */
    c->comm.shard_optimizer = CV_AUTO;
    c->comm.shared_memory = CV_AUTO;
    c->comm.shared_batch = CV_AUTO;
    c->comm.split_features = CV_AUTO;
    c->checkpoint.every_epochs = 1;
    c->checkpoint.keep = 3;
    snprintf(c->run.dir, sizeof(c->run.dir), "runs/default");
    c->sweep.trials = 16;
    c->sweep.ranks_per_trial = 1;
    snprintf(c->sweep.metric, sizeof(c->sweep.metric), "dev.accuracy");
    c->sweep.eta = 3;
    c->sweep.min_epochs = 1;
}

static cv_status convert_root(struct pctx *p, const struct cv_node *root, struct cv_config *c)
{
    char w[400];
    if (root->kind != CV_NODE_MAP)
        return cv_fail(p->err, CV_CONFIG, "%s: expected a mapping with sections data, model, "
                       "train, ...", where(p, root, w, sizeof(w)));
    for (int i = 0; i < root->n; i++) {
        const struct section *s = sections;
        while (s->name && strcmp(s->name, root->keys[i]))
            s++;
        if (!s->name)
            return cv_fail(p->err, CV_CONFIG, "%s: unknown key '%s' (known sections: data, model, "
                           "train, comm, checkpoint, run, sweep)",
                           where(p, root->kids[i], w, sizeof(w)), root->keys[i]);
        size_t mark;
        push(p, s->name, &mark);
        cv_status st = apply(p, root->kids[i], s->fields, NULL, c);
        pop(p, mark);
        if (st != CV_OK)
            return st;
    }
    return CV_OK;
}

static cv_status require(struct pctx *p, const struct cv_node *root, struct cv_config *c)
{
    const struct cv_node *sweep = cv__tree_get(root, "sweep");
    const char *missing = !c->data.train[0]      ? "data.train"
                          : c->model.input[0] < 1 ? "model.input"
                          : c->model.n_layers < 1 ? "model.layers"
                                                  : NULL;
    if (missing)
        return cv_fail(p->err, CV_CONFIG, "%s: missing required key %s", p->source, missing);
    if (!cv__tree_get(sweep, "max_epochs"))
        c->sweep.max_epochs = c->train.epochs;
    if (!cv__tree_get(sweep, "seed"))
        c->sweep.seed = c->train.seed;
    size_t len = strlen(c->sweep.metric);
    c->sweep.minimize = len >= 4 && !strcmp(c->sweep.metric + len - 4, "loss");
    if (c->comm.compression != CV_COMPRESS_NONE && c->comm.overlap)
        return cv_fail(p->err, CV_CONFIG, "%s: comm.compression = %s needs comm.overlap = false "
                       "(compressed gradients are reduced after backward)", p->source,
                       compression_names[c->comm.compression]);
    if (c->comm.shared_memory == CV_ON) {
        const char *clash = c->comm.overlap ? "comm.overlap = true"
                            : c->comm.compression != CV_COMPRESS_NONE ? "comm.compression = bf16"
                            : c->comm.shard_optimizer == CV_OFF ? "comm.shard_optimizer = false"
                                                                : NULL;
        if (clash)
            return cv_fail(p->err, CV_CONFIG, "%s: comm.shared_memory = true cannot be used with "
                           "%s (node-shared arenas are summed after backward, in float, by "
                           "each slice's owner)", p->source, clash);
    }
    if (c->comm.shared_batch == CV_ON && c->comm.shared_memory == CV_OFF)
        return cv_fail(p->err, CV_CONFIG, "%s: comm.shared_batch = true needs comm.shared_memory "
                       "(the batch is shared with the node-shared arenas)", p->source);
    if (c->comm.split_features == CV_ON &&
        (c->comm.shared_batch == CV_OFF || c->comm.shared_memory == CV_OFF))
        return cv_fail(p->err, CV_CONFIG, "%s: comm.split_features = true needs comm.shared_batch "
                       "and comm.shared_memory (split layers compute on the shared batch), got "
                       "comm.%s = false", p->source,
                       c->comm.shared_batch == CV_OFF ? "shared_batch" : "shared_memory");
    if (c->sweep.min_epochs > c->sweep.max_epochs)
        return cv_fail(p->err, CV_CONFIG, "%s: sweep.min_epochs = %d is larger than "
                       "sweep.max_epochs = %d", p->source, c->sweep.min_epochs,
                       c->sweep.max_epochs);
    return CV_OK;
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
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return cv_fail(err, CV_NOMEM, "out of memory reading %s", path);
            }
            text = t;
        }
        memcpy(text + len, chunk, got);
        len += got;
    }
    bool bad_read = ferror(f);
    fclose(f);
    if (bad_read) {
        free(text);
        return cv_fail(err, CV_IO, "%s: read error", path);
    }
    if (!text && !(text = calloc(1, 1)))
        return cv_fail(err, CV_NOMEM, "out of memory");
    text[len] = '\0';
    cv_status st = cv_config_parse(text, path, overrides, n_overrides, out, err);
    free(text);
    return st;
}

void cv_config_free(struct cv_config *cfg)
{
    if (!cfg)
        return;
    free_specs(cfg->model.layers, cfg->model.n_layers);
    free(cfg->text);
    free(cfg);
}
