/*
 * terminal.c - whether rank 0's output reaches a terminal a user watches
 * (the progress line is then rewritten in place) or a file, as in a SLURM
 * job.  Open MPI gives every local rank a pseudo-terminal for stdout
 * whatever mpirun's own stdout is, so under Open MPI the answer is
 * mpirun's (the parent process on Linux): a redirected `mpirun ... > log`
 * must get plain lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

bool cv_cli_stdout_is_terminal(void)
{
    if (!isatty(STDOUT_FILENO))
        return false;
    if (!getenv("OMPI_COMM_WORLD_SIZE"))
        return true;
    char link[64], target[256];
    snprintf(link, sizeof(link), "/proc/%d/fd/1", (int)getppid());
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return false; /* cannot tell: plain lines are safe everywhere */
    target[n] = '\0';
    return !strncmp(target, "/dev/pts/", 9) || !strncmp(target, "/dev/tty", 8);
}
