/* fuzz/fuzz_s2s_stream.c — libFuzzer target for a server-to-server stream (s2s/s2s_stream.c).
 *
 * Input: byte 0 sets the scene (bit 0: outgoing a.test -> b.test, else incoming for a.test; bit 1:
 * the peer's certificate is valid; bit 2: dialback allowed; bit 3: TLS required; bit 4: direct
 * TLS; bit 5: db:verify questions answered valid, else invalid). The rest is chunks separated by
 * "~~", fed one after the other, as a remote server would send them. When the stream agrees on
 * STARTTLS the handshake "succeeds" and the next chunk is the new stream. An outgoing stream, once
 * ready, is given a stanza to send and a db:verify to ask.
 *
 * Checks: nothing crashes or leaks; what the stream writes stays within a bound of what it was fed
 * (at most 16 times the input, plus 4 KiB per chunk: headers, features, answers); a stanza is
 * handed over only from a stream that authenticated a pair, with a from and a to; once closed, a
 * stream takes no more input and hands over nothing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xml.h"
#include "s2s/s2s_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct scene {
    uint8_t flags;
    s2s_stream *st;
    unsigned authed;
    bool ready;
    size_t stanzas;
} scene;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_s2s_stream: %s\n", what);
    abort();
}

static bool op_is_local(void *ctx, const char *domain)
{
    (void)ctx;
    return strcmp(domain, "a.test") == 0;
}

static void op_policy(void *ctx, const char *remote, s2s_policy *out)
{
    scene *sc = ctx;
    (void)remote;
    *out = (s2s_policy){.require_tls = sc->flags & 8, .allow_dialback = sc->flags & 4};
}

static bool op_cert_valid(void *ctx, const char *domain)
{
    scene *sc = ctx;
    (void)domain;
    return sc->flags & 2;
}

static void op_authed(void *ctx, const char *local, const char *remote, const char *how)
{
    scene *sc = ctx;
    if (!local || !remote || !how)
        die("authed without a pair");
    sc->authed++;
}

static void op_ready(void *ctx)
{
    scene *sc = ctx;
    sc->ready = true;
}

static void op_verify_request(void *ctx, const char *local, const char *remote,
                              const char *stream_id, const char *key)
{
    scene *sc = ctx;
    if (!*stream_id || !*key)
        die("a dialback check without a stream id or key");
    s2s_stream_db_result(sc->st, local, remote, sc->flags & 32);
}

static void op_verify_answer(void *ctx, const char *local, const char *remote, const char *id,
                             bool valid)
{
    (void)ctx;
    (void)local;
    (void)remote;
    (void)id;
    (void)valid;
}

static void op_stanza(void *ctx, xml_node *stanza, xml_arena *arena)
{
    scene *sc = ctx;
    if (!sc->authed)
        die("a stanza handed over before any pair was authenticated");
    if (!xml_attr_get(stanza, "from") || !xml_attr_get(stanza, "to"))
        die("a stanza handed over without from and to");
    sc->stanzas++;
    xml_arena_free(arena);
}

static const s2s_stream_ops ops = {
    .is_local = op_is_local, .policy = op_policy, .peer_cert_valid = op_cert_valid,
    .authed = op_authed, .ready = op_ready, .db_verify_request = op_verify_request,
    .db_verify_answer = op_verify_answer, .stanza = op_stanza,
};

static const uint8_t *next_chunk(const uint8_t *p, const uint8_t *end, size_t *len)
{
    const uint8_t *q = p;
    while (q + 1 < end && !(q[0] == '~' && q[1] == '~'))
        q++;
    if (q + 1 >= end)
        q = end;
    *len = (size_t)(q - p);
    return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    scene sc = {.flags = data[0]};
    s2s_stream_config cfg = {.secret = "fuzzing secret, long enough"};
    xmlstream_limits_default(&cfg.limits);
    bool out = sc.flags & 1;
    sc.st = s2s_stream_new(out ? S2S_OUTGOING : S2S_INCOMING, out ? "a.test" : NULL,
                           out ? "b.test" : NULL, &cfg, &ops, &sc);
    if (sc.flags & 16)
        s2s_stream_direct_tls(sc.st);
    size_t fed = 0, chunks = 0, written = 0;
    const uint8_t *p = data + 1, *end = data + size;
    bool closed = false, sent = false;
    while (p < end) {
        size_t len;
        const uint8_t *q = next_chunk(p, end, &len);
        size_t before = sc.stanzas;
        s2s_stream_status rc = s2s_stream_feed(sc.st, p, len);
        if (closed && sc.stanzas != before)
            die("a stanza handed over after the stream closed");
        fed += len;
        chunks++;
        if (rc == S2S_STREAM_TLS)
            rc = s2s_stream_tls_done(sc.st, true);
        if (rc == S2S_STREAM_CLOSED)
            closed = true;
        if (out && sc.ready && !sent && !closed) {
            sent = true;
            xml_arena *a = xml_arena_new(256);
            xml_node *m = xml_element_new(a, NULL, S2S_NS_SERVER, "message");
            xml_attr_set(a, m, NULL, "from", "u@a.test");
            xml_attr_set(a, m, NULL, "to", "v@b.test");
            s2s_stream_send(sc.st, m, 65536);
            xml_arena_free(a);
            s2s_stream_db_verify(sc.st, "a.test", "b.test", "id1", "0123abcd");
        }
        buf *o = s2s_stream_out(sc.st);
        written += buf_len(o);
        buf_consume(o, buf_len(o));
        if (written > 16 * fed + 4096 * (chunks + 1))
            die("the stream wrote far more than it was fed");
        p = q < end ? q + 2 : end;
    }
    s2s_stream_free(sc.st);
    return 0;
}
