/*
 * h5_internal.h - small HDF5 helpers shared by the files that include
 * <hdf5.h> (dataset_h5.c, predictions_h5.c, checkpoint_h5.c, guard_h5.c).
 */
#ifndef CV_H5_INTERNAL_H
#define CV_H5_INTERNAL_H

#include <hdf5.h>
#include <stdbool.h>

/* Create dataset `name` in group g (contiguous) and write `data`. */
herr_t cv__h5_write_dataset(hid_t g, const char *name, hid_t file_t, hid_t mem_t, int nd,
                            const hsize_t *d, const void *data);

/* Whether a dataset's stored size matches its shape.  libhdf5 1.10 trusts
 * the size of a compact or contiguous dataset's storage: a corrupt file
 * that stores fewer bytes than the dataspace holds is read past the end of
 * HDF5's buffer.  Chunked data (checkpoints) is checked by HDF5 per chunk;
 * variable-length data (strings) is not checked. */
bool cv__h5_storage_ok(hid_t ds);

/* Whether the one variable-length string of dataset ds (file `path`, open
 * as `file`) can be read: contiguous, and its global heap collection walks
 * to its end (libhdf5 1.10 loops forever on a free-space object of size 0). */
bool cv__h5_vlen_ok(hid_t file, hid_t ds, const char *path);

#endif /* CV_H5_INTERNAL_H */
