/* tests/bench/loadgen/lg_sm.c — XEP-0198 client state: counters with wrap-around, the queue of
 * unacknowledged stanzas, the resumption id (see lg_sm.h).
 *
 * The queue keeps the stanzas' bytes back to back in one buf and their lengths in a ring, so that
 * an ack drops a prefix with one buf_consume and a resume sends the whole rest with one write. */
#include "tests/bench/loadgen/lg_sm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/xml_write.h"

void lg_sm_init(lg_sm *s)
{
    *s = (lg_sm){0};
}

void lg_sm_clear(lg_sm *s)
{
    free(s->id);
    buf_free(&s->queue);
    free(s->lens);
    lg_sm_init(s);
}

static void sm_set_id(lg_sm *s, const char *id)
{
    free(s->id);
    s->id = id && *id ? mem_strdup(id) : NULL;
}

size_t lg_sm_enable_sent(lg_sm *s)
{
    sm_set_id(s, NULL);
    s->active = true;
    s->h_in = 0;
    s->acked = 0;
    s->h_out = (uint32_t)s->count;
    s->since_r = 0;
    return s->count;
}

void lg_sm_enabled(lg_sm *s, const char *id)
{
    sm_set_id(s, id);
}

void lg_sm_forget(lg_sm *s)
{
    sm_set_id(s, NULL);
    s->active = false;
}

bool lg_sm_sent(lg_sm *s, const char *data, size_t len, bool message, unsigned ack_every)
{
    if (!s->active)
        return false;
    if (s->count == s->cap) {
        /* Grow, unrolling the ring so that it starts at 0 again. */
        size_t cap = s->cap ? s->cap * 2 : 8;
        uint32_t *lens = mem_array(cap, sizeof(*lens));
        for (size_t i = 0; i < s->count; i++)
            lens[i] = s->lens[(s->head + i) % s->cap];
        free(s->lens);
        s->lens = lens;
        s->cap = cap;
        s->head = 0;
    }
    s->lens[(s->head + s->count) % s->cap] = (uint32_t)len;
    s->count++;
    s->h_out++;
    buf_append(&s->queue, data, len);
    if (!message || !ack_every || ++s->since_r < ack_every)
        return false;
    s->since_r = 0;
    return true;
}

int64_t lg_sm_ack(lg_sm *s, uint32_t h)
{
    uint32_t n = h - s->acked;   /* mod 2^32: the count since the last ack, wrap or not */
    if (n > s->count)
        return -1;
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        bytes += s->lens[s->head];
        s->head = (s->head + 1) % s->cap;
    }
    s->count -= n;
    buf_consume(&s->queue, bytes);
    if (!s->count) {
        buf_free(&s->queue);   /* an idle, fully acknowledged session holds no queue memory */
        s->head = 0;
    }
    s->acked = h;
    return n;
}

int64_t lg_sm_resumed(lg_sm *s, uint32_t h)
{
    int64_t n = lg_sm_ack(s, h);
    s->active = true;
    s->since_r = 0;
    return n;
}

bool lg_sm_parse_h(const char *text, uint32_t *h)
{
    if (!text || *text < '0' || *text > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v > UINT32_MAX)
        return false;
    *h = (uint32_t)v;
    return true;
}

void lg_sm_stats_free(lg_sm_stats *st)
{
    lg_samples_free(&st->resume_latency);
}

/* ---- the protocol ---------------------------------------------------------------------------- */

void lg_sm_enable(lg_sm *s, lg_sm_stats *st, buf *out)
{
    buf_append(out, "<enable xmlns='" LG_SM_NS "' resume='true'/>",
               sizeof("<enable xmlns='" LG_SM_NS "' resume='true'/>") - 1);
    st->resent += lg_sm_enable_sent(s);
    buf_append(out, lg_sm_queued(s), lg_sm_queued_len(s));
    s->pending = LG_SM_PENDING_ENABLE;
}

void lg_sm_resume(lg_sm *s, buf *out)
{
    buf_appendf(out, "<resume xmlns='" LG_SM_NS "' h='%" PRIu32 "' previd='", s->h_in);
    xml_write_attr_value(out, s->id, strlen(s->id));
    buf_append(out, "'/>", 3);
    s->pending = LG_SM_PENDING_RESUME;
}

static bool sm_true(const char *v)
{
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

lg_sm_event lg_sm_input(lg_sm *s, const xml_node *el, lg_sm_stats *st, buf *out)
{
    if (!xml_is(el, LG_SM_NS, NULL))
        return LG_SM_NOT_OURS;
    uint32_t h;
    bool has_h = lg_sm_parse_h(xml_attr_get(el, "h"), &h);
    uint8_t pending = s->pending;
    if (strcmp(el->name, "r") == 0 && s->active) {
        st->requests++;
        buf_appendf(out, "<a xmlns='" LG_SM_NS "' h='%" PRIu32 "'/>", s->h_in);
        return LG_SM_HANDLED;
    }
    if (strcmp(el->name, "a") == 0 && s->active) {
        if (has_h && lg_sm_ack(s, h) >= 0)
            return LG_SM_HANDLED;
    } else if (strcmp(el->name, "enabled") == 0 && pending == LG_SM_PENDING_ENABLE) {
        s->pending = LG_SM_PENDING_NONE;
        lg_sm_enabled(s, sm_true(xml_attr_get(el, "resume")) ? xml_attr_get(el, "id") : NULL);
        st->enabled++;
        return LG_SM_ENABLED;
    } else if (strcmp(el->name, "resumed") == 0 && pending == LG_SM_PENDING_RESUME) {
        s->pending = LG_SM_PENDING_NONE;
        int64_t acked = has_h ? lg_sm_resumed(s, h) : -1;
        if (acked < 0) {
            lg_sm_resumed(s, s->acked);   /* active again; everything queued goes again */
            st->bad_acks++;
        }
        st->resumed++;
        st->resent += lg_sm_queued_count(s);
        if (lg_sm_queued_count(s)) {
            buf_append(out, lg_sm_queued(s), lg_sm_queued_len(s));
            buf_append(out, LG_SM_REQUEST, sizeof(LG_SM_REQUEST) - 1);
        }
        return LG_SM_RESUMED;
    } else if (strcmp(el->name, "failed") == 0 && pending != LG_SM_PENDING_NONE) {
        s->pending = LG_SM_PENDING_NONE;
        if (pending == LG_SM_PENDING_ENABLE) {
            st->enable_failed++;
            lg_sm_clear(s);
            return LG_SM_ENABLE_FAILED;
        }
        if (has_h && lg_sm_ack(s, h) < 0)
            st->bad_acks++;
        st->resume_failed++;
        lg_sm_forget(s);
        return LG_SM_RESUME_FAILED;
    }
    st->bad_acks++;
    return LG_SM_BAD;
}
