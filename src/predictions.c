/*
 * predictions.c - prediction files: argmax, the CSV writer and the atomic
 * replace shared with the HDF5 writer in predictions_h5.c.
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

static cv_status write_csv(const char *path, char *tmp, size_t size, const float *probs,
                           const int *pred, long long n, int k, struct cv_error *err)
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
    fprintf(f, "row,predicted");
    for (int j = 0; j < k; j++)
        fprintf(f, ",p%d", j);
    fputc('\n', f);
    for (long long i = 0; i < n; i++) {
        fprintf(f, "%lld,%d", i, pred[i]);
        for (int j = 0; j < k; j++)
            fprintf(f, ",%.7g", probs[(size_t)i * k + j]);
        fputc('\n', f);
    }
    bool ok = fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    return ok ? CV_OK : cv_fail(err, CV_IO, "%s: write failed: %s", tmp, strerror(errno));
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

cv_status cv_predictions_write(const char *path, const float *probs, long long n, int k,
                               struct cv_error *err)
{
    bool h5 = ends_with(path, ".h5") || ends_with(path, ".hdf5");
    if (!h5 && !ends_with(path, ".csv"))
        return cv_fail(err, CV_USAGE, "-o %s: expected a file name ending in .h5 or .csv", path);
    int *pred = cv_calloc((size_t)(n ? n : 1), sizeof(int));
    if (!pred)
        return cv_fail(err, CV_NOMEM, "out of memory");
    for (long long i = 0; i < n; i++)
        pred[i] = cv_predicted_class(probs + (size_t)i * k, k);
    char tmp[4096] = "";
    cv_status st = h5 ? cv__predictions_write_h5(path, tmp, sizeof(tmp), probs, pred, n, k, err)
                      : write_csv(path, tmp, sizeof(tmp), probs, pred, n, k, err);
    free(pred);
    if (st == CV_OK)
        return cv__commit_file(tmp, path, err);
    if (tmp[0])
        unlink(tmp);
    return st;
}
