/*
 * test_atomic_file.c - safe file creation and run directory ownership:
 *  - temporary names are unique, created exclusively, and a name found
 *    taken is replaced (a bounded number of times), never reused;
 *  - a symlink planted at the final name is replaced, not followed; the
 *    HDF5 exclusive create refuses a symlink at its name, dangling or not,
 *    and leaves the target byte for byte as it was;
 *  - directories caviar makes refuse a symlink;
 *  - the directory lock: a second exclusive holder is refused with the
 *    owner's pid, shared holders coexist, a released lock can be retaken,
 *    a symlink at the lock file is refused;
 *  - a fresh run refuses another run's files, --overwrite removes them,
 *    a resumed run keeps them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "h5_internal.h"
#include "run_dir.h"
#include "test.h"

static char root[] = "/tmp/caviar-test-atomic.XXXXXX";

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* The whole file, or "" if it cannot be read (static buffer). */
static const char *get(const char *path)
{
    static char buf[256];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool is_link(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

static void join(char *out, const char *name)
{
    snprintf(out, 512, "%s/%s", root, name);
}

static void test_tmp_names(void)
{
    char path[512], a[600], b[600];
    int fa, fb;
    join(path, "out.txt");
    ASSERT_EQ(cv__tmp_open(path, a, sizeof(a), &fa, NULL), CV_OK);
    ASSERT_EQ(cv__tmp_open(path, b, sizeof(b), &fb, NULL), CV_OK);
    ASSERT_TRUE(strcmp(a, b) != 0);
    ASSERT_TRUE(!strncmp(a, path, strlen(path)));
    ASSERT_STR_CONTAINS(a, CV_TMP_MARK);
    ASSERT_TRUE(fa >= 0 && fb >= 0 && access(a, F_OK) == 0);
    close(fa);
    close(fb);
    unlink(a);
    unlink(b);
}

/* A create callback that finds its first `taken` names occupied by a
 * planted symlink (as a hostile user of the directory would). */
struct planted {
    int taken, calls;
    char first[600];
};

static bool create_after(const char *name, void *arg)
{
    struct planted *p = arg;
    if (p->calls++ == 0)
        snprintf(p->first, sizeof(p->first), "%s", name);
    if (p->calls <= p->taken) {
        if (symlink("/nonexistent", name) != 0)
            return false;
        errno = EEXIST;
        return false;
    }
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

static void test_taken_names(void)
{
    char path[512], tmp[600];
    join(path, "taken.txt");
    struct planted p = {.taken = 3};
    ASSERT_EQ(cv__tmp_create(path, tmp, sizeof(tmp), create_after, &p, NULL), CV_OK);
    ASSERT_EQ(p.calls, 4);
    ASSERT_TRUE(strcmp(tmp, p.first) != 0);
    ASSERT_TRUE(is_link(p.first)); /* the planted link is left alone */
    unlink(tmp);
    struct planted all = {.taken = 1000};
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv__tmp_create(path, tmp, sizeof(tmp), create_after, &all, &err), CV_IO);
    ASSERT_STR_CONTAINS(err.msg, "names taken");
    ASSERT_EQ(tmp[0], '\0'); /* not ours: the caller must not remove it */
    char small[8];
    cv_error_clear(&err);
    ASSERT_EQ(cv__tmp_open(path, small, sizeof(small), &all.calls, &err), CV_IO);
    ASSERT_STR_CONTAINS(err.msg, "too long");
}

static void test_final_symlink_replaced(void)
{
    char victim[512], path[512];
    join(victim, "victim.txt");
    join(path, "metrics.jsonl");
    put(victim, "precious\n");
    ASSERT_EQ(symlink(victim, path), 0);
    ASSERT_EQ(cv__write_text_atomic(path, "{\"epoch\":1}\n", NULL), CV_OK);
    ASSERT_TRUE(!is_link(path));
    ASSERT_TRUE(!strcmp(get(victim), "precious\n"));
    ASSERT_TRUE(!strcmp(get(path), "{\"epoch\":1}\n"));
}

static void test_h5_refuses_symlinks(void)
{
    char victim[512], name[512], dangling[512], target[512];
    join(victim, "victim.h5");
    join(name, "planted.h5");
    join(dangling, "dangling.h5");
    join(target, "would-be-created.h5");
    put(victim, "not an hdf5 file\n");
    ASSERT_EQ(symlink(victim, name), 0);
    ASSERT_EQ(symlink(target, dangling), 0);
    ASSERT_TRUE(cv__h5_create_excl(name, H5P_DEFAULT) < 0);
    ASSERT_TRUE(cv__h5_create_excl(dangling, H5P_DEFAULT) < 0);
    ASSERT_TRUE(!strcmp(get(victim), "not an hdf5 file\n"));
    ASSERT_TRUE(access(target, F_OK) != 0);
    hid_t f = cv__h5_create_excl(target, H5P_DEFAULT); /* a free name works */
    ASSERT_TRUE(f >= 0);
    if (f >= 0)
        H5Fclose(f);
    ASSERT_TRUE(cv__h5_create_excl(target, H5P_DEFAULT) < 0); /* and only once */
}

static void test_mkdir_own(void)
{
    char dir[512], link[512];
    struct cv_error err;
    cv_error_clear(&err);
    join(dir, "own");
    join(link, "linked");
    ASSERT_EQ(cv__mkdir_own(dir, NULL), CV_OK);
    ASSERT_EQ(cv__mkdir_own(dir, NULL), CV_OK); /* an existing real directory */
    ASSERT_EQ(symlink(dir, link), 0);
    ASSERT_EQ(cv__mkdir_own(link, &err), CV_IO);
    ASSERT_STR_CONTAINS(err.msg, "symbolic link");
}

static void test_lock(void)
{
    char dir[512], pid[32], lockpath[600];
    struct cv_error err;
    int a, b, c;
    join(dir, "locked");
    mkdir(dir, 0755);
    snprintf(pid, sizeof(pid), "pid %ld ", (long)getpid());
    ASSERT_EQ(cv__dir_lock(dir, false, "test", &a, NULL), CV_OK);
    cv_error_clear(&err);
    ASSERT_EQ(cv__dir_lock(dir, false, "test", &b, &err), CV_IO);
    ASSERT_EQ(b, -1);
    ASSERT_STR_CONTAINS(err.msg, "in use by another caviar job");
    ASSERT_STR_CONTAINS(err.msg, pid);
    cv_error_clear(&err);
    ASSERT_EQ(cv__dir_lock(dir, true, "test", &b, &err), CV_IO); /* shared vs exclusive */
    cv__dir_unlock(a);
    ASSERT_EQ(cv__dir_lock(dir, true, "test", &b, NULL), CV_OK);
    ASSERT_EQ(cv__dir_lock(dir, true, "test", &c, NULL), CV_OK); /* shared holders coexist */
    cv__dir_unlock(b);
    cv__dir_unlock(c);
    ASSERT_EQ(cv__dir_lock(dir, false, "test", &a, NULL), CV_OK); /* released: free again */
    cv__dir_unlock(a);
    snprintf(lockpath, sizeof(lockpath), "%s/%s", dir, CV_LOCK_NAME);
    unlink(lockpath);
    char victim[512];
    join(victim, "lock-victim.txt");
    put(victim, "keep\n");
    ASSERT_EQ(symlink(victim, lockpath), 0);
    cv_error_clear(&err);
    ASSERT_EQ(cv__dir_lock(dir, false, "test", &a, &err), CV_IO);
    ASSERT_STR_CONTAINS(err.msg, "symbolic link");
    ASSERT_TRUE(!strcmp(get(victim), "keep\n"));
}

static void test_run_dir_modes(void)
{
    char dir[512], model[600], ck[600], stale[700];
    struct cv_error err;
    int fd;
    join(dir, "run");
    snprintf(model, sizeof(model), "%s/model.h5", dir);
    ASSERT_EQ(cv__run_dir_make(dir, CV_RUN_FRESH, &fd, NULL), CV_OK); /* a new directory */
    cv__dir_unlock(fd);
    put(model, "old model\n");
    cv__run_dir_ckpt_path(dir, 100, ck, sizeof(ck));
    put(ck, "old checkpoint\n");
    snprintf(stale, sizeof(stale), "%s" CV_TMP_MARK "1.0123456789abcdef", ck);
    put(stale, "crashed write\n");
    cv_error_clear(&err);
    ASSERT_EQ(cv__run_dir_make(dir, CV_RUN_FRESH, &fd, &err), CV_CONFIG);
    ASSERT_EQ(fd, -1);
    ASSERT_STR_CONTAINS(err.msg, "holds another run");
    ASSERT_STR_CONTAINS(err.msg, "model.h5");
    ASSERT_STR_CONTAINS(err.msg, "1 checkpoint(s)");
    ASSERT_TRUE(!strcmp(get(model), "old model\n"));
    ASSERT_TRUE(access(stale, F_OK) == 0); /* refused: touches nothing */
    ASSERT_EQ(cv__run_dir_make(dir, CV_RUN_CONTINUE, &fd, NULL), CV_OK);
    cv__dir_unlock(fd);
    ASSERT_TRUE(access(model, F_OK) == 0 && access(ck, F_OK) == 0);
    ASSERT_TRUE(access(stale, F_OK) != 0); /* the owner cleans crashed temporaries */
    ASSERT_EQ(cv__run_dir_make(dir, CV_RUN_OVERWRITE, &fd, NULL), CV_OK);
    ASSERT_TRUE(access(model, F_OK) != 0 && access(ck, F_OK) != 0);
    int other;
    cv_error_clear(&err);
    ASSERT_EQ(cv__run_dir_make(dir, CV_RUN_CONTINUE, &other, &err), CV_IO); /* busy */
    ASSERT_STR_CONTAINS(err.msg, "in use");
    cv__dir_unlock(fd);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_tmp_names();
    test_taken_names();
    test_final_symlink_replaced();
    test_h5_refuses_symlinks();
    test_mkdir_own();
    test_lock();
    test_run_dir_modes();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    TEST_MAIN_END();
}
