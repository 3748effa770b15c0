/* tests/support/dbenv.c — database settings from the XDB_* environment (dbenv.h). */
#include "tests/support/dbenv.h"

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
