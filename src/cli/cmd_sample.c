/*
 * cmd_sample.c - `caviar sample MODEL.h5 [--prime TEXT] [--length N]
 * [--temperature T] [--seed S] [--count K]`: text from a character-level
 * language model.  Runs on rank 0 (the others wait for its result under
 * mpirun, so every rank exits alike).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "caviar/checkpoint.h"
#include "caviar/sample.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: caviar sample MODEL.h5 [--prime TEXT] [--length N] [--temperature T]\n"
               "                     [--seed S] [--count K]\n\n"
               "Print text from a character-level language model trained on a dataset of\n"
               "`caviar import text` (its vocabulary travels with the model): the prime, then\n"
               "characters drawn one at a time from the model's softmax at temperature T\n"
               "(default 1; below 1 sharper, above 1 flatter), each fed back.  A model of\n"
               "lines (--lines) stops at the end of a line; N (default 200) caps every text.\n"
               "K texts (default 1), one per line; the same seed (default 1) prints the same.\n");
}

struct args {
    const char *model;
    long long count;
    struct cv_sample_opts o;
};

/* 0 to go on, 1 for --help, -1 for a usage error, -2 for a bad value
 * (already reported). */
static int parse(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {{"prime", required_argument, NULL, 'p'},
                                         {"length", required_argument, NULL, 'n'},
                                         {"temperature", required_argument, NULL, 't'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"count", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    int c;
    bool ok = true;
    optind = 1;
    while (ok && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p')
            a->o.prime = optarg;
        else if (c == 'n')
            ok = cv_cli_int_arg("sample", "length", optarg, 0, 1 << 24, &a->o.length);
        else if (c == 't')
            ok = cv_cli_num_arg("sample", "temperature", optarg, 0, 1e6, &a->o.temperature);
        else if (c == 's')
            ok = cv_cli_u64_arg("sample", "seed", optarg, &a->o.seed);
        else if (c == 'c')
            ok = cv_cli_int_arg("sample", "count", optarg, 1, 1 << 20, &a->count);
        else
            return c == 'h' ? 1 : -1;
    }
    if (!ok)
        return -2;
    a->model = optind + 1 == argc ? argv[optind] : NULL;
    return a->model ? 0 : -1;
}

static cv_status print_texts(cv_model *m, const struct cv_vocab *v, struct args *a,
                             struct cv_error *err)
{
    cv_status st = CV_OK;
    uint64_t seed = a->o.seed;
    for (long long i = 0; i < a->count && st == CV_OK; i++) {
        char *text;
        a->o.seed = seed + (uint64_t)i * 0x9e3779b97f4a7c15ull; /* text i: its own stream */
        st = cv_sample(m, v, &a->o, a->model, &text, err);
        if (st == CV_OK)
            printf("%s\n", text);
        free(text);
    }
    return st;
}

static int run(void *arg)
{
    struct args *a = arg;
    struct cv_error err;
    struct cv_config *cfg = NULL;
    cv_model *m = NULL;
    struct cv_vocab v;
    bool found = false;
    cv_error_clear(&err);
    cv_status st = cv_vocab_read(a->model, &v, &found, &err);
    if (st == CV_OK && !found)
        st = cv_fail(&err, CV_FORMAT,
                     "%s: no vocabulary stored with it: not a character language model (train "
                     "one on a dataset made by `caviar import text`)",
                     a->model);
    if (st == CV_OK)
        st = cv_ckpt_open_model(a->model, 1, &cfg, &m, &err);
    if (st == CV_OK)
        st = print_texts(m, &v, a, &err);
    cv_model_free(m);
    cv_config_free(cfg);
    cv_vocab_deinit(&v);
    return st == CV_OK ? CV_EXIT_OK : cv_cli_fail("sample", &err);
}

int cv_cmd_sample(int argc, char **argv)
{
    struct args a = {.count = 1, .o = {.length = 200, .temperature = 1, .seed = 1}};
    return cv_cli_rank0_command(parse(argc, argv, &a), usage, run, &a);
}
