/*
 * test_dataset.c - IDX and CSV import into HDF5 and reading it back: values
 * against the source bytes, shuffle reproducibility and permutation, dev
 * split, row-range (shard) reads, and every malformed input, including
 * hostile ones: extents past int (a chunked dataset never written costs no
 * disk), attributes of the wrong size, CSV rows wider than any fixed buffer
 * and NUL bytes inside a field.
 */
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "caviar/dataset.h"
#include "caviar/import.h"
#include "test.h"

#define N 50
#define R 4
#define C 3

static char dir[] = "/tmp/caviar-ds-XXXXXX";
static char paths[4][512];
static int next_path;

/* dir/name in one of four rotating buffers, so a call may use several */
static const char *p(const char *name)
{
    char *b = paths[next_path++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static void put32(unsigned char *b, unsigned v)
{
    b[0] = v >> 24, b[1] = v >> 16, b[2] = v >> 8, b[3] = v;
}

/* images: pixel (i, k) = (7 i + k) % 256; labels: i % 5 */
static void write_idx(const char *name, bool gz, bool images, int n, unsigned magic, int cut)
{
    unsigned char h[16];
    int hl = images ? 16 : 8;
    put32(h, magic);
    put32(h + 4, (unsigned)n);
    put32(h + 8, R);
    put32(h + 12, C);
    size_t body = images ? (size_t)n * R * C : (size_t)n;
    unsigned char *d = malloc(body);
    for (size_t i = 0; i < body; i++)
        d[i] = images ? (unsigned char)((7 * (i / (R * C)) + i % (R * C)) % 256)
                      : (unsigned char)(i % 5);
    body -= (size_t)cut;
    if (gz) {
        gzFile f = gzopen(p(name), "wb");
        gzwrite(f, h, hl);
        gzwrite(f, d, (unsigned)body);
        gzclose(f);
    } else {
        FILE *f = fopen(p(name), "wb");
        fwrite(h, 1, hl, f);
        fwrite(d, 1, body, f);
        fclose(f);
    }
    free(d);
}

static cv_status import(const char *img, const char *lab, bool shuffle, uint64_t seed,
                        long long dev, struct cv_error *e)
{
    struct cv_import_opts o = {.shuffle = shuffle, .seed = seed, .dev = dev};
    struct cv_import_summary s;
    char a[512], b[512];
    snprintf(a, sizeof(a), "%s/%s", dir, img);
    snprintf(b, sizeof(b), "%s/%s", dir, lab);
    cv_error_clear(e);
    return cv_import_idx(a, b, p("out.h5"), &o, &s, e);
}

static void test_idx_round_trip(void)
{
    struct cv_error e;
    write_idx("img.gz", true, true, N, 0x803, 0);
    write_idx("lab", false, false, N, 0x801, 0); /* raw file: gzread passes it through */
    ASSERT_EQ(import("img.gz", "lab", false, 0, 10, &e), CV_OK);
    struct cv_dataset_info in, dv;
    char spec[600];
    ASSERT_EQ(cv_dataset_probe(p("out.h5"), &in, &e), CV_OK);
    ASSERT_EQ(in.n_rows, N - 10);
    ASSERT_EQ(in.features, R * C);
    ASSERT_EQ(in.classes, 5);
    ASSERT_EQ(in.shape[1], R);
    snprintf(spec, sizeof(spec), "%s#dev", p("out.h5"));
    ASSERT_EQ(cv_dataset_probe(spec, &dv, &e), CV_OK);
    ASSERT_EQ(dv.n_rows, 10);
    float x[5 * R * C];
    int32_t y[5];
    ASSERT_EQ(cv_dataset_read_rows(p("out.h5"), 20, 5, x, y, NULL, &e), CV_OK); /* a shard */
    ASSERT_NEAR(x[0], ((7 * 20) % 256) / 255.0, 1e-6);
    ASSERT_NEAR(x[R * C + 3], ((7 * 21 + 3) % 256) / 255.0, 1e-6);
    ASSERT_EQ(y[4], 24 % 5);
    ASSERT_EQ(cv_dataset_read_rows(spec, 0, 1, x, y, NULL, &e), CV_OK); /* dev = last rows */
    ASSERT_NEAR(x[0], ((7 * 40) % 256) / 255.0, 1e-6);
}

static void read_labels(int32_t *y, float *first)
{
    float x[N * R * C];
    struct cv_error e;
    cv_dataset_read_rows(p("out.h5"), 0, N, x, y, NULL, &e);
    for (int i = 0; i < N; i++)
        first[i] = x[(size_t)i * R * C];
}

static void test_shuffle(void)
{
    struct cv_error e;
    int32_t y1[N], y2[N], y3[N];
    float f1[N], f2[N], f3[N];
    import("img.gz", "lab", true, 5, 0, &e);
    read_labels(y1, f1);
    import("img.gz", "lab", true, 5, 0, &e);
    read_labels(y2, f2);
    import("img.gz", "lab", true, 6, 0, &e);
    read_labels(y3, f3);
    int same = 0, diff = 0, seen[N] = {0};
    for (int i = 0; i < N; i++) {
        same += f1[i] == f2[i] && y1[i] == y2[i];
        diff += f1[i] != f3[i];
        int src = (int)(f1[i] * 255.0f + 0.5f) * 183 % 256; /* 7^-1 mod 256 = 183 */
        if (src < N) {
            seen[src]++;
            ASSERT_EQ(y1[i], src % 5); /* the label travelled with its image */
        }
    }
    ASSERT_EQ(same, N);
    ASSERT_TRUE(diff > N / 2);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(seen[i], 1); /* a permutation */
}

static void test_bad_idx(void)
{
    struct cv_error e;
    write_idx("badmagic", false, true, N, 0x802, 0);
    ASSERT_EQ(import("badmagic", "lab", false, 0, 0, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, "magic 0x00000802, expected 0x00000803");
    write_idx("trunc.gz", true, true, N, 0x803, 7);
    ASSERT_EQ(import("trunc.gz", "lab", false, 0, 0, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, "truncated: expected 600 bytes of pixels, got 593");
    write_idx("lab49", false, false, N - 1, 0x801, 0);
    ASSERT_EQ(import("img.gz", "lab49", false, 0, 0, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, "50 images but");
    ASSERT_EQ(import("missing", "lab", false, 0, 0, &e), CV_IO);
    /* 65536 x 65536 pixels an image is 2^32 features: wrapped to 0 in int */
    unsigned char h[16];
    put32(h, 0x803), put32(h + 4, 1), put32(h + 8, 65536), put32(h + 12, 65536);
    FILE *f = fopen(p("huge-img"), "wb");
    fwrite(h, 1, sizeof(h), f);
    fclose(f);
    cv_error_clear(&e);
    ASSERT_EQ(import("huge-img", "lab", false, 0, 0, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, "huge-img: bad image size 65536 x 65536");
    ASSERT_EQ(import("img.gz", "lab", false, 0, N, &e), CV_USAGE); /* dev must leave rows */
}

static void test_csv(void)
{
    struct cv_error e;
    struct cv_import_opts o = {0};
    struct cv_import_summary s;
    FILE *f = fopen(p("a.csv"), "w");
    fprintf(f, "f1,label,f2\n1.5,0,2\n-3,2,4e-1\n7,1,0\n");
    fclose(f);
    cv_error_clear(&e);
    ASSERT_EQ(cv_import_csv(p("a.csv"), "label", true, false, p("c.h5"), &o, &s, &e), CV_OK);
    ASSERT_EQ(s.rows, 3);
    ASSERT_EQ(s.features, 2);
    ASSERT_EQ(s.classes, 3);
    float x[6];
    int32_t y[3];
    ASSERT_EQ(cv_dataset_read_rows(p("c.h5"), 0, 3, x, y, NULL, &e), CV_OK);
    ASSERT_NEAR(x[2], -3, 0);
    ASSERT_NEAR(x[3], 0.4, 1e-7);
    ASSERT_EQ(y[1], 2);
    f = fopen(p("bad.csv"), "w");
    fprintf(f, "1,0,2\n3,1\n");
    fclose(f);
    ASSERT_EQ(cv_import_csv(p("bad.csv"), "1", false, false, p("c2.h5"), &o, &s, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, "bad.csv:2: 2 columns, expected 3");
    f = fopen(p("nan.csv"), "w");
    fprintf(f, "1,0\nabc,1\n");
    fclose(f);
    cv_error_clear(&e);
    ASSERT_EQ(cv_import_csv(p("nan.csv"), "1", false, false, p("c2.h5"), &o, &s, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, "nan.csv:2:1: 'abc' is not a number");
    ASSERT_TRUE(access(p("c2.h5"), F_OK) != 0); /* nothing half-written */
}

static void test_bad_files(void)
{
    struct cv_error e;
    struct cv_dataset_info in;
    cv_error_clear(&e);
    ASSERT_EQ(cv_dataset_probe(p("nope.h5"), &in, &e), CV_IO);
    FILE *f = fopen(p("junk.h5"), "w");
    fprintf(f, "not hdf5");
    fclose(f);
    cv_error_clear(&e);
    ASSERT_EQ(cv_dataset_probe(p("junk.h5"), &in, &e), CV_FORMAT);
    int32_t yb[2] = {0, 7};
    float xb[2] = {1, 2};
    struct cv_split_out sp = {.group = "/",
                              .n_rows = 2,
                              .features = 1,
                              .x_f32 = xb,
                              .y_class = yb,
                              .target_dim = 1,
                              .classes = 5};
    ASSERT_EQ(cv_dataset_write(p("lab7.h5"), &sp, 1, &e), CV_OK);
    float x[2];
    int32_t y[2];
    cv_error_clear(&e);
    ASSERT_EQ(cv_dataset_read_rows(p("lab7.h5"), 0, 2, x, y, NULL, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, "/y[1] = 7: class id outside [0, 5)");
    cv_error_clear(&e);
    ASSERT_EQ(cv_dataset_write("/nonexistent-dir/x.h5", &sp, 1, &e), CV_IO);
}

/* A file with /X alone (3 x 2 uint8, scale 0.5): predict reads it, the
 * training reads refuse it; a labelled file still has its /y checked. */
static void test_features_only(void)
{
    struct cv_error e;
    struct cv_dataset_info in;
    bool labeled = true;
    hid_t f = H5Fcreate(p("xonly.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t d[2] = {3, 2};
    unsigned char px[6] = {0, 2, 4, 6, 8, 10};
    float scale = 0.5f;
    hid_t sp = H5Screate_simple(2, d, NULL), ss = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(f, "X", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, px);
    hid_t a = H5Acreate2(f, "scale", H5T_IEEE_F32LE, ss, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_FLOAT, &scale);
    H5Aclose(a);
    H5Dclose(ds);
    H5Sclose(ss);
    H5Sclose(sp);
    H5Fclose(f);
    cv_error_clear(&e);
    ASSERT_EQ(cv_dataset_probe_features(p("xonly.h5"), &in, &labeled, &e), CV_OK);
    ASSERT_TRUE(!labeled);
    ASSERT_EQ(in.n_rows, 3);
    ASSERT_EQ(in.features, 2);
    float x[4];
    ASSERT_EQ(cv_dataset_read_features(p("xonly.h5"), 1, 2, x, &e), CV_OK);
    ASSERT_NEAR(x[0], 2, 0); /* row 1: bytes 4, 6 times 0.5 */
    ASSERT_NEAR(x[3], 5, 0);
    ASSERT_EQ(cv_dataset_read_features(p("xonly.h5"), 2, 2, x, &e), CV_INVAL);
    cv_error_clear(&e);
    ASSERT_EQ(cv_dataset_probe(p("xonly.h5"), &in, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, "no dataset /y");
    cv_error_clear(&e); /* lab7.h5 (test_bad_files): /y present, so checked */
    ASSERT_EQ(cv_dataset_probe_features(p("lab7.h5"), &in, &labeled, &e), CV_OK);
    ASSERT_TRUE(labeled);
    ASSERT_EQ(in.classes, 5);
}

/* A split whose /X is declared rows x cols (chunked, never written: no
 * disk), /y int32 with attribute classes; `shape` of n_shape ints if > 0. */
static void write_declared(const char *name, hsize_t rows, hsize_t cols, const int *shape,
                           hsize_t n_shape, int classes_n)
{
    hid_t f = H5Fcreate(p(name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dx[2] = {rows, cols}, chunk[2] = {1, cols < 1024 ? cols : 1024}, dy = rows;
    hsize_t ychunk = rows < 1024 ? rows : 1024;
    hid_t plist = H5Pcreate(H5P_DATASET_CREATE), yplist = H5Pcreate(H5P_DATASET_CREATE);
    if (cols > 0) /* a chunk may not be larger than the dataset */
        H5Pset_chunk(plist, 2, chunk);
    H5Pset_chunk(yplist, 1, &ychunk);
    hid_t sx = H5Screate_simple(2, dx, NULL), sy = H5Screate_simple(1, &dy, NULL);
    H5Dclose(H5Dcreate2(f, "X", H5T_IEEE_F32LE, sx, H5P_DEFAULT, plist, H5P_DEFAULT));
    H5Dclose(H5Dcreate2(f, "y", H5T_STD_I32LE, sy, H5P_DEFAULT, yplist, H5P_DEFAULT));
    int classes[2] = {3, 3};
    hsize_t nc = (hsize_t)classes_n;
    hid_t sc = H5Screate_simple(1, &nc, NULL);
    hid_t a = H5Acreate2(f, "classes", H5T_STD_I32LE, sc, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, classes);
    H5Aclose(a);
    if (n_shape > 0) {
        hid_t ss = H5Screate_simple(1, &n_shape, NULL);
        a = H5Acreate2(f, "shape", H5T_STD_I32LE, ss, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, shape);
        H5Aclose(a);
        H5Sclose(ss);
    }
    H5Sclose(sc);
    H5Sclose(sx);
    H5Sclose(sy);
    H5Pclose(plist);
    H5Pclose(yplist);
    H5Fclose(f);
}

/* A split declared as write_declared() does is refused with CV_FORMAT and msg. */
static void probe_refuses(const char *name, hsize_t rows, hsize_t cols, const int *shape,
                          hsize_t n_shape, int classes_n, const char *msg)
{
    struct cv_error e;
    struct cv_dataset_info in;
    write_declared(name, rows, cols, shape, n_shape, classes_n);
    cv_error_clear(&e);
    ASSERT_EQ(cv_dataset_probe(p(name), &in, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, msg);
}

static void test_hostile_h5(void)
{
    struct cv_error e;
    struct cv_dataset_info in;
    int sh[8] = {1, 2, 2, 4, 5, 6, 7, 8}, big[3] = {65536, 65536, 65536};
    write_declared("ok.h5", 4, 4, sh, 3, 1);
    cv_error_clear(&e);
    ASSERT_EQ(cv_dataset_probe(p("ok.h5"), &in, &e), CV_OK);
    ASSERT_EQ(in.features, 4);
    ASSERT_EQ(in.shape[1], 2);
    /* 2^32 + 4 columns used to be read as 4 */
    probe_refuses("wide.h5", 4, ((hsize_t)1 << 32) + 4, NULL, 0, 1,
                  "wide.h5: /X is 4 x 4294967300: expected 1 to 2147483647 columns");
    /* rows x columns floats past the address space */
    probe_refuses("tall.h5", (hsize_t)1 << 62, 16, NULL, 0, 1,
                  "tall.h5: /X is 4611686018427387904 x 16");
    probe_refuses("nocols.h5", 4, 0, NULL, 0, 1, "nocols.h5: /X is 4 x 0");
    /* an attribute larger than its buffer used to be read over the stack */
    probe_refuses("shape8.h5", 4, 4, sh, 8, 1, "shape8.h5: attribute 'shape': expected 3 integers");
    probe_refuses("shape3.h5", 4, 4, sh + 1, 3, 1, /* (2, 2, 4) is 16, not 4 */
                  "shape = (2, 2, 4) does not describe the 4 features");
    probe_refuses("shapebig.h5", 4, 4, big, 3, 1, /* 2^48: would wrap in int */
                  "shape = (65536, 65536, 65536) does not describe");
    probe_refuses("classes2.h5", 4, 4, NULL, 0, 2,
                  "classes2.h5: integer /y needs a positive attribute 'classes'");
}

/* A row of `cols` columns: label first, then the column index. */
static void csv_wide(const char *name, int cols, int rows)
{
    FILE *f = fopen(p(name), "w");
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            fprintf(f, "%d%c", c == 0 ? r % 2 : c + r, c + 1 < cols ? ',' : '\n');
    fclose(f);
}

static void test_hostile_csv(void)
{
    struct cv_error e;
    struct cv_import_opts o = {0};
    struct cv_import_summary s;
    enum { COLS = 5000 }; /* past the 4,096 cells rows used to be cut at */
    csv_wide("wide.csv", COLS, 3);
    cv_error_clear(&e);
    ASSERT_EQ(cv_import_csv(p("wide.csv"), "0", false, false, p("w.h5"), &o, &s, &e), CV_OK);
    ASSERT_EQ(s.features, COLS - 1);
    float *x = calloc(3 * (COLS - 1), sizeof(float));
    int32_t y[3];
    ASSERT_EQ(cv_dataset_read_rows(p("w.h5"), 0, 3, x, y, NULL, &e), CV_OK);
    ASSERT_NEAR(x[COLS - 2], COLS - 1, 0);           /* row 0, last column */
    ASSERT_NEAR(x[2 * (COLS - 1)], 1 + 2, 0);        /* row 2, first feature */
    ASSERT_NEAR(x[3 * (COLS - 1) - 1], COLS + 1, 0); /* row 2, last column */
    ASSERT_EQ(y[1], 1);
    free(x);
    FILE *f = fopen(p("nul.csv"), "w");
    fprintf(f, "1,0,2\n3,1,4\n5,0,");
    fputc('7', f);
    fputc('\0', f);
    fprintf(f, "9\n");
    fclose(f);
    cv_error_clear(&e);
    ASSERT_EQ(cv_import_csv(p("nul.csv"), "1", false, false, p("n.h5"), &o, &s, &e), CV_FORMAT);
    ASSERT_STR_CONTAINS(e.msg, "nul.csv:3:3: a NUL byte inside the field");
    ASSERT_TRUE(access(p("n.h5"), F_OK) != 0);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    test_idx_round_trip();
    test_shuffle();
    test_bad_idx();
    test_csv();
    test_bad_files();
    test_hostile_h5();
    test_hostile_csv();
    test_features_only();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}
