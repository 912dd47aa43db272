/*
 * export_onnx_pb.c - protobuf wire-format writer for the ONNX exporter
 * (export_onnx_pb.h).  Fields are written in the order they are called;
 * repeated scalars go unpacked, which every protobuf parser accepts for the
 * proto2 fields of onnx.proto.
 */
#include <stdlib.h>
#include <string.h>

#include "export_onnx_pb.h"
#include "util.h"

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

void cv__pb_free(struct cv_pb *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static unsigned char *grow(struct cv_pb *b, size_t more)
{
    if (b->oom)
        return NULL;
    if (more > SIZE_MAX / 2 - b->n) {
        b->oom = true;
        return NULL;
    }
    if (b->n + more > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + more)
            cap *= 2;
        unsigned char *p = cv_realloc(b->p, cap, 1);
        if (!p) {
            b->oom = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    unsigned char *at = b->p + b->n;
    b->n += more;
    return at;
}

static void raw_varint(struct cv_pb *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t k = 0;
    do {
        tmp[k++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    unsigned char *at = grow(b, k);
    if (at)
        memcpy(at, tmp, k);
}

static void tag(struct cv_pb *b, int field, int wire)
{
    raw_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

void cv__pb_varint(struct cv_pb *b, int field, uint64_t v)
{
    tag(b, field, WIRE_VARINT);
    raw_varint(b, v);
}

static void put_le32(unsigned char *at, uint32_t u)
{
    for (int i = 0; i < 4; i++)
        at[i] = (unsigned char)(u >> (8 * i));
}

void cv__pb_float(struct cv_pb *b, int field, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    tag(b, field, WIRE_FIXED32);
    unsigned char *at = grow(b, 4);
    if (at)
        put_le32(at, u);
}

void cv__pb_bytes(struct cv_pb *b, int field, const void *data, size_t n)
{
    tag(b, field, WIRE_LEN);
    raw_varint(b, n);
    unsigned char *at = grow(b, n);
    if (at && n)
        memcpy(at, data, n);
}

void cv__pb_string(struct cv_pb *b, int field, const char *s)
{
    cv__pb_bytes(b, field, s, strlen(s));
}

void cv__pb_floats_le(struct cv_pb *b, int field, const float *v, size_t n)
{
    if (n > SIZE_MAX / 4) {
        b->oom = true;
        return;
    }
    tag(b, field, WIRE_LEN);
    raw_varint(b, n * 4);
    unsigned char *at = grow(b, n * 4);
    for (size_t i = 0; at && i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof(u));
        put_le32(at + 4 * i, u);
    }
}

void cv__pb_message(struct cv_pb *b, int field, const struct cv_pb *sub)
{
    if (sub->oom)
        b->oom = true;
    cv__pb_bytes(b, field, sub->p, sub->n);
}
