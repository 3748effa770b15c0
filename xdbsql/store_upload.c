/* xdbsql/store_upload.c — HTTP File Upload (XEP-0363) slots as the SM hands them out: one row
 * per slot (its id, the account, its size, when), so that an account's uploads within the
 * stores' retention count against its quota. Reserving expires the account's old rows, sums the
 * rest, refuses past the quota or records the slot, in one transaction; one account's requests
 * run on one worker, in order, so nothing slips between the sum and the insert. */
#include <stdio.h>

#include "xdbsql/store.h"

/* Runs a statement whose parameters are the slot id (when not NULL), the user id, then v (when
 * not negative); *out gets the first column of its last row when out is not NULL. */
static db_rc user_stmt(db_conn *c, const char *sql, int64_t user_id, const char *slot, int64_t v,
                       int64_t *out)
{
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    int n = 1;
    if (slot)
        db_bind_text(st, n++, slot);
    db_bind_int(st, n++, user_id);
    if (v >= 0)
        db_bind_int(st, n, v);
    while ((rc = db_step(st)) == DB_ROW)
        if (out)
            *out = db_column_int(st, 0);
    return rc == DB_DONE ? DB_OK : rc;
}

db_rc store_upload_reserve(db_conn *c, xdb_request *r)
{
    static const char sql_expire[] = "DELETE FROM uploads WHERE user_id = ? AND created < ?";
    static const char sql_mine[] = "SELECT COUNT(*) FROM uploads WHERE slot = ? AND user_id = ?";
    static const char sql_used[] = "SELECT COALESCE(SUM(size), 0) FROM uploads WHERE user_id = ?";
    static const char sql_insert[] =
        "INSERT INTO uploads (slot, user_id, size, created) VALUES (?, ?, ?, ?)";
    if (!r->key || !r->key[0] || store_name_refused(r, "slot id", r->key) ||
        r->upload_size < 0 || r->quota < 0) {
        if (r->status == XDB_OK) {
            r->status = XDB_INVALID;
            snprintf(r->error, sizeof r->error, "a slot needs an id, and sizes are not negative");
        }
        return DB_OK;
    }
    int64_t user_id, mine = 0, used = 0;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    if ((rc = user_stmt(c, sql_expire, user_id, NULL, r->upload_since, NULL)) != DB_OK ||
        (rc = user_stmt(c, sql_mine, user_id, r->key, -1, &mine)) != DB_OK ||
        (rc = user_stmt(c, sql_used, user_id, NULL, -1, &used)) != DB_OK)
        return store_abort(c, rc);
    r->count = used;
    if (!mine) {
        if (used > r->quota || r->upload_size > r->quota - used) {
            r->status = XDB_QUOTA;
        } else {
            db_stmt *st = db_prepare(c, sql_insert, &rc);
            if (!st)
                return store_abort(c, rc);
            db_bind_text(st, 1, r->key);
            db_bind_int(st, 2, user_id);
            db_bind_int(st, 3, r->upload_size);
            db_bind_int(st, 4, store_now_ms());
            if ((rc = store_step_done(st)) != DB_OK)
                return store_abort(c, rc);
            r->count = used + r->upload_size;
        }
    }
    /* A refusal commits too: the expired rows are gone either way. */
    return store_commit(c, r);
}
