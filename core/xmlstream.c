/* core/xmlstream.c — the XMPP stream parser on expat: limits, restricted XML, restarts, shrinking.
 *
 * Offsets: every position here is a byte offset in the current stream (since its first byte, or
 * since the last reset). expat counts from the start of whatever it was fed; while a stream runs
 * on a rebuilt parser (see xmlstream_shrink) expat has also seen the replayed stream header, so
 * positions are expat's index plus index_bias.
 *
 * expat keeps delivering some callbacks after XML_StopParser (the end of an empty element, for
 * one), so every handler first checks that the stream is still running.
 *
 * Renewal: expat keeps every distinct element name, attribute name and prefix it meets for the
 * parser's whole life, and a client connection lives for days. All of them are written in start
 * tags, so the start-tag bytes a parser has read bound what it has kept. (The "uri\x1flocal"
 * names expat reports would not: it keeps names as written, and a long prefix bound to a short
 * URI is short in those. Text, which it keeps nothing of, is not counted: a renewal costs a
 * few microseconds, up to 30 when expat's buffer had grown to a mapping of its own.) Past
 * limits.renew_tag_bytes, the end of the next stanza stops expat (from on_end, like a restart),
 * and feed frees it and goes on with a new one built from the replayed stream header, as after
 * xmlstream_shrink. Stopping at the stanza's end, not waiting for a feed that ends between
 * stanzas, means a peer cannot avoid renewal by always sending part of the next stanza.
 */
#include "core/xmlstream.h"

#include <dlfcn.h>
#include <expat.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "core/random.h"
#include "core/xml_write.h"
#include "core/xmlmem.h"

/* expat is fed at most this much at a time, so that the size checks made between calls bound
 * what expat buffers for a token that never ends. */
#define FEED_SLICE (64 * 1024)
#define STANZA_ARENA_FIRST 1024
#define HEADER_ARENA_FIRST 512
/* The builder keeps its text buffer between stanzas unless a large text made it grow past this. */
#define BUILDER_KEEP_BYTES 4096

typedef enum {
    ST_HEADER,  /* waiting for the stream header */
    ST_OPEN,    /* inside the stream */
    ST_STOPPED, /* a handler asked to stop; only a reset goes on */
    ST_CLOSED,  /* the peer closed the stream */
    ST_FAILED,  /* stream error */
    ST_RENEWING, /* expat was stopped after a stanza to be replaced: only inside feed */
} stream_state;

struct xmlstream {
    xmlstream_handlers handlers;
    void *ctx;
    xmlstream_limits limits;

    XML_Parser expat;      /* NULL until the first feed, after a reset and while shrunk */
    xmlmem_region mem;     /* expat's memory: released whole with the parser */
    stream_state state;
    bool stop_requested;   /* a handler called xmlstream_stop */
    bool replaying;        /* a rebuilt parser is being fed the replayed header */
    unsigned depth;        /* open elements, the stream element included */
    bool holding_first;    /* the stream's first byte came alone: it waits for the second */
    unsigned char first_byte;

    uint64_t fed;          /* bytes of this stream given to expat */
    uint64_t stanza_start; /* offset of the open stanza's '<' */
    uint64_t idle_mark;    /* end of the last thing seen at stream level */
    uint64_t stop_at;      /* where a stop, close or renewal happened */
    uint64_t tag_bytes;    /* start-tag bytes the current expat parser has read */
    uint64_t reported;     /* input bytes of the header or stanza being reported */
    int64_t index_bias;    /* offset = expat's byte index + index_bias */
    unsigned long line_bias, shrunk_line;

    xml_builder builder;   /* the stanza being built; its arena is NULL between stanzas */
    char *content_ns;      /* default namespace declared on the stream element */
    buf replay;            /* while the header arrives: its namespace declarations; then
                              "<qname declarations>", which a rebuilt parser is fed */
    xmlstream_error error;
};

static const char *const condition_names[] = {
    [XMLSTREAM_ERR_BAD_FORMAT] = "bad-format",
    [XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX] = "bad-namespace-prefix",
    [XMLSTREAM_ERR_CONFLICT] = "conflict",
    [XMLSTREAM_ERR_CONNECTION_TIMEOUT] = "connection-timeout",
    [XMLSTREAM_ERR_HOST_GONE] = "host-gone",
    [XMLSTREAM_ERR_HOST_UNKNOWN] = "host-unknown",
    [XMLSTREAM_ERR_IMPROPER_ADDRESSING] = "improper-addressing",
    [XMLSTREAM_ERR_INTERNAL_SERVER_ERROR] = "internal-server-error",
    [XMLSTREAM_ERR_INVALID_FROM] = "invalid-from",
    [XMLSTREAM_ERR_INVALID_NAMESPACE] = "invalid-namespace",
    [XMLSTREAM_ERR_INVALID_XML] = "invalid-xml",
    [XMLSTREAM_ERR_NOT_AUTHORIZED] = "not-authorized",
    [XMLSTREAM_ERR_NOT_WELL_FORMED] = "not-well-formed",
    [XMLSTREAM_ERR_POLICY_VIOLATION] = "policy-violation",
    [XMLSTREAM_ERR_REMOTE_CONNECTION_FAILED] = "remote-connection-failed",
    [XMLSTREAM_ERR_RESET] = "reset",
    [XMLSTREAM_ERR_RESOURCE_CONSTRAINT] = "resource-constraint",
    [XMLSTREAM_ERR_RESTRICTED_XML] = "restricted-xml",
    [XMLSTREAM_ERR_SEE_OTHER_HOST] = "see-other-host",
    [XMLSTREAM_ERR_SYSTEM_SHUTDOWN] = "system-shutdown",
    [XMLSTREAM_ERR_UNDEFINED_CONDITION] = "undefined-condition",
    [XMLSTREAM_ERR_UNSUPPORTED_ENCODING] = "unsupported-encoding",
    [XMLSTREAM_ERR_UNSUPPORTED_FEATURE] = "unsupported-feature",
    [XMLSTREAM_ERR_UNSUPPORTED_STANZA_TYPE] = "unsupported-stanza-type",
    [XMLSTREAM_ERR_UNSUPPORTED_VERSION] = "unsupported-version",
};

const char *xmlstream_condition_name(xmlstream_condition condition)
{
    if ((size_t)condition >= sizeof(condition_names) / sizeof(condition_names[0]))
        return NULL;
    return condition_names[condition];
}

void xmlstream_limits_default(xmlstream_limits *limits)
{
    limits->max_stanza_bytes = 65536;
    limits->max_depth = 32;
    limits->max_attrs = 64;
    limits->max_attr_bytes = limits->max_stanza_bytes;
    limits->max_text_bytes = limits->max_stanza_bytes;
    limits->max_header_bytes = 4096;
    limits->renew_tag_bytes = 256 * 1024;
}

/* expat 2.6 holds back a token that arrives in small pieces until enough bytes pile up ("reparse
 * deferral"), which would delay a stanza's delivery. Debian backports the switch into older
 * versions, so look for the function rather than at the version number. */
typedef XML_Bool (*set_deferral_fn)(XML_Parser, XML_Bool);
static set_deferral_fn set_deferral;
static pthread_once_t set_deferral_once = PTHREAD_ONCE_INIT;

static void find_set_deferral(void)
{
    set_deferral = (set_deferral_fn)dlsym(RTLD_DEFAULT, "XML_SetReparseDeferralEnabled");
}

/* ---- positions and outcomes -------------------------------------------------------------- */

static bool halted(const xmlstream *p)
{
    return p->state >= ST_STOPPED;
}

static uint64_t event_start(const xmlstream *p)
{
    return (uint64_t)(XML_GetCurrentByteIndex(p->expat) + p->index_bias);
}

static uint64_t event_end(const xmlstream *p)
{
    return event_start(p) + (uint64_t)XML_GetCurrentByteCount(p->expat);
}

static uint32_t current_line(const xmlstream *p)
{
    return (uint32_t)(XML_GetCurrentLineNumber(p->expat) + p->line_bias);
}

__attribute__((format(printf, 4, 0)))
static void set_error(xmlstream *p, xmlstream_condition condition, uint32_t line, const char *fmt, va_list ap)
{
    p->error.condition = condition;
    p->error.line = line;
    vsnprintf(p->error.text, sizeof(p->error.text), fmt, ap);
    p->state = ST_FAILED;
}

/* A stream error found by a handler: record it and make expat return. */
__attribute__((format(printf, 3, 4)))
static void fail(xmlstream *p, xmlstream_condition condition, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(p, condition, current_line(p), fmt, ap);
    va_end(ap);
    XML_StopParser(p->expat, XML_FALSE);
}

/* A stream error found outside expat's callbacks. */
__attribute__((format(printf, 3, 4)))
static void fail_outside(xmlstream *p, xmlstream_condition condition, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(p, condition, p->expat ? current_line(p) : 0, fmt, ap);
    va_end(ap);
}

/* Ends parsing right after the current event, in state (stopped or closed). */
static void halt_after_event(xmlstream *p, stream_state state)
{
    p->stop_at = event_end(p);
    p->state = state;
    p->stop_requested = false;
    XML_StopParser(p->expat, XML_FALSE);
}

/* The open stanza may not have grown past the limit. */
static bool stanza_fits(xmlstream *p)
{
    if (event_end(p) - p->stanza_start <= p->limits.max_stanza_bytes)
        return true;
    fail(p, XMLSTREAM_ERR_POLICY_VIOLATION, "stanza larger than %zu bytes", p->limits.max_stanza_bytes);
    return false;
}

static bool attrs_fit(xmlstream *p, const XML_Char **atts)
{
    unsigned count = 0;
    for (; atts[0]; atts += 2) {
        if (++count > p->limits.max_attrs) {
            fail(p, XMLSTREAM_ERR_POLICY_VIOLATION, "more than %u attributes on an element", p->limits.max_attrs);
            return false;
        }
        if (strlen(atts[1]) > p->limits.max_attr_bytes) {
            fail(p, XMLSTREAM_ERR_POLICY_VIOLATION, "attribute value longer than %zu bytes",
                 p->limits.max_attr_bytes);
            return false;
        }
    }
    return true;
}

static void drop_stanza(xmlstream *p)
{
    xml_arena_free(p->builder.arena);
    xml_builder_reset(&p->builder, NULL);
}

/* ---- expat callbacks ---------------------------------------------------------------------- */

static void on_xml_decl(void *data, const XML_Char *version, const XML_Char *encoding, int standalone)
{
    xmlstream *p = data;
    if (!halted(p) && encoding && strcasecmp(encoding, "UTF-8") != 0)
        fail(p, XMLSTREAM_ERR_UNSUPPORTED_ENCODING, "encoding %.40s: XMPP is UTF-8 only", encoding);
}

/* Declarations on the stream element are remembered: the content namespace for the header
 * handler, and all of them for the replay after a shrink. */
static void on_ns_decl(void *data, const XML_Char *prefix, const XML_Char *uri)
{
    xmlstream *p = data;
    if (halted(p) || p->state != ST_HEADER)
        return;
    if (!uri)
        uri = "";
    if (!prefix) {
        free(p->content_ns);
        p->content_ns = mem_strdup(uri);
    }
    buf_append(&p->replay, prefix ? " xmlns:" : " xmlns", prefix ? 7 : 6);
    if (prefix)
        buf_append(&p->replay, prefix, strlen(prefix));
    buf_append(&p->replay, "='", 2);
    xml_write_attr_value(&p->replay, uri, strlen(uri));
    buf_append(&p->replay, "'", 1);
}

/* Turns the recorded declarations into "<qname declarations>", the qname being read back from
 * the raw start tag (expat reports names without their prefix, and the peer's closing tag must
 * match the prefix it used). Without input context (expat built with XML_CONTEXT_BYTES 0) the
 * stream simply cannot be shrunk. */
static void make_replay(xmlstream *p)
{
    int offset = 0, size = 0;
    const char *input = XML_GetInputContext(p->expat, &offset, &size);
    int count = XML_GetCurrentByteCount(p->expat);
    buf replay = BUF_INIT;
    if (input && offset >= 0 && count > 1 && offset + count <= size) {
        const char *name = input + offset + 1, *end = input + offset + count, *q = name;
        while (q < end && !strchr(" \t\r\n/>", *q))
            q++;
        buf_append(&replay, "<", 1);
        buf_append(&replay, name, (size_t)(q - name));
        buf_append(&replay, buf_data(&p->replay), buf_len(&p->replay));
        buf_append(&replay, ">", 1);
    }
    buf_free(&p->replay);
    p->replay = replay;
}

static void on_header(xmlstream *p, const XML_Char *name, const XML_Char **atts)
{
    if (event_end(p) > p->limits.max_header_bytes) {
        fail(p, XMLSTREAM_ERR_POLICY_VIOLATION, "stream header longer than %zu bytes",
             p->limits.max_header_bytes);
        return;
    }
    const char *sep = strchr(name, XML_NS_SEP);
    if (!sep || (size_t)(sep - name) != strlen(XML_NS_STREAMS) ||
        memcmp(name, XML_NS_STREAMS, strlen(XML_NS_STREAMS)) != 0) {
        fail(p, XMLSTREAM_ERR_INVALID_NAMESPACE, "the stream element is not in the stream namespace");
        return;
    }
    if (strcmp(sep + 1, "stream") != 0) {
        fail(p, XMLSTREAM_ERR_BAD_FORMAT, "the stream element is not <stream>");
        return;
    }
    if (!attrs_fit(p, atts))
        return;
    make_replay(p);
    p->state = ST_OPEN;
    p->depth = 1;
    p->idle_mark = p->reported = event_end(p);

    xml_arena *arena = xml_arena_new(HEADER_ARENA_FIRST);
    xml_builder_reset(&p->builder, arena);
    xml_node *root = xml_builder_start(&p->builder, name, atts, current_line(p));
    xml_builder_reset(&p->builder, NULL);
    if (p->handlers.header)
        p->handlers.header(p->ctx, root, p->content_ns ? p->content_ns : "");
    xml_arena_free(arena);
    if (p->stop_requested)
        halt_after_event(p, ST_STOPPED);
}

static void on_start(void *data, const XML_Char *name, const XML_Char **atts)
{
    xmlstream *p = data;
    if (halted(p) || p->replaying)
        return;
    p->tag_bytes += (uint64_t)XML_GetCurrentByteCount(p->expat);
    if (p->state == ST_HEADER) {
        on_header(p, name, atts);
        return;
    }
    unsigned level = p->depth; /* the stanza's own element is level 1 */
    if (level > p->limits.max_depth) {
        fail(p, XMLSTREAM_ERR_POLICY_VIOLATION, "elements nested deeper than %u", p->limits.max_depth);
        return;
    }
    if (!attrs_fit(p, atts))
        return;
    if (level == 1) {
        p->stanza_start = event_start(p);
        xml_builder_reset(&p->builder, xml_arena_new(STANZA_ARENA_FIRST));
    }
    if (!stanza_fits(p))
        return;
    xml_builder_start(&p->builder, name, atts, current_line(p));
    p->depth++;
}

static void on_end(void *data, const XML_Char *name)
{
    xmlstream *p = data;
    if (halted(p))
        return;
    if (p->depth == 1) {
        p->depth = 0;
        if (p->handlers.close)
            p->handlers.close(p->ctx);
        halt_after_event(p, ST_CLOSED);
        return;
    }
    if (!stanza_fits(p))
        return;
    xml_node *closed = xml_builder_end(&p->builder);
    if (--p->depth > 1)
        return;
    xml_arena *arena = p->builder.arena;
    xml_builder_reset(&p->builder, NULL);
    if (p->builder.pending_cap > BUILDER_KEEP_BYTES)
        xml_builder_free(&p->builder);
    p->idle_mark = event_end(p);
    p->reported = p->idle_mark - p->stanza_start;
    if (p->handlers.stanza)
        p->handlers.stanza(p->ctx, closed, arena);
    else
        xml_arena_free(arena);
    if (p->stop_requested) {
        halt_after_event(p, ST_STOPPED);
    } else if (p->tag_bytes > p->limits.renew_tag_bytes && buf_len(&p->replay)) {
        p->stop_at = p->idle_mark;
        p->state = ST_RENEWING;
        XML_StopParser(p->expat, XML_FALSE);
    }
}

static void on_text(void *data, const XML_Char *s, int len)
{
    xmlstream *p = data;
    if (halted(p))
        return;
    if (p->depth <= 1) {
        for (int i = 0; i < len; i++)
            if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
                fail(p, XMLSTREAM_ERR_NOT_WELL_FORMED, "text between stanzas");
                return;
            }
        p->idle_mark = event_end(p);
        return;
    }
    if (!stanza_fits(p))
        return;
    if (p->builder.pending_len + (size_t)len > p->limits.max_text_bytes) {
        fail(p, XMLSTREAM_ERR_POLICY_VIOLATION, "text longer than %zu bytes", p->limits.max_text_bytes);
        return;
    }
    xml_builder_text(&p->builder, s, (size_t)len, current_line(p));
}

static void on_comment(void *data, const XML_Char *text)
{
    xmlstream *p = data;
    if (!halted(p))
        fail(p, XMLSTREAM_ERR_RESTRICTED_XML, "comment");
}

static void on_pi(void *data, const XML_Char *target, const XML_Char *text)
{
    xmlstream *p = data;
    if (!halted(p))
        fail(p, XMLSTREAM_ERR_RESTRICTED_XML, "processing instruction");
}

static void on_doctype(void *data, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal_subset)
{
    xmlstream *p = data;
    if (!halted(p))
        fail(p, XMLSTREAM_ERR_RESTRICTED_XML, "DOCTYPE");
}

/* Unreachable while on_doctype refuses the DOCTYPE that would have to hold it; kept so that no
 * entity is ever defined should that order change in expat. */
static void on_entity_decl(void *data, const XML_Char *name, int is_param, const XML_Char *value,
                           int value_len, const XML_Char *base, const XML_Char *sysid,
                           const XML_Char *pubid, const XML_Char *notation)
{
    xmlstream *p = data;
    if (!halted(p))
        fail(p, XMLSTREAM_ERR_RESTRICTED_XML, "entity declaration");
}

/* ---- the expat parser ---------------------------------------------------------------------- */

static XML_Parser parser_create(xmlstream *p)
{
    /* The encoding argument overrides any encoding declaration; on_xml_decl refuses those that
     * say anything but UTF-8, and foreign_encoding what expat would still take for UTF-16. */
    static const XML_Char separator[] = {XML_NS_SEP, 0};
    xmlmem_region *outer = xmlmem_enter(&p->mem);
    XML_Parser x = XML_ParserCreate_MM("UTF-8", &xmlmem_suite, separator);
    xmlmem_leave(outer);
    if (!x) {
        fprintf(stderr, "jabshard: out of memory creating an XML parser\n");
        abort();
    }
    XML_SetUserData(x, p);
    XML_SetXmlDeclHandler(x, on_xml_decl);
    XML_SetStartNamespaceDeclHandler(x, on_ns_decl);
    XML_SetElementHandler(x, on_start, on_end);
    XML_SetCharacterDataHandler(x, on_text);
    XML_SetCommentHandler(x, on_comment);
    XML_SetProcessingInstructionHandler(x, on_pi);
    XML_SetStartDoctypeDeclHandler(x, on_doctype);
    XML_SetEntityDeclHandler(x, on_entity_decl);
    p->tag_bytes = 0;
    unsigned long salt;
    random_bytes(&salt, sizeof(salt));
    XML_SetHashSalt(x, salt);
    pthread_once(&set_deferral_once, find_set_deferral);
    if (set_deferral)
        set_deferral(x, XML_FALSE);
    return x;
}

/* A new expat parser; in the middle of a stream (after a shrink) it is first fed the stream
 * element again, so that it knows the namespaces and the name the closing tag must match. */
static bool parser_rebuild(xmlstream *p)
{
    p->expat = parser_create(p);
    if (p->state != ST_OPEN)
        return true;
    p->replaying = true;
    xmlmem_region *outer = xmlmem_enter(&p->mem);
    enum XML_Status r = XML_Parse(p->expat, buf_data(&p->replay), (int)buf_len(&p->replay), XML_FALSE);
    xmlmem_leave(outer);
    p->replaying = false;
    if (r != XML_STATUS_OK) {
        fail_outside(p, XMLSTREAM_ERR_INTERNAL_SERVER_ERROR, "cannot resume the stream");
        return false;
    }
    p->index_bias = (int64_t)p->fed - (int64_t)buf_len(&p->replay);
    p->line_bias = p->shrunk_line - 1;
    p->tag_bytes = buf_len(&p->replay);
    return true;
}

static void parser_free(xmlstream *p)
{
    if (p->expat) {
        XML_ParserFree(p->expat);
        xmlmem_release(&p->mem);
    }
    p->expat = NULL;
}

/* An error expat found by itself. */
static void fail_expat(xmlstream *p)
{
    enum XML_Error code = XML_GetErrorCode(p->expat);
    xmlstream_condition condition;
    switch (code) {
    case XML_ERROR_UNBOUND_PREFIX:
        condition = XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX;
        break;
    case XML_ERROR_UNDEFINED_ENTITY: /* RFC 6120 §11.1: only the predefined entities */
        condition = XMLSTREAM_ERR_RESTRICTED_XML;
        break;
    case XML_ERROR_NO_MEMORY:
        condition = XMLSTREAM_ERR_RESOURCE_CONSTRAINT;
        break;
    default:
        condition = XMLSTREAM_ERR_NOT_WELL_FORMED;
        break;
    }
    fail_outside(p, condition, "%s", XML_ErrorString(code));
    p->error.line = (uint32_t)(XML_GetErrorLineNumber(p->expat) + p->line_bias);
}

/* ---- public ------------------------------------------------------------------------------- */

xmlstream *xmlstream_new(const xmlstream_handlers *handlers, void *ctx, const xmlstream_limits *limits)
{
    xmlstream *p = mem_zalloc(sizeof(*p));
    p->handlers = *handlers;
    p->ctx = ctx;
    if (limits)
        p->limits = *limits;
    else
        xmlstream_limits_default(&p->limits);
    xml_builder_init(&p->builder, NULL);
    return p;
}

void xmlstream_reset(xmlstream *p)
{
    parser_free(p);
    drop_stanza(p);
    free(p->content_ns);
    p->content_ns = NULL;
    buf_free(&p->replay);
    p->state = ST_HEADER;
    p->stop_requested = false;
    p->holding_first = false;
    p->depth = 0;
    p->fed = p->stanza_start = p->idle_mark = p->stop_at = 0;
    p->index_bias = 0;
    p->line_bias = p->shrunk_line = 0;
    memset(&p->error, 0, sizeof(p->error));
}

void xmlstream_free(xmlstream *p)
{
    if (!p)
        return;
    xmlstream_reset(p);
    xml_builder_free(&p->builder);
    free(p);
}

void xmlstream_stop(xmlstream *p)
{
    p->stop_requested = true;
}

const xmlstream_error *xmlstream_get_error(const xmlstream *p)
{
    return &p->error;
}

size_t xmlstream_reported_bytes(const xmlstream *p)
{
    return (size_t)p->reported;
}

bool xmlstream_idle(const xmlstream *p)
{
    return p->state == ST_OPEN && p->depth == 1 && p->idle_mark == p->fed;
}

bool xmlstream_shrink(xmlstream *p)
{
    if (!p->expat)
        return false;
    if (!halted(p) && !(xmlstream_idle(p) && buf_len(&p->replay)))
        return false;
    if (!halted(p))
        p->shrunk_line = current_line(p);
    parser_free(p);
    xml_builder_free(&p->builder);
    return true;
}

/* RFC 6120 §11.6: UTF-8 only. A stream that starts with a UTF-16 byte order mark or has a NUL in
 * its first two bytes (UTF-16 or UTF-32) gets <unsupported-encoding/>. expat, even when told
 * UTF-8, switches to UTF-16 on those same signs if it gets both bytes in one call, but decides on
 * one byte if that is all it has: so it is always handed the first two bytes together, after
 * this check. */
static bool foreign_encoding(unsigned char first, unsigned char second)
{
    return first == 0xfe || first == 0xff || first == 0x00 || second == 0x00;
}

static xmlstream_status feed(xmlstream *p, const char *data, size_t len, size_t *consumed)
{
    switch (p->state) {
    case ST_STOPPED:
        return XMLSTREAM_STOPPED;
    case ST_FAILED:
        return XMLSTREAM_FAILED;
    case ST_CLOSED:
        if (!len)
            return XMLSTREAM_CLOSED;
        fail_outside(p, XMLSTREAM_ERR_NOT_WELL_FORMED, "input after the stream was closed");
        return XMLSTREAM_FAILED;
    default:
        break;
    }
    if (!len)
        return XMLSTREAM_OK;
    if (p->fed == 0) {
        if (p->holding_first) {
            char *joined = mem_alloc(len + 1);
            joined[0] = (char)p->first_byte;
            memcpy(joined + 1, data, len);
            p->holding_first = false;
            xmlstream_status status = feed(p, joined, len + 1, consumed);
            free(joined);
            if (*consumed) /* nothing can end within the first two bytes: *consumed >= 2 */
                --*consumed;
            return status;
        }
        if (len == 1) {
            p->first_byte = (unsigned char)data[0];
            p->holding_first = true;
            *consumed = 1;
            return XMLSTREAM_OK;
        }
        if (foreign_encoding((unsigned char)data[0], (unsigned char)data[1])) {
            fail_outside(p, XMLSTREAM_ERR_UNSUPPORTED_ENCODING, "not UTF-8");
            return XMLSTREAM_FAILED;
        }
    }
    if (!p->expat && !parser_rebuild(p))
        return XMLSTREAM_FAILED;

    uint64_t start = p->fed;
    while (*consumed < len) {
        size_t n = len - *consumed < FEED_SLICE ? len - *consumed : FEED_SLICE;
        p->fed += n;
        xmlmem_region *outer = xmlmem_enter(&p->mem);
        enum XML_Status r = XML_Parse(p->expat, data + *consumed, (int)n, XML_FALSE);
        xmlmem_leave(outer);
        if (p->state == ST_RENEWING) {
            /* expat stopped at the end of a stanza: the slice is used up to there, and the rest
             * goes to a new parser (made now if there is a rest, by the next feed otherwise). */
            *consumed += (size_t)(p->stop_at - (p->fed - n));
            p->fed = p->stop_at;
            p->shrunk_line = current_line(p);
            p->state = ST_OPEN;
            parser_free(p);
            if (*consumed < len && !parser_rebuild(p))
                return XMLSTREAM_FAILED;
            continue;
        }
        if (p->state == ST_STOPPED || p->state == ST_CLOSED) {
            *consumed = (size_t)(p->stop_at - start);
            return p->state == ST_STOPPED ? XMLSTREAM_STOPPED : XMLSTREAM_CLOSED;
        }
        if (p->state == ST_FAILED)
            return XMLSTREAM_FAILED;
        if (r != XML_STATUS_OK) {
            fail_expat(p);
            return XMLSTREAM_FAILED;
        }
        *consumed += n;
        /* What expat holds without having reported it yet: a partial header, stanza or tag. */
        if (p->state == ST_HEADER) {
            if (p->fed > p->limits.max_header_bytes) {
                fail_outside(p, XMLSTREAM_ERR_POLICY_VIOLATION, "no stream header in the first %zu bytes",
                             p->limits.max_header_bytes);
                return XMLSTREAM_FAILED;
            }
        } else if (p->fed - (p->depth > 1 ? p->stanza_start : p->idle_mark) > p->limits.max_stanza_bytes) {
            fail_outside(p, XMLSTREAM_ERR_POLICY_VIOLATION, "stanza larger than %zu bytes",
                         p->limits.max_stanza_bytes);
            return XMLSTREAM_FAILED;
        }
    }
    return XMLSTREAM_OK;
}

xmlstream_status xmlstream_feed(xmlstream *p, const void *data, size_t len, size_t *consumed)
{
    size_t used = 0;
    xmlstream_status status = feed(p, data, len, &used);
    if (status == XMLSTREAM_FAILED) {
        drop_stanza(p);
        used = len;
    }
    if (consumed)
        *consumed = used;
    return status;
}
