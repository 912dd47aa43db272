/*
 * predictions_h5.c - the HDF5 prediction file: /probabilities (N x k float32)
 * and /predicted (N int32), attribute `outputs`.  Readable with h5py.
 */
#include <hdf5.h>

#include "caviar/predictions.h"

static herr_t write_ds(hid_t f, const char *name, hid_t file_t, hid_t mem_t, int rank,
                       const hsize_t *dims, const void *data)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, file_t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, mem_t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(space);
    return rc;
}

cv_status cv__predictions_write_h5(const char *tmp, const float *probs, const int *pred,
                                   long long n, int k, struct cv_error *err)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return cv_fail(err, CV_IO, "%s: cannot create", tmp);
    hsize_t d2[2] = {(hsize_t)n, (hsize_t)k}, d1[1] = {(hsize_t)n};
    herr_t rc = write_ds(f, "probabilities", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2, probs);
    if (rc >= 0)
        rc = write_ds(f, "predicted", H5T_STD_I32LE, H5T_NATIVE_INT, 1, d1, pred);
    if (H5Fclose(f) < 0)
        rc = -1;
    return rc < 0 ? cv_fail(err, CV_IO, "%s: write failed (disk full?)", tmp) : CV_OK;
}
