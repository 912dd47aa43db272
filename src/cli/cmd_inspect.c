/*
 * cmd_inspect.c - `caviar inspect FILE.h5 [--json]`: what a model or
 * checkpoint holds (format and caviar version, kind, epoch/step, world size,
 * parameter count and checksum, optimizer state, last metrics, the layers
 * with their output shapes (a sequence's steps too), the config) and
 * whether every checksum verifies.  Exit 1 if it does not.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/checkpoint.h"
#include "caviar/comm.h"
#include "caviar/model.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: caviar inspect FILE.h5 [--json]\n\n"
               "Print what a model or checkpoint holds and verify its checksums.\n"
               "  --json  one JSON object (params_fnv1a identifies the exact parameters)\n");
}

/* The last line of a JSON-lines history (borrowed into buf). */
static const char *last_line(const char *hist, char *buf, size_t n)
{
    buf[0] = '\0';
    if (!hist)
        return buf;
    size_t len = strlen(hist);
    while (len > 0 && hist[len - 1] == '\n')
        len--;
    size_t start = len;
    while (start > 0 && hist[start - 1] != '\n')
        start--;
    snprintf(buf, n, "%.*s", (int)(len - start), hist + start);
    return buf;
}

static void print_line(void *arg, const char *line)
{
    (void)arg;
    printf("%s\n", line);
}

/* The layer summary of the stored model (built for a batch of 1). */
static void print_layers(const struct cv_config *c)
{
    cv_model *m = NULL;
    if (!c || cv_model_create(c, 1, &m, NULL) != CV_OK)
        return;
    printf("layers:\n");
    cv_model_summary(m, print_line, NULL);
    cv_model_free(m);
}

static void print_human(const char *path, const struct cv_ckpt_info *in, const struct cv_config *c,
                        const struct cv_error *verr)
{
    char last[1024];
    printf("file            %s\n", path);
    printf("kind            %s (format version %d, written by caviar %s)\n", in->kind,
           in->format_version, in->caviar_version);
    printf("parameters      %lld (fnv1a %016llx)\n", in->n_params, in->params_hash);
    if (!strcmp(in->kind, "checkpoint")) {
        printf("position        epoch %lld, step %lld of the epoch, global step %lld\n",
               in->ts.epoch + 1, in->ts.epoch_step, in->ts.step);
        printf("world size      %d rank(s)\n", in->ts.world_size);
        printf("optimizer       %s, t = %lld\n", c ? cv_optimizer_name(c->train.optimizer) : "?",
               in->optimizer_t);
        printf("data            %s (%lld rows x %d features)\n", in->ts.data_path, in->ts.data_rows,
               in->ts.data_features);
        printf("last metrics    %s\n", last_line(in->ts.metrics, last, sizeof(last)));
    }
    printf("checksums       %s%s%s\n",
           verr->code == CV_OK ? "verify" : "FAIL: ", verr->code == CV_OK ? "" : verr->msg, "");
    print_layers(c);
    if (c && c->text)
        printf("config:\n%s", c->text);
}

static void print_json(const struct cv_ckpt_info *in, bool ok)
{
    printf("{\"kind\":\"%s\",\"format_version\":%d,\"caviar_version\":\"%s\",\"n_params\":%lld,"
           "\"params_fnv1a\":\"%016llx\",\"epoch\":%lld,\"epoch_step\":%lld,\"step\":%lld,"
           "\"world_size\":%d,\"optimizer_t\":%lld,\"checksums_ok\":%s}\n",
           in->kind, in->format_version, in->caviar_version, in->n_params, in->params_hash,
           in->ts.epoch, in->ts.epoch_step, in->ts.step, in->ts.world_size, in->optimizer_t,
           ok ? "true" : "false");
}

int cv_cmd_inspect(int argc, char **argv)
{
    int json, rc0 = cv_cli_json_help(argc, argv, &json, usage);
    if (rc0 >= 0)
        return rc0;
    if (argc - optind != 1)
        return cv_cli_rank() == 0 ? (usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    if (cv_cli_rank() != 0)
        return CV_EXIT_OK;
    const char *path = argv[optind];
    struct cv_error err, verr;
    cv_error_clear(&err);
    cv_error_clear(&verr);
    struct cv_ckpt_info info;
    struct cv_config *cfg = NULL;
    if (cv_ckpt_info(path, &info, &err) != CV_OK)
        return cv_cli_fail("inspect", &err);
    cv_ckpt_verify(path, &verr);
    cv_ckpt_read_config(path, NULL, 0, &cfg, NULL);
    if (json)
        print_json(&info, verr.code == CV_OK);
    else
        print_human(path, &info, cfg, &verr);
    cv_config_free(cfg);
    free(info.ts.metrics);
    return verr.code == CV_OK ? CV_EXIT_OK : CV_EXIT_ERROR;
}
