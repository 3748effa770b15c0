/* fuzz/fuzz_smproto_frame.c — the smproto decoder (version 2) on arbitrary bytes, read as a link
 * reader reads them. The first input byte picks where the rest is split into two reads; the frames
 * that come out must be the same as those found in the unsplit bytes, and the stream must stop (a
 * bad frame) at the same place. Every frame goes through the decoder of its type, and every record
 * a decoder accepts must re-encode to exactly the frame it came from (one canonical encoding); a
 * frame accepted with a session id must be of a counted type (the link's own carry none). A MODULE
 * for connection 0 named caps is also read as the front reads the SM's entity capabilities. */
#include "smproto/frame.h"
#include "shard/server_caps.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The front's reading of the SM's caps announcement (shard/server_caps.c): whatever it accepts, a
 * host it holds gives back a ver of the bounded size. */
static void server_caps_read(const uint8_t *body, size_t len)
{
    server_caps *c = server_caps_new();
    if (server_caps_update(c, body, len) && len) {
        char ver[SERVER_CAPS_VER_MAX];
        if (server_caps_ver(c, (const char *)body, ver, sizeof ver) &&
            strlen(ver) >= SERVER_CAPS_VER_MAX)
            abort();
    }
    server_caps_free(c);
}

static void fuzz_same(buf *again, const uint8_t *raw, size_t raw_len)
{
    if (buf_len(again) != raw_len || memcmp(buf_data(again), raw, raw_len) != 0)
        abort();
    buf_free(again);
}

/* The typed decoder of f's type; raw is the whole frame as received. */
static void fuzz_frame(const smproto_frame *f, const uint8_t *raw, size_t raw_len)
{
    buf again = BUF_INIT;
    const char *s1, *s2, *s3;
    uint8_t u8;
    uint64_t u64;
    smproto_creds creds;

    if (f->type < SMPROTO_STANZA || f->type > SMPROTO_TYPE_MAX || f->len > SMPROTO_MAX_PAYLOAD ||
        raw_len != SMPROTO_HEADER + (size_t)f->len || f->payload != raw + SMPROTO_HEADER ||
        strcmp(smproto_type_name(f->type), "UNKNOWN") == 0)
        abort();
    switch (f->type) {
    case SMPROTO_STANZA:
        smproto_put(&again, f->type, f->sid, f->payload, f->len);
        break;
    case SMPROTO_AUTH_QUERY:
        if (!smproto_get_auth_query(f, &s1, &s2))
            return;
        smproto_put_auth_query(&again, f->sid, s1, s2);
        break;
    case SMPROTO_AUTH_ANSWER:
        if (!smproto_get_auth_answer(f, &u8, &creds))
            return;
        smproto_put_auth_answer(&again, f->sid, u8, u8 == SMPROTO_AUTH_OK ? &creds : NULL);
        break;
    case SMPROTO_BIND:
        if (!smproto_get_bind(f, &s1, &s2, &s3, &u8))
            return;
        smproto_put_bind(&again, f->sid, s1, s2, s3, u8);
        break;
    case SMPROTO_BOUND:
        if (!smproto_get_bound(f, &u8, &s1))
            return;
        if ((u8 == SMPROTO_BOUND_OK) != (s1 != NULL))
            abort();
        smproto_put_bound(&again, f->sid, u8, s1);
        break;
    case SMPROTO_END:
        if (!smproto_get_end(f, &u8, &s1))
            return;
        smproto_put_end(&again, f->sid, u8, s1);
        break;
    case SMPROTO_REGISTER:
        if (!smproto_get_register(f, &s1, &s2))
            return;
        smproto_put_register(&again, f->sid, s1, s2);
        break;
    case SMPROTO_PING:
    case SMPROTO_PONG:
        if (!smproto_get_ping(f, &u64))
            return;
        smproto_put_ping(&again, f->type, u64);
        break;
    case SMPROTO_ACK:
        if (!smproto_get_ack(f, &u64))
            return;
        smproto_put_ack(&again, u64);
        break;
    case SMPROTO_STATE: {
        const uint8_t *record;
        size_t len;
        if (!smproto_get_state(f, &record, &len))
            return;
        if (len && record != f->payload)
            abort();
        smproto_put_state(&again, f->sid, record, len);
        break;
    }
    case SMPROTO_MODULE: {
        const char *name;
        size_t nl, len;
        const uint8_t *body;
        if (!smproto_get_module(f, &name, &nl, &body, &len))
            return;
        if (name != (const char *)f->payload + 1 || body + len != f->payload + f->len)
            abort();
        char n[SMPROTO_MODULE_NAME_MAX + 1];
        memcpy(n, name, nl);
        n[nl] = 0;
        if (!smproto_put_module(&again, f->sid, n, body, len))
            abort();
        if (f->sid == 0 && strcmp(n, CAPS_MSG_MODULE) == 0)
            server_caps_read(body, len);
        break;
    }
    case SMPROTO_UNDELIVERED: {
        size_t len;
        if (!smproto_get_undelivered(f, &s1, &len))
            return;
        if (s1 != (const char *)f->payload || len != f->len)
            abort();
        smproto_put_undelivered(&again, f->sid, s1, len);
        break;
    }
    case SMPROTO_RESYNC: {
        smproto_resync_reader rd;
        smproto_resync_entry e;
        smproto_resync_read(f, &rd);
        size_t start = smproto_resync_begin(&again);
        int r;
        /* The front sizes its frames by smproto_resync_entry_size: it must be what add writes. */
        while ((r = smproto_resync_next(&rd, &e)) == 1) {
            size_t before = buf_len(&again);
            smproto_resync_add(&again, &e);
            if (buf_len(&again) - before != smproto_resync_entry_size(&e))
                abort();
        }
        if (r < 0) {
            /* Malformed stays malformed. */
            if (smproto_resync_next(&rd, &e) != -1)
                abort();
            buf_free(&again);
            return;
        }
        smproto_resync_end(&again, start);
        break;
    }
    }
    if (f->sid != 0 && !smproto_counted(f->type))
        abort();
    fuzz_same(&again, raw, raw_len);
}

/* Frame boundaries in the contiguous stream: ends[i] is where frame i ends (ends holds one entry
 * per SMPROTO_HEADER bytes, enough for any stream). Returns the count; *bad says whether the stream
 * stopped at a bad frame rather than at its end or inside a frame. */
static size_t fuzz_scan(const uint8_t *s, size_t n, size_t *ends, bool *bad)
{
    size_t count = 0, pos = 0;
    for (;;) {
        smproto_frame f;
        size_t used = 0;
        smproto_frame_status st = smproto_frame_next(s + pos, n - pos, &f, &used);
        *bad = st == SMPROTO_FRAME_BAD;
        if (st != SMPROTO_FRAME_OK)
            return count;
        if (used < SMPROTO_HEADER || used > n - pos)
            abort();
        fuzz_frame(&f, s + pos, used);
        pos += used;
        ends[count++] = pos;
    }
}

/* Reads the frames rx holds, checking each against the scan; returns the new count and sets
 * *closed when the reader meets a bad frame (and would close the link). */
static size_t fuzz_drain(buf *rx, const uint8_t *s, const size_t *ends, size_t count, size_t got,
                         bool *closed)
{
    for (;;) {
        smproto_frame f;
        size_t used = 0;
        smproto_frame_status st =
            smproto_frame_next((const uint8_t *)buf_data(rx), buf_len(rx), &f, &used);
        *closed = st == SMPROTO_FRAME_BAD;
        if (st != SMPROTO_FRAME_OK)
            return got;
        size_t from = got ? ends[got - 1] : 0;
        if (got == count || used != ends[got] - from || memcmp(buf_data(rx), s + from, used) != 0)
            abort();
        buf_consume(rx, used);
        got++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { MAX_STREAM = 1 << 20 };
    static size_t ends[MAX_STREAM / SMPROTO_HEADER];
    if (size == 0)
        return 0;
    const uint8_t *s = data + 1;
    size_t n = size - 1 < MAX_STREAM ? size - 1 : MAX_STREAM;
    size_t split = data[0] % (n + 1);

    bool bad, closed;
    size_t count = fuzz_scan(s, n, ends, &bad);

    buf rx = BUF_INIT;
    buf_append(&rx, s, split);
    size_t got = fuzz_drain(&rx, s, ends, count, 0, &closed);
    if (!closed) {
        buf_append(&rx, s + split, n - split);
        got = fuzz_drain(&rx, s, ends, count, got, &closed);
    }
    /* Split or not, the reader sees the same frames and stops at the same bad one. */
    if (got != count || closed != bad)
        abort();
    buf_free(&rx);
    return 0;
}
