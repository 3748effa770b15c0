/* sm/muc_store.c — what storage keeps of rooms (docs/muc.md "Storage and restarts"): every room
 * that exists, persistent or not, is a room row (XDB_ROOM_CREATE: host the service, user the
 * room's node) with documents in the store "muc":
 *   "config"        its configuration, lock, occupant-id keys and subject;
 *   "a:" SHA-256    an affiliation (outcast, member, admin, owner) of a bare JID;
 *   "o:" SHA-256    an occupant's session: full JID, nick, role, the presence it joined with.
 * So when the SM restarts, rooms come back with who was in them, and occupants whose sessions the
 * fronts re-announce are still in, nobody seeing them leave and join; the others leave then
 * (mod_muc.c). A temporary room's row goes when it empties, a destroyed room's with it.
 * Records are core/bytes.h records, read back strictly: a bad one is skipped and logged.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/log.h"
#include "core/mem.h"
#include "sm/muc.h"

#define MUC_STORE "muc"
#define RECORD_VERSION 1
#define PRESENCE_KEPT_MAX 4096

static void stored(xdb_request *r, void *ctx)
{
    if (r->status == XDB_ERROR || r->status == XDB_INVALID || r->status == XDB_EXISTS)
        log_warn("sm: muc: storage: %s for room %s@%s failed: %s", xdb_op_name(r->op), r->user,
                 r->host, r->error[0] ? r->error : xdb_status_name(r->status));
}

static void submit(sm *s, xdb_request *r)
{
    sm_submit(s, r, stored, NULL);
}

/* "a:" or "o:" and the hex SHA-256 of what: a key of fixed size whatever the JID's. */
static void hashed_key(const char *prefix, const char *what, char out[80])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(what, strlen(what), md, &len, EVP_sha256(), NULL);
    int n = snprintf(out, 80, "%s", prefix);
    for (unsigned i = 0; i < len; i++)
        n += snprintf(out + n, 80 - (size_t)n, "%02x", md[i]);
}

static void put_doc(sm *s, const muc_room *r, const char *key, const buf *value)
{
    xdb_request *q = sm_user_request(XDB_DOC_PUT, &r->jid);
    xdb_request_set_doc(q, MUC_STORE, key);
    xdb_request_set_value(q, buf_data(value), buf_len(value));
    submit(s, q);
}

static void delete_doc(sm *s, const muc_room *r, const char *key)
{
    xdb_request *q = sm_user_request(XDB_DOC_DELETE, &r->jid);
    xdb_request_set_doc(q, MUC_STORE, key);
    submit(s, q);
}

static void ensure_row(sm *s, muc_room *r)
{
    if (r->stored)
        return;
    r->stored = true;
    submit(s, sm_user_request(XDB_ROOM_CREATE, &r->jid));
}

/* ---- writing ---- */

void muc_store_room(sm *s, muc_room *r)
{
    ensure_row(s, r);
    const muc_config *c = &r->cfg;
    buf b = BUF_INIT;
    bytes_put_u8(&b, RECORD_VERSION);
    bytes_put_u64(&b, r->salt[0]);
    bytes_put_u64(&b, r->salt[1]);
    bytes_put_u8(&b, r->locked);
    const bool flags[] = {c->persistent, c->public_list, c->members_only, c->moderated,
                          c->whois_anyone, c->allow_invites, c->allow_subject, c->logging};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        bytes_put_u8(&b, flags[i]);
    bytes_put_u8(&b, (uint8_t)c->allow_pm);
    bytes_put_u32(&b, (uint32_t)c->max_users);
    bytes_put_u32(&b, (uint32_t)c->history);
    bytes_put_str(&b, c->name);
    bytes_put_str(&b, c->description);
    bytes_put_str(&b, c->password);
    bytes_put_str(&b, c->lang);
    bytes_put_str(&b, r->subject);
    bytes_put_str(&b, r->subject_by);
    put_doc(s, r, "config", &b);
    buf_free(&b);
}

void muc_store_affiliation(sm *s, muc_room *r, const char *bare, const muc_aff_entry *e)
{
    char key[80];
    hashed_key("a:", bare, key);
    if (!e) {
        if (r->stored)
            delete_doc(s, r, key);
        return;
    }
    ensure_row(s, r);
    buf b = BUF_INIT;
    bytes_put_u8(&b, RECORD_VERSION);
    bytes_put_str(&b, e->jid);
    bytes_put_u8(&b, (uint8_t)e->aff);
    bytes_put_str(&b, e->reason);
    put_doc(s, r, key, &b);
    buf_free(&b);
}

void muc_store_occupant(sm *s, muc_room *r, const muc_occupant *o, const jid *full)
{
    ensure_row(s, r);
    char key[80];
    hashed_key("o:", jid_full(full), key);
    size_t plen = 0;
    char *presence = o->presence ? sm_xml_string(o->presence->node, PRESENCE_KEPT_MAX, &plen) : NULL;
    buf b = BUF_INIT;
    bytes_put_u8(&b, RECORD_VERSION);
    bytes_put_str(&b, jid_full(full));
    bytes_put_str(&b, o->nick);
    bytes_put_u8(&b, (uint8_t)o->role);
    bytes_put_u64(&b, (uint64_t)o->joined_ms);
    bytes_put_str(&b, presence);
    free(presence);
    put_doc(s, r, key, &b);
    buf_free(&b);
}

void muc_unstore_occupant(sm *s, muc_room *r, const jid *full)
{
    if (!r->stored)
        return;
    char key[80];
    hashed_key("o:", jid_full(full), key);
    delete_doc(s, r, key);
}

void muc_unstore_room(sm *s, muc_room *r)
{
    if (!r->stored)
        return;
    r->stored = false;
    submit(s, sm_user_request(XDB_ROOM_DELETE, &r->jid));
}

/* ---- reading back ---- */

static char *dup_or_null(const char *v)
{
    return v && *v ? mem_strdup(v) : NULL;
}

static bool read_config(muc_room *r, const xdb_value *v)
{
    bytes_reader rd = bytes_reader_of(v->data, v->len);
    if (bytes_get_u8(&rd) != RECORD_VERSION)
        return false;
    uint64_t salt0 = bytes_get_u64(&rd), salt1 = bytes_get_u64(&rd);
    bool locked = bytes_get_bool(&rd), flags[8];
    for (size_t i = 0; i < 8; i++)
        flags[i] = bytes_get_bool(&rd);
    uint8_t pm = bytes_get_u8(&rd);
    uint32_t max_users = bytes_get_u32(&rd), history = bytes_get_u32(&rd);
    const char *name = bytes_get_str(&rd, 65536), *desc = bytes_get_str(&rd, 65536),
               *pw = bytes_get_str(&rd, 65536), *lang = bytes_get_str(&rd, 65536),
               *subject = bytes_get_str(&rd, 1 << 20), *by = bytes_get_str(&rd, JID_PART_MAX);
    if (!bytes_done(&rd) || pm > MUC_PM_NONE || !max_users || max_users > 1000000000 ||
        history > 100000)
        return false;
    muc_config *c = &r->cfg;
    muc_config_free(c);
    r->salt[0] = salt0;
    r->salt[1] = salt1;
    r->locked = locked;
    c->persistent = flags[0];
    c->public_list = flags[1];
    c->members_only = flags[2];
    c->moderated = flags[3];
    c->whois_anyone = flags[4];
    c->allow_invites = flags[5];
    c->allow_subject = flags[6];
    c->logging = flags[7];
    c->allow_pm = (muc_pm)pm;
    c->max_users = (int)max_users;
    c->history = (int)history;
    c->name = dup_or_null(name);
    c->description = dup_or_null(desc);
    c->password = dup_or_null(pw);
    c->lang = dup_or_null(lang);
    free(r->subject);
    free(r->subject_by);
    r->subject = dup_or_null(subject);
    r->subject_by = dup_or_null(by);
    return true;
}

static bool read_affiliation(muc_room *r, const xdb_value *v)
{
    bytes_reader rd = bytes_reader_of(v->data, v->len);
    if (bytes_get_u8(&rd) != RECORD_VERSION)
        return false;
    const char *bare = bytes_get_str(&rd, JID_MAX_LEN);
    uint8_t aff = bytes_get_u8(&rd);
    const char *reason = bytes_get_str(&rd, 65536);
    if (!bytes_done(&rd) || aff > MUC_OWNER || aff == MUC_AFF_NONE || !bare)
        return false;
    muc_aff_entry *e = mem_zalloc(sizeof *e);
    e->jid = mem_strdup(bare);
    e->aff = (muc_affiliation)aff;
    e->reason = dup_or_null(reason);
    muc_aff_entry *old = sm_map_get(&r->affiliations, bare, strlen(bare));
    if (old) {
        free(old->jid);
        free(old->reason);
        free(old);
    }
    sm_map_put(&r->affiliations, bare, strlen(bare), e);
    return true;
}

static bool read_occupant(sm *s, muc_room *r, const xdb_value *v)
{
    bytes_reader rd = bytes_reader_of(v->data, v->len);
    if (bytes_get_u8(&rd) != RECORD_VERSION)
        return false;
    const char *full = bytes_get_str(&rd, JID_MAX_LEN), *nick = bytes_get_str(&rd, JID_PART_MAX);
    uint8_t role = bytes_get_u8(&rd);
    uint64_t joined = bytes_get_u64(&rd);
    const char *presence = bytes_get_str(&rd, PRESENCE_KEPT_MAX);
    jid fj;
    if (!bytes_done(&rd) || !full || !nick || !*nick || role > MUC_MODERATOR ||
        jid_parse(full, strlen(full), &fj) != JID_OK)
        return false;
    muc_occupant *o = muc_occupant_by_nick(r, nick);
    if ((o && !jid_equal_bare(&o->real, &fj)) || jid_is_bare(&fj) ||
        muc_occupant_by_session(r, &fj)) {
        jid_free(&fj);
        return false;
    }
    if (!o) {
        o = mem_zalloc(sizeof *o);
        o->nick = mem_strdup(nick);
        jid_bare(&fj, &o->real);
        o->role = (muc_role)role;
        o->joined_ms = (int64_t)joined;
        sm_map_put(&r->occupants, o->nick, strlen(o->nick), o);
    }
    if (presence && *presence && !o->presence)
        o->presence = sm_parse(s, presence, strlen(presence));
    o->sessions = mem_realloc(o->sessions, (o->nsessions + 1) * sizeof *o->sessions);
    o->sessions[o->nsessions++] = fj;
    sm_map_put(&r->by_session, jid_full(&fj), jid_full_len(&fj), o);
    muc_session_joined(s, &fj, r);
    return true;
}

typedef struct muc_loading {
    sm *s;
    muc_service *svcs;
    size_t nsvcs, pending;
} loading;

static muc_service *service_named(const loading *l, const char *domain)
{
    for (size_t i = 0; i < l->nsvcs; i++)
        if (!strcmp(l->svcs[i].domain, domain))
            return &l->svcs[i];
    return NULL;
}

/* Returns whether the load is over (l freed). */
static bool load_step_done(loading *l)
{
    if (--l->pending)
        return false;
    sm *s = l->s;
    free(l);
    sm_start_done(s);
    muc_store_loaded(s);
    return true;
}

static void room_loaded(xdb_request *q, void *ctx)
{
    loading *l = ctx;
    sm *s = l->s;
    muc_service *svc = service_named(l, q->host);
    if (q->status != XDB_OK) {
        log_error("sm: muc: storage: the room %s@%s could not be read: %s", q->user, q->host,
                  q->error[0] ? q->error : xdb_status_name(q->status));
    } else if (svc) {
        muc_room *r = muc_room_find(svc, q->user, strlen(q->user));
        if (!r)
            r = muc_room_new(s, svc, q->user, strlen(q->user));
        bool configured = false;
        for (size_t i = 0; r && i < q->docs.n; i++) {
            const xdb_doc *d = &q->docs.v[i];
            bool ok = true;
            if (!strcmp(d->key, "config"))
                ok = configured = read_config(r, &d->value);
            else if (!strncmp(d->key, "a:", 2))
                ok = read_affiliation(r, &d->value);
            else if (!strncmp(d->key, "o:", 2))
                ok = read_occupant(s, r, &d->value);
            if (!ok)
                log_warn("sm: muc: storage: room %s: record %s unreadable, skipped",
                         jid_full(&r->jid), d->key);
        }
        if (r) {
            r->stored = true;
            if (!configured)
                log_warn("sm: muc: storage: room %s had no configuration: defaults",
                         jid_full(&r->jid));
        }
    }
    load_step_done(l);
}

static void rooms_listed(xdb_request *q, void *ctx)
{
    loading *l = ctx;
    sm *s = l->s;
    if (q->status != XDB_OK) {
        log_error("sm: muc: storage: the rooms of %s could not be listed: %s", q->host,
                  q->error[0] ? q->error : xdb_status_name(q->status));
    } else {
        if (q->users.n)
            log_info("sm: muc: %zu rooms of %s restored from storage", q->users.n, q->host);
        for (size_t i = 0; i < q->users.n; i++) {
            jid rj;
            if (jid_parse(q->users.v[i], strlen(q->users.v[i]), &rj) != JID_OK)
                continue;
            xdb_request *d = sm_user_request(XDB_DOC_LIST, &rj);
            xdb_request_set_doc(d, MUC_STORE, "");
            l->pending++;
            sm_submit(s, d, room_loaded, l);
            jid_free(&rj);
        }
    }
    load_step_done(l);
}

void muc_store_abandon(muc_loading *l)
{
    free(l);
}

muc_loading *muc_store_load(sm *s, muc_service *svcs, size_t n)
{
    loading *l = mem_zalloc(sizeof *l);
    l->s = s;
    l->svcs = svcs;
    l->nsvcs = n;
    l->pending = 1;
    sm_start_hold(s);
    for (size_t i = 0; i < n; i++) {
        xdb_request *q = xdb_request_new(XDB_ROOM_LIST, svcs[i].domain, NULL);
        l->pending++;
        sm_submit(s, q, rooms_listed, l);
    }
    return load_step_done(l) ? NULL : l;
}
