/* tests/support/dbenv.c — database settings from the XDB_* environment (dbenv.h). */
#include "tests/support/dbenv.h"

#include <stdio.h>
#include <stdlib.h>

const char *dbenv(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

db_settings dbenv_settings(const char *sqlite_path)
{
    return (db_settings){
        .driver = dbenv("XDB_DRIVER", "sqlite"),
        .path = dbenv("XDB_PATH", sqlite_path),
        .host = dbenv("XDB_HOST", NULL),
        .port = atoi(dbenv("XDB_PORT", "0")),
        .user = dbenv("XDB_USER", NULL),
        .password = dbenv("XDB_PASSWORD", NULL),
        .database = dbenv("XDB_DATABASE", NULL),
    };
}

int64_t dbenv_count(db_conn *c, const char *sql)
{
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    if (!st || db_step(st) != DB_ROW)
        return -1;
    int64_t v = db_column_int(st, 0);
    return db_step(st) == DB_DONE ? v : -1;
}

bool dbenv_wipe(db_conn *c)
{
    static const char *const tables[] = {
        "uploads", "archive", "pep_items", "pep_nodes", "hibernated_stanzas", "hibernated",
        "documents", "blocklist", "last_activity", "private_xml", "vcards", "offline",
        "roster_pending", "roster_groups", "roster_items", "rooms", "users", "jabshard_schema",
    };
    char sql[96];
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", tables[i]);
        if (db_exec(c, sql) != DB_OK)
            return false;
    }
    return true;
}

db_conn *dbenv_open_empty(const db_settings *db)
{
    char err[256];
    db_conn *c = db_open(db, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "cannot connect to %s: %s\n", db->driver, err);
        return NULL;
    }
    if (!dbenv_wipe(c)) {
        fprintf(stderr, "cannot empty the %s database\n", db->driver);
        db_close(c);
        return NULL;
    }
    return c;
}
