/* shard/front_metrics.h — the front's Prometheus endpoint (jadc2s.xml's <metrics>;
 * docs/operations.md lists every metric): GET /metrics on its own HTTP listener
 * (core/http_server.h), served by a thread of its own that reads the IO threads' and the link
 * thread's counters (relaxed atomics: a scrape costs them nothing).
 *
 * Thread rules: started and stopped by the main thread; its loop is its own.
 */
#ifndef JABSHARD_SHARD_FRONT_METRICS_H
#define JABSHARD_SHARD_FRONT_METRICS_H

#include <stddef.h>

#include "shard/iothread.h"
#include "shard/link_front.h"

typedef struct front_metrics front_metrics;

/* Listens on ip:port and starts the thread; NULL with the reason in err. */
front_metrics *front_metrics_start(iothread *const *io, unsigned nio, link_front *link,
                                   const char *ip, int port, char *err, size_t errlen);
void front_metrics_stop(front_metrics *m);

#endif
