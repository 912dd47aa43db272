/*
 * cmd_train.c - `caviar train CONFIG [key.path=value ...] [--resume RUN_DIR |
 * --overwrite]`.
 * Signals: see cv_cli_stop_signals (cli_common.c).
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/comm.h"
#include "caviar/config.h"
#include "caviar/report.h"
#include "caviar/train.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: caviar train CONFIG.yaml [key.path=value ...] [--resume RUN_DIR | "
            "--overwrite]\n\n"
            "Train the model described by CONFIG (docs/config.md) on every rank of the job,\n"
            "data parallel.  Overrides replace config keys, e.g. train.lr=3e-3 run.dir=runs/a.\n\n"
            "  --resume DIR  continue from the newest valid checkpoint in DIR/checkpoints\n"
            "  --overwrite   replace another run found in run.dir (its model.h5,\n"
            "                metrics.jsonl and checkpoints); without it a fresh run refuses\n"
            "                a run.dir that holds one (run.resume=auto continues it)\n"
            "  --stop-after-steps N  act as if preempted after global step N: checkpoint,\n"
            "                exit 75 (for testing resume)\n"
            "  --help        this text\n\n"
            "Writes RUN_DIR/model.h5, RUN_DIR/metrics.jsonl, RUN_DIR/checkpoints/*.h5\n"
            "(and RUN_DIR/report.html after every epoch with run.report=true);\n"
            "RUN_DIR/.caviar.lock keeps a second job out of RUN_DIR while this one runs.\n"
            "Exit codes: 0 done, 1 error, 2 usage, 75 stopped on a signal with a checkpoint\n"
            "written and verified: resume me, 76 stopped on a signal during start-up before\n"
            "anything was trained: run again.\n");
}

static void after_step(void *arg)
{
    (void)arg;
    cv_cli_phase("step");
}

/* run.report: rewrite RUN_DIR/report.html after every epoch, so it can be
 * opened while the job runs; a failure is a warning, never a reason to
 * stop training. */
static void refresh_report(void *arg, const char *run_dir)
{
    char path[CV_PATH_MAX + 16];
    const char *dirs[1] = {run_dir};
    struct cv_error err;
    (void)arg;
    cv_error_clear(&err);
    snprintf(path, sizeof(path), "%s/report.html", run_dir);
    if (cv_report_write(dirs, 1, path, &err) != CV_OK)
        fprintf(stderr, "caviar train: warning: report not refreshed: %s\n", err.msg);
}

int cv_cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {{"resume", required_argument, NULL, 'r'},
                                         {"stop-after-steps", required_argument, NULL, 's'},
                                         {"overwrite", no_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *resume = NULL;
    bool overwrite = false;
    long long preempt = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return usage(stdout), CV_EXIT_OK;
        if (c == 's' && (preempt = atoll(optarg)) > 0)
            continue;
        if (c == 'o' && (overwrite = true))
            continue;
        if (c != 'r')
            return usage(stderr), CV_EXIT_USAGE;
        resume = optarg;
    }
    if (optind >= argc) {
        if (cv_cli_rank() == 0)
            usage(stderr);
        return CV_EXIT_USAGE;
    }
    if (resume && overwrite) {
        if (cv_cli_rank() == 0)
            fprintf(stderr, "caviar train: --resume and --overwrite exclude each other\n");
        return CV_EXIT_USAGE;
    }
    struct cv_error err;
    cv_error_clear(&err);
    cv_comm *comm = NULL;
    if (cv_comm_create_world(&comm, &err) != CV_OK)
        return cv_cli_fail("train", &err);
    struct cv_config *cfg = NULL;
    int rc = cv_cli_load_config(comm, "train", argv[optind], argv + optind + 1, argc - optind - 1,
                                &cfg);
    if (rc == CV_EXIT_OK) {
        struct cv_train_opts topts = {.resume_dir = resume,
                                      .overwrite = overwrite,
                                      .stop = cv_cli_stop_signals(),
                                      .preempt_at_step = preempt,
                                      .on_step = after_step,
                                      .on_phase = cv_cli_phase,
                                      .terminal = cv_cli_stdout_is_terminal(),
                                      .on_epoch = cfg->run.report ? refresh_report : NULL};
        struct cv_train_result res;
        cv_status st = cv_train_run(cfg, comm, &topts, &res, &err);
        if (st == CV_OK && cv_comm_rank(comm) == 0 && res.epochs_done > 0)
            printf("done: %d epoch(s), %lld steps, dev %s %.4f, %.1f s; model in %s/model.h5\n",
                   res.epochs_done, res.steps, isnan(res.dev_accuracy) ? "loss" : "accuracy",
                   isnan(res.dev_accuracy) ? res.dev_loss : res.dev_accuracy, res.seconds,
                   cfg->run.dir);
        else if (st == CV_OK && cv_comm_rank(comm) == 0)
            printf("done: model in %s/model.h5\n", cfg->run.dir);
        rc = cv_cli_finish(comm, "train", st, &err);
    }
    cv_config_free(cfg);
    cv_comm_free(comm);
    return rc;
}
