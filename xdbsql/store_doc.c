/* xdbsql/store_doc.c — the document store (xdbsql.h): per-user documents addressed by store name
 * and key, holding bytes, in the one table `documents`. Features keep their data here without an
 * operation or a migration of their own.
 *
 * Store names and keys are checked before any SQL, so that a caller hears XDB_INVALID rather
 * than whatever each database says of a value too long for its column (MariaDB refuses it,
 * SQLite and PostgreSQL would store it). Keys sort byte by byte on every database (the
 * {SORTED_KEY} column type), which makes a prefix a range: [prefix, its successor). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/utf8.h"
#include "xdbsql/store.h"

/* False, with r->status XDB_INVALID, unless r names a document (or a key prefix) that can be
 * stored. */
static bool doc_valid(xdb_request *r)
{
    if (!r->store || !*r->store) {
        r->status = XDB_INVALID;
        snprintf(r->error, sizeof(r->error), "%s without a store name", xdb_op_name(r->op));
        return false;
    }
    return !store_name_refused(r, "document store name", r->store) &&
           !store_name_refused(r, "document key", r->key ? r->key : "");
}

/* The document's store, key, then owner: parameters first to first + 3. */
static void bind_doc(db_stmt *st, int first, const xdb_request *r)
{
    db_bind_text(st, first, r->store);
    db_bind_text(st, first + 1, r->key ? r->key : "");
    db_bind_text(st, first + 2, r->host);
    db_bind_text(st, first + 3, r->user);
}

db_rc store_doc_get(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT d.doc_value FROM documents d JOIN users u ON d.user_id = u.id"
        " WHERE d.store_name = ? AND d.doc_key = ? AND u.host = ? AND u.username = ?";
    if (!doc_valid(r))
        return DB_OK;
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    bind_doc(st, 1, r);
    r->status = XDB_NOT_FOUND;
    while ((rc = db_step(st)) == DB_ROW) {
        size_t len;
        const void *p = db_column_blob(st, 0, &len);
        xdb_value_copy(&r->value, p, p ? len : 0);
        r->status = XDB_OK;
    }
    return rc == DB_DONE ? DB_OK : rc;
}

/* Replaces the document, or else inserts it: the insert counts the store's documents in the same
 * statement when there is a quota, so nothing is written past it. Replacing is always allowed.
 * The two statements cannot race: one user's requests run on one worker, in order. */
db_rc store_doc_put(db_conn *c, xdb_request *r)
{
    static const char sql_replace[] =
        "UPDATE documents SET doc_value = ? WHERE store_name = ? AND doc_key = ?"
        " AND user_id = (SELECT id FROM users WHERE host = ? AND username = ?)";
    static const char sql_insert[] =
        "INSERT INTO documents (doc_value, store_name, doc_key, user_id)"
        " SELECT ?, ?, ?, id FROM users WHERE host = ? AND username = ?";
    static const char sql_insert_quota[] =
        "INSERT INTO documents (doc_value, store_name, doc_key, user_id)"
        " SELECT ?, ?, ?, u.id FROM users u WHERE u.host = ? AND u.username = ?"
        " AND (SELECT COUNT(*) FROM documents d WHERE d.user_id = u.id AND d.store_name = ?) < ?";
    if (!doc_valid(r))
        return DB_OK;
    if (r->value_max && r->value.len > r->value_max) {
        r->status = XDB_INVALID;
        snprintf(r->error, sizeof(r->error), "a document in %s is at most %zu bytes (this one: %zu)",
                 r->store, r->value_max, r->value.len);
        return DB_OK;
    }
    bool quota = r->quota > 0;
    r->commit_sent = true;
    for (int pass = 0; pass < 2; pass++) {
        db_rc rc;
        db_stmt *st = db_prepare(c, pass == 0 ? sql_replace : quota ? sql_insert_quota : sql_insert,
                                 &rc);
        if (!st)
            return rc;
        /* Never a NULL pointer: SQLite would bind an empty value as SQL NULL. */
        db_bind_blob(st, 1, r->value.data ? r->value.data : "", r->value.len);
        bind_doc(st, 2, r);
        if (pass == 1 && quota) {
            db_bind_text(st, 6, r->store);
            db_bind_int(st, 7, r->quota);
        }
        if ((rc = store_step_done(st)) != DB_OK)
            return rc;
        if (db_changes(st) > 0)
            return DB_OK;
    }
    /* Nothing written: there is no such user, or the store is full. */
    db_rc rc = DB_OK;
    int64_t id = quota ? store_user_id(c, r->host, r->user, &rc) : 0;
    if (rc == DB_OK)
        r->status = id ? XDB_QUOTA : XDB_NOT_FOUND;
    return rc;
}

db_rc store_doc_delete(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "DELETE FROM documents WHERE store_name = ? AND doc_key = ?"
        " AND user_id = (SELECT id FROM users WHERE host = ? AND username = ?)";
    if (!doc_valid(r))
        return DB_OK;
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    bind_doc(st, 1, r);
    r->commit_sent = true;
    if ((rc = store_step_done(st)) != DB_OK)
        return rc;
    if (db_changes(st) == 0)
        r->status = XDB_NOT_FOUND;
    return DB_OK;
}

/* Writes code point cp as UTF-8 at out; returns how many bytes. */
static size_t utf8_put(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    size_t n = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
    for (size_t i = n - 1; i > 0; i--, cp >>= 6)
        out[i] = (unsigned char)(0x80 | (cp & 0x3F));
    out[0] = (unsigned char)(lead[n] | cp);
    return n;
}

/* The least string above every string that starts with prefix (len bytes of valid UTF-8): the
 * prefix with its last character replaced by the next code point, once trailing U+10FFFF (which
 * has none) are dropped. Written to out, which has room for len + 1 bytes (the next code point
 * may take one byte more); returns its length, or 0 when there is no such string (an empty
 * prefix, or U+10FFFF only) and nothing bounds the range above. UTF-8 too, as PostgreSQL wants
 * of text. */
static size_t prefix_successor(const char *prefix, size_t len, char *out)
{
    const unsigned char *p = (const unsigned char *)prefix;
    while (len > 0) {
        size_t start = len - 1;
        while (start > 0 && (p[start] & 0xC0) == 0x80)
            start--;
        size_t n = len - start;
        static const unsigned char lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
        uint32_t cp = p[start] & lead_mask[n];
        for (size_t i = 1; i < n; i++)
            cp = cp << 6 | (p[start + i] & 0x3Fu);
        len = start;
        if (cp == 0x10FFFF)
            continue;
        memcpy(out, prefix, len);
        /* Surrogates are not characters: U+D7FF is followed by U+E000. */
        return len + utf8_put(cp == 0xD7FF ? 0xE000 : cp + 1, (unsigned char *)out + len);
    }
    return 0;
}

db_rc store_doc_list(db_conn *c, xdb_request *r)
{
    static const char sql_range[] =
        "SELECT d.doc_key, d.doc_value FROM documents d JOIN users u ON d.user_id = u.id"
        " WHERE d.store_name = ? AND d.doc_key >= ? AND u.host = ? AND u.username = ?"
        " AND d.doc_key < ? ORDER BY d.doc_key LIMIT ?";
    static const char sql_from[] =
        "SELECT d.doc_key, d.doc_value FROM documents d JOIN users u ON d.user_id = u.id"
        " WHERE d.store_name = ? AND d.doc_key >= ? AND u.host = ? AND u.username = ?"
        " ORDER BY d.doc_key LIMIT ?";
    if (!doc_valid(r))
        return DB_OK;
    const char *prefix = r->key ? r->key : "";
    char upper[XDB_DOC_NAME_MAX + 1];
    size_t upper_len = prefix_successor(prefix, strlen(prefix), upper);
    db_rc rc;
    db_stmt *st = db_prepare(c, upper_len ? sql_range : sql_from, &rc);
    if (!st)
        return rc;
    bind_doc(st, 1, r);
    int next = 5;
    if (upper_len)
        db_bind_textn(st, next++, upper, upper_len);
    db_bind_int(st, next, r->limit > 0 ? r->limit : INT64_MAX);
    size_t cap = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        if (r->docs.n == cap) {
            cap = cap ? cap * 2 : 8;
            r->docs.v = mem_realloc(r->docs.v, cap * sizeof(*r->docs.v));
        }
        xdb_doc *d = &r->docs.v[r->docs.n++];
        memset(d, 0, sizeof(*d));
        d->key = store_column_strdup(st, 0);
        if (!d->key)
            d->key = mem_strdup("");
        size_t len;
        const void *p = db_column_blob(st, 1, &len);
        xdb_value_copy(&d->value, p, p ? len : 0);
    }
    return rc == DB_DONE ? DB_OK : rc;
}

db_rc store_doc_clear(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "DELETE FROM documents WHERE store_name = ?"
        " AND user_id = (SELECT id FROM users WHERE host = ? AND username = ?)";
    if (!doc_valid(r))
        return DB_OK;
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    db_bind_text(st, 1, r->store);
    db_bind_text(st, 2, r->host);
    db_bind_text(st, 3, r->user);
    r->commit_sent = true;
    if ((rc = store_step_done(st)) != DB_OK)
        return rc;
    r->count = db_changes(st);
    return DB_OK;
}
