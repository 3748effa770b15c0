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
    if (r->host && (strlen(r->host) != dlen || strncasecmp(r->host, dom, dlen) != 0))
        return;
    r->jids = mem_realloc(r->jids, (r->n + 1) * sizeof(*r->jids));
    r->jids[r->n++] = mem_strdup(jid_full(&sess->jid));
}

size_t sm_announce(sm *s, const char *host, const char *subject, const char *body)
{
    /* Collected first: sm_each_session's callback may not send. */
    session_refs r = {.host = host};
    sm_each_session(s, collect, &r);
    size_t sent = 0;
    for (size_t i = 0; i < r.n; i++) {
        jid full;
        sm_session *sess = NULL;
        if (jid_parse(r.jids[i], strlen(r.jids[i]), &full) == JID_OK) {
            sess = sm_session_find(s, &full);
            jid_free(&full);
        }
        free(r.jids[i]);
        if (!sess)
            continue;
        size_t dlen;
        const char *dom = jid_domain(&sess->jid, &dlen);
        char from[JID_PART_MAX + 1];
        memcpy(from, dom, dlen);
        from[dlen] = '\0';
        sm_stanza *m = sm_stanza_make("message", from, NULL, "headline");
        if (subject && *subject)
            xml_text_new(m->arena, xml_element_new(m->arena, m->node, SM_NS_CLIENT, "subject"),
                         subject, strlen(subject));
        xml_text_new(m->arena, xml_element_new(m->arena, m->node, SM_NS_CLIENT, "body"), body,
                     strlen(body));
        sm_deliver_copy(s, sess, m);
        sm_stanza_free(m);
        sent++;
    }
    free(r.jids);
    return sent;
}
