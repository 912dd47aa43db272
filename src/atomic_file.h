/*
 * atomic_file.h - every file caviar writes goes through here: it is created
 * exclusively (O_CREAT | O_EXCL | O_NOFOLLOW, or an equivalent create
 * callback such as HDF5's H5F_ACC_EXCL) under a unique temporary name in the
 * same directory, fsync'ed, and renamed over the target, and the directory
 * is fsync'ed.  A crash at any moment leaves the old or the new version, and
 * a symlink planted at the temporary or the final name is never followed for
 * writing (rename replaces a link at the final name, it does not follow it).
 */
#ifndef CV_ATOMIC_FILE_H
#define CV_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "caviar/status.h"

/* The marker in every temporary name: "<path>.tmp.<pid>.<16 hex digits>". */
#define CV_TMP_MARK ".tmp."

/* Create a file through create(name, arg) at a fresh unique temporary name
 * next to path, written into tmp.  create must make a new file and fail
 * when the name exists in any form (a symlink, dangling or not, included);
 * a name that turns out taken is replaced by another one, a few times.
 * CV_IO (naming tmp) when create fails for another reason. */
cv_status cv__tmp_create(const char *path, char *tmp, size_t size,
                         bool (*create)(const char *name, void *arg), void *arg,
                         struct cv_error *err);

/* cv__tmp_create with open(O_CREAT | O_EXCL | O_NOFOLLOW): the new file's
 * descriptor (write only, close-on-exec) in *fd. */
cv_status cv__tmp_open(const char *path, char *tmp, size_t size, int *fd, struct cv_error *err);

/* fsync tmp, rename it to path, fsync path's directory.  On failure tmp is
 * removed and path is untouched.  tmp is opened without following links. */
cv_status cv__commit_file(const char *tmp, const char *path, struct cv_error *err);

/* Write text to path atomically (temporary, fsync, rename). */
cv_status cv__write_text_atomic(const char *path, const char *text, struct cv_error *err);
/* The same for len bytes of data (a binary file, e.g. an ONNX export). */
cv_status cv__write_bytes_atomic(const char *path, const void *data, size_t len,
                                 struct cv_error *err);

/* mkdir -p for a directory the user named (symlinks on the way are the
 * user's choice); 0 on success, -1 with errno set. */
int cv__mkdir_p(const char *path);

/* mkdir for a directory caviar makes inside a run directory: an existing
 * entry is accepted only if it is a real directory, not a symlink to one
 * (CV_IO naming path otherwise). */
cv_status cv__mkdir_own(const char *path, struct cv_error *err);

#endif /* CV_ATOMIC_FILE_H */
