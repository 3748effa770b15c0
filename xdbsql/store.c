/* xdbsql/store.c — the executor: runs one request on a connection, turns failures into errors
 * the caller sees, and retries on a fresh connection when the connection was lost and running
 * the request again cannot apply it twice. Also the steps the store_<area>.c files share. */
#include "xdbsql/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "core/utf8.h"

static const struct {
    const char *name;
    store_fn run;
    /* Safe to run again even if its first COMMIT may have landed (idempotent). */
    bool idempotent;
} ops[XDB_OP_COUNT] = {
    [XDB_USER_CREATE] = {"user-create", store_user_create, false},
    [XDB_USER_DELETE] = {"user-delete", store_user_delete, false},
    [XDB_USER_PASSWD] = {"user-passwd", store_user_passwd, true},
    [XDB_USER_CREDS] = {"user-creds", store_user_creds, true},
    [XDB_USER_LIST] = {"user-list", store_user_list, true},
    [XDB_ROSTER_LOAD] = {"roster-load", store_roster_load, true},
    [XDB_ROSTER_SET] = {"roster-set", store_roster_set, true},
    [XDB_ROSTER_REMOVE] = {"roster-remove", store_roster_remove, false},
    [XDB_PENDING_ADD] = {"pending-add", store_pending_add, true},
    [XDB_PENDING_REMOVE] = {"pending-remove", store_pending_remove, true},
    [XDB_OFFLINE_STORE] = {"offline-store", store_offline_store, false},
    [XDB_OFFLINE_FETCH] = {"offline-fetch", store_offline_fetch, false},
    [XDB_OFFLINE_COUNT] = {"offline-count", store_offline_count, true},
    [XDB_BLOCK_LIST] = {"block-list", store_block_list, true},
    [XDB_BLOCK_ADD] = {"block-add", store_block_add, true},
    [XDB_BLOCK_REMOVE] = {"block-remove", store_block_remove, true},
    [XDB_DOC_GET] = {"doc-get", store_doc_get, true},
    [XDB_DOC_PUT] = {"doc-put", store_doc_put, true},
    /* Again after a COMMIT that landed, it would say not-found for a deletion that happened. */
    [XDB_DOC_DELETE] = {"doc-delete", store_doc_delete, false},
    [XDB_DOC_LIST] = {"doc-list", store_doc_list, true},
    [XDB_DOC_CLEAR] = {"doc-clear", store_doc_clear, true},
    [XDB_HIB_PUT] = {"hib-put", store_hib_put, true},
    [XDB_HIB_KEEP] = {"hib-keep", store_hib_keep, true},
    [XDB_HIB_DROP] = {"hib-drop", store_hib_drop, true},
    [XDB_HIB_LOAD] = {"hib-load", store_hib_load, true},
    [XDB_PEP_LOAD] = {"pep-load", store_pep_load, true},
    [XDB_PEP_NODE_PUT] = {"pep-node-put", store_pep_node_put, true},
    [XDB_PEP_NODE_DELETE] = {"pep-node-delete", store_pep_node_delete, false},
    [XDB_PEP_ITEM_PUT] = {"pep-item-put", store_pep_item_put, true},
    [XDB_PEP_ITEM_DELETE] = {"pep-item-delete", store_pep_item_delete, false},
    [XDB_PEP_PURGE] = {"pep-purge", store_pep_purge, true},
    [XDB_PEP_ITEMS] = {"pep-items", store_pep_items, true},
    [XDB_MAM_APPEND] = {"mam-append", store_mam_append, true},
    [XDB_MAM_QUERY] = {"mam-query", store_mam_query, true},
    [XDB_MAM_TRIM] = {"mam-trim", store_mam_trim, true},
    [XDB_MAM_EXPIRE] = {"mam-expire", store_mam_expire, true},
    [XDB_ROOM_CREATE] = {"room-create", store_room_create, true},
    [XDB_ROOM_DELETE] = {"room-delete", store_room_delete, false},
    [XDB_ROOM_LIST] = {"room-list", store_room_list, true},
    /* Again after a COMMIT that landed, it finds its slot id and answers OK. */
    [XDB_UPLOAD_RESERVE] = {"upload-reserve", store_upload_reserve, true},
};

const char *xdb_op_name(xdb_op op)
{
    return op < XDB_OP_COUNT ? ops[op].name : "unknown";
}

const char *xdb_status_name(xdb_status s)
{
    static const char *const names[] = {"ok", "not-found", "exists", "quota", "error", "invalid"};
    return s <= XDB_INVALID ? names[s] : "unknown";
}

static db_rc run_once(db_conn *c, xdb_request *r)
{
    r->commit_sent = false;
    r->status = XDB_OK;
    return ops[r->op].run(c, r);
}

xdb_status xdb_run(db_conn *c, xdb_request *r)
{
    if (r->op >= XDB_OP_COUNT) {
        r->status = XDB_ERROR;
        snprintf(r->error, sizeof(r->error), "unknown storage operation %d", (int)r->op);
        return r->status;
    }
    /* A connection the server closed while it was idle (a restart, an idle timeout) is replaced
     * before use, so that even a request that cannot be retried does not fail on it. While the
     * database is down, this is where a request fails at once, unsent (db.h). */
    db_rc rc = db_alive(c) ? DB_OK : db_reconnect(c);
    bool retry = false;
    if (rc == DB_OK) {
        rc = run_once(c, r);
        retry = rc == DB_LOST_UNAPPLIED ||
                (rc == DB_LOST && (!r->commit_sent || ops[r->op].idempotent));
        /* The server rolled back whatever was in flight; one more try on a fresh connection. */
        if (retry && db_reconnect(c) == DB_OK)
            rc = run_once(c, r);
    }
    if (rc != DB_OK) {
        r->status = XDB_ERROR;
        const char *lost =
            db_rc_lost(rc) && r->commit_sent ? " (connection lost during commit)" : "";
        if (db_down(c))
            snprintf(r->error, sizeof(r->error), "%s%s", db_errmsg(c), lost);
        else
            snprintf(r->error, sizeof(r->error), "%s for %s@%s: %s%s", ops[r->op].name,
                     r->user ? r->user : "", r->host ? r->host : "", db_errmsg(c), lost);
        /* Not retried, the lost connection is still replaced: left in place, it would fail
         * every later request too. One that is down already is left to the next request: a
         * reconnect now would only be refused, and count this request's failure twice. */
        if (db_rc_lost(rc) && !retry && !db_down(c))
            db_reconnect(c);
    }
    return r->status;
}

db_stmt *store_prepare_user(db_conn *c, const char *sql, const char *host, const char *user,
                            db_rc *rc)
{
    db_stmt *st = db_prepare(c, sql, rc);
    if (st) {
        db_bind_text(st, 1, host);
        db_bind_text(st, 2, user);
    }
    return st;
}

int64_t store_user_id(db_conn *c, const char *host, const char *user, db_rc *rc)
{
    static const char sql[] = "SELECT id FROM users WHERE host = ? AND username = ?";
    db_stmt *st = store_prepare_user(c, sql, host, user, rc);
    if (!st)
        return 0;
    int64_t id = 0;
    while ((*rc = db_step(st)) == DB_ROW)
        id = db_column_int(st, 0);
    if (*rc == DB_DONE)
        *rc = DB_OK;
    return id;
}

db_rc store_begin_for_user(db_conn *c, xdb_request *r, int64_t *user_id)
{
    db_rc rc = db_begin(c);
    if (rc != DB_OK)
        return rc;
    *user_id = store_user_id(c, r->host, r->user, &rc);
    if (rc != DB_OK)
        return store_abort(c, rc);
    if (!*user_id) {
        r->status = XDB_NOT_FOUND;
        db_rollback(c);
    }
    return DB_OK;
}

db_rc store_commit(db_conn *c, xdb_request *r)
{
    r->commit_sent = true;
    db_rc rc = db_commit(c);
    if (rc != DB_OK)
        db_rollback(c);
    return rc;
}

db_rc store_abort(db_conn *c, db_rc rc)
{
    db_rollback(c);
    return rc;
}

char *store_column_strdup(db_stmt *st, int col)
{
    size_t len;
    const char *s = db_column_text(st, col, &len);
    return s ? mem_strndup(s, len) : NULL;
}

db_rc store_step_done(db_stmt *st)
{
    db_rc rc;
    while ((rc = db_step(st)) == DB_ROW)
        ;
    return rc == DB_DONE ? DB_OK : rc;
}

bool store_name_refused(xdb_request *r, const char *what, const char *s)
{
    size_t len = strlen(s);
    if (len <= XDB_DOC_NAME_MAX && utf8_scan(s, len) >= 0)
        return false;
    r->status = XDB_INVALID;
    if (len > XDB_DOC_NAME_MAX)
        snprintf(r->error, sizeof(r->error), "a %s is at most %d bytes (this one: %zu)", what,
                 XDB_DOC_NAME_MAX, len);
    else
        snprintf(r->error, sizeof(r->error), "a %s must be UTF-8", what);
    return true;
}

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

db_rc store_upsert(db_conn *c, const char *update_sql, const char *insert_sql, store_binder bind,
                   const xdb_request *r, const void *arg, bool *written)
{
    *written = false;
    for (int pass = 0; pass < 2 && !*written; pass++) {
        db_rc rc;
        db_stmt *st = db_prepare(c, pass == 0 ? update_sql : insert_sql, &rc);
        if (!st)
            return rc;
        bind(st, r, arg);
        if ((rc = store_step_done(st)) != DB_OK)
            return rc;
        *written = db_changes(st) > 0;
    }
    return DB_OK;
}
