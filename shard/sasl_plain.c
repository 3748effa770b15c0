/* shard/sasl_plain.c — PLAIN (RFC 4616) on the server side, checked against the stored SCRAM
 * credentials: the password is SASLprep'd, salted and hashed as SCRAM would, and compared with
 * StoredKey. Offered over TLS only.
 *
 * An unknown user fails as soon as the credentials lookup says so, while a known one costs a
 * PBKDF2 first: the timing tells which usernames exist. Over TLS, and with the lookup itself
 * taking a round trip to the SM, that is a minor leak next to what PLAIN already hands the
 * server; SCRAM is the mechanism that hides it.
 */
#include "shard/sasl_mech.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

typedef struct sasl_plain {
    char *password;
    size_t len;
} sasl_plain;

static void *plain_start(sasl_session *s)
{
    return mem_zalloc(sizeof(sasl_plain));
}

/* message = [authzid] NUL authcid NUL passwd */
static sasl_result plain_step(sasl_session *s, const uint8_t *in, size_t len, buf *out,
                              sasl_failure *why)
{
    sasl_plain *st = s->state;
    const uint8_t *nul1 = memchr(in, 0, len);
    if (!nul1)
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    const uint8_t *authcid = nul1 + 1;
    const uint8_t *nul2 = memchr(authcid, 0, (size_t)(in + len - authcid));
    if (!nul2)
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    const uint8_t *password = nul2 + 1;
    size_t authzid_len = (size_t)(nul1 - in), authcid_len = (size_t)(nul2 - authcid);
    size_t password_len = (size_t)(in + len - password);
    /* sasl_text_valid refuses a third NUL, in the password. */
    if (authzid_len > SASL_NAME_MAX || authcid_len == 0 || authcid_len > SASL_NAME_MAX ||
        password_len == 0 || password_len > SASL_PASSWORD_MAX ||
        !sasl_text_valid(in, authzid_len) || !sasl_text_valid(authcid, authcid_len) ||
        !sasl_text_valid(password, password_len))
        return sasl_fail(why, SASL_MALFORMED_REQUEST);

    char *name = mem_strndup((const char *)authcid, authcid_len);
    s->authcid = sasl_prep_name(name);
    free(name);
    if (!s->authcid)
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    if (authzid_len)
        s->authzid = mem_strndup((const char *)in, authzid_len);
    st->password = mem_strndup((const char *)password, password_len);
    st->len = password_len;
    return SASL_NEED_CREDS;
}

static sasl_result plain_creds(sasl_session *s, const scram_credentials *sha1,
                               const scram_credentials *sha256, buf *out, sasl_failure *why)
{
    if (!sha1 && !sha256)
        return sasl_reject_password(s, why);
    return SASL_NEED_VERIFY;
}

static sasl_result plain_verified(sasl_session *s, bool ok, buf *out, sasl_failure *why)
{
    return ok ? SASL_SUCCESS : sasl_reject_password(s, why);
}

static void plain_finish(void *state)
{
    sasl_plain *st = state;
    if (st->password) {
        OPENSSL_cleanse(st->password, st->len);
        free(st->password);
    }
    free(st);
}

const char *sasl_plain_password(const sasl_session *s)
{
    if (s->mech != SASL_PLAIN || s->phase != SASL_PHASE_VERIFY)
        return NULL;
    const sasl_plain *st = s->state;
    return st->password;
}

bool sasl_plain_verify(const char *password, scram_hash hash, const scram_credentials *creds)
{
    if (!password || !creds || creds->iterations == 0 || creds->salt_len > SCRAM_SALT_MAX)
        return false;
    char *prepared;
    if (scram_saslprep(password, &prepared) != 0)
        return false;
    size_t prepared_len = strlen(prepared), key_len = scram_key_len(hash);
    uint8_t salted[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], stored_key[SCRAM_MAX_KEY];
    scram_salted_password(hash, prepared, prepared_len, creds->salt, creds->salt_len,
                          creds->iterations, salted);
    OPENSSL_cleanse(prepared, prepared_len);
    free(prepared);
    scram_hmac(hash, salted, key_len, "Client Key", 10, client_key);
    scram_digest(hash, client_key, key_len, stored_key);
    bool ok = CRYPTO_memcmp(stored_key, creds->stored_key, key_len) == 0;
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return ok;
}

const sasl_mech_ops sasl_plain_ops = {
    .start = plain_start,
    .step = plain_step,
    .creds = plain_creds,
    .verified = plain_verified,
    .finish = plain_finish,
};
