/* shard/sasl_mech.h — inside shard/sasl: the session all mechanisms share, the hooks each one
 * fills in, and the helpers they have in common. Only shard/sasl*.c and the tests include it.
 *
 * shard/sasl.c owns the turn-taking (which call is allowed when, the empty first challenge, the
 * end of the exchange); a mechanism's hooks are only called in turn and only parse and decide.
 */
#ifndef JABSHARD_SHARD_SASL_MECH_H
#define JABSHARD_SHARD_SASL_MECH_H

#include "shard/sasl.h"

#define SASL_NAME_MAX 255        /* bytes in an authcid or authzid */
#define SASL_PASSWORD_MAX 1023   /* bytes in a PLAIN password */

typedef enum {
    SASL_PHASE_START,   /* waiting for the client's first message */
    SASL_PHASE_MORE,    /* a challenge went out: waiting for the next response */
    SASL_PHASE_CREDS,   /* waiting for sasl_creds */
    SASL_PHASE_VERIFY,  /* waiting for sasl_verified */
    SASL_PHASE_DONE,    /* success or failure was said */
} sasl_phase;

typedef struct sasl_mech_ops {
    void *(*start)(sasl_session *s);
    /* A non-empty client message in phase START or MORE. */
    sasl_result (*step)(sasl_session *s, const uint8_t *in, size_t len, buf *out,
                        sasl_failure *why);
    sasl_result (*creds)(sasl_session *s, const scram_credentials *sha1,
                         const scram_credentials *sha256, buf *out, sasl_failure *why);
    /* NULL for mechanisms that never ask for a verification. */
    sasl_result (*verified)(sasl_session *s, bool ok, buf *out, sasl_failure *why);
    /* Wipes and frees the state: at the end of the exchange, or from sasl_free. */
    void (*finish)(void *state);
} sasl_mech_ops;

/* Owned by the connection's IO thread, like the whole session. */
struct sasl_session {
    sasl_mech mech;
    const sasl_mech_ops *ops;
    void *state;                /* the mechanism's, until the exchange ends */
    sasl_phase phase;
    bool prompted;              /* an empty challenge asked for the first message */
    bool has_exporter;
    bool server_plus;
    uint8_t exporter[SASL_EXPORTER_LEN];
    char *authcid;              /* SASLprep'd; set by the mechanism's first step */
    char *authzid;              /* as the client sent it (decoded), or NULL */
    bool password_rejected;     /* the failure was a wrong password or an unknown user */
};

extern const sasl_mech_ops sasl_scram_ops;
extern const sasl_mech_ops sasl_plain_ops;

bool sasl_mech_is_plus(sasl_mech mech);
/* Marks the session as failed on its credentials, and fails with not-authorized. */
sasl_result sasl_reject_password(sasl_session *s, sasl_failure *why);
/* Sets *why (when why is not NULL) and returns SASL_FAILURE. */
sasl_result sasl_fail(sasl_failure *why, sasl_failure f);
/* Whether len bytes are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates) with no
 * NUL: what every field of SCRAM and PLAIN must be. */
bool sasl_text_valid(const uint8_t *p, size_t len);
/* SASLprep (stored-strings profile) of a non-empty name of at most SASL_NAME_MAX bytes that
 * stays within SASL_NAME_MAX: a malloc'd string, or NULL when it cannot be a username. */
char *sasl_prep_name(const char *name);

/* Tests only: the server nonce suffix this SCRAM session will use instead of a random one, so
 * the RFC example exchanges can be replayed byte for byte. Call before sasl_creds. */
void sasl_scram_set_test_nonce(sasl_session *s, const char *server_nonce);

#endif
