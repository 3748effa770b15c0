/* shard/smacks.c — XEP-0198's front half: counters, the unacknowledged record, nonzas (see
 * smacks.h). */
#include "shard/smacks.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/xml_write.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

smacks *smacks_new(void) { return mem_zalloc(sizeof(smacks)); }

void smacks_free(smacks *sm)
{
    if (!sm)
        return;
    free(sm->ring);
    free(sm);
}

void smacks_in(smacks *sm, bool local)
{
    sm->in_count++;
    if (local)
        sm->in_local++;
}

static bool bit_get(const smacks *sm, uint64_t i)
{
    uint64_t at = i & (sm->ring_bits - 1);
    return sm->ring[at / 64] >> (at % 64) & 1;
}

static void bit_set(smacks *sm, uint64_t i, bool v)
{
    uint64_t at = i & (sm->ring_bits - 1);
    if (v)
        sm->ring[at / 64] |= UINT64_C(1) << (at % 64);
    else
        sm->ring[at / 64] &= ~(UINT64_C(1) << (at % 64));
}

/* Room for one more unacknowledged bit: the ring doubles, its live bits copied in order. */
static void ring_grow(smacks *sm)
{
    size_t bits = sm->ring_bits ? sm->ring_bits * 2 : 256;
    smacks old = *sm;
    sm->ring = mem_zalloc(bits / 8);
    sm->ring_bits = bits;
    for (uint64_t i = sm->acked; i < sm->out_count; i++)
        bit_set(sm, i, bit_get(&old, i));
    free(old.ring);
}

bool smacks_out(smacks *sm, bool from_sm)
{
    uint64_t unacked = sm->out_count - sm->acked;
    if (unacked >= SMACKS_UNACKED_MAX)
        return false;
    if (unacked == sm->ring_bits)
        ring_grow(sm);
    bit_set(sm, sm->out_count, from_sm && sm->kept_from_now);
    sm->out_count++;
    return true;
}

bool smacks_want_r(smacks *sm, unsigned every)
{
    if (sm->r_pending || sm->out_count - sm->acked < (every ? every : 1))
        return false;
    sm->r_pending = true;
    return true;
}

bool smacks_ask_later(const smacks *sm) { return !sm->r_pending && sm->out_count != sm->acked; }

bool smacks_ask_now(smacks *sm) { return smacks_want_r(sm, 1); }

bool smacks_client_ack(smacks *sm, uint32_t h, smacks_msg *msg)
{
    memset(msg, 0, sizeof *msg);
    uint32_t ahead = h - (uint32_t)sm->acked;
    if (ahead > sm->out_count - sm->acked)
        return false;
    sm->r_pending = false;
    if (!ahead)
        return true;
    uint64_t kept = 0;
    for (uint64_t i = sm->acked; i < sm->acked + ahead; i++)
        kept += bit_get(sm, i);
    sm->acked += ahead;
    sm->sm_acked += kept;
    if (sm->sm_acked - sm->sm_acked_told >= SMACKS_ACK_BATCH)
        smacks_ack_unreported(sm, msg);
    return true;
}

bool smacks_ack_unreported(smacks *sm, smacks_msg *msg)
{
    if (sm->sm_acked == sm->sm_acked_told)
        return false;
    sm->sm_acked_told = sm->sm_acked;
    *msg = (smacks_msg){.kind = SMACKS_ACK, .client_h = sm->acked, .sm_acked = sm->sm_acked,
                        .in_local = sm->in_local};
    return true;
}

static uint64_t kept_unacked(const smacks *sm)
{
    uint64_t kept = 0;
    for (uint64_t i = sm->acked; i < sm->out_count; i++)
        kept += bit_get(sm, i);
    return kept;
}

uint64_t smacks_kept_next(const smacks *sm)
{
    return sm->kept_from_now ? sm->sm_acked + kept_unacked(sm) + 1 : 0;
}

void smacks_sync(smacks *sm, smacks_msg *msg)
{
    uint64_t kept = kept_unacked(sm);
    sm->sm_acked_told = sm->sm_acked;
    *msg = (smacks_msg){.kind = SMACKS_SYNC, .sm_received = sm->sm_acked + kept,
                        .sm_acked = sm->sm_acked, .in_count = sm->in_count,
                        .in_local = sm->in_local};
}

void smacks_resumed(smacks *sm, uint64_t in_h, uint64_t client_h, uint64_t sm_acked)
{
    sm->kept_from_now = true;
    sm->in_count = in_h;
    sm->in_local = 0;
    sm->out_count = sm->acked = client_h;
    sm->sm_acked = sm->sm_acked_told = sm_acked;
}

bool smacks_parse_h(const char *text, uint32_t *h)
{
    if (!text || !*text || strlen(text) > 10)
        return false;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *h = (uint32_t)v;
    return true;
}

void smacks_put_r(buf *out) { buf_appendf(out, "<r xmlns='%s'/>", NS_SM); }

void smacks_put_a(buf *out, uint64_t h)
{
    buf_appendf(out, "<a xmlns='%s' h='%u'/>", NS_SM, (unsigned)(uint32_t)h);
}

void smacks_put_enabled(buf *out, const char *id, uint32_t max)
{
    buf_appendf(out, "<enabled xmlns='%s'", NS_SM);
    if (*id) {
        /* The id is the SM's random token ([A-Za-z0-9]): nothing to escape. */
        buf_appendf(out, " id='%s' resume='true' max='%u'", id, (unsigned)max);
    }
    buf_append(out, "/>", 2);
}

void smacks_put_failed(buf *out, smacks_condition c, bool has_h, uint32_t h)
{
    buf_appendf(out, "<failed xmlns='%s'", NS_SM);
    if (has_h)
        buf_appendf(out, " h='%u'", (unsigned)h);
    buf_appendf(out, "><%s xmlns='%s'/></failed>", smacks_condition_name(c), NS_STANZAS);
}

void smacks_put_resumed(buf *out, uint64_t h, const char *previd)
{
    buf_appendf(out, "<resumed xmlns='%s' h='%u' previd='%s'/>", NS_SM, (unsigned)(uint32_t)h,
                previd);
}

void smacks_put_too_high(buf *out, uint32_t h, uint64_t sent)
{
    buf_appendf(out, "<handled-count-too-high xmlns='%s' h='%u' send-count='%u'/>", NS_SM,
                (unsigned)h, (unsigned)(uint32_t)sent);
}
