/* sm/mam.h — what the files of message archives (MAM, XEP-0313) share: mod_mam.c (what is
 * archived, stanza ids, preferences, the module), mam_archive.c (writing in batches off the routing
 * path, retention), mam_query.c (queries: the form, paging, results) and mod_muc_mam.c (group
 * chat rooms' archives). Nothing else includes it.
 *
 * Thread rules: the SM's routing thread.
 */
#ifndef JABSHARD_SM_MAM_H
#define JABSHARD_SM_MAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sm/module.h"

#define NS_MAM "urn:xmpp:mam:2"
#define NS_SID "urn:xmpp:sid:0"
#define NS_RSM "http://jabber.org/protocol/rsm"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_DELAY "urn:xmpp:delay"
#define MAM_STANZA_ID_LEN 32

long long mam_option(sm *s, const char *path);
/* st as archived: serialized with its namespace (NULL when over a frame's size). */
char *mam_serialized(const sm_stanza *st);

/* ---- mam_archive.c ---- */

/* The message (serialized, with its namespace) goes to owner's archive under stanza_id, with
 * peer (a full or bare JID) as the contact. It is written with others of owner's within a second,
 * never holding up routing; when more than <mam><queue_max> wait, it is dropped and counted. */
void mam_archive(sm *s, const jid *owner, const char *stanza_id, const jid *peer,
                 const char *xml);
/* Submits what waits for owner now (a query must see it: one user's requests run in order). */
void mam_flush(sm *s, const jid *owner);
/* Submits everything waiting (the SM stops). */
void mam_flush_all(sm *s);
/* Every tick: what waits is written; retention runs. */
void mam_archive_tick(sm *s);
void mam_archive_init(sm *s);
/* Its metrics: messages written, failed, dropped; waiting. */
void mam_archive_metrics(sm *s, buf *b);
void mam_archive_free(sm *s);

/* ---- mam_query.c ---- */

/* An iq on the account's own archive: <query/> get (the form) or set (a query), <metadata/>. */
void mam_query_iq(sm *s, sm_stanza *st, xml_node *payload);
/* The same on owner's archive (a room's), the caller having checked that st's sender may read
 * it; results come from owner. */
void mam_query_archive(sm *s, sm_stanza *st, xml_node *payload, const jid *owner);

#endif
