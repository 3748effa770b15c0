/* sm/core.h — what the files of the SM's core share and nobody else sees: the core's state
 * (struct sm), links, the work that waits for a user to load, and the functions one core file
 * calls in another (prefixed smc_). The core is sm.c (life, storage, parsing), stanza.c (the
 * stanza value, errors), registry.c (handlers, hooks, features), users.c (users, roster caches,
 * pending requests, loading), sessions.c (links, binding, ending), route.c (routing and
 * sending) and iq_out.c (the SM's own iq requests). Modules include sm/sm.h, never this.
 *
 * Thread rules: the routing thread.
 */
#ifndef JABSHARD_SM_CORE_H
#define JABSHARD_SM_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmlstream.h"
#include "sm/map.h"
#include "sm/module.h"
#include "sm/sm.h"

/* An error echoes the stanza it answers only below this many bytes of tree (RFC 6120 §8.3.1
 * leaves it optional): whoever provokes errors gets back about what they sent, never more. */
#define SM_BOUNCE_ECHO_MAX 1024
#define SM_NS_ERRORS "urn:xmpp:errors"

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* restart_wait.c: stanzas for users with no session, held after a start until the fronts have
 * re-announced their sessions. */
typedef struct sm_deferred sm_deferred;
typedef struct served_domain served_domain;
/* A configured front, during the start's wait. */
typedef struct wait_front {
    const char *id;
    bool linked;            /* a link of it has come up since the start */
    bool resynced;          /* and has ended its resync */
} wait_front;

typedef struct restart_wait {
    bool active;
    wait_front *fronts;     /* the configuration's fronts */
    int nexpected, resynced;
    int holds;              /* modules still restoring sessions (sm_start_hold) */
    int resyncs_pending;    /* re-announced sessions waiting for their account to load */
    int64_t deadline_ms;    /* 0 until the first tick */
    sm_deferred *held, **tail;
    size_t nheld;
} restart_wait;

struct sm_link {
    void *handle;
    uint64_t serial;        /* never reused: callbacks find the link again by it */
    char *service;
    bool component;         /* XML in jabber:component:accept: a component, or... */
    bool s2s;               /* ...a federation link (jabshard-s2s), for remote domains, or */
    int peer;               /* ...a peer SM's: its partition table index + 1 (0: not a peer) */
    bool quiet_resync;      /* its front's first link during the start's wait: the sessions it
                             * re-announces outlived the previous SM, their presence is kept
                             * without being sent again (docs/smproto.md §2, RESYNC) */
    sm_link *next;
};

/* peer_route.c (<partitions>): whether local user j belongs to another SM's partitions, then
 * its table index in *owner (false without <partitions>); the link up to the SM of that index, or
 * NULL; a stanza a peer SM sent (checked, then routed; taken). */
bool smc_partition_other(const sm *s, const jid *j, int *owner);
sm_link *smc_peer_link(const sm *s, int index);
void smc_peer_stanza(sm *s, sm_link *l, sm_stanza *st);

/* Work waiting for a user's roster to load. */
struct sm_deferred {
    struct sm_deferred *next;
    sm_stanza *stanza;      /* a stanza to route again (presence, or a message or iq that the
                             * user's block list may refuse); or NULL for a bind */
    uint64_t link_serial, sid;  /* the bind's session, or the stanza's origin when from_session */
    bool from_session;
    bool any_addressee;     /* held by smc_restart_wait_hold_any: routed again from the start */
    bool counted_resync;    /* a resync counted in restart.resyncs_pending */
    char *frame;            /* a session's stanza that came before its bind finished: handled
                             * (sm_session_stanza) once it has; frame_len bytes */
    size_t frame_len;
    jid full;
    bool resync;
    buf state;              /* a resync's STATE record */
    char *presence;         /* a resync's (or revival's) last broadcast presence, or NULL */
    sm_revived_fn revived;  /* a revival (sm_session_revive): its callback and context */
    void *revived_ctx;
    custody_ticket ticket;  /* the frame that caused it (docs/smproto.md §3) */
};

enum { SMC_IQ_GET = 1, SMC_IQ_SET = 2 };

/* Modules' state is carved out of one allocation with its session or user, after the struct;
 * each module's part starts on this alignment (malloc's). */
#define SMC_EXT_ALIGN 16
#define SMC_EXT_OFFSET(n) (((n) + SMC_EXT_ALIGN - 1) & ~(size_t)(SMC_EXT_ALIGN - 1))

/* An iq handler a module declared ("iq-get/host/NS:NAME"), parsed. */
typedef struct iq_handler {
    const char *ns;         /* the payload's namespace */
    const char *name;       /* its local name, or NULL for any */
    unsigned types;         /* SMC_IQ_GET | SMC_IQ_SET */
    unsigned where;         /* SM_IQ_HOST | SM_IQ_BARE */
    sm_iq_fn fn;
} iq_handler;

/* An event a module fires, and its hooks. */
typedef struct named_event {
    const char *name;
    sm_hook_fn *hooks;
    size_t nhooks;
} named_event;

/* A module loaded into this core: where its state lives in a session's and a user's block. */
typedef struct loaded_module {
    const sm_module *m;
    void *data;             /* what its init set (sm_module_set_data) */
    long long *ints;        /* its int_options' values, in their order */
    size_t session_off, user_off;
    bool ready;             /* its init ran: fini runs */
} loaded_module;

struct sm {
    const sm_config *cfg;
    sm_transport t;
    void *tctx;
    sm_submit_fn submit;
    void *submit_ctx;
    int lanes;              /* storage lanes (sm_set_storage_lanes); 0: one */
    sm_lane_fn lane_of;
    sm_link *links;
    uint64_t next_serial;
    sm_map sessions;        /* (link serial, sid) -> session */
    sm_map by_jid;          /* full JID -> session */
    size_t detached;        /* of those, without a connection (counted here: a status probe
                             * must not walk a million sessions) */
    sm_map users;           /* bare JID -> user */
    /* Users whose load (roster and the user-load hooks' requests) has started and not ended, and
     * those waiting to start theirs: at most SMC_USER_LOADS of them at once (users.c). */
    size_t loads_in_flight;
    sm_user *load_queue, *load_queue_tail;
    size_t load_queued;
    /* Accounts whose sessions a restart restored before their load (sessions.c): loaded in
     * the background, after the loads something waits for (user_loads.c). A queue in an array
     * ([background_head, background_len)), not a link in every account: it is empty but for a
     * restart's first minute. */
    sm_user **background;
    size_t background_head, background_len, background_cap;
    loaded_module *mods;
    size_t nmods;
    size_t session_ext, user_ext;   /* bytes of module state with every session, user */
    iq_handler *iqs;
    size_t niqs;
    char **features;
    size_t nfeatures;
    sm_hook_fn *hooks[SM_EV_COUNT];
    size_t nhooks[SM_EV_COUNT];
    named_event *named;     /* events the modules fire (sm_module.events) */
    size_t nnamed;
    xmlstream *parser;      /* for stanzas that arrive as bytes (frames, storage): one stream
                             * that each stanza continues, so expat is made once, not per stanza */
    bool parser_open;       /* it has had its stream header and sits between stanzas */
    xml_node *parsed;
    xml_arena *parsed_arena;
    bool parsed_extra;
    sm_stats stats;
    uint64_t push_id;       /* sm_make_id */
    bool stopping;          /* sm_shutdown ran: storage is closing, so its unavailable
                             * broadcast loads no one */
    custody_ticket ticket;  /* the frame being processed: whatever it causes holds it */
    sm_barrier *barrier;    /* the current barrier (sm/barrier.h), or NULL */
    buf wire;               /* the stanza being sent, serialized (wire_put) */
    int64_t now_ms;         /* sm_tick's clock */
    int64_t started_ms;     /* sm_new's wall clock */
    restart_wait restart;   /* restart_wait.c */
    sm_map iq_out;          /* iq_out.c: the SM's own iq requests awaiting an answer, by id */
    served_domain *domains; /* domains.c */
    struct iq_out_req *iq_out_list;     /* the same, in a list the clock walks */
};

typedef struct session_key {
    uint64_t serial, sid;
} session_key;

/* The keyed tables' match functions (sm/map.h): s->sessions by session_key, s->by_jid by full
 * JID, s->users by bare JID. */
bool smc_session_has_key(const void *sess, const void *key, size_t len);
bool smc_session_has_jid(const void *sess, const void *key, size_t len);
bool smc_user_has_jid(const void *user, const void *key, size_t len);

/* users.c */
sm_user *smc_user_get(sm *s, const jid *j);           /* finds or creates */
void smc_user_maybe_free(sm *s, sm_user *u);          /* frees it when nothing holds it */
void smc_user_clear_roster(sm_user *u);
void smc_user_release(sm *s, sm_user *u);
/* The roster of r's user is in: the account is loaded, and its deferred work runs. Returns the
 * user (held by its load: the caller frees it if idle) or NULL. */
sm_user *smc_user_roster_loaded(sm *s, xdb_request *r);
/* user_loads.c */
/* Queues d until u's roster is loaded (starting the load if it is not under way). */
void smc_defer(sm *s, sm_user *u, sm_deferred *d);
/* u has sessions and nothing waits for its load: it is loaded when the storage has nothing more
 * urgent to do. */
void smc_load_in_background(sm *s, sm_user *u);
/* Loads under way or waiting to start (both queues). */
size_t smc_loads_pending(const sm *s);
/* restart_wait.c */
void smc_restart_wait_start(sm *s);
/* Holds st (true) when the wait is on and its addressee has no session. */
bool smc_restart_wait_hold(sm *s, sm_stanza *st);
/* Holds st (true) when the wait is on, whoever it is for (a served domain's stanza). */
bool smc_restart_wait_hold_any(sm *s, sm_stanza *st);
void smc_restart_wait_end(sm *s, const char *why);
/* A link of service_id is up: true when it is that configured front's first since the start,
 * during the start's wait. */
bool smc_restart_first_link(sm *s, const char *service_id);
/* A counted resync is done (d->counted_resync): the wait may end. */
void smc_restart_resync_done(sm *s, sm_deferred *d);
void smc_restart_wait_tick(sm *s);
void smc_restart_wait_free(sm *s);
/* route.c: a stanza for a local user (its 'to' has a node), routed. */
void smc_route_to_user(sm *s, sm_stanza *st);
void smc_deferred_free(sm_deferred *d);

/* domains.c: a stanza to a domain a module serves goes to it (true), or waits for the start */
bool smc_domain_dispatch(sm *s, sm_stanza *st, const char *domain, size_t len);
void smc_domains_free(sm *s);

/* sessions.c */
sm_link *smc_link_by_serial(const sm *s, uint64_t serial);
void smc_bind_reply(sm *s, sm_link *l, uint64_t sid, bool resync, uint8_t status,
                    const char *full);
void smc_bind_finish(sm *s, sm_user *u, sm_deferred *d);
/* A stanza (xml, len) from session sid of l that does not exist yet, from: when its bind or
 * resync waits for the account to load, it waits behind it (true); else false. */
bool smc_defer_frame(sm *s, sm_link *l, uint64_t sid, const jid *from, const char *xml,
                     size_t len);
/* A stanza from sess, whose account is not loaded (a restart restored it first): it waits for the
 * load, and starts it. */
void smc_defer_session_frame(sm *s, sm_session *sess, const char *xml, size_t len);
/* A revival whose user is loaded (failed: it could not be) or dropped (u NULL: the SM stops). */
void smc_revive_finish(sm *s, sm_user *u, sm_deferred *d, bool failed);
void smc_session_release(sm *s, sm_session *sess);
/* Ends every session (of link l, or all when l is NULL) with reason (< 0: the front knows). */
void smc_sessions_end(sm *s, const sm_link *l, int reason, const char *text);

/* iq_out.c (sm/iq_out.h) */
typedef struct iq_out_req iq_out_req;
/* st (an iq result or error to a served host) answers a request: its callback has run and st is
 * freed (true); false: st is untouched. */
bool smc_iq_out_answer(sm *s, sm_stanza *st);
/* Requests past their timeout get their callback with NULL. */
void smc_iq_out_tick(sm *s);
/* Every outstanding request gets its callback with NULL; the table is freed. */
void smc_iq_out_free(sm *s);

/* registry.c */
void smc_iq_dispatch(sm *s, sm_stanza *st, unsigned where);
/* Loads the modules of table (NULL-terminated) that the configuration names, registers their
 * handlers and features, then runs their inits; false when one fails (logged). */
bool smc_modules_load(sm *s, const sm_module *const *table);
void smc_modules_unload(sm *s);
/* The modules' state in a new session's or user's block (ext) goes with it. */
void smc_session_state_release(sm *s, sm_session *sess);
void smc_user_state_release(sm *s, sm_user *u);
/* A session's STATE record (docs/smproto.md §2), and taking one back in a resync (false when it
 * is malformed). */
void smc_state_pack(const sm *s, const sm_session *sess, buf *out);
bool smc_state_restore(sm *s, sm_session *sess, const uint8_t *data, size_t len);

/* route.c */
/* Sends node to one session; false (nothing sent, logged) when it does not fit in a frame. */
bool smc_send_session(sm *s, sm_session *sess, const xml_node *node);
void smc_route_local_presence(sm *s, sm_user *u, sm_stanza *st);
void smc_route_inbound(sm *s, sm_user *u, sm_stanza *st);

#endif
