/* tests/support/sm_harness.h — the session manager in memory, for the SM's unit tests: the core
 * (sm/sm.h) with a transport that records what it sends, and storage run synchronously on a
 * scratch SQLite database, each request's callback held until the test drains them (as
 * xdbsql_dispatch would run them later); helpers to bind sessions, send stanzas and look for what
 * came back (smh_find, smh_count, EXPECT, NONE).
 *
 * The hosts: example.org allows in-band registration, closed.org does not; accounts alice, bob
 * and carol exist at example.org; a component serves muc.example.org. One harness per process: its
 * state is smh, which the tests read (and a few write). */
#ifndef JABSHARD_TESTS_SUPPORT_SM_HARNESS_H
#define JABSHARD_TESTS_SUPPORT_SM_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sm/config.h"
#include "sm/module.h"
#include "sm/modules.h"
#include "sm/sm.h"
#include "smproto/frame.h"
#include "smproto/smacks_msg.h"

/* What the core sent through the transport, in order. */
typedef struct smh_record {
    char kind;          /* S stanza, A auth answer, B bound, E end, C component, T state,
                         * M module message */
    uint64_t sid;
    uint8_t status;     /* a T (STATE) record's length: its text holds its bytes */
    char *text;         /* M: the module's name, a NUL, then the body */
    size_t len;         /* M: the body's length */
} smh_record;

/* A storage request that has run, its callback not yet. */
typedef struct smh_pending {
    xdb_request *r;
    xdb_callback cb;
    void *ctx;
} smh_pending;

/* The upload service's secret in the configuration smh_start writes (unless extra has its own
 * <upload>). */
#define SMH_UPLOAD_SECRET "harness upload secret"
/* The element, for a test that writes a whole configuration with the upload module in it. */
#define SMH_UPLOAD "<upload><secret>" SMH_UPLOAD_SECRET "</secret></upload>"

#define SMH_RECORDS 1024
#define SMH_PENDING 4096

typedef struct sm_harness {
    int offline_quota;          /* <offline_quota> of every start; a test file sets it before its
                                   tests run (0: 10) */
    sm_config cfg;
    sm *core;
    sm_link *front;             /* the front sessions are bound on */
    sm_link *comp;              /* the component muc.example.org */
    db_conn *db;
    char *dir;                  /* scratch directory: the database and configuration files */
    smh_record recs[SMH_RECORDS];
    int nrecs;
    smh_pending queue[SMH_PENDING];   /* [qhead, qtail): callbacks still to run */
    size_t qhead, qtail;
} sm_harness;

extern sm_harness smh;

/* The transport and storage queue the harness gives sm_new, for a test that makes its own core. */
extern const sm_transport smh_transport;
void smh_submit(void *ctx, xdb_request *r, xdb_callback cb, void *cbctx);

/* cmocka setup and teardown: a fresh scratch database with the three accounts and the core
 * started without extra configuration; everything freed and removed. */
int smh_setup(void **state);
int smh_teardown(void **state);

/* (Re)starts the core on a configuration file holding the harness's hosts plus extra (elements
 * under <sm>, "" for none), with the built-in modules followed by the NULL-terminated
 * extra_modules (or none). Storage and its accounts stay. */
void smh_start(const char *extra, const sm_module *const *extra_modules);
/* Runs what storage has pending and frees the core and its configuration (nothing if stopped). */
void smh_stop(void);

void smh_adduser(const char *host, const char *user);   /* password "pw" */

/* Runs the callbacks of storage requests that have run, in order. */
void smh_drain(void);
/* Forgets the records. */
void smh_clear(void);

/* The index of the first record of kind for sid (0: any) whose text holds a and b (NULL: any),
 * or -1. */
int smh_find(char kind, uint64_t sid, const char *a, const char *b);
/* How many records of kind for sid (0: any) hold a (NULL: any). */
int smh_count(char kind, uint64_t sid, const char *a);
/* Prints every record to stderr (EXPECT and NONE do, before failing). */
void smh_dump(void);

/* A stanza from session sid's client, then drained. */
void smh_send(uint64_t sid, const char *xml);
/* A stanza from the component muc.example.org, in its stream's namespace
 * (jabber:component:accept, as its parser leaves it), then drained. */
void smh_component(const char *xml);
/* The same from another XML link (a federation link: sm_link_set_s2s). */
void smh_xml_link(sm_link *l, const char *xml);
/* The front's stream management (XEP-0198) says m about session sid (a MODULE frame), then
 * drained. */
void smh_smacks(uint64_t sid, const smacks_msg *m);
/* Binds user@example.org/res as session sid (records cleared first; the bind must succeed). */
void smh_bind(uint64_t sid, const char *user, const char *res);
/* Binds and sends initial presence. */
void smh_online(uint64_t sid, const char *user, const char *res);
/* alice and bob subscribed to each other (both), both online: alice sid 1, bob sid 2; records
 * cleared. */
void smh_befriend(void);

/* Fails the test (after smh_dump) unless a record of kind for sid holds a and b. */
#define EXPECT(kind, sid, a, b)                                                                    \
    do {                                                                                           \
        if (smh_find(kind, sid, a, b) < 0) {                                                       \
            smh_dump();                                                                            \
            const char *a_ = (a), *b_ = (b);                                                       \
            fail_msg("no %c record for sid %d with '%s' '%s'", kind, (int)(sid), a_ ? a_ : "",     \
                     b_ ? b_ : "");                                                                \
        }                                                                                          \
    } while (0)

/* Fails the test (after smh_dump) if a record of kind for sid holds a. */
#define NONE(kind, sid, a)                                                                         \
    do {                                                                                           \
        if (smh_count(kind, sid, a) != 0) {                                                        \
            smh_dump();                                                                            \
            const char *a_ = (a);                                                                  \
            fail_msg("unexpected %c record for sid %d with '%s'", kind, (int)(sid), a_ ? a_ : ""); \
        }                                                                                          \
    } while (0)

#endif
