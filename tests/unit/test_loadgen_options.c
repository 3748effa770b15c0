/* tests/unit/test_loadgen_options.c — the load generator's command line (tests/bench/loadgen/
 * lg_options.c): defaults, every list syntax (ports, rates, source ranges), the user and password
 * formats (one %u, %% kept, never a printf format), the server addresses (--server, or --host
 * with each --port), the stream management and cut options, and the values that must be refused.
 *
 * The loadgen is not part of the library, so its module is compiled into this test directly. */
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

#include "tests/bench/loadgen/lg_options.c"

#include "tests/unit/loadgen_parse.h"

static void test_defaults(void **state)
{
    lg_options o;
    assert_int_equal(parse(&o, (const char *[]){"loadgen", "--users", "5", NULL}), 0);
    assert_string_equal(o.host, "127.0.0.1");
    assert_int_equal(o.nports, 1);
    assert_int_equal(o.ports[0], 5222);
    assert_string_equal(o.domain, "localhost");
    assert_int_equal(o.users, 5);
    assert_int_equal(o.first, 1);
    assert_int_equal(o.mech, LG_MECH_SCRAM_SHA1);
    assert_int_equal(o.tls, LG_TLS_STARTTLS);
    assert_int_equal(o.nsources, 0);
    assert_int_equal(o.login_concurrency, 200);
    assert_false(o.warmup);
    assert_int_equal(o.hold_s, 0);
    assert_int_equal(o.keepalive_s, 60);
    assert_int_equal(o.nrates, 0);
    assert_int_equal(o.round_s, 10);
    assert_true(o.stop_p99_ms == 0);
    assert_int_equal(o.drain_s, 5);
    assert_int_equal(o.reconnect_s, 0);
    assert_null(o.ready_file);
    assert_int_equal(o.timeout_s, 30);
    assert_int_equal(o.naddrs, 1);
    assert_string_equal(o.addrs[0].host, "127.0.0.1");
    assert_int_equal(o.addrs[0].port, 5222);
    assert_false(o.sm);
    assert_int_equal(o.sm_ack_every, 1);
    assert_int_equal(o.cut_after_s, -1);
    assert_int_equal(o.cut_users, 0);
    assert_int_equal(o.cut_return_ms, 0);
    lg_options_free(&o);
}

static void test_servers_and_sm(void **state)
{
    lg_options o;
    const char *args[] = {"loadgen", "--users", "10", "--host", "10.1.1.1", "--port", "5222,5232",
                          NULL};
    assert_int_equal(parse(&o, args), 0);
    assert_int_equal(o.naddrs, 2);
    assert_string_equal(o.addrs[1].host, "10.1.1.1");
    assert_int_equal(o.addrs[1].port, 5232);
    lg_options_free(&o);
    const char *args2[] = {"loadgen", "--users", "10", "--server", "a.example:5222,[::1]:6222",
                           "--sm", "--sm-ack-every", "5", "--cut-after", "0", "--cut-users", "4",
                           "--cut-return", "never", NULL};
    assert_int_equal(parse(&o, args2), 0);
    assert_int_equal(o.naddrs, 2);
    assert_string_equal(o.addrs[0].host, "a.example");
    assert_int_equal(o.addrs[0].port, 5222);
    assert_string_equal(o.addrs[1].host, "::1");
    assert_int_equal(o.addrs[1].port, 6222);
    assert_true(o.sm);
    assert_int_equal(o.sm_ack_every, 5);
    assert_int_equal(o.cut_after_s, 0);
    assert_int_equal(o.cut_users, 4);
    assert_int_equal(o.cut_return_ms, -1);
    lg_options_free(&o);
    const char *args3[] = {"loadgen", "--users", "10", "--cut-return", "250", NULL};
    assert_int_equal(parse(&o, args3), 0);
    assert_int_equal(o.cut_return_ms, 250);
    lg_options_free(&o);
}

static void test_lists(void **state)
{
    lg_options o;
    const char *args[] = {"loadgen", "--users", "10", "--port", "5222,5232", "--rates",
                          "2000,4000,8000.5", "--sources", "127.0.0.1-127.0.0.3,10.0.0.9",
                          "--mech", "PLAIN", "--tls", "direct", "--warmup", "--reconnect", "3",
                          "--stop-p99-ms", "50", "--first", "0", NULL};
    assert_int_equal(parse(&o, args), 0);
    assert_int_equal(o.nports, 2);
    assert_int_equal(o.ports[1], 5232);
    assert_int_equal(o.nrates, 3);
    assert_true(o.rates[0] == 2000 && o.rates[2] == 8000.5);
    assert_int_equal(o.nsources, 4);
    assert_int_equal(o.sources[0], 0x7f000001);
    assert_int_equal(o.sources[2], 0x7f000003);
    assert_int_equal(o.sources[3], 0x0a000009);
    assert_int_equal(o.mech, LG_MECH_PLAIN);
    assert_int_equal(o.tls, LG_TLS_DIRECT);
    assert_true(o.warmup);
    assert_int_equal(o.reconnect_s, 3);
    assert_true(o.stop_p99_ms == 50);
    assert_int_equal(o.first, 0);
    lg_options_free(&o);
}

static void test_refused(void **state)
{
    static const char *const bad[][3] = {
        {"--users", "0", NULL},
        {"--port", "0", NULL},
        {"--port", "5222,", NULL},
        {"--port", "70000", NULL},
        {"--rates", "0", NULL},
        {"--rates", "abc", NULL},
        {"--sources", "127.0.0.9-127.0.0.1", NULL},
        {"--sources", "::1", NULL},
        {"--mech", "DIGEST-MD5", NULL},
        {"--tls", "yes", NULL},
        {"--user-format", "user", NULL},            /* no %u */
        {"--user-format", "user%u%u", NULL},        /* two */
        {"--user-format", "user%s", NULL},          /* not %u */
        {"--user-format", "us'er%u", NULL},         /* needs escaping in a stanza */
        {"--user-format", "a@b%u", NULL},           /* not a localpart */
        {"--password-format", "%n%u", NULL},
        {"--domain", "local host", NULL},
        {"--hold", "-1", NULL},
        {"--timeout", "0", NULL},
        {"--bogus", "1", NULL},
        {"--server", "localhost", NULL},            /* no port */
        {"--server", "::1:5222", NULL},             /* IPv6 without brackets */
        {"--server", "a:1,", NULL},
        {"--sm-ack-every", "x", NULL},
        {"--cut-users", "4", NULL},                 /* more than --users 3 */
        {"--cut-return", "soon", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lg_options o;
        const char *args[] = {"loadgen", "--users", "3", bad[i][0], bad[i][1], NULL};
        assert_int_equal(parse_quietly(&o, args), -1);
        lg_options_free(&o);
    }
    lg_options o;
    assert_int_equal(parse_quietly(&o, (const char *[]){"loadgen", NULL}), -1);   /* --users required */
    lg_options_free(&o);
    assert_int_equal(parse_quietly(&o, (const char *[]){"loadgen", "--users", "3", "extra", NULL}),
                     -1);
    lg_options_free(&o);
    /* The last user number must not wrap around. */
    assert_int_equal(parse_quietly(&o, (const char *[]){"loadgen", "--users", "3", "--first",
                                                       "4294967295", NULL}),
                     -1);
    lg_options_free(&o);
}

static void test_format(void **state)
{
    char out[32];
    assert_int_equal(lg_options_format("user%u", 42, out, sizeof(out)), 6);
    assert_string_equal(out, "user42");
    assert_int_equal(lg_options_format("%u%%x", 4294967295u, out, sizeof(out)), 12);
    assert_string_equal(out, "4294967295%x");
    assert_int_equal(lg_options_format("user%u", 1234, out, 8), -1);   /* "user1234" + NUL */
    assert_int_equal(lg_options_format("user%u", 123, out, 8), 7);
    assert_string_equal(out, "user123");
}

static void test_pep(void **state)
{
    lg_options o;
    assert_int_equal(parse(&o, (const char *[]){"loadgen", "--users", "5", NULL}), 0);
    assert_false(o.pep);
    assert_int_equal(o.pep_contacts, 0);
    assert_int_equal(o.hold_after_s, 0);
    lg_options_free(&o);
    assert_int_equal(parse(&o, (const char *[]){"loadgen", "--users", "100", "--pep",
                                                "--pep-contacts", "50", "--hold-after", "6",
                                                NULL}), 0);
    assert_true(o.pep);
    assert_int_equal(o.pep_contacts, 50);
    assert_int_equal(o.hold_after_s, 6);
    lg_options_free(&o);
    /* --pep needs its contacts; they are even, fewer than the users, and only with --pep. */
    const char *const refused[][6] = {
        {"--users", "100", "--pep", NULL},
        {"--users", "100", "--pep", "--pep-contacts", "3", NULL},
        {"--users", "100", "--pep", "--pep-contacts", "0", NULL},
        {"--users", "100", "--pep", "--pep-contacts", "100", NULL},
        {"--users", "100", "--pep-contacts", "10", NULL},
        {"--users", "100", "--hold-after", "-1", NULL},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *argv[8] = {"loadgen"};
        for (size_t j = 0; refused[i][j]; j++)
            argv[j + 1] = refused[i][j];
        assert_int_equal(parse_quietly(&o, argv), -1);
        lg_options_free(&o);
    }
}

/* --transport websocket: ws:// by default, wss:// with --tls direct, never STARTTLS. */
static void test_websocket(void **state)
{
    lg_options o;
    assert_int_equal(parse(&o, (const char *[]){"loadgen", "--users", "2", NULL}), 0);
    assert_int_equal(o.transport, LG_TRANSPORT_TCP);
    assert_null(o.ws_path);
    lg_options_free(&o);
    assert_int_equal(parse(&o, (const char *[]){"loadgen", "--users", "2", "--transport",
                                                "websocket", NULL}), 0);
    assert_int_equal(o.transport, LG_TRANSPORT_WEBSOCKET);
    assert_int_equal(o.tls, LG_TLS_NONE);
    assert_string_equal(o.ws_path, "/xmpp-websocket");
    lg_options_free(&o);
    assert_int_equal(parse(&o, (const char *[]){"loadgen", "--users", "2", "--transport",
                                                "websocket", "--tls", "direct", "--ws-path", "/ws",
                                                NULL}), 0);
    assert_int_equal(o.tls, LG_TLS_DIRECT);
    assert_string_equal(o.ws_path, "/ws");
    lg_options_free(&o);
    const char *const *bad[] = {
        (const char *[]){"loadgen", "--users", "2", "--transport", "websocket", "--tls", "starttls", NULL},
        (const char *[]){"loadgen", "--users", "2", "--ws-path", "/ws", NULL},
        (const char *[]){"loadgen", "--users", "2", "--transport", "websocket", "--ws-path", "ws", NULL},
        (const char *[]){"loadgen", "--users", "2", "--transport", "bosh", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_quietly(&o, bad[i]), -1);
        lg_options_free(&o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_servers_and_sm),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_pep),
        cmocka_unit_test(test_websocket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
