/* sm/custody.c — tickets for frames in the SM's custody, and the SM's unacknowledged output per
 * front link (see custody.h).
 *
 * Inbound, the frames numbered (done, received] are in progress: refs[seq & mask] counts the holds
 * on each (a circular window that doubles when full). `done` only moves over frames with no holds
 * left, in order, because acknowledgements are cumulative. Outbound, the frames numbered
 * (acked, sent] wait in a FIFO for the front's ACK, each holding the ticket it was sent under. */
#include "sm/custody.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

typedef struct sent_frame {
    struct sent_frame *next;
    custody_ticket origin;
    smproto_type type;
    uint64_t sid;
    size_t len;
    char xml[];             /* STANZA payloads only */
} sent_frame;

struct custody_link {
    uint32_t *refs;
    uint64_t mask;
    uint64_t received, done, told;
    sent_frame *out, **out_tail;
    uint64_t sent, acked;
    bool retired;
};

custody_link *custody_link_new(uint64_t first_in)
{
    custody_link *cl = mem_zalloc(sizeof *cl);
    cl->mask = 255;
    cl->refs = mem_array(cl->mask + 1, sizeof *cl->refs);
    cl->received = cl->done = cl->told = first_in;
    cl->out_tail = &cl->out;
    return cl;
}

uint64_t custody_unacked(const custody_link *cl)
{
    return cl->sent - cl->acked;
}

uint64_t custody_unfinished(const custody_link *cl)
{
    return cl->received - cl->done;
}

static void link_free_if_idle(custody_link *cl)
{
    if (cl->retired && cl->done == cl->received) {
        free(cl->refs);
        free(cl);
    }
}

static void grow(custody_link *cl)
{
    uint64_t cap = (cl->mask + 1) * 2;
    uint32_t *refs = mem_array(cap, sizeof *refs);
    for (uint64_t seq = cl->done + 1; seq <= cl->received; seq++)
        refs[seq & (cap - 1)] = cl->refs[seq & cl->mask];
    free(cl->refs);
    cl->refs = refs;
    cl->mask = cap - 1;
}

custody_ticket custody_in(custody_link *cl)
{
    if (cl->received - cl->done > cl->mask)
        grow(cl);
    uint64_t seq = ++cl->received;
    cl->refs[seq & cl->mask] = 1;
    return (custody_ticket){cl, seq};
}

uint64_t custody_received(const custody_link *cl) { return cl->received; }

void custody_hold(custody_ticket t)
{
    if (t.link)
        t.link->refs[t.seq & t.link->mask]++;
}

void custody_release(custody_ticket t)
{
    custody_link *cl = t.link;
    if (!cl)
        return;
    if (--cl->refs[t.seq & cl->mask] || t.seq != cl->done + 1)
        return;
    while (cl->done < cl->received && cl->refs[(cl->done + 1) & cl->mask] == 0)
        cl->done++;
    link_free_if_idle(cl);
}

void custody_sent(custody_link *cl, custody_ticket origin, smproto_type type, uint64_t sid,
                  const char *xml, size_t len)
{
    size_t keep = type == SMPROTO_STANZA ? len : 0;
    sent_frame *f = mem_alloc(sizeof *f + keep);
    f->next = NULL;
    f->origin = origin;
    f->type = type;
    f->sid = sid;
    f->len = keep;
    if (keep)
        memcpy(f->xml, xml, keep);
    custody_hold(origin);
    *cl->out_tail = f;
    cl->out_tail = &f->next;
    cl->sent++;
}

bool custody_acked(custody_link *cl, uint64_t n)
{
    if (n > cl->sent || n < cl->acked)
        return false;
    while (cl->acked < n) {
        sent_frame *f = cl->out;
        cl->out = f->next;
        if (!cl->out)
            cl->out_tail = &cl->out;
        cl->acked++;
        custody_ticket origin = f->origin;
        free(f);
        custody_release(origin);
    }
    return true;
}

bool custody_ack_due(custody_link *cl, uint64_t *n)
{
    if (cl->told == cl->done)
        return false;
    *n = cl->told = cl->done;
    return true;
}

void custody_link_down(custody_link *cl, custody_back_fn back, void *ctx)
{
    /* Retired first: tickets released below may be this link's own (a front's stanza to itself). */
    cl->retired = true;
    sent_frame *f = cl->out;
    cl->out = NULL;
    cl->out_tail = &cl->out;
    /* Hold one frame of our own so that releases below cannot free cl under our feet. */
    custody_ticket self = {NULL, 0};
    if (cl->done < cl->received) {
        self = (custody_ticket){cl, cl->done + 1};
        custody_hold(self);
    }
    while (f) {
        sent_frame *next = f->next;
        if (f->type == SMPROTO_STANZA && back)
            back(ctx, f->origin, f->sid, f->xml, f->len);
        custody_release(f->origin);
        free(f);
        f = next;
    }
    if (self.link)
        custody_release(self);
    else
        link_free_if_idle(cl);
}

void custody_get_stats(const custody_link *cl, custody_stats *out)
{
    out->received = cl->received;
    out->done = cl->done;
    out->sent = cl->sent;
    out->acked = cl->acked;
}
