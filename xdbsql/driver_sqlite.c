/* xdbsql/driver_sqlite.c — the built-in storage driver: one SQLite file in WAL mode.
 *
 * Several storage workers may each hold a connection to the same file: WAL lets readers run
 * beside the one writer, and write transactions start IMMEDIATE with a busy timeout so two
 * writers queue instead of failing with SQLITE_BUSY halfway through. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/mem.h"
#include "xdbsql/db.h"

struct drv_conn {
    sqlite3 *db;
};

struct drv_stmt {
    sqlite3_stmt *st;
    sqlite3 *db;
    int64_t changes;   /* rows changed, once a step returned SQLITE_DONE */
};

/* How long a writer waits for another connection's transaction before giving up. */
#define SQLITE_BUSY_MS 10000

static db_rc map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
        return DB_OK;
    case SQLITE_ROW:
        return DB_ROW;
    case SQLITE_DONE:
        return DB_DONE;
    case SQLITE_CONSTRAINT:
        return DB_CONSTRAINT;
    default:
        return DB_ERROR;
    }
}

static drv_conn *sqlite_connect(const db_settings *s, char *err, size_t errlen)
{
    const char *path = s->path && *s->path ? s->path : "jabshard.db";
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, SQLITE_BUSY_MS);
    char *msg = NULL;
    rc = sqlite3_exec(db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot set up %s: %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sqlite3_close(db);
        return NULL;
    }
    drv_conn *c = mem_zalloc(sizeof(*c));
    c->db = db;
    return c;
}

static void sqlite_close(drv_conn *c)
{
    sqlite3_close(c->db);
    free(c);
}

static db_rc sqlite_exec(drv_conn *c, const char *sql)
{
    return map_rc(sqlite3_exec(c->db, sql, NULL, NULL, NULL));
}

static db_rc sqlite_begin(drv_conn *c)
{
    return sqlite_exec(c, "BEGIN IMMEDIATE");
}

static db_rc sqlite_commit(drv_conn *c)
{
    return sqlite_exec(c, "COMMIT");
}

static db_rc sqlite_rollback(drv_conn *c)
{
    return sqlite_exec(c, "ROLLBACK");
}

static drv_stmt *sqlite_prepare(drv_conn *c, const char *sql, db_rc *rc)
{
    sqlite3_stmt *raw = NULL;
    int r = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, NULL);
    if (r != SQLITE_OK) {
        *rc = map_rc(r);
        return NULL;
    }
    drv_stmt *st = mem_zalloc(sizeof(*st));
    st->st = raw;
    st->db = c->db;
    *rc = DB_OK;
    return st;
}

static db_rc sqlite_bind_text(drv_stmt *st, int index, const char *s, size_t len)
{
    return map_rc(sqlite3_bind_text64(st->st, index, s, len, SQLITE_TRANSIENT, SQLITE_UTF8));
}

static db_rc sqlite_bind_int(drv_stmt *st, int index, int64_t v)
{
    return map_rc(sqlite3_bind_int64(st->st, index, v));
}

static db_rc sqlite_bind_blob(drv_stmt *st, int index, const void *p, size_t len)
{
    return map_rc(sqlite3_bind_blob64(st->st, index, p, len, SQLITE_TRANSIENT));
}

static db_rc sqlite_bind_null(drv_stmt *st, int index)
{
    return map_rc(sqlite3_bind_null(st->st, index));
}

static db_rc sqlite_step(drv_stmt *st)
{
    int rc = sqlite3_step(st->st);
    if (rc == SQLITE_DONE)
        st->changes = sqlite3_changes64(st->db);
    return map_rc(rc);
}

static int64_t sqlite_changes(drv_stmt *st)
{
    return st->changes;
}

static const char *sqlite_column_text(drv_stmt *st, int col, size_t *len)
{
    const char *s = (const char *)sqlite3_column_text(st->st, col);
    if (len)
        *len = s ? (size_t)sqlite3_column_bytes(st->st, col) : 0;
    return s;
}

static int64_t sqlite_column_int(drv_stmt *st, int col)
{
    return sqlite3_column_int64(st->st, col);
}

static const void *sqlite_column_blob(drv_stmt *st, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(st->st, col);
    *len = (size_t)sqlite3_column_bytes(st->st, col);
    return p;
}

static void sqlite_reset(drv_stmt *st)
{
    sqlite3_reset(st->st);
    sqlite3_clear_bindings(st->st);
    st->changes = 0;
}

static void sqlite_finalize(drv_stmt *st)
{
    sqlite3_finalize(st->st);
    free(st);
}

static const char *sqlite_errmsg(drv_conn *c)
{
    return sqlite3_errmsg(c->db);
}

static const db_dialect sqlite_dialect = {
    .name = "sqlite",
    .id_column = "INTEGER PRIMARY KEY AUTOINCREMENT",
    .text = "TEXT",
    .key_text = "TEXT",
    .sorted_key = "TEXT", /* SQLite compares text with memcmp unless told otherwise */
    .jid_text = "TEXT",
    .int64 = "INTEGER",
    .blob = "BLOB",
    .table_suffix = "",
    /* No INCLUDE: carried columns are more key columns. A table's rows are in rowid order, so
     * without it each of a user's roster items is a lookup of its own page. */
    .index_carry = ", ",
};

const db_driver db_driver_sqlite = {
    .name = "sqlite",
    .dialect = &sqlite_dialect,
    .connect = sqlite_connect,
    .close = sqlite_close,
    .exec = sqlite_exec,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .prepare = sqlite_prepare,
    .bind_text = sqlite_bind_text,
    .bind_int = sqlite_bind_int,
    .bind_blob = sqlite_bind_blob,
    .bind_null = sqlite_bind_null,
    .step = sqlite_step,
    .changes = sqlite_changes,
    .column_text = sqlite_column_text,
    .column_int = sqlite_column_int,
    .column_blob = sqlite_column_blob,
    .reset = sqlite_reset,
    .finalize = sqlite_finalize,
    .errmsg = sqlite_errmsg,
};
