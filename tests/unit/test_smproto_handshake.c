/* tests/unit/test_smproto_handshake.c — smproto/handshake.c: the XEP-0114 example digest (checked
 * with `printf '%s' 3BF96D32secret | sha1sum`), what the check accepts (the digest, hex letters in
 * either case) and refuses (every one-character change, other lengths, whitespace, another secret
 * or stream id), and the shape of generated stream ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "smproto/handshake.h"

#define XEP_DIGEST "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136"

static void test_digest_vectors(void **state)
{
    char out[SMPROTO_DIGEST_LEN + 1];
    memset(out, 'Z', sizeof(out));
    smproto_handshake_digest("3BF96D32", "secret", out);
    assert_string_equal(out, XEP_DIGEST);
    /* Nothing at all: SHA-1 of the empty string. */
    smproto_handshake_digest("", "", out);
    assert_string_equal(out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    /* Only the concatenation counts. */
    smproto_handshake_digest("a", "bc", out);
    assert_string_equal(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
    smproto_handshake_digest("abc", "", out);
    assert_string_equal(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

static void test_check_accepts(void **state)
{
    assert_true(smproto_handshake_check("3BF96D32", "secret", XEP_DIGEST));
    /* Hex letters in either case: XEP-0114 says only "hex". */
    assert_true(smproto_handshake_check("3BF96D32", "secret",
                                        "B09EA9B3B7F586BE8A08D0A3DD7466F110AEB136"));
    assert_true(smproto_handshake_check("3BF96D32", "secret",
                                        "b09Ea9B3b7f586bE8a08d0a3dd7466f110aeb136"));
}

static void test_check_one_character_changes(void **state)
{
    char d[SMPROTO_DIGEST_LEN + 1];
    for (size_t i = 0; i < SMPROTO_DIGEST_LEN; i++) {
        for (int c = 1; c < 256; c++) {
            memcpy(d, XEP_DIGEST, sizeof(d));
            if (tolower(c) == XEP_DIGEST[i])
                continue;
            d[i] = (char)c;
            assert_false(smproto_handshake_check("3BF96D32", "secret", d));
        }
    }
}

static void test_check_lengths(void **state)
{
    char d[SMPROTO_DIGEST_LEN + 2];
    memcpy(d, XEP_DIGEST, SMPROTO_DIGEST_LEN + 1);
    for (size_t len = 0; len < SMPROTO_DIGEST_LEN; len++) {
        d[len] = '\0';
        assert_false(smproto_handshake_check("3BF96D32", "secret", d));
        d[len] = XEP_DIGEST[len];
    }
    assert_false(smproto_handshake_check("3BF96D32", "secret", XEP_DIGEST "0"));
    assert_false(smproto_handshake_check("3BF96D32", "secret", XEP_DIGEST " "));
    assert_false(smproto_handshake_check("3BF96D32", "secret", " " XEP_DIGEST));
    assert_false(smproto_handshake_check("3BF96D32", "secret", XEP_DIGEST "\n"));
    assert_false(smproto_handshake_check("3BF96D32", "secret", XEP_DIGEST XEP_DIGEST));
}

static void test_check_other_inputs(void **state)
{
    assert_false(smproto_handshake_check("3BF96D32", "Secret", XEP_DIGEST));
    assert_false(smproto_handshake_check("3BF96D32", "", XEP_DIGEST));
    assert_false(smproto_handshake_check("3bf96d32", "secret", XEP_DIGEST));
    assert_false(smproto_handshake_check("3BF96D33", "secret", XEP_DIGEST));
}

static void test_stream_ids(void **state)
{
    char a[SMPROTO_STREAM_ID_LEN + 1], b[SMPROTO_STREAM_ID_LEN + 1];
    assert_true(SMPROTO_STREAM_ID_LEN >= 16);   /* docs/smproto.md §1 */
    smproto_handshake_stream_id(a);
    smproto_handshake_stream_id(b);
    assert_int_equal(strlen(a), SMPROTO_STREAM_ID_LEN);
    assert_int_equal(strlen(b), SMPROTO_STREAM_ID_LEN);
    for (size_t i = 0; i < SMPROTO_STREAM_ID_LEN; i++)
        assert_true(isalnum((unsigned char)a[i]) && isalnum((unsigned char)b[i]));
    /* 119 random bits each: equal only by a bug. */
    assert_string_not_equal(a, b);
    /* And the digest round trip a front and an SM perform. */
    char d[SMPROTO_DIGEST_LEN + 1];
    smproto_handshake_digest(a, "s3cr3t", d);
    assert_true(smproto_handshake_check(a, "s3cr3t", d));
    assert_false(smproto_handshake_check(b, "s3cr3t", d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_vectors),
        cmocka_unit_test(test_check_accepts),
        cmocka_unit_test(test_check_one_character_changes),
        cmocka_unit_test(test_check_lengths),
        cmocka_unit_test(test_check_other_inputs),
        cmocka_unit_test(test_stream_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
