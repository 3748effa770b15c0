/* fuzz/fuzz_sasl.c — a server-side SASL exchange (shard/sasl.h) driven by arbitrary client
 * messages.
 *
 * Input: the first byte picks the mechanism (low four bits, modulo the count), whether the
 * connection has a tls-exporter value (0x10), whether -PLUS was advertised (0x20) and whether the
 * first credentials lookup finds the user (0x40; later lookups alternate). The rest is split on
 * 0xFF (never in UTF-8, so no valid message needs it) into client messages. A SCRAM message
 * ending in ",p=" gets the right proof for the exchange so far appended, so the fuzzer can reach
 * success; the server nonce is fixed to "FUZZ" so that it can echo the combined nonce.
 * Credentials are "pencil" at one iteration to keep PLAIN's verification fast.
 *
 * Checked: the results follow the contract (output only on challenge and success, success only
 * for the right password and real credentials, nothing accepted after the end, names within
 * limits), and the server's signature on a success the harness proved. */
#include "shard/sasl_mech.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static scram_credentials fuzz_creds[2];                 /* by scram_hash */
static uint8_t fuzz_client_key[2][SCRAM_MAX_KEY];

static void fuzz_init(void)
{
    static bool done;
    if (done)
        return;
    for (int h = SCRAM_SHA1; h <= SCRAM_SHA256; h++) {
        if (scram_derive((scram_hash)h, "pencil", (const uint8_t *)"fuzz-salt", 9, 1,
                         &fuzz_creds[h]) != 0)
            abort();
        uint8_t salted[SCRAM_MAX_KEY];
        scram_salted_password((scram_hash)h, "pencil", 6, fuzz_creds[h].salt,
                              fuzz_creds[h].salt_len, 1, salted);
        scram_hmac((scram_hash)h, salted, scram_key_len((scram_hash)h), "Client Key", 10,
                   fuzz_client_key[h]);
    }
    done = true;
}

/* What the harness knows of a SCRAM exchange, to prove it and check the server. */
typedef struct fuzz_scram {
    scram_hash hash;
    buf first_bare;     /* the client-first-message-bare of the accepted first message */
    buf server_first;
    buf auth;           /* AuthMessage of the last proof the harness made */
    bool proved;
} fuzz_scram;

/* Appends the proof to msg (which ends in ",p=") for the exchange so far. */
static void fuzz_prove(fuzz_scram *fs, buf *msg)
{
    size_t key_len = scram_key_len(fs->hash);
    buf_free(&fs->auth);
    buf_append(&fs->auth, buf_data(&fs->first_bare), buf_len(&fs->first_bare));
    buf_append(&fs->auth, ",", 1);
    buf_append(&fs->auth, buf_data(&fs->server_first), buf_len(&fs->server_first));
    buf_append(&fs->auth, ",", 1);
    buf_append(&fs->auth, buf_data(msg), buf_len(msg) - 3);
    uint8_t signature[SCRAM_MAX_KEY], proof[SCRAM_MAX_KEY];
    scram_hmac(fs->hash, fuzz_creds[fs->hash].stored_key, key_len, buf_data(&fs->auth),
               buf_len(&fs->auth), signature);
    for (size_t i = 0; i < key_len; i++)
        proof[i] = fuzz_client_key[fs->hash][i] ^ signature[i];
    char proof64[4 * ((SCRAM_MAX_KEY + 2) / 3) + 1];
    EVP_EncodeBlock((unsigned char *)proof64, proof, (int)key_len);
    buf_append(msg, proof64, strlen(proof64));
    fs->proved = true;
}

/* The server-final message a correct server sends for the proof the harness made. */
static bool fuzz_server_final_ok(fuzz_scram *fs, const buf *out)
{
    size_t key_len = scram_key_len(fs->hash);
    uint8_t signature[SCRAM_MAX_KEY];
    scram_hmac(fs->hash, fuzz_creds[fs->hash].server_key, key_len, buf_data(&fs->auth),
               buf_len(&fs->auth), signature);
    char expect[2 + 4 * ((SCRAM_MAX_KEY + 2) / 3) + 1] = "v=";
    EVP_EncodeBlock((unsigned char *)expect + 2, signature, (int)key_len);
    return buf_len(out) == strlen(expect) && memcmp(buf_data(out), expect, buf_len(out)) == 0;
}

static void fuzz_check_names(const sasl_session *s)
{
    const char *authcid = sasl_authcid(s), *authzid = sasl_authzid(s);
    if ((authcid && (authcid[0] == '\0' || strlen(authcid) > SASL_NAME_MAX)) ||
        (authzid && (authzid[0] == '\0' || strlen(authzid) > SASL_NAME_MAX)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fuzz_init();
    static const uint8_t exporter[SASL_EXPORTER_LEN] = "fuzz-tls-exporter-value-32-bytes";
    sasl_mech mech = (sasl_mech)((data[0] & 0x0f) % SASL_MECH_COUNT);
    bool scram = mech != SASL_PLAIN;
    sasl_session *s = sasl_new(mech, data[0] & 0x10 ? exporter : NULL, data[0] & 0x20);
    bool known = data[0] & 0x40;
    fuzz_scram fs = {
        .hash = mech == SASL_SCRAM_SHA1 || mech == SASL_SCRAM_SHA1_PLUS ? SCRAM_SHA1 : SCRAM_SHA256,
    };
    if (scram)
        sasl_scram_set_test_nonce(s, "FUZZ");

    buf out = BUF_INIT, msg = BUF_INIT;
    bool over = false, real_creds = false, verified = false;
    const uint8_t *p = data + 1, *end = data + size;
    while (p <= end) {
        const uint8_t *sep = memchr(p, 0xff, (size_t)(end - p));
        const uint8_t *stop = sep ? sep : end;
        buf_free(&msg);
        buf_append(&msg, p, (size_t)(stop - p));
        p = stop + 1;

        fs.proved = false;
        if (scram && buf_len(&fs.server_first) && buf_len(&msg) >= 3 &&
            memcmp(buf_data(&msg) + buf_len(&msg) - 3, ",p=", 3) == 0)
            fuzz_prove(&fs, &msg);

        sasl_failure why = SASL_ABORTED;
        buf_free(&out);
        sasl_result r = sasl_step(s, (const uint8_t *)buf_data(&msg), buf_len(&msg), &out, &why);
        if (over && (r != SASL_FAILURE || why != SASL_MALFORMED_REQUEST))
            abort();
        if (r == SASL_NEED_CREDS && scram) {
            /* Remember the bare message for proofs: after the gs2-header's second comma. */
            const char *m = buf_data(&msg), *c1 = memchr(m, ',', buf_len(&msg));
            const char *c2 = c1 ? memchr(c1 + 1, ',', buf_len(&msg) - (size_t)(c1 + 1 - m)) : NULL;
            if (!c2)
                abort();
            buf_append(&fs.first_bare, c2 + 1, buf_len(&msg) - (size_t)(c2 + 1 - m));
        }
        while (r == SASL_NEED_CREDS || r == SASL_NEED_VERIFY) {
            if (buf_len(&out) != 0 || !sasl_authcid(s))
                abort();
            fuzz_check_names(s);
            if (r == SASL_NEED_CREDS) {
                real_creds = known;
                known = !known;
                r = sasl_creds(s, real_creds ? &fuzz_creds[SCRAM_SHA1] : NULL,
                               real_creds ? &fuzz_creds[SCRAM_SHA256] : NULL, &out, &why);
            } else {
                const char *password = sasl_plain_password(s);
                if (mech != SASL_PLAIN || !password || strlen(password) > SASL_PASSWORD_MAX)
                    abort();
                verified = sasl_plain_verify(password, SCRAM_SHA1, &fuzz_creds[SCRAM_SHA1]);
                r = sasl_verified(s, verified, &out, &why);
                if (sasl_plain_password(s))
                    abort();
            }
        }
        switch (r) {
        case SASL_CHALLENGE:
            if (!scram && buf_len(&out) != 0)
                abort();
            if (buf_len(&out)) {
                if (buf_len(&fs.server_first) || memcmp(buf_data(&out), "r=", 2) != 0)
                    abort();
                buf_append(&fs.server_first, buf_data(&out), buf_len(&out));
            }
            break;
        case SASL_SUCCESS:
            if (!real_creds || !sasl_authcid(s))
                abort();
            if (scram ? !fs.proved || !fuzz_server_final_ok(&fs, &out)
                      : buf_len(&out) != 0 || !verified)
                abort();
            fuzz_check_names(s);
            over = true;
            break;
        case SASL_FAILURE:
            if (buf_len(&out) != 0 || !sasl_failure_name(why))
                abort();
            over = true;
            break;
        default:
            abort();
        }
    }
    buf_free(&out);
    buf_free(&msg);
    buf_free(&fs.first_bare);
    buf_free(&fs.server_first);
    buf_free(&fs.auth);
    sasl_free(s);
    return 0;
}
