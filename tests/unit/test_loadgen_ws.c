/* tests/unit/test_loadgen_ws.c — the load generator's WebSocket framing (tests/bench/loadgen/
 * lg_ws.c): the accept key and a masked frame against RFC 6455's own examples, frame headers of
 * the three length forms, the element splitter (quotes holding '>', self-closing tags, nesting),
 * what lg_ws_send makes of several stanzas, a keepalive and the stream's end, and lg_ws_input:
 * the 101 checked (accept key, subprotocol, a refusal), frames after the head in the same read,
 * input cut at every byte, fragments, pings answered, and masked server frames refused.
 *
 * The loadgen is not part of the library, so its module is compiled into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/loadgen/lg_ws.c"

static void test_accept_key(void **state)
{
    char out[29];
    lg_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out);   /* RFC 6455 §1.3 */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_frame_rfc_example(void **state)
{
    buf b = BUF_INIT;
    lg_ws_frame(&b, LG_WS_OP_TEXT, "Hello", 5, 0x37fa213d);   /* RFC 6455 §5.7 */
    static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    assert_int_equal(buf_len(&b), sizeof(want));
    assert_memory_equal(buf_data(&b), want, sizeof(want));
    buf_free(&b);
}

/* Unmasks frame f (a client frame) and checks its opcode and payload. Returns the frame's length. */
static size_t check_frame(const char *f, size_t len, unsigned opcode, const char *payload,
                          size_t plen)
{
    lg_ws_header h;
    assert_int_equal(lg_ws_parse_header((const uint8_t *)f, len, &h), 1);
    assert_true(h.fin);
    assert_true(h.masked);
    assert_int_equal(h.opcode, opcode);
    assert_int_equal(h.payload_len, plen);
    assert_true(len >= h.header_len + plen);
    uint8_t m[4] = {h.mask >> 24, h.mask >> 16, h.mask >> 8, h.mask};
    for (size_t i = 0; i < plen; i++)
        assert_int_equal((uint8_t)f[h.header_len + i] ^ m[i & 3], (uint8_t)payload[i]);
    return h.header_len + plen;
}

static void test_frame_lengths(void **state)
{
    size_t sizes[] = {0, 125, 126, 65535, 65536, 200000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        char *p = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            p[i] = (char)('a' + i % 26);
        buf b = BUF_INIT;
        lg_ws_frame(&b, LG_WS_OP_TEXT, p, n, 0x01020304);
        size_t hl = n < 126 ? 6 : n <= 0xffff ? 8 : 14;
        assert_int_equal(buf_len(&b), hl + n);
        assert_int_equal(check_frame(buf_data(&b), buf_len(&b), LG_WS_OP_TEXT, p, n), hl + n);
        lg_ws_header h;   /* one byte short of the header: not yet */
        assert_int_equal(lg_ws_parse_header((const uint8_t *)buf_data(&b), hl - 1, &h), 0);
        buf_free(&b);
        free(p);
    }
    const uint8_t reserved[] = {0xc1, 0x00};
    lg_ws_header h;
    assert_int_equal(lg_ws_parse_header(reserved, 2, &h), -1);
}

static void test_element_len(void **state)
{
    const char *s = "<message to='a>b' id=\"x/>\"><body>1 > 0</body><x/></message><r xmlns='urn:xmpp:sm:3'/>";
    size_t first = strlen("<message to='a>b' id=\"x/>\"><body>1 > 0</body><x/></message>");
    assert_int_equal(lg_ws_element_len(s, strlen(s)), first);
    assert_int_equal(lg_ws_element_len(s + first, strlen(s + first)), strlen(s + first));
    assert_int_equal(lg_ws_element_len("  <a/>", 6), 2);
    assert_int_equal(lg_ws_element_len("</stream:stream>", 16), 16);
    assert_int_equal(lg_ws_element_len("<a><b>", 6), 6);   /* unfinished: all of it */
    assert_int_equal(lg_ws_element_len("<a b='>", 7), 7);
}

static void test_xmlns_at(void **state)
{
    const char *cases[][2] = {
        {"<message to='a'/>", "8"}, {"<presence/>", "9"}, {"<iq\ttype='get'/>", "3"},
        {"<r xmlns='urn:xmpp:sm:3'/>", "0"}, {"<x a='b' xmlns = 'c'/>", "0"},
        {"<x xmlns:p='c' a=' xmlns=d'/>", "2"}, {"</x>", "0"}, {"text", "0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(lg_ws_xmlns_at(cases[i][0], strlen(cases[i][0])), atoi(cases[i][1]));
}

static void test_send(void **state)
{
    buf b = BUF_INIT;
    const char *two = "<message to='u@h'><body>hi</body></message><r xmlns='urn:xmpp:sm:3'/>\n";
    lg_ws_send(two, strlen(two), &b);
    const char *p = buf_data(&b);
    size_t len = buf_len(&b);
    const char *m = "<message xmlns='jabber:client' to='u@h'><body>hi</body></message>";
    size_t n = check_frame(p, len, LG_WS_OP_TEXT, m, strlen(m));
    n += check_frame(p + n, len - n, LG_WS_OP_TEXT, "<r xmlns='urn:xmpp:sm:3'/>", 26);
    assert_int_equal(n, len);   /* the trailing newline sends nothing */
    buf_free(&b);

    lg_ws_send(" ", 1, &b);   /* a keepalive: a ping */
    assert_int_equal(check_frame(buf_data(&b), buf_len(&b), LG_WS_OP_PING, "", 0), buf_len(&b));
    buf_free(&b);

    lg_ws_send("</stream:stream>", 16, &b);
    const char *close = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
    assert_int_equal(check_frame(buf_data(&b), buf_len(&b), LG_WS_OP_TEXT, close, strlen(close)),
                     buf_len(&b));
    buf_free(&b);

    lg_ws_open("localhost", &b);
    const char *open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
    assert_int_equal(check_frame(buf_data(&b), buf_len(&b), LG_WS_OP_TEXT, open, strlen(open)),
                     buf_len(&b));
    buf_free(&b);
}

static void test_request(void **state)
{
    lg_ws ws = {0};
    buf b = BUF_INIT;
    lg_ws_request(&ws, "localhost", 5280, "/xmpp-websocket", &b);
    buf_append(&b, "", 1);
    const char *r = buf_data(&b);
    assert_int_equal(strlen(ws.key), 24);
    assert_non_null(strstr(r, "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost:5280\r\n"));
    assert_non_null(strstr(r, "\r\nSec-WebSocket-Protocol: xmpp\r\n"));
    assert_non_null(strstr(r, "\r\nSec-WebSocket-Version: 13\r\n"));
    char line[64];
    snprintf(line, sizeof(line), "\r\nSec-WebSocket-Key: %s\r\n", ws.key);
    assert_non_null(strstr(r, line));
    assert_int_equal(strcmp(r + strlen(r) - 4, "\r\n\r\n"), 0);
    buf_free(&b);
    lg_ws_free(&ws);
}

/* ---- input ---- */

typedef struct events {
    char log[4096];   /* one line per event */
    int stop_after;   /* return false at this event (0: never) */
    int n;
} events;

static bool record(void *ctx, lg_ws_event ev, const char *data, size_t len)
{
    events *e = ctx;
    static const char *names[] = {"upgraded", "open", "element", "close", "write", "error"};
    size_t at = strlen(e->log);
    if (ev == LG_WS_WRITE) {   /* a pong: check it and log its payload */
        lg_ws_header h;
        assert_int_equal(lg_ws_parse_header((const uint8_t *)data, len, &h), 1);
        assert_int_equal(h.opcode, LG_WS_OP_PONG);
        char payload[128] = "";
        uint8_t m[4] = {h.mask >> 24, h.mask >> 16, h.mask >> 8, h.mask};
        for (size_t i = 0; i < h.payload_len && i < sizeof(payload) - 1; i++)
            payload[i] = (char)((uint8_t)data[h.header_len + i] ^ m[i & 3]);
        snprintf(e->log + at, sizeof(e->log) - at, "pong %s\n", payload);
    } else {
        snprintf(e->log + at, sizeof(e->log) - at, "%s %.*s\n", names[ev],
                 ev == LG_WS_UPGRADED ? 0 : (int)len, data ? data : "");
    }
    return ++e->n != e->stop_after;
}

/* An unmasked server frame. */
static void server_frame(buf *b, unsigned first_byte, const char *p, size_t n)
{
    uint8_t h[4] = {(uint8_t)first_byte};
    size_t hl = 2;
    if (n < 126) {
        h[1] = (uint8_t)n;
    } else {
        h[1] = 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    }
    buf_append(b, h, hl);
    buf_append(b, p, n);
}

static void response(buf *b, const char *key, const char *protocol)
{
    char accept[29];
    lg_ws_accept(key, accept);
    buf_appendf(b, "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n"
                   "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                accept, protocol);
}

static const char *const session_log =
    "upgraded \n"
    "open <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='1' version='1.0'/>\n"
    "element <features xmlns='http://etherx.jabber.org/streams'/>\n"
    "pong abc\n"
    "element <message><body>split in two</body></message>\n"
    "close <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>\n";

static void session_input(buf *b, const char *key)
{
    response(b, key, "Sec-WebSocket-Protocol: xmpp\r\n");
    const char *open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='1' version='1.0'/>";
    server_frame(b, 0x81, open, strlen(open));
    const char *f = "\n<features xmlns='http://etherx.jabber.org/streams'/>";
    server_frame(b, 0x81, f, strlen(f));
    server_frame(b, 0x89, "abc", 3);                              /* ping */
    server_frame(b, 0x01, "<message><body>split", 20);            /* text, not final */
    server_frame(b, 0x8a, "", 0);                                 /* a pong between fragments */
    server_frame(b, 0x80, " in two</body></message>", 24);        /* continuation, final */
    const char *close = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
    server_frame(b, 0x81, close, strlen(close));
    server_frame(b, 0x88, "\x03\xe8", 2);                         /* the close frame: no event */
}

static void test_input_whole_and_bytewise(void **state)
{
    buf in = BUF_INIT;
    session_input(&in, "dGhlIHNhbXBsZSBub25jZQ==");
    for (size_t step = 0; step < 3; step++) {
        size_t chunk = step == 0 ? buf_len(&in) : step == 1 ? 1 : 7;
        lg_ws ws = {0};
        strcpy(ws.key, "dGhlIHNhbXBsZSBub25jZQ==");
        events e = {0};
        for (size_t at = 0; at < buf_len(&in); at += chunk) {
            size_t n = buf_len(&in) - at < chunk ? buf_len(&in) - at : chunk;
            assert_true(lg_ws_input(&ws, buf_data(&in) + at, n, record, &e));
        }
        assert_string_equal(e.log, session_log);
        assert_int_equal(buf_len(&ws.in), 0);
        lg_ws_free(&ws);
    }
    buf_free(&in);
}

static void test_input_stops_when_told(void **state)
{
    buf in = BUF_INIT;
    session_input(&in, "dGhlIHNhbXBsZSBub25jZQ==");
    lg_ws ws = {0};
    strcpy(ws.key, "dGhlIHNhbXBsZSBub25jZQ==");
    events e = {.stop_after = 3};   /* the connection ends at the features */
    assert_false(lg_ws_input(&ws, buf_data(&in), buf_len(&in), record, &e));
    assert_int_equal(e.n, 3);
    lg_ws_free(&ws);
    buf_free(&in);
}

/* The input's first event is an error whose text contains want. */
static void assert_refused(const char *input, size_t len, const char *want)
{
    lg_ws ws = {0};
    strcpy(ws.key, "dGhlIHNhbXBsZSBub25jZQ==");
    events e = {0};
    assert_false(lg_ws_input(&ws, input, len, record, &e));
    const char *err = strstr(e.log, "error ");
    assert_non_null(err);
    assert_non_null(strstr(err, want));
    lg_ws_free(&ws);
}

static void test_refusals(void **state)
{
    buf b = BUF_INIT;
    response(&b, "dGhlIHNhbXBsZSBub25jZQ==", "");   /* no subprotocol */
    assert_refused(buf_data(&b), buf_len(&b), "Sec-WebSocket-Protocol");
    buf_free(&b);
    response(&b, "another key", "Sec-WebSocket-Protocol: xmpp\r\n");
    assert_refused(buf_data(&b), buf_len(&b), "Sec-WebSocket-Accept");
    buf_free(&b);
    const char *no = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    assert_refused(no, strlen(no), "upgrade refused: HTTP/1.1 403 Forbidden");
    response(&b, "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: xmpp\r\n");
    buf_append(&b, "\x81\x81\x01\x02\x03\x04x", 7);   /* a masked server frame */
    assert_refused(buf_data(&b), buf_len(&b), "masked");
    buf_free(&b);
    response(&b, "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: xmpp\r\n");
    server_frame(&b, 0x82, "x", 1);   /* binary */
    assert_refused(buf_data(&b), buf_len(&b), "binary");
    buf_free(&b);
    response(&b, "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: xmpp\r\n");
    server_frame(&b, 0x80, "x", 1);   /* a continuation with no message */
    assert_refused(buf_data(&b), buf_len(&b), "continuation");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_frame_rfc_example),
        cmocka_unit_test(test_frame_lengths),
        cmocka_unit_test(test_element_len),
        cmocka_unit_test(test_xmlns_at),
        cmocka_unit_test(test_send),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_input_whole_and_bytewise),
        cmocka_unit_test(test_input_stops_when_told),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
