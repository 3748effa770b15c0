/* shard/xmpp_framing.h — an XMPP stream as separate top-level elements (RFC 7395 §3.3, and
 * XEP-0206's <body/> contents), both ways, without sockets.
 *
 * The client stream state machine (shard/c2s_stream.h) speaks one continuous stream; web
 * transports carry elements one by one. In: a client's <open/> becomes a stream header for the
 * state machine, its <close/> the stream's closing tag, and any other element goes as it is (the
 * synthetic header binds jabber:client as the default namespace, so an element with or without
 * its own xmlns reads the same). Out: the state machine's output (complete top-level items, as it
 * always writes them) is cut into its items: the stream header becomes <open/>, the closing tag
 * <close/>, and each element declares the namespaces it relied on the stream header for
 * (xmlns='jabber:client' on stanzas, xmlns:stream on <stream:features/> and <stream:error/>).
 *
 * The output side reads only our own serialization (core/xml_write.h: attribute values quoted,
 * '<' always escaped in text, no comments or CDATA); the input side reads the client's bytes and
 * parses <open/> with expat.
 *
 * Thread rules: none (no state).
 */
#ifndef JABSHARD_SHARD_XMPP_FRAMING_H
#define JABSHARD_SHARD_XMPP_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define XMPP_FRAMING_NS "urn:ietf:params:xml:ns:xmpp-framing"

typedef enum {
    FRAMING_IN_ELEMENT,        /* its bytes were appended as they are */
    FRAMING_IN_OPEN,           /* a stream header was appended */
    FRAMING_IN_CLOSE,          /* the closing tag was appended */
    FRAMING_IN_BAD_NAMESPACE,  /* an <open/> or <close/> outside the framing namespace */
    FRAMING_IN_NOT_WELL_FORMED, /* an <open/> expat refused (nothing appended) */
} framing_in_result;

/* One message from the client. Appends what the stream state machine is to read to stream. */
framing_in_result framing_in(const char *msg, size_t len, buf *stream);

typedef enum {
    FRAMING_OUT_OPEN,          /* the stream header, as <open xmlns='…framing'/> */
    FRAMING_OUT_CLOSE,         /* the closing tag, as <close xmlns='…framing'/> */
    FRAMING_OUT_ELEMENT,       /* an element, its namespaces declared */
} framing_out_kind;

/* Called for each item, its rewritten bytes in [data, data+len) (valid during the call only). */
typedef void (*framing_emit)(void *ctx, framing_out_kind kind, const char *data, size_t len);

/* Cuts the stream output in [data, data+len) into items, calling emit for each in order; the
 * XML declaration and whitespace between items are dropped. Returns the bytes consumed: an item
 * cut short at the end stays for the next call. */
size_t framing_out(const char *data, size_t len, framing_emit emit, void *ctx);

/* For one element from the SM (a stanza, serialized for inside a client stream): where to insert
 * " xmlns='jabber:client'" (just after the element's name), or 0 when its start tag declares a
 * default namespace of its own (or the bytes are not a start tag). */
size_t framing_xmlns_at(const char *el, size_t len);

#define FRAMING_CLIENT_XMLNS " xmlns='jabber:client'"

#endif
