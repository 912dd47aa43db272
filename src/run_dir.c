/*
 * run_dir.c - a training run's directory (src/run_dir.h): its lock (one
 * owner at a time), the refusal of another run's files, checkpoint names
 * (the zero-padded step, so names sort by age), listing newest first,
 * pruning, finding the newest that verifies, and metrics.jsonl.
 */
#define _DEFAULT_SOURCE /* flock(2) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
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

/* ---- the lock: one owner per directory ---- */

/* The owner line: who to look for when the lock is busy. */
static void write_owner(int fd, const char *what)
{
    char host[256] = "?", line[512], when[32] = "?";
    gethostname(host, sizeof(host) - 1);
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(line, sizeof(line), "pid %ld on host %s since %s (%s)\n", (long)getpid(), host,
                     when, what);
    if (ftruncate(fd, 0) == 0 && n > 0)
        (void)!pwrite(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, 0);
}

static void read_owner(int fd, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (!buf[0])
        snprintf(buf, size, "owner not recorded: --trial tasks, or a job just starting");
}

/* Filesystems without locks (some parallel filesystems mounted without
 * flock support) run unlocked rather than not at all. */
static bool lock_unsupported(int e)
{
    return e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL;
}

static cv_status open_lock_file(const char *path, int *fd, struct cv_error *err)
{
    struct stat sb;
    *fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
    if (*fd < 0)
        return cv_fail(err, CV_IO, "%s: cannot open the lock file: %s%s", path, strerror(errno),
                       errno == ELOOP ? " (a symbolic link: not followed; remove it)" : "");
    if (fstat(*fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
        close(*fd);
        *fd = -1;
        return cv_fail(err, CV_IO, "%s: the lock file is not a plain file with a single name",
                       path);
    }
    return CV_OK;
}

cv_status cv__dir_lock(const char *dir, bool shared, const char *what, int *fd,
                       struct cv_error *err)
{
    char path[CV_PATH_MAX + 32], owner[256];
    snprintf(path, sizeof(path), "%s/%s", dir, CV_LOCK_NAME);
    cv_status st = open_lock_file(path, fd, err);
    if (st != CV_OK)
        return st;
    if (flock(*fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0) {
        if (!shared)
            write_owner(*fd, what);
        return CV_OK;
    }
    int e = errno;
    if (lock_unsupported(e))
        return CV_OK; /* documented: ownership is not enforced there */
    read_owner(*fd, owner, sizeof(owner));
    close(*fd);
    *fd = -1;
    if (e == EWOULDBLOCK)
        return cv_fail(err, CV_IO,
                       "%s is in use by another caviar job (%s; lock %s): wait for it to end, "
                       "or choose another run.dir",
                       dir, owner, path);
    return cv_fail(err, CV_IO, "%s: cannot lock: %s", path, strerror(e));
}

/* The last holder clears the owner line, so that a later refusal by
 * shared holders (which record nothing) does not name a finished job. */
void cv__dir_unlock(int fd)
{
    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        (void)!ftruncate(fd, 0);
    close(fd); /* the kernel drops the lock with the last descriptor */
}

/* ---- making the directory ---- */

/* Temporaries of caviar's own writes, left by a crash: never valid. */
static int tmp_filter(const struct dirent *d)
{
    static const char *const own[] = {"ckpt-", "model.h5" CV_TMP_MARK, "last.h5" CV_TMP_MARK,
                                      "metrics.jsonl" CV_TMP_MARK, NULL};
    if (!strstr(d->d_name, CV_TMP_MARK))
        return 0;
    for (int i = 0; own[i]; i++)
        if (!strncmp(d->d_name, own[i], strlen(own[i])))
            return 1;
    return 0;
}

/* Only called by the lock holder: a temporary here is nobody's work in
 * progress.  unlink removes a symlink itself, never its target. */
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

static bool exists(const char *dir, const char *name)
{
    char path[CV_PATH_MAX + 32];
    struct stat sb;
    cv__run_dir_path(dir, name, path, sizeof(path));
    return lstat(path, &sb) == 0;
}

static int list_checkpoints(const char *dir, struct dirent ***names);
static void free_names(struct dirent **names, int n);

/* What of another run RUN_DIR holds, as a list for a message ("" if none). */
static void other_run(const char *dir, const char *ck, char *buf, size_t size)
{
    struct dirent **names;
    int n = list_checkpoints(ck, &names);
    free_names(names, n);
    snprintf(buf, size, "%s%s%s", exists(dir, "model.h5") ? ", model.h5" : "",
             exists(dir, "last.h5") ? ", last.h5" : "",
             exists(dir, "metrics.jsonl") ? ", metrics.jsonl" : "");
    if (n > 0)
        snprintf(buf + strlen(buf), size - strlen(buf), ", %d checkpoint(s)", n);
}

/* A fresh run refuses another run's files, or with overwrite removes them
 * (its old checkpoints would otherwise be resumed or outlive the pruning). */
static cv_status claim(const char *dir, const char *ck, enum cv_run_mode mode, struct cv_error *err)
{
    char found[128];
    other_run(dir, ck, found, sizeof(found));
    if (!found[0] || mode == CV_RUN_CONTINUE)
        return CV_OK;
    if (mode == CV_RUN_FRESH)
        return cv_fail(err, CV_CONFIG,
                       "run.dir = %s holds another run (%s): continue it with --resume %s or "
                       "run.resume=auto, choose another run.dir, or replace it with --overwrite",
                       dir, found + 2, dir);
    cv__run_dir_clear(dir);
    return CV_OK;
}

cv_status cv__run_dir_make(const char *dir, enum cv_run_mode mode, int *lock_fd,
                           struct cv_error *err)
{
    char ck[CV_PATH_MAX + 16];
    *lock_fd = -1;
    cv__run_dir_path(dir, "checkpoints", ck, sizeof(ck));
    if (cv__mkdir_p(dir) != 0 || access(dir, W_OK) != 0)
        return cv_fail(err, CV_IO, "run.dir = %s: cannot create or write: %s", dir,
                       strerror(errno));
    cv_status st = cv__dir_lock(dir, false, "caviar train", lock_fd, err);
    if (st == CV_OK)
        st = cv__mkdir_own(ck, err);
    if (st == CV_OK)
        st = claim(dir, ck, mode, err);
    if (st != CV_OK) {
        cv__dir_unlock(*lock_fd);
        *lock_fd = -1;
        return st;
    }
    remove_stale_temporaries(dir);
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

void cv__run_dir_clear(const char *dir)
{
    char path[CV_PATH_MAX + 32];
    cv__run_dir_prune(dir, 0);
    static const char *const files[] = {"model.h5", "last.h5", "metrics.jsonl"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        cv__run_dir_path(dir, files[i], path, sizeof(path));
        unlink(path);
    }
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
