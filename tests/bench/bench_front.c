/* tests/bench/bench_front.c — one front (jabshard-c2s, from the directory in argv[1],
 * $JABSHARD_BIN or ../bin) between many clients and a sink SM:
 *   - stanzas per second through the front into the sink, with 1 and with 2 IO threads (the front
 *     is restarted for each): BLAST_CLIENTS clients log in, then each sends batches of BATCH chat
 *     messages and a ping, with BATCHES_IN_FLIGHT batches unanswered at most (the sink answers
 *     the pings), as fast as that allows, with no rate limit (limits/max_bps 0); the sink counts
 *     STANZA frames over MEASURE_MS after WARMUP_MS. The window keeps what a client has queued
 *     small: a client that writes without bound is another benchmark (see the report of the run);
 *   - logins per second and idle memory per connection, plain and TLS: the front's VmRSS before
 *     IDLE_CLIENTS clients (BENCH_FRONT_IDLE, BENCH_FRONT_IDLE_TLS) connect, SETTLE_MS after they
 *     have all logged in and bound, and again after IDLE_WAIT_MS of silence.
 *
 * The sink is a thread of this process: it accepts the front's link (XEP-0114 handshake,
 * <smproto version='N'/>, answering received= with the front's acked=: a sink remembers nothing),
 * answers every AUTH_QUERY with the same credentials (derived once), every BIND with BOUND, every
 * iq with PONG and PING with PONG, counts the stanzas, and acknowledges (ACK) every counted frame
 * after each read, as an SM takes custody: a front stops taking from its clients when <sm><hold>
 * bytes (4 MiB) are unacknowledged. The clients run in a child
 * process (this program again, with --clients), so that neither the front nor the clients need
 * more than their share of the 20,000 descriptors a process may have; they use the source
 * addresses 127.0.<phase>.1-200, so that ephemeral ports never run short. Clients log in with
 * SCRAM-SHA-1 and the client key cached, as real clients do (PLAIN is never offered without TLS,
 * and its PBKDF2 on the front would measure hashing, not the front); the plain phases use TCP with
 * <ssl><required>false</required>, the TLS phase the direct-TLS port (XEP-0368) with OpenSSL on
 * the client side and no certificate check.
 *
 * Output: one line per figure. Everything runs on one machine (2 cores, shared by the front, the
 * clients, the sink and whatever else runs): the figures are noisy, which is why the stanza lines
 * also give the rate per CPU-second the front used, and the IO-thread comparison is bounded by the
 * cores there are. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/scram.h"
#include "smproto/frame.h"
#include "smproto/handshake.h"
#include "tests/bench/benchlib.h"
#include "tests/support/net.h"
#include "tests/support/tmp.h"

#define HOST "bench.example"
#define SERVICE "bench"
#define SECRET "bench-secret"
#define PASSWORD "password"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
/* What the sink sends back for every iq: a sending client's flow control. */
#define PONG "<iq type='result' id='bench-pong'/>"

enum {
    BLAST_CLIENTS = 200,
    BATCH = 50,              /* messages per batch; a ping after each, answered by the sink */
    BATCHES_IN_FLIGHT = 2,   /* per client: batches sent and not yet answered */
    WARMUP_MS = 1000,
    MEASURE_MS = 5000,
    IDLE_CLIENTS = 15000,
    SETTLE_MS = 2000,        /* after the logins, before the first reading */
    IDLE_WAIT_MS = 12000,    /* then idle, past the front's parser shrink (10 s), second reading */
    LOGIN_WINDOW = 200,      /* clients logging in at once */
    LOGIN_TIMEOUT_S = 100,
};

static const uint8_t salt[16] = "jabshard-bench!!";

static void fail(const char *what)
{
    fprintf(stderr, "bench_front: %s\n", what);
    exit(1);
}

/* ======== the sink SM (a thread) ============================================================== */

static struct {
    int listen_fd, port;
    smproto_creds creds;
    atomic_long links;       /* links that completed the opening, ever */
    atomic_long stanzas;     /* STANZA frames received, ever */
    atomic_long binds;
} sink;

/* A write that fails means the front went away: the read side notices. */
static void sink_write(int fd, const char *data, size_t len)
{
    (void)net_write_all(fd, data, len);
}

/* The XEP-0114 opening from the SM's side. Returns false when the front did not complete it. */
static bool sink_open(int fd, buf *rx)
{
    long head = bench_read_until(fd, rx, 0, "<stream:stream", 10000);
    long head_end = head < 0 ? -1 : bench_read_until(fd, rx, (size_t)head, ">", 10000);
    if (head_end < 0)
        return false;
    char id[SMPROTO_STREAM_ID_LEN + 1], header[512];
    smproto_handshake_stream_id(id);
    int len = snprintf(header, sizeof(header),
                       "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                       "xmlns:stream='http://etherx.jabber.org/streams' from='" SERVICE "' "
                       "id='%s'>", id);
    sink_write(fd, header, (size_t)len);
    long hs = bench_read_until(fd, rx, (size_t)head_end, "<handshake>", 10000);
    long hs_end = hs < 0 ? -1 : bench_read_until(fd, rx, (size_t)hs, "</handshake>", 10000);
    if (hs_end < 0)
        return false;
    char digest[64];
    snprintf(digest, sizeof(digest), "%.*s", (int)(hs_end - hs - 11), buf_data(rx) + hs + 11);
    if (!smproto_handshake_check(id, SECRET, digest)) {
        fprintf(stderr, "bench_front: the front's handshake digest is wrong\n");
        return false;
    }
    sink_write(fd, "<handshake/>", 12);
    long sp = bench_read_until(fd, rx, (size_t)hs_end, "<smproto", 10000);
    long sp_end = sp < 0 ? -1 : bench_read_until(fd, rx, (size_t)sp, "/>", 10000);
    if (sp_end < 0)
        return false;
    char request[256], answer[128];
    snprintf(request, sizeof(request), "%.*s", (int)(sp_end - sp), buf_data(rx) + sp);
    buf_consume(rx, (size_t)sp_end + 2);
    const char *acked = strstr(request, " acked='");
    char version[32];
    snprintf(version, sizeof version, " version='%d'", SMPROTO_VERSION);
    if (!strstr(request, version) || !acked) {
        fprintf(stderr, "bench_front: the front asked for %s\n", request);
        return false;
    }
    len = snprintf(answer, sizeof(answer), "<smproto xmlns='" SMPROTO_NS "' version='%d' "
                   "received='%llu'/>", SMPROTO_VERSION, strtoull(acked + 8, NULL, 10));
    sink_write(fd, answer, (size_t)len);
    return true;
}

/* Answers one frame into out; counts STANZA frames in *stanzas. */
static void sink_frame(const smproto_frame *f, buf *out, long *stanzas)
{
    const char *host, *user, *resource;
    uint8_t flags;
    uint64_t token;
    char full[3 * 1024 + 3];
    switch (f->type) {
    case SMPROTO_STANZA:
        (*stanzas)++;
        if (f->len > 3 && memcmp(f->payload, "<iq", 3) == 0)
            smproto_put(out, SMPROTO_STANZA, f->sid, PONG, sizeof(PONG) - 1);
        break;
    case SMPROTO_AUTH_QUERY:
        if (smproto_get_auth_query(f, &host, &user))
            smproto_put_auth_answer(out, f->sid, SMPROTO_AUTH_OK, &sink.creds);
        break;
    case SMPROTO_BIND:
        if (!smproto_get_bind(f, &host, &user, &resource, &flags))
            break;
        if (*resource)
            snprintf(full, sizeof(full), "%s@%s/%s", user, host, resource);
        else
            snprintf(full, sizeof(full), "%s@%s/%016llx", user, host, (unsigned long long)f->sid);
        smproto_put_bound(out, f->sid, SMPROTO_BOUND_OK, full);
        atomic_fetch_add(&sink.binds, 1);
        break;
    case SMPROTO_PING:
        if (smproto_get_ping(f, &token))
            smproto_put_ping(out, SMPROTO_PONG, token);
        break;
    default:
        break;
    }
}

/* One link until the front closes it. */
static void sink_serve(int fd)
{
    buf rx = BUF_INIT, out = BUF_INIT;
    if (!sink_open(fd, &rx)) {
        buf_free(&rx);
        return;
    }
    atomic_fetch_add(&sink.links, 1);
    uint64_t counted = 0, acked = 0;
    for (;;) {
        char *room = buf_reserve(&rx, 256 * 1024);
        ssize_t n = read(fd, room, buf_avail(&rx));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        buf_commit(&rx, (size_t)n);
        smproto_frame f;
        size_t used;
        long stanzas = 0;
        smproto_frame_status st;
        while ((st = smproto_frame_next((const uint8_t *)buf_data(&rx), buf_len(&rx), &f, &used)) ==
               SMPROTO_FRAME_OK) {
            sink_frame(&f, &out, &stanzas);
            counted += smproto_counted(f.type);
            buf_consume(&rx, used);
        }
        atomic_fetch_add(&sink.stanzas, stanzas);
        if (counted != acked) {
            smproto_put_ack(&out, counted);
            acked = counted;
        }
        if (buf_len(&out)) {
            sink_write(fd, buf_data(&out), buf_len(&out));
            buf_consume(&out, buf_len(&out));
        }
        if (st == SMPROTO_FRAME_BAD) {
            fprintf(stderr, "bench_front: the front sent a bad frame\n");
            break;
        }
    }
    buf_free(&rx);
    buf_free(&out);
}

static void *sink_main(void *arg)
{
    for (;;) {
        int fd = accept4(sink.listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        sink_serve(fd);
        close(fd);
    }
    return NULL;
}

static void sink_start(void)
{
    scram_derive(SCRAM_SHA1, PASSWORD, salt, sizeof(salt), SCRAM_ITERATIONS, &sink.creds.sha1);
    scram_derive(SCRAM_SHA256, PASSWORD, salt, sizeof(salt), SCRAM_ITERATIONS, &sink.creds.sha256);
    if ((sink.listen_fd = net_listen(&sink.port)) < 0)
        fail("the sink cannot listen");
    pthread_t t;
    if (pthread_create(&t, NULL, sink_main, NULL) != 0)
        fail("cannot start the sink thread");
    pthread_detach(t);
}

/* ======== the clients (a child process: bench_front --clients ...) ============================ */

typedef enum {
    C_CONNECTING, C_TLS, C_FEATURES, C_CHALLENGE, C_SUCCESS, C_FEATURES2, C_BIND, C_BOUND, C_DEAD
} client_state;

typedef struct client {
    int fd;
    SSL *ssl;
    client_state state;
    int index;
    buf rx, tx;
    char *first_bare;       /* client-first-message-bare, for the AuthMessage */
    size_t blast_off;       /* where in the batch the next write starts */
    int in_flight;          /* batches (partly) written and not answered yet */
} client;

/* What the child tells the parent: once every client is bound or dead, and when it exits. */
typedef struct client_report {
    int bound, dead;
    double login_s;
    long server_errors;     /* stanza errors the front sent back while clients were sending */
} client_report;

static struct {
    bool tls, blast, blasting;
    int n, port, octet, epfd;
    SSL_CTX *ctx;
    client *c;
    int started, in_login, bound, dead;
    uint8_t client_key[SCRAM_MAX_KEY], stored_key[SCRAM_MAX_KEY];
    char *blast_buf;
    size_t blast_len;
    long server_errors;
    char first_error[256];
} cl;

static void client_die(client *c, const char *why)
{
    if (c->state == C_DEAD)
        return;
    if (!cl.first_error[0])
        snprintf(cl.first_error, sizeof(cl.first_error), "client %d: %s", c->index, why);
    if (c->state < C_BOUND)
        cl.in_login--;
    else
        cl.bound--;
    cl.dead++;
    c->state = C_DEAD;
    epoll_ctl(cl.epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    buf_free(&c->rx);
    buf_free(&c->tx);
    free(c->first_bare);
    c->first_bare = NULL;
}

/* >0 bytes moved, 0 the peer closed, -1 would block, -2 error. */
static ssize_t client_io(client *c, bool writing, void *p, size_t n)
{
    if (!c->ssl) {
        ssize_t r = writing ? write(c->fd, p, n) : read(c->fd, p, n);
        if (r >= 0)
            return r == 0 && writing ? -1 : r;
        return errno == EAGAIN || errno == EINTR ? -1 : -2;
    }
    ERR_clear_error();
    int r = writing ? SSL_write(c->ssl, p, (int)n) : SSL_read(c->ssl, p, (int)n);
    if (r > 0)
        return r;
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        return -2;
    }
}

static void client_flush(client *c)
{
    while (buf_len(&c->tx) && c->state != C_DEAD) {
        ssize_t n = client_io(c, true, buf_data(&c->tx), buf_len(&c->tx));
        if (n == -1)
            return;
        if (n <= 0) {
            client_die(c, "write failed");
            return;
        }
        buf_consume(&c->tx, (size_t)n);
    }
}

static void client_send(client *c, const char *data, size_t len)
{
    buf_append(&c->tx, data, len);
    client_flush(c);
}

static void client_header(client *c)
{
    static const char h[] = "<?xml version='1.0'?><stream:stream to='" HOST "' xmlns='jabber:client' "
                            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
    client_send(c, h, sizeof(h) - 1);
}

static void b64_append(buf *out, const void *data, size_t len)
{
    char *p = buf_reserve(out, 4 * ((len + 2) / 3) + 1);
    buf_commit(out, (size_t)EVP_EncodeBlock((unsigned char *)p, data, (int)len));
}

/* Decodes base64 text of length len into out (NUL-terminated); returns the length or -1. */
static int b64_decode(const char *text, size_t len, char *out, size_t cap)
{
    if (len % 4 || len / 4 * 3 + 1 > cap)
        return -1;
    int n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)text, (int)len);
    if (n < 0)
        return -1;
    for (size_t i = len; i > 0 && text[i - 1] == '='; i--)
        n--;
    out[n] = '\0';
    return n;
}

static void client_auth(client *c)
{
    char nonce[25], first[128];
    random_token(nonce, 24);
    snprintf(first, sizeof(first), "n=user%05d,r=%s", c->index, nonce);
    c->first_bare = mem_strdup(first);
    buf b = BUF_INIT;
    buf_appendf(&b, "<auth xmlns='" NS_SASL "' mechanism='SCRAM-SHA-1'>");
    snprintf(first, sizeof(first), "n,,%s", c->first_bare);
    b64_append(&b, first, strlen(first));
    buf_appendf(&b, "</auth>");
    client_send(c, buf_data(&b), buf_len(&b));
    buf_free(&b);
}

/* server-first-message in; client-final-message out. */
static bool client_response(client *c, const char *b64, size_t len)
{
    char server_first[512];
    if (b64_decode(b64, len, server_first, sizeof(server_first)) < 0 ||
        strncmp(server_first, "r=", 2) != 0)
        return false;
    const char *client_nonce = strstr(c->first_bare, ",r=") + 3;
    size_t nonce_len = strcspn(server_first + 2, ",");
    if (strncmp(server_first + 2, client_nonce, strlen(client_nonce)) != 0)
        return false;
    buf final = BUF_INIT, auth = BUF_INIT, out = BUF_INIT;
    buf_appendf(&final, "c=biws,r=%.*s", (int)nonce_len, server_first + 2);
    buf_appendf(&auth, "%s,%s,%.*s", c->first_bare, server_first, (int)buf_len(&final),
                buf_data(&final));
    uint8_t signature[SCRAM_MAX_KEY], proof[SCRAM_MAX_KEY];
    size_t key_len = scram_key_len(SCRAM_SHA1);
    scram_hmac(SCRAM_SHA1, cl.stored_key, key_len, buf_data(&auth), buf_len(&auth), signature);
    for (size_t i = 0; i < key_len; i++)
        proof[i] = cl.client_key[i] ^ signature[i];
    buf_append(&final, ",p=", 3);
    b64_append(&final, proof, key_len);
    buf_appendf(&out, "<response xmlns='" NS_SASL "'>");
    b64_append(&out, buf_data(&final), buf_len(&final));
    buf_appendf(&out, "</response>");
    client_send(c, buf_data(&out), buf_len(&out));
    buf_free(&final);
    buf_free(&auth);
    buf_free(&out);
    free(c->first_bare);
    c->first_bare = NULL;
    return true;
}

/* The end of the first `close` in rx (offset just past it), or 0. */
static size_t client_find(client *c, const char *close)
{
    const char *d = buf_data(&c->rx);
    const char *hit = buf_len(&c->rx) ? memmem(d, buf_len(&c->rx), close, strlen(close)) : NULL;
    return hit ? (size_t)(hit - d) + strlen(close) : 0;
}

static void client_bound(client *c)
{
    c->state = C_BOUND;
    cl.in_login--;
    cl.bound++;
    buf_free(&c->rx);   /* an idle client keeps no buffers, like the front's connections */
    buf_free(&c->tx);
}

/* Moves the login along as far as what was read allows. */
static void client_advance(client *c)
{
    for (;;) {
        if (c->state >= C_BOUND)
            return;
        if (client_find(c, "<stream:error") || client_find(c, "<failure")) {
            char why[200];
            int shown = buf_len(&c->rx) < 150 ? (int)buf_len(&c->rx) : 150;
            snprintf(why, sizeof(why), "the front said: %.*s", shown, buf_data(&c->rx));
            client_die(c, why);
            return;
        }
        size_t end;
        switch (c->state) {
        case C_FEATURES:
        case C_FEATURES2:
            if (!(end = client_find(c, "</stream:features>")))
                return;
            buf_consume(&c->rx, end);
            if (c->state == C_FEATURES) {
                c->state = C_CHALLENGE;
                client_auth(c);
            } else {
                static const char bind[] = "<iq type='set' id='bind'><bind "
                                           "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench"
                                           "</resource></bind></iq>";
                c->state = C_BIND;
                client_send(c, bind, sizeof(bind) - 1);
            }
            break;
        case C_CHALLENGE: {
            if (!(end = client_find(c, "</challenge>")))
                return;
            const char *d = buf_data(&c->rx);
            const char *text = memchr(d, '>', end);
            size_t text_len = (size_t)(d + end - strlen("</challenge>") - (text + 1));
            if (!text || !client_response(c, text + 1, text_len)) {
                client_die(c, "bad SCRAM challenge");
                return;
            }
            buf_consume(&c->rx, end);
            c->state = C_SUCCESS;
            break;
        }
        case C_SUCCESS:
            if (!(end = client_find(c, "</success>")))
                return;
            buf_consume(&c->rx, end);
            c->state = C_FEATURES2;
            client_header(c);
            break;
        case C_BIND:
            if (!(end = client_find(c, "</iq>")))
                return;
            if (!memmem(buf_data(&c->rx), end, "type='result'", 13)) {
                client_die(c, "bind refused");
                return;
            }
            client_bound(c);
            return;
        default:
            return;
        }
        if (c->state == C_DEAD)
            return;
    }
}

/* A sending client's input: answers to its pings (each frees a batch) and stanza errors. */
static void client_acks(client *c)
{
    const char *d = buf_data(&c->rx);
    size_t len = buf_len(&c->rx), done = 0, pong = sizeof(PONG) - 1;
    const char *hit;
    if (!len)
        return;
    while ((hit = memmem(d + done, len - done, PONG, pong))) {
        c->in_flight--;
        done = (size_t)(hit - d) + pong;
    }
    if (memmem(d, len, "</error>", 8))
        cl.server_errors++;
    /* Keep a tail that may be the start of an answer. */
    buf_consume(&c->rx, len - done > pong ? len - pong : done);
}

static void client_read(client *c)
{
    char scratch[16384];
    while (c->state != C_DEAD) {
        bool keep = c->state < C_BOUND || cl.blast;   /* idle clients drop what comes */
        char *room = keep ? buf_reserve(&c->rx, 16384) : scratch;
        ssize_t n = client_io(c, false, room, keep ? buf_avail(&c->rx) : sizeof(scratch));
        if (n == -1)
            break;
        if (n <= 0) {
            client_die(c, n == 0 ? "the front closed the stream" : "read failed");
            return;
        }
        if (keep)
            buf_commit(&c->rx, (size_t)n);
    }
    if (c->state == C_BOUND)
        client_acks(c);
    else
        client_advance(c);
}

/* Writes batches while fewer than BATCHES_IN_FLIGHT await their answer. */
static void client_blast(client *c)
{
    while (c->state == C_BOUND && (c->blast_off || c->in_flight < BATCHES_IN_FLIGHT)) {
        ssize_t n = client_io(c, true, cl.blast_buf + c->blast_off, cl.blast_len - c->blast_off);
        if (n == -1)
            return;
        if (n <= 0) {
            client_die(c, "write failed while sending");
            return;
        }
        if (c->blast_off == 0)
            c->in_flight++;
        c->blast_off = (c->blast_off + (size_t)n) % cl.blast_len;
    }
}

static void client_event(client *c, uint32_t events)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            client_die(c, strerror(err));
            return;
        }
        if (cl.tls) {
            c->ssl = SSL_new(cl.ctx);
            SSL_set_fd(c->ssl, c->fd);
            SSL_set_tlsext_host_name(c->ssl, HOST);
            SSL_set_connect_state(c->ssl);
            c->state = C_TLS;
        } else {
            c->state = C_FEATURES;
            client_header(c);
        }
    }
    if (c->state == C_TLS) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                client_die(c, "TLS handshake failed");
            return;
        }
        c->state = C_FEATURES;
        client_header(c);
    }
    client_flush(c);
    client_read(c);
    client_flush(c);
    if (cl.blasting)
        client_blast(c);
}

static void client_start(int i)
{
    client *c = &cl.c[i];
    *c = (client){.index = i, .state = C_CONNECTING};
    cl.started++;
    cl.in_login++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        client_die(c, strerror(errno));
        return;
    }
    /* Source 127.0.<octet>.1-200, the port chosen at connect time for the whole 4-tuple. */
    int one = 1;
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)cl.octet << 8 |
                                                       (uint32_t)(1 + i % 200))};
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cl.port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
        (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS)) {
        client_die(c, strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    epoll_ctl(cl.epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

/* The batch every sending client writes again and again: BATCH chat messages and a ping. */
static void blast_build(void)
{
    buf b = BUF_INIT;
    for (int i = 0; i < BATCH; i++)
        buf_appendf(&b, "<message to='user%05d@" HOST "' type='chat'><body>message %d of a benchmark "
                    "run: the quick brown fox jumps over the lazy dog</body></message>",
                    i * 37 % 10000, i);
    buf_appendf(&b, "<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>");
    size_t start;
    char *mem = buf_detach(&b, &start, &cl.blast_len);
    cl.blast_buf = mem + start;   /* kept for the process's lifetime */
}

/* argv: --clients blast|idle N plain|tls PORT OCTET CTRL_FD REPORT_FD */
static int clients_main(char **argv)
{
    cl.blast = strcmp(argv[2], "blast") == 0;
    cl.n = atoi(argv[3]);
    cl.tls = strcmp(argv[4], "tls") == 0;
    cl.port = atoi(argv[5]);
    cl.octet = atoi(argv[6]);
    int ctrl = atoi(argv[7]), report = atoi(argv[8]);
    signal(SIGPIPE, SIG_IGN);

    uint8_t salted[SCRAM_MAX_KEY];
    size_t key_len = scram_key_len(SCRAM_SHA1);
    scram_salted_password(SCRAM_SHA1, PASSWORD, strlen(PASSWORD), salt, sizeof(salt),
                          SCRAM_ITERATIONS, salted);
    scram_hmac(SCRAM_SHA1, salted, key_len, "Client Key", 10, cl.client_key);
    scram_digest(SCRAM_SHA1, cl.client_key, key_len, cl.stored_key);
    if (cl.tls) {
        cl.ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(cl.ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(cl.ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    if (cl.blast)
        blast_build();
    cl.c = mem_array((size_t)cl.n, sizeof(client));
    cl.epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(cl.epfd, EPOLL_CTL_ADD, ctrl, &ev);

    double t0 = bench_now_s();
    bool reported = false;
    struct epoll_event events[256];
    for (;;) {
        while (cl.started < cl.n && cl.in_login < LOGIN_WINDOW)
            client_start(cl.started);
        if (!reported && cl.started == cl.n &&
            (cl.in_login == 0 || bench_now_s() - t0 > LOGIN_TIMEOUT_S)) {
            client_report r = {cl.bound, cl.dead + cl.in_login, bench_now_s() - t0, 0};
            if (cl.first_error[0])
                fprintf(stderr, "bench_front clients: %s\n", cl.first_error);
            if (write(report, &r, sizeof(r)) != (ssize_t)sizeof(r))
                return 1;
            reported = true;
        }
        int n = epoll_wait(cl.epfd, events, 256, 100);
        for (int i = 0; i < n; i++) {
            client *c = events[i].data.ptr;
            if (c) {
                if (c->state != C_DEAD)
                    client_event(c, events[i].events);
                continue;
            }
            char cmd;
            if (read(ctrl, &cmd, 1) == 1 && cmd == 'g') {
                cl.blasting = true;
                for (int k = 0; k < cl.n; k++)
                    client_blast(&cl.c[k]);
                continue;
            }
            /* The parent closed the control pipe: say how it went and go. */
            client_report r = {cl.bound, cl.dead, bench_now_s() - t0, cl.server_errors};
            if (write(report, &r, sizeof(r)) != (ssize_t)sizeof(r))
                return 1;
            return 0;
        }
    }
}

/* ======== the front and the phases (the parent) =============================================== */

static char bin_dir[PATH_MAX], self[PATH_MAX], *scratch, front_log[PATH_MAX];
static pid_t front_pid, clients_pid;
static int octet = 1;

static void stop_all(void)
{
    bench_stop(front_pid, 5000);
    bench_stop(clients_pid, 5000);
    front_pid = clients_pid = 0;
}

static void remove_scratch(void)
{
    tmp_dir_remove(scratch);
    scratch = NULL;
}

static void fail_dump(const char *what)
{
    fprintf(stderr, "bench_front: %s\n", what);
    if (front_log[0])
        bench_dump_file(front_log);
    exit(1);
}

typedef struct front {
    int port, tls_port;
} front;

/* max_fds: clients, with room for the IO threads' uneven shares (SO_REUSEPORT spreads the
 * connections by hash), within the 20,000 descriptors a process may have. */
static front front_start(int threads, int clients)
{
    int max_fds = clients + clients / 10 + 100;
    front f = {bench_free_port(), bench_free_port()};
    char pem[PATH_MAX], path[PATH_MAX];
    bench_path(pem, sizeof(pem), scratch, "no-such.pem");   /* a generated certificate */
    bench_path(front_log, sizeof(front_log), scratch, "c2s.log");
    buf text = BUF_INIT;
    buf_appendf(&text,
                "<jadc2s>\n"
                "  <sm><host>127.0.0.1</host><port>%d</port><secret>" SECRET "</secret>"
                "<id>" SERVICE "</id></sm>\n"
                "  <local><id>" HOST "</id><ip>127.0.0.1</ip><port>%d</port>\n"
                "    <ssl><port>%d</port><pemfile>%s</pemfile><required>false</required></ssl>\n"
                "  </local>\n"
                "  <max_fds>%d</max_fds>\n"
                "  <threads>%d</threads>\n"
                "  <limits><max_bps>0</max_bps><conn_rate>0</conn_rate>"
                "<auth_timeout>120</auth_timeout><idle_timeout>600</idle_timeout></limits>\n"
                "  <log><target>stderr</target><level>error</level></log>\n"
                "</jadc2s>\n",
                sink.port, f.port, f.tls_port, pem, max_fds < 19000 ? max_fds : 19000, threads);
    char *conf = tmp_write(scratch, "jadc2s.xml", "%.*s", (int)buf_len(&text), buf_data(&text));
    if (!conf)
        fail("cannot write the configuration file");
    buf_free(&text);
    bench_path(path, sizeof(path), bin_dir, "jabshard-c2s");
    char *args[] = {"jabshard-c2s", "-c", conf, NULL};
    long links = atomic_load(&sink.links);
    fflush(stdout);
    front_pid = bench_spawn(path, args, front_log);
    free(conf);
    if (bench_wait_port(f.port, front_pid, 10000) != 0 ||
        bench_wait_port(f.tls_port, front_pid, 10000) != 0)
        fail_dump("jabshard-c2s did not start");
    for (int waited = 0; atomic_load(&sink.links) == links; waited += 10) {
        if (waited > 10000)
            fail_dump("jabshard-c2s did not connect to the sink");
        bench_sleep_ms(10);
    }
    return f;
}

typedef struct clients {
    int ctrl, report;
} clients;

static clients clients_start(const char *mode, int n, bool tls, int port)
{
    int ctrl[2], report[2];
    if (pipe2(ctrl, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0)
        fail("pipe");
    char num[16], portnum[16], oct[16], ctrl_fd[16], report_fd[16];
    snprintf(num, sizeof(num), "%d", n);
    snprintf(portnum, sizeof(portnum), "%d", port);
    snprintf(oct, sizeof(oct), "%d", octet++);
    snprintf(ctrl_fd, sizeof(ctrl_fd), "%d", ctrl[0]);
    snprintf(report_fd, sizeof(report_fd), "%d", report[1]);
    char *args[] = {"bench_front", "--clients", (char *)mode, num, tls ? "tls" : "plain",
                    portnum, oct, ctrl_fd, report_fd, NULL};
    fflush(stdout);
    clients_pid = fork();
    if (clients_pid < 0)
        fail("fork");
    if (clients_pid == 0) {
        fcntl(ctrl[0], F_SETFD, 0);
        fcntl(report[1], F_SETFD, 0);
        execv(self, args);
        _exit(127);
    }
    close(ctrl[0]);
    close(report[1]);
    return (clients){ctrl[1], report[0]};
}

static client_report clients_wait(clients *c, unsigned timeout_ms)
{
    client_report r = {0};
    struct pollfd p = {c->report, POLLIN, 0};
    if (poll(&p, 1, (int)timeout_ms) != 1 || read(c->report, &r, sizeof(r)) != (ssize_t)sizeof(r))
        fail_dump("the clients did not report");
    return r;
}

/* Stops the front first (its side of every connection closes first, so the clients' ports are
 * not left in TIME_WAIT), then the clients; returns their final report. */
static client_report clients_stop(clients *c)
{
    bench_stop(front_pid, 5000);
    front_pid = 0;
    close(c->ctrl);
    client_report r = clients_wait(c, 30000);
    close(c->report);
    waitpid(clients_pid, NULL, 0);
    clients_pid = 0;
    return r;
}

static void throughput(int threads)
{
    front f = front_start(threads, BLAST_CLIENTS);
    clients c = clients_start("blast", BLAST_CLIENTS, false, f.port);
    client_report r = clients_wait(&c, (LOGIN_TIMEOUT_S + 10) * 1000);
    if (r.bound != BLAST_CLIENTS)
        fail_dump("not every client logged in");
    if (write(c.ctrl, "g", 1) != 1)
        fail("control pipe");
    bench_sleep_ms(WARMUP_MS);
    long n0 = atomic_load(&sink.stanzas);
    double t0 = bench_now_s(), front0 = bench_cpu_s(front_pid), clients0 = bench_cpu_s(clients_pid),
           sink0 = bench_cpu_s(getpid());
    bench_sleep_ms(MEASURE_MS);
    long n1 = atomic_load(&sink.stanzas);
    double t1 = bench_now_s(), front1 = bench_cpu_s(front_pid), clients1 = bench_cpu_s(clients_pid),
           sink1 = bench_cpu_s(getpid());
    r = clients_stop(&c);
    double s = t1 - t0;
    printf("front threads=%d stanzas: %ld in %.2f s = %.0f/s = %.0f per front CPU-second (%d "
           "clients, plain TCP, no rate limit, %d batches of %d messages and a ping in flight each; "
           "cores used: front %.2f, clients %.2f, sink %.2f%s)\n",
           threads, n1 - n0, s, (double)(n1 - n0) / s, (double)(n1 - n0) / (front1 - front0),
           BLAST_CLIENTS, BATCHES_IN_FLIGHT, BATCH,
           (front1 - front0) / s, (clients1 - clients0) / s, (sink1 - sink0) / s,
           r.server_errors ? "; clients got stanza errors" : "");
    fflush(stdout);
}

static void idle_memory(bool tls, int n)
{
    const char *kind = tls ? "tls" : "plain";
    front f = front_start(2, n);
    bench_sleep_ms(500);
    long before = bench_rss_kib(front_pid);
    long binds0 = atomic_load(&sink.binds);
    clients c = clients_start("idle", n, tls, tls ? f.tls_port : f.port);
    client_report r = clients_wait(&c, (LOGIN_TIMEOUT_S + 10) * 1000);
    printf("front logins %s: %d in %.2f s = %.0f/s (SCRAM-SHA-1, client key cached; bind through "
           "the sink%s)\n", kind, r.bound, r.login_s, r.bound / r.login_s,
           tls ? "; direct TLS, with its handshake" : "");
    if (r.bound != n || atomic_load(&sink.binds) - binds0 != n)
        fprintf(stderr, "bench_front: %d of %d %s clients bound (%d failed)\n", r.bound, n, kind,
                r.dead);
    bench_sleep_ms(SETTLE_MS);
    long settled = bench_rss_kib(front_pid);
    bench_sleep_ms(IDLE_WAIT_MS);
    long idle = bench_rss_kib(front_pid);
    clients_stop(&c);
    double per = r.bound ? 1024.0 / r.bound : 0;
    printf("front idle memory %s: %d connections = %.0f bytes/connection after %.0f s idle, %.0f "
           "after %.0f s (RSS %ld KiB before the clients, %ld KiB, %ld KiB)\n",
           kind, r.bound, (double)(idle - before) * per, (SETTLE_MS + IDLE_WAIT_MS) / 1e3,
           (double)(settled - before) * per, SETTLE_MS / 1e3, before, idle, settled);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc == 9 && strcmp(argv[1], "--clients") == 0)
        return clients_main(argv);
    bench_bin_dir(argc, argv, bin_dir);
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        fail("cannot find this program");
    self[len] = '\0';
    signal(SIGPIPE, SIG_IGN);
    if (!(scratch = tmp_dir("bench-front")))
        fail("cannot make a scratch directory");
    atexit(remove_scratch);   /* after stop_all: atexit runs in reverse */
    atexit(stop_all);
    sink_start();

    throughput(1);
    throughput(2);
    const char *env = getenv("BENCH_FRONT_IDLE");
    int idle = env && *env ? atoi(env) : IDLE_CLIENTS;
    idle_memory(false, idle);
    env = getenv("BENCH_FRONT_IDLE_TLS");
    idle_memory(true, env && *env ? atoi(env) : idle);
    return 0;
}
