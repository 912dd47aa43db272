/*
 * h5_internal.h - small HDF5 helpers shared by the files that include
 * <hdf5.h> (dataset_h5.c, predictions_h5.c).
 */
#ifndef CV_H5_INTERNAL_H
#define CV_H5_INTERNAL_H

#include <hdf5.h>

/* Create dataset `name` in group g (contiguous) and write `data`. */
herr_t cv__h5_write_dataset(hid_t g, const char *name, hid_t file_t, hid_t mem_t, int nd,
                            const hsize_t *d, const void *data);

#endif /* CV_H5_INTERNAL_H */
