/* sm/disco.h — what mod_disco (XEP-0030) offers other modules: adding to an entity's info through
 * its events ("disco-info" for the server, "disco-account-info" for an account), and the
 * server's info itself. */
#ifndef JABSHARD_SM_DISCO_H
#define JABSHARD_SM_DISCO_H

#include "core/xml.h"
#include "sm/sm.h"

/* <feature var=var/> in the <query/> q being answered. */
void disco_feature(xml_arena *a, xml_node *q, const char *var);
/* A "disco-host-items" hook's item for a service (its JID, name) of host: added when the query
 * is to that host (or names no host). */
void disco_host_item(sm_event *ev, const char *host, const char *service, const char *name);
/* The server's disco#info <query/> for host, built in a (its identity, every loaded module's
 * features, and what "disco-info" hooks add): what a query of the host is answered, and what the
 * server's entity capabilities hash (mod_caps). */
xml_node *disco_host_info(sm *s, const char *host, xml_arena *a);

#endif
