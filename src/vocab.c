/*
 * vocab.c - looking characters up in a vocabulary (caviar/text.h); reading
 * and writing one is text_h5.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "caviar/text.h"
#include "text_internal.h"
#include "util.h"

int cv_vocab_find(const struct cv_vocab *v, const char *text, int *len)
{
    uint32_t c;
    *len = cv__utf8_decode((const unsigned char *)text, strnlen(text, CV_TOKEN_MAX), &c);
    if (*len == 0)
        return -1;
    for (int i = 0; i < v->n; i++)
        if (!strncmp(v->tokens[i], text, (size_t)*len) && v->tokens[i][*len] == '\0')
            return i;
    return -1;
}

cv_status cv_vocab_copy(struct cv_vocab *dst, const struct cv_vocab *src, struct cv_error *err)
{
    const size_t w = CV_TOKEN_MAX + 1;
    struct cv_vocab v = {0, cv_calloc((size_t)src->n, sizeof(char *) + w), src->eol};
    if (!v.tokens)
        return cv_fail(err, CV_NOMEM, "out of memory for a vocabulary of %d tokens", src->n);
    char *p = (char *)(v.tokens + src->n);
    for (; v.n < src->n; v.n++) {
        v.tokens[v.n] = p + (size_t)v.n * w;
        strncpy(v.tokens[v.n], src->tokens[v.n], CV_TOKEN_MAX);
    }
    cv_vocab_deinit(dst);
    *dst = v;
    return CV_OK;
}

void cv_vocab_deinit(struct cv_vocab *v)
{
    free(v->tokens);
    *v = (struct cv_vocab){0, NULL, -1};
}
