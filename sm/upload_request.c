/* sm/upload_request.c — a slot request read strictly, and the slot's signed URLs (upload.h). The
 * filename is kept as the client gave it, or refused: nothing here rewrites it, so what the
 * client asked for is what the URL names, and what a store writes is one path segment. */
#include "sm/upload.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "core/upload_sign.h"
#include "core/utf8.h"

static bool filename_ok(const char *f)
{
    size_t len = strlen(f);
    if (!len || len > UPLOAD_FILENAME_MAX || !strcmp(f, ".") || !strcmp(f, "..") ||
        utf8_scan(f, len) < 0)
        return false;
    for (const unsigned char *p = (const unsigned char *)f; *p; p++) {
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return false;
        /* C1 controls, U+0080..U+009F: 0xC2 then 0x80..0x9F. */
        if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return false;
    }
    return true;
}

/* Decimal digits only; a number past UINT64_MAX saturates (it is too large, not malformed). */
static bool size_read(const char *s, uint64_t *out)
{
    if (!*s)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return v > 0;
}

/* RFC 6838 §4.2 restricted-name: a letter or digit, then up to 126 of those and "!#$&-^_.+". */
static const char *restricted_name(const char *p)
{
    const char *start = p;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
        return NULL;
    for (p++; *p && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("!#$&-^_.+", *p));
         p++)
        ;
    return p - start <= 127 ? p : NULL;
}

/* RFC 9110 §5.6.2 token: one or more tchar. */
static const char *token(const char *p)
{
    const char *start = p;
    while (*p && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-.^_`|~", *p)))
        p++;
    return p > start ? p : NULL;
}

/* RFC 9110 §5.6.4 quoted-string, without obs-text (ASCII only). */
static const char *quoted(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\')
            p++;
        if (!*p || (*p < 0x20 && *p != '\t') || *p == 0x7f || (unsigned char)*p >= 0x80)
            return NULL;
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* type "/" subtype *( OWS ";" OWS name "=" ( token / quoted-string ) ) */
static bool type_ok(const char *t)
{
    if (strlen(t) > UPLOAD_TYPE_MAX)
        return false;
    const char *p = restricted_name(t);
    if (!p || *p++ != '/' || !(p = restricted_name(p)))
        return false;
    while (*(p = ows(p))) {
        if (*p != ';' || !(p = token(ows(p + 1))) || *p++ != '=')
            return false;
        if (!(p = *p == '"' ? quoted(p) : token(p)))
            return false;
    }
    return true;
}

upload_check upload_request_read(const char *filename, const char *size, const char *content_type,
                                 uint64_t max_size, upload_request *out)
{
    *out = (upload_request){.filename = filename, .content_type = content_type ? content_type : ""};
    if (!filename || !filename_ok(filename))
        return UPLOAD_BAD_FILENAME;
    if (!size || !size_read(size, &out->size))
        return UPLOAD_BAD_SIZE;
    if (*out->content_type && !type_ok(out->content_type))
        return UPLOAD_BAD_TYPE;
    return out->size > max_size ? UPLOAD_TOO_LARGE : UPLOAD_OK;
}

const char *upload_check_text(upload_check c)
{
    switch (c) {
    case UPLOAD_OK:
        return "";
    case UPLOAD_BAD_FILENAME:
        return "the filename must be 1 to 255 bytes of UTF-8 without '/' or control characters, "
               "and not '.' or '..'";
    case UPLOAD_BAD_SIZE:
        return "the size must be a decimal number of bytes, at least 1";
    case UPLOAD_BAD_TYPE:
        return "the content-type must be a MIME type (type/subtype, with parameters)";
    case UPLOAD_TOO_LARGE:
        return "the file is too large";
    }
    return "";
}

void upload_slot_urls(buf *put, buf *get, const char *base, const char *slot,
                      const upload_request *req, int64_t expires, const void *secret,
                      size_t secret_len)
{
    buf where = BUF_INIT;
    buf_appendf(&where, "%s/%s", slot, req->filename);
    buf_append(&where, "", 1);
    char sig[UPLOAD_SIG_HEX + 1];
    upload_sign(secret, secret_len, buf_data(&where), req->size, req->content_type, expires, sig);
    buf_truncate(&where, 0);
    buf_appendf(&where, "%s/%s/", base, slot);
    upload_url_escape(&where, req->filename);
    buf_append(get, buf_data(&where), buf_len(&where));
    buf_append(put, buf_data(&where), buf_len(&where));
    buf_appendf(put, "?e=%" PRId64 "&s=%" PRIu64 "&t=", expires, req->size);
    upload_url_escape(put, req->content_type);
    buf_appendf(put, "&sig=%s", sig);
    buf_free(&where);
}
