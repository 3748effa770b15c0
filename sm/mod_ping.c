/* sm/mod_ping.c — XMPP Ping (XEP-0199): the server answers pings to itself and, on their behalf,
 * to its accounts' bare JIDs. */
#include <string.h>

#include "sm/module.h"
#include "sm/modules.h"

#define NS_PING "urn:xmpp:ping"

static void ping(sm *s, sm_stanza *st, xml_node *payload)
{
    if (strcmp(sm_stanza_type(st), "get") != 0 || strcmp(payload->name, "ping") != 0)
        sm_bounce(s, st, "cancel", "bad-request");
    else
        sm_iq_result(s, st, NULL);
}

static const sm_handler ping_handlers[] = {
    {"iq/any/" NS_PING ":*", .iq = ping},
    {NULL},
};

const sm_module mod_ping = {
    .name = "ping",
    .handlers = ping_handlers,
    .features = (const char *const[]){NS_PING, NULL},
};
