/* sm/sessions.c — links and sessions: a link coming up and going, credentials for a login,
 * binding (and restoring a front's sessions after a reconnect), ending sessions (one, a link's,
 * all), kicking, and registration from a client that has not authenticated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "sm/core.h"
#include "smproto/frame.h"

sm_link *smc_link_by_serial(const sm *s, uint64_t serial)
{
    for (sm_link *l = s->links; l; l = l->next)
        if (l->serial == serial)
            return l;
    return NULL;
}

uint64_t sm_link_serial(const sm_link *l) { return l->serial; }

const char *sm_link_service(const sm_link *l) { return l->service; }

size_t sm_link_count(const sm *s, const char *service_id)
{
    size_t n = 0;
    for (const sm_link *l = s->links; l; l = l->next)
        n += strcmp(l->service, service_id) == 0;
    return n;
}

sm_link *sm_link_up(sm *s, void *handle, const char *service_id, bool component)
{
    sm_link *l = mem_zalloc(sizeof(*l));
    l->handle = handle;
    l->serial = ++s->next_serial;
    l->service = mem_strdup(service_id);
    l->component = component;
    l->quiet_resync = !component && smc_restart_first_link(s, service_id);
    l->next = s->links;
    s->links = l;
    log_info("sm: %s '%s' is up", component ? "component" : "front", service_id);
    return l;
}

void sm_link_set_s2s(sm *s, sm_link *l)
{
    (void)s;
    l->s2s = true;
    log_info("sm: '%s' is a federation link", l->service);
}

void sm_link_set_peer(sm *s, sm_link *l, int index)
{
    (void)s;
    l->peer = index + 1;
    log_info("sm: '%s' is the link to peer SM %d", l->service, index);
}

sm_link *sm_link_find(const sm *s, uint64_t serial) { return smc_link_by_serial(s, serial); }

bool smc_session_has_key(const void *val, const void *key, size_t len)
{
    const sm_session *sess = val;
    session_key k;
    if (len != sizeof(k))
        return false;
    memcpy(&k, key, sizeof(k));
    return sess->link_serial == k.serial && sess->sid == k.sid;
}

bool smc_session_has_jid(const void *val, const void *key, size_t len)
{
    const sm_session *sess = val;
    return jid_full_len(&sess->jid) == len && memcmp(jid_full(&sess->jid), key, len) == 0;
}

sm_session *sm_session_lookup(const sm *s, uint64_t link_serial, uint64_t sid)
{
    session_key k = {link_serial, sid};
    return sm_map_get(&s->sessions, &k, sizeof(k));
}

sm_session *sm_session_find(const sm *s, const jid *full)
{
    return sm_map_get(&s->by_jid, jid_full(full), jid_full_len(full));
}

bool sm_session_pending(const sm *s, const jid *full)
{
    const sm_user *u = sm_user_find(s, full);
    for (const sm_deferred *d = u ? u->deferred : NULL; d; d = d->next)
        if (!d->stanza && jid_equal_full(&d->full, full))
            return true;
    return false;
}

/* What a session owns, once it is out of the tables. */
void smc_session_release(sm *s, sm_session *sess)
{
    smc_session_state_release(s, sess);
    sm_stanza_free(sess->presence);
    jid_free(&sess->jid);
    free(sess);
}

/* Ends sess: modules see it go (unavailable presence, last activity), then it leaves the tables.
 * reason < 0: the front already knows (it sent END, or the link is gone), or the session is
 * detached. */
static void session_end(sm *s, sm_session *sess, int reason, const char *text)
{
    sm_event ev = {.session = sess, .user = sess->user};
    sm_fire(s, SM_EV_SESSION_END, &ev);
    if (sess->link) {
        if (reason >= 0)
            s->t.end(s->tctx, sess->link->handle, sess->sid, (uint8_t)reason, text ? text : "");
        session_key k = {sess->link->serial, sess->sid};
        sm_map_del(&s->sessions, &k, sizeof(k));
    } else {
        s->detached--;
    }
    sm_map_del(&s->by_jid, jid_full(&sess->jid), jid_full_len(&sess->jid));
    sm_user *u = sess->user;
    for (sm_session **pp = &u->sessions; *pp; pp = &(*pp)->next)
        if (*pp == sess) {
            *pp = sess->next;
            break;
        }
    log_info("sm: session %s ended", jid_full(&sess->jid));
    smc_session_release(s, sess);
    smc_user_maybe_free(s, u);
}

/* Takes sess off its connection; it stays in by_jid and its user's list. */
static void session_detach(sm *s, sm_session *sess)
{
    session_key k = {sess->link->serial, sess->sid};
    sm_map_del(&s->sessions, &k, sizeof(k));
    sess->link = NULL;
    sess->sid = sess->link_serial = 0;
    s->detached++;
}

/* sess's connection is gone: a module may keep the session (SM_EV_SESSION_LOST), or it ends. */
static void session_lost(sm *s, sm_session *sess)
{
    sm_event ev = {.session = sess, .user = sess->user};
    if (!s->stopping && sm_fire(s, SM_EV_SESSION_LOST, &ev)) {
        log_info("sm: session %s detached", jid_full(&sess->jid));
        session_detach(s, sess);
        return;
    }
    session_end(s, sess, -1, NULL);
}

bool sm_session_detached(const sm_session *sess) { return sess->link == NULL; }

void sm_session_attach(sm *s, sm_session *sess, sm_link *l, uint64_t sid)
{
    if (sess->link) {
        s->t.end(s->tctx, sess->link->handle, sess->sid, SMPROTO_END_REPLACED,
                 "the session was resumed on another connection");
        session_detach(s, sess);
    }
    s->detached--;
    sess->link = l;
    sess->sid = sid;
    sess->link_serial = l->serial;
    session_key k = {l->serial, sid};
    sm_map_put(&s->sessions, &k, sizeof(k), sess);
    log_info("sm: session %s attached", jid_full(&sess->jid));
    sm_event ev = {.session = sess, .user = sess->user};
    sm_fire(s, SM_EV_SESSION_ATTACHED, &ev);
}

void sm_session_end(sm *s, sm_session *sess, uint8_t reason, const char *text)
{
    session_end(s, sess, reason, text);
}

void sm_end(sm *s, sm_link *l, uint64_t sid, uint8_t reason)
{
    sm_session *sess = sm_session_lookup(s, l->serial, sid);
    if (!sess) {
        s->stats.dropped_stale++;
        return;
    }
    session_lost(s, sess);
}

/* Ends every session (of link l, or all when l is NULL) with reason; reason < 0: their
 * connections are gone (modules may keep them). Ending one runs the modules, which may end
 * others: the sessions are found again by JID before each is ended, so none is ended twice or
 * after it was freed. */
void smc_sessions_end(sm *s, const sm_link *l, int reason, const char *text)
{
    size_t n = sm_map_count(&s->by_jid), k = 0;
    void **all = sm_map_values(&s->by_jid);
    char **jids = n ? mem_array(n, sizeof *jids) : NULL;
    for (size_t i = 0; i < n; i++) {
        sm_session *sess = all[i];
        if (!l || sess->link == l)
            jids[k++] = mem_strdup(jid_full(&sess->jid));
    }
    free(all);
    for (size_t i = 0; i < k; i++) {
        sm_session *sess = sm_map_get(&s->by_jid, jids[i], strlen(jids[i]));
        if (sess && (!l || sess->link == l)) {
            if (reason < 0)
                session_lost(s, sess);
            else
                session_end(s, sess, reason, text);
        }
        free(jids[i]);
    }
    free(jids);
}

void sm_link_down(sm *s, sm_link *l)
{
    smc_sessions_end(s, l, -1, NULL);
    for (sm_link **pp = &s->links; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    log_info("sm: %s '%s' is down", l->component ? "component" : "front", l->service);
    free(l->service);
    free(l);
}

typedef struct auth_ctx {
    sm *s;
    uint64_t serial, sid;
} auth_ctx;

static void auth_loaded(xdb_request *r, void *ctx)
{
    auth_ctx *a = ctx;
    sm_link *l = smc_link_by_serial(a->s, a->serial);
    if (l) {
        uint8_t status = r->status == XDB_OK          ? SMPROTO_AUTH_OK
                         : r->status == XDB_NOT_FOUND ? SMPROTO_AUTH_NO_USER
                                                      : SMPROTO_AUTH_ERROR;
        if (r->status == XDB_ERROR)
            log_warn("sm: credentials of %s@%s: %s", r->user, r->host, r->error);
        log_debug("sm: credentials of %s@%s: %s", r->user, r->host, xdb_status_name(r->status));
        a->s->t.auth_answer(a->s->tctx, l->handle, a->sid, status,
                            status == SMPROTO_AUTH_OK ? &r->creds : NULL);
    }
    free(a);
}

void sm_auth_query(sm *s, sm_link *l, uint64_t sid, const char *host, const char *user)
{
    jid j;
    if (jid_make(user, strlen(user), host, strlen(host), NULL, 0, &j) != JID_OK ||
        !sm_is_own_user(s, &j)) {
        if (j.domain_len)
            jid_free(&j);
        s->t.auth_answer(s->tctx, l->handle, sid, SMPROTO_AUTH_NO_USER, NULL);
        return;
    }
    auth_ctx *a = mem_zalloc(sizeof(*a));
    *a = (auth_ctx){s, l->serial, sid};
    sm_submit(s, sm_user_request(XDB_USER_CREDS, &j), auth_loaded, a);
    jid_free(&j);
}

void smc_bind_reply(sm *s, sm_link *l, uint64_t sid, bool resync, uint8_t status,
                       const char *full)
{
    if (!resync)
        s->t.bound(s->tctx, l->handle, sid, status, full);
    else if (status != SMPROTO_BOUND_OK)
        s->t.end(s->tctx, l->handle, sid, SMPROTO_END_ERROR, "session could not be restored");
}

static int user_session_count(const sm_user *u)
{
    int n = 0;
    for (const sm_session *x = u->sessions; x; x = x->next)
        n++;
    return n;
}

/* A new session of u for full, on connection (l, sid), or detached (l NULL). */
static sm_session *session_new(sm *s, sm_user *u, sm_link *l, uint64_t sid, const jid *full)
{
    sm_session *sess = mem_zalloc(SMC_EXT_OFFSET(sizeof(*sess)) + s->session_ext);
    sess->ext = (unsigned char *)sess + SMC_EXT_OFFSET(sizeof(*sess));
    sess->link = l;
    sess->sid = sid;
    sess->link_serial = l ? l->serial : 0;
    jid_copy(&sess->jid, full);
    sess->user = u;
    sess->since_ms = sm_wall_ms();
    sess->next = u->sessions;
    u->sessions = sess;
    if (l) {
        session_key k = {l->serial, sid};
        sm_map_put(&s->sessions, &k, sizeof(k), sess);
    } else {
        s->detached++;
    }
    sm_map_put(&s->by_jid, jid_full(&sess->jid), jid_full_len(&sess->jid), sess);
    return sess;
}

/* xml (a serialized presence) becomes sess's last broadcast presence, without being broadcast:
 * its contacts have it already. */
static void session_keep_presence(sm *s, sm_session *sess, const char *xml)
{
    sm_stanza *presence = sm_parse(s, xml, strlen(xml));
    if (presence && streq(presence->node->name, "presence") && !*sm_stanza_type(presence)) {
        sess->presence = sm_stanza_keep(presence);
        sess->priority = sm_presence_priority(presence);
        sess->available = true;
    }
    sm_stanza_free(presence);
}

/* The rest of a resync's restore, sess made: the modules' STATE record, and its presence. */
static void resync_restore(sm *s, sm_link *l, sm_session *sess, const sm_deferred *d)
{
    if (!smc_state_restore(s, sess, (const uint8_t *)buf_data(&d->state), buf_len(&d->state)))
        log_warn("sm: session %s: a malformed STATE record in the resync: ignored",
                 jid_full(&sess->jid));
    /* A session that outlived the previous SM (its front's first link during the start's wait):
     * every contact's client has its presence, which is kept as it is; mod_presence tells it of
     * the contacts that did not come back when the wait is over. Otherwise (the SM lived and had
     * ended the link's sessions, or the wait is over) contacts saw it go: its presence is
     * processed as if the client had sent it again. */
    bool quiet = d->presence && l->quiet_resync && s->restart.active;
    if (quiet)
        session_keep_presence(s, sess, d->presence);
    sm_event ev = {.session = sess, .user = sess->user};
    sm_fire(s, SM_EV_SESSION_ATTACHED, &ev);
    if (d->presence && !quiet)
        sm_session_stanza(s, l, d->sid, d->presence, strlen(d->presence));
}

/* A session that outlived the previous SM, re-announced by its front's first link during the
 * start's wait, is restored at once, before its account is loaded: a restart is over when every
 * front has re-announced its sessions, not when a million accounts have loaded. The account loads
 * in the background (user_loads.c); a stanza for the account or from the session meanwhile waits
 * for that load and starts it ahead of the rest (route.c). A session whose account has work
 * waiting already (a hibernated session being revived, a stanza), or whose full JID has a session,
 * takes the usual way: bound once the account is loaded. */
static bool restore_before_load(sm *s, sm_link *l, sm_user *u, const sm_deferred *d)
{
    if (!l->quiet_resync || !s->restart.active || u->loaded || u->deferred ||
        sm_session_find(s, &d->full))
        return false;
    sm_session *sess = session_new(s, u, l, d->sid, &d->full);
    log_info("sm: session %s restored (its account loads in the background)",
             jid_full(&sess->jid));
    resync_restore(s, l, sess, d);
    smc_load_in_background(s, u);
    return true;
}

void smc_bind_finish(sm *s, sm_user *u, sm_deferred *d)
{
    sm_link *l = smc_link_by_serial(s, d->link_serial);
    if (!l)
        return;
    if (!u->exists) {
        smc_bind_reply(s, l, d->sid, d->resync, SMPROTO_BOUND_NOT_ALLOWED, NULL);
        return;
    }
    if (sm_session_lookup(s, l->serial, d->sid)) {
        smc_bind_reply(s, l, d->sid, d->resync, SMPROTO_BOUND_NOT_ALLOWED, NULL);
        return;
    }
    sm_session *old = sm_session_find(s, &d->full);
    if (old && d->resync && !old->link) {
        /* The front had kept the connection while the link was down, and the session waited
         * detached: the same session goes on, state and presence as they are. */
        sm_session_attach(s, old, l, d->sid);
        smc_bind_reply(s, l, d->sid, true, SMPROTO_BOUND_OK, jid_full(&old->jid));
        return;
    }
    if (!old && !d->resync && user_session_count(u) >= s->cfg->limits.sessions) {
        /* A detached session gives way to a new one rather than refuse it. */
        for (sm_session *x = u->sessions; x; x = x->next)
            if (!x->link) {
                log_info("sm: %s has %d sessions: the detached %s ends for a new one",
                         jid_full(&u->jid), s->cfg->limits.sessions, jid_full(&x->jid));
                u->holds++;
                session_end(s, x, -1, NULL);
                u->holds--;
                break;
            }
    }
    if (!old && !d->resync && user_session_count(u) >= s->cfg->limits.sessions) {
        /* RFC 6120 §7.6.2.1. A resync restores sessions that were already counted. */
        log_info("sm: %s has %d sessions, the most allowed: bind refused", jid_full(&u->jid),
                 s->cfg->limits.sessions);
        smc_bind_reply(s, l, d->sid, false, SMPROTO_BOUND_CONSTRAINT, NULL);
        return;
    }
    if (old) {
        log_info("sm: session %s replaced by a new one", jid_full(&old->jid));
        u->holds++;   /* it may have been the user's last session */
        session_end(s, old, SMPROTO_END_REPLACED, "replaced by a new session");
        u->holds--;
    }
    sm_session *sess = session_new(s, u, l, d->sid, &d->full);
    log_info("sm: session %s %s", jid_full(&sess->jid), d->resync ? "restored" : "bound");
    smc_bind_reply(s, l, d->sid, d->resync, SMPROTO_BOUND_OK, jid_full(&sess->jid));
    if (d->resync)
        resync_restore(s, l, sess, d);
}

void smc_revive_finish(sm *s, sm_user *u, sm_deferred *d, bool failed)
{
    sm_revived_fn fn = d->revived;
    d->revived = NULL;
    if (!u || failed || !u->exists || sm_session_find(s, &d->full)) {
        fn(s, NULL, d->revived_ctx);
        return;
    }
    sm_session *sess = session_new(s, u, NULL, 0, &d->full);
    if (!smc_state_restore(s, sess, (const uint8_t *)buf_data(&d->state), buf_len(&d->state)))
        log_warn("sm: session %s: a malformed STATE record in storage: ignored",
                 jid_full(&sess->jid));
    if (d->presence)
        session_keep_presence(s, sess, d->presence);
    log_info("sm: session %s revived, detached", jid_full(&sess->jid));
    fn(s, sess, d->revived_ctx);
}

void sm_session_revive(sm *s, const jid *full, const uint8_t *state, size_t len,
                       const char *presence, sm_revived_fn fn, void *ctx)
{
    sm_user *u = smc_user_get(s, full);
    sm_deferred *d = mem_zalloc(sizeof(*d));
    jid_copy(&d->full, full);
    buf_append(&d->state, state, len);
    d->presence = presence && *presence ? mem_strdup(presence) : NULL;
    d->revived = fn;
    d->revived_ctx = ctx;
    if (u->loaded && !u->deferred) {
        smc_revive_finish(s, u, d, false);
        smc_deferred_free(d);
        smc_user_maybe_free(s, u);
    } else {
        smc_defer(s, u, d);
    }
}

void sm_session_pack(const sm *s, const sm_session *sess, buf *out)
{
    smc_state_pack(s, sess, out);
}

void sm_session_state_changed(sm *s, sm_session *sess)
{
    if (!sess->link)
        return;   /* sent again when it is attached */
    buf state = BUF_INIT;
    smc_state_pack(s, sess, &state);
    s->t.state(s->tctx, sess->link->handle, sess->sid, (const uint8_t *)buf_data(&state),
               buf_len(&state));
    buf_free(&state);
}

/* resync_state: NULL for a BIND; else the session's STATE record (resync_len bytes) and
 * presence ("" for none). */
static void bind_start(sm *s, sm_link *l, uint64_t sid, jid *full, const uint8_t *resync_state,
                       size_t resync_len, const char *resync_presence)
{
    sm_user *u = smc_user_get(s, full);
    sm_deferred *d = mem_zalloc(sizeof(*d));
    d->link_serial = l->serial;
    d->sid = sid;
    jid_copy(&d->full, full);
    d->resync = resync_state != NULL;
    if (resync_state) {
        buf_append(&d->state, resync_state, resync_len);
        d->presence = *resync_presence ? mem_strdup(resync_presence) : NULL;
    }
    if (u->loaded && !u->deferred) {
        smc_bind_finish(s, u, d);
        smc_deferred_free(d);
        smc_user_maybe_free(s, u);
    } else if (d->resync && restore_before_load(s, l, u, d)) {
        smc_deferred_free(d);
    } else {
        /* During the start's wait, a re-announced session keeps it open until it is bound. */
        if (d->resync && s->restart.active) {
            d->counted_resync = true;
            s->restart.resyncs_pending++;
        }
        smc_defer(s, u, d);
    }
}

/* The stanza a front sent for (link_serial, sid) is handled as it came once u is loaded. */
static void defer_frame(sm *s, sm_user *u, uint64_t link_serial, uint64_t sid, const char *xml,
                        size_t len)
{
    sm_deferred *d = mem_zalloc(sizeof *d);
    d->link_serial = link_serial;
    d->sid = sid;
    d->frame = mem_strndup(xml, len);
    d->frame_len = len;
    smc_defer(s, u, d);
}

bool smc_defer_frame(sm *s, sm_link *l, uint64_t sid, const jid *from, const char *xml,
                     size_t len)
{
    sm_user *u = from->domain_len ? sm_user_find(s, from) : NULL;
    bool binding = false;
    for (const sm_deferred *d = u ? u->deferred : NULL; d && !binding; d = d->next)
        binding = !d->stanza && !d->frame && !d->revived && d->link_serial == l->serial &&
                  d->sid == sid;
    if (binding)
        defer_frame(s, u, l->serial, sid, xml, len);
    return binding;
}

void smc_defer_session_frame(sm *s, sm_session *sess, const char *xml, size_t len)
{
    defer_frame(s, sess->user, sess->link_serial, sess->sid, xml, len);
}

void sm_bind(sm *s, sm_link *l, uint64_t sid, const char *host, const char *user,
             const char *resource, uint8_t flags)
{
    char token[17];
    if (!resource || !*resource) {
        random_token(token, 16);
        resource = token;
    }
    jid full;
    if (l->component ||
        jid_make(user, strlen(user), host, strlen(host), resource, strlen(resource), &full) !=
            JID_OK) {
        s->t.bound(s->tctx, l->handle, sid, SMPROTO_BOUND_NOT_ALLOWED, NULL);
        return;
    }
    if (!sm_is_own_user(s, &full)) {
        jid_free(&full);
        s->t.bound(s->tctx, l->handle, sid, SMPROTO_BOUND_NOT_ALLOWED, NULL);
        return;
    }
    bind_start(s, l, sid, &full, NULL, 0, NULL);
    jid_free(&full);
}

void sm_resync(sm *s, sm_link *l, uint64_t sid, const char *full_jid, const uint8_t *state,
               size_t state_len, const char *presence)
{
    jid full;
    if (jid_parse(full_jid, strlen(full_jid), &full) != JID_OK) {
        s->t.end(s->tctx, l->handle, sid, SMPROTO_END_ERROR, "bad JID in resync");
        return;
    }
    if (!sm_is_own_user(s, &full) || jid_is_bare(&full)) {
        s->t.end(s->tctx, l->handle, sid, SMPROTO_END_ERROR, "not a local full JID");
    } else {
        sm_session *old = sm_session_lookup(s, l->serial, sid);
        if (!old || !jid_equal_full(&old->jid, &full))
            bind_start(s, l, sid, &full, state ? state : (const uint8_t *)"", state_len,
                       presence);
    }
    jid_free(&full);
}

void sm_register(sm *s, sm_link *l, uint64_t sid, const char *host, const char *xml, size_t len)
{
    sm_stanza *st = sm_parse(s, xml, len);
    if (!st || !xml_is(st->node, SM_NS_CLIENT, "iq")) {
        s->stats.dropped_bad++;
        sm_stanza_free(st);
        return;
    }
    sm_event ev = {.stanza = st, .link_serial = l->serial, .sid = sid, .host = host};
    sm_fire(s, SM_EV_REGISTER, &ev);
    sm_stanza_free(ev.stanza);
}

size_t sm_kick(sm *s, const jid *j, const char *text)
{
    size_t n = 0;
    if (!jid_is_bare(j)) {
        sm_session *sess = sm_session_find(s, j);
        if (sess) {
            session_end(s, sess, SMPROTO_END_KICKED, text);
            n++;
        }
        return n;
    }
    sm_user *u;
    while ((u = sm_user_find(s, j)) && u->sessions) {
        session_end(s, u->sessions, SMPROTO_END_KICKED, text);
        n++;
    }
    return n;
}

void sm_each_session(sm *s, void (*fn)(sm_session *sess, void *ctx), void *ctx)
{
    size_t n = sm_map_count(&s->by_jid);
    void **all = sm_map_values(&s->by_jid);
    for (size_t i = 0; i < n; i++)
        fn(all[i], ctx);
    free(all);
}
