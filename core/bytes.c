/* core/bytes.c — small binary records (see bytes.h). */
#include "core/bytes.h"

#include <string.h>

#include "core/utf8.h"

void bytes_put_u8(buf *out, uint8_t v) { buf_append(out, &v, 1); }

void bytes_put_u32(buf *out, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_append(out, b, 4);
}

void bytes_put_u64(buf *out, uint64_t v)
{
    bytes_put_u32(out, (uint32_t)(v >> 32));
    bytes_put_u32(out, (uint32_t)v);
}

void bytes_put_str(buf *out, const char *s)
{
    buf_append(out, s ? s : "", strlen(s ? s : "") + 1);
}

void bytes_put_blob(buf *out, const void *p, size_t len)
{
    bytes_put_u32(out, (uint32_t)len);
    buf_append(out, p, len);
}

bytes_reader bytes_reader_of(const void *data, size_t len)
{
    const uint8_t *p = data ? data : (const uint8_t *)"";
    return (bytes_reader){p, p + (data ? len : 0), true};
}

uint8_t bytes_get_u8(bytes_reader *r)
{
    if (!r->ok || r->p == r->end) {
        r->ok = false;
        return 0;
    }
    return *r->p++;
}

uint32_t bytes_get_u32(bytes_reader *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | bytes_get_u8(r);
    return v;
}

uint64_t bytes_get_u64(bytes_reader *r)
{
    uint64_t hi = bytes_get_u32(r);
    return hi << 32 | bytes_get_u32(r);
}

bool bytes_get_bool(bytes_reader *r)
{
    uint8_t v = bytes_get_u8(r);
    if (v > 1)
        r->ok = false;
    return v == 1;
}

const char *bytes_get_str(bytes_reader *r, size_t max)
{
    if (!r->ok)
        return NULL;
    const uint8_t *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
    if (!nul || (size_t)(nul - r->p) > max || utf8_scan(r->p, (size_t)(nul - r->p)) < 0) {
        r->ok = false;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p = nul + 1;
    return s;
}

const uint8_t *bytes_get_blob(bytes_reader *r, size_t max, size_t *len)
{
    uint32_t n = bytes_get_u32(r);
    if (!r->ok || n > max || (size_t)(r->end - r->p) < n) {
        r->ok = false;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    *len = n;
    return p;
}

bool bytes_done(const bytes_reader *r) { return r->ok && r->p == r->end; }
