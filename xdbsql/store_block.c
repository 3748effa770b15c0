/* xdbsql/store_block.c — block lists (XEP-0191): a set of JIDs per user. */
#include <string.h>

#include "xdbsql/store.h"

db_rc store_block_list(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT b.jid FROM blocklist b JOIN users u ON b.user_id = u.id"
        " WHERE u.host = ? AND u.username = ? ORDER BY b.jid";
    db_rc rc;
    db_stmt *st = store_prepare_user(c, sql, r->host, r->user, &rc);
    if (!st)
        return rc;
    while ((rc = db_step(st)) == DB_ROW) {
        size_t len;
        const char *jid = db_column_text(st, 0, &len);
        if (jid)
            xdb_strings_push(&r->jids, jid);
    }
    return rc == DB_DONE ? DB_OK : rc;
}

/* Deletes one blocked JID (jid NULL: all of them) of user_id. */
static db_rc delete_blocked(db_conn *c, int64_t user_id, const char *jid)
{
    static const char sql_one[] = "DELETE FROM blocklist WHERE user_id = ? AND jid = ?";
    static const char sql_all[] = "DELETE FROM blocklist WHERE user_id = ?";
    db_rc rc;
    db_stmt *st = db_prepare(c, jid ? sql_one : sql_all, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, user_id);
    if (jid)
        db_bind_text(st, 2, jid);
    return store_step_done(st);
}

db_rc store_block_add(db_conn *c, xdb_request *r)
{
    static const char sql_insert[] = "INSERT INTO blocklist (user_id, jid) VALUES (?, ?)";
    int64_t user_id;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    for (size_t i = 0; i < r->jids.n; i++) {
        /* Delete first so a JID blocked twice is stored once. */
        if ((rc = delete_blocked(c, user_id, r->jids.v[i])) != DB_OK)
            return store_abort(c, rc);
        db_stmt *st = db_prepare(c, sql_insert, &rc);
        if (!st)
            return store_abort(c, rc);
        db_bind_int(st, 1, user_id);
        db_bind_text(st, 2, r->jids.v[i]);
        if ((rc = store_step_done(st)) != DB_OK)
            return store_abort(c, rc);
    }
    return store_commit(c, r);
}

db_rc store_block_remove(db_conn *c, xdb_request *r)
{
    int64_t user_id;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    if (r->jids.n == 0)
        rc = delete_blocked(c, user_id, NULL);
    for (size_t i = 0; i < r->jids.n && rc == DB_OK; i++)
        rc = delete_blocked(c, user_id, r->jids.v[i]);
    if (rc != DB_OK)
        return store_abort(c, rc);
    return store_commit(c, r);
}
