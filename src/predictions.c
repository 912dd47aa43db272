/*
 * predictions.c - prediction files: argmax, the CSV writer, the atomic
 * replace shared with the HDF5 writer in predictions_h5.c, and gathering
 * every rank's rows on rank 0 to write them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/evaluate.h"
#include "caviar/predictions.h"
#include "atomic_file.h"
#include "util.h"

/* A name as one CSV field: quoted (quotes doubled) when it needs it. */
static void put_name(FILE *f, const char *s)
{
    if (!s[strcspn(s, ",\"\r\n")]) {
        fprintf(f, ",%s", s);
        return;
    }
    fputs(",\"", f);
    for (; *s; s++)
        fputs(*s == '"' ? "\"\"" : (char[2]){*s, 0}, f);
    fputc('"', f);
}

/* Predictions of a row: one, or one per step (pred: p->steps of them, -1
 * past the row's length). */
static int row_preds(const struct cv_pred_out *p)
{
    return p->steps > 0 ? p->steps : 1;
}

static int step_outputs(const struct cv_pred_out *p)
{
    return p->k / row_preds(p);
}

static void csv_head(FILE *f, const struct cv_pred_out *p)
{
    fprintf(f, "row%s,predicted%s%s", p->steps ? ",step" : "", p->names ? ",predicted_name" : "",
            p->label ? ",label" : "");
    for (int j = 0; j < step_outputs(p); j++)
        fprintf(f, ",p%d", j);
    fputc('\n', f);
}

/* One line per row, or per valid step of a per-step model. */
static void csv_rows(FILE *f, const struct cv_pred_out *p, const int *pred)
{
    int t = row_preds(p), v = step_outputs(p);
    csv_head(f, p);
    for (long long i = 0; i < p->n; i++)
        for (int s = 0; s < t && pred[i * t + s] >= 0; s++) {
            int c = pred[i * t + s];
            if (p->steps)
                fprintf(f, "%lld,%d,%d", i, s, c);
            else
                fprintf(f, "%lld,%d", i, c);
            if (p->names) /* a single output predicts 0 or 1: no name for 1 */
                put_name(f, c < v ? p->names[c] : "");
            if (p->label)
                fprintf(f, ",%d", (int)p->label[i]);
            const float *q = p->probs + (size_t)i * (size_t)p->k + (size_t)s * (size_t)v;
            for (int j = 0; j < v; j++)
                fprintf(f, ",%.7g", q[j]);
            fputc('\n', f);
        }
}

static cv_status write_csv(const char *path, char *tmp, size_t size, const struct cv_pred_out *p,
                           const int *pred, struct cv_error *err)
{
    int fd;
    cv_status st = cv__tmp_open(path, tmp, size, &fd, err);
    if (st != CV_OK)
        return st;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return cv_fail(err, CV_NOMEM, "%s: out of memory", tmp);
    }
    csv_rows(f, p, pred);
    bool ok = fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    return ok ? CV_OK : cv_fail(err, CV_IO, "%s: write failed: %s", tmp, strerror(errno));
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

cv_status cv_predictions_write(const char *path, const struct cv_pred_out *p, struct cv_error *err)
{
    bool h5 = ends_with(path, ".h5") || ends_with(path, ".hdf5");
    if (!h5 && !ends_with(path, ".csv"))
        return cv_fail(err, CV_USAGE, "-o %s: expected a file name ending in .h5 or .csv", path);
    int t = row_preds(p), v = step_outputs(p);
    int *pred = cv_calloc((size_t)(p->n ? p->n : 1) * (size_t)t, sizeof(int));
    if (!pred)
        return cv_fail(err, CV_NOMEM, "out of memory");
    for (long long i = 0; i < p->n; i++)
        for (int s = 0; s < t; s++) {
            bool valid = !p->steps || !p->lengths || s < p->lengths[i];
            const float *q = p->probs + (size_t)i * (size_t)p->k + (size_t)s * (size_t)v;
            pred[i * t + s] = valid ? cv_predicted_class(q, v) : -1;
        }
    char tmp[4096] = "";
    cv_status st = h5 ? cv__predictions_write_h5(path, tmp, sizeof(tmp), p, pred, err)
                      : write_csv(path, tmp, sizeof(tmp), p, pred, err);
    free(pred);
    if (st == CV_OK)
        return cv__commit_file(tmp, path, err);
    if (tmp[0])
        unlink(tmp);
    return st;
}

#define GATHER_MAX ((size_t)1 << 30)

/* Rank 0's buffers for everything: probabilities; labels and lengths go
 * as floats (exact below 2^24). */
struct gathered {
    float *probs, *floats, *mine;
    int32_t *ids, *lengths;
};

static cv_status gather_alloc(const struct cv_pred_input *in, int k, bool root, struct gathered *g,
                              struct cv_error *err)
{
    size_t n = (size_t)(in->total ? in->total : 1);
    /* the gather takes at most 2^30 floats a rank and places them with int
     * offsets; checked on the total, which every rank knows */
    if ((size_t)in->total * (size_t)k > GATHER_MAX)
        return cv_fail(
            err, CV_INVAL,
            "%s: %lld rows x %d outputs: more than %zu predictions to gather in one file", in->spec,
            in->total, k, GATHER_MAX);
    if (root && !(g->probs = cv_calloc(n * (size_t)k, sizeof(float))))
        return cv_fail(err, CV_NOMEM, "out of memory for %lld predictions", in->total);
    g->mine = cv_calloc((size_t)(in->n ? in->n : 1), sizeof(float));
    g->floats = root ? cv_calloc(n, sizeof(float)) : NULL;
    g->ids = root && in->classes > 0 ? cv_calloc(n, sizeof(int32_t)) : NULL;
    g->lengths = root && in->lengths ? cv_calloc(n, sizeof(int32_t)) : NULL;
    if (!g->mine ||
        (root && (!g->floats || (in->classes > 0 && !g->ids) || (in->lengths && !g->lengths))))
        return cv_fail(err, CV_NOMEM, "out of memory for %lld labels", in->total);
    return CV_OK;
}

/* Every rank's v (in->n) into out (in->total) on rank 0, when v is there. */
static cv_status gather_ints(const cv_comm *comm, const struct cv_pred_input *in, const int32_t *v,
                             struct gathered *g, int32_t *out, struct cv_error *err)
{
    if (!v)
        return CV_OK;
    for (long long i = 0; i < in->n; i++)
        g->mine[i] = (float)v[i];
    cv_status st = cv_comm_gather_floats(comm, g->mine, (size_t)in->n, g->floats, 0, err);
    for (long long i = 0; out && st == CV_OK && i < in->total; i++)
        out[i] = (int32_t)g->floats[i];
    return st;
}

cv_status cv_predictions_gather_write(const cv_comm *comm, const char *path,
                                      const struct cv_pred_input *in, const float *probs, int k,
                                      int steps, const char *const *names, struct cv_error *err)
{
    struct gathered g = {0};
    bool root = cv_comm_rank(comm) == 0;
    cv_status st = cv_comm_agree(comm, gather_alloc(in, k, root, &g, err), err);
    if (st == CV_OK)
        st = cv_comm_gather_floats(comm, probs, (size_t)in->n * (size_t)k, g.probs, 0, err);
    if (st == CV_OK)
        st = gather_ints(comm, in, in->classes > 0 ? in->label : NULL, &g, g.ids, err);
    if (st == CV_OK)
        st = gather_ints(comm, in, in->lengths, &g, g.lengths, err);
    struct cv_pred_out out = {g.probs, in->total, k, g.ids, names, steps, g.lengths};
    if (st == CV_OK && root)
        st = cv_predictions_write(path, &out, err);
    st = cv_comm_agree(comm, st, err);
    free(g.probs);
    free(g.floats);
    free(g.mine);
    free(g.ids);
    free(g.lengths);
    return st;
}
