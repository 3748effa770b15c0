/* tests/bench/loadgen/lg_pep_rounds.c — publishing, counting notifications and publish answers
 * (see lg_pep_rounds.h).
 *
 * Each round keeps one entry per publish: publisher, send time, whether its answer came, and a
 * bitmap of the K + 1 ring slots (its contacts and itself) already notified, so a duplicate is told
 * from a first arrival exactly. */
#include "tests/bench/loadgen/lg_pep_rounds.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "tests/bench/loadgen/lg_pep.h"
#include "tests/bench/loadgen/lg_report.h"

enum { ANSWER_NONE, ANSWER_OK, ANSWER_ERROR };

typedef struct pep_round {
    uint32_t number;
    uint64_t capacity, sent;
    bool closed;
    uint32_t *publisher;
    uint64_t *sent_ns;
    uint8_t *answer;          /* per publish: ANSWER_* */
    uint8_t *seen;            /* per publish: slot_bytes bytes of notified slots */
    lg_pep_result res;
    lg_samples latency, answer_latency;
    uint64_t answered, late;
} pep_round;

struct lg_pep_rounds {
    const lg_options *opt;
    evloop *loop;
    lg_pool *pool;
    uint32_t n, k;
    size_t slot_bytes;
    char run[LG_PEP_RUN_LEN + 1];
    pep_round *rounds;
    size_t nrounds;
    pep_round *cur;
    lg_pace pace;
    uint64_t foreign, unknown, conflicts;
};

static void pep_on_message(void *ctx, uint32_t receiver, const xml_node *stanza, xml_arena *arena);
static void pep_turn(void *ctx, uint64_t k);
static bool pep_settled(void *ctx);
static void pep_finish(void *ctx);

lg_pep_rounds *lg_pep_rounds_new(const lg_options *o, evloop *loop, lg_pool *pool)
{
    lg_pep_rounds *r = mem_zalloc(sizeof(*r));
    r->opt = o;
    r->loop = loop;
    r->pool = pool;
    r->n = lg_pool_users(pool);
    r->k = o->pep_contacts;
    r->slot_bytes = (r->k + 1 + 7) / 8;
    random_token(r->run, LG_PEP_RUN_LEN);
    r->rounds = mem_array(o->nrates ? o->nrates : 1, sizeof(*r->rounds));
    lg_pace_init(&r->pace, loop, o->drain_s,
                 (lg_pace_hooks){.turn = pep_turn, .settled = pep_settled, .finish = pep_finish}, r);
    lg_pool_on_message(pool, pep_on_message, r);
    return r;
}

void lg_pep_rounds_free(lg_pep_rounds *r)
{
    if (!r)
        return;
    lg_pool_on_message(r->pool, NULL, NULL);
    for (size_t i = 0; i < r->nrounds; i++) {
        pep_round *pr = &r->rounds[i];
        free(pr->publisher);
        free(pr->sent_ns);
        free(pr->answer);
        free(pr->seen);
        lg_samples_free(&pr->latency);
        lg_samples_free(&pr->answer_latency);
    }
    free(r->rounds);
    free(r);
}

/* Every publish answered, every expected notification arrived. */
static bool pep_settled(void *ctx)
{
    const pep_round *pr = ((lg_pep_rounds *)ctx)->cur;
    return pr->sent == pr->answered && pr->res.expected == pr->res.notified;
}

/* A turn: a random user publishes, or the turn is skipped. */
static void pep_turn(void *ctx, uint64_t k)
{
    lg_pep_rounds *r = ctx;
    pep_round *pr = r->cur;
    uint32_t publisher = (uint32_t)(random_u64() % r->n);
    lg_conn *c = lg_pool_conn(r->pool, publisher);
    if (!lg_conn_can_send(c) || pr->sent == pr->capacity) {
        pr->res.skipped++;
        return;
    }
    uint64_t seq = pr->sent++, now = lg_now_ns();
    pr->publisher[seq] = publisher;
    pr->sent_ns[seq] = now;
    for (uint32_t s = 0; s < r->k; s++)
        if (lg_conn_is_up(lg_pool_conn(r->pool, lg_pep_contact(r->n, r->k, publisher, s))))
            pr->res.expected++;
    buf b = BUF_INIT;
    lg_pep_publish(&b, r->run, pr->number, publisher, seq, now);
    lg_conn_send_stanza(c, buf_data(&b), buf_len(&b), false);
    buf_free(&b);
}

/* The round is over (the pace's timers are stopped): its figures are taken now. */
static void pep_finish(void *ctx)
{
    lg_pep_rounds *r = ctx;
    pep_round *pr = r->cur;
    pr->closed = true;
    pr->res.published = pr->sent;
    pr->res.latency = lg_samples_summarize(&pr->latency);
    pr->res.answer = lg_samples_summarize(&pr->answer_latency);
    r->cur = NULL;
    evloop_stop(r->loop);
}

static void pep_maybe_drained(lg_pep_rounds *r)
{
    if (r->cur)
        lg_pace_check(&r->pace);
}

void lg_pep_rounds_run(lg_pep_rounds *r, double rate, lg_pep_result *res, double *send_seconds)
{
    pep_round *pr = &r->rounds[r->nrounds++];
    uint64_t total = (uint64_t)(rate * r->opt->round_s + 0.5);
    *pr = (pep_round){.number = (uint32_t)r->nrounds, .capacity = total};
    pr->publisher = mem_array(total ? total : 1, sizeof(*pr->publisher));
    pr->sent_ns = mem_array(total ? total : 1, sizeof(*pr->sent_ns));
    pr->answer = mem_zalloc(total ? total : 1);
    pr->seen = mem_zalloc((total ? total : 1) * r->slot_bytes);
    r->cur = pr;
    lg_pace_start(&r->pace, rate, r->opt->round_s);
    if (r->cur)
        evloop_run(r->loop);
    *send_seconds = lg_pace_send_seconds(&r->pace);
    *res = pr->res;
}

static pep_round *pep_find(lg_pep_rounds *r, uint32_t number)
{
    return number >= 1 && number <= r->nrounds ? &r->rounds[number - 1] : NULL;
}

/* The answer to a publish: an iq result or error with our id. */
static void pep_on_answer(lg_pep_rounds *r, const xml_node *iq, const char *type)
{
    uint32_t number;
    uint64_t seq;
    if (!lg_pep_parse_id(xml_attr_get(iq, "id"), r->run, &number, &seq))
        return;   /* not a publish of ours (a result to something else) */
    pep_round *pr = pep_find(r, number);
    if (!pr || seq >= pr->sent) {
        r->unknown++;
        return;
    }
    if (pr->answer[seq] != ANSWER_NONE) {
        r->conflicts++;
        return;
    }
    bool ok = strcmp(type, "result") == 0;
    pr->answer[seq] = ok ? ANSWER_OK : ANSWER_ERROR;
    if (pr->closed)
        return;
    pr->answered++;
    if (ok) {
        pr->res.ok++;
        lg_samples_add(&pr->answer_latency, lg_now_ns() - pr->sent_ns[seq]);
    } else {
        const xml_node *err = xml_child(iq, NULL, "error");
        if (pr->res.errors++ == 0)
            log_warn("publish refused: <%s/> (first of round %" PRIu32 ")",
                     err ? lg_conn_condition(err, "urn:ietf:params:xml:ns:xmpp-stanzas") : "(none)",
                     pr->number);
    }
    pep_maybe_drained(r);
}

static void pep_on_message(void *ctx, uint32_t receiver, const xml_node *stanza, xml_arena *arena)
{
    lg_pep_rounds *r = ctx;
    uint64_t now = lg_now_ns();
    const char *type = xml_attr_get(stanza, "type");
    if (strcmp(stanza->name, "iq") == 0) {
        if (type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0))
            pep_on_answer(r, stanza, type);
        return;
    }
    lg_pep_item it;
    switch (lg_pep_parse_event(stanza, arena, r->run, &it)) {
    case LG_PEP_NOT_EVENT:
        return;
    case LG_PEP_FOREIGN:
        r->foreign++;
        return;
    case LG_PEP_EVENT:
        break;
    }
    pep_round *pr = pep_find(r, it.round);
    if (!pr || it.seq >= pr->sent || pr->publisher[it.seq] != it.publisher ||
        pr->sent_ns[it.seq] != it.t_ns) {
        r->unknown++;
        return;
    }
    int slot = lg_pep_contact_slot(r->n, r->k, it.publisher, receiver);
    if (slot < 0) {
        if (!pr->closed && pr->res.misrouted++ == 0)
            log_warn("user index %" PRIu32 " got user index %" PRIu32 "'s item but is no contact "
                     "of it", receiver, it.publisher);
        return;
    }
    uint8_t *seen = pr->seen + it.seq * r->slot_bytes;
    uint8_t bit = (uint8_t)(1u << (slot % 8));
    if (seen[slot / 8] & bit) {
        if (pr->closed)
            return;
        if ((uint32_t)slot == r->k)
            pr->res.self_dup++;
        else if (pr->res.dup++ == 0)
            log_notice("user index %" PRIu32 " got user index %" PRIu32 "'s item %" PRIu64
                       " twice (the first duplicate of round %" PRIu32 ")", receiver, it.publisher,
                       it.seq, pr->number);
        return;
    }
    seen[slot / 8] |= bit;
    if (pr->closed) {
        pr->late++;
        return;
    }
    if ((uint32_t)slot == r->k) {
        pr->res.self++;
        return;
    }
    pr->res.notified++;
    lg_samples_add(&pr->latency, now - it.t_ns);
    pep_maybe_drained(r);
}

void lg_pep_rounds_log_extras(const lg_pep_rounds *r)
{
    for (size_t i = 0; i < r->nrounds; i++)
        if (r->rounds[i].late)
            log_notice("pep round %" PRIu32 ": %" PRIu64 " notifications after its close",
                       r->rounds[i].number, r->rounds[i].late);
    if (r->foreign || r->unknown || r->conflicts)
        log_notice("pep: %" PRIu64 " notifications of the node not of this run; %" PRIu64
                   " notifications or answers of this run matching no publish; %" PRIu64
                   " second answers to a publish", r->foreign, r->unknown, r->conflicts);
}
