/*
 * test_config_tree.c - the YAML reader's bounds against hostile documents
 * built here: a "billion laughs" of nested aliases, 100,000 nested
 * brackets, deep block nesting, thousands of directives, huge maps.  Each
 * must be refused with a message naming the source and line, after work
 * bounded by the limits in config_tree.h (asserted on the events, nodes and
 * input characters the parser reports, not on time).  Anchors and aliases
 * within the bounds keep working.
 */
#include <stdlib.h>
#include <unistd.h>

#include "caviar/config.h"
#include "config_tree.h"
#include "test.h"

static struct cv_tree_stats stats;
static struct cv_error err;

static cv_status parse(const char *text, struct cv_node **out)
{
    cv_error_clear(&err);
    return cv__tree_parse_stats(text, "cfg.yaml", NULL, out, &stats, &err);
}

/* Parse text that must be refused with CV_CONFIG and a message holding want. */
static void expect_refused(const char *text, const char *want)
{
    struct cv_node *n = (struct cv_node *)1;
    ASSERT_EQ(parse(text, &n), CV_CONFIG);
    ASSERT_TRUE(n == NULL);
    CV_TEST_REPORT(strstr(err.msg, want) != NULL, "message \"%s\" lacks \"%s\"", err.msg, want);
}

static char *repeat(const char *head, const char *unit, long n, const char *tail)
{
    size_t u = strlen(unit), len = strlen(head) + u * (size_t)n + strlen(tail);
    char *s = malloc(len + 1), *p = s;
    p += sprintf(p, "%s", head);
    for (long i = 0; i < n; i++, p += u)
        memcpy(p, unit, u);
    strcpy(p, tail);
    return s;
}

/* Ten levels of ten aliases each: 10^10 nodes if expanded, from ~600 bytes. */
static void test_billion_laughs(void)
{
    char text[2048], *p = text;
    p += sprintf(p, "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 10; i++) {
        p += sprintf(p, "l%d: &l%d [", i, i);
        for (int j = 0; j < 10; j++)
            p += sprintf(p, "%s*l%d", j ? ", " : "", i - 1);
        p += sprintf(p, "]\n");
    }
    expect_refused(text, "holds more than 100000 nodes");
    ASSERT_STR_CONTAINS(err.msg, "cfg.yaml:");
    ASSERT_EQ(stats.nodes, CV_TREE_MAX_NODES + 1); /* stopped at the first node too many */
    ASSERT_TRUE(stats.events < 200);               /* the document itself is small */
    ASSERT_TRUE(stats.text <= 4 * (long long)(CV_TREE_MAX_NODES + 1));
}

/* One long value aliased many times: refused on bytes, not on nodes. */
static void test_alias_text_budget(void)
{
    char *text = repeat("v: &v '", "x", 1 << 19, "'\nl: [*v, *v, *v, *v, *v, *v, *v, *v]\n");
    expect_refused(text, "bytes of keys and values");
    ASSERT_STR_CONTAINS(err.msg, "cfg.yaml:2:");
    ASSERT_TRUE(stats.nodes < 20);
    free(text);
}

static void test_flow_nesting(void)
{
    char *text = repeat("", "[", 100000, "");
    char *tail = repeat(text, "]", 100000, "\n");
    expect_refused(tail, "cfg.yaml:1: nested deeper than 64 levels");
    ASSERT_EQ(stats.depth, CV_TREE_MAX_DEPTH);
    /* libyaml looks ahead at most 1024 characters for a simple key: the
     * refusal comes after a bounded prefix of the 200,000 */
    ASSERT_TRUE(stats.read <= 2048);
    ASSERT_TRUE(stats.events <= CV_TREE_MAX_DEPTH + 4);
    free(text);
    free(tail);
    /* exactly the limit is accepted */
    struct cv_node *n = NULL;
    text = repeat("", "[", CV_TREE_MAX_DEPTH, "");
    tail = repeat(text, "]", CV_TREE_MAX_DEPTH, "\n");
    ASSERT_EQ(parse(tail, &n), CV_OK);
    ASSERT_EQ(stats.depth, CV_TREE_MAX_DEPTH);
    cv__tree_free(n);
    free(text);
    free(tail);
}

/* a:\n  a:\n    a: ... 1000 levels deep (block maps, each line indented) */
static void test_block_nesting(void)
{
    size_t cap = 1001 * 1004, len = 0;
    char *text = malloc(cap);
    for (int d = 0; d < 1000; d++)
        len += (size_t)sprintf(text + len, "%*sa:\n", d, "");
    strcpy(text + len, "x\n");
    expect_refused(text, "cfg.yaml:65: nested deeper than 64 levels");
    ASSERT_TRUE(stats.read < 65 * 70);
    free(text);
    text = repeat("", "- ", 100000, "x\n"); /* block lists on one line */
    expect_refused(text, "cfg.yaml:1: nested deeper than 64 levels");
    ASSERT_TRUE(stats.read < 1000);
    free(text);
}

static void test_directives_and_size(void)
{
    char *text = repeat("", "%TAG !a! tag:x:\n", 20000, "--- x\n");
    expect_refused(text, "more than 16 YAML directives");
    ASSERT_EQ(stats.events, 0); /* refused before libyaml's quadratic directive check */
    free(text);
    text = repeat("a: '", "x", CV_TREE_MAX_INPUT, "'\n");
    expect_refused(text, "a config holds at most 1048576");
    free(text);
}

/* 40,000 distinct keys and then a repeat of an early one: found by a sort
 * at the end of the map, with the line of the second one. */
static void test_many_keys(void)
{
    size_t len = 0;
    char *text = malloc(40001 * 16);
    for (int i = 0; i < 40000; i++)
        len += (size_t)sprintf(text + len, "k%d: 0\n", i);
    strcpy(text + len, "k7: 1\n");
    expect_refused(text, "cfg.yaml:40001: key 'k7' appears twice");
    free(text);
    text = repeat("[", "0, ", CV_TREE_MAX_NODES + 10, "0]\n");
    expect_refused(text, "holds more than 100000 nodes");
    free(text);
}

static void test_other_refusals(void)
{
    expect_refused("a: 1\n---\nb: 2\n", "cfg.yaml:2: a second YAML document");
    expect_refused("a: *nowhere\n", "cfg.yaml:1: alias '*nowhere' names no anchor");
    expect_refused("a: \"x\\0y\"\n", "cfg.yaml:1: a value holds a NUL character");
    expect_refused("{[a]: 1}\n", "mapping keys must be plain names");
    expect_refused("a: 1\na: 2\n", "cfg.yaml:2: key 'a' appears twice");
    expect_refused("a: [1\n", "cfg.yaml:2:1: YAML syntax error");
    char *text = repeat("", "- &a x\n", CV_TREE_MAX_ANCHORS + 1, "");
    expect_refused(text, "more than 256 anchors");
    free(text);
    /* an alias may not take nesting past the limit either */
    char *open = repeat("a: &a ", "[", 40, "");
    char *deep = repeat(open, "]", 40, "\nb: ");
    char *b = repeat(deep, "[", 30, "*a");
    text = repeat(b, "]", 30, "\n");
    expect_refused(text, "cfg.yaml:2: nested deeper than 64 levels");
    free(open);
    free(deep);
    free(b);
    free(text);
}

static void test_anchors_work(void)
{
    struct cv_node *n = NULL;
    ASSERT_EQ(parse("base: &b {units: 8, act: &r relu}\n"
                    "copy: *b\n"
                    "keys: {&k name: 1}\n"
                    "again: {*k : 2, act: *r}\n",
                    &n),
              CV_OK);
    const struct cv_node *copy = cv__tree_get(n, "copy");
    ASSERT_TRUE(copy && copy->kind == CV_NODE_MAP && copy->n == 2);
    const struct cv_node *units = cv__tree_get(copy, "units");
    ASSERT_TRUE(units && !strcmp(units->text, "8"));
    ASSERT_EQ(units ? units->line : 0, 2); /* a copy names the alias's line */
    const struct cv_node *again = cv__tree_get(n, "again");
    ASSERT_TRUE(cv__tree_get(again, "name") != NULL);
    const struct cv_node *act = cv__tree_get(again, "act");
    ASSERT_TRUE(act && !strcmp(act->text, "relu"));
    cv__tree_free(n);
}

static void test_override_path_depth(void)
{
    struct cv_node *n = NULL;
    ASSERT_EQ(parse("a: 1\n", &n), CV_OK);
    char *ov = repeat("", "q.", 100000, "b=1");
    cv_error_clear(&err);
    ASSERT_EQ(cv__tree_override(n, ov, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "a key path of more than 64 components");
    free(ov);
    ov = repeat("x.", "a.", 60, "b=[1]");
    cv_error_clear(&err);
    ASSERT_EQ(cv__tree_override(n, ov, &err), CV_OK);
    free(ov);
    cv__tree_free(n);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f && fwrite(data, 1, len, f) == len);
    if (f)
        fclose(f);
}

/* cv_config_load reads at most the bound, and refuses NUL bytes (the
 * parser would have stopped at the first one without a word). */
static void test_load_bounds(void)
{
    char path[] = "/tmp/caviar-tree-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    struct cv_config *c = NULL;
    static const char nul_cfg[] = "data: {train: x}\n\0model: {}\n";
    write_file(path, nul_cfg, sizeof(nul_cfg) - 1);
    cv_error_clear(&err);
    ASSERT_EQ(cv_config_load(path, NULL, 0, &c, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "a NUL byte at offset 17");
    char *big = repeat("# ", "x", CV_TREE_MAX_INPUT, "\n");
    write_file(path, big, strlen(big));
    cv_error_clear(&err);
    ASSERT_EQ(cv_config_load(path, NULL, 0, &c, &err), CV_CONFIG);
    ASSERT_STR_CONTAINS(err.msg, "more than 1048576 bytes");
    ASSERT_STR_CONTAINS(err.msg, path);
    free(big);
    unlink(path);
    ASSERT_TRUE(c == NULL);
}

int main(void)
{
    test_billion_laughs();
    test_alias_text_budget();
    test_flow_nesting();
    test_block_nesting();
    test_directives_and_size();
    test_many_keys();
    test_other_refusals();
    test_anchors_work();
    test_override_path_depth();
    test_load_bounds();
    TEST_MAIN_END();
}
