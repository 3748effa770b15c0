/* tests/unit/test_websocket.c — shard/websocket.c's decoder: a message in fragments with a ping
 * between them (answered with a pong carrying its bytes), a frame a byte at a time, <open/> turned
 * into a stream header, the client's close answered with its code; each protocol error closing
 * with its code (unmasked 1002, reserved bit 1002, non-minimal length 1002, a fragmented or long
 * control frame 1002, a continuation out of place 1002, an invalid close code 1002, binary 1003,
 * bad UTF-8 1007, over the size 1009); nothing read after a close; no buffer kept when idle. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shard/websocket.h"

/* A client frame (masked with a fixed key) appended to out. */
static void frame(buf *out, unsigned b0, const char *payload, size_t n)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t h[14];
    size_t hl = 2;
    h[0] = (uint8_t)b0;
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(h + hl, key, 4);
    buf_append(out, h, hl + 4);
    for (size_t i = 0; i < n; i++) {
        char c = (char)(payload[i] ^ key[i & 3]);
        buf_append(out, &c, 1);
    }
}

/* The close code in out's first close frame, or 0. */
static unsigned close_code(const buf *out)
{
    const uint8_t *p = (const uint8_t *)buf_data(out);
    size_t n = buf_len(out);
    for (size_t i = 0; i + 1 < n;) {
        size_t len = p[i + 1] & 0x7f, hl = 2;
        if (len == 126) {
            len = (size_t)p[i + 2] << 8 | p[i + 3];
            hl = 4;
        }
        if ((p[i] & 0x0f) == 8)
            return len >= 2 ? (unsigned)p[i + hl] << 8 | p[i + hl + 1] : 1005;
        i += hl + len;
    }
    return 0;
}

static void test_fragments_and_ping(void **state)
{
    websocket *w = websocket_new(1000);
    buf in = BUF_INIT, stream = BUF_INIT, out = BUF_INIT;
    frame(&in, 0x01, "<message><bo", 12);             /* text, not final */
    frame(&in, 0x89, "hey", 3);                       /* ping between fragments */
    frame(&in, 0x80, "dy>x</body></message>", 21);    /* final continuation */
    for (size_t i = 0; i < buf_len(&in); i++)
        assert_int_equal(websocket_feed(w, buf_data(&in) + i, 1, &stream, &out), 0);
    assert_int_equal(buf_len(&stream), 33);
    assert_memory_equal(buf_data(&stream), "<message><body>x</body></message>", 33);
    assert_int_equal(buf_len(&out), 5);
    assert_memory_equal(buf_data(&out), "\x8a\x03hey", 5);
    buf_free(&in);
    buf_free(&stream);
    buf_free(&out);
    const char *open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a' version='1.0'/>";
    frame(&in, 0x81, open, strlen(open));
    frame(&in, 0x88, "\x03\xe9going", 7);
    unsigned seen = websocket_feed(w, buf_data(&in), buf_len(&in), &stream, &out);
    assert_true(seen & WEBSOCKET_CLOSED);
    buf_append(&stream, "", 1);
    assert_non_null(strstr(buf_data(&stream), "<stream:stream"));
    assert_int_equal(close_code(&out), 1001);
    /* Nothing after the close. */
    size_t before = buf_len(&out);
    buf more = BUF_INIT;
    frame(&more, 0x89, "x", 1);
    websocket_feed(w, buf_data(&more), buf_len(&more), &stream, &out);
    assert_int_equal(buf_len(&out), before);
    buf_free(&more);
    buf_free(&in);
    buf_free(&stream);
    buf_free(&out);
    websocket_free(w);
}

/* Feeds raw bytes to a new decoder; returns the close code it answered with (0: none). */
static unsigned code_for(const void *bytes, size_t n, size_t max_message)
{
    websocket *w = websocket_new(max_message);
    buf stream = BUF_INIT, out = BUF_INIT;
    unsigned seen = websocket_feed(w, bytes, n, &stream, &out);
    unsigned code = close_code(&out);
    assert_true(!code || (seen & WEBSOCKET_CLOSED));
    buf_free(&stream);
    buf_free(&out);
    websocket_free(w);
    return code;
}

static unsigned code_for_frame(unsigned b0, const char *payload, size_t n, size_t max)
{
    buf in = BUF_INIT;
    frame(&in, b0, payload, n);
    unsigned code = code_for(buf_data(&in), buf_len(&in), max);
    buf_free(&in);
    return code;
}

static void test_errors(void **state)
{
    assert_int_equal(code_for("\x81\x03" "abc", 5, 100), 1002);            /* unmasked */
    assert_int_equal(code_for_frame(0xc1, "x", 1, 100), 1002);              /* RSV1 */
    assert_int_equal(code_for_frame(0x83, "x", 1, 100), 1002);              /* opcode 3 */
    assert_int_equal(code_for_frame(0x09, "", 0, 100), 1002);               /* fragmented ping */
    char big[200];
    memset(big, 'a', sizeof big);
    assert_int_equal(code_for_frame(0x89, big, 126, 100), 1002);            /* long control */
    assert_int_equal(code_for_frame(0x80, "x", 1, 100), 1002);              /* lone continuation */
    assert_int_equal(code_for_frame(0x88, "\x03\xec", 2, 100), 1002);       /* close code 1004 */
    assert_int_equal(code_for_frame(0x88, "\x03", 1, 100), 1002);           /* one-byte close */
    assert_int_equal(code_for_frame(0x82, "bin", 3, 100), 1003);
    assert_int_equal(code_for_frame(0x81, "\xff\xfe", 2, 100), 1007);
    assert_int_equal(code_for_frame(0x81, big, 101, 100), 1009);
    /* A 16-bit length for 5 bytes is not minimal. */
    assert_int_equal(code_for("\x81\xfe\x00\x05\x01\x02\x03\x04hello", 13, 100), 1002);
    /* A text message then a new one before the first ended. */
    buf in = BUF_INIT;
    frame(&in, 0x01, "a", 1);
    frame(&in, 0x01, "b", 1);
    assert_int_equal(code_for(buf_data(&in), buf_len(&in), 100), 1002);
    buf_free(&in);
    /* An empty close is answered with 1000. */
    assert_int_equal(code_for_frame(0x88, "", 0, 100), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fragments_and_ping),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
