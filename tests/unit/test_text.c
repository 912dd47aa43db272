/*
 * test_text.c - `caviar import text` and the vocabulary attributes: rows,
 * targets, lengths and vocabulary of small files worked out by hand, UTF-8
 * (multi-byte characters, every code point through encode and decode, each
 * kind of invalid sequence), shuffling as a seeded permutation, the dev
 * split, every refused input naming its line and byte offset with nothing
 * written, out-of-memory at each allocation, and a vocabulary written by
 * another program (variable-length strings, as h5py writes them).
 */
#include <dirent.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "caviar/text.h"
#include "test.h"
#include "text_internal.h"
#include "util.h"

static char dir[] = "/tmp/caviar-text-XXXXXX";
static char paths[4][512];
static int next_path;

static const char *p(const char *name)
{
    char *b = paths[next_path++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static void put(const char *name, const char *bytes, size_t n)
{
    FILE *f = fopen(p(name), "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
}

/* Dataset `name` of split `spec` ("file" or "file#group") as int32, its
 * element count in *n (0 if absent). */
static int32_t *read_i32(const char *file, const char *name, size_t *n)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    *n = 0;
    int32_t *v = NULL;
    if (d >= 0) {
        hid_t sp = H5Dget_space(d);
        *n = (size_t)H5Sget_simple_extent_npoints(sp);
        v = calloc(*n, sizeof(int32_t));
        H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Sclose(sp);
        H5Dclose(d);
    }
    H5Fclose(f);
    return v;
}

static bool same_i32(const int32_t *a, const int32_t *b, size_t n)
{
    return a && !memcmp(a, b, n * sizeof(int32_t));
}

/* Entries in dir: a failed import leaves no temporary behind. */
static int dir_entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static struct cv_text_opts lines_opts(void)
{
    return (struct cv_text_opts){.lines = true};
}

static void test_lines(void)
{
    /* lines "ab", "cab" (CRLF), an empty line, "b": vocab \n a b c */
    put("l.txt", "ab\ncab\r\n\nb\n", 11);
    struct cv_text_opts o = lines_opts();
    struct cv_text_summary s;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_import_text(p("l.txt"), p("l.h5"), &o, &s, &err), CV_OK);
    ASSERT_EQ(s.rows, 3);
    ASSERT_EQ(s.steps, 4);
    ASSERT_EQ(s.vocab, 4);
    const int32_t x[] = {0, 1, 2, 0, 0, 3, 1, 2, 0, 2, 0, 0};
    const int32_t y[] = {1, 2, 0, 0, 3, 1, 2, 0, 2, 0, 0, 0};
    const int32_t len[] = {3, 4, 2};
    size_t n;
    int32_t *v = read_i32(p("l.h5"), "X", &n);
    ASSERT_EQ(n, 12);
    ASSERT_TRUE(same_i32(v, x, 12));
    free(v);
    v = read_i32(p("l.h5"), "y", &n);
    ASSERT_TRUE(n == 12 && same_i32(v, y, 12));
    free(v);
    v = read_i32(p("l.h5"), "lengths", &n);
    ASSERT_TRUE(n == 3 && same_i32(v, len, 3));
    free(v);
    struct cv_vocab voc;
    bool found;
    ASSERT_EQ(cv_vocab_read(p("l.h5"), &voc, &found, &err), CV_OK);
    ASSERT_TRUE(found && voc.n == 4 && voc.eol == 0);
    ASSERT_TRUE(found && !strcmp(voc.tokens[0], "\n") && !strcmp(voc.tokens[3], "c"));
    cv_vocab_deinit(&voc);

    o.max_length = 5; /* T follows the limit, not the longest line */
    ASSERT_EQ(cv_import_text(p("l.txt"), p("l5.h5"), &o, &s, &err), CV_OK);
    ASSERT_EQ(s.steps, 6);
}

static void test_windows(void)
{
    put("w.txt", "abcabcab\n", 9);
    struct cv_text_opts o = {.window = 3, .stride = 2};
    struct cv_text_summary s;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_import_text(p("w.txt"), p("w.h5"), &o, &s, &err), CV_OK);
    /* starts 0, 2, 4 (6 + 4 > 9 characters); vocab \n a b c */
    ASSERT_EQ(s.rows, 3);
    ASSERT_EQ(s.vocab, 4);
    const int32_t x[] = {1, 2, 3, 3, 1, 2, 2, 3, 1};
    const int32_t y[] = {2, 3, 1, 1, 2, 3, 3, 1, 2};
    size_t n;
    int32_t *v = read_i32(p("w.h5"), "X", &n);
    ASSERT_TRUE(n == 9 && same_i32(v, x, 9));
    free(v);
    v = read_i32(p("w.h5"), "y", &n);
    ASSERT_TRUE(n == 9 && same_i32(v, y, 9));
    free(v);
    v = read_i32(p("w.h5"), "lengths", &n);
    ASSERT_TRUE(v == NULL && n == 0);
    struct cv_vocab voc;
    bool found;
    ASSERT_EQ(cv_vocab_read(p("w.h5"), &voc, &found, &err), CV_OK);
    ASSERT_TRUE(found && voc.eol == -1 && voc.n == 4);
    cv_vocab_deinit(&voc);
}

/* é (2 bytes), 日 (3), 😀 (4): ids follow code point order. */
static void test_utf8(void)
{
    const char text[] = "\xc3\xa9\xe6\x97\xa5\n\xf0\x9f\x98\x80z\n";
    put("u.txt", text, sizeof(text) - 1);
    struct cv_text_opts o = lines_opts();
    struct cv_text_summary s;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_import_text(p("u.txt"), p("u.h5"), &o, &s, &err), CV_OK);
    struct cv_vocab v;
    bool found;
    ASSERT_EQ(cv_vocab_read(p("u.h5"), &v, &found, &err), CV_OK);
    const char *want[] = {"\n", "z", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80"};
    ASSERT_EQ(v.n, 5);
    for (int i = 0; i < 5 && i < v.n; i++)
        ASSERT_TRUE(!strcmp(v.tokens[i], want[i]));
    int len;
    ASSERT_EQ(cv_vocab_find(&v, "\xe6\x97\xa5xyz", &len), 3);
    ASSERT_EQ(len, 3);
    ASSERT_EQ(cv_vocab_find(&v, "q", &len), -1);
    cv_vocab_deinit(&v);

    int bad = 0; /* every scalar value survives encode + decode */
    char buf[CV_TOKEN_MAX + 1];
    for (uint32_t c = 1; c < 0x110000; c++) {
        uint32_t d = 0;
        if (c >= 0xd800 && c <= 0xdfff)
            continue;
        int n = cv__utf8_encode(c, buf);
        bad += cv__utf8_decode((const unsigned char *)buf, (size_t)n, &d) != n || d != c;
    }
    ASSERT_EQ(bad, 0);
}

static void expect_refused(const char *name, const char *bytes, size_t n,
                           const struct cv_text_opts *o, cv_status code, const char *msg)
{
    put(name, bytes, n);
    int before = dir_entries();
    struct cv_text_summary s;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_import_text(p(name), p("refused.h5"), o, &s, &err), code);
    ASSERT_STR_CONTAINS(err.msg, msg);
    ASSERT_EQ(dir_entries(), before); /* no output, no temporary */
}

static void test_refused(void)
{
    struct cv_text_opts l = lines_opts(), w = {.window = 8};
    expect_refused("e.txt", "", 0, &l, CV_FORMAT, "e.txt: empty file");
    expect_refused("e2.txt", "\n\r\n\n", 4, &l, CV_FORMAT, "no non-empty line");
    expect_refused("n.txt", "ab\nc\0d\n", 7, &l, CV_FORMAT, "n.txt:2: a NUL byte at byte offset 4");
    expect_refused("c.txt", "ab\ncd\xc3(\n", 8, &l, CV_FORMAT,
                   "c.txt:2: invalid UTF-8 at byte offset 5 (byte 0xc3)");
    expect_refused("t.txt", "abc\xe6\x97", 5, &l, CV_FORMAT,
                   "t.txt:1: invalid UTF-8 at byte offset 3");
    expect_refused("o.txt", "\xc0\xaf", 2, &l, CV_FORMAT, "offset 0 (byte 0xc0)");
    expect_refused("s.txt", "a\xed\xa0\x80", 4, &l, CV_FORMAT, "offset 1 (byte 0xed)");
    expect_refused("h.txt", "\xf4\x90\x80\x80", 4, &l, CV_FORMAT, "offset 0 (byte 0xf4)");
    expect_refused("k.txt", "\x80", 1, &l, CV_FORMAT, "offset 0 (byte 0x80)");
    l.max_length = 3;
    expect_refused("m.txt", "ab\nabc\nabcd\n", 12, &l, CV_FORMAT,
                   "m.txt:3: a line of 4 characters, longer than --max-length 3");
    expect_refused("short.txt", "abcdefgh", 8, &w, CV_FORMAT, "--window 8 needs at least 9");
    w.dev = 1;
    expect_refused("d.txt", "abcdefghi", 9, &w, CV_USAGE, "--dev 1: expected 0 <= N < 1 rows");
    struct cv_text_opts both = {.window = 3, .lines = true};
    expect_refused("b.txt", "abcdefghi", 9, &both, CV_USAGE, "one of --lines or --window");
    struct cv_text_summary s;
    struct cv_error err;
    cv_error_clear(&err);
    struct cv_text_opts ok = lines_opts();
    ASSERT_EQ(cv_import_text(p("missing.txt"), p("x.h5"), &ok, &s, &err), CV_IO);
    ASSERT_STR_CONTAINS(err.msg, "missing.txt: cannot open");
}

/* Rows of the shuffled file, as multisets, are those of the plain one; the
 * same seed gives the same order, another seed another. */
static void test_shuffle_dev(void)
{
    char text[26 * 4 + 1] = "";
    for (int i = 0; i < 26; i++) /* 26 lines: "a", "bb", "ccc", "a" ... */
        strcat(text, (const char *[]){"a\n", "bb\n", "ccc\n"}[i % 3]);
    put("s.txt", text, strlen(text));
    struct cv_text_opts o = {.lines = true, .shuffle = true, .seed = 7, .dev_fraction = 0.25};
    struct cv_text_summary s;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_import_text(p("s.txt"), p("s7.h5"), &o, &s, &err), CV_OK);
    ASSERT_EQ(s.dev_rows, 7); /* round(0.25 x 26) */
    ASSERT_EQ(s.rows, 19);
    ASSERT_EQ(cv_import_text(p("s.txt"), p("s7b.h5"), &o, &s, &err), CV_OK);
    o.seed = 8;
    ASSERT_EQ(cv_import_text(p("s.txt"), p("s8.h5"), &o, &s, &err), CV_OK);
    size_t n1, n2, n3, nd;
    int32_t *a = read_i32(p("s7.h5"), "lengths", &n1), *b = read_i32(p("s7b.h5"), "lengths", &n2);
    int32_t *c = read_i32(p("s8.h5"), "lengths", &n3),
            *d = read_i32(p("s7.h5"), "dev/lengths", &nd);
    ASSERT_TRUE(n1 == 19 && n2 == 19 && n3 == 19 && nd == 7);
    ASSERT_TRUE(same_i32(a, b, 19));
    ASSERT_TRUE(!same_i32(a, c, 19));
    int count[5] = {0};
    for (size_t i = 0; i < n1; i++)
        count[a[i]]++;
    for (size_t i = 0; i < nd; i++)
        count[d[i]]++;
    ASSERT_TRUE(count[2] == 9 && count[3] == 9 && count[4] == 8); /* lengths = line + 1 */
    free(a);
    free(b);
    free(c);
    free(d);
    struct cv_vocab v;
    bool found;
    ASSERT_EQ(cv_vocab_read(p("s7.h5#dev"), &v, &found, &err), CV_OK);
    ASSERT_TRUE(found && v.n == 4 && v.eol == 0);
    cv_vocab_deinit(&v);
}

/* A vocabulary as h5py writes a list of str: variable-length strings. */
static void test_vlen_vocab(void)
{
    hid_t f = H5Fcreate(p("vl.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t n = 3;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    const char *tok[3] = {"x", "\xc3\xa9", "toolong"};
    hid_t a = H5Acreate2(f, "vocab", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, tok);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    struct cv_vocab v;
    bool found;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_vocab_read(p("vl.h5"), &v, &found, &err), CV_FORMAT);
    ASSERT_STR_CONTAINS(err.msg, "not an array of UTF-8 characters");
    ASSERT_TRUE(v.tokens == NULL);
    cv_error_clear(&err);
    ASSERT_EQ(cv_vocab_read(p("w.txt"), &v, &found, &err), CV_FORMAT); /* not HDF5 */
}

/* A file whose vocab attributes are not what caviar writes: refused by
 * name, never read past. */
static void hostile_attr(const char *name, hid_t type, int rank, const hsize_t *dims,
                         const void *data, int eol, const char *msg)
{
    hid_t f = H5Fcreate(p(name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "vocab", type, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, data);
    H5Aclose(a);
    H5Sclose(sp);
    if (eol != -1) {
        sp = H5Screate(H5S_SCALAR);
        a = H5Acreate2(f, "eol_id", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &eol);
        H5Aclose(a);
        H5Sclose(sp);
    }
    H5Fclose(f);
    struct cv_vocab v;
    bool found;
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_vocab_read(p(name), &v, &found, &err), CV_FORMAT);
    ASSERT_STR_CONTAINS(err.msg, msg);
    ASSERT_TRUE(v.tokens == NULL && v.n == 0);
}

static void test_hostile_vocab(void)
{
    const int ints[4] = {1, 2, 3, 4};
    const hsize_t d4 = 4, d22[2] = {2, 2};
    hostile_attr("ints.h5", H5T_NATIVE_INT, 1, &d4, ints, -1, "not an array of UTF-8 characters");
    hostile_attr("2d.h5", H5T_NATIVE_INT, 2, d22, ints, -1, "not a list of 1 to 2^21 tokens");
    hid_t t8 = H5Tcopy(H5T_C_S1);
    H5Tset_size(t8, 8);
    hostile_attr("wide.h5", t8, 1, &d4, "abcdefghabcdefghabcdefghabcdefgh", -1,
                 "not an array of UTF-8 characters");
    H5Tset_size(t8, 1);
    hostile_attr("scalar.h5", t8, 0, NULL, "a", -1, "not a list of 1 to 2^21 tokens");
    hostile_attr("eol.h5", t8, 1, &d4, "abcd", 4, "eol_id (4) is not a token id in [0, 4)");
    hostile_attr("utf8.h5", t8, 1, &d4, "ab\xff\xfe", -1,
                 "vocab token 2 is not one UTF-8 character");
    H5Tclose(t8);
}

/* Out of memory at each allocation: CV_NOMEM, nothing written or leaked. */
static void test_nomem(void)
{
    struct cv_text_opts o = {.lines = true, .shuffle = true, .dev = 1};
    put("nm.txt", "ab\ncd\nef\n", 9);
    int before = dir_entries(), nomem = 0;
    for (long k = 0; k < 40; k++) {
        struct cv_text_summary s;
        struct cv_error err;
        cv_error_clear(&err);
        cv_alloc_fail_after(k);
        cv_status st = cv_import_text(p("nm.txt"), p("nm.h5"), &o, &s, &err);
        cv_alloc_fail_after(-1);
        if (st == CV_OK)
            break;
        nomem += st == CV_NOMEM;
        CV_TEST_REPORT(st == CV_NOMEM, "k %ld: %s", k, err.msg);
        ASSERT_EQ(dir_entries(), before);
    }
    ASSERT_TRUE(nomem >= 6);
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!mkdtemp(dir))
        return 1;
    test_lines();
    test_windows();
    test_utf8();
    test_refused();
    test_shuffle_dev();
    test_vlen_vocab();
    test_hostile_vocab();
    test_nomem();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    TEST_MAIN_END();
}
