/*
 * replay_main.c - runs a fuzz target's LLVMFuzzerTestOneInput over files
 * and directories given as arguments, without libFuzzer: the regression
 * inputs in tests/fuzz/regressions/ and the seeds are replayed this way by
 * ctest in every build (gcc, and gcc with ASan + UBSan), and by the
 * libFuzzer binaries themselves in the fuzz build.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return perror(path), 1;
    size_t cap = 1 << 16, len = 0, got;
    unsigned char *buf = malloc(cap);
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0)
        if ((len += got) == cap)
            buf = realloc(buf, cap *= 2);
    fclose(f);
    if (!buf)
        return fprintf(stderr, "%s: out of memory\n", path), 1;
    printf("replay %s (%zu bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int run_path(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return perror(path), 1;
    if (!S_ISDIR(sb.st_mode))
        return run_file(path);
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort), bad = 0;
    for (int i = 0; i < n; i++) {
        char sub[4096];
        if (names[i]->d_name[0] != '.' && strcmp(names[i]->d_name, "README.md") != 0) {
            snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
            bad |= run_path(sub);
        }
        free(names[i]);
    }
    free(names);
    return n < 0 ? 1 : bad;
}

int main(int argc, char **argv)
{
    int bad = 0;
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        bad |= run_path(argv[i]);
    return bad;
}
