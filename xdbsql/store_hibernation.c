/* xdbsql/store_hibernation.c — hibernated stream-management sessions (xdbsql.h): a record per
 * resumption id in `hibernated`, the stanzas it keeps in `hibernated_stanzas`, numbered.
 *
 * A put replaces the record and its stanzas in one transaction; a keep adds one stanza (an upsert
 * by number, so a retry writes it once); a drop deletes both; a load reads every record and every
 * stanza, each in resumption-id order (byte order on all three databases: {SORTED_KEY}), and
 * merges them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xdbsql/store.h"

static bool id_refused(xdb_request *r)
{
    if (r->key && *r->key)
        return store_name_refused(r, "resumption id", r->key);
    r->status = XDB_INVALID;
    snprintf(r->error, sizeof(r->error), "%s without a resumption id", xdb_op_name(r->op));
    return true;
}

/* Runs sql, which has the resumption id as its only parameter, to completion. */
static db_rc run_for_id(db_conn *c, const char *sql, const char *id, int64_t *changes)
{
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    db_bind_text(st, 1, id);
    if ((rc = store_step_done(st)) == DB_OK && changes)
        *changes = db_changes(st);
    return rc;
}

static const char sql_drop_stanzas[] = "DELETE FROM hibernated_stanzas WHERE resume_id = ?";
static const char sql_drop_record[] = "DELETE FROM hibernated WHERE resume_id = ?";

static db_rc insert_stanza(db_conn *c, const char *id, int64_t seq, const char *xml)
{
    static const char sql[] =
        "INSERT INTO hibernated_stanzas (resume_id, seq, xml) VALUES (?, ?, ?)";
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    db_bind_text(st, 1, id);
    db_bind_int(st, 2, seq);
    db_bind_text(st, 3, xml);
    return store_step_done(st);
}

db_rc store_hib_put(db_conn *c, xdb_request *r)
{
    static const char sql_record[] =
        "INSERT INTO hibernated (resume_id, user_id, record) VALUES (?, ?, ?)";
    if (id_refused(r))
        return DB_OK;
    int64_t user_id;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    if ((rc = run_for_id(c, sql_drop_stanzas, r->key, NULL)) != DB_OK ||
        (rc = run_for_id(c, sql_drop_record, r->key, NULL)) != DB_OK)
        return store_abort(c, rc);
    db_stmt *st = db_prepare(c, sql_record, &rc);
    if (!st)
        return store_abort(c, rc);
    db_bind_text(st, 1, r->key);
    db_bind_int(st, 2, user_id);
    db_bind_blob(st, 3, r->value.data ? r->value.data : "", r->value.len);
    if ((rc = store_step_done(st)) != DB_OK)
        return store_abort(c, rc);
    for (size_t i = 0; i < r->stanzas.n; i++)
        if ((rc = insert_stanza(c, r->key, (int64_t)i + 1, r->stanzas.v[i])) != DB_OK)
            return store_abort(c, rc);
    return store_commit(c, r);
}

static void bind_keep(db_stmt *st, const xdb_request *r, const void *arg)
{
    db_bind_text(st, 1, r->xml ? r->xml : "");
    db_bind_int(st, 2, r->seq);
    db_bind_text(st, 3, r->key);
}

db_rc store_hib_keep(db_conn *c, xdb_request *r)
{
    static const char sql_update[] =
        "UPDATE hibernated_stanzas SET xml = ? WHERE seq = ? AND resume_id = ?";
    static const char sql_insert[] =
        "INSERT INTO hibernated_stanzas (xml, seq, resume_id)"
        " SELECT ?, ?, resume_id FROM hibernated WHERE resume_id = ?";
    if (id_refused(r))
        return DB_OK;
    r->commit_sent = true;
    bool written;
    db_rc rc = store_upsert(c, sql_update, sql_insert, bind_keep, r, NULL, &written);
    if (rc == DB_OK && !written)
        r->status = XDB_NOT_FOUND;
    return rc;
}

db_rc store_hib_drop(db_conn *c, xdb_request *r)
{
    if (id_refused(r))
        return DB_OK;
    db_rc rc = db_begin(c);
    if (rc != DB_OK)
        return rc;
    if ((rc = run_for_id(c, sql_drop_stanzas, r->key, NULL)) != DB_OK ||
        (rc = run_for_id(c, sql_drop_record, r->key, &r->count)) != DB_OK)
        return store_abort(c, rc);
    return store_commit(c, r);
}

/* Every record, in id order. */
static db_rc load_records(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT h.resume_id, u.host, u.username, h.record FROM hibernated h"
        " JOIN users u ON h.user_id = u.id ORDER BY h.resume_id";
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    size_t cap = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        if (r->nhibernations == cap) {
            cap = cap ? cap * 2 : 8;
            r->hibernations = mem_realloc(r->hibernations, cap * sizeof(*r->hibernations));
        }
        xdb_hibernation *h = &r->hibernations[r->nhibernations++];
        memset(h, 0, sizeof(*h));
        h->id = store_column_strdup(st, 0);
        h->host = store_column_strdup(st, 1);
        h->user = store_column_strdup(st, 2);
        size_t len;
        const void *p = db_column_blob(st, 3, &len);
        xdb_value_copy(&h->record, p, p ? len : 0);
    }
    return rc == DB_DONE ? DB_OK : rc;
}

/* Every stanza, in (id, number) order, to its record (both lists are in id order). */
static db_rc load_stanzas(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT resume_id, xml FROM hibernated_stanzas ORDER BY resume_id, seq";
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    size_t at = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        size_t idlen, xmllen;
        const char *id = db_column_text(st, 0, &idlen);
        const char *xml = db_column_text(st, 1, &xmllen);
        while (at < r->nhibernations &&
               !(strlen(r->hibernations[at].id) == idlen &&
                 memcmp(r->hibernations[at].id, id, idlen) == 0))
            at++;
        if (at == r->nhibernations)
            break;   /* a stanza without its record: none follow (the lists are in order) */
        xdb_hibernation *h = &r->hibernations[at];
        h->stanzas.v = mem_realloc(h->stanzas.v, (h->stanzas.n + 1) * sizeof(char *));
        h->stanzas.v[h->stanzas.n++] = mem_strndup(xml ? xml : "", xml ? xmllen : 0);
    }
    if (rc == DB_ROW)
        return store_step_done(st);
    return rc == DB_DONE ? DB_OK : rc;
}

db_rc store_hib_load(db_conn *c, xdb_request *r)
{
    db_rc rc = db_begin(c);
    if (rc != DB_OK)
        return rc;
    if ((rc = load_records(c, r)) != DB_OK || (rc = load_stanzas(c, r)) != DB_OK)
        return store_abort(c, rc);
    return store_commit(c, r);
}
