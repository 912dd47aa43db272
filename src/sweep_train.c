/*
 * sweep_train.c - the job runner of real sweeps and ensembles: build the
 * trial's config, train it (resuming from its own checkpoint if it has
 * one) up to the job's epoch, and describe the outcome.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "caviar/sweep.h"
#include "caviar/train.h"

cv_status cv_sweep_train_job(void *arg, const cv_comm *group, const struct cv_sweep_plan *plan,
                             const struct cv_job *job, void (*poll)(void *), void *poll_arg,
                             struct cv_job_outcome *out, struct cv_error *err)
{
    volatile sig_atomic_t *stop = arg;
    memset(out, 0, sizeof(*out));
    out->train_loss = out->train_accuracy = out->dev_loss = out->dev_accuracy = NAN;
    for (int i = 0; i < CV_FIG_COUNT; i++)
        out->dev_fig[i] = NAN;
    struct cv_config *cfg = NULL;
    cv_status st = cv_sweep_job_config(plan, job, &cfg, err);
    if (st != CV_OK)
        return st;
    struct cv_train_opts opts = {.stop = stop,
                                 .quiet = true,
                                 .stop_at_epoch = job->epochs,
                                 .stop_at_step = job->steps,
                                 .on_step = poll,
                                 .on_step_arg = poll_arg};
    struct cv_train_result res;
    st = cv_train_run(cfg, group, &opts, &res, err);
    /* with train.monitor, model.h5 is the best epoch's model: report its figures */
    bool best = res.best_epoch > 0;
    out->epochs_done = res.epochs_done;
    out->steps = res.steps;
    out->train_loss = best ? res.best_last[0] : res.train_loss;
    out->train_accuracy = best ? res.best_last[1] : res.train_accuracy;
    out->dev_loss = best ? res.best_last[2] : res.dev_loss;
    out->dev_accuracy = best ? res.best_last[3] : res.dev_accuracy;
    memcpy(out->dev_fig, res.dev_fig, sizeof(out->dev_fig));
    out->seconds = res.seconds;
    /* a trial that stopped early is finished: ASHA does not promote it */
    bool final = (job->steps <= 0 && (job->epochs <= 0 || job->epochs >= cfg->train.epochs)) ||
                 res.stopped_epoch > 0;
    cv_config_free(cfg);
    if (st == CV_OK) {
        out->status = final ? CV_JOB_DONE : CV_JOB_PAUSED;
    } else if (st == CV_INTERRUPTED || st == CV_STOPPED) { /* resumed or restarted later */
        out->status = CV_JOB_INTERRUPTED;
    } else if (st == CV_MPI || st == CV_NOMEM) {
        return st; /* not the trial's fault: end the sweep */
    } else {
        out->status = CV_JOB_FAILED;
        snprintf(out->message, sizeof(out->message), "%.*s", (int)sizeof(out->message) - 1,
                 err->msg);
    }
    return CV_OK;
}
