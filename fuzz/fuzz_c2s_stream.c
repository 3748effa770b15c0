/* fuzz/fuzz_c2s_stream.c — libFuzzer target for a whole client stream at the front, as a hostile
 * client drives it: shard/c2s_stream.c without sockets, serving two hosts, through STARTTLS,
 * SASL, the restart, binding and stanzas.
 *
 * Input: byte 0 picks the setup (bit 0: direct TLS, else the plain port; bit 1: a tls-exporter;
 * bit 2: STARTTLS optional; bit 3: the SM knows the user; bit 4: PLAIN's check says yes), byte 1
 * sizes the chunks; the rest is what the client sends. STARTTLS is "completed" at once, AUTH_QUERY
 * frames get an answer (the user's credentials for password "pencil", or no such user), PLAIN jobs
 * are answered, BIND frames get BOUND with the JID the BIND asked for, as the SM answers; stream
 * management's messages are answered as mod_smacks would (bit 5: a <resume/> succeeds), and after
 * every chunk a bound stream is delivered a stanza from the SM (counted, acknowledged or not).
 *
 * Checks, after every input chunk:
 * - every frame the stream emits is well-formed for its type and carries this session's id;
 * - the stream never claims to be authenticated without an answer that allowed it;
 * - the domain is the authenticated one (security issue 12, finding 1): every BIND names the host
 *   and user the credentials were asked for, the bound JID is that user at that host, and every
 *   stanza framed for the SM is stamped from the bound JID; a <resume/> names the authenticated
 *   account, and the session it resumes is that account's;
 * - nothing framed is much larger than what the client sent (findings 3 and 5): a frame's payload
 *   is at most FRAME_FACTOR times the input so far plus FRAME_SLACK;
 * - after C2S_ACT_CLOSE it emits nothing more.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jid.h"
#include "core/scram.h"
#include "core/xml_write.h"
#include "shard/c2s_stream.h"
#include "smproto/frame.h"
#include "smproto/smacks_msg.h"

#define SID 0x0200000300000009ull
/* The serializer's bound (core/xml_write.h) with room for what the front adds to a stanza (its
 * 'from', at most a full JID). */
#define FRAME_FACTOR 4
#define FRAME_SLACK 8192

static char *hosts[] = {"localhost", "example.com", NULL};

/* What the stream has been granted so far. */
typedef struct granted {
    bool may_auth;          /* an AUTH_ANSWER let a login succeed */
    char host[1024], user[1024];   /* of the last AUTH_QUERY */
    char bound[3 * 1024 + 3];      /* the JID BOUND gave, or "" */
    size_t input;           /* bytes the client has sent */
    bool resume_ok;         /* a <resume/> gets the session */
} granted;

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* Feeds the SM's answer in fb to the stream. */
static void answer(c2s_stream *s, buf *fb)
{
    smproto_frame f;
    size_t used;
    if (smproto_frame_next((const uint8_t *)buf_data(fb), buf_len(fb), &f, &used) == SMPROTO_FRAME_OK)
        c2s_stream_frame(s, &f);
    buf_free(fb);
}

/* The stanza's payload carries from='bound JID' (escaped as the serializer writes it). */
static bool stamped(const smproto_frame *f, const char *jid)
{
    buf want = BUF_INIT;
    buf_append(&want, " from='", 7);
    xml_write_attr_value(&want, jid, strlen(jid));
    buf_append(&want, "'", 1);
    bool ok = memmem(f->payload, f->len, buf_data(&want), buf_len(&want)) != NULL;
    buf_free(&want);
    return ok;
}

static void bind_answer(c2s_stream *s, granted *g, const char *host, const char *user,
                        const char *resource)
{
    check(c2s_stream_authenticated(s) && strcmp(host, g->host) == 0 &&
          strcmp(user, g->user) == 0);
    jid j;
    buf fb = BUF_INIT;
    if (jid_make(user, strlen(user), host, strlen(host), *resource ? resource : "r",
                 *resource ? strlen(resource) : 1, &j) == JID_OK) {
        snprintf(g->bound, sizeof g->bound, "%s", jid_full(&j));
        smproto_put_bound(&fb, SID, SMPROTO_BOUND_OK, g->bound);
        jid_free(&j);
    } else {
        smproto_put_bound(&fb, SID, SMPROTO_BOUND_NOT_ALLOWED, NULL);
    }
    answer(s, &fb);
}

/* The SM's half of stream management (sm/mod_smacks.c), as far as the stream can tell. */
static void smacks_answer(c2s_stream *s, granted *g, const smproto_frame *f)
{
    const char *name;
    size_t nl, len;
    const uint8_t *body;
    smacks_msg m;
    check(smproto_get_module(f, &name, &nl, &body, &len) && nl == 6 &&
          memcmp(name, SMACKS_MODULE, 6) == 0 && smacks_msg_get(body, len, &m));
    smacks_msg a = {0};
    switch (m.kind) {
    case SMACKS_ENABLE:
        check(c2s_stream_jid(s) != NULL);
        a = (smacks_msg){.kind = SMACKS_ENABLED, .id = m.resume ? "fuzzresumeid" : "", .max = 300};
        break;
    case SMACKS_R:
        a = (smacks_msg){.kind = SMACKS_A, .h = m.in_count};
        break;
    case SMACKS_RESUME:
        check(c2s_stream_authenticated(s) && !c2s_stream_jid(s) && strcmp(m.host, g->host) == 0 &&
              strcmp(m.user, g->user) == 0);
        if (g->resume_ok) {
            snprintf(g->bound, sizeof g->bound, "%s@%s/resumed", m.user, m.host);
            a = (smacks_msg){.kind = SMACKS_RESUMED, .jid = g->bound, .id = "fuzzresumeid",
                             .h = 3, .client_h = UINT32_MAX - 1, .sm_acked = 7, .max = 300,
                             .presence = ""};
        } else {
            a = (smacks_msg){.kind = SMACKS_FAILED, .condition = SMACKS_ITEM_NOT_FOUND};
        }
        break;
    case SMACKS_ACK:
    case SMACKS_CLOSE:
        return;
    default:
        abort();   /* the front sends only its own kinds */
    }
    buf b = BUF_INIT, fb = BUF_INIT;
    smacks_msg_put(&b, &a);
    check(smproto_put_module(&fb, SID, SMACKS_MODULE, buf_data(&b), buf_len(&b)));
    buf_free(&b);
    answer(s, &fb);
}

/* The frames the stream produced (the IO thread's buffer in the program). */
static buf frames_out;

/* Checks and answers the frames the stream produced. */
static void drain(c2s_stream *s, const smproto_creds *creds, bool user_known, granted *g)
{
    buf *frames = &frames_out;
    while (buf_len(frames)) {
        smproto_frame f;
        size_t used;
        check(smproto_frame_next((const uint8_t *)buf_data(frames), buf_len(frames), &f, &used) ==
              SMPROTO_FRAME_OK);
        check(f.sid == SID);
        check(f.len <= FRAME_FACTOR * g->input + FRAME_SLACK);
        buf copy = BUF_INIT;
        buf_append(&copy, buf_data(frames), used);
        buf_consume(frames, used);
        smproto_frame_next((const uint8_t *)buf_data(&copy), used, &f, &used);
        buf fb = BUF_INIT;
        const char *a, *b, *c;
        uint8_t flags;
        switch (f.type) {
        case SMPROTO_AUTH_QUERY:
            check(smproto_get_auth_query(&f, &a, &b));
            snprintf(g->host, sizeof g->host, "%s", a);
            snprintf(g->user, sizeof g->user, "%s", b);
            smproto_put_auth_answer(&fb, SID, user_known ? SMPROTO_AUTH_OK : SMPROTO_AUTH_NO_USER,
                                    user_known ? creds : NULL);
            g->may_auth = user_known;
            answer(s, &fb);
            break;
        case SMPROTO_BIND:
            check(smproto_get_bind(&f, &a, &b, &c, &flags));
            bind_answer(s, g, a, b, c);
            break;
        case SMPROTO_REGISTER:
            check(smproto_get_register(&f, &a, &b));
            break;
        case SMPROTO_STANZA:
            check(c2s_stream_jid(s) && stamped(&f, c2s_stream_jid(s)));
            break;
        case SMPROTO_END:
            check(smproto_get_end(&f, &flags, &a));
            break;
        case SMPROTO_MODULE:
            smacks_answer(s, g, &f);
            break;
        default:
            abort();
        }
        buf_free(&copy);
    }
}

/* The bound JID, if any, is the one BOUND gave: the authenticated user at the authenticated
 * host. */
static void check_domain(c2s_stream *s, const granted *g)
{
    const char *bound = c2s_stream_jid(s);
    if (!bound)
        return;
    check(strcmp(bound, g->bound) == 0);
    jid j;
    check(jid_parse(bound, strlen(bound), &j) == JID_OK);
    size_t dlen, nlen;
    const char *d = jid_domain(&j, &dlen), *n = jid_node(&j, &nlen);
    check(n && dlen == strlen(g->host) && memcmp(d, g->host, dlen) == 0 &&
          nlen == strlen(g->user) && memcmp(n, g->user, nlen) == 0);
    jid_free(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smproto_creds creds;
    static bool init;
    if (!init) {
        static const uint8_t salt[] = "saltsaltsaltsalt";
        scram_derive(SCRAM_SHA1, "pencil", salt, 16, 16, &creds.sha1);
        scram_derive(SCRAM_SHA256, "pencil", salt, 16, 16, &creds.sha256);
        init = true;
    }
    if (size < 2)
        return 0;
    uint8_t mode = data[0];
    size_t chunk = data[1] ? data[1] : 1;
    data += 2;
    size -= 2;

    front_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.hosts = hosts;
    cfg.nhosts = 2;
    cfg.starttls_required = !(mode & 4);
    cfg.limits.stanza_size = 4096;
    cfg.limits.auth_failures = 3;
    buf_free(&frames_out);
    c2s_env env = {.cfg = &cfg, .tls_available = true, .frames = &frames_out};
    uint8_t exporter[32] = {1, 2, 3};
    bool user_known = mode & 8, verify_ok = mode & 16;
    granted g = {.resume_ok = mode & 32};
    c2s_stream *s = c2s_stream_new(&env, SID, mode & 1, (mode & 3) == 3 ? exporter : NULL);

    bool closed = false;
    for (size_t off = 0; off < size && !closed;) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (!c2s_stream_wants_input(s))
            break;
        unsigned acts = c2s_stream_feed(s, data + off, n);
        off += n;
        g.input = off;
        for (int rounds = 0; rounds < 8; rounds++) {
            drain(s, &creds, user_known, &g);
            if (acts & C2S_ACT_STARTTLS)
                acts = c2s_stream_tls_started(s, (mode & 2) ? exporter : NULL);
            if (acts & C2S_ACT_VERIFY) {
                char *pw = NULL;
                scram_hash h;
                scram_credentials cr;
                if (c2s_stream_verify_job(s, &pw, &h, &cr)) {
                    free(pw);
                    acts = c2s_stream_verified(s, verify_ok && user_known);
                    continue;
                }
            }
            if (acts & C2S_ACT_CLOSE)
                closed = true;
            if (!(acts & (C2S_ACT_STARTTLS | C2S_ACT_VERIFY)))
                break;
        }
        check(!c2s_stream_authenticated(s) || g.may_auth);
        check_domain(s, &g);
        if (c2s_stream_jid(s) && !closed) {
            /* A stanza from the SM reaches the client's queue. */
            static const char msg[] = "<message><body>from the SM</body></message>";
            buf fb = BUF_INIT;
            check(smproto_put(&fb, SMPROTO_STANZA, SID, msg, sizeof msg - 1));
            smproto_frame f;
            size_t used;
            smproto_frame_next((const uint8_t *)buf_data(&fb), buf_len(&fb), &f, &used);
            if (c2s_stream_frame(s, &f) & C2S_ACT_DELIVER &&
                c2s_stream_delivered(s) & C2S_ACT_CLOSE)
                closed = true;
            buf_free(&fb);
        }
        buf *out = c2s_stream_out(s);
        buf_consume(out, buf_len(out));
    }
    if (closed) {
        /* Nothing after the close. */
        c2s_stream_feed(s, "<presence/>", 11);
        check(!buf_len(c2s_stream_out(s)) && !buf_len(&frames_out));
    }
    c2s_stream_gone(s);
    c2s_stream_free(s);
    return 0;
}
