/*
 * text.h - character-level text data: `caviar import text` turns a UTF-8
 * text file into a sequence dataset (docs/dataset-format.md, "Sequence
 * datasets"), and the vocabulary it stores travels with a trained model so
 * that `caviar sample` can turn token ids back into characters.
 *
 * A token is one Unicode code point.  Ids follow code point order.  In lines
 * mode one more token, the end of line ("\n", id eol), starts every row as
 * its input and ends it as its last target, so a model learns where a line
 * begins and ends.  Nothing here trains or runs a model (src/sample.c does).
 */
#ifndef CAVIAR_TEXT_H
#define CAVIAR_TEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "caviar/status.h"

/* ---- vocabulary ---- */

struct cv_vocab {
    int n;         /* V tokens, ids 0 .. V-1 */
    char **tokens; /* (V) UTF-8 strings, one block for free() */
    int eol;       /* id of the end-of-line token (lines mode), or -1 */
};

/* Read the vocabulary stored with a dataset split ("file.h5" or
 * "file.h5#group": attributes vocab and eol_id of the split's group, or of
 * the root) or with a model file (the same attributes at its root).
 * *found is false (and v empty) when there is none.  Errors: CV_IO (no
 * such file), CV_FORMAT (a vocab that is not a string array, an eol_id
 * outside it, tokens that are not one UTF-8 character each), CV_NOMEM. */
cv_status cv_vocab_read(const char *spec, struct cv_vocab *v, bool *found, struct cv_error *err);
void cv_vocab_deinit(struct cv_vocab *v); /* empty (or never read) is harmless */
/* Replace *dst (empty or owned) with a copy of src.  Errors: CV_NOMEM
 * (dst unchanged). */
cv_status cv_vocab_copy(struct cv_vocab *dst, const struct cv_vocab *src, struct cv_error *err);

/* The id of the token at the start of text (one UTF-8 character, *len its
 * bytes), or -1 when it is not in the vocabulary. */
int cv_vocab_find(const struct cv_vocab *v, const char *text, int *len);

/* ---- import ---- */

struct cv_text_opts {
    int window;          /* windows mode: T steps per row (T + 1 characters) */
    int stride;          /* windows mode: characters between row starts (0 = T) */
    bool lines;          /* lines mode instead: one row per non-empty line */
    int max_length;      /* lines mode: longest line allowed, in characters (0 = any) */
    bool shuffle;        /* permute rows (keyed by seed) before the dev split */
    uint64_t seed;       /* shuffle key */
    long long dev;       /* rows held out into group "dev" ... */
    double dev_fraction; /* ... or this fraction of them (rounded) when dev is 0 */
};

struct cv_text_summary {
    long long rows;     /* training rows (root group) */
    long long dev_rows; /* rows in group "dev" */
    int steps;          /* T */
    int vocab;          /* V */
    long long chars;    /* characters read (code points, line ends included) */
};

/* Read the UTF-8 text file `path` and write the dataset `out` atomically
 * (nothing is left at out on failure).  Errors, naming the file and the
 * line and byte offset where it applies: CV_IO (cannot read or write),
 * CV_FORMAT (empty input, invalid UTF-8, a NUL byte, a line longer than
 * max_length, too few characters for one window), CV_USAGE (options that
 * do not fit the data: dev as large as the rows), CV_NOMEM. */
cv_status cv_import_text(const char *path, const char *out, const struct cv_text_opts *o,
                         struct cv_text_summary *sum, struct cv_error *err);

#endif /* CAVIAR_TEXT_H */
