/* tests/unit/test_buf.c — core/buf: append/consume order, reserve/commit with a real read(2),
 * the compaction policy (a reader that eats a little at a time moves O(bytes) in total, never
 * O(bytes * buffer)), growth keeping the data, appendf, detach, and random operations against a
 * plain reference array. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/support/xorshift.h"

static void test_empty(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_len(&b), 0);
    assert_null(buf_data(&b));
    buf_consume(&b, 0);
    buf_compact(&b);
    buf_append(&b, "", 0);
    assert_null(b.mem);
    size_t start = 1, len = 1;
    assert_null(buf_detach(&b, &start, &len));
    assert_int_equal(start, 0);
    assert_int_equal(len, 0);
    buf_free(&b);
    buf_free(&b);
}

static void test_append_consume(void **state)
{
    buf b;
    buf_init(&b);
    buf_append(&b, "hello ", 6);
    buf_append(&b, "world", 5);
    assert_int_equal(buf_len(&b), 11);
    assert_memory_equal(buf_data(&b), "hello world", 11);
    buf_consume(&b, 6);
    assert_int_equal(buf_len(&b), 5);
    assert_memory_equal(buf_data(&b), "world", 5);
    buf_append(&b, "!", 1);
    assert_memory_equal(buf_data(&b), "world!", 6);
    buf_consume(&b, 6);
    assert_int_equal(buf_len(&b), 0);
    /* Fully consumed: the offset rewinds, the memory stays for the next read. */
    assert_int_equal(b.start, 0);
    assert_non_null(b.mem);
    buf_free(&b);
    assert_null(b.mem);
    buf_append(&b, "again", 5);
    assert_memory_equal(buf_data(&b), "again", 5);
    buf_free(&b);
}

static void test_reserve_commit_read(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    char msg[10000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 26);
    assert_int_equal(write(p[1], msg, sizeof msg), (ssize_t)sizeof msg);
    close(p[1]);
    buf b = BUF_INIT;
    for (;;) {
        char *dst = buf_reserve(&b, 1000);
        assert_true(buf_avail(&b) >= 1000);
        assert_ptr_equal(dst, buf_data(&b) + buf_len(&b));
        ssize_t r = read(p[0], dst, 1000);   /* small reads: several rounds, several growths */
        assert_true(r >= 0);
        if (r == 0)
            break;
        buf_commit(&b, (size_t)r);
    }
    close(p[0]);
    assert_int_equal(buf_len(&b), sizeof msg);
    assert_memory_equal(buf_data(&b), msg, sizeof msg);
    buf_free(&b);
}

static void test_compacts_instead_of_growing(void **state)
{
    buf b = BUF_INIT;
    char block[1000];
    memset(block, 'x', sizeof block);
    buf_append(&b, block, sizeof block);
    size_t cap = b.cap;
    buf_append(&b, block, cap - buf_len(&b));   /* exactly full */
    assert_int_equal(buf_avail(&b), 0);
    buf_consume(&b, cap - 10);
    memcpy(buf_data(&b), "0123456789", 10);
    /* 10 live bytes behind cap - 10 consumed ones: cheap to move, so no growth. */
    buf_append(&b, "abc", 3);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.start, 0);
    assert_memory_equal(buf_data(&b), "0123456789abc", 13);
    buf_free(&b);
}

static void test_grows_keeping_data(void **state)
{
    buf b = BUF_INIT;
    char big[5000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)i;
    buf_append(&b, big, 300);
    buf_consume(&b, 100);   /* start > 0 while growing */
    buf_append(&b, big + 300, sizeof big - 300);
    assert_int_equal(buf_len(&b), sizeof big - 100);
    assert_memory_equal(buf_data(&b), big + 100, sizeof big - 100);
    assert_int_equal(b.start, 0);   /* growth copies only live bytes, to the front */
    buf_free(&b);
}

/* A reader that consumes one byte and receives one byte, over and over, with the buffer nearly
 * full: the bytes moved (compactions and growth copies) stay proportional to the bytes passed. */
static void test_no_pathological_memmove(void **state)
{
    buf b = BUF_INIT;
    char fill[4000];
    memset(fill, 'f', sizeof fill);
    buf_append(&b, fill, sizeof fill);
    size_t moved = 0, passed = 0;
    const char *where = buf_data(&b);
    for (int i = 0; i < 200000; i++) {
        buf_consume(&b, 1);
        char c = (char)i;
        buf_append(&b, &c, 1);
        passed++;
        if (buf_data(&b) != where + 1)
            moved += buf_len(&b);   /* the data moved: compaction or growth */
        where = buf_data(&b);
    }
    assert_true(moved <= 3 * passed + 8192);
    assert_int_equal(buf_len(&b), sizeof fill);
    assert_int_equal((unsigned char)buf_data(&b)[buf_len(&b) - 1], (unsigned char)(char)199999);
    buf_free(&b);
}

static void test_compact(void **state)
{
    buf b = BUF_INIT;
    buf_append(&b, "abcdef", 6);
    buf_consume(&b, 2);
    size_t avail = buf_avail(&b);
    buf_compact(&b);
    assert_int_equal(b.start, 0);
    assert_int_equal(buf_avail(&b), avail + 2);
    assert_memory_equal(buf_data(&b), "cdef", 4);
    buf_free(&b);
}

static void test_appendf(void **state)
{
    buf b = BUF_INIT;
    buf_appendf(&b, "<%s id='%d'>", "iq", 42);
    assert_int_equal(buf_len(&b), strlen("<iq id='42'>"));
    assert_memory_equal(buf_data(&b), "<iq id='42'>", buf_len(&b));
    /* Longer than the first attempt's room, and than what is free. */
    char longs[3000];
    memset(longs, 'z', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    buf_appendf(&b, "[%s]", longs);
    size_t want = strlen("<iq id='42'>") + 2 + strlen(longs);
    assert_int_equal(buf_len(&b), want);
    assert_int_equal(buf_data(&b)[want - 1], ']');
    assert_int_equal(buf_data(&b)[want - 2], 'z');
    assert_memory_equal(buf_data(&b) + strlen("<iq id='42'>"), "[zzz", 4);
    buf_appendf(&b, "%s", "");
    assert_int_equal(buf_len(&b), want);
    buf_free(&b);
}

static void test_detach(void **state)
{
    buf b = BUF_INIT;
    buf_append(&b, "xxpayload", 9);
    buf_consume(&b, 2);
    size_t start, len;
    char *mem = buf_detach(&b, &start, &len);
    assert_non_null(mem);
    assert_int_equal(start, 2);
    assert_int_equal(len, 7);
    assert_memory_equal(mem + start, "payload", 7);
    assert_null(b.mem);
    assert_int_equal(buf_len(&b), 0);
    free(mem);
}

static xorshift rng_gen = {88172645463325252ull};
static uint64_t rng(void) { return xorshift_next(&rng_gen); }

static void test_random_against_reference(void **state)
{
    enum { REF_CAP = 1 << 20 };
    unsigned char *ref = malloc(REF_CAP);
    assert_non_null(ref);
    size_t ref_start = 0, ref_end = 0;
    unsigned char next = 0;
    buf b = BUF_INIT;
    for (int op = 0; op < 100000; op++) {
        unsigned r = (unsigned)(rng() % 10);
        if (r < 4) {
            size_t n = (size_t)(rng() % 700);
            if (ref_end + n > REF_CAP) {
                memmove(ref, ref + ref_start, ref_end - ref_start);
                ref_end -= ref_start;
                ref_start = 0;
            }
            unsigned char tmp[700];
            for (size_t i = 0; i < n; i++)
                tmp[i] = next++;
            if (r < 2) {
                buf_append(&b, tmp, n);
            } else {
                memcpy(buf_reserve(&b, n), tmp, n);
                buf_commit(&b, n);
            }
            memcpy(ref + ref_end, tmp, n);
            ref_end += n;
        } else if (r < 8) {
            size_t len = ref_end - ref_start;
            size_t n = len ? (size_t)(rng() % (len + 1)) : 0;
            buf_consume(&b, n);
            ref_start += n;
        } else if (r < 9) {
            buf_compact(&b);
        } else if (ref_end == ref_start && rng() % 4 == 0) {
            buf_free(&b);
        }
        assert_int_equal(buf_len(&b), ref_end - ref_start);
        if (buf_len(&b))
            assert_memory_equal(buf_data(&b), ref + ref_start, ref_end - ref_start);
        assert_true(b.end <= b.cap);
    }
    buf_free(&b);
    free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_append_consume),
        cmocka_unit_test(test_reserve_commit_read),
        cmocka_unit_test(test_compacts_instead_of_growing),
        cmocka_unit_test(test_grows_keeping_data),
        cmocka_unit_test(test_no_pathological_memmove),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
