/*
 * sweep_learn.c - the coordinator's side of the strategies that learn
 * (tpe, pbt), on world rank 0: it keeps each trial's current values and
 * the finished results, asks sweep_tpe.c for proposals, and carries out
 * sweep_pbt.c's exploit decisions: the donor's newest checkpoint (weights
 * and optimizer state) becomes the recipient's, and a lineage line goes to
 * results.jsonl.  Everything it decides is rebuilt from results.jsonl on
 * resume, so an exploit step cut short by a kill is finished, not redone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/train.h"
#include "atomic_file.h"
#include "sweep_learn.h"
#include "util.h"

struct cv__learner {
    const struct cv_sweep_plan *plan;
    const struct cv_config *cfg; /* the sweep section */
    bool minimize;
    const char *metric, *results;
    char **cur;            /* cur[i]: trial i's values as "key=value\n" lines, or NULL */
    int *exploited;        /* pbt: the last generation member i copied after, -1 none */
    struct cv_result *obs; /* tpe: finished lines */
    int n_obs, cap_obs;
};

cv_status cv__learner_create(const struct cv_sweep_plan *p, bool minimize, const char *metric,
                             const char *results, struct cv__learner **out, struct cv_error *err)
{
    *out = NULL;
    if (p->strategy != CV_STRATEGY_TPE && p->strategy != CV_STRATEGY_PBT)
        return CV_OK;
    struct cv__learner *l = cv_calloc(1, sizeof(*l));
    if (l) {
        l->cur = cv_calloc((size_t)p->n_trials, sizeof(*l->cur));
        l->exploited = cv_calloc((size_t)p->n_trials, sizeof(*l->exploited));
    }
    if (!l || !l->cur || !l->exploited) {
        cv__learner_free(l);
        return cv_fail(err, CV_NOMEM, "out of memory for %d trials", p->n_trials);
    }
    for (int i = 0; i < p->n_trials; i++)
        l->exploited[i] = -1;
    l->plan = p;
    l->cfg = p->base;
    l->minimize = minimize;
    l->metric = metric;
    l->results = results;
    *out = l;
    return CV_OK;
}

void cv__learner_free(struct cv__learner *l)
{
    if (!l)
        return;
    for (int i = 0; l->cur && i < l->plan->n_trials; i++)
        free(l->cur[i]);
    free(l->cur);
    free(l->exploited);
    free(l->obs);
    free(l);
}

/* "key=value\n" lines (a job's own values) into r->params. */
void cv__sweep_params_from_lines(const char *s, struct cv_result *r)
{
    for (; *s && r->n_params < CV_MAX_SWEEP + 2; r->n_params++) {
        const char *eq = strchr(s, '='), *nl = strchr(s, '\n');
        if (!eq || !nl || eq > nl)
            break;
        snprintf(r->params[r->n_params].key, sizeof(r->params[0].key), "%.*s", (int)(eq - s), s);
        snprintf(r->params[r->n_params].value, sizeof(r->params[0].value), "%.*s",
                 (int)(nl - eq - 1), eq + 1);
        s = nl + 1;
    }
}

double cv__sweep_round(double v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.9g", v);
    return isfinite(v) ? strtod(buf, NULL) : v;
}

/* A results line's values as "key=value\n" lines (malloc'd, NULL if none). */
static char *row_params(const struct cv_result *r)
{
    size_t len = 1;
    for (int j = 0; j < r->n_params; j++)
        len += strlen(r->params[j].key) + strlen(r->params[j].value) + 2;
    char *s = r->n_params > 0 ? cv_calloc(len, 1) : NULL;
    for (int j = 0, at = 0; s && j < r->n_params; j++)
        at += snprintf(s + at, len - (size_t)at, "%s=%s\n", r->params[j].key, r->params[j].value);
    return s;
}

static void set_cur(struct cv__learner *l, int trial, char *params)
{
    if (!params)
        return;
    free(l->cur[trial]);
    l->cur[trial] = params;
}

void cv__learner_observe(struct cv__learner *l, const struct cv_result *r)
{
    if (!l || r->trial < 0 || r->trial >= l->plan->n_trials)
        return;
    set_cur(l, r->trial, row_params(r));
    if (r->status == CV_JOB_EXPLOIT && r->rung > l->exploited[r->trial])
        l->exploited[r->trial] = r->rung;
    bool finished = r->status == CV_JOB_DONE || r->status == CV_JOB_PAUSED;
    if (l->plan->strategy != CV_STRATEGY_TPE || !finished || !isfinite(r->value))
        return;
    if (l->n_obs == l->cap_obs) {
        int cap = l->cap_obs ? 2 * l->cap_obs : 64;
        struct cv_result *o = cv_realloc(l->obs, (size_t)cap, sizeof(*o));
        if (!o)
            return; /* one observation less: the model is a little poorer, nothing breaks */
        l->obs = o;
        l->cap_obs = cap;
    }
    l->obs[l->n_obs++] = *r;
}

/* A value of d that results.jsonl holds: one of a choice's values, a
 * number inside a range. */
static bool holds(const struct cv_sweep_dim *d, const char *text)
{
    if (d->dist == CV_DIST_CHOICE) {
        for (int c = 0; c < d->n_choices; c++)
            if (!strcmp(text, d->choices[c]))
                return true;
        return false;
    }
    char *end;
    double v = strtod(text, &end);
    return end != text && !*end && v >= d->lo && v <= d->hi;
}

cv_status cv__learner_check(const struct cv__learner *l, const struct cv_result *r,
                            const char *path, struct cv_error *err)
{
    const struct cv_config *c = l ? l->cfg : NULL;
    if (c && r->status == CV_JOB_EXPLOIT && r->parent >= l->plan->n_trials)
        return cv_fail(err, CV_CORRUPT, "%s: trial %d copied %s %d, which is not in this %s of %d",
                       path, r->trial, l->plan->member, r->parent, l->plan->member,
                       l->plan->n_trials);
    for (int j = 0; c && j < c->sweep.n_space; j++) {
        const struct cv_sweep_dim *d = &c->sweep.space[j];
        const char *v = cv__sweep_param(r, d->key);
        if (v && !holds(d, v))
            return cv_fail(err, CV_CORRUPT,
                           "%s: trial %d has %s = '%.100s', outside sweep.space.%s (%s): a %s "
                           "keeps each value inside its distribution; are these results from "
                           "this sweep?",
                           path, r->trial, d->key, v, d->key,
                           d->dist == CV_DIST_CHOICE ? "not one of its choice values"
                                                     : "out of its range",
                           cv_strategy_name(l->plan->strategy));
    }
    return CV_OK;
}

/* Trial i's values: its current ones, else the plan's. */
static char *params_of(const struct cv__learner *l, int i, char *buf, size_t size)
{
    if (l->cur[i]) {
        snprintf(buf, size, "%s", l->cur[i]);
        return buf;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (int j = 0; j < l->plan->n_params[i] && len < size; j++)
        len += (size_t)snprintf(buf + len, size - len, "%s\n", l->plan->over[i][j]);
    return buf;
}

cv_status cv__learner_params(struct cv__learner *l, struct cv_job *job, struct cv_error *err)
{
    if (!l)
        return CV_OK;
    const struct cv_config *c = l->cfg;
    bool fresh = !l->cur[job->trial];
    if (l->plan->strategy == CV_STRATEGY_TPE && fresh && l->n_obs >= c->sweep.tpe_startup)
        cv__tpe_propose(c->sweep.space, c->sweep.n_space, l->obs, l->n_obs, l->minimize,
                        c->sweep.seed, job->trial, c->sweep.tpe_candidates, job->params,
                        sizeof(job->params));
    else
        params_of(l, job->trial, job->params, sizeof(job->params));
    if (fresh && job->params[0] && !(l->cur[job->trial] = cv_strdup(job->params)))
        return cv_fail(err, CV_NOMEM, "out of memory");
    return CV_OK;
}

/* ---- pbt: the exploit step ---- */

/* Copy src to dst through a temporary file, synced, then renamed in. */
static cv_status copy_file(const char *src, const char *dst, struct cv_error *err)
{
    char tmp[CV_PATH_MAX + 128] = "", buf[1 << 16];
    int out = -1, in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return cv_fail(err, CV_IO, "cannot open %s: %s", src, strerror(errno));
    cv_status st = cv__tmp_open(dst, tmp, sizeof(tmp), &out, err);
    ssize_t got = 0;
    while (st == CV_OK && (got = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)got) != got)
            st = cv_fail(err, CV_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (st == CV_OK && (got < 0 || fsync(out) != 0))
        st = cv_fail(err, CV_IO, "cannot copy %s to %s: %s", src, tmp, strerror(errno));
    close(in);
    if (out >= 0)
        close(out);
    if (st == CV_OK)
        return cv__commit_file(tmp, dst, err);
    if (tmp[0])
        unlink(tmp);
    return st;
}

/* The recipient's other checkpoints go, so its run resumes from the copy. */
static void drop_others(const char *dir, const char *keep)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[CV_PATH_MAX + 300];
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "ckpt-", 5) && strcmp(e->d_name, keep)) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
}

/* Member `to` takes `from`'s newest checkpoint (weights, optimizer state,
 * step counters), under the same name. */
static cv_status take_checkpoint(const struct cv_sweep_plan *p, int from, int to,
                                 struct cv_error *err)
{
    char src_dir[CV_PATH_MAX], dst_dir[CV_PATH_MAX], src[CV_PATH_MAX + 64], dst[CV_PATH_MAX + 300];
    cv_sweep_trial_dir(p, from, src_dir, sizeof(src_dir));
    cv_sweep_trial_dir(p, to, dst_dir, sizeof(dst_dir));
    cv_status st = cv_train_find_checkpoint(src_dir, src, sizeof(src), NULL, NULL, err);
    if (st != CV_OK)
        return st;
    const char *name = strrchr(src, '/') + 1;
    snprintf(dst_dir + strlen(dst_dir), sizeof(dst_dir) - strlen(dst_dir), "/checkpoints");
    if (cv__mkdir_p(dst_dir) != 0)
        return cv_fail(err, CV_IO, "cannot create %s: %s", dst_dir, strerror(errno));
    snprintf(dst, sizeof(dst), "%s/%s", dst_dir, name);
    st = copy_file(src, dst, err);
    if (st == CV_OK)
        drop_others(dst_dir, name);
    return st;
}

/* The lineage line of member i, which copied `from` after generation k. */
static cv_status lineage(struct cv__learner *l, int i, int from, int k, const double *value,
                         int epochs, const char *params, struct cv_error *err)
{
    struct cv_result *r = cv_calloc(1, sizeof(*r));
    if (!r)
        return cv_fail(err, CV_NOMEM, "out of memory");
    /* with sweep.ready_steps, generations end at global steps */
    bool steps = l->cfg->sweep.ready_steps > 0;
    const char *unit = steps ? "step" : "epoch";
    r->trial = i;
    r->rung = k;
    r->epochs = steps ? 0 : epochs;
    r->steps = steps ? epochs : 0;
    r->status = CV_JOB_EXPLOIT;
    r->value = value[i];
    r->parent = from;
    r->parent_value = value[from];
    r->train_loss = r->train_accuracy = r->dev_loss = r->dev_accuracy = r->seconds = NAN;
    cv_sweep_trial_dir(l->plan, i, r->model, sizeof(r->model) - 10);
    strcat(r->model, "/model.h5");
    snprintf(r->message, sizeof(r->message), "copied %s %d (%s %.6g) after %s %d", l->plan->member,
             from, l->metric, value[from], unit, epochs);
    cv__sweep_params_from_lines(params, r);
    cv_status st = cv_result_append(l->results, r, l->metric, err);
    if (st == CV_OK)
        printf("[%s %d] exploit after %s %d: copies %s %d (%s %.4f against %.4f)\n",
               l->plan->member, i, unit, epochs, l->plan->member, from, l->metric, value[from],
               value[i]);
    free(r);
    return st;
}

/* Member i takes its donor's checkpoint and the donor's values, perturbed. */
static cv_status exploit_one(struct cv__learner *l, int i, int from, int k, const double *value,
                             int epochs, struct cv_error *err)
{
    const struct cv_config *c = l->cfg;
    char *donor = cv_calloc(CV_JOB_PARAMS, 1), *mine = cv_calloc(CV_JOB_PARAMS, 1);
    cv_status st = donor && mine ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory");
    if (st == CV_OK) {
        params_of(l, from, donor, CV_JOB_PARAMS);
        cv__pbt_perturb(c->sweep.space, c->sweep.n_space, donor, c->sweep.resample, c->sweep.seed,
                        k, i, mine, CV_JOB_PARAMS);
        st = take_checkpoint(l->plan, from, i, err);
    }
    if (st == CV_OK)
        st = lineage(l, i, from, k, value, epochs, mine, err);
    if (st == CV_OK) {
        set_cur(l, i, mine);
        mine = NULL;
        l->exploited[i] = k;
    }
    free(donor);
    free(mine);
    return st;
}

cv_status cv__learner_prepare(struct cv__learner *l, cv_queue *q, struct cv_error *err)
{
    int k = l ? cv_queue_pbt_pending(q) : -1;
    if (k < 0)
        return CV_OK;
    int n = l->plan->n_trials, epochs[64];
    double *value = cv_calloc((size_t)n, sizeof(*value));
    bool *alive = cv_calloc((size_t)n, sizeof(*alive));
    int *donor = cv_calloc((size_t)n, sizeof(*donor));
    cv_status st = value && alive && donor ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory");
    if (st == CV_OK) {
        cv_queue_rungs(q, epochs, 64);
        cv_queue_pbt_members(q, k, value, alive);
        cv__pbt_pairs(value, alive, n, l->minimize, l->cfg->sweep.pbt_fraction, l->cfg->sweep.seed,
                      k, donor);
    }
    /* a member with a lineage line for k did it before a resume: kept as is */
    for (int i = 0; i < n && st == CV_OK; i++)
        if (donor[i] >= 0 && l->exploited[i] < k)
            st = exploit_one(l, i, donor[i], k, value, epochs[k], err);
    if (st == CV_OK)
        cv_queue_pbt_advance(q, donor);
    free(value);
    free(alive);
    free(donor);
    return st;
}
