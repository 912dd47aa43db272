/*
 * text_h5.c - sequence datasets written by `caviar import text`, and the
 * vocabulary attributes (vocab, eol_id) that datasets and model files carry
 * (docs/dataset-format.md, docs/checkpoint-format.md).
 *
 * Tokens are stored as fixed-length UTF-8 strings (CV_TOKEN_MAX bytes, NUL
 * padded): no global heap for a corrupt file to send libhdf5 astray (see
 * guard_h5.c).  Variable-length string arrays, as h5py writes a Python list
 * of str, are read as well.
 */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/config.h"
#include "atomic_file.h"
#include "h5_internal.h"
#include "text_internal.h"
#include "util.h"
#include "vocab_h5.h"

/* ---- writing ---- */

static herr_t attr_int(hid_t obj, const char *name, int v)
{
    return cv__h5_write_attr(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, 1, &v);
}

static hid_t token_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, CV_TOKEN_MAX);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

cv_status cv__vocab_write_attrs(hid_t obj, const struct cv_vocab *v, const char *path,
                                struct cv_error *err)
{
    char *buf = cv_calloc((size_t)v->n, CV_TOKEN_MAX);
    if (!buf)
        return cv_fail(err, CV_NOMEM, "%s: out of memory for %d tokens", path, v->n);
    for (int i = 0; i < v->n; i++)
        strncpy(buf + (size_t)i * CV_TOKEN_MAX, v->tokens[i], CV_TOKEN_MAX);
    hid_t t = token_type();
    hsize_t n = (hsize_t)v->n;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(obj, "vocab", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, buf);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    free(buf);
    if (rc >= 0 && v->eol >= 0)
        rc = attr_int(obj, "eol_id", v->eol);
    return rc < 0 ? cv_fail(err, CV_IO, "%s: cannot write the vocabulary (disk full?)", path)
                  : CV_OK;
}

static cv_status write_split(hid_t f, const struct cv__seq_split *s, const struct cv_vocab *v,
                             const char *path, struct cv_error *err)
{
    bool root = !strcmp(s->group, "/");
    hid_t g = root ? H5Gopen2(f, "/", H5P_DEFAULT)
                   : H5Gcreate2(f, s->group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return cv_fail(err, CV_IO, "%s: cannot create group %s", path, s->group);
    hsize_t d[2] = {(hsize_t)s->n_rows, (hsize_t)s->steps};
    herr_t rc = cv__h5_write_dataset(g, "X", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, d, s->x);
    if (rc >= 0)
        rc = cv__h5_write_dataset(g, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, d, s->y);
    if (rc >= 0 && s->lengths)
        rc = cv__h5_write_dataset(g, "lengths", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, d, s->lengths);
    hid_t x = rc >= 0 ? H5Dopen2(g, "X", H5P_DEFAULT) : -1;
    if (x < 0 || attr_int(x, "vocab_size", v->n) < 0 || attr_int(g, "classes", v->n) < 0)
        rc = -1;
    cv_status st = rc < 0 ? cv_fail(err, CV_IO, "%s: write failed (disk full?)", path)
                          : cv__vocab_write_attrs(g, v, path, err);
    if (x >= 0)
        H5Dclose(x);
    H5Gclose(g);
    return st;
}

cv_status cv__seq_write(const char *path, const struct cv__seq_split *s, int n_splits,
                        const struct cv_vocab *v, struct cv_error *err)
{
    char tmp[CV_PATH_MAX + 128];
    hid_t f;
    cv_status st = cv__h5_create_tmp(path, tmp, sizeof(tmp), H5P_DEFAULT, &f, err);
    if (st != CV_OK)
        return st;
    for (int i = 0; i < n_splits && st == CV_OK; i++)
        st = write_split(f, &s[i], v, path, err);
    if (H5Fclose(f) < 0 && st == CV_OK)
        st = cv_fail(err, CV_IO, "%s: write failed (disk full?)", path);
    if (st != CV_OK) {
        unlink(tmp);
        return st;
    }
    return cv__commit_file(tmp, path, err);
}

/* ---- reading ---- */

/* Variable-length strings (as h5py writes a list of str) into buf. */
static bool read_vlen(hid_t a, hid_t mt, hsize_t n, char *buf)
{
    const size_t w = CV_TOKEN_MAX + 1;
    char **raw = cv_calloc(n, sizeof(char *));
    hid_t sp = H5Aget_space(a);
    H5Tset_size(mt, H5T_VARIABLE);
    bool ok = raw && sp >= 0 && H5Aread(a, mt, raw) >= 0;
    bool read = ok;
    for (hsize_t i = 0; ok && i < n; i++) {
        ok = raw[i] && strlen(raw[i]) < w;
        if (ok)
            strcpy(buf + i * w, raw[i]);
    }
    if (read)
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
    if (sp >= 0)
        H5Sclose(sp);
    free(raw);
    return ok;
}

/* The tokens of attribute a (n entries) as strings in buf (n x
 * CV_TOKEN_MAX + 1 bytes, NUL-terminated each); false if the type is not a
 * string or a token is longer. */
static bool read_tokens(hid_t a, hsize_t n, char *buf)
{
    hid_t ft = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    bool ok = ft >= 0 && H5Tget_class(ft) == H5T_STRING;
    H5Tset_cset(mt, ok ? H5Tget_cset(ft) : H5T_CSET_ASCII); /* HDF5 converts neither way */
    if (ok && H5Tis_variable_str(ft) > 0) {
        ok = read_vlen(a, mt, n, buf);
    } else if (ok) {
        ok = H5Tget_size(ft) <= CV_TOKEN_MAX;
        H5Tset_size(mt, CV_TOKEN_MAX + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        ok = ok && H5Aread(a, mt, buf) >= 0;
    }
    if (ft >= 0)
        H5Tclose(ft);
    H5Tclose(mt);
    return ok;
}

/* Pack n tokens (w bytes apart in buf) into v->tokens: the pointer array
 * then the strings, one block. */
static cv_status pack(const char *buf, int n, struct cv_vocab *v, const char *spec,
                      struct cv_error *err)
{
    const size_t w = CV_TOKEN_MAX + 1;
    v->tokens = cv_calloc((size_t)n, sizeof(char *) + w);
    if (!v->tokens)
        return cv_fail(err, CV_NOMEM, "%s: out of memory for a vocabulary of %d tokens", spec, n);
    char *p = (char *)(v->tokens + n);
    for (int i = 0; i < n; i++) {
        v->tokens[i] = memcpy(p + (size_t)i * w, buf + (size_t)i * w, w);
        uint32_t c;
        size_t len = strlen(v->tokens[i]);
        if (len == 0 || cv__utf8_decode((const unsigned char *)v->tokens[i], len, &c) != (int)len)
            return cv_fail(err, CV_FORMAT, "%s: vocab token %d is not one UTF-8 character", spec,
                           i);
    }
    v->n = n;
    return CV_OK;
}

static cv_status read_eol(hid_t obj, struct cv_vocab *v, const char *spec, struct cv_error *err)
{
    v->eol = -1;
    if (H5Aexists(obj, "eol_id") <= 0)
        return CV_OK;
    hid_t a = H5Aopen(obj, "eol_id", H5P_DEFAULT), sp = a >= 0 ? H5Aget_space(a) : -1;
    int eol = -1;
    bool ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1 &&
              H5Aread(a, H5T_NATIVE_INT, &eol) >= 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    if (!ok || eol < 0 || eol >= v->n)
        return cv_fail(err, CV_FORMAT, "%s: attribute eol_id (%d) is not a token id in [0, %d)",
                       spec, eol, v->n);
    v->eol = eol;
    return CV_OK;
}

cv_status cv__vocab_read_attrs(hid_t obj, const char *spec, struct cv_vocab *v, bool *found,
                               struct cv_error *err)
{
    *v = (struct cv_vocab){0, NULL, -1};
    *found = H5Aexists(obj, "vocab") > 0;
    if (!*found)
        return CV_OK;
    hid_t a = H5Aopen(obj, "vocab", H5P_DEFAULT), sp = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    char *buf = n > 0 && n <= (1 << 21) ? cv_calloc((size_t)n, CV_TOKEN_MAX + 1) : NULL;
    cv_status st = CV_OK;
    if (n <= 0 || n > (1 << 21) || H5Sget_simple_extent_ndims(sp) != 1)
        st = cv_fail(err, CV_FORMAT, "%s: attribute vocab is not a list of 1 to 2^21 tokens", spec);
    else if (!buf)
        st = cv_fail(err, CV_NOMEM, "%s: out of memory for a vocabulary of %lld tokens", spec,
                     (long long)n);
    else if (!read_tokens(a, (hsize_t)n, buf))
        st = cv_fail(err, CV_FORMAT, "%s: attribute vocab is not an array of UTF-8 characters",
                     spec);
    if (st == CV_OK)
        st = pack(buf, (int)n, v, spec, err);
    if (st == CV_OK)
        st = read_eol(obj, v, spec, err);
    free(buf);
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    if (st != CV_OK)
        cv_vocab_deinit(v);
    return st;
}

cv_status cv_vocab_read(const char *spec, struct cv_vocab *v, bool *found, struct cv_error *err)
{
    char path[CV_PATH_MAX];
    const char *hash = strrchr(spec, '#');
    size_t len = hash ? (size_t)(hash - spec) : strlen(spec);
    *v = (struct cv_vocab){0, NULL, -1};
    *found = false;
    if (len >= sizeof(path))
        return cv_fail(err, CV_IO, "%s: path too long", spec);
    memcpy(path, spec, len);
    path[len] = '\0';
    cv_status checked = cv__h5_check_dataset(spec, 0, 0, err);
    if (checked != CV_OK)
        return checked;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (access(path, R_OK) != 0)
        return cv_fail(err, CV_IO, "%s: cannot open", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return cv_fail(err, CV_FORMAT, "%s: not an HDF5 file (or truncated)", path);
    const char *group = hash ? hash + 1 : "/";
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    cv_status st = g < 0 ? cv_fail(err, CV_FORMAT, "%s: no group '%s'", path, group)
                         : cv__vocab_read_attrs(g, spec, v, found, err);
    if (st == CV_OK && !*found && hash) /* a dev split may rely on the root's */
        st = cv__vocab_read_attrs(f, spec, v, found, err);
    if (g >= 0)
        H5Gclose(g);
    H5Fclose(f);
    return st;
}
