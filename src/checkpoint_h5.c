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
 * This file writes; checkpoint_read.c reads and verifies.
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
#include "checkpoint_internal.h"
#include "h5_internal.h"
#include "util.h"
#include "vocab_h5.h"

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
    return cv__h5_write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, 1, &v) >= 0;
}

/* /train attributes of cv_train_state.last */
const char *const cv__ckpt_last_names[4] = {"last_train_loss", "last_train_accuracy",
                                            "last_dev_loss", "last_dev_accuracy"};

static bool attr_dbl(hid_t obj, const char *name, double v)
{
    return cv__h5_write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &v) >= 0;
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
const char *const cv__ckpt_best_names[4] = {"recipe_best_train_loss", "recipe_best_train_accuracy",
                                            "recipe_best_dev_loss", "recipe_best_dev_accuracy"};
static bool write_recipe(hid_t g, const struct cv_recipe_state *r)
{
    bool ok = attr_dbl(g, "recipe_lr", r->lr) &&
              attr_dbl(g, "recipe_plateau_best", r->plateau_best) &&
              attr_ll(g, "recipe_plateau_bad", r->plateau_bad) &&
              attr_dbl(g, "recipe_best", r->best) && attr_ll(g, "recipe_best_epoch", r->best_epoch);
    for (int i = 0; ok && i < 4; i++)
        ok = attr_dbl(g, cv__ckpt_best_names[i], r->best_last[i]);
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
        ok = attr_dbl(g, cv__ckpt_last_names[i], ts->last[i]);
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
    if (st == CV_OK && cv_model_tokens(m)) /* a text model's vocabulary, for sampling */
        st = cv__vocab_write_attrs(w->file, cv_model_tokens(m), w->path, err);
    int n_names;
    const char *const *names = cv_model_class_names(m, &n_names);
    if (st == CV_OK && names) /* for predict */
        cv__h5_write_names(w->file, names, n_names);
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
