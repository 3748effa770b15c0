/* shard/sasl.c — the common part of the server-side SASL mechanisms: names, the session and its
 * turn-taking, and the text checks SCRAM (shard/sasl_scram.c) and PLAIN (shard/sasl_plain.c)
 * share. */
#include "shard/sasl_mech.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

static const char *const sasl_mech_names[SASL_MECH_COUNT] = {
    [SASL_SCRAM_SHA1] = "SCRAM-SHA-1",
    [SASL_SCRAM_SHA1_PLUS] = "SCRAM-SHA-1-PLUS",
    [SASL_SCRAM_SHA256] = "SCRAM-SHA-256",
    [SASL_SCRAM_SHA256_PLUS] = "SCRAM-SHA-256-PLUS",
    [SASL_PLAIN] = "PLAIN",
};

static const char *const sasl_failure_names[] = {
    [SASL_ABORTED] = "aborted",
    [SASL_ACCOUNT_DISABLED] = "account-disabled",
    [SASL_CREDENTIALS_EXPIRED] = "credentials-expired",
    [SASL_ENCRYPTION_REQUIRED] = "encryption-required",
    [SASL_INCORRECT_ENCODING] = "incorrect-encoding",
    [SASL_INVALID_AUTHZID] = "invalid-authzid",
    [SASL_INVALID_MECHANISM] = "invalid-mechanism",
    [SASL_MALFORMED_REQUEST] = "malformed-request",
    [SASL_MECHANISM_TOO_WEAK] = "mechanism-too-weak",
    [SASL_NOT_AUTHORIZED] = "not-authorized",
    [SASL_TEMPORARY_AUTH_FAILURE] = "temporary-auth-failure",
};

const char *sasl_mech_name(sasl_mech mech)
{
    return (unsigned)mech < SASL_MECH_COUNT ? sasl_mech_names[mech] : NULL;
}

/* Mechanism names are compared exactly: RFC 4422 §3.1 makes them case-sensitive. */
int sasl_mech_parse(const char *name)
{
    for (int m = 0; name && m < SASL_MECH_COUNT; m++)
        if (strcmp(name, sasl_mech_names[m]) == 0)
            return m;
    return -1;
}

const char *sasl_failure_name(sasl_failure f)
{
    if ((unsigned)f >= sizeof(sasl_failure_names) / sizeof(sasl_failure_names[0]))
        return "temporary-auth-failure";
    return sasl_failure_names[f];
}

bool sasl_mech_is_plus(sasl_mech mech)
{
    return mech == SASL_SCRAM_SHA1_PLUS || mech == SASL_SCRAM_SHA256_PLUS;
}

sasl_session *sasl_new(sasl_mech mech, const uint8_t *cb_exporter, bool server_plus)
{
    if ((unsigned)mech >= SASL_MECH_COUNT)
        abort();
    sasl_session *s = mem_zalloc(sizeof(*s));
    s->mech = mech;
    s->ops = mech == SASL_PLAIN ? &sasl_plain_ops : &sasl_scram_ops;
    s->phase = SASL_PHASE_START;
    s->server_plus = server_plus;
    if (cb_exporter) {
        s->has_exporter = true;
        memcpy(s->exporter, cb_exporter, SASL_EXPORTER_LEN);
    }
    s->state = s->ops->start(s);
    return s;
}

static void sasl_finish(sasl_session *s)
{
    if (s->state) {
        s->ops->finish(s->state);
        s->state = NULL;
    }
}

void sasl_free(sasl_session *s)
{
    if (!s)
        return;
    sasl_finish(s);
    free(s->authcid);
    free(s->authzid);
    free(s);
}

sasl_result sasl_reject_password(sasl_session *s, sasl_failure *why)
{
    s->password_rejected = true;
    return sasl_fail(why, SASL_NOT_AUTHORIZED);
}

bool sasl_password_rejected(const sasl_session *s)
{
    return s->password_rejected;
}

sasl_result sasl_fail(sasl_failure *why, sasl_failure f)
{
    if (why)
        *why = f;
    return SASL_FAILURE;
}

/* Moves the session on after a mechanism's answer; secrets go as soon as the exchange ends. */
static sasl_result sasl_enter(sasl_session *s, sasl_result r)
{
    switch (r) {
    case SASL_CHALLENGE:
        s->phase = SASL_PHASE_MORE;
        break;
    case SASL_NEED_CREDS:
        s->phase = SASL_PHASE_CREDS;
        break;
    case SASL_NEED_VERIFY:
        s->phase = SASL_PHASE_VERIFY;
        break;
    case SASL_SUCCESS:
    case SASL_FAILURE:
        s->phase = SASL_PHASE_DONE;
        sasl_finish(s);
        break;
    }
    return r;
}

sasl_result sasl_step(sasl_session *s, const uint8_t *in, size_t len, buf *out, sasl_failure *why)
{
    if (s->phase != SASL_PHASE_START && s->phase != SASL_PHASE_MORE)
        return sasl_enter(s, sasl_fail(why, SASL_MALFORMED_REQUEST));
    if (s->phase == SASL_PHASE_START && sasl_mech_is_plus(s->mech) && !s->has_exporter)
        return sasl_enter(s, sasl_fail(why, SASL_INVALID_MECHANISM));
    if (len == 0) {
        if (s->phase == SASL_PHASE_START && !s->prompted) {
            s->prompted = true;
            return SASL_CHALLENGE;
        }
        return sasl_enter(s, sasl_fail(why, SASL_MALFORMED_REQUEST));
    }
    return sasl_enter(s, s->ops->step(s, in, len, out, why));
}

sasl_result sasl_creds(sasl_session *s, const scram_credentials *sha1,
                       const scram_credentials *sha256, buf *out, sasl_failure *why)
{
    if (s->phase != SASL_PHASE_CREDS)
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    return sasl_enter(s, s->ops->creds(s, sha1, sha256, out, why));
}

sasl_result sasl_verified(sasl_session *s, bool ok, buf *out, sasl_failure *why)
{
    if (s->phase != SASL_PHASE_VERIFY || !s->ops->verified)
        return sasl_fail(why, SASL_MALFORMED_REQUEST);
    return sasl_enter(s, s->ops->verified(s, ok, out, why));
}

const char *sasl_authcid(const sasl_session *s)
{
    return s->authcid;
}

const char *sasl_authzid(const sasl_session *s)
{
    return s->authzid;
}

bool sasl_text_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false; /* a continuation byte, an overlong lead (C0, C1) or beyond U+10FFFF */
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

char *sasl_prep_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > SASL_NAME_MAX)
        return NULL;
    char *prepared;
    if (scram_saslprep(name, &prepared) != 0)
        return NULL;
    /* SASLprep may map a name to nothing (soft hyphens) or let NFKC expand it past the limit. */
    len = strlen(prepared);
    if (len == 0 || len > SASL_NAME_MAX) {
        free(prepared);
        return NULL;
    }
    return prepared;
}
