/* sm/registry.c — what modules register with the core: iq handlers by namespace and addressing,
 * hooks on events, disco features; and the dispatch of an iq to its handler. */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "sm/core.h"

void sm_iq_handler(sm *s, const char *ns, unsigned where, sm_iq_fn fn)
{
    s->iqs = mem_realloc(s->iqs, (s->niqs + 1) * sizeof(*s->iqs));
    s->iqs[s->niqs++] = (iq_handler){mem_strdup(ns), where, fn};
}

void sm_add_feature(sm *s, const char *ns)
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

void sm_hook(sm *s, sm_event_kind kind, sm_hook_fn fn)
{
    s->hooks[kind] = mem_realloc(s->hooks[kind], (s->nhooks[kind] + 1) * sizeof(sm_hook_fn));
    s->hooks[kind][s->nhooks[kind]++] = fn;
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
        sm_stanza_free(st);
        return;
    }
    xml_node *payload = xml_child(st->node, NULL, NULL);
    if ((!streq(type, "get") && !streq(type, "set")) || !payload ||
        xml_next(payload, NULL, NULL) || !xml_attr_get(st->node, "id")) {
        sm_bounce(s, st, "modify", "bad-request");
        return;
    }
    for (size_t i = 0; i < s->niqs; i++)
        if ((s->iqs[i].where & where) && streq(s->iqs[i].ns, payload->ns)) {
            s->iqs[i].fn(s, st, payload);
            return;
        }
    sm_bounce(s, st, "cancel", "service-unavailable");
}
