/* sm/sm_check.c — `jabshard-sm --check` (sm_check.h): the configuration has loaded (its errors,
 * the modules' options included, name file, line and element before this runs); then storage
 * (it connects, and its schema is this program's, older (migrated at start) or newer (refused)),
 * every <service>'s port, secrets left at the example's value (the links', the upload service's),
 * and the admin socket's directory.
 */
#include "sm/sm_check.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/mem.h"
#include "xdbsql/xdbsql.h"

static void check_storage(check_list *l, const sm_config *cfg)
{
    char err[512];
    db_conn *c = db_open(&cfg->storage.db, err, sizeof err);
    if (!c) {
        check_error(l, "storage (%s): %s", cfg->storage.db.driver, err);
        return;
    }
    int have = xdb_schema_version(c), want = xdb_schema_current();
    if (have < 0)
        check_error(l, "storage (%s): cannot read the schema's version", cfg->storage.db.driver);
    else if (have > want)
        check_error(l, "storage (%s): schema version %d is newer than this program's %d "
                       "(written by a newer jabshard): it would refuse to start",
                    cfg->storage.db.driver, have, want);
    else if (have == 0)
        check_ok(l, "storage (%s): reachable, empty: the schema will be made at start",
                 cfg->storage.db.driver);
    else if (have < want)
        check_ok(l, "storage (%s): reachable, schema version %d: migrated to %d at start",
                 cfg->storage.db.driver, have, want);
    else
        check_ok(l, "storage (%s): reachable, schema version %d", cfg->storage.db.driver, have);
    db_close(c);
}

int sm_check(const sm_config *cfg, const char *path)
{
    check_list l = {.program = "jabshard-sm"};
    check_ok(&l, "%s: configuration read: %d host(s), %d service(s)", path, cfg->nhosts,
             cfg->nservices);
    check_storage(&l, cfg);
    for (int i = 0; i < cfg->nservices; i++) {
        const sm_service *svc = &cfg->services[i];
        char what[300];
        snprintf(what, sizeof what, "<service id='%s'>", svc->id ? svc->id : "");
        check_listen(&l, svc->ip, svc->port, what);
        if (svc->secret && !strcmp(svc->secret, "secret"))
            check_warn(&l, "%s: the secret is the example's 'secret': anyone who reaches the port "
                           "can speak for every account", what);
    }
    const char *upload = cfg->cfg ? config_str(cfg->cfg, NULL, "upload/secret", NULL) : NULL;
    if (upload && !strcmp(upload, "change-this-upload-secret"))
        check_warn(&l, "<upload><secret> is the example's: anyone can sign uploads to the stores "
                       "(openssl rand -hex 32 makes one)");
    if (cfg->admin_socket) {
        char *copy = mem_strdup(cfg->admin_socket);
        const char *dir = dirname(copy);
        if (access(dir, W_OK | X_OK) != 0)
            check_error(&l, "<admin><socket> %s: cannot make it in %s", cfg->admin_socket, dir);
        free(copy);
    }
    return check_finish(&l, path);
}
