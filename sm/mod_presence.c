/* sm/mod_presence.c — presence (RFC 6121 §4) and subscriptions (§3): broadcast of a session's
 * presence to its contacts and the user's other resources, probes and their answers, directed
 * presence, unavailable presence when a session ends, and the subscription handshake with roster
 * pushes (the transitions themselves are sm/subscription.c). Pending inbound requests are stored
 * and delivered again at every initial presence until answered. What a subscription stanza makes
 * visible waits until its changes are stored (sm/barrier.h). After a restart, a session that came
 * back with its presence (kept, not broadcast again: docs/smproto.md §2, RESYNC) hears when the
 * start's wait is over which of its contacts did not come back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/barrier.h"
#include "sm/map.h"
#include "sm/mod_presence.h"
#include "sm/module.h"
#include "sm/modules.h"
#include "sm/subscription.h"

/* limits/directed: the most JIDs one session may have sent directed presence to (one per room a
 * client joins). */
static const sm_int_option presence_options[] = {
    {"limits/directed", 1000, 1, 1000000},
    {NULL},
};

/* Per session: the full JIDs it sent directed available presence to (RFC 6121 §4.6), which hear
 * when it goes unavailable; a hash set, since it is consulted for every presence. came_back: it
 * was restored available during the start's wait (its presence kept as it was). */
typedef struct presence_session {
    sm_strset *directed;
    bool came_back;
} presence_session;

static presence_session *state_of_session(sm *s, const sm_session *sess)
{
    return sm_session_state(s, sess, &mod_presence);
}

static sm_strset **directed_of(sm *s, const sm_session *sess)
{
    return &state_of_session(s, sess)->directed;
}

const sm_strset *presence_directed(sm *s, const sm_session *sess)
{
    return sm_module_loaded(s, &mod_presence) ? *directed_of(s, sess) : NULL;
}

static void bare_of(const jid *j, char out[JID_MAX_LEN + 1])
{
    jid_bare_to_string(j, out, JID_MAX_LEN + 1);
}

/* Routes a copy of st from `from` to `to`. */
static void send_copy(sm *s, const sm_stanza *st, const char *from, const char *to)
{
    sm_stanza *c = sm_stanza_copy(st);
    if (!sm_stanza_set_from(c, from) || !sm_stanza_set_to(c, to)) {
        sm_stanza_free(c);
        return;
    }
    sm_route(s, c);
}

static void send_simple(sm *s, const char *from, const char *to, const char *type)
{
    sm_route(s, sm_stanza_make("presence", from, to, type));
}

/* Sends st (from sess) to every contact with a subscription to the user's presence, to the user's
 * other resources (and back to sess), and, when it is unavailable, to everyone sess sent directed
 * presence to. */
static void broadcast(sm *s, sm_session *sess, const sm_stanza *st, bool unavailable)
{
    const char *from = jid_full(&sess->jid);
    sm_user *u = sess->user;
    for (size_t i = 0; i < u->nitems; i++)
        if (sm_sub_has_from(u->items[i].sub))
            send_copy(s, st, from, u->items[i].jid);
    for (sm_session *x = u->sessions; x; x = x->next)
        if (x->available || x == sess)
            send_copy(s, st, from, jid_full(&x->jid));
    if (unavailable) {
        sm_strset **directed = directed_of(s, sess);
        const char **to = sm_strset_members(*directed);
        for (size_t i = 0; i < sm_strset_count(*directed); i++)
            send_copy(s, st, from, to[i]);
        free(to);
        sm_strset_free(directed);
    }
}

static void deliver_pending(sm *s, sm_session *sess)
{
    sm_user *u = sess->user;
    for (size_t i = 0; i < u->npending; i++) {
        sm_stanza *p = sm_parse(s, u->pending[i].xml, strlen(u->pending[i].xml));
        if (!p)
            continue;
        sm_deliver(s, sess, p);
    }
}

static void available(sm *s, sm_session *sess, sm_stanza *st)
{
    int priority = sm_presence_priority(st);
    bool initial = !sess->available;
    sess->priority = priority;
    sess->available = true;
    sm_user *u = sess->user;
    char bare[JID_MAX_LEN + 1];
    bare_of(&sess->jid, bare);
    if (initial) {
        /* §4.2.2: probe the contacts whose presence the user may see... */
        for (size_t i = 0; i < u->nitems; i++)
            if (sm_sub_has_to(u->items[i].sub))
                send_simple(s, bare, u->items[i].jid, "probe");
        /* ...and show the new resource what the user's other resources are. */
        for (sm_session *x = u->sessions; x; x = x->next)
            if (x != sess && x->available && x->presence)
                send_copy(s, x->presence, jid_full(&x->jid), jid_full(&sess->jid));
    }
    xml_attr_remove(st->node, NULL, "to");
    broadcast(s, sess, st, false);
    sm_stanza_free(sess->presence);
    sess->presence = sm_stanza_keep(st);
    if (initial) {
        deliver_pending(s, sess);
        sm_event ev = {.session = sess, .user = u};
        sm_fire(s, SM_EV_SESSION_AVAILABLE, &ev);
    }
}

/* Returns false when there was nothing to end: the session was neither available nor had sent
 * directed presence. */
static bool unavailable(sm *s, sm_session *sess, sm_stanza *st)
{
    if (!sess->available && !sm_strset_count(presence_directed(s, sess)))
        return false;
    xml_attr_remove(st->node, NULL, "to");
    broadcast(s, sess, st, true);
    sess->available = false;
    sm_stanza_free(sess->presence);
    sess->presence = NULL;
    return true;
}

/* Directed presence (§4.6): who must hear of the session going unavailable. Returns false when st
 * was refused (the session already tracks limits/directed JIDs) and answered with an error. */
static bool directed(sm *s, sm_session *sess, sm_stanza *st, bool avail)
{
    const char *to = jid_full(&st->to);
    if (!avail) {
        sm_strset_remove(directed_of(s, sess), to);
        return true;
    }
    sm_strset **directed = directed_of(s, sess);
    if (sm_strset_has(*directed, to))
        return true;
    char bare[JID_MAX_LEN + 1];
    bare_of(&st->to, bare);
    sm_roster_item *it = sm_roster_find(sess->user, bare);
    if (it && sm_sub_has_from(it->sub))
        return true;   /* contacts get the broadcast anyway */
    int limit = (int)sm_module_int(s, &mod_presence, "limits/directed");
    if (sm_strset_count(*directed) >= (size_t)limit) {
        char why[96];
        snprintf(why, sizeof why, "directed presence is limited to %d recipients", limit);
        sm_bounce_text(s, sm_stanza_take(st), "cancel", "resource-constraint", why);
        return false;
    }
    sm_strset_add(directed, to);
    return true;
}

static sm_sub_state state_of(sm_user *u, const char *contact)
{
    sm_roster_item *it = sm_roster_find(u, contact);
    return (sm_sub_state){it ? it->sub : XDB_SUB_NONE, it ? it->ask : false,
                          sm_pending_has(u, contact)};
}

/* A subscription stanza that would take the user past a limit: its sender hears why. */
static void refuse_full(sm *s, sm_stanza *st, const char *what, int limit)
{
    char why[96];
    snprintf(why, sizeof why, "at most %d %s per account", limit, what);
    sm_bounce_text(s, sm_stanza_take(st), "cancel", "resource-constraint", why);
}

static void apply_state(sm *s, sm_user *u, const char *contact, const sm_sub_state *ns)
{
    sm_roster_item *it = sm_roster_add(u, contact);
    it->sub = ns->sub;
    it->ask = ns->ask;
    sm_roster_store(s, u, it, false);
}

/* Unavailable presence from each of the user's available resources to contact. */
static void send_unavailable(sm *s, sm_user *u, const char *contact)
{
    for (sm_session *x = u->sessions; x; x = x->next)
        if (x->available)
            send_simple(s, jid_full(&x->jid), contact, "unavailable");
}

static void outbound_subscription(sm *s, sm_session *sess, sm_stanza *st, sm_sub_type type)
{
    sm_user *u = sess->user;
    char contact[JID_MAX_LEN + 1], bare[JID_MAX_LEN + 1];
    bare_of(&st->to, contact);
    bare_of(&sess->jid, bare);
    sm_sub_state state = state_of(u, contact);
    sm_sub_actions a = sm_sub_outbound(&state, type);
    if (a.changed && sm_roster_full(s, u, contact)) {
        refuse_full(s, st, "roster items", sm_cfg(s)->limits.roster_items);
        return;
    }
    if (a.changed)
        apply_state(s, u, contact, &state);
    if (a.remove_pending)
        sm_pending_remove(s, u, contact);
    if (a.forward) {
        sm_stanza *c = sm_stanza_take(st);
        sm_stanza_set_from(c, bare);
        sm_stanza_set_to(c, contact);
        sm_route(s, c);
    }
    if (a.send_presence)
        for (sm_session *x = u->sessions; x; x = x->next)
            if (x->available && x->presence)
                send_copy(s, x->presence, jid_full(&x->jid), contact);
    if (a.send_unavailable)
        send_unavailable(s, u, contact);
}

static bool presence_out(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    sm_session *sess = ev->session;
    const char *type = sm_stanza_type(st);
    if (!st->to.domain_len) {
        if (!*type)
            available(s, sess, st);
        else if (strcmp(type, "unavailable") == 0 && unavailable(s, sess, st))
            return false;   /* a logout: the hooks after this one see it (mod_last records it) */
        return true;
    }
    int sub = sm_sub_type_parse(type);
    if (sub >= 0) {
        sm_barrier *b = sm_barrier_begin(s);
        outbound_subscription(s, sess, st, (sm_sub_type)sub);
        sm_barrier_end(s, b);
        return true;
    }
    if (!*type || strcmp(type, "unavailable") == 0)
        return !directed(s, sess, st, !*type);   /* the core routes what was not refused */
    return strcmp(type, "error") != 0;  /* probes from clients are not ours to send */
}

/* Presence to the user's resources: a full JID gets it only if that session exists; a bare JID
 * reaches every available resource (subscription requests: those of non-negative priority). */
static void deliver_to_user(sm *s, sm_user *u, const sm_stanza *st, bool subscription)
{
    if (!jid_is_bare(&st->to)) {
        sm_session *x = sm_session_find(s, &st->to);
        if (x)
            sm_deliver(s, x, sm_stanza_copy(st));
        return;
    }
    for (sm_session *x = u->sessions; x; x = x->next)
        if (x->available && (x->priority >= 0 || !subscription))
            sm_deliver(s, x, sm_stanza_copy(st));
}

static void answer_probe(sm *s, sm_user *u, const sm_stanza *st)
{
    char prober[JID_MAX_LEN + 1], bare[JID_MAX_LEN + 1];
    bare_of(&st->from, prober);
    bare_of(&u->jid, bare);
    sm_roster_item *it = sm_roster_find(u, prober);
    if (!it || !sm_sub_has_from(it->sub)) {
        if (strcmp(prober, bare) != 0)
            send_simple(s, bare, prober, "unsubscribed");  /* §4.3.2 */
        return;
    }
    bool any = false;
    for (sm_session *x = u->sessions; x; x = x->next)
        if (x->available && x->presence) {
            send_copy(s, x->presence, jid_full(&x->jid), jid_full(&st->from));
            any = true;
        }
    if (!any)
        send_simple(s, bare, jid_full(&st->from), "unavailable");
}

static void inbound_subscription(sm *s, sm_user *u, sm_stanza *st, sm_sub_type type)
{
    char contact[JID_MAX_LEN + 1], bare[JID_MAX_LEN + 1];
    bare_of(&st->from, contact);
    bare_of(&u->jid, bare);
    sm_stanza_set_from(st, contact);   /* subscription stanzas are between bare JIDs (§3) */
    sm_stanza_set_to(st, bare);
    sm_sub_state state = state_of(u, contact);
    sm_sub_actions a = sm_sub_inbound(&state, type);
    if (a.reply_subscribed) {
        send_simple(s, bare, contact, "subscribed");
        return;
    }
    if ((a.changed && sm_roster_full(s, u, contact)) ||
        (a.store_pending && !sm_pending_add(s, u, contact, st))) {
        refuse_full(s, st, a.store_pending ? "pending subscription requests" : "roster items",
                    a.store_pending ? sm_cfg(s)->limits.pending : sm_cfg(s)->limits.roster_items);
        return;
    }
    if (a.changed)
        apply_state(s, u, contact, &state);
    if (a.remove_pending)
        sm_pending_remove(s, u, contact);
    if (a.forward)
        deliver_to_user(s, u, st, true);
    if (a.send_unavailable)
        send_unavailable(s, u, contact);
}

static bool presence_in(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    sm_user *u = ev->user;
    if (!u->exists || !st->from.domain_len)
        return true;  /* RFC 6121 §8.5.1: presence to no account is ignored */
    const char *type = sm_stanza_type(st);
    int sub = sm_sub_type_parse(type);
    if (sub >= 0) {
        sm_barrier *b = sm_barrier_begin(s);
        inbound_subscription(s, u, st, (sm_sub_type)sub);
        sm_barrier_end(s, b);
    } else if (strcmp(type, "probe") == 0)
        answer_probe(s, u, st);
    else
        deliver_to_user(s, u, st, false);
    return true;
}

/* A session ending while available (or with directed presence out) sends unavailable presence on
 * its behalf, through SM_EV_PRESENCE_OUT as if the client had sent it: presence_out broadcasts
 * it, and every module that follows presence sees the logout the same way. */
/* Sessions that ended before their account loaded (a restart restores them first: sm/sessions.c)
 * while available: their contacts hear of it once the roster is in (user-ready). Per bare JID (the
 * module's data), the full JIDs; a restored session has sent no directed presence (what it sends
 * waits for the load too). */
typedef struct owed_unavailable {
    size_t n;
    char **full;
} owed_unavailable;

static void owe_unavailable(sm *s, sm_session *sess)
{
    sm_map *owed = sm_module_data(s, &mod_presence);
    char bare[JID_MAX_LEN + 1];
    bare_of(&sess->jid, bare);
    owed_unavailable *o = sm_map_get(owed, bare, strlen(bare));
    if (!o) {
        o = mem_zalloc(sizeof *o);
        sm_map_put(owed, bare, strlen(bare), o);
    }
    o->full = mem_realloc(o->full, (o->n + 1) * sizeof *o->full);
    o->full[o->n++] = mem_strdup(jid_full(&sess->jid));
}

static void owed_free(void *val, void *ctx)
{
    owed_unavailable *o = val;
    for (size_t i = 0; i < o->n; i++)
        free(o->full[i]);
    free(o->full);
    free(o);
}

static void pay_owed(sm *s, sm_user *u)
{
    char bare[JID_MAX_LEN + 1];
    bare_of(&u->jid, bare);
    owed_unavailable *o = sm_map_del(sm_module_data(s, &mod_presence), bare, strlen(bare));
    if (!o)
        return;
    for (size_t k = 0; k < o->n; k++) {
        for (size_t i = 0; i < u->nitems; i++)
            if (sm_sub_has_from(u->items[i].sub))
                send_simple(s, o->full[k], u->items[i].jid, "unavailable");
        for (sm_session *x = u->sessions; x; x = x->next)
            if (x->available)
                send_simple(s, o->full[k], jid_full(&x->jid), "unavailable");
    }
    owed_free(o, NULL);
}

static bool session_end(sm *s, sm_event *ev)
{
    sm_session *sess = ev->session;
    if (!sess->user->loaded) {
        if (sess->available)
            owe_unavailable(s, sess);
        return false;
    }
    if (!sess->available && !sm_strset_count(presence_directed(s, sess)))
        return false;
    sm_stanza *st = sm_stanza_make("presence", jid_full(&sess->jid), NULL, "unavailable");
    sm_event out = {.stanza = st, .session = sess, .user = sess->user};
    sm_fire(s, SM_EV_PRESENCE_OUT, &out);
    sm_stanza_free(st);
    return false;
}

/* ---- after a restart ---- */

/* A session restored available during the start's wait (a front's resync of a session that
 * outlived the previous SM, or a hibernated one attached): its presence was kept, not broadcast,
 * and its client still shows its contacts as they were before the restart. */
static bool presence_attached(sm *s, sm_event *ev)
{
    if (sm_start_waiting(s) && ev->session->available)
        state_of_session(s, ev->session)->came_back = true;
    return false;
}

static bool available_somewhere(const sm_user *u)
{
    for (const sm_session *x = u ? u->sessions : NULL; x; x = x->next)
        if (x->available)
            return true;
    return false;
}

/* The wait is over: every session that will come back has. Each one that came back hears from
 * each local contact whose presence it may see and who has no available resource now (it ended
 * while the SM was down) unavailable presence, as a probe of that contact would have answered;
 * the user probes its remote contacts, whose servers may have sent changes the dead SM lost.
 * That needs the user's roster: sessions restored before their account loaded (sm/sessions.c)
 * are told once it has (user-ready). */
typedef struct came_back_tally {
    sm *s;
    size_t sessions, loading, unavailable, probes;
} came_back_tally;

static void tell_user(sm *s, sm_user *u, came_back_tally *t)
{
    char bare[JID_MAX_LEN + 1];
    bare_of(&u->jid, bare);
    for (size_t i = 0; i < u->nitems; i++) {
        const char *contact = u->items[i].jid;
        if (!sm_sub_has_to(u->items[i].sub))
            continue;
        const char *at = strchr(contact, '@');
        const char *domain = at ? at + 1 : contact;
        if (!sm_is_local_host(s, domain, strlen(domain))) {
            send_simple(s, bare, contact, "probe");
            t->probes++;
            continue;
        }
        if (!at || available_somewhere(sm_user_find_bare(s, contact)))
            continue;   /* the server itself, or a contact that came back */
        for (sm_session *x = u->sessions; x; x = x->next)
            if (state_of_session(s, x)->came_back && x->available) {
                send_simple(s, contact, jid_full(&x->jid), "unavailable");
                t->unavailable++;
            }
    }
    for (sm_session *x = u->sessions; x; x = x->next) {
        t->sessions += state_of_session(s, x)->came_back;
        state_of_session(s, x)->came_back = false;
    }
}

static void tell_came_back(sm_session *sess, void *ctx)
{
    came_back_tally *t = ctx;
    if (!state_of_session(t->s, sess)->came_back)
        return;
    if (sess->user->loaded)
        tell_user(t->s, sess->user, t);
    else
        t->loading++;
}

static bool presence_start_done(sm *s, sm_event *ev)
{
    came_back_tally t = {.s = s};
    sm_each_session(s, tell_came_back, &t);
    if (t.sessions || t.loading)
        log_info("sm: %zu sessions came back with their presence kept (%zu of them are told "
                 "their contacts' state once their accounts load); %zu unavailable presences sent "
                 "for contacts that did not come back, %zu remote contacts probed",
                 t.sessions + t.loading, t.loading, t.unavailable, t.probes);
    return false;
}

static bool presence_user_ready(sm *s, sm_event *ev)
{
    pay_owed(s, ev->user);
    if (sm_start_waiting(s))
        return false;   /* the wait's end tells it */
    came_back_tally t = {.s = s};
    for (sm_session *x = ev->user->sessions; x && !t.sessions; x = x->next)
        if (state_of_session(s, x)->came_back)
            tell_user(s, ev->user, &t);
    return false;
}

static void presence_session_release(void *state)
{
    sm_strset_free(&((presence_session *)state)->directed);
}

static const sm_handler presence_handlers[] = {
    {"presence-out", .hook = presence_out},
    {"presence-in", .hook = presence_in},
    {"session-end", .hook = session_end},
    {"session-attached", .hook = presence_attached},
    {"start-done", .hook = presence_start_done},
    {"user-ready", .hook = presence_user_ready},
    {NULL},
};

static bool presence_init(sm *s, const sm_module *self, config *cfg)
{
    sm_map *owed = mem_zalloc(sizeof *owed);
    sm_map_init(owed);
    sm_module_set_data(s, self, owed);
    return true;
}

static void presence_fini(sm *s, const sm_module *self)
{
    sm_map *owed = sm_module_data(s, self);
    if (!owed)
        return;
    sm_map_each(owed, owed_free, NULL);
    sm_map_free(owed);
    free(owed);
}

const sm_module mod_presence = {
    .name = "presence",
    .int_options = presence_options,
    .init = presence_init,
    .fini = presence_fini,
    .handlers = presence_handlers,
    .session_state = sizeof(presence_session),
    .session_release = presence_session_release,
};
