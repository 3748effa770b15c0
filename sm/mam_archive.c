/* sm/mam_archive.c — writing message archives without holding up routing (XEP-0313).
 *
 * An archived message waits in memory with the others of its account; every tick (and when an
 * account has <mam><batch> waiting, or a query of the account needs them) they go to storage as
 * one request (XDB_MAM_APPEND, one transaction), submitted outside any frame's custody: the
 * frames that brought them are acknowledged at once, whatever the database's speed. If storage
 * fails, the batch is not written: counted and logged (docs/storage.md says what a user loses).
 * At most <mam><queue_max> messages wait; past that, new ones are dropped and counted.
 *
 * Retention: every minute, messages older than <mam><retention_days> (0: kept) are deleted,
 * <mam><expire_batch> at a time until none is left; after about one batch in 64 of an account, its
 * archive is cut to its newest <mam><user_max> messages.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "sm/map.h"
#include "sm/mam.h"
#include "sm/modules.h"

#define MAM_EXPIRE_EVERY_MS (60 * 1000)
#define MAM_TRIM_ONE_IN 64

typedef struct waiting {
    jid owner;
    xdb_request *r;         /* the batch being filled */
    struct waiting *next;
} waiting;

typedef struct mam_writer {
    sm_map by_owner;        /* bare JID -> waiting */
    waiting *list;
    size_t queued;          /* messages waiting, all accounts */
    uint64_t written, failed, dropped;
    int64_t next_expire_ms;
    bool expiring;          /* a run found a full batch: go on at the next tick */
} mam_writer;

static mam_writer *writer_of(sm *s) { return sm_module_data(s, &mod_mam); }

/* Storage outside the current frame's custody: archiving never delays an acknowledgement. */
static void submit_free(sm *s, xdb_request *r, xdb_callback cb, void *ctx)
{
    custody_ticket none = {0};
    custody_ticket prev = sm_swap_ticket(s, none);
    sm_submit(s, r, cb, ctx);
    sm_swap_ticket(s, prev);
}

static void trimmed(xdb_request *r, void *ctx)
{
    if (r->status == XDB_ERROR)
        log_warn("sm: storage: cutting the archive of %s@%s failed: %s", r->user, r->host,
                 r->error);
}

static void appended(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    mam_writer *w = writer_of(s);
    if (r->status == XDB_OK) {
        w->written += r->mam.n;
        long long max = mam_option(s, "mam/user_max");
        /* The cut reads down to the bound's row: on about one batch in MAM_TRIM_ONE_IN only (an
         * account goes past its bound by a few batches at most; every batch costed as much as
         * writing it). */
        if (max > 0 && !sm_stopping(s) && random_u64() % MAM_TRIM_ONE_IN == 0) {
            xdb_request *t = xdb_request_new(XDB_MAM_TRIM, r->host, r->user);
            t->limit = max;
            submit_free(s, t, trimmed, NULL);
        }
    } else if (r->status != XDB_NOT_FOUND) {
        w->failed += r->mam.n;
        log_warn("sm: storage: %zu messages of %s@%s could not be archived (%llu in all): %s",
                 r->mam.n, r->user, r->host, (unsigned long long)w->failed,
                 r->error[0] ? r->error : xdb_status_name(r->status));
    }
}

static void flush_one(sm *s, mam_writer *w, waiting *x)
{
    w->queued -= x->r->mam.n;
    submit_free(s, x->r, appended, s);
    x->r = NULL;
}

void mam_archive(sm *s, const jid *owner, const char *stanza_id, const jid *peer,
                 const char *xml)
{
    mam_writer *w = writer_of(s);
    if ((long long)w->queued >= mam_option(s, "mam/queue_max")) {
        if (w->dropped++ % 1000 == 0)
            log_warn("sm: %zu messages wait to be archived: %s's is dropped (%llu in all)",
                     w->queued, jid_full(owner), (unsigned long long)w->dropped);
        return;
    }
    waiting *x = sm_map_get(&w->by_owner, jid_full(owner), jid_full_len(owner));
    if (!x) {
        x = mem_zalloc(sizeof *x);
        jid_copy(&x->owner, owner);
        sm_map_put(&w->by_owner, jid_full(&x->owner), jid_full_len(&x->owner), x);
        x->next = w->list;
        w->list = x;
    }
    if (!x->r)
        x->r = sm_user_request(XDB_MAM_APPEND, owner);
    char bare[JID_MAX_LEN + 1];
    jid_bare_to_string(peer, bare, sizeof bare);
    size_t rlen;
    const char *resource = jid_resource(peer, &rlen);
    char *res = resource ? mem_strndup(resource, rlen) : NULL;
    xdb_request_add_mam(x->r, sm_wall_ms(), stanza_id, bare, res, xml);
    free(res);
    w->queued++;
    if ((long long)x->r->mam.n >= mam_option(s, "mam/batch"))
        flush_one(s, w, x);
}

void mam_flush(sm *s, const jid *owner)
{
    mam_writer *w = writer_of(s);
    waiting *x = sm_map_get(&w->by_owner, jid_full(owner), jid_full_len(owner));
    if (x && x->r)
        flush_one(s, w, x);
}

/* ---- retention ---- */

static void expired(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    mam_writer *w = writer_of(s);
    if (r->status != XDB_OK) {
        log_warn("sm: storage: expiring archived messages failed: %s", r->error);
        w->expiring = false;
        return;
    }
    w->expiring = r->count >= r->limit;
    if (r->count)
        log_info("sm: %lld archived messages past retention deleted", (long long)r->count);
}

static void expire(sm *s, mam_writer *w)
{
    long long days = mam_option(s, "mam/retention_days");
    if (!days)
        return;
    xdb_request *r = xdb_request_new(XDB_MAM_EXPIRE, NULL, NULL);
    r->mam_query.end = sm_wall_ms() - (int64_t)days * 86400 * 1000;
    r->limit = mam_option(s, "mam/expire_batch");
    w->expiring = false;
    submit_free(s, r, expired, s);
}

/* ---- the writer's life ---- */

void mam_archive_tick(sm *s)
{
    mam_writer *w = writer_of(s);
    /* Accounts with nothing waiting leave the table. */
    for (waiting **pp = &w->list; *pp;) {
        waiting *x = *pp;
        if (x->r) {
            flush_one(s, w, x);
            pp = &x->next;
            continue;
        }
        *pp = x->next;
        sm_map_del(&w->by_owner, jid_full(&x->owner), jid_full_len(&x->owner));
        jid_free(&x->owner);
        free(x);
    }
    int64_t now = sm_now_ms(s);
    if (w->expiring || now >= w->next_expire_ms) {
        w->next_expire_ms = now + MAM_EXPIRE_EVERY_MS;
        expire(s, w);
    }
}

void mam_flush_all(sm *s)
{
    mam_writer *w = writer_of(s);
    for (waiting *x = w->list; x; x = x->next)
        if (x->r)
            flush_one(s, w, x);
}

void mam_archive_init(sm *s)
{
    mam_writer *w = mem_zalloc(sizeof *w);
    sm_map_init(&w->by_owner);
    sm_module_set_data(s, &mod_mam, w);
}

void mam_archive_free(sm *s)
{
    mam_writer *w = writer_of(s);
    if (!w)
        return;
    while (w->list) {
        waiting *x = w->list;
        w->list = x->next;
        if (x->r) {
            log_warn("sm: %zu messages of %s not archived: the SM stops", x->r->mam.n,
                     jid_full(&x->owner));
            xdb_request_free(x->r);
        }
        jid_free(&x->owner);
        free(x);
    }
    sm_map_free(&w->by_owner);
    free(w);
}
