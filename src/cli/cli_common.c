/*
 * cli_common.c - helpers shared by the subcommands: rank lookup, error
 * reporting with the exit code that fits a status, and range-checked
 * parsing of numeric option values.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/comm.h"
#include "caviar/config.h"
#include "caviar/status.h"
#include "commands.h"

int cv_cli_rank(void)
{
    int rank = 0, inited = 0;
    MPI_Initialized(&inited);
    if (inited)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

int cv_cli_fail(const char *cmd, const struct cv_error *err)
{
    cv_status st = err ? err->code : CV_INVAL;
    const char *msg = err && err->msg[0] ? err->msg : cv_status_str(st);
    fprintf(stderr, "caviar %s: %s: %s\n", cmd, st == CV_INTERRUPTED ? "stopped" : "error", msg);
    fflush(stderr);
    if (st == CV_INTERRUPTED)
        return CV_EXIT_RESUME;
    if (st == CV_USAGE)
        return CV_EXIT_USAGE;
    return CV_EXIT_ERROR;
}

/* Load the config on every rank and agree, so a bad file fails everywhere. */
int cv_cli_load_config(const cv_comm *comm, const char *cmd, const char *path, char **overrides,
                       int n_over, struct cv_config **cfg)
{
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_config_load(path, (const char *const *)overrides, n_over, cfg, &err);
    st = cv_comm_agree(comm, st, &err);
    if (st == CV_OK)
        return CV_EXIT_OK;
    cv_config_free(*cfg);
    *cfg = NULL;
    return cv_comm_rank(comm) == 0 ? cv_cli_fail(cmd, &err) : CV_EXIT_ERROR;
}

int cv_cli_json_help(int argc, char **argv, int *json, void (*usage)(FILE *f))
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0}};
    int c;
    *json = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return usage(stdout), CV_EXIT_OK;
        if (c != 'j')
            return usage(stderr), CV_EXIT_USAGE;
        *json = 1;
    }
    return -1;
}

/* ---- numeric option values ---- */

/* Every rank parses the same argv, so every rank fails alike; one message. */
static bool bad_arg(const char *cmd, const char *name, const char *text, const char *expected)
{
    if (cv_cli_rank() == 0)
        fprintf(stderr, "caviar %s: error: --%s %s: expected %s\n", cmd, name, text, expected);
    return false;
}

bool cv_cli_int_arg(const char *cmd, const char *name, const char *text, long long lo, long long hi,
                    long long *out)
{
    char *end, exp[96];
    errno = 0;
    long long v = strtoll(text, &end, 10);
    snprintf(exp, sizeof(exp), "an integer in [%lld, %lld]", lo, hi);
    if (!*text || *end || errno == ERANGE || v < lo || v > hi)
        return bad_arg(cmd, name, text, exp);
    *out = v;
    return true;
}

bool cv_cli_u64_arg(const char *cmd, const char *name, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    /* strtoull accepts "-1" and wraps it: only digits are taken here */
    if (!*text || text[strspn(text, "0123456789")] || *end || errno == ERANGE)
        return bad_arg(cmd, name, text, "an integer in [0, 18446744073709551615]");
    *out = (uint64_t)v;
    return true;
}

bool cv_cli_num_arg(const char *cmd, const char *name, const char *text, double lo, double hi,
                    double *out)
{
    char *end, exp[96];
    errno = 0;
    double v = strtod(text, &end);
    snprintf(exp, sizeof(exp), "a number in (%g, %g]", lo, hi);
    if (!*text || *end || errno == ERANGE || !isfinite(v) || !(v > lo && v <= hi))
        return bad_arg(cmd, name, text, exp);
    *out = v;
    return true;
}

/* ---- stop signals ---- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    if (sig == SIGINT && stop_requested) { /* second Ctrl-C: abort now */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        return;
    }
    static const char note[] = "caviar: stop requested: finishing this step, writing a checkpoint "
                               "(Ctrl-C again aborts at once)\n";
    if (!stop_requested && write(STDERR_FILENO, note, sizeof(note) - 1) < 0)
        stop_requested = 1; /* nothing to do about a failed notice */
    stop_requested = 1;
}

volatile sig_atomic_t *cv_cli_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    return &stop_requested;
}

int cv_cli_finish(const struct cv_comm *comm, const char *cmd, int status,
                  const struct cv_error *err)
{
    cv_status st = (cv_status)status;
    if (st == CV_OK)
        return CV_EXIT_OK;
    int rc = cv_comm_rank(comm) == 0 ? cv_cli_fail(cmd, err)
                                     : (st == CV_INTERRUPTED ? CV_EXIT_RESUME : CV_EXIT_ERROR);
    if (st == CV_MPI)
        MPI_Abort(MPI_COMM_WORLD, CV_EXIT_ERROR);
    return rc;
}
