/* shard/link_front.c — the front's SM-link thread (see link_front.h): connection, handshake,
 * frames both ways, custody of what it sent until the SM acknowledges it, what it holds while
 * the link is down, and which of the configured SMs it links to. */
#include "shard/link_front.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/xml_write.h"
#include "core/xmlstream.h"
#include "shard/server_caps.h"
#include "smproto/frame.h"
#include "smproto/handshake.h"

#define LINK_READ_CHUNK 65536
#define LINK_PING_AFTER_MS 30000
#define LINK_DEAD_AFTER_MS 90000
#define LINK_TICK_MS 5000
#define LINK_OPEN_TIMEOUT_MS 15000
#define LINK_STOP_FLUSH_MS 2000

typedef enum {
    LS_IDLE,        /* waiting for the retry timer */
    LS_CONNECTING,  /* non-blocking connect in progress */
    LS_OPENING,     /* XEP-0114 opening and handshake (XML) */
    LS_RESYNC,      /* frames: waiting for every IO thread's RESYNC */
    LS_UP,
} link_state;

typedef struct link_shard {
    ring to_link;                   /* producer: the IO thread; consumer: the link thread */
    ring from_link;                 /* producer: the link thread; consumer: the IO thread */
    evloop *io_loop;                /* set before start */
    atomic_bool io_wants_room;      /* set by the IO thread when to_link was full */
    atomic_bool link_wants_room;    /* set by the link thread when from_link was full */
    /* link thread only */
    link_msg *over, **over_tail;    /* for from_link, when it was full */
    bool resynced;                  /* answered the current resync */
    bool woken;                     /* got frames in this batch: wake its loop */
} link_shard;

struct link_front {
    const front_config *cfg;
    unsigned nshards;
    link_shard *shards;
    pthread_t thread;
    bool started;
    atomic_bool stopping;           /* main thread → link thread */
    atomic_bool congested;          /* link thread writes; any thread reads */
    atomic_bool up;
    _Atomic uint64_t st_connects, st_disconnects, st_frames_in, st_frames_out, st_bad_shard,
        st_held, st_ring_full, st_resent, st_switches;
    _Atomic size_t st_sm;           /* the SM (cfg->sms) the link is on, or tries next */
    /* link thread only */
    evloop *loop;
    evloop_io io;
    int fd;
    link_state state;
    unsigned attempts;              /* connection attempts since the link was last up */
    size_t sm_at;                   /* the SM (cfg->sms) of the link, or of the next attempt */
    size_t linked_at;               /* the SM of the last link that came up (SIZE_MAX: none) */
    timer retry_timer, tick_timer;
    uint64_t last_rx, last_ping, opened_at, epoch, ping_token;
    xmlstream *xs;
    bool drop;                      /* a handshake callback wants the link closed */
    bool handshake_sent, smproto_ok;
    buf rx;
    outq sockq;
    bool write_blocked;             /* the last write to the SM could not take everything */
    server_caps *caps;              /* the SM's entity capabilities per host (link thread writes) */
    link_msg *held, **held_tail;
    size_t held_bytes;
    /* custody (docs/smproto.md §3) */
    char instance[SMPROTO_INSTANCE_MAX + 1];  /* this process's, for the SM to know it again */
    uint64_t tx_seq;                /* counted frames sent, numbered across links */
    uint64_t tx_acked;              /* of which the SM acknowledged (or had received) this many */
    uint64_t resume_after;          /* the SM's received= on the current link */
    link_msg *unacked, **unacked_tail;  /* sent, in order, until acknowledged */
    size_t unacked_bytes;
    uint64_t rx_count, rx_told;     /* counted frames from the SM on this link; acknowledged */
};

link_msg *link_msg_new(link_msg_kind kind, outq_block *blk, size_t off, size_t len)
{
    link_msg *m = mem_zalloc(sizeof *m);
    m->kind = kind;
    m->blk = blk;
    m->off = off;
    m->len = len;
    return m;
}

void link_msg_free(link_msg *m)
{
    if (!m)
        return;
    outq_block_unref(m->blk);
    free(m);
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- the IO-thread side ---------------------------------------------------------------------- */

bool link_front_io_push(link_front *lf, unsigned shard, link_msg *m)
{
    link_shard *sh = &lf->shards[shard];
    if (ring_push(&sh->to_link, m))
        return true;
    /* Ask for a wake first, then retry: the link thread may have drained the ring in between. */
    atomic_store(&sh->io_wants_room, true);
    return ring_push(&sh->to_link, m);
}

link_msg *link_front_io_pop(link_front *lf, unsigned shard)
{
    return ring_pop(&lf->shards[shard].from_link);
}

void link_front_io_pushed(link_front *lf, unsigned shard)
{
    evloop_wake(lf->loop);
}

void link_front_io_popped(link_front *lf, unsigned shard)
{
    if (atomic_exchange(&lf->shards[shard].link_wants_room, false))
        evloop_wake(lf->loop);
}

bool link_front_congested(const link_front *lf)
{
    return atomic_load_explicit(&lf->congested, memory_order_relaxed);
}

bool link_front_up(const link_front *lf)
{
    return atomic_load_explicit(&lf->up, memory_order_relaxed);
}

void link_front_get_stats(const link_front *lf, link_front_stats *out)
{
    out->connects = atomic_load_explicit(&lf->st_connects, memory_order_relaxed);
    out->disconnects = atomic_load_explicit(&lf->st_disconnects, memory_order_relaxed);
    out->frames_in = atomic_load_explicit(&lf->st_frames_in, memory_order_relaxed);
    out->frames_out = atomic_load_explicit(&lf->st_frames_out, memory_order_relaxed);
    out->bad_shard = atomic_load_explicit(&lf->st_bad_shard, memory_order_relaxed);
    out->held_bytes = atomic_load_explicit(&lf->st_held, memory_order_relaxed);
    out->ring_full = atomic_load_explicit(&lf->st_ring_full, memory_order_relaxed);
    out->resent = atomic_load_explicit(&lf->st_resent, memory_order_relaxed);
    out->switches = atomic_load_explicit(&lf->st_switches, memory_order_relaxed);
    out->sm = atomic_load_explicit(&lf->st_sm, memory_order_relaxed);
}

const front_sm_addr *link_front_sms(const link_front *lf, size_t *n)
{
    *n = lf->cfg->nsms;
    return lf->cfg->sms;
}

/* ---- to the IO threads ----------------------------------------------------------------------- */

static bool overflowing(const link_front *lf)
{
    for (unsigned i = 0; i < lf->nshards; i++)
        if (lf->shards[i].over)
            return true;
    return false;
}

static void to_shard(link_front *lf, unsigned shard, link_msg *m)
{
    link_shard *sh = &lf->shards[shard];
    sh->woken = true;
    if (!sh->over) {
        if (ring_push(&sh->from_link, m))
            return;
        /* Full: ask the IO thread to wake us when it pops, then retry (it may have popped in
         * between, and would then not know anyone waits). */
        atomic_store(&sh->link_wants_room, true);
        if (ring_push(&sh->from_link, m))
            return;
    }
    count(&lf->st_ring_full, 1);
    m->next = NULL;
    *sh->over_tail = m;
    sh->over_tail = &m->next;
}

/* Moves what waited for room into the rings; asks the IO thread for a wake where some remains. */
static void drain_overflow(link_front *lf)
{
    for (unsigned i = 0; i < lf->nshards; i++) {
        link_shard *sh = &lf->shards[i];
        while (sh->over) {
            /* Once pushed, the message is the IO thread's (it may be freed at once): read next
             * before. */
            link_msg *m = sh->over, *next = m->next;
            if (!ring_push(&sh->from_link, m)) {
                atomic_store(&sh->link_wants_room, true);
                if (!ring_push(&sh->from_link, m))
                    break;
            }
            sh->woken = true;
            sh->over = next;
        }
        if (!sh->over)
            sh->over_tail = &sh->over;
    }
}

static void wake_shards(link_front *lf)
{
    for (unsigned i = 0; i < lf->nshards; i++) {
        if (lf->shards[i].woken) {
            lf->shards[i].woken = false;
            evloop_wake(lf->shards[i].io_loop);
        }
    }
}

/* ---- the connection -------------------------------------------------------------------------- */

static void update_interest(link_front *lf);
static bool flush_socket(link_front *lf);
static void try_connect(link_front *lf);
static void take_from_shards(link_front *lf);
static void hold(link_front *lf, link_msg *m);
static void renumber_held(link_front *lf);

static void set_congested(link_front *lf)
{
    bool c = lf->state != LS_UP && lf->held_bytes >= lf->cfg->sm_hold_bytes;
    atomic_store_explicit(&lf->congested, c, memory_order_relaxed);
    atomic_store_explicit(&lf->st_held, lf->held_bytes, memory_order_relaxed);
}

/* The next attempt. Rounds of attempts (one per configured SM, in order, from the one that
 * failed: a standby is tried at once) made so far (>= 1): the first <retries> rounds come 1, 2,
 * 4 ... s apart, capped at 30 s; then one every 30 s. After a link that was up, the first attempt
 * comes 1 s later, to the same SM. */
static void schedule_retry(link_front *lf)
{
    size_t nsms = lf->cfg->nsms;
    lf->state = LS_IDLE;
    if (lf->attempts % nsms) {
        evloop_timer_after(lf->loop, &lf->retry_timer, 0);
        return;
    }
    unsigned n = lf->attempts ? lf->attempts / nsms - 1 : 0;
    uint64_t delay = n < lf->cfg->sm_retries && n < 5 ? 1000u << n : 30000;
    evloop_timer_after(lf->loop, &lf->retry_timer, delay);
}

/* An attempt on the current SM failed (no connection, no answer, a handshake refused or cut short):
 * the next attempt goes to the next SM of the configuration. A link that was up is tried again
 * first (the SM may be restarting, or only the connection was cut): moving is for an SM that is
 * gone, and a front is linked to one SM at a time. */
static void next_sm(link_front *lf)
{
    if (lf->cfg->nsms == 1)
        return;
    const front_sm_addr *was = &lf->cfg->sms[lf->sm_at];
    lf->sm_at = (lf->sm_at + 1) % lf->cfg->nsms;
    const front_sm_addr *to = &lf->cfg->sms[lf->sm_at];
    log_info("SM link: %s:%d failed; trying %s:%d (SM %zu of %zu)", was->host, was->port,
             to->host, to->port, lf->sm_at + 1, lf->cfg->nsms);
    atomic_store_explicit(&lf->st_sm, lf->sm_at, memory_order_relaxed);
}

static void link_down(link_front *lf, const char *why)
{
    const front_sm_addr *sm = &lf->cfg->sms[lf->sm_at];
    if (lf->fd >= 0) {
        evloop_io_set(lf->loop, &lf->io, 0);
        close(lf->fd);
        lf->fd = -1;
    }
    if (lf->state >= LS_RESYNC)
        log_warn("SM link: lost (%s:%d: %s); clients stay connected, retrying", sm->host,
                 sm->port, why);
    else
        log_warn("SM link: %s:%d: %s", sm->host, sm->port, why);
    if (lf->state >= LS_OPENING)
        count(&lf->st_disconnects, 1);
    /* What the SM did not acknowledge is held again, before what was held meanwhile: the next
     * link sends it again unless the SM says it has it. */
    if (lf->unacked) {
        log_info("SM link: %zu bytes sent but not acknowledged are held for the next link",
                 lf->unacked_bytes);
        *lf->unacked_tail = lf->held;
        if (!lf->held)
            lf->held_tail = lf->unacked_tail;
        lf->held = lf->unacked;
        lf->held_bytes += lf->unacked_bytes;
        lf->unacked = NULL;
        lf->unacked_tail = &lf->unacked;
        lf->unacked_bytes = 0;
    }
    lf->rx_count = lf->rx_told = 0;
    outq_free(&lf->sockq);
    lf->write_blocked = false;
    buf_free(&lf->rx);
    atomic_store(&lf->up, false);
    lf->epoch++;
    if (lf->state < LS_RESYNC)
        next_sm(lf);
    schedule_retry(lf);
    set_congested(lf);
}

static void on_sm_header(void *ctx, const xml_node *root, const char *content_ns)
{
    link_front *lf = ctx;
    const char *id = xml_attr_get(root, "id");
    if (strcmp(content_ns, SMPROTO_NS_ACCEPT) != 0 || !id || !*id) {
        log_error("SM link: the SM's stream header has no id or a wrong namespace");
        lf->drop = true;
        xmlstream_stop(lf->xs);
        return;
    }
    char digest[SMPROTO_DIGEST_LEN + 1];
    smproto_handshake_digest(id, lf->cfg->sm_secret, digest);
    buf b = BUF_INIT;
    buf_appendf(&b, "<handshake>%s</handshake>", digest);
    outq_push_bytes(&lf->sockq, buf_data(&b), buf_len(&b));
    buf_free(&b);
    lf->handshake_sent = true;
}

static void on_sm_element(void *ctx, xml_node *el, xml_arena *arena)
{
    link_front *lf = ctx;
    if (xml_is(el, SMPROTO_NS_ACCEPT, "handshake") && lf->handshake_sent) {
        buf b = BUF_INIT;
        buf_appendf(&b, "<smproto xmlns='%s' version='%d' instance='%s' acked='%llu'/>",
                    SMPROTO_NS, SMPROTO_VERSION, lf->instance, (unsigned long long)lf->tx_acked);
        outq_push_bytes(&lf->sockq, buf_data(&b), buf_len(&b));
        buf_free(&b);
    } else if (xml_is(el, SMPROTO_NS, "smproto")) {
        const char *v = xml_attr_get(el, "version"), *received = xml_attr_get(el, "received");
        char *end = NULL;
        unsigned long long r = received && *received >= '0' && *received <= '9'
                                   ? strtoull(received, &end, 10) : 0;
        if (smproto_version_is_ours(v) && end && !*end && r >= lf->tx_acked && r <= lf->tx_seq) {
            lf->smproto_ok = true;
            /* Frames (acked, r] stay ours until acknowledged, without being sent again. */
            lf->resume_after = lf->tx_seq = r;
            renumber_held(lf);
        } else if (smproto_version_is_ours(v)) {
            log_error("SM link: the SM says it received %s of our frames; we sent %llu of which "
                      "%llu were acknowledged", received ? received : "(nothing)",
                      (unsigned long long)lf->tx_seq, (unsigned long long)lf->tx_acked);
            lf->drop = true;
        } else {
            log_error("SM link: the SM offers smproto version %s, we speak %d", v ? v : "(none)",
                      SMPROTO_VERSION);
            lf->drop = true;
        }
        xmlstream_stop(lf->xs);
    } else if (xml_is(el, XML_NS_STREAMS, "error")) {
        xml_node *cond = xml_child(el, XML_NS_STREAM_ERRORS, NULL);
        while (cond && strcmp(cond->name, "text") == 0)
            cond = xml_next(cond, XML_NS_STREAM_ERRORS, NULL);
        log_error("SM link: the SM refused us: <%s/>%s", cond ? cond->name : "?",
                  cond && strcmp(cond->name, "not-authorized") == 0
                      ? " (check <sm><id> and <secret> against the SM's <service>)" : "");
        lf->drop = true;
        xmlstream_stop(lf->xs);
    }
    xml_arena_free(arena);
}

static void on_sm_close(void *ctx)
{
    link_front *lf = ctx;
    lf->drop = true;
}

/* ---- custody ---------------------------------------------------------------------------------- */

static const uint8_t *msg_data(const link_msg *m)
{
    return (const uint8_t *)outq_block_data(m->blk) + m->off;
}

/* Calls fn for each frame of m (whole frames, as the IO threads and the resync produce them). */
#define FOR_EACH_FRAME(m, f, at)                                                                  \
    for (size_t at = 0, n_ = 0; at < (m)->len; at += n_)                                         \
        if (smproto_frame_next(msg_data(m) + at, (m)->len - at, &(f), &n_) != SMPROTO_FRAME_OK) { \
            break;                                                                                \
        } else

static uint64_t counted_frames(const link_msg *m)
{
    uint64_t n = 0;
    smproto_frame f;
    FOR_EACH_FRAME(m, f, at)
        n += smproto_counted(f.type);
    return n;
}

/* Writes m to the link; what it holds of counted frames stays ours until the SM acknowledges. */
static void send_msg(link_front *lf, link_msg *m)
{
    uint64_t n = m->len ? counted_frames(m) : 0;
    if (m->len)
        outq_push_block(&lf->sockq, m->blk, m->off, m->len);
    if (!n) {
        link_msg_free(m);
        return;
    }
    lf->tx_seq += n;
    m->last_seq = lf->tx_seq;
    m->next = NULL;
    *lf->unacked_tail = m;
    lf->unacked_tail = &m->next;
    lf->unacked_bytes += m->len;
}

/* The SM acknowledged our first n counted frames. */
static bool on_ack(link_front *lf, uint64_t n)
{
    if (n < lf->tx_acked || n > lf->tx_seq)
        return false;
    lf->tx_acked = n;
    while (lf->unacked && lf->unacked->last_seq <= n) {
        link_msg *m = lf->unacked;
        lf->unacked = m->next;
        lf->unacked_bytes -= m->len;
        link_msg_free(m);
    }
    if (!lf->unacked)
        lf->unacked_tail = &lf->unacked;
    return true;
}

/* m was sent on an earlier link (m->last_seq): of its counted frames, those the SM acknowledged
 * are dropped, those it says it received on the new link's handshake (up to resume_after) stay
 * ours without being sent again (the SM finishes them and acknowledges them in the old numbering,
 * which the new link continues; if it dies first, the next link sends them), and the rest come
 * back as a message not sent yet (NULL when none), numbered when it is sent. Its other frames
 * (an earlier link's RESYNC) are dropped. m is freed. */
static link_msg *unsent_part(link_front *lf, link_msg *m)
{
    uint64_t seq = m->last_seq - counted_frames(m), retained_last = 0, resent = 0;
    buf rest = BUF_INIT, retain = BUF_INIT;
    smproto_frame f;
    FOR_EACH_FRAME(m, f, at) {
        if (!smproto_counted(f.type) || ++seq <= lf->tx_acked)
            continue;
        if (seq <= lf->resume_after) {
            buf_append(&retain, msg_data(m) + at, SMPROTO_HEADER + f.len);
            retained_last = seq;
        } else {
            buf_append(&rest, msg_data(m) + at, SMPROTO_HEADER + f.len);
            resent++;
        }
    }
    count(&lf->st_resent, resent);
    if (retained_last) {
        size_t len = buf_len(&retain);
        link_msg *r = link_msg_new(LINK_MSG_FRAMES, outq_block_from_buf(&retain), 0, len);
        r->last_seq = retained_last;
        *lf->unacked_tail = r;
        lf->unacked_tail = &r->next;
        lf->unacked_bytes += len;
    }
    buf_free(&retain);
    link_msg *u = NULL;
    if (buf_len(&rest)) {
        size_t len = buf_len(&rest);
        u = link_msg_new(LINK_MSG_FRAMES, outq_block_from_buf(&rest), 0, len);
        u->epoch = m->epoch;
    }
    buf_free(&rest);
    link_msg_free(m);
    return u;
}

/* The SM has said, in the new link's handshake, which of our frames it received: before anything
 * is sent on that link (whose numbers continue from resume_after), the held frames an earlier link
 * sent are sorted out (unsent_part). Left to later, an acknowledgement in the new numbering (of
 * the resync's frames, sent before the held ones) would be taken for one of those old frames,
 * which would then never be sent again. */
static void renumber_held(link_front *lf)
{
    link_msg *list = lf->held;
    lf->held = NULL;
    lf->held_tail = &lf->held;
    lf->held_bytes = 0;
    while (list) {
        link_msg *m = list;
        list = m->next;
        m->next = NULL;
        if (!m->last_seq || (m = unsent_part(lf, m)))
            hold(lf, m);
    }
    set_congested(lf);
}

/* A held message (not sent yet: renumber_held), sent on the new link once its resync is done.
 * Dropped from it: logins and binds made before the IO thread answered this link's resync (it
 * asked them again there). */
static void resend_held(link_front *lf, link_msg *m)
{
    bool stale_requests = m->epoch < lf->epoch;
    buf keep = BUF_INIT;
    uint64_t kept_frames = 0, frames = 0;
    smproto_frame f;
    FOR_EACH_FRAME(m, f, at) {
        frames++;
        if (!smproto_counted(f.type) ||
            (stale_requests && (f.type == SMPROTO_AUTH_QUERY || f.type == SMPROTO_BIND)))
            continue;
        kept_frames++;
        buf_append(&keep, msg_data(m) + at, SMPROTO_HEADER + f.len);
    }
    if (kept_frames == frames) {
        buf_free(&keep);
        send_msg(lf, m);
        return;
    }
    size_t len = buf_len(&keep);
    link_msg *kept = link_msg_new(LINK_MSG_FRAMES, len ? outq_block_from_buf(&keep) : NULL, 0, len);
    buf_free(&keep);
    link_msg_free(m);
    send_msg(lf, kept);
}

static void start_resync(link_front *lf)
{
    const front_config *cfg = lf->cfg;
    const front_sm_addr *sm = &cfg->sms[lf->sm_at];
    lf->state = LS_RESYNC;
    lf->attempts = 0;
    count(&lf->st_connects, 1);
    /* The first link has no sessions to re-announce: say so only when it is a reconnection. */
    bool again = atomic_load_explicit(&lf->st_connects, memory_order_relaxed) > 1;
    char which[48] = "";
    if (cfg->nsms > 1)
        snprintf(which, sizeof which, ", SM %zu of %zu", lf->sm_at + 1, cfg->nsms);
    log_notice("SM link: up (%s:%d%s, id %s)%s", sm->host, sm->port, which, cfg->sm_id,
               again ? "; re-announcing sessions" : "");
    if (lf->linked_at != SIZE_MAX && lf->linked_at != lf->sm_at) {
        /* Another SM process: to it this is an SM restart (docs/smproto.md §5). */
        const front_sm_addr *was = &cfg->sms[lf->linked_at];
        log_notice("SM link: switched from the SM at %s:%d to the SM at %s:%d; its sessions are "
                   "re-announced to it, and the link stays there until it fails", was->host,
                   was->port, sm->host, sm->port);
        count(&lf->st_switches, 1);
    }
    lf->linked_at = lf->sm_at;
    for (unsigned i = 0; i < lf->nshards; i++) {
        lf->shards[i].resynced = false;
        link_msg *m = link_msg_new(LINK_MSG_RESYNC_ASK, NULL, 0, 0);
        m->epoch = lf->epoch;
        to_shard(lf, i, m);
    }
    wake_shards(lf);
}

static void finish_resync(link_front *lf)
{
    for (unsigned i = 0; i < lf->nshards; i++)
        if (!lf->shards[i].resynced)
            return;
    buf b = BUF_INIT;
    size_t start = smproto_resync_begin(&b);
    smproto_resync_end(&b, start);
    outq_push_bytes(&lf->sockq, buf_data(&b), buf_len(&b));
    buf_free(&b);
    size_t n = 0;
    while (lf->held) {
        link_msg *m = lf->held;
        lf->held = m->next;
        n += m->len;
        resend_held(lf, m);
    }
    lf->held_tail = &lf->held;
    lf->held_bytes = 0;
    if (atomic_load_explicit(&lf->st_connects, memory_order_relaxed) > 1 || n)
        log_notice("SM link: resync done; %zu bytes held while the link was down sent", n);
    lf->state = LS_UP;
    atomic_store(&lf->up, true);
    set_congested(lf);
}

/* A batch of frames from the socket: one copy into a shared block, then one message per frame. */
/* A MODULE frame for connection 0: a message to the front itself. "caps": the server's entity
 * capabilities per host (shard/server_caps.h); others are not this front's. */
static void on_link_module(link_front *lf, const smproto_frame *f)
{
    const char *name;
    size_t nlen, len;
    const uint8_t *body;
    if (!smproto_get_module(f, &name, &nlen, &body, &len) ||
        nlen != strlen(CAPS_MSG_MODULE) || memcmp(name, CAPS_MSG_MODULE, nlen) != 0)
        return;
    if (!server_caps_update(lf->caps, body, len))
        log_notice("SM link: a malformed entity capabilities announcement: ignored");
}

static void read_frames(link_front *lf)
{
    const uint8_t *data = (const uint8_t *)buf_data(&lf->rx);
    size_t len = buf_len(&lf->rx), used = 0;
    for (;;) {
        smproto_frame f;
        size_t n;
        smproto_frame_status st = smproto_frame_next(data + used, len - used, &f, &n);
        if (st == SMPROTO_FRAME_PARTIAL)
            break;
        if (st == SMPROTO_FRAME_BAD) {
            link_down(lf, "protocol error: a malformed frame from the SM");
            return;
        }
        used += n;
    }
    if (!used)
        return;
    outq_block *blk = outq_block_copy(data, used);
    const uint8_t *bd = (const uint8_t *)outq_block_data(blk);
    size_t off = 0;
    uint64_t frames = 0;
    bool acks = false;
    while (off < used) {
        smproto_frame f;
        size_t n;
        smproto_frame_next(bd + off, used - off, &f, &n);
        frames++;
        lf->rx_count += smproto_counted(f.type);
        if (f.type == SMPROTO_PING) {
            uint64_t token;
            if (smproto_get_ping(&f, &token)) {
                buf b = BUF_INIT;
                smproto_put_ping(&b, SMPROTO_PONG, token);
                outq_push_bytes(&lf->sockq, buf_data(&b), buf_len(&b));
                buf_free(&b);
            }
        } else if (f.type == SMPROTO_ACK) {
            uint64_t acked;
            acks = true;
            if (!smproto_get_ack(&f, &acked) || !on_ack(lf, acked)) {
                outq_block_unref(blk);
                link_down(lf, "protocol error: a bad ACK from the SM");
                return;
            }
        } else if (f.type == SMPROTO_PONG) {
            /* last_rx already moved */
        } else if (f.type == SMPROTO_MODULE && f.sid == 0) {
            on_link_module(lf, &f);
        } else if (smproto_sid_shard(f.sid) >= lf->nshards) {
            count(&lf->st_bad_shard, 1);
        } else {
            to_shard(lf, smproto_sid_shard(f.sid),
                     link_msg_new(LINK_MSG_FRAMES, outq_block_ref(blk), off, n));
        }
        off += n;
    }
    outq_block_unref(blk);
    buf_consume(&lf->rx, used);
    count(&lf->st_frames_in, frames);
    /* An ACK may have made room under the hold bound: take what the IO threads queued. */
    if (acks)
        take_from_shards(lf);
    /* What we took is ours now (the IO threads deliver it or hand it back): tell the SM. */
    if (lf->rx_count != lf->rx_told) {
        buf b = BUF_INIT;
        smproto_put_ack(&b, lf->rx_count);
        outq_push_bytes(&lf->sockq, buf_data(&b), buf_len(&b));
        buf_free(&b);
        lf->rx_told = lf->rx_count;
    }
    wake_shards(lf);
}

static void on_readable(link_front *lf)
{
    for (int rounds = 0; rounds < 8 && lf->fd >= 0 && !overflowing(lf); rounds++) {
        char *into = buf_reserve(&lf->rx, LINK_READ_CHUNK);
        ssize_t r = read(lf->fd, into, buf_avail(&lf->rx));
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            link_down(lf, r == 0 ? "the SM closed the connection" : strerror(errno));
            return;
        }
        buf_commit(&lf->rx, (size_t)r);
        lf->last_rx = evloop_now(lf->loop);
        if (lf->state == LS_OPENING) {
            size_t used = 0;
            xmlstream_status st = xmlstream_feed(lf->xs, buf_data(&lf->rx), buf_len(&lf->rx), &used);
            buf_consume(&lf->rx, used);
            if (st == XMLSTREAM_FAILED) {
                link_down(lf, xmlstream_get_error(lf->xs)->text);
                return;
            }
            if (lf->drop || st == XMLSTREAM_CLOSED) {
                link_down(lf, "the SM ended the stream during the handshake");
                return;
            }
            if (st != XMLSTREAM_STOPPED || !lf->smproto_ok)
                continue;
            start_resync(lf);
        }
        read_frames(lf);
    }
}

static void on_io(evloop *loop, evloop_io *io, unsigned events, void *arg)
{
    link_front *lf = arg;
    if (lf->state == LS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(lf->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err) {
            link_down(lf, strerror(err));
            return;
        }
        lf->state = LS_OPENING;
        lf->opened_at = lf->last_rx = evloop_now(loop);
        xmlstream_reset(lf->xs);
        lf->drop = lf->handshake_sent = lf->smproto_ok = false;
        buf b = BUF_INIT;
        xml_stream_attrs a = {.content_ns = SMPROTO_NS_ACCEPT, .to = lf->cfg->sm_id};
        xml_write_stream_open(&b, &a);
        outq_push_bytes(&lf->sockq, buf_data(&b), buf_len(&b));
        buf_free(&b);
        update_interest(lf);
        return;
    }
    if (events & EVLOOP_READ)
        on_readable(lf);
    if (lf->fd >= 0 && (events & EVLOOP_WRITE) && !outq_empty(&lf->sockq))
        flush_socket(lf);
    if (lf->fd >= 0)
        update_interest(lf);
}

/* Writes what the socket takes; false when the link went down. */
static bool flush_socket(link_front *lf)
{
    outq_status st = outq_flush_socket(&lf->sockq, lf->fd);
    if (st == OUTQ_ERROR) {
        link_down(lf, strerror(errno));
        return false;
    }
    lf->write_blocked = st == OUTQ_BLOCKED;
    return true;
}

static void update_interest(link_front *lf)
{
    if (lf->fd < 0 || lf->state == LS_CONNECTING)
        return;
    unsigned want = overflowing(lf) ? 0 : EVLOOP_READ;
    /* What is queued is written before the loop sleeps (before_sleep); writability is only worth
     * watching once a write could not finish. */
    if (lf->write_blocked && !outq_empty(&lf->sockq))
        want |= EVLOOP_WRITE;
    if (want != evloop_io_interest(&lf->io) && evloop_io_set(lf->loop, &lf->io, want) != 0)
        link_down(lf, strerror(errno));
}

static void try_connect(link_front *lf)
{
    const front_sm_addr *sm = &lf->cfg->sms[lf->sm_at];
    lf->attempts++;
    char port[16];
    snprintf(port, sizeof port, "%d", sm->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(sm->host, port, &hints, &res);
    if (gai != 0) {
        link_down(lf, gai_strerror(gai));
        return;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        link_down(lf, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = connect(fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    freeaddrinfo(res);
    lf->fd = fd;
    if (r != 0 && err != EINPROGRESS) {
        lf->state = LS_CONNECTING;
        link_down(lf, strerror(err));
        return;
    }
    lf->state = LS_CONNECTING;
    lf->opened_at = evloop_now(lf->loop);
    evloop_io_init(&lf->io, fd, on_io, lf);
    if (evloop_io_set(lf->loop, &lf->io, EVLOOP_WRITE) != 0)
        link_down(lf, strerror(errno));
}

static void on_retry(timer *t, void *arg)
{
    link_front *lf = arg;
    try_connect(lf);
}

static void on_tick(timer *t, void *arg)
{
    link_front *lf = arg;
    uint64_t now = evloop_now(lf->loop);
    evloop_timer_after(lf->loop, &lf->tick_timer, LINK_TICK_MS);
    if (lf->state == LS_CONNECTING || lf->state == LS_OPENING) {
        if (now - lf->opened_at > LINK_OPEN_TIMEOUT_MS)
            link_down(lf, "no answer from the SM");
        return;
    }
    if (lf->state < LS_RESYNC)
        return;
    if (now - lf->last_rx >= LINK_DEAD_AFTER_MS) {
        link_down(lf, "no traffic from the SM for 90 s");
        return;
    }
    if (now - lf->last_rx >= LINK_PING_AFTER_MS && now - lf->last_ping >= LINK_PING_AFTER_MS) {
        buf b = BUF_INIT;
        smproto_put_ping(&b, SMPROTO_PING, ++lf->ping_token);
        outq_push_bytes(&lf->sockq, buf_data(&b), buf_len(&b));
        buf_free(&b);
        lf->last_ping = now;
        update_interest(lf);
    }
}

/* ---- from the IO threads --------------------------------------------------------------------- */

static void hold(link_front *lf, link_msg *m)
{
    m->next = NULL;
    *lf->held_tail = m;
    lf->held_tail = &m->next;
    lf->held_bytes += m->len;
}

static void from_shard(link_front *lf, unsigned shard, link_msg *m)
{
    switch (m->kind) {
    case LINK_MSG_FRAMES:
        if (lf->state == LS_UP)
            send_msg(lf, m);
        else
            hold(lf, m);
        break;
    case LINK_MSG_RESYNC:
        if (lf->state == LS_RESYNC && m->epoch == lf->epoch && !lf->shards[shard].resynced) {
            lf->shards[shard].resynced = true;
            send_msg(lf, m);
            finish_resync(lf);
        } else {
            link_msg_free(m);
        }
        break;
    default:
        link_msg_free(m);
        break;
    }
}

static void take_from_shards(link_front *lf)
{
    for (unsigned i = 0; i < lf->nshards; i++) {
        link_shard *sh = &lf->shards[i];
        link_msg *m;
        /* Past cfg->link_queue_bytes unwritten to the SM, or the hold's worth not acknowledged
         * by it, stop taking: the rings fill and the IO threads stop reading their clients. */
        while (outq_bytes(&lf->sockq) < lf->cfg->link_queue_bytes &&
               lf->unacked_bytes < lf->cfg->sm_hold_bytes && (m = ring_pop(&sh->to_link))) {
            if (m->kind == LINK_MSG_FRAMES)
                count(&lf->st_frames_out, 1);
            from_shard(lf, i, m);
        }
        if (atomic_exchange(&sh->io_wants_room, false))
            evloop_wake(sh->io_loop);
    }
    set_congested(lf);
}

static void stop_now(link_front *lf)
{
    take_from_shards(lf);
    if (lf->fd >= 0 && lf->state == LS_UP) {
        uint64_t deadline = timer_now_ms() + LINK_STOP_FLUSH_MS;
        while (!outq_empty(&lf->sockq) && timer_now_ms() < deadline) {
            if (outq_flush_socket(&lf->sockq, lf->fd) != OUTQ_BLOCKED)
                break;
            struct pollfd p = {.fd = lf->fd, .events = POLLOUT};
            poll(&p, 1, 100);
        }
    }
    if (lf->fd >= 0) {
        evloop_io_set(lf->loop, &lf->io, 0);
        close(lf->fd);
        lf->fd = -1;
    }
    evloop_timer_cancel(lf->loop, &lf->retry_timer);
    evloop_timer_cancel(lf->loop, &lf->tick_timer);
    evloop_stop(lf->loop);
}

static void on_wake(evloop *loop, void *arg)
{
    link_front *lf = arg;
    if (atomic_load(&lf->stopping)) {
        stop_now(lf);
        return;
    }
    drain_overflow(lf);
    wake_shards(lf);
    take_from_shards(lf);
    if (lf->fd >= 0 && lf->state >= LS_OPENING && !overflowing(lf) && buf_len(&lf->rx))
        read_frames(lf);
    update_interest(lf);
}

static void before_sleep(evloop *loop, void *arg)
{
    link_front *lf = arg;
    if (lf->fd >= 0 && lf->state >= LS_OPENING && !outq_empty(&lf->sockq)) {
        if (!flush_socket(lf))
            return;
        /* Room in the socket queue again: take what the IO threads queued meanwhile. */
        if (outq_bytes(&lf->sockq) < lf->cfg->link_queue_bytes / 2)
            take_from_shards(lf);
    }
    update_interest(lf);
}

static void *link_main(void *arg)
{
    link_front *lf = arg;
    evloop_on_wake(lf->loop, on_wake, lf);
    evloop_before_sleep(lf->loop, before_sleep, lf);
    log_info("SM link: connecting to %s:%d as %s%s", lf->cfg->sms[0].host, lf->cfg->sms[0].port,
             lf->cfg->sm_id, lf->cfg->nsms > 1 ? " (then its standbys, in order, if it fails)" : "");
    evloop_timer_after(lf->loop, &lf->tick_timer, LINK_TICK_MS);
    try_connect(lf);
    evloop_run(lf->loop);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

const server_caps *link_front_caps(const link_front *lf) { return lf->caps; }

link_front *link_front_new(const front_config *cfg, unsigned nshards)
{
    link_front *lf = mem_zalloc(sizeof *lf);
    lf->cfg = cfg;
    lf->nshards = nshards;
    lf->shards = mem_array(nshards, sizeof *lf->shards);
    for (unsigned i = 0; i < nshards; i++) {
        ring_init(&lf->shards[i].to_link, cfg->ring_size);
        ring_init(&lf->shards[i].from_link, cfg->ring_size);
        lf->shards[i].over_tail = &lf->shards[i].over;
    }
    lf->fd = -1;
    lf->linked_at = SIZE_MAX;
    lf->caps = server_caps_new();
    lf->held_tail = &lf->held;
    lf->unacked_tail = &lf->unacked;
    lf->epoch = 1;
    uint64_t inst = random_u64();
    snprintf(lf->instance, sizeof lf->instance, "%016llx", (unsigned long long)inst);
    timer_init(&lf->retry_timer, on_retry, lf);
    timer_init(&lf->tick_timer, on_tick, lf);
    xmlstream_handlers h = {.header = on_sm_header, .stanza = on_sm_element, .close = on_sm_close};
    lf->xs = xmlstream_new(&h, lf, NULL);
    lf->loop = evloop_create();
    if (!lf->loop) {
        log_error("SM link: cannot create an event loop: %s", strerror(errno));
        abort();
    }
    return lf;
}

void link_front_attach(link_front *lf, unsigned shard, evloop *io_loop)
{
    lf->shards[shard].io_loop = io_loop;
}

int link_front_start(link_front *lf)
{
    int r = pthread_create(&lf->thread, NULL, link_main, lf);
    if (r != 0) {
        errno = r;
        return -1;
    }
    lf->started = true;
    return 0;
}

void link_front_stop(link_front *lf)
{
    if (!lf->started)
        return;
    atomic_store(&lf->stopping, true);
    evloop_wake(lf->loop);
    pthread_join(lf->thread, NULL);
    lf->started = false;
}

void link_front_free(link_front *lf)
{
    if (!lf)
        return;
    server_caps_free(lf->caps);
    for (unsigned i = 0; i < lf->nshards; i++) {
        link_shard *sh = &lf->shards[i];
        link_msg *m;
        while ((m = ring_pop(&sh->to_link)))
            link_msg_free(m);
        while ((m = ring_pop(&sh->from_link)))
            link_msg_free(m);
        while (sh->over) {
            m = sh->over;
            sh->over = m->next;
            link_msg_free(m);
        }
        ring_destroy(&sh->to_link);
        ring_destroy(&sh->from_link);
    }
    while (lf->held) {
        link_msg *m = lf->held;
        lf->held = m->next;
        link_msg_free(m);
    }
    while (lf->unacked) {
        link_msg *m = lf->unacked;
        lf->unacked = m->next;
        link_msg_free(m);
    }
    if (lf->fd >= 0)
        close(lf->fd);
    outq_free(&lf->sockq);
    buf_free(&lf->rx);
    xmlstream_free(lf->xs);
    evloop_destroy(lf->loop);
    free(lf->shards);
    free(lf);
}
