/*
 * test_dataset.c - IDX and CSV import into HDF5 and reading it back: values
 * against the source bytes, shuffle reproducibility and permutation, dev
 * split, row-range (shard) reads, and every malformed input.
 */
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

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    test_idx_round_trip();
    test_shuffle();
    test_bad_idx();
    test_csv();
    test_bad_files();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}
