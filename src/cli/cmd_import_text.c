/*
 * cmd_import_text.c - `caviar import text FILE (--window T | --lines) -o
 * out.h5`, called by cmd_import.c.  Runs on rank 0 (the others wait for its
 * result under mpirun, so every rank exits alike).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "caviar/text.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: caviar import text FILE (--window T [--stride S] | --lines [--max-length L])\n"
            "                          [--shuffle] [--seed S] [--dev N|FRACTION] -o OUT.h5\n\n"
            "Write a character-level sequence dataset (docs/dataset-format.md): /X and /y\n"
            "int32 (N, T) token ids, the vocabulary (one UTF-8 character per id) stored in\n"
            "the file.  --window T: rows of T + 1 consecutive characters (input: the first T,\n"
            "target: the next character at each step), a new row every S characters\n"
            "(default T).  --lines: one row per non-empty line, led and ended by an\n"
            "end-of-line token; T = the longest line + 1 (or L + 1), /lengths stored;\n"
            "a line longer than L is an error.  --dev holds out the last N rows (after\n"
            "--shuffle), or that fraction of them when the value has a '.', in group 'dev'.\n");
}

struct args {
    const char *in, *out;
    struct cv_text_opts o;
};

static bool dev_arg(const char *text, struct cv_text_opts *o)
{
    if (strchr(text, '.'))
        return cv_cli_num_arg("import", "dev", text, 0, 1, &o->dev_fraction);
    return cv_cli_int_arg("import", "dev", text, 0, LLONG_MAX, &o->dev);
}

static bool int_arg(const char *name, const char *text, int *out)
{
    long long v;
    if (!cv_cli_int_arg("import", name, text, 1, INT_MAX / 2, &v))
        return false;
    *out = (int)v;
    return true;
}

/* 0 to go on, 1 for --help, -1 for a usage error, -2 for a bad value
 * (already reported). */
static int parse(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"window", required_argument, NULL, 'w'}, {"stride", required_argument, NULL, 't'},
        {"lines", no_argument, NULL, 'L'},        {"max-length", required_argument, NULL, 'm'},
        {"shuffle", no_argument, NULL, 'S'},      {"seed", required_argument, NULL, 's'},
        {"dev", required_argument, NULL, 'd'},    {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},         {0}};
    int c;
    bool ok = true;
    optind = 1;
    while (ok && (c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'w':
            ok = int_arg("window", optarg, &a->o.window);
            break;
        case 't':
            ok = int_arg("stride", optarg, &a->o.stride);
            break;
        case 'L':
            a->o.lines = true;
            break;
        case 'm':
            ok = int_arg("max-length", optarg, &a->o.max_length);
            break;
        case 'S':
            a->o.shuffle = true;
            break;
        case 's':
            ok = cv_cli_u64_arg("import", "seed", optarg, &a->o.seed);
            break;
        case 'd':
            ok = dev_arg(optarg, &a->o);
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'h':
            return 1;
        default:
            return -1;
        }
    }
    if (!ok)
        return -2;
    a->in = optind + 1 == argc ? argv[optind] : NULL;
    return a->in && a->out ? 0 : -1; /* a missing or double mode: cv_import_text says */
}

static int run(void *arg)
{
    struct args *a = arg;
    struct cv_error err;
    struct cv_text_summary s;
    cv_error_clear(&err);
    if (cv_import_text(a->in, a->out, &a->o, &s, &err) != CV_OK)
        return cv_cli_fail("import", &err);
    printf("imported %lld rows (+ %lld dev rows) x %d steps, %d tokens, from %lld characters "
           "-> %s\n",
           s.rows, s.dev_rows, s.steps, s.vocab, s.chars, a->out);
    return CV_EXIT_OK;
}

int cv_cmd_import_text(int argc, char **argv)
{
    struct args a = {0};
    return cv_cli_rank0_command(parse(argc, argv, &a), usage, run, &a);
}
