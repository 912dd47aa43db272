/*
 * h5_internal.h - small HDF5 helpers shared by the files that include
 * <hdf5.h> (dataset_h5.c, predictions_h5.c, checkpoint_h5.c, create_h5.c,
 * guard_h5.c).
 */
#ifndef CV_H5_INTERNAL_H
#define CV_H5_INTERNAL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>

#include "caviar/status.h"

/* Create dataset `name` in group g (contiguous) and write `data`. */
herr_t cv__h5_write_dataset(hid_t g, const char *name, hid_t file_t, hid_t mem_t, int nd,
                            const hsize_t *d, const void *data);

/* Attribute `name` of obj: one value (n = 1, a scalar) or n of them. */
herr_t cv__h5_write_attr(hid_t obj, const char *name, hid_t file_t, hid_t mem_t, hsize_t n,
                         const void *v);

/* Attribute class_names of g: n variable-length strings (dataset_h5.c). */
void cv__h5_write_names(hid_t g, const char *const *names, int n);
/* Read it when it holds n strings: *names, one block for free(); else
 * *names = NULL.  false only when out of memory. */
bool cv__h5_read_names(hid_t g, int n, char ***names);

/* Create the HDF5 file `name`, which must not exist in any form (a symlink
 * at it, dangling or not, is refused, not followed); fapl may be
 * H5P_DEFAULT.  The file id, or < 0. */
hid_t cv__h5_create_excl(const char *name, hid_t fapl);

/* Create a new HDF5 file exclusively at a unique temporary name next to
 * path (written into tmp, for cv__commit_file); its id in *file.  CV_IO
 * naming the file when it cannot be created (*file < 0 then). */
cv_status cv__h5_create_tmp(const char *path, char *tmp, size_t size, hid_t fapl, hid_t *file,
                            struct cv_error *err);

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

/* Before a reader touches a file: the checking process (src/h5_check.c)
 * reads it first - a dataset split's header, class names and rows
 * [row0, row0 + n); a model or checkpoint, all of it.  CV_CORRUPT naming
 * the file when libhdf5 faulted there; else CV_OK (the reader then reports
 * any error of caviar's own). */
cv_status cv__h5_check_dataset(const char *spec, long long row0, long long n, struct cv_error *err);
cv_status cv__h5_check_ckpt(const char *path, struct cv_error *err);
/* The checking process's exit code when caviar's readers refused the file
 * (no fault: the reader runs and gives its own message). */
#define CV_H5_CHECK_REFUSED 3
/* In the checking process: run the readers of `kind` ("dataset" with the
 * rows [row0, row0 + n) of split spec, or "ckpt") unchecked; its exit
 * code (0 or CV_H5_CHECK_REFUSED). */
int cv__h5_check_run(const char *kind, const char *spec, long long row0, long long n);

#endif /* CV_H5_INTERNAL_H */
