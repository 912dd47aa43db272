/*
 * import_images.c - a folder of PNG/JPEG images to rows of uint8 pixels:
 * one subfolder per class (Keras' image_dataset_from_directory, torchvision's
 * ImageFolder), or for predict the images themselves.  Every image is
 * decoded (image_decode.c), fitted to one size and stored CHW.  Names are
 * sorted bytewise so the row order and class ids never depend on the locale.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image_internal.h"
#include "import_internal.h"
#include "util.h"

struct list {
    char **v; /* owned strings */
    size_t n, cap;
};

static void list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (struct list){0};
}

static bool list_add(struct list *l, char *s)
{
    if (s && l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **v = cv_realloc(l->v, cap, sizeof(*v));
        if (v)
            l->v = v, l->cap = cap;
    }
    if (!s || l->n == l->cap) {
        free(s);
        return false;
    }
    l->v[l->n++] = s;
    return true;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = cv_calloc(n, 1);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The visible entries of dir that are folders (want_dirs) or regular
 * files, sorted by name. */
static cv_status list_dir(const char *dir, bool want_dirs, struct list *out, struct cv_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return cv_fail(err, CV_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    cv_status st = CV_OK;
    struct dirent *e;
    while (st == CV_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') /* ., .. and hidden files (.DS_Store) */
            continue;
        char *path = join(dir, e->d_name);
        struct stat sb;
        bool keep = path && stat(path, &sb) == 0 &&
                    (want_dirs ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
        free(path);
        if (keep && !list_add(out, cv_strdup(e->d_name)))
            st = cv_fail(err, CV_NOMEM, "%s: out of memory listing the folder", dir);
    }
    closedir(d);
    if (st == CV_OK && out->n)
        qsort(out->v, out->n, sizeof(char *), by_name);
    return st;
}

/* The id of folder `name`: its place in names, or in the sorted folders. */
static cv_status class_id(const char *dir, const char *name, size_t i, const char *const *names,
                          int n_names, int32_t *id, struct cv_error *err)
{
    if (!names)
        return *id = (int32_t)i, CV_OK;
    for (int k = 0; k < n_names; k++)
        if (!strcmp(names[k], name))
            return *id = k, CV_OK;
    return cv_fail(err, CV_FORMAT, "%s/%s: the folder is not one of the %d class names given", dir,
                   name, n_names);
}

struct walk {
    struct list files; /* paths of the rows */
    int32_t *ids;      /* (files.cap) class of each file */
    size_t ids_cap;
};

static cv_status add_files(struct walk *w, const char *dir, int32_t id, struct cv_error *err)
{
    struct list names = {0};
    cv_status st = list_dir(dir, false, &names, err);
    for (size_t i = 0; st == CV_OK && i < names.n; i++) {
        if (w->files.n == w->ids_cap) {
            size_t cap = w->ids_cap ? 2 * w->ids_cap : 256;
            int32_t *ids = cv_realloc(w->ids, cap, sizeof(int32_t));
            if (!ids)
                st = cv_fail(err, CV_NOMEM, "%s: out of memory listing images", dir);
            else
                w->ids = ids, w->ids_cap = cap;
        }
        if (st == CV_OK)
            w->ids[w->files.n] = id;
        if (st == CV_OK && !list_add(&w->files, join(dir, names.v[i])))
            st = cv_fail(err, CV_NOMEM, "%s: out of memory listing images", dir);
    }
    list_free(&names);
    return st;
}

/* Every image of dir, class by class (or dir's own files, flat). */
static cv_status walk(const char *dir, bool flat_ok, const char *const *names, int n_names,
                      struct list *classes, struct walk *w, struct cv_error *err)
{
    cv_status st = list_dir(dir, true, classes, err);
    if (st == CV_OK && classes->n == 0 && !flat_ok)
        return cv_fail(err, CV_FORMAT,
                       "%s: no class subfolders (expected one folder per class holding its "
                       "images: %s/CLASS/IMAGE.png)",
                       dir, dir);
    if (st == CV_OK && classes->n == 0)
        return add_files(w, dir, -1, err);
    for (size_t i = 0; st == CV_OK && i < classes->n; i++) {
        int32_t id = 0;
        char *sub = join(dir, classes->v[i]);
        st = sub ? class_id(dir, classes->v[i], i, names, n_names, &id, err)
                 : cv_fail(err, CV_NOMEM, "out of memory");
        if (st == CV_OK)
            st = add_files(w, sub, id, err);
        free(sub);
    }
    if (st == CV_OK && w->files.n == 0)
        st = cv_fail(err, CV_FORMAT, "%s: no image files in %s", dir,
                     classes->n ? "its class subfolders" : "the folder");
    return st;
}

/* Decode file i and place it at row `row`; the first good image fixes the
 * size when none was given.  A bad file is CV_FORMAT/CV_IO (maybe skipped). */
static cv_status place(struct cv__image_set *set, const struct cv_image_opts *io, const char *path,
                       size_t n_files, struct cv_error *err)
{
    struct cv__image img;
    cv_status st = cv__image_decode(path, io->channels, &img, err);
    if (st != CV_OK)
        return st;
    int *sh = set->shape;
    if (!set->x) {
        sh[0] = io->channels;
        sh[1] = io->height ? io->height : img.h;
        sh[2] = io->width ? io->width : img.w;
        size_t f = (size_t)sh[0] * (size_t)sh[1] * (size_t)sh[2];
        if (!(set->x = cv_calloc_big(n_files, f)))
            st = cv_fail(err, CV_NOMEM, "out of memory for %zu images of %zu bytes", n_files, f);
    }
    if (st == CV_OK && !io->height && (img.h != sh[1] || img.w != sh[2]))
        st = cv_fail(err, CV_FORMAT,
                     "%s: image is %d x %d, the first was %d x %d (give --size HxW to fit every "
                     "image to one size)",
                     path, img.h, img.w, sh[1], sh[2]);
    size_t f = (size_t)sh[0] * (size_t)sh[1] * (size_t)sh[2];
    if (st == CV_OK)
        cv__image_fit(&img, sh[1], sh[2], io->fit, set->x + (size_t)set->n * f);
    free(img.px);
    return st;
}

static cv_status decode_all(struct cv__image_set *set, const struct cv_image_opts *io,
                            const struct walk *w, struct cv_error *err)
{
    for (size_t i = 0; i < w->files.n; i++) {
        struct cv_error e;
        cv_error_clear(&e);
        cv_status st = place(set, io, w->files.v[i], w->files.n, &e);
        if (st == CV_NOMEM || (st != CV_OK && !io->skip_bad))
            return cv_fail(err, st, "%s", e.msg);
        if (st != CV_OK) {
            set->skipped++;
            if (io->on_skip)
                io->on_skip(e.msg, io->on_skip_arg);
            continue;
        }
        if (set->y)
            set->y[set->n] = w->ids[i];
        set->files[set->n++] = w->files.v[i];
        w->files.v[i] = NULL; /* moved */
    }
    if (set->n == 0)
        return cv_fail(err, CV_FORMAT, "%lld image file(s), none readable", set->skipped);
    return CV_OK;
}

cv_status cv__images_read(const char *dir, const struct cv_image_opts *io, bool flat_ok,
                          const char *const *names, int n_names, struct cv__image_set *set,
                          struct cv_error *err)
{
    struct list classes = {0};
    struct walk w = {0};
    *set = (struct cv__image_set){0};
    cv_status st = walk(dir, flat_ok, names, n_names, &classes, &w, err);
    if (st == CV_OK && !(set->files = cv_calloc(w.files.n, sizeof(char *))))
        st = cv_fail(err, CV_NOMEM, "out of memory");
    if (st == CV_OK && classes.n && !(set->y = cv_calloc(w.files.n, sizeof(int32_t))))
        st = cv_fail(err, CV_NOMEM, "out of memory");
    if (st == CV_OK)
        st = decode_all(set, io, &w, err);
    if (st == CV_OK && classes.n && !names) {
        set->classes = (int)classes.n;
        set->names = classes.v; /* moved */
        classes = (struct list){0};
    } else if (st == CV_OK && classes.n) {
        set->classes = n_names; /* the caller's names */
    }
    list_free(&classes);
    list_free(&w.files);
    free(w.ids);
    return st;
}

void cv__images_free(struct cv__image_set *set)
{
    for (long long i = 0; set->files && i < set->n; i++)
        free(set->files[i]);
    for (int i = 0; set->names && i < set->classes; i++)
        free(set->names[i]);
    free(set->files);
    free(set->names);
    free(set->x);
    free(set->y);
    *set = (struct cv__image_set){0};
}

static cv_status check_opts(const struct cv_image_opts *io, struct cv_error *err)
{
    if (io->channels != 1 && io->channels != 3)
        return cv_fail(err, CV_USAGE, "channels %d: expected 1 (grayscale) or 3 (RGB)",
                       io->channels);
    if ((io->height == 0) != (io->width == 0) || io->height < 0 || io->width < 0 ||
        io->height > 65536 || io->width > 65536)
        return cv_fail(err, CV_USAGE, "--size %dx%d: expected 1 to 65536 pixels a side", io->height,
                       io->width);
    return CV_OK;
}

cv_status cv_import_images(const char *dir, const char *out, const struct cv_image_opts *io,
                           const struct cv_import_opts *opts, struct cv_import_summary *sum,
                           struct cv_error *err)
{
    const char *names[CV_IMPORT_MAX_NAMES];
    char buf[CV_IMPORT_NAMES_BYTES];
    int n_names = opts->class_names ? cv__import_split_names(opts->class_names, buf, sizeof(buf),
                                                             names, CV_IMPORT_MAX_NAMES)
                                    : 0;
    struct cv__image_set set;
    cv_status st = check_opts(io, err);
    if (st == CV_OK && n_names < 0)
        st = cv_fail(err, CV_USAGE, "--class-names: more than %d names or %zu bytes",
                     CV_IMPORT_MAX_NAMES, sizeof(buf) - 1);
    if (st != CV_OK)
        return st;
    st = cv__images_read(dir, io, false, n_names ? names : NULL, n_names, &set, err);
    size_t f = (size_t)set.shape[0] * (size_t)set.shape[1] * (size_t)set.shape[2];
    if (st == CV_OK && opts->shuffle)
        st = cv__import_shuffle(set.x, f, set.y, sizeof(int32_t), set.n, opts->seed, err);
    if (st == CV_OK) {
        struct cv_split_out all = {.group = "/",
                                   .n_rows = set.n,
                                   .features = (int)f,
                                   .x_u8 = set.x,
                                   .scale = 1.0f / 255.0f,
                                   .y_class = set.y,
                                   .target_dim = 1,
                                   .classes = set.classes,
                                   .shape = set.shape,
                                   .class_names = (const char *const *)set.names};
        st = cv__import_write(out, &all, opts, sum, err);
        sum->skipped = set.skipped;
    }
    cv__images_free(&set);
    return st;
}
