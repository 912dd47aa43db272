/*
 * h5_internal.h - small HDF5 helpers shared by the files that include
 * <hdf5.h> (dataset_h5.c, predictions_h5.c, checkpoint_h5.c, create_h5.c).
 */
#ifndef CV_H5_INTERNAL_H
#define CV_H5_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>

#include "caviar/status.h"

/* Create dataset `name` in group g (contiguous) and write `data`. */
herr_t cv__h5_write_dataset(hid_t g, const char *name, hid_t file_t, hid_t mem_t, int nd,
                            const hsize_t *d, const void *data);

/* Create the HDF5 file `name`, which must not exist in any form (a symlink
 * at it, dangling or not, is refused, not followed); fapl may be
 * H5P_DEFAULT.  The file id, or < 0. */
hid_t cv__h5_create_excl(const char *name, hid_t fapl);

/* Create a new HDF5 file exclusively at a unique temporary name next to
 * path (written into tmp, for cv__commit_file); its id in *file.  CV_IO
 * naming the file when it cannot be created (*file < 0 then). */
cv_status cv__h5_create_tmp(const char *path, char *tmp, size_t size, hid_t fapl, hid_t *file,
                            struct cv_error *err);

#endif /* CV_H5_INTERNAL_H */
