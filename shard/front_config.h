/* shard/front_config.h — the front's configuration (etc/jadc2s.xml): jadc2s's element names and
 * defaults, plus our additions (threads, limits, log), and the split of max_fds into prime-sized
 * connection shards.
 *
 * Thread rules: loaded once by the main thread before any other thread starts; read-only after.
 */
#ifndef JABSHARD_SHARD_FRONT_CONFIG_H
#define JABSHARD_SHARD_FRONT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/log.h"
#include "shard/ip_nets.h"

/* The largest <stanza_size> accepted. A client's stanza goes to the SM as one smproto frame,
 * whose payload is at most SMPROTO_MAX_PAYLOAD (1 MiB); the front re-serializes it with 'from'
 * and 'to' stamped, and re-escaping can make text longer than the client wrote it ('>' becomes
 * "&gt;"). Half the frame leaves room for that in every ordinary stanza (a stanza that still grows
 * past the frame gets a stanza error, never a broken link), and it is twice what Prosody and
 * ejabberd accept by default. */
#define FRONT_STANZA_SIZE_MAX 524288

typedef struct front_limits {
    size_t stanza_size;        /* bytes; limits/stanza_size (262144), at most FRONT_STANZA_SIZE_MAX */
    size_t max_bps;            /* bytes per second a client may send, sustained; 0 = unlimited
                                * (10240) */
    size_t bps_burst;          /* (ours) bytes a client may send at once before max_bps paces it;
                                * at least stanza_size (2 * stanza_size) */
    unsigned conn_rate;        /* new connections from one address per conn_interval, sustained;
                                * 0 = unlimited (5) */
    unsigned conn_interval;    /* (ours) seconds the conn_rate is counted over (1) */
    unsigned conn_burst;       /* (ours) new connections one address may open at once (500) */
    unsigned auth_failures;    /* failed SASL attempts before the stream is closed (3) */
    unsigned ip_auth_failures; /* (ours) wrong passwords one address may send at once, and per
                                * ip_auth_interval sustained, before every further outcome waits
                                * auth_delay ms; 0 = off (10) */
    unsigned ip_auth_interval; /* (ours) seconds (60) */
    unsigned auth_delay;       /* (ours) milliseconds (3000) */
    unsigned register_per_conn; /* (ours) account creations (XEP-0077 sets) one connection may ask
                                 * for; 0 = unlimited (5) */
    unsigned register_burst;   /* (ours) account creations one address may ask for at once; 0 =
                                * unlimited (10) */
    unsigned register_interval; /* (ours) seconds in which one address regains one (600) */
    size_t output_queue;       /* bytes queued for a client past which it must make progress
                                * (262144) */
    size_t output_max;         /* (ours) bytes queued for a client past which it is cut at once
                                * (4 * output_queue) */
    unsigned output_timeout;   /* (ours) seconds a client over output_queue may go without taking
                                * a byte of its queue (60) */
    unsigned auth_timeout;     /* seconds from connect to authenticated (30) */
    unsigned idle_timeout;     /* seconds of silence before a whitespace ping; as long again
                                * without a byte and the client is dropped (300) */
    ip_nets trusted;           /* (ours) clients the per-address limits do not count (conn_rate,
                                * ip_auth_failures, register_burst); loopback when absent */
} front_limits;

/* <csi>: what an inactive client's connection may hold back (shard/csi.h). Defaults: ejabberd's
 * queue of 100 (mod_client_state; Prosody's mod_csi_simple keeps 256 without deduplicating
 * presence), 64 KiB so a flush is far below <limits><output_queue>, and 300 s, the idle ping
 * period of <limits><idle_timeout>: nothing waits longer than the connection's own keepalive. */
typedef struct front_csi {
    unsigned max_stanzas;      /* stanzas held at most; 0: CSI off, not advertised (100) */
    size_t max_bytes;          /* bytes held at most, at most output_queue (65536, or
                                * output_queue when that is smaller) */
    unsigned max_hold;         /* seconds from the first stanza held to the flush (300) */
} front_csi;

/* <smacks>: when the front asks a client with stream management (XEP-0198) to acknowledge what
 * it was sent (<r/>, one outstanding at a time; shard/smacks.h). Each acknowledgement costs the
 * client a write and the front a read, and until it comes the SM keeps a copy of each stanza
 * (its own bounds, sm.xml <smacks><queue_max>, end a session long before these matter). */
typedef struct front_smacks {
    unsigned request_stanzas;  /* ask once this many stanzas are unacknowledged (5; 1: after
                                * every stanza) */
    unsigned request_wait;     /* or once the oldest unacknowledged one has waited this many
                                * seconds (4): with the next stanza written after half of it, or
                                * by itself at the IO thread's tick (every half of it) */
} front_smacks;

/* <http><upload> (ours): where HTTP File Upload's files live (shard/upload_files.h); the SM hands
 * out the slots (sm.xml <upload>, docs/upload.md) with the same secret. */
typedef struct front_upload {
    bool on;                   /* the element is there */
    const char *path;          /* the URL path files are under (/upload) */
    const char *dir;           /* the directory (required) */
    char *secret;              /* <secret>, or <secret_file>'s first line */
    size_t secret_len;
    uint64_t max_file_size;    /* (104857600, the SM's default) */
    int64_t expire_after;      /* seconds a file is kept (2592000: 30 days, the SM's) */
} front_upload;

/* <http><bosh> (ours): BOSH sessions (XEP-0124/0206, shard/bosh.h); the defaults are Prosody's. */
typedef struct front_bosh {
    const char *path;          /* (/http-bind; "" turns BOSH off) */
    unsigned wait_max;         /* seconds a request may be held (60) */
    unsigned hold_max;         /* requests held at once (1) */
    unsigned inactivity;       /* seconds without a request before a session ends (60) */
    unsigned polling;          /* shortest seconds between empty polls (5) */
    unsigned maxpause;         /* longest pause a client may ask for (120) */
} front_bosh;

/* <http> (ours): the web listener (shard/web_conn.h): WebSocket clients (RFC 7395), the
 * connection discovery files (XEP-0156), on the IO threads beside the XMPP ports. */
typedef struct front_http {
    bool on;                   /* the element is there */
    const char *ip;            /* (local/ip) */
    int port;                  /* plain HTTP (5280, Prosody's and ejabberd's; 0: none) */
    int tls_port;              /* HTTPS (5281, Prosody's; 0: none) */
    const char *public_url;    /* how clients reach us ("https://chat.example.org"), for
                                * host-meta; NULL: from each request's Host */
    ip_nets secure_from;       /* plain-HTTP clients counted as encrypted: a reverse proxy that
                                * ends TLS (loopback) */
    const char *ws_path;       /* (/xmpp-websocket) */
    const char **origins;      /* browser origins allowed a WebSocket; none listed: any */
    size_t norigins;
    size_t max_message;        /* largest WebSocket message (stanza_size + 4096) */
    front_bosh bosh;
    front_upload upload;
} front_http;

/* One SM the link may use (ours: <standby>; docs/deployment.md, "Standby SM"). */
typedef struct front_sm_addr {
    const char *host;
    int port;
} front_sm_addr;

typedef struct front_config {
    config *cfg;               /* owns every string below */
    /* <sm> */
    front_sm_addr *sms;        /* in the order the link tries them: <sm>'s own <host> and <port>
                                * first, then each <standby> (its <port> defaulting to <sm>'s) */
    size_t nsms;               /* at least 1 */
    const char *sm_secret;
    const char *sm_id;
    unsigned sm_retries;
    size_t sm_hold_bytes;      /* (ours) sm/hold: bytes held for the SM while the link is down */
    /* <local> */
    char **hosts;              /* local/id, nameprep'd, NULL-terminated; at least one */
    size_t nhosts;
    const char *ip;
    int port;
    int ssl_port;              /* the direct-TLS port (XEP-0368) */
    const char *pemfile;
    bool starttls_required;    /* (ours) local/ssl/required, default true: no SASL before TLS */
    /* process */
    unsigned max_fds;          /* prime */
    unsigned threads;
    front_limits limits;
    front_csi csi;
    front_smacks smacks;
    front_http http;
    const char *metrics_ip;    /* (ours) <metrics>: the Prometheus endpoint (0: off, the element */
    int metrics_port;          /* absent) */
    /* Not in the file: entries in each ring between an IO thread and the SM-link thread (a power
     * of two >= 4; 4096). Tests shrink it to force backpressure. */
    unsigned ring_size;
    /* Not in the file: bytes the link thread queues for the SM's socket before it stops taking
     * from the rings (4 MiB). Tests shrink it to make the IO threads stop reading. */
    size_t link_queue_bytes;
    log_target log_target;
    const char *log_path;
    log_level log_level;
} front_config;

/* Loads path. Returns 0, or -1 with err filled (file, line, element): the caller prints err->text
 * and exits with status 2. Warnings (max_fds rounded up) are logged. */
int front_config_load(const char *path, front_config *out, config_error *err);
void front_config_free(front_config *fc);

/* Whether host (already nameprep'd) is one of ours; returns the configured spelling or NULL. */
const char *front_config_host(const front_config *fc, const char *host);

/* Primes: the smallest prime >= n (n >= 2). */
uint32_t front_prime_at_least(uint32_t n);
bool front_is_prime(uint32_t n);

/* The share of max_fds each of threads IO threads gets: ceil(max_fds / threads), rounded up to a
 * prime. */
uint32_t front_shard_slots(uint32_t max_fds, unsigned threads);

#endif
