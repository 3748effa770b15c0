/* sm/mod_smacks.c — XEP-0198 stream management, the SM's half: custody of what a session is sent
 * until its client acknowledges it, resumption on any front, and hibernation.
 *
 * The front's feature (shard/smacks.c) speaks the protocol with the client and talks to this
 * module in MODULE frames (smproto/smacks_msg.h, docs/smproto.md §6). Here, per enabled session:
 * - every stanza serialized for it (session-sent) is kept, numbered, until the front reports that
 *   the client acknowledged it (ACK); so a front that dies loses nothing its clients had not
 *   acknowledged;
 * - when its connection is lost (session-lost) and it asked for resumption, the session stays,
 *   detached: available to its contacts, what is sent to it kept, for the negotiated time
 *   (<smacks><resume_timeout>, 300 s). A RESUME on any front of this SM attaches it to that
 *   connection, replays what the client had not acknowledged, and closes a connection that still
 *   held it (END replaced: <conflict/>);
 * - when the time passes, or the session ends otherwise, what it kept meets the fates of an
 *   undelivered stanza (chat and normal messages to offline storage, requests bounced, the rest
 *   dropped: sm_undeliverable), then the core broadcasts its unavailable presence (this module
 *   is before mod_presence in the table).
 * Past <smacks><queue_max> stanzas or <queue_bytes> bytes kept for one session, the session is
 * ended at the next tick (what it holds meets the same fates; nothing more is sent to it).
 * Resumption ids are 24 random characters, valid only for the account that enabled them.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/xml_write.h"
#include "sm/modules.h"
#include "sm/smacks.h"
#include "smproto/frame.h"

static const sm_int_option smacks_options[] = {
    {"smacks/resume_timeout", 300, 0, 86400},
    {"smacks/queue_max", 500, 1, 100000},
    {"smacks/queue_bytes", 2 * 1024 * 1024, 4096, 256 * 1024 * 1024},
    {"smacks/persist", 1, 0, 1},
    {NULL, 0, 0, 0},
};

smacks_data *smacks_data_of(sm *s) { return sm_module_data(s, &mod_smacks); }
/* A session's slot holds a pointer: the state is allocated when stream management is enabled, so
 * that sessions without it cost a pointer. NULL before. */
smacks_session *smacks_state_of(sm *s, const sm_session *sess)
{
    return *(smacks_session **)sm_session_state(s, sess, &mod_smacks);
}

smacks_session *smacks_state_new(sm *s, sm_session *sess)
{
    smacks_session **slot = sm_session_state(s, sess, &mod_smacks);
    smacks_session *st = mem_zalloc(sizeof *st);
    st->sess = sess;
    st->tail = &st->head;
    *slot = st;
    return st;
}

static void send_msg(sm *s, sm_link *l, uint64_t sid, const smacks_msg *m)
{
    buf b = BUF_INIT;
    smacks_msg_put(&b, m);
    if (!sm_module_send(s, &mod_smacks, l, sid, buf_data(&b), buf_len(&b)))
        log_warn("sm: a stream management answer too large for a frame: not sent");
    buf_free(&b);
}

static void send_failed(sm *s, sm_link *l, uint64_t sid, smacks_condition c)
{
    smacks_msg m = {.kind = SMACKS_FAILED, .condition = c};
    send_msg(s, l, sid, &m);
}

/* ---- what is kept ---- */

void smacks_keep(smacks_session *st, const char *xml, size_t len)
{
    kept *k = mem_alloc(sizeof *k + len);
    k->next = NULL;
    k->len = len;
    memcpy(k->xml, xml, len);
    *st->tail = k;
    st->tail = &k->next;
    st->count++;
    st->bytes += len;
    st->sm_sent++;
}

/* The client has the first n kept stanzas. */
static void drop_acked(smacks_session *st, uint64_t n)
{
    uint64_t gone = n < st->lost ? n : st->lost;
    st->lost -= gone;
    st->sm_acked += gone;
    n -= gone;
    while (n-- && st->head) {
        kept *k = st->head;
        st->head = k->next;
        st->count--;
        st->bytes -= k->len;
        st->sm_acked++;
        free(k);
    }
    if (!st->head)
        st->tail = &st->head;
}

/* ---- the watch list: sessions with a deadline ---- */

static void unwatch(smacks_data *d, smacks_session *st)
{
    if (!st->wprev && d->watch != st)
        return;
    if (st->wprev)
        st->wprev->wnext = st->wnext;
    else
        d->watch = st->wnext;
    if (st->wnext)
        st->wnext->wprev = st->wprev;
    st->wnext = st->wprev = NULL;
}

void smacks_watch(smacks_data *d, smacks_session *st, int64_t deadline_ms)
{
    unwatch(d, st);
    st->deadline_ms = deadline_ms;
    st->wnext = d->watch;
    if (d->watch)
        d->watch->wprev = st;
    d->watch = st;
}

static void retire(sm *s, smacks_data *d, uint64_t link_serial, uint64_t sid)
{
    if (d->retired_head && d->retired_head * 2 >= d->nretired) {
        memmove(d->retired, d->retired + d->retired_head,
                (d->nretired - d->retired_head) * sizeof *d->retired);
        d->nretired -= d->retired_head;
        d->retired_head = 0;
    }
    if (d->nretired == d->retired_cap) {
        d->retired_cap = d->retired_cap ? d->retired_cap * 2 : 8;
        d->retired = mem_realloc(d->retired, d->retired_cap * sizeof *d->retired);
    }
    d->retired[d->nretired++] = (retired){link_serial, sid, sm_now_ms(s) + SMACKS_RETIRED_MS};
    uint64_t key[2] = {link_serial, sid};
    sm_map_put(&d->retired_set, key, sizeof key, d);
}

static bool is_retired(const smacks_data *d, uint64_t link_serial, uint64_t sid)
{
    uint64_t key[2] = {link_serial, sid};
    return sm_map_get(&d->retired_set, key, sizeof key) != NULL;
}

/* ---- messages from the front ---- */

uint64_t smacks_handled_in(const smacks_session *st)
{
    return st->in_prior + (st->sess->stanzas_in - st->in_base) + st->in_local;
}

static void on_enable(sm *s, sm_link *l, uint64_t sid, const smacks_msg *m)
{
    sm_session *sess = sm_session_lookup(s, sm_link_serial(l), sid);
    if (!sess) {
        send_failed(s, l, sid, SMACKS_UNEXPECTED_REQUEST);
        return;
    }
    smacks_session *st = smacks_state_of(s, sess);
    if (st && st->enabled) {
        /* The front asks again after its link came back (its stream refuses a client's second
         * <enable/> itself): the same answer. */
        smacks_msg again = {.kind = SMACKS_ENABLED, .id = st->resumable ? st->id : "",
                            .max = st->resumable ? st->max : 0};
        send_msg(s, l, sid, &again);
        return;
    }
    long long timeout = sm_module_int(s, &mod_smacks, "smacks/resume_timeout");
    st = st ? st : smacks_state_new(s, sess);
    st->enabled = true;
    st->in_base = sess->stanzas_in;
    st->resumable = m->resume && timeout > 0;
    st->max = (uint32_t)(m->max && m->max < timeout ? m->max : timeout);
    smacks_msg answer = {.kind = SMACKS_ENABLED, .id = "", .max = st->resumable ? st->max : 0};
    if (st->resumable) {
        random_token(st->id, SMACKS_ID_LEN);
        sm_map_put(&smacks_data_of(s)->by_id, st->id, SMACKS_ID_LEN, sess);
        answer.id = st->id;
    }
    send_msg(s, l, sid, &answer);
    sm_session_state_changed(s, sess);
}

/* The front's link came back (docs/smproto.md §6). A live SM that kept the session resends what
 * the front never got; a restarted one takes the front's numbering, the copies it never had
 * counted as lost. */
static void on_sync(sm *s, smacks_session *st, const smacks_msg *m)
{
    if (st->restored) {
        st->restored = false;
        st->sm_acked = m->sm_acked;
        st->lost = m->sm_received - m->sm_acked;
        st->sm_sent = m->sm_received + st->count;
        st->in_prior = m->in_count - m->in_local;
        st->in_base = st->sess->stanzas_in;
        st->in_local = m->in_local;
        if (st->lost)
            log_notice("sm: session %s: %llu stanzas its client has not acknowledged were only "
                       "in the SM that restarted", jid_full(&st->sess->jid),
                       (unsigned long long)st->lost);
        return;
    }
    if (m->sm_received > st->sm_sent || m->sm_acked > m->sm_received)
        return;
    if (m->sm_acked > st->sm_acked)
        drop_acked(st, m->sm_acked - st->sm_acked);
    /* Kept stanzas past what the front received were on the link when it went down. */
    uint64_t n = st->sm_acked + st->lost;
    for (kept *k = st->head; k; k = k->next)
        if (++n > m->sm_received)
            sm_session_send_raw(s, st->sess, k->xml, k->len);
}

/* The front dropped the kept stanza number seq as a duplicate: it is forgotten, and the ones
 * after it take the numbers the front gave them. */
static void on_skip(smacks_session *st, uint64_t seq)
{
    uint64_t n = st->sm_acked + st->lost;
    if (seq <= n || seq > st->sm_sent)
        return;
    for (kept **pp = &st->head; *pp; pp = &(*pp)->next)
        if (++n == seq) {
            kept *k = *pp;
            *pp = k->next;
            if (st->tail == &k->next)
                st->tail = pp;
            st->count--;
            st->bytes -= k->len;
            st->sm_sent--;
            free(k);
            return;
        }
}

static void on_ack(sm *s, smacks_session *st, const smacks_msg *m)
{
    /* Acknowledgements only go forward, and never past what was sent. */
    if (m->sm_acked < st->sm_acked || m->sm_acked > st->sm_sent || m->client_h < st->client_h) {
        log_info("sm: %s: a stream management ACK out of order: ignored",
                 jid_full(&st->sess->jid));
        return;
    }
    drop_acked(st, m->sm_acked - st->sm_acked);
    st->client_h = m->client_h;
    st->in_local = m->in_local;
}

/* The account the front authenticated is the one that enabled the session. */
static bool same_account(const sm_session *sess, const char *host, const char *user)
{
    size_t nlen, dlen;
    const char *node = jid_node(&sess->jid, &nlen), *domain = jid_domain(&sess->jid, &dlen);
    return node && strlen(user) == nlen && memcmp(node, user, nlen) == 0 &&
           strlen(host) == dlen && memcmp(domain, host, dlen) == 0;
}

static void on_resume(sm *s, sm_link *l, uint64_t sid, const smacks_msg *m)
{
    smacks_data *d = smacks_data_of(s);
    if (sm_session_lookup(s, sm_link_serial(l), sid)) {
        send_failed(s, l, sid, SMACKS_UNEXPECTED_REQUEST);
        return;
    }
    sm_session *sess = strlen(m->id) == SMACKS_ID_LEN ? sm_map_get(&d->by_id, m->id, SMACKS_ID_LEN)
                                                     : NULL;
    if (!sess || !same_account(sess, m->host, m->user)) {
        send_failed(s, l, sid, SMACKS_ITEM_NOT_FOUND);
        return;
    }
    smacks_session *st = smacks_state_of(s, sess);
    /* The client's h is 32 bits; what it acknowledged beyond the last report was kept stanzas.
     * An h behind the last report (a client counting wrong) acknowledges nothing more. */
    uint32_t ahead = m->wire_h - (uint32_t)st->client_h;
    if (ahead < UINT32_C(0x80000000)) {
        drop_acked(st, ahead);
        st->client_h += ahead;
    }
    if (st->lost) {
        log_notice("sm: session %s resumed without %llu stanzas an SM restart lost",
                   jid_full(&sess->jid), (unsigned long long)st->lost);
        st->sm_acked += st->lost;
        st->lost = 0;
    }
    if (sess->link)
        retire(s, d, sm_link_serial(sess->link), sess->sid);
    uint64_t in = smacks_handled_in(st);
    sm_session_attach(s, sess, l, sid);
    unwatch(d, st);
    st->closing = false;
    st->in_prior = in;
    st->in_base = sess->stanzas_in;
    st->in_local = 0;
    buf presence = BUF_INIT;
    if (sess->available && sess->presence)
        xml_write_node(&presence, sess->presence->node, SM_NS_CLIENT, false);
    buf_append(&presence, "", 1);
    smacks_msg answer = {.kind = SMACKS_RESUMED, .jid = jid_full(&sess->jid), .id = st->id,
                         .h = in, .client_h = st->client_h, .sm_acked = st->sm_acked,
                         .max = st->max, .presence = buf_data(&presence)};
    send_msg(s, l, sid, &answer);
    buf_free(&presence);
    for (kept *k = st->head; k; k = k->next)
        sm_session_send_raw(s, sess, k->xml, k->len);
    sm_session_state_changed(s, sess);
    log_info("sm: session %s resumed (%zu stanzas replayed)", jid_full(&sess->jid), st->count);
}

/* One for each session a front re-announces (a later one replaces it), gone when the session is
 * restored or after SMACKS_RETIRED_MS. */
static void keep_early_sync(sm *s, uint64_t link_serial, uint64_t sid, const smacks_msg *m)
{
    smacks_data *d = smacks_data_of(s);
    uint64_t key[2] = {link_serial, sid};
    early_sync *e = sm_map_get(&d->early, key, sizeof key);
    if (!e) {
        e = mem_alloc(sizeof *e);
        sm_map_put(&d->early, key, sizeof key, e);
    }
    *e = (early_sync){link_serial, sid, sm_now_ms(s) + SMACKS_RETIRED_MS, *m};
}

static void smacks_message(sm *s, const sm_module *self, sm_link *l, uint64_t sid,
                           const uint8_t *body, size_t len)
{
    smacks_msg m;
    if (!smacks_msg_get(body, len, &m)) {
        log_notice("sm: link %s: a malformed stream management message: ignored",
                   sm_link_service(l));
        return;
    }
    if (m.kind == SMACKS_ENABLE) {
        on_enable(s, l, sid, &m);
        return;
    }
    if (m.kind == SMACKS_RESUME) {
        on_resume(s, l, sid, &m);
        return;
    }
    sm_session *sess = sm_session_lookup(s, sm_link_serial(l), sid);
    smacks_session *st = sess ? smacks_state_of(s, sess) : NULL;
    if (!sess && m.kind == SMACKS_SYNC) {
        keep_early_sync(s, sm_link_serial(l), sid, &m);
        return;
    }
    if (!st || !st->enabled)
        return;   /* the session ended meanwhile */
    switch (m.kind) {
    case SMACKS_R: {
        /* Everything the client sent before its <r/> has reached the SM: the front may say so. */
        st->in_local = m.in_local;
        smacks_msg a = {.kind = SMACKS_A, .h = m.in_count};
        send_msg(s, l, sid, &a);
        break;
    }
    case SMACKS_ACK:
        on_ack(s, st, &m);
        break;
    case SMACKS_CLOSE:
        st->closing = true;
        break;
    case SMACKS_SYNC:
        /* A front sends one SYNC a link, in its resync. A second on the same link is an earlier
         * link's that the SM never acknowledged (it died during that resync), sent again after
         * the new one: taken, it would send the kept stanzas past its count a second time. */
        if (st->synced_link == sm_link_serial(l)) {
            log_info("sm: %s: an earlier link's stream management SYNC sent again: ignored",
                     jid_full(&sess->jid));
            break;
        }
        st->synced_link = sm_link_serial(l);
        on_sync(s, st, &m);
        break;
    case SMACKS_SKIP:
        on_skip(st, m.seq);
        break;
    default:
        break;   /* the SM's own kinds */
    }
}

/* ---- the session's life ---- */

static bool smacks_sent(sm *s, sm_event *ev)
{
    smacks_session *st = smacks_state_of(s, ev->session);
    if (!st || !st->enabled)
        return false;
    long long max = sm_module_int(s, &mod_smacks, "smacks/queue_max");
    long long bytes = sm_module_int(s, &mod_smacks, "smacks/queue_bytes");
    if (!st->doomed && ((long long)st->count >= max || (long long)(st->bytes + ev->len) > bytes)) {
        log_notice("sm: session %s: %zu stanzas (%zu bytes) not acknowledged: it ends",
                   jid_full(&ev->session->jid), st->count, st->bytes);
        st->doomed = true;
        smacks_watch(smacks_data_of(s), st, 0);
    }
    if (st->doomed) {
        /* Kept until the session ends at the next tick (then offline), within twice the bound. */
        if ((long long)st->count < 2 * max && (long long)(st->bytes + ev->len) <= 2 * bytes)
            smacks_keep(st, ev->xml, ev->len);
        else
            log_warn("sm: session %s: a stanza past twice its bounds: dropped",
                     jid_full(&ev->session->jid));
        return true;   /* nothing more goes to its connection */
    }
    smacks_keep(st, ev->xml, ev->len);
    smacks_hib_kept(s, st, ev->xml, ev->len);
    return false;
}

static bool smacks_lost(sm *s, sm_event *ev)
{
    smacks_session *st = smacks_state_of(s, ev->session);
    if (!st || !st->enabled || !st->resumable || st->closing || st->doomed)
        return false;
    smacks_data *d = smacks_data_of(s);
    retire(s, d, sm_link_serial(ev->session->link), ev->session->sid);
    smacks_watch(d, st, sm_now_ms(s) + (int64_t)st->max * 1000);
    smacks_hib_store(s, st);
    return true;
}

/* A detached session has a connection again (a resumption, or its front's resync). */
static bool smacks_attached(sm *s, sm_event *ev)
{
    smacks_session *st = smacks_state_of(s, ev->session);
    smacks_data *d = smacks_data_of(s);
    if (!st || !st->enabled)
        return false;
    if (!st->doomed)
        unwatch(d, st);
    smacks_hib_forget(s, st);
    if (st->resumable && !sm_map_get(&d->by_id, st->id, SMACKS_ID_LEN))
        sm_map_put(&d->by_id, st->id, SMACKS_ID_LEN, ev->session);
    uint64_t key[2] = {sm_link_serial(ev->session->link), ev->session->sid};
    early_sync *e = sm_map_del(&d->early, key, sizeof key);
    if (e) {
        st->synced_link = e->link_serial;
        on_sync(s, st, &e->m);
        free(e);
    }
    return false;
}

/* What the session kept meets the fates of the undelivered, in order. */
static bool smacks_end(sm *s, sm_event *ev)
{
    smacks_session *st = smacks_state_of(s, ev->session);
    if (!st || !st->enabled)
        return false;
    smacks_data *d = smacks_data_of(s);
    unwatch(d, st);
    if (st->resumable)
        sm_map_del(&d->by_id, st->id, SMACKS_ID_LEN);
    /* A graceful stop leaves a hibernated session in storage, for the next start. */
    bool fates = !(st->stored && sm_stopping(s));
    kept *k = st->head;
    st->head = NULL;
    st->tail = &st->head;
    st->count = st->bytes = 0;
    st->enabled = false;
    while (k) {
        kept *next = k->next;
        if (fates)
            sm_undeliverable(s, &ev->session->jid, k->xml, k->len);
        free(k);
        k = next;
    }
    if (fates)
        smacks_hib_forget(s, st);
    return false;
}

/* What a front hands back for a session that keeps custody is already kept here. */
static bool smacks_undelivered(sm *s, sm_event *ev)
{
    if (ev->session) {
        const smacks_session *st = smacks_state_of(s, ev->session);
        return st && st->enabled;
    }
    return is_retired(smacks_data_of(s), ev->link_serial, ev->sid);
}

static bool smacks_tick(sm *s, sm_event *ev)
{
    smacks_data *d = smacks_data_of(s);
    int64_t now = sm_now_ms(s);
    for (; d->retired_head < d->nretired && d->retired[d->retired_head].until_ms <= now;
         d->retired_head++) {
        uint64_t key[2] = {d->retired[d->retired_head].link_serial,
                           d->retired[d->retired_head].sid};
        sm_map_del(&d->retired_set, key, sizeof key);
    }
    if (sm_map_count(&d->early)) {
        size_t count = sm_map_count(&d->early);
        void **all = sm_map_values(&d->early);
        for (size_t i = 0; i < count; i++) {
            early_sync *e = all[i];
            if (e->until_ms <= now) {
                uint64_t key[2] = {e->link_serial, e->sid};
                sm_map_del(&d->early, key, sizeof key);
                free(e);
            }
        }
        free(all);
    }
    /* Ending a session runs other modules, which may end others: take the due ones first. */
    size_t n = 0;
    for (smacks_session *st = d->watch; st; st = st->wnext)
        if (st->deadline_ms <= now)
            n++;
    if (!n)
        return false;
    char **due = mem_array(n, sizeof *due);
    size_t k = 0;
    for (smacks_session *st = d->watch; st && k < n; st = st->wnext)
        if (st->deadline_ms <= now)
            due[k++] = mem_strdup(jid_full(&st->sess->jid));
    for (size_t i = 0; i < k; i++) {
        jid j;
        if (jid_parse(due[i], strlen(due[i]), &j) == JID_OK) {
            sm_session *sess = sm_session_find(s, &j);
            smacks_session *st = sess ? smacks_state_of(s, sess) : NULL;
            if (st && st->enabled && (st->wprev || d->watch == st) && st->deadline_ms <= now) {
                log_info("sm: session %s %s", due[i],
                         st->doomed ? "ends: too much unacknowledged"
                                    : "was not resumed in time: it ends");
                sm_session_end(s, sess, SMPROTO_END_KICKED,
                               st->doomed ? "too many unacknowledged stanzas" : NULL);
            }
            jid_free(&j);
        }
        free(due[i]);
    }
    free(due);
    return false;
}

/* ---- across an SM restart ---- */

/* The STATE part: the resumption id (empty without resumption) and the timeout. */
static void smacks_pack(const sm_session *sess, const void *state, buf *out)
{
    const smacks_session *st = *(smacks_session *const *)state;
    if (!st || !st->enabled)
        return;
    uint8_t len = st->resumable ? SMACKS_ID_LEN : 0;
    buf_append(out, &len, 1);
    buf_append(out, st->id, len);
    uint8_t max[4] = {(uint8_t)(st->max >> 24), (uint8_t)(st->max >> 16), (uint8_t)(st->max >> 8),
                      (uint8_t)st->max};
    buf_append(out, max, 4);
}

static void smacks_restore(sm_session *sess, void *state, const uint8_t *data, size_t len)
{
    smacks_session **slot = state;
    if (*slot || len < 5 || (data[0] != 0 && data[0] != SMACKS_ID_LEN) ||
        len != 1u + data[0] + 4)
        return;
    smacks_session *st = *slot = mem_zalloc(sizeof *st);
    st->sess = sess;
    st->tail = &st->head;
    st->enabled = true;
    st->restored = true;
    st->in_base = sess->stanzas_in;
    st->resumable = data[0] == SMACKS_ID_LEN;
    memcpy(st->id, data + 1, data[0]);
    st->id[data[0]] = 0;
    const uint8_t *m = data + 1 + data[0];
    st->max = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
}

static void smacks_release(void *state)
{
    smacks_session *st = *(smacks_session **)state;
    if (!st)
        return;
    while (st->head) {
        kept *k = st->head;
        st->head = k->next;
        free(k);
    }
    free(st);
}

static bool smacks_init(sm *s, const sm_module *self, config *cfg)
{
    smacks_data *d = mem_zalloc(sizeof *d);
    sm_map_init(&d->by_id);
    sm_map_init(&d->retired_set);
    sm_map_init(&d->early);
    sm_module_set_data(s, self, d);
    smacks_hib_load(s);
    return true;
}

static void free_value(void *val, void *ctx) { free(val); }

static void smacks_fini(sm *s, const sm_module *self)
{
    smacks_data *d = smacks_data_of(s);
    if (!d)
        return;
    sm_map_free(&d->by_id);
    sm_map_free(&d->retired_set);
    free(d->retired);
    sm_map_each(&d->early, free_value, NULL);
    sm_map_free(&d->early);
    free(d);
}

static const sm_handler smacks_handlers[] = {
    {"session-sent", NULL, smacks_sent},
    {"session-lost", NULL, smacks_lost},
    {"session-end", NULL, smacks_end},
    {"session-attached", NULL, smacks_attached},
    {"undelivered", NULL, smacks_undelivered},
    {"tick", NULL, smacks_tick},
    {NULL, NULL, NULL},
};

const sm_module mod_smacks = {
    .name = SMACKS_MODULE,
    .int_options = smacks_options,
    .init = smacks_init,
    .fini = smacks_fini,
    .handlers = smacks_handlers,
    .session_state = sizeof(smacks_session *),
    .session_release = smacks_release,
    .pack = smacks_pack,
    .restore = smacks_restore,
    .message = smacks_message,
};
