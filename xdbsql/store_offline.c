/* xdbsql/store_offline.c — offline messages (XEP-0160): a per-user queue with a quota.
 * Storing checks the quota in the same statement that inserts; fetching deletes and returns the
 * whole queue in one statement, so a message is handed out at most once. */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xdbsql/store.h"

db_rc store_offline_store(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "INSERT INTO offline (user_id, stamp, xml)"
        " SELECT u.id, ?, ? FROM users u WHERE u.host = ? AND u.username = ?"
        " AND (SELECT COUNT(*) FROM offline o WHERE o.user_id = u.id) < ?";
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, store_now_ms());
    db_bind_text(st, 2, r->xml ? r->xml : "");
    db_bind_text(st, 3, r->host);
    db_bind_text(st, 4, r->user);
    db_bind_int(st, 5, r->quota);
    r->commit_sent = true;
    if ((rc = store_step_done(st)) != DB_OK)
        return rc;
    if (db_changes(st) > 0)
        return DB_OK;
    /* Nothing inserted: either there is no such user or the queue is full. */
    int64_t id = store_user_id(c, r->host, r->user, &rc);
    if (rc != DB_OK)
        return rc;
    r->status = id ? XDB_QUOTA : XDB_NOT_FOUND;
    return DB_OK;
}

typedef struct fetched {
    int64_t id;
    xdb_offline msg;
} fetched;

static int by_id(const void *a, const void *b)
{
    int64_t x = ((const fetched *)a)->id, y = ((const fetched *)b)->id;
    return (x > y) - (x < y);
}

db_rc store_offline_fetch(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "DELETE FROM offline WHERE user_id = (SELECT id FROM users WHERE host = ? AND username = ?)"
        " RETURNING id, stamp, xml";
    db_rc rc;
    db_stmt *st = store_prepare_user(c, sql, r->host, r->user, &rc);
    if (!st)
        return rc;
    r->commit_sent = true;
    fetched *rows = NULL;
    size_t n = 0, cap = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            rows = mem_realloc(rows, cap * sizeof(*rows));
        }
        rows[n].id = db_column_int(st, 0);
        rows[n].msg.stamp_ms = db_column_int(st, 1);
        rows[n].msg.xml = store_column_strdup(st, 2);
        n++;
    }
    if (rc != DB_DONE) {
        for (size_t i = 0; i < n; i++)
            free(rows[i].msg.xml);
        free(rows);
        return rc;
    }
    /* RETURNING gives no order: deliver oldest first. */
    if (n > 1)
        qsort(rows, n, sizeof(*rows), by_id);
    r->offline = n ? mem_array(n, sizeof(*r->offline)) : NULL;
    for (size_t i = 0; i < n; i++)
        r->offline[i] = rows[i].msg;
    r->noffline = n;
    free(rows);
    return DB_OK;
}

db_rc store_offline_count(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT COUNT(*) FROM offline o JOIN users u ON o.user_id = u.id"
        " WHERE u.host = ? AND u.username = ?";
    db_rc rc;
    db_stmt *st = store_prepare_user(c, sql, r->host, r->user, &rc);
    if (!st)
        return rc;
    while ((rc = db_step(st)) == DB_ROW)
        r->count = db_column_int(st, 0);
    return rc == DB_DONE ? DB_OK : rc;
}
