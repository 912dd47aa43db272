/*
 * sweep.c - the sweep driver: groups, the coordinator, results.jsonl.
 *
 * Group g is world ranks [g*k, (g+1)*k); its rank 0 (the leader) asks world
 * rank 0 for a job, broadcasts the answer inside the group, the group trains
 * it, and the leader's next request carries the outcome.  World rank 0 leads
 * group 0 and is the coordinator as well: it answers requests between its
 * own training steps (the runner calls `poll`, wired to cv_train_opts.
 * on_step) and, when its group has nothing to do, in an idle loop.  Every
 * wait sleeps instead of spinning (cv_comm_*_idle), so the coordinator costs
 * neither a rank nor a core.
 *
 * A job that fails (NaN loss, ...) is recorded as failed and the sweep goes
 * on.  A stop request (signal) lets running jobs checkpoint, answers every
 * further request with "stop", and returns CV_INTERRUPTED; --resume replays
 * results.jsonl into the queue, so finished jobs are kept, jobs that were
 * running restart from their checkpoints (run.resume = auto) and pending
 * ones run.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "caviar/sweep.h"
#include "atomic_file.h"
#include "run_dir.h"
#include "sweep_diff.h"
#include "sweep_learn.h"
#include "sweep_progress.h"
#include "util.h"

enum { TAG_REQUEST = 7101, TAG_REPLY = 7102 };
enum reply_kind { REPLY_RUN, REPLY_DONE, REPLY_STOP };

struct request {
    int has_report; /* the outcome of the group's previous job */
    struct cv_job job;
    struct cv_job_outcome out;
};

struct reply {
    int kind;
    struct cv_job job;
};

struct coord { /* on world rank 0 only */
    const struct cv_sweep_plan *plan;
    const struct cv_sweep_opts *opts;
    const cv_comm *world;
    cv_queue *q;
    struct cv__learner *learn; /* tpe, pbt: proposals, exploit steps */
    char results[CV_PATH_MAX + 32];
    int groups, k;
    int *parked; /* groups waiting for a job (cv_queue_next said WAIT) */
    int n_parked;
    int finished; /* groups told done or stop */
    bool stopping;
    struct reply own; /* group 0's answer, once there is one */
    bool own_answered;
    int greeted; /* other groups whose first request was handled */
    int lock_fd; /* the sweep directory's lock (run_dir.h) */
    struct cv_sweep_summary *sum;
    struct cv_error io_err; /* first failure to write results.jsonl */
    double t0;
    struct cv_sweep_progress prog; /* trials done / total, best, ETA for the log */
};

double cv_outcome_metric(const struct cv_job_outcome *o, const char *metric)
{
    if (!strcmp(metric, "dev.accuracy"))
        return o->dev_accuracy;
    if (!strcmp(metric, "dev.loss"))
        return o->dev_loss;
    if (!strcmp(metric, "train.accuracy"))
        return o->train_accuracy;
    if (!strcmp(metric, "train.loss"))
        return o->train_loss;
    for (int i = 0; !strncmp(metric, "dev.", 4) && i < CV_FIG_COUNT; i++)
        if (!strcmp(metric + 4, cv_figure_name(i)))
            return o->dev_fig[i];
    return NAN;
}

bool cv_metric_known(const char *metric)
{
    struct cv_job_outcome o = {.dev_accuracy = 0}; /* every figure 0: known names give 0 */
    return !isnan(cv_outcome_metric(&o, metric));
}

/* ---- the coordinator ---- */

void cv_sweep_result(const struct cv_sweep_plan *p, const struct cv_job *job,
                     const struct cv_job_outcome *o, const char *metric, struct cv_result *r)
{
    memset(r, 0, sizeof(*r));
    r->trial = job->trial;
    r->rung = job->rung;
    r->epochs = o->epochs_done;
    r->steps = p->base->sweep.ready_steps > 0 ? o->steps : 0;
    r->status = o->status;
    r->value = o->status == CV_JOB_FAILED ? NAN : cv_outcome_metric(o, metric);
    r->train_loss = o->train_loss;
    r->train_accuracy = o->train_accuracy;
    r->dev_loss = o->dev_loss;
    r->dev_accuracy = o->dev_accuracy;
    r->seconds = o->seconds;
    snprintf(r->message, sizeof(r->message), "%s", o->message);
    char dir[CV_PATH_MAX];
    cv_sweep_trial_dir(p, job->trial, dir, sizeof(dir));
    snprintf(r->model, sizeof(r->model), "%.*s/model.h5", (int)sizeof(r->model) - 10, dir);
    r->parent = -1;
    if (job->params[0]) {
        cv__sweep_params_from_lines(job->params, r);
        return;
    }
    for (int j = 0; j < p->n_params[job->trial]; j++) {
        const char *ov = p->over[job->trial][j], *eq = strchr(ov, '=');
        snprintf(r->params[j].key, sizeof(r->params[j].key), "%.*s", (int)(eq - ov), ov);
        snprintf(r->params[j].value, sizeof(r->params[j].value), "%s", eq + 1);
    }
    r->n_params = p->n_params[job->trial];
}

static void coord_record(struct coord *c, int group, const struct request *req)
{
    const struct cv_job_outcome *o = &req->out;
    /* as results.jsonl keeps it, so a resumed tpe/pbt decides the same */
    double value = cv__sweep_round(cv_outcome_metric(o, c->opts->metric));
    cv_queue_report(c->q, &req->job, o->status, value);
    struct cv_sweep_summary *s = c->sum;
    s->jobs++;
    s->done += o->status == CV_JOB_DONE || o->status == CV_JOB_PAUSED;
    s->failed += o->status == CV_JOB_FAILED;
    s->interrupted += o->status == CV_JOB_INTERRUPTED;
    if (o->status == CV_JOB_INTERRUPTED)
        c->stopping = true;
    struct cv_result *r = cv_calloc(1, sizeof(*r));
    if (!r) {
        cv_fail(&c->io_err, CV_NOMEM, "out of memory");
        c->stopping = true;
        return;
    }
    cv_sweep_result(c->plan, &req->job, o, c->opts->metric, r);
    r->value = cv__sweep_round(r->value);
    if (cv_result_append(c->results, r, c->opts->metric, &c->io_err) != CV_OK)
        c->stopping = true; /* results can no longer be kept: wind down */
    cv__learner_observe(c->learn, r);
    free(r);
    cv__sweep_progress_record(&c->prog, req->job.trial, o->status, value, false);
    if (c->opts->quiet)
        return;
    printf("[%s %d", c->plan->member, req->job.trial);
    if (c->plan->strategy == CV_STRATEGY_ASHA || c->plan->strategy == CV_STRATEGY_PBT)
        printf(", %s %d", c->plan->strategy == CV_STRATEGY_ASHA ? "rung" : "generation",
               req->job.rung);
    if (c->opts->steps_per_epoch > 0) /* pbt with sweep.ready_steps */
        printf("] %s after step %lld", cv_job_status_name(o->status), o->steps);
    else
        printf("] %s after %d epoch(s)", cv_job_status_name(o->status), o->epochs_done);
    printf(": %s %.4f, %.1f s (group %d, %.0f s into the %s)%s%s\n", c->opts->metric, value,
           o->seconds, group, cv_now() - c->t0, c->plan->member[0] == 't' ? "sweep" : "ensemble",
           o->message[0] ? ": " : "", o->message);
    cv__sweep_progress_print(&c->prog, c->plan->member[0] == 't' ? "sweep" : "ensemble",
                             c->plan->member, c->opts->metric, cv_queue_running(c->q), stdout);
}

/* pbt with sweep.ready_steps: the queue's targets are global steps; one at
 * an epoch's end is run as that epoch (the usual end of an epoch, no
 * figures of a partial one), any other as a step within an epoch. */
static void in_steps(const struct cv_sweep_opts *o, struct cv_job *job)
{
    long long spe = o->steps_per_epoch, target = job->epochs;
    job->steps = 0;
    if (spe <= 0 || job->epochs <= 0)
        return;
    if (target % spe == 0) {
        job->epochs = (int)(target / spe);
    } else {
        job->epochs = 0;
        job->steps = target;
    }
}

/* The answer for `group`; false if it must wait (parked). */
static bool coord_answer(struct coord *c, struct reply *rep)
{
    if (c->opts->stop && *c->opts->stop)
        c->stopping = true;
    if (c->stopping) {
        rep->kind = REPLY_STOP;
        return true;
    }
    if (cv__learner_prepare(c->learn, c->q, &c->io_err) != CV_OK) {
        c->stopping = true; /* an exploit step failed: wind down, the message is kept */
        rep->kind = REPLY_STOP;
        return true;
    }
    enum cv_queue_answer a = cv_queue_next(c->q, &rep->job);
    if (a == CV_QUEUE_WAIT)
        return false;
    if (a == CV_QUEUE_RUN)
        in_steps(c->opts, &rep->job);
    if (a == CV_QUEUE_RUN && cv__learner_params(c->learn, &rep->job, &c->io_err) != CV_OK) {
        cv_queue_report(c->q, &rep->job, CV_JOB_INTERRUPTED, NAN); /* not handed out */
        c->stopping = true;
        rep->kind = REPLY_STOP;
        return true;
    }
    rep->kind = a == CV_QUEUE_RUN ? REPLY_RUN : REPLY_DONE;
    return true;
}

static cv_status coord_deliver(struct coord *c, int group, const struct reply *rep,
                               struct cv_error *err)
{
    if (rep->kind != REPLY_RUN)
        c->finished++;
    if (group == 0) {
        c->own = *rep;
        c->own_answered = true;
        return CV_OK;
    }
    return cv_comm_send(c->world, rep, sizeof(*rep), group * c->k, TAG_REPLY, err);
}

/* A request from `group` (already recorded): answer it or park it. */
static cv_status coord_request(struct coord *c, int group, struct cv_error *err)
{
    struct reply rep = {0};
    if (!coord_answer(c, &rep)) {
        c->parked[c->n_parked++] = group;
        return CV_OK;
    }
    return coord_deliver(c, group, &rep, err);
}

/* After a result, parked groups may get a job (or learn they are done). */
static cv_status coord_unpark(struct coord *c, struct cv_error *err)
{
    cv_status st = CV_OK;
    for (int i = 0; i < c->n_parked && st == CV_OK;) {
        struct reply rep = {0};
        if (!coord_answer(c, &rep)) {
            i++;
            continue;
        }
        int group = c->parked[i];
        c->parked[i] = c->parked[--c->n_parked];
        st = coord_deliver(c, group, &rep, err);
    }
    return st;
}

/* Handle every waiting request; *served tells whether there was one. */
static cv_status coord_serve(struct coord *c, bool *served, struct cv_error *err)
{
    cv_status st = CV_OK;
    *served = false;
    for (;;) {
        struct request req;
        int from;
        if ((st = cv_comm_try_recv(c->world, &req, sizeof(req), TAG_REQUEST, &from, err)) !=
                CV_OK ||
            from < 0)
            break;
        *served = true;
        if (req.has_report)
            coord_record(c, from / c->k, &req);
        else
            c->greeted++;
        if ((st = coord_request(c, from / c->k, err)) != CV_OK ||
            (st = coord_unpark(c, err)) != CV_OK)
            break;
    }
    return st;
}

static struct { /* the poll hook's state: one coordinator per process */
    cv_status st;
    struct cv_error err;
} poller;

static void coord_poll(void *arg)
{
    bool served;
    if (poller.st == CV_OK)
        poller.st = coord_serve(arg, &served, &poller.err);
}

/* Serve until done(c): sleep between empty polls (20 us doubling to 2 ms). */
static cv_status coord_serve_until(struct coord *c, bool (*done)(const struct coord *),
                                   struct cv_error *err)
{
    long ns = 20000;
    while (!done(c)) {
        bool served;
        cv_status st = coord_serve(c, &served, err);
        if (st != CV_OK)
            return st;
        if (served) {
            ns = 20000;
            continue;
        }
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
        ns = ns < 1000000 ? ns * 2 : 2000000;
    }
    return CV_OK;
}

static bool own_answered(const struct coord *c)
{
    return c->own_answered;
}

/* Every group has its first job: rank 0 polls only between its own
 * training steps, so a group whose first request arrived while rank 0 was
 * setting up its own trial would idle for that whole set-up. */
static bool first_round_done(const struct coord *c)
{
    return c->own_answered && c->greeted >= c->groups - 1;
}

static bool all_finished(const struct coord *c)
{
    return c->finished == c->groups;
}

/* ---- set-up: checks before anything trains, the results file ---- */

static cv_status check_plan(const struct cv_sweep_plan *p, const struct cv_sweep_opts *o, int world,
                            struct cv_error *err)
{
    const char *src = p->base->source;
    if (o->ranks_per_trial < 1 || world % o->ranks_per_trial != 0)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.ranks_per_trial = %d does not divide the %d "
                       "ranks of the job",
                       src, o->ranks_per_trial, world);
    int groups = world / o->ranks_per_trial;
    if (groups > p->n_trials && p->strategy == CV_STRATEGY_PBT)
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.trials = %d: a pbt population smaller than its %d groups of "
                       "%d rank(s) (a generation waits for every member): use fewer ranks, a "
                       "larger ranks_per_trial or a larger population",
                       src, p->n_trials, groups, o->ranks_per_trial);
    if (groups > p->n_trials)
        return cv_fail(err, CV_CONFIG,
                       "%s: %d groups of %d rank(s) for only %d %ss: use fewer "
                       "ranks, a larger ranks_per_trial or more %ss",
                       src, groups, o->ranks_per_trial, p->n_trials, p->member, p->member);
    if (!cv_metric_known(o->metric))
        return cv_fail(err, CV_CONFIG,
                       "%s: sweep.metric '%s' is not one of dev.accuracy, dev.loss, "
                       "train.accuracy, train.loss, dev.f1, dev.top_k_accuracy, dev.roc_auc, "
                       "dev.micro_f1, dev.hamming_loss, dev.subset_accuracy, dev.mae, dev.rmse, "
                       "dev.r2",
                       src, o->metric);
    if (!strncmp(o->metric, "dev.", 4) && !p->base->data.dev[0])
        return cv_fail(err, CV_CONFIG, "%s: sweep.metric '%s' needs data.dev", src, o->metric);
    return CV_OK;
}

/* RUN_DIR/<kind> and its trial directories, made by caviar: a symlink
 * planted at one of them is refused, not followed (atomic_file.h). */
static cv_status make_dirs(const struct cv_sweep_plan *p, struct cv_error *err)
{
    if (cv__mkdir_p(p->base->run.dir) != 0 || access(p->base->run.dir, W_OK) != 0)
        return cv_fail(err, CV_IO, "cannot create the %s directory %s: %s", p->member,
                       p->base->run.dir, strerror(errno));
    cv_status st = cv__mkdir_own(p->dir, err);
    char dir[CV_PATH_MAX];
    for (int i = 0; i < p->n_trials && st == CV_OK; i++) {
        cv_sweep_trial_dir(p, i, dir, sizeof(dir));
        st = cv__mkdir_own(dir, err);
    }
    return st;
}

/* The whole of a text file (malloc'd), or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    long len = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    char *s = len >= 0 && len < (1L << 24) ? cv_calloc((size_t)len + 1, 1) : NULL;
    if (s && (fseek(f, 0, SEEK_SET) != 0 || fread(s, 1, (size_t)len, f) != (size_t)len)) {
        free(s);
        s = NULL;
    }
    if (f)
        fclose(f);
    return s;
}

/* config.yaml must be this config's.  On --resume, a larger sweep.trials
 * or sweep.budget_epochs extends the sweep (pbt: the population is fixed),
 * and config.yaml becomes the new one. */
static cv_status check_config(const struct cv_sweep_plan *p, const char *path,
                              enum cv_sweep_dir_use use, struct cv_error *err)
{
    if (access(path, F_OK) != 0)
        return cv__write_text_atomic(path, p->base->text, err);
    char *old = slurp(path);
    if (!old)
        return cv_fail(err, CV_IO, "cannot read %s: %s", path, strerror(errno));
    struct cv_config_diff *d = cv_calloc(1, sizeof(*d));
    cv_status st = d ? cv__config_diff(old, p->base->text, d, err)
                     : cv_fail(err, CV_NOMEM, "out of memory");
    free(old);
    bool extend = st == CV_OK && use == CV_SWEEP_DIR_CONTINUE && d->n == d->n_extend &&
                  !(d->trials && p->strategy == CV_STRATEGY_PBT);
    if (st == CV_OK && d->n > 0 && extend) {
        printf("extending %s: %s\n", p->dir, d->text);
        st = cv__write_text_atomic(path, p->base->text, err);
    } else if (st == CV_OK && d->n > 0) {
        st = cv_fail(err, CV_CONFIG,
                     "%s belongs to a different config (use the same config and overrides, or "
                     "choose another run.dir; --resume may only raise sweep.trials or "
                     "sweep.budget_epochs%s): %d key(s) differ from %s: %s",
                     p->dir, p->strategy == CV_STRATEGY_PBT ? ", and pbt not its population" : "",
                     d->n, path, d->text);
    }
    free(d);
    return st;
}

/* --overwrite, under the lock: an earlier sweep's files and its trials'
 * runs go (unlink removes a planted symlink itself, never its target). */
static void clear_dir(const struct cv_sweep_plan *p)
{
    static const char *const files[] = {"results.jsonl", "config.yaml", "best.yaml", "members.txt",
                                        NULL};
    char path[CV_PATH_MAX + 32], dir[CV_PATH_MAX];
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof(path), "%s/%s", p->dir, files[i]);
        unlink(path);
    }
    for (int i = 0; i < p->n_trials; i++) {
        cv_sweep_trial_dir(p, i, dir, sizeof(dir));
        cv__run_dir_clear(dir);
        snprintf(path, sizeof(path), "%s/result.jsonl", dir);
        unlink(path);
    }
}

/* RUN_DIR/<kind>/config.yaml records what the results belong to: a resume
 * with another config would mix trials of two different sweeps. */
cv_status cv_sweep_prepare_dir(const struct cv_sweep_plan *p, enum cv_sweep_dir_use use,
                               int *lock_fd, struct cv_error *err)
{
    char path[CV_PATH_MAX + 32], results[CV_PATH_MAX + 32];
    *lock_fd = -1;
    cv_status st = make_dirs(p, err);
    if (st == CV_OK)
        st = cv__dir_lock(p->dir, use == CV_SWEEP_DIR_SHARED,
                          !strcmp(p->member, "trial") ? "caviar sweep" : "caviar ensemble train",
                          lock_fd, err);
    if (st == CV_OK && use == CV_SWEEP_DIR_OVERWRITE)
        clear_dir(p);
    snprintf(path, sizeof(path), "%s/config.yaml", p->dir);
    snprintf(results, sizeof(results), "%s/results.jsonl", p->dir);
    if (st == CV_OK && use == CV_SWEEP_DIR_NEW && access(results, F_OK) == 0)
        st = cv_fail(err, CV_CONFIG,
                     "%s exists: resume that run with --resume, replace it with "
                     "--overwrite, or choose another run.dir",
                     results);
    if (st == CV_OK)
        st = check_config(p, path, use, err);
    if (st != CV_OK) {
        cv__dir_unlock(*lock_fd);
        *lock_fd = -1;
    }
    return st;
}

/* Replay an interrupted run's results into the queue. */
static cv_status replay(struct coord *c, struct cv_error *err)
{
    struct cv_result *rows = NULL;
    int n = 0;
    if (access(c->results, F_OK) != 0)
        return CV_OK;
    cv_status st = cv_results_read(c->results, &rows, &n, err);
    for (int i = 0; i < n && st == CV_OK; i++) {
        struct cv_job job = {.trial = rows[i].trial, .rung = rows[i].rung};
        if (rows[i].trial >= c->plan->n_trials)
            st = cv_fail(err, CV_CORRUPT, "%s: trial %d is not in this %s of %d", c->results,
                         rows[i].trial, c->plan->member, c->plan->n_trials);
        else
            st = cv__learner_check(c->learn, &rows[i], c->results, err);
        if (st != CV_OK)
            break;
        cv_queue_replay(c->q, &job, rows[i].status, rows[i].value);
        cv__learner_observe(c->learn, &rows[i]);
        if (st == CV_OK)
            cv__sweep_progress_record(&c->prog, rows[i].trial, rows[i].status, rows[i].value, true);
    }
    if (st == CV_OK && n > 0 && !c->opts->quiet)
        printf("resuming %s: %d result line(s) kept from %s\n", c->plan->dir, n, c->results);
    free(rows);
    return st;
}

static cv_status coord_init(struct coord *c, const struct cv_sweep_plan *p,
                            const struct cv_sweep_opts *o, const cv_comm *world,
                            struct cv_sweep_summary *sum, struct cv_error *err)
{
    memset(c, 0, sizeof(*c));
    c->lock_fd = -1;
    c->plan = p;
    c->opts = o;
    c->world = world;
    c->k = o->ranks_per_trial;
    c->groups = cv_comm_size(world) / c->k;
    c->sum = sum;
    c->t0 = cv_now();
    cv_error_clear(&c->io_err);
    c->parked = cv_calloc((size_t)c->groups, sizeof(*c->parked));
    if (!c->parked || !cv__sweep_progress_init(&c->prog, p->n_trials, o->minimize))
        return cv_fail(err, CV_NOMEM, "out of memory");
    cv_status st = cv_queue_create(p->n_trials, p->strategy, o->eta, o->min_epochs, o->max_epochs,
                                   o->minimize, o->budget, &c->q, err);
    snprintf(c->results, sizeof(c->results), "%s/results.jsonl", p->dir);
    if (st == CV_OK)
        st = cv__learner_create(p, o->minimize, o->metric, c->results, &c->learn, err);
    if (st == CV_OK)
        st = cv_sweep_prepare_dir(p,
                                  o->resume      ? CV_SWEEP_DIR_CONTINUE
                                  : o->overwrite ? CV_SWEEP_DIR_OVERWRITE
                                                 : CV_SWEEP_DIR_NEW,
                                  &c->lock_fd, err);
    if (st == CV_OK && o->resume)
        st = replay(c, err);
    return st;
}

static void coord_free(struct coord *c)
{
    cv__dir_unlock(c->lock_fd);
    cv_queue_free(c->q);
    cv__learner_free(c->learn);
    free(c->parked);
    cv__sweep_progress_deinit(&c->prog);
}

/* ---- every group ---- */

/* The leader's request and the answer, broadcast in the group. */
static cv_status next_job(struct coord *c, const cv_comm *world, const cv_comm *group,
                          struct request *req, struct reply *rep, struct cv_error *err)
{
    cv_status st = CV_OK;
    int wrank = cv_comm_rank(world);
    if (wrank == 0) {
        if (req->has_report)
            coord_record(c, 0, req);
        c->own_answered = false;
        st = coord_request(c, 0, err);
        if (st == CV_OK && req->has_report)
            st = coord_unpark(c, err);
        if (st == CV_OK)
            st = coord_serve_until(c, req->has_report ? own_answered : first_round_done, err);
        *rep = c->own;
    } else if (cv_comm_rank(group) == 0) {
        st = cv_comm_send(world, req, sizeof(*req), 0, TAG_REQUEST, err);
        if (st == CV_OK)
            st = cv_comm_recv_idle(world, rep, sizeof(*rep), 0, TAG_REPLY, err);
    }
    if (st == CV_OK)
        st = cv_comm_bcast_idle(group, rep, sizeof(*rep), 0, err);
    return st;
}

/* The group's loop: ask, train, report.  A runner error other than an MPI
 * one fails the job, not the sweep. */
static cv_status work(struct coord *c, const struct cv_sweep_plan *plan, const cv_comm *world,
                      const cv_comm *group, cv_job_runner run, void *run_arg, bool *stopped,
                      struct cv_error *err)
{
    struct request req = {0};
    struct reply rep;
    bool coordinator = cv_comm_rank(world) == 0;
    if (coordinator) {
        poller.st = CV_OK;
        cv_error_clear(&poller.err);
    }
    for (;;) {
        cv_status st = next_job(c, world, group, &req, &rep, err);
        if (st != CV_OK)
            return st;
        if (rep.kind != REPLY_RUN) {
            *stopped = rep.kind == REPLY_STOP;
            return CV_OK;
        }
        memset(&req, 0, sizeof(req));
        req.has_report = 1;
        req.job = rep.job;
        struct cv_error job_err;
        cv_error_clear(&job_err);
        st = run(run_arg, group, plan, &rep.job, coordinator ? coord_poll : NULL, c, &req.out,
                 &job_err);
        if (st == CV_MPI)
            return cv_fail(err, st, "%s", job_err.msg);
        if (st != CV_OK) {
            req.out.status = CV_JOB_FAILED;
            snprintf(req.out.message, sizeof(req.out.message), "%.*s",
                     (int)sizeof(req.out.message) - 1, job_err.msg);
        }
        if (coordinator && poller.st != CV_OK)
            return cv_fail(err, poller.st, "%s", poller.err.msg);
    }
}

cv_status cv_sweep_run(const struct cv_sweep_plan *plan, const cv_comm *world,
                       const struct cv_sweep_opts *opts, cv_job_runner run, void *run_arg,
                       struct cv_sweep_summary *sum, struct cv_error *err)
{
    memset(sum, 0, sizeof(*sum));
    double t0 = cv_now();
    int wrank = cv_comm_rank(world);
    struct coord c;
    memset(&c, 0, sizeof(c));
    c.lock_fd = -1;
    cv_status st = check_plan(plan, opts, cv_comm_size(world), err);
    if (st == CV_OK && wrank == 0)
        st = coord_init(&c, plan, opts, world, sum, err);
    st = cv_comm_agree(world, st, err);
    cv_comm *group = NULL;
    if (st == CV_OK)
        st = cv_comm_split(world, wrank / opts->ranks_per_trial, wrank, &group, err);
    bool stopped = false;
    if (st == CV_OK)
        st = work(wrank == 0 ? &c : NULL, plan, world, group, run, run_arg, &stopped, err);
    if (st == CV_OK && wrank == 0) /* answer the other groups until all are finished */
        st = coord_serve_until(&c, all_finished, err);
    if (st == CV_OK && wrank == 0 && c.io_err.code != CV_OK)
        st = cv_fail(err, c.io_err.code, "%s", c.io_err.msg);
    if (st == CV_OK && stopped)
        st = cv_fail(err, CV_INTERRUPTED,
                     "stopped on request: running %ss checkpointed; "
                     "continue with --resume",
                     plan->member);
    /* Every rank meets here whatever its status (idly: groups finish at
     * different times), then they agree.  After an MPI error nothing
     * collective can be trusted: return it, the caller aborts the job. */
    if (st != CV_MPI) {
        struct cv_error berr;
        cv_error_clear(&berr);
        cv_status b = cv_comm_barrier_idle(world, &berr);
        if (b != CV_OK)
            st = cv_fail(err, b, "%s", berr.msg);
    }
    if (st != CV_MPI)
        st = cv_comm_agree(world, st, err);
    if (wrank == 0) {
        if (c.q)
            sum->epochs = cv_queue_epochs_spent(c.q);
        coord_free(&c);
    }
    sum->seconds = cv_now() - t0;
    cv_comm_free(group);
    return st;
}
