/* tests/unit/test_sm_link.c — the SM's end of smproto links (smproto/link_sm.c) over socketpairs:
 * the XEP-0114 opening (unknown id, wrong secret, right secret), the switch to frames with a frame
 * in the same write as <smproto/>, PING answered with PONG, frames handed to the owner, a bad
 * frame closing the link, components that keep speaking XML, and replacement of a link by a newer
 * one with the same id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/evloop.h"
#include "smproto/handshake.h"
#include "smproto/link_sm.h"

static evloop *loop;
static link_sm_server *srv;
static int ups, downs, components, nframes, nstanzas;
static smproto_frame last_frame;
static uint8_t last_payload[256];
static link_sm *last_up;

static void h_up(void *ctx, link_sm *l, bool component)
{
    ups++;
    components += component;
    last_up = l;
}
static void h_down(void *ctx, link_sm *l) { downs++; }
static void h_frame(void *ctx, link_sm *l, const smproto_frame *f)
{
    nframes++;
    last_frame = *f;
    memcpy(last_payload, f->payload, f->len < sizeof(last_payload) ? f->len : sizeof(last_payload));
    /* echo a STANZA back, as the core would answer */
    if (f->type == SMPROTO_STANZA)
        smproto_put(link_sm_out(l), SMPROTO_STANZA, f->sid, "<ok/>", 5);
}
static void h_stanza(void *ctx, link_sm *l, xml_node *st, xml_arena *a)
{
    nstanzas++;
    assert_string_equal(st->name, "message");
    buf_append(link_sm_out(l), "<message/>", 10);
    xml_arena_free(a);
}

static sm_service services[] = {{"front", NULL, 0, "s3cret"}, {"muc.example.org", NULL, 0, "m"}};

static void stop(timer *t, void *arg) { evloop_stop(loop); }
static void flush_hook(evloop *l, void *arg) { link_sm_flush_all(srv); }

/* Runs the loop until it has been idle a moment (what was written is handled by then). */
static void spin(void)
{
    timer t;
    timer_init(&t, stop, NULL);
    evloop_timer_after(loop, &t, 30);
    evloop_run(loop);
    link_sm_flush_all(srv);   /* the iteration that stopped did not reach before_sleep */
}

static int setup(void **state)
{
    loop = evloop_create();
    link_sm_handlers h = {h_up, h_frame, h_stanza, h_down};
    srv = link_sm_server_new(loop, services, 2, &h, NULL);
    evloop_before_sleep(loop, flush_hook, NULL);
    ups = downs = components = nframes = nstanzas = 0;
    return 0;
}

static int teardown(void **state)
{
    link_sm_server_free(srv);
    evloop_destroy(loop);
    return 0;
}

static int peer(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_non_null(link_sm_adopt(srv, sv[0], "test"));
    return sv[1];
}

static void put(int fd, const void *p, size_t n) { assert_int_equal(write(fd, p, n), (ssize_t)n); }
static void puts_(int fd, const char *s) { put(fd, s, strlen(s)); }

/* Everything the SM has written so far; *eof when it closed. */
static size_t get(int fd, char *out, size_t cap, bool *eof)
{
    size_t n = 0;
    *eof = false;
    for (;;) {
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r == 0)
            *eof = true;
        break;
    }
    out[n] = 0;
    return n;
}

#define OPEN_FRONT "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' " \
                   "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>"

/* Opens a stream to id and answers the handshake with secret; returns the SM's stream id. */
static void opening(int fd, const char *id, const char *secret, char *reply, size_t cap, bool *eof)
{
    char hdr[256];
    snprintf(hdr, sizeof(hdr), OPEN_FRONT, id);
    puts_(fd, hdr);
    spin();
    get(fd, reply, cap, eof);
    const char *p = strstr(reply, "id='");
    assert_non_null(p);
    char sid[64] = {0};
    memcpy(sid, p + 4, SMPROTO_STREAM_ID_LEN);
    char digest[SMPROTO_DIGEST_LEN + 1], hs[128];
    smproto_handshake_digest(sid, secret, digest);
    snprintf(hs, sizeof(hs), "<handshake>%s</handshake>", digest);
    puts_(fd, hs);
    spin();
    get(fd, reply, cap, eof);
}

static void test_unknown_id(void **state)
{
    int fd = peer();
    char hdr[256], out[4096];
    bool eof;
    snprintf(hdr, sizeof(hdr), OPEN_FRONT, "nobody");
    puts_(fd, hdr);
    spin();
    get(fd, out, sizeof(out), &eof);
    assert_non_null(strstr(out, "<host-unknown"));
    assert_true(eof);
    assert_int_equal(ups, 0);
    close(fd);
}

static void test_wrong_secret(void **state)
{
    int fd = peer();
    char out[4096];
    bool eof;
    opening(fd, "front", "wrong", out, sizeof(out), &eof);
    assert_non_null(strstr(out, "<not-authorized"));
    assert_true(eof);
    assert_int_equal(ups, 0);
    close(fd);
}

static void test_frames(void **state)
{
    int fd = peer();
    char out[4096];
    bool eof;
    opening(fd, "front", "s3cret", out, sizeof(out), &eof);
    assert_string_equal(out, "<handshake/>");
    assert_false(eof);
    /* The first frame follows <smproto/> in the same write. */
    buf b = BUF_INIT;
    buf_appendf(&b, "<smproto xmlns='urn:jabshard:smproto' version='1'/>");
    smproto_put_ping(&b, SMPROTO_PING, 77);
    smproto_put(&b, SMPROTO_STANZA, 42, "<message/>", 10);
    put(fd, buf_data(&b), buf_len(&b));
    buf_free(&b);
    spin();
    assert_int_equal(ups, 1);
    assert_int_equal(components, 0);
    assert_int_equal(nframes, 1);   /* the PING never reaches the owner */
    assert_int_equal(last_frame.type, SMPROTO_STANZA);
    assert_int_equal(last_frame.sid, 42);
    assert_memory_equal(last_payload, "<message/>", 10);
    size_t n = get(fd, out, sizeof(out), &eof);
    const char *ans = "<smproto xmlns='urn:jabshard:smproto' version='1'/>";
    assert_true(n > strlen(ans));
    assert_memory_equal(out, ans, strlen(ans));
    smproto_frame f;
    size_t used;
    const uint8_t *p = (const uint8_t *)out + strlen(ans);
    size_t left = n - strlen(ans);
    assert_int_equal(smproto_frame_next(p, left, &f, &used), SMPROTO_FRAME_OK);
    uint64_t token;
    assert_int_equal(f.type, SMPROTO_PONG);
    assert_true(smproto_get_ping(&f, &token));
    assert_int_equal(token, 77);
    assert_int_equal(smproto_frame_next(p + used, left - used, &f, &used), SMPROTO_FRAME_OK);
    assert_int_equal(f.type, SMPROTO_STANZA);
    assert_int_equal(f.sid, 42);
    /* A frame split across writes is handed over whole. */
    buf_init(&b);
    smproto_put(&b, SMPROTO_STANZA, 43, "<presence/>", 11);
    put(fd, buf_data(&b), 5);
    spin();
    assert_int_equal(nframes, 1);
    put(fd, buf_data(&b) + 5, buf_len(&b) - 5);
    spin();
    assert_int_equal(nframes, 2);
    assert_int_equal(last_frame.sid, 43);
    buf_free(&b);
    /* A bad frame (unknown type) closes the link. */
    uint8_t bad[16] = {0, 0, 0, 0, 99};
    put(fd, bad, sizeof(bad));
    spin();
    get(fd, out, sizeof(out), &eof);
    assert_true(eof);
    assert_int_equal(downs, 1);
    close(fd);
}

static void test_component(void **state)
{
    int fd = peer();
    char out[4096];
    bool eof;
    opening(fd, "muc.example.org", "m", out, sizeof(out), &eof);
    assert_string_equal(out, "<handshake/>");
    puts_(fd, "<message to='a@example.org' from='r@muc.example.org'/>");
    spin();
    assert_int_equal(ups, 1);
    assert_int_equal(components, 1);
    assert_int_equal(nstanzas, 1);
    get(fd, out, sizeof(out), &eof);
    assert_string_equal(out, "<message/>");
    puts_(fd, "</stream:stream>");
    spin();
    get(fd, out, sizeof(out), &eof);
    assert_true(eof);
    assert_int_equal(downs, 1);
    close(fd);
}

static void test_replace(void **state)
{
    int a = peer(), b = peer();
    char out[4096];
    bool eof;
    opening(a, "front", "s3cret", out, sizeof(out), &eof);
    puts_(a, "<smproto xmlns='urn:jabshard:smproto' version='1'/>");
    spin();
    assert_int_equal(ups, 1);
    opening(b, "front", "s3cret", out, sizeof(out), &eof);
    assert_string_equal(out, "<handshake/>");
    assert_int_equal(downs, 1);   /* the old link went when the new one proved itself */
    get(a, out, sizeof(out), &eof);
    assert_true(eof);
    /* An unsupported version is refused. */
    puts_(b, "<smproto xmlns='urn:jabshard:smproto' version='2'/>");
    spin();
    get(b, out, sizeof(out), &eof);
    assert_non_null(strstr(out, "<unsupported-version"));
    assert_true(eof);
    close(a);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_component, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
