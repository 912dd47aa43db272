/*
 * sweep_space.c - the trials of a sweep or an ensemble: sampling the
 * search space (seeded, one keyed generator per trial and key, so trial i
 * is the same whatever ran before it), grid enumeration, ensemble members,
 * each trial's config, and coarse-to-fine refinement around the best.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/dataset.h"
#include "caviar/shard.h"
#include "caviar/sweep.h"
#include "config_tree.h"
#include "sweep_learn.h"
#include "util.h"

#define MAX_GRID 100000
#define OVER_MAX 4096

void cv__sweep_format(const struct cv_sweep_dim *d, double v, char *buf, size_t size)
{
    if (d->dist == CV_DIST_INT_UNIFORM)
        snprintf(buf, size, "%lld", (long long)llround(v));
    else
        snprintf(buf, size, d->dist == CV_DIST_ONE_MINUS_LOG_UNIFORM ? "%.8g" : "%.6g", v);
}

void cv_sweep_sample_dim(const struct cv_sweep_dim *d, uint64_t seed, int trial, char *buf,
                         size_t size)
{
    struct cv_rng rng;
    cv_rng_seed(&rng, seed, CV_RNG_SWEEP, (uint64_t)trial, cv_hash_bytes(d->key, strlen(d->key)));
    double u = cv_rng_uniform_d(&rng);
    switch (d->dist) {
    case CV_DIST_CHOICE:
        snprintf(buf, size, "%s", d->choices[(int)(u * d->n_choices)]);
        break;
    case CV_DIST_UNIFORM:
        cv__sweep_format(d, d->lo + u * (d->hi - d->lo), buf, size);
        break;
    case CV_DIST_LOG_UNIFORM:
        cv__sweep_format(d, exp(log(d->lo) + u * (log(d->hi) - log(d->lo))), buf, size);
        break;
    case CV_DIST_ONE_MINUS_LOG_UNIFORM: {
        /* beta in [lo, hi]: 1 - beta log-uniform in [1 - hi, 1 - lo] */
        double a = log(1 - d->hi), b = log(1 - d->lo);
        cv__sweep_format(d, 1 - exp(a + u * (b - a)), buf, size);
        break;
    }
    case CV_DIST_INT_UNIFORM:
        snprintf(buf, size, "%lld", (long long)d->lo + (long long)(u * (d->hi - d->lo + 1)));
        break;
    }
}

/* ---- plan storage ---- */

static struct cv_sweep_plan *plan_new(const struct cv_config *cfg, const char *kind,
                                      const char *member, int n, int per_trial)
{
    struct cv_sweep_plan *p = cv_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->base = cfg;
    p->member = member;
    p->strategy = cfg->sweep.strategy;
    snprintf(p->dir, sizeof(p->dir), "%.900s/%s", cfg->run.dir, kind);
    p->over = cv_calloc((size_t)n, sizeof(*p->over));
    p->n_over = cv_calloc((size_t)n, sizeof(*p->n_over));
    p->n_params = cv_calloc((size_t)n, sizeof(*p->n_params));
    if (!p->over || !p->n_over || !p->n_params) {
        cv_sweep_plan_free(p);
        return NULL;
    }
    p->n_trials = n;
    for (int i = 0; i < n; i++)
        if (!(p->over[i] = cv_calloc((size_t)per_trial, sizeof(char *)))) {
            cv_sweep_plan_free(p);
            return NULL;
        }
    return p;
}

void cv_sweep_plan_free(struct cv_sweep_plan *p)
{
    if (!p)
        return;
    for (int i = 0; p->over && i < p->n_trials; i++) {
        for (int j = 0; p->over[i] && j < p->n_over[i]; j++)
            free(p->over[i][j]);
        free(p->over[i]);
    }
    free(p->over);
    free(p->n_over);
    free(p->n_params);
    free(p);
}

static cv_status add_over(struct cv_sweep_plan *p, int i, const char *key, const char *value,
                          struct cv_error *err)
{
    size_t len = strlen(key) + strlen(value) + 2;
    char *s = cv_calloc(len, 1);
    if (!s)
        return cv_fail(err, CV_NOMEM, "out of memory");
    snprintf(s, len, "%s=%s", key, value);
    p->over[i][p->n_over[i]++] = s;
    return CV_OK;
}

void cv_sweep_trial_dir(const struct cv_sweep_plan *p, int i, char *buf, size_t size)
{
    snprintf(buf, size, "%.900s/%s-%04d", p->dir, p->member, i);
}

/* The config of trial i with `params` ("key=value\n" lines) in place of
 * the plan's hyperparameters when non-empty. */
static cv_status config_with(const struct cv_sweep_plan *p, int i, const char *params,
                             struct cv_config **out, struct cv_error *err)
{
    const char *over[2 * CV_MAX_SWEEP + 8];
    char dir[CV_PATH_MAX], run_dir[CV_PATH_MAX + 16], source[CV_PATH_MAX + 32];
    char *lines = params[0] ? cv_strdup(params) : NULL;
    int n = 0;
    if (params[0] && !lines)
        return cv_fail(err, CV_NOMEM, "out of memory");
    for (char *l = lines, *nl; l && *l && n < CV_MAX_SWEEP; l = nl ? nl + 1 : NULL) {
        if ((nl = strchr(l, '\n')))
            *nl = '\0';
        over[n++] = l;
    }
    for (int j = lines ? p->n_params[i] : 0; j < p->n_over[i]; j++)
        over[n++] = p->over[i][j];
    cv_sweep_trial_dir(p, i, dir, sizeof(dir));
    snprintf(run_dir, sizeof(run_dir), "run.dir=%s", dir);
    over[n++] = run_dir;
    over[n++] = "run.resume=auto";
    snprintf(source, sizeof(source), "%s (%s %d)", p->base->source, p->member, i);
    cv_status st = cv_config_parse(p->base->text, source, over, n, out, err);
    free(lines);
    return st;
}

cv_status cv_sweep_trial_config(const struct cv_sweep_plan *p, int i, struct cv_config **out,
                                struct cv_error *err)
{
    return config_with(p, i, "", out, err);
}

cv_status cv_sweep_job_config(const struct cv_sweep_plan *p, const struct cv_job *job,
                              struct cv_config **out, struct cv_error *err)
{
    return config_with(p, job->trial, job->params, out, err);
}

/* Every trial's config must parse: an unknown key or a bad value in the
 * space is an error before anything trains. */
static cv_status validate(const struct cv_sweep_plan *p, struct cv_error *err)
{
    for (int i = 0; i < p->n_trials; i++) {
        struct cv_config *c = NULL;
        struct cv_error e;
        cv_error_clear(&e);
        cv_status st = cv_sweep_trial_config(p, i, &c, &e);
        cv_config_free(c);
        if (st != CV_OK)
            return cv_fail(err, st, "%s of %s: %s", p->member, p->base->source, e.msg);
    }
    return CV_OK;
}

/* pbt: members copy each other's weights and optimizer state, so the
 * space may change neither the architecture nor the optimizer. */
static cv_status check_pbt_plan(const struct cv_sweep_plan *p, struct cv_error *err)
{
    const struct cv_config *b = p->base;
    for (int j = 0; j < b->sweep.n_space; j++)
        if (!strcmp(b->sweep.space[j].key, "train.optimizer"))
            return cv_fail(err, CV_CONFIG,
                           "%s:%d: sweep.space.train.optimizer: pbt members copy each other's "
                           "optimizer state, so the optimizer may not vary",
                           b->source, b->sweep.space[j].line);
    struct cv_config *first = NULL, *c = NULL;
    char why[128];
    const char *d = NULL;
    cv_status st = cv_sweep_trial_config(p, 0, &first, err);
    for (int i = 1; i < p->n_trials && st == CV_OK && !d; i++) {
        st = cv_sweep_trial_config(p, i, &c, err);
        d = st == CV_OK ? cv_config_arch_diff(first, c, why, sizeof(why)) : NULL;
        cv_config_free(c);
        c = NULL;
    }
    cv_config_free(first);
    if (st == CV_OK && d)
        st = cv_fail(err, CV_CONFIG,
                     "%s: sweep.space changes the architecture (%s): pbt members copy each "
                     "other's weights, so the space may hold training hyperparameters only",
                     b->source, d);
    return st;
}

/* The last step of building a plan: validate it and hand it out, or free it. */
static cv_status finish_plan(struct cv_sweep_plan *p, cv_status st, struct cv_sweep_plan **out,
                             struct cv_error *err)
{
    if (st == CV_OK)
        st = validate(p, err);
    if (st == CV_OK && p->strategy == CV_STRATEGY_PBT)
        st = check_pbt_plan(p, err);
    if (st != CV_OK) {
        cv_sweep_plan_free(p);
        return st;
    }
    *out = p;
    return CV_OK;
}

/* ---- sweeps ---- */

static bool grid_dim(const struct cv_sweep_dim *d)
{
    return d->dist == CV_DIST_CHOICE || d->dist == CV_DIST_INT_UNIFORM;
}

/* int_uniform bounds are within +-2^53 (config_space.c): exact here */
static long long dim_points(const struct cv_sweep_dim *d)
{
    return d->dist == CV_DIST_CHOICE ? d->n_choices : (long long)(d->hi - d->lo) + 1;
}

static void grid_value(const struct cv_sweep_dim *d, int k, char *buf, size_t size)
{
    if (d->dist == CV_DIST_CHOICE)
        snprintf(buf, size, "%s", d->choices[k]);
    else
        snprintf(buf, size, "%lld", (long long)d->lo + k);
}

static cv_status count_grid(const struct cv_config *cfg, int *n, struct cv_error *err)
{
    long long total = 1;
    for (int j = 0; j < cfg->sweep.n_space; j++) {
        const struct cv_sweep_dim *d = &cfg->sweep.space[j];
        if (!grid_dim(d))
            return cv_fail(err, CV_CONFIG,
                           "%s:%d: sweep.space.%s: a grid needs choice(...) or int_uniform(a, b) "
                           "for every key (use strategy random or asha for continuous ranges)",
                           cfg->source, d->line, d->key);
        long long points = dim_points(d);
        if (points > MAX_GRID / total)
            return cv_fail(err, CV_CONFIG, "%s: the grid has more than %d points", cfg->source,
                           MAX_GRID);
        total *= points;
    }
    *n = (int)total;
    return CV_OK;
}

cv_status cv_sweep_pbt_epoch_steps(const struct cv_config *cfg, int *steps, struct cv_error *err)
{
    struct cv_dataset_info info;
    cv_status st = cv_dataset_probe(cfg->data.train, &info, err);
    if (st != CV_OK)
        return st;
    long long s = cv_sched_steps(info.n_rows, cfg->train.batch, cfg->sweep.ranks_per_trial);
    if (s < 1 || s * cfg->sweep.max_epochs > INT_MAX)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.ready_steps: %d epoch(s) of %lld steps: not a count of steps "
                       "a sweep can hand out (1 to 2^31 - 1); use sweep.ready in epochs",
                       cfg->source, cfg->sweep.max_epochs, s);
    *steps = (int)s;
    return CV_OK;
}

/* pbt with sweep.ready_steps: generations that fit the training, and
 * members whose steps line up. */
static cv_status check_pbt_steps(const struct cv_config *cfg, struct cv_error *err)
{
    const char *src = cfg->source;
    int spe = 0, ready = cfg->sweep.ready_steps;
    cv_status st = cv_sweep_pbt_epoch_steps(cfg, &spe, err);
    if (st != CV_OK)
        return st;
    long long total = (long long)spe * cfg->sweep.max_epochs;
    if (ready >= total)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.ready_steps = %d steps is not shorter than the training "
                       "(sweep.max_epochs = %d of %d steps with %d rank(s) per member: %lld "
                       "steps): no exploit step would ever happen",
                       src, ready, cfg->sweep.max_epochs, spe, cfg->sweep.ranks_per_trial, total);
    if ((total + ready - 1) / ready > 64)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.ready_steps = %d: %lld steps make more than 64 generations: "
                       "use a longer ready interval",
                       src, ready, total);
    if (cfg->sweep.budget_epochs > 0)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.budget_epochs = %d with sweep.ready_steps: a pbt budget is "
                       "its population times its epochs; leave budget_epochs out",
                       src, cfg->sweep.budget_epochs);
    for (int j = 0; j < cfg->sweep.n_space; j++)
        if (!strcmp(cfg->sweep.space[j].key, "train.batch"))
            return cv_fail(err, CV_CONFIG,
                           "%s:%d: sweep.space.train.batch with sweep.ready_steps: members "
                           "must count the same steps per epoch",
                           src, cfg->sweep.space[j].line);
    return CV_OK;
}

/* pbt: a population to exploit, generations inside the training. */
static cv_status check_pbt(const struct cv_config *cfg, struct cv_error *err)
{
    const char *src = cfg->source;
    if (cfg->sweep.trials < 2)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.trials = %d: pbt needs a population of at least 2 members "
                       "(sweep.trials is the population)",
                       src, cfg->sweep.trials);
    if (cfg->sweep.ready_steps > 0)
        return check_pbt_steps(cfg, err);
    if (cfg->sweep.ready >= cfg->sweep.max_epochs)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.ready = %d epochs is not shorter than the training "
                       "(sweep.max_epochs = %d): no exploit step would ever happen",
                       src, cfg->sweep.ready, cfg->sweep.max_epochs);
    return CV_OK;
}

/* tpe: some trials for the model to propose, and something to model. */
static cv_status check_tpe(const struct cv_config *cfg, struct cv_error *err)
{
    int open = 0;
    for (int j = 0; j < cfg->sweep.n_space; j++)
        open += cfg->sweep.space[j].dist != CV_DIST_CHOICE || cfg->sweep.space[j].n_choices > 1;
    if (open == 0)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.space: every key is a choice of one value: tpe has nothing to "
                       "model (give a range or a choice of several values)",
                       cfg->source);
    if (cfg->sweep.tpe_startup >= cfg->sweep.trials)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.tpe_startup = %d random trials is not less than sweep.trials = "
                       "%d: the model would propose none (use strategy random, or more trials)",
                       cfg->source, cfg->sweep.tpe_startup, cfg->sweep.trials);
    return CV_OK;
}

cv_status cv_sweep_plan_sample(const struct cv_config *cfg, struct cv_sweep_plan **out,
                               struct cv_error *err)
{
    *out = NULL;
    const int nd = cfg->sweep.n_space;
    if (nd == 0)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.space is empty: give at least one key and "
                       "its distribution, e.g. train.lr: log_uniform(1e-4, 1e-1)",
                       cfg->source);
    int n = cfg->sweep.trials;
    cv_status st = CV_OK;
    if (cfg->sweep.strategy == CV_STRATEGY_PBT && (st = check_pbt(cfg, err)) != CV_OK)
        return st;
    if (cfg->sweep.strategy == CV_STRATEGY_TPE && (st = check_tpe(cfg, err)) != CV_OK)
        return st;
    if (cfg->sweep.strategy == CV_STRATEGY_GRID && (st = count_grid(cfg, &n, err)) != CV_OK)
        return st;
    struct cv_sweep_plan *p = plan_new(cfg, "sweep", "trial", n, nd + 1);
    if (!p)
        return cv_fail(err, CV_NOMEM, "out of memory for %d trials", n);
    char value[OVER_MAX], epochs[32];
    snprintf(epochs, sizeof(epochs), "%d", cfg->sweep.max_epochs);
    for (int i = 0; i < n && st == CV_OK; i++) {
        int rest = i; /* grid: mixed-radix digits of i, the last key fastest */
        for (int j = nd - 1; j >= 0 && st == CV_OK; j--) {
            const struct cv_sweep_dim *d = &cfg->sweep.space[j];
            if (cfg->sweep.strategy == CV_STRATEGY_GRID) {
                grid_value(d, rest % dim_points(d), value, sizeof(value));
                rest /= dim_points(d);
            } else {
                cv_sweep_sample_dim(d, cfg->sweep.seed, i, value, sizeof(value));
            }
            st = add_over(p, i, d->key, value, err);
        }
        /* keys in config order */
        for (int a = 0, b = p->n_over[i] - 1; a < b; a++, b--) {
            char *t = p->over[i][a];
            p->over[i][a] = p->over[i][b];
            p->over[i][b] = t;
        }
        p->n_params[i] = p->n_over[i];
        if (st == CV_OK &&
            (cfg->sweep.strategy == CV_STRATEGY_ASHA || cfg->sweep.strategy == CV_STRATEGY_PBT))
            st = add_over(p, i, "train.epochs", epochs, err); /* rungs stop earlier */
    }
    return finish_plan(p, st, out, err);
}

/* ---- ensembles ---- */

cv_status cv_sweep_plan_members(const struct cv_config *cfg, int members,
                                const struct cv_result *rows, struct cv_sweep_plan **out,
                                struct cv_error *err)
{
    *out = NULL;
    if (members < 1)
        return cv_fail(err, CV_USAGE, "an ensemble needs at least 1 member, got %d", members);
    struct cv_sweep_plan *p = plan_new(cfg, "ensemble", "member", members, CV_MAX_SWEEP + 2);
    if (!p)
        return cv_fail(err, CV_NOMEM, "out of memory for %d members", members);
    p->strategy = CV_STRATEGY_RANDOM;
    cv_status st = CV_OK;
    char seed[32];
    for (int i = 0; i < members && st == CV_OK; i++) {
        /* a sweep's trial: its hyperparameters (and its seed); else seed + i */
        for (int j = 0; rows && j < rows[i].n_params && st == CV_OK; j++)
            st = add_over(p, i, rows[i].params[j].key, rows[i].params[j].value, err);
        snprintf(seed, sizeof(seed), "%llu", (unsigned long long)(cfg->train.seed + (uint64_t)i));
        if (st == CV_OK && !rows)
            st = add_over(p, i, "train.seed", seed, err);
        p->n_params[i] = p->n_over[i];
    }
    return finish_plan(p, st, out, err);
}

/* ---- a row's config, coarse to fine ---- */

cv_status cv_sweep_row_config(const struct cv_config *base, const struct cv_result *r,
                              const char *run_dir, struct cv_config **out, struct cv_error *err)
{
    char over[CV_MAX_SWEEP + 3][CV_KEY_MAX + 1100];
    const char *ptr[CV_MAX_SWEEP + 3];
    int n = 0;
    for (int j = 0; j < r->n_params; j++, n++) {
        snprintf(over[n], sizeof(over[n]), "%s=%s", r->params[j].key, r->params[j].value);
        ptr[n] = over[n];
    }
    snprintf(over[n], sizeof(over[n]), "run.dir=%.1000s", run_dir);
    ptr[n] = over[n];
    n++;
    return cv_config_parse(base->text, base->source, ptr, n, out, err);
}

const char *cv__sweep_param(const struct cv_result *r, const char *key)
{
    for (int j = 0; j < r->n_params; j++)
        if (!strcmp(r->params[j].key, key))
            return r->params[j].value;
    return NULL;
}

/* Map a value into the space where the dimension is uniform, and back. */
double cv__sweep_to_flat(const struct cv_sweep_dim *d, double v)
{
    return d->dist == CV_DIST_LOG_UNIFORM             ? log(v)
           : d->dist == CV_DIST_ONE_MINUS_LOG_UNIFORM ? -log(1 - v)
                                                      : v;
}

double cv__sweep_from_flat(const struct cv_sweep_dim *d, double t)
{
    return d->dist == CV_DIST_LOG_UNIFORM             ? exp(t)
           : d->dist == CV_DIST_ONE_MINUS_LOG_UNIFORM ? 1 - exp(-t)
                                                      : t;
}

static void refine_choice(struct cv_sweep_dim *d, const struct cv_result *rows, int top)
{
    int kept = 0;
    for (int c = 0; c < d->n_choices; c++) {
        bool used = false;
        for (int i = 0; i < top && !used; i++)
            used = !strcmp(cv__sweep_param(&rows[i], d->key), d->choices[c]);
        if (used)
            memmove(d->choices[kept++], d->choices[c], sizeof(d->choices[c]));
    }
    d->n_choices = kept;
}

/* A range's value in a results row must be a number in the range's domain
 * (log_uniform > 0, one_minus_log_uniform < 1): refine maps it there. */
static cv_status check_value(const struct cv_sweep_dim *d, const struct cv_result *r,
                             struct cv_error *err)
{
    const char *text = cv__sweep_param(r, d->key);
    char *end = NULL;
    double v = text ? strtod(text, &end) : NAN;
    if (!text)
        return cv_fail(err, CV_CONFIG,
                       "trial %d of the results has no value for sweep.space key '%s': are they "
                       "from this sweep?",
                       r->trial, d->key);
    if (d->dist != CV_DIST_CHOICE && (end == text || *end || !isfinite(cv__sweep_to_flat(d, v))))
        return cv_fail(err, CV_CONFIG,
                       "trial %d of the results has %s = '%s': expected a number the range "
                       "can hold: are they from this sweep?",
                       r->trial, d->key, text);
    return CV_OK;
}

static void refine_range(struct cv_sweep_dim *d, const struct cv_result *rows, int top)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < top; i++) {
        double t = cv__sweep_to_flat(d,
                                     strtod(cv__sweep_param(&rows[i], d->key), NULL)); /* checked */
        lo = fmin(lo, t);
        hi = fmax(hi, t);
    }
    double old_lo = cv__sweep_to_flat(d, d->lo), old_hi = cv__sweep_to_flat(d, d->hi);
    double pad = fmax(0.5 * (hi - lo), 0.025 * (old_hi - old_lo));
    double a = cv__sweep_from_flat(d, fmax(old_lo, lo - pad)),
           b = cv__sweep_from_flat(d, fmin(old_hi, hi + pad));
    if (d->dist == CV_DIST_INT_UNIFORM) {
        a = floor(a);
        b = ceil(b);
        if (a == b) /* keep a range: widen by one inside the old bounds */
            b < d->hi ? b++ : a--;
    }
    d->lo = a;
    d->hi = b;
}

/* The space as YAML flow text: {key: 'dist(...)', ...}. */
static void space_text(const struct cv_sweep_dim *dims, int n, char *buf, size_t size)
{
    static const char *names[] = {"choice", "uniform", "log_uniform", "one_minus_log_uniform",
                                  "int_uniform"};
    size_t len = (size_t)snprintf(buf, size, "{");
    for (int j = 0; j < n && len < size; j++) {
        const struct cv_sweep_dim *d = &dims[j];
        len += (size_t)snprintf(buf + len, size - len, "%s%s: '%s(", j ? ", " : "", d->key,
                                names[d->dist]);
        if (d->dist == CV_DIST_CHOICE)
            for (int c = 0; c < d->n_choices && len < size; c++)
                len += (size_t)snprintf(buf + len, size - len, "%s%s", c ? ", " : "",
                                        d->choices[c]);
        else if (d->dist == CV_DIST_INT_UNIFORM)
            len += (size_t)snprintf(buf + len, size - len, "%.0f, %.0f", d->lo, d->hi);
        else
            len += (size_t)snprintf(buf + len, size - len, "%.6g, %.6g", d->lo, d->hi);
        if (len < size)
            len += (size_t)snprintf(buf + len, size - len, ")'");
    }
    if (len < size)
        snprintf(buf + len, size - len, "}");
}

/* cfg's text with sweep.space replaced, parsed again. */
static cv_status with_space(const struct cv_config *cfg, const char *space, struct cv_config **out,
                            struct cv_error *err)
{
    struct cv_node *root = NULL, *val = NULL;
    char *text = NULL;
    cv_status st = cv__tree_parse(cfg->text, cfg->source, NULL, &root, err);
    if (st == CV_OK)
        st = cv__tree_parse(space, "refined sweep.space", NULL, &val, err);
    struct cv_node *sweep = st == CV_OK ? cv__tree_get(root, "sweep") : NULL;
    for (int i = 0; sweep && i < sweep->n; i++)
        if (!strcmp(sweep->keys[i], "space")) {
            cv__tree_free(sweep->kids[i]);
            sweep->kids[i] = val;
            val = NULL;
        }
    if (st == CV_OK)
        st = cv__tree_emit(root, &text, err);
    /* a new seed, so a range left as it was does not get the coarse
     * sweep's draws again */
    char seed[64];
    const char *over[] = {seed};
    snprintf(seed, sizeof(seed), "sweep.seed=%llu",
             (unsigned long long)((cfg->sweep.seed ^ cv_hash_bytes(space, strlen(space))) &
                                  ((1ULL << 53) - 1)));
    if (st == CV_OK)
        st = cv_config_parse(text, cfg->source, over, 1, out, err);
    free(text);
    cv__tree_free(val);
    cv__tree_free(root);
    return st;
}

cv_status cv_sweep_refine(const struct cv_config *cfg, const struct cv_result *rows, int n, int top,
                          struct cv_config **out, struct cv_error *err)
{
    *out = NULL;
    int finished = 0;
    while (finished < n &&
           (rows[finished].status == CV_JOB_DONE || rows[finished].status == CV_JOB_PAUSED))
        finished++;
    if (top < 1 || finished < top)
        return cv_fail(err, CV_USAGE, "--top %d: the results have %d finished trial(s)", top,
                       finished);
    struct cv_sweep_dim dims[CV_MAX_SWEEP];
    const int nd = cfg->sweep.n_space;
    memcpy(dims, cfg->sweep.space, sizeof(dims));
    for (int j = 0; j < nd; j++) {
        cv_status st = CV_OK;
        for (int i = 0; i < top && st == CV_OK; i++)
            st = check_value(&dims[j], &rows[i], err);
        if (st != CV_OK)
            return st;
        if (dims[j].dist == CV_DIST_CHOICE)
            refine_choice(&dims[j], rows, top);
        else
            refine_range(&dims[j], rows, top);
    }
    char *space = cv_calloc(65536, 1);
    if (!space)
        return cv_fail(err, CV_NOMEM, "out of memory");
    space_text(dims, nd, space, 65536);
    cv_status st = with_space(cfg, space, out, err);
    free(space);
    return st;
}

/* ---- pbt: a member's history as one run ---- */

/* The schedule of key k over the ancestry, as flow text "{0: v0, e1: v1}",
 * appended to buf; false if the key is not in the space. */
static bool schedule_text(const struct cv_result *rows, const int *line, int g, const char *key,
                          bool steps, char *buf, size_t size)
{
    size_t len = strlen(buf);
    const char *prev = NULL;
    if (!cv__sweep_param(&rows[line[0]], key))
        return false;
    len += (size_t)snprintf(buf + len, size - len, "%s%s: {", len > 0 ? ", " : "", key);
    for (int k = 0; k < g && len < size; k++) {
        const char *v = cv__sweep_param(&rows[line[k]], key);
        if (v && (!prev || strcmp(v, prev)))
            len += (size_t)snprintf(buf + len, size - len, "%s%lld: %s", prev ? ", " : "",
                                    k ? (steps ? rows[line[k - 1]].steps : rows[line[k - 1]].epochs)
                                      : 0LL,
                                    v);
        prev = v ? v : prev;
    }
    if (len < size)
        snprintf(buf + len, size - len, "}");
    return true;
}

/* A key of the space that is not schedulable must keep one value along the
 * ancestry; its name otherwise. */
static const char *fixed_key_changes(const struct cv_config *base, const struct cv_result *rows,
                                     const int *line, int g)
{
    for (int j = 0; j < base->sweep.n_space; j++) {
        const char *key = base->sweep.space[j].key, *first = cv__sweep_param(&rows[line[0]], key);
        for (int k = 1; cv_sched_key_find(key, NULL) < 0 && first && k < g; k++) {
            const char *v = cv__sweep_param(&rows[line[k]], key);
            if (v && strcmp(v, first))
                return key;
        }
    }
    return NULL;
}

cv_status cv_sweep_pbt_replay_config(const struct cv_config *base, const struct cv_result *rows,
                                     int n, int member, const char *run_dir, struct cv_config **out,
                                     char *why, size_t why_size, struct cv_error *err)
{
    int line[64], g = cv_results_pbt_ancestry(rows, n, member, line, 64);
    const char *fixed = g > 0 ? fixed_key_changes(base, rows, line, g) : NULL;
    *out = NULL;
    if (g == 0 || fixed) {
        snprintf(why, why_size, "%s", g == 0 ? "its lineage is incomplete" : fixed);
        return CV_OK;
    }
    const struct cv_result *first = &rows[line[0]];
    char(*over)[CV_KEY_MAX + 1100] = cv_calloc(CV_MAX_SWEEP + 3, sizeof(*over));
    char *sched = cv_calloc(16384, 1);
    const char *ptr[CV_MAX_SWEEP + 3];
    int m = 0;
    cv_status st = over && sched ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory");
    for (int j = 0; st == CV_OK && j < first->n_params; j++)
        if (cv_sched_key_find(first->params[j].key, NULL) < 0) {
            snprintf(over[m], sizeof(over[m]), "%s=%s", first->params[j].key,
                     first->params[j].value);
            ptr[m] = over[m];
            m++;
        }
    if (st == CV_OK) {
        bool steps = base->sweep.ready_steps > 0; /* generations end at global steps */
        snprintf(sched, 16384, "train.schedule={%s", steps ? "unit: steps" : "");
        for (int j = 0; j < base->sweep.n_space; j++)
            if (cv_sched_key_find(base->sweep.space[j].key, NULL) >= 0)
                schedule_text(rows, line, g, base->sweep.space[j].key, steps, sched + 16,
                              16384 - 17);
        strcat(sched, "}");
        ptr[m++] = sched;
        snprintf(over[m], sizeof(over[m]), "run.dir=%.1000s", run_dir);
        ptr[m] = over[m];
        m++;
        st = cv_config_parse(base->text, base->source, ptr, m, out, err);
    }
    free(over);
    free(sched);
    return st;
}
