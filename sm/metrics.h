/* sm/metrics.h — the SM's Prometheus endpoint (sm.xml's <metrics>; docs/operations.md lists
 * every metric): GET /metrics on its own HTTP listener (core/http_server.h), answered on the SM's
 * loop from what the core, the links, storage and the modules count.
 *
 * Thread rules: the SM's loop thread.
 */
#ifndef JABSHARD_SM_METRICS_H
#define JABSHARD_SM_METRICS_H

#include "core/evloop.h"
#include "sm/server.h"
#include "xdbsql/xdbsql.h"

typedef struct sm_metrics sm_metrics;

/* NULL with the reason in err when it cannot listen. */
sm_metrics *sm_metrics_open(evloop *loop, sm_server *srv, xdbsql *xdb, const char *ip, int port,
                            char *err, size_t errlen);
void sm_metrics_close(sm_metrics *m);

#endif
