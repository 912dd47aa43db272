/*
 * status.h - one list of status codes and a caller-owned error buffer.
 *
 * Every fallible library function returns a cv_status and takes a trailing
 * `struct cv_error *err` (may be NULL).  cv_fail() records the first message
 * only, so the innermost cause survives as the error travels up.  The library
 * never exits; src/cli/main.c maps a status to an exit code.
 */
#ifndef CAVIAR_STATUS_H
#define CAVIAR_STATUS_H

#include <stdbool.h>

#define CV_STATUS_MAP(X)                                                                           \
    X(OK, "success")                                                                               \
    X(NOMEM, "out of memory")                                                                      \
    X(INVAL, "invalid argument")                                                                   \
    X(IO, "I/O error")                                                                             \
    X(FORMAT, "bad file format")                                                                   \
    X(HDF5, "HDF5 error")                                                                          \
    X(MPI, "MPI error")                                                                            \
    X(SHAPE, "shape mismatch")                                                                     \
    X(NONFINITE, "non-finite value")                                                               \
    X(CONFIG, "configuration error")                                                               \
    X(USAGE, "usage error")                                                                        \
    X(INTERRUPTED, "interrupted: checkpointed, resume me")                                         \
    X(CORRUPT, "checksum or integrity failure")                                                    \
    X(VERSION, "unsupported format version")                                                       \
    X(STOPPED, "stopped on request before training: nothing to checkpoint, run again")

typedef enum cv_status {
#define CV__ENUM(name, text) CV_##name,
    CV_STATUS_MAP(CV__ENUM)
#undef CV__ENUM
        CV_STATUS_COUNT
} cv_status;

/* Human text for a status code ("success", "out of memory", ...). */
const char *cv_status_str(cv_status st);

#define CV_ERROR_MSG_MAX 512

struct cv_error {
    cv_status code;             /* first failure recorded, CV_OK if none */
    char msg[CV_ERROR_MSG_MAX]; /* first message recorded */
};

/* Reset an error buffer to CV_OK / "". */
void cv_error_clear(struct cv_error *err);

/* Record `code` with a printf-style message unless err already holds one.
 * Returns `code` so callers can write `return cv_fail(err, CV_IO, ...)`. */
cv_status cv_fail(struct cv_error *err, cv_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Assertion for bugs (never for bad input).  Prints file:line and calls the
 * abort hook; the CLI installs one that calls MPI_Abort so no rank hangs. */
typedef void (*cv_abort_hook)(const char *file, int line, const char *expr);
void cv_set_abort_hook(cv_abort_hook hook);
void cv__assert_fail(const char *file, int line, const char *expr);
#define CV_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x))                                                                                  \
            cv__assert_fail(__FILE__, __LINE__, #x);                                               \
    } while (0)

#endif /* CAVIAR_STATUS_H */
