/* sm/upload.h — what mod_upload (HTTP File Upload, XEP-0363; docs/upload.md) is made of, apart
 * from the module: reading a slot request's attributes strictly, and the slot's URLs. Both are
 * socket-free and stateless, so the unit tests drive them with any input.
 *
 * Thread rules: none (pure functions).
 */
#ifndef JABSHARD_SM_UPLOAD_H
#define JABSHARD_SM_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define UPLOAD_NS "urn:xmpp:http:upload:0"
#define UPLOAD_FILENAME_MAX 255     /* bytes */
#define UPLOAD_TYPE_MAX 255         /* bytes of a content type */
#define UPLOAD_SLOT_HEX 32          /* a slot id: 128 random bits in lowercase hex */

/* What a request is, once read; refusals in the order they are checked. */
typedef enum {
    UPLOAD_OK,
    UPLOAD_BAD_FILENAME,    /* absent, empty, "." or "..", a '/', a control character (C0, DEL,
                             * C1), not UTF-8, or over UPLOAD_FILENAME_MAX bytes */
    UPLOAD_BAD_SIZE,        /* absent, not only decimal digits ("1e9", "-1", "+1", " 1"), or 0 */
    UPLOAD_BAD_TYPE,        /* not a MIME type (RFC 6838 type/subtype, RFC 9110 parameters), or
                             * over UPLOAD_TYPE_MAX bytes; absent or "" is none, and passes */
    UPLOAD_TOO_LARGE,       /* a size over the most allowed (a number past 2^64 - 1 too) */
} upload_check;

typedef struct upload_request {
    const char *filename;       /* the caller's strings, as given */
    const char *content_type;   /* "" when none */
    uint64_t size;              /* UINT64_MAX when the number did not fit */
} upload_request;

/* Reads a <request/>'s filename, size and content-type attributes (NULL: absent) against the
 * largest size allowed; out is filled as far as it was read. */
upload_check upload_request_read(const char *filename, const char *size, const char *content_type,
                                 uint64_t max_size, upload_request *out);
/* What is wrong, for the error's text (UPLOAD_OK: ""). */
const char *upload_check_text(upload_check c);

/* The slot's URLs (core/upload_sign.h has the scheme) under base (no trailing '/'), appended to
 * put and get. slot is UPLOAD_SLOT_HEX lowercase hex characters. */
void upload_slot_urls(buf *put, buf *get, const char *base, const char *slot,
                      const upload_request *req, int64_t expires, const void *secret,
                      size_t secret_len);

#endif
