/* tests/bench/loadgen/lg_rounds.c — sending, receiving and accounting message rounds (see
 * lg_rounds.h). */
#include "tests/bench/loadgen/lg_rounds.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "tests/bench/loadgen/lg_fed.h"
#include "tests/bench/loadgen/lg_report.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define LG_RUN_LEN 8
/* Stanza error conditions logged once each; more distinct ones are logged every time. */
#define LG_CONDITIONS 32

struct lg_rounds {
    const lg_options *opt;
    evloop *loop;
    lg_pool *pool;
    uint32_t n;
    char run[LG_RUN_LEN + 1];

    lg_round *rounds;          /* every round so far: late arrivals still find theirs */
    size_t nrounds;
    lg_round *cur;             /* the round being sent or drained, NULL between rounds */
    lg_pace pace;
    lg_round_result *res;      /* where the current round's result goes */
    timer second;

    /* Tick lines: counts since the last one, and the time they are measured from. */
    uint64_t first_start_ns;
    uint64_t sec_sent, sec_received, sec_errored, reconnects_seen;
    uint64_t sec_worst_ns;     /* the slowest arrival since the last tick line */

    /* Arrivals outside every round's figures, for lg_rounds_log_extras. */
    uint64_t foreign, unknown, malformed;
    char *conditions[LG_CONDITIONS];
};

static void rounds_on_message(void *ctx, uint32_t receiver, const xml_node *stanza,
                              xml_arena *arena);
static void rounds_turn(void *ctx, uint64_t k);
static bool rounds_settled(void *ctx);
static void rounds_finish(void *ctx);
static void rounds_on_second(timer *t, void *arg);

lg_rounds *lg_rounds_new(const lg_options *o, evloop *loop, lg_pool *pool)
{
    lg_rounds *r = mem_zalloc(sizeof(*r));
    r->opt = o;
    r->loop = loop;
    r->pool = pool;
    r->n = lg_pool_users(pool);
    random_token(r->run, LG_RUN_LEN);
    r->rounds = mem_array(o->nrates ? o->nrates : 1, sizeof(*r->rounds));
    lg_pace_init(&r->pace, loop, o->drain_s,
                 (lg_pace_hooks){.turn = rounds_turn, .settled = rounds_settled,
                                 .finish = rounds_finish}, r);
    timer_init(&r->second, rounds_on_second, r);
    lg_pool_on_message(pool, rounds_on_message, r);
    return r;
}

void lg_rounds_free(lg_rounds *r)
{
    if (!r)
        return;
    lg_pool_on_message(r->pool, NULL, NULL);
    for (size_t i = 0; i < r->nrounds; i++)
        lg_round_free(&r->rounds[i]);
    for (int i = 0; i < LG_CONDITIONS; i++)
        free(r->conditions[i]);
    free(r->rounds);
    free(r);
}

/* Sending turn k: sender k mod N (N/2 in federation mode, lg_fed.h) writes one message, or the
 * turn is skipped. */
static void rounds_turn(void *ctx, uint64_t k)
{
    lg_rounds *r = ctx;
    uint32_t sender = (uint32_t)(k % lg_fed_senders(r->opt));
    uint32_t receiver = lg_fed_receiver(r->opt, sender);
    lg_conn *c = lg_pool_conn(r->pool, sender);
    if (!lg_conn_can_send(c)) {
        lg_round_skip(r->cur);
        return;
    }
    uint64_t now = lg_now_ns();
    uint64_t seq = lg_round_send(r->cur, sender, receiver,
                                 lg_conn_is_up(lg_pool_conn(r->pool, receiver)), now);
    char user[256], msg[640];
    if (lg_options_format(r->opt->user_format, r->opt->first + receiver, user, sizeof(user)) < 0)
        user[0] = '\0';
    int len = snprintf(msg, sizeof(msg),
                       "<message to='%s@%s' type='chat' id='%s-%" PRIu32 "-%" PRIu64 "'><body>lg %"
                       PRIu32 " %" PRIu32 " %" PRIu64 " %" PRIu64 "</body></message>",
                       user, lg_fed_domain(r->opt, receiver), r->run, r->cur->number, seq,
                       r->cur->number, sender, seq, now);
    r->sec_sent++;
    lg_conn_send_stanza(c, msg, (size_t)len, true);
}

/* Ends the round (the pace's timers are stopped): the result is taken now (later arrivals are
 * late), the loop stops. */
static void rounds_finish(void *ctx)
{
    lg_rounds *r = ctx;
    evloop_timer_cancel(r->loop, &r->second);
    lg_round_close(r->cur, lg_pool_last_down(r->pool), r->res);
    r->cur = NULL;
    evloop_stop(r->loop);
}

static bool rounds_settled(void *ctx)
{
    lg_rounds *r = ctx;
    return lg_round_outstanding(r->cur) == 0;
}

static void rounds_maybe_drained(lg_rounds *r)
{
    if (r->cur)
        lg_pace_check(&r->pace);
}

static void rounds_on_second(timer *t, void *arg)
{
    lg_rounds *r = arg;
    uint64_t now = lg_now_ns();
    uint64_t reconnects = lg_pool_reconnects(r->pool);
    lg_report_tick((now - r->first_start_ns + 500000000u) / 1000000000u, lg_pool_connected(r->pool),
                   r->sec_sent, r->sec_received, r->sec_errored, reconnects - r->reconnects_seen,
                   (double)r->sec_worst_ns / 1e6);
    r->sec_sent = r->sec_received = r->sec_errored = r->sec_worst_ns = 0;
    r->reconnects_seen = reconnects;
    evloop_timer_after(r->loop, &r->second, 1000);
}

void lg_rounds_run(lg_rounds *r, double rate, lg_round_result *res, double *send_seconds)
{
    lg_round *round = &r->rounds[r->nrounds++];
    lg_round_init(round, (uint32_t)r->nrounds, (uint64_t)(rate * r->opt->round_s + 0.5));
    r->cur = round;
    r->res = res;
    if (!r->first_start_ns) {
        r->first_start_ns = lg_now_ns();
        r->reconnects_seen = lg_pool_reconnects(r->pool);
    }
    evloop_timer_after(r->loop, &r->second, 1000);
    lg_pace_start(&r->pace, rate, r->opt->round_s);
    if (r->cur)
        evloop_run(r->loop);
    *send_seconds = lg_pace_send_seconds(&r->pace);
}

/* Logs a stanza error condition the first time it is seen. */
static void rounds_condition(lg_rounds *r, const char *condition, uint32_t sender)
{
    for (int i = 0; i < LG_CONDITIONS; i++) {
        if (r->conditions[i] && strcmp(r->conditions[i], condition) == 0)
            return;
        if (!r->conditions[i]) {
            r->conditions[i] = mem_strdup(condition);
            break;
        }
    }
    log_warn("message error <%s/> (first seen for sender %" PRIu32 ")", condition, sender);
}

/* "RUN-ROUND-SEQ" with our RUN: fills round and seq. */
static bool rounds_parse_id(const lg_rounds *r, const char *id, uint32_t *round, uint64_t *seq)
{
    char tail;
    if (!id || strncmp(id, r->run, LG_RUN_LEN) != 0 || id[LG_RUN_LEN] != '-')
        return false;
    return sscanf(id + LG_RUN_LEN + 1, "%" SCNu32 "-%" SCNu64 "%c", round, seq, &tail) == 2;
}

static lg_round *rounds_find(lg_rounds *r, uint32_t number)
{
    return number >= 1 && number <= r->nrounds ? &r->rounds[number - 1] : NULL;
}

static void rounds_on_message(void *ctx, uint32_t receiver, const xml_node *stanza,
                              xml_arena *arena)
{
    lg_rounds *r = ctx;
    uint64_t now = lg_now_ns();
    const char *type = xml_attr_get(stanza, "type");
    if (strcmp(stanza->name, "message") != 0)
        return;   /* an iq answer: message rounds send no requests */
    uint32_t id_round;
    uint64_t id_seq;
    if (!rounds_parse_id(r, xml_attr_get(stanza, "id"), &id_round, &id_seq)) {
        /* Offline messages of an earlier run, or anything else a server may send. */
        if (r->foreign++ == 0)
            log_notice("a message that is not this run's arrived for user index %" PRIu32
                       " (offline storage of an earlier run?)", receiver);
        return;
    }
    lg_round *round = rounds_find(r, id_round);
    if (type && strcmp(type, "error") == 0) {
        const xml_node *err = xml_child(stanza, NULL, "error");
        rounds_condition(r, err ? lg_conn_condition(err, NS_STANZAS) : "(no error element)",
                         receiver);
        lg_arrival a = round ? lg_round_bounce(round, id_seq, receiver) : LG_ARRIVAL_UNKNOWN;
        if (a == LG_ARRIVAL_OK)
            r->sec_errored++;
        else if (a == LG_ARRIVAL_UNKNOWN)
            r->unknown++;
        rounds_maybe_drained(r);
        return;
    }
    const xml_node *body = xml_child(stanza, NULL, "body");
    uint32_t b_round, b_sender;
    uint64_t b_seq, t_ns;
    char tail;
    if (!body || sscanf(xml_text(arena, body), "lg %" SCNu32 " %" SCNu32 " %" SCNu64 " %" SCNu64 "%c",
                        &b_round, &b_sender, &b_seq, &t_ns, &tail) != 4 ||
        b_round != id_round || b_seq != id_seq) {
        if (r->malformed++ == 0)
            log_warn("a message of this run with a body that does not match its id arrived for "
                     "user index %" PRIu32, receiver);
        return;
    }
    lg_arrival a = round ? lg_round_deliver(round, b_seq, b_sender, receiver, t_ns, now)
                         : LG_ARRIVAL_UNKNOWN;
    switch (a) {
    case LG_ARRIVAL_OK:
        r->sec_received++;
        if (now - t_ns > r->sec_worst_ns)
            r->sec_worst_ns = now - t_ns;
        rounds_maybe_drained(r);
        break;
    case LG_ARRIVAL_DUP:
        log_warn("duplicate: round %" PRIu32 " message %" PRIu64 " from user index %" PRIu32
                 " arrived again", b_round, b_seq, b_sender);
        break;
    case LG_ARRIVAL_UNKNOWN:
        r->unknown++;
        log_warn("round %" PRIu32 " message %" PRIu64 " from user index %" PRIu32
                 " arrived at user index %" PRIu32 " but was not sent so (misrouted?)",
                 b_round, b_seq, b_sender, receiver);
        break;
    default:
        break;   /* late or conflicting: counted in the round, reported at the end */
    }
}

void lg_rounds_log_extras(const lg_rounds *r)
{
    for (size_t i = 0; i < r->nrounds; i++) {
        const lg_round *round = &r->rounds[i];
        if (round->late || round->late_dup || round->conflicts)
            log_notice("round %" PRIu32 ": after its close %" PRIu64 " late deliveries and %"
                       PRIu64 " late duplicates; %" PRIu64 " conflicting outcomes",
                       round->number, round->late, round->late_dup, round->conflicts);
    }
    if (r->foreign || r->unknown || r->malformed)
        log_notice("messages not of this run: %" PRIu64 "; of this run but unknown or misrouted: %"
                   PRIu64 "; with a body not matching the id: %" PRIu64,
                   r->foreign, r->unknown, r->malformed);
}
