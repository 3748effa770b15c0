/* tests/unit/test_utf8.c — core/utf8: cutting text between characters. (Validation is tested
 * through the JID parser, tests/unit/test_jid.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/utf8.h"

static void test_cut(void **state)
{
    const char *s = "a\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80z";   /* a ä € 😀 z: 1+2+3+4+1 bytes */
    size_t len = strlen(s);
    static const struct {
        size_t max, want;
    } cases[] = {{0, 0}, {1, 1}, {2, 1}, {3, 3}, {4, 3}, {5, 3}, {6, 6}, {7, 6}, {8, 6}, {9, 6},
                 {10, 10}, {11, 11}, {100, 11}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = utf8_cut(s, len, cases[i].max);
        assert_int_equal(n, cases[i].want);
        assert_true(utf8_scan(s, n) >= 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cut)};
    return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
