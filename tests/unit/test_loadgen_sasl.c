/* tests/unit/test_loadgen_sasl.c — the load generator's SASL client (tests/bench/loadgen/lg_sasl.c):
 * the RFC 5802 example exchange byte for byte, the per-user key cache (derived once per user, salt
 * and iteration count; derived again when either changes), the server-final message in <success/>
 * or in a last challenge, the ways a server can fail the client's checks, PLAIN's message, and
 * whole exchanges against jabshard's own server side (shard/sasl.h) with right and wrong passwords.
 *
 * The loadgen is not part of the library, so its module is compiled into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/random.h"
#include "shard/sasl.h"
#include "tests/bench/loadgen/lg_sasl.c"

static char *b64(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
    return out;
}

/* Decodes the base64 in b (no padding tricks needed: tests only) into a NUL-terminated string. */
static char *unb64(const buf *b, size_t *len)
{
    char *out = malloc(buf_len(b) / 4 * 3 + 1);
    int n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)buf_data(b), (int)buf_len(b));
    assert_true(n >= 0);
    for (size_t i = buf_len(b); i > 0 && buf_data(b)[i - 1] == '='; i--)
        n--;
    out[n] = '\0';
    if (len)
        *len = (size_t)n;
    return out;
}

#define RFC_NONCE "fyko+d2lbbFgONRv9qkxdawL"
#define RFC_SERVER_FIRST "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
#define RFC_SERVER_FINAL "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

/* Runs the RFC 5802 §5 exchange up to the client-final message; returns it decoded. */
static char *rfc_exchange(lg_sasl *s, lg_scram_cache *cache, uint32_t user)
{
    buf out = BUF_INIT;
    lg_sasl_start(s, LG_MECH_SCRAM_SHA1, "user", "pencil", RFC_NONCE, &out);
    char *first = unb64(&out, NULL);
    assert_string_equal(first, "n,,n=user,r=" RFC_NONCE);
    free(first);
    buf_free(&out);
    const char *why = NULL;
    char *challenge = b64(RFC_SERVER_FIRST);
    assert_int_equal(lg_sasl_challenge(s, cache, user, "pencil", challenge, &out, &why), 0);
    free(challenge);
    char *final = unb64(&out, NULL);
    buf_free(&out);
    return final;
}

static void test_rfc5802_example(void **state)
{
    lg_scram_cache *cache = lg_scram_cache_new(4);
    lg_sasl s = LG_SASL_INIT;
    char *final = rfc_exchange(&s, cache, 0);
    assert_string_equal(final, RFC_CLIENT_FINAL);
    free(final);
    const char *why = NULL;
    char *success = b64(RFC_SERVER_FINAL);
    assert_int_equal(lg_sasl_success(&s, success, &why), 0);
    free(success);
    lg_sasl_clear(&s);
    lg_scram_cache_free(cache);
}

/* The keys are derived once per user and reused while the server's salt and count stay; another
 * user, salt or count derives again. The proof is the same either way. */
static void test_cache(void **state)
{
    lg_scram_cache *cache = lg_scram_cache_new(4);
    lg_sasl s = LG_SASL_INIT;
    uint64_t derived, reused;
    for (int i = 0; i < 3; i++) {
        char *final = rfc_exchange(&s, cache, 1);
        assert_string_equal(final, RFC_CLIENT_FINAL);
        free(final);
        lg_sasl_clear(&s);
    }
    lg_scram_cache_counts(cache, &derived, &reused);
    assert_int_equal(derived, 1);
    assert_int_equal(reused, 2);

    char *final = rfc_exchange(&s, cache, 2);   /* another user */
    free(final);
    lg_sasl_clear(&s);
    lg_scram_cache_counts(cache, &derived, &reused);
    assert_int_equal(derived, 2);

    /* Same user 1, another iteration count: derived again, and the proof changes. */
    buf out = BUF_INIT;
    const char *why;
    lg_sasl_start(&s, LG_MECH_SCRAM_SHA1, "user", "pencil", RFC_NONCE, &out);
    buf_free(&out);
    char *challenge = b64("r=" RFC_NONCE "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4097");
    assert_int_equal(lg_sasl_challenge(&s, cache, 1, "pencil", challenge, &out, &why), 0);
    free(challenge);
    final = unb64(&out, NULL);
    assert_string_not_equal(final, RFC_CLIENT_FINAL);
    free(final);
    buf_free(&out);
    lg_sasl_clear(&s);
    lg_scram_cache_counts(cache, &derived, &reused);
    assert_int_equal(derived, 3);
    lg_scram_cache_free(cache);
}

/* Some servers send the server-final message as a last challenge, answered with an empty
 * response, then an empty <success/>. */
static void test_final_in_challenge(void **state)
{
    lg_scram_cache *cache = lg_scram_cache_new(1);
    lg_sasl s = LG_SASL_INIT;
    free(rfc_exchange(&s, cache, 0));
    buf out = BUF_INIT;
    const char *why = NULL;
    char *final = b64(RFC_SERVER_FINAL);
    assert_int_equal(lg_sasl_challenge(&s, cache, 0, "pencil", final, &out, &why), 0);
    assert_int_equal(buf_len(&out), 0);
    assert_int_equal(lg_sasl_success(&s, "", &why), 0);
    /* ... but not a second signature in <success/>. */
    assert_int_equal(lg_sasl_success(&s, final, &why), -1);
    free(final);
    lg_sasl_clear(&s);
    lg_scram_cache_free(cache);
}

static void expect_challenge_fails(const char *server_first, const char *why_expected)
{
    lg_scram_cache *cache = lg_scram_cache_new(1);
    lg_sasl s = LG_SASL_INIT;
    buf out = BUF_INIT;
    lg_sasl_start(&s, LG_MECH_SCRAM_SHA1, "user", "pencil", RFC_NONCE, &out);
    buf_free(&out);
    const char *why = NULL;
    char *challenge = b64(server_first);
    assert_int_equal(lg_sasl_challenge(&s, cache, 0, "pencil", challenge, &out, &why), -1);
    assert_string_equal(why, why_expected);
    assert_int_equal(buf_len(&out), 0);
    free(challenge);
    lg_sasl_clear(&s);
    lg_scram_cache_free(cache);
}

static void test_bad_server_first(void **state)
{
    expect_challenge_fails("r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096",
                           "the server's nonce does not extend ours");
    expect_challenge_fails("r=" RFC_NONCE ",s=QSXCR+Q6sek8bf92,i=4096",
                           "the server's nonce does not extend ours");
    expect_challenge_fails("m=ext,r=" RFC_NONCE "x,s=QSXCR+Q6sek8bf92,i=4096",
                           "server-first-message has a mandatory extension");
    expect_challenge_fails("r=" RFC_NONCE "x,i=4096", "server-first-message lacks r=, s= or i=");
    expect_challenge_fails("r=" RFC_NONCE "x,s=QSXCR+Q6sek8bf92,i=0", "bad iteration count");
    expect_challenge_fails("r=" RFC_NONCE "x,s=QSXCR+Q6sek8bf92,i=99999999", "bad iteration count");
    expect_challenge_fails("r=" RFC_NONCE "x,s=!!!!,i=4096", "bad salt");
}

static void test_bad_server_final(void **state)
{
    static const char *const finals[] = {"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "e=other-error", "x=1"};
    for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
        lg_scram_cache *cache = lg_scram_cache_new(1);
        lg_sasl s = LG_SASL_INIT;
        free(rfc_exchange(&s, cache, 0));
        const char *why = NULL;
        char *success = b64(finals[i]);
        assert_int_equal(lg_sasl_success(&s, success, &why), -1);
        assert_non_null(why);
        free(success);
        lg_sasl_clear(&s);
        lg_scram_cache_free(cache);
    }
    /* An empty <success/> with no signature ever given is not enough either. */
    lg_scram_cache *cache = lg_scram_cache_new(1);
    lg_sasl s = LG_SASL_INIT;
    free(rfc_exchange(&s, cache, 0));
    const char *why = NULL;
    assert_int_equal(lg_sasl_success(&s, "", &why), -1);
    assert_string_equal(why, "success without the server's signature");
    lg_sasl_clear(&s);
    lg_scram_cache_free(cache);
}

static void test_plain_and_escaping(void **state)
{
    lg_sasl s = LG_SASL_INIT;
    buf out = BUF_INIT;
    lg_sasl_start(&s, LG_MECH_PLAIN, "user7", "pass7", NULL, &out);
    size_t len;
    char *msg = unb64(&out, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(msg, "\0user7\0pass7", 12);
    free(msg);
    buf_free(&out);
    const char *why = NULL;
    assert_int_equal(lg_sasl_success(&s, "", &why), 0);

    lg_sasl_start(&s, LG_MECH_SCRAM_SHA1, "a=b,c", "x", "nonce", &out);
    msg = unb64(&out, NULL);
    assert_string_equal(msg, "n,,n=a=3Db=2Cc,r=nonce");
    free(msg);
    buf_free(&out);
    lg_sasl_clear(&s);
}

/* One exchange between this client and jabshard's server side; returns the server's verdict
 * (SASL_SUCCESS or SASL_FAILURE) and whether the client accepted the server's success. */
static sasl_result against_server(lg_mech mech, lg_scram_cache *cache, uint32_t user,
                                  const char *password, const scram_credentials *sha1,
                                  const scram_credentials *sha256, bool *client_ok)
{
    lg_sasl c = LG_SASL_INIT;
    sasl_session *srv = sasl_new(mech == LG_MECH_PLAIN ? SASL_PLAIN : SASL_SCRAM_SHA1, NULL, false);
    buf to_server = BUF_INIT, to_client = BUF_INIT;
    lg_sasl_start(&c, mech, "someone", password, NULL, &to_server);
    sasl_failure why_srv;
    const char *why = NULL;
    sasl_result r;
    *client_ok = false;
    for (;;) {
        size_t len;
        char *msg = unb64(&to_server, &len);
        buf_free(&to_server);
        buf_free(&to_client);
        r = sasl_step(srv, (const uint8_t *)msg, len, &to_client, &why_srv);
        free(msg);
        if (r == SASL_NEED_CREDS)
            r = sasl_creds(srv, sha1, sha256, &to_client, &why_srv);
        if (r == SASL_NEED_VERIFY)
            r = sasl_verified(srv, sasl_plain_verify(sasl_plain_password(srv), SCRAM_SHA256, sha256),
                              &to_client, &why_srv);
        buf b = BUF_INIT;   /* the server's message in base64, NUL-terminated */
        b64_append(&b, buf_data(&to_client), buf_len(&to_client));
        buf_append(&b, "", 1);
        if (r == SASL_CHALLENGE) {
            assert_int_equal(lg_sasl_challenge(&c, cache, user, password, buf_data(&b), &to_server,
                                               &why), 0);
            buf_free(&b);
            continue;
        }
        if (r == SASL_SUCCESS)
            *client_ok = lg_sasl_success(&c, buf_data(&b), &why) == 0;
        buf_free(&b);
        break;
    }
    buf_free(&to_server);
    buf_free(&to_client);
    sasl_free(srv);
    lg_sasl_clear(&c);
    return r;
}

static void test_against_jabshard(void **state)
{
    scram_credentials sha1, sha256;
    assert_int_equal(scram_derive(SCRAM_SHA1, "s3cret", NULL, 0, SCRAM_ITERATIONS, &sha1), 0);
    assert_int_equal(scram_derive(SCRAM_SHA256, "s3cret", NULL, 0, SCRAM_ITERATIONS, &sha256), 0);
    lg_scram_cache *cache = lg_scram_cache_new(2);
    bool client_ok;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(against_server(LG_MECH_SCRAM_SHA1, cache, 0, "s3cret", &sha1, &sha256,
                                         &client_ok), SASL_SUCCESS);
        assert_true(client_ok);
    }
    uint64_t derived, reused;
    lg_scram_cache_counts(cache, &derived, &reused);
    assert_int_equal(derived, 1);
    assert_int_equal(reused, 2);
    assert_int_equal(against_server(LG_MECH_SCRAM_SHA1, cache, 1, "wrong", &sha1, &sha256,
                                    &client_ok), SASL_FAILURE);
    assert_int_equal(against_server(LG_MECH_PLAIN, cache, 0, "s3cret", &sha1, &sha256, &client_ok),
                     SASL_SUCCESS);
    assert_true(client_ok);
    assert_int_equal(against_server(LG_MECH_PLAIN, cache, 0, "wrong", &sha1, &sha256, &client_ok),
                     SASL_FAILURE);
    lg_scram_cache_free(cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5802_example),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_final_in_challenge),
        cmocka_unit_test(test_bad_server_first),
        cmocka_unit_test(test_bad_server_final),
        cmocka_unit_test(test_plain_and_escaping),
        cmocka_unit_test(test_against_jabshard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
