/*
 * guard_h5.c - checks that keep libhdf5 1.10 away from its known faults on
 * corrupt files, run by the readers (dataset_h5.c, checkpoint_h5.c) before
 * they ask HDF5 for data.  Found by fuzzing (tests/fuzz/regressions); each
 * check refuses what a file written by caviar or h5py never holds.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "h5_internal.h"

bool cv__h5_storage_ok(hid_t ds)
{
    hid_t pl = H5Dget_create_plist(ds);
    H5D_layout_t layout = pl < 0 ? H5D_LAYOUT_ERROR : H5Pget_layout(pl);
    if (pl >= 0)
        H5Pclose(pl);
    if (layout == H5D_CHUNKED)
        return true;
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    size_t size = t < 0 ? 0 : H5Tget_size(t);
    /* variable-length data stores heap references, not values of `size` */
    bool vlen = t >= 0 && (H5Tget_class(t) == H5T_VLEN || H5Tis_variable_str(t) > 0);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (vlen)
        return layout >= 0;
    if (layout < 0 || n < 0 || size == 0 || (hsize_t)n > (hsize_t)-1 / size)
        return false;
    return H5Dget_storage_size(ds) == (hsize_t)n * size;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Walk a global heap collection at file offset `at` as HDF5 decodes it: a
 * 16-byte header ("GCOL", version 1, size), then objects (index, refcount,
 * reserved, size, data padded to 8 bytes; index 0 is free space, its size
 * counting its header).  HDF5 loops forever on a free-space object of size
 * 0, and trusts sizes past the end. */
static bool heap_ok(FILE *f, uint64_t at)
{
    unsigned char h[16];
    if (fseeko(f, (off_t)at, SEEK_SET) != 0 || fread(h, 1, 16, f) != 16 ||
        memcmp(h, "GCOL", 4) != 0 || h[4] != 1)
        return false;
    uint64_t size = le(h + 8, 8), off = 16;
    if (size < 4096 || size > (1u << 30))
        return false;
    while (off + 16 <= size) {
        unsigned char o[16];
        if (fread(o, 1, 16, f) != 16)
            return false;
        uint64_t obj = le(o + 8, 8);
        uint64_t need = le(o, 2) ? 16 + ((obj + 7) & ~(uint64_t)7) : obj;
        if (obj > size || need < 16 || need > size - off)
            return false;
        off += need;
        if (fseeko(f, (off_t)(at + off), SEEK_SET) != 0)
            return false;
    }
    return true;
}

bool cv__h5_vlen_ok(hid_t file, hid_t ds, const char *path)
{
    hid_t pl = H5Dget_create_plist(ds), fpl = H5Fget_create_plist(file);
    H5D_layout_t layout = pl < 0 ? H5D_LAYOUT_ERROR : H5Pget_layout(pl);
    hsize_t block = 0;
    if (fpl < 0 || H5Pget_userblock(fpl, &block) < 0)
        layout = H5D_LAYOUT_ERROR;
    if (pl >= 0)
        H5Pclose(pl);
    if (fpl >= 0)
        H5Pclose(fpl);
    haddr_t addr = H5Dget_offset(ds);
    if (layout != H5D_CONTIGUOUS || addr == HADDR_UNDEF)
        return false;
    FILE *f = fopen(path, "rb");
    unsigned char id[16]; /* sequence length, collection address, object index */
    bool ok = f && fseeko(f, (off_t)(block + addr), SEEK_SET) == 0 && fread(id, 1, 16, f) == 16 &&
              (le(id, 4) == 0 || heap_ok(f, block + le(id + 4, 8))); /* "" has no heap object */
    if (f)
        fclose(f);
    return ok;
}
