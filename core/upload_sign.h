/* core/upload_sign.h — the signature of HTTP File Upload (XEP-0363) slots, shared by the SM, which
 * hands out PUT URLs carrying it (sm/mod_upload.c), and the stores that take the PUTs and check
 * it (the fronts' HTTP listener, or an external store): socket-free, no state.
 *
 * A slot's URLs, under the configured base <url> (docs/upload.md):
 *   PUT <url>/<slot-id>/<escaped filename>?e=<expires>&s=<size>&t=<escaped content type>&sig=<hex>
 *   GET <url>/<slot-id>/<escaped filename>
 * slot-id is 32 lowercase hex characters (128 bits from the CSPRNG): unguessable, so the GET
 * needs no signature. The signature covers everything the PUT may do:
 *   lowercase hex of HMAC-SHA256(secret,
 *       "jabshard-upload-v1\n" path "\n" size "\n" content_type "\n" expires)
 * path: "<slot-id>/<filename>" with the filename percent-DECODED (raw UTF-8); size: decimal bytes;
 * content_type: as the client asked ("" when it gave none); expires: Unix seconds, decimal. The SM
 * never signs a field holding a newline or any other control character, so a verifier refuses
 * those before checking (the fields could otherwise be split differently).
 *
 * Thread rules: none (pure functions).
 */
#ifndef JABSHARD_CORE_UPLOAD_SIGN_H
#define JABSHARD_CORE_UPLOAD_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define UPLOAD_SIG_HEX 64

/* The signature of a PUT (above), NUL-terminated, into out. */
void upload_sign(const void *secret, size_t secret_len, const char *path, uint64_t size,
                 const char *content_type, int64_t expires, char out[UPLOAD_SIG_HEX + 1]);
/* Constant-time check of a hex signature against the expected one: true only for exactly
 * UPLOAD_SIG_HEX lowercase hex characters equal to upload_sign's. */
bool upload_sign_check(const void *secret, size_t secret_len, const char *path, uint64_t size,
                       const char *content_type, int64_t expires, const char *sig_hex);
/* Percent-encodes s for a URL path segment or query value into out (appended): the unreserved
 * characters of RFC 3986 (letters, digits, "-._~") are kept, every other byte is %XX (uppercase). */
void upload_url_escape(buf *out, const char *s);

#endif
