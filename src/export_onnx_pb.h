/*
 * export_onnx_pb.h - the few protobuf wire-format writes an ONNX file needs
 * (ref: protobuf.dev/programming-guides/encoding): varints, fixed32 floats,
 * length-delimited strings, bytes and nested messages, into a growable
 * buffer.  Write-only: caviar never reads ONNX.  A failed allocation sticks
 * (pb->oom) and later writes do nothing, so a caller checks once at the end.
 * docs/export.md says why this is hand-written rather than generated.
 */
#ifndef CV_EXPORT_ONNX_PB_H
#define CV_EXPORT_ONNX_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cv_pb {
    unsigned char *p; /* encoded bytes (owned) */
    size_t n;         /* bytes used */
    size_t cap;       /* bytes allocated */
    bool oom;         /* an allocation failed: the buffer is incomplete */
};

void cv__pb_free(struct cv_pb *b); /* frees p, leaves an empty buffer */

/* Field `field` of the current message, by wire type. */
void cv__pb_varint(struct cv_pb *b, int field, uint64_t v);    /* int32/int64/enum/bool */
void cv__pb_float(struct cv_pb *b, int field, float v);        /* float (fixed32) */
void cv__pb_string(struct cv_pb *b, int field, const char *s); /* string */
void cv__pb_bytes(struct cv_pb *b, int field, const void *data, size_t n);
/* Floats as little-endian bytes (TensorProto.raw_data), whatever the host. */
void cv__pb_floats_le(struct cv_pb *b, int field, const float *v, size_t n);
/* A nested message already encoded in sub (not freed). */
void cv__pb_message(struct cv_pb *b, int field, const struct cv_pb *sub);

#endif /* CV_EXPORT_ONNX_PB_H */
