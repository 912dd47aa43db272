/*
 * cmd_report.c - `caviar report RUN_DIR... [-o report.html]`: the page of
 * caviar/report.h, written by rank 0 (under mpirun the other ranks wait).
 */
#include <getopt.h>
#include <stdio.h>

#include "caviar/report.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: caviar report RUN_DIR... [-o report.html]\n\n"
               "Write one self-contained HTML page (inline SVG and CSS, no network) about\n"
               "training runs, sweeps and ensembles: curves per epoch, the evaluation of the\n"
               "model on its dev split (confusion heat map, per-class P/R/F1), the config;\n"
               "for a sweep the results sorted by the metric, the metric against each\n"
               "hyperparameter, parallel coordinates and ASHA rungs; for an ensemble each\n"
               "member against the ensemble.  Several directories: curves overlaid too.\n"
               "  -o, --output FILE  the page (default report.html), replaced atomically\n");
}

int cv_cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *out = "report.html";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (c == 'h')
            return cv_cli_rank() == 0 ? (usage(stdout), CV_EXIT_OK) : CV_EXIT_OK;
        if (c != 'o')
            return cv_cli_rank() == 0 ? (usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
        out = optarg;
    }
    if (optind >= argc)
        return cv_cli_rank() == 0 ? (usage(stderr), CV_EXIT_USAGE) : CV_EXIT_USAGE;
    if (cv_cli_rank() != 0)
        return CV_EXIT_OK; /* one writer; main.c's barrier keeps the others until it is done */
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_report_write((const char *const *)argv + optind, argc - optind, out, &err);
    if (st == CV_USAGE) {
        fprintf(stderr, "caviar report: error: %s\n", err.msg);
        return CV_EXIT_USAGE;
    }
    if (st != CV_OK)
        return cv_cli_fail("report", &err);
    printf("wrote %s\n", out);
    return CV_EXIT_OK;
}
