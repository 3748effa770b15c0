/* shard/io_conn.h — inside the IO threads (shard/iothread.h): a client connection, a listener
 * and a thread as shard/iothread.c keeps them, for the files that share that work:
 * shard/iothread.c (threads, listeners, sockets, TLS, timers, the XMPP stream's connection) and
 * shard/io_web.c (what differs on the web listener: HTTP requests, WebSocket framing, files
 * sent in pieces). Nothing outside the IO layer includes it.
 *
 * Thread rules: everything here belongs to its IO thread (iothread.h says what else may touch an
 * iothread, through its functions only).
 */
#ifndef JABSHARD_SHARD_IO_CONN_H
#define JABSHARD_SHARD_IO_CONN_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/evloop.h"
#include "core/outq.h"
#include "core/timer.h"
#include "core/tls.h"
#include "shard/bosh.h"
#include "shard/c2s_stream.h"
#include "shard/csi.h"
#include "shard/dup_filter.h"
#include "shard/iothread.h"
#include "shard/web_conn.h"
#include "shard/websocket.h"
#include "shard/xmpp_framing.h"

#define IO_READ_CHUNK 16384
/* Bytes one connection may read per readiness event: a client that writes faster than it is
 * parsed must not keep the thread inside its read loop, away from every other connection and
 * from the frames waiting for the link (level-triggered epoll reports the rest next time). */
#define IO_READ_BUDGET (4 * IO_READ_CHUNK)
#define IO_ACCEPT_BATCH 64
#define IO_CLOSE_GRACE_MS 5000
/* After our closing tag is written: what the client still sends (a client answering an <r/> it
 * read after its own </stream:stream>, as libstrophe does) is read and dropped for this long, or
 * until it closes, so that its last writes meet an open socket rather than a reset (the
 * "lingering close" of HTTP servers). */
#define IO_LINGER_MS 2000
/* After the link to the SM came back, a stanza this thread delivered lately to the same session
 * is not delivered again for this long (shard/dup_filter.h: a restarted SM routes again what the
 * fronts sent it and its predecessor had not acknowledged). */
#define IO_DUP_WINDOW_MS 10000
#define IO_SHUTDOWN_GRACE_MS 1000
/* A connection silent this long gives back its parser and empty buffers (an idle session then
 * costs its conn, its stream's state and the kernel's socket buffers; TLS releases its record
 * buffers by itself, SSL_MODE_RELEASE_BUFFERS). */
#define IO_SHRINK_AFTER_MS 5000
/* Parser memory freed by shrinks and closes goes back to the system this long after (core/xmlmem:
 * what new logins take again in the meantime costs no system call). */
#define IO_TRIM_AFTER_MS 1000
/* A file served to a web client is read into its queue in pieces of this size, while the queue
 * holds less than IO_WEB_QUEUED. */
#define IO_WEB_PIECE 65536
#define IO_WEB_QUEUED (4 * IO_WEB_PIECE)

typedef struct conn conn;

/* A stanza from the SM on a bound connection's queue that is not yet wholly written: what goes
 * back to the SM (UNDELIVERED) if the connection ends before any of its bytes is written. */
typedef struct conn_stanza {
    outq_block *blk;           /* a reference of its own */
    size_t off, len;
    uint64_t start;            /* where its first byte is in everything ever queued on q */
    size_t wire;               /* its bytes on q (len, or more with a WebSocket's framing) */
} conn_stanza;

/* One client connection; every field belongs to its IO thread. */
struct conn {
    iothread *t;
    uint32_t slot;
    uint64_t sid;
    int fd;
    evloop_io io;
    SSL *ssl;
    bool handshaking;          /* TLS handshake in progress (direct TLS or after STARTTLS) */
    unsigned hs_want;          /* readiness the handshake waits for */
    bool starttls_flush;       /* <proceed/> must reach the socket before the handshake starts */
    bool write_wants_read;     /* a TLS write asked for readability */
    bool file_wait;            /* a file's sendfile found the socket full: wait for writability */
    bool closing;              /* flush, then close */
    bool dead;                 /* out of the loop; freed in before_sleep */
    bool dirty;                /* on the thread's flush list */
    bool rate_wait;            /* out of read tokens until bps_timer */
    bool rate_logged;          /* the first pause for max_bps was logged (one line a connection) */
    bool trusted;              /* the address is in <limits><trusted>: no per-address limits */
    bool pinged;               /* a whitespace ping went out after idle_timeout */
    bool lingering;            /* all written and half-closed: reading only to drop (conn_linger) */
    bool shrunk;               /* shrink_timer fired on an idle connection and is not armed */
    bool counted_authed;       /* counted in st_authed_now */
    bool held;                 /* an authentication outcome waits out auth_delay: no reads, no
                                * writes until hold_timer */
    bool backlogged;           /* on the thread's backlog: TLS holds decrypted bytes epoll cannot
                                * see, left when the read budget ran out */
    c2s_stream *stream;        /* NULL until a direct-TLS handshake is done, and while web */
    /* A connection to the web listener (shard/web_conn.h) is web until a WebSocket upgrade
     * makes it ws: then its stream's elements travel in WebSocket messages. */
    web_conn *web;
    websocket *ws;
    bool web_secure;           /* TLS, or a plain connection from <http><secure_from> */
    buf web_rest;              /* what the client sent while a file was being sent to it, or
                                * while its BOSH request waited for the answer */
    uint64_t bosh_session;     /* a web connection waiting for a BOSH answer: the session's sid */
    /* A BOSH session (shard/io_bosh.c) is a connection without a socket (fd -1): its stream's
     * input comes in the bodies of requests on web connections, of this thread or another,
     * and its output goes in their answers. */
    bosh *bosh;
    timer bosh_timer;          /* bosh_tick's next time */
    outq q;
    uint64_t written;          /* bytes of q written so far */
    bool tls_retry;            /* the TLS writer is waiting to finish a record: it holds the bytes
                                * at q's head (some may be on the wire already) */
    conn_stanza *stanzas;      /* [stanzas_head, nstanzas): oldest first */
    uint32_t stanzas_head, nstanzas, stanzas_cap;
    csi *csi;                  /* XEP-0352: what is held back while the client is inactive (made
                                * the first time it is); held stanzas come after all of q's */
    int64_t tokens;            /* max_bps token bucket, bps_burst deep */
    uint64_t refilled, last_rx;
    uint64_t drain_mark;       /* conn_progress when drain_timer was last armed */
    timer auth_timer, idle_timer, bps_timer, close_timer, shrink_timer, hold_timer, drain_timer;
    timer csi_timer;           /* csi max_hold, armed when the first stanza is held */
    /* XEP-0198: on the thread's ack_due list since ack_since (ms), when the stream has output
     * not yet asked to be acknowledged (c2s_stream_ack_due); the thread's tick asks for it. */
    bool ack_listed;
    uint64_t ack_since;
    conn *ack_prev, *ack_next;
    conn *next_dirty, *next_dead, *next_backlog;
    struct sockaddr_storage addr;
    char peer[INET6_ADDRSTRLEN + 8];
};

typedef struct listener {
    iothread *t;
    int fd;
    bool tls;
    bool web;                  /* <http>'s: connections start as HTTP (shard/web_conn.h) */
    evloop_io io;
} listener;

/* A message between IO threads (shard/io_bosh.c): a BOSH request for a session another thread
 * owns, an answer for a request another thread's connection holds, a request's connection gone. */
typedef struct io_mail {
    struct io_mail *next;
    enum { IO_MAIL_BOSH_REQUEST, IO_MAIL_BOSH_ANSWER, IO_MAIL_BOSH_GONE } kind;
    uint64_t session;          /* the BOSH session's connection sid (REQUEST, GONE) */
    uint64_t req;              /* the requesting web connection's sid (its thread is in it) */
    int status;                /* ANSWER: the HTTP status */
    bool secure;               /* REQUEST: the web connection's web_secure */
    buf body;                  /* REQUEST: the POSTed body; ANSWER: the answer's */
} io_mail;

struct iothread {
    const iothread_shared *sh;
    const front_config *cfg;
    unsigned index;
    evloop *loop;
    c2s_env env;
    c2s_env web_env;           /* env for WebSocket streams: no STARTTLS inside a WebSocket */
    buf scratch;               /* a web connection's answers and stream bytes, in passing */
    const front_limits *lim;   /* the limits in force (a SIGHUP publishes new ones: limits_now) */
    ip_rate conn_rate, auth_rate, reg_rate;   /* the per-address buckets' shapes, from lim */
    listener plain, tls, http, https;
    conn **slots;              /* the shard: nslots (a prime) entries */
    uint32_t nslots, nfree, *free_stack, *gen;
    buf tx;                    /* frames for the link, sent once per iteration */
    link_msg *over, **over_tail;  /* ring messages the link ring had no room for */
    bool paused;               /* over is not empty: no connection reads */
    bool pushed;               /* queued for the link since its last wake */
    uint64_t link_epoch;       /* the SM connection of the last resync asked: tags what we send */
    conn *dirty, *dead;
    conn *backlog;             /* connections to read again at once (see conn.backlogged) */
    timer shutdown_timer;
    timer trim_timer;          /* armed when parser memory was freed */
    conn *ack_due, *ack_tail;  /* connections whose stream waits for a timed <r/>, oldest first */
    timer ack_tick;            /* one for all of them, armed while the list is not empty */
    bool shutting_down;
    atomic_bool shutdown_asked;
    pthread_mutex_t done_lock;
    verify_job *done;          /* guarded by done_lock: finished PLAIN checks */
    pthread_t thread;
    bool started;
    _Atomic uint64_t st_accepted, st_refused, st_refused_rate, st_delayed, st_stale, st_overflows,
        st_pauses, st_duplicates;
    /* The metrics endpoint's (shard/front_metrics.c): connections closed, streams authenticated
     * now, logins, failed logins by mechanism and reason, client stanzas in and out, bytes. */
    _Atomic uint64_t st_closed, st_authed_now, st_logins, st_stanzas_in, st_stanzas_out,
        st_bytes_in, st_bytes_out;
    _Atomic uint64_t st_auth_failed[IOTHREAD_MECHS][IOTHREAD_AUTH_REASONS];
    _Atomic uint64_t st_ws_opened, st_ws_closed, st_bosh_opened, st_bosh_closed;
    /* The stanza path's counts of this iteration, published to the st_ counters before the
     * loop sleeps (publish_counts): nothing shared is written per stanza. */
    uint64_t n_stanzas_in, n_stanzas_out, n_bytes_in, n_bytes_out;
    csi_stats st_csi;
    pthread_mutex_t mail_lock;
    io_mail *mail, **mail_tail; /* guarded by mail_lock: from other threads, oldest first */
    dup_filter *dups;          /* what was delivered lately */
    uint64_t dups_until;       /* until then, one delivered under the previous link is dropped */
    char rbuf[IO_READ_CHUNK];
};

/* ---- shared by iothread.c and io_web.c ---- */

/* A connection in a free slot of t's shard (the caller checked there is one), its timers made,
 * the auth timeout armed. fd: its socket, or -1 for a BOSH session (shard/io_bosh.c). */
conn *conn_new(iothread *t, int fd, const struct sockaddr_storage *ss, bool trusted);
/* The live connection of this thread with that sid, or NULL. */
conn *conn_of(iothread *t, uint64_t sid);
/* Puts c on the thread's list of connections to write before the loop sleeps. */
void mark_dirty(conn *c);
/* Moves what the stream produced to the client's queue and the link batch, and acts on it. */
void conn_take(conn *c, unsigned acts);
/* Ends c at once (its stream's END goes to the SM); freed before the loop sleeps. */
void conn_kill(conn *c);
/* Writes what is queued, then closes (within IO_CLOSE_GRACE_MS). */
void conn_close_after_write(conn *c);

/* io_bosh.c: BOSH sessions and the mail between threads. */
/* A web connection's BOSH request is read (WEB_ACT_BOSH): to its session, here or elsewhere. */
void bosh_input(conn *w);
/* The stream's output of a BOSH session, and a stanza from the SM for it. */
void bosh_take_output(conn *c, buf *out);
void bosh_push_stanza(conn *c, outq_block *blk, size_t off, size_t len);
/* conn_kill of a BOSH session (its held requests get their answers) or of a web connection
 * (the session it waits on forgets it). */
void bosh_conn_killed(conn *c);
/* Posts m to thread `to` (any thread); takes m. */
void io_mail_post(iothread *to, io_mail *m);
/* The thread's mail (on_wake). */
void io_mail_take(iothread *t);
/* A web connection may go on after its answer was written: the next request, or the close. */
void web_next(conn *c);

/* io_web.c: a web listener's connection, before and after its upgrade. */
void web_input(conn *c, const char *data, size_t n);
void ws_input(conn *c, const char *data, size_t n);
/* More of a file being sent while the queue is short; then the next request, or the close. */
void web_pump(conn *c);
/* A stanza from the SM as one WebSocket message (no copy of the payload). */
void ws_push_stanza(conn *c, outq_block *blk, size_t off, size_t len);
/* framing_out's emit for a WebSocket's own stream output. */
void ws_emit(void *ctx, framing_out_kind kind, const char *data, size_t len);
/* The idle check's ping, as a WebSocket ping frame. */
void ws_ping(conn *c);

#endif
