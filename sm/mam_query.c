/* sm/mam_query.c — querying one's own archive (XEP-0313 §4, with XEP-0059 paging): the form
 * (FORM_TYPE urn:xmpp:mam:2: with, start, end; mam:2#extended: before-id, after-id, ids), the
 * result set (max, after, before: empty for the last page), flip-page; each message comes as a
 * <result/> with <forwarded/> and <delay/>, then the iq's <fin/> with first, last and complete.
 * Also <metadata/> (mam:2#extended): the archive's first and last message.
 *
 * RSM's index (from the start, forwards, up to MAM_INDEX_MAX) skips that many, and the first
 * result says its index when it is known.
 *
 * Errors: another account's archive is <forbidden/>; an unknown field, a bad date or JID, a
 * negative max, an index with after or before is <bad-request/>; an id not in the archive is
 * <item-not-found/>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/xml_write.h"
#include "sm/mam.h"
#include "sm/modules.h"

#define NS_DATA "jabber:x:data"
/* RSM's index goes as far as this (an offset: its cost grows with it). */
#define MAM_INDEX_MAX 100000

/* XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss](Z|(+|-)hh:mm)) as Unix ms; false when it is not
 * one. */
static bool parse_datetime(const char *v, int64_t *ms)
{
    struct tm tm = {0};
    int consumed = 0, frac_ms = 0;
    if (sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &consumed) != 6 || consumed != 19)
        return false;
    const char *p = v + consumed;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        if (!digits)
            return false;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    int offset = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int h, m, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &m, &n) != 2 || n != 5 || h > 23 || m > 59)
            return false;
        offset = (*p == '+' ? 1 : -1) * (h * 60 + m) * 60;
        p += 6;
    } else {
        return false;
    }
    if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *ms = ((int64_t)timegm(&tm) - offset) * 1000 + frac_ms;
    return true;
}

/* ---- the query's parts ---- */

/* A form field's values into q; false (the query is bad) for an unknown field or a bad value. */
static bool form_field(xml_arena *a, const xml_node *f, xdb_mam_query *q)
{
    const char *var = xml_attr_get(f, "var");
    const xml_node *value = xml_child(f, NS_DATA, "value");
    const char *v = value ? xml_text(a, value) : "";
    if (!var)
        return false;
    if (!strcmp(var, "FORM_TYPE"))
        return !strcmp(v, NS_MAM);
    if (!strcmp(var, "with")) {
        jid j;
        if (jid_parse(v, strlen(v), &j) != JID_OK)
            return false;
        char bare[JID_MAX_LEN + 1];
        jid_bare_to_string(&j, bare, sizeof bare);
        size_t rlen;
        const char *res = jid_resource(&j, &rlen);
        q->peer = mem_strdup(bare);
        q->resource = res ? mem_strndup(res, rlen) : NULL;
        jid_free(&j);
        return true;
    }
    if (!strcmp(var, "start"))
        return parse_datetime(v, &q->start);
    if (!strcmp(var, "end"))
        return parse_datetime(v, &q->end);
    if (!strcmp(var, "after-id") || !strcmp(var, "before-id")) {
        char **slot = var[0] == 'a' ? &q->after_id : &q->before_id;
        free(*slot);
        *slot = *v ? mem_strdup(v) : NULL;
        return true;
    }
    if (!strcmp(var, "ids")) {
        for (const xml_node *x = value; x; x = xml_next(x, NS_DATA, "value"))
            if (q->ids.n < 20)
                xdb_strings_push(&q->ids, xml_text(a, x));
        return true;
    }
    return false;
}

/* RSM's <set/>; *flip set by the query's <flip-page/>. false with the condition to answer. */
static bool rsm(sm *s, xml_arena *a, const xml_node *set, xdb_mam_query *q, const char **cond)
{
    long long page_max = mam_option(s, "mam/page_max");
    q->max = page_max < 50 ? page_max : 50;
    if (!set)
        return true;
    const xml_node *index = xml_child(set, NS_RSM, "index");
    if (index) {
        /* Forwards from the start only, and within what an OFFSET reads cheaply. */
        char *end;
        const char *v = xml_text(a, index);
        long long i = strtoll(v, &end, 10);
        if (*end || end == v || i < 0 || i > MAM_INDEX_MAX || xml_child(set, NS_RSM, "after") ||
            xml_child(set, NS_RSM, "before")) {
            *cond = "bad-request";
            return false;
        }
        q->offset = i;
    }
    const xml_node *max = xml_child(set, NS_RSM, "max");
    if (max) {
        char *end;
        const char *v = xml_text(a, max);
        long long m = strtoll(v, &end, 10);
        if (*end || end == v || m < 0) {
            *cond = "bad-request";
            return false;
        }
        q->max = m < page_max ? m : page_max;
    }
    const xml_node *after = xml_child(set, NS_RSM, "after");
    const xml_node *before = xml_child(set, NS_RSM, "before");
    if (after) {
        free(q->after_id);
        q->after_id = mem_strdup(xml_text(a, after));
    }
    if (before) {
        const char *v = xml_text(a, before);
        free(q->before_id);
        q->before_id = *v ? mem_strdup(v) : NULL;
        q->last = !*v;
    }
    return true;
}

/* ---- results ---- */

typedef struct query_ctx {
    sm *s;
    sm_stanza *st;
    jid requester;
    jid owner;              /* the archive's: the account, or a room */
    char *queryid;
    bool flip;
    bool zero;              /* max 0: the answer is the <fin/> alone */
    int64_t index;          /* the first result's position, when known (RSM index), else -1 */
} query_ctx;

static void query_ctx_free(query_ctx *c)
{
    sm_stanza_free(c->st);
    jid_free(&c->requester);
    jid_free(&c->owner);
    free(c->queryid);
    free(c);
}

static void put_attr(buf *b, const char *name, const char *value)
{
    buf_appendf(b, " %s='", name);
    xml_write_attr_value(b, value, strlen(value));
    buf_append(b, "'", 1);
}

/* One archived message as a <result/>, to the requesting session. */
static void send_result(query_ctx *c, sm_session *to, const xdb_mam_entry *e)
{
    char stamp[32], id[32];
    sm_format_time(e->stamp, stamp);
    sm_make_id(c->s, "mam", id);
    buf b = BUF_INIT;
    buf_appendf(&b, "<message xmlns='jabber:client'");
    put_attr(&b, "to", jid_full(&c->requester));
    put_attr(&b, "from", jid_full(&c->owner));
    put_attr(&b, "id", id);
    buf_appendf(&b, "><result xmlns='%s'", NS_MAM);
    if (c->queryid)
        put_attr(&b, "queryid", c->queryid);
    put_attr(&b, "id", e->stanza_id);
    buf_appendf(&b, "><forwarded xmlns='%s'><delay xmlns='%s' stamp='%s'/>%s</forwarded></result>"
                    "</message>", NS_FORWARD, NS_DELAY, stamp, e->xml);
    sm_stanza *msg = sm_parse(c->s, buf_data(&b), buf_len(&b));
    buf_free(&b);
    if (msg)
        sm_deliver(c->s, to, msg);
}

static void queried(xdb_request *r, void *ctx)
{
    query_ctx *c = ctx;
    sm *s = c->s;
    sm_stanza *st = c->st;
    c->st = NULL;
    if (r->status != XDB_OK) {
        sm_bounce(s, st, r->status == XDB_NOT_FOUND ? "cancel" : "wait",
                  r->status == XDB_NOT_FOUND ? "item-not-found" : "internal-server-error");
        query_ctx_free(c);
        return;
    }
    sm_session *to = sm_session_find(s, &c->requester);
    if (!to) {
        sm_stanza_free(st);
        query_ctx_free(c);
        return;
    }
    size_t n = c->zero ? 0 : r->mam.n;
    for (size_t i = 0; i < n; i++)
        send_result(c, to, &r->mam.v[c->flip ? n - 1 - i : i]);
    xml_arena *a = xml_arena_new(512);
    xml_node *fin = xml_element_new(a, NULL, NS_MAM, "fin");
    if (r->mam_complete)
        xml_attr_set(a, fin, NULL, "complete", "true");
    xml_node *set = xml_element_new(a, fin, NS_RSM, "set");
    if (n) {
        const char *first = r->mam.v[0].stanza_id, *last = r->mam.v[n - 1].stanza_id;
        xml_node *f = xml_element_new(a, set, NS_RSM, "first");
        if (c->index >= 0) {
            char idx[24];
            snprintf(idx, sizeof idx, "%lld", (long long)c->index);
            xml_attr_set(a, f, NULL, "index", idx);
        }
        xml_text_new(a, f, c->flip ? last : first, strlen(c->flip ? last : first));
        xml_node *l = xml_element_new(a, set, NS_RSM, "last");
        xml_text_new(a, l, c->flip ? first : last, strlen(c->flip ? first : last));
    }
    sm_iq_result(s, st, fin);
    xml_arena_free(a);
    query_ctx_free(c);
}

static void query(sm *s, sm_stanza *st, const xml_node *q, const jid *owner)
{
    xdb_request *r = sm_user_request(XDB_MAM_QUERY, owner);
    const char *cond = "bad-request";
    const xml_node *x = xml_child(q, NS_DATA, "x");
    bool ok = true;
    for (const xml_node *f = x ? xml_child(x, NS_DATA, "field") : NULL; ok && f;
         f = xml_next(f, NS_DATA, "field"))
        ok = form_field(st->arena, f, &r->mam_query);
    ok = ok && rsm(s, st->arena, xml_child(q, NS_RSM, "set"), &r->mam_query, &cond);
    if (!ok) {
        xdb_request_free(r);
        sm_bounce(s, st, cond[0] == 'f' ? "cancel" : "modify", cond);
        return;
    }
    query_ctx *c = mem_zalloc(sizeof *c);
    c->s = s;
    jid_copy(&c->requester, &st->from);
    jid_copy(&c->owner, owner);
    const char *queryid = xml_attr_get(q, "queryid");
    c->queryid = queryid ? mem_strdup(queryid) : NULL;
    c->flip = xml_child(q, NS_MAM, "flip-page") != NULL;
    c->zero = r->mam_query.max == 0;
    /* Where the page starts in the query's result set is known when it starts at an offset. */
    bool from_start = !r->mam_query.after_id && !r->mam_query.before_id && !r->mam_query.last;
    c->index = from_start && !c->flip ? r->mam_query.offset : -1;
    if (c->zero)
        r->mam_query.max = 1;   /* only whether there is any */
    c->st = sm_iq_keep(st);
    mam_flush(s, owner);
    sm_submit(s, r, queried, c);
}

/* ---- the form, and metadata ---- */

static void form_field_def(xml_arena *a, xml_node *x, const char *var, const char *type)
{
    xml_node *f = xml_element_new(a, x, NS_DATA, "field");
    xml_attr_set(a, f, NULL, "var", var);
    xml_attr_set(a, f, NULL, "type", type);
    if (!strcmp(var, "FORM_TYPE"))
        xml_text_new(a, xml_element_new(a, f, NS_DATA, "value"), NS_MAM, strlen(NS_MAM));
}

static void form(sm *s, sm_stanza *st)
{
    xml_arena *a = xml_arena_new(1024);
    xml_node *q = xml_element_new(a, NULL, NS_MAM, "query");
    xml_node *x = xml_element_new(a, q, NS_DATA, "x");
    xml_attr_set(a, x, NULL, "type", "form");
    form_field_def(a, x, "FORM_TYPE", "hidden");
    form_field_def(a, x, "with", "jid-single");
    form_field_def(a, x, "start", "text-single");
    form_field_def(a, x, "end", "text-single");
    form_field_def(a, x, "after-id", "text-single");
    form_field_def(a, x, "before-id", "text-single");
    form_field_def(a, x, "ids", "text-multi");
    sm_iq_result(s, st, q);
    xml_arena_free(a);
}

typedef struct meta_ctx {
    sm *s;
    sm_stanza *st;
    xdb_mam_entry first;
    bool have_first;
} meta_ctx;

static void meta_entry(xml_arena *a, xml_node *m, const char *name, const xdb_mam_entry *e)
{
    char stamp[32];
    sm_format_time(e->stamp, stamp);
    xml_node *el = xml_element_new(a, m, NS_MAM, name);
    xml_attr_set(a, el, NULL, "id", e->stanza_id);
    xml_attr_set(a, el, NULL, "timestamp", stamp);
}

static void meta_last(xdb_request *r, void *ctx)
{
    meta_ctx *c = ctx;
    if (r->status != XDB_OK) {
        sm_bounce(c->s, c->st, "wait", "internal-server-error");
    } else {
        xml_arena *a = xml_arena_new(512);
        xml_node *m = xml_element_new(a, NULL, NS_MAM, "metadata");
        if (c->have_first && r->mam.n) {
            meta_entry(a, m, "start", &c->first);
            meta_entry(a, m, "end", &r->mam.v[0]);
        }
        sm_iq_result(c->s, c->st, m);
        xml_arena_free(a);
    }
    free(c->first.stanza_id);
    free(c);
}

static void meta_first(xdb_request *r, void *ctx)
{
    meta_ctx *c = ctx;
    if (r->status == XDB_OK && r->mam.n) {
        c->first.stamp = r->mam.v[0].stamp;
        c->first.stanza_id = mem_strdup(r->mam.v[0].stanza_id);
        c->have_first = true;
    }
    xdb_request *last = xdb_request_new(XDB_MAM_QUERY, r->host, r->user);
    last->mam_query.max = 1;
    last->mam_query.last = true;
    sm_submit(c->s, last, meta_last, c);
}

static void metadata(sm *s, sm_stanza *st, const jid *owner)
{
    meta_ctx *c = mem_zalloc(sizeof *c);
    c->s = s;
    c->st = sm_iq_keep(st);
    mam_flush(s, owner);
    xdb_request *r = sm_user_request(XDB_MAM_QUERY, owner);
    r->mam_query.max = 1;
    sm_submit(s, r, meta_first, c);
}

void mam_query_archive(sm *s, sm_stanza *st, xml_node *payload, const jid *owner)
{
    bool get = strcmp(sm_stanza_type(st), "get") == 0;
    if (!strcmp(payload->name, "query") && get)
        form(s, st);
    else if (!strcmp(payload->name, "query"))
        query(s, st, payload, owner);
    else if (!strcmp(payload->name, "metadata") && get)
        metadata(s, st, owner);
    else
        sm_bounce(s, st, "modify", "bad-request");
}

void mam_query_iq(sm *s, sm_stanza *st, xml_node *payload)
{
    if (!sm_stanza_to_self(st)) {
        sm_bounce(s, st, "cancel", st->origin ? "forbidden" : "service-unavailable");
        return;
    }
    jid owner;
    jid_bare(&st->from, &owner);
    mam_query_archive(s, st, payload, &owner);
    jid_free(&owner);
}
