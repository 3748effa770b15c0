/* tests/unit/test_shard_dup_filter.c — the IO thread's memory of recent deliveries
 * (shard/dup_filter.c): what was delivered under the previous link is seen, per session, and
 * what the current link delivers twice is not; the most recent DUP_FILTER_SLOTS / 2 always are
 * remembered, and memory stays fixed however many are added. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/dup_filter.h"

static void test_seen_per_session(void **state)
{
    dup_filter *f = malloc(sizeof *f);
    dup_filter_init(f);
    const char *m = "<message><body>hi</body></message>";
    uint64_t d1 = dup_filter_digest(f, 1, m, strlen(m)), d2 = dup_filter_digest(f, 2, m, strlen(m));
    assert_true(d1 != d2);
    dup_filter_add(f, d1);
    /* The same link delivering it again (a presence sent twice) is no duplicate. */
    assert_false(dup_filter_seen_before(f, d1));
    dup_filter_new_link(f);
    assert_true(dup_filter_seen_before(f, d1));
    assert_false(dup_filter_seen_before(f, d2));
    /* Another stanza to the same session is not the same. */
    const char *m2 = "<message><body>hi!</body></message>";
    assert_false(dup_filter_seen_before(f, dup_filter_digest(f, 1, m2, strlen(m2))));
    /* Two reconnects later it is forgotten. */
    dup_filter_new_link(f);
    assert_false(dup_filter_seen_before(f, d1));
    free(f);
}

static void test_remembers_the_latest(void **state)
{
    dup_filter *f = malloc(sizeof *f);
    dup_filter_init(f);
    char buf[32];
    int n = 5 * DUP_FILTER_SLOTS;
    for (int i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof buf, "<m n='%d'/>", i);
        dup_filter_add(f, dup_filter_digest(f, 7, buf, (size_t)len));
    }
    dup_filter_new_link(f);
    for (int i = n - DUP_FILTER_SLOTS / 2; i < n; i++) {
        int len = snprintf(buf, sizeof buf, "<m n='%d'/>", i);
        assert_true(dup_filter_seen_before(f, dup_filter_digest(f, 7, buf, (size_t)len)));
    }
    /* The oldest are forgotten (each table is cleared in turn). */
    int forgotten = 0;
    for (int i = 0; i < DUP_FILTER_SLOTS; i++) {
        int len = snprintf(buf, sizeof buf, "<m n='%d'/>", i);
        forgotten += !dup_filter_seen_before(f, dup_filter_digest(f, 7, buf, (size_t)len));
    }
    assert_int_equal(forgotten, DUP_FILTER_SLOTS);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seen_per_session),
        cmocka_unit_test(test_remembers_the_latest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
