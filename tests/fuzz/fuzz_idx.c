/*
 * fuzz_idx.c - `caviar import idx`: the input is a 2-byte little-endian
 * length L, a flags byte (bit 0: shuffle, bit 1: a dev split of one row),
 * L bytes of the labels file, then the images file (raw or gzip: zlib
 * reads both).  An import that succeeds must read back (fuzz_readback.h).
 */
#include <stddef.h>

#include "caviar/dataset.h"
#include "caviar/import.h"
#include "fuzz_common.h"
#include "fuzz_readback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t len = (size_t)(data[0] | data[1] << 8);
    unsigned flags = data[2];
    data += 3;
    size -= 3;
    len = len < size ? len : size;
    char img[256], lab[256], out[256];
    fuzz_write(fuzz_path("labels.idx", lab, sizeof(lab)), data, len);
    fuzz_write(fuzz_path("images.idx", img, sizeof(img)), data + len, size - len);
    fuzz_path("out.h5", out, sizeof(out));
    struct cv_import_opts opts = {.shuffle = flags & 1, .seed = 1, .dev = (flags >> 1) & 1};
    struct cv_import_summary sum = {0};
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_import_idx(img, lab, out, &opts, &sum, &err);
    fuzz_import_result("idx", st, &err, out, &sum);
    fuzz_cleanup(img);
    fuzz_cleanup(lab);
    fuzz_cleanup(out);
    return 0;
}
