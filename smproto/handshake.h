/* smproto/handshake.h — the XEP-0114 handshake pieces both ends of an smproto link share
 * (docs/smproto.md §1): the stream id the SM hands out and the digest the front proves its secret
 * with. The XML exchange around them is the caller's (core/xmlstream).
 *
 * Thread rules: none; plain functions.
 */
#ifndef JABSHARD_SMPROTO_HANDSHAKE_H
#define JABSHARD_SMPROTO_HANDSHAKE_H

#include <stdbool.h>

/* The stream's content namespace, XEP-0114's: both ends open and check it. */
#define SMPROTO_NS_ACCEPT "jabber:component:accept"

#define SMPROTO_STREAM_ID_LEN 20    /* random [A-Za-z0-9]: about 119 bits */
#define SMPROTO_DIGEST_LEN 40       /* hex SHA-1 */

/* A fresh stream id from the CSPRNG into out (NUL-terminated). */
void smproto_handshake_stream_id(char out[SMPROTO_STREAM_ID_LEN + 1]);

/* The lower-case hex SHA-1 of stream_id followed by secret, NUL-terminated: what the front sends
 * in <handshake/>. */
void smproto_handshake_digest(const char *stream_id, const char *secret,
                              char out[SMPROTO_DIGEST_LEN + 1]);

/* Whether received (the text of the peer's <handshake/>) is that digest. Hex letters may be in
 * either case (XEP-0114 only says "hex"); nothing else is tolerated, not even whitespace. The
 * comparison takes the same time wherever the first difference is. */
bool smproto_handshake_check(const char *stream_id, const char *secret, const char *received);

#endif
