/* tests/unit/test_shard_config.c — the front's configuration (shard/front_config.c): the example
 * etc/jadc2s.xml, defaults, the limits (bursts, trusted networks, the bounds between them),
 * errors naming the element, and the prime split of max_fds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "shard/front_config.h"
#include "tests/support/tmp.h"

/* The configuration file the tests write (write_cfg) and load, in a scratch directory. */
static char *dir, *path;

static int scratch_setup(void **state)
{
    dir = tmp_dir("test_shard_config");
    path = dir ? tmp_path(dir, "jadc2s.xml") : NULL;
    return path ? 0 : -1;
}

static int scratch_teardown(void **state)
{
    free(path);
    tmp_dir_remove(dir);
    return 0;
}

static const char *write_cfg(const char *body)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    return path;
}

static void test_example(void **state)
{
    front_config fc;
    config_error err;
    assert_int_equal(front_config_load("etc/jadc2s.xml", &fc, &err), 0);
    assert_string_equal(fc.sms[0].host, "127.0.0.1");
    assert_int_equal(fc.sms[0].port, 5111);
    assert_string_equal(fc.sm_secret, "secret");
    assert_string_equal(fc.sm_id, "jadc2s");
    assert_int_equal(fc.sm_retries, 5);
    assert_int_equal(fc.nhosts, 1);
    assert_string_equal(fc.hosts[0], "localhost");
    assert_int_equal(fc.port, 5222);
    assert_int_equal(fc.ssl_port, 5223);
    assert_int_equal(fc.max_fds, 10007);
    /* The example shows the defaults. */
    assert_int_equal(fc.limits.stanza_size, 262144);
    assert_int_equal(fc.limits.max_bps, 10240);
    assert_int_equal(fc.limits.bps_burst, 524288);
    assert_int_equal(fc.limits.conn_rate, 5);
    assert_int_equal(fc.limits.conn_interval, 1);
    assert_int_equal(fc.limits.conn_burst, 500);
    assert_int_equal(fc.limits.register_per_conn, 5);
    assert_int_equal(fc.limits.register_burst, 10);
    assert_int_equal(fc.limits.register_interval, 600);
    assert_int_equal(fc.limits.output_queue, 262144);
    assert_int_equal(fc.limits.output_max, 1048576);
    assert_int_equal(fc.limits.output_timeout, 60);
    assert_int_equal(fc.limits.trusted.n, 2);
    assert_int_equal(fc.csi.max_stanzas, 100);
    assert_int_equal(fc.csi.max_bytes, 65536);
    assert_int_equal(fc.csi.max_hold, 300);
    assert_int_equal(fc.smacks.request_stanzas, 5);
    assert_int_equal(fc.smacks.request_wait, 4);
    front_config_free(&fc);
}

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
        ss.ss_family = AF_INET6;
    }
    return ss;
}

static bool trusts(const front_config *fc, const char *text)
{
    struct sockaddr_storage a = addr(text);
    return ip_nets_contain(&fc->limits.trusted, &a);
}

#define MINIMAL "<jadc2s><sm><secret>s</secret></sm><local><id>a</id></local>"

static void test_limits(void **state)
{
    front_config fc;
    config_error err;
    /* No <limits>: the defaults, and loopback is trusted. */
    write_cfg(MINIMAL "</jadc2s>");
    assert_int_equal(front_config_load(path, &fc, &err), 0);
    assert_int_equal(fc.limits.stanza_size, 262144);
    assert_int_equal(fc.limits.bps_burst, 2 * 262144);
    assert_int_equal(fc.limits.conn_burst, 500);
    assert_int_equal(fc.limits.output_max, 4 * 262144);
    assert_true(trusts(&fc, "127.0.0.1"));
    assert_true(trusts(&fc, "127.1.2.3"));
    assert_true(trusts(&fc, "::1"));
    assert_true(trusts(&fc, "::ffff:127.0.0.2"));
    assert_false(trusts(&fc, "10.0.0.1"));
    front_config_free(&fc);
    /* An explicit list replaces loopback; bursts follow their base values when absent. */
    write_cfg(MINIMAL "<limits><stanza_size>100000</stanza_size><output_queue>65536</output_queue>"
              "<trusted><net>10.0.0.0/8</net>\n<net>2001:db8::/32</net></trusted></limits></jadc2s>");
    assert_int_equal(front_config_load(path, &fc, &err), 0);
    assert_int_equal(fc.limits.bps_burst, 200000);
    assert_int_equal(fc.limits.output_max, 262144);
    assert_false(trusts(&fc, "127.0.0.1"));
    assert_false(trusts(&fc, "::1"));
    assert_true(trusts(&fc, "10.9.8.7"));
    assert_true(trusts(&fc, "2001:db8:1::5"));
    front_config_free(&fc);
    /* An empty <trusted/> trusts nobody. */
    write_cfg(MINIMAL "<limits><trusted/></limits></jadc2s>");
    assert_int_equal(front_config_load(path, &fc, &err), 0);
    assert_int_equal(fc.limits.trusted.n, 0);
    front_config_free(&fc);
    /* The largest stanza accepted, and max_bps 0 (no pacing) takes any burst. */
    write_cfg(MINIMAL "<limits><stanza_size>524288</stanza_size><max_bps>0</max_bps>"
              "<bps_burst>1024</bps_burst></limits></jadc2s>");
    assert_int_equal(front_config_load(path, &fc, &err), 0);
    front_config_free(&fc);
}


static void test_defaults(void **state)
{
    front_config fc;
    config_error err;
    write_cfg("<jadc2s><sm><secret>s</secret></sm><local><id>Example.COM</id><id>b.example</id>"
              "</local></jadc2s>");
    assert_int_equal(front_config_load(path, &fc, &err), 0);
    assert_int_equal(fc.sms[0].port, 5111);
    assert_int_equal(fc.sm_retries, 5);
    assert_string_equal(fc.ip, "0.0.0.0");
    assert_int_equal(fc.port, 5222);
    assert_int_equal(fc.ssl_port, 5223);
    assert_string_equal(fc.pemfile, "./server.pem");
    assert_true(fc.starttls_required);
    assert_int_equal(fc.max_fds, 1031);   /* 1023 = 3 * 11 * 31 rounds up to 1031 */
    assert_true(fc.threads >= 1);
    assert_int_equal(fc.nhosts, 2);
    assert_string_equal(fc.hosts[0], "example.com");   /* nameprep'd */
    assert_non_null(front_config_host(&fc, "b.example"));
    assert_null(front_config_host(&fc, "c.example"));
    assert_int_equal(fc.limits.auth_failures, 3);
    assert_int_equal(fc.limits.auth_timeout, 30);
    assert_int_equal(fc.limits.idle_timeout, 300);
    assert_int_equal(fc.limits.max_bps, 10240);
    assert_int_equal(fc.limits.output_timeout, 60);
    assert_int_equal(fc.csi.max_stanzas, 100);
    assert_int_equal(fc.csi.max_bytes, 65536);
    assert_int_equal(fc.csi.max_hold, 300);
    assert_int_equal(fc.smacks.request_stanzas, 5);   /* defaults when <smacks> is absent */
    assert_int_equal(fc.smacks.request_wait, 4);
    front_config_free(&fc);
    /* A small output_queue takes CSI's max_bytes down with it; 0 stanzas turns CSI off. */
    write_cfg(MINIMAL "<limits><output_queue>8192</output_queue></limits>"
              "<csi><max_stanzas>0</max_stanzas><max_hold>5</max_hold></csi></jadc2s>");
    assert_int_equal(front_config_load(path, &fc, &err), 0);
    assert_int_equal(fc.csi.max_bytes, 8192);
    assert_int_equal(fc.csi.max_stanzas, 0);
    assert_int_equal(fc.csi.max_hold, 5);
    front_config_free(&fc);
}

static void expect_error(const char *body, unsigned line, const char *element)
{
    front_config fc;
    config_error err;
    write_cfg(body);
    assert_int_equal(front_config_load(path, &fc, &err), -1);
    if (err.line != line || strcmp(err.element, element) != 0)
        fail_msg("expected line %u <%s>, got: %s", line, element, err.text);
    assert_non_null(strstr(err.text, path));
}

static void test_errors(void **state)
{
    expect_error("<jadc2s>\n<sm><secret>s</secret></sm>\n<local><id>a</id>\n<prot>1</prot></local>"
                 "</jadc2s>", 4, "local/prot");
    expect_error("<jadc2s><sm><secret>s</secret>\n<port>99999</port></sm><local><id>a</id></local>"
                 "</jadc2s>", 2, "sm/port");
    expect_error("<jadc2s><sm><secret>s</secret></sm>\n<local><id>a@b</id></local></jadc2s>", 2,
                 "local/id");
    expect_error("<jadc2s><sm><secret>s</secret></sm><local><id>a</id></local>\n"
                 "<max_fds>lots</max_fds></jadc2s>", 2, "max_fds");
    expect_error("<jadc2s><sm><secret>s</secret></sm><local><id>a</id>\n<id>A</id></local></jadc2s>",
                 2, "local/id");
    expect_error("<other><sm><secret>s</secret></sm></other>", 1, "other");
    /* Limits: bad networks, and bounds that contradict one another. */
    expect_error(MINIMAL "<limits><trusted><net>10.0.0.0/8</net>\n<net>10.0.0.1/8</net>"
                 "</trusted></limits></jadc2s>", 2, "limits/trusted/net");
    expect_error(MINIMAL "<limits><trusted>\n<net>fe80::/129</net></trusted></limits></jadc2s>", 2,
                 "limits/trusted/net");
    expect_error(MINIMAL "<limits><trusted>\n<net>example.com</net></trusted></limits></jadc2s>", 2,
                 "limits/trusted/net");
    expect_error(MINIMAL "<limits>\n<stanza_size>524289</stanza_size></limits></jadc2s>", 2,
                 "limits/stanza_size");
    expect_error(MINIMAL "<limits><stanza_size>262144</stanza_size>\n<bps_burst>100000</bps_burst>"
                 "</limits></jadc2s>", 2, "limits/bps_burst");
    expect_error(MINIMAL "<limits><output_queue>65536</output_queue>\n"
                 "<output_max>32768</output_max></limits></jadc2s>", 2, "limits/output_max");
    expect_error(MINIMAL "<limits>\n<conn_burst>0</conn_burst></limits></jadc2s>", 2,
                 "limits/conn_burst");
    /* <csi>: out of range, and a hold larger than the output queue. */
    expect_error(MINIMAL "<csi>\n<max_hold>0</max_hold></csi></jadc2s>", 2, "csi/max_hold");
    expect_error(MINIMAL "<csi>\n<max_stanzas>-1</max_stanzas></csi></jadc2s>", 2,
                 "csi/max_stanzas");
    expect_error(MINIMAL "<limits><output_queue>65536</output_queue></limits><csi>\n"
                 "<max_bytes>65537</max_bytes></csi></jadc2s>", 2, "csi/max_bytes");
    expect_error(MINIMAL "<csi>\n<max_time>5</max_time></csi></jadc2s>", 2, "csi/max_time");
}

/* <sm><standby>: SMs after <sm>'s own, in order, with <sm>'s port by default. */
static void test_standby(void **state)
{
    front_config fc;
    config_error err;
    write_cfg("<jadc2s><sm><host>10.0.0.1</host><port>5112</port><secret>s</secret>"
              "<standby><host>10.0.0.2</host></standby>"
              "<standby><host>10.0.0.3</host><port>6000</port></standby></sm>"
              "<local><id>a</id></local></jadc2s>");
    assert_int_equal(front_config_load(path, &fc, &err), 0);
    assert_int_equal(fc.nsms, 3);
    assert_string_equal(fc.sms[0].host, "10.0.0.1");
    assert_int_equal(fc.sms[0].port, 5112);
    assert_string_equal(fc.sms[1].host, "10.0.0.2");
    assert_int_equal(fc.sms[1].port, 5112);
    assert_string_equal(fc.sms[2].host, "10.0.0.3");
    assert_int_equal(fc.sms[2].port, 6000);
    front_config_free(&fc);
    expect_error("<jadc2s><sm><secret>s</secret>\n<standby><port>5111</port></standby></sm>"
                 "<local><id>a</id></local></jadc2s>", 2, "sm/standby");
    expect_error("<jadc2s><sm><host>h</host><secret>s</secret>\n<standby><host>h</host></standby>"
                 "</sm><local><id>a</id></local></jadc2s>", 2, "sm/standby");
    expect_error("<jadc2s><sm><secret>s</secret><standby><host>h</host>\n<secret>t</secret>"
                 "</standby></sm><local><id>a</id></local></jadc2s>", 2, "sm/standby/secret");
}

static void test_missing_required(void **state)
{
    front_config fc;
    config_error err;
    write_cfg("<jadc2s><local><id>a</id></local></jadc2s>");
    assert_int_equal(front_config_load(path, &fc, &err), -1);
    assert_non_null(strstr(err.text, "secret"));
    write_cfg("<jadc2s><sm><secret>s</secret></sm></jadc2s>");
    assert_int_equal(front_config_load(path, &fc, &err), -1);
    assert_non_null(strstr(err.text, "id"));
}

static bool slow_prime(uint32_t n)
{
    if (n < 2)
        return false;
    for (uint32_t d = 2; d < n; d++)
        if (n % d == 0)
            return false;
    return true;
}

static void test_primes(void **state)
{
    for (uint32_t n = 0; n < 3000; n++)
        assert_int_equal(front_is_prime(n), slow_prime(n));
    assert_int_equal(front_prime_at_least(10007), 10007);
    assert_int_equal(front_prime_at_least(1023), 1031);
    assert_int_equal(front_prime_at_least(0), 2);
    /* The split: ceil(max_fds / threads), up to a prime; every thread gets at least its share. */
    for (unsigned threads = 1; threads <= 16; threads++) {
        for (uint32_t fds = 16; fds < 3000; fds += 37) {
            uint32_t slots = front_shard_slots(fds, threads);
            assert_true(front_is_prime(slots));
            assert_true((uint64_t)slots * threads >= fds);
            for (uint32_t k = (fds + threads - 1) / threads; k < slots; k++)
                assert_false(front_is_prime(k));
        }
    }
    assert_int_equal(front_shard_slots(10007, 4), 2503);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_standby),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_primes),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
