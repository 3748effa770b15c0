/* sm/link_sm.h — the SM's end of smproto links (docs/smproto.md): listening on every
 * <service><accept>, the XEP-0114 opening (stream header, stream id, constant-time handshake
 * check), the switch to frames on <smproto version='N'/> (§1: the front's instance and what it
 * has had acknowledged; the answer says what the SM has received), keepalives (§4), and plain
 * XEP-0114 components that never switch and keep speaking XML. Which of the two a link is comes
 * from its <service role='...'>: a component that asks for frames, or a front that sends XML
 * stanzas instead, gets <not-authorized/> and is closed. A peer SM (<partitions>) speaks XML like
 * a component, either accepted here or opened by this SM (link_sm_connect: the client side of
 * the same handshake).
 *
 * The owner (sm/server.c) sees a link once it is up: a front's frames (PING and PONG are answered
 * here and never reach it) or a component's stanzas, and finally its loss. Only one live link per
 * service id: a link that completes the handshake for an id replaces the previous one, which is
 * closed (its owner gets `down` first).
 *
 * Output is appended to link_sm_out() and written by link_sm_flush_all(), which the owner calls
 * before its loop sleeps, so many frames leave in one write.
 *
 * Thread rules: everything runs on the thread of the evloop given to link_sm_server_new.
 */
#ifndef JABSHARD_SMPROTO_LINK_SM_H
#define JABSHARD_SMPROTO_LINK_SM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/evloop.h"
#include "core/xml.h"
#include "sm/config.h"
#include "smproto/frame.h"

typedef struct link_sm link_sm;
typedef struct link_sm_server link_sm_server;

/* What a front says when it asks for frames (docs/smproto.md §1). */
typedef struct link_sm_hello {
    const char *instance;   /* the front process's random instance id */
    uint64_t acked;         /* counted frames the SM has acknowledged to this instance */
} link_sm_hello;

typedef struct link_sm_handlers {
    /* The link is ready: a front that switched to frames (hello set; returns the number of the
     * last of its counted frames the SM has received, which the answer carries), or a component
     * as soon as its handshake is accepted (hello NULL; the result is ignored). */
    uint64_t (*up)(void *ctx, link_sm *l, const link_sm_hello *hello);
    /* A front's frame (header checked, payload not). The handler may close the link. */
    void (*frame)(void *ctx, link_sm *l, const smproto_frame *f);
    /* A component's stanza; the handler owns arena. */
    void (*stanza)(void *ctx, link_sm *l, xml_node *stanza, xml_arena *arena);
    /* An up link is gone. Nothing may be sent on it any more. */
    void (*down)(void *ctx, link_sm *l);
} link_sm_handlers;

#define LINK_SM_PING_MS 30000u      /* PING after this much silence */
#define LINK_SM_DEAD_MS 90000u      /* close after this much silence */
#define LINK_SM_MAX_OUT (256u << 20) /* unwritten output past which the peer is given up on */
#define LINK_SM_KEEP_OUT (1u << 20)  /* an output buffer up to this size is kept once written */

/* services[0..n) must outlive the server. */
link_sm_server *link_sm_server_new(evloop *loop, const sm_service *services, int n,
                                   const link_sm_handlers *h, void *ctx);
/* Listens on every service's accept address (services sharing an address share a listener).
 * Returns 0, or -1 with the reason in err. */
int link_sm_listen(link_sm_server *srv, char *err, size_t errlen);
/* Closes every link (without calling down) and listener, and frees the server. */
void link_sm_server_free(link_sm_server *srv);

/* Takes a connected socket (accepted here, or one end of a socketpair in the tests). */
link_sm *link_sm_adopt(link_sm_server *srv, int fd, const char *peer);

/* A link this SM opens to a peer SM (sm/peer_link.c): fd is connecting (core/tcp_connect.h); once
 * it is connected, our stream header names self_id (the service the peer knows us as), our
 * <handshake/> proves svc->secret, and the link is up when the peer accepts it, then XML both ways
 * as an accepted peer's (the owner's up, stanza and down as for any link). closed is called when
 * it closes, up or not (was_up says which), except when the server is freed. NULL if fd cannot be
 * watched (closed). svc and self_id must outlive the link. */
typedef void (*link_sm_closed_fn)(void *ctx, link_sm *l, bool was_up);
link_sm *link_sm_connect(link_sm_server *srv, int fd, const sm_service *svc, const char *self_id,
                         link_sm_closed_fn closed, void *ctx);

/* The service id the link authenticated as (NULL before the handshake). */
const char *link_sm_service(const link_sm *l);
/* Its <service role>: front, component, s2s or peer (0 before the header names the service). */
sm_role link_sm_role(const link_sm *l);
void link_sm_set_data(link_sm *l, void *data);
void *link_sm_data(const link_sm *l);
/* Where frames (or, for a component, XML) to send are appended. */
buf *link_sm_out(link_sm *l);
/* Closes the link now (down runs if it was up); why goes to the log. */
void link_sm_close(link_sm *l, const char *why);
/* Writes what every link has queued; frees closed links. Call before the loop sleeps. */
void link_sm_flush_all(link_sm_server *srv);

#endif
