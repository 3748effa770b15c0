/* s2s/s2s_stream.h — one server-to-server XMPP stream (RFC 6120, XEP-0178, XEP-0220), without
 * sockets: bytes in, bytes and events out. The owner (s2s/s2s_conn.c) moves the bytes, runs TLS
 * when told to, answers the questions below and decides what to do with authenticated pairs; this
 * file owns the protocol: headers, features, STARTTLS, SASL EXTERNAL, bidi, dialback (both the
 * receiving side's db:result and the authoritative side's db:verify), the from/to checks on every
 * stanza, and RFC 6120 §4.9 stream errors for bad input. fuzz/fuzz_s2s_stream.c feeds it.
 *
 * An outgoing stream is opened for one pair (local domain, remote domain) and becomes ready for
 * stanzas once authenticated: by SASL EXTERNAL when the remote server offers it (it does when it
 * trusts our certificate), else by dialback when the policy allows. An incoming stream
 * authenticates the pairs the remote server asks for: SASL EXTERNAL (its certificate must be valid
 * for the domain), or db:result, checked with the authoritative server through the owner
 * (db_verify_request, answered by s2s_stream_db_result) unless the certificate already proves it
 * (XEP-0344 §2.3: dialback then costs no round trip). Stanzas are accepted only from and to a
 * pair authenticated on this stream. Either side may make the stream bidirectional (XEP-0288).
 *
 * Thread rules: a stream belongs to one thread. Callbacks run inside s2s_stream_feed (and
 * s2s_stream_tls_done); from a callback, only the calls documented as such.
 */
#ifndef JABSHARD_S2S_S2S_STREAM_H
#define JABSHARD_S2S_S2S_STREAM_H
#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"
#include "core/xml.h"
#include "core/xmlstream.h"

#define S2S_NS_SERVER "jabber:server"
#define S2S_NS_DIALBACK "jabber:server:dialback"
#define S2S_DOMAIN_MAX 1023      /* RFC 7622 §3.2: a domainpart is at most 1023 octets */
#define S2S_PAIRS_MAX 64         /* authenticated pairs one stream may carry */
#define S2S_PENDING_DB_MAX 16    /* db:result checks one incoming stream may have waiting */

typedef struct s2s_stream s2s_stream;

/* What the policy says about one remote domain (s2s/s2s_config.h fills it). */
typedef struct s2s_policy {
    bool blocked;             /* refuse everything to and from it */
    bool require_tls;         /* no stream without TLS */
    bool require_valid_cert;  /* only a certificate valid for it authenticates it */
    bool allow_dialback;      /* dialback may authenticate it (when the certificate does not) */
} s2s_policy;

typedef struct s2s_stream_ops {
    /* Whether domain is one of ours (a host the SM serves). */
    bool (*is_local)(void *ctx, const char *domain);
    /* The policy for a remote domain. */
    void (*policy)(void *ctx, const char *remote, s2s_policy *out);
    /* Whether the TLS peer's certificate is valid (PKIX and RFC 6125) for domain. */
    bool (*peer_cert_valid)(void *ctx, const char *domain);
    /* A pair is authenticated: outgoing, we may send as local to remote; incoming, we accept
     * stanzas from remote to local. how: "sasl", "dialback" or "certificate". */
    void (*authed)(void *ctx, const char *local, const char *remote, const char *how);
    /* Outgoing: the stream can carry db:verify requests (its TLS, where required, is up). */
    void (*ready)(void *ctx);
    /* Incoming: remote asks, by db:result, to be authenticated for local with key on the stream
     * stream_id: check it with remote's authoritative server and call s2s_stream_db_result. */
    void (*db_verify_request)(void *ctx, const char *local, const char *remote,
                              const char *stream_id, const char *key);
    /* Outgoing: the answer to a db:verify we sent (s2s_stream_db_verify). */
    void (*db_verify_answer)(void *ctx, const char *local, const char *remote, const char *id,
                             bool valid);
    /* A stanza from an authenticated pair (on an incoming stream, or on a bidirectional
     * outgoing one: XEP-0288); the owner takes arena. Its namespace is still jabber:server. */
    void (*stanza)(void *ctx, xml_node *stanza, xml_arena *arena);
} s2s_stream_ops;

typedef struct s2s_stream_config {
    const char *secret;               /* the dialback secret (dialback.h) */
    xmlstream_limits limits;
} s2s_stream_config;

typedef enum { S2S_OUTGOING, S2S_INCOMING } s2s_direction;

/* Outgoing: the stream for local -> remote; its header is in s2s_stream_out at once. Incoming:
 * local and remote NULL, learnt from the peer. cfg must outlive the stream. */
s2s_stream *s2s_stream_new(s2s_direction dir, const char *local, const char *remote,
                           const s2s_stream_config *cfg, const s2s_stream_ops *ops, void *ctx);
void s2s_stream_free(s2s_stream *st);

typedef enum {
    S2S_STREAM_OK,      /* all input taken */
    S2S_STREAM_TLS,     /* STARTTLS agreed: send what s2s_stream_out holds, then run the TLS
                         * handshake and call s2s_stream_tls_done; the rest of the input (sent
                         * before TLS, so untrusted) was dropped */
    S2S_STREAM_CLOSED,  /* the stream ended (an error sent, or the peer closed): send the output
                         * and close the connection */
} s2s_stream_status;

s2s_stream_status s2s_stream_feed(s2s_stream *st, const void *data, size_t len);

/* After S2S_STREAM_TLS: the handshake is done (ok) or failed (then the stream is closed). Writes the
 * new stream header on an outgoing stream. */
s2s_stream_status s2s_stream_tls_done(s2s_stream *st, bool ok);

/* XEP-0368: the connection started with TLS (its handshake is done), before any stream byte. */
void s2s_stream_direct_tls(s2s_stream *st);

/* Bytes to send; the owner consumes what it wrote. */
buf *s2s_stream_out(s2s_stream *st);

/* Outgoing, once authed: a stanza (in jabber:server) written out. Returns false when it would be
 * over max_bytes serialized (nothing written). */
bool s2s_stream_send(s2s_stream *st, const xml_node *stanza, size_t max_bytes);

/* Outgoing, once ready: asks the authoritative server whether key is what it gave remote's
 * stream id (we being the receiving server local). */
void s2s_stream_db_verify(s2s_stream *st, const char *local, const char *remote, const char *id,
                          const char *key);

/* Incoming: the answer to a db_verify_request. */
void s2s_stream_db_result(s2s_stream *st, const char *local, const char *remote, bool valid);

/* A whitespace keepalive (RFC 6120 §4.6.1). */
void s2s_stream_keepalive(s2s_stream *st);

/* Ends the stream: with a stream error when condition is not NULL. */
void s2s_stream_close(s2s_stream *st, const char *condition, const char *text);

bool s2s_stream_closed(const s2s_stream *st);
bool s2s_stream_is_tls(const s2s_stream *st);
/* XEP-0288: the stream carries stanzas both ways (asked by us on an outgoing stream, by the peer
 * on an incoming one). An incoming bidi stream takes s2s_stream_send for its authenticated
 * pairs; an outgoing one hands over, by the stanza callback, what its peer sends from its domain
 * to ours. */
bool s2s_stream_bidi(const s2s_stream *st);
/* Outgoing: authenticated for its pair. */
bool s2s_stream_authed(const s2s_stream *st);
/* Incoming: the remote domain named by the header, once known (for logs), or "". */
const char *s2s_stream_peer(const s2s_stream *st);
/* Why it closed, for the log: the condition sent or received and its text. */
const char *s2s_stream_why(const s2s_stream *st);

#endif
