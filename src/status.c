/*
 * status.c - status strings, the first-message-wins error buffer and the
 * replaceable assertion hook.  No MPI, HDF5 or BLAS here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "caviar/status.h"

static const char *const status_text[] = {
#define CV__TEXT(name, text) text,
    CV_STATUS_MAP(CV__TEXT)
#undef CV__TEXT
};

const char *cv_status_str(cv_status st)
{
    if ((unsigned)st >= CV_STATUS_COUNT)
        return "unknown status";
    return status_text[st];
}

void cv_error_clear(struct cv_error *err)
{
    if (!err)
        return;
    err->code = CV_OK;
    err->msg[0] = '\0';
}

cv_status cv_fail(struct cv_error *err, cv_status code, const char *fmt, ...)
{
    if (!err || err->code != CV_OK)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

static cv_abort_hook abort_hook;

void cv_set_abort_hook(cv_abort_hook hook)
{
    abort_hook = hook;
}

void cv__assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "caviar: %s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    if (abort_hook)
        abort_hook(file, line, expr);
    abort(); /* the hook should not return; this is the last resort for a bug */
}
