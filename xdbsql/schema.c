/* xdbsql/schema.c — the versioned schema and its migrations, applied when storage opens.
 *
 * Each migration is a list of DDL statements written once with type tokens ({ID} {TEXT} {KEY}
 * {SORTED_KEY} {JID} {INT64} {BLOB} {TABLE}) that the connection's dialect spells for its
 * database, and may move data in C between its DDL and the DDL that must follow the move (drops).
 * Every statement is idempotent (IF NOT EXISTS), and every move can run again from any point,
 * because MariaDB commits DDL implicitly: a migration interrupted there is completed by running it
 * again. On SQLite and PostgreSQL a migration runs inside one transaction with the version bump
 * (one that moves data: its first DDL, then the rest, see run_steps). A database whose version is
 * newer than this program is refused rather than written to.
 *
 * Version 1: users and credentials, rosters with groups and versions, pending subscription
 *            requests, offline messages.
 * Version 2: vCards, private XML, last activity, block lists.
 * Version 3: the document store; version 2's vCards, private XML and last activity moved into it
 *            and their tables dropped.
 * Version 4: hibernated stream-management sessions and the stanzas they keep.
 * Version 5: personal eventing (PEP): nodes and items.
 * Version 6: message archives (MAM).
 * Version 7: group chat rooms: the `rooms` mark on their `users` rows (xdbsql/store_rooms.c).
 * Version 8: HTTP File Upload slots each account was given, for its quota (store_upload.c).
 * Version 9: indexes that carry a roster's items and groups (SQLite), so that loading a roster
 *            reads a few pages rather than one per item (an SM restart loads every online
 *            account's).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
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

/* Version 2's tables that version 3 moves into documents (and creates again, empty, when an
 * interrupted run of it had dropped them already, so that it can run again from the start). */
static const char sql_v2_vcards[] =
    "CREATE TABLE IF NOT EXISTS vcards ("
    " user_id {INT64} NOT NULL PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
    " xml {TEXT} NOT NULL){TABLE}";
static const char sql_v2_private[] =
    "CREATE TABLE IF NOT EXISTS private_xml ("
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE, ns {KEY} NOT NULL,"
    " xml {TEXT} NOT NULL, PRIMARY KEY (user_id, ns)){TABLE}";
static const char sql_v2_last[] =
    "CREATE TABLE IF NOT EXISTS last_activity ("
    " user_id {INT64} NOT NULL PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
    " seconds {INT64} NOT NULL, status {TEXT}){TABLE}";

static const char *const migration_2[] = {
    sql_v2_vcards,
    sql_v2_private,
    sql_v2_last,
    /* Blocked JIDs may be full JIDs of up to 3071 bytes, beyond a MariaDB key: no unique key,
     * the store keeps them distinct. */
    "CREATE TABLE IF NOT EXISTS blocklist ("
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE, jid {TEXT} NOT NULL){TABLE}",
    "CREATE INDEX IF NOT EXISTS blocklist_user ON blocklist (user_id)",
    NULL,
};

/* Keys sort byte by byte ({SORTED_KEY}): a key prefix is a range of the primary key. */
static const char *const migration_3[] = {
    "CREATE TABLE IF NOT EXISTS documents ("
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " store_name {SORTED_KEY} NOT NULL, doc_key {SORTED_KEY} NOT NULL, doc_value {BLOB} NOT NULL,"
    " PRIMARY KEY (user_id, store_name, doc_key)){TABLE}",
    sql_v2_vcards,
    sql_v2_private,
    sql_v2_last,
    NULL,
};

static const char *const migration_3_drops[] = {
    "DROP TABLE IF EXISTS vcards",
    "DROP TABLE IF EXISTS private_xml",
    "DROP TABLE IF EXISTS last_activity",
    NULL,
};

static const char *const migration_4[] = {
    "CREATE TABLE IF NOT EXISTS hibernated ("
    " resume_id {SORTED_KEY} NOT NULL PRIMARY KEY,"
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " record {BLOB} NOT NULL){TABLE}",
    "CREATE INDEX IF NOT EXISTS hibernated_user ON hibernated (user_id)",
    "CREATE TABLE IF NOT EXISTS hibernated_stanzas ("
    " resume_id {SORTED_KEY} NOT NULL REFERENCES hibernated(resume_id) ON DELETE CASCADE,"
    " seq {INT64} NOT NULL, xml {TEXT} NOT NULL, PRIMARY KEY (resume_id, seq)){TABLE}",
    NULL,
};

static const char *const migration_5[] = {
    "CREATE TABLE IF NOT EXISTS pep_nodes ("
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " node {SORTED_KEY} NOT NULL, config {BLOB} NOT NULL, PRIMARY KEY (user_id, node)){TABLE}",
    "CREATE TABLE IF NOT EXISTS pep_items ("
    " user_id {INT64} NOT NULL, node {SORTED_KEY} NOT NULL, item_id {SORTED_KEY} NOT NULL,"
    " seq {INT64} NOT NULL, payload {TEXT} NOT NULL, PRIMARY KEY (user_id, node, item_id),"
    " FOREIGN KEY (user_id, node) REFERENCES pep_nodes(user_id, node) ON DELETE CASCADE){TABLE}",
    "CREATE INDEX IF NOT EXISTS pep_items_order ON pep_items (user_id, node, seq)",
    NULL,
};

/* A user's archive is in id order (the order it was written in); queries page by id, over all
 * of it or one contact's, find an id by stanza id or by time, and expiry goes by time. */
static const char *const migration_6[] = {
    "CREATE TABLE IF NOT EXISTS archive ("
    " id {ID}, user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " stamp {INT64} NOT NULL, stanza_id {KEY} NOT NULL, peer {JID} NOT NULL,"
    " resource {TEXT} NOT NULL, xml {TEXT} NOT NULL){TABLE}",
    "CREATE INDEX IF NOT EXISTS archive_user ON archive (user_id, id)",
    "CREATE INDEX IF NOT EXISTS archive_peer ON archive (user_id, peer, id)",
    "CREATE INDEX IF NOT EXISTS archive_time ON archive (user_id, stamp)",
    "CREATE UNIQUE INDEX IF NOT EXISTS archive_stanza ON archive (user_id, stanza_id)",
    "CREATE INDEX IF NOT EXISTS archive_age ON archive (stamp)",
    NULL,
};

/* One moved row of a version 2 table, as a document. */
typedef struct moved_doc {
    int64_t user_id;
    char *key, *value;
    size_t len;
} moved_doc;

/* Version 2's XML text, as it was. */
static void value_xml(db_stmt *st, moved_doc *d)
{
    size_t len;
    const char *xml = db_column_text(st, 2, &len);
    d->value = mem_strndup(xml ? xml : "", len);
    d->len = len;
}

/* Last activity as sm/mod_last.c reads it: the logout's Unix time in decimal, then, when there
 * was a status, a space and the status. */
static void value_last(db_stmt *st, moved_doc *d)
{
    size_t len;
    const char *status = db_column_text(st, 3, &len);
    char seconds[24];
    int n = snprintf(seconds, sizeof(seconds), "%" PRId64, db_column_int(st, 2));
    d->len = (size_t)n + (status && len ? 1 + len : 0);
    d->value = mem_alloc(d->len + 1);
    memcpy(d->value, seconds, (size_t)n);
    if (status && len) {
        d->value[n] = ' ';
        memcpy(d->value + n + 1, status, len);
    }
    d->value[d->len] = '\0';
}

/* Where version 3 finds the documents: `rows` gives user_id, the key, then what `value` makes the
 * document from, for the users whose ids are in (?, ?]; `next` the user id of the row at an
 * offset (in user id order) after a given user id, which bounds the next step. */
static const struct doc_source {
    const char *table, *store, *rows, *next;
    void (*value)(db_stmt *st, moved_doc *d);
} doc_sources[] = {
    {"vcards", "vcard", "SELECT user_id, '', xml FROM vcards WHERE user_id > ? AND user_id <= ?",
     "SELECT user_id FROM vcards WHERE user_id > ? ORDER BY user_id LIMIT 1 OFFSET ?", value_xml},
    {"private_xml", "private",
     "SELECT user_id, ns, xml FROM private_xml WHERE user_id > ? AND user_id <= ?",
     "SELECT user_id FROM private_xml WHERE user_id > ? ORDER BY user_id LIMIT 1 OFFSET ?",
     value_xml},
    {"last_activity", "last",
     "SELECT user_id, '', seconds, status FROM last_activity WHERE user_id > ? AND user_id <= ?",
     "SELECT user_id FROM last_activity WHERE user_id > ? ORDER BY user_id LIMIT 1 OFFSET ?",
     value_last},
};

/* Rows per step of the move, give or take one user's: what a step holds in memory (the database
 * clients hold a whole result too). */
#define MOVE_ROWS 512

/* Where the step after user id low ends: the user id of its MOVE_ROWS-th row, INT64_MAX when
 * fewer rows are left. */
static db_rc move_bound(db_conn *c, const struct doc_source *src, int64_t low, int64_t *high)
{
    db_rc rc;
    db_stmt *st = db_prepare(c, src->next, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, low);
    db_bind_int(st, 2, MOVE_ROWS - 1);
    *high = INT64_MAX;
    while ((rc = db_step(st)) == DB_ROW)
        *high = db_column_int(st, 0);
    return rc == DB_DONE ? DB_OK : rc;
}

/* Moves the documents of one table for the users with ids in (low, high]. Those the same range of
 * an interrupted run had written are deleted first, so the move can run again from any point. */
static db_rc move_range(db_conn *c, const struct doc_source *src, int64_t low, int64_t high)
{
    static const char sql_clear[] =
        "DELETE FROM documents WHERE store_name = ? AND user_id > ? AND user_id <= ?";
    static const char sql_insert[] =
        "INSERT INTO documents (user_id, store_name, doc_key, doc_value) VALUES (?, ?, ?, ?)";
    db_rc rc;
    db_stmt *st = db_prepare(c, src->rows, &rc);
    if (!st)
        return rc;
    db_bind_int(st, 1, low);
    db_bind_int(st, 2, high);
    moved_doc *docs = NULL;
    size_t n = 0, cap = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : MOVE_ROWS;
            docs = mem_realloc(docs, cap * sizeof(*docs));
        }
        moved_doc *d = &docs[n++];
        size_t len;
        const char *key = db_column_text(st, 1, &len);
        d->user_id = db_column_int(st, 0);
        d->key = mem_strndup(key ? key : "", len);
        src->value(st, d);
    }
    rc = rc == DB_DONE ? DB_OK : rc;
    if (rc == DB_OK && n) {
        if ((st = db_prepare(c, sql_clear, &rc))) {
            db_bind_text(st, 1, src->store);
            db_bind_int(st, 2, low);
            db_bind_int(st, 3, high);
            rc = db_step(st);
            rc = rc == DB_DONE ? DB_OK : rc;
        }
        for (size_t i = 0; i < n && rc == DB_OK; i++) {
            if (!(st = db_prepare(c, sql_insert, &rc)))
                break;
            db_bind_int(st, 1, docs[i].user_id);
            db_bind_text(st, 2, src->store);
            db_bind_text(st, 3, docs[i].key);
            db_bind_blob(st, 4, docs[i].value, docs[i].len);
            rc = db_step(st);
            rc = rc == DB_DONE ? DB_OK : rc;
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(docs[i].key);
        free(docs[i].value);
    }
    free(docs);
    return rc;
}

/* Version 3's move: every vCard, private XML namespace and last activity into documents. */
static int move_to_documents(db_conn *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(doc_sources) / sizeof(doc_sources[0]); i++) {
        const struct doc_source *src = &doc_sources[i];
        int64_t low = 0, high = 0;
        while (high < INT64_MAX) {
            if (move_bound(c, src, low, &high) != DB_OK || move_range(c, src, low, high) != DB_OK) {
                snprintf(err, errlen, "schema migration to version 3: moving %s into documents: %s",
                         src->table, db_errmsg(c));
                return -1;
            }
            low = high;
        }
    }
    return 0;
}

typedef struct migration {
    const char *const *ddl;                           /* first */
    int (*move)(db_conn *c, char *err, size_t errlen); /* then, when not NULL */
    const char *const *after;                         /* then, when not NULL */
} migration;

/* A room is a `users` row with a `rooms` row: it owns documents and an archive as an account
 * does, but never authenticates nor is listed as an account. */
static const char *const migration_7[] = {
    "CREATE TABLE IF NOT EXISTS rooms ("
    " user_id {INT64} NOT NULL PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE){TABLE}",
    NULL,
};

/* A slot id is unique across accounts (128 random bits); an account's slots are summed and
 * expired by time. */
static const char *const migration_8[] = {
    "CREATE TABLE IF NOT EXISTS uploads ("
    " slot {KEY} NOT NULL PRIMARY KEY,"
    " user_id {INT64} NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " size {INT64} NOT NULL, created {INT64} NOT NULL){TABLE}",
    "CREATE INDEX IF NOT EXISTS uploads_user ON uploads (user_id, created)",
    NULL,
};

/* A user's roster items and groups, in the order of these keys, each with what the roster load
 * reads ({CARRY}: where the database needs it, xdbsql/db.h). */
static const char *const migration_9[] = {
    "CREATE INDEX IF NOT EXISTS roster_items_load ON roster_items"
    " (user_id, jid{CARRY}subscription, ask, name)",
    "CREATE INDEX IF NOT EXISTS roster_groups_load ON roster_groups (user_id, jid{CARRY}grp)",
    NULL,
};

static const migration migrations[] = {
    {migration_1, NULL, NULL},
    {migration_2, NULL, NULL},
    {migration_3, move_to_documents, migration_3_drops},
    {migration_4, NULL, NULL},
    {migration_5, NULL, NULL},
    {migration_6, NULL, NULL},
    {migration_7, NULL, NULL},
    {migration_8, NULL, NULL},
    {migration_9, NULL, NULL},
};
#define SCHEMA_CURRENT ((int)(sizeof(migrations) / sizeof(migrations[0])))

int xdb_schema_current(void)
{
    return SCHEMA_CURRENT;
}

/* The dialect's spelling of token into *out (NULL: the dialect has none); false when there is no
 * such token. */
static bool token_value(const db_dialect *d, const char *token, size_t len, const char **out)
{
    static const struct {
        const char *name;
        size_t offset;
    } tokens[] = {
        {"ID", offsetof(db_dialect, id_column)},   {"TEXT", offsetof(db_dialect, text)},
        {"KEY", offsetof(db_dialect, key_text)},   {"JID", offsetof(db_dialect, jid_text)},
        {"SORTED_KEY", offsetof(db_dialect, sorted_key)},
        {"INT64", offsetof(db_dialect, int64)},    {"BLOB", offsetof(db_dialect, blob)},
        {"TABLE", offsetof(db_dialect, table_suffix)},
        {"CARRY", offsetof(db_dialect, index_carry)},
    };
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
        if (strlen(tokens[i].name) == len && memcmp(tokens[i].name, token, len) == 0) {
            *out = *(const char *const *)((const char *)d + tokens[i].offset);
            return true;
        }
    return false;
}

/* Spells a DDL template for the dialect; -1 if it does not fit or names an unknown token, 1 when
 * it names one the dialect does without (the statement is not for this database). */
static int expand(const db_dialect *d, const char *template, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = template; *p;) {
        const char *piece = p;
        size_t piece_len = 1;
        if (*p == '{') {
            const char *end = strchr(p, '}');
            if (!end || !token_value(d, p + 1, (size_t)(end - p - 1), &piece))
                return -1;
            if (!piece)
                return 1;
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

/* Runs DDL templates in order; -1 with the reason in err when one fails. */
static int run_ddl(db_conn *c, int version, const char *const *templates, char *err,
                   size_t errlen)
{
    char sql[2048];
    for (const char *const *t = templates; *t; t++) {
        int spelled = expand(db_dialect_of(c), *t, sql, sizeof(sql));
        if (spelled < 0) {
            snprintf(err, errlen, "schema migration to version %d: bad template: %.60s", version, *t);
            return -1;
        }
        if (spelled > 0)
            continue;
        if (db_exec(c, sql) != DB_OK) {
            snprintf(err, errlen, "schema migration to version %d failed: %s (in: %.80s)", version,
                     db_errmsg(c), sql);
            return -1;
        }
    }
    return 0;
}

static int begin(db_conn *c, int version, char *err, size_t errlen)
{
    if (db_begin(c) == DB_OK)
        return 0;
    snprintf(err, errlen, "schema migration to version %d: cannot begin: %s", version, db_errmsg(c));
    return -1;
}

/* Runs m's steps inside the transaction begun by apply. A migration that moves data commits its
 * first DDL and moves in a transaction begun afterwards: on MariaDB that DDL has already committed
 * whatever was open, and the move would otherwise commit (and flush) every statement on its own;
 * there, the DDL after the move commits it. The DDL before is idempotent, so a failure after it
 * leaves nothing that running again would not redo. */
static int run_steps(db_conn *c, int version, const migration *m, char *err, size_t errlen)
{
    if (run_ddl(c, version, m->ddl, err, errlen) != 0)
        return -1;
    if (m->move) {
        if (db_commit(c) != DB_OK) {
            snprintf(err, errlen, "schema migration to version %d: cannot commit its tables: %s",
                     version, db_errmsg(c));
            return -1;
        }
        if (begin(c, version, err, errlen) != 0 || m->move(c, err, errlen) != 0)
            return -1;
    }
    return m->after ? run_ddl(c, version, m->after, err, errlen) : 0;
}

static int apply(db_conn *c, int version, char *err, size_t errlen)
{
    if (begin(c, version, err, errlen) != 0)
        return -1;
    if (run_steps(c, version, &migrations[version - 1], err, errlen) != 0) {
        db_rollback(c);
        return -1;
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
