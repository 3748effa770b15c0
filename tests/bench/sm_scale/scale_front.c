/* tests/bench/sm_scale/scale_front.c — the synthetic fronts: one smproto link each, the sessions
 * of their users, and custody as shard/link_front.c keeps it (docs/smproto.md §3): every counted
 * frame of the SM's is acknowledged after the read that brought it, and the SM's ACKs of ours are
 * followed (a front would drop its copies there; this one keeps none, so the SM restart is only
 * measured once the SM has acknowledged everything: scale_wait_acked). A session's login is a
 * client's: AUTH_QUERY, BIND, the roster get, initial presence; it is online when the roster's
 * result is back. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/random.h"
#include "smproto/frame.h"
#include "tests/bench/benchlib.h"
#include "tests/bench/sm_scale/scale.h"
#include "tests/support/net.h"

#define ROSTER_IQ_ID "ros"
#define READ_CHUNK (256 * 1024)

typedef struct scale_front {
    int index, fd;
    char service[16], instance[17];
    buf rx, tx;
    uint64_t sent;          /* our counted frames (the instance's numbering, across links) */
    uint64_t sm_acked;      /* the SM's last ACK of ours */
    uint64_t received;      /* the SM's counted frames on this link */
    uint64_t told;          /* of which we acknowledged */
} scale_front;

scale_counts scale_got;
static scale_front *fronts;
static scale_session *sessions;
static long nsessions;
static struct pollfd *polls;

static int nfronts;         /* over every SM: scale_opt.fronts each */

static scale_front *front_of(long i)
{
    return &fronts[scale_sm_of(i) * scale_opt.fronts + i % scale_opt.fronts];
}

static uint64_t sid_of(long i)
{
    return smproto_sid(0, (uint32_t)(i / scale_opt.fronts), 1);
}

static long user_of(const scale_front *f, uint64_t sid)
{
    long i = (long)smproto_sid_slot(sid) * scale_opt.fronts + f->index % scale_opt.fronts;
    return sid && i < nsessions ? i : -1;
}

static void full_jid(char *out, size_t size, long i)
{
    char user[32];
    scale_user(user, sizeof(user), i);
    snprintf(out, size, "%s@" SCALE_HOST "/r", user);
}

static void put_stanza(scale_front *f, long i, const char *xml, size_t len)
{
    smproto_put(&f->tx, SMPROTO_STANZA, sid_of(i), xml, len);
    f->sent++;
}

void scale_links_open(int sm)
{
    if (!fronts) {
        nsessions = scale_opt.users + scale_opt.hubs;
        nfronts = scale_opt.fronts * scale_opt.partitions;
        sessions = mem_array((size_t)nsessions, sizeof(*sessions));
        fronts = mem_array((size_t)nfronts, sizeof(*fronts));
        polls = mem_array((size_t)nfronts, sizeof(*polls));
        for (int k = 0; k < nfronts; k++) {
            uint8_t r[8];
            random_bytes(r, sizeof(r));
            fronts[k].index = k;
            fronts[k].fd = -1;
            snprintf(fronts[k].service, sizeof(fronts[k].service), "f%d", k % scale_opt.fronts);
            for (int b = 0; b < 8; b++)
                snprintf(fronts[k].instance + 2 * b, 3, "%02x", r[b]);
        }
    }
    for (int k = sm * scale_opt.fronts; k < (sm + 1) * scale_opt.fronts; k++) {
        scale_front *f = &fronts[k];
        const char *why;
        if ((f->fd = net_connect(scale_sm_ports[sm])) < 0)
            scale_die("%s: cannot connect to the SM", f->service);
        buf_truncate(&f->rx, 0);
        buf_truncate(&f->tx, 0);
        long long r = bench_link_open(f->fd, &f->rx, f->service, SCALE_SECRET, f->instance,
                                      f->sm_acked, &why);
        if (r < 0)
            scale_die("%s: %s", f->service, why);
        if ((uint64_t)r < f->sm_acked || (uint64_t)r > f->sent)
            scale_die("%s: the SM says it received %lld of our %llu frames", f->service, r,
                      (unsigned long long)f->sent);
        f->sent = (uint64_t)r;   /* what it had not acknowledged is gone with the old SM */
        f->received = f->told = 0;
        fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK);
        /* As shard/link_front.c: without it a frame may wait for the SM's delayed ACK (40 ms). */
        int one = 1;
        setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

void scale_links_close(void)
{
    for (int k = 0; k < nfronts; k++)
        if (fronts[k].fd >= 0) {
            close(fronts[k].fd);
            fronts[k].fd = -1;
        }
}

void scale_links_free(void)
{
    for (long i = 0; i < nsessions; i++)
        free(sessions[i].state);
    for (int k = 0; k < nfronts; k++) {
        buf_free(&fronts[k].rx);
        buf_free(&fronts[k].tx);
    }
    free(sessions);
    free(fronts);
    free(polls);
}

void scale_login(long i)
{
    scale_front *f = front_of(i);
    char user[32];
    scale_user(user, sizeof(user), i);
    sessions[i].phase = SS_AUTH;
    sessions[i].login_start = bench_now_ns();
    smproto_put_auth_query(&f->tx, sid_of(i), SCALE_HOST, user);
    f->sent++;
}

bool scale_online(long i)
{
    return sessions[i].phase == SS_ONLINE;
}

void scale_message(long a, long b)
{
    char from[64], to[32], xml[256];
    full_jid(from, sizeof(from), a);
    scale_user(to, sizeof(to), b);
    int len = snprintf(xml, sizeof(xml),
                       "<message from='%s' to='%s@" SCALE_HOST "' type='chat'><body>%llu</body>"
                       "</message>", from, to, (unsigned long long)bench_now_ns());
    put_stanza(front_of(a), a, xml, (size_t)len);
    scale_got.crossing += scale_sm_of(a) != scale_sm_of(b);
}

/* The session's login goes on: after AUTH_ANSWER the BIND; after BOUND, as a client does, the
 * roster get and the initial presence. */
static void on_auth_answer(scale_front *f, long i, const smproto_frame *fr)
{
    uint8_t status;
    smproto_creds creds;
    char user[32];
    if (!smproto_get_auth_answer(fr, &status, &creds))
        scale_die("%s: malformed AUTH_ANSWER", f->service);
    if (status != SMPROTO_AUTH_OK) {
        scale_got.auth_failed++;
        sessions[i].phase = SS_IDLE;
        return;
    }
    scale_got.auth_ok++;
    scale_user(user, sizeof(user), i);
    sessions[i].phase = SS_BIND;
    smproto_put_bind(&f->tx, sid_of(i), SCALE_HOST, user, "r", 0);
    f->sent++;
}

static void on_bound(scale_front *f, long i, const smproto_frame *fr)
{
    uint8_t status;
    const char *full;
    char jid[64], xml[192];
    if (!smproto_get_bound(fr, &status, &full))
        scale_die("%s: malformed BOUND", f->service);
    if (status != SMPROTO_BOUND_OK) {
        scale_got.bind_failed++;
        sessions[i].phase = SS_IDLE;
        return;
    }
    scale_got.bound++;
    sessions[i].phase = SS_ROSTER;
    full_jid(jid, sizeof(jid), i);
    int len = snprintf(xml, sizeof(xml), "<iq from='%s' type='get' id='" ROSTER_IQ_ID "'>"
                       "<query xmlns='jabber:iq:roster'/></iq>", jid);
    put_stanza(f, i, xml, (size_t)len);
    len = snprintf(xml, sizeof(xml), "<presence from='%s'/>", jid);
    put_stanza(f, i, xml, (size_t)len);
}

static void on_stanza(long i, const smproto_frame *fr)
{
    const char *x = (const char *)fr->payload;
    size_t len = fr->len;
    scale_got.last_stanza_ns = bench_now_ns();
    if (memmem(x, len, "type='error'", 12)) {
        scale_got.errors++;
    } else if (len > 9 && memcmp(x, "<presence", 9) == 0) {
        scale_got.presence++;
    } else if (len > 8 && memcmp(x, "<message", 8) == 0) {
        const char *body = memmem(x, len, "<body>", 6);
        unsigned long long sent;
        if (!body || sscanf(body + 6, "%llu", &sent) != 1)
            scale_die("a message came back without its body");
        scale_got.messages++;
        if (scale_got.latency_n < scale_got.latency_cap)
            scale_got.latency[scale_got.latency_n++] = bench_now_ns() - sent;
    } else if (len > 3 && memcmp(x, "<iq", 3) == 0 && i >= 0 &&
               memmem(x, len, "id='" ROSTER_IQ_ID "'", 6) && sessions[i].phase == SS_ROSTER) {
        sessions[i].phase = SS_ONLINE;
        scale_got.roster_results++;
        scale_got.online++;
        scale_got.login_latency[scale_got.login_n++] = bench_now_ns() - sessions[i].login_start;
    } else {
        scale_got.other++;
    }
}

static void on_state(long i, const smproto_frame *fr)
{
    const uint8_t *state;
    size_t len;
    if (!smproto_get_state(fr, &state, &len) || i < 0)
        return;
    if (len > 255)
        scale_die("a STATE record of %zu bytes: this front keeps at most 255", len);
    free(sessions[i].state);
    sessions[i].state = len ? mem_alloc(len) : NULL;
    if (len)
        memcpy(sessions[i].state, state, len);
    sessions[i].state_len = (uint8_t)len;
    scale_got.states++;
}

static void on_frame(scale_front *f, const smproto_frame *fr)
{
    long i = user_of(f, fr->sid);
    uint64_t token;
    switch (fr->type) {
    case SMPROTO_AUTH_ANSWER:
        if (i >= 0)
            on_auth_answer(f, i, fr);
        break;
    case SMPROTO_BOUND:
        if (i >= 0)
            on_bound(f, i, fr);
        break;
    case SMPROTO_STANZA:
        on_stanza(i, fr);
        break;
    case SMPROTO_STATE:
        on_state(i, fr);
        break;
    case SMPROTO_END:
        scale_got.ends++;
        if (i >= 0) {
            if (sessions[i].phase == SS_ONLINE)
                scale_got.online--;
            sessions[i].phase = SS_IDLE;
        }
        break;
    case SMPROTO_PING:
        if (smproto_get_ping(fr, &token))
            smproto_put_ping(&f->tx, SMPROTO_PONG, token);
        break;
    case SMPROTO_ACK:
        if (!smproto_get_ack(fr, &token) || token < f->sm_acked || token > f->sent)
            scale_die("%s: a bad ACK from the SM (%llu; %llu acknowledged, %llu sent)",
                      f->service, (unsigned long long)token, (unsigned long long)f->sm_acked,
                      (unsigned long long)f->sent);
        f->sm_acked = token;
        break;
    default:
        break;
    }
    f->received += smproto_counted(fr->type);
}

static void flush(scale_front *f)
{
    while (buf_len(&f->tx)) {
        ssize_t n = write(f->fd, buf_data(&f->tx), buf_len(&f->tx));
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            scale_die("%s: writing to the SM failed: %s", f->service, strerror(errno));
        if (n <= 0)
            break;
        buf_consume(&f->tx, (size_t)n);
    }
}

static void read_link(scale_front *f)
{
    for (int reads = 0; reads < 16; reads++) {
        char *room = buf_reserve(&f->rx, READ_CHUNK);
        ssize_t n = read(f->fd, room, buf_avail(&f->rx));
        if (n == 0)
            scale_die("%s: the SM closed the link", f->service);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            scale_die("%s: reading from the SM failed: %s", f->service, strerror(errno));
        }
        buf_commit(&f->rx, (size_t)n);
        smproto_frame fr;
        size_t used, off = 0;
        smproto_frame_status st;
        while ((st = smproto_frame_next((const uint8_t *)buf_data(&f->rx) + off,
                                        buf_len(&f->rx) - off, &fr, &used)) == SMPROTO_FRAME_OK) {
            on_frame(f, &fr);
            off += used;
        }
        buf_consume(&f->rx, off);
        if (st == SMPROTO_FRAME_BAD)
            scale_die("%s: the SM sent a bad frame", f->service);
        if ((size_t)n < READ_CHUNK / 2)
            break;
    }
    /* What we read is ours now: tell the SM, as a front does after each read. */
    if (f->received != f->told) {
        smproto_put_ack(&f->tx, f->received);
        f->told = f->received;
    }
}

/* The machine is shared: an SM growing past --max-rss is stopped before it takes it all. */
static void check_rss(void)
{
    static uint64_t last;
    uint64_t now = bench_now_ns();
    if (now - last < 500000000u)
        return;
    last = now;
    long kib = 0;
    for (int k = 0; k < scale_opt.partitions; k++)
        if (scale_sm_pids[k])
            kib += bench_rss_kib(scale_sm_pids[k]);
    if (kib > scale_opt.max_rss_mib * 1024) {
        scale_sm_kill();
        scale_die("the SMs' RSS reached %ld MiB, past --max-rss %ld: killed (online %ld, "
                  "presence stanzas delivered %ld)", kib / 1024, scale_opt.max_rss_mib,
                  scale_got.online, scale_got.presence);
    }
}

void scale_pump(int timeout_ms)
{
    check_rss();
    for (int k = 0; k < nfronts; k++) {
        flush(&fronts[k]);
        polls[k] = (struct pollfd){fronts[k].fd, (short)(POLLIN | (buf_len(&fronts[k].tx) ? POLLOUT : 0)), 0};
    }
    if (poll(polls, (nfds_t)nfronts, timeout_ms) <= 0)
        return;
    for (int k = 0; k < nfronts; k++)
        if (polls[k].revents & (POLLIN | POLLHUP | POLLERR))
            read_link(&fronts[k]);
    for (int k = 0; k < nfronts; k++)
        flush(&fronts[k]);
}

size_t scale_pending_tx(void)
{
    size_t n = 0;
    for (int k = 0; k < nfronts; k++)
        n += buf_len(&fronts[k].tx);
    return n;
}

void scale_custody(uint64_t *sent, uint64_t *acked)
{
    *sent = *acked = 0;
    for (int k = 0; k < nfronts; k++) {
        *sent += fronts[k].sent;
        *acked += fronts[k].sm_acked;
    }
}

bool scale_wait_acked(double timeout_s)
{
    double t0 = bench_now_s();
    uint64_t sent, acked;
    for (scale_custody(&sent, &acked); acked < sent && bench_now_s() - t0 < timeout_s;
         scale_custody(&sent, &acked))
        scale_pump(50);
    return acked == sent;
}

void scale_resync_all(void)
{
    char jid[64], presence[128];
    for (int k = 0; k < nfronts; k++) {
        scale_front *f = &fronts[k];
        size_t start = smproto_resync_begin(&f->tx), size = 0;
        for (long i = k % scale_opt.fronts; i < nsessions; i += scale_opt.fronts) {
            if (sessions[i].phase != SS_ONLINE || front_of(i) != f)
                continue;
            full_jid(jid, sizeof(jid), i);
            if (scale_opt.resync_presence)
                snprintf(presence, sizeof(presence), "<presence from='%s'/>", jid);
            else
                presence[0] = '\0';
            smproto_resync_entry e = {.sid = sid_of(i), .full_jid = jid,
                                      .state = sessions[i].state,
                                      .state_len = sessions[i].state_len, .presence = presence};
            size_t n = smproto_resync_entry_size(&e);
            if (size + n > SMPROTO_MAX_PAYLOAD) {
                smproto_resync_end(&f->tx, start);
                start = smproto_resync_begin(&f->tx);
                size = 0;
            }
            smproto_resync_add(&f->tx, &e);
            size += n;
        }
        if (size)
            smproto_resync_end(&f->tx, start);
        else
            buf_truncate(&f->tx, start);
        smproto_resync_end(&f->tx, smproto_resync_begin(&f->tx));   /* the end of the resync */
    }
}
