/* core/xmlstream.h — the XMPP stream parser: bytes in, stream header / stanzas / stream close out.
 *
 * Feed it whatever the socket (or TLS) delivered, in chunks of any size. It reports the stream
 * header, then every complete top-level element ("stanza", including stream features, SASL and
 * STARTTLS elements) as an element tree in its own arena, then the stream close. A stanza is
 * reported as soon as its last byte has been fed. Whitespace between stanzas (keepalives) is
 * accepted and produces nothing.
 *
 * It enforces RFC 6120: restricted XML (§11.1: no DOCTYPE, entity declarations or references
 * beyond the predefined five, comments or processing instructions), UTF-8 only (§11.6), the stream
 * namespace (§4.8.1), and the limits below. The first problem ends the stream: feed returns
 * XMLSTREAM_FAILED, xmlstream_get_error says which RFC 6120 §4.9.3 condition to send, and the
 * parser takes no more input until xmlstream_reset. Non-whitespace text between stanzas is
 * <not-well-formed/>: §11.7 allows only whitespace between first-level elements, and when such
 * text is itself malformed (say "x]]>") expat reports the whole run as not well-formed or not,
 * depending on where the chunks split it; one condition for both keeps the outcome independent
 * of chunking.
 *
 * Stream restarts (after STARTTLS and after SASL success): from inside the callback that handles
 * the triggering element, call xmlstream_stop. Feed then returns XMLSTREAM_STOPPED right after
 * that element, with *consumed telling how much of the chunk it used. The caller answers, calls
 * xmlstream_reset, and feeds the rest of the chunk (data + consumed) as the start of the new stream
 * — or, after <starttls/>, discards it: those bytes came before TLS and must not be trusted.
 *
 * Idle memory: a parser between stanzas costs what expat holds (about 11 KB with expat 2.5, more
 * after large input). xmlstream_shrink frees all of it while keeping the stream going: call it when a
 * connection goes idle; the next feed rebuilds the parser transparently.
 *
 * Busy memory: expat also keeps every distinct name it has met (element and attribute names,
 * prefixes) for as long as it lives, which a peer sending new names could grow without end. Once
 * one expat parser has read limits.renew_tag_bytes of start tags (where all those names are), it
 * is freed at the end of the next stanza and the stream goes on with a new one, the same way as
 * after a shrink: nothing of it shows outside, whatever the chunking (a stream fed one stanza per
 * call, as the SM does, renews just as well as one fed in arbitrary pieces).
 *
 * Thread rules: a parser belongs to one thread. Callbacks run inside xmlstream_feed on that
 * thread; from a callback only xmlstream_stop and the read-only calls are allowed.
 */
#ifndef JABSHARD_CORE_XMLSTREAM_H
#define JABSHARD_CORE_XMLSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/xml.h"

/* RFC 6120 §4.9.3 stream error conditions. */
typedef enum {
    XMLSTREAM_ERR_NONE = 0,
    XMLSTREAM_ERR_BAD_FORMAT,
    XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX,
    XMLSTREAM_ERR_CONFLICT,
    XMLSTREAM_ERR_CONNECTION_TIMEOUT,
    XMLSTREAM_ERR_HOST_GONE,
    XMLSTREAM_ERR_HOST_UNKNOWN,
    XMLSTREAM_ERR_IMPROPER_ADDRESSING,
    XMLSTREAM_ERR_INTERNAL_SERVER_ERROR,
    XMLSTREAM_ERR_INVALID_FROM,
    XMLSTREAM_ERR_INVALID_NAMESPACE,
    XMLSTREAM_ERR_INVALID_XML,
    XMLSTREAM_ERR_NOT_AUTHORIZED,
    XMLSTREAM_ERR_NOT_WELL_FORMED,
    XMLSTREAM_ERR_POLICY_VIOLATION,
    XMLSTREAM_ERR_REMOTE_CONNECTION_FAILED,
    XMLSTREAM_ERR_RESET,
    XMLSTREAM_ERR_RESOURCE_CONSTRAINT,
    XMLSTREAM_ERR_RESTRICTED_XML,
    XMLSTREAM_ERR_SEE_OTHER_HOST,
    XMLSTREAM_ERR_SYSTEM_SHUTDOWN,
    XMLSTREAM_ERR_UNDEFINED_CONDITION,
    XMLSTREAM_ERR_UNSUPPORTED_ENCODING,
    XMLSTREAM_ERR_UNSUPPORTED_FEATURE,
    XMLSTREAM_ERR_UNSUPPORTED_STANZA_TYPE,
    XMLSTREAM_ERR_UNSUPPORTED_VERSION,
} xmlstream_condition;

/* The condition's element name ("restricted-xml"); NULL for XMLSTREAM_ERR_NONE. */
const char *xmlstream_condition_name(xmlstream_condition condition);

typedef struct xmlstream_error {
    xmlstream_condition condition; /* XMLSTREAM_ERR_NONE while all is well */
    uint32_t line;                 /* input line where it was detected */
    char text[96];                 /* short English explanation, for logs and <text/> */
} xmlstream_error;

/* Limits; exceeding one is <policy-violation/>. A value of exactly the limit is accepted. */
typedef struct xmlstream_limits {
    size_t max_stanza_bytes; /* input bytes from a stanza's '<' to its last '>' (65536) */
    unsigned max_depth;      /* element nesting within a stanza, the stanza itself being 1 (32) */
    unsigned max_attrs;      /* attributes on one element, namespace declarations aside (64) */
    size_t max_attr_bytes;   /* one attribute value, decoded (= max_stanza_bytes) */
    size_t max_text_bytes;   /* one run of text between tags, decoded (= max_stanza_bytes) */
    size_t max_header_bytes; /* input bytes up to the end of the stream header (4096) */
    size_t renew_tag_bytes;  /* start-tag bytes one expat parser reads before it is replaced,
                              * after the stanza that crosses the line (262144); not an error */
} xmlstream_limits;

void xmlstream_limits_default(xmlstream_limits *limits);

/* Any handler may be NULL (a NULL stanza handler frees the stanza). */
typedef struct xmlstream_handlers {
    /* The stream header: root is the <stream:stream> element with its attributes and no
     * children; content_ns is the default namespace it declares ("" when none). Both are valid
     * only during the call. */
    void (*header)(void *ctx, const xml_node *root, const char *content_ns);
    /* A complete top-level element. The handler owns arena, which holds the tree, and frees it
     * with xml_arena_free when done. */
    void (*stanza)(void *ctx, xml_node *stanza, xml_arena *arena);
    /* The peer closed its stream with </stream:stream>. */
    void (*close)(void *ctx);
} xmlstream_handlers;

typedef enum {
    XMLSTREAM_OK,      /* all input consumed; waiting for more */
    XMLSTREAM_STOPPED, /* a handler called xmlstream_stop: *consumed bytes were used */
    XMLSTREAM_CLOSED,  /* the stream was closed: *consumed bytes were used, the rest is not XMPP */
    XMLSTREAM_FAILED,  /* stream error: see xmlstream_get_error */
} xmlstream_status;

typedef struct xmlstream xmlstream;

/* handlers is copied; limits NULL means the defaults. */
xmlstream *xmlstream_new(const xmlstream_handlers *handlers, void *ctx, const xmlstream_limits *limits);
void xmlstream_free(xmlstream *stream);

/* Parses len bytes, calling the handlers. *consumed (may be NULL) is set to the bytes used:
 * len for XMLSTREAM_OK. After STOPPED the parser takes nothing until xmlstream_reset; after
 * CLOSED or FAILED, further input fails. */
xmlstream_status xmlstream_feed(xmlstream *stream, const void *data, size_t len, size_t *consumed);

/* From a handler: stop right after the element (or header, or close) being reported. */
void xmlstream_stop(xmlstream *stream);

/* Forgets the current stream, its error included, and expects a new stream header. */
void xmlstream_reset(xmlstream *stream);

/* From the header handler: the input bytes of the stream up to the end of its header. From the
 * stanza handler: those of the stanza, from its '<' to its last '>' (what the serializer's
 * bound, core/xml_write.h, is relative to). */
size_t xmlstream_reported_bytes(const xmlstream *stream);

/* The stream is open and between stanzas: everything fed so far has been reported. */
bool xmlstream_idle(const xmlstream *stream);

/* Frees the parser's working memory if the stream sits between stanzas with no partial input;
 * returns whether it did. Not from a handler. */
bool xmlstream_shrink(xmlstream *stream);

const xmlstream_error *xmlstream_get_error(const xmlstream *stream);

#endif
