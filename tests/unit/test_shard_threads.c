/* tests/unit/test_shard_threads.c — the front's threads together: the real IO threads and SM-link
 * thread (shard/iothread.c, shard/link_front.c) against an SM played by this test over loopback
 * TCP (XEP-0114 handshake, smproto version 2, then frames), with many clients over loopback TCP.
 * Rings of 4 entries force the full-ring paths in both directions on every run.
 *
 * The clients speak before authenticating: each sends a stream header and a burst of XEP-0077
 * <iq/>s, which the front forwards as REGISTER frames without waiting for answers; the fake SM
 * echoes every one as a STANZA frame for the same session, and acknowledges what it read after
 * each read (ACK), as an SM takes custody. Each client must get every answer, in the order it sent
 * the questions, no frame may go stale, and the front must have acknowledged every answer it took
 * and sent nothing again. Built under ThreadSanitizer
 * (make SAN=thread), this is the race check of the rings, the wakeups and the backpressure.
 *
 * Both directions of backpressure are forced, not hoped for: the link thread's batches of frames
 * overflow the 4-entry rings to the IO threads at once; and the SM does not read until an IO
 * thread has stopped reading its clients (the link's queue, shrunk to 2 KiB, and the kernel's
 * buffers fill first), which needs many ring messages: max_bps spreads each client's 330 KiB
 * over many IO-thread iterations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "shard/front_config.h"
#include "shard/iothread.h"
#include "shard/verify_pool.h"
#include "smproto/frame.h"
#include "smproto/handshake.h"
#include "shard/link_front.h"
#include "tests/support/net.h"
#include "tests/support/tmp.h"

#define CLIENTS 48
#define PER_CLIENT 300
#define THREADS 2
#define SECRET "s3cret"
#define SM_WAIT_MS 30000    /* the fake SM's wait for each part of the opening */

/* ---- the fake SM ----------------------------------------------------------------------------- */

typedef struct fake_sm {
    int lfd;
    pthread_t thread;
    int stop_pipe[2];
    iothread **io;         /* set before the clients start */
    /* Results, read after join. */
    bool handshake_ok;
    unsigned long registers, resync_frames, other_frames;
    unsigned long acks_sent;        /* ACK frames to the front */
    uint64_t counted;               /* counted frames from the front */
    uint64_t front_acked;           /* the front's last ACK: answers it took */
    char err[160];
} fake_sm;

static uint64_t pauses_of(iothread **io)
{
    uint64_t n = 0;
    for (unsigned i = 0; io && i < THREADS; i++) {
        iothread_stats st;
        iothread_get_stats(io[i], &st);
        n += st.pauses;
    }
    return n;
}

static bool ios_paused(iothread **io)
{
    return pauses_of(io) > 0;
}

/* The id attribute's value in xml (either quote), copied into out. */
static bool id_of(const char *xml, char *out, size_t outlen)
{
    const char *p = strstr(xml, " id=");
    if (!p)
        return false;
    char q = p[4];
    const char *v = p + 5, *e = strchr(v, q);
    if ((q != '\'' && q != '"') || !e || (size_t)(e - v) >= outlen)
        return false;
    memcpy(out, v, (size_t)(e - v));
    out[e - v] = 0;
    return true;
}

/* Handles the whole frames in `in`. What they count for custody is acknowledged before the
 * answers they caused, so that a front that has read an answer has read every ACK before it. */
static void sm_frames(fake_sm *sm, buf *in, buf *out)
{
    buf answers = BUF_INIT;
    uint64_t counted = sm->counted;
    for (;;) {
        smproto_frame f;
        size_t used;
        smproto_frame_status st = smproto_frame_next((const uint8_t *)buf_data(in), buf_len(in), &f, &used);
        if (st == SMPROTO_FRAME_PARTIAL)
            break;
        if (st == SMPROTO_FRAME_BAD) {
            snprintf(sm->err, sizeof sm->err, "a bad frame from the front");
            buf_consume(in, buf_len(in));
            break;
        }
        const char *host, *iq;
        char id[64], reply[128];
        uint64_t acked;
        sm->counted += smproto_counted(f.type);
        if (f.type == SMPROTO_REGISTER && smproto_get_register(&f, &host, &iq) &&
            id_of(iq, id, sizeof id)) {
            int n = snprintf(reply, sizeof reply, "<iq type='result' id='%s'/>", id);
            smproto_put(&answers, SMPROTO_STANZA, f.sid, reply, (size_t)n);
            sm->registers++;
        } else if (f.type == SMPROTO_RESYNC) {
            sm->resync_frames++;
        } else if (f.type == SMPROTO_ACK && smproto_get_ack(&f, &acked)) {
            if (acked < sm->front_acked || acked > sm->registers)
                snprintf(sm->err, sizeof sm->err, "the front acknowledged %llu after %llu, of %lu "
                         "answers sent", (unsigned long long)acked,
                         (unsigned long long)sm->front_acked, sm->registers);
            sm->front_acked = acked;
        } else {
            sm->other_frames++;
        }
        buf_consume(in, used);
    }
    if (sm->counted != counted) {
        smproto_put_ack(out, sm->counted);
        sm->acks_sent++;
    }
    buf_append(out, buf_data(&answers), buf_len(&answers));
    buf_free(&answers);
}

static void *sm_main(void *arg)
{
    fake_sm *sm = arg;
    int fd = accept4(sm->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        snprintf(sm->err, sizeof sm->err, "accept: %s", strerror(errno));
        return NULL;
    }
    net_set_timeout(fd, 30);
    buf in = BUF_INIT, out = BUF_INIT;
    /* The opening, in XML. */
    char sid[SMPROTO_STREAM_ID_LEN + 1], digest[SMPROTO_DIGEST_LEN + 1], expect[128];
    smproto_handshake_stream_id(sid);
    smproto_handshake_digest(sid, SECRET, digest);
    snprintf(expect, sizeof expect, "<handshake>%s</handshake>", digest);
    if (net_read_until(fd, &in, 0, "to='jadc2s'>", SM_WAIT_MS) < 0 &&
        net_read_until(fd, &in, 0, "to=\"jadc2s\">", SM_WAIT_MS) < 0)
        goto out;
    buf_appendf(&out, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                "xmlns:stream='http://etherx.jabber.org/streams' from='jadc2s' id='%s'>", sid);
    if (!net_write_all(fd, buf_data(&out), buf_len(&out)) ||
        net_read_until(fd, &in, 0, expect, SM_WAIT_MS) < 0)
        goto out;
    buf_consume(&out, buf_len(&out));
    buf_append(&out, "<handshake/>", 12);
    /* A fresh front: its instance, nothing acknowledged yet; nothing received from it either. */
    const char *ask = "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' instance='";
    if (!net_write_all(fd, buf_data(&out), buf_len(&out)) ||
        net_read_until(fd, &in, 0, ask, SM_WAIT_MS) < 0 ||
        net_read_until(fd, &in, 0, "' acked='0'/>", SM_WAIT_MS) < 0)
        goto out;
    buf_consume(&out, buf_len(&out));
    const char *tag = "<smproto xmlns='urn:jabshard:smproto' version='" SMPROTO_VERSION_STRING "' received='0'/>";
    buf_append(&out, tag, strlen(tag));
    if (!net_write_all(fd, buf_data(&out), buf_len(&out)))
        goto out;
    buf_consume(&out, buf_len(&out));
    const char *end = memmem(buf_data(&in), buf_len(&in), "' acked='0'/>", 13);
    buf_consume(&in, (size_t)(end - (const char *)buf_data(&in)) + 13);
    sm->handshake_ok = true;

    /* Frames: non-blocking, echoing what comes, until told to stop. Reading starts only once an
     * IO thread has stopped reading its clients (or after 20 s, which the test then reports as
     * a failure): the link's small queue fills first, then the rings. */
    net_set_timeout(fd, 0);
    for (int waited = 0; waited < 2000 && !ios_paused(sm->io); waited++)
        usleep(10000);
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN | (buf_len(&out) ? POLLOUT : 0)},
                              {.fd = sm->stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, 30000) <= 0)
            break;
        if (p[1].revents) {
            /* The front has stopped: what it wrote last (its final ACK) is read to the end. */
            net_set_timeout(fd, 30);
            for (;;) {
                char *q = buf_reserve(&in, 4096);
                ssize_t r = recv(fd, q, 4096, 0);
                if (r <= 0)
                    break;
                buf_commit(&in, (size_t)r);
            }
            buf_consume(&out, buf_len(&out));
            sm_frames(sm, &in, &out);
            break;
        }
        if (p[0].revents & POLLOUT) {
            ssize_t r = send(fd, buf_data(&out), buf_len(&out), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (r > 0)
                buf_consume(&out, (size_t)r);
            else if (r < 0 && errno != EAGAIN && errno != EINTR)
                break;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char *q = buf_reserve(&in, 1024);
            ssize_t r = recv(fd, q, 1024, MSG_DONTWAIT);
            if (r == 0)
                break;
            if (r > 0) {
                buf_commit(&in, (size_t)r);
                sm_frames(sm, &in, &out);
            } else if (errno != EAGAIN && errno != EINTR) {
                break;
            }
        }
    }
out:
    close(fd);
    buf_free(&in);
    buf_free(&out);
    return NULL;
}

/* ---- clients --------------------------------------------------------------------------------- */

typedef struct client {
    unsigned idx;
    int port;
    pthread_t thread;
    unsigned got;          /* answers received, in order */
    char err[160];
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    int fd = net_connect(c->port);
    if (fd < 0) {
        snprintf(c->err, sizeof c->err, "connect: %s", strerror(errno));
        return NULL;
    }
    net_set_timeout(fd, 60);
    buf out = BUF_INIT, in = BUF_INIT;
    buf_appendf(&out, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
    /* 1 KiB of padding per stanza: more than the kernel buffers between the front and the SM
     * while the SM does not read, so the front's own queues must fill. */
    char pad[1025];
    memset(pad, 'x', 1024);
    pad[1024] = 0;
    for (unsigned n = 0; n < PER_CLIENT; n++)
        buf_appendf(&out, "<iq type='get' id='t%u_%u_'><query xmlns='jabber:iq:register'>"
                    "<username>%s</username></query></iq>", c->idx, n, pad);
    /* Sent in pieces, so stanzas cross read boundaries. */
    size_t off = 0, len = buf_len(&out);
    while (off < len) {
        size_t n = len - off < 4000 + c->idx * 37 ? len - off : 4000 + c->idx * 37;
        if (!net_write_all(fd, (const char *)buf_data(&out) + off, n)) {
            snprintf(c->err, sizeof c->err, "write: %s", strerror(errno));
            goto out;
        }
        off += n;
    }
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "t%u_", c->idx);
    size_t scan = 0;
    while (c->got < PER_CLIENT) {
        const char *base = buf_data(&in);
        const char *hit = buf_len(&in) > scan ? memmem(base + scan, buf_len(&in) - scan, prefix,
                                                       (size_t)plen) : NULL;
        const char *num = hit ? hit + plen : NULL;
        const char *stop = num ? memchr(num, '_', buf_len(&in) - (size_t)(num - base)) : NULL;
        if (!stop) {
            char *p = buf_reserve(&in, 16384);
            ssize_t r = recv(fd, p, 16384, 0);
            if (r <= 0) {
                snprintf(c->err, sizeof c->err, "read after %u answers: %s", c->got,
                         r == 0 ? "EOF" : strerror(errno));
                goto out;
            }
            buf_commit(&in, (size_t)r);
            continue;
        }
        unsigned n = (unsigned)strtoul(num, NULL, 10);
        if (n != c->got) {
            snprintf(c->err, sizeof c->err, "answer %u arrived when %u was due", n, c->got);
            goto out;
        }
        c->got++;
        scan = (size_t)(stop - base) + 1;
    }
    net_write_all(fd, "</stream:stream>", 16);
out:
    close(fd);
    buf_free(&out);
    buf_free(&in);
    return NULL;
}

/* ---- the test -------------------------------------------------------------------------------- */

static void test_echo_through_tiny_rings(void **state)
{
    fake_sm sm = {0};
    int sm_port, c2s_port = net_must_free_port(), tls_port = net_must_free_port();
    sm.lfd = net_must_listen(&sm_port);
    /* A slow SM: a small socket buffer (the accepted socket inherits it) and small reads, so the
     * link thread's queue fills and the IO threads must stop reading their clients. */
    int small = 4096;
    setsockopt(sm.lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    assert_int_equal(pipe(sm.stop_pipe), 0);

    char *dir = tmp_dir("shard_threads");
    assert_non_null(dir);
    char *path = tmp_write(dir, "jadc2s.xml",
                           "<jadc2s><sm><host>127.0.0.1</host><port>%d</port><secret>%s</secret>"
                           "<id>jadc2s</id></sm><local><id>localhost</id><ip>127.0.0.1</ip>"
                           "<port>%d</port><ssl><port>%d</port></ssl></local>"
                           "<max_fds>%d</max_fds><threads>%d</threads>"
                           "<limits><max_bps>131072</max_bps><conn_rate>0</conn_rate>"
                           "<output_queue>1073741824</output_queue></limits>"
                           "<log><level>warn</level></log></jadc2s>",
                           sm_port, SECRET, c2s_port, tls_port, 2 * CLIENTS + 64, THREADS);
    assert_non_null(path);
    front_config cfg;
    config_error cerr;
    assert_int_equal(front_config_load(path, &cfg, &cerr), 0);
    free(path);
    tmp_dir_remove(dir);
    cfg.ring_size = 4;
    cfg.link_queue_bytes = 2048;
    log_set_level(LL_WARN);

    link_front *link = link_front_new(&cfg, THREADS);
    verify_pool *verify = verify_pool_new(1, iothread_verify_done);
    iothread_shared shared = {.cfg = &cfg, .tls = NULL, .link = link, .verify = verify};
    iothread *io[THREADS];
    sm.io = io;
    uint32_t slots = front_shard_slots(cfg.max_fds, THREADS);
    for (unsigned i = 0; i < THREADS; i++) {
        char err[256];
        io[i] = iothread_new(&shared, i, slots, err, sizeof err);
        assert_non_null(io[i]);
        link_front_attach(link, i, iothread_loop(io[i]));
    }
    assert_int_equal(pthread_create(&sm.thread, NULL, sm_main, &sm), 0);
    assert_int_equal(link_front_start(link), 0);
    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(iothread_start(io[i]), 0);
    /* The link is up once the SM has seen the empty RESYNC that ends the first resync: until
     * then a REGISTER would be held, which is also fine, but the test wants the live path. */
    for (int i = 0; i < 3000 && !link_front_up(link); i++)
        usleep(1000);
    assert_true(link_front_up(link));

    client *clients = calloc(CLIENTS, sizeof *clients);
    for (unsigned i = 0; i < CLIENTS; i++) {
        clients[i].idx = i;
        clients[i].port = c2s_port;
        assert_int_equal(pthread_create(&clients[i].thread, NULL, client_main, &clients[i]), 0);
    }
    unsigned long total = 0;
    for (unsigned i = 0; i < CLIENTS; i++) {
        pthread_join(clients[i].thread, NULL);
        if (clients[i].err[0])
            fprintf(stderr, "client %u: %s\n", i, clients[i].err);
        assert_string_equal(clients[i].err, "");
        assert_int_equal(clients[i].got, PER_CLIENT);
        total += clients[i].got;
    }
    free(clients);

    for (unsigned i = 0; i < THREADS; i++)
        iothread_shutdown(io[i]);
    for (unsigned i = 0; i < THREADS; i++)
        iothread_join(io[i]);
    link_front_stop(link);
    assert_int_equal(write(sm.stop_pipe[1], "x", 1), 1);
    pthread_join(sm.thread, NULL);

    link_front_stats ls;
    link_front_get_stats(link, &ls);
    uint64_t pauses = pauses_of(io), stale = 0, accepted = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        iothread_stats st;
        iothread_get_stats(io[i], &st);
        stale += st.stale_frames;
        accepted += st.accepted;
    }
    fprintf(stderr, "answers %lu; link: frames in %llu, out messages %llu, from-link ring full %llu;"
            " IO threads: reads paused %llu times\n", total, (unsigned long long)ls.frames_in,
            (unsigned long long)ls.frames_out, (unsigned long long)ls.ring_full,
            (unsigned long long)pauses);
    assert_true(sm.handshake_ok);
    assert_string_equal(sm.err, "");
    assert_int_equal(sm.registers, (unsigned long)CLIENTS * PER_CLIENT);
    assert_int_equal(sm.other_frames, 0);
    assert_int_equal(sm.resync_frames, 1);
    /* Every answer the front took, it acknowledged; every frame it sent was received once. */
    assert_int_equal(sm.front_acked, sm.registers);
    assert_int_equal(sm.counted, (uint64_t)CLIENTS * PER_CLIENT);
    assert_int_equal(ls.resent, 0);
    /* The answers and the SM's ACKs, each of which came before an answer. */
    assert_int_equal(ls.frames_in, (uint64_t)CLIENTS * PER_CLIENT + sm.acks_sent);
    assert_int_equal(ls.connects, 1);
    assert_int_equal(accepted, CLIENTS);
    assert_int_equal(stale, 0);
    /* With 4-entry rings, the link thread's batches of frames overflow the ring to the IO
     * threads on every run (each frame is one entry). */
    assert_true(ls.ring_full > 0);
    /* ... and the slow SM fills the link's queue, so the IO threads pause reading. */
    assert_true(pauses > 0);

    verify_pool_free(verify);
    for (unsigned i = 0; i < THREADS; i++)
        iothread_free(io[i]);
    link_front_free(link);
    front_config_free(&cfg);
    close(sm.lfd);
    close(sm.stop_pipe[0]);
    close(sm.stop_pipe[1]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_through_tiny_rings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
