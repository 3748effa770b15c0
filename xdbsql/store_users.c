/* xdbsql/store_users.c — accounts: creation, deletion, password changes, SCRAM credentials, lists.
 * Passwords never reach the database: they become SCRAM-SHA-1 and SCRAM-SHA-256 credentials
 * here, on a storage worker, and are wiped. A room's row (store_rooms.c) is not an account:
 * credentials, password changes and lists skip it. */
#include <openssl/crypto.h>
#include <string.h>

#include "xdbsql/store.h"

/* Fills r->creds from r->password (fresh salts); false when SASLprep refuses the password. */
static bool derive_creds(xdb_request *r)
{
    if (!r->password)
        return true;
    bool ok = scram_derive(SCRAM_SHA1, r->password, NULL, 0, SCRAM_ITERATIONS, &r->creds.sha1) == 0 &&
              scram_derive(SCRAM_SHA256, r->password, NULL, 0, SCRAM_ITERATIONS, &r->creds.sha256) == 0;
    xdb_request_set_password(r, NULL);
    return ok;
}

/* Binds one mechanism's four columns starting at parameter index first. */
static void bind_creds(db_stmt *st, int first, scram_hash h, const scram_credentials *cr)
{
    size_t key_len = scram_key_len(h);
    db_bind_blob(st, first, cr->salt, cr->salt_len);
    db_bind_int(st, first + 1, cr->iterations);
    db_bind_blob(st, first + 2, cr->stored_key, key_len);
    db_bind_blob(st, first + 3, cr->server_key, key_len);
}

static db_rc refuse_password(xdb_request *r)
{
    r->status = XDB_ERROR;
    strcpy(r->error, "the password has characters SASLprep prohibits");
    return DB_OK;
}

db_rc store_user_create(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "INSERT INTO users (host, username, sha1_salt, sha1_iterations, sha1_stored_key,"
        " sha1_server_key, sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key,"
        " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    if (!derive_creds(r))
        return refuse_password(r);
    db_rc rc;
    db_stmt *st = store_prepare_user(c, sql, r->host, r->user, &rc);
    if (!st)
        return rc;
    bind_creds(st, 3, SCRAM_SHA1, &r->creds.sha1);
    bind_creds(st, 7, SCRAM_SHA256, &r->creds.sha256);
    db_bind_int(st, 11, store_now_ms() / 1000);
    r->commit_sent = true; /* autocommit: the statement is its own transaction */
    rc = store_step_done(st);
    if (rc == DB_CONSTRAINT) {
        r->status = XDB_EXISTS;
        return DB_OK;
    }
    return rc;
}

db_rc store_user_delete(db_conn *c, xdb_request *r)
{
    static const char sql[] = "DELETE FROM users WHERE host = ? AND username = ?";
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

db_rc store_user_passwd(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "UPDATE users SET sha1_salt = ?, sha1_iterations = ?, sha1_stored_key = ?,"
        " sha1_server_key = ?, sha256_salt = ?, sha256_iterations = ?, sha256_stored_key = ?,"
        " sha256_server_key = ? WHERE host = ? AND username = ?"
        " AND id NOT IN (SELECT user_id FROM rooms)";
    if (!derive_creds(r))
        return refuse_password(r);
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st)
        return rc;
    bind_creds(st, 1, SCRAM_SHA1, &r->creds.sha1);
    bind_creds(st, 5, SCRAM_SHA256, &r->creds.sha256);
    db_bind_text(st, 9, r->host);
    db_bind_text(st, 10, r->user);
    r->commit_sent = true;
    if ((rc = store_step_done(st)) != DB_OK)
        return rc;
    if (db_changes(st) == 0)
        r->status = XDB_NOT_FOUND;
    return DB_OK;
}

/* Reads one mechanism's four columns starting at column first. */
static void read_creds(db_stmt *st, int first, scram_hash h, scram_credentials *cr)
{
    size_t len;
    const void *p = db_column_blob(st, first, &len);
    cr->salt_len = len < sizeof(cr->salt) ? len : sizeof(cr->salt);
    if (p)
        memcpy(cr->salt, p, cr->salt_len);
    cr->iterations = (uint32_t)db_column_int(st, first + 1);
    size_t key_len = scram_key_len(h);
    p = db_column_blob(st, first + 2, &len);
    if (p)
        memcpy(cr->stored_key, p, len < key_len ? len : key_len);
    p = db_column_blob(st, first + 3, &len);
    if (p)
        memcpy(cr->server_key, p, len < key_len ? len : key_len);
}

db_rc store_user_creds(db_conn *c, xdb_request *r)
{
    static const char sql[] =
        "SELECT sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key, sha256_salt,"
        " sha256_iterations, sha256_stored_key, sha256_server_key FROM users"
        " WHERE host = ? AND username = ? AND id NOT IN (SELECT user_id FROM rooms)";
    db_rc rc;
    db_stmt *st = store_prepare_user(c, sql, r->host, r->user, &rc);
    if (!st)
        return rc;
    r->status = XDB_NOT_FOUND;
    while ((rc = db_step(st)) == DB_ROW) {
        read_creds(st, 0, SCRAM_SHA1, &r->creds.sha1);
        read_creds(st, 4, SCRAM_SHA256, &r->creds.sha256);
        r->status = XDB_OK;
    }
    return rc == DB_DONE ? DB_OK : rc;
}

db_rc store_user_list(db_conn *c, xdb_request *r)
{
    static const char sql_host[] =
        "SELECT username, host FROM users WHERE host = ? AND id NOT IN (SELECT user_id FROM rooms)"
        " ORDER BY username";
    static const char sql_all[] =
        "SELECT username, host FROM users WHERE id NOT IN (SELECT user_id FROM rooms)"
        " ORDER BY host, username";
    db_rc rc;
    db_stmt *st = db_prepare(c, r->host ? sql_host : sql_all, &rc);
    if (!st)
        return rc;
    if (r->host)
        db_bind_text(st, 1, r->host);
    while ((rc = db_step(st)) == DB_ROW) {
        size_t ulen, hlen;
        const char *user = db_column_text(st, 0, &ulen), *host = db_column_text(st, 1, &hlen);
        char jid[2 * 1024 + 2];
        if (ulen + hlen + 2 > sizeof(jid))
            continue;
        memcpy(jid, user, ulen);
        jid[ulen] = '@';
        memcpy(jid + ulen + 1, host, hlen);
        jid[ulen + 1 + hlen] = '\0';
        xdb_strings_push(&r->users, jid);
    }
    return rc == DB_DONE ? DB_OK : rc;
}
