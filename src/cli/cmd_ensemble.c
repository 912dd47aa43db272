/*
 * cmd_ensemble.c - `caviar ensemble train CONFIG --members K` trains K
 * members in parallel groups (the sweep driver, one job per member), and
 * `caviar ensemble eval MODEL.h5... --data TEST.h5` scores each member and
 * their combination (mean of the predicted probabilities, or a majority
 * vote), the rows split over the ranks; `caviar ensemble predict` writes
 * that combination as `predict` writes a model's predictions.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/checkpoint.h"
#include "caviar/evaluate.h"
#include "caviar/predictions.h"
#include "caviar/sweep.h"
#include "atomic_file.h"
#include "commands.h"
#include "util.h"

#define EVAL_BATCH  256
#define MAX_MEMBERS 64

/* ---- train ---- */

static void train_usage(FILE *f)
{
    fprintf(f, "usage: caviar ensemble train CONFIG.yaml [key.path=value ...] --members K\n"
               "       caviar ensemble train CONFIG.yaml --from-sweep RESULTS --top K\n\n"
               "Train K members at once in groups of sweep.ranks_per_trial ranks: the config\n"
               "with train.seed = seed + i, or the K best trials of a sweep's results.jsonl\n"
               "(K from 1 to 64, the most ensemble eval takes).\n"
               "Writes RUN_DIR/ensemble/member-NNNN/model.h5, RUN_DIR/ensemble/results.jsonl\n"
               "and RUN_DIR/ensemble/members.txt (the model paths, for ensemble eval).\n"
               "  --resume     continue an interrupted ensemble in the same run.dir\n"
               "  --overwrite  start afresh in a run.dir that holds an earlier ensemble\n"
               "Exit codes: 0 done, 1 error, 2 usage, 75 checkpointed on a signal: --resume.\n");
}

/* The `top` best finished rows of a sweep's results. */
static cv_status sweep_rows(const struct cv_config *cfg, const char *path, int top,
                            struct cv_result **rows, struct cv_error *err)
{
    int n = 0;
    cv_status st = cv_results_read(path, rows, &n, err);
    if (st != CV_OK)
        return st;
    n = cv_results_best_per_trial(*rows, n, cfg->sweep.minimize);
    int finished = 0;
    while (finished < n &&
           ((*rows)[finished].status == CV_JOB_DONE || (*rows)[finished].status == CV_JOB_PAUSED))
        finished++;
    if (finished < top)
        return cv_fail(err, CV_USAGE, "--top %d: %s has only %d finished trial(s)", top, path,
                       finished);
    return CV_OK;
}

static cv_status write_members(const struct cv_sweep_plan *plan, struct cv_error *err)
{
    char path[CV_PATH_MAX + 32], dir[CV_PATH_MAX];
    snprintf(path, sizeof(path), "%s/members.txt", plan->dir);
    size_t cap = (size_t)plan->n_trials * (CV_PATH_MAX + 16) + 1, len = 0;
    char *text = cv_calloc(1, cap);
    if (!text)
        return cv_fail(err, CV_NOMEM, "out of memory");
    for (int i = 0; i < plan->n_trials; i++) {
        cv_sweep_trial_dir(plan, i, dir, sizeof(dir));
        len += (size_t)snprintf(text + len, cap - len, "%s/model.h5\n", dir);
    }
    cv_status st = cv__write_text_atomic(path, text, err);
    free(text);
    if (st == CV_OK)
        printf("members: %s (evaluate: caviar ensemble eval $(cat %s) --data TEST.h5)\n", path,
               path);
    return st;
}

static int ensemble_train(int argc, char **argv)
{
    static const struct option opts[] = {{"members", required_argument, NULL, 'm'},
                                         {"from-sweep", required_argument, NULL, 'f'},
                                         {"top", required_argument, NULL, 't'},
                                         {"resume", no_argument, NULL, 'r'},
                                         {"overwrite", no_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    int members = 0, c;
    long long v;
    const char *from = NULL;
    bool resume = false, overwrite = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return train_usage(stdout), CV_EXIT_OK;
        if (c == 'm' || c == 't') {
            /* ensemble eval takes at most MAX_MEMBERS models */
            if (!cv_cli_int_arg("ensemble", c == 'm' ? "members" : "top", optarg, 1, MAX_MEMBERS,
                                &v))
                return CV_EXIT_USAGE;
            members = (int)v;
        } else if (c == 'f')
            from = optarg;
        else if (c == 'r')
            resume = true;
        else if (c == 'o')
            overwrite = true;
        else
            return cv_cli_rank() == 0 ? (train_usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    }
    if (optind >= argc || members < 1 || (resume && overwrite))
        return cv_cli_rank() == 0 ? (train_usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    struct cv_error err;
    cv_error_clear(&err);
    cv_comm *world = NULL;
    if (cv_comm_create_world(&world, &err) != CV_OK)
        return cv_cli_fail("ensemble", &err);
    struct cv_config *cfg = NULL;
    struct cv_sweep_plan *plan = NULL;
    struct cv_result *rows = NULL;
    int rc = cv_cli_load_config(world, "ensemble", argv[optind], argv + optind + 1,
                                argc - optind - 1, &cfg);
    if (rc != CV_EXIT_OK)
        goto out;
    cv_status st = from ? sweep_rows(cfg, from, members, &rows, &err) : CV_OK;
    if (st == CV_OK)
        st = cv_sweep_plan_members(cfg, members, rows, &plan, &err);
    st = cv_comm_agree(world, st, &err);
    struct cv_sweep_opts o = {.ranks_per_trial = cfg->sweep.ranks_per_trial,
                              .metric = cfg->data.dev[0] ? "dev.accuracy" : "train.accuracy",
                              .resume = resume,
                              .overwrite = overwrite,
                              .stop = cv_cli_stop_signals()};
    struct cv_sweep_summary sum;
    if (st == CV_OK && cv_comm_rank(world) == 0)
        printf("ensemble: %d member(s), %d group(s) of %d rank(s); members in %s\n", members,
               cv_comm_size(world) / o.ranks_per_trial, o.ranks_per_trial, plan->dir);
    if (st == CV_OK)
        st = cv_cli_stop_point(world, "sweep_start", &err);
    if (st == CV_OK)
        st = cv_sweep_run(plan, world, &o, cv_sweep_train_job, (void *)o.stop, &sum, &err);
    if (st == CV_OK && cv_comm_rank(world) == 0)
        st = write_members(plan, &err);
    st = cv_comm_agree(world, st, &err);
    rc = cv_cli_finish(world, "ensemble", st, &err);
out:
    free(rows);
    cv_sweep_plan_free(plan);
    cv_config_free(cfg);
    cv_comm_free(world);
    return rc;
}

/* ---- eval ---- */

struct member {
    const char *path;
    struct cv_config *cfg;
    cv_model *model;
    struct cv_metrics mt;
};

struct ensemble_eval {
    cv_comm *comm;
    struct member m[MAX_MEMBERS];
    int n;
    bool majority;
    cv_shard *shard;
    float *xbuf, *probs, *combined;
    struct cv_metrics mt; /* of the combination */
};

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: caviar ensemble eval MODEL.h5... --data DATA.h5 [--vote mean|majority] "
               "[--json]\n\n"
               "Score each model and the ensemble on a dataset split (file.h5 or file.h5#group):\n"
               "loss, accuracy and macro-F1.  --vote mean (default) averages the predicted\n"
               "probabilities; majority takes the most voted class (its loss is that of the\n"
               "vote fractions, clipped like any probability).\n");
}

static cv_status check_member(const struct ensemble_eval *e, int i, struct cv_error *err)
{
    const struct member *a = &e->m[0], *b = &e->m[i];
    if (cv_model_inputs(b->model) != cv_model_inputs(a->model) ||
        cv_model_outputs(b->model) != cv_model_outputs(a->model) ||
        cv_model_output_steps(b->model) != cv_model_output_steps(a->model) ||
        b->cfg->model.loss != a->cfg->model.loss)
        return cv_fail(err, CV_SHAPE,
                       "ensemble members differ: %s has %d inputs, %d outputs, "
                       "loss %s; %s has %d inputs, %d outputs, loss %s",
                       a->path, cv_model_inputs(a->model), cv_model_outputs(a->model),
                       cv_loss_name(a->cfg->model.loss), b->path, cv_model_inputs(b->model),
                       cv_model_outputs(b->model), cv_loss_name(b->cfg->model.loss));
    return CV_OK;
}

static cv_status open_members(struct ensemble_eval *e, struct cv_error *err)
{
    cv_status st = CV_OK;
    for (int i = 0; i < e->n && st == CV_OK; i++) {
        st = cv_ckpt_open_model(e->m[i].path, EVAL_BATCH, &e->m[i].cfg, &e->m[i].model, err);
        if (st == CV_OK)
            st = check_member(e, i, err);
    }
    return st;
}

/* Add one member's predictions p (rows, k) to the combination c: its
 * probabilities / n, or a vote of 1/n for its class (a per-step model's
 * k = T x V outputs: a vote on each step's V). */
static void combine(const struct ensemble_eval *e, const float *p, long long rows, int k, float *c)
{
    int steps = cv_model_output_steps(e->m[0].model);
    if (steps > 0)
        rows *= steps, k /= steps;
    for (long long r = 0; r < rows; r++, p += k, c += k)
        if (e->majority && k > 1)
            c[cv_predicted_class(p, k)] += 1.0f / (float)e->n;
        else
            for (int j = 0; j < k; j++)
                c[j] += p[j] / (float)e->n;
}

static cv_status open_all(struct ensemble_eval *e, const char *data, struct cv_error *err)
{
    cv_status st = open_members(e, err);
    if (st == CV_OK)
        st = cv_shard_open(data, cv_comm_rank(e->comm), cv_comm_size(e->comm), EVAL_BATCH,
                           &e->shard, err);
    if (st != CV_OK)
        return st;
    const struct cv_dataset_info *d = cv_shard_info(e->shard);
    int inputs = cv_model_inputs(e->m[0].model), outputs = cv_model_outputs(e->m[0].model);
    st = cv_eval_check_split(data, d, inputs, outputs, e->m[0].cfg->model.loss, err);
    if (st != CV_OK)
        return st;
    size_t rows = (size_t)cv_shard_rows(e->shard), cells = (rows ? rows : 1) * (size_t)outputs;
    e->xbuf = cv_calloc((size_t)EVAL_BATCH * (size_t)inputs, sizeof(float));
    e->probs = cv_calloc(cells, sizeof(float));
    e->combined = cv_calloc(cells, sizeof(float));
    if (!e->xbuf || !e->probs || !e->combined)
        return cv_fail(err, CV_NOMEM, "out of memory for %zu predictions", rows);
    int classes = d->classes;
    for (int i = 0; i < e->n && st == CV_OK; i++)
        st = cv_metrics_init(&e->m[i].mt, e->m[0].cfg->model.loss, classes, outputs, err);
    if (st == CV_OK)
        st = cv_metrics_init(&e->mt, e->m[0].cfg->model.loss, classes, outputs, err);
    return st;
}

/* Every member predicts the rank's rows; the combination accumulates. */
static cv_status score_all(struct ensemble_eval *e, struct cv_error *err)
{
    long long rows = cv_shard_rows(e->shard);
    int k = cv_model_outputs(e->m[0].model);
    const int32_t *y = cv_shard_labels(e->shard);
    const float *yv = cv_shard_targets(e->shard);
    cv_status st = CV_OK;
    for (int i = 0; i < e->n && st == CV_OK; i++) {
        cv_predict_shard(e->m[i].model, e->shard, e->xbuf, e->probs);
        st = cv_metrics_add(&e->m[i].mt, e->probs, y, yv, rows, err);
        combine(e, e->probs, rows, k, e->combined);
        st = cv_comm_agree(e->comm, st, err);
        if (st == CV_OK)
            st = cv_metrics_finish(&e->m[i].mt, e->comm, err);
    }
    if (st == CV_OK)
        st = cv_comm_agree(e->comm, cv_metrics_add(&e->mt, e->combined, y, yv, rows, err), err);
    if (st == CV_OK)
        st = cv_metrics_finish(&e->mt, e->comm, err);
    return st;
}

static void print_report(const struct ensemble_eval *e, bool json)
{
    double best = 0;
    for (int i = 0; i < e->n; i++)
        best = e->m[i].mt.accuracy > best ? e->m[i].mt.accuracy : best;
    if (json) {
        printf("{\"vote\":\"%s\",\"members\":[", e->majority ? "majority" : "mean");
        for (int i = 0; i < e->n; i++) {
            printf("%s{\"model\":\"%s\",\"metrics\":", i ? "," : "", e->m[i].path);
            cv_metrics_json(&e->m[i].mt, stdout);
            printf("}");
        }
        printf("],\"ensemble\":");
        cv_metrics_json(&e->mt, stdout);
        printf(",\"best_member_accuracy\":%.6f,\"gain\":%.6f}\n", best, e->mt.accuracy - best);
        return;
    }
    printf("%-8s %10s %10s %10s  %s\n", "member", "loss", "accuracy", "macro-F1", "model");
    for (int i = 0; i < e->n; i++)
        printf("%-8d %10.4f %10.4f %10.4f  %s\n", i, e->m[i].mt.loss, e->m[i].mt.accuracy,
               e->m[i].mt.f1, e->m[i].path);
    printf("%-8s %10.4f %10.4f %10.4f  %s of %d member(s)\n", "ensemble", e->mt.loss,
           e->mt.accuracy, e->mt.f1, e->majority ? "majority vote" : "mean probabilities", e->n);
    printf("ensemble accuracy %.4f vs best member %.4f: %+.2f points\n", e->mt.accuracy, best,
           100 * (e->mt.accuracy - best));
}

/* The member paths (the operands from optind) and the world communicator:
 * -1 to go on, else the exit code (usage: 2). */
static int take_members(struct ensemble_eval *e, int argc, char **argv, bool args_ok,
                        void (*usage)(FILE *), struct cv_error *err)
{
    e->n = argc - optind;
    cv_error_clear(err);
    if (!args_ok || e->n < 1 || e->n > MAX_MEMBERS) {
        if (cv_cli_rank() == 0) {
            usage(stderr);
            if (e->n > MAX_MEMBERS)
                fprintf(stderr, "at most %d members\n", MAX_MEMBERS);
        }
        return CV_EXIT_USAGE;
    }
    for (int i = 0; i < e->n; i++)
        e->m[i].path = argv[optind + i];
    if (cv_comm_create_world(&e->comm, err) != CV_OK)
        return cv_cli_fail("ensemble", err);
    return -1;
}

static void eval_free(struct ensemble_eval *e)
{
    for (int i = 0; i < e->n; i++) {
        cv_metrics_deinit(&e->m[i].mt);
        cv_model_free(e->m[i].model);
        cv_config_free(e->m[i].cfg);
    }
    cv_metrics_deinit(&e->mt);
    cv_shard_free(e->shard);
    free(e->xbuf);
    free(e->probs);
    free(e->combined);
    cv_comm_free(e->comm);
}

static int ensemble_eval(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"vote", required_argument, NULL, 'v'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    struct ensemble_eval e = {0};
    const char *data = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return eval_usage(stdout), CV_EXIT_OK;
        if (c == 'd')
            data = optarg;
        else if (c == 'j')
            json = true;
        else if (c == 'v' && (!strcmp(optarg, "mean") || !strcmp(optarg, "majority")))
            e.majority = !strcmp(optarg, "majority");
        else
            return cv_cli_rank() == 0 ? (eval_usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    }
    struct cv_error err;
    int rc0 = take_members(&e, argc, argv, data, eval_usage, &err);
    if (rc0 >= 0)
        return rc0;
    cv_status st = cv_comm_agree(e.comm, open_all(&e, data, &err), &err);
    if (st == CV_OK)
        st = score_all(&e, &err);
    int rc = CV_EXIT_OK;
    if (st != CV_OK)
        rc = cv_cli_rank() == 0 ? cv_cli_fail("ensemble", &err) : CV_EXIT_ERROR;
    else if (cv_cli_rank() == 0)
        print_report(&e, json);
    eval_free(&e);
    return rc;
}

/* ---- predict ---- */

static void predict_usage(FILE *f)
{
    fprintf(f, "usage: caviar ensemble predict MODEL.h5... --data DATA -o OUT.h5|OUT.csv\n"
               "                               [--vote mean|majority] [data options]\n\n"
               "Write the ensemble's predictions as `caviar predict` writes a model's: the\n"
               "members' mean probabilities (--vote mean, default) or the fraction of members\n"
               "voting for each class (majority), the predicted class, its name and the true\n"
               "label when known.\n");
    fputs(cv_cli_pred_help, f);
}

/* Local: every member's predictions of this rank's rows, combined. */
static cv_status predict_all(struct ensemble_eval *e, const char *data, struct cv_pred_opts *po,
                             struct cv_pred_input *in, char ***names, struct cv_error *err)
{
    cv_status st = open_members(e, err);
    int k = st == CV_OK ? cv_model_outputs(e->m[0].model) : 0;
    int f = st == CV_OK ? cv_model_inputs(e->m[0].model) : 0;
    int classes = st == CV_OK ? cv_model_classes(e->m[0].model) : 0;
    if (st == CV_OK)
        st = cv_pred_model_names(e->m[0].model, names, err);
    if (st != CV_OK)
        return st;
    cv_pred_image_defaults(e->m[0].cfg, &po->image);
    st = cv_pred_input_open(data, po, (const char *const *)*names, *names ? classes : 0,
                            cv_comm_rank(e->comm), cv_comm_size(e->comm), in, err);
    if (st == CV_OK)
        st = cv_pred_input_check(in, f, k, e->m[0].cfg->model.loss, err);
    if (st != CV_OK)
        return st;
    size_t cells = (size_t)(in->n ? in->n : 1) * (size_t)k;
    e->xbuf = cv_calloc((size_t)EVAL_BATCH * (size_t)f, sizeof(float));
    e->probs = cv_calloc(cells, sizeof(float));
    e->combined = cv_calloc(cells, sizeof(float));
    if (!e->xbuf || !e->probs || !e->combined)
        return cv_fail(err, CV_NOMEM, "out of memory for %lld predictions", in->n);
    for (int i = 0; i < e->n; i++) {
        cv_predict_rows(e->m[i].model, in->x, in->lengths, in->n, e->xbuf, e->probs);
        combine(e, e->probs, in->n, k, e->combined);
    }
    return CV_OK;
}

static int ensemble_predict(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"vote", required_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         CV_PRED_LONGOPTS,
                                         {0}};
    struct ensemble_eval e = {0};
    struct cv_pred_opts po = {
        .image = {.on_skip = cv_cli_print_skipped, .on_skip_arg = "ensemble"}};
    const char *data = NULL, *out = NULL;
    int c, r;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if ((r = cv_cli_pred_arg("ensemble", c, optarg, &po)) < 0)
            return CV_EXIT_USAGE;
        if (r > 0)
            continue;
        if (c == 'h')
            return predict_usage(stdout), CV_EXIT_OK;
        if (c == 'd' || c == 'o')
            *(c == 'd' ? &data : &out) = optarg;
        else if (c == 'v' && (!strcmp(optarg, "mean") || !strcmp(optarg, "majority")))
            e.majority = !strcmp(optarg, "majority");
        else
            return cv_cli_rank() == 0 ? (predict_usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    }
    struct cv_error err;
    int rc0 = take_members(&e, argc, argv, data && out, predict_usage, &err);
    if (rc0 >= 0)
        return rc0;
    struct cv_pred_input in = {0};
    char **names = NULL;
    cv_status st = cv_comm_agree(e.comm, predict_all(&e, data, &po, &in, &names, &err), &err);
    int k = st == CV_OK ? cv_model_outputs(e.m[0].model) : 0;
    if (st == CV_OK)
        st = cv_predictions_gather_write(e.comm, out, &in, e.combined, k,
                                         cv_model_output_steps(e.m[0].model),
                                         (const char *const *)names, &err);
    int rc = CV_EXIT_OK;
    if (st != CV_OK)
        rc = cv_cli_rank() == 0 ? cv_cli_fail("ensemble", &err) : CV_EXIT_ERROR;
    else if (cv_cli_rank() == 0)
        printf("wrote %lld predictions of %d member(s) (%s) to %s\n", in.total, e.n,
               e.majority ? "majority vote" : "mean probabilities", out);
    cv_pred_input_close(&in);
    free(names);
    eval_free(&e);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: caviar ensemble train CONFIG.yaml --members K | --from-sweep RESULTS --top K\n"
            "       caviar ensemble eval MODEL.h5... --data DATA.h5 [--vote mean|majority] "
            "[--json]\n"
            "       caviar ensemble predict MODEL.h5... --data DATA -o OUT.h5|OUT.csv "
            "[--vote mean|majority]\n");
}

int cv_cmd_ensemble(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "train"))
        return ensemble_train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "eval"))
        return ensemble_eval(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "predict"))
        return ensemble_predict(argc - 1, argv + 1);
    bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    if (cv_cli_rank() == 0)
        usage(help ? stdout : stderr);
    return help ? CV_EXIT_OK : CV_EXIT_USAGE;
}
