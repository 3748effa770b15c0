/* sm/announce.c — announcements to every online session (see announce.h). */
#include "sm/announce.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"

typedef struct session_refs {
    char **jids;            /* full JIDs (detached sessions have no link to find them by) */
    size_t n;
    const char *host;
} session_refs;

static void collect(sm_session *sess, void *ctx)
{
    session_refs *r = ctx;
    size_t dlen;
    const char *dom = jid_domain(&sess->jid, &dlen);
    if (strlen(r->host) != dlen || strncasecmp(r->host, dom, dlen) != 0)
        return;
    r->jids = mem_realloc(r->jids, (r->n + 1) * sizeof(*r->jids));
    r->jids[r->n++] = mem_strdup(jid_full(&sess->jid));
}

/* One host's sessions: one stanza, serialized once. */
static size_t announce_host(sm *s, const char *host, const char *subject, const char *body)
{
    /* Collected first: sm_each_session's callback may not send. */
    session_refs r = {.host = host};
    sm_each_session(s, collect, &r);
    sm_stanza *m = sm_stanza_make("message", host, NULL, "headline");
    if (subject && *subject)
        xml_text_new(m->arena, xml_element_new(m->arena, m->node, SM_NS_CLIENT, "subject"),
                     subject, strlen(subject));
    xml_text_new(m->arena, xml_element_new(m->arena, m->node, SM_NS_CLIENT, "body"), body,
                 strlen(body));
    sm_fanout f = sm_fanout_of(m);
    size_t sent = 0;
    for (size_t i = 0; i < r.n; i++) {
        jid full;
        if (jid_parse(r.jids[i], strlen(r.jids[i]), &full) == JID_OK) {
            sm_session *sess = sm_session_find(s, &full);
            if (sess) {
                sm_fanout_deliver(s, &f, sess);
                sent++;
            }
            jid_free(&full);
        }
        free(r.jids[i]);
    }
    sm_fanout_free(&f);
    free(r.jids);
    return sent;
}

size_t sm_announce(sm *s, const char *host, const char *subject, const char *body)
{
    if (host)
        return announce_host(s, host, subject, body);
    const sm_config *c = sm_cfg(s);
    size_t sent = 0;
    for (int i = 0; i < c->nhosts; i++)
        sent += announce_host(s, c->hosts[i].name, subject, body);
    return sent;
}
