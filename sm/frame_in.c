/* sm/frame_in.c — a front's session frames to core calls (see frame_in.h). */
#include "sm/frame_in.h"

#include <string.h>

#include "core/log.h"

bool sm_frame_in(sm *core, sm_link *link, const smproto_frame *f)
{
    const char *host, *user, *resource, *text, *xml;
    uint8_t flags, reason;
    size_t len;
    if (f->type != SMPROTO_STANZA)
        log_debug("link %s: %s frame, sid %016llx", sm_link_service(link),
                  smproto_type_name(f->type), (unsigned long long)f->sid);
    switch (f->type) {
    case SMPROTO_STANZA:
        sm_session_stanza(core, link, f->sid, (const char *)f->payload, f->len);
        return true;
    case SMPROTO_AUTH_QUERY:
        if (!smproto_get_auth_query(f, &host, &user))
            return false;
        sm_auth_query(core, link, f->sid, host, user);
        return true;
    case SMPROTO_BIND:
        if (!smproto_get_bind(f, &host, &user, &resource, &flags))
            return false;
        sm_bind(core, link, f->sid, host, user, resource, flags);
        return true;
    case SMPROTO_END:
        if (!smproto_get_end(f, &reason, &text))
            return false;
        sm_end(core, link, f->sid, reason);
        return true;
    case SMPROTO_REGISTER:
        if (!smproto_get_register(f, &host, &xml))
            return false;
        sm_register(core, link, f->sid, host, xml, strlen(xml));
        return true;
    case SMPROTO_UNDELIVERED:
        if (!smproto_get_undelivered(f, &xml, &len))
            return false;
        sm_undelivered(core, link, f->sid, xml, len);
        return true;
    case SMPROTO_MODULE: {
        const char *name;
        size_t nlen;
        const uint8_t *body;
        if (!smproto_get_module(f, &name, &nlen, &body, &len))
            return false;
        sm_module_message(core, link, f->sid, name, nlen, body, len);
        return true;
    }
    case SMPROTO_RESYNC: {
        smproto_resync_reader rd;
        smproto_resync_read(f, &rd);
        smproto_resync_entry e;
        int rc;
        while ((rc = smproto_resync_next(&rd, &e)) == 1)
            sm_resync(core, link, e.sid, e.full_jid, e.state, e.state_len, e.presence);
        return rc == 0;
    }
    default:
        return false;   /* AUTH_ANSWER, BOUND, STATE: the SM's own frames */
    }
}
