/* sm/smacks_hibernation.c — hibernated stream-management sessions kept in storage, so that they
 * survive an SM restart (docs/smproto.md §6).
 *
 * A session that hibernates (its connection lost, resumption on) is written at once: a record
 * (its full JID, resumption timeout and deadline, counters, last presence and STATE record) and
 * the stanzas it keeps; every stanza it keeps afterwards is added, under the custody ticket of the
 * frame that brought it, so a front forgets that frame only once storage has it. When the session
 * is attached again (resumed, or its front's link came back) or ends, the record is deleted. A
 * graceful stop leaves the records: the next start revives them.
 *
 * At the start, the SM reads every record (one request) and revives each session, detached, with
 * what it kept and the time it has left (sm_session_revive), holding stanzas for users without a
 * session until it has (sm_start_hold). A record whose JID a front re-announced first is the
 * front's: it is deleted. A record whose deadline passed while the SM was down is revived too, and
 * ends at the first tick, its stanzas meeting their fates (offline storage).
 *
 * Storage is the one place that outlives both the SM and the fronts: a session that hibernated
 * because its front was killed is re-announced by no front, and its client may resume on any.
 */
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/xml_write.h"
#include "sm/modules.h"
#include "sm/smacks.h"

#define HIB_RECORD_VERSION 1

static bool persisting(sm *s)
{
    return sm_module_int(s, &mod_smacks, "smacks/persist") != 0;
}

static void hib_done(xdb_request *r, void *ctx)
{
    if (r->status == XDB_ERROR)
        log_warn("sm: storage: %s for the hibernated session %s of %s@%s: %s", xdb_op_name(r->op),
                 r->key, r->user, r->host, r->error);
}

static xdb_request *hib_request(xdb_op op, const smacks_session *st)
{
    xdb_request *r = sm_user_request(op, &st->sess->jid);
    xdb_request_set_key(r, st->id);
    return r;
}

/* ---- the record ---- */

typedef struct hib_record {
    const char *jid, *presence;
    uint32_t max;
    int64_t deadline_wall_ms;
    uint64_t handled_in, client_h, sm_acked, lost;
    const uint8_t *state;
    size_t state_len;
} hib_record;

static void record_put(buf *out, const hib_record *rec)
{
    bytes_put_u8(out, HIB_RECORD_VERSION);
    bytes_put_str(out, rec->jid);
    bytes_put_u32(out, rec->max);
    bytes_put_u64(out, (uint64_t)rec->deadline_wall_ms);
    bytes_put_u64(out, rec->handled_in);
    bytes_put_u64(out, rec->client_h);
    bytes_put_u64(out, rec->sm_acked);
    bytes_put_u64(out, rec->lost);
    bytes_put_str(out, rec->presence);
    bytes_put_blob(out, rec->state, rec->state_len);
}

/* Strict: storage is written by this SM, but a record is read back as bytes from outside it. */
static bool record_get(const xdb_value *v, hib_record *rec)
{
    bytes_reader r = bytes_reader_of(v->data, v->len);
    if (bytes_get_u8(&r) != HIB_RECORD_VERSION)
        return false;
    rec->jid = bytes_get_str(&r, JID_MAX_LEN);
    rec->max = bytes_get_u32(&r);
    rec->deadline_wall_ms = (int64_t)bytes_get_u64(&r);
    rec->handled_in = bytes_get_u64(&r);
    rec->client_h = bytes_get_u64(&r);
    rec->sm_acked = bytes_get_u64(&r);
    rec->lost = bytes_get_u64(&r);
    rec->presence = bytes_get_str(&r, SMPROTO_MAX_PAYLOAD);
    rec->state = bytes_get_blob(&r, SMPROTO_STATE_MAX, &rec->state_len);
    return bytes_done(&r) && rec->sm_acked <= UINT64_MAX - rec->lost;
}

/* ---- while the SM runs ---- */

void smacks_hib_store(sm *s, smacks_session *st)
{
    if (!persisting(s) || !st->resumable)
        return;
    sm_session *sess = st->sess;
    buf presence = BUF_INIT, state = BUF_INIT, record = BUF_INIT;
    if (sess->available && sess->presence)
        xml_write_node(&presence, sess->presence->node, SM_NS_CLIENT, false);
    buf_append(&presence, "", 1);
    sm_session_pack(s, sess, &state);
    hib_record rec = {
        .jid = jid_full(&sess->jid), .presence = buf_data(&presence), .max = st->max,
        .deadline_wall_ms = sm_wall_ms() + (st->deadline_ms - sm_now_ms(s)),
        .handled_in = smacks_handled_in(st), .client_h = st->client_h,
        .sm_acked = st->sm_acked, .lost = st->lost,
        .state = (const uint8_t *)buf_data(&state), .state_len = buf_len(&state),
    };
    record_put(&record, &rec);
    xdb_request *r = hib_request(XDB_HIB_PUT, st);
    xdb_request_set_value(r, buf_data(&record), buf_len(&record));
    if (st->count) {
        r->stanzas.v = mem_array(st->count, sizeof(char *));
        for (kept *k = st->head; k; k = k->next)
            r->stanzas.v[r->stanzas.n++] = mem_strndup(k->xml, k->len);
    }
    st->stored = true;
    st->stored_n = st->count;
    sm_submit(s, r, hib_done, NULL);
    buf_free(&presence);
    buf_free(&state);
    buf_free(&record);
}

void smacks_hib_kept(sm *s, smacks_session *st, const char *xml, size_t len)
{
    if (!st->stored)
        return;
    xdb_request *r = hib_request(XDB_HIB_KEEP, st);
    r->seq = (int64_t)++st->stored_n;
    r->xml = mem_strndup(xml, len);
    sm_submit(s, r, hib_done, NULL);
}

void smacks_hib_forget(sm *s, smacks_session *st)
{
    if (!st->stored)
        return;
    st->stored = false;
    st->stored_n = 0;
    sm_submit(s, hib_request(XDB_HIB_DROP, st), hib_done, NULL);
}

/* ---- at the start ---- */

typedef struct revival {
    char id[SMACKS_ID_LEN + 1];
    jid full;
    hib_record rec;             /* its strings point into value */
    xdb_value value;
    xdb_strings stanzas;
} revival;

static void revival_free(revival *rv)
{
    for (size_t i = 0; i < rv->stanzas.n; i++)
        free(rv->stanzas.v[i]);
    free(rv->stanzas.v);
    free(rv->value.data);
    jid_free(&rv->full);
    free(rv);
}

static void drop_record(sm *s, const jid *owner, const char *id)
{
    xdb_request *r = sm_user_request(XDB_HIB_DROP, owner);
    xdb_request_set_key(r, id);
    sm_submit(s, r, hib_done, NULL);
}

static void revival_over(sm *s)
{
    smacks_data *d = smacks_data_of(s);
    if (--d->reviving == 0)
        sm_start_done(s);
}

/* The session as it was when it hibernated: counters, what it kept, the time it has left. */
static void revived(sm *s, sm_session *sess, void *ctx)
{
    revival *rv = ctx;
    if (sm_stopping(s)) {
        revival_free(rv);   /* its record stays for the next start */
        return;
    }
    if (!sess) {
        if (sm_session_find(s, &rv->full)) {
            log_info("sm: the hibernated session %s is a front's again: its stored copy is "
                     "dropped", jid_full(&rv->full));
            drop_record(s, &rv->full, rv->id);
        }
        revival_free(rv);
        revival_over(s);
        return;
    }
    smacks_session *st = smacks_state_of(s, sess);
    st = st ? st : smacks_state_new(s, sess);
    st->enabled = st->resumable = true;
    st->restored = false;
    memcpy(st->id, rv->id, sizeof st->id);
    st->max = rv->rec.max;
    st->in_prior = rv->rec.handled_in;
    st->in_base = sess->stanzas_in;
    st->in_local = 0;
    st->client_h = rv->rec.client_h;
    st->sm_acked = rv->rec.sm_acked;
    st->lost = rv->rec.lost;
    for (size_t i = 0; i < rv->stanzas.n; i++)
        smacks_keep(st, rv->stanzas.v[i], strlen(rv->stanzas.v[i]));
    st->sm_sent = st->sm_acked + st->lost + st->count;
    st->stored = true;
    st->stored_n = rv->stanzas.n;
    smacks_data *d = smacks_data_of(s);
    sm_map_put(&d->by_id, st->id, SMACKS_ID_LEN, sess);
    int64_t left = rv->rec.deadline_wall_ms - sm_wall_ms();
    smacks_watch(d, st, sm_now_ms(s) + (left > 0 ? left : 0));
    log_info("sm: hibernated session %s revived from storage: %zu stanzas kept, %lld s left",
             jid_full(&sess->jid), st->count, (long long)(left > 0 ? left / 1000 : 0));
    revival_free(rv);
    revival_over(s);
}

/* One stored hibernation: revived, or (malformed, not ours) dropped. */
static void revive(sm *s, xdb_hibernation *h)
{
    revival *rv = mem_zalloc(sizeof *rv);
    rv->value = h->record;
    h->record = (xdb_value){0};
    rv->stanzas = h->stanzas;
    h->stanzas = (xdb_strings){0};
    size_t nlen, dlen;
    const char *node, *domain;
    bool ok = strlen(h->id) == SMACKS_ID_LEN && record_get(&rv->value, &rv->rec) &&
              jid_parse(rv->rec.jid, strlen(rv->rec.jid), &rv->full) == JID_OK &&
              !jid_is_bare(&rv->full) && sm_is_local_user(s, &rv->full) &&
              (node = jid_node(&rv->full, &nlen)) && strlen(h->user) == nlen &&
              memcmp(node, h->user, nlen) == 0 && (domain = jid_domain(&rv->full, &dlen)) &&
              strlen(h->host) == dlen && memcmp(domain, h->host, dlen) == 0;
    if (!ok) {
        log_warn("sm: storage: the hibernated session %s of %s@%s is malformed or not served "
                 "here: dropped", h->id, h->user, h->host);
        jid owner;
        if (jid_make(h->user, strlen(h->user), h->host, strlen(h->host), NULL, 0, &owner) ==
            JID_OK) {
            drop_record(s, &owner, h->id);
            jid_free(&owner);
        }
        revival_free(rv);
        return;
    }
    memcpy(rv->id, h->id, SMACKS_ID_LEN + 1);
    smacks_data_of(s)->reviving++;
    sm_session_revive(s, &rv->full, rv->rec.state, rv->rec.state_len, rv->rec.presence, revived,
                      rv);
}

static void loaded(xdb_request *r, void *ctx)
{
    sm *s = ctx;
    if (r->status != XDB_OK) {
        log_warn("sm: storage: the hibernated sessions could not be read (%s): they stay "
                 "stored for the next start", r->error[0] ? r->error : xdb_status_name(r->status));
    } else {
        if (r->nhibernations)
            log_info("sm: %zu hibernated sessions in storage", r->nhibernations);
        for (size_t i = 0; i < r->nhibernations; i++)
            revive(s, &r->hibernations[i]);
    }
    revival_over(s);   /* the load's own hold */
}

void smacks_hib_load(sm *s)
{
    if (!persisting(s))
        return;
    smacks_data_of(s)->reviving = 1;
    sm_start_hold(s);
    sm_submit(s, xdb_request_new(XDB_HIB_LOAD, NULL, NULL), loaded, s);
}
