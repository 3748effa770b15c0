/* sm/server.h — the session manager's wiring: the smproto links (sm/link_sm) feed the core
 * (sm/sm.h), the core's output becomes frames on those links, and its storage requests go to
 * xdbsql, whose answers come back through the event loop's wake hook. */
#ifndef JABSHARD_SM_SERVER_H
#define JABSHARD_SM_SERVER_H

#include <stddef.h>

#include "core/evloop.h"
#include "sm/config.h"
#include "sm/sm.h"
#include "xdbsql/xdbsql.h"

typedef struct sm_server sm_server;

/* Takes over the loop's wake and before-sleep hooks. xdb must have been opened with a notify
 * that wakes loop. */
sm_server *sm_server_new(evloop *loop, const sm_config *cfg, xdbsql *xdb);
/* Starts listening on every <service>. Returns 0, or -1 with the reason in err. */
int sm_server_listen(sm_server *srv, char *err, size_t errlen);
/* END (shutdown) to every session, written out before return (best effort). */
void sm_server_shutdown(sm_server *srv);
void sm_server_free(sm_server *srv);
sm *sm_server_core(sm_server *srv);
/* The links' metrics (core/metrics.h): custody. */
void sm_server_metrics(sm_server *srv, buf *b);

#endif
