/* tests/unit/test_sasl.c — server-side SASL (shard/sasl*.c): the RFC 5802 and RFC 7677 example
 * exchanges byte for byte, GNU SASL as an independent client for SCRAM-SHA-1, SCRAM-SHA-256,
 * their -PLUS forms with tls-exporter and PLAIN, and every way a client message can be refused.
 *
 * Messages that no real client would send are built by a small SCRAM client written here from
 * RFC 5802 §3 on top of core/scram.h, so that each refusal is tested on an otherwise valid
 * exchange. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gsasl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/random.h"
#include "shard/sasl_mech.h"

/* The one account: "user" with password "pencil", as in the RFC examples. */
static scram_credentials test_sha1, test_sha256;

static const uint8_t test_exporter[SASL_EXPORTER_LEN] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
};

static int setup_creds(void **state)
{
    if (scram_derive(SCRAM_SHA1, "pencil", NULL, 0, SCRAM_ITERATIONS, &test_sha1) != 0 ||
        scram_derive(SCRAM_SHA256, "pencil", NULL, 0, SCRAM_ITERATIONS, &test_sha256) != 0)
        return -1;
    return 0;
}

static char *b64(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

static size_t unb64(const char *text, size_t len, uint8_t *out)
{
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    assert_true(n >= 0);
    while (len && text[len - 1] == '=') {
        n--;
        len--;
    }
    return (size_t)n;
}

static char *out_string(const buf *b)
{
    return strndup(buf_len(b) ? buf_data(b) : "", buf_len(b));
}

static scram_hash mech_hash(sasl_mech m)
{
    return m == SASL_SCRAM_SHA1 || m == SASL_SCRAM_SHA1_PLUS ? SCRAM_SHA1 : SCRAM_SHA256;
}

static sasl_result step_str(sasl_session *s, const char *msg, buf *out, sasl_failure *why)
{
    return sasl_step(s, (const uint8_t *)msg, strlen(msg), out, why);
}

/* The test client's proof for an exchange: "head,p=<proof>" for client-final-without-proof
 * `head`, with the salt and iterations read from server_first. */
static char *client_final(scram_hash h, const char *password, const char *first_bare,
                          const char *server_first, const char *head, uint8_t *proof_out)
{
    const char *salt64 = strstr(server_first, ",s=") + 3;
    const char *iter = strstr(server_first, ",i=");
    uint8_t salt[SCRAM_SALT_MAX + 3];
    size_t salt_len = unb64(salt64, (size_t)(iter - salt64), salt);
    size_t key_len = scram_key_len(h);
    uint8_t salted[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], stored_key[SCRAM_MAX_KEY];
    uint8_t signature[SCRAM_MAX_KEY], proof[SCRAM_MAX_KEY];
    scram_salted_password(h, password, strlen(password), salt, salt_len,
                          (uint32_t)atoi(iter + 3), salted);
    scram_hmac(h, salted, key_len, "Client Key", 10, client_key);
    scram_digest(h, client_key, key_len, stored_key);
    char *auth;
    assert_true(asprintf(&auth, "%s,%s,%s", first_bare, server_first, head) > 0);
    scram_hmac(h, stored_key, key_len, auth, strlen(auth), signature);
    free(auth);
    for (size_t i = 0; i < key_len; i++)
        proof[i] = client_key[i] ^ signature[i];
    if (proof_out)
        memcpy(proof_out, proof, key_len);
    char *p64 = b64(proof, key_len), *msg;
    assert_true(asprintf(&msg, "%s,p=%s", head, p64) > 0);
    free(p64);
    return msg;
}

/* The v= value a correct server sends for an exchange. */
static char *server_final_for(scram_hash h, const char *password, const char *first_bare,
                              const char *server_first, const char *head)
{
    const char *salt64 = strstr(server_first, ",s=") + 3;
    const char *iter = strstr(server_first, ",i=");
    uint8_t salt[SCRAM_SALT_MAX + 3];
    size_t salt_len = unb64(salt64, (size_t)(iter - salt64), salt);
    scram_credentials cr;
    assert_int_equal(scram_derive(h, password, salt, salt_len, (uint32_t)atoi(iter + 3), &cr), 0);
    char *auth;
    assert_true(asprintf(&auth, "%s,%s,%s", first_bare, server_first, head) > 0);
    uint8_t signature[SCRAM_MAX_KEY];
    scram_hmac(h, cr.server_key, scram_key_len(h), auth, strlen(auth), signature);
    free(auth);
    char *v64 = b64(signature, scram_key_len(h)), *msg;
    assert_true(asprintf(&msg, "v=%s", v64) > 0);
    free(v64);
    return msg;
}

/* ---- names ---- */

static void test_names(void **state)
{
    static const char *const mechs[] = {"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
                                        "SCRAM-SHA-256-PLUS", "PLAIN"};
    for (int m = 0; m < SASL_MECH_COUNT; m++) {
        assert_string_equal(sasl_mech_name((sasl_mech)m), mechs[m]);
        assert_int_equal(sasl_mech_parse(mechs[m]), m);
    }
    assert_null(sasl_mech_name(SASL_MECH_COUNT));
    assert_int_equal(sasl_mech_parse("plain"), -1);
    assert_int_equal(sasl_mech_parse("SCRAM-SHA-512"), -1);
    assert_int_equal(sasl_mech_parse("DIGEST-MD5"), -1);
    assert_int_equal(sasl_mech_parse(""), -1);
    assert_int_equal(sasl_mech_parse(NULL), -1);

    static const char *const failures[] = {
        "aborted", "account-disabled", "credentials-expired", "encryption-required",
        "incorrect-encoding", "invalid-authzid", "invalid-mechanism", "malformed-request",
        "mechanism-too-weak", "not-authorized", "temporary-auth-failure"};
    for (int f = SASL_ABORTED; f <= SASL_TEMPORARY_AUTH_FAILURE; f++)
        assert_string_equal(sasl_failure_name((sasl_failure)f), failures[f]);
}

/* ---- the RFC examples, byte for byte ---- */

static void rfc_example(sasl_mech mech, const char *salt64, const char *first,
                        const char *server_nonce, const char *server_first, const char *final,
                        const char *server_final)
{
    scram_hash h = mech_hash(mech);
    uint8_t salt[SCRAM_SALT_MAX];
    size_t salt_len = unb64(salt64, strlen(salt64), salt);
    scram_credentials cr;
    assert_int_equal(scram_derive(h, "pencil", salt, salt_len, 4096, &cr), 0);

    sasl_session *s = sasl_new(mech, NULL, false);
    buf out = BUF_INIT;
    sasl_failure why;
    assert_int_equal(step_str(s, first, &out, &why), SASL_NEED_CREDS);
    assert_int_equal(buf_len(&out), 0);
    assert_string_equal(sasl_authcid(s), "user");
    assert_null(sasl_authzid(s));
    sasl_scram_set_test_nonce(s, server_nonce);
    assert_int_equal(sasl_creds(s, h == SCRAM_SHA1 ? &cr : NULL, h == SCRAM_SHA1 ? NULL : &cr,
                                &out, &why),
                     SASL_CHALLENGE);
    char *got = out_string(&out);
    assert_string_equal(got, server_first);
    free(got);
    buf_free(&out);
    assert_int_equal(step_str(s, final, &out, &why), SASL_SUCCESS);
    got = out_string(&out);
    assert_string_equal(got, server_final);
    free(got);
    assert_string_equal(sasl_authcid(s), "user");
    buf_free(&out);
    sasl_free(s);
}

static void test_rfc5802_example(void **state)
{
    rfc_example(SASL_SCRAM_SHA1, "QSXCR+Q6sek8bf92", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
                "3rfcNHYJY1ZVvWVs7j",
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

static void test_rfc7677_example(void **state)
{
    rfc_example(SASL_SCRAM_SHA256, "W22ZaJ0SNY7soEsUEjb6gQ==",
                "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/* ---- SCRAM exchanges driven by the test client ---- */

enum { PROOF_RIGHT, PROOF_FLIPPED, PROOF_SHORT, PROOF_LONG, PROOF_NONCANONICAL, PROOF_BADCHAR,
       PROOF_MISSING, PROOF_EMPTY };

typedef struct exchange {
    sasl_mech mech;
    const uint8_t *exporter;        /* the server's */
    bool server_plus;
    const char *first;              /* the client-first-message */
    bool unknown_user;              /* sasl_creds with NULL */
    const char *password;           /* the client's; NULL: "pencil" */
    const uint8_t *client_exporter; /* what the client binds to; NULL: the server's */
    const char *cbind;              /* c= value; NULL: the right one */
    const char *nonce;              /* r= value; NULL: the combined nonce */
    const char *before_proof;       /* inserted before ",p=" */
    int proof;
    const char *tail;               /* appended after the proof */
} exchange;

/* Runs an exchange whose first message must be accepted; returns the final result, with the
 * server-final message in *server_final (when SUCCESS) checked against the test client's. */
static sasl_result run_exchange(const exchange *x, sasl_failure *why)
{
    scram_hash h = mech_hash(x->mech);
    size_t key_len = scram_key_len(h);
    sasl_session *s = sasl_new(x->mech, x->exporter, x->server_plus);
    buf out = BUF_INIT;
    assert_int_equal(step_str(s, x->first, &out, why), SASL_NEED_CREDS);
    const scram_credentials *cr = x->unknown_user ? NULL : h == SCRAM_SHA1 ? &test_sha1
                                                                            : &test_sha256;
    assert_int_equal(sasl_creds(s, h == SCRAM_SHA1 ? cr : NULL, h == SCRAM_SHA1 ? NULL : cr,
                                &out, why),
                     SASL_CHALLENGE);
    char *server_first = out_string(&out);
    buf_free(&out);

    /* gs2-header: up to the second comma (neither the flag nor the authzid holds one). */
    const char *bare = strchr(strchr(x->first, ',') + 1, ',') + 1;
    size_t gs2_len = (size_t)(bare - x->first);
    const uint8_t *cb = x->client_exporter ? x->client_exporter : x->exporter;
    bool bind = strncmp(x->first, "p=", 2) == 0;
    uint8_t cbinput[1024];
    memcpy(cbinput, x->first, gs2_len);
    if (bind)
        memcpy(cbinput + gs2_len, cb, SASL_EXPORTER_LEN);
    char *cbind = b64(cbinput, gs2_len + (bind ? SASL_EXPORTER_LEN : 0));
    char nonce[600];
    const char *r = strstr(server_first, "r=") + 2;
    snprintf(nonce, sizeof(nonce), "%.*s", (int)(strchr(r, ',') - r), r);

    char *head;
    assert_true(asprintf(&head, "c=%s,r=%s%s", x->cbind ? x->cbind : cbind,
                         x->nonce ? x->nonce : nonce,
                         x->before_proof ? x->before_proof : "") > 0);
    const char *password = x->password ? x->password : "pencil";
    uint8_t proof[SCRAM_MAX_KEY];
    char *final = client_final(h, password, bare, server_first, head, proof);
    char *msg = NULL, *p64;
    switch (x->proof) {
    case PROOF_RIGHT:
        msg = strdup(final);
        break;
    case PROOF_FLIPPED:
        proof[key_len - 1] ^= 1;
        p64 = b64(proof, key_len);
        assert_true(asprintf(&msg, "%s,p=%s", head, p64) > 0);
        free(p64);
        break;
    case PROOF_SHORT:
    case PROOF_LONG: {
        uint8_t other[SCRAM_MAX_KEY + 1] = {0};
        memcpy(other, proof, key_len);
        p64 = b64(other, x->proof == PROOF_SHORT ? key_len - 1 : key_len + 1);
        assert_true(asprintf(&msg, "%s,p=%s", head, p64) > 0);
        free(p64);
        break;
    }
    case PROOF_NONCANONICAL: {
        /* Both lengths end in padding, so the last character before it has unused low bits. */
        msg = strdup(final);
        char *last = strrchr(msg, '=') - 1;
        const char *alphabet =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        *last = alphabet[(strchr(alphabet, *last) - alphabet) | 1];
        break;
    }
    case PROOF_BADCHAR:
        msg = strdup(final);
        msg[strlen(head) + 4] = '*';
        break;
    case PROOF_MISSING:
        msg = strdup(head);
        break;
    case PROOF_EMPTY:
        assert_true(asprintf(&msg, "%s,p=", head) > 0);
        break;
    }
    if (x->tail) {
        char *longer;
        assert_true(asprintf(&longer, "%s%s", msg, x->tail) > 0);
        free(msg);
        msg = longer;
    }

    sasl_result r2 = step_str(s, msg, &out, why);
    if (r2 == SASL_SUCCESS) {
        char *expect = server_final_for(h, password, bare, server_first, head);
        char *got = out_string(&out);
        assert_string_equal(got, expect);
        free(expect);
        free(got);
    } else {
        assert_int_equal(buf_len(&out), 0);
    }
    /* The exchange is over either way. */
    buf_free(&out);
    sasl_failure after;
    assert_int_equal(step_str(s, msg, &out, &after), SASL_FAILURE);
    assert_int_equal(after, SASL_MALFORMED_REQUEST);
    assert_int_equal(buf_len(&out), 0);

    free(msg);
    free(final);
    free(head);
    free(cbind);
    free(server_first);
    sasl_free(s);
    return r2;
}

static void expect_success(const exchange *x)
{
    sasl_failure why = SASL_ABORTED;
    assert_int_equal(run_exchange(x, &why), SASL_SUCCESS);
}

static void expect_failure(const exchange *x, sasl_failure cond)
{
    sasl_failure why = SASL_ABORTED;
    assert_int_equal(run_exchange(x, &why), SASL_FAILURE);
    assert_int_equal(why, cond);
}

/* The first message alone: its result and condition, and the authcid it left. */
static sasl_result first_only(sasl_mech mech, const uint8_t *exporter, bool server_plus,
                              const void *msg, size_t len, sasl_failure *why)
{
    sasl_session *s = sasl_new(mech, exporter, server_plus);
    buf out = BUF_INIT;
    *why = SASL_ABORTED;
    sasl_result r = sasl_step(s, msg, len, &out, why);
    assert_int_equal(buf_len(&out), 0);
    if (r == SASL_FAILURE) {
        assert_int_equal(sasl_creds(s, &test_sha1, &test_sha256, &out, &(sasl_failure){0}),
                         SASL_FAILURE);
        assert_int_equal(buf_len(&out), 0);
    }
    sasl_free(s);
    return r;
}

static void expect_first_refused(sasl_mech mech, const char *msg, sasl_failure cond)
{
    sasl_failure why;
    assert_int_equal(first_only(mech, NULL, false, msg, strlen(msg), &why), SASL_FAILURE);
    if (why != cond)
        fail_msg("\"%s\": %s, expected %s", msg, sasl_failure_name(why), sasl_failure_name(cond));
}

static void expect_first_accepted(sasl_mech mech, const char *msg)
{
    sasl_failure why;
    if (first_only(mech, NULL, false, msg, strlen(msg), &why) != SASL_NEED_CREDS)
        fail_msg("\"%s\" refused: %s", msg, sasl_failure_name(why));
}

static void test_scram_success(void **state)
{
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        expect_success(&(exchange){.mech = m, .first = "n,,n=user,r=abcdef"});
        /* Extensions are ignored where the grammar has them, but signed. */
        expect_success(&(exchange){.mech = m, .first = "n,,n=user,r=abcdef,x=1,Y=a=b,z=\xc3\xa9"});
        expect_success(&(exchange){.mech = m, .first = "n,,n=user,r=abcdef", .before_proof =
                                                                                  ",x=1,q=2=3"});
        /* A server that advertised -PLUS on a connection that cannot bind takes "y". */
        expect_success(&(exchange){.mech = m, .server_plus = true, .first = "y,,n=user,r=abc"});
        /* One that can bind but did not advertise -PLUS takes it too. */
        expect_success(&(exchange){
            .mech = m, .exporter = test_exporter, .first = "y,,n=user,r=abc"});
        /* The widest client nonce. */
        char first[300] = "n,,n=user,r=";
        memset(first + strlen(first), '!', 255);
        expect_success(&(exchange){.mech = m, .first = first});
    }
}

static void test_scram_plus(void **state)
{
    uint8_t other[SASL_EXPORTER_LEN];
    memcpy(other, test_exporter, sizeof(other));
    other[31] ^= 0x80;
    for (int m = SASL_SCRAM_SHA1_PLUS; m <= SASL_SCRAM_SHA256_PLUS; m += 2) {
        expect_success(&(exchange){
            .mech = m, .exporter = test_exporter, .server_plus = true,
            .first = "p=tls-exporter,,n=user,r=abc"});
        expect_success(&(exchange){
            .mech = m, .exporter = test_exporter, .server_plus = true,
            .first = "p=tls-exporter,a=user@example.com,n=user,r=abc"});
        /* Bound to another connection's exporter: a man in the middle. */
        expect_failure(&(exchange){.mech = m, .exporter = test_exporter, .server_plus = true,
                                   .first = "p=tls-exporter,,n=user,r=abc",
                                   .client_exporter = other},
                       SASL_NOT_AUTHORIZED);
        /* The gs2-header without the binding data after it. */
        expect_failure(&(exchange){.mech = m, .exporter = test_exporter,
                                   .first = "p=tls-exporter,,n=user,r=abc",
                                   .cbind = "cD10bHMtZXhwb3J0ZXIsLA=="},
                       SASL_NOT_AUTHORIZED);

        sasl_failure why;
        static const char *const refused[] = {
            "n,,n=user,r=abc", "y,,n=user,r=abc", "p=tls-unique,,n=user,r=abc",
            "p=tls-server-end-point,,n=user,r=abc", "p=TLS-EXPORTER,,n=user,r=abc",
            "p=tls-exporter", "p=tls-exporter,", "p=,,n=user,r=abc",
            "p=tls-exporterx,,n=user,r=abc"};
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
            assert_int_equal(first_only(m, test_exporter, true, refused[i], strlen(refused[i]),
                                        &why),
                             SASL_FAILURE);
            assert_int_equal(why, SASL_MALFORMED_REQUEST);
        }
        /* No exporter (not TLS 1.3): the mechanism cannot run at all, whatever comes first. */
        const char *good = "p=tls-exporter,,n=user,r=abc";
        assert_int_equal(first_only(m, NULL, false, good, strlen(good), &why), SASL_FAILURE);
        assert_int_equal(why, SASL_INVALID_MECHANISM);
        assert_int_equal(first_only(m, NULL, false, "", 0, &why), SASL_FAILURE);
        assert_int_equal(why, SASL_INVALID_MECHANISM);
    }
}

static void test_scram_channel_binding_refusals(void **state)
{
    sasl_failure why;
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        /* Binding asked on a mechanism without it. */
        expect_first_refused(m, "p=tls-exporter,,n=user,r=abc", SASL_MALFORMED_REQUEST);
        const char *msg = "p=tls-exporter,,n=user,r=abc";
        assert_int_equal(first_only(m, test_exporter, true, msg, strlen(msg), &why),
                         SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        /* Downgrade: -PLUS was offered on a connection that binds, yet the client saw none. */
        msg = "y,,n=user,r=abc";
        assert_int_equal(first_only(m, test_exporter, true, msg, strlen(msg), &why),
                         SASL_FAILURE);
        assert_int_equal(why, SASL_NOT_AUTHORIZED);
        /* c= must repeat the header that was sent, and nothing else. */
        expect_failure(&(exchange){.mech = m, .first = "n,,n=user,r=abc", .cbind = "eSws"},
                       SASL_NOT_AUTHORIZED);
        expect_failure(&(exchange){.mech = m, .server_plus = true, .first = "y,,n=user,r=abc",
                                   .cbind = "biws"},
                       SASL_NOT_AUTHORIZED);
        expect_failure(&(exchange){.mech = m, .first = "n,a=user@h,n=user,r=abc", .cbind = "biws"},
                       SASL_NOT_AUTHORIZED);
        expect_failure(&(exchange){.mech = m, .first = "n,,n=user,r=abc", .cbind = "biws="},
                       SASL_NOT_AUTHORIZED);
        expect_failure(&(exchange){.mech = m, .first = "n,,n=user,r=abc", .cbind = ""},
                       SASL_NOT_AUTHORIZED);
        /* Binding data where none was announced. */
        char *with_cb = b64("n,,\x01\x02", 5);
        expect_failure(&(exchange){.mech = m, .first = "n,,n=user,r=abc", .cbind = with_cb},
                       SASL_NOT_AUTHORIZED);
        free(with_cb);
    }
}

static void test_scram_bad_gs2_header(void **state)
{
    static const char *const refused[] = {
        "", ",", "n", "n,", "n,,", "x,,n=user,r=abc", "N,,n=user,r=abc", "nn,,n=user,r=abc",
        " n,,n=user,r=abc", "n,x=1,n=user,r=abc", "n,a,n=user,r=abc", "n,a=,n=user,r=abc",
        "n,a=x=y,n=user,r=abc", "n,a=x=2,n=user,r=abc", "n,a=x,y,n=user,r=abc",
        "n,A=x,n=user,r=abc", "y,a=x", "p,,n=user,r=abc", "n=user,r=abc", "n,,,n=user,r=abc",
    };
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2)
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
            if (refused[i][0])
                expect_first_refused(m, refused[i], SASL_MALFORMED_REQUEST);
}

static void test_scram_first_message_grammar(void **state)
{
    static const char *const refused[] = {
        /* reserved m=, before the username or as an extension */
        "n,,m=x,n=user,r=abc", "n,,m=,n=user,r=abc", "n,,n=user,r=abc,m=x",
        "n,,n=user,r=abc,x=1,m=2",
        /* the username */
        "n,,r=abc,n=user", "n,,n=,r=abc", "n,,user,r=abc", "n,,N=user,r=abc",
        "n,,n=us=er,r=abc", "n,,n=us=2,r=abc", "n,,n=user=,r=abc", "n,,n=us=2D,r=abc",
        "n,,n=us=3d=,r=abc", "n,,n==,r=abc", "n,,n=\xc2\xad,r=abc", "n,,n=us\x07r,r=abc",
        "n,,n=\xef\xbf\xbe,r=abc",
        /* the nonce */
        "n,,n=user", "n,,n=user,", "n,,n=user,r=", "n,,n=user,r=,x=1", "n,,n=user,r=a c",
        "n,,n=user,r=a\x7f", "n,,n=user,r=\xc3\xa9", "n,,n=user,R=abc", "n,,n=user,x=1,r=abc",
        /* extensions */
        "n,,n=user,r=abc,", "n,,n=user,r=abc,x", "n,,n=user,r=abc,x=", "n,,n=user,r=abc,1=x",
        "n,,n=user,r=abc,xy=1", "n,,n=user,r=abc,x=1,", "n,,n=user,r=abc,,x=1",
        /* not UTF-8 */
        "n,,n=us\xc3r,r=abc", "n,,n=user,r=abc,x=\xff", "n,,n=\xc0\xaf,r=abc",
        "n,,n=\xed\xa0\x80,r=abc", "n,,n=\xf4\x90\x80\x80,r=abc", "n,,n=\xe0\x80\xaf,r=abc",
    };
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
            expect_first_refused(m, refused[i], SASL_MALFORMED_REQUEST);
        /* A NUL anywhere. */
        sasl_failure why;
        assert_int_equal(first_only(m, NULL, false, "n,,n=us\0er,r=abc", 16, &why),
                         SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        assert_int_equal(first_only(m, NULL, false, "n,,n=user,r=abc\0", 16, &why),
                         SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        expect_first_accepted(m, "n,,n=user,r=abc,x=1");
        expect_first_accepted(m, "n,,n=user,r=!\"#$%&'()*+-./~");
        /* U+20000: four bytes, assigned in Unicode 3.2 (SASLprep refuses later additions). */
        expect_first_accepted(m, "n,,n=\xf0\xa0\x80\x80,r=abc");
        expect_first_refused(m, "n,,n=\xf0\x9f\x98\x80,r=abc", SASL_MALFORMED_REQUEST);
    }
}

static void check_names(sasl_mech m, const char *first, const char *authcid, const char *authzid)
{
    sasl_session *s = sasl_new(m, NULL, false);
    buf out = BUF_INIT;
    sasl_failure why;
    assert_int_equal(step_str(s, first, &out, &why), SASL_NEED_CREDS);
    assert_string_equal(sasl_authcid(s), authcid);
    if (authzid)
        assert_string_equal(sasl_authzid(s), authzid);
    else
        assert_null(sasl_authzid(s));
    sasl_free(s);
}

static void test_scram_names(void **state)
{
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        check_names(m, "n,,n=us=2Cer=3Dx,r=abc", "us,er=x", NULL);
        check_names(m, "n,,n=us=2cer=3dx,r=abc", "us,er=x", NULL);
        check_names(m, "n,,n==3D=2C,r=abc", "=,", NULL);
        /* SASLprep: soft hyphen mapped to nothing, fullwidth letters folded by NFKC. */
        check_names(m, "n,,n=us\xc2\xad" "er,r=abc", "user", NULL);
        check_names(m, "n,,n=\xef\xbd\x95\xef\xbd\x93\xef\xbd\x85\xef\xbd\x92,r=abc", "user",
                    NULL);
        check_names(m, "n,a=juliet@example.com,n=juliet,r=abc", "juliet", "juliet@example.com");
        check_names(m, "y,a=a=3Db=2Cc,n=juliet,r=abc", "juliet", "a=b,c");
        /* The authzid is only parsed: the caller judges it. */
        check_names(m, "n,a=romeo@example.net,n=juliet,r=abc", "juliet", "romeo@example.net");
    }
}

static void test_scram_field_limits(void **state)
{
    char msg[5000], name[800];
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        memset(name, 'a', 255);
        name[255] = '\0';
        snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
        expect_first_accepted(m, msg);
        snprintf(msg, sizeof(msg), "n,a=%s,n=user,r=abc", name);
        expect_first_accepted(m, msg);
        /* 255 escapes decode to 255 bytes. */
        for (int i = 0; i < 255; i++)
            memcpy(name + 3 * i, "=2C", 3);
        name[765] = '\0';
        snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
        expect_first_accepted(m, msg);

        memset(name, 'a', 256);
        name[256] = '\0';
        snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
        expect_first_refused(m, msg, SASL_MALFORMED_REQUEST);
        snprintf(msg, sizeof(msg), "n,a=%s,n=user,r=abc", name);
        expect_first_refused(m, msg, SASL_MALFORMED_REQUEST);
        for (int i = 0; i < 256; i++)
            memcpy(name + 3 * i, "=3D", 3);
        name[768] = '\0';
        snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
        expect_first_refused(m, msg, SASL_MALFORMED_REQUEST);
        /* SASLprep growing a name past the limit: U+3315 is 3 bytes, and 15 after NFKC. */
        name[0] = '\0';
        for (int i = 0; i < 17; i++)
            strcat(name, "\xe3\x8c\x95");
        snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
        expect_first_accepted(m, msg);
        strcat(name, "\xe3\x8c\x95");
        snprintf(msg, sizeof(msg), "n,,n=%s,r=abc", name);
        expect_first_refused(m, msg, SASL_MALFORMED_REQUEST);

        memset(name, 'n', 256);
        name[256] = '\0';
        snprintf(msg, sizeof(msg), "n,,n=user,r=%s", name);
        expect_first_refused(m, msg, SASL_MALFORMED_REQUEST);

        /* A whole message past 4096 bytes, however valid its parts. */
        int len = snprintf(msg, sizeof(msg), "n,,n=user,r=abc,x=");
        memset(msg + len, 'v', 4096 - (size_t)len);
        msg[4096] = '\0';
        expect_first_accepted(m, msg);
        msg[4096] = 'v';
        msg[4097] = '\0';
        expect_first_refused(m, msg, SASL_MALFORMED_REQUEST);
    }
}

static void test_scram_final_message(void **state)
{
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        const char *first = "n,,n=user,r=abc";
        /* nonce */
        expect_failure(&(exchange){.mech = m, .first = first, .nonce = "abc"},
                       SASL_NOT_AUTHORIZED);
        expect_failure(&(exchange){.mech = m, .first = first, .nonce = "abd"},
                       SASL_NOT_AUTHORIZED);
        expect_failure(&(exchange){.mech = m, .first = first, .nonce = ""}, SASL_NOT_AUTHORIZED);
        /* proof */
        expect_failure(&(exchange){.mech = m, .first = first, .password = "pencik"},
                       SASL_NOT_AUTHORIZED);
        expect_failure(&(exchange){.mech = m, .first = first, .proof = PROOF_FLIPPED},
                       SASL_NOT_AUTHORIZED);
        expect_failure(&(exchange){.mech = m, .first = first, .proof = PROOF_SHORT},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .proof = PROOF_LONG},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .proof = PROOF_NONCANONICAL},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .proof = PROOF_BADCHAR},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .proof = PROOF_MISSING},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .proof = PROOF_EMPTY},
                       SASL_MALFORMED_REQUEST);
        /* the proof comes last, once */
        expect_failure(&(exchange){.mech = m, .first = first, .tail = ","},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .tail = ",x=1"},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .tail = "\xc3\xa9"},
                       SASL_MALFORMED_REQUEST);
        /* extensions before the proof: grammar and the reserved m= */
        expect_failure(&(exchange){.mech = m, .first = first, .before_proof = ",m=1"},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .before_proof = ",x"},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .before_proof = ",x="},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .before_proof = ","},
                       SASL_MALFORMED_REQUEST);
        expect_failure(&(exchange){.mech = m, .first = first, .before_proof = ",\xff=1"},
                       SASL_MALFORMED_REQUEST);
    }
}

/* Final messages out of order or in pieces, on an exchange at its final step. */
static void test_scram_final_grammar(void **state)
{
    static const char *const refused[] = {
        "", "c=biws", "c=biws,r=abc", "r=abc,c=biws,p=AAAA", "C=biws,r=abc,p=AAAA",
        "c=biws,R=abc,p=AAAA", "c=biws,p=AAAA,r=abc", "p=AAAA", "c=biws,r=abc,P=AAAA",
        "c=biws,x=1,r=abc,p=AAAA",
    };
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2)
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
            sasl_session *s = sasl_new(m, NULL, false);
            buf out = BUF_INIT;
            sasl_failure why;
            assert_int_equal(step_str(s, "n,,n=user,r=abc", &out, &why), SASL_NEED_CREDS);
            assert_int_equal(sasl_creds(s, &test_sha1, &test_sha256, &out, &why),
                             SASL_CHALLENGE);
            buf_free(&out);
            assert_int_equal(step_str(s, refused[i], &out, &why), SASL_FAILURE);
            assert_int_equal(why, SASL_MALFORMED_REQUEST);
            assert_int_equal(buf_len(&out), 0);
            sasl_free(s);
        }
}

/* Picks the fields of a server-first-message. */
static void parse_server_first(const char *sf, char *nonce, char *salt, unsigned *iterations)
{
    assert_int_equal(sscanf(sf, "r=%511[^,],s=%127[^,],i=%u", nonce, salt, iterations), 3);
}

static char *server_first_for(sasl_mech m, const char *first, bool known)
{
    scram_hash h = mech_hash(m);
    sasl_session *s = sasl_new(m, NULL, false);
    buf out = BUF_INIT;
    sasl_failure why;
    assert_int_equal(step_str(s, first, &out, &why), SASL_NEED_CREDS);
    const scram_credentials *cr = !known ? NULL : h == SCRAM_SHA1 ? &test_sha1 : &test_sha256;
    assert_int_equal(sasl_creds(s, cr, cr, &out, &why), SASL_CHALLENGE);
    char *sf = out_string(&out);
    buf_free(&out);
    sasl_free(s);
    return sf;
}

static void test_scram_server_first(void **state)
{
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        char n1[512], n2[512], s1[128], s2[128];
        unsigned i1, i2;
        char *a = server_first_for(m, "n,,n=user,r=abc", true);
        char *b = server_first_for(m, "n,,n=user,r=abc", true);
        parse_server_first(a, n1, s1, &i1);
        parse_server_first(b, n2, s2, &i2);
        /* client nonce + 32 fresh random characters, each time different */
        assert_int_equal(strlen(n1), 3 + 32);
        assert_memory_equal(n1, "abc", 3);
        for (size_t i = 3; i < strlen(n1); i++)
            assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789", n1[i]));
        assert_string_not_equal(n1, n2);
        const scram_credentials *cr = mech_hash(m) == SCRAM_SHA1 ? &test_sha1 : &test_sha256;
        char *salt = b64(cr->salt, cr->salt_len);
        assert_string_equal(s1, salt);
        free(salt);
        assert_int_equal(i1, SCRAM_ITERATIONS);
        free(a);
        free(b);
    }
}

/* An unknown user gets a server-first that looks like a real one, the same salt each time, and
 * a failure only at the end, even with a proof made for those values. */
static void test_scram_unknown_user(void **state)
{
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        char n1[512], n2[512], s1[128], s2[128], s3[128], n3[512];
        unsigned i1, i2, i3;
        char *a = server_first_for(m, "n,,n=nobody,r=abc", false);
        char *b = server_first_for(m, "n,,n=nobody,r=abc", false);
        char *c = server_first_for(m, "n,,n=someone,r=abc", false);
        parse_server_first(a, n1, s1, &i1);
        parse_server_first(b, n2, s2, &i2);
        parse_server_first(c, n3, s3, &i3);
        assert_int_equal(strlen(n1), 3 + 32);
        assert_string_not_equal(n1, n2);
        assert_int_equal(strlen(s1), 24); /* 16 bytes, like a generated salt */
        assert_string_equal(s1, s2);
        assert_string_not_equal(s1, s3);
        assert_int_equal(i1, SCRAM_ITERATIONS);
        assert_int_equal(i3, SCRAM_ITERATIONS);
        free(a);
        free(b);
        free(c);
        /* Another hash, another salt. */
        char *other = server_first_for(m == SASL_SCRAM_SHA1 ? SASL_SCRAM_SHA256 : SASL_SCRAM_SHA1,
                                       "n,,n=nobody,r=abc", false);
        parse_server_first(other, n3, s3, &i3);
        assert_string_not_equal(s1, s3);
        free(other);

        expect_failure(&(exchange){.mech = m, .first = "n,,n=nobody,r=abc", .unknown_user = true},
                       SASL_NOT_AUTHORIZED);
        /* The real user's name with no credentials behaves the same. */
        expect_failure(&(exchange){.mech = m, .first = "n,,n=user,r=abc", .unknown_user = true},
                       SASL_NOT_AUTHORIZED);
    }
}

static void test_scram_unusable_creds(void **state)
{
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        scram_credentials broken[3];
        for (int i = 0; i < 3; i++)
            broken[i] = mech_hash(m) == SCRAM_SHA1 ? test_sha1 : test_sha256;
        broken[0].iterations = 0;
        broken[1].salt_len = 0;
        broken[2].salt_len = SCRAM_SALT_MAX + 1;
        for (int i = 0; i < 3; i++) {
            sasl_session *s = sasl_new(m, NULL, false);
            buf out = BUF_INIT;
            sasl_failure why;
            assert_int_equal(step_str(s, "n,,n=user,r=abc", &out, &why), SASL_NEED_CREDS);
            assert_int_equal(sasl_creds(s, &broken[i], &broken[i], &out, &why), SASL_FAILURE);
            assert_int_equal(why, SASL_TEMPORARY_AUTH_FAILURE);
            assert_int_equal(buf_len(&out), 0);
            sasl_free(s);
        }
    }
    /* The widest accepted salt works. */
    scram_credentials wide;
    uint8_t salt[SCRAM_SALT_MAX];
    random_bytes(salt, sizeof(salt));
    assert_int_equal(scram_derive(SCRAM_SHA256, "pencil", salt, sizeof(salt), 4096, &wide), 0);
    sasl_session *s = sasl_new(SASL_SCRAM_SHA256, NULL, false);
    buf out = BUF_INIT;
    sasl_failure why;
    assert_int_equal(step_str(s, "n,,n=user,r=abc", &out, &why), SASL_NEED_CREDS);
    assert_int_equal(sasl_creds(s, NULL, &wide, &out, &why), SASL_CHALLENGE);
    char *sf = out_string(&out), *head, *final;
    const char *r = sf + 2;
    assert_true(asprintf(&head, "c=biws,r=%.*s", (int)(strchr(r, ',') - r), r) > 0);
    final = client_final(SCRAM_SHA256, "pencil", "n=user,r=abc", sf, head, NULL);
    buf_free(&out);
    assert_int_equal(step_str(s, final, &out, &why), SASL_SUCCESS);
    free(sf);
    free(head);
    free(final);
    buf_free(&out);
    sasl_free(s);
}

/* ---- turn-taking, common to all mechanisms ---- */

static void test_turns(void **state)
{
    sasl_failure why;
    buf out = BUF_INIT;
    for (int m = 0; m < SASL_MECH_COUNT; m++) {
        const uint8_t *exporter = sasl_mech_is_plus(m) ? test_exporter : NULL;
        const char *first = m == SASL_PLAIN       ? "\0user\0pencil"
                            : sasl_mech_is_plus(m) ? "p=tls-exporter,,n=user,r=abc"
                                                   : "n,,n=user,r=abc";
        size_t first_len = m == SASL_PLAIN ? 12 : strlen(first);

        /* No initial response: an empty challenge, once. */
        sasl_session *s = sasl_new(m, exporter, true);
        assert_null(sasl_authcid(s));
        assert_int_equal(sasl_step(s, (const uint8_t *)"", 0, &out, &why), SASL_CHALLENGE);
        assert_int_equal(buf_len(&out), 0);
        assert_int_equal(sasl_step(s, NULL, 0, &out, &why), SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        assert_int_equal(sasl_step(s, (const uint8_t *)first, first_len, &out, &why),
                         SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        sasl_free(s);

        s = sasl_new(m, exporter, true);
        assert_int_equal(sasl_step(s, NULL, 0, &out, &why), SASL_CHALLENGE);
        assert_int_equal(sasl_step(s, (const uint8_t *)first, first_len, &out, &why),
                         SASL_NEED_CREDS);
        assert_string_equal(sasl_authcid(s), "user");
        /* Out of turn while credentials are awaited: ends the exchange. */
        assert_int_equal(sasl_verified(s, true, &out, &why), SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        assert_int_equal(sasl_step(s, (const uint8_t *)first, first_len, &out, &why),
                         SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        assert_int_equal(sasl_creds(s, &test_sha1, &test_sha256, &out, &why), SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        assert_int_equal(buf_len(&out), 0);
        assert_null(sasl_plain_password(s));
        sasl_free(s);

        /* Credentials before any message. */
        s = sasl_new(m, exporter, true);
        assert_int_equal(sasl_creds(s, &test_sha1, &test_sha256, &out, &why), SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        assert_int_equal(sasl_verified(s, true, &out, &why), SASL_FAILURE);
        /* ... did not disturb the exchange. */
        assert_int_equal(sasl_step(s, (const uint8_t *)first, first_len, &out, &why),
                         SASL_NEED_CREDS);
        sasl_free(s);

        /* A NULL why is allowed. */
        s = sasl_new(m, exporter, true);
        assert_int_equal(sasl_step(s, (const uint8_t *)"\xff", 1, &out, NULL), SASL_FAILURE);
        assert_int_equal(sasl_step(s, (const uint8_t *)first, first_len, &out, NULL),
                         SASL_FAILURE);
        sasl_free(s);
    }
    /* SCRAM: an empty response after the server-first, and verification never applies. */
    for (int m = SASL_SCRAM_SHA1; m <= SASL_SCRAM_SHA256; m += 2) {
        sasl_session *s = sasl_new(m, NULL, false);
        assert_int_equal(step_str(s, "n,,n=user,r=abc", &out, &why), SASL_NEED_CREDS);
        assert_int_equal(sasl_creds(s, &test_sha1, &test_sha256, &out, &why), SASL_CHALLENGE);
        assert_int_equal(sasl_verified(s, true, &out, &why), SASL_FAILURE);
        buf_free(&out);
        assert_int_equal(sasl_step(s, NULL, 0, &out, &why), SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
        assert_int_equal(buf_len(&out), 0);
        sasl_free(s);
    }
    buf_free(&out);
    sasl_free(NULL);
}

/* ---- PLAIN ---- */

/* Runs PLAIN through to the end with the account above; returns the last result. */
static sasl_result plain_run(const void *msg, size_t len, bool known, sasl_failure *why,
                             char **authcid, char **authzid)
{
    sasl_session *s = sasl_new(SASL_PLAIN, NULL, false);
    buf out = BUF_INIT;
    *why = SASL_ABORTED;
    sasl_result r = sasl_step(s, msg, len, &out, why);
    if (r == SASL_NEED_CREDS) {
        assert_null(sasl_plain_password(s));
        r = sasl_creds(s, known ? &test_sha1 : NULL, known ? &test_sha256 : NULL, &out, why);
    }
    if (r == SASL_NEED_VERIFY) {
        const char *password = sasl_plain_password(s);
        assert_non_null(password);
        bool ok = sasl_plain_verify(password, SCRAM_SHA256, &test_sha256);
        assert_int_equal(sasl_plain_verify(password, SCRAM_SHA1, &test_sha1), ok);
        r = sasl_verified(s, ok, &out, why);
        assert_null(sasl_plain_password(s));
    }
    assert_int_equal(buf_len(&out), 0);
    if (authcid)
        *authcid = sasl_authcid(s) ? strdup(sasl_authcid(s)) : NULL;
    if (authzid)
        *authzid = sasl_authzid(s) ? strdup(sasl_authzid(s)) : NULL;
    if (r == SASL_SUCCESS || r == SASL_FAILURE) {
        sasl_failure after;
        assert_int_equal(sasl_step(s, msg, len, &out, &after), SASL_FAILURE);
        assert_int_equal(after, SASL_MALFORMED_REQUEST);
    }
    sasl_free(s);
    return r;
}

static void test_plain(void **state)
{
    sasl_failure why;
    char *authcid, *authzid;
    assert_int_equal(plain_run("\0user\0pencil", 12, true, &why, &authcid, &authzid),
                     SASL_SUCCESS);
    assert_string_equal(authcid, "user");
    assert_null(authzid);
    free(authcid);
    assert_int_equal(plain_run("user@example.com\0user\0pencil", 28, true, &why, &authcid,
                               &authzid),
                     SASL_SUCCESS);
    assert_string_equal(authzid, "user@example.com");
    free(authcid);
    free(authzid);
    /* authcid through SASLprep */
    assert_int_equal(plain_run("\0u\xc2\xadser\0pencil", 14, true, &why, &authcid, NULL),
                     SASL_SUCCESS);
    assert_string_equal(authcid, "user");
    free(authcid);
    /* wrong password, unknown user */
    assert_int_equal(plain_run("\0user\0pencik", 12, true, &why, NULL, NULL), SASL_FAILURE);
    assert_int_equal(why, SASL_NOT_AUTHORIZED);
    assert_int_equal(plain_run("\0user\0Pencil", 12, true, &why, NULL, NULL), SASL_FAILURE);
    assert_int_equal(why, SASL_NOT_AUTHORIZED);
    assert_int_equal(plain_run("\0nobody\0pencil", 14, false, &why, &authcid, NULL),
                     SASL_FAILURE);
    assert_int_equal(why, SASL_NOT_AUTHORIZED);
    assert_string_equal(authcid, "nobody");
    free(authcid);
}

/* Only a failed password check counts as a guess; a failure on the protocol does not. */
static void test_password_rejected(void **state)
{
    static const uint8_t exporter[SASL_EXPORTER_LEN] = {1, 2, 3};
    scram_credentials sha1, sha256;
    assert_int_equal(scram_derive(SCRAM_SHA1, "pencil", NULL, 0, 1, &sha1), 0);
    assert_int_equal(scram_derive(SCRAM_SHA256, "pencil", NULL, 0, 1, &sha256), 0);
    sasl_failure why;
    buf out = BUF_INIT;

    sasl_session *s = sasl_new(SASL_PLAIN, NULL, false);
    assert_int_equal(sasl_step(s, (const uint8_t *)"\0user\0pencik", 12, &out, &why),
                     SASL_NEED_CREDS);
    assert_int_equal(sasl_creds(s, &sha1, &sha256, &out, &why), SASL_NEED_VERIFY);
    assert_int_equal(sasl_verified(s, false, &out, &why), SASL_FAILURE);
    assert_true(sasl_password_rejected(s));
    sasl_free(s);

    s = sasl_new(SASL_PLAIN, NULL, false);
    assert_int_equal(sasl_step(s, (const uint8_t *)"\0nobody\0pencil", 14, &out, &why),
                     SASL_NEED_CREDS);
    assert_int_equal(sasl_creds(s, NULL, NULL, &out, &why), SASL_FAILURE);
    assert_true(sasl_password_rejected(s));
    sasl_free(s);

    s = sasl_new(SASL_PLAIN, NULL, false);
    assert_int_equal(sasl_step(s, (const uint8_t *)"user", 4, &out, &why), SASL_FAILURE);
    assert_false(sasl_password_rejected(s));
    sasl_free(s);

    /* A client that binds only with tls-unique: refused on -PLUS, then its "y" on plain SCRAM
     * is refused as a downgrade; neither tested a password. */
    s = sasl_new(SASL_SCRAM_SHA256_PLUS, exporter, true);
    const char *unique = "p=tls-unique,,n=user,r=abc";
    assert_int_equal(sasl_step(s, (const uint8_t *)unique, strlen(unique), &out, &why),
                     SASL_FAILURE);
    assert_false(sasl_password_rejected(s));
    sasl_free(s);
    s = sasl_new(SASL_SCRAM_SHA256, exporter, true);
    const char *downgrade = "y,,n=user,r=abc";
    assert_int_equal(sasl_step(s, (const uint8_t *)downgrade, strlen(downgrade), &out, &why),
                     SASL_FAILURE);
    assert_false(sasl_password_rejected(s));
    sasl_free(s);
    buf_free(&out);
}

static void test_plain_malformed(void **state)
{
    static const struct {
        const char *msg;
        size_t len;
    } refused[] = {
        {"user", 4},                  /* no NUL */
        {"\0user", 5},                /* one NUL */
        {"user\0pencil", 11},         /* one NUL */
        {"\0user\0pen\0cil", 13},     /* three */
        {"\0\0pencil", 8},            /* empty authcid */
        {"\0user\0", 6},              /* empty password */
        {"\0\0", 2},
        {"\0us\xffr\0pencil", 12},    /* not UTF-8 */
        {"\xc3\0user\0pencil", 13},
        {"\0user\0penc\xe2\x82", 12},
        {"\0\xc2\xad\0pencil", 9},    /* SASLprep leaves nothing */
        {"\0us\x07r\0pencil", 12},    /* SASLprep prohibits */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        sasl_failure why;
        assert_int_equal(plain_run(refused[i].msg, refused[i].len, true, &why, NULL, NULL),
                         SASL_FAILURE);
        assert_int_equal(why, SASL_MALFORMED_REQUEST);
    }
}

static void test_plain_limits(void **state)
{
    uint8_t msg[2000];
    sasl_failure why;
    scram_credentials long_pw;
    char password[1025];
    memset(password, 'p', 1024);
    password[1023] = '\0';
    assert_int_equal(scram_derive(SCRAM_SHA256, password, NULL, 0, 4096, &long_pw), 0);
    for (size_t zlen = 255; zlen <= 256; zlen++)
        for (size_t clen = 255; clen <= 256; clen++)
            for (size_t plen = 1023; plen <= 1024; plen++) {
                size_t n = 0;
                memset(msg + n, 'z', zlen);
                n += zlen;
                msg[n++] = 0;
                memset(msg + n, 'c', clen);
                n += clen;
                msg[n++] = 0;
                memset(msg + n, 'p', plen);
                n += plen;
                bool fits = zlen == 255 && clen == 255 && plen == 1023;
                sasl_session *s = sasl_new(SASL_PLAIN, NULL, false);
                buf out = BUF_INIT;
                sasl_result r = sasl_step(s, msg, n, &out, &why);
                if (fits) {
                    assert_int_equal(r, SASL_NEED_CREDS);
                    assert_int_equal(strlen(sasl_authcid(s)), 255);
                    assert_int_equal(strlen(sasl_authzid(s)), 255);
                    assert_int_equal(sasl_creds(s, NULL, &long_pw, &out, &why),
                                     SASL_NEED_VERIFY);
                    assert_true(sasl_plain_verify(sasl_plain_password(s), SCRAM_SHA256,
                                                  &long_pw));
                    assert_int_equal(sasl_verified(s, true, &out, &why), SASL_SUCCESS);
                } else {
                    assert_int_equal(r, SASL_FAILURE);
                    assert_int_equal(why, SASL_MALFORMED_REQUEST);
                }
                sasl_free(s);
            }
    /* Freed while the password is held: nothing leaks (ASan checks). */
    sasl_session *s = sasl_new(SASL_PLAIN, NULL, false);
    buf out = BUF_INIT;
    assert_int_equal(sasl_step(s, (const uint8_t *)"\0user\0pencil", 12, &out, &why),
                     SASL_NEED_CREDS);
    assert_int_equal(sasl_creds(s, &test_sha1, NULL, &out, &why), SASL_NEED_VERIFY);
    assert_string_equal(sasl_plain_password(s), "pencil");
    sasl_free(s);
}

static void test_plain_verify(void **state)
{
    /* RFC 4013 §3 examples: SOFT HYPHEN maps to nothing, ROMAN NUMERAL NINE to "IX". */
    scram_credentials ix;
    assert_int_equal(scram_derive(SCRAM_SHA256, "IX", NULL, 0, 4096, &ix), 0);
    assert_true(sasl_plain_verify("IX", SCRAM_SHA256, &ix));
    assert_true(sasl_plain_verify("I\xc2\xadX", SCRAM_SHA256, &ix));
    assert_true(sasl_plain_verify("\xe2\x85\xa8", SCRAM_SHA256, &ix));
    assert_false(sasl_plain_verify("ix", SCRAM_SHA256, &ix));
    assert_false(sasl_plain_verify("\x07", SCRAM_SHA256, &ix)); /* prohibited */
    assert_false(sasl_plain_verify(NULL, SCRAM_SHA256, &ix));
    assert_false(sasl_plain_verify("IX", SCRAM_SHA256, NULL));
    /* The wrong hash for the credentials. */
    assert_false(sasl_plain_verify("IX", SCRAM_SHA1, &ix));
    scram_credentials broken = ix;
    broken.iterations = 0;
    assert_false(sasl_plain_verify("IX", SCRAM_SHA256, &broken));
    broken = ix;
    broken.salt_len = SCRAM_SALT_MAX + 1;
    assert_false(sasl_plain_verify("IX", SCRAM_SHA256, &broken));
    /* One iteration, as the fuzzer uses. */
    scram_credentials fast;
    assert_int_equal(scram_derive(SCRAM_SHA1, "pencil", NULL, 0, 1, &fast), 0);
    assert_true(sasl_plain_verify("pencil", SCRAM_SHA1, &fast));
}

/* ---- GNU SASL as the client ---- */

typedef struct gsasl_case {
    const char *mech;
    const char *authid;
    const char *authzid;
    const char *password;
    const uint8_t *client_exporter; /* given to GNU SASL; NULL: none */
    const uint8_t *server_exporter;
    bool server_plus;
    bool known;                     /* the server has credentials for authid */
} gsasl_case;

/* The SCRAM credentials the server holds for the GNU SASL cases: "pencil" for any username. */
static sasl_result gsasl_run(Gsasl *ctx, const gsasl_case *c, sasl_failure *why, int *client_rc)
{
    Gsasl_session *cs;
    assert_int_equal(gsasl_client_start(ctx, c->mech, &cs), GSASL_OK);
    gsasl_property_set(cs, GSASL_AUTHID, c->authid);
    gsasl_property_set(cs, GSASL_PASSWORD, c->password);
    if (c->authzid)
        gsasl_property_set(cs, GSASL_AUTHZID, c->authzid);
    if (c->client_exporter) {
        char *e = b64(c->client_exporter, SASL_EXPORTER_LEN);
        gsasl_property_set(cs, GSASL_CB_TLS_EXPORTER, e);
        free(e);
    }
    sasl_session *s = sasl_new((sasl_mech)sasl_mech_parse(c->mech), c->server_exporter,
                               c->server_plus);
    buf out = BUF_INIT;
    char *msg;
    size_t msg_len;
    *client_rc = gsasl_step(cs, NULL, 0, &msg, &msg_len);
    assert_true(*client_rc == GSASL_OK || *client_rc == GSASL_NEEDS_MORE);
    sasl_result r = sasl_step(s, (const uint8_t *)msg, msg_len, &out, why);
    free(msg);
    bool plain = strcmp(c->mech, "PLAIN") == 0;
    for (;;) {
        if (r == SASL_NEED_CREDS) {
            assert_string_equal(sasl_authcid(s), c->authid);
            if (c->authzid)
                assert_string_equal(sasl_authzid(s), c->authzid);
            else
                assert_null(sasl_authzid(s));
            r = sasl_creds(s, c->known ? &test_sha1 : NULL, c->known ? &test_sha256 : NULL,
                           &out, why);
        } else if (r == SASL_NEED_VERIFY) {
            r = sasl_verified(s, sasl_plain_verify(sasl_plain_password(s), SCRAM_SHA256,
                                                   &test_sha256),
                              &out, why);
        } else if (r == SASL_CHALLENGE) {
            assert_false(plain);
            *client_rc = gsasl_step(cs, buf_data(&out), buf_len(&out), &msg, &msg_len);
            buf_free(&out);
            assert_int_equal(*client_rc, GSASL_NEEDS_MORE);
            r = sasl_step(s, (const uint8_t *)msg, msg_len, &out, why);
            free(msg);
        } else {
            break;
        }
    }
    if (r == SASL_SUCCESS && !plain) {
        /* GNU SASL checks the server's signature. */
        *client_rc = gsasl_step(cs, buf_data(&out), buf_len(&out), &msg, &msg_len);
        free(msg);
    }
    buf_free(&out);
    sasl_free(s);
    gsasl_finish(cs);
    return r;
}

static void gsasl_expect(Gsasl *ctx, const gsasl_case *c, sasl_result expect, sasl_failure cond)
{
    sasl_failure why = SASL_ABORTED;
    int client_rc;
    sasl_result r = gsasl_run(ctx, c, &why, &client_rc);
    if (r != expect)
        fail_msg("%s as %s: %d (%s), expected %d", c->mech, c->authid, r,
                 r == SASL_FAILURE ? sasl_failure_name(why) : "", expect);
    if (r == SASL_SUCCESS)
        assert_int_equal(client_rc, GSASL_OK);
    else
        assert_int_equal(why, cond);
}

static void test_gsasl_client(void **state)
{
    Gsasl *ctx;
    assert_int_equal(gsasl_init(&ctx), GSASL_OK);
    uint8_t other[SASL_EXPORTER_LEN];
    memset(other, 0x5a, sizeof(other));
    static const char *const mechs[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"};
    for (size_t i = 0; i < 3; i++) {
        const char *m = mechs[i];
        gsasl_expect(ctx, &(gsasl_case){m, "user", NULL, "pencil", .known = true}, SASL_SUCCESS,
                     0);
        gsasl_expect(ctx, &(gsasl_case){m, "user", "user@example.com", "pencil", .known = true},
                     SASL_SUCCESS, 0);
        /* GNU SASL escapes "," and "=" in SCRAM names. */
        gsasl_expect(ctx, &(gsasl_case){m, "us,er=", "a,b=c@example.com", "pencil",
                                        .known = true},
                     SASL_SUCCESS, 0);
        gsasl_expect(ctx, &(gsasl_case){m, "j\xc3\xbcrgen", NULL, "pencil", .known = true},
                     SASL_SUCCESS, 0);
        gsasl_expect(ctx, &(gsasl_case){m, "user", NULL, "pencik", .known = true}, SASL_FAILURE,
                     SASL_NOT_AUTHORIZED);
        gsasl_expect(ctx, &(gsasl_case){m, "nobody", NULL, "pencil", .known = false},
                     SASL_FAILURE, SASL_NOT_AUTHORIZED);
        /* -PLUS offered but the client did not take it: no cb data, "n" flag, fine. */
        gsasl_expect(ctx, &(gsasl_case){m, "user", NULL, "pencil", .server_exporter = test_exporter,
                                        .server_plus = true, .known = true},
                     SASL_SUCCESS, 0);
    }
    static const char *const plus[] = {"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"};
    for (size_t i = 0; i < 2; i++) {
        const char *m = plus[i];
        gsasl_expect(ctx, &(gsasl_case){m, "user", NULL, "pencil", test_exporter, test_exporter,
                                        true, true},
                     SASL_SUCCESS, 0);
        gsasl_expect(ctx, &(gsasl_case){m, "user", "user@example.com", "pencil", test_exporter,
                                        test_exporter, true, true},
                     SASL_SUCCESS, 0);
        gsasl_expect(ctx, &(gsasl_case){m, "user", NULL, "pencik", test_exporter, test_exporter,
                                        true, true},
                     SASL_FAILURE, SASL_NOT_AUTHORIZED);
        gsasl_expect(ctx, &(gsasl_case){m, "nobody", NULL, "pencil", test_exporter,
                                        test_exporter, true, false},
                     SASL_FAILURE, SASL_NOT_AUTHORIZED);
        /* Each end of the TLS connection sees a different exporter: someone is in between. */
        gsasl_expect(ctx, &(gsasl_case){m, "user", NULL, "pencil", other, test_exporter, true,
                                        true},
                     SASL_FAILURE, SASL_NOT_AUTHORIZED);
        /* The connection has no exporter. */
        gsasl_expect(ctx, &(gsasl_case){m, "user", NULL, "pencil", test_exporter, NULL, false,
                                        true},
                     SASL_FAILURE, SASL_INVALID_MECHANISM);
    }
    gsasl_done(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_rfc5802_example),
        cmocka_unit_test(test_rfc7677_example),
        cmocka_unit_test(test_scram_success),
        cmocka_unit_test(test_scram_plus),
        cmocka_unit_test(test_scram_channel_binding_refusals),
        cmocka_unit_test(test_scram_bad_gs2_header),
        cmocka_unit_test(test_scram_first_message_grammar),
        cmocka_unit_test(test_scram_names),
        cmocka_unit_test(test_scram_field_limits),
        cmocka_unit_test(test_scram_final_message),
        cmocka_unit_test(test_scram_final_grammar),
        cmocka_unit_test(test_scram_server_first),
        cmocka_unit_test(test_scram_unknown_user),
        cmocka_unit_test(test_scram_unusable_creds),
        cmocka_unit_test(test_turns),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_plain_malformed),
        cmocka_unit_test(test_password_rejected),
        cmocka_unit_test(test_plain_limits),
        cmocka_unit_test(test_plain_verify),
        cmocka_unit_test(test_gsasl_client),
    };
    return cmocka_run_group_tests(tests, setup_creds, NULL);
}
