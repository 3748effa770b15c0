/* sm/mod_muc.c — multi-user chat (XEP-0045) inside the SM: a room service per served host
 * (conference.HOST, or <host><muc><domain>; none for a host whose service domain is a configured
 * component's, an external MUC), listed in the host's disco#items, whose stanzas the router hands
 * over (sm_serve_domain); the module, its options, and where a stanza to the service
 * goes: the service itself (disco, unique names), a room (messages, admin and owner iqs, disco,
 * pings) or an occupant (presence, private messages, iqs: sm/muc_iq.c). Which rooms each session is in, so that
 * a session that ends leaves them (with unavailable presence) and a restart drops occupants whose
 * sessions did not come back. The rest is in sm/muc_*.c (sm/muc.h says which file does what).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "sm/disco.h"
#include "sm/muc.h"
#include "sm/strset.h"

static const sm_int_option muc_options[] = {
    {"muc/rooms_max", 100000, 1, 10000000},
    {"muc/rooms_per_user", 100, 1, 1000000},
    {"muc/occupants_max", 10000, 1, 1000000},
    {"muc/max_users", 1000, 1, 1000000},
    {"muc/history", 20, 0, 1000},
    {"muc/history_max", 200, 0, 10000},
    {"muc/history_bytes", 256 * 1024, 0, 64 * 1024 * 1024},
    {"muc/message_max", 100000, 256, 10000000},
    {"muc/nick_max", 255, 1, 1023},
    {"muc/presence_max", 16384, 256, 1048576},
    {"muc/affiliations_max", 10000, 1, 10000000},
    {"muc/rooms_per_session", 1000, 1, 100000},
    {"muc/persistent", 0, 0, 1},
    {"muc/logging", 1, 0, 1},
    {"muc/public", 1, 0, 1},
    {NULL, 0, 0, 0},
};

static const char *const muc_paths[] = {"host/muc/domain", NULL};

typedef struct muc_data {
    muc_service *services;
    size_t nservices;
    sm_map joined;              /* session full JID -> sm_strset of room bare JIDs */
    bool loaded;                /* storage's rooms are in memory */
    muc_loading *loading;       /* until then: the load in progress */
    bool prune_again;           /* a pruning found sessions still coming: again at the tick, */
    int64_t prune_until;        /* until then (sm_now_ms) */
} muc_data;

static muc_data *data_of(sm *s) { return sm_module_data(s, &mod_muc); }

long long muc_option(sm *s, const char *path) { return sm_module_int(s, &mod_muc, path); }

/* ---- which rooms a session is in ---- */

void muc_session_joined(sm *s, const jid *full, const muc_room *r)
{
    muc_data *d = data_of(s);
    sm_strset **set = sm_map_get(&d->joined, jid_full(full), jid_full_len(full));
    if (!set) {
        set = mem_zalloc(sizeof *set);
        sm_map_put(&d->joined, jid_full(full), jid_full_len(full), set);
    }
    sm_strset_add(set, jid_full(&r->jid));
}

void muc_session_left(sm *s, const jid *full, const muc_room *r)
{
    muc_data *d = data_of(s);
    sm_strset **set = sm_map_get(&d->joined, jid_full(full), jid_full_len(full));
    if (!set)
        return;
    sm_strset_remove(set, jid_full(&r->jid));
    if (!sm_strset_count(*set)) {
        sm_map_del(&d->joined, jid_full(full), jid_full_len(full));
        sm_strset_free(set);
        free(set);
    }
}

size_t muc_session_rooms(sm *s, const jid *full)
{
    sm_strset **set = sm_map_get(&data_of(s)->joined, jid_full(full), jid_full_len(full));
    return set ? sm_strset_count(*set) : 0;
}

static muc_service *service_of(sm *s, const jid *j)
{
    muc_data *d = data_of(s);
    size_t dlen;
    const char *dom = jid_domain(j, &dlen);
    for (size_t i = 0; i < d->nservices; i++)
        if (strlen(d->services[i].domain) == dlen &&
            memcmp(d->services[i].domain, dom, dlen) == 0)
            return &d->services[i];
    return NULL;
}

static muc_room *room_of(sm *s, const jid *room)
{
    muc_service *svc = service_of(s, room);
    size_t nlen;
    const char *node = jid_node(room, &nlen);
    return svc && node ? muc_room_find(svc, node, nlen) : NULL;
}

/* The session leaves every room it is in, as an unavailable presence to each would. */
static void leave_all(sm *s, const jid *full, const char *why)
{
    muc_data *d = data_of(s);
    sm_strset **set = sm_map_get(&d->joined, jid_full(full), jid_full_len(full));
    if (!set)
        return;
    size_t n = sm_strset_count(*set);
    const char **members = sm_strset_members(*set);
    char **rooms = mem_array(n, sizeof *rooms);
    for (size_t i = 0; i < n; i++)
        rooms[i] = mem_strdup(members[i]);
    free(members);
    for (size_t i = 0; i < n; i++) {
        jid rj;
        if (jid_parse(rooms[i], strlen(rooms[i]), &rj) == JID_OK) {
            muc_room *r = room_of(s, &rj);
            muc_occupant *o = r ? muc_occupant_by_session(r, full) : NULL;
            if (o) {
                log_debug("sm: muc: %s leaves %s (%s)", jid_full(full), rooms[i], why);
                bool last = o->nsessions == 1;
                if (last) {
                    static const int self[] = {110, 0};
                    o->role = MUC_ROLE_NONE;
                    muc_broadcast_presence(s, r, o, &(muc_presence_opts){.type = "unavailable"},
                                           self, NULL);
                }
                muc_occupant_drop_session(s, r, o, full);
                if (last)
                    muc_room_maybe_gone(s, r);
            }
            jid_free(&rj);
        }
        free(rooms[i]);
    }
    free(rooms);
}

static bool session_end(sm *s, sm_event *ev)
{
    if (!sm_stopping(s))
        leave_all(s, &ev->session->jid, "its session ended");
    return false;
}

/* Every occupant's session that is not here (after a restart: it did not come back) leaves;
 * one that is coming (its resync waits for its roster) is looked at again at the next tick,
 * unless waiting is over. The sessions are gathered first: a leave may free a room. */
static void prune(sm *s, bool wait_for_coming)
{
    muc_data *d = data_of(s);
    d->prune_again = false;
    jid *gone = NULL;
    size_t ngone = 0;
    for (size_t k = 0; k < d->nservices; k++) {
        void **rooms = sm_map_values(&d->services[k].rooms);
        for (size_t i = 0; i < sm_map_count(&d->services[k].rooms); i++) {
            const muc_room *r = rooms[i];
            void **occ = sm_map_values(&r->occupants);
            for (size_t j = 0; j < sm_map_count(&r->occupants); j++) {
                const muc_occupant *o = occ[j];
                for (size_t x = 0; x < o->nsessions; x++) {
                    if (sm_session_find(s, &o->sessions[x]))
                        continue;
                    if (wait_for_coming && sm_session_pending(s, &o->sessions[x])) {
                        d->prune_again = true;
                        continue;
                    }
                    gone = mem_realloc(gone, (ngone + 1) * sizeof *gone);
                    jid_copy(&gone[ngone++], &o->sessions[x]);
                }
            }
            free(occ);
        }
        free(rooms);
    }
    for (size_t j = 0; j < ngone; j++) {
        leave_all(s, &gone[j], "its session did not come back after the restart");
        jid_free(&gone[j]);
    }
    free(gone);
}

void muc_prune_gone(sm *s)
{
    prune(s, true);
}

/* Sessions that are coming are looked for again each tick, for at most PRUNE_WAIT_MS: one that
 * never comes (its account could not be loaded) leaves then. */
#define PRUNE_WAIT_MS (60 * 1000)

static bool muc_tick(sm *s, sm_event *ev)
{
    muc_data *d = data_of(s);
    if (!d->prune_again)
        return false;
    if (!d->prune_until)
        d->prune_until = sm_now_ms(s) + PRUNE_WAIT_MS;
    prune(s, sm_now_ms(s) < d->prune_until);
    return false;
}

static bool start_done(sm *s, sm_event *ev)
{
    if (data_of(s)->loaded)
        muc_prune_gone(s);
    return false;
}

/* ---- where a stanza goes ---- */

static void service_iq(sm *s, muc_service *svc, sm_stanza *st)
{
    const char *type = sm_stanza_type(st);
    xml_node *q = muc_payload(st);
    bool get = strcmp(type, "get") == 0;
    if (q && get && xml_is(q, NS_DISCO_INFO, "query")) {
        muc_service_disco_info(s, svc, st, q);
    } else if (q && get && xml_is(q, NS_DISCO_ITEMS, "query")) {
        muc_service_disco_items(s, svc, st, q);
    } else if (q && get && xml_is(q, NS_PING, "ping")) {
        sm_iq_result(s, st, NULL);
    } else if (q && get && xml_is(q, NS_MUC_UNIQUE, "unique")) {
        char name[40];
        sm_make_id(s, "room", name);
        xml_arena *a = xml_arena_new(256);
        xml_node *u = xml_element_new(a, NULL, NS_MUC_UNIQUE, "unique");
        xml_text_new(a, u, name, strlen(name));
        sm_iq_result(s, st, u);
        xml_arena_free(a);
    } else if (!strcmp(type, "get") || !strcmp(type, "set")) {
        sm_bounce(s, st, "cancel", "service-unavailable");
    } else {
        sm_stanza_free(st);
    }
}

static void room_iq(sm *s, muc_room *r, sm_stanza *st)
{
    const char *type = sm_stanza_type(st);
    xml_node *q = muc_payload(st);
    bool get = strcmp(type, "get") == 0, set = strcmp(type, "set") == 0;
    if (!get && !set) {
        sm_stanza_free(st);
    } else if (q && get && xml_is(q, NS_DISCO_INFO, "query")) {
        muc_room_disco_info(s, r, st, q);
    } else if (q && get && xml_is(q, NS_DISCO_ITEMS, "query")) {
        muc_room_disco_items(s, r, st, q);
    } else if (q && xml_is(q, NS_MUC_ADMIN, "query")) {
        muc_admin_iq(s, r, st, q);
    } else if (q && xml_is(q, NS_MUC_OWNER, "query")) {
        muc_owner_iq(s, r, st, q);
    } else if (q && get && xml_is(q, NS_PING, "ping")) {
        sm_iq_result(s, st, NULL);
    } else if (q && muc_may_read_history(r, &st->from)) {
        /* Others' (the room's archive, mod_muc_mam.c). */
        sm_event ev = {.stanza = st, .node = q, .name = jid_full(&r->jid)};
        if (!sm_fire_named(s, "muc-room-iq", &ev))
            sm_bounce(s, st, "cancel", "service-unavailable");
    } else {
        sm_bounce(s, st, q ? "auth" : "modify", q ? "forbidden" : "bad-request");
    }
}

bool muc_may_read_history(const muc_room *r, const jid *real)
{
    muc_affiliation aff = muc_affiliation_of(r, real);
    return aff != MUC_OUTCAST && (!r->cfg.members_only || aff >= MUC_MEMBER);
}

static void muc_stanza(sm *s, sm_stanza *st, void *ctx)
{
    muc_service *svc = ctx;
    const char *name = st->node->name;
    size_t nlen;
    const char *node = jid_node(&st->to, &nlen);
    if (!node) {
        if (!strcmp(name, "iq"))
            service_iq(s, svc, st);
        else if (!strcmp(name, "message") && sm_message_kind(st) != SM_MSG_ERROR)
            sm_bounce(s, st, "cancel", "service-unavailable");
        else
            sm_stanza_free(st);
        return;
    }
    if (!strcmp(name, "presence")) {
        muc_presence(s, svc, st);
        return;
    }
    if (!strcmp(name, "message")) {
        muc_message(s, svc, st);
        return;
    }
    muc_room *r = muc_room_find(svc, node, nlen);
    if (!r || (r->locked && !muc_occupant_by_session(r, &st->from))) {
        const char *type = sm_stanza_type(st);
        if (!strcmp(type, "get") || !strcmp(type, "set"))
            sm_bounce(s, st, "cancel", "item-not-found");
        else
            sm_stanza_free(st);
        return;
    }
    if (jid_is_bare(&st->to))
        room_iq(s, r, st);
    else
        muc_occupant_iq(s, r, st);
}

/* ---- disco of the hosts ---- */

static bool host_items(sm *s, sm_event *ev)
{
    muc_data *d = data_of(s);
    for (size_t i = 0; i < d->nservices; i++)
        disco_host_item(ev, d->services[i].host, d->services[i].domain, "Chatrooms");
    return false;
}

static bool muc_metrics(sm *s, sm_event *ev)
{
    muc_data *d = data_of(s);
    uint64_t rooms = 0, occupants = 0;
    for (size_t i = 0; i < d->nservices; i++) {
        void **v = sm_map_values(&d->services[i].rooms);
        rooms += sm_map_count(&d->services[i].rooms);
        for (size_t k = 0; k < sm_map_count(&d->services[i].rooms); k++)
            occupants += sm_map_count(&((muc_room *)v[k])->occupants);
        free(v);
    }
    metrics_family(ev->out, "jabshard_sm_muc_rooms", "gauge", "Group chat rooms in memory.");
    metrics_sample(ev->out, "jabshard_sm_muc_rooms", "", rooms);
    metrics_family(ev->out, "jabshard_sm_muc_occupants", "gauge", "Occupants of those rooms.");
    metrics_sample(ev->out, "jabshard_sm_muc_occupants", "", occupants);
    metrics_family(ev->out, "jabshard_sm_muc_sessions", "gauge", "Sessions in one room or more.");
    metrics_sample(ev->out, "jabshard_sm_muc_sessions", "", sm_map_count(&d->joined));
    return false;
}

/* ---- the module ---- */

static bool muc_init(sm *s, const sm_module *self, config *cfg)
{
    const sm_config *c = sm_cfg(s);
    muc_data *d = mem_zalloc(sizeof *d);
    sm_map_init(&d->joined);
    d->services = mem_array(c->nhosts ? (size_t)c->nhosts : 1, sizeof *d->services);
    sm_module_set_data(s, self, d);
    for (int i = 0; i < c->nhosts; i++) {
        char def[JID_MAX_LEN + 1];
        snprintf(def, sizeof def, "conference.%s", c->hosts[i].name);
        const char *domain = cfg ? config_str(cfg, c->hosts[i].el, "muc/domain", def) : def;
        jid dj;
        if (!sm_service_domain(c, "muc", c->hosts[i].name, domain, &dj))
            return false;
        if (!dj.domain_len)
            continue;
        muc_service *svc = &d->services[d->nservices];
        svc->domain = mem_strdup(jid_full(&dj));
        svc->host = mem_strdup(c->hosts[i].name);
        jid_free(&dj);
        sm_map_init(&svc->rooms);
        d->nservices++;
        if (!sm_serve_domain(s, svc->domain, muc_stanza, svc))
            return false;
    }
    d->loading = muc_store_load(s, d->services, d->nservices);
    return true;
}

void muc_store_loaded(sm *s)
{
    muc_data *d = data_of(s);
    d->loaded = true;
    d->loading = NULL;
    if (!sm_start_waiting(s))
        muc_prune_gone(s);
}

static void free_joined(void *val, void *ctx)
{
    sm_strset **set = val;
    sm_strset_free(set);
    free(set);
}

static void muc_fini(sm *s, const sm_module *self)
{
    muc_data *d = data_of(s);
    if (!d)
        return;
    for (size_t i = 0; i < d->nservices; i++) {
        muc_service *svc = &d->services[i];
        void **rooms = sm_map_values(&svc->rooms);
        size_t n = sm_map_count(&svc->rooms);
        for (size_t k = 0; k < n; k++)
            muc_room_free(s, rooms[k]);
        free(rooms);
        sm_map_free(&svc->rooms);
        free(svc->domain);
        free(svc->host);
        free(svc->listed);
    }
    free(d->services);
    muc_store_abandon(d->loading);
    sm_map_each(&d->joined, free_joined, NULL);
    sm_map_free(&d->joined);
    free(d);
}

static const sm_handler muc_handlers[] = {
    {"session-end", .hook = session_end},
    {"start-done", .hook = start_done},
    {"tick", .hook = muc_tick},
    {"metrics", .hook = muc_metrics},
    {"disco-host-items", .hook = host_items},
    {NULL},
};

const sm_module mod_muc = {
    .name = "muc",
    .int_options = muc_options,
    .options = muc_paths,
    .init = muc_init,
    .fini = muc_fini,
    .handlers = muc_handlers,
    /* "muc-message": a group message of a room with logging on, as broadcast (stanza: from
     * room/nick; name: the room's JID; id: its stanza id). "muc-room-iq": an iq to a room the
     * service does not answer itself, from someone who may read the room's history (stanza, node:
     * the payload, name: the room's JID); a hook that takes it returns true. "muc-room-info": a
     * room's disco#info being built (arena, node: the <query/>, name: the room's JID), for a
     * room with logging on. */
    .events = (const char *const[]){"muc-message", "muc-room-iq", "muc-room-info", NULL},
};
