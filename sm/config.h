/* sm/config.h — the session manager's configuration file (etc/sm.xml): its vocabulary, its values
 * and their checks. The SM and the admin tool (jabshardctl) both read it through here, so an
 * element means the same to both. */
#ifndef JABSHARD_SM_CONFIG_H
#define JABSHARD_SM_CONFIG_H

#include <stdbool.h>

#include "core/config.h"
#include "core/log.h"
#include "core/partition.h"
#include "xdbsql/xdbsql.h"

/* What a <service> may do once its handshake is accepted (its role='...' attribute, required): a
 * front speaks frames for the users of the served hosts (sessions, authentication, binding); a
 * component speaks XEP-0114 XML as its own domain and nothing else. The link enforces it
 * (sm/link_sm.c): a component asking for frames, or a front sending XML stanzas, is refused.
 * A peer is another SM of the same deployment (<partitions>, never a <service role>): XML both
 * ways, from and to users of the two SMs' partitions only (sm/peer_route.c). */
typedef enum { SM_ROLE_FRONT = 1, SM_ROLE_COMPONENT = 2, SM_ROLE_S2S = 3, SM_ROLE_PEER = 4 } sm_role;

/* A <service id='...' role='...'><accept> entry: a front or an XEP-0114 component that may
 * connect. A component's id is the domain it serves and may not be a served host. */
typedef struct sm_service {
    const char *id;
    const char *ip;        /* NULL or "": every address */
    int port;
    const char *secret;
    sm_role role;
} sm_service;

/* <partitions> (experimental; docs/scaling.md, "Past one SM"): the users of the served hosts are
 * split over several SMs by core/partition.h, this one owning the slot range of its index. Absent:
 * one SM owns every user (npeers == 0, nothing else changes). */
typedef struct sm_peer {
    int index;             /* its place in the table: it owns the slot range of this index */
    const char *id;        /* the service id its link is known by, on both SMs */
    const char *host;      /* where it accepts peers: needed when its index is below ours */
    int port;              /* (the SM with the higher index connects) */
    const char *secret;    /* the XEP-0114 handshake's, the same on both SMs */
} sm_peer;

typedef struct sm_partitions {
    int index;             /* this SM's */
    int count;             /* SMs in the table: npeers + 1 */
    const char *id;        /* this SM's service id, which it connects to lower peers as */
    const char *ip;        /* where higher peers connect to us (NULL or "": every address) */
    int port;              /* 0: no higher peer */
    partition_key key;     /* key='32 hex digits', or the built-in one */
    sm_peer *peers;
    int npeers;
} sm_partitions;

typedef struct sm_host {
    const char *name;      /* the domain, as configured (modules read their own options under
                            * <host>, as <register/>) */
    const xml_node *el;    /* its <host> element */
} sm_host;

/* <limits>: what one account may hold in the core, each bounding memory or storage that the
 * account's owner (or whoever writes to it) controls. Past a limit the request gets a stanza error
 * naming it. (The modules declare and read their own limits under <limits> too.) */
typedef struct sm_limits {
    int sessions;              /* sessions (resources) bound at once (10, ejabberd's shipped
                                * max_user_sessions) */
    int roster_items;          /* items in a roster (2000) */
    int pending;               /* inbound subscription requests awaiting an answer (200) */
    int resync_wait;           /* seconds after a start that stanzas for users with no session
                                * wait for the fronts' resyncs (5; 0: none; sm/restart_wait.c) */
} sm_limits;

/* The defaults above (the loader starts from them; tests build configs with them). */
void sm_limits_default(sm_limits *l);

typedef struct sm_config {
    config *cfg;           /* owns every string below */
    sm_service *services;
    int nservices;
    sm_host *hosts;
    int nhosts;
    xdbsql_options storage;
    sm_limits limits;
    const char **modules;  /* <modules>: the module names listed, NULL-terminated; NULL when the
                            * element is absent (every built-in module) */
    char *admin_socket;    /* <admin><socket>: the admin channel's Unix socket (sm/admin.h);
                            * default jabshard-sm.sock beside the SQLite database, or in the
                            * working directory */
    const char *metrics_ip;    /* <metrics>: the Prometheus endpoint's address and port (0: off, */
    int metrics_port;          /* the element absent) */
    sm_partitions partitions;
    log_target log_target;
    const char *log_path;
    log_level log_level;
} sm_config;

typedef struct sm_module sm_module;
/* Loads and checks path, knowing the modules of the NULL-terminated table (their options are part
 * of the file's vocabulary; <modules> may name only them). Returns 0, or -1 with err naming file,
 * line and element. The modules read their values when they start (sm_new). */
int sm_config_load(const char *path, const sm_module *const *modules, sm_config *out,
                   config_error *err);
void sm_config_free(sm_config *sc);
/* The configured host for a domain, or NULL. */
const sm_host *sm_config_host(const sm_config *sc, const char *domain);

#endif
