/* tests/bench/loadgen/lg_pool.c — the users' connections, the login queue, warm-up and
 * reconnection (see lg_pool.h). */
#include "tests/bench/loadgen/lg_pool.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

/* Distinct failure reasons kept for the summary after a phase; further ones are only logged. */
#define LG_POOL_REASONS 16

typedef enum { PHASE_IDLE, PHASE_WARMUP, PHASE_LOGIN, PHASE_RUN } lg_phase;

typedef struct lg_member {
    lg_conn conn;
    timer retry;             /* --reconnect delay after a drop or a failed re-login */
    bool reconnecting;       /* it had logged in before: failures are retried, not final */
    bool cut;                /* being cut by lg_pool_cut: its drop follows cut_return_ms */
    bool storm;              /* cut: it comes back on its own, not through the queue */
    bool start_now;          /* cut with a return of 0 ms: lg_pool_cut starts it when done */
    struct lg_pool *pool;
} lg_member;

typedef struct lg_reason {
    char *text;
    uint32_t count;
} lg_reason;

struct lg_pool {
    lg_env *env;
    uint32_t n;
    lg_member *members;
    uint32_t *queue;         /* FIFO ring of user indexes waiting to start; each at most once */
    uint32_t queue_head, queue_count;
    uint32_t in_flight;
    bool pumping;
    lg_phase phase;
    uint32_t phase_done;     /* users finished in the current warm-up or login phase */
    bool phase_stopped;      /* evloop_stop was called for the phase */
    uint32_t warm_ok, warm_failed;
    uint32_t login_ok, login_failed;
    uint64_t login_start_ns, login_end_ns;
    lg_samples login_latency;
    uint32_t connected;
    uint64_t drops, reconnects;
    uint64_t *last_down_ns;
    lg_reason reasons[LG_POOL_REASONS];
    int cut_return_ms;       /* of the cut in progress */
    lg_pool_message_fn message_fn;
    void *message_ctx;
};

static void pool_on_up(void *ctx, lg_conn *c, uint64_t latency_ns);
static void pool_on_ended(void *ctx, lg_conn *c, lg_conn_end how, const char *why);
static void pool_on_message(void *ctx, lg_conn *c, const xml_node *stanza, xml_arena *arena);
static void pool_on_retry(timer *t, void *arg);

lg_pool *lg_pool_new(lg_env *env)
{
    lg_pool *p = mem_zalloc(sizeof(*p));
    p->env = env;
    p->n = env->opt->users;
    p->members = mem_array(p->n, sizeof(*p->members));
    p->queue = mem_array(p->n, sizeof(*p->queue));
    p->last_down_ns = mem_array(p->n, sizeof(*p->last_down_ns));
    env->hooks = (lg_conn_hooks){.up = pool_on_up, .ended = pool_on_ended,
                                 .message = pool_on_message};
    env->hooks_ctx = p;
    for (uint32_t i = 0; i < p->n; i++) {
        lg_member *m = &p->members[i];
        lg_conn_init(&m->conn, env, i);
        timer_init(&m->retry, pool_on_retry, m);
        m->pool = p;
    }
    return p;
}

void lg_pool_free(lg_pool *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->n; i++) {
        lg_conn_abort(&p->members[i].conn);
        evloop_timer_cancel(p->env->loop, &p->members[i].retry);
    }
    for (int i = 0; i < LG_POOL_REASONS; i++)
        free(p->reasons[i].text);
    lg_samples_free(&p->login_latency);
    free(p->members);
    free(p->queue);
    free(p->last_down_ns);
    free(p);
}

void lg_pool_on_message(lg_pool *p, lg_pool_message_fn fn, void *ctx)
{
    p->message_fn = fn;
    p->message_ctx = ctx;
}

static void pool_enqueue(lg_pool *p, uint32_t index)
{
    p->queue[(p->queue_head + p->queue_count) % p->n] = index;
    p->queue_count++;
}

/* Starts queued logins while fewer than --login-concurrency are in flight. A start that fails at
 * once re-enters through the ended hook; the flag keeps that from recursing once per user. */
static void pool_pump(lg_pool *p)
{
    if (p->pumping)
        return;
    p->pumping = true;
    while (p->queue_count && p->in_flight < p->env->opt->login_concurrency) {
        uint32_t index = p->queue[p->queue_head];
        p->queue_head = (p->queue_head + 1) % p->n;
        p->queue_count--;
        p->in_flight++;
        lg_conn_start(&p->members[index].conn, p->phase == PHASE_WARMUP);
    }
    p->pumping = false;
}

/* Counts a failure reason for the phase summary. */
static void pool_reason(lg_pool *p, const char *why)
{
    for (int i = 0; i < LG_POOL_REASONS; i++) {
        if (!p->reasons[i].text) {
            p->reasons[i].text = mem_strdup(why);
            p->reasons[i].count = 1;
            return;
        }
        if (strcmp(p->reasons[i].text, why) == 0) {
            p->reasons[i].count++;
            return;
        }
    }
}

static void pool_report_reasons(lg_pool *p, const char *phase)
{
    for (int i = 0; i < LG_POOL_REASONS && p->reasons[i].text; i++) {
        log_warn("%s: %u failed: %s", phase, p->reasons[i].count, p->reasons[i].text);
        free(p->reasons[i].text);
        p->reasons[i].text = NULL;
    }
}

/* One more user finished the warm-up or login phase; the last one ends it. */
static void pool_phase_step(lg_pool *p)
{
    if (++p->phase_done < p->n)
        return;
    if (p->phase == PHASE_LOGIN)
        p->login_end_ns = lg_now_ns();
    pool_report_reasons(p, p->phase == PHASE_WARMUP ? "warm-up" : "login");
    p->phase = PHASE_RUN;
    p->phase_stopped = true;
    evloop_stop(p->env->loop);
}

static bool pool_phase(lg_pool *p, lg_phase phase)
{
    p->phase = phase;
    p->phase_done = 0;
    p->phase_stopped = false;
    p->queue_head = p->queue_count = 0;
    for (uint32_t i = 0; i < p->n; i++)
        pool_enqueue(p, i);
    pool_pump(p);
    return !p->phase_stopped;
}

bool lg_pool_warmup(lg_pool *p)
{
    return pool_phase(p, PHASE_WARMUP);
}

bool lg_pool_login(lg_pool *p)
{
    p->login_start_ns = lg_now_ns();
    return pool_phase(p, PHASE_LOGIN);
}

/* After a drop or a failed re-login: --reconnect seconds (a cut user without it: 1 s). */
static void pool_schedule_retry(lg_pool *p, lg_member *m)
{
    unsigned s = p->env->opt->reconnect_s;
    m->reconnecting = true;
    evloop_timer_after(p->env->loop, &m->retry, (uint64_t)(s ? s : 1) * 1000);
}

/* A cut user's new login, outside the queue: every cut user at once is the reconnect storm. */
static void pool_start_storm(lg_pool *p, lg_member *m)
{
    m->start_now = false;
    p->in_flight++;
    lg_conn_start(&m->conn, false);
}

uint32_t lg_pool_cut(lg_pool *p, uint32_t k, int return_ms)
{
    uint32_t cut = 0;
    p->cut_return_ms = return_ms;
    for (uint32_t i = 0; i < k && i < p->n; i++) {
        lg_member *m = &p->members[i];
        if (!lg_conn_is_up(&m->conn))
            continue;
        m->cut = true;
        lg_conn_cut(&m->conn);
        cut++;
    }
    for (uint32_t i = 0; i < k && i < p->n; i++)
        if (p->members[i].start_now && p->members[i].conn.state == LG_CONN_DOWN)
            pool_start_storm(p, &p->members[i]);
    return cut;
}

static void pool_on_retry(timer *t, void *arg)
{
    lg_member *m = arg;
    if (m->conn.state != LG_CONN_DOWN)
        return;
    if (m->storm) {
        pool_start_storm(m->pool, m);
        return;
    }
    pool_enqueue(m->pool, m->conn.index);
    pool_pump(m->pool);
}

static void pool_on_up(void *ctx, lg_conn *c, uint64_t latency_ns)
{
    lg_pool *p = ctx;
    lg_member *m = &p->members[c->index];
    p->in_flight--;
    p->connected++;
    if (m->reconnecting) {
        m->reconnecting = false;
        m->storm = false;
        p->reconnects++;
    } else if (p->phase == PHASE_LOGIN) {
        p->login_ok++;
        lg_samples_add(&p->login_latency, latency_ns);
        pool_phase_step(p);
    }
    pool_pump(p);
}

static void pool_on_ended(void *ctx, lg_conn *c, lg_conn_end how, const char *why)
{
    lg_pool *p = ctx;
    lg_member *m = &p->members[c->index];
    char user[256];
    lg_conn_user(c, user, sizeof(user));
    if (how == LG_END_DROPPED) {
        p->connected--;
        p->drops++;
        p->last_down_ns[c->index] = lg_now_ns();
        if (m->cut) {
            m->cut = false;
            m->storm = p->cut_return_ms >= 0;
            m->reconnecting = m->storm;
            if (p->cut_return_ms > 0)
                evloop_timer_after(p->env->loop, &m->retry, (uint64_t)p->cut_return_ms);
            m->start_now = p->cut_return_ms == 0;
            return;
        }
        log_notice("%s: dropped: %s", user, why);
        if (p->env->opt->reconnect_s)
            pool_schedule_retry(p, m);
        return;
    }
    p->in_flight--;
    if (p->phase == PHASE_WARMUP) {
        if (how == LG_END_LOGGED_OUT) {
            p->warm_ok++;
        } else {
            p->warm_failed++;
            pool_reason(p, why);
            log_warn("%s: warm-up login failed: %s", user, why);
        }
        pool_phase_step(p);
    } else if (m->reconnecting) {
        log_notice("%s: reconnect failed: %s", user, why);
        pool_schedule_retry(p, m);
    } else {
        p->login_failed++;
        pool_reason(p, why);
        log_warn("%s: login failed: %s", user, why);
        pool_phase_step(p);
    }
    pool_pump(p);
}

static void pool_on_message(void *ctx, lg_conn *c, const xml_node *stanza, xml_arena *arena)
{
    lg_pool *p = ctx;
    if (p->message_fn)
        p->message_fn(p->message_ctx, c->index, stanza, arena);
}

void lg_pool_login_result(lg_pool *p, lg_login_result *out)
{
    uint64_t end = p->login_end_ns ? p->login_end_ns : lg_now_ns();
    *out = (lg_login_result){
        .users = p->n,
        .ok = p->login_ok,
        .failed = p->login_failed,
        .seconds = (double)(end - p->login_start_ns) / 1e9,
    };
    out->latency = lg_samples_summarize(&p->login_latency);
    lg_samples_free(&p->login_latency);
}

void lg_pool_warmup_result(const lg_pool *p, uint32_t *ok, uint32_t *failed)
{
    *ok = p->warm_ok;
    *failed = p->warm_failed;
}

lg_conn *lg_pool_conn(lg_pool *p, uint32_t index)
{
    return &p->members[index].conn;
}

uint32_t lg_pool_users(const lg_pool *p)
{
    return p->n;
}

uint32_t lg_pool_connected(const lg_pool *p)
{
    return p->connected;
}

uint64_t lg_pool_drops(const lg_pool *p)
{
    return p->drops;
}

uint64_t lg_pool_reconnects(const lg_pool *p)
{
    return p->reconnects;
}

const uint64_t *lg_pool_last_down(const lg_pool *p)
{
    return p->last_down_ns;
}

void lg_pool_shrink(lg_pool *p)
{
    for (uint32_t i = 0; i < p->n; i++)
        lg_conn_shrink(&p->members[i].conn);
}
