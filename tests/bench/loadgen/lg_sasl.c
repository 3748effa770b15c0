/* tests/bench/loadgen/lg_sasl.c — SASL PLAIN and SCRAM-SHA-1 for the load generator's clients,
 * over core/scram's PBKDF2 and HMAC, with the per-user key cache (see lg_sasl.h). */
#include "tests/bench/loadgen/lg_sasl.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/random.h"

/* Far above any server's setting (Prosody's and ejabberd's are 4096 to 10,000); a larger count
 * from a server is a broken or hostile server, not a reason to spin for minutes. */
#define LG_SCRAM_MAX_ITERATIONS 1000000
#define LG_SCRAM_NONCE_LEN 24

typedef struct lg_scram_entry {
    uint8_t salt[SCRAM_SALT_MAX];
    uint8_t salt_len;
    bool valid;
    uint32_t iterations;
    uint8_t client_key[SCRAM_MAX_KEY];
    uint8_t stored_key[SCRAM_MAX_KEY];
    uint8_t server_key[SCRAM_MAX_KEY];
} lg_scram_entry;

struct lg_scram_cache {
    lg_scram_entry *entries;   /* one per user index */
    uint32_t users;
    uint64_t derived, reused;
};

lg_scram_cache *lg_scram_cache_new(uint32_t users)
{
    lg_scram_cache *c = mem_zalloc(sizeof(*c));
    c->entries = mem_array(users ? users : 1, sizeof(*c->entries));
    c->users = users;
    return c;
}

void lg_scram_cache_free(lg_scram_cache *cache)
{
    if (!cache)
        return;
    OPENSSL_cleanse(cache->entries, (size_t)cache->users * sizeof(*cache->entries));
    free(cache->entries);
    free(cache);
}

void lg_scram_cache_counts(const lg_scram_cache *cache, uint64_t *derived, uint64_t *reused)
{
    *derived = cache->derived;
    *reused = cache->reused;
}

const char *lg_sasl_mech_name(lg_mech mech)
{
    return mech == LG_MECH_PLAIN ? "PLAIN" : "SCRAM-SHA-1";
}

static void b64_append(buf *out, const void *data, size_t len)
{
    if (!len)
        return;
    char *p = buf_reserve(out, 4 * ((len + 2) / 3) + 1);
    buf_commit(out, (size_t)EVP_EncodeBlock((unsigned char *)p, data, (int)len));
}

/* Decodes base64 (whitespace ignored; "=" alone is empty data, RFC 6120 §6.4.2) into a
 * NUL-terminated malloc'd string; *len gets its length. NULL when it is not base64, or when it
 * holds a NUL and is meant as text (binary: a salt). */
static char *b64_decode(const char *text, size_t *len, bool binary)
{
    size_t n = strlen(text), clean_len = 0;
    char *clean = mem_alloc(n + 1);
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)text[i]))
            clean[clean_len++] = text[i];
    clean[clean_len] = '\0';
    if (clean_len == 1 && clean[0] == '=')
        clean_len = 0;
    char *out = mem_alloc(clean_len / 4 * 3 + 1);
    int got = 0;
    if (clean_len % 4 == 0 && clean_len) {
        got = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)clean, (int)clean_len);
        for (size_t i = clean_len; got >= 0 && i > 0 && clean[i - 1] == '='; i--)
            got--;
    } else if (clean_len) {
        got = -1;
    }
    free(clean);
    if (got < 0 || (!binary && memchr(out, '\0', (size_t)got))) {
        free(out);
        return NULL;
    }
    out[got] = '\0';
    *len = (size_t)got;
    return out;
}

/* RFC 5802 §5.1 saslname: '=' and ',' are escaped. */
static void saslname_append(buf *out, const char *name)
{
    for (const char *p = name; *p; p++) {
        if (*p == '=')
            buf_append(out, "=3D", 3);
        else if (*p == ',')
            buf_append(out, "=2C", 3);
        else
            buf_append(out, p, 1);
    }
}

void lg_sasl_start(lg_sasl *s, lg_mech mech, const char *user, const char *password,
                   const char *nonce, buf *out)
{
    lg_sasl_clear(s);
    s->mech = mech;
    s->step = 1;
    buf msg = BUF_INIT;
    if (mech == LG_MECH_PLAIN) {
        /* authzid empty: the server derives it from the authentication identity. */
        buf_append(&msg, "", 1);
        buf_append(&msg, user, strlen(user));
        buf_append(&msg, "", 1);
        buf_append(&msg, password, strlen(password));
    } else {
        char random_nonce[LG_SCRAM_NONCE_LEN + 1];
        if (!nonce) {
            random_token(random_nonce, LG_SCRAM_NONCE_LEN);
            nonce = random_nonce;
        }
        buf bare = BUF_INIT;
        buf_append(&bare, "n=", 2);
        saslname_append(&bare, user);
        buf_appendf(&bare, ",r=%s", nonce);
        s->first_bare = mem_strndup(buf_data(&bare), buf_len(&bare));
        buf_free(&bare);
        buf_appendf(&msg, "n,,%s", s->first_bare);
    }
    b64_append(out, buf_data(&msg), buf_len(&msg));
    OPENSSL_cleanse(buf_data(&msg), buf_len(&msg));
    buf_free(&msg);
}

/* The value of attribute `name` (a single letter) in a SCRAM message, as a pointer into msg and a
 * length; -1 when absent. Attributes are "x=value" separated by commas. */
static int scram_attr(const char *msg, char name, const char **value, size_t *len)
{
    for (const char *p = msg; *p;) {
        size_t field = strcspn(p, ",");
        if (field >= 2 && p[0] == name && p[1] == '=') {
            *value = p + 2;
            *len = field - 2;
            return 0;
        }
        p += field;
        if (*p == ',')
            p++;
    }
    return -1;
}

/* The keys for this user and this salt and count: from the cache, or derived and cached. */
static int scram_keys(lg_scram_cache *cache, uint32_t user_index, const char *password,
                      const uint8_t *salt, size_t salt_len, uint32_t iterations,
                      const lg_scram_entry **keys, const char **why)
{
    lg_scram_entry *e = &cache->entries[user_index];
    if (e->valid && e->iterations == iterations && e->salt_len == salt_len &&
        memcmp(e->salt, salt, salt_len) == 0) {
        cache->reused++;
        *keys = e;
        return 0;
    }
    char *prepared;
    if (scram_saslprep(password, &prepared) != 0) {
        *why = "SASLprep refuses the password";
        return -1;
    }
    uint8_t salted[SCRAM_MAX_KEY];
    size_t key_len = scram_key_len(SCRAM_SHA1);
    scram_salted_password(SCRAM_SHA1, prepared, strlen(prepared), salt, salt_len, iterations,
                          salted);
    OPENSSL_cleanse(prepared, strlen(prepared));
    free(prepared);
    scram_hmac(SCRAM_SHA1, salted, key_len, "Client Key", 10, e->client_key);
    scram_digest(SCRAM_SHA1, e->client_key, key_len, e->stored_key);
    scram_hmac(SCRAM_SHA1, salted, key_len, "Server Key", 10, e->server_key);
    OPENSSL_cleanse(salted, sizeof(salted));
    memcpy(e->salt, salt, salt_len);
    e->salt_len = (uint8_t)salt_len;
    e->iterations = iterations;
    e->valid = true;
    cache->derived++;
    *keys = e;
    return 0;
}

/* server-first-message in, client-final-message out. */
static int scram_first(lg_sasl *s, lg_scram_cache *cache, uint32_t user_index, const char *password,
                       const char *server_first, buf *out, const char **why)
{
    const char *nonce, *salt_b64, *iter;
    size_t nonce_len, salt_b64_len, iter_len;
    if (server_first[0] == 'm') {
        *why = "server-first-message has a mandatory extension";
        return -1;
    }
    if (scram_attr(server_first, 'r', &nonce, &nonce_len) != 0 ||
        scram_attr(server_first, 's', &salt_b64, &salt_b64_len) != 0 ||
        scram_attr(server_first, 'i', &iter, &iter_len) != 0) {
        *why = "server-first-message lacks r=, s= or i=";
        return -1;
    }
    const char *client_nonce = strstr(s->first_bare, ",r=") + 3;
    size_t client_nonce_len = strlen(client_nonce);
    if (nonce_len <= client_nonce_len || memcmp(nonce, client_nonce, client_nonce_len) != 0) {
        *why = "the server's nonce does not extend ours";
        return -1;
    }
    char iter_text[16];
    char *end;
    if (iter_len == 0 || iter_len >= sizeof(iter_text)) {
        *why = "bad iteration count";
        return -1;
    }
    memcpy(iter_text, iter, iter_len);
    iter_text[iter_len] = '\0';
    unsigned long iterations = strtoul(iter_text, &end, 10);
    if (*end || iterations < 1 || iterations > LG_SCRAM_MAX_ITERATIONS) {
        *why = "bad iteration count";
        return -1;
    }
    char *salt_text = mem_strndup(salt_b64, salt_b64_len);
    size_t salt_len = 0;
    char *salt = b64_decode(salt_text, &salt_len, true);
    free(salt_text);
    if (!salt || salt_len == 0 || salt_len > SCRAM_SALT_MAX) {
        free(salt);
        *why = "bad salt";
        return -1;
    }
    const lg_scram_entry *keys;
    int rc = scram_keys(cache, user_index, password, (const uint8_t *)salt, salt_len,
                        (uint32_t)iterations, &keys, why);
    free(salt);
    if (rc != 0)
        return -1;

    size_t key_len = scram_key_len(SCRAM_SHA1);
    buf final = BUF_INIT, auth = BUF_INIT;
    buf_appendf(&final, "c=biws,r=%.*s", (int)nonce_len, nonce);
    buf_appendf(&auth, "%s,%s,%.*s", s->first_bare, server_first, (int)buf_len(&final),
                buf_data(&final));
    uint8_t signature[SCRAM_MAX_KEY], proof[SCRAM_MAX_KEY];
    scram_hmac(SCRAM_SHA1, keys->stored_key, key_len, buf_data(&auth), buf_len(&auth), signature);
    for (size_t i = 0; i < key_len; i++)
        proof[i] = keys->client_key[i] ^ signature[i];
    scram_hmac(SCRAM_SHA1, keys->server_key, key_len, buf_data(&auth), buf_len(&auth),
               s->server_signature);
    buf_append(&final, ",p=", 3);
    b64_append(&final, proof, key_len);
    b64_append(out, buf_data(&final), buf_len(&final));
    buf_free(&final);
    buf_free(&auth);
    return 0;
}

/* server-final-message: "v=signature" or "e=error". */
static int scram_final(lg_sasl *s, const char *server_final, const char **why)
{
    const char *v;
    size_t v_len;
    if (scram_attr(server_final, 'e', &v, &v_len) == 0) {
        *why = "the server's final message is an error (e=)";
        return -1;
    }
    if (scram_attr(server_final, 'v', &v, &v_len) != 0) {
        *why = "the server's final message lacks v=";
        return -1;
    }
    buf expect = BUF_INIT;
    b64_append(&expect, s->server_signature, scram_key_len(SCRAM_SHA1));
    bool match = buf_len(&expect) == v_len && memcmp(buf_data(&expect), v, v_len) == 0;
    buf_free(&expect);
    if (!match) {
        *why = "the server's signature is wrong";
        return -1;
    }
    s->verified = true;
    return 0;
}

int lg_sasl_challenge(lg_sasl *s, lg_scram_cache *cache, uint32_t user_index, const char *password,
                      const char *b64, buf *out, const char **why)
{
    if (s->mech == LG_MECH_PLAIN) {
        *why = "a challenge for PLAIN";
        return -1;
    }
    size_t len;
    char *msg = b64_decode(b64, &len, false);
    if (!msg) {
        *why = "a challenge that is not base64";
        return -1;
    }
    int rc;
    if (s->step == 1) {
        rc = scram_first(s, cache, user_index, password, msg, out, why);
        s->step = 2;
    } else if (s->step == 2 && !s->verified) {
        /* Servers that send server-final-message as a challenge want an empty response. */
        rc = scram_final(s, msg, why);
    } else {
        *why = "an unexpected challenge";
        rc = -1;
    }
    free(msg);
    return rc;
}

int lg_sasl_success(lg_sasl *s, const char *b64, const char **why)
{
    if (s->mech == LG_MECH_PLAIN)
        return 0;
    if (s->step != 2) {
        *why = "success before the proof";
        return -1;
    }
    size_t len;
    char *msg = b64_decode(b64, &len, false);
    if (!msg) {
        *why = "a success that is not base64";
        return -1;
    }
    int rc = 0;
    if (len && s->verified) {
        *why = "a second server signature";
        rc = -1;
    } else if (len) {
        rc = scram_final(s, msg, why);
    } else if (!s->verified) {
        *why = "success without the server's signature";
        rc = -1;
    }
    free(msg);
    return rc;
}

void lg_sasl_clear(lg_sasl *s)
{
    free(s->first_bare);
    OPENSSL_cleanse(s->server_signature, sizeof(s->server_signature));
    *s = (lg_sasl)LG_SASL_INIT;
}
