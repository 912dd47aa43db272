/*
 * atomic_file.h - replace a file so that a crash at any moment leaves either
 * the old or the new version: write to a temporary name in the same
 * directory, fsync it, rename it over the target, fsync the directory.
 */
#ifndef CV_ATOMIC_FILE_H
#define CV_ATOMIC_FILE_H

#include <stddef.h>

#include "caviar/status.h"

/* "<path>.tmp.<pid>" into buf. */
void cv__tmp_name(const char *path, char *buf, size_t size);

/* fsync tmp, rename it to path, fsync path's directory.  On failure tmp is
 * removed and path is untouched. */
cv_status cv__commit_file(const char *tmp, const char *path, struct cv_error *err);

/* Write text to path atomically (temporary, fsync, rename). */
cv_status cv__write_text_atomic(const char *path, const char *text, struct cv_error *err);

/* mkdir -p; 0 on success, -1 with errno set. */
int cv__mkdir_p(const char *path);

#endif /* CV_ATOMIC_FILE_H */
