/* shard/sasl_scram.c — SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) and their -PLUS forms
 * with tls-exporter channel binding (RFC 9266), on the server side.
 *
 * The client's messages are parsed to the letter of RFC 5802 §7: what the grammar does not allow
 * is malformed-request, so that the AuthMessage both sides sign is exactly what was parsed.
 * Attribute names are case-sensitive (§5.1). A check that fails on what the client proved
 * (channel binding, nonce, proof) is not-authorized.
 */
#include "shard/sasl_mech.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"

#define SCRAM_MESSAGE_MAX 4096  /* bytes in one client message: the fields' limits and room for
                                 * extensions, which are signed, so kept in AuthMessage */
#define SCRAM_CNONCE_MAX 255    /* characters in the client's nonce */
#define SCRAM_SNONCE_LEN 32     /* random characters the server adds to it */

typedef struct sasl_scram {
    scram_hash hash;
    bool plus;
    char *cbind;            /* the c= value the client must send back: base64(gs2-header [+ cb]) */
    char *nonce;            /* the client's nonce, then client + server nonce */
    char *test_nonce;       /* sasl_scram_set_test_nonce's server nonce, or NULL */
    buf auth;               /* AuthMessage, as far as it is known */
    scram_credentials creds;
    bool fake;              /* made-up credentials for a user who does not exist */
} sasl_scram;

/* Reading a message: p advances towards end. */
typedef struct scram_cursor {
    const char *p;
    const char *end;
} scram_cursor;

static bool scram_eat(scram_cursor *c, const char *literal)
{
    size_t n = strlen(literal);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, literal, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Everything up to the next comma or the end. */
static const char *scram_value(scram_cursor *c, size_t *len)
{
    const char *v = c->p;
    const char *comma = memchr(c->p, ',', (size_t)(c->end - c->p));
    c->p = comma ? comma : c->end;
    *len = (size_t)(c->p - v);
    return v;
}

/* saslname: "=2C" stands for ",", "=3D" for "=" (ABNF literals: either case of the hex), and any
 * other "=" is refused. Returns the decoded name (malloc'd), or NULL. */
static char *scram_saslname(const char *v, size_t len)
{
    if (len == 0 || len > 3 * SASL_NAME_MAX)
        return NULL;
    char *name = mem_alloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] != '=') {
            name[n++] = v[i];
            continue;
        }
        if (len - i >= 3 && v[i + 1] == '2' && (v[i + 2] == 'C' || v[i + 2] == 'c'))
            name[n++] = ',';
        else if (len - i >= 3 && v[i + 1] == '3' && (v[i + 2] == 'D' || v[i + 2] == 'd'))
            name[n++] = '=';
        else {
            free(name);
            return NULL;
        }
        i += 2;
    }
    if (n > SASL_NAME_MAX) {
        free(name);
        return NULL;
    }
    name[n] = '\0';
    return name;
}

/* attr-val = ALPHA "=" 1*value-char, the text already known to be UTF-8 without NUL and the value
 * ending at a comma. "m" is reserved: RFC 5802 §5.1 wants its presence to fail the exchange. */
static bool scram_extension(scram_cursor *c)
{
    if (c->end - c->p < 3)
        return false;
    char a = c->p[0];
    if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')) || a == 'm' || c->p[1] != '=')
        return false;
    c->p += 2;
    size_t len;
    scram_value(c, &len);
    return len > 0;
}

static char *scram_base64(const uint8_t *data, size_t len)
{
    char *out = mem_alloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* The proof: exactly the base64 of key_len bytes, in its one canonical spelling. */
static bool scram_proof_decode(const char *v, size_t len, uint8_t *out, size_t key_len)
{
    uint8_t raw[SCRAM_MAX_KEY + 3];
    if (len != 4 * ((key_len + 2) / 3) ||
        EVP_DecodeBlock(raw, (const unsigned char *)v, (int)len) < (int)key_len)
        return false;
    char *again = scram_base64(raw, key_len);
    bool same = memcmp(again, v, len) == 0;
    free(again);
    memcpy(out, raw, key_len);
    return same;
}

static void *scram_start(sasl_session *s)
{
    sasl_scram *st = mem_zalloc(sizeof(*st));
    st->hash = s->mech == SASL_SCRAM_SHA1 || s->mech == SASL_SCRAM_SHA1_PLUS ? SCRAM_SHA1
                                                                              : SCRAM_SHA256;
    st->plus = sasl_mech_is_plus(s->mech);
    return st;
}

/* gs2-header: the channel binding flag and the optional authzid. Sets st->cbind and returns
 * SASL_NEED_CREDS to go on, or fails. */
static sasl_result scram_gs2_header(sasl_session *s, sasl_scram *st, scram_cursor *c,
                                    sasl_failure *why)
{
    const char *start = c->p;
    bool bind = false;
    if (scram_eat(c, "y,")) {
        /* The client could have bound but believes we cannot: if we advertised -PLUS on a
         * connection that can bind, someone removed it on the way (RFC 5802 §6). */
        if (!st->plus && s->server_plus && s->has_exporter)
            return sasl_fail(why, SASL_NOT_AUTHORIZED);
    } else if (scram_eat(c, "p=")) {
        size_t len;
        const char *name = scram_value(c, &len);
        if (!st->plus || len != strlen("tls-exporter") || memcmp(name, "tls-exporter", len) != 0 ||
            !scram_eat(c, ","))
            return sasl_fail(why, SASL_MALFORMED_REQUEST);
        bind = true;
    } else if (!scram_eat(c, "n,")) {
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    }
    if (st->plus && !bind)
        return sasl_fail(why, SASL_MALFORMED_REQUEST);

    if (scram_eat(c, "a=")) {
        size_t len;
        const char *v = scram_value(c, &len);
        s->authzid = scram_saslname(v, len);
        if (!s->authzid)
            return sasl_fail(why, SASL_MALFORMED_REQUEST);
    }
    if (!scram_eat(c, ","))
        return sasl_fail(why, SASL_MALFORMED_REQUEST);

    size_t gs2_len = (size_t)(c->p - start);
    uint8_t *cb = mem_alloc(gs2_len + SASL_EXPORTER_LEN);
    memcpy(cb, start, gs2_len);
    if (bind)
        memcpy(cb + gs2_len, s->exporter, SASL_EXPORTER_LEN);
    st->cbind = scram_base64(cb, gs2_len + (bind ? SASL_EXPORTER_LEN : 0));
    free(cb);
    return SASL_NEED_CREDS;
}

/* client-first-message = gs2-header [reserved-mext ","] username "," nonce ["," extensions] */
static sasl_result scram_first(sasl_session *s, sasl_scram *st, const char *in, size_t len,
                               sasl_failure *why)
{
    scram_cursor c = {in, in + len};
    if (scram_gs2_header(s, st, &c, why) == SASL_FAILURE)
        return SASL_FAILURE;
    const char *bare = c.p;

    if (!scram_eat(&c, "n="))
        return sasl_fail(why, SASL_MALFORMED_REQUEST); /* also a reserved "m=" */
    size_t name_len;
    const char *v = scram_value(&c, &name_len);
    char *name = scram_saslname(v, name_len);
    if (!name)
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    s->authcid = sasl_prep_name(name);
    free(name);
    if (!s->authcid)
        return sasl_fail(why, SASL_MALFORMED_REQUEST);

    if (!scram_eat(&c, ",r="))
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    size_t nonce_len;
    const char *nonce = scram_value(&c, &nonce_len);
    if (nonce_len == 0 || nonce_len > SCRAM_CNONCE_MAX)
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    for (size_t i = 0; i < nonce_len; i++)
        if (nonce[i] < 0x21 || nonce[i] > 0x7e) /* printable; "," ended the value */
            return sasl_fail(why, SASL_MALFORMED_REQUEST);
    while (c.p < c.end)
        if (!scram_eat(&c, ",") || !scram_extension(&c))
            return sasl_fail(why, SASL_MALFORMED_REQUEST);

    st->nonce = mem_strndup(nonce, nonce_len);
    buf_append(&st->auth, bare, (size_t)(c.end - bare));
    return SASL_NEED_CREDS;
}

static uint8_t scram_fake_key[32];
static pthread_once_t scram_fake_once = PTHREAD_ONCE_INIT;

static void scram_fake_init(void)
{
    random_bytes(scram_fake_key, sizeof(scram_fake_key));
}

/* Credentials for a user who does not exist. The salt is a keyed hash of the mechanism and the
 * name, so asking twice shows the same salt, as for a real user (for this process's lifetime);
 * the keys are random, so no proof can match them. */
static void scram_fake_creds(sasl_scram *st, const char *authcid)
{
    pthread_once(&scram_fake_once, scram_fake_init);
    const char *mech = scram_mechanism(st->hash);
    size_t mech_len = strlen(mech) + 1, name_len = strlen(authcid);
    char msg[sizeof("SCRAM-SHA-256") + SASL_NAME_MAX];
    memcpy(msg, mech, mech_len);
    memcpy(msg + mech_len, authcid, name_len);
    uint8_t mac[SCRAM_MAX_KEY];
    scram_hmac(SCRAM_SHA256, scram_fake_key, sizeof(scram_fake_key), msg, mech_len + name_len,
               mac);
    memset(&st->creds, 0, sizeof(st->creds));
    memcpy(st->creds.salt, mac, SCRAM_SALT_LEN);
    st->creds.salt_len = SCRAM_SALT_LEN;
    st->creds.iterations = SCRAM_ITERATIONS;
    random_bytes(st->creds.stored_key, sizeof(st->creds.stored_key));
    random_bytes(st->creds.server_key, sizeof(st->creds.server_key));
    st->fake = true;
}

/* server-first-message = "r=" c-nonce s-nonce ",s=" salt ",i=" iteration-count */
static sasl_result scram_creds(sasl_session *s, const scram_credentials *sha1,
                               const scram_credentials *sha256, buf *out, sasl_failure *why)
{
    sasl_scram *st = s->state;
    const scram_credentials *creds = st->hash == SCRAM_SHA1 ? sha1 : sha256;
    if (creds) {
        if (creds->iterations == 0 || creds->salt_len == 0 || creds->salt_len > SCRAM_SALT_MAX)
            return sasl_fail(why, SASL_TEMPORARY_AUTH_FAILURE);
        st->creds = *creds;
    } else {
        scram_fake_creds(st, s->authcid);
    }

    char random_nonce[SCRAM_SNONCE_LEN + 1];
    const char *server_nonce = st->test_nonce;
    if (!server_nonce) {
        random_token(random_nonce, SCRAM_SNONCE_LEN);
        server_nonce = random_nonce;
    }
    size_t client_len = strlen(st->nonce), server_len = strlen(server_nonce);
    st->nonce = mem_realloc(st->nonce, client_len + server_len + 1);
    memcpy(st->nonce + client_len, server_nonce, server_len + 1);

    char *salt = scram_base64(st->creds.salt, st->creds.salt_len);
    size_t first = buf_len(out);
    buf_appendf(out, "r=%s,s=%s,i=%u", st->nonce, salt, (unsigned)st->creds.iterations);
    free(salt);
    buf_append(&st->auth, ",", 1);
    buf_append(&st->auth, buf_data(out) + first, buf_len(out) - first);
    buf_append(&st->auth, ",", 1);
    return SASL_CHALLENGE;
}

/* client-final-message = "c=" base64 ",r=" nonce ["," extensions] ",p=" base64 */
static sasl_result scram_final(sasl_session *s, sasl_scram *st, const char *in, size_t len,
                               buf *out, sasl_failure *why)
{
    scram_cursor c = {in, in + len};
    size_t key_len = scram_key_len(st->hash);
    size_t cbind_len, nonce_len, proof_len;

    if (!scram_eat(&c, "c="))
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    const char *cbind = scram_value(&c, &cbind_len);
    if (!scram_eat(&c, ",r="))
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    const char *nonce = scram_value(&c, &nonce_len);
    const char *without_proof;
    for (;;) {
        without_proof = c.p;
        if (!scram_eat(&c, ","))
            return sasl_fail(why, SASL_MALFORMED_REQUEST);
        if (scram_eat(&c, "p="))
            break;
        if (!scram_extension(&c))
            return sasl_fail(why, SASL_MALFORMED_REQUEST);
    }
    const char *proof64 = scram_value(&c, &proof_len);
    uint8_t proof[SCRAM_MAX_KEY];
    if (c.p != c.end || !scram_proof_decode(proof64, proof_len, proof, key_len))
        return sasl_fail(why, SASL_MALFORMED_REQUEST);

    /* The binding data is no secret from the client, but the comparison costs nothing to make
     * constant-time. */
    if (cbind_len != strlen(st->cbind) || CRYPTO_memcmp(cbind, st->cbind, cbind_len) != 0 ||
        nonce_len != strlen(st->nonce) || memcmp(nonce, st->nonce, nonce_len) != 0)
        return sasl_fail(why, SASL_NOT_AUTHORIZED);

    buf_append(&st->auth, in, (size_t)(without_proof - in));
    uint8_t signature[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY], stored_key[SCRAM_MAX_KEY];
    scram_hmac(st->hash, st->creds.stored_key, key_len, buf_data(&st->auth), buf_len(&st->auth),
               signature);
    for (size_t i = 0; i < key_len; i++)
        client_key[i] = proof[i] ^ signature[i];
    scram_digest(st->hash, client_key, key_len, stored_key);
    bool ok = CRYPTO_memcmp(stored_key, st->creds.stored_key, key_len) == 0 && !st->fake;
    OPENSSL_cleanse(client_key, sizeof(client_key));
    if (!ok)
        return sasl_reject_password(s, why);

    scram_hmac(st->hash, st->creds.server_key, key_len, buf_data(&st->auth), buf_len(&st->auth),
               signature);
    char *verifier = scram_base64(signature, key_len);
    buf_appendf(out, "v=%s", verifier);
    free(verifier);
    return SASL_SUCCESS;
}

static sasl_result scram_step(sasl_session *s, const uint8_t *in, size_t len, buf *out,
                              sasl_failure *why)
{
    if (len > SCRAM_MESSAGE_MAX || !sasl_text_valid(in, len))
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    if (s->phase == SASL_PHASE_START)
        return scram_first(s, s->state, (const char *)in, len, why);
    return scram_final(s, s->state, (const char *)in, len, out, why);
}

static void scram_finish(void *state)
{
    sasl_scram *st = state;
    OPENSSL_cleanse(&st->creds, sizeof(st->creds));
    free(st->cbind);
    free(st->nonce);
    free(st->test_nonce);
    buf_free(&st->auth);
    free(st);
}

void sasl_scram_set_test_nonce(sasl_session *s, const char *server_nonce)
{
    if (s->ops != &sasl_scram_ops || !s->state)
        abort();
    sasl_scram *st = s->state;
    free(st->test_nonce);
    st->test_nonce = mem_strdup(server_nonce);
}

const sasl_mech_ops sasl_scram_ops = {
    .start = scram_start,
    .step = scram_step,
    .creds = scram_creds,
    .verified = NULL,
    .finish = scram_finish,
};
