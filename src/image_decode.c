/*
 * image_decode.c - PNG (libpng's simplified API) and JPEG (libjpeg-turbo)
 * files to 8-bit gray or RGB pixels, and the fit to a fixed size.  The
 * only file that includes <png.h> and <jpeglib.h>.  libjpeg's warnings
 * (e.g. "premature end of data", which it would pad with gray) make the
 * file bad: a half image must not pass as a whole one.  libpng reports
 * truncation as an error itself.
 */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* jpeglib.h needs stdio.h's FILE and size_t first */
#include <jpeglib.h>

#include "image_internal.h"
#include "util.h"

#define MAX_SIDE 65536 /* rows and columns, as for IDX images */
/* Pixels of one image: the decoders allocate (and libjpeg clears) buffers
 * of the size a header claims, so a header is checked before decoding. */
#define MAX_PIXELS ((long long)1 << 26)

static cv_status check_size(const char *path, long long h, long long w, struct cv_error *err)
{
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE || h * w > MAX_PIXELS)
        return cv_fail(err, CV_FORMAT,
                       "%s: image size %lld x %lld: expected 1 to %d pixels a side and at most "
                       "%lld pixels",
                       path, h, w, MAX_SIDE, MAX_PIXELS);
    return CV_OK;
}

static cv_status alloc_pixels(const char *path, struct cv__image *img, struct cv_error *err)
{
    cv_status st = check_size(path, img->h, img->w, err);
    if (st != CV_OK)
        return st;
    img->px = cv_calloc((size_t)img->h * (size_t)img->w, (size_t)img->c);
    return img->px ? CV_OK
                   : cv_fail(err, CV_NOMEM, "%s: out of memory for %d x %d pixels", path, img->h,
                             img->w);
}

static cv_status decode_png(const char *path, struct cv__image *img, struct cv_error *err)
{
    png_image pi;
    memset(&pi, 0, sizeof(pi));
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path))
        return cv_fail(err, CV_FORMAT, "%s: bad PNG (truncated or corrupt): %s", path, pi.message);
    /* the file's own channels: to_channels converts (libpng's RGB->gray
     * goes through linear light, unlike every other tool's luma) */
    img->c = pi.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
    pi.format = img->c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    img->h = (int)(pi.height > MAX_SIDE ? 0 : pi.height);
    img->w = (int)(pi.width > MAX_SIDE ? 0 : pi.width);
    cv_status st = alloc_pixels(path, img, err);
    if (st != CV_OK) {
        png_image_free(&pi);
        return st;
    }
    /* alpha is composited over black (background NULL) */
    if (!png_image_finish_read(&pi, NULL, img->px, 0, NULL))
        return cv_fail(err, CV_FORMAT, "%s: bad PNG (truncated or corrupt): %s", path, pi.message);
    return CV_OK;
}

struct jpeg_fail {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    bool warned;
};

static void jpeg_on_error(j_common_ptr c)
{
    struct jpeg_fail *f = (struct jpeg_fail *)c->err;
    (*c->err->format_message)(c, f->msg);
    longjmp(f->jump, 1);
}

static void jpeg_on_message(j_common_ptr c, int level)
{
    struct jpeg_fail *f = (struct jpeg_fail *)c->err;
    if (level < 0 && !f->warned) { /* warnings only; trace messages are ignored */
        (*c->err->format_message)(c, f->msg);
        f->warned = true;
    }
}

/* The decompression itself; longjmp lands in decode_jpeg. */
static cv_status jpeg_rows(struct jpeg_decompress_struct *d, const char *path,
                           struct cv__image *img, struct cv_error *err)
{
    jpeg_read_header(d, TRUE);
    cv_status checked = check_size(path, d->image_height, d->image_width, err);
    if (checked != CV_OK)
        return checked;
    img->c = d->num_components == 1 ? 1 : 3;
    d->out_color_space = img->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(d);
    img->h = (int)d->output_height;
    img->w = (int)d->output_width;
    cv_status st = alloc_pixels(path, img, err);
    while (st == CV_OK && d->output_scanline < d->output_height) {
        JSAMPROW row = img->px + (size_t)d->output_scanline * (size_t)img->w * (size_t)img->c;
        jpeg_read_scanlines(d, &row, 1);
    }
    if (st == CV_OK)
        jpeg_finish_decompress(d);
    return st;
}

static cv_status decode_jpeg(FILE *f, const char *path, struct cv__image *img, struct cv_error *err)
{
    struct jpeg_decompress_struct d;
    struct jpeg_fail jf = {0};
    d.err = jpeg_std_error(&jf.mgr);
    jf.mgr.error_exit = jpeg_on_error;
    jf.mgr.emit_message = jpeg_on_message;
    cv_status st;
    if (setjmp(jf.jump)) {
        st = cv_fail(err, CV_FORMAT, "%s: bad JPEG (truncated or corrupt): %s", path, jf.msg);
    } else {
        jpeg_create_decompress(&d);
        jpeg_stdio_src(&d, f);
        st = jpeg_rows(&d, path, img, err);
        if (st == CV_OK && jf.warned)
            st = cv_fail(err, CV_FORMAT, "%s: bad JPEG (truncated or corrupt): %s", path, jf.msg);
    }
    jpeg_destroy_decompress(&d);
    return st;
}

/* Gray to RGB by copying, RGB to gray by ITU-R 601 luma in Pillow's fixed
 * point ("L" = (19595 R + 38470 G + 7471 B + 2^15) >> 16), in place. */
static void to_channels(struct cv__image *img, int channels, uint8_t *spare)
{
    size_t n = (size_t)img->h * (size_t)img->w;
    const uint8_t *p = img->px;
    if (img->c == channels)
        return;
    for (size_t i = 0; i < n; i++) {
        if (channels == 3) {
            spare[3 * i] = spare[3 * i + 1] = spare[3 * i + 2] = p[i];
        } else {
            uint32_t v = 19595u * p[3 * i] + 38470u * p[3 * i + 1] + 7471u * p[3 * i + 2];
            spare[i] = (uint8_t)((v + 0x8000u) >> 16);
        }
    }
    free(img->px);
    img->px = spare;
    img->c = channels;
}

static cv_status convert(const char *path, int channels, struct cv__image *img,
                         struct cv_error *err)
{
    if (img->c == channels)
        return CV_OK;
    uint8_t *spare = cv_calloc((size_t)img->h * (size_t)img->w, (size_t)channels);
    if (!spare)
        return cv_fail(err, CV_NOMEM, "%s: out of memory for %d x %d pixels", path, img->h, img->w);
    to_channels(img, channels, spare);
    return CV_OK;
}

cv_status cv__image_decode(const char *path, int channels, struct cv__image *img,
                           struct cv_error *err)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char sig[8] = {0};
    *img = (struct cv__image){.c = channels};
    FILE *f = fopen(path, "rb");
    if (!f)
        return cv_fail(err, CV_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t got = fread(sig, 1, sizeof(sig), f);
    cv_status st;
    if (got == sizeof(sig) && !memcmp(sig, png_sig, sizeof(sig))) {
        st = decode_png(path, img, err);
    } else if (got >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff) {
        rewind(f);
        st = decode_jpeg(f, path, img, err);
    } else {
        st = cv_fail(err, CV_FORMAT, "%s: not a PNG or JPEG image", path);
    }
    fclose(f);
    if (st == CV_OK)
        st = convert(path, channels, img, err);
    if (st != CV_OK) {
        free(img->px);
        img->px = NULL;
    }
    return st;
}

/* Source region (y0, x0, sh, sw) of img for the fit. */
static void fit_region(const struct cv__image *img, int h, int w, enum cv_image_fit fit,
                       double r[4])
{
    double sh = img->h, sw = img->w;
    if (fit == CV_IMAGE_CROP) {
        if (sw * h > sh * w) /* wider than the target: keep the full height */
            sw = sh * w / h;
        else
            sh = sw * h / w;
    }
    r[0] = (img->h - sh) / 2;
    r[1] = (img->w - sw) / 2;
    r[2] = sh;
    r[3] = sw;
}

static double sample(const struct cv__image *img, int ch, double y, double x)
{
    y = fmin(fmax(y, 0), img->h - 1);
    x = fmin(fmax(x, 0), img->w - 1);
    int y0 = (int)y, x0 = (int)x;
    int y1 = y0 + 1 < img->h ? y0 + 1 : y0, x1 = x0 + 1 < img->w ? x0 + 1 : x0;
    double fy = y - y0, fx = x - x0;
    size_t c = (size_t)img->c, w = (size_t)img->w;
#define PX(yy, xx) img->px[((size_t)(yy)*w + (size_t)(xx)) * c + (size_t)ch]
    double top = PX(y0, x0) * (1 - fx) + PX(y0, x1) * fx;
    double bot = PX(y1, x0) * (1 - fx) + PX(y1, x1) * fx;
#undef PX
    return top * (1 - fy) + bot * fy;
}

void cv__image_fit(const struct cv__image *img, int h, int w, enum cv_image_fit fit, uint8_t *out)
{
    size_t plane = (size_t)h * (size_t)w;
    double r[4];
    fit_region(img, h, w, fit, r);
    bool same = img->h == h && img->w == w;
    for (int ch = 0; ch < img->c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t o = (size_t)ch * plane + (size_t)y * (size_t)w + (size_t)x;
                if (same) {
                    out[o] =
                        img->px[((size_t)y * (size_t)w + (size_t)x) * (size_t)img->c + (size_t)ch];
                    continue;
                }
                /* pixel centres: source = region start + (dst + 0.5) * step - 0.5 */
                double sy = r[0] + (y + 0.5) * r[2] / h - 0.5;
                double sx = r[1] + (x + 0.5) * r[3] / w - 0.5;
                out[o] = (uint8_t)lround(sample(img, ch, sy, sx));
            }
}
