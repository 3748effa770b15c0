/* core/scram.c — SCRAM credential derivation with OpenSSL's PBKDF2 and HMAC, and SASLprep
 * through libidn. */
#include "core/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

#include "core/mem.h"
#include "core/random.h"

static const EVP_MD *scram_md(scram_hash h)
{
    return h == SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
}

size_t scram_key_len(scram_hash h)
{
    return h == SCRAM_SHA1 ? 20 : 32;
}

const char *scram_mechanism(scram_hash h)
{
    return h == SCRAM_SHA1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

int scram_saslprep(const char *password, char **out)
{
    char *prepared = NULL;
    /* STRINGPREP_NO_UNASSIGNED: stored strings must not use unassigned code points (RFC 4013 §2). */
    if (stringprep_profile(password, &prepared, "SASLprep", STRINGPREP_NO_UNASSIGNED) !=
        STRINGPREP_OK) {
        free(prepared);
        return -1;
    }
    *out = prepared;
    return 0;
}

void scram_salted_password(scram_hash h, const char *prepared, size_t len, const uint8_t *salt,
                           size_t salt_len, uint32_t iterations, uint8_t out[SCRAM_MAX_KEY])
{
    PKCS5_PBKDF2_HMAC(prepared, (int)len, salt, (int)salt_len, (int)iterations, scram_md(h),
                      (int)scram_key_len(h), out);
}

void scram_hmac(scram_hash h, const uint8_t *key, size_t key_len, const void *data, size_t len,
                uint8_t out[SCRAM_MAX_KEY])
{
    unsigned int out_len = 0;
    HMAC(scram_md(h), key, (int)key_len, data, len, out, &out_len);
}

void scram_digest(scram_hash h, const void *data, size_t len, uint8_t out[SCRAM_MAX_KEY])
{
    EVP_Digest(data, len, out, NULL, scram_md(h), NULL);
}

int scram_derive(scram_hash h, const char *password, const uint8_t *salt, size_t salt_len,
                 uint32_t iterations, scram_credentials *out)
{
    char *prepared;
    if (scram_saslprep(password, &prepared) != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    if (salt) {
        out->salt_len = salt_len < SCRAM_SALT_MAX ? salt_len : SCRAM_SALT_MAX;
        memcpy(out->salt, salt, out->salt_len);
    } else {
        out->salt_len = SCRAM_SALT_LEN;
        random_bytes(out->salt, out->salt_len);
    }
    out->iterations = iterations;

    uint8_t salted[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY];
    size_t key_len = scram_key_len(h);
    scram_salted_password(h, prepared, strlen(prepared), out->salt, out->salt_len, iterations,
                          salted);
    OPENSSL_cleanse(prepared, strlen(prepared));
    free(prepared);
    scram_hmac(h, salted, key_len, "Client Key", 10, client_key);
    scram_digest(h, client_key, key_len, out->stored_key);
    scram_hmac(h, salted, key_len, "Server Key", 10, out->server_key);
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return 0;
}
