/* sm/barrier.c — holding routed stanzas until a subscription change is stored (see barrier.h).
 *
 * A barrier lives from sm_barrier_begin until both sm_barrier_end has run and every storage
 * request counted under it has been answered; then what it held goes out, under the ticket of
 * the frame that opened it, with no barrier current (what it routes may open its own). */
#include "sm/barrier.h"

#include <stdlib.h>

#include "core/mem.h"

typedef struct held {
    struct held *next;
    sm_stanza *st;
    bool to_session;        /* delivered to (link_serial, sid) as it is; else routed */
    uint64_t link_serial, sid;
} held;

struct sm_barrier {
    sm *s;
    sm_barrier *prev;       /* current before this one, while this one is */
    sm_barrier *parent;     /* waits for this one (counted in its pending), or NULL */
    custody_ticket ticket;
    unsigned pending;       /* storage requests not answered, barriers inside not released */
    bool ended;
    held *first, **tail;
};

sm_barrier *sm_barrier_begin(sm *s)
{
    sm_barrier *b = mem_zalloc(sizeof *b);
    b->s = s;
    b->ticket = sm_current_ticket(s);
    custody_hold(b->ticket);
    b->tail = &b->first;
    b->prev = sm_swap_barrier(s, b);
    return b;
}

/* Sends what b held, in order. What that causes may itself wait (a contact's subscription change
 * being stored): a successor barrier then holds the rest behind it and takes b's place for the
 * parent. */
static void release(sm_barrier *b)
{
    sm_barrier *parent = b->parent;
    if (b->first) {
        sm *s = b->s;
        sm_barrier *outer = sm_swap_barrier(s, NULL);
        custody_ticket prev = sm_swap_ticket(s, b->ticket);
        sm_barrier *next = sm_barrier_begin(s);
        next->parent = parent;
        parent = NULL;
        while (b->first) {
            held *h = b->first;
            b->first = h->next;
            sm_session *sess = h->to_session ? sm_session_lookup(s, h->link_serial, h->sid) : NULL;
            if (!h->to_session)
                sm_route(s, h->st);
            else if (sess)
                sm_deliver(s, sess, h->st);
            else
                sm_stanza_free(h->st);
            free(h);
        }
        sm_barrier_end(s, next);
        sm_swap_ticket(s, prev);
        sm_swap_barrier(s, outer);
    }
    custody_release(b->ticket);
    free(b);
    if (parent)
        sm_barrier_answered(parent);
}

void sm_barrier_end(sm *s, sm_barrier *b)
{
    sm_swap_barrier(s, b->prev);
    b->ended = true;
    if (!b->pending) {
        release(b);
        return;
    }
    /* What the outer barrier routes after this point waits for this one. */
    if (b->prev && !b->parent) {
        b->parent = b->prev;
        b->parent->pending++;
    }
}

void sm_barrier_submitted(sm_barrier *b)
{
    b->pending++;
}

void sm_barrier_answered(sm_barrier *b)
{
    if (--b->pending == 0 && b->ended)
        release(b);
}

bool sm_barrier_hold(sm_barrier *b, sm_session *sess, sm_stanza *st)
{
    if (!b->pending && !b->first)
        return false;
    held *h = mem_zalloc(sizeof *h);
    h->st = st;
    if (sess) {
        h->to_session = true;
        h->link_serial = sm_link_serial(sess->link);
        h->sid = sess->sid;
    }
    *b->tail = h;
    b->tail = &h->next;
    return true;
}
