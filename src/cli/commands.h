/*
 * commands.h - the caviar command-line tool: one file per subcommand.
 *
 * main.c initialises MPI (every subcommand may run under mpirun), installs
 * the MPI_Abort assertion hook, dispatches to cv_cmd_<name>(argc, argv) with
 * argv[0] = the subcommand name, and finalises MPI.  A subcommand returns an
 * exit code from the list below; it prints human lines from rank 0 only and
 * errors as one line "caviar <cmd>: error: <message>" on stderr (rank 0, or
 * the rank that saw it if ranks could not agree).
 */
#ifndef CV_CLI_COMMANDS_H
#define CV_CLI_COMMANDS_H

/* Exit codes (documented in README.md, "Using it"). */
enum cv_exit {
    CV_EXIT_OK = 0,      /* success */
    CV_EXIT_ERROR = 1,   /* bad input, I/O, numerical failure ... (message printed) */
    CV_EXIT_USAGE = 2,   /* bad command line */
    CV_EXIT_RESUME = 75, /* stopped on a signal with a checkpoint written and verified by this
                            run: resume me (EX_TEMPFAIL) */
    CV_EXIT_STOPPED = 76 /* stopped on a signal before anything was trained (start-up):
                            nothing written, run the same command again */
};

int cv_cmd_import(int argc, char **argv);
int cv_cmd_train(int argc, char **argv);
int cv_cmd_eval(int argc, char **argv);
int cv_cmd_predict(int argc, char **argv);
int cv_cmd_export(int argc, char **argv);
int cv_cmd_gradcheck(int argc, char **argv);
int cv_cmd_inspect(int argc, char **argv);
int cv_cmd_sweep(int argc, char **argv);
int cv_cmd_ensemble(int argc, char **argv);
int cv_cmd_report(int argc, char **argv);
/* the checking process of src/h5_check.c (hidden, no MPI) */
int cv_cmd_check_h5(int argc, char **argv);

/* Whether rank 0's stdout is a terminal a user watches (terminal.c):
 * progress is then rewritten in place. */
#include <stdbool.h>
bool cv_cli_stdout_is_terminal(void);

/* Shared helpers (cli_common.c). */
int cv_cli_rank(void); /* rank in MPI_COMM_WORLD */
/* Print "caviar <cmd>: error: <msg>" to stderr and return the exit code
 * that fits `status` (CV_EXIT_RESUME for CV_INTERRUPTED, CV_EXIT_STOPPED
 * for CV_STOPPED, else 1). */
struct cv_error;
int cv_cli_fail(const char *cmd, const struct cv_error *err);

/* Parse the options of a command that takes only --json and --help.
 * Returns -1 to go on (optind at the first operand), else an exit code. */
#include <stdbool.h>
#include <stdio.h>
int cv_cli_json_help(int argc, char **argv, int *json, void (*usage)(FILE *f));

/* Load a config on every rank of comm and agree on the outcome; on failure
 * rank 0 prints the message.  Then the start-up stop point "config": a
 * stop signal that reached any rank since the process began ends the
 * command here (CV_EXIT_STOPPED).  Returns an exit code (0 on success). */
struct cv_comm;
struct cv_config;
int cv_cli_load_config(const struct cv_comm *comm, const char *cmd, const char *path,
                       char **overrides, int n_over, struct cv_config **cfg);

/* Range-checked values of option --name (the whole text, base 10, no
 * overflow): an integer in [lo, hi], any uint64, a finite number in
 * (lo, hi].  On bad text rank 0 prints "caviar CMD: error: --NAME TEXT:
 * expected ..." and false comes back: the caller exits CV_EXIT_USAGE. */
#include <stdbool.h>
#include <stdint.h>
bool cv_cli_int_arg(const char *cmd, const char *name, const char *text, long long lo, long long hi,
                    long long *out);
bool cv_cli_u64_arg(const char *cmd, const char *name, const char *text, uint64_t *out);
bool cv_cli_num_arg(const char *cmd, const char *name, const char *text, double lo, double hi,
                    double *out);

/* The exit code of an agreed status on every rank: rank 0 prints the
 * message; after an MPI error the whole job is aborted (MPI cannot be
 * trusted past it). */
int cv_cli_finish(const struct cv_comm *comm, const char *cmd, int status,
                  const struct cv_error *err);

/* Install the stop handlers (main does so before MPI_Init; again is
 * harmless) and return the flag they set: the first SIGTERM, SIGINT or
 * SIGUSR1 (what SLURM sends with --signal) asks every rank to finish its
 * step, checkpoint and exit 75 ("resume me"), or 76 during start-up; a
 * second SIGINT aborts at once. */
#include <signal.h>
volatile sig_atomic_t *cv_cli_stop_signals(void);

/* For commands that do not checkpoint: default signal actions from now on.
 * Returns true if a stop signal came before (the caller stops, exit 76). */
bool cv_cli_default_signals(void);

/* Start-up phase hook for tests: CAVIAR_DEBUG_RAISE=SIG@PHASE[@RANK]
 * (SIG one of TERM, INT, USR1) makes rank RANK (every rank without it)
 * raise SIG when it reaches PHASE: "mpi_init", "config", then the phases
 * of cv_train_opts.on_phase, "sweep_start", and "step" (after the first
 * training step). */
void cv_cli_phase(const char *phase);

/* Collective start-up stop point: cv_cli_phase(phase), then CV_STOPPED (a cv_status)
 * (agreed, message in err) if a stop signal reached any rank so far. */
struct cv_error;
int cv_cli_stop_point(const struct cv_comm *comm, const char *phase, struct cv_error *err);

#endif /* CV_CLI_COMMANDS_H */
