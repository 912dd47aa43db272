/*
 * checkpoint_read.c - reading and verifying the model/checkpoint HDF5
 * format that checkpoint_h5.c writes (docs/checkpoint-format.md).  Every
 * read is bounded by the shape caviar expects; checksums are checked by
 * HDF5 (Fletcher32 per chunk, metadata checksums) and by the parameters'
 * FNV-1a hash.
 */
#define _GNU_SOURCE
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
#include "checkpoint_internal.h"
#include "h5_internal.h"
#include "util.h"
#include "vocab_h5.h"

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
    cv_status st = cv__h5_check_ckpt(path, err);
    if (st != CV_OK)
        return st;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are reported by caviar */
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

/* Root attributes vocab and eol_id of a text model, if there. */
static cv_status read_tokens(struct h5r *r, cv_model *m, struct cv_error *err)
{
    struct cv_vocab v;
    bool found;
    cv_status st = cv__vocab_read_attrs(r->file, r->path, &v, &found, err);
    if (st == CV_OK && found)
        st = cv_model_set_tokens(m, &v, err);
    cv_vocab_deinit(&v);
    return st;
}

/* Root attribute class_names, when it names every class. */
static cv_status read_names(struct h5r *r, cv_model *m, struct cv_error *err)
{
    char **names;
    int n = cv_model_classes(m);
    if (!cv__h5_read_names(r->file, n, &names))
        return cv_fail(err, CV_NOMEM, "%s: out of memory for class names", r->path);
    cv_status st = names ? cv_model_set_class_names(m, (const char *const *)names, n, err) : CV_OK;
    free(names);
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
        r->best_last[i] = get_attr_dbl(g, cv__ckpt_best_names[i], NAN);
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
        ts->last[i] = get_attr_dbl(g, cv__ckpt_last_names[i], NAN);
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
    if (st == CV_OK)
        st = read_tokens(&r, m, err);
    if (st == CV_OK)
        st = read_names(&r, m, err);
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
