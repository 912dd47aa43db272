/*
 * atomic_file.c - temporary name + fsync + rename + directory fsync.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"

void cv__tmp_name(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s.tmp.%ld", path, (long)getpid());
}

static cv_status fsync_path(const char *path, bool dir, struct cv_error *err)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
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

cv_status cv__write_text_atomic(const char *path, const char *text, struct cv_error *err)
{
    char tmp[4096];
    cv__tmp_name(path, tmp, sizeof(tmp));
    FILE *f = fopen(tmp, "w");
    if (!f)
        return cv_fail(err, CV_IO, "cannot create %s: %s", tmp, strerror(errno));
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        unlink(tmp);
        return cv_fail(err, CV_IO, "cannot write %s: %s", tmp, strerror(errno));
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
