/* tests/unit/test_outq.c — core/outq: block reference counting (a shared block is released
 * exactly once, also when queued and written on several threads at once), coalescing of small
 * copies, writev batching up to IOV_MAX, one-entry-per-call writers (TLS), partial writes / EINTR /
 * EAGAIN from a scripted writer, real partial writes over a socketpair with a small SO_SNDBUF and
 * over TCP loopback, errors (EPIPE without SIGPIPE), and the byte count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/outq.h"
#include "tests/support/xorshift.h"

static xorshift rng_gen = {0x2545f4914f6cdd1dull};
static uint64_t rng(void) { return xorshift_next(&rng_gen); }

/* Releases of wrapped memory, counted per test. */
static atomic_int released;
static void count_release(void *ctx, const void *data)
{
    /* May run on another thread, where a cmocka assertion cannot fail cleanly: a wrong pointer
     * shows up as a wrong count instead. */
    atomic_fetch_add(&released, ctx == data ? 1 : 1000);
}

/* A scripted writer: copies what it accepts into out, records iovec counts, and can be told to
 * accept at most `limit` bytes per call, and to fail with EINTR / EAGAIN every so often. */
typedef struct {
    unsigned char *out;
    size_t len, cap;
    int calls, max_iovcnt, iovcnts[64];
    size_t limit;          /* 0: everything offered */
    int eintr_every, eagain_every;
    int fail_errno;        /* nonzero: always fail with this */
    int return_zero;
} script;

static ssize_t script_write(void *ctx, const struct iovec *iov, int iovcnt)
{
    script *s = ctx;
    s->calls++;
    assert_true(iovcnt >= 1);
    if (iovcnt > s->max_iovcnt)
        s->max_iovcnt = iovcnt;
    if (s->calls <= 64)
        s->iovcnts[s->calls - 1] = iovcnt;
    if (s->fail_errno) {
        errno = s->fail_errno;
        return -1;
    }
    if (s->return_zero)
        return 0;
    if (s->eintr_every && s->calls % s->eintr_every == 0) {
        errno = EINTR;
        return -1;
    }
    if (s->eagain_every && s->calls % s->eagain_every == 0) {
        errno = EAGAIN;
        return -1;
    }
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++) {
        assert_true(iov[i].iov_len > 0);
        want += iov[i].iov_len;
    }
    if (s->limit && want > s->limit)
        want = 1 + (size_t)(rng() % s->limit);
    size_t done = 0;
    for (int i = 0; i < iovcnt && done < want; i++) {
        size_t n = iov[i].iov_len < want - done ? iov[i].iov_len : want - done;
        if (s->len + n > s->cap) {
            s->cap = (s->len + n) * 2;
            s->out = realloc(s->out, s->cap);
            assert_non_null(s->out);
        }
        memcpy(s->out + s->len, iov[i].iov_base, n);
        s->len += n;
        done += n;
    }
    return (ssize_t)done;
}

static void test_block_basics(void **state)
{
    outq_block *b = outq_block_copy("stanza", 6);
    assert_int_equal(outq_block_len(b), 6);
    assert_memory_equal(outq_block_data(b), "stanza", 6);
    assert_ptr_equal(outq_block_ref(b), b);
    outq_block_unref(b);
    outq_block_unref(b);
    outq_block_unref(NULL);

    outq_block *n = outq_block_new(4);
    memcpy(outq_block_data(n), "abcd", 4);
    assert_int_equal(outq_block_len(n), 4);
    outq_block_unref(n);

    static const char ext[] = "external";
    atomic_store(&released, 0);
    outq_block *w = outq_block_wrap(ext, 8, count_release, (void *)ext);
    assert_ptr_equal(outq_block_data(w), ext);
    outq_block_ref(w);
    outq_block_unref(w);
    assert_int_equal(atomic_load(&released), 0);
    outq_block_unref(w);
    assert_int_equal(atomic_load(&released), 1);
}

static void test_bytes_coalesce(void **state)
{
    outq q = OUTQ_INIT;
    assert_true(outq_empty(&q));
    char expect[1000];
    for (int i = 0; i < 100; i++) {
        char piece[10];
        memset(piece, 'a' + i % 26, sizeof piece);
        memcpy(expect + i * 10, piece, 10);
        outq_push_bytes(&q, piece, sizeof piece);
    }
    outq_push_bytes(&q, "x", 0);
    assert_int_equal(outq_bytes(&q), 1000);
    assert_int_equal(q.count, 1);
    script s = { 0 };
    assert_int_equal(outq_flush(&q, script_write, &s, IOV_MAX), OUTQ_EMPTY);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.iovcnts[0], 1);
    assert_int_equal(s.len, 1000);
    assert_memory_equal(s.out, expect, 1000);
    assert_int_equal(outq_bytes(&q), 0);
    assert_true(outq_empty(&q));
    assert_null(q.ring);   /* an idle queue holds no memory */
    assert_null(q.tail);
    free(s.out);
}

static void test_blocks_between_copies(void **state)
{
    outq q = OUTQ_INIT;
    outq_block *b = outq_block_copy("<message/>", 10);
    outq_push_bytes(&q, "<a>", 3);
    outq_push_block(&q, b, 0, 10);
    outq_push_bytes(&q, "<b>", 3);     /* cannot join the first copy: the block is in between */
    outq_push_bytes(&q, "<c>", 3);     /* joins "<b>" */
    outq_push_block(&q, b, 1, 7);      /* a slice */
    outq_push_block(&q, b, 10, 0);     /* empty: ignored */
    outq_block_unref(b);
    assert_int_equal(q.count, 4);
    assert_int_equal(outq_bytes(&q), 3 + 10 + 6 + 7);
    /* A copy larger than a tail block gets an entry of its own. */
    char big[10000];
    memset(big, 'B', sizeof big);
    outq_push_bytes(&q, big, sizeof big);
    assert_int_equal(q.count, 5);
    script s = { 0 };
    assert_int_equal(outq_flush(&q, script_write, &s, IOV_MAX), OUTQ_EMPTY);
    assert_int_equal(s.iovcnts[0], 5);
    const char *want = "<a><message/><b><c>message";
    assert_int_equal(s.len, strlen(want) + sizeof big);
    assert_memory_equal(s.out, want, strlen(want));
    assert_memory_equal(s.out + strlen(want), big, sizeof big);
    free(s.out);
}

static void test_iov_max_batching(void **state)
{
    enum { N = 3000 };
    outq q = OUTQ_INIT;
    outq_block *b = outq_block_new(N);
    for (int i = 0; i < N; i++)
        outq_block_data(b)[i] = (char)(i * 7);
    for (int i = 0; i < N; i++)
        outq_push_block(&q, b, (size_t)i, 1);
    assert_int_equal(q.count, N);
    script s = { 0 };
    assert_int_equal(outq_flush(&q, script_write, &s, INT_MAX), OUTQ_EMPTY);
    assert_int_equal(s.calls, 3);
    assert_int_equal(s.iovcnts[0], IOV_MAX);
    assert_int_equal(s.iovcnts[1], IOV_MAX);
    assert_int_equal(s.iovcnts[2], N - 2 * IOV_MAX);
    assert_int_equal(s.max_iovcnt, IOV_MAX);
    assert_int_equal(s.len, N);
    assert_memory_equal(s.out, outq_block_data(b), N);
    outq_block_unref(b);
    free(s.out);
}

/* A TLS-style writer asks for one entry per call. */
static void test_one_entry_per_call(void **state)
{
    outq q = OUTQ_INIT;
    outq_block *b = outq_block_copy("0123456789", 10);
    for (int i = 0; i < 10; i++)
        outq_push_block(&q, b, (size_t)i, 1);
    outq_block_unref(b);
    script s = { 0 };
    assert_int_equal(outq_flush(&q, script_write, &s, 1), OUTQ_EMPTY);
    assert_int_equal(s.calls, 10);
    assert_int_equal(s.max_iovcnt, 1);
    assert_memory_equal(s.out, "0123456789", 10);
    free(s.out);
}

/* Builds a random queue: copies, whole blocks, slices, with the expected byte stream alongside. */
static void fill_random(outq *q, buf *expect, size_t target)
{
    outq_block *shared = outq_block_new(20000);
    for (size_t i = 0; i < 20000; i++)
        outq_block_data(shared)[i] = (char)rng();
    while (buf_len(expect) < target) {
        unsigned r = (unsigned)(rng() % 3);
        if (r == 0) {
            char tmp[6000];
            size_t n = (size_t)(rng() % (rng() % 8 ? 200 : sizeof tmp));
            for (size_t i = 0; i < n; i++)
                tmp[i] = (char)rng();
            outq_push_bytes(q, tmp, n);
            buf_append(expect, tmp, n);
        } else {
            size_t off = (size_t)(rng() % 20000);
            size_t len = (size_t)(rng() % (20000 - off + 1));
            if (r == 1 && rng() % 4 == 0) {
                off = 0;
                len = 20000;
            }
            outq_push_block(q, shared, off, len);
            buf_append(expect, outq_block_data(shared) + off, len);
        }
        assert_int_equal(outq_bytes(q), buf_len(expect));
    }
    outq_block_unref(shared);
}

static void test_scripted_partial_writes(void **state)
{
    outq q = OUTQ_INIT;
    buf expect = BUF_INIT;
    fill_random(&q, &expect, 2000000);
    script s = { .limit = 3000, .eintr_every = 7, .eagain_every = 5 };
    int blocked = 0;
    outq_status st;
    while ((st = outq_flush(&q, script_write, &s, 16)) == OUTQ_BLOCKED) {
        blocked++;
        assert_int_equal(outq_bytes(&q), buf_len(&expect) - s.len);
    }
    assert_int_equal(st, OUTQ_EMPTY);
    assert_true(blocked > 0);
    assert_int_equal(s.max_iovcnt, 16);
    assert_int_equal(s.len, buf_len(&expect));
    assert_memory_equal(s.out, buf_data(&expect), s.len);
    assert_null(q.ring);
    free(s.out);
    buf_free(&expect);
}

static void test_writer_errors(void **state)
{
    outq q = OUTQ_INIT;
    outq_push_bytes(&q, "data", 4);
    script s = { .fail_errno = EPIPE };
    errno = 0;
    assert_int_equal(outq_flush(&q, script_write, &s, IOV_MAX), OUTQ_ERROR);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(outq_bytes(&q), 4);
    script z = { .return_zero = 1 };
    assert_int_equal(outq_flush(&q, script_write, &z, IOV_MAX), OUTQ_ERROR);
    assert_int_equal(errno, EIO);
    script ok = { 0 };
    assert_int_equal(outq_flush(&q, script_write, &ok, IOV_MAX), OUTQ_EMPTY);
    assert_memory_equal(ok.out, "data", 4);
    free(ok.out);
    /* Flushing an empty queue writes nothing. */
    script none = { 0 };
    assert_int_equal(outq_flush(&q, script_write, &none, IOV_MAX), OUTQ_EMPTY);
    assert_int_equal(none.calls, 0);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* Reads what is available (in random-sized reads) and appends it to got. */
static void drain(int fd, buf *got)
{
    for (;;) {
        size_t n = 1 + (size_t)(rng() % 5000);
        ssize_t r = read(fd, buf_reserve(got, n), n);
        if (r < 0 && errno == EAGAIN)
            return;
        assert_true(r > 0);
        buf_commit(got, (size_t)r);
    }
}

static void wait_readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&p, 1, -1), 1);
}

/* Flushes q into fd until empty, draining peer whenever the writer blocks; then closes fd's
 * sending side and reads peer to the end (TCP may still hold bytes in flight). Returns how many
 * times the writer blocked. */
static int pump(outq *q, int fd, int peer, buf *got)
{
    int blocked = 0;
    outq_status st;
    while ((st = outq_flush_socket(q, fd)) == OUTQ_BLOCKED) {
        blocked++;
        wait_readable(peer);
        drain(peer, got);
    }
    assert_int_equal(st, OUTQ_EMPTY);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    for (;;) {
        wait_readable(peer);
        ssize_t r = read(peer, buf_reserve(got, 65536), 65536);
        if (r == 0)
            break;
        if (r < 0 && errno == EAGAIN)
            continue;
        assert_true(r > 0);
        buf_commit(got, (size_t)r);
    }
    return blocked;
}

static void check_stream(int fd, int peer)
{
    outq q = OUTQ_INIT;
    buf expect = BUF_INIT, got = BUF_INIT;
    fill_random(&q, &expect, 3000000);
    int blocked = pump(&q, fd, peer, &got);
    assert_true(blocked > 0);   /* 3 MB cannot fit in the socket buffers: partial writes happened */
    assert_int_equal(outq_bytes(&q), 0);
    assert_int_equal(buf_len(&got), buf_len(&expect));
    assert_memory_equal(buf_data(&got), buf_data(&expect), buf_len(&expect));
    buf_free(&expect);
    buf_free(&got);
}

static void test_socketpair_small_sndbuf(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 4096;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    set_nonblock(sv[0]);
    set_nonblock(sv[1]);
    check_stream(sv[0], sv[1]);
    close(sv[0]);
    close(sv[1]);
}

static void test_tcp_loopback(void **state)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    assert_int_equal(listen(ls, 1), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    int small = 65536;
    assert_int_equal(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int s = accept(ls, NULL, NULL);
    assert_true(s >= 0);
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    set_nonblock(c);
    set_nonblock(s);
    check_stream(c, s);
    close(c);
    close(s);
    close(ls);
}

static void test_peer_gone_is_error_not_sigpipe(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    outq q = OUTQ_INIT;
    outq_push_bytes(&q, "hello", 5);
    errno = 0;
    assert_int_equal(outq_flush_socket(&q, sv[0]), OUTQ_ERROR);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(outq_bytes(&q), 5);
    outq_free(&q);
    assert_true(outq_empty(&q));
    assert_int_equal(outq_bytes(&q), 0);
    close(sv[0]);
}

static void test_shared_block_released_once(void **state)
{
    static const char ext[] = "<presence from='a@b/c'/>";
    atomic_store(&released, 0);
    outq_block *b = outq_block_wrap(ext, sizeof ext - 1, count_release, (void *)ext);
    outq q1 = OUTQ_INIT, q2 = OUTQ_INIT;
    outq_push_block(&q1, b, 0, sizeof ext - 1);
    outq_push_block(&q2, b, 0, sizeof ext - 1);
    outq_push_block(&q2, b, 0, 9);   /* the same block twice on one queue */
    outq_block_unref(b);            /* the queues hold it now */
    assert_int_equal(atomic_load(&released), 0);

    /* q1 written fully (partially first) over a real socket. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    set_nonblock(sv[0]);
    set_nonblock(sv[1]);
    buf got = BUF_INIT;
    pump(&q1, sv[0], sv[1], &got);
    assert_int_equal(buf_len(&got), sizeof ext - 1);
    assert_memory_equal(buf_data(&got), ext, sizeof ext - 1);
    assert_int_equal(atomic_load(&released), 0);

    /* q2: one entry written, then the connection is dropped with the other still queued. */
    script s = { .eagain_every = 2 };
    assert_int_equal(outq_flush(&q2, script_write, &s, 1), OUTQ_BLOCKED);
    assert_int_equal(q2.count, 1);
    assert_int_equal(outq_bytes(&q2), 9);
    assert_int_equal(atomic_load(&released), 0);
    outq_free(&q2);
    assert_int_equal(atomic_load(&released), 1);
    outq_free(&q1);
    assert_int_equal(atomic_load(&released), 1);
    free(s.out);
    buf_free(&got);
    close(sv[0]);
    close(sv[1]);
}

/* One block queued on four queues, each written by its own thread over its own socketpair: every
 * reader gets every byte, and the block is released exactly once, by whichever thread is last. */
#define THREADS 4
typedef struct {
    outq q;
    int sv[2];
    size_t expect_len;
    const char *expect;
    int ok;
} flusher;

static void *flush_thread(void *arg)
{
    flusher *f = arg;
    buf got = BUF_INIT;
    outq_status st;
    while ((st = outq_flush_socket(&f->q, f->sv[0])) == OUTQ_BLOCKED) {
        for (;;) {
            ssize_t r = read(f->sv[1], buf_reserve(&got, 65536), 65536);
            if (r <= 0)
                break;
            buf_commit(&got, (size_t)r);
        }
    }
    for (;;) {
        ssize_t r = read(f->sv[1], buf_reserve(&got, 65536), 65536);
        if (r <= 0)
            break;
        buf_commit(&got, (size_t)r);
    }
    f->ok = st == OUTQ_EMPTY && buf_len(&got) == f->expect_len &&
            memcmp(buf_data(&got), f->expect, f->expect_len) == 0;
    buf_free(&got);
    outq_free(&f->q);
    return NULL;
}

static void test_shared_block_across_threads(void **state)
{
    enum { LEN = 1 << 20, ROUNDS = 20 };
    char *mem = malloc(LEN);
    assert_non_null(mem);
    for (size_t i = 0; i < LEN; i++)
        mem[i] = (char)rng();
    for (int round = 0; round < ROUNDS; round++) {
        atomic_store(&released, 0);
        outq_block *b = outq_block_wrap(mem, LEN, count_release, mem);
        flusher f[THREADS];
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++) {
            outq_init(&f[i].q);
            assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f[i].sv), 0);
            set_nonblock(f[i].sv[0]);
            set_nonblock(f[i].sv[1]);
            /* Thread i writes the block in 1 + i slices. */
            size_t step = LEN / (size_t)(1 + i);
            for (size_t off = 0; off < LEN; off += step)
                outq_push_block(&f[i].q, b, off, off + step <= LEN ? step : LEN - off);
            f[i].expect = mem;
            f[i].expect_len = LEN;
            f[i].ok = 0;
        }
        outq_block_unref(b);
        for (int i = 0; i < THREADS; i++)
            assert_int_equal(pthread_create(&th[i], NULL, flush_thread, &f[i]), 0);
        for (int i = 0; i < THREADS; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_true(f[i].ok);
            close(f[i].sv[0]);
            close(f[i].sv[1]);
        }
        assert_int_equal(atomic_load(&released), 1);
    }
    free(mem);
}

/* Truncation keeps exactly the first keep unwritten bytes, at or inside entry boundaries, after
 * a partial write, releases what it drops, and leaves a queue that coalesces and writes again. */
static void test_truncate(void **state)
{
    static const char ext[] = "<message>one</message>";
    for (size_t keep = 0; keep <= 40; keep++) {
        atomic_store(&released, 0);
        outq q = OUTQ_INIT;
        outq_push_bytes(&q, "HEAD", 4);
        outq_block *w = outq_block_wrap(ext, 22, count_release, (void *)ext);
        outq_push_block(&q, w, 0, 22);
        outq_block_unref(w);
        outq_push_bytes(&q, "TAIL", 4);
        outq_push_bytes(&q, "MORE", 4);   /* coalesced with TAIL */
        char all[34];
        memcpy(all, "HEAD", 4);
        memcpy(all + 4, ext, 22);
        memcpy(all + 26, "TAILMORE", 8);
        script s = { .limit = 0 };
        outq_truncate(&q, SIZE_MAX);
        assert_int_equal(outq_bytes(&q), 34);
        outq_truncate(&q, keep);
        size_t want = keep < 34 ? keep : 34;
        assert_int_equal(outq_bytes(&q), want);
        assert_int_equal(atomic_load(&released), keep <= 4 ? 1 : 0);
        if (keep == 0) {
            assert_true(outq_empty(&q));
            assert_null(q.ring);   /* an emptied queue holds no memory */
            assert_null(q.tail);
        }
        outq_push_bytes(&q, "!", 1);
        assert_int_equal(outq_flush(&q, script_write, &s, IOV_MAX), OUTQ_EMPTY);
        assert_int_equal(s.len, want + 1);
        assert_memory_equal(s.out, all, want);
        assert_int_equal(s.out[want], '!');
        assert_true(outq_empty(&q));
        assert_null(q.ring);
        assert_int_equal(atomic_load(&released), 1);
        free(s.out);
    }

    /* After a partial write the head entry's written part does not count. */
    outq q = OUTQ_INIT;
    outq_block *b = outq_block_copy("abcdefgh", 8);
    outq_push_block(&q, b, 0, 8);
    outq_push_block(&q, b, 0, 8);
    outq_block_unref(b);
    script s = { .limit = 3, .eagain_every = 2 };   /* one write of 1..3 bytes per flush */
    rng_gen.state = 1;
    while (outq_bytes(&q) > 12)
        assert_int_not_equal(outq_flush(&q, script_write, &s, 1), OUTQ_ERROR);
    size_t left = outq_bytes(&q), done = s.len;
    outq_truncate(&q, left - 8);   /* the second copy goes whole */
    assert_int_equal(outq_bytes(&q), left - 8);
    s.limit = 0;
    s.eagain_every = 0;
    assert_int_equal(outq_flush(&q, script_write, &s, IOV_MAX), OUTQ_EMPTY);
    assert_int_equal(s.len, 8);
    assert_memory_equal(s.out, "abcdefgh", 8);
    assert_true(done + (left - 8) == 8);
    free(s.out);
    outq_truncate(&q, 0);   /* empty: nothing to do */
    assert_true(outq_empty(&q));
}

static void test_block_from_buf(void **state)
{
    buf b = BUF_INIT;
    buf_appendf(&b, "junk<iq type='%s' id='%d'/>", "result", 7);
    buf_consume(&b, 4);
    char *mem_before = b.mem;
    outq_block *blk = outq_block_from_buf(&b);
    assert_null(b.mem);
    assert_ptr_equal(outq_block_data(blk), mem_before + 4);   /* no copy */
    const char *want = "<iq type='result' id='7'/>";
    assert_int_equal(outq_block_len(blk), strlen(want));
    assert_memory_equal(outq_block_data(blk), want, strlen(want));
    outq q = OUTQ_INIT;
    outq_push_block(&q, blk, 0, outq_block_len(blk));
    outq_block_unref(blk);
    script s = { 0 };
    assert_int_equal(outq_flush(&q, script_write, &s, IOV_MAX), OUTQ_EMPTY);
    assert_memory_equal(s.out, want, strlen(want));
    free(s.out);
    /* An empty buf still gives a (empty) block. */
    buf e = BUF_INIT;
    outq_block *eb = outq_block_from_buf(&e);
    assert_int_equal(outq_block_len(eb), 0);
    outq_block_unref(eb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_basics),
        cmocka_unit_test(test_bytes_coalesce),
        cmocka_unit_test(test_blocks_between_copies),
        cmocka_unit_test(test_iov_max_batching),
        cmocka_unit_test(test_one_entry_per_call),
        cmocka_unit_test(test_scripted_partial_writes),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_socketpair_small_sndbuf),
        cmocka_unit_test(test_tcp_loopback),
        cmocka_unit_test(test_peer_gone_is_error_not_sigpipe),
        cmocka_unit_test(test_shared_block_released_once),
        cmocka_unit_test(test_shared_block_across_threads),
        cmocka_unit_test(test_block_from_buf),
        cmocka_unit_test(test_truncate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
