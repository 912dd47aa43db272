/*
 * checkpoint_h5.c - the model/checkpoint HDF5 format (docs/checkpoint-format.md).
 *
 *   /            attrs format_version, caviar_version, kind, params_fnv1a
 *   /config      effective config, YAML text
 *   /layers/NN_type/{W,b,gamma,...,running_mean,...}   float32, chunked, Fletcher32
 *   /normalization/{mean,std}  (inputs)
 *   /optimizer/{m1,m2}         flat moment arenas; attrs kind, t
 *   /train       attrs epoch, epoch_step, step, world_size, data_*
 *   /metrics     metric history, JSON lines text
 * Files use the HDF5 1.8+ object format, whose metadata is checksummed too,
 * and are built in memory, then written to a temporary name with plain
 * write(2), fsynced and renamed into place.
 */
#define _GNU_SOURCE /* O_NOFOLLOW, O_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/checkpoint.h"
#include "caviar/comm.h"
#include "atomic_file.h"
#include "h5_internal.h"
#include "util.h"

#ifndef CAVIAR_VERSION_STRING
#define CAVIAR_VERSION_STRING "dev"
#endif

/* 256 KiB chunks: larger ones cost page faults on HDF5's filter buffers
 * (docs/performance.md) */
#define CHUNK_ELEMS (1u << 16)

struct h5w {
    hid_t file;
    const char *path; /* for messages */
};

static void h5_quiet(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ---- writing ---- */

static cv_status write_floats(struct h5w *w, const char *name, const int *dims, int ndims,
                              const float *data, struct cv_error *err)
{
    hsize_t d[4], chunk[4];
    size_t inner = 1;
    for (int i = 0; i < ndims; i++) {
        d[i] = (hsize_t)dims[i];
        chunk[i] = d[i];
        if (i > 0)
            inner *= (size_t)dims[i];
    }
    size_t rows = inner ? CHUNK_ELEMS / inner : 1; /* chunks along dim 0 */
    chunk[0] = rows < 1 ? 1 : rows < d[0] ? rows : d[0];
    hid_t space = H5Screate_simple(ndims, d, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_chunk(dcpl, ndims, chunk);
    H5Pset_fletcher32(dcpl);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER); /* every element is written: skip the memset */
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(w->file, name, H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0)
        H5Dclose(ds);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (rc < 0)
        return cv_fail(err, CV_HDF5, "%s: cannot write /%s (out of memory?)", w->path, name);
    return CV_OK;
}

static cv_status write_text(struct h5w *w, const char *name, const char *text, struct cv_error *err)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(w->file, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *p = text ? text : "";
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p);
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(space);
    H5Tclose(t);
    if (rc < 0)
        return cv_fail(err, CV_HDF5, "%s: cannot write /%s", w->path, name);
    return CV_OK;
}

static bool attr_ll(hid_t obj, const char *name, long long v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_LLONG, &v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return rc >= 0;
}

/* /train attributes of cv_train_state.last */
static const char *const last_names[4] = {"last_train_loss", "last_train_accuracy", "last_dev_loss",
                                          "last_dev_accuracy"};

static bool attr_dbl(hid_t obj, const char *name, double v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return rc >= 0;
}

static bool attr_str(hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    H5Tclose(t);
    return rc >= 0;
}

static cv_status view_writer(void *arg, const char *path, const int *dims, int ndims, float *data,
                             size_t count, struct cv_error *err)
{
    (void)count;
    return write_floats(arg, path, dims, ndims, data, err);
}

static cv_status write_optimizer(struct h5w *w, cv_optim *o, struct cv_error *err)
{
    int n = (int)cv_optim_size(o);
    cv_status st = CV_OK;
    hid_t g = H5Gcreate2(w->file, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return cv_fail(err, CV_HDF5, "%s: cannot create /optimizer", w->path);
    bool ok = attr_ll(g, "t", cv_optim_t(o));
    H5Gclose(g);
    if (!ok)
        return cv_fail(err, CV_HDF5, "%s: cannot write the attributes of /optimizer", w->path);
    if (cv_optim_m1(o))
        st = write_floats(w, "optimizer/m1", &n, 1, cv_optim_m1(o), err);
    if (st == CV_OK && cv_optim_m2(o))
        st = write_floats(w, "optimizer/m2", &n, 1, cv_optim_m2(o), err);
    return st;
}

/* /train attributes recipe_* of cv_recipe_state */
static const char *const best_names[4] = {"recipe_best_train_loss", "recipe_best_train_accuracy",
                                          "recipe_best_dev_loss", "recipe_best_dev_accuracy"};
static bool write_recipe(hid_t g, const struct cv_recipe_state *r)
{
    bool ok = attr_dbl(g, "recipe_lr", r->lr) &&
              attr_dbl(g, "recipe_plateau_best", r->plateau_best) &&
              attr_ll(g, "recipe_plateau_bad", r->plateau_bad) &&
              attr_dbl(g, "recipe_best", r->best) && attr_ll(g, "recipe_best_epoch", r->best_epoch);
    for (int i = 0; ok && i < 4; i++)
        ok = attr_dbl(g, best_names[i], r->best_last[i]);
    return ok && attr_dbl(g, "recipe_es_best", r->es_best) &&
           attr_ll(g, "recipe_es_bad", r->es_bad) && attr_ll(g, "recipe_stopped", r->stopped);
}

static cv_status write_train_state(struct h5w *w, const struct cv_train_state *ts,
                                   struct cv_error *err)
{
    hid_t g = H5Gcreate2(w->file, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return cv_fail(err, CV_HDF5, "%s: cannot create /train", w->path);
    bool ok = attr_ll(g, "epoch", ts->epoch) && attr_ll(g, "epoch_step", ts->epoch_step) &&
              attr_ll(g, "step", ts->step) && attr_ll(g, "world_size", ts->world_size) &&
              attr_ll(g, "data_rows", ts->data_rows) &&
              attr_ll(g, "data_features", ts->data_features) &&
              attr_str(g, "data_path", ts->data_path) &&
              attr_dbl(g, "epoch_loss_sum", ts->epoch_loss_sum) &&
              attr_dbl(g, "epoch_correct", ts->epoch_correct) &&
              attr_dbl(g, "epoch_count", ts->epoch_count);
    for (int i = 0; ok && i < 4; i++)
        ok = attr_dbl(g, last_names[i], ts->last[i]);
    ok = ok && write_recipe(g, &ts->recipe);
    H5Gclose(g);
    if (!ok)
        return cv_fail(err, CV_HDF5, "%s: cannot write the attributes of /train", w->path);
    return write_text(w, "metrics", ts->metrics, err);
}

static cv_status write_body(struct h5w *w, cv_model *m, cv_optim *o,
                            const struct cv_train_state *ts, struct cv_error *err)
{
    const struct cv_config *cfg = cv_model_config(m);
    long long hash = (long long)cv_hash_bytes(cv_model_params(m),
                                              cv_model_n_params(m) * sizeof(float));
    bool ok = attr_ll(w->file, "format_version", CV_CKPT_FORMAT_VERSION) &&
              attr_str(w->file, "caviar_version", CAVIAR_VERSION_STRING) &&
              attr_str(w->file, "kind", o ? "checkpoint" : "model") &&
              attr_ll(w->file, "n_params", (long long)cv_model_n_params(m)) &&
              attr_ll(w->file, "params_fnv1a", hash);
    if (!ok)
        return cv_fail(err, CV_HDF5, "%s: cannot write the attributes of /", w->path);
    cv_status st = write_text(w, "config", cfg->text, err);
    if (st == CV_OK)
        st = cv_model_each_param(m, view_writer, w, err);
    if (st == CV_OK)
        st = cv_model_each_state(m, view_writer, w, err);
    int nin = cv_model_inputs(m);
    if (st == CV_OK && cv_model_norm_mean(m))
        st = write_floats(w, "normalization/mean", &nin, 1, cv_model_norm_mean(m), err);
    if (st == CV_OK && cv_model_norm_std(m))
        st = write_floats(w, "normalization/std", &nin, 1, cv_model_norm_std(m), err);
    if (st == CV_OK && o)
        st = write_optimizer(w, o, err);
    if (st == CV_OK && ts)
        st = write_train_state(w, ts, err);
    return st;
}

/* Bytes the file will need, generously: arrays + optimizer moments + text
 * + per-dataset metadata.  The first size of the in-memory image. */
static size_t estimate_size(cv_model *m, cv_optim *o, const struct cv_train_state *ts)
{
    size_t floats = cv_model_n_params(m) + cv_model_n_state(m) + 2 * (size_t)cv_model_inputs(m);
    if (o)
        floats += 2 * cv_optim_size(o);
    size_t text = strlen(cv_model_config(m)->text ? cv_model_config(m)->text : "") +
                  (ts && ts->metrics ? strlen(ts->metrics) : 0);
    size_t bytes = 4 * floats + text;
    return bytes + bytes / 16 + (64u << 10);
}

/* The core driver's buffer, handed over to us when the file closes: an
 * image taken while the file is open (H5Fget_file_image) has its superblock
 * flags cleared without a new checksum (HDF5 1.10), so it cannot be read. */
struct image {
    char *buf;   /* the buffer at close, ours to free */
    size_t size; /* its allocated bytes */
};

static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
    struct image *im = udata;
    void *p = cv_calloc(size, 1);
    if (p && op == H5FD_FILE_IMAGE_OP_FILE_OPEN)
        im->size = size;
    return p;
}

static void *image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
                          void *udata)
{
    (void)op;
    (void)udata;
    return memcpy(dest, src, size);
}

static void *image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata)
{
    struct image *im = udata;
    void *p = cv_realloc(ptr, size, 1);
    if (p && op == H5FD_FILE_IMAGE_OP_FILE_RESIZE)
        im->size = size;
    return p;
}

static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
    struct image *im = udata;
    if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && !im->buf)
        im->buf = ptr; /* the finished file: keep it */
    else
        free(ptr);
    return 0;
}

static void *image_udata_copy(void *udata)
{
    return udata;
}

static herr_t image_udata_free(void *udata)
{
    (void)udata;
    return 0;
}

/* The file's length: the end-of-file address its superblock stores
 * (versions 2 and 3, which the V18 lower bound gives, with 8-byte
 * addresses); the core driver's buffer grows in whole increments.  The
 * whole buffer (a valid file too, with a zero tail) if the superblock is
 * not one of those. */
static size_t stored_eof(const char *buf, size_t size)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const unsigned char *b = (const unsigned char *)buf;
    if (size < 48 || memcmp(b, sig, 8) != 0 || (b[8] != 2 && b[8] != 3) || b[9] != 8)
        return size;
    uint64_t eof = 0;
    for (int i = 7; i >= 0; i--)
        eof = eof << 8 | b[28 + i]; /* little-endian, after base and extension addresses */
    return eof > 0 && eof <= size ? (size_t)eof : size;
}

/* The whole file built in memory (HDF5's core driver without a backing
 * store), so that no HDF5 call ever meets a full disk: HDF5 does not
 * recover from a failed write (the file stays half-open and the library's
 * shutdown crashes at exit).  `name` only labels the image; messages name
 * `path`.  On success im->buf holds im->size bytes of file. */
static cv_status build_image(const char *path, cv_model *m, cv_optim *o,
                             const struct cv_train_state *ts, const struct cv_ckpt_best *best,
                             struct image *im, struct cv_error *err)
{
    H5FD_file_image_callbacks_t cb = {image_malloc,
                                      image_memcpy,
                                      image_realloc,
                                      image_free,
                                      image_udata_copy,
                                      image_udata_free,
                                      im};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST); /* checksummed metadata */
    H5Pset_fapl_core(fapl, estimate_size(m, o, ts), 0);
    H5Pset_file_image_callbacks(fapl, &cb);
    char name[CV_PATH_MAX + 16];
    snprintf(name, sizeof(name), "%s.image", path);
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return cv_fail(err, CV_HDF5, "%s: cannot create the file in memory", path);
    struct h5w w = {f, path};
    cv_status st = write_body(&w, m, o, ts, err);
    if (st == CV_OK && best &&
        !(attr_ll(f, "best_epoch", best->epoch) && attr_str(f, "best_metric", best->metric) &&
          attr_dbl(f, "best_value", best->value)))
        st = cv_fail(err, CV_HDF5, "%s: cannot write the best-model attributes", path);
    if (H5Fclose(f) < 0 && st == CV_OK)
        st = cv_fail(err, CV_HDF5, "%s: cannot close the file in memory", path);
    if (st == CV_OK && !im->buf)
        st = cv_fail(err, CV_HDF5, "%s: HDF5 kept the file image", path);
    if (st == CV_OK)
        im->size = stored_eof(im->buf, im->size);
    return st;
}

/* Write the image to a fresh unique temporary next to path (created
 * exclusively, never through a link), its name into tmp. */
static cv_status write_image(const char *path, char *tmp, size_t tmp_size, const char *image,
                             size_t size, struct cv_error *err)
{
    int fd;
    cv_status st = cv__tmp_open(path, tmp, tmp_size, &fd, err);
    if (st != CV_OK)
        return st;
    size_t done = 0;
    int e = 0;
    while (done < size && !e) {
        ssize_t k = write(fd, image + done, size - done);
        if (k > 0)
            done += (size_t)k;
        else if (k < 0 && errno != EINTR)
            e = errno;
    }
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e)
        return CV_OK;
    unlink(tmp);
    return cv_fail(err, CV_IO, "%s: cannot write %zu bytes (%zu written): %s", path, size, done,
                   strerror(e));
}

static cv_status save(const char *path, cv_model *m, cv_optim *o, const struct cv_train_state *ts,
                      const struct cv_ckpt_best *best, struct cv_error *err)
{
    char tmp[CV_PATH_MAX + 128];
    struct image im = {NULL, 0};
    h5_quiet();
    cv_status st = build_image(path, m, o, ts, best, &im, err);
    if (st == CV_OK)
        st = write_image(path, tmp, sizeof(tmp), im.buf, im.size, err);
    free(im.buf);
    if (st == CV_OK)
        st = cv__commit_file(tmp, path, err);
    return st;
}

cv_status cv_ckpt_save(const char *path, cv_model *m, cv_optim *o, const struct cv_train_state *ts,
                       struct cv_error *err)
{
    return save(path, m, o, ts, NULL, err);
}

cv_status cv_ckpt_save_best(const char *path, cv_model *m, const struct cv_ckpt_best *best,
                            struct cv_error *err)
{
    return save(path, m, NULL, NULL, best, err);
}

/* ---- reading ---- */

struct h5r {
    hid_t file;
    const char *path;
};

/* Open attribute `name` of obj if it holds exactly one value (reading more
 * would overrun the caller's variable); -1 if not. */
static hid_t open_attr1(hid_t obj, const char *name)
{
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0 && n != 1) {
        H5Aclose(a);
        return -1;
    }
    return a;
}

static cv_status open_read(const char *path, struct h5r *r, struct cv_error *err)
{
    h5_quiet();
    r->path = path;
    if (access(path, R_OK) != 0)
        return cv_fail(err, CV_IO, "%s: cannot open: %s", path, strerror(errno));
    r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->file < 0)
        return cv_fail(err, CV_CORRUPT,
                       "%s: not a readable HDF5 file (truncated or corrupt metadata)", path);
    long long ver = 0;
    hid_t a = open_attr1(r->file, "format_version");
    herr_t rc = a < 0 ? -1 : H5Aread(a, H5T_NATIVE_LLONG, &ver);
    if (a >= 0)
        H5Aclose(a);
    if (rc < 0) {
        H5Fclose(r->file);
        return cv_fail(err, CV_FORMAT, "%s: not a caviar model or checkpoint (no format_version)",
                       path);
    }
    if (ver > CV_CKPT_FORMAT_VERSION || ver < 1) {
        H5Fclose(r->file);
        return cv_fail(err, CV_VERSION,
                       "%s: format version %lld is not supported (this caviar reads version %d)",
                       path, ver, CV_CKPT_FORMAT_VERSION);
    }
    return CV_OK;
}

static cv_status read_floats(struct h5r *r, const char *name, const int *dims, int ndims,
                             float *data, struct cv_error *err)
{
    hid_t ds = H5Dopen2(r->file, name, H5P_DEFAULT);
    if (ds < 0)
        return cv_fail(err, CV_SHAPE, "%s: no dataset /%s (the model architecture differs?)",
                       r->path, name);
    hid_t space = H5Dget_space(ds);
    hsize_t d[H5S_MAX_RANK] = {0};
    int nd = H5Sget_simple_extent_dims(space, d, NULL);
    H5Sclose(space);
    bool same = nd == ndims;
    for (int i = 0; same && i < nd; i++)
        same = d[i] == (hsize_t)dims[i];
    if (!same) {
        H5Dclose(ds);
        return cv_fail(err, CV_SHAPE, "%s: /%s has shape (%llu%s), the model expects (%d%s)",
                       r->path, name, (unsigned long long)d[0], nd > 1 ? ", ..." : "", dims[0],
                       ndims > 1 ? ", ..." : "");
    }
    herr_t rc = cv__h5_storage_ok(ds)
                    ? H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data)
                    : -1;
    H5Dclose(ds);
    if (rc < 0)
        return cv_fail(err, CV_CORRUPT, "%s: /%s failed its checksum or could not be read", r->path,
                       name);
    return CV_OK;
}

static cv_status read_text(struct h5r *r, const char *name, char **out, struct cv_error *err)
{
    *out = NULL;
    hid_t ds = H5Dopen2(r->file, name, H5P_DEFAULT);
    if (ds < 0)
        return cv_fail(err, CV_FORMAT, "%s: no /%s", r->path, name);
    hid_t space = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    /* one string (more would overrun p), in a heap HDF5 can read */
    if (n != 1 || !cv__h5_storage_ok(ds) || !cv__h5_vlen_ok(r->file, ds, r->path)) {
        H5Dclose(ds);
        return cv_fail(err, CV_CORRUPT, "%s: /%s is not one readable string (corrupt file)",
                       r->path, name);
    }
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8); /* HDF5 does not convert between ASCII and UTF-8 */
    char *p = NULL;
    herr_t rc = H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p);
    H5Tclose(t);
    H5Dclose(ds);
    if (rc < 0)
        return cv_fail(err, CV_CORRUPT, "%s: /%s could not be read", r->path, name);
    *out = cv_strdup(p ? p : ""); /* HDF5 may hand back NULL for an empty string */
    if (p)
        H5free_memory(p);
    return *out ? CV_OK : cv_fail(err, CV_NOMEM, "out of memory");
}

static long long get_attr_ll(hid_t obj, const char *name, long long def)
{
    long long v = def;
    if (H5Aexists(obj, name) <= 0)
        return def;
    hid_t a = open_attr1(obj, name);
    if (a < 0 || H5Aread(a, H5T_NATIVE_LLONG, &v) < 0)
        v = def;
    if (a >= 0)
        H5Aclose(a);
    return v;
}

static double get_attr_dbl(hid_t obj, const char *name, double dflt)
{
    double v = dflt;
    if (H5Aexists(obj, name) <= 0)
        return dflt;
    hid_t a = open_attr1(obj, name);
    if (a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0)
        v = dflt;
    if (a >= 0)
        H5Aclose(a);
    return v;
}

static void get_attr_str(hid_t obj, const char *name, char *buf, size_t size)
{
    buf[0] = '\0';
    if (H5Aexists(obj, name) <= 0)
        return;
    hid_t a = open_attr1(obj, name);
    if (a < 0)
        return;
    hid_t t = H5Aget_type(a);
    size_t n = H5Tget_size(t);
    /* one fixed-length string (a variable-length one would be a pointer) */
    bool fixed = H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0;
    char *tmp = fixed && n < 4096 ? cv_calloc(1, n + 1) : NULL;
    if (tmp && H5Aread(a, t, tmp) >= 0)
        snprintf(buf, size, "%s", tmp);
    free(tmp);
    H5Tclose(t);
    H5Aclose(a);
}

cv_status cv_ckpt_read_config(const char *path, const char *const *overrides, int n_overrides,
                              struct cv_config **cfg, struct cv_error *err)
{
    struct h5r r;
    char *text = NULL, source[CV_PATH_MAX + 16];
    *cfg = NULL;
    cv_status st = open_read(path, &r, err);
    if (st != CV_OK)
        return st;
    st = read_text(&r, "config", &text, err);
    H5Fclose(r.file);
    if (st != CV_OK)
        return st;
    snprintf(source, sizeof(source), "%s:/config", path);
    st = cv_config_parse(text, source, overrides, n_overrides, cfg, err);
    free(text);
    return st;
}

static cv_status view_reader(void *arg, const char *path, const int *dims, int ndims, float *data,
                             size_t count, struct cv_error *err)
{
    (void)count;
    return read_floats(arg, path, dims, ndims, data, err);
}

static cv_status read_norm(struct h5r *r, cv_model *m, struct cv_error *err)
{
    if (H5Lexists(r->file, "normalization", H5P_DEFAULT) <= 0)
        return CV_OK;
    int n = cv_model_inputs(m);
    float *mean = cv_calloc((size_t)n, sizeof(float)), *sd = cv_calloc((size_t)n, sizeof(float));
    cv_status st = (!mean || !sd) ? cv_fail(err, CV_NOMEM, "out of memory") : CV_OK;
    if (st == CV_OK)
        st = read_floats(r, "normalization/mean", &n, 1, mean, err);
    if (st == CV_OK)
        st = read_floats(r, "normalization/std", &n, 1, sd, err);
    if (st == CV_OK)
        st = cv_model_set_norm(m, mean, sd, err);
    free(mean);
    free(sd);
    return st;
}

static cv_status read_optimizer(struct h5r *r, cv_optim *o, struct cv_error *err)
{
    int n = (int)cv_optim_size(o);
    if (H5Lexists(r->file, "optimizer", H5P_DEFAULT) <= 0)
        return cv_fail(err, CV_FORMAT, "%s: no optimizer state (a model file, not a checkpoint)",
                       r->path);
    hid_t g = H5Gopen2(r->file, "optimizer", H5P_DEFAULT);
    cv_optim_set_t(o, get_attr_ll(g, "t", 0));
    H5Gclose(g);
    cv_status st = CV_OK;
    if (cv_optim_m1(o))
        st = read_floats(r, "optimizer/m1", &n, 1, cv_optim_m1(o), err);
    if (st == CV_OK && cv_optim_m2(o))
        st = read_floats(r, "optimizer/m2", &n, 1, cv_optim_m2(o), err);
    return st;
}

static void read_recipe(hid_t g, struct cv_recipe_state *r)
{
    r->lr = get_attr_dbl(g, "recipe_lr", 0);
    r->plateau_best = get_attr_dbl(g, "recipe_plateau_best", NAN);
    r->plateau_bad = get_attr_ll(g, "recipe_plateau_bad", 0);
    r->best = get_attr_dbl(g, "recipe_best", NAN);
    r->best_epoch = get_attr_ll(g, "recipe_best_epoch", 0);
    for (int i = 0; i < 4; i++)
        r->best_last[i] = get_attr_dbl(g, best_names[i], NAN);
    r->es_best = get_attr_dbl(g, "recipe_es_best", NAN);
    r->es_bad = get_attr_ll(g, "recipe_es_bad", 0);
    r->stopped = get_attr_ll(g, "recipe_stopped", 0);
}

static cv_status read_train_state(struct h5r *r, struct cv_train_state *ts, struct cv_error *err)
{
    memset(ts, 0, sizeof(*ts));
    if (H5Lexists(r->file, "train", H5P_DEFAULT) <= 0)
        return cv_fail(err, CV_FORMAT, "%s: no /train state (a model file, not a checkpoint)",
                       r->path);
    hid_t g = H5Gopen2(r->file, "train", H5P_DEFAULT);
    ts->epoch = get_attr_ll(g, "epoch", 0);
    ts->epoch_step = get_attr_ll(g, "epoch_step", 0);
    ts->step = get_attr_ll(g, "step", 0);
    ts->world_size = (int)get_attr_ll(g, "world_size", 0);
    ts->data_rows = get_attr_ll(g, "data_rows", 0);
    ts->data_features = (int)get_attr_ll(g, "data_features", 0);
    get_attr_str(g, "data_path", ts->data_path, sizeof(ts->data_path));
    ts->epoch_loss_sum = get_attr_dbl(g, "epoch_loss_sum", 0);
    ts->epoch_correct = get_attr_dbl(g, "epoch_correct", 0);
    ts->epoch_count = get_attr_dbl(g, "epoch_count", 0);
    for (int i = 0; i < 4; i++)
        ts->last[i] = get_attr_dbl(g, last_names[i], NAN);
    read_recipe(g, &ts->recipe);
    H5Gclose(g);
    return read_text(r, "metrics", &ts->metrics, err);
}

static cv_status check_params_hash(struct h5r *r, cv_model *m, struct cv_error *err)
{
    long long want = get_attr_ll(r->file, "params_fnv1a", 0);
    long long got = (long long)cv_hash_bytes(cv_model_params(m),
                                             cv_model_n_params(m) * sizeof(float));
    if (want != got)
        return cv_fail(err, CV_CORRUPT, "%s: parameter checksum mismatch (stored %llx, read %llx)",
                       r->path, (unsigned long long)want, (unsigned long long)got);
    return CV_OK;
}

cv_status cv_ckpt_load(const char *path, cv_model *m, cv_optim *o, struct cv_train_state *ts,
                       struct cv_error *err)
{
    struct h5r r;
    cv_status st = open_read(path, &r, err);
    if (st != CV_OK)
        return st;
    st = cv_model_each_param(m, view_reader, &r, err);
    if (st == CV_OK)
        st = check_params_hash(&r, m, err);
    if (st == CV_OK)
        st = cv_model_each_state(m, view_reader, &r, err);
    if (st == CV_OK)
        st = read_norm(&r, m, err);
    if (st == CV_OK && o)
        st = read_optimizer(&r, o, err);
    if (st == CV_OK && ts)
        st = read_train_state(&r, ts, err);
    H5Fclose(r.file);
    return st;
}

cv_status cv_ckpt_open_model(const char *path, int max_batch, struct cv_config **cfg, cv_model **m,
                             struct cv_error *err)
{
    *m = NULL;
    cv_status st = cv_ckpt_read_config(path, NULL, 0, cfg, err);
    if (st == CV_OK)
        st = cv_model_create(*cfg, max_batch, m, err);
    if (st == CV_OK)
        st = cv_ckpt_load(path, *m, NULL, NULL, err);
    if (st != CV_OK) {
        cv_model_free(*m);
        cv_config_free(*cfg);
        *m = NULL;
        *cfg = NULL;
    }
    return st;
}

#define VERIFY_NOMEM 2 /* verify_one could not allocate its buffer */

static herr_t verify_one(hid_t loc, const char *name, const H5O_info_t *info, void *arg)
{
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0)
        return -1;
    hid_t t = H5Dget_type(ds), space = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    herr_t rc = cv__h5_storage_ok(ds) ? 0 : -1;
    bool nomem = false;
    if (rc == 0 && H5Tget_class(t) == H5T_FLOAT && n > 0) {
        float *buf = cv_calloc((size_t)n, sizeof(float));
        nomem = !buf;
        rc = buf ? H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
        free(buf);
    }
    if (rc < 0)
        snprintf(arg, CV_PATH_MAX, "%s", name);
    H5Sclose(space);
    H5Tclose(t);
    H5Dclose(ds);
    return rc >= 0 ? 0 : nomem ? VERIFY_NOMEM : 1;
}

cv_status cv_ckpt_verify(const char *path, struct cv_error *err)
{
    struct h5r r;
    char bad[CV_PATH_MAX] = "";
    cv_status st = open_read(path, &r, err);
    if (st != CV_OK)
        return st;
    herr_t rc = H5Ovisit2(r.file, H5_INDEX_NAME, H5_ITER_NATIVE, verify_one, bad, H5O_INFO_BASIC);
    H5Fclose(r.file);
    if (rc == VERIFY_NOMEM)
        return cv_fail(err, CV_NOMEM, "%s: out of memory to read /%s", path, bad);
    if (rc != 0)
        return cv_fail(err, CV_CORRUPT, "%s: %s%s failed its checksum or could not be read", path,
                       bad[0] ? "/" : "", bad[0] ? bad : "metadata");
    return CV_OK;
}

cv_status cv_ckpt_info(const char *path, struct cv_ckpt_info *info, struct cv_error *err)
{
    struct h5r r;
    memset(info, 0, sizeof(*info));
    cv_status st = open_read(path, &r, err);
    if (st != CV_OK)
        return st;
    info->format_version = (int)get_attr_ll(r.file, "format_version", 0);
    get_attr_str(r.file, "caviar_version", info->caviar_version, sizeof(info->caviar_version));
    get_attr_str(r.file, "kind", info->kind, sizeof(info->kind));
    info->n_params = get_attr_ll(r.file, "n_params", 0);
    info->params_hash = (unsigned long long)get_attr_ll(r.file, "params_fnv1a", 0);
    if (H5Lexists(r.file, "optimizer", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(r.file, "optimizer", H5P_DEFAULT);
        info->optimizer_t = get_attr_ll(g, "t", 0);
        H5Gclose(g);
    }
    if (H5Lexists(r.file, "train", H5P_DEFAULT) > 0)
        st = read_train_state(&r, &info->ts, err);
    H5Fclose(r.file);
    return st;
}
