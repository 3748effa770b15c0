/* tests/bench/loadgen/lg_sasl.h — the client side of SASL PLAIN and SCRAM-SHA-1 (RFC 4616,
 * RFC 5802), with the per-user key cache that makes SCRAM logins cheap after the first.
 *
 * PBKDF2 at the server's iteration count is the expensive step of a SCRAM login (about a
 * millisecond at 4096). A real client that logged in before keeps the result; so does this one:
 * the cache holds, per user, the salt and iteration count the server last sent and the keys
 * derived from them (ClientKey, StoredKey, ServerKey), and derives again only when the server
 * sends a different salt or count. Everything here works on base64 text as it appears in
 * <auth/>, <challenge/>, <response/> and <success/>.
 *
 * Thread rules: one thread; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_SASL_H
#define JABSHARD_LOADGEN_LG_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/scram.h"
#include "tests/bench/loadgen/lg_options.h"

typedef struct lg_scram_cache lg_scram_cache;

lg_scram_cache *lg_scram_cache_new(uint32_t users);
void lg_scram_cache_free(lg_scram_cache *cache);
/* How many key derivations (PBKDF2 runs) the cache has done, and how many it saved. */
void lg_scram_cache_counts(const lg_scram_cache *cache, uint64_t *derived, uint64_t *reused);

/* One exchange. Zeroed (LG_SASL_INIT) before the first start; lg_sasl_clear after any end. */
typedef struct lg_sasl {
    lg_mech mech;
    uint8_t step;              /* 0 before start, 1 after the initial response, 2 after the proof */
    bool verified;             /* SCRAM: the server's signature checked out */
    char *first_bare;          /* SCRAM client-first-message-bare, for the AuthMessage */
    uint8_t server_signature[SCRAM_MAX_KEY];   /* SCRAM: what v= must carry */
} lg_sasl;

#define LG_SASL_INIT { 0 }

const char *lg_sasl_mech_name(lg_mech mech);

/* Appends the base64 initial response for user (the authentication identity: the JID's local
 * part) to out. nonce: SCRAM's client nonce, NULL for 24 random characters (tests pass the RFC's). */
void lg_sasl_start(lg_sasl *s, lg_mech mech, const char *user, const char *password,
                   const char *nonce, buf *out);

/* A <challenge/>'s base64 text in, the base64 <response/> text appended to out. user_index picks
 * the cache entry; password is the user's, in clear. Returns 0, or -1 with *why set. */
int lg_sasl_challenge(lg_sasl *s, lg_scram_cache *cache, uint32_t user_index, const char *password,
                      const char *b64, buf *out, const char **why);

/* A <success/>'s base64 text (possibly empty). Returns 0 when the exchange is complete and, for
 * SCRAM, the server proved it knows the keys (in this element or in a final challenge); -1 with
 * *why set otherwise. */
int lg_sasl_success(lg_sasl *s, const char *b64, const char **why);

void lg_sasl_clear(lg_sasl *s);

#endif
