/* shard/c2s_stream.h — one client's XMPP stream (RFC 6120) as a state machine without sockets.
 *
 * Bytes from the client (already decrypted) go in; bytes for the client, smproto frames for the SM
 * and actions for the connection come out. Everything between TCP and the SM link lives here:
 * stream header checks, features, STARTTLS negotiation, SASL (through shard/sasl.h), the stream
 * restart, resource binding, the legacy session iq, stream management (XEP-0198, with
 * shard/smacks.h), the client's XEP-0352 state (what it means for its stanzas is shard/csi.h's),
 * from-stamping and JID checks on stanzas, and stream errors. The connection layer
 * (shard/iothread.c) owns the socket, TLS, timers and limits; the fuzz target and the unit tests
 * drive this directly.
 *
 * Asynchronous steps (the SM's AUTH_ANSWER and BOUND and its answers to <enable/> and <resume/>,
 * PLAIN's PBKDF2 check off the IO thread) put
 * the stream in a waiting state: c2s_stream_wants_input() turns false so the connection stops
 * reading, and stanzas already parsed wait in order until the answer arrives.
 *
 * Output: c2s_stream_out() holds bytes for the client, taken by the caller (buf_consume, or
 * outq_block_from_buf) after each call; whole smproto frames for the SM are appended to the env's
 * frames buffer (the IO thread's, for the link), stanzas serialized straight into it.
 *
 * Thread rules: a c2s_stream belongs to its connection's IO thread. The env is shared read-only.
 */
#ifndef JABSHARD_SHARD_C2S_STREAM_H
#define JABSHARD_SHARD_C2S_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/scram.h"
#include "shard/front_config.h"
#include "smproto/frame.h"

/* What the connection must do after a call (bits). */
enum {
    C2S_ACT_STARTTLS = 1,  /* write out, then run the TLS handshake; unread input is discarded;
                            * then c2s_stream_tls_started() */
    C2S_ACT_CLOSE = 2,     /* write out, then close the connection (nothing more will come) */
    C2S_ACT_VERIFY = 4,    /* a PLAIN check is due: c2s_stream_verify_job(), then
                            * c2s_stream_verified() */
    C2S_ACT_DELIVER = 8,   /* (c2s_stream_frame, STANZA) queue the frame's payload to the client */
    C2S_ACT_AUTHED = 16,   /* SASL succeeded (the auth timeout can go) */
    C2S_ACT_AUTH_FAILED = 32, /* a SASL attempt failed (<failure/> is in the output):
                               * c2s_stream_auth_failure() says how */
    /* XEP-0352 (shard/csi.h): the client sent <active/> (it wants what was held), <inactive/>
     * (c2s_stream_csi_inactive() says the state now), or a stanza (it is awake). */
    C2S_ACT_CSI_ACTIVE = 1u << 16,
    C2S_ACT_CSI_INACTIVE = 1u << 17,
    C2S_ACT_CLIENT_STANZA = 1u << 18,
};

/* What the connection layer says to an account creation (XEP-0077 <iq type='set'/> before
 * authentication). Refused ones get a stanza error built here, and never reach the SM. */
typedef enum {
    C2S_REGISTER_OK,
    C2S_REGISTER_RATE,     /* the address asked too often: <resource-constraint/>, type wait */
    C2S_REGISTER_CAP,      /* the connection asked too often: <not-allowed/>, type cancel */
} c2s_register_verdict;

typedef struct c2s_env {
    const front_config *cfg;
    /* The limits in force (a reload's), or NULL: cfg's. */
    const front_limits *limits;
    bool tls_available;            /* the server has a TLS context: STARTTLS can be offered */
    /* Whether the SM link cannot take more client stanzas now (down and its hold is full): the
     * sender then gets <remote-server-timeout/>. NULL: never. Called on the IO thread. */
    bool (*link_congested)(void *arg);
    void *link_arg;
    /* An account creation, the nth this session asked for, is about to go to the SM: the
     * connection layer's verdict (it knows the client's address, the trusted networks and the
     * per-address buckets, and logs a refusal). NULL: always OK. Called on the IO thread. */
    c2s_register_verdict (*register_verdict)(void *arg, uint64_t sid, unsigned nth);
    void *limits_arg;
    buf *frames;                   /* where every stream's frames for the SM go (required) */
    const struct server_caps *caps; /* the server's entity capabilities per host, or NULL */
} c2s_env;

/* A failed SASL attempt, for the log and the limits. */
typedef struct c2s_auth_failure {
    const char *mech;      /* the mechanism's name, NULL when the client named none we know */
    const char *user;      /* the authentication identity the client sent, NULL before one */
    const char *reason;    /* "wrong-password", "unknown-user", or the SASL condition sent */
    bool guess;            /* a password was tested and wrong (or the user unknown): only these
                            * count toward auth_failures and ip_auth_failures */
} c2s_auth_failure;

typedef struct c2s_stream c2s_stream;

/* direct_tls: the connection came in on the TLS port (the handshake is already done). exporter:
 * its tls-exporter value (32 bytes) or NULL. */
c2s_stream *c2s_stream_new(const c2s_env *env, uint64_t sid, bool direct_tls,
                           const uint8_t *exporter);
void c2s_stream_free(c2s_stream *s);

/* Client bytes. Returns actions. After C2S_ACT_STARTTLS or C2S_ACT_CLOSE nothing more is read. */
unsigned c2s_stream_feed(c2s_stream *s, const void *data, size_t len);
/* Whether the connection should read more now (false while waiting or once closed). */
bool c2s_stream_wants_input(const c2s_stream *s);

/* The TLS handshake after STARTTLS finished; exporter as for c2s_stream_new. */
unsigned c2s_stream_tls_started(c2s_stream *s, const uint8_t *exporter);

/* A frame from the SM for this session (its sid already matched). */
unsigned c2s_stream_frame(c2s_stream *s, const smproto_frame *f);

/* The PLAIN job: copies of what the worker needs. The password is malloc'd (the caller wipes and
 * frees it). Returns false when no job is due. */
bool c2s_stream_verify_job(c2s_stream *s, char **password, scram_hash *hash,
                           scram_credentials *creds);
unsigned c2s_stream_verified(c2s_stream *s, bool ok);

/* After C2S_ACT_AUTH_FAILED: how the last attempt failed; the strings live until the next call
 * into s. */
const c2s_auth_failure *c2s_stream_auth_failure(const c2s_stream *s);

/* Ends the stream with a stream error (condition as RFC 6120 §4.9.3 names it) and closes. */
unsigned c2s_stream_error(c2s_stream *s, const char *condition, const char *text);
/* The connection is gone without a goodbye (EOF, socket error): an END frame if the SM knows the
 * session. */
void c2s_stream_gone(c2s_stream *s);

buf *c2s_stream_out(c2s_stream *s);

/* The connection has been idle for a while: frees the parser's working memory and empty buffers
 * when no partial input is pending (they come back on the next byte). Returns whether the parser
 * shrank. */
bool c2s_stream_shrink(c2s_stream *s);

/* After the SM link came back (docs/smproto.md §5). A bound, open session's RESYNC entry (its JID,
 * the STATE record the SM gave it, its last available broadcast presence or ""; pointers into s),
 * or false. */
bool c2s_stream_resync_entry(const c2s_stream *s, smproto_resync_entry *e);
/* A stream waiting for AUTH_ANSWER or BOUND (or the answer to <enable/> or <resume/>) asks again
 * (appends the frame to out): the front drops such requests it held or had sent before the link
 * came back, since their answers may be lost. A stream with stream management tells the SM where
 * it stands (SYNC: docs/smproto.md §6). */
void c2s_stream_reissue(c2s_stream *s, buf *out);

/* A stanza from the SM (C2S_ACT_DELIVER) went into the client's output queue: XEP-0198 counts it
 * (and may add an <r/> to out). Returns actions (C2S_ACT_CLOSE when the client has too many
 * unacknowledged). */
unsigned c2s_stream_delivered(c2s_stream *s);

/* XEP-0198's time bound. A stanza written without an <r/> after it (fewer than <smacks>
 * <request_stanzas> are unacknowledged) leaves an acknowledgement due: the connection layer
 * notes when c2s_stream_ack_due() turned true, after any call, and once <request_wait> seconds
 * passed calls c2s_stream_request_ack(), which writes the <r/> to out (nothing when no longer
 * due: it was asked for, or everything was acknowledged, or the stream closed). */
bool c2s_stream_ack_due(const c2s_stream *s);
void c2s_stream_request_ack(c2s_stream *s);

/* State for the connection layer. */
bool c2s_stream_authenticated(const c2s_stream *s);
/* The bound full JID, or NULL. */
const char *c2s_stream_jid(const c2s_stream *s);
bool c2s_stream_closed(const c2s_stream *s);
/* A STANZA frame for this session was dropped as a duplicate (shard/dup_filter.h): with stream
 * management, the SM is told to forget its copy (it numbered it among those it keeps). */
void c2s_stream_duplicate(c2s_stream *s);
/* Whether the client's last CSI nonza was <inactive/> (XEP-0352; a stream starts active). */
bool c2s_stream_csi_inactive(const c2s_stream *s);

#endif
