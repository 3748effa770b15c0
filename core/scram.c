/* core/scram.c — SCRAM credential derivation (PBKDF2 and HMAC over OpenSSL's SHA-1 and SHA-256),
 * and SASLprep through libidn.
 *
 * PBKDF2 here is written out rather than taken from PKCS5_PBKDF2_HMAC: SCRAM always asks for
 * exactly one hash-sized block, so each iteration is two compression-function calls on the
 * HMAC key's precomputed inner and outer states. OpenSSL's generic KDF spends more than twice
 * that per iteration in its EVP layers, and this runs for every PLAIN login and every account
 * created. The unit tests check it against PKCS5_PBKDF2_HMAC and the RFC test vectors. */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA1_Transform, SHA256_Transform: the compression functions */
#include "core/scram.h"

#include <endian.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
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

/* One hash function's compression state, as the two PBKDF2 loops need it. */
typedef struct pbkdf2_state {
    union {
        SHA_CTX sha1;
        SHA256_CTX sha256;
    } u;
} pbkdf2_state;

/* Writes a state's chaining value big-endian: the digest of a message that ended on a block. */
static void state_digest(scram_hash h, const pbkdf2_state *st, uint8_t *out)
{
    if (h == SCRAM_SHA1) {
        const SHA_LONG v[5] = {st->u.sha1.h0, st->u.sha1.h1, st->u.sha1.h2, st->u.sha1.h3,
                               st->u.sha1.h4};
        for (int i = 0; i < 5; i++) {
            uint32_t be = htobe32(v[i]);
            memcpy(out + 4 * i, &be, 4);
        }
    } else {
        for (int i = 0; i < 8; i++) {
            uint32_t be = htobe32(st->u.sha256.h[i]);
            memcpy(out + 4 * i, &be, 4);
        }
    }
}

/* The state after hashing one 64-byte block (the HMAC key xor a pad). */
static void state_after_block(scram_hash h, const uint8_t block[64], pbkdf2_state *st)
{
    if (h == SCRAM_SHA1) {
        SHA1_Init(&st->u.sha1);
        SHA1_Update(&st->u.sha1, block, 64);
    } else {
        SHA256_Init(&st->u.sha256);
        SHA256_Update(&st->u.sha256, block, 64);
    }
}

static void state_transform(scram_hash h, pbkdf2_state *st, const uint8_t block[64])
{
    if (h == SCRAM_SHA1)
        SHA1_Transform(&st->u.sha1, block);
    else
        SHA256_Transform(&st->u.sha256, block);
}

void scram_salted_password(scram_hash h, const char *prepared, size_t len, const uint8_t *salt,
                           size_t salt_len, uint32_t iterations, uint8_t out[SCRAM_MAX_KEY])
{
    size_t hlen = scram_key_len(h);
    uint8_t key[64] = {0}, pad[64];
    if (len > sizeof(key))
        scram_digest(h, prepared, len, key);
    else
        memcpy(key, prepared, len);
    pbkdf2_state inner, outer;
    for (int i = 0; i < 64; i++)
        pad[i] = key[i] ^ 0x36;
    state_after_block(h, pad, &inner);
    for (int i = 0; i < 64; i++)
        pad[i] = key[i] ^ 0x5c;
    state_after_block(h, pad, &outer);

    /* U1 = HMAC(password, salt || INT(1)), the only iteration with a variable-length input. */
    uint8_t u[SCRAM_MAX_KEY], t[SCRAM_MAX_KEY];
    uint8_t *first = mem_alloc(salt_len + 4);
    memcpy(first, salt, salt_len);
    memcpy(first + salt_len, "\0\0\0\1", 4);
    scram_hmac(h, key, len > sizeof(key) ? hlen : len, first, salt_len + 4, u);
    free(first);
    memcpy(t, u, hlen);

    /* Ui = HMAC(password, Ui-1): a digest-sized message after a 64-byte pad fits one padded
     * block, so each HMAC is one compression on each precomputed state. */
    uint8_t block[64] = {0};
    block[hlen] = 0x80;
    uint64_t bits = (64 + hlen) * 8;
    for (int i = 0; i < 8; i++)
        block[63 - i] = (uint8_t)(bits >> (8 * i));
    for (uint32_t k = 1; k < iterations; k++) {
        pbkdf2_state st = inner;
        memcpy(block, u, hlen);
        state_transform(h, &st, block);
        state_digest(h, &st, block);
        st = outer;
        state_transform(h, &st, block);
        state_digest(h, &st, u);
        for (size_t j = 0; j < hlen; j++)
            t[j] ^= u[j];
    }
    memcpy(out, t, hlen);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(&inner, sizeof(inner));
    OPENSSL_cleanse(&outer, sizeof(outer));
    OPENSSL_cleanse(u, sizeof(u));
    OPENSSL_cleanse(t, sizeof(t));
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
