/* tests/unit/test_shard_ip_limit.c — per-address token buckets (shard/ip_limit.c): a burst, then
 * the sustained rate, a full bucket after a quiet spell, conn_interval's rate as a period,
 * addresses apart, IPv4-mapped IPv6 as IPv4, IPv6 per /64, exact takes under concurrent threads;
 * and the trusted networks (shard/ip_nets.c): CIDR parsing, IPv4 and IPv6 matching, mapped
 * addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "shard/ip_limit.h"
#include "shard/ip_nets.h"

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &a6->sin6_addr), 1);
        a6->sin6_family = AF_INET6;
    }
    return ss;
}

/* How many takes succeed at one instant. */
static unsigned takes_at(ip_limit *l, const struct sockaddr_storage *a, uint64_t now_ms,
                         const ip_rate *r, unsigned tries)
{
    unsigned n = 0;
    for (unsigned i = 0; i < tries; i++)
        n += ip_limit_take(l, a, now_ms, r);
    return n;
}

static void test_burst_then_rate(void **state)
{
    /* Enough slots that these few addresses do not share one (the key is random). */
    ip_limit *l = ip_limit_new(1u << 20);
    struct sockaddr_storage a = addr("192.0.2.1"), b = addr("192.0.2.2");
    ip_rate r = ip_rate_per(5, 1, 500);   /* the defaults: 500 at once, then 5 a second */
    assert_int_equal(r.period_us, 200000);
    uint64_t t = 1005000;
    assert_false(ip_limit_empty(l, &a, t, &r));
    /* A NAT's reconnect storm: 500 at once pass, the 501st does not. */
    assert_int_equal(takes_at(l, &a, t, &r, 600), 500);
    assert_true(ip_limit_empty(l, &a, t, &r));
    /* Another address has its own bucket. */
    assert_int_equal(takes_at(l, &b, t, &r, 3), 3);
    /* A refused take costs nothing: 199 ms later still nothing. */
    assert_int_equal(takes_at(l, &a, t + 199, &r, 10), 0);
    /* Sustained: one every 200 ms (at 200, 400, ... 60,200 ms), however hard it is tried. */
    unsigned n = 0;
    for (uint64_t ms = 200; ms <= 60200; ms += 10)
        n += takes_at(l, &a, t + ms, &r, 5);
    assert_int_equal(n, 301);
    /* After a quiet spell of burst * period (100 s), the bucket is full again, and no fuller. */
    uint64_t later = t + 60200 + 100000;
    assert_int_equal(takes_at(l, &a, later, &r, 600), 500);
    ip_limit_free(l);
}

static void test_rate_per_interval(void **state)
{
    /* conn_rate 4 per conn_interval 30 s: one token every 7.5 s; register 1 per 600 s. */
    assert_int_equal(ip_rate_per(4, 30, 4).period_us, 7500000);
    assert_int_equal(ip_rate_per(1, 600, 10).period_us, 600000000ull);
    /* Degenerate shapes are clamped to something that still limits. */
    assert_int_equal(ip_rate_per(0, 1, 0).burst, 1);
    assert_int_equal(ip_rate_per(2000000, 1, 1).period_us, 1);
    ip_limit *l = ip_limit_new(64);
    struct sockaddr_storage a = addr("198.51.100.1");
    ip_rate reg = ip_rate_per(1, 600, 10);
    assert_int_equal(takes_at(l, &a, 0, &reg, 20), 10);
    assert_int_equal(takes_at(l, &a, 599999, &reg, 5), 0);
    assert_int_equal(takes_at(l, &a, 600000, &reg, 5), 1);
    ip_limit_free(l);
}

static void test_families(void **state)
{
    ip_limit *l = ip_limit_new(1u << 20);
    ip_rate one = ip_rate_per(1, 3600, 1);
    struct sockaddr_storage v4 = addr("198.51.100.7"), mapped = addr("::ffff:198.51.100.7");
    struct sockaddr_storage p1 = addr("2001:db8:1:2::1"), p2 = addr("2001:db8:1:2:ffff::9");
    struct sockaddr_storage other = addr("2001:db8:1:3::1");
    assert_true(ip_limit_take(l, &v4, 0, &one));
    assert_false(ip_limit_take(l, &mapped, 0, &one));     /* the same IPv4 address */
    assert_true(ip_limit_take(l, &p1, 0, &one));
    assert_false(ip_limit_take(l, &p2, 0, &one));         /* same /64 */
    assert_true(ip_limit_take(l, &other, 0, &one));       /* another /64 */
    struct sockaddr_storage unix_addr;
    memset(&unix_addr, 0, sizeof unix_addr);
    unix_addr.ss_family = AF_UNIX;
    assert_true(ip_limit_take(l, &unix_addr, 0, &one));
    assert_true(ip_limit_take(l, &unix_addr, 0, &one));   /* never limited */
    assert_false(ip_limit_empty(l, &unix_addr, 0, &one));
    ip_limit_free(l);
}

#define TAKERS 4
#define TRIES 20000
#define SHARED_BURST 30000

static ip_limit *shared;
static ip_rate shared_rate;

static void *taker(void *arg)
{
    unsigned *won = arg;
    struct sockaddr_storage a = addr("203.0.113.9");
    for (int i = 0; i < TRIES; i++)
        *won += ip_limit_take(shared, &a, 5000, &shared_rate);
    return NULL;
}

/* Four threads race for one bucket at one instant: exactly its burst is taken, no more, no
 * less (the table is lock-free, so this is the compare-and-swap's proof). */
static void test_concurrent_takes_are_exact(void **state)
{
    shared = ip_limit_new(64);
    shared_rate = ip_rate_per(1, 3600, SHARED_BURST);
    pthread_t th[TAKERS];
    unsigned won[TAKERS] = {0};
    for (int i = 0; i < TAKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, taker, &won[i]), 0);
    unsigned total = 0;
    for (int i = 0; i < TAKERS; i++) {
        pthread_join(th[i], NULL);
        total += won[i];
    }
    assert_int_equal(total, SHARED_BURST);
    ip_limit_free(shared);
}

/* ---- trusted networks ------------------------------------------------------------------------- */

static void expect_bad(const char *text)
{
    ip_net n;
    const char *why = NULL;
    if (ip_net_parse(text, &n, &why))
        fail_msg("'%s' was accepted as a network", text);
    assert_non_null(why);
}

static void test_cidr_parse(void **state)
{
    ip_net n;
    const char *why;
    assert_true(ip_net_parse("10.0.0.0/8", &n, &why));
    assert_int_equal(n.family, AF_INET);
    assert_int_equal(n.prefix, 8);
    assert_true(ip_net_parse("192.0.2.7", &n, &why));
    assert_int_equal(n.prefix, 32);
    assert_true(ip_net_parse("0.0.0.0/0", &n, &why));
    assert_true(ip_net_parse("::1", &n, &why));
    assert_int_equal(n.family, AF_INET6);
    assert_int_equal(n.prefix, 128);
    assert_true(ip_net_parse("2001:db8::/32", &n, &why));
    assert_true(ip_net_parse("2001:db8:8000::/33", &n, &why));
    expect_bad("");
    expect_bad("/8");
    expect_bad("10.0.0.0/");
    expect_bad("10.0.0.0/33");
    expect_bad("10.0.0.0/08");
    expect_bad("10.0.0.0/+8");
    expect_bad("10.0.0.0/8/8");
    expect_bad("10.0.0.1/8");              /* host bits set */
    expect_bad("2001:db8:8000::/32");      /* host bits set */
    expect_bad("2001:db8::/129");
    expect_bad("localhost");
    expect_bad("10.0.0");
    expect_bad(" 10.0.0.0/8");
}

static void test_cidr_match(void **state)
{
    ip_nets l = IP_NETS_INIT;
    const char *nets[] = {"10.0.0.0/8", "192.0.2.128/25", "2001:db8:8000::/33", "::1", NULL};
    for (const char **p = nets; *p; p++) {
        ip_net n;
        const char *why;
        assert_true(ip_net_parse(*p, &n, &why));
        ip_nets_add(&l, &n);
    }
    struct {
        const char *addr;
        bool in;
    } cases[] = {
        {"10.0.0.1", true}, {"10.255.255.255", true}, {"11.0.0.0", false}, {"9.255.255.255", false},
        {"192.0.2.128", true}, {"192.0.2.255", true}, {"192.0.2.127", false},
        {"::ffff:10.1.2.3", true},     /* an IPv4 client on a dual-stack listener */
        {"::ffff:11.1.2.3", false},
        {"2001:db8:8000::1", true}, {"2001:db8:ffff:ffff::1", true}, {"2001:db8:7fff::1", false},
        {"::1", true}, {"::2", false}, {"127.0.0.1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage a = addr(cases[i].addr);
        if (ip_nets_contain(&l, &a) != cases[i].in)
            fail_msg("%s: expected %s", cases[i].addr, cases[i].in ? "in" : "out");
    }
    struct sockaddr_storage unix_addr;
    memset(&unix_addr, 0, sizeof unix_addr);
    unix_addr.ss_family = AF_UNIX;
    assert_false(ip_nets_contain(&l, &unix_addr));
    ip_nets_free(&l);
    struct sockaddr_storage any = addr("10.0.0.1");
    assert_false(ip_nets_contain(&l, &any));   /* an empty list trusts nobody */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_rate_per_interval),
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_concurrent_takes_are_exact),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
