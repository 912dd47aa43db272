/*
 * sample.h - text from a character-level language model (`caviar sample`):
 * a model trained on a `caviar import text` dataset (an embedding of the
 * tokens, recurrent layers returning every step, a per-step softmax) and
 * the vocabulary stored with it (caviar/text.h).
 */
#ifndef CAVIAR_SAMPLE_H
#define CAVIAR_SAMPLE_H

#include <stdint.h>

#include "caviar/model.h"
#include "caviar/status.h"
#include "caviar/text.h"

struct cv_sample_opts {
    const char *prime;  /* UTF-8 text fed first and printed as given (NULL = none) */
    long long length;   /* characters to generate at most, 0 to 2^24 */
    double temperature; /* > 0: below 1 sharper, above 1 flatter than the model */
    uint64_t seed;      /* the same seed gives the same text */
};

/* Generate text from m (built for batches of at least 1) with vocabulary v:
 * *text (malloc'd, UTF-8, the caller frees) is the prime followed by the
 * sampled characters.  A lines model (v->eol >= 0) starts each text after
 * an end of line and stops at the next one or at its longest line; a window
 * model without a prime starts after a newline.  name is the model file,
 * for messages.  Errors: CV_USAGE (temperature <= 0, a prime character not
 * in the vocabulary, a prime longer than a lines model's rows), CV_FORMAT (a
 * model that does not read and predict this vocabulary's tokens per step),
 * CV_NOMEM.  Local: no collectives. */
cv_status cv_sample(cv_model *m, const struct cv_vocab *v, const struct cv_sample_opts *o,
                    const char *name, char **text, struct cv_error *err);

#endif /* CAVIAR_SAMPLE_H */
