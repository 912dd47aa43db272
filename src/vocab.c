/*
 * vocab.c - looking characters up in a vocabulary (caviar/text.h); reading
 * and writing one is text_h5.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "caviar/text.h"
#include "text_internal.h"

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

void cv_vocab_deinit(struct cv_vocab *v)
{
    free(v->tokens);
    *v = (struct cv_vocab){0, NULL, -1};
}
