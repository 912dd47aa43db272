/*
 * fuzz_common.h - shared by the libFuzzer targets (tests/fuzz/fuzz_*.c):
 * the readers under test take paths, so each input is written to a file
 * in /dev/shm (memory, one name per process and role) and removed after
 * the iteration; inputs that carry several parts are split at NUL bytes.
 */
#ifndef CV_FUZZ_COMMON_H
#define CV_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caviar/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The HDF5 readers read a file only after a checking process has, as in
 * the tool (src/h5_check.c), here a fork (the harness is no MPI rank): a
 * fault inside libhdf5 ends that process, and the reader refuses the
 * file. */
static inline void fuzz_h5_checker(void)
{
    cv_h5_set_checker(CV_H5_CHECK_FORK);
}

/* A per-process path for `role` ("in.csv", "out.h5", ...). */
static inline const char *fuzz_path(const char *role, char *buf, size_t size)
{
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(buf, size, "%s/caviar-fuzz-%ld-%s", dir, (long)getpid(), role);
    return buf;
}

/* Write data to path; a failure here is the harness's, not a finding. */
static inline void fuzz_write(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Remove whatever the iteration left at these paths (and their temporaries). */
static inline void fuzz_cleanup(const char *path)
{
    unlink(path);
}

/* With CV_FUZZ_VERBOSE set (triage, replays), print what a step returned. */
static inline void fuzz_note(const char *step, int status, const char *msg)
{
    if (getenv("CV_FUZZ_VERBOSE"))
        fprintf(stderr, "  %s: status %d%s%s\n", step, status, *msg ? ": " : "", msg);
}

/* A finding: the harness's own invariant failed. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed: %s: ", #cond);                                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif /* CV_FUZZ_COMMON_H */
