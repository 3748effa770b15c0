/* tests/bench/loadgen/lg_conn.h — one simulated user's connection: TCP, TLS (direct or STARTTLS),
 * the XMPP client stream, SASL, resource binding, the RFC 3921 session when the server insists,
 * initial presence, whitespace keepalives, and output with a bound; with --transport websocket,
 * the same over RFC 7395 (lg_ws.h translates at the edges: the upgrade, <open/>, frames); with --sm, XEP-0198 (enable
 * after bind, answering <r/>, asking for acks as Conversations does, resuming after a drop on the
 * next server address) over the state in lg_sm.h.
 *
 * A connection is DOWN until lg_conn_start, then logs in through the states below, and ends
 * (back to DOWN, every resource released) on a failure, on the server closing it, or, in warm-up
 * mode, once it has logged in and out. Its owner learns of each through the hooks in lg_env; a
 * hook may start other connections, or this one again from a later timer, but the connection is
 * already DOWN when `ended` runs.
 *
 * The stream is parsed by core/xmlstream (expat): whatever order, whitespace, quoting or xml:lang
 * the server uses, the connection sees element trees. A <stream:error> or a SASL <failure> ends a
 * login with its condition in the reason.
 *
 * Thread rules: one thread, the event loop's; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_CONN_H
#define JABSHARD_LOADGEN_LG_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/buf.h"
#include "core/evloop.h"
#include "core/xml.h"
#include "core/xmlstream.h"
#include "tests/bench/loadgen/lg_net.h"
#include "tests/bench/loadgen/lg_options.h"
#include "tests/bench/loadgen/lg_sasl.h"
#include "tests/bench/loadgen/lg_sm.h"
#include "tests/bench/loadgen/lg_ws.h"

/* Past this many unwritten bytes a connection takes no more messages (lg_conn_can_send): the
 * generator never buffers without bound when a server stops reading. */
#define LG_CONN_TX_LIMIT 65536

typedef enum {
    LG_CONN_DOWN,
    LG_CONN_CONNECTING,   /* TCP connect in progress */
    LG_CONN_TLS,          /* TLS handshake (direct TLS, or after <proceed/>) */
    LG_CONN_FEATURES,     /* header sent; waiting for <stream:features> */
    LG_CONN_STARTTLS,     /* <starttls/> sent */
    LG_CONN_AUTH,         /* SASL exchange */
    LG_CONN_BIND,         /* bind iq sent */
    LG_CONN_SESSION,      /* session iq sent */
    LG_CONN_ENABLE,       /* --sm: <enable/> sent after the bind, waiting for <enabled/> */
    LG_CONN_RESUME,       /* --sm: <resume/> sent instead of the bind, waiting for <resumed/> */
    LG_CONN_UP,           /* logged in, initial presence sent */
    LG_CONN_CLOSING,      /* warm-up: </stream:stream> sent, waiting for the server's */
} lg_conn_state;

typedef enum {
    LG_END_FAILED,        /* the login did not complete */
    LG_END_DROPPED,       /* it had logged in; the server or the network ended it */
    LG_END_LOGGED_OUT,    /* warm-up: logged in and out */
} lg_conn_end;

typedef struct lg_conn lg_conn;

typedef struct lg_conn_hooks {
    /* Logged in: latency from connect start to the bind (or session, or <enabled/>) result;
     * presence is out. Or resumed (c->resumed): latency from connect start to <resumed/>. */
    void (*up)(void *ctx, lg_conn *c, uint64_t latency_ns);
    /* The connection ended and is DOWN again; why is for the log. */
    void (*ended)(void *ctx, lg_conn *c, lg_conn_end how, const char *why);
    /* A <message/>, an iq result or error (an answer to the rounds' requests), or with --muc a
     * <presence/>, that arrived while up. The tree is the connection's: read it, do not keep it,
     * and do not end or start connections from here. */
    void (*message)(void *ctx, lg_conn *c, const xml_node *stanza, xml_arena *arena);
} lg_conn_hooks;

/* What every connection shares: set up once by the program. */
typedef struct lg_env {
    const lg_options *opt;
    evloop *loop;
    lg_net *net;
    SSL_CTX *tls;                 /* NULL with --tls none */
    lg_scram_cache *scram;
    lg_sm_stats *sm_stats;        /* with --sm; NULL without */
    lg_conn_hooks hooks;
    void *hooks_ctx;
} lg_env;

struct lg_conn {
    lg_env *env;
    uint32_t index;           /* user index: user number opt->first + index */
    lg_conn_state state;
    uint8_t stage;            /* which features the next <stream:features> should offer */
    uint8_t after_feed;       /* what to do when the parser stops (restart, TLS, end) */
    bool warmup;              /* log out after SASL instead of binding */
    bool in_feed;             /* inside xmlstream_feed: ending must wait until it returns */
    bool session_needed;      /* the features offered <session/> without <optional/> */
    bool write_blocked;       /* the last write would block: wait for writability */
    bool sm_offered;          /* the post-auth features offered urn:xmpp:sm:3 */
    bool was_up;              /* it has logged in once: with --sm, reconnects move on */
    bool resumed;             /* the last login was a resumption */
    uint32_t hop;             /* with --sm: how many times it moved to the next address */
    int fd;
    evloop_io io;
    SSL *ssl;
    xmlstream *xs;
    buf tx;                   /* bytes not yet accepted by the socket (or TLS) */
    lg_sasl sasl;
    timer deadline;           /* the login timeout; the warm-up's logout timeout */
    timer keepalive;
    uint64_t start_ns;        /* connect start */
    lg_sm sm;                 /* XEP-0198 state; outlives the connection for a resume */
    lg_ws ws;                 /* --transport websocket: the framing (lg_ws.h) */
    char why[128];            /* the reason of an end decided inside the parser */
};

void lg_conn_init(lg_conn *c, lg_env *env, uint32_t index);
/* Connects and logs in; warmup: logs in and out (LG_END_LOGGED_OUT). c must be DOWN. An
 * immediate failure (no descriptor, no route) ends it, with the hook, before this returns. */
void lg_conn_start(lg_conn *c, bool warmup);
/* Ends c without calling any hook (shutdown). */
void lg_conn_abort(lg_conn *c);

static inline bool lg_conn_is_up(const lg_conn *c) { return c->state == LG_CONN_UP; }
/* Up, and its unwritten output below LG_CONN_TX_LIMIT. */
static inline bool lg_conn_can_send(const lg_conn *c)
{
    return c->state == LG_CONN_UP && buf_len(&c->tx) < LG_CONN_TX_LIMIT;
}
/* Queues bytes and writes what the socket takes. A write error ends the connection (its hook
 * runs before this returns). For stanzas, check lg_conn_can_send first. */
void lg_conn_send(lg_conn *c, const char *data, size_t len);
/* Sends a stanza: as lg_conn_send, and with stream management on, counted, queued until the
 * server acknowledges it, and (messages) followed by an <r/> when --sm-ack-every says so. */
void lg_conn_send_stanza(lg_conn *c, const char *data, size_t len, bool message);
/* Test hook: closes the socket at once, with no </stream> and a TCP reset, as a phone losing its
 * network would leave the server; the ended hook runs (LG_END_DROPPED when it was up). */
void lg_conn_cut(lg_conn *c);
/* Frees the parser's working memory while the connection sits idle (core/xmlstream.h). */
void lg_conn_shrink(lg_conn *c);

/* The user's name (from --user-format). */
void lg_conn_user(const lg_conn *c, char *out, size_t cap);

/* The name of el's first child element in namespace ns other than <text/>: the condition of a
 * stanza error (ns: urn:ietf:params:xml:ns:xmpp-stanzas), a stream error or a SASL failure;
 * "(none)" when there is none. */
const char *lg_conn_condition(const xml_node *el, const char *ns);

#endif
