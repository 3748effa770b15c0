/* xdbsql/store_rooms.c — group chat rooms (XEP-0045) as storage owners: a room is a row of
 * `users` (host: the room service's domain, username: the room's node) marked by a row of
 * `rooms`, so that everything stored per owner serves rooms too (their configuration,
 * affiliations and occupants in the document store, their history in the message archive), and
 * goes with the room when it is deleted. A room never authenticates and is never listed as an
 * account: store_users.c reads accounts only (rows without a `rooms` row). */
#include <string.h>

#include "xdbsql/store.h"

/* The room's row: created, or found when it exists (a room again: OK); XDB_EXISTS when an
 * account has that name. Credentials are empty: nothing can authenticate as a room. */
db_rc store_room_create(db_conn *c, xdb_request *r)
{
    static const char sql_user[] =
        "INSERT INTO users (host, username, sha1_salt, sha1_iterations, sha1_stored_key,"
        " sha1_server_key, sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key,"
        " created) VALUES (?, ?, ?, 0, ?, ?, ?, 0, ?, ?, ?)";
    static const char sql_room[] = "INSERT INTO rooms (user_id) VALUES (?)";
    static const char sql_is_room[] = "SELECT COUNT(*) FROM rooms WHERE user_id = ?";
    db_rc rc = db_begin(c);
    if (rc != DB_OK)
        return rc;
    int64_t id = store_user_id(c, r->host, r->user, &rc);
    if (rc != DB_OK)
        return store_abort(c, rc);
    if (id) {
        db_stmt *st = db_prepare(c, sql_is_room, &rc);
        if (!st)
            return store_abort(c, rc);
        db_bind_int(st, 1, id);
        int64_t rooms = 0;
        while ((rc = db_step(st)) == DB_ROW)
            rooms = db_column_int(st, 0);
        db_rollback(c);
        if (rc != DB_DONE)
            return rc;
        if (!rooms)
            r->status = XDB_EXISTS;
        return DB_OK;
    }
    db_stmt *st = store_prepare_user(c, sql_user, r->host, r->user, &rc);
    if (!st)
        return store_abort(c, rc);
    static const unsigned char none[1];
    for (int i = 3; i <= 8; i++)
        db_bind_blob(st, i, none, 0);
    db_bind_int(st, 9, store_now_ms() / 1000);
    if ((rc = store_step_done(st)) != DB_OK)
        return store_abort(c, rc);
    if (!(id = store_user_id(c, r->host, r->user, &rc)))
        return store_abort(c, rc != DB_OK ? rc : DB_ERROR);
    if (!(st = db_prepare(c, sql_room, &rc)))
        return store_abort(c, rc);
    db_bind_int(st, 1, id);
    if ((rc = store_step_done(st)) != DB_OK)
        return store_abort(c, rc);
    return store_commit(c, r);
}

db_rc store_room_delete(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "DELETE FROM users WHERE host = ? AND username = ?"
        " AND id IN (SELECT user_id FROM rooms)";
    db_rc rc;
    db_stmt *st = store_prepare_user(c, sql, r->host, r->user, &rc);
    if (!st)
        return rc;
    r->commit_sent = true;
    if ((rc = store_step_done(st)) != DB_OK)
        return rc;
    if (db_changes(st) == 0)
        r->status = XDB_NOT_FOUND;
    return DB_OK;
}

/* The rooms of host (r->host), as "room@host" in r->users, in name order. */
db_rc store_room_list(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT u.username FROM users u JOIN rooms m ON m.user_id = u.id WHERE u.host = ?"
        " ORDER BY u.username";
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    db_bind_text(st, 1, r->host);
    while ((rc = db_step(st)) == DB_ROW) {
        size_t ulen, hlen = strlen(r->host);
        const char *user = db_column_text(st, 0, &ulen);
        char jid[2 * 1024 + 2];
        if (ulen + hlen + 2 > sizeof(jid))
            continue;
        memcpy(jid, user, ulen);
        jid[ulen] = '@';
        memcpy(jid + ulen + 1, r->host, hlen + 1);
        xdb_strings_push(&r->users, jid);
    }
    return rc == DB_DONE ? DB_OK : rc;
}
