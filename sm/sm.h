/* sm/sm.h — the session manager's core: sessions, online users and their rosters, routing
 * (RFC 6121 §8), stanza errors (RFC 6120 §8.3), and the registry that feature modules
 * (sm/mod_*.c) hook into. The core only routes; every protocol feature is a module.
 *
 * The core knows nothing of sockets or SQL threads. What it sends goes through an sm_transport
 * (sm/link_sm in the program, a recorder in the unit tests); what it stores goes through a
 * submit function (xdbsql_submit in the program, a synchronous queue in the tests). Storage
 * answers come back as callbacks on the routing thread, so nothing here ever waits.
 *
 * Lifetimes: a session lives from BIND (or RESYNC) to END, its link's loss, or replacement. An
 * sm_user exists while the user has a session or the core has work waiting for their roster;
 * callbacks that outlive a call never hold session or user pointers: they look sessions up by
 * (link serial, sid) and users by bare JID again.
 *
 * Thread rules: everything here runs on the routing thread.
 */
#ifndef JABSHARD_SM_SM_H
#define JABSHARD_SM_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/jid.h"
#include "core/metrics.h"
#include "core/xml.h"
#include "sm/config.h"
#include "sm/custody.h"
#include "sm/stanza.h"
#include "sm/strset.h"
#include "xdbsql/xdbsql.h"

#define SM_NS_COMPONENT "jabber:component:accept"

typedef struct sm sm;
typedef struct sm_link sm_link;
typedef struct sm_user sm_user;
typedef struct sm_session sm_session;
/* sm_session_revive's callback. */
typedef void (*sm_revived_fn)(sm *s, sm_session *sess, void *ctx);

/* ---- the outside world ---- */

/* link is the handle given to sm_link_up. */
typedef struct sm_transport {
    void (*stanza)(void *ctx, void *link, uint64_t sid, const char *xml, size_t len);
    void (*auth_answer)(void *ctx, void *link, uint64_t sid, uint8_t status,
                        const xdb_credentials *creds);
    void (*bound)(void *ctx, void *link, uint64_t sid, uint8_t status, const char *full_jid);
    void (*end)(void *ctx, void *link, uint64_t sid, uint8_t reason, const char *text);
    /* A stanza for an XEP-0114 component link (serialized for its stream). */
    void (*component)(void *ctx, void *link, const char *xml, size_t len);
    /* What the front keeps for the session across a resync: its modules' STATE record
     * (docs/smproto.md §2), which the front returns untouched. */
    void (*state)(void *ctx, void *link, uint64_t sid, const uint8_t *state, size_t len);
    /* A module's message to the front's feature of the same name (a MODULE frame). */
    void (*module)(void *ctx, void *link, uint64_t sid, const char *name, const uint8_t *body,
                   size_t len);
} sm_transport;

typedef void (*sm_submit_fn)(void *ctx, xdb_request *r, xdb_callback cb, void *cbctx);

typedef struct sm_module sm_module;
/* cfg must outlive the sm. Loads the modules of the NULL-terminated table that cfg's <modules>
 * names (all of them when it names none; sm/modules.h has the built-in table), in the table's
 * order. NULL when a module cannot start (logged; an option's error is in cfg->cfg). */
sm *sm_new(const sm_config *cfg, const sm_module *const *modules, const sm_transport *t,
           void *transport_ctx, sm_submit_fn submit, void *submit_ctx);
/* Ends every session without telling anyone (the process is going away) and frees everything. */
void sm_free(sm *s);
const sm_config *sm_cfg(const sm *s);

/* ---- input from links ---- */

/* A front (frames) or a component (XML, its domain = service_id) is connected. */
sm_link *sm_link_up(sm *s, void *handle, const char *service_id, bool component);
/* The component link l is a federation link (role s2s): stanzas to domains neither served nor
 * of a component go to the s2s links up (one per remote domain, by hash), and it may send from
 * remote domains to ours only. */
void sm_link_set_s2s(sm *s, sm_link *l);
/* The component link l is a peer SM's, the owner of partition table index `index` (<partitions>,
 * sm/peer_route.c): stanzas to users of its partitions go to it, and it may send from its users
 * (or the domain) to ours only. */
void sm_link_set_peer(sm *s, sm_link *l, int index);
/* The link is gone: every session on it ends as with END (gone). */
void sm_link_down(sm *s, sm_link *l);

void sm_auth_query(sm *s, sm_link *l, uint64_t sid, const char *host, const char *user);
void sm_bind(sm *s, sm_link *l, uint64_t sid, const char *host, const char *user,
             const char *resource, uint8_t flags);
/* A session the front still has after a reconnect; restored bound (no BOUND answer), with the
 * STATE record the SM gave it (each module takes back its part), and its last broadcast presence
 * when not empty: on the front's first link during the start's wait (the session outlived the
 * previous SM) kept as it is, not broadcast again (mod_presence tells the session, once the wait
 * is over, of the contacts that did not come back); otherwise (the SM had ended the link's
 * sessions) processed as if the client had sent it again (contacts see it come back; it probes
 * theirs). */
void sm_resync(sm *s, sm_link *l, uint64_t sid, const char *full_jid, const uint8_t *state,
               size_t state_len, const char *presence);
void sm_end(sm *s, sm_link *l, uint64_t sid, uint8_t reason);
/* XEP-0077 from a client that has not authenticated; answered with a STANZA to sid. */
void sm_register(sm *s, sm_link *l, uint64_t sid, const char *host, const char *xml, size_t len);
/* A from-stamped stanza from a bound session. A message or iq from a session the SM does not know
 * (it ended while its frames were on their way, or the SM restarted and the front sent them again
 * after the resync) is routed by its stamped 'from' when that is a local user's full JID. */
void sm_session_stanza(sm *s, sm_link *l, uint64_t sid, const char *xml, size_t len);
/* A stanza the SM sent to sid that the front never wrote a byte of (UNDELIVERED; the session is
 * ending, or has just ended when it came while the stream was closing): undeliverable to that
 * full JID. A chat or normal message goes to offline storage as for a user with no available
 * resource; groupchat and iq get/set get <service-unavailable/> (RFC 6121 §8.5.3.2); the rest
 * (presence, headline, error, iq result) is dropped. */
void sm_undelivered(sm *s, sm_link *l, uint64_t sid, const char *xml, size_t len);
/* A message from a front's feature to the module of that name (a MODULE frame; name is nlen
 * bytes). One for a module that is not loaded is answered with an empty message of the same name,
 * so the front's feature knows it is not there. */
void sm_module_message(sm *s, sm_link *l, uint64_t sid, const char *name, size_t nlen,
                       const uint8_t *body, size_t len);
/* The program's clock, once a second or so (monotonic milliseconds): modules with deadlines
 * (SM_EV_TICK) act on it. sm_now_ms is its last value (0 before the first). */
void sm_tick(sm *s, int64_t now_ms);
int64_t sm_now_ms(const sm *s);
/* The wall clock, Unix epoch milliseconds (what is stored: archive times, deadlines that must
 * outlive the process). */
int64_t sm_wall_ms(void);
/* A front ended its resync (the empty RESYNC frame): stanzas held since the SM started for
 * users with no session are routed once every configured front has (sm/restart_wait.c). */
void sm_front_resynced(sm *s, sm_link *l);
/* A module restores sessions from storage after a start: until it is done, stanzas for users
 * without a session wait as they do for the fronts' resync (within <limits><resync_wait>). */
/* sm_shutdown or sm_free has begun: sessions end for good, nothing new starts. */
bool sm_stopping(const sm *s);
void sm_start_hold(sm *s);
void sm_start_done(sm *s);
/* The start's wait is on (SM_EV_START_DONE ends it; it may never begin: no fronts configured). */
bool sm_start_waiting(const sm *s);
/* A stanza from a component; takes arena. */
void sm_component_stanza(sm *s, sm_link *l, xml_node *node, xml_arena *arena);
/* Ends every session with END (shutdown) as a logout would (SM_EV_SESSION_END: unavailable
 * presence, last activity stored). From then on, unavailable presence for a local user not in
 * memory is dropped rather than loading them. The caller drains storage (xdbsql_close) before
 * the process exits. */
void sm_shutdown(sm *s);

/* Ends every session of a bare JID with END (kicked) to their fronts; for a full JID, only that
 * session. Returns how many sessions ended. */
size_t sm_kick(sm *s, const jid *j, const char *text);

/* Custody (docs/smproto.md §3): the ticket of the frame being processed. Whatever the core does
 * on its behalf (frames sent, storage requests, deferred work) holds it. The caller sets it around
 * each frame it hands the core and reads it when a transport callback sends a frame. */
custody_ticket sm_current_ticket(const sm *s);
/* Sets the current ticket; returns the previous one (to put back). */
custody_ticket sm_swap_ticket(sm *s, custody_ticket t);
/* The current barrier (sm/barrier.h): sets it, returns the previous one. */
typedef struct sm_barrier sm_barrier;
sm_barrier *sm_swap_barrier(sm *s, sm_barrier *b);

/* Counters, for logs and tests. */
typedef enum { SM_KIND_MESSAGE, SM_KIND_PRESENCE, SM_KIND_IQ, SM_KIND_OTHER, SM_KINDS } sm_kind;

typedef struct sm_stats {
    uint64_t sessions, users;       /* current */
    uint64_t detached;              /* sessions without a connection (XEP-0198 hibernation) */
    uint64_t loads_pending;         /* accounts loading or waiting to (after a restart, those
                                     * whose sessions were restored first) */
    uint64_t fronts_up, components_up;
    uint64_t stanzas_in[SM_KINDS];  /* from sessions, by kind */
    uint64_t bytes_in;
    uint64_t stanzas_out, bytes_out;    /* to sessions */
    metrics_histogram route_us;     /* a session's stanza, from its frame to routed */
    uint64_t dropped_stale;         /* frames for sessions that do not exist */
    uint64_t dropped_bad;           /* stanzas that did not parse */
    uint64_t dropped_too_big;       /* fan-out copies (sm_fanout) too big for a frame */
    uint64_t peer_out, peer_in;     /* <partitions>: stanzas sent to and taken from peer SMs, */
    uint64_t peer_bounced;          /* bounced because the peer's link was down, */
    uint64_t peer_refused;          /* refused from a peer (from or to outside its partitions) */
} sm_stats;
void sm_get_stats(const sm *s, sm_stats *out);
/* When sm_new made it (Unix epoch, ms): the uptime jabshardctl status shows. */
int64_t sm_started_ms(const sm *s);

/* ---- for modules ---- */

/* Routes st to its 'to' (or hands it to a module) and frees it. from must be set. */
void sm_route(sm *s, sm_stanza *st);
/* Sends st to one session as it is, and frees it. */
void sm_deliver(sm *s, sm_session *sess, sm_stanza *st);
/* One stanza to many sessions (a room's fan-out), serialized once whoever it goes to, each
 * session getting it addressed to itself as sm_deliver would send it. The fan-out owns st. One too
 * big for a frame is dropped (counted). */
typedef struct sm_fanout {
    sm_stanza *st;
    buf head, tail;         /* the serialized stanza before and after its 'to' value */
    int state;              /* 0: not serialized yet; 1: ready; -1: too big */
} sm_fanout;
sm_fanout sm_fanout_of(sm_stanza *st);
void sm_fanout_deliver(sm *s, sm_fanout *f, sm_session *sess);
void sm_fanout_free(sm_fanout *f);
/* Answers st (never an error or result) with a stanza error (RFC 6120 §8.3), routed back to its
 * sender; frees st. type: "cancel", "modify", "auth", "wait". */
void sm_bounce(sm *s, sm_stanza *st, const char *type, const char *condition);
/* The same with a human-readable <text/> (which limit was reached, and what it is). */
void sm_bounce_text(sm *s, sm_stanza *st, const char *type, const char *condition,
                    const char *text);
/* The same with an application-specific condition <app_name xmlns=app_ns/> too (app_ns NULL:
 * none; text NULL: none): XEP-0050's <bad-sessionid/>. */
void sm_bounce_app(sm *s, sm_stanza *st, const char *type, const char *condition,
                   const char *app_ns, const char *app_name, const char *text);
/* st cannot be sent or stored as it is (larger than a frame carries): its sender hears so
 * (<policy-violation/> with XEP-0182's stanza-too-big), without the payload; frees st. */
void sm_bounce_too_big(sm *s, sm_stanza *st);
/* An <iq type='result'/> answering iq st (which is freed), with payload (copied) when not NULL. */
void sm_iq_result(sm *s, sm_stanza *st, const xml_node *payload);

/* An iq handler (declared by a module, sm/module.h) gets the iq and its payload element; it owns
 * st (answers it or takes it). The router answers <service-unavailable/> when none matches. */
enum { SM_IQ_HOST = 1, SM_IQ_BARE = 2 };
typedef void (*sm_iq_fn)(sm *s, sm_stanza *st, xml_node *payload);
/* Disco features of the server (XEP-0030): the loaded modules', in their order. */
size_t sm_features(const sm *s, const char *const **out);

/* Events. A hook returning true stops the event there. */
typedef enum {
    SM_EV_PRESENCE_OUT,     /* presence from a local session: stanza, session */
    SM_EV_PRESENCE_IN,      /* presence to a local user whose roster is loaded: stanza, user */
    SM_EV_MESSAGE_OFFLINE,  /* a message for a user with no session to take it: stanza */
    SM_EV_SESSION_AVAILABLE,/* a session sent its initial presence: session */
    SM_EV_SESSION_END,      /* a session is ending (still in the tables): session */
    SM_EV_REGISTER,         /* XEP-0077 iq from an unauthenticated client: stanza, link_serial,
                             * sid, host; answer with sm_send_unbound */
    SM_EV_USER_LOAD,        /* the user's roster is about to be loaded: user. Requests a module
                             * submits for the user now are answered before the roster (same
                             * worker, in order), so its data is there when sessions bind */
    SM_EV_OUTBOUND,         /* a stanza from a user in memory is being routed: stanza, user,
                             * session (its origin, or NULL when the server made it). A hook
                             * returning true has consumed the stanza (took it, or the
                             * router drops it) */
    SM_EV_INBOUND,          /* a message or iq to a local user is being routed: stanza, user
                             * (NULL when not in memory; a message that could be stored offline
                             * or a bare-JID iq get/set first waits for the user to load, so
                             * their data, the block list, is there). true: consumed */
    SM_EV_MESSAGE_DELIVERED,/* a message reached the user's sessions: stanza, user, recipients */
    SM_EV_ROSTER_CHANGED,   /* a roster item was stored (or removed): user (version is the
                             * roster's new one), item, removed */
    SM_EV_SESSION_LOST,     /* a session's connection is gone (its front sent END, or the link
                             * went down): session. A hook returning true keeps the session,
                             * detached (sm_session_detached), until the module attaches it to
                             * another connection or ends it; otherwise it ends */
    SM_EV_SESSION_SENT,     /* a stanza was serialized for a session: session, xml, len (the
                             * frame's payload). The core sends it unless the session is detached
                             * or a hook returned true (a module keeps it from the connection) */
    SM_EV_UNDELIVERED,      /* a front gave back a stanza it never wrote (UNDELIVERED, or unacked
                             * on a lost link): link_serial, sid, session (NULL when unknown), xml,
                             * len. true: a module has it, no fate is applied */
    SM_EV_TICK,             /* sm_tick: nothing (sm_now_ms says when) */
    SM_EV_SESSION_ATTACHED, /* a session has a connection again: a detached one attached
                             * (sm_session_attach, or its front's resync), or one a front's resync
                             * restored (after its STATE record): session */
    SM_EV_FRONT_UP,         /* a front's link is up and its resync done (the end of its
                             * RESYNC): link_serial */
    SM_EV_START_DONE,       /* the start's wait is over (sm_start_waiting): every front has
                             * re-announced its sessions and the modules restored theirs, or
                             * the wait ran out: nothing */
    SM_EV_USER_READY,       /* the user's load is done: user (exists says whether the account
                             * does). Sessions a restart restored before it have their account
                             * from now on (docs/smproto.md §2, "Presence in a resync") */
    SM_EV_METRICS,          /* the metrics endpoint is answering: out, where a module writes its
                             * families (core/metrics.h, names jabshard_sm_MODULE_...) */
    SM_EV_COUNT
} sm_event_kind;
typedef struct sm_roster_item sm_roster_item;
typedef struct sm_event {
    sm_stanza *stanza;      /* owned by the router unless taken */
    sm_session *session;
    sm_user *user;
    sm_session *const *recipients;
    size_t nrecipients;
    uint64_t link_serial, sid;
    const char *host;
    const sm_roster_item *item;
    bool removed;
    xml_arena *arena;       /* a module's event: what it is building and where (disco-info: the */
    xml_node *node;         /* server's <query/>, to which hooks add) */
    const char *xml;        /* a serialized stanza (SM_EV_SESSION_SENT, SM_EV_UNDELIVERED) */
    size_t len;
    const char *name, *id;  /* a module's event: what it is about (pep-published: the node and
                             * the item id, the payload in xml) */
    buf *out;               /* SM_EV_METRICS */
} sm_event;
typedef bool (*sm_hook_fn)(sm *s, sm_event *ev);
/* Runs the hooks of kind (declared by the modules, in their order); true when one stopped the
 * event. */
bool sm_fire(sm *s, sm_event_kind kind, sm_event *ev);

/* Sends a stanza to a session id that is not bound (the answer to REGISTER). */
void sm_send_unbound(sm *s, uint64_t link_serial, uint64_t sid, const xml_node *node);

/* Storage. */
void sm_submit(sm *s, xdb_request *r, xdb_callback cb, void *ctx);
/* A request for op on the account of j (its node and domain). */
xdb_request *sm_user_request(xdb_op op, const jid *j);
/* j's account as storage names it: its node ("" when none) and domain, terminated. */
void sm_account_names(const jid *j, char node[JID_PART_MAX + 1], char host[JID_PART_MAX + 1]);
/* Storage lanes: storage runs the requests of a lane in the order submitted, and every request
 * of an account in the account's lane (xdbsql_lane), so a request that holds the work of several
 * accounts of one lane, submitted as one of them, keeps each account's order. lane_of gets the
 * submit function's context. Until set: one lane. */
typedef int (*sm_lane_fn)(void *submit_ctx, const char *host, const char *user);
void sm_set_storage_lanes(sm *s, int count, sm_lane_fn lane_of);
int sm_storage_lanes(const sm *s);
int sm_storage_lane(const sm *s, const char *host, const char *user);
/* The user in memory whose account a finished request was for, or NULL. */
sm_user *sm_user_of_request(const sm *s, const xdb_request *r);
/* A fresh id for an iq the server sends (a roster or block list push): prefix and a counter. */
void sm_make_id(sm *s, const char *prefix, char out[32]);

/* Hosts and addressing. */
bool sm_is_local_host(const sm *s, const char *domain, size_t len);
/* A domain a module serves inside the SM (a group chat service): every stanza to it, or to a JID
 * at it, goes to fn, which owns st. false (logged) when the domain is a host, a configured
 * link's, or served already. Stanzas to it wait during the start's wait (sm_start_waiting). */
typedef void (*sm_domain_fn)(sm *s, sm_stanza *st, void *ctx);
bool sm_serve_domain(sm *s, const char *domain, sm_domain_fn fn, void *ctx);
/* The domain of a module's service (what: its name, for the log) for host, as configured or by
 * default: parsed into *out (the caller frees it), true. A configured <service>'s id (an external
 * component has the domain) gives true with *out zeroed (no domain_len): the host gets no
 * built-in service (logged). false (logged) when it is not a domain. */
bool sm_service_domain(const sm_config *c, const char *what, const char *host,
                       const char *domain, jid *out);
bool sm_is_served_domain(const sm *s, const char *domain, size_t len);
bool sm_is_local_user(const sm *s, const jid *j);   /* node@ourhost */
/* node@ourhost whose partition is this SM's (every local user without <partitions>): who may
 * authenticate, bind or be restored here (sm/peer_route.c). */
bool sm_is_own_user(const sm *s, const jid *j);

/* Sessions. */
struct sm_session {
    sm_link *link;
    uint64_t sid;
    uint64_t link_serial;       /* link's serial while attached, 0 detached: with sid, its key */
    jid jid;                    /* full JID */
    sm_user *user;
    sm_session *next;           /* in user->sessions */
    int priority;
    bool available;             /* has sent available presence and not unavailable since */
    sm_stanza *presence;        /* the last available presence it broadcast, or NULL */
    int64_t since_ms;           /* when it was bound (Unix epoch, ms) */
    uint64_t stanzas_in;        /* STANZA frames its connections sent (parsed or not) */
    unsigned char *ext;         /* the modules' state (sm_session_state, sm/module.h) */
};
sm_session *sm_session_find(const sm *s, const jid *full);
/* A bind, resync or revival of full waits for its account's roster: the session is coming. */
bool sm_session_pending(const sm *s, const jid *full);
/* A module changed what its pack writes for sess (sm/module.h): sends the session's STATE record
 * to its front. */
void sm_session_state_changed(sm *s, sm_session *sess);
/* sess's STATE record as its front keeps it: every module's pack. */
void sm_session_pack(const sm *s, const sm_session *sess, buf *out);
/* Sessions without a connection (SM_EV_SESSION_LOST): link is NULL and sid 0 while detached;
 * stanzas for them reach the modules (SM_EV_SESSION_SENT) and nothing is sent. */
bool sm_session_detached(const sm_session *sess);
/* Gives sess the connection (l, sid), which has no session: a detached session is attached; an
 * attached one has its old connection closed first (END replaced, which the front answers with
 * <conflict/>). The front is not told of the new one (the module answers it). A resync from a
 * front for the full JID of a detached session attaches it too (the front kept the connection
 * while its link was down). Fires SM_EV_SESSION_ATTACHED. */
void sm_session_attach(sm *s, sm_session *sess, sm_link *l, uint64_t sid);
/* Ends a session as a logout would (SM_EV_SESSION_END: unavailable presence, last activity);
 * an attached one's front gets END (reason, text). */
void sm_session_end(sm *s, sm_session *sess, uint8_t reason, const char *text);
/* Restores a session that has no connection, as it was when its connection was lost (for a
 * module that keeps such sessions in storage across an SM restart): once the user is loaded, a
 * detached session for full is made, the modules' STATE record restored (restore), and presence
 * (serialized, or NULL) made its last broadcast one without broadcasting it (its contacts had
 * it); then fn(s, sess, ctx) runs. sess is NULL when none was made: the JID has a session already
 * (a front's resync came first), the account is gone, the user could not be loaded, or the SM
 * stops first. */
void sm_session_revive(sm *s, const jid *full, const uint8_t *state, size_t len,
                       const char *presence, sm_revived_fn fn, void *ctx);
/* Sends a serialized stanza to an attached session's connection as it is (no SM_EV_SESSION_SENT):
 * for a module replaying what it keeps. */
void sm_session_send_raw(sm *s, sm_session *sess, const char *xml, size_t len);
/* What becomes of a serialized stanza for full JID to that cannot be delivered there (the fates
 * of sm_undelivered: offline, bounce or drop). */
void sm_undeliverable(sm *s, const jid *to, const char *xml, size_t len);
/* The session behind (link serial, sid), or NULL. */
sm_session *sm_session_lookup(const sm *s, uint64_t link_serial, uint64_t sid);
uint64_t sm_link_serial(const sm_link *l);
/* The link of that serial, or NULL when it is gone. */
sm_link *sm_link_find(const sm *s, uint64_t serial);
/* The link's service id (the front's or the component's name). */
const char *sm_link_service(const sm_link *l);
/* How many links of that service id are up (a configured front or component: 0 or 1). */
size_t sm_link_count(const sm *s, const char *service_id);
/* Calls fn for every bound session (in no particular order); fn must not end sessions. */
void sm_each_session(sm *s, void (*fn)(sm_session *sess, void *ctx), void *ctx);

/* Online (or roster-loaded) users. */
struct sm_roster_item {
    char *jid;              /* bare */
    char *name;             /* NULL when none */
    xdb_subscription sub;
    bool ask;               /* outbound request pending */
    char **groups;
    size_t ngroups;
};

struct sm_user {
    jid jid;                /* bare */
    sm_session *sessions;
    bool loaded;            /* the roster below is current */
    bool exists;            /* the account exists (known once loaded) */
    bool loading;           /* private: its load is under way */
    bool background_queued; /* private: in the queue of background loads (held there) */
    int64_t version;        /* roster version (XEP-0237) */
    sm_roster_item *items;
    size_t nitems, items_cap;
    xdb_pending *pending;   /* inbound subscription requests awaiting an answer */
    size_t npending;
    unsigned char *ext;     /* the modules' state (sm_user_state, sm/module.h) */
    struct sm_deferred *deferred, *deferred_tail;   /* private: work waiting for the roster */
    struct sm_user *load_next;  /* private: in the core's queue of loads not started yet */
    unsigned holds;         /* private: the core is using it; not freed even when idle */
};
sm_user *sm_user_find(const sm *s, const jid *bare);
/* The same for a bare JID as a roster item keeps it (its normalized string). */
sm_user *sm_user_find_bare(const sm *s, const char *bare_jid);
sm_roster_item *sm_roster_find(sm_user *u, const char *bare_jid);
/* Adds an empty item (subscription none) for bare_jid, or returns the existing one. */
sm_roster_item *sm_roster_add(sm_user *u, const char *bare_jid);
void sm_roster_delete(sm_user *u, const char *bare_jid);
/* Stores item (or removes it when remove) and then pushes it, with the new version, to the
 * interested sessions (RFC 6121 §2.1.6). */
void sm_roster_store(sm *s, sm_user *u, const sm_roster_item *item, bool remove);
/* Whether adding an item for bare_jid would take the roster past limits.roster_items (false when
 * the item exists). */
bool sm_roster_full(const sm *s, const sm_user *u, const char *bare_jid);
/* Pending inbound subscription requests (kept in the user and in storage). What is kept of the
 * request is its addresses, status and nick (XEP-0172), cut to a few hundred bytes each. Adding
 * one for a new requester past limits.pending is refused: returns false, nothing stored. */
bool sm_pending_has(const sm_user *u, const char *bare_jid);
bool sm_pending_add(sm *s, sm_user *u, const char *bare_jid, const sm_stanza *subscribe);
void sm_pending_remove(sm *s, sm_user *u, const char *bare_jid);

/* Helpers for building XML. */
/* Parses one stanza from bytes (for stored XML); NULL when it is not exactly one element. */
sm_stanza *sm_parse(sm *s, const char *xml, size_t len);

#endif
