/*
 * import_text.c - `caviar import text`: a UTF-8 text file to a character
 * level sequence dataset (docs/dataset-format.md, "Sequence datasets").
 *
 * The file is read whole and decoded to code points (invalid UTF-8 and NUL
 * bytes are refused, naming the line and byte offset); the vocabulary is
 * the set of code points, in code point order.  Rows are windows of T + 1
 * characters (inputs = the first T, targets = the last T) or, in lines mode,
 * one line each: inputs "\n" c1 .. cL, targets c1 .. cL "\n", length L + 1,
 * padded to T with the end-of-line id.  Writing is text_h5.c's.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_internal.h"
#include "text_internal.h"
#include "util.h"

#define MAX_CODE 0x110000u /* code points are below this */

/* The decoded text and the rows cut from it. */
struct text {
    uint32_t *cp;     /* (n) code points */
    long long n;      /* characters */
    int32_t *id;      /* (MAX_CODE) code point -> token id, -1 if unused */
    long long *start; /* (rows) first character of each row */
    int32_t *len;     /* (rows) characters of each row's line (lines mode) or T */
    long long rows, cap;
    int steps; /* T */
};

/* ---- reading and decoding ---- */

static cv_status read_all(const char *path, unsigned char **buf, size_t *n, struct cv_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cv_fail(err, CV_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 0, len = 0, got;
    unsigned char *b = NULL;
    cv_status st = CV_OK;
    do {
        if (len == cap) {
            unsigned char *nb = cv_realloc(b, cap ? 2 * cap : 1 << 16, 1);
            if (!nb) {
                st = cv_fail(err, CV_NOMEM, "%s: out of memory reading it", path);
                break;
            }
            b = nb;
            cap = cap ? 2 * cap : 1 << 16;
        }
        got = fread(b + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    if (st == CV_OK && ferror(f))
        st = cv_fail(err, CV_IO, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    *buf = b;
    *n = len;
    return st;
}

int cv__utf8_decode(const unsigned char *s, size_t n, uint32_t *c)
{
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000}; /* shortest form */
    int len = s[0] < 0x80             ? 1
              : (s[0] & 0xe0) == 0xc0 ? 2
              : (s[0] & 0xf0) == 0xe0 ? 3
              : (s[0] & 0xf8) == 0xf0 ? 4
                                      : 0;
    if (len == 0 || (size_t)len > n)
        return 0;
    uint32_t v = len == 1 ? s[0] : s[0] & (0x7f >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min[len] || v >= MAX_CODE || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *c = v;
    return len;
}

int cv__utf8_encode(uint32_t c, char *buf)
{
    int n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    static const unsigned char lead[5] = {0, 0, 0xc0, 0xe0, 0xf0};
    for (int i = n - 1; i > 0; i--, c >>= 6)
        buf[i] = (char)(0x80 | (c & 0x3f));
    buf[0] = (char)(n == 1 ? c : (lead[n] | c));
    buf[n] = '\0';
    return n;
}

/* Decode b (n bytes) into t->cp; a leading byte order mark is skipped. */
static cv_status decode(const unsigned char *b, size_t n, const char *path, struct text *t,
                        struct cv_error *err)
{
    size_t i = n >= 3 && !memcmp(b, "\xef\xbb\xbf", 3) ? 3 : 0;
    long line = 1;
    t->cp = cv_calloc(n + 1, sizeof(uint32_t));
    if (!t->cp)
        return cv_fail(err, CV_NOMEM, "%s: out of memory for %zu characters", path, n);
    while (i < n) {
        uint32_t c;
        int len = cv__utf8_decode(b + i, n - i, &c);
        if (b[i] == 0)
            return cv_fail(err, CV_FORMAT, "%s:%ld: a NUL byte at byte offset %zu", path, line, i);
        if (len == 0)
            return cv_fail(err, CV_FORMAT, "%s:%ld: invalid UTF-8 at byte offset %zu (byte 0x%02x)",
                           path, line, i, b[i]);
        t->cp[t->n++] = c;
        line += c == '\n';
        i += (size_t)len;
    }
    if (t->n == 0)
        return cv_fail(err, CV_FORMAT, "%s: empty file: no characters to learn from", path);
    return CV_OK;
}

/* ---- vocabulary ---- */

/* Ids in code point order for the characters of the file, or in lines mode
 * of the lines (whose ends, "\n" or "\r\n", become the end-of-line token). */
static cv_status build_vocab(struct text *t, bool lines, struct cv_vocab *v, const char *path,
                             struct cv_error *err)
{
    t->id = cv_calloc(MAX_CODE, sizeof(int32_t));
    if (!t->id)
        return cv_fail(err, CV_NOMEM, "%s: out of memory for the vocabulary", path);
    for (long long r = 0; lines && r < t->rows; r++)
        for (long long i = 0; i < t->len[r]; i++)
            t->id[t->cp[t->start[r] + i]] = 1;
    for (long long i = 0; !lines && i < t->n; i++)
        t->id[t->cp[i]] = 1;
    if (lines)
        t->id['\n'] = 1;
    int n = 0;
    for (uint32_t c = 0; c < MAX_CODE; c++)
        n += t->id[c];
    v->tokens = cv_calloc((size_t)n, sizeof(char *) + CV_TOKEN_MAX + 1);
    if (!v->tokens)
        return cv_fail(err, CV_NOMEM, "%s: out of memory for %d tokens", path, n);
    char *p = (char *)(v->tokens + n);
    for (uint32_t c = 0; c < MAX_CODE; c++) {
        if (!t->id[c]) {
            t->id[c] = -1;
            continue;
        }
        t->id[c] = v->n;
        v->tokens[v->n] = p + (size_t)v->n * (CV_TOKEN_MAX + 1);
        cv__utf8_encode(c, v->tokens[v->n++]);
    }
    v->eol = lines ? t->id['\n'] : -1;
    return CV_OK;
}

/* ---- rows ---- */

static cv_status add_row(struct text *t, long long start, int32_t len, const char *path,
                         struct cv_error *err)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? 2 * (size_t)t->cap : 4096;
        long long *s = cv_realloc(t->start, cap, sizeof(*s));
        if (s)
            t->start = s;
        int32_t *l = s ? cv_realloc(t->len, cap, sizeof(*l)) : NULL;
        if (!l)
            return cv_fail(err, CV_NOMEM, "%s: out of memory for %zu rows", path, cap);
        t->len = l;
        t->cap = (long long)cap;
    }
    t->start[t->rows] = start;
    t->len[t->rows++] = len;
    return CV_OK;
}

/* One row per non-empty line; a "\r" before the "\n" is not part of it. */
static cv_status cut_lines(struct text *t, int max_length, const char *path, struct cv_error *err)
{
    long line = 0;
    int longest = 0;
    cv_status st = CV_OK;
    for (long long i = 0; i < t->n && st == CV_OK; i++) {
        long long s = i;
        while (i < t->n && t->cp[i] != '\n')
            i++;
        long long e = i > s && t->cp[i - 1] == '\r' ? i - 1 : i;
        line++;
        if (e == s)
            continue;
        if (max_length > 0 && e - s > max_length)
            return cv_fail(err, CV_FORMAT,
                           "%s:%ld: a line of %lld characters, longer than --max-length %d", path,
                           line, e - s, max_length);
        if (e - s >= (1 << 30))
            return cv_fail(err, CV_FORMAT, "%s:%ld: a line of %lld characters: too long", path,
                           line, e - s);
        longest = e - s > longest ? (int)(e - s) : longest;
        st = add_row(t, s, (int32_t)(e - s), path, err);
    }
    if (st == CV_OK && t->rows == 0)
        return cv_fail(err, CV_FORMAT, "%s: no non-empty line", path);
    t->steps = (max_length > 0 ? max_length : longest) + 1;
    return st;
}

static cv_status cut_windows(struct text *t, int steps, int stride, const char *path,
                             struct cv_error *err)
{
    if (t->n < (long long)steps + 1)
        return cv_fail(err, CV_FORMAT,
                       "%s: %lld characters: --window %d needs at least %d for one row", path, t->n,
                       steps, steps + 1);
    cv_status st = CV_OK;
    for (long long s = 0; s + steps + 1 <= t->n && st == CV_OK; s += stride)
        st = add_row(t, s, steps, path, err);
    t->steps = steps;
    return st;
}

/* Inputs and targets of every row (N, T): see the top of the file. */
static void fill(const struct text *t, const struct cv_vocab *v, int32_t *x, int32_t *y)
{
    const int T = t->steps;
    for (long long r = 0; r < t->rows; r++) {
        int32_t *xr = x + r * T, *yr = y + r * T;
        const uint32_t *c = t->cp + t->start[r];
        if (v->eol < 0) {
            for (int k = 0; k < T; k++) {
                xr[k] = t->id[c[k]];
                yr[k] = t->id[c[k + 1]];
            }
            continue;
        }
        int L = t->len[r];
        for (int k = 0; k < T; k++) {
            xr[k] = k == 0 ? v->eol : k <= L ? t->id[c[k - 1]] : v->eol;
            yr[k] = k < L ? t->id[c[k]] : v->eol;
        }
    }
}

/* ---- writing ---- */

static cv_status dev_rows(const struct cv_text_opts *o, long long rows, long long *dev,
                          struct cv_error *err)
{
    *dev = o->dev > 0 ? o->dev : (long long)llround(o->dev_fraction * (double)rows);
    if (*dev < 0 || *dev >= rows)
        return cv_fail(err, CV_USAGE, "--dev %lld: expected 0 <= N < %lld rows", *dev, rows);
    return CV_OK;
}

static cv_status write_rows(struct text *t, const struct cv_vocab *v, const char *out,
                            const struct cv_text_opts *o, struct cv_text_summary *sum,
                            struct cv_error *err)
{
    long long dev;
    cv_status st = dev_rows(o, t->rows, &dev, err);
    size_t cells;
    if (st == CV_OK && __builtin_mul_overflow((size_t)t->rows, (size_t)t->steps, &cells))
        st = cv_fail(err, CV_NOMEM, "%s: %lld rows of %d steps: too large", out, t->rows, t->steps);
    int32_t *x = st == CV_OK ? cv_calloc_big(cells, sizeof(int32_t)) : NULL;
    int32_t *y = x ? cv_calloc_big(cells, sizeof(int32_t)) : NULL;
    if (st == CV_OK && !y)
        st = cv_fail(err, CV_NOMEM, "%s: out of memory for %lld rows of %d steps", out, t->rows,
                     t->steps);
    if (st == CV_OK) {
        fill(t, v, x, y);
        long long keep = t->rows - dev;
        int32_t *lens = o->lines ? t->len : NULL;
        for (long long r = 0; lens && r < t->rows; r++)
            lens[r] += 1; /* the end of line counts as a step */
        struct cv__seq_split s[2] = {{"/", keep, t->steps, x, y, lens},
                                     {"dev", dev, t->steps, x + keep * t->steps,
                                      y + keep * t->steps, lens ? lens + keep : NULL}};
        st = cv__seq_write(out, s, dev > 0 ? 2 : 1, v, err);
        *sum = (struct cv_text_summary){keep, dev, t->steps, v->n, t->n};
    }
    free(x);
    free(y);
    return st;
}

static cv_status check_opts(const struct cv_text_opts *o, struct cv_error *err)
{
    if (o->lines == (o->window > 0))
        return cv_fail(err, CV_USAGE, "expected one of --lines or --window T");
    if (o->window < 0 || o->stride < 0 || o->max_length < 0 || o->dev < 0)
        return cv_fail(err, CV_USAGE, "negative --window, --stride, --max-length or --dev");
    if (!(o->dev_fraction >= 0 && o->dev_fraction < 1))
        return cv_fail(err, CV_USAGE, "--dev %g: a fraction must be in [0, 1)", o->dev_fraction);
    return CV_OK;
}

cv_status cv_import_text(const char *path, const char *out, const struct cv_text_opts *o,
                         struct cv_text_summary *sum, struct cv_error *err)
{
    struct text t = {0};
    struct cv_vocab v = {0, NULL, -1};
    unsigned char *buf = NULL;
    size_t n = 0;
    cv_status st = check_opts(o, err);
    if (st == CV_OK)
        st = read_all(path, &buf, &n, err);
    if (st == CV_OK)
        st = decode(buf, n, path, &t, err);
    free(buf);
    if (st == CV_OK)
        st = o->lines ? cut_lines(&t, o->max_length, path, err)
                      : cut_windows(&t, o->window, o->stride ? o->stride : o->window, path, err);
    if (st == CV_OK)
        st = build_vocab(&t, o->lines, &v, path, err);
    if (st == CV_OK && o->shuffle)
        st = cv__import_shuffle(t.start, sizeof(*t.start), t.len, sizeof(*t.len), t.rows, o->seed,
                                err);
    if (st == CV_OK)
        st = write_rows(&t, &v, out, o, sum, err);
    free(t.cp);
    free(t.id);
    free(t.start);
    free(t.len);
    cv_vocab_deinit(&v);
    return st;
}
