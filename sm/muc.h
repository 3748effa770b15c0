/* sm/muc.h — what the files of the group chat service (XEP-0045, sm/mod_muc.c and sm/muc_*.c)
 * share: services, rooms, occupants, affiliations; nothing else includes it.
 *
 * Files: mod_muc.c (the module: services, options, where a stanza goes, the session and start
 * hooks), muc_room.c (rooms and occupants in memory, affiliations and roles, what an occupant's
 * presence looks like to whom, broadcasts), muc_presence.c (joining, presence changes, nick
 * changes, leaving), muc_message.c (group messages, subject, history, private messages,
 * invitations), muc_iq.c (iqs between occupants), muc_config.c (the configuration form, disco of rooms and of the service),
 * muc_admin.c (muc#admin lists, kicks and bans, muc#owner configuration and destruction),
 * muc_store.c (what storage keeps, and loading it at start).
 *
 * Thread rules: the SM's routing thread.
 */
#ifndef JABSHARD_SM_MUC_H
#define JABSHARD_SM_MUC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sm/map.h"
#include "sm/module.h"

#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER NS_MUC "#user"
#define NS_MUC_ADMIN NS_MUC "#admin"
#define NS_MUC_OWNER NS_MUC "#owner"
#define NS_MUC_UNIQUE NS_MUC "#unique"
#define NS_OCCUPANT_ID "urn:xmpp:occupant-id:0"
#define NS_SELF_PING "http://jabber.org/protocol/muc#self-ping-optimization"
#define NS_XDATA "jabber:x:data"
#define NS_DELAY "urn:xmpp:delay"
#define NS_SID "urn:xmpp:sid:0"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_PING "urn:xmpp:ping"
#define MUC_STANZA_ID_LEN 32

extern const sm_module mod_muc;

/* Ordered: a higher affiliation may act on lower ones (XEP-0045 §5.2). */
typedef enum { MUC_OUTCAST, MUC_AFF_NONE, MUC_MEMBER, MUC_ADMIN, MUC_OWNER } muc_affiliation;
typedef enum { MUC_ROLE_NONE, MUC_VISITOR, MUC_PARTICIPANT, MUC_MODERATOR } muc_role;
/* Who may send private messages (muc#roomconfig_allowpm). */
typedef enum { MUC_PM_ANYONE, MUC_PM_PARTICIPANTS, MUC_PM_MODERATORS, MUC_PM_NONE } muc_pm;

typedef struct muc_config {
    char *name, *description, *password, *lang;
    bool persistent, public_list, members_only, moderated, whois_anyone, allow_invites,
        allow_subject, logging;
    muc_pm allow_pm;
    int max_users, history;
} muc_config;

/* One nick in a room: one real (bare) JID, joined from one or more of its sessions. */
typedef struct muc_occupant {
    char *nick;
    jid real;                   /* bare */
    jid *sessions;              /* full JIDs joined under this nick, the latest last */
    size_t nsessions;
    muc_role role;
    sm_stanza *presence;        /* the latest session's presence as received, or NULL */
    int64_t joined_ms;          /* sm_wall_ms */
} muc_occupant;

typedef struct muc_history_entry {
    char *xml;                  /* the message as broadcast, without 'to' */
    size_t len;
    int64_t stamp;              /* sm_wall_ms */
} muc_history_entry;

typedef struct muc_service muc_service;

typedef struct muc_room {
    jid jid;                    /* room@service */
    muc_service *service;
    muc_config cfg;
    bool locked;                /* created, its owner has not configured it yet (§10.1) */
    bool stored;                /* storage has its row */
    uint64_t salt[2];           /* occupant ids (XEP-0421): SipHash keys, stored with it */
    char *subject, *subject_by; /* the subject and the nick that set it, or NULL */
    sm_map occupants;           /* nick -> muc_occupant */
    sm_map by_session;          /* occupant's full JID -> muc_occupant */
    sm_map affiliations;        /* bare JID -> muc_aff_entry (outcast, member, admin, owner) */
    muc_history_entry *history; /* a ring of cfg.history entries at most */
    size_t hist_start, hist_n, hist_cap, hist_bytes;
} muc_room;

typedef struct muc_aff_entry {
    char *jid;                  /* bare */
    muc_affiliation aff;
    char *reason;               /* the reason given, or NULL */
} muc_aff_entry;

struct muc_service {
    char *domain;               /* conference.example.org */
    char *host;                 /* the host it serves: who may create rooms */
    sm_map rooms;               /* room node -> muc_room */
    uint64_t generation;        /* bumped when a room comes, goes or is configured */
    muc_room **listed;          /* the public rooms by JID, as of listed_generation (disco) */
    size_t nlisted;
    uint64_t listed_generation;
};

/* ---- mod_muc.c ---- */
long long muc_option(sm *s, const char *path);
/* Whether real may read r's history (its archive): not banned, a member of a members-only room. */
bool muc_may_read_history(const muc_room *r, const jid *real);
/* The rooms a session is in: their bare JIDs (session-end, restarts). */
void muc_session_joined(sm *s, const jid *full, const muc_room *r);
void muc_session_left(sm *s, const jid *full, const muc_room *r);
size_t muc_session_rooms(sm *s, const jid *full);
/* Occupants whose session is gone (after a restart) leave. */
void muc_prune_gone(sm *s);
/* Storage's rooms are in memory (muc_store_load): pruned now, or when the start's wait ends. */
void muc_store_loaded(sm *s);

/* ---- muc_room.c ---- */
muc_room *muc_room_find(muc_service *svc, const char *node, size_t len);
/* A new room (unstored, unlocked) with the service's default configuration. */
muc_room *muc_room_new(sm *s, muc_service *svc, const char *node, size_t len);
/* Frees the room's memory (not its storage). */
void muc_room_free(sm *s, muc_room *r);
/* Destroys a room: every occupant gets unavailable presence (with <destroy>, alternate venue and
 * reason when given), its storage is deleted, and it is freed. */
void muc_room_destroy(sm *s, muc_room *r, const char *venue, const char *reason);
/* After an occupant left: a temporary room that is empty goes. true when it went. */
bool muc_room_maybe_gone(sm *s, muc_room *r);

muc_affiliation muc_affiliation_of(const muc_room *r, const jid *real);
/* Sets (or with MUC_AFF_NONE removes) bare's affiliation, storing it. */
void muc_set_affiliation(sm *s, muc_room *r, const char *bare, muc_affiliation aff,
                         const char *reason);
muc_role muc_default_role(const muc_room *r, muc_affiliation aff);
const char *muc_affiliation_name(muc_affiliation a);
const char *muc_role_name(muc_role r);
bool muc_affiliation_parse(const char *name, muc_affiliation *out);
bool muc_role_parse(const char *name, muc_role *out);
size_t muc_room_owners(const muc_room *r);

muc_occupant *muc_occupant_by_nick(const muc_room *r, const char *nick);
muc_occupant *muc_occupant_by_session(const muc_room *r, const jid *full);
/* The occupant id of real in r (XEP-0421): stable for the room, opaque elsewhere. */
void muc_occupant_id(const muc_room *r, const jid *real, char out[17]);
/* Removes one session of o (its last: o goes, freed; returns true). */
bool muc_occupant_drop_session(sm *s, muc_room *r, muc_occupant *o, const jid *full);
/* The occupant's JID in the room: room@service/nick. */
void muc_occupant_jid(const muc_room *r, const char *nick, char *out, size_t size);
/* Whether viewer sees real JIDs (non-anonymous room, or a moderator). */
bool muc_sees_jids(const muc_room *r, const muc_occupant *viewer);

/* Presence of o as occupants see it: <presence from=room/nick type?> with o's latest
 * presence's children, <x muc#user><item affiliation role (jid)/> + codes</x> and the occupant
 * id. type: NULL (available) or "unavailable"; codes: status codes (0-terminated) or NULL. */
typedef struct muc_presence_opts {
    const char *type;
    const int *codes;
    const char *item_nick;      /* <item nick=>: a nick change's new nick (303) */
    const char *reason;         /* <item><reason> (or <destroy><reason>) */
    const char *actor;          /* <item><actor nick=> */
    bool destroy;               /* <destroy jid=venue> */
    const char *venue;
    bool affiliation_none;      /* the room is going: affiliation none */
} muc_presence_opts;
sm_stanza *muc_presence_of(sm *s, const muc_room *r, const muc_occupant *o, bool with_jid,
                           const muc_presence_opts *opt);
/* Sends f's stanza (addressed to each) to one session, or to every session of o. */
void muc_send_to_session(sm *s, const jid *full, sm_fanout *f);
void muc_send_to_occupant(sm *s, const muc_occupant *o, sm_fanout *f);
/* One stanza to one session, and freed. */
void muc_send_one(sm *s, const jid *full, sm_stanza *st);
/* Sends o's presence (opts) to every occupant of r but skip (NULL: all), each seeing the real JID
 * or not; self_codes are added for o's own sessions (110 and others) when o is not skipped. */
void muc_broadcast_presence(sm *s, const muc_room *r, const muc_occupant *o,
                            const muc_presence_opts *opts, const int *self_codes,
                            const muc_occupant *skip);
/* A message from the room (from its bare JID) with status codes, to every occupant. */
void muc_broadcast_status(sm *s, const muc_room *r, const int *codes);
/* Removes o (every session) with a status (307 kicked, 301 banned, 321 affiliation change, 322
 * members-only): unavailable presence to o (with 110) and the others; reason and actor nick may
 * be NULL. */
void muc_remove_occupant(sm *s, muc_room *r, muc_occupant *o, int code, const char *reason,
                         const char *actor);

/* ---- muc_presence.c ---- */
void muc_presence(sm *s, muc_service *svc, sm_stanza *st);

/* ---- muc_message.c ---- */
void muc_message(sm *s, muc_service *svc, sm_stanza *st);
/* Sends r's history (per the join's <history/>) and subject to one joining session. */
void muc_send_history(sm *s, muc_room *r, const jid *to, const xml_node *history);
void muc_history_clear(muc_room *r);

/* ---- muc_iq.c ---- */
/* The first child element of st (an iq's payload), or NULL. */
xml_node *muc_payload(const sm_stanza *st);
/* An iq to room/nick: a self-ping, a request forwarded to the occupant, or its answer. */
void muc_occupant_iq(sm *s, muc_room *r, sm_stanza *st);

/* ---- muc_config.c ---- */
void muc_config_defaults(sm *s, muc_config *c);
void muc_config_free(muc_config *c);
/* The muc#roomconfig form of r, in a (type form). */
xml_node *muc_config_form(sm *s, const muc_room *r, xml_arena *a, xml_node *parent);
/* Applies a submitted form; false with *err (a stanza error condition) when it is refused
 * (nothing changed then). Status codes of what changed, for the occupants, in codes (0-ended). */
bool muc_config_submit(sm *s, muc_room *r, const xml_node *x, const char **err, int codes[8]);
/* Disco#info and #items of a room (an iq to it), and of the service. */
void muc_room_disco_info(sm *s, muc_room *r, sm_stanza *st, const xml_node *q);
void muc_room_disco_items(sm *s, muc_room *r, sm_stanza *st, const xml_node *q);
void muc_service_disco_info(sm *s, muc_service *svc, sm_stanza *st, const xml_node *q);
void muc_service_disco_items(sm *s, muc_service *svc, sm_stanza *st, const xml_node *q);

/* ---- muc_admin.c ---- */
void muc_admin_iq(sm *s, muc_room *r, sm_stanza *st, xml_node *q);
void muc_owner_iq(sm *s, muc_room *r, sm_stanza *st, xml_node *q);

/* ---- muc_store.c ---- */
/* The room's row, configuration and subject (creates the row first when it has none). */
void muc_store_room(sm *s, muc_room *r);
void muc_store_affiliation(sm *s, muc_room *r, const char *bare, const muc_aff_entry *e);
void muc_store_occupant(sm *s, muc_room *r, const muc_occupant *o, const jid *full);
void muc_unstore_occupant(sm *s, muc_room *r, const jid *full);
void muc_unstore_room(sm *s, muc_room *r);
/* Loads every room of the services (sm_start_hold until done), then muc_store_loaded. Returns
 * the load in progress, for muc_store_abandon when the SM stops before it is done (a start that
 * failed after this module's: its requests never complete). */
typedef struct muc_loading muc_loading;
muc_loading *muc_store_load(sm *s, muc_service *svcs, size_t n);
void muc_store_abandon(muc_loading *l);

#endif
