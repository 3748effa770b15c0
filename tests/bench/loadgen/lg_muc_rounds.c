/* tests/bench/loadgen/lg_muc_rounds.c — the --muc join phase and groupchat rounds (see
 * lg_muc_rounds.h).
 *
 * Each round keeps one entry per message: sender, send time, and a bitmap of the slots of its room
 * already delivered to, so a duplicate is told from a first arrival exactly. */
#include "tests/bench/loadgen/lg_muc_rounds.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "tests/bench/loadgen/lg_muc.h"
#include "tests/bench/loadgen/lg_pace.h"

enum { JOIN_NONE, JOIN_SENT, JOIN_DONE, JOIN_FAILED };
enum { ROOM_WAITING, ROOM_CONFIGURING, ROOM_READY };

typedef struct muc_round {
    uint32_t number;
    uint64_t capacity, sent;
    bool closed;
    uint32_t *sender;
    uint64_t *sent_ns;
    uint8_t *seen;            /* per message: slot_bytes bytes of delivered slots */
    lg_muc_result res;
    lg_samples latency;
    uint64_t late;
} muc_round;

struct lg_muc {
    const lg_options *opt;
    evloop *loop;
    lg_pool *pool;
    uint32_t n, rooms;
    size_t slot_bytes;
    char run[LG_MUC_RUN_LEN + 1];
    char service[LG_MUC_SERVICE_MAX];
    /* join */
    uint8_t *join;            /* per user: JOIN_* */
    uint64_t *join_ns;        /* per user: join sent, then self-presence time */
    uint8_t *room_state;      /* per room: ROOM_* */
    uint32_t next, in_flight, pending;
    bool joining;
    timer join_deadline;
    lg_samples join_latency;
    lg_muc_join_result jr;
    uint64_t join_start_ns, join_end_ns;
    /* rounds */
    muc_round *rounds;
    size_t nrounds;
    muc_round *cur;
    lg_pace pace;
    uint64_t foreign, unknown;
};

static void muc_on_stanza(void *ctx, uint32_t receiver, const xml_node *stanza, xml_arena *arena);
static void muc_turn(void *ctx, uint64_t k);
static bool muc_settled(void *ctx);
static void muc_finish(void *ctx);
static void join_on_deadline(timer *t, void *arg);

lg_muc *lg_muc_new(const lg_options *o, evloop *loop, lg_pool *pool)
{
    lg_muc *m = mem_zalloc(sizeof(*m));
    m->opt = o;
    m->loop = loop;
    m->pool = pool;
    m->n = lg_pool_users(pool);
    m->rooms = o->muc_rooms;
    m->slot_bytes = (lg_muc_room_size(m->n, m->rooms, 0) + 7) / 8;
    if (o->muc_service)
        snprintf(m->service, sizeof(m->service), "%s", o->muc_service);
    else
        snprintf(m->service, sizeof(m->service), "conference.%s", o->domain);
    random_token(m->run, LG_MUC_RUN_LEN);
    m->join = mem_zalloc(m->n);
    m->join_ns = mem_array(m->n, sizeof(*m->join_ns));
    m->room_state = mem_zalloc(m->rooms);
    timer_init(&m->join_deadline, join_on_deadline, m);
    m->rounds = mem_array(o->nrates ? o->nrates : 1, sizeof(*m->rounds));
    lg_pace_init(&m->pace, loop, o->drain_s,
                 (lg_pace_hooks){.turn = muc_turn, .settled = muc_settled, .finish = muc_finish}, m);
    lg_pool_on_message(pool, muc_on_stanza, m);
    return m;
}

void lg_muc_free(lg_muc *m)
{
    if (!m)
        return;
    lg_pool_on_message(m->pool, NULL, NULL);
    evloop_timer_cancel(m->loop, &m->join_deadline);
    for (size_t i = 0; i < m->nrounds; i++) {
        free(m->rounds[i].sender);
        free(m->rounds[i].sent_ns);
        free(m->rounds[i].seen);
        lg_samples_free(&m->rounds[i].latency);
    }
    lg_samples_free(&m->join_latency);
    free(m->rounds);
    free(m->join);
    free(m->join_ns);
    free(m->room_state);
    free(m);
}

/* ---- join ------------------------------------------------------------------------------------ */

static void join_send(lg_muc *m, uint32_t u)
{
    lg_conn *c = lg_pool_conn(m->pool, u);
    m->join[u] = JOIN_SENT;
    m->join_ns[u] = lg_now_ns();
    buf b = BUF_INIT;
    lg_muc_join(&b, m->service, lg_muc_room_of(m->rooms, u), m->opt->first + u);
    lg_conn_send_stanza(c, buf_data(&b), buf_len(&b), false);
    buf_free(&b);
}

static void join_end(lg_muc *m, uint32_t u, bool ok)
{
    if (m->join[u] == JOIN_SENT && u >= m->rooms)
        m->in_flight--;
    m->join[u] = ok ? JOIN_DONE : JOIN_FAILED;
    if (ok) {
        uint64_t now = lg_now_ns();
        lg_samples_add(&m->join_latency, now - m->join_ns[u]);
        m->join_ns[u] = now;
        m->jr.joined++;
    } else {
        m->jr.failed++;
    }
    m->pending--;
    m->join_end_ns = lg_now_ns();
    if (m->joining)
        evloop_timer_after(m->loop, &m->join_deadline, (uint64_t)m->opt->timeout_s * 1000);
}

/* Starts the joins the window allows, in user order; the phase ends when none is left. */
static void join_pump(lg_muc *m)
{
    while (m->next < m->n && m->in_flight < m->opt->muc_join_concurrency) {
        uint32_t u = m->next, room = lg_muc_room_of(m->rooms, u);
        if (m->room_state[room] != ROOM_READY)
            break;   /* its room is not configured yet: wait for it (users join in order) */
        m->next++;
        if (!lg_conn_is_up(lg_pool_conn(m->pool, u))) {
            join_end(m, u, false);
            continue;
        }
        m->in_flight++;
        join_send(m, u);
    }
    if (m->joining && !m->pending) {
        m->joining = false;
        evloop_timer_cancel(m->loop, &m->join_deadline);
        evloop_stop(m->loop);
    }
}

/* A room's first join is over (or its configuration): its other users may join. */
static void room_ready(lg_muc *m, uint32_t room)
{
    m->room_state[room] = ROOM_READY;
    join_pump(m);
}

static void join_on_deadline(timer *t, void *arg)
{
    lg_muc *m = arg;
    uint32_t waiting = 0;
    for (uint32_t u = 0; u < m->n; u++)
        if (m->join[u] == JOIN_SENT) {
            m->join[u] = JOIN_FAILED;
            m->jr.failed++;
            waiting++;
        }
    m->jr.failed += m->n - m->next;   /* never sent: their rooms never got ready */
    log_warn("muc: no join ended for %u s: %u joins still waiting and %u not sent fail",
             m->opt->timeout_s, waiting, m->n - m->next);
    m->next = m->n;
    m->pending = 0;
    m->joining = false;
    evloop_stop(m->loop);
}

void lg_muc_join_all(lg_muc *m, lg_muc_join_result *res)
{
    m->jr = (lg_muc_join_result){.users = m->n, .rooms = m->rooms};
    m->pending = m->n;
    m->next = m->rooms;
    m->joining = true;
    m->join_start_ns = m->join_end_ns = lg_now_ns();
    evloop_timer_after(m->loop, &m->join_deadline, (uint64_t)m->opt->timeout_s * 1000);
    /* Creators first: room r's creator is user r; a room whose creator is down gets none (its
     * users are still sent, and fail as the server says). */
    for (uint32_t r = 0; r < m->rooms; r++) {
        if (lg_conn_is_up(lg_pool_conn(m->pool, r))) {
            m->room_state[r] = ROOM_WAITING;
            join_send(m, r);
        } else {
            join_end(m, r, false);
            m->room_state[r] = ROOM_READY;
        }
    }
    join_pump(m);
    if (m->joining)
        evloop_run(m->loop);
    *res = m->jr;
    res->seconds = (double)(m->join_end_ns - m->join_start_ns) / 1e9;
    res->latency = lg_samples_summarize(&m->join_latency);
}

static void join_on_presence(lg_muc *m, uint32_t u, const xml_node *presence)
{
    uint32_t room;
    bool created;
    const char *cond = NULL;
    lg_muc_presence_kind kind = lg_muc_parse_presence(presence, m->service, &room, &created, &cond);
    if (kind == LG_MUC_PRESENCE_OTHER || room != lg_muc_room_of(m->rooms, u) ||
        m->join[u] != JOIN_SENT)
        return;
    if (kind == LG_MUC_PRESENCE_ERROR) {
        if (m->jr.failed == 0)
            log_warn("muc: user index %" PRIu32 " cannot join room %" PRIu32 ": <%s/> (the first "
                     "refused join)", u, room, cond);
        join_end(m, u, false);
        if (u < m->rooms)
            room_ready(m, room);
        else
            join_pump(m);
        return;
    }
    join_end(m, u, true);
    if (u >= m->rooms) {
        join_pump(m);
        return;
    }
    if (!created) {
        room_ready(m, room);   /* it was there already: nothing to configure */
        return;
    }
    m->jr.created++;
    m->room_state[room] = ROOM_CONFIGURING;
    buf b = BUF_INIT;
    lg_muc_config(&b, m->service, room, m->run, m->opt->muc_max_users);
    lg_conn_send_stanza(lg_pool_conn(m->pool, u), buf_data(&b), buf_len(&b), false);
    buf_free(&b);
}

static void join_on_config_answer(lg_muc *m, const xml_node *iq, const char *type)
{
    uint32_t room;
    if (!lg_muc_parse_config_id(xml_attr_get(iq, "id"), m->run, &room) || room >= m->rooms ||
        m->room_state[room] != ROOM_CONFIGURING)
        return;
    if (strcmp(type, "result") != 0) {
        const xml_node *err = xml_child(iq, NULL, "error");
        log_warn("muc: room %" PRIu32 "'s configuration refused: <%s/>", room,
                 err ? lg_conn_condition(err, "urn:ietf:params:xml:ns:xmpp-stanzas") : "(none)");
        m->jr.config_errors++;
    }
    room_ready(m, room);
}

/* ---- rounds ---------------------------------------------------------------------------------- */

/* Joined, and up without a break since the join. */
static bool in_room(lg_muc *m, const uint64_t *last_down, uint32_t u)
{
    return m->join[u] == JOIN_DONE && last_down[u] < m->join_ns[u] &&
           lg_conn_is_up(lg_pool_conn(m->pool, u));
}

static bool muc_settled(void *ctx)
{
    const muc_round *mr = ((lg_muc *)ctx)->cur;
    return mr->res.expected == mr->res.delivered;
}

static void muc_turn(void *ctx, uint64_t k)
{
    lg_muc *m = ctx;
    muc_round *mr = m->cur;
    const uint64_t *last_down = lg_pool_last_down(m->pool);
    uint32_t sender = (uint32_t)(random_u64() % m->n);
    if (!in_room(m, last_down, sender) || !lg_conn_can_send(lg_pool_conn(m->pool, sender)) ||
        mr->sent == mr->capacity) {
        mr->res.skipped++;
        return;
    }
    uint64_t seq = mr->sent++, now = lg_now_ns();
    mr->sender[seq] = sender;
    mr->sent_ns[seq] = now;
    uint32_t room = lg_muc_room_of(m->rooms, sender);
    for (uint32_t u = room; u < m->n; u += m->rooms)
        if (in_room(m, last_down, u))
            mr->res.expected++;
    buf b = BUF_INIT;
    lg_muc_message(&b, m->service, room, m->run, mr->number, sender, seq, now);
    lg_conn_send_stanza(lg_pool_conn(m->pool, sender), buf_data(&b), buf_len(&b), true);
    buf_free(&b);
}

static void muc_finish(void *ctx)
{
    lg_muc *m = ctx;
    muc_round *mr = m->cur;
    mr->closed = true;
    mr->res.sent = mr->sent;
    mr->res.latency = lg_samples_summarize(&mr->latency);
    m->cur = NULL;
    evloop_stop(m->loop);
}

void lg_muc_rounds_run(lg_muc *m, double rate, lg_muc_result *res, double *send_seconds)
{
    muc_round *mr = &m->rounds[m->nrounds++];
    uint64_t total = (uint64_t)(rate * m->opt->round_s + 0.5);
    *mr = (muc_round){.number = (uint32_t)m->nrounds, .capacity = total};
    mr->sender = mem_array(total ? total : 1, sizeof(*mr->sender));
    mr->sent_ns = mem_array(total ? total : 1, sizeof(*mr->sent_ns));
    mr->seen = mem_zalloc((total ? total : 1) * m->slot_bytes);
    m->cur = mr;
    lg_pace_start(&m->pace, rate, m->opt->round_s);
    if (m->cur)
        evloop_run(m->loop);
    *send_seconds = lg_pace_send_seconds(&m->pace);
    *res = mr->res;
}

static muc_round *muc_find(lg_muc *m, uint32_t number)
{
    return number >= 1 && number <= m->nrounds ? &m->rounds[number - 1] : NULL;
}

/* A message of ours bounced to its sender. */
static void muc_on_error(lg_muc *m, const xml_node *message)
{
    uint32_t number;
    uint64_t seq;
    if (!lg_muc_parse_id(xml_attr_get(message, "id"), m->run, &number, &seq))
        return;
    muc_round *mr = muc_find(m, number);
    if (!mr || seq >= mr->sent || mr->closed)
        return;
    const xml_node *err = xml_child(message, NULL, "error");
    if (mr->res.errored++ == 0)
        log_warn("groupchat message refused: <%s/> (the first of round %" PRIu32 ")",
                 err ? lg_conn_condition(err, "urn:ietf:params:xml:ns:xmpp-stanzas") : "(none)",
                 mr->number);
}

static void muc_on_message(lg_muc *m, uint32_t receiver, const xml_node *stanza, xml_arena *arena)
{
    uint64_t now = lg_now_ns();
    const char *type = xml_attr_get(stanza, "type");
    if (type && strcmp(type, "error") == 0) {
        muc_on_error(m, stanza);
        return;
    }
    lg_muc_item it;
    switch (lg_muc_parse_message(stanza, arena, m->run, &it)) {
    case LG_MUC_NOT_OURS:
        return;
    case LG_MUC_FOREIGN:
        m->foreign++;
        return;
    case LG_MUC_MESSAGE:
        break;
    }
    muc_round *mr = muc_find(m, it.round);
    if (!mr || it.seq >= mr->sent || mr->sender[it.seq] != it.sender ||
        mr->sent_ns[it.seq] != it.t_ns) {
        m->unknown++;
        return;
    }
    if (lg_muc_room_of(m->rooms, receiver) != lg_muc_room_of(m->rooms, it.sender)) {
        if (!mr->closed && mr->res.misrouted++ == 0)
            log_warn("user index %" PRIu32 " got a message of room %" PRIu32 ", not its room",
                     receiver, lg_muc_room_of(m->rooms, it.sender));
        return;
    }
    if (m->join[receiver] != JOIN_DONE) {
        if (!mr->closed)
            mr->res.unexpected++;
        return;
    }
    uint32_t slot = lg_muc_slot_of(m->rooms, receiver);
    uint8_t *seen = mr->seen + it.seq * m->slot_bytes;
    uint8_t bit = (uint8_t)(1u << (slot % 8));
    if (seen[slot / 8] & bit) {
        if (!mr->closed && mr->res.dup++ == 0)
            log_notice("user index %" PRIu32 " got message %" PRIu64 " twice (the first duplicate "
                       "of round %" PRIu32 ")", receiver, it.seq, mr->number);
        return;
    }
    seen[slot / 8] |= bit;
    if (mr->closed) {
        mr->late++;
        return;
    }
    mr->res.delivered++;
    lg_samples_add(&mr->latency, now - it.t_ns);
    if (m->cur == mr)
        lg_pace_check(&m->pace);
}

static void muc_on_stanza(void *ctx, uint32_t receiver, const xml_node *stanza, xml_arena *arena)
{
    lg_muc *m = ctx;
    if (strcmp(stanza->name, "presence") == 0) {
        join_on_presence(m, receiver, stanza);
    } else if (strcmp(stanza->name, "iq") == 0) {
        const char *type = xml_attr_get(stanza, "type");
        if (type)
            join_on_config_answer(m, stanza, type);
    } else {
        muc_on_message(m, receiver, stanza, arena);
    }
}

void lg_muc_log_extras(const lg_muc *m)
{
    for (size_t i = 0; i < m->nrounds; i++)
        if (m->rounds[i].late)
            log_notice("muc round %" PRIu32 ": %" PRIu64 " deliveries after its close",
                       m->rounds[i].number, m->rounds[i].late);
    if (m->foreign || m->unknown)
        log_notice("muc: %" PRIu64 " groupchat messages not of this run; %" PRIu64 " of this run "
                   "matching no message sent", m->foreign, m->unknown);
}
