/* smproto/smacks_msg.c — the stream management messages' codec (see smacks_msg.h). */
#include "smproto/smacks_msg.h"

#include <string.h>

#include "core/bytes.h"

void smacks_msg_put(buf *out, const smacks_msg *m)
{
    bytes_put_u8(out, (uint8_t)m->kind);
    switch (m->kind) {
    case SMACKS_ENABLE:
        bytes_put_u8(out, m->resume);
        bytes_put_u32(out, m->max);
        break;
    case SMACKS_R:
        bytes_put_u64(out, m->in_count);
        bytes_put_u64(out, m->in_local);
        break;
    case SMACKS_ACK:
        bytes_put_u64(out, m->client_h);
        bytes_put_u64(out, m->sm_acked);
        bytes_put_u64(out, m->in_local);
        break;
    case SMACKS_RESUME:
        bytes_put_str(out, m->host);
        bytes_put_str(out, m->user);
        bytes_put_str(out, m->id);
        bytes_put_u32(out, m->wire_h);
        break;
    case SMACKS_CLOSE:
        break;
    case SMACKS_SKIP:
        bytes_put_u64(out, m->seq);
        break;
    case SMACKS_SYNC:
        bytes_put_u64(out, m->sm_received);
        bytes_put_u64(out, m->sm_acked);
        bytes_put_u64(out, m->in_count);
        bytes_put_u64(out, m->in_local);
        break;
    case SMACKS_ENABLED:
        bytes_put_str(out, m->id);
        bytes_put_u32(out, m->max);
        break;
    case SMACKS_FAILED:
        bytes_put_u8(out, (uint8_t)m->condition);
        bytes_put_u8(out, m->has_h);
        bytes_put_u32(out, m->wire_h);
        break;
    case SMACKS_A:
        bytes_put_u64(out, m->h);
        break;
    case SMACKS_RESUMED:
        bytes_put_str(out, m->jid);
        bytes_put_str(out, m->id);
        bytes_put_u64(out, m->h);
        bytes_put_u64(out, m->client_h);
        bytes_put_u64(out, m->sm_acked);
        bytes_put_u32(out, m->max);
        bytes_put_str(out, m->presence);
        break;
    }
}

bool smacks_msg_get(const uint8_t *body, size_t len, smacks_msg *out)
{
    bytes_reader c = bytes_reader_of(body, len);
    smacks_msg m = {0};
    m.kind = (smacks_kind)bytes_get_u8(&c);
    switch (m.kind) {
    case SMACKS_ENABLE:
        m.resume = bytes_get_bool(&c);
        m.max = bytes_get_u32(&c);
        break;
    case SMACKS_R:
        m.in_count = bytes_get_u64(&c);
        m.in_local = bytes_get_u64(&c);
        break;
    case SMACKS_ACK:
        m.client_h = bytes_get_u64(&c);
        m.sm_acked = bytes_get_u64(&c);
        m.in_local = bytes_get_u64(&c);
        break;
    case SMACKS_RESUME:
        m.host = bytes_get_str(&c, SMACKS_STR_MAX);
        m.user = bytes_get_str(&c, SMACKS_STR_MAX);
        m.id = bytes_get_str(&c, SMACKS_ID_MAX);
        m.wire_h = bytes_get_u32(&c);
        break;
    case SMACKS_CLOSE:
        break;
    case SMACKS_SKIP:
        m.seq = bytes_get_u64(&c);
        break;
    case SMACKS_SYNC:
        m.sm_received = bytes_get_u64(&c);
        m.sm_acked = bytes_get_u64(&c);
        m.in_count = bytes_get_u64(&c);
        m.in_local = bytes_get_u64(&c);
        if (m.sm_acked > m.sm_received)
            c.ok = false;
        break;
    case SMACKS_ENABLED:
        m.id = bytes_get_str(&c, SMACKS_ID_MAX);
        m.max = bytes_get_u32(&c);
        break;
    case SMACKS_FAILED:
        m.condition = (smacks_condition)bytes_get_u8(&c);
        m.has_h = bytes_get_bool(&c);
        m.wire_h = bytes_get_u32(&c);
        if (m.condition > SMACKS_CONDITION_MAX || (!m.has_h && m.wire_h))
            c.ok = false;
        break;
    case SMACKS_A:
        m.h = bytes_get_u64(&c);
        break;
    case SMACKS_RESUMED:
        m.jid = bytes_get_str(&c, SMACKS_STR_MAX);
        m.id = bytes_get_str(&c, SMACKS_ID_MAX);
        m.h = bytes_get_u64(&c);
        m.client_h = bytes_get_u64(&c);
        m.sm_acked = bytes_get_u64(&c);
        m.max = bytes_get_u32(&c);
        m.presence = bytes_get_str(&c, len);
        break;
    default:
        return false;
    }
    if (!bytes_done(&c))
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
