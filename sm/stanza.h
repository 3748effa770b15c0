/* sm/stanza.h — the stanza as the SM holds it: a tree in its own arena with its parsed
 * addresses and where it came from; building, copying and addressing stanzas; message kinds
 * (RFC 6121 §5.2.2); stanza errors (RFC 6120 §8.3); serialization for storage.
 *
 * Thread rules: a stanza belongs to one thread (the routing thread).
 */
#ifndef JABSHARD_SM_STANZA_H
#define JABSHARD_SM_STANZA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jid.h"
#include "core/xml.h"

#define SM_NS_CLIENT "jabber:client"
#define SM_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

typedef struct sm_session sm_session;

/* A stanza being routed. The router owns it and frees it when the handler returns, unless the
 * handler took it with sm_stanza_take. */
typedef struct sm_stanza {
    xml_arena *arena;
    xml_node *node;         /* the stanza element, in SM_NS_CLIENT */
    jid from, to;           /* to is zeroed when the stanza had none */
    sm_session *origin;     /* the local session it came from; NULL otherwise */
    bool bad_to;            /* 'to' was present and not a JID (RFC 6120 §8.3.3.8 jid-malformed) */
    bool no_copies;         /* a module asked that no copies be made of it (XEP-0280 <private/>,
                             * whose element is gone by the time the message is delivered) */
} sm_stanza;

/* Builds a stanza from a tree (arena owned by it); NULL when from/to do not parse. */
sm_stanza *sm_stanza_new(xml_arena *arena, xml_node *node);
/* Moves st's content into a new stanza the caller owns (st is left empty; origin is dropped). */
sm_stanza *sm_stanza_take(sm_stanza *st);
void sm_stanza_free(sm_stanza *st);
/* A deep copy in its own arena (origin is not copied). */
sm_stanza *sm_stanza_copy(const sm_stanza *st);
/* The same, with no_copies, for a stanza kept long (a session's last presence, a stanza waiting
 * for its recipient's account to load or for the start's wait): the arena is one chunk of the
 * tree's size, not a parse's or a copy's 1 KiB. */
sm_stanza *sm_stanza_keep(const sm_stanza *st);
const char *sm_stanza_type(const sm_stanza *st);   /* "" when absent */
/* A fresh stanza: <name xmlns='jabber:client' from= to= type=> in its own arena. from, to, type
 * may be NULL. */
sm_stanza *sm_stanza_make(const char *name, const char *from, const char *to, const char *type);
/* Sets the to/from attributes and the parsed JIDs (NULL removes). Returns false if it does not parse. */
bool sm_stanza_set_to(sm_stanza *st, const char *to);
bool sm_stanza_set_from(sm_stanza *st, const char *from);

/* Turns st into that error in place: addresses swapped, type='error', <error/> with the condition
 * and, when app_ns is not NULL, an application-specific condition <app_name xmlns=app_ns/>. The
 * original payload stays only when the stanza is small (RFC 6120 §8.3.1 makes it optional): an
 * error never costs the sender much more than what it sent, however many it provokes.
 * Returns false when st must not be answered (an error, an iq result, no sender): st is then
 * unchanged. */
bool sm_stanza_error(sm_stanza *st, const char *type, const char *condition, const char *app_ns,
                     const char *app_name);
/* st comes from a local session and is addressed to that session's own account (no 'to', or
 * its bare JID): the requests only the account's owner may make (private XML, carbons, ...). */
bool sm_stanza_to_self(const sm_stanza *st);
/* An iq handler keeping st to answer it later (after storage): drops the origin session, which
 * may be gone by then, and returns st. */
sm_stanza *sm_iq_keep(sm_stanza *st);
/* Serializes node for a client stream (default namespace jabber:client) into a malloc'd string;
 * NULL when it would be longer than max bytes (the writer stops there, core/xml_write.h). */
char *sm_xml_string(const xml_node *node, size_t max, size_t *len);
/* RFC 3339 UTC time with milliseconds. */
void sm_format_time(int64_t ms, char out[32]);

/* A message's type; an unknown value is normal (RFC 6121 §5.2.2). */
typedef enum {
    SM_MSG_NORMAL,
    SM_MSG_CHAT,
    SM_MSG_GROUPCHAT,
    SM_MSG_HEADLINE,
    SM_MSG_ERROR,
} sm_msg_kind;
sm_msg_kind sm_message_kind(const sm_stanza *st);
/* Whether st carries a <delay/> (XEP-0203) from host: one of ours says when we stored it. */
bool sm_delayed_by(const xml_node *st, const char *host);
/* A presence's <priority/> (RFC 6121 §4.7.2.3), clamped to -128..127; 0 when absent. */
int sm_presence_priority(const sm_stanza *st);

#endif
