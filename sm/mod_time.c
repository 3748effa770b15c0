/* sm/mod_time.c — Entity Time (XEP-0202) of the server, in UTC. */
#include <string.h>
#include <time.h>

#include "sm/module.h"
#include "sm/modules.h"

#define NS_TIME "urn:xmpp:time"

static void entity_time(sm *s, sm_stanza *st, xml_node *payload)
{
    if (strcmp(sm_stanza_type(st), "get") != 0 || strcmp(payload->name, "time") != 0) {
        sm_bounce(s, st, "cancel", "bad-request");
        return;
    }
    char utc[32];
    sm_format_time(sm_wall_ms(), utc);
    xml_arena *a = xml_arena_new(256);
    xml_node *t = xml_element_new(a, NULL, NS_TIME, "time");
    xml_text_new(a, xml_element_new(a, t, NS_TIME, "tzo"), "+00:00", 6);
    xml_text_new(a, xml_element_new(a, t, NS_TIME, "utc"), utc, strlen(utc));
    sm_iq_result(s, st, t);
    xml_arena_free(a);
}

static const sm_handler time_handlers[] = {
    {"iq/host/" NS_TIME ":*", .iq = entity_time},
    {NULL},
};

const sm_module mod_time = {
    .name = "time",
    .handlers = time_handlers,
    .features = (const char *const[]){NS_TIME, NULL},
};
