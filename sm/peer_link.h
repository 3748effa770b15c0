/* sm/peer_link.h — this SM's links to the other SMs of its <partitions> (docs/scaling.md, "Past
 * one SM"): the services the link listener accepts them as, and the connections this SM opens.
 * Between two SMs the one with the higher index connects, the lower accepts; a connection that
 * fails or goes down is tried again after 1, 2, 4 ... s, at most 30 s apart (1 s after a link
 * that was up). What crosses a link, and what each SM accepts from it, is sm/peer_route.c's.
 *
 * Thread rules: the routing thread (the evloop of the SM's links).
 */
#ifndef JABSHARD_SM_PEER_LINK_H
#define JABSHARD_SM_PEER_LINK_H

#include "core/evloop.h"
#include "sm/config.h"
#include "sm/link_sm.h"

typedef struct peer_links peer_links;

/* The services the link listener knows (link_sm_server_new): the configuration's <service>s and,
 * with <partitions>, one of role peer per other SM (port 0 for those we connect to). Returns
 * cfg->services when there are no partitions; otherwise a new array to release with
 * peer_services_free. */
sm_service *peer_services(const sm_config *cfg, int *n);
void peer_services_free(const sm_config *cfg, sm_service *services);

/* Starts connecting to every peer with a lower index; services as peer_services gave them. NULL
 * without partitions. */
peer_links *peer_links_start(evloop *loop, const sm_config *cfg, link_sm_server *srv,
                             const sm_service *services, int n);
/* Stops the connectors (call before the link server is freed). */
void peer_links_free(peer_links *pl);

#endif
