/* tests/unit/test_loadgen_fed.c — the load generator's federation mode (tests/bench/loadgen/
 * lg_fed.c, the --peer-server and --peer-domain checks of lg_options.c): which half of the users
 * is on which server and domain, who sends to whom, the address slots, what is refused, and that
 * without the options nothing changes.
 *
 * The loadgen is not part of the library, so its modules are compiled into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/loadgen/lg_fed.c"
#include "tests/bench/loadgen/lg_options.c"

#include "tests/unit/loadgen_parse.h"

static void test_off(void **state)
{
    lg_options o;
    assert_int_equal(parse(&o, (const char *[]){"loadgen", "--users", "5", "--port", "1,2",
                                                "--domain", "a.test", NULL}), 0);
    assert_false(lg_fed_on(&o));
    assert_int_equal(lg_fed_senders(&o), 5);
    assert_int_equal(lg_fed_receiver(&o, 0), 1);
    assert_int_equal(lg_fed_receiver(&o, 4), 0);
    assert_false(lg_fed_on_peer(&o, 4));
    assert_string_equal(lg_fed_domain(&o, 4), "a.test");
    assert_int_equal(lg_fed_slot(&o, 3, 1) % o.naddrs, 0);   /* index + hop, as before */
    lg_options_free(&o);
    (void)state;
}

static void test_split(void **state)
{
    lg_options o;
    assert_int_equal(parse(&o, (const char *[]){"loadgen", "--users", "6", "--server",
                                                "127.0.0.2:5222,127.0.0.2:6222", "--domain",
                                                "a.test", "--peer-server", "127.0.0.3:5222",
                                                "--peer-domain", "b.test", NULL}), 0);
    assert_true(lg_fed_on(&o));
    assert_int_equal(o.naddrs, 3);
    assert_string_equal(o.addrs[2].host, "127.0.0.3");
    assert_int_equal(o.addrs[2].port, 5222);
    assert_int_equal(lg_fed_senders(&o), 3);
    /* Senders 0..2 on a.test over the first two addresses; receivers 3..5 on b.test. */
    for (uint32_t i = 0; i < 3; i++) {
        assert_false(lg_fed_on_peer(&o, i));
        assert_string_equal(lg_fed_domain(&o, i), "a.test");
        assert_true(lg_fed_slot(&o, i, 0) < 2);
        assert_true(lg_fed_on_peer(&o, 3 + i));
        assert_string_equal(lg_fed_domain(&o, 3 + i), "b.test");
        assert_int_equal(lg_fed_slot(&o, 3 + i, 0), 2);
    }
    assert_int_equal(lg_fed_slot(&o, 0, 0), 0);
    assert_int_equal(lg_fed_slot(&o, 1, 0), 1);
    assert_int_equal(lg_fed_slot(&o, 2, 0), 0);
    /* Each sender to the next receiver: every receiver gets one sender's messages. */
    assert_int_equal(lg_fed_receiver(&o, 0), 4);
    assert_int_equal(lg_fed_receiver(&o, 1), 5);
    assert_int_equal(lg_fed_receiver(&o, 2), 3);
    lg_options_free(&o);
    (void)state;
}

static void test_refused(void **state)
{
    lg_options o;
    const char *const *bad_args[] = {
        (const char *[]){"loadgen", "--users", "4", "--peer-server", "127.0.0.3:5222", NULL},
        (const char *[]){"loadgen", "--users", "4", "--peer-domain", "b.test", NULL},
        (const char *[]){"loadgen", "--users", "5", "--peer-server", "127.0.0.3:5222",
                         "--peer-domain", "b.test", NULL},
        (const char *[]){"loadgen", "--users", "4", "--peer-server", "127.0.0.3",
                         "--peer-domain", "b.test", NULL},
        (const char *[]){"loadgen", "--users", "4", "--peer-server", "a:1,b:2",
                         "--peer-domain", "b.test", NULL},
        (const char *[]){"loadgen", "--users", "4", "--peer-server", "127.0.0.3:5222",
                         "--peer-domain", "b@test", NULL},
        (const char *[]){"loadgen", "--users", "4", "--peer-server", "127.0.0.3:5222",
                         "--peer-domain", "b.test", "--sm", NULL},
        (const char *[]){"loadgen", "--users", "4", "--peer-server", "127.0.0.3:5222",
                         "--peer-domain", "b.test", "--muc", NULL},
        (const char *[]){"loadgen", "--users", "4", "--peer-server", "127.0.0.3:5222",
                         "--peer-domain", "b.test", "--transport", "websocket", NULL},
    };
    for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
        assert_int_equal(parse_quietly(&o, bad_args[i]), -1);
        lg_options_free(&o);
    }
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
