/* smproto/frame.h — smproto frames (docs/smproto.md §2): the one encoder and decoder both ends use.
 *
 * Encoding appends a frame to a core/buf.h buffer; decoding takes bytes as they arrived from the
 * socket and yields whole frames, pointing into the caller's buffer (no copy). Control payloads
 * (everything but STANZA) have typed encoders and decoders here; a decoder refuses any payload
 * that is not exactly what its type says (missing NUL, trailing bytes, over-long field).
 *
 * Thread rules: none; plain functions on the caller's memory.
 */
#ifndef JABSHARD_SMPROTO_FRAME_H
#define JABSHARD_SMPROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/scram.h"

#define SMPROTO_VERSION 5
#define SMPROTO_STRINGIFY_(x) #x
#define SMPROTO_STRINGIFY(x) SMPROTO_STRINGIFY_(x)
#define SMPROTO_VERSION_STRING SMPROTO_STRINGIFY(SMPROTO_VERSION)   /* "5", for the XML opening */
/* Whether an <smproto version='...'/> names this version (exactly its decimal digits). */
bool smproto_version_is_ours(const char *version);
#define SMPROTO_NS "urn:jabshard:smproto"
#define SMPROTO_HEADER 16
#define SMPROTO_MAX_PAYLOAD (1u << 20)
#define SMPROTO_INSTANCE_MAX 32   /* hex digits of a front's instance id (docs/smproto.md §1) */

typedef enum {
    SMPROTO_STANZA = 1,
    SMPROTO_AUTH_QUERY = 2,
    SMPROTO_AUTH_ANSWER = 3,
    SMPROTO_BIND = 4,
    SMPROTO_BOUND = 5,
    SMPROTO_END = 6,
    SMPROTO_REGISTER = 7,
    SMPROTO_PING = 8,
    SMPROTO_PONG = 9,
    SMPROTO_RESYNC = 10,
    SMPROTO_UNDELIVERED = 11,
    SMPROTO_ACK = 12,
    SMPROTO_STATE = 13,
    SMPROTO_MODULE = 14,
    SMPROTO_TYPE_MAX = SMPROTO_MODULE,
} smproto_type;

/* Whether a frame of this type is numbered for acknowledgement (docs/smproto.md §3): every type
 * but the link's own (PING, PONG, RESYNC, ACK). */
static inline bool smproto_counted(smproto_type type)
{
    return type != SMPROTO_PING && type != SMPROTO_PONG && type != SMPROTO_RESYNC &&
           type != SMPROTO_ACK;
}

/* Session ids: shard (8 bits) | slot (24 bits) | generation (32 bits). */
static inline uint64_t smproto_sid(unsigned shard, uint32_t slot, uint32_t generation)
{
    return ((uint64_t)(shard & 0xff) << 56) | ((uint64_t)(slot & 0xffffff) << 32) | generation;
}
static inline unsigned smproto_sid_shard(uint64_t sid) { return (unsigned)(sid >> 56); }
static inline uint32_t smproto_sid_slot(uint64_t sid) { return (uint32_t)(sid >> 32) & 0xffffff; }
static inline uint32_t smproto_sid_generation(uint64_t sid) { return (uint32_t)sid; }

/* A decoded frame; payload points into the decoder's input. */
typedef struct smproto_frame {
    smproto_type type;
    uint64_t sid;
    const uint8_t *payload;
    uint32_t len;
} smproto_frame;

typedef enum {
    SMPROTO_FRAME_OK,        /* *frame is set and *used bytes were consumed */
    SMPROTO_FRAME_PARTIAL,   /* more bytes are needed */
    SMPROTO_FRAME_BAD,       /* a protocol error: close the link */
} smproto_frame_status;

/* Looks at the first len bytes of data for one whole frame. Checks the header (length bound, known
 * type, zero flags and reserved bytes), not the payload. */
smproto_frame_status smproto_frame_next(const uint8_t *data, size_t len, smproto_frame *frame,
                                        size_t *used);

/* Appends a frame with a raw payload. A payload over SMPROTO_MAX_PAYLOAD is a size a peer may have
 * influenced (a stanza, a registration iq): it is refused, nothing is appended and false returned,
 * so that the caller answers without it. Any other frame the peer would refuse (unknown type,
 * undefined status/reason/flags, a control record with over-long fields) is a bug in the caller
 * and aborts: those fields are the program's own, bounded before they get here. */
bool smproto_put(buf *out, smproto_type type, uint64_t sid, const void *payload, size_t len);
/* A frame whose payload the caller writes straight into out, with no copy: smproto_begin appends
 * its header and returns where the frame starts; the caller appends at most SMPROTO_MAX_PAYLOAD
 * bytes (a bounded writer, as xml_write_node_max), then smproto_end sets the length. To give up,
 * buf_truncate(out, start) (out's content before start must not be consumed in between). */
size_t smproto_begin(buf *out, smproto_type type, uint64_t sid);
void smproto_end(buf *out, size_t start);

/* Control records. Encoders append a whole frame; strings passed to them must be UTF-8. Decoders
 * return false for a malformed payload or a frame of another type, and set their outputs only when
 * they return true. They accept only the canonical encoding: defined status/reason/flags values,
 * salts of at most SCRAM_SALT_MAX bytes, keys of exactly scram_key_len bytes, iterations > 0, no
 * trailing bytes. Decoded strings point into the frame (they are NUL-terminated there).
 * PING, PONG, RESYNC and ACK belong to the link, not a session: their session id is 0, and the
 * decoders refuse any other. */
typedef struct smproto_creds {
    scram_credentials sha1, sha256;
} smproto_creds;

enum { SMPROTO_AUTH_OK = 0, SMPROTO_AUTH_NO_USER = 1, SMPROTO_AUTH_ERROR = 2 };
enum { SMPROTO_BOUND_OK = 0, SMPROTO_BOUND_CONFLICT = 1, SMPROTO_BOUND_NOT_ALLOWED = 2,
       SMPROTO_BOUND_CONSTRAINT = 3 };
enum { SMPROTO_END_GONE = 0, SMPROTO_END_REPLACED = 1, SMPROTO_END_KICKED = 2,
       SMPROTO_END_SHUTDOWN = 3, SMPROTO_END_ERROR = 4 };
enum { SMPROTO_BIND_LEGACY_SESSION = 1 };
/* A session's STATE record: what the SM's modules want the session to keep across a resync
 * (docs/smproto.md §2), opaque to the front, at most this many bytes. */
#define SMPROTO_STATE_MAX 4096

void smproto_put_auth_query(buf *out, uint64_t sid, const char *host, const char *user);
bool smproto_get_auth_query(const smproto_frame *f, const char **host, const char **user);
/* creds NULL unless status is SMPROTO_AUTH_OK. */
void smproto_put_auth_answer(buf *out, uint64_t sid, uint8_t status, const smproto_creds *creds);
bool smproto_get_auth_answer(const smproto_frame *f, uint8_t *status, smproto_creds *creds);
void smproto_put_bind(buf *out, uint64_t sid, const char *host, const char *user,
                      const char *resource, uint8_t flags);
bool smproto_get_bind(const smproto_frame *f, const char **host, const char **user,
                      const char **resource, uint8_t *flags);
/* full_jid NULL unless status is SMPROTO_BOUND_OK. */
void smproto_put_bound(buf *out, uint64_t sid, uint8_t status, const char *full_jid);
bool smproto_get_bound(const smproto_frame *f, uint8_t *status, const char **full_jid);
void smproto_put_end(buf *out, uint64_t sid, uint8_t reason, const char *text);
bool smproto_get_end(const smproto_frame *f, uint8_t *reason, const char **text);
/* false (nothing appended) when host and iq_xml do not fit in one frame, as smproto_put. */
bool smproto_put_register(buf *out, uint64_t sid, const char *host, const char *iq_xml);
bool smproto_get_register(const smproto_frame *f, const char **host, const char **iq_xml);
/* UNDELIVERED: one stanza's XML (not empty) that the front took for sid's client and never wrote
 * a byte of; sid is not 0. It is the payload of a STANZA frame the SM sent, so it always fits.
 * The decoder points *xml at the payload (not NUL-terminated). */
void smproto_put_undelivered(buf *out, uint64_t sid, const void *xml, size_t len);
bool smproto_get_undelivered(const smproto_frame *f, const char **xml, size_t *len);
void smproto_put_ping(buf *out, smproto_type type, uint64_t token);  /* PING or PONG */
bool smproto_get_ping(const smproto_frame *f, uint64_t *token);
/* ACK: the count of counted frames the sender has taken custody of (§3). */
void smproto_put_ack(buf *out, uint64_t seq);
bool smproto_get_ack(const smproto_frame *f, uint64_t *seq);
void smproto_put_state(buf *out, uint64_t sid, const uint8_t *state, size_t len);
/* *state points into the frame (len bytes, maybe 0). */
bool smproto_get_state(const smproto_frame *f, const uint8_t **state, size_t *len);

/* MODULE: a message between a feature of the front and the SM module of the same name, about
 * session sid (not 0): the name (1 to SMPROTO_MODULE_NAME_MAX bytes of [a-z0-9_-]) and the
 * module's own bytes, which neither codec reads. false (nothing appended) when it would not fit
 * in a frame, as smproto_put. The decoder points *body into the frame (not NUL-terminated). */
#define SMPROTO_MODULE_NAME_MAX 32
bool smproto_put_module(buf *out, uint64_t sid, const char *name, const void *body, size_t len);
bool smproto_get_module(const smproto_frame *f, const char **name, size_t *name_len,
                        const uint8_t **body, size_t *len);

/* RESYNC: entries appended to one frame's payload; the reader walks them. An entry is a live
 * session: its id, full JID, the STATE record the SM last gave it, and the last presence it
 * broadcast (from-stamped XML; "" when it has not sent initial presence or is unavailable). */
typedef struct smproto_resync_reader {
    const uint8_t *p, *end;
} smproto_resync_reader;
/* Starts a RESYNC frame; returns its offset from buf_data(out) for smproto_resync_end, which fixes
 * its length (consume nothing from out in between). A frame holds at most SMPROTO_MAX_PAYLOAD
 * bytes of entries, each smproto_resync_entry_size(): start another before that (resync_end aborts
 * past it). */
typedef struct smproto_resync_entry {
    uint64_t sid;
    const char *full_jid;
    const uint8_t *state;   /* state_len bytes (at most SMPROTO_STATE_MAX) */
    size_t state_len;
    const char *presence;
} smproto_resync_entry;
size_t smproto_resync_entry_size(const smproto_resync_entry *e);
size_t smproto_resync_begin(buf *out);
void smproto_resync_add(buf *out, const smproto_resync_entry *e);
void smproto_resync_end(buf *out, size_t frame_start);
void smproto_resync_read(const smproto_frame *f, smproto_resync_reader *rd);
/* 1: an entry; 0: the end; -1: malformed. */
int smproto_resync_next(smproto_resync_reader *rd, smproto_resync_entry *e);

const char *smproto_type_name(smproto_type type);

#endif
