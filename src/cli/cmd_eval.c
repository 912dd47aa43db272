/*
 * cmd_eval.c - `caviar eval MODEL.h5 DATA.h5 [--json]` and
 * `caviar predict MODEL.h5 DATA -o preds.h5|preds.csv` (DATA labelled or
 * not: HDF5, CSV or a folder of images).  Under mpirun the ranks split the
 * rows; metrics are summed over ranks, predictions gathered on rank 0,
 * which writes the output file atomically.
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

#define PREDICT_BATCH 256

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
    fprintf(f, "usage: caviar predict MODEL.h5 DATA -o OUT.h5|OUT.csv [data options]\n\n"
               "Write the model's outputs (probabilities), the predicted class (and its name\n"
               "when the model or its training data stored class names) and the true label\n"
               "when DATA has one, for every row (every valid step of a per-step model).\n"
               "The file is replaced atomically.\n");
    fputs(cv_cli_pred_help, f);
}

struct predict_job {
    cv_comm *comm;
    struct cv_config *cfg;
    cv_model *model;
    char **names; /* the model's class names, or NULL */
    struct cv_pred_input in;
    float *xbuf, *probs;
};

/* Local: the model, its names, this rank's rows of data and their predictions. */
static cv_status predict_open(struct predict_job *j, const char *model, const char *data,
                              struct cv_pred_opts *o, struct cv_error *err)
{
    cv_status st = cv_ckpt_open_model(model, PREDICT_BATCH, &j->cfg, &j->model, err);
    int k = st == CV_OK ? cv_model_outputs(j->model) : 0;
    int classes = st == CV_OK ? cv_model_classes(j->model) : 0;
    if (st == CV_OK)
        st = cv_pred_model_names(j->model, &j->names, err);
    if (st != CV_OK)
        return st;
    cv_pred_image_defaults(j->cfg, &o->image);
    st = cv_pred_input_open(data, o, (const char *const *)j->names, j->names ? classes : 0,
                            cv_comm_rank(j->comm), cv_comm_size(j->comm), &j->in, err);
    int f = cv_model_inputs(j->model);
    if (st == CV_OK)
        st = cv_pred_input_check(&j->in, f, k, j->cfg->model.loss, err);
    if (st != CV_OK)
        return st;
    j->xbuf = cv_calloc((size_t)PREDICT_BATCH * (size_t)f, sizeof(float));
    j->probs = cv_calloc((size_t)(j->in.n ? j->in.n : 1) * (size_t)k, sizeof(float));
    if (!j->xbuf || !j->probs)
        return cv_fail(err, CV_NOMEM, "out of memory for %lld predictions", j->in.n);
    cv_predict_rows(j->model, j->in.x, j->in.lengths, j->in.n, j->xbuf, j->probs);
    return CV_OK;
}

static void predict_free(struct predict_job *j)
{
    cv_pred_input_close(&j->in);
    free(j->xbuf);
    free(j->probs);
    free(j->names);
    cv_model_free(j->model);
    cv_config_free(j->cfg);
    cv_comm_free(j->comm);
}

int cv_cmd_predict(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         CV_PRED_LONGOPTS,
                                         {0}};
    struct cv_pred_opts po = {.image = {.on_skip = cv_cli_print_skipped, .on_skip_arg = "predict"}};
    const char *out = NULL;
    int c, r;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if ((r = cv_cli_pred_arg("predict", c, optarg, &po)) != 0) {
            if (r < 0)
                return CV_EXIT_USAGE;
        } else if (c == 'h') {
            return predict_usage(stdout), CV_EXIT_OK;
        } else if (c == 'o') {
            out = optarg;
        } else {
            return predict_usage(stderr), CV_EXIT_USAGE;
        }
    }
    if (argc - optind != 2 || !out)
        return cv_cli_rank() == 0 ? (predict_usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    struct cv_error err;
    cv_error_clear(&err);
    struct predict_job j = {0};
    cv_status st = cv_comm_create_world(&j.comm, &err);
    if (st != CV_OK)
        return cv_cli_fail("predict", &err);
    st = cv_comm_agree(j.comm, predict_open(&j, argv[optind], argv[optind + 1], &po, &err), &err);
    int k = st == CV_OK ? cv_model_outputs(j.model) : 0;
    if (st == CV_OK)
        st = cv_predictions_gather_write(j.comm, out, &j.in, j.probs, k,
                                         cv_model_output_steps(j.model),
                                         (const char *const *)j.names, &err);
    int rc = CV_EXIT_OK, rank = cv_cli_rank();
    if (st != CV_OK)
        rc = rank == 0 ? cv_cli_fail("predict", &err) : CV_EXIT_ERROR;
    else if (rank == 0)
        printf("wrote %lld predictions (%d outputs%s) to %s\n", j.in.total, k,
               j.in.label ? ", with true labels" : "", out);
    predict_free(&j);
    return rc;
}
