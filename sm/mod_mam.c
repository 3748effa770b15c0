/* sm/mod_mam.c — message archive management (XEP-0313) with unique stanza ids (XEP-0359): what
 * is archived and for whom, the account's preferences, and the module.
 *
 * A message with a body (or <store/>, XEP-0334), of type chat or normal, not a <no-store/> or
 * <no-permanent-store/>, a carbon or an archive result, is archived twice: in its sender's archive
 * when a local account sends it ("outbound"), and in its recipient's when it reaches a local
 * account ("inbound", before delivery or offline storage, so offline messages are archived too).
 * The recipient's copy gets <stanza-id by='bare JID' id=…/>, delivered with it; one a sender put
 * there claiming our account's 'by' is removed first. <origin-id/> stays as the client sent it.
 *
 * Preferences (<prefs default='always|never|roster'> with always and never JIDs) are kept in the
 * document store ("mam", "prefs") and read with the user; the default is <mam><default>.
 * Writing is in sm/mam_archive.c, queries in sm/mam_query.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/siphash.h"
#include "core/xml_write.h"
#include "sm/disco.h"
#include "sm/mam.h"
#include "sm/modules.h"
#include "sm/strset.h"
#include "smproto/frame.h"

#define MAM_STORE "mam"
#define NS_HINTS "urn:xmpp:hints"
#define NS_CARBONS "urn:xmpp:carbons:2"

typedef enum { PREF_ALWAYS, PREF_NEVER, PREF_ROSTER } pref_default;

typedef struct mam_user {
    pref_default mode;
    sm_strset *always, *never;  /* bare JIDs */
} mam_user;

static const sm_int_option mam_options[] = {
    {"mam/default", PREF_ALWAYS, PREF_ALWAYS, PREF_ROSTER},
    {"mam/page_max", 250, 1, 10000},
    {"mam/batch", 128, 1, 10000},
    {"mam/queue_max", 20000, 100, 10000000},
    {"mam/user_max", 100000, 0, 100000000},
    {"mam/retention_days", 0, 0, 36500},
    {"mam/expire_batch", 1000, 1, 1000000},
    {"mam/prefs_jids", 100, 0, 10000},
    {NULL, 0, 0, 0},
};

long long mam_option(sm *s, const char *path) { return sm_module_int(s, &mod_mam, path); }

static mam_user *user_of(sm *s, const sm_user *u) { return sm_user_state(s, u, &mod_mam); }

/* ---- preferences ---- */

static const char *const mode_names[] = {"always", "never", "roster"};

/* Reads <prefs/> into p (sets replaced); false when it is not one. */
static bool prefs_read(sm *s, xml_arena *a, const xml_node *prefs, mam_user *p)
{
    const char *def = xml_attr_get(prefs, "default");
    int mode = -1;
    for (int i = 0; def && i < 3; i++)
        if (!strcmp(def, mode_names[i]))
            mode = i;
    if (mode < 0)
        return false;
    size_t max = (size_t)mam_option(s, "mam/prefs_jids");
    sm_strset *lists[2] = {NULL, NULL};
    const char *names[2] = {"always", "never"};
    for (int l = 0; l < 2; l++) {
        const xml_node *list = xml_child(prefs, NS_MAM, names[l]);
        for (const xml_node *j = list ? xml_child(list, NS_MAM, "jid") : NULL; j;
             j = xml_next(j, NS_MAM, "jid")) {
            const char *v = xml_text(a, j);
            jid parsed;
            if (jid_parse(v, strlen(v), &parsed) != JID_OK)
                continue;
            char bare[JID_MAX_LEN + 1];
            jid_bare_to_string(&parsed, bare, sizeof bare);
            jid_free(&parsed);
            if (sm_strset_count(lists[l]) < max)
                sm_strset_add(&lists[l], bare);
        }
    }
    sm_strset_free(&p->always);
    sm_strset_free(&p->never);
    p->mode = (pref_default)mode;
    p->always = lists[0];
    p->never = lists[1];
    return true;
}

static void add_jids(xml_arena *a, xml_node *parent, const char *name, const sm_strset *set)
{
    xml_node *list = xml_element_new(a, parent, NS_MAM, name);
    size_t n = sm_strset_count(set);
    const char **all = sm_strset_members(set);
    for (size_t i = 0; i < n; i++)
        xml_text_new(a, xml_element_new(a, list, NS_MAM, "jid"), all[i], strlen(all[i]));
    free(all);
}

static xml_node *prefs_write(xml_arena *a, const mam_user *p)
{
    xml_node *prefs = xml_element_new(a, NULL, NS_MAM, "prefs");
    xml_attr_set(a, prefs, NULL, "default", mode_names[p->mode]);
    add_jids(a, prefs, "always", p->always);
    add_jids(a, prefs, "never", p->never);
    return prefs;
}

static void prefs_loaded(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    sm_user *u = sm_user_of_request(s, r);
    if (!u || r->status != XDB_OK)
        return;
    sm_stanza *prefs = sm_parse(s, r->value.data, r->value.len);
    if (prefs && prefs->node && !prefs_read(s, prefs->arena, prefs->node, user_of(s, u)))
        log_warn("sm: the stored MAM preferences of %s are malformed: the defaults apply",
                 jid_full(&u->jid));
    sm_stanza_free(prefs);
}

static bool user_load(sm *s, sm_event *ev)
{
    user_of(s, ev->user)->mode = (pref_default)mam_option(s, "mam/default");
    xdb_request *r = sm_user_request(XDB_DOC_GET, &ev->user->jid);
    xdb_request_set_doc(r, MAM_STORE, "prefs");
    sm_submit(s, r, prefs_loaded, s);
    return false;
}

static void user_release(void *state)
{
    mam_user *p = state;
    sm_strset_free(&p->always);
    sm_strset_free(&p->never);
}

static void prefs_stored(xdb_request *r, void *ctx)
{
    sm_stanza *st = ctx;
    if (r->status != XDB_OK)
        log_warn("sm: storing the MAM preferences of %s@%s failed: %s", r->user, r->host,
                 r->error[0] ? r->error : xdb_status_name(r->status));
    sm_stanza_free(st);
}

static void prefs_iq(sm *s, sm_stanza *st, xml_node *payload)
{
    if (!sm_stanza_to_self(st)) {
        sm_bounce(s, st, "cancel", st->origin ? "forbidden" : "service-unavailable");
        return;
    }
    sm_user *u = st->origin->user;
    mam_user *p = user_of(s, u);
    if (!strcmp(sm_stanza_type(st), "set") && !prefs_read(s, st->arena, payload, p)) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    xml_arena *a = xml_arena_new(1024);
    xml_node *prefs = prefs_write(a, p);
    if (!strcmp(sm_stanza_type(st), "set")) {
        size_t len;
        char *xml = sm_xml_string(prefs, 1 << 20, &len);
        xdb_request *r = sm_user_request(XDB_DOC_PUT, &u->jid);
        xdb_request_set_doc(r, MAM_STORE, "prefs");
        xdb_request_set_value(r, xml, len);
        free(xml);
        sm_submit(s, r, prefs_stored, NULL);
    }
    sm_iq_result(s, st, prefs);
    xml_arena_free(a);
}

/* Whether owner's preferences archive messages with contact (bare). */
static bool wanted(sm *s, sm_user *owner, const char *contact)
{
    const mam_user *p = user_of(s, owner);
    if (sm_strset_has(p->never, contact))
        return false;
    if (sm_strset_has(p->always, contact) || p->mode == PREF_ALWAYS)
        return true;
    return p->mode == PREF_ROSTER && sm_roster_find(owner, contact) != NULL;
}

/* ---- what is archived ---- */

static bool archivable(const sm_stanza *st)
{
    const xml_node *m = st->node;
    sm_msg_kind kind = sm_message_kind(st);
    if (!xml_is(m, SM_NS_CLIENT, "message") || (kind != SM_MSG_CHAT && kind != SM_MSG_NORMAL))
        return false;
    if (xml_child(m, NS_HINTS, "no-store") || xml_child(m, NS_HINTS, "no-permanent-store") ||
        xml_child(m, NS_CARBONS, "sent") || xml_child(m, NS_CARBONS, "received") ||
        xml_child(m, NS_MAM, "result"))
        return false;
    return xml_child(m, SM_NS_CLIENT, "body") || xml_child(m, NS_HINTS, "store");
}

/* st serialized with its namespace (it is kept inside <forwarded/>), or NULL when too large. */
char *mam_serialized(const sm_stanza *st)
{
    buf b = BUF_INIT;
    if (!xml_write_node_max(&b, st->node, NULL, false, SMPROTO_MAX_PAYLOAD)) {
        buf_free(&b);
        return NULL;
    }
    buf_append(&b, "", 1);
    char *xml = mem_strdup(buf_data(&b));
    buf_free(&b);
    return xml;
}

/* Removes the <stanza-id/>s that claim to be by owner (bare): only we make those. */
static void strip_forged(sm_stanza *st, const char *owner)
{
    xml_node *x = xml_child(st->node, NS_SID, "stanza-id");
    while (x) {
        xml_node *next = xml_next(x, NS_SID, "stanza-id");
        const char *by = xml_attr_get(x, "by");
        if (by && !strcmp(by, owner))
            xml_node_detach(x);
        x = next;
    }
}

/* The stanza id of a message, from its bytes (before any id of ours) and the archive it goes
 * to (in: the recipient's, out: the sender's): the same message gets the same id. So a frame a
 * restarted SM routes again (docs/smproto.md §3) carries the id it had, which the destination
 * front's duplicate filter recognises, and its archive keeps it once (an append skips an id it
 * has). 128 bits of SipHash under fixed keys, in hex: ids need not be secret (a stanza-id of our
 * 'by' from outside is removed), only unique and stable (XEP-0359). */
static void stanza_id(const char *xml, size_t len, bool in, char out[MAM_STANZA_ID_LEN + 1])
{
    uint64_t k = in ? 0x6d616d2d696e2121ull : 0x6d616d2d6f757421ull;
    uint64_t a = siphash24(k, 0x0706050403020100ull, xml, len);
    uint64_t b = siphash24(k, 0x0f0e0d0c0b0a0908ull, xml, len);
    snprintf(out, MAM_STANZA_ID_LEN + 1, "%016llx%016llx", (unsigned long long)a,
             (unsigned long long)b);
}

/* A message reaching a local account: its stanza id (in what is delivered and archived), then
 * the recipient's archive. */
static bool inbound(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    if (!ev->user || !st || !st->node || !xml_is(st->node, SM_NS_CLIENT, "message"))
        return false;
    const char *owner = jid_full(&ev->user->jid);
    size_t hlen;
    const char *domain = jid_domain(&ev->user->jid, &hlen);
    char host[JID_MAX_LEN + 1];
    snprintf(host, sizeof host, "%.*s", (int)hlen, domain);
    if (sm_delayed_by(st->node, host))
        return false;   /* from our offline store, routed again: archived when it came */
    strip_forged(st, owner);
    char contact[JID_MAX_LEN + 1];
    jid_bare_to_string(&st->from, contact, sizeof contact);
    if (!archivable(st) || !wanted(s, ev->user, contact))
        return false;
    char *xml = mam_serialized(st);
    if (!xml)
        return false;
    char id[MAM_STANZA_ID_LEN + 1];
    stanza_id(xml, strlen(xml), true, id);
    xml_node *sid = xml_element_new(st->arena, st->node, NS_SID, "stanza-id");
    xml_attr_set(st->arena, sid, NULL, "by", owner);
    xml_attr_set(st->arena, sid, NULL, "id", id);
    /* The archived copy is the delivered one: the same bytes with the id as their last child
     * (what serializing st again would write, without doing it). A bare JID needs no escaping:
     * RFC 7622 keeps ' " & < > out of it. */
    static const char close[] = "</message>";
    size_t len = strlen(xml), cl = sizeof close - 1;
    if (len > cl && !memcmp(xml + len - cl, close, cl)) {
        buf b = BUF_INIT;
        buf_append(&b, xml, len - cl);
        buf_appendf(&b, "<stanza-id xmlns='%s' by='%s' id='%s'/>%s", NS_SID, owner, id, close);
        buf_append(&b, "", 1);
        mam_archive(s, &ev->user->jid, id, &st->from, buf_data(&b));
        buf_free(&b);
    }
    free(xml);
    return false;
}

/* A message a local account sends: its own archive. */
static bool outbound(sm *s, sm_event *ev)
{
    sm_stanza *st = ev->stanza;
    if (!ev->user || !ev->session || !st || !st->node || !st->to.domain_len ||
        !xml_is(st->node, SM_NS_CLIENT, "message") || !archivable(st))
        return false;
    char contact[JID_MAX_LEN + 1];
    jid_bare_to_string(&st->to, contact, sizeof contact);
    if (!wanted(s, ev->user, contact))
        return false;
    char *xml = mam_serialized(st);
    if (!xml)
        return false;
    char id[MAM_STANZA_ID_LEN + 1];
    stanza_id(xml, strlen(xml), false, id);
    mam_archive(s, &ev->user->jid, id, &st->to, xml);
    free(xml);
    return false;
}

/* ---- the module ---- */

static bool account_info(sm *s, sm_event *ev)
{
    disco_feature(ev->arena, ev->node, NS_MAM);
    disco_feature(ev->arena, ev->node, NS_MAM "#extended");
    disco_feature(ev->arena, ev->node, NS_SID);
    return false;
}

static bool mam_tick(sm *s, sm_event *ev)
{
    mam_archive_tick(s);
    return false;
}

/* The SM stops (its sessions end): what waits goes to storage before it closes. */
static bool session_end(sm *s, sm_event *ev)
{
    if (sm_stopping(s))
        mam_flush_all(s);
    return false;
}

static bool mam_metrics(sm *s, sm_event *ev)
{
    mam_archive_metrics(s, ev->out);
    return false;
}

static bool mam_init(sm *s, const sm_module *self, config *cfg)
{
    mam_archive_init(s);
    return true;
}

static void mam_fini(sm *s, const sm_module *self)
{
    mam_archive_free(s);
}

static const sm_handler mam_handlers[] = {
    {"iq/bare/" NS_MAM ":query", .iq = mam_query_iq},
    {"iq/bare/" NS_MAM ":metadata", .iq = mam_query_iq},
    {"iq/bare/" NS_MAM ":prefs", .iq = prefs_iq},
    {"inbound", .hook = inbound},
    {"outbound", .hook = outbound},
    {"user-load", .hook = user_load},
    {"session-end", .hook = session_end},
    {"disco-account-info", .hook = account_info},
    {"tick", .hook = mam_tick},
    {"metrics", .hook = mam_metrics},
    {NULL},
};

const sm_module mod_mam = {
    .name = "mam",
    .int_options = mam_options,
    .init = mam_init,
    .fini = mam_fini,
    .handlers = mam_handlers,
    .user_state = sizeof(mam_user),
    .user_release = user_release,
};
