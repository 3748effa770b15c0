/* tests/bench/sm_scale/scale.h — what the synthetic front's files share (README.md beside it).
 *
 * One process plays several fronts: each is one smproto link to a real jabshard-sm under its own
 * <service id> (f0, f1, ...), with the sessions of its users. User i (0 <= i < users) lives on
 * front i % fronts, in slot i / fronts of that front, as user<i>@HOST/r. With --partitions P,
 * P SMs share the users by <partitions> (docs/scaling.md, "Past one SM"), each with --fronts
 * fronts of its own: user i is on its SM's front i % fronts (scale_sm_of). Everything runs on one
 * thread: scale_front.c owns the links, the sessions and custody; scale_setup.c the scratch
 * storage and the SM process; scale_main.c the options and the phases.
 *
 * Thread rules: one thread.
 */
#ifndef JABSHARD_TESTS_BENCH_SM_SCALE_H
#define JABSHARD_TESTS_BENCH_SM_SCALE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define SCALE_HOST "scale.example"
#define SCALE_SECRET "scale-secret"
#define SCALE_CONTACTS 20     /* ring neighbours i±1..i±10, subscription both */
#define SCALE_HUB_CONTACTS 200
#define SCALE_MAX_SMS 8       /* --partitions */

/* ---- options (scale_main.c) ------------------------------------------------------------------- */
typedef struct scale_options {
    long users;             /* sessions to log in */
    int fronts;             /* synthetic fronts (links) per SM */
    int partitions;         /* SMs sharing the users (1: one SM, no <partitions>) */
    int crossing;           /* with partitions: % of messages to another SM's user (-1: random) */
    int crossings[8];       /* --crossing A,B,...: one messages phase each, in turn */
    int ncrossings;
    int concurrency;        /* logins in flight, over all fronts */
    long rate;              /* messages per second offered */
    double duration;        /* seconds of messages */
    int hubs;               /* users with 200 contacts, for the fan-out figure */
    int restart;            /* times to kill the SM, start it again, resync from every front */
    bool resync_presence;   /* the resync carries each session's presence (the default) */
    const char *driver;     /* sqlite or pgsql */
    const char *pg;         /* pgsql: "host port user database" */
    const char *workdir;    /* keep the scratch storage here (reused when it has the accounts) */
    const char *sm_extra;   /* elements added to sm.xml (<modules>...) */
    long max_rss_mib;       /* the SM is killed past this (the machine is shared) */
    const char *bin_dir;
} scale_options;

extern scale_options scale_opt;

/* ---- sessions and links (scale_front.c) ------------------------------------------------------- */
enum scale_session_phase {
    SS_IDLE, SS_AUTH, SS_BIND, SS_ROSTER, SS_ONLINE
};

typedef struct scale_session {
    uint8_t phase;
    uint8_t state_len;      /* the SM's last STATE record, kept for a resync */
    uint8_t *state;
    uint64_t login_start;   /* ns */
} scale_session;

typedef struct scale_counts {
    long auth_ok, auth_failed, bound, bind_failed, roster_results, online;
    long presence, messages, errors, ends, states, other;
    long crossing;          /* messages sent to a user of another SM */
    uint64_t *latency;      /* ns per message delivered, up to latency_cap */
    long latency_n, latency_cap;
    uint64_t *login_latency;   /* ns per login, AUTH_QUERY to the roster's result */
    long login_n;
    uint64_t last_stanza_ns;
} scale_counts;

extern scale_counts scale_got;

/* Opens every front's link to SM k (the handshake with the instance's acked count). */
void scale_links_open(int k);
/* Closes every link (the SM is gone or going). */
void scale_links_close(void);
/* Writes what is queued, waits up to timeout_ms for input, handles every whole frame and
 * acknowledges what it read, as a front does after each read. */
void scale_pump(int timeout_ms);
/* Until the SM acknowledged every frame every front sent (or timeout_s); false on a timeout. */
bool scale_wait_acked(double timeout_s);
/* Starts the login of user i: AUTH_QUERY, then BIND, the roster get and initial presence. */
void scale_login(long i);
/* A chat message from user a to user b's bare JID, its body carrying the send time. */
void scale_message(long a, long b);
/* Whether user i's session is online (its roster result came back). */
bool scale_online(long i);
/* Every front sends RESYNC for its online sessions (their STATE and presence), then the empty
 * RESYNC that ends it. */
void scale_resync_all(void);
/* Bytes queued to the SM over all links not yet written. */
size_t scale_pending_tx(void);
/* The frames every front sent to the SM and the SM acknowledged, summed. */
void scale_custody(uint64_t *sent, uint64_t *acked);
void scale_links_free(void);

/* ---- the SMs and their storage (scale_setup.c) ------------------------------------------------ */
extern pid_t scale_sm_pids[SCALE_MAX_SMS];  /* 0: not running */
extern int scale_sm_ports[SCALE_MAX_SMS];   /* each SM's link port for the fronts */
/* The SM owning user i's partition (0 with one SM). */
int scale_sm_of(long i);
/* Makes the scratch directory, each SM's configuration, accounts (of its partition) and rosters
 * (unless workdir already has them), and the link ports. */
void scale_setup(void);
/* Starts SM k and waits for its port; returns the start time (ns). */
uint64_t scale_sm_start(int k);
/* SIGKILL: every SM dies as in a crash. */
void scale_sm_kill(void);
void scale_sm_stop(void);
/* Whether SM k's log has the line that ends its start's wait (sm/restart_wait.c). */
bool scale_sm_start_done(int k);
/* A counter of SM k's `jabshardctl stats` (sessions, users, storage_pending...), or -1. */
long scale_sm_stat(int k, const char *key);
void scale_cleanup(void);
void scale_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* User names: "u<i>" (hubs: "h<i>"). */
void scale_user(char *out, size_t size, long i);

#endif
