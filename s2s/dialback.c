/* s2s/dialback.c — dialback keys (see dialback.h). */
#include "s2s/dialback.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void dialback_key(const char *secret, const char *receiving, const char *originating,
                  const char *stream_id, char out[DIALBACK_KEY_LEN + 1])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hkey[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const unsigned char *)secret, strlen(secret), digest);
    hex(digest, sizeof digest, hkey);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t n = 0;
    if (ctx && EVP_MAC_init(ctx, (const unsigned char *)hkey, strlen(hkey), params) &&
        EVP_MAC_update(ctx, (const unsigned char *)receiving, strlen(receiving)) &&
        EVP_MAC_update(ctx, (const unsigned char *)" ", 1) &&
        EVP_MAC_update(ctx, (const unsigned char *)originating, strlen(originating)) &&
        EVP_MAC_update(ctx, (const unsigned char *)" ", 1) &&
        EVP_MAC_update(ctx, (const unsigned char *)stream_id, strlen(stream_id)) &&
        EVP_MAC_final(ctx, digest, &n, sizeof digest) && n == sizeof digest) {
        hex(digest, n, out);
    } else {
        /* OpenSSL without HMAC: a key nobody can match, never a guessable one. */
        memset(out, 'x', DIALBACK_KEY_LEN);
        out[DIALBACK_KEY_LEN] = '\0';
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

bool dialback_key_check(const char *secret, const char *receiving, const char *originating,
                        const char *stream_id, const char *key)
{
    char want[DIALBACK_KEY_LEN + 1];
    dialback_key(secret, receiving, originating, stream_id, want);
    return strlen(key) == DIALBACK_KEY_LEN && want[0] != 'x' &&
           CRYPTO_memcmp(want, key, DIALBACK_KEY_LEN) == 0;
}
