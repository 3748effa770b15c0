/* core/scram.h — SCRAM credentials (RFC 5802, RFC 7677): what is stored instead of a password.
 *
 * StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword,
 * "Server Key"), SaltedPassword = PBKDF2-HMAC-H(SASLprep(password), salt, iterations). The
 * front checks SCRAM exchanges against these, and derives them from a PLAIN password to compare.
 * Derivation costs about a millisecond per mechanism at 4096 iterations: keep it off event loops.
 */
#ifndef JABSHARD_CORE_SCRAM_H
#define JABSHARD_CORE_SCRAM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SCRAM_SHA1, SCRAM_SHA256 } scram_hash;

#define SCRAM_MAX_KEY 32        /* SHA-256 output */
#define SCRAM_SALT_LEN 16       /* salts we generate */
#define SCRAM_SALT_MAX 64       /* salts we accept (imported credentials) */
#define SCRAM_ITERATIONS 4096   /* RFC 7677's minimum, and what clients expect */

typedef struct scram_credentials {
    uint8_t salt[SCRAM_SALT_MAX];
    size_t salt_len;
    uint32_t iterations;
    uint8_t stored_key[SCRAM_MAX_KEY];
    uint8_t server_key[SCRAM_MAX_KEY];
} scram_credentials;

size_t scram_key_len(scram_hash h);     /* 20 or 32 */
const char *scram_mechanism(scram_hash h);  /* "SCRAM-SHA-1", "SCRAM-SHA-256" */

/* Prepares a password with SASLprep (RFC 4013) into out (NUL-terminated, malloc'd).
 * Returns 0, or -1 when the password has prohibited characters. */
int scram_saslprep(const char *password, char **out);

/* Derives credentials from a password with the given salt (at most SCRAM_SALT_MAX bytes; NULL:
 * a fresh random salt of SCRAM_SALT_LEN) and iterations. Returns 0, or -1 when SASLprep refuses the password. */
int scram_derive(scram_hash h, const char *password, const uint8_t *salt, size_t salt_len,
                 uint32_t iterations, scram_credentials *out);

/* SaltedPassword for an already prepared password: the expensive step (PBKDF2). */
void scram_salted_password(scram_hash h, const char *prepared, size_t len, const uint8_t *salt,
                           size_t salt_len, uint32_t iterations, uint8_t out[SCRAM_MAX_KEY]);
/* HMAC(key, data) and H(data) for the mechanism's hash. */
void scram_hmac(scram_hash h, const uint8_t *key, size_t key_len, const void *data, size_t len,
                uint8_t out[SCRAM_MAX_KEY]);
void scram_digest(scram_hash h, const void *data, size_t len, uint8_t out[SCRAM_MAX_KEY]);

#endif
