/* core/xml_write.c — the serializer: element trees, stream headers and stream errors as bytes. */
#include "core/xml_write.h"

#include <stdio.h>
#include <string.h>

static void put(buf *out, const char *s)
{
    buf_append(out, s, strlen(s));
}

/* Bytes that cannot be copied as they are: escaped, or dropped when XML 1.0 has no way to carry
 * them (C0 controls other than tab, LF, CR). Tab and LF are safe in text but not in attribute
 * values; CR is escaped in both so that the receiver's line-end normalisation cannot eat it. */
static const unsigned char text_special[256] = {
    [0x00 ... 0x08] = 1, [0x0b ... 0x1f] = 1, ['&'] = 1, ['<'] = 1, ['>'] = 1,
};
static const unsigned char attr_special[256] = {
    [0x00 ... 0x1f] = 1, ['&'] = 1, ['<'] = 1, ['>'] = 1, ['\''] = 1, ['"'] = 1,
};

static void write_escaped(buf *out, const char *s, size_t len, const unsigned char *special)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && !special[*p])
            p++;
        if (p > run)
            buf_append(out, run, (size_t)(p - run));
        if (p == end)
            break;
        const char *ref = NULL;
        switch (*p) {
        case '&': ref = "&amp;"; break;
        case '<': ref = "&lt;"; break;
        case '>': ref = "&gt;"; break;
        case '\'': ref = "&apos;"; break;
        case '"': ref = "&quot;"; break;
        case '\t': ref = "&#9;"; break;
        case '\n': ref = "&#10;"; break;
        case '\r': ref = "&#13;"; break;
        default: break; /* an unrepresentable control character: dropped */
        }
        if (ref)
            put(out, ref);
        p++;
    }
}

void xml_write_text(buf *out, const char *text, size_t len)
{
    write_escaped(out, text, len, text_special);
}

void xml_write_attr_value(buf *out, const char *value, size_t len)
{
    write_escaped(out, value, len, attr_special);
}

/* Appends " name='value'" with name written as prefix:local when prefix is not NULL. */
static void write_attr(buf *out, const char *prefix, const char *name, const char *value)
{
    buf_append(out, " ", 1);
    if (prefix) {
        put(out, prefix);
        buf_append(out, ":", 1);
    }
    put(out, name);
    buf_append(out, "='", 2);
    xml_write_attr_value(out, value, strlen(value));
    buf_append(out, "'", 1);
}

static const char *attr_ns(const xml_attr *a)
{
    return a->ns && a->ns[0] ? a->ns : NULL;
}

/* Attributes in other namespaces get the prefix "ns<i>", i being the index of the element's first
 * attribute in that namespace: unique within the element, and found without a table. */
static void write_attrs(buf *out, const xml_node *el)
{
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const xml_attr *a = &el->attrs[i];
        const char *ns = attr_ns(a);
        if (!ns) {
            write_attr(out, NULL, a->name, a->value);
            continue;
        }
        if (strcmp(ns, XML_NS_XML) == 0) {
            write_attr(out, "xml", a->name, a->value);
            continue;
        }
        uint32_t first = 0;
        while (first < i && !(attr_ns(&el->attrs[first]) && strcmp(attr_ns(&el->attrs[first]), ns) == 0))
            first++;
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "ns%u", (unsigned)first);
        if (first == i)
            write_attr(out, "xmlns", prefix, ns);
        write_attr(out, prefix, a->name, a->value);
    }
}

static void write_node(buf *out, const xml_node *node, const char *default_ns, bool stream_bound)
{
    if (node->kind == XML_TEXT) {
        xml_write_text(out, node->text, node->text_len);
        return;
    }
    const char *ns = node->ns ? node->ns : "";
    const char *prefix = NULL;
    bool declare_default = false, declare_stream = false;
    if (strcmp(ns, XML_NS_XML) == 0) {
        prefix = "xml"; /* the XML namespace may not be the default namespace */
    } else if (strcmp(ns, XML_NS_STREAMS) == 0) {
        prefix = "stream";
        declare_stream = !stream_bound;
        stream_bound = true;
    } else if (strcmp(ns, default_ns) != 0) {
        declare_default = true;
        default_ns = ns;
    }

    buf_append(out, "<", 1);
    if (prefix) {
        put(out, prefix);
        buf_append(out, ":", 1);
    }
    put(out, node->name);
    if (declare_default)
        write_attr(out, NULL, "xmlns", ns);
    if (declare_stream)
        write_attr(out, "xmlns", "stream", XML_NS_STREAMS);
    write_attrs(out, node);
    if (!node->children) {
        buf_append(out, "/>", 2);
        return;
    }
    buf_append(out, ">", 1);
    for (const xml_node *c = node->children; c; c = c->next)
        write_node(out, c, default_ns, stream_bound);
    buf_append(out, "</", 2);
    if (prefix) {
        put(out, prefix);
        buf_append(out, ":", 1);
    }
    put(out, node->name);
    buf_append(out, ">", 1);
}

void xml_write_node(buf *out, const xml_node *node, const char *default_ns, bool in_stream)
{
    write_node(out, node, default_ns ? default_ns : "", in_stream);
}

void xml_write_stream_open(buf *out, const xml_stream_attrs *attrs)
{
    put(out, "<?xml version='1.0'?><stream:stream");
    write_attr(out, NULL, "xmlns", attrs->content_ns);
    write_attr(out, "xmlns", "stream", XML_NS_STREAMS);
    const struct {
        const char *prefix, *name, *value;
    } optional[] = {
        {NULL, "from", attrs->from},   {NULL, "to", attrs->to},        {NULL, "id", attrs->id},
        {NULL, "version", attrs->version}, {"xml", "lang", attrs->lang},
    };
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
        if (optional[i].value)
            write_attr(out, optional[i].prefix, optional[i].name, optional[i].value);
    buf_append(out, ">", 1);
}

void xml_write_stream_close(buf *out)
{
    put(out, "</stream:stream>");
}

void xml_write_stream_error(buf *out, const char *condition, const char *text)
{
    put(out, "<stream:error><");
    put(out, condition);
    put(out, " xmlns='" XML_NS_STREAM_ERRORS "'/>");
    if (text) {
        put(out, "<text xmlns='" XML_NS_STREAM_ERRORS "' xml:lang='en'>");
        xml_write_text(out, text, strlen(text));
        put(out, "</text>");
    }
    put(out, "</stream:error>");
}
/* TEMP STUB (not committed) */
bool xml_write_node_max(buf *out, const xml_node *node, const char *default_ns, bool in_stream, size_t max)
{
    size_t before = buf_len(out);
    xml_write_node(out, node, default_ns, in_stream);
    if (buf_len(out) - before <= max)
        return true;
    out->end = out->start + before;
    return false;
}
