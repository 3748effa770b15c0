/* tests/unit/test_sm_config.c — the SM's configuration reader (sm/config.c) on the example file
 * etc/sm.xml and on the errors an operator makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sm/config.h"
#include "sm/module.h"
#include "sm/modules.h"
#include "tests/support/tmp.h"

static void test_example_file(void **state)
{
    sm_config sc;
    config_error err;
    if (sm_config_load("etc/sm.xml", sm_builtin_modules, &sc, &err) != 0)
        fail_msg("%s", err.text);
    assert_int_equal(sc.nservices, 1);
    assert_string_equal(sc.services[0].id, "jadc2s");
    assert_string_equal(sc.services[0].ip, "127.0.0.1");
    assert_int_equal(sc.services[0].port, 5111);
    assert_string_equal(sc.services[0].secret, "secret");
    assert_int_equal(sc.services[0].role, SM_ROLE_FRONT);
    assert_int_equal(sc.nhosts, 1);
    assert_string_equal(sc.hosts[0].name, "localhost");
    /* Modules' options are in the file's vocabulary; the modules read them (sm/module.h). */
    assert_true(config_bool(sc.cfg, sc.hosts[0].el, "register", false));
    assert_non_null(sm_config_host(&sc, "LOCALHOST"));
    assert_null(sm_config_host(&sc, "example.org"));
    assert_string_equal(sc.storage.db.driver, "sqlite");
    assert_string_equal(sc.storage.db.path, "./jabshard.db");
    assert_int_equal(config_int(sc.cfg, NULL, "offline_quota", 0, 0, 1000000), 100);
    assert_null(sc.modules);    /* every built-in module */
    assert_int_equal(sc.log_level, LL_INFO);
    sm_config_free(&sc);
}

/* The scratch directory the tests write their files in. */
static char *dir;

static int scratch_setup(void **state)
{
    dir = tmp_dir("test_sm_config");
    return dir ? 0 : -1;
}

static int scratch_teardown(void **state)
{
    tmp_dir_remove(dir);
    return 0;
}

/* Writes text to a scratch file and expects sm_config_load to refuse it with "<file>:<rest>". */
static void expect_refused(const char *text, const char *rest)
{
    char *path = tmp_write(dir, "sm.xml", "%s", text);
    assert_non_null(path);
    sm_config sc;
    config_error err;
    assert_int_equal(sm_config_load(path, sm_builtin_modules, &sc, &err), -1);
    char want[512];
    snprintf(want, sizeof(want), "%s%s", path, rest);
    assert_string_equal(err.text, want);
    free(path);
}

static void test_errors(void **state)
{
    expect_refused("<sm>\n<host name='a'/>\n<storage><drver/></storage>\n</sm>\n",
                   ":3: <storage/drver>: unknown element");
    expect_refused("<sm>\n</sm>\n",
                   ":1: <sm>: missing required element <host name='...'>: no domain is served");
    expect_refused("<sm>\n<host name='a'/>\n<storage>\n<driver>oracle</driver>\n</storage>\n</sm>\n",
                   ":4: <storage/driver>: expected one of sqlite, pgsql, mariadb; got \"oracle\"");
    expect_refused("<sm>\n<host name='a'/>\n<service id='x' role='front'><accept><port>5111</port>"
                   "<secret>s</secret></accept></service>\n"
                   "<service id='x' role='front'><accept><port>5112</port><secret>s</secret>"
                   "</accept></service>\n</sm>\n",
                   ":4: <service>: service id 'x' is configured twice");
}

/* Finding 4 of the security review: a link's role is the operator's explicit choice, and a
 * component can never be named like a served host (it would speak as its users). */
static void test_roles(void **state)
{
    expect_refused("<sm>\n<host name='a'/>\n<service id='x'>\n<accept><port>5111</port>"
                   "<secret>s</secret></accept></service>\n</sm>\n",
                   ":3: <service>: missing required attribute 'role'");
    expect_refused("<sm>\n<host name='a'/>\n<service id='x' role='server'>\n<accept><port>5111"
                   "</port><secret>s</secret></accept></service>\n</sm>\n",
                   ":3: <service>: attribute 'role': expected one of front, component, s2s; got \"server\"");
    expect_refused("<sm>\n<host name='example.org'/>\n<service id='EXAMPLE.org' role='component'>\n"
                   "<accept><port>5111</port><secret>s</secret></accept></service>\n</sm>\n",
                   ":3: <service>: component 'EXAMPLE.org' has the name of a served host");
}

/* <modules> names built-in modules, once each; the modules' options are checked at load like the
 * core's, with file, line and element. */
static void test_modules(void **state)
{
    expect_refused("<sm>\n<host name='a'/>\n<modules>\n<module>roster</module>\n"
                   "<module>rosters</module>\n</modules>\n</sm>\n",
                   ":5: <modules/module>: no module is called 'rosters'");
    expect_refused("<sm>\n<host name='a'/>\n<modules><module>ping</module>\n"
                   "<module>ping</module></modules>\n</sm>\n",
                   ":4: <modules/module>: module 'ping' is listed twice");
    expect_refused("<sm>\n<host name='a'/>\n<limits>\n<blocklist>0</blocklist>\n</limits>\n</sm>\n",
                   ":4: <limits/blocklist>: expected an integer from 1 to 1000000, got 0");
    expect_refused("<sm>\n<host name='a'><registr/></host>\n</sm>\n",
                   ":2: <host/registr>: unknown element");

    char *path = tmp_write(dir, "sm.xml", "%s",
                           "<sm><host name='a'><register/></host><modules><module>ping</module>"
                           "<module>roster</module></modules><limits><directed>5</directed>"
                           "</limits></sm>");
    assert_non_null(path);
    sm_config sc;
    config_error err;
    if (sm_config_load(path, sm_builtin_modules, &sc, &err) != 0)
        fail_msg("%s", err.text);
    assert_non_null(sc.modules);
    assert_string_equal(sc.modules[0], "ping");
    assert_string_equal(sc.modules[1], "roster");
    assert_null(sc.modules[2]);
    sm_config_free(&sc);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_modules),
    };
    return cmocka_run_group_tests_name("sm_config", tests, scratch_setup, scratch_teardown);
}
