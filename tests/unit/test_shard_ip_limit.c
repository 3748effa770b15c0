/* tests/unit/test_shard_ip_limit.c — per-address counters (shard/ip_limit.c): counting within a
 * window, a new window starting from zero, addresses apart, IPv4-mapped IPv6 as IPv4, IPv6 per
 * /64, and exact counts under concurrent hits from several threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "shard/ip_limit.h"

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

static void test_window(void **state)
{
    /* Enough slots that these few addresses do not share one (the key is random). */
    ip_limit *l = ip_limit_new(1u << 20);
    struct sockaddr_storage a = addr("192.0.2.1"), b = addr("192.0.2.2");
    uint64_t t = 1005000;   /* ms: the window opens at second 1005 */
    for (uint32_t i = 1; i <= 5; i++)
        assert_int_equal(ip_limit_hit(l, &a, t + i, 10), i);
    assert_int_equal(ip_limit_peek(l, &a, t + 9999, 10), 5);
    assert_int_equal(ip_limit_peek(l, &b, t, 10), 0);
    assert_int_equal(ip_limit_hit(l, &b, t, 10), 1);
    /* Second 1010 is a multiple of the interval, not the window's end: the burst goes on. */
    assert_int_equal(ip_limit_hit(l, &a, 1010500, 10), 6);
    /* Ten seconds after the window's first event, a new window starts from zero. */
    assert_int_equal(ip_limit_peek(l, &a, t + 10000, 10), 0);
    assert_int_equal(ip_limit_hit(l, &a, t + 10000, 10), 1);
    assert_int_equal(ip_limit_hit(l, &a, t + 19999, 10), 2);
    ip_limit_free(l);
}

static void test_families(void **state)
{
    ip_limit *l = ip_limit_new(1u << 20);
    struct sockaddr_storage v4 = addr("198.51.100.7"), mapped = addr("::ffff:198.51.100.7");
    struct sockaddr_storage p1 = addr("2001:db8:1:2::1"), p2 = addr("2001:db8:1:2:ffff::9");
    struct sockaddr_storage other = addr("2001:db8:1:3::1");
    assert_int_equal(ip_limit_hit(l, &v4, 0, 1), 1);
    assert_int_equal(ip_limit_hit(l, &mapped, 0, 1), 2);
    assert_int_equal(ip_limit_hit(l, &p1, 0, 1), 1);
    assert_int_equal(ip_limit_hit(l, &p2, 0, 1), 2);       /* same /64 */
    assert_int_equal(ip_limit_hit(l, &other, 0, 1), 1);    /* another /64 */
    struct sockaddr_storage unix_addr;
    memset(&unix_addr, 0, sizeof unix_addr);
    unix_addr.ss_family = AF_UNIX;
    assert_int_equal(ip_limit_hit(l, &unix_addr, 0, 1), 0);
    ip_limit_free(l);
}

#define HITTERS 4
#define HITS 20000

static ip_limit *shared;

static void *hitter(void *arg)
{
    struct sockaddr_storage a = addr("203.0.113.9");
    for (int i = 0; i < HITS; i++)
        ip_limit_hit(shared, &a, 5000, 3600);
    return NULL;
}

static void test_concurrent_hits_are_exact(void **state)
{
    shared = ip_limit_new(64);
    pthread_t th[HITTERS];
    for (int i = 0; i < HITTERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hitter, NULL), 0);
    for (int i = 0; i < HITTERS; i++)
        pthread_join(th[i], NULL);
    struct sockaddr_storage a = addr("203.0.113.9");
    assert_int_equal(ip_limit_peek(shared, &a, 5000, 3600), HITTERS * HITS);
    ip_limit_free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_concurrent_hits_are_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
