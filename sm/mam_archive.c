/* sm/mam_archive.c — writing message archives without holding up routing (XEP-0313).
 *
 * Archived messages wait in memory, gathered by storage lane (sm_storage_lane: storage runs a
 * lane's requests in order, an account's in its lane): every tick, when a lane has <mam><batch>
 * waiting, or when a query of an account needs its messages, a lane's messages of every account go
 * to storage as one request (XDB_MAM_APPEND, one transaction), submitted outside any frame's
 * custody: the frames that brought them are acknowledged at once, whatever the database's speed.
 * If storage fails, the batch is not written: counted and logged (docs/storage.md says what a
 * user loses). At most <mam><queue_max> messages wait; past that, new ones are dropped and counted.
 *
 * Retention: every minute, messages older than <mam><retention_days> (0: kept) are deleted,
 * <mam><expire_batch> at a time until none is left; after an archived message, about one in
 * max(64, <mam><user_max> / 64), its account's archive is cut to its newest <mam><user_max>
 * messages (the cut reads down to the bound's row: an account goes past its bound by about 1/64
 * of it at most, and every message pays for a 64th of a cut's walk).
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/random.h"
#include "sm/mam.h"
#include "sm/modules.h"

#define MAM_EXPIRE_EVERY_MS (60 * 1000)
#define MAM_TRIM_ONE_IN_MIN 64

typedef struct mam_writer {
    xdb_request **lane;     /* the batch being filled of each storage lane, or NULL; made at
                             * the first message (the lanes are set after the modules start) */
    int nlanes;
    size_t queued;          /* messages waiting, all lanes */
    uint64_t written, failed, dropped, gone;
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

/* About one archived message in max(64, user_max / 64) cuts its account's archive. */
static void maybe_trim(sm *s, const xdb_mam_entry *e)
{
    long long max = mam_option(s, "mam/user_max");
    if (max <= 0 || sm_stopping(s))
        return;
    uint64_t one_in = (uint64_t)max / 64 > MAM_TRIM_ONE_IN_MIN ? (uint64_t)max / 64
                                                                 : MAM_TRIM_ONE_IN_MIN;
    if (random_u64() % one_in)
        return;
    xdb_request *t = xdb_request_new(XDB_MAM_TRIM, e->host, e->user);
    t->limit = max;
    submit_free(s, t, trimmed, NULL);
}

static void appended(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    mam_writer *w = writer_of(s);
    if (r->status == XDB_OK) {
        w->written += r->mam.n - (size_t)r->count;
        w->gone += (uint64_t)r->count;
        for (size_t i = 0; i < r->mam.n; i++)
            maybe_trim(s, &r->mam.v[i]);
    } else {
        w->failed += r->mam.n;
        log_warn("sm: storage: %zu messages could not be archived (%llu in all): %s", r->mam.n,
                 (unsigned long long)w->failed,
                 r->error[0] ? r->error : xdb_status_name(r->status));
    }
}

static void flush_lane(sm *s, mam_writer *w, int lane)
{
    xdb_request *r = w->lane[lane];
    if (!r)
        return;
    w->lane[lane] = NULL;
    w->queued -= r->mam.n;
    submit_free(s, r, appended, s);
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
    if (!w->lane) {
        w->nlanes = sm_storage_lanes(s);
        w->lane = mem_array((size_t)w->nlanes, sizeof *w->lane);
    }
    char node[JID_PART_MAX + 1], host[JID_PART_MAX + 1];
    sm_account_names(owner, node, host);
    int lane = sm_storage_lane(s, host, node);
    /* The batch goes in the lane of the account it is submitted as: its first one. */
    if (!w->lane[lane])
        w->lane[lane] = xdb_request_new(XDB_MAM_APPEND, host, node);
    char bare[JID_MAX_LEN + 1], resource[JID_PART_MAX + 1] = "";
    jid_bare_to_string(peer, bare, sizeof bare);
    size_t rlen;
    const char *res = jid_resource(peer, &rlen);
    if (res) {
        memcpy(resource, res, rlen);
        resource[rlen] = '\0';
    }
    xdb_request_add_mam(w->lane[lane], host, node, sm_wall_ms(), stanza_id, bare, resource, xml);
    w->queued++;
    if ((long long)w->lane[lane]->mam.n >= mam_option(s, "mam/batch"))
        flush_lane(s, w, lane);
}

void mam_flush(sm *s, const jid *owner)
{
    if (!writer_of(s)->lane)
        return;
    char node[JID_PART_MAX + 1], host[JID_PART_MAX + 1];
    sm_account_names(owner, node, host);
    flush_lane(s, writer_of(s), sm_storage_lane(s, host, node));
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

/* ---- metrics ---- */

void mam_archive_metrics(sm *s, buf *b)
{
    mam_writer *w = writer_of(s);
    metrics_family(b, "jabshard_sm_mam_messages_total", "counter",
                   "Archived message copies, by fate: written, failed (storage refused the "
                   "batch), dropped (past <mam><queue_max>), gone (the account was deleted).");
    metrics_sample(b, "jabshard_sm_mam_messages_total", "fate=\"written\"", w->written);
    metrics_sample(b, "jabshard_sm_mam_messages_total", "fate=\"failed\"", w->failed);
    metrics_sample(b, "jabshard_sm_mam_messages_total", "fate=\"dropped\"", w->dropped);
    metrics_sample(b, "jabshard_sm_mam_messages_total", "fate=\"gone\"", w->gone);
    metrics_family(b, "jabshard_sm_mam_queued", "gauge", "Archived messages waiting to be written.");
    metrics_sample(b, "jabshard_sm_mam_queued", "", w->queued);
}

/* ---- the writer's life ---- */

void mam_flush_all(sm *s)
{
    mam_writer *w = writer_of(s);
    for (int i = 0; i < w->nlanes; i++)
        flush_lane(s, w, i);
}

void mam_archive_tick(sm *s)
{
    mam_writer *w = writer_of(s);
    mam_flush_all(s);
    int64_t now = sm_now_ms(s);
    if (w->expiring || now >= w->next_expire_ms) {
        w->next_expire_ms = now + MAM_EXPIRE_EVERY_MS;
        expire(s, w);
    }
}

void mam_archive_init(sm *s)
{
    mam_writer *w = mem_zalloc(sizeof *w);
    sm_module_set_data(s, &mod_mam, w);
}

void mam_archive_free(sm *s)
{
    mam_writer *w = writer_of(s);
    if (!w)
        return;
    for (int i = 0; i < w->nlanes; i++)
        if (w->lane[i]) {
            log_warn("sm: %zu messages not archived: the SM stops", w->lane[i]->mam.n);
            xdb_request_free(w->lane[i]);
        }
    free(w->lane);
    free(w);
}
