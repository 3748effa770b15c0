/* xdbsql/store_profile.c — per-user documents: vCard (XEP-0054), private XML by namespace
 * (XEP-0049) and last activity (XEP-0012). Each is one row that a set replaces.
 *
 * Every statement here names its row by ([ns,] host, username) in that order, after the
 * values it writes, so one binder serves the UPDATE and the INSERT of an upsert. */
#include "xdbsql/store.h"

/* Binds the row's owner from parameter index first on: [ns,] host, username. */
static void bind_owner(db_stmt *st, int first, const xdb_request *r)
{
    if (r->ns)
        db_bind_text(st, first++, r->ns);
    db_bind_text(st, first, r->host);
    db_bind_text(st, first + 1, r->user);
}

static void bind_xml(db_stmt *st, const xdb_request *r, const void *unused)
{
    db_bind_text(st, 1, r->xml ? r->xml : "");
    bind_owner(st, 2, r);
}

static void bind_last(db_stmt *st, const xdb_request *r, const void *unused)
{
    db_bind_int(st, 1, r->last.seconds);
    db_bind_text(st, 2, r->last.status);
    bind_owner(st, 3, r);
}

static db_rc set_document(db_conn *c, xdb_request *r, const char *update_sql,
                          const char *insert_sql, store_binder bind)
{
    bool written;
    db_rc rc = store_upsert(c, update_sql, insert_sql, bind, r, NULL, &written);
    if (rc == DB_OK && !written)
        r->status = XDB_NOT_FOUND;
    return rc;
}

/* Runs a one-row query bound with the owner. *rc is DB_ROW (the statement sits on the row for
 * the caller to read), DB_DONE (no row) or the failure. */
static db_stmt *get_row(db_conn *c, xdb_request *r, const char *sql, db_rc *rc)
{
    db_stmt *st = db_prepare(c, sql, rc);
    if (!st)
        return NULL;
    bind_owner(st, 1, r);
    *rc = db_step(st);
    return st;
}

static db_rc get_xml(db_conn *c, xdb_request *r, const char *sql)
{
    db_rc rc;
    db_stmt *st = get_row(c, r, sql, &rc);
    if (rc == DB_ROW) {
        r->xml = store_column_strdup(st, 0);
        rc = store_step_done(st);
    } else if (rc == DB_DONE) {
        r->status = XDB_NOT_FOUND;
        rc = DB_OK;
    }
    return rc;
}

db_rc store_vcard_get(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT v.xml FROM vcards v JOIN users u ON v.user_id = u.id"
        " WHERE u.host = ? AND u.username = ?";
    return get_xml(c, r, sql);
}

db_rc store_vcard_set(db_conn *c, xdb_request *r)
{
    static const char sql_update[] =
        "UPDATE vcards SET xml = ? WHERE user_id = (SELECT id FROM users WHERE host = ? AND username = ?)";
    static const char sql_insert[] =
        "INSERT INTO vcards (xml, user_id) SELECT ?, id FROM users WHERE host = ? AND username = ?";
    return set_document(c, r, sql_update, sql_insert, bind_xml);
}

db_rc store_private_get(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT p.xml FROM private_xml p JOIN users u ON p.user_id = u.id"
        " WHERE p.ns = ? AND u.host = ? AND u.username = ?";
    return get_xml(c, r, sql);
}

/* A new namespace is stored only while the account holds fewer than r->quota of them (the count
 * is in the INSERT, so nothing is written past it); replacing one is always allowed. */
db_rc store_private_set(db_conn *c, xdb_request *r)
{
    static const char sql_update[] =
        "UPDATE private_xml SET xml = ? WHERE ns = ? AND user_id ="
        " (SELECT id FROM users WHERE host = ? AND username = ?)";
    static const char sql_insert[] =
        "INSERT INTO private_xml (xml, ns, user_id)"
        " SELECT ?, ?, u.id FROM users u WHERE u.host = ? AND u.username = ?"
        " AND (SELECT COUNT(*) FROM private_xml p WHERE p.user_id = u.id) < ?";
    for (int pass = 0; pass < 2; pass++) {
        db_rc rc;
        db_stmt *st = db_prepare(c, pass == 0 ? sql_update : sql_insert, &rc);
        if (!st)
            return rc;
        bind_xml(st, r, NULL);
        if (pass == 1)
            db_bind_int(st, 5, r->quota);
        if ((rc = store_step_done(st)) != DB_OK)
            return rc;
        if (db_changes(st) > 0)
            return DB_OK;
    }
    db_rc rc;
    int64_t id = store_user_id(c, r->host, r->user, &rc);
    if (rc == DB_OK)
        r->status = id ? XDB_QUOTA : XDB_NOT_FOUND;
    return rc;
}

db_rc store_last_get(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT l.seconds, l.status FROM last_activity l JOIN users u ON l.user_id = u.id"
        " WHERE u.host = ? AND u.username = ?";
    db_rc rc;
    db_stmt *st = get_row(c, r, sql, &rc);
    if (rc == DB_ROW) {
        r->last.seconds = db_column_int(st, 0);
        r->last.status = store_column_strdup(st, 1);
        rc = store_step_done(st);
    } else if (rc == DB_DONE) {
        r->status = XDB_NOT_FOUND;
        rc = DB_OK;
    }
    return rc;
}

db_rc store_last_set(db_conn *c, xdb_request *r)
{
    static const char sql_update[] =
        "UPDATE last_activity SET seconds = ?, status = ? WHERE user_id ="
        " (SELECT id FROM users WHERE host = ? AND username = ?)";
    static const char sql_insert[] =
        "INSERT INTO last_activity (seconds, status, user_id)"
        " SELECT ?, ?, id FROM users WHERE host = ? AND username = ?";
    return set_document(c, r, sql_update, sql_insert, bind_last);
}
