/* sm/muc_room.c — rooms and occupants in memory (XEP-0045): their life, affiliations and roles,
 * occupant ids (XEP-0421), what an occupant's presence looks like to each other occupant, and the
 * broadcasts every other file of the service uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/siphash.h"
#include "sm/muc.h"

/* ---- names ---- */

static const char *const aff_names[] = {"outcast", "none", "member", "admin", "owner"};
static const char *const role_names[] = {"none", "visitor", "participant", "moderator"};

const char *muc_affiliation_name(muc_affiliation a) { return aff_names[a]; }
const char *muc_role_name(muc_role r) { return role_names[r]; }

bool muc_affiliation_parse(const char *name, muc_affiliation *out)
{
    for (int i = 0; name && i <= MUC_OWNER; i++)
        if (strcmp(name, aff_names[i]) == 0) {
            *out = (muc_affiliation)i;
            return true;
        }
    return false;
}

bool muc_role_parse(const char *name, muc_role *out)
{
    for (int i = 0; name && i <= MUC_MODERATOR; i++)
        if (strcmp(name, role_names[i]) == 0) {
            *out = (muc_role)i;
            return true;
        }
    return false;
}

/* ---- rooms ---- */

muc_room *muc_room_find(muc_service *svc, const char *node, size_t len)
{
    return sm_map_get(&svc->rooms, node, len);
}

muc_room *muc_room_new(sm *s, muc_service *svc, const char *node, size_t len)
{
    muc_room *r = mem_zalloc(sizeof *r);
    if (jid_make(node, len, svc->domain, strlen(svc->domain), NULL, 0, &r->jid) != JID_OK) {
        free(r);
        return NULL;
    }
    r->service = svc;
    muc_config_defaults(s, &r->cfg);
    random_bytes(r->salt, sizeof r->salt);
    sm_map_init(&r->occupants);
    sm_map_init(&r->by_session);
    sm_map_init(&r->affiliations);
    size_t nlen;
    const char *n = jid_node(&r->jid, &nlen);
    sm_map_put(&svc->rooms, n, nlen, r);
    svc->generation++;
    return r;
}

static void occupant_free(muc_occupant *o)
{
    free(o->nick);
    jid_free(&o->real);
    for (size_t i = 0; i < o->nsessions; i++)
        jid_free(&o->sessions[i]);
    free(o->sessions);
    if (o->presence)
        sm_stanza_free(o->presence);
    free(o);
}

static void aff_free(void *val, void *ctx)
{
    muc_aff_entry *e = val;
    free(e->jid);
    free(e->reason);
    free(e);
}

void muc_room_free(sm *s, muc_room *r)
{
    void **occupants = sm_map_values(&r->occupants);
    size_t n = sm_map_count(&r->occupants);
    for (size_t i = 0; i < n; i++) {
        muc_occupant *o = occupants[i];
        for (size_t k = 0; k < o->nsessions; k++)
            muc_session_left(s, &o->sessions[k], r);
        occupant_free(o);
    }
    free(occupants);
    size_t nlen;
    const char *node = jid_node(&r->jid, &nlen);
    sm_map_del(&r->service->rooms, node, nlen);
    r->service->generation++;
    sm_map_free(&r->occupants);
    sm_map_free(&r->by_session);
    sm_map_each(&r->affiliations, aff_free, NULL);
    sm_map_free(&r->affiliations);
    muc_history_clear(r);
    free(r->history);
    free(r->subject);
    free(r->subject_by);
    muc_config_free(&r->cfg);
    jid_free(&r->jid);
    free(r);
}

void muc_room_destroy(sm *s, muc_room *r, const char *venue, const char *reason)
{
    void **occupants = sm_map_values(&r->occupants);
    size_t n = sm_map_count(&r->occupants);
    for (size_t i = 0; i < n; i++) {
        muc_occupant *o = occupants[i];
        /* Each occupant hears of its own removal (§10.9), with 110. */
        o->role = MUC_ROLE_NONE;
        static const int self[] = {110, 0};
        muc_presence_opts opts = {.type = "unavailable", .codes = self, .destroy = true,
                                  .venue = venue, .reason = reason, .affiliation_none = true};
        sm_fanout own = sm_fanout_of(muc_presence_of(s, r, o, true, &opts));
        muc_send_to_occupant(s, o, &own);
        sm_fanout_free(&own);
    }
    free(occupants);
    muc_unstore_room(s, r);
    log_info("sm: muc: room %s destroyed", jid_full(&r->jid));
    muc_room_free(s, r);
}

bool muc_room_maybe_gone(sm *s, muc_room *r)
{
    if (sm_map_count(&r->occupants) || r->cfg.persistent)
        return false;
    muc_unstore_room(s, r);
    muc_room_free(s, r);
    return true;
}

/* ---- affiliations and roles ---- */

muc_affiliation muc_affiliation_of(const muc_room *r, const jid *real)
{
    const muc_aff_entry *e = sm_map_get(&r->affiliations, jid_full(real), jid_bare_len(real));
    return e ? e->aff : MUC_AFF_NONE;
}

size_t muc_room_owners(const muc_room *r)
{
    size_t n = 0;
    void **v = sm_map_values(&r->affiliations);
    for (size_t i = 0; i < sm_map_count(&r->affiliations); i++)
        n += ((muc_aff_entry *)v[i])->aff == MUC_OWNER;
    free(v);
    return n;
}

void muc_set_affiliation(sm *s, muc_room *r, const char *bare, muc_affiliation aff,
                         const char *reason)
{
    size_t len = strlen(bare);
    muc_aff_entry *e = sm_map_get(&r->affiliations, bare, len);
    if (aff == MUC_AFF_NONE) {
        if (e) {
            sm_map_del(&r->affiliations, bare, len);
            aff_free(e, NULL);
        }
        muc_store_affiliation(s, r, bare, NULL);
        return;
    }
    if (!e) {
        e = mem_zalloc(sizeof *e);
        e->jid = mem_strdup(bare);
        sm_map_put(&r->affiliations, bare, len, e);
    }
    e->aff = aff;
    free(e->reason);
    e->reason = reason && *reason ? mem_strdup(reason) : NULL;
    muc_store_affiliation(s, r, bare, e);
}

muc_role muc_default_role(const muc_room *r, muc_affiliation aff)
{
    if (aff >= MUC_ADMIN)
        return MUC_MODERATOR;
    if (aff == MUC_OUTCAST)
        return MUC_ROLE_NONE;
    if (aff == MUC_MEMBER)
        return MUC_PARTICIPANT;
    return r->cfg.moderated ? MUC_VISITOR : MUC_PARTICIPANT;
}

/* ---- occupants ---- */

muc_occupant *muc_occupant_by_nick(const muc_room *r, const char *nick)
{
    return sm_map_get(&r->occupants, nick, strlen(nick));
}

muc_occupant *muc_occupant_by_session(const muc_room *r, const jid *full)
{
    return sm_map_get(&r->by_session, jid_full(full), jid_full_len(full));
}

void muc_occupant_id(const muc_room *r, const jid *real, char out[17])
{
    uint64_t h = siphash24(r->salt[0], r->salt[1], jid_full(real), jid_bare_len(real));
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

void muc_occupant_jid(const muc_room *r, const char *nick, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", jid_full(&r->jid), nick);
}

bool muc_sees_jids(const muc_room *r, const muc_occupant *viewer)
{
    return r->cfg.whois_anyone || (viewer && viewer->role == MUC_MODERATOR);
}

bool muc_occupant_drop_session(sm *s, muc_room *r, muc_occupant *o, const jid *full)
{
    for (size_t i = 0; i < o->nsessions; i++) {
        if (!jid_equal_full(&o->sessions[i], full))
            continue;
        sm_map_del(&r->by_session, jid_full(full), jid_full_len(full));
        muc_session_left(s, full, r);
        muc_unstore_occupant(s, r, full);
        jid_free(&o->sessions[i]);
        memmove(&o->sessions[i], &o->sessions[i + 1], (o->nsessions - i - 1) * sizeof(jid));
        o->nsessions--;
        break;
    }
    if (o->nsessions)
        return false;
    sm_map_del(&r->occupants, o->nick, strlen(o->nick));
    occupant_free(o);
    return true;
}

/* ---- presence ---- */

/* Copies the children of an occupant's presence that others should see: not the MUC protocol's
 * own elements, nor an occupant id someone else made. */
static void copy_presence_payload(sm_stanza *out, const sm_stanza *in)
{
    for (const xml_node *c = in ? in->node->children : NULL; c; c = c->next) {
        if (c->kind != XML_ELEMENT)
            continue;
        if ((c->ns && strncmp(c->ns, NS_MUC, strlen(NS_MUC)) == 0) ||
            xml_is(c, NS_OCCUPANT_ID, NULL) || xml_is(c, SM_NS_STANZAS, NULL) ||
            xml_is(c, SM_NS_CLIENT, "error"))
            continue;
        xml_node_copy(out->arena, out->node, c);
    }
}

static void text_child(xml_arena *a, xml_node *parent, const char *ns, const char *name,
                       const char *text)
{
    xml_node *n = xml_element_new(a, parent, ns, name);
    xml_text_new(a, n, text, strlen(text));
}

sm_stanza *muc_presence_of(sm *s, const muc_room *r, const muc_occupant *o, bool with_jid,
                           const muc_presence_opts *opt)
{
    char from[JID_MAX_LEN + 1];
    muc_occupant_jid(r, o->nick, from, sizeof from);
    sm_stanza *p = sm_stanza_make("presence", from, NULL, opt->type);
    if (!opt->type)
        copy_presence_payload(p, o->presence);
    xml_arena *a = p->arena;
    xml_node *x = xml_element_new(a, p->node, NS_MUC_USER, "x");
    xml_node *item = xml_element_new(a, x, NS_MUC_USER, "item");
    xml_attr_set(a, item, NULL, "affiliation",
                 muc_affiliation_name(opt->affiliation_none ? MUC_AFF_NONE
                                                            : muc_affiliation_of(r, &o->real)));
    xml_attr_set(a, item, NULL, "role", muc_role_name(o->role));
    if (with_jid && o->nsessions)
        xml_attr_set(a, item, NULL, "jid", jid_full(&o->sessions[o->nsessions - 1]));
    if (opt->item_nick)
        xml_attr_set(a, item, NULL, "nick", opt->item_nick);
    if (opt->actor) {
        xml_node *actor = xml_element_new(a, item, NS_MUC_USER, "actor");
        xml_attr_set(a, actor, NULL, "nick", opt->actor);
    }
    if (opt->reason && !opt->destroy)
        text_child(a, item, NS_MUC_USER, "reason", opt->reason);
    if (opt->destroy) {
        xml_node *d = xml_element_new(a, x, NS_MUC_USER, "destroy");
        if (opt->venue)
            xml_attr_set(a, d, NULL, "jid", opt->venue);
        if (opt->reason)
            text_child(a, d, NS_MUC_USER, "reason", opt->reason);
    }
    for (const int *c = opt->codes; c && *c; c++) {
        char code[8];
        snprintf(code, sizeof code, "%d", *c);
        xml_node *st = xml_element_new(a, x, NS_MUC_USER, "status");
        xml_attr_set(a, st, NULL, "code", code);
    }
    char id[17];
    muc_occupant_id(r, &o->real, id);
    xml_node *oid = xml_element_new(a, p->node, NS_OCCUPANT_ID, "occupant-id");
    xml_attr_set(a, oid, NULL, "id", id);
    return p;
}

void muc_send_to_session(sm *s, const jid *full, sm_fanout *f)
{
    sm_session *sess = sm_session_find(s, full);
    if (sess) {
        sm_fanout_deliver(s, f, sess);
        return;
    }
    /* Not a session here (a remote occupant): routed as any stanza. */
    sm_stanza *c = sm_stanza_copy(f->st);
    if (sm_stanza_set_to(c, jid_full(full)))
        sm_route(s, c);
    else
        sm_stanza_free(c);
}

void muc_send_to_occupant(sm *s, const muc_occupant *o, sm_fanout *f)
{
    for (size_t i = 0; i < o->nsessions; i++)
        muc_send_to_session(s, &o->sessions[i], f);
}

void muc_send_one(sm *s, const jid *full, sm_stanza *st)
{
    sm_fanout f = sm_fanout_of(st);
    muc_send_to_session(s, full, &f);
    sm_fanout_free(&f);
}

void muc_broadcast_presence(sm *s, const muc_room *r, const muc_occupant *o,
                            const muc_presence_opts *opts, const int *self_codes,
                            const muc_occupant *skip)
{
    sm_fanout with = {0}, without = {0};
    void **v = sm_map_values(&r->occupants);
    size_t n = sm_map_count(&r->occupants);
    for (size_t i = 0; i < n; i++) {
        const muc_occupant *to = v[i];
        if (to == skip || to == o)
            continue;
        bool sees = muc_sees_jids(r, to);
        sm_fanout *f = sees ? &with : &without;
        if (!f->st)
            *f = sm_fanout_of(muc_presence_of(s, r, o, sees, opts));
        muc_send_to_occupant(s, to, f);
    }
    free(v);
    if (with.st)
        sm_fanout_free(&with);
    if (without.st)
        sm_fanout_free(&without);
    if (o != skip && sm_map_get(&r->occupants, o->nick, strlen(o->nick)) == o) {
        muc_presence_opts own = *opts;
        own.codes = self_codes;
        sm_fanout f = sm_fanout_of(muc_presence_of(s, r, o, true, &own));
        muc_send_to_occupant(s, o, &f);
        sm_fanout_free(&f);
    }
}

void muc_broadcast_status(sm *s, const muc_room *r, const int *codes)
{
    sm_stanza *m = sm_stanza_make("message", jid_full(&r->jid), NULL, "groupchat");
    xml_node *x = xml_element_new(m->arena, m->node, NS_MUC_USER, "x");
    for (const int *c = codes; *c; c++) {
        char code[8];
        snprintf(code, sizeof code, "%d", *c);
        xml_node *st = xml_element_new(m->arena, x, NS_MUC_USER, "status");
        xml_attr_set(m->arena, st, NULL, "code", code);
    }
    sm_fanout f = sm_fanout_of(m);
    void **v = sm_map_values(&r->occupants);
    for (size_t i = 0; i < sm_map_count(&r->occupants); i++)
        muc_send_to_occupant(s, v[i], &f);
    free(v);
    sm_fanout_free(&f);
}

void muc_remove_occupant(sm *s, muc_room *r, muc_occupant *o, int code, const char *reason,
                         const char *actor)
{
    o->role = MUC_ROLE_NONE;
    const int codes[] = {code, 0}, self[] = {110, code, 0};
    muc_presence_opts opts = {.type = "unavailable", .codes = codes, .reason = reason,
                              .actor = actor};
    muc_broadcast_presence(s, r, o, &opts, self, NULL);
    while (o->nsessions) {
        jid full;
        jid_copy(&full, &o->sessions[0]);
        bool gone = muc_occupant_drop_session(s, r, o, &full);
        jid_free(&full);
        if (gone)
            break;
    }
}
