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

#define GATHER_MAX ((size_t)1 << 30)

struct scored {
    cv_comm *comm;
    struct cv_scored sc;
};

static void scored_free(struct scored *s)
{
    cv_scored_close(&s->sc);
    cv_comm_free(s->comm);
}

/* Collective: open the model and this rank's rows, predict them. */
static cv_status score(struct scored *s, const char *model, const char *data, struct cv_error *err)
{
    cv_status st = cv_comm_create_world(&s->comm, err);
    if (st != CV_OK)
        return st;
    st = cv_scored_open(model, data, cv_comm_rank(s->comm), cv_comm_size(s->comm), &s->sc, err);
    return cv_comm_agree(s->comm, st, err);
}

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: caviar eval MODEL.h5 DATA.h5 [--json]\n\n"
               "Evaluate a model (or checkpoint) on a dataset split (file.h5 or file.h5#group)\n"
               "with the metrics of its task (docs/metrics.md): classification and binary:\n"
               "accuracy, macro and per-class precision/recall/F1 (with the class names),\n"
               "top-5 accuracy, ROC AUC (binary), confusion matrix; multi-label: per-label\n"
               "and micro/macro F1, Hamming loss, subset accuracy; regression: MAE, RMSE, R^2.\n"
               "Data whose classes or target columns do not fit the model is refused.\n"
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
        st = cv_comm_agree(s.comm, cv_scored_metrics(&s.sc, &mt, &err), &err);
        if (st == CV_OK)
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
    long long n = st == CV_OK ? cv_shard_info(s.sc.shard)->n_rows : 0;
    int k = st == CV_OK ? cv_model_outputs(s.sc.model) : 0, rank = cv_cli_rank();
    /* the gather takes at most 2^30 floats a rank and places them with int
     * offsets; checked on the total, which every rank knows, so that all
     * ranks refuse alike instead of one leaving the others in the gather */
    if (st == CV_OK && (size_t)n * (size_t)k > GATHER_MAX)
        st = cv_fail(&err, CV_INVAL,
                     "%s: %lld rows x %d outputs: more than %zu predictions to gather in one file",
                     argv[optind + 1], n, k, GATHER_MAX);
    if (st == CV_OK && rank == 0 &&
        !(all = cv_calloc((size_t)(n ? n : 1) * (size_t)k, sizeof(float))))
        st = cv_fail(&err, CV_NOMEM, "out of memory for %lld predictions", n);
    if (s.comm)
        st = cv_comm_agree(s.comm, st, &err);
    if (st == CV_OK)
        st = cv_comm_gather_floats(s.comm, s.sc.probs,
                                   (size_t)cv_shard_rows(s.sc.shard) * (size_t)k, all, 0, &err);
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
