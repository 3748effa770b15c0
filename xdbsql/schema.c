/* xdbsql/schema.c — the versioned schema and its migrations, applied when storage opens.
 *
 * Each migration is a list of DDL statements written once with type tokens ({ID} {TEXT} {KEY}
 * {JID} {INT64} {BLOB} {TABLE}) that the connection's dialect spells for its database. Every
 * statement is idempotent (IF NOT EXISTS), because MariaDB commits DDL implicitly: a migration
 * interrupted there is completed by running it again, and on SQLite and PostgreSQL it runs inside
 * one transaction with the version bump. A database whose version is newer than this program is
 * refused rather than written to.
 *
 * Version 1: users and credentials, rosters with groups and versions, pending subscription
 *            requests, offline messages.
 * Version 2: vCards, private XML, last activity, block lists.
 */
#include <stdio.h>
#include <string.h>

#include "xdbsql/xdbsql.h"

static const char *const migration_1[] = {
    "CREATE TABLE IF NOT EXISTS users ("
    " id {ID}, host {KEY} NOT NULL, username {KEY} NOT NULL,"
    " sha1_salt {BLOB} NOT NULL, sha1_iterations INTEGER NOT NULL,"
    " sha1_stored_key {BLOB} NOT NULL, sha1_server_key {BLOB} NOT NULL,"
    " sha256_salt {BLOB} NOT NULL, sha256_iterations INTEGER NOT NULL,"
    " sha256_stored_key {BLOB} NOT NULL, sha256_server_key {BLOB} NOT NULL,"
    " roster_version {INT64} NOT NULL DEFAULT 0, created {INT64} NOT NULL,"
    " UNIQUE (host, username)){TABLE}",
    "CREATE TABLE IF NOT EXISTS roster_items ("
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE, jid {JID} NOT NULL,"
    " name {TEXT}, subscription INTEGER NOT NULL, ask INTEGER NOT NULL,"
    " PRIMARY KEY (user_id, jid)){TABLE}",
    "CREATE TABLE IF NOT EXISTS roster_groups ("
    " user_id {INT64} NOT NULL, jid {JID} NOT NULL, grp {TEXT} NOT NULL,"
    " FOREIGN KEY (user_id, jid) REFERENCES roster_items(user_id, jid) ON DELETE CASCADE){TABLE}",
    "CREATE INDEX IF NOT EXISTS roster_groups_item ON roster_groups (user_id, jid)",
    "CREATE TABLE IF NOT EXISTS roster_pending ("
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE, jid {JID} NOT NULL,"
    " xml {TEXT} NOT NULL, PRIMARY KEY (user_id, jid)){TABLE}",
    "CREATE TABLE IF NOT EXISTS offline ("
    " id {ID}, user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " stamp {INT64} NOT NULL, xml {TEXT} NOT NULL){TABLE}",
    "CREATE INDEX IF NOT EXISTS offline_user ON offline (user_id, id)",
    NULL,
};

static const char *const migration_2[] = {
    "CREATE TABLE IF NOT EXISTS vcards ("
    " user_id {INT64} NOT NULL PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
    " xml {TEXT} NOT NULL){TABLE}",
    "CREATE TABLE IF NOT EXISTS private_xml ("
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE, ns {KEY} NOT NULL,"
    " xml {TEXT} NOT NULL, PRIMARY KEY (user_id, ns)){TABLE}",
    "CREATE TABLE IF NOT EXISTS last_activity ("
    " user_id {INT64} NOT NULL PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
    " seconds {INT64} NOT NULL, status {TEXT}){TABLE}",
    /* Blocked JIDs may be full JIDs of up to 3071 bytes, beyond a MariaDB key: no unique key,
     * the store keeps them distinct. */
    "CREATE TABLE IF NOT EXISTS blocklist ("
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE, jid {TEXT} NOT NULL){TABLE}",
    "CREATE INDEX IF NOT EXISTS blocklist_user ON blocklist (user_id)",
    NULL,
};

static const char *const *const migrations[] = {migration_1, migration_2};
#define SCHEMA_CURRENT ((int)(sizeof(migrations) / sizeof(migrations[0])))

int xdb_schema_current(void)
{
    return SCHEMA_CURRENT;
}

static const char *token_value(const db_dialect *d, const char *token, size_t len)
{
    static const struct {
        const char *name;
        size_t offset;
    } tokens[] = {
        {"ID", offsetof(db_dialect, id_column)},   {"TEXT", offsetof(db_dialect, text)},
        {"KEY", offsetof(db_dialect, key_text)},   {"JID", offsetof(db_dialect, jid_text)},
        {"INT64", offsetof(db_dialect, int64)},    {"BLOB", offsetof(db_dialect, blob)},
        {"TABLE", offsetof(db_dialect, table_suffix)},
    };
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
        if (strlen(tokens[i].name) == len && memcmp(tokens[i].name, token, len) == 0)
            return *(const char *const *)((const char *)d + tokens[i].offset);
    return NULL;
}

/* Spells a DDL template for the dialect; -1 if it does not fit or names an unknown token. */
static int expand(const db_dialect *d, const char *template, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = template; *p;) {
        const char *piece = p;
        size_t piece_len = 1;
        if (*p == '{') {
            const char *end = strchr(p, '}');
            if (!end || !(piece = token_value(d, p + 1, (size_t)(end - p - 1))))
                return -1;
            piece_len = strlen(piece);
            p = end + 1;
        } else {
            p++;
        }
        if (n + piece_len >= outlen)
            return -1;
        memcpy(out + n, piece, piece_len);
        n += piece_len;
    }
    out[n] = '\0';
    return 0;
}

static const char sql_version_table[] =
    "CREATE TABLE IF NOT EXISTS jabshard_schema (version INTEGER NOT NULL)";
static const char sql_version_get[] = "SELECT MAX(version) FROM jabshard_schema";
static const char sql_version_clear[] = "DELETE FROM jabshard_schema";
static const char sql_version_set[] = "INSERT INTO jabshard_schema (version) VALUES (?)";

int xdb_schema_version(db_conn *c)
{
    db_rc rc;
    if (db_exec(c, sql_version_table) != DB_OK)
        return -1;
    db_stmt *st = db_prepare(c, sql_version_get, &rc);
    if (!st || db_step(st) != DB_ROW)
        return -1;
    size_t len;
    int version = db_column_text(st, 0, &len) ? (int)db_column_int(st, 0) : 0;
    while ((rc = db_step(st)) == DB_ROW)
        ;
    return rc == DB_DONE ? version : -1;
}

static int set_version(db_conn *c, int version)
{
    db_rc rc;
    db_stmt *st;
    if (!(st = db_prepare(c, sql_version_clear, &rc)) || db_step(st) != DB_DONE)
        return -1;
    if (!(st = db_prepare(c, sql_version_set, &rc)) || db_bind_int(st, 1, version) != DB_OK ||
        db_step(st) != DB_DONE)
        return -1;
    return 0;
}

static int apply(db_conn *c, int version, char *err, size_t errlen)
{
    char sql[2048];
    if (db_begin(c) != DB_OK) {
        snprintf(err, errlen, "schema migration to version %d: cannot begin: %s", version,
                 db_errmsg(c));
        return -1;
    }
    for (const char *const *t = migrations[version - 1]; *t; t++) {
        if (expand(db_dialect_of(c), *t, sql, sizeof(sql)) != 0) {
            snprintf(err, errlen, "schema migration to version %d: bad template: %.60s", version, *t);
            db_rollback(c);
            return -1;
        }
        if (db_exec(c, sql) != DB_OK) {
            snprintf(err, errlen, "schema migration to version %d failed: %s (in: %.80s)", version,
                     db_errmsg(c), sql);
            db_rollback(c);
            return -1;
        }
    }
    if (set_version(c, version) != 0 || db_commit(c) != DB_OK) {
        snprintf(err, errlen, "schema migration to version %d: cannot record it: %s", version,
                 db_errmsg(c));
        db_rollback(c);
        return -1;
    }
    return 0;
}

int xdb_migrate(db_conn *c, char *err, size_t errlen)
{
    return xdb_migrate_to(c, SCHEMA_CURRENT, err, errlen);
}

int xdb_migrate_to(db_conn *c, int target, char *err, size_t errlen)
{
    int version = xdb_schema_version(c);
    if (version < 0) {
        snprintf(err, errlen, "cannot read the schema version: %s", db_errmsg(c));
        return -1;
    }
    if (version > SCHEMA_CURRENT) {
        snprintf(err, errlen,
                 "the database schema is at version %d, newer than this jabshard knows (%d): "
                 "refusing to use it",
                 version, SCHEMA_CURRENT);
        return -1;
    }
    for (int v = version + 1; v <= target && v <= SCHEMA_CURRENT; v++)
        if (apply(c, v, err, errlen) != 0)
            return -1;
    return 0;
}
