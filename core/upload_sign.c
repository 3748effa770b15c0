/* core/upload_sign.c — HTTP File Upload signatures (upload_sign.h): HMAC-SHA256 over the slot's
 * canonical string, OpenSSL's one-shot HMAC, and the URL escaping both ends agree on. */
#include "core/upload_sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define UPLOAD_SIGN_PREFIX "jabshard-upload-v1\n"

static const char hex_digits[] = "0123456789abcdef";

void upload_sign(const void *secret, size_t secret_len, const char *path, uint64_t size,
                 const char *content_type, int64_t expires, char out[UPLOAD_SIG_HEX + 1])
{
    buf msg = BUF_INIT;
    buf_appendf(&msg, UPLOAD_SIGN_PREFIX "%s\n%" PRIu64 "\n%s\n%" PRId64, path, size,
                content_type ? content_type : "", expires);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    /* A zero-length key is still a key to HMAC; OpenSSL wants a non-NULL pointer for it. */
    HMAC(EVP_sha256(), secret_len ? secret : "", (int)secret_len,
         (const unsigned char *)buf_data(&msg), buf_len(&msg), mac, &maclen);
    buf_free(&msg);
    for (unsigned i = 0; i < maclen && i < UPLOAD_SIG_HEX / 2; i++) {
        out[2 * i] = hex_digits[mac[i] >> 4];
        out[2 * i + 1] = hex_digits[mac[i] & 15];
    }
    out[UPLOAD_SIG_HEX] = '\0';
    OPENSSL_cleanse(mac, sizeof mac);
}

bool upload_sign_check(const void *secret, size_t secret_len, const char *path, uint64_t size,
                       const char *content_type, int64_t expires, const char *sig_hex)
{
    if (!sig_hex || strnlen(sig_hex, UPLOAD_SIG_HEX + 1) != UPLOAD_SIG_HEX)
        return false;
    char want[UPLOAD_SIG_HEX + 1];
    upload_sign(secret, secret_len, path, size, content_type, expires, want);
    return CRYPTO_memcmp(want, sig_hex, UPLOAD_SIG_HEX) == 0;
}

void upload_url_escape(buf *out, const char *s)
{
    static const char upper[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            buf_append(out, p, 1);
        } else {
            char e[3] = {'%', upper[c >> 4], upper[c & 15]};
            buf_append(out, e, 3);
        }
    }
}
