/* tests/bench/loadgen/lg_options.h — the load generator's command line: what it parses, its
 * defaults, and the checks that make a bad option an exit status 2 before anything connects.
 * README.md beside this file documents every option. */
#ifndef JABSHARD_LOADGEN_LG_OPTIONS_H
#define JABSHARD_LOADGEN_LG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { LG_MECH_PLAIN, LG_MECH_SCRAM_SHA1 } lg_mech;
typedef enum { LG_TLS_NONE, LG_TLS_STARTTLS, LG_TLS_DIRECT } lg_tls_mode;
typedef enum { LG_TRANSPORT_TCP, LG_TRANSPORT_WEBSOCKET } lg_transport;

/* One server address: from --server, or --host with each --port. */
typedef struct lg_addr {
    char *host;
    uint16_t port;
} lg_addr;

typedef struct lg_options {
    const char *host;            /* --host: an address or a name (127.0.0.1) */
    uint16_t *ports;             /* --port: users are spread round-robin over these (5222) */
    size_t nports;
    lg_addr *addrs;              /* what is connected to: --server, else --host x --port */
    size_t naddrs;
    const char *domain;          /* --domain (localhost) */
    uint32_t users;              /* --users: required, >= 1 */
    uint32_t first;              /* --first: number of user index 0 (1) */
    const char *user_format;     /* --user-format: one %u ("user%u") */
    const char *password_format; /* --password-format: one %u ("pass%u") */
    lg_mech mech;                /* --mech (SCRAM-SHA-1) */
    lg_tls_mode tls;             /* --tls (starttls; none with --transport websocket) */
    lg_transport transport;      /* --transport (tcp): websocket is RFC 7395 (lg_ws.h) */
    const char *ws_path;         /* --ws-path (/xmpp-websocket) */
    uint32_t *sources;           /* --sources: IPv4 addresses, host byte order; NULL: no bind() */
    size_t nsources;
    unsigned login_concurrency;  /* --login-concurrency (200) */
    bool warmup;                 /* --warmup (SCRAM only) */
    unsigned hold_s;             /* --hold (0) */
    unsigned keepalive_s;        /* --keepalive (60; 0 off) */
    double *rates;               /* --rates: messages per second, one round each; none: no rounds */
    size_t nrates;
    unsigned round_s;            /* --round-seconds (10) */
    double stop_p99_ms;          /* --stop-p99-ms (0: p99 never stops the stepping) */
    unsigned drain_s;            /* --drain-seconds (5) */
    unsigned reconnect_s;        /* --reconnect (0: off) */
    const char *ready_file;      /* --ready-file (NULL) */
    unsigned timeout_s;          /* --timeout (30) */
    bool sm;                     /* --sm: XEP-0198 with resumption (lg_sm.h) */
    unsigned sm_ack_every;       /* --sm-ack-every: an <r/> after every N messages (1; 0 never) */
    int cut_after_s;             /* --cut-after: test hook, seconds after the logins (-1: off) */
    uint32_t cut_users;          /* --cut-users: users 0..K-1 are cut (0: all) */
    int cut_return_ms;           /* --cut-return: reconnect delay after a cut (0; -1: never) */
    bool pep;                    /* --pep: rounds publish PEP items instead of messages (lg_pep.h) */
    uint32_t pep_contacts;       /* --pep-contacts: K, each user's contacts on the ring (required
                                    with --pep: even, 2..users - 1) */
    bool muc;                    /* --muc: join rooms, rounds of groupchat messages (lg_muc.h) */
    uint32_t muc_rooms;          /* --muc-rooms: user index i joins room i mod R (1) */
    const char *muc_service;     /* --muc-service (NULL: "conference." + domain) */
    unsigned muc_join_concurrency; /* --muc-join-concurrency: joins in flight (50) */
    uint32_t muc_max_users;      /* --muc-max-users: sent in the config form (0: not sent) */
    unsigned hold_after_s;       /* --hold-after: idle seconds after the rounds (0) */
    const char *peer_server;     /* --peer-server H:P: federation mode (lg_fed.h); its address is
                                    appended to addrs, last */
    const char *peer_domain;     /* --peer-domain: the receivers' domain (NULL: not federation) */
} lg_options;

/* Parses argv into o (strings point into argv; the arrays are o's, freed by lg_options_free).
 * Returns 0; 1 after --help (usage printed to stdout); -1 after printing what is wrong and the
 * usage to stderr. In every case o may be passed to lg_options_free. */
int lg_options_parse(int argc, char **argv, lg_options *o);
void lg_options_free(lg_options *o);

/* Writes fmt with its one %u replaced by n (and %% by %) into out; returns the length, or -1 when
 * it does not fit. The formats are checked by lg_options_parse, and are not printf formats: an
 * operator's string must never reach a real printf. */
int lg_options_format(const char *fmt, uint32_t n, char *out, size_t cap);

#endif
