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

typedef struct front_limits {
    size_t stanza_size;        /* bytes; limits/stanza_size (65536) */
    size_t max_bps;            /* bytes per second a client may send; 0 = unlimited (10240) */
    unsigned conn_rate;        /* new connections from one IP per conn_interval; 0 = unlimited (5) */
    unsigned conn_interval;    /* (ours) seconds the conn_rate count runs over (1) */
    unsigned auth_failures;    /* failed SASL attempts before the stream is closed (3) */
    unsigned ip_auth_failures; /* (ours) failed SASL attempts from one IP per ip_auth_interval after
                                * which every further attempt's outcome waits auth_delay ms; 0 = off
                                * (10) */
    unsigned ip_auth_interval; /* (ours) seconds (60) */
    unsigned auth_delay;       /* (ours) milliseconds (3000) */
    size_t output_queue;       /* bytes queued for a client before it is dropped (262144) */
    unsigned auth_timeout;     /* seconds from connect to authenticated (30) */
    unsigned idle_timeout;     /* seconds of silence before a whitespace ping; as long again
                                * without a byte and the client is dropped (300) */
} front_limits;

typedef struct front_config {
    config *cfg;               /* owns every string below */
    /* <sm> */
    const char *sm_host;
    int sm_port;
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
