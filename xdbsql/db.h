/* xdbsql/db.h — one database connection with prepared statements, over any driver.
 *
 * Every SQL statement in xdbsql is written once, with `?` placeholders, and runs unchanged on
 * every driver (the PostgreSQL driver rewrites `?` to `$n` when it prepares). Schema text differs
 * per database only in its column types, which each driver supplies as a db_dialect.
 *
 * A db_conn keeps each statement prepared once (cached by its SQL text's address, so statements
 * are string constants) and re-established after a reconnect. Parameters are 1-based, columns
 * 0-based.
 *
 * Thread rules: a db_conn and its statements belong to one thread (one storage worker, or the
 * admin tool). Drivers keep no global state beyond their client library's own initialisation.
 *
 * Errors: calls return a db_rc. DB_LOST and DB_LOST_UNAPPLIED mean the server connection is
 * gone: the caller (xdbsql/store.c) reconnects with db_reconnect() and retries once when that is
 * safe. DB_LOST_UNAPPLIED says it is always safe: the statement was never sent, or the server
 * answered it with an error ending the session, which rolls its transaction back. The last
 * error's text is db_errmsg().
 *
 * A database server that is down costs nothing per request: reconnects go through the server's
 * circuit breaker (xdbsql/breaker.h). After a failed reconnect the connection is down: every call
 * fails at once with DB_LOST_UNAPPLIED, db_errmsg() says "storage unavailable: <the driver's last
 * connect error>", and db_reconnect() itself fails at once, touching no network, until the
 * breaker's prober finds the server answering; then the next db_reconnect() connects.
 */
#ifndef JABSHARD_XDBSQL_DB_H
#define JABSHARD_XDBSQL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    DB_OK = 0,
    DB_ROW,        /* db_step: a row is available */
    DB_DONE,       /* db_step: no more rows */
    DB_CONSTRAINT, /* a unique or foreign-key constraint refused the change */
    DB_LOST,       /* the connection to the server is gone; the statement may have been applied */
    DB_LOST_UNAPPLIED, /* the connection is gone and the statement's transaction did not happen */
    DB_ERROR,      /* anything else */
} db_rc;

/* Where the data lives. Unused fields are NULL / 0. */
typedef struct db_settings {
    const char *driver;    /* "sqlite" (default), "pgsql" or "mariadb" */
    const char *path;      /* sqlite: the database file */
    const char *host;      /* pgsql, mariadb: server host (pgsql: or a socket directory) */
    int port;
    const char *user, *password, *database;
} db_settings;

/* Column types a schema needs, spelled per database. */
typedef struct db_dialect {
    const char *name;
    const char *id_column;   /* auto-incrementing 64-bit primary key, with its PRIMARY KEY clause */
    const char *text;        /* unbounded UTF-8 text, never part of a key */
    const char *key_text;    /* UTF-8 text of up to 1023 bytes that may be part of a key */
    const char *sorted_key;  /* the same, compared and sorted byte by byte whatever the
                              * database's collation (ranges of keys, ORDER BY) */
    const char *jid_text;    /* a bare JID, up to 2047 bytes, that may be part of a key */
    const char *int64;       /* 64-bit integer */
    const char *blob;        /* bytes */
    const char *table_suffix;/* appended to CREATE TABLE (engine, charset); "" if none */
    const char *index_carry; /* between an index's key columns and the columns it only carries
                              * (so that a query is answered from the index alone, without a
                              * lookup of each row); NULL where that is not done: a statement
                              * that uses it is skipped there */
    bool on_duplicate_key;   /* an INSERT that may meet a unique key says ON DUPLICATE KEY
                              * (MariaDB), not ON CONFLICT (SQLite, PostgreSQL) */
} db_dialect;

typedef struct drv_conn drv_conn;   /* a driver's connection handle */
typedef struct drv_stmt drv_stmt;   /* a driver's prepared statement */

/* The driver vtable, one per database in driver_<name>.c. Drivers return DB_LOST(_UNAPPLIED) only
 * when the connection itself failed, so that retrying on a fresh connection makes sense. */
typedef struct db_driver {
    const char *name;
    const db_dialect *dialect;
    drv_conn *(*connect)(const db_settings *s, char *err, size_t errlen);
    void (*close)(drv_conn *c);
    db_rc (*exec)(drv_conn *c, const char *sql);        /* no parameters, no rows (DDL) */
    db_rc (*begin)(drv_conn *c);                        /* a write transaction */
    db_rc (*commit)(drv_conn *c);
    db_rc (*rollback)(drv_conn *c);
    drv_stmt *(*prepare)(drv_conn *c, const char *sql, db_rc *rc);
    db_rc (*bind_text)(drv_stmt *st, int index, const char *s, size_t len);
    db_rc (*bind_int)(drv_stmt *st, int index, int64_t v);
    db_rc (*bind_blob)(drv_stmt *st, int index, const void *p, size_t len);
    db_rc (*bind_null)(drv_stmt *st, int index);
    db_rc (*step)(drv_stmt *st);                        /* runs on first call; DB_ROW or DB_DONE */
    int64_t (*changes)(drv_stmt *st);                   /* rows changed, once step gave DB_DONE */
    const char *(*column_text)(drv_stmt *st, int col, size_t *len);  /* NULL for SQL NULL */
    int64_t (*column_int)(drv_stmt *st, int col);
    const void *(*column_blob)(drv_stmt *st, int col, size_t *len);
    void (*reset)(drv_stmt *st);                        /* ready to bind and step again */
    void (*finalize)(drv_stmt *st);
    const char *(*errmsg)(drv_conn *c);
    /* Whether the connection still looks usable, without a round trip (a non-blocking read
     * that notices a server-side close). NULL: an embedded database, always usable. */
    bool (*alive)(drv_conn *c);
} db_driver;

extern const db_driver db_driver_sqlite, db_driver_pgsql, db_driver_mariadb;

typedef struct db_conn db_conn;
typedef struct db_stmt db_stmt;

/* The driver named (NULL or "" = sqlite); NULL when there is none by that name. */
const db_driver *db_driver_find(const char *name);

/* Connects; on failure returns NULL with the reason in err. The settings are copied. */
db_conn *db_open(const db_settings *s, char *err, size_t errlen);
void db_close(db_conn *c);
/* Drops the connection and its statements and connects again, unless the breaker says the server
 * is down: then it fails at once. Each failure counts as one failed request in the breaker's
 * reports, so a caller calls it at most once for a request that fails. DB_OK or
 * DB_LOST_UNAPPLIED. */
db_rc db_reconnect(db_conn *c);
/* False when the server has closed the connection since its last use (no round trip). */
bool db_alive(db_conn *c);
/* True while the connection is down: its last reconnect failed or was refused. */
bool db_down(const db_conn *c);
const db_dialect *db_dialect_of(const db_conn *c);
const char *db_errmsg(db_conn *c);

db_rc db_exec(db_conn *c, const char *sql);
db_rc db_begin(db_conn *c);
db_rc db_commit(db_conn *c);
db_rc db_rollback(db_conn *c);

/* The prepared statement for sql (a string constant), reset and ready to bind; NULL on failure
 * with *rc set. Statements stay owned by the connection. */
db_stmt *db_prepare(db_conn *c, const char *sql, db_rc *rc);
db_rc db_bind_text(db_stmt *st, int index, const char *s);
db_rc db_bind_textn(db_stmt *st, int index, const char *s, size_t len);
db_rc db_bind_int(db_stmt *st, int index, int64_t v);
db_rc db_bind_blob(db_stmt *st, int index, const void *p, size_t len);
db_rc db_step(db_stmt *st);
int64_t db_changes(db_stmt *st);
const char *db_column_text(db_stmt *st, int col, size_t *len);
int64_t db_column_int(db_stmt *st, int col);
const void *db_column_blob(db_stmt *st, int col, size_t *len);

/* True for the codes after which the work can be retried on a fresh connection. */
static inline bool db_rc_lost(db_rc rc) { return rc == DB_LOST || rc == DB_LOST_UNAPPLIED; }

#endif
