/* tests/unit/test_xml_ns.c — core/xml_ns.c: the namespace URI set, inline and past it (the
 * crit-bit index), against a plain list, with keys chosen to share prefixes and to be each
 * other's prefixes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/xml_ns.h"

static void test_inline(void **state)
{
    xml_ns_set s;
    xml_ns_set_init(&s);
    assert_int_equal(xml_ns_set_find_str(&s, "urn:a"), XML_NS_NONE);
    static const char a[] = "urn:a", b[] = "urn:b";
    assert_int_equal(xml_ns_set_add(&s, a, 5), 0);
    assert_int_equal(xml_ns_set_add(&s, b, 5), 1);
    char copy[] = "urn:a";
    assert_int_equal(xml_ns_set_find_str(&s, copy), 0); /* by content */
    assert_ptr_equal(xml_ns_set_key(&s, 0)->uri, a);
    assert_int_equal(xml_ns_set_find_str(&s, b), 1);
    assert_int_equal(xml_ns_set_find(&s, "urn:a\x1flocal", 5), 0); /* a name as expat gives it */
    assert_int_equal(xml_ns_set_find(&s, "urn:", 4), XML_NS_NONE);
    assert_int_equal(xml_ns_set_find_str(&s, "urn:ab"), XML_NS_NONE);
    assert_int_equal(xml_ns_set_count(&s), 2);
    assert_int_equal(xml_ns_set_heap_bytes(&s), 0);
    xml_ns_set_free(&s);
}

/* n distinct keys of several families: a common long prefix differing late, strings that are
 * prefixes of one another, single bytes, high bytes. */
static char **make_keys(size_t n)
{
    char **keys = calloc(n, sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        char buf[600];
        switch (i % 4) {
        case 0: snprintf(buf, sizeof(buf), "urn:%0500zu", i); break;
        case 1: memset(buf, 'a', i / 4 + 1), buf[i / 4 + 1] = '\0'; break; /* each a prefix of the next */
        case 2: snprintf(buf, sizeof(buf), "%c", (int)(1 + i % 255)); break;
        default: snprintf(buf, sizeof(buf), "\xc3\xa9%zu\xff", i); break;
        }
        /* A key met before (family 2 wraps, and may hit family 1): made distinct. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(keys[j], buf) == 0) {
                snprintf(buf, sizeof(buf), "%s-%zu", keys[j], i);
                break;
            }
        keys[i] = strdup(buf);
    }
    return keys;
}

static void test_against_list(void **state)
{
    enum { N = 2000 };
    char **keys = make_keys(N);
    xml_ns_set s;
    xml_ns_set_init(&s);
    for (size_t i = 0; i < N; i++) {
        /* Every key added so far is found, by content (a copy) and by pointer; the next is not. */
        if (i % 97 == 0)
            for (size_t j = 0; j < i; j++) {
                char *copy = strdup(keys[j]);
                assert_int_equal(xml_ns_set_find(&s, copy, strlen(copy)), j);
                assert_int_equal(xml_ns_set_find_str(&s, keys[j]), j);
                free(copy);
            }
        assert_int_equal(xml_ns_set_find_str(&s, keys[i]), XML_NS_NONE);
        assert_int_equal(xml_ns_set_add(&s, keys[i], strlen(keys[i])), i);
        assert_int_equal(xml_ns_set_find_str(&s, keys[i]), i);
    }
    assert_int_equal(xml_ns_set_count(&s), N);
    assert_true(xml_ns_set_heap_bytes(&s) > 0);
    /* Absent keys: prefixes and extensions of present ones. */
    for (size_t i = 0; i < N; i += 7) {
        char buf[700];
        snprintf(buf, sizeof(buf), "%s!", keys[i]);
        assert_int_equal(xml_ns_set_find_str(&s, buf), XML_NS_NONE);
        size_t len = strlen(keys[i]);
        if (len > 1) {
            uint32_t found = xml_ns_set_find(&s, keys[i], len - 1);
            assert_true(found == XML_NS_NONE || strlen(xml_ns_set_key(&s, found)->uri) == len - 1);
        }
    }
    xml_ns_set_free(&s);
    for (size_t i = 0; i < N; i++)
        free(keys[i]);
    free(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_against_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
