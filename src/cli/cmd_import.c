/*
 * cmd_import.c - `caviar import idx|csv|images ... -o out.h5`.  Runs on rank 0 (the
 * others wait for its result under mpirun, so every rank exits alike).
 * `import text` is cmd_import_text.c's.
 */
#include <getopt.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caviar/import.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: caviar import idx --images F --labels F [--shuffle] [--seed S] [--dev N]\n"
            "                         [--classes K] [--class-names a,b,...] -o OUT.h5\n"
            "       caviar import csv FILE --label-column NAME|INDEX [--header] [--regression]\n"
            "                         [--missing refuse|mean|zero] [--class-names a,b,...]\n"
            "                         [--shuffle] [--seed S] [--dev N] -o OUT.h5\n"
            "       caviar import images DIR [--size HxW [--resize|--crop]] [--grayscale|--rgb]\n"
            "                         [--on-bad stop|skip] [--class-names a,b,...] [--shuffle]\n"
            "                         [--seed S] [--dev N] -o OUT.h5\n"
            "       caviar import text FILE (--window T | --lines) ... -o OUT.h5\n"
            "                         (caviar import text --help)\n\n"
            "Write a caviar HDF5 dataset (docs/dataset-format.md): /X, /y, attribute classes.\n"
            "IDX files may be gzip-compressed or raw; pixels are stored as uint8 with scale\n"
            "1/255.  --dev N holds out the last N rows (after --shuffle) in group 'dev'.\n"
            "csv: labels are class ids or class names (ids: sorted names, or the order of\n"
            "--class-names); a missing feature (empty, NA, N/A, NaN, ?) is an error\n"
            "(--missing refuse, default) or the column's mean or 0 (docs/dataset-format.md).\n"
            "images: DIR/CLASS/*.png|*.jpg, one subfolder per class (ids: sorted names, or\n"
            "the order of --class-names); stored CHW uint8, scale 1/255.  Without --size\n"
            "every image must have the first one's size; --resize (default) stretches,\n"
            "--crop takes the centred region of the target's aspect ratio.  --rgb (default)\n"
            "or --grayscale.  A file that is not a readable PNG/JPEG stops the import\n"
            "(--on-bad stop, default) or is skipped, named on stderr (--on-bad skip).\n");
}

struct args {
    const char *images, *labels, *out, *label_col, *csv;
    bool header, regression;
    struct cv_import_opts o;
    struct cv_image_opts io;
};

static int parse(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {{"images", required_argument, NULL, 'i'},
                                         {"labels", required_argument, NULL, 'l'},
                                         {"shuffle", no_argument, NULL, 'S'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"dev", required_argument, NULL, 'd'},
                                         {"classes", required_argument, NULL, 'k'},
                                         {"class-names", required_argument, NULL, 'n'},
                                         {"label-column", required_argument, NULL, 'c'},
                                         {"header", no_argument, NULL, 'H'},
                                         {"regression", no_argument, NULL, 'r'},
                                         {"missing", required_argument, NULL, 'm'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         CV_IMAGE_LONGOPTS,
                                         {0}};
    int c, r;
    long long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if ((r = cv_cli_image_arg("import", c, optarg, &a->io)) != 0) {
            if (r < 0)
                return -2;
            continue;
        }
        switch (c) {
        case 'i':
            a->images = optarg;
            break;
        case 'l':
            a->labels = optarg;
            break;
        case 'S':
            a->o.shuffle = true;
            break;
        case 's':
            if (!cv_cli_u64_arg("import", "seed", optarg, &a->o.seed))
                return -2;
            break;
        case 'd':
            if (!cv_cli_int_arg("import", "dev", optarg, 0, LLONG_MAX, &a->o.dev))
                return -2;
            break;
        case 'k': /* the CSV importer's class ids stop at 10^6 */
            if (!cv_cli_int_arg("import", "classes", optarg, 1, 1000000, &v))
                return -2;
            a->o.classes = (int)v;
            break;
        case 'n':
            a->o.class_names = optarg;
            break;
        case 'c':
            a->label_col = optarg;
            break;
        case 'H':
            a->header = true;
            break;
        case 'r':
            a->regression = true;
            break;
        case 'm':
            if (!cv_cli_missing_arg("import", optarg, &a->o.missing))
                return -2;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'h':
            return 1;
        default:
            return -1;
        }
    }
    return 0;
}

static int run(const char *kind, struct args *a)
{
    struct cv_error err;
    struct cv_import_summary s;
    cv_error_clear(&err);
    cv_status st;
    if (!strcmp(kind, "idx"))
        st = cv_import_idx(a->images, a->labels, a->out, &a->o, &s, &err);
    else if (!strcmp(kind, "images"))
        st = cv_import_images(a->csv, a->out, &a->io, &a->o, &s, &err);
    else
        st = cv_import_csv(a->csv, a->label_col, a->header, a->regression, a->out, &a->o, &s, &err);
    if (st != CV_OK)
        return cv_cli_fail("import", &err);
    printf("imported %lld rows (+ %lld dev rows) x %d features, %d classes -> %s\n", s.rows,
           s.dev_rows, s.features, s.classes, a->out);
    if (s.filled)
        printf("filled %lld missing value(s) (--missing)\n", s.filled);
    if (s.skipped)
        printf("skipped %lld unreadable file(s) (named above)\n", s.skipped);
    return CV_EXIT_OK;
}

int cv_cmd_import(int argc, char **argv)
{
    struct args a = {.io = {.channels = 3,
                            .fit = CV_IMAGE_RESIZE,
                            .on_skip = cv_cli_print_skipped,
                            .on_skip_arg = "import"}};
    const char *kind = argc > 1 ? argv[1] : "";
    if (!strcmp(kind, "text"))
        return cv_cmd_import_text(argc - 1, argv + 1);
    bool images = !strcmp(kind, "images");
    int rc = (strcmp(kind, "idx") && strcmp(kind, "csv") && !images)
                 ? -1
                 : parse(argc - 1, argv + 1, &a);
    /* the file or folder operand (csv, images) */
    if (rc == 0 && strcmp(kind, "idx") && optind + 1 < argc)
        a.csv = argv[optind + 1];
    bool idx_ok = !strcmp(kind, "idx") && a.images && a.labels;
    bool csv_ok = !strcmp(kind, "csv") && a.csv && a.label_col;
    if (rc == 0 && (!a.out || !(idx_ok || csv_ok || (images && a.csv))))
        rc = -1;
    if (rc == -2) /* a bad option value, already reported */
        return CV_EXIT_USAGE;
    if (rc != 0) {
        if (cv_cli_rank() == 0)
            usage(rc > 0 ? stdout : stderr);
        return rc > 0 || !strcmp(kind, "--help") ? CV_EXIT_OK : CV_EXIT_USAGE;
    }
    int code = cv_cli_rank() == 0 ? run(kind, &a) : 0;
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return code;
}
