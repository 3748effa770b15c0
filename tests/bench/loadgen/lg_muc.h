/* tests/bench/loadgen/lg_muc.h — the group chat (XEP-0045) client of --muc, with no socket in it:
 * which room a user is in, the join presence, the instant-room configuration an owner submits, the
 * groupchat message it sends, and reading back the self-presence (status 110) that ends a join and
 * the groupchat message that is a delivery.
 *
 * Rooms: with R rooms, user index i is in room i mod R, named bench<room>@SERVICE, with the nick
 * u<user number>; in room r it has slot i / R (0..room size - 1), so the users of a room are
 * numbered without a table. Room r's first user (index r) creates it.
 *
 * Messages carry in their body the run, round, sender, sequence number and send time
 * (CLOCK_MONOTONIC ns: generator and servers share one machine and one clock), so each reflection
 * says which message it is and how late it is; the id is RUN-ROUND-SEQ, so an error says which
 * message bounced.
 *
 * Thread rules: one thread, the event loop's; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_MUC_H
#define JABSHARD_LOADGEN_LG_MUC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/xml.h"

#define LG_MUC_RUN_LEN 8
#define LG_MUC_SERVICE_MAX 256

static inline uint32_t lg_muc_room_of(uint32_t rooms, uint32_t user) { return user % rooms; }
static inline uint32_t lg_muc_slot_of(uint32_t rooms, uint32_t user) { return user / rooms; }
/* How many of n users are in room r. */
static inline uint32_t lg_muc_room_size(uint32_t n, uint32_t rooms, uint32_t r)
{
    return r < n ? (n - r + rooms - 1) / rooms : 0;
}

/* The join: presence to bench<room>@service/u<number> with the muc <x/>, asking for no history. */
void lg_muc_join(buf *out, const char *service, uint32_t room, uint32_t number);
/* The owner's configuration of a new room: an instant room (an empty submit), or with max_users
 * > 0 a submit of muc#roomconfig_maxusers alone; iq id "RUN-cfg-ROOM". */
void lg_muc_config(buf *out, const char *service, uint32_t room, const char *run,
                   uint32_t max_users);
/* "RUN-cfg-ROOM" with our RUN: fills room. */
bool lg_muc_parse_config_id(const char *id, const char *run, uint32_t *room);
/* A groupchat message to the room, id "RUN-ROUND-SEQ", body "RUN ROUND SENDER SEQ T_NS". */
void lg_muc_message(buf *out, const char *service, uint32_t room, const char *run, uint32_t round,
                    uint32_t sender, uint64_t seq, uint64_t t_ns);
/* "RUN-ROUND-SEQ" with our RUN: fills round and seq. */
bool lg_muc_parse_id(const char *id, const char *run, uint32_t *round, uint64_t *seq);

/* The room of a JID bench<room>@service[/nick]; false for any other JID. */
bool lg_muc_parse_room_jid(const char *jid, const char *service, uint32_t *room);

typedef enum {
    LG_MUC_PRESENCE_OTHER,  /* not from one of our rooms, or another occupant's */
    LG_MUC_PRESENCE_SELF,   /* our own, status 110: the join is done */
    LG_MUC_PRESENCE_ERROR,  /* type='error' from one of our rooms: the join failed */
} lg_muc_presence_kind;

/* Reads a <presence/>: its room (when from one of ours) and, for SELF, whether status 201 says
 * the join created the room; for ERROR, the condition (static or the tree's). */
lg_muc_presence_kind lg_muc_parse_presence(const xml_node *presence, const char *service,
                                           uint32_t *room, bool *created, const char **condition);

typedef enum {
    LG_MUC_NOT_OURS,   /* no groupchat body of this run's form */
    LG_MUC_MESSAGE,    /* one of ours: the fields are filled */
    LG_MUC_FOREIGN,    /* a groupchat body not of this run, or not readable */
} lg_muc_kind;

typedef struct lg_muc_item {
    uint32_t round, sender;
    uint64_t seq, t_ns;
} lg_muc_item;

/* Reads a groupchat <message/>: whether its body is a message of this run. */
lg_muc_kind lg_muc_parse_message(const xml_node *message, xml_arena *arena, const char *run,
                                 lg_muc_item *item);

#endif
