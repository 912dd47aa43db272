/*
 * import.c - what IDX, CSV and image import share: the seeded row shuffle, the
 * dev split, class names, and handing the splits to cv_dataset_write.
 */
#include <stdlib.h>
#include <string.h>

#include "caviar/dataset.h"
#include "import_internal.h"
#include "util.h"

/* Permute rows of x (n, row_bytes) and y (n, y_bytes) in place. */
cv_status cv__import_shuffle(void *x, size_t row_bytes, void *y, size_t y_bytes, long long n,
                             uint64_t seed, struct cv_error *err)
{
    if (n < 2) /* nothing to permute; a row may be huge when there are none */
        return CV_OK;
    unsigned char *tx = cv_calloc(1, row_bytes), *ty = cv_calloc(1, y_bytes);
    if (!tx || !ty) {
        free(tx);
        free(ty);
        return cv_fail(err, CV_NOMEM, "out of memory");
    }
    struct cv_rng rng;
    cv_rng_seed(&rng, seed, CV_RNG_SHUFFLE, 0x1dull, 0);
    unsigned char *bx = x, *by = y;
    for (long long i = n - 1; i > 0; i--) { /* Fisher-Yates */
        long long j = (long long)cv_rng_below(&rng, (uint64_t)i + 1);
        memcpy(tx, bx + i * row_bytes, row_bytes);
        memcpy(bx + i * row_bytes, bx + j * row_bytes, row_bytes);
        memcpy(bx + j * row_bytes, tx, row_bytes);
        memcpy(ty, by + i * y_bytes, y_bytes);
        memcpy(by + i * y_bytes, by + j * y_bytes, y_bytes);
        memcpy(by + j * y_bytes, ty, y_bytes);
    }
    free(tx);
    free(ty);
    return CV_OK;
}

int cv__import_split_names(const char *list, char *buf, size_t size, const char **names, int max)
{
    int n = 0;
    if (strlen(list) >= size)
        return -1;
    memcpy(buf, list, strlen(list) + 1);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        if (n == max)
            return -1;
        names[n++] = t;
    }
    return n;
}

cv_status cv__import_write(const char *out, struct cv_split_out *all,
                           const struct cv_import_opts *opts, struct cv_import_summary *sum,
                           struct cv_error *err)
{
    if (opts->dev < 0 || opts->dev >= all->n_rows)
        return cv_fail(err, CV_USAGE, "--dev %lld: expected 0 <= N < %lld rows", opts->dev,
                       all->n_rows);
    const char *names[CV_IMPORT_MAX_NAMES];
    char buf[CV_IMPORT_NAMES_BYTES];
    if (opts->class_names) {
        int n = cv__import_split_names(opts->class_names, buf, sizeof(buf), names,
                                       CV_IMPORT_MAX_NAMES);
        if (n != all->classes)
            return cv_fail(err, CV_USAGE, "--class-names: expected %d names", all->classes);
        all->class_names = names;
    }
    struct cv_split_out s[2] = {*all, *all};
    long long keep = all->n_rows - opts->dev;
    s[0].n_rows = keep;
    s[1].group = "dev";
    s[1].n_rows = opts->dev;
    size_t xoff = (size_t)keep * (size_t)all->features,
           yoff = (size_t)keep * (size_t)all->target_dim;
    if (all->x_u8)
        s[1].x_u8 = all->x_u8 + xoff;
    else
        s[1].x_f32 = all->x_f32 + xoff;
    if (all->y_class)
        s[1].y_class = all->y_class + yoff;
    else
        s[1].y_vec = all->y_vec + yoff;
    *sum = (struct cv_import_summary){keep, opts->dev, all->features, all->classes, all->target_dim,
                                      0,    0};
    return cv_dataset_write(out, s, opts->dev > 0 ? 2 : 1, err);
}
