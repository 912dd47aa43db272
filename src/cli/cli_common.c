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
#include "atomic_file.h"
#include "commands.h"

int cv_cli_rank(void)
{
    int rank = 0, inited = 0;
    MPI_Initialized(&inited);
    if (inited)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

/* The exit code of a status on a rank that does not print it. */
static int exit_code(cv_status st)
{
    return st == CV_INTERRUPTED ? CV_EXIT_RESUME
           : st == CV_STOPPED   ? CV_EXIT_STOPPED
           : st == CV_USAGE     ? CV_EXIT_USAGE
                                : CV_EXIT_ERROR;
}

/* CAVIAR_STOP_FILE: where a clean stop is recorded ("<exit code> caviar
 * <cmd>: <message>"), for job scripts that cannot trust the launcher's exit
 * code (mpirun returns 1 after SIGTERM even when every rank stopped cleanly). */
static void record_stop(const char *cmd, int code, const char *msg)
{
    const char *path = getenv("CAVIAR_STOP_FILE");
    char line[CV_ERROR_MSG_MAX + 64];
    struct cv_error err;
    if (!path || !path[0])
        return;
    cv_error_clear(&err);
    snprintf(line, sizeof(line), "%d caviar %s: %s\n", code, cmd, msg);
    if (cv__write_text_atomic(path, line, &err) != CV_OK)
        fprintf(stderr, "caviar %s: warning: CAVIAR_STOP_FILE: %s\n", cmd, err.msg);
}

int cv_cli_fail(const char *cmd, const struct cv_error *err)
{
    cv_status st = err ? err->code : CV_INVAL;
    const char *msg = err && err->msg[0] ? err->msg : cv_status_str(st);
    bool stopped = st == CV_INTERRUPTED || st == CV_STOPPED;
    fprintf(stderr, "caviar %s: %s: %s\n", cmd, stopped ? "stopped" : "error", msg);
    fflush(stderr);
    if (stopped)
        record_stop(cmd, exit_code(st), msg);
    if (st == CV_INTERRUPTED)
        return CV_EXIT_RESUME;
    if (st == CV_STOPPED)
        return CV_EXIT_STOPPED;
    if (st == CV_USAGE)
        return CV_EXIT_USAGE;
    return CV_EXIT_ERROR;
}

int cv_cli_stop_point(const cv_comm *comm, const char *phase, struct cv_error *err)
{
    cv_cli_phase(phase);
    cv_status st = CV_OK;
    if (*cv_cli_stop_signals())
        st = cv_fail(err, CV_STOPPED,
                     "stopped on request during start-up (after phase %s), before training: "
                     "no checkpoint written; run the same command again",
                     phase);
    return cv_comm_agree(comm, st, err);
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
        st = cv_cli_stop_point(comm, "config", &err);
    if (st == CV_OK)
        return CV_EXIT_OK;
    cv_config_free(*cfg);
    *cfg = NULL;
    return cv_comm_rank(comm) == 0 ? cv_cli_fail(cmd, &err) : exit_code(st);
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

static void set_handlers(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

volatile sig_atomic_t *cv_cli_stop_signals(void)
{
    set_handlers(on_signal);
    return &stop_requested;
}

bool cv_cli_default_signals(void)
{
    set_handlers(SIG_DFL);
    return stop_requested != 0;
}

/* One entry "SIG@phase[@rank]" of CAVIAR_DEBUG_RAISE: whether it names
 * this phase (and rank), and its signal. */
static bool raise_entry(const char *e, size_t len, const char *phase, int *sig)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"TERM", SIGTERM}, {"INT", SIGINT}, {"USR1", SIGUSR1}, {"SEGV", SIGSEGV}};
    char entry[96], want[64];
    int rank = -1;
    if (len >= sizeof(entry))
        return false;
    memcpy(entry, e, len);
    entry[len] = '\0';
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        size_t n = strlen(sigs[i].name);
        if (strncmp(entry, sigs[i].name, n) != 0 || entry[n] != '@')
            continue;
        if (sscanf(entry + n + 1, "%63[^@]@%d", want, &rank) < 1 || strcmp(want, phase) != 0)
            return false;
        *sig = sigs[i].sig;
        return rank < 0 || rank == cv_cli_rank();
    }
    return false;
}

/* Tests stop a run at a named phase: CAVIAR_DEBUG_RAISE is a comma-separated
 * list of "SIG@phase[@rank]", each raised once (a second SIGINT aborts). */
void cv_cli_phase(const char *phase)
{
    static bool raised[8];
    const char *spec = getenv("CAVIAR_DEBUG_RAISE");
    for (int i = 0; spec && *spec && i < 8; i++) {
        size_t len = strcspn(spec, ",");
        int sig;
        if (!raised[i] && raise_entry(spec, len, phase, &sig)) {
            raised[i] = true;
            raise(sig);
        }
        spec += len + (spec[len] == ',');
    }
}

int cv_cli_finish(const struct cv_comm *comm, const char *cmd, int status,
                  const struct cv_error *err)
{
    cv_status st = (cv_status)status;
    if (st == CV_OK)
        return CV_EXIT_OK;
    int rc = cv_comm_rank(comm) == 0 ? cv_cli_fail(cmd, err) : exit_code(st);
    if (st == CV_MPI)
        MPI_Abort(MPI_COMM_WORLD, CV_EXIT_ERROR);
    return rc;
}
