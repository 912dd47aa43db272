/*
 * h5_check.c - an HDF5 file is read first by a checking process.
 *
 * Debian 12's libhdf5 1.10.8 has memory errors on crafted files that no
 * check made before calling it can reach (a use-after-free under
 * H5Aexists, overflows in its memcpy/strdup, SEGVs in H5HG_read and the
 * Fletcher32 filter: tests/fuzz/known-hdf5/README.md).  So before a reader
 * (dataset_h5.c, checkpoint_read.c) opens a file, a caviar executable runs
 * the same readers on it in a fresh process (`caviar __check-h5`, started
 * with posix_spawn: no fork of a process whose memory MPI may have
 * registered).  When that process dies of a fault (or a sanitizer's
 * report), the reader fails with a message naming the file and libhdf5 is
 * never called on it here; when it ends in caviar's own error, the reader
 * runs and reports that error itself.  A passed check is remembered by the
 * file's identity (device, inode, size, mtime), split and row range, so a
 * process checks a file once.  It catches faults, not silent corruption:
 * a memory error that does not crash the checker (without sanitizers) is
 * not seen.  The tool sets the checker to itself; a program that is not
 * an MPI rank (a fuzzer, a library user) may check in a fork of itself
 * instead, which costs a millisecond rather than a process start-up
 * (cv_h5_set_checker).
 */
#define _GNU_SOURCE /* environ */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caviar/checkpoint.h"
#include "caviar/config.h"
#include "caviar/dataset.h"
#include "caviar/optim.h"
#include "h5_internal.h"
#include "util.h"

extern char **environ;

static char checker[CV_PATH_MAX]; /* "": no check; CV_H5_CHECK_FORK: a fork */
static int n_done, next_slot;     /* passed checks remembered (below) */

void cv_h5_set_checker(const char *exe)
{
    snprintf(checker, sizeof(checker), "%s", exe ? exe : "");
    n_done = next_slot = 0;
}

/* ---- what the checking process reads ---- */

/* Rows at a time: the reader's process holds its rows too, so the checker
 * reads a bounded block at a time (64 MiB of floats). */
#define BLOCK_FLOATS ((long long)1 << 24)

static cv_status read_block(const char *spec, const struct cv_dataset_info *in, long long r0,
                            long long n, struct cv_error *err)
{
    float *x = cv_calloc((size_t)(n * in->features), sizeof(float));
    int32_t *y = cv_calloc((size_t)n, sizeof(int32_t));
    float *yv = cv_calloc((size_t)(n * (in->target_dim > 0 ? in->target_dim : 1)), sizeof(float));
    cv_status st = x && y && yv ? cv_dataset_read_rows(spec, r0, n, x, y, yv, err)
                                : cv_fail(err, CV_NOMEM, "out of memory");
    free(x);
    free(y);
    free(yv);
    return st;
}

static cv_status run_dataset(const char *spec, long long row0, long long n, struct cv_error *err)
{
    struct cv_dataset_info in;
    char **names = NULL;
    cv_status st = cv_dataset_probe(spec, &in, err);
    if (st == CV_OK)
        st = cv_dataset_class_names(spec, in.classes, &names, err);
    free(names);
    long long per = in.features > 0 ? BLOCK_FLOATS / in.features : 1;
    per = per > 0 ? per : 1;
    for (long long r = row0; st == CV_OK && r < row0 + n; r += per)
        st = read_block(spec, &in, r, row0 + n - r < per ? row0 + n - r : per, err);
    return st;
}

static cv_status run_ckpt(const char *path, struct cv_error *err)
{
    struct cv_ckpt_info info = {0};
    struct cv_config *cfg = NULL;
    cv_model *m = NULL;
    cv_optim *o = NULL;
    struct cv_train_state ts;
    memset(&ts, 0, sizeof(ts));
    cv_status st = cv_ckpt_verify(path, err);
    if (st == CV_OK)
        st = cv_ckpt_info(path, &info, err);
    if (st == CV_OK)
        st = cv_ckpt_open_model(path, 1, &cfg, &m, err);
    if (st == CV_OK && info.optimizer_t > 0 && cv_optim_create(cfg, m, &o, err) == CV_OK)
        st = cv_ckpt_load(path, m, o, &ts, err);
    free(ts.metrics);
    free(info.ts.metrics);
    cv_optim_free(o);
    cv_model_free(m);
    cv_config_free(cfg);
    return st;
}

int cv__h5_check_run(const char *kind, const char *spec, long long row0, long long n)
{
    struct cv_error err;
    cv_error_clear(&err);
    checker[0] = '\0'; /* the readers below run unchecked: this is the check */
    cv_status st = !strcmp(kind, "ckpt") ? run_ckpt(spec, &err) : run_dataset(spec, row0, n, &err);
    return st == CV_OK ? 0 : CV_H5_CHECK_REFUSED;
}

/* ---- passed checks ---- */

struct passed {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    uint64_t spec; /* FNV-1a of the spec (file#group) and the kind */
    long long row0, n;
};
#define REMEMBERED 16
static struct passed done[REMEMBERED];

static uint64_t spec_hash(const char *kind, const char *spec)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = kind; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    for (const char *s = spec; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool identify(const char *file, const char *kind, const char *spec, long long row0,
                     long long n, struct passed *p)
{
    struct stat st;
    if (stat(file, &st) != 0)
        return false;
    *p = (struct passed){st.st_dev, st.st_ino, st.st_size, st.st_mtim, spec_hash(kind, spec),
                         row0,      n};
    return true;
}

static bool same_file(const struct passed *a, const struct passed *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->spec == b->spec;
}

static bool remembered(const struct passed *p)
{
    for (int i = 0; i < n_done; i++)
        if (same_file(&done[i], p) &&
            (p->n == 0 || (done[i].row0 <= p->row0 && p->row0 + p->n <= done[i].row0 + done[i].n)))
            return true;
    return false;
}

static void remember(const struct passed *p)
{
    done[next_slot] = *p;
    next_slot = (next_slot + 1) % REMEMBERED;
    n_done = n_done < REMEMBERED ? n_done + 1 : n_done;
}

/* ---- the checking process ---- */

/* A stop signal (the job ends) says nothing about the file. */
static bool fault_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT ||
           sig == SIGSYS || sig == SIGTRAP;
}

/* Waits for the checking process; *fault describes a fault ("" if none). */
static void describe_end(pid_t pid, char *fault, size_t size)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status) && fault_signal(WTERMSIG(status)))
        snprintf(fault, size, "signal %d, %s", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
             WEXITSTATUS(status) != CV_H5_CHECK_REFUSED)
        snprintf(fault, size, "exit %d, a memory error report", WEXITSTATUS(status));
}

/* Runs argv under the checker; *fault describes a fault ("" if none). */
static void spawn_check(char *const *argv, char *fault, size_t size)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    fault[0] = '\0';
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd <= 2; fd++) /* its own messages are the reader's to give */
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
    int rc = posix_spawn(&pid, checker, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) /* no checker to run (e.g. a deleted executable): read unchecked */
        return;
    describe_end(pid, fault, size);
}

/* The fork: the readers in a copy of this process, whose sanitizer and
 * fuzzer hooks must not act for it (a fuzzer would file the child's fault
 * as its own finding). */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void fork_check(const char *kind, const char *spec, long long row0, long long n, char *fault,
                       size_t size)
{
    fault[0] = '\0';
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) /* no process to spare: read unchecked */
        return;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        if (__sanitizer_set_death_callback)
            __sanitizer_set_death_callback(NULL);
        int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_DFL);
        checker[0] = '\0'; /* no checks inside the check */
        _exit(cv__h5_check_run(kind, spec, row0, n));
    }
    describe_end(pid, fault, size);
}

static cv_status check(const char *file, const char *kind, const char *spec, long long row0,
                       long long n, struct cv_error *err)
{
    struct passed p;
    if (!checker[0] || !identify(file, kind, spec, row0, n, &p) || remembered(&p))
        return CV_OK;
    char a[32], b[32], fault[96];
    snprintf(a, sizeof(a), "%lld", row0);
    snprintf(b, sizeof(b), "%lld", n);
    char *argv[] = {"caviar", "__check-h5", (char *)kind, (char *)spec, a, b, NULL};
    if (!strcmp(checker, CV_H5_CHECK_FORK))
        fork_check(kind, spec, row0, n, fault, sizeof(fault));
    else
        spawn_check(argv, fault, sizeof(fault));
    if (fault[0])
        return cv_fail(err, CV_CORRUPT,
                       "%s: the HDF5 library failed while a checking process read this file "
                       "(%s): the file is corrupt or crafted; it was not read",
                       spec, fault);
    remember(&p);
    return CV_OK;
}

cv_status cv__h5_check_dataset(const char *spec, long long row0, long long n, struct cv_error *err)
{
    char file[CV_PATH_MAX];
    snprintf(file, sizeof(file), "%s", spec);
    char *hash = strrchr(file, '#');
    if (hash)
        *hash = '\0';
    return check(file, "dataset", spec, row0, n, err);
}

cv_status cv__h5_check_ckpt(const char *path, struct cv_error *err)
{
    return check(path, "ckpt", path, 0, 0, err);
}
