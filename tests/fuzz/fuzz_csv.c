/*
 * fuzz_csv.c - `caviar import csv`: the input is the CSV file; its first
 * byte picks the options (header, regression, label column 0 / 1 / "y",
 * shuffle, a dev split).  An import that succeeds must read back: the
 * written dataset probes with the summary's rows and features, and every
 * row reads.
 */
#include <stddef.h>

#include "caviar/dataset.h"
#include "caviar/import.h"
#include "fuzz_common.h"
#include "fuzz_readback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const labels[] = {"0", "1", "y", "0"};
    char in[256], out[256];
    unsigned flags = data[0];
    fuzz_write(fuzz_path("in.csv", in, sizeof(in)), data + 1, size - 1);
    fuzz_path("out.h5", out, sizeof(out));
    struct cv_import_opts opts = {.shuffle = flags & 4, .seed = 1, .dev = (flags >> 3) & 1};
    struct cv_import_summary sum = {0};
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_import_csv(in, labels[(flags >> 4) & 3], flags & 1, flags & 2, out, &opts,
                                 &sum, &err);
    fuzz_import_result("csv", st, &err, out, &sum);
    fuzz_cleanup(in);
    fuzz_cleanup(out);
    return 0;
}
