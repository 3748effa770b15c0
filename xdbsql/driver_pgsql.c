/* xdbsql/driver_pgsql.c — the PostgreSQL storage driver, over libpq.
 *
 * Statements arrive with `?` placeholders; prepare rewrites them to $1..$n but defers the
 * server-side PQprepare to the first step, once the binds have given every parameter a type:
 * PostgreSQL cannot infer the type of a bare $n in a SELECT list (INSERT ... SELECT ?, ...). An
 * execution whose non-NULL parameters have other types than the server statement's prepares it
 * again; a NULL fits any type, so a column bound sometimes NULL costs no re-prepare.
 *
 * Parameters travel in binary format (text as its UTF-8 bytes, int8 big-endian, bytea raw), so no
 * value is ever quoted or escaped and a text value may be given with its length. Results come back
 * in text format: text is exactly the stored bytes, integers are parsed, bytea arrives as \x hex
 * that column_blob decodes.
 *
 * The first step runs the whole statement and keeps its PGresult; later steps hand out its rows.
 * Server-side statements live as long as their connection: db.c finalizes statements only when it
 * drops the connection, so finalize frees client memory only.
 */
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xdbsql/db.h"

/* Parameter type OIDs (catalog/pg_type_d.h is a server header, not installed with libpq). */
enum { PGSQL_BYTEAOID = 17, PGSQL_INT8OID = 20, PGSQL_TEXTOID = 25 };

/* Long enough for a slow server, short enough that a storage worker does not hang forever. */
#define PGSQL_CONNECT_TIMEOUT "10"

struct drv_conn {
    PGconn *pg;
    unsigned long prepared;    /* server statements prepared so far, naming the next one */
    char err[512];             /* the last failure, on one line */
};

typedef struct pgsql_param {
    Oid type;                  /* 0: NULL (also when never bound) */
    char *buf;                 /* text and bytea bytes, a copy owned here */
    size_t cap;
    int len;
    unsigned char int8[8];     /* int8, big-endian */
} pgsql_param;

typedef struct pgsql_blob {
    unsigned char *p;          /* from PQunescapeBytea (PQfreemem); NULL until decoded */
    size_t len;
} pgsql_blob;

struct drv_stmt {
    drv_conn *conn;
    char *sql;                 /* with $n placeholders */
    int nparams;
    pgsql_param *params;
    bool bad_bind;             /* a bind failed: executing would silently use NULL */
    /* PQexecPrepared's arrays, filled from params for each execution. */
    const char **values;
    int *lengths, *formats;
    Oid *types;                /* the types the server statement was prepared with */
    char name[32];             /* the server statement's name; "" until prepared */
    PGresult *res;             /* NULL until the first step executes */
    int row;                   /* the current row; PQntuples(res) once done */
    int64_t changes;
    pgsql_blob *blobs;         /* the current row's decoded bytea columns, per column */
};

/* Copies libpq's message to c->err as one line: libpq's messages end with a newline and may
 * span several lines (a FATAL message, then "server closed the connection"). */
static void note_error(drv_conn *c, const char *msg)
{
    size_t n = 0;
    for (const char *p = msg ? msg : ""; *p && n + 1 < sizeof(c->err); p++) {
        if (*p == '\n' || *p == '\t') {
            if (n > 0 && c->err[n - 1] != ' ')
                c->err[n++] = ' ';
        } else {
            c->err[n++] = *p;
        }
    }
    while (n > 0 && c->err[n - 1] == ' ')
        n--;
    c->err[n] = '\0';
}

/* Records why res (NULL when libpq could not even produce a result) failed and classifies it. */
static db_rc fail(drv_conn *c, const PGresult *res)
{
    /* The connection's message, not the result's: when the server ends the session it holds
     * the server's reason as well as libpq's "server closed the connection". */
    note_error(c, PQerrorMessage(c->pg));
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && strncmp(state, "23", 2) == 0)
        return DB_CONSTRAINT;
    /* 57P0x is the server ending the session (shutdown, pg_terminate_backend, crash recovery,
     * idle timeout) with an error in place of our statement's answer: the statement's
     * transaction was rolled back. Class 08 (connection exception) and a connection that just
     * went bad without a word leave the outcome unknown. */
    if (state && strncmp(state, "57P0", 4) == 0)
        return DB_LOST_UNAPPLIED;
    if (PQstatus(c->pg) == CONNECTION_BAD || (state && strncmp(state, "08", 2) == 0))
        return DB_LOST;
    return DB_ERROR;
}

/* DB_OK for a result that succeeded (consuming it either way). */
static db_rc check_result(drv_conn *c, PGresult *res)
{
    ExecStatusType status = PQresultStatus(res);
    db_rc rc = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? DB_OK : fail(c, res);
    PQclear(res);
    return rc;
}

static bool pgsql_alive(drv_conn *c)
{
    /* Reads whatever the server sent while we were idle, without blocking: a terminated
     * session's FATAL message and EOF turn the connection bad here. */
    /* libpq stops reading once it has the server's goodbye; a second read meets the EOF. */
    return PQstatus(c->pg) == CONNECTION_OK && PQconsumeInput(c->pg) && PQconsumeInput(c->pg) &&
           PQstatus(c->pg) == CONNECTION_OK;
}

static void ignore_notice(void *arg, const char *message)
{
    /* "table ... does not exist, skipping" and the like: expected, and not ours to print. */
}

static drv_conn *pgsql_connect(const db_settings *s, char *err, size_t errlen)
{
    char port[16] = "";
    if (s->port > 0)
        snprintf(port, sizeof(port), "%d", s->port);
    const char *keys[] = {"host", "port", "user", "password", "dbname", "client_encoding",
                          "application_name", "connect_timeout", NULL};
    const char *values[] = {s->host, port, s->user, s->password, s->database, "UTF8",
                            "jabshard", PGSQL_CONNECT_TIMEOUT, NULL};
    /* expand_dbname 0: a database name is a name, never a connection string. NULL or "" values
     * leave libpq's defaults. */
    PGconn *pg = PQconnectdbParams(keys, values, 0);
    const char *host = s->host && *s->host ? s->host : "the default socket";
    int port_shown = s->port > 0 ? s->port : 5432;
    const char *db = s->database && *s->database ? s->database : "(default)";
    if (!pg) {
        snprintf(err, errlen, "pgsql: cannot connect to %s:%d (db %s): out of memory", host,
                 port_shown, db);
        return NULL;
    }
    drv_conn *c = mem_zalloc(sizeof(*c));
    c->pg = pg;
    if (PQstatus(pg) != CONNECTION_OK) {
        note_error(c, PQerrorMessage(pg));
        snprintf(err, errlen, "pgsql: cannot connect to %s:%d (db %s): %s", host, port_shown, db,
                 c->err);
        PQfinish(pg);
        free(c);
        return NULL;
    }
    /* Text is UTF-8 on the wire; a database in another encoding would refuse some of it (or,
     * as SQL_ASCII, store it unchecked), so it is refused here, once, with the reason. */
    const char *encoding = PQparameterStatus(pg, "server_encoding");
    if (!encoding || strcmp(encoding, "UTF8") != 0) {
        snprintf(err, errlen,
                 "pgsql: database %s on %s:%d has encoding %s; jabshard needs UTF8 "
                 "(createdb -E UTF8)",
                 db, host, port_shown, encoding ? encoding : "unknown");
        PQfinish(pg);
        free(c);
        return NULL;
    }
    PQsetNoticeProcessor(pg, ignore_notice, NULL);
    return c;
}

static void pgsql_close(drv_conn *c)
{
    PQfinish(c->pg);
    free(c);
}

static db_rc pgsql_exec(drv_conn *c, const char *sql)
{
    return check_result(c, PQexec(c->pg, sql));
}

static db_rc pgsql_begin(drv_conn *c)
{
    return pgsql_exec(c, "BEGIN");
}

static db_rc pgsql_commit(drv_conn *c)
{
    PGresult *res = PQexec(c->pg, "COMMIT");
    if (PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
        /* COMMIT of a transaction in which a statement failed rolls back, and says so only in
         * its command tag. */
        PQclear(res);
        snprintf(c->err, sizeof(c->err), "pgsql: the transaction had failed and was rolled back");
        return DB_ERROR;
    }
    return check_result(c, res);
}

static db_rc pgsql_rollback(drv_conn *c)
{
    return pgsql_exec(c, "ROLLBACK");
}

/* Rewrites `?` placeholders to $1..$n, leaving quoted literals and identifiers alone. */
static char *rewrite_placeholders(const char *sql, int *nparams)
{
    size_t marks = 0;
    for (const char *p = sql; *p; p++)
        marks += *p == '?';
    /* Each `?` becomes `$` and at most 10 digits. */
    char *out = mem_alloc(strlen(sql) + marks * 10 + 1), *o = out;
    char quote = 0;
    int n = 0;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0; /* a doubled quote reopens at once */
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '?') {
            o += sprintf(o, "$%d", ++n);
            continue;
        }
        *o++ = *p;
    }
    *o = '\0';
    *nparams = n;
    return out;
}

static drv_stmt *pgsql_prepare(drv_conn *c, const char *sql, db_rc *rc)
{
    drv_stmt *st = mem_zalloc(sizeof(*st));
    st->conn = c;
    st->sql = rewrite_placeholders(sql, &st->nparams);
    size_t n = (size_t)st->nparams;
    st->params = mem_array(n, sizeof(*st->params));
    st->values = mem_array(n, sizeof(*st->values));
    st->lengths = mem_array(n, sizeof(*st->lengths));
    st->formats = mem_array(n, sizeof(*st->formats));
    st->types = mem_array(n, sizeof(*st->types));
    for (size_t i = 0; i < n; i++)
        st->formats[i] = 1; /* binary */
    *rc = DB_OK;
    return st;
}

static pgsql_param *param_at(drv_stmt *st, int index)
{
    if (index >= 1 && index <= st->nparams)
        return &st->params[index - 1];
    snprintf(st->conn->err, sizeof(st->conn->err),
             "pgsql: parameter %d out of range (the statement has %d)", index, st->nparams);
    st->bad_bind = true;
    return NULL;
}

static db_rc bind_bytes(drv_stmt *st, int index, Oid type, const void *p, size_t len)
{
    pgsql_param *param = param_at(st, index);
    if (!param)
        return DB_ERROR;
    if (len > INT_MAX) {
        snprintf(st->conn->err, sizeof(st->conn->err),
                 "pgsql: parameter %d is %zu bytes, more than a parameter may be", index, len);
        st->bad_bind = true;
        return DB_ERROR;
    }
    if (len > param->cap) {
        param->buf = mem_realloc(param->buf, len);
        param->cap = len;
    }
    if (len)
        memcpy(param->buf, p, len);
    param->type = type;
    param->len = (int)len;
    return DB_OK;
}

static db_rc pgsql_bind_text(drv_stmt *st, int index, const char *s, size_t len)
{
    return bind_bytes(st, index, PGSQL_TEXTOID, s, len);
}

static db_rc pgsql_bind_blob(drv_stmt *st, int index, const void *p, size_t len)
{
    return bind_bytes(st, index, PGSQL_BYTEAOID, p, len);
}

static db_rc pgsql_bind_int(drv_stmt *st, int index, int64_t v)
{
    pgsql_param *param = param_at(st, index);
    if (!param)
        return DB_ERROR;
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--, u >>= 8)
        param->int8[i] = (unsigned char)u;
    param->type = PGSQL_INT8OID;
    param->len = 8;
    return DB_OK;
}

static db_rc pgsql_bind_null(drv_stmt *st, int index)
{
    pgsql_param *param = param_at(st, index);
    if (!param)
        return DB_ERROR;
    param->type = 0;
    return DB_OK;
}

/* True when the server statement takes the bound parameters' types. */
static bool types_fit(const drv_stmt *st)
{
    if (!st->name[0])
        return false;
    for (int i = 0; i < st->nparams; i++)
        if (st->params[i].type && st->params[i].type != st->types[i])
            return false;
    return true;
}

/* Prepares the statement on the server for the bound types, replacing an earlier one. */
static db_rc prepare_on_server(drv_stmt *st)
{
    drv_conn *c = st->conn;
    db_rc rc;
    if (st->name[0]) {
        char sql[48];
        snprintf(sql, sizeof(sql), "DEALLOCATE %s", st->name);
        if ((rc = pgsql_exec(c, sql)) != DB_OK)
            return rc;
        st->name[0] = '\0';
    }
    /* A NULL keeps the type its position had before (unspecified, 0, the first time). */
    for (int i = 0; i < st->nparams; i++)
        if (st->params[i].type)
            st->types[i] = st->params[i].type;
    char name[sizeof(st->name)];
    snprintf(name, sizeof(name), "jabshard_%lu", ++c->prepared);
    if ((rc = check_result(c, PQprepare(c->pg, name, st->sql, st->nparams, st->types))) != DB_OK)
        return rc;
    memcpy(st->name, name, sizeof(name));
    return DB_OK;
}

static db_rc execute(drv_stmt *st)
{
    drv_conn *c = st->conn;
    db_rc rc;
    if (st->bad_bind)
        return DB_ERROR; /* the bind left its reason in c->err */
    if (!types_fit(st) && (rc = prepare_on_server(st)) != DB_OK)
        return rc;
    for (int i = 0; i < st->nparams; i++) {
        const pgsql_param *param = &st->params[i];
        st->lengths[i] = param->len;
        if (!param->type)
            st->values[i] = NULL;
        else if (param->type == PGSQL_INT8OID)
            st->values[i] = (const char *)param->int8;
        else /* libpq takes NULL as SQL NULL: an empty value still needs a pointer */
            st->values[i] = param->len ? param->buf : "";
    }
    PGresult *res = PQexecPrepared(c->pg, st->name, st->nparams, st->values, st->lengths,
                                   st->formats, 0 /* text results */);
    ExecStatusType status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        rc = fail(c, res);
        PQclear(res);
        return rc;
    }
    st->res = res;
    st->row = -1;
    st->changes = strtoll(PQcmdTuples(res), NULL, 10);
    st->blobs = mem_array((size_t)PQnfields(res), sizeof(*st->blobs));
    return DB_OK;
}

static void drop_blobs(drv_stmt *st)
{
    if (!st->blobs)
        return;
    for (int i = 0; i < PQnfields(st->res); i++) {
        PQfreemem(st->blobs[i].p);
        st->blobs[i].p = NULL;
    }
}

static db_rc pgsql_step(drv_stmt *st)
{
    if (!st->res) {
        db_rc rc = execute(st);
        if (rc != DB_OK)
            return rc;
    }
    drop_blobs(st);
    int rows = PQntuples(st->res);
    if (st->row + 1 < rows) {
        st->row++;
        return DB_ROW;
    }
    st->row = rows;
    return DB_DONE;
}

static int64_t pgsql_changes(drv_stmt *st)
{
    return st->changes;
}

/* True when col of the current row holds a value (not SQL NULL). */
static bool has_value(const drv_stmt *st, int col)
{
    return st->res && st->row >= 0 && st->row < PQntuples(st->res) && col >= 0 &&
           col < PQnfields(st->res) && !PQgetisnull(st->res, st->row, col);
}

static const char *pgsql_column_text(drv_stmt *st, int col, size_t *len)
{
    if (!has_value(st, col)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = (size_t)PQgetlength(st->res, st->row, col);
    return PQgetvalue(st->res, st->row, col);
}

static int64_t pgsql_column_int(drv_stmt *st, int col)
{
    return has_value(st, col) ? strtoll(PQgetvalue(st->res, st->row, col), NULL, 10) : 0;
}

static const void *pgsql_column_blob(drv_stmt *st, int col, size_t *len)
{
    *len = 0;
    if (!has_value(st, col))
        return NULL;
    pgsql_blob *b = &st->blobs[col];
    if (!b->p) {
        b->p = PQunescapeBytea((const unsigned char *)PQgetvalue(st->res, st->row, col), &b->len);
        if (!b->p) {
            snprintf(st->conn->err, sizeof(st->conn->err), "pgsql: out of memory decoding column %d",
                     col);
            return NULL;
        }
    }
    *len = b->len;
    return b->p;
}

static void pgsql_reset(drv_stmt *st)
{
    drop_blobs(st);
    free(st->blobs);
    st->blobs = NULL;
    PQclear(st->res);
    st->res = NULL;
    st->changes = 0;
    st->bad_bind = false;
    for (int i = 0; i < st->nparams; i++)
        st->params[i].type = 0;
}

static void pgsql_finalize(drv_stmt *st)
{
    pgsql_reset(st);
    for (int i = 0; i < st->nparams; i++)
        free(st->params[i].buf);
    free(st->params);
    free(st->values);
    free(st->lengths);
    free(st->formats);
    free(st->types);
    free(st->sql);
    free(st);
}

static const char *pgsql_errmsg(drv_conn *c)
{
    return c->err;
}

static const db_dialect pgsql_dialect = {
    .name = "pgsql",
    .id_column = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    .text = "TEXT",
    .key_text = "TEXT",
    .sorted_key = "TEXT COLLATE \"C\"",
    .jid_text = "TEXT",
    .int64 = "BIGINT",
    .blob = "BYTEA",
    .table_suffix = "",
    /* INCLUDE columns count towards an index entry's bound (about 2.7 KB): a long roster name
     * would make its write fail. */
    .index_carry = NULL,
};

const db_driver db_driver_pgsql = {
    .name = "pgsql",
    .dialect = &pgsql_dialect,
    .connect = pgsql_connect,
    .close = pgsql_close,
    .exec = pgsql_exec,
    .begin = pgsql_begin,
    .commit = pgsql_commit,
    .rollback = pgsql_rollback,
    .prepare = pgsql_prepare,
    .bind_text = pgsql_bind_text,
    .bind_int = pgsql_bind_int,
    .bind_blob = pgsql_bind_blob,
    .bind_null = pgsql_bind_null,
    .step = pgsql_step,
    .changes = pgsql_changes,
    .column_text = pgsql_column_text,
    .column_int = pgsql_column_int,
    .column_blob = pgsql_column_blob,
    .reset = pgsql_reset,
    .finalize = pgsql_finalize,
    .errmsg = pgsql_errmsg,
    .alive = pgsql_alive,
};
