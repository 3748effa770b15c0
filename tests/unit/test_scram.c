/* tests/unit/test_scram.c — SCRAM credentials (core/scram.c): PBKDF2 against RFC 6070 and against
 * OpenSSL's PKCS5_PBKDF2_HMAC, the RFC 5802 and RFC 7677 example exchanges, and SASLprep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/random.h"
#include "core/scram.h"

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++)
        sscanf(hex + 2 * i, "%2hhx", &out[i]);
    return n;
}

static size_t unbase64(const char *b64, uint8_t *out)
{
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)strlen(b64));
    assert_true(n >= 0);
    size_t len = strlen(b64);
    while (len && b64[len - 1] == '=') {
        n--;
        len--;
    }
    return (size_t)n;
}

static void test_pbkdf2_rfc6070(void **state)
{
    static const struct {
        uint32_t iterations;
        const char *hex;
    } vectors[] = {
        {1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
        {2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
        {4096, "4b007901b765489abead49d926f721d065a429c1"},
    };
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        uint8_t expect[20], got[SCRAM_MAX_KEY];
        unhex(vectors[i].hex, expect);
        scram_salted_password(SCRAM_SHA1, "password", 8, (const uint8_t *)"salt", 4,
                              vectors[i].iterations, got);
        assert_memory_equal(got, expect, 20);
    }
}

/* Every password length around the 64-byte HMAC block (longer keys are hashed first), every
 * salt length up to the largest accepted, both hashes, against OpenSSL's generic PBKDF2. */
static void test_pbkdf2_matches_openssl(void **state)
{
    char password[130];
    uint8_t salt[SCRAM_SALT_MAX];
    for (size_t len = 0; len < sizeof(password); len += (len < 70 ? 1 : 13)) {
        random_bytes(password, len);
        size_t salt_len = len % (SCRAM_SALT_MAX + 1);
        random_bytes(salt, salt_len);
        for (int h = SCRAM_SHA1; h <= SCRAM_SHA256; h++) {
            uint8_t got[SCRAM_MAX_KEY], expect[SCRAM_MAX_KEY];
            uint32_t iterations = 1 + (uint32_t)(len % 37);
            scram_salted_password((scram_hash)h, password, len, salt, salt_len, iterations, got);
            PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len, (int)iterations,
                              h == SCRAM_SHA1 ? EVP_sha1() : EVP_sha256(),
                              (int)scram_key_len((scram_hash)h), expect);
            assert_memory_equal(got, expect, scram_key_len((scram_hash)h));
        }
    }
}

/* Checks stored credentials against a published exchange: the server's signature must match the
 * example's, and the client's proof must reveal a ClientKey whose hash is the StoredKey. */
static void check_exchange(scram_hash h, const char *password, const char *salt_b64,
                           const char *auth_message, const char *proof_b64,
                           const char *server_signature_b64)
{
    uint8_t salt[64], proof[SCRAM_MAX_KEY + 4], signature[SCRAM_MAX_KEY + 4];
    size_t salt_len = unbase64(salt_b64, salt);
    scram_credentials cr;
    assert_int_equal(scram_derive(h, password, salt, salt_len, 4096, &cr), 0);
    size_t key_len = scram_key_len(h);

    uint8_t mine[SCRAM_MAX_KEY];
    assert_int_equal(unbase64(server_signature_b64, signature), key_len);
    scram_hmac(h, cr.server_key, key_len, auth_message, strlen(auth_message), mine);
    assert_memory_equal(mine, signature, key_len);

    assert_int_equal(unbase64(proof_b64, proof), key_len);
    uint8_t client_signature[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], stored[SCRAM_MAX_KEY];
    scram_hmac(h, cr.stored_key, key_len, auth_message, strlen(auth_message), client_signature);
    for (size_t i = 0; i < key_len; i++)
        client_key[i] = proof[i] ^ client_signature[i];
    scram_digest(h, client_key, key_len, stored);
    assert_memory_equal(stored, cr.stored_key, key_len);
}

static void test_rfc5802_example(void **state)
{
    check_exchange(SCRAM_SHA1, "pencil", "QSXCR+Q6sek8bf92",
                   "n=user,r=fyko+d2lbbFgONRv9qkxdawL,"
                   "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,"
                   "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
                   "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

static void test_rfc7677_example(void **state)
{
    check_exchange(SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==",
                   "n=user,r=rOprNGfwEbeRWgbNEkqO,"
                   "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
                   "i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                   "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                   "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

static void test_derive_uses_fresh_salts(void **state)
{
    scram_credentials a, b;
    assert_int_equal(scram_derive(SCRAM_SHA256, "secret", NULL, 0, 4096, &a), 0);
    assert_int_equal(scram_derive(SCRAM_SHA256, "secret", NULL, 0, 4096, &b), 0);
    assert_int_equal(a.salt_len, SCRAM_SALT_LEN);
    assert_int_equal(a.iterations, 4096);
    assert_memory_not_equal(a.salt, b.salt, SCRAM_SALT_LEN);
    assert_memory_not_equal(a.stored_key, b.stored_key, 32);
}

static void test_saslprep(void **state)
{
    char *out;
    /* RFC 4013 §3: SOFT HYPHEN maps to nothing; NO-BREAK SPACE to SPACE; ROMAN NUMERAL NINE to IX. */
    assert_int_equal(scram_saslprep("I\xc2\xad" "X", &out), 0);
    assert_string_equal(out, "IX");
    free(out);
    assert_int_equal(scram_saslprep("user\xc2\xa0name", &out), 0);
    assert_string_equal(out, "user name");
    free(out);
    assert_int_equal(scram_saslprep("\xe2\x85\xa8", &out), 0);
    assert_string_equal(out, "IX");
    free(out);
    /* Prohibited: a control character. */
    assert_int_equal(scram_saslprep("a\x07" "b", &out), -1);
    scram_credentials cr;
    assert_int_equal(scram_derive(SCRAM_SHA1, "a\x07" "b", NULL, 0, 1, &cr), -1);
    /* Equivalent spellings derive the same keys. */
    scram_credentials x, y;
    uint8_t salt[16] = {1, 2, 3};
    assert_int_equal(scram_derive(SCRAM_SHA1, "I\xc2\xad" "X", salt, sizeof(salt), 64, &x), 0);
    assert_int_equal(scram_derive(SCRAM_SHA1, "IX", salt, sizeof(salt), 64, &y), 0);
    assert_memory_equal(x.stored_key, y.stored_key, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pbkdf2_rfc6070),
        cmocka_unit_test(test_pbkdf2_matches_openssl),
        cmocka_unit_test(test_rfc5802_example),
        cmocka_unit_test(test_rfc7677_example),
        cmocka_unit_test(test_derive_uses_fresh_salts),
        cmocka_unit_test(test_saslprep),
    };
    return cmocka_run_group_tests_name("scram", tests, NULL, NULL);
}
