/*
 * text_internal.h - what import_text.c, sample.c and text_h5.c share: the
 * sequence splits a text import writes, and the HDF5 vocabulary attributes
 * (text_h5.c is the only one of them that includes <hdf5.h>).
 */
#ifndef CV_TEXT_INTERNAL_H
#define CV_TEXT_INTERNAL_H

#include <stdint.h>

#include "caviar/text.h"

/* Longest token in bytes: one UTF-8 encoded code point. */
#define CV_TOKEN_MAX 4

/* One split of a sequence dataset (docs/dataset-format.md). */
struct cv__seq_split {
    const char *group;      /* "/" or "dev" */
    long long n_rows;       /* N */
    int steps;              /* T */
    const int32_t *x;       /* (N, T) input token ids */
    const int32_t *y;       /* (N, T) next-token targets */
    const int32_t *lengths; /* (N) steps in [1, T], or NULL when every row has T */
};

/* Write the splits with the vocabulary v into `path` atomically (temporary
 * file, fsync, rename).  CV_IO naming path on failure; nothing is left. */
cv_status cv__seq_write(const char *path, const struct cv__seq_split *s, int n_splits,
                        const struct cv_vocab *v, struct cv_error *err);

/* The UTF-8 encoding of code point c into buf (CV_TOKEN_MAX + 1 bytes,
 * NUL-terminated); its length.  c must be a valid scalar value. */
int cv__utf8_encode(uint32_t c, char *buf);

/* Decode one UTF-8 character at s (n bytes available): its length (1-4) and
 * code point in *c, or 0 if the bytes there are not valid UTF-8 (overlong,
 * surrogate, beyond U+10FFFF, truncated or a stray continuation byte). */
int cv__utf8_decode(const unsigned char *s, size_t n, uint32_t *c);

/* The index drawn from probabilities p (n) sharpened (temperature < 1) or
 * flattened (> 1): p_i^(1/temperature), renormalised, at the uniform draw
 * u in [0, 1).  Zero entries are never drawn unless all are. */
int cv__sample_pick(const float *p, int n, double temperature, double u);

#endif /* CV_TEXT_INTERNAL_H */
