/*
 * atomic_file.c - exclusive creation under a unique temporary name, fsync,
 * rename, directory fsync (src/atomic_file.h).
 */
#define _DEFAULT_SOURCE /* getrandom(2) */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"

enum { NAME_TRIES = 8 };

/* 64 unpredictable bits: a name that a hostile user of the directory cannot
 * plant in advance (the pid alone is guessable and reused). */
static uint64_t random_bits(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
        return r;
    struct timespec t; /* no entropy yet (early boot): still unique per call */
    clock_gettime(CLOCK_REALTIME, &t);
    static uint64_t counter;
    return ((uint64_t)t.tv_nsec << 20) ^ (uint64_t)t.tv_sec ^ (++counter * 0x9e3779b97f4a7c15ull);
}

static bool name_taken(const char *name)
{
    struct stat sb;
    return lstat(name, &sb) == 0;
}

/* One attempt at a fresh name: 1 created, 0 taken (try another), -1 failed. */
static int try_name(const char *path, char *tmp, size_t size,
                    bool (*create)(const char *name, void *arg), void *arg, struct cv_error *err)
{
    int n = snprintf(tmp, size, "%s" CV_TMP_MARK "%ld.%016llx", path, (long)getpid(),
                     (unsigned long long)random_bits());
    if (n < 0 || (size_t)n >= size)
        return cv_fail(err, CV_IO, "%s: path too long for a temporary name", path), -1;
    if (name_taken(tmp))
        return 0;
    errno = 0;
    if (create(tmp, arg))
        return 1;
    int e = errno;
    if (e == EEXIST) /* planted between the check and the create */
        return 0;
    cv_fail(err, CV_IO, "%s: cannot create: %s", tmp,
            e ? strerror(e) : "directory missing or not writable?");
    return -1;
}

/* On failure tmp is emptied: a name found taken is not ours to remove. */
cv_status cv__tmp_create(const char *path, char *tmp, size_t size,
                         bool (*create)(const char *name, void *arg), void *arg,
                         struct cv_error *err)
{
    int r = 0;
    for (int i = 0; i < NAME_TRIES && r == 0; i++)
        r = try_name(path, tmp, size, create, arg, err);
    if (r == 1)
        return CV_OK;
    if (size > 0)
        tmp[0] = '\0';
    if (r == 0)
        cv_fail(err, CV_IO, "%s: cannot create a temporary file next to it: %d names taken", path,
                NAME_TRIES);
    return CV_IO;
}

static bool open_excl(const char *name, void *arg)
{
    int *fd = arg;
    *fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    return *fd >= 0;
}

cv_status cv__tmp_open(const char *path, char *tmp, size_t size, int *fd, struct cv_error *err)
{
    *fd = -1;
    return cv__tmp_create(path, tmp, size, open_excl, fd, err);
}

static cv_status fsync_path(const char *path, bool dir, struct cv_error *err)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return cv_fail(err, CV_IO, "%s: cannot open for fsync: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0)
        return cv_fail(err, CV_IO, "%s: fsync failed: %s", path, strerror(e));
    return CV_OK;
}

cv_status cv__commit_file(const char *tmp, const char *path, struct cv_error *err)
{
    cv_status st = fsync_path(tmp, false, err);
    if (st == CV_OK && rename(tmp, path) != 0)
        st = cv_fail(err, CV_IO, "%s: rename from %s failed: %s", path, tmp, strerror(errno));
    if (st == CV_OK) {
        char dirbuf[4096];
        snprintf(dirbuf, sizeof(dirbuf), "%s", path);
        st = fsync_path(dirname(dirbuf), true, err);
    }
    if (st != CV_OK)
        unlink(tmp);
    return st;
}

static bool write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        text += n;
        len -= (size_t)n;
    }
    return true;
}

cv_status cv__write_text_atomic(const char *path, const char *text, struct cv_error *err)
{
    return cv__write_bytes_atomic(path, text, strlen(text), err);
}

cv_status cv__write_bytes_atomic(const char *path, const void *data, size_t len,
                                 struct cv_error *err)
{
    char tmp[4096];
    int fd;
    cv_status st = cv__tmp_open(path, tmp, sizeof(tmp), &fd, err);
    if (st != CV_OK)
        return st;
    bool ok = write_all(fd, data, len);
    int e = ok ? 0 : errno;
    if (close(fd) != 0 && ok)
        ok = false, e = errno;
    if (!ok) {
        unlink(tmp);
        return cv_fail(err, CV_IO, "cannot write %s: %s", tmp, e ? strerror(e) : "short write");
    }
    return cv__commit_file(tmp, path, err);
}

int cv__mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat sb; /* EEXIST: a file of that name is no directory */
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return errno = ENOTDIR, -1;
    return 0;
}

cv_status cv__mkdir_own(const char *path, struct cv_error *err)
{
    struct stat sb;
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return cv_fail(err, CV_IO, "cannot create directory %s: %s", path, strerror(errno));
    if (lstat(path, &sb) != 0)
        return cv_fail(err, CV_IO, "%s: %s", path, strerror(errno));
    if (S_ISLNK(sb.st_mode))
        return cv_fail(err, CV_IO,
                       "%s is a symbolic link: caviar makes this directory itself and does not "
                       "follow a link here (remove it)",
                       path);
    if (!S_ISDIR(sb.st_mode))
        return cv_fail(err, CV_IO, "%s exists and is not a directory", path);
    return CV_OK;
}
