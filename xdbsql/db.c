/* xdbsql/db.c — a driver-independent connection: driver lookup, the prepared-statement cache and
 * reconnection through the server's circuit breaker (xdbsql/breaker.h). */
#include "xdbsql/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xdbsql/breaker.h"

struct db_stmt {
    db_conn *conn;
    const char *sql;      /* the caller's string constant: its address is the cache key */
    drv_stmt *raw;        /* NULL until prepared on the current connection */
    db_stmt *next;
};

struct db_conn {
    const db_driver *driver;
    drv_conn *raw;        /* NULL while down: the last reconnect failed or was refused */
    db_settings settings; /* strings owned by the conn */
    db_stmt *stmts;
    db_breaker *breaker;  /* shared with every connection to the same server */
    char err[300];        /* while down: "storage unavailable: <the last connect error>" */
};

const db_driver *db_driver_find(const char *name)
{
    static const db_driver *const drivers[] = {&db_driver_sqlite, &db_driver_pgsql,
                                               &db_driver_mariadb};
    if (!name || !*name)
        return &db_driver_sqlite;
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}

static const char *dup_or_null(const char *s)
{
    return s ? mem_strdup(s) : NULL;
}

db_conn *db_open(const db_settings *s, char *err, size_t errlen)
{
    const db_driver *driver = db_driver_find(s->driver);
    if (!driver) {
        snprintf(err, errlen, "unknown storage driver \"%s\" (sqlite, pgsql or mariadb)", s->driver);
        return NULL;
    }
    drv_conn *raw = driver->connect(s, err, errlen);
    if (!raw)
        return NULL;
    db_conn *c = mem_zalloc(sizeof(*c));
    c->driver = driver;
    c->raw = raw;
    c->settings.driver = driver->name;
    c->settings.path = dup_or_null(s->path);
    c->settings.host = dup_or_null(s->host);
    c->settings.port = s->port;
    c->settings.user = dup_or_null(s->user);
    c->settings.password = dup_or_null(s->password);
    c->settings.database = dup_or_null(s->database);
    c->breaker = breaker_acquire(&c->settings);
    return c;
}

static void drop_connection(db_conn *c)
{
    for (db_stmt *st = c->stmts; st; st = st->next)
        if (st->raw) {
            c->driver->finalize(st->raw);
            st->raw = NULL;
        }
    if (c->raw) {
        c->driver->close(c->raw);
        c->raw = NULL;
    }
}

void db_close(db_conn *c)
{
    if (!c)
        return;
    drop_connection(c);
    db_stmt *st = c->stmts;
    while (st) {
        db_stmt *next = st->next;
        free(st);
        st = next;
    }
    free((char *)c->settings.path);
    free((char *)c->settings.host);
    free((char *)c->settings.user);
    free((char *)c->settings.password);
    free((char *)c->settings.database);
    breaker_release(c->breaker);
    free(c);
}

db_rc db_reconnect(db_conn *c)
{
    drop_connection(c);
    char why[256] = "";
    if (breaker_admit(c->breaker, why, sizeof(why))) {
        c->raw = c->driver->connect(&c->settings, why, sizeof(why));
        if (c->raw) {
            breaker_connected(c->breaker);
            return DB_OK;
        }
        breaker_failed(c->breaker, why);
    }
    snprintf(c->err, sizeof(c->err), "storage unavailable: %s", why);
    return DB_LOST_UNAPPLIED;
}

bool db_alive(db_conn *c)
{
    return c->raw && (!c->driver->alive || c->driver->alive(c->raw));
}

bool db_down(const db_conn *c)
{
    return !c->raw;
}

const db_dialect *db_dialect_of(const db_conn *c)
{
    return c->driver->dialect;
}

const char *db_errmsg(db_conn *c)
{
    return c->raw ? c->driver->errmsg(c->raw) : c->err;
}

db_rc db_exec(db_conn *c, const char *sql)
{
    return c->raw ? c->driver->exec(c->raw, sql) : DB_LOST_UNAPPLIED;
}

db_rc db_begin(db_conn *c)
{
    return c->raw ? c->driver->begin(c->raw) : DB_LOST_UNAPPLIED;
}

db_rc db_commit(db_conn *c)
{
    return c->raw ? c->driver->commit(c->raw) : DB_LOST_UNAPPLIED;
}

db_rc db_rollback(db_conn *c)
{
    return c->raw ? c->driver->rollback(c->raw) : DB_LOST_UNAPPLIED;
}

db_stmt *db_prepare(db_conn *c, const char *sql, db_rc *rc)
{
    if (!c->raw) {
        *rc = DB_LOST_UNAPPLIED;
        return NULL;
    }
    db_stmt *st = c->stmts;
    while (st && st->sql != sql)
        st = st->next;
    if (!st) {
        st = mem_zalloc(sizeof(*st));
        st->conn = c;
        st->sql = sql;
        st->next = c->stmts;
        c->stmts = st;
    }
    if (st->raw) {
        c->driver->reset(st->raw);
    } else {
        st->raw = c->driver->prepare(c->raw, sql, rc);
        if (!st->raw)
            return NULL;
    }
    *rc = DB_OK;
    return st;
}

db_rc db_bind_text(db_stmt *st, int index, const char *s)
{
    return s ? st->conn->driver->bind_text(st->raw, index, s, strlen(s))
             : st->conn->driver->bind_null(st->raw, index);
}

db_rc db_bind_textn(db_stmt *st, int index, const char *s, size_t len)
{
    return st->conn->driver->bind_text(st->raw, index, s, len);
}

db_rc db_bind_int(db_stmt *st, int index, int64_t v)
{
    return st->conn->driver->bind_int(st->raw, index, v);
}

db_rc db_bind_blob(db_stmt *st, int index, const void *p, size_t len)
{
    return st->conn->driver->bind_blob(st->raw, index, p, len);
}

db_rc db_step(db_stmt *st)
{
    return st->conn->driver->step(st->raw);
}

int64_t db_changes(db_stmt *st)
{
    return st->conn->driver->changes(st->raw);
}

const char *db_column_text(db_stmt *st, int col, size_t *len)
{
    return st->conn->driver->column_text(st->raw, col, len);
}

int64_t db_column_int(db_stmt *st, int col)
{
    return st->conn->driver->column_int(st->raw, col);
}

const void *db_column_blob(db_stmt *st, int col, size_t *len)
{
    return st->conn->driver->column_blob(st->raw, col, len);
}
