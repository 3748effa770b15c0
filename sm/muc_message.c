/* sm/muc_message.c — messages to rooms and occupants (XEP-0045 §7.4-§7.5, §7.8, §8.1): group
 * messages reflected to every occupant with the room's stanza id (XEP-0359) and the sender's
 * occupant id (XEP-0421), the subject, the history a joining session gets (§7.2.14, kept in
 * memory: <muc><history> messages per room by default, at most <muc><history_bytes>), private
 * messages between occupants, and mediated invitations and their declines.
 *
 * A room with logging on (muc#roomconfig_enablelogging, the default <muc><logging>) fires
 * "muc-message" for every group message with a body (mod_muc_mam.c archives it).
 *
 * Errors (§7.4, §7.5): a sender that is not an occupant gets not-acceptable, a visitor of a
 * moderated room or an occupant the room does not let change the subject or send private messages
 * forbidden, an unknown nick item-not-found, a message over <muc><message_max> bytes
 * policy-violation. Errors sent to the room are dropped: answering them could loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"
#include "sm/muc.h"

#define MUC_INVITES_MAX 10

/* ---- history ---- */

void muc_history_clear(muc_room *r)
{
    for (size_t i = 0; i < r->hist_n; i++)
        free(r->history[(r->hist_start + i) % r->hist_cap].xml);
    r->hist_start = r->hist_n = r->hist_bytes = 0;
}

static void history_drop_oldest(muc_room *r)
{
    muc_history_entry *e = &r->history[r->hist_start];
    r->hist_bytes -= e->len;
    free(e->xml);
    r->hist_start = (r->hist_start + 1) % r->hist_cap;
    r->hist_n--;
}

static void history_add(sm *s, muc_room *r, char *xml, size_t len)
{
    size_t want = (size_t)r->cfg.history, bytes_max = (size_t)muc_option(s, "muc/history_bytes");
    if (!want || len > bytes_max) {
        free(xml);
        return;
    }
    if (r->hist_cap != want) {
        /* The configured length changed: keep the newest in a ring of the new size. */
        muc_history_entry *ring = mem_array(want, sizeof *ring);
        while (r->hist_n > want)
            history_drop_oldest(r);
        for (size_t i = 0; i < r->hist_n; i++)
            ring[i] = r->history[(r->hist_start + i) % r->hist_cap];
        free(r->history);
        r->history = ring;
        r->hist_cap = want;
        r->hist_start = 0;
    }
    while (r->hist_n && (r->hist_n == r->hist_cap || r->hist_bytes + len > bytes_max))
        history_drop_oldest(r);
    r->history[(r->hist_start + r->hist_n) % r->hist_cap] =
        (muc_history_entry){xml, len, sm_wall_ms()};
    r->hist_n++;
    r->hist_bytes += len;
}

/* An RFC 3339 time ("since"), in Unix milliseconds; false when it is not one. */
static bool parse_time(const char *v, int64_t *ms)
{
    int y, mo, d, h, mi;
    double sec;
    if (!v || sscanf(v, "%4d-%2d-%2dT%2d:%2d:%lf", &y, &mo, &d, &h, &mi, &sec) != 6)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 || sec >= 61)
        return false;
    /* Days from the civil date (Howard Hinnant's algorithm); the zone is taken as Z. */
    int yy = y - (mo <= 2);
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    *ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)(sec * 1000);
    return true;
}

static long history_attr(const xml_node *h, const char *name)
{
    const char *v = h ? xml_attr_get(h, name) : NULL;
    if (!v || !*v)
        return -1;
    char *end;
    long n = strtol(v, &end, 10);
    return *end || n < 0 ? -1 : n;
}

static void send_subject(sm *s, muc_room *r, const jid *to)
{
    char from[JID_MAX_LEN + 1];
    if (r->subject_by)
        muc_occupant_jid(r, r->subject_by, from, sizeof from);
    else
        snprintf(from, sizeof from, "%s", jid_full(&r->jid));
    sm_stanza *m = sm_stanza_make("message", from, NULL, "groupchat");
    char id[32];
    sm_make_id(s, "subject", id);
    xml_attr_set(m->arena, m->node, NULL, "id", id);
    xml_node *subj = xml_element_new(m->arena, m->node, SM_NS_CLIENT, "subject");
    if (r->subject)
        xml_text_new(m->arena, subj, r->subject, strlen(r->subject));
    muc_send_one(s, to, m);
}

void muc_send_history(sm *s, muc_room *r, const jid *to, const xml_node *h)
{
    long maxstanzas = history_attr(h, "maxstanzas"), maxchars = history_attr(h, "maxchars"),
         seconds = history_attr(h, "seconds");
    int64_t since = 0, now = sm_wall_ms();
    if (h && xml_attr_get(h, "since") && !parse_time(xml_attr_get(h, "since"), &since))
        since = 0;
    /* From the newest back, as far as every bound allows. */
    size_t first = r->hist_n, chars = 0;
    while (first > 0) {
        const muc_history_entry *e = &r->history[(r->hist_start + first - 1) % r->hist_cap];
        if (maxstanzas >= 0 && r->hist_n - first >= (size_t)maxstanzas)
            break;
        if (maxchars >= 0 && chars + e->len > (size_t)maxchars)
            break;
        if (seconds >= 0 && e->stamp < now - (int64_t)seconds * 1000)
            break;
        if (since && e->stamp < since)
            break;
        chars += e->len;
        first--;
    }
    for (size_t i = first; i < r->hist_n; i++) {
        const muc_history_entry *e = &r->history[(r->hist_start + i) % r->hist_cap];
        sm_stanza *m = sm_parse(s, e->xml, e->len);
        if (!m)
            continue;
        char stamp[32];
        sm_format_time(e->stamp, stamp);
        xml_node *d = xml_element_new(m->arena, m->node, NS_DELAY, "delay");
        xml_attr_set(m->arena, d, NULL, "from", jid_full(&r->jid));
        xml_attr_set(m->arena, d, NULL, "stamp", stamp);
        muc_send_one(s, to, m);
    }
    send_subject(s, r, to);
}

/* ---- group messages ---- */

/* Removes what a client may not claim: a stanza id in the room's name, an occupant id. */
static void strip_claims(muc_room *r, xml_node *n)
{
    for (xml_node *c = n->children; c;) {
        xml_node *next = c->next;
        if ((xml_is(c, NS_SID, "stanza-id") && xml_attr_get(c, "by") &&
             strcmp(xml_attr_get(c, "by"), jid_full(&r->jid)) == 0) ||
            xml_is(c, NS_OCCUPANT_ID, "occupant-id"))
            xml_node_detach(c);
        c = next;
    }
}

static void groupchat(sm *s, muc_room *r, muc_occupant *o, sm_stanza *st)
{
    const xml_node *subject = xml_child(st->node, SM_NS_CLIENT, "subject");
    const xml_node *body = xml_child(st->node, SM_NS_CLIENT, "body");
    if (o->role < MUC_PARTICIPANT) {
        sm_bounce(s, st, "auth", "forbidden");
        return;
    }
    if (subject && !body && !r->cfg.allow_subject && o->role < MUC_MODERATOR) {
        sm_bounce(s, st, "auth", "forbidden");
        return;
    }
    size_t max = (size_t)muc_option(s, "muc/message_max"), len;
    char *xml = sm_xml_string(st->node, max, &len);
    if (!xml) {
        sm_bounce(s, st, "modify", "policy-violation");
        return;
    }
    free(xml);
    char from[JID_MAX_LEN + 1];
    muc_occupant_jid(r, o->nick, from, sizeof from);
    strip_claims(r, st->node);
    xml_attr_remove(st->node, NULL, "to");
    if (!sm_stanza_set_from(st, from)) {
        sm_stanza_free(st);
        return;
    }
    st->origin = NULL;
    char sid[MUC_STANZA_ID_LEN + 1], oid[17];
    random_token(sid, MUC_STANZA_ID_LEN);
    xml_node *n = xml_element_new(st->arena, st->node, NS_SID, "stanza-id");
    xml_attr_set(st->arena, n, NULL, "by", jid_full(&r->jid));
    xml_attr_set(st->arena, n, NULL, "id", sid);
    muc_occupant_id(r, &o->real, oid);
    n = xml_element_new(st->arena, st->node, NS_OCCUPANT_ID, "occupant-id");
    xml_attr_set(st->arena, n, NULL, "id", oid);
    /* What the room adds (its ids) is a few hundred bytes. */
    xml = sm_xml_string(st->node, max + 1024, &len);
    if (!xml) {
        sm_stanza_free(st);
        return;
    }
    if (body && r->cfg.logging) {
        sm_event ev = {.stanza = st, .name = jid_full(&r->jid), .id = sid};
        sm_fire_named(s, "muc-message", &ev);
    }
    if (subject && !body) {
        free(r->subject);
        free(r->subject_by);
        const char *text = xml_text(st->arena, subject);
        r->subject = text && *text ? mem_strdup(text) : NULL;
        r->subject_by = r->subject ? mem_strdup(o->nick) : NULL;
        muc_store_room(s, r);
        free(xml);
    } else if (body) {
        history_add(s, r, xml, len);
    } else {
        free(xml);     /* chat states and markers: passed on, not kept */
    }
    sm_fanout f = sm_fanout_of(st);
    void **v = sm_map_values(&r->occupants);
    for (size_t i = 0; i < sm_map_count(&r->occupants); i++)
        muc_send_to_occupant(s, v[i], &f);
    free(v);
    sm_fanout_free(&f);
}

/* ---- private messages ---- */

static bool may_pm(const muc_room *r, const muc_occupant *o)
{
    switch (r->cfg.allow_pm) {
    case MUC_PM_ANYONE:
        return true;
    case MUC_PM_PARTICIPANTS:
        return o->role >= MUC_PARTICIPANT;
    case MUC_PM_MODERATORS:
        return o->role == MUC_MODERATOR;
    default:
        return false;
    }
}

static void private_message(sm *s, muc_room *r, muc_occupant *o, sm_stanza *st, const char *nick)
{
    muc_occupant *to = muc_occupant_by_nick(r, nick);
    if (!may_pm(r, o)) {
        sm_bounce(s, st, "cancel", "forbidden");
        return;
    }
    if (!to) {
        sm_bounce(s, st, "cancel", "item-not-found");
        return;
    }
    char from[JID_MAX_LEN + 1];
    muc_occupant_jid(r, o->nick, from, sizeof from);
    strip_claims(r, st->node);
    if (!xml_child(st->node, NS_MUC_USER, "x"))
        xml_element_new(st->arena, st->node, NS_MUC_USER, "x");
    if (!sm_stanza_set_from(st, from)) {
        sm_stanza_free(st);
        return;
    }
    st->origin = NULL;
    for (size_t i = 0; i < to->nsessions; i++) {
        sm_stanza *c = sm_stanza_copy(st);
        if (sm_stanza_set_to(c, jid_full(&to->sessions[i])))
            sm_route(s, c);
        else
            sm_stanza_free(c);
    }
    sm_stanza_free(st);
}

/* ---- invitations ---- */

static void invite(sm *s, muc_room *r, muc_occupant *o, sm_stanza *st, const xml_node *x)
{
    muc_affiliation aff = muc_affiliation_of(r, &o->real);
    if (!r->cfg.allow_invites && aff < MUC_ADMIN) {
        sm_bounce(s, st, "auth", "forbidden");
        return;
    }
    char inviter[JID_MAX_LEN + 1];
    jid_bare_to_string(&o->real, inviter, sizeof inviter);
    int sent = 0;
    for (const xml_node *inv = xml_child(x, NS_MUC_USER, "invite");
         inv && sent < MUC_INVITES_MAX; inv = xml_next(inv, NS_MUC_USER, "invite"), sent++) {
        const char *to = xml_attr_get(inv, "to");
        jid tj;
        if (!to || jid_parse(to, strlen(to), &tj) != JID_OK)
            continue;
        if (r->cfg.members_only && muc_affiliation_of(r, &tj) < MUC_MEMBER) {
            char bare[JID_MAX_LEN + 1];
            jid_bare_to_string(&tj, bare, sizeof bare);
            muc_set_affiliation(s, r, bare, MUC_MEMBER, NULL);
        }
        sm_stanza *m = sm_stanza_make("message", jid_full(&r->jid), jid_full(&tj), NULL);
        xml_node *mx = xml_element_new(m->arena, m->node, NS_MUC_USER, "x");
        xml_node *mi = xml_element_new(m->arena, mx, NS_MUC_USER, "invite");
        xml_attr_set(m->arena, mi, NULL, "from", inviter);
        const xml_node *reason = xml_child(inv, NS_MUC_USER, "reason");
        const char *why = reason ? xml_text(st->arena, reason) : NULL;
        if (why) {
            xml_node *rn = xml_element_new(m->arena, mi, NS_MUC_USER, "reason");
            xml_text_new(m->arena, rn, why, strlen(why));
        }
        if (r->cfg.password && *r->cfg.password) {
            xml_node *pw = xml_element_new(m->arena, mx, NS_MUC_USER, "password");
            xml_text_new(m->arena, pw, r->cfg.password, strlen(r->cfg.password));
        }
        char body[JID_MAX_LEN * 2 + 64];
        snprintf(body, sizeof body, "%s invites you to the room %s", inviter, jid_full(&r->jid));
        xml_node *b = xml_element_new(m->arena, m->node, SM_NS_CLIENT, "body");
        xml_text_new(m->arena, b, body, strlen(body));
        /* XEP-0249's element too, for clients that only read direct invitations. */
        xml_node *c = xml_element_new(m->arena, m->node, "jabber:x:conference", "x");
        xml_attr_set(m->arena, c, NULL, "jid", jid_full(&r->jid));
        if (why)
            xml_attr_set(m->arena, c, NULL, "reason", why);
        jid_free(&tj);
        sm_route(s, m);
    }
    sm_stanza_free(st);
}

static void decline(sm *s, muc_room *r, sm_stanza *st, const xml_node *d)
{
    const char *to = xml_attr_get(d, "to");
    jid tj;
    if (!to || jid_parse(to, strlen(to), &tj) != JID_OK) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    char decliner[JID_MAX_LEN + 1];
    jid_bare_to_string(&st->from, decliner, sizeof decliner);
    sm_stanza *m = sm_stanza_make("message", jid_full(&r->jid), jid_full(&tj), NULL);
    xml_node *mx = xml_element_new(m->arena, m->node, NS_MUC_USER, "x");
    xml_node *md = xml_element_new(m->arena, mx, NS_MUC_USER, "decline");
    xml_attr_set(m->arena, md, NULL, "from", decliner);
    const xml_node *reason = xml_child(d, NS_MUC_USER, "reason");
    const char *why = reason ? xml_text(st->arena, reason) : NULL;
    if (why) {
        xml_node *rn = xml_element_new(m->arena, md, NS_MUC_USER, "reason");
        xml_text_new(m->arena, rn, why, strlen(why));
    }
    jid_free(&tj);
    sm_route(s, m);
    sm_stanza_free(st);
}

void muc_message(sm *s, muc_service *svc, sm_stanza *st)
{
    sm_msg_kind kind = sm_message_kind(st);
    size_t nlen;
    const char *node = jid_node(&st->to, &nlen);
    muc_room *r = muc_room_find(svc, node, nlen);
    if (kind == SM_MSG_ERROR) {
        sm_stanza_free(st);
        return;
    }
    if (!r || r->locked) {
        sm_bounce(s, st, "cancel", "item-not-found");
        return;
    }
    muc_occupant *o = muc_occupant_by_session(r, &st->from);
    const xml_node *x = xml_child(st->node, NS_MUC_USER, "x");
    if (jid_is_bare(&st->to) && x && xml_child(x, NS_MUC_USER, "decline")) {
        decline(s, r, st, xml_child(x, NS_MUC_USER, "decline"));
        return;
    }
    if (!o) {
        sm_bounce(s, st, "modify", "not-acceptable");
        return;
    }
    if (jid_is_bare(&st->to)) {
        if (kind == SM_MSG_GROUPCHAT)
            groupchat(s, r, o, st);
        else if (x && xml_child(x, NS_MUC_USER, "invite"))
            invite(s, r, o, st, x);
        else
            sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    if (kind == SM_MSG_GROUPCHAT) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    size_t rlen;
    private_message(s, r, o, st, jid_resource(&st->to, &rlen));
}
