/*
 * cmd_gradcheck.c - `caviar gradcheck CONFIG [key=value ...] [--samples N]
 * [--eps E] [--per-tensor K]`: build the configured model, take the first N
 * rows of data.train (normalised with their own statistics), and compare
 * backprop with centred differences for every parameter tensor.  Runs on
 * rank 0 only; exit 1 if the relative error exceeds the threshold.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "caviar/comm.h"
#include "caviar/dataset.h"
#include "caviar/gradcheck.h"
#include "commands.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: caviar gradcheck CONFIG.yaml [key.path=value ...] [--samples N] [--eps E]\n"
        "                        [--per-tensor K]\n\n"
        "Compare backprop gradients with centred differences on the first N rows of\n"
        "data.train (default 8), checking up to K entries per tensor (default 40, 0 = all).\n"
        "Pass: relative error ||num - ana|| / (||num|| + ||ana||) < %g with eps %g (float32).\n",
        CV_GRADCHECK_THRESHOLD, CV_GRADCHECK_EPS);
}

struct rows {
    float *x;
    int32_t *y;
    float *yv;
};

static cv_status load_rows(const struct cv_config *cfg, int *n, struct rows *r,
                           struct cv_error *err)
{
    struct cv_dataset_info d;
    cv_status st = cv_dataset_probe(cfg->data.train, &d, err);
    if (st != CV_OK)
        return st;
    *n = d.n_rows < *n ? (int)d.n_rows : *n;
    r->x = cv_calloc((size_t)*n * (size_t)d.features, sizeof(float));
    r->y = cv_calloc((size_t)*n, sizeof(int32_t));
    r->yv = cv_calloc((size_t)*n * (size_t)d.target_dim, sizeof(float));
    if (!r->x || !r->y || !r->yv)
        return cv_fail(err, CV_NOMEM, "out of memory");
    st = cv_dataset_read_rows(cfg->data.train, 0, *n, r->x, d.classes ? r->y : NULL,
                              d.classes ? NULL : r->yv, err);
    if (st == CV_OK && d.classes == 0) {
        free(r->y);
        r->y = NULL;
    }
    for (int j = 0; st == CV_OK && j < d.features; j++) { /* standardise like training */
        double s = 0, s2 = 0;
        for (int i = 0; i < *n; i++)
            s += r->x[(size_t)i * d.features + j], s2 += pow(r->x[(size_t)i * d.features + j], 2);
        double mu = s / *n, sd = sqrt(fmax(s2 / *n - mu * mu, 0));
        for (int i = 0; i < *n; i++)
            r->x[(size_t)i * d.features + j] = (float)((r->x[(size_t)i * d.features + j] - mu) /
                                                       (sd > 1e-6 ? sd : 1));
    }
    return st;
}

static int report(const struct cv_gradcheck_result *r)
{
    for (int i = 0; i < r->n_tensors; i++)
        printf("  %-36s %6zu entries  relative error %.3e  %s\n", r->tensor[i].path,
               r->tensor[i].checked, r->tensor[i].rel_error,
               r->tensor[i].rel_error < CV_GRADCHECK_THRESHOLD ? "ok" : "FAIL");
    bool pass = r->rel_error < CV_GRADCHECK_THRESHOLD;
    printf("gradcheck: %zu entries, relative error %.3e (threshold %g): %s\n", r->checked,
           r->rel_error, CV_GRADCHECK_THRESHOLD, pass ? "PASS" : "FAIL");
    return pass ? CV_EXIT_OK : CV_EXIT_ERROR;
}

/* A frozen layer computes no parameter gradient in training, but its math
 * is checked all the same. */
static void unfreeze(struct cv_layer_spec *l, int n)
{
    for (int i = 0; i < n; i++) {
        l[i].frozen = false;
        unfreeze(l[i].children, l[i].n_children);
    }
}

static int run(struct cv_config *cfg, int samples, double eps, long per)
{
    struct cv_error err;
    cv_error_clear(&err);
    struct rows r = {0};
    cv_model *m = NULL;
    struct cv_gradcheck_result res;
    cv_status st = load_rows(cfg, &samples, &r, &err);
    unfreeze(cfg->model.layers, cfg->model.n_layers);
    if (st == CV_OK)
        st = cv_model_create(cfg, samples, &m, &err);
    if (st == CV_OK) {
        cv_model_init_params(m, cfg->train.seed);
        struct cv_batch b = {.n = samples, .x = r.x, .y_class = r.y, .y_vec = r.y ? NULL : r.yv};
        st = cv_gradcheck(m, &b, eps, (size_t)per, &res, &err);
    }
    int rc = st == CV_OK ? report(&res) : cv_cli_fail("gradcheck", &err);
    cv_model_free(m);
    free(r.x);
    free(r.y);
    free(r.yv);
    return rc;
}

int cv_cmd_gradcheck(int argc, char **argv)
{
    static const struct option opts[] = {{"samples", required_argument, NULL, 's'},
                                         {"eps", required_argument, NULL, 'e'},
                                         {"per-tensor", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    int c, samples = 8;
    double eps = CV_GRADCHECK_EPS;
    long per = 40;
    long long v = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return usage(stdout), CV_EXIT_OK;
        if (c != 's' && c != 'e' && c != 'k')
            return usage(stderr), CV_EXIT_USAGE;
        bool ok = c == 'e'   ? cv_cli_num_arg("gradcheck", "eps", optarg, 0, 1, &eps)
                  : c == 's' ? cv_cli_int_arg("gradcheck", "samples", optarg, 1, 1 << 16, &v)
                             : cv_cli_int_arg("gradcheck", "per-tensor", optarg, 0, INT_MAX, &v);
        if (!ok)
            return CV_EXIT_USAGE;
        if (c == 's')
            samples = (int)v;
        else if (c == 'k')
            per = (long)v;
    }
    if (optind >= argc) {
        if (cv_cli_rank() == 0)
            usage(stderr);
        return CV_EXIT_USAGE;
    }
    if (cv_cli_rank() != 0)
        return CV_EXIT_OK;
    struct cv_error err;
    cv_error_clear(&err);
    struct cv_config *cfg = NULL;
    if (cv_config_load(argv[optind], (const char *const *)argv + optind + 1, argc - optind - 1,
                       &cfg, &err) != CV_OK)
        return cv_cli_fail("gradcheck", &err);
    int rc = run(cfg, samples, eps, per);
    cv_config_free(cfg);
    return rc;
}
