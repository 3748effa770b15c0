/* tests/bench/bench_mam.c — message archive queries at scale (issue 16): one account's archive of
 * MAM_BENCH_MESSAGES messages (default 1,000,000, from 1,000 contacts), written as the SM writes
 * it (batches of 64), then the latency of what clients ask most: the last page of 50 (a client
 * opening a conversation list), the last page with one contact, and the page after a message in
 * the middle (catching up), each repeated; and the archive's bytes per message on disk.
 *
 * The database comes from the environment like the storage suite's (XDB_DRIVER, XDB_PATH,
 * XDB_HOST, ...; tests/bench/run.sh starts the servers). Every table is dropped first. Output:
 * "mam DRIVER: ..." lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/mem.h"
#include "xdbsql/xdbsql.h"
#include "tests/support/dbenv.h"

enum { BATCH = 64, CONTACTS = 1000, PAGE = 50, REPEAT = 200 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs make(i) REPEAT times and prints the p50 and p99 of their run times. */
static void latency(db_conn *c, const char *driver, const char *what,
                    xdb_request *(*make)(int i))
{
    double ms[REPEAT];
    for (int i = 0; i < REPEAT; i++) {
        xdb_request *r = make(i);
        double t = now_s();
        if (xdb_run(c, r) != XDB_OK || r->mam.n == 0)
            fprintf(stderr, "bench: %s: %s %s\n", what, xdb_status_name(r->status), r->error);
        ms[i] = (now_s() - t) * 1000;
        xdb_request_free(r);
    }
    qsort(ms, REPEAT, sizeof ms[0], by_value);
    printf("mam %s: %s: p50 %.2f ms, p99 %.2f ms (%d queries)\n", driver, what, ms[REPEAT / 2],
           ms[REPEAT * 99 / 100], REPEAT);
}

static long messages;

static xdb_request *last_page(int i)
{
    xdb_request *r = xdb_request_new(XDB_MAM_QUERY, "bench.example", "owner");
    r->mam_query.max = PAGE;
    r->mam_query.last = true;
    return r;
}

static xdb_request *last_page_with(int i)
{
    xdb_request *r = last_page(i);
    char peer[64];
    snprintf(peer, sizeof peer, "contact%d@example.net", i % CONTACTS);
    r->mam_query.peer = mem_strdup(peer);
    return r;
}

static xdb_request *page_after(int i)
{
    xdb_request *r = xdb_request_new(XDB_MAM_QUERY, "bench.example", "owner");
    char id[32];
    snprintf(id, sizeof id, "s%ld", (messages / 2 + i * 7) % messages);
    r->mam_query.max = PAGE;
    r->mam_query.after_id = mem_strdup(id);
    return r;
}

/* The archive's size on disk (SQLite: the files; PostgreSQL: the table with its indexes; MariaDB:
 * data and index length), or -1. */
static long long archive_bytes(db_conn *c, const db_settings *db)
{
    if (!strcmp(db->driver, "sqlite")) {
        /* The database and its write-ahead log (what is not checkpointed yet). */
        char wal[1024];
        snprintf(wal, sizeof wal, "%s-wal", db->path);
        struct stat st, ws;
        if (stat(db->path, &st) != 0)
            return -1;
        return (long long)st.st_size + (stat(wal, &ws) == 0 ? (long long)ws.st_size : 0);
    }
    const char *sql = !strcmp(db->driver, "pgsql")
                          ? "SELECT pg_total_relation_size('archive')"
                          : "SELECT data_length + index_length FROM information_schema.tables"
                            " WHERE table_name = 'archive' AND table_schema = DATABASE()";
    db_rc rc;
    db_stmt *st = db_prepare(c, sql, &rc);
    long long v = -1;
    while (st && db_step(st) == DB_ROW)
        v = db_column_int(st, 0);
    return v;
}

int main(void)
{
    messages = atol(getenv("MAM_BENCH_MESSAGES") ? getenv("MAM_BENCH_MESSAGES") : "1000000");
    db_settings db = dbenv_settings("/tmp/jabshard-bench-mam.db");
    char err[256];
    db_conn *c = dbenv_open_empty(&db);
    if (!c)
        return 1;
    if (xdb_migrate(c, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    xdb_request *u = xdb_request_new(XDB_USER_CREATE, "bench.example", "owner");
    xdb_request_set_password(u, "pw");
    xdb_run(c, u);
    xdb_request_free(u);

    double t = now_s();
    for (long i = 0; i < messages;) {
        xdb_request *r = xdb_request_new(XDB_MAM_APPEND, "bench.example", "owner");
        for (int k = 0; k < BATCH && i < messages; k++, i++) {
            char id[32], peer[64], xml[256];
            snprintf(id, sizeof id, "s%ld", i);
            snprintf(peer, sizeof peer, "contact%ld@example.net", i % CONTACTS);
            snprintf(xml, sizeof xml,
                     "<message xmlns='jabber:client' from='%s/phone' to='owner@bench.example' "
                     "type='chat' id='m%ld'><body>message number %ld of the benchmark</body>"
                     "</message>", peer, i, i);
            xdb_request_add_mam(r, NULL, NULL, 1700000000000 + i, id, peer, "phone", xml);
        }
        if (xdb_run(c, r) != XDB_OK) {
            fprintf(stderr, "bench: append: %s\n", r->error);
            return 1;
        }
        xdb_request_free(r);
    }
    double fill = now_s() - t;
    printf("mam %s: %ld messages archived in %.1f s = %.0f messages/s (batches of %d)\n",
           db.driver, messages, fill, (double)messages / fill, BATCH);
    /* A settled archive, as a server's is (not one bulk-written a second ago): the database's
     * statistics up to date and its dirty pages written. */
    if (!strcmp(db.driver, "pgsql")) {
        db_exec(c, "CHECKPOINT");
        db_exec(c, "ANALYZE archive");
    } else if (!strcmp(db.driver, "mariadb")) {
        db_exec(c, "ANALYZE TABLE archive");
    }
    latency(c, db.driver, "the last page of 50", last_page);
    latency(c, db.driver, "the last page of 50 with one contact", last_page_with);
    latency(c, db.driver, "the page of 50 after a message in the middle", page_after);
    long long bytes = archive_bytes(c, &db);
    if (bytes > 0)
        printf("mam %s: %lld bytes on disk = %.0f bytes per message\n", db.driver, bytes,
               (double)bytes / (double)messages);
    db_close(c);
    return 0;
}
