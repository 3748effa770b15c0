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

/* <partitions> (experimental): off without the element; every index once; a lower peer needs
 * where to connect, a higher one our port; errors name file, line and element. */
static void test_partitions(void **state)
{
    sm_config sc;
    config_error err;
    assert_int_equal(sm_config_load("etc/sm.xml", sm_builtin_modules, &sc, &err), 0);
    assert_int_equal(sc.partitions.npeers, 0);
    sm_config_free(&sc);

    char *path = tmp_write(dir, "sm.xml", "%s",
                           "<sm><host name='a'/><partitions index='1' id='sm1' port='5350' "
                           "key='00112233445566778899aabbccddeeff'>"
                           "<peer index='0' id='sm0' host='127.0.0.1' port='5349' secret='s0'/>"
                           "<peer index='2' id='sm2' secret='s2'/></partitions></sm>");
    assert_non_null(path);
    if (sm_config_load(path, sm_builtin_modules, &sc, &err) != 0)
        fail_msg("%s", err.text);
    const sm_partitions *p = &sc.partitions;
    assert_int_equal(p->index, 1);
    assert_int_equal(p->count, 3);
    assert_string_equal(p->id, "sm1");
    assert_int_equal(p->port, 5350);
    assert_true(p->key.k0 == 0x0011223344556677ull && p->key.k1 == 0x8899aabbccddeeffull);
    assert_int_equal(p->npeers, 2);
    assert_string_equal(p->peers[0].id, "sm0");
    assert_string_equal(p->peers[0].host, "127.0.0.1");
    assert_int_equal(p->peers[0].port, 5349);
    assert_string_equal(p->peers[0].secret, "s0");
    assert_int_equal(p->peers[1].index, 2);
    sm_config_free(&sc);
    free(path);

    expect_refused("<sm>\n<host name='a'/>\n<partitions index='0' id='sm0'>\n</partitions>\n</sm>\n",
                   ":3: <partitions>: no <peer>: partitions need at least two SMs");
    expect_refused("<sm>\n<host name='a'/>\n<partitions index='1' id='sm1'>\n"
                   "<peer index='1' id='sm0' host='h' port='1' secret='s'/>\n</partitions>\n</sm>\n",
                   ":4: <partitions/peer>: index 1 is taken by another SM");
    expect_refused("<sm>\n<host name='a'/>\n<partitions index='1' id='sm1'>\n"
                   "<peer index='0' id='sm0' secret='s'/>\n</partitions>\n</sm>\n",
                   ":4: <partitions/peer>: peer 'sm0' has a lower index: this SM connects to it, "
                   "and needs its host='...' and port='...'");
    expect_refused("<sm>\n<host name='a'/>\n<partitions index='0' id='sm0'>\n"
                   "<peer index='1' id='sm1' secret='s'/>\n</partitions>\n</sm>\n",
                   ":3: <partitions>: peer 'sm1' has a higher index: it connects here, and "
                   "<partitions> needs port='...'");
    expect_refused("<sm>\n<host name='a'/>\n<partitions index='0' id='sm0' port='5350'>\n"
                   "<peer index='2' id='sm1' secret='s'/>\n</partitions>\n</sm>\n",
                   ":4: <partitions/peer>: attribute 'index': expected an integer from 0 to 1, got 2");
    expect_refused("<sm>\n<host name='a'/>\n<partitions index='0' id='sm0' port='5350' key='xy'>\n"
                   "<peer index='1' id='sm1' secret='s'/>\n</partitions>\n</sm>\n",
                   ":3: <partitions>: attribute 'key': expected 32 hex digits");
    expect_refused("<sm>\n<host name='a'/>\n<partitions index='0' id='sm0' port='5350'>\n"
                   "<peer index='1' id='sm0' secret='s'/>\n</partitions>\n</sm>\n",
                   ":4: <partitions/peer>: peer id 'sm0' is another SM's or a <service>'s");
    expect_refused("<sm>\n<host name='a'/>\n<partitions index='0' port='5350'>\n"
                   "<peer index='1' id='sm1'/>\n</partitions>\n</sm>\n",
                   ":3: <partitions>: missing required attribute 'id'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_partitions),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_modules),
    };
    return cmocka_run_group_tests_name("sm_config", tests, scratch_setup, scratch_teardown);
}
