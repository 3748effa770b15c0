/* fuzz/fuzz_c2s_preauth.c — libFuzzer target for the client stream before (and through)
 * authentication: shard/c2s_stream.c driven without sockets, as a hostile client would drive it.
 *
 * Input: byte 0 picks the setup (bit 0: direct TLS, else the plain port; bit 1: a tls-exporter;
 * bit 2: STARTTLS optional; bit 3: the SM knows the user; bit 4: PLAIN's check says yes), byte 1
 * sizes the chunks; the rest is what the client sends. STARTTLS is "completed" at once, AUTH_QUERY
 * frames get an answer (the user's credentials for password "pencil", or no such user), PLAIN jobs
 * are answered, BIND frames get BOUND.
 *
 * Checks: every frame the stream emits is well-formed for its type and carries this session's id;
 * the stream never claims to be authenticated without an answer that allowed it, and after
 * C2S_ACT_CLOSE it emits nothing more.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/scram.h"
#include "shard/c2s_stream.h"
#include "smproto/frame.h"

#define SID 0x0200000300000009ull

static char *hosts[] = {"localhost", "example.com", NULL};

/* Feeds the SM's answer in fb to the stream. */
static void answer(c2s_stream *s, buf *fb)
{
    smproto_frame f;
    size_t used;
    if (smproto_frame_next((const uint8_t *)buf_data(fb), buf_len(fb), &f, &used) == SMPROTO_FRAME_OK)
        c2s_stream_frame(s, &f);
    buf_free(fb);
}

/* Checks and answers the frames the stream produced. */
static void drain(c2s_stream *s, const smproto_creds *creds, bool user_known, bool *may_auth)
{
    buf *frames = c2s_stream_frames(s);
    while (buf_len(frames)) {
        smproto_frame f;
        size_t used;
        if (smproto_frame_next((const uint8_t *)buf_data(frames), buf_len(frames), &f, &used) !=
            SMPROTO_FRAME_OK)
            abort();
        if (f.sid != SID)
            abort();
        buf copy = BUF_INIT;
        buf_append(&copy, buf_data(frames), used);
        buf_consume(frames, used);
        smproto_frame_next((const uint8_t *)buf_data(&copy), used, &f, &used);
        buf fb = BUF_INIT;
        const char *a, *b, *c;
        uint8_t flags;
        switch (f.type) {
        case SMPROTO_AUTH_QUERY:
            if (!smproto_get_auth_query(&f, &a, &b))
                abort();
            smproto_put_auth_answer(&fb, SID, user_known ? SMPROTO_AUTH_OK : SMPROTO_AUTH_NO_USER,
                                    user_known ? creds : NULL);
            *may_auth = user_known;
            answer(s, &fb);
            break;
        case SMPROTO_BIND:
            if (!smproto_get_bind(&f, &a, &b, &c, &flags) || !c2s_stream_authenticated(s))
                abort();
            smproto_put_bound(&fb, SID, SMPROTO_BOUND_OK, "user@localhost/r");
            answer(s, &fb);
            break;
        case SMPROTO_REGISTER:
            if (!smproto_get_register(&f, &a, &b))
                abort();
            break;
        case SMPROTO_STANZA:
            if (!c2s_stream_jid(s))
                abort();
            break;
        case SMPROTO_END:
            if (!smproto_get_end(&f, &flags, &a))
                abort();
            break;
        default:
            abort();
        }
        buf_free(&copy);
    }
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
    c2s_env env = {.cfg = &cfg, .tls_available = true};
    uint8_t exporter[32] = {1, 2, 3};
    bool user_known = mode & 8, verify_ok = mode & 16, may_auth = false;
    c2s_stream *s = c2s_stream_new(&env, SID, mode & 1, (mode & 3) == 3 ? exporter : NULL);

    bool closed = false;
    for (size_t off = 0; off < size && !closed;) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (!c2s_stream_wants_input(s))
            break;
        unsigned acts = c2s_stream_feed(s, data + off, n);
        off += n;
        for (int rounds = 0; rounds < 8; rounds++) {
            drain(s, &creds, user_known, &may_auth);
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
        if (c2s_stream_authenticated(s) && !may_auth)
            abort();
        buf *out = c2s_stream_out(s);
        buf_consume(out, buf_len(out));
    }
    if (closed) {
        /* Nothing after the close. */
        c2s_stream_feed(s, "<presence/>", 11);
        if (buf_len(c2s_stream_out(s)) || buf_len(c2s_stream_frames(s)))
            abort();
    }
    c2s_stream_gone(s);
    c2s_stream_free(s);
    return 0;
}
