/*
 * test_alloc_faults.c - out-of-memory at every allocation: each operation
 * (parse a config; build an MLP, a CNN with batch norm, a residual network;
 * create each kind of optimizer; open a small HDF5 dataset; load a model
 * file; write a checkpoint) is run with its k-th allocation failing, for k = 0, 1, 2, ... until
 * it succeeds.  Every failure must be CV_NOMEM with a message, and nothing
 * may leak or crash (the unit label runs under ASan with leak detection).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/checkpoint.h"
#include "caviar/config.h"
#include "caviar/dataset.h"
#include "caviar/model.h"
#include "caviar/optim.h"
#include "caviar/shard.h"
#include "test.h"
#include "util.h"

#define MAX_ALLOCS 100000 /* far more than any operation here makes */

static const char mlp_yaml[] = "data: {train: unused.h5}\n"
                               "model:\n"
                               "  input: [12]\n"
                               "  layers:\n"
                               "    - {type: dense, units: 8, activation: relu}\n"
                               "    - {type: dropout, keep: 0.9}\n"
                               "    - {type: dense, units: 3, activation: softmax}\n"
                               "train: {optimizer: adam, lr: 1.0e-3, batch: 4, epochs: 1}\n";

static const char cnn_yaml[] = "data: {train: unused.h5}\n"
                               "model:\n"
                               "  input: [1, 6, 6]\n"
                               "  layers:\n"
                               "    - {type: conv2d, filters: 4, size: 3, pad: same}\n"
                               "    - {type: batchnorm, activation: relu}\n"
                               "    - {type: maxpool, size: 2}\n"
                               "    - {type: dense, units: 3, activation: softmax}\n"
                               "train: {optimizer: momentum, lr: 0.01, batch: 4, epochs: 1}\n";

static const char residual_yaml[] = "data: {train: unused.h5}\n"
                                    "model:\n"
                                    "  input: [2, 4, 4]\n"
                                    "  layers:\n"
                                    "    - {type: conv2d, filters: 4, size: 3, pad: same}\n"
                                    "    - type: residual\n"
                                    "      layers:\n"
                                    "        - {type: conv2d, filters: 4, size: 3, pad: same}\n"
                                    "        - {type: batchnorm, activation: relu}\n"
                                    "        - {type: conv2d, filters: 4, size: 3, pad: same}\n"
                                    "        - {type: batchnorm}\n"
                                    "    - {type: global_avgpool}\n"
                                    "    - {type: dense, units: 3, activation: softmax}\n"
                                    "train: {optimizer: rmsprop, lr: 0.01, batch: 4, epochs: 1}\n";

/* One operation under test: allocates, and frees all it made before
 * returning (on success too). */
struct op {
    const char *name;
    cv_status (*run)(const void *arg, struct cv_error *err);
    const void *arg;
};

/* Fail allocation k = 0, 1, ... of op until it succeeds; returns the
 * number of allocations it needed (-1 if it never succeeded). */
static long fail_each(const struct op *op)
{
    for (long k = 0; k < MAX_ALLOCS; k++) {
        struct cv_error err;
        cv_error_clear(&err);
        cv_alloc_fail_after(k);
        cv_status st = op->run(op->arg, &err);
        cv_alloc_fail_after(-1);
        if (st == CV_OK)
            return k;
        CV_TEST_REPORT(st == CV_NOMEM, "%s, allocation %ld failing: %s (%s), expected nomem",
                       op->name, k, cv_status_str(st), err.msg);
        CV_TEST_REPORT(err.msg[0] != '\0', "%s, allocation %ld failing: no message", op->name, k);
        if (st != CV_NOMEM)
            return -1; /* the rest would only repeat the report */
    }
    return -1;
}

static void check_op(const struct op *op)
{
    long n = fail_each(op);
    /* k = 0 failing must have been noticed: the operation allocates */
    CV_TEST_REPORT(n > 0, "%s: %ld allocations before success", op->name, n);
    printf("%-28s %4ld allocations, each failure a clean CV_NOMEM\n", op->name, n);
}

/* ---- the operations ---- */

static cv_status parse(const void *yaml, struct cv_error *err)
{
    static const char *const over[] = {"train.lr=0.5", "train.batch=8"};
    struct cv_config *cfg = NULL;
    cv_status st = cv_config_parse(yaml, "test.yaml", over, 2, &cfg, err);
    cv_config_free(cfg);
    return st;
}

static struct cv_config *must_parse(const char *yaml)
{
    struct cv_config *cfg = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    if (cv_config_parse(yaml, "test.yaml", NULL, 0, &cfg, &err) != CV_OK) {
        fprintf(stderr, "fixture config: %s\n", err.msg);
        exit(1);
    }
    return cfg;
}

static cv_status build_model(const void *cfg, struct cv_error *err)
{
    cv_model *m = NULL;
    cv_status st = cv_model_create(cfg, 4, &m, err);
    if (st == CV_OK && cv_model_n_params(m) == 0)
        st = cv_fail(err, CV_INVAL, "model built without parameters");
    cv_model_free(m);
    return st;
}

/* The model is built outside the fault window: only the optimizer's own
 * allocations are failed. */
struct optim_case {
    struct cv_config *cfg;
    cv_model *model;
};

static cv_status build_optim(const void *arg, struct cv_error *err)
{
    const struct optim_case *c = arg;
    cv_optim *o = NULL;
    cv_status st = cv_optim_create(c->cfg, c->model, &o, err);
    cv_optim_free(o);
    return st;
}

static cv_status open_shard(const void *spec, struct cv_error *err)
{
    cv_shard *s = NULL;
    cv_status st = cv_shard_open(spec, 0, 1, 4, &s, err);
    if (st == CV_OK && cv_shard_rows(s) != 10)
        st = cv_fail(err, CV_INVAL, "expected 10 rows, got %lld", cv_shard_rows(s));
    cv_shard_free(s);
    return st;
}

static cv_status open_model_file(const void *path, struct cv_error *err)
{
    struct cv_config *cfg = NULL;
    cv_model *m = NULL;
    cv_status st = cv_ckpt_open_model(path, 4, &cfg, &m, err);
    cv_model_free(m);
    cv_config_free(cfg);
    return st;
}

/* Writing a checkpoint: the file is built in memory, so a failed
 * allocation inside HDF5 (its core driver) must end as cleanly. */
struct save_case {
    const char *path;
    cv_model *model;
    cv_optim *optim;
};

static cv_status save_ckpt(const void *arg, struct cv_error *err)
{
    const struct save_case *c = arg;
    struct cv_train_state ts = {.epoch = 1, .step = 7, .world_size = 1, .metrics = "{}"};
    cv_status st = cv_ckpt_save(c->path, c->model, c->optim, &ts, err);
    if (st == CV_HDF5 && strstr(err->msg, c->path))
        st = CV_NOMEM; /* HDF5 reports its own failed allocations as its errors */
    if (st != CV_OK && access(c->path, F_OK) == 0)
        st = cv_fail(err, CV_INVAL, "%s exists after a failed save", c->path);
    if (st == CV_OK)
        st = cv_ckpt_verify(c->path, err);
    unlink(c->path);
    return st;
}

/* ---- fixtures on disk ---- */

static char dir[] = "/tmp/caviar-alloc-XXXXXX";

static void write_dataset(const char *path)
{
    float x[10 * 12];
    int32_t y[10];
    for (int i = 0; i < 10 * 12; i++)
        x[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < 10; i++)
        y[i] = i % 3;
    struct cv_split_out s = {.group = "/",
                             .n_rows = 10,
                             .features = 12,
                             .x_f32 = x,
                             .y_class = y,
                             .target_dim = 1,
                             .classes = 3};
    struct cv_error err;
    cv_error_clear(&err);
    if (cv_dataset_write(path, &s, 1, &err) != CV_OK) {
        fprintf(stderr, "fixture dataset: %s\n", err.msg);
        exit(1);
    }
}

static void write_model(const char *path, struct cv_config *cfg)
{
    cv_model *m = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_model_create(cfg, 4, &m, &err);
    if (st == CV_OK) {
        cv_model_init_params(m, 1);
        st = cv_ckpt_save(path, m, NULL, NULL, &err);
    }
    cv_model_free(m);
    if (st != CV_OK) {
        fprintf(stderr, "fixture model: %s\n", err.msg);
        exit(1);
    }
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    char data[64], model[64];
    snprintf(data, sizeof(data), "%s/d.h5", dir);
    snprintf(model, sizeof(model), "%s/m.h5", dir);
    write_dataset(data);

    const char *yaml[3] = {mlp_yaml, cnn_yaml, residual_yaml};
    const char *names[3] = {"mlp", "cnn with batchnorm", "residual"};
    struct cv_config *cfg[3];
    char title[64];
    for (int i = 0; i < 3; i++) {
        snprintf(title, sizeof(title), "parse config (%s)", names[i]);
        check_op(&(struct op){title, parse, yaml[i]});
        cfg[i] = must_parse(yaml[i]);
        snprintf(title, sizeof(title), "build %s", names[i]);
        check_op(&(struct op){title, build_model, cfg[i]});
    }

    struct optim_case oc = {cfg[1], NULL};
    struct cv_error err;
    cv_error_clear(&err);
    if (cv_model_create(oc.cfg, 4, &oc.model, &err) != CV_OK)
        return fprintf(stderr, "model: %s\n", err.msg), 1;
    for (int kind = CV_OPT_SGD; kind <= CV_OPT_ADAM; kind++) {
        oc.cfg->train.optimizer = (enum cv_optimizer)kind;
        snprintf(title, sizeof(title), "optimizer %s", cv_optimizer_name(kind));
        check_op(&(struct op){title, build_optim, &oc});
    }
    char ckpt[64];
    snprintf(ckpt, sizeof(ckpt), "%s/c.h5", dir);
    struct save_case sc = {ckpt, oc.model, NULL};
    oc.cfg->train.optimizer = CV_OPT_ADAM;
    if (cv_optim_create(oc.cfg, oc.model, &sc.optim, &err) != CV_OK)
        return fprintf(stderr, "optim: %s\n", err.msg), 1;
    check_op(&(struct op){"save checkpoint", save_ckpt, &sc});
    cv_optim_free(sc.optim);
    cv_model_free(oc.model);

    check_op(&(struct op){"open dataset shard", open_shard, data});
    write_model(model, cfg[2]);
    check_op(&(struct op){"open model file", open_model_file, model});

    for (int i = 0; i < 3; i++)
        cv_config_free(cfg[i]);
    unlink(data);
    unlink(model);
    rmdir(dir);
    TEST_MAIN_END();
}
