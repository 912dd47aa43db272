/*
 * cmd_export.c - `caviar export MODEL.h5 -o model.onnx`: a trained model as
 * an ONNX file (docs/export.md).  Rank 0 does the work; under mpirun the
 * other ranks wait for its outcome, so every rank exits alike.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include "caviar/checkpoint.h"
#include "caviar/comm.h"
#include "caviar/export.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: caviar export MODEL.h5 -o OUT.onnx\n\n"
            "Write a model (or checkpoint) as an ONNX model (opset %d): input \"input\"\n"
            "(N x C x H x W, or N x F for a flat model.input) of raw samples, the model's\n"
            "normalisation included; output \"probabilities\" (N x outputs).  A layer with\n"
            "no ONNX form is an error naming it, and nothing is written (docs/export.md).\n",
            CV_ONNX_OPSET);
}

/* -o naming the model file itself (or a link to it) would replace the
 * model by its export. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static cv_status export_model(const char *model, const char *out, struct cv_error *err)
{
    struct cv_config *cfg = NULL;
    cv_model *m = NULL;
    if (same_file(model, out))
        return cv_fail(err, CV_USAGE, "-o %s is the model file %s itself: nothing written", out,
                       model);
    cv_status st = cv_ckpt_open_model(model, 1, &cfg, &m, err);
    if (st == CV_OK)
        st = cv_export_onnx(m, out, err);
    cv_model_free(m);
    cv_config_free(cfg);
    return st;
}

int cv_cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *out = NULL;
    int c, rank = cv_cli_rank();
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (c == 'h')
            return rank == 0 ? (usage(stdout), CV_EXIT_OK) : CV_EXIT_OK;
        if (c != 'o')
            return rank == 0 ? (usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
        out = optarg;
    }
    if (argc - optind != 1 || !out)
        return rank == 0 ? (usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    struct cv_error err;
    cv_error_clear(&err);
    cv_comm *comm = NULL;
    cv_status st = cv_comm_create_world(&comm, &err);
    if (st != CV_OK)
        return cv_cli_fail("export", &err);
    if (rank == 0)
        st = export_model(argv[optind], out, &err);
    st = cv_comm_agree(comm, st, &err);
    int rc = cv_cli_finish(comm, "export", st, &err);
    if (rc == CV_EXIT_OK && rank == 0)
        printf("wrote %s (ONNX opset %d)\n", out, CV_ONNX_OPSET);
    cv_comm_free(comm);
    return rc;
}
