/* tests/unit/test_http_conn.c — core/http_conn: a GET answered with the handler's body, HEAD
 * without it, the query left out of the path, pipelined requests answered in order on a
 * keep-alive connection, Connection: close and HTTP/1.0, and each refusal (400, 405 with Allow,
 * 413, 414, 431) closing the connection; a request in one-byte pieces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/http_conn.h"

static char seen_path[HTTP_PATH_MAX + 1];

static void handler(void *ctx, const http_request *req, http_response *resp)
{
    strcpy(seen_path, req->path);
    if (strcmp(req->path, "/metrics") != 0) {
        resp->status = 404;
        return;
    }
    resp->content_type = "text/plain";
    buf_appendf(&resp->body, "up 1\n");
}

/* Feeds text whole (or byte by byte); returns the answers, NUL-terminated (malloc'd); *open
 * says whether the connection stays. */
static char *exchange(const char *text, bool bytewise, bool *open)
{
    http_conn *c = http_conn_new(handler, NULL);
    buf out = BUF_INIT;
    size_t len = strlen(text);
    *open = true;
    if (bytewise)
        for (size_t i = 0; i < len && *open; i++)
            *open = http_conn_feed(c, text + i, 1, &out);
    else
        *open = http_conn_feed(c, text, len, &out);
    buf_append(&out, "", 1);
    char *s = strdup(buf_data(&out));
    buf_free(&out);
    http_conn_free(c);
    return s;
}

static void test_get_and_head(void **state)
{
    bool open;
    char *a = exchange("GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", false, &open);
    assert_true(open);
    assert_string_equal(seen_path, "/metrics");
    assert_non_null(strstr(a, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(a, "Content-Length: 5\r\n"));
    assert_non_null(strstr(a, "\r\n\r\nup 1\n"));
    free(a);
    a = exchange("HEAD /metrics HTTP/1.1\r\n\r\n", true, &open);
    assert_non_null(strstr(a, "Content-Length: 5\r\n"));
    assert_null(strstr(a, "up 1"));
    free(a);
    a = exchange("GET /other HTTP/1.1\r\n\r\n", false, &open);
    assert_non_null(strstr(a, "HTTP/1.1 404 Not Found"));
    assert_true(open);
    free(a);
}

static void test_pipelined_and_close(void **state)
{
    bool open;
    char *a = exchange("GET /a HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n", false, &open);
    char *first = strstr(a, "404"), *second = strstr(a, "200 OK");
    assert_true(first && second && first < second);
    assert_true(open);
    free(a);
    a = exchange("GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
                 false, &open);
    assert_false(open);
    assert_non_null(strstr(a, "Connection: close"));
    assert_null(strstr(strstr(a, "up 1") + 1, "HTTP/1.1"));   /* one answer only */
    free(a);
    a = exchange("GET /metrics HTTP/1.0\r\n\r\n", false, &open);
    assert_false(open);
    free(a);
}

static void test_refusals(void **state)
{
    bool open;
    char *a = exchange("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", false, &open);
    assert_non_null(strstr(a, "405 Method Not Allowed"));
    assert_non_null(strstr(a, "Allow: GET, HEAD\r\n"));
    assert_false(open);
    free(a);
    a = exchange("GET /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", false, &open);
    assert_non_null(strstr(a, "413 "));
    assert_false(open);
    free(a);
    a = exchange("this is not HTTP\r\n\r\n", false, &open);
    assert_non_null(strstr(a, "400 Bad Request"));
    assert_false(open);
    free(a);
    char *big = malloc(HTTP_HEAD_MAX * 2);
    strcpy(big, "GET /");
    memset(big + 5, 'a', HTTP_PATH_MAX + 10);
    strcpy(big + 5 + HTTP_PATH_MAX + 10, " HTTP/1.1\r\n\r\n");
    a = exchange(big, false, &open);
    assert_non_null(strstr(a, "414 URI Too Long"));
    assert_false(open);
    free(a);
    strcpy(big, "GET / HTTP/1.1\r\nX: ");
    size_t n = strlen(big);
    memset(big + n, 'b', HTTP_HEAD_MAX + 10);
    strcpy(big + n + HTTP_HEAD_MAX + 10, "\r\n\r\n");
    a = exchange(big, true, &open);
    assert_non_null(strstr(a, "431 Request Header Fields Too Large"));
    assert_false(open);
    free(a);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_head),
        cmocka_unit_test(test_pipelined_and_close),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
