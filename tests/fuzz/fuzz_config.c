/*
 * fuzz_config.c - the path of `caviar train FILE key=value ...` up to a
 * validated config: the input is the YAML file, then up to 8 overrides,
 * separated by NUL bytes.  A config that validates must also survive the
 * round trip every model file relies on: its effective YAML (stored in
 * checkpoints) parses again to the same text.
 */
#include <stddef.h>

#include "caviar/config.h"
#include "fuzz_common.h"

#define MAX_OVERRIDES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), path[256];
    const char *ov[MAX_OVERRIDES];
    int n_ov = 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t yaml_len = strlen(text);
    for (char *p = text + yaml_len; p < text + size && n_ov < MAX_OVERRIDES; p += strlen(p)) {
        ov[n_ov++] = ++p; /* p was at the NUL before this override */
    }
    fuzz_write(fuzz_path("config.yaml", path, sizeof(path)), text, yaml_len);
    struct cv_config *cfg = NULL, *again = NULL;
    struct cv_error err;
    cv_error_clear(&err);
    cv_status st = cv_config_load(path, ov, n_ov, &cfg, &err);
    FUZZ_CHECK((st == CV_OK) == (cfg != NULL), "status %d", (int)st);
    fuzz_note("load", (int)st, err.msg);
    FUZZ_CHECK(st == CV_OK || err.msg[0], "status %d without a message", (int)st);
    fuzz_note("config", (int)st, err.msg);
    if (st == CV_OK) {
        cv_error_clear(&err);
        st = cv_config_parse(cfg->text, "effective", NULL, 0, &again, &err);
        FUZZ_CHECK(st == CV_OK, "the effective config does not parse again: %s\n%s", err.msg,
                   cfg->text);
        FUZZ_CHECK(!strcmp(cfg->text, again->text), "the round trip changed the text:\n%s\n%s",
                   cfg->text, again->text);
    }
    cv_config_free(again);
    cv_config_free(cfg);
    fuzz_cleanup(path);
    free(text);
    return 0;
}
