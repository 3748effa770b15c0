/* smproto/smacks_msg.h — the messages of XEP-0198 stream management between the front's feature
 * (shard/smacks.c) and the SM's module (sm/mod_smacks.c), carried in MODULE frames named "smacks"
 * (docs/smproto.md §6). Both ends use this one codec; the decoder accepts only the canonical
 * encoding (every field of the kind, strings NUL-terminated UTF-8 within their bounds, nothing
 * after the last field).
 *
 * A message is a kind byte and the kind's fields, integers big-endian:
 *   front -> SM
 *     ENABLE   u8 resume, u32 max          <enable/> after bind
 *     R        u64 in_count, u64 in_local  the client sent <r/>; the SM answers A once every
 *                                          stanza before it has reached it
 *     ACK      u64 client_h, u64 sm_acked, u64 in_local
 *                                          the client acknowledged client_h stanzas since enable
 *                                          (sm_acked of them were the SM's, in its numbering)
 *     RESUME   str host, str user, str previd, u32 h
 *                                          <resume/> on an authenticated, unbound connection
 *     CLOSE    (nothing)                   the client closed its stream: no hibernation
 *     SYNC     u64 sm_received, u64 sm_acked, u64 in_count, u64 in_local
 *                                          after a resync: the SM's stanzas the front got and the
 *                                          client acknowledged, and what it counted of the client
 *   SM -> front
 *     ENABLED  str id ("" without resumption), u32 max
 *     FAILED   u8 condition, u8 has_h, u32 h
 *     A        u64 h                       write <a h/>
 *     RESUMED  str jid, str previd, u64 in_h, u64 client_h, u64 sm_acked, u32 max, str presence
 *                                          the session is this connection's; what was not
 *                                          acknowledged follows as STANZA frames
 *
 * Thread rules: none.
 */
#ifndef JABSHARD_SMPROTO_SMACKS_MSG_H
#define JABSHARD_SMPROTO_SMACKS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SMACKS_MODULE "smacks"
#define SMACKS_ID_MAX 64          /* bytes of a resumption id */
#define SMACKS_STR_MAX 3071       /* a JID's bytes (RFC 7622: three parts of at most 1023) */

typedef enum {
    SMACKS_ENABLE = 1,
    SMACKS_R = 2,
    SMACKS_ACK = 3,
    SMACKS_RESUME = 4,
    SMACKS_CLOSE = 5,
    SMACKS_SYNC = 6,
    SMACKS_ENABLED = 16,
    SMACKS_FAILED = 17,
    SMACKS_A = 18,
    SMACKS_RESUMED = 19,
} smacks_kind;

/* <failed/>'s conditions (XEP-0198 §6, RFC 6120 §8.3.3). */
typedef enum {
    SMACKS_ITEM_NOT_FOUND = 0,
    SMACKS_UNEXPECTED_REQUEST = 1,
    SMACKS_FEATURE_NOT_IMPLEMENTED = 2,
    SMACKS_UNDEFINED_CONDITION = 3,
    SMACKS_CONDITION_MAX = SMACKS_UNDEFINED_CONDITION,
} smacks_condition;

/* One message; the fields of its kind are set, the others zero. Decoded strings point into the
 * body. */
typedef struct smacks_msg {
    smacks_kind kind;
    bool resume;                /* ENABLE */
    uint32_t max;               /* ENABLE, ENABLED, RESUMED: resumption timeout (s) */
    uint64_t in_count;          /* R, SYNC */
    uint64_t in_local;          /* R, ACK, SYNC */
    uint64_t client_h;          /* ACK, RESUMED */
    uint64_t sm_acked;          /* ACK, RESUMED, SYNC */
    uint64_t sm_received;       /* SYNC */
    uint64_t h;                 /* A; RESUMED's in_h */
    uint32_t wire_h;            /* RESUME, FAILED: as the client's h attribute (32 bits) */
    bool has_h;                 /* FAILED */
    smacks_condition condition; /* FAILED */
    const char *host, *user;    /* RESUME */
    const char *id;             /* RESUME (previd), ENABLED, RESUMED (previd) */
    const char *jid;            /* RESUMED */
    const char *presence;       /* RESUMED: the session's last broadcast presence, or "" */
} smacks_msg;

/* Appends m's body to out. */
void smacks_msg_put(buf *out, const smacks_msg *m);
/* false for anything but one canonical message; *m is set only on success. */
bool smacks_msg_get(const uint8_t *body, size_t len, smacks_msg *m);

const char *smacks_condition_name(smacks_condition c);

#endif
