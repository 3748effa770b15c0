/* tests/support/dbenv.h — the database the storage suite and the storage benchmark run on, from
 * the environment tests/storage/run.sh and tests/bench/run.sh set after starting a server:
 * XDB_DRIVER (sqlite, pgsql, mariadb; sqlite when unset), XDB_PATH (sqlite), XDB_HOST, XDB_PORT,
 * XDB_USER, XDB_PASSWORD, XDB_DATABASE. */
#ifndef JABSHARD_TESTS_SUPPORT_DBENV_H
#define JABSHARD_TESTS_SUPPORT_DBENV_H

#include <stdbool.h>
#include <stdint.h>

#include "xdbsql/db.h"

/* The variable name's value; fallback when it is unset or empty. */
const char *dbenv(const char *name, const char *fallback);

/* The settings the XDB_* variables give; sqlite_path when XDB_PATH is unset. */
db_settings dbenv_settings(const char *sqlite_path);

/* A connection to db with every table of every schema version dropped (children first, so no
 * driver needs CASCADE); on failure, the reason on stderr and NULL. */
db_conn *dbenv_open_empty(const db_settings *db);
/* The same on an open connection; false when a drop failed. */
bool dbenv_wipe(db_conn *c);
/* The one integer sql's one row holds (a count), or -1 when it fails or gives another shape. */
int64_t dbenv_count(db_conn *c, const char *sql);

#endif
