/*
 * test_export_onnx.c - the ONNX exporter's own parts: the protobuf wire
 * format against encodings worked out by hand from the protobuf spec; an
 * export of a residual CNN whose bytes begin as a ModelProto must; every
 * allocation failing in turn (CV_NOMEM, nothing written, no leak under
 * ASan); and a layer type without an emitter refused by name.  Agreement
 * with real ONNX consumers is tests/e2e/test_onnx.sh.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caviar/config.h"
#include "caviar/export.h"
#include "export_onnx_internal.h"
#include "test.h"
#include "util.h"

static void expect_bytes(const struct cv_pb *b, const unsigned char *want, size_t n,
                         const char *what)
{
    CV_TEST_REPORT(b->n == n && !memcmp(b->p, want, n), "%s: %zu bytes, expected %zu", what, b->n,
                   n);
}

static void test_wire(void)
{
    struct cv_pb b = {0}, sub = {0};
    cv__pb_varint(&b, 1, 300); /* tag 1<<3|0, then 300 = 0b10_0101100 in 7-bit groups */
    expect_bytes(&b, (const unsigned char[]){0x08, 0xac, 0x02}, 3, "varint 300");
    cv__pb_free(&b);
    cv__pb_varint(&b, 1, (uint64_t)-1); /* an int64 -1: ten bytes */
    expect_bytes(&b,
                 (const unsigned char[]){0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0x01},
                 11, "varint -1");
    cv__pb_free(&b);
    cv__pb_float(&b, 2, 1.0f); /* tag 2<<3|5, IEEE 754 0x3f800000 little-endian */
    expect_bytes(&b, (const unsigned char[]){0x15, 0x00, 0x00, 0x80, 0x3f}, 5, "float 1");
    cv__pb_free(&b);
    cv__pb_string(&sub, 1, "ab");
    cv__pb_message(&b, 20, &sub); /* tag 20<<3|2 = 162 = 0xa2 0x01 */
    expect_bytes(&b, (const unsigned char[]){0xa2, 0x01, 0x04, 0x0a, 0x02, 'a', 'b'}, 7,
                 "nested message, field 20");
    cv__pb_free(&b);
    cv__pb_floats_le(&b, 9, (const float[]){-2.0f}, 1); /* -2 = 0xc0000000 */
    expect_bytes(&b, (const unsigned char[]){0x4a, 0x04, 0x00, 0x00, 0x00, 0xc0}, 6, "raw floats");
    cv__pb_free(&b);
    cv__pb_free(&sub);
}

static const char res_yaml[] = "data: {train: unused.h5}\n"
                               "model:\n"
                               "  input: [2, 5, 5]\n"
                               "  layers:\n"
                               "    - {type: conv2d, filters: 3, size: 3, pad: same}\n"
                               "    - type: residual\n"
                               "      layers:\n"
                               "        - {type: conv2d, filters: 4, size: 3, stride: 2, pad: 1}\n"
                               "        - {type: batchnorm, activation: relu}\n"
                               "    - {type: maxpool, size: 2, stride: 1}\n"
                               "    - {type: dense, units: 3, activation: softmax}\n"
                               "train: {optimizer: adam, lr: 1.0e-3, batch: 4, epochs: 1}\n";

/* every sequence layer: the embedding, the recurrent ops' weights and a
 * per-step dense */
static const char seq_yaml[] =
    "data: {train: unused.h5}\n"
    "model:\n"
    "  input: [6]\n"
    "  layers:\n"
    "    - {type: embedding, vocab: 5, dim: 3, pad_id: 0}\n"
    "    - {type: bidirectional, layer: {type: gru, units: 4, return_sequences: true}}\n"
    "    - {type: lstm, units: 3, return_sequences: true}\n"
    "    - {type: rnn, units: 2, return_sequences: true}\n"
    "    - {type: dense, units: 5, activation: softmax}\n"
    "train: {optimizer: adam, lr: 1.0e-3, batch: 4, epochs: 1}\n";

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_export(cv_model *m, const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/m.onnx", dir);
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_EQ(cv_export_onnx(m, path, &err), CV_OK);
    FILE *f = fopen(path, "rb");
    unsigned char head[2] = {0};
    ASSERT_TRUE(f && fread(head, 1, 2, f) == 2);
    if (f)
        fclose(f);
    ASSERT_EQ(head[0], 0x08); /* ModelProto.ir_version first ... */
    ASSERT_EQ(head[1], CV_ONNX_IR_VERSION);
    unlink(path);
    cv_error_clear(&err);
    snprintf(path, sizeof(path), "%s/no-dir/m.onnx", dir);
    ASSERT_EQ(cv_export_onnx(m, path, &err), CV_IO);
    ASSERT_STR_CONTAINS(err.msg, "no-dir");
}

/* Allocation k of an export failing: CV_NOMEM and no file, until it succeeds. */
static void test_nomem(cv_model *m, const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/oom.onnx", dir);
    long k = 0;
    for (; k < 100000; k++) {
        struct cv_error err;
        cv_error_clear(&err);
        cv_alloc_fail_after(k);
        cv_status st = cv_export_onnx(m, path, &err);
        cv_alloc_fail_after(-1);
        if (st == CV_OK)
            break;
        CV_TEST_REPORT(st == CV_NOMEM, "allocation %ld failing: %s (%s)", k, cv_status_str(st),
                       err.msg);
        CV_TEST_REPORT(!exists(path), "allocation %ld failing: %s was written", k, path);
    }
    CV_TEST_REPORT(k > 0 && exists(path), "export made %ld allocations", k);
    printf("export: %ld allocations, each failure a clean CV_NOMEM\n", k);
    unlink(path);
}

static void test_no_emitter(void)
{
    struct cv_layer_ops ops = {.type = CV_LAYER_TYPE_COUNT}; /* a type with no emitter */
    struct cv_layer_spec spec = {.line = 17};
    struct cv_layer l = {.ops = &ops, .spec = &spec, .index = 4};
    struct cv_onnx g = {0};
    struct cv_onnx_val v = {.name = "input", .shape = {1, 1, 1}, .rank = 2};
    struct cv_error err;
    cv_error_clear(&err);
    ASSERT_TRUE(cv__onnx_emitter(CV_LAYER_TYPE_COUNT) == NULL);
    ASSERT_EQ(cv__onnx_layer(&g, &l, &v, &err), CV_INVAL);
    ASSERT_STR_CONTAINS(err.msg, "layer 4");
    ASSERT_STR_CONTAINS(err.msg, "line 17");
    ASSERT_STR_CONTAINS(err.msg, "no form");
    ASSERT_EQ(g.graph.n, 0); /* nothing emitted */
    /* every layer type has an emitter */
    for (int t = 0; t < CV_LAYER_TYPE_COUNT; t++)
        CV_TEST_REPORT(cv__onnx_emitter((enum cv_layer_type)t) != NULL, "type %s: no emitter",
                       cv_layer_type_name((enum cv_layer_type)t));
}

/* Export and every allocation failing, for the model of yaml. */
static int exports(const char *yaml, const char *name, const char *dir)
{
    struct cv_config *cfg = NULL;
    cv_model *m = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    if (cv_config_parse(yaml, name, NULL, 0, &cfg, &err) != CV_OK ||
        cv_model_create(cfg, 4, &m, &err) != CV_OK) {
        fprintf(stderr, "fixture %s: %s\n", name, err.msg);
        cv_config_free(cfg);
        return 1;
    }
    cv_model_init_params(m, 3);
    test_export(m, dir);
    test_nomem(m, dir);
    cv_model_free(m);
    cv_config_free(cfg);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/cv-test-export.XXXXXX";
    test_wire();
    test_no_emitter();
    if (!mkdtemp(dir) || exports(res_yaml, "res.yaml", dir) || exports(seq_yaml, "seq.yaml", dir))
        return 1;
    rmdir(dir);
    TEST_MAIN_END();
}
