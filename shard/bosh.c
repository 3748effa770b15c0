/* shard/bosh.c — one BOSH session (XEP-0124 with XEP-0206) without sockets (bosh.h).
 *
 * A request is a slot from the moment it arrives until it is answered: PENDING while a lower rid
 * is missing (its body kept as bytes, parsed again when its turn comes), HELD once its payloads
 * went to the stream. Answers are made lazily (bosh_next_answer, bosh_tick) so that a request
 * pushed out by a later one carries what the c2s stream wrote in reply to that later one.
 */
#include "shard/bosh.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "core/random.h"
#include "core/xml.h"
#include "core/xml_write.h"
#include "shard/xmpp_framing.h"

#define RID_MAX 9007199254740991ull     /* 2^53 - 1 (XEP-0124 §14.1) */
#define SLOTS (BOSH_REQUESTS_MAX + 1)   /* the window, and one more to pause or terminate */
#define OPEN_ATTR_MAX 1024              /* bytes kept of the stream header's from, id, version */
#define CLIENT_ATTR_MAX 1024            /* bytes kept of a client's to and xml:lang */

typedef enum { SLOT_FREE, SLOT_PENDING, SLOT_HELD } slot_state;

typedef struct slot {
    slot_state state;
    uint64_t rid;
    uint64_t req_id;
    bool conn;             /* req_id's connection is still open */
    bool creation;         /* the session-creation request */
    uint64_t since;        /* arrival (PENDING), or when it was held (HELD) */
    uint64_t deadline;     /* HELD: when its wait passes */
    buf body;              /* PENDING: the request's bytes */
} slot;

typedef struct answer {
    uint64_t req_id;
    int status;
    buf body;
} ready_answer;

typedef struct cached {
    bool used;
    uint64_t rid;
    unsigned repeats;                  /* times it was asked for again */
    buf body;
} cached;

struct bosh {
    bosh_limits lim;
    char sid[BOSH_SID_MAX + 1];
    unsigned wait, hold, requests;
    bool legacy;                       /* no 'ver' at creation: HTTP error codes (§17.1) */
    unsigned ver_major, ver_minor;     /* what we answer (the lower of theirs and ours) */
    char *to, *lang;                   /* the client's, for restarts */
    uint64_t rid;                      /* the highest rid received in order */

    slot slots[SLOTS];
    ready_answer *ready;                     /* answers to pop, oldest first */
    size_t nready, ready_cap;
    cached cache[BOSH_REQUESTS_MAX];   /* the last `requests` answers, for repeats */
    unsigned cache_next;

    buf out;                           /* payloads waiting for a request */
    bool header_seen;                  /* the c2s stream wrote its first header */
    bool created;                      /* the creation request was answered */
    bool restarting;                   /* a restart's header is still to come: drop it */
    char *from, *authid, *xmpp_version; /* from that header, escaped as written */
    char *stream_error;                /* the condition of a <stream:error/> in out */

    bool terminating;                  /* the next answers are terminates */
    bool term_delivered;               /* some request carried the terminate */
    const char *term_condition;        /* theirs, NULL for none */
    bool ended, finished;

    uint64_t last_answer;              /* when the last slot was answered (inactivity) */
    uint64_t inactivity_ms;            /* the period in force (a pause changes it) */
    uint64_t last_new;                 /* arrival of the last new request */
    bool last_new_empty, last_answer_empty;
    uint64_t now;                      /* the time of the last call */
};

/* ---- small parsing helpers -------------------------------------------------------------------- */

/* A decimal number of at most max_digits digits, nothing else. */
static bool parse_uint(const char *s, unsigned max_digits, uint64_t *v)
{
    if (!s || !*s)
        return false;
    uint64_t n = 0;
    unsigned i = 0;
    for (; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= max_digits)
            return false;
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    *v = n;
    return true;
}

/* A number of seconds: digits, clamped to a day. */
static bool parse_seconds(const char *s, unsigned *v)
{
    uint64_t n;
    if (!parse_uint(s, 9, &n))
        return false;
    *v = n > 86400 ? 86400 : (unsigned)n;
    return true;
}

static bool parse_rid(const char *s, uint64_t *rid)
{
    return parse_uint(s, 16, rid) && *rid >= 1 && *rid <= RID_MAX;
}

static bool parse_ver(const char *s, unsigned *major, unsigned *minor)
{
    const char *dot = s ? strchr(s, '.') : NULL;
    if (!dot || dot - s > 4)
        return false;
    char m[5];
    memcpy(m, s, (size_t)(dot - s));
    m[dot - s] = '\0';
    uint64_t a, b;
    if (!parse_uint(m, 4, &a) || !parse_uint(dot + 1, 4, &b))
        return false;
    *major = (unsigned)a;
    *minor = (unsigned)b;
    return true;
}

static bool attr_true(const char *v)
{
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* ---- request bodies --------------------------------------------------------------------------- */

typedef struct parse {
    XML_Parser x;
    bool stopped;
    xml_builder bld;
    unsigned depth;
    bool root_seen, root_ok;   /* the first start tag was seen; it was {httpbind}body */
    bool restricted;           /* a DTD, comment, PI or foreign encoding */
    bool too_deep;
    bool root_only;            /* stop after the root's start tag (bosh_body_sid) */
} parse;

static void stop(parse *p)
{
    p->stopped = true;
    XML_StopParser(p->x, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    parse *p = ud;
    if (p->stopped)
        return;
    if (++p->depth > BOSH_DEPTH_MAX) {
        p->too_deep = true;
        stop(p);
        return;
    }
    xml_builder_start(&p->bld, name, atts, 0);
    if (p->depth == 1) {
        p->root_seen = true;
        p->root_ok = xml_is(p->bld.root, BOSH_NS, "body");
        if (!p->root_ok || p->root_only)
            stop(p);
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    parse *p = ud;
    if (p->stopped)
        return;
    xml_builder_end(&p->bld);
    p->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    parse *p = ud;
    if (!p->stopped && p->depth >= 2)     /* text right inside <body/> carries nothing */
        xml_builder_text(&p->bld, s, (size_t)len, 0);
}

static void XMLCALL on_restricted(void *ud)
{
    parse *p = ud;
    p->restricted = true;
    if (!p->stopped)
        stop(p);
}

static void XMLCALL on_comment(void *ud, const XML_Char *data) { on_restricted(ud); }
static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data) { on_restricted(ud); }
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    on_restricted(ud);
}
static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    on_restricted(ud);
}
static void XMLCALL on_xml_decl(void *ud, const XML_Char *version, const XML_Char *encoding,
                                int standalone)
{
    if (encoding && strcasecmp(encoding, "UTF-8") != 0)
        on_restricted(ud);
}

typedef enum {
    PARSE_OK,
    PARSE_NOT_BOSH,      /* not XML, or its root is not {httpbind}body */
    PARSE_BAD,           /* a BOSH body we refuse: bad-request */
} parse_result;

/* Parses body into a tree in *arena (the caller frees it, also on failure). */
static parse_result parse_body(const char *body, size_t len, size_t body_max, bool root_only,
                               xml_arena **arena, xml_node **root)
{
    *arena = NULL;
    *root = NULL;
    if (len > body_max || len > INT32_MAX)
        return PARSE_BAD;
    /* UTF-8 only: NUL bytes (UTF-16, UTF-32) and byte order marks other than UTF-8's. */
    if (memchr(body, '\0', len) ||
        (len >= 2 && (((unsigned char)body[0] == 0xFE && (unsigned char)body[1] == 0xFF) ||
                      ((unsigned char)body[0] == 0xFF && (unsigned char)body[1] == 0xFE))))
        return PARSE_NOT_BOSH;
    parse p = {0};
    p.root_only = root_only;
    p.x = XML_ParserCreateNS("UTF-8", XML_NS_SEP);
    if (!p.x)
        return PARSE_BAD;
    *arena = xml_arena_new(1024);
    xml_builder_init(&p.bld, *arena);
    XML_SetUserData(p.x, &p);
    XML_SetElementHandler(p.x, on_start, on_end);
    XML_SetCharacterDataHandler(p.x, on_text);
    XML_SetCommentHandler(p.x, on_comment);
    XML_SetProcessingInstructionHandler(p.x, on_pi);
    XML_SetStartDoctypeDeclHandler(p.x, on_doctype);
    XML_SetEntityDeclHandler(p.x, on_entity);
    XML_SetXmlDeclHandler(p.x, on_xml_decl);
    unsigned long salt;
    random_bytes(&salt, sizeof salt);
    XML_SetHashSalt(p.x, salt);
    enum XML_Status st = XML_Parse(p.x, body, (int)len, XML_TRUE);
    XML_ParserFree(p.x);
    xml_node *r = p.bld.root;
    xml_builder_free(&p.bld);
    if (!p.root_seen || !p.root_ok)
        return PARSE_NOT_BOSH;
    if (root_only && !p.restricted && !p.too_deep) {
        *root = r;
        return PARSE_OK;
    }
    if (st != XML_STATUS_OK || p.restricted || p.too_deep || p.depth != 0)
        return PARSE_BAD;
    *root = r;
    return PARSE_OK;
}

static const char *attr(const xml_node *root, const char *name)
{
    return xml_attr_get(root, name);
}

/* Whether the body carries elements. */
static bool has_payloads(const xml_node *root)
{
    return xml_child(root, NULL, NULL) != NULL;
}

/* Elements in the body's namespace are read as jabber:client (XEP-0206 §3: many clients leave
 * their stanzas' namespace out); each payload is written for a stream whose default namespace is
 * jabber:client and where stream: is bound. */
static void write_payloads(xml_arena *arena, xml_node *root, buf *stream)
{
    const char *client = xml_arena_ns(arena, "jabber:client", strlen("jabber:client"));
    const char *bosh_ns = xml_arena_ns(arena, BOSH_NS, strlen(BOSH_NS));
    for (xml_node *n = root->children; n; ) {
        if (n->kind == XML_ELEMENT && n->ns == bosh_ns)
            n->ns = client;
        if (n->children) {
            n = n->children;
            continue;
        }
        while (n != root && !n->next)
            n = n->parent;
        if (n == root)
            break;
        n = n->next;
    }
    for (xml_node *c = xml_child(root, NULL, NULL); c; c = xml_next(c, NULL, NULL))
        xml_write_node(stream, c, "jabber:client", true);
}

/* ---- answers ---------------------------------------------------------------------------------- */

static int legacy_status(const bosh *b, const char *condition)
{
    if (!b || !b->legacy || !condition)
        return 200;
    if (strcmp(condition, "bad-request") == 0)
        return 400;
    if (strcmp(condition, "policy-violation") == 0)
        return 403;
    if (strcmp(condition, "item-not-found") == 0)
        return 404;
    return 200;
}

static void terminate_body(buf *out, const char *condition, const buf *payloads)
{
    buf_appendf(out, "<body xmlns='" BOSH_NS "' type='terminate'");
    if (condition)
        buf_appendf(out, " condition='%s'", condition);
    if (payloads && buf_len(payloads)) {
        buf_appendf(out, " xmlns:stream='" XML_NS_STREAMS "'>");
        buf_append(out, buf_data(payloads), buf_len(payloads));
        buf_appendf(out, "</body>");
    } else {
        buf_appendf(out, "/>");
    }
}

static void push_answer(bosh *b, uint64_t req_id, int status, const char *data, size_t len)
{
    if (b->nready == b->ready_cap) {
        b->ready_cap = b->ready_cap ? 2 * b->ready_cap : 4;
        b->ready = mem_realloc(b->ready, b->ready_cap * sizeof *b->ready);
    }
    ready_answer *a = &b->ready[b->nready++];
    a->req_id = req_id;
    a->status = status;
    buf_init(&a->body);
    buf_append(&a->body, data, len);
}

static void cache_answer(bosh *b, uint64_t rid, const buf *body)
{
    cached *c = &b->cache[b->cache_next];
    b->cache_next = (b->cache_next + 1) % b->requests;
    c->used = true;
    c->rid = rid;
    c->repeats = 0;
    buf_truncate(&c->body, 0);
    buf_append(&c->body, buf_data(body), buf_len(body));
}

static cached *cache_find(bosh *b, uint64_t rid)
{
    for (unsigned i = 0; i < b->requests; i++)
        if (b->cache[i].used && b->cache[i].rid == rid)
            return &b->cache[i];
    return NULL;
}

static unsigned count_slots(const bosh *b, slot_state st)
{
    unsigned n = 0;
    for (int i = 0; i < SLOTS; i++)
        n += b->slots[i].state == st;
    return n;
}

static bool any_slot(const bosh *b)
{
    for (int i = 0; i < SLOTS; i++)
        if (b->slots[i].state != SLOT_FREE)
            return true;
    return false;
}

static slot *oldest(bosh *b, slot_state st)
{
    slot *o = NULL;
    for (int i = 0; i < SLOTS; i++)
        if (b->slots[i].state == st && (!o || b->slots[i].rid < o->rid))
            o = &b->slots[i];
    return o;
}

static slot *find_rid(bosh *b, uint64_t rid)
{
    for (int i = 0; i < SLOTS; i++)
        if (b->slots[i].state != SLOT_FREE && b->slots[i].rid == rid)
            return &b->slots[i];
    return NULL;
}

static slot *free_slot(bosh *b)
{
    for (int i = 0; i < SLOTS; i++)
        if (b->slots[i].state == SLOT_FREE)
            return &b->slots[i];
    return NULL;
}

static void release(bosh *b, slot *s, uint64_t now)
{
    s->state = SLOT_FREE;
    buf_free(&s->body);
    b->last_answer = now;
}

/* The attributes of the answer to the creation request. */
static void creation_attrs(bosh *b, buf *o)
{
    buf_appendf(o, " xmlns:xmpp='" BOSH_XMPP_NS "' sid='%s' wait='%u' requests='%u' hold='%u'"
                " inactivity='%u' polling='%u'", b->sid, b->wait, b->requests, b->hold,
                b->lim.inactivity, b->lim.polling);
    if (b->lim.maxpause)
        buf_appendf(o, " maxpause='%u'", b->lim.maxpause);
    if (!b->legacy)
        buf_appendf(o, " ver='%u.%u'", b->ver_major, b->ver_minor);
    if (b->from)
        buf_appendf(o, " from='%s'", b->from);
    if (b->authid)
        buf_appendf(o, " authid='%s'", b->authid);
    buf_appendf(o, " secure='true' xmpp:version='%s' xmpp:restartlogic='true'",
                b->xmpp_version ? b->xmpp_version : "1.0");
}

enum {
    ANS_EMPTY = 1,             /* no payloads (a pause, a request pushed out by a later one) */
    ANS_NOCACHE = 2,           /* not kept for a repeat (the answer to a pause) */
};

/* Answers slot s: with the waiting payloads, or as a terminate while the session is terminating. */
static void answer_slot(bosh *b, slot *s, unsigned how)
{
    buf o = BUF_INIT;
    int status = 200;
    bool payloads = !(how & ANS_EMPTY) && buf_len(&b->out) > 0;
    if (b->terminating) {
        terminate_body(&o, b->term_condition, payloads ? &b->out : NULL);
        status = legacy_status(b, b->term_condition);
        b->term_delivered = true;
    } else {
        buf_appendf(&o, "<body xmlns='" BOSH_NS "'");
        if (s->creation)
            creation_attrs(b, &o);
        if (payloads) {
            buf_appendf(&o, " xmlns:stream='" XML_NS_STREAMS "'>");
            buf_append(&o, buf_data(&b->out), buf_len(&b->out));
            buf_appendf(&o, "</body>");
        } else {
            buf_appendf(&o, "/>");
        }
        if (!(how & ANS_NOCACHE))
            cache_answer(b, s->rid, &o);
    }
    if (payloads) {
        buf_free(&b->out);
        free(b->stream_error);
        b->stream_error = NULL;
    }
    if (s->creation)
        b->created = true;
    b->last_answer_empty = !payloads;
    if (s->conn)
        push_answer(b, s->req_id, status, buf_data(&o), buf_len(&o));
    buf_free(&o);
    release(b, s, b->now);
}

/* Ends the session with a terminal condition (NULL: a plain terminate). Every request still
 * waiting is answered with it, the oldest with the payloads still queued; with none waiting, the
 * next request to come carries it (bosh_request). */
static void terminate(bosh *b, const char *condition)
{
    if (!b->terminating) {
        b->terminating = true;
        b->term_condition = condition;
    }
    b->ended = true;
    slot *s;
    while ((s = oldest(b, SLOT_HELD)) || (s = oldest(b, SLOT_PENDING)))
        answer_slot(b, s, 0);
}

/* The terminate, answered to a request that takes no slot. */
static void answer_terminate(bosh *b, uint64_t req_id)
{
    buf o = BUF_INIT;
    terminate_body(&o, b->term_condition, &b->out);
    buf_free(&b->out);
    push_answer(b, req_id, legacy_status(b, b->term_condition), buf_data(&o), buf_len(&o));
    buf_free(&o);
    b->term_delivered = true;
}

/* Makes the answers that are due: payloads for the oldest held request (not for the creation
 * request before the stream header: its answer waits for the features), requests beyond hold. */
static void flush(bosh *b)
{
    for (;;) {
        slot *s = oldest(b, SLOT_HELD);
        if (!s)
            return;
        unsigned held = count_slots(b, SLOT_HELD);
        if (b->terminating || (buf_len(&b->out) && (b->header_seen || !s->creation)))
            answer_slot(b, s, 0);
        else if (held > b->hold && !(held == 1 && s->creation))
            answer_slot(b, s, ANS_EMPTY);
        else
            return;
    }
}

/* ---- the stream header the c2s stream wrote ---------------------------------------------------- */

/* The value of attribute name in a start tag of our own serialization (values in '…', escaped). */
static char *tag_attr(const char *el, size_t len, const char *name)
{
    const char *p = el, *end = el + len;
    size_t n = strlen(name);
    while (p < end && *p != ' ' && *p != '>' && *p != '/')
        p++;                                    /* the element's name */
    for (;;) {
        while (p < end && *p == ' ')
            p++;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq + 1 >= end || (eq[1] != '\'' && eq[1] != '"'))
            return NULL;
        const char *close = memchr(eq + 2, eq[1], (size_t)(end - eq - 2));
        if (!close)
            return NULL;
        if ((size_t)(eq - p) == n && memcmp(p, name, n) == 0)
            return close - (eq + 2) <= OPEN_ATTR_MAX && eq[1] == '\''
                       ? mem_strndup(eq + 2, (size_t)(close - (eq + 2))) : NULL;
        p = close + 1;
    }
}

/* The condition of a <stream:error/>: the name of its first child element. */
static char *error_condition(const char *el, size_t len)
{
    const char *gt = memchr(el, '>', len);
    if (!gt || gt + 2 > el + len || gt[1] != '<')
        return NULL;
    const char *name = gt + 2, *end = el + len;
    size_t n = 0;
    while (name + n < end && n < 64 && name[n] != ' ' && name[n] != '/' && name[n] != '>')
        n++;
    return n && n < 64 ? mem_strndup(name, n) : NULL;
}

/* A stream error's condition as the terminal binding condition that says it. */
static const char *binding_condition(const char *stream_condition)
{
    static const char *const same[] = {"host-gone", "host-unknown", "system-shutdown"};
    for (size_t i = 0; stream_condition && i < sizeof same / sizeof same[0]; i++)
        if (strcmp(stream_condition, same[i]) == 0)
            return same[i];
    return "remote-stream-error";
}

/* ---- the public calls ------------------------------------------------------------------------- */

void bosh_limits_default(bosh_limits *lim, size_t stanza_size)
{
    *lim = (bosh_limits){
        .wait_max = 60, .hold_max = 1, .requests = 2, .inactivity = 60, .polling = 5,
        .maxpause = 120, .body_max = stanza_size + 8192, .queue_max = 16 * stanza_size,
    };
}

bool bosh_body_sid(const char *body, size_t len, char *sid)
{
    xml_arena *arena;
    xml_node *root;
    sid[0] = '\0';
    bool ok = parse_body(body, len, SIZE_MAX, true, &arena, &root) == PARSE_OK;
    if (ok) {
        const char *s = attr(root, "sid");
        if (s && (strlen(s) > BOSH_SID_MAX || !*s))
            ok = false;
        else if (s)
            strcpy(sid, s);
    }
    xml_arena_free(arena);
    return ok;
}

int bosh_refusal(buf *out)
{
    return 400;
}

int bosh_unknown_sid(buf *out)
{
    terminate_body(out, "item-not-found", NULL);
    return 200;
}

/* A creation request refused: the answer and NULL. */
static bosh *refuse_creation(int status, const char *condition, buf *answer, int *out_status)
{
    *out_status = status;
    if (condition)
        terminate_body(answer, condition, NULL);
    return NULL;
}

bosh *bosh_new(const bosh_limits *lim, const char *sid, uint64_t req_id, const char *body,
               size_t len, uint64_t now_ms, buf *stream, int *status, buf *answer)
{
    xml_arena *arena;
    xml_node *root;
    switch (parse_body(body, len, lim->body_max, false, &arena, &root)) {
    case PARSE_OK:
        break;
    case PARSE_NOT_BOSH:
        xml_arena_free(arena);
        return refuse_creation(400, NULL, answer, status);
    default:
        xml_arena_free(arena);
        return refuse_creation(200, "bad-request", answer, status);
    }
    const char *to = attr(root, "to"), *lang = xml_attr_get_ns(root, XML_NS_XML, "lang");
    const char *version = xml_attr_get_ns(root, BOSH_XMPP_NS, "version");
    const char *ver = attr(root, "ver");
    uint64_t rid;
    unsigned wait = lim->wait_max, hold = lim->hold_max;
    const char *condition = NULL;
    if (attr(root, "sid") || !parse_rid(attr(root, "rid"), &rid) ||
        (attr(root, "wait") && !parse_seconds(attr(root, "wait"), &wait)) ||
        (attr(root, "hold") && !parse_seconds(attr(root, "hold"), &hold)) ||
        (to && strlen(to) > CLIENT_ATTR_MAX) || (lang && strlen(lang) > CLIENT_ATTR_MAX) ||
        (version && strlen(version) > 16) || strlen(sid) > BOSH_SID_MAX || !*sid)
        condition = "bad-request";
    else if (!to || !*to)
        condition = "improper-addressing";
    if (condition) {
        int st = !ver && strcmp(condition, "bad-request") == 0 ? 400 : 200;
        xml_arena_free(arena);
        return refuse_creation(st, condition, answer, status);
    }
    bosh *b = mem_zalloc(sizeof *b);
    b->lim = *lim;
    strcpy(b->sid, sid);
    b->requests = lim->requests < 1 ? 1 : lim->requests > BOSH_REQUESTS_MAX ? BOSH_REQUESTS_MAX
                                                                             : lim->requests;
    b->wait = wait < lim->wait_max ? wait : lim->wait_max;
    b->hold = hold < lim->hold_max ? hold : lim->hold_max;
    if (b->hold > b->requests - 1)
        b->hold = b->requests - 1;
    if (b->wait == 0)
        b->hold = 0;            /* a polling client (§12) */
    unsigned major, minor;
    b->legacy = !ver;
    b->ver_major = 1;
    b->ver_minor = 11;
    if (ver && parse_ver(ver, &major, &minor) &&
        (major < 1 || (major == 1 && minor < 11))) {
        b->ver_major = major;
        b->ver_minor = minor;
    }
    b->to = mem_strdup(to);
    b->lang = lang ? mem_strdup(lang) : NULL;
    b->rid = rid;
    b->now = now_ms;
    b->last_answer = now_ms;
    b->last_new = now_ms;
    b->inactivity_ms = (uint64_t)lim->inactivity * 1000;
    slot *s = &b->slots[0];
    s->state = SLOT_HELD;
    s->rid = rid;
    s->req_id = req_id;
    s->conn = true;
    s->creation = true;
    s->since = now_ms;
    s->deadline = now_ms + (uint64_t)(b->wait ? b->wait : 1) * 1000;
    xml_stream_attrs a = {.content_ns = "jabber:client", .to = b->to, .lang = b->lang,
                          .version = version ? version : "1.0"};
    xml_write_stream_open(stream, &a);
    xml_arena_free(arena);
    return b;
}

void bosh_free(bosh *b)
{
    if (!b)
        return;
    for (int i = 0; i < SLOTS; i++)
        buf_free(&b->slots[i].body);
    for (size_t i = 0; i < b->nready; i++)
        buf_free(&b->ready[i].body);
    free(b->ready);
    for (int i = 0; i < BOSH_REQUESTS_MAX; i++)
        buf_free(&b->cache[i].body);
    buf_free(&b->out);
    free(b->to);
    free(b->lang);
    free(b->from);
    free(b->authid);
    free(b->xmpp_version);
    free(b->stream_error);
    free(b);
}

/* The in-order request s (its rid the next one): its payloads to the stream, then held, or
 * answered at once (terminate, pause). */
static void process(bosh *b, slot *s, xml_arena *arena, xml_node *root, buf *stream)
{
    b->rid = s->rid;
    s->state = SLOT_HELD;
    s->since = b->now;
    s->deadline = b->now + (uint64_t)b->wait * 1000;
    buf_free(&s->body);
    if (b->terminating) {
        answer_slot(b, s, 0);
        return;
    }
    const char *type = attr(root, "type");
    if (type && strcmp(type, "terminate") == 0) {
        write_payloads(arena, root, stream);
        xml_write_stream_close(stream);
        buf_free(&b->out);      /* the client is leaving: what waited is not for it any more */
        terminate(b, NULL);
        return;
    }
    if (attr_true(xml_attr_get_ns(root, BOSH_XMPP_NS, "restart"))) {
        /* XEP-0206 §5: a new stream; a payload in the restart request is ignored. */
        const char *to = attr(root, "to"), *lang = xml_attr_get_ns(root, XML_NS_XML, "lang");
        if (to && *to && strlen(to) <= CLIENT_ATTR_MAX) {
            free(b->to);
            b->to = mem_strdup(to);
        }
        if (lang && strlen(lang) <= CLIENT_ATTR_MAX) {
            free(b->lang);
            b->lang = mem_strdup(lang);
        }
        xml_stream_attrs a = {.content_ns = "jabber:client", .to = b->to, .lang = b->lang,
                              .version = "1.0"};
        xml_write_stream_open(stream, &a);
        b->restarting = true;
        return;
    }
    write_payloads(arena, root, stream);
    unsigned pause;
    if (b->lim.maxpause && parse_seconds(attr(root, "pause"), &pause)) {
        /* §10: every request answered now, the pause request without payloads; the session
         * may then stay without requests for the pause asked for (at most maxpause). */
        slot *o;
        while ((o = oldest(b, SLOT_HELD)) != s)
            answer_slot(b, o, 0);
        answer_slot(b, s, ANS_EMPTY | ANS_NOCACHE);
        b->inactivity_ms = (uint64_t)(pause < b->lim.maxpause ? pause : b->lim.maxpause) * 1000;
    }
}

/* A request answered at once, taking no slot: a repeat, or an error. */
static void refuse(bosh *b, uint64_t req_id, const char *condition)
{
    terminate(b, condition);
    answer_terminate(b, req_id);
}

static unsigned request(bosh *b, uint64_t req_id, const char *body, size_t len, buf *stream)
{
    if (bosh_finished(b)) {
        buf o = BUF_INIT;
        int st = bosh_unknown_sid(&o);
        push_answer(b, req_id, st, buf_data(&o), buf_len(&o));
        buf_free(&o);
        return BOSH_REQ_REFUSED;
    }
    if (b->terminating) {
        answer_terminate(b, req_id);    /* the terminate waiting for a request */
        return BOSH_REQ_REFUSED;
    }
    xml_arena *arena;
    xml_node *root;
    uint64_t rid;
    if (parse_body(body, len, b->lim.body_max, false, &arena, &root) != PARSE_OK ||
        !parse_rid(attr(root, "rid"), &rid)) {
        xml_arena_free(arena);
        refuse(b, req_id, "bad-request");
        return BOSH_REQ_REFUSED;
    }
    const char *sid = attr(root, "sid");
    if (!sid || strcmp(sid, b->sid) != 0 || rid > b->rid + b->requests) {
        xml_arena_free(arena);
        refuse(b, req_id, "item-not-found");
        return BOSH_REQ_REFUSED;
    }
    slot *s = find_rid(b, rid);
    if (s) {
        /* §14.3: a request received again while unanswered: the old connection gets a
         * recoverable error, the answer goes to the new one. */
        if (s->conn) {
            static const char again[] = "<body xmlns='" BOSH_NS "' type='error'/>";
            push_answer(b, s->req_id, 200, again, sizeof again - 1);
        }
        s->req_id = req_id;
        s->conn = true;
        xml_arena_free(arena);
        return 0;
    }
    if (rid <= b->rid) {
        xml_arena_free(arena);
        cached *c = cache_find(b, rid);
        if (!c) {
            refuse(b, req_id, "item-not-found");
            return BOSH_REQ_REFUSED;
        }
        /* A client asks again after a lost answer, once or twice; asking on and on would have
         * a small request bring back a large answer each time. */
        if (++c->repeats > BOSH_REPEATS_MAX) {
            refuse(b, req_id, "policy-violation");
            return BOSH_REQ_REFUSED;
        }
        push_answer(b, req_id, 200, buf_data(&c->body), buf_len(&c->body));
        return 0;
    }
    /* A new request: overactivity (§11, §12). */
    const char *type = attr(root, "type");
    bool special = (type && strcmp(type, "terminate") == 0) ||
                   (b->lim.maxpause && attr(root, "pause"));
    bool empty = !special && !has_payloads(root) &&
                 !attr_true(xml_attr_get_ns(root, BOSH_XMPP_NS, "restart"));
    unsigned unanswered = count_slots(b, SLOT_HELD) + count_slots(b, SLOT_PENDING) + 1;
    bool soon = b->now - b->last_new < (uint64_t)b->lim.polling * 1000;
    if (unanswered > b->requests + (special ? 1 : 0) ||
        (empty && soon && b->hold == 0 && b->last_new_empty && b->last_answer_empty) ||
        (empty && soon && b->hold > 0 && b->requests >= 2 && unanswered >= b->requests)) {
        xml_arena_free(arena);
        refuse(b, req_id, "policy-violation");
        return BOSH_REQ_REFUSED;
    }
    b->last_new = b->now;
    b->last_new_empty = empty;
    b->inactivity_ms = (uint64_t)b->lim.inactivity * 1000;
    s = free_slot(b);   /* there is one: unanswered <= requests + 1 <= SLOTS */
    s->rid = rid;
    s->req_id = req_id;
    s->conn = true;
    s->creation = false;
    s->since = b->now;
    if (rid != b->rid + 1) {
        s->state = SLOT_PENDING;        /* §14.2: after the gap fills */
        buf_init(&s->body);
        buf_append(&s->body, body, len);
        xml_arena_free(arena);
        return 0;
    }
    process(b, s, arena, root, stream);
    xml_arena_free(arena);
    /* The requests that waited for this one. */
    while (!b->ended && (s = find_rid(b, b->rid + 1)) && s->state == SLOT_PENDING) {
        if (parse_body(buf_data(&s->body), buf_len(&s->body), b->lim.body_max, false, &arena,
                       &root) != PARSE_OK) {
            xml_arena_free(arena);
            terminate(b, "bad-request");        /* it parsed when it came */
            break;
        }
        process(b, s, arena, root, stream);
        xml_arena_free(arena);
    }
    return 0;
}

unsigned bosh_request(bosh *b, uint64_t req_id, const char *body, size_t len, uint64_t now_ms,
                      buf *stream)
{
    b->now = now_ms;
    size_t before = buf_len(stream);
    unsigned r = request(b, req_id, body, len, stream);
    if (buf_len(stream) != before)
        r |= BOSH_REQ_STREAM;
    if (b->ended)
        r |= BOSH_REQ_ENDED;
    return r;
}

void bosh_output(bosh *b, int kind, const char *el, size_t len, uint64_t now_ms)
{
    b->now = now_ms;
    if (b->ended)
        return;
    switch (kind) {
    case FRAMING_OUT_OPEN:
        if (b->restarting) {
            b->restarting = false;
        } else if (!b->header_seen) {
            b->header_seen = true;
            b->from = tag_attr(el, len, "from");
            b->authid = tag_attr(el, len, "id");
            b->xmpp_version = tag_attr(el, len, "version");
        }
        return;
    case FRAMING_OUT_CLOSE:
        terminate(b, b->stream_error ? binding_condition(b->stream_error) : NULL);
        return;
    default:
        break;
    }
    if (len > b->lim.queue_max || buf_len(&b->out) > b->lim.queue_max - len) {
        buf_free(&b->out);
        terminate(b, "policy-violation");
        return;
    }
    if (len > 13 && memcmp(el, "<stream:error", 13) == 0 && !b->stream_error)
        b->stream_error = error_condition(el, len);
    buf_append(&b->out, el, len);
}

bool bosh_next_answer(bosh *b, uint64_t *req_id, int *status, buf *body)
{
    flush(b);
    if (!b->nready)
        return false;
    ready_answer *a = &b->ready[0];
    *req_id = a->req_id;
    *status = a->status;
    buf_free(body);
    *body = a->body;
    memmove(b->ready, b->ready + 1, (b->nready - 1) * sizeof *b->ready);
    b->nready--;
    return true;
}

uint64_t bosh_tick(bosh *b, uint64_t now_ms)
{
    b->now = now_ms;
    if (bosh_finished(b))
        return UINT64_MAX;
    uint64_t gap_ms = (uint64_t)(b->wait ? b->wait : 1) * 1000;
    for (int i = 0; i < SLOTS; i++) {
        slot *s = &b->slots[i];
        if (s->state == SLOT_PENDING && now_ms - s->since >= gap_ms)
            terminate(b, "item-not-found");     /* the gap never filled */
    }
    slot *s;
    while ((s = oldest(b, SLOT_HELD)) && s->deadline <= now_ms)
        answer_slot(b, s, 0);      /* in rid order: held in that order, with one wait */
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < SLOTS; i++) {
        s = &b->slots[i];
        uint64_t t = s->state == SLOT_HELD ? s->deadline
                   : s->state == SLOT_PENDING ? s->since + gap_ms : UINT64_MAX;
        if (t < next)
            next = t;
    }
    if (!any_slot(b)) {
        uint64_t end = b->last_answer + b->inactivity_ms;
        if (now_ms >= end) {
            b->ended = true;            /* §10: silently */
            b->finished = true;
            return UINT64_MAX;
        }
        next = end;
    }
    return next;
}

bool bosh_ended(const bosh *b)
{
    return b->ended;
}

bool bosh_finished(const bosh *b)
{
    return b->finished || (b->ended && b->term_delivered && !any_slot(b));
}

void bosh_request_gone(bosh *b, uint64_t req_id)
{
    for (int i = 0; i < SLOTS; i++)
        if (b->slots[i].state != SLOT_FREE && b->slots[i].conn && b->slots[i].req_id == req_id)
            b->slots[i].conn = false;
    size_t j = 0;
    for (size_t i = 0; i < b->nready; i++) {
        if (b->ready[i].req_id == req_id)
            buf_free(&b->ready[i].body);
        else
            b->ready[j++] = b->ready[i];
    }
    b->nready = j;
}

const char *bosh_sid(const bosh *b) { return b->sid; }
