/* tests/bench/bench_xdbsql.c — storage throughput through the asynchronous service, as the SM
 * uses it: credential lookups, roster loads (50 items), offline stores and fetch-and-deletes, and
 * the document store in the shapes of its features (a vCard put then replaced, private XML under
 * a quota, reads, a listing).
 *
 * The database comes from the environment like the storage suite's (XDB_DRIVER, XDB_PATH,
 * XDB_HOST, ...; tests/bench/run.sh starts the servers); XDB_WORKERS sets the worker count
 * (default: the service's default for the driver). Every table is dropped first. Output: one
 * line per operation, "xdbsql DRIVER workers=W OP: N ops in S s = R ops/s". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "xdbsql/xdbsql.h"
#include "tests/support/dbenv.h"

enum { USERS = 1000, ROSTER_USERS = 100, ROSTER_ITEMS = 50 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int notified;
static long failures;

static void notify(void *ctx)
{
    pthread_mutex_lock(&lock);
    notified = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

static void count_failure(xdb_request *r, void *ctx)
{
    if (r->status != XDB_OK) {
        if (failures++ < 5)
            fprintf(stderr, "bench: %s failed: %s %s\n", xdb_op_name(r->op),
                    xdb_status_name(r->status), r->error);
    }
}

/* Sleeps until the service has answered everything, dispatching as an event loop would. */
static void drain(xdbsql *x)
{
    while (xdbsql_pending(x) > 0) {
        pthread_mutex_lock(&lock);
        while (!notified)
            pthread_cond_wait(&cond, &lock);
        notified = 0;
        pthread_mutex_unlock(&lock);
        xdbsql_dispatch(x);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void user_name(char *out, size_t size, int i)
{
    snprintf(out, size, "user%04d", i);
}

static void report(const char *driver, int workers, const char *op, long ops, double seconds)
{
    printf("xdbsql %-7s workers=%d %-22s %7ld ops in %6.2f s = %9.0f ops/s\n", driver, workers, op,
           ops, seconds, (double)ops / seconds);
    fflush(stdout);
}

static xdb_request *doc_request(xdb_op op, int user, const char *store, const char *key)
{
    char name[32];
    user_name(name, sizeof(name), user);
    xdb_request *r = xdb_request_new(op, "bench.example", name);
    xdb_request_set_doc(r, store, key);
    return r;
}

/* The document store: every user's 1 KiB vCard put, then replaced; five private XML namespaces
 * each under a quota; gets; listings of those five. */
static void bench_documents(xdbsql *x, const char *driver, int workers)
{
    enum { DOC_GETS = 20000, DOC_LISTS = 5000, NAMESPACES = 5 };
    static const char bookmarks[] =
        "<storage xmlns='storage:bookmarks'><conference jid='room@muc.example'/></storage>";
    char card[1024], ns[32];
    memset(card, 'v', sizeof(card));
    for (int pass = 0; pass < 2; pass++) {
        double t = now_s();
        for (int i = 0; i < USERS; i++) {
            xdb_request *r = doc_request(XDB_DOC_PUT, i, "vcard", "");
            xdb_request_set_value(r, card, sizeof(card));
            xdbsql_submit(x, r, count_failure, NULL);
        }
        drain(x);
        report(driver, workers, pass ? "doc put (replace)" : "doc put (new, 1 KiB)", USERS,
               now_s() - t);
    }
    double t = now_s();
    for (int k = 0; k < NAMESPACES; k++)
        for (int i = 0; i < USERS; i++) {
            snprintf(ns, sizeof(ns), "urn:bench:%d", k);
            xdb_request *r = doc_request(XDB_DOC_PUT, i, "private", ns);
            xdb_request_set_value(r, bookmarks, sizeof(bookmarks) - 1);
            r->quota = 20;
            xdbsql_submit(x, r, count_failure, NULL);
        }
    drain(x);
    report(driver, workers, "doc put (quota)", (long)USERS * NAMESPACES, now_s() - t);
    t = now_s();
    for (int i = 0; i < DOC_GETS; i++)
        xdbsql_submit(x, doc_request(XDB_DOC_GET, i % USERS, "vcard", ""), count_failure, NULL);
    drain(x);
    report(driver, workers, "doc get", DOC_GETS, now_s() - t);
    t = now_s();
    for (int i = 0; i < DOC_LISTS; i++)
        xdbsql_submit(x, doc_request(XDB_DOC_LIST, i % USERS, "private", "urn:bench:"),
                      count_failure, NULL);
    drain(x);
    report(driver, workers, "doc list (5 docs)", DOC_LISTS, now_s() - t);
}

int main(void)
{
    db_settings db = dbenv_settings("/tmp/jabshard-bench-xdbsql.db");
    char err[256];
    db_conn *c = dbenv_open_empty(&db);
    if (!c)
        return 1;
    db_close(c);

    xdbsql_options opt = {.db = db, .workers = atoi(dbenv("XDB_WORKERS", "0")), .notify = notify};
    xdbsql *x = xdbsql_open(&opt, err, sizeof(err));
    if (!x) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    int workers = xdbsql_workers(x);
    char user[32], jid[64], xml[256];

    /* Accounts, with credentials derived once and shared: this measures storage, not PBKDF2. */
    xdb_credentials creds;
    scram_derive(SCRAM_SHA1, "password", NULL, 0, SCRAM_ITERATIONS, &creds.sha1);
    scram_derive(SCRAM_SHA256, "password", NULL, 0, SCRAM_ITERATIONS, &creds.sha256);
    double t = now_s();
    for (int i = 0; i < USERS; i++) {
        user_name(user, sizeof(user), i);
        xdb_request *r = xdb_request_new(XDB_USER_CREATE, "bench.example", user);
        r->creds = creds;
        xdbsql_submit(x, r, count_failure, NULL);
    }
    drain(x);
    report(db.driver, workers, "user create", USERS, now_s() - t);

    t = now_s();
    for (int i = 0; i < ROSTER_USERS; i++)
        for (int k = 0; k < ROSTER_ITEMS; k++) {
            user_name(user, sizeof(user), i);
            snprintf(jid, sizeof(jid), "contact%02d@example.net", k);
            char *groups[] = {"Friends"};
            xdb_roster_item item = {.jid = jid, .name = "A Contact", .subscription = XDB_SUB_BOTH,
                                    .groups = groups, .ngroups = 1};
            xdb_request *r = xdb_request_new(XDB_ROSTER_SET, "bench.example", user);
            xdb_request_set_item(r, &item);
            xdbsql_submit(x, r, count_failure, NULL);
        }
    drain(x);
    report(db.driver, workers, "roster set", (long)ROSTER_USERS * ROSTER_ITEMS, now_s() - t);

    enum { CRED_LOOKUPS = 20000, ROSTER_LOADS = 5000, OFFLINE_PER_USER = 20 };
    t = now_s();
    for (int i = 0; i < CRED_LOOKUPS; i++) {
        user_name(user, sizeof(user), i % USERS);
        xdbsql_submit(x, xdb_request_new(XDB_USER_CREDS, "bench.example", user), count_failure, NULL);
    }
    drain(x);
    report(db.driver, workers, "credential lookup", CRED_LOOKUPS, now_s() - t);

    t = now_s();
    for (int i = 0; i < ROSTER_LOADS; i++) {
        user_name(user, sizeof(user), i % ROSTER_USERS);
        xdbsql_submit(x, xdb_request_new(XDB_ROSTER_LOAD, "bench.example", user), count_failure, NULL);
    }
    drain(x);
    report(db.driver, workers, "roster load (50 items)", ROSTER_LOADS, now_s() - t);

    t = now_s();
    for (int k = 0; k < OFFLINE_PER_USER; k++)
        for (int i = 0; i < USERS; i++) {
            user_name(user, sizeof(user), i);
            snprintf(xml, sizeof(xml),
                     "<message from='sender@example.net/r' to='%s@bench.example' type='chat'>"
                     "<body>offline message %d</body></message>", user, k);
            xdb_request *r = xdb_request_new(XDB_OFFLINE_STORE, "bench.example", user);
            xdb_request_set_xml(r, xml);
            r->quota = 1000;
            xdbsql_submit(x, r, count_failure, NULL);
        }
    drain(x);
    report(db.driver, workers, "offline store", (long)USERS * OFFLINE_PER_USER, now_s() - t);

    t = now_s();
    for (int i = 0; i < USERS; i++) {
        user_name(user, sizeof(user), i);
        xdbsql_submit(x, xdb_request_new(XDB_OFFLINE_FETCH, "bench.example", user), count_failure, NULL);
    }
    drain(x);
    double fetch_s = now_s() - t;
    report(db.driver, workers, "offline fetch+delete", USERS, fetch_s);
    report(db.driver, workers, "  (messages fetched)", (long)USERS * OFFLINE_PER_USER, fetch_s);

    bench_documents(x, db.driver, workers);
    xdbsql_close(x);
    if (failures)
        fprintf(stderr, "bench: %ld operations failed\n", failures);
    return failures ? 1 : 0;
}
