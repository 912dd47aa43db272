/*
 * test_config.c - YAML config parsing: values and defaults, overrides of
 * every form, errors that name file:line or the override, the round trip
 * through the emitted effective config, residual nesting, sweep spaces;
 * sizes from hostile configs: input products, integer ranges, int_uniform
 * bounds, and the shape checks when a model is built from them.
 */
#include <stdlib.h>
#include <unistd.h>

#include "caviar/config.h"
#include "caviar/model.h"
#include "caviar/sweep.h"
#include "test.h"

static const char *base =
    "data: {train: d.h5, dev: 'd.h5#dev'}\n"
    "model:\n"
    "  input: [784]\n"
    "  layers:\n"
    "    - {type: dense, units: 256, activation: relu}\n"
    "    - {type: dropout, keep: 0.8}\n"
    "    - {type: dense, units: 10, activation: softmax}\n"
    "train: {optimizer: momentum, lr: 3e-3, batch: 64, epochs: 4, l2: 1.0e-4,\n"
    "        decay: {kind: step, rate: 0.5, every: 2}, seed: 9}\n"
    "sweep:\n"
    "  strategy: asha\n"
    "  metric: dev.loss\n"
    "  space:\n"
    "    train.lr: log_uniform(1e-4, 1e-1)\n"
    "    train.beta1: one_minus_log_uniform(0.9, 0.999)\n"
    "    model.layers.0.units: choice(128, 256, 512)\n"
    "    train.batch: int_uniform(32, 256)\n"
    "    train.l2: uniform(0, 0.01)\n";

static struct cv_config *parse(const char *text, const char *const *ov, int n, struct cv_error *e)
{
    struct cv_config *c = NULL;
    cv_error_clear(e);
    cv_config_parse(text, "cfg.yaml", ov, n, &c, e);
    return c;
}

static void test_values_and_defaults(void)
{
    struct cv_error e;
    struct cv_config *c = parse(base, NULL, 0, &e);
    ASSERT_TRUE(c != NULL);
    if (!c)
        return;
    ASSERT_STR_CONTAINS(c->data.dev, "d.h5#dev");
    ASSERT_EQ(c->model.input[0], 784);
    ASSERT_EQ(c->model.input[1], 1);
    ASSERT_EQ(c->model.n_layers, 3);
    ASSERT_EQ(c->model.layers[0].activation, CV_ACT_RELU);
    ASSERT_NEAR(c->model.layers[1].keep, 0.8, 1e-7);
    ASSERT_EQ(c->train.optimizer, CV_OPT_MOMENTUM);
    ASSERT_NEAR(c->train.lr, 3e-3, 1e-15);
    ASSERT_EQ(c->train.decay, CV_DECAY_STEP);
    ASSERT_EQ(c->train.decay_every, 2);
    ASSERT_EQ(c->train.seed, 9);
    /* defaults */
    ASSERT_NEAR(c->train.beta2, 0.999, 1e-15);
    ASSERT_EQ(c->data.normalize, CV_NORM_STANDARD);
    ASSERT_EQ(c->checkpoint.keep, 3);
    ASSERT_EQ(c->model.loss, CV_LOSS_SOFTMAX_CE);
    ASSERT_EQ(c->comm.shard_optimizer, CV_AUTO);
    ASSERT_EQ(c->comm.compression, CV_COMPRESS_NONE);
    ASSERT_EQ(c->comm.shared_memory, CV_AUTO);
    ASSERT_EQ(c->sweep.max_epochs, 4); /* = train.epochs */
    ASSERT_EQ(c->sweep.seed, 9);       /* = train.seed */
    ASSERT_TRUE(c->sweep.minimize);    /* metric ends in loss */
    /* sweep space */
    ASSERT_EQ(c->sweep.n_space, 5);
    ASSERT_EQ(c->sweep.space[0].dist, CV_DIST_LOG_UNIFORM);
    ASSERT_NEAR(c->sweep.space[0].lo, 1e-4, 1e-18);
    ASSERT_EQ(c->sweep.space[1].dist, CV_DIST_ONE_MINUS_LOG_UNIFORM);
    ASSERT_EQ(c->sweep.space[2].n_choices, 3);
    ASSERT_STR_CONTAINS(c->sweep.space[2].choices[2], "512");
    ASSERT_EQ(c->sweep.space[3].dist, CV_DIST_INT_UNIFORM);
    ASSERT_EQ(c->sweep.space[4].dist, CV_DIST_UNIFORM);
    cv_config_free(c);
}

static void test_overrides_and_round_trip(void)
{
    const char *ov[] = {"train.lr=0.5",
                        "model.layers.0.units=512",
                        "run.dir=runs/x",
                        "model.layers.1={type: dropout, keep: 0.5}",
                        "data.dev=",
                        "comm.shard_optimizer=no",
                        "comm.shared_memory=off"};
    struct cv_error e;
    struct cv_config *c = parse(base, ov, 7, &e);
    ASSERT_TRUE(c != NULL);
    if (!c)
        return;
    ASSERT_NEAR(c->train.lr, 0.5, 0);
    ASSERT_EQ(c->model.layers[0].units, 512);
    ASSERT_STR_CONTAINS(c->run.dir, "runs/x");
    ASSERT_NEAR(c->model.layers[1].keep, 0.5, 0);
    ASSERT_EQ(c->data.dev[0], '\0');
    ASSERT_EQ(c->comm.shard_optimizer, CV_OFF);
    ASSERT_EQ(c->comm.shared_memory, CV_OFF);
    struct cv_config *back = parse(c->text, NULL, 0, &e); /* the stored config, parsed again */
    ASSERT_TRUE(back != NULL);
    if (back) {
        ASSERT_NEAR(back->train.lr, 0.5, 0);
        ASSERT_EQ(back->model.layers[0].units, 512);
        ASSERT_NEAR(back->model.layers[1].keep, 0.5, 0);
        ASSERT_EQ(back->train.decay_every, 2);
        ASSERT_EQ(back->sweep.n_space, 5);
        ASSERT_EQ(back->comm.shard_optimizer, CV_OFF);
        ASSERT_EQ(back->comm.shared_memory, CV_OFF);
        ASSERT_TRUE(!strcmp(back->text, c->text));
    }
    cv_config_free(back);
    cv_config_free(c);
}

static void expect_error(const char *text, const char *ov, const char *want)
{
    struct cv_error e;
    const char *ovs[1] = {ov};
    struct cv_config *c = parse(text, ovs, ov ? 1 : 0, &e);
    ASSERT_TRUE(c == NULL);
    ASSERT_EQ(e.code, CV_CONFIG);
    CV_TEST_REPORT(strstr(e.msg, want) != NULL, "message \"%s\" lacks \"%s\"", e.msg, want);
    cv_config_free(c);
}

static void test_errors(void)
{
    expect_error(base, "train.lrr=1", "override 'train.lrr=1': unknown key 'train.lrr'");
    expect_error(base, "train.lr=-1", "train.lr = -1: expected a number > 0");
    expect_error(base, "train.lr=fast", "train.lr = fast: expected a number > 0");
    expect_error(base, "model.layers.1.keep=0", "keep = 0: expected a number in (0, 1]");
    expect_error(base, "model.layers.0.type=dence", "type = dence: expected one of dense");
    expect_error(base, "model.layers.0.activation=relux", "activation = relux");
    expect_error(base, "comm.shard_optimizer=maybe",
                 "comm.shard_optimizer = maybe: expected auto, true or false");
    expect_error(base, "comm.overlap=true", "unknown key 'comm.overlap'");
    expect_error(base, "comm.compression=fp8",
                 "comm.compression = fp8: expected one of none, bf16");
    const char *shm = "data: {train: x}\nmodel: {input: [4], layers: [{type: dense, units: 2}]}\n"
                      "comm: {shared_memory: true, ";
    const char *clashes[][2] = {{"compression: bf16}\n", "comm.compression = bf16"},
                                {"shard_optimizer: off}\n", "comm.shard_optimizer = false"}};
    for (int i = 0; i < 2; i++) {
        char text[256], want[128];
        snprintf(text, sizeof(text), "%s%s", shm, clashes[i][0]);
        snprintf(want, sizeof(want), "cfg.yaml: comm.shared_memory = true cannot be used with %s",
                 clashes[i][1]);
        expect_error(text, NULL, want);
    }
    expect_error("data: {train: x}\nmodel: {input: [4], layers: [{type: dense, units: 2}]}\n"
                 "comm: {compression: bf16, shard_optimizer: true}\n",
                 NULL,
                 "cfg.yaml: comm.compression = bf16 needs comm.shard_optimizer = auto or false");
    expect_error(base, "comm.shared_batch=true", "unknown key 'comm.shared_batch'");
    expect_error(base, "comm.shared_memory=sometimes",
                 "comm.shared_memory = sometimes: expected auto, true or false");
    expect_error(base, "model.layers.9.units=1", "'9' is not an index of a list of 3");
    expect_error(base, "model.layers.1.units=4", "unknown key 'model.layers.1.units'");
    expect_error(base, "novalue", "expected key.path=value");
    expect_error(base, "train.batch=0", "train.batch = 0: expected an integer >= 1");
    expect_error(base, "train.beta1=1", "train.beta1 = 1: expected a number in [0, 1)");
    expect_error(base, "sweep.space={train.lr: 'log_uniform(0, 1)'}", "positive bounds");
    expect_error(base, "sweep.space={train.lr: 'uniform(2, 1)'}", "bounds a < b");
    expect_error(base, "sweep.space={train.lr: 'gauss(0, 1)'}", "expected a distribution");
    expect_error(base, "sweep.space={train.lr: log_uniform(1e-4, 1)}", "quote it");
    expect_error(base, "model.layers.0.type=conv2d", "unknown key 'model.layers.0.units'");
    expect_error("data: {train: x}\nmodel: {input: [1, 4, 4], layers: [{type: conv2d}]}\n", NULL,
                 "model.layers.0 (conv2d) needs filters and size");
    expect_error("data: {train: x}\nmodel:\n  input: [1, 4, 4]\n  layers:\n"
                 "    - {type: conv2d, filters: 2, size: 3, stride: 0}\n",
                 NULL, "cfg.yaml:5: model.layers.0.stride = 0: expected an integer >= 1");
    expect_error("data: {train: x}\nmodel: {input: [4], layers: []}\n", NULL,
                 "model.layers = [...]: expected a list of 1 to 64 layers");
    expect_error("data: {train: x}\nmodel:\n  input: [4]\n  layers:\n    - {type: dense}\n", NULL,
                 "cfg.yaml:5: model.layers.0 (dense) needs units");
    expect_error("data:\n  train: x\n  bogus: 1\n", NULL, "cfg.yaml:3: unknown key 'data.bogus'");
    expect_error("trian: {}\n", NULL, "cfg.yaml:1: unknown key 'trian'");
    expect_error("data: {train: x\nmodel: 1\n", NULL, "cfg.yaml:2:6: YAML syntax error");
    expect_error("model: {input: [4], layers: [{type: dense, units: 2}]}\n", NULL,
                 "missing required key data.train");
    expect_error("data: {train: x}\nmodel: {input: [0], layers: [{type: dense, units: 2}]}\n", NULL,
                 "model.input");
}

static void test_residual_nesting(void)
{
    struct cv_error e;
    struct cv_config *c = parse(
        "data: {train: x}\nmodel:\n  input: [1, 28, 28]\n  layers:\n"
        "    - {type: conv2d, filters: 8, size: 3, pad: same, activation: relu}\n"
        "    - type: residual\n      layers:\n"
        "        - {type: conv2d, filters: 16, size: 3, stride: 2, pad: 1}\n"
        "        - {type: batchnorm}\n"
        "    - {type: maxpool, size: 2}\n",
        NULL, 0, &e);
    ASSERT_TRUE(c != NULL);
    if (!c) {
        fprintf(stderr, "%s\n", e.msg);
        return;
    }
    ASSERT_EQ(c->model.input_rank, 3);
    ASSERT_EQ(c->model.input[2], 28);
    ASSERT_EQ(c->model.layers[0].pad, CV_PAD_SAME);
    ASSERT_EQ(c->model.layers[1].n_children, 2);
    ASSERT_EQ(c->model.layers[1].activation, CV_ACT_RELU); /* residual default */
    ASSERT_EQ(c->model.layers[1].children[0].stride, 2);
    ASSERT_EQ(c->model.layers[1].children[0].pad, 1);
    ASSERT_EQ(c->model.layers[2].stride, 2); /* pool stride defaults to its size */
    cv_config_free(c);
}

static void test_file_errors(void)
{
    struct cv_config *c = NULL;
    struct cv_error e;
    cv_error_clear(&e);
    ASSERT_EQ(cv_config_load("/nonexistent/cfg.yaml", NULL, 0, &c, &e), CV_IO);
    ASSERT_STR_CONTAINS(e.msg, "/nonexistent/cfg.yaml");
    char path[] = "/tmp/caviar-cfg-XXXXXX";
    int fd = mkstemp(path);
    if (write(fd, base, strlen(base)) < 0)
        ASSERT_TRUE(0);
    close(fd);
    cv_error_clear(&e);
    const char *ov[] = {"train.epochs=7"};
    ASSERT_EQ(cv_config_load(path, ov, 1, &c, &e), CV_OK);
    if (c)
        ASSERT_EQ(c->train.epochs, 7);
    cv_config_free(c);
    unlink(path);
    cv_config_free(NULL);
}

/* Sizes are checked in 64 bits: each input dimension may be large, but not
 * their product; integers never wrap; int_uniform counts exactly. */
static void test_size_limits(void)
{
    const char *m = "data: {train: x}\nmodel: {input: [1], layers: [{type: dense, units: 2}]}\n";
    static const char *const cases[][3] = {
        /* 2048 x 2048 x 1024 = 2^32 used to wrap to 0 features */
        {"m", "model.input=[2048, 2048, 1024]",
         "model.input = [2048, 2048, 1024]: expected C x H x W of at most 2147483647"},
        {"m", "model.input=[16777216, 16777216, 16777216]", "C x H x W of at most"},
        {"m", "model.input=[16777217]", "model.input = [...]: expected a list of 1"},
        {"m", "model.layers.0.units=2147483648", "an integer that fits in 32 bits"},
        {"m", "model.layers.0.units=99999999999999999999", "units = 99999999999999999999"},
        {"m", "train.epochs=-2147483649", "train.epochs = -2147483649: expected an integer"},
        {"m", "train.seed=-1", "train.seed = -1: expected a non-negative integer"},
        {"b", "sweep.space={train.batch: 'int_uniform(-1e30, 1e30)'}",
         "int_uniform bounds within +-2^53"},
        {"b", "sweep.space={train.batch: 'int_uniform(1, 9007199254740994)'}",
         "int_uniform bounds within +-2^53"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i][0][0] == 'm' ? m : base, cases[i][1], cases[i][2]);
    struct cv_error e;
    const char *ok[1] = {
        "sweep.space={train.batch: 'int_uniform(-9007199254740992, 9007199254740992)'}"};
    struct cv_config *c = parse(base, ok, 1, &e);
    ASSERT_TRUE(c != NULL);
    cv_config_free(c);
}

/* A model whose config is valid key by key but whose shapes are too large
 * is refused by cv_model_create with a message naming the layer, before
 * anything is allocated or any int product wraps. */
static void expect_model_error(const char *layers, const char *input, int batch, const char *want)
{
    struct cv_error e;
    char text[512];
    snprintf(text, sizeof(text), "data: {train: x}\nmodel: {input: %s, layers: %s}\n", input,
             layers);
    struct cv_config *c = parse(text, NULL, 0, &e);
    cv_model *mdl = NULL;
    ASSERT_TRUE(c != NULL);
    if (!c)
        return;
    cv_error_clear(&e);
    ASSERT_EQ(cv_model_create(c, batch, &mdl, &e), CV_SHAPE);
    CV_TEST_REPORT(strstr(e.msg, want) != NULL, "message \"%s\" lacks \"%s\"", e.msg, want);
    ASSERT_TRUE(mdl == NULL);
    cv_model_free(mdl);
    cv_config_free(c);
}

static void test_model_sizes(void)
{
    /* 2^30 features per sample: fine alone, 2^35 values at batch 32 */
    expect_model_error("[{type: dense, units: 2}]", "[1, 32768, 32768]", 32,
                       "model.input: (1, 32768, 32768) per sample x batch 32 is more than");
    expect_model_error("[{type: dense, units: 2147483647}]", "[4]", 2,
                       "layer 0 (dense) output: (2147483647, 1, 1) per sample x batch 2");
    expect_model_error("[{type: conv2d, filters: 100000, size: 3, pad: same}]", "[1, 64, 64]", 8,
                       "layer 0 (conv2d) output: (100000, 64, 64) per sample x batch 8");
    /* stride + n used to overflow int in same padding */
    expect_model_error("[{type: conv2d, filters: 2, size: 3, stride: 2147483647, pad: same},"
                       " {type: dense, units: 2147483647}]",
                       "[1, 8, 8]", 2, "layer 1 (dense) output: (2147483647, 1, 1)");
    /* a dense layer inside a residual block is checked too */
    expect_model_error("[{type: residual, layers: [{type: dense, units: 1000000000}, "
                       "{type: dense, units: 4}]}]",
                       "[4]", 4, "layer 0 (dense) output: (1000000000, 1, 1) per sample x batch 4");
}

/* Refining a space from a results file reads its values back: a value the
 * range cannot hold (text, or log of a negative) is an error naming the
 * trial, key and value, not strtod's silent 0. */
static void test_refine_values(void)
{
    static const char *const bad[] = {"fast", "-0.5", "1e-3x", ""};
    struct cv_error e;
    struct cv_config *c = parse(base, NULL, 0, &e);
    struct cv_result *rows = calloc(2, sizeof(*rows));
    ASSERT_TRUE(c != NULL && rows != NULL);
    if (!c || !rows)
        return;
    for (int i = 0; i < 2; i++) {
        static const char *const keys[] = {"train.lr", "train.beta1", "model.layers.0.units",
                                           "train.batch", "train.l2"};
        static const char *const vals[] = {"0.01", "0.99", "256", "64", "0.001"};
        rows[i].trial = i;
        rows[i].status = CV_JOB_DONE;
        rows[i].n_params = 5;
        for (int k = 0; k < 5; k++) {
            snprintf(rows[i].params[k].key, sizeof(rows[i].params[k].key), "%s", keys[k]);
            snprintf(rows[i].params[k].value, sizeof(rows[i].params[k].value), "%s", vals[k]);
        }
    }
    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        struct cv_config *fine = NULL;
        char want[96];
        snprintf(rows[1].params[0].value, sizeof(rows[1].params[0].value), "%s", bad[b]);
        snprintf(want, sizeof(want), "trial 1 of the results has train.lr = '%s'", bad[b]);
        cv_error_clear(&e);
        ASSERT_EQ(cv_sweep_refine(c, rows, 2, 2, &fine, &e), CV_CONFIG);
        CV_TEST_REPORT(strstr(e.msg, want) != NULL, "message \"%s\" lacks \"%s\"", e.msg, want);
        cv_config_free(fine);
    }
    free(rows);
    cv_config_free(c);
    /* a results line whose trial is past int is refused, not converted */
    char path[] = "/tmp/caviar-results-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    ASSERT_TRUE(f != NULL);
    if (!f)
        return;
    fprintf(f, "{\"status\":\"done\",\"trial\":1e300,\"rung\":0,\"epochs\":1}\n"
               "{\"status\":\"done\",\"trial\":0,\"rung\":0,\"epochs\":1}\n");
    fclose(f);
    int n = 0;
    rows = NULL;
    cv_error_clear(&e);
    ASSERT_EQ(cv_results_read(path, &rows, &n, &e), CV_CORRUPT);
    ASSERT_STR_CONTAINS(e.msg, "\"trial\", \"rung\" and \"epochs\" in [0, 2147483647]");
    free(rows);
    unlink(path);
}

int main(void)
{
    test_values_and_defaults();
    test_overrides_and_round_trip();
    test_errors();
    test_residual_nesting();
    test_file_errors();
    test_size_limits();
    test_model_sizes();
    test_refine_values();
    TEST_MAIN_END();
}
