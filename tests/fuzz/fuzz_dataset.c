/*
 * fuzz_dataset.c - the HDF5 dataset reader (cv_dataset_probe and
 * cv_dataset_read_rows, what every rank of `train`, `eval` and `predict`
 * runs on a data file): the input is the .h5 file, read as its root split
 * and as "#dev".  Seeds are small valid datasets (tests/fuzz/seeds/dataset).
 */
#include <hdf5.h>
#include <stddef.h>

#include "caviar/dataset.h"
#include "fuzz_common.h"

/* The harness allocates what the probe reports: bound it, so that a file
 * claiming billions of rows is not a finding of the harness's own. */
#define MAX_VALUES (1 << 22)

static void read_split(const char *spec)
{
    struct cv_dataset_info in;
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_dataset_probe(spec, &in, &err);
    FUZZ_CHECK(st == CV_OK || err.msg[0], "probe status %d without a message", (int)st);
    fuzz_note("probe", (int)st, err.msg);
    if (st != CV_OK || in.n_rows < 0 || in.features < 0 || in.target_dim < 0 ||
        (double)in.n_rows * in.features > MAX_VALUES ||
        (double)in.n_rows * in.target_dim > MAX_VALUES)
        return;
    float *x = calloc((size_t)in.n_rows * (size_t)in.features + 1, sizeof(float));
    float *yv = calloc((size_t)in.n_rows * (size_t)in.target_dim + 1, sizeof(float));
    int32_t *yc = calloc((size_t)in.n_rows + 1, sizeof(int32_t));
    FUZZ_CHECK(x && yv && yc, "out of memory");
    st = cv_dataset_read_rows(spec, 0, in.n_rows, x, yc, yv, &err);
    FUZZ_CHECK(st == CV_OK || err.msg[0], "read status %d without a message", (int)st);
    fuzz_note("read", (int)st, err.msg);
    if (in.n_rows > 1) /* a shard that starts inside the file */
        cv_dataset_read_rows(spec, in.n_rows / 2, 1, x, yc, yv, &err);
    free(x);
    free(yv);
    free(yc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[256], dev[300];
    fuzz_h5_checker();
    fuzz_write(fuzz_path("data.h5", path, sizeof(path)), data, size);
    snprintf(dev, sizeof(dev), "%s#dev", path);
    read_split(path);
    read_split(dev);
    ssize_t left = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); /* a reader left a handle open */
    FUZZ_CHECK(left == 0, "%zd HDF5 objects still open", left);
    fuzz_cleanup(path);
    return 0;
}
