/* core/xml_write.h — XML element trees (core/xml.h) out as bytes: stanzas, stream headers, stream errors.
 *
 * Output is canonical for a given tree: attributes in tree order, values quoted with ', empty
 * elements as <x/>, no whitespace added. Text escapes & < > and \r (so a literal CR survives the
 * receiver's line-end normalisation); attribute values also escape ' " \t \n \r, which attribute
 * value normalisation would otherwise turn into spaces. C0 control characters other than tab, LF
 * and CR cannot be carried by XML 1.0 and are dropped. Everything else (names, and text that the
 * parser produced) is written as it is: trees built by hand must hold valid names and UTF-8.
 *
 * Namespaces, the classic rule: an element gets xmlns='uri' only where its namespace differs from
 * the default namespace in scope; elements in the stream namespace are written stream:name,
 * elements and attributes in the XML namespace xml:name (never declared). Other namespaced
 * attributes get prefixes (ns0, ns1...) declared on the element that carries them. Ordinary
 * stanzas are written by this rule alone, byte for byte as they always were.
 *
 * Hoisting. The classic rule declares a URI at each of its points: every element whose namespace
 * differs from the default in scope (for the stream namespace, every one where stream: is not yet
 * bound), every element carrying attributes in it. A stanza that binds a long URI to a prefix once
 * and puts it on many small elements would have that URI repeated at each: 11 KB in, 1 MB out
 * (security issue 12). So a URI with p >= 2 points whose declarations would take more than
 *     p * (E + 10) > 256 + 4 * W    bytes
 * (E: the URI's escaped length; W: input bytes, at least, owned by its points: their tags,
 * attributes and text, down to the next such point) is hoisted: declared once on the element
 * written (the root), as h1, h2... in order of first use (stream for the stream namespace), and
 * every element and attribute in it written with that prefix. A prefixed element leaves the
 * default namespace alone; a hoisted URI that is the default where an element goes (the root's own,
 * usually) is written without prefix. Clients that repeat a declaration on elements with content
 * of their own (Jingle's rtcp-fb, pubsub items) give W enough to keep the classic form.
 *
 * Bound. For a tree parsed from I input bytes (the stanza, plus the stream header declarations it
 * uses), the output is at most 16 * I bytes, standalone or in a stream; fuzz/fuzz_xmlstream.c
 * checks it on every stanza. Charging output to input units: text and attribute values escape
 * to at most 6 bytes per input byte (a ' inside a "-quoted value); an element's tags, t >= 4 input
 * bytes, gain at most a prefix of 6 characters and its colon per tag (or xmlns=''), at most 3.25 t;
 * a hoisted URI, and one with a single point, is declared once, at most 6 times the D >= 9 + value
 * bytes of its declaration in the input (so E <= 6D - 54). A URI not hoisted is declared at most
 * at its points (a prefixed element changes no default, so it adds none): p * (E + 10) bytes, 4
 * more per attribute point, where p * (E + 10) <= min(256, p * (6D - 44)) + 4W <= 7.7 (D + 4p) + 4W:
 * 7.7 per byte of its declaration, 31 per point, 4 per owned byte. The worst unit, a 4-byte tag
 * that is a point and owned, comes to 3.25 * 4 + 31 + 4 * 4 < 15 * 4. (This assumes fewer than
 * 100 attributes on an element and 100,000 hoisted URIs: stanzas are far smaller.)
 *
 * Cost: linear in the tree's nodes and bytes, namespace lookups being O(length of the URI)
 * whatever the number of URIs (core/xml_ns.h). An ordinary stanza is written in one walk that
 * counts declarations as it makes them; only one with a URI over the slack is planned first.
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
/* The same, but only if the serialization fits in max_bytes: otherwise out is left as it was and
 * false returned. Writing stops at the first piece that does not fit, so a tree whose output
 * would be huge costs no more than max_bytes of buffer. Use it wherever output size is limited
 * (a frame, a queue) instead of writing first and measuring after. */
bool xml_write_node_max(buf *out, const xml_node *node, const char *default_ns, bool in_stream, size_t max_bytes);

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
