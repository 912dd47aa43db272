/*
 * cmd_sweep.c - `caviar sweep CONFIG [key=value ...]`: a hyperparameter
 * sweep in one MPI job (sweep.h), or, for job arrays, one trial of it
 * (--trial I) and the merge of the trials' results (--collect).
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/sweep.h"
#include "atomic_file.h"
#include "commands.h"
#include "run_dir.h"
#include "util.h"

struct sweep_args {
    const char *refine; /* --refine RESULTS */
    int top;            /* --top K */
    int trial;          /* --trial I, -1 if not given */
    bool collect, resume, overwrite;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: caviar sweep CONFIG.yaml [key.path=value ...] [options]\n\n"
            "Train the trials of the config's `sweep` section (docs/sweeps.md): P ranks form\n"
            "P / sweep.ranks_per_trial groups, each training one trial at a time, data parallel.\n"
            "Writes RUN_DIR/sweep/results.jsonl, RUN_DIR/sweep/trial-NNNN/ and\n"
            "RUN_DIR/sweep/best.yaml, and prints the trials sorted by sweep.metric.\n\n"
            "  --resume           continue an interrupted sweep in the same run.dir\n"
            "  --overwrite        start afresh in a run.dir that holds an earlier sweep:\n"
            "                     its results, config.yaml and trials' runs are removed\n"
            "  --refine RESULTS   coarse to fine: search a space narrowed around the best\n"
            "  --top K            ... K trials of RESULTS (default 3)\n"
            "  --trial I          train only trial I with all ranks (job arrays), result in\n"
            "                     RUN_DIR/sweep/trial-NNNN/result.jsonl\n"
            "  --collect          merge the --trial results into RUN_DIR/sweep/results.jsonl\n"
            "  --help             this text\n\n"
            "RUN_DIR/sweep/.caviar.lock keeps a second sweep out while this one runs.\n"
            "Exit codes: 0 done, 1 error, 2 usage, 75 checkpointed on a signal: --resume.\n");
}

static int parse_args(int argc, char **argv, struct sweep_args *a)
{
    static const struct option opts[] = {
        {"refine", required_argument, NULL, 'f'}, {"top", required_argument, NULL, 't'},
        {"trial", required_argument, NULL, 'i'},  {"collect", no_argument, NULL, 'c'},
        {"resume", no_argument, NULL, 'r'},       {"overwrite", no_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},         {0}};
    *a = (struct sweep_args){.top = 3, .trial = -1};
    int c;
    long long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            return usage(stdout), CV_EXIT_OK;
        case 'f':
            a->refine = optarg;
            break;
        case 't':
            if (!cv_cli_int_arg("sweep", "top", optarg, 1, INT_MAX, &v))
                return CV_EXIT_USAGE;
            a->top = (int)v;
            break;
        case 'i':
            if (!cv_cli_int_arg("sweep", "trial", optarg, 0, INT_MAX - 1, &v))
                return CV_EXIT_USAGE;
            a->trial = (int)v;
            break;
        case 'c':
            a->collect = true;
            break;
        case 'r':
            a->resume = true;
            break;
        case 'o':
            a->overwrite = true;
            break;
        default:
            goto bad;
        }
    }
    bool other_mode = a->resume || a->trial >= 0 || a->collect;
    if (optind < argc && !(a->trial >= 0 && a->collect) && !(a->overwrite && other_mode))
        return -1;
bad:
    if (cv_cli_rank() == 0)
        usage(stderr);
    return CV_EXIT_USAGE;
}

/* ---- the report: table on stdout, best.yaml ---- */

/* The config to train: pbt replays the best member's whole schedule when
 * train.schedule can hold it, else (and for the other strategies) the
 * best trial's final values. */
static cv_status best_config(const struct cv_config *cfg, const struct cv_result *best,
                             const struct cv_result *all, int n_all, const char *run_dir,
                             struct cv_config **out, struct cv_error *err)
{
    char why[CV_KEY_MAX + 64] = "";
    cv_status st = CV_OK;
    *out = NULL;
    if (all)
        st = cv_sweep_pbt_replay_config(cfg, all, n_all, best->trial, run_dir, out, why,
                                        sizeof(why), err);
    if (st == CV_OK && *out)
        printf("best.yaml replays trial %d's schedule (train.schedule) in one run\n", best->trial);
    else if (st == CV_OK && all)
        printf("best.yaml holds trial %d's final values only: %s%s\n", best->trial, why,
               strchr(why, ' ') ? "" : " changed along its lineage, and train.schedule cannot");
    if (st == CV_OK && !*out)
        st = cv_sweep_row_config(cfg, best, run_dir, out, err);
    return st;
}

static cv_status write_best(const struct cv_config *cfg, const char *dir,
                            const struct cv_result *best, const struct cv_result *all, int n_all,
                            struct cv_error *err)
{
    char path[CV_PATH_MAX + 32], run_dir[CV_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/best.yaml", dir);
    snprintf(run_dir, sizeof(run_dir), "%s/best", cfg->run.dir);
    struct cv_config *bc = NULL;
    cv_status st = best_config(cfg, best, all, n_all, run_dir, &bc, err);
    if (st == CV_OK)
        st = cv__write_text_atomic(path, bc->text, err);
    cv_config_free(bc);
    if (st == CV_OK)
        printf("best: trial %d, %s %.4f; its config: %s (train it with caviar train %s)\n",
               best->trial, cfg->sweep.metric, best->value, path, path);
    return st;
}

/* pbt: the values the best member's model was trained with, generation by
 * generation, traced back through its copies. */
static void print_schedule(const struct cv_result *all, int n, int member)
{
    int line[64], g = cv_results_pbt_ancestry(all, n, member, line, 64);
    if (g > 0)
        printf("schedule of trial %d (values by generation, as its model was trained):\n", member);
    for (int k = 0; k < g; k++) {
        const struct cv_result *r = &all[line[k]];
        if (r->steps > 0) /* sweep.ready_steps */
            printf("  up to step %5lld as trial %d:", r->steps, r->trial);
        else
            printf("  up to epoch %3d as trial %d:", r->epochs, r->trial);
        for (int j = 0; j < r->n_params; j++)
            printf(" %s=%s", r->params[j].key, r->params[j].value);
        printf("\n");
    }
}

static cv_status report(const struct cv_config *cfg, const char *dir, struct cv_error *err)
{
    char path[CV_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/results.jsonl", dir);
    struct cv_result *rows = NULL;
    int n = 0;
    cv_status st = cv_results_read(path, &rows, &n, err);
    if (st != CV_OK)
        return st;
    struct cv_result *all = cfg->sweep.strategy == CV_STRATEGY_PBT
                                ? cv_calloc((size_t)n + 1, sizeof(*all))
                                : NULL;
    if (all)
        memcpy(all, rows, (size_t)n * sizeof(*all));
    int n_all = n;
    n = cv_results_best_per_trial(rows, n, cfg->sweep.minimize);
    printf("\n");
    cv_results_print(rows, n, cfg->sweep.metric, stdout);
    if (all && n > 0)
        print_schedule(all, n_all, rows[0].trial);
    if (n > 0 && (rows[0].status == CV_JOB_DONE || rows[0].status == CV_JOB_PAUSED))
        st = write_best(cfg, dir, &rows[0], all, n_all, err);
    free(all);
    free(rows);
    return st;
}

/* ---- modes ---- */

static cv_status refine(const struct sweep_args *a, struct cv_config **cfg, struct cv_error *err)
{
    struct cv_result *rows = NULL;
    int n = 0;
    cv_status st = cv_results_read(a->refine, &rows, &n, err);
    struct cv_config *fine = NULL;
    if (st == CV_OK) {
        n = cv_results_best_per_trial(rows, n, (*cfg)->sweep.minimize);
        st = cv_sweep_refine(*cfg, rows, n, a->top, &fine, err);
    }
    free(rows);
    if (st != CV_OK)
        return st;
    if (cv_cli_rank() == 0) {
        printf("refined around the %d best trial(s) of %s:\n", a->top, a->refine);
        for (int j = 0; j < fine->sweep.n_space; j++) {
            const struct cv_sweep_dim *d = &fine->sweep.space[j];
            if (d->dist == CV_DIST_CHOICE)
                printf("  %s: %d choice(s)\n", d->key, d->n_choices);
            else
                printf("  %s: [%.6g, %.6g]\n", d->key, d->lo, d->hi);
        }
    }
    cv_config_free(*cfg);
    *cfg = fine;
    return CV_OK;
}

static cv_status run_sweep(const struct cv_config *cfg, const struct cv_sweep_plan *plan,
                           const cv_comm *world, const struct sweep_args *a, struct cv_error *err)
{
    struct cv_sweep_opts o = {.ranks_per_trial = cfg->sweep.ranks_per_trial,
                              .metric = cfg->sweep.metric,
                              .minimize = cfg->sweep.minimize,
                              .eta = cfg->sweep.eta,
                              /* the queue's first rung: pbt's generation length */
                              .min_epochs = cfg->sweep.strategy == CV_STRATEGY_PBT
                                                ? cfg->sweep.ready
                                                : cfg->sweep.min_epochs,
                              .max_epochs = cfg->sweep.max_epochs,
                              .budget = cfg->sweep.budget_epochs,
                              .resume = a->resume,
                              .overwrite = a->overwrite,
                              .stop = cv_cli_stop_signals()};
    if (cfg->sweep.strategy == CV_STRATEGY_PBT && cfg->sweep.ready_steps > 0) {
        /* generations in global steps (checked with the plan on every rank) */
        cv_status st = cv_sweep_pbt_epoch_steps(cfg, &o.steps_per_epoch, err);
        if (st != CV_OK)
            return st;
        o.min_epochs = cfg->sweep.ready_steps;
        o.max_epochs = o.steps_per_epoch * cfg->sweep.max_epochs;
    }
    struct cv_sweep_summary sum;
    if (cv_comm_rank(world) == 0)
        printf("sweep: %d trial(s), strategy %s, %d group(s) of %d rank(s); results in %s\n",
               plan->n_trials, cv_strategy_name(cfg->sweep.strategy),
               cv_comm_size(world) / cfg->sweep.ranks_per_trial, cfg->sweep.ranks_per_trial,
               plan->dir);
    cv_status st = cv_sweep_run(plan, world, &o, cv_sweep_train_job, (void *)o.stop, &sum, err);
    if (o.steps_per_epoch > 0) /* the queue counted steps */
        sum.epochs /= o.steps_per_epoch;
    if (cv_comm_rank(world) == 0 && (st == CV_OK || st == CV_INTERRUPTED)) {
        printf("sweep: %d job(s) in %.1f s: %d finished, %d failed, %d interrupted; %lld "
               "epoch(s) in all\n",
               sum.jobs, sum.seconds, sum.done, sum.failed, sum.interrupted, sum.epochs);
        struct cv_error rerr;
        cv_error_clear(&rerr);
        if (report(cfg, plan->dir, &rerr) != CV_OK && st == CV_OK)
            st = cv_fail(err, rerr.code, "%s", rerr.msg);
    }
    return st;
}

/* An empty temporary file next to path, created exclusively, for
 * cv_result_append and then cv__commit_file. */
static cv_status new_tmp(const char *path, char *tmp, size_t size, struct cv_error *err)
{
    int fd;
    cv_status st = cv__tmp_open(path, tmp, size, &fd, err);
    if (st == CV_OK)
        close(fd);
    return st;
}

/* Train trial `trial` with every rank, and write its result.jsonl. */
static cv_status train_one(const struct cv_config *cfg, const struct cv_sweep_plan *plan,
                           const cv_comm *world, int trial, struct cv_error *err)
{
    struct cv_job job = {.trial = trial};
    struct cv_job_outcome out;
    cv_status st = cv_sweep_train_job((void *)cv_cli_stop_signals(), world, plan, &job, NULL, NULL,
                                      &out, err);
    if (st != CV_OK || cv_comm_rank(world) != 0)
        return st;
    struct cv_result r;
    cv_sweep_result(plan, &job, &out, cfg->sweep.metric, &r);
    char dir[CV_PATH_MAX], path[CV_PATH_MAX + 32], tmp[CV_PATH_MAX + 128];
    cv_sweep_trial_dir(plan, trial, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/result.jsonl", dir);
    st = new_tmp(path, tmp, sizeof(tmp), err);
    if (st == CV_OK)
        st = cv_result_append(tmp, &r, cfg->sweep.metric, err);
    if (st == CV_OK)
        st = cv__commit_file(tmp, path, err);
    else if (tmp[0])
        unlink(tmp);
    if (st == CV_OK)
        printf("trial %d: %s after %d epoch(s), %s %.4f; result in %s\n", trial,
               cv_job_status_name(r.status), r.epochs, cfg->sweep.metric, r.value, path);
    if (st == CV_OK && out.status == CV_JOB_INTERRUPTED)
        st = cv_fail(err, CV_INTERRUPTED,
                     "trial %d stopped on request with a checkpoint: run "
                     "the same command again to resume it",
                     trial);
    return st;
}

/* One trial with every rank of the job (a job array task). */
static cv_status run_one(const struct cv_config *cfg, const struct cv_sweep_plan *plan,
                         const cv_comm *world, int trial, struct cv_error *err)
{
    if (trial >= plan->n_trials)
        return cv_fail(err, CV_USAGE, "--trial %d: the sweep has trials 0 to %d", trial,
                       plan->n_trials - 1);
    if (plan->strategy != CV_STRATEGY_RANDOM && plan->strategy != CV_STRATEGY_GRID)
        return cv_fail(err, CV_USAGE,
                       "--trial needs sweep.strategy random or grid: %s decides from "
                       "results as they come",
                       cv_strategy_name(plan->strategy));
    int lock = -1; /* shared with the other tasks of the array, not with a whole sweep */
    cv_status st = cv_comm_rank(world) == 0
                       ? cv_sweep_prepare_dir(plan, CV_SWEEP_DIR_SHARED, &lock, err)
                       : CV_OK;
    if ((st = cv_comm_agree(world, st, err)) == CV_OK)
        st = train_one(cfg, plan, world, trial, err);
    cv__dir_unlock(lock);
    return st;
}

/* Merge the trials' result.jsonl files (rank 0). */
static cv_status collect(const struct cv_config *cfg, const struct cv_sweep_plan *plan,
                         struct cv_error *err)
{
    char results[CV_PATH_MAX + 32], tmp[CV_PATH_MAX + 128] = "", dir[CV_PATH_MAX],
                                                      path[CV_PATH_MAX + 32];
    snprintf(results, sizeof(results), "%s/results.jsonl", plan->dir);
    int found = 0, missing = 0, lock = -1;
    cv_status st = cv_sweep_prepare_dir(plan, CV_SWEEP_DIR_CONTINUE, &lock, err);
    if (st == CV_OK)
        st = new_tmp(results, tmp, sizeof(tmp), err);
    for (int i = 0; i < plan->n_trials && st == CV_OK; i++) {
        cv_sweep_trial_dir(plan, i, dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/result.jsonl", dir);
        struct cv_result *rows = NULL;
        int n = 0;
        if (access(path, F_OK) != 0) {
            printf("trial %d: no result (%s missing)\n", i, path);
            missing++;
            continue;
        }
        st = cv_results_read(path, &rows, &n, err);
        for (int j = 0; j < n && st == CV_OK; j++)
            st = cv_result_append(tmp, &rows[j], cfg->sweep.metric, err);
        found += n > 0;
        free(rows);
    }
    if (st == CV_OK && found == 0)
        st = cv_fail(err, CV_IO,
                     "no trial results under %s: run the trials with --trial I "
                     "first",
                     plan->dir);
    if (st == CV_OK)
        st = cv__commit_file(tmp, results, err);
    else if (tmp[0])
        unlink(tmp);
    if (st == CV_OK)
        printf("collected %d of %d trial(s) into %s\n", found, plan->n_trials, results);
    if (st == CV_OK)
        st = report(cfg, plan->dir, err);
    if (st == CV_OK && missing > 0)
        st = cv_fail(err, CV_IO, "%d of %d trial(s) have no result yet", missing, plan->n_trials);
    cv__dir_unlock(lock);
    return st;
}

int cv_cmd_sweep(int argc, char **argv)
{
    struct sweep_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    struct cv_error err;
    cv_error_clear(&err);
    cv_comm *world = NULL;
    if (cv_comm_create_world(&world, &err) != CV_OK)
        return cv_cli_fail("sweep", &err);
    struct cv_config *cfg = NULL;
    struct cv_sweep_plan *plan = NULL;
    rc = cv_cli_load_config(world, "sweep", argv[optind], argv + optind + 1, argc - optind - 1,
                            &cfg);
    if (rc != CV_EXIT_OK)
        goto out;
    cv_status st = a.refine ? refine(&a, &cfg, &err) : CV_OK;
    if (st == CV_OK)
        st = cv_sweep_plan_sample(cfg, &plan, &err);
    st = cv_comm_agree(world, st, &err);
    if (st == CV_OK && !a.collect) /* before any trial starts */
        st = cv_cli_stop_point(world, "sweep_start", &err);
    if (st == CV_OK && a.collect)
        st = cv_comm_agree(world, cv_comm_rank(world) == 0 ? collect(cfg, plan, &err) : CV_OK,
                           &err);
    else if (st == CV_OK && a.trial >= 0)
        st = run_one(cfg, plan, world, a.trial, &err);
    else if (st == CV_OK)
        st = run_sweep(cfg, plan, world, &a, &err);
    rc = cv_cli_finish(world, "sweep", st, &err);
out:
    cv_sweep_plan_free(plan);
    cv_config_free(cfg);
    cv_comm_free(world);
    return rc;
}
