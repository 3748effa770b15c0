/* tests/bench/sm_scale/scale_setup.c — the SMs under test and their storage: sm.xml with one
 * front service per synthetic front, the accounts through `jabshardctl import` (exported SCRAM
 * credentials: no key derivation), the rosters in one SQL statement per shape on the real schema,
 * and the SM processes themselves, started, killed and asked for their status by PID and admin
 * socket. With --partitions P, SM k has its own directory (sm<k>/ in the work directory), the
 * <partitions> element naming the others, and only the accounts of its partition (their rosters
 * list contacts of every partition). */
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/partition.h"
#include "core/scram.h"
#include "tests/bench/benchlib.h"
#include "tests/bench/sm_scale/scale.h"
#include "tests/support/tmp.h"
#include "xdbsql/db.h"

pid_t scale_sm_pids[SCALE_MAX_SMS];
int scale_sm_ports[SCALE_MAX_SMS];

static char *scratch;          /* removed at exit unless it is the user's --workdir */
static char bin[PATH_MAX];
/* Each SM's directory (the work directory itself with one SM), configuration, database, log. */
static char dir[SCALE_MAX_SMS][PATH_MAX], conf[SCALE_MAX_SMS][PATH_MAX];
static char db_path[SCALE_MAX_SMS][PATH_MAX], sm_log[SCALE_MAX_SMS][PATH_MAX];
static int peer_ports[SCALE_MAX_SMS];   /* where SM k accepts the higher SMs' peer links */

void scale_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sm_scale: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    for (int k = 0; k < scale_opt.partitions; k++)
        if (sm_log[k][0])
            fprintf(stderr, "sm_scale: SM %d's log is %s\n", k, sm_log[k]);
    exit(1);
}

int scale_sm_of(long i)
{
    if (scale_opt.partitions == 1)
        return 0;
    char bare[64];
    int len = snprintf(bare, sizeof bare, "u%ld@" SCALE_HOST, i);
    return partition_owner(partition_slot_of(&partition_default_key, bare, (size_t)len),
                           scale_opt.partitions);
}

void scale_user(char *out, size_t size, long i)
{
    snprintf(out, size, "u%ld", i);
}

/* SM k's <partitions>: the others as peers, the lower ones connected to. */
static void write_partitions(FILE *f, int k)
{
    if (scale_opt.partitions == 1)
        return;
    fprintf(f, "  <partitions index='%d' id='sm%d' ip='127.0.0.1' port='%d'>\n", k, k,
            peer_ports[k]);
    for (int j = 0; j < scale_opt.partitions; j++)
        if (j != k)
            fprintf(f, "    <peer index='%d' id='sm%d' host='127.0.0.1' port='%d' "
                    "secret='" SCALE_SECRET "-peer'/>\n", j, j, peer_ports[j]);
    fprintf(f, "  </partitions>\n");
}

static void write_config(int k)
{
    FILE *f = fopen(conf[k], "w");
    int port = scale_sm_ports[k];
    if (!f)
        scale_die("cannot write %s", conf[k]);
    fprintf(f, "<sm>\n");
    for (int i = 0; i < scale_opt.fronts; i++)
        fprintf(f, "  <service id='f%d' role='front'><accept><ip>127.0.0.1</ip><port>%d</port>"
                "<secret>" SCALE_SECRET "</secret></accept></service>\n", i, port);
    fprintf(f, "  <host name='" SCALE_HOST "'/>\n");
    if (strcmp(scale_opt.driver, "pgsql") == 0) {
        char host[256], user[64], database[64];
        int pgport;
        if (!scale_opt.pg || sscanf(scale_opt.pg, "%255s %d %63s %63s", host, &pgport, user,
                                    database) != 4)
            scale_die("--pg wants \"HOST PORT USER DATABASE\"");
        fprintf(f, "  <storage><driver>pgsql</driver><host>%s</host><port>%d</port><user>%s</user>"
                "<database>%s</database></storage>\n", host, pgport, user, database);
    } else {
        fprintf(f, "  <storage><driver>sqlite</driver><path>%s</path></storage>\n", db_path[k]);
    }
    write_partitions(f, k);
    fprintf(f, "  <limits><resync_wait>600</resync_wait></limits>\n"
            "  <admin><socket>%s/admin.sock</socket></admin>\n"
            "  <log><target>stderr</target><level>warn</level></log>\n"
            "  <upload><secret>scale upload secret</secret></upload>\n"
            "  %s\n"
            "</sm>\n", dir[k], scale_opt.sm_extra ? scale_opt.sm_extra : "");
    fclose(f);
}

/* Runs a program to its end; its output goes to SM k's directory. */
static void run(int k, char *const args[], const char *log_name)
{
    char path[PATH_MAX], log[PATH_MAX];
    bench_path(path, sizeof(path), scale_opt.bin_dir, args[0]);
    bench_path(log, sizeof(log), dir[k], log_name);
    pid_t pid = bench_spawn(path, args, log);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        bench_dump_file(log);
        scale_die("%s failed", args[0]);
    }
}

static void b64(char *out, const uint8_t *in, size_t len)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void append_creds(FILE *f, const scram_credentials *c, scram_hash h)
{
    char salt[64], stored[96], server[96];
    b64(salt, c->salt, c->salt_len);
    b64(stored, c->stored_key, scram_key_len(h));
    b64(server, c->server_key, scram_key_len(h));
    fprintf(f, "%s:%u:%s:%s", salt, (unsigned)c->iterations, stored, server);
}

/* Every account of SM k's partition, with one set of exported credentials, through jabshardctl's
 * bulk import. */
static void import_accounts(int k, long n)
{
    scram_credentials sha1, sha256;
    scram_derive(SCRAM_SHA1, "password", NULL, 0, SCRAM_ITERATIONS, &sha1);
    scram_derive(SCRAM_SHA256, "password", NULL, 0, SCRAM_ITERATIONS, &sha256);
    char creds[512], path[PATH_MAX], user[32];
    FILE *mem = fmemopen(creds, sizeof(creds), "w");
    fputs("{SCRAM}", mem);
    append_creds(mem, &sha1, SCRAM_SHA1);
    fputc(':', mem);
    append_creds(mem, &sha256, SCRAM_SHA256);
    fclose(mem);
    bench_path(path, sizeof(path), dir[k], "accounts.txt");
    FILE *f = fopen(path, "w");
    if (!f)
        scale_die("cannot write %s", path);
    for (long i = 0; i < n; i++) {
        if (scale_sm_of(i) != k)
            continue;
        scale_user(user, sizeof(user), i);
        fprintf(f, "%s@" SCALE_HOST " %s\n", user, creds);
    }
    fclose(f);
    char *args[] = {"jabshardctl", "-c", conf[k], "import", path, NULL};
    run(k, args, "import.log");
    unlink(path);
}

static void exec_sql(db_conn *c, const char *sql)
{
    if (db_exec(c, sql) != DB_OK)
        scale_die("storage: %s: %s", sql, db_errmsg(c));
}

/* The rosters, straight into the schema the import created: users 0..n-1 in a ring, each with its
 * 20 nearest (subscription both); hub h (user n+h) with users h*200..h*200+199, both ways. Each
 * statement only writes rows of the accounts the database has: with partitions, SM k's. */
static void store_rosters(int k, long n, int hubs)
{
    db_settings s = {.driver = scale_opt.driver, .path = db_path[k]};
    char host[256] = "", user[64] = "", database[64] = "", err[256];
    if (strcmp(scale_opt.driver, "pgsql") == 0) {
        sscanf(scale_opt.pg, "%255s %d %63s %63s", host, &s.port, user, database);
        s.host = host;
        s.user = user;
        s.database = database;
    }
    db_conn *c = db_open(&s, err, sizeof(err));
    if (!c)
        scale_die("storage: %s", err);
    if (strcmp(scale_opt.driver, "sqlite") == 0)
        exec_sql(c, "PRAGMA synchronous=OFF");
    buf sql = BUF_INIT;
    /* The index of user "u<i>" is its name without the u. */
    const char *idx = "CAST(substr(u.username, 2) AS INTEGER)";
    buf_appendf(&sql,
                "INSERT INTO roster_items (user_id, jid, name, subscription, ask) "
                "WITH d(k) AS (VALUES (1),(-1),(2),(-2),(3),(-3),(4),(-4),(5),(-5),(6),(-6),(7),"
                "(-7),(8),(-8),(9),(-9),(10),(-10)) "
                "SELECT u.id, 'u' || ((%s + d.k + %ld) %% %ld) || '@" SCALE_HOST "', NULL, 3, 0 "
                "FROM users u, d WHERE u.host = '" SCALE_HOST "' AND %s < %ld",
                idx, n, n, idx, n);
    exec_sql(c, buf_data(&sql));
    for (int h = 0; h < hubs; h++) {
        buf_truncate(&sql, 0);
        buf_appendf(&sql,
                    "INSERT INTO roster_items (user_id, jid, name, subscription, ask) "
                    "WITH RECURSIVE c(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM c WHERE j < %d) "
                    "SELECT u.id, 'u' || ((%ld + c.j) %% %ld) || '@" SCALE_HOST "', NULL, 3, 0 "
                    "FROM users u, c WHERE u.host = '" SCALE_HOST "' AND u.username = 'u%ld'",
                    SCALE_HUB_CONTACTS - 1, (long)h * SCALE_HUB_CONTACTS, n, n + h);
        exec_sql(c, buf_data(&sql));
        buf_truncate(&sql, 0);
        buf_appendf(&sql,
                    "INSERT INTO roster_items (user_id, jid, name, subscription, ask) "
                    "WITH RECURSIVE c(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM c WHERE j < %d) "
                    "SELECT u.id, 'u%ld@" SCALE_HOST "', NULL, 3, 0 FROM users u, c "
                    "WHERE u.host = '" SCALE_HOST "' AND u.username = 'u' || ((%ld + c.j) %% %ld)",
                    SCALE_HUB_CONTACTS - 1, n + h, (long)h * SCALE_HUB_CONTACTS, n);
        exec_sql(c, buf_data(&sql));
    }
    buf_free(&sql);
    /* Statistics for the planner, as a database that grew slowly would have: PostgreSQL's first
     * minute of logins otherwise plans the roster loads without them (80 logins/s, not 900). */
    exec_sql(c, "ANALYZE");
    db_close(c);
}

/* The marker of a directory's storage: users, hubs, driver (and the partition). */
static void storage_id(int k, char *out, size_t size)
{
    int n = snprintf(out, size, "%ld %d %s", scale_opt.users, scale_opt.hubs, scale_opt.driver);
    if (scale_opt.partitions > 1)
        snprintf(out + n, size - (size_t)n, " %d/%d", k, scale_opt.partitions);
}

/* Whether SM k's directory already holds this run's storage (same users and hubs). */
static bool storage_ready(int k)
{
    char path[PATH_MAX], want[64], have[64] = "";
    bench_path(path, sizeof(path), dir[k], "populated");
    storage_id(k, want, sizeof want);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(have, sizeof(have), f))
            have[0] = '\0';
        fclose(f);
    }
    return strcmp(have, want) == 0;
}

static void mark_ready(int k)
{
    char path[PATH_MAX], id[64];
    bench_path(path, sizeof(path), dir[k], "populated");
    storage_id(k, id, sizeof id);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(id, f);
        fclose(f);
    }
}

void scale_setup(void)
{
    char top[PATH_MAX];
    if (scale_opt.workdir) {
        mkdir(scale_opt.workdir, 0755);
        snprintf(top, sizeof(top), "%s", scale_opt.workdir);
    } else {
        if (!(scratch = tmp_dir("sm-scale")))
            scale_die("cannot make a scratch directory");
        snprintf(top, sizeof(top), "%s", scratch);
    }
    bench_path(bin, sizeof(bin), scale_opt.bin_dir, "jabshard-sm");
    for (int k = 0; k < scale_opt.partitions; k++) {
        if (scale_opt.partitions == 1) {
            snprintf(dir[k], sizeof(dir[k]), "%s", top);
        } else {
            char name[16];
            snprintf(name, sizeof name, "sm%d", k);
            bench_path(dir[k], sizeof(dir[k]), top, name);
            mkdir(dir[k], 0755);
        }
        bench_path(conf[k], sizeof(conf[k]), dir[k], "sm.xml");
        bench_path(db_path[k], sizeof(db_path[k]), dir[k], "sm.db");
        bench_path(sm_log[k], sizeof(sm_log[k]), dir[k], "sm.log");
        scale_sm_ports[k] = bench_free_port();
        peer_ports[k] = scale_opt.partitions > 1 ? bench_free_port() : 0;
    }
    for (int k = 0; k < scale_opt.partitions; k++) {
        write_config(k);
        if (storage_ready(k))
            continue;
        if (strcmp(scale_opt.driver, "sqlite") == 0)
            unlink(db_path[k]);
        double t = bench_now_s();
        import_accounts(k, scale_opt.users + scale_opt.hubs);
        double t1 = bench_now_s();
        store_rosters(k, scale_opt.users, scale_opt.hubs);
        printf("setup: SM %d: accounts imported in %.1f s, roster items stored in %.1f s "
               "(not figures)\n", k, t1 - t, bench_now_s() - t1);
        fflush(stdout);
        mark_ready(k);
    }
}

uint64_t scale_sm_start(int k)
{
    char *args[] = {"jabshard-sm", "-c", conf[k], NULL};
    uint64_t t = bench_now_ns();
    scale_sm_pids[k] = bench_spawn(bin, args, sm_log[k]);
    if (bench_wait_port(scale_sm_ports[k], scale_sm_pids[k], 60000) != 0)
        scale_die("jabshard-sm %d did not start", k);
    return t;
}

void scale_sm_kill(void)
{
    for (int k = 0; k < scale_opt.partitions; k++) {
        if (scale_sm_pids[k] > 0) {
            kill(scale_sm_pids[k], SIGKILL);
            waitpid(scale_sm_pids[k], NULL, 0);
        }
        scale_sm_pids[k] = 0;
    }
}

void scale_sm_stop(void)
{
    for (int k = 0; k < scale_opt.partitions; k++) {
        if (scale_sm_pids[k] > 0)
            bench_stop(scale_sm_pids[k], 10000);
        scale_sm_pids[k] = 0;
    }
}

/* jabshardctl --json COMMAND's output (status or stats) of SM k into out. */
static void ctl_json(int k, const char *command, char *out, size_t size)
{
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof(cmd), "%s/jabshardctl -c %s --json %s 2>/dev/null", scale_opt.bin_dir,
             conf[k], command);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    size_t n = fread(out, 1, size - 1, p);
    pclose(p);
    out[n] = '\0';
}

bool scale_sm_start_done(int k)
{
    char out[4096];
    ctl_json(k, "status", out, sizeof(out));
    return strstr(out, "\"starting\": false") != NULL;
}

long scale_sm_stat(int k, const char *key)
{
    char out[4096], want[64];
    ctl_json(k, "stats", out, sizeof(out));
    snprintf(want, sizeof(want), "\"%s\": ", key);
    const char *at = strstr(out, want);
    return at ? atol(at + strlen(want)) : -1;
}

void scale_cleanup(void)
{
    scale_sm_stop();
    if (scratch)
        tmp_dir_remove(scratch);
    scratch = NULL;
}
