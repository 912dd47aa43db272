/*
 * run_dir.c - a training run's directory (src/run_dir.h): checkpoint names
 * (the zero-padded step, so names sort by age), listing newest first,
 * pruning, finding the newest that verifies, and metrics.jsonl.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/checkpoint.h"
#include "caviar/train.h"
#include "atomic_file.h"
#include "run_dir.h"
#include "util.h"

void cv__run_dir_path(const char *dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", dir, name);
}

void cv__run_dir_ckpt_path(const char *dir, long long step, char *out, size_t n)
{
    snprintf(out, n, "%s/checkpoints/ckpt-%012lld.h5", dir, step);
}

static int tmp_filter(const struct dirent *d)
{
    return strstr(d->d_name, ".tmp.") != NULL;
}

static void remove_stale_temporaries(const char *dir)
{
    struct dirent **names;
    char path[2 * CV_PATH_MAX];
    int n = scandir(dir, &names, tmp_filter, alphasort);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        unlink(path);
        free(names[i]);
    }
    if (n >= 0)
        free(names);
}

cv_status cv__run_dir_make(const char *dir, struct cv_error *err)
{
    char ck[CV_PATH_MAX + 16];
    cv__run_dir_path(dir, "checkpoints", ck, sizeof(ck));
    if (cv__mkdir_p(dir) != 0 || cv__mkdir_p(ck) != 0 || access(dir, W_OK) != 0)
        return cv_fail(err, CV_IO, "run.dir = %s: cannot create or write: %s", dir,
                       strerror(errno));
    remove_stale_temporaries(ck);
    return CV_OK;
}

static int ckpt_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return !strncmp(d->d_name, "ckpt-", 5) && n > 8 && !strcmp(d->d_name + n - 3, ".h5");
}

/* Checkpoint names sorted newest first. */
static int list_checkpoints(const char *dir, struct dirent ***names)
{
    int n = scandir(dir, names, ckpt_filter, alphasort);
    for (int i = 0; i < n / 2; i++) {
        struct dirent *t = (*names)[i];
        (*names)[i] = (*names)[n - 1 - i];
        (*names)[n - 1 - i] = t;
    }
    return n;
}

static void free_names(struct dirent **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    if (n >= 0)
        free(names);
}

void cv__run_dir_prune(const char *dir, int keep)
{
    char ck[CV_PATH_MAX + 16], path[2 * CV_PATH_MAX];
    struct dirent **names;
    cv__run_dir_path(dir, "checkpoints", ck, sizeof(ck));
    int n = list_checkpoints(ck, &names);
    for (int i = keep; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", ck, names[i]->d_name);
        unlink(path);
    }
    free_names(names, n);
}

cv_status cv_train_find_checkpoint(const char *run_dir, char *path, size_t size,
                                   void (*note)(void *arg, const char *line), void *note_arg,
                                   struct cv_error *err)
{
    char dir[CV_PATH_MAX + 16], line[3 * CV_PATH_MAX];
    struct dirent **names;
    cv__run_dir_path(run_dir, "checkpoints", dir, sizeof(dir));
    int n = list_checkpoints(dir, &names);
    for (int i = 0; i < n; i++) {
        struct cv_error e;
        cv_error_clear(&e);
        if (snprintf(path, size, "%s/%s", dir, names[i]->d_name) >= (int)size)
            continue; /* cannot be named in `size` bytes: not ours */
        if (cv_ckpt_verify(path, &e) == CV_OK) {
            free_names(names, n);
            return CV_OK;
        }
        snprintf(line, sizeof(line), "skipping checkpoint %s: %s", path, e.msg);
        if (note)
            note(note_arg, line);
    }
    free_names(names, n);
    path[0] = '\0';
    return cv_fail(err, CV_IO, "%s: no checkpoint that verifies%s", dir,
                   n > 0 ? " (all were skipped, see above)" : "");
}

cv_status cv__history_append(char **history, const char *line, struct cv_error *err)
{
    size_t old = *history ? strlen(*history) : 0, add = strlen(line);
    char *p = cv_realloc(*history, old + add + 2, 1);
    if (!p)
        return cv_fail(err, CV_NOMEM, "out of memory for the metric history");
    memcpy(p + old, line, add);
    p[old + add] = '\n';
    p[old + add + 1] = '\0';
    *history = p;
    return CV_OK;
}

cv_status cv__run_dir_write_metrics(const char *dir, const char *history, struct cv_error *err)
{
    char path[CV_PATH_MAX + 16];
    cv__run_dir_path(dir, "metrics.jsonl", path, sizeof(path));
    return cv__write_text_atomic(path, history ? history : "", err);
}
