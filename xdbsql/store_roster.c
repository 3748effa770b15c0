/* xdbsql/store_roster.c — rosters (RFC 6121): items with groups, the roster version (XEP-0237)
 * and pending inbound subscription requests. Loading all three at login is one query.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xdbsql/store.h"

db_rc store_roster_load(db_conn *c, xdb_request *r)
{
    /* kind 0: an item, once per group (grp NULL when it has none); kind 1: a pending request;
     * kind 2: the roster version (present exactly when the user exists). */
    static const char sql[] =
        "SELECT 0 AS kind, i.jid, i.name, i.subscription, i.ask, g.grp"
        " FROM users u JOIN roster_items i ON i.user_id = u.id"
        " LEFT JOIN roster_groups g ON g.user_id = i.user_id AND g.jid = i.jid"
        " WHERE u.host = ? AND u.username = ?"
        " UNION ALL SELECT 1, p.jid, p.xml, 0, 0, NULL"
        " FROM users u JOIN roster_pending p ON p.user_id = u.id"
        " WHERE u.host = ? AND u.username = ?"
        " UNION ALL SELECT 2, NULL, NULL, u.roster_version, 0, NULL"
        " FROM users u WHERE u.host = ? AND u.username = ?"
        " ORDER BY 1, 2";
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    for (int i = 0; i < 3; i++) {
        db_bind_text(st, 2 * i + 1, r->host);
        db_bind_text(st, 2 * i + 2, r->user);
    }
    xdb_roster *roster = &r->roster;
    size_t items_cap = 0, pending_cap = 0;
    r->status = XDB_NOT_FOUND;
    while ((rc = db_step(st)) == DB_ROW) {
        int64_t kind = db_column_int(st, 0);
        size_t jid_len;
        const char *jid = db_column_text(st, 1, &jid_len);
        if (kind == 0) {
            xdb_roster_item *last = roster->nitems ? &roster->items[roster->nitems - 1] : NULL;
            if (!last || strlen(last->jid) != jid_len || memcmp(last->jid, jid, jid_len) != 0) {
                if (roster->nitems == items_cap) {
                    items_cap = items_cap ? items_cap * 2 : 16;
                    roster->items = mem_realloc(roster->items, items_cap * sizeof(*roster->items));
                }
                last = &roster->items[roster->nitems++];
                memset(last, 0, sizeof(*last));
                last->jid = mem_strndup(jid, jid_len);
                last->name = store_column_strdup(st, 2);
                last->subscription = (xdb_subscription)db_column_int(st, 3);
                last->ask = db_column_int(st, 4) != 0;
            }
            char *group = store_column_strdup(st, 5);
            if (group) {
                last->groups = mem_realloc(last->groups, (last->ngroups + 1) * sizeof(char *));
                last->groups[last->ngroups++] = group;
            }
        } else if (kind == 1) {
            if (roster->npending == pending_cap) {
                pending_cap = pending_cap ? pending_cap * 2 : 4;
                roster->pending = mem_realloc(roster->pending, pending_cap * sizeof(*roster->pending));
            }
            xdb_pending *p = &roster->pending[roster->npending++];
            p->jid = mem_strndup(jid, jid_len);
            p->xml = store_column_strdup(st, 2);
        } else {
            roster->version = db_column_int(st, 3);
            r->status = XDB_OK;
        }
    }
    return rc == DB_DONE ? DB_OK : rc;
}

/* Bumps the user's roster version inside the current transaction and reads it back. */
static db_rc bump_version(db_conn *c, int64_t user_id, int64_t *version)
{
    static const char sql_bump[] = "UPDATE users SET roster_version = roster_version + 1 WHERE id = ?";
    static const char sql_read[] = "SELECT roster_version FROM users WHERE id = ?";
    db_rc rc;
    db_stmt *st = db_prepare(c, sql_bump, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, user_id);
    if ((rc = store_step_done(st)) != DB_OK)
        return rc;
    if (!(st = db_prepare(c, sql_read, &rc)))
        return rc;
    db_bind_int(st, 1, user_id);
    while ((rc = db_step(st)) == DB_ROW)
        *version = db_column_int(st, 0);
    return rc == DB_DONE ? DB_OK : rc;
}

/* UPDATE and INSERT of an item take (name, subscription, ask, user_id, jid). */
static void bind_item(db_stmt *st, const xdb_request *r, const void *user_id)
{
    db_bind_text(st, 1, r->item.name);
    db_bind_int(st, 2, r->item.subscription);
    db_bind_int(st, 3, r->item.ask);
    db_bind_int(st, 4, *(const int64_t *)user_id);
    db_bind_text(st, 5, r->item.jid);
}

static db_rc write_item(db_conn *c, int64_t user_id, const xdb_request *r)
{
    static const char sql_update[] =
        "UPDATE roster_items SET name = ?, subscription = ?, ask = ? WHERE user_id = ? AND jid = ?";
    static const char sql_insert[] =
        "INSERT INTO roster_items (name, subscription, ask, user_id, jid) VALUES (?, ?, ?, ?, ?)";
    static const char sql_clear_groups[] = "DELETE FROM roster_groups WHERE user_id = ? AND jid = ?";
    static const char sql_add_group[] = "INSERT INTO roster_groups (user_id, jid, grp) VALUES (?, ?, ?)";
    bool written;
    db_rc rc = store_upsert(c, sql_update, sql_insert, bind_item, r, &user_id, &written);
    if (rc != DB_OK)
        return rc;
    db_stmt *st = db_prepare(c, sql_clear_groups, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, user_id);
    db_bind_text(st, 2, r->item.jid);
    if ((rc = store_step_done(st)) != DB_OK)
        return rc;
    for (size_t i = 0; i < r->item.ngroups; i++) {
        if (!(st = db_prepare(c, sql_add_group, &rc)))
            return rc;
        db_bind_int(st, 1, user_id);
        db_bind_text(st, 2, r->item.jid);
        db_bind_text(st, 3, r->item.groups[i]);
        if ((rc = store_step_done(st)) != DB_OK)
            return rc;
    }
    return DB_OK;
}

db_rc store_roster_set(db_conn *c, xdb_request *r)
{
    int64_t user_id;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    if ((rc = write_item(c, user_id, r)) != DB_OK ||
        (rc = bump_version(c, user_id, &r->roster.version)) != DB_OK)
        return store_abort(c, rc);
    return store_commit(c, r);
}

db_rc store_roster_remove(db_conn *c, xdb_request *r)
{
    static const char sql[] = "DELETE FROM roster_items WHERE user_id = ? AND jid = ?";
    int64_t user_id;
    db_rc rc = store_begin_for_user(c, r, &user_id);
    if (rc != DB_OK || !user_id)
        return rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return store_abort(c, rc);
    db_bind_int(st, 1, user_id);
    db_bind_text(st, 2, r->item.jid);
    if ((rc = store_step_done(st)) != DB_OK)
        return store_abort(c, rc);
    if (db_changes(st) == 0) {
        r->status = XDB_NOT_FOUND;
        return store_abort(c, DB_OK);
    }
    if ((rc = bump_version(c, user_id, &r->roster.version)) != DB_OK)
        return store_abort(c, rc);
    return store_commit(c, r);
}

/* UPDATE and INSERT of a pending request take (xml, jid, host, username). */
static void bind_pending(db_stmt *st, const xdb_request *r, const void *unused)
{
    db_bind_text(st, 1, r->xml ? r->xml : "");
    db_bind_text(st, 2, r->jid);
    db_bind_text(st, 3, r->host);
    db_bind_text(st, 4, r->user);
}

db_rc store_pending_add(db_conn *c, xdb_request *r)
{
    static const char sql_update[] =
        "UPDATE roster_pending SET xml = ? WHERE jid = ? AND user_id ="
        " (SELECT id FROM users WHERE host = ? AND username = ?)";
    static const char sql_insert[] =
        "INSERT INTO roster_pending (xml, user_id, jid)"
        " SELECT ?, id, ? FROM users WHERE host = ? AND username = ?";
    bool written;
    db_rc rc = store_upsert(c, sql_update, sql_insert, bind_pending, r, NULL, &written);
    if (rc == DB_OK && !written)
        r->status = XDB_NOT_FOUND;
    return rc;
}

db_rc store_pending_remove(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "DELETE FROM roster_pending WHERE jid = ? AND user_id ="
        " (SELECT id FROM users WHERE host = ? AND username = ?)";
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    db_bind_text(st, 1, r->jid);
    db_bind_text(st, 2, r->host);
    db_bind_text(st, 3, r->user);
    r->commit_sent = true;
    if ((rc = store_step_done(st)) != DB_OK)
        return rc;
    if (db_changes(st) == 0)
        r->status = XDB_NOT_FOUND;
    return DB_OK;
}
