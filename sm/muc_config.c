/* sm/muc_config.c — a room's configuration (XEP-0045 §10.2: the muc#roomconfig form, its
 * defaults from sm.xml's <muc>), and what disco says of rooms (§6.4: identity, the muc_* features,
 * the muc#roominfo form) and of the service (§6.1-§6.3: its public rooms, with XEP-0059 paging).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "sm/muc.h"

#define NS_RSM "http://jabber.org/protocol/rsm"
#define ROOMCONFIG "http://jabber.org/protocol/muc#roomconfig"
#define ROOMINFO "http://jabber.org/protocol/muc#roominfo"
#define ITEMS_PAGE_MAX 1000

void muc_config_defaults(sm *s, muc_config *c)
{
    memset(c, 0, sizeof *c);
    c->persistent = muc_option(s, "muc/persistent");
    c->public_list = muc_option(s, "muc/public");
    c->allow_invites = true;
    c->allow_subject = true;
    c->allow_pm = MUC_PM_ANYONE;
    c->logging = muc_option(s, "muc/logging");
    c->max_users = (int)muc_option(s, "muc/max_users");
    c->history = (int)muc_option(s, "muc/history");
    if (c->history > muc_option(s, "muc/history_max"))
        c->history = (int)muc_option(s, "muc/history_max");
}

void muc_config_free(muc_config *c)
{
    free(c->name);
    free(c->description);
    free(c->password);
    free(c->lang);
    memset(c, 0, sizeof *c);
}

/* ---- the form ---- */

static xml_node *field(xml_arena *a, xml_node *x, const char *var, const char *type,
                       const char *label, const char *value)
{
    xml_node *f = xml_element_new(a, x, NS_XDATA, "field");
    xml_attr_set(a, f, NULL, "var", var);
    if (type)
        xml_attr_set(a, f, NULL, "type", type);
    if (label)
        xml_attr_set(a, f, NULL, "label", label);
    if (value) {
        xml_node *v = xml_element_new(a, f, NS_XDATA, "value");
        xml_text_new(a, v, value, strlen(value));
    }
    return f;
}

static void option(xml_arena *a, xml_node *f, const char *label, const char *value)
{
    xml_node *o = xml_element_new(a, f, NS_XDATA, "option");
    xml_attr_set(a, o, NULL, "label", label);
    xml_node *v = xml_element_new(a, o, NS_XDATA, "value");
    xml_text_new(a, v, value, strlen(value));
}

static const char *const pm_names[] = {"anyone", "participants", "moderators", "none"};

static void jids_of(xml_arena *a, xml_node *f, const muc_room *r, muc_affiliation aff)
{
    void **v = sm_map_values(&r->affiliations);
    for (size_t i = 0; i < sm_map_count(&r->affiliations); i++) {
        const muc_aff_entry *e = v[i];
        if (e->aff != aff)
            continue;
        xml_node *val = xml_element_new(a, f, NS_XDATA, "value");
        xml_text_new(a, val, e->jid, strlen(e->jid));
    }
    free(v);
}

xml_node *muc_config_form(sm *s, const muc_room *r, xml_arena *a, xml_node *parent)
{
    const muc_config *c = &r->cfg;
    xml_node *x = xml_element_new(a, parent, NS_XDATA, "x");
    xml_attr_set(a, x, NULL, "type", "form");
    xml_node *t = xml_element_new(a, x, NS_XDATA, "title");
    char title[JID_MAX_LEN + 32];
    snprintf(title, sizeof title, "Configuration of %s", jid_full(&r->jid));
    xml_text_new(a, t, title, strlen(title));
    field(a, x, "FORM_TYPE", "hidden", NULL, ROOMCONFIG);
    field(a, x, "muc#roomconfig_roomname", "text-single", "Name", c->name ? c->name : "");
    field(a, x, "muc#roomconfig_roomdesc", "text-single", "Description",
          c->description ? c->description : "");
    field(a, x, "muc#roomconfig_lang", "text-single", "Language", c->lang ? c->lang : "");
    field(a, x, "muc#roomconfig_persistentroom", "boolean", "Persistent", c->persistent ? "1" : "0");
    field(a, x, "muc#roomconfig_publicroom", "boolean", "Listed publicly",
          c->public_list ? "1" : "0");
    field(a, x, "muc#roomconfig_membersonly", "boolean", "Members only",
          c->members_only ? "1" : "0");
    field(a, x, "muc#roomconfig_moderatedroom", "boolean", "Moderated", c->moderated ? "1" : "0");
    field(a, x, "muc#roomconfig_passwordprotectedroom", "boolean", "Password protected",
          c->password && *c->password ? "1" : "0");
    field(a, x, "muc#roomconfig_roomsecret", "text-private", "Password",
          c->password ? c->password : "");
    xml_node *f = field(a, x, "muc#roomconfig_whois", "list-single", "Who may see real JIDs",
                        c->whois_anyone ? "anyone" : "moderators");
    option(a, f, "Moderators", "moderators");
    option(a, f, "Anyone", "anyone");
    char n[24];
    snprintf(n, sizeof n, "%d", c->max_users);
    field(a, x, "muc#roomconfig_maxusers", "text-single", "Most occupants", n);
    snprintf(n, sizeof n, "%d", c->history);
    field(a, x, "muc#roomconfig_historylength", "text-single", "Messages of history kept", n);
    f = field(a, x, "muc#roomconfig_allowpm", "list-single", "Who may send private messages",
              pm_names[c->allow_pm]);
    for (int i = 0; i < 4; i++)
        option(a, f, pm_names[i], pm_names[i]);
    field(a, x, "muc#roomconfig_allowinvites", "boolean", "Occupants may invite",
          c->allow_invites ? "1" : "0");
    field(a, x, "muc#roomconfig_changesubject", "boolean", "Occupants may change the subject",
          c->allow_subject ? "1" : "0");
    field(a, x, "muc#roomconfig_enablelogging", "boolean", "Archived (XEP-0313)",
          c->logging ? "1" : "0");
    f = field(a, x, "muc#roomconfig_roomowners", "jid-multi", "Owners", NULL);
    jids_of(a, f, r, MUC_OWNER);
    f = field(a, x, "muc#roomconfig_roomadmins", "jid-multi", "Admins", NULL);
    jids_of(a, f, r, MUC_ADMIN);
    return x;
}

/* ---- a submitted form ---- */

static const char *value_of(xml_arena *a, const xml_node *f)
{
    const xml_node *v = xml_child(f, NS_XDATA, "value");
    const char *t = v ? xml_text(a, v) : NULL;
    return t ? t : "";
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true"))
        *out = true;
    else if (!strcmp(v, "0") || !strcmp(v, "false"))
        *out = false;
    else
        return false;
    return true;
}

static bool parse_int(const char *v, long long lo, long long hi, int *out)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        return false;
    *out = (int)n;
    return true;
}

static void set_text(char **dst, const char *v)
{
    free(*dst);
    *dst = *v ? mem_strdup(v) : NULL;
}

/* jid-multi values as affiliations: each valid bare JID gets aff. */
static void set_jids(sm *s, muc_room *r, xml_arena *a, const xml_node *f, muc_affiliation aff)
{
    for (const xml_node *v = xml_child(f, NS_XDATA, "value"); v; v = xml_next(v, NS_XDATA, "value")) {
        const char *t = xml_text(a, v);
        jid j;
        if (!t || jid_parse(t, strlen(t), &j) != JID_OK)
            continue;
        char bare[JID_MAX_LEN + 1];
        jid_bare_to_string(&j, bare, sizeof bare);
        jid_free(&j);
        if (sm_map_count(&r->affiliations) < (size_t)muc_option(s, "muc/affiliations_max"))
            muc_set_affiliation(s, r, bare, aff, NULL);
    }
}

bool muc_config_submit(sm *s, muc_room *r, const xml_node *x, const char **err, int codes[8])
{
    xml_arena *a = xml_arena_new(1024);
    muc_config c = r->cfg;
    c.name = r->cfg.name ? mem_strdup(r->cfg.name) : NULL;
    c.description = r->cfg.description ? mem_strdup(r->cfg.description) : NULL;
    c.password = r->cfg.password ? mem_strdup(r->cfg.password) : NULL;
    c.lang = r->cfg.lang ? mem_strdup(r->cfg.lang) : NULL;
    bool protect = c.password != NULL, ok = true;
    const xml_node *owners = NULL, *admins = NULL;
    for (const xml_node *f = xml_child(x, NS_XDATA, "field"); f && ok;
         f = xml_next(f, NS_XDATA, "field")) {
        const char *var = xml_attr_get(f, "var"), *v = value_of(a, f);
        if (!var)
            continue;
        if (!strcmp(var, "FORM_TYPE"))
            ok = !*v || !strcmp(v, ROOMCONFIG);
        else if (!strcmp(var, "muc#roomconfig_roomname"))
            set_text(&c.name, v);
        else if (!strcmp(var, "muc#roomconfig_roomdesc"))
            set_text(&c.description, v);
        else if (!strcmp(var, "muc#roomconfig_lang"))
            set_text(&c.lang, v);
        else if (!strcmp(var, "muc#roomconfig_persistentroom"))
            ok = parse_bool(v, &c.persistent);
        else if (!strcmp(var, "muc#roomconfig_publicroom"))
            ok = parse_bool(v, &c.public_list);
        else if (!strcmp(var, "muc#roomconfig_membersonly"))
            ok = parse_bool(v, &c.members_only);
        else if (!strcmp(var, "muc#roomconfig_moderatedroom"))
            ok = parse_bool(v, &c.moderated);
        else if (!strcmp(var, "muc#roomconfig_passwordprotectedroom"))
            ok = parse_bool(v, &protect);
        else if (!strcmp(var, "muc#roomconfig_roomsecret"))
            set_text(&c.password, v);
        else if (!strcmp(var, "muc#roomconfig_whois"))
            ok = (c.whois_anyone = !strcmp(v, "anyone")) || !strcmp(v, "moderators");
        else if (!strcmp(var, "muc#roomconfig_maxusers"))
            ok = parse_int(v, 1, muc_option(s, "muc/occupants_max"), &c.max_users) ||
                 (!strcmp(v, "none") && (c.max_users = (int)muc_option(s, "muc/occupants_max")));
        else if (!strcmp(var, "muc#roomconfig_historylength") || !strcmp(var, "muc#maxhistoryfetch"))
            ok = parse_int(v, 0, muc_option(s, "muc/history_max"), &c.history);
        else if (!strcmp(var, "muc#roomconfig_allowpm")) {
            ok = false;
            for (int i = 0; i < 4 && !ok; i++)
                if (!strcmp(v, pm_names[i])) {
                    c.allow_pm = (muc_pm)i;
                    ok = true;
                }
        } else if (!strcmp(var, "muc#roomconfig_allowinvites"))
            ok = parse_bool(v, &c.allow_invites);
        else if (!strcmp(var, "muc#roomconfig_changesubject"))
            ok = parse_bool(v, &c.allow_subject);
        else if (!strcmp(var, "muc#roomconfig_enablelogging"))
            ok = parse_bool(v, &c.logging);
        else if (!strcmp(var, "muc#roomconfig_roomowners"))
            owners = f;
        else if (!strcmp(var, "muc#roomconfig_roomadmins"))
            admins = f;
    }
    if (ok && !protect)
        set_text(&c.password, "");
    if (ok && protect && !c.password) {
        ok = false;     /* a password-protected room without a password */
        *err = "not-acceptable";
    } else if (!ok) {
        *err = "bad-request";
    }
    if (!ok) {
        muc_config_free(&c);
        xml_arena_free(a);
        return false;
    }
    int n = 0;
    codes[n++] = 104;
    if (c.whois_anyone != r->cfg.whois_anyone)
        codes[n++] = c.whois_anyone ? 172 : 173;
    if (c.logging != r->cfg.logging)
        codes[n++] = c.logging ? 170 : 171;
    codes[n] = 0;
    muc_config_free(&r->cfg);
    r->cfg = c;
    if (owners)
        set_jids(s, r, a, owners, MUC_OWNER);
    if (admins)
        set_jids(s, r, a, admins, MUC_ADMIN);
    xml_arena_free(a);
    return true;
}

/* ---- disco ---- */

static void feature(xml_arena *a, xml_node *q, const char *var)
{
    xml_node *f = xml_element_new(a, q, NS_DISCO_INFO, "feature");
    xml_attr_set(a, f, NULL, "var", var);
}

static void identity(xml_arena *a, xml_node *q, const char *name)
{
    xml_node *id = xml_element_new(a, q, NS_DISCO_INFO, "identity");
    xml_attr_set(a, id, NULL, "category", "conference");
    xml_attr_set(a, id, NULL, "type", "text");
    xml_attr_set(a, id, NULL, "name", name);
}

void muc_room_disco_info(sm *s, muc_room *r, sm_stanza *st, const xml_node *q)
{
    const char *node = xml_attr_get(q, "node");
    if (node && strcmp(node, "x-roomuser-item") != 0) {
        sm_bounce(s, st, "cancel", "item-not-found");
        return;
    }
    const muc_config *c = &r->cfg;
    xml_arena *a = xml_arena_new(2048);
    xml_node *res = xml_element_new(a, NULL, NS_DISCO_INFO, "query");
    if (node) {
        /* §7.2.4: the nick the user has in the room, if any (none are registered here). */
        xml_attr_set(a, res, NULL, "node", node);
        sm_iq_result(s, st, res);
        xml_arena_free(a);
        return;
    }
    size_t nlen;
    const char *rn = jid_node(&r->jid, &nlen);
    char name[JID_PART_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int)nlen, rn);
    identity(a, res, c->name ? c->name : name);
    feature(a, res, NS_MUC);
    feature(a, res, NS_DISCO_INFO);
    feature(a, res, NS_DISCO_ITEMS);
    feature(a, res, c->persistent ? "muc_persistent" : "muc_temporary");
    feature(a, res, c->public_list ? "muc_public" : "muc_hidden");
    feature(a, res, c->members_only ? "muc_membersonly" : "muc_open");
    feature(a, res, c->moderated ? "muc_moderated" : "muc_unmoderated");
    feature(a, res, c->password && *c->password ? "muc_passwordprotected" : "muc_unsecured");
    feature(a, res, c->whois_anyone ? "muc_nonanonymous" : "muc_semianonymous");
    feature(a, res, NS_OCCUPANT_ID);
    feature(a, res, NS_SELF_PING);
    feature(a, res, NS_SID);
    feature(a, res, NS_PING);
    if (c->logging) {
        sm_event ev = {.arena = a, .node = res, .name = jid_full(&r->jid)};
        sm_fire_named(s, "muc-room-info", &ev);
    }
    xml_node *x = xml_element_new(a, res, NS_XDATA, "x");
    xml_attr_set(a, x, NULL, "type", "result");
    field(a, x, "FORM_TYPE", "hidden", NULL, ROOMINFO);
    field(a, x, "muc#roominfo_description", NULL, "Description",
          c->description ? c->description : "");
    char n[24];
    snprintf(n, sizeof n, "%zu", sm_map_count(&r->occupants));
    field(a, x, "muc#roominfo_occupants", NULL, "Occupants", n);
    field(a, x, "muc#roominfo_subject", NULL, "Subject", r->subject ? r->subject : "");
    if (c->lang)
        field(a, x, "muc#roominfo_lang", NULL, "Language", c->lang);
    field(a, x, "muc#roomconfig_roomname", NULL, "Name", c->name ? c->name : "");
    field(a, x, "muc#roomconfig_allowinvites", NULL, NULL, c->allow_invites ? "1" : "0");
    field(a, x, "muc#roomconfig_changesubject", NULL, NULL, c->allow_subject ? "1" : "0");
    sm_iq_result(s, st, res);
    xml_arena_free(a);
}

void muc_room_disco_items(sm *s, muc_room *r, sm_stanza *st, const xml_node *q)
{
    /* Occupants are not listed (§6.5 lets a room keep them private). */
    xml_arena *a = xml_arena_new(256);
    xml_node *res = xml_element_new(a, NULL, NS_DISCO_ITEMS, "query");
    sm_iq_result(s, st, res);
    xml_arena_free(a);
}

void muc_service_disco_info(sm *s, muc_service *svc, sm_stanza *st, const xml_node *q)
{
    if (xml_attr_get(q, "node")) {
        sm_bounce(s, st, "cancel", "item-not-found");
        return;
    }
    xml_arena *a = xml_arena_new(1024);
    xml_node *res = xml_element_new(a, NULL, NS_DISCO_INFO, "query");
    identity(a, res, "Chatrooms");
    feature(a, res, NS_MUC);
    feature(a, res, NS_MUC_UNIQUE);
    feature(a, res, NS_DISCO_INFO);
    feature(a, res, NS_DISCO_ITEMS);
    feature(a, res, NS_OCCUPANT_ID);
    feature(a, res, NS_PING);
    feature(a, res, NS_RSM);
    sm_iq_result(s, st, res);
    xml_arena_free(a);
}

static int by_jid(const void *x, const void *y)
{
    const muc_room *a = *(muc_room *const *)x, *b = *(muc_room *const *)y;
    return strcmp(jid_full(&a->jid), jid_full(&b->jid));
}

/* The public unlocked rooms by JID, made again only when rooms changed since: a disco#items a
 * client repeats costs the page, not a sort of every room. */
static void list_public(muc_service *svc)
{
    if (svc->listed && svc->listed_generation == svc->generation)
        return;
    free(svc->listed);
    void **all = sm_map_values(&svc->rooms);
    svc->listed = mem_array(sm_map_count(&svc->rooms) + 1, sizeof *svc->listed);
    svc->nlisted = 0;
    for (size_t i = 0; i < sm_map_count(&svc->rooms); i++) {
        muc_room *r = all[i];
        if (r->cfg.public_list && !r->locked)
            svc->listed[svc->nlisted++] = r;
    }
    free(all);
    qsort(svc->listed, svc->nlisted, sizeof *svc->listed, by_jid);
    svc->listed_generation = svc->generation;
}

/* The first listed room whose JID is above (or at, when at) mark. */
static size_t listed_from(const muc_service *svc, const char *mark, bool at)
{
    size_t lo = 0, hi = svc->nlisted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(jid_full(&svc->listed[mid]->jid), mark);
        if (c < 0 || (c == 0 && !at))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The public rooms, by JID, a page at a time (XEP-0059: max, after, before). */
void muc_service_disco_items(sm *s, muc_service *svc, sm_stanza *st, const xml_node *q)
{
    if (xml_attr_get(q, "node")) {
        sm_bounce(s, st, "cancel", "item-not-found");
        return;
    }
    list_public(svc);
    muc_room **rooms = svc->listed;
    size_t n = svc->nlisted;
    const xml_node *set = xml_child(q, NS_RSM, "set");
    const xml_node *max_el = set ? xml_child(set, NS_RSM, "max") : NULL;
    const xml_node *after = set ? xml_child(set, NS_RSM, "after") : NULL;
    const xml_node *before = set ? xml_child(set, NS_RSM, "before") : NULL;
    long max = ITEMS_PAGE_MAX;
    if (max_el) {
        const char *v = xml_text(st->arena, max_el);
        char *end;
        long m = v ? strtol(v, &end, 10) : -1;
        if (!v || *end || m < 0) {
            sm_bounce(s, st, "modify", "bad-request");
            return;
        }
        max = m < ITEMS_PAGE_MAX ? m : ITEMS_PAGE_MAX;
    }
    size_t from = 0, to = n;
    const char *mark = after ? xml_text(st->arena, after) : NULL;
    if (mark)
        from = listed_from(svc, mark, false);
    mark = before ? xml_text(st->arena, before) : NULL;
    if (before) {
        if (mark && *mark)
            to = listed_from(svc, mark, true);
        if (to < from)
            to = from;
        if (to - from > (size_t)max)
            from = to - (size_t)max;
    } else if (to - from > (size_t)max) {
        to = from + (size_t)max;
    }
    xml_arena *a = xml_arena_new(4096);
    xml_node *res = xml_element_new(a, NULL, NS_DISCO_ITEMS, "query");
    for (size_t i = from; i < to; i++) {
        xml_node *item = xml_element_new(a, res, NS_DISCO_ITEMS, "item");
        xml_attr_set(a, item, NULL, "jid", jid_full(&rooms[i]->jid));
        size_t nlen;
        const char *rn = jid_node(&rooms[i]->jid, &nlen);
        char name[JID_PART_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)nlen, rn);
        xml_attr_set(a, item, NULL, "name", rooms[i]->cfg.name ? rooms[i]->cfg.name : name);
    }
    if (set) {
        xml_node *rs = xml_element_new(a, res, NS_RSM, "set");
        if (to > from) {
            xml_node *f = xml_element_new(a, rs, NS_RSM, "first");
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", from);
            xml_attr_set(a, f, NULL, "index", idx);
            const char *fj = jid_full(&rooms[from]->jid), *lj = jid_full(&rooms[to - 1]->jid);
            xml_text_new(a, f, fj, strlen(fj));
            xml_node *l = xml_element_new(a, rs, NS_RSM, "last");
            xml_text_new(a, l, lj, strlen(lj));
        }
        char cnt[24];
        snprintf(cnt, sizeof cnt, "%zu", n);
        xml_node *c = xml_element_new(a, rs, NS_RSM, "count");
        xml_text_new(a, c, cnt, strlen(cnt));
    }
    sm_iq_result(s, st, res);
    xml_arena_free(a);
}
