/* sm/muc_presence.c — presence to room/nick (XEP-0045 §7.2-§7.6, §7.14, §10.1): joining (and
 * creating a room), presence changes, nick changes and leaving; a session of an occupant's
 * account may join under the same nick (one occupant, several sessions).
 *
 * A join is refused, in this order, with the errors of §7.2: a nick that is not one
 * (jid-malformed) or too long (not-acceptable), a locked room (item-not-found), a banned user
 * (forbidden), a members-only room (registration-required), a wrong password (not-authorized), a
 * full room (service-unavailable; admins and owners pass up to <muc><occupants_max>), a nick
 * someone else has (conflict); and first of all a session in <muc><rooms_per_session> rooms
 * already (policy-violation). A presence over <muc><presence_max> bytes (what the room keeps and
 * sends every occupant) is refused with policy-violation, a join or a change. Creating a room
 * takes an account of the service's host (not-allowed otherwise), and fewer than
 * <muc><rooms_per_user> rooms owned and <muc><rooms_max> on the service (resource-constraint).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/muc.h"
#include "sm/strset.h"

static const int self_only[] = {110, 0};

/* The nick of room/nick, NUL-terminated (the resource of a parsed JID is). */
static const char *nick_of(const sm_stanza *st)
{
    size_t len;
    return jid_resource(&st->to, &len);
}

static size_t rooms_owned(const muc_service *svc, const jid *real)
{
    size_t n = 0;
    void **rooms = sm_map_values(&svc->rooms);
    for (size_t i = 0; i < sm_map_count(&svc->rooms); i++)
        n += muc_affiliation_of(rooms[i], real) == MUC_OWNER;
    free(rooms);
    return n;
}

static void keep_presence(muc_occupant *o, const sm_stanza *st)
{
    if (o->presence)
        sm_stanza_free(o->presence);
    o->presence = sm_stanza_copy(st);
}

/* The other occupants' presence, to one joining session. */
static void send_roster(sm *s, muc_room *r, const muc_occupant *joiner, const jid *to)
{
    bool sees = muc_sees_jids(r, joiner);
    void **v = sm_map_values(&r->occupants);
    for (size_t i = 0; i < sm_map_count(&r->occupants); i++) {
        const muc_occupant *o = v[i];
        if (o == joiner)
            continue;
        muc_send_one(s, to, muc_presence_of(s, r, o, sees, &(muc_presence_opts){0}));
    }
    free(v);
}

static const char *join_refusal(sm *s, muc_room *r, const sm_stanza *st, const char *nick,
                                const char **type)
{
    muc_affiliation aff = muc_affiliation_of(r, &st->from);
    *type = "auth";
    if (r->locked && aff != MUC_OWNER) {
        *type = "cancel";
        return "item-not-found";
    }
    if (aff == MUC_OUTCAST)
        return "forbidden";
    if (r->cfg.members_only && aff < MUC_MEMBER)
        return "registration-required";
    if (r->cfg.password && *r->cfg.password && aff < MUC_OWNER) {
        const xml_node *x = xml_child(st->node, NS_MUC, "x");
        const xml_node *pw = x ? xml_child(x, NS_MUC, "password") : NULL;
        const char *given = pw ? xml_text(st->arena, pw) : NULL;
        if (!given || strcmp(given, r->cfg.password) != 0)
            return "not-authorized";
    }
    size_t n = sm_map_count(&r->occupants);
    *type = "wait";
    if ((n >= (size_t)r->cfg.max_users && aff < MUC_ADMIN) ||
        n >= (size_t)muc_option(s, "muc/occupants_max"))
        return "service-unavailable";
    const muc_occupant *same = muc_occupant_by_nick(r, nick);
    *type = "cancel";
    if (same && !jid_equal_bare(&same->real, &st->from))
        return "conflict";
    return NULL;
}

static void join(sm *s, muc_service *svc, muc_room *r, sm_stanza *st, const char *nick)
{
    bool created = false;
    const xml_node *x = xml_child(st->node, NS_MUC, "x");
    if (muc_session_rooms(s, &st->from) >= (size_t)muc_option(s, "muc/rooms_per_session")) {
        sm_bounce(s, st, "wait", "policy-violation");
        return;
    }
    if (!r) {
        size_t hlen;
        const char *host = jid_domain(&st->from, &hlen);
        if (!jid_node(&st->from, &(size_t){0}) || strlen(svc->host) != hlen ||
            memcmp(svc->host, host, hlen) != 0) {
            sm_bounce(s, st, "cancel", "not-allowed");
            return;
        }
        if (sm_map_count(&svc->rooms) >= (size_t)muc_option(s, "muc/rooms_max") ||
            rooms_owned(svc, &st->from) >= (size_t)muc_option(s, "muc/rooms_per_user")) {
            sm_bounce(s, st, "wait", "resource-constraint");
            return;
        }
        size_t nlen;
        const char *node = jid_node(&st->to, &nlen);
        if (!(r = muc_room_new(s, svc, node, nlen))) {
            sm_bounce(s, st, "modify", "jid-malformed");
            return;
        }
        char bare[JID_MAX_LEN + 1];
        jid_bare_to_string(&st->from, bare, sizeof bare);
        /* A client that does not speak MUC gets an instant room (§10.1.1). */
        r->locked = x != NULL;
        muc_set_affiliation(s, r, bare, MUC_OWNER, NULL);
        muc_store_room(s, r);
        created = true;
        log_info("sm: muc: %s created room %s", jid_full(&st->from), jid_full(&r->jid));
    } else {
        const char *type, *refusal = join_refusal(s, r, st, nick, &type);
        if (refusal) {
            sm_bounce(s, st, type, refusal);
            return;
        }
    }
    muc_occupant *o = muc_occupant_by_nick(r, nick);
    bool new_occupant = !o;
    if (!o) {
        o = mem_zalloc(sizeof *o);
        o->nick = mem_strdup(nick);
        jid_bare(&st->from, &o->real);
        o->role = muc_default_role(r, muc_affiliation_of(r, &st->from));
        o->joined_ms = sm_wall_ms();
        sm_map_put(&r->occupants, o->nick, strlen(o->nick), o);
    }
    o->sessions = mem_realloc(o->sessions, (o->nsessions + 1) * sizeof *o->sessions);
    jid_copy(&o->sessions[o->nsessions++], &st->from);
    sm_map_put(&r->by_session, jid_full(&st->from), jid_full_len(&st->from), o);
    muc_session_joined(s, &st->from, r);
    keep_presence(o, st);
    muc_store_occupant(s, r, o, &st->from);

    send_roster(s, r, o, &st->from);
    int codes[6], n = 0;
    codes[n++] = 110;
    if (r->cfg.whois_anyone)
        codes[n++] = 100;
    if (r->cfg.logging)
        codes[n++] = 170;
    if (created)
        codes[n++] = 201;
    codes[n] = 0;
    /* The others hear of it (a new session of an occupant: its new presence), then the joining
     * session gets its own presence with the codes; other sessions of the occupant the same
     * presence without them. */
    muc_broadcast_presence(s, r, o, &(muc_presence_opts){0}, NULL, o);
    muc_send_one(s, &st->from, muc_presence_of(s, r, o, true, &(muc_presence_opts){.codes = codes}));
    if (!new_occupant && o->nsessions > 1) {
        sm_fanout others =
            sm_fanout_of(muc_presence_of(s, r, o, true, &(muc_presence_opts){.codes = self_only}));
        for (size_t i = 0; i + 1 < o->nsessions; i++)
            muc_send_to_session(s, &o->sessions[i], &others);
        sm_fanout_free(&others);
    }
    /* Even a new, locked room ends the join with its (empty) subject (§7.2.15): clients wait
     * for it. */
    muc_send_history(s, r, &st->from, x ? xml_child(x, NS_MUC, "history") : NULL);
    sm_stanza_free(st);
}

static void change_nick(sm *s, muc_room *r, muc_occupant *o, sm_stanza *st, const char *nick)
{
    const muc_occupant *taken = muc_occupant_by_nick(r, nick);
    if (taken && !jid_equal_bare(&taken->real, &o->real)) {
        sm_bounce(s, st, "cancel", "conflict");
        return;
    }
    if (taken || o->nsessions > 1) {
        /* Merging into another nick of the account, or renaming one session of several: not
         * offered (§7.6 leaves several sessions out). */
        sm_bounce(s, st, "cancel", "not-acceptable");
        return;
    }
    static const int changed[] = {303, 0}, changed_self[] = {110, 303, 0};
    muc_broadcast_presence(s, r, o,
                           &(muc_presence_opts){.type = "unavailable", .codes = changed,
                                                .item_nick = nick},
                           changed_self, NULL);
    sm_map_del(&r->occupants, o->nick, strlen(o->nick));
    free(o->nick);
    o->nick = mem_strdup(nick);
    sm_map_put(&r->occupants, o->nick, strlen(o->nick), o);
    keep_presence(o, st);
    muc_store_occupant(s, r, o, &st->from);
    muc_broadcast_presence(s, r, o, &(muc_presence_opts){0}, self_only, NULL);
    sm_stanza_free(st);
}

static void leave(sm *s, muc_room *r, muc_occupant *o, sm_stanza *st)
{
    if (o->nsessions == 1) {
        keep_presence(o, st);
        o->role = MUC_ROLE_NONE;
        muc_broadcast_presence(s, r, o, &(muc_presence_opts){.type = "unavailable"}, self_only,
                               NULL);
        muc_occupant_drop_session(s, r, o, &st->from);
        muc_room_maybe_gone(s, r);
    } else {
        muc_send_one(s, &st->from, muc_presence_of(s, r, o, true, &(muc_presence_opts){
            .type = "unavailable", .codes = self_only}));
        muc_occupant_drop_session(s, r, o, &st->from);
    }
    sm_stanza_free(st);
}

void muc_presence(sm *s, muc_service *svc, sm_stanza *st)
{
    const char *type = sm_stanza_type(st);
    const char *nick = nick_of(st);
    size_t nlen;
    const char *node = jid_node(&st->to, &nlen);
    muc_room *r = muc_room_find(svc, node, nlen);
    muc_occupant *o = r ? muc_occupant_by_session(r, &st->from) : NULL;
    bool unavailable = !strcmp(type, "unavailable") || !strcmp(type, "error");
    if (unavailable) {
        if (o)
            leave(s, r, o, st);
        else
            sm_stanza_free(st);
        return;
    }
    if (*type) {
        sm_stanza_free(st);     /* probes, subscriptions: rooms have none */
        return;
    }
    if (!nick) {
        sm_bounce(s, st, "modify", "jid-malformed");
        return;
    }
    if (strlen(nick) > (size_t)muc_option(s, "muc/nick_max")) {
        sm_bounce(s, st, "modify", "not-acceptable");
        return;
    }
    /* What a room keeps and sends every occupant: a presence of a few kilobytes at most. */
    size_t plen;
    char *kept = sm_xml_string(st->node, (size_t)muc_option(s, "muc/presence_max"), &plen);
    if (!kept) {
        sm_bounce(s, st, "modify", "policy-violation");
        return;
    }
    free(kept);
    if (!o) {
        join(s, svc, r, st, nick);
    } else if (strcmp(o->nick, nick) != 0) {
        change_nick(s, r, o, st, nick);
    } else {
        keep_presence(o, st);
        muc_broadcast_presence(s, r, o, &(muc_presence_opts){0}, self_only, NULL);
        sm_stanza_free(st);
    }
}
