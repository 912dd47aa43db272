/*
 * cmd_check_h5.c - `caviar __check-h5 KIND SPEC ROW0 N`, the checking
 * process of src/h5_check.c (not a user command): it reads the file with
 * caviar's own readers, as the process that started it is about to.  Exit
 * 0: read; 3 (CV_H5_CHECK_REFUSED): refused by caviar's checks; a fault
 * inside libhdf5 ends it with a signal (or a sanitizer's exit code).  No
 * MPI: it runs beside the job's ranks.
 */
#include <stdlib.h>

#include "commands.h"
#include "h5_internal.h"

int cv_cmd_check_h5(int argc, char **argv)
{
    if (argc != 5)
        return CV_EXIT_USAGE;
    cv_cli_phase("check_h5"); /* tests: SEGV@check_h5 stands in for a fault in libhdf5 */
    return cv__h5_check_run(argv[1], argv[2], atoll(argv[3]), atoll(argv[4]));
}
