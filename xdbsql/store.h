/* xdbsql/store.h — what the per-area store files share: the op table and their common steps.
 *
 * Each store_<area>.c implements its ops as store_fn: run the request on the connection, set
 * r->status for the outcomes a caller handles (OK, NOT_FOUND, EXISTS, QUOTA) and return DB_OK,
 * or return the db_rc that failed after rolling back whatever it had begun. xdb_run() (store.c)
 * turns failures into XDB_ERROR and retries on a fresh connection when that is safe.
 */
#ifndef JABSHARD_XDBSQL_STORE_H
#define JABSHARD_XDBSQL_STORE_H

#include "xdbsql/xdbsql.h"

typedef db_rc (*store_fn)(db_conn *c, xdb_request *r);

/* The prepared statement sql with the user's host and username bound as parameters 1 and 2
 * (what most statements here start with); NULL with *rc set when it cannot be prepared. */
db_stmt *store_prepare_user(db_conn *c, const char *sql, const char *host, const char *user,
                            db_rc *rc);
/* The user's row id, or 0 when there is no such user (*rc = DB_OK) or the lookup failed. */
int64_t store_user_id(db_conn *c, const char *host, const char *user, db_rc *rc);
/* Begins a write transaction and finds the user. When there is none, *user_id is 0,
 * r->status is XDB_NOT_FOUND and the transaction is already rolled back. */
db_rc store_begin_for_user(db_conn *c, xdb_request *r, int64_t *user_id);
/* Commits, noting that the outcome is unknown if the connection drops now. */
db_rc store_commit(db_conn *c, xdb_request *r);
/* Rolls back and passes rc through: `return store_abort(c, rc);` */
db_rc store_abort(db_conn *c, db_rc rc);
/* A column's text copied with malloc (NULL for SQL NULL). */
char *store_column_strdup(db_stmt *st, int col);
/* Runs a statement that returns no rows to completion. */
db_rc store_step_done(db_stmt *st);
/* Binds the parameters shared by an upsert's UPDATE and INSERT (same order in both). */
typedef void (*store_binder)(db_stmt *st, const xdb_request *r, const void *arg);
/* Runs update_sql and, when it changed no row, insert_sql: the one upsert spelling that all three
 * databases share. It cannot race: one user's requests run on one worker, in order. *written is
 * false when neither statement wrote (an INSERT ... SELECT that found no user). */
db_rc store_upsert(db_conn *c, const char *update_sql, const char *insert_sql, store_binder bind,
                   const xdb_request *r, const void *arg, bool *written);
/* Sets v to a copy of len bytes, NUL-terminated (request.c). */
void xdb_value_copy(xdb_value *v, const void *data, size_t len);
/* Refuses the request (XDB_INVALID, the reason in r->error, naming what) unless s is UTF-8 of at
 * most XDB_DOC_NAME_MAX bytes: what a key column holds on every database. */
bool store_name_refused(xdb_request *r, const char *what, const char *s);
/* Current time, Unix epoch milliseconds. */
int64_t store_now_ms(void);

db_rc store_user_create(db_conn *c, xdb_request *r);
db_rc store_user_delete(db_conn *c, xdb_request *r);
db_rc store_user_passwd(db_conn *c, xdb_request *r);
db_rc store_user_creds(db_conn *c, xdb_request *r);
db_rc store_user_list(db_conn *c, xdb_request *r);
db_rc store_roster_load(db_conn *c, xdb_request *r);
db_rc store_roster_set(db_conn *c, xdb_request *r);
db_rc store_roster_remove(db_conn *c, xdb_request *r);
db_rc store_pending_add(db_conn *c, xdb_request *r);
db_rc store_pending_remove(db_conn *c, xdb_request *r);
db_rc store_offline_store(db_conn *c, xdb_request *r);
db_rc store_offline_fetch(db_conn *c, xdb_request *r);
db_rc store_offline_count(db_conn *c, xdb_request *r);
db_rc store_block_list(db_conn *c, xdb_request *r);
db_rc store_block_add(db_conn *c, xdb_request *r);
db_rc store_block_remove(db_conn *c, xdb_request *r);
db_rc store_doc_get(db_conn *c, xdb_request *r);
db_rc store_doc_put(db_conn *c, xdb_request *r);
db_rc store_doc_delete(db_conn *c, xdb_request *r);
db_rc store_doc_list(db_conn *c, xdb_request *r);
db_rc store_doc_clear(db_conn *c, xdb_request *r);
db_rc store_hib_put(db_conn *c, xdb_request *r);
db_rc store_hib_keep(db_conn *c, xdb_request *r);
db_rc store_hib_drop(db_conn *c, xdb_request *r);
db_rc store_hib_load(db_conn *c, xdb_request *r);
db_rc store_pep_load(db_conn *c, xdb_request *r);
db_rc store_pep_node_put(db_conn *c, xdb_request *r);
db_rc store_pep_node_delete(db_conn *c, xdb_request *r);
db_rc store_pep_item_put(db_conn *c, xdb_request *r);
db_rc store_pep_item_delete(db_conn *c, xdb_request *r);
db_rc store_pep_purge(db_conn *c, xdb_request *r);
db_rc store_pep_items(db_conn *c, xdb_request *r);
db_rc store_mam_append(db_conn *c, xdb_request *r);
db_rc store_mam_query(db_conn *c, xdb_request *r);
db_rc store_mam_trim(db_conn *c, xdb_request *r);
db_rc store_mam_expire(db_conn *c, xdb_request *r);
db_rc store_room_create(db_conn *c, xdb_request *r);
db_rc store_room_delete(db_conn *c, xdb_request *r);
db_rc store_room_list(db_conn *c, xdb_request *r);
db_rc store_upload_reserve(db_conn *c, xdb_request *r);

#endif
