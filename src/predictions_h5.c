/*
 * predictions_h5.c - the HDF5 prediction file: /probabilities (N x k
 * float32), /predicted (N int32; N x T for a per-step model, -1 on padded
 * steps), /label (N int32) when the data had labels, and the attribute
 * `class_names` when the names are known.  Readable
 * with h5py.
 */
#include <hdf5.h>

#include "caviar/predictions.h"
#include "h5_internal.h"

cv_status cv__predictions_write_h5(const char *path, char *tmp, size_t size,
                                   const struct cv_pred_out *p, const int *pred,
                                   struct cv_error *err)
{
    hid_t f;
    cv_status st = cv__h5_create_tmp(path, tmp, size, H5P_DEFAULT, &f, err);
    if (st != CV_OK)
        return st;
    hsize_t d2[2] = {(hsize_t)p->n, (hsize_t)p->k}, d1[1] = {(hsize_t)p->n};
    hsize_t dp[2] = {(hsize_t)p->n, (hsize_t)p->steps};
    herr_t rc = cv__h5_write_dataset(f, "probabilities", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2,
                                     p->probs);
    if (rc >= 0)
        rc = cv__h5_write_dataset(f, "predicted", H5T_STD_I32LE, H5T_NATIVE_INT, p->steps ? 2 : 1,
                                  p->steps ? dp : d1, pred);
    if (rc >= 0 && p->label)
        rc = cv__h5_write_dataset(f, "label", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, d1, p->label);
    if (rc >= 0 && p->names)
        cv__h5_write_names(f, p->names, p->steps ? p->k / p->steps : p->k);
    if (H5Fclose(f) < 0)
        rc = -1;
    return rc < 0 ? cv_fail(err, CV_IO, "%s: write failed (disk full?)", tmp) : CV_OK;
}
