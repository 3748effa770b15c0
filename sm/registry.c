/* sm/registry.c — the modules loaded into the core (sm/module.h): loading them from a table and
 * the configuration's <modules> list, their handlers (iq handlers by type, addressing and payload;
 * hooks on events), their disco features, the per-session and per-user state they declared and
 * its packing for the link's STATE records; and the dispatch of an iq to its handler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "sm/core.h"
#include "sm/module.h"
#include "smproto/frame.h"

static const char *const event_names[SM_EV_COUNT] = {
    [SM_EV_PRESENCE_OUT] = "presence-out",
    [SM_EV_PRESENCE_IN] = "presence-in",
    [SM_EV_MESSAGE_OFFLINE] = "message-offline",
    [SM_EV_SESSION_AVAILABLE] = "session-available",
    [SM_EV_SESSION_END] = "session-end",
    [SM_EV_REGISTER] = "register",
    [SM_EV_USER_LOAD] = "user-load",
    [SM_EV_OUTBOUND] = "outbound",
    [SM_EV_INBOUND] = "inbound",
    [SM_EV_MESSAGE_DELIVERED] = "message-delivered",
    [SM_EV_ROSTER_CHANGED] = "roster-changed",
    [SM_EV_SESSION_LOST] = "session-lost",
    [SM_EV_SESSION_SENT] = "session-sent",
    [SM_EV_UNDELIVERED] = "undelivered",
    [SM_EV_TICK] = "tick",
    [SM_EV_SESSION_ATTACHED] = "session-attached",
    [SM_EV_FRONT_UP] = "front-up",
    [SM_EV_START_DONE] = "start-done",
    [SM_EV_USER_READY] = "user-ready",
    [SM_EV_METRICS] = "metrics",
};

/* ---- handlers ------------------------------------------------------------------------------ */

/* "iq-get/host/NS:NAME" (or bare, or any): its parts, or false (a programming error in a
 * module's table). */
static bool parse_iq_event(const char *event, iq_handler *h)
{
    const char *p;
    if (strncmp(event, "iq-get/", 7) == 0) {
        h->types = SMC_IQ_GET;
        p = event + 7;
    } else if (strncmp(event, "iq-set/", 7) == 0) {
        h->types = SMC_IQ_SET;
        p = event + 7;
    } else if (strncmp(event, "iq/", 3) == 0) {
        h->types = SMC_IQ_GET | SMC_IQ_SET;
        p = event + 3;
    } else {
        return false;
    }
    if (strncmp(p, "host/", 5) == 0)
        h->where = SM_IQ_HOST;
    else if (strncmp(p, "bare/", 5) == 0)
        h->where = SM_IQ_BARE;
    else if (strncmp(p, "any/", 4) == 0)
        h->where = SM_IQ_HOST | SM_IQ_BARE;
    else
        return false;
    p = strchr(p, '/') + 1;
    const char *colon = strrchr(p, ':');
    if (!colon || colon == p || !colon[1])
        return false;
    h->ns = mem_strndup(p, (size_t)(colon - p));
    h->name = strcmp(colon + 1, "*") == 0 ? NULL : mem_strdup(colon + 1);
    return true;
}

static bool add_handler(sm *s, const sm_module *m, const sm_handler *h)
{
    if (strncmp(h->event, "iq", 2) == 0) {
        iq_handler ih = {.fn = h->iq};
        if (!h->iq || !parse_iq_event(h->event, &ih)) {
            log_error("sm: module %s: bad iq handler '%s'", m->name, h->event);
            return false;
        }
        s->iqs = mem_realloc(s->iqs, (s->niqs + 1) * sizeof(*s->iqs));
        s->iqs[s->niqs++] = ih;
        return true;
    }
    if (!h->hook) {
        log_error("sm: module %s: no hook for '%s'", m->name, h->event);
        return false;
    }
    for (int k = 0; k < SM_EV_COUNT; k++)
        if (strcmp(h->event, event_names[k]) == 0) {
            s->hooks[k] = mem_realloc(s->hooks[k], (s->nhooks[k] + 1) * sizeof(sm_hook_fn));
            s->hooks[k][s->nhooks[k]++] = h->hook;
            return true;
        }
    for (size_t i = 0; i < s->nnamed; i++)
        if (strcmp(h->event, s->named[i].name) == 0) {
            named_event *e = &s->named[i];
            e->hooks = mem_realloc(e->hooks, (e->nhooks + 1) * sizeof(sm_hook_fn));
            e->hooks[e->nhooks++] = h->hook;
            return true;
        }
    log_error("sm: module %s: unknown event '%s' (no loaded module fires it)", m->name, h->event);
    return false;
}

static void add_named_event(sm *s, const char *name)
{
    for (size_t i = 0; i < s->nnamed; i++)
        if (strcmp(s->named[i].name, name) == 0)
            return;
    s->named = mem_realloc(s->named, (s->nnamed + 1) * sizeof(*s->named));
    s->named[s->nnamed++] = (named_event){name, NULL, 0};
}

bool sm_fire_named(sm *s, const char *event, sm_event *ev)
{
    for (size_t i = 0; i < s->nnamed; i++)
        if (strcmp(s->named[i].name, event) == 0) {
            for (size_t k = 0; k < s->named[i].nhooks; k++)
                if (s->named[i].hooks[k](s, ev))
                    return true;
            return false;
        }
    return false;
}

static void add_feature(sm *s, const char *ns)
{
    for (size_t i = 0; i < s->nfeatures; i++)
        if (streq(s->features[i], ns))
            return;
    s->features = mem_realloc(s->features, (s->nfeatures + 1) * sizeof(char *));
    s->features[s->nfeatures++] = mem_strdup(ns);
}

size_t sm_features(const sm *s, const char *const **out)
{
    *out = (const char *const *)s->features;
    return s->nfeatures;
}

bool sm_fire(sm *s, sm_event_kind kind, sm_event *ev)
{
    for (size_t i = 0; i < s->nhooks[kind]; i++)
        if (s->hooks[kind][i](s, ev))
            return true;
    return false;
}

void smc_iq_dispatch(sm *s, sm_stanza *st, unsigned where)
{
    const char *type = sm_stanza_type(st);
    if (streq(type, "result") || streq(type, "error")) {
        if (!smc_iq_out_answer(s, st))
            sm_stanza_free(st);
        return;
    }
    xml_node *payload = xml_child(st->node, NULL, NULL);
    unsigned t = streq(type, "get") ? SMC_IQ_GET : streq(type, "set") ? SMC_IQ_SET : 0;
    if (!t || !payload || xml_next(payload, NULL, NULL) || !xml_attr_get(st->node, "id")) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    for (size_t i = 0; i < s->niqs; i++) {
        const iq_handler *h = &s->iqs[i];
        if ((h->where & where) && (h->types & t) && streq(h->ns, payload->ns) &&
            (!h->name || streq(h->name, payload->name))) {
            h->fn(s, st, payload);
            return;
        }
    }
    sm_bounce(s, st, "cancel", "service-unavailable");
}

/* ---- loading ------------------------------------------------------------------------------- */

static const loaded_module *find_loaded(const sm *s, const sm_module *m);

/* m's int options from the file (their defaults when there is no file: an sm_config built by
 * hand, as the unit tests do). */
static long long *read_ints(const sm_module *m, config *cfg)
{
    size_t n = 0;
    for (const sm_int_option *o = m->int_options; o && o->path; o++)
        n++;
    long long *v = n ? mem_array(n, sizeof(*v)) : NULL;
    for (size_t i = 0; i < n; i++) {
        const sm_int_option *o = &m->int_options[i];
        v[i] = cfg ? config_int(cfg, NULL, o->path, o->def, o->min, o->max) : o->def;
    }
    return v;
}

void sm_reload_ints(sm *s, config *cfg)
{
    for (size_t i = 0; i < s->nmods; i++) {
        loaded_module *lm = &s->mods[i];
        long long *fresh = read_ints(lm->m, cfg);
        free(lm->ints);
        lm->ints = fresh;
    }
}

/* Whether the configuration asks for m: every module when it names none. */
static bool wanted(const sm_config *cfg, const sm_module *m)
{
    if (!cfg->modules)
        return true;
    for (size_t i = 0; cfg->modules[i]; i++)
        if (strcmp(cfg->modules[i], m->name) == 0)
            return true;
    return false;
}

bool smc_modules_load(sm *s, const sm_module *const *table)
{
    for (size_t i = 0; table[i]; i++) {
        const sm_module *m = table[i];
        if (!wanted(s->cfg, m))
            continue;
        s->mods = mem_realloc(s->mods, (s->nmods + 1) * sizeof(*s->mods));
        s->mods[s->nmods++] = (loaded_module){m, NULL, read_ints(m, s->cfg->cfg),
                                              s->session_ext, s->user_ext, false};
        s->session_ext += SMC_EXT_OFFSET(m->session_state);
        s->user_ext += SMC_EXT_OFFSET(m->user_state);
        for (const char *const *e = m->events; e && *e; e++)
            add_named_event(s, *e);
    }
    /* Handlers once every module's events are known: a module may hook one loaded after it. */
    for (size_t i = 0; i < s->nmods; i++) {
        const sm_module *m = s->mods[i].m;
        for (const sm_handler *h = m->handlers; h && h->event; h++)
            if (!add_handler(s, m, h))
                return false;
        for (const char *const *f = m->features; f && *f; f++)
            add_feature(s, *f);
    }
    /* Every module is registered before any init runs: an init may ask what else is loaded. */
    for (size_t i = 0; i < s->nmods; i++) {
        const sm_module *m = s->mods[i].m;
        if (m->init && !m->init(s, m, s->cfg->cfg)) {
            log_error("sm: module %s could not start", m->name);
            return false;
        }
        s->mods[i].ready = true;
    }
    config_error err;
    if (s->cfg->cfg && config_check(s->cfg->cfg, &err) != 0) {
        log_error("sm: %s", err.text);
        return false;
    }
    return true;
}

void smc_modules_unload(sm *s)
{
    for (size_t i = s->nmods; i-- > 0;)
        if (s->mods[i].ready && s->mods[i].m->fini)
            s->mods[i].m->fini(s, s->mods[i].m);
    for (size_t i = 0; i < s->nmods; i++)
        free(s->mods[i].ints);
    free(s->mods);
    for (size_t i = 0; i < s->niqs; i++) {
        free((char *)s->iqs[i].ns);
        free((char *)s->iqs[i].name);
    }
    free(s->iqs);
    for (size_t i = 0; i < s->nfeatures; i++)
        free(s->features[i]);
    free(s->features);
    for (int k = 0; k < SM_EV_COUNT; k++)
        free(s->hooks[k]);
    for (size_t i = 0; i < s->nnamed; i++)
        free(s->named[i].hooks);
    free(s->named);
}

static const loaded_module *find_loaded(const sm *s, const sm_module *m)
{
    for (size_t i = 0; i < s->nmods; i++)
        if (s->mods[i].m == m)
            return &s->mods[i];
    return NULL;
}

bool sm_module_loaded(const sm *s, const sm_module *m)
{
    return find_loaded(s, m) != NULL;
}

void *sm_module_data(const sm *s, const sm_module *m)
{
    const loaded_module *lm = find_loaded(s, m);
    return lm ? lm->data : NULL;
}

void sm_module_set_data(sm *s, const sm_module *m, void *data)
{
    loaded_module *lm = (loaded_module *)find_loaded(s, m);
    if (lm)
        lm->data = data;
}

long long sm_module_int(const sm *s, const sm_module *m, const char *path)
{
    const loaded_module *lm = find_loaded(s, m);
    for (size_t i = 0; lm && m->int_options && m->int_options[i].path; i++)
        if (strcmp(m->int_options[i].path, path) == 0)
            return lm->ints[i];
    log_error("sm: module %s has no option %s", m->name, path);
    abort();   /* a module asking for an option it did not declare: a programming error */
}

/* ---- messages between a module and its front feature (MODULE frames) ----------------------- */

void sm_module_message(sm *s, sm_link *l, uint64_t sid, const char *name, size_t nlen,
                       const uint8_t *body, size_t len)
{
    for (size_t i = 0; i < s->nmods; i++) {
        const sm_module *m = s->mods[i].m;
        if (m->message && strlen(m->name) == nlen && memcmp(m->name, name, nlen) == 0) {
            m->message(s, m, l, sid, body, len);
            return;
        }
    }
    char n[SMPROTO_MODULE_NAME_MAX + 1];
    memcpy(n, name, nlen);
    n[nlen] = 0;
    s->t.module(s->tctx, l->handle, sid, n, NULL, 0);
}

bool sm_module_send(sm *s, const sm_module *m, sm_link *l, uint64_t sid, const void *body,
                    size_t len)
{
    if (len > SMPROTO_MAX_PAYLOAD - 1 - strlen(m->name))
        return false;
    s->t.module(s->tctx, l->handle, sid, m->name, body, len);
    return true;
}

/* ---- per-session and per-user state --------------------------------------------------------- */

void *sm_session_state(const sm *s, const sm_session *sess, const sm_module *m)
{
    const loaded_module *lm = find_loaded(s, m);
    return lm && m->session_state ? sess->ext + lm->session_off : NULL;
}

void *sm_user_state(const sm *s, const sm_user *u, const sm_module *m)
{
    const loaded_module *lm = find_loaded(s, m);
    return lm && m->user_state ? u->ext + lm->user_off : NULL;
}

void smc_session_state_release(sm *s, sm_session *sess)
{
    for (size_t i = 0; i < s->nmods; i++)
        if (s->mods[i].m->session_release)
            s->mods[i].m->session_release(sess->ext + s->mods[i].session_off);
}

void smc_user_state_release(sm *s, sm_user *u)
{
    for (size_t i = 0; i < s->nmods; i++)
        if (s->mods[i].m->user_release)
            s->mods[i].m->user_release(u->ext + s->mods[i].user_off);
}

void sm_pack_flag(buf *out, bool flag)
{
    if (flag)
        buf_append(out, "\1", 1);
}

bool sm_unpack_flag(const uint8_t *data, size_t len)
{
    return len == 1 && data[0] == 1;
}

/* A session's STATE record (docs/smproto.md §2): for each module with something to keep,
 * u8 name length, the name, u8 length, the bytes. */
void smc_state_pack(const sm *s, const sm_session *sess, buf *out)
{
    buf part = BUF_INIT;
    for (size_t i = 0; i < s->nmods; i++) {
        const sm_module *m = s->mods[i].m;
        if (!m->pack)
            continue;
        buf_consume(&part, buf_len(&part));
        m->pack(sess, sess->ext + s->mods[i].session_off, &part);
        size_t nlen = strlen(m->name);
        if (!buf_len(&part) || buf_len(&part) > SM_MODULE_STATE_MAX || nlen > 255)
            continue;
        if (buf_len(out) + 2 + nlen + buf_len(&part) > SMPROTO_STATE_MAX) {
            log_warn("sm: session %s: module %s's state does not fit in the STATE record",
                     jid_full(&sess->jid), m->name);
            continue;
        }
        uint8_t lens[2] = {(uint8_t)nlen, (uint8_t)buf_len(&part)};
        buf_append(out, &lens[0], 1);
        buf_append(out, m->name, nlen);
        buf_append(out, &lens[1], 1);
        buf_append(out, buf_data(&part), buf_len(&part));
    }
    buf_free(&part);
}

/* Walks a STATE record, calling fn for each part (name, data); false when it does not parse. */
static bool state_parts(const uint8_t *p, size_t len,
                        void (*fn)(sm *s, sm_session *sess, const char *name, size_t nlen,
                                   const uint8_t *data, size_t dlen),
                        sm *s, sm_session *sess)
{
    if (!len)
        return true;    /* p may be NULL then (an empty record) */
    const uint8_t *end = p + len;
    while (p < end) {
        size_t nlen = *p++;
        if ((size_t)(end - p) < nlen + 1)
            return false;
        const char *name = (const char *)p;
        p += nlen;
        size_t dlen = *p++;
        if ((size_t)(end - p) < dlen)
            return false;
        if (fn)
            fn(s, sess, name, nlen, p, dlen);
        p += dlen;
    }
    return true;
}

static void restore_part(sm *s, sm_session *sess, const char *name, size_t nlen,
                         const uint8_t *data, size_t dlen)
{
    for (size_t i = 0; i < s->nmods; i++) {
        const sm_module *m = s->mods[i].m;
        if (m->restore && strlen(m->name) == nlen && memcmp(m->name, name, nlen) == 0)
            m->restore(sess, sess->ext + s->mods[i].session_off, data, dlen);
    }
}

bool smc_state_restore(sm *s, sm_session *sess, const uint8_t *p, size_t len)
{
    /* Checked whole before any module sees a part: a malformed record restores nothing. */
    if (!state_parts(p, len, NULL, s, sess))
        return false;
    state_parts(p, len, restore_part, s, sess);
    return true;
}
