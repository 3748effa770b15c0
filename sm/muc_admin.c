/* sm/muc_admin.c — what moderators, admins and owners do to a room (XEP-0045 §8-§10): muc#admin
 * lists of roles and affiliations, kicks (307), voice, moderator rights, bans (301), memberships
 * (321, 322); muc#owner configuration (unlocking a new room, instant rooms, status codes 104,
 * 170-173) and destruction with an alternate venue.
 *
 * Who may do what (§5.2): a moderator changes the roles of visitors and participants, an admin
 * also grants and revokes moderator, members and bans of those below admin, an owner everything;
 * nobody acts on someone of a higher affiliation (not-allowed), and a room keeps an owner
 * (conflict). A set of several items is checked whole before any is applied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/muc.h"

#define ADMIN_ITEMS_MAX 100

typedef struct change {
    muc_occupant *target;       /* a role change: the occupant */
    char bare[JID_MAX_LEN + 1]; /* an affiliation change: the account */
    bool is_role;
    muc_role role;
    muc_affiliation aff;
    const char *reason;
} change;

static muc_affiliation aff_of_bare(const muc_room *r, const char *bare)
{
    const muc_aff_entry *e = sm_map_get(&r->affiliations, bare, strlen(bare));
    return e ? e->aff : MUC_AFF_NONE;
}

/* ---- lists ---- */

static void list_items(sm *s, muc_room *r, sm_stanza *st, const xml_node *item,
                       const muc_occupant *actor, muc_affiliation actor_aff)
{
    const char *aff_name = xml_attr_get(item, "affiliation"), *role_name = xml_attr_get(item, "role");
    muc_affiliation aff;
    muc_role role;
    xml_arena *a = xml_arena_new(4096);
    xml_node *q = xml_element_new(a, NULL, NS_MUC_ADMIN, "query");
    if (aff_name && muc_affiliation_parse(aff_name, &aff) && aff != MUC_AFF_NONE) {
        bool members_may = aff == MUC_MEMBER && r->cfg.members_only && actor_aff >= MUC_MEMBER;
        if (actor_aff < MUC_ADMIN && !members_may) {
            xml_arena_free(a);
            sm_bounce(s, st, "auth", "forbidden");
            return;
        }
        void **v = sm_map_values(&r->affiliations);
        for (size_t i = 0; i < sm_map_count(&r->affiliations); i++) {
            const muc_aff_entry *e = v[i];
            if (e->aff != aff)
                continue;
            xml_node *it = xml_element_new(a, q, NS_MUC_ADMIN, "item");
            xml_attr_set(a, it, NULL, "affiliation", aff_name);
            xml_attr_set(a, it, NULL, "jid", e->jid);
            if (e->reason) {
                xml_node *rs = xml_element_new(a, it, NS_MUC_ADMIN, "reason");
                xml_text_new(a, rs, e->reason, strlen(e->reason));
            }
        }
        free(v);
    } else if (role_name && muc_role_parse(role_name, &role) && role != MUC_ROLE_NONE) {
        if (!actor || actor->role < MUC_MODERATOR) {
            xml_arena_free(a);
            sm_bounce(s, st, "auth", "forbidden");
            return;
        }
        void **v = sm_map_values(&r->occupants);
        for (size_t i = 0; i < sm_map_count(&r->occupants); i++) {
            const muc_occupant *o = v[i];
            if (o->role != role)
                continue;
            xml_node *it = xml_element_new(a, q, NS_MUC_ADMIN, "item");
            xml_attr_set(a, it, NULL, "role", role_name);
            xml_attr_set(a, it, NULL, "nick", o->nick);
            xml_attr_set(a, it, NULL, "affiliation",
                         muc_affiliation_name(muc_affiliation_of(r, &o->real)));
            xml_attr_set(a, it, NULL, "jid", jid_full(&o->real));
        }
        free(v);
    } else {
        xml_arena_free(a);
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    sm_iq_result(s, st, q);
    xml_arena_free(a);
}

/* ---- changes ---- */

/* Checks one <item> of a set and fills c; NULL, or the error condition (*type its type). */
static const char *check_item(sm *s, muc_room *r, sm_stanza *st, const xml_node *item,
                              const muc_occupant *actor, muc_affiliation actor_aff, change *c,
                              const char **type)
{
    const char *nick = xml_attr_get(item, "nick"), *jid_s = xml_attr_get(item, "jid");
    const char *role_name = xml_attr_get(item, "role"), *aff_name = xml_attr_get(item, "affiliation");
    const xml_node *reason = xml_child(item, NS_MUC_ADMIN, "reason");
    c->reason = reason ? xml_text(st->arena, reason) : NULL;
    *type = "modify";
    if (role_name && nick && !aff_name) {
        c->is_role = true;
        if (!muc_role_parse(role_name, &c->role))
            return "bad-request";
        if (!(c->target = muc_occupant_by_nick(r, nick))) {
            *type = "cancel";
            return "item-not-found";
        }
        muc_affiliation target_aff = muc_affiliation_of(r, &c->target->real);
        *type = "cancel";
        if (!actor || actor->role < MUC_MODERATOR)
            return "not-allowed";
        /* Moderator rights are an admin's to give and take; admins and owners keep theirs. */
        if ((c->role == MUC_MODERATOR || c->target->role == MUC_MODERATOR) && actor_aff < MUC_ADMIN)
            return "not-allowed";
        if (target_aff >= MUC_ADMIN && c->role != MUC_MODERATOR)
            return "not-allowed";
        if (target_aff > actor_aff)
            return "not-allowed";
        return NULL;
    }
    if (aff_name && (jid_s || nick)) {
        if (!muc_affiliation_parse(aff_name, &c->aff))
            return "bad-request";
        jid j;
        if (jid_s) {
            if (jid_parse(jid_s, strlen(jid_s), &j) != JID_OK)
                return "jid-malformed";
            jid_bare_to_string(&j, c->bare, sizeof c->bare);
            jid_free(&j);
        } else {
            const muc_occupant *o = muc_occupant_by_nick(r, nick);
            if (!o) {
                *type = "cancel";
                return "item-not-found";
            }
            jid_bare_to_string(&o->real, c->bare, sizeof c->bare);
        }
        muc_affiliation now = aff_of_bare(r, c->bare);
        *type = "cancel";
        if (actor_aff < MUC_ADMIN)
            return "forbidden";
        if (actor_aff < MUC_OWNER && (now >= MUC_ADMIN || c->aff >= MUC_ADMIN))
            return "not-allowed";
        if (now == MUC_OWNER && c->aff != MUC_OWNER && muc_room_owners(r) <= 1)
            return "conflict";
        if (!sm_map_get(&r->affiliations, c->bare, strlen(c->bare)) && c->aff != MUC_AFF_NONE &&
            sm_map_count(&r->affiliations) >= (size_t)muc_option(s, "muc/affiliations_max")) {
            *type = "wait";
            return "resource-constraint";
        }
        return NULL;
    }
    return "bad-request";
}

/* The occupants of account bare, in a malloc'd array (*n). */
static muc_occupant **occupants_of(const muc_room *r, const char *bare, size_t *n)
{
    void **v = sm_map_values(&r->occupants);
    muc_occupant **out = mem_array(sm_map_count(&r->occupants) + 1, sizeof *out);
    *n = 0;
    for (size_t i = 0; i < sm_map_count(&r->occupants); i++) {
        muc_occupant *o = v[i];
        if (strlen(bare) == jid_bare_len(&o->real) &&
            memcmp(bare, jid_full(&o->real), jid_bare_len(&o->real)) == 0)
            out[(*n)++] = o;
    }
    free(v);
    return out;
}

static void apply(sm *s, muc_room *r, const change *c, const char *actor)
{
    if (c->is_role) {
        if (c->role == MUC_ROLE_NONE) {
            muc_remove_occupant(s, r, c->target, 307, c->reason, actor);
            muc_room_maybe_gone(s, r);
            return;
        }
        c->target->role = c->role;
        static const int self[] = {110, 0};
        muc_broadcast_presence(s, r, c->target, &(muc_presence_opts){.reason = c->reason,
                                                                     .actor = actor},
                               self, NULL);
        return;
    }
    muc_set_affiliation(s, r, c->bare, c->aff, c->reason);
    size_t n;
    muc_occupant **os = occupants_of(r, c->bare, &n);
    for (size_t i = 0; i < n; i++) {
        if (c->aff == MUC_OUTCAST) {
            muc_remove_occupant(s, r, os[i], 301, c->reason, actor);
        } else if (c->aff < MUC_MEMBER && r->cfg.members_only) {
            muc_remove_occupant(s, r, os[i], 321, c->reason, actor);
        } else {
            os[i]->role = muc_default_role(r, c->aff);
            static const int self[] = {110, 0};
            muc_broadcast_presence(s, r, os[i], &(muc_presence_opts){.reason = c->reason},
                                   self, NULL);
        }
    }
    free(os);
}

void muc_admin_iq(sm *s, muc_room *r, sm_stanza *st, xml_node *q)
{
    muc_occupant *actor = muc_occupant_by_session(r, &st->from);
    muc_affiliation actor_aff = muc_affiliation_of(r, &st->from);
    const xml_node *first = xml_child(q, NS_MUC_ADMIN, "item");
    if (!first) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    if (!strcmp(sm_stanza_type(st), "get")) {
        list_items(s, r, st, first, actor, actor_aff);
        return;
    }
    change changes[ADMIN_ITEMS_MAX];
    size_t n = 0;
    for (const xml_node *it = first; it; it = xml_next(it, NS_MUC_ADMIN, "item")) {
        if (n == ADMIN_ITEMS_MAX) {
            sm_bounce(s, st, "modify", "policy-violation");
            return;
        }
        const char *type, *err;
        memset(&changes[n], 0, sizeof changes[n]);
        if ((err = check_item(s, r, st, it, actor, actor_aff, &changes[n], &type))) {
            sm_bounce(s, st, type, err);
            return;
        }
        n++;
    }
    char actor_nick[JID_PART_MAX + 1] = "";
    if (actor)
        snprintf(actor_nick, sizeof actor_nick, "%s", actor->nick);
    /* A kick can free the room (a temporary one left empty): it is found again each time. */
    jid room;
    jid_copy(&room, &r->jid);
    for (size_t i = 0; i < n; i++) {
        muc_service *svc = r->service;
        size_t nlen;
        const char *node = jid_node(&room, &nlen);
        if (!(r = muc_room_find(svc, node, nlen)))
            break;
        /* A role change names an occupant that an earlier item may have removed. */
        if (changes[i].is_role && muc_occupant_by_nick(r, changes[i].target->nick) != changes[i].target)
            continue;
        apply(s, r, &changes[i], actor ? actor_nick : NULL);
    }
    jid_free(&room);
    sm_iq_result(s, st, NULL);
}

/* ---- owners ---- */

static void members_only_now(sm *s, muc_room *r)
{
    void **v = sm_map_values(&r->occupants);
    size_t n = sm_map_count(&r->occupants);
    for (size_t i = 0; i < n; i++) {
        muc_occupant *o = v[i];
        if (muc_affiliation_of(r, &o->real) < MUC_MEMBER)
            muc_remove_occupant(s, r, o, 322, NULL, NULL);
    }
    free(v);
}

void muc_owner_iq(sm *s, muc_room *r, sm_stanza *st, xml_node *q)
{
    if (muc_affiliation_of(r, &st->from) != MUC_OWNER) {
        sm_bounce(s, st, "auth", "forbidden");
        return;
    }
    if (!strcmp(sm_stanza_type(st), "get")) {
        xml_arena *a = xml_arena_new(4096);
        xml_node *res = xml_element_new(a, NULL, NS_MUC_OWNER, "query");
        muc_config_form(s, r, a, res);
        sm_iq_result(s, st, res);
        xml_arena_free(a);
        return;
    }
    const xml_node *destroy = xml_child(q, NS_MUC_OWNER, "destroy");
    if (destroy) {
        const xml_node *reason = xml_child(destroy, NS_MUC_OWNER, "reason");
        const char *why = reason ? xml_text(st->arena, reason) : NULL;
        const char *venue = xml_attr_get(destroy, "jid");
        char *why_copy = why ? mem_strdup(why) : NULL, *venue_copy = venue ? mem_strdup(venue) : NULL;
        sm_iq_result(s, st, NULL);
        muc_room_destroy(s, r, venue_copy, why_copy);
        free(why_copy);
        free(venue_copy);
        return;
    }
    const xml_node *x = xml_child(q, NS_XDATA, "x");
    const char *xtype = x ? xml_attr_get(x, "type") : NULL;
    if (!xtype) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    if (!strcmp(xtype, "cancel")) {
        sm_iq_result(s, st, NULL);
        if (r->locked)     /* §10.1.3: cancelling the first configuration destroys the room */
            muc_room_destroy(s, r, NULL, NULL);
        return;
    }
    if (strcmp(xtype, "submit") != 0) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    bool was_members_only = r->cfg.members_only, was_locked = r->locked;
    const char *err;
    int codes[8];
    if (!muc_config_submit(s, r, x, &err, codes)) {
        sm_bounce(s, st, "modify", err);
        return;
    }
    r->locked = false;
    r->service->generation++;
    muc_store_room(s, r);
    sm_iq_result(s, st, NULL);
    if (!was_locked)
        muc_broadcast_status(s, r, codes);
    if (r->cfg.members_only && !was_members_only)
        members_only_now(s, r);
    muc_room_maybe_gone(s, r);
}
