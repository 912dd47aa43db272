/*
 * train.c - the data-parallel training loop (see caviar/train.h); the
 * trainer's other files are listed in train_internal.h.
 *
 *   set-up (every failure agreed across ranks before the next collective)
 *     -> per epoch: shuffle shard -> per step: gather batch -> forward/loss/
 *        backward -> the gradient exchange (src/reducer.h: this rank's owned
 *        slice summed) -> small allreduce of {stop flag, non-finite flag,
 *        batch-norm state} -> optimizer step on the owned slice -> share
 *     -> dev evaluation, metric line, model.h5, checkpoints (src/run_dir.h).
 * Resume restores parameters, optimizer moments, step/epoch/position and the
 * epoch's running sums; data order and dropout masks are keyed by
 * (seed, epoch/step, row), so a resumed run replays exactly.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run_dir.h"
#include "train_internal.h"
#include "transfer.h"
#include "util.h"

void cv__train_say(const struct trainer *tr, const char *fmt, ...)
{
    FILE *f = tr->opts->quiet ? tr->log : stdout;
    if (tr->rank != 0 || !f)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (tr->opts->tag)
        fprintf(f, "[%s] ", tr->opts->tag);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fflush(f);
}

void cv__train_print_line(void *arg, const char *line)
{
    cv__train_say(arg, "%s\n", line);
}

static cv_status diverged(const struct trainer *tr, const char *what, struct cv_error *err)
{
    return cv_fail(err, CV_NONFINITE,
                   "training diverged: %s at epoch %lld, step %lld of the epoch (global step "
                   "%lld); the last good model is kept in %s/model.h5",
                   what, tr->ts.epoch + 1, tr->ts.epoch_step + 1, tr->ts.step + 1, tr->run_dir);
}

/* One tiny allreduce per step folds: stop requests, divergence, and the
 * non-trainable state (batch-norm running statistics), averaged so that
 * every replica holds the same state.  Averaging each step is linear, so it
 * equals the running average of the ranks' mean batch statistics. */
static cv_status sync_small(struct trainer *tr, bool stop, bool finite, struct cv_error *err)
{
    size_t ns = cv_model_n_state(tr->model);
    float *state = cv_model_state(tr->model);
    tr->small[0] = stop ? 1 : 0;
    tr->small[1] = finite ? 0 : 1;
    for (size_t i = 0; i < ns; i++)
        tr->small[2 + i] = state[i];
    cv_status st = cv_comm_sum_doubles(tr->comm, tr->small, (int)(2 + ns), err);
    for (size_t i = 0; st == CV_OK && tr->world > 1 && i < ns; i++)
        state[i] = (float)(tr->small[2 + i] / tr->world);
    return st;
}

/* The global squared gradient norm for clipping: the partial norms of the
 * owned slices summed (unchanged when every rank owns the whole arena). */
static double sum_sq_over_ranks(void *arg, double partial)
{
    struct trainer *tr = arg;
    double v = partial;
    if (cv_reducer_sum_over_slices(tr->reducer, &v, &tr->norm_err) != CV_OK)
        return NAN;
    return v;
}

/* The optimizer step on this rank's slice of the parameters (all of them
 * unless sharded), then the slices shared so every replica is whole. */
static cv_status update(struct trainer *tr, double lr, long long global, struct cv_error *err)
{
    size_t lo, hi;
    double t0 = cv_now();
    cv_reducer_owned(tr->reducer, &lo, &hi);
    cv_error_clear(&tr->norm_err);
    double norm = cv_optim_step_part(tr->optim, cv_model_params(tr->model),
                                     cv_reducer_owned_grads(tr->reducer), lo, hi, lr, global,
                                     sum_sq_over_ranks, tr);
    double t1 = cv_now();
    tr->t.optim += t1 - t0;
    if (tr->norm_err.code != CV_OK) {
        if (err)
            *err = tr->norm_err;
        return tr->norm_err.code;
    }
    if (!isfinite(norm)) /* a global norm: every rank stops here */
        return diverged(tr, "the gradient is NaN or infinite", err);
    cv_status st = cv_reducer_share(tr->reducer, cv_model_params(tr->model), err);
    tr->t.comm += cv_now() - t1;
    return st;
}

/* One global mini-batch.  *stop: some rank was asked to stop. */
static cv_status train_step(struct trainer *tr, long long n_rows, double lr, bool *stop,
                            struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    long long s = tr->ts.epoch_step;
    struct cv_batch b;
    struct cv_batch_stats bs = {0};
    double t0 = cv_now(), wait = 0;
    cv_shard_batch(tr->train, cv_sched_local_batch(cfg->train.batch, tr->rank, tr->world), s, &b);
    if (cfg->data.augment_flip || tr->aug_shift > 0)
        cv_shard_augment(tr->train, &b, cfg->model.input, cfg->train.seed, tr->ts.step,
                         cfg->data.augment_flip, tr->aug_shift);
    long long global = cv_sched_global_count(n_rows, cfg->train.batch, tr->world, s);
    tr->t.data += cv_now() - t0;
    cv_model_train_batch(tr->model, &b, (uint64_t)tr->ts.step, 1.0f / (float)global, &bs);
    cv_status st = cv_reducer_finish(tr->reducer, &wait, err);
    bool preempt = tr->opts->preempt_at_step > 0 && tr->ts.step + 1 >= tr->opts->preempt_at_step;
    bool asked = (tr->opts->stop && *tr->opts->stop) || preempt;
    double t_flags = cv_now();
    if (st == CV_OK)
        st = sync_small(tr, asked, isfinite(bs.loss_sum), err);
    double *flags = tr->small;
    double t1 = cv_now();
    tr->t.comm += wait + (t1 - t_flags);
    tr->t.forward += bs.t_forward;
    tr->t.backward += bs.t_backward;
    if (st != CV_OK)
        return st;
    if (flags[1] > 0)
        return diverged(tr, "the loss is NaN or infinite", err);
    st = update(tr, lr, global, err);
    if (st != CV_OK)
        return st;
    tr->epoch.loss_sum += bs.loss_sum;
    tr->epoch.correct += bs.correct;
    tr->epoch.count += bs.count;
    tr->samples += global;
    *stop = flags[0] > 0;
    return CV_OK;
}

/* A stop request: exit 75 ("resume me") only with a checkpoint written
 * and verified by this run; else the write error (exit 1). */
static cv_status interrupted(struct trainer *tr, struct cv_error *err)
{
    if (tr->opts->on_phase)
        tr->opts->on_phase("stop_checkpoint");
    cv_status st = cv__train_save_checkpoint(tr, true, err);
    if (st != CV_OK)
        return st;
    return cv_fail(err, CV_INTERRUPTED,
                   "stopped on request at epoch %lld, global step %lld; checkpoint written to "
                   "%s/checkpoints; resume with --resume %s or run.resume=auto",
                   tr->ts.epoch + 1, tr->ts.step, tr->run_dir, tr->run_dir);
}

static void reset_epoch(struct trainer *tr)
{
    memset(&tr->epoch, 0, sizeof(tr->epoch));
    tr->ts.epoch_loss_sum = tr->ts.epoch_correct = tr->ts.epoch_count = 0;
    tr->ts.epoch++;
    tr->ts.epoch_step = 0;
}

/* The progress line after a step (rank 0, when one is due). */
static void show_progress(struct trainer *tr, long long steps)
{
    const struct cv_config *cfg = tr->cfg;
    int last = cfg->train.epochs;
    if (tr->opts->stop_at_epoch > 0 && tr->opts->stop_at_epoch < last)
        last = tr->opts->stop_at_epoch;
    long long left = (last - tr->ts.epoch - 1) * steps;
    if (cfg->train.max_steps > 0 && cfg->train.max_steps - tr->ts.step < left + steps)
        left = cfg->train.max_steps - tr->ts.step - (steps - tr->ts.epoch_step);
    double n = (double)tr->epoch.count + tr->ts.epoch_count;
    struct cv_progress_at at = {
        .epoch = (int)tr->ts.epoch + 1,
        .epochs = last,
        .step = tr->ts.epoch_step,
        .steps = steps,
        .left = left > 0 ? left : 0,
        .samples = tr->samples - tr->samples_epoch0,
        .loss = n > 0 ? (tr->epoch.loss_sum + tr->ts.epoch_loss_sum) / n : NAN,
    };
    cv__progress_print(&tr->prog, &at);
}

/* train.schedule: the values at e, the epoch about to run (the step with
 * unit: steps).  Scaling the epoch's rate keeps the decay and warmup
 * shapes, as a run resumed with that train.lr (a pbt generation) computes
 * them.  Keep and shift are pure functions of e too, so a resumed run sets
 * the same ones. */
static cv_status apply_schedule(struct trainer *tr, long long e, struct cv_error *err)
{
    const struct cv_config *c = tr->cfg;
    tr->lr_scale = cv_config_sched_value(c, CV_SCHED_LR, -1, e) / c->train.lr;
    tr->aug_shift = (int)cv_config_sched_value(c, CV_SCHED_AUGMENT_SHIFT, -1, e);
    if (c->train.n_schedule > 0)
        cv_optim_set_hyper(tr->optim, cv_config_sched_value(c, CV_SCHED_BETA1, -1, e),
                           cv_config_sched_value(c, CV_SCHED_BETA2, -1, e),
                           cv_config_sched_value(c, CV_SCHED_L2, -1, e),
                           cv_config_sched_value(c, CV_SCHED_WEIGHT_DECAY, -1, e));
    cv_status st = CV_OK;
    for (int i = 0; i < c->train.n_schedule && st == CV_OK; i++) {
        int l = c->train.schedule[i].layer;
        if (c->train.schedule[i].key == CV_SCHED_KEEP)
            st = cv_model_set_keep(tr->model, l,
                                   (float)cv_config_sched_value(c, CV_SCHED_KEEP, l, e), err);
    }
    return st;
}

/* opts.stop_at_step reached (a pbt generation that ends within an epoch). */
static bool at_stop_step(const struct trainer *tr)
{
    return tr->opts->stop_at_step > 0 && tr->ts.step >= tr->opts->stop_at_step;
}

/* Runs the steps of the current epoch; *limit when train.max_steps or
 * opts.stop_at_step is hit. */
static cv_status run_steps(struct trainer *tr, bool *limit, struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    long long n_rows = cv_shard_info(tr->train)->n_rows;
    long long steps = cv_sched_steps(n_rows, cfg->train.batch, tr->world);
    cv_shard_shuffle(tr->train, cfg->train.seed, tr->ts.epoch, true);
    cv__progress_epoch(&tr->prog, tr->ts.epoch_step);
    tr->samples_epoch0 = tr->samples;
    *limit = false;
    while (tr->ts.epoch_step < steps && !*limit) {
        bool stop = false;
        double t0 = cv_now();
        cv_status st = cfg->train.schedule_steps ? apply_schedule(tr, tr->ts.step, err) : CV_OK;
        if (st == CV_OK)
            st = train_step(tr, n_rows, cv__train_step_lr(tr, tr->ts.step), &stop, err);
        tr->train_time += cv_now() - t0;
        if (st != CV_OK)
            return st;
        tr->ts.step++;
        tr->ts.epoch_step++;
        if (tr->opts->on_step)
            tr->opts->on_step(tr->opts->on_step_arg);
        if (cv__progress_due(&tr->prog, tr->ts.epoch_step))
            show_progress(tr, steps);
        *limit = (cfg->train.max_steps > 0 && tr->ts.step >= cfg->train.max_steps) ||
                 at_stop_step(tr);
        if (stop)
            return interrupted(tr, err);
        if (cfg->checkpoint.every_steps > 0 && tr->ts.step % cfg->checkpoint.every_steps == 0)
            if ((st = cv__train_save_checkpoint(tr, false, err)) != CV_OK)
                return st;
    }
    return CV_OK;
}

/* A run resumed after its last epoch trains nothing: its result is the
 * last epoch's, which the checkpoint carries. */
static void result_from_state(const struct trainer *tr, struct cv_train_result *res)
{
    res->train_loss = tr->ts.last[0];
    res->train_accuracy = tr->ts.last[1];
    res->dev_loss = tr->ts.last[2];
    res->dev_accuracy = tr->ts.last[3];
    res->epochs_done = (int)tr->ts.epoch;
    res->steps = tr->ts.step;
}

static void result_recipe(const struct trainer *tr, struct cv_train_result *res)
{
    res->best_epoch = tr->ts.recipe.best_epoch;
    res->best_value = tr->ts.recipe.best;
    res->stopped_epoch = tr->ts.recipe.stopped;
    for (int i = 0; i < 4; i++)
        res->best_last[i] = tr->ts.recipe.best_last[i];
}

static void say_stopped(const struct trainer *tr)
{
    const struct cv_recipe_state *r = &tr->ts.recipe;
    cv__train_say(
        tr,
        "early stopping after epoch %lld: %s has not improved by more than %g for %d epochs; "
        "best %.6g at epoch %lld, kept in %s/model.h5\n",
        r->stopped, cv_monitor_name(tr->cfg->train.monitor), tr->cfg->train.min_delta,
        tr->cfg->train.patience, r->best, r->best_epoch, tr->run_dir);
}

/* After an epoch's model is saved: the caller's hook on rank 0 (the CLI
 * refreshes RUN_DIR/report.html there when run.report is set). */
static void epoch_hook(struct trainer *tr)
{
    if (tr->opts->on_epoch && tr->rank == 0)
        tr->opts->on_epoch(tr->opts->on_epoch_arg, tr->run_dir);
}

static cv_status run_epochs(struct trainer *tr, struct cv_train_result *res, struct cv_error *err)
{
    const struct cv_config *cfg = tr->cfg;
    int last = cfg->train.epochs;
    if (tr->opts->stop_at_epoch > 0 && tr->opts->stop_at_epoch < last)
        last = tr->opts->stop_at_epoch;
    if (tr->ts.epoch >= last || tr->ts.recipe.stopped > 0)
        result_from_state(tr, res);
    if (tr->ts.recipe.stopped > 0) { /* resumed after early stopping: nothing to train */
        say_stopped(tr);
        return CV_OK;
    }
    if (at_stop_step(tr)) { /* resumed at the step: its figures are in the checkpoint */
        result_from_state(tr, res);
        return CV_OK;
    }
    bool limit = false;
    while (tr->ts.epoch < last && !limit) {
        cv_status st = cfg->train.schedule_steps ? CV_OK : apply_schedule(tr, tr->ts.epoch, err);
        if (st == CV_OK)
            st = run_steps(tr, &limit, err);
        if (st == CV_OK)
            st = cv__train_finish_epoch(tr, limit ? "end" : "epoch", res, err);
        if (st == CV_OK)
            st = cv__train_save_model(tr, err);
        if (st != CV_OK)
            return st;
        epoch_hook(tr);
        if (limit) /* within an epoch: a pbt generation goes on from here */
            return at_stop_step(tr) ? cv__train_save_checkpoint(tr, false, err) : CV_OK;
        reset_epoch(tr);
        bool stop = tr->ts.recipe.stopped > 0;
        bool due = cfg->checkpoint.every_epochs > 0 &&
                   tr->ts.epoch % cfg->checkpoint.every_epochs == 0;
        if (due || tr->ts.epoch == last || stop)
            if ((st = cv__train_save_checkpoint(tr, false, err)) != CV_OK)
                return st;
        if (stop) {
            say_stopped(tr);
            break;
        }
    }
    return CV_OK;
}

static cv_status check_replicas(struct trainer *tr, struct cv_train_result *res,
                                struct cv_error *err)
{
    bool same = false;
    uint64_t h = 0;
    cv_status st = cv_comm_same_bytes(tr->comm, cv_model_params(tr->model),
                                      cv_model_n_params(tr->model) * sizeof(float), &same, &h, err);
    res->params_hash = h;
    if (st == CV_OK && !same)
        st = cv_fail(err, CV_MPI, "replicas diverged: parameter checksums differ across ranks");
    return st;
}

/* Rank 0's progress goes to the terminal or log; a quiet run (a sweep
 * trial) keeps its lines in its own RUN_DIR/train.log instead. */
static void open_output(struct trainer *tr)
{
    const struct cv_config *cfg = tr->cfg;
    FILE *out = stdout;
    if (tr->rank != 0)
        return;
    if (tr->opts->quiet) {
        char path[CV_PATH_MAX + 16];
        cv__run_dir_path(tr->run_dir, "train.log", path, sizeof(path));
        tr->log = fopen(path, "a"); /* a log only: nothing reads it back */
        out = tr->log;
    }
    bool tty = !tr->opts->quiet && tr->opts->terminal;
    cv__progress_init(&tr->prog, out, tty, tr->opts->tag, cfg->run.progress,
                      cfg->run.progress_steps);
}

static void say_exchange(const struct trainer *tr)
{
    if (tr->world > 1)
        cv__train_say(tr, "gradients: %s\n", cv_reducer_describe(tr->reducer));
}

cv_status cv_train_run(const struct cv_config *cfg, const cv_comm *comm,
                       const struct cv_train_opts *opts, struct cv_train_result *res,
                       struct cv_error *err)
{
    static const struct cv_train_opts none;
    struct trainer tr = {.cfg = cfg,
                         .comm = comm,
                         .opts = opts ? opts : &none,
                         .lock_fd = -1,
                         .lr_scale = 1,
                         .aug_shift = cfg->data.augment_shift};
    tr.rank = cv_comm_rank(comm);
    tr.world = cv_comm_size(comm);
    tr.t_start = cv_now();
    for (int i = 0; i < 4; i++)
        tr.ts.last[i] = NAN; /* no epoch finished yet */
    cv__recipe_init(&tr.ts.recipe);
    memset(res, 0, sizeof(*res));
    res->dev_loss = res->dev_accuracy = NAN;
    for (int i = 0; i < CV_FIG_COUNT; i++)
        res->dev_fig[i] = NAN;
    cv_status st = cv__train_prepare(&tr, err);
    if (st == CV_OK)
        open_output(&tr);
    if (st == CV_OK) {
        cv__train_say(
            &tr, "training on %lld rows of %s with %d rank(s) x %d thread(s), global batch %d\n",
            cv_shard_info(tr.train)->n_rows, cfg->data.train, tr.world, cv_num_threads(),
            cfg->train.batch);
        say_exchange(&tr);
        cv_model_summary(tr.model, cv__train_print_line, &tr);
        st = run_epochs(&tr, res, err);
        result_recipe(&tr, res);
    }
    if (st == CV_OK)
        st = check_replicas(&tr, res, err);
    res->seconds = cv_now() - tr.t_start;
    cv_optim_free(tr.optim);
    cv_shard_free(tr.train);
    cv_shard_free(tr.dev);
    cv_metrics_deinit(&tr.dev_mt);
    cv_model_free(tr.model);
    cv_reducer_free(tr.reducer); /* after the model, which may compute on its arenas */
    free(tr.pred);
    free(tr.small);
    free(tr.ts.metrics);
    if (tr.log)
        fclose(tr.log);
    cv__dir_unlock(tr.lock_fd);
    return st;
}
