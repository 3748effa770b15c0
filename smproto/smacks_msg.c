/* smproto/smacks_msg.c — the stream management messages' codec (see smacks_msg.h). */
#include "smproto/smacks_msg.h"

#include <string.h>

#include "core/utf8.h"

static void put_u32(buf *out, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_append(out, b, 4);
}

static void put_u64(buf *out, uint64_t v)
{
    put_u32(out, (uint32_t)(v >> 32));
    put_u32(out, (uint32_t)v);
}

static void put_u8(buf *out, uint8_t v) { buf_append(out, &v, 1); }

static void put_str(buf *out, const char *s) { buf_append(out, s ? s : "", strlen(s ? s : "") + 1); }

void smacks_msg_put(buf *out, const smacks_msg *m)
{
    put_u8(out, (uint8_t)m->kind);
    switch (m->kind) {
    case SMACKS_ENABLE:
        put_u8(out, m->resume);
        put_u32(out, m->max);
        break;
    case SMACKS_R:
        put_u64(out, m->in_count);
        put_u64(out, m->in_local);
        break;
    case SMACKS_ACK:
        put_u64(out, m->client_h);
        put_u64(out, m->sm_acked);
        put_u64(out, m->in_local);
        break;
    case SMACKS_RESUME:
        put_str(out, m->host);
        put_str(out, m->user);
        put_str(out, m->id);
        put_u32(out, m->wire_h);
        break;
    case SMACKS_CLOSE:
        break;
    case SMACKS_SYNC:
        put_u64(out, m->sm_received);
        put_u64(out, m->sm_acked);
        put_u64(out, m->in_count);
        put_u64(out, m->in_local);
        break;
    case SMACKS_ENABLED:
        put_str(out, m->id);
        put_u32(out, m->max);
        break;
    case SMACKS_FAILED:
        put_u8(out, (uint8_t)m->condition);
        put_u8(out, m->has_h);
        put_u32(out, m->wire_h);
        break;
    case SMACKS_A:
        put_u64(out, m->h);
        break;
    case SMACKS_RESUMED:
        put_str(out, m->jid);
        put_str(out, m->id);
        put_u64(out, m->h);
        put_u64(out, m->client_h);
        put_u64(out, m->sm_acked);
        put_u32(out, m->max);
        put_str(out, m->presence);
        break;
    }
}

/* ---- decoding: a bounds-checked cursor ---- */

typedef struct cursor {
    const uint8_t *p, *end;
    bool ok;
} cursor;

static uint8_t get_u8(cursor *c)
{
    if (!c->ok || c->p == c->end) {
        c->ok = false;
        return 0;
    }
    return *c->p++;
}

static uint32_t get_u32(cursor *c)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | get_u8(c);
    return v;
}

static uint64_t get_u64(cursor *c)
{
    uint64_t hi = get_u32(c);
    return hi << 32 | get_u32(c);
}

static bool get_bool(cursor *c)
{
    uint8_t v = get_u8(c);
    if (v > 1)
        c->ok = false;
    return v == 1;
}

/* A NUL-terminated UTF-8 string of at most max bytes. */
static const char *get_str(cursor *c, size_t max)
{
    if (!c->ok)
        return NULL;
    const uint8_t *nul = memchr(c->p, 0, (size_t)(c->end - c->p));
    if (!nul || (size_t)(nul - c->p) > max || utf8_scan(c->p, (size_t)(nul - c->p)) < 0) {
        c->ok = false;
        return NULL;
    }
    const char *s = (const char *)c->p;
    c->p = nul + 1;
    return s;
}

bool smacks_msg_get(const uint8_t *body, size_t len, smacks_msg *out)
{
    cursor c = {body, body + len, true};
    smacks_msg m = {0};
    m.kind = (smacks_kind)get_u8(&c);
    switch (m.kind) {
    case SMACKS_ENABLE:
        m.resume = get_bool(&c);
        m.max = get_u32(&c);
        break;
    case SMACKS_R:
        m.in_count = get_u64(&c);
        m.in_local = get_u64(&c);
        break;
    case SMACKS_ACK:
        m.client_h = get_u64(&c);
        m.sm_acked = get_u64(&c);
        m.in_local = get_u64(&c);
        break;
    case SMACKS_RESUME:
        m.host = get_str(&c, SMACKS_STR_MAX);
        m.user = get_str(&c, SMACKS_STR_MAX);
        m.id = get_str(&c, SMACKS_ID_MAX);
        m.wire_h = get_u32(&c);
        break;
    case SMACKS_CLOSE:
        break;
    case SMACKS_SYNC:
        m.sm_received = get_u64(&c);
        m.sm_acked = get_u64(&c);
        m.in_count = get_u64(&c);
        m.in_local = get_u64(&c);
        if (m.sm_acked > m.sm_received)
            c.ok = false;
        break;
    case SMACKS_ENABLED:
        m.id = get_str(&c, SMACKS_ID_MAX);
        m.max = get_u32(&c);
        break;
    case SMACKS_FAILED:
        m.condition = (smacks_condition)get_u8(&c);
        m.has_h = get_bool(&c);
        m.wire_h = get_u32(&c);
        if (m.condition > SMACKS_CONDITION_MAX || (!m.has_h && m.wire_h))
            c.ok = false;
        break;
    case SMACKS_A:
        m.h = get_u64(&c);
        break;
    case SMACKS_RESUMED:
        m.jid = get_str(&c, SMACKS_STR_MAX);
        m.id = get_str(&c, SMACKS_ID_MAX);
        m.h = get_u64(&c);
        m.client_h = get_u64(&c);
        m.sm_acked = get_u64(&c);
        m.max = get_u32(&c);
        m.presence = get_str(&c, len);
        break;
    default:
        return false;
    }
    if (!c.ok || c.p != c.end)
        return false;
    *out = m;
    return true;
}

const char *smacks_condition_name(smacks_condition c)
{
    static const char *const names[] = {
        [SMACKS_ITEM_NOT_FOUND] = "item-not-found",
        [SMACKS_UNEXPECTED_REQUEST] = "unexpected-request",
        [SMACKS_FEATURE_NOT_IMPLEMENTED] = "feature-not-implemented",
        [SMACKS_UNDEFINED_CONDITION] = "undefined-condition",
    };
    return c <= SMACKS_CONDITION_MAX ? names[c] : "undefined-condition";
}
