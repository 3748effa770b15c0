/* sm/user_loads.c — loading accounts: the work waiting for one, and the order loads start in.
 *
 * A user's load is its roster and the user-load hooks' requests (block list, MAM preferences, PEP
 * nodes). Work that needs the account waits on the user (smc_defer) and runs, in order, when the
 * roster is in (users.c). Loads in flight are bounded (SMC_USER_LOADS); past the bound they wait
 * in a queue, first come first started.
 *
 * A restart restores the sessions its fronts re-announce before their accounts load
 * (sessions.c): their loads go to a second queue, the background, started only while fewer than
 * SMC_BACKGROUND_LOADS are in flight and no load that work waits for is queued. So a million
 * restored sessions load at the storage's pace while a stanza for one of them (or from one) starts
 * its account's load at once, ahead of the rest.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "sm/core.h"

/* Each load is four storage requests of about 1 KiB until answered, and a burst (an SM restart's
 * resync, a front's restart logging its clients in again) would otherwise hold them all, and the
 * allocator keeps that memory after the burst. A thousand in flight keep the storage workers
 * busy; background loads leave half of them to loads that work waits for, which then queue behind
 * at most that many requests in storage. */
#define SMC_USER_LOADS 1024
#define SMC_BACKGROUND_LOADS (SMC_USER_LOADS / 2)

static void roster_loaded(xdb_request *r, void *ctx);

/* u is held until its roster is in: a user whose sessions all end meanwhile still gets its load's
 * end (user-ready: its contacts hear of those sessions then, mod_presence). */
static void load_start(sm *s, sm_user *u)
{
    s->loads_in_flight++;
    u->loading = true;
    u->holds++;
    sm_event ev = {.user = u};
    sm_fire(s, SM_EV_USER_LOAD, &ev);
    sm_submit(s, sm_user_request(XDB_ROSTER_LOAD, &u->jid), roster_loaded, s);
}

/* u has work deferred (so it is not freed) and no load under way. */
static void load_request(sm *s, sm_user *u)
{
    if (s->loads_in_flight < SMC_USER_LOADS && !s->load_queue) {
        load_start(s, u);
        return;
    }
    u->load_next = NULL;
    s->load_queued++;
    if (s->load_queue_tail)
        s->load_queue_tail->load_next = u;
    else
        s->load_queue = u;
    s->load_queue_tail = u;
}

static sm_user *background_take(sm *s)
{
    sm_user *u = s->background[s->background_head++];
    if (s->background_head == s->background_len) {
        free(s->background);
        s->background = NULL;
        s->background_head = s->background_len = s->background_cap = 0;
    }
    u->background_queued = false;
    u->holds--;
    return u;
}

static void background_put(sm *s, sm_user *u)
{
    if (s->background_head && s->background_head * 2 >= s->background_len) {
        memmove(s->background, s->background + s->background_head,
                (s->background_len - s->background_head) * sizeof *s->background);
        s->background_len -= s->background_head;
        s->background_head = 0;
    }
    if (s->background_len == s->background_cap) {
        s->background_cap = s->background_cap ? s->background_cap * 2 : 1024;
        s->background = mem_realloc(s->background, s->background_cap * sizeof *s->background);
    }
    s->background[s->background_len++] = u;
    u->background_queued = true;
    u->holds++;
}

static void load_next(sm *s)
{
    while (s->load_queue && s->loads_in_flight < SMC_USER_LOADS) {
        sm_user *u = s->load_queue;
        s->load_queue = u->load_next;
        if (!s->load_queue)
            s->load_queue_tail = NULL;
        u->load_next = NULL;
        s->load_queued--;
        load_start(s, u);
    }
    while (s->background_head < s->background_len && !s->load_queue &&
           s->loads_in_flight < SMC_BACKGROUND_LOADS) {
        sm_user *u = background_take(s);
        /* Not if loaded meanwhile, or loading because work came for it. */
        if (!u->loaded && !u->loading && !u->deferred)
            load_start(s, u);
        else
            smc_user_maybe_free(s, u);
    }
}

static void roster_loaded(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    s->loads_in_flight--;
    sm_user *u = smc_user_roster_loaded(s, r);
    if (u) {
        u->holds--;
        smc_user_maybe_free(s, u);
    }
    load_next(s);
}

void smc_defer(sm *s, sm_user *u, sm_deferred *d)
{
    bool loading = u->deferred != NULL || u->loading;
    d->ticket = s->ticket;
    custody_hold(d->ticket);
    if (u->deferred_tail)
        u->deferred_tail->next = d;
    else
        u->deferred = d;
    u->deferred_tail = d;
    if (!loading)
        load_request(s, u);
}

void smc_load_in_background(sm *s, sm_user *u)
{
    if (u->loaded || u->loading || u->deferred || u->background_queued)
        return;
    background_put(s, u);
    load_next(s);
}

size_t smc_loads_pending(const sm *s)
{
    return s->loads_in_flight + s->load_queued + (s->background_len - s->background_head);
}
