/* s2s/dialback.h — server dialback keys (XEP-0220 §2.1, generated as XEP-0185 recommends).
 *
 * key = hex(HMAC-SHA256(hex(SHA256(secret)), receiving + ' ' + originating + ' ' + stream_id))
 *
 * The secret is the deployment's, shared by every s2s box, so that whichever box a remote server's
 * db:verify reaches can answer for a key another box sent. Keys are only ever compared in constant
 * time.
 *
 * Thread rules: none; plain functions.
 */
#ifndef JABSHARD_S2S_DIALBACK_H
#define JABSHARD_S2S_DIALBACK_H
#include <stdbool.h>

#define DIALBACK_KEY_LEN 64   /* hex HMAC-SHA256 */

void dialback_key(const char *secret, const char *receiving, const char *originating,
                  const char *stream_id, char out[DIALBACK_KEY_LEN + 1]);

/* Whether key (the text of a peer's db:verify) is the one we would have made. */
bool dialback_key_check(const char *secret, const char *receiving, const char *originating,
                        const char *stream_id, const char *key);

#endif
