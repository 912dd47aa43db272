/*
 * fuzz_image.c - `caviar import images`: the input's first byte holds the
 * options (bit 0 grayscale, bit 1 --crop, bit 2 --size 5x7, bit 3 a second
 * copy of the file in another class), the rest is one image file in a
 * class folder.  Whatever libpng or libjpeg-turbo make of it, the import
 * must end with CV_OK and a readable dataset, or an error with a message.
 */
#include <sys/stat.h>

#include "caviar/import.h"
#include "fuzz_common.h"
#include "fuzz_readback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char dir[256], a[300], b[300], fa[320], fb[320], out[256];
    unsigned flags = data[0];
    fuzz_path("images", dir, sizeof(dir));
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    snprintf(fa, sizeof(fa), "%s/x.img", a);
    snprintf(fb, sizeof(fb), "%s/x.img", b);
    mkdir(dir, 0700);
    mkdir(a, 0700);
    fuzz_write(fa, data + 1, size - 1);
    if (flags & 8) {
        mkdir(b, 0700);
        fuzz_write(fb, data + 1, size - 1);
    }
    fuzz_path("out.h5", out, sizeof(out));
    struct cv_image_opts io = {.channels = flags & 1 ? 1 : 3,
                               .fit = flags & 2 ? CV_IMAGE_CROP : CV_IMAGE_RESIZE,
                               .height = flags & 4 ? 5 : 0,
                               .width = flags & 4 ? 7 : 0};
    struct cv_import_opts opts = {0};
    struct cv_import_summary sum = {0};
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_import_images(dir, out, &io, &opts, &sum, &err);
    fuzz_import_result("images", st, &err, out, &sum);
    fuzz_cleanup(fa);
    fuzz_cleanup(fb);
    rmdir(a);
    rmdir(b);
    rmdir(dir);
    fuzz_cleanup(out);
    return 0;
}
