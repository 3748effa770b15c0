/* tests/unit/test_config.c — core/config: the example files load and read back, typed getters,
 * repeated elements, and the exact error text for every kind of mistake an operator makes.
 * Run from the repository root (make check does), where etc/ holds the example files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "tests/support/tmp.h"

static char *dir, *file;

static int setup(void **state)
{
    dir = tmp_dir("test_config");
    if (!dir)
        return -1;
    file = tmp_path(dir, "c.xml");
    return 0;
}

static int teardown(void **state)
{
    free(file);
    tmp_dir_remove(dir);
    return 0;
}

static void write_file(const char *text)
{
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads text, which must parse. */
static config *load_text(const char *text)
{
    write_file(text);
    config *cfg = NULL;
    config_error err;
    if (config_load(file, &cfg, &err) < 0)
        fail_msg("unexpected load error: %s", err.text);
    return cfg;
}

/* Expects the load of text itself to fail with "<file><rest>". */
static void expect_load_error(const char *text, const char *rest)
{
    write_file(text);
    config *cfg = (config *)1;
    config_error err;
    assert_int_equal(config_load(file, &cfg, &err), -1);
    assert_null(cfg);
    char want[PATH_MAX + 256];
    snprintf(want, sizeof(want), "%s%s", file, rest);
    assert_string_equal(err.text, want);
    assert_string_equal(err.file, file);
}

/* Expects cfg to hold the error "<file><rest>", and frees it. */
static void expect_kept_error(config *cfg, const char *rest)
{
    config_error err;
    assert_int_equal(config_check(cfg, &err), -1);
    char want[PATH_MAX + 256];
    snprintf(want, sizeof(want), "%s%s", file, rest);
    assert_string_equal(err.text, want);
    config_free(cfg);
}

static void expect_ok(config *cfg)
{
    config_error err;
    if (config_check(cfg, &err) < 0)
        fail_msg("unexpected error: %s", err.text);
}

/* A vocabulary shaped like the front's file, to test declared-element checking (the programs'
 * own readers, and their tests, own the real vocabularies). */
static const char *const sample_known[] = {
    "sm/host", "sm/port", "sm/secret", "sm/id", "sm/retries",
    "local/id", "local/ip", "local/port", "local/ssl/port", "local/ssl/pemfile",
    "max_fds", "threads", "limits/stanza_size", "log/target", "log/level",
    NULL,
};

static const char *const log_levels[] = { "debug", "info", "notice", "warn", "error", NULL };
static const char *const drivers[] = { "sqlite", "pgsql", "mariadb", NULL };

static void test_missing_file(void **state)
{
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof(missing), "%s/none.xml", dir);
    config *cfg = (config *)1;
    config_error err;
    assert_int_equal(config_load(missing, &cfg, &err), -1);
    assert_null(cfg);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", missing);
    assert_string_equal(err.text, want);
    assert_int_equal(err.line, 0);
    assert_string_equal(err.element, "");

    snprintf(want, sizeof(want), "%s: not a regular file", dir);
    assert_int_equal(config_load(dir, &cfg, &err), -1);
    assert_string_equal(err.text, want);
}

static void test_syntax_errors(void **state)
{
    expect_load_error("<jadc2s>\n  <sm>\n    <host>x</hots>\n  </sm>\n</jadc2s>\n",
                      ":3: XML syntax error: mismatched tag (column 14)");
    expect_load_error("", ":1: XML syntax error: no element found (column 1)");
    expect_load_error("<a/>\n<b/>\n", ":2: XML syntax error: junk after document element (column 1)");
    expect_load_error("<a>\n&nbsp;</a>\n", ":2: XML syntax error: undefined entity (column 1)");
    expect_load_error("<a>\n<b>\n", ":3: XML syntax error: no element found (column 1)");

    write_file("<a>\n<b>x</c></a>\n");
    config *cfg;
    config_error err;
    assert_int_equal(config_load(file, &cfg, &err), -1);
    assert_int_equal(err.line, 2);
    assert_string_equal(err.element, "");
    assert_string_equal(err.message, "XML syntax error: mismatched tag (column 7)");
}

static void test_doctype_refused(void **state)
{
    expect_load_error("<?xml version='1.0'?>\n<!DOCTYPE jadc2s>\n<jadc2s/>\n",
                      ":2: a DOCTYPE is not allowed in a configuration file");
    /* Entity expansion ("billion laughs") never starts. */
    expect_load_error("<!DOCTYPE a [\n"
                      "  <!ENTITY l0 'ha'>\n"
                      "  <!ENTITY l1 '&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;'>\n"
                      "]>\n<a>&l1;</a>\n",
                      ":1: a DOCTYPE is not allowed in a configuration file");
}

static void test_comments_and_text(void **state)
{
    config *cfg = load_text("<?xml version='1.0'?>\n"
                            "<!-- leading comment -->\n"
                            "<jadc2s xmlns='jabber:config:jadc2s'>\n"
                            "  <?some-pi ignored?>\n"
                            "  <sm><!-- inside --><host>\n    sm.example.org  \n</host>\n"
                            "    <port>51<!-- split -->11</port>\n"
                            "    <secret><![CDATA[a<b&c]]></secret>\n"
                            "    <id>a &amp; b</id></sm>\n"
                            "  <local><ip/><id> </id></local>\n"
                            "</jadc2s>\n<!-- trailing -->\n");
    assert_int_equal(config_declare(cfg, "jadc2s", sample_known), 0);
    assert_string_equal(config_str(cfg, NULL, "sm/host", NULL), "sm.example.org");
    assert_int_equal(config_port(cfg, NULL, "sm/port", 1), 5111);
    assert_string_equal(config_str(cfg, NULL, "sm/secret", NULL), "a<b&c");
    assert_string_equal(config_str(cfg, NULL, "sm/id", NULL), "a & b");
    assert_string_equal(config_str(cfg, NULL, "local/ip", "0.0.0.0"), "");
    assert_string_equal(config_str(cfg, NULL, "local/id", NULL), "");
    assert_int_equal(config_first(cfg, NULL, "sm/host")->line, 5);
    expect_ok(cfg);
    config_free(cfg);
}

static void test_unknown_element(void **state)
{
    config *cfg = load_text("<jadc2s>\n"
                            "  <local>\n"
                            "    <port>5222</port>\n"
                            "    <sll><port>5223</port></sll>\n"
                            "  </local>\n"
                            "</jadc2s>\n");
    assert_int_equal(config_declare(cfg, "jadc2s", sample_known), -1);
    expect_kept_error(cfg, ":4: <local/sll>: unknown element");

    /* Deeper, and under a known parent. */
    cfg = load_text("<jadc2s>\n<local><ssl>\n<pemfle>x</pemfle></ssl></local>\n</jadc2s>\n");
    assert_int_equal(config_declare(cfg, "jadc2s", sample_known), -1);
    expect_kept_error(cfg, ":3: <local/ssl/pemfle>: unknown element");

    /* A known name in the wrong place is unknown there. */
    cfg = load_text("<jadc2s>\n<sm/>\n<port>5222</port>\n</jadc2s>\n");
    assert_int_equal(config_declare(cfg, "jadc2s", sample_known), -1);
    config_error err;
    assert_int_equal(config_check(cfg, &err), -1);
    assert_int_equal(err.line, 3);
    assert_string_equal(err.element, "port");
    assert_string_equal(err.message, "unknown element");
    config_free(cfg);

    /* Children of a leaf are unknown too. */
    cfg = load_text("<jadc2s><max_fds><x/></max_fds></jadc2s>");
    assert_int_equal(config_declare(cfg, "jadc2s", sample_known), -1);
    expect_kept_error(cfg, ":1: <max_fds/x>: unknown element");
}

static void test_wrong_root(void **state)
{
    config *cfg = load_text("<!-- the SM's file given to the front -->\n<sm>\n<offline_quota/>\n</sm>\n");
    assert_int_equal(config_declare(cfg, "jadc2s", sample_known), -1);
    expect_kept_error(cfg, ":2: <sm>: expected the root element <jadc2s>");
}

static void test_bad_integer(void **state)
{
    config *cfg = load_text("<jadc2s>\n\n\n\n\n\n\n\n\n\n\n  <max_fds>abc</max_fds>\n</jadc2s>\n");
    assert_int_equal(config_declare(cfg, "jadc2s", sample_known), 0);
    assert_int_equal(config_int(cfg, NULL, "max_fds", 1023, 1, 1 << 24), 1023);
    config_error err;
    assert_int_equal(config_check(cfg, &err), -1);
    assert_string_equal(err.element, "max_fds");
    assert_int_equal(err.line, 12);
    expect_kept_error(cfg, ":12: <max_fds>: expected a positive integer, got \"abc\"");

    static const struct { const char *text; long long min, max; const char *msg; } cases[] = {
        { "", 1, 10, "expected a positive integer, got \"\"" },
        { "12abc", 1, 100, "expected a positive integer, got \"12abc\"" },
        { "0x10", 0, 100, "expected a non-negative integer, got \"0x10\"" },
        { "1.5", -5, 5, "expected an integer, got \"1.5\"" },
        { "-", -5, 5, "expected an integer, got \"-\"" },
        { "- 3", -5, 5, "expected an integer, got \"- 3\"" },
        { "0", 1, 10, "expected an integer from 1 to 10, got 0" },
        { "11", 1, 10, "expected an integer from 1 to 10, got 11" },
        { "-6", -5, 5, "expected an integer from -5 to 5, got -6" },
        { "99999999999999999999", 0, 100, "expected an integer from 0 to 100, got 99999999999999999999" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[128], rest[160];
        snprintf(text, sizeof(text), "<r>\n<n>%s</n>\n</r>", cases[i].text);
        cfg = load_text(text);
        assert_int_equal(config_int(cfg, NULL, "n", 7, cases[i].min, cases[i].max), 7);
        snprintf(rest, sizeof(rest), ":2: <n>: %s", cases[i].msg);
        expect_kept_error(cfg, rest);
    }

    cfg = load_text("<r><a> 10 </a><b>-5</b><c>+3</c><d>0</d></r>");
    assert_int_equal(config_int(cfg, NULL, "a", 0, 10, 10), 10);
    assert_int_equal(config_int(cfg, NULL, "b", 0, -5, 0), -5);
    assert_int_equal(config_int(cfg, NULL, "c", 0, 0, 5), 3);
    assert_int_equal(config_int(cfg, NULL, "d", 9, 0, 5), 0);
    assert_int_equal(config_int(cfg, NULL, "absent", 9, 0, 5), 9);
    expect_ok(cfg);
    config_free(cfg);
}

static void test_port(void **state)
{
    config *cfg = load_text("<jadc2s>\n  <sm>\n    <port>70000</port>\n  </sm>\n</jadc2s>\n");
    assert_int_equal(config_port(cfg, NULL, "sm/port", 5111), 5111);
    expect_kept_error(cfg, ":3: <sm/port>: expected a port number (1-65535), got \"70000\"");

    static const char *const bad[] = { "0", "-1", "65536", "http", "", "+80", "80 80" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128], rest[128];
        snprintf(text, sizeof(text), "<r><p>%s</p></r>", bad[i]);
        cfg = load_text(text);
        assert_int_equal(config_port(cfg, NULL, "p", 1), 1);
        snprintf(rest, sizeof(rest), ":1: <p>: expected a port number (1-65535), got \"%s\"", bad[i]);
        expect_kept_error(cfg, rest);
    }
    cfg = load_text("<r><p>1</p><q>65535</q><s port='5269'/></r>");
    assert_int_equal(config_port(cfg, NULL, "p", 9), 1);
    assert_int_equal(config_port(cfg, NULL, "q", 9), 65535);
    assert_int_equal(config_port(cfg, NULL, "s/@port", 9), 5269);
    assert_int_equal(config_port(cfg, NULL, "s/@other", 9), 9);
    expect_ok(cfg);
    config_free(cfg);

    cfg = load_text("<r>\n<s port='x'/></r>");
    assert_int_equal(config_port(cfg, NULL, "s/@port", 9), 9);
    expect_kept_error(cfg, ":2: <s>: attribute 'port': expected a port number (1-65535), got \"x\"");
}

static void test_required(void **state)
{
    config *cfg = load_text("<jadc2s>\n  <sm>\n    <host>h</host>\n  </sm>\n</jadc2s>\n");
    assert_true(config_require(cfg, NULL, "sm/host"));
    assert_false(config_require(cfg, NULL, "sm/secret"));
    expect_kept_error(cfg, ":2: <sm>: missing required element <secret>");

    cfg = load_text("<jadc2s>\n</jadc2s>\n");
    assert_false(config_require(cfg, NULL, "local/ssl/pemfile"));
    expect_kept_error(cfg, ":1: <jadc2s>: missing required element <local/ssl/pemfile>");

    cfg = load_text("<sm>\n<service>\n<accept/></service>\n</sm>\n");
    xml_node *svc = config_first(cfg, NULL, "service");
    assert_non_null(svc);
    assert_true(config_require(cfg, svc, "accept"));
    assert_false(config_require(cfg, svc, "@id"));
    expect_kept_error(cfg, ":2: <service>: missing required attribute 'id'");

    cfg = load_text("<sm>\n<service id='x'>\n</service>\n</sm>\n");
    svc = config_first(cfg, NULL, "service");
    assert_false(config_require(cfg, svc, "accept/@port"));
    expect_kept_error(cfg, ":2: <service>: missing required element <accept>");
}

static void test_repeated(void **state)
{
    /* Repetition is fine where the caller iterates... */
    config *cfg = load_text("<jadc2s>\n<local>\n<id>a.example</id>\n<id>b.example</id>\n"
                            "<id>c.example</id>\n</local>\n</jadc2s>\n");
    static const char *const want[] = { "a.example", "b.example", "c.example" };
    int n = 0;
    for (xml_node *id = config_first(cfg, NULL, "local/id"); id; id = config_next(id)) {
        assert_true(n < 3);
        assert_string_equal(config_str(cfg, id, "", NULL), want[n]);
        assert_int_equal(id->line, 3 + n);
        n++;
    }
    assert_int_equal(n, 3);
    assert_null(config_first(cfg, NULL, "local/ip"));
    assert_null(config_first(cfg, NULL, "nothing/here"));
    expect_ok(cfg);
    /* ...and an error where one value is expected. */
    assert_null(config_str(cfg, NULL, "local/id", NULL));
    expect_kept_error(cfg, ":4: <local/id>: repeated element (the first is on line 3)");

    cfg = load_text("<jadc2s>\n<sm><port>1</port></sm>\n<sm><port>2</port></sm>\n</jadc2s>\n");
    assert_int_equal(config_port(cfg, NULL, "sm/port", 9), 9);
    expect_kept_error(cfg, ":3: <sm>: repeated element (the first is on line 2)");
}

static void test_value_with_children(void **state)
{
    config *cfg = load_text("<jadc2s>\n<sm>\n<host>a<b/>c</host>\n</sm>\n</jadc2s>\n");
    assert_string_equal(config_str(cfg, NULL, "sm/host", "dflt"), "dflt");
    expect_kept_error(cfg, ":3: <sm/host>: expected a value, found the element <b>");
}

static void test_bool(void **state)
{
    config *cfg = load_text("<r><a/><b>true</b><c>YES</c><d>1</d><e>false</e><f>No</f>"
                            "<g>0</g><h>  </h></r>");
    assert_true(config_bool(cfg, NULL, "a", false));
    assert_true(config_bool(cfg, NULL, "b", false));
    assert_true(config_bool(cfg, NULL, "c", false));
    assert_true(config_bool(cfg, NULL, "d", false));
    assert_false(config_bool(cfg, NULL, "e", true));
    assert_false(config_bool(cfg, NULL, "f", true));
    assert_false(config_bool(cfg, NULL, "g", true));
    assert_true(config_bool(cfg, NULL, "h", false));
    assert_true(config_bool(cfg, NULL, "absent", true));
    assert_false(config_bool(cfg, NULL, "absent", false));
    expect_ok(cfg);
    config_free(cfg);

    cfg = load_text("<sm>\n<host name='x'><register>maybe</register></host>\n</sm>");
    assert_false(config_bool(cfg, config_first(cfg, NULL, "host"), "register", false));
    expect_kept_error(cfg, ":2: <host/register>: expected true or false (or yes/no, 1/0), got \"maybe\"");
}

static void test_enum(void **state)
{
    config *cfg = load_text("<sm>\n<storage>\n<driver>mysql</driver>\n</storage>\n</sm>\n");
    assert_int_equal(config_enum(cfg, NULL, "storage/driver", drivers, 0), 0);
    expect_kept_error(cfg, ":3: <storage/driver>: expected one of sqlite, pgsql, mariadb; got \"mysql\"");

    cfg = load_text("<sm><storage><driver> pgsql </driver></storage></sm>");
    assert_int_equal(config_enum(cfg, NULL, "storage/driver", drivers, 0), 1);
    assert_int_equal(config_enum(cfg, NULL, "log/level", log_levels, 1), 1);
    expect_ok(cfg);
    config_free(cfg);
}

static void test_first_error_wins(void **state)
{
    config *cfg = load_text("<r>\n<a>x</a>\n<b>y</b>\n</r>\n");
    assert_int_equal(config_int(cfg, NULL, "a", 1, 0, 9), 1);
    /* Later getters return their defaults and keep the first error. */
    assert_int_equal(config_int(cfg, NULL, "b", 2, 0, 9), 2);
    assert_string_equal(config_str(cfg, NULL, "a", "dflt"), "dflt");
    config_fail(cfg, NULL, "ignored: %d", 1);
    assert_int_equal(config_declare(cfg, "r", (const char *const[]){ NULL }), -1);
    expect_kept_error(cfg, ":2: <a>: expected a non-negative integer, got \"x\"");

    cfg = load_text("<r>\n<storage>\n<driver>pgsql</driver></storage></r>\n");
    xml_node *st = config_first(cfg, NULL, "storage");
    config_fail(cfg, st, "pgsql needs <%s>", "host");
    expect_kept_error(cfg, ":2: <storage>: pgsql needs <host>");

    cfg = load_text("<r/>");
    config_fail(cfg, NULL, "no hosts");
    expect_kept_error(cfg, ":1: <r>: no hosts");
}

static void test_depth_limit(void **state)
{
    char text[1024] = "";
    for (int i = 0; i < 33; i++)
        strcat(text, "<a>\n");
    for (int i = 0; i < 33; i++)
        strcat(text, "</a>");
    expect_load_error(text, ":33: elements nested deeper than 32");
    text[0] = '\0';
    for (int i = 0; i < 32; i++)
        strcat(text, "<a>\n");
    for (int i = 0; i < 32; i++)
        strcat(text, "</a>");
    config *cfg = load_text(text);
    xml_node *deep = config_first(cfg, NULL, "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a");
    assert_non_null(deep);
    config_fail(cfg, deep, "deep");
    expect_kept_error(cfg, ":32: <a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a>: deep");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_doctype_refused),
        cmocka_unit_test(test_comments_and_text),
        cmocka_unit_test(test_unknown_element),
        cmocka_unit_test(test_wrong_root),
        cmocka_unit_test(test_bad_integer),
        cmocka_unit_test(test_port),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_repeated),
        cmocka_unit_test(test_value_with_children),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
