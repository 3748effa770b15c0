/* s2s/s2s_server.h — the state of one jabshard-s2s process, which its parts share: the loop,
 * the configuration, TLS and DNS, the link to the SM (s2s_link.c), the connections
 * (s2s_conn.c) and the outgoing routes, one per (local domain, remote domain) pair
 * (s2s_route.c), and the counters the log reports.
 *
 * How a stanza crosses: from the SM (s2s_link) to its route, which holds it while it resolves,
 * connects and authenticates (bounded, timed), then writes it on its stream; from a remote
 * server's authenticated incoming stream (s2s_conn) to the SM. The SM never waits on a remote
 * server: everything slow happens here.
 *
 * Thread rules: one thread, the loop's.
 */
#ifndef JABSHARD_S2S_S2S_SERVER_H
#define JABSHARD_S2S_S2S_SERVER_H
#include <stdbool.h>
#include <stdint.h>
#include "core/evloop.h"
#include "core/xml.h"
#include "s2s/resolve.h"
#include "s2s/s2s_config.h"
#include "s2s/s2s_stream.h"
#include "s2s/s2s_tls.h"

typedef struct s2s_conn s2s_conn;
typedef struct s2s_route s2s_route;
typedef struct s2s_link s2s_link;

typedef struct s2s_counters {
    uint64_t stanzas_in, stanzas_out, bounced, refused_streams;
    uint64_t conns_in, conns_out, auth_sasl, auth_dialback, auth_cert, auth_failed;
} s2s_counters;

typedef struct s2s_server {
    evloop *loop;
    const s2s_config *cfg;
    s2s_tls *tls;
    s2s_resolver *dns;
    s2s_stream_config stream_cfg;
    s2s_link *link;
    s2s_conn *conns;             /* every connection, both directions */
    unsigned nconns_in;
    uint64_t next_conn_id;
    s2s_route **routes;          /* hash table of routes by (local, remote) */
    size_t nroutes, route_slots;
    s2s_counters count;
} s2s_server;

/* ---- s2s_conn.c: connections ---------------------------------------------------------------- */

/* An accepted socket (direct_tls: XEP-0368, TLS before the stream). */
void s2s_conn_accept(s2s_server *srv, int fd, bool direct_tls, const char *peer);
/* A connected (or connecting) socket for a route. */
s2s_conn *s2s_conn_connect(s2s_server *srv, s2s_route *r, int fd, bool direct_tls,
                           const char *peer);
/* The connection with this id, if it is still open. */
s2s_conn *s2s_conn_find(s2s_server *srv, uint64_t id);
uint64_t s2s_conn_id(const s2s_conn *c);
s2s_stream *s2s_conn_stream(s2s_conn *c);
/* Writes what the stream holds (after the caller added to it). */
void s2s_conn_flush(s2s_conn *c);
/* Closes now (the stream's output is tried once); the route, if any, is told. */
void s2s_conn_close(s2s_conn *c, const char *why);
/* The route gives the connection up (as its outgoing stream or its bidi one): it will not be told
 * of its end. */
void s2s_conn_forget_route(s2s_conn *c);
/* Writes the output of every connection that has some (once per loop iteration, before it
 * sleeps: the stanzas routed in one iteration leave in one write, one TLS record). */
void s2s_conns_flush_pending(s2s_server *srv);
/* Output waiting on the connection, for the route's bound. */
size_t s2s_conn_pending(const s2s_conn *c);
/* The SM link's backpressure: incoming connections stop reading while it is down or full. */
void s2s_conns_pause(s2s_server *srv, bool pause);
/* Ends every stream with <system-shutdown/> and frees the connections (at exit). */
void s2s_conns_shutdown(s2s_server *srv);
/* Open connections by direction (metrics). */
void s2s_conns_count(const s2s_server *srv, unsigned *in, unsigned *out);
/* Incoming streams authenticated for remote at the moment. */
unsigned s2s_conns_for_domain(s2s_server *srv, const char *remote);

/* ---- s2s_route.c: outgoing routes ------------------------------------------------------------ */

/* A stanza from the SM (its namespace already jabber:server) to remote from local: written, held
 * or bounced. Takes arena. */
void s2s_route_stanza(s2s_server *srv, const char *local, const char *remote, xml_node *st,
                      xml_arena *arena);
/* Dialback as the receiving server: ask remote's authoritative server about key (sent by remote
 * on the incoming connection conn_id for the stream stream_id); the answer reaches that
 * connection's stream by s2s_stream_db_result. */
void s2s_route_verify(s2s_server *srv, const char *local, const char *remote, uint64_t conn_id,
                      const char *stream_id, const char *key);
/* From the route's connection. */
void s2s_route_stream_ready(s2s_route *r);
void s2s_route_authed(s2s_route *r);
void s2s_route_verify_answer(s2s_route *r, const char *id, bool valid);
void s2s_route_conn_closed(s2s_route *r, bool was_authed, const char *why);
/* XEP-0288: an incoming stream authenticated remote for local and may carry our stanzas to it:
 * the route for the pair sends on it while it has no outgoing stream of its own. Returns the
 * route (NULL over <max_routes>); its end is told by s2s_route_bidi_closed. */
s2s_route *s2s_route_attach_bidi(s2s_server *srv, const char *local, const char *remote,
                                 s2s_conn *c);
void s2s_route_bidi_closed(s2s_route *r);
void s2s_routes_free(s2s_server *srv);
const char *s2s_route_local(const s2s_route *r);
const char *s2s_route_remote(const s2s_route *r);

/* ---- s2s_link.c: the SM ---------------------------------------------------------------------- */

s2s_link *s2s_link_new(s2s_server *srv);
void s2s_link_free(s2s_link *l);
/* A stanza from a remote server (namespace jabber:server) to the SM. Takes arena. */
void s2s_link_send(s2s_link *l, xml_node *st, xml_arena *arena);
/* Writes what s2s_link_send gathered (once per loop iteration, before it sleeps). */
void s2s_link_flush(s2s_link *l);
/* Whether incoming connections may read: the link is up and not congested. */
bool s2s_link_open(const s2s_link *l);

#endif
