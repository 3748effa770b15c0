/* sm/mod_muc_mam.c — group chat rooms' archives (XEP-0313 on rooms, XEP-0045's room logging): a
 * room with logging on archives every group message with a body in its own archive (a room is a
 * storage owner as an account is: xdbsql/store_rooms.c), under the stanza id the room gave it,
 * with the sender's occupant JID as contact (a 'with' of room/nick finds one occupant's); and
 * answers urn:xmpp:mam:2 queries and metadata on it for whoever may read the room's history
 * (mod_muc says who). Hooks mod_muc's events; writes and reads through mod_mam's files (sm/mam.h),
 * so the batching, retention and paging are theirs.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sm/disco.h"
#include "sm/mam.h"
#include "sm/modules.h"

static bool room_jid(const char *name, jid *out)
{
    return name && jid_parse(name, strlen(name), out) == JID_OK;
}

static bool archive_message(sm *s, sm_event *ev)
{
    jid room;
    if (!room_jid(ev->name, &room))
        return false;
    char *xml = mam_serialized(ev->stanza);
    if (xml)
        mam_archive(s, &room, ev->id, &ev->stanza->from, xml);
    free(xml);
    jid_free(&room);
    return false;
}

static bool room_iq(sm *s, sm_event *ev)
{
    xml_node *q = ev->node;
    if (!xml_is(q, NS_MAM, "query") && !xml_is(q, NS_MAM, "metadata"))
        return false;
    jid room;
    if (!room_jid(ev->name, &room))
        return false;
    mam_query_archive(s, ev->stanza, q, &room);
    jid_free(&room);
    return true;
}

static bool room_info(sm *s, sm_event *ev)
{
    disco_feature(ev->arena, ev->node, NS_MAM);
    return false;
}

/* It writes and reads through mod_mam's state: without it loaded there is none. */
static bool muc_mam_init(sm *s, const sm_module *self, config *cfg)
{
    if (sm_module_loaded(s, &mod_mam))
        return true;
    log_error("sm: module muc_mam archives rooms through module mam: load both, or neither");
    return false;
}

static const sm_handler muc_mam_handlers[] = {
    {"muc-message", .hook = archive_message},
    {"muc-room-iq", .hook = room_iq},
    {"muc-room-info", .hook = room_info},
    {NULL},
};

const sm_module mod_muc_mam = {
    .name = "muc_mam",
    .init = muc_mam_init,
    .handlers = muc_mam_handlers,
};
