/* tests/unit/test_upload_sign.c — HTTP File Upload signatures (core/upload_sign.c): known values
 * computed independently (Python's hmac), every field covered, the check's refusals, and the URL
 * escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/upload_sign.h"

#define SECRET "upload secret"
#define SLOT "0123456789abcdef0123456789abcdef"
#define PATH SLOT "/caf\xc3\xa9 menu.jpg"
#define SIG "89598d325f5695d9b32888079f0085adeb20a373c00c0640f127d64940bb02fc"

static void test_known_values(void **state)
{
    char sig[UPLOAD_SIG_HEX + 1];
    upload_sign(SECRET, strlen(SECRET), PATH, 23456, "image/jpeg", 1700000000, sig);
    assert_string_equal(sig, SIG);
    /* An empty key and content type, the smallest numbers. */
    upload_sign("", 0, "ab/x", 1, "", 0, sig);
    assert_string_equal(sig, "7b63781ae1d464839c3728a858c5d7b8a77947bda4a465b617c2625c4513b927");
    upload_sign(NULL, 0, "ab/x", 1, NULL, 0, sig);
    assert_string_equal(sig, "7b63781ae1d464839c3728a858c5d7b8a77947bda4a465b617c2625c4513b927");
}

static void test_check(void **state)
{
    const size_t n = strlen(SECRET);
    assert_true(upload_sign_check(SECRET, n, PATH, 23456, "image/jpeg", 1700000000, SIG));
    /* Each field is covered. */
    assert_false(upload_sign_check("upload secreT", n, PATH, 23456, "image/jpeg", 1700000000, SIG));
    assert_false(upload_sign_check(SECRET, n, SLOT "/cafe menu.jpg", 23456, "image/jpeg",
                                   1700000000, SIG));
    assert_false(upload_sign_check(SECRET, n, PATH, 23457, "image/jpeg", 1700000000, SIG));
    assert_false(upload_sign_check(SECRET, n, PATH, 23456, "image/png", 1700000000, SIG));
    assert_false(upload_sign_check(SECRET, n, PATH, 23456, "", 1700000000, SIG));
    assert_false(upload_sign_check(SECRET, n, PATH, 23456, "image/jpeg", 1700000001, SIG));
    /* Only the exact lowercase hex passes. */
    assert_false(upload_sign_check(SECRET, n, PATH, 23456, "image/jpeg", 1700000000,
                                   "89598D325F5695D9B32888079F0085ADEB20A373C00C0640F127D64940BB02FC"));
    assert_false(upload_sign_check(SECRET, n, PATH, 23456, "image/jpeg", 1700000000, SIG "0"));
    assert_false(upload_sign_check(SECRET, n, PATH, 23456, "image/jpeg", 1700000000,
                                   "89598d325f5695d9b32888079f0085adeb20a373c00c0640f127d64940bb02f"));
    assert_false(upload_sign_check(SECRET, n, PATH, 23456, "image/jpeg", 1700000000, ""));
    assert_false(upload_sign_check(SECRET, n, PATH, 23456, "image/jpeg", 1700000000, NULL));
    /* The largest numbers are written whole. */
    char sig[UPLOAD_SIG_HEX + 1];
    upload_sign(SECRET, n, PATH, UINT64_MAX, "a/b", INT64_MAX, sig);
    assert_true(upload_sign_check(SECRET, n, PATH, UINT64_MAX, "a/b", INT64_MAX, sig));
    assert_false(upload_sign_check(SECRET, n, PATH, UINT64_MAX - 1, "a/b", INT64_MAX, sig));
}

static void test_escape(void **state)
{
    buf b = BUF_INIT;
    upload_url_escape(&b, "caf\xc3\xa9 menu.jpg");
    upload_url_escape(&b, "|");
    upload_url_escape(&b, "AZaz09-._~/?#[]@!$&'()*+,;=%");
    buf_append(&b, "", 1);
    assert_string_equal(buf_data(&b), "caf%C3%A9%20menu.jpg" "%7C"
                                      "AZaz09-._~%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B"
                                      "%2C%3B%3D%25");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
