/*
 * create_h5.c - HDF5 files created the way atomic_file.h creates every
 * file: exclusively (H5F_ACC_EXCL, which the default sec2 driver maps to
 * open(O_CREAT | O_EXCL), so a symlink at the name, dangling or not, makes
 * the create fail instead of being followed) under a unique temporary name.
 */
#include <hdf5.h>

#include "atomic_file.h"
#include "h5_internal.h"

struct create {
    hid_t fapl;
    hid_t file;
};

static bool create_excl(const char *name, void *arg)
{
    struct create *c = arg;
    c->file = cv__h5_create_excl(name, c->fapl);
    return c->file >= 0;
}

hid_t cv__h5_create_excl(const char *name, hid_t fapl)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return H5Fcreate(name, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
}

cv_status cv__h5_create_tmp(const char *path, char *tmp, size_t size, hid_t fapl, hid_t *file,
                            struct cv_error *err)
{
    struct create c = {fapl, H5I_INVALID_HID};
    cv_status st = cv__tmp_create(path, tmp, size, create_excl, &c, err);
    *file = c.file;
    return st;
}
