/* sm/restart_wait.c — the SM's first seconds: stanzas for users whose sessions the fronts have
 * not re-announced yet wait for them.
 *
 * After an SM restart every front reconnects and re-announces its sessions (RESYNC), one front
 * after the other. Until a front has, its users seem to have no session: a message for them would
 * go to offline storage (and arrive later with a <delay/>), a presence probe would be answered
 * unavailable (their contacts on the fronts that resynced first would see them go and come back).
 * So from its start the SM holds every stanza for a local user who has no session (or for a full
 * JID that has none), in order, each with its frame's custody ticket, until every front of the
 * configuration has ended its resync, or <limits><resync_wait> seconds (5) have passed; then it
 * routes them as it would have. The fronts are the configuration's: the SM cannot know which of
 * them ran before it started, so a front that is configured but never comes costs the first
 * seconds of a start that wait. A module that restores sessions from storage (mod_smacks: the
 * hibernated ones) holds the wait open until it has (sm_start_hold), within the same bound.
 * Stanzas to a domain a module serves (sm/domains.c) wait whoever they are for. At most
 * RESTART_HELD_MAX stanzas wait; past that, they are routed at once. The wait's end fires
 * SM_EV_START_DONE.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/core.h"

#define RESTART_HELD_MAX 100000

void smc_restart_wait_start(sm *s)
{
    restart_wait *w = &s->restart;
    for (int i = 0; i < s->cfg->nservices; i++)
        if (s->cfg->services[i].role == SM_ROLE_FRONT)
            w->nexpected++;
    if (!w->nexpected || !s->cfg->limits.resync_wait)
        return;
    w->fronts = mem_array((size_t)w->nexpected, sizeof *w->fronts);
    int n = 0;
    for (int i = 0; i < s->cfg->nservices; i++)
        if (s->cfg->services[i].role == SM_ROLE_FRONT)
            w->fronts[n++] = (wait_front){.id = s->cfg->services[i].id};
    w->active = true;
    w->tail = &w->held;
}

/* The wait is over: what it held is routed, in order, each under its own frame's ticket. */
void smc_restart_wait_end(sm *s, const char *why)
{
    restart_wait *w = &s->restart;
    if (!w->active)
        return;
    w->active = false;
    if (w->nheld)
        log_info("sm: start's wait over (%s): %zu stanzas held since the start are routed", why,
                 w->nheld);
    else
        log_info("sm: start's wait over (%s)", why);
    sm_deferred *d = w->held;
    w->held = NULL;
    w->tail = &w->held;
    w->nheld = 0;
    while (d) {
        sm_deferred *next = d->next;
        custody_ticket prev = sm_swap_ticket(s, d->ticket);
        if (d->from_session)
            d->stanza->origin = sm_session_lookup(s, d->link_serial, d->sid);
        sm_stanza *st = d->stanza;
        d->stanza = NULL;
        if (d->any_addressee)
            sm_route(s, st);
        else
            smc_route_to_user(s, st);
        sm_swap_ticket(s, prev);
        smc_deferred_free(d);
        d = next;
    }
    sm_fire(s, SM_EV_START_DONE, &(sm_event){0});
}

/* Keeps st, with its frame's ticket held, until the wait ends. */
static void hold(sm *s, sm_stanza *st, bool any_addressee)
{
    restart_wait *w = &s->restart;
    sm_deferred *d = mem_zalloc(sizeof *d);
    if (st->origin) {
        d->from_session = true;
        d->link_serial = st->origin->link ? st->origin->link->serial : 0;
        d->sid = st->origin->sid;
    }
    d->any_addressee = any_addressee;
    d->stanza = sm_stanza_keep(st);
    sm_stanza_free(st);
    d->ticket = s->ticket;
    custody_hold(d->ticket);
    *w->tail = d;
    w->tail = &d->next;
    w->nheld++;
}

bool smc_restart_wait_hold(sm *s, sm_stanza *st)
{
    restart_wait *w = &s->restart;
    if (!w->active || w->nheld >= RESTART_HELD_MAX)
        return false;
    sm_user *u = sm_user_find(s, &st->to);
    bool has_session = u && u->sessions && (jid_is_bare(&st->to) || sm_session_find(s, &st->to));
    if (has_session)
        return false;
    hold(s, st, false);
    return true;
}

bool smc_restart_wait_hold_any(sm *s, sm_stanza *st)
{
    restart_wait *w = &s->restart;
    if (!w->active || w->nheld >= RESTART_HELD_MAX)
        return false;
    hold(s, st, true);
    return true;
}

bool sm_start_waiting(const sm *s)
{
    return s->restart.active;
}

/* The wait ends once every configured front has re-announced its sessions, the modules have
 * restored theirs, and every re-announced session is restored: most at once, before their
 * accounts load (sessions.c); those that took the usual way once their account has loaded. */
static void maybe_end(sm *s, const char *why)
{
    restart_wait *w = &s->restart;
    if (w->active && w->resynced == w->nexpected && !w->holds && !w->resyncs_pending)
        smc_restart_wait_end(s, why);
}

void smc_restart_resync_done(sm *s, sm_deferred *d)
{
    if (!d->counted_resync)
        return;
    d->counted_resync = false;
    s->restart.resyncs_pending--;
    maybe_end(s, "every front's sessions are restored");
}

/* A front's later link during the wait (its first was cut) re-announces sessions the SM ended
 * when the first went down, with unavailable presence: those are not quiet. */
bool smc_restart_first_link(sm *s, const char *service_id)
{
    restart_wait *w = &s->restart;
    if (!w->active)
        return false;
    for (int i = 0; i < w->nexpected; i++)
        if (strcmp(w->fronts[i].id, service_id) == 0) {
            bool first = !w->fronts[i].linked;
            w->fronts[i].linked = true;
            return first;
        }
    return false;
}

void sm_front_resynced(sm *s, sm_link *l)
{
    sm_event ev = {.link_serial = l->serial};
    sm_fire(s, SM_EV_FRONT_UP, &ev);
    restart_wait *w = &s->restart;
    if (!w->active)
        return;
    for (int i = 0; i < w->nexpected; i++)
        if (!w->fronts[i].resynced && strcmp(w->fronts[i].id, l->service) == 0) {
            w->fronts[i].resynced = true;
            w->resynced++;
        }
    maybe_end(s, "every front has re-announced its sessions");
}

void sm_start_hold(sm *s)
{
    s->restart.holds++;
}

void sm_start_done(sm *s)
{
    restart_wait *w = &s->restart;
    if (w->holds > 0 && --w->holds == 0)
        maybe_end(s, "every front has re-announced its sessions and storage's are restored");
}

void smc_restart_wait_tick(sm *s)
{
    restart_wait *w = &s->restart;
    if (!w->active)
        return;
    if (!w->deadline_ms)
        w->deadline_ms = s->now_ms + (int64_t)s->cfg->limits.resync_wait * 1000;
    else if (s->now_ms >= w->deadline_ms)
        smc_restart_wait_end(s, "resync_wait passed");
}

void smc_restart_wait_free(sm *s)
{
    restart_wait *w = &s->restart;
    while (w->held) {
        sm_deferred *d = w->held;
        w->held = d->next;
        smc_deferred_free(d);
    }
    free(w->fronts);
}
