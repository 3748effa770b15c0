/* tests/unit/test_xmlmem.c — core/xmlmem: small allocations come from the entered region's blocks
 * and go back to the pool with it, large ones are mappings of their own, realloc keeps the bytes
 * across every kind, nothing entered means malloc, and a real parser (through core/xmlstream)
 * holds blocks while it lives and none once freed or shrunk. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmlmem.h"
#include "core/xmlstream.h"

static xmlmem_stats stats(void)
{
    xmlmem_stats s;
    xmlmem_get_stats(&s);
    return s;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static void check(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], (unsigned char)(seed + i * 7));
}

static void test_region_blocks(void **state)
{
    const XML_Memory_Handling_Suite *m = &xmlmem_suite;
    size_t before = stats().blocks_in_use;
    xmlmem_region r = {0};
    xmlmem_region *outer = xmlmem_enter(&r);
    unsigned char *p[200];
    for (int i = 0; i < 200; i++) {
        p[i] = m->malloc_fcn(100 + (size_t)i);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        fill(p[i], 100 + (size_t)i, (unsigned)i);
    }
    /* 200 allocations of about 200 bytes: a few 16 KB blocks, not 200 of anything. */
    size_t held = stats().blocks_in_use - before;
    assert_true(held >= 2 && held <= 4);
    for (int i = 0; i < 200; i++)
        check(p[i], 100 + (size_t)i, (unsigned)i);
    for (int i = 0; i < 200; i += 2)
        m->free_fcn(p[i]);
    for (int i = 1; i < 200; i += 2)
        check(p[i], 100 + (size_t)i, (unsigned)i);
    xmlmem_leave(outer);
    xmlmem_release(&r);
    assert_int_equal(stats().blocks_in_use, before);
    assert_null(r.blocks);
}

static void test_large_and_realloc(void **state)
{
    const XML_Memory_Handling_Suite *m = &xmlmem_suite;
    xmlmem_stats s0 = stats();
    xmlmem_region r = {0};
    xmlmem_region *outer = xmlmem_enter(&r);
    /* small -> small -> large -> larger -> small: the bytes survive every move. */
    unsigned char *p = m->malloc_fcn(64);
    fill(p, 64, 1);
    p = m->realloc_fcn(p, 1000);
    check(p, 64, 1);
    fill(p, 1000, 2);
    p = m->realloc_fcn(p, 100000);
    assert_int_equal(stats().large_in_use, s0.large_in_use + 1);
    check(p, 1000, 2);
    fill(p, 100000, 3);
    p = m->realloc_fcn(p, 1000000);
    check(p, 100000, 3);
    assert_int_equal(stats().large_in_use, s0.large_in_use + 1);
    p = m->realloc_fcn(p, 50);
    check(p, 50, 3);
    assert_int_equal(stats().large_in_use, s0.large_in_use);
    m->free_fcn(p);
    void *big = m->malloc_fcn(8192);
    assert_int_equal(stats().large_in_use, s0.large_in_use + 1);
    m->free_fcn(big);
    assert_int_equal(stats().large_in_use, s0.large_in_use);
    m->free_fcn(NULL);
    xmlmem_leave(outer);
    xmlmem_release(&r);
    assert_int_equal(stats().blocks_in_use, s0.blocks_in_use);
}

/* With no region entered, memory comes from malloc and may be freed later inside one. */
static void test_no_region(void **state)
{
    const XML_Memory_Handling_Suite *m = &xmlmem_suite;
    size_t before = stats().blocks_in_use;
    unsigned char *p = m->malloc_fcn(300);
    fill(p, 300, 9);
    assert_int_equal(stats().blocks_in_use, before);
    xmlmem_region r = {0};
    xmlmem_region *outer = xmlmem_enter(&r);
    p = m->realloc_fcn(p, 600);
    check(p, 300, 9);
    m->free_fcn(p);
    xmlmem_leave(outer);
    assert_int_equal(stats().blocks_in_use, before);
}

/* Regions nest: the inner one's allocations do not land in the outer one. */
static void test_nesting(void **state)
{
    const XML_Memory_Handling_Suite *m = &xmlmem_suite;
    size_t before = stats().blocks_in_use;
    xmlmem_region a = {0}, b = {0};
    xmlmem_region *outer = xmlmem_enter(&a);
    m->malloc_fcn(10);
    xmlmem_region *mid = xmlmem_enter(&b);
    assert_ptr_equal(mid, &a);
    m->malloc_fcn(10);
    xmlmem_leave(mid);
    m->malloc_fcn(10);
    xmlmem_leave(outer);
    assert_non_null(a.blocks);
    assert_non_null(b.blocks);
    assert_ptr_not_equal(a.blocks, b.blocks);
    xmlmem_release(&b);
    assert_int_equal(stats().blocks_in_use, before + 1);
    xmlmem_release(&a);
    assert_int_equal(stats().blocks_in_use, before);
}

static void on_stanza(void *ctx, xml_node *stanza, xml_arena *arena)
{
    (*(int *)ctx)++;
    xml_arena_free(arena);
}

/* A parser holds blocks while it has expat, none when shrunk or freed; a big stanza's buffer is a
 * mapping of its own that goes with it. */
static void test_parser_memory(void **state)
{
    size_t before = stats().blocks_in_use, large_before = stats().large_in_use;
    size_t bytes_before = stats().bytes_in_use;
    int stanzas = 0;
    xmlstream_handlers h = {.stanza = on_stanza};
    xmlstream *xs = xmlstream_new(&h, &stanzas, NULL);
    const char *head = "<stream:stream xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams' to='example.org'>";
    assert_int_equal(xmlstream_feed(xs, head, strlen(head), NULL), XMLSTREAM_OK);
    assert_true(stats().blocks_in_use > before);
    size_t big_len = 40000;
    char *big = malloc(big_len + 64);
    int n = snprintf(big, 64, "<message><body>");
    memset(big + n, 'x', big_len);
    strcpy(big + n + big_len, "</body></message>");
    assert_int_equal(xmlstream_feed(xs, big, strlen(big), NULL), XMLSTREAM_OK);
    assert_int_equal(stanzas, 1);
    free(big);
    assert_true(xmlstream_shrink(xs));
    assert_int_equal(stats().blocks_in_use, before);
    assert_int_equal(stats().large_in_use, large_before);
    const char *msg = "<message><body>hi</body></message>";
    assert_int_equal(xmlstream_feed(xs, msg, strlen(msg), NULL), XMLSTREAM_OK);
    assert_int_equal(stanzas, 2);
    assert_true(stats().blocks_in_use > before);
    xmlstream_free(xs);
    assert_int_equal(stats().blocks_in_use, before);
    assert_int_equal(stats().large_in_use, large_before);
    assert_int_equal(stats().bytes_in_use, bytes_before);
}

/* Freed blocks stay warm until a trim gives all but a few back. */
static void test_trim(void **state)
{
    const XML_Memory_Handling_Suite *m = &xmlmem_suite;
    xmlmem_trim();
    size_t mapped = stats().blocks_mapped, warm = stats().blocks_warm;
    xmlmem_region r[100] = {{0}};
    for (int i = 0; i < 100; i++) {
        xmlmem_region *outer = xmlmem_enter(&r[i]);
        memset(m->malloc_fcn(1000), 0xab, 1000);
        xmlmem_leave(outer);
    }
    for (int i = 0; i < 100; i++)
        xmlmem_release(&r[i]);
    assert_true(stats().blocks_warm >= 100 && stats().blocks_warm <= warm + 100);
    xmlmem_trim();
    assert_true(stats().blocks_warm <= 32);
    assert_true(stats().blocks_mapped >= mapped);
    /* Trimmed blocks come back zeroed and usable. */
    for (int i = 0; i < 100; i++) {
        xmlmem_region *outer = xmlmem_enter(&r[i]);
        unsigned char *p = m->malloc_fcn(1000);
        fill(p, 1000, (unsigned)i);
        check(p, 1000, (unsigned)i);
        xmlmem_leave(outer);
    }
    for (int i = 0; i < 100; i++)
        xmlmem_release(&r[i]);
    xmlmem_trim();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_blocks),
        cmocka_unit_test(test_large_and_realloc),
        cmocka_unit_test(test_no_region),
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_parser_memory),
        cmocka_unit_test(test_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
