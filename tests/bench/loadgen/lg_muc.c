/* tests/bench/loadgen/lg_muc.c — the --muc client's stanzas and their parsing (see lg_muc.h). */
#include "tests/bench/loadgen/lg_muc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define NS_DATA "jabber:x:data"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

void lg_muc_join(buf *out, const char *service, uint32_t room, uint32_t number)
{
    buf_appendf(out, "<presence to='bench%" PRIu32 "@%s/u%" PRIu32 "'><x xmlns='" NS_MUC
                     "'><history maxstanzas='0'/></x></presence>", room, service, number);
}

void lg_muc_config(buf *out, const char *service, uint32_t room, const char *run,
                   uint32_t max_users)
{
    buf_appendf(out, "<iq type='set' to='bench%" PRIu32 "@%s' id='%s-cfg-%" PRIu32 "'><query "
                     "xmlns='" NS_MUC_OWNER "'><x xmlns='" NS_DATA "' type='submit'", room, service,
                run, room);
    if (max_users)
        buf_appendf(out, "><field var='FORM_TYPE'><value>" NS_MUC "#roomconfig</value></field>"
                         "<field var='muc#roomconfig_maxusers'><value>%" PRIu32 "</value></field>"
                         "</x>", max_users);
    else
        buf_appendf(out, "/>");
    buf_appendf(out, "</query></iq>");
}

bool lg_muc_parse_config_id(const char *id, const char *run, uint32_t *room)
{
    char tail;
    if (!id || strncmp(id, run, LG_MUC_RUN_LEN) != 0 || strncmp(id + LG_MUC_RUN_LEN, "-cfg-", 5))
        return false;
    return sscanf(id + LG_MUC_RUN_LEN + 5, "%" SCNu32 "%c", room, &tail) == 1;
}

void lg_muc_message(buf *out, const char *service, uint32_t room, const char *run, uint32_t round,
                    uint32_t sender, uint64_t seq, uint64_t t_ns)
{
    buf_appendf(out, "<message to='bench%" PRIu32 "@%s' type='groupchat' id='%s-%" PRIu32 "-%"
                     PRIu64 "'><body>%s %" PRIu32 " %" PRIu32 " %" PRIu64 " %" PRIu64
                     "</body></message>",
                room, service, run, round, seq, run, round, sender, seq, t_ns);
}

bool lg_muc_parse_id(const char *id, const char *run, uint32_t *round, uint64_t *seq)
{
    char tail;
    if (!id || strncmp(id, run, LG_MUC_RUN_LEN) != 0 || id[LG_MUC_RUN_LEN] != '-')
        return false;
    return sscanf(id + LG_MUC_RUN_LEN + 1, "%" SCNu32 "-%" SCNu64 "%c", round, seq, &tail) == 2;
}

bool lg_muc_parse_room_jid(const char *jid, const char *service, uint32_t *room)
{
    if (!jid || strncmp(jid, "bench", 5) != 0 || jid[5] < '0' || jid[5] > '9')
        return false;
    char *end;
    unsigned long r = strtoul(jid + 5, &end, 10);
    size_t len = strlen(service);
    if (*end != '@' || r > UINT32_MAX || strncmp(end + 1, service, len) != 0 ||
        (end[1 + len] != '\0' && end[1 + len] != '/'))
        return false;
    *room = (uint32_t)r;
    return true;
}

static bool has_status(const xml_node *x, const char *code)
{
    for (const xml_node *s = xml_child(x, NS_MUC_USER, "status"); s;
         s = xml_next(s, NS_MUC_USER, "status")) {
        const char *c = xml_attr_get(s, "code");
        if (c && strcmp(c, code) == 0)
            return true;
    }
    return false;
}

lg_muc_presence_kind lg_muc_parse_presence(const xml_node *presence, const char *service,
                                           uint32_t *room, bool *created, const char **condition)
{
    const char *type = xml_attr_get(presence, "type");
    *created = false;
    if (!lg_muc_parse_room_jid(xml_attr_get(presence, "from"), service, room))
        return LG_MUC_PRESENCE_OTHER;
    if (type && strcmp(type, "error") == 0) {
        const xml_node *err = xml_child(presence, NULL, "error");
        *condition = "(none)";
        for (const xml_node *ch = err ? xml_child(err, NS_STANZAS, NULL) : NULL; ch;
             ch = xml_next(ch, NS_STANZAS, NULL))
            if (strcmp(ch->name, "text") != 0) {
                *condition = ch->name;
                break;
            }
        return LG_MUC_PRESENCE_ERROR;
    }
    const xml_node *x = xml_child(presence, NS_MUC_USER, "x");
    if (type || !x || !has_status(x, "110"))
        return LG_MUC_PRESENCE_OTHER;
    *created = has_status(x, "201");
    return LG_MUC_PRESENCE_SELF;
}

lg_muc_kind lg_muc_parse_message(const xml_node *message, xml_arena *arena, const char *run,
                                 lg_muc_item *item)
{
    const char *type = xml_attr_get(message, "type");
    const xml_node *body = xml_child(message, NULL, "body");
    if (!type || strcmp(type, "groupchat") != 0 || !body)
        return LG_MUC_NOT_OURS;
    char got_run[LG_MUC_RUN_LEN + 2], tail;
    if (sscanf(xml_text(arena, body), "%9s %" SCNu32 " %" SCNu32 " %" SCNu64 " %" SCNu64 "%c",
               got_run, &item->round, &item->sender, &item->seq, &item->t_ns, &tail) != 5 ||
        strcmp(got_run, run) != 0)
        return LG_MUC_FOREIGN;
    return LG_MUC_MESSAGE;
}
