/* xdbsql/xdbsql.h — everything the session manager stores, asynchronously, on any SQL database.
 *
 * Work travels as requests. The caller fills an xdb_request (xdb_request_new, then the op's
 * arguments) and submits it with a callback; a storage worker runs it against its own database
 * connection and queues the finished request on a ring back to the caller, then calls the
 * caller's notify function (the SM passes one that wakes its event loop). The caller drains the
 * rings with xdbsql_dispatch() on its own thread, which runs the callbacks and frees the requests.
 * The caller never waits for SQL.
 *
 * Ordering: requests for one user (host + username) always go to the same worker and are run in
 * the order they were submitted; their callbacks come back in that order too.
 *
 * The same requests run synchronously with xdb_run() on a db_conn of the caller's (the admin
 * tool, tests). One executor serves both paths.
 *
 * Thread rules: xdbsql_submit and xdbsql_dispatch are called from one thread (the owner); the
 * workers touch a request only between submit and the ring back.
 */
#ifndef JABSHARD_XDBSQL_XDBSQL_H
#define JABSHARD_XDBSQL_XDBSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/scram.h"
#include "xdbsql/db.h"

typedef enum {
    XDB_OK = 0,
    XDB_NOT_FOUND,   /* no such user (or item) */
    XDB_EXISTS,      /* the user already exists */
    XDB_QUOTA,       /* the user's offline queue, or a document store, is at the quota */
    XDB_ERROR,       /* the database failed; error holds the reason; nothing was half-written */
    XDB_INVALID,     /* refused before any SQL: an argument is out of bounds (a store name or
                      * key too long or not UTF-8, a value over value_max); error says which */
} xdb_status;

typedef enum {
    XDB_USER_CREATE,     /* in: password (or creds) */
    XDB_USER_DELETE,     /* deletes the user and everything stored for them */
    XDB_USER_PASSWD,     /* in: password (or creds) */
    XDB_USER_CREDS,      /* out: creds */
    XDB_USER_LIST,       /* out: users (username = NULL: every host's users when host is NULL) */
    XDB_ROSTER_LOAD,     /* out: roster (items, version, pending requests): one round trip */
    XDB_ROSTER_SET,      /* in: item; out: roster.version */
    XDB_ROSTER_REMOVE,   /* in: item.jid; out: roster.version; XDB_NOT_FOUND when absent */
    XDB_PENDING_ADD,     /* in: jid, xml (the subscribe presence) */
    XDB_PENDING_REMOVE,  /* in: jid */
    XDB_OFFLINE_STORE,   /* in: xml, quota; XDB_QUOTA when full */
    XDB_OFFLINE_FETCH,   /* out: offline (fetched and deleted in one transaction) */
    XDB_OFFLINE_COUNT,   /* out: count */
    XDB_BLOCK_LIST,      /* out: jids */
    XDB_BLOCK_ADD,       /* in: jids (already-blocked ones are ignored) */
    XDB_BLOCK_REMOVE,    /* in: jids (none = unblock all) */
    /* The document store (below): in: store, key (xdb_request_set_doc) */
    XDB_DOC_GET,         /* out: value; XDB_NOT_FOUND when absent (or no such user) */
    XDB_DOC_PUT,         /* in: value, value_max, quota: inserts or replaces; XDB_QUOTA when a
                          * new key would take the store past quota (replacing always may);
                          * XDB_NOT_FOUND when no such user */
    XDB_DOC_DELETE,      /* XDB_NOT_FOUND when absent */
    XDB_DOC_LIST,        /* key is a prefix ("" = all); in: limit; out: docs, in key order */
    XDB_DOC_CLEAR,       /* deletes every document of the user in the store (key unused);
                          * out: count deleted (0 when a retry after a lost connection found
                          * them gone) */
    /* Hibernated stream-management sessions (below): in: key (the resumption id) */
    XDB_HIB_PUT,         /* in: value (the record), stanzas (what it keeps, in order): replaces
                          * whatever the id had; XDB_NOT_FOUND when no such user */
    XDB_HIB_KEEP,        /* in: seq, xml: one more stanza kept, number seq (greater than the
                          * others'); XDB_NOT_FOUND when the id has no record */
    XDB_HIB_DROP,        /* the record and its stanzas go; out: count of records deleted (0 when
                          * there was none, or a retry found it gone) */
    XDB_HIB_LOAD,        /* host, user and key unused; out: hibernations, every account's */
    /* Personal eventing (PEP, XEP-0163): the account's pubsub nodes (below); in: node */
    XDB_PEP_LOAD,        /* node unused; out: pep_nodes, each with its last item */
    XDB_PEP_NODE_PUT,    /* in: value (the node's configuration): creates or replaces it;
                          * XDB_NOT_FOUND when no such user */
    XDB_PEP_NODE_DELETE, /* the node and its items; XDB_NOT_FOUND when absent */
    XDB_PEP_ITEM_PUT,    /* in: item_id, xml (the payload), limit (items kept: the oldest beyond
                          * it go; 0: no bound): the item, newest, replacing one of that id;
                          * XDB_NOT_FOUND when the node does not exist */
    XDB_PEP_ITEM_DELETE, /* in: item_id; XDB_NOT_FOUND when absent */
    XDB_PEP_PURGE,       /* every item of the node; out: count */
    XDB_PEP_ITEMS,       /* in: item_ids (those only) or limit (the newest limit; 0: all);
                          * out: pep_items, oldest first */
    /* Message archives (MAM, XEP-0313): below */
    XDB_MAM_APPEND,      /* in: mam (entries, each account's oldest first), of the request's
                          * account or of any accounts of its storage lane (xdbsql_lane); an
                          * entry whose stanza id its archive has is skipped (a retry adds
                          * nothing); out: count: entries of accounts that do not exist */
    XDB_MAM_QUERY,       /* in: mam_query; out: mam (oldest first), mam_complete;
                          * XDB_NOT_FOUND when an after/before id is not in the archive */
    XDB_MAM_TRIM,        /* in: limit: the user's newest limit messages stay; out: count deleted */
    XDB_MAM_EXPIRE,      /* host, user unused; in: mam_query.end (ms): up to limit messages of
                          * any user older than it are deleted; out: count */
    /* Group chat rooms: owners of documents and archives as accounts are (host: the room
     * service, user: the room's node), never accounts (xdbsql/store_rooms.c) */
    XDB_ROOM_CREATE,     /* the room's row, or the one it has; XDB_EXISTS: an account's name */
    XDB_ROOM_DELETE,     /* the room and everything stored for it; XDB_NOT_FOUND when absent */
    XDB_ROOM_LIST,       /* out: users ("room@host"): the rooms of host */
    /* HTTP File Upload (XEP-0363): the slots an account was given (below) */
    XDB_UPLOAD_RESERVE,  /* in: key (the slot id), upload_size, upload_since, quota (bytes):
                          * the account's slots older than upload_since go; then, unless those
                          * left and this one would pass quota (XDB_QUOTA), the slot is recorded;
                          * a slot id already recorded is OK (a retry). out: count: the bytes
                          * of the account's slots since upload_since, this one included when
                          * recorded; XDB_NOT_FOUND when no such account */
    XDB_OP_COUNT
} xdb_op;

/* The document store: what a feature keeps per user without an operation, table or migration of
 * its own (as Prosody's module:open_store()). A document is addressed by the user, a store name
 * (the feature's: "vcard", "private", "last") and a key within the store, and holds opaque
 * bytes. Store names and keys are UTF-8 text of at most XDB_DOC_NAME_MAX bytes, the store name
 * not empty; keys compare and list byte by byte (code point order). Anything else is refused with
 * XDB_INVALID before it reaches the database, as is a value longer than the caller's value_max.
 * Deleting the user deletes their documents. A put or a clear is retried after a lost connection
 * (running it twice changes nothing); a delete is not (it could say not-found for its own work).
 *
 * A feature whose documents need more than get/put/delete/list-by-prefix (queries on their
 * content, an order other than their keys') still wants a table of its own. */
#define XDB_DOC_NAME_MAX 1023

/* Hibernated sessions: what the SM needs to rebuild a stream-management session whose client
 * is away (XEP-0198 resumption) after an SM restart (docs/smproto.md §6), kept by its resumption
 * id: an opaque record that the SM writes, and the stanzas the session keeps, in order. The id
 * names the hibernation (it is random, unique across accounts); the account owns it (deleting the
 * user deletes it). Every op is retried after a lost connection (running one twice changes
 * nothing). */

/* MAM: an account's archive of messages, in the order they were archived (time, then arrival),
 * each with the stanza id the server gave it; queried by contact, time, id and page (XEP-0313,
 * XEP-0059). Deleting the user deletes it. */

/* Uploads: each slot the SM hands out (its id, size and when, ms) is recorded for its account,
 * so that what an account uploaded within the stores' retention counts against its quota: the
 * sum, the check and the insert are one transaction on the account's worker. Deleting the
 * account deletes its records. */

/* PEP: an account's nodes (pep_nodes: name, the SM's configuration record) and their items
 * (pep_items: id, payload XML, and the order of publication). Node names and item ids are UTF-8 of
 * at most XDB_DOC_NAME_MAX bytes (XDB_INVALID otherwise, before any SQL). Deleting the user
 * deletes them. Every op but NODE_DELETE and ITEM_DELETE is retried after a lost connection. */

typedef enum { XDB_SUB_NONE, XDB_SUB_TO, XDB_SUB_FROM, XDB_SUB_BOTH } xdb_subscription;

typedef struct xdb_credentials {
    scram_credentials sha1, sha256;
} xdb_credentials;

typedef struct xdb_roster_item {
    char *jid;          /* bare JID */
    char *name;         /* NULL when none */
    xdb_subscription subscription;
    bool ask;           /* an outbound subscription request is pending */
    char **groups;
    size_t ngroups;
} xdb_roster_item;

typedef struct xdb_pending {
    char *jid;          /* who asked */
    char *xml;          /* their subscribe presence, as received */
} xdb_pending;

typedef struct xdb_roster {
    int64_t version;    /* XEP-0237: bumped by every change */
    xdb_roster_item *items;
    size_t nitems;
    xdb_pending *pending;
    size_t npending;
} xdb_roster;

typedef struct xdb_offline {
    int64_t stamp_ms;   /* when it was stored (Unix epoch, ms) */
    char *xml;
} xdb_offline;

/* Bytes; data has a NUL after its len bytes (not counted), so text values read as strings. */
typedef struct xdb_value {
    char *data;         /* NULL only while unset */
    size_t len;
} xdb_value;

typedef struct xdb_doc {
    char *key;
    xdb_value value;
} xdb_doc;

typedef struct xdb_docs {
    xdb_doc *v;
    size_t n;
} xdb_docs;

typedef struct xdb_strings {
    char **v;
    size_t n;
} xdb_strings;

typedef struct xdb_hibernation {
    char *host, *user, *id;
    xdb_value record;
    xdb_strings stanzas;        /* in order */
} xdb_hibernation;

typedef struct xdb_pep_item {
    char *id;
    char *xml;                  /* the payload */
} xdb_pep_item;

typedef struct xdb_pep_node {
    char *node;
    xdb_value config;           /* the SM's record */
    xdb_pep_item last;          /* id NULL when the node has no item */
} xdb_pep_node;

/* One archived message: when (ms), its stanza id (the archive's, XEP-0359), the contact's bare
 * JID and resource ("" when none), the message as serialized; MAM_APPEND: whose archive
 * (host, user; NULL: the request's account). */
typedef struct xdb_mam_entry {
    int64_t stamp;
    char *stanza_id, *peer, *resource, *xml;
    char *host, *user;
} xdb_mam_entry;

typedef struct xdb_mam_entries {
    xdb_mam_entry *v;
    size_t n, cap;
} xdb_mam_entries;

/* What MAM_QUERY selects (every field optional: NULL or 0), in archive order (time, then
 * arrival): messages with peer (and resource), from start to end (ms, inclusive), those whose
 * stanza ids are in ids, after the message after_id or before before_id (last: the last page),
 * forwards from the offset-th; at most max (0: 50). */
typedef struct xdb_mam_query {
    char *peer, *resource;
    int64_t start, end;
    char *after_id, *before_id;
    bool last;
    xdb_strings ids;
    int64_t max;
    int64_t offset;             /* forwards: skip this many first (XEP-0059's index) */
} xdb_mam_query;

typedef struct xdb_request xdb_request;
typedef void (*xdb_callback)(xdb_request *req, void *ctx);

struct xdb_request {
    xdb_op op;
    char *host, *user;          /* whose data */
    /* Arguments */
    char *password;             /* USER_CREATE, USER_PASSWD: derive creds from this (then wiped) */
    xdb_credentials creds;      /* USER_CREATE, USER_PASSWD without password; USER_CREDS result */
    xdb_roster_item item;       /* ROSTER_SET, ROSTER_REMOVE (jid only) */
    char *jid;                  /* PENDING_ADD, PENDING_REMOVE */
    char *xml;                  /* PENDING_ADD, OFFLINE_STORE */
    int64_t quota;              /* OFFLINE_STORE: most messages kept; DOC_PUT: most documents
                                 * in the store (0: no quota); UPLOAD_RESERVE: most bytes */
    int64_t upload_size;        /* UPLOAD_RESERVE: the slot's bytes */
    int64_t upload_since;       /* UPLOAD_RESERVE: slots older than this (ms) no longer count */
    xdb_strings jids;           /* BLOCK_ADD, BLOCK_REMOVE; BLOCK_LIST result */
    char *store, *key;          /* DOC_*: the store's name; the document's key (DOC_LIST: a
                                 * prefix of the keys listed) */
    xdb_value value;            /* DOC_PUT; DOC_GET result */
    size_t value_max;           /* DOC_PUT: the largest value accepted (0: no bound) */
    int64_t limit;              /* DOC_LIST: at most this many, the first in key order (0: all);
                                 * PEP_ITEM_PUT, PEP_ITEMS */
    xdb_strings stanzas;        /* HIB_PUT */
    int64_t seq;                /* HIB_KEEP */
    char *node, *item_id;       /* PEP_* */
    xdb_strings item_ids;       /* PEP_ITEMS */
    xdb_mam_query mam_query;    /* MAM_QUERY, MAM_EXPIRE (end) */
    xdb_mam_entries mam;        /* MAM_APPEND; MAM_QUERY result */
    bool mam_complete;          /* MAM_QUERY: nothing more in the direction asked */
    /* Results */
    xdb_status status;
    char error[200];            /* when status is XDB_ERROR or XDB_INVALID */
    xdb_roster roster;          /* ROSTER_LOAD; version also for ROSTER_SET/REMOVE */
    xdb_offline *offline;       /* OFFLINE_FETCH, oldest first */
    size_t noffline;
    int64_t count;              /* OFFLINE_COUNT; DOC_CLEAR: documents deleted; HIB_DROP;
                                 * PEP_PURGE; MAM_TRIM, MAM_EXPIRE; UPLOAD_RESERVE: bytes */
    xdb_strings users;          /* USER_LIST */
    xdb_docs docs;              /* DOC_LIST */
    xdb_hibernation *hibernations;   /* HIB_LOAD */
    size_t nhibernations;
    xdb_pep_node *pep_nodes;    /* PEP_LOAD */
    size_t npep_nodes;
    xdb_pep_item *pep_items;    /* PEP_ITEMS */
    size_t npep_items;
    /* Owned by xdbsql while submitted */
    uint64_t submitted_us;      /* when (monotonic): the latency histogram */
    bool commit_sent;           /* a COMMIT went out: after a lost connection, the outcome is unknown */
    xdb_callback callback;
    void *ctx;
    xdb_request *next;
};

/* A request for op on host/user's data; strings are copied. */
xdb_request *xdb_request_new(xdb_op op, const char *host, const char *user);
/* Argument setters: they copy. */
void xdb_request_set_password(xdb_request *r, const char *password);
void xdb_request_set_jid(xdb_request *r, const char *jid);
void xdb_request_set_xml(xdb_request *r, const char *xml);
/* The document (DOC_*): store name and key (NULL = ""). */
void xdb_request_set_doc(xdb_request *r, const char *store, const char *key);
void xdb_request_set_value(xdb_request *r, const void *data, size_t len);
/* The key alone (HIB_*: the resumption id). */
void xdb_request_set_key(xdb_request *r, const char *key);
void xdb_request_add_stanza(xdb_request *r, const char *xml);
/* PEP_*: the node, and the item (NULL: none). */
void xdb_request_set_pep(xdb_request *r, const char *node, const char *item_id);
void xdb_request_add_item_id(xdb_request *r, const char *item_id);
/* Appends a copy of value to a list of strings (an argument such as mam_query.ids). */
void xdb_strings_push(xdb_strings *s, const char *value);
/* MAM_APPEND: one more entry (strings copied), for the archive of host/user (NULL, NULL: the
 * request's account). */
void xdb_request_add_mam(xdb_request *r, const char *host, const char *user, int64_t stamp,
                         const char *stanza_id, const char *peer, const char *resource,
                         const char *xml);
void xdb_request_set_item(xdb_request *r, const xdb_roster_item *item);
void xdb_request_add_jid(xdb_request *r, const char *jid);
void xdb_request_free(xdb_request *r);

const char *xdb_status_name(xdb_status s);
const char *xdb_op_name(xdb_op op);

/* Runs a request synchronously on the caller's connection (admin tool, tests), retrying once on
 * a fresh connection when the connection was lost and a retry is safe. Returns r->status. */
xdb_status xdb_run(db_conn *c, xdb_request *r);

/* Brings the schema to the current version. Returns 0, or -1 with the reason in err (a database
 * newer than this program, or a failed migration). */
int xdb_migrate(db_conn *c, char *err, size_t errlen);
/* The same, stopping at version target (tests use it to build an older database). */
int xdb_migrate_to(db_conn *c, int target, char *err, size_t errlen);
/* The schema version this program writes, and the one a database is at (0 = empty, -1 = error). */
int xdb_schema_current(void);
int xdb_schema_version(db_conn *c);

/* The asynchronous service. */
typedef struct xdbsql xdbsql;

typedef struct xdbsql_options {
    db_settings db;
    int workers;                       /* storage threads; 0 = default (4; 2 for sqlite) */
    void (*notify)(void *notify_ctx);  /* called from a worker after it queued a result */
    void *notify_ctx;
} xdbsql_options;

/* Connects every worker and migrates the schema. NULL with the reason in err on failure. */
xdbsql *xdbsql_open(const xdbsql_options *opt, char *err, size_t errlen);
/* Finishes every submitted request (their callbacks run in the final dispatch), then stops. */
void xdbsql_close(xdbsql *x);
int xdbsql_workers(const xdbsql *x);
/* The storage lane (the worker) of host/user's requests, 0 to xdbsql_workers() - 1: a lane runs
 * its requests in the order submitted. */
int xdbsql_lane(const xdbsql *x, const char *host, const char *user);
/* Queues r; cb runs on the owner thread from xdbsql_dispatch, then r is freed. */
void xdbsql_submit(xdbsql *x, xdb_request *r, xdb_callback cb, void *ctx);
/* Runs the callbacks of finished requests; returns how many ran. */
size_t xdbsql_dispatch(xdbsql *x);
/* Requests submitted and not yet dispatched. */
size_t xdbsql_pending(const xdbsql *x);
/* Its metrics (core/metrics.h): pending requests, workers whose database is down, each op's
 * latency and failures. The owner thread. */
void xdbsql_metrics(const xdbsql *x, buf *b);

#endif
