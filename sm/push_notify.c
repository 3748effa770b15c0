/* sm/push_notify.c — XEP-0357's notifications: which messages are pushed, the <publish/> each
 * registration's app server gets (§7: a urn:xmpp:push:summary form with the count of messages
 * missed and the last sender, the body only with <include_body/>; the client's publish-options),
 * sent from the account's bare JID through the SM's routing (a component, a local JID, or
 * federation), and the app servers' answers: an error that says the registration is gone
 * disables it, as Prosody's mod_cloud_notify does.
 *
 * Rate: a flight per (account, registration) says when its last notification went and whether
 * the app server has answered. While it has not (for at most push/timeout seconds), and for
 * push/interval seconds after it was sent, further messages only add to the count the next
 * notification carries. Flights are bounded: every one waiting holds one of the SM's iq requests
 * (SM_IQ_OUT_MAX), and at most PUSH_FLIGHTS_MAX exist; past it, nothing is sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/utf8.h"
#include "sm/iq_out.h"
#include "sm/push.h"

#define PUSH_FLIGHTS_MAX (4 * SM_IQ_OUT_MAX)
#define NS_OMEMO_LEGACY "eu.siacs.conversations.axolotl"
#define NS_OMEMO "urn:xmpp:omemo:2"
#define NS_OX "urn:xmpp:openpgp:0"
#define NS_JMI "urn:xmpp:jingle-message:0"

typedef struct push_flight {
    char *id;               /* its key in the flights: "ACCOUNT\nKEY" */
    char *account, *key;    /* the account's bare JID, the registration's key */
    int64_t sent_ms;        /* sm_now_ms when the last notification went */
    bool waiting;           /* for the app server's answer */
} push_flight;

void push_notify_init(push_data *d) { sm_map_init(&d->flights); }

static void flight_free(void *val, void *ctx)
{
    push_flight *f = val;
    free(f->id);
    free(f->account);
    free(f->key);
    free(f);
}

void push_notify_free(push_data *d)
{
    sm_map_each(&d->flights, flight_free, NULL);
    sm_map_free(&d->flights);
}

void push_notify_tick(sm *s)
{
    push_data *d = push_data_of(s);
    int64_t interval = push_option(s, "push/interval") * 1000;
    void **all = sm_map_values(&d->flights);
    for (size_t i = 0, n = sm_map_count(&d->flights); i < n; i++) {
        push_flight *f = all[i];
        if (!f->waiting && sm_now_ms(s) - f->sent_ms >= interval) {
            sm_map_del(&d->flights, f->id, strlen(f->id));
            flight_free(f, NULL);
        }
    }
    free(all);
}

/* ---- which messages ---- */

/* What a phone should wake for (XEP-0357 §7 leaves it to the server; Conversations needs these):
 * a body, an encrypted payload (OMEMO, whose fallback body may be absent; OpenPGP for XMPP), a
 * call proposal (XEP-0353). Chat and normal messages only: groupchat reaches a session that is
 * in the room, headlines and errors are not conversations. */
static bool important(const sm_stanza *st)
{
    sm_msg_kind kind = sm_message_kind(st);
    const xml_node *m = st->node;
    if (kind != SM_MSG_CHAT && kind != SM_MSG_NORMAL)
        return false;
    return xml_child(m, SM_NS_CLIENT, "body") || xml_child(m, NS_OMEMO_LEGACY, "encrypted") ||
           xml_child(m, NS_OMEMO, "encrypted") || xml_child(m, NS_OX, "openpgp") ||
           xml_child(m, NS_JMI, "propose");
}

/* Whether the router would hand st to an attached session of u (sm/route.c's route_message:
 * a full JID's own session, else the available sessions of non-negative priority at the top one,
 * only the first of them for a normal message). */
static bool reaches_active(sm *s, const sm_user *u, const sm_stanza *st)
{
    if (!jid_is_bare(&st->to)) {
        sm_session *sess = sm_session_find(s, &st->to);
        if (sess)
            return !sm_session_detached(sess);
    }
    int top = -1;
    for (const sm_session *x = u->sessions; x; x = x->next)
        if (x->available && x->priority >= 0 && x->priority > top)
            top = x->priority;
    for (const sm_session *x = u->sessions; x && top >= 0; x = x->next) {
        if (!x->available || x->priority != top)
            continue;
        if (!sm_session_detached(x))
            return true;
        if (sm_message_kind(st) == SM_MSG_NORMAL)
            break;
    }
    return false;
}

bool push_wanted(sm *s, const sm_user *u, const sm_stanza *st)
{
    return important(st) && !reaches_active(s, u, st);
}

/* ---- the notification ---- */

static void field(xml_arena *a, xml_node *x, const char *var, const char *value)
{
    xml_node *f = xml_element_new(a, x, NS_XDATA, "field");
    xml_attr_set(a, f, NULL, "var", var);
    xml_node *v = xml_element_new(a, f, NS_XDATA, "value");
    xml_text_new(a, v, value, strlen(value));
}

/* <pubsub><publish node><item><notification><x/>...</pubsub> for registration r of u. */
static xml_node *notification(sm *s, xml_arena *a, const push_user *pu, const push_reg *r,
                              const sm_stanza *st)
{
    xml_node *ps = xml_element_new(a, NULL, NS_PUBSUB, "pubsub");
    xml_node *pub = xml_element_new(a, ps, NS_PUBSUB, "publish");
    xml_attr_set(a, pub, NULL, "node", r->node);
    xml_node *item = xml_element_new(a, pub, NS_PUBSUB, "item");
    xml_node *n = xml_element_new(a, item, NS_PUSH, "notification");
    xml_node *x = xml_element_new(a, n, NS_XDATA, "x");
    xml_attr_set(a, x, NULL, "type", "submit");
    field(a, x, "FORM_TYPE", "urn:xmpp:push:summary");
    char count[16];
    snprintf(count, sizeof count, "%u", (unsigned)pu->count);
    field(a, x, "message-count", count);
    if (st->from.domain_len)
        field(a, x, "last-message-sender", jid_full(&st->from));
    const xml_node *body = xml_child(st->node, SM_NS_CLIENT, "body");
    if (body && push_data_of(s)->include_body) {
        const char *text = xml_text(a, body);
        size_t len = utf8_cut(text, strlen(text), (size_t)push_option(s, "push/body_max"));
        field(a, x, "last-message-body", xml_arena_strndup(a, text, len));
    }
    if (r->form)
        xml_node_copy(a, xml_element_new(a, ps, NS_PUBSUB, "publish-options"), r->form);
    return ps;
}

/* Whether an app server's error says the registration is gone (cancel or auth), rather than that
 * the app server could not be reached or is busy (remote-server-*, wait, modify). */
static bool error_disables(const sm_stanza *reply)
{
    if (strcmp(sm_stanza_type(reply), "error") != 0)
        return false;
    const xml_node *err = xml_child(reply->node, SM_NS_CLIENT, "error");
    const char *type = err ? xml_attr_get(err, "type") : NULL;
    const xml_node *cond = err ? xml_child(err, SM_NS_STANZAS, NULL) : NULL;
    if (!type || (strcmp(type, "cancel") != 0 && strcmp(type, "auth") != 0))
        return false;
    return !cond || (strcmp(cond->name, "remote-server-not-found") != 0 &&
                     strcmp(cond->name, "remote-server-timeout") != 0);
}

static void answered(sm *s, const sm_stanza *reply, void *ctx)
{
    push_flight *f = ctx;
    push_answer a = !reply                                       ? PUSH_UNANSWERED
                    : strcmp(sm_stanza_type(reply), "error") != 0 ? PUSH_ACCEPTED
                    : error_disables(reply)                       ? PUSH_DISABLED
                                                                  : PUSH_REFUSED;
    push_data_of(s)->answers[a]++;
    f->waiting = false;
    if (a == PUSH_DISABLED)
        push_disable(s, f->account, f->key);
}

/* The flight of registration key of account, made when absent; NULL when it must not send now
 * (waiting, within the interval, or too many flights). */
static push_flight *flight_for(sm *s, const char *account, const char *key)
{
    push_data *d = push_data_of(s);
    buf id = BUF_INIT;
    buf_appendf(&id, "%s\n%s", account, key);
    push_flight *f = sm_map_get(&d->flights, buf_data(&id), buf_len(&id));
    if (f && (f->waiting || sm_now_ms(s) - f->sent_ms < push_option(s, "push/interval") * 1000)) {
        f = NULL;
        d->results[PUSH_LIMITED]++;
    } else if (!f && sm_map_count(&d->flights) >= PUSH_FLIGHTS_MAX) {
        d->results[PUSH_SKIPPED]++;
    } else if (!f) {
        f = mem_zalloc(sizeof *f);
        f->id = mem_strndup(buf_data(&id), buf_len(&id));
        f->account = mem_strdup(account);
        f->key = mem_strdup(key);
        sm_map_put(&d->flights, f->id, buf_len(&id), f);
    }
    buf_free(&id);
    return f;
}

void push_notify(sm *s, sm_user *u, const sm_stanza *st)
{
    push_user *pu = sm_user_state(s, u, &mod_push);
    char account[JID_MAX_LEN + 1];
    jid_bare_to_string(&u->jid, account, sizeof account);
    /* Built first, sent after: an answer can come at once (an unroutable JID) and disable a
     * registration, changing pu->regs. */
    size_t n = 0;
    jid to[PUSH_REGS_HARD_MAX];
    xml_node *payload[PUSH_REGS_HARD_MAX];
    push_flight *flight[PUSH_REGS_HARD_MAX];
    xml_arena *a = xml_arena_new(2048);
    for (size_t i = 0; i < pu->nregs && n < PUSH_REGS_HARD_MAX; i++) {
        const push_reg *r = &pu->regs[i];
        push_flight *f = flight_for(s, account, r->key);
        if (!f || jid_parse(r->jid, strlen(r->jid), &to[n]) != JID_OK)
            continue;
        payload[n] = notification(s, a, pu, r, st);
        flight[n++] = f;
    }
    int timeout = (int)push_option(s, "push/timeout");
    for (size_t i = 0; i < n; i++) {
        flight[i]->sent_ms = sm_now_ms(s);
        flight[i]->waiting = true;
        bool sent = sm_iq_request(s, "set", account, &to[i], payload[i], timeout, answered,
                                  flight[i]);
        if (!sent)
            flight[i]->waiting = false;
        push_data_of(s)->results[sent ? PUSH_SENT : PUSH_SKIPPED]++;
        jid_free(&to[i]);
    }
    xml_arena_free(a);
}

/* One counter family with a sample per result label. */
static void counters(buf *out, const char *name, const char *help, const char *const *labels,
                     const uint64_t *values, int n)
{
    metrics_family(out, name, "counter", help);
    for (int i = 0; i < n; i++) {
        char l[32];
        snprintf(l, sizeof l, "result=\"%s\"", labels[i]);
        metrics_sample(out, name, l, values[i]);
    }
}

void push_notify_metrics(sm *s, buf *out)
{
    static const char *const results[PUSH_RESULTS] = {"sent", "limited", "skipped"};
    static const char *const answers[PUSH_ANSWERS] = {"accepted", "refused", "disabled",
                                                      "unanswered"};
    push_data *d = push_data_of(s);
    counters(out, "jabshard_sm_push_notifications_total",
             "Push notifications (XEP-0357) sent to app servers, held back by the rate bound "
             "(limited: counted for the next one), or skipped (too many waiting).",
             results, d->results, PUSH_RESULTS);
    counters(out, "jabshard_sm_push_answers_total",
             "App servers' answers to push notifications: accepted, refused (an error that keeps "
             "the registration), disabled (one that removed it), unanswered (push/timeout "
             "passed).", answers, d->answers, PUSH_ANSWERS);
}
