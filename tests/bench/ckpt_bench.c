/*
 * ckpt_bench.c - seconds to write and read a checkpoint (model + Adam
 * moments + state) for the Fashion-MNIST MLP (784-256-128-10, 235k params)
 * and a ~50M-parameter MLP, median of 5.  Usage: ckpt_bench DIR
 * Compare with the raw disk write speed: dd if=/dev/zero of=DIR/x bs=1M
 * count=600 conv=fsync.
 */
#include <stdio.h>
#include <stdlib.h>

#include "caviar/checkpoint.h"
#include "fixtures.h"
#include "util.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench(const char *dir, const char *name, const int *units, int n)
{
    struct cv_config c;
    enum cv_activation acts[4] = {CV_ACT_RELU, CV_ACT_RELU, CV_ACT_RELU, CV_ACT_SOFTMAX};
    fixture_mlp(&c, 784, units, acts + (4 - n), n, CV_LOSS_SOFTMAX_CE);
    c.model.layers[n - 1].activation = CV_ACT_SOFTMAX;
    c.text = "bench: true\n";
    cv_model *m = NULL;
    cv_optim *o = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    if (cv_model_create(&c, 1, &m, &err) != CV_OK || cv_optim_create(&c, m, &o, &err) != CV_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    cv_model_init_params(m, 1);
    struct cv_train_state ts = {.world_size = 1};
    char path[512];
    snprintf(path, sizeof(path), "%s/bench-%s.h5", dir, name);
    double w[5], r[5];
    for (int i = 0; i < 5; i++) {
        double t0 = cv_now();
        if (cv_ckpt_save(path, m, o, &ts, &err) != CV_OK)
            fprintf(stderr, "%s\n", err.msg), exit(1);
        double t1 = cv_now();
        struct cv_train_state back;
        if (cv_ckpt_load(path, m, o, &back, &err) != CV_OK)
            fprintf(stderr, "%s\n", err.msg), exit(1);
        r[i] = cv_now() - t1;
        w[i] = t1 - t0;
        free(back.metrics);
    }
    qsort(w, 5, sizeof(double), cmp);
    qsort(r, 5, sizeof(double), cmp);
    double mb = 3.0 * (double)cv_model_n_params(m) * 4 / 1e6; /* params + 2 Adam moments */
    printf(
        "%-10s %10zu params  %8.1f MB  write %.3f s (%.0f MB/s, fsync incl.)  read+verify %.3f s\n",
        name, cv_model_n_params(m), mb, w[2], mb / w[2], r[2]);
    remove(path);
    cv_optim_free(o);
    cv_model_free(m);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    const int mlp[3] = {256, 128, 10};
    const int big[4] = {4096, 4096, 4096, 10};   /* 784*4096 + 2*4096^2 + 40960 = 36.8M */
    const int big50[4] = {5000, 5000, 1000, 10}; /* 3.9M + 25M + 5M ~ 34M */
    (void)big50;
    const int huge[4] = {6000, 6000, 1000, 10}; /* 4.7M + 36M + 6M + 10k = 46.7M */
    (void)big;
    bench(dir, "fmnist-mlp", mlp, 3);
    bench(dir, "mlp-47M", huge, 4);
    return 0;
}
