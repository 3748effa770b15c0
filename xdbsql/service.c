/* xdbsql/service.c — the asynchronous storage service: worker threads, each with its own database
 * connection, fed through a queue and answering through a Concurrency Kit SPSC ring.
 *
 * A request goes to the worker chosen by a hash of its user, so one user's requests run in order
 * on one connection. The worker runs it (store.c) and pushes it onto its result ring
 * (core/ring.h); the owner thread pops the rings in xdbsql_dispatch and runs the callbacks.
 *
 * Ownership:
 *   worker.queue_head/tail, worker.stopping: guarded by worker.lock (owner pushes, worker takes it all);
 *   worker.results ring: the worker is the only producer, the owner the only consumer;
 *   worker.conn: the worker thread only (after open);
 *   xdbsql.submitted, xdbsql.dispatched: the owner thread only.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/ring.h"
#include "xdbsql/xdbsql.h"

/* Finished requests a worker may have waiting for the owner; beyond it the worker waits. */
#define RESULT_RING_SIZE 4096

typedef struct worker {
    struct xdbsql *service;
    int index;
    pthread_t thread;
    db_conn *conn;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    xdb_request *queue_head, *queue_tail;
    bool stopping;

    ring results;
    atomic_bool down;       /* its database was unreachable at its last request */
} worker;

struct xdbsql {
    xdbsql_options opt;
    worker *workers;
    int nworkers;
    size_t submitted, dispatched;
    /* The owner thread's: each op's time from submit to callback, and its failures. */
    metrics_histogram latency[XDB_OP_COUNT];
    uint64_t failed[XDB_OP_COUNT];
};

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

static uint64_t user_hash(const char *host, const char *user)
{
    /* FNV-1a over "user@host": spreads users over workers, stable for one user. */
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = user ? user : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '@') * 1099511628211ULL;
    for (const char *p = host ? host : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static void push_result(worker *w, xdb_request *r)
{
    while (!ring_push(&w->results, r)) {
        /* The owner is behind by RESULT_RING_SIZE answers: let it catch up. */
        w->service->opt.notify(w->service->opt.notify_ctx);
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    w->service->opt.notify(w->service->opt.notify_ctx);
}

/* The worker takes its whole queue at once: under a burst (an SM restart loads every online
 * account) the owner, submitting, and the worker would otherwise meet on the lock at every
 * request. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->queue_head && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        xdb_request *r = w->queue_head;
        w->queue_head = w->queue_tail = NULL;
        pthread_mutex_unlock(&w->lock);
        if (!r)
            break; /* stopping, and the queue is empty */
        while (r) {
            xdb_request *next = r->next;
            r->next = NULL;
            /* While the database is down the breaker logs the outage; a line per request repeats
             * it. */
            if (xdb_run(w->conn, r) == XDB_ERROR && !db_down(w->conn))
                log_warn("storage: %s", r->error);
            atomic_store_explicit(&w->down, db_down(w->conn), memory_order_relaxed);
            push_result(w, r);
            r = next;
        }
    }
    return NULL;
}

static void noop_notify(void *ctx)
{
    (void)ctx;
}

static void workers_free(xdbsql *x, int count)
{
    for (int i = 0; i < count; i++) {
        db_close(x->workers[i].conn);
        pthread_mutex_destroy(&x->workers[i].lock);
        pthread_cond_destroy(&x->workers[i].wake);
        ring_destroy(&x->workers[i].results);
    }
    free(x->workers);
    free(x);
}

xdbsql *xdbsql_open(const xdbsql_options *opt, char *err, size_t errlen)
{
    xdbsql *x = mem_zalloc(sizeof(*x));
    x->opt = *opt;
    if (!x->opt.notify)
        x->opt.notify = noop_notify;
    const db_driver *driver = db_driver_find(opt->db.driver);
    x->nworkers = opt->workers > 0 ? opt->workers : (driver == &db_driver_sqlite ? 2 : 4);
    x->workers = mem_array((size_t)x->nworkers, sizeof(worker));

    for (int i = 0; i < x->nworkers; i++) {
        worker *w = &x->workers[i];
        w->service = x;
        w->index = i;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        ring_init(&w->results, RESULT_RING_SIZE);
        if (!(w->conn = db_open(&opt->db, err, errlen))) {
            workers_free(x, i + 1);
            return NULL;
        }
        /* The first connection brings the schema up to date before anyone uses it. */
        if (i == 0 && xdb_migrate(w->conn, err, errlen) != 0) {
            workers_free(x, 1);
            return NULL;
        }
    }
    for (int i = 0; i < x->nworkers; i++) {
        if (pthread_create(&x->workers[i].thread, NULL, worker_main, &x->workers[i]) != 0) {
            snprintf(err, errlen, "storage: cannot start worker thread %d", i);
            for (int j = 0; j < i; j++) {
                pthread_mutex_lock(&x->workers[j].lock);
                x->workers[j].stopping = true;
                pthread_cond_signal(&x->workers[j].wake);
                pthread_mutex_unlock(&x->workers[j].lock);
                pthread_join(x->workers[j].thread, NULL);
            }
            workers_free(x, x->nworkers);
            return NULL;
        }
    }
    return x;
}

int xdbsql_workers(const xdbsql *x)
{
    return x->nworkers;
}

int xdbsql_lane(const xdbsql *x, const char *host, const char *user)
{
    return (int)(user_hash(host, user) % (uint64_t)x->nworkers);
}

void xdbsql_submit(xdbsql *x, xdb_request *r, xdb_callback cb, void *ctx)
{
    r->callback = cb;
    r->ctx = ctx;
    r->next = NULL;
    r->submitted_us = now_us();
    worker *w = &x->workers[xdbsql_lane(x, r->host, r->user)];
    x->submitted++;
    pthread_mutex_lock(&w->lock);
    if (w->queue_tail)
        w->queue_tail->next = r;
    else
        w->queue_head = r;
    w->queue_tail = r;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

size_t xdbsql_dispatch(xdbsql *x)
{
    size_t ran = 0;
    for (int i = 0; i < x->nworkers; i++) {
        worker *w = &x->workers[i];
        xdb_request *r;
        while ((r = ring_pop(&w->results))) {
            if (r->op < XDB_OP_COUNT) {
                metrics_observe(&x->latency[r->op], now_us() - r->submitted_us);
                x->failed[r->op] += r->status == XDB_ERROR;
            }
            if (r->callback)
                r->callback(r, r->ctx);
            xdb_request_free(r);
            x->dispatched++;
            ran++;
        }
    }
    return ran;
}

size_t xdbsql_pending(const xdbsql *x)
{
    return x->submitted - x->dispatched;
}

void xdbsql_metrics(const xdbsql *x, buf *b)
{
    char labels[128];
    const char *driver = x->opt.db.driver ? x->opt.db.driver : "sqlite";
    metrics_family(b, "jabshard_sm_storage_pending", "gauge",
                   "Storage requests submitted and not answered yet.");
    metrics_sample(b, "jabshard_sm_storage_pending", "", xdbsql_pending(x));
    metrics_family(b, "jabshard_sm_storage_down", "gauge",
                   "Storage workers whose database was unreachable at their last request.");
    uint64_t down = 0;
    for (int i = 0; i < x->nworkers; i++)
        down += atomic_load_explicit(&x->workers[i].down, memory_order_relaxed);
    metrics_sample(b, "jabshard_sm_storage_down", "", down);
    metrics_family(b, "jabshard_sm_storage_request_seconds", "histogram",
                   "Storage requests, from submitted to answered, by operation.");
    for (int op = 0; op < XDB_OP_COUNT; op++) {
        if (!x->latency[op].count)
            continue;
        snprintf(labels, sizeof labels, "op=\"%s\",driver=\"%s\"", xdb_op_name(op), driver);
        metrics_histogram_write(b, "jabshard_sm_storage_request_seconds", labels, &x->latency[op]);
    }
    metrics_family(b, "jabshard_sm_storage_failures_total", "counter",
                   "Storage requests that failed (the database down or refusing), by operation.");
    for (int op = 0; op < XDB_OP_COUNT; op++) {
        if (!x->latency[op].count)
            continue;
        snprintf(labels, sizeof labels, "op=\"%s\"", xdb_op_name(op));
        metrics_sample(b, "jabshard_sm_storage_failures_total", labels, x->failed[op]);
    }
}

/* Requests submitted while the workers were stopping (callbacks run by close's own dispatch may
 * submit more) found no worker: they fail, "storage is closing", their callbacks run, until none
 * is left. */
static void fail_late(xdbsql *x)
{
    bool any = true;
    while (any) {
        any = false;
        for (int i = 0; i < x->nworkers; i++) {
            worker *w = &x->workers[i];
            xdb_request *r = w->queue_head;
            w->queue_head = w->queue_tail = NULL;
            while (r) {
                xdb_request *next = r->next;
                any = true;
                r->status = XDB_ERROR;
                snprintf(r->error, sizeof(r->error), "storage is closing");
                x->dispatched++;
                if (r->callback)
                    r->callback(r, r->ctx);
                xdb_request_free(r);
                r = next;
            }
        }
    }
}

void xdbsql_close(xdbsql *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->nworkers; i++) {
        worker *w = &x->workers[i];
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
    }
    /* Workers drain their queues before they stop; a full ring waits for this dispatch. */
    for (int i = 0; i < x->nworkers; i++) {
        worker *w = &x->workers[i];
        while (pthread_tryjoin_np(w->thread, NULL) != 0) {
            if (!xdbsql_dispatch(x))
                nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        }
    }
    xdbsql_dispatch(x);
    fail_late(x);
    workers_free(x, x->nworkers);
}
