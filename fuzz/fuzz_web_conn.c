/* fuzz/fuzz_web_conn.c — libFuzzer target for what the front's web listener reads from its peers
 * (shard/web_conn.c on core/http_request.c, BOSH requests answered at once; after an upgrade
 * shard/websocket.c's frame decoder and shard/xmpp_framing.c's reading of <open/> and <close/>). The input is fed in pieces (byte 0
 * picks their size, bit 7 of byte 1 whether the connection counts as secure); the stream bytes
 * the messages turn into are then cut by framing_out as the front's own output would be.
 *
 * Checks: no crash, abort or sanitizer report; what goes back to the peer is at most
 * OUTPUT_FACTOR times its input plus one answer's worth; nothing is read after a close. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shard/web_conn.h"
#include "shard/websocket.h"
#include "shard/xmpp_framing.h"

#define OUTPUT_FACTOR 16
#define OUTPUT_SLACK 4096

static void check(bool ok)
{
    if (!ok)
        abort();
}

static front_config *web_config(void)
{
    static front_config cfg;
    static char *hosts[] = {"localhost", NULL};
    if (!cfg.hosts) {
        cfg.hosts = hosts;
        cfg.nhosts = 1;
        cfg.starttls_required = true;
        cfg.http = (front_http){.on = true, .ip = "127.0.0.1", .port = 5280, .tls_port = 5281,
                                .ws_path = "/xmpp-websocket", .max_message = 65536};
        cfg.http.bosh = (front_bosh){.path = "/http-bind", .wait_max = 60, .hold_max = 1,
                                     .inactivity = 60, .polling = 5, .maxpause = 120};
        cfg.limits.stanza_size = 65536;
        cfg.http.upload = (front_upload){.on = true, .path = "/upload",
                                         .dir = "/nonexistent/jabshard-fuzz",
                                         .secret = "0123456789abcdef0123456789abcdef",
                                         .secret_len = 32, .max_file_size = 1 << 20,
                                         .expire_after = 3600};
    }
    return &cfg;
}

static size_t emitted;

static void emit(void *ctx, framing_out_kind kind, const char *data, size_t len)
{
    emitted += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t piece = data[0] % 64 + 1;
    bool secure = data[1] & 0x80;
    data += 2;
    size -= 2;
    web_conn *w = web_conn_new(web_config(), secure, secure);
    websocket *ws = NULL;
    buf out = BUF_INIT, stream = BUF_INIT;
    bool closed = false;
    size_t at = 0;
    while (at < size && !closed) {
        size_t n = size - at < piece ? size - at : piece;
        const char *p = (const char *)data + at;
        if (ws) {
            closed = websocket_feed(ws, p, n, &stream, &out) & WEBSOCKET_CLOSED;
            at += n;
            continue;
        }
        size_t used = 0;
        unsigned acts = web_conn_feed(w, p, n, &used, &out);
        check(used <= n && (used == n || acts));
        at += used;
        if (acts & WEB_ACT_UPGRADE) {
            ws = websocket_new(web_config()->http.max_message);
        } else if (acts & WEB_ACT_CLOSE) {
            closed = true;
        } else if (acts & WEB_ACT_BODY) {
            while (web_conn_pull(w, &out, 4096) > 0)
                ;
        } else if (acts & WEB_ACT_BOSH) {
            /* The session's answer (shard/io_bosh.c's job), so that the connection goes on. */
            size_t len;
            web_conn_bosh_body(w, &len);
            web_conn_bosh_answer(w, 200, "<body/>", 7, &out);
        }
    }
    check(buf_len(&out) <= OUTPUT_FACTOR * size + OUTPUT_SLACK);
    emitted = 0;
    size_t used = framing_out(buf_data(&stream), buf_len(&stream), emit, NULL);
    check(used <= buf_len(&stream));
    buf_free(&out);
    buf_free(&stream);
    websocket_free(ws);
    web_conn_free(w);
    return 0;
}
