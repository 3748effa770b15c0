/* xdbsql/store_pep.c — personal eventing (xdbsql.h): an account's pubsub nodes in `pep_nodes`
 * (the SM's configuration record per node) and their items in `pep_items`, numbered in the order
 * of publication (seq, per node).
 *
 * A load reads every node and each node's newest item (the SM keeps those in memory); items are
 * otherwise read on request. Publishing an item gives it the next number, replaces an item of the
 * same id, and deletes the oldest past the node's bound, in one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xdbsql/store.h"

/* The node (and the item id, for the ops that name one) can be stored. */
static bool pep_valid(xdb_request *r, bool item)
{
    if (!r->node || !*r->node) {
        r->status = XDB_INVALID;
        snprintf(r->error, sizeof(r->error), "%s without a node", xdb_op_name(r->op));
        return false;
    }
    if (store_name_refused(r, "pubsub node name", r->node))
        return false;
    if (!item)
        return true;
    if (!r->item_id || !*r->item_id) {
        r->status = XDB_INVALID;
        snprintf(r->error, sizeof(r->error), "%s without an item id", xdb_op_name(r->op));
        return false;
    }
    return !store_name_refused(r, "pubsub item id", r->item_id);
}

/* sql with (user id, node) as parameters 1 and 2 and, when item is set, the item id as 3. */
static db_stmt *prepare_node(db_conn *c, const char *sql, int64_t user_id, const xdb_request *r,
                             bool item, db_rc *rc)
{
    db_stmt *st = db_prepare(c, sql, rc);
    if (st) {
        db_bind_int(st, 1, user_id);
        db_bind_text(st, 2, r->node);
        if (item)
            db_bind_text(st, 3, r->item_id);
    }
    return st;
}

/* Runs sql (parameters as prepare_node's) to completion; *changes: the rows it changed. */
static db_rc run_node(db_conn *c, const char *sql, int64_t user_id, const xdb_request *r,
                      bool item, int64_t *changes)
{
    db_rc rc;
    db_stmt *st = prepare_node(c, sql, user_id, r, item, &rc);
    if (!st)
        return rc;
    if ((rc = store_step_done(st)) == DB_OK && changes)
        *changes = db_changes(st);
    return rc;
}

/* ---- load ---- */

static db_rc load_nodes(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT n.node, n.config FROM pep_nodes n JOIN users u ON n.user_id = u.id"
        " WHERE u.host = ? AND u.username = ? ORDER BY n.node";
    db_rc rc;
    db_stmt *st = store_prepare_user(c, sql, r->host, r->user, &rc);
    if (!st)
        return rc;
    size_t cap = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        if (r->npep_nodes == cap) {
            cap = cap ? cap * 2 : 8;
            r->pep_nodes = mem_realloc(r->pep_nodes, cap * sizeof(*r->pep_nodes));
        }
        xdb_pep_node *n = &r->pep_nodes[r->npep_nodes++];
        memset(n, 0, sizeof(*n));
        n->node = store_column_strdup(st, 0);
        size_t len;
        const void *p = db_column_blob(st, 1, &len);
        xdb_value_copy(&n->config, p, p ? len : 0);
    }
    return rc == DB_DONE ? DB_OK : rc;
}

/* Each node's newest item, in node order like the nodes: merged into them. */
static db_rc load_last_items(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT i.node, i.item_id, i.payload FROM pep_items i JOIN users u ON i.user_id = u.id"
        " WHERE u.host = ? AND u.username = ? AND i.seq = (SELECT MAX(j.seq) FROM pep_items j"
        " WHERE j.user_id = i.user_id AND j.node = i.node) ORDER BY i.node";
    db_rc rc;
    db_stmt *st = store_prepare_user(c, sql, r->host, r->user, &rc);
    if (!st)
        return rc;
    size_t at = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        size_t len;
        const char *node = db_column_text(st, 0, &len);
        while (at < r->npep_nodes && !(strlen(r->pep_nodes[at].node) == len &&
                                       memcmp(r->pep_nodes[at].node, node, len) == 0))
            at++;
        if (at == r->npep_nodes)
            return store_step_done(st);
        r->pep_nodes[at].last.id = store_column_strdup(st, 1);
        r->pep_nodes[at].last.xml = store_column_strdup(st, 2);
    }
    return rc == DB_DONE ? DB_OK : rc;
}

db_rc store_pep_load(db_conn *c, xdb_request *r)
{
    db_rc rc = db_begin(c);
    if (rc != DB_OK)
        return rc;
    if ((rc = load_nodes(c, r)) != DB_OK || (rc = load_last_items(c, r)) != DB_OK)
        return store_abort(c, rc);
    return store_commit(c, r);
}

/* ---- nodes ---- */

db_rc store_pep_node_put(db_conn *c, xdb_request *r)
{
    static const char sql_update[] = "UPDATE pep_nodes SET config = ? WHERE user_id = ? AND node = ?";
    static const char sql_insert[] =
        "INSERT INTO pep_nodes (config, user_id, node) VALUES (?, ?, ?)";
    if (!pep_valid(r, false))
        return DB_OK;
    int64_t user_id;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    for (int pass = 0; pass < 2; pass++) {
        db_stmt *st = db_prepare(c, pass == 0 ? sql_update : sql_insert, &rc);
        if (!st)
            return store_abort(c, rc);
        db_bind_blob(st, 1, r->value.data ? r->value.data : "", r->value.len);
        db_bind_int(st, 2, user_id);
        db_bind_text(st, 3, r->node);
        if ((rc = store_step_done(st)) != DB_OK)
            return store_abort(c, rc);
        if (db_changes(st) > 0)
            break;
    }
    return store_commit(c, r);
}

static const char sql_items_of_node[] = "DELETE FROM pep_items WHERE user_id = ? AND node = ?";

db_rc store_pep_node_delete(db_conn *c, xdb_request *r)
{
    static const char sql_node[] = "DELETE FROM pep_nodes WHERE user_id = ? AND node = ?";
    if (!pep_valid(r, false))
        return DB_OK;
    int64_t user_id, changes = 0;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    if ((rc = run_node(c, sql_items_of_node, user_id, r, false, NULL)) != DB_OK ||
        (rc = run_node(c, sql_node, user_id, r, false, &changes)) != DB_OK)
        return store_abort(c, rc);
    if (!changes)
        r->status = XDB_NOT_FOUND;
    return store_commit(c, r);
}

db_rc store_pep_purge(db_conn *c, xdb_request *r)
{
    if (!pep_valid(r, false))
        return DB_OK;
    int64_t user_id;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    if ((rc = run_node(c, sql_items_of_node, user_id, r, false, &r->count)) != DB_OK)
        return store_abort(c, rc);
    return store_commit(c, r);
}

/* ---- items ---- */

/* One int64 from sql (parameters as prepare_node's); *found false when it gave no row or NULL. */
static db_rc query_int(db_conn *c, const char *sql, int64_t user_id, const xdb_request *r,
                       bool item, int64_t *v, bool *found)
{
    db_rc rc;
    db_stmt *st = prepare_node(c, sql, user_id, r, item, &rc);
    if (!st)
        return rc;
    *found = false;
    size_t len;
    while ((rc = db_step(st)) == DB_ROW)
        if (db_column_text(st, 0, &len)) {
            *v = db_column_int(st, 0);
            *found = true;
        }
    return rc == DB_DONE ? DB_OK : rc;
}

/* Deletes the node's items older than its newest limit. */
static db_rc trim(db_conn *c, int64_t user_id, const xdb_request *r)
{
    static const char sql_cutoff[] =
        "SELECT seq FROM pep_items WHERE user_id = ? AND node = ? ORDER BY seq DESC LIMIT 1 OFFSET ?";
    static const char sql_trim[] = "DELETE FROM pep_items WHERE user_id = ? AND node = ? AND seq < ?";
    db_rc rc;
    db_stmt *st = prepare_node(c, sql_cutoff, user_id, r, false, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 3, r->limit - 1);
    int64_t cutoff = 0;
    while ((rc = db_step(st)) == DB_ROW)
        cutoff = db_column_int(st, 0);
    if (rc != DB_DONE)
        return rc;
    if (!cutoff)
        return DB_OK;
    if (!(st = prepare_node(c, sql_trim, user_id, r, false, &rc)))
        return rc;
    db_bind_int(st, 3, cutoff);
    return store_step_done(st);
}

db_rc store_pep_item_put(db_conn *c, xdb_request *r)
{
    static const char sql_node[] = "SELECT 1 FROM pep_nodes WHERE user_id = ? AND node = ?";
    static const char sql_next[] = "SELECT MAX(seq) FROM pep_items WHERE user_id = ? AND node = ?";
    static const char sql_replace[] =
        "DELETE FROM pep_items WHERE user_id = ? AND node = ? AND item_id = ?";
    static const char sql_insert[] =
        "INSERT INTO pep_items (user_id, node, item_id, seq, payload) VALUES (?, ?, ?, ?, ?)";
    if (!pep_valid(r, true))
        return DB_OK;
    int64_t user_id, one = 0, last = 0;
    bool exists, any;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    if ((rc = query_int(c, sql_node, user_id, r, false, &one, &exists)) != DB_OK)
        return store_abort(c, rc);
    if (!exists) {
        r->status = XDB_NOT_FOUND;
        return store_abort(c, DB_OK);
    }
    if ((rc = query_int(c, sql_next, user_id, r, false, &last, &any)) != DB_OK ||
        (rc = run_node(c, sql_replace, user_id, r, true, NULL)) != DB_OK)
        return store_abort(c, rc);
    db_stmt *st = prepare_node(c, sql_insert, user_id, r, true, &rc);
    if (!st)
        return store_abort(c, rc);
    db_bind_int(st, 4, last + 1);
    db_bind_text(st, 5, r->xml ? r->xml : "");
    if ((rc = store_step_done(st)) != DB_OK || (r->limit > 0 && (rc = trim(c, user_id, r)) != DB_OK))
        return store_abort(c, rc);
    return store_commit(c, r);
}

db_rc store_pep_item_delete(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "DELETE FROM pep_items WHERE user_id = ? AND node = ? AND item_id = ?";
    if (!pep_valid(r, true))
        return DB_OK;
    int64_t user_id, changes = 0;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    if ((rc = run_node(c, sql, user_id, r, true, &changes)) != DB_OK)
        return store_abort(c, rc);
    if (!changes)
        r->status = XDB_NOT_FOUND;
    return store_commit(c, r);
}

typedef struct read_item {
    int64_t seq;
    xdb_pep_item item;
} read_item;

static int by_seq(const void *a, const void *b)
{
    int64_t x = ((const read_item *)a)->seq, y = ((const read_item *)b)->seq;
    return (x > y) - (x < y);
}

/* The rows (item_id, payload, seq) of st, appended. */
static db_rc read_items(db_stmt *st, read_item **rows, size_t *n, size_t *cap)
{
    db_rc rc;
    while ((rc = db_step(st)) == DB_ROW) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 8;
            *rows = mem_realloc(*rows, *cap * sizeof(**rows));
        }
        read_item *it = &(*rows)[(*n)++];
        it->item.id = store_column_strdup(st, 0);
        it->item.xml = store_column_strdup(st, 1);
        it->seq = db_column_int(st, 2);
    }
    return rc == DB_DONE ? DB_OK : rc;
}

db_rc store_pep_items(db_conn *c, xdb_request *r)
{
    static const char sql_one[] =
        "SELECT item_id, payload, seq FROM pep_items WHERE user_id = ? AND node = ? AND item_id = ?";
    static const char sql_newest[] =
        "SELECT item_id, payload, seq FROM pep_items WHERE user_id = ? AND node = ?"
        " ORDER BY seq DESC LIMIT ?";
    if (!pep_valid(r, false))
        return DB_OK;
    for (size_t i = 0; i < r->item_ids.n; i++)
        if (store_name_refused(r, "pubsub item id", r->item_ids.v[i]))
            return DB_OK;
    db_rc rc;
    int64_t user_id = store_user_id(c, r->host, r->user, &rc);
    if (rc != DB_OK)
        return rc;
    read_item *rows = NULL;
    size_t n = 0, cap = 0;
    xdb_request one = *r;
    for (size_t i = 0; rc == DB_OK && user_id && i < r->item_ids.n; i++) {
        one.item_id = r->item_ids.v[i];
        db_stmt *st = prepare_node(c, sql_one, user_id, &one, true, &rc);
        if (st)
            rc = read_items(st, &rows, &n, &cap);
    }
    if (rc == DB_OK && user_id && !r->item_ids.n) {
        db_stmt *st = prepare_node(c, sql_newest, user_id, r, false, &rc);
        if (st) {
            db_bind_int(st, 3, r->limit > 0 ? r->limit : INT64_MAX);
            rc = read_items(st, &rows, &n, &cap);
        }
    }
    if (n > 1)
        qsort(rows, n, sizeof(*rows), by_seq);
    r->pep_items = n ? mem_array(n, sizeof(*r->pep_items)) : NULL;
    for (size_t i = 0; i < n; i++)
        r->pep_items[i] = rows[i].item;
    r->npep_items = n;
    free(rows);
    return rc;
}
