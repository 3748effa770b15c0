/* fuzz/fuzz_http_conn.c — libFuzzer target for core/http_conn.c, what the HTTP endpoints (the
 * metrics) read from their peers: the input is fed in pieces (byte 0 picks their size), answered
 * by a handler that echoes nothing of the request.
 *
 * Checks: no crash, abort or sanitizer report; the answers are at most OUTPUT_FACTOR times the
 * input plus one answer's worth (an 18-byte pipelined request gets a ~150-byte answer); after the
 * connection says close, feeding it more writes nothing. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/http_conn.h"

#define OUTPUT_FACTOR 16
#define OUTPUT_SLACK 1024

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void handler(void *ctx, const http_request *req, http_response *resp)
{
    resp->status = req->path[0] == '/' && req->path[1] == '\0' ? 200 : 404;
    buf_appendf(&resp->body, "ok\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = data[0] % 64 + 1;
    data++;
    size--;
    http_conn *c = http_conn_new(handler, NULL);
    buf out = BUF_INIT;
    bool open = true;
    for (size_t at = 0; at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        size_t before = buf_len(&out);
        bool was_open = open;
        open = http_conn_feed(c, data + at, n, &out);
        check(was_open || (!open && buf_len(&out) == before));
    }
    check(buf_len(&out) <= OUTPUT_FACTOR * size + OUTPUT_SLACK);
    buf_free(&out);
    http_conn_free(c);
    return 0;
}
