/* shard/sasl.h — SASL on the server side of a client stream (RFC 6120 §6): SCRAM-SHA-1,
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), their -PLUS forms with tls-exporter channel binding
 * (RFC 9266), and PLAIN (RFC 4616).
 *
 * A mechanism is a state machine with no I/O of its own. The connection feeds it the decoded
 * client messages (the caller does base64 and XML) and acts on each result:
 *   SASL_CHALLENGE    send out as <challenge/> (SCRAM's server-first message; empty when the
 *                     client gave no initial response) and wait;
 *   SASL_NEED_CREDS   look up the user's stored SCRAM credentials (from the SM, asynchronously),
 *                     then call sasl_creds() and act on its result;
 *   SASL_NEED_VERIFY  PLAIN only: run sasl_plain_verify() off the IO thread (it costs a PBKDF2),
 *                     then call sasl_verified() and act on its result;
 *   SASL_SUCCESS      send <success/> with out as additional data (SCRAM's server-final message);
 *                     sasl_authcid() names the authenticated user;
 *   SASL_FAILURE      send <failure/> with the condition sasl_failure_name() gives.
 * out is appended to only on SASL_CHALLENGE and SASL_SUCCESS. After SUCCESS or FAILURE the
 * exchange is over: any further call fails with malformed-request.
 *
 * Usernames are authentication identities: SCRAM's and PLAIN's authcid, SASLprep'd and checked
 * with nodeprep by the caller before it asks the SM. The mechanisms only parse an authzid: the
 * caller, which knows the host, refuses one other than the user's own bare JID (sasl_authzid())
 * with invalid-authzid.
 *
 * Thread rules: a sasl_session belongs to its connection's IO thread; sasl_plain_verify is a pure
 * function any thread may run.
 */
#ifndef JABSHARD_SHARD_SASL_H
#define JABSHARD_SHARD_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/scram.h"

typedef enum {
    SASL_SCRAM_SHA1,
    SASL_SCRAM_SHA1_PLUS,
    SASL_SCRAM_SHA256,
    SASL_SCRAM_SHA256_PLUS,
    SASL_PLAIN,
    SASL_MECH_COUNT
} sasl_mech;

typedef enum {
    SASL_CHALLENGE,
    SASL_NEED_CREDS,
    SASL_NEED_VERIFY,
    SASL_SUCCESS,
    SASL_FAILURE,
} sasl_result;

/* RFC 6120 §6.5 failure conditions. */
typedef enum {
    SASL_ABORTED,
    SASL_ACCOUNT_DISABLED,
    SASL_CREDENTIALS_EXPIRED,
    SASL_ENCRYPTION_REQUIRED,
    SASL_INCORRECT_ENCODING,
    SASL_INVALID_AUTHZID,
    SASL_INVALID_MECHANISM,
    SASL_MALFORMED_REQUEST,
    SASL_MECHANISM_TOO_WEAK,
    SASL_NOT_AUTHORIZED,
    SASL_TEMPORARY_AUTH_FAILURE,
} sasl_failure;

typedef struct sasl_session sasl_session;

#define SASL_EXPORTER_LEN 32    /* the tls-exporter channel binding value (RFC 9266) */

/* "SCRAM-SHA-1" ... "PLAIN"; and back (-1 when unknown). */
const char *sasl_mech_name(sasl_mech mech);
int sasl_mech_parse(const char *name);
const char *sasl_failure_name(sasl_failure f);

/* Starts a mechanism (a valid sasl_mech; anything else aborts). cb_exporter: the connection's
 * tls-exporter value (SASL_EXPORTER_LEN bytes, copied), or NULL when the connection has none (not
 * TLS 1.3): -PLUS mechanisms then cannot start (their first step fails with invalid-mechanism),
 * and a client that says it could bind but thinks we cannot ("y" flag) is refused when we could
 * have. server_plus: whether -PLUS mechanisms were advertised (for the "y" downgrade check).
 * Never returns NULL. */
sasl_session *sasl_new(sasl_mech mech, const uint8_t *cb_exporter, bool server_plus);
void sasl_free(sasl_session *s);

/* The client's initial response or a later response (decoded bytes; len 0 for an empty one).
 * A first call with len 0 means "no initial response" and gets an empty SASL_CHALLENGE; no
 * mechanism here accepts an empty message after that (malformed-request). Calling it while
 * credentials or a verification are awaited fails the exchange with malformed-request. */
sasl_result sasl_step(sasl_session *s, const uint8_t *in, size_t len, buf *out, sasl_failure *why);
/* The authentication identity, once known (after the first message); else NULL. */
const char *sasl_authcid(const sasl_session *s);
/* The authorization identity the client asked for (SCRAM's "a=", PLAIN's first field), decoded
 * but unchecked, once known; NULL when the client gave none. */
const char *sasl_authzid(const sasl_session *s);
/* After SASL_NEED_CREDS: the stored credentials, or NULL when there is no such user (SCRAM then
 * continues with made-up credentials and fails at the end, so a client cannot tell which
 * usernames exist; PLAIN fails at once with not-authorized). SCRAM uses the one of its hash;
 * stored credentials it cannot use (no salt, 0 iterations) fail with temporary-auth-failure.
 * PLAIN goes on to SASL_NEED_VERIFY when either is given. Called at any other time: failure
 * (malformed-request) and the session is left as it was. */
sasl_result sasl_creds(sasl_session *s, const scram_credentials *sha1,
                       const scram_credentials *sha256, buf *out, sasl_failure *why);
/* After SASL_FAILURE: whether the exchange got as far as testing a password and the password (or
 * the user) was wrong, as opposed to failing on the protocol (a channel-binding type we do not
 * offer, a malformed message). Only such failures are password guesses worth counting. */
bool sasl_password_rejected(const sasl_session *s);
/* After SASL_NEED_VERIFY: what sasl_plain_verify said (same rule as sasl_creds otherwise). */
sasl_result sasl_verified(sasl_session *s, bool ok, buf *out, sasl_failure *why);

/* PLAIN's check of a password against stored SCRAM-SHA-256 (or SHA-1) credentials: SASLprep,
 * PBKDF2, compare in constant time. About a millisecond; never on an IO thread. The password
 * is what sasl_plain_password() hands out after SASL_NEED_VERIFY (NULL at any other time: the
 * session wipes it once the exchange ends); copy it if the check runs on another thread. */
bool sasl_plain_verify(const char *password, scram_hash hash, const scram_credentials *creds);
const char *sasl_plain_password(const sasl_session *s);

#endif
