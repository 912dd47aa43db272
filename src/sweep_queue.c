/*
 * sweep_queue.c - which job a free group runs next.
 *
 * grid / random: every trial is one job, trained to the end of its config.
 * asha (asynchronous successive halving, Li et al. 2020): rung k trains to
 * min_epochs * eta^k epochs (the last rung to max_epochs).  A free group
 * gets, from the highest rung down, a trial that is in the top 1/eta of
 * the results of its rung and not yet promoted; failing that, a new trial
 * at rung 0; failing that it waits while jobs run (their results may open a
 * promotion), or is done.  Promotion never waits for a rung to fill, so
 * groups stay busy; most epochs go to the promising trials.
 * tpe: as random (the coordinator fills in each trial's values).
 * pbt: generation k trains every member up to min((k + 1) * ready,
 * max_epochs) epochs; generation k + 1 starts only when all of k is in and
 * the coordinator has done the exploit step (cv_queue_pbt_advance), so the
 * decisions do not depend on which group finished first.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/sweep.h"
#include "util.h"

#define MAX_RUNGS 64

enum trial_state { T_PENDING, T_RUNNING, T_PAUSED, T_DONE, T_FAILED };

struct trial {
    enum trial_state state;
    int rung;                 /* highest rung finished, -1 none */
    bool promoted[MAX_RUNGS]; /* promoted out of rung k */
    double metric[MAX_RUNGS];
};

struct cv_queue {
    enum cv_strategy strategy;
    int n, n_rungs, rung_epochs[MAX_RUNGS];
    bool minimize;
    long long budget, spent;
    int running, eta;
    int advanced; /* pbt: generations whose exploit step is done */
    struct trial *t;
    int *order; /* scratch for ranking a rung */
};

cv_status cv_queue_create(int n_trials, enum cv_strategy strategy, int eta, int min_epochs,
                          int max_epochs, bool minimize, long long budget, cv_queue **out,
                          struct cv_error *err)
{
    *out = NULL;
    cv_queue *q = cv_calloc(1, sizeof(*q));
    size_t n = (size_t)(n_trials > 0 ? n_trials : 1);
    struct trial *t = cv_calloc(n, sizeof(*t));
    int *order = cv_calloc(n, sizeof(*order));
    if (!q || !t || !order) {
        free(q);
        free(t);
        free(order);
        return cv_fail(err, CV_NOMEM, "out of memory for %d trials", n_trials);
    }
    q->strategy = strategy;
    q->n = n_trials;
    q->minimize = minimize;
    q->budget = budget;
    q->t = t;
    q->order = order;
    q->eta = eta;
    if (strategy == CV_STRATEGY_ASHA) {
        for (long e = min_epochs; e < max_epochs && q->n_rungs < MAX_RUNGS - 1; e *= eta)
            q->rung_epochs[q->n_rungs++] = (int)e;
        q->rung_epochs[q->n_rungs++] = max_epochs;
    } else if (strategy == CV_STRATEGY_PBT) {
        if ((max_epochs + min_epochs - 1) / min_epochs > MAX_RUNGS) {
            cv_queue_free(q);
            return cv_fail(err, CV_CONFIG,
                           "sweep.ready = %d: %d epochs make more than %d generations: use a "
                           "longer ready interval",
                           min_epochs, max_epochs, MAX_RUNGS);
        }
        for (int e = min_epochs; e < max_epochs + min_epochs; e += min_epochs)
            q->rung_epochs[q->n_rungs++] = e < max_epochs ? e : max_epochs;
    } else {
        q->rung_epochs[0] = max_epochs; /* the cost estimate of one trial */
        q->n_rungs = 1;
    }
    for (int i = 0; i < n_trials; i++)
        t[i].rung = -1;
    *out = q;
    return CV_OK;
}

void cv_queue_free(cv_queue *q)
{
    if (!q)
        return;
    free(q->t);
    free(q->order);
    free(q);
}

int cv_queue_rungs(const cv_queue *q, int *epochs, int max)
{
    for (int k = 0; k < q->n_rungs && k < max; k++)
        epochs[k] = q->rung_epochs[k];
    return q->n_rungs;
}

long long cv_queue_epochs_spent(const cv_queue *q)
{
    return q->spent;
}

int cv_queue_running(const cv_queue *q)
{
    return q->running;
}

static bool better(const cv_queue *q, double a, double b)
{
    return q->minimize ? a < b : a > b;
}

/* Epochs a job adds: its target minus what the trial has already trained. */
static int job_cost(const cv_queue *q, int trial, int rung)
{
    int from = q->t[trial].rung >= 0 ? q->rung_epochs[q->t[trial].rung] : 0;
    return q->rung_epochs[rung] - from;
}

static bool affordable(const cv_queue *q, int trial, int rung)
{
    return q->budget <= 0 || q->spent + job_cost(q, trial, rung) <= q->budget;
}

static void start(cv_queue *q, int trial, int rung, struct cv_job *job)
{
    q->spent += job_cost(q, trial, rung);
    q->t[trial].state = T_RUNNING;
    q->running++;
    job->trial = trial;
    job->rung = rung;
    job->epochs = q->strategy == CV_STRATEGY_ASHA || q->strategy == CV_STRATEGY_PBT
                      ? q->rung_epochs[rung]
                      : 0;
    job->params[0] = '\0';
}

/* Trials with a result at rung k, best first (ties: lower id first). */
static int rung_order(const cv_queue *q, int k, int *order)
{
    int n = 0;
    for (int i = 0; i < q->n; i++) {
        if (q->t[i].rung < k)
            continue;
        int at = n++;
        while (at > 0 && better(q, q->t[i].metric[k], q->t[order[at - 1]].metric[k])) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = i;
    }
    return n;
}

/* The best paused trial of rung k within the top floor(n_k / eta) of the
 * rung's results and not yet promoted; -1 if none. */
static int promotable(cv_queue *q, int k)
{
    int n_k = rung_order(q, k, q->order);
    for (int place = 0; place < n_k / q->eta; place++) {
        const struct trial *t = &q->t[q->order[place]];
        if (t->state == T_PAUSED && t->rung == k && !t->promoted[k])
            return q->order[place];
    }
    return -1;
}

/* pbt: a member at generation k < advanced goes on to k + 1. */
static int pbt_next(const cv_queue *q)
{
    for (int i = 0; i < q->n; i++)
        if (q->t[i].state == T_PAUSED && q->t[i].rung < q->advanced)
            return i;
    return -1;
}

static bool pbt_paused(const cv_queue *q)
{
    for (int i = 0; i < q->n; i++)
        if (q->t[i].state == T_PAUSED)
            return true;
    return false;
}

enum cv_queue_answer cv_queue_next(cv_queue *q, struct cv_job *job)
{
    int m = q->strategy == CV_STRATEGY_PBT ? pbt_next(q) : -1;
    if (m >= 0 && affordable(q, m, q->t[m].rung + 1)) {
        start(q, m, q->t[m].rung + 1, job);
        return CV_QUEUE_RUN;
    }
    if (q->strategy == CV_STRATEGY_ASHA)
        for (int k = q->n_rungs - 2; k >= 0; k--) {
            int i = promotable(q, k);
            if (i >= 0 && affordable(q, i, k + 1)) {
                q->t[i].promoted[k] = true;
                start(q, i, k + 1, job);
                return CV_QUEUE_RUN;
            }
        }
    for (int i = 0; i < q->n; i++)
        if (q->t[i].state == T_PENDING) {
            if (!affordable(q, i, 0))
                break;
            start(q, i, 0, job);
            return CV_QUEUE_RUN;
        }
    if (q->strategy == CV_STRATEGY_PBT) /* a paused member goes on after the exploit step */
        return q->advanced < q->n_rungs - 1 && (q->running > 0 || pbt_paused(q)) ? CV_QUEUE_WAIT
                                                                                 : CV_QUEUE_DONE;
    return q->running > 0 && q->strategy == CV_STRATEGY_ASHA ? CV_QUEUE_WAIT : CV_QUEUE_DONE;
}

int cv_queue_pbt_pending(const cv_queue *q)
{
    int k = q->advanced;
    if (q->strategy != CV_STRATEGY_PBT || q->running > 0 || k >= q->n_rungs - 1)
        return -1;
    for (int i = 0; i < q->n; i++) {
        const struct trial *t = &q->t[i];
        bool out = t->state == T_DONE || t->state == T_FAILED;
        if (t->state == T_PENDING || t->state == T_RUNNING || (!out && t->rung < k))
            return -1;
    }
    return k;
}

void cv_queue_pbt_members(const cv_queue *q, int k, double *value, bool *alive)
{
    for (int i = 0; i < q->n; i++) {
        const struct trial *t = &q->t[i];
        alive[i] = t->rung == k && (t->state == T_PAUSED || t->state == T_FAILED);
        value[i] = t->state == T_FAILED || !isfinite(t->metric[k]) ? NAN : t->metric[k];
    }
}

void cv_queue_pbt_advance(cv_queue *q, const int *donor)
{
    for (int i = 0; i < q->n; i++)
        if (donor[i] >= 0 && q->t[i].state == T_FAILED && q->t[i].rung == q->advanced)
            q->t[i].state = T_PAUSED; /* it goes on from its donor's checkpoint */
    q->advanced++;
}

static void record(cv_queue *q, const struct cv_job *job, enum cv_job_status st, double metric)
{
    struct trial *t = &q->t[job->trial];
    switch (st) {
    case CV_JOB_INTERRUPTED:
        /* back to where it was: a promotion is decided again */
        t->state = t->rung >= 0 ? T_PAUSED : T_PENDING;
        if (job->rung > 0)
            t->promoted[job->rung - 1] = false;
        q->spent -= job_cost(q, job->trial, job->rung);
        break;
    case CV_JOB_FAILED: /* ranks last in its rung, never promoted */
        t->rung = job->rung;
        t->metric[job->rung] = q->minimize ? INFINITY : -INFINITY;
        t->state = T_FAILED;
        break;
    case CV_JOB_DONE:
    case CV_JOB_PAUSED:
        t->rung = job->rung;
        t->metric[job->rung] = isnan(metric) ? (q->minimize ? INFINITY : -INFINITY) : metric;
        t->state = job->rung == q->n_rungs - 1 || q->strategy == CV_STRATEGY_RANDOM ||
                           q->strategy == CV_STRATEGY_GRID || q->strategy == CV_STRATEGY_TPE ||
                           (q->strategy == CV_STRATEGY_PBT && st == CV_JOB_DONE)
                       ? T_DONE
                       : T_PAUSED;
        break;
    case CV_JOB_EXPLOIT: /* a lineage line, not a job */
        break;
    }
}

void cv_queue_report(cv_queue *q, const struct cv_job *job, enum cv_job_status st, double metric)
{
    q->running--;
    record(q, job, st, metric);
}

void cv_queue_replay(cv_queue *q, const struct cv_job *job, enum cv_job_status st, double metric)
{
    if (job->trial < 0 || job->trial >= q->n || job->rung < 0 || job->rung >= q->n_rungs ||
        st == CV_JOB_INTERRUPTED)
        return;
    struct trial *t = &q->t[job->trial];
    if (st == CV_JOB_EXPLOIT) { /* pbt lineage: a failed member went on from its donor */
        if (t->state == T_FAILED && t->rung == job->rung)
            t->state = T_PAUSED;
        return;
    }
    if (q->strategy == CV_STRATEGY_PBT && job->rung > q->advanced)
        q->advanced = job->rung; /* generation rung - 1 had its exploit step */
    if (job->rung > 0)
        t->promoted[job->rung - 1] = true;
    q->spent += job_cost(q, job->trial, job->rung);
    record(q, job, st, metric);
}
