/* xdbsql/store_mam.c — message archives (xdbsql.h, XEP-0313): the table `archive`, one row per
 * archived message of a user, in archive order (stamp, then id: the row's arrival).
 *
 * A user's archive is in row id order: the SM writes a user's messages in the order it archives
 * them (one user's requests run in order on one worker), with their times, so id order is time
 * order. A query first turns what bounds it (after or before a stanza id, a start or end time)
 * into row ids, then reads one page by the (user, id) or (user, peer, id) index, forwards or
 * backwards (the last page, or before a message), one row more than the page to know whether it
 * is complete. Every statement is a constant (db_prepare caches by address). Appending is one
 * transaction per batch, of one account or of many (the SM's batch of a storage lane); trimming and expiry delete below a boundary row, so that one run is
 * bounded on every database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xdbsql/store.h"

#define MAM_PAGE_DEFAULT 50

/* ---- append ---- */

/* An entry whose stanza id the archive has (a retry after a commit that landed) adds nothing. */
static db_rc append_one(db_conn *c, int64_t user_id, const xdb_mam_entry *e)
{
#define MAM_INSERT                                                                   \
    "INSERT INTO archive (user_id, stamp, stanza_id, peer, resource, xml)"          \
    " VALUES (?, ?, ?, ?, ?, ?)"
    static const char sql_on_conflict[] = MAM_INSERT " ON CONFLICT DO NOTHING";
    static const char sql_on_duplicate[] = MAM_INSERT " ON DUPLICATE KEY UPDATE id = id";
#undef MAM_INSERT
    db_rc rc;
    db_stmt *st = db_prepare(
        c, db_dialect_of(c)->on_duplicate_key ? sql_on_duplicate : sql_on_conflict, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, user_id);
    db_bind_int(st, 2, e->stamp);
    db_bind_text(st, 3, e->stanza_id);
    db_bind_text(st, 4, e->peer);
    db_bind_text(st, 5, e->resource ? e->resource : "");
    db_bind_text(st, 6, e->xml);
    return store_step_done(st);
}

typedef struct owned {
    const char *host, *user;
    size_t at;              /* the entry's place in the request */
} owned;

static int by_owner(const void *a, const void *b)
{
    const owned *x = a, *y = b;
    int d = strcmp(x->user, y->user);
    if (!d)
        d = strcmp(x->host, y->host);
    return d ? d : (x->at > y->at) - (x->at < y->at);
}

/* The entries grouped by account, each account's in the request's order: one id lookup an
 * account. */
static owned *entries_by_owner(const xdb_request *r)
{
    owned *o = mem_array(r->mam.n, sizeof *o);
    for (size_t i = 0; i < r->mam.n; i++) {
        const xdb_mam_entry *e = &r->mam.v[i];
        o[i] = (owned){e->user ? e->host : r->host, e->user ? e->user : r->user, i};
    }
    qsort(o, r->mam.n, sizeof *o, by_owner);
    return o;
}

db_rc store_mam_append(db_conn *c, xdb_request *r)
{
    for (size_t i = 0; i < r->mam.n; i++)
        if (store_name_refused(r, "stanza id", r->mam.v[i].stanza_id))
            return DB_OK;
    r->count = 0;
    if (!r->mam.n)
        return DB_OK;
    owned *o = entries_by_owner(r);
    db_rc rc = db_begin(c);
    int64_t user_id = 0;
    for (size_t i = 0; rc == DB_OK && i < r->mam.n; i++) {
        if (i == 0 || strcmp(o[i].user, o[i - 1].user) || strcmp(o[i].host, o[i - 1].host))
            user_id = store_user_id(c, o[i].host, o[i].user, &rc);
        if (rc != DB_OK)
            break;
        if (!user_id)
            r->count++;     /* the account is gone */
        else
            rc = append_one(c, user_id, &r->mam.v[o[i].at]);
    }
    free(o);
    return rc == DB_OK ? store_commit(c, r) : store_abort(c, rc);
}

/* ---- query ---- */

/* One int64 from sql, whose parameters are user_id then text (or an int when text is NULL);
 * *found false when no row. */
static db_rc lookup(db_conn *c, const char *sql, int64_t user_id, const char *text, int64_t num,
                    int64_t *v, bool *found)
{
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, user_id);
    if (text)
        db_bind_text(st, 2, text);
    else
        db_bind_int(st, 2, num);
    *found = false;
    while ((rc = db_step(st)) == DB_ROW) {
        *v = db_column_int(st, 0);
        *found = true;
    }
    return rc == DB_DONE ? DB_OK : rc;
}

/* The query's bounds as row ids, inclusive: [*lo, *hi]. false, with r->status set, when an id
 * it names is not in the archive; *empty when the time bounds hold no message. */
static db_rc bounds(db_conn *c, xdb_request *r, int64_t user_id, int64_t *lo, int64_t *hi,
                    bool *ok, bool *empty)
{
    static const char sql_id[] = "SELECT id FROM archive WHERE user_id = ? AND stanza_id = ?";
    static const char sql_start[] = "SELECT MIN(id) FROM archive WHERE user_id = ? AND stamp >= ?";
    static const char sql_end[] = "SELECT MAX(id) FROM archive WHERE user_id = ? AND stamp <= ?";
    const xdb_mam_query *q = &r->mam_query;
    *lo = 0;
    *hi = INT64_MAX;
    *ok = *empty = false;
    int64_t v = 0;
    bool found;
    db_rc rc;
    const char *marks[2] = {q->after_id, q->before_id};
    for (int i = 0; i < 2; i++) {
        if (!marks[i])
            continue;
        if ((rc = lookup(c, sql_id, user_id, marks[i], 0, &v, &found)) != DB_OK)
            return rc;
        if (!found) {
            r->status = XDB_NOT_FOUND;
            return DB_OK;
        }
        if (i == 0)
            *lo = v + 1;
        else
            *hi = v - 1;
    }
    if (q->start) {
        if ((rc = lookup(c, sql_start, user_id, NULL, q->start, &v, &found)) != DB_OK)
            return rc;
        if (!found || v == 0)
            *empty = true;
        else if (v > *lo)
            *lo = v;
    }
    if (q->end) {
        if ((rc = lookup(c, sql_end, user_id, NULL, q->end, &v, &found)) != DB_OK)
            return rc;
        if (!found || v == 0)
            *empty = true;
        else if (v < *hi)
            *hi = v;
    }
    *ok = true;
    return DB_OK;
}

/* The statements of a page: by contact (and resource) or not, forwards (from an offset: RSM's
 * index) or backwards. */
#define MAM_COLS "SELECT stamp, stanza_id, peer, resource, xml, id FROM archive WHERE user_id = ?"
static const char *const page_sql[3][2] = {
    {MAM_COLS " AND id >= ? AND id <= ? ORDER BY id LIMIT ? OFFSET ?",
     MAM_COLS " AND id >= ? AND id <= ? ORDER BY id DESC LIMIT ?"},
    {MAM_COLS " AND peer = ? AND id >= ? AND id <= ? ORDER BY id LIMIT ? OFFSET ?",
     MAM_COLS " AND peer = ? AND id >= ? AND id <= ? ORDER BY id DESC LIMIT ?"},
    {MAM_COLS " AND peer = ? AND resource = ? AND id >= ? AND id <= ? ORDER BY id LIMIT ? OFFSET ?",
     MAM_COLS " AND peer = ? AND resource = ? AND id >= ? AND id <= ? ORDER BY id DESC LIMIT ?"},
};
static const char sql_by_stanza_id[] = MAM_COLS " AND stanza_id = ? AND id >= ? AND id <= ?";

typedef struct read_entry {
    int64_t id;
    xdb_mam_entry e;
} read_entry;

static void entry_free(xdb_mam_entry *e)
{
    free(e->stanza_id);
    free(e->peer);
    free(e->resource);
    free(e->xml);
    free(e->host);
    free(e->user);
}

/* The rows of st appended to r->mam, with their ids in *ids. */
static db_rc read_rows(db_stmt *st, xdb_request *r, read_entry **rows, size_t *cap)
{
    db_rc rc;
    while ((rc = db_step(st)) == DB_ROW) {
        if (r->mam.n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            *rows = mem_realloc(*rows, *cap * sizeof(**rows));
        }
        (*rows)[r->mam.n++] = (read_entry){
            db_column_int(st, 5),
            {db_column_int(st, 0), store_column_strdup(st, 1), store_column_strdup(st, 2),
             store_column_strdup(st, 3), store_column_strdup(st, 4), NULL, NULL}};
    }
    return rc == DB_DONE ? DB_OK : rc;
}

static int by_row_id(const void *a, const void *b)
{
    int64_t x = ((const read_entry *)a)->id, y = ((const read_entry *)b)->id;
    return (x > y) - (x < y);
}

/* The messages asked by stanza id (mam#extended 'ids'), within the bounds, in archive order. */
static db_rc read_ids(db_conn *c, xdb_request *r, int64_t user_id, int64_t lo, int64_t hi,
                      read_entry **rows, size_t *cap)
{
    db_rc rc = DB_OK;
    for (size_t i = 0; rc == DB_OK && i < r->mam_query.ids.n; i++) {
        db_stmt *st = db_prepare(c, sql_by_stanza_id, &rc);
        if (!st)
            return rc;
        db_bind_int(st, 1, user_id);
        db_bind_text(st, 2, r->mam_query.ids.v[i]);
        db_bind_int(st, 3, lo);
        db_bind_int(st, 4, hi);
        rc = read_rows(st, r, rows, cap);
    }
    if (r->mam.n > 1)
        qsort(*rows, r->mam.n, sizeof(**rows), by_row_id);
    return rc;
}

static db_rc read_page(db_conn *c, xdb_request *r, int64_t user_id, int64_t lo, int64_t hi,
                       bool backward, int64_t limit, read_entry **rows, size_t *cap)
{
    const xdb_mam_query *q = &r->mam_query;
    int which = !q->peer ? 0 : !q->resource ? 1 : 2;
    db_rc rc;
    db_stmt *st = db_prepare(c, page_sql[which][backward], &rc);
    if (!st)
        return rc;
    int n = 1;
    db_bind_int(st, n++, user_id);
    if (q->peer)
        db_bind_text(st, n++, q->peer);
    if (q->peer && q->resource)
        db_bind_text(st, n++, q->resource);
    db_bind_int(st, n++, lo);
    db_bind_int(st, n++, hi);
    db_bind_int(st, n++, limit);
    if (!backward)
        db_bind_int(st, n, q->offset);
    if ((rc = read_rows(st, r, rows, cap)) != DB_OK)
        return rc;
    for (size_t i = 0; backward && i < r->mam.n / 2; i++) {
        read_entry t = (*rows)[i];
        (*rows)[i] = (*rows)[r->mam.n - 1 - i];
        (*rows)[r->mam.n - 1 - i] = t;
    }
    return DB_OK;
}

db_rc store_mam_query(db_conn *c, xdb_request *r)
{
    xdb_mam_query *q = &r->mam_query;
    int64_t max = q->max > 0 ? q->max : MAM_PAGE_DEFAULT;
    for (size_t i = 0; i < q->ids.n; i++)
        if (store_name_refused(r, "stanza id", q->ids.v[i]))
            return DB_OK;
    db_rc rc;
    int64_t user_id = store_user_id(c, r->host, r->user, &rc), lo, hi;
    bool ok, empty;
    r->mam_complete = true;
    if (rc != DB_OK || !user_id)
        return rc;
    if ((rc = bounds(c, r, user_id, &lo, &hi, &ok, &empty)) != DB_OK || !ok || empty)
        return rc;
    bool backward = (q->before_id || q->last) && !q->after_id;
    read_entry *rows = NULL;
    size_t cap = 0;
    rc = q->ids.n ? read_ids(c, r, user_id, lo, hi, &rows, &cap)
                  : read_page(c, r, user_id, lo, hi, backward, max + 1, &rows, &cap);
    /* One row more than the page says there is more: the farthest from where it starts. */
    if (rc == DB_OK && (int64_t)r->mam.n > max) {
        r->mam_complete = false;
        size_t drop = backward ? 0 : r->mam.n - 1;
        entry_free(&rows[drop].e);
        memmove(&rows[drop], &rows[drop + 1], (r->mam.n - drop - 1) * sizeof(*rows));
        r->mam.n--;
    }
    r->mam.v = r->mam.n ? mem_array(r->mam.n, sizeof(*r->mam.v)) : NULL;
    r->mam.cap = r->mam.n;
    for (size_t i = 0; i < r->mam.n; i++)
        r->mam.v[i] = rows[i].e;
    if (rc != DB_OK) {
        for (size_t i = 0; i < r->mam.n; i++)
            entry_free(&r->mam.v[i]);
        r->mam.n = 0;
    }
    free(rows);
    return rc;
}

/* ---- trimming and expiry ---- */

db_rc store_mam_trim(db_conn *c, xdb_request *r)
{
    static const char sql_boundary[] =
        "SELECT id FROM archive WHERE user_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?";
    static const char sql_delete[] = "DELETE FROM archive WHERE user_id = ? AND id <= ?";
    db_rc rc;
    int64_t user_id = store_user_id(c, r->host, r->user, &rc), boundary = 0;
    bool found;
    r->count = 0;
    if (rc != DB_OK || !user_id)
        return rc;
    if ((rc = lookup(c, sql_boundary, user_id, NULL, r->limit, &boundary, &found)) != DB_OK ||
        !found)
        return rc;
    db_stmt *st = db_prepare(c, sql_delete, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, user_id);
    db_bind_int(st, 2, boundary);
    r->commit_sent = true;
    if ((rc = store_step_done(st)) == DB_OK)
        r->count = db_changes(st);
    return rc;
}

/* Deletes messages older than end, the oldest first, about limit at a time (all those of the
 * boundary's millisecond go together). */
db_rc store_mam_expire(db_conn *c, xdb_request *r)
{
    static const char sql_boundary[] =
        "SELECT stamp FROM archive WHERE stamp < ? ORDER BY stamp LIMIT 1 OFFSET ?";
    static const char sql_delete[] = "DELETE FROM archive WHERE stamp <= ? AND stamp < ?";
    if (!r->mam_query.end || r->limit <= 0) {
        r->status = XDB_INVALID;
        snprintf(r->error, sizeof(r->error), "mam-expire needs an end and a limit");
        return DB_OK;
    }
    db_rc rc;
    db_stmt *st = db_prepare(c, sql_boundary, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, r->mam_query.end);
    db_bind_int(st, 2, r->limit - 1);
    int64_t boundary = INT64_MAX;
    while ((rc = db_step(st)) == DB_ROW)
        boundary = db_column_int(st, 0);
    if (rc != DB_DONE)
        return rc;
    if (!(st = db_prepare(c, sql_delete, &rc)))
        return rc;
    db_bind_int(st, 1, boundary);
    db_bind_int(st, 2, r->mam_query.end);
    r->commit_sent = true;
    if ((rc = store_step_done(st)) == DB_OK)
        r->count = db_changes(st);
    return rc;
}
