/* tests/unit/test_web_conn.c — shard/web_conn (with shard/websocket's handshake): the WebSocket
 * upgrade answered with RFC 6455's own example key and accept value, the bytes after the request
 * left for the WebSocket; refusals (no xmpp subprotocol, version 8 with 426, an origin not
 * listed, plain HTTP while TLS is required); host-meta and host-meta.json with <public_url>,
 * listing WebSocket and BOSH; a BOSH POST handed over with its body and answered later, the next
 * request waiting meanwhile; a BOSH body over the bound (413); an upload GET for a slot that is
 * not there (404); a request in one-byte pieces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shard/web_conn.h"

static front_config cfg;
static char *hosts[] = {"example.org", NULL};
static const char *origins[] = {"https://chat.example.org", NULL};

static int setup(void **state)
{
    cfg.hosts = hosts;
    cfg.nhosts = 1;
    cfg.starttls_required = true;
    cfg.limits.stanza_size = 10000;
    cfg.http = (front_http){.on = true, .ip = "127.0.0.1", .port = 5280, .tls_port = 5281,
                            .public_url = "https://chat.example.org:5281/", .ws_path = "/ws",
                            .origins = origins, .norigins = 1, .max_message = 65536};
    cfg.http.bosh = (front_bosh){.path = "/http-bind", .wait_max = 60, .hold_max = 1,
                                 .inactivity = 60, .polling = 5, .maxpause = 120};
    cfg.http.upload = (front_upload){.on = true, .path = "/upload", .dir = "/nonexistent/x",
                                     .secret = "0123456789abcdef", .secret_len = 16,
                                     .max_file_size = 1000, .expire_after = 60};
    return 0;
}

/* Feeds text (whole, or a byte at a time); returns the answers NUL-terminated (malloc'd). */
static char *feed(web_conn *w, const char *text, bool bytewise, unsigned *acts, size_t *used)
{
    buf out = BUF_INIT;
    size_t len = strlen(text), at = 0;
    *acts = 0;
    while (at < len && !*acts) {
        size_t n = bytewise ? 1 : len - at, u = 0;
        *acts = web_conn_feed(w, text + at, n, &u, &out);
        at += u;
    }
    *used = at;
    buf_append(&out, "", 1);
    char *s = strdup(buf_data(&out));
    buf_free(&out);
    return s;
}

#define UPGRADE(extra) "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n" \
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" extra "\r\n"

static void test_websocket(void **state)
{
    const char *req = UPGRADE("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, xmpp\r\n"
                              "Origin: https://chat.example.org\r\n") "\x81\x85";
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        web_conn *w = web_conn_new(&cfg, true, true);
        unsigned acts;
        size_t used;
        char *a = feed(w, req, bytewise, &acts, &used);
        assert_int_equal(acts, WEB_ACT_UPGRADE);
        assert_int_equal(used, strlen(req) - 2);     /* the frame's first bytes are not HTTP's */
        assert_non_null(strstr(a, "HTTP/1.1 101 Switching Protocols\r\n"));
        assert_non_null(strstr(a, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert_non_null(strstr(a, "Sec-WebSocket-Protocol: xmpp\r\n"));
        free(a);
        web_conn_free(w);
    }
    struct {
        const char *req;
        bool secure;
        const char *want;
    } refused[] = {
        {UPGRADE("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n"), true, " 400 "},
        {UPGRADE("Sec-WebSocket-Version: 8\r\nSec-WebSocket-Protocol: xmpp\r\n"), true,
         " 426 "},
        {UPGRADE("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n"
                 "Origin: https://evil.example\r\n"), true, " 403 "},
        {UPGRADE("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n"), false,
         " 403 "},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        web_conn *w = web_conn_new(&cfg, false, refused[i].secure);
        unsigned acts;
        size_t used;
        char *a = feed(w, refused[i].req, false, &acts, &used);
        assert_int_equal(acts, WEB_ACT_CLOSE);
        assert_non_null(strstr(a, refused[i].want));
        if (strstr(refused[i].want, "426"))
            assert_non_null(strstr(a, "Sec-WebSocket-Version: 13\r\n"));
        free(a);
        web_conn_free(w);
    }
}

static void test_host_meta(void **state)
{
    web_conn *w = web_conn_new(&cfg, false, true);
    unsigned acts;
    size_t used;
    char *a = feed(w, "GET /.well-known/host-meta HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /.well-known/host-meta.json HTTP/1.1\r\nHost: x\r\n\r\n",
                   false, &acts, &used);
    assert_int_equal(acts, 0);
    assert_non_null(strstr(a, "application/xrd+xml"));
    assert_non_null(strstr(a, "<Link rel='urn:xmpp:alt-connections:websocket' "
                              "href='wss://chat.example.org:5281/ws'/>"));
    assert_non_null(strstr(a, "<Link rel='urn:xmpp:alt-connections:xbosh' "
                              "href='https://chat.example.org:5281/http-bind'/>"));
    assert_non_null(strstr(a, "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\","
                              "\"href\":\"wss://chat.example.org:5281/ws\"},"));
    assert_non_null(strstr(a, "Access-Control-Allow-Origin: *"));
    free(a);
    web_conn_free(w);
}

static void test_bosh(void **state)
{
    web_conn *w = web_conn_new(&cfg, true, true);
    unsigned acts;
    size_t used;
    const char *two = "POST /http-bind HTTP/1.1\r\nContent-Length: 7\r\n\r\n<body/>"
                      "GET /.well-known/host-meta HTTP/1.1\r\n\r\n";
    char *a = feed(w, two, false, &acts, &used);
    assert_int_equal(acts, WEB_ACT_BOSH);
    assert_string_equal(a, "");
    assert_true(web_conn_bosh_waiting(w) && web_conn_busy(w));
    size_t len;
    const char *body = web_conn_bosh_body(w, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(body, "<body/>", 7);
    /* Until the answer, nothing more is read. */
    size_t more = 0;
    buf out = BUF_INIT;
    assert_int_equal(web_conn_feed(w, two + used, strlen(two) - used, &more, &out), WEB_ACT_BOSH);
    assert_int_equal(more, 0);
    web_conn_bosh_answer(w, 200, "<body xmlns='x'/>", 17, &out);
    buf_append(&out, "", 1);
    assert_non_null(strstr(buf_data(&out), "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf_data(&out), "Content-Type: text/xml; charset=utf-8\r\n"));
    assert_non_null(strstr(buf_data(&out), "\r\n\r\n<body xmlns='x'/>"));
    buf_free(&out);
    assert_false(web_conn_busy(w));
    free(a);
    a = feed(w, two + used, false, &acts, &used);
    assert_non_null(strstr(a, "xrd+xml"));
    free(a);
    web_conn_free(w);
    w = web_conn_new(&cfg, true, true);
    a = feed(w, "POST /http-bind HTTP/1.1\r\nContent-Length: 99999\r\n\r\n", false, &acts, &used);
    assert_int_equal(acts, WEB_ACT_CLOSE);
    assert_non_null(strstr(a, " 413 "));
    free(a);
    web_conn_free(w);
}

static void test_upload_missing(void **state)
{
    web_conn *w = web_conn_new(&cfg, true, true);
    unsigned acts;
    size_t used;
    char *a = feed(w, "GET /upload/0123456789abcdef0123456789abcdef/a.txt HTTP/1.1\r\n\r\n", true,
                   &acts, &used);
    assert_int_equal(acts, WEB_ACT_CLOSE);
    assert_non_null(strstr(a, "HTTP/1.1 404 "));
    assert_non_null(strstr(a, "Access-Control-Allow-Origin: *"));
    free(a);
    web_conn_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_websocket),
        cmocka_unit_test(test_host_meta),
        cmocka_unit_test(test_bosh),
        cmocka_unit_test(test_upload_missing),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
