/*
 * cli_common.c - helpers shared by the subcommands: rank lookup and error
 * reporting with the exit code that fits a status.
 */
#include <mpi.h>
#include <stdio.h>

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
    fprintf(stderr, "caviar %s: error: %s\n", cmd, msg);
    fflush(stderr);
    if (st == CV_INTERRUPTED)
        return CV_EXIT_RESUME;
    if (st == CV_USAGE)
        return CV_EXIT_USAGE;
    return CV_EXIT_ERROR;
}
