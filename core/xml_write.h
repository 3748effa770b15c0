/* core/xml_write.h — XML element trees (core/xml.h) out as bytes: stanzas, stream headers, stream errors.
 *
 * Output is canonical for a given tree: attributes in tree order, values quoted with ', empty
 * elements as <x/>, no whitespace added. Text escapes & < > and \r (so a literal CR survives the
 * receiver's line-end normalisation); attribute values also escape ' " \t \n \r, which attribute
 * value normalisation would otherwise turn into spaces. C0 control characters other than tab, LF
 * and CR cannot be carried by XML 1.0 and are dropped. Everything else (names, and text that the
 * parser produced) is written as it is: trees built by hand must hold valid names and UTF-8.
 *
 * Namespaces: an element gets xmlns='uri' only where its namespace differs from the default
 * namespace in scope; elements in the stream namespace are written stream:name, elements and
 * attributes in the XML namespace xml:name. Other namespaced attributes get prefixes (ns0, ns1...)
 * declared on the element that carries them.
 *
 * Thread rules: none beyond those of the buffer written to.
 */
#ifndef JABSHARD_CORE_XML_WRITE_H
#define JABSHARD_CORE_XML_WRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/xml.h"

#define XML_NS_STREAMS "http://etherx.jabber.org/streams"
#define XML_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"

/* Everything here appends to a core/buf.h buffer: a connection's output (outq_block_from_buf
 * takes it without a copy), or any other. */

/* Escaped character data, and an attribute value (without the quotes). */
void xml_write_text(buf *out, const char *text, size_t len);
void xml_write_attr_value(buf *out, const char *value, size_t len);

/* Appends node and its subtree. default_ns is the default namespace in scope where the output
 * goes (NULL or "" for none): "jabber:client" inside a client stream, so stanzas carry no xmlns.
 * in_stream says the stream: prefix is already bound (output inside xml_write_stream_open);
 * otherwise stream-namespace elements declare it themselves. */
void xml_write_node(buf *out, const xml_node *node, const char *default_ns, bool in_stream);
bool xml_write_node_max(buf *out, const xml_node *node, const char *default_ns, bool in_stream, size_t max); /* TEMP */

/* The opening of a stream, XML declaration included. content_ns is required; the others are
 * left out when NULL. */
typedef struct xml_stream_attrs {
    const char *content_ns; /* "jabber:client", "jabber:component:accept", ... */
    const char *from, *to, *id, *version, *lang;
} xml_stream_attrs;

void xml_write_stream_open(buf *out, const xml_stream_attrs *attrs);
void xml_write_stream_close(buf *out);

/* <stream:error> with a condition element (RFC 6120 4.9.3, e.g. "not-well-formed"; see
 * xmlstream_condition_name) and, when text is not NULL, a <text xml:lang='en'> explanation.
 * RFC 6120 4.9.1.1: the sender closes the stream right after (xml_write_stream_close). */
void xml_write_stream_error(buf *out, const char *condition, const char *text);

#endif
