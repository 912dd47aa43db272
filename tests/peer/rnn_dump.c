/*
 * rnn_dump.c - caviar's side of the recurrent-layer peer check
 * (rnn_torch.py): `rnn_dump rnn|gru|lstm uni|bi last|sequence` builds
 * [recurrent or bidirectional(recurrent)] -> dense softmax on a ragged
 * batch, runs one training step and prints JSON: the parameters, inputs,
 * lengths, targets, the mean loss and its gradient arena.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/model.h"
#include "util.h"

enum { N = 3, T = 5, F = 3, H = 4, C = 3 };

static void print_floats(const char *name, const float *v, size_t n, const char *end)
{
    printf("\"%s\": [", name);
    for (size_t i = 0; i < n; i++)
        printf("%s%.9g", i ? ", " : "", v[i]);
    printf("]%s\n", end);
}

static void print_ints(const char *name, const int32_t *v, size_t n)
{
    printf("\"%s\": [", name);
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? ", " : "", v[i]);
    printf("],\n");
}

static void config(struct cv_config *c, enum cv_layer_type type, bool bidir, bool seq,
                   struct cv_layer_spec *child)
{
    memset(c, 0, sizeof(*c));
    c->model.input[0] = F;
    c->model.input[1] = c->model.input[2] = 1;
    c->model.input_steps = T;
    c->model.input_rank = 2;
    c->model.n_layers = 2;
    c->model.loss = CV_LOSS_SOFTMAX_CE;
    struct cv_layer_spec *r = &c->model.layers[0], *d = &c->model.layers[1];
    *child = (struct cv_layer_spec){
        .type = type, .units = H, .return_sequences = seq, .pad_id = -1, .keep = 1};
    *r = *child;
    if (bidir)
        *r = (struct cv_layer_spec){.type = CV_LAYER_BIDIRECTIONAL,
                                    .children = child,
                                    .n_children = 1,
                                    .pad_id = -1,
                                    .keep = 1};
    *d = (struct cv_layer_spec){
        .type = CV_LAYER_DENSE, .units = C, .activation = CV_ACT_SOFTMAX, .pad_id = -1, .keep = 1};
    c->train.seed = 3;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: rnn_dump rnn|gru|lstm uni|bi last|sequence\n"), 2;
    enum cv_layer_type type = !strcmp(argv[1], "rnn")   ? CV_LAYER_RNN
                              : !strcmp(argv[1], "gru") ? CV_LAYER_GRU
                                                        : CV_LAYER_LSTM;
    bool bidir = !strcmp(argv[2], "bi"), seq = !strcmp(argv[3], "sequence");
    struct cv_config c;
    struct cv_layer_spec child;
    config(&c, type, bidir, seq, &child);
    cv_model *m = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    if (cv_model_create(&c, N, &m, &err) != CV_OK)
        return fprintf(stderr, "%s\n", err.msg), 1;
    cv_model_init_params(m, 5);
    float x[N * T * F];
    int32_t len[N] = {5, 2, 4}, y[N * T];
    struct cv_rng r;
    cv_rng_seed(&r, 9, 0, 0, 0);
    for (int i = 0; i < N * T * F; i++)
        x[i] = (float)cv_rng_normal(&r);
    for (int i = 0; i < N * T; i++) /* per step: -1 beyond a row's length, as read */
        y[i] = seq ? (i % T < len[i / T] ? (int32_t)cv_rng_below(&r, C) : -1) : (i < N ? i % C : 0);
    printf("{\n\"kind\": \"%s\", \"bidirectional\": %s, \"sequence\": %s,\n", argv[1],
           bidir ? "true" : "false", seq ? "true" : "false");
    printf("\"n\": %d, \"t\": %d, \"f\": %d, \"h\": %d, \"c\": %d,\n", N, T, F, H, C);
    print_floats("params", cv_model_params(m), cv_model_n_params(m), ",");
    print_floats("x", x, N * T * F, ",");
    print_ints("lengths", len, N);
    print_ints("y", y, seq ? N * T : N);
    struct cv_batch b = {.n = N, .x = x, .y_class = y, .lengths = len};
    struct cv_batch_stats st = {0};
    cv_model_train_batch(m, &b, 0, 1.0f / N, &st);
    printf("\"loss\": %.9g,\n", st.loss_sum / N);
    print_floats("grads", cv_model_grads(m), cv_model_n_params(m), "");
    printf("}\n");
    cv_model_free(m);
    return 0;
}
