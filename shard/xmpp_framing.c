/* shard/xmpp_framing.c — a stream as separate elements, both ways (xmpp_framing.h). */
#include "shard/xmpp_framing.h"

#include <expat.h>
#include <string.h>

#include "core/xml.h"
#include "core/xml_write.h"

#define NS_STREAMS "http://etherx.jabber.org/streams"
#define NS_XML "http://www.w3.org/XML/1998/namespace"

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static bool name_end_char(char c) { return is_space(c) || c == '/' || c == '>'; }

/* ---- out: our own serialization, cut into items ---- */

/* Past the '>' of the tag at p[0] == '<' (quoted values may hold '>'), or 0 when cut short. */
static size_t tag_end(const char *p, size_t len)
{
    char quote = 0;
    for (size_t i = 1; i < len; i++) {
        char c = p[i];
        if (quote) {
            if (c == quote)
                quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '>') {
            return i + 1;
        }
    }
    return 0;
}

/* Past the end of the element whose start tag is at p, or 0 when cut short. */
static size_t element_end(const char *p, size_t len)
{
    size_t i = tag_end(p, len);
    if (!i)
        return 0;
    if (p[i - 2] == '/')
        return i;
    unsigned depth = 1;
    while (i < len) {
        const char *lt = memchr(p + i, '<', len - i);
        if (!lt)
            return 0;
        i = (size_t)(lt - p);
        size_t e = tag_end(p + i, len - i);
        if (!e)
            return 0;
        if (p[i + 1] == '/')
            depth--;
        else if (p[i + e - 2] != '/')
            depth++;
        i += e;
        if (!depth)
            return i;
    }
    return 0;
}

static size_t name_len(const char *p, size_t len)
{
    size_t n = 1;
    while (n < len && !name_end_char(p[n]))
        n++;
    return n - 1;
}

/* The attributes of a start tag in turn: returns false after the last. */
typedef struct attr_cursor {
    const char *p, *end;
} attr_cursor;

static bool next_attr(attr_cursor *c, const char **name, size_t *nlen, const char **whole,
                      size_t *wlen)
{
    while (c->p < c->end && is_space(*c->p))
        c->p++;
    const char *start = c->p;
    const char *eq = memchr(c->p, '=', (size_t)(c->end - c->p));
    if (!eq || eq + 1 >= c->end || (eq[1] != '\'' && eq[1] != '"'))
        return false;
    const char *close = memchr(eq + 2, eq[1], (size_t)(c->end - eq - 2));
    if (!close)
        return false;
    *name = start;
    *nlen = (size_t)(eq - start);
    *whole = start;
    *wlen = (size_t)(close + 1 - start);
    c->p = close + 1;
    return true;
}

static bool attr_is(const char *name, size_t nlen, const char *want)
{
    return nlen == strlen(want) && memcmp(name, want, nlen) == 0;
}

size_t framing_xmlns_at(const char *el, size_t len)
{
    if (len < 2 || el[0] != '<' || el[1] == '/' || el[1] == '?')
        return 0;
    size_t n = name_len(el, len), t = tag_end(el, len);
    if (!t || !n)
        return 0;
    attr_cursor c = {el + 1 + n, el + t - 1};
    const char *name, *whole;
    size_t nlen, wlen;
    while (next_attr(&c, &name, &nlen, &whole, &wlen))
        if (attr_is(name, nlen, "xmlns"))
            return 0;
    return 1 + n;
}

/* <stream:stream ...> as <open xmlns='…' .../>: its attributes without the namespace ones. */
static void emit_open(const char *tag, size_t tlen, framing_emit emit, void *ctx)
{
    buf b = BUF_INIT;
    buf_appendf(&b, "<open xmlns='%s'", XMPP_FRAMING_NS);
    size_t n = name_len(tag, tlen);
    attr_cursor c = {tag + 1 + n, tag + tlen - 1};
    const char *name, *whole;
    size_t nlen, wlen;
    while (next_attr(&c, &name, &nlen, &whole, &wlen)) {
        if (attr_is(name, nlen, "xmlns") || (nlen > 6 && memcmp(name, "xmlns:", 6) == 0))
            continue;
        buf_append(&b, " ", 1);
        buf_append(&b, whole, wlen);
    }
    buf_append(&b, "/>", 2);
    emit(ctx, FRAMING_OUT_OPEN, buf_data(&b), buf_len(&b));
    buf_free(&b);
}

static void emit_element(const char *el, size_t len, framing_emit emit, void *ctx)
{
    size_t n = name_len(el, len);
    const char *insert = NULL;
    size_t at = 0;
    if (n > 7 && memcmp(el + 1, "stream:", 7) == 0) {
        insert = " xmlns:stream='" NS_STREAMS "'";
        at = 1 + n;
    } else if ((at = framing_xmlns_at(el, len)) != 0) {
        insert = FRAMING_CLIENT_XMLNS;
    }
    if (!insert) {
        emit(ctx, FRAMING_OUT_ELEMENT, el, len);
        return;
    }
    buf b = BUF_INIT;
    buf_append(&b, el, at);
    buf_append(&b, insert, strlen(insert));
    buf_append(&b, el + at, len - at);
    emit(ctx, FRAMING_OUT_ELEMENT, buf_data(&b), buf_len(&b));
    buf_free(&b);
}

size_t framing_out(const char *data, size_t len, framing_emit emit, void *ctx)
{
    static const char close_tag[] = "</stream:stream>";
    static const char close_msg[] = "<close xmlns='" XMPP_FRAMING_NS "'/>";
    size_t i = 0;
    while (i < len) {
        const char *p = data + i;
        size_t rest = len - i;
        if (is_space(*p)) {
            i++;
            continue;
        }
        if (*p != '<' || rest < 2)
            return i;
        size_t used;
        if (p[1] == '?') {
            const char *q = memmem(p, rest, "?>", 2);
            if (!q)
                return i;
            used = (size_t)(q + 2 - p);
        } else if (p[1] == '/') {
            used = tag_end(p, rest);
            if (!used)
                return i;
            if (used == sizeof close_tag - 1 && memcmp(p, close_tag, used) == 0)
                emit(ctx, FRAMING_OUT_CLOSE, close_msg, sizeof close_msg - 1);
        } else if (rest > 14 && memcmp(p, "<stream:stream", 14) == 0 && name_end_char(p[14])) {
            used = tag_end(p, rest);
            if (!used)
                return i;
            emit_open(p, used, emit, ctx);
        } else {
            used = element_end(p, rest);
            if (!used)
                return i;
            emit_element(p, used, emit, ctx);
        }
        i += used;
    }
    return i;
}

/* ---- in: the client's messages ---- */

typedef struct open_parse {
    bool seen, framing_ns;
    const char *to, *from, *version, *lang;
    char *copies[4];
} open_parse;

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    open_parse *o = ud;
    if (o->seen)
        return;
    o->seen = true;
    const char *sep = strchr(name, XML_NS_SEP);
    o->framing_ns = sep && (size_t)(sep - name) == strlen(XMPP_FRAMING_NS) &&
                    memcmp(name, XMPP_FRAMING_NS, (size_t)(sep - name)) == 0;
    for (size_t i = 0; atts[i] && atts[i + 1]; i += 2) {
        const char *a = atts[i], *v = atts[i + 1];
        int slot = strcmp(a, "to") == 0 ? 0 : strcmp(a, "from") == 0 ? 1
                 : strcmp(a, "version") == 0 ? 2
                 : strncmp(a, NS_XML, sizeof NS_XML - 1) == 0 && a[sizeof NS_XML - 1] == XML_NS_SEP &&
                           strcmp(a + sizeof NS_XML, "lang") == 0 ? 3 : -1;
        if (slot < 0 || o->copies[slot])
            continue;
        o->copies[slot] = strdup(v);
    }
    o->to = o->copies[0];
    o->from = o->copies[1];
    o->version = o->copies[2];
    o->lang = o->copies[3];
}

/* Whether msg starts (after whitespace) with the start tag of name. */
static bool starts_with_tag(const char *msg, size_t len, const char *name)
{
    size_t i = 0, n = strlen(name);
    while (i < len && is_space(msg[i]))
        i++;
    return len - i > n + 1 && msg[i] == '<' && memcmp(msg + i + 1, name, n) == 0 &&
           name_end_char(msg[i + 1 + n]);
}

framing_in_result framing_in(const char *msg, size_t len, buf *stream)
{
    bool open = starts_with_tag(msg, len, "open");
    if (!open && !starts_with_tag(msg, len, "close")) {
        buf_append(stream, msg, len);
        return FRAMING_IN_ELEMENT;
    }
    /* No DTD in a client's stream (RFC 6120 §11.1), and so none here either. */
    if (memmem(msg, len, "<!", 2))
        return FRAMING_IN_NOT_WELL_FORMED;
    open_parse o = {0};
    XML_Parser p = XML_ParserCreateNS(NULL, XML_NS_SEP);
    if (!p)
        return FRAMING_IN_NOT_WELL_FORMED;
    XML_SetUserData(p, &o);
    XML_SetStartElementHandler(p, on_start);
    bool ok = XML_Parse(p, msg, (int)len, 1) == XML_STATUS_OK && o.seen;
    XML_ParserFree(p);
    framing_in_result r;
    if (!ok) {
        r = FRAMING_IN_NOT_WELL_FORMED;
    } else if (!o.framing_ns) {
        r = FRAMING_IN_BAD_NAMESPACE;
    } else if (open) {
        xml_stream_attrs a = {.content_ns = "jabber:client", .to = o.to, .from = o.from,
                              .version = o.version, .lang = o.lang};
        xml_write_stream_open(stream, &a);
        r = FRAMING_IN_OPEN;
    } else {
        xml_write_stream_close(stream);
        r = FRAMING_IN_CLOSE;
    }
    for (int i = 0; i < 4; i++)
        free(o.copies[i]);
    return r;
}
