/* sm/smacks.h — what the two files of XEP-0198 stream management at the SM share: mod_smacks.c
 * (the protocol, custody, hibernation) and smacks_hibernation.c (hibernated sessions kept in
 * storage across an SM restart). Nothing else includes it.
 *
 * Thread rules: the SM's routing thread.
 */
#ifndef JABSHARD_SM_SMACKS_H
#define JABSHARD_SM_SMACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sm/map.h"
#include "sm/module.h"
#include "smproto/smacks_msg.h"

#define SMACKS_ID_LEN 24
/* A connection that a resumption took a session from may still hand stanzas back
 * (UNDELIVERED) for this long: they are the session's, kept here, and are dropped. */
#define SMACKS_RETIRED_MS (10 * 60 * 1000)

typedef struct kept {
    struct kept *next;
    size_t len;
    char xml[];
} kept;

typedef struct smacks_session {
    bool enabled, resumable;
    bool closing;               /* the client closed its stream: no hibernation */
    bool doomed;                /* over its bounds: ends at the next tick */
    uint32_t max;               /* resumption timeout, seconds */
    char id[SMACKS_ID_LEN + 1];
    uint64_t in_prior;          /* stanzas handled from the client before in_base */
    uint64_t in_base;           /* the session's stanzas_in when counting restarted */
    uint64_t in_local;          /* handled by the front itself (its last report) */
    uint64_t client_h;          /* what the client acknowledged (32-bit h, extended) */
    uint64_t sm_acked, sm_sent; /* kept stanzas numbered 1, 2, ...: acknowledged, sent */
    uint64_t lost;              /* the oldest unacknowledged ones that a previous SM had (a
                                 * restart): numbered, but their copies are gone */
    bool restored;              /* from a STATE record (an SM restart): the front's SYNC says
                                 * where the numbering stands */
    uint64_t synced_link;       /* the link whose resync brought the last SYNC taken */
    kept *head, **tail;         /* sm_acked + lost + 1 .. sm_sent */
    size_t count, bytes;
    int64_t deadline_ms;        /* while watched */
    bool stored;                /* hibernated in storage (smacks_hibernation.c) */
    uint64_t stored_n;          /* how many of its kept stanzas storage has */
    struct smacks_session *wnext, *wprev;
    sm_session *sess;
} smacks_session;

typedef struct retired {
    uint64_t link_serial, sid;
    int64_t until_ms;
} retired;

/* A SYNC for a connection whose session a resync has not restored yet (it waits for the user's
 * roster): applied when it is. */
typedef struct early_sync {
    uint64_t link_serial, sid;
    int64_t until_ms;
    smacks_msg m;
} early_sync;

typedef struct smacks_data {
    sm_map by_id;               /* resumption id -> session */
    sm_map early;               /* (link serial, sid) -> early_sync */
    smacks_session *watch;      /* detached or doomed sessions, with their deadline */
    retired *retired;           /* connections a session left (UNDELIVERED from them is ours),
                                 * oldest first: [retired_head, nretired) */
    size_t retired_head, nretired, retired_cap;
    sm_map retired_set;         /* the same, by (link serial, sid): looked up per UNDELIVERED */
    size_t reviving;            /* hibernated sessions from storage not restored yet */
} smacks_data;

/* mod_smacks.c */
smacks_data *smacks_data_of(sm *s);
/* The session's state, NULL before stream management was enabled; or a new one. */
smacks_session *smacks_state_of(sm *s, const sm_session *sess);
smacks_session *smacks_state_new(sm *s, sm_session *sess);
/* Keeps a copy of a stanza sent to the session (numbered sm_sent + 1). */
void smacks_keep(smacks_session *st, const char *xml, size_t len);
/* Puts the session on the watch list: it ends at deadline_ms unless resumed. */
void smacks_watch(smacks_data *d, smacks_session *st, int64_t deadline_ms);
/* The stanzas of the client the SM has handled (the h of <resumed/>). */
uint64_t smacks_handled_in(const smacks_session *st);

/* smacks_hibernation.c: with <smacks><persist> on, a hibernating session is written to storage
 * (its record and what it keeps), every stanza it keeps meanwhile added, and it is deleted when
 * the session is attached again or ends; at the start, the SM revives what storage has. */
void smacks_hib_store(sm *s, smacks_session *st);
void smacks_hib_kept(sm *s, smacks_session *st, const char *xml, size_t len);
void smacks_hib_forget(sm *s, smacks_session *st);
void smacks_hib_load(sm *s);

#endif
