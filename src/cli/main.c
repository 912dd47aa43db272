/*
 * main.c - entry point of the caviar tool: MPI set-up, the assertion hook,
 * subcommand dispatch, --help and --version.  The only place (with the
 * other src/cli files) that turns a status into a process exit code.
 */
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "caviar/dataset.h"
#include "caviar/model.h"
#include "caviar/status.h"
#include "commands.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    bool stops; /* checkpoints on a stop signal; else default signal actions */
    const char *help;
};

static const struct command commands[] = {
    {"import", cv_cmd_import, false, "convert IDX or CSV data to a caviar HDF5 dataset"},
    {"train", cv_cmd_train, true, "train a model from a YAML config (data parallel under mpirun)"},
    {"eval", cv_cmd_eval, false,
     "evaluate a model on a dataset: loss, accuracy, P/R/F1, confusion"},
    {"predict", cv_cmd_predict, false, "write a model's predictions to .h5 or .csv"},
    {"export", cv_cmd_export, false, "write a model as ONNX (docs/export.md)"},
    {"gradcheck", cv_cmd_gradcheck, false, "compare backprop gradients with centred differences"},
    {"inspect", cv_cmd_inspect, false, "show what a model or checkpoint holds and verify it"},
    {"sweep", cv_cmd_sweep, true,
     "train many trials of a hyperparameter sweep at once (grid/random/asha)"},
    {"ensemble", cv_cmd_ensemble, true, "train ensemble members in parallel; evaluate an ensemble"},
    {"report", cv_cmd_report, false,
     "write an HTML page of runs, sweeps and ensembles (plots, metrics)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: caviar <command> [options]   (caviar <command> --help for details)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\noptions:\n  --help     this text\n  --version  print the version\n"
               "\nexit codes: 0 ok, 1 error, 2 usage, 75 stopped with a checkpoint - resume me,\n"
               "  76 stopped during start-up, nothing trained - run again\n");
}

/* A failed assertion on one rank must not leave the others waiting in a
 * collective: abort the whole job. */
static void abort_job(const char *file, int line, const char *expr)
{
    (void)file;
    (void)line;
    (void)expr;
    MPI_Abort(MPI_COMM_WORLD, 134);
}

static int run(const struct command *c, int argc, char **argv)
{
    if (c->stops || !cv_cli_default_signals())
        return c->run(argc, argv);
    if (cv_cli_rank() == 0)
        fprintf(stderr, "caviar %s: stopped: stop requested before it started\n", c->name);
    return CV_EXIT_STOPPED;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        if (cv_cli_rank() == 0)
            usage(stderr);
        return CV_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (cv_cli_rank() == 0)
            usage(stdout);
        return CV_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        if (cv_cli_rank() == 0)
            printf("caviar %s\n", CAVIAR_VERSION_STRING);
        return CV_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return run(&commands[i], argc - 1, argv + 1);
    if (cv_cli_rank() == 0) {
        fprintf(stderr, "caviar: unknown command '%s'\n", argv[1]);
        usage(stderr);
    }
    return CV_EXIT_USAGE;
}

/* Every HDF5 file this process reads is read first by a copy of this
 * executable (src/h5_check.c). */
static void set_h5_checker(void)
{
    char exe[CV_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        cv_h5_set_checker(exe);
    }
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "__check-h5")) /* before MPI: not a rank */
        return cv_cmd_check_h5(argc - 1, argv + 1);
    set_h5_checker();
    /* first of all: a stop signal during MPI_Init or start-up (SLURM's
     * warning can come at any moment) must end in a clean stop, not kill */
    cv_cli_stop_signals();
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    cv_cli_phase("mpi_init");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    cv_set_abort_hook(abort_job);
    cv_set_flush_denormals(true);
    int rc = dispatch(argc, argv);
    fflush(stdout);
    fflush(stderr);
    /* mpirun kills the job as soon as one rank exits non-zero: wait until
     * rank 0 has printed the (agreed) message before anyone leaves */
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
