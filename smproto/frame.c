/* smproto/frame.c — the smproto frame codec (docs/smproto.md §2): the header, raw frames, and the
 * typed control records with their strict decoders.
 *
 * Encoders size the whole frame first, reserve it once in the caller's buf and write the bytes in
 * place. Decoders walk the payload with a bounds-checked cursor and accept only the one canonical
 * encoding of a record (so re-encoding what they return reproduces the frame byte for byte): every
 * field present, strings NUL-terminated UTF-8, enumerations within their defined values, lengths
 * exactly what the field holds, nothing after the last field. They write their outputs only once
 * the whole payload has been accepted.
 */
#include "smproto/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

/* ---- encoding ---------------------------------------------------------------------------- */

static uint8_t *smproto_w_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *smproto_w_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *smproto_w_u64(uint8_t *p, uint64_t v)
{
    p = smproto_w_u32(p, (uint32_t)(v >> 32));
    return smproto_w_u32(p, (uint32_t)v);
}

/* s with its NUL; len is strlen(s). */
static uint8_t *smproto_w_str(uint8_t *p, const char *s, size_t len)
{
    memcpy(p, s, len + 1);
    return p + len + 1;
}

/* A `bytes` field: u8 length, then the bytes. */
static uint8_t *smproto_w_bytes(uint8_t *p, const uint8_t *data, size_t len)
{
    p = smproto_w_u8(p, (uint8_t)len);
    memcpy(p, data, len);
    return p + len;
}

/* Encoders are handed our own data: a frame the peer would have to refuse (over-long, unknown
 * type or value) is a bug here, not something to send. The payloads whose size a peer influences
 * (smproto_put, smproto_put_register) are checked before this and refused instead. Strings are the
 * exception: checking their UTF-8 would cost a pass over every payload, and the peer's decoder
 * catches them anyway. */
static void smproto_bug(const char *what)
{
    fprintf(stderr, "jabshard: smproto encoder misuse: %s\n", what);
    abort();
}

static void smproto_w_header(uint8_t *p, smproto_type type, uint64_t sid, size_t len)
{
    if (type < SMPROTO_STANZA || type > SMPROTO_TYPE_MAX)
        smproto_bug("unknown frame type");
    if (len > SMPROTO_MAX_PAYLOAD)
        smproto_bug("payload over SMPROTO_MAX_PAYLOAD");
    p = smproto_w_u32(p, (uint32_t)len);
    p = smproto_w_u8(p, (uint8_t)type);
    p = smproto_w_u8(p, 0);     /* flags */
    p = smproto_w_u8(p, 0);     /* reserved */
    p = smproto_w_u8(p, 0);
    smproto_w_u64(p, sid);
}

/* Appends a frame of len payload bytes and returns where the payload goes; the caller writes
 * exactly len bytes there before touching out again. The header is checked before anything is
 * reserved. */
static uint8_t *smproto_open(buf *out, smproto_type type, uint64_t sid, size_t len)
{
    uint8_t header[SMPROTO_HEADER];
    smproto_w_header(header, type, sid, len);
    uint8_t *p = (uint8_t *)buf_reserve(out, SMPROTO_HEADER + len);
    memcpy(p, header, SMPROTO_HEADER);
    buf_commit(out, SMPROTO_HEADER + len);
    return p + SMPROTO_HEADER;
}

bool smproto_put(buf *out, smproto_type type, uint64_t sid, const void *payload, size_t len)
{
    if (len > SMPROTO_MAX_PAYLOAD)
        return false;
    uint8_t *p = smproto_open(out, type, sid, len);
    if (len)
        memcpy(p, payload, len);
    return true;
}

/* ---- header decoding --------------------------------------------------------------------- */

static uint32_t smproto_r_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t smproto_r_u64(const uint8_t *p)
{
    return (uint64_t)smproto_r_u32(p) << 32 | smproto_r_u32(p + 4);
}

size_t smproto_begin(buf *out, smproto_type type, uint64_t sid)
{
    size_t start = buf_len(out);
    smproto_open(out, type, sid, 0);
    return start;
}

void smproto_end(buf *out, size_t start)
{
    if (start > buf_len(out) || buf_len(out) - start < SMPROTO_HEADER)
        smproto_bug("smproto_end without smproto_begin");
    uint8_t *h = (uint8_t *)buf_data(out) + start;
    smproto_w_header(h, (smproto_type)h[4], smproto_r_u64(h + 8),
                     buf_len(out) - start - SMPROTO_HEADER);
}

smproto_frame_status smproto_frame_next(const uint8_t *data, size_t len, smproto_frame *frame,
                                        size_t *used)
{
    if (len < SMPROTO_HEADER)
        return SMPROTO_FRAME_PARTIAL;
    uint32_t plen = smproto_r_u32(data);
    uint8_t type = data[4];
    /* The length is judged before waiting for the payload: a peer must not make us buffer more
     * than one maximal frame. */
    if (plen > SMPROTO_MAX_PAYLOAD || type < SMPROTO_STANZA || type > SMPROTO_TYPE_MAX ||
        data[5] != 0 || data[6] != 0 || data[7] != 0)
        return SMPROTO_FRAME_BAD;
    if (len - SMPROTO_HEADER < plen)
        return SMPROTO_FRAME_PARTIAL;
    frame->type = (smproto_type)type;
    frame->sid = smproto_r_u64(data + 8);
    frame->payload = data + SMPROTO_HEADER;
    frame->len = plen;
    *used = SMPROTO_HEADER + (size_t)plen;
    return SMPROTO_FRAME_OK;
}

/* ---- payload decoding -------------------------------------------------------------------- */

/* A cursor over a payload; every read checks the bytes are there. */
typedef struct smproto_in {
    const uint8_t *p, *end;
} smproto_in;

/* A frame built by hand may have no payload pointer at all; pointer arithmetic wants one. */
static const uint8_t *smproto_payload(const smproto_frame *f)
{
    return f->payload ? f->payload : (const uint8_t *)"";
}

static smproto_in smproto_in_of(const smproto_frame *f)
{
    return (smproto_in){ smproto_payload(f), smproto_payload(f) + f->len };
}

static bool smproto_in_u8(smproto_in *in, uint8_t *v)
{
    if (in->end - in->p < 1)
        return false;
    *v = *in->p++;
    return true;
}

static bool smproto_in_u32(smproto_in *in, uint32_t *v)
{
    if (in->end - in->p < 4)
        return false;
    *v = smproto_r_u32(in->p);
    in->p += 4;
    return true;
}

static bool smproto_in_u64(smproto_in *in, uint64_t *v)
{
    if (in->end - in->p < 8)
        return false;
    *v = smproto_r_u64(in->p);
    in->p += 8;
    return true;
}

/* A string runs to the first NUL, so it cannot hold one; whatever follows that NUL is the next
 * field (or trailing bytes, refused by smproto_in_done). */
static bool smproto_in_str(smproto_in *in, const char **s)
{
    const uint8_t *nul = in->p < in->end ? memchr(in->p, 0, (size_t)(in->end - in->p)) : NULL;
    if (!nul || utf8_scan(in->p, (size_t)(nul - in->p)) < 0)
        return false;
    *s = (const char *)in->p;
    in->p = nul + 1;
    return true;
}

/* A `bytes` field of min..max bytes into dst. */
static bool smproto_in_bytes(smproto_in *in, uint8_t *dst, size_t min, size_t max, size_t *len)
{
    uint8_t n;
    if (!smproto_in_u8(in, &n) || n < min || n > max || in->end - in->p < n)
        return false;
    memcpy(dst, in->p, n);
    in->p += n;
    *len = n;
    return true;
}

static bool smproto_in_done(const smproto_in *in)
{
    return in->p == in->end;
}

/* ---- AUTH_QUERY -------------------------------------------------------------------------- */

void smproto_put_auth_query(buf *out, uint64_t sid, const char *host, const char *user)
{
    size_t hl = strlen(host), ul = strlen(user);
    uint8_t *p = smproto_open(out, SMPROTO_AUTH_QUERY, sid, hl + 1 + ul + 1);
    p = smproto_w_str(p, host, hl);
    smproto_w_str(p, user, ul);
}

bool smproto_get_auth_query(const smproto_frame *f, const char **host, const char **user)
{
    smproto_in in = smproto_in_of(f);
    const char *h, *u;
    if (f->type != SMPROTO_AUTH_QUERY || !smproto_in_str(&in, &h) || !smproto_in_str(&in, &u) ||
        !smproto_in_done(&in))
        return false;
    *host = h;
    *user = u;
    return true;
}

/* ---- AUTH_ANSWER ------------------------------------------------------------------------- */

static const scram_hash smproto_mechs[2] = { SCRAM_SHA1, SCRAM_SHA256 };

static scram_credentials *smproto_creds_of(smproto_creds *c, int i)
{
    return i == 0 ? &c->sha1 : &c->sha256;
}

void smproto_put_auth_answer(buf *out, uint64_t sid, uint8_t status, const smproto_creds *creds)
{
    if (status > SMPROTO_AUTH_ERROR)
        smproto_bug("AUTH_ANSWER with an undefined status");
    if (status != SMPROTO_AUTH_OK) {
        smproto_w_u8(smproto_open(out, SMPROTO_AUTH_ANSWER, sid, 1), status);
        return;
    }
    if (!creds)
        smproto_bug("AUTH_ANSWER ok without credentials");
    const scram_credentials *c[2] = { &creds->sha1, &creds->sha256 };
    size_t len = 1;
    for (int i = 0; i < 2; i++) {
        if (c[i]->salt_len > SCRAM_SALT_MAX || c[i]->iterations == 0)
            smproto_bug("AUTH_ANSWER credentials out of range");
        len += 1 + c[i]->salt_len + 4 + 2 * (1 + scram_key_len(smproto_mechs[i]));
    }
    uint8_t *p = smproto_open(out, SMPROTO_AUTH_ANSWER, sid, len);
    p = smproto_w_u8(p, status);
    for (int i = 0; i < 2; i++) {
        size_t kl = scram_key_len(smproto_mechs[i]);
        p = smproto_w_bytes(p, c[i]->salt, c[i]->salt_len);
        p = smproto_w_u32(p, c[i]->iterations);
        p = smproto_w_bytes(p, c[i]->stored_key, kl);
        p = smproto_w_bytes(p, c[i]->server_key, kl);
    }
}

/* Iterations are a positive count (RFC 5802 "i="); keys are exactly the mechanism's length. */
bool smproto_get_auth_answer(const smproto_frame *f, uint8_t *status, smproto_creds *creds)
{
    smproto_in in = smproto_in_of(f);
    uint8_t st;
    smproto_creds got;
    memset(&got, 0, sizeof(got));
    if (f->type != SMPROTO_AUTH_ANSWER || !smproto_in_u8(&in, &st) || st > SMPROTO_AUTH_ERROR)
        return false;
    if (st == SMPROTO_AUTH_OK) {
        for (int i = 0; i < 2; i++) {
            scram_credentials *c = smproto_creds_of(&got, i);
            size_t kl = scram_key_len(smproto_mechs[i]), n;
            if (!smproto_in_bytes(&in, c->salt, 0, SCRAM_SALT_MAX, &c->salt_len) ||
                !smproto_in_u32(&in, &c->iterations) || c->iterations == 0 ||
                !smproto_in_bytes(&in, c->stored_key, kl, kl, &n) ||
                !smproto_in_bytes(&in, c->server_key, kl, kl, &n))
                return false;
        }
    }
    if (!smproto_in_done(&in))
        return false;
    *status = st;
    *creds = got;
    return true;
}

/* ---- BIND, BOUND ------------------------------------------------------------------------- */

void smproto_put_bind(buf *out, uint64_t sid, const char *host, const char *user,
                      const char *resource, uint8_t flags)
{
    size_t hl = strlen(host), ul = strlen(user), rl = strlen(resource);
    if (flags & ~SMPROTO_BIND_LEGACY_SESSION)
        smproto_bug("BIND with undefined flags");
    uint8_t *p = smproto_open(out, SMPROTO_BIND, sid, hl + 1 + ul + 1 + rl + 1 + 1);
    p = smproto_w_str(p, host, hl);
    p = smproto_w_str(p, user, ul);
    p = smproto_w_str(p, resource, rl);
    smproto_w_u8(p, flags);
}

bool smproto_get_bind(const smproto_frame *f, const char **host, const char **user,
                      const char **resource, uint8_t *flags)
{
    smproto_in in = smproto_in_of(f);
    const char *h, *u, *r;
    uint8_t fl;
    if (f->type != SMPROTO_BIND || !smproto_in_str(&in, &h) || !smproto_in_str(&in, &u) ||
        !smproto_in_str(&in, &r) || !smproto_in_u8(&in, &fl) ||
        (fl & ~SMPROTO_BIND_LEGACY_SESSION) || !smproto_in_done(&in))
        return false;
    *host = h;
    *user = u;
    *resource = r;
    *flags = fl;
    return true;
}

void smproto_put_bound(buf *out, uint64_t sid, uint8_t status, const char *full_jid)
{
    if (status > SMPROTO_BOUND_CONSTRAINT)
        smproto_bug("BOUND with an undefined status");
    if (status != SMPROTO_BOUND_OK) {
        smproto_w_u8(smproto_open(out, SMPROTO_BOUND, sid, 1), status);
        return;
    }
    if (!full_jid)
        smproto_bug("BOUND ok without a JID");
    size_t jl = strlen(full_jid);
    uint8_t *p = smproto_open(out, SMPROTO_BOUND, sid, 1 + jl + 1);
    p = smproto_w_u8(p, status);
    smproto_w_str(p, full_jid, jl);
}

bool smproto_get_bound(const smproto_frame *f, uint8_t *status, const char **full_jid)
{
    smproto_in in = smproto_in_of(f);
    uint8_t st;
    const char *j = NULL;
    if (f->type != SMPROTO_BOUND || !smproto_in_u8(&in, &st) || st > SMPROTO_BOUND_CONSTRAINT ||
        (st == SMPROTO_BOUND_OK && !smproto_in_str(&in, &j)) || !smproto_in_done(&in))
        return false;
    *status = st;
    *full_jid = j;
    return true;
}

/* ---- END, REGISTER ----------------------------------------------------------------------- */

void smproto_put_end(buf *out, uint64_t sid, uint8_t reason, const char *text)
{
    size_t tl = strlen(text);
    if (reason > SMPROTO_END_ERROR)
        smproto_bug("END with an undefined reason");
    uint8_t *p = smproto_open(out, SMPROTO_END, sid, 1 + tl + 1);
    p = smproto_w_u8(p, reason);
    smproto_w_str(p, text, tl);
}

bool smproto_get_end(const smproto_frame *f, uint8_t *reason, const char **text)
{
    smproto_in in = smproto_in_of(f);
    uint8_t r;
    const char *t;
    if (f->type != SMPROTO_END || !smproto_in_u8(&in, &r) || r > SMPROTO_END_ERROR ||
        !smproto_in_str(&in, &t) || !smproto_in_done(&in))
        return false;
    *reason = r;
    *text = t;
    return true;
}

/* ---- UNDELIVERED ------------------------------------------------------------------------- */

void smproto_put_undelivered(buf *out, uint64_t sid, const void *xml, size_t len)
{
    if (sid == 0 || len == 0)
        smproto_bug("UNDELIVERED without a session or a stanza");
    if (!smproto_put(out, SMPROTO_UNDELIVERED, sid, xml, len))
        smproto_bug("UNDELIVERED larger than the STANZA it came in");
}

bool smproto_get_undelivered(const smproto_frame *f, const char **xml, size_t *len)
{
    if (f->type != SMPROTO_UNDELIVERED || f->sid == 0 || f->len == 0)
        return false;
    *xml = (const char *)f->payload;
    *len = f->len;
    return true;
}

bool smproto_put_register(buf *out, uint64_t sid, const char *host, const char *iq_xml)
{
    size_t hl = strlen(host), xl = strlen(iq_xml);
    if (hl + 1 + xl + 1 > SMPROTO_MAX_PAYLOAD)
        return false;
    uint8_t *p = smproto_open(out, SMPROTO_REGISTER, sid, hl + 1 + xl + 1);
    p = smproto_w_str(p, host, hl);
    smproto_w_str(p, iq_xml, xl);
    return true;
}

bool smproto_get_register(const smproto_frame *f, const char **host, const char **iq_xml)
{
    smproto_in in = smproto_in_of(f);
    const char *h, *x;
    if (f->type != SMPROTO_REGISTER || !smproto_in_str(&in, &h) || !smproto_in_str(&in, &x) ||
        !smproto_in_done(&in))
        return false;
    *host = h;
    *iq_xml = x;
    return true;
}

/* ---- PING, PONG -------------------------------------------------------------------------- */

void smproto_put_ping(buf *out, smproto_type type, uint64_t token)
{
    if (type != SMPROTO_PING && type != SMPROTO_PONG)
        smproto_bug("smproto_put_ping for neither PING nor PONG");
    smproto_w_u64(smproto_open(out, type, 0, 8), token);
}

bool smproto_get_ping(const smproto_frame *f, uint64_t *token)
{
    smproto_in in = smproto_in_of(f);
    uint64_t t;
    if ((f->type != SMPROTO_PING && f->type != SMPROTO_PONG) || f->sid != 0 ||
        !smproto_in_u64(&in, &t) || !smproto_in_done(&in))
        return false;
    *token = t;
    return true;
}

bool smproto_version_is_ours(const char *version)
{
    return version && strcmp(version, SMPROTO_VERSION_STRING) == 0;
}

/* ---- ACK, STATE -------------------------------------------------------------------------- */

void smproto_put_ack(buf *out, uint64_t seq)
{
    smproto_w_u64(smproto_open(out, SMPROTO_ACK, 0, 8), seq);
}

bool smproto_get_ack(const smproto_frame *f, uint64_t *seq)
{
    smproto_in in = smproto_in_of(f);
    uint64_t v;
    if (f->type != SMPROTO_ACK || f->sid != 0 || !smproto_in_u64(&in, &v) || !smproto_in_done(&in))
        return false;
    *seq = v;
    return true;
}

void smproto_put_state(buf *out, uint64_t sid, const uint8_t *state, size_t len)
{
    if (sid == 0 || len > SMPROTO_STATE_MAX)
        smproto_bug("STATE without a session or longer than SMPROTO_STATE_MAX");
    uint8_t *p = smproto_open(out, SMPROTO_STATE, sid, len);
    if (len)
        memcpy(p, state, len);
}

bool smproto_get_state(const smproto_frame *f, const uint8_t **state, size_t *len)
{
    if (f->type != SMPROTO_STATE || f->sid == 0 || f->len > SMPROTO_STATE_MAX)
        return false;
    *state = smproto_payload(f);
    *len = f->len;
    return true;
}

/* ---- MODULE ------------------------------------------------------------------------------ */

static bool module_name_ok(const char *name, size_t len)
{
    if (len < 1 || len > SMPROTO_MODULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool smproto_put_module(buf *out, uint64_t sid, const char *name, const void *body, size_t len)
{
    size_t nl = strlen(name);
    if (!module_name_ok(name, nl))
        smproto_bug("MODULE with a bad module name");
    if (len > SMPROTO_MAX_PAYLOAD - 1 - nl)
        return false;
    uint8_t *p = smproto_open(out, SMPROTO_MODULE, sid, 1 + nl + len);
    p = smproto_w_bytes(p, (const uint8_t *)name, nl);
    if (len)
        memcpy(p, body, len);
    return true;
}

bool smproto_get_module(const smproto_frame *f, const char **name, size_t *name_len,
                        const uint8_t **body, size_t *len)
{
    const uint8_t *p = smproto_payload(f);
    if (f->type != SMPROTO_MODULE || f->len < 1 || f->len < 1u + p[0] ||
        !module_name_ok((const char *)p + 1, p[0]))
        return false;
    *name = (const char *)p + 1;
    *name_len = p[0];
    *body = p + 1 + p[0];
    *len = f->len - 1 - p[0];
    return true;
}

/* ---- RESYNC ------------------------------------------------------------------------------ */

size_t smproto_resync_begin(buf *out)
{
    return smproto_begin(out, SMPROTO_RESYNC, 0);
}

size_t smproto_resync_entry_size(const smproto_resync_entry *e)
{
    return 8 + strlen(e->full_jid) + 1 + 2 + e->state_len + strlen(e->presence) + 1;
}

void smproto_resync_add(buf *out, const smproto_resync_entry *e)
{
    if (e->sid == 0 || e->state_len > SMPROTO_STATE_MAX)
        smproto_bug("RESYNC entry without a session or with a state too long");
    size_t jl = strlen(e->full_jid), pl = strlen(e->presence);
    size_t n = smproto_resync_entry_size(e);
    uint8_t *p = (uint8_t *)buf_reserve(out, n);
    p = smproto_w_u64(p, e->sid);
    p = smproto_w_str(p, e->full_jid, jl);
    p = smproto_w_u8(p, (uint8_t)(e->state_len >> 8));
    p = smproto_w_u8(p, (uint8_t)e->state_len);
    if (e->state_len)
        memcpy(p, e->state, e->state_len);
    p += e->state_len;
    smproto_w_str(p, e->presence, pl);
    buf_commit(out, n);
}

void smproto_resync_end(buf *out, size_t frame_start)
{
    if (frame_start > buf_len(out) || buf_len(out) - frame_start < SMPROTO_HEADER ||
        ((const uint8_t *)buf_data(out))[frame_start + 4] != SMPROTO_RESYNC)
        smproto_bug("smproto_resync_end without smproto_resync_begin");
    smproto_end(out, frame_start);
}

void smproto_resync_read(const smproto_frame *f, smproto_resync_reader *rd)
{
    /* p == NULL marks a frame that is not a RESYNC of the link: the first next says malformed. */
    if (f->type != SMPROTO_RESYNC || f->sid != 0) {
        rd->p = rd->end = NULL;
        return;
    }
    rd->p = smproto_payload(f);
    rd->end = rd->p + f->len;
}

int smproto_resync_next(smproto_resync_reader *rd, smproto_resync_entry *e)
{
    if (!rd->p)
        return -1;
    if (rd->p == rd->end)
        return 0;
    smproto_in in = { rd->p, rd->end };
    smproto_resync_entry got;
    uint8_t hi = 0, lo = 0;
    bool ok = smproto_in_u64(&in, &got.sid) && got.sid != 0 &&
              smproto_in_str(&in, &got.full_jid) && smproto_in_u8(&in, &hi) &&
              smproto_in_u8(&in, &lo);
    got.state_len = (size_t)hi << 8 | lo;
    got.state = in.p;
    ok = ok && got.state_len <= SMPROTO_STATE_MAX && (size_t)(in.end - in.p) >= got.state_len;
    if (ok)
        in.p += got.state_len;
    if (!ok || !smproto_in_str(&in, &got.presence)) {
        rd->p = rd->end = NULL;     /* stays malformed */
        return -1;
    }
    rd->p = in.p;
    *e = got;
    return 1;
}

const char *smproto_type_name(smproto_type type)
{
    static const char *const names[] = {
        [SMPROTO_STANZA] = "STANZA",   [SMPROTO_AUTH_QUERY] = "AUTH_QUERY",
        [SMPROTO_AUTH_ANSWER] = "AUTH_ANSWER", [SMPROTO_BIND] = "BIND",
        [SMPROTO_BOUND] = "BOUND",     [SMPROTO_END] = "END",
        [SMPROTO_REGISTER] = "REGISTER", [SMPROTO_PING] = "PING",
        [SMPROTO_PONG] = "PONG",       [SMPROTO_RESYNC] = "RESYNC",
        [SMPROTO_UNDELIVERED] = "UNDELIVERED", [SMPROTO_ACK] = "ACK",
        [SMPROTO_STATE] = "STATE",     [SMPROTO_MODULE] = "MODULE",
    };
    if (type < SMPROTO_STANZA || type > SMPROTO_TYPE_MAX)
        return "UNKNOWN";
    return names[type];
}
