/* sm/mod_version.c — Software Version (XEP-0092) of the server. */
#include <string.h>
#include <sys/utsname.h>

#include "sm/module.h"
#include "sm/modules.h"

#define NS_VERSION "jabber:iq:version"

static void version(sm *s, sm_stanza *st, xml_node *payload)
{
    if (strcmp(sm_stanza_type(st), "get") != 0 || strcmp(payload->name, "query") != 0) {
        sm_bounce(s, st, "cancel", "bad-request");
        return;
    }
    xml_arena *a = xml_arena_new(512);
    xml_node *q = xml_element_new(a, NULL, NS_VERSION, "query");
    xml_node *n = xml_element_new(a, q, NS_VERSION, "name");
    xml_text_new(a, n, "jabshard", 8);
    xml_node *v = xml_element_new(a, q, NS_VERSION, "version");
    xml_text_new(a, v, "0.1", 3);
    struct utsname u;
    if (uname(&u) == 0) {
        xml_node *os = xml_element_new(a, q, NS_VERSION, "os");
        xml_text_new(a, os, u.sysname, strlen(u.sysname));
    }
    sm_iq_result(s, st, q);
    xml_arena_free(a);
}

static const sm_handler version_handlers[] = {
    {"iq/host/" NS_VERSION ":*", .iq = version},
    {NULL},
};

const sm_module mod_version = {
    .name = "version",
    .handlers = version_handlers,
    .features = (const char *const[]){NS_VERSION, NULL},
};
