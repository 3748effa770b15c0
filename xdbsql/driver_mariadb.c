/* xdbsql/driver_mariadb.c — the MariaDB storage driver, on libmariadb's prepared-statement API.
 *
 * Every statement with values goes through mysql_stmt_* with bound parameters; SQL is never
 * built from values. Connections are set up so that xdbsql's shared SQL means the same here as
 * on the other databases:
 *   - CLIENT_FOUND_ROWS: an UPDATE reports the rows it matched, not the rows whose values
 *     changed, so an upsert that rewrites identical values does not go on to INSERT;
 *   - utf8mb4 on the wire; automatic reconnection off, so that a dropped connection surfaces as
 *     DB_LOST and xdbsql decides whether retrying is safe (a silent reconnect would lose the
 *     open transaction behind its back);
 *   - a fixed strict sql_mode, so a value too long for its column is an error rather than
 *     truncated, and NO_ENGINE_SUBSTITUTION, so ENGINE=InnoDB is never quietly replaced;
 *   - READ COMMITTED: the storage workers serve disjoint users, but at REPEATABLE READ the
 *     offline store's INSERT ... SELECT locks the index ranges it reads, neighbours' gaps
 *     included, and workers storing for different users fail each other (MariaDB error 1467,
 *     seen in the suite's concurrent test). One user's writes are serialised by xdbsql anyway.
 *
 * Values are stored as bytes (VARBINARY, LONGBLOB): they round-trip exactly, compare byte for
 * byte with no trailing-space padding, and need no collation. Results are stored client-side
 * (mysql_stmt_store_result) and every column is fetched as text into a per-column buffer that
 * grows to the longest value seen, so reading a column never needs the network. */
#include <errno.h>
#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/mem.h"
#include "core/timer.h"
#include "xdbsql/db.h"

/* How long connecting may take before the server counts as unreachable. */
#define MARIADB_CONNECT_TIMEOUT_S 10
/* The oldest server the shared SQL is right on: before 10.5, a column's inline REFERENCES
 * clause is parsed and ignored, so deleting a user would cascade to nothing. */
#define MARIADB_MIN_VERSION 100500
/* A result column's first buffer; buffers that grew past the cap are given back on reset. */
#define COLUMN_INITIAL 256
#define COLUMN_KEEP (64 * 1024)

struct drv_conn {
    MYSQL *my;
    char err[512];   /* the last failure, connection- or statement-level */
};

/* A parameter's value, copied at bind time so the caller's buffer may go before execute. */
typedef struct param {
    char *data;
    size_t cap;
    int64_t i;
    unsigned long len;
} param;

/* One result column of the current row, NUL-terminated. */
typedef struct column {
    char *buf;
    size_t cap;            /* buf holds cap bytes: at most cap - 1 of value, then a NUL */
    unsigned long len;
    my_bool is_null, truncated;
} column;

struct drv_stmt {
    drv_conn *conn;
    MYSQL_STMT *st;
    unsigned nparams, ncols;
    MYSQL_BIND *params;    /* nparams; handed to the library at execute */
    param *values;         /* nparams */
    MYSQL_BIND *results;   /* ncols; handed to the library before fetching */
    column *cols;          /* ncols */
    bool executed, done, rebind;
    int64_t changes;
};

static pthread_once_t library_once = PTHREAD_ONCE_INIT;
static int library_rc;

/* mysql_init initialises the library on first use, which is not thread-safe; do it once. */
static void library_init(void)
{
    library_rc = mysql_library_init(0, NULL, NULL);
}

static db_rc map_errno(unsigned int e)
{
    switch (e) {
    case ER_DUP_ENTRY:
    case ER_DUP_ENTRY_WITH_KEY_NAME:
    case ER_DUP_KEY:
    case ER_DUP_UNIQUE:
    case ER_ROW_IS_REFERENCED:
    case ER_NO_REFERENCED_ROW:
    case ER_ROW_IS_REFERENCED_2:
    case ER_NO_REFERENCED_ROW_2:
    case ER_FOREIGN_DUPLICATE_KEY_WITH_CHILD_INFO:
    case ER_FOREIGN_DUPLICATE_KEY_WITHOUT_CHILD_INFO:
        return DB_CONSTRAINT;
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_ERR_NET_READ:
    case CR_ERR_NET_WRITE:
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
        return DB_LOST;
    default:
        return DB_ERROR;
    }
}

static db_rc conn_fail(drv_conn *c)
{
    unsigned int e = mysql_errno(c->my);
    snprintf(c->err, sizeof(c->err), "%s (MariaDB error %u)", mysql_error(c->my), e);
    return map_errno(e);
}

static db_rc stmt_fail(drv_stmt *st)
{
    unsigned int e = mysql_stmt_errno(st->st);
    snprintf(st->conn->err, sizeof(st->conn->err), "%s (MariaDB error %u)", mysql_stmt_error(st->st),
             e);
    return map_errno(e);
}

/* One attempt to open and set up a session; NULL with the reason in err and libmariadb's error
 * number in *error. */
static MYSQL *session_open(const db_settings *s, const char *host, bool via_socket, int port,
                           const char *where, char *err, size_t errlen, unsigned int *error)
{
    *error = 0;
    MYSQL *my = mysql_init(NULL);
    if (!my) {
        snprintf(err, errlen, "mariadb: cannot connect to %s: out of memory", where);
        return NULL;
    }
    unsigned int timeout = MARIADB_CONNECT_TIMEOUT_S, no_infile = 0;
    my_bool no_reconnect = 0;
    mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(my, MYSQL_OPT_RECONNECT, &no_reconnect);
    mysql_options(my, MYSQL_OPT_LOCAL_INFILE, &no_infile);
    mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(my, MYSQL_INIT_COMMAND,
                  "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
                  "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', SESSION autocommit = 1");
    mysql_options(my, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    if (!mysql_real_connect(my, via_socket ? "localhost" : host, s->user, s->password, s->database,
                            via_socket ? 0 : (unsigned int)port, via_socket ? host : NULL,
                            CLIENT_FOUND_ROWS)) {
        *error = mysql_errno(my);
        snprintf(err, errlen, "mariadb: cannot connect to %s: %s", where, mysql_error(my));
        mysql_close(my);
        return NULL;
    }
    return my;
}

static drv_conn *mdrv_connect(const db_settings *s, char *err, size_t errlen)
{
    /* host may name the server's Unix socket instead, as a path. */
    const char *host = s->host && *s->host ? s->host : "localhost";
    bool via_socket = host[0] == '/';
    int port = s->port > 0 ? s->port : 3306;
    const char *database = s->database ? s->database : "";
    char where[300];
    if (via_socket)
        snprintf(where, sizeof(where), "%s (db %s)", host, database);
    else
        snprintf(where, sizeof(where), "%s:%d (db %s)", host, port, database);

    pthread_once(&library_once, library_init);
    if (library_rc != 0) {
        snprintf(err, errlen, "mariadb: cannot initialise the client library");
        return NULL;
    }
    unsigned int error;
    uint64_t started = timer_now_ms();
    MYSQL *my = session_open(s, host, via_socket, port, where, err, errlen, &error);
    /* A session the server accepted and then dropped at once while it was being set up (an
     * operator's KILL of every connection landing on the new one, as the storage suite does) says
     * nothing about the server being unreachable: it is tried once more before the failure goes
     * to the circuit breaker, which would fail requests at once for a while. A handshake that
     * timed out is not: that would only double the wait. */
    if (!my && error == CR_SERVER_LOST && timer_now_ms() - started < 1000)
        my = session_open(s, host, via_socket, port, where, err, errlen, &error);
    if (!my)
        return NULL;
    const char *info = mysql_get_server_info(my);
    if (!strstr(info, "MariaDB") || mysql_get_server_version(my) < MARIADB_MIN_VERSION) {
        snprintf(err, errlen, "mariadb: %s runs %s; jabshard needs MariaDB 10.5 or later", where,
                 info);
        mysql_close(my);
        return NULL;
    }
    drv_conn *c = mem_zalloc(sizeof(*c));
    c->my = my;
    return c;
}

static void mdrv_close(drv_conn *c)
{
    mysql_close(c->my);
    free(c);
}

static db_rc mdrv_exec(drv_conn *c, const char *sql)
{
    if (mysql_real_query(c->my, sql, strlen(sql)) != 0)
        return conn_fail(c);
    /* A statement that does return rows has them read and dropped, keeping the protocol in step. */
    MYSQL_RES *res = mysql_store_result(c->my);
    if (res)
        mysql_free_result(res);
    else if (mysql_field_count(c->my) != 0)
        return conn_fail(c);
    return DB_OK;
}

static db_rc mdrv_begin(drv_conn *c)
{
    return mdrv_exec(c, "START TRANSACTION");
}

static db_rc mdrv_commit(drv_conn *c)
{
    return mdrv_exec(c, "COMMIT");
}

static db_rc mdrv_rollback(drv_conn *c)
{
    return mdrv_exec(c, "ROLLBACK");
}

/* Unbinds every parameter: an unbound one is SQL NULL, as on the other drivers. */
static void clear_params(drv_stmt *st)
{
    for (unsigned i = 0; i < st->nparams; i++) {
        memset(&st->params[i], 0, sizeof(st->params[i]));
        st->params[i].buffer_type = MYSQL_TYPE_NULL;
    }
}

static void mdrv_finalize(drv_stmt *st)
{
    mysql_stmt_close(st->st);
    for (unsigned i = 0; i < st->nparams; i++)
        free(st->values[i].data);
    for (unsigned i = 0; i < st->ncols; i++)
        free(st->cols[i].buf);
    free(st->params);
    free(st->values);
    free(st->results);
    free(st->cols);
    free(st);
}

static drv_stmt *mdrv_prepare(drv_conn *c, const char *sql, db_rc *rc)
{
    MYSQL_STMT *raw = mysql_stmt_init(c->my);
    if (!raw) {
        *rc = conn_fail(c);
        return NULL;
    }
    drv_stmt *st = mem_zalloc(sizeof(*st));
    st->conn = c;
    st->st = raw;
    if (mysql_stmt_prepare(raw, sql, strlen(sql)) != 0) {
        *rc = stmt_fail(st);
        mdrv_finalize(st);
        return NULL;
    }
    st->nparams = mysql_stmt_param_count(raw);
    st->params = mem_array(st->nparams ? st->nparams : 1, sizeof(*st->params));
    st->values = mem_array(st->nparams ? st->nparams : 1, sizeof(*st->values));
    clear_params(st);
    *rc = DB_OK;
    return st;
}

static param *param_at(drv_stmt *st, int index)
{
    if (index < 1 || (unsigned)index > st->nparams) {
        snprintf(st->conn->err, sizeof(st->conn->err),
                 "parameter %d out of range (the statement has %u)", index, st->nparams);
        return NULL;
    }
    return &st->values[index - 1];
}

/* Binds a copy of len bytes as a string (text) or as bytes (blob). */
static db_rc bind_bytes(drv_stmt *st, int index, const void *p, size_t len,
                        enum enum_field_types type)
{
    param *v = param_at(st, index);
    if (!v)
        return DB_ERROR;
    /* Never a NULL buffer, even for "": the library sends a parameter without one as NULL. */
    if (len > v->cap || !v->data) {
        v->cap = len > v->cap ? len : 1;
        v->data = mem_realloc(v->data, v->cap);
    }
    if (len)
        memcpy(v->data, p, len);
    v->len = (unsigned long)len;
    MYSQL_BIND *b = &st->params[index - 1];
    memset(b, 0, sizeof(*b));
    b->buffer_type = type;
    b->buffer = v->data;
    b->buffer_length = v->len;
    b->length = &v->len;
    return DB_OK;
}

static db_rc mdrv_bind_text(drv_stmt *st, int index, const char *s, size_t len)
{
    return bind_bytes(st, index, s, len, MYSQL_TYPE_STRING);
}

static db_rc mdrv_bind_blob(drv_stmt *st, int index, const void *p, size_t len)
{
    return bind_bytes(st, index, p, len, MYSQL_TYPE_BLOB);
}

static db_rc mdrv_bind_int(drv_stmt *st, int index, int64_t value)
{
    param *v = param_at(st, index);
    if (!v)
        return DB_ERROR;
    v->i = value;
    MYSQL_BIND *b = &st->params[index - 1];
    memset(b, 0, sizeof(*b));
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = &v->i;
    return DB_OK;
}

static db_rc mdrv_bind_null(drv_stmt *st, int index)
{
    if (!param_at(st, index))
        return DB_ERROR;
    memset(&st->params[index - 1], 0, sizeof(st->params[index - 1]));
    st->params[index - 1].buffer_type = MYSQL_TYPE_NULL;
    return DB_OK;
}

/* Points result column i's bind at its buffer; every column is read as text. */
static void bind_column(drv_stmt *st, unsigned i)
{
    column *col = &st->cols[i];
    MYSQL_BIND *b = &st->results[i];
    memset(b, 0, sizeof(*b));
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = col->buf;
    b->buffer_length = (unsigned long)(col->cap - 1);
    b->length = &col->len;
    b->is_null = &col->is_null;
    b->error = &col->truncated;
}

/* Runs the statement and stores its result set, if any, client-side: DB_ROW when it has rows
 * to fetch, DB_DONE when it returns none, or the failure. */
static db_rc execute(drv_stmt *st)
{
    st->executed = true;
    if (st->nparams && mysql_stmt_bind_param(st->st, st->params))
        return stmt_fail(st);
    if (mysql_stmt_execute(st->st) != 0)
        return stmt_fail(st);
    unsigned ncols = mysql_stmt_field_count(st->st);
    if (ncols == 0) {
        st->changes = (int64_t)mysql_stmt_affected_rows(st->st);
        st->done = true;
        return DB_DONE;
    }
    if (mysql_stmt_store_result(st->st) != 0)
        return stmt_fail(st);
    /* A statement returning rows (SELECT, DELETE ... RETURNING) counts the rows it returned. */
    st->changes = (int64_t)mysql_stmt_num_rows(st->st);
    if (ncols != st->ncols) {
        /* First run, or the server re-prepared it against a changed table. */
        for (unsigned i = 0; i < st->ncols; i++)
            free(st->cols[i].buf);
        free(st->results);
        free(st->cols);
        st->ncols = ncols;
        st->results = mem_array(ncols, sizeof(*st->results));
        st->cols = mem_array(ncols, sizeof(*st->cols));
        for (unsigned i = 0; i < ncols; i++) {
            st->cols[i].cap = COLUMN_INITIAL;
            st->cols[i].buf = mem_alloc(COLUMN_INITIAL);
        }
    }
    for (unsigned i = 0; i < ncols; i++)
        bind_column(st, i);
    st->rebind = true;
    return DB_ROW;
}

static db_rc mdrv_step(drv_stmt *st)
{
    if (st->done)
        return DB_DONE;
    if (!st->executed) {
        db_rc rc = execute(st);
        if (rc != DB_ROW)
            return rc;
    }
    if (st->rebind) {
        if (mysql_stmt_bind_result(st->st, st->results))
            return stmt_fail(st);
        st->rebind = false;
    }
    int r = mysql_stmt_fetch(st->st);
    if (r == MYSQL_NO_DATA) {
        st->done = true;
        return DB_DONE;
    }
    if (r != 0 && r != MYSQL_DATA_TRUNCATED)
        return stmt_fail(st);
    for (unsigned i = 0; i < st->ncols; i++) {
        column *col = &st->cols[i];
        if (col->is_null)
            continue;
        if (col->len >= col->cap) {
            /* Longer than the buffer: grow it and read the whole value from the stored row.
             * The library keeps its own copy of the binds, so they are handed over again
             * before the next fetch. */
            col->cap = (size_t)col->len + 1;
            col->buf = mem_realloc(col->buf, col->cap);
            bind_column(st, i);
            if (mysql_stmt_fetch_column(st->st, &st->results[i], i, 0) != 0)
                return stmt_fail(st);
            st->rebind = true;
        }
        col->buf[col->len] = '\0';
    }
    return DB_ROW;
}

static int64_t mdrv_changes(drv_stmt *st)
{
    return st->changes;
}

static const char *mdrv_column_text(drv_stmt *st, int col, size_t *len)
{
    if (col < 0 || (unsigned)col >= st->ncols || st->cols[col].is_null) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = st->cols[col].len;
    return st->cols[col].buf;
}

static int64_t mdrv_column_int(drv_stmt *st, int col)
{
    const char *s = mdrv_column_text(st, col, NULL);
    return s ? strtoll(s, NULL, 10) : 0;
}

static const void *mdrv_column_blob(drv_stmt *st, int col, size_t *len)
{
    return mdrv_column_text(st, col, len);
}

static void mdrv_reset(drv_stmt *st)
{
    /* The result was stored client-side: freeing it needs no round trip. */
    if (st->executed)
        mysql_stmt_free_result(st->st);
    st->executed = st->done = false;
    st->changes = 0;
    clear_params(st);
    for (unsigned i = 0; i < st->ncols; i++) {
        column *col = &st->cols[i];
        col->is_null = 1;
        if (col->cap > COLUMN_KEEP) {
            col->cap = COLUMN_INITIAL;
            col->buf = mem_realloc(col->buf, col->cap);
        }
    }
    for (unsigned i = 0; i < st->nparams; i++) {
        param *v = &st->values[i];
        if (v->cap > COLUMN_KEEP) {
            free(v->data);
            v->data = NULL;
            v->cap = 0;
        }
    }
}

static bool mdrv_alive(drv_conn *c)
{
    /* The server says nothing between statements, so anything readable now is its goodbye
     * (a kill or shutdown notice) or EOF. */
    char byte;
    ssize_t n = recv((int)mysql_get_socket(c->my), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static const char *mdrv_errmsg(drv_conn *c)
{
    return c->err[0] ? c->err : mysql_error(c->my);
}

/* Byte strings throughout: see the file comment. A (host, username) key is 2 x 1023 bytes,
 * inside InnoDB's 3072-byte limit, which utf8mb4 VARCHAR(1023) (4 bytes a character) is not. */
static const db_dialect mdrv_dialect = {
    .name = "mariadb",
    .id_column = "BIGINT AUTO_INCREMENT PRIMARY KEY",
    .text = "LONGBLOB",
    .key_text = "VARBINARY(1023)",
    .sorted_key = "VARBINARY(1023)",
    .jid_text = "VARBINARY(2047)",
    .int64 = "BIGINT",
    .blob = "LONGBLOB",
    .table_suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    /* InnoDB keeps a table's rows in primary-key order: a user's roster is already together. */
    .index_carry = NULL,
    .on_duplicate_key = true,
};

const db_driver db_driver_mariadb = {
    .name = "mariadb",
    .dialect = &mdrv_dialect,
    .connect = mdrv_connect,
    .close = mdrv_close,
    .exec = mdrv_exec,
    .begin = mdrv_begin,
    .commit = mdrv_commit,
    .rollback = mdrv_rollback,
    .prepare = mdrv_prepare,
    .bind_text = mdrv_bind_text,
    .bind_int = mdrv_bind_int,
    .bind_blob = mdrv_bind_blob,
    .bind_null = mdrv_bind_null,
    .step = mdrv_step,
    .changes = mdrv_changes,
    .column_text = mdrv_column_text,
    .column_int = mdrv_column_int,
    .column_blob = mdrv_column_blob,
    .reset = mdrv_reset,
    .finalize = mdrv_finalize,
    .errmsg = mdrv_errmsg,
    .alive = mdrv_alive,
};
