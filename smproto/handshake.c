/* smproto/handshake.c — XEP-0114 stream ids and handshake digests for the smproto link. */
#include "smproto/handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/random.h"

void smproto_handshake_stream_id(char out[SMPROTO_STREAM_ID_LEN + 1])
{
    random_token(out, SMPROTO_STREAM_ID_LEN);
}

void smproto_handshake_digest(const char *stream_id, const char *secret,
                              char out[SMPROTO_DIGEST_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    /* Two updates rather than a concatenated copy: the secret is not spread around memory. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) ||
        !EVP_DigestUpdate(ctx, stream_id, strlen(stream_id)) ||
        !EVP_DigestUpdate(ctx, secret, strlen(secret)) || !EVP_DigestFinal_ex(ctx, md, &md_len) ||
        md_len * 2 != SMPROTO_DIGEST_LEN) {
        fprintf(stderr, "jabshard: SHA-1 unavailable for the component handshake\n");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[SMPROTO_DIGEST_LEN] = '\0';
}

bool smproto_handshake_check(const char *stream_id, const char *secret, const char *received)
{
    char want[SMPROTO_DIGEST_LEN + 1], got[SMPROTO_DIGEST_LEN];
    /* The length is public (every valid digest has it); only the content must not leak. */
    if (strlen(received) != SMPROTO_DIGEST_LEN)
        return false;
    smproto_handshake_digest(stream_id, secret, want);
    /* Folding A-F to a-f leaves every other byte as it is, so a non-hex character still differs
     * from the lower-case hex it is compared with. */
    for (size_t i = 0; i < SMPROTO_DIGEST_LEN; i++) {
        char c = received[i];
        got[i] = c >= 'A' && c <= 'F' ? (char)(c + ('a' - 'A')) : c;
    }
    bool ok = CRYPTO_memcmp(want, got, SMPROTO_DIGEST_LEN) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}
