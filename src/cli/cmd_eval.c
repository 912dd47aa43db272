/*
 * cmd_eval.c - `caviar eval MODEL.h5 DATA.h5 [--json]` and
 * `caviar predict MODEL.h5 DATA.h5 -o preds.h5|preds.csv`.  Under mpirun the
 * ranks split the rows; metrics are summed over ranks, predictions gathered
 * on rank 0, which writes the output file atomically.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/checkpoint.h"
#include "caviar/evaluate.h"
#include "caviar/predictions.h"
#include "commands.h"
#include "util.h"

#define EVAL_BATCH 256

struct scored {
    cv_comm *comm;
    struct cv_config *cfg;
    cv_model *model;
    cv_shard *shard;
    float *xbuf, *probs; /* (EVAL_BATCH, inputs), (local rows, outputs) */
};

static void scored_free(struct scored *s)
{
    cv_model_free(s->model);
    cv_config_free(s->cfg);
    cv_shard_free(s->shard);
    free(s->xbuf);
    free(s->probs);
    cv_comm_free(s->comm);
}

static cv_status check_data(cv_model *m, const char *model, const char *data,
                            const struct cv_dataset_info *d, struct cv_error *err)
{
    if (d->features != cv_model_inputs(m))
        return cv_fail(err, CV_SHAPE, "%s has %d features per row, but %s expects %d", data,
                       d->features, model, cv_model_inputs(m));
    if (d->classes > 0 && d->classes > cv_model_outputs(m) && cv_model_outputs(m) > 1)
        return cv_fail(err, CV_SHAPE, "%s has %d classes, but %s has %d outputs", data, d->classes,
                       model, cv_model_outputs(m));
    return CV_OK;
}

/* Collective: open the model and this rank's rows, predict them. */
static cv_status score(struct scored *s, const char *model, const char *data, struct cv_error *err)
{
    cv_status st = cv_comm_create_world(&s->comm, err);
    if (st != CV_OK)
        return st;
    int rank = cv_comm_rank(s->comm), world = cv_comm_size(s->comm);
    st = cv_ckpt_open_model(model, EVAL_BATCH, &s->cfg, &s->model, err);
    if (st == CV_OK)
        st = cv_shard_open(data, rank, world, EVAL_BATCH, &s->shard, err);
    if (st == CV_OK)
        st = check_data(s->model, model, data, cv_shard_info(s->shard), err);
    if (st == CV_OK) {
        size_t rows = (size_t)cv_shard_rows(s->shard);
        s->xbuf = cv_calloc((size_t)EVAL_BATCH * (size_t)cv_model_inputs(s->model), sizeof(float));
        s->probs = cv_calloc((rows ? rows : 1) * (size_t)cv_model_outputs(s->model), sizeof(float));
        if (!s->xbuf || !s->probs)
            st = cv_fail(err, CV_NOMEM, "out of memory for %zu predictions", rows);
    }
    st = cv_comm_agree(s->comm, st, err);
    if (st == CV_OK)
        cv_predict_shard(s->model, s->shard, s->xbuf, s->probs);
    return st;
}

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: caviar eval MODEL.h5 DATA.h5 [--json]\n\n"
               "Evaluate a model (or checkpoint) on a dataset split (file.h5 or file.h5#group):\n"
               "loss, accuracy, macro precision/recall/F1 and the confusion matrix.\n"
               "  --json  print one JSON object instead of the human report\n");
}

int cv_cmd_eval(int argc, char **argv)
{
    int json, rc0 = cv_cli_json_help(argc, argv, &json, eval_usage);
    if (rc0 >= 0)
        return rc0;
    if (argc - optind != 2)
        return cv_cli_rank() == 0 ? (eval_usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    struct cv_error err;
    cv_error_clear(&err);
    struct scored s = {0};
    struct cv_metrics mt = {0};
    cv_status st = score(&s, argv[optind], argv[optind + 1], &err);
    if (st == CV_OK) {
        const struct cv_dataset_info *d = cv_shard_info(s.shard);
        int classes = d->classes > 0 ? d->classes : cv_model_outputs(s.model);
        st = cv_metrics_init(&mt, s.cfg->model.loss, classes, cv_model_outputs(s.model), &err);
        if (st == CV_OK)
            cv_metrics_add(&mt, s.probs, cv_shard_labels(s.shard), cv_shard_targets(s.shard),
                           cv_shard_rows(s.shard));
        st = cv_metrics_finish(&mt, s.comm, &err);
    }
    int rc = CV_EXIT_OK, rank = cv_cli_rank();
    if (st != CV_OK)
        rc = rank == 0 ? cv_cli_fail("eval", &err) : CV_EXIT_ERROR;
    else if (rank == 0 && json)
        cv_metrics_json(&mt, stdout), putchar('\n');
    else if (rank == 0)
        cv_metrics_print(&mt, stdout);
    cv_metrics_deinit(&mt);
    scored_free(&s);
    return rc;
}

static void predict_usage(FILE *f)
{
    fprintf(f, "usage: caviar predict MODEL.h5 DATA.h5 -o OUT.h5|OUT.csv\n\n"
               "Write the model's outputs (probabilities) and predicted class for every row.\n"
               "OUT.h5 holds /probabilities (N x outputs) and /predicted (N); OUT.csv has the\n"
               "columns row,predicted,p0,p1,...  The file is replaced atomically.\n");
}

int cv_cmd_predict(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (c == 'h')
            return predict_usage(stdout), CV_EXIT_OK;
        if (c != 'o')
            return predict_usage(stderr), CV_EXIT_USAGE;
        out = optarg;
    }
    if (argc - optind != 2 || !out)
        return cv_cli_rank() == 0 ? (predict_usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    struct cv_error err;
    cv_error_clear(&err);
    struct scored s = {0};
    float *all = NULL;
    cv_status st = score(&s, argv[optind], argv[optind + 1], &err);
    long long n = st == CV_OK ? cv_shard_info(s.shard)->n_rows : 0;
    int k = st == CV_OK ? cv_model_outputs(s.model) : 0, rank = cv_cli_rank();
    if (st == CV_OK && rank == 0 &&
        !(all = cv_calloc((size_t)(n ? n : 1) * (size_t)k, sizeof(float))))
        st = cv_fail(&err, CV_NOMEM, "out of memory for %lld predictions", n);
    if (s.comm)
        st = cv_comm_agree(s.comm, st, &err);
    if (st == CV_OK)
        st = cv_comm_gather_floats(s.comm, s.probs, (size_t)cv_shard_rows(s.shard) * (size_t)k, all,
                                   0, &err);
    if (st == CV_OK && rank == 0)
        st = cv_predictions_write(out, all, n, k, &err);
    if (s.comm)
        st = cv_comm_agree(s.comm, st, &err);
    int rc = CV_EXIT_OK;
    if (st != CV_OK)
        rc = rank == 0 ? cv_cli_fail("predict", &err) : CV_EXIT_ERROR;
    else if (rank == 0)
        printf("wrote %lld predictions (%d outputs) to %s\n", n, k, out);
    free(all);
    scored_free(&s);
    return rc;
}
