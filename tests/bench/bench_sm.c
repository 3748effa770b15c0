/* tests/bench/bench_sm.c — stanzas per second routed by the session manager alone, fed by a
 * synthetic front over the real link, with 10,000 online users of 50 contacts each.
 *
 * Setup (not measured): a scratch SQLite database gets the users (credentials derived once and
 * shared) and their rosters (ring neighbours i±1..i±25, subscription both) through xdb_run; then
 * jabshard-sm (from the directory in argv[1], $JABSHARD_BIN or ../bin) starts on a free loopback
 * port with a generated sm.xml. This program is the front: XEP-0114 handshake, <smproto
 * version='N'/>, then frames; like a front, it acknowledges (ACK) the SM's counted frames after
 * each read (the SM keeps each frame until then, and holds back its own ACK of the frame that
 * caused it), and after each phase checks that the SM acknowledged every frame it was sent (the
 * figures stop at the last answer, as before acknowledgements). It measures
 *   - binds: BIND for every user at once, until every BOUND is back (each loads a 50-item roster);
 *   - presence fan-out: one initial presence per user, sent in user order; every one comes back as
 *     the user's own echo, 50 probe answers and one copy per contact already available, so the
 *     number of presence stanzas to expect is known exactly; the rate is stanzas delivered to the
 *     front per second until the last one arrived;
 *   - messages: chat messages from user to user (bare JIDs) at full speed with a window of
 *     messages in flight; the body carries a sequence number and the send time, which gives the
 *     latency of each through the SM.
 * Output: one line per figure, "sm <what>: N in S s = R/s = R' per SM CPU-second (...)": the
 * machine has 2 cores shared by the SM, this program and whatever else runs, so the rates are
 * noisy and the rate per CPU-second the SM used is the steadier figure. BENCH_SM_USERS and
 * BENCH_SM_MESSAGES override the sizes (for a quick run). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/scram.h"
#include "smproto/frame.h"
#include "tests/bench/benchlib.h"
#include "tests/support/net.h"
#include "tests/support/tmp.h"
#include "xdbsql/xdbsql.h"
#include "tests/support/xorshift.h"

#define HOST "bench.example"
#define SERVICE "bench"
#define SECRET "bench-secret"
#define RESOURCE "bench"

enum { CONTACTS = 50, WINDOW = 1000, TIMEOUT_S = 120 };

static int users = 10000;
static long messages = 500000;

static char *scratch, sm_log[PATH_MAX];
static pid_t sm_pid;

static void stop_sm(void)
{
    bench_stop(sm_pid, 5000);
    sm_pid = 0;
}

static void remove_scratch(void)
{
    tmp_dir_remove(scratch);
    scratch = NULL;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_sm: %s\n", what);
    if (sm_log[0])
        bench_dump_file(sm_log);
    exit(1);
}

static void user_name(char *out, size_t size, int i)
{
    snprintf(out, size, "user%05d", i);
}

static int ring(int i)
{
    return ((i % users) + users) % users;
}

/* The k-th contact of user i (k < CONTACTS): the neighbours on each side of the ring. */
static int contact(int i, int k)
{
    int d = k / 2 + 1;
    return ring(k % 2 ? i - d : i + d);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static void populate(const char *path)
{
    db_settings db = {.driver = "sqlite", .path = path};
    char err[256], user[32], jid[64];
    db_conn *c = db_open(&db, err, sizeof(err));
    if (!c || xdb_migrate(c, err, sizeof(err)) != 0)
        die(err);
    /* A scratch database: losing it in a crash costs nothing, and nobody else has it open. */
    db_exec(c, "PRAGMA synchronous=OFF");
    db_exec(c, "PRAGMA locking_mode=EXCLUSIVE");
    xdb_credentials creds;
    scram_derive(SCRAM_SHA1, "password", NULL, 0, SCRAM_ITERATIONS, &creds.sha1);
    scram_derive(SCRAM_SHA256, "password", NULL, 0, SCRAM_ITERATIONS, &creds.sha256);

    double t = bench_now_s();
    /* Creating a user is one statement: a batch transaction holds them all. */
    db_begin(c);
    for (int i = 0; i < users; i++) {
        user_name(user, sizeof(user), i);
        xdb_request *r = xdb_request_new(XDB_USER_CREATE, HOST, user);
        r->creds = creds;
        if (xdb_run(c, r) != XDB_OK)
            die(r->error);
        xdb_request_free(r);
    }
    if (db_commit(c) != DB_OK)
        die(db_errmsg(c));
    /* A roster item is its own transaction (the store begins one to bump the roster version), and
     * SQLite transactions do not nest: one per item. */
    for (int i = 0; i < users; i++) {
        user_name(user, sizeof(user), i);
        for (int k = 0; k < CONTACTS; k++) {
            user_name(jid, sizeof(jid), contact(i, k));
            strcat(jid, "@" HOST);
            xdb_roster_item item = {.jid = jid, .subscription = XDB_SUB_BOTH};
            xdb_request *r = xdb_request_new(XDB_ROSTER_SET, HOST, user);
            xdb_request_set_item(r, &item);
            if (xdb_run(c, r) != XDB_OK)
                die(r->error);
            xdb_request_free(r);
        }
    }
    db_close(c);
    printf("sm setup: %d users with %d contacts each (%ld roster items) stored in %.2f s "
           "(not a figure)\n", users, CONTACTS, (long)users * CONTACTS, bench_now_s() - t);
    fflush(stdout);
}

static int start_sm(const char *bin_dir)
{
    char path[PATH_MAX], db[PATH_MAX];
    int port = bench_free_port();
    bench_path(db, sizeof(db), scratch, "sm.db");
    bench_path(sm_log, sizeof(sm_log), scratch, "sm.log");
    buf text = BUF_INIT;
    buf_appendf(&text,
                "<sm>\n"
                "  <service id='" SERVICE "' role='front'><accept><ip>127.0.0.1</ip><port>%d</port>"
                "<secret>" SECRET "</secret></accept></service>\n"
                "  <host name='" HOST "'/>\n"
                "  <storage><driver>sqlite</driver><path>%s</path></storage>\n"
                "  <log><target>stderr</target><level>warn</level></log>\n"
                "  <upload><secret>bench upload secret</secret></upload>\n"
                "</sm>\n",
                port, db);
    char *conf = tmp_write(scratch, "sm.xml", "%.*s", (int)buf_len(&text), buf_data(&text));
    if (!conf)
        die("cannot write the configuration file");
    buf_free(&text);
    populate(db);
    bench_path(path, sizeof(path), bin_dir, "jabshard-sm");
    char *args[] = {"jabshard-sm", "-c", conf, NULL};
    sm_pid = bench_spawn(path, args, sm_log);
    free(conf);
    if (bench_wait_port(port, sm_pid, 10000) != 0)
        die("jabshard-sm did not start");
    return port;
}

/* ---- the synthetic front --------------------------------------------------------------------- */

static int link_fd = -1;
static buf rx, tx;

static void link_open(int port)
{
    const char *why;
    if ((link_fd = net_connect(port)) < 0)
        die("cannot connect to the SM");
    long long received = bench_link_open(link_fd, &rx, SERVICE, SECRET, "be4c4", 0, &why);
    if (received < 0)
        die(why);
    if (received != 0)
        die("the SM did not answer received='0' to a new instance");
    fcntl(link_fd, F_SETFL, fcntl(link_fd, F_GETFL) | O_NONBLOCK);
}

static uint64_t sid_of(int user)
{
    return smproto_sid(0, (uint32_t)user, 1);
}

/* What came back, per kind. */
static struct {
    long bound, bind_failed, presence, messages, errors, ends, misrouted;
    uint64_t *latency;      /* ns, one per message delivered */
} got;

/* Custody: counted frames each way, and the acknowledgements. */
static struct {
    uint64_t sent;          /* ours, to the SM */
    uint64_t sm_acked;      /* the SM's last ACK */
    uint64_t received;      /* the SM's, to us */
    uint64_t told;          /* of which we acknowledged */
} custody;

/* A counted frame for the SM. */
static void put_frame(smproto_type type, uint64_t sid, const char *xml, size_t len)
{
    smproto_put(&tx, type, sid, xml, len);
    custody.sent++;
}

static void on_stanza(const smproto_frame *f)
{
    const char *x = (const char *)f->payload;
    size_t len = f->len;
    if (memmem(x, len, "type='error'", 12) || memmem(x, len, "type=\"error\"", 12)) {
        got.errors++;
    } else if (len > 9 && memcmp(x, "<presence", 9) == 0) {
        got.presence++;
    } else if (len > 8 && memcmp(x, "<message", 8) == 0) {
        const char *body = memmem(x, len, "<body>", 6);
        unsigned long long seq, sent;
        int target;
        if (got.messages >= messages)
            die("more messages came back than were sent");
        if (!body || sscanf(body + 6, "%llu %llu %d", &seq, &sent, &target) != 3)
            die("a message came back without its body");
        if ((uint32_t)target != smproto_sid_slot(f->sid))
            got.misrouted++;
        got.latency[got.messages++] = bench_now_ns() - sent;
    }
}

static void on_frame(const smproto_frame *f)
{
    uint8_t status;
    const char *full;
    uint64_t token;
    switch (f->type) {
    case SMPROTO_BOUND:
        if (!smproto_get_bound(f, &status, &full))
            die("malformed BOUND");
        if (status == SMPROTO_BOUND_OK)
            got.bound++;
        else
            got.bind_failed++;
        break;
    case SMPROTO_STANZA:
        on_stanza(f);
        break;
    case SMPROTO_END:
        got.ends++;
        break;
    case SMPROTO_PING:
        if (smproto_get_ping(f, &token))
            smproto_put_ping(&tx, SMPROTO_PONG, token);
        break;
    case SMPROTO_ACK:
        if (!smproto_get_ack(f, &token) || token < custody.sm_acked || token > custody.sent)
            die("a bad ACK from the SM");
        custody.sm_acked = token;
        break;
    default:
        break;
    }
    custody.received += smproto_counted(f->type);
}

/* Writes what it can, then waits up to timeout_ms for input and handles every whole frame. */
static void pump(int timeout_ms)
{
    while (buf_len(&tx)) {
        ssize_t n = write(link_fd, buf_data(&tx), buf_len(&tx));
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            die("writing to the SM failed");
        if (n <= 0)
            break;
        buf_consume(&tx, (size_t)n);
    }
    struct pollfd p = {link_fd, (short)(POLLIN | (buf_len(&tx) ? POLLOUT : 0)), 0};
    if (poll(&p, 1, timeout_ms) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
        return;
    for (int reads = 0; reads < 16; reads++) {
        char *room = buf_reserve(&rx, 256 * 1024);
        ssize_t n = read(link_fd, room, buf_avail(&rx));
        if (n == 0)
            die("the SM closed the link");
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            die("reading from the SM failed");
        }
        buf_commit(&rx, (size_t)n);
        smproto_frame f;
        size_t used;
        smproto_frame_status st;
        while ((st = smproto_frame_next((const uint8_t *)buf_data(&rx), buf_len(&rx), &f, &used)) ==
               SMPROTO_FRAME_OK) {
            on_frame(&f);
            buf_consume(&rx, used);
        }
        if (st == SMPROTO_FRAME_BAD)
            die("the SM sent a bad frame");
    }
    /* What we read is ours now: tell the SM, as a front does after each read. */
    if (custody.received != custody.told) {
        smproto_put_ack(&tx, custody.received);
        custody.told = custody.received;
    }
}

/* Until the SM has acknowledged every frame sent to it: each was finished, and everything it
 * caused acknowledged by us. */
static void wait_acked(void)
{
    double t0 = bench_now_s();
    while (custody.sm_acked < custody.sent && bench_now_s() - t0 < TIMEOUT_S)
        pump(100);
    if (custody.sm_acked != custody.sent) {
        fprintf(stderr, "bench_sm: the SM acknowledged %llu of %llu frames\n",
                (unsigned long long)custody.sm_acked, (unsigned long long)custody.sent);
        die("frames not acknowledged");
    }
}

/* One figure; cpu0 is the SM's CPU time when the phase began. */
static void report(const char *what, long n, double seconds, double cpu0, const char *extra)
{
    double cpu = bench_cpu_s(sm_pid) - cpu0;
    printf("sm %s: %ld in %.2f s = %.0f/s = %.0f per SM CPU-second%s\n", what, n, seconds,
           (double)n / seconds, (double)n / cpu, extra);
    fflush(stdout);
}

/* ---- phases ---------------------------------------------------------------------------------- */

static void bind_all(void)
{
    char user[32];
    double t = bench_now_s(), cpu0 = bench_cpu_s(sm_pid);
    for (int i = 0; i < users; i++) {
        user_name(user, sizeof(user), i);
        smproto_put_bind(&tx, sid_of(i), HOST, user, RESOURCE, 0);
        custody.sent++;
    }
    while (got.bound + got.bind_failed < users && bench_now_s() - t < TIMEOUT_S)
        pump(100);
    if (got.bound != users)
        die("not every session was bound");
    double s = bench_now_s() - t;
    wait_acked();
    report("binds", users, s, cpu0, " (each loads a 50-item roster)");
}

static void presence_all(void)
{
    /* User i, in sending order, gets its own presence back, one answer per probe (the contact's
     * presence or unavailable) and one copy from each contact already available. */
    long expected = 0;
    for (int i = 0; i < users; i++) {
        expected += 1 + CONTACTS;
        for (int k = 0; k < CONTACTS; k++)
            expected += contact(i, k) < i;
    }
    char user[32], xml[128];
    double t = bench_now_s(), cpu0 = bench_cpu_s(sm_pid);
    for (int i = 0; i < users; i++) {
        user_name(user, sizeof(user), i);
        int len = snprintf(xml, sizeof(xml), "<presence from='%s@" HOST "/" RESOURCE "'/>", user);
        put_frame(SMPROTO_STANZA, sid_of(i), xml, (size_t)len);
    }
    while (got.presence + got.errors < expected && bench_now_s() - t < TIMEOUT_S)
        pump(100);
    double s = bench_now_s() - t;
    if (got.presence != expected || got.errors) {
        fprintf(stderr, "bench_sm: %ld presence stanzas of %ld expected, %ld errors\n",
                got.presence, expected, got.errors);
        die("presence fan-out incomplete");
    }
    wait_acked();
    char extra[128];
    snprintf(extra, sizeof(extra), " (%d initial presences, %.0f/s; the last stanza arrived %.2f s "
             "after the first presence was sent)", users, users / s, s);
    report("presence fan-out stanzas", got.presence, s, cpu0, extra);
}

static xorshift rng_gen = {2463534242u};
static uint32_t rng(void) { return (uint32_t)(xorshift_next(&rng_gen) >> 32); }

static void messages_all(void)
{
    char from[32], to[32], xml[256];
    long sent = 0, errors0 = got.errors;
    double t = bench_now_s(), cpu0 = bench_cpu_s(sm_pid);
    while (got.messages + got.errors - errors0 < messages && bench_now_s() - t < TIMEOUT_S) {
        while (sent < messages && sent - got.messages - (got.errors - errors0) < WINDOW) {
            int a = (int)(sent % users);
            int b = (a + 1 + (int)(rng() % (uint32_t)(users - 1))) % users;
            user_name(from, sizeof(from), a);
            user_name(to, sizeof(to), b);
            int len = snprintf(xml, sizeof(xml),
                               "<message from='%s@" HOST "/" RESOURCE "' to='%s@" HOST "' "
                               "type='chat'><body>%ld %llu %d</body></message>",
                               from, to, sent, (unsigned long long)bench_now_ns(), b);
            put_frame(SMPROTO_STANZA, sid_of(a), xml, (size_t)len);
            sent++;
        }
        pump(10);
    }
    double s = bench_now_s() - t;
    if (got.messages != messages || got.errors != errors0 || got.misrouted) {
        fprintf(stderr, "bench_sm: %ld messages of %ld delivered, %ld errors, %ld misrouted\n",
                got.messages, messages, got.errors - errors0, got.misrouted);
        die("messages lost");
    }
    wait_acked();
    char extra[160];
    double p50 = (double)bench_percentile(got.latency, (size_t)got.messages, 50) / 1e6;
    double p99 = (double)bench_percentile(got.latency, (size_t)got.messages, 99) / 1e6;
    snprintf(extra, sizeof(extra), " (window %d in flight; latency p50 %.2f ms, p99 %.2f ms)",
             WINDOW, p50, p99);
    report("one-to-one messages", got.messages, s, cpu0, extra);
}

int main(int argc, char **argv)
{
    char bin_dir[PATH_MAX];
    bench_bin_dir(argc, argv, bin_dir);
    const char *env = getenv("BENCH_SM_USERS");
    if (env && *env)
        users = atoi(env);
    if ((env = getenv("BENCH_SM_MESSAGES")) && *env)
        messages = atol(env);
    if (users < 2 * CONTACTS || messages < 1)
        die("BENCH_SM_USERS must be at least 100 and BENCH_SM_MESSAGES at least 1");
    signal(SIGPIPE, SIG_IGN);
    if (!(scratch = tmp_dir("bench-sm")))
        die("cannot make a scratch directory");
    atexit(remove_scratch);   /* after stop_sm: atexit runs in reverse */
    atexit(stop_sm);

    got.latency = mem_array((size_t)messages, sizeof(uint64_t));
    int port = start_sm(bin_dir);
    link_open(port);
    bind_all();
    presence_all();
    messages_all();

    stop_sm();
    close(link_fd);
    if (got.ends)
        fprintf(stderr, "bench_sm: the SM ended %ld sessions during the run\n", got.ends);
    buf_free(&rx);
    buf_free(&tx);
    free(got.latency);
    return 0;
}
