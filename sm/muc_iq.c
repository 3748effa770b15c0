/* sm/muc_iq.c — iqs to an occupant's JID (XEP-0045 §7.3-§7.5, §17.4, XEP-0410): a self-ping is
 * answered by the room (the occupant is joined); any other request from an occupant goes to the
 * addressee's latest session (a vCard request to its account, §17.4) from the requester's
 * occupant JID, and its answer comes back to the requester's session that asked. Real JIDs stay
 * hidden: the forwarded request's id is the requester's, with the index of the asking session
 * among the requester's sessions appended ("~m" and the index); the answer's id loses it again.
 * An answer is accepted from an occupant's account only, and goes out from its occupant JID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sm/muc.h"

#define ID_MARK "~m"

xml_node *muc_payload(const sm_stanza *st)
{
    for (xml_node *c = st->node->children; c; c = c->next)
        if (c->kind == XML_ELEMENT)
            return c;
    return NULL;
}

/* The occupant whose account sent st (an answer comes from a session or from the account). */
static muc_occupant *occupant_of_account(const muc_room *r, const jid *from)
{
    muc_occupant *o = muc_occupant_by_session(r, from);
    if (o)
        return o;
    void **v = sm_map_values(&r->occupants);
    for (size_t i = 0; i < sm_map_count(&r->occupants) && !o; i++)
        if (jid_equal_bare(&((muc_occupant *)v[i])->real, from))
            o = v[i];
    free(v);
    return o;
}

static bool readdress(sm_stanza *st, const char *from, const char *to)
{
    st->origin = NULL;
    return sm_stanza_set_from(st, from) && sm_stanza_set_to(st, to);
}

static void forward_request(sm *s, muc_room *r, muc_occupant *from, muc_occupant *to,
                            sm_stanza *st)
{
    size_t asking = 0;
    while (asking < from->nsessions && !jid_equal_full(&from->sessions[asking], &st->from))
        asking++;
    const char *id = xml_attr_get(st->node, "id");
    char tagged[1100], sender[JID_MAX_LEN + 1];
    snprintf(tagged, sizeof tagged, "%.1000s" ID_MARK "%zu", id ? id : "", asking);
    xml_attr_set(st->arena, st->node, NULL, "id", tagged);
    muc_occupant_jid(r, from->nick, sender, sizeof sender);
    const xml_node *q = muc_payload(st);
    bool vcard = q && xml_is(q, "vcard-temp", "vCard");
    char target[JID_MAX_LEN + 1];
    snprintf(target, sizeof target, "%s",
             vcard ? jid_full(&to->real) : jid_full(&to->sessions[to->nsessions - 1]));
    if (readdress(st, sender, target))
        sm_route(s, st);
    else
        sm_stanza_free(st);
}

/* An answer to room/NICK: to the session of NICK's occupant that asked. */
static void forward_answer(sm *s, muc_room *r, muc_occupant *asker, sm_stanza *st)
{
    muc_occupant *answerer = occupant_of_account(r, &st->from);
    const char *id = xml_attr_get(st->node, "id");
    const char *mark = NULL;
    for (const char *p = id ? strstr(id, ID_MARK) : NULL; p; p = strstr(p + 1, ID_MARK))
        mark = p;
    char *end;
    unsigned long asking = mark ? strtoul(mark + strlen(ID_MARK), &end, 10) : 0;
    if (!answerer || !mark || *end || mark[strlen(ID_MARK)] == '\0' ||
        asking >= asker->nsessions) {
        sm_stanza_free(st);
        return;
    }
    char original[1100], sender[JID_MAX_LEN + 1], target[JID_MAX_LEN + 1];
    snprintf(original, sizeof original, "%.*s", (int)(mark - id), id);
    xml_attr_set(st->arena, st->node, NULL, "id", original);
    muc_occupant_jid(r, answerer->nick, sender, sizeof sender);
    snprintf(target, sizeof target, "%s", jid_full(&asker->sessions[asking]));
    if (readdress(st, sender, target))
        sm_route(s, st);
    else
        sm_stanza_free(st);
}

void muc_occupant_iq(sm *s, muc_room *r, sm_stanza *st)
{
    const char *type = sm_stanza_type(st);
    bool request = !strcmp(type, "get") || !strcmp(type, "set");
    size_t rlen;
    muc_occupant *to = muc_occupant_by_nick(r, jid_resource(&st->to, &rlen));
    if (!request) {
        if (to)
            forward_answer(s, r, to, st);
        else
            sm_stanza_free(st);
        return;
    }
    muc_occupant *from = muc_occupant_by_session(r, &st->from);
    const xml_node *q = muc_payload(st);
    if (!from) {
        sm_bounce(s, st, "cancel", "not-acceptable");
    } else if (to == from && q && xml_is(q, NS_PING, "ping")) {
        sm_iq_result(s, st, NULL);
    } else if (!to) {
        sm_bounce(s, st, "cancel", "item-not-found");
    } else {
        forward_request(s, r, from, to, st);
    }
}
